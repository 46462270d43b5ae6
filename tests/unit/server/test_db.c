/*
 * Tests of server/db*.c. The same test functions run against SQLite (a fresh
 * data-dir per test) and a real PostgreSQL (one throwaway server per suite
 * run, from tests/support/pgtmp, with the schema dropped before each test).
 * Every wait is bounded so a broken build fails instead of hanging.
 */
#include <check.h>
#include <ftw.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/loop.h"
#include "server/db.h"
#include "server/db_int.h"
#include "server/db_migrate.h"
#include "server/db_pool.h"
#include "tests/support/pgtmp.h"

static struct pgtmp *g_pg;
static char g_dir[64];
static char g_store[256];

/* ---- fixtures ---- */

static void pg_suite_setup(void)
{
    char err[1024];
    g_pg = pgtmp_start(err, sizeof(err));
    ck_assert_msg(g_pg != NULL, "%s", err);
}

static void pg_suite_teardown(void)
{
    pgtmp_stop(g_pg);
    g_pg = NULL;
}

static struct db_options opts(void)
{
    return (struct db_options){ .datastore = g_store, .data_dir = g_dir,
                                .busy_timeout_ms = 10000 };
}

static struct db *open_opt(struct db_options o)
{
    struct db *db = NULL;
    char err[512];
    int rc = db_open(&o, &db, err, sizeof(err));
    ck_assert_msg(rc == DB_OK, "db_open: %s", err);
    return db;
}

static struct db *open_db(void)
{
    return open_opt(opts());
}

