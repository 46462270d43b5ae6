/*
 * wsconn: websocket framing and handshakes on a conn. See wsconn.h.
 *
 * Receive path: whole frames found in the read buffer are handled in place
 * (unmasked where they lie); only a frame split across reads is copied into
 * rx, and only a fragmented message into msg. Both are freed once empty.
 */
#include "common/wsconn.h"

#include <arpa/inet.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/http1.h"
#include "proto/ws.h"

#define WS_HS_MAX 16384          /* response head during the client upgrade */
#define WS_LINGER_MS 2000

struct ws {
    struct conn *c;
    struct loop *loop;
    const struct ws_ops *ops;
    void *ud;
    bool client, open, dead;
    size_t max_message;
    uint64_t last_rx;
    uint64_t pings_rx;
    int refused_status;
    uint64_t rng;

    char key[32];               /* client: our Sec-WebSocket-Key */
    char *subprotocol;          /* client: required in the answer */
    char *request;              /* client: the upgrade request until sent */
    uint8_t *hs;                /* client: response head so far */
    size_t hs_len;

    uint8_t *rx;                /* a frame split across reads */
    size_t rx_len, rx_cap;
    uint8_t *msg;               /* a fragmented message being assembled */
    size_t msg_len;
    uint8_t msg_op;
    bool in_msg;
};

static void free_ws(void *arg)
{
    struct ws *w = arg;
    free(w->subprotocol);
    free(w->request);
    free(w->hs);
    free(w->rx);
    free(w->msg);
    free(w);
}

/* Ends the websocket from our side after an error or the peer's close. */
static void ws_fail(struct ws *w, const char *why)
{
    if (w->dead)
        return;
    w->dead = true;
    if (w->c)
        conn_close(w->c);
    w->c = NULL;
    if (w->ops->on_close)
        w->ops->on_close(w, why);
    loop_defer(w->loop, free_ws, w);
}

/* Protocol violation: tell the peer why, then drop it. */
static void ws_violation(struct ws *w, uint16_t code, const char *why)
{
    if (w->dead)
        return;
    static __thread char buf[200];
    snprintf(buf, sizeof(buf), "websocket protocol error: %s", why);
    struct conn *c = w->c;
    w->c = NULL;
    w->dead = true;
    if (c) {
        uint8_t pl[2 + 123];
        size_t rl = strlen(why);
        if (rl > 123)
            rl = 123;
        pl[0] = (uint8_t)(code >> 8);
        pl[1] = (uint8_t)code;
        memcpy(pl + 2, why, rl);
        uint8_t hdr[WS_MAX_HDR];
        size_t hl = ws_hdr_build(hdr, true, WS_OP_CLOSE, 2 + rl, NULL);
        /* Server frames are unmasked; a client would have to mask, but a
         * client only reports violations by closing the socket. */
        if (!w->client)
            conn_write2(c, hdr, hl, pl, 2 + rl);
        conn_close_after_flush(c, WS_LINGER_MS);
    }
    if (w->ops->on_close)
        w->ops->on_close(w, buf);
    loop_defer(w->loop, free_ws, w);
}

static uint64_t next_rand(struct ws *w)
{
    uint64_t x = w->rng;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    w->rng = x;
    return x;
}

int ws_send(struct ws *w, uint8_t opcode, const void *a, size_t alen,
            const void *b, size_t blen)
{
    if (w->dead || !w->open || !w->c)
        return -1;
    size_t total = alen + blen;
    uint8_t hdr[WS_MAX_HDR];
    uint8_t mask[4];
    uint64_t r = next_rand(w);
    memcpy(mask, &r, 4);
    size_t hl = ws_hdr_build(hdr, true, opcode, total, w->client ? mask : NULL);
    uint8_t *p = conn_write_reserve(w->c, hl + total);
    if (!p)
        return -1;
    memcpy(p, hdr, hl);
    if (alen)
        memcpy(p + hl, a, alen);
    if (blen)
        memcpy(p + hl + alen, b, blen);
    if (w->client)
        ws_mask(p + hl, total, mask, 0);
    return 0;
}

int ws_ping(struct ws *w)
{
    return ws_send(w, WS_OP_PING, NULL, 0, NULL, 0);
}

