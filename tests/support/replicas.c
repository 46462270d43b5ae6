/*
 * replicas: several server replicas for tests. See replicas.h.
 */
#include "tests/support/replicas.h"

#include <check.h>
#include <stdio.h>
#include <string.h>

#include "tests/support/apitest.h"

/* A fresh directory for replica i, keeping its port if it had one. */
static void init_replica(struct replicas *R, int i)
{
    struct dtest *r = &R->rep[i];
    char dir[256];
    int port = r->https_port;
    memset(r, 0, sizeof(*r));
    make_temp_dir(dir, sizeof(dir));
    memcpy(r->dir, dir, sizeof(r->dir));
    r->https_port = port ? port : free_port();
    snprintf(r->server_log, sizeof(r->server_log), "%s/server.log", dir);
    memcpy(r->datastore, R->dburl, sizeof(r->datastore));
}

void replicas_spawn(struct replicas *R, int i, bool fresh_dir)
{
    char id[16];
    const char *args[24];
    size_t n = 0;
    if (fresh_dir)
        init_replica(R, i);
    snprintf(id, sizeof(id), "r%d", i);
    const char *base[] = { "--peer-id", id, "--peer-token-file", R->tokfile,
                           "--ping-interval", "500ms", "--dead-after", "2s" };
    for (size_t k = 0; k < sizeof(base) / sizeof(base[0]); k++)
        args[n++] = base[k];
    for (size_t k = 0; R->extra && R->extra[k] && n < 23; k++)
        args[n++] = R->extra[k];
    args[n] = NULL;
    dtest_spawn_server(&R->rep[i], args);
}

static void write_token_file(struct replicas *R)
{
    snprintf(R->tokfile, sizeof(R->tokfile), "%s/peer.token", R->base.dir);
    FILE *f = fopen(R->tokfile, "w");
    ck_assert_ptr_nonnull(f);
    fprintf(f, "%s\n", REPLICAS_PEER_TOKEN);
    fclose(f);
}

void replicas_start(struct replicas *R, int n, const char *const *extra)
{
    ck_assert(n > 0 && n <= REPLICAS_MAX);
    memset(R, 0, sizeof(*R));
    R->n = n;
    R->extra = extra;
    make_temp_dir(R->base.dir, sizeof(R->base.dir));
    apitest_new_database(R->dburl, sizeof(R->dburl));
    for (int i = 0; i < n; i++)
        init_replica(R, i);
    write_token_file(R);
    /* The first one alone: it makes the CA and prints the admin password. */
    replicas_spawn(R, 0, false);
    dtest_admin(&R->rep[0]);
    for (int i = 1; i < n; i++) {
        replicas_spawn(R, i, false);
        memcpy(R->rep[i].admin_token, R->rep[0].admin_token, sizeof(R->rep[i].admin_token));
    }
    size_t k = 0;
    for (int i = 0; i < n; i++)
        k += (size_t)snprintf(R->servers + k, sizeof(R->servers) - k, "%shttps://127.0.0.1:%d",
                              i ? "," : "", R->rep[i].https_port);
}

int replicas_lease_holders(struct replicas *R, int *who)
{
    int n = 0;
    for (int i = 0; i < R->n; i++) {
        if (!R->rep[i].server.pid)
            continue;
        /* The last word in its log about the lease. */
        char cmd[600], out[64];
        snprintf(cmd, sizeof(cmd), "grep -o 'lease controllers: [a-z]*' %s | tail -1",
                 R->rep[i].server_log);
        if (run_capture(cmd, out, sizeof(out)) == 0 && strstr(out, "acquired")) {
            *who = i;
            n++;
        }
    }
    return n;
}

void replicas_down(struct replicas *R)
{
    for (int i = 0; i < R->n; i++)
        dtest_down(&R->rep[i]);
    remove_tree(R->base.dir);
}
