/*
 * store_snapshots: the SQL behind etcd snapshots (rows and their chunks)
 * and cluster upgrade documents. Same rules as store.h: worker threads only,
 * 0 / DB_NOTFOUND / negative codes, times in unix ms (-1 for NULL).
 *
 * State changes are conditional (a snapshot only becomes running from
 * pending, and done or failed only from pending or running), so two updates
 * that reach PostgreSQL in either order leave the right state.
 */
#ifndef DROVER_SERVER_STORE_SNAPSHOTS_H
#define DROVER_SERVER_STORE_SNAPSHOTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "server/db.h"

#define STORE_SNAP_ID_MAX 32

struct store_snapshot {
    const char *id, *cluster_id, *node, *state;
    const char *sha256, *error, *restore_json;  /* may be NULL */
    bool scheduled;
    int64_t size, created_at, finished_at;
};

typedef int (*store_snapshot_fn)(void *ud, const struct store_snapshot *s);

/* A new pending snapshot. 0, DB_NOTFOUND (no such cluster), DB_CONFLICT. */
int store_snapshot_create(struct db *db, const char *id, const char *cluster_id,
                          const char *node, bool scheduled, int64_t now, const char *runner);
/* One snapshot of cluster_id. 0 or DB_NOTFOUND. */
int store_snapshot_get(struct db *db, const char *cluster_id, const char *id,
                       store_snapshot_fn fn, void *ud);
/* By id, oldest first, after `after`. */
int store_snapshots_list(struct db *db, const char *cluster_id, const char *after, int limit,
                         store_snapshot_fn fn, void *ud);
/* pending -> running. */
int store_snapshot_running(struct db *db, const char *id);
/* pending/running -> failed with error. */
int store_snapshot_fail(struct db *db, const char *id, const char *error, int64_t now);
/* pending/running -> done with size and sha256. */
int store_snapshot_done(struct db *db, const char *id, int64_t size, const char *sha256,
                        int64_t now);
/* Stores chunk seq (0-based) of snapshot id. */
int store_snapshot_put_chunk(struct db *db, const char *id, int64_t seq, const void *p,
                             size_t len);
/* Reads chunk seq into a malloc'd *out (caller frees). 0 or DB_NOTFOUND. */
int store_snapshot_get_chunk(struct db *db, const char *id, int64_t seq, uint8_t **out,
                             size_t *len);
/* Removes a snapshot and its chunks. 0 or DB_NOTFOUND. */
int store_snapshot_delete(struct db *db, const char *cluster_id, const char *id);
/* Replaces the restore document of a snapshot, run by replica runner. */
int store_snapshot_set_restore(struct db *db, const char *id, const char *json,
                               const char *runner);
/*
 * What a server that stopped left pending or running can never finish.
 * Snapshots become failed; restores and upgrades in progress become
 * "interrupted". Which tasks: with me NULL (a single server) all of them;
 * else at start-up (others_only false) those run by me (a previous run) or
 * by a replica whose membership lease is over, and in the controllers'
 * sweep (others_only true) only the latter. *changed gets how many rows
 * were touched.
 */
int store_snapshots_recover(struct db *db, int64_t now, const char *me, bool others_only,
                            int64_t *changed);

/* One cluster's schedule with its newest scheduled snapshot (-1: none) and
 * whether one is pending or running. */
struct store_snap_due {
    const char *cluster_id;
    int64_t interval_min, retention, last_created;
    bool in_progress;
};
/* Every cluster with a schedule (interval > 0). */
int store_snapshot_schedules(struct db *db, int (*fn)(void *ud, const struct store_snap_due *d),
                             void *ud);
/* Deletes the scheduled snapshots of cluster_id beyond retention: done ones
 * but the newest `retention`, and failed ones but the newest `retention`.
 * fn hears each deleted one (id, node) first. */
int store_snapshots_prune(struct db *db, const char *cluster_id, int64_t retention,
                          int (*fn)(void *ud, const char *id, const char *node), void *ud);

/* The roles the cluster agent last reported for node (its Kubernetes
 * node-role labels) as drover roles: "etcd,controlplane,worker" (control-plane
 * and master count as controlplane). "" if unknown. 0 or a code. */
int store_node_roles(struct db *db, const char *cluster_id, const char *node, char *out,
                     size_t cap);

/* ---- upgrades ---- */

/* Replaces the cluster's upgrade document, run by replica runner. */
int store_upgrade_put(struct db *db, const char *cluster_id, const char *doc, int64_t now,
                      const char *runner);
/* The document into a malloc'd *doc (caller frees). 0 or DB_NOTFOUND. */
int store_upgrade_get(struct db *db, const char *cluster_id, char **doc);

#endif
