/*
 * db_pg: the PostgreSQL backend of db.h, over libpq.
 *
 * Owns the PGconn and a private copy of the datastore URL (it may carry a
 * password, so it is never logged or put in a message). A lost connection is
 * noticed by the statement that hits it, which fails with DB_UNAVAILABLE; the
 * next use outside a transaction connects again. Inside a transaction there
 * is no reconnecting: the transaction died with its connection.
 *
 * Statements run with PQexecParams (unnamed statements, text results, blobs
 * sent in binary as bytea). Other parameters go as text of unknown type and
 * the server infers their type from context, much as SQLite's dynamic typing
 * would take them.
 */
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "server/db_int.h"

#define PG_OID_BYTEA 17

struct pg_conn {
    PGconn *conn;
    char *url;
    char timeout[16];
};

struct pg_stmt {
    struct db_stmt base;
    char *sql;              /* translated to $n */
    int nparams;
    char **vals;            /* owned copies; NULL = SQL NULL */
    int *lens;
    int *fmts;
    Oid *types;
    PGresult *res;
    bool executed;
    int row;                /* current row; -1 before the first */
    int nrows, ncols;
    int64_t changes;
    unsigned char **blobs;  /* per column, decoded for the current row */
    size_t *blob_lens;
};

static struct pg_conn *PC(struct db *db)
{
    return db->impl;
}

static struct pg_stmt *PS(struct db_stmt *st)
{
    return (struct pg_stmt *)st;
}

/* ---- placeholders ---- */

/* If s[i] opens a literal, identifier or comment, returns the index just
 * past its end (or the end of s); otherwise returns i. */
static size_t skip_region(const char *s, size_t i)
{
    char c = s[i];
    if (c == '\'' || c == '"') {
        size_t j = i + 1;
        while (s[j] && s[j] != c)
            j++;
        return s[j] ? j + 1 : j;
    }
    if (c == '-' && s[i + 1] == '-') {
        size_t j = i + 2;
        while (s[j] && s[j] != '\n')
            j++;
        return j;
    }
    if (c == '/' && s[i + 1] == '*') {
        const char *e = strstr(s + i + 2, "*/");
        return e ? (size_t)(e - s) + 2 : i + strlen(s + i);
    }
    return i;
}

/* One pass: counts placeholders and, if out is given, writes the result.
 * Returns the output length. */
static size_t translate_pass(const char *sql, char *out, size_t cap, int *n)
{
    size_t o = 0;
    *n = 0;
    for (size_t i = 0; sql[i];) {
        size_t end = skip_region(sql, i);
        if (end > i) {
            if (out)
                memcpy(out + o, sql + i, end - i);
            o += end - i;
            i = end;
        } else if (sql[i] == '?') {
            ++*n;
            char num[16];
            int w = snprintf(num, sizeof(num), "$%d", *n);
            if (out && (size_t)w <= cap - o)
                memcpy(out + o, num, (size_t)w);
            o += (size_t)w;
            i++;
        } else {
            if (out)
                out[o] = sql[i];
            o++;
            i++;
        }
    }
    return o;
}

/* Whether something other than blanks follows a ';' outside literals and
 * comments: the extended protocol runs one statement, and SQLite's prepare
 * refuses a second one, so refuse it here too, before it reaches the server. */
static bool has_second_statement(const char *s)
{
    bool after_semi = false;
    for (size_t i = 0; s[i];) {
        size_t end = skip_region(s, i);
        if (end > i && s[i] != '-' && s[i] != '/' && after_semi)
            return true;
        if (end > i) {
            i = end;
            continue;
        }
        if (s[i] == ';')
            after_semi = true;
        else if (after_semi && !strchr(" \t\r\n", s[i]))
            return true;
        i++;
    }
    return false;
}

char *db_pg_translate(const char *sql, int *nparams)
{
    int n;
    size_t len = translate_pass(sql, NULL, 0, &n);
    if (n > DB_MAX_PARAMS)
        return NULL;
    char *out = malloc(len + 1);
    if (!out)
        return NULL;
    translate_pass(sql, out, len, &n);
    out[len] = '\0';
    *nparams = n;
    return out;
}

