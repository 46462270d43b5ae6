/*
 * loop: epoll, a timer heap and a cross-thread post queue. See loop.h.
 *
 * Timers live in a binary min-heap of pointers to caller-owned handles; each
 * handle remembers its heap slot so stopping one is O(log n) rather than a
 * scan, which matters with tens of thousands of tunnels each holding a
 * keepalive timer.
 */
#include "common/loop.h"

#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <time.h>
#include <unistd.h>

#define LOOP_MAX_EVENTS 256

struct loop_post_item {
    void (*fn)(void *arg);
    void *arg;
    struct loop_post_item *next;
};

struct loop {
    int epfd;
    int stop;
    uint64_t now_ms;

    struct loop_timer **heap;   /* heap[0] unused; 1-based */
    size_t heap_len;
    size_t heap_cap;

    /* Posts from other threads: a locked singly linked FIFO plus an eventfd
     * that wakes epoll_wait. */
    struct loop_io post_io;
    pthread_mutex_t post_lock;
    struct loop_post_item *post_head, *post_tail;

    struct loop_io sig_io;      /* signalfd, when loop_stop_on_signals */
    int stopped_by;

    /* Deferred work of the loop thread itself, run after each batch. */
    struct loop_post_item *defer_head, *defer_tail;
};

uint64_t loop_clock_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

uint64_t loop_now_ms(struct loop *l)
{
    return l->now_ms;
}

/* ---- timer heap ---- */

static void heap_set(struct loop *l, size_t i, struct loop_timer *t)
{
    l->heap[i] = t;
    t->heap_idx = i;
}

static void heap_up(struct loop *l, size_t i)
{
    struct loop_timer *t = l->heap[i];
    while (i > 1 && l->heap[i / 2]->due_ms > t->due_ms) {
        heap_set(l, i, l->heap[i / 2]);
        i /= 2;
    }
    heap_set(l, i, t);
}

static void heap_down(struct loop *l, size_t i)
{
    struct loop_timer *t = l->heap[i];
    for (;;) {
        size_t c = i * 2;
        if (c > l->heap_len)
            break;
        if (c < l->heap_len && l->heap[c + 1]->due_ms < l->heap[c]->due_ms)
            c++;
        if (l->heap[c]->due_ms >= t->due_ms)
            break;
        heap_set(l, i, l->heap[c]);
        i = c;
    }
    heap_set(l, i, t);
}

void loop_timer_stop(struct loop *l, struct loop_timer *t)
{
    size_t i = t->heap_idx;
    if (i == 0)
        return;
    struct loop_timer *last = l->heap[l->heap_len--];
    t->heap_idx = 0;
    if (last == t)
        return;
    heap_set(l, i, last);
    heap_up(l, i);
    heap_down(l, last->heap_idx);
}

void loop_timer_start(struct loop *l, struct loop_timer *t, uint64_t delay_ms,
                      loop_timer_cb cb)
{
    loop_timer_stop(l, t);
    t->cb = cb;
    t->due_ms = l->now_ms + delay_ms;
    if (l->heap_len + 1 >= l->heap_cap) {
        /* Growth failure would lose a timer silently; timers are tiny, so
         * treat it as fatal rather than limp on with a dead keepalive. */
        size_t cap = l->heap_cap ? l->heap_cap * 2 : 64;
        struct loop_timer **h = realloc(l->heap, cap * sizeof(*h));
        if (!h)
            abort();
        l->heap = h;
        l->heap_cap = cap;
    }
    l->heap_len++;
    heap_set(l, l->heap_len, t);
    heap_up(l, l->heap_len);
}

static void run_timers(struct loop *l)
{
    while (l->heap_len > 0 && l->heap[1]->due_ms <= l->now_ms) {
        struct loop_timer *t = l->heap[1];
        loop_timer_stop(l, t);
        t->cb(t);
    }
}

static int next_timeout(struct loop *l)
{
    if (l->heap_len == 0)
        return 1000;
    uint64_t due = l->heap[1]->due_ms;
    if (due <= l->now_ms)
        return 0;
    uint64_t d = due - l->now_ms;
    return d > 1000 ? 1000 : (int)d;
}

