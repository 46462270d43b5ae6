/*
 * store_members: who may do what in a cluster. See store.h.
 */
#include <stdio.h>
#include <string.h>

#include "server/store.h"

const char *store_role_name(enum store_role r)
{
    switch (r) {
    case STORE_ROLE_OWNER:
        return "owner";
    case STORE_ROLE_MEMBER:
        return "member";
    case STORE_ROLE_VIEWER:
        return "viewer";
    case STORE_ROLE_NONE:
        break;
    }
    return NULL;
}

enum store_role store_role_parse(const char *s)
{
    if (!s)
        return STORE_ROLE_NONE;
    if (strcmp(s, "owner") == 0)
        return STORE_ROLE_OWNER;
    if (strcmp(s, "member") == 0)
        return STORE_ROLE_MEMBER;
    if (strcmp(s, "viewer") == 0)
        return STORE_ROLE_VIEWER;
    return STORE_ROLE_NONE;
}

int store_members_list(struct db *db, const char *cluster_id, const char *after,
                       int limit, int (*fn)(void *ud, const struct store_member *m),
                       void *ud)
{
    struct db_stmt *st;
    int rc = db_query(db, "SELECT u.username, m.role FROM cluster_members m "
                      "JOIN users u ON u.id = m.user_id "
                      "WHERE m.cluster_id = ? AND u.username > ? "
                      "ORDER BY u.username LIMIT ?",
                      DB_ARGS(DB_TEXT(cluster_id), DB_TEXT(after), DB_INT(limit)), &st);
    if (rc < 0)
        return rc;
    while ((rc = db_step(st)) == DB_ROW) {
        struct store_member m = { db_col_text(st, 0), store_role_parse(db_col_text(st, 1)) };
        if ((rc = fn(ud, &m)) < 0)
            break;
    }
    db_finalize(st);
    return rc;
}

/* The member's user id and current role (NONE if not a member). */
static int lookup(struct db *db, const char *cluster_id, const char *username,
                  char *user_id, size_t cap, enum store_role *role)
{
    struct db_stmt *st;
    int rc = db_query(db, "SELECT u.id, m.role FROM users u "
                      "LEFT JOIN cluster_members m ON m.user_id = u.id "
                      "AND m.cluster_id = ? WHERE u.username = ?",
                      DB_ARGS(DB_TEXT(cluster_id), DB_TEXT(username)), &st);
    if (rc < 0)
        return rc;
    rc = db_step(st);
    if (rc == DB_ROW) {
        const char *id = db_col_text(st, 0);
        snprintf(user_id, cap, "%s", id ? id : "");
        *role = store_role_parse(db_col_text(st, 1));
        rc = DB_OK;
    } else if (rc == DB_DONE) {
        rc = STORE_E_NOUSER;
    }
    db_finalize(st);
    return rc;
}

/* STORE_E_LAST if the cluster has no owner but the one being changed. */
static int keep_an_owner(struct db *db, const char *cluster_id)
{
    int64_t owners = 0;
    int rc = db_query_int64(db, "SELECT COUNT(*) FROM cluster_members "
                            "WHERE cluster_id = ? AND role = 'owner'",
                            DB_ARGS(DB_TEXT(cluster_id)), &owners);
    return rc < 0 ? rc : owners <= 1 ? STORE_E_LAST : DB_OK;
}

struct member_change {
    const char *cluster_id, *username;
    enum store_role role;
    bool *created;
};

static int set_tx(struct db *db, void *arg)
{
    struct member_change *m = arg;
    char user_id[STORE_ID_MAX];
    enum store_role old = STORE_ROLE_NONE;
    int rc = lookup(db, m->cluster_id, m->username, user_id, sizeof(user_id), &old);
    if (rc == DB_OK && old == STORE_ROLE_OWNER && m->role != STORE_ROLE_OWNER)
        rc = keep_an_owner(db, m->cluster_id);
    if (rc == DB_OK)
        rc = db_execp(db, "INSERT INTO cluster_members (cluster_id, user_id, role) "
                      "VALUES (?, ?, ?) ON CONFLICT (cluster_id, user_id) "
                      "DO UPDATE SET role = excluded.role",
                      DB_ARGS(DB_TEXT(m->cluster_id), DB_TEXT(user_id),
                              DB_TEXT(store_role_name(m->role))), NULL);
    *m->created = rc == DB_OK && old == STORE_ROLE_NONE;
    return rc;
}

int store_member_set(struct db *db, const char *cluster_id, const char *username,
                     enum store_role role, bool *created)
{
    struct member_change m = { cluster_id, username, role, created };
    return db_tx(db, set_tx, &m);
}

static int remove_tx(struct db *db, void *arg)
{
    struct member_change *m = arg;
    char user_id[STORE_ID_MAX];
    enum store_role old = STORE_ROLE_NONE;
    int rc = lookup(db, m->cluster_id, m->username, user_id, sizeof(user_id), &old);
    if (rc == STORE_E_NOUSER || (rc == DB_OK && old == STORE_ROLE_NONE))
        return DB_NOTFOUND;
    if (rc == DB_OK && old == STORE_ROLE_OWNER)
        rc = keep_an_owner(db, m->cluster_id);
    if (rc == DB_OK)
        rc = db_execp(db, "DELETE FROM cluster_members WHERE cluster_id = ? AND user_id = ?",
                      DB_ARGS(DB_TEXT(m->cluster_id), DB_TEXT(user_id)), NULL);
    return rc;
}

int store_member_remove(struct db *db, const char *cluster_id, const char *username)
{
    bool unused;
    struct member_change m = { cluster_id, username, STORE_ROLE_NONE, &unused };
    return db_tx(db, remove_tx, &m);
}

int store_cluster_grants(struct db *db, const char *cluster_id,
                         int (*fn)(void *ud, const char *username, enum store_role role),
                         void *ud)
{
    int64_t exists = 0;
    struct db_stmt *st;
    int rc = db_query_int64(db, "SELECT COUNT(*) FROM clusters WHERE id = ?",
                            DB_ARGS(DB_TEXT(cluster_id)), &exists);
    if (rc < 0 || !exists)
        return rc < 0 ? rc : DB_NOTFOUND;
    rc = db_query(db, "SELECT u.username, u.is_admin, m.role FROM users u "
                  "LEFT JOIN cluster_members m ON m.user_id = u.id AND m.cluster_id = ? "
                  "WHERE u.is_admin = 1 OR m.role IS NOT NULL ORDER BY u.username",
                  DB_ARGS(DB_TEXT(cluster_id)), &st);
    if (rc < 0)
        return rc;
    while ((rc = db_step(st)) == DB_ROW) {
        enum store_role role = db_col_int64(st, 1) ? STORE_ROLE_OWNER
                                                   : store_role_parse(db_col_text(st, 2));
        if ((rc = fn(ud, db_col_text(st, 0), role)) < 0)
            break;
    }
    db_finalize(st);
    return rc;
}
