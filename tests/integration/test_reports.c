/*
 * Reports and RBAC end to end: a real drover-server (SQLite, then
 * PostgreSQL) and a small in-test cluster agent (tests/support/testagent)
 * on loopback. The agent sends "report" documents and checks what the API
 * then shows; it answers the server's "rbac" pushes and checks their
 * bindings, also after a membership change.
 */
#include <check.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto/frame.h"
#include "tests/support/apitest.h"
#include "tests/support/testagent.h"

static struct dtest d;

static void lite_setup(void) { apitest_lite_setup(&d); }
static void pg_setup(void) { apitest_pg_setup(&d); }
static void teardown(void) { apitest_teardown(&d); }

#define NODE(name, cpu) \
    "{\"name\":\"" name "\",\"roles\":[\"control-plane\",\"etcd\"],\"kubeletVersion\":" \
    "\"v1.31.0\",\"ready\":true,\"addresses\":[{\"type\":\"InternalIP\",\"address\":" \
    "\"10.0.0.1\"}],\"capacity\":{\"cpu\":\"" cpu "\",\"memory\":\"16Gi\",\"pods\":\"110\"}," \
    "\"allocatable\":{\"cpu\":\"" cpu "\",\"memory\":\"16Gi\",\"pods\":\"110\"}}"

static const char report1[] =
    "{\"kubernetesVersion\":\"v1.31.0\",\"healthy\":true,\"health\":\"ok\",\"nodes\":["
    NODE("node-1", "4") "," NODE("node-2", "500m") "," NODE("node-3", "3500m") "],"
    "\"events\":[{\"type\":\"Warning\",\"reason\":\"BackOff\",\"message\":\"restarting\","
    "\"object\":\"Pod/default/web-1\",\"count\":3,\"time\":\"2026-11-24T18:00:00Z\"},"
    "{\"type\":\"Warning\",\"reason\":\"FailedMount\",\"message\":\"no volume\","
    "\"object\":\"Pod/default/db-0\",\"count\":1,\"time\":\"2026-11-24T17:00:00Z\"}]}";

static void report_ok(struct testagent *a, const char *doc, size_t len)
{
    char ans[512];
    int rc = testagent_report(a, doc, len, ans, sizeof(ans), 20000);
    ck_assert_msg(rc == 0, "report stream ended with %d (log %s)", rc, d.server_log);
    ck_assert_msg(strcmp(ans, "{\"ok\":true}") == 0, "answer %s", ans);
}

/* GET /v3/clusters/<id><rest> as admin. */
static json_t *get(const char *id, const char *rest)
{
    char path[256];
    snprintf(path, sizeof(path), "/v3/clusters/%s%s", id, rest);
    return EXPECT(200, "GET", path, d.admin_token, NULL);
}

/* A report of n events, newest first, at 2027-01-01 + i seconds. */
static char *many_events(int n)
{
    json_t *ev = json_array();
    for (int i = n - 1; i >= 0; i--) {
        char t[40], obj[40];
        snprintf(t, sizeof(t), "2027-01-01T%02d:%02d:%02dZ", i / 3600, i / 60 % 60, i % 60);
        snprintf(obj, sizeof(obj), "Pod/default/p-%d", i);
        json_array_append_new(ev, json_pack("{s:s,s:s,s:s,s:s,s:i,s:s}", "type", "Warning",
                                            "reason", "Many", "message", "m", "object", obj,
                                            "count", 1, "time", t));
    }
    json_t *doc = json_pack("{s:s,s:b,s:[],s:o}", "kubernetesVersion", "v1.31.1", "healthy",
                            1, "nodes", "events", ev);
    char *s = json_dumps(doc, JSON_COMPACT);
    json_decref(doc);
    return s;
}

static void check_cluster(const char *id)
{
    json_t *c = get(id, "");
    ck_assert_str_eq(apitest_str(c, "kubernetesVersion"), "v1.31.0");
    ck_assert_int_eq(json_integer_value(apitest_get(c, "nodeCount")), 3);
    ck_assert_str_eq(apitest_str(c, "capacity.cpu"), "8");
    ck_assert_str_eq(apitest_str(c, "capacity.memory"), "48Gi");
    ck_assert_str_eq(apitest_str(c, "capacity.pods"), "330");
    json_t *cond = json_array_get(apitest_get(c, "conditions"), 0);
    ck_assert_str_eq(apitest_str(cond, "type"), "Ready");
    ck_assert_str_eq(apitest_str(cond, "status"), "True");
    ck_assert_str_eq(apitest_str(cond, "message"), "ok");
    ck_assert_ptr_nonnull(apitest_str(c, "lastSeen"));
    ck_assert_str_eq(apitest_str(c, "state"), "active");
    json_decref(c);
}

