/*
 * Taking over the cluster link: a real drover-server, the real cluster
 * agent, three real node agents (named after the stand-in's nodes) and a
 * fourth that cannot reach the kube-apiserver, all pointed at the stand-in
 * Kubernetes API server. Each agent has its own service-account token, so
 * the stand-in's audit file says which agent made which call.
 *
 * When the cluster agent dies (SIGKILL) or goes silent (SIGSTOP), an
 * eligible node agent must carry kubectl, reports and RBAC; when it comes
 * back the node agent steps down and only the cluster agent reports again.
 * The tests assert what happens, not how fast (that is `make bench`).
 */
#include <check.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tests/support/dtest.h"
#include "tests/support/kubetest.h"
#include "tests/support/standin.h"

#define SA_TOKEN "standin-sa-token-5be71a"
#define NODE_SA  "system:serviceaccount:drover-system:drover-node-"
#define NNODES 4                /* node-1..3 can stand in; node-bad cannot */
#define SLOW_MS 30000           /* generous: the machine is shared */

static struct dtest d;
static struct standin ks;
static struct proc nodes[NNODES];
static const char *const node_names[NNODES] = { "node-bad", "node-1", "node-2", "node-3" };
static char node_logs[NNODES][400];
static char sa_kubeconfig[400], admin_kubeconfig[400], loop_log[400];
static struct proc kloop;

/* ---- the deployment ---- */

/* The stand-in knows one service account per node agent but node-bad's. */
static void start_standin(void)
{
    static char args[NNODES - 1][2][200];
    const char *extra[2 * 2 * (NNODES - 1) + 1];
    size_t n = 0;
    for (int i = 1; i < NNODES; i++) {
        snprintf(args[i - 1][0], sizeof(args[0][0]), "%s%s=node-token-%s", NODE_SA,
                 node_names[i], node_names[i]);
        snprintf(args[i - 1][1], sizeof(args[0][1]), "%s%s", NODE_SA, node_names[i]);
        extra[n++] = "--token";
        extra[n++] = args[i - 1][0];
        extra[n++] = "--admin";
        extra[n++] = args[i - 1][1];
    }
    extra[n] = NULL;
    standin_start_with(&ks, &d, SA_TOKEN, extra);
}

static void start_node(int i)
{
    char tokfile[450], name[64], tok[100];
    static char env[NNODES][12][500];
    snprintf(name, sizeof(name), "%s.token", node_names[i]);
    snprintf(tok, sizeof(tok), "node-token-%s\n", node_names[i]);
    kubetest_file(&d, name, tok, tokfile, sizeof(tokfile));
    char (*e)[500] = env[i];
    snprintf(e[0], 500, "DROVER_SERVER=https://127.0.0.1:%d", d.https_port);
    snprintf(e[1], 500, "DROVER_TOKEN=%s", d.token);
    snprintf(e[2], 500, "DROVER_CA_CHECKSUM=%s", d.checksum);
    snprintf(e[3], 500, "DROVER_CLUSTER_ID=%s", d.cluster);
    snprintf(e[4], 500, "DROVER_NODE_NAME=%s", node_names[i]);
    snprintf(e[5], 500, "DROVER_PING_INTERVAL=500ms");
    snprintf(e[6], 500, "DROVER_DEAD_AFTER=2s");
    snprintf(e[7], 500, "DROVER_HEALTH_LISTEN=");
    snprintf(e[8], 500, "DROVER_KUBE_API=https://127.0.0.1:%d", ks.port);
    snprintf(e[9], 500, "DROVER_KUBE_TOKEN_FILE=%s", tokfile);
    snprintf(e[10], 500, "DROVER_KUBE_CA_FILE=%s/ca.crt", ks.dir);
    const char *all[] = { e[0], e[1], e[2], e[3], e[4], e[5], e[6], e[7], e[8], e[9], e[10],
                          NULL };
    snprintf(node_logs[i], sizeof(node_logs[i]), "%s/%s.log", d.dir, node_names[i]);
    const char *argv[] = { bin_path("drover-node-agent"), NULL };
    proc_spawn(&nodes[i], argv, all, node_logs[i]);
}

/* The cluster's state and connection.via ("" for null) match. */
struct link_want {
    const char *state, *via;    /* via NULL: any node/<name> but node/<not> */
    const char *not;
    char got[64];
};