static void lite_setup(void)
{
    snprintf(g_dir, sizeof(g_dir), "/tmp/drover-dbtest-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(g_dir));
    snprintf(g_store, sizeof(g_store), "sqlite");
}

static int rm_entry(const char *p, const struct stat *sb, int f,
                    struct FTW *ftw)
{
    (void)sb;
    (void)f;
    (void)ftw;
    return remove(p);
}

static void lite_teardown(void)
{
    nftw(g_dir, rm_entry, 8, FTW_DEPTH | FTW_PHYS);
}

static void pg_setup(void)
{
    g_dir[0] = '\0';
    snprintf(g_store, sizeof(g_store), "%s", pgtmp_url(g_pg));
    struct db *db = open_db();
    ck_assert_int_eq(db_exec(db, "DROP SCHEMA public CASCADE; "
                                 "CREATE SCHEMA public"), DB_OK);
    db_close(db);
}

static void pg_teardown(void)
{
}

/* ---- helpers ---- */

static uint64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void sleep_ms(long ms)
{
    struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
    nanosleep(&ts, NULL);
}

static void make_kv(struct db *db)
{
    const char *sql = db_backend(db) == DB_POSTGRES
        ? "CREATE TABLE kv (id BIGINT PRIMARY KEY, name TEXT UNIQUE, "
          "n BIGINT, data BYTEA, note TEXT)"
        : "CREATE TABLE kv (id BIGINT PRIMARY KEY, name TEXT UNIQUE, "
          "n BIGINT, data BLOB, note TEXT)";
    ck_assert_int_eq(db_exec(db, sql), DB_OK);
}

static int64_t count(struct db *db, const char *sql)
{
    int64_t n = -1;
    int rc = db_query_int64(db, sql, NULL, 0, &n);
    ck_assert_msg(rc == DB_OK, "%s: %s", sql, db_errmsg(db));
    return n;
}

static int insert_kv(struct db *db, int64_t id, const char *name)
{
    return db_execp(db, "INSERT INTO kv (id, name, n) VALUES (?, ?, ?)",
                    DB_ARGS(DB_INT(id), DB_TEXT(name), DB_INT(id)), NULL);
}

/* A latch other threads open; waits are bounded. */
struct gate {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int open;
};
#define GATE_INIT { PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0 }

static int gate_wait(struct gate *g, int ms)
{
    struct timespec dl;
    clock_gettime(CLOCK_REALTIME, &dl);
    dl.tv_sec += ms / 1000;
    dl.tv_nsec += (ms % 1000) * 1000000L;
    if (dl.tv_nsec >= 1000000000L) {
        dl.tv_sec++;
        dl.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&g->mu);
    int r = 0;
    while (!g->open && r == 0)
        r = pthread_cond_timedwait(&g->cv, &g->mu, &dl);
    int ok = g->open;
    pthread_mutex_unlock(&g->mu);
    return ok ? 0 : -1;
}

static void gate_open(struct gate *g)
{
    pthread_mutex_lock(&g->mu);
    g->open = 1;
    pthread_cond_broadcast(&g->cv);
    pthread_mutex_unlock(&g->mu);
}

/* ---- placeholder translation (no backend) ---- */

START_TEST(test_translate)
{
    int n = -1;
    char *s = db_pg_translate("SELECT ?, '?', \"a?\", 'it''s ?', ? -- ?\n"
                              "/* ? */ ?", &n);
    ck_assert_ptr_nonnull(s);
    ck_assert_str_eq(s, "SELECT $1, '?', \"a?\", 'it''s ?', $2 -- ?\n"
                        "/* ? */ $3");
    ck_assert_int_eq(n, 3);
    free(s);
    s = db_pg_translate("SELECT '? unterminated", &n);
    ck_assert_str_eq(s, "SELECT '? unterminated");
    ck_assert_int_eq(n, 0);
    free(s);
    char many[DB_MAX_PARAMS * 2 + 8];
    size_t o = 0;
    for (int i = 0; i <= DB_MAX_PARAMS; i++) {
        many[o++] = '?';
        many[o++] = ',';
    }
    many[o] = '\0';
    ck_assert_ptr_null(db_pg_translate(many, &n));
}
END_TEST

START_TEST(test_code_str)
{
    ck_assert_str_eq(db_code_str(DB_CONFLICT), "conflict");
    ck_assert_str_eq(db_code_str(DB_UNAVAILABLE), "unavailable");
    ck_assert_str_eq(db_code_str(12345), "error");
    struct db_options o = { .datastore = "mysql://root:pw@x/y" };
    struct db *db = (struct db *)1;
    char err[256];
    ck_assert_int_eq(db_open(&o, &db, err, sizeof(err)), DB_ERROR);
    ck_assert_ptr_null(db);
    ck_assert_ptr_null(strstr(err, "pw"));
}
END_TEST

/* ---- migrations ---- */

START_TEST(test_migrate_once)
{
    struct db *db = open_db();
    ck_assert_msg(db_migrate(db) == DB_OK, "%s", db_errmsg(db));
    int64_t v = -1;
    ck_assert_int_eq(db_schema_version(db, &v), DB_OK);
    ck_assert_int_eq(v, db_migrate_latest());
    int64_t rows = count(db, "SELECT COUNT(*) FROM schema_migrations");
    int64_t at = count(db, "SELECT MAX(applied_at) FROM schema_migrations");
    ck_assert_int_eq(db_migrate(db), DB_OK);
    db_close(db);

    db = open_db();
    ck_assert_int_eq(db_migrate(db), DB_OK);
    ck_assert_int_eq(count(db, "SELECT COUNT(*) FROM schema_migrations"), rows);
    ck_assert_int_eq(count(db, "SELECT MAX(applied_at) FROM schema_migrations"),
                     at);
    ck_assert_int_eq(count(db, "SELECT COUNT(*) FROM users"), 0);

    /* A schema from a newer server is refused. */
    ck_assert_int_eq(db_execp(db, "INSERT INTO schema_migrations VALUES (?, 0)",
                              DB_ARGS(DB_INT(999)), NULL), DB_OK);
    ck_assert_int_eq(db_migrate(db), DB_ERROR);
    ck_assert_ptr_nonnull(strstr(db_errmsg(db), "newer"));
    db_close(db);
}
END_TEST

#define MIG_THREADS 4

struct mig_arg {
    pthread_barrier_t *bar;
    int rc;
    char err[512];
};

static void *mig_thread(void *p)
{
    struct mig_arg *a = p;
    struct db_options o = opts();
    struct db *db = NULL;
    a->rc = db_open(&o, &db, a->err, sizeof(a->err));
    pthread_barrier_wait(a->bar);
    if (a->rc == DB_OK) {
        a->rc = db_migrate(db);
        snprintf(a->err, sizeof(a->err), "%s", db_errmsg(db));
    }
    db_close(db);
    return NULL;
}

/* Replicas starting together: each migration is applied exactly once. */
START_TEST(test_migrate_concurrent)
{
    pthread_barrier_t bar;
    pthread_barrier_init(&bar, NULL, MIG_THREADS);
    pthread_t t[MIG_THREADS];
    struct mig_arg a[MIG_THREADS];
    for (int i = 0; i < MIG_THREADS; i++) {
        a[i] = (struct mig_arg){ .bar = &bar };
        pthread_create(&t[i], NULL, mig_thread, &a[i]);
    }
    for (int i = 0; i < MIG_THREADS; i++) {
        pthread_join(t[i], NULL);
        ck_assert_msg(a[i].rc == DB_OK, "thread %d: %s", i, a[i].err);
    }
    pthread_barrier_destroy(&bar);
    struct db *db = open_db();
    ck_assert_int_eq(count(db, "SELECT COUNT(*) FROM schema_migrations"),
                     (int64_t)db_migrate_count());
    db_close(db);
}
END_TEST

/* The v1 schema's keys, checks and cascades. */
START_TEST(test_schema_v1)
{
    struct db *db = open_db();
    ck_assert_int_eq(db_migrate(db), DB_OK);
    const char *user = "INSERT INTO users (id, username, password_hash, "
                       "is_admin, created_at) VALUES (?, ?, 'h', 0, 1)";
    ck_assert_int_eq(db_execp(db, user, DB_ARGS(DB_TEXT("u-1"),
                                               DB_TEXT("alice")), NULL), DB_OK);
    ck_assert_int_eq(db_execp(db, user, DB_ARGS(DB_TEXT("u-2"),
                     DB_TEXT("alice")), NULL), DB_CONFLICT);
    const char *tok = "INSERT INTO api_tokens (id, user_id, token_hash, "
                      "created_at) VALUES (?, ?, ?, 1)";
    ck_assert_int_eq(db_execp(db, tok, DB_ARGS(DB_TEXT("t-1"), DB_TEXT("u-1"),
                                               DB_TEXT("h1")), NULL), DB_OK);
    ck_assert_int_eq(db_execp(db, tok, DB_ARGS(DB_TEXT("t-2"), DB_TEXT("u-9"),
                     DB_TEXT("h2")), NULL), DB_CONSTRAINT);
    ck_assert_int_eq(db_exec(db, "INSERT INTO clusters (id, name, created_at, "
                     "updated_at, registration_token_hash, "
                     "registration_token_created_at) VALUES "
                     "('c-4f2a9', 'prod', 1, 1, 'rh', 1)"), DB_OK);
    const char *mem = "INSERT INTO cluster_members VALUES ('c-4f2a9', 'u-1', ?)";
    ck_assert_int_eq(db_execp(db, mem, DB_ARGS(DB_TEXT("god")), NULL),
                     DB_CONSTRAINT);
    ck_assert_int_eq(db_execp(db, mem, DB_ARGS(DB_TEXT("owner")), NULL), DB_OK);
    ck_assert_int_eq(db_exec(db, "INSERT INTO nodes (cluster_id, name, "
                     "updated_at) VALUES ('c-4f2a9', 'n1', 1)"), DB_OK);
    int64_t e1 = 0, e2 = 0;
    const char *ev = "INSERT INTO events (cluster_id, created_at, type, "
                     "reason, message) VALUES ('c-4f2a9', 1, 'Normal', 'R', ?) "
                     "RETURNING id";
    ck_assert_int_eq(db_query_int64(db, ev, DB_ARGS(DB_TEXT("a")), &e1), DB_OK);
    ck_assert_int_eq(db_query_int64(db, ev, DB_ARGS(DB_TEXT("b")), &e2), DB_OK);
    ck_assert_int_gt(e2, e1);
    ck_assert_int_eq(db_exec(db, "DELETE FROM users WHERE id = 'u-1'"), DB_OK);
    ck_assert_int_eq(count(db, "SELECT COUNT(*) FROM api_tokens"), 0);
    ck_assert_int_eq(count(db, "SELECT COUNT(*) FROM cluster_members"), 0);
    ck_assert_int_eq(db_exec(db, "DELETE FROM clusters"), DB_OK);
    ck_assert_int_eq(count(db, "SELECT COUNT(*) FROM nodes"), 0);
    ck_assert_int_eq(count(db, "SELECT COUNT(*) FROM events"), 0);
    db_close(db);
}
END_TEST

/* ---- statements ---- */

#define BIG (1u << 20)
static const char tricky[] = "it's \"quoted\" -- no comment /* nor */ "
                             "a ? mark, ?? and $1 'x?'";

static void check_row1(struct db_stmt *st, const uint8_t *blob)
{
    ck_assert_int_eq(db_col_count(st), 5);
    ck_assert_str_eq(db_col_text(st, 0), tricky);
    ck_assert(db_col_int64(st, 1) == INT64_MIN);
    size_t len = 0;
    const void *p = db_col_blob(st, 2, &len);
    ck_assert_uint_eq(len, BIG);
    ck_assert(memcmp(p, blob, BIG) == 0);
    ck_assert(db_col_is_null(st, 3));
    ck_assert_ptr_null(db_col_text(st, 3));
    ck_assert_str_eq(db_col_text(st, 4), "lit?eral");
    ck_assert_ptr_null(db_col_text(st, 9));
}

static void check_row2(struct db *db)
{
    struct db_stmt *st;
    ck_assert_int_eq(db_query(db, "SELECT n, data, note FROM kv WHERE id = ?",
                              DB_ARGS(DB_INT(2)), &st), DB_OK);
    ck_assert_int_eq(db_step(st), DB_ROW);
    ck_assert(db_col_int64(st, 0) == INT64_MAX);
    size_t len = 99;
    ck_assert(!db_col_is_null(st, 1));
    ck_assert_ptr_nonnull(db_col_blob(st, 1, &len));
    ck_assert_uint_eq(len, 0);
    ck_assert_str_eq(db_col_text(st, 2), "");
    ck_assert_int_eq(db_step(st), DB_DONE);
    db_finalize(st);
}

START_TEST(test_crud_types)
{
    struct db *db = open_db();
    make_kv(db);
    uint8_t *blob = malloc(BIG);
    for (size_t i = 0; i < BIG; i++)
        blob[i] = (uint8_t)(i * 31 + (i >> 9));
    int64_t ch = 0;
    const char *ins = "INSERT INTO kv (id, name, n, data, note) "
                      "VALUES (?, ?, ?, ?, ?)";
    ck_assert_int_eq(db_execp(db, ins, DB_ARGS(DB_INT(1), DB_TEXT(tricky),
                     DB_INT(INT64_MIN), DB_BLOB(blob, BIG), DB_NULL), &ch),
                     DB_OK);
    ck_assert_int_eq(ch, 1);
    /* One by one, with an empty (not NULL) blob. */
    struct db_stmt *st;
    ck_assert_int_eq(db_prepare(db, ins, &st), DB_OK);
    ck_assert_int_eq(db_bind_int64(st, 1, 2), DB_OK);
    ck_assert_int_eq(db_bind_text(st, 2, "two"), DB_OK);
    ck_assert_int_eq(db_bind_int64(st, 3, INT64_MAX), DB_OK);
    ck_assert_int_eq(db_bind_blob(st, 4, NULL, 0), DB_OK);
    ck_assert_int_eq(db_bind_text(st, 5, ""), DB_OK);
    ck_assert_int_eq(db_bind_null(st, 6), DB_ERROR);
    ck_assert_int_eq(db_step(st), DB_DONE);
    ck_assert_int_eq(db_changes(st), 1);
    /* Same statement again, new bindings. */
    ck_assert_int_eq(db_reset(st), DB_OK);
    ck_assert_int_eq(db_bind_int64(st, 1, 3), DB_OK);
    ck_assert_int_eq(db_bind_text(st, 2, "three"), DB_OK);
    ck_assert_int_eq(db_step(st), DB_DONE);
    db_finalize(st);

    ck_assert_int_eq(db_query(db, "SELECT name, n, data, note, 'lit?eral' "
                              "FROM kv /* ? */ WHERE id = ? AND name = ? -- ?\n",
                              DB_ARGS(DB_INT(1), DB_TEXT(tricky)), &st), DB_OK);
    ck_assert_int_eq(db_step(st), DB_ROW);
    check_row1(st, blob);
    ck_assert_int_eq(db_step(st), DB_DONE);
    db_finalize(st);
    check_row2(db);

    ck_assert_int_eq(db_execp(db, "UPDATE kv SET note = ? WHERE id >= ?",
                     DB_ARGS(DB_TEXT("n"), DB_INT(2)), &ch), DB_OK);
    ck_assert_int_eq(ch, 2);
    ck_assert_int_eq(db_execp(db, "DELETE FROM kv WHERE id = ?",
                              DB_ARGS(DB_INT(1)), &ch), DB_OK);
    ck_assert_int_eq(ch, 1);
    int64_t v = 0;
    ck_assert_int_eq(db_query_int64(db, "SELECT n FROM kv WHERE id = ?",
                                    DB_ARGS(DB_INT(1)), &v), DB_NOTFOUND);
    ck_assert_int_eq(db_query_int64(db, "INSERT INTO kv (id) VALUES (?) "
                                    "RETURNING id", DB_ARGS(DB_INT(7)), &v),
                     DB_OK);
    ck_assert_int_eq(v, 7);
    ck_assert_int_eq(db_prepare(db, "SELECT 1; SELECT 2", &st), DB_ERROR);
    free(blob);
    db_close(db);
}
END_TEST

START_TEST(test_conflict)
{
    struct db *db = open_db();
    make_kv(db);
    ck_assert_int_eq(insert_kv(db, 1, "s3cr3t-value"), DB_OK);
    ck_assert_int_eq(insert_kv(db, 2, "s3cr3t-value"), DB_CONFLICT);
    ck_assert(db_errmsg(db)[0] != '\0');
    /* Values may be secrets: messages never quote them. */
    ck_assert_msg(!strstr(db_errmsg(db), "s3cr3t"), "%s", db_errmsg(db));
    ck_assert_int_eq(insert_kv(db, 1, "other"), DB_CONFLICT);
    ck_assert_int_eq(db_exec(db, "SELECT * FROM no_such_table"), DB_ERROR);
    ck_assert_int_eq(count(db, "SELECT COUNT(*) FROM kv"), 1);
    db_close(db);
}
END_TEST

/* ---- transactions ---- */

static int tx_insert_then_fail(struct db *db, void *arg)
{
    (void)arg;
    int rc = insert_kv(db, 10, "x");
    return rc < 0 ? rc : DB_NOTFOUND;
}

static int tx_ignore_conflict(struct db *db, void *arg)
{
    (void)arg;
    insert_kv(db, 20, "y");
    insert_kv(db, 21, "y");     /* conflict, ignored by this sloppy fn */
    return 0;
}

START_TEST(test_rollback)
{
    struct db *db = open_db();
    make_kv(db);
    ck_assert_int_eq(db_begin(db), DB_OK);
    ck_assert_int_eq(db_begin(db), DB_ERROR);
    ck_assert_int_eq(insert_kv(db, 1, "a"), DB_OK);
    ck_assert_int_eq(db_rollback(db), DB_OK);
    ck_assert_int_eq(count(db, "SELECT COUNT(*) FROM kv"), 0);

    /* A failure kills the transaction on both backends. */
    ck_assert_int_eq(db_begin(db), DB_OK);
    ck_assert_int_eq(insert_kv(db, 1, "a"), DB_OK);
    ck_assert_int_eq(insert_kv(db, 2, "a"), DB_CONFLICT);
    ck_assert_int_eq(insert_kv(db, 3, "c"), DB_CONFLICT);
    ck_assert_int_eq(db_commit(db), DB_CONFLICT);
    ck_assert_int_eq(count(db, "SELECT COUNT(*) FROM kv"), 0);
    ck_assert_int_eq(db_commit(db), DB_ERROR);

    ck_assert_int_eq(db_tx(db, tx_insert_then_fail, NULL), DB_NOTFOUND);
    ck_assert_int_eq(db_tx(db, tx_ignore_conflict, NULL), DB_CONFLICT);
    ck_assert_int_eq(count(db, "SELECT COUNT(*) FROM kv"), 0);
    ck_assert_int_eq(db_rollback(db), DB_OK);
    db_close(db);
}
END_TEST

struct retry_ctx {
    struct db *other;       /* PostgreSQL: commits a conflicting update */
    int calls;
    int interfere;          /* on how many of the first calls */
};

/* Reads the row, lets the other connection change it, then writes it: a
 * serializable transaction must fail (40001) and be retried. */
static int tx_bump(struct db *db, void *arg)
{
    struct retry_ctx *c = arg;
    c->calls++;
    int64_t n;
    int rc = db_query_int64(db, "SELECT n FROM kv WHERE id = 1", NULL, 0, &n);
    if (rc < 0)
        return rc;
    if (c->other && c->calls <= c->interfere)
        ck_assert_int_eq(db_exec(c->other, "UPDATE kv SET n = n + 100 "
                                           "WHERE id = 1"), DB_OK);
    return db_execp(db, "UPDATE kv SET n = ? WHERE id = 1",
                    DB_ARGS(DB_INT(n + 1)), NULL);
}

struct holder {
    struct db *db;
    int release_ms;
};

static void *release_later(void *p)
{
    struct holder *h = p;
    sleep_ms(h->release_ms);
    ck_assert_int_eq(db_commit(h->db), DB_OK);
    return NULL;
}

static struct db *open_retrying(unsigned attempts)
{
    struct db_options o = opts();
    o.busy_timeout_ms = 50;
    o.tx_attempts = attempts;
    return open_opt(o);
}

START_TEST(test_tx_retry)
{
    struct db *db = open_retrying(20), *other = open_db();
    make_kv(db);
    ck_assert_int_eq(insert_kv(db, 1, "a"), DB_OK);
    struct retry_ctx c = { .interfere = 1 };
    pthread_t t;
    struct holder h = { other, 300 };
    if (db_backend(db) == DB_SQLITE) {
        /* The other connection holds the write lock for a while. */
        ck_assert_int_eq(db_begin(other), DB_OK);
        pthread_create(&t, NULL, release_later, &h);
    } else {
        c.other = other;
    }
    ck_assert_msg(db_tx(db, tx_bump, &c) == DB_OK, "%s", db_errmsg(db));
    if (!c.other)
        pthread_join(t, NULL);
    struct db_stats s;
    db_get_stats(db, &s);
    ck_assert_uint_ge(s.tx_retries, 1);
    ck_assert_int_eq(count(db, "SELECT n FROM kv WHERE id = 1"),
                     c.other ? 102 : 2);
    db_close(other);
    db_close(db);
}
END_TEST

START_TEST(test_tx_retry_bound)
{
    struct db *db = open_retrying(3), *other = open_db();
    make_kv(db);
    ck_assert_int_eq(insert_kv(db, 1, "a"), DB_OK);
    struct retry_ctx c = { .interfere = 1000 };
    if (db_backend(db) == DB_SQLITE)
        ck_assert_int_eq(db_begin(other), DB_OK);   /* held throughout */
    else
        c.other = other;
    uint64_t t0 = mono_ms();
    ck_assert_int_eq(db_tx(db, tx_bump, &c), DB_BUSY);
    ck_assert_uint_lt(mono_ms() - t0, 5000);
    struct db_stats s;
    db_get_stats(db, &s);
    ck_assert_uint_eq(s.tx_retries, 2);
    /* SQLite never got its write lock, so fn never ran. */
    ck_assert_int_eq(c.calls, c.other ? 3 : 0);
    ck_assert_int_eq(db_rollback(other), DB_OK);
    ck_assert_int_eq(count(db, "SELECT n FROM kv WHERE id = 1"),
                     c.other ? 301 : 1);
    db_close(other);
    db_close(db);
}
END_TEST

/* ---- durability ---- */

static int tx_insert_two(struct db *db, void *arg)
{
    (void)arg;
    int rc = insert_kv(db, 1, "one");
    return rc < 0 ? rc : insert_kv(db, 2, "two");
}

START_TEST(test_durable_reopen)
{
    struct db *db = open_db();
    make_kv(db);
    ck_assert_int_eq(db_tx(db, tx_insert_two, NULL), DB_OK);
    db_close(db);
    db = open_db();
    ck_assert_int_eq(count(db, "SELECT COUNT(*) FROM kv"), 2);
    ck_assert_int_eq(count(db, "SELECT n FROM kv WHERE name = 'two'"), 2);
    db_close(db);
}
END_TEST

/* An acknowledged write survives the writer being SIGKILLed right after. */
START_TEST(test_durable_sigkill)
{
    struct db *db = open_db();
    make_kv(db);
    db_close(db);
    int fds[2];
    ck_assert_int_eq(pipe(fds), 0);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        struct db_options o = opts();
        struct db *c = NULL;
        char err[256];
        if (db_open(&o, &c, err, sizeof(err)) == DB_OK &&
            insert_kv(c, 42, "acked") == DB_OK &&
            write(fds[1], "k", 1) == 1)
            sleep(30);
        _exit(1);
    }
    struct pollfd pfd = { .fd = fds[0], .events = POLLIN };
    char b = 0;
    int ready = poll(&pfd, 1, 20000) == 1 && read(fds[0], &b, 1) == 1;
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    close(fds[0]);
    close(fds[1]);
    ck_assert_msg(ready && b == 'k', "the child never acknowledged");
    db = open_db();
    ck_assert_int_eq(count(db, "SELECT COUNT(*) FROM kv WHERE id = 42"), 1);
    db_close(db);
}
END_TEST

