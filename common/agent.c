/*
 * agent: pinning, dialing, reconnecting and serving. See agent.h.
 */
#include "common/agent.h"

#include <jansson.h>
#include <netdb.h>
#include <openssl/rand.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/applier.h"
#include "common/backoff.h"
#include "common/cacerts.h"
#include "common/conn.h"
#include "common/health.h"
#include "common/kubeapi.h"
#include "common/kubeclient.h"
#include "common/log.h"
#include "common/netaddr.h"
#include "common/rbackeeper.h"
#include "common/relay.h"
#include "common/reporter.h"
#include "common/tls.h"
#include "common/url.h"
#include "proto/frame.h"
#include "proto/ws.h"

#define CACERTS_TIMEOUT_MS 10000
/* How often a node agent checks that it can reach the kube-apiserver (so
 * the server knows it can stand in for the cluster agent): more often while
 * it stands in or while the check fails, when the answer matters soonest. */
#define PROBE_IDLE_MS 15000
#define PROBE_BUSY_MS 5000

struct agent {
    const struct agent_cfg *cfg;
    struct loop *loop;
    struct url servers[AGENT_MAX_SERVERS];
    size_t nservers, cur;
    SSL_CTX *ctx;
    struct allowlist allow;
    struct backoff bo;
    struct loop_timer retry;
    struct ws *ws;              /* while the upgrade is in progress */
    struct tunnel *t;           /* once up */
    bool standby;               /* the server prefers a newer agent of ours */
    struct kubeapi *kube;       /* the kube-api service, when configured */
    struct kubeclient *kc;      /* the agent's own API calls (with kube) */
    struct applier *applier;    /* the "apply" service (with kc) */
    struct reporter *rep;       /* while the tunnel is up and we hold the role */
    bool cluster_role;          /* node agents: the server made us stand in */
    int kube_ok;                /* node agents: last probe, -1 before the first */
    struct kc_req *probe;       /* the probe in flight */
    struct loop_timer probe_timer;
    struct health *health;
    char headers[1024];
};

/* ---- settings checks ---- */

static int parse_servers(const char *v, struct url *out, size_t *n, const char **why)
{
    *n = 0;
    for (const char *s = v; *s;) {
        while (*s == ' ' || *s == ',')
            s++;
        size_t len = strcspn(s, ",");
        while (len && s[len - 1] == ' ')
            len--;
        if (!len)
            break;
        char one[URL_MAX_HOST + URL_MAX_PATH + 32];
        if (len >= sizeof(one) || *n == AGENT_MAX_SERVERS) {
            *why = len >= sizeof(one) ? "URL too long" : "too many servers (at most 8)";
            return -1;
        }
        memcpy(one, s, len);
        one[len] = '\0';
        if (url_parse(one, &out[*n], why) < 0)
            return -1;
        if (strcmp(out[*n].scheme, "https") != 0 && strcmp(out[*n].scheme, "wss") != 0) {
            *why = "server URLs must be https://";
            return -1;
        }
        (*n)++;
        s += len;
    }
    if (*n == 0) {
        *why = "no server URL";
        return -1;
    }
    return 0;
}

const char *agent_check_servers(const char *v)
{
    struct url u[AGENT_MAX_SERVERS];
    size_t n;
    const char *why = NULL;
    return parse_servers(v, u, &n, &why) < 0 ? why : NULL;
}

const char *agent_check_checksum(const char *v)
{
    if (strlen(v) != 64)
        return "must be 64 lowercase hex characters (SHA-256 of the server CA)";
    for (const char *p = v; *p; p++)
        if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f')))
            return "must be 64 lowercase hex characters (SHA-256 of the server CA)";
    return NULL;
}

/* ---- the node agent's kube-apiserver probe ---- */

/* Tells the server whether we can stand in (once per tunnel and on change). */
static void send_eligible(struct agent *a)
{
    if (!a->t || !a->cfg->node_role || a->kube_ok < 0)
        return;
    char msg[64];
    int n = snprintf(msg, sizeof(msg), "{\"type\":\"eligible\",\"eligible\":%s}",
                     a->kube_ok ? "true" : "false");
    tunnel_send_control(a->t, msg, (size_t)n);
}

static void probe_start(struct loop_timer *t);

