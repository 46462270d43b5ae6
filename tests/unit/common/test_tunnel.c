/*
 * Tests for common/tunnel.c (and the common/wsconn.c it runs on): two
 * tunnels over a loopback connection, plain or TLS. The server end answers
 * the websocket upgrade itself and the client end dials it (both in
 * tests/support/unit_ws). Protocol violations come from a "raw"
 * client: a bare websocket that sends frames built with proto/frame.h.
 *
 * Both ends normally share one loop; the keepalive test gives each its own
 * loop so that one side can be frozen by simply not running it.
 */
#include <check.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/conn.h"
#include "common/netaddr.h"
#include "common/tunnel.h"
#include "common/wsconn.h"
#include "proto/frame.h"
#include "proto/ws.h"
#include "tests/support/unit_net.h"
#include "tests/support/unit_ws.h"

#define KB 1024u
#define MB (1024u * 1024u)

/* ---- streams ---- */

struct side;

struct st {
    struct side *sd;
    struct tun_stream *s;
    bool consume;               /* return credit as soon as data arrives */
    bool text;
    char rx_text[256];
    uint64_t rx, bad_at;
    int opened, eofs, writables, ends;
    uint64_t eof_at;
    int end_code;
    char end_reason[300];
    uint64_t tx_total, tx_sent;
    bool auto_pump, close_when_sent, closed;
    bool reply_on_eof;          /* on EOF: send reply_total bytes, then close */
    uint64_t reply_total;
    char order[16];             /* 'd' data, 'e' eof, 'x' end */
};

enum open_mode { ACCEPT, HOLD, REFUSE };

struct side {
    const char *name;
    struct loop *l;
    struct tunnel *t;
    struct ws *raw;             /* raw mode: the bare websocket */
    struct ws *ws;              /* tunnel mode: the tunnel's websocket */
    struct tunnel_cfg cfg;
    enum open_mode mode;
    bool consume;
    bool reply_on_eof;          /* for streams the peer opens (see st) */
    uint64_t reply_total;
    int ups, downs, peer_opens, controls;
    char down_why[300];
    char service[80];
    char meta[80];
    struct st *last;
    /* raw mode: frames received */
    int raw_closes;
    char raw_why[300];
    struct tun_frame got[64];
    uint8_t got_data[64][300];
    int ngot;
};

#define NSTS 256
static struct st sts[NSTS];
static int nsts;

static struct st *st_new(struct side *sd)
{
    ck_assert_int_lt(nsts, NSTS);
    struct st *x = &sts[nsts++];
    memset(x, 0, sizeof(*x));
    x->sd = sd;
    x->consume = sd ? sd->consume : true;
    x->end_code = -1;
    return x;
}

static void mark(struct st *x, char c)
{
    size_t n = strlen(x->order);
    if (n + 1 < sizeof(x->order))
        x->order[n] = c;
}

static void st_pump(struct st *x)
{
    static uint8_t buf[128 * KB];
    while (x->s && x->tx_sent < x->tx_total) {
        size_t n = sizeof(buf);
        if (n > x->tx_total - x->tx_sent)
            n = (size_t)(x->tx_total - x->tx_sent);
        for (size_t i = 0; i < n; i++)
            buf[i] = unit_stream_byte(x->tx_sent + i);
        ssize_t r = tun_stream_send(x->s, buf, n);
        ck_assert_int_ge(r, 0);
        x->tx_sent += (uint64_t)r;
        if ((size_t)r < n)
            return;         /* on_writable will call again */
    }
    if (x->s && x->tx_sent == x->tx_total && x->close_when_sent && !x->closed) {
        x->closed = true;
        if (tun_stream_close(x->s) == 1)
            x->s = NULL;
    }
}

static void st_opened(struct tun_stream *s)
{
    struct st *x = tun_stream_ud(s);
    x->opened++;
}

static void st_data(struct tun_stream *s, const uint8_t *p, size_t n)
{
    struct st *x = tun_stream_ud(s);
    ck_assert_uint_gt(n, 0);
    mark(x, 'd');
    if (x->text) {
        size_t room = sizeof(x->rx_text) - 1 - strlen(x->rx_text);
        strncat(x->rx_text, (const char *)p, n < room ? n : room);
    } else {
        for (size_t i = 0; i < n; i++)
            if (!x->bad_at && p[i] != unit_stream_byte(x->rx + i))
                x->bad_at = x->rx + i + 1;
    }
    x->rx += n;
    if (x->consume)
        tun_stream_consumed(s, n);
}

static void st_eof(struct tun_stream *s)
{
    struct st *x = tun_stream_ud(s);
    mark(x, 'e');
    x->eofs++;
    x->eof_at = x->rx;
    if (x->reply_on_eof) {
        x->tx_total = x->reply_total;
        x->close_when_sent = true;
        x->auto_pump = true;
        st_pump(x);
    }
}

static void st_writable(struct tun_stream *s)
{
    struct st *x = tun_stream_ud(s);
    x->writables++;
    if (x->auto_pump)
        st_pump(x);
}

static void st_end(struct tun_stream *s, uint16_t code, const char *reason)
{
    struct st *x = tun_stream_ud(s);
    mark(x, 'x');
    x->ends++;
    x->end_code = code;
    snprintf(x->end_reason, sizeof(x->end_reason), "%s", reason ? reason : "");
    x->s = NULL;
}

static const struct tun_stream_ops st_ops = {
    .on_opened = st_opened, .on_data = st_data, .on_eof = st_eof,
    .on_writable = st_writable, .on_end = st_end,
};

static struct st *st_open(struct side *sd, const char *service, const char *meta)
{
    struct st *x = st_new(sd);
    x->s = tun_stream_open(sd->t, service, meta, meta ? strlen(meta) : 0, &st_ops, x);
    ck_assert_ptr_nonnull(x->s);
    return x;
}

/* ---- tunnel callbacks ---- */

static void t_on_open(struct tunnel *t, struct tun_stream *s, const char *service,
                      const uint8_t *meta, size_t meta_len)
{
    struct side *sd = tunnel_ud(t);
    sd->peer_opens++;
    snprintf(sd->service, sizeof(sd->service), "%s", service);
    snprintf(sd->meta, sizeof(sd->meta), "%.*s", (int)meta_len, (const char *)meta);
    struct st *x = st_new(sd);
    x->s = s;
    x->auto_pump = true;
    x->reply_on_eof = sd->reply_on_eof;
    x->reply_total = sd->reply_total;
    sd->last = x;
    switch (sd->mode) {
    case ACCEPT:
        ck_assert_int_eq(tun_stream_accept(s, &st_ops, x), 0);
        break;
    case HOLD:
        tun_stream_set_ops(s, &st_ops, x);
        break;
    case REFUSE:
        tun_stream_reset(s, TUN_RESET_REFUSED, "not allowed here");
        x->s = NULL;
        break;
    }
}

static void t_on_control(struct tunnel *t, const uint8_t *json, size_t len)
{
    struct side *sd = tunnel_ud(t);
    (void)json;
    (void)len;
    sd->controls++;
}

static void t_on_down(struct tunnel *t, const char *why)
{
    struct side *sd = tunnel_ud(t);
    sd->downs++;
    snprintf(sd->down_why, sizeof(sd->down_why), "%s", why ? why : "");
    /* Every stream has had on_end already. */
    ck_assert_uint_eq(tunnel_stream_count(t), 0);
    sd->t = NULL;
}

