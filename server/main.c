/*
 * drover-server: settings, startup and shutdown. The work is done by the
 * modules in server/ and common/ on one event loop.
 */
#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <stddef.h>
#include <openssl/crypto.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/log.h"
#include "common/netaddr.h"
#include "common/url.h"
#include "server/audit.h"
#include "server/metrics.h"
#include "server/replica.h"
#include "server/server.h"

static const char *check_listen(const char *v)
{
    struct netaddr a;
    const char *why;
    return netaddr_parse(v, &a, &why) < 0 ? why : NULL;
}

static const char *check_url(const char *v)
{
    struct url u;
    const char *why;
    if (url_parse(v, &u, &why) < 0)
        return why;
    return strcmp(u.scheme, "https") == 0 ? NULL : "must be an https:// URL";
}

static const char *check_store(const char *v)
{
    if (strcmp(v, "sqlite") == 0 || strncmp(v, "postgres://", 11) == 0 ||
        strncmp(v, "postgresql://", 13) == 0)
        return NULL;
    return "must be sqlite or a postgres:// URL";
}

static const char *check_level(const char *v)
{
    enum log_level l;
    return log_parse_level(v, &l) < 0 ? "must be error, warn, info or debug" : NULL;
}

static const struct cfg_opt server_opts[] = {
    { "listen", "DROVER_LISTEN", CFG_STRING, "127.0.0.1:8443", 0, 0,
      "address and port to serve HTTPS on", check_listen },
    { "server-url", "DROVER_SERVER_URL", CFG_STRING, NULL, 0, 0,
      "URL agents dial and manifests embed (default https://<listen>)", check_url },
    { "data-dir", "DROVER_DATA_DIR", CFG_STRING, "./drover-data", 0, 0,
      "directory for the CA, certificates and state", NULL },
    { "tls-cert", "DROVER_TLS_CERT", CFG_STRING, NULL, 0, 0,
      "serving certificate chain (PEM); default: generated in data-dir", NULL },
    { "tls-key", "DROVER_TLS_KEY", CFG_STRING, NULL, 0, 0,
      "private key for tls-cert (PEM)", NULL },
    { "datastore", "DROVER_DATASTORE", CFG_STRING, "sqlite", 0, 0,
      "sqlite (in data-dir) or postgres://user:pass@host/db", check_store },
    { "ping-interval", "DROVER_PING_INTERVAL", CFG_DURATION, "5s", 100, 3600000,
      "keepalive ping interval on agent tunnels", NULL },
    { "dead-after", "DROVER_DEAD_AFTER", CFG_DURATION, "15s", 300, 86400000,
      "drop an agent silent for this long", NULL },
    { "stream-window", "DROVER_STREAM_WINDOW", CFG_SIZE, "256KiB", 65536, 16777216,
      "receive window granted to each tunnel stream (flow control)", NULL },
    { "tcp-relay", "DROVER_TCP_RELAY", CFG_STRING, NULL, 0, 0,
      "loopback relay ports: LISTEN=CLUSTER/HOST:PORT[,...]", relay_ports_check },
    { "peer-id", "DROVER_PEER_ID", CFG_STRING, NULL, 0, 0,
      "this replica's name among several (default: the host name)", replica_check_id },
    { "peer-advertise-url", "DROVER_PEER_ADVERTISE_URL", CFG_STRING, NULL, 0, 0,
      "https URL the other replicas reach this one at (default: server-url)", check_url },
    { "peer-token-file", "DROVER_PEER_TOKEN_FILE", CFG_STRING, NULL, 0, 0,
      "file with the replicas' shared secret; with a postgres datastore, turns "
      "replica mode on", NULL },
    { "log-level", "DROVER_LOG_LEVEL", CFG_STRING, "info", 0, 0,
      "error, warn, info or debug", check_level },
    { "audit-log", "DROVER_AUDIT_LOG", CFG_STRING, NULL, 0, 0,
      "audit trail (JSON lines) of API changes and kube requests: a file, or - for "
      "stderr; off by default; SIGHUP reopens it", NULL },
    { "head-timeout", "DROVER_HEAD_TIMEOUT", CFG_DURATION, "10s", 500, 300000,
      "time a client has for the TLS handshake and for each request head", NULL },
    { "max-conns-per-ip", "DROVER_MAX_CONNS_PER_IP", CFG_INT, "512", 0, 1000000,
      "connections one address may hold before a tunnel or proxy exchange "
      "takes them (0 = no limit)", NULL },
    { "max-connections", "DROVER_MAX_CONNECTIONS", CFG_INT, "0", 0, 10000000,
      "connections of the whole server (0 = the open-files limit less 256)", NULL },
    { "agent-max-streams", "DROVER_AGENT_MAX_STREAMS", CFG_INT, "64", 1, 65536,
      "streams one agent may have open that it opened itself", NULL },
    { "agent-max-queued", "DROVER_AGENT_MAX_QUEUED", CFG_SIZE, "4MiB", 1048576, 1073741824,
      "bytes queued toward one agent before it is dropped as not reading", NULL },
    { "debug-snapshot-minute", "DROVER_DEBUG_SNAPSHOT_MINUTE", CFG_DURATION, "1m", 100,
      3600000, "for tests only: how long one minute of etcdSnapshotSchedule.intervalMinutes "
      "lasts", NULL },
};
#define NOPTS (sizeof(server_opts) / sizeof(server_opts[0]))

