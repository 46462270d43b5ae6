/*
 * yamljson: YAML <-> jansson. See yamljson.h.
 */
#include "cli/yamljson.h"

#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <yaml.h>

#include "common/yamlout.h"

/* ---- reading ---- */

static bool all_digits(const char *s)
{
    if (*s == '-' || *s == '+')
        s++;
    if (!*s)
        return false;
    for (; *s; s++)
        if (*s < '0' || *s > '9')
            return false;
    return true;
}

static json_t *plain_value(const char *s)
{
    if (!*s || strcmp(s, "~") == 0 || strcasecmp(s, "null") == 0)
        return json_null();
    if (strcasecmp(s, "true") == 0)
        return json_true();
    if (strcasecmp(s, "false") == 0)
        return json_false();
    if (all_digits(s)) {
        errno = 0;
        long long v = strtoll(s, NULL, 10);
        if (errno == 0)
            return json_integer(v);
    }
    char *end;
    /* Decimal forms only: strtod also takes hex floats ("0x10"), which
     * would come back as a real where a reader expects the text. */
    if (((s[0] >= '0' && s[0] <= '9') || s[0] == '-' || s[0] == '.') &&
        s[strspn(s, "0123456789.eE+-")] == '\0') {
        double d = strtod(s, &end);
        if (*end == '\0' && end != s && isfinite(d))
            return json_real(d);
    }
    return json_string(s);
}

struct loader {
    yaml_parser_t p;
    json_t *stack[YJ_MAX_DEPTH + 1];
    char *keys[YJ_MAX_DEPTH + 1];   /* the pending key of each open mapping */
    int depth;
    json_t *root;
    const char *why;
};

/* Adds v to the open container (or makes it the root); takes v. */
static int add_value(struct loader *l, json_t *v)
{
    if (!v)
        return l->why = "out of memory", -1;
    if (l->depth == 0) {
        l->root = v;
        return 0;
    }
    json_t *top = l->stack[l->depth - 1];
    if (json_is_array(top))
        return json_array_append_new(top, v) < 0 ? (l->why = "out of memory", -1) : 0;
    char **key = &l->keys[l->depth - 1];
    if (!*key) {
        if (!json_is_string(v)) {
            json_decref(v);
            return l->why = "only scalar keys are supported", -1;
        }
        *key = strdup(json_string_value(v));
        json_decref(v);
        return *key ? 0 : (l->why = "out of memory", -1);
    }
    int rc = json_object_set_new(top, *key, v);
    free(*key);
    *key = NULL;
    return rc < 0 ? (l->why = "out of memory", -1) : 0;
}

static int open_container(struct loader *l, json_t *c)
{
    if (l->depth == YJ_MAX_DEPTH) {
        json_decref(c);
        return l->why = "nested too deeply", -1;
    }
    json_incref(c);
    if (add_value(l, c) < 0) {
        json_decref(c);
        return -1;
    }
    l->stack[l->depth] = c;
    l->keys[l->depth++] = NULL;
    return 0;
}

static json_t *scalar_value(const yaml_event_t *ev)
{
    const char *s = (const char *)ev->data.scalar.value;
    const char *tag = (const char *)ev->data.scalar.tag;
    if (tag && strcmp(tag, YAML_STR_TAG) == 0)
        return json_stringn(s, ev->data.scalar.length);
    if (ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE && !tag)
        return plain_value(s);
    return json_stringn(s, ev->data.scalar.length);
}

