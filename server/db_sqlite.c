/*
 * db_sqlite: the SQLite backend of db.h.
 *
 * Owns the sqlite3 handle (db->impl) and its statements. The file lives at
 * data-dir/drover.db, mode 0600 (SQLite gives the -wal and -shm files the
 * database file's mode). Durability: WAL with synchronous=FULL syncs the WAL
 * at every commit, so an acknowledged write survives SIGKILL and power loss.
 * Write transactions are BEGIN IMMEDIATE: the write lock is taken up front,
 * so a transaction that read first never fails to upgrade half-way, and with
 * one writer SQLite transactions are serializable, like PostgreSQL ones here.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "server/db_int.h"

struct lite_stmt {
    struct db_stmt base;
    sqlite3_stmt *s;
    int64_t changes;
};

static sqlite3 *H(struct db *db)
{
    return db->impl;
}

static struct lite_stmt *LS(struct db_stmt *st)
{
    return (struct lite_stmt *)st;
}

static int map_rc(int rc)
{
    switch (rc & 0xff) {
    case SQLITE_CONSTRAINT:
        if (rc == SQLITE_CONSTRAINT_UNIQUE || rc == SQLITE_CONSTRAINT_PRIMARYKEY)
            return DB_CONFLICT;
        return DB_CONSTRAINT;
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
        return DB_BUSY;
    case SQLITE_CANTOPEN:
    case SQLITE_IOERR:
    case SQLITE_FULL:
        return DB_UNAVAILABLE;
    default:
        return DB_ERROR;
    }
}

static int lite_fail(struct db *db, int rc)
{
    return db_fail(db, map_rc(rc), "sqlite: %s (%d)", sqlite3_errmsg(H(db)),
                   rc);
}

/* ---- statements ---- */

static int only_space(const char *s)
{
    for (; *s; s++)
        if (*s != ' ' && *s != '\t' && *s != '\n' && *s != '\r' && *s != ';')
            return 0;
    return 1;
}

static int lite_prepare(struct db *db, const char *sql, struct db_stmt **out)
{
    sqlite3_stmt *s = NULL;
    const char *tail = NULL;
    int rc = sqlite3_prepare_v2(H(db), sql, -1, &s, &tail);
    if (rc != SQLITE_OK)
        return lite_fail(db, rc);
    if (!s)
        return db_misuse(db, "empty statement");
    /* PostgreSQL refuses several statements with parameters; refuse here
     * too rather than silently ignoring the rest. */
    if (tail && !only_space(tail)) {
        sqlite3_finalize(s);
        return db_misuse(db, "one statement per db_prepare");
    }
    struct lite_stmt *ls = calloc(1, sizeof(*ls));
    if (!ls) {
        sqlite3_finalize(s);
        return db_fail(db, DB_ERROR, "out of memory");
    }
    ls->base.db = db;
    ls->s = s;
    *out = &ls->base;
    return DB_OK;
}

static void lite_finalize(struct db_stmt *st)
{
    sqlite3_finalize(LS(st)->s);
    free(st);
}

static int lite_reset(struct db_stmt *st)
{
    /* sqlite3_reset repeats the last step's error; that was reported. */
    sqlite3_reset(LS(st)->s);
    LS(st)->changes = 0;
    return DB_OK;
}

static int lite_bind(struct db_stmt *st, int idx, const struct db_param *p)
{
    sqlite3_stmt *s = LS(st)->s;
    int rc;
    switch (p->type) {
    case DB_T_TEXT:
        rc = p->text ? sqlite3_bind_text(s, idx, p->text, -1, SQLITE_TRANSIENT)
                     : sqlite3_bind_null(s, idx);
        break;
    case DB_T_INT64:
        rc = sqlite3_bind_int64(s, idx, p->i);
        break;
    case DB_T_BLOB:
        /* A NULL pointer would bind SQL NULL, not an empty blob. */
        rc = p->len == 0 ? sqlite3_bind_zeroblob(s, idx, 0)
                         : sqlite3_bind_blob64(s, idx, p->blob, p->len,
                                               SQLITE_TRANSIENT);
        break;
    default:
        rc = sqlite3_bind_null(s, idx);
        break;
    }
    if (rc == SQLITE_RANGE)
        return db_misuse(st->db, "parameter %d out of range", idx);
    return rc == SQLITE_OK ? DB_OK : lite_fail(st->db, rc);
}

