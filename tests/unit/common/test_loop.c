/*
 * Tests for common/loop.c: the timer heap (order, stop from any heap slot,
 * re-arming, timers that start and stop timers), descriptors (batches,
 * parking, removal inside a batch), deferred work, cross-thread posts and
 * stopping.
 *
 * Timing assertions are one-sided: a timer may fire late on a loaded
 * machine, never early relative to the loop's clock.
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/loop.h"
#include "tests/support/unit_net.h"

/* ---- timers ---- */

#define NT 400

struct tt {
    struct loop_timer t;
    int id;
    int fired;
    uint64_t due;           /* due_ms when last armed */
    uint64_t fired_at;      /* loop_now_ms() in the callback */
};

static struct tt tts[NT];
static int order[NT * 4];
static int norder;

static struct tt *tt_of(struct loop_timer *t)
{
    return (struct tt *)((char *)t - offsetof(struct tt, t));
}

static struct loop *cur_loop;

static void record(struct loop_timer *t)
{
    struct tt *x = tt_of(t);
    ck_assert_int_eq(loop_timer_armed(t), 0);
    x->fired++;
    x->fired_at = loop_now_ms(cur_loop);
    ck_assert_uint_ge(x->fired_at, x->due);
    ck_assert_int_lt(norder, NT * 4);
    order[norder++] = x->id;
}

static void arm(struct loop *l, int i, uint64_t delay, loop_timer_cb cb)
{
    tts[i].id = i;
    loop_timer_start(l, &tts[i].t, delay, cb);
    tts[i].due = tts[i].t.due_ms;
    ck_assert(loop_timer_armed(&tts[i].t));
}

static struct loop *new_loop(void)
{
    memset(tts, 0, sizeof(tts));
    norder = 0;
    struct loop *l = loop_new();
    ck_assert_ptr_nonnull(l);
    cur_loop = l;
    return l;
}

static bool fired_n(void *ud)
{
    return norder >= *(int *)ud;
}

/* Fire order must follow due times; ties may go either way. */
static void check_order(int want)
{
    ck_assert_int_eq(norder, want);
    for (int i = 1; i < norder; i++)
        ck_assert_msg(tts[order[i - 1]].due <= tts[order[i]].due,
                      "timer %d (due %llu) fired after %d (due %llu)", order[i],
                      (unsigned long long)tts[order[i]].due, order[i - 1],
                      (unsigned long long)tts[order[i - 1]].due);
}

static void shuffle(int *a, int n, unsigned *seed)
{
    for (int i = n - 1; i > 0; i--) {
        int j = rand_r(seed) % (i + 1);
        int x = a[i];
        a[i] = a[j];
        a[j] = x;
    }
}

START_TEST(timers_fire_in_due_order)
{
    struct loop *l = new_loop();
    int delays[NT];
    unsigned seed = 12345;
    for (int i = 0; i < NT; i++)
        delays[i] = i / 2;      /* 0..199 ms, each twice */
    shuffle(delays, NT, &seed);
    for (int i = 0; i < NT; i++)
        arm(l, i, (uint64_t)delays[i], record);
    int want = NT;
    ck_assert(unit_run_until(l, fired_n, &want, 5000));
    check_order(NT);
    for (int i = 0; i < NT; i++)
        ck_assert_int_eq(tts[i].fired, 1);
    loop_free(l);
}
END_TEST

/* All timers due in the same pass: the pass itself must pop in order. */
START_TEST(timers_due_together_pop_in_order)
{
    struct loop *l = new_loop();
    int delays[NT];
    unsigned seed = 777;
    for (int i = 0; i < NT; i++)
        delays[i] = i;
    shuffle(delays, NT, &seed);
    for (int i = 0; i < NT; i++)
        arm(l, i, (uint64_t)delays[i] / 20, record);   /* 0..19 ms */
    usleep(40 * 1000);
    int want = NT;
    ck_assert(unit_run_until(l, fired_n, &want, 5000));
    check_order(NT);
    loop_free(l);
}
END_TEST

static int heap_slot(const struct tt *x)
{
    return (int)x->t.heap_idx;
}

