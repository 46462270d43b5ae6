/*
 * db_migrate: the compiled-in schema history. See db_migrate.h.
 *
 * SQL is written once where the dialects agree. Where they do not (serial
 * keys, BLOB vs BYTEA) a step carries both texts side by side. Conventions:
 * timestamps are BIGINT unix milliseconds, booleans INTEGER 0/1, JSON
 * documents TEXT, ids TEXT made by the application (c-4f2a9) except the
 * event sequence, which the database numbers so ?since= has an order.
 *
 * Never edit a released migration: add a new version.
 */
#include "server/db_migrate.h"

#include <stdio.h>
#include <time.h>

#include "common/log.h"
#include "server/db_int.h"

/* "drover" in ASCII: the advisory lock every replica's migrator takes. */
#define MIGRATE_LOCK_KEY INT64_C(0x64726f766572)

struct mig_step {
    const char *both;       /* or, when the dialects differ: */
    const char *sqlite;
    const char *pg;
};

struct migration {
    int64_t version;
    const char *name;
    const struct mig_step *steps;
    size_t nsteps;
};

#define BOTH(s)             { .both = (s) }
#define SPLIT(lite, postg)  { .sqlite = (lite), .pg = (postg) }

#define V1_EVENT_COLS \
    "cluster_id TEXT NOT NULL REFERENCES clusters(id) ON DELETE CASCADE, " \
    "created_at BIGINT NOT NULL, " \
    "type TEXT NOT NULL, " \
    "reason TEXT NOT NULL, " \
    "message TEXT NOT NULL, " \
    "object TEXT"

static const struct mig_step v1_steps[] = {
    BOTH("CREATE TABLE users ("
         "id TEXT PRIMARY KEY, "
         "username TEXT NOT NULL UNIQUE, "
         "password_hash TEXT NOT NULL, "
         "is_admin INTEGER NOT NULL DEFAULT 0 CHECK (is_admin IN (0, 1)), "
         "created_at BIGINT NOT NULL)"),
    BOTH("CREATE TABLE api_tokens ("
         "id TEXT PRIMARY KEY, "
         "user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE, "
         "token_hash TEXT NOT NULL UNIQUE, "
         "created_at BIGINT NOT NULL, "
         "expires_at BIGINT, "
         "last_used_at BIGINT)"),
    /* The cascade from users scans api_tokens by user_id. */
    BOTH("CREATE INDEX api_tokens_user_id ON api_tokens (user_id)"),
    BOTH("CREATE TABLE clusters ("
         "id TEXT PRIMARY KEY, "
         "name TEXT NOT NULL UNIQUE, "
         "created_at BIGINT NOT NULL, "
         "updated_at BIGINT NOT NULL, "
         "registration_token_hash TEXT NOT NULL UNIQUE, "
         "registration_token_created_at BIGINT NOT NULL, "
         "etcd_snapshot_interval_minutes BIGINT NOT NULL DEFAULT 720 "
         "CHECK (etcd_snapshot_interval_minutes >= 0), "
         "etcd_snapshot_retention BIGINT NOT NULL DEFAULT 5 "
         "CHECK (etcd_snapshot_retention >= 0), "
         "state TEXT NOT NULL DEFAULT 'pending' CHECK (state IN "
         "('pending', 'active', 'degraded', 'disconnected')), "
         "kubernetes_version TEXT, "
         "node_count BIGINT NOT NULL DEFAULT 0, "
         "capacity_json TEXT NOT NULL DEFAULT '{}', "
         "conditions_json TEXT NOT NULL DEFAULT '[]', "
         "last_seen BIGINT, "
         "connection_via TEXT, "
         "connection_since BIGINT)"),
    BOTH("CREATE TABLE cluster_members ("
         "cluster_id TEXT NOT NULL REFERENCES clusters(id) ON DELETE CASCADE, "
         "user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE, "
         "role TEXT NOT NULL CHECK (role IN ('owner', 'member', 'viewer')), "
         "PRIMARY KEY (cluster_id, user_id))"),
    /* "Which clusters may this user see", and the cascade from users. */
    BOTH("CREATE INDEX cluster_members_user_id ON cluster_members (user_id)"),
    BOTH("CREATE TABLE nodes ("
         "cluster_id TEXT NOT NULL REFERENCES clusters(id) ON DELETE CASCADE, "
         "name TEXT NOT NULL, "
         "roles TEXT NOT NULL DEFAULT '', "
         "kubelet_version TEXT, "
         "ready INTEGER NOT NULL DEFAULT 0 CHECK (ready IN (0, 1)), "
         "addresses_json TEXT NOT NULL DEFAULT '[]', "
         "capacity_json TEXT NOT NULL DEFAULT '{}', "
         "allocatable_json TEXT NOT NULL DEFAULT '{}', "
         "agent_connected INTEGER NOT NULL DEFAULT 0 "
         "CHECK (agent_connected IN (0, 1)), "
         "updated_at BIGINT NOT NULL, "
         "PRIMARY KEY (cluster_id, name))"),
    /* AUTOINCREMENT: SQLite must never reuse the id of a pruned event, or a
     * client polling ?since= would skip the new one. */
    SPLIT("CREATE TABLE events (id INTEGER PRIMARY KEY AUTOINCREMENT, "
          V1_EVENT_COLS ")",
          "CREATE TABLE events (id BIGSERIAL PRIMARY KEY, "
          V1_EVENT_COLS ")"),
    BOTH("CREATE INDEX events_cluster_id ON events (cluster_id, id)"),
};

