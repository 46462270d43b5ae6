/*
 * tunnels: /v3/connect and the registry of agent tunnels. See tunnels.h.
 */
#include "server/tunnels.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <jansson.h>

#include "common/hmap.h"
#include "common/log.h"
#include "proto/frame.h"
#include "proto/ws.h"
#include "server/auth.h"
#include "server/store.h"
#include "server/store_snapshots.h"

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
    struct db_pool *pool;       /* NULL until the datastore is ready */
    struct linkstate *ls;
    struct tunnels_hooks hooks;
    uint64_t grace_until;       /* no node agent stands in before this */
    struct loop_timer grace;
    struct tunnels_remote remote;   /* other replicas, if any */
    struct tunnels_node_remote node_remote;     /* their node agents */
};

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

/* ---- the cluster role ---- */

static void send_role(struct link *lk, bool active)
{
    char msg[64];
    int n = snprintf(msg, sizeof(msg), "{\"type\":\"cluster-role\",\"active\":%s}",
                     active ? "true" : "false");
    tunnel_send_control(lk->t, msg, (size_t)n);
}

/* The node agent to stand in: eligible, and connected the longest (the
 * steadiest; it also keeps the choice stable while others reconnect). */
static struct link *pick_acting(const struct cluster_entry *e)
{
    struct link *best = NULL;
    for (struct link *n = e->nodes; n; n = n->next)
        if (n->eligible && (!best || n->since_ms < best->since_ms))
            best = n;
    return best;
}

static void on_grace_end(struct loop_timer *t);

/* Several replicas: who else holds the cluster's link, per the last
 * ownership refresh. */
static enum tunnels_held held_elsewhere(struct tunnels *ts, const char *cluster)
{
    return ts->remote.held ? ts->remote.held(ts->remote.ud, cluster) : TUNNELS_HELD_NONE;
}

/* Several replicas decide through the datastore (the claim); alone, here. */
static bool replicated(const struct tunnels *ts)
{
    return ts->remote.held && ts->ls;
}

/* n holds the cluster role from now on. */
static void act(struct tunnels *ts, struct cluster_entry *e, struct link *n)
{
    e->acting = n;
    log_info("cluster=%s: node=%s takes the cluster role", n->cluster, n->node);
    send_role(n, true);
    if (ts->hooks.on_cluster_up)
        ts->hooks.on_cluster_up(ts->hooks.ud, n->cluster);
}

static void via_node(const struct link *n, char *via, size_t cap)
{
    snprintf(via, cap, "node/%s", n->node);
}

/*
 * The cluster has neither a cluster agent nor an acting node agent (lost:
 * because one just went): hand the cluster role to an eligible node agent,
 * if there is one, and record the new link (or, when lost, that there is
 * none). The cluster's new streams follow at once (tunnels_for_cluster).
 * With several replicas the node agent only claims the role: another
 * replica may hold the cluster's link, and of two replicas claiming at once
 * only one is granted it (store_peer_set_link); tunnels_claimed() hears the
 * answer.
 */
static void relink(struct tunnels *ts, const char *cluster, bool lost)
{
    struct cluster_entry *e = entry_for(ts, cluster, false);
    if (e && (e->agent || e->acting || e->claiming))
        return;
    struct link *n = e ? pick_acting(e) : NULL;
    if (n && loop_now_ms(ts->loop) < ts->grace_until) {
        if (!loop_timer_armed(&ts->grace))
            loop_timer_start(ts->loop, &ts->grace,
                             ts->grace_until - loop_now_ms(ts->loop), on_grace_end);
        n = NULL;
    }
    if (n && replicated(ts) && held_elsewhere(ts, cluster) != TUNNELS_HELD_NONE)
        n = NULL;   /* another replica carries the cluster: route there */
    if (!n) {
        if (!lost)
            return;
        log_info("cluster=%s: no link left here (no cluster agent, no node agent to "
                 "stand in)", cluster);
        if (ts->ls)
            linkstate_set(ts->ls, cluster, NULL);
        return;
    }
    char via[ID_MAX + 8];
    via_node(n, via, sizeof(via));
    if (replicated(ts)) {
        e->claiming = n;
        log_info("cluster=%s: node=%s claims the cluster role", cluster, n->node);
        linkstate_set(ts->ls, cluster, via);
        return;
    }
    if (ts->ls)
        linkstate_set(ts->ls, cluster, via);
    act(ts, e, n);
}

void tunnels_claimed(struct tunnels *ts, const char *cluster, const char *via, bool granted)
{
    struct cluster_entry *e = entry_for(ts, cluster, false);
    char want[ID_MAX + 8];
    if (!e || !e->claiming)
        return;
    via_node(e->claiming, want, sizeof(want));
    if (strcmp(want, via) != 0)
        return;
    struct link *n = e->claiming;
    e->claiming = NULL;
    if (granted && !e->agent && !e->acting) {
        act(ts, e, n);
        return;
    }
    log_info("cluster=%s: node=%s stays on standby: another replica holds the cluster",
             cluster, n->node);
}

