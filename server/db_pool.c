/*
 * db_pool: worker threads with their own connections. See db_pool.h.
 *
 * One mutex guards two FIFOs (0: work that may write, 1: read-only work), the
 * completion list and the counters. On PostgreSQL everything goes into FIFO 0
 * and every worker serves it. On SQLite worker 0 holds the only writable
 * connection and serves FIFO 0 (and FIFO 1 too if it is alone); the others
 * serve FIFO 1. Items carry a sequence number so a worker serving both takes
 * them in submission order. Workers broadcast-wake: there are few of them,
 * and a plain signal could wake one that does not serve the item's FIFO.
 */
#include "server/db_pool.h"

#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "common/log.h"
#include "server/db_int.h"

#define POOL_DEFAULT_CAP        1024
#define POOL_DEFAULT_PG         4
#define POOL_DEFAULT_SQLITE     3
#define POOL_MAX_WORKERS        64

enum { Q_WRITE = 0, Q_READ = 1 };
#define SERVES(q) (1u << (q))

struct item {
    db_work_fn work;
    db_done_fn done;
    void *arg;
    int rc;
    uint64_t submitted_us;      /* for the latency histogram */
    uint64_t seq;
    struct item *next;
};

const double db_pool_bucket_le[DB_POOL_BUCKETS] = { 0.001, 0.005, 0.01, 0.05, 0.1,
                                                    0.5, 1, 5 };

static uint64_t now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

struct fifo {
    struct item *head, *tail;
};

struct worker {
    struct db_pool *pool;
    struct db *db;
    unsigned serves;
    bool started;
    pthread_t tid;
};

struct db_pool {
    struct loop *loop;
    uint64_t lat_buckets[DB_POOL_BUCKETS];  /* loop thread only */
    uint64_t lat_count;
    double lat_sum;
    struct loop_io io;          /* eventfd: completions are waiting */
    bool io_added;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    struct fifo q[2];
    struct fifo done;
    size_t queued, cap, running;
    uint64_t seq, completed, rejected;
    bool stopping;
    bool split;                 /* SQLite: reads have their own FIFO */
    unsigned nworkers;
    struct worker *workers;
};

static void fifo_push(struct fifo *f, struct item *it)
{
    it->next = NULL;
    if (f->tail)
        f->tail->next = it;
    else
        f->head = it;
    f->tail = it;
}

static struct item *fifo_pop(struct fifo *f)
{
    struct item *it = f->head;
    if (it) {
        f->head = it->next;
        if (!f->head)
            f->tail = NULL;
    }
    return it;
}

/* The oldest item among the FIFOs this worker serves. Lock held. */
static struct item *take(struct db_pool *p, unsigned serves)
{
    struct item *w = (serves & SERVES(Q_WRITE)) ? p->q[Q_WRITE].head : NULL;
    struct item *r = (serves & SERVES(Q_READ)) ? p->q[Q_READ].head : NULL;
    if (!w && !r)
        return NULL;
    if (w && (!r || w->seq < r->seq))
        return fifo_pop(&p->q[Q_WRITE]);
    return fifo_pop(&p->q[Q_READ]);
}

static void wake_loop(struct db_pool *p)
{
    uint64_t one = 1;
    /* EAGAIN: the counter is already non-zero, the loop will wake. */
    ssize_t w = write(p->io.fd, &one, sizeof(one));
    (void)w;
}

static void run_item(struct worker *w, struct item *it)
{
    it->rc = it->work(w->db, it->arg);
    if (w->db->in_tx) {
        /* Work must not leave a transaction open for the next item. */
        log_warn("datastore: work returned inside a transaction; "
                 "rolled back");
        db_rollback(w->db);
    }
}

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    struct db_pool *p = w->pool;
    pthread_mutex_lock(&p->mu);
    for (;;) {
        struct item *it;
        while (!(it = take(p, w->serves)) && !p->stopping)
            pthread_cond_wait(&p->cv, &p->mu);
        if (!it)
            break;
        p->queued--;
        p->running++;
        pthread_mutex_unlock(&p->mu);
        run_item(w, it);
        pthread_mutex_lock(&p->mu);
        p->running--;
        p->completed++;
        fifo_push(&p->done, it);
        wake_loop(p);
    }
    pthread_mutex_unlock(&p->mu);
    return NULL;
}