/* ---- errors ---- */

static int classify(const char *state, bool conn_bad)
{
    if (conn_bad || !state)
        return conn_bad ? DB_UNAVAILABLE : DB_ERROR;
    if (strcmp(state, "23505") == 0)
        return DB_CONFLICT;
    if (strncmp(state, "23", 2) == 0)
        return DB_CONSTRAINT;
    if (strcmp(state, "40001") == 0 || strcmp(state, "40P01") == 0 ||
        strcmp(state, "55P03") == 0)
        return DB_BUSY;
    /* connection exceptions, admin/crash shutdown, out of resources */
    if (strncmp(state, "08", 2) == 0 || strncmp(state, "57P", 3) == 0 ||
        strncmp(state, "53", 2) == 0)
        return DB_UNAVAILABLE;
    return DB_ERROR;
}

/* First line of libpq's message; the rest is advice to humans. */
static int conn_fail(struct db *db, int code, const char *what, PGconn *c)
{
    const char *m = c ? PQerrorMessage(c) : "out of memory";
    int len = (int)strcspn(m, "\n");
    return db_fail(db, code, "postgres: %s: %.*s", what, len, m);
}

static int result_fail(struct db *db, PGresult *r)
{
    PGconn *c = PC(db)->conn;
    bool bad = PQstatus(c) == CONNECTION_BAD;
    const char *state = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
    const char *msg = r ? PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY) : NULL;
    int code = classify(state, bad);
    if (!msg)
        return conn_fail(db, code, bad ? "connection lost" : "error", c);
    /* Data exceptions quote the offending value, which may be a secret;
     * DETAIL lines (never used here) quote key values for the same reason. */
    if (state && strncmp(state, "22", 2) == 0)
        msg = "invalid parameter value";
    return db_fail(db, code, "postgres: %s (SQLSTATE %s)", msg,
                   state ? state : "none");
}

/* ---- connection ---- */

/* libpq prints NOTICEs (e.g. "drop cascades to ...") to stderr by default;
 * they are not errors, so they go to the debug log, primary line only. */
static void on_notice(void *arg, const PGresult *r)
{
    (void)arg;
    const char *m = PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY);
    log_debug("datastore: postgres notice: %s", m ? m : "?");
}

static PGconn *pg_connect(struct pg_conn *pc)
{
    /* Our defaults come before dbname, which expands the URL: a setting
     * given in the URL wins. Keepalives notice a dead peer in about 1min. */
    const char *const keys[] = {
        "connect_timeout", "application_name", "client_encoding",
        "keepalives_idle", "keepalives_interval", "keepalives_count",
        "dbname", NULL,
    };
    const char *const vals[] = {
        pc->timeout, "drover-server", "UTF8", "30", "10", "3", pc->url, NULL,
    };
    PGconn *c = PQconnectdbParams(keys, vals, 1);
    if (c)
        PQsetNoticeReceiver(c, on_notice, NULL);
    return c;
}

/* Makes sure there is a live connection, reconnecting outside a
 * transaction. */
static int pg_ensure(struct db *db)
{
    struct pg_conn *pc = PC(db);
    if (pc->conn && PQstatus(pc->conn) == CONNECTION_OK)
        return DB_OK;
    if (db->in_tx)
        return db_fail(db, DB_UNAVAILABLE, "postgres: connection lost "
                       "inside a transaction");
    PQfinish(pc->conn);
    pc->conn = pg_connect(pc);
    if (PQstatus(pc->conn) != CONNECTION_OK) {
        int rc = conn_fail(db, DB_UNAVAILABLE, "cannot connect", pc->conn);
        PQfinish(pc->conn);
        pc->conn = NULL;
        return rc;
    }
    db->stats.reconnects++;
    log_warn("datastore: reconnected to PostgreSQL");
    return DB_OK;
}