static void probe_arm(struct agent *a)
{
    if (!a->kc || !a->cfg->node_role || a->probe)
        return;
    uint64_t d = a->cluster_role || a->kube_ok != 1 ? PROBE_BUSY_MS : PROBE_IDLE_MS;
    loop_timer_start(a->loop, &a->probe_timer, d, probe_start);
}

static void probe_done(void *ud, int status, json_t *body, const char *err)
{
    struct agent *a = ud;
    (void)body;
    a->probe = NULL;
    int ok = status == 200;
    if (ok != a->kube_ok) {
        if (ok)
            log_info("the kube-apiserver answers /readyz: this node agent can stand in for "
                     "the cluster agent");
        else
            log_warn("the kube-apiserver's /readyz failed (%d %s): this node agent cannot "
                     "stand in for the cluster agent", status, err ? err : "");
        a->kube_ok = ok;
        send_eligible(a);
    }
    probe_arm(a);
}

/* GET /readyz with our own service account: what standing in needs. */
static void probe_start(struct loop_timer *t)
{
    struct agent *a = (struct agent *)((char *)t - offsetof(struct agent, probe_timer));
    a->probe = kubeclient_request(a->kc, "GET", "/readyz", NULL, probe_done, a);
    if (!a->probe)
        probe_done(a, 0, NULL, "cannot start the request");
}

/* ---- serving streams ---- */

static void serve_tcp(struct agent *a, struct tun_stream *s, const uint8_t *meta, size_t len)
{
    char target[128];
    struct netaddr na;
    const char *why;
    if (len == 0 || len >= sizeof(target)) {
        tun_stream_reset(s, TUN_RESET_PROTOCOL, "tcp needs a host:port target");
        return;
    }
    memcpy(target, meta, len);
    target[len] = '\0';
    if (netaddr_parse(target, &na, &why) < 0) {
        char msg[200];
        snprintf(msg, sizeof(msg), "bad target %s: %s", target, why);
        tun_stream_reset(s, TUN_RESET_REFUSED, msg);
        return;
    }
    if (!allowlist_match(&a->allow, &na)) {
        char msg[200];
        snprintf(msg, sizeof(msg), "%s is not in DROVER_ALLOW_DIAL", target);
        log_warn("refused a stream to %s: not in DROVER_ALLOW_DIAL", target);
        tun_stream_reset(s, TUN_RESET_REFUSED, msg);
        return;
    }
    relay_dial(a->loop, s, (const struct sockaddr *)&na.ss, na.len);
}

static void on_stream_open(struct tunnel *t, struct tun_stream *s, const char *service,
                           const uint8_t *meta, size_t meta_len)
{
    struct agent *a = tunnel_ud(t);
    if (strcmp(service, "tcp") == 0) {
        serve_tcp(a, s, meta, meta_len);
        return;
    }
    /* A node agent speaks for the cluster only while it stands in: then
     * nothing runs twice (two RBAC keepers, say) when the cluster agent is
     * back. */
    if (a->cfg->node_role && !a->cluster_role &&
        (strcmp(service, "kube-api") == 0 || strcmp(service, "rbac") == 0 ||
         strcmp(service, APPLIER_SERVICE) == 0)) {
        tun_stream_reset(s, TUN_RESET_UNAVAILABLE,
                         "this node agent does not hold the cluster role");
        return;
    }
    if (strcmp(service, "kube-api") == 0) {
        if (a->kube)
            kubeapi_serve(a->kube, s, meta, meta_len);
        else
            tun_stream_reset(s, TUN_RESET_UNAVAILABLE,
                             "this agent has no kube-apiserver configured (DROVER_KUBE_API)");
        return;
    }
    if (strcmp(service, "rbac") == 0) {
        if (a->kc)
            rbackeeper_serve(a->kc, s);
        else
            tun_stream_reset(s, TUN_RESET_UNAVAILABLE,
                             "this agent has no kube-apiserver configured (DROVER_KUBE_API)");
        return;
    }
    if (strcmp(service, APPLIER_SERVICE) == 0) {
        if (a->applier)
            applier_serve(a->applier, s, meta, meta_len);
        else
            tun_stream_reset(s, TUN_RESET_UNAVAILABLE,
                             "this agent has no kube-apiserver configured (DROVER_KUBE_API)");
        return;
    }
    for (size_t i = 0; i < a->cfg->nservices; i++) {
        const struct agent_service *sv = &a->cfg->services[i];
        if (strcmp(service, sv->name) == 0) {
            sv->serve(sv->ud, a->loop, s, meta, meta_len);
            return;
        }
    }
    char msg[128];
    snprintf(msg, sizeof(msg), "this agent has no service \"%s\"", service);
    tun_stream_reset(s, TUN_RESET_REFUSED, msg);
}

