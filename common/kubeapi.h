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

#include <stdbool.h>

#include "common/loop.h"
#include "common/tunnel.h"

struct kubeapi;

struct kubeapi_cfg {
    const char *url;            /* https://host:port of the kube-apiserver */
    const char *token_file;     /* service-account token, re-read as it rotates */
    const char *ca_file;        /* CA bundle that signs the apiserver's certificate */
};

/* NULL with err if the settings are unusable (bad URL, unreadable CA). */
struct kubeapi *kubeapi_new(struct loop *l, const struct kubeapi_cfg *cfg,
                            char *err, size_t errlen);
void kubeapi_free(struct kubeapi *k);

/* Serves a "kube-api" stream the server opened (meta as sent). */
void kubeapi_serve(struct kubeapi *k, struct tun_stream *s, const uint8_t *meta,
                   size_t meta_len);

#endif
