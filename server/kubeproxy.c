/*
 * kubeproxy: kubectl traffic over a cluster's tunnel. See kubeproxy.h.
 *
 * One exchange = one stream. The request head is rebuilt here (prefix
 * stripped, drover credentials and impersonation headers removed), the body
 * follows as the client sends it, and the stream is half-closed once the
 * request is complete (an upgrade request keeps it open). The answer is
 * copied to the client as it arrives while a side copy of its head gives its
 * framing, so the connection can go back to the HTTPS server for the next
 * request. Memory per exchange is bounded like relay.c: one held read chunk
 * one way, the stream window plus PX_HIGH_WATER the other.
 */
#include "server/kubeproxy.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/httpmsg.h"
#include "common/log.h"
#include "proto/frame.h"
#include "server/audit.h"

#define PX_MAX_HEAD (64 * 1024)
#define PX_HIGH_WATER (256u * 1024)

struct px {
    struct hs *srv;
    struct conn *c;             /* the client, once taken over */
    struct tun_stream *s;
    struct httpmsg req, resp;
    bool keep_alive, upgrade_req, head_req, raw;
    bool req_done, resp_started, resp_done, resp_reusable, closed_ours;
    struct httpmsg_head rh;     /* the answer head, for its framing */
    size_t credit_held;
    struct px_audit *audit;     /* the audit line's fields, if auditing */
};

/* What the audit line of an exchange needs once the request is gone. */
struct px_audit {
    uint64_t start_us;
    int status;                 /* our own answer's, if we gave one */
    char user[128], cluster[64], method[16], remote[48];
    size_t path_len;
    char path[];
};

static unsigned long active;

unsigned long kubeproxy_active(void)
{
    return active;
}

static const struct conn_ops px_client_ops;
static const struct tun_stream_ops px_stream_ops;
static bool close_ours(struct px *p);

/* ---- answers of our own (in Kubernetes' Status shape, for kubectl) ---- */

static char *status_json(int code, const char *reason, const char *msg, size_t *len)
{
    json_t *j = json_pack("{s:s,s:s,s:{},s:s,s:s,s:s,s:i}", "kind", "Status",
                          "apiVersion", "v1", "metadata", "status", "Failure",
                          "message", msg, "reason", reason, "code", code);
    char *s = j ? json_dumps(j, JSON_COMPACT) : NULL;
    json_decref(j);
    *len = s ? strlen(s) : 0;
    return s;
}

static void answer_before_takeover(struct px *p, struct hs_req *r, int code,
                                   const char *reason, const char *msg)
{
    if (p && p->audit)
        p->audit->status = code;
    size_t len;
    char *body = status_json(code, reason, msg, &len);
    hs_respond(r, code, "application/json", body ? body : "", body ? len : 0, NULL);
    free(body);
}

/* After takeover, before any answer byte: write the error and close. */
static void answer_after_takeover(struct px *p, int code, const char *reason,
                                  const char *msg)
{
    if (p->audit)
        p->audit->status = code;
    size_t len;
    char *body = status_json(code, reason, msg, &len);
    char head[256];
    int n = snprintf(head, sizeof(head),
                     "HTTP/1.1 %d %s\r\nContent-Type: application/json\r\n"
                     "Content-Length: %zu\r\nConnection: close\r\n\r\n",
                     code, http1_reason(code), len);
    conn_write2(p->c, head, (size_t)n, body ? body : "", len);
    free(body);
    conn_close_after_flush(p->c, 5000);
    p->c = NULL;
}

/* ---- lifetime ---- */

static void audit_exchange(struct px *p)
{
    struct px_audit *a = p->audit;
    /* The upstream answer's status; ours; or 499: the client left first. */
    int status = p->rh.done ? p->rh.status : a->status ? a->status : 499;
    struct audit_rec ar = { .kind = "kube", .user = a->user, .cluster = a->cluster,
                            .method = a->method, .path = a->path, .path_len = a->path_len,
                            .status = status, .duration_us = loop_clock_ms() * 1000 - a->start_us,
                            .remote = a->remote };
    audit_record(&ar);
    free(a);
}

static void px_free(struct px *p)
{
    if (p->audit)
        audit_exchange(p);
    active--;
    httpmsg_head_free(&p->rh);
    free(p);
}

