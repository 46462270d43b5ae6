/*
 * replicas: several server replicas for integration tests. See replicas.h.
 */
#include "tests/support/replicas.h"

#include <check.h>
#include <stdio.h>
#include <string.h>

#include "tests/support/apitest.h"

/* A fresh directory for replica i, keeping its port if it had one. */
static void init_replica(struct replica_set *rs, int i)
{
    struct dtest *r = &rs->rep[i];
    char dir[256];
    int port = r->https_port;
    memset(r, 0, sizeof(*r));
    make_temp_dir(dir, sizeof(dir));
    memcpy(r->dir, dir, sizeof(r->dir));
    r->https_port = port ? port : free_port();
    snprintf(r->server_log, sizeof(r->server_log), "%s/server.log", dir);
    memcpy(r->datastore, rs->dburl, sizeof(r->datastore));
}

void replicas_spawn(struct replica_set *rs, int i, bool fresh_dir)
{
    char id[16];
    if (fresh_dir)
        init_replica(rs, i);
    snprintf(id, sizeof(id), "r%d", i);
    const char *base[] = { "--peer-id", id, "--peer-token-file", rs->tokfile,
                           "--ping-interval", "500ms", "--dead-after", "2s" };
    const char *args[24];
    size_t n = 0;
    for (size_t k = 0; k < sizeof(base) / sizeof(base[0]); k++)
        args[n++] = base[k];
    for (size_t k = 0; rs->extra && rs->extra[k] && n < 23; k++)
        args[n++] = rs->extra[k];
    args[n] = NULL;
    dtest_spawn_server(&rs->rep[i], args);
}

static void write_token_file(struct replica_set *rs)
{
    snprintf(rs->tokfile, sizeof(rs->tokfile), "%s/peer.token", rs->base.dir);
    FILE *f = fopen(rs->tokfile, "w");
    ck_assert_ptr_nonnull(f);
    fprintf(f, "%s\n", REPLICAS_PEER_TOKEN);
    fclose(f);
}

void replicas_start(struct replica_set *rs, int n, const char *const *extra)
{
    ck_assert(n > 0 && n <= REPLICAS_MAX);
    memset(rs, 0, sizeof(*rs));
    rs->n = n;
    rs->extra = extra;
    make_temp_dir(rs->base.dir, sizeof(rs->base.dir));
    apitest_new_database(rs->dburl, sizeof(rs->dburl));
    for (int i = 0; i < n; i++)
        init_replica(rs, i);
    write_token_file(rs);
    replicas_spawn(rs, 0, false);
    dtest_admin(&rs->rep[0]);
    for (int i = 1; i < n; i++) {
        replicas_spawn(rs, i, false);
        memcpy(rs->rep[i].admin_token, rs->rep[0].admin_token,
               sizeof(rs->rep[i].admin_token));
    }
    size_t len = 0;
    for (int i = 0; i < n; i++)
        len += (size_t)snprintf(rs->servers + len, sizeof(rs->servers) - len,
                                "%shttps://127.0.0.1:%d", i ? "," : "",
                                rs->rep[i].https_port);
}

int replicas_lease_holders(struct replica_set *rs, int *who)
{
    int n = 0;
    for (int i = 0; i < rs->n; i++) {
        if (!rs->rep[i].server.pid)
            continue;
        /* The last word in its log about the lease. */
        char cmd[600], out[64];
        snprintf(cmd, sizeof(cmd), "grep -o 'lease controllers: [a-z]*' %s | tail -1",
                 rs->rep[i].server_log);
        if (run_capture(cmd, out, sizeof(out)) == 0 && strstr(out, "acquired")) {
            *who = i;
            n++;
        }
    }
    return n;
}

void replicas_down(struct replica_set *rs)
{
    for (int i = 0; i < rs->n; i++)
        dtest_down(&rs->rep[i]);
    remove_tree(rs->base.dir);
}

const char *replicas_url(const struct replica_set *rs, int i, char *buf, size_t cap)
{
    snprintf(buf, cap, "https://127.0.0.1:%d", rs->rep[i].https_port);
    return buf;
}

void replicas_spawn_agent(struct replica_set *rs, const struct standin *ks, struct proc *p,
                          const struct replica_agent *a)
{
    char e[12][500], tokf[450];
    snprintf(tokf, sizeof(tokf), "%s/%s-%s.sa-token", rs->base.dir, a->cluster,
             a->node ? a->node : "cluster-agent");
    FILE *f = fopen(tokf, "w");
    ck_assert_ptr_nonnull(f);
    fprintf(f, "%s\n", a->sa_token);
    fclose(f);
    snprintf(e[0], sizeof(e[0]), "DROVER_SERVER=%s", a->servers);
    snprintf(e[1], sizeof(e[1]), "DROVER_TOKEN=%s", a->token);
    snprintf(e[2], sizeof(e[2]), "DROVER_CA_CHECKSUM=%s", rs->rep[0].checksum);
    snprintf(e[3], sizeof(e[3]), "DROVER_CLUSTER_ID=%s", a->cluster);
    snprintf(e[4], sizeof(e[4]), "DROVER_PING_INTERVAL=500ms");
    snprintf(e[5], sizeof(e[5]), "DROVER_DEAD_AFTER=2s");
    snprintf(e[6], sizeof(e[6]), "DROVER_HEALTH_LISTEN=%s", a->node ? "" : "127.0.0.1:0");
    snprintf(e[7], sizeof(e[7]), "DROVER_KUBE_API=https://127.0.0.1:%d", ks->port);
    snprintf(e[8], sizeof(e[8]), "DROVER_KUBE_TOKEN_FILE=%s", tokf);
    snprintf(e[9], sizeof(e[9]), "DROVER_KUBE_CA_FILE=%s/ca.crt", ks->dir);
    snprintf(e[10], sizeof(e[10]), "DROVER_NODE_NAME=%s", a->node ? a->node : "");
    const char *env[] = { e[0], e[1], e[2], e[3], e[4], e[5], e[6], e[7], e[8], e[9],
                          a->node ? e[10] : NULL, NULL };
    const char *argv[] = { bin_path(a->node ? "drover-node-agent" : "drover-cluster-agent"),
                           NULL };
    proc_spawn(p, argv, env, a->log);
}
