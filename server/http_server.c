/*
 * http_server: connection and request lifecycle. See http_server.h.
 *
 * A connection reads only what the current step needs: the head, then (if a
 * handler asks) the body. Bytes beyond that are left in the conn, which
 * pauses reading, so a pipelining client cannot make us buffer more than one
 * head and one body, and a taken-over connection hands its early bytes on.
 */
#include "server/http_server.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/hmap.h"
#include "common/log.h"

enum hc_state { HC_HEAD, HC_BUSY, HC_BODY };

struct hs {
    struct loop *loop;
    SSL_CTX *ctx;
    struct hs_cfg cfg;
    hs_dispatch_fn dispatch;
    void *ud;
    struct listener *ls;
    struct hs_conn *conns;      /* doubly linked, for hs_free */
    unsigned long nconns;
    struct hmap *per_ip;        /* address -> connections held (as a pointer-sized count) */
    uint64_t refusal_logged_ms; /* refusals are logged at most every 10 s */
    unsigned long refusals_unlogged;
};

static unsigned long long refused_count[2];

struct hs_conn {
    struct hs *srv;
    struct conn *c;
    enum hc_state state;
    char *buf;                  /* the head being read */
    size_t buf_len;
    struct hs_req *req;
    struct loop_timer timer;
    struct hs_conn *prev, *next;
    char ip[48];                /* counted in srv->per_ip while non-empty */
};

struct hs_req {
    struct hs *srv;
    struct hs_conn *hc;         /* NULL once the client is gone */
    char *head;
    struct http_request http;
    struct http_header headers[HS_MAX_HEADERS];
    const char *path, *query;
    size_t path_len, query_len;
    bool keep_alive, has_body, body_done;
    uint64_t body_left;         /* Content-Length bodies */
    bool chunked;
    struct http1_chunked ch;
    uint8_t *body;
    size_t body_len, body_cap, body_max;
    void (*body_cb)(struct hs_req *r, void *ud);
    void *body_ud;
    uint64_t start_us;
    char peer[48];
};

static const struct conn_ops hs_conn_ops;

static uint64_t now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

/* ---- connection bookkeeping ---- */

/* ---- connections per client address ---- */

static void ip_of(const char *peer, char *out, size_t cap)
{
    const char *colon = strrchr(peer, ':');
    size_t n = colon ? (size_t)(colon - peer) : strlen(peer);
    snprintf(out, cap, "%.*s", (int)n, peer);
}

static uintptr_t ip_count(const struct hs *s, const char *ip)
{
    return s->per_ip ? (uintptr_t)hmap_get(s->per_ip, ip) : 0;
}

/* Counts hc under its client's address (the count is the map value itself,
 * never 0 while present). */
static void ip_add(struct hs *s, struct hs_conn *hc, const char *peer)
{
    if (!s->per_ip)
        return;
    char ip[sizeof(hc->ip)];
    ip_of(peer, ip, sizeof(ip));
    void *n = (void *)(ip_count(s, ip) + 1);
    if (hmap_put(s->per_ip, ip, n) != n)
        snprintf(hc->ip, sizeof(hc->ip), "%s", ip);
}

static void ip_remove(struct hs *s, struct hs_conn *hc)
{
    if (!hc->ip[0])
        return;
    uintptr_t n = ip_count(s, hc->ip);
    if (n <= 1)
        hmap_del(s->per_ip, hc->ip);
    else
        hmap_put(s->per_ip, hc->ip, (void *)(n - 1));
    hc->ip[0] = '\0';
}

static void hc_unlink(struct hs_conn *hc)
{
    ip_remove(hc->srv, hc);
    struct hs *s = hc->srv;
    if (hc->prev)
        hc->prev->next = hc->next;
    else
        s->conns = hc->next;
    if (hc->next)
        hc->next->prev = hc->prev;
    s->nconns--;
}

