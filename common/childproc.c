/*
 * childproc: a child program on the loop. See childproc.h.
 */
#include "common/childproc.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#define DEFAULT_CAP 4096
/* Without pidfds (kernels before 5.3) the exit is polled this often. */
#define POLL_MS 50

struct childproc {
    struct loop *loop;
    pid_t pid;
    struct loop_io out_io, pid_io;
    int out_fd, pid_fd;
    struct loop_timer deadline, poll;
    bool timed_out;
    childproc_done_fn done;
    void *ud;
    char *buf;
    size_t len, cap;
};

/* Keeps the last cap bytes of what the child wrote. */
static void keep_tail(struct childproc *p, const char *d, size_t n)
{
    if (n >= p->cap) {
        memcpy(p->buf, d + n - p->cap, p->cap);
        p->len = p->cap;
        return;
    }
    if (n > p->cap - p->len) {
        size_t drop = p->len - (p->cap - n);
        memmove(p->buf, p->buf + drop, p->len - drop);
        p->len -= drop;
    }
    memcpy(p->buf + p->len, d, n);
    p->len += n;
}

/* Reads what the pipe holds now. */
static void drain(struct childproc *p)
{
    char tmp[4096];
    while (p->out_fd >= 0) {
        ssize_t n = read(p->out_fd, tmp, sizeof(tmp));
        if (n > 0) {
            keep_tail(p, tmp, (size_t)n);
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n == 0 || errno != EAGAIN) {
            loop_io_del(p->loop, &p->out_io);
            close(p->out_fd);
            p->out_fd = -1;
        }
        return;
    }
}

static void free_later(void *arg)
{
    struct childproc *p = arg;
    free(p->buf);
    free(p);
}

/* Unregisters and closes now; the memory goes after the loop's batch,
 * which may still hold an event for the other descriptor. */
static void release(struct childproc *p)
{
    if (p->out_fd >= 0) {
        loop_io_del(p->loop, &p->out_io);
        close(p->out_fd);
    }
    if (p->pid_fd >= 0) {
        loop_io_del(p->loop, &p->pid_io);
        close(p->pid_fd);
    }
    p->out_fd = p->pid_fd = -1;
    loop_timer_stop(p->loop, &p->deadline);
    loop_timer_stop(p->loop, &p->poll);
    if (loop_defer(p->loop, free_later, p) < 0)
        abort();    /* as the tunnel does: freeing now could be a use after free */
}

/* The child exited with wstatus: report and free. */
static void finish(struct childproc *p, int wstatus)
{
    drain(p);
    int status = WIFEXITED(wstatus) ? WEXITSTATUS(wstatus)
               : WIFSIGNALED(wstatus) ? 128 + WTERMSIG(wstatus) : 1;
    if (p->timed_out)
        status = CHILDPROC_TIMEOUT;
    p->buf[p->len] = '\0';
    p->done(p->ud, status, p->buf, p->len);
    release(p);
}

static void try_reap(struct childproc *p)
{
    int ws;
    pid_t r = waitpid(p->pid, &ws, WNOHANG);
    if (r == p->pid)
        finish(p, ws);
    else if (r < 0 && errno == ECHILD)
        finish(p, 0);   /* reaped elsewhere: nothing better to say */
}

static void on_out(struct loop_io *io, unsigned ev)
{
    struct childproc *p = (struct childproc *)((char *)io - offsetof(struct childproc, out_io));
    (void)ev;
    drain(p);
}

static void on_pidfd(struct loop_io *io, unsigned ev)
{
    struct childproc *p = (struct childproc *)((char *)io - offsetof(struct childproc, pid_io));
    (void)ev;
    try_reap(p);
}

static void on_poll(struct loop_timer *t)
{
    struct childproc *p = (struct childproc *)((char *)t - offsetof(struct childproc, poll));
    loop_timer_start(p->loop, &p->poll, POLL_MS, on_poll);
    try_reap(p);
}

static void on_deadline(struct loop_timer *t)
{
    struct childproc *p = (struct childproc *)((char *)t - offsetof(struct childproc, deadline));
    p->timed_out = true;
    kill(-p->pid, SIGKILL);
}

/* In the child: never returns. */
static void child(const struct childproc_cfg *cfg, int out_fd)
{
    setpgid(0, 0);
    int devnull = open("/dev/null", O_RDONLY);
    if (devnull >= 0)
        dup2(devnull, 0);
    dup2(out_fd, 1);
    dup2(out_fd, 2);
    if (syscall(SYS_close_range, 3, ~0U, 0) < 0)
        for (int fd = 3; fd < 1024; fd++)
            close(fd);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);   /* the loop blocks SIGTERM/SIGINT */
    signal(SIGPIPE, SIG_DFL);
    for (const char *const *e = cfg->env; e && *e; e++)
        putenv((char *)*e);
    execvp(cfg->argv[0], (char *const *)cfg->argv);
    dprintf(1, "cannot run %s: %s\n", cfg->argv[0], strerror(errno));
    _exit(127);
}

struct childproc *childproc_start(struct loop *l, const struct childproc_cfg *cfg,
                                  childproc_done_fn done, void *ud, char *err, size_t errlen)
{
    struct childproc *p = calloc(1, sizeof(*p));
    int fds[2] = { -1, -1 };
    if (!p || !(p->buf = malloc((p->cap = cfg->output_cap ? cfg->output_cap : DEFAULT_CAP) + 1))) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    if (pipe2(fds, O_CLOEXEC | O_NONBLOCK) < 0) {
        snprintf(err, errlen, "pipe: %s", strerror(errno));
        goto fail;
    }
    p->loop = l;
    p->done = done;
    p->ud = ud;
    p->pid = fork();
    if (p->pid < 0) {
        snprintf(err, errlen, "fork: %s", strerror(errno));
        goto fail;
    }
    if (p->pid == 0)
        child(cfg, fds[1]);
    setpgid(p->pid, p->pid);    /* also here: no race with a kill before the child ran */
    close(fds[1]);
    p->out_fd = fds[0];
    loop_io_add(l, &p->out_io, p->out_fd, LOOP_READ, on_out);
    p->pid_fd = (int)syscall(SYS_pidfd_open, p->pid, 0);
    if (p->pid_fd < 0 || loop_io_add(l, &p->pid_io, p->pid_fd, LOOP_READ, on_pidfd) < 0) {
        if (p->pid_fd >= 0)
            close(p->pid_fd);
        p->pid_fd = -1;
        loop_timer_start(l, &p->poll, POLL_MS, on_poll);
    }
    if (cfg->timeout_ms)
        loop_timer_start(l, &p->deadline, cfg->timeout_ms, on_deadline);
    return p;
fail:
    if (fds[0] >= 0) {
        close(fds[0]);
        close(fds[1]);
    }
    if (p)
        free(p->buf);
    free(p);
    return NULL;
}

void childproc_kill(struct childproc *p)
{
    if (!p)
        return;
    kill(-p->pid, SIGKILL);
    waitpid(p->pid, NULL, 0);
    release(p);
}
