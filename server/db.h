/*
 * db: the SQL layer every datastore user goes through, on SQLite or
 * PostgreSQL, chosen by the `datastore` setting.
 *
 * Statements are written once with `?` placeholders; the PostgreSQL backend
 * rewrites them to $1..$n. Parameters are text, int64, blob or null; result
 * columns are read as text, int64 or blob. Errors come back as a negative
 * enum db_code plus a message kept in the handle, so callers can map them to
 * HTTP statuses (DB_CONFLICT -> 409, DB_UNAVAILABLE and DB_BUSY -> 503).
 *
 * Both backends behave alike on purpose:
 *  - transactions are serializable (SQLite: BEGIN IMMEDIATE, one writer at a
 *    time; PostgreSQL: ISOLATION LEVEL SERIALIZABLE), so run them through
 *    db_tx(), which retries on DB_BUSY;
 *  - after any statement fails inside a transaction, the transaction is dead:
 *    later statements fail and db_commit() rolls back and returns the first
 *    error (PostgreSQL's rule, enforced on SQLite too);
 *  - write SQL both dialects accept: TEXT, BIGINT, INTEGER 0/1 for booleans,
 *    INSERT ... RETURNING, ON CONFLICT ... DO UPDATE. PostgreSQL infers a
 *    parameter's type from its context and cannot in `? IS NULL` or
 *    `? + ?`: write CAST(? AS TEXT) / CAST(? AS BIGINT) there.
 *
 * What it owns: one connection per struct db (sqlite3 handle or PGconn), the
 * last error message, and each statement's copies of its parameters.
 * A struct db is used by one thread at a time (the pool gives each worker its
 * own). Statement text is never logged, and error messages never carry
 * parameter values (PostgreSQL DETAIL lines and data-exception messages are
 * dropped for that reason), because parameters may be secrets.
 */
#ifndef DROVER_SERVER_DB_H
#define DROVER_SERVER_DB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum db_code {
    DB_OK = 0,
    DB_DONE = 0,            /* db_step: no more rows */
    DB_ROW = 1,             /* db_step: a row is ready */
    DB_NOTFOUND = -1,       /* a helper expected a row and got none */
    DB_CONFLICT = -2,       /* unique / primary key violation */
    DB_CONSTRAINT = -3,     /* other constraint: foreign key, check, not null */
    DB_BUSY = -4,           /* retryable: locked, serialization, deadlock */
    DB_UNAVAILABLE = -5,    /* cannot connect, connection lost, disk, I/O */
    DB_QUEUE_FULL = -6,     /* db_pool_submit: the queue is at its cap */
    DB_CANCELLED = -7,      /* db_pool: the work never ran (shutting down) */
    DB_ERROR = -8,          /* anything else, including misuse */
};

enum db_backend { DB_SQLITE = 1, DB_POSTGRES = 2 };

struct db;
struct db_stmt;

struct db_options {
    /* "sqlite", or "postgres://..." / "postgresql://..." (libpq URL) */
    const char *datastore;
    const char *data_dir;       /* SQLite: holds drover.db; made 0700 */
    unsigned busy_timeout_ms;   /* SQLite: wait for a lock; 0 = 5000 */
    unsigned connect_timeout_s; /* PostgreSQL: per connection attempt; 0 = 5 */
    unsigned tx_attempts;       /* db_tx(): tries before giving up; 0 = 5 */
};

/* "ok", "not found", "conflict", ... for logs and messages. Never NULL. */
const char *db_code_str(int code);

/*
 * Opens one connection. SQLite: data_dir/drover.db, created 0600, WAL,
 * synchronous=FULL, foreign_keys=ON. PostgreSQL: connects now (failing fast
 * with DB_UNAVAILABLE if it cannot), application_name drover-server.
 * On success *out is the caller's, to be closed with db_close(). On failure
 * returns a negative code, *out is NULL and err holds a message (which never
 * contains the datastore URL: it may carry a password).
 */
int db_open(const struct db_options *opt, struct db **out, char *err,
            size_t errlen);
/* Closes the connection; finalize its statements first. NULL is a no-op. */
void db_close(struct db *db);

enum db_backend db_backend(const struct db *db);
/* The message of the last failure on this handle ("" if none). Owned by db,
 * valid until the next call on it. */
const char *db_errmsg(const struct db *db);

struct db_stats {
    uint64_t tx_retries;    /* db_tx() attempts after the first */
    uint64_t reconnects;    /* PostgreSQL connections re-established */
};
void db_get_stats(const struct db *db, struct db_stats *out);

/* ---- statements ---- */

/*
 * Prepares one statement (no trailing second statement). On success *out is
 * the caller's until db_finalize(). Fails with a code (DB_UNAVAILABLE if the
 * PostgreSQL connection is down and cannot be re-established).
 */