void ws_close(struct ws *w, uint16_t code, const char *reason)
{
    if (w->dead)
        return;
    if (w->open && w->c) {
        uint8_t pl[2 + 123];
        size_t rl = reason ? strlen(reason) : 0;
        if (rl > 123)
            rl = 123;
        pl[0] = (uint8_t)(code >> 8);
        pl[1] = (uint8_t)code;
        if (rl)
            memcpy(pl + 2, reason, rl);
        ws_send(w, WS_OP_CLOSE, pl, 2 + rl, NULL, 0);
        conn_close_after_flush(w->c, WS_LINGER_MS);
    } else if (w->c) {
        conn_close(w->c);
    }
    w->c = NULL;
    w->dead = true;
    loop_defer(w->loop, free_ws, w);
}

/* ---- receiving ---- */

static void on_control(struct ws *w, uint8_t op, uint8_t *p, size_t n)
{
    if (op == WS_OP_PING) {
        w->pings_rx++;
        ws_send(w, WS_OP_PONG, p, n, NULL, 0);
        return;
    }
    if (op == WS_OP_PONG)
        return;
    uint16_t code;
    const char *reason;
    size_t rlen;
    if (ws_close_parse(p, n, &code, &reason, &rlen) < 0) {
        ws_violation(w, WS_CLOSE_PROTOCOL, "invalid close frame");
        return;
    }
    char why[200];
    snprintf(why, sizeof(why), "closed by peer (%u%s%.*s)", code,
             rlen ? ": " : "", (int)(rlen > 120 ? 120 : rlen), reason);
    /* Echo the close so the peer can finish its handshake, then drop. */
    uint8_t pl[2] = { (uint8_t)(code >> 8), (uint8_t)code };
    if (code == 1005)
        ws_send(w, WS_OP_CLOSE, NULL, 0, NULL, 0);
    else
        ws_send(w, WS_OP_CLOSE, pl, 2, NULL, 0);
    struct conn *c = w->c;
    w->c = NULL;
    w->dead = true;
    if (c)
        conn_close_after_flush(c, WS_LINGER_MS);
    if (w->ops->on_close)
        w->ops->on_close(w, why);
    loop_defer(w->loop, free_ws, w);
}

static void on_data_frame(struct ws *w, const struct ws_hdr *h, uint8_t *p, size_t n)
{
    if (h->opcode == WS_OP_CONT) {
        if (!w->in_msg) {
            ws_violation(w, WS_CLOSE_PROTOCOL, "continuation without a message");
            return;
        }
        if (n > w->max_message - w->msg_len) {
            ws_violation(w, WS_CLOSE_TOO_BIG, "message too big");
            return;
        }
        memcpy(w->msg + w->msg_len, p, n);
        w->msg_len += n;
        if (!h->fin)
            return;
        w->in_msg = false;
        uint8_t *m = w->msg;
        size_t ml = w->msg_len;
        w->msg = NULL;
        w->msg_len = 0;
        w->ops->on_message(w, w->msg_op, m, ml);
        free(m);
        return;
    }
    if (w->in_msg) {
        ws_violation(w, WS_CLOSE_PROTOCOL, "new message inside a fragmented one");
        return;
    }
    if (h->fin) {
        w->ops->on_message(w, h->opcode, p, n);
        return;
    }
    w->msg = malloc(w->max_message);
    if (!w->msg) {
        ws_violation(w, WS_CLOSE_INTERNAL, "out of memory");
        return;
    }
    memcpy(w->msg, p, n);
    w->msg_len = n;
    w->msg_op = h->opcode;
    w->in_msg = true;
}

static void on_frame(struct ws *w, const struct ws_hdr *h, uint8_t *p, size_t n)
{
    if (h->masked)
        ws_mask(p, n, h->mask, 0);
    if (h->opcode >= WS_OP_CLOSE)
        on_control(w, h->opcode, p, n);
    else
        on_data_frame(w, h, p, n);
}

/* Appends to rx, growing it up to need bytes. */
static int rx_append(struct ws *w, const uint8_t *p, size_t n, size_t need)
{
    if (need > w->rx_cap) {
        uint8_t *r = realloc(w->rx, need);
        if (!r)
            return -1;
        w->rx = r;
        w->rx_cap = need;
    }
    memcpy(w->rx + w->rx_len, p, n);
    w->rx_len += n;
    return 0;
}

/* Feeds bytes into a partially received frame held in rx. Returns bytes
 * used from data, or -1 if the websocket failed. */
