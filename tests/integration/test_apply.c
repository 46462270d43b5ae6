/*
 * POST /v3/clusters/{id}/apply end to end: a real drover-server and cluster
 * agent, the stand-in Kubernetes API server (tests/kube-standin) as the
 * cluster's apiserver. What lands in the stand-in is read back through the
 * /k8s proxy; its audit log says as whom the agent applied.
 */
#include <check.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/support/dtest.h"
#include "tests/support/kubetest.h"
#include "tests/support/standin.h"

#define SA_TOKEN "standin-sa-token-a9911c"

static struct dtest d;
static struct standin ks;

/* POST the body to the test cluster's apply as token; the answer's JSON
 * into *out (may be NULL). Returns the status. */
static int apply(const char *token, const char *ctype, const char *body, json_t **out)
{
    char path[200];
    struct httpc_resp r;
    snprintf(path, sizeof(path), "/v3/clusters/%s/apply", d.cluster);
    int st = httpc_do_type(d.https_port, "POST", path, token, ctype, body, 0, 60000, &r);
    if (out)
        *out = httpc_json(&r);
    httpc_free(&r);
    return st;
}

static const char *str(json_t *j, const char *k)
{
    const char *s = json_string_value(json_object_get(j, k));
    return s ? s : "";
}

/* Asserts data[i] is kind/name with this outcome (and status if > 0). */
static void expect_result(json_t *ans, size_t i, const char *kind, const char *name,
                          const char *outcome, int status)
{
    json_t *r = json_array_get(json_object_get(ans, "data"), i);
    char *dump = json_dumps(ans, JSON_COMPACT);
    ck_assert_msg(r, "no result %zu in %s", i, dump);
    ck_assert_msg(strcmp(str(r, "kind"), kind) == 0 && strcmp(str(r, "name"), name) == 0 &&
                  strcmp(str(r, "outcome"), outcome) == 0,
                  "result %zu: want %s/%s %s, got %s", i, kind, name, outcome, dump);
    if (status > 0)
        ck_assert_msg(json_integer_value(json_object_get(r, "status")) == status,
                      "result %zu: want status %d: %s", i, status, dump);
    free(dump);
}

/* GET through the /k8s proxy as admin; the object's JSON (caller decrefs). */
static json_t *k8s_get(const char *path)
{
    char url[400];
    snprintf(url, sizeof(url), "/k8s/clusters/%s%s", d.cluster, path);
    return kubetest_get(&d, url);
}

/* The agent's RBAC keeper has made drover:admin cluster-admin downstream. */
static bool admin_bound(void *ud)
{
    (void)ud;
    json_t *j = k8s_get("/apis/rbac.authorization.k8s.io/v1/clusterrolebindings/"
                        "drover-user-admin");
    bool ok = j != NULL;
    json_decref(j);
    return ok;
}

static void setup(void)
{
    standin_up(&ks, &d, SA_TOKEN);
    ck_assert_msg(wait_until(admin_bound, NULL, 20000), "no cluster-admin for drover:admin");
}

static void teardown(void)
{
    standin_down(&ks, &d);
}

/* The Namespace comes last here: applied in the request's order the
 * Deployment in it would fail, so all three created says Namespaces go
 * first. The ConfigMap names no namespace and lands in default. */
static const char shop_v1[] =
    "apiVersion: apps/v1\nkind: Deployment\n"
    "metadata: {name: web, namespace: shop, labels: {app: web}}\n"
    "spec:\n  replicas: 2\n  selector: {matchLabels: {app: web}}\n"
    "  template:\n    metadata: {labels: {app: web}}\n"
    "    spec: {containers: [{name: web, image: nginx}]}\n"
    "---\n"
    "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\ndata:\n  mode: blue\n"
    "  octal: 0644\n"
    "---\n"
    "apiVersion: v1\nkind: Namespace\nmetadata: {name: shop}\n";

