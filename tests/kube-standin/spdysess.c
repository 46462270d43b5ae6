/*
 * spdysess: a SPDY/3.1 server session of the kube-standin test stand-in on
 * a raw connection or a websocket. See spdysess.h.
 *
 * Owner callbacks may end the session from inside the input loop, so the
 * memory is released after the current loop batch and the loop stops at the
 * first frame after an end.
 */
#include "tests/kube-standin/spdysess.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "proto/ws.h"
#include "tests/kube-standin/spdy.h"

#define RX_MAX (1u << 20)           /* the largest frame we take, plus its head */
#define HEADERS_MAX (64u * 1024u)   /* an inflated header block */
#define HIGH_WATER (1u << 20)

struct spdy_sess {
    struct conn *c;                 /* the raw transport, or */
    struct ws *w;                   /* the websocket one */
    struct loop *loop;
    const struct spdy_sess_ops *ops;
    void *ud;
    struct spdy_zin *zin;
    struct spdy_zout *zout;
    uint8_t *rx;
    size_t rx_len;
    uint32_t last_stream;
    bool dead;
};

static void sess_free(void *arg)
{
    struct spdy_sess *s = arg;
    spdy_zin_free(s->zin);
    spdy_zout_free(s->zout);
    free(s->rx);
    free(s);
}

/* The transport is gone or broken: tell the owner once, free later. */
static void sess_gone(struct spdy_sess *s, const char *why)
{
    if (s->dead)
        return;
    s->dead = true;
    if (s->c) {
        conn_close(s->c);
        s->c = NULL;
    }
    if (s->w) {
        ws_close(s->w, WS_CLOSE_PROTOCOL, why);
        s->w = NULL;
    }
    s->ops->on_close(s->ud, why);
    if (loop_defer(s->loop, sess_free, s) < 0)
        log_warn("spdy: out of memory, leaking a session");
}

static size_t pending(const struct spdy_sess *s)
{
    if (s->c)
        return conn_out_pending(s->c);
    return s->w ? ws_out_pending(s->w) : 0;
}

static struct conn *transport_conn(const struct spdy_sess *s)
{
    return s->c ? s->c : (s->w ? ws_conn(s->w) : NULL);
}

static int send_frame(struct spdy_sess *s, const void *a, size_t al, const void *b, size_t bl)
{
    int rc = -1;
    if (s->dead)
        return -1;
    if (s->c)
        rc = conn_write2(s->c, a, al, b, bl);
    else if (s->w)
        rc = ws_send(s->w, WS_OP_BINARY, a, al, b, bl);
    struct conn *c = transport_conn(s);
    if (rc == 0 && c && pending(s) > HIGH_WATER)
        conn_pause_read(c);   /* the peer reads too slowly: stop taking its input */
    return rc;
}

int spdy_sess_data(struct spdy_sess *s, uint32_t id, const void *p, size_t n, bool fin)
{
    uint8_t head[SPDY_HDR_LEN];
    const uint8_t *q = p;
    /* DATA lengths are 24 bits; kubectl's reads are far smaller anyway. */
    do {
        size_t chunk = n > 65536 ? 65536 : n;
        bool last = chunk == n;
        spdy_data_head(head, id, last && fin ? SPDY_FLAG_FIN : 0, chunk);
        if (send_frame(s, head, sizeof(head), q, chunk) < 0)
            return -1;
        q += chunk;
        n -= chunk;
    } while (n > 0);
    return 0;
}

int spdy_sess_reset(struct spdy_sess *s, uint32_t id, uint32_t status)
{
    uint8_t f[16];
    return send_frame(s, f, spdy_rst(f, id, status), NULL, 0);
}

static void close_now(void *arg)
{
    struct spdy_sess *s = arg;
    if (s->c)
        conn_close_after_flush(s->c, 2000);
    if (s->w)
        ws_close(s->w, WS_CLOSE_NORMAL, "");
    s->c = NULL;
    s->w = NULL;
    sess_free(s);
}

void spdy_sess_close(struct spdy_sess *s)
{
    if (s->dead)
        return;
    uint8_t f[16];
    send_frame(s, f, spdy_goaway(f, s->last_stream, 0), NULL, 0);
    s->dead = true;
    if (loop_defer(s->loop, close_now, s) < 0)
        close_now(s);
}

