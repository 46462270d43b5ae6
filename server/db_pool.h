/*
 * db_pool: runs datastore work on worker threads so the event-loop thread
 * never waits on the database.
 *
 * Each worker owns one struct db connection. work(db, arg) runs on a worker;
 * then done(arg, rc) runs on the loop thread with work's return value, or
 * with DB_CANCELLED if the pool shut down before the work started. done is
 * called exactly once per accepted submit, so callers free their state there.
 *
 * Ordering. SQLite: one writer connection runs every db_pool_submit() in
 * submission order, one at a time (never SQLITE_BUSY among ourselves); reader
 * connections (PRAGMA query_only) run db_pool_submit_read() work
 * concurrently, and under WAL readers and the writer never block each other.
 * A read submitted after a write's done() sees that write. PostgreSQL: all
 * workers take from one FIFO and run concurrently, so two submits may run in
 * either order; chain them (submit the second from the first's done) when
 * order matters, and use db_tx() for anything that can conflict.
 *
 * What it owns: the threads, their connections, the queue (capped: submit
 * fails with DB_QUEUE_FULL rather than queue without bound, so the API can
 * answer 503) and an eventfd registered on the loop. Completions are handed
 * back through that eventfd rather than loop_post(), so db_pool_free() can
 * still deliver every done() after loop_run() has returned.
 */
#ifndef DROVER_SERVER_DB_POOL_H
#define DROVER_SERVER_DB_POOL_H

#include <stddef.h>
#include <stdint.h>

#include "common/loop.h"
#include "server/db.h"

struct db_pool;

/* Runs on a worker. Returns >= 0 or a negative db code; passed to done. */
typedef int (*db_work_fn)(struct db *db, void *arg);
/* Runs on the loop thread; rc is work's result or DB_CANCELLED. */
typedef void (*db_done_fn)(void *arg, int rc);

struct db_pool_config {
    /* PostgreSQL: connections, default 4. SQLite: 1 writer plus
     * workers - 1 readers, default 3 (with 1, the writer also reads). */
    unsigned workers;
    size_t queue_cap;   /* work waiting to start; 0 = 1024 */
};

#define DB_POOL_BUCKETS 8
/* Upper bounds (seconds) of the latency histogram buckets. */
extern const double db_pool_bucket_le[DB_POOL_BUCKETS];

struct db_pool_stats {
    size_t queued;          /* waiting for a worker */
    size_t running;
    uint64_t completed;
    uint64_t rejected;      /* DB_QUEUE_FULL answers */
    /* submission-to-done latency (cumulative buckets, as Prometheus wants) */
    uint64_t lat_buckets[DB_POOL_BUCKETS];
    uint64_t lat_count;
    double lat_sum;
};

/*
 * Loop thread. Opens every connection now (failing fast, e.g. with
 * DB_UNAVAILABLE, err set) and starts the workers with all signals blocked,
 * so signals keep going to the loop thread. Run db_migrate() before, on a
 * connection of your own. On success *out is the caller's.
 */
int db_pool_new(struct loop *l, const struct db_options *opt,
                const struct db_pool_config *cfg, struct db_pool **out,
                char *err, size_t errlen);

/*
 * Any thread. Queues work that may write. 0 once accepted; DB_QUEUE_FULL at
 * the cap; DB_CANCELLED while shutting down; DB_ERROR without memory. When
 * it fails, done is not called and arg stays the caller's.
 */
int db_pool_submit(struct db_pool *p, db_work_fn work, db_done_fn done,
                   void *arg);
/* As db_pool_submit, for work that only reads (on SQLite it runs on a
 * read-only connection; a write there fails with DB_ERROR). */
int db_pool_submit_read(struct db_pool *p, db_work_fn work, db_done_fn done,
                        void *arg);

void db_pool_get_stats(struct db_pool *p, struct db_pool_stats *out);

/*
 * Loop thread, not from inside a done callback (use loop_defer). Cancels
 * queued work, waits for running work to finish, joins the threads, then
 * calls done for everything completed (with its rc) and everything cancelled
 * (DB_CANCELLED), in order, and closes the connections. NULL is a no-op.
 */
void db_pool_free(struct db_pool *p);

#endif