START_TEST(apply_creates_then_unchanged_then_configured)
{
    json_t *ans;
    ck_assert_int_eq(apply(d.admin_token, "application/yaml", shop_v1, &ans), 200);
    ck_assert_int_eq(json_array_size(json_object_get(ans, "data")), 3);
    expect_result(ans, 0, "Deployment", "web", "created", 201);
    expect_result(ans, 1, "ConfigMap", "settings", "created", 201);
    expect_result(ans, 2, "Namespace", "shop", "created", 201);
    json_t *r1 = json_array_get(json_object_get(ans, "data"), 1);
    ck_assert_str_eq(str(r1, "namespace"), "default");
    ck_assert_str_eq(str(json_array_get(json_object_get(ans, "data"), 0), "namespace"), "shop");
    ck_assert_ptr_null(json_object_get(json_array_get(json_object_get(ans, "data"), 2),
                                       "namespace"));
    ck_assert_int_eq(json_integer_value(json_object_get(json_object_get(ans, "summary"),
                                                        "created")), 3);
    json_decref(ans);

    json_t *dep = k8s_get("/apis/apps/v1/namespaces/shop/deployments/web");
    ck_assert_ptr_nonnull(dep);
    ck_assert_int_eq(json_integer_value(json_object_get(json_object_get(dep, "spec"),
                                                        "replicas")), 2);
    json_decref(dep);

    ck_assert_int_eq(apply(d.admin_token, "application/yaml", shop_v1, &ans), 200);
    expect_result(ans, 0, "Deployment", "web", "unchanged", 200);
    expect_result(ans, 1, "ConfigMap", "settings", "unchanged", 200);
    expect_result(ans, 2, "Namespace", "shop", "unchanged", 200);
    json_decref(ans);

    char v2[sizeof(shop_v1) + 16];
    snprintf(v2, sizeof(v2), "%s", shop_v1);
    char *blue = strstr(v2, "mode: blue");
    memcpy(blue, "mode: gren", 10);
    ck_assert_int_eq(apply(d.admin_token, "application/yaml", v2, &ans), 200);
    expect_result(ans, 0, "Deployment", "web", "unchanged", 200);
    expect_result(ans, 1, "ConfigMap", "settings", "configured", 200);
    json_decref(ans);

    json_t *cm = k8s_get("/api/v1/namespaces/default/configmaps/settings");
    ck_assert_ptr_nonnull(cm);
    json_t *data = json_object_get(cm, "data");
    ck_assert_str_eq(str(data, "mode"), "gren");
    /* YAML as kubectl reads it: 0644 is octal. */
    ck_assert_int_eq(json_integer_value(json_object_get(data, "octal")), 420);
    json_decref(cm);

    /* The apiserver saw drover's user, through the agent's token. */
    ck_assert(file_contains(ks.audit, "\"method\":\"PATCH\""));
    ck_assert(file_contains(ks.audit, "fieldManager=drover&force=true"));
    FILE *f = fopen(ks.audit, "r");
    char line[8192];
    int patches = 0;
    while (f && fgets(line, sizeof(line), f)) {
        if (!strstr(line, "\"method\":\"PATCH\""))
            continue;
        ck_assert_msg(strstr(line, "\"user\":\"drover:admin\"") &&
                      strstr(line, "\"impersonatedBy\":\"" STANDIN_SA_USER "\""), "%s", line);
        ck_assert_msg(!strstr(line, d.admin_token), "drover token leaked: %s", line);
        patches++;
    }
    if (f)
        fclose(f);
    ck_assert_int_eq(patches, 9);
    /* Both ends stop cleanly afterwards (under the sanitizers: no leaks). */
    dtest_stop_server(&d);
    proc_signal(&d.agent, SIGTERM);
    ck_assert_int_eq(proc_wait(&d.agent, 20000), 0);
}
END_TEST

START_TEST(json_forms)
{
    json_t *ans;
    const char *list = "{\"apiVersion\":\"v1\",\"kind\":\"List\",\"items\":["
                       "{\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\",\"metadata\":{\"name\":\"a\"}},"
                       "{\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\",\"metadata\":{\"name\":\"b\","
                       "\"namespace\":\"kube-system\"},\"data\":{\"k\":\"v\"}}]}";
    ck_assert_int_eq(apply(d.admin_token, "application/json", list, &ans), 200);
    expect_result(ans, 0, "ConfigMap", "a", "created", 201);
    expect_result(ans, 1, "ConfigMap", "b", "created", 201);
    ck_assert_str_eq(str(json_array_get(json_object_get(ans, "data"), 1), "namespace"),
                     "kube-system");
    json_decref(ans);
    const char *array = "[{\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\",\"metadata\":"
                        "{\"name\":\"a\"}},{\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\","
                        "\"metadata\":{\"name\":\"c\"}}]";
    ck_assert_int_eq(apply(d.admin_token, "application/json; charset=utf-8", array, &ans),
                     200);
    expect_result(ans, 0, "ConfigMap", "a", "unchanged", 200);
    expect_result(ans, 1, "ConfigMap", "c", "created", 201);
    json_decref(ans);
}
END_TEST

