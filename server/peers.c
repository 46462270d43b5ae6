/*
 * peers: the links between replicas: an outgoing link to each other live
 * replica (dialled, redialled with backoff), routing a cluster's streams to
 * the replica holding its link (the tunnels' remote hook), incoming links
 * carrying other replicas' streams for our clusters, lifetime and stats.
 * Membership and owners come from the heartbeat in peers_refresh.c. See
 * peers.h.
 */
#include "server/peers.h"

#include <jansson.h>
#include <netdb.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/backoff.h"
#include "common/hmap.h"
#include "common/log.h"
#include "common/netaddr.h"
#include "common/tls.h"
#include "common/url.h"
#include "common/wsconn.h"
#include "proto/frame.h"
#include "proto/ws.h"
#include "server/auth.h"
#include "server/peers_int.h"
#include "server/splice.h"
#include "server/store.h"
#include "server/store_peers.h"

#define PEER_PREFIX     "peer."
/* A peer stream's address: a cluster id, or "<cluster>/<node>". */
#define ADDR_MAX        (PEERS_ID_MAX + 1 + 253)

/* ---- outgoing links ---- */

static void on_retry(struct loop_timer *t)
{
    pe_dial((struct member *)((char *)t - offsetof(struct member, retry)));
}

static void out_open(struct tunnel *t, struct tun_stream *s, const char *service,
                     const uint8_t *meta, size_t meta_len)
{
    (void)t;
    (void)service;
    (void)meta;
    (void)meta_len;
    tun_stream_reset(s, TUN_RESET_REFUSED, "streams go the other way on this link");
}

static void out_down(struct tunnel *t, const char *why)
{
    struct member *m = tunnel_ud(t);
    m->t = NULL;
    uint64_t d = backoff_next(&m->bo);
    log_warn("peer %s: link down (%s); redialing in %llu ms", m->id, why,
             (unsigned long long)d);
    loop_timer_start(m->p->loop, &m->retry, d, on_retry);
}

static const struct tunnel_ops out_tunnel_ops = {
    .on_open = out_open,
    .on_down = out_down,
};

static void on_ws_open(struct ws *w)
{
    struct member *m = ws_ud(w);
    m->ws = NULL;
    m->t = tunnel_new(m->p->loop, w, false, &m->p->cfg.tunnel, &out_tunnel_ops, m);
    if (!m->t) {
        loop_timer_start(m->p->loop, &m->retry, backoff_next(&m->bo), on_retry);
        return;
    }
    backoff_reset(&m->bo);
    log_info("peer %s: link up (%s)", m->id, m->url);
}

static void on_ws_close(struct ws *w, const char *why)
{
    struct member *m = ws_ud(w);
    m->ws = NULL;
    uint64_t d = backoff_next(&m->bo);
    log_warn("peer %s: cannot link to %s: %s; retrying in %llu ms", m->id, m->url, why,
             (unsigned long long)d);
    loop_timer_start(m->p->loop, &m->retry, d, on_retry);
}

static const struct ws_ops out_ws_ops = {
    .on_open = on_ws_open,
    .on_close = on_ws_close,
};

static int resolve(const struct url *u, struct netaddr *out)
{
    if (u->host_is_ip)
        return netaddr_from_ip(u->host, u->port, out) == 0 ? 0 : -1;
    struct addrinfo hints = { .ai_socktype = SOCK_STREAM }, *res = NULL;
    char port[8];
    snprintf(port, sizeof(port), "%d", u->port);
    if (getaddrinfo(u->host, port, &hints, &res) != 0 || !res)
        return -1;
    memcpy(&out->ss, res->ai_addr, res->ai_addrlen);
    out->len = res->ai_addrlen;
    freeaddrinfo(res);
    return 0;
}

