/*
 * tunnels: /v3/connect and the registry of agent tunnels. See tunnels.h.
 */
#include "server/tunnels.h"

#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/hmap.h"
#include "common/log.h"
#include "proto/frame.h"
#include "proto/ws.h"

#define ID_MAX 63

enum link_kind { LINK_CLUSTER, LINK_NODE };

struct link {
    struct tunnels *ts;
    struct tunnel *t;
    enum link_kind kind;
    char cluster[ID_MAX + 1];
    char node[ID_MAX + 1];
    uint64_t since_ms;
    struct link *next;          /* node links of the same cluster */
};

struct cluster_entry {
    struct link *agent;         /* the cluster agent, if connected */
    struct link *nodes;         /* node agents */
};

struct tunnels {
    struct loop *loop;
    struct tunnels_cfg cfg;
    struct hmap *clusters;      /* cluster id -> struct cluster_entry */
    size_t ncluster_links, nnode_links;
};

struct tunnels *tunnels_new(struct loop *l, const struct tunnels_cfg *cfg)
{
    struct tunnels *ts = calloc(1, sizeof(*ts));
    if (!ts)
        return NULL;
    ts->loop = l;
    ts->cfg = *cfg;
    ts->clusters = hmap_new();
    if (!ts->clusters) {
        free(ts);
        return NULL;
    }
    return ts;
}

/* ---- registry ---- */

static struct cluster_entry *entry_for(struct tunnels *ts, const char *cluster, bool create)
{
    struct cluster_entry *e = hmap_get(ts->clusters, cluster);
    if (e || !create)
        return e;
    e = calloc(1, sizeof(*e));
    if (!e)
        return NULL;
    if (hmap_put(ts->clusters, cluster, e) == e) {
        free(e);
        return NULL;
    }
    return e;
}

static void unregister(struct link *lk)
{
    struct tunnels *ts = lk->ts;
    struct cluster_entry *e = entry_for(ts, lk->cluster, false);
    if (!e)
        return;
    if (lk->kind == LINK_CLUSTER) {
        if (e->agent == lk) {
            e->agent = NULL;
            ts->ncluster_links--;
        }
    } else {
        for (struct link **pp = &e->nodes; *pp; pp = &(*pp)->next) {
            if (*pp == lk) {
                *pp = lk->next;
                ts->nnode_links--;
                break;
            }
        }
    }
    if (!e->agent && !e->nodes) {
        hmap_del(ts->clusters, lk->cluster);
        free(e);
    }
}

static void on_down(struct tunnel *t, const char *why)
{
    struct link *lk = tunnel_ud(t);
    log_info("tunnel down: cluster=%s %s%s (%s)", lk->cluster,
             lk->kind == LINK_CLUSTER ? "cluster-agent" : "node=",
             lk->kind == LINK_CLUSTER ? "" : lk->node, why);
    unregister(lk);
    free(lk);
}

static void on_agent_open(struct tunnel *t, struct tun_stream *s, const char *service,
                          const uint8_t *meta, size_t meta_len)
{
    (void)t;
    (void)meta;
    (void)meta_len;
    char why[128];
    snprintf(why, sizeof(why), "the server offers no service \"%s\"", service);
    tun_stream_reset(s, TUN_RESET_REFUSED, why);
}

static void on_agent_control(struct tunnel *t, const uint8_t *json, size_t len)
{
    struct link *lk = tunnel_ud(t);
    log_debug("control from cluster=%s: %.*s", lk->cluster, (int)(len > 200 ? 200 : len),
              (const char *)json);
}

static const struct tunnel_ops agent_tunnel_ops = {
    .on_open = on_agent_open,
    .on_control = on_agent_control,
    .on_down = on_down,
};

static int do_register(struct tunnels *ts, struct link *lk)
{
    struct cluster_entry *e = entry_for(ts, lk->cluster, true);
    if (!e)
        return -1;
    if (lk->kind == LINK_CLUSTER) {
        struct link *old = e->agent;
        e->agent = lk;
        ts->ncluster_links++;
        if (old) {
            log_info("cluster=%s: a new cluster-agent connection replaces the one from %s",
                     lk->cluster, tunnel_peer(old->t));
            e->agent = old;     /* so that closing it unregisters it */
            unregister(old);
            e = entry_for(ts, lk->cluster, true);
            if (!e)
                return -1;
            e->agent = lk;
            tunnel_close(old->t, WS_CLOSE_POLICY, "replaced by a newer connection");
            free(old);
        }
    } else {
        lk->next = e->nodes;
        e->nodes = lk;
        ts->nnode_links++;
    }
    return 0;
}

