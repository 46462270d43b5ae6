/*
 * drover-cluster-agent: one per cluster. Keeps the cluster's link to
 * drover-server and serves the streams the server opens into the cluster.
 */
#include "common/agent_opts.h"
#include "common/log.h"

static const struct cfg_opt opts[] = { AGENT_COMMON_OPTS };

int main(int argc, char **argv)
{
    struct cfg c = { 0 };
    struct agent_cfg ac = { 0 };
    log_init("drover-cluster-agent", LOG_INFO);
    int rc = cfg_load(&c, opts, sizeof(opts) / sizeof(opts[0]), "drover-cluster-agent",
                      "the cluster agent: links a cluster to drover-server", argc, argv);
    if (rc != 0)
        return rc == 1 ? 0 : 2;
    rc = agent_opts_apply(&c, "drover-cluster-agent", &ac);
    /* The manifest's probes expect this port; an empty setting turns it off. */
    if (!ac.health_listen)
        ac.health_listen = "0.0.0.0:9443";
    if (rc == 0)
        rc = agent_run(&ac);
    cfg_free(&c);
    return rc;
}
