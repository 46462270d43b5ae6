/*
 * loadagents: plays many drover agents from one process, for benchmarks and
 * scale tests. Each agent is a real TLS websocket tunnel (node-agent role,
 * one node name each) with keepalive, built from the same modules the real
 * agents use; it pins the server CA by checksum like they do.
 *
 *   loadagents --server https://127.0.0.1:8443 --token T --cluster C
 *              --ca-checksum SUM --count N [--prefix load] [--rate R]
 *              [--hold SECS] [--source-ips 127.0.0.2-127.0.0.9]
 *
 * Connects N tunnels at up to R new connections per second (default 500),
 * prints "connected=N secs=S" once all are up (and a line each second while
 * connecting), then holds them for SECS (default: until SIGTERM), redialing
 * any that drop, and prints "final connected=N" on exit.
 */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "common/cacerts.h"
#include "common/conn.h"
#include "common/log.h"
#include "common/netaddr.h"
#include "common/tls.h"
#include "common/tunnel.h"
#include "common/url.h"
#include "common/wsconn.h"
#include "proto/frame.h"
#include "proto/ws.h"

struct agent {
    struct load *ld;
    int index;
    bool redial;                /* dropped: the tick dials it again */
    struct ws *ws;
    struct tunnel *t;
    char headers[512];
};

struct load {
    struct loop *loop;
    SSL_CTX *ctx;
    struct url url;
    struct netaddr addr;
    const char *token, *cluster, *prefix;
    int count, rate, hold_secs, connected, next_dial, attempts, failures;
    struct agent *agents;
    struct loop_timer tick;
    long long start_ms, ticks;
    bool reported;
};

static void dial(struct agent *a);

static void on_down(struct tunnel *t, const char *why)
{
    struct agent *a = tunnel_ud(t);
    (void)why;
    a->t = NULL;
    a->ld->connected--;
    dial(a);    /* like an agent: come straight back (the tick paces retries) */
}

static void on_stream(struct tunnel *t, struct tun_stream *s, const char *service,
                      const uint8_t *meta, size_t len)
{
    (void)t;
    (void)service;
    (void)meta;
    (void)len;
    tun_stream_reset(s, TUN_RESET_REFUSED, "load agents serve nothing");
}

static const struct tunnel_ops tops = { .on_open = on_stream, .on_down = on_down };

static void on_open(struct ws *w)
{
    struct agent *a = ws_ud(w);
    struct tunnel_cfg tc = { 0 };
    a->ws = NULL;
    a->t = tunnel_new(a->ld->loop, w, false, &tc, &tops, a);
    if (a->t)
        a->ld->connected++;
}

static void on_close(struct ws *w, const char *why)
{
    struct agent *a = ws_ud(w);
    a->ws = NULL;
    if (a->ld->failures++ < 5)
        fprintf(stderr, "loadagents: agent %d: %s\n", a->index, why);
    a->redial = true;
}

static const struct ws_ops wops = { .on_open = on_open, .on_close = on_close };

static void dial(struct agent *a)
{
    struct load *ld = a->ld;
    a->redial = false;
    struct ws_client_opts o = {
        .path = "/v3/connect", .host = ld->url.host, .host_is_ip = ld->url.host_is_ip,
        .subprotocol = TUN_SUBPROTOCOL, .extra_headers = a->headers,
        .max_message = TUN_MAX_MESSAGE,
    };
    ld->attempts++;
    a->ws = ws_client_connect(ld->loop, (struct sockaddr *)&ld->addr.ss, ld->addr.len,
                              ld->ctx, &o, &wops, a);
    if (!a->ws)
        a->redial = true;
}

static void on_tick(struct loop_timer *t)
{
    struct load *ld = (struct load *)((char *)t - offsetof(struct load, tick));
    int budget = ld->rate / 10 + 1;
    while (ld->next_dial < ld->count && budget-- > 0)
        dial(&ld->agents[ld->next_dial++]);
    for (int i = 0; i < ld->next_dial && budget > 0; i++) {
        struct agent *a = &ld->agents[i];
        if (a->redial && !a->ws && !a->t) {
            dial(a);
            budget--;
        }
    }
    long long now = (long long)loop_now_ms(ld->loop);
    double secs = (double)(now - ld->start_ms) / 1000.0;
    if (!ld->reported && ld->connected == ld->count) {
        printf("connected=%d secs=%.3f attempts=%d\n", ld->connected, secs, ld->attempts);
        fflush(stdout);
        ld->reported = true;
    } else if (++ld->ticks % 10 == 0) {
        printf("progress connected=%d secs=%.1f\n", ld->connected, secs);
        fflush(stdout);
    }
    if (ld->hold_secs && ld->reported && secs > ld->hold_secs) {
        loop_stop(ld->loop);
        return;
    }
    loop_timer_start(ld->loop, &ld->tick, 100, on_tick);
}

