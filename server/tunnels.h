/*
 * tunnels: the agents' side of drover-server. Serves GET /v3/connect
 * (credential check before the upgrade, then a tunnel) and keeps the registry
 * of live tunnels by cluster, so the proxy and the relay ports can find the
 * link to a cluster in O(1).
 *
 * An agent proves itself with its cluster's registration token: the check
 * (SHA-256 of the token against the cluster's row) runs on the datastore
 * pool, and a wrong or rotated token or a deleted cluster gets 401 before the
 * upgrade. When a cluster agent's tunnel comes up or goes down, the change is
 * handed to linkstate, which records it in the cluster's row.
 *
 * Owns every agent tunnel. A cluster has at most one cluster-agent tunnel
 * (a newer connection replaces an older one) and any number of node-agent
 * tunnels.
 */
#ifndef DROVER_TUNNELS_H
#define DROVER_TUNNELS_H

#include <stdbool.h>
#include <stddef.h>

#include "common/tunnel.h"
#include "server/db_pool.h"
#include "server/http_server.h"
#include "server/linkstate.h"

struct tunnels;

struct tunnels_cfg {
    struct tunnel_cfg tunnel;
};

struct tunnels *tunnels_new(struct loop *l, const struct tunnels_cfg *cfg);
/* Closes every tunnel (agents see "server shutting down") and frees. Free
 * the pool first: a credential check in flight refers to ts. */
void tunnels_free(struct tunnels *ts);

/* The datastore is ready: agents are admitted from now on (503 before).
 * Neither is owned; ls may be NULL. */
void tunnels_set_store(struct tunnels *ts, struct db_pool *pool, struct linkstate *ls);

/* What other modules hear from the tunnels (loop thread). */
struct tunnels_hooks {
    /* A cluster agent opened a stream for service. Return true after taking
     * it (tun_stream_accept or tun_stream_reset); false refuses it. */
    bool (*on_stream)(void *ud, const char *cluster, struct tun_stream *s,
                      const char *service);
    /* A cluster agent's tunnel came up. */
    void (*on_cluster_up)(void *ud, const char *cluster);
    void *ud;
};
/* Copied; NULL clears. */
void tunnels_set_hooks(struct tunnels *ts, const struct tunnels_hooks *h);

/* Handles GET /v3/connect: answers 400/401/503 itself (maybe after a
 * datastore lookup), or takes the connection. */
void tunnels_connect(struct tunnels *ts, struct hs_req *r);

/* Closes every tunnel of a cluster that was deleted. */
void tunnels_drop_cluster(struct tunnels *ts, const char *cluster);

/* The tunnel that carries new streams for cluster, or NULL if none is up. */
struct tunnel *tunnels_for_cluster(struct tunnels *ts, const char *cluster);

/* Whether node has a node-agent tunnel up in cluster. */
bool tunnels_node_connected(struct tunnels *ts, const char *cluster, const char *node);
/* Calls fn for each node with a node-agent tunnel in cluster. */
void tunnels_each_node(struct tunnels *ts, const char *cluster,
                       void (*fn)(void *ud, const char *node), void *ud);
/* A node agent's tunnel in cluster: the one of node (NULL: any) whose
 * X-Drover-Node-Roles lists role (NULL: any role). Its node name goes into
 * name_out[cap] (may be NULL). NULL if there is none. */
struct tunnel *tunnels_find_node(struct tunnels *ts, const char *cluster, const char *node,
                                 const char *role, char *name_out, size_t cap);
/* Calls fn for each node-agent tunnel of cluster with its node and roles
 * ("" if it sent none). fn must not close tunnels. */
void tunnels_each_node_agent(struct tunnels *ts, const char *cluster,
                             void (*fn)(void *ud, const char *node, const char *roles,
                                        struct tunnel *t),
                             void *ud);
/* Calls fn for each cluster whose cluster agent is connected. */
void tunnels_each_cluster(struct tunnels *ts, void (*fn)(void *ud, const char *cluster),
                          void *ud);

struct tunnels_stats {
    size_t cluster_agents, node_agents, streams;
    size_t buffered;            /* bytes held in tunnel buffers */
};
void tunnels_stats(struct tunnels *ts, struct tunnels_stats *out);

#endif
