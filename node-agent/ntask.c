/*
 * ntask: the life of a node task on its stream. See ntask.h.
 */
#include "node-agent/ntask.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/log.h"
#include "proto/frame.h"

/* Bytes hashed per loop turn: a large snapshot never holds the loop for
 * more than a few milliseconds at a time. */
#define HASH_STEP (1024 * 1024)

static void ntask_free(struct ntask *t)
{
    childproc_kill(t->child);
    if (t->in_fd >= 0)
        close(t->in_fd);
    if (t->out_fd >= 0)
        close(t->out_fd);
    if (t->hash_fd >= 0)
        close(t->hash_fd);
    loop_timer_stop(t->loop, &t->hash_timer);
    EVP_MD_CTX_free(t->in_sha);
    EVP_MD_CTX_free(t->hash);
    json_decref(t->meta);
    free(t->line);
    free(t);
}

/* ---- answering ---- */

/* Sends what it can of the line, then the file; half-closes at the end.
 * Returns true if t was freed. */
static bool pump(struct ntask *t)
{
    while (t->s) {
        if (t->line_sent < t->line_len) {
            ssize_t n = tun_stream_send(t->s, t->line + t->line_sent, t->line_len - t->line_sent);
            if (n < 0)
                goto broken;
            t->line_sent += (size_t)n;
            if (t->line_sent < t->line_len)
                return false;
            continue;
        }
        if (t->chunk_sent == t->chunk_len && t->out_left > 0) {
            size_t want = t->out_left < sizeof(t->chunk) ? (size_t)t->out_left : sizeof(t->chunk);
            ssize_t r = read(t->out_fd, t->chunk, want);
            if (r <= 0) {
                log_warn("task %s: the file shrank while being sent", t->id);
                goto broken;
            }
            t->chunk_len = (size_t)r;
            t->chunk_sent = 0;
            t->out_left -= (uint64_t)r;
        }
        if (t->chunk_sent < t->chunk_len) {
            ssize_t n = tun_stream_send(t->s, t->chunk + t->chunk_sent,
                                        t->chunk_len - t->chunk_sent);
            if (n < 0)
                goto broken;
            t->chunk_sent += (size_t)n;
            if (t->chunk_sent < t->chunk_len)
                return false;
            continue;
        }
        /* All sent. */
        if (tun_stream_close(t->s) == 1) {
            t->s = NULL;
            ntask_free(t);
            return true;
        }
        return false;
    }
    return false;
broken:
    tun_stream_reset(t->s, TUN_RESET_INTERNAL, "cannot send the answer");
    t->s = NULL;
    ntask_free(t);
    return true;
}

void ntask_answer(struct ntask *t, json_t *reply, int fd, uint64_t size)
{
    char *s = reply ? json_dumps(reply, JSON_COMPACT) : NULL;
    json_decref(reply);
    size_t n = s ? strlen(s) : 0;
    char *line = s ? realloc(s, n + 2) : NULL;
    if (!line) {
        free(s);
        if (fd >= 0)
            close(fd);
        tun_stream_reset(t->s, TUN_RESET_INTERNAL, "out of memory");
        t->s = NULL;
        ntask_free(t);
        return;
    }
    line[n] = '\n';
    line[n + 1] = '\0';
    t->line = line;
    t->line_len = n + 1;
    t->out_fd = fd;
    t->out_left = fd >= 0 ? size : 0;
    pump(t);
}

void ntask_fail(struct ntask *t, const char *fmt, ...)
{
    char msg[NTASK_OUTPUT + 256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    log_warn("task %s failed: %s", t->id[0] ? t->id : "(no id)", msg);
    ntask_answer(t, json_pack("{s:b,s:s}", "ok", 0, "error", msg), -1, 0);
}

/* ---- stream callbacks ---- */

static void on_data(struct tun_stream *s, const uint8_t *p, size_t n)
{
    struct ntask *t = tun_stream_ud(s);
    json_int_t want = json_integer_value(json_object_get(t->meta, "size"));
    if (t->in_fd >= 0 && (json_int_t)(t->in_len + n) > want) {
        /* Never more on disk than the task announced. */
        close(t->in_fd);
        t->in_fd = -1;
        unlink(t->path);
        ntask_fail(t, "checksum mismatch: refused the snapshot (the server sent more than the "
                   "%lld bytes announced)", (long long)want);
        return;
    }
    if (t->in_fd >= 0) {
        size_t off = 0;
        while (off < n) {
            ssize_t w = write(t->in_fd, p + off, n - off);
            if (w < 0 && errno == EINTR)
                continue;
            if (w < 0) {
                int e = errno;
                close(t->in_fd);
                t->in_fd = -1;
                ntask_fail(t, "cannot write %s: %s", t->path, strerror(e));
                return;
            }
            off += (size_t)w;
        }
        EVP_DigestUpdate(t->in_sha, p, n);
        t->in_len += n;
    }
    tun_stream_consumed(s, n);
}

static void on_eof(struct tun_stream *s)
{
    struct ntask *t = tun_stream_ud(s);
    if (t->in_eof)
        return;
    t->in_eof = true;
    if (t->on_input && t->in_fd >= 0)
        t->on_input(t);
}

static void on_writable(struct tun_stream *s)
{
    pump(tun_stream_ud(s));
}

static void on_end(struct tun_stream *s, uint16_t code, const char *reason)
{
    struct ntask *t = tun_stream_ud(s);
    t->s = NULL;
    if (code)
        log_warn("task %s ended by the server or the link (%u: %s); stopping it", t->id,
                 code, reason ? reason : "");
    ntask_free(t);
}

static const struct tun_stream_ops task_ops = {
    .on_data = on_data,
    .on_eof = on_eof,
    .on_writable = on_writable,
    .on_end = on_end,
};

static bool safe_id(const char *id)
{
    size_t n = strlen(id);
    if (n == 0 || n > NTASK_ID_MAX)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!((id[i] >= 'a' && id[i] <= 'z') || (id[i] >= '0' && id[i] <= '9') || id[i] == '-'))
            return false;
    return true;
}

