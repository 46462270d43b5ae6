/*
 * Several drover-server replicas on one real PostgreSQL (docs/REPLICAS.md):
 * three servers on loopback with their own ports, data dirs and peer ids,
 * one peer token, the stand-in apiserver behind real cluster agents whose
 * DROVER_SERVER lists every replica, and the machine's kubectl.
 */
#include <check.h>
#include <libpq-fe.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tests/support/apitest.h"
#include "tests/support/dtest.h"
#include "tests/support/replicas.h"
#include "tests/support/standin.h"

#define NREP 3
#define NCLUSTERS 3
#define SA_TOKEN "standin-sa-token-replicas"

static struct replica_set rs;
static struct standin ks;
static struct cluster {
    char id[16], token[80];
    struct proc agent;
    char log[400];
} cl[NCLUSTERS];

static void start_agent(int c)
{
    snprintf(cl[c].log, sizeof(cl[c].log), "%s/agent-%d.log", rs.base.dir, c);
    struct replica_agent a = { .servers = rs.servers, .cluster = cl[c].id,
                               .token = cl[c].token, .sa_token = SA_TOKEN, .log = cl[c].log };
    replicas_spawn_agent(&rs, &ks, &cl[c].agent, &a);
}

static void setup(void)
{
    replicas_start(&rs, NREP, NULL);
    standin_start(&ks, &rs.base, SA_TOKEN);
    for (int c = 0; c < NCLUSTERS; c++) {
        char name[16];
        snprintf(name, sizeof(name), "c%d", c);
        /* Made through different replicas: any of them serves the API. */
        dtest_create_cluster(&rs.rep[c % NREP], name, cl[c].id, cl[c].token);
        start_agent(c);
    }
}

static void teardown(void)
{
    for (int c = 0; c < NCLUSTERS; c++)
        proc_end(&cl[c].agent);
    standin_stop(&ks);
    replicas_down(&rs);
    proc_cleanup();
}

static void lease_setup(void)
{
    replicas_start(&rs, NREP, NULL);
}

static void lease_teardown(void)
{
    replicas_down(&rs);
    proc_cleanup();
}

/* ---- helpers ---- */

static unsigned unit_byte(int i)
{
    return (unsigned)(i * 2654435761u) >> 13;
}

static int kubectl(const char *kc, const char *args, char *out, size_t cap)
{
    char cmd[2400];
    snprintf(cmd, sizeof(cmd), "KUBECONFIG=%s timeout 30 kubectl %s 2>&1", kc, args);
    return run_capture(cmd, out, cap);
}

/* The kubeconfig replica i hands out for cluster c (it names replica i). */
static void kubeconfig_path(int i, int c, char *path, size_t cap)
{
    char url[200];
    struct httpc_resp r;
    snprintf(path, cap, "%s/kc-%d-%d", rs.rep[i].dir, i, c);
    snprintf(url, sizeof(url), "/v3/clusters/%s/kubeconfig", cl[c].id);
    ck_assert_int_eq(dtest_call(&rs.rep[i], "GET", url, rs.rep[i].admin_token, NULL, &r), 200);
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fwrite(r.body, 1, r.len, f);
    fclose(f);
    httpc_free(&r);
}

struct reach {
    int rep, cluster;
    char kc[400];
    char out[8192];
};

static bool kubectl_reaches(void *ud)
{
    struct reach *w = ud;
    return kubectl(w->kc, "get namespaces -o name", w->out, sizeof(w->out)) == 0 &&
           strstr(w->out, "namespace/default") != NULL;
}

static void assert_reaches(int i, int c, int timeout_ms)
{
    struct reach w = { .rep = i, .cluster = c };
    kubeconfig_path(i, c, w.kc, sizeof(w.kc));
    ck_assert_msg(wait_until(kubectl_reaches, &w, timeout_ms),
                  "kubectl via replica %d cannot reach cluster %d: %s (logs %s)", i, c,
                  w.out, rs.rep[i].dir);
}

