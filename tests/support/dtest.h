/*
 * dtest: a drover deployment on loopback for integration tests: a server
 * with a relay port, a tcpdata target behind it, and a cluster agent, with
 * short keepalive settings (ping 500 ms, dead after 2 s) so failure tests
 * finish quickly. Everything lives in a temporary directory that is removed
 * afterwards, logs included unless the test failed (then its path is printed).
 *
 * The clusters are real: on the first start the server runs without relays,
 * dtest logs in as admin with the bootstrap password the server printed,
 * creates the clusters "test" (the agent's) and "raw" (for hand-made
 * websockets, so they never displace the agent) through the API, and then
 * restarts the server with relays to the test cluster's id.
 */
#ifndef DROVER_TEST_DTEST_H
#define DROVER_TEST_DTEST_H

#include <stdbool.h>

#include "tests/support/httpc.h"
#include "tests/support/proc.h"

struct dtest {
    char dir[256];
    char datastore[256];        /* "" for SQLite in the data dir; set before starting */
    int https_port, relay_port, target_port, refused_relay_port;
    char checksum[65];
    struct proc server, agent, target;
    char server_log[300], agent_log[300], target_log[300];
    char admin_pw[64], admin_token[80];
    char cluster[16], token[80];            /* the agent's cluster */
    char raw_cluster[16], raw_token[80];    /* the second cluster */
};

/* Starts the target and the server (and waits until both listen and the
 * server is ready); the first time, also creates the clusters. */
void dtest_start_server(struct dtest *d);
/* Starts just the server (in a fresh directory the first time) with extra
 * arguments (NULL-terminated, may be NULL) and waits until /readyz says ready. */
void dtest_spawn_server(struct dtest *d, const char *const extra[]);
/* The same, waiting for readiness only if wait_ready (then also reading the
 * CA checksum). */
void dtest_spawn(struct dtest *d, const char *const extra[], bool wait_ready);
/* SIGTERM and wait; asserts a clean exit. */
void dtest_stop_server(struct dtest *d);
/* Logs in as admin with the bootstrap password from the server's log, into
 * d->admin_token. */
void dtest_admin(struct dtest *d);
/* POST /v3/tokens; the token into tok. Returns the status. */
int dtest_login(struct dtest *d, const char *user, const char *pw, char *tok, size_t cap);
/* Creates a cluster as admin; its id and registration token into id[16] and
 * token[80]. */
void dtest_create_cluster(struct dtest *d, const char *name, char *id, char *token);
/* One API call to the server; returns the status (-1: no answer). */
int dtest_call(struct dtest *d, const char *method, const char *path, const char *token,
               const char *body, struct httpc_resp *out);
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
