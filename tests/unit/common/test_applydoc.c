/* Tests for common/applydoc.c: splitting apply bodies into objects. */
#include <check.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/applydoc.h"

static char err[400];

static int parse(const char *body, enum applydoc_format fmt, struct applydoc *d)
{
    err[0] = '\0';
    return applydoc_parse((const uint8_t *)body, strlen(body), fmt, d, err, sizeof(err));
}

static int yaml(const char *body, struct applydoc *d)
{
    return parse(body, APPLYDOC_YAML, d);
}

/* Object i as JSON (caller decrefs). */
static json_t *obj(const struct applydoc *d, size_t i)
{
    ck_assert_uint_lt(i, d->n);
    ck_assert_ptr_null(strchr(d->objs[i].json, '\n'));
    json_t *j = json_loadb(d->objs[i].json, d->objs[i].len, 0, NULL);
    ck_assert_ptr_nonnull(j);
    return j;
}

static void expect_refused(const char *body, enum applydoc_format fmt, const char *needle)
{
    struct applydoc d;
    ck_assert_int_eq(parse(body, fmt, &d), -1);
    ck_assert_msg(strstr(err, needle), "want \"%s\" in \"%s\"", needle, err);
    ck_assert_ptr_null(d.objs);
    ck_assert_uint_eq(d.n, 0);
}

#define CM(name) "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: " name "}\n"

START_TEST(multi_document_yaml)
{
    struct applydoc d;
    ck_assert_int_eq(yaml("---\n" CM("a") "---\n---\n" CM("b") "...\n", &d), 0);
    ck_assert_uint_eq(d.n, 2);
    json_t *a = obj(&d, 0), *b = obj(&d, 1);
    ck_assert_str_eq(json_string_value(json_object_get(json_object_get(b, "metadata"),
                                                       "name")), "b");
    ck_assert_uint_eq(d.objs[1].index, 1);
    json_decref(a);
    json_decref(b);
    applydoc_free(&d);
    applydoc_free(&d);      /* twice is harmless */
}
END_TEST

START_TEST(namespaces_and_crds_first_stable)
{
    struct applydoc d;
    const char *body = CM("one") "---\n"
        "apiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\n"
        "metadata: {name: widgets.example.com}\n---\n" CM("two") "---\n"
        "apiVersion: v1\nkind: Namespace\nmetadata: {name: shop}\n";
    ck_assert_int_eq(yaml(body, &d), 0);
    ck_assert_uint_eq(d.n, 4);
    size_t want[] = { 3, 1, 0, 2 };
    for (size_t i = 0; i < 4; i++)
        ck_assert_uint_eq(d.objs[i].index, want[i]);
    ck_assert_int_eq(d.objs[0].rank, 0);
    ck_assert_int_eq(d.objs[1].rank, 1);
    applydoc_free(&d);
}
END_TEST

