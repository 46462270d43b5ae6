/*
 * reporter: gathering and sending cluster reports. See reporter.h.
 *
 * A report is a cycle: four GETs in parallel (/version, /readyz, nodes,
 * Warning events), then one "report" stream that carries the document and
 * brings back the answer. The node list is read afresh each time rather than
 * kept from the watch: the watch only says *when* to report, so a missed
 * event costs at most 30 s of staleness, never a wrong picture.
 */
#include "common/reporter.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "proto/frame.h"

#define RP_MAX_ANSWER (64 * 1024)
#define RP_MAX_HEALTH 200
#define RP_STALL_MS 45000       /* a whole cycle; each request has 30 s */

enum { RP_VERSION, RP_READYZ, RP_NODES, RP_EVENTS, RP_NREQ };

static const char *const rp_paths[RP_NREQ] = {
    "/version", "/readyz", "/api/v1/nodes",
    "/api/v1/events?fieldSelector=type%3DWarning&limit=500",
};

struct reporter;

struct rp_slot {
    struct reporter *r;
    struct kc_req *req;
    int status;
    json_t *body;
    char err[RP_MAX_HEALTH + 1];
};

struct reporter {
    struct loop *loop;
    struct kubeclient *kc;
    struct tunnel *t;
    struct kc_watch *watch;
    bool synced;                /* the watch's first list came (the start report covers it) */
    struct loop_timer period, debounce, stall;
    bool busy, again;           /* a cycle is running; run another after it */
    struct rp_slot slot[RP_NREQ];
    int pending;
    struct tun_stream *s;
    char *doc;
    size_t doc_len, doc_off;
    char answer[RP_MAX_ANSWER];
    size_t ans_len;
    char last_err[300];         /* what was last logged; "" while healthy */
};

static void trigger(struct reporter *r);

/* ---- the document ---- */

/* Control characters and non-ASCII out, at most cap bytes: /readyz text is
 * the apiserver's and must become valid JSON. */
static json_t *clean_text(const char *s, size_t cap)
{
    char buf[RP_MAX_HEALTH + 1];
    size_t n = 0;
    if (cap > RP_MAX_HEALTH)
        cap = RP_MAX_HEALTH;
    while (*s == ' ' || *s == '\n' || *s == '\r' || *s == '\t')
        s++;
    for (; *s && n < cap; s++)
        buf[n++] = (*s >= 0x20 && *s < 0x7f) || *s == '\n' ? *s : '?';
    while (n && (buf[n - 1] == ' ' || buf[n - 1] == '\n'))
        n--;
    return json_stringn(buf, n);
}

static json_t *node_roles(const json_t *labels)
{
    static const char prefix[] = "node-role.kubernetes.io/";
    json_t *roles = json_array();
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)labels, k, v) {
        if (strncmp(k, prefix, sizeof(prefix) - 1) == 0 && k[sizeof(prefix) - 1])
            json_array_append_new(roles, json_string(k + sizeof(prefix) - 1));
    }
    return roles;
}

static bool node_ready(const json_t *conds)
{
    size_t i;
    json_t *c;
    json_array_foreach((json_t *)conds, i, c) {
        const char *type = json_string_value(json_object_get(c, "type"));
        const char *st = json_string_value(json_object_get(c, "status"));
        if (type && strcmp(type, "Ready") == 0)
            return st && strcmp(st, "True") == 0;
    }
    return false;
}

/* A copy of obj, or an empty object when it is not one. */
static json_t *obj_copy(const json_t *obj)
{
    return json_is_object(obj) ? json_deep_copy(obj) : json_object();
}

