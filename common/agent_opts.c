/*
 * agent_opts: shared agent settings. See agent_opts.h.
 */
#include "common/agent_opts.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"

const char *agent_check_level(const char *v)
{
    enum log_level l;
    return log_parse_level(v, &l) < 0 ? "must be error, warn, info or debug" : NULL;
}

int agent_opts_apply(const struct cfg *c, const char *prog, struct agent_cfg *out)
{
    static const char *const required[][2] = {
        { "server", "DROVER_SERVER" }, { "token", "DROVER_TOKEN" },
        { "ca-checksum", "DROVER_CA_CHECKSUM" }, { "cluster-id", "DROVER_CLUSTER_ID" },
    };
    for (size_t i = 0; i < sizeof(required) / sizeof(required[0]); i++) {
        if (!cfg_str(c, required[i][0]) || !*cfg_str(c, required[i][0])) {
            fprintf(stderr, "%s: missing setting %s (env %s)\n", prog, required[i][0],
                    required[i][1]);
            return 2;
        }
    }
    if (cfg_duration_ms(c, "dead-after") <= cfg_duration_ms(c, "ping-interval")) {
        fprintf(stderr, "%s: invalid dead-after: must be longer than ping-interval\n", prog);
        return 2;
    }
    enum log_level lvl;
    log_parse_level(cfg_str(c, "log-level"), &lvl);
    log_set_level(lvl);
    out->servers = cfg_str(c, "server");
    out->token = cfg_str(c, "token");
    out->ca_checksum = cfg_str(c, "ca-checksum");
    out->cluster_id = cfg_str(c, "cluster-id");
    out->node_name = cfg_str(c, "node-name");
    out->allow_dial = cfg_str(c, "allow-dial");
    out->health_listen = cfg_str(c, "health-listen");
    out->kube.token_file = cfg_str(c, "kube-token-file");
    out->kube.ca_file = cfg_str(c, "kube-ca-file");
    out->kube.url = cfg_str(c, "kube-api");
    /* In a pod, Kubernetes tells every container where its apiserver is. */
    static char in_cluster[300];
    const char *host = getenv("KUBERNETES_SERVICE_HOST");
    const char *port = getenv("KUBERNETES_SERVICE_PORT");
    if (!out->kube.url && host && *host) {
        bool v6 = strchr(host, ':') != NULL;
        snprintf(in_cluster, sizeof(in_cluster), "https://%s%s%s:%s", v6 ? "[" : "", host,
                 v6 ? "]" : "", port && *port ? port : "443");
        out->kube.url = in_cluster;
    }
    out->ping_interval_ms = cfg_duration_ms(c, "ping-interval");
    out->dead_after_ms = cfg_duration_ms(c, "dead-after");
    out->window = (uint32_t)cfg_size(c, "stream-window");
    return 0;
}