/* Runs parameterless SQL; *cmd (optional) gets the command tag. */
static int pg_run(struct db *db, const char *sql, char *cmd, size_t cmdlen)
{
    int rc = pg_ensure(db);
    if (rc < 0)
        return rc;
    PGresult *r = PQexec(PC(db)->conn, sql);
    ExecStatusType s = PQresultStatus(r);
    if (s == PGRES_COMMAND_OK || s == PGRES_TUPLES_OK ||
        s == PGRES_EMPTY_QUERY) {
        if (cmd)
            snprintf(cmd, cmdlen, "%s", PQcmdStatus(r));
        rc = DB_OK;
    } else {
        rc = result_fail(db, r);
    }
    PQclear(r);
    return rc;
}

static int pg_exec(struct db *db, const char *sql)
{
    return pg_run(db, sql, NULL, 0);
}

static int pg_begin(struct db *db, enum db_iso iso)
{
    return pg_run(db, iso == DB_ISO_READ_COMMITTED
                      ? "BEGIN ISOLATION LEVEL READ COMMITTED"
                      : "BEGIN ISOLATION LEVEL SERIALIZABLE", NULL, 0);
}

static int pg_commit(struct db *db)
{
    char tag[32];
    int rc = pg_run(db, "COMMIT", tag, sizeof(tag));
    if (rc < 0)
        return rc;
    /* The server answers ROLLBACK to a COMMIT of an aborted transaction. */
    if (strcmp(tag, "COMMIT") != 0)
        return db_fail(db, DB_ERROR, "postgres: transaction was rolled back");
    return DB_OK;
}

static void pg_rollback(struct db *db)
{
    PGconn *c = PC(db)->conn;
    if (c && PQstatus(c) == CONNECTION_OK)
        PQclear(PQexec(c, "ROLLBACK"));
}

static void pg_close(struct db *db)
{
    struct pg_conn *pc = PC(db);
    PQfinish(pc->conn);
    free(pc->url);
    free(pc);
    db->impl = NULL;
}

/* ---- statements ---- */

static void clear_blobs(struct pg_stmt *ps)
{
    for (int i = 0; ps->blobs && i < ps->ncols; i++) {
        PQfreemem(ps->blobs[i]);
        ps->blobs[i] = NULL;
    }
}

static void clear_result(struct pg_stmt *ps)
{
    clear_blobs(ps);
    free(ps->blobs);
    free(ps->blob_lens);
    ps->blobs = NULL;
    ps->blob_lens = NULL;
    PQclear(ps->res);
    ps->res = NULL;
    ps->executed = false;
    ps->row = -1;
    ps->nrows = ps->ncols = 0;
    ps->changes = 0;
}

static void pg_finalize(struct db_stmt *st)
{
    struct pg_stmt *ps = PS(st);
    clear_result(ps);
    for (int i = 0; ps->vals && i < ps->nparams; i++)
        free(ps->vals[i]);
    free(ps->vals);
    free(ps->lens);
    free(ps->fmts);
    free(ps->types);
    free(ps->sql);
    free(ps);
}

static int pg_prepare(struct db *db, const char *sql, struct db_stmt **out)
{
    if (has_second_statement(sql))
        return db_misuse(db, "one statement per db_prepare");
    int rc = pg_ensure(db);
    if (rc < 0)
        return rc;
    struct pg_stmt *ps = calloc(1, sizeof(*ps));
    if (!ps)
        return db_fail(db, DB_ERROR, "out of memory");
    ps->base.db = db;
    ps->row = -1;
    ps->sql = db_pg_translate(sql, &ps->nparams);
    size_t n = ps->sql && ps->nparams > 0 ? (size_t)ps->nparams : 1;
    ps->vals = calloc(n, sizeof(*ps->vals));
    ps->lens = calloc(n, sizeof(*ps->lens));
    ps->fmts = calloc(n, sizeof(*ps->fmts));
    ps->types = calloc(n, sizeof(*ps->types));
    if (!ps->sql || !ps->vals || !ps->lens || !ps->fmts || !ps->types) {
        pg_finalize(&ps->base);
        return db_fail(db, DB_ERROR, "out of memory or more than %d "
                       "parameters", DB_MAX_PARAMS);
    }
    *out = &ps->base;
    return DB_OK;
}