/* Submission to done: queueing plus the work, what a caller waits. Only the
 * loop thread touches the histogram. */
static void observe(struct db_pool *p, const struct item *it)
{
    double s = (double)(now_us() - it->submitted_us) / 1e6;
    for (size_t i = 0; i < DB_POOL_BUCKETS; i++)
        if (s <= db_pool_bucket_le[i])
            p->lat_buckets[i]++;
    p->lat_count++;
    p->lat_sum += s;
}

/* Runs done callbacks of a detached list and frees the items. */
static void deliver(struct db_pool *p, struct item *it, bool cancelled)
{
    while (it) {
        struct item *next = it->next;
        if (!cancelled)
            observe(p, it);
        it->done(it->arg, cancelled ? DB_CANCELLED : it->rc);
        free(it);
        it = next;
    }
}

static void on_ready(struct loop_io *io, unsigned events)
{
    struct db_pool *p = (struct db_pool *)((char *)io -
                                           offsetof(struct db_pool, io));
    (void)events;
    uint64_t v;
    ssize_t r = read(io->fd, &v, sizeof(v));
    (void)r;
    pthread_mutex_lock(&p->mu);
    struct item *it = p->done.head;
    p->done.head = p->done.tail = NULL;
    pthread_mutex_unlock(&p->mu);
    deliver(p, it, false);
}

static int submit(struct db_pool *p, int q, db_work_fn work, db_done_fn done,
                  void *arg)
{
    if (!work || !done)
        return DB_ERROR;
    struct item *it = malloc(sizeof(*it));
    if (!it)
        return DB_ERROR;
    *it = (struct item){ .work = work, .done = done, .arg = arg, .submitted_us = now_us() };
    int rc = DB_OK;
    pthread_mutex_lock(&p->mu);
    if (p->stopping) {
        rc = DB_CANCELLED;
    } else if (p->queued >= p->cap) {
        p->rejected++;
        rc = DB_QUEUE_FULL;
    } else {
        it->seq = ++p->seq;
        fifo_push(&p->q[p->split ? q : Q_WRITE], it);
        p->queued++;
        pthread_cond_broadcast(&p->cv);
    }
    pthread_mutex_unlock(&p->mu);
    if (rc < 0)
        free(it);
    return rc;
}

int db_pool_submit(struct db_pool *p, db_work_fn work, db_done_fn done,
                   void *arg)
{
    return submit(p, Q_WRITE, work, done, arg);
}

int db_pool_submit_read(struct db_pool *p, db_work_fn work, db_done_fn done,
                        void *arg)
{
    return submit(p, Q_READ, work, done, arg);
}

void db_pool_get_stats(struct db_pool *p, struct db_pool_stats *out)
{
    pthread_mutex_lock(&p->mu);
    *out = (struct db_pool_stats){
        .queued = p->queued, .running = p->running,
        .completed = p->completed, .rejected = p->rejected,
    };
    pthread_mutex_unlock(&p->mu);
    memcpy(out->lat_buckets, p->lat_buckets, sizeof(out->lat_buckets));
    out->lat_count = p->lat_count;
    out->lat_sum = p->lat_sum;
}

/* Both FIFOs merged back into submission order. Lock held. */
static struct item *detach_queued(struct db_pool *p)
{
    struct fifo all = { 0 };
    struct item *it;
    while ((it = take(p, SERVES(Q_WRITE) | SERVES(Q_READ))))
        fifo_push(&all, it);
    p->queued = 0;
    return all.head;
}

