/*
 * api_apply: applying objects through the cluster agent. See api_apply.h.
 *
 * A request goes: authorize (token, membership) -> link up? media type? ->
 * read the body -> authorize again (from the /k8s decision cache, so it is
 * cheap; nothing may be kept across hs_read_body, which answers 413 and 408
 * itself) -> parse on a worker -> open the "apply" stream, send one object
 * per line as the window allows, read one result per line -> answer once
 * the stream is over.
 */
#include "server/api_apply.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/applydoc.h"
#include "common/applier.h"
#include "common/kubeclient.h"
#include "common/log.h"
#include "proto/frame.h"
#include "server/server.h"

#define PREFIX "/v3/clusters/"
#define SUFFIX "/apply"

struct apply {
    struct hs_req *r;
    struct tunnels *ts;
    char cluster[64];
    char user[300];             /* drover:<username> */
    enum applydoc_format fmt;
    const uint8_t *body;
    size_t body_len;
    /* parsed on the worker */
    struct applydoc doc;
    char err[400];
    int parsed;                 /* 0, or -1 with err */
    /* the stream */
    struct tun_stream *s;
    size_t next, off;           /* the object being sent, bytes of it sent */
    bool nl_due;                /* its newline is still to go */
    struct kc_lines lines;
    json_t **results;           /* by the object's place in doc (sorted) */
    size_t nresults, result_bytes;
    char broken[300];           /* why the stream's answer is unusable */
};

static unsigned long active;

unsigned long api_apply_active(void)
{
    return active;
}

/* ---- answers ---- */

static void send_json(struct hs_req *r, int status, json_t *j, const char *headers)
{
    char *body = j ? json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
    json_decref(j);
    if (!body) {
        hs_error(r, 503, "ServiceUnavailable", "out of memory");
        return;
    }
    hs_respond(r, status, "application/json", body, strlen(body), headers);
    free(body);
}

static json_t *error_obj(int status, const char *code, const char *msg)
{
    return json_pack("{s:i,s:s,s:s}", "status", status, "code", code, "message", msg);
}

static void fail(struct hs_req *r, int status, const char *code, const char *msg)
{
    send_json(r, status, json_pack("{s:o}", "error", error_obj(status, code, msg)),
              status == 503 ? "Retry-After: 1\r\n" : NULL);
}

static void apply_free(struct apply *a)
{
    active--;
    for (size_t i = 0; a->results && i < a->nresults; i++)
        json_decref(a->results[i]);
    free(a->results);
    applydoc_free(&a->doc);
    kc_lines_free(&a->lines);
    free(a);
}

/* The results in the request's order and what they add up to. */
static json_t *results_json(struct apply *a, size_t *failed, json_t **summary)
{
    json_t *data = json_array();
    size_t n = a->doc.n, counts[4] = { 0 };
    static const char *const names[4] = { "created", "configured", "unchanged", "failed" };
    json_t **by_index = calloc(n ? n : 1, sizeof(*by_index));
    for (size_t i = 0; by_index && i < n; i++)
        by_index[a->doc.objs[i].index] = a->results[i];
    for (size_t i = 0; by_index && data && i < n; i++) {
        if (!by_index[i])
            continue;
        const char *o = json_string_value(json_object_get(by_index[i], "outcome"));
        for (int k = 0; k < 4; k++)
            if (o && strcmp(o, names[k]) == 0)
                counts[k]++;
        json_array_append(data, by_index[i]);
    }
    free(by_index);
    *failed = counts[3];
    *summary = json_pack("{s:I,s:I,s:I,s:I,s:I}", "objects", (json_int_t)n, names[0],
                         (json_int_t)counts[0], names[1], (json_int_t)counts[1], names[2],
                         (json_int_t)counts[2], names[3], (json_int_t)counts[3]);
    return data;
}

/* The stream is over (broken: why it ended early): answer and free. */
static void finish(struct apply *a, int status_if_broken, const char *broken)
{
    size_t failed;
    json_t *summary;
    json_t *data = results_json(a, &failed, &summary);
    json_t *out = json_pack("{s:o,s:o}", "data", data, "summary", summary);
    char msg[600];
    int status = 200;
    if (!broken && !a->broken[0] && a->nresults < a->doc.n)
        snprintf(a->broken, sizeof(a->broken), "the cluster agent answered %zu of %zu objects",
                 a->nresults, a->doc.n);
    if (broken || a->broken[0]) {
        status = status_if_broken;
        snprintf(msg, sizeof(msg), "cluster %s: %s; %zu of %zu objects have a result",
                 a->cluster, broken ? broken : a->broken, a->nresults, a->doc.n);
        json_object_set_new(out, "error", error_obj(status, status == 503
                            ? "ServiceUnavailable" : "BadGateway", msg));
    } else if (failed) {
        status = 422;
        snprintf(msg, sizeof(msg), "%zu of %zu objects failed to apply", failed, a->doc.n);
        json_object_set_new(out, "error", error_obj(422, "ApplyFailed", msg));
    }
    log_info("apply: cluster %s as %s: %zu objects, %zu failed%s%s", a->cluster, a->user,
             a->doc.n, failed, broken || a->broken[0] ? "; " : "",
             broken ? broken : a->broken);
    send_json(a->r, status, out, status == 503 ? "Retry-After: 1\r\n" : NULL);
    apply_free(a);
}

