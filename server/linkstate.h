/*
 * linkstate: writes what the tunnels see into the clusters table: when a
 * cluster's link changes (its cluster agent connects or goes, a node agent
 * stands in for it), the cluster's state (active via the cluster agent,
 * degraded via a node agent, disconnected), connection {via, since} and
 * lastSeen.
 *
 * Writes go through the datastore pool and never block the loop. They are
 * coalesced per cluster: at most one write per cluster is in flight, and it
 * always carries the latest state, so an older write can never land after a
 * newer one (PostgreSQL workers run in any order). At most LINKSTATE_INFLIGHT
 * writes run at once, so a reconnect storm of thousands of agents does not
 * fill the pool's queue; a failed write is retried after a pause.
 *
 * Owns one entry per cluster with a change not yet written, and a timer.
 * Loop thread only.
 */
#ifndef DROVER_SERVER_LINKSTATE_H
#define DROVER_SERVER_LINKSTATE_H

#include <stdbool.h>
#include <stddef.h>

#include "common/loop.h"
#include "server/db_pool.h"

#define LINKSTATE_INFLIGHT 16

struct linkstate;

/* NULL without memory. */
struct linkstate *linkstate_new(struct loop *l, struct db_pool *pool);
/* Free the pool first (its done callbacks refer to ls). NULL is a no-op. */
void linkstate_free(struct linkstate *ls);

/* Several replicas: each write also records (or drops) replica peer_id as
 * the holder of the cluster's link, in one transaction, and a "down" leaves
 * the state alone while another live replica holds the cluster agent
 * (server/store_peers.h). Copied. */
void linkstate_set_replica(struct linkstate *ls, const char *peer_id);

/* Several replicas: a write of via "node/<name>" is a claim of the stand-in
 * role (store_peer_set_link); fn hears, once it is written, whether it was
 * granted. A claim overtaken by a newer change before it was written is
 * not reported. NULL clears. */
void linkstate_set_claim_hook(struct linkstate *ls,
                              void (*fn)(void *ud, const char *cluster, const char *via,
                                         bool granted),
                              void *ud);

/* The cluster's link is now via ("cluster-agent", "node/<name>") or down
 * (via NULL), as of now. */
void linkstate_set(struct linkstate *ls, const char *cluster, const char *via);

/* The state a link via gives (pure): "active" via "cluster-agent",
 * "degraded" via "node/<name>", "disconnected" for NULL. */
const char *linkstate_state(const char *via);

/* Clusters with a change not yet written (for tests and metrics). */
size_t linkstate_pending(const struct linkstate *ls);

#endif
