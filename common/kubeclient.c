/*
 * kubeclient: the agent's own kube-apiserver calls. See kubeclient.h.
 *
 * A request is one TLS connection: the head and body are queued at once
 * (conn queues until the handshake is done), the answer is followed by a
 * kc_decoder and its body either collected (capped) or, for a watch, split
 * into lines as it arrives. Every request has a deadline, so a silent
 * apiserver cannot hold one forever.
 */
#include "common/kubeclient.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/backoff.h"
#include "common/conn.h"
#include "common/log.h"
#include "common/tls.h"
#include "common/url.h"

#define KC_MAX_PATH 4096
#define KC_MAX_ERR 1024
#define KC_WATCH_SECONDS 300          /* asked of the apiserver per watch */
#define KC_WATCH_DEADLINE_MS ((KC_WATCH_SECONDS + 30) * 1000ull)

struct kubeclient {
    struct loop *loop;
    SSL_CTX *ctx;
    struct url url;
    struct netaddr addr;
    char *token_file;
    struct kubeapi_token tok;
    struct kc_req *reqs;        /* pending requests */
    struct kc_watch *watches;
    bool closing;               /* in kubeclient_free: start nothing new */
};

struct kc_req {
    struct kubeclient *kc;
    struct kc_req *prev, *next;
    struct conn *c;
    struct loop_timer deadline;
    struct kc_decoder dec;
    kc_done_cb done;
    void *ud;
    char *body;                 /* collected answer body */
    size_t body_len, body_alloc;
    const char *sink_err;       /* the body could not be taken */
    /* Streaming: the body goes to lines instead (a watch). */
    struct kc_lines lines;
    int (*on_line)(void *ud, const char *line, size_t len);
    bool stopped;               /* on_line asked to stop */
};

struct kc_watch {
    struct kubeclient *kc;
    struct kc_watch *prev, *next;
    char path[512];
    char rv[128];
    kc_event_cb on_event;
    void *ud;
    struct kc_req *req;
    struct loop_timer retry;
    struct backoff bo;
    bool relist;                /* the apiserver no longer has rv */
    bool got_events;
};

static const struct conn_ops req_ops;

/* ---- the answer decoder ---- */

static int decode_head(struct kc_decoder *d, const uint8_t *p, size_t n, size_t *off,
                       const char **why)
{
    if (!d->head && !(d->head = malloc(HTTPMSG_MAX_HEAD))) {
        *why = "out of memory";
        return -1;
    }
    size_t take = n < HTTPMSG_MAX_HEAD - d->head_len ? n : HTTPMSG_MAX_HEAD - d->head_len;
    memcpy(d->head + d->head_len, p, take);
    size_t prev = d->head_len;
    d->head_len += take;
    struct http_header hd[64];
    struct http_response res = { .headers = hd, .num_headers = 64 };
    ssize_t hl = http1_parse_response(d->head, d->head_len, &res);
    if (hl == -2) {
        *off = n;
        if (d->head_len == HTTPMSG_MAX_HEAD) {
            *why = "answer head too large";
            return -1;
        }
        return 0;
    }
    if (hl < 0 || res.status < 200) {
        *why = hl < 0 && res.error ? res.error : "malformed answer head";
        return -1;
    }
    if (httpmsg_response(&d->m, &res, false, why) < 0)
        return -1;
    d->status = res.status;
    d->head_done = true;
    *off = (size_t)hl - prev;
    free(d->head);
    d->head = NULL;
    d->done = d->m.done;
    return 1;
}

static void body_none(void *ud, const uint8_t *p, size_t n)
{
    (void)ud;
    (void)p;
    (void)n;
}

int kc_decoder_feed(struct kc_decoder *d, const uint8_t *p, size_t n, const char **why)
{
    void (*sink)(void *, const uint8_t *, size_t) = d->on_body ? d->on_body : body_none;
    if (d->done)
        return 1;
    if (!d->head_done) {
        size_t off = 0;
        int r = decode_head(d, p, n, &off, why);
        if (r <= 0)
            return r;
        p += off;
        n -= off;
        if (d->done)
            return 1;
    }
    switch (d->m.kind) {
    case HM_LENGTH: {
        size_t take = n < d->m.left ? n : (size_t)d->m.left;
        d->m.left -= take;
        d->done = d->m.left == 0;
        if (take)
            sink(d->ud, p, take);
        break;
    }
    case HM_CHUNKED:
        if (http1_chunked_feed(&d->m.ch, p, n, sink, d->ud) < 0) {
            *why = d->m.ch.error ? d->m.ch.error : "malformed chunked answer";
            return -1;
        }
        d->done = d->m.ch.done;
        break;
    case HM_UNTIL_CLOSE:
        if (n)
            sink(d->ud, p, n);
        break;
    case HM_NONE:
        d->done = true;
        break;
    }
    return d->done ? 1 : 0;
}