/* A body that cannot be read is refused whole, naming what is wrong, and
 * nothing of it is applied. */
START_TEST(bad_bodies_refused_whole)
{
    json_t *ans;
    const char *no_name = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: fine}\n---\n"
                          "apiVersion: v1\nkind: ConfigMap\nmetadata: {labels: {a: b}}\n";
    ck_assert_int_eq(apply(d.admin_token, "application/yaml", no_name, &ans), 400);
    const char *msg = str(json_object_get(ans, "error"), "message");
    ck_assert_msg(strstr(msg, "document 2") && strstr(msg, "metadata.name"), "%s", msg);
    ck_assert_str_eq(str(json_object_get(ans, "error"), "code"), "BadRequest");
    json_decref(ans);
    ck_assert_ptr_null(k8s_get("/api/v1/namespaces/default/configmaps/fine"));

    ck_assert_int_eq(apply(d.admin_token, "application/yaml",
                           "kind: ConfigMap\n---\nfoo: [unclosed\n", &ans), 400);
    msg = str(json_object_get(ans, "error"), "message");
    ck_assert_msg(strstr(msg, "document 1") && strstr(msg, "apiVersion"), "%s", msg);
    json_decref(ans);

    ck_assert_int_eq(apply(d.admin_token, "application/yaml",
                           "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n---\n"
                           "a: [unclosed\n", &ans), 400);
    msg = str(json_object_get(ans, "error"), "message");
    ck_assert_msg(strstr(msg, "document 2") && strstr(msg, "invalid YAML"), "%s", msg);
    json_decref(ans);

    ck_assert_int_eq(apply(d.admin_token, "application/json",
                           "{\"apiVersion\":\"v1\",\"kind\":\"List\",\"items\":[{\"apiVersion\":"
                           "\"v1\",\"kind\":\"ConfigMap\",\"metadata\":{\"name\":\"ok\"}},"
                           "{\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\",\"metadata\":"
                           "{\"name\":\"a/b\"}}]}", &ans), 400);
    msg = str(json_object_get(ans, "error"), "message");
    ck_assert_msg(strstr(msg, "document 1, item 2"), "%s", msg);
    json_decref(ans);

    ck_assert_int_eq(apply(d.admin_token, "application/yaml", "---\n---\n", &ans), 400);
    json_decref(ans);
    ck_assert_int_eq(apply(d.admin_token, "text/plain", "apiVersion: v1\n", &ans), 415);
    json_decref(ans);
    ck_assert_int_eq(apply(d.admin_token, NULL, "apiVersion: v1\n", &ans), 415);
    json_decref(ans);

    char path[200];
    struct httpc_resp r;
    snprintf(path, sizeof(path), "/v3/clusters/%s/apply", d.cluster);
    ck_assert_int_eq(dtest_call(&d, "GET", path, d.admin_token, NULL, &r), 405);
    httpc_free(&r);
}
END_TEST

/* One object the cluster does not know fails alone; the ones after it are
 * still applied. */
START_TEST(unknown_kind_fails_alone)
{
    json_t *ans;
    const char *body = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: one}\n---\n"
                       "apiVersion: widgets.example.com/v1\nkind: Widget\n"
                       "metadata: {name: w}\nspec: {size: 3}\n---\n"
                       "apiVersion: v1\nkind: Gadget\nmetadata: {name: g}\n---\n"
                       "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: two, namespace: nope}\n"
                       "---\n"
                       "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: three}\n";
    ck_assert_int_eq(apply(d.admin_token, "application/yaml", body, &ans), 422);
    ck_assert_str_eq(str(json_object_get(ans, "error"), "code"), "ApplyFailed");
    expect_result(ans, 0, "ConfigMap", "one", "created", 201);
    expect_result(ans, 1, "Widget", "w", "failed", 404);
    ck_assert_msg(strstr(str(json_array_get(json_object_get(ans, "data"), 1), "message"),
                         "Widget"), "no kind named");
    expect_result(ans, 2, "Gadget", "g", "failed", 404);
    expect_result(ans, 3, "ConfigMap", "two", "failed", 404);   /* no such namespace */
    expect_result(ans, 4, "ConfigMap", "three", "created", 201);
    ck_assert_int_eq(json_integer_value(json_object_get(json_object_get(ans, "summary"),
                                                        "failed")), 3);
    json_decref(ans);
}
END_TEST

