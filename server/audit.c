/*
 * audit: JSON-lines audit trail with a writer thread. See audit.h.
 *
 * Two buffers: the loop appends to `buf` under the mutex; the writer swaps
 * it with its own empty one and writes outside the lock, so the loop holds
 * the mutex only for a memcpy. Reopening happens on the writer too, after
 * the SIGHUP handler (async-signal-safe: it only sets a flag) asked for it.
 */
#include "server/audit.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/log.h"

#define LINE_MAX_BYTES 4096
#define PATH_MAX_OUT   1024     /* longer paths are cut */
#define WAKE_MS        500      /* how soon a SIGHUP is noticed */

static struct {
    bool on, stop, started;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    pthread_t thread;
    char target[4096];
    int fd;
    char *buf, *spare;          /* pending lines; the writer's buffer */
    size_t len, lines;
    uint64_t written, dropped;
} A = { .mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER, .fd = -1 };

static volatile sig_atomic_t reopen_wanted;

static void on_sighup(int sig)
{
    (void)sig;
    reopen_wanted = 1;
}

static int open_target(const char *target)
{
    if (strcmp(target, "-") == 0)
        return dup(STDERR_FILENO);
    return open(target, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
}

/* Writer thread: a new file under the same name (logrotate moved the old
 * one). On failure the old descriptor stays in use. */
static void reopen(void)
{
    int fd = open_target(A.target);
    if (fd < 0) {
        log_warn("audit-log: cannot reopen %s: %s", A.target, strerror(errno));
        return;
    }
    close(A.fd);
    A.fd = fd;
    log_info("audit-log: reopened %s", A.target);
}

static bool write_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return false;
        p += w;
        n -= (size_t)w;
    }
    return true;
}

static void *writer(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&A.mu);
    for (;;) {
        if (A.len == 0 && !reopen_wanted) {
            if (A.stop)
                break;
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            ts.tv_nsec += WAKE_MS * 1000000L;
            ts.tv_sec += ts.tv_nsec / 1000000000L;
            ts.tv_nsec %= 1000000000L;
            pthread_cond_timedwait(&A.cv, &A.mu, &ts);
            continue;
        }
        char *out = A.buf;
        size_t n = A.len, lines = A.lines;
        A.buf = A.spare;
        A.spare = out;
        A.len = A.lines = 0;
        pthread_mutex_unlock(&A.mu);
        if (reopen_wanted) {
            reopen_wanted = 0;
            reopen();
        }
        bool ok = n == 0 || write_all(A.fd, out, n);
        pthread_mutex_lock(&A.mu);
        if (ok)
            A.written += lines;
        else
            A.dropped += lines;
    }
    pthread_mutex_unlock(&A.mu);
    return NULL;
}

int audit_open(const char *target, char *err, size_t errlen)
{
    struct sigaction sa = { .sa_handler = on_sighup, .sa_flags = SA_RESTART };
    sigemptyset(&sa.sa_mask);
    sigaction(SIGHUP, &sa, NULL);
    if (!target || !target[0])
        return 0;
    snprintf(A.target, sizeof(A.target), "%s", target);
    A.fd = open_target(target);
    if (A.fd < 0) {
        snprintf(err, errlen, "cannot open %s: %s", target, strerror(errno));
        return -1;
    }
    A.buf = malloc(AUDIT_BUFFER_MAX);
    A.spare = malloc(AUDIT_BUFFER_MAX);
    A.stop = false;
    /* The writer takes no signals: SIGTERM and SIGINT belong to the loop's
     * signalfd, and SIGHUP's handler may run on any thread anyway. */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    int e = A.buf && A.spare ? pthread_create(&A.thread, NULL, writer, NULL) : -1;
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (e != 0) {
        snprintf(err, errlen, "cannot start the audit writer");
        free(A.buf);
        free(A.spare);
        A.buf = A.spare = NULL;
        close(A.fd);
        A.fd = -1;
        return -1;
    }
    A.started = true;
    A.on = true;
    return 0;
}