int kc_decoder_eof(struct kc_decoder *d)
{
    if (!d->done && d->head_done && d->m.kind == HM_UNTIL_CLOSE)
        d->done = true;
    return d->done ? 1 : -1;
}

void kc_decoder_free(struct kc_decoder *d)
{
    free(d->head);
    d->head = NULL;
}

/* ---- lines ---- */

static int lines_append(struct kc_lines *l, const uint8_t *p, size_t n)
{
    if (n > l->cap - l->len)
        return -1;
    if (n > l->alloc - l->len) {
        size_t want = l->alloc ? l->alloc : 4096;
        while (want - l->len < n)
            want = want > l->cap / 2 ? l->cap : want * 2;
        char *b = realloc(l->buf, want);
        if (!b)
            return -1;
        l->buf = b;
        l->alloc = want;
    }
    memcpy(l->buf + l->len, p, n);
    l->len += n;
    return 0;
}

static int emit_line(const char *s, size_t n, int (*on_line)(void *, const char *, size_t),
                     void *ud)
{
    if (n && s[n - 1] == '\r')
        n--;
    return n ? on_line(ud, s, n) : 0;
}

int kc_lines_feed(struct kc_lines *l, const uint8_t *p, size_t n,
                  int (*on_line)(void *ud, const char *line, size_t len), void *ud)
{
    while (n) {
        const uint8_t *nl = memchr(p, '\n', n);
        size_t take = nl ? (size_t)(nl - p) : n;
        if (l->len == 0 && nl) {
            /* A whole line in the input: no copy needed. */
            if (take > l->cap)
                return -1;
            if (emit_line((const char *)p, take, on_line, ud))
                return 1;
        } else {
            if (lines_append(l, p, take) < 0)
                return -1;
            if (nl) {
                size_t len = l->len;
                l->len = 0;
                if (emit_line(l->buf, len, on_line, ud))
                    return 1;
            }
        }
        take += nl ? 1 : 0;
        p += take;
        n -= take;
    }
    return 0;
}

void kc_lines_free(struct kc_lines *l)
{
    free(l->buf);
    memset(l, 0, sizeof(*l));
}

/* ---- requests ---- */

static void req_free(struct kc_req *r)
{
    struct kubeclient *kc = r->kc;
    if (r->prev)
        r->prev->next = r->next;
    else if (kc->reqs == r)
        kc->reqs = r->next;
    if (r->next)
        r->next->prev = r->prev;
    loop_timer_stop(kc->loop, &r->deadline);
    if (r->c)
        conn_close(r->c);
    kc_decoder_free(&r->dec);
    kc_lines_free(&r->lines);
    free(r->body);
    free(r);
}

/* The error text of a non-2xx answer: its Status message, else its text. */
static void answer_error(const struct kc_req *r, json_t *body, char *out, size_t cap)
{
    const char *msg = json_string_value(json_object_get(body, "message"));
    if (msg) {
        snprintf(out, cap, "%s", msg);
        return;
    }
    size_t n = r->body_len < cap - 1 ? r->body_len : cap - 1;
    if (!n) {
        snprintf(out, cap, "HTTP %d", r->dec.status);
        return;
    }
    memcpy(out, r->body, n);
    out[n] = '\0';
}

/* Ends r: the owner hears once, then r is gone. status 0: failed (why). */
static void req_finish(struct kc_req *r, int status, const char *why)
{
    json_t *body = NULL;
    char err[KC_MAX_ERR];
    const char *e = why;
    if (status) {
        if (r->body_len)
            body = json_loadb(r->body, r->body_len, 0, NULL);
        if (status < 200 || status > 299) {
            answer_error(r, body, err, sizeof(err));
            e = err;
        } else {
            e = NULL;
        }
    }
    kc_done_cb done = r->done;
    void *ud = r->ud;
    req_free(r);
    done(ud, status, body, e);
    json_decref(body);
}

