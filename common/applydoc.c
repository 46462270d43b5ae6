/*
 * applydoc: splitting an apply body into objects. See applydoc.h.
 *
 * YAML is read as libyaml events, not as a loaded document: the loader
 * would build its whole node tree (hundreds of bytes per value) before any
 * limit could be checked, while events let every value be counted as it
 * arrives. Each document becomes a jansson tree, is checked and serialized,
 * and its tree is freed before the next document is read, so what is held
 * at once is one document's tree plus the serialized objects.
 */
#include "common/applydoc.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

/* What one body may expand to (scalar bytes, aliases counted each time they
 * are used): bounds the serialized objects whatever aliases do. */
#define MAX_EXPANDED (32u * 1024 * 1024)
#define MAX_ANCHORS 10000

/* ---- collecting objects ---- */

struct collect {
    struct applydoc *out;
    size_t cap;
    char *err;
    size_t errlen;
    int doc;                    /* the document being read, from 1 */
};

static int fail(struct collect *c, int item, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int fail(struct collect *c, int item, const char *fmt, ...)
{
    char msg[300];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (item > 0)
        snprintf(c->err, c->errlen, "document %d, item %d: %s", c->doc, item, msg);
    else
        snprintf(c->err, c->errlen, "document %d: %s", c->doc, msg);
    return -1;
}

int applydoc_rank(const char *kind)
{
    if (kind && strcmp(kind, "Namespace") == 0)
        return 0;
    return kind && strcmp(kind, "CustomResourceDefinition") == 0 ? 1 : 2;
}

static bool lower_alnum(char ch)
{
    return (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9');
}

static bool dns_label(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 63 || !lower_alnum(s[0]) || !lower_alnum(s[n - 1]))
        return false;
    for (size_t i = 0; i < n; i++)
        if (!lower_alnum(s[i]) && s[i] != '-')
            return false;
    return true;
}

static bool api_version_ok(const char *av)
{
    const char *slash = strchr(av, '/');
    const char *ver = slash ? slash + 1 : av;
    size_t gl = slash ? (size_t)(slash - av) : 0;
    if (slash && (gl == 0 || gl > 253 || !lower_alnum(av[0]) || !lower_alnum(av[gl - 1])))
        return false;
    for (size_t i = 0; i < gl; i++)
        if (!lower_alnum(av[i]) && av[i] != '-' && av[i] != '.')
            return false;
    size_t vl = strlen(ver);
    if (vl == 0 || vl > 63)
        return false;
    for (size_t i = 0; i < vl; i++)
        if (!lower_alnum(ver[i]))
            return false;
    return true;
}

static bool kind_ok(const char *k)
{
    size_t n = strlen(k);
    if (n == 0 || n > 63 || !((k[0] >= 'A' && k[0] <= 'Z') || (k[0] >= 'a' && k[0] <= 'z')))
        return false;
    for (size_t i = 0; i < n; i++)
        if (!lower_alnum(k[i]) && !(k[i] >= 'A' && k[i] <= 'Z'))
            return false;
    return true;
}

/* Names go into request paths as they are: only characters that need no
 * escaping there. */
static bool name_ok(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > APPLYDOC_MAX_NAME || strcmp(s, ".") == 0 || strcmp(s, "..") == 0)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!lower_alnum(s[i]) && !(s[i] >= 'A' && s[i] <= 'Z') && !strchr("._:@+~-", s[i]))
            return false;
    return true;
}

const char *applydoc_check(const json_t *obj)
{
    if (!json_is_object(obj))
        return "not an object";
    json_t *av = json_object_get(obj, "apiVersion"), *kind = json_object_get(obj, "kind");
    json_t *meta = json_object_get(obj, "metadata");
    json_t *name = json_object_get(meta, "name"), *ns = json_object_get(meta, "namespace");
    if (!json_is_string(av))
        return "apiVersion is required";
    if (!api_version_ok(json_string_value(av)))
        return "apiVersion must be v1-like or group/version";
    if (!json_is_string(kind))
        return "kind is required";
    if (!kind_ok(json_string_value(kind)))
        return "kind must be letters and digits";
    if (!json_is_object(meta))
        return "metadata is required";
    if (!json_is_string(name))
        return json_object_get(meta, "generateName")
               ? "metadata.name is required (generateName cannot be applied)"
               : "metadata.name is required";
    if (!name_ok(json_string_value(name)))
        return "metadata.name must be 1-253 of letters, digits and ._:@+~-";
    if (ns && !json_is_null(ns) &&
        !(json_is_string(ns) && (!json_string_length(ns) || dns_label(json_string_value(ns)))))
        return "metadata.namespace must be a DNS label";
    return NULL;
}

