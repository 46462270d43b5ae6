/*
 * report_doc: checks and digests a cluster agent's report. See report_doc.h.
 *
 * Strings the store needs point into the jansson document, which the
 * report_doc keeps alive; texts made here (JSON dumps, joined roles) are
 * kept on a list and freed with it.
 */
#include "server/report_doc.h"

#include <jansson.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "server/quantity.h"

#define NAME_MAX_LEN  253     /* a Kubernetes object name */
#define SHORT_MAX     256     /* versions, roles, reasons, types */
#define TEXT_MAX      4096    /* event messages, object references */

struct priv {
    json_t *root;
    char **texts;
    size_t ntexts, captexts;
    struct store_report_node *nodes;
    struct store_report_event *events;
    int64_t cpu, memory, pods;      /* sums */
};

static int fail(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int fail(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    return -1;
}

/* Keeps s (malloc'd) until the doc is freed; NULL if s is NULL or no memory. */
static const char *keep(struct priv *p, char *s)
{
    if (!s)
        return NULL;
    if (p->ntexts == p->captexts) {
        size_t cap = p->captexts ? p->captexts * 2 : 16;
        char **t = realloc(p->texts, cap * sizeof(*t));
        if (!t) {
            free(s);
            return NULL;
        }
        p->texts = t;
        p->captexts = cap;
    }
    p->texts[p->ntexts++] = s;
    return s;
}

/* The string field name of obj: 0 with *out (NULL if absent and optional),
 * or -1 with err set. */
static int get_str(const json_t *obj, const char *name, bool required, size_t max,
                   const char *where, const char **out, char *err, size_t errlen)
{
    json_t *v = json_object_get(obj, name);
    *out = NULL;
    if (!v || json_is_null(v))
        return required ? fail(err, errlen, "%s%s is required", where, name) : 0;
    if (!json_is_string(v))
        return fail(err, errlen, "%s%s must be a string", where, name);
    if (json_string_length(v) > max || strlen(json_string_value(v)) != json_string_length(v))
        return fail(err, errlen, "%s%s is too long or holds NUL", where, name);
    *out = json_string_value(v);
    return 0;
}

/* A map of quantity strings ({"cpu":"4","memory":"16Gi"}) as JSON text. */
static int quantities(struct priv *p, const json_t *node, const char *name, const char *where,
                      const char **out, char *err, size_t errlen)
{
    json_t *v = json_object_get(node, name);
    const char *key;
    json_t *q;
    *out = "{}";
    if (!v || json_is_null(v))
        return 0;
    if (!json_is_object(v))
        return fail(err, errlen, "%s%s must be an object", where, name);
    json_object_foreach(v, key, q) {
        int64_t unused;
        if (!json_is_string(q) || json_string_length(q) > SHORT_MAX)
            return fail(err, errlen, "%s%s.%s must be a quantity string", where, name, key);
        if (qty_parse(json_string_value(q), QTY_MILLI, &unused) < 0 &&
            qty_parse(json_string_value(q), QTY_UNITS, &unused) < 0)
            return fail(err, errlen, "%s%s.%s: \"%.40s\" is not a quantity", where, name, key,
                        json_string_value(q));
    }
    *out = keep(p, json_dumps(v, JSON_COMPACT | JSON_SORT_KEYS));
    return *out ? 0 : fail(err, errlen, "out of memory");
}

/* Adds the node's capacity to the cluster's sums. */
static int add_capacity(struct priv *p, const json_t *node, const char *where, char *err,
                        size_t errlen)
{
    static const struct { const char *name; enum qty_unit unit; size_t off; } res[] = {
        { "cpu", QTY_MILLI, offsetof(struct priv, cpu) },
        { "memory", QTY_UNITS, offsetof(struct priv, memory) },
        { "pods", QTY_UNITS, offsetof(struct priv, pods) },
    };
    json_t *cap = json_object_get(node, "capacity");
    for (size_t i = 0; i < 3; i++) {
        const char *s = json_string_value(json_object_get(cap, res[i].name));
        int64_t v;
        if (!s)
            continue;
        if (qty_parse(s, res[i].unit, &v) < 0 || qty_add((int64_t *)((char *)p + res[i].off),
                                                         v) < 0)
            return fail(err, errlen, "%scapacity.%s: \"%.40s\" is out of range", where,
                        res[i].name, s);
    }
    return 0;
}

/* roles ["etcd","worker"] as "etcd,worker". */
static int roles_text(struct priv *p, const json_t *node, const char *where, const char **out,
                      char *err, size_t errlen)
{
    json_t *a = json_object_get(node, "roles"), *r;
    size_t i, len = 0;
    *out = "";
    if (!a || json_is_null(a))
        return 0;
    if (!json_is_array(a) || json_array_size(a) > 16)
        return fail(err, errlen, "%sroles must be an array of at most 16 strings", where);
    json_array_foreach(a, i, r) {
        const char *s = json_string_value(r);
        if (!s || !*s || json_string_length(r) > 63 || strchr(s, ','))
            return fail(err, errlen, "%sroles[%zu] must be a role name", where, i);
        len += json_string_length(r) + 1;
    }
    char *t = calloc(1, len + 1);
    size_t at = 0;
    if (!t)
        return fail(err, errlen, "out of memory");
    json_array_foreach(a, i, r) {   /* len counted every name and comma */
        if (i)
            t[at++] = ',';
        memcpy(t + at, json_string_value(r), json_string_length(r));
        at += json_string_length(r);
    }
    *out = keep(p, t);
    return *out ? 0 : fail(err, errlen, "out of memory");
}

static int addresses(struct priv *p, const json_t *node, const char *where, const char **out,
                     char *err, size_t errlen)
{
    json_t *a = json_object_get(node, "addresses"), *e;
    size_t i;
    *out = "[]";
    if (!a || json_is_null(a))
        return 0;
    if (!json_is_array(a) || json_array_size(a) > 64)
        return fail(err, errlen, "%saddresses must be an array of at most 64", where);
    json_array_foreach(a, i, e) {
        const char *t, *ad;
        char w[340];
        snprintf(w, sizeof(w), "%.300saddresses[%zu].", where, i);
        if (!json_is_object(e))
            return fail(err, errlen, "%saddresses[%zu] must be an object", where, i);
        if (get_str(e, "type", true, SHORT_MAX, w, &t, err, errlen) < 0 ||
            get_str(e, "address", true, SHORT_MAX, w, &ad, err, errlen) < 0)
            return -1;
    }
    *out = keep(p, json_dumps(a, JSON_COMPACT));
    return *out ? 0 : fail(err, errlen, "out of memory");
}

static int parse_node(struct priv *p, const json_t *j, size_t i, struct store_report_node *n,
                      char *err, size_t errlen)
{
    char where[300];
    snprintf(where, sizeof(where), "nodes[%zu].", i);
    if (!json_is_object(j))
        return fail(err, errlen, "nodes[%zu] must be an object", i);
    json_t *ready = json_object_get(j, "ready");
    if (ready && !json_is_boolean(ready))
        return fail(err, errlen, "%sready must be a boolean", where);
    n->ready = json_is_true(ready);
    if (get_str(j, "name", true, NAME_MAX_LEN, where, &n->name, err, errlen) < 0 ||
        get_str(j, "kubeletVersion", false, SHORT_MAX, where, &n->kubelet_version, err,
                errlen) < 0)
        return -1;
    if (!n->name[0])
        return fail(err, errlen, "%sname is empty", where);
    snprintf(where, sizeof(where), "node %.253s: ", n->name);
    if (roles_text(p, j, where, &n->roles, err, errlen) < 0 ||
        addresses(p, j, where, &n->addresses_json, err, errlen) < 0 ||
        quantities(p, j, "capacity", where, &n->capacity_json, err, errlen) < 0 ||
        quantities(p, j, "allocatable", where, &n->allocatable_json, err, errlen) < 0)
        return -1;
    return add_capacity(p, j, where, err, errlen);
}

static int parse_nodes(struct priv *p, struct store_report *r, char *err, size_t errlen)
{
    json_t *a = json_object_get(p->root, "nodes"), *j;
    size_t i;
    if (!json_is_array(a))
        return fail(err, errlen, "nodes must be an array");
    if (json_array_size(a) > REPORT_MAX_NODES)
        return fail(err, errlen, "more than %d nodes", REPORT_MAX_NODES);
    p->nodes = calloc(json_array_size(a) + 1, sizeof(*p->nodes));
    if (!p->nodes)
        return fail(err, errlen, "out of memory");
    json_array_foreach(a, i, j) {
        /* A name listed twice is caught by the nodes table's key. */
        if (parse_node(p, j, i, &p->nodes[i], err, errlen) < 0)
            return -1;
    }
    r->nodes = p->nodes;
    r->nnodes = json_array_size(a);
    return 0;
}

static int parse_event(const json_t *j, size_t i, struct store_report_event *e, char *err,
                       size_t errlen)
{
    char where[64];
    const char *time;
    snprintf(where, sizeof(where), "events[%zu].", i);
    if (!json_is_object(j))
        return fail(err, errlen, "events[%zu] must be an object", i);
    json_t *count = json_object_get(j, "count");
    if (count && !json_is_null(count) && !json_is_integer(count))
        return fail(err, errlen, "%scount must be an integer", where);
    if (get_str(j, "type", true, SHORT_MAX, where, &e->type, err, errlen) < 0 ||
        get_str(j, "reason", true, SHORT_MAX, where, &e->reason, err, errlen) < 0 ||
        get_str(j, "message", true, TEXT_MAX, where, &e->message, err, errlen) < 0 ||
        get_str(j, "object", false, TEXT_MAX, where, &e->object, err, errlen) < 0 ||
        get_str(j, "time", true, 64, where, &time, err, errlen) < 0)
        return -1;
    if (!e->object)
        e->object = "";
    e->time = report_parse_time(time);
    if (e->time < 0)
        return fail(err, errlen, "%stime \"%.40s\" is not an RFC 3339 time", where, time);
    return 0;
}

static int parse_events(struct priv *p, struct store_report *r, char *err, size_t errlen)
{
    json_t *a = json_object_get(p->root, "events"), *j;
    size_t i;
    if (!a || json_is_null(a))
        return 0;
    if (!json_is_array(a))
        return fail(err, errlen, "events must be an array");
    size_t n = json_array_size(a) < REPORT_MAX_EVENTS ? json_array_size(a) : REPORT_MAX_EVENTS;
    p->events = calloc(n + 1, sizeof(*p->events));
    if (!p->events)
        return fail(err, errlen, "out of memory");
    json_array_foreach(a, i, j) {
        if (i >= n)
            break;
        if (parse_event(j, i, &p->events[i], err, errlen) < 0)
            return -1;
    }
    r->events = p->events;
    r->nevents = n;
    return 0;
}

/* The cluster's capacity: the sums as Kubernetes would write them. */
static int capacity_text(struct priv *p, struct store_report *r, char *err, size_t errlen)
{
    char cpu[QTY_FMT_MAX], mem[QTY_FMT_MAX], pods[QTY_FMT_MAX];
    qty_format_cpu(p->cpu, cpu, sizeof(cpu));
    qty_format_bytes(p->memory, mem, sizeof(mem));
    qty_format_count(p->pods, pods, sizeof(pods));
    json_t *j = json_pack("{s:s,s:s,s:s}", "cpu", cpu, "memory", mem, "pods", pods);
    r->capacity_json = keep(p, j ? json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS) : NULL);
    json_decref(j);
    return r->capacity_json ? 0 : fail(err, errlen, "out of memory");
}