static bool link_is(void *ud)
{
    struct link_want *w = ud;
    char path[200];
    snprintf(path, sizeof(path), "/v3/clusters/%s", d.cluster);
    json_t *c = kubetest_get(&d, path);
    const char *st = json_string_value(json_object_get(c, "state"));
    const char *via = json_string_value(json_object_get(json_object_get(c, "connection"),
                                                        "via"));
    bool ok = st && strcmp(st, w->state) == 0;
    if (w->via)
        ok = ok && (via ? strcmp(via, w->via) == 0 : !w->via[0]);
    else
        ok = ok && via && strncmp(via, "node/", 5) == 0 && (!w->not || strcmp(via + 5, w->not));
    snprintf(w->got, sizeof(w->got), "%s", via ? via : "");
    json_decref(c);
    return ok;
}

/* Waits for the cluster to be degraded via a node agent other than `not`
 * (may be NULL); its name into node. */
static void wait_degraded(char *node, size_t cap, const char *not)
{
    struct link_want w = { "degraded", NULL, not, "" };
    ck_assert_msg(wait_until(link_is, &w, SLOW_MS), "cluster not degraded via a node agent "
                  "other than %s (via \"%s\"; logs in %s)", not ? not : "-", w.got, d.dir);
    ck_assert_str_ne(w.got, "node/node-bad");
    snprintf(node, cap, "%s", w.got + 5);
}

static void wait_active(void)
{
    struct link_want w = { "active", "cluster-agent", NULL, "" };
    ck_assert_msg(wait_until(link_is, &w, SLOW_MS), "cluster not active via cluster-agent "
                  "(via \"%s\"; logs in %s)", w.got, d.dir);
}

static void setup(void)
{
    memset(&d, 0, sizeof(d));
    memset(nodes, 0, sizeof(nodes));
    memset(&kloop, 0, sizeof(kloop));
    dtest_start_server(&d);
    start_standin();
    snprintf(sa_kubeconfig, sizeof(sa_kubeconfig), "%s/sa.kubeconfig", d.dir);
    standin_kubeconfig(&ks, sa_kubeconfig);
    dtest_admin(&d);
    /* node-bad first: it is the longest connected, yet never eligible. */
    for (int i = 0; i < NNODES; i++) {
        start_node(i);
        if (i == 0)
            ck_assert(wait_for_log(d.server_log, "node=node-bad from", 15000));
    }
    for (int i = 1; i < NNODES; i++) {
        char line[100];
        snprintf(line, sizeof(line), "node=%s can stand in", node_names[i]);
        ck_assert_msg(wait_for_log(d.server_log, line, SLOW_MS), "%s not eligible (logs in %s)",
                      node_names[i], d.dir);
    }
    standin_start_agent(&ks, &d);
    wait_active();
    snprintf(admin_kubeconfig, sizeof(admin_kubeconfig), "%s/admin.kubeconfig", d.dir);
    kubetest_kubeconfig(&d, d.admin_token, admin_kubeconfig);
    ck_assert_msg(wait_until(kubetest_can_all, admin_kubeconfig, SLOW_MS),
                  "no cluster-admin for drover:admin");
}

static void teardown(void)
{
    proc_kill(&kloop);
    for (int i = 0; i < NNODES; i++)
        proc_end(&nodes[i]);
    standin_down(&ks, &d);
}

static int node_index(const char *name)
{
    for (int i = 0; i < NNODES; i++)
        if (strcmp(node_names[i], name) == 0)
            return i;
    ck_abort_msg("no node agent %s", name);
    return -1;
}

/* ---- kubectl in a loop through drover ---- */

static void start_kubectl_loop(void)
{
    char kcenv[500];
    snprintf(loop_log, sizeof(loop_log), "%s/kubectl-loop.log", d.dir);
    snprintf(kcenv, sizeof(kcenv), "KUBECONFIG=%s", admin_kubeconfig);
    const char *env[] = { kcenv, NULL };
    const char *argv[] = {
        "/bin/bash", "-c",
        "while :; do if timeout 20 kubectl get namespaces -o name --request-timeout=15s "
        ">/dev/null 2>&1; then echo ok; else echo fail; fi; sleep 0.05; done", NULL };
    proc_spawn(&kloop, argv, env, loop_log);
}