/* ---- the stream ---- */

static void send_objects(struct apply *a)
{
    while (a->next < a->doc.n) {
        const struct applydoc_obj *o = &a->doc.objs[a->next];
        const char *p = a->nl_due ? "\n" : o->json + a->off;
        size_t n = a->nl_due ? 1 : o->len - a->off;
        ssize_t sent = tun_stream_send(a->s, p, n);
        if (sent < 0) {
            tun_stream_reset(a->s, TUN_RESET_INTERNAL, "cannot send");
            a->s = NULL;
            finish(a, 502, "the stream failed");
            return;
        }
        if (sent == 0)
            return;             /* on_writable resumes */
        if (a->nl_due) {
            a->nl_due = false;
            a->next++;
            a->off = 0;
        } else if ((a->off += (size_t)sent) == o->len) {
            a->nl_due = true;
        }
    }
    if (tun_stream_close(a->s) == 1) {
        a->s = NULL;
        finish(a, 502, NULL);   /* the agent had answered and closed already */
    }
}

/* One result line; non-zero if the agent broke the protocol. */
static int on_result(void *ud, const char *line, size_t len)
{
    struct apply *a = ud;
    json_t *r = json_loadb(line, len, 0, NULL);
    const char *outcome = json_string_value(json_object_get(r, "outcome"));
    bool too_much = len > APPLY_MAX_RESULTS - a->result_bytes;
    if (!json_is_object(r) || !outcome || a->nresults == a->doc.n || too_much) {
        json_decref(r);
        snprintf(a->broken, sizeof(a->broken), "the cluster agent sent %s",
                 a->nresults == a->doc.n ? "more results than objects"
                 : too_much ? "results over 8 MiB" : "a malformed result");
        return 1;
    }
    a->result_bytes += len;
    a->results[a->nresults++] = r;
    return 0;
}

static void on_data(struct tun_stream *s, const uint8_t *p, size_t n)
{
    struct apply *a = tun_stream_ud(s);
    if (a->broken[0])
        return;
    int rc = kc_lines_feed(&a->lines, p, n, on_result, a);
    if (rc < 0 && !a->broken[0])
        snprintf(a->broken, sizeof(a->broken), "a result from the cluster agent is too long");
    if (rc != 0) {
        tun_stream_reset(s, TUN_RESET_PROTOCOL, a->broken);
        a->s = NULL;
        finish(a, 502, NULL);
        return;
    }
    tun_stream_consumed(s, n);
}

static void on_writable(struct tun_stream *s)
{
    struct apply *a = tun_stream_ud(s);
    if (a->next < a->doc.n)
        send_objects(a);
}

/* The agent's answer is complete; we act once the stream is over (on_end
 * with code 0, or tun_stream_close returning 1 in send_objects). */
static void on_eof(struct tun_stream *s)
{
    struct apply *a = tun_stream_ud(s);
    if (a->lines.len && !a->broken[0])
        on_result(a, a->lines.buf, a->lines.len);   /* a last line without newline */
    a->lines.len = 0;
}

static void on_end(struct tun_stream *s, uint16_t code, const char *reason)
{
    struct apply *a = tun_stream_ud(s);
    char why[300];
    a->s = NULL;
    if (code == 0) {
        finish(a, 502, NULL);
        return;
    }
    snprintf(why, sizeof(why), "the apply stream to its agent ended early (%s: %.200s)",
             tun_reset_code_name(code), reason ? reason : "");
    bool down = code == TUN_RESET_UNAVAILABLE || code == TUN_RESET_REFUSED ||
                code == TUN_RESET_UNREACHABLE;
    finish(a, down ? 503 : 502, why);
}

static const struct tun_stream_ops apply_ops = {
    .on_data = on_data, .on_eof = on_eof, .on_writable = on_writable, .on_end = on_end,
};

static void open_stream(struct apply *a)
{
    json_t *mj = json_pack("{s:s,s:[s]}", "user", a->user, "groups", "drover:authenticated");
    char *meta = mj ? json_dumps(mj, JSON_COMPACT) : NULL;
    json_decref(mj);
    a->results = calloc(a->doc.n, sizeof(*a->results));
    a->lines.cap = APPLY_MAX_RESULT;
    /* The local link, or the replica that holds it (docs/REPLICAS.md). */
    if (meta && a->results)
        a->s = tunnels_open_stream(a->ts, a->cluster, APPLIER_SERVICE, meta, strlen(meta),
                                   &apply_ops, a);
    free(meta);
    if (!a->s) {
        char msg[200];
        snprintf(msg, sizeof(msg), tunnels_reachable(a->ts, a->cluster)
                                       ? "cluster %s: cannot open a stream to its agent"
                                       : "cluster %s is not connected to drover", a->cluster);
        fail(a->r, 503, "ServiceUnavailable", msg);
        apply_free(a);
        return;
    }
    send_objects(a);
}