static ssize_t feed_partial(struct ws *w, uint8_t *data, size_t len)
{
    struct ws_hdr h;
    uint64_t limit = w->max_message;
    /* Complete the header first: at most WS_MAX_HDR bytes. */
    ssize_t hl = ws_hdr_parse(w->rx, w->rx_len, !w->client, limit, &h);
    size_t used = 0;
    while (hl == -2) {
        if (used == len)
            return (ssize_t)used;
        if (rx_append(w, data + used, 1, WS_MAX_HDR) < 0)
            return -1;
        used++;
        hl = ws_hdr_parse(w->rx, w->rx_len, !w->client, limit, &h);
    }
    if (hl < 0) {
        ws_violation(w, WS_CLOSE_PROTOCOL, h.error ? h.error : "bad frame header");
        return -1;
    }
    size_t total = (size_t)hl + (size_t)h.payload_len;
    size_t want = total - w->rx_len;
    size_t take = len - used < want ? len - used : want;
    if (rx_append(w, data + used, take, total) < 0) {
        ws_violation(w, WS_CLOSE_INTERNAL, "out of memory");
        return -1;
    }
    used += take;
    if (w->rx_len == total) {
        uint8_t *buf = w->rx;
        w->rx = NULL;
        w->rx_len = w->rx_cap = 0;
        on_frame(w, &h, buf + hl, (size_t)h.payload_len);
        free(buf);
    }
    return (ssize_t)used;
}

static void feed_frames(struct ws *w, uint8_t *data, size_t len)
{
    size_t off = 0;
    while (off < len && !w->dead) {
        if (w->rx_len > 0) {
            ssize_t u = feed_partial(w, data + off, len - off);
            if (u < 0)
                return;
            off += (size_t)u;
            continue;
        }
        struct ws_hdr h;
        ssize_t hl = ws_hdr_parse(data + off, len - off, !w->client,
                                  w->max_message, &h);
        if (hl == -1) {
            ws_violation(w, WS_CLOSE_PROTOCOL, h.error ? h.error : "bad frame header");
            return;
        }
        if (hl == -2 || h.payload_len > len - off - (size_t)hl) {
            ssize_t u = feed_partial(w, data + off, len - off);
            if (u < 0)
                return;
            off += (size_t)u;
            continue;
        }
        on_frame(w, &h, data + off + hl, (size_t)h.payload_len);
        off += (size_t)hl + (size_t)h.payload_len;
    }
}

/* ---- client upgrade ---- */

static const char *check_upgrade(struct ws *w, const struct http_response *r)
{
    const struct http_header *h;
    h = http1_find(r->headers, r->num_headers, "upgrade");
    if (!h || !http1_has_token(h->value, h->value_len, "websocket"))
        return "upgrade answer lacks Upgrade: websocket";
    h = http1_find(r->headers, r->num_headers, "connection");
    if (!h || !http1_has_token(h->value, h->value_len, "upgrade"))
        return "upgrade answer lacks Connection: Upgrade";
    char expect[29];
    ws_accept_key(w->key, strlen(w->key), expect);
    h = http1_find(r->headers, r->num_headers, "sec-websocket-accept");
    if (!h || h->value_len != 28 || memcmp(h->value, expect, 28) != 0)
        return "upgrade answer has a wrong Sec-WebSocket-Accept";
    if (w->subprotocol) {
        h = http1_find(r->headers, r->num_headers, "sec-websocket-protocol");
        if (!h || h->value_len != strlen(w->subprotocol) ||
            memcmp(h->value, w->subprotocol, h->value_len) != 0)
            return "server did not accept the websocket subprotocol";
    }
    return NULL;
}

static void refused(struct ws *w, const struct http_response *r, size_t head_len)
{
    char why[400];
    char body[201];
    size_t bl = w->hs_len - head_len;
    if (bl > 200)
        bl = 200;
    for (size_t i = 0; i < bl; i++) {
        uint8_t ch = w->hs[head_len + i];
        body[i] = (ch >= 0x20 && ch < 0x7f) ? (char)ch : ' ';
    }
    body[bl] = '\0';
    w->refused_status = r->status;
    snprintf(why, sizeof(why), "server refused the websocket upgrade: HTTP %d%s%s",
             r->status, bl ? ": " : "", body);
    ws_fail(w, why);
}

