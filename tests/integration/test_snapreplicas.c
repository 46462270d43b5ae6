/*
 * etcd snapshots with several replicas (docs/REPLICAS.md, "Node tasks"):
 * three drover-server replicas on one real PostgreSQL, a real etcd and one
 * drover-node-agent with the etcd role connected to a single replica.
 *
 * - A snapshot asked of a replica that does not hold the node agent is
 *   taken through the peer link, and downloads from any replica match it;
 *   an upgrade asked of that replica runs the agent's hook the same way.
 * - The schedule (one "minute" is 3 s here) runs on the controllers' lease
 *   holder; that replica is killed with SIGKILL while the schedule runs. The
 *   snapshots taken over the run must show no two for one due slot (each
 *   is at least an interval after the one before, and each was run by the
 *   lease holder of its time, per the runner column), and the schedule
 *   must carry on under the new holder: its
 *   snapshots done, downloadable through a replica without the agent. At
 *   most the one snapshot in flight at the kill may fail, and it must be
 *   marked failed (by the new holder's sweep), not left running.
 */
#include <check.h>
#include <jansson.h>
#include <libpq-fe.h>
#include <openssl/evp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "tests/support/apitest.h"
#include "tests/support/etcdtmp.h"
#include "tests/support/replicas.h"

#define NREP 3
#define UNIT_MS 3000        /* --debug-snapshot-minute */
#define AFTER_KILL 3        /* scheduled snapshots wanted under the new holder */

static struct replica_set R;
static struct etcdtmp *etcd;
static struct proc agent;
static char cid[16], reg[80];
static const char *const extra[] = { "--debug-snapshot-minute", "3s", NULL };

static void setup(void)
{
    char err[1024];
    etcd = etcdtmp_start(err, sizeof(err));
    ck_assert_msg(etcd != NULL, "%s", err);
    replicas_start(&R, NREP, extra);
}

static void teardown(void)
{
    proc_end(&agent);
    etcdtmp_stop(etcd);
    etcd = NULL;
    replicas_down(&R);
    proc_cleanup();
}

/* A call to replica i; its JSON (caller decrefs) if the status is want. */
static json_t *call(int i, int want, const char *method, const char *path, const char *body)
{
    json_t *j = NULL;
    int st = apitest_call(&R.rep[i], method, path, R.rep[i].admin_token, body, &j);
    ck_assert_msg(st == want, "%s %s on r%d: %d, want %d (logs in %s)", method, path, i, st,
                  want, R.rep[i].dir);
    return j;
}

/* The node agent, connected to replica i only. */
static void start_node_agent(int i)
{
    char e[12][450], work[300], hook[400];
    snprintf(work, sizeof(work), "%s/node", R.base.dir);
    mkdir(work, 0700);
    snprintf(hook, sizeof(hook), "%s/upgrade-hook.sh", work);
    FILE *f = fopen(hook, "w");
    ck_assert_ptr_nonnull(f);
    fputs("#!/bin/sh\necho upgraded to $DROVER_UPGRADE_VERSION\n", f);
    fclose(f);
    chmod(hook, 0755);
    snprintf(e[0], sizeof(e[0]), "DROVER_SERVER=https://127.0.0.1:%d", R.rep[i].https_port);
    snprintf(e[1], sizeof(e[1]), "DROVER_TOKEN=%s", reg);
    snprintf(e[2], sizeof(e[2]), "DROVER_CA_CHECKSUM=%s", R.rep[0].checksum);
    snprintf(e[3], sizeof(e[3]), "DROVER_CLUSTER_ID=%s", cid);
    snprintf(e[4], sizeof(e[4]), "DROVER_NODE_NAME=etcd-1");
    snprintf(e[5], sizeof(e[5]), "DROVER_NODE_ROLES=etcd,controlplane");
    snprintf(e[6], sizeof(e[6]), "DROVER_SNAPSHOT_DIR=%s/snaps", work);
    snprintf(e[7], sizeof(e[7]), "DROVER_STATE_DIR=%s/state", work);
    snprintf(e[8], sizeof(e[8]), "DROVER_HEALTH_LISTEN=127.0.0.1:0");
    snprintf(e[9], sizeof(e[9]), "DROVER_ETCD_ENDPOINTS=%s", etcdtmp_endpoint(etcd));
    snprintf(e[10], sizeof(e[10]), "DROVER_PING_INTERVAL=500ms");
    snprintf(e[11], sizeof(e[11]), "DROVER_UPGRADE_HOOK=%s", hook);
    const char *env[] = { e[0], e[1], e[2], e[3], e[4], e[5], e[6], e[7], e[8], e[9], e[10],
                          e[11], "DROVER_DEAD_AFTER=3s", NULL };
    const char *argv[] = { bin_path("drover-node-agent"), NULL };
    char log[400];
    snprintf(log, sizeof(log), "%s/node-agent.log", R.base.dir);
    proc_spawn(&agent, argv, env, log);
}