/* ---- SQLite only ---- */

static const char *pragma(struct db *db, const char *sql, char *buf, size_t n)
{
    struct db_stmt *st;
    ck_assert_int_eq(db_prepare(db, sql, &st), DB_OK);
    ck_assert_int_eq(db_step(st), DB_ROW);
    snprintf(buf, n, "%s", db_col_text(st, 0));
    db_finalize(st);
    return buf;
}

START_TEST(test_sqlite_file)
{
    struct db *db = open_db();
    ck_assert_int_eq(db_migrate(db), DB_OK);
    char buf[64], path[128];
    ck_assert_str_eq(pragma(db, "PRAGMA journal_mode", buf, 64), "wal");
    ck_assert_str_eq(pragma(db, "PRAGMA synchronous", buf, 64), "2");
    ck_assert_str_eq(pragma(db, "PRAGMA foreign_keys", buf, 64), "1");
    struct stat sb;
    snprintf(path, sizeof(path), "%s/drover.db", g_dir);
    ck_assert_int_eq(stat(path, &sb), 0);
    ck_assert_int_eq(sb.st_mode & 0777, 0600);
    snprintf(path, sizeof(path), "%s/drover.db-wal", g_dir);
    ck_assert_int_eq(stat(path, &sb), 0);
    ck_assert_int_eq(sb.st_mode & 0777, 0600);
    db_close(db);
    /* An existing file with a wide mode is tightened. */
    snprintf(path, sizeof(path), "%s/drover.db", g_dir);
    ck_assert_int_eq(chmod(path, 0644), 0);
    db = open_db();
    ck_assert_int_eq(stat(path, &sb), 0);
    ck_assert_int_eq(sb.st_mode & 0777, 0600);
    db_close(db);
    struct db_options o = { .datastore = "sqlite",
                            .data_dir = "/proc/no/such/dir" };
    char err[256];
    ck_assert_int_eq(db_open(&o, &db, err, sizeof(err)), DB_UNAVAILABLE);
}
END_TEST

