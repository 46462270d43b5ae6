/*
 * pgtmp: a throwaway PostgreSQL for tests. See pgtmp.h.
 *
 * postgres runs as our direct child (not daemonised by pg_ctl start) so we
 * know its pid, can watch it die during start-up, and can give it a
 * parent-death signal. Children are forked from a test process that is still
 * single-threaded, so doing ordinary work between fork and exec is safe.
 */
#include "tests/support/pgtmp.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <glob.h>
#include <grp.h>
#include <libpq-fe.h>
#include <limits.h>
#include <netinet/in.h>
#include <pwd.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define PGTMP_INITDB_MS     120000
#define PGTMP_READY_MS      30000
#define PGTMP_STOP_MS       15000
#define PGTMP_START_TRIES   3

struct pgtmp {
    char dir[64];
    char data[96];
    char log[96];
    char bindir[PATH_MAX];
    char url[128];
    char admin_url[128];
    int port;
    pid_t pid;              /* the postmaster; 0 when not running */
    pid_t owner;            /* the process that may stop it */
    bool drop;              /* run as the postgres user */
    uid_t uid;
    gid_t gid;
    struct pgtmp *next;
};

static struct pgtmp *live;

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void sleep_ms(long ms)
{
    struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
    nanosleep(&ts, NULL);
}

/* ---- processes ---- */

/* Waits up to ms for pid; 1 exited (status set), 0 still running. */
static int wait_for(pid_t pid, int ms, int *status)
{
    uint64_t deadline = now_ms() + (uint64_t)ms;
    for (;;) {
        pid_t r = waitpid(pid, status, WNOHANG);
        if (r == pid || (r < 0 && errno == ECHILD))
            return 1;
        if (now_ms() >= deadline)
            return 0;
        sleep_ms(20);
    }
}

/* In the child: become postgres, log to t->log, exec argv. Never returns. */
static void child_exec(const struct pgtmp *t, char *const argv[], bool tie)
{
    pid_t parent = getppid();
    if (t->drop && (setgroups(0, NULL) < 0 || setgid(t->gid) < 0 ||
                    setuid(t->uid) < 0))
        _exit(126);
    /* After setuid: changing credentials clears the death signal. */
    if (tie && (prctl(PR_SET_PDEATHSIG, SIGQUIT) < 0 || getppid() != parent))
        _exit(126);
    int in = open("/dev/null", O_RDONLY);
    int out = open(t->log, O_WRONLY | O_CREAT | O_APPEND, 0600);
    if (in < 0 || out < 0 || dup2(in, 0) < 0 || dup2(out, 1) < 0 ||
        dup2(out, 2) < 0 || chdir(t->dir) < 0)
        _exit(126);
    execv(argv[0], argv);
    _exit(127);
}

static pid_t spawn(const struct pgtmp *t, char *const argv[], bool tie)
{
    pid_t pid = fork();
    if (pid == 0)
        child_exec(t, argv, tie);
    return pid;
}

/* Runs a tool to completion within ms. 0 if it exited 0, else -1. */
static int run_tool(const struct pgtmp *t, char *const argv[], int ms)
{
    int status = 0;
    pid_t pid = spawn(t, argv, false);
    if (pid < 0)
        return -1;
    if (!wait_for(pid, ms, &status)) {
        kill(pid, SIGKILL);
        waitpid(pid, &status, 0);
        return -1;
    }
    return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : -1;
}

/* ---- helpers ---- */

static void log_tail(const struct pgtmp *t, char *out, size_t cap)
{
    out[0] = '\0';
    int fd = open(t->log, O_RDONLY);
    if (fd < 0)
        return;
    off_t end = lseek(fd, 0, SEEK_END);
    off_t from = end > (off_t)cap - 1 ? end - (off_t)cap + 1 : 0;
    ssize_t n = pread(fd, out, cap - 1, from);
    out[n > 0 ? n : 0] = '\0';
    close(fd);
}

static void fail(const struct pgtmp *t, char *err, size_t errlen,
                 const char *what)
{
    char tail[600];
    log_tail(t, tail, sizeof(tail));
    snprintf(err, errlen, "pgtmp: %s%s%s", what, tail[0] ? "; log:\n" : "",
             tail);
}

static long version_of(const char *path)
{
    const char *v = strstr(path, "/postgresql/");
    return v ? strtol(v + 12, NULL, 10) : 0;
}

