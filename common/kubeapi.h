/*
 * kubeapi: the agents' "kube-api" service. Each stream carries one HTTP/1.1
 * exchange from drover-server: the request (head and body) comes in, the
 * kube-apiserver's answer goes back verbatim, and an upgraded exchange (exec,
 * attach, port-forward) becomes a raw two-way relay.
 *
 * The cluster's credentials never leave it: the agent drops any
 * Authorization and Impersonate-* headers it is sent and adds its own
 * service-account token plus Impersonate-User/-Group for the identity the
 * server names in the stream's metadata ({"user":..,"groups":[..]}).
 * Upstream TLS connections are kept alive and reused.
 */
#ifndef DROVER_KUBEAPI_H
#define DROVER_KUBEAPI_H

#include <openssl/ssl.h>
#include <stdbool.h>
#include <stdint.h>

#include "common/loop.h"
#include "common/netaddr.h"
#include "common/tunnel.h"
#include "common/url.h"

struct kubeapi;

struct kubeapi_cfg {
    const char *url;            /* https://host:port of the kube-apiserver */
    const char *token_file;     /* service-account token, re-read as it rotates */
    const char *ca_file;        /* CA bundle that signs the apiserver's certificate */
};

/* ---- shared with kubeclient (the agent's own API calls) ---- */

#define KUBEAPI_TOKEN_MAX 16384

/* The service-account token, re-read as it rotates. Caller owns file. */
struct kubeapi_token {
    const char *file;
    char value[KUBEAPI_TOKEN_MAX];
    uint64_t at;                /* loop ms of the last read */
};

/* Reads the token again if the last read is over 60 s old (now_ms: the
 * loop's clock). 0, or -1 if no token could ever be read (a failed re-read
 * keeps the old one: a rotation in progress is not an outage). */
int kubeapi_token_load(struct kubeapi_token *t, uint64_t now_ms);

/*
 * The endpoint of cfg: its parsed https URL, its address (resolved once,
 * here: the loop must not block on DNS later) and a TLS context trusting
 * only cfg->ca_file. 0, or -1 with err. The caller frees *ctx.
 */
int kubeapi_endpoint(const struct kubeapi_cfg *cfg, struct url *url, struct netaddr *addr,
                     SSL_CTX **ctx, char *err, size_t errlen);

/* NULL with err if the settings are unusable (bad URL, unreadable CA). */
struct kubeapi *kubeapi_new(struct loop *l, const struct kubeapi_cfg *cfg,
                            char *err, size_t errlen);
void kubeapi_free(struct kubeapi *k);

/* Serves a "kube-api" stream the server opened (meta as sent). */
void kubeapi_serve(struct kubeapi *k, struct tun_stream *s, const uint8_t *meta,
                   size_t meta_len);

#endif
