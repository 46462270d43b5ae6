/*
 * api_snapshots: the /v3 endpoints of etcd snapshots and upgrades:
 *
 *   POST   /v3/clusters/{id}/etcdsnapshots               {node?}   owner -> 202
 *   GET    /v3/clusters/{id}/etcdsnapshots               (list)    any role
 *   GET    /v3/clusters/{id}/etcdsnapshots/{sid}                   any role
 *   GET    /v3/clusters/{id}/etcdsnapshots/{sid}/download          owner
 *   POST   /v3/clusters/{id}/etcdsnapshots/{sid}/restore {node?}   owner -> 202
 *   DELETE /v3/clusters/{id}/etcdsnapshots/{sid}                   owner -> 204
 *   POST   /v3/clusters/{id}/upgrade {version, concurrency?}       owner -> 202
 *
 * Downloads are owner-only because a snapshot holds every Secret of the
 * cluster; its metadata is visible to every role. Admins own every cluster.
 *
 * These are answered here rather than through api.c's route tables because
 * they need the loop thread between datastore stages (the node agents'
 * tunnels) and a streamed answer (the download, chunk by chunk from the
 * datastore with backpressure: at most one chunk plus the connection's
 * high-water mark in memory). Authentication is the same: the bearer
 * token's hash is looked up on the pool, never on the loop.
 *
 * Owns the requests it has taken until answered, and the downloads.
 */
#ifndef DROVER_SERVER_API_SNAPSHOTS_H
#define DROVER_SERVER_API_SNAPSHOTS_H

#include <stdbool.h>

#include "server/db_pool.h"
#include "server/http_server.h"
#include "server/snapshots.h"
#include "server/upgrade.h"

struct snapapi;

struct snapapi *snapapi_new(struct loop *l, struct snapshots *sn, struct upgrades *up);
void snapapi_set_pool(struct snapapi *sa, struct db_pool *pool);
/* Free the pool first. NULL is a no-op. */
void snapapi_free(struct snapapi *sa);

/* Answers r (now or later) and returns true if its path is one of the
 * above; false leaves r alone. */
bool snapapi_dispatch(struct snapapi *sa, struct hs_req *r);

#endif
