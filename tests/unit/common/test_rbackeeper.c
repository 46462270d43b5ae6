/* Tests for common/rbackeeper.c: the desired-versus-actual plan. */
#include <check.h>
#include <jansson.h>
#include <string.h>

#include "common/rbackeeper.h"

static json_t *list_of(json_t *items)
{
    return json_pack("{s:s, s:o}", "kind", "ClusterRoleBindingList", "items", items);
}

static json_t *req(const char *json)
{
    json_t *j = json_loads(json, 0, NULL);
    ck_assert_ptr_nonnull(j);
    return j;
}

START_TEST(binding_shape)
{
    json_t *b = rbackeeper_binding("alice", "edit");
    char *s = json_dumps(b, JSON_SORT_KEYS | JSON_COMPACT);
    ck_assert_str_eq(s, "{\"apiVersion\":\"rbac.authorization.k8s.io/v1\","
                     "\"kind\":\"ClusterRoleBinding\",\"metadata\":{\"labels\":"
                     "{\"drover.io/managed\":\"true\"},\"name\":\"drover-user-alice\"},"
                     "\"roleRef\":{\"apiGroup\":\"rbac.authorization.k8s.io\",\"kind\":"
                     "\"ClusterRole\",\"name\":\"edit\"},\"subjects\":[{\"apiGroup\":"
                     "\"rbac.authorization.k8s.io\",\"kind\":\"User\",\"name\":"
                     "\"drover:alice\"}]}");
    free(s);
    json_decref(b);
}
END_TEST

START_TEST(empty_cluster_gets_creations)
{
    json_t *r = req("{\"bindings\":[{\"user\":\"drover:bob\",\"role\":\"view\"},"
                    "{\"user\":\"drover:alice\",\"role\":\"cluster-admin\"}]}");
    json_t *actual = list_of(json_array());
    struct rbackeeper_plan p;
    char err[200];
    ck_assert_int_eq(rbackeeper_plan(r, actual, &p, err, sizeof(err)), 0);
    ck_assert_uint_eq(p.n, 2);
    ck_assert_int_eq(p.ops[0].kind, RBK_CREATE);
    ck_assert_str_eq(p.ops[0].name, "drover-user-alice");
    ck_assert_str_eq(p.ops[1].name, "drover-user-bob");
    ck_assert_str_eq(json_string_value(json_object_get(json_object_get(p.ops[1].binding,
                                                                       "roleRef"), "name")),
                     "view");
    rbackeeper_plan_free(&p);
    rbackeeper_plan_free(&p);       /* twice is harmless */
    json_decref(r);
    json_decref(actual);
}
END_TEST

START_TEST(diff_keeps_replaces_and_deletes)
{
    json_t *r = req("{\"bindings\":[{\"user\":\"drover:alice\",\"role\":\"cluster-admin\"},"
                    "{\"user\":\"drover:bob\",\"role\":\"edit\"},"
                    "{\"user\":\"drover:carol\",\"role\":\"view\"}]}");
    json_t *items = json_array();
    json_array_append_new(items, rbackeeper_binding("alice", "cluster-admin"));  /* kept */
    json_array_append_new(items, rbackeeper_binding("bob", "view"));      /* role changed */
    json_array_append_new(items, rbackeeper_binding("dave", "edit"));     /* gone */
    json_t *odd = rbackeeper_binding("carol", "view");                    /* wrong subject */
    json_object_set_new(json_array_get(json_object_get(odd, "subjects"), 0), "name",
                        json_string("drover:mallory"));
    json_array_append_new(items, odd);
    json_t *stray = rbackeeper_binding("x", "view");          /* managed, odd name */
    json_object_set_new(json_object_get(stray, "metadata"), "name", json_string("hand-made"));
    json_array_append_new(items, stray);
    json_t *actual = list_of(items);
    struct rbackeeper_plan p;
    char err[200];
    ck_assert_int_eq(rbackeeper_plan(r, actual, &p, err, sizeof(err)), 0);
    ck_assert_uint_eq(p.n, 4);
    ck_assert_int_eq(p.ops[0].kind, RBK_DELETE);
    ck_assert_str_eq(p.ops[0].name, "drover-user-dave");
    ck_assert_int_eq(p.ops[1].kind, RBK_DELETE);
    ck_assert_str_eq(p.ops[1].name, "hand-made");
    ck_assert_int_eq(p.ops[2].kind, RBK_REPLACE);
    ck_assert_str_eq(p.ops[2].name, "drover-user-bob");
    ck_assert_int_eq(p.ops[3].kind, RBK_REPLACE);
    ck_assert_str_eq(p.ops[3].name, "drover-user-carol");
    rbackeeper_plan_free(&p);
    json_decref(r);
    json_decref(actual);
}
END_TEST

