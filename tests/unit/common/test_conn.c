/*
 * Tests for common/conn*.c over real sockets on one loop: loopback TCP pairs
 * (plain and TLS, the client made with conn_connect and the server with
 * conn_adopt from a listener) and socketpairs driven from a raw descriptor.
 *
 * Every received byte is checked against a position-keyed pattern, so loss,
 * duplication and reordering all show up, including across the partial takes
 * and pauses that exercise the held-chunk path.
 */
#include <arpa/inet.h>
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/conn.h"
#include "common/netaddr.h"
#include "tests/support/unit_net.h"

#define KB 1024u
#define MB (1024u * 1024u)

enum rmode {
    R_ALL,          /* take everything */
    R_ONE,          /* take one byte, resume from a deferred call */
    R_RANDOM,       /* random takes, pauses and resumes */
    R_HOLD,         /* take hold_first bytes in all, then take nothing */
    R_HALF_IN_CB,   /* take half and ask for the rest inside the callback */
};

struct ep {
    struct loop *l;
    struct conn *c;
    enum rmode mode;
    unsigned seed;

    uint64_t rx_total;          /* bytes taken */
    uint64_t bad_at;            /* first mismatch + 1, 0 if none */
    bool text;                  /* keep received bytes as text, no pattern */
    char rx_text[256];
    size_t hold_first;
    bool paused;                /* we told conn we are not reading */
    int reads_while_paused;
    bool resume_pending;
    struct loop_timer resume_t;

    int opens, eofs, closes, drains;
    uint64_t eof_at;
    char why[300];

    uint64_t tx_total, tx_sent; /* pattern writer */
    size_t hw;
    bool shut_when_sent, close_when_sent;
    void (*on_open_hook)(struct ep *e);
    void (*on_eof_hook)(struct ep *e);
};

static struct loop *L;

/* ---- receiving ---- */

static void take(struct ep *e, const uint8_t *p, size_t n)
{
    if (e->text) {
        size_t room = sizeof(e->rx_text) - 1 - strlen(e->rx_text);
        strncat(e->rx_text, (const char *)p, n < room ? n : room);
        e->rx_total += n;
        return;
    }
    for (size_t i = 0; i < n; i++)
        if (!e->bad_at && p[i] != unit_stream_byte(e->rx_total + i))
            e->bad_at = e->rx_total + i + 1;
    e->rx_total += n;
}

static void resume_now(struct ep *e)
{
    e->resume_pending = false;
    e->paused = false;
    if (e->c)
        conn_resume_read(e->c);
}

static void resume_deferred(void *arg)
{
    resume_now(arg);
}

static void resume_timer(struct loop_timer *t)
{
    resume_now((struct ep *)((char *)t - offsetof(struct ep, resume_t)));
}

static void resume_later(struct ep *e, bool by_timer)
{
    e->paused = true;
    if (e->resume_pending)
        return;
    e->resume_pending = true;
    if (by_timer)
        loop_timer_start(e->l, &e->resume_t, 1 + rand_r(&e->seed) % 3, resume_timer);
    else
        ck_assert_int_eq(loop_defer(e->l, resume_deferred, e), 0);
}

static size_t read_random(struct ep *e, struct conn *c, uint8_t *p, size_t len)
{
    int r = rand_r(&e->seed) % 12;
    if (r < 6) {
        take(e, p, len);
        return len;
    }
    size_t k = (size_t)rand_r(&e->seed) % len;     /* 0..len-1 */
    take(e, p, k);
    switch (r) {
    case 6:
    case 7:
        resume_later(e, false);
        break;
    case 8:
        resume_later(e, true);
        break;
    case 9:
        conn_resume_read(c);       /* finished inside: offer the rest again */
        break;
    default:
        /* Take it all but stop reading for a while. */
        take(e, p + k, len - k);
        conn_pause_read(c);
        resume_later(e, true);
        return len;
    }
    return k;
}

static size_t on_read(struct conn *c, uint8_t *p, size_t len)
{
    struct ep *e = conn_ud(c);
    ck_assert_uint_gt(len, 0);
    if (e->paused)
        e->reads_while_paused++;
    switch (e->mode) {
    case R_ALL:
        take(e, p, len);
        return len;
    case R_ONE:
        take(e, p, 1);
        if (len > 1) {
            resume_later(e, false);
            return 1;
        }
        return 1;
    case R_RANDOM:
        return read_random(e, c, p, len);
    case R_HOLD: {
        size_t k = e->hold_first > e->rx_total ? e->hold_first - e->rx_total : 0;
        if (k > len)
            k = len;
        take(e, p, k);
        if (k < len)
            e->paused = true;
        return k;
    }
    case R_HALF_IN_CB: {
        size_t k = (len + 1) / 2;
        take(e, p, k);
        if (k < len)
            conn_resume_read(c);
        return k;
    }
    }
    return len;
}

/* ---- sending ---- */

