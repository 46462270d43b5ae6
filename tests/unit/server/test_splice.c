/*
 * Tests for server/splice.c: two real tunnel pairs on loopback, joined in
 * the middle the way a replica joins a peer stream to an agent stream.
 *
 *   front (client) == pair 0 == mid_in (server)  -splice-  mid_out (server) == pair 1 == back (client)
 *
 * The test opens streams at front; back accepts them and echoes, stalls,
 * or resets, as each test asks.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/conn.h"
#include "common/netaddr.h"
#include "common/tunnel.h"
#include "common/wsconn.h"
#include "proto/frame.h"
#include "server/splice.h"
#include "tests/support/unit_net.h"
#include "tests/support/unit_ws.h"

#define WINDOW (64u * 1024)

enum back_mode { ECHO, STALL, RESET };

struct pair {
    struct listener *lsn;
    struct netaddr addr;
    struct tunnel *srv, *cli;
    struct unit_ws_accept up;
};

/* One stream end driven by the test (at front or back). */
struct end {
    struct tun_stream *s;
    uint8_t *got;
    size_t ngot, cap, sent, held;
    bool eof, ended, closed;
    uint16_t code;
    char reason[64];
};

static struct loop *L;
static struct pair P[2];
static struct tunnel_cfg cfg = { .window = WINDOW };
static enum back_mode mode;
static struct end front, back;
static const uint8_t *payload;
static size_t payload_len;

/* ---- stream ends ---- */

static void end_data(struct tun_stream *s, const uint8_t *p, size_t n)
{
    struct end *e = tun_stream_ud(s);
    if (e->ngot + n > e->cap) {
        e->cap = (e->ngot + n) * 2;
        e->got = realloc(e->got, e->cap);
        ck_assert_ptr_nonnull(e->got);
    }
    memcpy(e->got + e->ngot, p, n);
    e->ngot += n;
    if (e == &back && mode == STALL) {
        e->held += n;       /* never consumed: the window closes */
        return;
    }
    if (e == &back && mode == ECHO) {
        ck_assert_int_eq(tun_stream_send(s, p, n), (ssize_t)n);  /* within front's window */
    }
    tun_stream_consumed(s, n);
}

static void pump_front(void)
{
    while (front.s && front.sent < payload_len) {
        size_t want = payload_len - front.sent;
        ssize_t n = tun_stream_send(front.s, payload + front.sent, want > 16384 ? 16384 : want);
        ck_assert_int_ge(n, 0);
        if (n == 0)
            return;
        front.sent += (size_t)n;
    }
    if (front.s && !front.closed && front.sent == payload_len) {
        front.closed = true;
        if (tun_stream_close(front.s) == 1) {
            front.s = NULL;
            front.ended = true;     /* both halves closed: no on_end follows */
        }
    }
}

static void end_eof(struct tun_stream *s)
{
    struct end *e = tun_stream_ud(s);
    e->eof = true;
    if (e == &back && !e->closed) {
        e->closed = true;
        if (tun_stream_close(s) == 1) {
            e->s = NULL;
            e->ended = true;        /* both halves closed: no on_end follows */
        }
    }
}

static void end_writable(struct tun_stream *s)
{
    if (tun_stream_ud(s) == &front)
        pump_front();
}

static void end_end(struct tun_stream *s, uint16_t code, const char *reason)
{
    struct end *e = tun_stream_ud(s);
    e->ended = true;
    e->code = code;
    snprintf(e->reason, sizeof(e->reason), "%s", reason ? reason : "");
    e->s = NULL;
}

static const struct tun_stream_ops end_ops = {
    .on_data = end_data, .on_eof = end_eof, .on_writable = end_writable, .on_end = end_end,
};

/* ---- the tunnels ---- */

static void refuse(struct tunnel *t, struct tun_stream *s, const char *service,
                   const uint8_t *meta, size_t len)
{
    (void)t;
    (void)service;
    (void)meta;
    (void)len;
    tun_stream_reset(s, TUN_RESET_REFUSED, "not here");
}

