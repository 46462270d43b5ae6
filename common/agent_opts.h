/*
 * agent_opts: the settings both agents share (PRODUCT.md "Agent settings"),
 * as config table rows, and their translation into an agent_cfg.
 */
#ifndef DROVER_AGENT_OPTS_H
#define DROVER_AGENT_OPTS_H

#include "common/agent.h"
#include "common/config.h"

const char *agent_check_level(const char *v);

#define AGENT_COMMON_OPTS                                                          \
    { "server", "DROVER_SERVER", CFG_STRING, NULL, 0, 0,                          \
      "drover-server URL, or a comma list of replicas", agent_check_servers },    \
    { "token", "DROVER_TOKEN", CFG_STRING, NULL, 0, 0,                            \
      "the cluster's registration token", NULL },                                 \
    { "ca-checksum", "DROVER_CA_CHECKSUM", CFG_STRING, NULL, 0, 0,                \
      "SHA-256 (hex) of the server CA served at /cacerts", agent_check_checksum },\
    { "cluster-id", "DROVER_CLUSTER_ID", CFG_STRING, NULL, 0, 0,                  \
      "this cluster's id (c-xxxxx)", NULL },                                      \
    { "node-name", "DROVER_NODE_NAME", CFG_STRING, NULL, 0, 0,                    \
      "the node this agent runs on", NULL },                                      \
    { "allow-dial", "DROVER_ALLOW_DIAL", CFG_STRING, NULL, 0, 0,                  \
      "extra IP:PORT or CIDR:PORT the server may ask this agent to dial",         \
      allowlist_check },                                                          \
    { "ping-interval", "DROVER_PING_INTERVAL", CFG_DURATION, "5s", 100, 3600000,  \
      "keepalive ping interval", NULL },                                          \
    { "dead-after", "DROVER_DEAD_AFTER", CFG_DURATION, "15s", 300, 86400000,      \
      "drop the link after this long without a word from the server", NULL },    \
    { "stream-window", "DROVER_STREAM_WINDOW", CFG_SIZE, "256KiB", 65536, 16777216,\
      "receive window granted to each tunnel stream", NULL },                     \
    { "kube-api", "DROVER_KUBE_API", CFG_STRING, NULL, 0, 0,                      \
      "kube-apiserver URL (default https://$KUBERNETES_SERVICE_HOST:$KUBERNETES_SERVICE_PORT)",\
      NULL },                                                                      \
    { "kube-token-file", "DROVER_KUBE_TOKEN_FILE", CFG_STRING,                    \
      "/var/run/secrets/kubernetes.io/serviceaccount/token", 0, 0,                \
      "service-account token the agent presents to the kube-apiserver", NULL },  \
    { "kube-ca-file", "DROVER_KUBE_CA_FILE", CFG_STRING,                          \
      "/var/run/secrets/kubernetes.io/serviceaccount/ca.crt", 0, 0,               \
      "CA bundle of the kube-apiserver", NULL },                                  \
    { "health-listen", "DROVER_HEALTH_LISTEN", CFG_STRING, NULL, 0, 0,            \
      "plain-HTTP /healthz and /readyz for the kubelet (empty: off)", NULL },    \
    { "log-level", "DROVER_LOG_LEVEL", CFG_STRING, "info", 0, 0,                  \
      "error, warn, info or debug", agent_check_level }

/* Fills out from c (which must contain AGENT_COMMON_OPTS) and checks the
 * settings every agent needs. 0, or 2 after printing which one is missing. */
int agent_opts_apply(const struct cfg *c, const char *prog, struct agent_cfg *out);

#endif