static int find_bindir(struct pgtmp *t, char *err, size_t errlen)
{
    const char *env = getenv("DROVER_PG_BINDIR");
    if (env && *env) {
        snprintf(t->bindir, sizeof(t->bindir), "%s", env);
        return 0;
    }
    glob_t g;
    long best = -1;
    if (glob("/usr/lib/postgresql/*/bin/initdb", 0, NULL, &g) == 0) {
        for (size_t i = 0; i < g.gl_pathc; i++) {
            long v = version_of(g.gl_pathv[i]);
            if (v > best) {
                best = v;
                snprintf(t->bindir, sizeof(t->bindir), "%.*s",
                         (int)(strlen(g.gl_pathv[i]) - strlen("/initdb")),
                         g.gl_pathv[i]);
            }
        }
        globfree(&g);
    }
    if (best < 0) {
        snprintf(err, errlen, "pgtmp: no initdb under /usr/lib/postgresql/*/"
                 "bin (install postgresql, or set DROVER_PG_BINDIR)");
        return -1;
    }
    return 0;
}

static int free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = { .sin_family = AF_INET,
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    socklen_t len = sizeof(a);
    int port = -1;
    if (fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0 &&
        getsockname(fd, (struct sockaddr *)&a, &len) == 0)
        port = ntohs(a.sin_port);
    if (fd >= 0)
        close(fd);
    return port;
}

static int prepare_dir(struct pgtmp *t, char *err, size_t errlen)
{
    snprintf(t->dir, sizeof(t->dir), "/tmp/drover-pgtmp-XXXXXX");
    if (!mkdtemp(t->dir)) {
        snprintf(err, errlen, "pgtmp: mkdtemp: %s", strerror(errno));
        t->dir[0] = '\0';
        return -1;
    }
    snprintf(t->data, sizeof(t->data), "%s/data", t->dir);
    snprintf(t->log, sizeof(t->log), "%s/postgres.log", t->dir);
    if (geteuid() != 0)
        return 0;
    struct passwd *pw = getpwnam("postgres");
    if (!pw) {
        snprintf(err, errlen, "pgtmp: running as root but there is no "
                 "`postgres` user to run PostgreSQL as");
        return -1;
    }
    t->drop = true;
    t->uid = pw->pw_uid;
    t->gid = pw->pw_gid;
    if (chown(t->dir, t->uid, t->gid) < 0) {
        snprintf(err, errlen, "pgtmp: chown %s: %s", t->dir, strerror(errno));
        return -1;
    }
    return 0;
}

/* ---- start ---- */

static int initdb(struct pgtmp *t, char *err, size_t errlen)
{
    char exe[PATH_MAX + 16];
    snprintf(exe, sizeof(exe), "%s/initdb", t->bindir);
    char *const argv[] = { exe, "-D", t->data, "-U", "postgres", "-A",
                           "trust", "-E", "UTF8", "--locale=C", "--no-sync",
                           NULL };
    if (access(exe, X_OK) < 0) {
        snprintf(err, errlen, "pgtmp: cannot run %s: %s", exe, strerror(errno));
        return -1;
    }
    if (run_tool(t, argv, PGTMP_INITDB_MS) < 0) {
        fail(t, err, errlen, "initdb failed or timed out");
        return -1;
    }
    return 0;
}

/* 1 ready, 0 the server died (retry with another port), -1 timed out. */
static int wait_ready(struct pgtmp *t)
{
    char conninfo[128];
    snprintf(conninfo, sizeof(conninfo), "host=127.0.0.1 port=%d "
             "user=postgres dbname=postgres connect_timeout=2", t->port);
    uint64_t deadline = now_ms() + PGTMP_READY_MS;
    while (now_ms() < deadline) {
        int status;
        if (wait_for(t->pid, 0, &status)) {
            t->pid = 0;
            return 0;
        }
        if (PQping(conninfo) == PQPING_OK)
            return 1;
        sleep_ms(50);
    }
    return -1;
}