START_TEST(stop_last_middle_and_root)
{
    struct loop *l = new_loop();
    for (int i = 0; i < 31; i++)
        arm(l, i, (uint64_t)(5 + i), record);
    /* Increasing delays inserted in order sit in insertion order. */
    ck_assert_int_eq(heap_slot(&tts[30]), 31);
    ck_assert_int_eq(heap_slot(&tts[0]), 1);
    loop_timer_stop(l, &tts[30].t);        /* the heap's last element */
    ck_assert(!loop_timer_armed(&tts[30].t));
    loop_timer_stop(l, &tts[14].t);        /* a middle one */
    loop_timer_stop(l, &tts[0].t);         /* the root */
    loop_timer_stop(l, &tts[0].t);         /* twice: a no-op */
    struct loop_timer never_armed = { 0 };
    loop_timer_stop(l, &never_armed);
    int want = 28;
    ck_assert(unit_run_until(l, fired_n, &want, 5000));
    unit_run_for(l, 20);
    check_order(28);
    ck_assert_int_eq(tts[30].fired + tts[14].fired + tts[0].fired, 0);
    loop_free(l);
}
END_TEST

/* Removing a middle slot must move the heap's last element up when it is
 * due sooner than the removed slot's parent, and down otherwise. */
START_TEST(stop_moves_last_element_up_and_down)
{
    struct loop *l = new_loop();
    /* Left subtree late, right subtree early: slot 2 = 100, slot 3 = 10;
     * the last element lives under slot 3 with a small due time. */
    uint64_t d[7] = { 5, 100, 10, 110, 120, 11, 12 };
    for (int i = 0; i < 7; i++)
        arm(l, i, d[i], record);
    for (int i = 0; i < 7; i++)
        ck_assert_int_eq(heap_slot(&tts[i]), i + 1);
    /* Stop slot 4 (due 110): the last element (12) must rise above 100. */
    loop_timer_stop(l, &tts[3].t);
    ck_assert_int_lt(heap_slot(&tts[6]), 4);
    /* Stop the root: the new last element must sink to its place. */
    loop_timer_stop(l, &tts[0].t);
    int want = 5;
    ck_assert(unit_run_until(l, fired_n, &want, 5000));
    unit_run_for(l, 10);
    check_order(5);
    ck_assert_int_eq(order[0], 2);
    ck_assert_int_eq(order[1], 5);
    ck_assert_int_eq(order[2], 6);
    ck_assert_int_eq(order[3], 1);
    ck_assert_int_eq(order[4], 4);
    loop_free(l);
}
END_TEST

START_TEST(random_stops_keep_the_heap_valid)
{
    struct loop *l = new_loop();
    unsigned seed = 4242;
    bool stopped[NT] = { false };
    for (int i = 0; i < NT; i++)
        arm(l, i, (uint64_t)(rand_r(&seed) % 150), record);
    int left = NT;
    for (int k = 0; k < NT / 3; k++) {
        int i = rand_r(&seed) % NT;
        loop_timer_stop(l, &tts[i].t);
        if (!stopped[i])
            left--;
        stopped[i] = true;
        /* Re-arm a few elsewhere to mix starts into the stops. */
        if (k % 7 == 0) {
            int j = rand_r(&seed) % NT;
            arm(l, j, (uint64_t)(rand_r(&seed) % 150), record);
            if (stopped[j])
                left++;
            stopped[j] = false;
        }
    }
    ck_assert(unit_run_until(l, fired_n, &left, 5000));
    unit_run_for(l, 20);
    check_order(left);
    for (int i = 0; i < NT; i++)
        ck_assert_int_eq(tts[i].fired, stopped[i] ? 0 : 1);
    loop_free(l);
}
END_TEST

START_TEST(rearming_replaces_the_due_time)
{
    struct loop *l = new_loop();
    arm(l, 0, 30, record);
    arm(l, 0, 5, record);                  /* sooner */
    arm(l, 1, 5, record);
    uint64_t t0 = loop_now_ms(l);
    arm(l, 1, 120, record);                /* later */
    int want = 2;
    ck_assert(unit_run_until(l, fired_n, &want, 5000));
    unit_run_for(l, 50);
    ck_assert_int_eq(norder, 2);
    ck_assert_int_eq(tts[0].fired, 1);
    ck_assert_int_eq(tts[1].fired, 1);
    ck_assert_int_eq(order[0], 0);
    ck_assert_uint_ge(tts[1].fired_at, t0 + 120);
    /* A fired timer can be armed again. */
    arm(l, 0, 1, record);
    want = 3;
    ck_assert(unit_run_until(l, fired_n, &want, 5000));
    ck_assert_int_eq(tts[0].fired, 2);
    loop_free(l);
}
END_TEST

/* Timer 0 (due first) stops 1, which is due in the same pass, re-arms 2
 * for later and starts 3 at once; 3 re-arms itself five times. */
