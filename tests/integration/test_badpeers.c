/*
 * Bad peers against a real drover-server: slowloris heads, websockets that
 * never finish their handshake, a flood of connections from one address,
 * agents that open streams without end or flood frames without reading.
 * Each must be cut off within its limit while a well-behaved client (the
 * API) and a well-behaved agent (the cluster agent) are served meanwhile.
 *
 * The attackers connect from 127.0.0.2 or 127.0.0.3, so the per-address
 * limit they hit does not apply to the well-behaved clients on 127.0.0.1.
 */
#include <arpa/inet.h>
#include <check.h>
#include <errno.h>
#include <netinet/in.h>
#include <openssl/ssl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/tls.h"
#include "proto/frame.h"
#include "proto/ws.h"
#include "tests/support/dtest.h"
#include "tests/support/rawws.h"

#define TUNNELS "drover_tunnels{kind=\"cluster\"}"

static struct dtest d;

static void setup(void)
{
    memset(&d, 0, sizeof(d));
    signal(SIGPIPE, SIG_IGN);
}

static void teardown(void)
{
    dtest_down(&d);
    proc_cleanup();
}

/* A server with tight limits (plus extra arguments), its two clusters, and
 * the cluster agent of "test" connected. */
static void up(const char *const extra[])
{
    /* Under valgrind a TLS handshake alone can take a second. */
    const char *args[32] = { "--ping-interval", "500ms", "--dead-after", "2s",
                             "--head-timeout", proc_under_valgrind() ? "4s" : "1s",
                             "--max-conns-per-ip", "40",
                             "--agent-max-streams", "8", "--agent-max-queued", "1MiB" };
    size_t n = 12;
    for (size_t i = 0; extra && extra[i] && n < 31; i++)
        args[n++] = extra[i];
    args[n] = NULL;
    dtest_spawn_server(&d, args);
    d.target_port = 9;  /* the agent needs something to allow; nothing dials it */
    dtest_admin(&d);
    dtest_create_cluster(&d, "test", d.cluster, d.token);
    dtest_create_cluster(&d, "raw", d.raw_cluster, d.raw_token);
    dtest_start_agent(&d, NULL);
    ck_assert_msg(dtest_wait_metric(&d, TUNNELS, 1, 15000), "agent did not connect (%s)",
                  d.dir);
}

/* The well-behaved client is answered and the well-behaved agent is still
 * connected. */
static void others_served(void)
{
    struct httpc_resp r;
    int st = dtest_call(&d, "GET", "/v3/clusters", d.admin_token, NULL, &r);
    httpc_free(&r);
    ck_assert_msg(st == 200, "the API answered %d meanwhile (logs %s)", st, d.dir);
    ck_assert_msg(dtest_metric(&d, TUNNELS) >= 1, "the agent lost its tunnel (logs %s)", d.dir);
}

/* A TCP connection from source address src to the server. */
static int tcp_from(const char *src)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in s = { .sin_family = AF_INET };
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)d.https_port),
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    inet_pton(AF_INET, src, &s.sin_addr);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(bind(fd, (struct sockaddr *)&s, sizeof(s)), 0);
    ck_assert_int_eq(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    return fd;
}

/* Reads (and discards) until the server closes fd; false if it is still
 * open after timeout_ms. */
static bool closed_within(int fd, int timeout_ms)
{
    long long deadline = mono_ms() + timeout_ms;
    char buf[4096];
    for (;;) {
        long long left = deadline - mono_ms();
        struct pollfd pf = { .fd = fd, .events = POLLIN };
        if (left <= 0 || poll(&pf, 1, (int)left) <= 0)
            return false;
        ssize_t n = recv(fd, buf, sizeof(buf), 0);
        if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR))
            return true;
    }
}

static bool closed_now(int fd)
{
    char b;
    ssize_t n = recv(fd, &b, 1, MSG_DONTWAIT);
    return n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK);
}

struct tls_client {
    int fd;
    SSL_CTX *ctx;
    SSL *ssl;
};

static void tls_from(struct tls_client *t, const char *src)
{
    char err[256];
    t->fd = tcp_from(src);
    t->ctx = tls_client_ctx_insecure(err, sizeof(err));
    ck_assert_ptr_nonnull(t->ctx);
    t->ssl = SSL_new(t->ctx);
    SSL_set_fd(t->ssl, t->fd);
    ck_assert_int_eq(SSL_connect(t->ssl), 1);
}