static int holder_now(void)
{
    int who = -1;
    return replicas_lease_holders(&R, &who) == 1 ? who : -1;
}

static bool one_holder_not(void *ud)
{
    int h = holder_now();
    return h >= 0 && h != *(int *)ud;
}

/* RFC 3339 with milliseconds ("2026-11-24T22:35:26.481Z") to unix ms. */
static long long ms_of(const char *t)
{
    struct tm tm = { 0 };
    int ms = 0;
    ck_assert_ptr_nonnull(t);
    ck_assert_int_eq(sscanf(t, "%d-%d-%dT%d:%d:%d.%dZ", &tm.tm_year, &tm.tm_mon, &tm.tm_mday,
                            &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &ms), 7);
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    return (long long)timegm(&tm) * 1000 + ms;
}

/* Downloads snapshot sid through replica i and checks it against sha. */
static void download_matches(int i, const char *sid, const char *sha, long long size)
{
    char path[200];
    struct httpc_resp r;
    snprintf(path, sizeof(path), "/v3/clusters/%s/etcdsnapshots/%s/download", cid, sid);
    int st = dtest_call(&R.rep[i], "GET", path, R.rep[i].admin_token, NULL, &r);
    ck_assert_msg(st == 200, "download of %s through r%d: %d", sid, i, st);
    ck_assert_int_eq((long long)r.len, size);
    unsigned char md[32];
    char hex[65];
    unsigned int mdlen = 0;
    ck_assert_int_eq(EVP_Digest(r.body, r.len, md, &mdlen, EVP_sha256(), NULL), 1);
    for (int k = 0; k < 32; k++)
        snprintf(hex + 2 * k, 3, "%02x", md[k]);
    ck_assert_str_eq(hex, sha);
    httpc_free(&r);
}

/* Polls snapshot sid through replica i until it is over. */
static json_t *wait_over(int i, const char *sid)
{
    char path[200];
    snprintf(path, sizeof(path), "/v3/clusters/%s/etcdsnapshots/%s", cid, sid);
    long long until = mono_ms() + 60000;
    for (;;) {
        json_t *s = call(i, 200, "GET", path, NULL);
        const char *st = apitest_str(s, "state");
        if (strcmp(st, "done") == 0 || strcmp(st, "failed") == 0 || mono_ms() > until)
            return s;
        json_decref(s);
        usleep(100000);
    }
}

/* A snapshot POSTed to replica i (retried while the replicas' view of the
 * node agents catches up, about a second). */
static void manual_snapshot(int post_to, int other)
{
    char path[200], sid[40];
    snprintf(path, sizeof(path), "/v3/clusters/%s/etcdsnapshots", cid);
    long long until = mono_ms() + 20000;
    json_t *j = NULL;
    int st;
    while ((st = apitest_call(&R.rep[post_to], "POST", path, R.rep[post_to].admin_token, "{}",
                              &j)) == 409 && mono_ms() < until) {
        json_decref(j);
        j = NULL;
        usleep(200000);
    }
    ck_assert_msg(st == 202, "POST to r%d: %d (logs in %s)", post_to, st, R.rep[post_to].dir);
    snprintf(sid, sizeof(sid), "%s", apitest_str(j, "id"));
    json_decref(j);
    json_t *s = wait_over(other, sid);
    ck_assert_msg(strcmp(apitest_str(s, "state"), "done") == 0, "snapshot %s: %s (logs in %s)",
                  sid, apitest_str(s, "error"), R.rep[post_to].dir);
    ck_assert_str_eq(apitest_str(s, "node"), "etcd-1");
    long long size = (long long)json_integer_value(apitest_get(s, "size"));
    char sha[65];
    snprintf(sha, sizeof(sha), "%s", apitest_str(s, "sha256"));
    json_decref(s);
    for (int i = 0; i < NREP; i++)
        download_matches(i, sid, sha, size);
}