static int lite_step(struct db_stmt *st)
{
    struct lite_stmt *ls = LS(st);
    int rc = sqlite3_step(ls->s);
    if (rc == SQLITE_ROW)
        return DB_ROW;
    if (rc == SQLITE_DONE) {
        ls->changes = sqlite3_stmt_readonly(ls->s) ? 0
                      : sqlite3_changes64(H(st->db));
        return DB_DONE;
    }
    return lite_fail(st->db, rc);
}

static int col_ok(struct db_stmt *st, int col)
{
    return col >= 0 && col < sqlite3_column_count(LS(st)->s);
}

static int lite_col_count(struct db_stmt *st)
{
    return sqlite3_column_count(LS(st)->s);
}

static bool lite_col_is_null(struct db_stmt *st, int col)
{
    return !col_ok(st, col) ||
           sqlite3_column_type(LS(st)->s, col) == SQLITE_NULL;
}

static const char *lite_col_text(struct db_stmt *st, int col)
{
    if (!col_ok(st, col))
        return NULL;
    return (const char *)sqlite3_column_text(LS(st)->s, col);
}

static int64_t lite_col_int64(struct db_stmt *st, int col)
{
    return col_ok(st, col) ? sqlite3_column_int64(LS(st)->s, col) : 0;
}

static const void *lite_col_blob(struct db_stmt *st, int col, size_t *len)
{
    *len = 0;
    if (lite_col_is_null(st, col))
        return NULL;
    const void *p = sqlite3_column_blob(LS(st)->s, col);
    *len = (size_t)sqlite3_column_bytes(LS(st)->s, col);
    /* SQLite hands back NULL for an empty blob; PostgreSQL does not. */
    return p ? p : "";
}

static int64_t lite_changes(struct db_stmt *st)
{
    return LS(st)->changes;
}

/* ---- connection ---- */

static int lite_exec(struct db *db, const char *sql)
{
    char *msg = NULL;
    int rc = sqlite3_exec(H(db), sql, NULL, NULL, &msg);
    if (rc == SQLITE_OK)
        return DB_OK;
    rc = sqlite3_extended_errcode(H(db));
    int code = db_fail(db, map_rc(rc), "sqlite: %s (%d)",
                       msg ? msg : sqlite3_errstr(rc), rc);
    sqlite3_free(msg);
    return code;
}

static int lite_begin(struct db *db, enum db_iso iso)
{
    (void)iso;      /* one writer at a time: always serializable */
    return lite_exec(db, "BEGIN IMMEDIATE");
}

static int lite_commit(struct db *db)
{
    return lite_exec(db, "COMMIT");
}

static void lite_rollback(struct db *db)
{
    /* Some errors (SQLITE_FULL, IOERR, NOMEM) already rolled back. */
    if (!sqlite3_get_autocommit(H(db)))
        sqlite3_exec(H(db), "ROLLBACK", NULL, NULL, NULL);
}

static void lite_close(struct db *db)
{
    sqlite3_close_v2(H(db));
    db->impl = NULL;
}

static const struct db_ops lite_ops = {
    .prepare = lite_prepare,
    .finalize = lite_finalize,
    .reset = lite_reset,
    .bind = lite_bind,
    .step = lite_step,
    .col_count = lite_col_count,
    .col_is_null = lite_col_is_null,
    .col_text = lite_col_text,
    .col_int64 = lite_col_int64,
    .col_blob = lite_col_blob,
    .changes = lite_changes,
    .exec = lite_exec,
    .begin = lite_begin,
    .commit = lite_commit,
    .rollback = lite_rollback,
    .close = lite_close,
};

/* ---- open ---- */

/* Tightens an existing companion file (-wal, -shm) left with a wider mode. */
static void tighten(const char *path, const char *suffix)
{
    char p[PATH_MAX];
    int n = snprintf(p, sizeof(p), "%s%s", path, suffix);
    if (n > 0 && (size_t)n < sizeof(p))
        chmod(p, 0600);
}

/* Creates the directory and the database file ourselves so the file is
 * 0600 from its first byte: it holds password and token hashes. */
