/*
 * applier: server-side apply of what drover-server sends. See applier.h.
 *
 * A job (one stream) reads lines into a queue of objects and applies the
 * queue's head, one kube-apiserver call at a time: discovery if the kind is
 * not cached, GET, PATCH. Each finished object adds a result line to the
 * outgoing buffer. When the server has closed its side and the queue is
 * empty, the job sends what is left and closes; the stream is over when
 * both sides have closed. If the stream dies meanwhile, the call in flight
 * is cancelled and the objects not reached are not applied.
 */
#include "common/applier.h"

#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/applydoc.h"
#include "common/hmap.h"
#include "common/log.h"
#include "proto/frame.h"

#define AP_MAX_LINE (APPLYDOC_MAX_OBJECT + 1024)
#define AP_MAX_ID 256           /* user and group names */
#define AP_MAX_GROUPS 16
#define AP_PATH_MAX 1024

struct applier {
    struct loop *loop;
    struct kubeclient *kc;
    struct hmap *gvs;           /* "apps/v1" -> struct gv */
};

/* One group/version's resources, as discovery listed them. */
struct gv {
    uint64_t at;                /* loop ms it was fetched */
    json_t *resources;          /* the APIResourceList's resources (owned) */
};

enum step { STEP_NONE, STEP_DISCOVER, STEP_GET, STEP_PATCH };

/* An object waiting its turn (NULL obj: a line that was not an object). */
struct qitem {
    json_t *obj;
    size_t size;
    struct qitem *next;
};

struct job {
    struct applier *ap;
    struct tun_stream *s;
    char headers[AP_MAX_GROUPS * (AP_MAX_ID + 24) + AP_MAX_ID + 24];
    char user[AP_MAX_ID];
    struct kc_lines lines;
    struct qitem *head, *tail;  /* objects waiting, in order */
    size_t queued_bytes, credit_held;
    bool eof;                   /* the server sent everything */
    bool closing;               /* our CLOSE is due once out is sent */
    /* the object being applied */
    bool busy;
    json_t *cur;
    enum step step;
    struct kc_req *req;
    char path[AP_PATH_MAX];
    bool rediscovered, before_known, existed;
    char before_rv[128];
    /* results not yet sent */
    char *out;
    size_t out_len, out_off, out_alloc;
    unsigned long n, failed;
};

/* ---- the discovery cache ---- */

static void gv_free(struct gv *g)
{
    if (g) {
        json_decref(g->resources);
        free(g);
    }
}

static void gv_free_each(const char *key, void *val, void *ud)
{
    (void)key;
    (void)ud;
    gv_free(val);
}

struct applier *applier_new(struct loop *l, struct kubeclient *kc)
{
    struct applier *ap = calloc(1, sizeof(*ap));
    if (!ap || !(ap->gvs = hmap_new())) {
        free(ap);
        return NULL;
    }
    ap->loop = l;
    ap->kc = kc;
    return ap;
}

void applier_free(struct applier *ap)
{
    if (!ap)
        return;
    hmap_each(ap->gvs, gv_free_each, NULL);
    hmap_free(ap->gvs);
    free(ap);
}

/* The resource of kind in the cached list of its group/version: its plural
 * name, and whether it is namespaced. NULL if not cached (or stale) or not
 * there. */
static const char *gv_lookup(struct applier *ap, const char *av, const char *kind,
                             bool *namespaced, bool *cached)
{
    struct gv *g = hmap_get(ap->gvs, av);
    *cached = g && loop_now_ms(ap->loop) - g->at < APPLIER_DISCOVERY_TTL_MS;
    if (!*cached)
        return NULL;
    size_t i;
    json_t *r;
    json_array_foreach(g->resources, i, r) {
        const char *name = json_string_value(json_object_get(r, "name"));
        const char *k = json_string_value(json_object_get(r, "kind"));
        /* "deployments/scale" and the like are subresources, not kinds. */
        if (name && k && !strchr(name, '/') && strcmp(k, kind) == 0) {
            *namespaced = json_is_true(json_object_get(r, "namespaced"));
            return name;
        }
    }
    return NULL;
}

static void gv_store(struct applier *ap, const char *av, json_t *resources)
{
    struct gv *g = calloc(1, sizeof(*g));
    if (!g)
        return;
    g->at = loop_now_ms(ap->loop);
    g->resources = json_is_array(resources) ? json_incref(resources) : json_array();
    void *old = hmap_put(ap->gvs, av, g);
    if (old == g)
        gv_free(g);
    else
        gv_free(old);
}

/* ---- results ---- */