/* Adds one object (borrowed). */
static int add_object(struct collect *c, const json_t *obj, int item)
{
    const char *why = applydoc_check(obj);
    if (why)
        return fail(c, item, "%s", why);
    struct applydoc *d = c->out;
    if (d->n == APPLYDOC_MAX_OBJECTS)
        return fail(c, item, "more than %d objects in one request", APPLYDOC_MAX_OBJECTS);
    if (d->n == c->cap) {
        size_t cap = c->cap ? c->cap * 2 : 16;
        struct applydoc_obj *o = realloc(d->objs, cap * sizeof(*o));
        if (!o)
            return fail(c, item, "out of memory");
        d->objs = o;
        c->cap = cap;
    }
    char *s = json_dumps(obj, JSON_COMPACT | JSON_PRESERVE_ORDER);
    if (!s)
        return fail(c, item, "out of memory");
    size_t len = strlen(s);
    if (len > APPLYDOC_MAX_OBJECT) {
        free(s);
        return fail(c, item, "the object is over %u MiB", APPLYDOC_MAX_OBJECT >> 20);
    }
    d->objs[d->n] = (struct applydoc_obj){
        .json = s, .len = len, .index = d->n,
        .rank = applydoc_rank(json_string_value(json_object_get(obj, "kind"))),
    };
    d->n++;
    return 0;
}

/* A document's root (or a JSON array's item): an object, or a List of them.
 * item: its number in a JSON array, 0 for a document. */
static int add_doc(struct collect *c, const json_t *doc, int item)
{
    if (json_is_null(doc))
        return 0;               /* an empty document */
    if (!json_is_object(doc))
        return fail(c, item, "not an object");
    const char *kind = json_string_value(json_object_get(doc, "kind"));
    if (!kind || strcmp(kind, "List") != 0)
        return add_object(c, doc, item);
    json_t *items = json_object_get(doc, "items");
    if (item > 0)
        return fail(c, item, "a List inside a list");
    if (!json_is_array(items))
        return fail(c, 0, "a List needs items");
    size_t i;
    json_t *it;
    json_array_foreach(items, i, it) {
        const char *k = json_string_value(json_object_get(it, "kind"));
        if (k && strcmp(k, "List") == 0)
            return fail(c, (int)i + 1, "a List inside a list");
        if (add_object(c, it, (int)i + 1) < 0)
            return -1;
    }
    return 0;
}

static int by_rank(const void *a, const void *b)
{
    const struct applydoc_obj *x = a, *y = b;
    if (x->rank != y->rank)
        return x->rank - y->rank;
    return x->index < y->index ? -1 : x->index > y->index;
}

void applydoc_free(struct applydoc *d)
{
    for (size_t i = 0; d->objs && i < d->n; i++)
        free(d->objs[i].json);
    free(d->objs);
    d->objs = NULL;
    d->n = 0;
}

/* ---- YAML scalars ---- */

static bool one_of(const char *v, const char *const *words)
{
    for (; *words; words++)
        if (strcmp(v, *words) == 0)
            return true;
    return false;
}

static bool float_syntax(const char *v)
{
    const char *p = v + (*v == '-' || *v == '+');
    bool digits = false;
    while ((*p >= '0' && *p <= '9') || *p == '_')
        digits = true, p++;
    if (*p == '.')
        for (p++; (*p >= '0' && *p <= '9') || *p == '_'; p++)
            digits = true;
    if (!digits)
        return false;
    if (*p == 'e' || *p == 'E') {
        p++;
        p += *p == '-' || *p == '+';
        if (!(*p >= '0' && *p <= '9'))
            return false;
        while (*p >= '0' && *p <= '9')
            p++;
    }
    return *p == '\0';
}

/* A copy of v without '_' (YAML 1.1 digit separators), or NULL. */
static char *strip_underscores(const char *v, size_t n)
{
    char *s = malloc(n + 1), *o = s;
    if (!s)
        return NULL;
    for (size_t i = 0; i < n; i++)
        if (v[i] != '_')
            *o++ = v[i];
    *o = '\0';
    return s;
}

