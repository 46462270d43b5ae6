/*
 * loadagents: plays many drover agents from one process, for benchmarks and
 * scale tests. Each agent is a real TLS websocket tunnel (node-agent role,
 * one node name each) with keepalive, built from the same modules the real
 * agents use; it pins the server CA by checksum like they do.
 *
 *   loadagents --server https://127.0.0.1:8443 --token T --cluster C
 *              --ca-checksum SUM --count N [--prefix load] [--rate R]
 *              [--hold SECS] [--source-ips 127.0.0.2-127.0.0.9]
 *   loadagents --server URL[,URL...] --clusters FILE --ca-checksum SUM ...
 *
 * With --clusters, each line of FILE ("ID TOKEN") is one cluster whose
 * cluster agent is played (role cluster), and --count defaults to the number
 * of lines. --server may list several replicas: agent i starts at replica
 * i mod n and moves to the next one whenever its link drops, as the real
 * agents fail over.
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

#define MAX_SERVERS 8

struct agent {
    struct load *ld;
    int index;
    int server;                 /* index into ld->servers */
    bool redial;                /* dropped: the tick dials it again */
    struct ws *ws;
    struct tunnel *t;
    char headers[512];
};

struct load {
    struct loop *loop;
    SSL_CTX *ctx;
    struct url url;             /* servers[0], for the CA */
    struct netaddr addr;
    struct url servers[MAX_SERVERS];
    struct netaddr addrs[MAX_SERVERS];
    int nservers;
    const char *token, *cluster, *prefix, *clusters;
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
    a->server = (a->server + 1) % a->ld->nservers;
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
    a->server = (a->server + 1) % a->ld->nservers;
    a->redial = true;
}

static const struct ws_ops wops = { .on_open = on_open, .on_close = on_close };

static void dial(struct agent *a)
{
    struct load *ld = a->ld;
    a->redial = false;
    const struct url *u = &ld->servers[a->server];
    struct ws_client_opts o = {
        .path = "/v3/connect", .host = u->host, .host_is_ip = u->host_is_ip,
        .subprotocol = TUN_SUBPROTOCOL, .extra_headers = a->headers,
        .max_message = TUN_MAX_MESSAGE,
    };
    ld->attempts++;
    const struct netaddr *na = &ld->addrs[a->server];
    a->ws = ws_client_connect(ld->loop, (struct sockaddr *)&na->ss, na->len, ld->ctx, &o,
                              &wops, a);
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

static int parse_servers(struct load *ld, const char *list)
{
    char buf[2048];
    snprintf(buf, sizeof(buf), "%s", list);
    for (char *save = NULL, *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        const char *why;
        struct url *u = &ld->servers[ld->nservers];
        if (ld->nservers == MAX_SERVERS || url_parse(t, u, &why) < 0 || !u->host_is_ip ||
            netaddr_from_ip(u->host, u->port, &ld->addrs[ld->nservers]) < 0) {
            fprintf(stderr, "loadagents: --server must be https://IP:PORT[,...] (at most %d)\n",
                    MAX_SERVERS);
            return -1;
        }
        ld->nservers++;
    }
    if (!ld->nservers)
        return -1;
    ld->url = ld->servers[0];
    ld->addr = ld->addrs[0];
    return 0;
}

/* "ID TOKEN" lines: one cluster agent each. */
static int read_clusters(struct load *ld, const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        fprintf(stderr, "loadagents: cannot open %s\n", path);
        return -1;
    }
    char line[512], id[64], tok[256];
    int n = 0;
    while (fgets(line, sizeof(line), f) && n < ld->count)
        if (sscanf(line, "%63s %255s", id, tok) == 2)
            snprintf(ld->agents[n++].headers, sizeof(ld->agents[0].headers),
                     "Authorization: Bearer %s\r\nX-Drover-Cluster: %s\r\n"
                     "X-Drover-Role: cluster\r\n", tok, id);
    fclose(f);
    ld->count = n;
    return n > 0 ? 0 : -1;
}

static int count_lines(const char *path)
{
    FILE *f = fopen(path, "r");
    int n = 0, c;
    if (!f)
        return 0;
    while ((c = fgetc(f)) != EOF)
        n += c == '\n';
    fclose(f);
    return n;
}

static int setup(struct load *ld, const char *server, const char *sum)
{
    if (parse_servers(ld, server) < 0)
        return -1;
    if (pin(ld, sum) < 0)
        return -1;
    ld->agents = calloc((size_t)ld->count, sizeof(*ld->agents));
    if (!ld->agents)
        return -1;
    if (ld->clusters && read_clusters(ld, ld->clusters) < 0)
        return -1;
    for (int i = 0; i < ld->count; i++) {
        struct agent *a = &ld->agents[i];
        a->ld = ld;
        a->index = i;
        a->server = i % ld->nservers;
        if (ld->clusters)
            continue;
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
        { "rate", 1, 0, 'r' }, { "hold", 1, 0, 'h' }, { "clusters", 1, 0, 'C' },
        { 0, 0, 0, 0 },
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
        case 'C': ld.clusters = optarg; break;
        default: return 2;
        }
    }
    if (ld.clusters && ld.count <= 0)
        ld.count = count_lines(ld.clusters);
    if (!server || (!ld.clusters && (!ld.token || !ld.cluster)) || !sum || ld.count <= 0 ||
        ld.rate <= 0) {
        fprintf(stderr, "usage: loadagents --server URL[,URL...] (--token T --cluster C | "
                        "--clusters FILE) --ca-checksum SUM [--count N] [--prefix P] "
                        "[--rate R] [--hold SECS]\n");
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