static const struct tunnel_ops t_ops = {
    .on_open = t_on_open, .on_control = t_on_control, .on_down = t_on_down,
};

/* ---- raw websocket (client side) ---- */

static void raw_on_open(struct ws *w)
{
    struct side *sd = ws_ud(w);
    sd->ups++;
}

static void raw_on_message(struct ws *w, uint8_t op, const uint8_t *data, size_t len)
{
    struct side *sd = ws_ud(w);
    ck_assert_int_eq(op, WS_OP_BINARY);
    size_t off = 0;
    while (off < len) {
        struct tun_frame f;
        ssize_t n = tun_frame_parse(data + off, len - off, &f);
        ck_assert_msg(n > 0, "raw client got a bad frame: %s", f.error ? f.error : "?");
        if (sd->ngot < 64) {
            size_t dl = f.data_len < 300 ? f.data_len : 299;
            if (dl)
                memcpy(sd->got_data[sd->ngot], f.data, dl);
            sd->got_data[sd->ngot][dl] = 0;
            sd->got[sd->ngot] = f;
            sd->got[sd->ngot].data = sd->got_data[sd->ngot];
            sd->got[sd->ngot].service = NULL;
            sd->got[sd->ngot].meta = NULL;
            sd->ngot++;
        }
        off += (size_t)n;
    }
}

static void raw_on_close(struct ws *w, const char *why)
{
    struct side *sd = ws_ud(w);
    sd->raw_closes++;
    snprintf(sd->raw_why, sizeof(sd->raw_why), "%s", why ? why : "");
    sd->raw = NULL;
}

static const struct ws_ops raw_ops = {
    .on_open = raw_on_open, .on_message = raw_on_message, .on_close = raw_on_close,
};

static void raw_send(struct side *sd, const struct tun_frame *f)
{
    static uint8_t buf[TUN_MAX_FRAME];
    ssize_t n = tun_frame_encode(buf, sizeof(buf), f);
    ck_assert_int_gt(n, 0);
    ck_assert_int_eq(ws_send(sd->raw, WS_OP_BINARY, buf, (size_t)n, NULL, 0), 0);
}

static void raw_open(struct side *sd, uint32_t id, uint32_t window)
{
    struct tun_frame f = { .type = TUN_OPEN, .stream = id, .window = window,
                           .service = "tcp", .service_len = 3 };
    raw_send(sd, &f);
}

static void raw_data(struct side *sd, uint32_t id, size_t len)
{
    static uint8_t d[TUN_MAX_DATA];
    ck_assert_uint_le(len, sizeof(d));
    memset(d, 'r', len);
    struct tun_frame f = { .type = TUN_DATA, .stream = id, .data = d, .data_len = len };
    raw_send(sd, &f);
}

static void raw_simple(struct side *sd, uint8_t type, uint32_t id, uint32_t window)
{
    struct tun_frame f = { .type = type, .stream = id, .window = window };
    raw_send(sd, &f);
}

/* The first received frame of a type on a stream, or NULL. */
static const struct tun_frame *raw_find(const struct side *sd, uint8_t type, uint32_t id)
{
    for (int i = 0; i < sd->ngot; i++)
        if (sd->got[i].type == type && sd->got[i].stream == id)
            return &sd->got[i];
    return NULL;
}

/* ---- the pair: server (tunnel) and client (tunnel or raw) ---- */

struct pair {
    struct loop *ls, *lc;       /* server and client loops (may be equal) */
    struct listener *lsn;
    struct netaddr addr;
    bool tls;
    struct unit_pki pki;
    struct side s, c;
    bool raw_client;
    struct unit_ws_accept up;
    size_t base_live;           /* connections other tests left (CK_FORK=no) */
};

static struct pair P;

/* The server's websocket: its tunnel. */
static void srv_ws(struct unit_ws_accept *a, struct ws *w)
{
    (void)a;
    P.s.ws = w;
    P.s.t = tunnel_new(P.ls, w, true, &P.s.cfg, &t_ops, &P.s);
    ck_assert_ptr_nonnull(P.s.t);
    P.s.ups++;
}

static void on_accept(struct listener *lsn, int fd, void *ud)
{
    (void)lsn;
    (void)ud;
    ck_assert(!P.up.done);
    P.up.on_ws = srv_ws;
    unit_ws_accept(P.ls, fd, P.tls ? P.pki.server : NULL, &P.up);
}

static void cli_ws_open(struct ws *w)
{
    P.c.ws = w;
    P.c.t = tunnel_new(P.lc, w, false, &P.c.cfg, &t_ops, &P.c);
    ck_assert_ptr_nonnull(P.c.t);
    P.c.ups++;
}

static void cli_ws_close(struct ws *w, const char *why)
{
    (void)w;
    ck_abort_msg("client websocket failed before the upgrade: %s", why);
}

static const struct ws_ops cli_ws_ops = {
    .on_open = cli_ws_open, .on_message = unit_ws_ignore, .on_close = cli_ws_close,
};

static bool both_up(void *ud)
{
    (void)ud;
    return P.s.ups && P.c.ups;
}

static void side_init(struct side *sd, const char *name, struct loop *l)
{
    memset(sd, 0, sizeof(*sd));
    sd->name = name;
    sd->l = l;
    sd->consume = true;
    sd->mode = ACCEPT;
}

/* Sets up loops and the listener; the caller may adjust P.s / P.c. */
static void pair_setup(bool tls, bool two_loops)
{
    memset(&P, 0, sizeof(P));
    P.base_live = conn_live_count();
    nsts = 0;
    P.ls = loop_new();
    P.lc = two_loops ? loop_new() : P.ls;
    ck_assert(P.ls && P.lc);
    P.tls = tls;
    if (tls)
        unit_pki_init(&P.pki);
    side_init(&P.s, "server", P.ls);
    side_init(&P.c, "client", P.lc);
    P.lsn = unit_listen(P.ls, &P.addr, on_accept, NULL);
}

static void pair_connect(void)
{
    SSL_CTX *tls = P.tls ? P.pki.client : NULL;
    if (P.raw_client)
        P.c.raw = unit_ws_dial(P.lc, &P.addr, tls, "/v3/connect", &raw_ops, &P.c);
    else
        unit_ws_dial(P.lc, &P.addr, tls, "/v3/connect", &cli_ws_ops, NULL);
    ck_assert(unit_run2_until(P.ls, P.lc == P.ls ? NULL : P.lc, both_up, NULL, 10000));
}

static void pair_up(bool tls)
{
    pair_setup(tls, false);
    pair_connect();
}

static bool run_until(unit_cond cond, void *ud, int ms)
{
    return unit_run2_until(P.ls, P.lc == P.ls ? NULL : P.lc, cond, ud, ms);
}

static void run_for(int ms)
{
    unit_run2_for(P.ls, P.lc == P.ls ? NULL : P.lc, ms);
}

static bool live_is_base(void *ud)
{
    (void)ud;
    return conn_live_count() == P.base_live;
}

