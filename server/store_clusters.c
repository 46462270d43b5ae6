/*
 * store_clusters: clusters, their registration tokens and link state, and
 * the nodes and events the agents report. See store.h.
 */
#include <stdio.h>
#include <string.h>

#include "server/auth.h"
#include "server/store.h"

#define CLUSTER_COLS \
    "c.id, c.name, c.state, c.registration_token_sealed, c.kubernetes_version, " \
    "c.capacity_json, c.conditions_json, c.connection_via, c.created_at, " \
    "c.updated_at, c.last_seen, c.connection_since, " \
    "c.etcd_snapshot_interval_minutes, c.etcd_snapshot_retention, c.node_count"

static int64_t int_or_null(struct db_stmt *st, int col)
{
    return db_col_is_null(st, col) ? -1 : db_col_int64(st, col);
}

static void read_cluster(struct db_stmt *st, struct store_cluster *c)
{
    c->id = db_col_text(st, 0);
    c->name = db_col_text(st, 1);
    c->state = db_col_text(st, 2);
    c->sealed_token = db_col_text(st, 3);
    c->kubernetes_version = db_col_text(st, 4);
    c->capacity_json = db_col_text(st, 5);
    c->conditions_json = db_col_text(st, 6);
    c->via = db_col_text(st, 7);
    c->created_at = db_col_int64(st, 8);
    c->updated_at = db_col_int64(st, 9);
    c->last_seen = int_or_null(st, 10);
    c->connection_since = int_or_null(st, 11);
    c->snapshot_interval = db_col_int64(st, 12);
    c->snapshot_retention = db_col_int64(st, 13);
    c->node_count = db_col_int64(st, 14);
    c->role = store_role_parse(db_col_text(st, 15));
}

/* Runs a cluster query and hands each row to fn. */
static int each_cluster(struct db *db, const char *sql, const struct db_param *p,
                        size_t n, store_cluster_fn fn, void *ud, int *rows)
{
    struct db_stmt *st;
    int rc = db_query(db, sql, p, n, &st);
    if (rc < 0)
        return rc;
    while ((rc = db_step(st)) == DB_ROW) {
        struct store_cluster c;
        read_cluster(st, &c);
        (*rows)++;
        if ((rc = fn(ud, &c)) < 0)
            break;
    }
    db_finalize(st);
    return rc;
}

static int name_taken(struct db *db, const char *name, const char *except_id,
                      bool *taken)
{
    int64_t n = 0;
    int rc = db_query_int64(db, "SELECT COUNT(*) FROM clusters WHERE name = ? AND id <> ?",
                            DB_ARGS(DB_TEXT(name), DB_TEXT(except_id)), &n);
    *taken = n > 0;
    return rc;
}

static int create_tx(struct db *db, void *arg)
{
    const struct store_cluster_new *n = arg;
    int64_t now = store_now_ms();
    bool taken = false;
    int rc = name_taken(db, n->name, "", &taken);
    if (rc < 0 || taken)
        return rc < 0 ? rc : STORE_E_EXISTS;
    rc = db_execp(db, "INSERT INTO clusters (id, name, created_at, updated_at, "
                  "registration_token_hash, registration_token_created_at, "
                  "registration_token_sealed, etcd_snapshot_interval_minutes, "
                  "etcd_snapshot_retention) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                  DB_ARGS(DB_TEXT(n->id), DB_TEXT(n->name), DB_INT(now), DB_INT(now),
                          DB_TEXT(n->token_hash), DB_INT(now), DB_TEXT(n->token_sealed),
                          DB_INT(n->snapshot_interval < 0 ? 720 : n->snapshot_interval),
                          DB_INT(n->snapshot_retention < 0 ? 5 : n->snapshot_retention)),
                  NULL);
    if (rc == DB_OK)
        rc = db_execp(db, "INSERT INTO cluster_members (cluster_id, user_id, role) "
                      "VALUES (?, ?, 'owner')",
                      DB_ARGS(DB_TEXT(n->id), DB_TEXT(n->owner_id)), NULL);
    return rc;
}

int store_cluster_create(struct db *db, const struct store_cluster_new *n)
{
    return db_tx(db, create_tx, (void *)n);
}

