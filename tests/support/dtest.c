/*
 * dtest: loopback deployments for integration tests. See dtest.h.
 */
#include "tests/support/dtest.h"

#include <check.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static bool port_open(int port)
{
    char cmd[128], out[16];
    snprintf(cmd, sizeof(cmd), "bash -c 'echo > /dev/tcp/127.0.0.1/%d' 2>/dev/null && echo y",
             port);
    return run_capture(cmd, out, sizeof(out)) == 0 && out[0] == 'y';
}

static bool port_open_cb(void *ud)
{
    return port_open(*(int *)ud);
}

static void setup_dir(struct dtest *d)
{
    make_temp_dir(d->dir, sizeof(d->dir));
    d->https_port = free_port();
    snprintf(d->server_log, sizeof(d->server_log), "%s/server.log", d->dir);
    snprintf(d->agent_log, sizeof(d->agent_log), "%s/agent.log", d->dir);
    snprintf(d->target_log, sizeof(d->target_log), "%s/target.log", d->dir);
}

static bool server_ready(void *ud)
{
    struct dtest *d = ud;
    struct httpc_resp r;
    int st = httpc_do(d->https_port, "GET", "/readyz", NULL, NULL, 0, 2000, &r);
    httpc_free(&r);
    return st == 200;
}

void dtest_spawn_server(struct dtest *d, const char *const extra[])
{
    dtest_spawn(d, extra, true);
}

void dtest_spawn(struct dtest *d, const char *const extra[], bool wait_ready)
{
    char listen[64], data[300];
    const char *argv[32];
    size_t n = 0;
    if (!d->dir[0])
        setup_dir(d);
    snprintf(listen, sizeof(listen), "127.0.0.1:%d", d->https_port);
    snprintf(data, sizeof(data), "%s/data", d->dir);
    argv[n++] = bin_path("drover-server");
    argv[n++] = "--listen";
    argv[n++] = listen;
    argv[n++] = "--data-dir";
    argv[n++] = data;
    if (d->datastore[0]) {
        argv[n++] = "--datastore";
        argv[n++] = d->datastore;
    }
    for (size_t i = 0; extra && extra[i] && n < 31; i++)
        argv[n++] = extra[i];
    argv[n] = NULL;
    proc_spawn(&d->server, argv, NULL, d->server_log);
    if (!wait_ready)
        return;
    ck_assert_msg(wait_until(server_ready, d, 30000), "server not ready (log %s)",
                  d->server_log);
    char ca[400];
    snprintf(ca, sizeof(ca), "%s/ca.crt", data);
    ck_assert_int_eq(file_sha256(ca, d->checksum), 0);
}

void dtest_stop_server(struct dtest *d)
{
    proc_signal(&d->server, SIGTERM);
    int rc = proc_wait(&d->server, 20000);
    ck_assert_msg(rc == 0, "server exit %d (log %s)", rc, d->server_log);
}

int dtest_call(struct dtest *d, const char *method, const char *path, const char *token,
               const char *body, struct httpc_resp *out)
{
    return httpc_do(d->https_port, method, path, token, body, 0, 0, out);
}

int dtest_login(struct dtest *d, const char *user, const char *pw, char *tok, size_t cap)
{
    char body[512];
    struct httpc_resp r;
    snprintf(body, sizeof(body), "{\"username\":\"%s\",\"password\":\"%s\"}", user, pw);
    int st = dtest_call(d, "POST", "/v3/tokens", NULL, body, &r);
    json_t *j = httpc_json(&r);
    const char *t = json_string_value(json_object_get(j, "token"));
    snprintf(tok, cap, "%s", st == 201 && t ? t : "");
    json_decref(j);
    httpc_free(&r);
    return st;
}

/* The password the server printed on its first start. */
static void read_bootstrap_password(struct dtest *d)
{
    static const char key[] = "Bootstrap admin password: ";
    char line[512];
    FILE *f = fopen(d->server_log, "r");
    ck_assert_ptr_nonnull(f);
    while (fgets(line, sizeof(line), f)) {
        char *p = strstr(line, key);
        if (p) {
            p += sizeof(key) - 1;
            snprintf(d->admin_pw, sizeof(d->admin_pw), "%.*s", (int)strcspn(p, " \r\n"), p);
            break;
        }
    }
    fclose(f);
    ck_assert_msg(d->admin_pw[0], "no bootstrap password in %s", d->server_log);
}

void dtest_admin(struct dtest *d)
{
    if (!d->admin_pw[0])
        read_bootstrap_password(d);
    int st = dtest_login(d, "admin", d->admin_pw, d->admin_token, sizeof(d->admin_token));
    ck_assert_msg(st == 201, "admin login: %d (log %s)", st, d->server_log);
}

void dtest_create_cluster(struct dtest *d, const char *name, char *id, char *token)
{
    char body[256];
    struct httpc_resp r;
    snprintf(body, sizeof(body), "{\"name\":\"%s\"}", name);
    int st = dtest_call(d, "POST", "/v3/clusters", d->admin_token, body, &r);
    json_t *j = httpc_json(&r);
    const char *i = json_string_value(json_object_get(j, "id"));
    const char *t = json_string_value(
        json_object_get(json_object_get(j, "registration"), "token"));
    ck_assert_msg(st == 201 && i && t, "create cluster %s: %d %s", name, st,
                  r.body ? r.body : "");
    snprintf(id, 16, "%s", i);
    snprintf(token, 80, "%s", t);
    json_decref(j);
    httpc_free(&r);
}