/* An upgrade POSTed to replica post_to reaches the node agent on another
 * replica; its progress reads the same through replica other. */
static void upgrade_through(int post_to, int other)
{
    char path[200];
    snprintf(path, sizeof(path), "/v3/clusters/%s/upgrade", cid);
    json_decref(call(post_to, 202, "POST", path, "{\"version\":\"v9.9.9\"}"));
    snprintf(path, sizeof(path), "/v3/clusters/%s", cid);
    long long until = mono_ms() + 30000;
    json_t *c;
    for (;;) {
        c = call(other, 200, "GET", path, NULL);
        const char *st = apitest_str(c, "upgrade.state");
        if ((st && strcmp(st, "running") != 0) || mono_ms() > until)
            break;
        json_decref(c);
        usleep(100000);
    }
    ck_assert_str_eq(apitest_str(c, "upgrade.state"), "done");
    json_t *n = json_array_get(apitest_get(c, "upgrade.nodes"), 0);
    ck_assert_str_eq(apitest_str(n, "node"), "etcd-1");
    ck_assert_str_eq(apitest_str(n, "message"), "upgraded to v9.9.9");
    json_decref(c);
}

struct sched {
    int n;
    char id[64][40], state[64][16], sha[64][65];
    long long created[64], size[64];
};

/* The scheduled snapshots, oldest first, as replica i lists them. */
static void list_scheduled(int i, struct sched *out)
{
    char path[200];
    snprintf(path, sizeof(path), "/v3/clusters/%s/etcdsnapshots?limit=1000", cid);
    json_t *l = call(i, 200, "GET", path, NULL), *it;
    size_t k;
    memset(out, 0, sizeof(*out));
    json_array_foreach(apitest_get(l, "data"), k, it) {
        if (!json_is_true(apitest_get(it, "scheduled")) || out->n == 64)
            continue;
        int n = out->n++;
        snprintf(out->id[n], sizeof(out->id[n]), "%s", apitest_str(it, "id"));
        snprintf(out->state[n], sizeof(out->state[n]), "%s", apitest_str(it, "state"));
        const char *sha = apitest_str(it, "sha256");
        snprintf(out->sha[n], sizeof(out->sha[n]), "%s", sha ? sha : "");
        out->created[n] = ms_of(apitest_str(it, "createdAt"));
        out->size[n] = (long long)json_integer_value(apitest_get(it, "size"));
    }
    json_decref(l);
}

static int count_done_after(const struct sched *s, long long t)
{
    int n = 0;
    for (int k = 0; k < s->n; k++)
        n += s->created[k] > t && strcmp(s->state[k], "done") == 0;
    return n;
}

/* The replica that ran scheduled snapshot sid (its runner column), from
 * the datastore: -1 if unknown. */
static int runner_of(const char *sid)
{
    PGconn *db = PQconnectdb(R.dburl);
    ck_assert_msg(PQstatus(db) == CONNECTION_OK, "%s", PQerrorMessage(db));
    const char *params[] = { sid };
    PGresult *r = PQexecParams(db, "SELECT runner FROM etcd_snapshots WHERE id = $1", 1, NULL,
                               params, NULL, NULL, 0);
    int who = -1;
    if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1 && !PQgetisnull(r, 0, 0))
        who = (int)strtol(PQgetvalue(r, 0, 0) + 1, NULL, 10);   /* "r<i>" */
    PQclear(r);
    PQfinish(db);
    return who;
}