static void pump(struct ep *e)
{
    static uint8_t buf[64 * KB];
    while (e->c && e->tx_sent < e->tx_total && conn_out_pending(e->c) < e->hw) {
        size_t n = sizeof(buf);
        if (n > e->tx_total - e->tx_sent)
            n = (size_t)(e->tx_total - e->tx_sent);
        n = 1 + (size_t)rand_r(&e->seed) % n;      /* uneven pieces */
        for (size_t i = 0; i < n; i++)
            buf[i] = unit_stream_byte(e->tx_sent + i);
        ck_assert_int_eq(conn_write(e->c, buf, n), 0);
        e->tx_sent += n;
    }
    if (e->c && e->tx_total && e->tx_sent == e->tx_total) {
        if (e->shut_when_sent) {
            e->shut_when_sent = false;
            bool tls = conn_is_tls(e->c);
            conn_shutdown_write(e->c);
            if (tls)
                e->c = NULL;     /* TLS: this closes the conn after the flush */
        } else if (e->close_when_sent) {
            e->close_when_sent = false;
            conn_close_after_flush(e->c, 10000);
            e->c = NULL;
        }
    }
}

/* ---- callbacks ---- */

static void on_open(struct conn *c)
{
    struct ep *e = conn_ud(c);
    e->opens++;
    if (e->hw)
        conn_set_high_water(c, e->hw);
    if (e->on_open_hook)
        e->on_open_hook(e);
    pump(e);
}

static void on_eof(struct conn *c)
{
    struct ep *e = conn_ud(c);
    e->eofs++;
    e->eof_at = e->rx_total;
    if (e->on_eof_hook)
        e->on_eof_hook(e);
}

static void on_drain(struct conn *c)
{
    struct ep *e = conn_ud(c);
    e->drains++;
    /* Drained means at most half the mark is queued. */
    ck_assert_uint_le(conn_out_pending(c), e->hw / 2);
    pump(e);
}

static void on_close(struct conn *c, const char *why)
{
    struct ep *e = conn_ud(c);
    e->closes++;
    snprintf(e->why, sizeof(e->why), "%s", why ? why : "(null)");
    e->c = NULL;
}

static const struct conn_ops ops = {
    .on_open = on_open, .on_read = on_read, .on_eof = on_eof,
    .on_drain = on_drain, .on_close = on_close,
};

static const struct conn_ops ops_no_eof = {
    .on_open = on_open, .on_read = on_read, .on_close = on_close,
};

/* ---- a connected pair on one loop ---- */

struct pair {
    struct listener *ls;
    struct netaddr addr;
    struct unit_pki pki;
    bool tls;
    SSL_CTX *client_ctx;        /* default: pinned to pki */
    const struct conn_ops *server_ops;
    struct ep a;                /* client, conn_connect */
    struct ep b;                /* server, conn_adopt */
    int accepted;
    size_t base_live;           /* connections other tests left (CK_FORK=no) */
};

static struct pair P;

static void on_accept(struct listener *ls, int fd, void *ud)
{
    struct pair *p = ud;
    (void)ls;
    p->accepted++;
    p->b.c = conn_adopt(L, fd, p->tls ? p->pki.server : NULL, p->server_ops, &p->b);
    ck_assert_ptr_nonnull(p->b.c);
}

static void ep_init(struct ep *e, unsigned seed)
{
    memset(e, 0, sizeof(*e));
    e->l = L;
    e->seed = seed;
    e->hw = 256 * KB;
}

static void pair_setup(bool tls)
{
    L = loop_new();
    ck_assert_ptr_nonnull(L);
    memset(&P, 0, sizeof(P));
    P.base_live = conn_live_count();
    P.tls = tls;
    P.server_ops = &ops;
    ep_init(&P.a, 1);
    ep_init(&P.b, 2);
    if (tls)
        unit_pki_init(&P.pki);
    P.client_ctx = P.pki.client;
    P.ls = unit_listen(L, &P.addr, on_accept, &P);
}

static void pair_connect(void)
{
    P.a.c = conn_connect(L, (const struct sockaddr *)&P.addr.ss, P.addr.len,
                         P.tls ? P.client_ctx : NULL, P.tls ? "127.0.0.1" : NULL, true,
                         &ops, &P.a);
    ck_assert_ptr_nonnull(P.a.c);
}

static bool both_open(void *ud)
{
    (void)ud;
    return (P.a.opens && P.b.opens) || P.a.closes || P.b.closes;
}

static void pair_open(bool tls)
{
    pair_setup(tls);
    pair_connect();
    ck_assert(unit_run_until(L, both_open, NULL, 10000));
    ck_assert_msg(P.a.opens == 1 && P.b.opens == 1, "open failed: a=%s b=%s", P.a.why,
                  P.b.why);
    ck_assert_int_eq(conn_is_tls(P.a.c), tls);
    ck_assert_int_eq(conn_is_tls(P.b.c), tls);
}

static bool live_count_is(void *ud);

static void pair_teardown(void)
{
    if (P.a.c)
        conn_close(P.a.c);
    if (P.b.c)
        conn_close(P.b.c);
    P.a.c = P.b.c = NULL;
    /* A side closed after flush lingers until its peer's close arrives. */
    size_t base = P.base_live;
    unit_run_until(L, live_count_is, &base, 3000);
    listener_free(P.ls);
    loop_timer_stop(L, &P.a.resume_t);
    loop_timer_stop(L, &P.b.resume_t);
    loop_free(L);
    L = NULL;
    unit_pki_free(&P.pki);
    ck_assert_uint_eq(conn_live_count(), P.base_live);
}