/* ---- parsing ---- */

static int parse_work(struct db *db, void *arg)
{
    struct apply *a = arg;
    (void)db;
    a->parsed = applydoc_parse(a->body, a->body_len, a->fmt, &a->doc, a->err,
                               sizeof(a->err));
    return 0;
}

static void parse_done(void *arg, int rc)
{
    struct apply *a = arg;
    if (rc < 0) {
        fail(a->r, 503, "ServiceUnavailable", "the server is busy or stopping; try again");
        apply_free(a);
        return;
    }
    if (a->parsed < 0) {
        fail(a->r, 400, "BadRequest", a->err);
        apply_free(a);
        return;
    }
    open_stream(a);
}

/* ---- the request ---- */

/* The body's format from its Content-Type; false if it is not one we take. */
static bool media_type(const struct hs_req *r, enum applydoc_format *fmt)
{
    static const char *const yaml[] = { "application/yaml", "application/x-yaml",
                                        "text/yaml", "text/x-yaml", NULL };
    const struct http_header *h = hs_header(r, "content-type");
    if (!h)
        return false;
    size_t n = h->value_len;
    const char *semi = memchr(h->value, ';', n);
    if (semi)
        n = (size_t)(semi - h->value);
    while (n && h->value[n - 1] == ' ')
        n--;
    if (n == 16 && strncasecmp(h->value, "application/json", 16) == 0) {
        *fmt = APPLYDOC_JSON;
        return true;
    }
    for (int i = 0; yaml[i]; i++)
        if (n == strlen(yaml[i]) && strncasecmp(h->value, yaml[i], n) == 0) {
            *fmt = APPLYDOC_YAML;
            return true;
        }
    return false;
}

static void with_body(struct hs_req *r, const char *username, void *ud)
{
    struct server *s = ud;
    /* Checked again: bodies read in parallel may have filled the slots. */
    struct apply *a = active < APPLY_MAX_ACTIVE ? calloc(1, sizeof(*a)) : NULL;
    if (!a) {
        fail(r, 503, "ServiceUnavailable", active < APPLY_MAX_ACTIVE ? "out of memory"
             : "too many applies at once; try again");
        return;
    }
    active++;
    a->r = r;
    a->ts = s->tunnels;
    api_apply_path(r, a->cluster);
    snprintf(a->user, sizeof(a->user), "drover:%s", username);
    media_type(r, &a->fmt);
    a->body = hs_body(r, &a->body_len);
    if (a->body_len == 0) {
        fail(r, 400, "BadRequest", "the body holds no objects to apply");
        apply_free(a);
        return;
    }
    if (!s->pool || db_pool_submit_read(s->pool, parse_work, parse_done, a) < 0) {
        fail(r, 503, "ServiceUnavailable", "the server is busy; try again");
        apply_free(a);
    }
}

static void body_read(struct hs_req *r, void *ud)
{
    struct server *s = ud;
    char cluster[64];
    api_apply_path(r, cluster);
    api_authorize_cluster(s->api, r, cluster, with_body, s);
}

static void authorized(struct hs_req *r, const char *username, void *ud)
{
    struct server *s = ud;
    char cluster[64], msg[200];
    enum applydoc_format fmt;
    (void)username;
    api_apply_path(r, cluster);
    if (!tunnels_reachable(s->tunnels, cluster)) {
        snprintf(msg, sizeof(msg), "cluster %s is not connected to drover", cluster);
        fail(r, 503, "ServiceUnavailable", msg);
        return;
    }
    if (!media_type(r, &fmt)) {
        fail(r, 415, "UnsupportedMediaType",
             "send the objects as Content-Type: application/yaml or application/json");
        return;
    }
    if (active >= APPLY_MAX_ACTIVE) {
        fail(r, 503, "ServiceUnavailable", "too many applies at once; try again");
        return;
    }
    hs_read_body(r, APPLY_MAX_BODY, body_read, s);
}

bool api_apply_path(const struct hs_req *r, char cluster[64])
{
    size_t n, pl = strlen(PREFIX), sl = strlen(SUFFIX);
    const char *path = hs_path(r, &n);
    if (n <= pl + sl || memcmp(path, PREFIX, pl) != 0 || memcmp(path + n - sl, SUFFIX, sl) != 0)
        return false;
    size_t il = n - pl - sl;
    if (il >= 64)
        return false;
    for (size_t i = 0; i < il; i++) {
        char ch = path[pl + i];
        if (!((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '-'))
            return false;
    }
    memcpy(cluster, path + pl, il);
    cluster[il] = '\0';
    return true;
}

void api_apply(struct server *s, struct hs_req *r, const char *cluster)
{
    if (!hs_method_is(r, "POST")) {
        send_json(r, 405, json_pack("{s:o}", "error", error_obj(405, "MethodNotAllowed",
                  "use POST with the objects to apply")), "Allow: POST\r\n");
        return;
    }
    api_authorize_cluster(s->api, r, cluster, authorized, s);
}