/* Forgets hc (its conn is closed or handed over already). */
static void hc_free(struct hs_conn *hc)
{
    loop_timer_stop(hc->srv->loop, &hc->timer);
    if (hc->req)
        hc->req->hc = NULL;
    hc_unlink(hc);
    free(hc->buf);
    free(hc);
}

static void hc_close(struct hs_conn *hc, bool flush)
{
    if (hc->c) {
        if (flush)
            conn_close_after_flush(hc->c, 5000);
        else
            conn_close(hc->c);
        hc->c = NULL;
    }
    hc_free(hc);
}

static void req_free(struct hs_req *r)
{
    free(r->head);
    free(r->body);
    free(r);
}

/* ---- answering ---- */

/* head_only: the answer to HEAD, which says the length but carries no body. */
static void write_answer(struct hs_conn *hc, int status, const char *ctype,
                         const void *body, size_t len, const char *extra,
                         bool keep_alive, bool head_only)
{
    char head[1024];
    int n = snprintf(head, sizeof(head),
                     "HTTP/1.1 %d %s\r\nServer: drover\r\n%s%s%s"
                     "Content-Length: %zu\r\n%sConnection: %s\r\n\r\n",
                     status, http1_reason(status),
                     ctype ? "Content-Type: " : "", ctype ? ctype : "",
                     ctype ? "\r\n" : "", len, extra ? extra : "",
                     keep_alive ? "keep-alive" : "close");
    if (n < 0 || (size_t)n >= sizeof(head)) {
        hc_close(hc, false);
        return;
    }
    if (conn_write2(hc->c, head, (size_t)n, body, head_only ? 0 : len) < 0)
        hc_close(hc, false);
}

static void start_idle(struct hs_conn *hc);

void hs_respond(struct hs_req *r, int status, const char *content_type,
                const void *body, size_t len, const char *extra_headers)
{
    struct hs_conn *hc = r->hc;
    struct hs *s = r->srv;
    if (s->cfg.on_answered)
        s->cfg.on_answered(r, status, now_us() - r->start_us, s->ud);
    if (!hc) {
        req_free(r);
        return;
    }
    /* A body nobody read is still on the wire: the connection cannot carry
     * another request. */
    bool keep = r->keep_alive && (!r->has_body || r->body_done);
    hc->req = NULL;
    write_answer(hc, status, content_type, body, len, extra_headers, keep,
                 hs_method_is(r, "HEAD"));
    req_free(r);
    if (!hc->c)
        return;
    if (!keep) {
        hc_close(hc, true);
        return;
    }
    start_idle(hc);
}

void hs_error(struct hs_req *r, int status, const char *code, const char *fmt, ...)
{
    char msg[512], esc[1024], body[1200];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    /* JSON-escape the message: it may quote client input. */
    size_t o = 0;
    for (const char *p = msg; *p && o < sizeof(esc) - 7; p++) {
        unsigned char ch = (unsigned char)*p;
        if (ch == '"' || ch == '\\') {
            esc[o++] = '\\';
            esc[o++] = (char)ch;
        } else if (ch < 0x20) {
            o += (size_t)snprintf(esc + o, sizeof(esc) - o, "\\u%04x", ch);
        } else {
            esc[o++] = (char)ch;
        }
    }
    esc[o] = '\0';
    int n = snprintf(body, sizeof(body),
                     "{\"error\":{\"status\":%d,\"code\":\"%s\",\"message\":\"%s\"}}\n",
                     status, code, esc);
    if (n < 0 || (size_t)n >= sizeof(body))
        n = 0;
    hs_respond(r, status, "application/json", body, (size_t)n, NULL);
}

/* Answers a connection that has no request object (bad head, timeout). */
static void hc_fail(struct hs_conn *hc, int status, const char *code, const char *msg)
{
    char body[400];
    int n = snprintf(body, sizeof(body),
                     "{\"error\":{\"status\":%d,\"code\":\"%s\",\"message\":\"%s\"}}\n",
                     status, code, msg);
    write_answer(hc, status, "application/json", body, (size_t)n, NULL, false, false);
    hc_close(hc, true);
}

