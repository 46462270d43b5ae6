/*
 * loadagents: plays many drover agents from one process, for benchmarks and
 * scale tests. Each agent is a real TLS websocket tunnel with keepalive,
 * built from the same modules the real agents use; it pins the server CA by
 * checksum like they do, and redials with their backoff (common/backoff.c:
 * 500 ms doubling to 30 s, full jitter, reset once a tunnel is up).
 *
 *   loadagents --server https://127.0.0.1:8443 --token T --cluster C
 *              --ca-checksum SUM --count N [--prefix load] [--rate R]
 *              [--hold SECS] [--source-ips 127.0.0.2-127.0.0.9]
 *   loadagents --server URL[,URL...] --clusters FILE --ca-checksum SUM
 *              [--nodes K] [--report SECS] [--churn PER_SEC] [--stats SECS] ...
 *
 * With --clusters, each line of FILE ("ID TOKEN") is one cluster whose
 * cluster agent is played (role cluster), plus K node agents (role node,
 * nodes "<prefix>-<line>-<k>") with --nodes; --count defaults to all of
 * them. --report makes every cluster-role agent send a small report (the
 * shape common/reporter.c sends) on the "report" service when its tunnel
 * comes up and every SECS after. --churn drops that many random connected
 * agents each second (they redial with the backoff), from when SIGUSR1 comes
 * until the next SIGUSR1. --source-ips spreads the
 * connections over a range of local addresses, agent i on address i mod n:
 * one source address has only the ephemeral port range (~28k) toward one
 * server port. --server may list several replicas: agent i starts at
 * replica i mod n and moves to the next one whenever its link drops, as the
 * real agents fail over. --max-inflight caps the handshakes under way at
 * once (default 256, 0 = no cap): this one thread does the TLS of every
 * client, which real agents each do on their own machine, and past its
 * capacity every handshake would crawl past the server's head-timeout; an
 * agent whose backoff is over then waits for a free slot.
 *
 * Connects N tunnels at up to R new first connections per second (default
 * 500), prints "connected=N secs=S" once all are up, then holds them for
 * SECS (default: until SIGTERM). Every --stats seconds (default 1) it prints
 * "stats connected= attempts= failures= ups= downs= reports_ok=
 * reports_failed= secs=". Whenever all N are up again after some dropped
 * (a server restart), it prints "allup after_ms=T peak_ups_per_sec=P" with
 * T from the first drop. "final connected=N" on exit.
 */
#include <arpa/inet.h>
#include <getopt.h>
#include <stdarg.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "common/backoff.h"
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
#define MAX_SOURCES 64
#define TICK_MS 50
#define REPORT_ANSWER_MAX 4096

struct agent {
    struct load *ld;
    int index;
    int server;                 /* index into ld->servers */
    bool cluster_role;
    bool pending;               /* waiting for due_ms to dial */
    uint64_t due_ms;
    uint64_t next_report_ms;
    struct backoff bo;
    struct ws *ws;
    struct tunnel *t;
    struct tun_stream *rs;      /* the report in flight */
    size_t rs_off, ans_len;
    char *headers;
};

struct load {
    struct loop *loop;
    SSL_CTX *ctx;
    struct url url;             /* servers[0], for the CA */
    struct url servers[MAX_SERVERS];
    struct netaddr addrs[MAX_SERVERS];
    int nservers;
    struct sockaddr_in sources[MAX_SOURCES];
    int nsources;
    const char *token, *cluster, *prefix, *clusters;
    int count, nodes, rate, hold_secs, report_secs, churn, stats_secs;
    int connected, next_dial, inflight, max_inflight;
    long long attempts, failures, ups, downs, reports_ok, reports_failed;
    struct agent *agents;
    struct loop_timer tick;
    uint64_t start_ms, last_stats_ms, last_churn_ms, drop_ms, sec_start_ms;
    int ups_this_sec, peak_ups;
    bool reported, all_up;
    char report[8192];
    size_t report_len;
};

static void dial(struct agent *a);

static volatile sig_atomic_t churning;
static void on_usr1(int sig)
{
    (void)sig;
    churning = !churning;
}

