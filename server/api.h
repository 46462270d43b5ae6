/*
 * api: drover-server's /v3 JSON API (tokens, users, clusters, members,
 * nodes, events) on the datastore.
 *
 * Every request is authenticated and answered from a datastore worker: the
 * loop thread only routes, reads the body and writes the answer, so it never
 * waits on the database or on password hashing. Owns the requests it has
 * accepted until it answers them, the failed-login throttle and its timers.
 */
#ifndef DROVER_SERVER_API_H
#define DROVER_SERVER_API_H

#include <stdbool.h>

#include "common/loop.h"
#include "server/auth.h"
#include "server/db_pool.h"
#include "server/http_server.h"

struct api;

struct api_cfg {
    const char *server_url;     /* for manifest URLs; copied */
    const char *ca_checksum;    /* what manifests pin; copied */
    const char *ca_pem;         /* what kubeconfigs trust; copied */
    struct auth_sealkey seal;   /* registration-token key */
    /* Called on the loop thread after a cluster was deleted (to drop its
     * agents' tunnels). May be NULL. */
    void (*on_cluster_deleted)(void *ud, const char *cluster_id);
    /* Called on the loop thread after a write that changed who has which
     * role in cluster_id (NULL: possibly in every cluster: a user deleted,
     * an admin flag changed). May be NULL. */
    void (*on_membership_changed)(void *ud, const char *cluster_id);
    /* Loop thread: whether node of cluster has a node-agent tunnel now, for
     * the live agentConnected of /nodes. May be NULL (the stored value). */
    bool (*node_connected)(void *ud, const char *cluster_id, const char *node);
    void *ud;
};

/* NULL without memory. */
struct api *api_new(struct loop *l, const struct api_cfg *cfg);
/* The datastore is ready: requests are served from now on (until then they
 * get 503). */
void api_set_pool(struct api *a, struct db_pool *pool);
/* Answers what it still holds (503 or its delayed answer) and frees. Free
 * the pool first, so every submitted request has come back. NULL is a no-op. */
void api_free(struct api *a);

/* Handles a request whose path starts with /v3/ (except /v3/connect),
 * answering it now or later. */
void api_dispatch(struct api *a, struct hs_req *r);

/*
 * For the /k8s proxy: checks r's bearer token and that its user has a role
 * in cluster (admins have one in every cluster), on the datastore. Then
 * calls ok(r, username, ud) on the loop thread, r still unanswered; or
 * answers 401, 404 (also for a cluster the user may not see) or 503 itself
 * and does not call ok.
 */
void api_authorize_cluster(struct api *a, struct hs_req *r, const char *cluster,
                           void (*ok)(struct hs_req *r, const char *username, void *ud),
                           void *ud);

#endif