/* An integer: decimal, 0x hex, 0 octal, 0b binary, with an optional sign. */
static bool parse_int(const char *s, long long *out)
{
    const char *p = s + (*s == '-' || *s == '+');
    int base = 10;
    if (p[0] == '0' && (p[1] == 'b' || p[1] == 'B'))
        base = 2, p += 2;
    else if (p[0] == '0' && (p[1] == 'x' || p[1] == 'X'))
        base = 16, p += 2;
    else if (p[0] == '0' && p[1])
        base = 8, p += 1;
    if (!*p)
        return false;
    for (const char *q = p; *q; q++) {
        int dv = (*q >= '0' && *q <= '9') ? *q - '0'
                 : (*q >= 'a' && *q <= 'f') ? *q - 'a' + 10
                 : (*q >= 'A' && *q <= 'F') ? *q - 'A' + 10 : 99;
        if (dv >= base)
            return false;
    }
    errno = 0;
    char *end;
    unsigned long long u = strtoull(p, &end, base);
    if (errno || *end || u > (unsigned long long)LLONG_MAX + (s[0] == '-'))
        return false;
    *out = s[0] == '-' ? (long long)(0 - u) : (long long)u;
    return true;
}

static json_t *plain_scalar(const char *v, size_t n)
{
    static const char *const nulls[] = { "", "~", "null", "Null", "NULL", NULL };
    static const char *const yes[] = { "y", "Y", "yes", "Yes", "YES", "on", "On", "ON",
                                       "true", "True", "TRUE", NULL };
    static const char *const no[] = { "n", "N", "no", "No", "NO", "off", "Off", "OFF",
                                      "false", "False", "FALSE", NULL };
    if (strlen(v) != n)
        return json_stringn(v, n);
    if (one_of(v, nulls))
        return json_null();
    if (one_of(v, yes))
        return json_true();
    if (one_of(v, no))
        return json_false();
    if (n > 64 || !((v[0] >= '0' && v[0] <= '9') || strchr("+-.", v[0])))
        return json_stringn(v, n);
    char *s = strip_underscores(v, n);
    if (!s)
        return NULL;
    long long i;
    json_t *j = NULL;
    if (parse_int(s, &i)) {
        j = json_integer(i);
    } else if (float_syntax(s)) {
        double d = strtod(s, NULL);
        j = isfinite(d) ? json_real(d) : json_stringn(v, n);
    } else {
        j = json_stringn(v, n);
    }
    free(s);
    return j;
}

/* ---- YAML documents ---- */

struct yframe {
    json_t *node;               /* object or array */
    char *key;                  /* object: the key read, waiting for its value */
    char *anchor;
    size_t nodes0, bytes0;      /* totals when it started (for its anchor) */
};

struct yanchor {
    char *name;
    json_t *node;
    size_t nodes, bytes;        /* what one use of it expands to */
};

struct yconv {
    struct collect *c;
    struct yframe stack[APPLYDOC_MAX_DEPTH + 1];
    int depth;
    struct yanchor *anchors;
    size_t nanchors;
    size_t nodes, bytes;
    json_t *root;
};

static void anchors_clear(struct yconv *y)
{
    for (size_t i = 0; i < y->nanchors; i++) {
        free(y->anchors[i].name);
        json_decref(y->anchors[i].node);
    }
    free(y->anchors);
    y->anchors = NULL;
    y->nanchors = 0;
}

static void stack_clear(struct yconv *y)
{
    while (y->depth > 0) {
        struct yframe *f = &y->stack[--y->depth];
        json_decref(f->node);
        free(f->key);
        free(f->anchor);
    }
    json_decref(y->root);
    y->root = NULL;
}

static int count(struct yconv *y, size_t nodes, size_t bytes)
{
    if (nodes > APPLYDOC_MAX_NODES - y->nodes || bytes > MAX_EXPANDED - y->bytes)
        return fail(y->c, 0, "more than %d values (or %u MiB of text) in one request",
                    APPLYDOC_MAX_NODES, MAX_EXPANDED >> 20);
    y->nodes += nodes;
    y->bytes += bytes;
    return 0;
}

static int remember(struct yconv *y, const char *name, json_t *node, size_t nodes,
                    size_t bytes)
{
    if (!name)
        return 0;
    if (y->nanchors == MAX_ANCHORS)
        return fail(y->c, 0, "more than %d anchors", MAX_ANCHORS);
    if (y->nanchors % 64 == 0) {
        struct yanchor *a = realloc(y->anchors, (y->nanchors + 64) * sizeof(*a));
        if (!a)
            return fail(y->c, 0, "out of memory");
        y->anchors = a;
    }
    char *n = strdup(name);
    if (!n)
        return fail(y->c, 0, "out of memory");
    /* A later anchor of the same name hides an earlier one. */
    memmove(y->anchors + 1, y->anchors, y->nanchors * sizeof(*y->anchors));
    y->anchors[0] = (struct yanchor){ n, json_incref(node), nodes, bytes };
    y->nanchors++;
    return 0;
}

