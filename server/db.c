/*
 * db: the backend-independent half of the SQL layer. See db.h.
 *
 * Owns the rules both backends must share: transaction state and the
 * dead-transaction gate, the retry loop of db_tx(), error bookkeeping, and the
 * one-call helpers. Everything that talks to a library is in db_sqlite.c or
 * db_pg.c behind struct db_ops.
 */
#include "server/db.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "server/db_int.h"

#define DB_DEFAULT_BUSY_MS      5000
#define DB_DEFAULT_CONNECT_S    5
#define DB_DEFAULT_TX_ATTEMPTS  5
#define DB_BACKOFF_BASE_MS      5
#define DB_BACKOFF_CAP_MS       200

const char *db_code_str(int code)
{
    switch (code) {
    case DB_OK:          return "ok";
    case DB_ROW:         return "row";
    case DB_NOTFOUND:    return "not found";
    case DB_CONFLICT:    return "conflict";
    case DB_CONSTRAINT:  return "constraint violation";
    case DB_BUSY:        return "busy";
    case DB_UNAVAILABLE: return "unavailable";
    case DB_QUEUE_FULL:  return "queue full";
    case DB_CANCELLED:   return "cancelled";
    default:             return "error";
    }
}

int db_vfail(struct db *db, int code, const char *fmt, va_list ap)
{
    vsnprintf(db->errmsg, sizeof(db->errmsg), fmt, ap);
    if (db->in_tx && db->tx_err == 0)
        db->tx_err = code;
    return code;
}

int db_fail(struct db *db, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    db_vfail(db, code, fmt, ap);
    va_end(ap);
    return code;
}

int db_misuse(struct db *db, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(db->errmsg, sizeof(db->errmsg), fmt, ap);
    va_end(ap);
    return DB_ERROR;
}

/* ---- open / close ---- */

static int is_pg_url(const char *s)
{
    return strncmp(s, "postgres://", 11) == 0 ||
           strncmp(s, "postgresql://", 13) == 0;
}

int db_open_flags(const struct db_options *opt, unsigned flags,
                  struct db **out, char *err, size_t errlen)
{
    *out = NULL;
    const char *ds = opt->datastore ? opt->datastore : "sqlite";
    struct db *db = calloc(1, sizeof(*db));
    if (!db) {
        snprintf(err, errlen, "out of memory");
        return DB_ERROR;
    }
    db->busy_timeout_ms = opt->busy_timeout_ms ? opt->busy_timeout_ms
                                               : DB_DEFAULT_BUSY_MS;
    db->connect_timeout_s = opt->connect_timeout_s ? opt->connect_timeout_s
                                                   : DB_DEFAULT_CONNECT_S;
    db->tx_attempts = opt->tx_attempts ? opt->tx_attempts
                                       : DB_DEFAULT_TX_ATTEMPTS;
    db->flags = flags;
    int rc;
    if (strcmp(ds, "sqlite") == 0) {
        db->backend = DB_SQLITE;
        rc = db_sqlite_open(db, opt->data_dir ? opt->data_dir : ".", err,
                            errlen);
    } else if (is_pg_url(ds)) {
        db->backend = DB_POSTGRES;
        rc = db_pg_open(db, ds, err, errlen);
    } else {
        /* Do not echo the value: a mistyped URL may still hold a password. */
        snprintf(err, errlen, "datastore must be \"sqlite\" or a "
                 "postgres:// URL");
        rc = DB_ERROR;
    }
    if (rc < 0) {
        free(db);
        return rc;
    }
    *out = db;
    return DB_OK;
}

int db_open(const struct db_options *opt, struct db **out, char *err,
            size_t errlen)
{
    return db_open_flags(opt, 0, out, err, errlen);
}

void db_close(struct db *db)
{
    if (!db)
        return;
    if (db->in_tx)
        db_rollback(db);
    db->ops->close(db);
    free(db);
}

enum db_backend db_backend(const struct db *db)
{
    return db->backend;
}

