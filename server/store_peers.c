/*
 * store_peers: SQL for replicas. See store_peers.h.
 */
#include "server/store_peers.h"

#include <stdlib.h>
#include <string.h>

#include "server/db_int.h"

/* A peer silent this long is forgotten with its rows (long after its lease
 * ran out, so a slow replica is not erased while it still comes back). */
#define FORGET_AFTER_MS (10 * 60 * 1000)

int store_peer_heartbeat(struct db *db, const char *id, const char *url, int64_t now,
                         int64_t expires_at)
{
    return db_execp(db, "INSERT INTO peers (id, advertise_url, started_at, expires_at) "
                    "VALUES (?, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET "
                    "advertise_url = excluded.advertise_url, "
                    "expires_at = excluded.expires_at",
                    DB_ARGS(DB_TEXT(id), DB_TEXT(url), DB_INT(now), DB_INT(expires_at)),
                    NULL);
}

static int leave_tx(struct db *db, void *arg)
{
    const char *id = arg;
    int rc = db_execp(db, "DELETE FROM peer_tunnels WHERE peer_id = ?",
                      DB_ARGS(DB_TEXT(id)), NULL);
    if (rc == 0)
        rc = db_execp(db, "UPDATE peers SET expires_at = 0 WHERE id = ?",
                      DB_ARGS(DB_TEXT(id)), NULL);
    if (rc == 0)
        rc = db_execp(db, "UPDATE leases SET expires_at = 0 WHERE holder = ?",
                      DB_ARGS(DB_TEXT(id)), NULL);
    return rc;
}

int store_peer_leave(struct db *db, const char *id)
{
    return db_tx(db, leave_tx, (void *)id);
}

int store_peers_live(struct db *db, int64_t now,
                     int (*fn)(void *ud, const char *id, const char *url), void *ud)
{
    struct db_stmt *st;
    int rc = db_query(db, "SELECT id, advertise_url FROM peers WHERE expires_at > ? "
                      "ORDER BY id", DB_ARGS(DB_INT(now)), &st);
    if (rc < 0)
        return rc;
    while ((rc = db_step(st)) == DB_ROW)
        if ((rc = fn(ud, db_col_text(st, 0), db_col_text(st, 1))) < 0)
            break;
    db_finalize(st);
    return rc < 0 ? rc : 0;
}

int store_peer_owners(struct db *db, int64_t now,
                      int (*fn)(void *ud, const char *cluster, const char *peer,
                                const char *kind), void *ud)
{
    struct db_stmt *st;
    int rc = db_query(db, "SELECT t.cluster_id, t.peer_id, t.kind FROM peer_tunnels t "
                      "JOIN peers p ON p.id = t.peer_id WHERE p.expires_at > ? "
                      "ORDER BY t.cluster_id, "
                      "CASE WHEN t.kind = 'cluster-agent' THEN 0 ELSE 1 END, "
                      "t.since DESC", DB_ARGS(DB_INT(now)), &st);
    if (rc < 0)
        return rc;
    while ((rc = db_step(st)) == DB_ROW)
        if ((rc = fn(ud, db_col_text(st, 0), db_col_text(st, 1), db_col_text(st, 2))) < 0)
            break;
    db_finalize(st);
    return rc < 0 ? rc : 0;
}

struct set_link {
    const char *me, *cluster, *via;
    int64_t since, now;
    bool written;
};

/* The rows of live replicas other than me for cluster: how many, and how
 * many of those are cluster-agent links. */
static int held_elsewhere(struct db *db, const char *me, const char *cluster, int64_t now,
                          int64_t *any, int64_t *agents)
{
    int rc = db_query_int64(db, "SELECT COUNT(*) FROM peer_tunnels t JOIN peers p "
                            "ON p.id = t.peer_id WHERE t.cluster_id = ? AND "
                            "t.peer_id <> ? AND p.expires_at > ?",
                            DB_ARGS(DB_TEXT(cluster), DB_TEXT(me), DB_INT(now)), any);
    if (rc == 0)
        rc = db_query_int64(db, "SELECT COUNT(*) FROM peer_tunnels t JOIN peers p "
                            "ON p.id = t.peer_id WHERE t.cluster_id = ? AND "
                            "t.peer_id <> ? AND t.kind = 'cluster-agent' AND "
                            "p.expires_at > ?",
                            DB_ARGS(DB_TEXT(cluster), DB_TEXT(me), DB_INT(now)), agents);
    return rc;
}