struct tunnel *tunnels_for_cluster(struct tunnels *ts, const char *cluster)
{
    struct cluster_entry *e = entry_for(ts, cluster, false);
    if (!e)
        return NULL;
    if (e->agent)
        return e->agent->t;
    return NULL;
}

/* ---- /v3/connect ---- */

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

static bool token_ok(struct tunnels *ts, const struct hs_req *r)
{
    const struct http_header *h = hs_header(r, "authorization");
    const char *want = ts->cfg.agent_token;
    size_t wl = strlen(want);
    if (!h || h->value_len < 7 || strncasecmp(h->value, "bearer ", 7) != 0)
        return false;
    const char *tok = h->value + 7;
    size_t tl = h->value_len - 7;
    /* Constant time in the token's content; the length is not secret. */
    return tl == wl && CRYPTO_memcmp(tok, want, wl) == 0;
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
    return NULL;
}

void tunnels_connect(struct tunnels *ts, struct hs_req *r)
{
    char answer[512];
    const char *why = NULL;
    ssize_t alen = ws_upgrade_answer(hs_request(r), TUN_SUBPROTOCOL, answer,
                                     sizeof(answer), &why);
    if (alen < 0) {
        hs_error(r, 400, "BadRequest", "%s", why);
        return;
    }
    if (!token_ok(ts, r)) {
        log_warn("refused agent from %s: bad credentials", hs_peer(r));
        hs_error(r, 401, "Unauthorized", "invalid agent credentials");
        return;
    }
    struct link *lk = calloc(1, sizeof(*lk));
    if (!lk) {
        hs_error(r, 503, "ServiceUnavailable", "out of memory");
        return;
    }
    why = read_identity(r, lk);
    if (why) {
        free(lk);
        hs_error(r, 400, "BadRequest", "%s", why);
        return;
    }
    lk->ts = ts;
    lk->since_ms = loop_now_ms(ts->loop);
    char peer[48];
    snprintf(peer, sizeof(peer), "%s", hs_peer(r));
    struct conn *c = hs_takeover(r);
    if (!c || conn_write(c, answer, (size_t)alen) < 0) {
        if (c)
            conn_close(c);
        free(lk);
        return;
    }
    struct ws *w = ws_server_attach(c, NULL, 0, TUN_MAX_MESSAGE, NULL, NULL);
    if (!w) {
        free(lk);
        return;
    }
    lk->t = tunnel_new(ts->loop, w, true, &ts->cfg.tunnel, &agent_tunnel_ops, lk);
    if (!lk->t || do_register(ts, lk) < 0) {
        if (lk->t)
            tunnel_close(lk->t, WS_CLOSE_INTERNAL, "out of memory");
        free(lk);
        return;
    }
    conn_resume_read(c);
    log_info("tunnel up: cluster=%s %s%s from %s", lk->cluster,
             lk->kind == LINK_CLUSTER ? "cluster-agent" : "node=",
             lk->kind == LINK_CLUSTER ? "" : lk->node, peer);
}

/* ---- stats and teardown ---- */

static void add_stats(const char *key, void *val, void *ud)
{
    struct cluster_entry *e = val;
    struct tunnels_stats *st = ud;
    (void)key;
    if (e->agent) {
        st->streams += tunnel_stream_count(e->agent->t);
        st->buffered += tunnel_buffered(e->agent->t);
    }
    for (struct link *n = e->nodes; n; n = n->next) {
        st->streams += tunnel_stream_count(n->t);
        st->buffered += tunnel_buffered(n->t);
    }
}

void tunnels_stats(struct tunnels *ts, struct tunnels_stats *out)
{
    memset(out, 0, sizeof(*out));
    out->cluster_agents = ts->ncluster_links;
    out->node_agents = ts->nnode_links;
    hmap_each(ts->clusters, add_stats, out);
}

static void collect(const char *key, void *val, void *ud)
{
    (void)key;
    struct cluster_entry *e = val;
    struct link ***out = ud;
    if (e->agent)
        *(*out)++ = e->agent;
    for (struct link *n = e->nodes; n; n = n->next)
        *(*out)++ = n;
}

void tunnels_free(struct tunnels *ts)
{
    if (!ts)
        return;
    size_t n = ts->ncluster_links + ts->nnode_links;
    struct link **all = calloc(n + 1, sizeof(*all));
    if (all) {
        struct link **p = all;
        hmap_each(ts->clusters, collect, &p);
        for (size_t i = 0; i < n; i++) {
            unregister(all[i]);
            tunnel_close(all[i]->t, WS_CLOSE_GOING_AWAY, "server shutting down");
            free(all[i]);
        }
        free(all);
    }
    hmap_free(ts->clusters);
    free(ts);
}