START_TEST(snapshots_across_replicas_and_schedule_survives_holder_kill)
{
    int h = -1;
    ck_assert_msg(wait_until(one_holder_not, &h, 20000), "no controllers lease holder");
    h = holder_now();
    int a = (h + 1) % NREP, t = (h + 2) % NREP;     /* the agent's, and a third */
    json_t *c = apitest_cluster(&R.rep[t], R.rep[t].admin_token, "snaprep", cid);
    snprintf(reg, sizeof(reg), "%s", apitest_str(c, "registration.token"));
    json_decref(c);
    ck_assert_int_eq(etcdtmp_put(etcd, "k1", "v1"), 0);
    start_node_agent(a);
    ck_assert_msg(dtest_wait_metric(&R.rep[a], "drover_tunnels{kind=\"node\"}", 1, 20000),
                  "the node agent did not connect to r%d (logs in %s)", a, R.base.dir);

    /* Asked of a replica without the agent; answered through the agent's. */
    manual_snapshot(t, h);
    upgrade_through(t, h);

    /* The schedule runs on h and reaches the agent through a. */
    char cp[200];
    snprintf(cp, sizeof(cp), "/v3/clusters/%s", cid);
    json_decref(call(t, 200, "PUT", cp,
                     "{\"etcdSnapshotSchedule\":{\"intervalMinutes\":1,\"retention\":100}}"));
    struct sched s;
    long long until = mono_ms() + 60000;
    do {
        usleep(200000);
        list_scheduled(t, &s);
    } while (count_done_after(&s, 0) < 2 && mono_ms() < until);
    ck_assert_msg(count_done_after(&s, 0) >= 2, "the schedule did not run (logs in %s)",
                  R.rep[h].dir);

    /* Killed mid-schedule (maybe mid-snapshot). */
    proc_signal(&R.rep[h].server, SIGKILL);
    proc_wait(&R.rep[h].server, 5000);
    R.rep[h].server.pid = 0;
    /* Anything created from now on is the new holder's. */
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    long long killed = (long long)now.tv_sec * 1000 + now.tv_nsec / 1000000;
    ck_assert_msg(wait_until(one_holder_not, &h, 30000), "the lease did not move");
    int h2 = holder_now();

    until = mono_ms() + 90000;
    do {
        usleep(300000);
        list_scheduled(t, &s);
    } while (count_done_after(&s, killed) < AFTER_KILL && mono_ms() < until);
    ck_assert_msg(count_done_after(&s, killed) >= AFTER_KILL,
                  "only %d scheduled snapshot(s) done after the kill (new holder r%d, logs "
                  "in %s)", count_done_after(&s, killed), h2, R.rep[h2].dir);

    /* Wait for the sweep of whatever the dead replica left running. */
    until = mono_ms() + 30000;
    bool settled;
    do {
        settled = true;
        for (int k = 0; k < s.n; k++)
            if (s.created[k] < killed && strcmp(s.state[k], "done") != 0 &&
                strcmp(s.state[k], "failed") != 0)
                settled = false;
        if (!settled) {
            usleep(300000);
            list_scheduled(t, &s);
        }
    } while (!settled && mono_ms() < until);
    ck_assert_msg(settled, "a snapshot of the killed replica was never marked failed");

    int failed = 0;
    for (int k = 0; k < s.n; k++) {
        /* No two for one due slot. */
        if (k > 0)
            ck_assert_msg(s.created[k] - s.created[k - 1] >= UNIT_MS - 50,
                          "snapshots %s and %s only %lld ms apart: the schedule ran twice",
                          s.id[k - 1], s.id[k], s.created[k] - s.created[k - 1]);
        /* Run by the lease holder of the time, never by another replica. */
        int want = s.created[k] < killed ? h : h2, got = runner_of(s.id[k]);
        ck_assert_msg(got == want, "scheduled snapshot %s run by r%d, want r%d", s.id[k], got,
                      want);
        if (strcmp(s.state[k], "done") == 0)
            continue;
        /* Only one in flight at the kill may fail (it never finished). */
        ck_assert_msg(s.created[k] < killed && strcmp(s.state[k], "failed") == 0,
                      "snapshot %s is %s", s.id[k], s.state[k]);
        failed++;
    }
    ck_assert_int_le(failed, 1);
    /* The new holder's snapshots download through the replica without the
     * agent. */
    for (int k = 0; k < s.n; k++)
        if (s.created[k] > killed && strcmp(s.state[k], "done") == 0)
            download_matches(t, s.id[k], s.sha[k], s.size[k]);
    json_decref(call(t, 200, "PUT", cp, "{\"etcdSnapshotSchedule\":{\"intervalMinutes\":0}}"));
    ck_assert_int_eq(proc_stop(&agent, 10000), 0);
    /* Clean exits of the survivors (under SAN: no leaks, no errors). */
    for (int i = 0; i < NREP; i++) {
        if (R.rep[i].server.pid) {
            dtest_stop_server(&R.rep[i]);
            R.rep[i].server.pid = 0;
        }
    }
}
END_TEST

Suite *suite_integration_snapreplicas(void)
{
    Suite *s = suite_create("integration/snapreplicas");
    TCase *tc = tcase_create("schedule");
    tcase_set_timeout(tc, 300);
    apitest_fixtures(NULL, tc, NULL, setup, teardown);
    tcase_add_test(tc, snapshots_across_replicas_and_schedule_survives_holder_kill);
    suite_add_tcase(s, tc);
    return s;
}