/* Puts v (taking it) where the document is: its root, an array, or the
 * value of the key just read. */
static int place(struct yconv *y, json_t *v)
{
    if (!v)
        return fail(y->c, 0, "out of memory or text that is not UTF-8");
    if (y->depth == 0) {
        json_decref(y->root);
        y->root = v;
        return 0;
    }
    struct yframe *f = &y->stack[y->depth - 1];
    if (json_is_array(f->node))
        return json_array_append_new(f->node, v) < 0 ? fail(y->c, 0, "out of memory") : 0;
    if (json_object_get(f->node, f->key)) {
        json_decref(v);
        return fail(y->c, 0, "the key \"%.100s\" appears twice in one mapping", f->key);
    }
    int rc = json_object_set_new(f->node, f->key, v);
    free(f->key);
    f->key = NULL;
    return rc < 0 ? fail(y->c, 0, "out of memory or a key that is not UTF-8") : 0;
}

static bool wants_key(const struct yconv *y)
{
    return y->depth > 0 && json_is_object(y->stack[y->depth - 1].node) &&
           !y->stack[y->depth - 1].key;
}

static int on_scalar(struct yconv *y, const yaml_event_t *ev)
{
    const char *v = (const char *)ev->data.scalar.value;
    size_t n = ev->data.scalar.length;
    const char *tag = (const char *)ev->data.scalar.tag;
    bool plain = ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE &&
                 !(tag && strcmp(tag, YAML_STR_TAG) == 0);
    if (wants_key(y)) {
        if (plain && strcmp(v, "<<") == 0)
            return fail(y->c, 0, "YAML merge keys (<<) are not supported");
        if (strlen(v) != n)
            return fail(y->c, 0, "a key holds a NUL character");
        if (count(y, 0, n) < 0)
            return -1;
        char *k = strdup(v);
        if (!k)
            return fail(y->c, 0, "out of memory");
        y->stack[y->depth - 1].key = k;
        return 0;
    }
    if (count(y, 1, n) < 0)
        return -1;
    json_t *j = plain ? plain_scalar(v, n) : json_stringn(v, n);
    if (j && remember(y, (const char *)ev->data.scalar.anchor, j, 1, n) < 0) {
        json_decref(j);
        return -1;
    }
    return place(y, j);
}

static int on_alias(struct yconv *y, const yaml_event_t *ev)
{
    const char *name = (const char *)ev->data.alias.anchor;
    if (wants_key(y))
        return fail(y->c, 0, "an alias cannot be a key");
    for (size_t i = 0; i < y->nanchors; i++) {
        struct yanchor *a = &y->anchors[i];
        if (strcmp(a->name, name) != 0)
            continue;
        if (count(y, a->nodes, a->bytes) < 0)
            return -1;
        return place(y, json_incref(a->node));
    }
    return fail(y->c, 0, "the alias *%.100s names no anchor before it", name);
}

static int on_start(struct yconv *y, bool mapping, const yaml_char_t *anchor)
{
    if (wants_key(y))
        return fail(y->c, 0, "mapping keys must be scalars");
    if (y->depth == APPLYDOC_MAX_DEPTH)
        return fail(y->c, 0, "nested deeper than %d", APPLYDOC_MAX_DEPTH);
    if (count(y, 1, 0) < 0)
        return -1;
    json_t *node = mapping ? json_object() : json_array();
    char *an = anchor ? strdup((const char *)anchor) : NULL;
    if (!node || (anchor && !an)) {
        json_decref(node);
        free(an);
        return fail(y->c, 0, "out of memory");
    }
    y->stack[y->depth++] = (struct yframe){ node, NULL, an, y->nodes - 1, y->bytes };
    return 0;
}

static int on_end(struct yconv *y)
{
    struct yframe f = y->stack[--y->depth];
    free(f.key);
    int rc = remember(y, f.anchor, f.node, y->nodes - f.nodes0, y->bytes - f.bytes0);
    free(f.anchor);
    if (rc < 0) {
        json_decref(f.node);
        return -1;
    }
    return place(y, f.node);
}

static int on_event(struct yconv *y, const yaml_event_t *ev)
{
    switch (ev->type) {
    case YAML_DOCUMENT_START_EVENT:
        y->c->doc++;
        return 0;
    case YAML_DOCUMENT_END_EVENT: {
        int rc = y->root ? add_doc(y->c, y->root, 0) : 0;
        json_decref(y->root);
        y->root = NULL;
        anchors_clear(y);       /* anchors do not cross documents */
        return rc;
    }
    case YAML_SCALAR_EVENT:
        return on_scalar(y, ev);
    case YAML_ALIAS_EVENT:
        return on_alias(y, ev);
    case YAML_SEQUENCE_START_EVENT:
        return on_start(y, false, ev->data.sequence_start.anchor);
    case YAML_MAPPING_START_EVENT:
        return on_start(y, true, ev->data.mapping_start.anchor);
    case YAML_SEQUENCE_END_EVENT:
    case YAML_MAPPING_END_EVENT:
        return on_end(y);
    default:
        return 0;
    }
}