/* Which replica holds cluster c's agent, from the datastore; -1 if none. */
static int holder_of(int c)
{
    PGconn *db = PQconnectdb(rs.dburl);
    ck_assert_msg(PQstatus(db) == CONNECTION_OK, "%s", PQerrorMessage(db));
    const char *params[] = { cl[c].id };
    PGresult *r = PQexecParams(db, "SELECT peer_id FROM peer_tunnels WHERE cluster_id = $1 "
                               "AND kind = 'cluster-agent' ORDER BY since DESC LIMIT 1",
                               1, NULL, params, NULL, NULL, 0);
    int who = -1;
    if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1)
        who = (int)strtol(PQgetvalue(r, 0, 0) + 1, NULL, 10);   /* "r<i>" */
    PQclear(r);
    PQfinish(db);
    return who;
}

static bool all_held(void *ud)
{
    (void)ud;
    for (int c = 0; c < NCLUSTERS; c++)
        if (holder_of(c) < 0)
            return false;
    return true;
}

struct state_wait {
    int rep, cluster;
    const char *state;
};

static bool cluster_state_is(void *ud)
{
    struct state_wait *w = ud;
    char url[200];
    struct httpc_resp r;
    snprintf(url, sizeof(url), "/v3/clusters/%s", cl[w->cluster].id);
    int st = dtest_call(&rs.rep[w->rep], "GET", url, rs.rep[w->rep].admin_token, NULL, &r);
    char want[64];
    snprintf(want, sizeof(want), "\"state\":\"%s\"", w->state);
    bool ok = st == 200 && r.body && strstr(r.body, want);
    httpc_free(&r);
    return ok;
}

static void cacerts_sum(int i, char out[65])
{
    char cmd[300];
    snprintf(cmd, sizeof(cmd), "curl -sk --max-time 5 https://127.0.0.1:%d/cacerts | "
             "sha256sum | cut -c1-64", rs.rep[i].https_port);
    ck_assert_int_eq(run_capture(cmd, out, 65), 0);
    out[64] = '\0';
}

static char bound_out[4096];

static bool admin_bound_everywhere(void *ud)
{
    (void)ud;
    char *out = bound_out;
    for (int c = 0; c < NCLUSTERS; c++) {
        char kc[400];
        kubeconfig_path(0, c, kc, sizeof(kc));
        if (kubectl(kc, "auth can-i '*' '*'", out, sizeof(bound_out)) != 0 ||
            strncmp(out, "yes", 3) != 0)
            return false;
    }
    return true;
}

/* A request and an answer larger than a stream window go through a replica
 * that does not hold the cluster: flow control holds end to end. */
static void big_object_through_a_peer(void)
{
    static char out[1 << 20];
    int holder = holder_of(0), via = (holder + 1) % NREP;
    char kc[400], data[400], args[800];
    kubeconfig_path(via, 0, kc, sizeof(kc));
    snprintf(data, sizeof(data), "%s/big.txt", rs.base.dir);
    FILE *f = fopen(data, "w");
    ck_assert_ptr_nonnull(f);
    for (int i = 0; i < 400 * 1024; i++)
        fputc('a' + (char)(unit_byte(i) % 26), f);
    fclose(f);
    snprintf(args, sizeof(args), "create configmap big --from-file=data=%s", data);
    ck_assert_msg(kubectl(kc, args, out, sizeof(out)) == 0, "%s", out);
    ck_assert_int_eq(kubectl(kc, "get configmap big -o jsonpath={.data.data}", out,
                             sizeof(out)), 0);
    ck_assert_uint_eq(strlen(out), 400 * 1024);
    f = fopen(data, "r");
    ck_assert_ptr_nonnull(f);
    for (int i = 0; i < 400 * 1024; i++)
        ck_assert_int_eq(fgetc(f), (unsigned char)out[i]);
    fclose(f);
}

static const char deployment[] =
    "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web, namespace: default}\n"
    "spec:\n  replicas: 1\n  selector: {matchLabels: {app: web}}\n"
    "  template:\n    metadata: {labels: {app: web}}\n"
    "    spec: {containers: [{name: web, image: nginx}]}\n";

