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

void dtest_start_server(struct dtest *d)
{
    char listen[64], relay[256], data[300];
    if (!d->dir[0]) {
        make_temp_dir(d->dir, sizeof(d->dir));
        d->https_port = free_port();
        d->relay_port = free_port();
        d->target_port = free_port();
        d->refused_relay_port = free_port();
        snprintf(d->server_log, sizeof(d->server_log), "%s/server.log", d->dir);
        snprintf(d->agent_log, sizeof(d->agent_log), "%s/agent.log", d->dir);
        snprintf(d->target_log, sizeof(d->target_log), "%s/target.log", d->dir);
        char tlisten[64];
        snprintf(tlisten, sizeof(tlisten), "127.0.0.1:%d", d->target_port);
        const char *targv[] = { tool_path("tcpdata"), "serve", "--listen", tlisten, NULL };
        proc_spawn(&d->target, targv, NULL, d->target_log);
        ck_assert_msg(wait_until(port_open_cb, &d->target_port, 10000), "target did not start");
    }
    snprintf(listen, sizeof(listen), "127.0.0.1:%d", d->https_port);
    /* The second relay points at a port the agent is not allowed to dial. */
    snprintf(relay, sizeof(relay), "127.0.0.1:%d=%s/127.0.0.1:%d,127.0.0.1:%d=%s/127.0.0.1:22",
             d->relay_port, DTEST_CLUSTER, d->target_port, d->refused_relay_port,
             DTEST_CLUSTER);
    snprintf(data, sizeof(data), "%s/data", d->dir);
    const char *argv[] = { bin_path("drover-server"), "--listen", listen, "--data-dir", data,
                           "--agent-token", DTEST_TOKEN, "--tcp-relay", relay,
                           "--ping-interval", "500ms", "--dead-after", "2s", NULL };
    proc_spawn(&d->server, argv, NULL, d->server_log);
    ck_assert_msg(wait_until(port_open_cb, &d->https_port, 15000),
                  "server did not start (log %s)", d->server_log);
    char ca[400];
    snprintf(ca, sizeof(ca), "%s/ca.crt", data);
    ck_assert_int_eq(file_sha256(ca, d->checksum), 0);
}

void dtest_start_agent(struct dtest *d, const char *const extra_env[])
{
    static char env[8][300];
    snprintf(env[0], sizeof(env[0]), "DROVER_SERVER=https://127.0.0.1:%d", d->https_port);
    snprintf(env[1], sizeof(env[1]), "DROVER_TOKEN=%s", DTEST_TOKEN);
    snprintf(env[2], sizeof(env[2]), "DROVER_CA_CHECKSUM=%s", d->checksum);
    snprintf(env[3], sizeof(env[3]), "DROVER_CLUSTER_ID=%s", DTEST_CLUSTER);
    snprintf(env[4], sizeof(env[4]), "DROVER_ALLOW_DIAL=127.0.0.1:%d", d->target_port);
    snprintf(env[5], sizeof(env[5]), "DROVER_PING_INTERVAL=500ms");
    snprintf(env[6], sizeof(env[6]), "DROVER_DEAD_AFTER=2s");
    const char *all[24];
    size_t n = 0;
    for (size_t i = 0; i < 7; i++)
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
    proc_kill(&d->agent);
    proc_kill(&d->server);
    proc_kill(&d->target);
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