static int pg_reset(struct db_stmt *st)
{
    clear_result(PS(st));
    return DB_OK;
}

/* A private copy of the parameter's bytes, or NULL with *err for SQL NULL
 * (*err = 0) or out of memory (*err = 1). */
static char *param_copy(const struct db_param *p, size_t *len, int *err)
{
    char *v = NULL;
    *err = 0;
    *len = 0;
    if (p->type == DB_T_TEXT && p->text) {
        v = strdup(p->text);
    } else if (p->type == DB_T_INT64) {
        v = malloc(24);
        if (v)
            snprintf(v, 24, "%lld", (long long)p->i);
    } else if (p->type == DB_T_BLOB) {
        v = malloc(p->len ? p->len : 1);
        if (v && p->len)
            memcpy(v, p->blob, p->len);
        *len = p->len;
    } else {
        return NULL;
    }
    *err = v == NULL;
    return v;
}

static int pg_bind(struct db_stmt *st, int idx, const struct db_param *p)
{
    struct pg_stmt *ps = PS(st);
    if (idx < 1 || idx > ps->nparams)
        return db_misuse(st->db, "parameter %d out of range", idx);
    if (p->type == DB_T_BLOB && p->len > (size_t)INT32_MAX)
        return db_misuse(st->db, "blob parameter too large");
    size_t len;
    int oom;
    char *v = param_copy(p, &len, &oom);
    if (oom)
        return db_fail(st->db, DB_ERROR, "out of memory");
    int i = idx - 1;
    free(ps->vals[i]);
    ps->vals[i] = v;
    ps->lens[i] = (int)len;
    ps->fmts[i] = p->type == DB_T_BLOB;
    /* Only blobs are typed (binary format needs it). An int64 goes as text
     * of unknown type, so the server takes the type the context wants:
     * bigint for a BIGINT column, integer for a function taking one. */
    ps->types[i] = p->type == DB_T_BLOB ? PG_OID_BYTEA : 0;
    return DB_OK;
}

static int64_t cmd_changes(PGresult *r)
{
    const char *tag = PQcmdStatus(r);
    if (strncmp(tag, "INSERT", 6) && strncmp(tag, "UPDATE", 6) &&
        strncmp(tag, "DELETE", 6) && strncmp(tag, "MERGE", 5))
        return 0;
    return strtoll(PQcmdTuples(r), NULL, 10);
}

static int pg_execute(struct pg_stmt *ps)
{
    struct db *db = ps->base.db;
    int rc = pg_ensure(db);
    if (rc < 0)
        return rc;
    PGresult *r = PQexecParams(PC(db)->conn, ps->sql, ps->nparams, ps->types,
                               (const char *const *)ps->vals, ps->lens,
                               ps->fmts, 0);
    ExecStatusType s = PQresultStatus(r);
    if (s != PGRES_TUPLES_OK && s != PGRES_COMMAND_OK) {
        rc = result_fail(db, r);
        PQclear(r);
        return rc;
    }
    ps->ncols = PQnfields(r);
    size_t nc = ps->ncols > 0 ? (size_t)ps->ncols : 1;
    ps->blobs = calloc(nc, sizeof(*ps->blobs));
    ps->blob_lens = calloc(nc, sizeof(*ps->blob_lens));
    ps->res = r;
    if (!ps->blobs || !ps->blob_lens) {
        clear_result(ps);
        return db_fail(db, DB_ERROR, "out of memory");
    }
    ps->executed = true;
    ps->nrows = PQntuples(r);
    ps->changes = cmd_changes(r);
    return DB_OK;
}