int store_cluster_get(struct db *db, const char *id, const char *user_id,
                      store_cluster_fn fn, void *ud)
{
    int rows = 0;
    int rc = each_cluster(db, "SELECT " CLUSTER_COLS ", m.role FROM clusters c "
                          "LEFT JOIN cluster_members m ON m.cluster_id = c.id "
                          "AND m.user_id = ? WHERE c.id = ?",
                          DB_ARGS(DB_TEXT(user_id ? user_id : ""), DB_TEXT(id)), fn, ud,
                          &rows);
    return rc == DB_OK && rows == 0 ? DB_NOTFOUND : rc;
}

int store_clusters_list(struct db *db, const char *user_id, const char *after,
                        int limit, store_cluster_fn fn, void *ud)
{
    int rows = 0;
    if (!user_id)
        return each_cluster(db, "SELECT " CLUSTER_COLS ", NULL FROM clusters c "
                            "WHERE c.id > ? ORDER BY c.id LIMIT ?",
                            DB_ARGS(DB_TEXT(after), DB_INT(limit)), fn, ud, &rows);
    /* Walks the (user_id, cluster_id) index in order: a page costs its
     * own rows, however many clusters the user belongs to. */
    return each_cluster(db, "SELECT " CLUSTER_COLS ", m.role FROM cluster_members m "
                        "JOIN clusters c ON c.id = m.cluster_id "
                        "WHERE m.user_id = ? AND m.cluster_id > ? "
                        "ORDER BY m.cluster_id LIMIT ?",
                        DB_ARGS(DB_TEXT(user_id), DB_TEXT(after), DB_INT(limit)), fn, ud,
                        &rows);
}

int store_cluster_role(struct db *db, const char *id, const char *user_id,
                       enum store_role *role)
{
    struct db_stmt *st;
    int rc = db_query(db, "SELECT c.id, m.role FROM clusters c "
                      "LEFT JOIN cluster_members m ON m.cluster_id = c.id "
                      "AND m.user_id = ? WHERE c.id = ?",
                      DB_ARGS(DB_TEXT(user_id), DB_TEXT(id)), &st);
    if (rc < 0)
        return rc;
    rc = db_step(st);
    if (rc == DB_ROW) {
        *role = store_role_parse(db_col_text(st, 1));
        rc = DB_OK;
    } else if (rc == DB_DONE) {
        rc = DB_NOTFOUND;
    }
    db_finalize(st);
    return rc;
}

struct cluster_change {
    const char *id, *name;
    int64_t interval, retention;
};

static int update_tx(struct db *db, void *arg)
{
    struct cluster_change *u = arg;
    bool taken = false;
    int64_t changes = 0;
    int rc = u->name ? name_taken(db, u->name, u->id, &taken) : DB_OK;
    if (rc < 0 || taken)
        return rc < 0 ? rc : STORE_E_EXISTS;
    rc = db_execp(db, "UPDATE clusters SET name = COALESCE(CAST(? AS TEXT), name), "
                  "etcd_snapshot_interval_minutes = CASE WHEN CAST(? AS BIGINT) < 0 "
                  "THEN etcd_snapshot_interval_minutes ELSE CAST(? AS BIGINT) END, "
                  "etcd_snapshot_retention = CASE WHEN CAST(? AS BIGINT) < 0 "
                  "THEN etcd_snapshot_retention ELSE CAST(? AS BIGINT) END, "
                  "updated_at = ? WHERE id = ?",
                  DB_ARGS(u->name ? DB_TEXT(u->name) : DB_NULL, DB_INT(u->interval),
                          DB_INT(u->interval), DB_INT(u->retention), DB_INT(u->retention),
                          DB_INT(store_now_ms()), DB_TEXT(u->id)), &changes);
    return rc < 0 ? rc : changes ? DB_OK : DB_NOTFOUND;
}

int store_cluster_update(struct db *db, const char *id, const char *name,
                         int64_t snapshot_interval, int64_t snapshot_retention)
{
    struct cluster_change u = { id, name, snapshot_interval, snapshot_retention };
    return db_tx(db, update_tx, &u);
}

int store_cluster_delete(struct db *db, const char *id)
{
    int64_t changes = 0;
    int rc = db_execp(db, "DELETE FROM clusters WHERE id = ?", DB_ARGS(DB_TEXT(id)),
                      &changes);
    return rc < 0 ? rc : changes ? DB_OK : DB_NOTFOUND;
}

