/*
 * The cluster agent's own work, end to end: a real drover-server, the real
 * drover-cluster-agent and the stand-in Kubernetes API server. The agent's
 * reports must reach the API (version, nodes, events), and its RBAC keeper
 * must turn drover membership into ClusterRoleBindings, which we read
 * straight from the stand-in with the agent's service-account token.
 */
#include <check.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/support/dtest.h"
#include "tests/support/kubetest.h"
#include "tests/support/standin.h"

#define SA_TOKEN "standin-sa-token-c41d02"
#define SLOW_MS 30000           /* the server debounces and retries; be generous */

static struct dtest d;
static struct standin ks;
static char sa_kubeconfig[400];

static void setup(void)
{
    standin_up(&ks, &d, SA_TOKEN);
    /* Straight at the stand-in, as the agent's service account. */
    snprintf(sa_kubeconfig, sizeof(sa_kubeconfig), "%s/sa.kubeconfig", d.dir);
    standin_kubeconfig(&ks, sa_kubeconfig);
}

static void teardown(void)
{
    standin_down(&ks, &d);
}

/* Ends each test: the agent was alive throughout and stops cleanly (under
 * the sanitizers, leaks and errors make that exit code non-zero). */
static void agent_stops_cleanly(void)
{
    ck_assert_msg(proc_stop(&d.agent, 10000) == 0, "agent exit not clean (log %s)",
                  d.agent_log);
    ck_assert(!file_contains(d.agent_log, "Sanitizer"));
}

/* ---- reports ---- */

static bool cluster_reported(void *ud)
{
    char path[200];
    (void)ud;
    snprintf(path, sizeof(path), "/v3/clusters/%s", d.cluster);
    json_t *c = kubetest_get(&d, path);
    const char *v = json_string_value(json_object_get(c, "kubernetesVersion"));
    const char *st = json_string_value(json_object_get(c, "state"));
    bool ok = v && strcmp(v, "v1.31.0") == 0 && st && strcmp(st, "active") == 0 &&
              json_integer_value(json_object_get(c, "nodeCount")) == 3;
    json_decref(c);
    return ok;
}

static bool has_role(json_t *node, const char *role)
{
    size_t i;
    json_t *r;
    json_array_foreach(json_object_get(node, "roles"), i, r)
        if (json_string_value(r) && strcmp(json_string_value(r), role) == 0)
            return true;
    return false;
}

/* node-1..3 listed, node-1 with its control-plane role. */
static bool nodes_reported(void *ud)
{
    char path[200];
    int seen = 0;
    (void)ud;
    snprintf(path, sizeof(path), "/v3/clusters/%s/nodes", d.cluster);
    json_t *l = kubetest_get(&d, path), *n;
    size_t i;
    json_array_foreach(json_object_get(l, "data"), i, n) {
        const char *name = json_string_value(json_object_get(n, "name"));
        if (!name)
            continue;
        if (strcmp(name, "node-1") == 0 && has_role(n, "control-plane"))
            seen |= 1;
        if (strcmp(name, "node-2") == 0 || strcmp(name, "node-3") == 0)
            seen |= strcmp(name, "node-2") == 0 ? 2 : 4;
    }
    json_decref(l);
    return seen == 7;
}

static bool warning_reported(void *ud)
{
    char path[200];
    bool ok = false;
    (void)ud;
    snprintf(path, sizeof(path), "/v3/clusters/%s/events", d.cluster);
    json_t *l = kubetest_get(&d, path), *e;
    size_t i;
    json_array_foreach(json_object_get(l, "data"), i, e) {
        const char *type = json_string_value(json_object_get(e, "type"));
        const char *reason = json_string_value(json_object_get(e, "reason"));
        ok = ok || (type && strcmp(type, "Warning") == 0 && reason &&
                    strcmp(reason, "BackOff") == 0);
    }
    json_decref(l);
    return ok;
}

START_TEST(report_reaches_server)
{
    ck_assert_msg(wait_until(cluster_reported, NULL, SLOW_MS),
                  "no report with v1.31.0, 3 nodes, active (logs in %s)", d.dir);
    ck_assert_msg(wait_until(nodes_reported, NULL, SLOW_MS), "nodes not reported");
    ck_assert_msg(wait_until(warning_reported, NULL, SLOW_MS), "Warning event not reported");
    ck_assert(!file_contains(d.agent_log, "cluster report:"));
    agent_stops_cleanly();
}
END_TEST

/* A node change reaches the server within the debounce, not the 30 s
 * period: delete node-3 and the count drops. */
static bool two_nodes(void *ud)
{
    char path[200];
    (void)ud;
    snprintf(path, sizeof(path), "/v3/clusters/%s", d.cluster);
    json_t *c = kubetest_get(&d, path);
    bool ok = json_integer_value(json_object_get(c, "nodeCount")) == 2;
    json_decref(c);
    return ok;
}

START_TEST(node_change_reported_soon)
{
    static char out[65536];
    ck_assert(wait_until(cluster_reported, NULL, SLOW_MS));
    ck_assert_int_eq(kubetest_kubectl(sa_kubeconfig, "delete node node-3", out, sizeof(out)),
                     0);
    ck_assert_msg(wait_until(two_nodes, NULL, 10000), "node change not reported in time");
    agent_stops_cleanly();
}
END_TEST