static int usage_error(const char *msg)
{
    fprintf(stderr, "drover-server: %s\n", msg);
    return 2;
}

static int ensure_dir(const char *dir)
{
    if (mkdir(dir, 0700) == 0 || errno == EEXIST)
        return 0;
    log_error("cannot create data-dir %s: %s", dir, strerror(errno));
    return -1;
}

/*
 * The key that seals registration tokens comes from the CA key, which every
 * replica shares; with an operator's certificate there is no CA key of ours,
 * so the serving key stands in (replacing it then makes stored tokens
 * unreadable until rotated; lookups by hash keep working).
 */
static int setup_seal_key(struct server *s, struct auth_sealkey *out)
{
    char path[4096], err[512];
    snprintf(path, sizeof(path), "%s/ca.key", cfg_str(&s->cfg, "data-dir"));
    if (access(path, R_OK) != 0) {
        log_warn("no %s: registration tokens are sealed with the key of %s", path,
                 s->pki.key_file);
        snprintf(path, sizeof(path), "%s", s->pki.key_file);
    }
    if (auth_sealkey_from_pem_file(path, out, err, sizeof(err)) < 0) {
        log_error("registration token key: %s", err);
        return -1;
    }
    return 0;
}

/* Agents now present their cluster's registration token; the shared token
 * file of earlier versions is a credential nobody checks any more. */
static void remove_old_agent_token(const char *dir)
{
    char path[4096];
    snprintf(path, sizeof(path), "%s/agent-token", dir);
    if (unlink(path) == 0)
        log_info("removed %s: agents now use their cluster's registration token", path);
}

static int setup_tls(struct server *s, const struct netaddr *listen_addr)
{
    char err[512];
    const char *cert = cfg_str(&s->cfg, "tls-cert"), *key = cfg_str(&s->cfg, "tls-key");
    const char *dir = cfg_str(&s->cfg, "data-dir");
    if (cert || key) {
        if (!cert || !key) {
            log_error("tls-cert and tls-key must be given together");
            return -1;
        }
        if (tls_pki_from_files(cert, key, &s->pki, err, sizeof(err)) < 0) {
            log_error("%s", err);
            return -1;
        }
    } else {
        struct url u;
        const char *why;
        char listen_ip[64];
        netaddr_format(listen_addr, listen_ip, sizeof(listen_ip));
        *strrchr(listen_ip, ':') = '\0';
        const char *hosts[3] = { listen_ip, NULL, NULL };
        char adv[300];
        size_t nh = 1;
        if (listen_ip[0] == '[') {
            memmove(listen_ip, listen_ip + 1, strlen(listen_ip));
            listen_ip[strlen(listen_ip) - 1] = '\0';
        }
        if (url_parse(s->server_url, &u, &why) == 0)
            hosts[nh++] = u.host;
        if (replica_tls_host(s, adv, sizeof(adv)))
            hosts[nh++] = adv;
        if (tls_pki_ensure(dir, hosts, nh, &s->pki, err, sizeof(err)) < 0) {
            log_error("%s", err);
            return -1;
        }
    }
    s->tls = tls_server_ctx(s->pki.cert_file, s->pki.key_file, err, sizeof(err));
    if (!s->tls) {
        log_error("TLS setup: %s", err);
        return -1;
    }
    return 0;
}