static void relink_idle(const char *key, void *val, void *ud)
{
    struct cluster_entry *e = val;
    if (!e->agent && !e->acting && !e->claiming)
        relink(ud, key, false);
}

/* The start-up grace is over: clusters still without a link get one. */
static void on_grace_end(struct loop_timer *t)
{
    struct tunnels *ts = (struct tunnels *)((char *)t - offsetof(struct tunnels, grace));
    hmap_each(ts->clusters, relink_idle, ts);
}

/* The cluster agent is back: the acting node agent hands the role back. */
static void step_down(struct cluster_entry *e)
{
    struct link *n = e->acting;
    e->claiming = NULL;
    if (!n)
        return;
    e->acting = NULL;
    log_info("cluster=%s: node=%s steps down: the cluster agent is back", n->cluster,
             n->node);
    send_role(n, false);
}

/* After an ownership refresh (several replicas): an acting node agent steps
 * down when a cluster agent is up on another replica; a cluster nobody
 * holds gets a stand-in claimed here if a node agent can. */
static void recheck_one(const char *key, void *val, void *ud)
{
    struct tunnels *ts = ud;
    struct cluster_entry *e = val;
    if (e->agent || e->claiming)
        return;
    enum tunnels_held h = held_elsewhere(ts, key);
    if (e->acting && h == TUNNELS_HELD_AGENT) {
        step_down(e);
        linkstate_set(ts->ls, key, NULL);
    } else if (!e->acting && h == TUNNELS_HELD_NONE) {
        relink(ts, key, false);
    }
}

void tunnels_recheck(struct tunnels *ts)
{
    if (replicated(ts))
        hmap_each(ts->clusters, recheck_one, ts);
}

/* {"type":"eligible","eligible":BOOL}: whether a node agent can reach the
 * kube-apiserver with its service account, so it can stand in. */
static void node_eligible(struct link *lk, bool eligible)
{
    struct tunnels *ts = lk->ts;
    struct cluster_entry *e = entry_for(ts, lk->cluster, false);
    if (!e || lk->eligible == eligible)
        return;
    lk->eligible = eligible;
    log_info("cluster=%s: node=%s %s stand in for the cluster agent", lk->cluster, lk->node,
             eligible ? "can" : "can no longer");
    if (!eligible && e->acting == lk) {
        e->acting = NULL;
        send_role(lk, false);
        relink(ts, lk->cluster, true);
    } else if (!eligible && e->claiming == lk) {
        e->claiming = NULL;
        relink(ts, lk->cluster, true);
    } else if (eligible && !e->agent && !e->acting && !e->claiming) {
        relink(ts, lk->cluster, false);
    }
}

static void on_down(struct tunnel *t, const char *why)
{
    struct link *lk = tunnel_ud(t);
    struct tunnels *ts = lk->ts;
    log_info("tunnel down: cluster=%s %s%s (%s)", lk->cluster,
             lk->kind == LINK_CLUSTER ? "cluster-agent" : "node=",
             lk->kind == LINK_CLUSTER ? "" : lk->node, why);
    struct cluster_entry *e = entry_for(ts, lk->cluster, false);
    bool held = e && (e->agent == lk || e->acting == lk || e->claiming == lk);
    unregister(lk);
    if (held)
        relink(ts, lk->cluster, true);
    free(lk);
}

/* Only the agent holding the cluster role reports: the cluster agent, or
 * the node agent standing in for it. Other node agents speak for one node. */
static bool holds_role(struct link *lk)
{
    if (lk->kind == LINK_CLUSTER)
        return true;
    struct cluster_entry *e = entry_for(lk->ts, lk->cluster, false);
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
        node_eligible(lk, json_is_true(el));
    json_decref(msg);
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
        step_down(e);
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
    struct cluster_entry *e = entry_for(ts, cluster, false);
    for (struct link *n = e ? e->nodes : NULL; n; n = n->next)
        if (strcmp(n->node, node) == 0)
            return true;
    return false;
}

void tunnels_each_node(struct tunnels *ts, const char *cluster,
                       void (*fn)(void *ud, const char *node), void *ud)
{
    struct cluster_entry *e = entry_for(ts, cluster, false);
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
    struct cluster_entry *e = entry_for(ts, cluster, false);
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
    struct cluster_entry *e = entry_for(ts, cluster, false);
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
    struct cluster_entry *e = entry_for(ts, cluster, false);
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

/* Upgrades the connection of an admitted agent into a tunnel. */
static void admit(struct tunnels *ts, struct hs_req *r, struct link *lk,
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

static void check_done(void *arg, int rc)
{
    struct pending *p = arg;
    if (rc == 1 && hs_client_alive(p->r)) {
        admit(p->ts, p->r, p->lk, p->answer, p->alen);
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

void tunnels_set_store(struct tunnels *ts, struct db_pool *pool, struct linkstate *ls)
{
    ts->pool = pool;
    ts->ls = ls;
}

void tunnels_drop_cluster(struct tunnels *ts, const char *cluster)
{
    struct cluster_entry *e;
    /* unregister() frees the entry with its last link, ending the loop. */
    while ((e = entry_for(ts, cluster, false))) {
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