static void maybe_done(struct px *p)
{
    if (p->c || p->s)
        return;
    px_free(p);
}

/* The answer is complete and the stream is over: the client connection goes
 * back to the HTTPS server if it can carry another request. */
static void finish_client(struct px *p)
{
    struct conn *c = p->c;
    p->c = NULL;
    if (!c)
        return;
    if (p->keep_alive && p->resp_reusable && p->req_done && !p->raw)
        hs_adopt(p->srv, c);
    else
        conn_close_after_flush(c, 5000);
}

/* ---- stream -> client ---- */

static int track_head(struct px *p, const uint8_t *d, size_t n, size_t *body_off)
{
    int r = httpmsg_head_feed(&p->rh, d, n, p->head_req, &p->resp, body_off);
    if (r == 1) {
        p->raw = p->rh.status == 101;
        p->resp_reusable = p->rh.keep_alive;
    }
    return r;
}

static void s_data(struct tun_stream *s, const uint8_t *d, size_t n)
{
    struct px *p = tun_stream_ud(s);
    if (!p->c)
        return;
    size_t off = 0;
    p->resp_started = true;
    if (!p->rh.done) {
        int t = track_head(p, d, n, &off);
        if (t < 0) {
            tun_stream_reset(s, TUN_RESET_PROTOCOL, "malformed answer");
            p->s = NULL;
            conn_close(p->c);
            p->c = NULL;
            maybe_done(p);
            return;
        }
    }
    if (conn_write(p->c, d, n) < 0) {
        tun_stream_reset(s, TUN_RESET_CANCEL, "client write failed");
        p->s = NULL;
        conn_close(p->c);
        p->c = NULL;
        maybe_done(p);
        return;
    }
    if (p->rh.done && !p->raw && off < n) {
        ssize_t r = httpmsg_feed(&p->resp, d + off, n - off);
        if (r < 0 || (size_t)r < n - off)
            p->resp_reusable = false;
        if (p->resp.done)
            p->resp_done = true;
    }
    if (conn_out_pending(p->c) < PX_HIGH_WATER)
        tun_stream_consumed(s, n);
    else
        p->credit_held += n;
}

static void s_eof(struct tun_stream *s)
{
    struct px *p = tun_stream_ud(s);
    if (!p->resp_started && p->c) {
        answer_after_takeover(p, 502, "BadGateway", "the cluster agent closed the exchange");
        close_ours(p);
        return;
    }
    if (p->raw && p->c) {
        /* The upgraded session is over upstream; the client is TLS, where a
         * half-close is a close. */
        conn_close_after_flush(p->c, 5000);
        p->c = NULL;
        close_ours(p);
        return;
    }
    if (!p->raw && !p->resp_done && p->resp.kind == HM_UNTIL_CLOSE)
        p->resp_done = true;
    /* A refused upgrade (no 101) is an ordinary answer: end our side too. */
    if (!p->raw && p->req_done)
        close_ours(p);
}

static void s_writable(struct tun_stream *s)
{
    struct px *p = tun_stream_ud(s);
    if (p->c)
        conn_resume_read(p->c);
}

static void s_end(struct tun_stream *s, uint16_t code, const char *reason)
{
    struct px *p = tun_stream_ud(s);
    p->s = NULL;
    if (code != 0 && p->c) {
        if (!p->resp_started) {
            char msg[400];
            snprintf(msg, sizeof(msg), "cluster link: %s (%s)", reason ? reason : "",
                     tun_reset_code_name(code));
            bool down = code == TUN_RESET_UNAVAILABLE || code == TUN_RESET_UNREACHABLE;
            answer_after_takeover(p, down ? 503 : 502,
                                  down ? "ServiceUnavailable" : "BadGateway", msg);
        } else {
            conn_close(p->c);
            p->c = NULL;
        }
    } else if (p->c) {
        if (!p->resp_done && !p->raw)
            p->resp_reusable = false;
        finish_client(p);
    }
    maybe_done(p);
}

static const struct tun_stream_ops px_stream_ops = {
    .on_data = s_data,
    .on_eof = s_eof,
    .on_writable = s_writable,
    .on_end = s_end,
};

/* ---- client -> stream ---- */

/* Half-closes our side of the stream. true if that ended the stream (and
 * the client was dealt with). */
