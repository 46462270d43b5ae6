/*
 * store_snapshots: etcd snapshots, their chunks, and upgrade documents.
 * See store_snapshots.h.
 */
#include "server/store_snapshots.h"

#include <jansson.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>

#define SNAP_COLS "id, cluster_id, node, state, sha256, error, restore_json, scheduled, " \
                  "size, created_at, finished_at"

static int64_t int_or_null(struct db_stmt *st, int col)
{
    return db_col_is_null(st, col) ? -1 : db_col_int64(st, col);
}

static int each_snapshot(struct db_stmt *st, store_snapshot_fn fn, void *ud, int *rows)
{
    int rc;
    while ((rc = db_step(st)) == DB_ROW) {
        struct store_snapshot s = {
            .id = db_col_text(st, 0), .cluster_id = db_col_text(st, 1),
            .node = db_col_text(st, 2), .state = db_col_text(st, 3),
            .sha256 = db_col_text(st, 4), .error = db_col_text(st, 5),
            .restore_json = db_col_text(st, 6), .scheduled = db_col_int64(st, 7) != 0,
            .size = int_or_null(st, 8), .created_at = db_col_int64(st, 9),
            .finished_at = int_or_null(st, 10),
        };
        if (rows)
            (*rows)++;
        if ((rc = fn(ud, &s)) < 0)
            break;
    }
    db_finalize(st);
    return rc;
}

int store_snapshot_create(struct db *db, const char *id, const char *cluster_id,
                          const char *node, bool scheduled, int64_t now, const char *runner)
{
    int rc = db_execp(db, "INSERT INTO etcd_snapshots (id, cluster_id, node, state, scheduled, "
                      "created_at, runner) VALUES (?, ?, ?, 'pending', ?, ?, ?)",
                      DB_ARGS(DB_TEXT(id), DB_TEXT(cluster_id), DB_TEXT(node),
                              DB_INT(scheduled), DB_INT(now), DB_TEXT(runner)), NULL);
    /* The cluster was deleted meanwhile. */
    return rc == DB_CONSTRAINT ? DB_NOTFOUND : rc;
}

int store_snapshot_get(struct db *db, const char *cluster_id, const char *id,
                       store_snapshot_fn fn, void *ud)
{
    struct db_stmt *st;
    int rows = 0;
    int rc = db_query(db, "SELECT " SNAP_COLS " FROM etcd_snapshots WHERE cluster_id = ? "
                      "AND id = ?", DB_ARGS(DB_TEXT(cluster_id), DB_TEXT(id)), &st);
    if (rc < 0)
        return rc;
    rc = each_snapshot(st, fn, ud, &rows);
    return rc < 0 ? rc : rows ? 0 : DB_NOTFOUND;
}

int store_snapshots_list(struct db *db, const char *cluster_id, const char *after, int limit,
                         store_snapshot_fn fn, void *ud)
{
    struct db_stmt *st;
    int rc = db_query(db, "SELECT " SNAP_COLS " FROM etcd_snapshots WHERE cluster_id = ? "
                      "AND id > ? ORDER BY id LIMIT ?",
                      DB_ARGS(DB_TEXT(cluster_id), DB_TEXT(after), DB_INT(limit)), &st);
    return rc < 0 ? rc : each_snapshot(st, fn, ud, NULL);
}

int store_snapshot_running(struct db *db, const char *id)
{
    return db_execp(db, "UPDATE etcd_snapshots SET state = 'running' WHERE id = ? AND "
                    "state = 'pending'", DB_ARGS(DB_TEXT(id)), NULL);
}

int store_snapshot_fail(struct db *db, const char *id, const char *error, int64_t now)
{
    return db_execp(db, "UPDATE etcd_snapshots SET state = 'failed', error = ?, "
                    "finished_at = ? WHERE id = ? AND state IN ('pending', 'running')",
                    DB_ARGS(DB_TEXT(error), DB_INT(now), DB_TEXT(id)), NULL);
}

int store_snapshot_done(struct db *db, const char *id, int64_t size, const char *sha256,
                        int64_t now)
{
    return db_execp(db, "UPDATE etcd_snapshots SET state = 'done', size = ?, sha256 = ?, "
                    "finished_at = ? WHERE id = ? AND state IN ('pending', 'running')",
                    DB_ARGS(DB_INT(size), DB_TEXT(sha256), DB_INT(now), DB_TEXT(id)), NULL);
}