static void collect_body(void *ud, const uint8_t *p, size_t n)
{
    struct kc_req *r = ud;
    if (r->sink_err || r->stopped)
        return;
    if (r->on_line) {
        int s = kc_lines_feed(&r->lines, p, n, r->on_line, r->ud);
        if (s < 0)
            r->sink_err = "a watch event is over 16 MiB";
        r->stopped = s == 1;
        return;
    }
    if (n > KUBECLIENT_MAX_BODY - r->body_len) {
        r->sink_err = "the answer body is over 16 MiB";
        return;
    }
    if (n > r->body_alloc - r->body_len) {
        size_t want = r->body_alloc ? r->body_alloc : 16384;
        while (want - r->body_len < n)
            want = want > KUBECLIENT_MAX_BODY / 2 ? KUBECLIENT_MAX_BODY : want * 2;
        char *b = realloc(r->body, want);
        if (!b) {
            r->sink_err = "out of memory";
            return;
        }
        r->body = b;
        r->body_alloc = want;
    }
    memcpy(r->body + r->body_len, p, n);
    r->body_len += n;
}

static size_t req_read(struct conn *c, uint8_t *data, size_t len)
{
    struct kc_req *r = conn_ud(c);
    const char *why = "malformed answer";
    int rc = kc_decoder_feed(&r->dec, data, len, &why);
    if (rc < 0)
        req_finish(r, 0, why);
    else if (r->sink_err)
        req_finish(r, 0, r->sink_err);
    else if (rc == 1 || r->stopped)
        req_finish(r, r->dec.status, NULL);
    return len;
}

static void req_eof(struct conn *c)
{
    struct kc_req *r = conn_ud(c);
    if (kc_decoder_eof(&r->dec) == 1)
        req_finish(r, r->dec.status, NULL);
    else
        req_finish(r, 0, "the kube-apiserver closed the connection mid-answer");
}

static void req_close(struct conn *c, const char *why)
{
    struct kc_req *r = conn_ud(c);
    char msg[300];
    r->c = NULL;
    snprintf(msg, sizeof(msg), "kube-apiserver: %s", why);
    req_finish(r, 0, msg);
}

static const struct conn_ops req_ops = {
    .on_read = req_read,
    .on_eof = req_eof,
    .on_close = req_close,
};

static void on_deadline(struct loop_timer *t)
{
    struct kc_req *r = (struct kc_req *)((char *)t - offsetof(struct kc_req, deadline));
    req_finish(r, 0, "the kube-apiserver did not answer in time");
}

static bool method_ok(const char *m)
{
    return strcmp(m, "GET") == 0 || strcmp(m, "POST") == 0 || strcmp(m, "PUT") == 0 ||
           strcmp(m, "DELETE") == 0 || strcmp(m, "PATCH") == 0;
}

/* The whole request as bytes (head and body); NULL if it cannot be made. */
static char *build_request(struct kubeclient *kc, const char *method, const char *path,
                           const json_t *body, const struct kc_extra *x, size_t *len)
{
    char *doc = body ? json_dumps(body, JSON_COMPACT) : NULL;
    size_t dlen = doc ? strlen(doc) : 0;
    const char *ctype = x && x->content_type ? x->content_type : "application/json";
    const char *more = x && x->headers ? x->headers : "";
    char host[300];
    url_hostport(&kc->url, host, sizeof(host));
    size_t cap = strlen(path) + strlen(kc->tok.value) + strlen(ctype) + strlen(more) + dlen +
                 1024;
    char *out = (!body || doc) ? malloc(cap) : NULL;
    int n = out ? snprintf(out, cap,
                           "%s %s HTTP/1.1\r\nHost: %s\r\nAuthorization: Bearer %s\r\n"
                           "Accept: application/json\r\nUser-Agent: drover-agent/%s\r\n"
                           "Connection: close\r\n%s",
                           method, path, host, kc->tok.value, DROVER_VERSION, more) : -1;
    if (n >= 0 && (size_t)n < cap && doc)
        n += snprintf(out + n, cap - (size_t)n,
                      "Content-Type: %s\r\nContent-Length: %zu\r\n", ctype, dlen);
    if (n < 0 || (size_t)n + dlen + 3 > cap) {
        free(out);
        free(doc);
        return NULL;
    }
    memcpy(out + n, "\r\n", 2);
    memcpy(out + n + 2, doc ? doc : "", dlen);
    *len = (size_t)n + 2 + dlen;
    free(doc);
    return out;
}