void dtest_start_server(struct dtest *d)
{
    char relay[256];
    if (!d->dir[0]) {
        setup_dir(d);
        d->relay_port = free_port();
        d->target_port = free_port();
        d->refused_relay_port = free_port();
        char tlisten[64];
        snprintf(tlisten, sizeof(tlisten), "127.0.0.1:%d", d->target_port);
        const char *targv[] = { tool_path("tcpdata"), "serve", "--listen", tlisten, NULL };
        proc_spawn(&d->target, targv, NULL, d->target_log);
        ck_assert_msg(wait_until(port_open_cb, &d->target_port, 10000), "target did not start");
    }
    if (!d->cluster[0]) {
        /* Relays name a cluster id, which only the API hands out. */
        dtest_spawn_server(d, NULL);
        dtest_admin(d);
        dtest_create_cluster(d, "test", d->cluster, d->token);
        dtest_create_cluster(d, "raw", d->raw_cluster, d->raw_token);
        dtest_stop_server(d);
    }
    /* The second relay points at a port the agent is not allowed to dial. */
    snprintf(relay, sizeof(relay), "127.0.0.1:%d=%s/127.0.0.1:%d,127.0.0.1:%d=%s/127.0.0.1:22",
             d->relay_port, d->cluster, d->target_port, d->refused_relay_port, d->cluster);
    /* A short dead-after makes silent-peer tests quick; under valgrind a
     * busy agent can be late by seconds, so it gets more. */
    const char *extra[] = { "--tcp-relay", relay, "--ping-interval", "500ms",
                            "--dead-after", proc_under_valgrind() ? "8s" : "2s", NULL };
    dtest_spawn_server(d, extra);
}

void dtest_start_agent(struct dtest *d, const char *const extra_env[])
{
    static char env[9][300];
    snprintf(env[0], sizeof(env[0]), "DROVER_SERVER=https://127.0.0.1:%d", d->https_port);
    snprintf(env[1], sizeof(env[1]), "DROVER_TOKEN=%s", d->token);
    snprintf(env[2], sizeof(env[2]), "DROVER_CA_CHECKSUM=%s", d->checksum);
    snprintf(env[3], sizeof(env[3]), "DROVER_CLUSTER_ID=%s", d->cluster);
    snprintf(env[4], sizeof(env[4]), "DROVER_ALLOW_DIAL=127.0.0.1:%d", d->target_port);
    snprintf(env[5], sizeof(env[5]), "DROVER_PING_INTERVAL=500ms");
    snprintf(env[6], sizeof(env[6]), "DROVER_DEAD_AFTER=2s");
    snprintf(env[7], sizeof(env[7]), "DROVER_HEALTH_LISTEN=127.0.0.1:0");
    const char *all[24];
    size_t n = 0;
    for (size_t i = 0; i < 8; i++)
        all[n++] = env[i];
    for (size_t i = 0; extra_env && extra_env[i] && n < 23; i++)
        all[n++] = extra_env[i];
    all[n] = NULL;
    const char *argv[] = { bin_path("drover-cluster-agent"), NULL };
    proc_spawn(&d->agent, argv, all, d->agent_log);
}

void dtest_up(struct dtest *d)
{
    dtest_start_server(d);
    dtest_start_agent(d, NULL);
    ck_assert_msg(dtest_wait_metric(d, "drover_tunnels{kind=\"cluster\"}", 1, 15000),
                  "agent did not connect (logs in %s)", d->dir);
}

void dtest_down(struct dtest *d)
{
    proc_end(&d->agent);
    proc_end(&d->server);
    proc_end(&d->target);
    remove_tree(d->dir);
}

long dtest_metric(struct dtest *d, const char *name)
{
    char cmd[256];
    static char out[65536];
    snprintf(cmd, sizeof(cmd), "curl -sk --max-time 5 https://127.0.0.1:%d/metrics",
             d->https_port);
    if (run_capture(cmd, out, sizeof(out)) != 0)
        return -1;
    size_t nl = strlen(name);
    for (char *line = out; line && *line; line = strchr(line, '\n') ? strchr(line, '\n') + 1 : NULL) {
        if (strncmp(line, name, nl) == 0 && line[nl] == ' ')
            return strtol(line + nl + 1, NULL, 10);
    }
    return -1;
}

struct metric_wait {
    struct dtest *d;
    const char *name;
    long want;
};

static bool metric_is(void *ud)
{
    struct metric_wait *w = ud;
    return dtest_metric(w->d, w->name) == w->want;
}

bool dtest_wait_metric(struct dtest *d, const char *name, long want, int timeout_ms)
{
    struct metric_wait w = { d, name, want };
    return wait_until(metric_is, &w, timeout_ms);
}

int dtest_tcpdata(struct dtest *d, const char *args, char *out, size_t cap)
{
    char cmd[512];
    snprintf(cmd, sizeof(cmd), "%s %s 2>&1", tool_path("tcpdata"), args);
    (void)d;
    return run_capture(cmd, out, cap);
}