static int make_file(const char *dir, const char *path, char *err,
                     size_t errlen)
{
    if (mkdir(dir, 0700) < 0 && errno != EEXIST) {
        snprintf(err, errlen, "cannot create data-dir %s: %s", dir,
                 strerror(errno));
        return -1;
    }
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0) {
        snprintf(err, errlen, "cannot open %s: %s", path, strerror(errno));
        return -1;
    }
    int r = fchmod(fd, 0600);
    int e = errno;
    close(fd);
    if (r < 0) {
        snprintf(err, errlen, "cannot chmod %s: %s", path, strerror(e));
        return -1;
    }
    tighten(path, "-wal");
    tighten(path, "-shm");
    return 0;
}

/* Runs a pragma that answers with one row and checks the answer. */
static int pragma_expect(sqlite3 *h, const char *sql, const char *want)
{
    sqlite3_stmt *s = NULL;
    int ok = 0;
    if (sqlite3_prepare_v2(h, sql, -1, &s, NULL) == SQLITE_OK &&
        sqlite3_step(s) == SQLITE_ROW) {
        const char *v = (const char *)sqlite3_column_text(s, 0);
        ok = v && strcmp(v, want) == 0;
    }
    sqlite3_finalize(s);
    return ok ? 0 : -1;
}

/*
 * Switching to WAL needs an exclusive lock and can fail with SQLITE_BUSY
 * without consulting the busy handler while another connection is opening
 * the same new file, so retry for up to the busy timeout. Once the file is
 * in WAL mode (it stays so), the first check answers without any lock.
 */
static int enable_wal(sqlite3 *h, unsigned timeout_ms)
{
    for (unsigned waited = 0;; waited += 10) {
        if (pragma_expect(h, "PRAGMA journal_mode", "wal") == 0 ||
            pragma_expect(h, "PRAGMA journal_mode=WAL", "wal") == 0)
            return 0;
        if ((sqlite3_errcode(h) & 0xff) != SQLITE_BUSY || waited >= timeout_ms)
            return -1;
        sqlite3_sleep(10);
    }
}

static int configure(struct db *db, sqlite3 *h, char *err, size_t errlen)
{
    sqlite3_extended_result_codes(h, 1);
    sqlite3_busy_timeout(h, (int)db->busy_timeout_ms);
    if (enable_wal(h, db->busy_timeout_ms) < 0) {
        snprintf(err, errlen, "sqlite: cannot enable WAL: %s",
                 sqlite3_errmsg(h));
        return DB_UNAVAILABLE;
    }
    const char *sql = (db->flags & DB_OPEN_READ_ONLY)
        ? "PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON; "
          "PRAGMA query_only=ON;"
        : "PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON;";
    if (sqlite3_exec(h, sql, NULL, NULL, NULL) != SQLITE_OK) {
        snprintf(err, errlen, "sqlite: %s", sqlite3_errmsg(h));
        return DB_ERROR;
    }
    return DB_OK;
}

int db_sqlite_open(struct db *db, const char *data_dir, char *err,
                   size_t errlen)
{
    char path[PATH_MAX];
    int n = snprintf(path, sizeof(path), "%s/drover.db", data_dir);
    if (n < 0 || (size_t)n >= sizeof(path)) {
        snprintf(err, errlen, "data-dir path too long");
        return DB_ERROR;
    }
    if (!sqlite3_threadsafe()) {
        snprintf(err, errlen, "sqlite was built without thread support");
        return DB_ERROR;
    }
    if (make_file(data_dir, path, err, errlen) < 0)
        return DB_UNAVAILABLE;
    sqlite3 *h = NULL;
    /* NOMUTEX: each connection is used by one thread at a time. */
    int rc = sqlite3_open_v2(path, &h,
                             SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL);
    if (rc != SQLITE_OK) {
        snprintf(err, errlen, "sqlite: cannot open %s: %s", path,
                 h ? sqlite3_errmsg(h) : sqlite3_errstr(rc));
        sqlite3_close_v2(h);
        return DB_UNAVAILABLE;
    }
    rc = configure(db, h, err, errlen);
    if (rc < 0) {
        sqlite3_close_v2(h);
        return rc;
    }
    db->impl = h;
    db->ops = &lite_ops;
    return DB_OK;
}
