/*
 * loop: the single-threaded event loop every drover program runs on.
 *
 * epoll for descriptors, a binary heap of millisecond timers, and a
 * thread-safe post queue (eventfd) so worker threads (the datastore pool) hand
 * results back to the loop thread. Only the loop thread touches loop objects;
 * loop_post() is the one call other threads may make.
 *
 * Handles (loop_io, loop_timer) are owned by the caller and embedded in the
 * caller's structs; the loop never allocates or frees them.
 */
#ifndef DROVER_LOOP_H
#define DROVER_LOOP_H

#include <stddef.h>
#include <stdint.h>

struct loop;

enum { LOOP_READ = 1u, LOOP_WRITE = 2u, LOOP_HUP = 4u };

struct loop_io;
/* events: LOOP_READ and/or LOOP_WRITE. Errors and hang-ups are reported as
 * LOOP_READ | LOOP_WRITE | LOOP_HUP whatever was registered, so the owner
 * discovers them through its read or write path. */
typedef void (*loop_io_cb)(struct loop_io *io, unsigned events);
struct loop_io {
    int fd;
    unsigned events;        /* what is currently registered */
    int parked;             /* taken out of epoll by loop_io_park */
    loop_io_cb cb;
};

struct loop_timer;
typedef void (*loop_timer_cb)(struct loop_timer *t);
struct loop_timer {
    uint64_t due_ms;
    size_t heap_idx;        /* 0 = not armed; else 1-based heap position */
    loop_timer_cb cb;
};

/* Returns NULL if epoll or eventfd cannot be created (errno set). */
struct loop *loop_new(void);
/* Frees the loop; registered handles must have been removed first. */
void loop_free(struct loop *l);
/* Runs until loop_stop(). Returns 0, or -1 if epoll_wait fails hard. */
int loop_run(struct loop *l);
void loop_stop(struct loop *l);

/* Registers fd for events (LOOP_READ|LOOP_WRITE). 0 or -1 (errno set). */
int loop_io_add(struct loop *l, struct loop_io *io, int fd, unsigned events,
                loop_io_cb cb);
/* Changes the registered events; a no-op if they are unchanged. */
int loop_io_mod(struct loop *l, struct loop_io *io, unsigned events);
/* Takes fd out of epoll while keeping the handle: epoll reports hang-ups
 * even with no events registered, so an owner that does not want to read a
 * hung-up socket yet must park it. The next loop_io_mod() with non-zero
 * events puts it back. */
void loop_io_park(struct loop *l, struct loop_io *io);
/* Unregisters (does not close the fd). Safe to call on a removed handle. */
void loop_io_del(struct loop *l, struct loop_io *io);

/* Arms (or re-arms) t to fire once after delay_ms. */
void loop_timer_start(struct loop *l, struct loop_timer *t, uint64_t delay_ms,
                      loop_timer_cb cb);
/* Disarms t; safe on a timer that is not armed. */
void loop_timer_stop(struct loop *l, struct loop_timer *t);
static inline int loop_timer_armed(const struct loop_timer *t)
{
    return t->heap_idx != 0;
}

/* Monotonic milliseconds, cached per loop iteration. */
uint64_t loop_now_ms(struct loop *l);
/* Fresh monotonic milliseconds (not cached). */
uint64_t loop_clock_ms(void);

/*
 * Loop thread only: runs fn(arg) after the current batch of events. Owners
 * free closed objects this way, because epoll may still hold an event for
 * them later in the same batch (the loop skips handles whose fd is -1).
 * 0, or -1 on ENOMEM.
 */
int loop_defer(struct loop *l, void (*fn)(void *arg), void *arg);

/*
 * Makes SIGTERM and SIGINT stop the loop (through a signalfd, so handlers
 * never run in the middle of loop code). Call before starting threads: it
 * blocks the signals for the calling thread. 0, or -1 (errno set).
 * loop_stopped_by() then gives the signal number, or 0.
 */
int loop_stop_on_signals(struct loop *l);
int loop_stopped_by(const struct loop *l);

/* Thread-safe: runs fn(arg) on the loop thread soon. 0, or -1 on ENOMEM. */
int loop_post(struct loop *l, void (*fn)(void *arg), void *arg);

#endif