void db_pool_free(struct db_pool *p)
{
    if (!p)
        return;
    pthread_mutex_lock(&p->mu);
    p->stopping = true;
    struct item *cancelled = detach_queued(p);
    pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
    for (unsigned i = 0; i < p->nworkers; i++)
        if (p->workers[i].started)
            pthread_join(p->workers[i].tid, NULL);
    int efd = p->io.fd;
    if (p->io_added)
        loop_io_del(p->loop, &p->io);
    if (efd >= 0)
        close(efd);
    /* No thread is left: the lists are ours without the lock. */
    deliver(p, p->done.head, false);
    deliver(p, cancelled, true);
    for (unsigned i = 0; i < p->nworkers; i++)
        db_close(p->workers[i].db);
    pthread_cond_destroy(&p->cv);
    pthread_mutex_destroy(&p->mu);
    free(p->workers);
    free(p);
}

/* Opens worker connections; worker 0's tells us the backend. */
static int open_workers(struct db_pool *p, const struct db_options *opt,
                        unsigned want, char *err, size_t errlen)
{
    struct db *first;
    int rc = db_open(opt, &first, err, errlen);
    if (rc < 0)
        return rc;
    p->split = db_backend(first) == DB_SQLITE;
    unsigned n = want ? want : p->split ? POOL_DEFAULT_SQLITE
                                        : POOL_DEFAULT_PG;
    if (n > POOL_MAX_WORKERS)
        n = POOL_MAX_WORKERS;
    p->workers = calloc(n, sizeof(*p->workers));
    if (!p->workers) {
        db_close(first);
        snprintf(err, errlen, "out of memory");
        return DB_ERROR;
    }
    p->nworkers = n;
    p->workers[0].db = first;
    for (unsigned i = 0; i < n; i++) {
        struct worker *w = &p->workers[i];
        w->pool = p;
        w->serves = !p->split ? SERVES(Q_WRITE)
                  : i > 0 ? SERVES(Q_READ)
                  : n == 1 ? SERVES(Q_WRITE) | SERVES(Q_READ)
                  : SERVES(Q_WRITE);
        if (i > 0 && (rc = db_open_flags(opt, p->split ? DB_OPEN_READ_ONLY : 0,
                                         &w->db, err, errlen)) < 0)
            return rc;
    }
    return DB_OK;
}

static int start_workers(struct db_pool *p, char *err, size_t errlen)
{
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    int e = 0;
    for (unsigned i = 0; i < p->nworkers && e == 0; i++) {
        e = pthread_create(&p->workers[i].tid, NULL, worker_main,
                           &p->workers[i]);
        p->workers[i].started = e == 0;
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (e) {
        snprintf(err, errlen, "cannot start datastore worker: error %d", e);
        return DB_ERROR;
    }
    return DB_OK;
}

int db_pool_new(struct loop *l, const struct db_options *opt,
                const struct db_pool_config *cfg, struct db_pool **out,
                char *err, size_t errlen)
{
    *out = NULL;
    struct db_pool *p = calloc(1, sizeof(*p));
    if (!p) {
        snprintf(err, errlen, "out of memory");
        return DB_ERROR;
    }
    p->loop = l;
    p->cap = cfg && cfg->queue_cap ? cfg->queue_cap : POOL_DEFAULT_CAP;
    p->io.fd = -1;
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->cv, NULL);
    int rc = open_workers(p, opt, cfg ? cfg->workers : 0, err, errlen);
    if (rc == DB_OK) {
        int efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
        if (efd < 0 || loop_io_add(l, &p->io, efd, LOOP_READ, on_ready) < 0) {
            snprintf(err, errlen, "cannot set up the completion eventfd");
            if (efd >= 0)
                close(efd);
            p->io.fd = -1;
            rc = DB_ERROR;
        } else {
            p->io_added = true;
        }
    }
    if (rc == DB_OK)
        rc = start_workers(p, err, errlen);
    if (rc < 0) {
        db_pool_free(p);
        return rc;
    }
    *out = p;
    return DB_OK;
}