/* ---- timers ---- */

static void on_timer(struct loop_timer *t)
{
    struct hs_conn *hc = (struct hs_conn *)((char *)t - offsetof(struct hs_conn, timer));
    if (hc->state == HC_BODY && hc->req) {
        hc->req->keep_alive = false;
        hs_error(hc->req, 408, "Timeout", "request body not received in time");
        return;
    }
    if (hc->state == HC_HEAD && hc->buf_len > 0) {
        hc_fail(hc, 408, "Timeout", "request head not received in time");
        return;
    }
    hc_close(hc, false);    /* idle, or a TLS handshake that never finished */
}

static void start_idle(struct hs_conn *hc)
{
    hc->state = HC_HEAD;
    free(hc->buf);
    hc->buf = NULL;
    hc->buf_len = 0;
    loop_timer_start(hc->srv->loop, &hc->timer, hc->srv->cfg.idle_timeout_ms, on_timer);
    conn_resume_read(hc->c);
}

/* ---- the head ---- */

static bool wants_keep_alive(const struct hs_req *r)
{
    const struct http_header *h = hs_header(r, "connection");
    if (r->http.minor_version == 0)
        return h && http1_has_token(h->value, h->value_len, "keep-alive");
    return !(h && http1_has_token(h->value, h->value_len, "close"));
}

/* Works out the body framing; false after answering a bad one. */
static bool check_framing(struct hs_conn *hc, struct hs_req *r)
{
    const struct http_header *te = hs_header(r, "transfer-encoding");
    const struct http_header *cl = hs_header(r, "content-length");
    if (te) {
        if (cl || te->value_len != 7 || strncasecmp(te->value, "chunked", 7) != 0) {
            hc_fail(hc, 400, "BadRequest", "unsupported Transfer-Encoding");
            return false;
        }
        r->chunked = true;
        r->has_body = true;
        http1_chunked_init(&r->ch);
        return true;
    }
    if (cl) {
        uint64_t n;
        if (http1_count(r->http.headers, r->http.num_headers, "content-length") != 1 ||
            http1_parse_content_length(cl->value, cl->value_len, &n) < 0) {
            hc_fail(hc, 400, "BadRequest", "invalid Content-Length");
            return false;
        }
        r->body_left = n;
        r->has_body = n > 0;
    }
    return true;
}

static void dispatch(struct hs_conn *hc, size_t head_len)
{
    struct hs_req *r = calloc(1, sizeof(*r));
    if (!r) {
        hc_close(hc, false);
        return;
    }
    r->srv = hc->srv;
    r->hc = hc;
    r->head = hc->buf;
    r->start_us = now_us();
    hc->buf = NULL;
    hc->buf_len = 0;
    r->http.headers = r->headers;
    r->http.num_headers = HS_MAX_HEADERS;
    if (http1_parse_request(r->head, head_len, &r->http) != (ssize_t)head_len ||
        http1_split_target(r->http.target, r->http.target_len, &r->path,
                           &r->path_len, &r->query, &r->query_len) < 0) {
        req_free(r);
        hc_fail(hc, 400, "BadRequest", "malformed request target");
        return;
    }
    snprintf(r->peer, sizeof(r->peer), "%s", conn_peer(hc->c));
    r->keep_alive = wants_keep_alive(r);
    if (!check_framing(hc, r)) {
        req_free(r);
        return;
    }
    hc->req = r;
    hc->state = HC_BUSY;
    loop_timer_stop(hc->srv->loop, &hc->timer);
    conn_pause_read(hc->c);
    hc->srv->dispatch(r, hc->srv->ud);
}