START_TEST(access_rules)
{
    char bob[100], carol[100];
    json_t *ans;
    const char *body = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: mine}\n---\n"
                       "apiVersion: v1\nkind: Namespace\nmetadata: {name: bobs}\n";
    kubetest_user(&d, "bob", "viewer", bob, sizeof(bob));
    kubetest_user(&d, "carol", NULL, carol, sizeof(carol));
    /* A viewer is a member: the request goes, and the cluster says no. */
    ck_assert_int_eq(apply(bob, "application/yaml", body, &ans), 422);
    expect_result(ans, 0, "ConfigMap", "mine", "failed", 403);
    expect_result(ans, 1, "Namespace", "bobs", "failed", 403);
    const char *why = str(json_array_get(json_object_get(ans, "data"), 0), "message");
    ck_assert_msg(strstr(why, "drover:bob"), "%s", why);
    json_decref(ans);
    ck_assert(file_contains(ks.audit, "\"user\":\"drover:bob\""));
    ck_assert_ptr_null(k8s_get("/api/v1/namespaces/default/configmaps/mine"));
    /* Not a member: as if the cluster did not exist. */
    ck_assert_int_eq(apply(carol, "application/yaml", body, &ans), 404);
    ck_assert_str_eq(str(json_object_get(ans, "error"), "code"), "NotFound");
    json_decref(ans);
    ck_assert_int_eq(apply(NULL, "application/yaml", body, &ans), 401);
    json_decref(ans);
    ck_assert(!file_contains(ks.audit, "\"user\":\"drover:carol\""));
}
END_TEST

/* n ConfigMaps of about pad bytes each, as one YAML file in the test dir;
 * its path into path. Returns its size. */
static size_t write_many(int n, int pad, char *path, size_t cap)
{
    snprintf(path, cap, "%s/many-%d.yaml", d.dir, n);
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    char *x = malloc((size_t)pad + 1);
    memset(x, 'x', (size_t)pad);
    x[pad] = '\0';
    for (int i = 0; i < n; i++)
        fprintf(f, "---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: cm-%d}\n"
                "data: {pad: %s}\n", i, x);
    free(x);
    long size = ftell(f);
    fclose(f);
    return (size_t)size;
}

/* The curl command that applies file as admin, the answer into out_file.
 * (curl rather than httpc: httpc holds a large body back while the server
 * may still answer early.) */
static void curl_cmd(const char *file, const char *out_file, char *cmd, size_t cap)
{
    snprintf(cmd, cap,
             "curl -sk --max-time 120 -o %s -w '%%{http_code}' -H 'Expect:' "
             "-H 'Authorization: Bearer %s' -H 'Content-Type: application/yaml' "
             "--data-binary @%s https://127.0.0.1:%d/v3/clusters/%s/apply",
             out_file, d.admin_token, file, d.https_port, d.cluster);
}

/* More objects than one stream window holds: both directions wait on
 * credit and nothing is lost. */
START_TEST(many_objects_flow)
{
    enum { N = 150 };
    char file[400], out_file[400], cmd[1400];
    size_t len = write_many(N, 4000, file, sizeof(file));
    snprintf(out_file, sizeof(out_file), "%s/many.json", d.dir);
    curl_cmd(file, out_file, cmd, sizeof(cmd));
    static char out[256];
    long long t0 = mono_ms();
    ck_assert_int_eq(run_capture(cmd, out, sizeof(out)), 0);
    fprintf(stderr, "many_objects_flow: %d objects (%zu KiB) applied in %lld ms\n", N,
            len / 1024, mono_ms() - t0);
    ck_assert_str_eq(out, "200");
    json_t *ans = json_load_file(out_file, 0, NULL);
    ck_assert_ptr_nonnull(ans);
    ck_assert_int_eq(json_array_size(json_object_get(ans, "data")), N);
    for (int i = 0; i < N; i++) {
        char name[32];
        snprintf(name, sizeof(name), "cm-%d", i);
        expect_result(ans, (size_t)i, "ConfigMap", name, "created", 201);
    }
    json_decref(ans);
}
END_TEST