static void pair_teardown(void)
{
    if (P.s.t)
        tunnel_close(P.s.t, WS_CLOSE_GOING_AWAY, "test over");
    if (P.c.t)
        tunnel_close(P.c.t, WS_CLOSE_GOING_AWAY, "test over");
    if (P.c.raw)
        ws_close(P.c.raw, WS_CLOSE_NORMAL, "test over");
    P.s.t = P.c.t = NULL;
    P.c.raw = NULL;
    /* Closing websockets flush a close frame first; wait for them. */
    ck_assert_msg(run_until(live_is_base, NULL, 5000), "%zu connections left",
                  conn_live_count() - P.base_live);
    listener_free(P.lsn);
    if (P.lc != P.ls)
        loop_free(P.lc);
    loop_free(P.ls);
    unit_pki_free(&P.pki);
    ck_assert_uint_eq(conn_live_count(), P.base_live);
}

/* ---- conditions ---- */

static bool st_ended(void *ud)
{
    struct st *x = ud;
    return x->ends > 0 || x->s == NULL;
}

struct rxw {
    struct st *x;
    uint64_t want;
};

static bool rx_reached(void *ud)
{
    struct rxw *w = ud;
    return w->x->rx >= w->want || w->x->ends;
}

static bool server_opens(void *ud)
{
    return P.s.peer_opens >= *(int *)ud;
}

static bool client_opens(void *ud)
{
    return P.c.peer_opens >= *(int *)ud;
}

static bool st_got_opened(void *ud)
{
    struct st *x = ud;
    return x->opened || x->ends;
}

static bool st_got_eof(void *ud)
{
    struct st *x = ud;
    return x->eofs || x->ends;
}

static bool got_writable(void *ud)
{
    struct st *x = ud;
    return x->writables > 0 || x->ends;
}

/* ---- open, data, close ---- */

/*
 * A stream each way at once. The opener sends `up` bytes and half-closes;
 * the acceptor, on EOF, sends `down` bytes back and closes, which ends its
 * side at once (tun_stream_close returns 1); the opener sees EOF and then
 * on_end with code 0.
 */
static void round_trip(bool tls, uint64_t up, uint64_t down)
{
    pair_up(tls);
    P.s.reply_on_eof = P.c.reply_on_eof = true;
    P.s.reply_total = down;
    P.c.reply_total = up;
    struct st *cs = st_open(&P.c, "echo", "meta-c");
    cs->tx_total = up;
    cs->auto_pump = cs->close_when_sent = true;
    st_pump(cs);
    int one = 1;
    ck_assert(run_until(server_opens, &one, 5000));
    ck_assert_str_eq(P.s.service, "echo");
    ck_assert_str_eq(P.s.meta, "meta-c");
    struct st *ss = P.s.last;

    /* And the other way: the server opens, the client accepts. */
    struct st *so = st_open(&P.s, "logs", "meta-s");
    so->tx_total = down;
    so->auto_pump = so->close_when_sent = true;
    st_pump(so);
    ck_assert(run_until(client_opens, &one, 5000));
    ck_assert_str_eq(P.c.service, "logs");
    ck_assert_str_eq(P.c.meta, "meta-s");
    struct st *co = P.c.last;

    ck_assert(run_until(st_ended, cs, 60000));
    ck_assert(run_until(st_ended, so, 60000));
    ck_assert_int_eq(cs->opened, 1);
    ck_assert_int_eq(so->opened, 1);
    /* Each acceptor got every byte, then EOF, and closed its end. */
    ck_assert_uint_eq(ss->rx, up);
    ck_assert_uint_eq(ss->bad_at, 0);
    ck_assert_uint_eq(ss->eof_at, up);
    ck_assert_ptr_null(ss->s);
    ck_assert_int_eq(ss->ends, 0);          /* it ended its side itself */
    ck_assert_uint_eq(co->rx, down);
    ck_assert_uint_eq(co->bad_at, 0);
    ck_assert_int_eq(co->ends, 0);
    /* Each opener got the answer, EOF, then the end with code 0. */
    ck_assert_uint_eq(cs->rx, down);
    ck_assert_uint_eq(cs->bad_at, 0);
    ck_assert_int_eq(cs->ends, 1);
    ck_assert_int_eq(cs->end_code, 0);
    ck_assert_uint_eq(cs->eof_at, down);
    ck_assert_uint_eq(so->rx, up);
    ck_assert_uint_eq(so->bad_at, 0);
    ck_assert_int_eq(so->end_code, 0);
    ck_assert_uint_eq(tunnel_stream_count(P.c.t), 0);
    ck_assert_uint_eq(tunnel_stream_count(P.s.t), 0);
    ck_assert_int_eq(P.s.downs + P.c.downs, 0);
    pair_teardown();
}

START_TEST(plain_streams_both_ways)
{
    round_trip(false, 3 * MB + 17, 2 * MB + 5);
}
END_TEST

START_TEST(tls_streams_both_ways)
{
    round_trip(true, 3 * MB + 17, 2 * MB + 5);
}
END_TEST

START_TEST(empty_streams_just_close)
{
    round_trip(false, 0, 0);
}
END_TEST

START_TEST(many_streams_at_once)
{
    pair_up(false);
    P.s.reply_on_eof = true;
    P.s.reply_total = 10 * KB;
    struct st *xs[40];
    for (int i = 0; i < 40; i++) {
        xs[i] = st_open(&P.c, "echo", NULL);
        xs[i]->tx_total = 50 * KB + (uint64_t)i * 1000;
        xs[i]->auto_pump = xs[i]->close_when_sent = true;
        st_pump(xs[i]);
    }
    int n = 40;
    ck_assert(run_until(server_opens, &n, 5000));
    for (int i = 0; i < 40; i++)
        ck_assert(run_until(st_ended, xs[i], 20000));
    for (int i = 0; i < 40; i++) {
        ck_assert_int_eq(xs[i]->end_code, 0);
        ck_assert_uint_eq(xs[i]->rx, 10 * KB);
    }
    for (int i = 0; i < nsts; i++)
        if (sts[i].sd == &P.s) {
            ck_assert_uint_eq(sts[i].bad_at, 0);
            ck_assert_uint_eq(sts[i].rx, sts[i].eof_at);
        }
    /* Client ids are even and increasing. */
    ck_assert_uint_eq(tunnel_stream_count(P.s.t), 0);
    pair_teardown();
}
END_TEST

START_TEST(stream_ids_and_controls)
{
    pair_up(false);
    struct st *a = st_open(&P.c, "x", NULL);
    struct st *b = st_open(&P.c, "x", NULL);
    struct st *c = st_open(&P.s, "x", NULL);
    struct st *d = st_open(&P.s, "x", NULL);
    ck_assert_uint_eq(tun_stream_id(a->s) % 2, 0);     /* the agent opens even ids */
    ck_assert_uint_gt(tun_stream_id(b->s), tun_stream_id(a->s));
    ck_assert_uint_eq(tun_stream_id(c->s) % 2, 1);     /* the server odd ones */
    ck_assert_uint_gt(tun_stream_id(d->s), tun_stream_id(c->s));
    ck_assert_ptr_eq(tun_stream_tunnel(a->s), P.c.t);
    ck_assert_ptr_eq(tun_stream_ud(a->s), a);
    ck_assert_uint_eq(tunnel_stream_count(P.c.t), 2);
    ck_assert_ptr_eq(tunnel_ud(P.c.t), &P.c);
    ck_assert_str_ne(tunnel_peer(P.s.t), "");
    ck_assert_int_eq(tunnel_send_control(P.c.t, "{\"type\":\"x\"}", 12), 0);
    ck_assert_int_eq(tunnel_send_control(P.s.t, "{\"type\":\"y\"}", 12), 0);
    ck_assert_int_eq(tunnel_send_control(P.s.t, "", 0), -1);
    static char big[TUN_MAX_CONTROL + 1];
    memset(big, ' ', sizeof(big));
    ck_assert_int_eq(tunnel_send_control(P.s.t, big, sizeof(big)), -1);
    int two = 2;
    ck_assert(run_until(client_opens, &two, 5000));
    ck_assert(run_until(server_opens, &two, 5000));
    run_for(20);
    ck_assert_int_eq(P.c.controls, 1);
    ck_assert_int_eq(P.s.controls, 1);
    pair_teardown();
}
END_TEST