void audit_close(void)
{
    if (!A.started)
        return;
    pthread_mutex_lock(&A.mu);
    A.stop = true;
    A.on = false;
    pthread_cond_signal(&A.cv);
    pthread_mutex_unlock(&A.mu);
    pthread_join(A.thread, NULL);
    A.started = false;
    close(A.fd);
    A.fd = -1;
    free(A.buf);
    free(A.spare);
    A.buf = A.spare = NULL;
}

/* ---- formatting ---- */

struct line {
    char b[LINE_MAX_BYTES];
    size_t n;
    bool full;
};

static void put(struct line *l, const char *s, size_t n)
{
    if (n > sizeof(l->b) - l->n) {
        l->full = true;
        return;
    }
    memcpy(l->b + l->n, s, n);
    l->n += n;
}

static void puts_(struct line *l, const char *s)
{
    put(l, s, strlen(s));
}

/* A JSON string of arbitrary bytes: anything but printable ASCII is
 * escaped as \u00XX, so the line stays valid whatever a client sent. */
static void put_str(struct line *l, const char *s, size_t n)
{
    if (!s) {
        puts_(l, "null");
        return;
    }
    put(l, "\"", 1);
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];
        char esc[8];
        if (ch == '"' || ch == '\\') {
            esc[0] = '\\';
            esc[1] = (char)ch;
            put(l, esc, 2);
        } else if (ch < 0x20 || ch >= 0x7f) {
            snprintf(esc, sizeof(esc), "\\u%04x", ch);
            put(l, esc, 6);
        } else {
            put(l, (const char *)&ch, 1);
        }
    }
    put(l, "\"", 1);
}

static void put_cstr(struct line *l, const char *s)
{
    put_str(l, s && s[0] ? s : NULL, s ? strlen(s) : 0);
}

static void put_time(struct line *l, uint64_t ago_us)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    int64_t us = (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000 - (int64_t)ago_us;
    time_t secs = (time_t)(us / 1000000);
    struct tm tm;
    char buf[64];
    gmtime_r(&secs, &tm);
    size_t n = strftime(buf, sizeof(buf), "\"%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(buf + n, sizeof(buf) - n, ".%03dZ\"", (int)((us / 1000) % 1000));
    puts_(l, buf);
}

static void format(struct line *l, const struct audit_rec *r)
{
    char num[64];
    puts_(l, "{\"time\":");
    put_time(l, r->duration_us);
    puts_(l, ",\"kind\":");
    put_cstr(l, r->kind);
    puts_(l, ",\"user\":");
    put_cstr(l, r->user);
    puts_(l, ",\"cluster\":");
    put_cstr(l, r->cluster);
    puts_(l, ",\"method\":");
    put_cstr(l, r->method);
    puts_(l, ",\"path\":");
    put_str(l, r->path, r->path_len > PATH_MAX_OUT ? PATH_MAX_OUT : r->path_len);
    snprintf(num, sizeof(num), ",\"status\":%d,\"durationMs\":%llu.%03u,\"remote\":",
             r->status, (unsigned long long)(r->duration_us / 1000),
             (unsigned)(r->duration_us % 1000));
    puts_(l, num);
    put_cstr(l, r->remote);
    puts_(l, "}\n");
}

void audit_record(const struct audit_rec *r)
{
    if (!A.on)
        return;
    struct line l = { .n = 0 };
    format(&l, r);
    pthread_mutex_lock(&A.mu);
    if (l.full || l.n > AUDIT_BUFFER_MAX - A.len) {
        A.dropped++;
    } else {
        if (A.len == 0)     /* the writer only sleeps on an empty buffer */
            pthread_cond_signal(&A.cv);
        memcpy(A.buf + A.len, l.b, l.n);
        A.len += l.n;
        A.lines++;
    }
    pthread_mutex_unlock(&A.mu);
}

uint64_t audit_written(void)
{
    pthread_mutex_lock(&A.mu);
    uint64_t n = A.written;
    pthread_mutex_unlock(&A.mu);
    return n;
}

uint64_t audit_dropped(void)
{
    pthread_mutex_lock(&A.mu);
    uint64_t n = A.dropped;
    pthread_mutex_unlock(&A.mu);
    return n;
}

int audit_enabled(void)
{
    return A.on;
}