/* ---- conditions ---- */

static bool b_got_all(void *ud)
{
    (void)ud;
    return P.b.rx_total >= P.a.tx_total || P.b.closes || P.b.bad_at;
}

static bool b_got_eof(void *ud)
{
    (void)ud;
    return P.b.eofs || P.b.closes;
}

/* ud: how many of this test's connections should be left. */
static bool live_count_is(void *ud)
{
    return conn_live_count() == P.base_live + *(size_t *)ud;
}

/* ---- ordering across partial takes ---- */

static void one_byte_at_a_time(bool tls)
{
    pair_open(tls);
    P.b.mode = R_ONE;
    P.a.tx_total = 3000;
    pump(&P.a);
    ck_assert(unit_run_until(L, b_got_all, NULL, 20000));
    ck_assert_uint_eq(P.b.rx_total, 3000);
    ck_assert_uint_eq(P.b.bad_at, 0);
    ck_assert_int_eq(P.b.reads_while_paused, 0);
    ck_assert_int_eq(P.b.closes, 0);
    pair_teardown();
}

START_TEST(plain_one_byte_per_read)
{
    one_byte_at_a_time(false);
}
END_TEST

START_TEST(tls_one_byte_per_read)
{
    one_byte_at_a_time(true);
}
END_TEST

START_TEST(resume_inside_the_read_callback)
{
    pair_open(false);
    P.b.mode = R_HALF_IN_CB;
    P.a.tx_total = 200 * KB;
    pump(&P.a);
    ck_assert(unit_run_until(L, b_got_all, NULL, 20000));
    ck_assert_uint_eq(P.b.rx_total, 200 * KB);
    ck_assert_uint_eq(P.b.bad_at, 0);
    pair_teardown();
}
END_TEST

/* ---- bulk with a moody receiver ---- */

static void bulk(bool tls, uint64_t total)
{
    pair_open(tls);
    P.b.mode = R_RANDOM;
    P.a.tx_total = total;
    P.a.shut_when_sent = true;
    pump(&P.a);
    ck_assert(unit_run_until(L, b_got_eof, NULL, 60000));
    ck_assert_msg(P.b.eofs == 1, "receiver closed: %s", P.b.why);
    ck_assert_uint_eq(P.b.bad_at, 0);
    ck_assert_uint_eq(P.b.rx_total, total);
    ck_assert_uint_eq(P.b.eof_at, total);      /* EOF only after every byte */
    ck_assert_int_eq(P.b.reads_while_paused, 0);
    ck_assert_int_gt(P.a.drains, 0);
    pair_teardown();
}

START_TEST(plain_10mb_with_random_pauses)
{
    bulk(false, 10 * MB);
}
END_TEST

START_TEST(tls_10mb_with_random_pauses)
{
    bulk(true, 10 * MB);
}
END_TEST

/* ---- half-close ---- */

static void reply_on_eof(struct ep *e)
{
    char msg[300];
    snprintf(msg, sizeof(msg), "got %s", e->rx_text);
    ck_assert_int_eq(conn_write(e->c, msg, strlen(msg)), 0);
    conn_shutdown_write(e->c);
    conn_shutdown_write(e->c);                  /* twice: a no-op */
    ck_assert_int_eq(conn_write(e->c, "x", 1), -1);
}

static bool a_got_eof(void *ud)
{
    (void)ud;
    return P.a.eofs || P.a.closes;
}

START_TEST(half_close_then_answer)
{
    pair_open(false);
    P.a.text = P.b.text = true;
    P.b.on_eof_hook = reply_on_eof;
    ck_assert_int_eq(conn_write(P.a.c, "question", 8), 0);
    conn_shutdown_write(P.a.c);
    ck_assert_int_eq(conn_write(P.a.c, "more", 4), -1);
    ck_assert_ptr_null(conn_write_reserve(P.a.c, 4));
    ck_assert(unit_run_until(L, a_got_eof, NULL, 10000));
    ck_assert_int_eq(P.b.eofs, 1);
    ck_assert_str_eq(P.b.rx_text, "question");
    ck_assert_msg(P.a.eofs == 1, "a closed: %s", P.a.why);
    ck_assert_str_eq(P.a.rx_text, "got question");
    pair_teardown();
}
END_TEST

START_TEST(eof_without_handler_closes)
{
    pair_setup(false);
    P.server_ops = &ops_no_eof;
    pair_connect();
    ck_assert(unit_run_until(L, both_open, NULL, 10000));
    P.b.text = true;
    ck_assert_int_eq(conn_write(P.a.c, "bye", 3), 0);
    conn_shutdown_write(P.a.c);
    ck_assert(unit_run_until(L, b_got_eof, NULL, 10000));
    ck_assert_int_eq(P.b.closes, 1);
    ck_assert_str_eq(P.b.rx_text, "bye");
    ck_assert_ptr_nonnull(strstr(P.b.why, "closed"));
    pair_teardown();
}
END_TEST

/* ---- close after flush ---- */

