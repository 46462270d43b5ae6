/*
 * Node-agent takeover across replicas (docs/REPLICAS.md): two real
 * drover-server replicas on one real PostgreSQL, the cluster agent pinned
 * to replica A, two node agents pinned to replica B (each agent's
 * DROVER_SERVER names only its replica), the stand-in apiserver with one
 * service account per agent (its audit file says which agent made which
 * call), and the machine's kubectl through both replicas.
 *
 * Cluster-wide exactly one link carries the cluster: while the cluster agent
 * is up on A, no node agent on B takes the role and B routes kubectl to A;
 * when it dies one node agent on B stands in and both replicas route to it;
 * when it is back the node agent steps down. Asserts what happens, not how
 * fast.
 */
#include <check.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tests/support/apitest.h"
#include "tests/support/replicas.h"
#include "tests/support/standin.h"

#define A 0
#define B 1
#define SA_TOKEN "standin-sa-token-xrep"
#define NODE_SA  "system:serviceaccount:drover-system:drover-node-"
#define NNODES 2
#define SLOW_MS 30000

static struct replica_set rs;
static struct standin ks;
static struct proc agent, nodes[NNODES];
static const char *const node_names[NNODES] = { "node-1", "node-2" };
static char cluster[16], token[80], agent_log[400], node_logs[NNODES][400];

static int kubectl(const char *kc, const char *args, char *out, size_t cap)
{
    char cmd[1200];
    snprintf(cmd, sizeof(cmd), "KUBECONFIG=%s timeout 30 kubectl %s 2>&1", kc, args);
    return run_capture(cmd, out, cap);
}

/* The kubeconfig replica i hands out (it names replica i). */
static void kubeconfig_of(int i, char *path, size_t cap)
{
    char url[200];
    struct httpc_resp r;
    snprintf(path, cap, "%s/kc-%d", rs.rep[i].dir, i);
    snprintf(url, sizeof(url), "/v3/clusters/%s/kubeconfig", cluster);
    ck_assert_int_eq(dtest_call(&rs.rep[i], "GET", url, rs.rep[i].admin_token, NULL, &r),
                     200);
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fwrite(r.body, 1, r.len, f);
    fclose(f);
    httpc_free(&r);
}

struct reach {
    char kc[400];
    char out[8192];
};

static bool kubectl_reaches(void *ud)
{
    struct reach *w = ud;
    return kubectl(w->kc, "get namespaces -o name", w->out, sizeof(w->out)) == 0 &&
           strstr(w->out, "namespace/default") != NULL;
}

static void assert_reaches(int i)
{
    struct reach w;
    kubeconfig_of(i, w.kc, sizeof(w.kc));
    ck_assert_msg(wait_until(kubectl_reaches, &w, SLOW_MS),
                  "kubectl via replica %d cannot reach the cluster: %s (logs %s)", i, w.out,
                  rs.rep[i].dir);
}

/* The cluster's state and connection.via as replica i serves them. */
struct link_want {
    int rep;
    const char *state, *via;    /* via NULL: any node/<name> */
    char got[64];
};

static bool link_is(void *ud)
{
    struct link_want *w = ud;
    char path[200];
    json_t *c = NULL;
    snprintf(path, sizeof(path), "/v3/clusters/%s", cluster);
    apitest_call(&rs.rep[w->rep], "GET", path, rs.rep[w->rep].admin_token, NULL, &c);
    const char *st = json_string_value(json_object_get(c, "state"));
    const char *via = json_string_value(json_object_get(json_object_get(c, "connection"),
                                                        "via"));
    bool ok = st && strcmp(st, w->state) == 0 && via &&
              (w->via ? strcmp(via, w->via) == 0 : strncmp(via, "node/", 5) == 0);
    snprintf(w->got, sizeof(w->got), "%s/%s", st ? st : "", via ? via : "");
    json_decref(c);
    return ok;
}

static void wait_link(const char *state, const char *via, char *node, size_t cap)
{
    for (int i = 0; i < 2; i++) {
        struct link_want w = { .rep = i, .state = state, .via = via };
        ck_assert_msg(wait_until(link_is, &w, SLOW_MS), "replica %d: cluster not %s via %s "
                      "(got %s; logs in %s)", i, state, via ? via : "node/*", w.got,
                      rs.base.dir);
        if (node)
            snprintf(node, cap, "%s", strchr(w.got, '/') + 6);
    }
}