/* Returns bytes of data that belong to the handshake, or -1 on failure. */
static ssize_t feed_handshake(struct ws *w, uint8_t *data, size_t len)
{
    size_t room = WS_HS_MAX - w->hs_len;
    size_t take = len < room ? len : room;
    memcpy(w->hs + w->hs_len, data, take);
    size_t before = w->hs_len;
    w->hs_len += take;
    struct http_header hdrs[32];
    struct http_response r = { .headers = hdrs, .num_headers = 32 };
    ssize_t hl = http1_parse_response((const char *)w->hs, w->hs_len, &r);
    if (hl == -2) {
        if (w->hs_len == WS_HS_MAX) {
            ws_fail(w, "upgrade answer head too large");
            return -1;
        }
        return (ssize_t)take;
    }
    if (hl < 0) {
        ws_fail(w, "malformed HTTP answer to the websocket upgrade");
        return -1;
    }
    if (r.status != 101) {
        refused(w, &r, (size_t)hl);
        return -1;
    }
    const char *bad = check_upgrade(w, &r);
    if (bad) {
        ws_fail(w, bad);
        return -1;
    }
    free(w->hs);
    w->hs = NULL;
    w->open = true;
    if (w->ops->on_open)
        w->ops->on_open(w);
    return (ssize_t)((size_t)hl - before);
}

/* ---- conn callbacks ---- */

static size_t on_conn_read(struct conn *c, uint8_t *data, size_t len)
{
    struct ws *w = conn_ud(c);
    w->last_rx = loop_now_ms(w->loop);
    size_t off = 0;
    if (!w->open) {
        ssize_t u = feed_handshake(w, data, len);
        if (u < 0 || w->dead)
            return len;
        off = (size_t)u;
    }
    if (off < len)
        feed_frames(w, data + off, len - off);
    return len;
}

static void on_conn_drain(struct conn *c)
{
    struct ws *w = conn_ud(c);
    if (!w->dead && w->ops->on_drain)
        w->ops->on_drain(w);
}

static void on_conn_close(struct conn *c, const char *why)
{
    struct ws *w = conn_ud(c);
    w->c = NULL;
    ws_fail(w, why);
}

static void on_conn_open(struct conn *c)
{
    struct ws *w = conn_ud(c);
    if (!w->client || !w->request)
        return;
    if (conn_write(c, w->request, strlen(w->request)) < 0) {
        ws_fail(w, "cannot queue the upgrade request");
        return;
    }
    free(w->request);
    w->request = NULL;
}

static const struct conn_ops ws_conn_ops = {
    .on_open = on_conn_open,
    .on_read = on_conn_read,
    .on_drain = on_conn_drain,
    .on_close = on_conn_close,
};

static struct ws *ws_new(struct loop *l, size_t max_message,
                         const struct ws_ops *ops, void *ud)
{
    struct ws *w = calloc(1, sizeof(*w));
    if (!w)
        return NULL;
    w->loop = l;
    w->ops = ops;
    w->ud = ud;
    w->max_message = max_message;
    w->last_rx = loop_now_ms(l);
    if (RAND_bytes((unsigned char *)&w->rng, sizeof(w->rng)) != 1 || !w->rng)
        w->rng = 0x2545F4914F6CDD1DULL ^ (uint64_t)(uintptr_t)w;
    return w;
}

static char *build_request(struct ws *w, const struct ws_client_opts *o,
                           const char *hostport)
{
    uint8_t nonce[16];
    uint64_t a = next_rand(w), b = next_rand(w);
    memcpy(nonce, &a, 8);
    memcpy(nonce + 8, &b, 8);
    EVP_EncodeBlock((unsigned char *)w->key, nonce, 16);
    size_t cap = 1024 + strlen(o->path) + strlen(hostport) +
                 (o->subprotocol ? strlen(o->subprotocol) : 0) +
                 (o->extra_headers ? strlen(o->extra_headers) : 0);
    char *req = malloc(cap);
    if (!req)
        return NULL;
    snprintf(req, cap,
             "GET %s HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\n"
             "Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\n"
             "Sec-WebSocket-Version: 13\r\n%s%s%s%s\r\n",
             o->path, hostport, w->key,
             o->subprotocol ? "Sec-WebSocket-Protocol: " : "",
             o->subprotocol ? o->subprotocol : "",
             o->subprotocol ? "\r\n" : "",
             o->extra_headers ? o->extra_headers : "");
    return req;
}