static int out_append(struct job *j, const char *s, size_t n)
{
    /* Drop what was sent, so the buffer holds only what waits (bounded by
     * APPLIER_OUT_SOFT plus one result, as pump() stops meanwhile). */
    if (j->out_off) {
        memmove(j->out, j->out + j->out_off, j->out_len - j->out_off);
        j->out_len -= j->out_off;
        j->out_off = 0;
    }
    if (n + 1 > j->out_alloc - j->out_len) {
        size_t want = j->out_len + n + 1 + 4096;
        char *o = realloc(j->out, want);
        if (!o)
            return -1;
        j->out = o;
        j->out_alloc = want;
    }
    memcpy(j->out + j->out_len, s, n);
    j->out[j->out_len + n] = '\n';
    j->out_len += n + 1;
    return 0;
}

static const char *cur_str(const struct job *j, const char *field)
{
    json_t *o = j->cur;
    if (strcmp(field, "name") == 0 || strcmp(field, "namespace") == 0)
        o = json_object_get(o, "metadata");
    return json_string_value(json_object_get(o, field));
}

/* Ends the current object with its result. */
static void result(struct job *j, const char *outcome, int status, const char *msg)
{
    const char *ns = cur_str(j, "namespace");
    json_t *r = json_pack("{s:s?,s:s?,s:s?}", "apiVersion", cur_str(j, "apiVersion"),
                          "kind", cur_str(j, "kind"), "name", cur_str(j, "name"));
    if (r && ns && *ns)
        json_object_set_new(r, "namespace", json_string(ns));
    if (r) {
        json_object_set_new(r, "outcome", json_string(outcome));
        json_object_set_new(r, "status", json_integer(status));
    }
    if (r && msg)
        json_object_set_new(r, "message", json_string(msg));
    char *line = r ? json_dumps(r, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
    json_decref(r);
    if (!line || out_append(j, line, strlen(line)) < 0)
        log_warn("apply: out of memory for a result");
    if (strcmp(outcome, "failed") == 0) {
        j->failed++;
        log_info("apply: %s %s: %s (%d %s)", cur_str(j, "kind") ? cur_str(j, "kind") : "?",
                 cur_str(j, "name") ? cur_str(j, "name") : "?", outcome, status,
                 msg ? msg : "");
    }
    free(line);
    j->n++;
    json_decref(j->cur);
    j->cur = NULL;
    j->busy = false;
    j->step = STEP_NONE;
}

/* ---- the job's life ---- */

static void job_free(struct job *j)
{
    kubeclient_cancel(j->req);
    kc_lines_free(&j->lines);
    while (j->head) {
        struct qitem *q = j->head;
        j->head = q->next;
        json_decref(q->obj);
        free(q);
    }
    json_decref(j->cur);
    free(j->out);
    free(j);
}

static void pump(struct job *j);

/* Sends what it can of out; true if all of it went. false also when the
 * job is gone (*gone set). */
static bool send_out(struct job *j, bool *gone)
{
    *gone = false;
    while (j->out_off < j->out_len) {
        ssize_t n = tun_stream_send(j->s, j->out + j->out_off, j->out_len - j->out_off);
        if (n < 0) {
            tun_stream_reset(j->s, TUN_RESET_INTERNAL, "cannot send results");
            job_free(j);
            *gone = true;
            return false;
        }
        if (n == 0)
            return false;       /* on_writable resumes */
        j->out_off += (size_t)n;
    }
    return true;
}

/* Returns held credit once the queue has room again. */
static void release_credit(struct job *j)
{
    if (j->credit_held && j->queued_bytes < APPLIER_QUEUE_SOFT) {
        size_t n = j->credit_held;
        j->credit_held = 0;
        tun_stream_consumed(j->s, n);
    }
}

/* ---- applying one object ---- */

static void call_done(void *ud, int status, json_t *body, const char *err);

/* Starts the call of the current step; false (with a result) if it cannot. */
static bool call(struct job *j, const char *method, const char *path, const json_t *body,
                 bool as_user)
{
    struct kc_extra x = {
        .content_type = body ? "application/apply-patch+yaml" : NULL,
        .headers = as_user ? j->headers : NULL,
    };
    j->req = kubeclient_request_ex(j->ap->kc, method, path, body, &x, call_done, j);
    if (!j->req)
        result(j, "failed", 503, "cannot reach the kube-apiserver");
    return j->req != NULL;
}

static bool discover(struct job *j)
{
    const char *av = cur_str(j, "apiVersion");
    char path[AP_PATH_MAX];
    snprintf(path, sizeof(path), "%s%s", strchr(av, '/') ? "/apis/" : "/api/", av);
    j->step = STEP_DISCOVER;
    j->rediscovered = true;
    return call(j, "GET", path, NULL, false);
}

/* Knows the resource: builds the object's path and reads it. */
static bool get_object(struct job *j, const char *resource, bool namespaced)
{
    const char *av = cur_str(j, "apiVersion"), *name = cur_str(j, "name");
    json_t *meta = json_object_get(j->cur, "metadata");
    const char *ns = cur_str(j, "namespace");
    char prefix[600];
    snprintf(prefix, sizeof(prefix), "%s%s", strchr(av, '/') ? "/apis/" : "/api/", av);
    if (namespaced) {
        if (!ns || !*ns) {
            json_object_set_new(meta, "namespace", json_string("default"));
            ns = "default";
        }
        snprintf(j->path, sizeof(j->path), "%s/namespaces/%s/%s/%s", prefix, ns, resource,
                 name);
    } else {
        json_object_del(meta, "namespace");
        snprintf(j->path, sizeof(j->path), "%s/%s/%s", prefix, resource, name);
    }
    j->step = STEP_GET;
    return call(j, "GET", j->path, NULL, true);
}

/* Finds the resource (cache, else discovery) and goes on. false when the
 * object is done already (its result written). */
static bool resolve(struct job *j)
{
    bool namespaced = false, cached;
    const char *av = cur_str(j, "apiVersion"), *kind = cur_str(j, "kind");
    const char *res = gv_lookup(j->ap, av, kind, &namespaced, &cached);
    if (res) {
        char r[256];
        snprintf(r, sizeof(r), "%s", res);  /* the cache may change under the call */
        return get_object(j, r, namespaced);
    }
    if (!cached || !j->rediscovered)
        return discover(j);
    char msg[300];
    snprintf(msg, sizeof(msg), "the cluster has no kind \"%.60s\" in %.100s", kind, av);
    result(j, "failed", 404, msg);
    return false;
}

static bool patch(struct job *j)
{
    char path[AP_PATH_MAX + 64];
    snprintf(path, sizeof(path), "%s?fieldManager=" APPLIER_FIELD_MANAGER "&force=true",
             j->path);
    j->step = STEP_PATCH;
    return call(j, "PATCH", path, j->cur, true);
}

static const char *rv_of(const json_t *obj)
{
    return json_string_value(json_object_get(json_object_get(obj, "metadata"),
                                             "resourceVersion"));
}

static void patched(struct job *j, int status, json_t *body, const char *err)
{
    if (status == 201 || (status == 200 && j->before_known && !j->existed)) {
        result(j, "created", status, NULL);
    } else if (status == 200) {
        const char *rv = rv_of(body);
        bool same = j->before_known && rv && strcmp(rv, j->before_rv) == 0;
        result(j, same ? "unchanged" : "configured", status, NULL);
    } else {
        result(j, "failed", status ? status : 502, err ? err : "failed");
    }
}

static void call_done(void *ud, int status, json_t *body, const char *err)
{
    struct job *j = ud;
    bool started = false;
    j->req = NULL;
    switch (j->step) {
    case STEP_DISCOVER:
        if (status == 200 || status == 404)
            gv_store(j->ap, cur_str(j, "apiVersion"), json_object_get(body, "resources"));
        if (status == 200 || status == 404)
            started = resolve(j);
        else
            result(j, "failed", status ? status : 502, err ? err : "discovery failed");
        break;
    case STEP_GET: {
        const char *rv = status == 200 ? rv_of(body) : NULL;
        j->before_known = status == 404 || (status == 200 && rv);
        j->existed = status == 200;
        snprintf(j->before_rv, sizeof(j->before_rv), "%s", rv ? rv : "");
        /* Whatever the GET said (a user may write what it may not read),
         * the apply itself decides. */
        started = patch(j);
        break;
    }
    case STEP_PATCH:
        patched(j, status, body, err);
        break;
    default:
        break;
    }
    if (!started)
        pump(j);
}

/* Takes the queue's head as the current object; true if a call started. */
static bool start_next(struct job *j)
{
    struct qitem *q = j->head;
    j->head = q->next;
    if (!j->head)
        j->tail = NULL;
    j->busy = true;
    j->cur = q->obj;
    j->queued_bytes -= q->size;
    free(q);
    release_credit(j);
    j->rediscovered = j->before_known = j->existed = false;
    const char *why = applydoc_check(j->cur);
    if (why) {
        result(j, "failed", 400, why);
        return false;
    }
    return resolve(j);
}

/*
 * Moves the job on: starts the next object if nothing is in flight and the
 * results are not piling up, and closes once everything is done.
 */
static void pump(struct job *j)
{
    bool gone;
    for (;;) {
        if (!send_out(j, &gone) && (gone || j->out_len - j->out_off >= APPLIER_OUT_SOFT))
            return;
        if (j->busy)
            return;                 /* a call is in flight */
        if (!j->head)
            break;
        if (start_next(j))
            return;
    }
    if (!j->eof || j->out_off < j->out_len || j->closing)
        return;
    j->closing = true;
    if (j->n)
        log_info("apply: %lu objects as %s, %lu failed", j->n, j->user, j->failed);
    /* The server closed first, so this normally ends the stream. */
    if (tun_stream_close(j->s) == 1)
        job_free(j);
}

/* ---- the stream ---- */

static int on_line(void *ud, const char *line, size_t len)
{
    struct job *j = ud;
    struct qitem *q = calloc(1, sizeof(*q));
    if (!q)
        return 1;
    /* Not an object: still answered in its turn, by a failed result. */
    q->obj = json_loadb(line, len, JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, NULL);
    q->size = len;
    if (j->tail)
        j->tail->next = q;
    else
        j->head = q;
    j->tail = q;
    j->queued_bytes += len;
    return 0;
}

static void s_data(struct tun_stream *s, const uint8_t *p, size_t n)
{
    struct job *j = tun_stream_ud(s);
    int r = kc_lines_feed(&j->lines, p, n, on_line, j);
    if (r != 0) {
        tun_stream_reset(s, r < 0 ? TUN_RESET_LIMIT : TUN_RESET_INTERNAL,
                         r < 0 ? "an object is too large" : "out of memory");
        job_free(j);
        return;
    }
    if (j->queued_bytes < APPLIER_QUEUE_SOFT)
        tun_stream_consumed(s, n);
    else
        j->credit_held += n;    /* the server waits until we catch up */
    pump(j);
}

static void s_eof(struct tun_stream *s)
{
    struct job *j = tun_stream_ud(s);
    j->eof = true;
    if (j->lines.len && on_line(j, j->lines.buf, j->lines.len) == 0)
        j->lines.len = 0;       /* a last line without its newline */
    pump(j);
}

static void s_writable(struct tun_stream *s)
{
    pump(tun_stream_ud(s));
}

static void s_end(struct tun_stream *s, uint16_t code, const char *reason)
{
    struct job *j = tun_stream_ud(s);
    if (code)
        log_info("apply: the stream ended early (%s: %s); %lu objects applied",
                 tun_reset_code_name(code), reason ? reason : "", j->n);
    job_free(j);
}

static const struct tun_stream_ops job_ops = {
    .on_data = s_data,
    .on_eof = s_eof,
    .on_writable = s_writable,
    .on_end = s_end,
};

/* Header values must be one printable line. */
static bool id_ok(const char *s)
{
    size_t n = s ? strlen(s) : 0;
    if (n == 0 || n >= AP_MAX_ID)
        return false;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
            return false;
    return true;
}

/* Impersonate-* header lines for meta's identity into j; -1 if malformed. */
static int identity(struct job *j, const uint8_t *meta, size_t len)
{
    json_t *m = json_loadb((const char *)meta, len, 0, NULL);
    const char *user = json_string_value(json_object_get(m, "user"));
    json_t *groups = json_object_get(m, "groups");
    int rc = -1;
    size_t used = 0, cap = sizeof(j->headers);
    if (!id_ok(user) || (groups && (!json_is_array(groups) ||
                                    json_array_size(groups) > AP_MAX_GROUPS)))
        goto out;
    snprintf(j->user, sizeof(j->user), "%s", user);
    used = (size_t)snprintf(j->headers, cap, "Impersonate-User: %s\r\n", user);
    /* The buffer fits a longest user and AP_MAX_GROUPS longest groups; the
     * check keeps that true if the limits ever change. */
    for (size_t i = 0; i < json_array_size(groups); i++) {
        const char *g = json_string_value(json_array_get(groups, i));
        if (!id_ok(g) || used >= cap)
            goto out;
        used += (size_t)snprintf(j->headers + used, cap - used, "Impersonate-Group: %s\r\n", g);
    }
    rc = used < cap ? 0 : -1;
out:
    json_decref(m);
    return rc;
}

void applier_serve(struct applier *ap, struct tun_stream *s, const uint8_t *meta,
                   size_t meta_len)
{
    struct job *j = calloc(1, sizeof(*j));
    if (!j) {
        tun_stream_reset(s, TUN_RESET_INTERNAL, "out of memory");
        return;
    }
    if (identity(j, meta, meta_len) < 0) {
        job_free(j);
        tun_stream_reset(s, TUN_RESET_PROTOCOL, "apply needs {\"user\":..,\"groups\":[..]}");
        return;
    }
    j->ap = ap;
    j->s = s;
    j->lines.cap = AP_MAX_LINE;
    if (tun_stream_accept(s, &job_ops, j) < 0)
        job_free(j);
}
