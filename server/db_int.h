/*
 * db_int: what db.c shares with its backends (db_sqlite.c, db_pg.c), the
 * migrator and the pool. Not for code outside server/db*.c.
 *
 * db.c owns the common rules (transaction state, the dead-transaction gate,
 * retries, error bookkeeping); a backend only talks to its library through
 * struct db_ops and reports failures through db_fail().
 */
#ifndef DROVER_SERVER_DB_INT_H
#define DROVER_SERVER_DB_INT_H

#include <stdarg.h>

#include "server/db.h"

#define DB_MAX_PARAMS 256           /* placeholders per statement */
#define DB_ERRMSG_MAX 512

enum db_iso {
    DB_ISO_SERIALIZABLE,
    /* PostgreSQL only: a fresh snapshot per statement. The migrator needs it
     * because a serializable snapshot is taken before its advisory lock is
     * granted and would miss a migration another replica just committed. */
    DB_ISO_READ_COMMITTED,
};

/* db_open_flags() flags */
#define DB_OPEN_READ_ONLY 1u        /* SQLite: PRAGMA query_only (pool readers) */

struct db_ops {
    int (*prepare)(struct db *db, const char *sql, struct db_stmt **out);
    void (*finalize)(struct db_stmt *st);
    int (*reset)(struct db_stmt *st);
    int (*bind)(struct db_stmt *st, int idx, const struct db_param *p);
    int (*step)(struct db_stmt *st);
    int (*col_count)(struct db_stmt *st);
    bool (*col_is_null)(struct db_stmt *st, int col);
    const char *(*col_text)(struct db_stmt *st, int col);
    int64_t (*col_int64)(struct db_stmt *st, int col);
    const void *(*col_blob)(struct db_stmt *st, int col, size_t *len);
    int64_t (*changes)(struct db_stmt *st);
    int (*exec)(struct db *db, const char *sql);
    int (*begin)(struct db *db, enum db_iso iso);
    int (*commit)(struct db *db);
    /* Best effort; must not reconnect. */
    void (*rollback)(struct db *db);
    void (*close)(struct db *db);
};

struct db {
    enum db_backend backend;
    const struct db_ops *ops;
    void *impl;                 /* the backend's connection state */
    unsigned busy_timeout_ms;
    unsigned connect_timeout_s;
    unsigned tx_attempts;
    unsigned flags;             /* DB_OPEN_* */
    bool in_tx;
    int tx_err;                 /* first failure inside the open transaction */
    struct db_stats stats;
    char errmsg[DB_ERRMSG_MAX];
};

/* Every backend statement starts with this. */
struct db_stmt {
    struct db *db;
};

/*
 * Records a failure: formats the message into db->errmsg, marks an open
 * transaction dead with the first code, and returns code.
 */
int db_fail(struct db *db, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
int db_vfail(struct db *db, int code, const char *fmt, va_list ap)
    __attribute__((format(printf, 3, 0)));
/* A caller mistake caught before anything reached the database (bad index,
 * nested begin): sets the message, returns DB_ERROR, and leaves an open
 * transaction alive, as the server would never have seen it. */
int db_misuse(struct db *db, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

int db_open_flags(const struct db_options *opt, unsigned flags,
                  struct db **out, char *err, size_t errlen);

/* db_begin / db_tx with an explicit isolation (the migrator). */
int db_begin_iso(struct db *db, enum db_iso iso);
int db_tx_iso(struct db *db, enum db_iso iso, db_tx_fn fn, void *arg);

/* Backends: fill db->impl and db->ops, or return a code with err set. */
int db_sqlite_open(struct db *db, const char *data_dir, char *err,
                   size_t errlen);
int db_pg_open(struct db *db, const char *url, char *err, size_t errlen);

/*
 * Rewrites `?` placeholders to $1..$n, leaving those inside '...' string
 * literals, "..." identifiers, -- line comments and block comments alone.
 * Returns a malloc'd string (caller frees) and the count in *nparams, or
 * NULL if out of memory or there are more than DB_MAX_PARAMS.
 */
char *db_pg_translate(const char *sql, int *nparams);

#endif
