/*
 * Tests of common/yamlout.c. Documents are written and read back with
 * libyaml's parser (a different code path from the emitter), so what is
 * checked is what a YAML reader sees: the value, and whether it came back
 * plain (a YAML 1.1 reader such as Kubernetes' may then resolve it to a
 * number, boolean or null) or quoted (always a string).
 */
#include <check.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "common/yamlout.h"

#define BIG_CAP (1024 * 1024)
#define MAX_DOCS 4

/* ---- reading back ---- */

struct parsed {
    yaml_document_t docs[MAX_DOCS];
    int n;
};

static struct parsed *parse(const char *buf, size_t len)
{
    struct parsed *m = calloc(1, sizeof(*m));
    yaml_parser_t parser;
    ck_assert_ptr_nonnull(m);
    ck_assert(yaml_parser_initialize(&parser));
    yaml_parser_set_input_string(&parser, (const unsigned char *)buf, len);
    for (;;) {
        ck_assert_int_lt(m->n, MAX_DOCS);
        yaml_document_t *d = &m->docs[m->n];
        ck_assert_msg(yaml_parser_load(&parser, d), "parse error: %s",
                      parser.problem ? parser.problem : "?");
        if (!yaml_document_get_root_node(d)) {
            yaml_document_delete(d);
            break;
        }
        m->n++;
    }
    yaml_parser_delete(&parser);
    return m;
}

static void parsed_free(struct parsed *m)
{
    for (int i = 0; m && i < m->n; i++)
        yaml_document_delete(&m->docs[i]);
    free(m);
}

/* The value of key k in mapping n, or NULL. */
static yaml_node_t *at(yaml_document_t *d, yaml_node_t *n, const char *k)
{
    if (!n || n->type != YAML_MAPPING_NODE)
        return NULL;
    for (yaml_node_pair_t *p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top; p++) {
        yaml_node_t *key = yaml_document_get_node(d, p->key);
        if (key->type == YAML_SCALAR_NODE && strcmp((char *)key->data.scalar.value, k) == 0)
            return yaml_document_get_node(d, p->value);
    }
    return NULL;
}

/* Item i of sequence n, or NULL. */
static yaml_node_t *item(yaml_document_t *d, yaml_node_t *n, long i)
{
    if (!n || n->type != YAML_SEQUENCE_NODE || i < 0 ||
        i >= n->data.sequence.items.top - n->data.sequence.items.start)
        return NULL;
    return yaml_document_get_node(d, n->data.sequence.items.start[i]);
}

static size_t count(yaml_node_t *n)
{
    ck_assert_ptr_nonnull(n);
    if (n->type == YAML_MAPPING_NODE)
        return (size_t)(n->data.mapping.pairs.top - n->data.mapping.pairs.start);
    ck_assert_int_eq(n->type, YAML_SEQUENCE_NODE);
    return (size_t)(n->data.sequence.items.top - n->data.sequence.items.start);
}

/* A scalar holding exactly want (length too: want may hold a NUL-free
 * anything), quoted or plain as asked. */
static void ck_scalar(yaml_node_t *n, const char *want, bool plain)
{
    ck_assert_ptr_nonnull(n);
    ck_assert_int_eq(n->type, YAML_SCALAR_NODE);
    ck_assert_uint_eq(n->data.scalar.length, strlen(want));
    ck_assert_msg(memcmp(n->data.scalar.value, want, strlen(want)) == 0, "got \"%s\", want \"%s\"",
                  (char *)n->data.scalar.value, want);
    if (plain)
        ck_assert_msg(n->data.scalar.style == YAML_PLAIN_SCALAR_STYLE, "\"%s\" is quoted", want);
    else
        ck_assert_msg(n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE,
                      "\"%s\" is plain: a YAML 1.1 reader may not see a string", want);
}

/* One document {apiVersion: v1, kind: Test, value: v} rendered and parsed. */
static struct parsed *one_value(const char *v, char **text)
{
    struct yw w;
    char *out = NULL, err[128] = "";
    size_t len = 0;
    ck_assert_int_eq(yw_init(&w, BIG_CAP), 0);
    yw_doc_begin(&w, "v1", "Test");
    yw_kv(&w, "value", v);
    yw_doc_end(&w);
    ck_assert_msg(yw_finish(&w, &out, &len, err, sizeof(err)) == 0, "finish: %s", err);
    yw_free(&w);
    ck_assert_uint_eq(strlen(out), len);
    struct parsed *m = parse(out, len);
    ck_assert_int_eq(m->n, 1);
    ck_assert_uint_eq(count(yaml_document_get_root_node(&m->docs[0])), 3);
    if (text)
        *text = out;
    else
        free(out);
    return m;
}