/* ---- early data ---- */

START_TEST(early_data_is_delivered_on_accept)
{
    pair_up(false);
    P.s.mode = HOLD;
    struct st *cs = st_open(&P.c, "tcp", "10.0.0.1:80");
    cs->text = true;
    ck_assert_int_eq(tun_stream_send(cs->s, "GET / HTTP/1.0\r\n\r\n", 18), 18);
    ck_assert_int_eq(tun_stream_close(cs->s), 0);
    int one = 1;
    ck_assert(run_until(server_opens, &one, 5000));
    run_for(50);            /* let the data and the CLOSE arrive too */
    struct st *ss = P.s.last;
    ss->text = true;
    ck_assert_int_eq(ss->rx, 0);                /* held until accepted */
    ck_assert_int_eq(ss->eofs, 0);
    ck_assert_int_eq(cs->opened, 0);
    ck_assert_int_eq(tun_stream_send(ss->s, "x", 1), -1);   /* not accepted yet */
    ck_assert_int_eq(tun_stream_accept(ss->s, &st_ops, ss), 0);
    ck_assert_int_eq(tun_stream_accept(ss->s, &st_ops, ss), -1);    /* once */
    /* Accepting hands over the early bytes, then the half-close. */
    ck_assert_str_eq(ss->rx_text, "GET / HTTP/1.0\r\n\r\n");
    ck_assert_str_eq(ss->order, "de");
    ck_assert_int_eq(tun_stream_send(ss->s, "HTTP/1.0 200 OK\r\n", 17), 17);
    ck_assert_int_eq(tun_stream_close(ss->s), 1);   /* both closed: ended */
    ss->s = NULL;
    ck_assert(run_until(st_ended, cs, 5000));
    ck_assert_int_eq(cs->opened, 1);
    ck_assert_str_eq(cs->rx_text, "HTTP/1.0 200 OK\r\n");
    ck_assert_str_eq(cs->order, "dex");
    ck_assert_int_eq(cs->end_code, 0);
    pair_teardown();
}
END_TEST

START_TEST(early_window_is_64k)
{
    pair_up(false);
    P.s.mode = HOLD;
    P.s.consume = false;
    struct st *cs = st_open(&P.c, "tcp", NULL);
    static uint8_t buf[100 * KB];
    for (size_t i = 0; i < sizeof(buf); i++)
        buf[i] = unit_stream_byte(i);
    ck_assert_int_eq(tun_stream_send(cs->s, buf, sizeof(buf)), (ssize_t)TUN_EARLY_WINDOW);
    ck_assert_int_eq(tun_stream_send(cs->s, buf, sizeof(buf)), 0);
    int one = 1;
    ck_assert(run_until(server_opens, &one, 5000));
    run_for(50);
    ck_assert_int_eq(cs->writables, 0);
    struct st *ss = P.s.last;
    ck_assert_int_eq(tun_stream_accept(ss->s, &st_ops, ss), 0);
    ck_assert_uint_eq(ss->rx, TUN_EARLY_WINDOW);
    ck_assert_uint_eq(ss->bad_at, 0);
    /* OPEN_OK grants the rest of the window: the opener hears it can go on. */
    ck_assert(run_until(got_writable, cs, 5000));
    ck_assert_int_eq(cs->opened, 1);
    ssize_t n = tun_stream_send(cs->s, buf + TUN_EARLY_WINDOW,
                                sizeof(buf) - TUN_EARLY_WINDOW);
    ck_assert_int_eq(n, (ssize_t)(sizeof(buf) - TUN_EARLY_WINDOW));
    ck_assert(run_until(rx_reached, &(struct rxw){ ss, sizeof(buf) }, 5000));
    ck_assert_uint_eq(ss->rx, sizeof(buf));
    ck_assert_uint_eq(ss->bad_at, 0);
    pair_teardown();
}
END_TEST

/* ---- flow control ---- */

#define WIN 100000u

static void fill_window(struct st *cs, uint64_t *sent)
{
    static uint8_t buf[256 * KB];
    for (;;) {
        for (size_t i = 0; i < sizeof(buf); i++)
            buf[i] = unit_stream_byte(*sent + i);
        ssize_t n = tun_stream_send(cs->s, buf, sizeof(buf));
        ck_assert_int_ge(n, 0);
        *sent += (uint64_t)n;
        if ((size_t)n < sizeof(buf))
            return;
    }
}

START_TEST(stalled_receiver_gets_exactly_the_window)
{
    pair_setup(false, false);
    P.s.cfg.window = WIN;
    P.s.consume = false;
    pair_connect();
    struct st *cs = st_open(&P.c, "sink", NULL);
    uint64_t sent = 0;
    fill_window(cs, &sent);
    ck_assert_uint_eq(sent, TUN_EARLY_WINDOW);   /* before OPEN_OK */
    ck_assert(run_until(got_writable, cs, 5000));
    ck_assert_int_eq(cs->writables, 1);
    fill_window(cs, &sent);
    ck_assert_uint_eq(sent, WIN);               /* the window, exactly */
    ck_assert_int_eq(tun_stream_send(cs->s, "x", 1), 0);
    struct st *ss = P.s.last;
    ck_assert(run_until(rx_reached, &(struct rxw){ ss, WIN }, 5000));
    run_for(200);
    ck_assert_uint_eq(ss->rx, WIN);
    ck_assert_uint_eq(ss->bad_at, 0);
    ck_assert_int_eq(cs->writables, 1);         /* no credit, no wake-up */
    ck_assert_int_eq(tun_stream_send(cs->s, "x", 1), 0);
    ck_assert_int_eq(ss->ends + cs->ends, 0);

    /* A small credit below the batching threshold still goes out once the
     * window is nearly empty, and wakes the sender. */
    cs->writables = 0;
    tun_stream_consumed(ss->s, 10);
    ck_assert(run_until(got_writable, cs, 5000));
    ck_assert_int_eq(cs->writables, 1);
    fill_window(cs, &sent);
    ck_assert_uint_eq(sent, WIN + 10);
    tun_stream_consumed(ss->s, WIN);
    cs->writables = 0;
    ck_assert(run_until(got_writable, cs, 5000));
    fill_window(cs, &sent);
    ck_assert_uint_eq(sent, 2 * WIN + 10);
    ck_assert(run_until(rx_reached, &(struct rxw){ ss, sent }, 5000));
    run_for(50);
    ck_assert_uint_eq(ss->rx, 2 * WIN + 10);
    ck_assert_uint_eq(ss->bad_at, 0);
    pair_teardown();
}
END_TEST