static int drop_mine(struct db *db, const struct set_link *s)
{
    return db_execp(db, "DELETE FROM peer_tunnels WHERE cluster_id = ? AND peer_id = ?",
                    DB_ARGS(DB_TEXT(s->cluster), DB_TEXT(s->me)), NULL);
}

static int write_state(struct db *db, struct set_link *s)
{
    const char *state = !s->via ? "disconnected"
                        : strncmp(s->via, "node/", 5) == 0 ? "degraded" : "active";
    int rc = db_execp(db, "UPDATE clusters SET state = ?, connection_via = ?, "
                      "connection_since = ?, last_seen = ? WHERE id = ?",
                      DB_ARGS(DB_TEXT(state), s->via ? DB_TEXT(s->via) : DB_NULL,
                              DB_INT(s->since), DB_INT(s->now), DB_TEXT(s->cluster)), NULL);
    s->written = rc == 0;
    return rc;
}

/* My link went: drop my row. The state follows whoever still holds the
 * cluster: nobody (disconnected), another replica's cluster agent (active
 * via cluster-agent, put back if a stand-in's write landed over it), or
 * another replica's acting node agent (its own write set the state). */
static int link_down(struct db *db, struct set_link *s)
{
    int64_t any = 0, agents = 0;
    int rc = drop_mine(db, s);
    if (rc == 0)
        rc = held_elsewhere(db, s->me, s->cluster, s->now, &any, &agents);
    if (rc < 0)
        return rc;
    if (any == 0)
        return write_state(db, s);
    if (agents == 0)
        return 0;
    return db_execp(db, "UPDATE clusters SET state = 'active', "
                    "connection_via = 'cluster-agent', connection_since = "
                    "(SELECT MAX(since) FROM peer_tunnels WHERE cluster_id = ? AND "
                    "kind = 'cluster-agent') WHERE id = ? AND "
                    "(connection_via IS NULL OR connection_via <> 'cluster-agent')",
                    DB_ARGS(DB_TEXT(s->cluster), DB_TEXT(s->cluster)), NULL);
}

/* One of my node agents claims the cluster role: granted only while no
 * other live replica holds a link to the cluster (a cluster agent, or a
 * node agent acting already). Otherwise my row goes and the state is left
 * to the holder. */
static int link_claim(struct db *db, struct set_link *s)
{
    int64_t any = 0, agents = 0;
    int rc = held_elsewhere(db, s->me, s->cluster, s->now, &any, &agents);
    if (rc < 0)
        return rc;
    if (any > 0)
        return drop_mine(db, s);
    rc = db_execp(db, "INSERT INTO peer_tunnels (cluster_id, peer_id, kind, since) "
                  "VALUES (?, ?, 'node', ?) ON CONFLICT (cluster_id, peer_id) DO UPDATE "
                  "SET kind = excluded.kind, since = excluded.since",
                  DB_ARGS(DB_TEXT(s->cluster), DB_TEXT(s->me), DB_INT(s->since)), NULL);
    return rc < 0 ? rc : write_state(db, s);
}

/* A cluster agent always takes the link (a stand-in elsewhere steps down
 * when its replica sees this row). */
static int link_agent(struct db *db, struct set_link *s)
{
    int rc = db_execp(db, "INSERT INTO peer_tunnels (cluster_id, peer_id, kind, since) "
                      "VALUES (?, ?, 'cluster-agent', ?) ON CONFLICT (cluster_id, peer_id) "
                      "DO UPDATE SET kind = excluded.kind, since = excluded.since",
                      DB_ARGS(DB_TEXT(s->cluster), DB_TEXT(s->me), DB_INT(s->since)), NULL);
    return rc < 0 ? rc : write_state(db, s);
}