int store_cluster_rotate(struct db *db, const char *id, const char *token_hash,
                         const char *token_sealed)
{
    int64_t changes = 0, now = store_now_ms();
    int rc = db_execp(db, "UPDATE clusters SET registration_token_hash = ?, "
                      "registration_token_sealed = ?, registration_token_created_at = ?, "
                      "updated_at = ? WHERE id = ?",
                      DB_ARGS(DB_TEXT(token_hash), DB_TEXT(token_sealed), DB_INT(now),
                              DB_INT(now), DB_TEXT(id)), &changes);
    return rc < 0 ? rc : changes ? DB_OK : DB_NOTFOUND;
}

int store_cluster_token_ok(struct db *db, const char *id, const char *token_hash)
{
    struct db_stmt *st;
    int rc = db_query(db, "SELECT registration_token_hash FROM clusters WHERE id = ?",
                      DB_ARGS(DB_TEXT(id)), &st);
    if (rc < 0)
        return rc;
    rc = db_step(st);
    if (rc == DB_ROW) {
        const char *h = db_col_text(st, 0);
        rc = h && auth_hash_equal(h, token_hash) ? 1 : 0;
    }
    db_finalize(st);
    return rc;
}

int store_cluster_set_link(struct db *db, const char *id, const char *state,
                           const char *via, int64_t since, int64_t last_seen)
{
    return db_execp(db, "UPDATE clusters SET state = ?, connection_via = ?, "
                    "connection_since = ?, last_seen = ? WHERE id = ?",
                    DB_ARGS(DB_TEXT(state), via ? DB_TEXT(via) : DB_NULL, DB_INT(since),
                            DB_INT(last_seen), DB_TEXT(id)), NULL);
}

int store_clusters_reset_links(struct db *db, int64_t now, int64_t *changed)
{
    return db_execp(db, "UPDATE clusters SET state = 'disconnected', "
                    "connection_via = NULL, connection_since = ? "
                    "WHERE state IN ('active', 'degraded')",
                    DB_ARGS(DB_INT(now)), changed);
}

/* ---- nodes and events ---- */

int store_nodes_list(struct db *db, const char *cluster_id, const char *after,
                     int limit, int (*fn)(void *ud, const struct store_node *n),
                     void *ud)
{
    struct db_stmt *st;
    int rc = db_query(db, "SELECT name, roles, kubelet_version, addresses_json, "
                      "capacity_json, allocatable_json, ready, agent_connected, "
                      "updated_at FROM nodes WHERE cluster_id = ? AND name > ? "
                      "ORDER BY name LIMIT ?",
                      DB_ARGS(DB_TEXT(cluster_id), DB_TEXT(after), DB_INT(limit)), &st);
    if (rc < 0)
        return rc;
    while ((rc = db_step(st)) == DB_ROW) {
        struct store_node n = {
            .name = db_col_text(st, 0), .roles = db_col_text(st, 1),
            .kubelet_version = db_col_text(st, 2), .addresses_json = db_col_text(st, 3),
            .capacity_json = db_col_text(st, 4), .allocatable_json = db_col_text(st, 5),
            .ready = db_col_int64(st, 6) != 0, .agent_connected = db_col_int64(st, 7) != 0,
            .updated_at = db_col_int64(st, 8),
        };
        if ((rc = fn(ud, &n)) < 0)
            break;
    }
    db_finalize(st);
    return rc;
}

int store_events_list(struct db *db, const char *cluster_id, int64_t since,
                      int limit, int (*fn)(void *ud, const struct store_event *e),
                      void *ud)
{
    struct db_stmt *st;
    int rc = db_query(db, "SELECT id, created_at, type, reason, message, object "
                      "FROM events WHERE cluster_id = ? AND id > ? ORDER BY id LIMIT ?",
                      DB_ARGS(DB_TEXT(cluster_id), DB_INT(since), DB_INT(limit)), &st);
    if (rc < 0)
        return rc;
    while ((rc = db_step(st)) == DB_ROW) {
        struct store_event e = {
            .id = db_col_int64(st, 0), .created_at = db_col_int64(st, 1),
            .type = db_col_text(st, 2), .reason = db_col_text(st, 3),
            .message = db_col_text(st, 4), .object = db_col_text(st, 5),
        };
        if ((rc = fn(ud, &e)) < 0)
            break;
    }
    db_finalize(st);
    return rc;
}