static bool some_patches(void *ud)
{
    (void)ud;
    FILE *f = fopen(ks.audit, "r");
    char line[8192];
    int n = 0;
    while (f && fgets(line, sizeof(line), f))
        n += strstr(line, "\"method\":\"PATCH\"") != NULL;
    if (f)
        fclose(f);
    return n >= 5;
}

/* Starts applying 400 ConfigMaps with curl in c (its answer into
 * <name>.json, its status code into <name>.log) and waits until the agent
 * is halfway, patching. */
static void apply_in_background(const char *name, struct proc *c, char out_file[400],
                                char log[400])
{
    char file[400], cmd[1400];
    write_many(400, 100, file, sizeof(file));
    snprintf(out_file, 400, "%s/%s.json", d.dir, name);
    snprintf(log, 400, "%s/%s.log", d.dir, name);
    curl_cmd(file, out_file, cmd, sizeof(cmd));
    const char *argv[] = { "/bin/sh", "-c", cmd, NULL };
    proc_spawn(c, argv, NULL, log);
    ck_assert_msg(wait_until(some_patches, NULL, 30000), "the apply did not start");
}

/* The server and the agent stop cleanly (no leak, under the sanitizers)
 * while an apply is halfway through. */
START_TEST(stop_mid_apply)
{
    char out_file[400], log[400];
    struct proc c;
    apply_in_background("mid", &c, out_file, log);
    dtest_stop_server(&d);
    /* The client may or may not see an answer before the connection goes
     * (that is the HTTPS server's shutdown), but never a success. */
    int rc = proc_wait(&c, 20000);
    ck_assert_msg(rc == 0 || rc == 52 || rc == 56, "curl exit %d", rc);
    ck_assert_msg(!file_contains(log, "200"), "the apply cannot have finished");
    proc_signal(&d.agent, SIGTERM);
    ck_assert_int_eq(proc_wait(&d.agent, 20000), 0);
}
END_TEST

/* The agent dies halfway: the answer says so and carries what was done. */
START_TEST(agent_lost_mid_apply)
{
    char out_file[400], log[400];
    struct proc c;
    apply_in_background("lost", &c, out_file, log);
    proc_signal(&d.agent, SIGKILL);
    ck_assert_int_eq(proc_wait(&c, 30000), 0);
    /* The link is gone: 503, as the kube proxy says. */
    ck_assert_msg(file_contains(log, "503"), "want 503");
    json_t *ans = json_load_file(out_file, 0, NULL);
    ck_assert_ptr_nonnull(ans);
    size_t n = json_array_size(json_object_get(ans, "data"));
    const char *msg = str(json_object_get(ans, "error"), "message");
    fprintf(stderr, "agent_lost_mid_apply: %zu results: %s\n", n, msg);
    ck_assert_uint_lt(n, 400);
    ck_assert_msg(strstr(msg, "of 400 objects have a result"), "%s", msg);
    json_decref(ans);
}
END_TEST

START_TEST(no_link_answers_503)
{
    json_t *ans;
    proc_signal(&d.agent, SIGKILL);
    proc_wait(&d.agent, 5000);
    ck_assert_msg(kubetest_wait_state(&d, "disconnected", 5000),
                  "cluster not disconnected");
    long long t0 = mono_ms();
    ck_assert_int_eq(apply(d.admin_token, "application/yaml",
                           "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n", &ans), 503);
    fprintf(stderr, "no_link_answers_503: answered in %lld ms\n", mono_ms() - t0);
    ck_assert_str_eq(str(json_object_get(ans, "error"), "code"), "ServiceUnavailable");
    ck_assert_msg(strstr(str(json_object_get(ans, "error"), "message"), "not connected"),
                  "%s", str(json_object_get(ans, "error"), "message"));
    json_decref(ans);
}
END_TEST

Suite *suite_integration_apply(void)
{
    Suite *s = suite_create("integration/apply");
    TCase *tc = tcase_create("apply");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 180);
    tcase_add_test(tc, apply_creates_then_unchanged_then_configured);
    tcase_add_test(tc, json_forms);
    tcase_add_test(tc, bad_bodies_refused_whole);
    tcase_add_test(tc, unknown_kind_fails_alone);
    tcase_add_test(tc, access_rules);
    tcase_add_test(tc, many_objects_flow);
    tcase_add_test(tc, stop_mid_apply);
    tcase_add_test(tc, agent_lost_mid_apply);
    tcase_add_test(tc, no_link_answers_503);
    suite_add_tcase(s, tc);
    return s;
}
