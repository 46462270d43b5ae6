/*
 * routes: which handler answers which path. Unauthenticated endpoints
 * (/cacerts, /healthz, /readyz, /version, /metrics) are answered here; the
 * agents' websocket goes to tunnels, POST /v3/clusters/{id}/apply to
 * api_apply (it streams to the cluster agent), the rest of /v3 to the api, and
 * /k8s/clusters/{id}/... to kubeproxy once the api has authorized it.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "proto/frame.h"
#include "server/api_apply.h"
#include "server/kubeproxy.h"
#include "server/metrics.h"
#include "server/server.h"

static bool path_is(const struct hs_req *r, const char *p)
{
    size_t n;
    const char *path = hs_path(r, &n);
    return n == strlen(p) && memcmp(path, p, n) == 0;
}

static void get_version(struct hs_req *r)
{
    char body[256];
    int n = snprintf(body, sizeof(body),
                     "{\"version\":\"%s\",\"protocol\":\"drover-tunnel.v%d\"}\n",
                     DROVER_VERSION, TUN_VERSION);
    hs_respond(r, 200, "application/json", body, (size_t)n, NULL);
}

static void get_metrics(struct server *s, struct hs_req *r)
{
    size_t len;
    char *text = metrics_render(s->tunnels, s->pool, &len);
    if (!text) {
        hs_error(r, 503, "ServiceUnavailable", "out of memory");
        return;
    }
    hs_respond(r, 200, "text/plain; version=0.0.4", text, len, NULL);
    free(text);
}

/* The cluster id of a /k8s/clusters/<id>/... path into out[64]; false if
 * there is none. */
static bool k8s_cluster(const struct hs_req *r, char out[64])
{
    size_t n, pl = sizeof(KUBEPROXY_PREFIX) - 1;
    const char *path = hs_path(r, &n);
    if (n <= pl || memcmp(path, KUBEPROXY_PREFIX, pl) != 0)
        return false;
    const char *id = path + pl, *slash = memchr(id, '/', n - pl);
    size_t il = slash ? (size_t)(slash - id) : n - pl;
    if (il == 0 || il >= 64)
        return false;
    memcpy(out, id, il);
    out[il] = '\0';
    return true;
}

static void k8s_authorized(struct hs_req *r, const char *username, void *ud)
{
    struct server *s = ud;
    char cluster[64];
    if (k8s_cluster(r, cluster))
        kubeproxy_forward(s->https, s->tunnels, r, cluster, username);
    else
        hs_error(r, 404, "NotFound", "no such cluster");
}

void server_dispatch(struct hs_req *r, void *ud)
{
    struct server *s = ud;
    bool get = hs_method_is(r, "GET") || hs_method_is(r, "HEAD");
    if (path_is(r, "/v3/connect")) {
        if (!hs_method_is(r, "GET")) {
            hs_error(r, 405, "MethodNotAllowed", "use GET with a websocket upgrade");
            return;
        }
        tunnels_connect(s->tunnels, r);
        return;
    }
    if (path_is(r, "/v3/peer")) {
        if (!s->peers)
            hs_error(r, 404, "NotFound", "this server runs without replicas");
        else if (!hs_method_is(r, "GET"))
            hs_error(r, 405, "MethodNotAllowed", "use GET with a websocket upgrade");
        else
            peers_accept(s->peers, r);
        return;
    }
    if (get && path_is(r, "/cacerts")) {
        hs_respond(r, 200, "application/x-pem-file", s->pki.ca_pem, s->pki.ca_pem_len, NULL);
        return;
    }
    if (get && path_is(r, "/healthz")) {
        hs_respond(r, 200, "text/plain", "ok\n", 3, NULL);
        return;
    }
    if (get && path_is(r, "/readyz")) {
        /* Ready once every API answers: the datastore is up and what the
         * last run left unfinished is marked (set in main.c). */
        if (s->serving)
            hs_respond(r, 200, "text/plain", "ok\n", 3, NULL);
        else
            hs_respond(r, 503, "text/plain", "starting: datastore not ready\n", 30, NULL);
        return;
    }
    if (get && path_is(r, "/version")) {
        get_version(r);
        return;
    }
    if (get && path_is(r, "/metrics")) {
        get_metrics(s, r);
        return;
    }
    size_t n;
    const char *path = hs_path(r, &n);
    char cluster[64];
    if (api_apply_path(r, cluster)) {
        api_apply(s, r, cluster);
        return;
    }
    if (n > 4 && memcmp(path, "/v3/", 4) == 0) {
        /* Snapshots and upgrades first: they need the tunnels mid-request. */
        if (s->snapapi && snapapi_dispatch(s->snapapi, r))
            return;
        api_dispatch(s->api, r);
        return;
    }
    if (k8s_cluster(r, cluster)) {
        api_authorize_cluster(s->api, r, cluster, k8s_authorized, s);
        return;
    }
    hs_error(r, 404, "NotFound", "no such endpoint: %.*s", (int)(n > 200 ? 200 : n), path);
}