/* The registration token itself, sealed (AES-256-GCM under a key derived
 * from the CA key) so owners can read it again; lookups still go through
 * registration_token_hash. NULL for rows whose token cannot be recovered. */
static const struct mig_step v2_steps[] = {
    BOTH("ALTER TABLE clusters ADD COLUMN registration_token_sealed TEXT"),
};

/* Every report asks "is this event stored already?" for each of its
 * events; without this it scans the cluster's events each time. */
static const struct mig_step v3_steps[] = {
    BOTH("CREATE INDEX events_dedupe ON events (cluster_id, object, reason, created_at)"),
};

/* etcd snapshots, kept in the datastore in chunks so every replica can
 * serve one and it outlives the node it came from; and each cluster's last
 * upgrade rollout (a JSON document, rewritten as it progresses). The ids
 * start with the creation time in hex, so id order is creation order. */
static const struct mig_step v4_steps[] = {
    BOTH("CREATE TABLE etcd_snapshots ("
         "id TEXT PRIMARY KEY, "
         "cluster_id TEXT NOT NULL REFERENCES clusters(id) ON DELETE CASCADE, "
         "node TEXT NOT NULL, "
         "state TEXT NOT NULL CHECK (state IN ('pending', 'running', 'done', 'failed')), "
         "scheduled INTEGER NOT NULL DEFAULT 0 CHECK (scheduled IN (0, 1)), "
         "size BIGINT, "
         "sha256 TEXT, "
         "created_at BIGINT NOT NULL, "
         "finished_at BIGINT, "
         "error TEXT, "
         "restore_json TEXT, "
         /* the replica running the snapshot or its last restore */
         "runner TEXT)"),
    BOTH("CREATE INDEX etcd_snapshots_cluster ON etcd_snapshots (cluster_id, id)"),
    SPLIT("CREATE TABLE etcd_snapshot_chunks ("
          "snapshot_id TEXT NOT NULL REFERENCES etcd_snapshots(id) ON DELETE CASCADE, "
          "seq BIGINT NOT NULL, "
          "data BLOB NOT NULL, "
          "PRIMARY KEY (snapshot_id, seq))",
          "CREATE TABLE etcd_snapshot_chunks ("
          "snapshot_id TEXT NOT NULL REFERENCES etcd_snapshots(id) ON DELETE CASCADE, "
          "seq BIGINT NOT NULL, "
          "data BYTEA NOT NULL, "
          "PRIMARY KEY (snapshot_id, seq))"),
    BOTH("CREATE TABLE cluster_upgrades ("
         "cluster_id TEXT PRIMARY KEY REFERENCES clusters(id) ON DELETE CASCADE, "
         "doc TEXT NOT NULL, "
         "updated_at BIGINT NOT NULL, "
         "runner TEXT)"),
};

/* Several replicas on one PostgreSQL (docs/REPLICAS.md): who is alive
 * (peers, each row a lease its replica renews), which replica holds each
 * cluster's tunnel (valid while the holder's own lease is), named controller
 * leases, and the CA every replica serves. */
static const struct mig_step v5_steps[] = {
    BOTH("CREATE TABLE peers ("
         "id TEXT PRIMARY KEY, "
         "advertise_url TEXT NOT NULL, "
         "started_at BIGINT NOT NULL, "
         "expires_at BIGINT NOT NULL)"),
    BOTH("CREATE TABLE peer_tunnels ("
         "cluster_id TEXT NOT NULL REFERENCES clusters(id) ON DELETE CASCADE, "
         "peer_id TEXT NOT NULL, "
         "kind TEXT NOT NULL CHECK (kind IN ('cluster-agent', 'node')), "
         "since BIGINT NOT NULL, "
         "PRIMARY KEY (cluster_id, peer_id))"),
    BOTH("CREATE INDEX peer_tunnels_peer_id ON peer_tunnels (peer_id)"),
    /* every node agent each replica holds (rewritten by its holder when the
     * set changes; valid while the holder's lease is), so node tasks reach
     * node agents on other replicas */
    BOTH("CREATE TABLE peer_node_agents ("
         "peer_id TEXT NOT NULL, "
         "cluster_id TEXT NOT NULL, "
         "node TEXT NOT NULL, "
         "roles TEXT NOT NULL, "
         "PRIMARY KEY (peer_id, cluster_id, node))"),
    BOTH("CREATE TABLE leases ("
         "name TEXT PRIMARY KEY, "
         "holder TEXT NOT NULL, "
         "expires_at BIGINT NOT NULL)"),
    BOTH("CREATE TABLE shared_ca ("
         "id INTEGER PRIMARY KEY CHECK (id = 1), "
         "cert_pem TEXT NOT NULL, "
         "key_pem TEXT NOT NULL, "
         "created_at BIGINT NOT NULL)"),
};