static int launch(struct pgtmp *t)
{
    char exe[PATH_MAX + 16], port[16], sock[80];
    snprintf(exe, sizeof(exe), "%s/postgres", t->bindir);
    snprintf(port, sizeof(port), "%d", t->port);
    snprintf(sock, sizeof(sock), "%s", t->dir);
    char *const argv[] = { exe, "-D", t->data, "-p", port, "-k", sock,
                           "-c", "listen_addresses=127.0.0.1",
                           "-c", "fsync=off", "-c", "synchronous_commit=off",
                           "-c", "full_page_writes=off", NULL };
    t->pid = spawn(t, argv, true);
    return t->pid > 0 ? 0 : -1;
}

static int start_server(struct pgtmp *t, char *err, size_t errlen)
{
    for (int i = 0; i < PGTMP_START_TRIES; i++) {
        t->port = free_port();
        if (t->port < 0 || launch(t) < 0) {
            snprintf(err, errlen, "pgtmp: cannot start postgres: %s",
                     strerror(errno));
            return -1;
        }
        int r = wait_ready(t);
        if (r == 1)
            return 0;
        if (r < 0) {
            fail(t, err, errlen, "postgres did not accept connections "
                 "within 30s");
            return -1;
        }
        /* Died: most likely someone took the port in between. */
    }
    fail(t, err, errlen, "postgres exited during start-up");
    return -1;
}

static int create_db(struct pgtmp *t, char *err, size_t errlen)
{
    PGconn *c = PQconnectdb(t->admin_url);
    PGresult *r = NULL;
    int ok = PQstatus(c) == CONNECTION_OK &&
             PQresultStatus(r = PQexec(c, "CREATE DATABASE drover_test")) ==
                 PGRES_COMMAND_OK;
    if (!ok)
        snprintf(err, errlen, "pgtmp: CREATE DATABASE drover_test: %s",
                 PQerrorMessage(c));
    PQclear(r);
    PQfinish(c);
    return ok ? 0 : -1;
}

static void stop_all_at_exit(void)
{
    while (live && live->owner == getpid())
        pgtmp_stop(live);
}

struct pgtmp *pgtmp_start(char *err, size_t errlen)
{
    static bool hooked;
    struct pgtmp *t = calloc(1, sizeof(*t));
    if (!t) {
        snprintf(err, errlen, "pgtmp: out of memory");
        return NULL;
    }
    t->owner = getpid();
    t->next = live;
    live = t;
    if (!hooked && atexit(stop_all_at_exit) == 0)
        hooked = true;
    if (find_bindir(t, err, errlen) < 0 || prepare_dir(t, err, errlen) < 0 ||
        initdb(t, err, errlen) < 0 || start_server(t, err, errlen) < 0)
        goto fail;
    snprintf(t->url, sizeof(t->url),
             "postgres://postgres@127.0.0.1:%d/drover_test", t->port);
    snprintf(t->admin_url, sizeof(t->admin_url),
             "postgres://postgres@127.0.0.1:%d/postgres", t->port);
    if (create_db(t, err, errlen) < 0)
        goto fail;
    return t;
fail:
    pgtmp_stop(t);
    return NULL;
}

const char *pgtmp_url(const struct pgtmp *t)
{
    return t->url;
}

const char *pgtmp_admin_url(const struct pgtmp *t)
{
    return t->admin_url;
}

int pgtmp_port(const struct pgtmp *t)
{
    return t->port;
}

/* ---- stop ---- */

static int rm_entry(const char *path, const struct stat *sb, int flag,
                    struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    remove(path);
    return 0;
}

static void stop_server(struct pgtmp *t)
{
    char exe[PATH_MAX + 16];
    snprintf(exe, sizeof(exe), "%s/pg_ctl", t->bindir);
    char *const argv[] = { exe, "stop", "-D", t->data, "-m", "immediate",
                           "-w", "-t", "10", NULL };
    int status;
    if (run_tool(t, argv, PGTMP_STOP_MS) < 0)
        kill(t->pid, SIGQUIT);
    if (!wait_for(t->pid, PGTMP_STOP_MS, &status)) {
        kill(t->pid, SIGKILL);
        waitpid(t->pid, &status, 0);
    }
    t->pid = 0;
}

void pgtmp_stop(struct pgtmp *t)
{
    if (!t)
        return;
    for (struct pgtmp **pp = &live; *pp; pp = &(*pp)->next)
        if (*pp == t) {
            *pp = t->next;
            break;
        }
    if (t->pid > 0)
        stop_server(t);
    if (t->dir[0])
        nftw(t->dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    free(t);
}