/* ---- descriptors ---- */

static uint32_t to_epoll(unsigned events)
{
    uint32_t e = 0;
    if (events & LOOP_READ)
        e |= EPOLLIN | EPOLLRDHUP;
    if (events & LOOP_WRITE)
        e |= EPOLLOUT;
    return e;
}

int loop_io_add(struct loop *l, struct loop_io *io, int fd, unsigned events,
                loop_io_cb cb)
{
    struct epoll_event ev = { .events = to_epoll(events), .data.ptr = io };
    io->fd = fd;
    io->cb = cb;
    io->events = events;
    io->parked = 0;
    return epoll_ctl(l->epfd, EPOLL_CTL_ADD, fd, &ev);
}

int loop_io_mod(struct loop *l, struct loop_io *io, unsigned events)
{
    if (io->fd < 0)
        return 0;
    if (io->parked) {
        if (events == 0)
            return 0;
        struct epoll_event ev = { .events = to_epoll(events), .data.ptr = io };
        io->parked = 0;
        io->events = events;
        return epoll_ctl(l->epfd, EPOLL_CTL_ADD, io->fd, &ev);
    }
    if (io->events == events)
        return 0;
    struct epoll_event ev = { .events = to_epoll(events), .data.ptr = io };
    io->events = events;
    return epoll_ctl(l->epfd, EPOLL_CTL_MOD, io->fd, &ev);
}

void loop_io_park(struct loop *l, struct loop_io *io)
{
    if (io->fd < 0 || io->parked)
        return;
    epoll_ctl(l->epfd, EPOLL_CTL_DEL, io->fd, NULL);
    io->parked = 1;
    io->events = 0;
}

void loop_io_del(struct loop *l, struct loop_io *io)
{
    if (io->fd < 0)
        return;
    if (!io->parked)
        epoll_ctl(l->epfd, EPOLL_CTL_DEL, io->fd, NULL);
    io->parked = 0;
    io->fd = -1;
    io->events = 0;
}

/* ---- cross-thread posts ---- */

/* Appends a new item for fn(arg) to a FIFO. 0 or -1 (ENOMEM). */
static int fifo_add(struct loop_post_item **head, struct loop_post_item **tail,
                    void (*fn)(void *arg), void *arg)
{
    struct loop_post_item *it = malloc(sizeof(*it));
    if (!it)
        return -1;
    it->fn = fn;
    it->arg = arg;
    it->next = NULL;
    if (*tail)
        (*tail)->next = it;
    else
        *head = it;
    *tail = it;
    return 0;
}

int loop_post(struct loop *l, void (*fn)(void *arg), void *arg)
{
    pthread_mutex_lock(&l->post_lock);
    int rc = fifo_add(&l->post_head, &l->post_tail, fn, arg);
    pthread_mutex_unlock(&l->post_lock);
    if (rc < 0)
        return -1;
    uint64_t one = 1;
    /* EAGAIN means the counter is already non-zero: the loop will wake. */
    ssize_t w = write(l->post_io.fd, &one, sizeof(one));
    (void)w;
    return 0;
}

int loop_defer(struct loop *l, void (*fn)(void *arg), void *arg)
{
    return fifo_add(&l->defer_head, &l->defer_tail, fn, arg);
}

static void run_deferred(struct loop *l)
{
    /* Deferred functions may defer more; those run in the same pass. */
    while (l->defer_head) {
        struct loop_post_item *it = l->defer_head;
        l->defer_head = it->next;
        if (!l->defer_head)
            l->defer_tail = NULL;
        it->fn(it->arg);
        free(it);
    }
}

static void on_post(struct loop_io *io, unsigned events)
{
    struct loop *l = (struct loop *)((char *)io - offsetof(struct loop, post_io));
    (void)events;
    uint64_t v;
    ssize_t r = read(io->fd, &v, sizeof(v));
    (void)r;
    pthread_mutex_lock(&l->post_lock);
    struct loop_post_item *it = l->post_head;
    l->post_head = l->post_tail = NULL;
    pthread_mutex_unlock(&l->post_lock);
    while (it) {
        struct loop_post_item *next = it->next;
        it->fn(it->arg);
        free(it);
        it = next;
    }
}