static int set_link_tx(struct db *db, void *arg)
{
    struct set_link *s = arg;
    s->written = false;
    /* Every link write of a cluster first writes its row: on PostgreSQL two
     * replicas' writes for one cluster conflict there, so one of them
     * retries (db_tx) and sees what the other committed. That makes the
     * stand-in claim below an atomic check-and-insert. */
    int64_t found = 0;
    int rc = db_execp(db, "UPDATE clusters SET last_seen = last_seen WHERE id = ?",
                      DB_ARGS(DB_TEXT(s->cluster)), &found);
    if (rc < 0 || found == 0)
        return rc;      /* the cluster was deleted meanwhile */
    if (!s->via)
        rc = link_down(db, s);
    else if (strncmp(s->via, "node/", 5) == 0)
        rc = link_claim(db, s);
    else
        rc = link_agent(db, s);
    return rc;
}

int store_peer_set_link(struct db *db, const char *me, const char *cluster,
                        const char *via, int64_t since, int64_t now, bool *written)
{
    struct set_link s = { .me = me, .cluster = cluster, .via = via, .since = since,
                          .now = now };
    int rc = db_tx(db, set_link_tx, &s);
    if (written)
        *written = rc == 0 && s.written;
    return rc;
}

#define ORPHANS "state IN ('active', 'degraded') AND NOT EXISTS (" \
    "SELECT 1 FROM peer_tunnels t JOIN peers p ON p.id = t.peer_id " \
    "WHERE t.cluster_id = clusters.id AND p.expires_at > ?)"

static int mark_orphans(struct db *db, int64_t now, int64_t *changed)
{
    return db_execp(db, "UPDATE clusters SET state = 'disconnected', "
                    "connection_via = NULL, connection_since = ? WHERE " ORPHANS,
                    DB_ARGS(DB_INT(now), DB_INT(now)), changed);
}

struct reset {
    const char *me;
    int64_t now, changed;
};

static int reset_tx(struct db *db, void *arg)
{
    struct reset *r = arg;
    int rc = db_execp(db, "DELETE FROM peer_tunnels WHERE peer_id = ?",
                      DB_ARGS(DB_TEXT(r->me)), NULL);
    return rc < 0 ? rc : mark_orphans(db, r->now, &r->changed);
}

int store_peer_reset_links(struct db *db, const char *me, int64_t now, int64_t *changed)
{
    struct reset r = { .me = me, .now = now };
    int rc = db_tx(db, reset_tx, &r);
    if (changed)
        *changed = r.changed;
    return rc;
}

static int reap_tx(struct db *db, void *arg)
{
    struct reset *r = arg;
    int64_t gone = r->now - FORGET_AFTER_MS;
    int rc = db_execp(db, "DELETE FROM peer_tunnels WHERE peer_id IN "
                      "(SELECT id FROM peers WHERE expires_at < ?)",
                      DB_ARGS(DB_INT(gone)), NULL);
    if (rc == 0)
        rc = db_execp(db, "DELETE FROM peers WHERE expires_at < ?",
                      DB_ARGS(DB_INT(gone)), NULL);
    return rc < 0 ? rc : mark_orphans(db, r->now, &r->changed);
}

int store_peer_reap(struct db *db, int64_t now, int64_t *changed)
{
    struct reset r = { .now = now };
    int rc = db_tx(db, reap_tx, &r);
    if (changed)
        *changed = r.changed;
    return rc;
}

/* ---- controller leases ---- */

int store_lease_acquire(struct db *db, const char *name, const char *holder,
                        int64_t now, int64_t expires_at, bool *held)
{
    *held = false;
    int64_t changes = 0;
    int rc = db_execp(db, "INSERT INTO leases (name, holder, expires_at) VALUES (?, ?, ?) "
                      "ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, "
                      "expires_at = excluded.expires_at "
                      "WHERE leases.holder = excluded.holder OR leases.expires_at <= ?",
                      DB_ARGS(DB_TEXT(name), DB_TEXT(holder), DB_INT(expires_at),
                              DB_INT(now)), &changes);
    *held = rc == 0 && changes > 0;
    return rc;
}