/* ---- PostgreSQL only ---- */

static void terminate(struct db *victim)
{
    int64_t pid = 0;
    ck_assert_int_eq(db_query_int64(victim, "SELECT pg_backend_pid()", NULL, 0,
                                    &pid), DB_OK);
    struct db *admin = open_db();
    int64_t ok = 0;
    ck_assert_int_eq(db_query_int64(admin, "SELECT pg_terminate_backend(?)",
                                    DB_ARGS(DB_INT(pid)), &ok), DB_OK);
    ck_assert_int_eq(ok, 1);
    uint64_t dl = mono_ms() + 10000;
    int64_t left = 1;
    while (left && mono_ms() < dl) {
        ck_assert_int_eq(db_query_int64(admin, "SELECT COUNT(*) FROM "
                         "pg_stat_activity WHERE pid = ?", DB_ARGS(DB_INT(pid)),
                         &left), DB_OK);
        if (left)
            sleep_ms(20);
    }
    ck_assert_int_eq(left, 0);
    db_close(admin);
}

START_TEST(test_pg_lost_connection)
{
    struct db *db = open_db();
    terminate(db);
    int64_t v = 0;
    ck_assert_int_eq(db_query_int64(db, "SELECT 1", NULL, 0, &v),
                     DB_UNAVAILABLE);
    ck_assert(db_errmsg(db)[0] != '\0');
    ck_assert_int_eq(db_query_int64(db, "SELECT 41 + 1", NULL, 0, &v), DB_OK);
    ck_assert_int_eq(v, 42);
    struct db_stats s;
    db_get_stats(db, &s);
    ck_assert_uint_eq(s.reconnects, 1);

    /* Inside a transaction there is no silent reconnect. */
    make_kv(db);
    ck_assert_int_eq(db_begin(db), DB_OK);
    ck_assert_int_eq(insert_kv(db, 1, "a"), DB_OK);
    terminate(db);
    ck_assert_int_eq(insert_kv(db, 2, "b"), DB_UNAVAILABLE);
    ck_assert_int_eq(insert_kv(db, 3, "c"), DB_UNAVAILABLE);
    ck_assert_int_eq(db_commit(db), DB_UNAVAILABLE);
    ck_assert_int_eq(count(db, "SELECT COUNT(*) FROM kv"), 0);
    db_close(db);
}
END_TEST

