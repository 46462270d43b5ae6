/*
 * store_users: users and API tokens. See store.h.
 */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "server/auth.h"
#include "server/store.h"

#define USER_COLS "id, username, is_admin, created_at"

int64_t store_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Reads USER_COLS starting at column col. */
static void read_user(struct db_stmt *st, int col, struct store_user *u)
{
    const char *id = db_col_text(st, col), *name = db_col_text(st, col + 1);
    snprintf(u->id, sizeof(u->id), "%s", id ? id : "");
    snprintf(u->username, sizeof(u->username), "%s", name ? name : "");
    u->admin = db_col_int64(st, col + 2) != 0;
    u->created_at = db_col_int64(st, col + 3);
}

/* A fresh "<p>-xxxxxxxxxxxx" id. 0 or DB_ERROR. */
static int new_id(char *out, size_t cap, char p)
{
    char rnd[13];
    if (cap < 15 || auth_random_alnum(rnd, 12) < 0)
        return DB_ERROR;
    snprintf(out, cap, "%c-%s", p, rnd);
    return DB_OK;
}

int store_user_get(struct db *db, const char *username, struct store_user *out,
                   char *pw_hash, size_t cap)
{
    struct db_stmt *st;
    int rc = db_query(db, "SELECT " USER_COLS ", password_hash FROM users "
                      "WHERE username = ?", DB_ARGS(DB_TEXT(username)), &st);
    if (rc < 0)
        return rc;
    rc = db_step(st);
    if (rc == DB_ROW) {
        read_user(st, 0, out);
        const char *h = db_col_text(st, 4);
        if (pw_hash)
            snprintf(pw_hash, cap, "%s", h ? h : "");
        rc = DB_OK;
    } else if (rc == DB_DONE) {
        rc = DB_NOTFOUND;
    }
    db_finalize(st);
    return rc;
}

int store_user_create(struct db *db, const char *username, const char *pw_hash,
                      bool admin, struct store_user *out)
{
    memset(out, 0, sizeof(*out));
    int64_t changes = 0;
    int rc = new_id(out->id, sizeof(out->id), 'u');
    out->created_at = store_now_ms();
    if (rc == DB_OK)
        rc = db_execp(db, "INSERT INTO users (id, username, password_hash, is_admin, "
                      "created_at) VALUES (?, ?, ?, ?, ?) "
                      "ON CONFLICT (username) DO NOTHING",
                      DB_ARGS(DB_TEXT(out->id), DB_TEXT(username), DB_TEXT(pw_hash),
                              DB_INT(admin), DB_INT(out->created_at)), &changes);
    if (rc < 0)
        return rc;
    if (changes == 0)
        return STORE_E_EXISTS;
    snprintf(out->username, sizeof(out->username), "%s", username);
    out->admin = admin;
    return DB_OK;
}

static int count_admins(struct db *db, int64_t *n)
{
    return db_query_int64(db, "SELECT COUNT(*) FROM users WHERE is_admin = 1", NULL, 0,
                          n);
}

struct user_change {
    const char *username, *pw_hash, *keep_token;
    int admin;
    struct store_user *out;
};

static int update_tx(struct db *db, void *arg)
{
    struct user_change *u = arg;
    int64_t admins = 0;
    int rc = store_user_get(db, u->username, u->out, NULL, 0);
    if (rc == DB_OK && u->admin == 0 && u->out->admin) {
        rc = count_admins(db, &admins);
        if (rc == DB_OK && admins <= 1)
            return STORE_E_LAST;
    }
    if (rc == DB_OK && u->admin >= 0)
        rc = db_execp(db, "UPDATE users SET is_admin = ? WHERE id = ?",
                      DB_ARGS(DB_INT(u->admin), DB_TEXT(u->out->id)), NULL);
    if (rc == DB_OK && u->pw_hash)
        rc = db_execp(db, "UPDATE users SET password_hash = ? WHERE id = ?",
                      DB_ARGS(DB_TEXT(u->pw_hash), DB_TEXT(u->out->id)), NULL);
    /* A new password ends every other session: whoever knew the old one
     * may have logged in with it. */
    if (rc == DB_OK && u->pw_hash)
        rc = db_execp(db, "DELETE FROM api_tokens WHERE user_id = ? AND id <> ?",
                      DB_ARGS(DB_TEXT(u->out->id),
                              DB_TEXT(u->keep_token ? u->keep_token : "")), NULL);
    if (rc == DB_OK && u->admin >= 0)
        u->out->admin = u->admin;
    return rc;
}

int store_user_update(struct db *db, const char *username, const char *pw_hash,
                      int admin, const char *keep_token_id, struct store_user *out)
{
    struct user_change u = { username, pw_hash, keep_token_id, admin, out };
    return db_tx(db, update_tx, &u);
}

static int delete_tx(struct db *db, void *arg)
{
    const char *username = arg;
    struct store_user u;
    int64_t admins = 0;
    int rc = store_user_get(db, username, &u, NULL, 0);
    if (rc == DB_OK && u.admin) {
        rc = count_admins(db, &admins);
        if (rc == DB_OK && admins <= 1)
            return STORE_E_LAST;
    }
    if (rc == DB_OK)
        rc = db_execp(db, "DELETE FROM users WHERE id = ?", DB_ARGS(DB_TEXT(u.id)), NULL);
    return rc;
}