/* A user's clusters in id order straight from the index, so a page of
 * GET /v3/clusters reads its rows rather than sorting every membership. */
static const struct mig_step v6_steps[] = {
    BOTH("CREATE INDEX cluster_members_user_cluster "
         "ON cluster_members (user_id, cluster_id)"),
    BOTH("DROP INDEX cluster_members_user_id"),
};

#define STEPS(a) (a), (sizeof(a) / sizeof((a)[0]))

static const struct migration migrations[] = {
    { 1, "initial schema", STEPS(v1_steps) },
    { 2, "sealed registration tokens", STEPS(v2_steps) },
    { 3, "event dedupe index", STEPS(v3_steps) },
    { 4, "etcd snapshots and upgrades", STEPS(v4_steps) },
    { 5, "replicas: peers, tunnel owners, leases, shared CA", STEPS(v5_steps) },
    { 6, "members by user in cluster order", STEPS(v6_steps) },
};

#define NMIGRATIONS (sizeof(migrations) / sizeof(migrations[0]))

size_t db_migrate_count(void)
{
    return NMIGRATIONS;
}

int64_t db_migrate_latest(void)
{
    return migrations[NMIGRATIONS - 1].version;
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int take_lock(struct db *db)
{
    if (db_backend(db) != DB_POSTGRES)
        return DB_OK;     /* BEGIN IMMEDIATE already holds the write lock */
    return db_execp(db, "SELECT pg_advisory_xact_lock(?)",
                    DB_ARGS(DB_INT(MIGRATE_LOCK_KEY)), NULL);
}

/* Under the lock: a bare CREATE TABLE IF NOT EXISTS races on PostgreSQL. */
static int create_table_tx(struct db *db, void *arg)
{
    (void)arg;
    int rc = take_lock(db);
    if (rc < 0)
        return rc;
    return db_exec(db, "CREATE TABLE IF NOT EXISTS schema_migrations ("
                       "version BIGINT PRIMARY KEY, "
                       "applied_at BIGINT NOT NULL)");
}

struct apply_ctx {
    const struct migration *m;
    bool applied;
};

static int apply_tx(struct db *db, void *arg)
{
    struct apply_ctx *c = arg;
    c->applied = false;
    int rc = take_lock(db);
    if (rc < 0)
        return rc;
    int64_t seen = 0;
    rc = db_query_int64(db, "SELECT COUNT(*) FROM schema_migrations "
                        "WHERE version = ?", DB_ARGS(DB_INT(c->m->version)),
                        &seen);
    if (rc < 0 || seen > 0)
        return rc;
    bool pg = db_backend(db) == DB_POSTGRES;
    for (size_t i = 0; i < c->m->nsteps; i++) {
        const struct mig_step *s = &c->m->steps[i];
        rc = db_exec(db, s->both ? s->both : pg ? s->pg : s->sqlite);
        if (rc < 0)
            return rc;
    }
    rc = db_execp(db, "INSERT INTO schema_migrations (version, applied_at) "
                  "VALUES (?, ?)", DB_ARGS(DB_INT(c->m->version),
                                           DB_INT(now_ms())), NULL);
    c->applied = rc == DB_OK;
    return rc;
}

int db_schema_version(struct db *db, int64_t *out)
{
    return db_query_int64(db, "SELECT COALESCE(MAX(version), 0) "
                          "FROM schema_migrations", NULL, 0, out);
}

static int check_not_newer(struct db *db)
{
    int64_t v = 0;
    int rc = db_schema_version(db, &v);
    if (rc < 0)
        return rc;
    if (v > db_migrate_latest())
        return db_fail(db, DB_ERROR, "database schema version %lld is newer "
                       "than this server knows (%lld)", (long long)v,
                       (long long)db_migrate_latest());
    return DB_OK;
}

int db_migrate(struct db *db)
{
    int rc = db_tx_iso(db, DB_ISO_READ_COMMITTED, create_table_tx, NULL);
    if (rc >= 0)
        rc = check_not_newer(db);
    if (rc < 0)
        return rc;
    for (size_t i = 0; i < NMIGRATIONS; i++) {
        struct apply_ctx c = { .m = &migrations[i] };
        if (i > 0 && c.m->version <= migrations[i - 1].version)
            return db_fail(db, DB_ERROR, "migration list out of order at %lld",
                           (long long)c.m->version);
        rc = db_tx_iso(db, DB_ISO_READ_COMMITTED, apply_tx, &c);
        if (rc < 0) {
            char why[DB_ERRMSG_MAX / 2];
            snprintf(why, sizeof(why), "%s", db_errmsg(db));
            return db_fail(db, rc, "migration %lld (%s) failed: %s",
                           (long long)c.m->version, c.m->name, why);
        }
        if (c.applied)
            log_info("datastore: applied migration %lld (%s)",
                     (long long)c.m->version, c.m->name);
    }
    return DB_OK;
}