static bool close_ours(struct px *p)
{
    if (!p->s || p->closed_ours)
        return false;
    p->closed_ours = true;
    if (tun_stream_close(p->s) != 1)
        return false;
    p->s = NULL;
    finish_client(p);
    maybe_done(p);
    return true;
}

static void close_request(struct px *p)
{
    p->req_done = true;
    /* An upgrade request keeps its stream open for the session. */
    if (!p->upgrade_req)
        close_ours(p);
}

static size_t c_read(struct conn *c, uint8_t *d, size_t n)
{
    struct px *p = conn_ud(c);
    if (!p->s)
        return n;
    size_t want = n;
    if (!p->raw) {
        if (p->req_done)
            return 0;   /* a pipelined request waits until this exchange ends */
        struct httpmsg probe = p->req;
        ssize_t r = httpmsg_feed(&probe, d, n);
        if (r < 0) {
            tun_stream_reset(p->s, TUN_RESET_CANCEL, "malformed request body");
            p->s = NULL;
            conn_close(c);
            p->c = NULL;
            maybe_done(p);
            return n;
        }
        want = (size_t)r;
    }
    ssize_t sent = want ? tun_stream_send(p->s, d, want) : 0;
    if (sent < 0) {
        tun_stream_reset(p->s, TUN_RESET_CANCEL, "stream cannot send");
        p->s = NULL;
        conn_close(c);
        p->c = NULL;
        maybe_done(p);
        return n;
    }
    if (!p->raw) {
        httpmsg_feed(&p->req, d, (size_t)sent);
        if (p->req.done)
            close_request(p);
    }
    return (size_t)sent;
}

static void c_eof(struct conn *c)
{
    struct px *p = conn_ud(c);
    if (p->raw && p->s) {
        close_ours(p);
        return;
    }
    /* A client that stops mid-request, or hangs up before the answer. */
    if (p->s)
        tun_stream_reset(p->s, TUN_RESET_CANCEL, "client went away");
    p->s = NULL;
    conn_close(c);
    p->c = NULL;
    maybe_done(p);
}

static void c_drain(struct conn *c)
{
    struct px *p = conn_ud(c);
    if (p->s && p->credit_held) {
        size_t n = p->credit_held;
        p->credit_held = 0;
        tun_stream_consumed(p->s, n);
    }
}

static void c_close(struct conn *c, const char *why)
{
    struct px *p = conn_ud(c);
    (void)why;
    p->c = NULL;
    if (p->s)
        tun_stream_reset(p->s, TUN_RESET_CANCEL, "client went away");
    p->s = NULL;
    maybe_done(p);
}

static const struct conn_ops px_client_ops = {
    .on_read = c_read,
    .on_eof = c_eof,
    .on_drain = c_drain,
    .on_close = c_close,
};

/* ---- building the exchange ---- */

static bool put(char *b, size_t cap, size_t *len, const void *s, size_t n)
{
    if (n > cap - *len)
        return false;
    memcpy(b + *len, s, n);
    *len += n;
    return true;
}

/* The request as the agent should send it upstream (it adds Host and the
 * credentials). 0 if it does not fit. */
static size_t build_head(const struct hs_req *r, size_t prefix_len, char *out, size_t cap)
{
    const struct http_request *rq = hs_request(r);
    size_t plen, qlen, len = 0;
    const char *path = hs_path(r, &plen);
    const char *query = hs_query(r, &qlen);
    const char *rest = path + prefix_len;
    size_t rlen = plen - prefix_len;
    bool ok = put(out, cap, &len, rq->method, rq->method_len) && put(out, cap, &len, " ", 1) &&
              (rlen ? put(out, cap, &len, rest, rlen) : put(out, cap, &len, "/", 1)) &&
              (!qlen || (put(out, cap, &len, "?", 1) && put(out, cap, &len, query, qlen))) &&
              put(out, cap, &len, " HTTP/1.1\r\n", 11);
    for (size_t i = 0; ok && i < rq->num_headers; i++) {
        const struct http_header *h = &rq->headers[i];
        if (httpmsg_proxy_drops(h))
            continue;
        ok = put(out, cap, &len, h->name, h->name_len) && put(out, cap, &len, ": ", 2) &&
             put(out, cap, &len, h->value, h->value_len) && put(out, cap, &len, "\r\n", 2);
    }
    ok = ok && put(out, cap, &len, "\r\n", 2);
    return ok ? len : 0;
}

