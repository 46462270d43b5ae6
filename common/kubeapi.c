/*
 * kubeapi: one kube-apiserver exchange per stream. See kubeapi.h.
 *
 * The request head is collected (up to KX_MAX_HEAD), rewritten with the
 * agent's credentials, and sent upstream; the body follows as it comes,
 * counted by httpmsg so the agent knows where the request ends. The answer
 * is forwarded as it arrives; a copy of its head is parsed on the side to
 * learn its framing, which says when the exchange is over and whether the
 * upstream connection may serve the next one. Both directions are
 * flow-controlled like relay.c: stream credit is returned only once the
 * upstream connection has room, and upstream reading pauses while the stream
 * window is shut.
 */
#include "common/kubeapi.h"

#include <fcntl.h>
#include <jansson.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/conn.h"
#include "common/httpmsg.h"
#include "common/log.h"
#include "common/netaddr.h"
#include "common/tls.h"
#include "common/url.h"
#include "proto/frame.h"

#define KX_MAX_HEAD (64 * 1024)
#define KX_HIGH_WATER (256u * 1024)
#define KX_MAX_GROUPS 16
#define KX_POOL_MAX 64     /* idle keep-alive connections to the apiserver */
#define KX_IDLE_MS 60000
#define TOKEN_MAX KUBEAPI_TOKEN_MAX
#define TOKEN_RELOAD_MS 60000

struct upconn;

struct kubeapi {
    struct loop *loop;
    SSL_CTX *ctx;
    struct url url;
    struct netaddr addr;
    char *token_file;
    struct kubeapi_token tok;
    struct upconn *idle;        /* keep-alive connections, most recent first */
    size_t nidle;
};

struct upconn {
    struct kubeapi *k;
    struct conn *c;
    struct kx *kx;              /* the exchange using it, NULL when idle */
    struct upconn *next;
    struct loop_timer idle_timer;
};

enum kx_state { KX_HEAD, KX_FORWARD, KX_RAW };

struct kx {
    struct kubeapi *k;
    struct tun_stream *s;
    struct upconn *up;
    enum kx_state state;
    char user[256];
    char groups[KX_MAX_GROUPS][128];
    int ngroups;
    char *head;                 /* request head being collected */
    size_t head_len;
    bool head_request;          /* method HEAD: the answer has no body */
    struct httpmsg req, resp;
    struct httpmsg_head rh;     /* the answer head, for its framing */
    bool resp_done, req_done, reusable;
    size_t credit_held;
};

static const struct conn_ops up_ops, idle_ops;
static const struct tun_stream_ops kx_ops;

/* ---- credentials ---- */

/* The token of a projected service account rotates: read it again now and
 * then rather than once. */