/* mid_in: what a replica does with a peer stream. */
static void mid_open(struct tunnel *t, struct tun_stream *s, const char *service,
                     const uint8_t *meta, size_t len)
{
    (void)t;
    struct tun_stream *out = tun_stream_open(P[1].srv, service, meta, len, NULL, NULL);
    ck_assert_ptr_nonnull(out);
    ck_assert_int_eq(splice_join(s, out), 0);
}

/* back: the agent. */
static void back_open(struct tunnel *t, struct tun_stream *s, const char *service,
                      const uint8_t *meta, size_t len)
{
    (void)t;
    (void)meta;
    (void)len;
    ck_assert_str_eq(service, "svc");
    if (mode == RESET) {
        tun_stream_reset(s, TUN_RESET_UNREACHABLE, "target said no");
        return;
    }
    back.s = s;
    ck_assert_int_eq(tun_stream_accept(s, &end_ops, &back), 0);
}

static void down(struct tunnel *t, const char *why)
{
    (void)t;
    ck_abort_msg("a tunnel went down: %s", why);
}

static const struct tunnel_ops mid_in_ops = { .on_open = mid_open, .on_down = down };
static const struct tunnel_ops plain_ops = { .on_open = refuse, .on_down = down };
static const struct tunnel_ops back_ops = { .on_open = back_open, .on_down = down };

static void ws_gone(struct ws *w, const char *why)
{
    (void)w;
    ck_abort_msg("websocket closed during set-up: %s", why);
}

/* The listening end of pair p: its server tunnel. */
static void srv_ws(struct unit_ws_accept *a, struct ws *w)
{
    struct pair *p = a->ud;
    p->srv = tunnel_new(L, w, true, &cfg, p == &P[0] ? &mid_in_ops : &plain_ops, p);
    ck_assert_ptr_nonnull(p->srv);
}

static void on_accept(struct listener *lsn, int fd, void *ud)
{
    (void)lsn;
    struct pair *p = ud;
    p->up.on_ws = srv_ws;
    p->up.ud = p;
    unit_ws_accept(L, fd, NULL, &p->up);
}

static void cli_open(struct ws *w)
{
    struct pair *p = ws_ud(w);
    p->cli = tunnel_new(L, w, false, &cfg, p == &P[0] ? &plain_ops : &back_ops, p);
    ck_assert_ptr_nonnull(p->cli);
}

static const struct ws_ops cli_ws_ops = { .on_open = cli_open, .on_message = unit_ws_ignore,
                                          .on_close = ws_gone };

static bool all_up(void *ud)
{
    (void)ud;
    return P[0].srv && P[0].cli && P[1].srv && P[1].cli;
}

static void setup(void)
{
    memset(P, 0, sizeof(P));
    memset(&front, 0, sizeof(front));
    memset(&back, 0, sizeof(back));
    L = loop_new();
    ck_assert_ptr_nonnull(L);
    for (int i = 0; i < 2; i++) {
        P[i].lsn = unit_listen(L, &P[i].addr, on_accept, &P[i]);
        unit_ws_dial(L, &P[i].addr, NULL, "/", &cli_ws_ops, &P[i]);
    }
    ck_assert(unit_run_until(L, all_up, NULL, 10000));
}

static void teardown(void)
{
    for (int i = 0; i < 2; i++) {
        tunnel_close(P[i].cli, 1000, "done");
        tunnel_close(P[i].srv, 1000, "done");
        listener_free(P[i].lsn);
    }
    unit_run_for(L, 20);
    conn_close_all();
    loop_free(L);
    free(front.got);
    free(back.got);
    free((void *)payload);
    payload = NULL;
}

static void make_payload(size_t n)
{
    uint8_t *p = malloc(n);
    ck_assert_ptr_nonnull(p);
    for (size_t i = 0; i < n; i++)
        p[i] = unit_stream_byte(i);
    payload = p;
    payload_len = n;
}