static bool setup_exchange(struct px *p, struct hs_req *r, size_t prefix_len,
                           struct tunnels *ts, const char *cluster, const char *username)
{
    const struct http_request *rq = hs_request(r);
    const char *why;
    if (httpmsg_request(&p->req, rq, &why) < 0) {
        answer_before_takeover(p, r, 400, "BadRequest", why);
        return false;
    }
    p->keep_alive = httpmsg_keep_alive(rq->minor_version, rq->headers, rq->num_headers);
    p->upgrade_req = http1_find(rq->headers, rq->num_headers, "upgrade") != NULL;
    p->head_req = hs_method_is(r, "HEAD");
    char *head = malloc(PX_MAX_HEAD);
    size_t hl = head ? build_head(r, prefix_len, head, PX_MAX_HEAD) : 0;
    char user[300];
    snprintf(user, sizeof(user), "drover:%s", username);
    json_t *mj = json_pack("{s:s,s:[s]}", "user", user, "groups", "drover:authenticated");
    char *meta = mj ? json_dumps(mj, JSON_COMPACT) : NULL;
    json_decref(mj);
    if (!hl || !meta) {
        free(head);
        free(meta);
        answer_before_takeover(p, r, 431, "RequestHeaderFieldsTooLarge", "request head too large");
        return false;
    }
    /* The local link, or the replica that holds it (docs/REPLICAS.md). */
    p->s = tunnels_open_stream(ts, cluster, "kube-api", meta, strlen(meta), &px_stream_ops,
                               p);
    free(meta);
    /* The head fits the early window: no round trip before it goes. */
    if (!p->s || tun_stream_send(p->s, head, hl) != (ssize_t)hl) {
        free(head);
        if (p->s)
            tun_stream_reset(p->s, TUN_RESET_INTERNAL, "cannot send the request");
        p->s = NULL;
        answer_before_takeover(p, r, 503, "ServiceUnavailable", "the cluster link is busy");
        return false;
    }
    free(head);
    return true;
}

static void audit_start(struct px *p, struct hs_req *r, const char *cluster,
                        const char *username)
{
    size_t plen;
    const char *path = hs_path(r, &plen);
    if (!audit_enabled() || !(p->audit = calloc(1, sizeof(*p->audit) + plen + 1)))
        return;
    struct px_audit *a = p->audit;
    const struct http_request *rq = hs_request(r);
    a->start_us = loop_clock_ms() * 1000 - hs_elapsed_us(r);
    snprintf(a->user, sizeof(a->user), "%s", username);
    snprintf(a->cluster, sizeof(a->cluster), "%s", cluster);
    snprintf(a->method, sizeof(a->method), "%.*s", (int)rq->method_len, rq->method);
    snprintf(a->remote, sizeof(a->remote), "%s", hs_peer(r));
    memcpy(a->path, path, plen);
    a->path_len = plen;
}

void kubeproxy_forward(struct hs *srv, struct tunnels *ts, struct hs_req *r,
                       const char *cluster, const char *username)
{
    struct px *p = calloc(1, sizeof(*p));
    if (!p) {
        answer_before_takeover(NULL, r, 503, "ServiceUnavailable", "out of memory");
        return;
    }
    active++;
    p->srv = srv;
    audit_start(p, r, cluster, username);
    if (!tunnels_reachable(ts, cluster)) {
        char msg[200];
        snprintf(msg, sizeof(msg), "cluster %s is not connected to drover", cluster);
        answer_before_takeover(p, r, 503, "ServiceUnavailable", msg);
        px_free(p);
        return;
    }
    size_t prefix_len = strlen(KUBEPROXY_PREFIX) + strlen(cluster);
    if (!setup_exchange(p, r, prefix_len, ts, cluster, username)) {
        px_free(p);
        return;
    }
    p->c = hs_takeover(r);
    if (!p->c) {
        tun_stream_reset(p->s, TUN_RESET_CANCEL, "client went away");
        px_free(p);
        return;
    }
    conn_set_ops(p->c, &px_client_ops);
    conn_set_ud(p->c, p);
    conn_set_high_water(p->c, PX_HIGH_WATER);
    if (p->req.done)
        close_request(p);
    if (p->c)
        conn_resume_read(p->c);
}