static yaml_node_t *root_key(struct parsed *m, const char *k)
{
    return at(&m->docs[0], yaml_document_get_root_node(&m->docs[0]), k);
}

/* ---- quoting ---- */

/* Everything a YAML 1.1 reader would take for a number, boolean, null,
 * or for more structure comes back quoted and byte for byte. */
START_TEST(test_ambiguous_strings_quoted)
{
    static const char *const values[] = {
        /* numbers */
        "12345", "0123", "0", "-1", "+1", "1e3", "0x1F", "0o17", "1_000", "1:20", ".5",
        ".inf", "-.Inf", ".NaN", "50m",
        /* YAML 1.1 booleans and null */
        "yes", "Yes", "YES", "no", "No", "on", "On", "off", "OFF", "y", "Y", "n", "N",
        "true", "False", "TRUE", "null", "Null", "~", "",
        /* structure */
        "a: b #c", ": #", "a #b", "#c", "key:", "- x", "-", "? x", "?", "[x]", "{x: y}",
        "a, b", "&anchor", "*alias", "!tag", "|", ">", "%dir", "@x", "`x", "'q'", "\"dq\"",
        "<<", "=", "---", "...",
        /* whitespace and line breaks */
        "line1\nline2", "trailing\n", "\n", "cr\rlf", " lead", "trail ", "tab\tin",
        /* neither ASCII nor printable */
        "caf\xc3\xa9", "\xf0\x9f\x94\x91", "\x01\x7f",
    };
    for (size_t i = 0; i < sizeof(values) / sizeof(values[0]); i++) {
        struct parsed *m = one_value(values[i], NULL);
        ck_scalar(root_key(m, "value"), values[i], false);
        ck_scalar(root_key(m, "kind"), "Test", true);
        parsed_free(m);
    }
}
END_TEST

/* Words and paths stay plain so the output reads like hand-written YAML;
 * none of them resolves to anything but a string. */
START_TEST(test_safe_strings_plain)
{
    static const char *const values[] = {
        "nginx", "drover-agent", "/var/lib/drover", "/", "/healthz", "app.kubernetes.io/name",
        "Secret", "v1", "e5", "a_b", "yesterday", "nothing", "Only", "x1.2-3",
    };
    for (size_t i = 0; i < sizeof(values) / sizeof(values[0]); i++) {
        struct parsed *m = one_value(values[i], NULL);
        ck_scalar(root_key(m, "value"), values[i], true);
        parsed_free(m);
    }
}
END_TEST

/* Output is ASCII whatever the input, and a long value with spaces is not
 * folded over several lines. */
START_TEST(test_ascii_output_no_folding)
{
    char *text = NULL;
    struct parsed *m = one_value("caf\xc3\xa9 \xe2\x98\x83 \xf0\x9f\x94\x91", &text);
    for (const unsigned char *c = (const unsigned char *)text; *c; c++)
        ck_assert_uint_lt(*c, 0x80);
    parsed_free(m);
    free(text);

    static char longv[5001];
    memset(longv, 'x', sizeof(longv) - 1);
    for (size_t i = 70; i < sizeof(longv) - 1; i += 70)
        longv[i] = ' ';
    m = one_value(longv, &text);
    ck_scalar(root_key(m, "value"), longv, false);
    ck_assert_ptr_nonnull(strstr(text, longv));
    parsed_free(m);
    free(text);
}
END_TEST

/* ---- typed scalars and structure ---- */

START_TEST(test_ints_and_bools_plain)
{
    static const long ints[] = { 0, 42, -7, 65532, LONG_MAX, LONG_MIN };
    char key[16], want[24], *out = NULL, err[128] = "";
    size_t len = 0;
    struct yw w;

    ck_assert_int_eq(yw_init(&w, BIG_CAP), 0);
    yw_doc_begin(&w, "v1", "Test");
    for (size_t i = 0; i < sizeof(ints) / sizeof(ints[0]); i++) {
        snprintf(key, sizeof(key), "i%zu", i);
        yw_kv_int(&w, key, ints[i]);
    }
    yw_kv_bool(&w, "yes", true);
    yw_kv_bool(&w, "no", false);
    yw_doc_end(&w);
    ck_assert_msg(yw_finish(&w, &out, &len, err, sizeof(err)) == 0, "finish: %s", err);
    yw_free(&w);

    struct parsed *m = parse(out, len);
    for (size_t i = 0; i < sizeof(ints) / sizeof(ints[0]); i++) {
        snprintf(key, sizeof(key), "i%zu", i);
        snprintf(want, sizeof(want), "%ld", ints[i]);
        ck_scalar(root_key(m, key), want, true);
    }
    ck_scalar(root_key(m, "yes"), "true", true);
    ck_scalar(root_key(m, "no"), "false", true);
    /* The keys "yes" and "no" are strings, so quoted. */
    ck_assert_ptr_nonnull(strstr(out, "\"yes\": true\n"));
    parsed_free(m);
    free(out);
}
END_TEST