/* ---- the deployment ---- */

static void start_standin(void)
{
    static char args[NNODES][2][200];
    const char *extra[4 * NNODES + 1];
    size_t n = 0;
    for (int i = 0; i < NNODES; i++) {
        snprintf(args[i][0], sizeof(args[i][0]), "%s%s=node-token-%s", NODE_SA,
                 node_names[i], node_names[i]);
        snprintf(args[i][1], sizeof(args[i][1]), "%s%s", NODE_SA, node_names[i]);
        extra[n++] = "--token";
        extra[n++] = args[i][0];
        extra[n++] = "--admin";
        extra[n++] = args[i][1];
    }
    extra[n] = NULL;
    standin_start_with(&ks, &rs.base, SA_TOKEN, extra);
}

static void start_cluster_agent(void)
{
    char url[100];
    snprintf(agent_log, sizeof(agent_log), "%s/cluster-agent.log", rs.base.dir);
    struct replica_agent a = { .servers = replicas_url(&rs, A, url, sizeof(url)),
                               .cluster = cluster, .token = token, .sa_token = SA_TOKEN,
                               .log = agent_log };
    replicas_spawn_agent(&rs, &ks, &agent, &a);
}

static void start_node(int i)
{
    char url[100], sa[100];
    snprintf(node_logs[i], sizeof(node_logs[i]), "%s/%s.log", rs.base.dir, node_names[i]);
    snprintf(sa, sizeof(sa), "node-token-%s", node_names[i]);
    struct replica_agent a = { .servers = replicas_url(&rs, B, url, sizeof(url)),
                               .cluster = cluster, .token = token, .node = node_names[i],
                               .sa_token = sa, .log = node_logs[i] };
    replicas_spawn_agent(&rs, &ks, &nodes[i], &a);
}

static void setup(void)
{
    memset(&agent, 0, sizeof(agent));
    memset(nodes, 0, sizeof(nodes));
    replicas_start(&rs, 2, NULL);
    start_standin();
    dtest_create_cluster(&rs.rep[A], "xrep", cluster, token);
    start_cluster_agent();
    wait_link("active", "cluster-agent", NULL, 0);
    for (int i = 0; i < NNODES; i++)
        start_node(i);
    for (int i = 0; i < NNODES; i++) {
        char line[100];
        snprintf(line, sizeof(line), "node=%s can stand in", node_names[i]);
        ck_assert_msg(wait_for_log(rs.rep[B].server_log, line, SLOW_MS),
                      "%s not eligible on replica B (logs in %s)", node_names[i], rs.base.dir);
    }
}

static void teardown(void)
{
    proc_end(&agent);
    for (int i = 0; i < NNODES; i++)
        proc_end(&nodes[i]);
    standin_stop(&ks);
    replicas_down(&rs);
    proc_cleanup();
}

/* ---- what the agents did, from the stand-in's audit ---- */

/* kubectl's calls past mark made through node agent `node`. */
static int calls_through(long mark, const char *node)
{
    char by[200];
    snprintf(by, sizeof(by), "\"impersonatedBy\":\"%s%s\"", NODE_SA, node);
    const char *const needles[] = { by, "\"user\":\"drover:admin\"", NULL };
    return standin_audit_count(&ks, mark, needles);
}

/* Event reports past mark made by agents whose token name starts so. */
static int reports_by(long mark, const char *token_prefix)
{
    char tok[200];
    snprintf(tok, sizeof(tok), "\"token\":\"%s", token_prefix);
    const char *const needles[] = { tok, "\"path\":\"/api/v1/events",
                                    "\"impersonatedBy\":null", NULL };
    return standin_audit_count(&ks, mark, needles);
}

struct role_want {
    const char *node, *role;
};