void pe_dial(struct member *m)
{
    struct peers *p = m->p;
    struct url u;
    struct netaddr na;
    const char *why = NULL;
    if (url_parse(m->url, &u, &why) < 0 || resolve(&u, &na) < 0) {
        log_warn("peer %s: cannot dial %s: %s", m->id, m->url,
                 why ? why : "cannot resolve");
        loop_timer_start(p->loop, &m->retry, backoff_next(&m->bo), on_retry);
        return;
    }
    struct ws_client_opts o = {
        .path = "/v3/peer", .host = u.host, .host_is_ip = u.host_is_ip,
        .subprotocol = TUN_SUBPROTOCOL, .extra_headers = p->auth_headers,
        .max_message = TUN_MAX_MESSAGE,
    };
    m->ws = ws_client_connect(p->loop, (const struct sockaddr *)&na.ss, na.len, p->ctx, &o,
                              &out_ws_ops, m);
    if (!m->ws)
        loop_timer_start(p->loop, &m->retry, backoff_next(&m->bo), on_retry);
}

void pe_member_free(struct member *m)
{
    loop_timer_stop(m->p->loop, &m->retry);
    if (m->t)
        tunnel_close(m->t, WS_CLOSE_GOING_AWAY, "replica leaving");
    if (m->ws)
        ws_close(m->ws, WS_CLOSE_GOING_AWAY, "replica leaving");
    free(m);
}

/* ---- routing (the tunnels' remote hook) ---- */

const char *peers_owner(struct peers *p, const char *cluster)
{
    struct owner *o = hmap_get(p->owners, cluster);
    return o ? o->peer : NULL;
}

static enum tunnels_held remote_held(void *ud, const char *cluster)
{
    struct peers *p = ud;
    struct owner *o = hmap_get(p->owners, cluster);
    if (!o || strcmp(o->peer, p->id) == 0)
        return TUNNELS_HELD_NONE;
    return o->agent ? TUNNELS_HELD_AGENT : TUNNELS_HELD_NODE;
}

static struct tunnel *link_to_owner(struct peers *p, const char *cluster)
{
    const char *owner = peers_owner(p, cluster);
    if (!owner || strcmp(owner, p->id) == 0)
        return NULL;
    struct member *m = hmap_get(p->members, owner);
    return m ? m->t : NULL;
}

static bool remote_reachable(void *ud, const char *cluster)
{
    return link_to_owner(ud, cluster) != NULL;
}

static struct tun_stream *remote_open(void *ud, const char *cluster, const char *service,
                                      const void *meta, size_t meta_len,
                                      const struct tun_stream_ops *ops, void *sud)
{
    struct peers *p = ud;
    struct tunnel *t = link_to_owner(p, cluster);
    char svc[TUN_MAX_SERVICE + 1];
    size_t cl = strlen(cluster);
    int n = snprintf(svc, sizeof(svc), PEER_PREFIX "%s", service);
    if (!t || n < 0 || (size_t)n > TUN_MAX_SERVICE || cl + 1 + meta_len > TUN_MAX_META)
        return NULL;
    char m[TUN_MAX_META];
    memcpy(m, cluster, cl);
    m[cl] = '\n';
    if (meta_len)
        memcpy(m + cl + 1, meta, meta_len);
    return tun_stream_open(t, svc, m, cl + 1 + meta_len, ops, sud);
}

/* Opens service on the link to replica peer, addressed to addr. */
static struct tun_stream *open_on(struct peers *p, const char *peer, const char *addr,
                                  const char *service, const void *meta, size_t meta_len,
                                  const struct tun_stream_ops *ops, void *sud)
{
    struct member *m = strcmp(peer, p->id) ? hmap_get(p->members, peer) : NULL;
    char svc[TUN_MAX_SERVICE + 1];
    size_t al = strlen(addr);
    int n = snprintf(svc, sizeof(svc), PEER_PREFIX "%s", service);
    if (!m || !m->t || n < 0 || (size_t)n > TUN_MAX_SERVICE || al > ADDR_MAX ||
        al + 1 + meta_len > TUN_MAX_META)
        return NULL;
    char mb[TUN_MAX_META];
    memcpy(mb, addr, al);
    mb[al] = '\n';
    if (meta_len)
        memcpy(mb + al + 1, meta, meta_len);
    return tun_stream_open(m->t, svc, mb, al + 1 + meta_len, ops, sud);
}