static size_t read_head(struct hs_conn *hc, const uint8_t *data, size_t len)
{
    struct hs *s = hc->srv;
    if (!hc->buf) {
        hc->buf = malloc(s->cfg.max_head);
        if (!hc->buf) {
            hc_close(hc, false);
            return len;
        }
        loop_timer_start(s->loop, &hc->timer, s->cfg.head_timeout_ms, on_timer);
    }
    size_t prev = hc->buf_len;
    size_t take = len < s->cfg.max_head - prev ? len : s->cfg.max_head - prev;
    memcpy(hc->buf + prev, data, take);
    hc->buf_len += take;
    struct http_header hdrs[HS_MAX_HEADERS];
    struct http_request req = { .headers = hdrs, .num_headers = HS_MAX_HEADERS };
    ssize_t hl = http1_parse_request(hc->buf, hc->buf_len, &req);
    if (hl == -2) {
        if (hc->buf_len == s->cfg.max_head)
            hc_fail(hc, 431, "RequestHeaderFieldsTooLarge", "request head too large");
        return take;
    }
    if (hl < 0) {
        char msg[128];
        snprintf(msg, sizeof(msg), "malformed request: %s",
                 req.error ? req.error : "invalid head");
        hc_fail(hc, 400, "BadRequest", msg);
        return len;
    }
    dispatch(hc, (size_t)hl);
    return (size_t)hl - prev;
}

/* ---- the body ---- */

/* The body buffer grows with what really arrived, so a client announcing
 * a big body and sending it slowly costs only what it sent. */
static bool body_reserve(struct hs_req *r, size_t n)
{
    if (n <= r->body_cap - r->body_len)
        return true;
    size_t want = r->body_cap ? r->body_cap : 16 * 1024;
    while (want - r->body_len < n)
        want *= 2;
    if (want > r->body_max)
        want = r->body_max;
    uint8_t *b = realloc(r->body, want ? want : 1);
    if (!b)
        return false;
    r->body = b;
    r->body_cap = want;
    return true;
}

static void body_append(void *ud, const uint8_t *p, size_t n)
{
    struct hs_req *r = ud;
    if (n > r->body_max - r->body_len || !body_reserve(r, n)) {
        r->body_len = r->body_max + 1;  /* marks overflow */
        return;
    }
    memcpy(r->body + r->body_len, p, n);
    r->body_len += n;
}

static void body_finished(struct hs_conn *hc, struct hs_req *r)
{
    r->body_done = true;
    hc->state = HC_BUSY;
    loop_timer_stop(hc->srv->loop, &hc->timer);
    conn_pause_read(hc->c);
    r->body_cb(r, r->body_ud);
}

static size_t read_body(struct hs_conn *hc, const uint8_t *data, size_t len)
{
    struct hs_req *r = hc->req;
    size_t used;
    if (r->chunked) {
        ssize_t n = http1_chunked_feed(&r->ch, data, len, body_append, r);
        if (n < 0) {
            r->keep_alive = false;
            hs_error(r, 400, "BadRequest", "invalid chunked body: %s",
                     r->ch.error ? r->ch.error : "malformed");
            return len;
        }
        used = (size_t)n;
    } else {
        used = len < r->body_left ? len : (size_t)r->body_left;
        body_append(r, data, used);
        r->body_left -= used;
    }
    if (r->body_len > r->body_max) {
        r->keep_alive = false;
        hs_error(r, 413, "RequestEntityTooLarge", "request body over %zu bytes",
                 r->body_max);
        return len;
    }
    loop_timer_start(hc->srv->loop, &hc->timer, hc->srv->cfg.body_timeout_ms, on_timer);
    if (r->chunked ? r->ch.done : r->body_left == 0)
        body_finished(hc, r);
    return used;
}

void hs_read_body(struct hs_req *r, size_t max,
                  void (*done)(struct hs_req *r, void *ud), void *ud)
{
    struct hs_conn *hc = r->hc;
    r->body_cb = done;
    r->body_ud = ud;
    r->body_max = max;
    if (!r->has_body) {
        r->body_done = true;
        done(r, ud);
        return;
    }
    if (!hc) {
        hs_respond(r, 499, NULL, NULL, 0, NULL);
        return;
    }
    if (!r->chunked && r->body_left > max) {
        r->keep_alive = false;
        hs_error(r, 413, "RequestEntityTooLarge", "request body over %zu bytes", max);
        return;
    }
    r->body_len = 0;
    if (!body_reserve(r, r->body_left < 65536 ? (size_t)r->body_left : 65536)) {
        r->keep_alive = false;
        hs_error(r, 503, "ServiceUnavailable", "out of memory");
        return;
    }
    hc->state = HC_BODY;
    loop_timer_start(hc->srv->loop, &hc->timer, hc->srv->cfg.body_timeout_ms, on_timer);
    conn_resume_read(hc->c);
}