int store_lease_release(struct db *db, const char *name, const char *holder)
{
    return db_execp(db, "UPDATE leases SET expires_at = 0 WHERE name = ? AND holder = ?",
                    DB_ARGS(DB_TEXT(name), DB_TEXT(holder)), NULL);
}

/* ---- shared CA ---- */

int store_shared_ca_get(struct db *db, char **cert_pem, char **key_pem)
{
    struct db_stmt *st;
    *cert_pem = *key_pem = NULL;
    int rc = db_query(db, "SELECT cert_pem, key_pem FROM shared_ca WHERE id = 1", NULL, 0,
                      &st);
    if (rc < 0)
        return rc;
    rc = db_step(st);
    if (rc == DB_ROW) {
        *cert_pem = strdup(db_col_text(st, 0) ? db_col_text(st, 0) : "");
        *key_pem = strdup(db_col_text(st, 1) ? db_col_text(st, 1) : "");
        rc = *cert_pem && *key_pem ? 0 : DB_ERROR;
    } else if (rc == DB_DONE) {
        rc = DB_NOTFOUND;
    }
    db_finalize(st);
    if (rc < 0) {
        free(*cert_pem);
        free(*key_pem);
        *cert_pem = *key_pem = NULL;
    }
    return rc;
}

int store_shared_ca_put(struct db *db, const char *cert_pem, const char *key_pem,
                        int64_t now)
{
    return db_execp(db, "INSERT INTO shared_ca (id, cert_pem, key_pem, created_at) "
                    "VALUES (1, ?, ?, ?) ON CONFLICT (id) DO NOTHING",
                    DB_ARGS(DB_TEXT(cert_pem), DB_TEXT(key_pem), DB_INT(now)), NULL);
}

/* ---- node agents per replica ---- */

struct node_put {
    const char *me;
    const struct store_node_agent *rows;
    size_t n;
};

static int node_put_tx(struct db *db, void *arg)
{
    struct node_put *np = arg;
    int rc = db_execp(db, "DELETE FROM peer_node_agents WHERE peer_id = ? OR peer_id NOT IN "
                      "(SELECT id FROM peers)", DB_ARGS(DB_TEXT(np->me)), NULL);
    for (size_t i = 0; rc == 0 && i < np->n; i++)
        rc = db_execp(db, "INSERT INTO peer_node_agents (peer_id, cluster_id, node, roles) "
                      "VALUES (?, ?, ?, ?) ON CONFLICT (peer_id, cluster_id, node) DO NOTHING",
                      DB_ARGS(DB_TEXT(np->me), DB_TEXT(np->rows[i].cluster),
                              DB_TEXT(np->rows[i].node), DB_TEXT(np->rows[i].roles)), NULL);
    return rc;
}

int store_peer_put_node_agents(struct db *db, const char *me,
                               const struct store_node_agent *rows, size_t n)
{
    struct node_put np = { me, rows, n };
    return db_tx(db, node_put_tx, &np);
}

int store_peer_node_agents(struct db *db, const char *me, int64_t now,
                           int (*fn)(void *ud, const struct store_node_agent *a), void *ud)
{
    struct db_stmt *st;
    int rc = db_query(db, "SELECT n.cluster_id, n.node, n.roles, n.peer_id FROM "
                      "peer_node_agents n JOIN peers p ON p.id = n.peer_id WHERE "
                      "p.expires_at > ? AND n.peer_id <> ? "
                      "ORDER BY n.cluster_id, n.node, n.peer_id",
                      DB_ARGS(DB_INT(now), DB_TEXT(me)), &st);
    if (rc < 0)
        return rc;
    while ((rc = db_step(st)) == DB_ROW) {
        struct store_node_agent a = { .cluster = db_col_text(st, 0), .node = db_col_text(st, 1),
                                      .roles = db_col_text(st, 2), .peer = db_col_text(st, 3) };
        if ((rc = fn(ud, &a)) < 0)
            break;
    }
    db_finalize(st);
    return rc < 0 ? rc : 0;
}
