/*
 * replica: replica mode's start-up and shutdown. See replica.h.
 */
#include "server/replica.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/log.h"
#include "common/url.h"
#include "server/server.h"
#include "server/sharedca.h"
#include "server/nodedir.h"
#include "server/snapschedule.h"

#define CONTROLLERS_LEASE "controllers"
#define TOKEN_MIN 16

const char *replica_check_id(const char *v)
{
    size_t n = strlen(v);
    if (n == 0 || n > PEERS_ID_MAX)
        return "must be 1 to 63 characters";
    if (strspn(v, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-_") != n)
        return "may hold letters, digits, '.', '-' and '_' only";
    return NULL;
}

static bool postgres(const struct server *s)
{
    return strncmp(cfg_str(&s->cfg, "datastore"), "postgres", 8) == 0;
}

/* The token file's first line, trailing blanks cut. */
static int read_token(struct server *s, const char *path)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        log_error("peer-token-file %s: %s", path, strerror(errno));
        return -1;
    }
    char *b = calloc(1, PEERS_TOKEN_MAX + 2);
    ssize_t n = b ? read(fd, b, PEERS_TOKEN_MAX + 1) : -1;
    close(fd);
    if (n < 0 || n > PEERS_TOKEN_MAX) {
        log_error("peer-token-file %s: %s", path, n < 0 ? "cannot read it" :
                  "longer than 4096 bytes");
        free(b);
        return -1;
    }
    size_t len = strcspn(b, "\r\n");
    while (len > 0 && (b[len - 1] == ' ' || b[len - 1] == '\t'))
        len--;
    b[len] = '\0';
    if (len < TOKEN_MIN) {
        log_error("peer-token-file %s: the token must be at least %d characters", path,
                  TOKEN_MIN);
        OPENSSL_cleanse(b, PEERS_TOKEN_MAX + 2);
        free(b);
        return -1;
    }
    s->peer_token = b;
    s->peer_token_len = len;
    return 0;
}

int replica_prepare(struct server *s)
{
    const char *id = cfg_str(&s->cfg, "peer-id");
    const char *tf = cfg_str(&s->cfg, "peer-token-file");
    if (id) {
        snprintf(s->peer_id, sizeof(s->peer_id), "%s", id);
    } else if (gethostname(s->peer_id, sizeof(s->peer_id) - 1) < 0 ||
               replica_check_id(s->peer_id)) {
        snprintf(s->peer_id, sizeof(s->peer_id), "drover-server");
    }
    if (!tf)
        return 0;
    if (!postgres(s)) {
        log_error("peer-token-file needs a postgres:// datastore: replicas share "
                  "PostgreSQL, SQLite serves one server");
        return 2;
    }
    if (read_token(s, tf) < 0)
        return -1;
    if (cfg_str(&s->cfg, "tls-cert"))
        return 0;   /* the operator's certificate: every replica is given it */
    return sharedca_sync(cfg_str(&s->cfg, "datastore"), cfg_str(&s->cfg, "data-dir"),
                         s->peer_token, s->peer_token_len);
}

static const char *advertise_url(struct server *s)
{
    const char *u = cfg_str(&s->cfg, "peer-advertise-url");
    return u ? u : s->server_url;
}

const char *replica_tls_host(struct server *s, char *buf, size_t cap)
{
    struct url u;
    const char *why;
    if (!s->peer_token || url_parse(advertise_url(s), &u, &why) < 0)
        return NULL;
    snprintf(buf, cap, "%s", u.host);
    return buf;
}

static void on_controllers(void *ud, bool held)
{
    struct server *s = ud;
    if (s->peers)
        peers_set_controller(s->peers, held);
    /* The etcd snapshot schedules run on the holder only, so a schedule
     * fires once however many replicas serve. */
    if (s->snapsched)
        snapschedule_set_leader(s->snapsched, held);
}

static void on_rbac_changed(void *ud, const char *cluster)
{
    struct server *s = ud;
    if (s->rbac)
        rbacpush_changed(s->rbac, cluster);
}

/* The datastore answered a node agent's claim of a cluster's role. */
static void on_claim(void *ud, const char *cluster, const char *via, bool granted)
{
    struct server *s = ud;
    tunnels_claimed(s->tunnels, cluster, via, granted);
}

static uint64_t lease_ms(struct server *s)
{
    uint64_t d = cfg_duration_ms(&s->cfg, "dead-after");
    return d < 5000 ? 5000 : d > 60000 ? 60000 : d;
}

int replica_start(struct server *s)
{
    s->ctl = lease_new(s->loop, CONTROLLERS_LEASE, s->peer_id, lease_ms(s), on_controllers,
                       s);
    if (!s->ctl) {
        log_error("out of memory");
        return -1;
    }
    if (!s->peer_token)
        return 0;
    struct peers_cfg pc = {
        .id = s->peer_id, .advertise_url = advertise_url(s),
        .token = s->peer_token, .token_len = s->peer_token_len,
        .ca_pem = s->pki.ca_pem, .ca_len = s->pki.ca_pem_len,
        .tunnel = { .ping_interval_ms = cfg_duration_ms(&s->cfg, "ping-interval"),
                    .dead_after_ms = cfg_duration_ms(&s->cfg, "dead-after"),
                    .window = (uint32_t)cfg_size(&s->cfg, "stream-window") },
        .lease_ms = lease_ms(s),
        .on_rbac_changed = on_rbac_changed, .ud = s,
    };
    s->peers = peers_new(s->loop, s->tunnels, &pc);
    if (!s->peers)
        return -1;
    s->nodedir = nodedir_new(s->loop, s->tunnels, s->peers, s->peer_id);
    if (!s->nodedir) {
        log_error("out of memory");
        return -1;
    }
    log_info("replica %s: advertising %s to the other replicas", s->peer_id,
             pc.advertise_url);
    return 0;
}

void replica_store_ready(struct server *s, struct db_pool *pool)
{
    if (s->peers) {
        if (s->ls) {
            linkstate_set_replica(s->ls, s->peer_id);
            linkstate_set_claim_hook(s->ls, on_claim, s);
        }
        peers_set_pool(s->peers, pool);
        nodedir_set_pool(s->nodedir, pool);
    }
    if (s->ctl)
        lease_start(s->ctl, pool, s->peers != NULL);
}

void replica_stop(struct server *s)
{
    if (s->peers)
        peers_set_pool(s->peers, NULL);
    if (s->nodedir)
        nodedir_set_pool(s->nodedir, NULL);
    lease_stop(s->ctl);
}

void replica_free(struct server *s)
{
    if (s->peers)
        peers_leave(cfg_str(&s->cfg, "datastore"), cfg_str(&s->cfg, "data-dir"),
                    s->peer_id);
    nodedir_free(s->nodedir);
    s->nodedir = NULL;
    peers_free(s->peers);
    s->peers = NULL;
    lease_free(s->ctl);
    s->ctl = NULL;
    if (s->peer_token) {
        OPENSSL_cleanse(s->peer_token, s->peer_token_len);
        free(s->peer_token);
        s->peer_token = NULL;
    }
}
