/*
 * peers: several drover-server replicas on one PostgreSQL
 * (docs/REPLICAS.md).
 *
 * Membership: each replica renews its row in the peers table every second
 * (a lease of lease_ms) on the datastore pool and reads back the live
 * replicas and the tunnel owners (which replica holds the link to each
 * cluster; recorded by linkstate with the cluster's state). Those two lists
 * are kept in memory, so routing a request never waits on the datastore.
 * After each refresh the tunnels hear of it (tunnels_recheck), so a node
 * agent standing in steps down when a cluster agent is up on another
 * replica, or claims the role when no replica holds the cluster.
 *
 * Peer links: to every other live replica this one keeps a tunnel
 * (common/tunnel.c frames and flow control over wss://<advertise>/v3/peer,
 * TLS verified against the shared CA, the peer token as bearer credential).
 * A stream for a cluster held elsewhere is opened on the link to its owner
 * as service "peer.<service>" with "<cluster>\n<meta>" as metadata; the
 * owner opens <service> on its local agent tunnel and splices the two
 * (server/splice.c). Node tasks address one node agent instead, with
 * "<cluster>/<node>\n<meta>". Streams are only ever forwarded one hop.
 *
 * Owns the links (both directions), the membership and owner caches and
 * the heartbeat timer. Loop thread only.
 */
#ifndef DROVER_SERVER_PEERS_H
#define DROVER_SERVER_PEERS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/loop.h"
#include "common/tunnel.h"
#include "server/db_pool.h"
#include "server/http_server.h"
#include "server/tunnels.h"

#define PEERS_ID_MAX 63
#define PEERS_TOKEN_MAX 4096

struct peers;

struct peers_cfg {
    const char *id;             /* this replica's peer id (copied) */
    const char *advertise_url;  /* https://... other replicas dial (copied) */
    const char *token;          /* the shared peer token (copied) */
    size_t token_len;
    const char *ca_pem;         /* the shared CA, to verify peers (copied) */
    size_t ca_len;
    struct tunnel_cfg tunnel;   /* keepalive and window of the peer links */
    uint64_t lease_ms;          /* membership lease */
    /* Another replica changed cluster's membership (RBAC to push again if
     * we hold the cluster's agent). May be NULL. */
    void (*on_rbac_changed)(void *ud, const char *cluster);
    void *ud;
};

/* Installs itself as ts's route to remote clusters. NULL (logged) on
 * failure. */
struct peers *peers_new(struct loop *l, struct tunnels *ts, const struct peers_cfg *cfg);
/* The datastore is ready: the heartbeat starts. */
void peers_set_pool(struct peers *p, struct db_pool *pool);
/* This replica holds the controllers' lease: it sweeps the links of dead
 * replicas (marks their clusters disconnected). */
void peers_set_controller(struct peers *p, bool on);
/* Handles GET /v3/peer (answers 400/401/503 itself or takes the
 * connection). */
void peers_accept(struct peers *p, struct hs_req *r);
/* Tells every other replica that cluster's membership changed, so the one
 * holding its agent pushes RBAC again (a CONTROL message on the links). */
void peers_rbac_changed(struct peers *p, const char *cluster);
/* Clean shutdown, after the pool is gone (blocking, on its own connection):
 * ends replica id's leases and drops its tunnel rows, so the others take
 * over at once instead of waiting for the leases to run out. */
void peers_leave(const char *datastore, const char *data_dir, const char *id);
/* Closes every link and frees. Free the pool first. NULL is a no-op. */
void peers_free(struct peers *p);

/* The replica holding cluster's link according to the last refresh, or
 * NULL. */
const char *peers_owner(struct peers *p, const char *cluster);

/* Opens service to node's agent in cluster, held by replica peer: a
 * stream addressed "<cluster>/<node>" on the link to peer (spliced there
 * onto that node agent's tunnel). NULL if the link is not up. */
struct tun_stream *peers_open_node(struct peers *p, const char *peer, const char *cluster,
                                   const char *node, const char *service, const void *meta,
                                   size_t meta_len, const struct tun_stream_ops *ops,
                                   void *sud);

struct peers_stats {
    size_t live, links_up, incoming, owners;
};
void peers_stats(struct peers *p, struct peers_stats *out);

#endif