int store_snapshot_put_chunk(struct db *db, const char *id, int64_t seq, const void *p,
                             size_t len)
{
    int rc = db_execp(db, "INSERT INTO etcd_snapshot_chunks (snapshot_id, seq, data) "
                      "VALUES (?, ?, ?)", DB_ARGS(DB_TEXT(id), DB_INT(seq), DB_BLOB(p, len)),
                      NULL);
    return rc == DB_CONSTRAINT ? DB_NOTFOUND : rc;     /* deleted meanwhile */
}

int store_snapshot_get_chunk(struct db *db, const char *id, int64_t seq, uint8_t **out,
                             size_t *len)
{
    struct db_stmt *st;
    *out = NULL;
    *len = 0;
    int rc = db_query(db, "SELECT data FROM etcd_snapshot_chunks WHERE snapshot_id = ? "
                      "AND seq = ?", DB_ARGS(DB_TEXT(id), DB_INT(seq)), &st);
    if (rc < 0)
        return rc;
    rc = db_step(st);
    if (rc == DB_ROW) {
        size_t n = 0;
        const void *p = db_col_blob(st, 0, &n);
        *out = malloc(n ? n : 1);
        if (*out) {
            memcpy(*out, p, n);
            *len = n;
            rc = 0;
        } else {
            rc = DB_ERROR;
        }
    } else if (rc == DB_DONE) {
        rc = DB_NOTFOUND;
    }
    db_finalize(st);
    return rc;
}

static int delete_tx(struct db *db, void *arg)
{
    const char *const *a = arg;
    int64_t n = 0;
    /* Chunks first: the cascade would do it, but PostgreSQL checks it row
     * by row against a possibly large table either way. */
    int rc = db_execp(db, "DELETE FROM etcd_snapshot_chunks WHERE snapshot_id IN "
                      "(SELECT id FROM etcd_snapshots WHERE cluster_id = ? AND id = ?)",
                      DB_ARGS(DB_TEXT(a[0]), DB_TEXT(a[1])), NULL);
    if (rc == DB_OK)
        rc = db_execp(db, "DELETE FROM etcd_snapshots WHERE cluster_id = ? AND id = ?",
                      DB_ARGS(DB_TEXT(a[0]), DB_TEXT(a[1])), &n);
    return rc < 0 ? rc : n ? 0 : DB_NOTFOUND;
}

int store_snapshot_delete(struct db *db, const char *cluster_id, const char *id)
{
    const char *a[2] = { cluster_id, id };
    return db_tx(db, delete_tx, a);
}

int store_snapshot_set_restore(struct db *db, const char *id, const char *json,
                               const char *runner)
{
    return db_execp(db, "UPDATE etcd_snapshots SET restore_json = ?, runner = ? WHERE id = ?",
                    DB_ARGS(DB_TEXT(json), DB_TEXT(runner), DB_TEXT(id)), NULL);
}

/* ---- recovery at start ---- */

/* A document whose "state" is running, rewritten as interrupted (with its
 * unfinished "nodes"); NULL if it needs no change. Caller frees. */
static char *interrupt_doc(const char *text)
{
    json_t *j = json_loads(text, 0, NULL), *n;
    const char *state = json_string_value(json_object_get(j, "state"));
    char *out = NULL;
    size_t i;
    if (state && strcmp(state, "running") == 0) {
        json_object_set_new(j, "state", json_string("interrupted"));
        json_array_foreach(json_object_get(j, "nodes"), i, n) {
            const char *ns = json_string_value(json_object_get(n, "state"));
            if (ns && (strcmp(ns, "running") == 0 || strcmp(ns, "pending") == 0)) {
                json_object_set_new(n, "state", json_string("interrupted"));
                json_object_set_new(n, "message",
                                    json_string("the server restarted during the task"));
            }
        }
        out = json_dumps(j, JSON_COMPACT);
    }
    json_decref(j);
    return out;
}

/* Rewrites the running documents of one table (sel gives key, doc; its
 * parameters are prm[0..np)). */