/* Every builder call lands where it says: nested maps, block and flow
 * sequences, an empty map, two documents each opened by "---". */
START_TEST(test_structure)
{
    static const char *const verbs[] = { "get", "list", "on", NULL };
    static const char *const none[] = { NULL };
    char *out = NULL, err[128] = "";
    size_t len = 0;
    struct yw w;

    ck_assert_int_eq(yw_init(&w, BIG_CAP), 0);
    yw_doc_begin(&w, "apps/v1", "Thing");
    yw_key_map(&w, "metadata");
    yw_kv(&w, "name", "one");
    yw_key_map(&w, "labels");
    yw_map_end(&w);
    yw_map_end(&w);
    yw_key_seq(&w, "items");
    yw_map_begin(&w);
    yw_kv(&w, "a", "1");
    yw_map_end(&w);
    yw_str(&w, "bare");
    yw_seq_end(&w);
    yw_kv_list(&w, "verbs", verbs);
    yw_kv_list(&w, "empty", none);
    yw_doc_end(&w);
    yw_doc_begin(&w, "v1", "Other");
    yw_doc_end(&w);
    ck_assert_msg(yw_finish(&w, &out, &len, err, sizeof(err)) == 0, "finish: %s", err);
    yw_free(&w);

    ck_assert_int_eq(strncmp(out, "---\n", 4), 0);
    ck_assert_ptr_nonnull(strstr(out, "\n---\n"));
    ck_assert_ptr_nonnull(strstr(out, "labels: {}\n"));
    ck_assert_ptr_nonnull(strstr(out, "verbs: [get, list, \"on\"]\n"));

    struct parsed *m = parse(out, len);
    yaml_document_t *d = &m->docs[0];
    yaml_node_t *r = yaml_document_get_root_node(d);
    ck_assert_int_eq(m->n, 2);
    ck_assert_uint_eq(count(r), 6);
    ck_scalar(at(d, r, "apiVersion"), "apps/v1", true);
    ck_scalar(at(d, r, "kind"), "Thing", true);
    ck_scalar(at(d, at(d, r, "metadata"), "name"), "one", true);
    ck_assert_uint_eq(count(at(d, at(d, r, "metadata"), "labels")), 0);
    ck_assert_uint_eq(count(at(d, r, "items")), 2);
    ck_scalar(at(d, item(d, at(d, r, "items"), 0), "a"), "1", false);
    ck_scalar(item(d, at(d, r, "items"), 1), "bare", true);
    ck_assert_uint_eq(count(at(d, r, "verbs")), 3);
    ck_scalar(item(d, at(d, r, "verbs"), 2), "on", false);
    ck_assert_uint_eq(count(at(d, r, "empty")), 0);
    d = &m->docs[1];
    r = yaml_document_get_root_node(d);
    ck_assert_uint_eq(count(r), 2);
    ck_scalar(at(d, r, "kind"), "Other", true);
    parsed_free(m);
    free(out);
}
END_TEST

/* ---- failures ---- */

/* A fixed document of about 1.6 KB; only the cap changes between calls. */
static int render_capped(size_t cap, char **out, size_t *len, char *err, size_t errlen)
{
    struct yw w;
    char key[16];
    yw_init(&w, cap);
    yw_doc_begin(&w, "v1", "Big");
    for (int i = 0; i < 100; i++) {
        snprintf(key, sizeof(key), "k%d", i);
        yw_kv(&w, key, "value");
    }
    yw_doc_end(&w);
    int rc = yw_finish(&w, out, len, err, errlen);
    yw_free(&w);
    return rc;
}

/* A document exactly at the cap is written; one byte over is refused with
 * nothing handed out and nothing leaked (valgrind). */
