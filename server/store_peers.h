/*
 * store_peers: the SQL behind several replicas on one datastore
 * (docs/REPLICAS.md): the membership table (each row a lease its replica
 * renews), the tunnel owners (which replica holds a link to each cluster;
 * a row counts only while its holder's membership lease does), named
 * controller leases and the shared CA.
 *
 * Like store.h, every function runs on a datastore worker with that
 * worker's struct db and returns 0 or a negative db code. Times are unix
 * milliseconds of the datastore clients; replicas are expected to keep their
 * clocks in step (NTP), and leases are seconds long, so small skew is
 * harmless.
 */
#ifndef DROVER_SERVER_STORE_PEERS_H
#define DROVER_SERVER_STORE_PEERS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "server/db.h"

/* Renews (or creates) peer id's membership lease until expires_at. */
int store_peer_heartbeat(struct db *db, const char *id, const char *url, int64_t now,
                         int64_t expires_at);
/* Ends peer id's membership and controller leases now and drops its tunnel
 * rows (a clean shutdown). */
int store_peer_leave(struct db *db, const char *id);
/* Live peers (lease not expired at now), by id. */
int store_peers_live(struct db *db, int64_t now,
                     int (*fn)(void *ud, const char *id, const char *url), void *ud);

/* Tunnel owners whose holder is live at now: for each cluster the
 * preferred holder comes first (a cluster agent before a node agent, then
 * the newest). */
int store_peer_owners(struct db *db, int64_t now,
                      int (*fn)(void *ud, const char *cluster, const char *peer,
                                const char *kind), void *ud);
/*
 * Records what peer me sees of cluster's link, in one transaction with the
 * cluster's state:
 * - via "cluster-agent": me holds the cluster agent; the cluster is active.
 * - via "node/<name>": a claim of the stand-in role for one of me's node
 *   agents. Granted (*written true; the cluster degraded via it) only if no
 *   other live replica holds a link to the cluster; else me's row is
 *   dropped and the state left to the holder (*written false).
 * - via NULL: me's link went; the cluster is marked disconnected unless
 *   another live replica holds it (a cluster agent there puts the state
 *   back to active via cluster-agent).
 * Writes for one cluster conflict on its row, so on PostgreSQL concurrent
 * claims from several replicas are serialized: at most one wins.
 * *written is false when the state was left alone.
 */
int store_peer_set_link(struct db *db, const char *me, const char *cluster,
                        const char *via, int64_t since, int64_t now, bool *written);
/* Start-up of replica me: drops its rows of a previous run and marks
 * disconnected the active clusters no live replica holds. */
int store_peer_reset_links(struct db *db, const char *me, int64_t now, int64_t *changed);
/* The controller's sweep: marks disconnected the active clusters no live
 * replica holds, and forgets peers (and their rows) gone for a while. */
int store_peer_reap(struct db *db, int64_t now, int64_t *changed);

/* Takes or renews lease name for holder until expires_at if it is free,
 * expired or already holder's. *held says whether holder has it now. */
int store_lease_acquire(struct db *db, const char *name, const char *holder,
                        int64_t now, int64_t expires_at, bool *held);
/* Gives the lease up if holder has it. */
int store_lease_release(struct db *db, const char *name, const char *holder);

/* A node agent held by a replica. */
struct store_node_agent {
    const char *cluster, *node, *roles, *peer;
};
/* Replaces the node agents replica me holds with rows[0..n) (peer unused),
 * and drops those of forgotten replicas. */
int store_peer_put_node_agents(struct db *db, const char *me,
                               const struct store_node_agent *rows, size_t n);
/* The node agents other live replicas hold, by cluster, node, replica. */
int store_peer_node_agents(struct db *db, const char *me, int64_t now,
                           int (*fn)(void *ud, const struct store_node_agent *a), void *ud);

/* The shared CA: 0 with malloc'd copies (caller frees), or DB_NOTFOUND. */
int store_shared_ca_get(struct db *db, char **cert_pem, char **key_pem);
/* Stores the CA unless one is there already (then that one stays). */
int store_shared_ca_put(struct db *db, const char *cert_pem, const char *key_pem,
                        int64_t now);

#endif