START_TEST(test_pg_unreachable)
{
    struct db_options o = {
        .datastore = "postgres://postgres:hunter2@127.0.0.1:1/x",
        .connect_timeout_s = 2,
    };
    struct db *db = (struct db *)1;
    char err[512];
    uint64_t t0 = mono_ms();
    ck_assert_int_eq(db_open(&o, &db, err, sizeof(err)), DB_UNAVAILABLE);
    ck_assert_uint_lt(mono_ms() - t0, 5000);
    ck_assert_ptr_null(db);
    ck_assert_ptr_null(strstr(err, "hunter2"));
    o.datastore = "postgres://postgres:hunter2@127.0.0.1:%zz/x";
    ck_assert_int_eq(db_open(&o, &db, err, sizeof(err)), DB_ERROR);
    ck_assert_ptr_null(strstr(err, "hunter2"));
}
END_TEST

START_TEST(test_pg_secret_values)
{
    struct db *db = open_db();
    int64_t v;
    ck_assert_int_eq(db_query_int64(db, "SELECT CAST(? AS BIGINT)",
                     DB_ARGS(DB_TEXT("hunter2-token")), &v), DB_ERROR);
    ck_assert_msg(!strstr(db_errmsg(db), "hunter2"), "%s", db_errmsg(db));
    ck_assert_int_eq(db_query_int64(db, "SELECT ? = 't'",
                     DB_ARGS(DB_TEXT("t")), &v), DB_OK);
    ck_assert_int_eq(v, 1);
    db_close(db);
}
END_TEST