static void periodic(struct loop_timer *t)
{
    record(t);
    if (tt_of(t)->fired < 5)
        loop_timer_start(cur_loop, t, 0, periodic);
}

static void meddler(struct loop_timer *t)
{
    record(t);
    loop_timer_stop(cur_loop, &tts[1].t);
    loop_timer_start(cur_loop, &tts[2].t, 40, record);
    tts[2].due = tts[2].t.due_ms;
    tts[3].id = 3;
    loop_timer_start(cur_loop, &tts[3].t, 0, periodic);
    tts[3].due = tts[3].t.due_ms;
    loop_timer_stop(cur_loop, t);          /* itself, already disarmed */
}

START_TEST(callbacks_start_and_stop_timers)
{
    struct loop *l = new_loop();
    arm(l, 0, 1, meddler);
    arm(l, 1, 2, record);
    arm(l, 2, 3, record);
    arm(l, 4, 4, record);
    usleep(20 * 1000);      /* 0, 1, 2 and 4 are all due in the first pass */
    int want = 1 + 5 + 1 + 1;
    ck_assert(unit_run_until(l, fired_n, &want, 5000));
    unit_run_for(l, 20);
    ck_assert_int_eq(norder, want);
    ck_assert_int_eq(tts[0].fired, 1);
    ck_assert_int_eq(tts[1].fired, 0);
    ck_assert_int_eq(tts[2].fired, 1);
    ck_assert_int_eq(tts[3].fired, 5);
    ck_assert_int_eq(tts[4].fired, 1);
    ck_assert_int_eq(order[norder - 1], 2);    /* re-armed 40 ms out */
    loop_free(l);
}
END_TEST

/* ---- descriptors, deferred work ---- */

static char trace[256];

static void tr(const char *s)
{
    size_t used = strlen(trace), n = strlen(s);
    ck_assert_uint_lt(n, sizeof(trace) - used);
    memcpy(trace + used, s, n + 1);
}

struct pio {
    struct loop_io io;
    int p[2];
    char name;
    int calls;
    unsigned last;
    struct pio *other;
};

static void pio_open(struct pio *x, char name)
{
    memset(x, 0, sizeof(*x));
    x->name = name;
    ck_assert_int_eq(pipe2(x->p, O_CLOEXEC | O_NONBLOCK), 0);
}

static void pio_close(struct loop *l, struct pio *x)
{
    loop_io_del(l, &x->io);
    if (x->p[0] >= 0)
        close(x->p[0]);
    if (x->p[1] >= 0)
        close(x->p[1]);
}

static void deferred_d3(void *arg)
{
    (void)arg;
    tr("d3 ");
}

static void timer_t0(struct loop_timer *t)
{
    (void)t;
    tr("t ");
    loop_stop(cur_loop);
}

static struct loop_timer tmr0;

static void deferred_d(void *arg)
{
    struct pio *x = arg;
    char s[8];
    snprintf(s, sizeof(s), "d%c ", x->name);
    tr(s);
    if (x->name == 'a') {
        ck_assert_int_eq(loop_defer(cur_loop, deferred_d3, NULL), 0);
        loop_timer_start(cur_loop, &tmr0, 0, timer_t0);
    }
}

static void on_pio(struct loop_io *io, unsigned ev)
{
    struct pio *x = (struct pio *)((char *)io - offsetof(struct pio, io));
    x->calls++;
    x->last = ev;
    char buf[16];
    ssize_t r = read(io->fd, buf, sizeof(buf));
    (void)r;
    tr("r ");
    ck_assert_int_eq(loop_defer(cur_loop, deferred_d, x), 0);
}

START_TEST(defer_runs_after_the_batch)
{
    struct loop *l = new_loop();
    struct pio a, b;
    pio_open(&a, 'a');
    pio_open(&b, 'b');
    trace[0] = '\0';
    ck_assert_int_eq(loop_io_add(l, &a.io, a.p[0], LOOP_READ, on_pio), 0);
    ck_assert_int_eq(loop_io_add(l, &b.io, b.p[0], LOOP_READ, on_pio), 0);
    ck_assert_int_eq(write(a.p[1], "x", 1), 1);
    ck_assert_int_eq(write(b.p[1], "y", 1), 1);
    /* Both reads are one batch; then the deferred calls, including the one
     * a deferred call added; the timer it armed comes after all of them. */
    ck_assert_int_eq(loop_run(l), 0);
    ck_assert_int_eq(a.calls, 1);
    ck_assert_int_eq(b.calls, 1);
    ck_assert(strcmp(trace, "r r da db d3 t ") == 0 || strcmp(trace, "r r db da d3 t ") == 0);
    pio_close(l, &a);
    pio_close(l, &b);
    loop_free(l);
}
END_TEST