/* Raises the open-files limit to its hard maximum (every tunnel is a
 * descriptor) and returns the connection cap: max-connections, or the limit
 * less headroom for the datastore, logs and the loop's own descriptors. */
static size_t connection_cap(struct server *s)
{
    struct rlimit rl;
    int64_t set = cfg_int(&s->cfg, "max-connections");
    if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
        return (size_t)set;
    if (rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
        getrlimit(RLIMIT_NOFILE, &rl);
    }
    if (set > 0)
        return (size_t)set;
    return rl.rlim_cur > 512 ? (size_t)(rl.rlim_cur - 256) : (size_t)(rl.rlim_cur / 2);
}

static void on_answered(const struct hs_req *r, int status, uint64_t usec, void *ud)
{
    (void)r;
    (void)ud;
    metrics_request(status, usec);
}

/* Idle tunnels are many small long-lived objects between the holes that
 * handshakes and bursts leave in the heap; give those pages back now and
 * then so the resident size reflects what is really in use. */
static void on_trim(struct loop_timer *t)
{
    struct server *s = (struct server *)((char *)t - offsetof(struct server, trim));
    malloc_trim(0);
    loop_timer_start(s->loop, &s->trim, 10000, on_trim);
}

/* What the last run left unfinished is marked as such: snapshots and
 * their schedules may be served now. */
static void on_snapshots_recovered(void *ud)
{
    struct server *s = ud;
    if (!s->pool)
        return;
    snapapi_set_pool(s->snapapi, s->pool);
    snapschedule_set_pool(s->snapsched, s->pool);
    s->serving = true;
}

static void on_store_ready(void *ud, struct db_pool *pool)
{
    struct server *s = ud;
    s->ls = linkstate_new(s->loop, pool);
    if (!s->ls)
        log_warn("out of memory: cluster link state will not be recorded");
    tunnels_set_store(s->tunnels, pool, s->ls);
    reports_set_pool(s->reports, pool);
    rbacpush_set_pool(s->rbac, pool);
    api_set_pool(s->api, pool);
    upgrades_set_pool(s->upgrades, pool);
    s->pool = pool;
    replica_store_ready(s, pool);
    snapshots_set_pool(s->snaps, pool, on_snapshots_recovered, s);
}

static void on_store_fatal(void *ud)
{
    struct server *s = ud;
    s->fatal = true;
    loop_stop(s->loop);
}

static void on_cluster_deleted(void *ud, const char *cluster)
{
    struct server *s = ud;
    tunnels_drop_cluster(s->tunnels, cluster);
}

static void on_membership_changed(void *ud, const char *cluster)
{
    struct server *s = ud;
    if (s->rbac)
        rbacpush_changed(s->rbac, cluster);
    if (s->peers)
        peers_rbac_changed(s->peers, cluster);
}

static bool node_connected(void *ud, const char *cluster, const char *node)
{
    struct server *s = ud;
    /* Here or on another replica (several replicas). */
    return s->tunnels && tunnels_find_node_anywhere(s->tunnels, cluster, node, NULL, NULL, 0);
}

static bool on_agent_stream(void *ud, const char *cluster, struct tun_stream *st,
                            const char *service)
{
    struct server *s = ud;
    if (strcmp(service, REPORTS_SERVICE) != 0)
        return false;
    reports_accept(s->reports, st, cluster);
    return true;
}

static void on_cluster_up(void *ud, const char *cluster)
{
    struct server *s = ud;
    rbacpush_tunnel_up(s->rbac, cluster);
}

static void on_snapshot_finished(void *ud, const char *cluster, const char *sid,
                                 bool scheduled, bool ok)
{
    struct server *s = ud;
    (void)sid;
    (void)ok;
    snapschedule_finished(s->snapsched, cluster, scheduled);
}

/* The services agents' tunnels carry besides the proxy: reports in, RBAC
 * out, and the node tasks (snapshots, upgrades). */