static void close_after_flush(bool tls)
{
    pair_open(tls);
    size_t want = 1;
    /* Let the client read what the server sent after the handshake (TLS
     * session tickets): closing with unread input resets the connection,
     * which is a separate bug (close_after_flush_with_unread_input). */
    unit_run_for(L, 50);
    /* The receiver is not reading yet, so most of this stays queued. */
    P.b.mode = R_HOLD;
    P.b.hold_first = 0;
    P.a.tx_total = 6 * MB;
    P.a.hw = 16 * MB;
    pump(&P.a);
    ck_assert_uint_gt(conn_out_pending(P.a.c), 0);
    conn_close_after_flush(P.a.c, 20000);
    P.a.c = NULL;
    unit_run_for(L, 20);
    P.b.mode = R_ALL;
    resume_now(&P.b);
    ck_assert(unit_run_until(L, b_got_eof, NULL, 30000));
    ck_assert_uint_eq(P.b.rx_total, 6 * MB);
    ck_assert_uint_eq(P.b.bad_at, 0);
    ck_assert_int_eq(P.a.closes, 0);           /* no callbacks after the call */
    (void)want;     /* a lingers until b closes (pair_teardown waits for it) */
    pair_teardown();
}

START_TEST(plain_close_after_flush_delivers_everything)
{
    close_after_flush(false);
}
END_TEST

START_TEST(tls_close_after_flush_delivers_everything)
{
    close_after_flush(true);
}
END_TEST

/*
 * MODULE BUGS: failing tests left out so the suite stays green. To run one,
 * turn this block on and add the test to a TCase below.
 *
 * 1. tls_close_after_flush_with_only_records_queued: conn_close_after_flush()
 *    closes at once when out_pending is 0, but on TLS the plaintext queue
 *    empties as soon as it is encrypted (up to CONN_ENC_AHEAD = 256 KiB
 *    ahead) while the records still wait in enc_* for a full socket. Those
 *    records are dropped, and no close_notify is sent: the peer got 16 KiB
 *    of 200 KiB and "unexpected eof while reading". The early exit in
 *    conn_close_after_flush() should check enc_pending too, as flush_done()
 *    does.
 *
 * 2. close_after_flush_with_unread_input: close_now() calls close() on a
 *    socket whose receive queue still holds bytes the owner never read
 *    (reading is paused by close_after_flush itself, and on TLS the server's
 *    session tickets are such bytes when the client closes soon after the
 *    handshake). Linux then sends RST instead of FIN and discards the unsent
 *    part of the send buffer: the peer got ~2.3 MiB of 4 MiB and "Connection
 *    reset by peer". Everything "flushed" was only handed to the kernel.
 *    A lingering close would fix it: shutdown(SHUT_WR) once flushed, then
 *    read and discard until EOF or the linger deadline, then close.
 *
 * 3. close_after_flush_while_connecting: conn_close_after_flush() on a conn
 *    still connecting (or in its TLS handshake) closes at once and drops
 *    what conn_write() queued, against "Flush what is queued (for at most
 *    linger_ms), then close"; opened() would have flushed it.
 */
/*
 * TLS keeps two queues: plaintext and the records made from it. Once all
 * the plaintext is encrypted (out_pending 0) records can still be waiting
 * for a full socket; close_after_flush must wait for those too.
 */
START_TEST(tls_close_after_flush_with_only_records_queued)
{
    pair_open(true);
    size_t want = 1;
    unit_run_for(L, 50);        /* read the session tickets (see bug 2) */
    int small = 16 * KB;
    setsockopt(conn_fd(P.a.c), SOL_SOCKET, SO_SNDBUF, &small, sizeof(small));
    setsockopt(conn_fd(P.b.c), SOL_SOCKET, SO_RCVBUF, &small, sizeof(small));
    P.b.mode = R_HOLD;
    P.b.hold_first = 0;
    P.a.tx_total = 200 * KB;    /* less than conn encrypts ahead */
    P.a.hw = 1 * MB;
    pump(&P.a);
    unit_run_for(L, 30);
    /* The precondition: nothing left to encrypt, records still queued. */
    ck_assert_uint_eq(conn_out_pending(P.a.c), 0);
    ck_assert_uint_gt(conn_buffered(P.a.c), 0);
    conn_close_after_flush(P.a.c, 20000);
    P.a.c = NULL;
    P.b.mode = R_ALL;
    resume_now(&P.b);
    ck_assert(unit_run_until(L, b_got_eof, NULL, 10000));
    ck_assert_uint_eq(P.b.bad_at, 0);
    ck_assert_msg(P.b.rx_total == 200 * KB, "received %llu of %u bytes (%s)",
                  (unsigned long long)P.b.rx_total, 200 * KB, P.b.closes ? P.b.why : "eof");
    (void)want;     /* a lingers until b closes too (see pair_teardown) */
    pair_teardown();
}
END_TEST

/* The peer said something we never read, then we send a lot and close
 * after the flush: close() with unread input makes the kernel answer with
 * RST and drop what is still in our send buffer. */
START_TEST(close_after_flush_with_unread_input)
{
    pair_open(false);
    conn_pause_read(P.a.c);                 /* a never reads what b says */
    ck_assert_int_eq(conn_write(P.b.c, "unread", 6), 0);
    unit_run_for(L, 20);
    P.a.tx_total = 4 * MB;
    P.a.hw = 16 * MB;
    pump(&P.a);
    conn_close_after_flush(P.a.c, 10000);
    P.a.c = NULL;
    ck_assert(unit_run_until(L, b_got_eof, NULL, 10000));
    ck_assert_msg(P.b.rx_total == 4 * MB, "received %llu of %u bytes (%s)",
                  (unsigned long long)P.b.rx_total, 4 * MB, P.b.closes ? P.b.why : "eof");
    ck_assert_uint_eq(P.b.bad_at, 0);
    pair_teardown();
}
END_TEST