int store_user_delete(struct db *db, const char *username)
{
    return db_tx(db, delete_tx, (void *)username);
}

int store_users_list(struct db *db, const char *after, int limit,
                     int (*fn)(void *ud, const struct store_user *u), void *ud)
{
    struct db_stmt *st;
    int rc = db_query(db, "SELECT " USER_COLS " FROM users WHERE username > ? "
                      "ORDER BY username LIMIT ?",
                      DB_ARGS(DB_TEXT(after), DB_INT(limit)), &st);
    if (rc < 0)
        return rc;
    while ((rc = db_step(st)) == DB_ROW) {
        struct store_user u;
        read_user(st, 0, &u);
        if ((rc = fn(ud, &u)) < 0)
            break;
    }
    db_finalize(st);
    return rc;
}

struct bootstrap {
    const char *pw_hash;
    bool *created;
};

static int bootstrap_tx(struct db *db, void *arg)
{
    struct bootstrap *b = arg;
    int64_t users = 0, changes = 0;
    char id[STORE_ID_MAX];
    *b->created = false;
    int rc = db_query_int64(db, "SELECT COUNT(*) FROM users", NULL, 0, &users);
    if (rc < 0 || users > 0)
        return rc;
    if ((rc = new_id(id, sizeof(id), 'u')) < 0)
        return rc;
    rc = db_execp(db, "INSERT INTO users (id, username, password_hash, is_admin, "
                  "created_at) VALUES (?, 'admin', ?, 1, ?) "
                  "ON CONFLICT (username) DO NOTHING",
                  DB_ARGS(DB_TEXT(id), DB_TEXT(b->pw_hash), DB_INT(store_now_ms())),
                  &changes);
    *b->created = rc == DB_OK && changes == 1;
    return rc;
}

int store_bootstrap_admin(struct db *db, const char *pw_hash, bool *created)
{
    struct bootstrap b = { pw_hash, created };
    return db_tx(db, bootstrap_tx, &b);
}

/* ---- API tokens ---- */

struct token_new {
    const char *user_id, *hash;
    int64_t expires_at;
};

static int token_tx(struct db *db, void *arg)
{
    struct token_new *t = arg;
    char id[STORE_ID_MAX];
    int64_t now = store_now_ms();
    int rc = new_id(id, sizeof(id), 't');
    /* Logins are when a user's expired tokens are swept, so they never pile
     * up and no background job is needed. */
    if (rc == DB_OK)
        rc = db_execp(db, "DELETE FROM api_tokens WHERE user_id = ? AND "
                      "expires_at IS NOT NULL AND expires_at <= ?",
                      DB_ARGS(DB_TEXT(t->user_id), DB_INT(now)), NULL);
    if (rc == DB_OK)
        rc = db_execp(db, "INSERT INTO api_tokens (id, user_id, token_hash, created_at, "
                      "expires_at) VALUES (?, ?, ?, ?, ?)",
                      DB_ARGS(DB_TEXT(id), DB_TEXT(t->user_id), DB_TEXT(t->hash),
                              DB_INT(now),
                              t->expires_at < 0 ? DB_NULL : DB_INT(t->expires_at)),
                      NULL);
    return rc;
}

int store_token_create(struct db *db, const char *user_id, const char *hash,
                       int64_t expires_at)
{
    struct token_new t = { user_id, hash, expires_at };
    return db_tx(db, token_tx, &t);
}

int store_token_auth(struct db *db, const char *hash, int64_t now,
                     struct store_principal *out)
{
    struct db_stmt *st;
    int rc = db_query(db, "SELECT t.id, t.token_hash, t.expires_at, u.id, u.username, "
                      "u.is_admin, u.created_at FROM api_tokens t "
                      "JOIN users u ON u.id = t.user_id WHERE t.token_hash = ?",
                      DB_ARGS(DB_TEXT(hash)), &st);
    if (rc < 0)
        return rc;
    rc = db_step(st);
    if (rc == DB_ROW) {
        const char *stored = db_col_text(st, 1), *tid = db_col_text(st, 0);
        bool expired = !db_col_is_null(st, 2) && db_col_int64(st, 2) <= now;
        rc = stored && auth_hash_equal(stored, hash) && !expired ? DB_OK : DB_NOTFOUND;
        snprintf(out->token_id, sizeof(out->token_id), "%s", tid ? tid : "");
        read_user(st, 3, &out->user);
    } else if (rc == DB_DONE) {
        rc = DB_NOTFOUND;
    }
    db_finalize(st);
    return rc;
}

int store_token_delete(struct db *db, const char *token_id)
{
    int64_t changes = 0;
    int rc = db_execp(db, "DELETE FROM api_tokens WHERE id = ?",
                      DB_ARGS(DB_TEXT(token_id)), &changes);
    return rc < 0 ? rc : changes ? DB_OK : DB_NOTFOUND;
}