static int collect(void *ud, const char *name, size_t nl, const char *val, size_t vl)
{
    struct spdy_hdr_list *h = ud;
    char *dst = NULL;
    size_t cap = 0;
    if (nl == 10 && memcmp(name, "streamtype", 10) == 0) {
        dst = h->stream_type;
        cap = sizeof(h->stream_type);
    } else if (nl == 4 && memcmp(name, "port", 4) == 0) {
        dst = h->port;
        cap = sizeof(h->port);
    } else if (nl == 9 && memcmp(name, "requestid", 9) == 0) {
        dst = h->request_id;
        cap = sizeof(h->request_id);
    }
    if (!dst)
        return 0;
    const char *nul = memchr(val, '\0', vl);   /* several values: the first */
    size_t n = nul ? (size_t)(nul - val) : vl;
    if (n >= cap)
        return -1;
    memcpy(dst, val, n);
    dst[n] = '\0';
    return 0;
}

static int ignore_pair(void *ud, const char *name, size_t nl, const char *val, size_t vl)
{
    (void)ud;
    (void)name;
    (void)nl;
    (void)val;
    (void)vl;
    return 0;
}

static void syn_stream(struct spdy_sess *s, const struct spdy_frame *f)
{
    struct spdy_hdr_list h = { "", "", "" };
    if (spdy_headers_decode(s->zin, f->payload, f->payload_len, HEADERS_MAX, collect, &h) < 0) {
        sess_gone(s, "corrupt SPDY header block");
        return;
    }
    if (f->stream_id > s->last_stream)
        s->last_stream = f->stream_id;
    bool fin = f->flags & SPDY_FLAG_FIN;
    if (s->ops->on_stream(s->ud, f->stream_id, &h, fin) < 0) {
        spdy_sess_reset(s, f->stream_id, SPDY_RST_REFUSED_STREAM);
        return;
    }
    uint8_t *block, head[SPDY_HDR_LEN + 4];
    size_t bl;
    if (spdy_headers_encode(s->zout, NULL, NULL, 0, &block, &bl) < 0) {
        sess_gone(s, "cannot compress headers");
        return;
    }
    spdy_ctrl_head(head, SPDY_SYN_REPLY, 0, 4 + bl);
    head[8] = (uint8_t)(f->stream_id >> 24 & 0x7f);
    head[9] = (uint8_t)(f->stream_id >> 16);
    head[10] = (uint8_t)(f->stream_id >> 8);
    head[11] = (uint8_t)f->stream_id;
    int rc = send_frame(s, head, sizeof(head), block, bl);
    free(block);
    if (rc < 0) {
        sess_gone(s, "output queue full");
        return;
    }
    if (s->ops->on_replied)
        s->ops->on_replied(s->ud, f->stream_id);
    if (fin && !s->dead)
        s->ops->on_fin(s->ud, f->stream_id);
}

static void handle(struct spdy_sess *s, const struct spdy_frame *f)
{
    uint8_t buf[16];
    switch (f->type) {
    case SPDY_SYN_STREAM:
        syn_stream(s, f);
        break;
    case SPDY_SYN_REPLY:
    case SPDY_HEADERS:
        /* Still inflated: the compression state spans every block. */
        if (spdy_headers_decode(s->zin, f->payload, f->payload_len, HEADERS_MAX, ignore_pair,
                                NULL) < 0)
            sess_gone(s, "corrupt SPDY header block");
        break;
    case SPDY_DATA:
        if (f->payload_len)
            s->ops->on_data(s->ud, f->stream_id, f->payload, f->payload_len);
        if ((f->flags & SPDY_FLAG_FIN) && !s->dead)
            s->ops->on_fin(s->ud, f->stream_id);
        break;
    case SPDY_RST_STREAM:
        s->ops->on_reset(s->ud, f->stream_id);
        break;
    case SPDY_PING:
        if (f->value & 1)   /* the client's; ours would be even */
            send_frame(s, buf, spdy_ping(buf, f->value), NULL, 0);
        break;
    default:
        break;              /* SETTINGS, WINDOW_UPDATE, GOAWAY: nothing to do */
    }
}

