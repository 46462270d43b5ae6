/*
 * upgrade: rolls an upgrade over a cluster's node agents (POST
 * /v3/clusters/{id}/upgrade). Each connected node agent (on this replica or,
 * through its replica, on another) runs its
 * DROVER_UPGRADE_HOOK with the version (the "upgrade" service of
 * docs/PROTOCOL.md §11): control-plane nodes first, then the others, by
 * name within each group; at most `concurrency` at once; after the first
 * failure no node is started (those running finish) and the rest are
 * marked skipped.
 *
 * Progress is a JSON document ({version, concurrency, state, startedAt,
 * finishedAt, nodes:[{node, roles, state, message}]}) kept in the datastore
 * (cluster_upgrades) after every change, so GET /v3/clusters/{id} shows it
 * from any replica; a rollout the server did not see finish reads
 * "interrupted" after a restart (store_snapshots_recover).
 *
 * Owns the rollouts in progress. Loop thread only.
 */
#ifndef DROVER_SERVER_UPGRADE_H
#define DROVER_SERVER_UPGRADE_H

#include <stddef.h>

#include "server/db_pool.h"
#include "server/tunnels.h"

#define UPGRADE_CONCURRENCY_MAX 100

struct upgrades;

struct upgrades *upgrades_new(struct loop *l, struct tunnels *ts);
void upgrades_set_pool(struct upgrades *u, struct db_pool *pool);
/* Several replicas: this one's peer id, recorded with each rollout so only
 * this replica (or the controllers' sweep, once it is gone) marks it
 * interrupted. */
void upgrades_set_replica(struct upgrades *u, const char *id);
/* Free the pool first. NULL is a no-op. */
void upgrades_free(struct upgrades *u);

/* Starts a rollout of version over cluster's connected node agents.
 * 202 with the document (malloc'd) in *doc, and saved(ud) follows on the
 * loop (never from inside this call) once the rollout's first document is
 * stored, so an answer sent then is seen by any later GET; 409 with why in
 * msg (a rollout of the cluster is running here, or no node agent is
 * connected); 503 without memory. saved is called only after a 202. */
int upgrades_start(struct upgrades *u, const char *cluster, const char *version,
                   int concurrency, void (*saved)(void *ud), void *ud, char **doc, char *msg,
                   size_t msgcap);

#endif