/* ---- connecting ---- */

static void schedule_retry(struct agent *a, const char *why);
static void dial(struct agent *a);

static void on_tunnel_down(struct tunnel *t, const char *why)
{
    struct agent *a = tunnel_ud(t);
    reporter_free(a->rep);
    a->rep = NULL;
    a->t = NULL;
    a->cluster_role = false;
    schedule_retry(a, why);
}

/*
 * {"type":"cluster-role","active":BOOL}: the server makes this node agent
 * stand in for the cluster agent (reports, RBAC, kube-api), or hands the
 * role back to the cluster agent. Only node agents take it.
 */
static void set_cluster_role(struct agent *a, bool active)
{
    if (!a->cfg->node_role || active == a->cluster_role)
        return;
    a->cluster_role = active;
    if (active) {
        log_info("standing in for the cluster agent: reporting and serving the cluster");
        if (a->kc && !(a->rep = reporter_new(a->loop, a->kc, a->t)))
            log_warn("cannot start cluster reports: out of memory");
    } else {
        log_info("the cluster agent is back: stepping down");
        reporter_free(a->rep);
        a->rep = NULL;
    }
    probe_arm(a);
}

/*
 * {"type":"standby"}: another agent of this cluster (a newer pod during a
 * rollout) holds the link now. Coming straight back would steal it and the
 * two would flap; wait the longest backoff instead, by which time this pod
 * has usually been retired.
 */
static void on_control(struct tunnel *t, const uint8_t *json, size_t len)
{
    struct agent *a = tunnel_ud(t);
    json_t *msg = json_loadb((const char *)json, len, 0, NULL);
    const char *type = json_string_value(json_object_get(msg, "type"));
    json_t *active = json_object_get(msg, "active");
    if (type && strcmp(type, "standby") == 0) {
        log_info("the server prefers a newer agent of this cluster; standing by");
        a->standby = true;
    } else if (type && strcmp(type, "cluster-role") == 0 && json_is_boolean(active)) {
        set_cluster_role(a, json_is_true(active));
    } else {
        log_debug("ignoring a control message of type %s", type ? type : "(none)");
    }
    json_decref(msg);
}

static const struct tunnel_ops agent_tunnel_ops = {
    .on_open = on_stream_open,
    .on_control = on_control,
    .on_down = on_tunnel_down,
};

static void on_ws_open(struct ws *w)
{
    struct agent *a = ws_ud(w);
    struct tunnel_cfg tc = {
        .ping_interval_ms = a->cfg->ping_interval_ms,
        .dead_after_ms = a->cfg->dead_after_ms,
        .window = a->cfg->window,
    };
    a->ws = NULL;
    a->standby = false;
    a->t = tunnel_new(a->loop, w, false, &tc, &agent_tunnel_ops, a);
    if (!a->t) {
        schedule_retry(a, "out of memory");
        return;
    }
    backoff_reset(&a->bo);
    char hp[300];
    url_hostport(&a->servers[a->cur], hp, sizeof(hp));
    log_info("connected to %s (cluster %s%s%s)", hp, a->cfg->cluster_id,
             a->cfg->node_role ? ", node " : "", a->cfg->node_role ? a->cfg->node_name : "");
    /* The cluster agent speaks for the cluster; node agents serve their
     * node, and say whether they could stand in for it. */
    if (!a->cfg->node_role && a->kc && !(a->rep = reporter_new(a->loop, a->kc, a->t)))
        log_warn("cannot start cluster reports: out of memory");
    send_eligible(a);
}

static void on_ws_close(struct ws *w, const char *why)
{
    struct agent *a = ws_ud(w);
    a->ws = NULL;
    schedule_retry(a, why);
}

static const struct ws_ops agent_ws_ops = {
    .on_open = on_ws_open,
    .on_close = on_ws_close,
};

static void on_retry(struct loop_timer *t)
{
    struct agent *a = (struct agent *)((char *)t - offsetof(struct agent, retry));
    dial(a);
}