static void schedule(struct agent *a)
{
    struct load *ld = a->ld;
    a->server = (a->server + 1) % ld->nservers;
    a->pending = true;
    a->due_ms = loop_now_ms(ld->loop) + backoff_next(&a->bo);
}

static void lost(struct agent *a)
{
    struct load *ld = a->ld;
    a->t = NULL;
    a->rs = NULL;
    ld->connected--;
    ld->downs++;
    if (ld->all_up) {
        ld->all_up = false;
        ld->drop_ms = loop_now_ms(ld->loop);
        ld->peak_ups = 0;
    }
}

static void on_down(struct tunnel *t, const char *why)
{
    struct agent *a = tunnel_ud(t);
    (void)why;
    lost(a);
    schedule(a);
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

/* ---- reports: one stream, the document, then the server's answer ---- */

static void report_done(struct agent *a, bool ok)
{
    a->rs = NULL;
    if (ok)
        a->ld->reports_ok++;
    else
        a->ld->reports_failed++;
}

static void rs_send(struct agent *a)
{
    struct load *ld = a->ld;
    while (a->rs_off < ld->report_len) {
        ssize_t n = tun_stream_send(a->rs, ld->report + a->rs_off, ld->report_len - a->rs_off);
        if (n < 0) {
            tun_stream_reset(a->rs, TUN_RESET_CANCEL, "cannot send");
            report_done(a, false);
            return;
        }
        if (n == 0)
            return;
        a->rs_off += (size_t)n;
    }
    if (tun_stream_close(a->rs) == 1)
        a->rs = NULL;   /* both halves done already: counted at on_eof */
}

static void rs_data(struct tun_stream *s, const uint8_t *p, size_t n)
{
    struct agent *a = tun_stream_ud(s);
    (void)p;
    a->ans_len += n;    /* {"ok":true} is all the server says; count only */
    tun_stream_consumed(s, n);
    if (a->ans_len > REPORT_ANSWER_MAX) {
        tun_stream_reset(s, TUN_RESET_LIMIT, "limit");
        report_done(a, false);
    }
}

static void rs_eof(struct tun_stream *s)
{
    struct agent *a = tun_stream_ud(s);
    if (a->rs != s)
        return;
    bool ok = a->ans_len > 0 && a->rs_off == a->ld->report_len;
    report_done(a, ok);
}

static void rs_writable(struct tun_stream *s)
{
    struct agent *a = tun_stream_ud(s);
    if (a->rs == s)
        rs_send(a);
}

static void rs_end(struct tun_stream *s, uint16_t code, const char *reason)
{
    struct agent *a = tun_stream_ud(s);
    (void)code;
    (void)reason;
    if (a->rs == s)
        report_done(a, false);
}

static const struct tun_stream_ops rs_ops = {
    .on_data = rs_data, .on_eof = rs_eof, .on_writable = rs_writable, .on_end = rs_end,
};

static void send_report(struct agent *a, uint64_t now)
{
    a->next_report_ms = now + (uint64_t)a->ld->report_secs * 1000;
    if (a->rs)
        return;         /* the last one is still going: skip a turn */
    a->rs = tun_stream_open(a->t, "report", NULL, 0, &rs_ops, a);
    if (!a->rs) {
        a->ld->reports_failed++;
        return;
    }
    a->rs_off = 0;
    a->ans_len = 0;
    rs_send(a);
}

/* A cluster of ten ready nodes and no warnings, as reporter_doc() builds it. */
static void build_report(struct load *ld)
{
    size_t n = (size_t)snprintf(ld->report, sizeof(ld->report),
                                "{\"kubernetesVersion\":\"v1.29.4\",\"healthy\":true,"
                                "\"health\":\"ok\",\"nodes\":[");
    for (int i = 0; i < 10; i++)
        n += (size_t)snprintf(ld->report + n, sizeof(ld->report) - n,
                              "%s{\"name\":\"node-%d\",\"roles\":[\"%s\"],"
                              "\"kubeletVersion\":\"v1.29.4\",\"ready\":true,"
                              "\"addresses\":[{\"type\":\"InternalIP\",\"address\":"
                              "\"10.0.0.%d\"}],\"capacity\":{\"cpu\":\"4\",\"memory\":"
                              "\"16Gi\"},\"allocatable\":{\"cpu\":\"4\"}}",
                              i ? "," : "", i, i < 3 ? "control-plane" : "worker", i + 10);
    n += (size_t)snprintf(ld->report + n, sizeof(ld->report) - n, "],\"events\":[]}");
    if (n >= sizeof(ld->report))
        abort();    /* the document above must fit: a truncated one is not JSON */
    ld->report_len = n;
}

/* ---- dialing ---- */

static void on_open(struct ws *w)
{
    struct agent *a = ws_ud(w);
    struct load *ld = a->ld;
    struct tunnel_cfg tc = { 0 };
    a->ws = NULL;
    ld->inflight--;
    a->t = tunnel_new(ld->loop, w, false, &tc, &tops, a);
    if (!a->t) {
        schedule(a);
        return;
    }
    backoff_reset(&a->bo);
    ld->connected++;
    ld->ups++;
    ld->ups_this_sec++;
    if (a->cluster_role && ld->report_secs)
        send_report(a, loop_now_ms(ld->loop));
}

static void on_close(struct ws *w, const char *why)
{
    struct agent *a = ws_ud(w);
    a->ws = NULL;
    a->ld->inflight--;
    if (a->ld->failures++ < 5)
        fprintf(stderr, "loadagents: agent %d: %s\n", a->index, why);
    schedule(a);
}

static const struct ws_ops wops = { .on_open = on_open, .on_close = on_close };

static void dial(struct agent *a)
{
    struct load *ld = a->ld;
    /* One thread does every client's TLS: past the cap, handshakes would
     * crawl until the server's head-timeout drops them all. The agent waits
     * its turn instead (still due). */
    if (ld->max_inflight && ld->inflight >= ld->max_inflight) {
        a->pending = true;
        return;
    }
    a->pending = false;
    const struct url *u = &ld->servers[a->server];
    struct ws_client_opts o = {
        .path = "/v3/connect", .host = u->host, .host_is_ip = u->host_is_ip,
        .subprotocol = TUN_SUBPROTOCOL, .extra_headers = a->headers,
        .max_message = TUN_MAX_MESSAGE,
    };
    if (ld->nsources) {
        o.src = (const struct sockaddr *)&ld->sources[a->index % ld->nsources];
        o.src_len = sizeof(ld->sources[0]);
    }
    ld->attempts++;
    const struct netaddr *na = &ld->addrs[a->server];
    a->ws = ws_client_connect(ld->loop, (struct sockaddr *)&na->ss, na->len, ld->ctx, &o,
                              &wops, a);
    if (!a->ws) {
        ld->failures++;
        schedule(a);
    } else {
        ld->inflight++;
    }
}

/* Drops ld->churn random connected agents; they come back with the backoff. */
static void churn(struct load *ld)
{
    for (int k = 0, tries = 0; k < ld->churn && tries < ld->churn * 20; tries++) {
        struct agent *a = &ld->agents[random() % ld->next_dial];
        if (!a->t)
            continue;
        tunnel_close(a->t, WS_CLOSE_GOING_AWAY, "churn");
        lost(a);
        schedule(a);
        k++;
    }
}

static void print_stats(struct load *ld, double secs)
{
    printf("stats connected=%d attempts=%lld failures=%lld ups=%lld downs=%lld "
           "reports_ok=%lld reports_failed=%lld secs=%.1f\n", ld->connected, ld->attempts,
           ld->failures, ld->ups, ld->downs, ld->reports_ok, ld->reports_failed, secs);
}

static void on_tick(struct loop_timer *t)
{
    struct load *ld = (struct load *)((char *)t - offsetof(struct load, tick));
    uint64_t now = loop_now_ms(ld->loop);
    int budget = ld->rate * TICK_MS / 1000 + 1;
    while (ld->next_dial < ld->count && budget-- > 0 &&
           (!ld->max_inflight || ld->inflight < ld->max_inflight))
        dial(&ld->agents[ld->next_dial++]);
    for (int i = 0; i < ld->next_dial; i++) {
        struct agent *a = &ld->agents[i];
        if (a->pending && a->due_ms <= now) {
            if (ld->max_inflight && ld->inflight >= ld->max_inflight)
                continue;
            dial(a);
        }
        else if (a->t && a->next_report_ms && a->next_report_ms <= now && ld->report_secs &&
                 a->cluster_role)
            send_report(a, now);
    }
    if (now - ld->sec_start_ms >= 1000) {
        if (ld->ups_this_sec > ld->peak_ups)
            ld->peak_ups = ld->ups_this_sec;
        ld->ups_this_sec = 0;
        ld->sec_start_ms = now;
    }
    double secs = (double)(now - ld->start_ms) / 1000.0;
    if (ld->connected == ld->count && !ld->all_up) {
        ld->all_up = true;
        if (!ld->reported)
            printf("connected=%d secs=%.3f attempts=%lld\n", ld->connected, secs,
                   ld->attempts);
        else
            printf("allup after_ms=%llu peak_ups_per_sec=%d attempts=%lld failures=%lld\n",
                   (unsigned long long)(now - ld->drop_ms),
                   ld->ups_this_sec > ld->peak_ups ? ld->ups_this_sec : ld->peak_ups,
                   ld->attempts, ld->failures);
        ld->reported = true;
        fflush(stdout);
    }
    if (ld->churn && churning && ld->reported && now - ld->last_churn_ms >= 1000) {
        ld->last_churn_ms = now;
        churn(ld);
    }
    if (now - ld->last_stats_ms >= (uint64_t)ld->stats_secs * 1000) {
        ld->last_stats_ms = now;
        print_stats(ld, secs);
        fflush(stdout);
    }
    if (ld->hold_secs && ld->reported && secs > ld->hold_secs) {
        loop_stop(ld->loop);
        return;
    }
    loop_timer_start(ld->loop, &ld->tick, TICK_MS, on_tick);
}

/* ---- setup ---- */

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
    return 0;
}