static int chain_n;

static void chain(void *arg)
{
    (void)arg;
    if (++chain_n < 1000)
        ck_assert_int_eq(loop_defer(cur_loop, chain, NULL), 0);
    else
        loop_stop(cur_loop);
}

START_TEST(deferred_calls_may_defer_more)
{
    struct loop *l = new_loop();
    chain_n = 0;
    ck_assert_int_eq(loop_defer(l, chain, NULL), 0);
    ck_assert_int_eq(loop_run(l), 0);
    ck_assert_int_eq(chain_n, 1000);
    /* Deferred work still queued at loop_free runs there (no leaks). */
    chain_n = 0;
    ck_assert_int_eq(loop_defer(l, chain, NULL), 0);
    loop_free(l);
    ck_assert_int_eq(chain_n, 1000);
}
END_TEST

static void on_pio_del_other(struct loop_io *io, unsigned ev)
{
    struct pio *x = (struct pio *)((char *)io - offsetof(struct pio, io));
    (void)ev;
    x->calls++;
    loop_io_del(cur_loop, &x->other->io);
    loop_io_del(cur_loop, &x->other->io);  /* twice: safe */
    loop_stop(cur_loop);
}

START_TEST(handle_removed_in_batch_gets_no_callback)
{
    struct loop *l = new_loop();
    struct pio a, b;
    pio_open(&a, 'a');
    pio_open(&b, 'b');
    a.other = &b;
    b.other = &a;
    ck_assert_int_eq(loop_io_add(l, &a.io, a.p[0], LOOP_READ, on_pio_del_other), 0);
    ck_assert_int_eq(loop_io_add(l, &b.io, b.p[0], LOOP_READ, on_pio_del_other), 0);
    ck_assert_int_eq(write(a.p[1], "x", 1), 1);
    ck_assert_int_eq(write(b.p[1], "y", 1), 1);
    ck_assert_int_eq(loop_run(l), 0);
    ck_assert_int_eq(a.calls + b.calls, 1);
    pio_close(l, &a);
    pio_close(l, &b);
    loop_free(l);
}
END_TEST

static void on_pio_count(struct loop_io *io, unsigned ev)
{
    struct pio *x = (struct pio *)((char *)io - offsetof(struct pio, io));
    x->calls++;
    x->last = ev;
}

static bool pio_called(void *ud)
{
    return ((struct pio *)ud)->calls > 0;
}

START_TEST(mod_and_park)
{
    struct loop *l = new_loop();
    struct pio a;
    pio_open(&a, 'a');
    ck_assert_int_eq(loop_io_add(l, &a.io, a.p[0], LOOP_READ, on_pio_count), 0);
    ck_assert_int_eq(write(a.p[1], "x", 1), 1);
    ck_assert(unit_run_until(l, pio_called, &a, 2000));
    ck_assert_uint_eq(a.last & LOOP_READ, LOOP_READ);

    /* No events registered: readable data does not wake the loop. */
    ck_assert_int_eq(loop_io_mod(l, &a.io, 0), 0);
    a.calls = 0;
    unit_run_for(l, 20);
    ck_assert_int_eq(a.calls, 0);

    /* But a hang-up does, whatever is registered. */
    close(a.p[1]);
    a.p[1] = -1;
    ck_assert(unit_run_until(l, pio_called, &a, 2000));
    ck_assert_uint_eq(a.last & (LOOP_READ | LOOP_WRITE | LOOP_HUP),
                      LOOP_READ | LOOP_WRITE | LOOP_HUP);

    /* Parked: not even the hang-up. */
    loop_io_park(l, &a.io);
    loop_io_park(l, &a.io);                /* twice: a no-op */
    ck_assert_int_eq(a.io.parked, 1);
    a.calls = 0;
    unit_run_for(l, 20);
    ck_assert_int_eq(a.calls, 0);
    ck_assert_int_eq(loop_io_mod(l, &a.io, 0), 0);     /* stays parked */
    unit_run_for(l, 10);
    ck_assert_int_eq(a.calls, 0);

    /* Asking for events again puts it back. */
    ck_assert_int_eq(loop_io_mod(l, &a.io, LOOP_READ), 0);
    ck_assert_int_eq(a.io.parked, 0);
    ck_assert(unit_run_until(l, pio_called, &a, 2000));
    ck_assert_uint_eq(a.last & LOOP_HUP, LOOP_HUP);

    /* Removing a parked handle is fine, and so is removing it twice. */
    loop_io_park(l, &a.io);
    loop_io_del(l, &a.io);
    loop_io_del(l, &a.io);
    ck_assert_int_eq(a.io.fd, -1);
    ck_assert_int_eq(loop_io_mod(l, &a.io, LOOP_READ), 0);    /* removed: no-op */
    pio_close(l, &a);
    loop_free(l);
}
END_TEST

