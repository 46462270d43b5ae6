/*
 * tunnels: the agents' side of drover-server. Serves GET /v3/connect
 * (credential check before the upgrade, then a tunnel) and keeps the registry
 * of live tunnels by cluster, so the proxy and the relay ports can find the
 * link to a cluster in O(1).
 *
 * Owns every agent tunnel. A cluster has at most one cluster-agent tunnel
 * (a newer connection replaces an older one) and any number of node-agent
 * tunnels.
 */
#ifndef DROVER_TUNNELS_H
#define DROVER_TUNNELS_H

#include <stddef.h>

#include "common/tunnel.h"
#include "server/http_server.h"

struct tunnels;

struct tunnels_cfg {
    struct tunnel_cfg tunnel;
    const char *agent_token;    /* the credential agents present */
};

struct tunnels *tunnels_new(struct loop *l, const struct tunnels_cfg *cfg);
/* Closes every tunnel (agents see "server shutting down") and frees. */
void tunnels_free(struct tunnels *ts);

/* Handles GET /v3/connect: answers 400/401 itself, or takes the connection. */
void tunnels_connect(struct tunnels *ts, struct hs_req *r);

/* The tunnel that carries new streams for cluster, or NULL if none is up. */
struct tunnel *tunnels_for_cluster(struct tunnels *ts, const char *cluster);

struct tunnels_stats {
    size_t cluster_agents, node_agents, streams;
    size_t buffered;            /* bytes held in tunnel buffers */
};
void tunnels_stats(struct tunnels *ts, struct tunnels_stats *out);

#endif