/* ---- conn callbacks ---- */

static size_t on_read(struct conn *c, uint8_t *data, size_t len)
{
    struct hs_conn *hc = conn_ud(c);
    switch (hc->state) {
    case HC_HEAD:
        return read_head(hc, data, len);
    case HC_BODY:
        return read_body(hc, data, len);
    case HC_BUSY:
        break;
    }
    return 0;   /* held until the handler is done */
}

static void on_close(struct conn *c, const char *why)
{
    struct hs_conn *hc = conn_ud(c);
    (void)why;
    hc->c = NULL;
    hc_free(hc);
}

static void on_eof(struct conn *c)
{
    struct hs_conn *hc = conn_ud(c);
    /* A client that half-closes after its request still gets the answer;
     * one that closes between requests is simply done. */
    if (hc->state == HC_HEAD)
        hc_close(hc, hc->buf_len > 0);
}

static const struct conn_ops hs_conn_ops = {
    .on_read = on_read,
    .on_eof = on_eof,
    .on_close = on_close,
};

static void log_refusal(struct hs *s, const char *ip, const char *why)
{
    uint64_t now = loop_now_ms(s->loop);
    if (s->refusal_logged_ms && now - s->refusal_logged_ms < 10000) {
        s->refusals_unlogged++;
        return;
    }
    log_warn("refused a connection from %s: %s (%lu more refused since the last message)",
             ip, why, s->refusals_unlogged);
    s->refusal_logged_ms = now;
    s->refusals_unlogged = 0;
}

/* Whether a new connection from peer is over a limit (then it was counted
 * and logged, and the caller closes it). */
static bool over_limit(struct hs *s, const char *peer)
{
    char ip[48];
    ip_of(peer, ip, sizeof(ip));
    if (s->cfg.max_conns && conn_live_count() >= s->cfg.max_conns) {
        refused_count[HS_REFUSED_TOTAL]++;
        log_refusal(s, ip, "the server holds max-connections already");
        return true;
    }
    if (s->per_ip && ip_count(s, ip) >= s->cfg.max_conns_per_ip) {
        refused_count[HS_REFUSED_PER_IP]++;
        log_refusal(s, ip, "that address holds max-conns-per-ip unauthenticated "
                           "connections already");
        return true;
    }
    return false;
}

static void peer_of_fd(int fd, char *out, size_t cap)
{
    struct sockaddr_storage ss;
    socklen_t sl = sizeof(ss);
    out[0] = '\0';
    if (getpeername(fd, (struct sockaddr *)&ss, &sl) != 0)
        return;
    struct netaddr a = { .len = sl };
    memcpy(&a.ss, &ss, sl);
    netaddr_format(&a, out, cap);
}

unsigned long long hs_refused(enum hs_refusal why)
{
    return refused_count[why];
}

static void on_accept(struct listener *ls, int fd, void *ud)
{
    struct hs *s = ud;
    (void)ls;
    char peer[64];
    peer_of_fd(fd, peer, sizeof(peer));
    if (over_limit(s, peer)) {
        close(fd);
        return;
    }
    struct hs_conn *hc = calloc(1, sizeof(*hc));
    if (!hc) {
        close(fd);
        return;
    }
    hc->srv = s;
    hc->c = conn_adopt(s->loop, fd, s->ctx, &hs_conn_ops, hc);
    if (!hc->c) {
        free(hc);
        return;
    }
    hc->next = s->conns;
    if (s->conns)
        s->conns->prev = hc;
    s->conns = hc;
    s->nconns++;
    ip_add(s, hc, peer);
    loop_timer_start(s->loop, &hc->timer, s->cfg.head_timeout_ms, on_timer);
}