START_TEST(write_interest)
{
    struct loop *l = new_loop();
    struct pio a;
    pio_open(&a, 'a');
    ck_assert_int_eq(loop_io_add(l, &a.io, a.p[1], LOOP_WRITE, on_pio_count), 0);
    ck_assert(unit_run_until(l, pio_called, &a, 2000));
    ck_assert_uint_eq(a.last, LOOP_WRITE);
    ck_assert_int_eq(loop_io_mod(l, &a.io, LOOP_WRITE), 0);    /* unchanged */
    ck_assert_int_eq(loop_io_mod(l, &a.io, LOOP_READ), 0);
    a.calls = 0;
    unit_run_for(l, 20);
    ck_assert_int_eq(a.calls, 0);
    loop_io_del(l, &a.io);
    ck_assert_int_eq(loop_io_add(l, &a.io, -1, LOOP_READ, on_pio_count), -1);
    a.io.fd = -1;
    pio_close(l, &a);
    loop_free(l);
}
END_TEST

/* ---- posts from other threads ---- */

#define POST_THREADS 4
#define POSTS 1000

static pthread_t loop_thread;
static int posted_runs;
static int last_seq[POST_THREADS];
static int wrong_thread, out_of_order;

struct poster {
    struct loop *l;
    int id;
};

static void on_posted(void *arg)
{
    uintptr_t v = (uintptr_t)arg;
    int th = (int)(v >> 16), seq = (int)(v & 0xffff);
    if (!pthread_equal(pthread_self(), loop_thread))
        wrong_thread++;
    if (seq != last_seq[th] + 1)
        out_of_order++;
    last_seq[th] = seq;
    posted_runs++;
}

static void *poster_main(void *arg)
{
    struct poster *p = arg;
    for (int i = 1; i <= POSTS; i++) {
        uintptr_t v = ((uintptr_t)p->id << 16) | (uintptr_t)i;
        if (loop_post(p->l, on_posted, (void *)v) < 0)
            abort();
        if (i % 100 == 0)
            usleep(100);
    }
    return NULL;
}

static bool all_posted(void *ud)
{
    (void)ud;
    return posted_runs == POST_THREADS * POSTS;
}

START_TEST(posts_from_threads_run_on_the_loop_thread)
{
    struct loop *l = new_loop();
    loop_thread = pthread_self();
    posted_runs = wrong_thread = out_of_order = 0;
    memset(last_seq, 0, sizeof(last_seq));
    pthread_t th[POST_THREADS];
    struct poster ps[POST_THREADS];
    for (int i = 0; i < POST_THREADS; i++) {
        ps[i] = (struct poster){ l, i };
        ck_assert_int_eq(pthread_create(&th[i], NULL, poster_main, &ps[i]), 0);
    }
    bool done = unit_run_until(l, all_posted, NULL, 20000);
    for (int i = 0; i < POST_THREADS; i++)
        pthread_join(th[i], NULL);
    if (!done)
        done = unit_run_until(l, all_posted, NULL, 5000);
    ck_assert_msg(done, "%d of %d posts ran", posted_runs, POST_THREADS * POSTS);
    ck_assert_int_eq(wrong_thread, 0);
    ck_assert_int_eq(out_of_order, 0);      /* FIFO per posting thread */
    for (int i = 0; i < POST_THREADS; i++)
        ck_assert_int_eq(last_seq[i], POSTS);
    loop_free(l);
}
END_TEST

static void never_runs(void *arg)
{
    (void)arg;
    ck_abort_msg("a post ran after loop_free");
}

START_TEST(unrun_posts_are_freed)
{
    struct loop *l = new_loop();
    for (int i = 0; i < 50; i++)
        ck_assert_int_eq(loop_post(l, never_runs, NULL), 0);
    loop_free(l);       /* valgrind/ASan: the items must not leak */
    loop_free(NULL);
}
END_TEST

/* ---- stopping ---- */