/* ---- pool ---- */

struct rig {
    struct loop *loop;
    pthread_t loop_thread;
    struct loop_timer watchdog;
    int ndone, want, off_loop, timed_out;
    int order[16];
};

struct job {
    struct rig *rig;
    struct gate *gate;
    int64_t i;
    int64_t seen;
    int rc;
    int calls;
};

static void on_watchdog(struct loop_timer *t)
{
    struct rig *r = (struct rig *)((char *)t - offsetof(struct rig, watchdog));
    r->timed_out = 1;
    loop_stop(r->loop);
}

static void rig_init(struct rig *r)
{
    memset(r, 0, sizeof(*r));
    r->loop = loop_new();
    ck_assert_ptr_nonnull(r->loop);
    r->loop_thread = pthread_self();
}

static void rig_run(struct rig *r, int want)
{
    r->want = want;
    if (r->ndone < want) {
        loop_timer_start(r->loop, &r->watchdog, 30000, on_watchdog);
        loop_run(r->loop);
        loop_timer_stop(r->loop, &r->watchdog);
    }
    ck_assert_msg(!r->timed_out, "pool work did not complete in 30s");
    ck_assert_int_eq(r->ndone, want);
}

static struct db_pool *rig_pool(struct rig *r, unsigned workers, size_t cap)
{
    struct db_options o = opts();
    struct db_pool_config cfg = { .workers = workers, .queue_cap = cap };
    struct db_pool *p = NULL;
    char err[512];
    int rc = db_pool_new(r->loop, &o, &cfg, &p, err, sizeof(err));
    ck_assert_msg(rc == DB_OK, "db_pool_new: %s", err);
    return p;
}