static int conditions_text(struct priv *p, struct store_report *r, const char *health,
                           char *err, size_t errlen)
{
    char msg[REPORT_HEALTH_MAX + 1];
    size_t n = health ? strlen(health) : 0;
    if (n > REPORT_HEALTH_MAX)
        n = REPORT_HEALTH_MAX;
    /* Cutting may split a UTF-8 sequence: back off to a boundary. */
    while (n > 0 && n < (health ? strlen(health) : 0) && ((unsigned char)health[n] & 0xc0) == 0x80)
        n--;
    memcpy(msg, health ? health : "", n);
    msg[n] = '\0';
    json_t *j = json_pack("[{s:s,s:s,s:s}]", "type", "Ready", "status",
                          r->healthy ? "True" : "False", "message", msg);
    r->conditions_json = keep(p, j ? json_dumps(j, JSON_COMPACT) : NULL);
    json_decref(j);
    return r->conditions_json ? 0 : fail(err, errlen, "out of memory");
}

static int parse_root(struct priv *p, struct store_report *r, char *err, size_t errlen)
{
    const char *health;
    json_t *healthy = json_object_get(p->root, "healthy");
    if (!json_is_object(p->root))
        return fail(err, errlen, "the report must be a JSON object");
    if (!json_is_boolean(healthy))
        return fail(err, errlen, "healthy must be a boolean");
    r->healthy = json_is_true(healthy);
    if (get_str(p->root, "kubernetesVersion", true, SHORT_MAX, "", &r->kubernetes_version,
                err, errlen) < 0 ||
        get_str(p->root, "health", false, TEXT_MAX, "", &health, err, errlen) < 0)
        return -1;
    if (parse_nodes(p, r, err, errlen) < 0 || parse_events(p, r, err, errlen) < 0 ||
        capacity_text(p, r, err, errlen) < 0)
        return -1;
    return conditions_text(p, r, health, err, errlen);
}