static int start_services(struct server *s)
{
    s->reports = reports_new(s->loop, s->tunnels);
    s->rbac = rbacpush_new(s->loop, s->tunnels);
    s->snaps = snapshots_new(s->loop, s->tunnels);
    s->upgrades = upgrades_new(s->loop, s->tunnels);
    s->snapsched = s->snaps ? snapschedule_new(s->loop, s->snaps,
                                               cfg_duration_ms(&s->cfg, "debug-snapshot-minute"))
                            : NULL;
    s->snapapi = snapapi_new(s->loop, s->snaps, s->upgrades);
    if (s->snaps)
        snapshots_on_finished(s->snaps, on_snapshot_finished, s);
    /* With several replicas the controllers lease decides (replica.c); none
     * runs schedules before it is won. */
    if (s->snapsched && s->peer_token)
        snapschedule_set_leader(s->snapsched, false);
    if (s->peer_token && s->snaps && s->upgrades) {
        snapshots_set_replica(s->snaps, s->peer_id);
        upgrades_set_replica(s->upgrades, s->peer_id);
    }
    if (!s->reports || !s->rbac || !s->snaps || !s->upgrades || !s->snapsched || !s->snapapi) {
        log_error("out of memory");
        return -1;
    }
    struct tunnels_hooks h = { .on_stream = on_agent_stream, .on_cluster_up = on_cluster_up,
                               .ud = s };
    tunnels_set_hooks(s->tunnels, &h);
    return 0;
}

static int start_api(struct server *s)
{
    struct api_cfg ac = { .server_url = s->server_url, .ca_checksum = s->pki.checksum,
                          .ca_pem = s->pki.ca_pem,
                          .on_cluster_deleted = on_cluster_deleted,
                          .on_membership_changed = on_membership_changed,
                          .node_connected = node_connected, .ud = s };
    if (setup_seal_key(s, &ac.seal) < 0)
        return -1;
    s->api = api_new(s->loop, &ac);
    OPENSSL_cleanse(&ac.seal, sizeof(ac.seal));
    if (!s->api) {
        log_error("out of memory");
        return -1;
    }
    return 0;
}

static int start_audit(struct server *s)
{
    char err[600];
    const char *target = cfg_str(&s->cfg, "audit-log");
    if (audit_open(target, err, sizeof(err)) < 0) {
        log_error("audit-log: %s", err);
        return -1;
    }
    if (target && target[0])
        log_info("audit log: %s", strcmp(target, "-") == 0 ? "stderr" : target);
    return 0;
}

static int start(struct server *s)
{
    const char *why;
    struct netaddr la;
    netaddr_parse(cfg_str(&s->cfg, "listen"), &la, &why);
    const char *url = cfg_str(&s->cfg, "server-url");
    char hp[80];
    netaddr_format(&la, hp, sizeof(hp));
    snprintf(s->server_url, sizeof(s->server_url), url ? "%s" : "https://%s", url ? url : hp);
    const char *dir = cfg_str(&s->cfg, "data-dir");
    if (ensure_dir(dir) < 0)
        return -1;
    int rc = replica_prepare(s);
    if (rc != 0)
        return rc > 0 ? -2 : -1;
    if (setup_tls(s, &la) < 0 || start_audit(s) < 0)
        return -1;
    remove_old_agent_token(dir);
    s->loop = loop_new();
    if (!s->loop || start_api(s) < 0)
        return -1;
    struct tunnels_cfg tc = {
        .tunnel = { .ping_interval_ms = cfg_duration_ms(&s->cfg, "ping-interval"),
                    .dead_after_ms = cfg_duration_ms(&s->cfg, "dead-after"),
                    .window = (uint32_t)cfg_size(&s->cfg, "stream-window"),
                    .max_streams = (uint32_t)cfg_int(&s->cfg, "agent-max-streams") },
        .agent_max_queued = cfg_size(&s->cfg, "agent-max-queued"),
    };
    struct hs_cfg hc = { .on_answered = on_answered,
                         .head_timeout_ms = cfg_duration_ms(&s->cfg, "head-timeout"),
                         .max_conns_per_ip = (unsigned)cfg_int(&s->cfg, "max-conns-per-ip"),
                         .max_conns = connection_cap(s) };
    if (!(s->tunnels = tunnels_new(s->loop, &tc)) ||
        !(s->https = hs_new(s->loop, s->tls, &hc, server_dispatch, s))) {
        log_error("out of memory");
        return -1;
    }
    if (start_services(s) < 0 || replica_start(s) < 0)
        return -1;
    if (hs_listen(s->https, &la, &why) < 0) {
        log_error("cannot listen on %s: %s", hp, why);
        return -1;
    }
    char err[300];
    s->relays = relay_ports_new(s->loop, s->tunnels, cfg_str(&s->cfg, "tcp-relay"),
                                err, sizeof(err));
    if (!s->relays) {
        log_error("%s", err);
        return -1;
    }
    struct datastore_cfg dc = { .datastore = cfg_str(&s->cfg, "datastore"), .data_dir = dir,
                                .on_ready = on_store_ready, .on_fatal = on_store_fatal,
                                .peer_id = s->peers ? s->peer_id : NULL, .ud = s };
    if (!(s->ds = datastore_start(s->loop, &dc)))
        return -1;
    log_info("drover-server %s listening on https://%s (server-url %s)", DROVER_VERSION,
             hp, s->server_url);
    log_info("CA checksum %s", s->pki.checksum);
    loop_timer_start(s->loop, &s->trim, 10000, on_trim);
    return 0;
}

