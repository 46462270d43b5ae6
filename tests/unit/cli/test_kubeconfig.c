/*
 * cli/kubeconfig.c and cli/yamljson.c: YAML read into JSON types and
 * written back without changing them, limits, and the kubeconfig merge
 * (existing contexts kept, same names replaced, current context switched).
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli/kubeconfig.h"
#include "cli/yamljson.h"

START_TEST(yaml_types_round_trip)
{
    char err[256];
    /* i: a whole real must not come back an integer; k: strtod's hex form
     * stays text (both found by fuzz/fuzz_yamljson.c). */
    const char *src = "a: 1\nb: true\nc: \"true\"\nd: ~\ne: [x, 'y', 2.5]\n"
                      "f: {}\ng: \"007\"\nh: no-such-thing\n\"1\": key\ni: 1.\nk: 0x10\n";
    json_t *j = yj_load(src, strlen(src), err, sizeof(err));
    ck_assert_msg(j != NULL, "%s", err);
    ck_assert(json_is_integer(json_object_get(j, "a")));
    ck_assert(json_is_true(json_object_get(j, "b")));
    ck_assert_str_eq(json_string_value(json_object_get(j, "c")), "true");
    ck_assert(json_is_null(json_object_get(j, "d")));
    ck_assert(json_is_real(json_array_get(json_object_get(j, "e"), 2)));
    ck_assert_str_eq(json_string_value(json_object_get(j, "g")), "007");
    ck_assert_str_eq(json_string_value(json_object_get(j, "1")), "key");
    ck_assert(json_is_real(json_object_get(j, "i")));
    ck_assert_str_eq(json_string_value(json_object_get(j, "k")), "0x10");
    /* Written and read again: the same values, the same types. */
    char *y = yj_dump(j, NULL);
    ck_assert_ptr_nonnull(y);
    json_t *back = yj_load(y, strlen(y), err, sizeof(err));
    ck_assert_msg(back != NULL, "%s\n%s", err, y);
    ck_assert(json_equal(j, back));
    free(y);
    json_decref(j);
    json_decref(back);
}
END_TEST

START_TEST(yaml_refuses_what_it_cannot_keep)
{
    char err[256];
    const char *alias = "a: &x 1\nb: *x\n", *bad = "a: [1, 2\n", *key = "? [a]\n: 1\n";
    ck_assert_ptr_null(yj_load(alias, strlen(alias), err, sizeof(err)));
    ck_assert(strstr(err, "anchors") != NULL);
    ck_assert_ptr_null(yj_load(bad, strlen(bad), err, sizeof(err)));
    ck_assert(strstr(err, "line") != NULL);
    ck_assert_ptr_null(yj_load(key, strlen(key), err, sizeof(err)));
    /* Deep nesting stops at the limit instead of the stack. */
    size_t n = YJ_MAX_DEPTH + 10;
    char *deep = malloc(n * 2 + 1);
    memset(deep, '[', n);
    memset(deep + n, ']', n);
    deep[2 * n] = '\0';
    ck_assert_ptr_null(yj_load(deep, 2 * n, err, sizeof(err)));
    ck_assert(strstr(err, "deeply") != NULL);
    free(deep);
    json_t *empty = yj_load("", 0, err, sizeof(err));
    ck_assert(json_is_null(empty));
    json_decref(empty);
}
END_TEST

static json_t *load(const char *s)
{
    char err[256];
    json_t *j = yj_load(s, strlen(s), err, sizeof(err));
    ck_assert_msg(j != NULL, "%s", err);
    return j;
}

static const char *existing =
    "apiVersion: v1\nkind: Config\npreferences: {colors: true}\n"
    "clusters:\n- name: home\n  cluster: {server: \"https://home:6443\"}\n"
    "- name: prod\n  cluster: {server: \"https://old:1\"}\n"
    "users:\n- name: me\n  user: {token: abc}\n"
    "contexts:\n- name: home\n  context: {cluster: home, user: me}\n"
    "current-context: home\n";
static const char *issued =
    "apiVersion: v1\nkind: Config\n"
    "clusters:\n- name: prod\n  cluster: {server: \"https://drover/k8s/clusters/c-1\"}\n"
    "users:\n- name: admin@prod\n  user: {token: drover_x}\n"
    "contexts:\n- name: prod\n  context: {cluster: prod, user: admin@prod}\n"
    "current-context: prod\n";

