/*
 * tunnels_connect: /v3/connect, an agent dialling in. Reads and checks the
 * identity headers (cluster, role, node, node roles) and the bearer token,
 * checks the token against the datastore on the pool, then hands the agent
 * to tnl_admit (tunnels.c), or answers 400 / 401 / 503. Owns the requests
 * waiting for their credential check. See tunnels.h and tunnels_int.h.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/log.h"
#include "proto/frame.h"
#include "proto/ws.h"
#include "server/auth.h"
#include "server/store.h"
#include "server/store_snapshots.h"
#include "server/tunnels_int.h"

static bool valid_id(const char *s, size_t n)
{
    if (n == 0 || n > ID_MAX)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.'))
            return false;
    }
    return true;
}

static bool valid_roles(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= 'a' && s[i] <= 'z') || s[i] == ',' || s[i] == '-'))
            return false;
    return true;
}

/* Hashes the bearer token into hash; false if there is none. */
static bool read_token(const struct hs_req *r, char hash[AUTH_HEX_SHA256])
{
    const struct http_header *h = hs_header(r, "authorization");
    if (!h || h->value_len < 8 || h->value_len > 512 ||
        strncasecmp(h->value, "bearer ", 7) != 0)
        return false;
    auth_sha256_hex(h->value + 7, h->value_len - 7, hash);
    return true;
}

/* Reads the identity headers into lk; returns an error text or NULL. */
static const char *read_identity(const struct hs_req *r, struct link *lk)
{
    const struct http_header *c = hs_header(r, "x-drover-cluster");
    const struct http_header *role = hs_header(r, "x-drover-role");
    const struct http_header *node = hs_header(r, "x-drover-node");
    if (!c || !valid_id(c->value, c->value_len))
        return "missing or invalid X-Drover-Cluster";
    memcpy(lk->cluster, c->value, c->value_len);
    lk->cluster[c->value_len] = '\0';
    if (!role || (role->value_len == 7 && memcmp(role->value, "cluster", 7) == 0)) {
        lk->kind = LINK_CLUSTER;
    } else if (role->value_len == 4 && memcmp(role->value, "node", 4) == 0) {
        lk->kind = LINK_NODE;
    } else {
        return "X-Drover-Role must be cluster or node";
    }
    if (node) {
        if (!valid_id(node->value, node->value_len))
            return "invalid X-Drover-Node";
        memcpy(lk->node, node->value, node->value_len);
        lk->node[node->value_len] = '\0';
    } else if (lk->kind == LINK_NODE) {
        return "a node agent must send X-Drover-Node";
    }
    const struct http_header *roles = hs_header(r, "x-drover-node-roles");
    if (roles && lk->kind == LINK_NODE) {
        if (roles->value_len > ROLES_MAX || !valid_roles(roles->value, roles->value_len))
            return "invalid X-Drover-Node-Roles (a comma list of etcd, controlplane, worker)";
        memcpy(lk->roles, roles->value, roles->value_len);
        lk->roles[roles->value_len] = '\0';
    }
    return NULL;
}

/* A /v3/connect waiting for its credential check. */

struct pending {
    struct tunnels *ts;
    struct hs_req *r;
    struct link *lk;
    char hash[AUTH_HEX_SHA256];
    char answer[512];
    size_t alen;
};

static int check_work(struct db *db, void *arg)
{
    struct pending *p = arg;
    int rc = store_cluster_token_ok(db, p->lk->cluster, p->hash);
    /* A node agent without DROVER_NODE_ROLES (the manifest leaves it out)
     * gets its node's roles as the cluster agent last reported them. */
    if (rc == 1 && p->lk->kind == LINK_NODE && !p->lk->roles[0] &&
        store_node_roles(db, p->lk->cluster, p->lk->node, p->lk->roles,
                         sizeof(p->lk->roles)) < 0)
        p->lk->roles[0] = '\0';
    return rc;
}


static void check_done(void *arg, int rc)
{
    struct pending *p = arg;
    if (rc == 1 && hs_client_alive(p->r)) {
        tnl_admit(p->ts, p->r, p->lk, p->answer, p->alen);
    } else if (rc == 1 || rc == 0) {
        if (rc == 0)
            log_warn("refused agent from %s: bad credentials", hs_peer(p->r));
        hs_error(p->r, 401, "Unauthorized", "invalid agent credentials");
        free(p->lk);
    } else {
        hs_error(p->r, 503, "ServiceUnavailable", "cannot check credentials now: %s",
                 db_code_str(rc));
        free(p->lk);
    }
    free(p);
}

void tunnels_connect(struct tunnels *ts, struct hs_req *r)
{
    struct pending *p = calloc(1, sizeof(*p));
    const char *why = NULL;
    ssize_t alen = p ? ws_upgrade_answer(hs_request(r), TUN_SUBPROTOCOL, p->answer,
                                         sizeof(p->answer), &why) : -1;
    if (!p || !(p->lk = calloc(1, sizeof(*p->lk)))) {
        free(p);
        hs_error(r, 503, "ServiceUnavailable", "out of memory");
        return;
    }
    if (alen < 0 || (why = read_identity(r, p->lk))) {
        hs_error(r, 400, "BadRequest", "%s", why);
    } else if (!ts->pool) {
        hs_error(r, 503, "ServiceUnavailable", "the datastore is not ready yet");
    } else if (!read_token(r, p->hash)) {
        log_warn("refused agent from %s: bad credentials", hs_peer(r));
        hs_error(r, 401, "Unauthorized", "invalid agent credentials");
    } else {
        p->ts = ts;
        p->r = r;
        p->alen = (size_t)alen;
        int rc = db_pool_submit_read(ts->pool, check_work, check_done, p);
        if (rc == 0)
            return;
        hs_error(r, 503, "ServiceUnavailable", "the server is busy: %s", db_code_str(rc));
    }
    free(p->lk);
    free(p);
}