static int interrupt_docs(struct db *db, const char *sel, const struct db_param *prm,
                          size_t np, const char *upd, int64_t *changed)
{
    struct db_stmt *st;
    char *keys[64], *docs[64];
    size_t n = 0;
    int rc = db_query(db, sel, prm, np, &st);
    if (rc < 0)
        return rc;
    while (n < 64 && (rc = db_step(st)) == DB_ROW) {
        char *doc = interrupt_doc(db_col_text(st, 1));
        if (!doc)
            continue;
        keys[n] = strdup(db_col_text(st, 0));
        docs[n++] = doc;
    }
    db_finalize(st);
    for (size_t i = 0; i < n; i++) {
        int r = keys[i] ? db_execp(db, upd, DB_ARGS(DB_TEXT(docs[i]), DB_TEXT(keys[i])), NULL)
                        : DB_ERROR;
        if (r < 0 && rc >= 0)
            rc = r;
        free(keys[i]);
        free(docs[i]);
    }
    *changed += (int64_t)n;
    return rc < 0 ? rc : 0;
}

/* Which rows' runner is gone, for recover (parameters: me, now). */
#define RUNNER_GONE "(runner IS NULL OR runner = ? OR NOT EXISTS (SELECT 1 FROM peers p " \
    "WHERE p.id = runner AND p.expires_at > ?))"
#define RUNNER_DEAD "(runner IS NOT NULL AND runner <> ? AND NOT EXISTS (SELECT 1 FROM " \
    "peers p WHERE p.id = runner AND p.expires_at > ?))"

int store_snapshots_recover(struct db *db, int64_t now, const char *me, bool others_only,
                            int64_t *changed)
{
    int64_t n = 0;
    char sql[512];
    const char *cond = !me ? "1 = 1" : others_only ? RUNNER_DEAD : RUNNER_GONE;
    struct db_param prm[2] = { DB_TEXT(me), DB_INT(now) };
    size_t np = me ? 2 : 0;
    struct db_param up[3] = { DB_INT(now), DB_TEXT(me), DB_INT(now) };
    *changed = 0;
    snprintf(sql, sizeof(sql), "UPDATE etcd_snapshots SET state = 'failed', finished_at = ?, "
             "error = 'the server stopped before the snapshot finished' "
             "WHERE state IN ('pending', 'running') AND %s", cond);
    int rc = db_execp(db, sql, up, np + 1, &n);
    if (rc < 0)
        return rc;
    *changed = n;
    snprintf(sql, sizeof(sql), "SELECT id, restore_json FROM etcd_snapshots WHERE restore_json "
             "LIKE '%%\"state\":\"running\"%%' AND %s", cond);
    rc = interrupt_docs(db, sql, prm, np,
                        "UPDATE etcd_snapshots SET restore_json = ? WHERE id = ?", changed);
    if (rc < 0)
        return rc;
    snprintf(sql, sizeof(sql), "SELECT cluster_id, doc FROM cluster_upgrades WHERE doc "
             "LIKE '%%\"state\":\"running\"%%' AND %s", cond);
    return interrupt_docs(db, sql, prm, np,
                          "UPDATE cluster_upgrades SET doc = ? WHERE cluster_id = ?", changed);
}

/* ---- schedules ---- */

int store_snapshot_schedules(struct db *db, int (*fn)(void *ud, const struct store_snap_due *d),
                             void *ud)
{
    struct db_stmt *st;
    int rc = db_query(db, "SELECT c.id, c.etcd_snapshot_interval_minutes, "
                      "c.etcd_snapshot_retention, "
                      "(SELECT MAX(s.created_at) FROM etcd_snapshots s WHERE s.cluster_id = c.id "
                      "AND s.scheduled = 1), "
                      "(SELECT COUNT(*) FROM etcd_snapshots s WHERE s.cluster_id = c.id AND "
                      "s.state IN ('pending', 'running')) "
                      "FROM clusters c WHERE c.etcd_snapshot_interval_minutes > 0 ORDER BY c.id",
                      NULL, 0, &st);
    if (rc < 0)
        return rc;
    while ((rc = db_step(st)) == DB_ROW) {
        struct store_snap_due d = {
            .cluster_id = db_col_text(st, 0), .interval_min = db_col_int64(st, 1),
            .retention = db_col_int64(st, 2), .last_created = int_or_null(st, 3),
            .in_progress = db_col_int64(st, 4) > 0,
        };
        if ((rc = fn(ud, &d)) < 0)
            break;
    }
    db_finalize(st);
    return rc;
}

#define PRUNE_BATCH 64