/* Lines the loop has written so far; oks among those after line `from`. */
static int loop_lines(int from, int *oks)
{
    FILE *f = fopen(loop_log, "r");
    char line[64];
    int n = 0;
    *oks = 0;
    while (f && fgets(line, sizeof(line), f)) {
        if (n++ >= from && strncmp(line, "ok", 2) == 0)
            (*oks)++;
    }
    if (f)
        fclose(f);
    return n;
}

struct loop_wait {
    int from, want;
};

static bool loop_oks(void *ud)
{
    struct loop_wait *w = ud;
    int oks;
    loop_lines(w->from, &oks);
    return oks >= w->want;
}

/* Waits for `want` successful kubectl runs after the current line. */
static void wait_kubectl_ok(int want, const char *when)
{
    int oks;
    struct loop_wait w = { loop_lines(0, &oks), want };
    ck_assert_msg(wait_until(loop_oks, &w, SLOW_MS * 2), "kubectl did not succeed %s "
                  "(logs in %s)", when, d.dir);
}

/* ---- reports and RBAC ---- */

/* Node `node` is listed with role `role` in /v3/clusters/{id}/nodes. */
struct role_want {
    const char *node, *role;
};

static bool node_has_role(void *ud)
{
    struct role_want *w = ud;
    char path[200];
    bool ok = false;
    snprintf(path, sizeof(path), "/v3/clusters/%s/nodes", d.cluster);
    json_t *l = kubetest_get(&d, path), *n, *r;
    size_t i, j;
    json_array_foreach(json_object_get(l, "data"), i, n) {
        const char *name = json_string_value(json_object_get(n, "name"));
        if (!name || strcmp(name, w->node) != 0)
            continue;
        json_array_foreach(json_object_get(n, "roles"), j, r)
            ok = ok || (json_string_value(r) && strcmp(json_string_value(r), w->role) == 0);
    }
    json_decref(l);
    return ok;
}

/* Labels a node straight in the stand-in and waits for the report. */
static void node_change_reported(const char *node, const char *role)
{
    static char out[8192];
    char args[300];
    snprintf(args, sizeof(args), "label node %s node-role.kubernetes.io/%s=", node, role);
    ck_assert_msg(kubetest_kubectl(sa_kubeconfig, args, out, sizeof(out)) == 0, "%s", out);
    struct role_want w = { node, role };
    ck_assert_msg(wait_until(node_has_role, &w, SLOW_MS), "role %s of %s not reported "
                  "(logs in %s)", role, node, d.dir);
}

static bool binding_exists(void *ud)
{
    static char out[8192];
    char args[200];
    snprintf(args, sizeof(args), "get clusterrolebinding drover-user-%s -o "
             "jsonpath={.roleRef.name}", (const char *)ud);
    return kubetest_kubectl(sa_kubeconfig, args, out, sizeof(out)) == 0 &&
           strcmp(out, "edit") == 0;
}

static void member_gets_binding(const char *name)
{
    kubetest_user(&d, name, "member", NULL, 0);
    ck_assert_msg(wait_until(binding_exists, (void *)name, SLOW_MS),
                  "no ClusterRoleBinding for %s (logs in %s)", name, d.dir);
}

/* Calls past mark by token name prefix to path prefix, made as the agent
 * itself (not impersonating a user). */
static int own_calls(long mark, const char *token_prefix, const char *path)
{
    FILE *f = fopen(ks.audit, "r");
    ck_assert_ptr_nonnull(f);
    fseek(f, mark, SEEK_SET);
    static char line[16384];
    char tok[200], p[200];
    snprintf(tok, sizeof(tok), "\"token\":\"%s", token_prefix);
    snprintf(p, sizeof(p), "\"path\":\"%s", path);
    int n = 0;
    while (fgets(line, sizeof(line), f))
        if (strstr(line, tok) && strstr(line, p) && strstr(line, "\"impersonatedBy\":null"))
            n++;
    fclose(f);
    return n;
}

/* kubectl's calls past mark went through node agent `node`. */
static int calls_through(long mark, const char *node)
{
    FILE *f = fopen(ks.audit, "r");
    ck_assert_ptr_nonnull(f);
    fseek(f, mark, SEEK_SET);
    static char line[16384];
    char by[200];
    snprintf(by, sizeof(by), "\"impersonatedBy\":\"%s%s\"", NODE_SA, node);
    int n = 0;
    while (fgets(line, sizeof(line), f))
        if (strstr(line, by) && strstr(line, "\"user\":\"drover:admin\""))
            n++;
    fclose(f);
    return n;
}

