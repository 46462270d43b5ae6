/*
 * tunnels: the agents' side of drover-server. Serves GET /v3/connect
 * (credential check before the upgrade, then a tunnel) and keeps the registry
 * of live tunnels by cluster, so the proxy and the relay ports can find the
 * link to a cluster in O(1).
 *
 * An agent proves itself with its cluster's registration token: the check
 * (SHA-256 of the token against the cluster's row) runs on the datastore
 * pool, and a wrong or rotated token or a deleted cluster gets 401 before the
 * upgrade. When a cluster's link changes, the change is handed to linkstate,
 * which records it in the cluster's row.
 *
 * Takeover: a node agent that reaches the kube-apiserver with its own
 * service account says so ({"type":"eligible","eligible":true}). While the
 * cluster agent's tunnel is down, one eligible node agent (the one connected
 * longest) holds the cluster role: it is told so ({"type":"cluster-role",
 * "active":true}), new cluster streams go over its tunnel, its reports are
 * taken, and the cluster shows degraded via node/<name>. If it goes, or says
 * it is no longer eligible, the next one takes over at once; when a cluster
 * agent connects, the node agent is told to step down (active:false). The
 * choice is made on these events only, so node agents reconnecting never
 * move the role; and for dead-after after the server starts no node agent
 * takes it, so cluster agents reconnecting after a restart find it free.
 *
 * Several replicas (docs/REPLICAS.md): the cluster agent may be on another
 * replica. A node agent here then only claims the role through the
 * datastore (linkstate -> store_peer_set_link), which grants it while no
 * live replica holds a link to the cluster, to one replica at a time; the
 * answer comes back through tunnels_claimed(). After each ownership refresh
 * (tunnels_recheck, about every second) an acting node agent steps down if
 * a cluster agent is up on another replica, and a cluster nobody holds gets
 * a claim from here if a node agent can stand in. Meanwhile streams for the
 * cluster go to the replica holding its link.
 *
 * Owns every agent tunnel. A cluster has at most one cluster-agent tunnel
 * (a newer connection replaces an older one), any number of node-agent
 * tunnels, and at most one of those acting (only while no cluster agent is
 * connected).
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
    /* Bytes queued toward one agent before it is dropped (0 = conn's
     * default); an agent that reads nothing for dead-after is dropped too. */
    size_t agent_max_queued;
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
    /* The agent holding the cluster role (the cluster agent, or the node
     * agent acting for it) opened a stream for service. Return true after
     * taking it (tun_stream_accept or tun_stream_reset); false refuses it. */
    bool (*on_stream)(void *ud, const char *cluster, struct tun_stream *s,
                      const char *service);
    /* A cluster's link came up: its cluster agent connected, or a node
     * agent took the cluster role. */
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

/* The tunnel that carries new streams for cluster: the cluster agent's, else
 * the acting node agent's; NULL if neither is up. */
struct tunnel *tunnels_for_cluster(struct tunnels *ts, const char *cluster);

/*
 * Where streams for clusters without a local link go (several replicas:
 * server/peers.c reaches the replica holding the link). open returns a
 * stream carried to the cluster, or NULL; reachable says whether open has
 * a chance.
 */
enum tunnels_held { TUNNELS_HELD_NONE, TUNNELS_HELD_NODE, TUNNELS_HELD_AGENT };

struct tunnels_remote {
    struct tun_stream *(*open)(void *ud, const char *cluster, const char *service,
                               const void *meta, size_t meta_len,
                               const struct tun_stream_ops *ops, void *sud);
    bool (*reachable)(void *ud, const char *cluster);
    /* Whether another live replica holds cluster's link, and of which kind.
     * Non-NULL turns on the claimed takeover described above. */
    enum tunnels_held (*held)(void *ud, const char *cluster);
    void *ud;
};
/* Copied; NULL clears. */
void tunnels_set_remote(struct tunnels *ts, const struct tunnels_remote *r);
/* The datastore's answer to a claim of the cluster role for via
 * ("node/<name>"); linkstate's claim hook. */