/* "A.B.C.D-A.B.C.E" (same first three octets) or one address. */
static int parse_sources(struct load *ld, const char *spec)
{
    char first[64], last[64];
    const char *dash = strchr(spec, '-');
    snprintf(first, sizeof(first), "%.*s", dash ? (int)(dash - spec) : (int)strlen(spec), spec);
    snprintf(last, sizeof(last), "%s", dash ? dash + 1 : first);
    struct in_addr lo, hi;
    if (inet_pton(AF_INET, first, &lo) != 1 || inet_pton(AF_INET, last, &hi) != 1 ||
        (ntohl(lo.s_addr) >> 8) != (ntohl(hi.s_addr) >> 8) ||
        ntohl(hi.s_addr) < ntohl(lo.s_addr) ||
        ntohl(hi.s_addr) - ntohl(lo.s_addr) >= MAX_SOURCES) {
        fprintf(stderr, "loadagents: --source-ips wants A.B.C.D-A.B.C.E (at most %d)\n",
                MAX_SOURCES);
        return -1;
    }
    for (uint32_t v = ntohl(lo.s_addr); v <= ntohl(hi.s_addr); v++) {
        struct sockaddr_in *s = &ld->sources[ld->nsources++];
        s->sin_family = AF_INET;
        s->sin_addr.s_addr = htonl(v);
    }
    return 0;
}