void hs_adopt(struct hs *s, struct conn *c)
{
    struct hs_conn *hc = calloc(1, sizeof(*hc));
    if (!hc) {
        conn_close(c);
        return;
    }
    hc->srv = s;
    hc->c = c;
    conn_set_ops(c, &hs_conn_ops);
    conn_set_ud(c, hc);
    hc->next = s->conns;
    if (s->conns)
        s->conns->prev = hc;
    s->conns = hc;
    s->nconns++;
    ip_add(s, hc, conn_peer(c));
    start_idle(hc);
}

/* ---- public ---- */

struct hs *hs_new(struct loop *l, SSL_CTX *ctx, const struct hs_cfg *cfg,
                  hs_dispatch_fn dispatch_fn, void *ud)
{
    struct hs *s = calloc(1, sizeof(*s));
    if (!s)
        return NULL;
    s->loop = l;
    s->ctx = ctx;
    s->cfg = *cfg;
    if (!s->cfg.max_head)
        s->cfg.max_head = 16 * 1024;
    if (!s->cfg.head_timeout_ms)
        s->cfg.head_timeout_ms = 10000;
    if (!s->cfg.idle_timeout_ms)
        s->cfg.idle_timeout_ms = 60000;
    if (!s->cfg.body_timeout_ms)
        s->cfg.body_timeout_ms = 30000;
    s->dispatch = dispatch_fn;
    s->ud = ud;
    if (s->cfg.max_conns_per_ip && !(s->per_ip = hmap_new())) {
        free(s);
        return NULL;
    }
    return s;
}

int hs_listen(struct hs *s, const struct netaddr *a, const char **err)
{
    s->ls = listener_new(s->loop, a, on_accept, s, err);
    return s->ls ? 0 : -1;
}

int hs_port(const struct hs *s)
{
    return s->ls ? listener_port(s->ls) : 0;
}

unsigned long hs_connection_count(const struct hs *s)
{
    return s->nconns;
}

void hs_free(struct hs *s)
{
    if (!s)
        return;
    listener_free(s->ls);
    while (s->conns)
        hc_close(s->conns, false);
    hmap_free(s->per_ip);
    free(s);
}

const struct http_request *hs_request(const struct hs_req *r) { return &r->http; }
const char *hs_peer(const struct hs_req *r) { return r->peer; }
bool hs_client_alive(const struct hs_req *r) { return r->hc && r->hc->c; }
uint64_t hs_elapsed_us(const struct hs_req *r) { return now_us() - r->start_us; }

const char *hs_path(const struct hs_req *r, size_t *len)
{
    *len = r->path_len;
    return r->path;
}

const char *hs_query(const struct hs_req *r, size_t *len)
{
    *len = r->query_len;
    return r->query ? r->query : "";
}

bool hs_method_is(const struct hs_req *r, const char *m)
{
    size_t n = strlen(m);
    return r->http.method_len == n && memcmp(r->http.method, m, n) == 0;
}

const struct http_header *hs_header(const struct hs_req *r, const char *name)
{
    return http1_find(r->http.headers, r->http.num_headers, name);
}

const uint8_t *hs_body(const struct hs_req *r, size_t *len)
{
    *len = r->body_len;
    return r->body;
}

struct conn *hs_takeover(struct hs_req *r)
{
    struct hs_conn *hc = r->hc;
    struct hs *s = r->srv;
    if (s->cfg.on_answered)
        s->cfg.on_answered(r, 101, now_us() - r->start_us, s->ud);
    struct conn *c = hc ? hc->c : NULL;
    if (hc) {
        hc->c = NULL;
        hc->req = NULL;
        hc_free(hc);
    }
    req_free(r);
    if (c) {
        conn_pause_read(c);
        conn_set_ud(c, NULL);
    }
    return c;
}