/* Handles one event; 1 at the end of the first document, 0 to go on, -1. */
static int on_event(struct loader *l, const yaml_event_t *ev)
{
    switch (ev->type) {
    case YAML_ALIAS_EVENT:
        return l->why = "aliases are not supported", -1;
    case YAML_SCALAR_EVENT:
        if (ev->data.scalar.anchor)
            return l->why = "anchors are not supported", -1;
        /* A key is always a string, whatever it looks like. */
        if (l->depth > 0 && json_is_object(l->stack[l->depth - 1]) &&
            !l->keys[l->depth - 1])
            return add_value(l, json_stringn((const char *)ev->data.scalar.value,
                                             ev->data.scalar.length));
        return add_value(l, scalar_value(ev));
    case YAML_SEQUENCE_START_EVENT:
    case YAML_MAPPING_START_EVENT:
        if ((ev->type == YAML_SEQUENCE_START_EVENT ? ev->data.sequence_start.anchor
                                                   : ev->data.mapping_start.anchor))
            return l->why = "anchors are not supported", -1;
        return open_container(l, ev->type == YAML_SEQUENCE_START_EVENT ? json_array()
                                                                        : json_object());
    case YAML_SEQUENCE_END_EVENT:
    case YAML_MAPPING_END_EVENT:
        l->depth--;
        json_decref(l->stack[l->depth]);
        free(l->keys[l->depth]);
        l->keys[l->depth] = NULL;
        return 0;
    case YAML_DOCUMENT_END_EVENT:
    case YAML_STREAM_END_EVENT:
        return 1;
    default:
        return 0;
    }
}

json_t *yj_load(const char *buf, size_t len, char *err, size_t errlen)
{
    struct loader l;
    memset(&l, 0, sizeof(l));
    if (len > YJ_MAX_INPUT) {
        snprintf(err, errlen, "larger than %d bytes", YJ_MAX_INPUT);
        return NULL;
    }
    if (!yaml_parser_initialize(&l.p)) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    yaml_parser_set_input_string(&l.p, (const unsigned char *)buf, len);
    int rc = 0;
    while (rc == 0) {
        yaml_event_t ev;
        if (!yaml_parser_parse(&l.p, &ev)) {
            snprintf(err, errlen, "line %zu: %s", l.p.problem_mark.line + 1,
                     l.p.problem ? l.p.problem : "invalid YAML");
            rc = -2;
            break;
        }
        rc = on_event(&l, &ev);
        if (rc < 0)
            snprintf(err, errlen, "line %zu: %s", ev.start_mark.line + 1, l.why);
        yaml_event_delete(&ev);
    }
    while (l.depth > 0) {
        l.depth--;
        json_decref(l.stack[l.depth]);
        free(l.keys[l.depth]);
    }
    yaml_parser_delete(&l.p);
    if (rc < 0) {
        json_decref(l.root);
        return NULL;
    }
    return l.root ? l.root : json_null();
}

/* ---- writing ---- */

struct dumper {
    yaml_emitter_t e;
    char *buf;
    size_t len, cap;
    bool failed;
};

static int out_write(void *data, unsigned char *bytes, size_t size)
{
    struct dumper *d = data;
    if (size > YJ_MAX_INPUT * 4 - d->len)
        return 0;
    if (d->len + size + 1 > d->cap) {
        size_t nc = d->cap ? d->cap : 4096;
        while (nc < d->len + size + 1)
            nc *= 2;
        char *nb = realloc(d->buf, nc);
        if (!nb)
            return 0;
        d->buf = nb;
        d->cap = nc;
    }
    memcpy(d->buf + d->len, bytes, size);
    d->len += size;
    return 1;
}

static void emit(struct dumper *d, yaml_event_t *ev, int made)
{
    if (d->failed || !made || !yaml_emitter_emit(&d->e, ev))
        d->failed = true;
}

/* True if s may be written plain and reads back as this string (yamlout's
 * conservative rule: a letter or '/' first, [A-Za-z0-9._/-] after, not a
 * YAML 1.1 boolean or null word). */
static bool plain_ok(const char *s)
{
    static const char *const words[] = { "y", "n", "yes", "no", "on", "off",
                                         "true", "false", "null", NULL };
    bool alpha = (s[0] >= 'a' && s[0] <= 'z') || (s[0] >= 'A' && s[0] <= 'Z');
    if (!alpha && s[0] != '/')
        return false;
    for (const char *c = s; *c; c++)
        if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') ||
              (*c >= '0' && *c <= '9') || strchr("-._/", *c)))
            return false;
    for (size_t i = 0; words[i]; i++)
        if (strcasecmp(s, words[i]) == 0)
            return false;
    return true;
}