START_TEST(test_output_cap)
{
    char *out = NULL, *exact = NULL, err[128] = "";
    size_t len = 0, full = 0;

    ck_assert_int_eq(render_capped(BIG_CAP, &out, &full, err, sizeof(err)), 0);
    ck_assert_uint_gt(full, 1000);

    ck_assert_int_eq(render_capped(full, &exact, &len, err, sizeof(err)), 0);
    ck_assert_uint_eq(len, full);
    ck_assert_mem_eq(exact, out, full);
    ck_assert_int_eq(exact[len], '\0');

    for (size_t cap = full - 1; cap > 0; cap = cap > 100 ? cap - 100 : cap - 1) {
        char *big = (char *)"untouched";
        len = 99;
        err[0] = '\0';
        ck_assert_int_eq(render_capped(cap, &big, &len, err, sizeof(err)), -1);
        ck_assert_ptr_null(big);
        ck_assert_uint_eq(len, 0);
        ck_assert_msg(strstr(err, "output cap"), "cap %zu: \"%s\"", cap, err);
    }
    free(out);
    free(exact);
}
END_TEST

/* A single value longer than the cap is refused before libyaml sees it. */
START_TEST(test_value_over_cap)
{
    static char v[2000];
    char *out = NULL, err[128] = "";
    size_t len = 0;
    struct yw w;

    memset(v, 'a', sizeof(v) - 1);
    ck_assert_int_eq(yw_init(&w, 1000), 0);
    yw_doc_begin(&w, "v1", "Test");
    yw_kv(&w, "value", v);
    yw_kv(&w, "after", "ignored");
    yw_doc_end(&w);
    ck_assert_int_eq(yw_finish(&w, &out, &len, err, sizeof(err)), -1);
    ck_assert_ptr_null(out);
    ck_assert_ptr_nonnull(strstr(err, "output cap of 1000 bytes"));
    yw_free(&w);
}
END_TEST

START_TEST(test_invalid_utf8_refused)
{
    static const char *const bad[] = {
        "\xff", "ab\xc3", "\xc0\xaf", "\xed\xa0\x80", "\xf4\x90\x80\x80", "\xe2\x82",
    };
    ck_assert(yw_utf8_ok("caf\xc3\xa9 \xf0\x9f\x94\x91"));
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char *out = NULL, err[128] = "";
        size_t len = 0;
        struct yw w;
        ck_assert(!yw_utf8_ok(bad[i]));
        ck_assert_int_eq(yw_init(&w, BIG_CAP), 0);
        yw_doc_begin(&w, "v1", "Test");
        yw_kv(&w, "value", bad[i]);
        yw_doc_end(&w);
        ck_assert_int_eq(yw_finish(&w, &out, &len, err, sizeof(err)), -1);
        ck_assert_ptr_null(out);
        ck_assert_ptr_nonnull(strstr(err, "UTF-8"));
        yw_free(&w);
    }
}
END_TEST

/* A bad cap fails at init and at finish; yw_free is safe in every state. */
START_TEST(test_init_and_free)
{
    char *out = (char *)"untouched", err[128] = "";
    size_t len = 5;
    struct yw w;

    yw_free(NULL);
    memset(&w, 0, sizeof(w));
    yw_free(&w);

    ck_assert_int_eq(yw_init(&w, 0), -1);
    yw_doc_begin(&w, "v1", "Test");
    yw_doc_end(&w);
    ck_assert_int_eq(yw_finish(&w, &out, &len, err, sizeof(err)), -1);
    ck_assert_ptr_null(out);
    ck_assert_uint_eq(len, 0);
    ck_assert_uint_gt(strlen(err), 0);
    yw_free(&w);
    yw_free(&w);

    /* Nothing written: an empty stream is no output. */
    ck_assert_int_eq(yw_init(&w, BIG_CAP), 0);
    ck_assert_int_eq(yw_finish(&w, &out, &len, NULL, 0), -1);
    yw_free(&w);

    /* Abandoned half way: yw_free alone releases everything. */
    ck_assert_int_eq(yw_init(&w, BIG_CAP), 0);
    yw_doc_begin(&w, "v1", "Test");
    yw_key_map(&w, "open");
    yw_free(&w);
}
END_TEST

Suite *suite_common_yamlout(void)
{
    Suite *s = suite_create("common_yamlout");

    TCase *q = tcase_create("quoting");
    tcase_add_test(q, test_ambiguous_strings_quoted);
    tcase_add_test(q, test_safe_strings_plain);
    tcase_add_test(q, test_ascii_output_no_folding);
    suite_add_tcase(s, q);

    TCase *t = tcase_create("structure");
    tcase_add_test(t, test_ints_and_bools_plain);
    tcase_add_test(t, test_structure);
    suite_add_tcase(s, t);

    TCase *f = tcase_create("failures");
    tcase_add_test(f, test_output_cap);
    tcase_add_test(f, test_value_over_cap);
    tcase_add_test(f, test_invalid_utf8_refused);
    tcase_add_test(f, test_init_and_free);
    suite_add_tcase(s, f);
    return s;
}