/* Streaming answers, a client hanging up mid-stream, and upgraded
 * exchanges with a half-close (exec -i) through a replica that does not
 * hold the cluster. */
static void streaming_through_a_peer(void)
{
    static char out[65536];
    int via = (holder_of(0) + 1) % NREP;
    char kc[400], dep[400], args[800], cmd[2000], pod[200];
    kubeconfig_path(via, 0, kc, sizeof(kc));
    snprintf(dep, sizeof(dep), "%s/dep.yaml", rs.base.dir);
    FILE *f = fopen(dep, "w");
    ck_assert_ptr_nonnull(f);
    fputs(deployment, f);
    fclose(f);
    snprintf(args, sizeof(args), "apply -f %s", dep);
    ck_assert_msg(kubectl(kc, args, out, sizeof(out)) == 0, "%s", out);
    ck_assert_int_eq(kubectl(kc, "get pods -o name -l app=web", out, sizeof(out)), 0);
    ck_assert_int_eq(sscanf(out, "pod/%199s", pod), 1);
    snprintf(cmd, sizeof(cmd), "KUBECONFIG=%s timeout 5 kubectl logs -f %s 2>&1 | head -3",
             kc, pod);
    run_capture(cmd, out, sizeof(out));
    ck_assert_msg(strstr(out, "line 2"), "logs -f: %s", out);
    snprintf(cmd, sizeof(cmd), "echo stdin-through-a-peer | KUBECONFIG=%s timeout 20 "
             "kubectl exec -i %s -- cat 2>&1", kc, pod);
    ck_assert_int_eq(run_capture(cmd, out, sizeof(out)), 0);
    ck_assert_msg(strstr(out, "stdin-through-a-peer"), "exec -i: %s", out);
    snprintf(args, sizeof(args), "delete -f %s", dep);
    ck_assert_int_eq(kubectl(kc, args, out, sizeof(out)), 0);
}

struct can_i {
    char kc[400];
    char out[4096];
};

static bool can_get_pods(void *ud)
{
    struct can_i *w = ud;
    return kubectl(w->kc, "auth can-i get pods", w->out, sizeof(w->out)) == 0 &&
           strncmp(w->out, "yes", 3) == 0;
}

/* Membership changed on a replica that does not hold the cluster: the one
 * that does pushes the RBAC bindings (the replicas tell each other). */
static void member_added_on_another_replica(void)
{
    int holder = holder_of(0), via = (holder + 2) % NREP;
    char body[300], url[200], tok[80], pw[64];
    struct httpc_resp r;
    snprintf(body, sizeof(body), "{\"username\":\"dave\",\"password\":"
             "\"pw-dave-0123456789\",\"admin\":false}");
    ck_assert_int_eq(dtest_call(&rs.rep[via], "POST", "/v3/users", rs.rep[via].admin_token, body,
                                &r), 201);
    httpc_free(&r);
    snprintf(url, sizeof(url), "/v3/clusters/%s/members", cl[0].id);
    snprintf(body, sizeof(body), "{\"user\":\"dave\",\"role\":\"member\"}");
    int st = dtest_call(&rs.rep[via], "POST", url, rs.rep[via].admin_token, body, &r);
    httpc_free(&r);
    ck_assert_msg(st == 201 || st == 200, "member add: %d", st);
    snprintf(pw, sizeof(pw), "pw-dave-0123456789");
    ck_assert_int_eq(dtest_login(&rs.rep[via], "dave", pw, tok, sizeof(tok)), 201);
    struct can_i w;
    snprintf(url, sizeof(url), "/v3/clusters/%s/kubeconfig", cl[0].id);
    snprintf(w.kc, sizeof(w.kc), "%s/dave.kubeconfig", rs.base.dir);
    ck_assert_int_eq(dtest_call(&rs.rep[via], "GET", url, tok, NULL, &r), 200);
    FILE *f = fopen(w.kc, "w");
    ck_assert_ptr_nonnull(f);
    fwrite(r.body, 1, r.len, f);
    fclose(f);
    httpc_free(&r);
    ck_assert_msg(wait_until(can_get_pods, &w, 20000), "dave cannot get pods: %s", w.out);
}