static void check_nodes(const char *id)
{
    json_t *n = get(id, "/nodes");
    json_t *data = apitest_get(n, "data");
    ck_assert_int_eq(json_array_size(data), 3);
    json_t *n2 = json_array_get(data, 1);
    ck_assert_str_eq(apitest_str(n2, "name"), "node-2");
    ck_assert_str_eq(json_string_value(json_array_get(apitest_get(n2, "roles"), 1)), "etcd");
    ck_assert_str_eq(apitest_str(n2, "capacity.cpu"), "500m");
    ck_assert(json_is_true(apitest_get(n2, "ready")));
    ck_assert(json_is_false(apitest_get(n2, "agentConnected")));
    ck_assert_str_eq(apitest_str(json_array_get(apitest_get(n2, "addresses"), 0), "address"),
                     "10.0.0.1");
    json_decref(n);
}

/* The events list; *first gets the first id. */
static size_t count_events(const char *id, const char *query, json_int_t *first)
{
    char rest[128];
    snprintf(rest, sizeof(rest), "/events%s", query);
    json_t *e = get(id, rest);
    json_t *data = apitest_get(e, "data");
    size_t n = json_array_size(data);
    json_int_t prev = 0;
    for (size_t i = 0; i < n; i++) {
        json_int_t v = json_integer_value(apitest_get(json_array_get(data, i), "id"));
        ck_assert_msg(v > prev, "ids not ascending");
        prev = v;
    }
    if (first)
        *first = json_integer_value(apitest_get(json_array_get(data, 0), "id"));
    json_decref(e);
    return n;
}

static struct testagent *connect_agent(const char *id, json_t *cluster)
{
    struct testagent *a = testagent_start(d.https_port, id,
                                          apitest_str(cluster, "registration.token"), 15000);
    ck_assert_msg(a != NULL, "the test agent did not connect (log %s)", d.server_log);
    return a;
}

/* Stops the server with the agent still connected (its shutdown must be
 * clean with report and rbac state around), then the agent. */
static void finish(struct testagent *a)
{
    dtest_stop_server(&d);
    testagent_stop(a);
}

START_TEST(report_shows_in_api)
{
    char id[16];
    json_t *c = apitest_cluster(&d, d.admin_token, "rep", id);
    struct testagent *a = connect_agent(id, c);
    json_decref(c);
    report_ok(a, report1, strlen(report1));
    check_cluster(id);
    check_nodes(id);
    json_int_t first;
    ck_assert_uint_eq(count_events(id, "", &first), 2);
    /* The same report again adds no events. */
    report_ok(a, report1, strlen(report1));
    ck_assert_uint_eq(count_events(id, "", NULL), 2);
    char q[64];
    snprintf(q, sizeof(q), "?since=%lld", (long long)first);
    ck_assert_uint_eq(count_events(id, q, NULL), 1);
    /* More than 1000 new events: the newest 1000 are kept (a 160 KB
     * document: past the early window, so flow control is exercised). */
    char *big = many_events(1100);
    report_ok(a, big, strlen(big));
    free(big);
    ck_assert_uint_eq(count_events(id, "?limit=1000", NULL), 1000);
    json_t *e = get(id, "/events?limit=1");
    ck_assert_str_eq(apitest_str(json_array_get(apitest_get(e, "data"), 0), "object"),
                     "Pod/default/p-100");   /* p-0..p-99 were the oldest */
    json_decref(e);
    finish(a);
}
END_TEST

START_TEST(bad_reports)
{
    char id[16], ans[512];
    json_t *c = apitest_cluster(&d, d.admin_token, "bad", id);
    struct testagent *a = connect_agent(id, c);
    json_decref(c);
    static const char wrong[] = "{\"kubernetesVersion\":\"v1\",\"healthy\":\"yes\",\"nodes\":[]}";
    ck_assert_int_eq(testagent_report(a, wrong, strlen(wrong), ans, sizeof(ans), 10000), 0);
    json_t *j = json_loads(ans, 0, NULL);
    ck_assert_msg(json_is_false(json_object_get(j, "ok")), "answer %s", ans);
    ck_assert_ptr_nonnull(strstr(json_string_value(json_object_get(j, "error")), "healthy"));
    json_decref(j);
    ck_assert_int_eq(testagent_report(a, "{", 1, ans, sizeof(ans), 10000), 0);
    ck_assert_ptr_nonnull(strstr(ans, "\"ok\":false"));
    /* Past 16 MiB the stream is reset with "limit". */
    size_t n = 16u * 1024 * 1024 + 4096;
    char *huge = malloc(n);
    memset(huge, ' ', n);
    ck_assert_int_eq(testagent_report(a, huge, n, ans, sizeof(ans), 60000), TUN_RESET_LIMIT);
    free(huge);
    /* The tunnel is still fine. */
    report_ok(a, report1, strlen(report1));
    finish(a);
}
END_TEST