static void tls_free(struct tls_client *t)
{
    SSL_free(t->ssl);
    SSL_CTX_free(t->ctx);
    close(t->fd);
}

START_TEST(slowloris_heads)
{
    up(NULL);
    enum { N = 6 };
    struct tls_client c[N];
    int silent = tcp_from("127.0.0.2");     /* never even starts TLS */
    for (int i = 0; i < N; i++) {
        tls_from(&c[i], "127.0.0.2");
        static const char part[] = "GET /v3/clusters HTTP/1.1\r\nHost: x\r\nX-Slow: ";
        ck_assert_int_eq(SSL_write(c[i].ssl, part, (int)sizeof(part) - 1),
                         (int)sizeof(part) - 1);
    }
    /* Keep dripping a byte now and then: each write is progress, but the
     * head as a whole has head-timeout (1 s), so they all go. */
    long long until = mono_ms() + 2500;
    while (mono_ms() < until) {
        for (int i = 0; i < N; i++)
            SSL_write(c[i].ssl, "a", 1);
        usleep(200 * 1000);
    }
    others_served();
    for (int i = 0; i < N; i++) {
        ck_assert_msg(closed_within(c[i].fd, 15000), "slow head %d still open", i);
        tls_free(&c[i]);
    }
    ck_assert_msg(closed_within(silent, 15000), "silent connection still open");
    close(silent);
    others_served();
}
END_TEST

START_TEST(websocket_handshake_never_finishes)
{
    up(NULL);
    /* The upgrade request itself never ends. */
    struct tls_client c;
    tls_from(&c, "127.0.0.2");
    static const char part[] = "GET /v3/connect HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n";
    ck_assert_int_eq(SSL_write(c.ssl, part, (int)sizeof(part) - 1), (int)sizeof(part) - 1);
    /* An agent that was let in and then never says anything. */
    struct rawws w;
    ck_assert_int_eq(rawws_open(&w, d.https_port, d.raw_token, d.raw_cluster), 0);
    ck_assert_int_eq(w.status, 101);
    others_served();
    ck_assert_msg(closed_within(c.fd, 15000), "half an upgrade request still open");
    tls_free(&c);
    char reason[200];
    int code = rawws_wait_close(&w, 15000, reason, sizeof(reason));
    ck_assert_msg(code >= 0, "a silent agent was not dropped");
    rawws_free(&w);
    ck_assert(wait_for_log(d.server_log, "peer silent for", 5000));
    ck_assert(dtest_wait_metric(&d, TUNNELS, 1, 10000));
    others_served();
}
END_TEST

START_TEST(connection_flood_one_address)
{
    up(NULL);
    enum { N = 200 };
    int fds[N];
    for (int i = 0; i < N; i++)
        fds[i] = tcp_from("127.0.0.2");
    others_served();
    /* At most 40 are held (the rest are closed at accept); head-timeout
     * ends the held ones too, so eventually all are closed. */
    const char *refused = "drover_connections_refused_total{limit=\"per_ip\"}";
    long r = -1;
    long long deadline = mono_ms() + 15000;
    while (mono_ms() < deadline && (r = dtest_metric(&d, refused)) < N / 2)
        usleep(100 * 1000);
    ck_assert_msg(r >= N / 2, "only %ld connections refused", r);
    ck_assert(wait_for_log(d.server_log, "max-conns-per-ip", 5000));
    for (int i = 0; i < N; i++) {
        ck_assert_msg(closed_within(fds[i], 15000), "connection %d still open", i);
        close(fds[i]);
    }
    /* The address is welcome again once it holds nothing. */
    int again = tcp_from("127.0.0.2");
    usleep(200 * 1000);
    ck_assert(!closed_now(again));
    close(again);
    others_served();
}
END_TEST

START_TEST(connection_cap_whole_server)
{
    const char *extra[] = { "--max-connections", "20", NULL };
    up(extra);
    enum { N = 60 };
    int fds[N];
    for (int i = 0; i < N; i++)
        fds[i] = tcp_from("127.0.0.3");
    for (int i = 0; i < N; i++) {
        ck_assert_msg(closed_within(fds[i], 15000), "connection %d still open", i);
        close(fds[i]);
    }
    long r = dtest_metric(&d, "drover_connections_refused_total{limit=\"total\"}");
    ck_assert_msg(r >= N / 2, "only %ld connections refused", r);
    ck_assert(file_contains(d.server_log, "max-connections"));
    others_served();
}
END_TEST

/* Counts RESET frames with code and a reason containing why in the binary
 * messages that arrive within timeout_ms, until want of them came. */