/* ---- tests ---- */

START_TEST(one_ca_for_all_replicas)
{
    char sums[NREP][65];
    for (int i = 0; i < NREP; i++) {
        cacerts_sum(i, sums[i]);
        ck_assert_str_eq(rs.rep[i].checksum, rs.rep[0].checksum);
        ck_assert_str_eq(sums[i], rs.rep[0].checksum);
    }
    /* A replica restarted with an empty data-dir takes the same CA. */
    dtest_down(&rs.rep[2]);
    replicas_spawn(&rs, 2, true);
    cacerts_sum(2, sums[2]);
    ck_assert_str_eq(sums[2], rs.rep[0].checksum);
}
END_TEST

START_TEST(kubectl_through_every_replica_and_failover)
{
    ck_assert_msg(wait_until(all_held, NULL, 30000), "agents did not all connect");
    ck_assert_msg(wait_until(admin_bound_everywhere, NULL, 30000),
                  "no cluster-admin binding for drover:admin: %s", bound_out);
    for (int i = 0; i < NREP; i++)
        for (int c = 0; c < NCLUSTERS; c++)
            assert_reaches(i, c, 20000);

    big_object_through_a_peer();
    streaming_through_a_peer();
    member_added_on_another_replica();

    /* Writes acknowledged by each replica before one of them dies. */
    char tok[80];
    for (int u = 0; u < 6; u++) {
        char name[32];
        snprintf(name, sizeof(name), "user%d", u);
        apitest_user(&rs.rep[u % NREP], name, false, tok);
    }
    int victim = holder_of(0);
    ck_assert_int_ge(victim, 0);
    proc_signal(&rs.rep[victim].server, SIGKILL);
    proc_wait(&rs.rep[victim].server, 5000);
    int other = (victim + 1) % NREP;
    /* The agent redials the next replica in its list at once (its socket
     * died with the server); the dead replica's lease runs out meanwhile. */
    for (int i = 0; i < NREP; i++) {
        if (i == victim)
            continue;
        for (int c = 0; c < NCLUSTERS; c++)
            assert_reaches(i, c, 30000);
        struct state_wait w = { .rep = i, .cluster = 0, .state = "active" };
        ck_assert(wait_until(cluster_state_is, &w, 15000));
    }
    ck_assert_int_ne(holder_of(0), victim);
    for (int u = 0; u < 6; u++) {
        char path[64];
        snprintf(path, sizeof(path), "/v3/users/user%d", u);
        json_decref(apitest_expect(&rs.rep[other], __LINE__, 200, "GET", path,
                                   rs.rep[other].admin_token, NULL));
    }
    /* Back with an empty data-dir: it serves every cluster again. */
    remove_tree(rs.rep[victim].dir);
    replicas_spawn(&rs, victim, true);
    memcpy(rs.rep[victim].admin_token, rs.rep[other].admin_token, sizeof(rs.rep[victim].admin_token));
    for (int c = 0; c < NCLUSTERS; c++)
        assert_reaches(victim, c, 30000);
    /* Clean exits (leak checks under the sanitizers) with links and agents up. */
    for (int i = 0; i < NREP; i++)
        dtest_stop_server(&rs.rep[i]);
}
END_TEST

/* A cluster whose agent is gone is marked disconnected once, by whoever
 * runs the controllers, even when the replica that held it died. */
START_TEST(orphaned_cluster_marked_disconnected)
{
    ck_assert_msg(wait_until(all_held, NULL, 30000), "agents did not all connect");
    int victim = holder_of(1);
    proc_kill(&cl[1].agent);
    proc_signal(&rs.rep[victim].server, SIGKILL);
    proc_wait(&rs.rep[victim].server, 5000);
    int other = (victim + 1) % NREP;
    struct state_wait w = { .rep = other, .cluster = 1, .state = "disconnected" };
    ck_assert_msg(wait_until(cluster_state_is, &w, 30000), "cluster 1 still active");
    w.cluster = 0;
    w.state = "active";
    ck_assert(wait_until(cluster_state_is, &w, 30000));
}
END_TEST