struct tun_stream *peers_open_node(struct peers *p, const char *peer, const char *cluster,
                                   const char *node, const char *service, const void *meta,
                                   size_t meta_len, const struct tun_stream_ops *ops,
                                   void *sud)
{
    char addr[ADDR_MAX + 2];
    int n = snprintf(addr, sizeof(addr), "%s/%s", cluster, node);
    if (n < 0 || (size_t)n > ADDR_MAX || strchr(node, '/'))
        return NULL;
    return open_on(p, peer, addr, service, meta, meta_len, ops, sud);
}

/* ---- incoming links ---- */

/* The local tunnel a peer stream addressed to "<cluster>" or
 * "<cluster>/<node>" (a node agent, for node tasks) goes to, or NULL with
 * why. */
static struct tunnel *in_target(struct peers *p, char *addr, char *why, size_t cap)
{
    char *slash = strchr(addr, '/');
    struct tunnel *t;
    if (slash) {
        *slash = '\0';
        t = tunnels_find_node(p->ts, addr, slash + 1, NULL, NULL, 0);
        if (!t)
            snprintf(why, cap, "node %s of cluster %s is not connected to replica %s",
                     slash + 1, addr, p->id);
        return t;
    }
    t = tunnels_for_cluster(p->ts, addr);
    if (!t)
        snprintf(why, cap, "cluster %s is not connected to replica %s", addr, p->id);
    return t;
}

static void in_open(struct tunnel *t, struct tun_stream *s, const char *service,
                    const uint8_t *meta, size_t meta_len)
{
    struct inlink *in = tunnel_ud(t);
    struct peers *p = in->p;
    const uint8_t *nl = meta_len ? memchr(meta, '\n', meta_len) : NULL;
    size_t plen = strlen(PEER_PREFIX);
    if (strncmp(service, PEER_PREFIX, plen) != 0 || !nl || nl == meta ||
        (size_t)(nl - meta) > ADDR_MAX) {
        tun_stream_reset(s, TUN_RESET_PROTOCOL, "expected peer.<service> and a cluster");
        return;
    }
    char addr[ADDR_MAX + 1];
    memcpy(addr, meta, (size_t)(nl - meta));
    addr[nl - meta] = '\0';
    /* Only a local link: a stream is forwarded one hop, never bounced on. */
    char why[600];
    struct tunnel *agent = in_target(p, addr, why, sizeof(why));
    if (!agent) {
        tun_stream_reset(s, TUN_RESET_UNAVAILABLE, why);
        return;
    }
    size_t rest = meta_len - (size_t)(nl - meta) - 1;
    struct tun_stream *out = tun_stream_open(agent, service + plen, nl + 1, rest, NULL, NULL);
    if (!out) {
        tun_stream_reset(s, TUN_RESET_UNAVAILABLE, "the cluster link is busy");
        return;
    }
    splice_join(s, out);
}

static void in_unlink(struct inlink *in)
{
    struct peers *p = in->p;
    if (in->prev)
        in->prev->next = in->next;
    else
        p->incoming = in->next;
    if (in->next)
        in->next->prev = in->prev;
}

static void in_down(struct tunnel *t, const char *why)
{
    struct inlink *in = tunnel_ud(t);
    log_info("peer %s: incoming link down (%s)", in->id, why);
    in_unlink(in);
    free(in);
}