const char *db_errmsg(const struct db *db)
{
    return db->errmsg;
}

void db_get_stats(const struct db *db, struct db_stats *out)
{
    *out = db->stats;
}

/* ---- statements ---- */

/* A transaction that saw a failure accepts nothing but its rollback, as on
 * PostgreSQL; enforcing it on SQLite too keeps callers portable. */
static int tx_gate(struct db *db)
{
    if (db->in_tx && db->tx_err)
        return db_fail(db, db->tx_err, "transaction aborted by an earlier "
                       "error (%s); roll it back", db_code_str(db->tx_err));
    return DB_OK;
}

int db_prepare(struct db *db, const char *sql, struct db_stmt **out)
{
    *out = NULL;
    int rc = tx_gate(db);
    if (rc < 0)
        return rc;
    return db->ops->prepare(db, sql, out);
}

void db_finalize(struct db_stmt *st)
{
    if (st)
        st->db->ops->finalize(st);
}

int db_reset(struct db_stmt *st)
{
    return st->db->ops->reset(st);
}

static int bind_one(struct db_stmt *st, int idx, struct db_param p)
{
    return st->db->ops->bind(st, idx, &p);
}

int db_bind_text(struct db_stmt *st, int idx, const char *s)
{
    return bind_one(st, idx, s ? DB_TEXT(s) : DB_NULL);
}

int db_bind_int64(struct db_stmt *st, int idx, int64_t v)
{
    return bind_one(st, idx, DB_INT(v));
}

int db_bind_blob(struct db_stmt *st, int idx, const void *p, size_t len)
{
    return bind_one(st, idx, DB_BLOB(p, len));
}

int db_bind_null(struct db_stmt *st, int idx)
{
    return bind_one(st, idx, DB_NULL);
}

int db_step(struct db_stmt *st)
{
    int rc = tx_gate(st->db);
    if (rc < 0)
        return rc;
    return st->db->ops->step(st);
}

int db_col_count(struct db_stmt *st)
{
    return st->db->ops->col_count(st);
}

bool db_col_is_null(struct db_stmt *st, int col)
{
    return st->db->ops->col_is_null(st, col);
}

const char *db_col_text(struct db_stmt *st, int col)
{
    return st->db->ops->col_text(st, col);
}

int64_t db_col_int64(struct db_stmt *st, int col)
{
    return st->db->ops->col_int64(st, col);
}

const void *db_col_blob(struct db_stmt *st, int col, size_t *len)
{
    return st->db->ops->col_blob(st, col, len);
}

int64_t db_changes(struct db_stmt *st)
{
    return st->db->ops->changes(st);
}

/* ---- helpers ---- */

int db_bind_params(struct db_stmt *st, const struct db_param *params,
                   size_t n)
{
    if (n > DB_MAX_PARAMS)
        return db_misuse(st->db, "too many parameters");
    for (size_t i = 0; i < n; i++) {
        int rc = st->db->ops->bind(st, (int)i + 1, &params[i]);
        if (rc < 0)
            return rc;
    }
    return DB_OK;
}

int db_query(struct db *db, const char *sql, const struct db_param *params,
             size_t n, struct db_stmt **out)
{
    struct db_stmt *st;
    int rc = db_prepare(db, sql, &st);
    if (rc < 0)
        return rc;
    rc = db_bind_params(st, params, n);
    if (rc < 0) {
        db_finalize(st);
        return rc;
    }
    *out = st;
    return DB_OK;
}

int db_execp(struct db *db, const char *sql, const struct db_param *params,
             size_t n, int64_t *changes)
{
    struct db_stmt *st;
    int rc = db_query(db, sql, params, n, &st);
    if (rc < 0)
        return rc;
    while ((rc = db_step(st)) == DB_ROW)
        ;
    if (rc == DB_DONE && changes)
        *changes = db_changes(st);
    db_finalize(st);
    return rc;
}