static json_t *node_doc(const json_t *n)
{
    json_t *md = json_object_get(n, "metadata"), *st = json_object_get(n, "status");
    const char *kubelet = json_string_value(json_object_get(json_object_get(st, "nodeInfo"),
                                                            "kubeletVersion"));
    json_t *addrs = json_array();
    size_t i;
    json_t *a;
    json_array_foreach(json_object_get(st, "addresses"), i, a) {
        const char *type = json_string_value(json_object_get(a, "type"));
        const char *addr = json_string_value(json_object_get(a, "address"));
        if (type && addr)
            json_array_append_new(addrs, json_pack("{s:s, s:s}", "type", type,
                                                   "address", addr));
    }
    return json_pack("{s:s, s:o, s:s, s:b, s:o, s:o, s:o}",
                     "name", json_string_value(json_object_get(md, "name")) ?: "",
                     "roles", node_roles(json_object_get(md, "labels")),
                     "kubeletVersion", kubelet ? kubelet : "",
                     "ready", node_ready(json_object_get(st, "conditions")),
                     "addresses", addrs,
                     "capacity", obj_copy(json_object_get(st, "capacity")),
                     "allocatable", obj_copy(json_object_get(st, "allocatable")));
}

/* When an event last happened: the newest of the times it may carry. */
static const char *event_time(const json_t *e)
{
    static const char *const keys[] = { "lastTimestamp", "eventTime", "firstTimestamp" };
    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
        const char *t = json_string_value(json_object_get(e, keys[i]));
        if (t && *t)
            return t;
    }
    const char *t = json_string_value(json_object_get(json_object_get(e, "metadata"),
                                                      "creationTimestamp"));
    return t ? t : "";
}

/* RFC 3339 UTC times compare as text; newest first. */
static int newest_first(const void *a, const void *b)
{
    return strcmp(event_time(*(json_t *const *)b), event_time(*(json_t *const *)a));
}

static json_t *event_doc(const json_t *e)
{
    json_t *io = json_object_get(e, "involvedObject");
    const char *kind = json_string_value(json_object_get(io, "kind"));
    const char *ns = json_string_value(json_object_get(io, "namespace"));
    const char *name = json_string_value(json_object_get(io, "name"));
    char obj[600];
    if (ns && *ns)
        snprintf(obj, sizeof(obj), "%s/%s/%s", kind ? kind : "", ns, name ? name : "");
    else
        snprintf(obj, sizeof(obj), "%s/%s", kind ? kind : "", name ? name : "");
    json_int_t count = json_integer_value(json_object_get(e, "count"));
    const char *type = json_string_value(json_object_get(e, "type"));
    const char *reason = json_string_value(json_object_get(e, "reason"));
    const char *msg = json_string_value(json_object_get(e, "message"));
    return json_pack("{s:s, s:s, s:s, s:s, s:I, s:s}", "type", type ? type : "Warning",
                     "reason", reason ? reason : "", "message", msg ? msg : "",
                     "object", obj, "count", count > 0 ? count : 1, "time", event_time(e));
}

static json_t *events_doc(const json_t *list)
{
    json_t *items = json_object_get(list, "items"), *out = json_array();
    size_t n = json_array_size(items);
    json_t **v = n ? calloc(n, sizeof(*v)) : NULL;
    if (n && !v)
        return out;
    for (size_t i = 0; i < n; i++)
        v[i] = json_array_get(items, i);
    qsort(v, n, sizeof(*v), newest_first);
    for (size_t i = 0; i < n && i < REPORTER_MAX_EVENTS; i++)
        json_array_append_new(out, event_doc(v[i]));
    free(v);
    return out;
}

json_t *reporter_doc(const json_t *version, int ready_status, const char *ready_text,
                     const json_t *nodes, const json_t *events)
{
    const char *v = json_string_value(json_object_get(version, "gitVersion"));
    bool healthy = ready_status == 200;
    json_t *health = healthy ? json_string("ok")
                   : clean_text(ready_text && *ready_text ? ready_text : "readyz failed",
                                RP_MAX_HEALTH);
    json_t *ns = json_array();
    size_t i;
    json_t *n;
    json_array_foreach(json_object_get(nodes, "items"), i, n)
        json_array_append_new(ns, node_doc(n));
    return json_pack("{s:s, s:b, s:o, s:o, s:o}", "kubernetesVersion", v ? v : "",
                     "healthy", healthy, "health", health, "nodes", ns,
                     "events", events_doc(events));
}

/* ---- outcome ---- */