static int lease_holders(int *who)
{
    return replicas_lease_holders(&rs, who);
}

static bool one_holder(void *ud)
{
    int who = -1;
    return lease_holders(&who) == 1 && (!ud || who != *(int *)ud);
}

START_TEST(controllers_run_on_one_replica_and_move)
{
    ck_assert_msg(wait_until(one_holder, NULL, 20000), "no single controllers lease holder");
    int holder = -1;
    ck_assert_int_eq(lease_holders(&holder), 1);
    /* Stays put while its holder lives. */
    sleep(3);
    int again = -1;
    ck_assert_int_eq(lease_holders(&again), 1);
    ck_assert_int_eq(again, holder);
    proc_signal(&rs.rep[holder].server, SIGKILL);
    proc_wait(&rs.rep[holder].server, 5000);
    rs.rep[holder].server.pid = 0;
    ck_assert_msg(wait_until(one_holder, &holder, 30000), "the lease did not move");
    /* A clean stop gives the lease up: the last replica takes it. */
    int second = -1;
    ck_assert_int_eq(lease_holders(&second), 1);
    dtest_stop_server(&rs.rep[second]);
    rs.rep[second].server.pid = 0;
    ck_assert_msg(wait_until(one_holder, &second, 15000), "the lease did not move again");
    for (int i = 0; i < NREP; i++)
        if (rs.rep[i].server.pid)
            dtest_stop_server(&rs.rep[i]);
}
END_TEST

/* Replica settings that cannot work stop the server with exit code 2. */
START_TEST(bad_replica_settings_exit_2)
{
    char dir[256], tok[300], log[300];
    make_temp_dir(dir, sizeof(dir));
    snprintf(tok, sizeof(tok), "%s/peer.token", dir);
    snprintf(log, sizeof(log), "%s/server.log", dir);
    FILE *f = fopen(tok, "w");
    ck_assert_ptr_nonnull(f);
    fprintf(f, "%s\n", REPLICAS_PEER_TOKEN);
    fclose(f);
    const char *sqlite[] = { bin_path("drover-server"), "--listen", "127.0.0.1:0",
                             "--data-dir", dir, "--peer-token-file", tok, NULL };
    const char *badid[] = { bin_path("drover-server"), "--peer-id", "no spaces", NULL };
    const char *badurl[] = { bin_path("drover-server"), "--peer-advertise-url",
                             "http://10.0.0.1", NULL };
    const char *const *cases[] = { sqlite, badid, badurl };
    for (size_t i = 0; i < 3; i++) {
        struct proc p;
        proc_spawn(&p, cases[i], NULL, log);
        ck_assert_int_eq(proc_wait(&p, 20000), 2);
    }
    ck_assert(file_contains(log, "peer-token-file needs a postgres:// datastore"));
    remove_tree(dir);
}
END_TEST

Suite *suite_integration_replicas(void)
{
    Suite *s = suite_create("integration/replicas");
    TCase *ts = tcase_create("settings");
    tcase_set_timeout(ts, 60);
    tcase_add_test(ts, bad_replica_settings_exit_2);
    suite_add_tcase(s, ts);
    TCase *tc = tcase_create("kubectl");
    tcase_set_timeout(tc, 300);
    apitest_fixtures(NULL, tc, NULL, setup, teardown);
    tcase_add_test(tc, one_ca_for_all_replicas);
    tcase_add_test(tc, kubectl_through_every_replica_and_failover);
    tcase_add_test(tc, orphaned_cluster_marked_disconnected);
    suite_add_tcase(s, tc);
    TCase *tl = tcase_create("leases");
    tcase_set_timeout(tl, 120);
    apitest_fixtures(NULL, tl, NULL, lease_setup, lease_teardown);
    tcase_add_test(tl, controllers_run_on_one_replica_and_move);
    suite_add_tcase(s, tl);
    return s;
}