static int parse_yaml(struct collect *c, const uint8_t *buf, size_t len)
{
    struct yconv y = { .c = c };
    yaml_parser_t p;
    int rc = 0;
    if (!yaml_parser_initialize(&p))
        return fail(c, 0, "out of memory");
    yaml_parser_set_input_string(&p, buf, len);
    for (;;) {
        yaml_event_t ev;
        if (!yaml_parser_parse(&p, &ev)) {
            /* The document the error is in has not started yet if it is
             * on a `---` line: name the next one. */
            if (c->doc == 0)
                c->doc = 1;
            rc = fail(c, 0, "invalid YAML at line %zu, column %zu: %s",
                      p.problem_mark.line + 1, p.problem_mark.column + 1,
                      p.problem ? p.problem : "syntax error");
            break;
        }
        bool end = ev.type == YAML_STREAM_END_EVENT;
        rc = on_event(&y, &ev);
        yaml_event_delete(&ev);
        if (rc || end)
            break;
    }
    stack_clear(&y);
    anchors_clear(&y);
    yaml_parser_delete(&p);
    return rc;
}

/* ---- JSON ---- */

/* An upper bound on the values in a JSON text (each value but the first
 * follows a ',', '[' or '{' outside strings), so a body of a million tiny
 * values is refused before jansson builds them. */
static size_t json_values_bound(const uint8_t *p, size_t n)
{
    size_t v = 1;
    bool str = false;
    for (size_t i = 0; i < n; i++) {
        if (str) {
            if (p[i] == '\\')
                i++;
            else if (p[i] == '"')
                str = false;
        } else if (p[i] == '"') {
            str = true;
        } else if (p[i] == ',' || p[i] == '[' || p[i] == '{') {
            v++;
        }
    }
    return v;
}

static bool too_deep(const json_t *j, int depth)
{
    if (depth > APPLYDOC_MAX_DEPTH)
        return true;
    const char *k;
    json_t *v;
    size_t i;
    if (json_is_object(j)) {
        json_object_foreach((json_t *)j, k, v)
            if (too_deep(v, depth + 1))
                return true;
    } else if (json_is_array(j)) {
        json_array_foreach(j, i, v)
            if (too_deep(v, depth + 1))
                return true;
    }
    return false;
}

static int parse_json(struct collect *c, const uint8_t *buf, size_t len)
{
    c->doc = 1;
    if (json_values_bound(buf, len) > APPLYDOC_MAX_NODES)
        return fail(c, 0, "more than %d values in one request", APPLYDOC_MAX_NODES);
    json_error_t je;
    json_t *j = json_loadb((const char *)buf, len, JSON_REJECT_DUPLICATES, &je);
    if (!j)
        return fail(c, 0, "invalid JSON at line %d, column %d: %s", je.line, je.column,
                    je.text);
    int rc = 0;
    if (too_deep(j, 1)) {
        rc = fail(c, 0, "nested deeper than %d", APPLYDOC_MAX_DEPTH);
    } else if (json_is_array(j)) {
        size_t i;
        json_t *it;
        json_array_foreach(j, i, it) {
            if (!json_is_object(it))
                rc = fail(c, (int)i + 1, "not an object");
            else if ((rc = add_doc(c, it, (int)i + 1)) < 0)
                break;
            if (rc < 0)
                break;
        }
    } else {
        rc = add_doc(c, j, 0);
    }
    json_decref(j);
    return rc;
}

int applydoc_parse(const uint8_t *buf, size_t len, enum applydoc_format fmt,
                   struct applydoc *out, char *err, size_t errlen)
{
    struct collect c = { .out = out, .err = err, .errlen = errlen };
    memset(out, 0, sizeof(*out));
    int rc = fmt == APPLYDOC_JSON ? parse_json(&c, buf, len) : parse_yaml(&c, buf, len);
    if (rc == 0 && out->n == 0) {
        snprintf(err, errlen, "no objects to apply");
        rc = -1;
    }
    if (rc < 0) {
        applydoc_free(out);
        return -1;
    }
    qsort(out->objs, out->n, sizeof(*out->objs), by_rank);
    return 0;
}