int report_doc_parse(const uint8_t *buf, size_t len, struct report_doc **out, char *err,
                     size_t errlen)
{
    json_error_t je;
    *out = NULL;
    if (len > REPORT_MAX_DOC)
        return fail(err, errlen, "the report is larger than %u bytes", REPORT_MAX_DOC);
    struct report_doc *d = calloc(1, sizeof(*d));
    struct priv *p = calloc(1, sizeof(*p));
    if (!d || !p) {
        free(d);
        free(p);
        return fail(err, errlen, "out of memory");
    }
    d->priv = p;
    p->root = json_loadb((const char *)buf, len, JSON_REJECT_DUPLICATES, &je);
    if (!p->root) {
        fail(err, errlen, "not JSON: %s at line %d", je.text, je.line);
        report_doc_free(d);
        return -1;
    }
    if (parse_root(p, &d->r, err, errlen) < 0) {
        report_doc_free(d);
        return -1;
    }
    *out = d;
    return 0;
}

void report_doc_free(struct report_doc *d)
{
    if (!d)
        return;
    struct priv *p = d->priv;
    if (p) {
        for (size_t i = 0; i < p->ntexts; i++)
            free(p->texts[i]);
        free(p->texts);
        free(p->nodes);
        free(p->events);
        json_decref(p->root);
        free(p);
    }
    free(d);
}