static void feed(struct spdy_sess *s, const uint8_t *data, size_t len)
{
    if (s->dead)
        return;
    if (len > RX_MAX - s->rx_len) {
        sess_gone(s, "SPDY frame too large");
        return;
    }
    memcpy(s->rx + s->rx_len, data, len);
    s->rx_len += len;
    size_t off = 0;
    while (!s->dead) {
        struct spdy_frame f;
        ssize_t n = spdy_frame_parse(s->rx + off, s->rx_len - off, RX_MAX - SPDY_HDR_LEN, &f);
        if (n == -2)
            break;
        if (n < 0) {
            log_warn("spdy: %s", f.error);
            sess_gone(s, f.error);
            return;
        }
        handle(s, &f);
        off += (size_t)n;
    }
    if (s->dead)
        return;
    memmove(s->rx, s->rx + off, s->rx_len - off);
    s->rx_len -= off;
}

/* ---- the raw connection transport ---- */

static size_t c_read(struct conn *c, uint8_t *data, size_t len)
{
    feed(conn_ud(c), data, len);
    return len;
}

static void c_eof(struct conn *c)
{
    sess_gone(conn_ud(c), "the client closed the connection");
}

static void c_drain(struct conn *c)
{
    conn_resume_read(c);
}

static void c_close(struct conn *c, const char *why)
{
    struct spdy_sess *s = conn_ud(c);
    s->c = NULL;
    sess_gone(s, why);
}

static const struct conn_ops conn_transport = {
    .on_read = c_read, .on_eof = c_eof, .on_drain = c_drain, .on_close = c_close,
};

/* ---- the websocket transport ---- */

static void w_message(struct ws *w, uint8_t opcode, const uint8_t *data, size_t len)
{
    struct spdy_sess *s = ws_ud(w);
    if (opcode != WS_OP_BINARY) {
        sess_gone(s, "a text message on a SPDY tunnel");
        return;
    }
    feed(s, data, len);
}

static void w_drain(struct ws *w)
{
    struct spdy_sess *s = ws_ud(w);
    if (ws_conn(w))
        conn_resume_read(ws_conn(w));
    (void)s;
}

static void w_close(struct ws *w, const char *why)
{
    struct spdy_sess *s = ws_ud(w);
    s->w = NULL;
    sess_gone(s, why);
}

static const struct ws_ops ws_transport = {
    .on_message = w_message, .on_drain = w_drain, .on_close = w_close,
};

static struct spdy_sess *sess_new(struct loop *l, const struct spdy_sess_ops *ops, void *ud)
{
    struct spdy_sess *s = calloc(1, sizeof(*s));
    if (!s)
        return NULL;
    s->loop = l;
    s->ops = ops;
    s->ud = ud;
    s->zin = spdy_zin_new();
    s->zout = spdy_zout_new();
    s->rx = malloc(RX_MAX);
    if (!s->zin || !s->zout || !s->rx) {
        sess_free(s);
        return NULL;
    }
    return s;
}

struct spdy_sess *spdy_sess_on_conn(struct conn *c, const struct spdy_sess_ops *ops, void *ud)
{
    struct spdy_sess *s = sess_new(conn_loop(c), ops, ud);
    if (!s) {
        conn_close(c);
        return NULL;
    }
    s->c = c;
    conn_set_ops(c, &conn_transport);
    conn_set_ud(c, s);
    conn_set_high_water(c, HIGH_WATER);
    conn_resume_read(c);
    return s;
}

struct spdy_sess *spdy_sess_on_ws(struct ws *w, const struct spdy_sess_ops *ops, void *ud)
{
    struct conn *c = ws_conn(w);
    struct spdy_sess *s = c ? sess_new(conn_loop(c), ops, ud) : NULL;
    if (!s) {
        ws_close(w, WS_CLOSE_INTERNAL, "out of memory");
        return NULL;
    }
    s->w = w;
    ws_set_ops(w, &ws_transport);
    ws_set_ud(w, s);
    ws_set_high_water(w, HIGH_WATER);
    conn_resume_read(c);
    return s;
}