static void schedule_retry(struct agent *a, const char *why)
{
    uint64_t d = a->standby ? a->bo.max_ms : backoff_next(&a->bo);
    char hp[300];
    url_hostport(&a->servers[a->cur], hp, sizeof(hp));
    log_warn("link to %s lost: %s; retrying in %llu ms", hp, why, (unsigned long long)d);
    /* Spread over the replicas: the next attempt goes to the next one. */
    a->cur = (a->cur + 1) % a->nservers;
    loop_timer_start(a->loop, &a->retry, d, on_retry);
}

static int resolve(const struct url *u, struct netaddr *out, const char **why)
{
    if (u->host_is_ip)
        return netaddr_from_ip(u->host, u->port, out) == 0 ? 0 : (*why = "bad address", -1);
    struct addrinfo hints = { .ai_socktype = SOCK_STREAM }, *res = NULL;
    char port[8];
    snprintf(port, sizeof(port), "%d", u->port);
    int g = getaddrinfo(u->host, port, &hints, &res);
    if (g != 0 || !res) {
        *why = gai_strerror(g);
        return -1;
    }
    memcpy(&out->ss, res->ai_addr, res->ai_addrlen);
    out->len = res->ai_addrlen;
    freeaddrinfo(res);
    return 0;
}

static void dial(struct agent *a)
{
    const struct url *u = &a->servers[a->cur];
    struct netaddr na;
    const char *why;
    if (resolve(u, &na, &why) < 0) {
        char msg[300];
        snprintf(msg, sizeof(msg), "cannot resolve %s: %s", u->host, why);
        schedule_retry(a, msg);
        return;
    }
    struct ws_client_opts o = {
        .path = "/v3/connect",
        .host = u->host,
        .host_is_ip = u->host_is_ip,
        .subprotocol = TUN_SUBPROTOCOL,
        .extra_headers = a->headers,
        .max_message = TUN_MAX_MESSAGE,
    };
    a->ws = ws_client_connect(a->loop, (const struct sockaddr *)&na.ss, na.len, a->ctx,
                              &o, &agent_ws_ops, a);
    if (!a->ws)
        schedule_retry(a, "cannot create a socket");
}

/* ---- pinning ---- */

/* Fetches the CA from the servers in turn until one answers. 0 with the
 * pinned context set, 1 on a checksum mismatch, -1 if stopped. */
static int pin_ca(struct agent *a)
{
    for (;;) {
        const struct url *u = &a->servers[a->cur];
        char err[400], *pem = NULL;
        size_t len = 0;
        if (cacerts_fetch(u, CACERTS_TIMEOUT_MS, &pem, &len, err, sizeof(err)) == 0) {
            char sum[65];
            tls_sha256_hex(pem, len, sum);
            if (strcmp(sum, a->cfg->ca_checksum) != 0) {
                log_error("the server's CA checksum is %s but DROVER_CA_CHECKSUM is %s: "
                          "refusing to connect (wrong server, or a man in the middle)",
                          sum, a->cfg->ca_checksum);
                free(pem);
                return 1;
            }
            a->ctx = tls_client_ctx_pinned(pem, len, err, sizeof(err));
            free(pem);
            if (!a->ctx) {
                log_error("cannot use the server CA: %s", err);
                return 1;
            }
            return 0;
        }
        uint64_t d = backoff_next(&a->bo);
        log_warn("fetching the CA: %s; retrying in %llu ms", err, (unsigned long long)d);
        a->cur = (a->cur + 1) % a->nservers;
        struct timespec ts = { (time_t)(d / 1000), (long)(d % 1000) * 1000000L };
        /* SIGTERM is blocked by now (signalfd): poll for it while waiting. */
        sigset_t set;
        sigemptyset(&set);
        sigaddset(&set, SIGTERM);
        sigaddset(&set, SIGINT);
        if (sigtimedwait(&set, NULL, &ts) > 0)
            return -1;
    }
}