static void open_front(void)
{
    front.s = tun_stream_open(P[0].cli, "svc", "m", 1, &end_ops, &front);
    ck_assert_ptr_nonnull(front.s);
    pump_front();
}

static bool echoed(void *ud)
{
    (void)ud;
    return front.ended && back.ended && splice_count() == 0;
}

START_TEST(test_echo_through_the_splice)
{
    mode = ECHO;
    make_payload(3u * 1024 * 1024 + 17);
    open_front();
    ck_assert_msg(unit_run_until(L, echoed, NULL, 20000),
                  "sent %zu, back got %zu, front got %zu, splices %lu", front.sent,
                  back.ngot, front.ngot, splice_count());
    ck_assert_uint_eq(front.code, 0);
    ck_assert_uint_eq(back.ngot, payload_len);
    ck_assert_uint_eq(front.ngot, payload_len);
    ck_assert(memcmp(front.got, payload, payload_len) == 0);
}
END_TEST

static bool stalled(void *ud)
{
    size_t *last = ud;
    bool still = front.sent == *last;
    *last = front.sent;
    return still && front.sent > 0;
}

START_TEST(test_stalled_reader_holds_at_most_windows)
{
    mode = STALL;
    make_payload(8u * 1024 * 1024);
    open_front();
    size_t last = 0;
    for (int i = 0; i < 200 && !stalled(&last); i++)
        unit_run_for(L, 20);
    /* back granted one window, the splice holds at most what mid_in granted,
     * and front's own window is all it may have out. */
    ck_assert_msg(front.sent >= WINDOW && front.sent <= 3u * WINDOW, "front sent %zu",
                  front.sent);
    ck_assert_uint_le(back.held, WINDOW);
    ck_assert_uint_eq(splice_count(), 1);
    /* The reader resumes: everything arrives. */
    mode = ECHO;
    tun_stream_consumed(back.s, back.held);
    ck_assert(unit_run_until(L, echoed, NULL, 20000));
    ck_assert_uint_eq(back.ngot, payload_len);
    ck_assert(memcmp(back.got, payload, payload_len) == 0);
}
END_TEST

static bool front_ended(void *ud)
{
    (void)ud;
    return front.ended && splice_count() == 0;
}

START_TEST(test_reset_crosses_the_splice)
{
    mode = RESET;
    make_payload(100);
    open_front();
    ck_assert(unit_run_until(L, front_ended, NULL, 10000));
    ck_assert_uint_eq(front.code, TUN_RESET_UNREACHABLE);
    ck_assert_str_eq(front.reason, "target said no");
}
END_TEST

static bool back_ended(void *ud)
{
    (void)ud;
    return back.ended && splice_count() == 0;
}

static bool back_has_data(void *ud)
{
    (void)ud;
    return back.s && back.held > 0;
}

START_TEST(test_opener_reset_reaches_the_far_end)
{
    mode = STALL;
    make_payload(1024 * 1024);
    open_front();
    ck_assert(unit_run_until(L, back_has_data, NULL, 10000));
    tun_stream_reset(front.s, TUN_RESET_CANCEL, "client went away");
    front.s = NULL;
    ck_assert(unit_run_until(L, back_ended, NULL, 10000));
    ck_assert_uint_eq(back.code, TUN_RESET_CANCEL);
    ck_assert_str_eq(back.reason, "client went away");
}
END_TEST

Suite *suite_server_splice(void)
{
    Suite *s = suite_create("server_splice");
    TCase *tc = tcase_create("splice");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_echo_through_the_splice);
    tcase_add_test(tc, test_stalled_reader_holds_at_most_windows);
    tcase_add_test(tc, test_reset_crosses_the_splice);
    tcase_add_test(tc, test_opener_reset_reaches_the_far_end);
    tcase_set_timeout(tc, 60);
    suite_add_tcase(s, tc);
    return s;
}