static struct kc_req *start(struct kubeclient *kc, const char *method, const char *path,
                            const json_t *body, const struct kc_extra *x,
                            uint64_t deadline_ms, kc_done_cb done, void *ud)
{
    if (kc->closing || !method_ok(method) || path[0] != '/' || strlen(path) > KC_MAX_PATH ||
        strpbrk(path, " \r\n") || kubeapi_token_load(&kc->tok, loop_now_ms(kc->loop)) < 0)
        return NULL;
    size_t len = 0;
    char *bytes = build_request(kc, method, path, body, x, &len);
    struct kc_req *r = bytes ? calloc(1, sizeof(*r)) : NULL;
    if (!r) {
        free(bytes);
        return NULL;
    }
    r->kc = kc;
    r->done = done;
    r->ud = ud;
    r->dec.on_body = collect_body;
    r->dec.ud = r;
    r->c = conn_connect(kc->loop, (struct sockaddr *)&kc->addr.ss, kc->addr.len, kc->ctx,
                        kc->url.host, kc->url.host_is_ip, &req_ops, r);
    if (!r->c || conn_write(r->c, bytes, len) < 0) {
        if (r->c)
            conn_close(r->c);
        free(bytes);
        free(r);
        return NULL;
    }
    free(bytes);
    r->next = kc->reqs;
    if (kc->reqs)
        kc->reqs->prev = r;
    kc->reqs = r;
    loop_timer_start(kc->loop, &r->deadline, deadline_ms, on_deadline);
    return r;
}

struct kc_req *kubeclient_request(struct kubeclient *kc, const char *method, const char *path,
                                  const json_t *body, kc_done_cb done, void *ud)
{
    return start(kc, method, path, body, NULL, KUBECLIENT_TIMEOUT_MS, done, ud);
}

struct kc_req *kubeclient_request_ex(struct kubeclient *kc, const char *method,
                                     const char *path, const json_t *body,
                                     const struct kc_extra *x, kc_done_cb done, void *ud)
{
    return start(kc, method, path, body, x, KUBECLIENT_TIMEOUT_MS, done, ud);
}

void kubeclient_cancel(struct kc_req *r)
{
    if (r)
        req_free(r);
}

/* ---- list, then watch ---- */

static void watch_list(struct kc_watch *w);
static void watch_open(struct kc_watch *w);

static void watch_retry_fire(struct loop_timer *t)
{
    struct kc_watch *w = (struct kc_watch *)((char *)t - offsetof(struct kc_watch, retry));
    if (w->rv[0])
        watch_open(w);
    else
        watch_list(w);
}

static void watch_later(struct kc_watch *w, const char *why)
{
    uint64_t d = backoff_next(&w->bo);
    log_debug("watch %s: %s; again in %llu ms", w->path, why ? why : "ended",
              (unsigned long long)d);
    loop_timer_start(w->kc->loop, &w->retry, d, watch_retry_fire);
}

static void set_rv(struct kc_watch *w, json_t *obj)
{
    const char *rv = json_string_value(json_object_get(json_object_get(obj, "metadata"),
                                                       "resourceVersion"));
    if (rv && strlen(rv) < sizeof(w->rv))
        memcpy(w->rv, rv, strlen(rv) + 1);
}

static void list_done(void *ud, int status, json_t *body, const char *err)
{
    struct kc_watch *w = ud;
    w->req = NULL;
    w->rv[0] = '\0';
    if (status != 200 || !json_is_array(json_object_get(body, "items"))) {
        watch_later(w, err ? err : "the list is not a list");
        return;
    }
    set_rv(w, body);
    w->relist = false;
    w->on_event(w->ud, "SYNC", body);
    if (!w->rv[0]) {
        watch_later(w, "the list has no resourceVersion");
        return;
    }
    watch_open(w);
}

