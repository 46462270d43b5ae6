/*
 * tunnels: the registry of agent tunnels (one link per cluster agent or node
 * agent, grouped per cluster): admitting an agent once /v3/connect checked
 * it, the tunnel callbacks, lookups and streams for the rest of the server,
 * node agents on other replicas, stats and teardown. Owns the links. The
 * cluster role is in tunnels_role.c, /v3/connect in tunnels_connect.c. See
 * tunnels.h.
 */
#include "server/tunnels.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "common/hmap.h"
#include "common/log.h"
#include "proto/frame.h"
#include "proto/ws.h"
#include "server/tunnels_int.h"

struct tunnels *tunnels_new(struct loop *l, const struct tunnels_cfg *cfg)
{
    struct tunnels *ts = calloc(1, sizeof(*ts));
    if (!ts)
        return NULL;
    ts->loop = l;
    ts->cfg = *cfg;
    /* Right after a start, every agent is reconnecting: give cluster agents
     * dead-after to come back before a node agent takes their place, or
     * whichever dials first would take the role and hand it back at once. */
    ts->grace_until = loop_now_ms(l) +
                      (cfg->tunnel.dead_after_ms ? cfg->tunnel.dead_after_ms : 15000);
    ts->clusters = hmap_new();
    if (!ts->clusters) {
        free(ts);
        return NULL;
    }
    return ts;
}

/* ---- registry ---- */

struct cluster_entry *tnl_entry_for(struct tunnels *ts, const char *cluster, bool create)
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
    struct cluster_entry *e = tnl_entry_for(ts, lk->cluster, false);
    if (!e)
        return;
    if (lk->kind == LINK_CLUSTER) {
        if (e->agent == lk) {
            e->agent = NULL;
            ts->ncluster_links--;
        }
    } else {
        if (e->acting == lk)
            e->acting = NULL;
        if (e->claiming == lk)
            e->claiming = NULL;
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
    struct tunnels *ts = lk->ts;
    log_info("tunnel down: cluster=%s %s%s (%s)", lk->cluster,
             lk->kind == LINK_CLUSTER ? "cluster-agent" : "node=",
             lk->kind == LINK_CLUSTER ? "" : lk->node, why);
    struct cluster_entry *e = tnl_entry_for(ts, lk->cluster, false);
    bool held = e && (e->agent == lk || e->acting == lk || e->claiming == lk);
    unregister(lk);
    if (held)
        tnl_relink(ts, lk->cluster, true);
    free(lk);
}

/* Only the agent holding the cluster role reports: the cluster agent, or
 * the node agent standing in for it. Other node agents speak for one node. */
static bool holds_role(struct link *lk)
{
    if (lk->kind == LINK_CLUSTER)
        return true;
    struct cluster_entry *e = tnl_entry_for(lk->ts, lk->cluster, false);
    return e && e->acting == lk;
}

static void on_agent_open(struct tunnel *t, struct tun_stream *s, const char *service,
                          const uint8_t *meta, size_t meta_len)
{
    struct link *lk = tunnel_ud(t);
    struct tunnels *ts = lk->ts;
    (void)meta;
    (void)meta_len;
    if (holds_role(lk) && ts->hooks.on_stream &&
        ts->hooks.on_stream(ts->hooks.ud, lk->cluster, s, service))
        return;
    char why[128];
    snprintf(why, sizeof(why), "the server offers no service \"%s\"", service);
    tun_stream_reset(s, TUN_RESET_REFUSED, why);
}

static void on_agent_control(struct tunnel *t, const uint8_t *json, size_t len)
{
    struct link *lk = tunnel_ud(t);
    log_debug("control from cluster=%s: %.*s", lk->cluster, (int)(len > 200 ? 200 : len),
              (const char *)json);
    json_t *msg = json_loadb((const char *)json, len, 0, NULL);
    const char *type = json_string_value(json_object_get(msg, "type"));
    json_t *el = json_object_get(msg, "eligible");
    if (lk->kind == LINK_NODE && type && strcmp(type, "eligible") == 0 && json_is_boolean(el))
        tnl_node_eligible(lk, json_is_true(el));
    json_decref(msg);
}

static const struct tunnel_ops agent_tunnel_ops = {
    .on_open = on_agent_open,
    .on_control = on_agent_control,
    .on_down = on_down,
};

static int do_register(struct tunnels *ts, struct link *lk)
{
    struct cluster_entry *e = tnl_entry_for(ts, lk->cluster, true);
    if (!e)
        return -1;
    if (lk->kind == LINK_CLUSTER) {
        /* The newer connection takes the old one's place (the count stays);
         * the old agent is told to stand by so the two do not flap. */
        struct link *old = e->agent;
        e->agent = lk;
        if (!old) {
            ts->ncluster_links++;
        } else {
            log_info("cluster=%s: a new cluster-agent connection replaces the one from %s",
                     lk->cluster, tunnel_peer(old->t));
            static const char standby[] = "{\"type\":\"standby\"}";
            tunnel_send_control(old->t, standby, sizeof(standby) - 1);
            tunnel_close(old->t, WS_CLOSE_POLICY, "replaced by a newer connection");
            free(old);
        }
        tnl_step_down(e);
    } else {
        lk->next = e->nodes;
        e->nodes = lk;
        ts->nnode_links++;
    }
    if (lk->kind == LINK_CLUSTER && ts->ls)
        linkstate_set(ts->ls, lk->cluster, "cluster-agent");
    return 0;
}