START_TEST(second_stream_flows_while_first_is_stalled)
{
    pair_setup(false, false);
    P.s.cfg.window = WIN;
    pair_connect();
    struct st *stalled = st_open(&P.c, "sink", NULL);
    int one = 1;
    ck_assert(run_until(server_opens, &one, 5000));
    P.s.last->consume = false;
    struct st *ss1 = P.s.last;
    uint64_t sent = 0;
    ck_assert(run_until(st_got_opened, stalled, 5000));
    fill_window(stalled, &sent);
    ck_assert_uint_eq(sent, WIN);

    struct st *flowing = st_open(&P.c, "echo", NULL);
    flowing->tx_total = 8 * MB;
    flowing->auto_pump = flowing->close_when_sent = true;
    st_pump(flowing);
    int two = 2;
    ck_assert(run_until(server_opens, &two, 5000));
    struct st *ss2 = P.s.last;
    ck_assert(run_until(st_got_eof, ss2, 30000));
    ck_assert_uint_eq(ss2->rx, 8 * MB);
    ck_assert_uint_eq(ss2->bad_at, 0);
    ck_assert_uint_eq(ss1->rx, WIN);
    ck_assert_int_eq(stalled->writables, 0);
    ck_assert_int_eq(tun_stream_send(stalled->s, "x", 1), 0);
    pair_teardown();
}
END_TEST

/* ---- resets ---- */

static bool st_ended_with_code(void *ud)
{
    return ((struct st *)ud)->ends > 0;
}

START_TEST(reset_from_either_side)
{
    pair_up(false);
    struct st *c1 = st_open(&P.c, "a", NULL);
    struct st *c2 = st_open(&P.c, "b", NULL);
    int two = 2;
    ck_assert(run_until(server_opens, &two, 5000));
    struct st *s1 = &sts[nsts - 2], *s2 = &sts[nsts - 1];
    ck_assert_ptr_eq(s1->sd, &P.s);

    tun_stream_reset(c1->s, TUN_RESET_CANCEL, "client gave up");
    c1->s = NULL;
    ck_assert(run_until(st_ended_with_code, s1, 5000));
    ck_assert_int_eq(s1->end_code, TUN_RESET_CANCEL);
    ck_assert_str_eq(s1->end_reason, "client gave up");
    ck_assert_int_eq(c1->ends, 0);              /* it asked: no callback */

    tun_stream_reset(s2->s, TUN_RESET_UNAVAILABLE, "server busy");
    s2->s = NULL;
    ck_assert(run_until(st_ended_with_code, c2, 5000));
    ck_assert_int_eq(c2->end_code, TUN_RESET_UNAVAILABLE);
    ck_assert_str_eq(c2->end_reason, "server busy");
    ck_assert_int_eq(s2->ends, 0);
    ck_assert_uint_eq(tunnel_stream_count(P.c.t), 0);
    ck_assert_uint_eq(tunnel_stream_count(P.s.t), 0);

    /* Refused in on_open: the opener never hears on_opened. */
    P.s.mode = REFUSE;
    struct st *c3 = st_open(&P.c, "c", NULL);
    ck_assert(run_until(st_ended_with_code, c3, 5000));
    ck_assert_int_eq(c3->end_code, TUN_RESET_REFUSED);
    ck_assert_str_eq(c3->end_reason, "not allowed here");
    ck_assert_int_eq(c3->opened, 0);

    /* The opener gives up while the acceptor is still deciding. */
    P.s.mode = HOLD;
    struct st *c4 = st_open(&P.c, "d", NULL);
    int four = 4;
    ck_assert(run_until(server_opens, &four, 5000));
    struct st *s4 = P.s.last;
    tun_stream_reset(c4->s, TUN_RESET_CANCEL, "never mind");
    c4->s = NULL;
    ck_assert(run_until(st_ended_with_code, s4, 5000));
    ck_assert_int_eq(s4->end_code, TUN_RESET_CANCEL);
    ck_assert_str_eq(s4->end_reason, "never mind");
    ck_assert_int_eq(P.s.downs + P.c.downs, 0);
    pair_teardown();
}
END_TEST

START_TEST(peer_stream_limit)
{
    pair_setup(false, false);
    P.s.cfg.max_streams = 3;
    pair_connect();
    struct st *cs[5];
    for (int i = 0; i < 5; i++)
        cs[i] = st_open(&P.c, "x", NULL);
    ck_assert(run_until(st_ended_with_code, cs[4], 5000));
    ck_assert(run_until(st_ended_with_code, cs[3], 5000));
    ck_assert_int_eq(cs[3]->end_code, TUN_RESET_LIMIT);
    ck_assert_int_eq(cs[4]->end_code, TUN_RESET_LIMIT);
    ck_assert_int_eq(P.s.peer_opens, 3);
    for (int i = 0; i < 3; i++) {
        ck_assert(run_until(st_got_opened, cs[i], 5000));
        ck_assert_int_eq(cs[i]->ends, 0);
    }
    /* Our own streams do not count against the peer's limit. */
    struct st *mine = st_open(&P.s, "y", NULL);
    ck_assert(run_until(st_got_opened, mine, 5000));
    /* When one of the three ends, there is room for another. */
    cs[0]->close_when_sent = true;
    st_pump(cs[0]);
    for (int i = 0; i < nsts; i++)
        if (sts[i].sd == &P.s && sts[i].s && tun_stream_id(sts[i].s) == 2) {
            sts[i].reply_on_eof = true;
            sts[i].reply_total = 1;
        }
    ck_assert(run_until(st_ended, cs[0], 5000));
    struct st *again = st_open(&P.c, "x", NULL);
    ck_assert(run_until(st_got_opened, again, 5000));
    ck_assert_int_eq(again->ends, 0);
    ck_assert_int_eq(P.s.peer_opens, 4);
    pair_teardown();
}
END_TEST

/* ---- keepalive and endings ---- */

static bool server_down(void *ud)
{
    (void)ud;
    return P.s.downs > 0;
}

static bool client_down(void *ud)
{
    (void)ud;
    return P.c.downs > 0;
}

START_TEST(silent_peer_is_dropped)
{
    pair_setup(false, true);
    P.s.cfg.ping_interval_ms = P.c.cfg.ping_interval_ms = 100;
    P.s.cfg.dead_after_ms = P.c.cfg.dead_after_ms = 300;
    pair_connect();
    struct st *cs = st_open(&P.c, "x", NULL);
    int one = 1;
    ck_assert(run_until(server_opens, &one, 5000));
    struct st *ss = P.s.last;
    /* Both alive: pings keep an idle tunnel up well past dead-after. */
    run_for(1000);
    ck_assert_int_eq(P.s.downs + P.c.downs, 0);

    /* Freeze the client: only the server's loop runs now. */
    uint64_t t0 = loop_clock_ms();
    ck_assert(unit_run_until(P.ls, server_down, NULL, 5000));
    ck_assert_uint_ge(loop_clock_ms() - t0, 150);
    ck_assert_msg(strstr(P.s.down_why, "silent") != NULL, "why: %s", P.s.down_why);
    ck_assert_int_eq(ss->ends, 1);
    ck_assert_int_eq(ss->end_code, TUN_RESET_UNAVAILABLE);
    ck_assert_int_eq(P.c.downs, 0);

    /* The client, thawed, learns its tunnel is gone. */
    ck_assert(unit_run_until(P.lc, client_down, NULL, 5000));
    ck_assert_int_eq(cs->ends, 1);
    ck_assert_int_ne(cs->end_code, 0);
    pair_teardown();
}
END_TEST

/* A tunnel pair with these keepalive settings (agent, then server), idle
 * for a second: both ends must still be up. */
