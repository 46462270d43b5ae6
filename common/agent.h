/*
 * agent: the link every drover agent keeps to its server. Pins the server CA
 * by checksum, dials /v3/connect over wss with its credentials, keeps the
 * tunnel up (reconnecting with exponential backoff and full jitter, across
 * the listed servers), and serves the streams the server opens: the "tcp"
 * relay to addresses on the allow-list, and whatever services the program
 * registers.
 *
 * Used by drover-cluster-agent and drover-node-agent, each with its role.
 * The cluster agent reports and serves "kube-api" and "rbac" while its
 * tunnel is up. A node agent with a kube-apiserver configured probes it
 * (GET /readyz with its service account) and tells the server whether it
 * can stand in ({"type":"eligible"}); it reports and serves "kube-api" and
 * "rbac" only while the server gives it the cluster role
 * ({"type":"cluster-role"}, docs/PROTOCOL.md section 8).
 */
#ifndef DROVER_AGENT_H
#define DROVER_AGENT_H

#include <stdbool.h>
#include <stdint.h>

#include "common/allowlist.h"
#include "common/kubeapi.h"
#include "common/tunnel.h"

#define AGENT_MAX_SERVERS 8

/* A service a program adds to the agent's own (node-agent's node tasks). */
struct agent_service {
    const char *name;
    /* A stream the server opened for name: accept or reset it. */
    void (*serve)(void *ud, struct loop *l, struct tun_stream *s, const uint8_t *meta,
                  size_t meta_len);
    void *ud;
};

struct agent_cfg {
    const char *servers;        /* DROVER_SERVER: URL or comma list */
    const char *token;
    const char *ca_checksum;
    const char *cluster_id;
    const char *node_name;      /* node agents (sent by cluster agents too) */
    bool node_role;
    const char *node_roles;     /* node agents: "etcd,controlplane,worker" (may be NULL) */
    const struct agent_service *services;   /* extra services; not copied */
    size_t nservices;
    const char *allow_dial;
    const char *health_listen;  /* probes address; NULL/empty = none */
    struct kubeapi_cfg kube;    /* url NULL: no kube-api service */
    uint64_t ping_interval_ms, dead_after_ms;
    uint32_t window;            /* stream receive window; 0 = default */
    uint64_t backoff_base_ms, backoff_max_ms;
};

/*
 * Runs the agent until SIGTERM/SIGINT. Returns the process exit code: 0 after
 * a signal, 1 when the server's CA does not match the checksum (or another
 * fatal setup error), after logging why.
 */
int agent_run(const struct agent_cfg *cfg);

/* Settings checks shared by both agents' option tables. */
const char *agent_check_servers(const char *v);
const char *agent_check_checksum(const char *v);

#endif