void tunnels_set_hooks(struct tunnels *ts, const struct tunnels_hooks *h)
{
    if (h)
        ts->hooks = *h;
    else
        memset(&ts->hooks, 0, sizeof(ts->hooks));
}

bool tunnels_node_connected(struct tunnels *ts, const char *cluster, const char *node)
{
    struct cluster_entry *e = tnl_entry_for(ts, cluster, false);
    for (struct link *n = e ? e->nodes : NULL; n; n = n->next)
        if (strcmp(n->node, node) == 0)
            return true;
    return false;
}

void tunnels_each_node(struct tunnels *ts, const char *cluster,
                       void (*fn)(void *ud, const char *node), void *ud)
{
    struct cluster_entry *e = tnl_entry_for(ts, cluster, false);
    for (struct link *n = e ? e->nodes : NULL; n; n = n->next)
        fn(ud, n->node);
}

bool tunnels_roles_has(const char *roles, const char *role)
{
    size_t rl = strlen(role);
    for (const char *p = roles; *p;) {
        size_t n = strcspn(p, ",");
        if (n == rl && memcmp(p, role, n) == 0)
            return true;
        p += n + (p[n] == ',');
    }
    return false;
}

struct tunnel *tunnels_find_node(struct tunnels *ts, const char *cluster, const char *node,
                                 const char *role, char *name_out, size_t cap)
{
    struct cluster_entry *e = tnl_entry_for(ts, cluster, false);
    for (struct link *n = e ? e->nodes : NULL; n; n = n->next) {
        if ((node && strcmp(n->node, node) != 0) || (role && !tunnels_roles_has(n->roles, role)))
            continue;
        if (name_out)
            snprintf(name_out, cap, "%s", n->node);
        return n->t;
    }
    return NULL;
}

void tunnels_each_node_agent(struct tunnels *ts, const char *cluster,
                             void (*fn)(void *ud, const char *node, const char *roles,
                                        struct tunnel *t),
                             void *ud)
{
    struct cluster_entry *e = tnl_entry_for(ts, cluster, false);
    for (struct link *n = e ? e->nodes : NULL; n; n = n->next)
        fn(ud, n->node, n->roles, n->t);
}

struct each_cluster {
    void (*fn)(void *ud, const char *cluster);
    void *ud;
};

static void each_agent(const char *key, void *val, void *ud)
{
    struct cluster_entry *e = val;
    struct each_cluster *ec = ud;
    if (e->agent || e->acting)
        ec->fn(ec->ud, key);
}

void tunnels_each_cluster(struct tunnels *ts, void (*fn)(void *ud, const char *cluster),
                          void *ud)
{
    struct each_cluster ec = { fn, ud };
    hmap_each(ts->clusters, each_agent, &ec);
}

struct tunnel *tunnels_for_cluster(struct tunnels *ts, const char *cluster)
{
    struct cluster_entry *e = tnl_entry_for(ts, cluster, false);
    if (!e)
        return NULL;
    if (e->agent)
        return e->agent->t;
    if (e->acting)
        return e->acting->t;
    return NULL;
}

void tunnels_set_remote(struct tunnels *ts, const struct tunnels_remote *r)
{
    if (r)
        ts->remote = *r;
    else
        memset(&ts->remote, 0, sizeof(ts->remote));
}

bool tunnels_reachable(struct tunnels *ts, const char *cluster)
{
    return tunnels_for_cluster(ts, cluster) ||
           (ts->remote.reachable && ts->remote.reachable(ts->remote.ud, cluster));
}

struct tun_stream *tunnels_open_stream(struct tunnels *ts, const char *cluster,
                                       const char *service, const void *meta,
                                       size_t meta_len, const struct tun_stream_ops *ops,
                                       void *ud)
{
    struct tunnel *t = tunnels_for_cluster(ts, cluster);
    if (t)
        return tun_stream_open(t, service, meta, meta_len, ops, ud);
    if (ts->remote.open)
        return ts->remote.open(ts->remote.ud, cluster, service, meta, meta_len, ops, ud);
    return NULL;
}

/* ---- admitting an agent ---- */