int kubeapi_token_load(struct kubeapi_token *t, uint64_t now_ms)
{
    if (t->value[0] && now_ms - t->at < TOKEN_RELOAD_MS)
        return 0;
    int fd = open(t->file, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return t->value[0] ? 0 : -1;
    char buf[TOKEN_MAX];
    ssize_t n = read(fd, buf, sizeof(buf) - 1);
    close(fd);
    while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r' || buf[n - 1] == ' '))
        n--;
    if (n <= 0)
        return t->value[0] ? 0 : -1;
    memcpy(t->value, buf, (size_t)n);
    t->value[n] = '\0';
    t->at = now_ms;
    return 0;
}

static int load_token(struct kubeapi *k)
{
    return kubeapi_token_load(&k->tok, loop_now_ms(k->loop));
}

/* ---- exchange lifetime ---- */

static void kx_free(struct kx *x)
{
    free(x->head);
    httpmsg_head_free(&x->rh);
    free(x);
}

static void pool_put(struct kubeapi *k, struct upconn *u);

/* Lets go of the upstream connection: back to the pool if it can serve
 * another request, closed otherwise. */
static void release_up(struct kx *x, bool reusable)
{
    struct upconn *u = x->up;
    if (!u)
        return;
    x->up = NULL;
    u->kx = NULL;
    if (reusable)
        pool_put(x->k, u);
    else {
        conn_close(u->c);
        free(u);
    }
}

/* The exchange failed: reset the stream (if still ours) and drop upstream. */
static void kx_abort(struct kx *x, uint16_t code, const char *why)
{
    release_up(x, false);
    if (x->s)
        tun_stream_reset(x->s, code, why);
    x->s = NULL;
    kx_free(x);
}

/* Both halves are finished: the answer went out and the request came in. */
static void maybe_finish(struct kx *x)
{
    if (!x->resp_done || !x->s)
        return;
    release_up(x, x->reusable && x->req_done);
    if (tun_stream_close(x->s) == 1) {
        x->s = NULL;
        kx_free(x);
    }
}

/* ---- upstream connections ---- */

static void on_idle_timeout(struct loop_timer *t)
{
    struct upconn *u = (struct upconn *)((char *)t - offsetof(struct upconn, idle_timer));
    struct kubeapi *k = u->k;
    for (struct upconn **pp = &k->idle; *pp; pp = &(*pp)->next) {
        if (*pp == u) {
            *pp = u->next;
            k->nidle--;
            break;
        }
    }
    conn_close(u->c);
    free(u);
}

static void pool_remove(struct kubeapi *k, struct upconn *u)
{
    for (struct upconn **pp = &k->idle; *pp; pp = &(*pp)->next) {
        if (*pp == u) {
            *pp = u->next;
            k->nidle--;
            break;
        }
    }
    loop_timer_stop(k->loop, &u->idle_timer);
}

static void pool_put(struct kubeapi *k, struct upconn *u)
{
    if (k->nidle >= KX_POOL_MAX) {
        conn_close(u->c);
        free(u);
        return;
    }
    conn_set_ops(u->c, &idle_ops);
    conn_resume_read(u->c);     /* to notice the apiserver closing it */
    u->next = k->idle;
    k->idle = u;
    k->nidle++;
    loop_timer_start(k->loop, &u->idle_timer, KX_IDLE_MS, on_idle_timeout);
}

static struct upconn *pool_get(struct kubeapi *k, struct kx *x)
{
    struct upconn *u = k->idle;
    if (u) {
        pool_remove(k, u);
        conn_set_ops(u->c, &up_ops);
    } else {
        u = calloc(1, sizeof(*u));
        if (!u)
            return NULL;
        u->k = k;
        u->c = conn_connect(k->loop, (struct sockaddr *)&k->addr.ss, k->addr.len, k->ctx,
                            k->url.host, k->url.host_is_ip, &up_ops, u);
        if (!u->c) {
            free(u);
            return NULL;
        }
        conn_set_high_water(u->c, KX_HIGH_WATER);
    }
    u->kx = x;
    return u;
}

/* An idle connection must stay silent; anything it says ends it. */
static size_t idle_read(struct conn *c, uint8_t *data, size_t len)
{
    struct upconn *u = conn_ud(c);
    (void)data;
    pool_remove(u->k, u);
    conn_close(c);
    free(u);
    return len;
}

static void idle_close(struct conn *c, const char *why)
{
    struct upconn *u = conn_ud(c);
    (void)why;
    pool_remove(u->k, u);
    free(u);
}

static const struct conn_ops idle_ops = { .on_read = idle_read, .on_close = idle_close };

/* ---- the answer (upstream -> stream) ---- */

/* Learns the answer's framing from the bytes forwarded so far. */
static int track_head(struct kx *x, const uint8_t *p, size_t n, size_t *body_off)
{
    int r = httpmsg_head_feed(&x->rh, p, n, x->head_request, &x->resp, body_off);
    if (r < 0) {
        log_warn("the kube-apiserver sent a malformed answer head");
        return -1;
    }
    if (r == 1) {
        if (x->rh.status == 101)
            x->state = KX_RAW;
        x->reusable = x->rh.keep_alive;
    }
    return 0;
}

/* Accounts for n bytes forwarded to the stream. false if x is gone. */
static bool forwarded(struct kx *x, const uint8_t *p, size_t n)
{
    size_t off = 0;
    if (!x->rh.done && track_head(x, p, n, &off) < 0) {
        kx_abort(x, TUN_RESET_PROTOCOL, "malformed answer from the kube-apiserver");
        return false;
    }
    if (!x->rh.done || x->state == KX_RAW || x->resp_done)
        return true;
    ssize_t r = httpmsg_feed(&x->resp, p + off, n - off);
    if (r < 0) {
        kx_abort(x, TUN_RESET_PROTOCOL, "malformed chunked answer from the kube-apiserver");
        return false;
    }
    if ((size_t)r < n - off)
        x->reusable = false;    /* bytes past the answer: do not trust the connection */
    if (x->resp.done) {
        x->resp_done = true;
        maybe_finish(x);
        return false;
    }
    return true;
}

static size_t up_read(struct conn *c, uint8_t *data, size_t len)
{
    struct upconn *u = conn_ud(c);
    struct kx *x = u->kx;
    if (!x || !x->s)
        return len;
    ssize_t n = tun_stream_send(x->s, data, len);
    if (n < 0) {
        kx_abort(x, TUN_RESET_CANCEL, "stream cannot send");
        return len;
    }
    if (n > 0 && !forwarded(x, data, (size_t)n))
        return len;
    return (size_t)n;
}

static void up_eof(struct conn *c)
{
    struct upconn *u = conn_ud(c);
    struct kx *x = u->kx;
    if (!x) {
        conn_close(c);
        free(u);
        return;
    }
    if (x->rh.done && (x->state == KX_RAW || x->resp.kind == HM_UNTIL_CLOSE)) {
        x->resp_done = true;
        x->reusable = false;
        x->req_done = true;     /* nothing more can be sent upstream anyway */
        maybe_finish(x);
        return;
    }
    kx_abort(x, x->rh.done ? TUN_RESET_CANCEL : TUN_RESET_UNAVAILABLE,
             "the kube-apiserver closed the connection");
}

static void up_close(struct conn *c, const char *why)
{
    struct upconn *u = conn_ud(c);
    struct kx *x = u->kx;
    free(u);
    if (!x)
        return;
    x->up = NULL;
    char msg[300];
    snprintf(msg, sizeof(msg), "kube-apiserver: %s", why);
    log_warn("%s", msg);
    kx_abort(x, x->rh.done ? TUN_RESET_CANCEL : TUN_RESET_UNAVAILABLE, msg);
}

static void up_drain(struct conn *c)
{
    struct upconn *u = conn_ud(c);
    struct kx *x = u->kx;
    if (x && x->s && x->credit_held) {
        size_t n = x->credit_held;
        x->credit_held = 0;
        tun_stream_consumed(x->s, n);
    }
}

static const struct conn_ops up_ops = {
    .on_read = up_read,
    .on_eof = up_eof,
    .on_drain = up_drain,
    .on_close = up_close,
};

/* ---- the request (stream -> upstream) ---- */

/* Appends to a bounded buffer; false when it would not fit. */
static bool put(char *buf, size_t cap, size_t *len, const char *s, size_t n)
{
    if (n > cap - *len)
        return false;
    memcpy(buf + *len, s, n);
    *len += n;
    return true;
}

static bool put_header(char *buf, size_t cap, size_t *len, const char *name,
                       const char *value, size_t vlen)
{
    return put(buf, cap, len, name, strlen(name)) && put(buf, cap, len, ": ", 2) &&
           put(buf, cap, len, value, vlen) && put(buf, cap, len, "\r\n", 2);
}

/* Writes the rewritten head into out. Returns its length, 0 if too big. */
static size_t rewrite_head(struct kx *x, const struct http_request *rq, char *out, size_t cap)
{
    size_t len = 0;
    char host[300];
    url_hostport(&x->k->url, host, sizeof(host));
    bool ok = put(out, cap, &len, rq->method, rq->method_len) && put(out, cap, &len, " ", 1) &&
              put(out, cap, &len, rq->target, rq->target_len) &&
              put(out, cap, &len, " HTTP/1.1\r\n", 11) &&
              put_header(out, cap, &len, "Host", host, strlen(host));
    for (size_t i = 0; ok && i < rq->num_headers; i++) {
        const struct http_header *h = &rq->headers[i];
        if (httpmsg_proxy_drops(h))
            continue;
        ok = put(out, cap, &len, h->name, h->name_len) && put(out, cap, &len, ": ", 2) &&
             put(out, cap, &len, h->value, h->value_len) && put(out, cap, &len, "\r\n", 2);
    }
    const struct http_header *up = http1_find(rq->headers, rq->num_headers, "upgrade");
    if (ok && up)
        ok = put_header(out, cap, &len, "Connection", "Upgrade", 7);
    ok = ok && put(out, cap, &len, "Authorization: Bearer ", 22) &&
         put(out, cap, &len, x->k->tok.value, strlen(x->k->tok.value)) && put(out, cap, &len, "\r\n", 2) &&
         put_header(out, cap, &len, "Impersonate-User", x->user, strlen(x->user));
    for (int g = 0; ok && g < x->ngroups; g++)
        ok = put_header(out, cap, &len, "Impersonate-Group", x->groups[g], strlen(x->groups[g]));
    ok = ok && put(out, cap, &len, "\r\n", 2);
    return ok ? len : 0;
}

/* Sends body bytes upstream, counting the request's end. */
static void send_up(struct kx *x, const uint8_t *p, size_t n)
{
    size_t take = n;
    if (x->state != KX_RAW) {
        ssize_t r = httpmsg_feed(&x->req, p, n);
        if (r < 0) {
            kx_abort(x, TUN_RESET_PROTOCOL, "malformed chunked request body");
            return;
        }
        take = (size_t)r;
        x->req_done = x->req.done;
    }
    if (take && conn_write(x->up->c, p, take) < 0) {
        kx_abort(x, TUN_RESET_CANCEL, "upstream write failed");
        return;
    }
    /* Extra bytes after the request are dropped: the server never pipelines. */
    if (conn_out_pending(x->up->c) < KX_HIGH_WATER)
        tun_stream_consumed(x->s, n);
    else
        x->credit_held += n;
}

static void start_request(struct kx *x, const struct http_request *rq, size_t hl)
{
    const char *why = NULL;
    if (load_token(x->k) < 0) {
        kx_abort(x, TUN_RESET_UNAVAILABLE, "cannot read the service-account token");
        return;
    }
    if (httpmsg_request(&x->req, rq, &why) < 0) {
        kx_abort(x, TUN_RESET_PROTOCOL, why);
        return;
    }
    x->head_request = rq->method_len == 4 && memcmp(rq->method, "HEAD", 4) == 0;
    x->req_done = x->req.done;
    char *out = malloc(KX_MAX_HEAD + TOKEN_MAX + 4096);
    size_t len = out ? rewrite_head(x, rq, out, KX_MAX_HEAD + TOKEN_MAX + 4096) : 0;
    x->up = len ? pool_get(x->k, x) : NULL;
    if (!x->up || conn_write(x->up->c, out, len) < 0) {
        free(out);
        kx_abort(x, TUN_RESET_UNAVAILABLE, "cannot reach the kube-apiserver");
        return;
    }
    free(out);
    x->state = KX_FORWARD;
    uint8_t *rest = (uint8_t *)x->head + hl;
    size_t nrest = x->head_len - hl;
    tun_stream_consumed(x->s, hl);
    if (nrest)
        send_up(x, rest, nrest);
}

static void collect_head(struct kx *x, const uint8_t *p, size_t n)
{
    if (n > KX_MAX_HEAD - x->head_len) {
        kx_abort(x, TUN_RESET_PROTOCOL, "request head too large");
        return;
    }
    memcpy(x->head + x->head_len, p, n);
    x->head_len += n;
    struct http_header h[64];
    struct http_request rq = { .headers = h, .num_headers = 64 };
    ssize_t hl = http1_parse_request(x->head, x->head_len, &rq);
    if (hl == -2)
        return;
    if (hl < 0) {
        kx_abort(x, TUN_RESET_PROTOCOL, "malformed request head");
        return;
    }
    start_request(x, &rq, (size_t)hl);
}

static void s_data(struct tun_stream *s, const uint8_t *p, size_t n)
{
    struct kx *x = tun_stream_ud(s);
    if (x->state == KX_HEAD)
        collect_head(x, p, n);
    else if (x->up)
        send_up(x, p, n);
    else
        tun_stream_consumed(s, n);
}

static void s_eof(struct tun_stream *s)
{
    struct kx *x = tun_stream_ud(s);
    if (x->state == KX_HEAD) {
        kx_abort(x, TUN_RESET_PROTOCOL, "stream ended inside the request head");
        return;
    }
    /* An upgraded session ends when the apiserver closes it (the client's
     * websocket close has gone up already); just note the request is over. */
    x->req_done = true;
}

static void s_writable(struct tun_stream *s)
{
    struct kx *x = tun_stream_ud(s);
    if (x->up)
        conn_resume_read(x->up->c);
}

static void s_end(struct tun_stream *s, uint16_t code, const char *reason)
{
    struct kx *x = tun_stream_ud(s);
    (void)code;
    (void)reason;
    x->s = NULL;
    /* A clean end with the answer complete may keep the connection. */
    release_up(x, code == 0 && x->resp_done && x->reusable && x->req_done);
    kx_free(x);
}

static const struct tun_stream_ops kx_ops = {
    .on_data = s_data,
    .on_eof = s_eof,
    .on_writable = s_writable,
    .on_end = s_end,
};

/* ---- serving ---- */

/* {"user":"drover:alice","groups":["drover:authenticated"]} */
static int parse_identity(struct kx *x, const uint8_t *meta, size_t len)
{
    json_t *j = json_loadb((const char *)meta, len, 0, NULL);
    const char *user = json_string_value(json_object_get(j, "user"));
    json_t *groups = json_object_get(j, "groups");
    int rc = -1;
    if (!user || !*user || strlen(user) >= sizeof(x->user) ||
        (groups && (!json_is_array(groups) || json_array_size(groups) > KX_MAX_GROUPS)))
        goto out;
    memcpy(x->user, user, strlen(user) + 1);
    for (size_t i = 0; groups && i < json_array_size(groups); i++) {
        const char *g = json_string_value(json_array_get(groups, i));
        if (!g || !*g || strlen(g) >= sizeof(x->groups[0]))
            goto out;
        memcpy(x->groups[x->ngroups++], g, strlen(g) + 1);
    }
    /* Header values must not carry line breaks. */
    rc = strpbrk(x->user, "\r\n") ? -1 : 0;
    for (int i = 0; rc == 0 && i < x->ngroups; i++)
        rc = strpbrk(x->groups[i], "\r\n") ? -1 : 0;
out:
    json_decref(j);
    return rc;
}

void kubeapi_serve(struct kubeapi *k, struct tun_stream *s, const uint8_t *meta,
                   size_t meta_len)
{
    struct kx *x = calloc(1, sizeof(*x));
    if (!x || !(x->head = malloc(KX_MAX_HEAD))) {
        free(x);
        tun_stream_reset(s, TUN_RESET_INTERNAL, "out of memory");
        return;
    }
    x->k = k;
    x->s = s;
    if (parse_identity(x, meta, meta_len) < 0) {
        kx_free(x);
        tun_stream_reset(s, TUN_RESET_PROTOCOL, "kube-api needs {\"user\":..,\"groups\":[..]}");
        return;
    }
    if (tun_stream_accept(s, &kx_ops, x) < 0) {
        kx_free(x);
        return;
    }
}

int kubeapi_endpoint(const struct kubeapi_cfg *cfg, struct url *url, struct netaddr *addr,
                     SSL_CTX **ctx, char *err, size_t errlen)
{
    const char *why = NULL;
    *ctx = NULL;
    if (url_parse(cfg->url, url, &why) < 0 || strcmp(url->scheme, "https") != 0) {
        snprintf(err, errlen, "kube-api %s: %s", cfg->url, why ? why : "must be https://");
        return -1;
    }
    struct addrinfo hints = { .ai_socktype = SOCK_STREAM }, *res = NULL;
    char port[8];
    snprintf(port, sizeof(port), "%d", url->port);
    if (getaddrinfo(url->host, port, &hints, &res) != 0 || !res) {
        snprintf(err, errlen, "kube-api: cannot resolve %s", url->host);
        return -1;
    }
    memcpy(&addr->ss, res->ai_addr, res->ai_addrlen);
    addr->len = res->ai_addrlen;
    freeaddrinfo(res);
    FILE *f = fopen(cfg->ca_file, "r");
    char *pem = f ? malloc(1 << 20) : NULL;
    size_t n = pem ? fread(pem, 1, (1 << 20) - 1, f) : 0;
    if (f)
        fclose(f);
    if (!pem || n == 0) {
        free(pem);
        snprintf(err, errlen, "kube-api CA file %s cannot be read", cfg->ca_file);
        return -1;
    }
    *ctx = tls_client_ctx_pinned(pem, n, err, errlen);
    free(pem);
    return *ctx ? 0 : -1;
}

struct kubeapi *kubeapi_new(struct loop *l, const struct kubeapi_cfg *cfg,
                            char *err, size_t errlen)
{
    struct kubeapi *k = calloc(1, sizeof(*k));
    if (!k) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    k->loop = l;
    k->token_file = strdup(cfg->token_file);
    if (!k->token_file) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    k->tok.file = k->token_file;
    if (kubeapi_endpoint(cfg, &k->url, &k->addr, &k->ctx, err, errlen) < 0)
        goto fail;
    return k;
fail:
    kubeapi_free(k);
    return NULL;
}

void kubeapi_free(struct kubeapi *k)
{
    if (!k)
        return;
    while (k->idle) {
        struct upconn *u = k->idle;
        pool_remove(k, u);
        conn_close(u->c);
        free(u);
    }
    if (k->ctx)
        SSL_CTX_free(k->ctx);
    free(k->token_file);
    free(k);
}
