/*
 * Tests of server/api_json.c: the name rules, strict body checks, times and
 * list answers shared by the /v3 handlers.
 */
#include <check.h>
#include <string.h>

#include "server/api_int.h"

START_TEST(labels)
{
    const char *good[] = { "a", "prod", "prod-eu-1", "0", "a0-b",
                           "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa" };
    const char *bad[] = { "", "-a", "a-", "A", "a_b", "a.b", "a b", "é",
                          "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa" };
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
        ck_assert_msg(api_valid_label(good[i]), "%s", good[i]);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        ck_assert_msg(!api_valid_label(bad[i]), "%s", bad[i]);
}
END_TEST

START_TEST(usernames_and_ids)
{
    ck_assert(api_valid_username("alice"));
    ck_assert(api_valid_username("a.b_c-d9"));
    ck_assert(!api_valid_username(""));
    ck_assert(!api_valid_username(".alice"));
    ck_assert(!api_valid_username("Alice"));
    ck_assert(!api_valid_username("al ice"));
    ck_assert(!api_valid_username("al/ice"));
    char long_name[80];
    memset(long_name, 'a', sizeof(long_name));
    long_name[64] = '\0';
    ck_assert(api_valid_username(long_name));
    long_name[64] = 'a';
    long_name[65] = '\0';
    ck_assert(!api_valid_username(long_name));
    ck_assert(api_valid_cluster_id("c-4f2a9"));
    ck_assert(!api_valid_cluster_id("c-4f2a"));
    ck_assert(!api_valid_cluster_id("c-4f2a99"));
    ck_assert(!api_valid_cluster_id("c-4F2a9"));
    ck_assert(!api_valid_cluster_id("x-4f2a9"));
    ck_assert(!api_valid_cluster_id("c_4f2a9"));
}
END_TEST

static const struct api_field fields[] = {
    { "name", API_J_STRING, true },
    { "count", API_J_INT, false },
    { "on", API_J_BOOL, false },
    { "spec", API_J_OBJECT, false },
    { "ttl", API_J_TTL, false },
};

static const char *check(const char *text)
{
    static char err[200];
    json_t *j = json_loads(text, 0, NULL);
    ck_assert_ptr_nonnull(j);
    int rc = api_json_check(j, fields, 5, err, sizeof(err));
    json_decref(j);
    return rc == 0 ? NULL : err;
}

START_TEST(strict_bodies)
{
    ck_assert_ptr_null(check("{\"name\":\"x\"}"));
    ck_assert_ptr_null(check("{\"name\":\"x\",\"count\":3,\"on\":false,\"spec\":{},\"ttl\":5}"));
    ck_assert_ptr_null(check("{\"name\":\"x\",\"ttl\":\"5m\"}"));
    ck_assert_str_eq(check("{}"), "missing field \"name\"");
    ck_assert_str_eq(check("{\"name\":\"x\",\"nmae\":1}"), "unknown field \"nmae\"");
    ck_assert_str_eq(check("{\"name\":1}"), "field \"name\" must be a string");
    ck_assert_str_eq(check("{\"name\":\"x\",\"count\":1.0}"), "field \"count\" must be an integer");
    ck_assert_str_eq(check("{\"name\":\"x\",\"on\":1}"), "field \"on\" must be a boolean");
    ck_assert_str_eq(check("{\"name\":\"x\",\"spec\":[]}"), "field \"spec\" must be an object");
    ck_assert_ptr_nonnull(check("{\"name\":\"x\",\"ttl\":null}"));
    ck_assert_ptr_nonnull(check("{\"name\":null}"));
}
END_TEST

START_TEST(times_and_docs)
{
    json_t *t = api_json_time(1795546393123LL);
    ck_assert_str_eq(json_string_value(t), "2026-11-24T18:53:13.123Z");
    json_decref(t);
    t = api_json_time(0);
    ck_assert_str_eq(json_string_value(t), "1970-01-01T00:00:00.000Z");
    json_decref(t);
    ck_assert(json_is_null(api_json_time(-1)));
    json_t *o = api_json_doc("{\"cpu\":\"4\"}", false);
    ck_assert_str_eq(json_string_value(json_object_get(o, "cpu")), "4");
    json_decref(o);
    o = api_json_doc("[1]", false);     /* wrong kind: an empty object */
    ck_assert(json_is_object(o) && json_object_size(o) == 0);
    json_decref(o);
    o = api_json_doc("garbage", true);
    ck_assert(json_is_array(o) && json_array_size(o) == 0);
    json_decref(o);
    o = api_json_doc(NULL, true);
    ck_assert(json_is_array(o));
    json_decref(o);
}
END_TEST

START_TEST(lists)
{
    struct api_call c;
    struct api_list l;
    memset(&c, 0, sizeof(c));
    api_list_init(&l, 2);
    ck_assert_int_eq(api_list_add(&l, json_integer(1), "a"), 0);
    ck_assert_int_eq(api_list_add(&l, json_integer(2), "b"), 0);
    ck_assert_int_eq(api_list_add(&l, json_integer(3), "c"), 0);  /* the extra row */
    ck_assert_int_eq(api_list_finish(&c, &l, 0), 0);
    ck_assert_int_eq(c.status, 200);
    ck_assert_int_eq(json_array_size(json_object_get(c.out, "data")), 2);
    ck_assert_str_eq(json_string_value(json_object_get(c.out, "next")), "b");
    json_decref(c.out);
    memset(&c, 0, sizeof(c));
    api_list_init(&l, 5);
    ck_assert_int_eq(api_list_add(&l, json_integer(1), "a"), 0);
    ck_assert_int_eq(api_list_finish(&c, &l, 0), 0);
    ck_assert(json_is_null(json_object_get(c.out, "next")));
    json_decref(c.out);
    /* A store error frees the list and passes the code on. */
    memset(&c, 0, sizeof(c));
    api_list_init(&l, 5);
    api_list_add(&l, json_integer(1), "a");
    ck_assert_int_eq(api_list_finish(&c, &l, DB_UNAVAILABLE), DB_UNAVAILABLE);
    ck_assert_ptr_null(c.out);
}
END_TEST

Suite *suite_server_api_json(void)
{
    Suite *s = suite_create("server_api_json");
    TCase *tc = tcase_create("api_json");
    tcase_add_test(tc, labels);
    tcase_add_test(tc, usernames_and_ids);
    tcase_add_test(tc, strict_bodies);
    tcase_add_test(tc, times_and_docs);
    tcase_add_test(tc, lists);
    suite_add_tcase(s, tc);
    return s;
}