/* Deletes, in state, the scheduled snapshots but the newest keep. */
static int prune_state(struct db *db, const char *cluster_id, const char *state, int64_t keep,
                       int (*fn)(void *ud, const char *id, const char *node), void *ud)
{
    struct db_stmt *st;
    char *ids[PRUNE_BATCH];
    size_t n = 0;
    int rc = db_query(db, "SELECT id, node FROM etcd_snapshots WHERE cluster_id = ? AND "
                      "scheduled = 1 AND state = ? ORDER BY id DESC LIMIT ? OFFSET ?",
                      DB_ARGS(DB_TEXT(cluster_id), DB_TEXT(state), DB_INT(PRUNE_BATCH),
                              DB_INT(keep)), &st);
    if (rc < 0)
        return rc;
    while (n < PRUNE_BATCH && (rc = db_step(st)) == DB_ROW) {
        if (fn && fn(ud, db_col_text(st, 0), db_col_text(st, 1)) < 0)
            continue;
        ids[n++] = strdup(db_col_text(st, 0));
    }
    db_finalize(st);
    for (size_t i = 0; i < n; i++) {
        int r = ids[i] ? store_snapshot_delete(db, cluster_id, ids[i]) : DB_ERROR;
        if (r < 0 && r != DB_NOTFOUND && rc >= 0)
            rc = r;
        free(ids[i]);
    }
    return rc < 0 ? rc : 0;
}

int store_snapshots_prune(struct db *db, const char *cluster_id, int64_t retention,
                          int (*fn)(void *ud, const char *id, const char *node), void *ud)
{
    int rc = prune_state(db, cluster_id, "done", retention, fn, ud);
    return rc < 0 ? rc : prune_state(db, cluster_id, "failed", retention, NULL, NULL);
}

static void add_role(char *out, size_t cap, const char *role)
{
    size_t n = strlen(out);
    if (strstr(out, role) || strlen(role) + 2 > cap - n)
        return;
    snprintf(out + n, cap - n, "%s%s", n ? "," : "", role);
}

int store_node_roles(struct db *db, const char *cluster_id, const char *node, char *out,
                     size_t cap)
{
    struct db_stmt *st;
    out[0] = '\0';
    int rc = db_query(db, "SELECT roles FROM nodes WHERE cluster_id = ? AND name = ?",
                      DB_ARGS(DB_TEXT(cluster_id), DB_TEXT(node)), &st);
    if (rc < 0)
        return rc;
    if ((rc = db_step(st)) == DB_ROW) {
        const char *r = db_col_text(st, 0);
        for (const char *p = r ? r : ""; *p;) {
            size_t n = strcspn(p, ",");
            if ((n == 13 && memcmp(p, "control-plane", 13) == 0) ||
                (n == 6 && memcmp(p, "master", 6) == 0) ||
                (n == 12 && memcmp(p, "controlplane", 12) == 0))
                add_role(out, cap, "controlplane");
            else if (n == 4 && memcmp(p, "etcd", 4) == 0)
                add_role(out, cap, "etcd");
            else if (n == 6 && memcmp(p, "worker", 6) == 0)
                add_role(out, cap, "worker");
            p += n + (p[n] == ',');
        }
    }
    db_finalize(st);
    return rc < 0 ? rc : 0;
}

/* ---- upgrades ---- */

int store_upgrade_put(struct db *db, const char *cluster_id, const char *doc, int64_t now,
                      const char *runner)
{
    int rc = db_execp(db, "INSERT INTO cluster_upgrades (cluster_id, doc, updated_at, runner) "
                      "VALUES (?, ?, ?, ?) ON CONFLICT (cluster_id) DO UPDATE SET "
                      "doc = excluded.doc, updated_at = excluded.updated_at, "
                      "runner = excluded.runner",
                      DB_ARGS(DB_TEXT(cluster_id), DB_TEXT(doc), DB_INT(now),
                              DB_TEXT(runner)), NULL);
    return rc == DB_CONSTRAINT ? DB_NOTFOUND : rc;
}

int store_upgrade_get(struct db *db, const char *cluster_id, char **doc)
{
    struct db_stmt *st;
    *doc = NULL;
    int rc = db_query(db, "SELECT doc FROM cluster_upgrades WHERE cluster_id = ?",
                      DB_ARGS(DB_TEXT(cluster_id)), &st);
    if (rc < 0)
        return rc;
    rc = db_step(st);
    if (rc == DB_ROW)
        rc = (*doc = strdup(db_col_text(st, 0))) ? 0 : DB_ERROR;
    else if (rc == DB_DONE)
        rc = DB_NOTFOUND;
    db_finalize(st);
    return rc;
}