static void cycle_end(struct reporter *r)
{
    loop_timer_stop(r->loop, &r->stall);
    for (int i = 0; i < RP_NREQ; i++) {
        json_decref(r->slot[i].body);
        r->slot[i].body = NULL;
    }
    free(r->doc);
    r->doc = NULL;
    r->busy = false;
    if (r->again) {
        r->again = false;
        trigger(r);
    }
}

/* Logs a failure when it is new (not the same as the last one logged). */
static void failed(struct reporter *r, const char *why)
{
    if (strcmp(r->last_err, why) != 0) {
        log_warn("cluster report: %s", why);
        snprintf(r->last_err, sizeof(r->last_err), "%s", why);
    }
    cycle_end(r);
}

static void succeeded(struct reporter *r)
{
    if (r->last_err[0])
        log_info("cluster reports reach the server again");
    r->last_err[0] = '\0';
    cycle_end(r);
}

/* ---- the stream ---- */

static void send_doc(struct reporter *r)
{
    while (r->doc_off < r->doc_len) {
        ssize_t n = tun_stream_send(r->s, r->doc + r->doc_off, r->doc_len - r->doc_off);
        if (n <= 0) {
            if (n < 0) {
                tun_stream_reset(r->s, TUN_RESET_CANCEL, "cannot send");
                r->s = NULL;
                failed(r, "the report stream failed");
            }
            return;
        }
        r->doc_off += (size_t)n;
    }
    if (tun_stream_close(r->s) == 1)
        r->s = NULL;
}

static void s_data(struct tun_stream *s, const uint8_t *p, size_t n)
{
    struct reporter *r = tun_stream_ud(s);
    if (n > sizeof(r->answer) - r->ans_len) {
        tun_stream_reset(s, TUN_RESET_LIMIT, "limit");
        r->s = NULL;
        failed(r, "the server's answer to the report is too large");
        return;
    }
    memcpy(r->answer + r->ans_len, p, n);
    r->ans_len += n;
    tun_stream_consumed(s, n);
}

static void s_eof(struct tun_stream *s)
{
    struct reporter *r = tun_stream_ud(s);
    json_t *a = json_loadb(r->answer, r->ans_len, 0, NULL);
    char why[300];
    bool ok = json_is_true(json_object_get(a, "ok"));
    const char *err = json_string_value(json_object_get(a, "error"));
    snprintf(why, sizeof(why), "the server refused the report: %s",
             err ? err : "no answer");
    json_decref(a);
    /* It answered before reading everything: nothing more to send. */
    if (r->doc_off < r->doc_len)
        tun_stream_reset(s, TUN_RESET_CANCEL, "answered");
    r->s = NULL;                /* what remains of s (its on_end) is not news */
    if (ok)
        succeeded(r);
    else
        failed(r, why);
}

static void s_writable(struct tun_stream *s)
{
    struct reporter *r = tun_stream_ud(s);
    if (r->doc && r->s == s)
        send_doc(r);
}

static void s_end(struct tun_stream *s, uint16_t code, const char *reason)
{
    struct reporter *r = tun_stream_ud(s);
    if (r->s != s)
        return;
    r->s = NULL;
    char why[300];
    snprintf(why, sizeof(why), "the report stream ended (%u %s) without an answer", code,
             reason ? reason : "");
    failed(r, why);
}

static const struct tun_stream_ops rp_ops = {
    .on_data = s_data,
    .on_eof = s_eof,
    .on_writable = s_writable,
    .on_end = s_end,
};

static void send_report(struct reporter *r)
{
    struct rp_slot *sl = r->slot;
    if (sl[RP_VERSION].status != 200 || sl[RP_NODES].status != 200) {
        struct rp_slot *bad = sl[RP_VERSION].status != 200 ? &sl[RP_VERSION] : &sl[RP_NODES];
        char why[300];
        snprintf(why, sizeof(why), "GET %s: %s", rp_paths[bad - sl], bad->err);
        failed(r, why);
        return;
    }
    json_t *doc = reporter_doc(sl[RP_VERSION].body, sl[RP_READYZ].status, sl[RP_READYZ].err,
                               sl[RP_NODES].body,
                               sl[RP_EVENTS].status == 200 ? sl[RP_EVENTS].body : NULL);
    r->doc = doc ? json_dumps(doc, JSON_COMPACT) : NULL;
    json_decref(doc);
    r->s = r->doc ? tun_stream_open(r->t, "report", NULL, 0, &rp_ops, r) : NULL;
    if (!r->s) {
        failed(r, "cannot open a report stream");
        return;
    }
    r->doc_len = strlen(r->doc);
    r->doc_off = 0;
    r->ans_len = 0;
    send_doc(r);
}