/* ---- RBAC ---- */

/* The managed bindings as "name=role;..." into out. */
static void managed_bindings(char *out, size_t cap)
{
    kubetest_kubectl(sa_kubeconfig, "get clusterrolebindings -l drover.io/managed=true -o "
                     "jsonpath='{range .items[*]}{.metadata.name}={.roleRef.name}"
                     "/{.subjects[0].name};{end}'", out, cap);
}

struct want {
    const char *present[4];
    const char *absent[2];
};

static bool bindings_are(void *ud)
{
    const struct want *w = ud;
    static char out[65536];
    managed_bindings(out, sizeof(out));
    for (int i = 0; i < 4 && w->present[i]; i++)
        if (!strstr(out, w->present[i]))
            return false;
    for (int i = 0; i < 2 && w->absent[i]; i++)
        if (strstr(out, w->absent[i]))
            return false;
    return true;
}

static const char unmanaged[] =
    "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRoleBinding\n"
    "metadata: {name: drover-user-zed}\n"
    "roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: view}\n"
    "subjects: [{kind: User, name: 'drover:zed', apiGroup: rbac.authorization.k8s.io}]\n";

START_TEST(members_become_bindings)
{
    static char out[65536];
    char bob[100], carol[100], dave[100], path[400], args[600];
    kubetest_user(&d, "bob", "owner", bob, sizeof(bob));
    kubetest_user(&d, "carol", "member", carol, sizeof(carol));
    kubetest_user(&d, "dave", "viewer", dave, sizeof(dave));
    struct want all = { { "drover-user-admin=cluster-admin/drover:admin;",
                          "drover-user-bob=cluster-admin/drover:bob;",
                          "drover-user-carol=edit/drover:carol;",
                          "drover-user-dave=view/drover:dave;" }, { NULL } };
    bool ok = wait_until(bindings_are, &all, SLOW_MS);
    managed_bindings(out, sizeof(out));
    ck_assert_msg(ok, "bindings: %s (logs in %s)", out, d.dir);

    /* A binding drover did not label is not drover's. */
    kubetest_file(&d, "zed.yaml", unmanaged, path, sizeof(path));
    snprintf(args, sizeof(args), "apply -f %s", path);
    ck_assert_int_eq(kubetest_kubectl(sa_kubeconfig, args, out, sizeof(out)), 0);

    /* Through drover: the viewer reads but cannot write; the member writes. */
    char dkc[400], ckc[400];
    snprintf(dkc, sizeof(dkc), "%s/dave.kubeconfig", d.dir);
    snprintf(ckc, sizeof(ckc), "%s/carol.kubeconfig", d.dir);
    kubetest_kubeconfig(&d, dave, dkc);
    kubetest_kubeconfig(&d, carol, ckc);
    ck_assert_int_eq(kubetest_kubectl(dkc, "get pods -n kube-system", out, sizeof(out)), 0);
    ck_assert_int_ne(kubetest_kubectl(dkc, "create configmap from-viewer", out, sizeof(out)),
                     0);
    ck_assert_msg(strstr(out, "forbidden") || strstr(out, "Forbidden"), "%s", out);
    ck_assert_msg(kubetest_kubectl(ckc, "create configmap from-member", out, sizeof(out)) == 0,
                  "%s", out);

    /* Removing a member removes its binding; a role change replaces one. */
    snprintf(path, sizeof(path), "/v3/clusters/%s/members/dave", d.cluster);
    struct httpc_resp r;
    ck_assert_int_eq(dtest_call(&d, "DELETE", path, d.admin_token, NULL, &r), 204);
    httpc_free(&r);
    snprintf(path, sizeof(path), "/v3/clusters/%s/members", d.cluster);
    int st = dtest_call(&d, "POST", path, d.admin_token,
                        "{\"user\":\"carol\",\"role\":\"viewer\"}", &r);
    ck_assert_msg(st == 200 || st == 201, "role change: %d", st);
    httpc_free(&r);
    struct want after = { { "drover-user-admin=cluster-admin/drover:admin;",
                            "drover-user-carol=view/drover:carol;" },
                          { "drover-user-dave", "drover-user-zed" } };
    ok = wait_until(bindings_are, &after, SLOW_MS);
    managed_bindings(out, sizeof(out));
    ck_assert_msg(ok, "bindings after removal: %s", out);
    ck_assert_int_eq(kubetest_kubectl(sa_kubeconfig, "get clusterrolebinding drover-user-zed",
                                      out, sizeof(out)), 0);
    ck_assert_int_ne(kubetest_kubectl(ckc, "create configmap from-viewer-now", out,
                                      sizeof(out)), 0);
    agent_stops_cleanly();
}
END_TEST

Suite *suite_integration_cluster_agent(void)
{
    Suite *s = suite_create("integration/cluster_agent");
    TCase *tc = tcase_create("cluster_agent");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 180);
    tcase_add_test(tc, report_reaches_server);
    tcase_add_test(tc, node_change_reported_soon);
    tcase_add_test(tc, members_become_bindings);
    suite_add_tcase(s, tc);
    return s;
}