static void watch_list(struct kc_watch *w)
{
    w->req = kubeclient_request(w->kc, "GET", w->path, NULL, list_done, w);
    if (!w->req)
        watch_later(w, "cannot start the list");
}

/* One watch event. Non-zero stops the stream. */
static int watch_line(void *ud, const char *line, size_t len)
{
    struct kc_watch *w = ud;
    json_t *ev = json_loadb(line, len, 0, NULL);
    const char *type = json_string_value(json_object_get(ev, "type"));
    json_t *obj = json_object_get(ev, "object");
    int stop = 0;
    if (!type || !json_is_object(obj)) {
        stop = 1;
    } else if (strcmp(type, "ERROR") == 0) {
        /* 410 Expired: our resourceVersion is older than the history. */
        w->relist = json_integer_value(json_object_get(obj, "code")) == 410;
        stop = 1;
    } else {
        set_rv(w, obj);
        if (strcmp(type, "BOOKMARK") != 0) {
            w->got_events = true;
            w->on_event(w->ud, type, obj);
        }
    }
    json_decref(ev);
    return stop;
}

static void watch_done(void *ud, int status, json_t *body, const char *err)
{
    struct kc_watch *w = ud;
    (void)body;
    w->req = NULL;
    if (status == 410 || w->relist) {
        w->rv[0] = '\0';
        watch_later(w, "resourceVersion expired: listing again");
        return;
    }
    if (status == 200 && w->got_events)
        backoff_reset(&w->bo);
    watch_later(w, status == 200 ? NULL : err);
}

static void watch_open(struct kc_watch *w)
{
    char path[sizeof(w->path) + sizeof(w->rv) + 128];
    snprintf(path, sizeof(path),
             "%s?watch=1&allowWatchBookmarks=true&timeoutSeconds=%d&resourceVersion=%s",
             w->path, KC_WATCH_SECONDS, w->rv);
    w->got_events = false;
    w->req = start(w->kc, "GET", path, NULL, NULL, KC_WATCH_DEADLINE_MS, watch_done, w);
    if (!w->req) {
        watch_later(w, "cannot start the watch");
        return;
    }
    w->req->on_line = watch_line;
    w->req->lines.cap = KUBECLIENT_MAX_BODY;
}

struct kc_watch *kubeclient_watch(struct kubeclient *kc, const char *path,
                                  kc_event_cb on_event, void *ud)
{
    struct kc_watch *w = strlen(path) < sizeof(((struct kc_watch *)0)->path)
                         ? calloc(1, sizeof(*w)) : NULL;
    if (!w)
        return NULL;
    w->kc = kc;
    memcpy(w->path, path, strlen(path) + 1);
    w->on_event = on_event;
    w->ud = ud;
    backoff_init(&w->bo, 500, 30000);
    w->next = kc->watches;
    if (kc->watches)
        kc->watches->prev = w;
    kc->watches = w;
    watch_list(w);
    return w;
}

void kubeclient_watch_stop(struct kc_watch *w)
{
    if (!w)
        return;
    struct kubeclient *kc = w->kc;
    if (w->prev)
        w->prev->next = w->next;
    else if (kc->watches == w)
        kc->watches = w->next;
    if (w->next)
        w->next->prev = w->prev;
    loop_timer_stop(kc->loop, &w->retry);
    kubeclient_cancel(w->req);
    free(w);
}

/* ---- the client ---- */

struct kubeclient *kubeclient_new(struct loop *l, const struct kubeapi_cfg *cfg,
                                  char *err, size_t errlen)
{
    struct kubeclient *kc = calloc(1, sizeof(*kc));
    if (!kc || !(kc->token_file = strdup(cfg->token_file))) {
        free(kc);
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    kc->loop = l;
    kc->tok.file = kc->token_file;
    if (kubeapi_endpoint(cfg, &kc->url, &kc->addr, &kc->ctx, err, errlen) < 0) {
        kubeclient_free(kc);
        return NULL;
    }
    return kc;
}

void kubeclient_free(struct kubeclient *kc)
{
    if (!kc)
        return;
    kc->closing = true;
    while (kc->watches)
        kubeclient_watch_stop(kc->watches);
    while (kc->reqs)
        req_finish(kc->reqs, 0, "client closed");
    if (kc->ctx)
        SSL_CTX_free(kc->ctx);
    free(kc->token_file);
    free(kc);
}