static void in_control(struct tunnel *t, const uint8_t *json, size_t len)
{
    struct inlink *in = tunnel_ud(t);
    struct peers *p = in->p;
    json_t *j = json_loadb((const char *)json, len, 0, NULL);
    const char *type = json_string_value(json_object_get(j, "type"));
    const char *cluster = json_string_value(json_object_get(j, "cluster"));
    if (type && cluster && strcmp(type, "rbac-changed") == 0 &&
        strlen(cluster) <= PEERS_ID_MAX && p->cfg.on_rbac_changed)
        p->cfg.on_rbac_changed(p->cfg.ud, cluster);
    json_decref(j);
}

static const struct tunnel_ops in_tunnel_ops = {
    .on_open = in_open,
    .on_control = in_control,
    .on_down = in_down,
};

struct notice {
    const char *msg;
    size_t len;
};

static void send_notice(const char *key, void *val, void *ud)
{
    struct member *m = val;
    struct notice *n = ud;
    (void)key;
    if (m->t)
        tunnel_send_control(m->t, n->msg, n->len);
}

void peers_rbac_changed(struct peers *p, const char *cluster)
{
    json_t *j = json_pack("{s:s,s:s}", "type", "rbac-changed", "cluster", cluster);
    char *msg = j ? json_dumps(j, JSON_COMPACT) : NULL;
    json_decref(j);
    if (!msg)
        return;
    struct notice n = { msg, strlen(msg) };
    hmap_each(p->members, send_notice, &n);
    free(msg);
}

/* Constant time, whatever the lengths: both sides are hashed first. */
static bool token_ok(struct peers *p, const struct hs_req *r)
{
    const struct http_header *h = hs_header(r, "authorization");
    if (!h || h->value_len < 8 || h->value_len > PEERS_TOKEN_MAX + 7 ||
        strncasecmp(h->value, "bearer ", 7) != 0)
        return false;
    char hash[AUTH_HEX_SHA256];
    auth_sha256_hex(h->value + 7, h->value_len - 7, hash);
    return CRYPTO_memcmp(hash, p->token_hash, sizeof(hash)) == 0;
}

void peers_accept(struct peers *p, struct hs_req *r)
{
    char answer[512], id[PEERS_ID_MAX + 1] = "?";
    const char *why = NULL;
    const struct http_header *ph = hs_header(r, "x-drover-peer");
    if (ph && ph->value_len && ph->value_len <= PEERS_ID_MAX) {
        memcpy(id, ph->value, ph->value_len);
        id[ph->value_len] = '\0';
    }
    ssize_t alen = ws_upgrade_answer(hs_request(r), TUN_SUBPROTOCOL, answer, sizeof(answer),
                                     &why);
    if (alen < 0) {
        hs_error(r, 400, "BadRequest", "%s", why);
        return;
    }
    if (!token_ok(p, r)) {
        log_warn("refused a peer link from %s: bad peer token", hs_peer(r));
        hs_error(r, 401, "Unauthorized", "invalid peer token");
        return;
    }
    struct inlink *in = calloc(1, sizeof(*in));
    if (!in) {
        hs_error(r, 503, "ServiceUnavailable", "out of memory");
        return;
    }
    in->p = p;
    snprintf(in->id, sizeof(in->id), "%s", id);
    struct conn *c = hs_takeover(r);
    if (!c || conn_write(c, answer, (size_t)alen) < 0) {
        if (c)
            conn_close(c);
        free(in);
        return;
    }
    struct ws *w = ws_server_attach(c, NULL, 0, TUN_MAX_MESSAGE, NULL, NULL);
    if (!w) {
        free(in);
        return;
    }
    in->t = tunnel_new(p->loop, w, true, &p->cfg.tunnel, &in_tunnel_ops, in);
    if (!in->t) {
        free(in);
        return;
    }
    in->next = p->incoming;
    if (p->incoming)
        p->incoming->prev = in;
    p->incoming = in;
    conn_resume_read(c);
    log_info("peer %s: incoming link up from %s", in->id, tunnel_peer(in->t));
}

/* ---- lifetime ---- */