/* Whether doc binds user to role. */
static bool binds(json_t *doc, const char *user, const char *role)
{
    json_t *b;
    size_t i;
    json_array_foreach(json_object_get(doc, "bindings"), i, b) {
        if (strcmp(apitest_str(b, "user"), user) == 0)
            return strcmp(apitest_str(b, "role"), role) == 0;
    }
    return false;
}

static json_t *next_rbac(struct testagent *a, int timeout_ms)
{
    char *s = testagent_next_rbac(a, timeout_ms);
    ck_assert_msg(s != NULL, "no rbac push within %d ms (log %s)", timeout_ms, d.server_log);
    json_t *j = json_loads(s, 0, NULL);
    ck_assert_msg(json_is_array(json_object_get(j, "bindings")), "rbac doc %s", s);
    free(s);
    return j;
}

START_TEST(rbac_push)
{
    char id[16], tok[80];
    apitest_user(&d, "olga", false, tok);
    apitest_user(&d, "alice", false, tok);
    apitest_user(&d, "bob", false, tok);
    apitest_user(&d, "carol", true, tok);
    apitest_user(&d, "dave", false, tok);
    json_t *c = apitest_cluster(&d, d.admin_token, "rb", id);
    char path[96];
    snprintf(path, sizeof(path), "/v3/clusters/%s/members", id);
    EXPECT_ONLY(201, "POST", path, d.admin_token, "{\"user\":\"olga\",\"role\":\"owner\"}");
    EXPECT_ONLY(201, "POST", path, d.admin_token, "{\"user\":\"alice\",\"role\":\"member\"}");
    EXPECT_ONLY(201, "POST", path, d.admin_token, "{\"user\":\"bob\",\"role\":\"viewer\"}");
    struct testagent *a = connect_agent(id, c);
    json_decref(c);
    json_t *doc = next_rbac(a, 5000);
    ck_assert(binds(doc, "drover:admin", "cluster-admin"));
    ck_assert(binds(doc, "drover:olga", "cluster-admin"));
    ck_assert(binds(doc, "drover:carol", "cluster-admin"));
    ck_assert(binds(doc, "drover:alice", "edit"));
    ck_assert(binds(doc, "drover:bob", "view"));
    ck_assert(!binds(doc, "drover:dave", "edit"));
    ck_assert_int_eq(json_array_size(json_object_get(doc, "bindings")), 5);
    json_decref(doc);
    /* A membership change reaches the agent within a few seconds. */
    EXPECT_ONLY(201, "POST", path, d.admin_token, "{\"user\":\"dave\",\"role\":\"member\"}");
    doc = next_rbac(a, 5000);
    ck_assert(binds(doc, "drover:dave", "edit"));
    json_decref(doc);
    /* So does a role change and a removal. */
    EXPECT_ONLY(200, "POST", path, d.admin_token, "{\"user\":\"bob\",\"role\":\"member\"}");
    snprintf(path, sizeof(path), "/v3/clusters/%s/members/alice", id);
    EXPECT_ONLY(204, "DELETE", path, d.admin_token, NULL);
    doc = next_rbac(a, 5000);
    /* Both may come in one debounced push or two. */
    if (binds(doc, "drover:alice", "edit")) {
        json_decref(doc);
        doc = next_rbac(a, 5000);
    }
    ck_assert(binds(doc, "drover:bob", "edit"));
    ck_assert(!binds(doc, "drover:alice", "edit"));
    json_decref(doc);
    /* Demoting an admin changes every cluster. */
    EXPECT_ONLY(200, "PUT", "/v3/users/carol", d.admin_token, "{\"admin\":false}");
    doc = next_rbac(a, 5000);
    ck_assert(!binds(doc, "drover:carol", "cluster-admin"));
    json_decref(doc);
    finish(a);
}
END_TEST

Suite *suite_integration_reports(void)
{
    Suite *s = suite_create("integration/reports");
    TCase *lite = tcase_create("sqlite");
    TCase *pg = tcase_create("postgres");
    apitest_fixtures(lite, pg, lite_setup, pg_setup, teardown);
    TCase *both[] = { lite, pg };
    for (int i = 0; i < 2; i++) {
        tcase_set_timeout(both[i], 120);
        tcase_add_test(both[i], report_shows_in_api);
        tcase_add_test(both[i], bad_reports);
        tcase_add_test(both[i], rbac_push);
        suite_add_tcase(s, both[i]);
    }
    return s;
}