/* Written and closed before the connection is even up: the contract is
 * still "flush what is queued, then close". */
START_TEST(close_after_flush_while_connecting)
{
    pair_setup(false);
    P.b.text = true;
    pair_connect();
    ck_assert_int_eq(conn_write(P.a.c, "early bird", 10), 0);
    conn_close_after_flush(P.a.c, 5000);
    P.a.c = NULL;
    ck_assert(unit_run_until(L, b_got_eof, NULL, 5000));
    ck_assert_str_eq(P.b.rx_text, "early bird");
    pair_teardown();
}
END_TEST


/* Nothing queued: FIN goes at once, then a lingers (reading and dropping
 * input, so closing never resets the peer) until the peer closes too. */
START_TEST(close_after_flush_with_nothing_queued_closes_now)
{
    pair_open(false);
    size_t want = P.base_live;
    conn_close_after_flush(P.a.c, 1000);
    P.a.c = NULL;
    ck_assert(unit_run_until(L, b_got_eof, NULL, 5000));
    ck_assert_uint_eq(conn_live_count(), P.base_live + 2);
    conn_close(P.b.c);
    P.b.c = NULL;
    ck_assert(unit_run_until(L, live_count_is, &want, 5000));
    ck_assert_int_eq(P.a.closes, 0);
    pair_teardown();
}
END_TEST

/* A peer that never reads: the linger bound closes the conn anyway. */
START_TEST(close_after_flush_gives_up_after_linger)
{
    pair_open(false);
    size_t want = 1;
    P.b.mode = R_HOLD;
    P.a.tx_total = 12 * MB;
    P.a.hw = 16 * MB;
    pump(&P.a);
    conn_close_after_flush(P.a.c, 100);
    P.a.c = NULL;
    ck_assert(unit_run_until(L, live_count_is, &want, 5000));
    ck_assert_int_eq(P.a.closes, 0);
    pair_teardown();
}
END_TEST

/* A peer that takes nothing for the stall time is dropped (on_close with a
 * reason); one that reads slowly but steadily is not. */
static bool a_closed(void *ud)
{
    (void)ud;
    return P.a.closes > 0;
}

START_TEST(write_stall_drops_a_peer_that_never_reads)
{
    pair_open(false);
    P.b.mode = R_HOLD;
    P.a.tx_total = 12 * MB;
    P.a.hw = 16 * MB;
    conn_set_write_stall(P.a.c, 300);
    pump(&P.a);
    ck_assert(unit_run_until(L, a_closed, NULL, 10000));
    ck_assert_msg(strstr(P.a.why, "stopped reading"), "why: %s", P.a.why);
    P.a.c = NULL;
    pair_teardown();
}
END_TEST

START_TEST(write_stall_spares_a_slow_reader)
{
    pair_open(false);
    P.b.mode = R_RANDOM;
    P.a.tx_total = 10 * MB;
    P.a.hw = 1 * MB;
    conn_set_write_stall(P.a.c, 2000);
    pump(&P.a);
    ck_assert(unit_run_until(L, b_got_all, NULL, 60000));
    ck_assert_int_eq(P.a.closes, 0);
    ck_assert_uint_eq(P.b.bad_at, 0);
    pair_teardown();
}
END_TEST

/* ---- output cap ---- */

START_TEST(out_cap_refuses_and_keeps_the_queue)
{
    pair_open(false);
    struct conn *c = P.a.c;
    conn_set_out_cap(c, 1000);
    uint8_t buf[1000];
    for (size_t i = 0; i < sizeof(buf); i++)
        buf[i] = unit_stream_byte(i);
    ck_assert_int_eq(conn_write(c, buf, 600), 0);
    ck_assert_int_eq(conn_write(c, buf + 600, 401), -1);        /* one over */
    ck_assert_uint_eq(conn_out_pending(c), 600);
    ck_assert_int_eq(conn_write2(c, buf + 600, 200, buf + 800, 201), -1);
    ck_assert_uint_eq(conn_out_pending(c), 600);
    ck_assert_ptr_null(conn_write_reserve(c, 401));
    ck_assert_uint_eq(conn_out_pending(c), 600);
    ck_assert_int_eq(conn_write2(c, buf + 600, 100, buf + 700, 100), 0);
    uint8_t *r = conn_write_reserve(c, 200);                    /* exactly full */
    ck_assert_ptr_nonnull(r);
    memcpy(r, buf + 800, 200);
    ck_assert_uint_eq(conn_out_pending(c), 1000);
    ck_assert_int_eq(conn_write(c, buf, 1), -1);
    ck_assert_int_eq(conn_write(c, buf, 0), 0);                 /* nothing is fine */
    P.a.tx_total = 1000;                                        /* what b expects */
    ck_assert(unit_run_until(L, b_got_all, NULL, 5000));
    ck_assert_uint_eq(P.b.rx_total, 1000);
    ck_assert_uint_eq(P.b.bad_at, 0);
    /* Once flushed, the room is back. */
    ck_assert_uint_eq(conn_out_pending(c), 0);
    ck_assert_int_eq(conn_write(c, buf, 1000), 0);
    pair_teardown();
}
END_TEST

