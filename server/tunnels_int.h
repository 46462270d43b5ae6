/*
 * tunnels_int: what the tunnel modules share and nothing else sees: the
 * registry's types (struct tunnels, one cluster_entry per cluster, one link
 * per agent tunnel) and the calls between the modules.
 *
 *   tunnels.c          the registry: links, agent tunnel callbacks, admitting
 *                      an agent, lookups, stats, teardown
 *   tunnels_role.c     the cluster role: which node agent stands in for a
 *                      missing cluster agent, claims with several replicas
 *   tunnels_connect.c  /v3/connect: the agent's identity headers and its
 *                      credential check, before it is admitted
 *
 * Loop thread only, like the public API in tunnels.h.
 */
#ifndef DROVER_SERVER_TUNNELS_INT_H
#define DROVER_SERVER_TUNNELS_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/hmap.h"
#include "server/tunnels.h"

#define ID_MAX 63
#define ROLES_MAX 127

enum link_kind { LINK_CLUSTER, LINK_NODE };

struct link {
    struct tunnels *ts;
    struct tunnel *t;
    enum link_kind kind;
    char cluster[ID_MAX + 1];
    char node[ID_MAX + 1];
    char roles[ROLES_MAX + 1];  /* node agents: "etcd,controlplane" */
    uint64_t since_ms;
    bool eligible;              /* node: says it reaches the kube-apiserver */
    struct link *next;          /* node links of the same cluster */
};

struct cluster_entry {
    struct link *agent;         /* the cluster agent, if connected */
    struct link *nodes;         /* node agents */
    struct link *acting;        /* the node agent holding the cluster role */
    struct link *claiming;      /* replicas: the node agent whose claim of the
                                 * role is being written */
};

struct tunnels {
    struct loop *loop;
    struct tunnels_cfg cfg;
    struct hmap *clusters;      /* cluster id -> struct cluster_entry */
    size_t ncluster_links, nnode_links;
    uint64_t takeovers, step_downs;     /* for /metrics */
    struct db_pool *pool;       /* NULL until the datastore is ready */
    struct linkstate *ls;
    struct tunnels_hooks hooks;
    uint64_t grace_until;       /* no node agent stands in before this */
    struct loop_timer grace;
    struct tunnels_remote remote;   /* other replicas, if any */
    struct tunnels_node_remote node_remote;     /* their node agents */
};

/* The registry entry of cluster (created when create; NULL without memory
 * or, unless create, when the cluster has no link). */
struct cluster_entry *tnl_entry_for(struct tunnels *ts, const char *cluster, bool create);

/* Upgrades the connection of an admitted agent into a tunnel and registers
 * lk (takes ownership of lk; answer is the 101 response to send). */
void tnl_admit(struct tunnels *ts, struct hs_req *r, struct link *lk,
               const char *answer, size_t alen);

/* tunnels_role.c: the cluster lost its link (lost) or may get one: hand
 * the cluster role to an eligible node agent if there is one. */
void tnl_relink(struct tunnels *ts, const char *cluster, bool lost);
/* The cluster agent is back: the acting node agent hands the role back. */
void tnl_step_down(struct cluster_entry *e);
/* A node agent says whether it can stand in for the cluster agent. */
void tnl_node_eligible(struct link *lk, bool eligible);

#endif
