/*
 * dtest: a drover deployment on loopback for integration tests: a server
 * with a relay port, a tcpdata target behind it, and a cluster agent, with
 * short keepalive settings (ping 500 ms, dead after 2 s) so failure tests
 * finish quickly. Everything lives in a temporary directory that is removed
 * afterwards, logs included unless the test failed (then its path is printed).
 */
#ifndef DROVER_TEST_DTEST_H
#define DROVER_TEST_DTEST_H

#include <stdbool.h>

#include "tests/support/proc.h"

#define DTEST_TOKEN "test-agent-token-0123456789"
#define DTEST_CLUSTER "c-test1"

struct dtest {
    char dir[256];
    int https_port, relay_port, target_port, refused_relay_port;
    char checksum[65];
    struct proc server, agent, target;
    char server_log[300], agent_log[300], target_log[300];
};

/* Starts the target and the server (and waits until both listen). */
void dtest_start_server(struct dtest *d);
/* Starts the cluster agent; extra_env may add or override settings. */
void dtest_start_agent(struct dtest *d, const char *const extra_env[]);
/* Starts everything and waits until the tunnel is up. */
void dtest_up(struct dtest *d);
void dtest_down(struct dtest *d);

/* The server's /metrics value of a sample line prefix, e.g.
 * "drover_tunnels{kind=\"cluster\"}"; -1 if unreachable or absent. */
long dtest_metric(struct dtest *d, const char *name);
/* Waits until the metric equals want. */
bool dtest_wait_metric(struct dtest *d, const char *name, long want, int timeout_ms);

/* Runs tcpdata MODE ARGS against the relay port; returns its exit code and
 * its output line in out. */
int dtest_tcpdata(struct dtest *d, const char *args, char *out, size_t cap);

#endif