/* ---- the peer goes away while we are not reading ---- */

static bool b_done(void *ud)
{
    uint64_t want = *(uint64_t *)ud;
    return (P.b.rx_total >= want && (P.b.eofs || P.b.closes)) || P.b.bad_at ||
           (P.b.closes && P.b.rx_total < want);
}

static uint64_t thread_cpu_ms(void)
{
    struct rusage ru;
    ck_assert_int_eq(getrusage(RUSAGE_THREAD, &ru), 0);
    return (uint64_t)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000u +
           (uint64_t)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1000u;
}

static void fill_fd(int fd, uint64_t total)
{
    static uint8_t buf[256 * KB];
    ck_assert_uint_le(total, sizeof(buf));
    for (uint64_t i = 0; i < total; i++)
        buf[i] = unit_stream_byte(i);
    ck_assert_int_eq(send(fd, buf, total, MSG_DONTWAIT | MSG_NOSIGNAL), (ssize_t)total);
}

/* Adopts sv[1] as P.b; the test drives sv[0] by hand. */
static void adopt_socketpair(int sv[2])
{
    L = loop_new();
    memset(&P, 0, sizeof(P));
    P.base_live = conn_live_count();
    ep_init(&P.b, 3);
    ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    int sz = 512 * KB;
    setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &sz, sizeof(sz));
    P.b.c = conn_adopt(L, sv[1], NULL, &ops, &P.b);
    ck_assert_ptr_nonnull(P.b.c);
}

static void paused_peer_close(enum rmode mode, size_t hold_first)
{
    int sv[2];
    adopt_socketpair(sv);
    P.b.mode = mode;
    P.b.hold_first = hold_first;
    if (mode == R_ALL) {
        conn_pause_read(P.b.c);
        P.b.paused = true;
    }
    uint64_t total = 150 * KB;
    fill_fd(sv[0], total);
    close(sv[0]);               /* a socketpair reports this as a hang-up */
    /* Waiting must be idle: a hang-up left registered would spin the loop. */
    uint64_t cpu0 = thread_cpu_ms();
    unit_run_for(L, 200);
    ck_assert_uint_lt(thread_cpu_ms() - cpu0, 100);
    ck_assert_msg(P.b.closes == 0, "closed while paused: %s (had %llu bytes)", P.b.why,
                  (unsigned long long)P.b.rx_total);
    ck_assert_int_eq(P.b.eofs, 0);
    ck_assert_uint_eq(P.b.rx_total, hold_first);
    ck_assert_int_eq(P.b.reads_while_paused, 0);
    P.b.mode = R_ALL;
    resume_now(&P.b);
    ck_assert(unit_run_until(L, b_done, &total, 5000));
    ck_assert_uint_eq(P.b.bad_at, 0);
    ck_assert_uint_eq(P.b.rx_total, total);
    ck_assert_msg(P.b.eofs == 1 || P.b.closes == 1, "no end reported");
    if (P.b.eofs)
        ck_assert_uint_eq(P.b.eof_at, total);
    if (P.b.c)
        conn_close(P.b.c);
    loop_free(L);
    ck_assert_uint_eq(conn_live_count(), P.base_live);
}

START_TEST(peer_close_while_holding_keeps_the_bytes)
{
    paused_peer_close(R_HOLD, 10);
}
END_TEST

START_TEST(peer_close_while_holding_nothing_taken)
{
    paused_peer_close(R_HOLD, 0);
}
END_TEST

START_TEST(peer_close_while_paused_keeps_the_bytes)
{
    paused_peer_close(R_ALL, 0);
}
END_TEST

/* TCP reports a hang-up once both directions are shut: our FIN went out,
 * then the peer sends its data and closes. */
START_TEST(tcp_hangup_after_our_fin_while_paused)
{
    L = loop_new();
    memset(&P, 0, sizeof(P));
    P.base_live = conn_live_count();
    ep_init(&P.b, 4);
    int fds[2];
    unit_tcp_pair(fds);
    int sz = 1 * MB;
    setsockopt(fds[0], SOL_SOCKET, SO_SNDBUF, &sz, sizeof(sz));
    P.b.c = conn_adopt(L, fds[1], NULL, &ops, &P.b);
    P.b.mode = R_HOLD;
    P.b.hold_first = 100;
    conn_shutdown_write(P.b.c);
    unit_run_for(L, 10);
    char x;
    ck_assert_int_eq(read(fds[0], &x, 1), 0);  /* the peer saw our FIN */
    uint64_t total = 200 * KB;
    fill_fd(fds[0], total);
    close(fds[0]);
    uint64_t cpu0 = thread_cpu_ms();
    unit_run_for(L, 200);
    ck_assert_uint_lt(thread_cpu_ms() - cpu0, 100);
    ck_assert_msg(P.b.closes == 0, "closed while paused: %s", P.b.why);
    ck_assert_uint_eq(P.b.rx_total, 100);
    P.b.mode = R_ALL;
    resume_now(&P.b);
    ck_assert(unit_run_until(L, b_done, &total, 5000));
    ck_assert_uint_eq(P.b.bad_at, 0);
    ck_assert_uint_eq(P.b.rx_total, total);
    if (P.b.c)
        conn_close(P.b.c);
    loop_free(L);
    ck_assert_uint_eq(conn_live_count(), P.base_live);
}
END_TEST