int db_query_int64(struct db *db, const char *sql,
                   const struct db_param *params, size_t n, int64_t *out)
{
    struct db_stmt *st;
    int rc = db_query(db, sql, params, n, &st);
    if (rc < 0)
        return rc;
    rc = db_step(st);
    if (rc == DB_ROW) {
        *out = db_col_int64(st, 0);
        rc = DB_OK;
    } else if (rc == DB_DONE) {
        rc = DB_NOTFOUND;
    }
    db_finalize(st);
    return rc;
}

int db_exec(struct db *db, const char *sql)
{
    int rc = tx_gate(db);
    if (rc < 0)
        return rc;
    return db->ops->exec(db, sql);
}

/* ---- transactions ---- */

int db_begin_iso(struct db *db, enum db_iso iso)
{
    if (db->in_tx)
        return db_misuse(db, "transaction already open");
    int rc = db->ops->begin(db, iso);
    if (rc < 0)
        return rc;
    db->in_tx = true;
    db->tx_err = 0;
    return DB_OK;
}

int db_begin(struct db *db)
{
    return db_begin_iso(db, DB_ISO_SERIALIZABLE);
}

int db_rollback(struct db *db)
{
    if (!db->in_tx)
        return DB_OK;
    db->ops->rollback(db);
    db->in_tx = false;
    db->tx_err = 0;
    return DB_OK;
}

int db_commit(struct db *db)
{
    if (!db->in_tx)
        return db_misuse(db, "commit without a transaction");
    int rc = db->tx_err;
    if (rc == 0)
        rc = db->ops->commit(db);
    if (rc < 0) {
        db_rollback(db);
        return rc;
    }
    db->in_tx = false;
    return DB_OK;
}

/* Full jitter over an exponential ceiling: contending writers that failed
 * together should not retry together. */
static void backoff_sleep(unsigned attempt)
{
    static __thread uint64_t seed;
    if (seed == 0)
        seed = (uint64_t)time(NULL) ^ (uint64_t)pthread_self() ^
               (uint64_t)(uintptr_t)&seed;
    seed ^= seed << 13;
    seed ^= seed >> 7;
    seed ^= seed << 17;
    uint64_t ceil = DB_BACKOFF_BASE_MS << (attempt < 6 ? attempt : 6);
    if (ceil > DB_BACKOFF_CAP_MS)
        ceil = DB_BACKOFF_CAP_MS;
    uint64_t ms = 1 + seed % ceil;
    struct timespec ts = { .tv_sec = 0, .tv_nsec = (long)(ms * 1000000u) };
    nanosleep(&ts, NULL);
}

static int tx_once(struct db *db, enum db_iso iso, db_tx_fn fn, void *arg)
{
    int rc = db_begin_iso(db, iso);
    if (rc < 0)
        return rc;
    int ret = fn(db, arg);
    if (ret < 0) {
        /* A failed statement's code wins over what fn made of it, so a
         * serialization failure is retried even if fn reports it oddly. */
        if (db->tx_err == DB_BUSY)
            ret = DB_BUSY;
        db_rollback(db);
        return ret;
    }
    rc = db_commit(db);
    return rc < 0 ? rc : ret;
}

int db_tx_iso(struct db *db, enum db_iso iso, db_tx_fn fn, void *arg)
{
    int rc = DB_BUSY;
    for (unsigned attempt = 0; attempt < db->tx_attempts; attempt++) {
        if (attempt > 0) {
            db->stats.tx_retries++;
            backoff_sleep(attempt);
        }
        rc = tx_once(db, iso, fn, arg);
        if (rc != DB_BUSY)
            return rc;
    }
    char last[DB_ERRMSG_MAX / 2];
    snprintf(last, sizeof(last), "%.*s", (int)sizeof(last) - 1, db->errmsg);
    return db_fail(db, DB_BUSY, "gave up after %u attempts: %s",
                   db->tx_attempts, last);
}

int db_tx(struct db *db, db_tx_fn fn, void *arg)
{
    return db_tx_iso(db, DB_ISO_SERIALIZABLE, fn, arg);
}