struct ntask *ntask_accept(struct loop *l, const struct nodecfg *cfg, struct tun_stream *s,
                           const uint8_t *meta, size_t len, bool needs_id)
{
    json_t *m = len <= NTASK_META_MAX ? json_loadb((const char *)meta, len, 0, NULL) : NULL;
    const char *id = json_string_value(json_object_get(m, "id"));
    if (!json_is_object(m) || (needs_id && (!id || !safe_id(id)))) {
        json_decref(m);
        tun_stream_reset(s, TUN_RESET_PROTOCOL, "the task must be a JSON object with a valid id");
        return NULL;
    }
    struct ntask *t = calloc(1, sizeof(*t));
    if (!t) {
        json_decref(m);
        tun_stream_reset(s, TUN_RESET_INTERNAL, "out of memory");
        return NULL;
    }
    t->loop = l;
    t->s = s;
    t->cfg = cfg;
    t->meta = m;
    t->in_fd = t->out_fd = t->hash_fd = -1;
    if (id)
        snprintf(t->id, sizeof(t->id), "%s", id);
    if (tun_stream_accept(s, &task_ops, t) < 0) {
        tun_stream_reset(s, TUN_RESET_INTERNAL, "cannot accept");
        t->s = NULL;
        ntask_free(t);
        return NULL;
    }
    return t;
}

/* ---- children ---- */

static void child_done(void *ud, int status, const char *out, size_t len)
{
    struct ntask *t = ud;
    t->child = NULL;
    t->child_done(t, status, out, len);
}

int ntask_run(struct ntask *t, const char *const *argv, const char *const *env,
              ntask_child_fn done)
{
    struct childproc_cfg cc = { .argv = argv, .env = env, .output_cap = NTASK_OUTPUT,
                                .timeout_ms = t->cfg->timeout_ms };
    char err[256];
    t->child_done = done;
    t->child = childproc_start(t->loop, &cc, child_done, t, err, sizeof(err));
    if (!t->child) {
        ntask_fail(t, "cannot run %s: %s", argv[0], err);
        return -1;
    }
    log_info("task %s: running %s", t->id, argv[0]);
    return 0;
}

void ntask_output_tail(const char *out, size_t len, char *dst, size_t cap)
{
    while (len && (out[len - 1] == '\n' || out[len - 1] == ' ' || out[len - 1] == '\r'))
        len--;
    size_t start = 0;
    while (start < len && (out[start] == '\n' || out[start] == ' '))
        start++;
    size_t n = len - start;
    if (n >= cap)
        start = len - (n = cap - 1);
    memcpy(dst, out + start, n);
    dst[n] = '\0';
    /* JSON wants valid UTF-8; a cut may split a character, and tools may
     * print anything. */
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)dst[i] >= 0x80 || ((unsigned char)dst[i] < 0x20 && dst[i] != '\n'))
            dst[i] = '?';
}

/* ---- hashing ---- */

static void hash_step(struct loop_timer *tm)
{
    struct ntask *t = (struct ntask *)((char *)tm - offsetof(struct ntask, hash_timer));
    static uint8_t buf[65536];
    size_t done = 0;
    while (done < HASH_STEP) {
        ssize_t r = read(t->hash_fd, buf, sizeof(buf));
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            ntask_fail(t, "cannot read %s: %s", t->path, strerror(errno));
            return;
        }
        if (r == 0) {
            unsigned char md[32];
            char hex[65];
            EVP_DigestFinal_ex(t->hash, md, NULL);
            for (int i = 0; i < 32; i++)
                snprintf(hex + 2 * i, 3, "%02x", md[i]);
            close(t->hash_fd);
            t->hash_fd = -1;
            t->hash_done(t, hex, t->hash_len);
            return;
        }
        EVP_DigestUpdate(t->hash, buf, (size_t)r);
        t->hash_len += (uint64_t)r;
        done += (size_t)r;
    }
    loop_timer_start(t->loop, &t->hash_timer, 0, hash_step);
}

void ntask_hash_file(struct ntask *t, const char *path,
                     void (*done)(struct ntask *t, const char *hex, uint64_t len))
{
    t->hash_fd = open(path, O_RDONLY | O_CLOEXEC);
    if (t->hash_fd < 0) {
        ntask_fail(t, "cannot open %s: %s", path, strerror(errno));
        return;
    }
    t->hash = EVP_MD_CTX_new();
    if (!t->hash || EVP_DigestInit_ex(t->hash, EVP_sha256(), NULL) != 1) {
        ntask_fail(t, "cannot hash: out of memory");
        return;
    }
    t->hash_len = 0;
    t->hash_done = done;
    loop_timer_start(t->loop, &t->hash_timer, 0, hash_step);
}

int ntask_mkdirs(const char *dir)
{
    char p[512];
    if (snprintf(p, sizeof(p), "%s", dir) >= (int)sizeof(p))
        return errno = ENAMETOOLONG, -1;
    for (char *s = p + 1; *s; s++) {
        if (*s != '/')
            continue;
        *s = '\0';
        if (mkdir(p, 0700) < 0 && errno != EEXIST)
            return -1;
        *s = '/';
    }
    if (mkdir(p, 0700) < 0 && errno != EEXIST)
        return -1;
    return 0;
}