static void stop_from_post(void *arg)
{
    loop_stop(arg);
}

static void *post_stop_main(void *arg)
{
    usleep(20 * 1000);
    loop_post(arg, stop_from_post, arg);
    return NULL;
}

static void stop_timer(struct loop_timer *t)
{
    record(t);
    loop_stop(cur_loop);
}

START_TEST(stop_from_timer_defer_and_post)
{
    struct loop *l = new_loop();
    arm(l, 0, 10, stop_timer);
    arm(l, 1, 3000, record);
    uint64_t t0 = loop_clock_ms();
    ck_assert_int_eq(loop_run(l), 0);
    ck_assert_int_eq(tts[0].fired, 1);
    ck_assert_int_eq(tts[1].fired, 0);
    ck_assert_uint_lt(loop_clock_ms() - t0, 2500);

    /* loop_run can run again after a stop. */
    ck_assert_int_eq(loop_defer(l, stop_from_post, l), 0);
    ck_assert_int_eq(loop_run(l), 0);

    /* A thread stops the loop through a post (the loop is idle in epoll). */
    pthread_t th;
    ck_assert_int_eq(pthread_create(&th, NULL, post_stop_main, l), 0);
    t0 = loop_clock_ms();
    ck_assert_int_eq(loop_run(l), 0);
    pthread_join(th, NULL);
    ck_assert_int_eq(tts[1].fired, 0);
    ck_assert_uint_lt(loop_clock_ms() - t0, 2500);
    loop_timer_stop(l, &tts[1].t);
    loop_free(l);
}
END_TEST

START_TEST(stop_on_signals)
{
    sigset_t old;
    sigprocmask(SIG_SETMASK, NULL, &old);
    struct loop *l = new_loop();
    ck_assert_int_eq(loop_stopped_by(l), 0);
    ck_assert_int_eq(loop_stop_on_signals(l), 0);
    raise(SIGTERM);     /* blocked now: waits in the signalfd */
    arm(l, 0, 3000, record);
    ck_assert_int_eq(loop_run(l), 0);
    ck_assert_int_eq(loop_stopped_by(l), SIGTERM);
    ck_assert_int_eq(tts[0].fired, 0);
    loop_timer_stop(l, &tts[0].t);
    loop_free(l);
    sigprocmask(SIG_SETMASK, &old, NULL);
}
END_TEST

START_TEST(clock_is_monotonic_and_cached)
{
    struct loop *l = new_loop();
    uint64_t a = loop_clock_ms();
    uint64_t n = loop_now_ms(l);
    ck_assert_uint_le(n, a);
    usleep(15 * 1000);
    ck_assert_uint_eq(loop_now_ms(l), n);      /* cached until the loop runs */
    ck_assert_uint_ge(loop_clock_ms(), a + 10);
    unit_run_for(l, 1);
    ck_assert_uint_ge(loop_now_ms(l), a + 10);
    loop_free(l);
}
END_TEST

Suite *suite_common_loop(void)
{
    Suite *s = suite_create("common_loop");
    TCase *tm = tcase_create("timers");
    TCase *io = tcase_create("io");
    TCase *th = tcase_create("threads");
    tcase_set_timeout(tm, 30);
    tcase_set_timeout(io, 30);
    tcase_set_timeout(th, 60);
    tcase_add_test(tm, timers_fire_in_due_order);
    tcase_add_test(tm, timers_due_together_pop_in_order);
    tcase_add_test(tm, stop_last_middle_and_root);
    tcase_add_test(tm, stop_moves_last_element_up_and_down);
    tcase_add_test(tm, random_stops_keep_the_heap_valid);
    tcase_add_test(tm, rearming_replaces_the_due_time);
    tcase_add_test(tm, callbacks_start_and_stop_timers);
    tcase_add_test(tm, clock_is_monotonic_and_cached);
    tcase_add_test(io, defer_runs_after_the_batch);
    tcase_add_test(io, deferred_calls_may_defer_more);
    tcase_add_test(io, handle_removed_in_batch_gets_no_callback);
    tcase_add_test(io, mod_and_park);
    tcase_add_test(io, write_interest);
    tcase_add_test(th, posts_from_threads_run_on_the_loop_thread);
    tcase_add_test(th, unrun_posts_are_freed);
    tcase_add_test(th, stop_from_timer_defer_and_post);
    tcase_add_test(th, stop_on_signals);
    suite_add_tcase(s, tm);
    suite_add_tcase(s, io);
    suite_add_tcase(s, th);
    return s;
}