static int count_resets(struct rawws *w, uint16_t code, const char *why, int want,
                        int timeout_ms)
{
    static uint8_t buf[1 << 20];
    int n = 0;
    long long deadline = mono_ms() + timeout_ms;
    while (n < want && mono_ms() < deadline) {
        uint8_t op;
        size_t len;
        if (rawws_recv(w, (int)(deadline - mono_ms()), &op, buf, sizeof(buf), &len) != 1)
            break;
        if (op != WS_OP_BINARY)
            continue;
        for (size_t off = 0; off < len;) {
            struct tun_frame f;
            ssize_t used = tun_frame_parse(buf + off, len - off, &f);
            if (used <= 0)
                break;
            if (f.type == TUN_RESET && f.code == code &&
                memmem(f.data, f.data_len, why, strlen(why)))
                n++;
            off += (size_t)used;
        }
    }
    return n;
}

/* Opens n "report" streams (ids from first, by 2) and sends nothing on them. */
static void open_reports(struct rawws *w, uint32_t first, int n)
{
    for (int i = 0; i < n; i++) {
        uint8_t f[64];
        struct tun_frame o = { .type = TUN_OPEN, .stream = first + 2 * (uint32_t)i,
                               .window = 65536, .service = "report", .service_len = 6 };
        ssize_t len = tun_frame_encode(f, sizeof(f), &o);
        ck_assert_int_gt(len, 0);
        ck_assert_int_eq(rawws_send(w, WS_OP_BINARY, f, (size_t)len), 0);
    }
}

START_TEST(agent_opens_streams_without_end)
{
    /* Reports are the streams an agent can hold open, and the server takes
     * REPORTS_PER_CLUSTER (2) of one cluster at once: a stream cap of 2 is
     * the one that refuses here. */
    const char *const extra[] = { "--agent-max-streams", "2", NULL };
    up(extra);
    struct rawws w;
    ck_assert_int_eq(rawws_open(&w, d.https_port, d.raw_token, d.raw_cluster), 0);
    ck_assert_int_eq(w.status, 101);
    enum { N = 40 };
    open_reports(&w, 2, N);
    /* The rest are refused, the tunnel stays. */
    int limited = count_resets(&w, TUN_RESET_LIMIT, "too many streams", N - 2, 15000);
    ck_assert_msg(limited == N - 2, "%d streams refused with RESET limit, want %d", limited,
                  N - 2);
    ck_assert_int_eq(dtest_metric(&d, TUNNELS), 2);
    others_served();
    rawws_free(&w);
    ck_assert(dtest_wait_metric(&d, TUNNELS, 1, 10000));
}
END_TEST

START_TEST(one_cluster_reports_at_a_time)
{
    up(NULL);
    struct rawws w;
    ck_assert_int_eq(rawws_open(&w, d.https_port, d.raw_token, d.raw_cluster), 0);
    ck_assert_int_eq(w.status, 101);
    /* Six reports left open (under agent-max-streams 8): two are taken,
     * four refused, the tunnel stays. */
    open_reports(&w, 2, 6);
    const char *why = "too many reports of this cluster";
    int limited = count_resets(&w, TUN_RESET_LIMIT, why, 4, 5000);
    ck_assert_msg(limited == 4, "%d reports refused, want 4 (logs %s)", limited, d.dir);
    /* (Before this raw agent's 2 s of silence gets it dropped.) */
    ck_assert_int_eq(dtest_metric(&d, TUNNELS), 2);
    ck_assert(wait_for_log(d.server_log, "of its reports are still in progress", 2000));
    others_served();
    rawws_free(&w);
    ck_assert(dtest_wait_metric(&d, TUNNELS, 1, 10000));
    /* The two it held were given back with their tunnel. */
    ck_assert_int_eq(rawws_open(&w, d.https_port, d.raw_token, d.raw_cluster), 0);
    open_reports(&w, 2, 2);
    ck_assert_int_eq(count_resets(&w, TUN_RESET_LIMIT, why, 1, 2000), 0);
    rawws_free(&w);
}
END_TEST