static void job_done(void *arg, int rc)
{
    struct job *j = arg;
    struct rig *r = j->rig;
    j->rc = rc;
    j->calls++;
    if (!pthread_equal(pthread_self(), r->loop_thread))
        r->off_loop++;
    r->order[r->ndone % 16] = (int)j->i;
    if (++r->ndone == r->want)
        loop_stop(r->loop);
}

static int tx_insert_job(struct db *db, void *arg)
{
    struct job *j = arg;
    return insert_kv(db, j->i, NULL);
}

static int work_insert(struct db *db, void *arg)
{
    return db_tx(db, tx_insert_job, arg);
}

static int work_count(struct db *db, void *arg)
{
    struct job *j = arg;
    return db_query_int64(db, "SELECT COUNT(*) FROM kv", NULL, 0, &j->seen);
}

static int work_block(struct db *db, void *arg)
{
    struct job *j = arg;
    (void)db;
    return gate_wait(j->gate, 10000) == 0 ? DB_OK : DB_ERROR;
}

#define MANY 400
#define SUBMITTERS 4

struct submitter {
    struct db_pool *pool;
    struct job *jobs;
    int bad;
};

static void *submit_many(void *p)
{
    struct submitter *s = p;
    for (int k = 0; k < MANY / SUBMITTERS; k++) {
        struct job *j = &s->jobs[k];
        int rc = j->i % 2 ? db_pool_submit_read(s->pool, work_count, job_done, j)
                          : db_pool_submit(s->pool, work_insert, job_done, j);
        s->bad += rc != DB_OK;
    }
    return NULL;
}

/* Many submits from several threads; results come back on the loop. */
START_TEST(test_pool_many)
{
    struct db *db = open_db();
    make_kv(db);
    struct rig r;
    rig_init(&r);
    struct db_pool *p = rig_pool(&r, 0, MANY);
    struct job *jobs = calloc(MANY, sizeof(*jobs));
    struct submitter s[SUBMITTERS];
    pthread_t t[SUBMITTERS];
    for (int i = 0; i < MANY; i++)
        jobs[i] = (struct job){ .rig = &r, .i = i };
    for (int k = 0; k < SUBMITTERS; k++) {
        s[k] = (struct submitter){ p, jobs + k * (MANY / SUBMITTERS), 0 };
        pthread_create(&t[k], NULL, submit_many, &s[k]);
    }
    rig_run(&r, MANY);
    for (int k = 0; k < SUBMITTERS; k++) {
        pthread_join(t[k], NULL);
        ck_assert_int_eq(s[k].bad, 0);
    }
    ck_assert_int_eq(r.off_loop, 0);
    for (int i = 0; i < MANY; i++) {
        ck_assert_msg(jobs[i].rc == DB_OK, "job %d: %d", i, jobs[i].rc);
        ck_assert_int_eq(jobs[i].calls, 1);
    }
    ck_assert_int_eq(count(db, "SELECT COUNT(*) FROM kv"), MANY / 2);
    struct db_pool_stats st;
    db_pool_get_stats(p, &st);
    ck_assert_uint_eq(st.completed, MANY);
    db_pool_free(p);
    loop_free(r.loop);
    free(jobs);
    db_close(db);
}
END_TEST

static void wait_running(struct db_pool *p, size_t n)
{
    struct db_pool_stats st;
    uint64_t dl = mono_ms() + 10000;
    do {
        db_pool_get_stats(p, &st);
        if (st.running == n)
            return;
        sleep_ms(2);
    } while (mono_ms() < dl);
    ck_abort_msg("pool work did not start");
}

#define CAP 4

START_TEST(test_pool_full)
{
    struct rig r;
    rig_init(&r);
    struct db_pool *p = rig_pool(&r, 1, CAP);
    struct gate g = GATE_INIT;
    struct job jobs[CAP + 2];
    for (int i = 0; i < CAP + 2; i++)
        jobs[i] = (struct job){ .rig = &r, .gate = &g, .i = i };
    ck_assert_int_eq(db_pool_submit(p, work_block, job_done, &jobs[0]), DB_OK);
    wait_running(p, 1);
    for (int i = 1; i <= CAP; i++)
        ck_assert_int_eq(db_pool_submit(p, work_block, job_done, &jobs[i]),
                         DB_OK);
    ck_assert_int_eq(db_pool_submit(p, work_block, job_done, &jobs[CAP + 1]),
                     DB_QUEUE_FULL);
    struct db_pool_stats st;
    db_pool_get_stats(p, &st);
    ck_assert_uint_eq(st.queued, CAP);
    ck_assert_uint_eq(st.rejected, 1);
    gate_open(&g);
    rig_run(&r, CAP + 1);
    for (int i = 0; i <= CAP; i++) {
        ck_assert_int_eq(jobs[i].rc, DB_OK);
        ck_assert_int_eq(r.order[i], i);     /* one worker: FIFO */
    }
    ck_assert_int_eq(jobs[CAP + 1].calls, 0);
    db_pool_free(p);
    loop_free(r.loop);
}
END_TEST

static void *open_gate_later(void *arg)
{
    sleep_ms(200);
    gate_open(arg);
    return NULL;
}

/* Freed with work running and queued: the running one finishes, the queued
 * ones are cancelled, and every done runs once, on this thread. */