static void on_flush_done(struct loop_timer *t)
{
    loop_stop(*(struct loop **)(t + 1));
}

/* Gives closing connections a moment to send their last frames. */
static void flush_briefly(struct loop *l)
{
    struct {
        struct loop_timer t;
        struct loop *l;
    } ft = { .l = l };
    loop_timer_start(l, &ft.t, 300, on_flush_done);
    loop_run(l);
    loop_timer_stop(l, &ft.t);
}

/*
 * The order matters: the pool goes first, while the HTTP server and the
 * tunnels still exist, so every request and agent check it still holds is
 * answered against live objects; nothing may reach the pool after that.
 */
static void shutdown_server(struct server *s)
{
    if (s->loop)
        loop_timer_stop(s->loop, &s->trim);
    relay_ports_free(s->relays);
    replica_stop(s);
    s->pool = NULL;
    if (s->reports)
        reports_set_pool(s->reports, NULL);
    if (s->rbac)
        rbacpush_set_pool(s->rbac, NULL);
    if (s->snaps)
        snapshots_set_pool(s->snaps, NULL, NULL, NULL);
    if (s->upgrades)
        upgrades_set_pool(s->upgrades, NULL);
    if (s->snapapi)
        snapapi_set_pool(s->snapapi, NULL);
    if (s->snapsched)
        snapschedule_set_pool(s->snapsched, NULL);
    datastore_free(s->ds);
    if (s->api)
        api_set_pool(s->api, NULL);
    if (s->tunnels)
        tunnels_set_store(s->tunnels, NULL, NULL);
    api_free(s->api);
    /* Before the tunnels: the peer links' spliced streams ride on them. */
    replica_free(s);
    /* Before the tunnels: they reset the streams they still hold. */
    snapapi_free(s->snapapi);
    snapschedule_free(s->snapsched);
    upgrades_free(s->upgrades);
    snapshots_free(s->snaps);
    tunnels_free(s->tunnels);
    /* After the tunnels: closing them ends the streams these still hold. */
    reports_free(s->reports);
    rbacpush_free(s->rbac);
    linkstate_free(s->ls);
    hs_free(s->https);
    if (s->loop) {
        flush_briefly(s->loop);
        conn_close_all();
        loop_free(s->loop);
    }
    if (s->tls)
        SSL_CTX_free(s->tls);
    tls_pki_free(&s->pki);
    audit_close();
    cfg_free(&s->cfg);
}

int main(int argc, char **argv)
{
    struct server s = { 0 };
    log_init("drover-server", LOG_INFO);
    int rc = cfg_load(&s.cfg, server_opts, NOPTS, "drover-server",
                      "the drover management server", argc, argv);
    if (rc != 0)
        return rc == 1 ? 0 : 2;
    enum log_level lvl;
    log_parse_level(cfg_str(&s.cfg, "log-level"), &lvl);
    log_set_level(lvl);
    if (cfg_duration_ms(&s.cfg, "dead-after") <= cfg_duration_ms(&s.cfg, "ping-interval"))
        return usage_error("invalid dead-after: must be longer than ping-interval");
    signal(SIGPIPE, SIG_IGN);
    int st = start(&s);
    if (st < 0) {
        shutdown_server(&s);
        return st == -2 ? 2 : 1;
    }
    if (loop_stop_on_signals(s.loop) < 0) {
        log_error("signalfd: %s", strerror(errno));
        shutdown_server(&s);
        return 1;
    }
    loop_run(s.loop);
    if (loop_stopped_by(s.loop))
        log_info("received %s, shutting down", strsignal(loop_stopped_by(s.loop)));
    bool fatal = s.fatal;
    shutdown_server(&s);
    log_info("stopped");
    return fatal ? 1 : 0;
}
