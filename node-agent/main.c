/*
 * drover-node-agent: one per node (a DaemonSet). Keeps its own link to
 * drover-server with the node's identity (name and roles) and serves the
 * streams the server opens to it, including the node tasks: etcd
 * snapshots, restores and upgrades (node-agent/etcdtask.c, upgrade.c).
 */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "common/agent_opts.h"
#include "common/log.h"
#include "node-agent/ntask.h"

static const char *check_roles(const char *v)
{
    for (const char *p = v; *p;) {
        size_t n = strcspn(p, ",");
        if (!((n == 4 && memcmp(p, "etcd", 4) == 0) ||
              (n == 12 && memcmp(p, "controlplane", 12) == 0) ||
              (n == 6 && memcmp(p, "worker", 6) == 0)))
            return "must be a comma list of etcd, controlplane and worker";
        p += n + (p[n] == ',');
    }
    return NULL;
}

static const struct cfg_opt opts[] = {
    AGENT_COMMON_OPTS,
    { "node-roles", "DROVER_NODE_ROLES", CFG_STRING, NULL, 0, 0,
      "this node's roles: a comma list of etcd, controlplane, worker", check_roles },
    { "etcdctl", "DROVER_ETCDCTL", CFG_STRING, "etcdctl", 0, 0,
      "etcdctl program (path or name on $PATH); etcdutl beside it restores if present", NULL },
    { "etcd-endpoints", "DROVER_ETCD_ENDPOINTS", CFG_STRING, "https://127.0.0.1:2379", 0, 0,
      "this node's etcd client URL(s), comma separated", NULL },
    { "etcd-cacert", "DROVER_ETCD_CACERT", CFG_STRING, NULL, 0, 0,
      "CA bundle of etcd's client certificates", NULL },
    { "etcd-cert", "DROVER_ETCD_CERT", CFG_STRING, NULL, 0, 0,
      "client certificate for etcd", NULL },
    { "etcd-key", "DROVER_ETCD_KEY", CFG_STRING, NULL, 0, 0,
      "client key for etcd", NULL },
    { "snapshot-dir", "DROVER_SNAPSHOT_DIR", CFG_STRING, "/var/lib/drover/snapshots", 0, 0,
      "where etcd snapshots are written on this node", NULL },
    { "state-dir", "DROVER_STATE_DIR", CFG_STRING, "/var/lib/drover", 0, 0,
      "the agent's own files (restored etcd data directories)", NULL },
    { "restore-hook", "DROVER_RESTORE_HOOK", CFG_STRING, NULL, 0, 0,
      "program run after a restore: stops etcd, swaps in $DROVER_RESTORE_DATA_DIR, starts it",
      NULL },
    { "upgrade-hook", "DROVER_UPGRADE_HOOK", CFG_STRING, NULL, 0, 0,
      "program run with the version for an upgrade", NULL },
    { "task-timeout", "DROVER_TASK_TIMEOUT", CFG_DURATION, "30m", 1000, 86400000,
      "longest a node task's program (etcdctl, a hook) may run", NULL },
};

/* etcdutl (etcd 3.5+) restores; Debian 12's etcd 3.4 has only etcdctl.
 * Looked for beside etcdctl, or on $PATH when etcdctl is a bare name. */
static const char *find_etcdutl(const char *etcdctl, char *buf, size_t cap)
{
    const char *slash = strrchr(etcdctl, '/');
    if (slash) {
        snprintf(buf, cap, "%.*setcdutl", (int)(slash - etcdctl + 1), etcdctl);
        return access(buf, X_OK) == 0 ? buf : NULL;
    }
    static const char *const dirs[] = { "/usr/local/bin", "/usr/bin", "/bin" };
    for (size_t i = 0; i < sizeof(dirs) / sizeof(dirs[0]); i++) {
        snprintf(buf, cap, "%s/etcdutl", dirs[i]);
        if (access(buf, X_OK) == 0)
            return buf;
    }
    return NULL;
}

static const char *opt(const struct cfg *c, const char *key)
{
    const char *v = cfg_str(c, key);
    return v && *v ? v : NULL;
}

static void node_settings(const struct cfg *c, struct nodecfg *n, char *utl, size_t cap)
{
    n->etcdctl = cfg_str(c, "etcdctl");
    n->etcdutl = find_etcdutl(n->etcdctl, utl, cap);
    n->endpoints = cfg_str(c, "etcd-endpoints");
    n->cacert = opt(c, "etcd-cacert");
    n->cert = opt(c, "etcd-cert");
    n->key = opt(c, "etcd-key");
    n->snapshot_dir = cfg_str(c, "snapshot-dir");
    n->state_dir = cfg_str(c, "state-dir");
    n->restore_hook = opt(c, "restore-hook");
    n->upgrade_hook = opt(c, "upgrade-hook");
    n->timeout_ms = cfg_duration_ms(c, "task-timeout");
}

int main(int argc, char **argv)
{
    struct cfg c = { 0 };
    struct agent_cfg ac = { 0 };
    struct nodecfg nc = { 0 };
    char utl[512];
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
    ac.node_roles = opt(&c, "node-roles");
    node_settings(&c, &nc, utl, sizeof(utl));
    nc.node_name = ac.node_name;
    const struct agent_service services[] = {
        { "etcd-snapshot", etcdtask_snapshot, &nc },
        { "etcd-restore", etcdtask_restore, &nc },
        { "etcd-snapshot-delete", etcdtask_delete, &nc },
        { "upgrade", upgrade_serve, &nc },
    };
    ac.services = services;
    ac.nservices = sizeof(services) / sizeof(services[0]);
    if (rc == 0)
        rc = agent_run(&ac);
    cfg_free(&c);
    return rc;
}