static int setup(struct agent *a, const struct agent_cfg *cfg)
{
    const char *why;
    a->cfg = cfg;
    if (parse_servers(cfg->servers, a->servers, &a->nservers, &why) < 0 ||
        allowlist_parse(cfg->allow_dial, &a->allow, &why) < 0) {
        log_error("bad settings: %s", why);
        return -1;
    }
    unsigned char r;
    if (RAND_bytes(&r, 1) == 1)
        a->cur = r % a->nservers;
    backoff_init(&a->bo, cfg->backoff_base_ms ? cfg->backoff_base_ms : 500,
                 cfg->backoff_max_ms ? cfg->backoff_max_ms : 30000);
    int n = snprintf(a->headers, sizeof(a->headers),
                     "Authorization: Bearer %s\r\nX-Drover-Cluster: %s\r\n"
                     "X-Drover-Role: %s\r\n%s%s%s%s%s%sUser-Agent: drover-agent/%s\r\n",
                     cfg->token, cfg->cluster_id, cfg->node_role ? "node" : "cluster",
                     cfg->node_name ? "X-Drover-Node: " : "",
                     cfg->node_name ? cfg->node_name : "", cfg->node_name ? "\r\n" : "",
                     cfg->node_roles ? "X-Drover-Node-Roles: " : "",
                     cfg->node_roles ? cfg->node_roles : "", cfg->node_roles ? "\r\n" : "",
                     DROVER_VERSION);
    if (n < 0 || (size_t)n >= sizeof(a->headers)) {
        log_error("bad settings: token or names too long");
        return -1;
    }
    return 0;
}

static bool is_ready(void *ud)
{
    struct agent *a = ud;
    return a->t != NULL || a->standby;
}

static int start_health(struct agent *a)
{
    const char *spec = a->cfg->health_listen, *why;
    struct netaddr na;
    if (!spec || !*spec)
        return 0;
    if (netaddr_parse(spec, &na, &why) < 0 ||
        !(a->health = health_new(a->loop, &na, is_ready, a, &why))) {
        log_error("health-listen %s: %s", spec, why);
        return -1;
    }
    return 0;
}

int agent_run(const struct agent_cfg *cfg)
{
    struct agent a = { 0 };
    int rc = 1;
    signal(SIGPIPE, SIG_IGN);
    if (setup(&a, cfg) < 0)
        return 1;
    a.loop = loop_new();
    if (!a.loop || loop_stop_on_signals(a.loop) < 0) {
        log_error("cannot start the event loop");
        goto out;
    }
    if (start_health(&a) < 0)
        goto out;
    if (cfg->kube.url) {
        char err[400];
        a.kube = kubeapi_new(a.loop, &cfg->kube, err, sizeof(err));
        if (a.kube)
            a.kc = kubeclient_new(a.loop, &cfg->kube, err, sizeof(err));
        if (a.kc && !(a.applier = applier_new(a.loop, a.kc)))
            snprintf(err, sizeof(err), "out of memory");
        if (!a.kube || !a.kc || !a.applier) {
            log_error("%s", err);
            goto out;
        }
        a.kube_ok = -1;
        if (cfg->node_role)     /* the first probe at once: be eligible early */
            loop_timer_start(a.loop, &a.probe_timer, 0, probe_start);
    } else {
        log_warn("no kube-apiserver configured (DROVER_KUBE_API, or running in a pod): "
                 "kube-api streams will be refused%s",
                 cfg->node_role ? ", and this node agent cannot stand in for the cluster agent"
                                : "");
    }
    int p = pin_ca(&a);
    if (p != 0) {
        rc = p < 0 ? 0 : 1;
        goto out;
    }
    log_info("server CA matches DROVER_CA_CHECKSUM; dialing");
    dial(&a);
    loop_run(a.loop);
    log_info("stopping");
    rc = 0;
out:
    health_free(a.health);
    kubeapi_free(a.kube);
    if (a.loop) {
        loop_timer_stop(a.loop, &a.retry);
        loop_timer_stop(a.loop, &a.probe_timer);
        if (a.probe)
            kubeclient_cancel(a.probe);
        reporter_free(a.rep);
        a.rep = NULL;
        if (a.t)
            tunnel_close(a.t, WS_CLOSE_GOING_AWAY, "agent stopping");
        else if (a.ws)
            ws_close(a.ws, WS_CLOSE_GOING_AWAY, "agent stopping");
        /* After the tunnel: its rbac and apply streams have let go of
         * their calls. */
        applier_free(a.applier);
        kubeclient_free(a.kc);
        conn_close_all();
        loop_free(a.loop);
    }
    if (a.ctx)
        SSL_CTX_free(a.ctx);
    return rc;
}