START_TEST(scalars_as_kubectl_reads_them)
{
    struct applydoc d;
    const char *body = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: s}\nx:\n"
                       "  oct: 0644\n  hex: 0x1F\n  dec: -12\n  big: 1_000\n  f: 1.5\n"
                       "  e: 1e3\n  yes: yes\n  off: Off\n  t: true\n  n: ~\n  e2: \n"
                       "  q: '0644'\n  dq: \"true\"\n  s: hello world\n  v: 1.2.3\n"
                       "  inf: .inf\n  tag: !!str 12\n  huge: 123456789012345678901234\n";
    ck_assert_int_eq(yaml(body, &d), 0);
    json_t *o = obj(&d, 0), *x = json_object_get(o, "x");
    ck_assert_int_eq(json_integer_value(json_object_get(x, "oct")), 420);
    ck_assert_int_eq(json_integer_value(json_object_get(x, "hex")), 31);
    ck_assert_int_eq(json_integer_value(json_object_get(x, "dec")), -12);
    ck_assert_int_eq(json_integer_value(json_object_get(x, "big")), 1000);
    ck_assert(json_real_value(json_object_get(x, "f")) == 1.5);
    ck_assert(json_real_value(json_object_get(x, "e")) == 1000.0);
    ck_assert(json_is_true(json_object_get(x, "yes")));
    ck_assert(json_is_false(json_object_get(x, "off")));
    ck_assert(json_is_true(json_object_get(x, "t")));
    ck_assert(json_is_null(json_object_get(x, "n")));
    ck_assert(json_is_null(json_object_get(x, "e2")));
    ck_assert_str_eq(json_string_value(json_object_get(x, "q")), "0644");
    ck_assert_str_eq(json_string_value(json_object_get(x, "dq")), "true");
    ck_assert_str_eq(json_string_value(json_object_get(x, "s")), "hello world");
    ck_assert_str_eq(json_string_value(json_object_get(x, "v")), "1.2.3");
    ck_assert_str_eq(json_string_value(json_object_get(x, "inf")), ".inf");
    ck_assert_str_eq(json_string_value(json_object_get(x, "tag")), "12");
    ck_assert(json_is_real(json_object_get(x, "huge")));
    json_decref(o);
    applydoc_free(&d);
}
END_TEST