/* n digits at s as a number; -1 if any is not a digit. */
static int digits(const char *s, int n)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    return v;
}

int64_t report_parse_time(const char *s)
{
    if (!s || strlen(s) < 20 || s[4] != '-' || s[7] != '-' || (s[10] != 'T' && s[10] != 't') ||
        s[13] != ':' || s[16] != ':')
        return -1;
    struct tm tm = { 0 };
    int y = digits(s, 4), mo = digits(s + 5, 2), d = digits(s + 8, 2);
    int h = digits(s + 11, 2), mi = digits(s + 14, 2), se = digits(s + 17, 2);
    if (y < 1970 || mo < 1 || mo > 12 || d < 1 || d > 31 || h < 0 || h > 23 || mi < 0 ||
        mi > 59 || se < 0 || se > 60)
        return -1;
    const char *p = s + 19;
    int64_t ms = 0, scale = 100;
    if (*p == '.') {
        if (p[1] < '0' || p[1] > '9')
            return -1;
        for (p++; *p >= '0' && *p <= '9'; p++, scale /= 10)
            ms += scale * (*p - '0');
    }
    int off = 0;
    if (*p == 'Z' || *p == 'z') {
        p++;
    } else if ((*p == '+' || *p == '-') && strlen(p) == 6 && p[3] == ':') {
        int oh = digits(p + 1, 2), om = digits(p + 4, 2);
        if (oh < 0 || oh > 23 || om < 0 || om > 59)
            return -1;
        off = (*p == '+' ? 1 : -1) * (oh * 60 + om) * 60;
        p += 6;
    } else {
        return -1;
    }
    if (*p)
        return -1;
    tm.tm_year = y - 1900;
    tm.tm_mon = mo - 1;
    tm.tm_mday = d;
    tm.tm_hour = h;
    tm.tm_min = mi;
    tm.tm_sec = se;
    time_t t = timegm(&tm);
    if (t == (time_t)-1)
        return -1;
    return ((int64_t)t - off) * 1000 + ms;
}