/* After the step-down only the cluster agent reports: a node change brings
 * a report from it and none from any node agent. */
static void only_cluster_agent_reports(const char *role)
{
    sleep(1);       /* the step-down message is on its way */
    long mark = standin_audit_mark(&ks);
    node_change_reported("node-3", role);
    sleep(2);       /* a second reporter would have fired by now (1 s debounce) */
    ck_assert_int_gt(own_calls(mark, STANDIN_SA_USER "\"", "/api/v1/events"), 0);
    ck_assert_msg(own_calls(mark, NODE_SA, "/api/v1/events") == 0,
                  "a node agent still reports after stepping down (logs in %s)", d.dir);
}

/* Each node agent, then the server, stops cleanly (under the sanitizers:
 * no leaks or errors in what the takeover left behind). */
static void nodes_stop_cleanly(void)
{
    for (int i = 0; i < NNODES; i++) {
        if (nodes[i].pid <= 0)
            continue;
        ck_assert_msg(proc_stop(&nodes[i], 10000) == 0, "%s exit not clean (log %s)",
                      node_names[i], node_logs[i]);
        ck_assert(!file_contains(node_logs[i], "Sanitizer"));
    }
    dtest_stop_server(&d);
    ck_assert(!file_contains(d.server_log, "Sanitizer"));
}

/* ---- the tests ---- */

/* A watch through drover: ends with an error when its tunnel dies. */
static void start_watch(struct proc *w)
{
    static char url[300], auth[200], wlog[400];
    snprintf(url, sizeof(url), "https://127.0.0.1:%d/k8s/clusters/%s/api/v1/namespaces?watch=1",
             d.https_port, d.cluster);
    snprintf(auth, sizeof(auth), "Authorization: Bearer %s", d.admin_token);
    snprintf(wlog, sizeof(wlog), "%s/watch.log", d.dir);
    const char *argv[] = { "/usr/bin/curl", "-skN", "--fail", "-H", auth, url, NULL };
    proc_spawn(w, argv, NULL, wlog);
    ck_assert_msg(wait_for_log(wlog, "\"ADDED\"", 15000), "watch did not start");
}

START_TEST(kill_cluster_agent)
{
    char acting[64];
    struct proc watch;
    start_kubectl_loop();
    wait_kubectl_ok(2, "before the kill");
    start_watch(&watch);
    long mark = standin_audit_mark(&ks);

    proc_signal(&d.agent, SIGKILL);
    proc_wait(&d.agent, 5000);
    /* The request in flight on the dead tunnel fails... */
    int rc = proc_wait(&watch, 15000);
    ck_assert_msg(rc != 0 && rc != -1, "the watch on the dead tunnel did not fail (%d)", rc);
    /* ...new ones go through a node agent. */
    wait_kubectl_ok(2, "after the kill");
    wait_degraded(acting, sizeof(acting), NULL);
    ck_assert_msg(calls_through(mark, acting) > 0, "no kubectl call through node/%s", acting);
    ck_assert(file_contains(node_logs[node_index(acting)], "standing in for the cluster agent"));
    ck_assert_int_eq(dtest_metric(&d, "drover_clusters_via_node_agent"), 1);
    /* (More than one when a slow acting node agent went silent and the
     * next one took over, as under valgrind.) */
    ck_assert_int_ge(dtest_metric(&d, "drover_takeovers_total"), 1);

    /* Reports and RBAC carry on through the node agent. */
    node_change_reported("node-2", "during-takeover");
    member_gets_binding("erin");
    wait_kubectl_ok(1, "during the takeover");

    /* The cluster agent comes back: it takes over again, the node steps down. */
    standin_start_agent(&ks, &d);
    wait_active();
    ck_assert_msg(wait_for_log(node_logs[node_index(acting)], "stepping down", SLOW_MS),
                  "node/%s did not step down", acting);
    ck_assert_int_eq(dtest_metric(&d, "drover_clusters_via_node_agent"), 0);
    ck_assert_int_ge(dtest_metric(&d, "drover_step_downs_total"), 1);
    wait_kubectl_ok(2, "after the cluster agent came back");
    only_cluster_agent_reports("after-takeover");
    member_gets_binding("frank");
    proc_kill(&kloop);
    int oks;
    int lines = loop_lines(0, &oks);
    fprintf(stderr, "kill_cluster_agent: kubectl loop %d runs, %d ok, via node/%s\n", lines,
            oks, acting);
    ck_assert_msg(proc_stop(&d.agent, 10000) == 0, "agent exit not clean");
    nodes_stop_cleanly();
}
END_TEST