START_TEST(nothing_to_do_and_empty_request)
{
    json_t *items = json_array();
    json_array_append_new(items, rbackeeper_binding("bob", "view"));
    json_t *actual = list_of(items);
    json_t *r = req("{\"bindings\":[{\"user\":\"drover:bob\",\"role\":\"view\"}]}");
    struct rbackeeper_plan p;
    char err[200];
    ck_assert_int_eq(rbackeeper_plan(r, actual, &p, err, sizeof(err)), 0);
    ck_assert_uint_eq(p.n, 0);
    rbackeeper_plan_free(&p);
    json_decref(r);
    r = req("{\"bindings\":[]}");
    ck_assert_int_eq(rbackeeper_plan(r, actual, &p, err, sizeof(err)), 0);
    ck_assert_uint_eq(p.n, 1);
    ck_assert_int_eq(p.ops[0].kind, RBK_DELETE);
    rbackeeper_plan_free(&p);
    json_decref(r);
    json_decref(actual);
}
END_TEST

START_TEST(duplicate_user_keeps_strongest)
{
    json_t *r = req("{\"bindings\":[{\"user\":\"drover:bob\",\"role\":\"view\"},"
                    "{\"user\":\"drover:bob\",\"role\":\"cluster-admin\"},"
                    "{\"user\":\"drover:bob\",\"role\":\"edit\"}]}");
    json_t *actual = list_of(json_array());
    struct rbackeeper_plan p;
    char err[200];
    ck_assert_int_eq(rbackeeper_plan(r, actual, &p, err, sizeof(err)), 0);
    ck_assert_uint_eq(p.n, 1);
    ck_assert_str_eq(json_string_value(json_object_get(json_object_get(p.ops[0].binding,
                                                                       "roleRef"), "name")),
                     "cluster-admin");
    rbackeeper_plan_free(&p);
    json_decref(r);
    json_decref(actual);
}
END_TEST

START_TEST(bad_requests_refused)
{
    const char *bad[] = {
        "{}",
        "{\"bindings\":{}}",
        "{\"bindings\":[{\"user\":\"alice\",\"role\":\"view\"}]}",
        "{\"bindings\":[{\"user\":\"drover:\",\"role\":\"view\"}]}",
        "{\"bindings\":[{\"user\":\"drover:Alice\",\"role\":\"view\"}]}",
        "{\"bindings\":[{\"user\":\"drover:a/b\",\"role\":\"view\"}]}",
        "{\"bindings\":[{\"user\":\"drover:alice\",\"role\":\"\"}]}",
        "{\"bindings\":[{\"user\":\"drover:alice\",\"role\":\"a b\"}]}",
        "{\"bindings\":[{\"user\":\"drover:alice\"}]}",
    };
    json_t *actual = list_of(json_array());
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        json_t *r = req(bad[i]);
        struct rbackeeper_plan p;
        char err[200] = "";
        ck_assert_msg(rbackeeper_plan(r, actual, &p, err, sizeof(err)) == -1, "%s", bad[i]);
        ck_assert(err[0]);
        ck_assert_ptr_null(p.ops);
        json_decref(r);
    }
    json_decref(actual);
}
END_TEST

Suite *suite_common_rbackeeper(void)
{
    Suite *s = suite_create("common_rbackeeper");
    TCase *tc = tcase_create("plan");
    tcase_add_test(tc, binding_shape);
    tcase_add_test(tc, empty_cluster_gets_creations);
    tcase_add_test(tc, diff_keeps_replaces_and_deletes);
    tcase_add_test(tc, nothing_to_do_and_empty_request);
    tcase_add_test(tc, duplicate_user_keeps_strongest);
    tcase_add_test(tc, bad_requests_refused);
    suite_add_tcase(s, tc);
    return s;
}