int db_prepare(struct db *db, const char *sql, struct db_stmt **out);
/* Frees the statement and its parameter copies. NULL is a no-op. */
void db_finalize(struct db_stmt *st);
/* Makes the statement runnable again; bindings are kept. */
int db_reset(struct db_stmt *st);

/* Binding: idx is 1-based. Values are copied. A NULL text binds SQL NULL.
 * Unbound parameters are NULL. 0 or DB_ERROR (idx out of range, no memory). */
int db_bind_text(struct db_stmt *st, int idx, const char *s);
int db_bind_int64(struct db_stmt *st, int idx, int64_t v);
int db_bind_blob(struct db_stmt *st, int idx, const void *p, size_t len);
int db_bind_null(struct db_stmt *st, int idx);

/* Runs the statement or advances it: DB_ROW, DB_DONE, or a negative code. */
int db_step(struct db_stmt *st);

/*
 * Columns of the current row, 0-based. Pointers belong to the statement and
 * stay valid until the next db_step/db_reset/db_finalize. Read each column
 * with the accessor matching its type. A NULL value reads as NULL text,
 * 0, or a NULL blob of length 0; out-of-range columns read the same way.
 */
int db_col_count(struct db_stmt *st);
bool db_col_is_null(struct db_stmt *st, int col);
const char *db_col_text(struct db_stmt *st, int col);
int64_t db_col_int64(struct db_stmt *st, int col);
const void *db_col_blob(struct db_stmt *st, int col, size_t *len);
/* Rows changed by an INSERT/UPDATE/DELETE, valid once db_step returned
 * DB_DONE (or the first DB_ROW of ... RETURNING on PostgreSQL). */
int64_t db_changes(struct db_stmt *st);

/* ---- one-call helpers over a parameter array ---- */

enum db_type { DB_T_NULL = 0, DB_T_TEXT, DB_T_INT64, DB_T_BLOB };
struct db_param {
    enum db_type type;
    const char *text;
    int64_t i;
    const void *blob;
    size_t len;
};
#define DB_TEXT(s)      ((struct db_param){ .type = DB_T_TEXT, .text = (s) })
#define DB_INT(v)       ((struct db_param){ .type = DB_T_INT64, .i = (v) })
#define DB_BLOB(p, n)   ((struct db_param){ .type = DB_T_BLOB, .blob = (p), \
                                         .len = (n) })
#define DB_NULL         ((struct db_param){ .type = DB_T_NULL })
/* Expands to "array, count": db_execp(db, sql, DB_ARGS(DB_TEXT(n)), NULL) */
#define DB_ARGS(...) (const struct db_param[]){ __VA_ARGS__ }, \
    (sizeof((const struct db_param[]){ __VA_ARGS__ }) / sizeof(struct db_param))

/* Binds params[0..n) to ?1..?n. 0 or DB_ERROR. */
int db_bind_params(struct db_stmt *st, const struct db_param *params, size_t n);
/* db_prepare + db_bind_params; on failure nothing is left to finalize. */
int db_query(struct db *db, const char *sql, const struct db_param *params,
             size_t n, struct db_stmt **out);
/* Runs a statement to completion, discarding rows. *changes (may be NULL)
 * gets the changed-row count. 0 or a negative code. */
int db_execp(struct db *db, const char *sql, const struct db_param *params,
             size_t n, int64_t *changes);
/* First column of the first row as int64: 0, DB_NOTFOUND, or a code. */
int db_query_int64(struct db *db, const char *sql,
                   const struct db_param *params, size_t n, int64_t *out);
/* Parameterless SQL, possibly several statements (schema scripts). */
int db_exec(struct db *db, const char *sql);

/* ---- transactions ---- */

/* Starts a serializable transaction (see the top). Nesting is DB_ERROR. */
int db_begin(struct db *db);
/* Commits. If a statement failed inside the transaction, rolls back and
 * returns that statement's code. Either way the transaction is over. */
int db_commit(struct db *db);
/* Rolls back; a no-op returning 0 when no transaction is open or the
 * connection that held it is gone. */
int db_rollback(struct db *db);

/*
 * Runs fn(db, arg) inside a transaction and commits when it returns >= 0
 * (that value is returned). A negative return rolls back and is returned.
 * On DB_BUSY from begin, fn or commit, it rolls back, sleeps a short
 * jittered backoff and runs fn again, up to opt->tx_attempts times in all;
 * then DB_BUSY. fn may therefore run several times: it must not keep state
 * from a failed attempt. DB_UNAVAILABLE is not retried (a lost COMMIT may or
 * may not have happened).
 */
typedef int (*db_tx_fn)(struct db *db, void *arg);
int db_tx(struct db *db, db_tx_fn fn, void *arg);

#endif