static int set_headers(struct agent *a, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static int set_headers(struct agent *a, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vasprintf(&a->headers, fmt, ap);
    va_end(ap);
    return n < 0 ? -1 : 0;
}

/* "ID TOKEN" lines: one cluster agent each, then its node agents. */
static int read_clusters(struct load *ld, const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        fprintf(stderr, "loadagents: cannot open %s\n", path);
        return -1;
    }
    char line[512], id[64], tok[256];
    int n = 0, ln = 0;
    while (fgets(line, sizeof(line), f) && n < ld->count) {
        if (sscanf(line, "%63s %255s", id, tok) != 2)
            continue;
        ld->agents[n].cluster_role = true;
        if (set_headers(&ld->agents[n++], "Authorization: Bearer %s\r\nX-Drover-Cluster: %s\r\n"
                        "X-Drover-Role: cluster\r\n", tok, id) < 0)
            break;
        for (int k = 0; k < ld->nodes && n < ld->count; k++)
            if (set_headers(&ld->agents[n++], "Authorization: Bearer %s\r\n"
                            "X-Drover-Cluster: %s\r\nX-Drover-Role: node\r\n"
                            "X-Drover-Node: %s-%d-%d\r\n", tok, id, ld->prefix, ln, k) < 0)
                break;
        ln++;
    }
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
    /* One descriptor per tunnel plus a margin, before the first socket. */
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < (rlim_t)ld->count + 64) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
        if (rl.rlim_cur < (rlim_t)ld->count + 64)
            fprintf(stderr, "loadagents: open-files limit %llu is below %d agents: "
                            "raise it (ulimit -n)\n", (unsigned long long)rl.rlim_cur,
                    ld->count);
    }
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
        backoff_init(&a->bo, 500, 30000);   /* the agents' defaults (common/agent.c) */
        if (ld->clusters)
            continue;
        if (set_headers(a, "Authorization: Bearer %s\r\nX-Drover-Cluster: %s\r\n"
                        "X-Drover-Role: node\r\nX-Drover-Node: %s-%d\r\n",
                        ld->token, ld->cluster, ld->prefix, i) < 0)
            return -1;
    }
    build_report(ld);
    return 0;
}