static void idle_pair(uint64_t agent_ping, uint64_t agent_dead, uint64_t server_ping,
                      uint64_t server_dead)
{
    pair_setup(false, true);
    P.c.cfg.ping_interval_ms = agent_ping;
    P.c.cfg.dead_after_ms = agent_dead;
    P.s.cfg.ping_interval_ms = server_ping;
    P.s.cfg.dead_after_ms = server_dead;
    pair_connect();
    run_for(1000);
    ck_assert_int_eq(P.s.downs + P.c.downs, 0);
}

START_TEST(server_pings_only_when_it_hears_nothing)
{
    /* The agent pings twice as often as the server would: the server,
     * never silent for its interval, sends (almost) none. */
    idle_pair(50, 400, 100, 400);
    uint64_t from_agent = ws_pings_received(P.s.ws), from_server = ws_pings_received(P.c.ws);
    ck_assert_msg(from_agent >= 8, "the server got %llu pings", (unsigned long long)from_agent);
    /* Both ends pinging would be ~10 from the server; a late timer may let
     * one or two through. */
    ck_assert_msg(from_server <= 3, "the server sent %llu pings",
                  (unsigned long long)from_server);
    pair_teardown();
}
END_TEST

START_TEST(server_pings_an_agent_that_does_not)
{
    /* An agent with a long interval (or an older one) is still kept alive
     * by the server's pings and its own pongs. */
    idle_pair(60000, 120000, 100, 300);
    ck_assert_uint_eq(ws_pings_received(P.s.ws), 0);
    ck_assert_msg(ws_pings_received(P.c.ws) >= 4, "the server sent %llu pings",
                  (unsigned long long)ws_pings_received(P.c.ws));
    pair_teardown();
}
END_TEST

START_TEST(tunnel_close_ends_every_stream)
{
    pair_up(false);
    struct st *a = st_open(&P.c, "x", NULL);
    struct st *b = st_open(&P.c, "x", NULL);
    int two = 2;
    ck_assert(run_until(server_opens, &two, 5000));
    P.s.mode = HOLD;
    struct st *c = st_open(&P.c, "x", NULL);        /* left pending */
    int three = 3;
    ck_assert(run_until(server_opens, &three, 5000));
    struct st *sc = P.s.last;

    tunnel_close(P.c.t, WS_CLOSE_NORMAL, "bye now");
    P.c.t = NULL;
    ck_assert_int_eq(a->ends + b->ends + c->ends, 3);
    ck_assert(a->end_code != 0 && b->end_code != 0 && c->end_code != 0);
    ck_assert_int_eq(P.c.downs, 0);             /* asked for: no on_down */

    ck_assert(run_until(server_down, NULL, 5000));
    ck_assert_msg(strstr(P.s.down_why, "bye now") != NULL, "why: %s", P.s.down_why);
    for (int i = 0; i < nsts; i++)
        if (sts[i].sd == &P.s)
            ck_assert_int_eq(sts[i].ends, 1);
    ck_assert_int_eq(sc->end_code, TUN_RESET_UNAVAILABLE);
    pair_teardown();
}
END_TEST

/*
 * MODULE BUG: a failing test left out so the suite stays green (to run it,
 * turn this block on and add it to a TCase below). tunnel.h says
 * tunnel_close() ends every stream with "their on_end runs, code
 * TUN_RESET_CANCEL", but tunnel_die() passes TUN_RESET_UNAVAILABLE to every
 * stream whatever the cause, so the owner cannot tell "I closed the tunnel"
 * from "the tunnel died".
 */
START_TEST(tunnel_close_ends_streams_with_cancel)
{
    pair_up(false);
    struct st *a = st_open(&P.c, "x", NULL);
    int one = 1;
    ck_assert(run_until(server_opens, &one, 5000));
    tunnel_close(P.c.t, WS_CLOSE_NORMAL, "bye now");
    P.c.t = NULL;
    ck_assert_int_eq(a->ends, 1);
    ck_assert_int_eq(a->end_code, TUN_RESET_CANCEL);
    pair_teardown();
}
END_TEST

/* ---- protocol violations from a raw peer ---- */

static void raw_up(void)
{
    pair_setup(false, false);
    P.raw_client = true;
    pair_connect();
}

static bool raw_closed(void *ud)
{
    (void)ud;
    return P.c.raw_closes > 0;
}

static void expect_tunnel_dropped(const char *why_part, const char *code)
{
    ck_assert(run_until(server_down, NULL, 5000));
    ck_assert_msg(strstr(P.s.down_why, why_part) != NULL, "why: %s", P.s.down_why);
    ck_assert(run_until(raw_closed, NULL, 5000));
    ck_assert_msg(strstr(P.c.raw_why, code) != NULL, "raw why: %s", P.c.raw_why);
}

START_TEST(open_with_wrong_parity_drops_the_tunnel)
{
    raw_up();
    raw_open(&P.c, 3, 65536);          /* odd ids belong to the server */
    expect_tunnel_dropped("invalid id", "1002");
    ck_assert_int_eq(P.s.peer_opens, 0);
    pair_teardown();
}
END_TEST

START_TEST(open_with_old_id_drops_the_tunnel)
{
    raw_up();
    raw_open(&P.c, 4, 65536);
    raw_open(&P.c, 2, 65536);
    expect_tunnel_dropped("invalid id", "1002");
    ck_assert_int_eq(P.s.peer_opens, 1);
    ck_assert_int_eq(sts[0].ends, 1);           /* the stream it had ended */
    pair_teardown();
}
END_TEST

START_TEST(open_reusing_an_id_drops_the_tunnel)
{
    raw_up();
    raw_open(&P.c, 2, 65536);
    raw_open(&P.c, 2, 65536);
    expect_tunnel_dropped("invalid id", "1002");
    pair_teardown();
}
END_TEST

static bool raw_got_reset(void *ud)
{
    return raw_find(&P.c, TUN_RESET, *(uint32_t *)ud) != NULL || P.c.raw_closes;
}

static bool raw_got_open(void *ud)
{
    return raw_find(&P.c, TUN_OPEN, *(uint32_t *)ud) != NULL || P.c.raw_closes;
}

static bool raw_got_open_ok(void *ud)
{
    return raw_find(&P.c, TUN_OPEN_OK, *(uint32_t *)ud) != NULL || P.c.raw_closes;
}

START_TEST(data_beyond_the_window_is_reset_flow)
{
    pair_setup(false, false);
    P.raw_client = true;
    P.s.cfg.window = WIN;
    P.s.consume = false;
    pair_connect();
    uint32_t id = 2;
    raw_open(&P.c, id, 256 * KB);
    ck_assert(run_until(raw_got_open_ok, &id, 5000));
    ck_assert_uint_eq(raw_find(&P.c, TUN_OPEN_OK, id)->window, WIN);
    raw_data(&P.c, id, 65536);
    raw_data(&P.c, id, WIN - 65536);           /* exactly the window: fine */
    run_for(50);
    struct st *ss = P.s.last;
    ck_assert_uint_eq(ss->rx, WIN);
    ck_assert_int_eq(ss->ends, 0);
    raw_data(&P.c, id, 1);                     /* one byte too many */
    ck_assert(run_until(raw_got_reset, &id, 5000));
    const struct tun_frame *r = raw_find(&P.c, TUN_RESET, id);
    ck_assert_ptr_nonnull(r);
    ck_assert_int_eq(r->code, TUN_RESET_FLOW);
    ck_assert_int_eq(ss->ends, 1);
    ck_assert_int_eq(ss->end_code, TUN_RESET_FLOW);
    ck_assert_uint_eq(ss->rx, WIN);             /* the extra byte never surfaced */
    /* The tunnel itself carries on. */
    ck_assert_int_eq(P.s.downs, 0);
    raw_open(&P.c, 4, 65536);
    int two = 2;
    ck_assert(run_until(server_opens, &two, 5000));
    pair_teardown();
}
END_TEST