START_TEST(agent_floods_and_never_reads)
{
    up(NULL);
    struct rawws w;
    ck_assert_int_eq(rawws_open(&w, d.https_port, d.raw_token, d.raw_cluster), 0);
    ck_assert_int_eq(w.status, 101);
    int small = 4096;
    setsockopt(w.fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof(small));
    ck_assert_int_eq(dtest_metric(&d, TUNNELS), 2);
    /* Pings with the largest payload, each answered with a pong the agent
     * never reads: the server's queue toward it is capped (1 MiB) and a
     * queue that does not move for dead-after (2 s) drops it. */
    enum { BATCH = 1000, PING = 2 + 4 + 125 };
    static uint8_t batch[BATCH * PING];
    uint8_t payload[125];
    memset(payload, 'p', sizeof(payload));
    const uint8_t mask[4] = { 1, 2, 3, 4 };
    for (int i = 0; i < BATCH; i++) {
        uint8_t *p = batch + (size_t)i * PING;
        size_t hl = ws_hdr_build(p, true, WS_OP_PING, sizeof(payload), mask);
        memcpy(p + hl, payload, sizeof(payload));
        ws_mask(p + hl, sizeof(payload), mask, 0);
    }
    long long deadline = mono_ms() + 60000;
    bool dropped = false;
    size_t off = 0;     /* the client context allows partial writes */
    while (!dropped && mono_ms() < deadline) {
        int wr = SSL_write(w.ssl, batch + off, (int)(sizeof(batch) - off));
        if (wr <= 0)
            dropped = true;
        else
            off = (off + (size_t)wr) % sizeof(batch);
    }
    ck_assert_msg(dropped, "a flooding agent that never reads was not dropped (logs %s)",
                  d.dir);
    char down[100];
    snprintf(down, sizeof(down), "tunnel down: cluster=%s", d.raw_cluster);
    ck_assert(wait_for_log(d.server_log, down, 5000));
    if (!file_contains(d.server_log, "stopped reading")) {
        char cmd[400], out[2000];
        snprintf(cmd, sizeof(cmd), "grep 'tunnel down' %s", d.server_log);
        run_capture(cmd, out, sizeof(out));
        ck_abort_msg("dropped, but not as a reader that stopped: %s", out);
    }
    rawws_free(&w);
    ck_assert(dtest_wait_metric(&d, TUNNELS, 1, 10000));
    others_served();
}
END_TEST

struct guess {
    int port, status;
};

static void *guess(void *arg)
{
    struct guess *g = arg;
    struct httpc_resp r;
    g->status = httpc_do(g->port, "POST", "/v3/tokens", NULL,
                         "{\"username\":\"admin\",\"password\":\"not-it\"}", 0, 60000, &r);
    httpc_free(&r);
    return NULL;
}

/* Password guesses sent in parallel cannot wait out the login delay side by
 * side: once one failed, the others from that address are refused (429)
 * without a password hash until its delay is over. */
START_TEST(parallel_password_guesses)
{
    up(NULL);
    enum { N = 16 };
    struct guess g[N];
    pthread_t th[N];
    for (int i = 0; i < N; i++) {
        g[i] = (struct guess){ .port = d.https_port };
        ck_assert_int_eq(pthread_create(&th[i], NULL, guess, &g[i]), 0);
    }
    int refused = 0, failed = 0;
    for (int i = 0; i < N; i++) {
        pthread_join(th[i], NULL);
        ck_assert_msg(g[i].status == 401 || g[i].status == 429, "a guess got %d (logs %s)",
                      g[i].status, d.dir);
        refused += g[i].status == 429;
        failed += g[i].status == 401;
    }
    fprintf(stderr, "parallel_password_guesses: %d checked, %d refused\n", failed, refused);
    ck_assert_msg(refused > 0, "all %d parallel guesses were checked", N);
    /* The right password still works once the delay is over. */
    char tok[100];
    int st = 0;
    for (int i = 0; i < 20 && (st = dtest_login(&d, "admin", d.admin_pw, tok, sizeof(tok))) == 429;
         i++)
        usleep(500 * 1000);
    ck_assert_int_eq(st, 201);
}
END_TEST

Suite *suite_integration_badpeers(void)
{
    Suite *s = suite_create("integration/badpeers");
    TCase *tc = tcase_create("badpeers");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 180);
    tcase_add_test(tc, slowloris_heads);
    tcase_add_test(tc, websocket_handshake_never_finishes);
    tcase_add_test(tc, connection_flood_one_address);
    tcase_add_test(tc, connection_cap_whole_server);
    tcase_add_test(tc, agent_opens_streams_without_end);
    tcase_add_test(tc, one_cluster_reports_at_a_time);
    tcase_add_test(tc, agent_floods_and_never_reads);
    tcase_add_test(tc, parallel_password_guesses);
    suite_add_tcase(s, tc);
    return s;
}