static void scalar(struct dumper *d, const char *s, size_t n, bool is_string)
{
    yaml_event_t ev;
    if (d->failed)
        return;
    if (n > INT32_MAX || (is_string && !yw_utf8_ok(s))) {
        d->failed = true;
        return;
    }
    bool plain = !is_string || plain_ok(s);
    emit(d, &ev, yaml_scalar_event_initialize(
                     &ev, NULL, NULL, (const yaml_char_t *)s, (int)n, plain, !plain,
                     plain ? YAML_PLAIN_SCALAR_STYLE : YAML_DOUBLE_QUOTED_SCALAR_STYLE));
}

static void dump_value(struct dumper *d, const json_t *j, int depth)
{
    yaml_event_t ev;
    char num[40];
    if (depth > YJ_MAX_DEPTH) {
        d->failed = true;
        return;
    }
    switch (json_typeof(j)) {
    case JSON_OBJECT: {
        bool empty = json_object_size(j) == 0;
        emit(d, &ev, yaml_mapping_start_event_initialize(
                         &ev, NULL, NULL, 1, empty ? YAML_FLOW_MAPPING_STYLE
                                                   : YAML_BLOCK_MAPPING_STYLE));
        const char *k;
        json_t *v;
        json_object_foreach((json_t *)j, k, v) {
            scalar(d, k, strlen(k), true);
            dump_value(d, v, depth + 1);
        }
        emit(d, &ev, yaml_mapping_end_event_initialize(&ev));
        break;
    }
    case JSON_ARRAY: {
        bool empty = json_array_size(j) == 0;
        emit(d, &ev, yaml_sequence_start_event_initialize(
                         &ev, NULL, NULL, 1, empty ? YAML_FLOW_SEQUENCE_STYLE
                                                   : YAML_BLOCK_SEQUENCE_STYLE));
        size_t i;
        json_t *v;
        json_array_foreach(j, i, v)
            dump_value(d, v, depth + 1);
        emit(d, &ev, yaml_sequence_end_event_initialize(&ev));
        break;
    }
    case JSON_STRING:
        scalar(d, json_string_value(j), json_string_length(j), true);
        break;
    case JSON_INTEGER:
        snprintf(num, sizeof(num), "%" JSON_INTEGER_FORMAT, json_integer_value(j));
        scalar(d, num, strlen(num), false);
        break;
    case JSON_REAL:
        snprintf(num, sizeof(num), "%.17g", json_real_value(j));
        /* "1" would read back as an integer: keep it a real. */
        if (!strpbrk(num, ".eEn"))
            strncat(num, ".0", sizeof(num) - strlen(num) - 1);
        scalar(d, num, strlen(num), false);
        break;
    case JSON_TRUE:
        scalar(d, "true", 4, false);
        break;
    case JSON_FALSE:
        scalar(d, "false", 5, false);
        break;
    default:
        scalar(d, "null", 4, false);
        break;
    }
}

char *yj_dump(const json_t *j, size_t *len)
{
    struct dumper d;
    yaml_event_t ev;
    memset(&d, 0, sizeof(d));
    if (!yaml_emitter_initialize(&d.e))
        return NULL;
    yaml_emitter_set_output(&d.e, out_write, &d);
    yaml_emitter_set_unicode(&d.e, 0);
    yaml_emitter_set_width(&d.e, -1);
    yaml_emitter_set_indent(&d.e, 2);
    emit(&d, &ev, yaml_stream_start_event_initialize(&ev, YAML_UTF8_ENCODING));
    emit(&d, &ev, yaml_document_start_event_initialize(&ev, NULL, NULL, NULL, 1));
    dump_value(&d, j, 0);
    emit(&d, &ev, yaml_document_end_event_initialize(&ev, 1));
    emit(&d, &ev, yaml_stream_end_event_initialize(&ev));
    yaml_emitter_delete(&d.e);
    if (d.failed || !d.buf) {
        free(d.buf);
        return NULL;
    }
    d.buf[d.len] = '\0';
    if (len)
        *len = d.len;
    return d.buf;
}