START_TEST(early_data_beyond_64k_is_reset_flow)
{
    raw_up();
    P.s.mode = HOLD;
    uint32_t id = 2;
    raw_open(&P.c, id, 256 * KB);
    raw_data(&P.c, id, 65536);
    raw_data(&P.c, id, 1);
    ck_assert(run_until(raw_got_reset, &id, 5000));
    ck_assert_int_eq(raw_find(&P.c, TUN_RESET, id)->code, TUN_RESET_FLOW);
    struct st *ss = P.s.last;
    ck_assert_int_eq(ss->ends, 1);              /* heard through set_ops */
    ck_assert_int_eq(ss->end_code, TUN_RESET_FLOW);
    ck_assert_int_eq(P.s.downs, 0);
    pair_teardown();
}
END_TEST

START_TEST(frames_for_unknown_streams_are_dropped)
{
    raw_up();
    raw_data(&P.c, 98, 10);
    raw_simple(&P.c, TUN_WINDOW, 98, 100);
    raw_simple(&P.c, TUN_CLOSE, 98, 0);
    raw_simple(&P.c, TUN_OPEN_OK, 97, 100);
    run_for(100);
    ck_assert_int_eq(P.s.downs, 0);
    ck_assert_int_eq(P.c.ngot, 0);              /* no answer either */
    raw_open(&P.c, 2, 65536);
    int one = 1;
    ck_assert(run_until(server_opens, &one, 5000));
    pair_teardown();
}
END_TEST

START_TEST(text_message_drops_the_tunnel)
{
    raw_up();
    ck_assert_int_eq(ws_send(P.c.raw, WS_OP_TEXT, "{}", 2, NULL, 0), 0);
    expect_tunnel_dropped("text message", "1003");
    pair_teardown();
}
END_TEST

START_TEST(truncated_frame_drops_the_tunnel)
{
    raw_up();
    uint8_t buf[64];
    struct tun_frame f = { .type = TUN_DATA, .stream = 2, .data = (const uint8_t *)"abcdef",
                           .data_len = 6 };
    ssize_t n = tun_frame_encode(buf, sizeof(buf), &f);
    ck_assert_int_gt(n, 3);
    ck_assert_int_eq(ws_send(P.c.raw, WS_OP_BINARY, buf, (size_t)n - 3, NULL, 0), 0);
    expect_tunnel_dropped("truncated", "1002");
    pair_teardown();
}
END_TEST

START_TEST(empty_message_drops_the_tunnel)
{
    raw_up();
    ck_assert_int_eq(ws_send(P.c.raw, WS_OP_BINARY, NULL, 0, NULL, 0), 0);
    expect_tunnel_dropped("empty", "1002");
    pair_teardown();
}
END_TEST

START_TEST(oversized_message_drops_the_tunnel)
{
    raw_up();
    size_t n = TUN_MAX_MESSAGE + 1;
    uint8_t *big = calloc(1, n);
    ck_assert_ptr_nonnull(big);
    ck_assert_int_eq(ws_send(P.c.raw, WS_OP_BINARY, big, n, NULL, 0), 0);
    free(big);
    ck_assert(run_until(server_down, NULL, 5000));
    ck_assert(run_until(raw_closed, NULL, 5000));
    ck_assert_msg(strstr(P.c.raw_why, "(100") != NULL, "raw why: %s", P.c.raw_why);
    pair_teardown();
}
END_TEST

START_TEST(data_after_close_is_a_protocol_error)
{
    raw_up();
    uint32_t id = 2;
    raw_open(&P.c, id, 256 * KB);
    ck_assert(run_until(raw_got_open_ok, &id, 5000));
    raw_simple(&P.c, TUN_CLOSE, id, 0);
    raw_data(&P.c, id, 5);
    ck_assert(run_until(raw_got_reset, &id, 5000));
    ck_assert_int_eq(raw_find(&P.c, TUN_RESET, id)->code, TUN_RESET_PROTOCOL);
    ck_assert_int_eq(P.s.last->rx, 0);
    ck_assert_int_eq(P.s.downs, 0);
    pair_teardown();
}
END_TEST

/*
 * MODULE BUG: failing tests left out so the suite stays green (to run them,
 * turn this block on and add them to a TCase below). When the peer breaks the
 * protocol on one stream, tunnel.c answers with tun_stream_reset(), which
 * frees the stream without calling on_end (that is the path for resets the
 * owner asked for). The owner still holds the pointer and is never told:
 * its next tun_stream_send() on it is a use after free. Affected: DATA after
 * the peer's CLOSE (on_data), a second or unexpected OPEN_OK (on_open_ok),
 * a WINDOW overflow and an allocation failure for early data. The flow
 * violation path does it right (send_reset + end_stream).
 */
START_TEST(data_after_close_ends_the_stream_for_its_owner)
{
    raw_up();
    uint32_t id = 2;
    raw_open(&P.c, id, 256 * KB);
    ck_assert(run_until(raw_got_open_ok, &id, 5000));
    raw_simple(&P.c, TUN_CLOSE, id, 0);
    raw_data(&P.c, id, 5);
    ck_assert(run_until(raw_got_reset, &id, 5000));
    struct st *ss = P.s.last;
    ck_assert_int_eq(ss->eofs, 1);
    ck_assert_int_eq(ss->ends, 1);              /* fails: 0, yet the stream is freed */
    ck_assert_int_eq(ss->end_code, TUN_RESET_PROTOCOL);
    pair_teardown();
}
END_TEST

START_TEST(second_open_ok_ends_the_stream_for_its_owner)
{
    raw_up();
    struct st *ss = st_open(&P.s, "logs", NULL);   /* server opens id 1 */
    uint32_t id = tun_stream_id(ss->s);
    raw_simple(&P.c, TUN_OPEN_OK, id, 65536);
    raw_simple(&P.c, TUN_OPEN_OK, id, 65536);
    ck_assert(run_until(raw_got_reset, &id, 5000));
    ck_assert_int_eq(raw_find(&P.c, TUN_RESET, id)->code, TUN_RESET_PROTOCOL);
    ck_assert_int_eq(ss->opened, 1);
    ck_assert_int_eq(ss->ends, 1);              /* fails: 0 */
    ck_assert_int_eq(ss->end_code, TUN_RESET_PROTOCOL);
    pair_teardown();
}
END_TEST

START_TEST(second_open_ok_is_a_protocol_error)
{
    raw_up();
    struct st *ss = st_open(&P.s, "logs", NULL);
    uint32_t id = tun_stream_id(ss->s);
    ck_assert_uint_eq(id % 2, 1);
    raw_simple(&P.c, TUN_OPEN_OK, id, 65536);
    raw_simple(&P.c, TUN_OPEN_OK, id, 65536);
    ck_assert(run_until(raw_got_reset, &id, 5000));
    ck_assert_int_eq(raw_find(&P.c, TUN_RESET, id)->code, TUN_RESET_PROTOCOL);
    ck_assert_int_eq(ss->opened, 1);
    ck_assert_int_eq(P.s.downs, 0);
    ck_assert_uint_eq(tunnel_stream_count(P.s.t), 0);
    pair_teardown();
}
END_TEST