struct ws *ws_client_connect(struct loop *l, const struct sockaddr *addr,
                             socklen_t addrlen, SSL_CTX *ctx,
                             const struct ws_client_opts *o,
                             const struct ws_ops *ops, void *ud)
{
    struct ws *w = ws_new(l, o->max_message, ops, ud);
    if (!w)
        return NULL;
    w->client = true;
    char hostport[300];
    int port = addr->sa_family == AF_INET6
                   ? ntohs(((const struct sockaddr_in6 *)addr)->sin6_port)
                   : ntohs(((const struct sockaddr_in *)addr)->sin_port);
    bool v6 = strchr(o->host, ':') != NULL;
    snprintf(hostport, sizeof(hostport), "%s%s%s:%d", v6 ? "[" : "", o->host,
             v6 ? "]" : "", port);
    w->request = build_request(w, o, hostport);
    w->hs = malloc(WS_HS_MAX);
    if (o->subprotocol)
        w->subprotocol = strdup(o->subprotocol);
    if (!w->request || !w->hs || (o->subprotocol && !w->subprotocol))
        goto fail;
    w->c = conn_connect_from(l, o->src, o->src_len, addr, addrlen, ctx, o->host,
                             o->host_is_ip, &ws_conn_ops, w);
    if (!w->c)
        goto fail;
    return w;
fail:
    free_ws(w);
    return NULL;
}

struct ws *ws_server_attach(struct conn *c, const uint8_t *early, size_t early_len,
                            size_t max_message, const struct ws_ops *ops, void *ud)
{
    struct ws *w = ws_new(conn_loop(c), max_message, ops, ud);
    if (!w) {
        conn_close(c);
        return NULL;
    }
    w->c = c;
    w->open = true;
    conn_set_ops(c, &ws_conn_ops);
    conn_set_ud(c, w);
    if (early_len > 0) {
        /* The parser unmasks in place, so work on a private copy. */
        uint8_t *copy = malloc(early_len);
        if (!copy) {
            ws_fail(w, "out of memory");
            return NULL;
        }
        memcpy(copy, early, early_len);
        feed_frames(w, copy, early_len);
        free(copy);
    }
    return w;
}

void *ws_ud(const struct ws *w) { return w->ud; }
void ws_set_ud(struct ws *w, void *ud) { w->ud = ud; }
void ws_set_ops(struct ws *w, const struct ws_ops *ops) { w->ops = ops; }
struct conn *ws_conn(const struct ws *w) { return w->c; }
uint64_t ws_last_rx_ms(const struct ws *w) { return w->last_rx; }
uint64_t ws_pings_received(const struct ws *w) { return w->pings_rx; }
int ws_refused_status(const struct ws *w) { return w->refused_status; }

size_t ws_out_pending(const struct ws *w)
{
    return w->c ? conn_out_pending(w->c) : 0;
}

void ws_set_high_water(struct ws *w, size_t bytes)
{
    if (w->c)
        conn_set_high_water(w->c, bytes);
}

size_t ws_buffered(const struct ws *w)
{
    return w->rx_cap + w->msg_len + (w->c ? conn_buffered(w->c) : 0);
}

ssize_t ws_upgrade_answer(const struct http_request *req, const char *subprotocol,
                          char *out, size_t cap, const char **why)
{
    const struct http_header *h, *hs = req->headers;
    size_t n = req->num_headers;
    if (req->method_len != 3 || memcmp(req->method, "GET", 3) != 0 ||
        req->minor_version != 1) {
        *why = "a websocket upgrade must be GET over HTTP/1.1";
        return -1;
    }
    h = http1_find(hs, n, "upgrade");
    if (!h || !http1_has_token(h->value, h->value_len, "websocket")) {
        *why = "this endpoint needs Upgrade: websocket";
        return -1;
    }
    h = http1_find(hs, n, "connection");
    if (!h || !http1_has_token(h->value, h->value_len, "upgrade")) {
        *why = "this endpoint needs Connection: Upgrade";
        return -1;
    }
    h = http1_find(hs, n, "sec-websocket-version");
    if (!h || h->value_len != 2 || memcmp(h->value, "13", 2) != 0) {
        *why = "unsupported Sec-WebSocket-Version (need 13)";
        return -1;
    }
    const struct http_header *key = http1_find(hs, n, "sec-websocket-key");
    if (!key || !ws_key_valid(key->value, key->value_len)) {
        *why = "missing or invalid Sec-WebSocket-Key";
        return -1;
    }
    h = http1_find(hs, n, "sec-websocket-protocol");
    if (subprotocol && (!h || !http1_has_token(h->value, h->value_len, subprotocol))) {
        *why = "the websocket subprotocol offered is not supported";
        return -1;
    }
    char accept[29];
    ws_accept_key(key->value, key->value_len, accept);
    int len = snprintf(out, cap,
                       "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                       "Connection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n"
                       "%s%s%s\r\n", accept,
                       subprotocol ? "Sec-WebSocket-Protocol: " : "",
                       subprotocol ? subprotocol : "", subprotocol ? "\r\n" : "");
    if (len < 0 || (size_t)len >= cap) {
        *why = "internal error";
        return -1;
    }
    return len;
}