/* ---- TLS specifics ---- */

static void say_hello(struct ep *e)
{
    ck_assert_int_eq(conn_write(e->c, e == &P.a ? "hello server" : "hello client", 12), 0);
}

static bool b_greeted(void *ud)
{
    (void)ud;
    return P.b.rx_total >= 12 || P.a.closes || P.b.closes;
}

static bool a_greeted(void *ud)
{
    (void)ud;
    return P.a.rx_total >= 12 || P.a.closes || P.b.closes;
}

/* The client writes from on_open and the server only listens: that first
 * record can arrive with the handshake's last flight, be pulled in by
 * read-ahead, and must still be delivered without more traffic. */
START_TEST(tls_client_writes_from_on_open)
{
    pair_setup(true);
    P.a.text = P.b.text = true;
    P.a.on_open_hook = say_hello;
    pair_connect();
    ck_assert(unit_run_until(L, b_greeted, NULL, 5000));
    ck_assert_str_eq(P.b.rx_text, "hello server");
    ck_assert_int_eq(P.a.rx_total, 0);
    pair_teardown();
}
END_TEST

START_TEST(tls_server_writes_from_on_open)
{
    pair_setup(true);
    P.a.text = P.b.text = true;
    P.b.on_open_hook = say_hello;
    pair_connect();
    ck_assert(unit_run_until(L, a_greeted, NULL, 5000));
    ck_assert_str_eq(P.a.rx_text, "hello client");
    pair_teardown();
}
END_TEST

static bool both_closed(void *ud)
{
    (void)ud;
    return P.a.closes && P.b.closes;
}

START_TEST(tls_wrong_ca_fails_with_a_reason)
{
    pair_setup(true);
    struct unit_pki other;
    unit_pki_init(&other);
    P.client_ctx = other.client;
    P.a.text = true;
    P.a.on_open_hook = say_hello;
    pair_connect();
    ck_assert(unit_run_until(L, both_closed, NULL, 10000));
    ck_assert_int_eq(P.a.opens, 0);
    ck_assert_int_eq(P.b.opens, 0);
    ck_assert_msg(strstr(P.a.why, "certificate verify failed") != NULL, "client: %s",
                  P.a.why);
    ck_assert_msg(strstr(P.b.why, "TLS") != NULL, "server: %s", P.b.why);
    pair_teardown();
    unit_pki_free(&other);
}
END_TEST

START_TEST(tls_wrong_name_fails)
{
    pair_setup(true);
    P.a.c = conn_connect(L, (const struct sockaddr *)&P.addr.ss, P.addr.len, P.pki.client,
                         "other.example", false, &ops, &P.a);
    ck_assert_ptr_nonnull(P.a.c);
    ck_assert(unit_run_until(L, a_closed, NULL, 10000));
    ck_assert_int_eq(P.a.opens, 0);
    ck_assert_msg(strstr(P.a.why, "verify") != NULL, "client: %s", P.a.why);
    pair_teardown();
}
END_TEST

static bool b_got_bytes(void *ud)
{
    (void)ud;
    return P.b.rx_total > 0 || P.b.closes || P.a.closes;
}

/* A TLS client that meets a plain server fails with a reason, not a hang. */
START_TEST(tls_client_against_plain_server)
{
    pair_setup(false);
    struct unit_pki pki;
    unit_pki_init(&pki);
    P.b.text = true;
    P.a.c = conn_connect(L, (const struct sockaddr *)&P.addr.ss, P.addr.len, pki.client,
                         "127.0.0.1", true, &ops, &P.a);
    ck_assert_ptr_nonnull(P.a.c);
    ck_assert(unit_run_until(L, b_got_bytes, NULL, 5000));
    ck_assert_ptr_nonnull(P.b.c);                   /* the ClientHello arrived */
    ck_assert_int_eq(conn_write(P.b.c, "HTTP/1.0 400 Bad Request\r\n\r\n", 28), 0);
    conn_close_after_flush(P.b.c, 1000);
    P.b.c = NULL;
    ck_assert(unit_run_until(L, a_closed, NULL, 5000));
    ck_assert_int_eq(P.a.opens, 0);
    ck_assert_msg(strncmp(P.a.why, "TLS", 3) == 0, "why: %s", P.a.why);
    pair_teardown();
    unit_pki_free(&pki);
}
END_TEST

/* ---- connection failures and lifetime ---- */

START_TEST(connect_refused_is_reported)
{
    pair_setup(false);
    listener_free(P.ls);        /* nothing listens on the port now */
    P.ls = NULL;
    pair_connect();
    ck_assert(unit_run_until(L, a_closed, NULL, 5000));
    ck_assert_int_eq(P.a.opens, 0);
    ck_assert_msg(strstr(P.a.why, "refused") != NULL, "why: %s", P.a.why);
    pair_teardown();
}
END_TEST