START_TEST(aliases_expand)
{
    struct applydoc d;
    const char *body = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a, labels: &l {app: "
                       "web}}\nspec: {selector: *l, n: &n 3, m: *n}\n";
    ck_assert_int_eq(yaml(body, &d), 0);
    json_t *o = obj(&d, 0), *spec = json_object_get(o, "spec");
    ck_assert_str_eq(json_string_value(json_object_get(json_object_get(spec, "selector"),
                                                       "app")), "web");
    ck_assert_int_eq(json_integer_value(json_object_get(spec, "m")), 3);
    json_decref(o);
    applydoc_free(&d);
}
END_TEST

START_TEST(alias_bomb_refused)
{
    /* Nine levels of ten: a billion leaves if it were expanded. */
    char body[4096];
    size_t n = (size_t)snprintf(body, sizeof(body),
                                "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: b}\n"
                                "a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
    for (int i = 1; i < 10; i++) {
        n += (size_t)snprintf(body + n, sizeof(body) - n, "a%d: &a%d [", i, i);
        for (int k = 0; k < 10; k++)
            n += (size_t)snprintf(body + n, sizeof(body) - n, "%s*a%d", k ? ", " : "", i - 1);
        n += (size_t)snprintf(body + n, sizeof(body) - n, "]\n");
    }
    expect_refused(body, APPLYDOC_YAML, "more than 500000 values");
}
END_TEST

START_TEST(yaml_refusals_name_the_document)
{
    expect_refused(CM("a") "---\napiVersion: v1\nkind: ConfigMap\nmetadata: {}\n",
                   APPLYDOC_YAML, "document 2: metadata.name is required");
    expect_refused(CM("a") "---\n" CM("b") "---\nkey: [1, 2\n", APPLYDOC_YAML,
                   "document 3: invalid YAML");
    expect_refused("kind: ConfigMap\nmetadata: {name: a}\n", APPLYDOC_YAML,
                   "document 1: apiVersion is required");
    expect_refused("apiVersion: v1\nmetadata: {name: a}\n", APPLYDOC_YAML, "kind is required");
    expect_refused("apiVersion: v1\nkind: ConfigMap\n", APPLYDOC_YAML, "metadata is required");
    expect_refused("apiVersion: v1\nkind: Pod\nmetadata: {generateName: x-}\n", APPLYDOC_YAML,
                   "generateName cannot be applied");
    expect_refused("- a\n- b\n", APPLYDOC_YAML, "document 1: not an object");
    expect_refused("", APPLYDOC_YAML, "no objects to apply");
    expect_refused("---\n...\n", APPLYDOC_YAML, "no objects to apply");
    expect_refused(CM("a") "x: 1\nx: 2\n", APPLYDOC_YAML, "appears twice");
    expect_refused(CM("a") "base: &b {x: 1}\nmore: {<<: *b}\n", APPLYDOC_YAML, "merge keys");
    expect_refused(CM("a") "x: *nothing\n", APPLYDOC_YAML, "names no anchor");
    expect_refused(CM("a") "? [complex]\n: 1\n", APPLYDOC_YAML, "keys must be scalars");
}
END_TEST

START_TEST(names_must_fit_a_path)
{
    expect_refused(CM("a/b"), APPLYDOC_YAML, "metadata.name must be");
    expect_refused(CM("'..'"), APPLYDOC_YAML, "metadata.name must be");
    expect_refused(CM("'a b'"), APPLYDOC_YAML, "metadata.name must be");
    expect_refused(CM("'a%2f'"), APPLYDOC_YAML, "metadata.name must be");
    expect_refused("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a, namespace: Bad_NS}\n",
                   APPLYDOC_YAML, "metadata.namespace must be a DNS label");
    expect_refused("apiVersion: ../v1\nkind: ConfigMap\nmetadata: {name: a}\n", APPLYDOC_YAML,
                   "apiVersion must be");
    expect_refused("apiVersion: v1\nkind: Config/Map\nmetadata: {name: a}\n", APPLYDOC_YAML,
                   "kind must be");
    struct applydoc d;
    ck_assert_int_eq(yaml("apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\n"
                          "metadata: {name: 'system:drover:reader', namespace: ''}\n", &d), 0);
    applydoc_free(&d);
}
END_TEST

START_TEST(too_deep_refused)
{
    char body[2048];
    size_t n = (size_t)snprintf(body, sizeof(body), CM("a") "x: ");
    for (int i = 0; i < 150; i++)
        body[n++] = '[';
    for (int i = 0; i < 150; i++)
        body[n++] = ']';
    body[n++] = '\n';
    body[n] = '\0';
    expect_refused(body, APPLYDOC_YAML, "nested deeper than 100");
    /* The same in JSON. */
    n = (size_t)snprintf(body, sizeof(body),
                         "{\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\",\"metadata\":"
                         "{\"name\":\"a\"},\"x\":");
    for (int i = 0; i < 150; i++)
        body[n++] = '[';
    for (int i = 0; i < 150; i++)
        body[n++] = ']';
    body[n++] = '}';
    body[n] = '\0';
    expect_refused(body, APPLYDOC_JSON, "nested deeper than 100");
}
END_TEST

START_TEST(json_object_list_array)
{
    struct applydoc d;
    ck_assert_int_eq(parse("{\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\",\"metadata\":"
                           "{\"name\":\"a\"},\"data\":{\"b\":\"line\\nbreak\"}}",
                           APPLYDOC_JSON, &d), 0);
    ck_assert_uint_eq(d.n, 1);
    json_t *o = obj(&d, 0);
    ck_assert_str_eq(json_string_value(json_object_get(json_object_get(o, "data"), "b")),
                     "line\nbreak");
    json_decref(o);
    applydoc_free(&d);
    ck_assert_int_eq(parse("[{\"apiVersion\":\"v1\",\"kind\":\"List\",\"items\":["
                           "{\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\",\"metadata\":"
                           "{\"name\":\"a\"}}]},{\"apiVersion\":\"v1\",\"kind\":\"Namespace\","
                           "\"metadata\":{\"name\":\"n\"}}]", APPLYDOC_JSON, &d), -1);
    ck_assert_msg(strstr(err, "document 1, item 1: a List inside a list"), "%s", err);
    ck_assert_int_eq(parse("{\"apiVersion\":\"v1\",\"kind\":\"List\",\"items\":["
                           "{\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\",\"metadata\":"
                           "{\"name\":\"a\"}},{\"apiVersion\":\"v1\",\"kind\":\"Namespace\","
                           "\"metadata\":{\"name\":\"n\"}}]}", APPLYDOC_JSON, &d), 0);
    ck_assert_uint_eq(d.n, 2);
    ck_assert_uint_eq(d.objs[0].index, 1);     /* the Namespace first */
    applydoc_free(&d);
    expect_refused("[{\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\",\"metadata\":{\"name\":"
                   "\"a\"}}, 3]", APPLYDOC_JSON, "document 1, item 2: not an object");
    expect_refused("{\"a\":1,\"a\":2}", APPLYDOC_JSON, "invalid JSON");
    expect_refused("{\"apiVersion\":\"v1\",\"kind\":\"List\",\"items\":{}}", APPLYDOC_JSON,
                   "a List needs items");
    expect_refused("[]", APPLYDOC_JSON, "no objects to apply");
    /* A List in YAML too. */
    ck_assert_int_eq(yaml("apiVersion: v1\nkind: List\nitems:\n- " CM("x") , &d), -1);
    ck_assert_int_eq(yaml("apiVersion: v1\nkind: List\nitems:\n- {apiVersion: v1, kind: "
                          "ConfigMap, metadata: {name: x}}\n- {apiVersion: v1, kind: "
                          "ConfigMap, metadata: {}}\n", &d), -1);
    ck_assert_msg(strstr(err, "document 1, item 2: metadata.name"), "%s", err);
}
END_TEST

START_TEST(json_value_bound)
{
    size_t n = APPLYDOC_MAX_NODES + 10, len = 0;
    char *body = malloc(n * 2 + 16);
    body[len++] = '[';
    for (size_t i = 0; i < n; i++) {
        body[len++] = i ? ',' : '0';
        if (i)
            body[len++] = '0';
    }
    body[len++] = ']';
    body[len] = '\0';
    expect_refused(body, APPLYDOC_JSON, "more than 500000 values");
    free(body);
}
END_TEST

START_TEST(object_count_cap)
{
    size_t cap = (APPLYDOC_MAX_OBJECTS + 1) * 64, len = 0;
    char *body = malloc(cap);
    for (int i = 0; i <= APPLYDOC_MAX_OBJECTS; i++)
        len += (size_t)snprintf(body + len, cap - len, "---\n" CM("c%d"), i);
    expect_refused(body, APPLYDOC_YAML, "more than 1000 objects");
    free(body);
}
END_TEST

START_TEST(check_and_rank)
{
    json_t *o = json_pack("{s:s,s:s,s:{s:s}}", "apiVersion", "v1", "kind", "ConfigMap",
                          "metadata", "name", "x");
    ck_assert_ptr_null(applydoc_check(o));
    json_object_set_new(json_object_get(o, "metadata"), "namespace", json_integer(3));
    ck_assert_ptr_nonnull(applydoc_check(o));
    json_decref(o);
    ck_assert_ptr_nonnull(applydoc_check(NULL));
    ck_assert_int_eq(applydoc_rank("Namespace"), 0);
    ck_assert_int_eq(applydoc_rank("CustomResourceDefinition"), 1);
    ck_assert_int_eq(applydoc_rank("Pod"), 2);
    ck_assert_int_eq(applydoc_rank(NULL), 2);
}
END_TEST

Suite *suite_common_applydoc(void)
{
    Suite *s = suite_create("common/applydoc");
    TCase *tc = tcase_create("applydoc");
    tcase_add_test(tc, multi_document_yaml);
    tcase_add_test(tc, namespaces_and_crds_first_stable);
    tcase_add_test(tc, scalars_as_kubectl_reads_them);
    tcase_add_test(tc, aliases_expand);
    tcase_add_test(tc, alias_bomb_refused);
    tcase_add_test(tc, yaml_refusals_name_the_document);
    tcase_add_test(tc, names_must_fit_a_path);
    tcase_add_test(tc, too_deep_refused);
    tcase_add_test(tc, json_object_list_array);
    tcase_add_test(tc, json_value_bound);
    tcase_add_test(tc, object_count_cap);
    tcase_add_test(tc, check_and_rank);
    suite_add_tcase(s, tc);
    return s;
}