void tunnels_claimed(struct tunnels *ts, const char *cluster, const char *via, bool granted);
/* The ownership records were refreshed (peers): step down or claim where
 * they say so. */
void tunnels_recheck(struct tunnels *ts);
/* Whether a stream to cluster can be opened here or through a peer. */
bool tunnels_reachable(struct tunnels *ts, const char *cluster);
/* Opens a stream for service to cluster: over the local link if there is
 * one, else through the replica holding it; NULL if neither. */
struct tun_stream *tunnels_open_stream(struct tunnels *ts, const char *cluster,
                                       const char *service, const void *meta,
                                       size_t meta_len, const struct tun_stream_ops *ops,
                                       void *ud);

/* Whether node has a node-agent tunnel up in cluster. */
bool tunnels_node_connected(struct tunnels *ts, const char *cluster, const char *node);
/* Calls fn for each node with a node-agent tunnel in cluster. */
void tunnels_each_node(struct tunnels *ts, const char *cluster,
                       void (*fn)(void *ud, const char *node), void *ud);
/* Whether roles, a node agent's comma list ("etcd,controlplane"), holds
 * role. */
bool tunnels_roles_has(const char *roles, const char *role);
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
/* Calls fn for each cluster with a link (a cluster agent or an acting node
 * agent). */
void tunnels_each_cluster(struct tunnels *ts, void (*fn)(void *ud, const char *cluster),
                          void *ud);

/*
 * Node agents held by other replicas (server/nodedir.c): each calls fn for
 * every such node agent of cluster (one per node); open returns a stream to
 * node's agent carried through its replica, or NULL.
 */
struct tunnels_node_remote {
    void (*each)(void *ud, const char *cluster,
                 void (*fn)(void *fud, const char *node, const char *roles), void *fud);
    struct tun_stream *(*open)(void *ud, const char *cluster, const char *node,
                               const char *service, const void *meta, size_t meta_len,
                               const struct tun_stream_ops *ops, void *sud);
    void *ud;
};
/* Copied; NULL clears. */
void tunnels_set_node_remote(struct tunnels *ts, const struct tunnels_node_remote *r);
/* Calls fn for each local node-agent tunnel of every cluster. */
void tunnels_each_node_agent_all(struct tunnels *ts,
                                 void (*fn)(void *ud, const char *cluster, const char *node,
                                            const char *roles),
                                 void *ud);
/* Calls fn for each node with a node agent in cluster, here (first) or on
 * another replica; a node is reported once. */
void tunnels_each_node_anywhere(struct tunnels *ts, const char *cluster,
                                void (*fn)(void *ud, const char *node, const char *roles),
                                void *ud);
/* tunnels_find_node, then the other replicas' node agents: true if found
 * (its name in name_out[cap], may be NULL). */
bool tunnels_find_node_anywhere(struct tunnels *ts, const char *cluster, const char *node,
                                const char *role, char *name_out, size_t cap);
/* Opens a stream for service to node's agent in cluster: over its local
 * tunnel, else through the replica holding it; NULL if neither. */
struct tun_stream *tunnels_open_node_stream(struct tunnels *ts, const char *cluster,
                                            const char *node, const char *service,
                                            const void *meta, size_t meta_len,
                                            const struct tun_stream_ops *ops, void *ud);

struct tunnels_stats {
    size_t cluster_agents, node_agents, streams;
    size_t buffered;            /* bytes held in tunnel buffers */
    size_t acting;              /* clusters carried by a node agent here now */
    uint64_t takeovers;         /* node agents given the cluster role, ever */
    uint64_t step_downs;        /* ... and handed it back to a cluster agent */
};
void tunnels_stats(struct tunnels *ts, struct tunnels_stats *out);

#endif