struct peers *peers_new(struct loop *l, struct tunnels *ts, const struct peers_cfg *cfg)
{
    char err[300];
    struct peers *p = calloc(1, sizeof(*p));
    if (!p)
        return NULL;
    p->loop = l;
    p->ts = ts;
    p->cfg = *cfg;
    p->cfg.id = p->cfg.advertise_url = p->cfg.token = p->cfg.ca_pem = NULL;
    snprintf(p->id, sizeof(p->id), "%s", cfg->id);
    snprintf(p->url, sizeof(p->url), "%s", cfg->advertise_url);
    auth_sha256_hex(cfg->token, cfg->token_len, p->token_hash);
    size_t hl = cfg->token_len + sizeof(p->headers) + 64;
    p->auth_headers = malloc(hl);
    p->members = hmap_new();
    p->owners = hmap_new();
    p->ctx = tls_client_ctx_pinned(cfg->ca_pem, cfg->ca_len, err, sizeof(err));
    if (!p->auth_headers || !p->members || !p->owners || !p->ctx) {
        log_error("replicas: %s", p->ctx ? "out of memory" : err);
        peers_free(p);
        return NULL;
    }
    snprintf(p->auth_headers, hl, "Authorization: Bearer %.*s\r\nX-Drover-Peer: %s\r\n",
             (int)cfg->token_len, cfg->token, p->id);
    struct tunnels_remote r = { .open = remote_open, .reachable = remote_reachable,
                                .held = remote_held, .ud = p };
    tunnels_set_remote(ts, &r);
    return p;
}

void peers_set_pool(struct peers *p, struct db_pool *pool)
{
    p->pool = pool;
    if (pool)
        pe_on_tick(&p->tick);
    else
        loop_timer_stop(p->loop, &p->tick);
}

void peers_set_controller(struct peers *p, bool on)
{
    p->controller = on;
}

void peers_leave(const char *datastore, const char *data_dir, const char *id)
{
    struct db_options opt = { .datastore = datastore, .data_dir = data_dir,
                              .connect_timeout_s = 3 };
    struct db *db = NULL;
    char err[300];
    int rc = db_open(&opt, &db, err, sizeof(err));
    if (rc == 0 && (rc = store_peer_leave(db, id)) < 0)
        snprintf(err, sizeof(err), "%s", db_errmsg(db));
    if (rc < 0)
        log_warn("replicas: cannot end our leases (the others wait for them to run "
                 "out): %s", err);
    db_close(db);
}

static void drop_member(const char *key, void *val, void *ud)
{
    (void)key;
    (void)ud;
    pe_member_free(val);
}

void peers_free(struct peers *p)
{
    if (!p)
        return;
    if (p->loop)
        loop_timer_stop(p->loop, &p->tick);
    if (p->ts)
        tunnels_set_remote(p->ts, NULL);
    while (p->incoming) {
        struct inlink *in = p->incoming;
        in_unlink(in);
        tunnel_close(in->t, WS_CLOSE_GOING_AWAY, "replica leaving");
        free(in);
    }
    if (p->members) {
        hmap_each(p->members, drop_member, NULL);
        hmap_free(p->members);
    }
    if (p->owners) {
        hmap_each(p->owners, pe_free_owner, NULL);
        hmap_free(p->owners);
    }
    if (p->ctx)
        SSL_CTX_free(p->ctx);
    if (p->auth_headers)
        OPENSSL_cleanse(p->auth_headers, strlen(p->auth_headers));
    free(p->auth_headers);
    free(p);
}

static void count_up(const char *key, void *val, void *ud)
{
    (void)key;
    if (((struct member *)val)->t)
        (*(size_t *)ud)++;
}

void peers_stats(struct peers *p, struct peers_stats *out)
{
    memset(out, 0, sizeof(*out));
    out->live = hmap_count(p->members) + 1;
    hmap_each(p->members, count_up, &out->links_up);
    for (struct inlink *in = p->incoming; in; in = in->next)
        out->incoming++;
    out->owners = hmap_count(p->owners);
}