static bool node_has_role(void *ud)
{
    struct role_want *w = ud;
    char path[200];
    bool ok = false;
    json_t *l = NULL, *n, *r;
    size_t i, j;
    snprintf(path, sizeof(path), "/v3/clusters/%s/nodes", cluster);
    apitest_call(&rs.rep[A], "GET", path, rs.rep[A].admin_token, NULL, &l);
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

/* Labels a node through replica B and waits for the report; then only the
 * agent holding the cluster role (by token name prefix) has reported. */
static void only_holder_reports(const char *role, const char *holder, const char *not)
{
    static char out[8192];
    char kc[400], args[300];
    sleep(1);       /* a step-down message may be on its way */
    long mark = standin_audit_mark(&ks);
    kubeconfig_of(B, kc, sizeof(kc));
    snprintf(args, sizeof(args), "label node node-1 node-role.kubernetes.io/%s=", role);
    ck_assert_msg(kubectl(kc, args, out, sizeof(out)) == 0, "%s", out);
    struct role_want w = { "node-1", role };
    ck_assert_msg(wait_until(node_has_role, &w, SLOW_MS), "role %s not reported (logs in %s)",
                  role, rs.base.dir);
    sleep(2);       /* a second reporter would have fired by now (1 s debounce) */
    ck_assert_int_gt(reports_by(mark, holder), 0);
    ck_assert_msg(reports_by(mark, not) == 0, "%s reports besides %s (logs in %s)", not,
                  holder, rs.base.dir);
}

static int standing_in(void)
{
    int n = 0;
    for (int i = 0; i < NNODES; i++)
        n += file_contains(node_logs[i], "standing in for the cluster agent");
    return n;
}

/* ---- the test ---- */

START_TEST(node_agents_on_another_replica)
{
    char acting[64], line[160];

    /* (1) The cluster agent is up on A: no node agent on B takes the role,
     * B routes kubectl to A, and only the cluster agent reports. */
    sleep(4);       /* past B's start-up grace and a few ownership refreshes */
    long mark = standin_audit_mark(&ks);
    assert_reaches(A);
    assert_reaches(B);
    wait_link("active", "cluster-agent", NULL, 0);
    ck_assert_msg(!file_contains(rs.rep[B].server_log, "takes the cluster role"),
                  "a node agent took the role beside the cluster agent (logs in %s)",
                  rs.base.dir);
    ck_assert_int_eq(standing_in(), 0);
    for (int i = 0; i < NNODES; i++)
        ck_assert_int_eq(calls_through(mark, node_names[i]), 0);
    only_holder_reports("with-agent", STANDIN_SA_USER "\"", NODE_SA);

    /* (2) kill -9 the cluster agent: one node agent on B stands in, and
     * both replicas route to it. */
    proc_signal(&agent, SIGKILL);
    proc_wait(&agent, 5000);
    mark = standin_audit_mark(&ks);
    wait_link("degraded", NULL, acting, sizeof(acting));
    ck_assert_msg(strcmp(acting, "node-1") == 0 || strcmp(acting, "node-2") == 0, "%s",
                  acting);
    snprintf(line, sizeof(line), "node=%s takes the cluster role", acting);
    ck_assert(file_contains(rs.rep[B].server_log, line));
    assert_reaches(A);
    assert_reaches(B);
    ck_assert_msg(calls_through(mark, acting) > 0, "no kubectl call through node/%s", acting);
    ck_assert_int_eq(standing_in(), 1);
    char who[160];
    snprintf(who, sizeof(who), "%s%s\"", NODE_SA, acting);
    only_holder_reports("during-takeover", who, STANDIN_SA_USER "\"");

    /* (3) The cluster agent is back on A: the node agent steps down. */
    start_cluster_agent();
    wait_link("active", "cluster-agent", NULL, 0);
    snprintf(line, sizeof(line), "node=%s steps down", acting);
    ck_assert_msg(wait_for_log(rs.rep[B].server_log, line, SLOW_MS), "%s did not step down "
                  "(logs in %s)", acting, rs.base.dir);
    mark = standin_audit_mark(&ks);
    assert_reaches(B);
    ck_assert_int_eq(calls_through(mark, acting), 0);
    only_holder_reports("after-takeover", STANDIN_SA_USER "\"", NODE_SA);

    /* Clean exits (leak checks under the sanitizers). */
    for (int i = 0; i < NNODES; i++)
        ck_assert_int_eq(proc_stop(&nodes[i], 10000), 0);
    for (int i = 0; i < 2; i++) {
        dtest_stop_server(&rs.rep[i]);
        ck_assert(!file_contains(rs.rep[i].server_log, "Sanitizer"));
    }
}
END_TEST

Suite *suite_integration_replicas_takeover(void)
{
    Suite *s = suite_create("integration/replicas_takeover");
    TCase *tc = tcase_create("takeover");
    tcase_set_timeout(tc, 300);
    apitest_fixtures(NULL, tc, NULL, setup, teardown);
    tcase_add_test(tc, node_agents_on_another_replica);
    suite_add_tcase(s, tc);
    return s;
}