static const json_t *named(const json_t *j, const char *list, const char *name)
{
    size_t i;
    json_t *v;
    json_array_foreach(json_object_get(j, list), i, v)
        if (strcmp(json_string_value(json_object_get(v, "name")), name) == 0)
            return v;
    return NULL;
}

START_TEST(merge_keeps_others_and_replaces_same_names)
{
    char err[256];
    json_t *base = load(existing), *add = load(issued);
    ck_assert_int_eq(kc_merge(&base, add, err, sizeof(err)), 0);
    ck_assert_int_eq(json_array_size(json_object_get(base, "clusters")), 2);
    ck_assert_int_eq(json_array_size(json_object_get(base, "contexts")), 2);
    ck_assert_int_eq(json_array_size(json_object_get(base, "users")), 2);
    ck_assert_ptr_nonnull(named(base, "contexts", "home"));
    ck_assert_ptr_nonnull(named(base, "users", "me"));
    ck_assert_str_eq(json_string_value(json_object_get(json_object_get(
                         named(base, "clusters", "prod"), "cluster"), "server")),
                     "https://drover/k8s/clusters/c-1");
    ck_assert_str_eq(json_string_value(json_object_get(base, "current-context")), "prod");
    ck_assert(json_is_true(json_object_get(json_object_get(base, "preferences"), "colors")));
    /* Merging again changes nothing. */
    json_t *again = json_deep_copy(base);
    ck_assert_int_eq(kc_merge(&again, add, err, sizeof(err)), 0);
    ck_assert(json_equal(again, base));
    json_decref(again);
    /* No file yet: the issued config as it is. */
    json_t *none = NULL;
    ck_assert_int_eq(kc_merge(&none, add, err, sizeof(err)), 0);
    ck_assert(json_equal(none, add));
    json_decref(none);
    json_decref(base);
    json_decref(add);
}
END_TEST

START_TEST(merge_refuses_malformed_configs)
{
    char err[256];
    json_t *add = load(issued), *bad = load("clusters: {a: 1}\n"), *nameless =
        load("contexts:\n- context: {}\n"), *scalar = load("hello\n");
    json_t *keep = bad;
    ck_assert_int_eq(kc_merge(&bad, add, err, sizeof(err)), -1);
    ck_assert_ptr_eq(bad, keep);
    ck_assert(strstr(err, "not a list") != NULL);
    ck_assert_int_eq(kc_merge(&nameless, add, err, sizeof(err)), -1);
    ck_assert(strstr(err, "no name") != NULL);
    ck_assert_int_eq(kc_merge(&scalar, add, err, sizeof(err)), -1);
    json_decref(add);
    json_decref(bad);
    json_decref(nameless);
    json_decref(scalar);
}
END_TEST

START_TEST(merge_file_writes_0600)
{
    char dir[] = "/tmp/drover-kc-XXXXXX", path[300], ctx[64], err[256];
    ck_assert_ptr_nonnull(mkdtemp(dir));
    snprintf(path, sizeof(path), "%s/sub/config", dir);
    ck_assert_int_eq(kc_merge_file(path, issued, strlen(issued), ctx, sizeof(ctx), err,
                                   sizeof(err)), 0);
    ck_assert_str_eq(ctx, "prod");
    struct stat st;
    ck_assert_int_eq(stat(path, &st), 0);
    ck_assert_int_eq(st.st_mode & 0777, 0600);
    /* A broken existing file is reported and left alone. */
    FILE *f = fopen(path, "w");
    fputs("clusters: [\n", f);
    fclose(f);
    ck_assert_int_eq(kc_merge_file(path, issued, strlen(issued), ctx, sizeof(ctx), err,
                                   sizeof(err)), -1);
    ck_assert(strstr(err, path) != NULL);
    unlink(path);
    snprintf(path, sizeof(path), "%s/sub", dir);
    rmdir(path);
    rmdir(dir);
}
END_TEST

Suite *suite_cli_kubeconfig(void)
{
    Suite *s = suite_create("cli_kubeconfig");
    TCase *t = tcase_create("kubeconfig");
    tcase_add_test(t, yaml_types_round_trip);
    tcase_add_test(t, yaml_refuses_what_it_cannot_keep);
    tcase_add_test(t, merge_keeps_others_and_replaces_same_names);
    tcase_add_test(t, merge_refuses_malformed_configs);
    tcase_add_test(t, merge_file_writes_0600);
    suite_add_tcase(s, t);
    return s;
}