static int pg_step(struct db_stmt *st)
{
    struct pg_stmt *ps = PS(st);
    if (!ps->executed) {
        int rc = pg_execute(ps);
        if (rc < 0)
            return rc;
    }
    clear_blobs(ps);
    if (ps->row + 1 >= ps->nrows) {
        ps->row = ps->nrows;
        return DB_DONE;
    }
    ps->row++;
    return DB_ROW;
}

static int have(struct pg_stmt *ps, int col)
{
    return ps->res && ps->row >= 0 && ps->row < ps->nrows &&
           col >= 0 && col < ps->ncols;
}

static int pg_col_count(struct db_stmt *st)
{
    return PS(st)->ncols;
}

static bool pg_col_is_null(struct db_stmt *st, int col)
{
    struct pg_stmt *ps = PS(st);
    return !have(ps, col) || PQgetisnull(ps->res, ps->row, col);
}

static const char *pg_col_text(struct db_stmt *st, int col)
{
    struct pg_stmt *ps = PS(st);
    if (pg_col_is_null(st, col))
        return NULL;
    return PQgetvalue(ps->res, ps->row, col);
}

static int64_t pg_col_int64(struct db_stmt *st, int col)
{
    const char *v = pg_col_text(st, col);
    if (!v)
        return 0;
    if (v[0] == 't' || v[0] == 'f')     /* a boolean column */
        return v[0] == 't';
    return strtoll(v, NULL, 10);
}

static const void *pg_col_blob(struct db_stmt *st, int col, size_t *len)
{
    struct pg_stmt *ps = PS(st);
    *len = 0;
    const char *v = pg_col_text(st, col);
    if (!v)
        return NULL;
    if (!ps->blobs[col]) {
        /* Handles both bytea_output formats (hex and escape). */
        ps->blobs[col] = PQunescapeBytea((const unsigned char *)v,
                                         &ps->blob_lens[col]);
        if (!ps->blobs[col])
            return NULL;
    }
    *len = ps->blob_lens[col];
    return ps->blobs[col];
}

static int64_t pg_changes(struct db_stmt *st)
{
    return PS(st)->changes;
}

static const struct db_ops pg_ops = {
    .prepare = pg_prepare,
    .finalize = pg_finalize,
    .reset = pg_reset,
    .bind = pg_bind,
    .step = pg_step,
    .col_count = pg_col_count,
    .col_is_null = pg_col_is_null,
    .col_text = pg_col_text,
    .col_int64 = pg_col_int64,
    .col_blob = pg_col_blob,
    .changes = pg_changes,
    .exec = pg_exec,
    .begin = pg_begin,
    .commit = pg_commit,
    .rollback = pg_rollback,
    .close = pg_close,
};

int db_pg_open(struct db *db, const char *url, char *err, size_t errlen)
{
    /* libpq's parse errors quote pieces of the URL, maybe the password:
     * check it first and say only that it is malformed. */
    char *perr = NULL;
    PQconninfoOption *parsed = PQconninfoParse(url, &perr);
    PQfreemem(perr);
    if (!parsed) {
        snprintf(err, errlen, "datastore: malformed postgres:// URL");
        return DB_ERROR;
    }
    PQconninfoFree(parsed);
    struct pg_conn *pc = calloc(1, sizeof(*pc));
    if (!pc || !(pc->url = strdup(url))) {
        free(pc);
        snprintf(err, errlen, "out of memory");
        return DB_ERROR;
    }
    snprintf(pc->timeout, sizeof(pc->timeout), "%u", db->connect_timeout_s);
    pc->conn = pg_connect(pc);
    if (PQstatus(pc->conn) != CONNECTION_OK) {
        const char *m = pc->conn ? PQerrorMessage(pc->conn) : "out of memory";
        snprintf(err, errlen, "postgres: cannot connect: %.*s",
                 (int)strcspn(m, "\n"), m);
        PQfinish(pc->conn);
        free(pc->url);
        free(pc);
        return DB_UNAVAILABLE;
    }
    db->impl = pc;
    db->ops = &pg_ops;
    return DB_OK;
}
