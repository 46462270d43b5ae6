/*
 * store_reports: what cluster agents report about their clusters (version,
 * capacity, health, nodes, warning events). See store.h.
 */
#include <stdio.h>
#include <string.h>

#include "server/store.h"

struct report_tx {
    const char *id;
    const struct store_report *r;
    int64_t now, added;
};

static int update_cluster(struct db *db, struct report_tx *t)
{
    const struct store_report *r = t->r;
    int64_t changes = 0;
    /* The state follows health only while the cluster agent's link is up:
     * linkstate owns pending and disconnected, and degraded while a node
     * agent stands in. */
    int rc = db_execp(db, "UPDATE clusters SET kubernetes_version = ?, node_count = ?, "
                      "capacity_json = ?, conditions_json = ?, last_seen = ?, "
                      "state = CASE WHEN connection_via IS NULL THEN state "
                      "WHEN connection_via LIKE 'node/%' THEN 'degraded' ELSE ? END "
                      "WHERE id = ?",
                      DB_ARGS(DB_TEXT(r->kubernetes_version), DB_INT((int64_t)r->nnodes),
                              DB_TEXT(r->capacity_json), DB_TEXT(r->conditions_json),
                              DB_INT(t->now), DB_TEXT(r->healthy ? "active" : "degraded"),
                              DB_TEXT(t->id)), &changes);
    return rc < 0 ? rc : changes ? DB_OK : DB_NOTFOUND;
}

static int replace_nodes(struct db *db, struct report_tx *t)
{
    int rc = db_execp(db, "DELETE FROM nodes WHERE cluster_id = ?", DB_ARGS(DB_TEXT(t->id)),
                      NULL);
    for (size_t i = 0; rc == DB_OK && i < t->r->nnodes; i++) {
        const struct store_report_node *n = &t->r->nodes[i];
        rc = db_execp(db, "INSERT INTO nodes (cluster_id, name, roles, kubelet_version, "
                      "ready, addresses_json, capacity_json, allocatable_json, "
                      "agent_connected, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                      DB_ARGS(DB_TEXT(t->id), DB_TEXT(n->name), DB_TEXT(n->roles),
                              n->kubelet_version ? DB_TEXT(n->kubelet_version) : DB_NULL,
                              DB_INT(n->ready), DB_TEXT(n->addresses_json),
                              DB_TEXT(n->capacity_json), DB_TEXT(n->allocatable_json),
                              DB_INT(n->agent_connected), DB_INT(t->now)), NULL);
    }
    return rc;
}

static int add_event(struct db *db, struct report_tx *t, const struct store_report_event *e)
{
    int64_t seen = 0;
    int rc = db_query_int64(db, "SELECT COUNT(*) FROM events WHERE cluster_id = ? "
                            "AND object = ? AND reason = ? AND created_at = ?",
                            DB_ARGS(DB_TEXT(t->id), DB_TEXT(e->object), DB_TEXT(e->reason),
                                    DB_INT(e->time)), &seen);
    if (rc < 0 || seen)
        return rc;
    rc = db_execp(db, "INSERT INTO events (cluster_id, created_at, type, reason, message, "
                  "object) VALUES (?, ?, ?, ?, ?, ?)",
                  DB_ARGS(DB_TEXT(t->id), DB_INT(e->time), DB_TEXT(e->type),
                          DB_TEXT(e->reason), DB_TEXT(e->message), DB_TEXT(e->object)),
                  NULL);
    if (rc == DB_OK)
        t->added++;
    return rc;
}

/* Oldest first, so ids ascend with time and ?since= readers see them in
 * order. Only the newest STORE_EVENTS_KEEP can survive the prune anyway. */
static int add_events(struct db *db, struct report_tx *t)
{
    size_t n = t->r->nevents < STORE_EVENTS_KEEP ? t->r->nevents : STORE_EVENTS_KEEP;
    int rc = DB_OK;
    for (size_t i = n; rc == DB_OK && i-- > 0;)
        rc = add_event(db, t, &t->r->events[i]);
    if (rc < 0 || t->added == 0)
        return rc;
    /* No row at that offset (NULL) deletes nothing. */
    return db_execp(db, "DELETE FROM events WHERE cluster_id = ? AND id <= "
                    "(SELECT id FROM events WHERE cluster_id = ? ORDER BY id DESC "
                    "LIMIT 1 OFFSET ?)",
                    DB_ARGS(DB_TEXT(t->id), DB_TEXT(t->id), DB_INT(STORE_EVENTS_KEEP)),
                    NULL);
}

static int report_tx(struct db *db, void *arg)
{
    struct report_tx *t = arg;
    t->added = 0;
    int rc = update_cluster(db, t);
    if (rc == DB_OK)
        rc = replace_nodes(db, t);
    if (rc == DB_OK)
        rc = add_events(db, t);
    return rc;
}

int store_cluster_report(struct db *db, const char *cluster_id, const struct store_report *r,
                         int64_t now, int64_t *added)
{
    struct report_tx t = { cluster_id, r, now, 0 };
    int rc = db_tx(db, report_tx, &t);
    if (added)
        *added = rc == DB_OK ? t.added : 0;
    return rc;
}