START_TEST(open_ok_below_early_data_is_a_protocol_error)
{
    raw_up();
    struct st *ss = st_open(&P.s, "logs", NULL);
    uint32_t id = tun_stream_id(ss->s);
    static uint8_t buf[1000];
    ck_assert_int_eq(tun_stream_send(ss->s, buf, sizeof(buf)), (ssize_t)sizeof(buf));
    raw_simple(&P.c, TUN_OPEN_OK, id, 999);
    ck_assert(run_until(raw_got_reset, &id, 5000));
    ck_assert_int_eq(raw_find(&P.c, TUN_RESET, id)->code, TUN_RESET_PROTOCOL);
    ck_assert_int_eq(ss->opened, 0);
    pair_teardown();
}
END_TEST

/* When the websocket queue drains, waiting streams are woken, but only
 * those that have window left: a stream stalled on credit stays asleep. */
START_TEST(drain_wakes_only_streams_with_window)
{
    raw_up();
    struct st *a = st_open(&P.s, "a", NULL);
    struct st *b = st_open(&P.s, "b", NULL);
    uint32_t ia = tun_stream_id(a->s), ib = tun_stream_id(b->s);
    ck_assert(run_until(raw_got_open, &ib, 5000));
    raw_simple(&P.c, TUN_OPEN_OK, ia, 10);
    raw_simple(&P.c, TUN_OPEN_OK, ib, 64 * MB);
    ck_assert(run_until(st_got_opened, a, 5000));
    ck_assert(run_until(st_got_opened, b, 5000));
    ck_assert_int_eq(tun_stream_send(a->s, "0123456789abc", 13), 10);    /* no credit left */
    b->tx_total = 6 * MB;
    b->auto_pump = true;
    st_pump(b);
    ck_assert_uint_lt(b->tx_sent, b->tx_total);    /* stopped by the queue, not the window */
    ck_assert(run_until(got_writable, b, 10000));
    for (uint64_t end = loop_clock_ms() + 20000; b->tx_sent < b->tx_total && loop_clock_ms() < end;)
        run_for(5);
    ck_assert_uint_eq(b->tx_sent, b->tx_total);
    ck_assert_int_gt(b->writables, 0);
    ck_assert_int_eq(a->writables, 0);
    /* Credit for a wakes it. */
    raw_simple(&P.c, TUN_WINDOW, ia, 5);
    ck_assert(run_until(got_writable, a, 5000));
    ck_assert_int_eq(tun_stream_send(a->s, "abcdefgh", 8), 5);
    pair_teardown();
}
END_TEST

START_TEST(raw_peer_sees_the_windows_it_was_granted)
{
    pair_setup(false, false);
    P.raw_client = true;
    P.s.cfg.window = WIN;
    pair_connect();
    /* Server opens: its OPEN carries the window it grants. */
    struct st *ss = st_open(&P.s, "logs", NULL);
    uint32_t id = tun_stream_id(ss->s);
    ck_assert(run_until(raw_got_open, &id, 5000));
    const struct tun_frame *o = raw_find(&P.c, TUN_OPEN, id);
    ck_assert_ptr_nonnull(o);
    ck_assert_uint_eq(o->window, WIN);
    /* The raw peer grants 0 and then credit in two steps: the server may
     * send exactly what was granted. */
    raw_simple(&P.c, TUN_OPEN_OK, id, 0);
    run_for(50);
    ck_assert_int_eq(ss->opened, 1);
    ck_assert_int_eq(tun_stream_send(ss->s, "abc", 3), 0);
    raw_simple(&P.c, TUN_WINDOW, id, 2);
    ck_assert(run_until(got_writable, ss, 5000));
    ck_assert_int_eq(tun_stream_send(ss->s, "abc", 3), 2);
    run_for(50);
    int ndata = 0;
    for (int i = 0; i < P.c.ngot; i++)
        if (P.c.got[i].type == TUN_DATA && P.c.got[i].stream == id) {
            ndata++;
            ck_assert_uint_eq(P.c.got[i].data_len, 2);
            ck_assert_int_eq(memcmp(P.c.got[i].data, "ab", 2), 0);
        }
    ck_assert_int_eq(ndata, 1);
    pair_teardown();
}
END_TEST

Suite *suite_common_tunnel(void)
{
    Suite *s = suite_create("common_tunnel");
    TCase *st = tcase_create("streams");
    TCase *fc = tcase_create("flow");
    TCase *life = tcase_create("lifetime");
    TCase *proto = tcase_create("protocol");
    tcase_set_timeout(st, 120);
    tcase_set_timeout(fc, 60);
    tcase_set_timeout(life, 60);
    tcase_set_timeout(proto, 60);
    tcase_add_test(st, plain_streams_both_ways);
    tcase_add_test(st, tls_streams_both_ways);
    tcase_add_test(st, empty_streams_just_close);
    tcase_add_test(st, many_streams_at_once);
    tcase_add_test(st, stream_ids_and_controls);
    tcase_add_test(st, early_data_is_delivered_on_accept);
    tcase_add_test(fc, early_window_is_64k);
    tcase_add_test(fc, stalled_receiver_gets_exactly_the_window);
    tcase_add_test(fc, second_stream_flows_while_first_is_stalled);
    tcase_add_test(life, reset_from_either_side);
    tcase_add_test(life, peer_stream_limit);
    tcase_add_test(life, silent_peer_is_dropped);
    tcase_add_test(life, server_pings_only_when_it_hears_nothing);
    tcase_add_test(life, server_pings_an_agent_that_does_not);
    tcase_add_test(life, tunnel_close_ends_every_stream);
    tcase_add_test(proto, open_with_wrong_parity_drops_the_tunnel);
    tcase_add_test(proto, open_with_old_id_drops_the_tunnel);
    tcase_add_test(proto, open_reusing_an_id_drops_the_tunnel);
    tcase_add_test(proto, data_beyond_the_window_is_reset_flow);
    tcase_add_test(proto, early_data_beyond_64k_is_reset_flow);
    tcase_add_test(proto, frames_for_unknown_streams_are_dropped);
    tcase_add_test(proto, text_message_drops_the_tunnel);
    tcase_add_test(proto, truncated_frame_drops_the_tunnel);
    tcase_add_test(proto, empty_message_drops_the_tunnel);
    tcase_add_test(proto, oversized_message_drops_the_tunnel);
    tcase_add_test(proto, data_after_close_is_a_protocol_error);
    tcase_add_test(proto, second_open_ok_is_a_protocol_error);
    tcase_add_test(proto, open_ok_below_early_data_is_a_protocol_error);
    tcase_add_test(proto, raw_peer_sees_the_windows_it_was_granted);
    tcase_add_test(proto, tunnel_close_ends_streams_with_cancel);
    tcase_add_test(proto, data_after_close_ends_the_stream_for_its_owner);
    tcase_add_test(proto, second_open_ok_ends_the_stream_for_its_owner);
    tcase_add_test(fc, drain_wakes_only_streams_with_window);
    suite_add_tcase(s, st);
    suite_add_tcase(s, fc);
    suite_add_tcase(s, life);
    suite_add_tcase(s, proto);
    return s;
}