void tnl_admit(struct tunnels *ts, struct hs_req *r, struct link *lk,
               const char *answer, size_t alen)
{
    char peer[48];
    snprintf(peer, sizeof(peer), "%s", hs_peer(r));
    lk->ts = ts;
    lk->since_ms = loop_now_ms(ts->loop);
    struct conn *c = hs_takeover(r);
    if (c && ts->cfg.agent_max_queued)
        conn_set_out_cap(c, ts->cfg.agent_max_queued);
    if (c)
        conn_set_write_stall(c, ts->cfg.tunnel.dead_after_ms ? ts->cfg.tunnel.dead_after_ms
                                                             : 15000);
    if (!c || conn_write(c, answer, alen) < 0) {
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
    if (lk->kind == LINK_CLUSTER && ts->hooks.on_cluster_up)
        ts->hooks.on_cluster_up(ts->hooks.ud, lk->cluster);
}



void tunnels_set_store(struct tunnels *ts, struct db_pool *pool, struct linkstate *ls)
{
    ts->pool = pool;
    ts->ls = ls;
}

void tunnels_drop_cluster(struct tunnels *ts, const char *cluster)
{
    struct cluster_entry *e;
    /* unregister() frees the entry with its last link, ending the loop. */
    while ((e = tnl_entry_for(ts, cluster, false))) {
        struct link *lk = e->agent ? e->agent : e->nodes;
        log_info("cluster=%s deleted: closing its %s tunnel", cluster,
                 lk->kind == LINK_CLUSTER ? "cluster-agent" : "node-agent");
        unregister(lk);
        tunnel_close(lk->t, WS_CLOSE_POLICY, "cluster deleted");
        free(lk);
    }
}

/* ---- stats and teardown ---- */

static void add_stats(const char *key, void *val, void *ud)
{
    struct cluster_entry *e = val;
    struct tunnels_stats *st = ud;
    (void)key;
    if (e->acting)
        st->acting++;
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
    out->takeovers = ts->takeovers;
    out->step_downs = ts->step_downs;
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
    loop_timer_stop(ts->loop, &ts->grace);
    hmap_free(ts->clusters);
    free(ts);
}

/* ---- node agents on any replica ---- */

void tunnels_set_node_remote(struct tunnels *ts, const struct tunnels_node_remote *r)
{
    if (r)
        ts->node_remote = *r;
    else
        memset(&ts->node_remote, 0, sizeof(ts->node_remote));
}

struct each_all {
    void (*fn)(void *ud, const char *cluster, const char *node, const char *roles);
    void *ud;
};

static void each_entry_nodes(const char *key, void *val, void *ud)
{
    struct cluster_entry *e = val;
    struct each_all *ea = ud;
    for (struct link *n = e->nodes; n; n = n->next)
        ea->fn(ea->ud, key, n->node, n->roles);
}

void tunnels_each_node_agent_all(struct tunnels *ts,
                                 void (*fn)(void *ud, const char *cluster, const char *node,
                                            const char *roles),
                                 void *ud)
{
    struct each_all ea = { fn, ud };
    hmap_each(ts->clusters, each_entry_nodes, &ea);
}

struct each_any {
    struct tunnels *ts;
    const char *cluster;
    void (*fn)(void *ud, const char *node, const char *roles);
    void *ud;
};

static void each_local(void *ud, const char *node, const char *roles, struct tunnel *t)
{
    struct each_any *ea = ud;
    (void)t;
    ea->fn(ea->ud, node, roles);
}

static void each_remote(void *ud, const char *node, const char *roles)
{
    struct each_any *ea = ud;
    if (!tunnels_node_connected(ea->ts, ea->cluster, node))
        ea->fn(ea->ud, node, roles);
}

void tunnels_each_node_anywhere(struct tunnels *ts, const char *cluster,
                                void (*fn)(void *ud, const char *node, const char *roles),
                                void *ud)
{
    struct each_any ea = { ts, cluster, fn, ud };
    tunnels_each_node_agent(ts, cluster, each_local, &ea);
    if (ts->node_remote.each)
        ts->node_remote.each(ts->node_remote.ud, cluster, each_remote, &ea);
}

struct find_any {
    const char *node, *role;
    char *out;
    size_t cap;
    bool found;
};

static void find_remote(void *ud, const char *node, const char *roles)
{
    struct find_any *fa = ud;
    if (fa->found || (fa->node && strcmp(fa->node, node) != 0) ||
        (fa->role && !tunnels_roles_has(roles, fa->role)))
        return;
    fa->found = true;
    if (fa->out)
        snprintf(fa->out, fa->cap, "%s", node);
}

bool tunnels_find_node_anywhere(struct tunnels *ts, const char *cluster, const char *node,
                                const char *role, char *name_out, size_t cap)
{
    if (tunnels_find_node(ts, cluster, node, role, name_out, cap))
        return true;
    struct find_any fa = { node, role, name_out, cap, false };
    if (ts->node_remote.each)
        ts->node_remote.each(ts->node_remote.ud, cluster, find_remote, &fa);
    return fa.found;
}

struct tun_stream *tunnels_open_node_stream(struct tunnels *ts, const char *cluster,
                                            const char *node, const char *service,
                                            const void *meta, size_t meta_len,
                                            const struct tun_stream_ops *ops, void *ud)
{
    struct tunnel *t = tunnels_find_node(ts, cluster, node, NULL, NULL, 0);
    if (t)
        return tun_stream_open(t, service, meta, meta_len, ops, ud);
    if (!ts->node_remote.open)
        return NULL;
    return ts->node_remote.open(ts->node_remote.ud, cluster, node, service, meta, meta_len,
                                ops, ud);
}