int main(int argc, char **argv)
{
    struct load ld = { .rate = 500, .prefix = "load", .stats_secs = 1, .max_inflight = 256 };
    const char *server = NULL, *sum = NULL;
    static const struct option opts[] = {
        { "server", 1, 0, 's' }, { "token", 1, 0, 't' }, { "cluster", 1, 0, 'c' },
        { "ca-checksum", 1, 0, 'k' }, { "count", 1, 0, 'n' }, { "prefix", 1, 0, 'p' },
        { "rate", 1, 0, 'r' }, { "hold", 1, 0, 'h' }, { "clusters", 1, 0, 'C' },
        { "source-ips", 1, 0, 'S' }, { "nodes", 1, 0, 'N' }, { "report", 1, 0, 'R' },
        { "churn", 1, 0, 'X' }, { "stats", 1, 0, 'T' }, { "max-inflight", 1, 0, 'I' },
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
        case 'S': if (parse_sources(&ld, optarg) < 0) return 2; break;
        case 'N': ld.nodes = (int)strtol(optarg, NULL, 10); break;
        case 'R': ld.report_secs = (int)strtol(optarg, NULL, 10); break;
        case 'X': ld.churn = (int)strtol(optarg, NULL, 10); break;
        case 'T': ld.stats_secs = (int)strtol(optarg, NULL, 10); break;
        case 'I': ld.max_inflight = (int)strtol(optarg, NULL, 10); break;
        default: return 2;
        }
    }
    if (ld.clusters && ld.count <= 0)
        ld.count = count_lines(ld.clusters) * (1 + (ld.nodes > 0 ? ld.nodes : 0));
    if (!server || (!ld.clusters && (!ld.token || !ld.cluster)) || !sum || ld.count <= 0 ||
        ld.rate <= 0 || ld.nodes < 0 || ld.report_secs < 0 || ld.churn < 0 ||
        ld.stats_secs <= 0 || ld.max_inflight < 0) {
        fprintf(stderr, "usage: loadagents --server URL[,URL...] (--token T --cluster C | "
                        "--clusters FILE [--nodes K] [--report SECS]) --ca-checksum SUM "
                        "[--count N] [--prefix P] [--rate R] [--hold SECS] "
                        "[--source-ips A-B] [--churn PER_SEC] [--stats SECS] "
                        "[--max-inflight N]\n");
        return 2;
    }
    log_init("loadagents", LOG_ERROR);
    signal(SIGPIPE, SIG_IGN);
    signal(SIGUSR1, on_usr1);
    srandom((unsigned)getpid());
    ld.loop = loop_new();
    if (!ld.loop || loop_stop_on_signals(ld.loop) < 0 || setup(&ld, server, sum) < 0)
        return 1;
    ld.start_ms = ld.last_stats_ms = ld.sec_start_ms = loop_now_ms(ld.loop);
    loop_timer_start(ld.loop, &ld.tick, 1, on_tick);
    loop_run(ld.loop);
    print_stats(&ld, (double)(loop_now_ms(ld.loop) - ld.start_ms) / 1000.0);
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
    for (int i = 0; i < ld.count; i++)
        free(ld.agents[i].headers);
    free(ld.agents);
    return 0;
}