START_TEST(test_pool_shutdown)
{
    struct rig r;
    rig_init(&r);
    struct db_pool *p = rig_pool(&r, 1, 16);
    struct gate g = GATE_INIT;
    struct job jobs[4];
    for (int i = 0; i < 4; i++) {
        jobs[i] = (struct job){ .rig = &r, .gate = &g, .i = i };
        ck_assert_int_eq(db_pool_submit(p, work_block, job_done, &jobs[i]),
                         DB_OK);
        if (i == 0)
            wait_running(p, 1);
    }
    pthread_t t;
    pthread_create(&t, NULL, open_gate_later, &g);
    r.want = 100;
    db_pool_free(p);
    pthread_join(t, NULL);
    ck_assert_int_eq(r.ndone, 4);
    ck_assert_int_eq(r.off_loop, 0);
    ck_assert_int_eq(jobs[0].rc, DB_OK);
    for (int i = 0; i < 4; i++) {
        ck_assert_int_eq(jobs[i].calls, 1);
        if (i > 0)
            ck_assert_int_eq(jobs[i].rc, DB_CANCELLED);
    }
    loop_free(r.loop);
}
END_TEST

struct rw {
    struct rig *rig;
    struct gate in_tx, read_done;
    int64_t seen;
    int rc;
};

static int work_hold_tx(struct db *db, void *arg)
{
    struct rw *w = arg;
    int rc = db_begin(db);
    if (rc == DB_OK)
        rc = insert_kv(db, 1, "w");
    gate_open(&w->in_tx);
    if (rc == DB_OK && gate_wait(&w->read_done, 10000) < 0)
        rc = DB_ERROR;      /* the reader was blocked behind us */
    return rc == DB_OK ? db_commit(db) : rc;
}

static int work_read_during(struct db *db, void *arg)
{
    struct rw *w = arg;
    int rc = db_query_int64(db, "SELECT COUNT(*) FROM kv", NULL, 0, &w->seen);
    gate_open(&w->read_done);
    return rc;
}

static void rw_done(void *arg, int rc)
{
    struct rw *w = arg;
    if (rc < 0)
        w->rc = rc;
    if (++w->rig->ndone == w->rig->want)
        loop_stop(w->rig->loop);
}

/* A reader runs while the writer is inside a transaction. */
START_TEST(test_pool_read_during_write)
{
    struct db *db = open_db();
    make_kv(db);
    struct rig r;
    rig_init(&r);
    struct db_pool *p = rig_pool(&r, 0, 16);
    struct rw w = { .rig = &r, .in_tx = GATE_INIT, .read_done = GATE_INIT,
                    .seen = -1 };
    ck_assert_int_eq(db_pool_submit(p, work_hold_tx, rw_done, &w), DB_OK);
    ck_assert_int_eq(gate_wait(&w.in_tx, 10000), 0);
    ck_assert_int_eq(db_pool_submit_read(p, work_read_during, rw_done, &w),
                     DB_OK);
    rig_run(&r, 2);
    ck_assert_int_eq(w.rc, DB_OK);
    ck_assert_int_eq(w.seen, 0);
    ck_assert_int_eq(count(db, "SELECT COUNT(*) FROM kv"), 1);
    db_pool_free(p);
    loop_free(r.loop);
    db_close(db);
}
END_TEST

/* SQLite readers are read-only connections. */
START_TEST(test_pool_sqlite_readers)
{
    struct db *db = open_db();
    make_kv(db);
    struct rig r;
    rig_init(&r);
    struct db_pool *p = rig_pool(&r, 2, 16);
    struct job j = { .rig = &r, .i = 5 };
    ck_assert_int_eq(db_pool_submit_read(p, work_insert, job_done, &j), DB_OK);
    rig_run(&r, 1);
    ck_assert_int_eq(j.rc, DB_ERROR);
    ck_assert_int_eq(count(db, "SELECT COUNT(*) FROM kv"), 0);
    db_pool_free(p);
    loop_free(r.loop);
    db_close(db);
}
END_TEST

/* ---- suite ---- */

Suite *suite_server_db(void)
{
    const TTest *both[] = {
        test_migrate_once, test_migrate_concurrent, test_schema_v1,
        test_crud_types, test_conflict, test_rollback, test_tx_retry,
        test_tx_retry_bound, test_durable_reopen, test_durable_sigkill,
        test_pool_many, test_pool_full, test_pool_shutdown,
        test_pool_read_during_write,
    };
    const TTest *lite_only[] = { test_sqlite_file, test_pool_sqlite_readers };
    const TTest *pg_only[] = {
        test_pg_lost_connection, test_pg_unreachable, test_pg_secret_values,
    };
    Suite *s = suite_create("server_db");
    TCase *core = tcase_create("core");
    tcase_add_test(core, test_translate);
    tcase_add_test(core, test_code_str);
    TCase *lite = tcase_create("sqlite");
    tcase_add_checked_fixture(lite, lite_setup, lite_teardown);
    TCase *pg = tcase_create("postgres");
    tcase_add_unchecked_fixture(pg, pg_suite_setup, pg_suite_teardown);
    tcase_add_checked_fixture(pg, pg_setup, pg_teardown);
    for (size_t i = 0; i < sizeof(both) / sizeof(both[0]); i++) {
        tcase_add_test(lite, both[i]);
        tcase_add_test(pg, both[i]);
    }
    for (size_t i = 0; i < sizeof(lite_only) / sizeof(lite_only[0]); i++)
        tcase_add_test(lite, lite_only[i]);
    for (size_t i = 0; i < sizeof(pg_only) / sizeof(pg_only[0]); i++)
        tcase_add_test(pg, pg_only[i]);
    tcase_set_timeout(lite, 120);
    tcase_set_timeout(pg, 120);
    suite_add_tcase(s, core);
    suite_add_tcase(s, lite);
    suite_add_tcase(s, pg);
    return s;
}