static int pin(struct load *ld, const char *sum)
{
    char err[300], *pem = NULL, got[65];
    size_t len;
    if (cacerts_fetch(&ld->url, 10000, &pem, &len, err, sizeof(err)) < 0) {
        fprintf(stderr, "loadagents: %s\n", err);
        return -1;
    }
    tls_sha256_hex(pem, len, got);
    if (strcmp(got, sum) != 0) {
        fprintf(stderr, "loadagents: CA checksum mismatch\n");
        free(pem);
        return -1;
    }
    ld->ctx = tls_client_ctx_pinned(pem, len, err, sizeof(err));
    free(pem);
    return ld->ctx ? 0 : -1;
}

static int setup(struct load *ld, const char *server, const char *sum)
{
    const char *why;
    if (url_parse(server, &ld->url, &why) < 0 || !ld->url.host_is_ip ||
        netaddr_from_ip(ld->url.host, ld->url.port, &ld->addr) < 0) {
        fprintf(stderr, "loadagents: --server must be https://IP:PORT\n");
        return -1;
    }
    if (pin(ld, sum) < 0)
        return -1;
    ld->agents = calloc((size_t)ld->count, sizeof(*ld->agents));
    if (!ld->agents)
        return -1;
    for (int i = 0; i < ld->count; i++) {
        struct agent *a = &ld->agents[i];
        a->ld = ld;
        a->index = i;
        snprintf(a->headers, sizeof(a->headers),
                 "Authorization: Bearer %s\r\nX-Drover-Cluster: %s\r\n"
                 "X-Drover-Role: node\r\nX-Drover-Node: %s-%d\r\n",
                 ld->token, ld->cluster, ld->prefix, i);
    }
    /* One descriptor per tunnel plus a margin. */
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < (rlim_t)ld->count + 64) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    return 0;
}

int main(int argc, char **argv)
{
    struct load ld = { .rate = 500, .prefix = "load" };
    const char *server = NULL, *sum = NULL;
    static const struct option opts[] = {
        { "server", 1, 0, 's' }, { "token", 1, 0, 't' }, { "cluster", 1, 0, 'c' },
        { "ca-checksum", 1, 0, 'k' }, { "count", 1, 0, 'n' }, { "prefix", 1, 0, 'p' },
        { "rate", 1, 0, 'r' }, { "hold", 1, 0, 'h' }, { 0, 0, 0, 0 },
    };
    int o;
    while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (o) {
        case 's': server = optarg; break;
        case 't': ld.token = optarg; break;
        case 'c': ld.cluster = optarg; break;
        case 'k': sum = optarg; break;
        case 'n': ld.count = (int)strtol(optarg, NULL, 10); break;
        case 'p': ld.prefix = optarg; break;
        case 'r': ld.rate = (int)strtol(optarg, NULL, 10); break;
        case 'h': ld.hold_secs = (int)strtol(optarg, NULL, 10); break;
        default: return 2;
        }
    }
    if (!server || !ld.token || !ld.cluster || !sum || ld.count <= 0 || ld.rate <= 0) {
        fprintf(stderr, "usage: loadagents --server URL --token T --cluster C "
                        "--ca-checksum SUM --count N [--prefix P] [--rate R] [--hold SECS]\n");
        return 2;
    }
    log_init("loadagents", LOG_ERROR);
    signal(SIGPIPE, SIG_IGN);
    ld.loop = loop_new();
    if (!ld.loop || loop_stop_on_signals(ld.loop) < 0 || setup(&ld, server, sum) < 0)
        return 1;
    ld.start_ms = (long long)loop_now_ms(ld.loop);
    loop_timer_start(ld.loop, &ld.tick, 1, on_tick);
    loop_run(ld.loop);
    printf("final connected=%d\n", ld.connected);
    loop_timer_stop(ld.loop, &ld.tick);
    for (int i = 0; i < ld.count; i++) {
        if (ld.agents[i].t)
            tunnel_close(ld.agents[i].t, WS_CLOSE_GOING_AWAY, "load test over");
        else if (ld.agents[i].ws)
            ws_close(ld.agents[i].ws, WS_CLOSE_GOING_AWAY, "load test over");
    }
    conn_close_all();
    loop_free(ld.loop);
    SSL_CTX_free(ld.ctx);
    free(ld.agents);
    return 0;
}