START_TEST(stop_cluster_agent)
{
    char acting[64], out[8192];
    ck_assert_int_eq(kubetest_kubectl(admin_kubeconfig, "get nodes", out, sizeof(out)), 0);
    long long t0 = mono_ms();
    proc_signal(&d.agent, SIGSTOP);
    /* The server hears nothing from it: after dead-after (2 s here) it drops
     * the tunnel and a node agent stands in. */
    wait_degraded(acting, sizeof(acting), NULL);
    long long took = mono_ms() - t0;
    ck_assert_msg(kubetest_kubectl(admin_kubeconfig, "get nodes --request-timeout=20s", out,
                                   sizeof(out)) == 0, "%s", out);
    ck_assert_msg(strstr(out, "node-1"), "%s", out);
    fprintf(stderr, "stop_cluster_agent: degraded via node/%s after %lld ms\n", acting, took);
    node_change_reported("node-1", "while-stopped");

    /* Awake again, it finds its link closed, reconnects and takes over. */
    proc_signal(&d.agent, SIGCONT);
    wait_active();
    ck_assert_msg(wait_for_log(node_logs[node_index(acting)], "stepping down", SLOW_MS),
                  "node/%s did not step down", acting);
    ck_assert_int_eq(kubetest_kubectl(admin_kubeconfig, "get nodes", out, sizeof(out)), 0);
    only_cluster_agent_reports("after-stop");
    ck_assert_msg(proc_stop(&d.agent, 10000) == 0, "agent exit not clean");
    nodes_stop_cleanly();
}
END_TEST

START_TEST(kill_acting_node_agent)
{
    char first[64], second[64], third[64], out[8192];
    proc_signal(&d.agent, SIGKILL);
    proc_wait(&d.agent, 5000);
    wait_degraded(first, sizeof(first), NULL);
    ck_assert_int_eq(kubetest_kubectl(admin_kubeconfig, "get nodes", out, sizeof(out)), 0);

    /* The acting node agent goes too: the next eligible one takes over. */
    proc_kill(&nodes[node_index(first)]);
    wait_degraded(second, sizeof(second), first);
    long mark = standin_audit_mark(&ks);
    ck_assert_msg(kubetest_kubectl(admin_kubeconfig, "get nodes", out, sizeof(out)) == 0, "%s",
                  out);
    ck_assert_msg(calls_through(mark, second) > 0, "kubectl did not go through node/%s",
                  second);
    node_change_reported("node-3", "after-second-takeover");
    member_gets_binding("gina");

    /* And the third; then nothing is left but node-bad, which cannot. */
    proc_kill(&nodes[node_index(second)]);
    wait_degraded(third, sizeof(third), second);
    ck_assert_str_ne(third, first);
    ck_assert_int_eq(kubetest_kubectl(admin_kubeconfig, "get nodes", out, sizeof(out)), 0);
    proc_kill(&nodes[node_index(third)]);
    struct link_want w = { "disconnected", "", NULL, "" };
    ck_assert_msg(wait_until(link_is, &w, SLOW_MS), "cluster not disconnected (via %s)",
                  w.got);
    ck_assert_int_ne(kubetest_kubectl(admin_kubeconfig, "get nodes --request-timeout=10s", out,
                                      sizeof(out)), 0);
    ck_assert_msg(strstr(out, "503") || strstr(out, "ServiceUnavailable") ||
                  strstr(out, "unable to handle"), "%s", out);

    /* node-1 comes back: it stands in again by itself. */
    start_node(node_index("node-1"));
    char again[64];
    wait_degraded(again, sizeof(again), NULL);
    ck_assert_str_eq(again, "node-1");
    ck_assert_int_eq(kubetest_kubectl(admin_kubeconfig, "get nodes", out, sizeof(out)), 0);
    nodes_stop_cleanly();
}
END_TEST

Suite *suite_integration_takeover(void)
{
    Suite *s = suite_create("integration/takeover");
    TCase *tc = tcase_create("takeover");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, kill_cluster_agent);
    tcase_add_test(tc, stop_cluster_agent);
    tcase_add_test(tc, kill_acting_node_agent);
    suite_add_tcase(s, tc);
    return s;
}