static size_t close_in_read(struct conn *c, uint8_t *p, size_t len)
{
    struct ep *e = conn_ud(c);
    (void)p;
    e->rx_total += len;
    conn_close(c);
    e->c = NULL;
    return 0;       /* ignored: the conn is gone */
}

static const struct conn_ops ops_close_in_read = {
    .on_open = on_open, .on_read = close_in_read, .on_eof = on_eof, .on_close = on_close,
};

START_TEST(close_inside_read_callback)
{
    pair_setup(false);
    P.server_ops = &ops_close_in_read;
    pair_connect();
    ck_assert(unit_run_until(L, both_open, NULL, 5000));
    P.a.tx_total = 1 * MB;
    pump(&P.a);
    size_t want = 1;
    ck_assert(unit_run_until(L, live_count_is, &want, 5000));
    ck_assert_int_gt(P.b.rx_total, 0);
    ck_assert_int_eq(P.b.closes, 0);           /* conn_close: no callback */
    ck_assert_int_eq(P.b.eofs, 0);
    /* The writer finds out through a reset or an EOF. */
    ck_assert(unit_run_until(L, a_got_eof, NULL, 5000));
    pair_teardown();
}
END_TEST

START_TEST(close_all_and_accessors)
{
    pair_open(false);
    ck_assert_uint_eq(conn_live_count(), P.base_live + 2);
    ck_assert_ptr_eq(conn_loop(P.a.c), L);
    ck_assert_ptr_eq(conn_ud(P.a.c), &P.a);
    ck_assert_int_ge(conn_fd(P.a.c), 0);
    char want[32];
    snprintf(want, sizeof(want), "127.0.0.1:%d", listener_port(P.ls));
    ck_assert_str_eq(conn_peer(P.a.c), want);
    ck_assert_ptr_eq(strstr(conn_peer(P.b.c), "127.0.0.1:"), conn_peer(P.b.c));
    conn_set_ud(P.a.c, &P.b);
    ck_assert_ptr_eq(conn_ud(P.a.c), &P.b);
    conn_set_ud(P.a.c, &P.a);
    ck_assert_int_eq(conn_write(P.a.c, "abc", 3), 0);
    ck_assert_uint_eq(conn_buffered(P.a.c), 3);
    conn_close_all();
    ck_assert_uint_eq(conn_live_count(), 0);
    ck_assert_int_eq(P.a.closes + P.b.closes, 0);
    P.a.c = P.b.c = NULL;
    P.base_live = 0;            /* close_all took any others too */
    pair_teardown();
}
END_TEST

Suite *suite_common_conn(void)
{
    Suite *s = suite_create("common_conn");
    TCase *rd = tcase_create("reading");
    TCase *wr = tcase_create("writing");
    TCase *tls = tcase_create("tls");
    TCase *life = tcase_create("lifetime");
    tcase_set_timeout(rd, 120);
    tcase_set_timeout(wr, 120);
    tcase_set_timeout(tls, 120);
    tcase_set_timeout(life, 60);
    tcase_add_test(rd, plain_one_byte_per_read);
    tcase_add_test(rd, tls_one_byte_per_read);
    tcase_add_test(rd, resume_inside_the_read_callback);
    tcase_add_test(rd, plain_10mb_with_random_pauses);
    tcase_add_test(rd, tls_10mb_with_random_pauses);
    tcase_add_test(rd, peer_close_while_holding_keeps_the_bytes);
    tcase_add_test(rd, peer_close_while_holding_nothing_taken);
    tcase_add_test(rd, peer_close_while_paused_keeps_the_bytes);
    tcase_add_test(rd, tcp_hangup_after_our_fin_while_paused);
    tcase_add_test(wr, half_close_then_answer);
    tcase_add_test(wr, eof_without_handler_closes);
    tcase_add_test(wr, plain_close_after_flush_delivers_everything);
    tcase_add_test(wr, tls_close_after_flush_delivers_everything);
    tcase_add_test(wr, close_after_flush_with_nothing_queued_closes_now);
    tcase_add_test(wr, close_after_flush_gives_up_after_linger);
    tcase_add_test(wr, write_stall_drops_a_peer_that_never_reads);
    tcase_add_test(wr, write_stall_spares_a_slow_reader);
    tcase_add_test(wr, out_cap_refuses_and_keeps_the_queue);
    tcase_add_test(tls, tls_client_writes_from_on_open);
    tcase_add_test(tls, tls_server_writes_from_on_open);
    tcase_add_test(tls, tls_wrong_ca_fails_with_a_reason);
    tcase_add_test(tls, tls_wrong_name_fails);
    tcase_add_test(tls, tls_client_against_plain_server);
    tcase_add_test(life, connect_refused_is_reported);
    tcase_add_test(life, close_inside_read_callback);
    tcase_add_test(life, close_all_and_accessors);
    tcase_add_test(life, tls_close_after_flush_with_only_records_queued);
    tcase_add_test(life, close_after_flush_with_unread_input);
    tcase_add_test(life, close_after_flush_while_connecting);
    suite_add_tcase(s, rd);
    suite_add_tcase(s, wr);
    suite_add_tcase(s, tls);
    suite_add_tcase(s, life);
    return s;
}
