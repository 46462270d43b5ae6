/*
 * selector: label and field selectors of the kube-standin test stand-in, as
 * the real API parses them: labels take =, ==, !=, in, notin, exists (key)
 * and !key; fields take =, == and != on a dotted path of the object
 * (metadata.name, involvedObject.name, spec.nodeName, ...).
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/kube-standin/standin.h"

#define SEL_MAX_REQS 32
#define SEL_MAX_VALUES 32

enum sel_op { OP_EQ, OP_NE, OP_IN, OP_NOTIN, OP_EXISTS, OP_NOTEXISTS };

struct sel_req {
    enum sel_op op;
    char *key;
    char *values[SEL_MAX_VALUES];
    size_t nvalues;
};

struct ksel {
    bool fields;
    struct sel_req reqs[SEL_MAX_REQS];
    size_t n;
};

void sel_free(struct ksel *s)
{
    if (!s)
        return;
    for (size_t i = 0; i < s->n; i++) {
        free(s->reqs[i].key);
        for (size_t j = 0; j < s->reqs[i].nvalues; j++)
            free(s->reqs[i].values[j]);
    }
    free(s);
}

static void skip_ws(const char **p)
{
    while (**p == ' ')
        (*p)++;
}

static bool key_char(char c, bool fields)
{
    if (isalnum((unsigned char)c) || c == '-' || c == '_' || c == '.' || c == '/')
        return true;
    return fields && (c == '[' || c == ']');
}

static char *take(const char *s, size_t n)
{
    char *out = malloc(n + 1);
    if (out) {
        memcpy(out, s, n);
        out[n] = '\0';
    }
    return out;
}

/* A value ends at ',', ')' or a blank. */
static int parse_value(const char **p, struct sel_req *r)
{
    const char *s = *p;
    while (**p && **p != ',' && **p != ')' && **p != ' ')
        (*p)++;
    if (r->nvalues == SEL_MAX_VALUES)
        return -1;
    r->values[r->nvalues] = take(s, (size_t)(*p - s));
    return r->values[r->nvalues++] ? 0 : -1;
}

static int parse_set(const char **p, struct sel_req *r)
{
    skip_ws(p);
    if (**p != '(')
        return -1;
    (*p)++;
    for (;;) {
        skip_ws(p);
        if (parse_value(p, r) < 0)
            return -1;
        skip_ws(p);
        if (**p == ')') {
            (*p)++;
            return 0;
        }
        if (**p != ',')
            return -1;
        (*p)++;
    }
}

static bool word(const char **p, const char *w)
{
    size_t n = strlen(w);
    if (strncmp(*p, w, n) != 0 || ((*p)[n] != ' ' && (*p)[n] != '('))
        return false;
    *p += n;
    return true;
}

static int parse_req(const char **p, struct sel_req *r, bool fields)
{
    skip_ws(p);
    bool neg = false;
    if (!fields && **p == '!') {
        neg = true;
        (*p)++;
        skip_ws(p);
    }
    const char *k = *p;
    while (key_char(**p, fields))
        (*p)++;
    if (*p == k)
        return -1;
    r->key = take(k, (size_t)(*p - k));
    if (!r->key)
        return -1;
    skip_ws(p);
    if (neg || **p == ',' || **p == '\0') {
        if (fields)
            return -1;
        r->op = neg ? OP_NOTEXISTS : OP_EXISTS;
        return 0;
    }
    if (**p == '=' || (**p == '!' && (*p)[1] == '=')) {
        r->op = **p == '!' ? OP_NE : OP_EQ;
        *p += **p == '!' ? 2 : ((*p)[1] == '=' ? 2 : 1);
        skip_ws(p);
        return parse_value(p, r);
    }
    if (fields)
        return -1;
    if (word(p, "in"))
        r->op = OP_IN;
    else if (word(p, "notin"))
        r->op = OP_NOTIN;
    else
        return -1;
    return parse_set(p, r);
}

static struct ksel *parse(const char *text, bool fields, char *err, size_t cap)
{
    struct ksel *s = calloc(1, sizeof(*s));
    if (!s) {
        snprintf(err, cap, "out of memory");
        return NULL;
    }
    s->fields = fields;
    const char *p = text ? text : "";
    skip_ws(&p);
    while (*p) {
        if (s->n == SEL_MAX_REQS || parse_req(&p, &s->reqs[s->n++], fields) < 0) {
            snprintf(err, cap, "unable to parse requirement: found '%s'", p);
            sel_free(s);
            return NULL;
        }
        skip_ws(&p);
        if (*p == ',')
            p++;
        else if (*p) {
            snprintf(err, cap, "found '%c', expected: ',' or 'end of string'", *p);
            sel_free(s);
            return NULL;
        }
    }
    return s;
}

struct ksel *sel_parse_labels(const char *text, char *err, size_t cap)
{
    return parse(text, false, err, cap);
}

struct ksel *sel_parse_fields(const char *text, char *err, size_t cap)
{
    return parse(text, true, err, cap);
}

static bool in_values(const struct sel_req *r, const char *v)
{
    for (size_t i = 0; i < r->nvalues; i++)
        if (strcmp(r->values[i], v) == 0)
            return true;
    return false;
}

static bool match_req(const struct sel_req *r, const char *v)
{
    switch (r->op) {
    case OP_EXISTS:
        return v != NULL;
    case OP_NOTEXISTS:
        return v == NULL;
    case OP_EQ:
        return v && strcmp(v, r->values[0]) == 0;
    case OP_NE:
        return !v || strcmp(v, r->values[0]) != 0;
    case OP_IN:
        return v && in_values(r, v);
    case OP_NOTIN:
        return !v || !in_values(r, v);
    }
    return false;
}

/* A field's value as text; a field the object lacks reads as "", which is
 * how the real field selectors treat an unset field. */
static const char *field_value(const json_t *obj, const char *path, char *buf, size_t cap)
{
    const char *s = obj_str(obj, path);
    if (s)
        return s;
    if (strcmp(path, "metadata.namespace") == 0)
        return "";
    const json_t *cur = obj;
    char part[64];
    while (cur && *path) {
        const char *dot = strchr(path, '.');
        size_t n = dot ? (size_t)(dot - path) : strlen(path);
        if (n >= sizeof(part))
            return "";
        memcpy(part, path, n);
        part[n] = '\0';
        cur = json_object_get(cur, part);
        path += n + (dot ? 1 : 0);
    }
    if (json_is_integer(cur))
        snprintf(buf, cap, "%lld", (long long)json_integer_value(cur));
    else if (json_is_boolean(cur))
        snprintf(buf, cap, "%s", json_is_true(cur) ? "true" : "false");
    else
        snprintf(buf, cap, "%s", "");
    return buf;
}

bool sel_match(const struct ksel *s, const json_t *obj)
{
    if (!s)
        return true;
    const json_t *labels = json_object_get(json_object_get(obj, "metadata"), "labels");
    for (size_t i = 0; i < s->n; i++) {
        const struct sel_req *r = &s->reqs[i];
        char buf[64];
        const char *v;
        if (s->fields)
            v = field_value(obj, r->key, buf, sizeof(buf));
        else
            v = json_string_value(json_object_get(labels, r->key));
        if (!match_req(r, v))
            return false;
    }
    return true;
}