/* ---- gathering ---- */

static void got(void *ud, int status, json_t *body, const char *err)
{
    struct rp_slot *sl = ud;
    struct reporter *r = sl->r;
    sl->req = NULL;
    sl->status = status;
    sl->body = json_incref(body);
    snprintf(sl->err, sizeof(sl->err), "%s", err ? err : "");
    if (--r->pending == 0)
        send_report(r);
}

static void on_stall(struct loop_timer *t)
{
    struct reporter *r = (struct reporter *)((char *)t - offsetof(struct reporter, stall));
    for (int i = 0; i < RP_NREQ; i++) {
        kubeclient_cancel(r->slot[i].req);
        r->slot[i].req = NULL;
    }
    if (r->s)
        tun_stream_reset(r->s, TUN_RESET_CANCEL, "no answer in time");
    r->s = NULL;
    failed(r, "no answer to the report in time");
}

static void on_period(struct loop_timer *t)
{
    trigger((struct reporter *)((char *)t - offsetof(struct reporter, period)));
}

static void on_debounce(struct loop_timer *t)
{
    trigger((struct reporter *)((char *)t - offsetof(struct reporter, debounce)));
}

static void trigger(struct reporter *r)
{
    if (r->busy) {
        r->again = true;
        return;
    }
    r->busy = true;
    loop_timer_start(r->loop, &r->period, REPORTER_PERIOD_MS, on_period);
    loop_timer_start(r->loop, &r->stall, RP_STALL_MS, on_stall);
    r->pending = RP_NREQ;
    for (int i = 0; i < RP_NREQ; i++) {
        r->slot[i].status = 0;
        r->slot[i].req = kubeclient_request(r->kc, "GET", rp_paths[i], NULL, got, &r->slot[i]);
        if (!r->slot[i].req) {
            snprintf(r->slot[i].err, sizeof(r->slot[i].err), "cannot start the request");
            r->pending--;
        }
    }
    if (r->pending == 0)
        send_report(r);
}

static void on_node_event(void *ud, const char *type, json_t *obj)
{
    struct reporter *r = ud;
    (void)obj;
    if (strcmp(type, "SYNC") == 0 && !r->synced) {
        r->synced = true;
        return;
    }
    if (!loop_timer_armed(&r->debounce))
        loop_timer_start(r->loop, &r->debounce, REPORTER_DEBOUNCE_MS, on_debounce);
}

struct reporter *reporter_new(struct loop *l, struct kubeclient *kc, struct tunnel *t)
{
    struct reporter *r = calloc(1, sizeof(*r));
    if (!r)
        return NULL;
    r->loop = l;
    r->kc = kc;
    r->t = t;
    for (int i = 0; i < RP_NREQ; i++)
        r->slot[i].r = r;
    r->watch = kubeclient_watch(kc, "/api/v1/nodes", on_node_event, r);
    if (!r->watch)
        log_warn("cluster report: cannot watch nodes; reporting every %d s only",
                 REPORTER_PERIOD_MS / 1000);
    trigger(r);
    return r;
}

void reporter_free(struct reporter *r)
{
    if (!r)
        return;
    kubeclient_watch_stop(r->watch);
    for (int i = 0; i < RP_NREQ; i++) {
        kubeclient_cancel(r->slot[i].req);
        json_decref(r->slot[i].body);
    }
    if (r->s)
        tun_stream_reset(r->s, TUN_RESET_CANCEL, "agent stopping reports");
    loop_timer_stop(r->loop, &r->period);
    loop_timer_stop(r->loop, &r->debounce);
    loop_timer_stop(r->loop, &r->stall);
    free(r->doc);
    free(r);
}