static void on_signal(struct loop_io *io, unsigned events)
{
    struct loop *l = (struct loop *)((char *)io - offsetof(struct loop, sig_io));
    struct signalfd_siginfo si;
    (void)events;
    if (read(io->fd, &si, sizeof(si)) == (ssize_t)sizeof(si))
        l->stopped_by = (int)si.ssi_signo;
    l->stop = 1;
}

int loop_stop_on_signals(struct loop *l)
{
    sigset_t mask;
    sigemptyset(&mask);
    sigaddset(&mask, SIGTERM);
    sigaddset(&mask, SIGINT);
    if (sigprocmask(SIG_BLOCK, &mask, NULL) < 0)
        return -1;
    int fd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
    if (fd < 0)
        return -1;
    if (loop_io_add(l, &l->sig_io, fd, LOOP_READ, on_signal) < 0) {
        close(fd);
        return -1;
    }
    return 0;
}

int loop_stopped_by(const struct loop *l)
{
    return l->stopped_by;
}

/* ---- lifetime ---- */

struct loop *loop_new(void)
{
    /* Loop programs allocate and free 64 KiB buffers at a high rate. By
     * default glibc hands the top of the heap back to the kernel after such
     * frees and then page-faults it in again (tens of thousands of faults a
     * second under load); keeping a few MiB around avoids that churn while
     * still returning memory after a burst. */
    mallopt(M_TRIM_THRESHOLD, 8 * 1024 * 1024);
    mallopt(M_MMAP_THRESHOLD, 1024 * 1024);
    struct loop *l = calloc(1, sizeof(*l));
    if (!l)
        return NULL;
    l->sig_io.fd = -1;
    l->epfd = epoll_create1(EPOLL_CLOEXEC);
    int efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (l->epfd < 0 || efd < 0)
        goto fail;
    pthread_mutex_init(&l->post_lock, NULL);
    l->now_ms = loop_clock_ms();
    if (loop_io_add(l, &l->post_io, efd, LOOP_READ, on_post) < 0) {
        pthread_mutex_destroy(&l->post_lock);
        goto fail;
    }
    return l;
fail:
    if (efd >= 0)
        close(efd);
    if (l->epfd >= 0)
        close(l->epfd);
    free(l);
    return NULL;
}

void loop_free(struct loop *l)
{
    if (!l)
        return;
    int efd = l->post_io.fd;
    loop_io_del(l, &l->post_io);
    close(efd);
    if (l->sig_io.fd >= 0) {
        int sfd = l->sig_io.fd;
        loop_io_del(l, &l->sig_io);
        close(sfd);
    }
    /* Posts nobody will run: free the items; their args belong to callers
     * that are shutting down with us. */
    struct loop_post_item *it = l->post_head;
    while (it) {
        struct loop_post_item *next = it->next;
        free(it);
        it = next;
    }
    run_deferred(l);
    pthread_mutex_destroy(&l->post_lock);
    close(l->epfd);
    free(l->heap);
    free(l);
}

void loop_stop(struct loop *l)
{
    l->stop = 1;
}

int loop_run(struct loop *l)
{
    struct epoll_event evs[LOOP_MAX_EVENTS];
    l->stop = 0;
    while (!l->stop) {
        l->now_ms = loop_clock_ms();
        run_timers(l);
        run_deferred(l);
        if (l->stop)
            break;
        int n = epoll_wait(l->epfd, evs, LOOP_MAX_EVENTS, next_timeout(l));
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        l->now_ms = loop_clock_ms();
        for (int i = 0; i < n; i++) {
            struct loop_io *io = evs[i].data.ptr;
            if (io->fd < 0)
                continue;   /* closed earlier in this batch */
            unsigned e = 0;
            if (evs[i].events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR))
                e |= LOOP_READ;
            if (evs[i].events & (EPOLLOUT | EPOLLERR | EPOLLHUP))
                e |= LOOP_WRITE;
            if (evs[i].events & (EPOLLERR | EPOLLHUP))
                e |= LOOP_HUP;
            io->cb(io, e);
        }
        run_deferred(l);
    }
    run_deferred(l);
    return 0;
}
