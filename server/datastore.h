/*
 * datastore: brings drover-server's datastore up without holding up the
 * loop. A start-up thread opens one connection (retrying with backoff while
 * the database is unreachable), applies the migrations, creates the
 * bootstrap admin on a first start (printing its password once to stdout),
 * and marks links of a previous run as gone; then, on the loop thread, the
 * pool is opened and handed to on_ready. Until then the server is alive
 * (/healthz) but not ready (/readyz, the API and /v3/connect answer 503).
 *
 * Owns the start-up thread and, once ready, the pool.
 */
#ifndef DROVER_SERVER_DATASTORE_H
#define DROVER_SERVER_DATASTORE_H

#include <stdbool.h>

#include "common/loop.h"
#include "server/db_pool.h"

struct datastore;

struct datastore_cfg {
    const char *datastore;      /* "sqlite" or postgres://...; copied */
    const char *data_dir;       /* copied */
    /* Several replicas: this one's peer id (copied; NULL on a single
     * server). Start-up then forgets only this replica's links of a
     * previous run, not the clusters other replicas hold. */
    const char *peer_id;
    /* Loop thread: the pool is open (owned by the datastore). */
    void (*on_ready)(void *ud, struct db_pool *pool);
    /* Loop thread: start-up failed for good (already logged). */
    void (*on_fatal)(void *ud);
    void *ud;
};

/* Starts the start-up thread. NULL if it cannot (logged). */
struct datastore *datastore_start(struct loop *l, const struct datastore_cfg *cfg);
/* Stops the start-up thread if it still runs, then frees the pool (every
 * pending done callback runs now). NULL is a no-op. */
void datastore_free(struct datastore *d);

#endif
