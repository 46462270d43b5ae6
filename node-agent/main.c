/*
 * drover-node-agent: one per node (a DaemonSet). Keeps its own link to
 * drover-server with the node's identity and serves the streams the server
 * opens to it.
 */
#include <stdio.h>

#include "common/agent_opts.h"
#include "common/log.h"

static const struct cfg_opt opts[] = { AGENT_COMMON_OPTS };

int main(int argc, char **argv)
{
    struct cfg c = { 0 };
    struct agent_cfg ac = { 0 };
    log_init("drover-node-agent", LOG_INFO);
    int rc = cfg_load(&c, opts, sizeof(opts) / sizeof(opts[0]), "drover-node-agent",
                      "the node agent: links one node to drover-server", argc, argv);
    if (rc != 0)
        return rc == 1 ? 0 : 2;
    rc = agent_opts_apply(&c, "drover-node-agent", &ac);
    /* The manifest's probes expect this port; an empty setting turns it off. */
    if (!ac.health_listen)
        ac.health_listen = "127.0.0.1:9444";
    if (rc == 0 && !ac.node_name) {
        fprintf(stderr, "drover-node-agent: missing setting node-name (env DROVER_NODE_NAME)\n");
        rc = 2;
    }
    ac.node_role = true;
    if (rc == 0)
        rc = agent_run(&ac);
    cfg_free(&c);
    return rc;
}
