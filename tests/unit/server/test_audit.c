/*
 * Tests of server/audit.c: lines are valid JSON whatever bytes a client put
 * in its path, a full buffer drops and counts instead of waiting, and close
 * writes out what was buffered.
 */
#include <check.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/audit.h"
#include "tests/support/proc.h"

static char dir[256], path[300];

static void setup(void)
{
    make_temp_dir(dir, sizeof(dir));
    snprintf(path, sizeof(path), "%s/audit.log", dir);
}

static void teardown(void)
{
    remove_tree(dir);
}

static json_t *load_lines(size_t *n)
{
    FILE *f = fopen(path, "r");
    ck_assert_ptr_nonnull(f);
    json_t *all = json_array();
    char line[8192];
    while (fgets(line, sizeof(line), f)) {
        json_error_t e;
        json_t *j = json_loads(line, 0, &e);
        ck_assert_msg(j, "not JSON: %s (%s)", line, e.text);
        json_array_append_new(all, j);
    }
    fclose(f);
    *n = json_array_size(all);
    return all;
}

START_TEST(lines_are_json_whatever_the_path)
{
    char err[200];
    ck_assert_int_eq(audit_open(path, err, sizeof(err)), 0);
    ck_assert(audit_enabled());
    static const char nasty[] = "/k8s/clusters/c-1/\"\\\n\x01\xff\xc3\xa9?x";
    struct audit_rec r = { .kind = "kube", .user = "alice", .cluster = "c-1",
                           .method = "GET", .path = nasty, .path_len = sizeof(nasty) - 1,
                           .status = 200, .duration_us = 1234567, .remote = "127.0.0.1:1" };
    audit_record(&r);
    struct audit_rec anon = { .kind = "api", .method = "POST", .path = "/v3/tokens",
                              .path_len = 10, .status = 401, .remote = "[::1]:2" };
    audit_record(&anon);
    audit_close();
    size_t n;
    json_t *all = load_lines(&n);
    ck_assert_int_eq(n, 2);
    json_t *a = json_array_get(all, 0), *b = json_array_get(all, 1);
    ck_assert_str_eq(json_string_value(json_object_get(a, "user")), "alice");
    ck_assert_int_eq(json_integer_value(json_object_get(a, "status")), 200);
    ck_assert(json_real_value(json_object_get(a, "durationMs")) > 1234.0);
    const char *p = json_string_value(json_object_get(a, "path"));
    ck_assert_ptr_nonnull(p);
    ck_assert(strncmp(p, "/k8s/clusters/c-1/\"\\\n\x01", 22) == 0);
    ck_assert(json_is_null(json_object_get(b, "user")));
    ck_assert(json_is_null(json_object_get(b, "cluster")));
    json_decref(all);
    ck_assert_int_eq(audit_written(), 2);
}
END_TEST

START_TEST(off_is_a_no_op)
{
    char err[200];
    ck_assert_int_eq(audit_open("", err, sizeof(err)), 0);
    ck_assert(!audit_enabled());
    struct audit_rec r = { .kind = "api", .method = "POST", .path = "/", .path_len = 1 };
    audit_record(&r);
    audit_close();
    ck_assert_int_eq(audit_open("/nonexistent-dir/x/audit.log", err, sizeof(err)), -1);
    ck_assert(strstr(err, "cannot open"));
}
END_TEST

START_TEST(bounded_buffer_drops_and_counts)
{
    char err[200];
    ck_assert_int_eq(audit_open(path, err, sizeof(err)), 0);
    /* Far more than the buffer holds in one burst: the loop never waits,
     * some lines may be dropped, and every line is either written or
     * counted as dropped. */
    static char longpath[1000];
    memset(longpath, 'p', sizeof(longpath));
    struct audit_rec r = { .kind = "api", .method = "POST", .path = longpath,
                           .path_len = sizeof(longpath), .status = 201 };
    enum { N = 20000 };
    for (int i = 0; i < N; i++)
        audit_record(&r);
    audit_close();
    size_t n;
    json_t *all = load_lines(&n);
    json_decref(all);
    ck_assert_int_eq(n + audit_dropped(), N);
    ck_assert_int_eq(audit_written(), n);
}
END_TEST

Suite *suite_server_audit(void)
{
    Suite *s = suite_create("server_audit");
    TCase *tc = tcase_create("audit");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, lines_are_json_whatever_the_path);
    tcase_add_test(tc, off_is_a_no_op);
    tcase_add_test(tc, bounded_buffer_drops_and_counts);
    suite_add_tcase(s, tc);
    return s;
}
