/*
 * Tests of server/linkstate.c on a real SQLite pool: changes end up in the
 * cluster's row, a burst of changes for one cluster lands as its latest
 * state, and bursts over many clusters all drain.
 */
#include <check.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "server/db_migrate.h"
#include "server/db_pool.h"
#include "server/linkstate.h"
#include "server/store.h"
#include "tests/support/unit_net.h"

static char g_dir[64];
static struct loop *g_loop;
static struct db_pool *g_pool;
static struct db *g_db;         /* the test's own connection, for checks */

static struct db_options opts(void)
{
    return (struct db_options){ .datastore = "sqlite", .data_dir = g_dir };
}

static void setup(void)
{
    char err[256];
    log_set_level(LOG_WARN);    /* migrations log at info on every setup */
    snprintf(g_dir, sizeof(g_dir), "/tmp/drover-lstest-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(g_dir));
    struct db_options o = opts();
    ck_assert_int_eq(db_open(&o, &g_db, err, sizeof(err)), DB_OK);
    ck_assert_int_eq(db_migrate(g_db), DB_OK);
    struct store_user u;
    ck_assert_int_eq(store_user_create(g_db, "owner", "x", false, &u), DB_OK);
    for (int i = 0; i < 50; i++) {
        char id[16], name[16];
        snprintf(id, sizeof(id), "c-%05d", i);
        snprintf(name, sizeof(name), "n%d", i);
        struct store_cluster_new n = { .id = id, .name = name, .token_hash = id,
                                       .token_sealed = "v1.", .snapshot_interval = -1,
                                       .snapshot_retention = -1, .owner_id = u.id };
        ck_assert_int_eq(store_cluster_create(g_db, &n), DB_OK);
    }
    g_loop = loop_new();
    struct db_pool_config pc = { .workers = 2 };
    ck_assert_int_eq(db_pool_new(g_loop, &o, &pc, &g_pool, err, sizeof(err)), DB_OK);
}

static int rm_entry(const char *p, const struct stat *sb, int f, struct FTW *ftw)
{
    (void)sb;
    (void)f;
    (void)ftw;
    return remove(p);
}

static void teardown(void)
{
    db_pool_free(g_pool);
    loop_free(g_loop);
    db_close(g_db);
    nftw(g_dir, rm_entry, 8, FTW_DEPTH | FTW_PHYS);
}

static bool drained(void *ud)
{
    return linkstate_pending(ud) == 0;
}

/* The row's state and via ("" for NULL). */
static void row(const char *id, char *state, char *via)
{
    struct db_stmt *st;
    ck_assert_int_eq(db_query(g_db, "SELECT state, connection_via, last_seen, "
                              "connection_since FROM clusters WHERE id = ?",
                              DB_ARGS(DB_TEXT(id)), &st), DB_OK);
    ck_assert_int_eq(db_step(st), DB_ROW);
    snprintf(state, 32, "%s", db_col_text(st, 0));
    snprintf(via, 32, "%s", db_col_is_null(st, 1) ? "" : db_col_text(st, 1));
    ck_assert(!db_col_is_null(st, 2) && !db_col_is_null(st, 3));
    db_finalize(st);
}

START_TEST(up_and_down)
{
    struct linkstate *ls = linkstate_new(g_loop, g_pool);
    char state[32], via[32];
    linkstate_set(ls, "c-00001", "cluster-agent");
    ck_assert(unit_run_until(g_loop, drained, ls, 5000));
    row("c-00001", state, via);
    ck_assert_str_eq(state, "active");
    ck_assert_str_eq(via, "cluster-agent");
    linkstate_set(ls, "c-00001", NULL);
    ck_assert(unit_run_until(g_loop, drained, ls, 5000));
    row("c-00001", state, via);
    ck_assert_str_eq(state, "disconnected");
    ck_assert_str_eq(via, "");
    linkstate_free(ls);
}
END_TEST

/* Flapping: whatever order the writes run in, the last change wins. */
START_TEST(latest_wins)
{
    struct linkstate *ls = linkstate_new(g_loop, g_pool);
    char state[32], via[32];
    for (int round = 0; round < 20; round++) {
        for (int i = 0; i < 7; i++)
            linkstate_set(ls, "c-00002", i % 2 ? NULL : "cluster-agent");
        unit_run_for(g_loop, 1);
    }
    linkstate_set(ls, "c-00002", NULL);
    linkstate_set(ls, "c-00002", "node/n1");
    ck_assert(unit_run_until(g_loop, drained, ls, 5000));
    row("c-00002", state, via);
    ck_assert_str_eq(state, "degraded");
    ck_assert_str_eq(via, "node/n1");
    linkstate_free(ls);
}
END_TEST

/* A report of a healthy cluster while a node agent stands in: the cluster
 * stays degraded; once the cluster agent is back, health decides again. */
static void report_healthy(const char *id)
{
    struct store_report r = { .kubernetes_version = "v1.31.0", .capacity_json = "{}",
                              .conditions_json = "[]", .healthy = true };
    ck_assert_int_eq(store_cluster_report(g_db, id, &r, store_now_ms(), NULL), DB_OK);
}

START_TEST(degraded_via_node)
{
    struct linkstate *ls = linkstate_new(g_loop, g_pool);
    char state[32], via[32];
    ck_assert_str_eq(linkstate_state("cluster-agent"), "active");
    ck_assert_str_eq(linkstate_state("node/n1"), "degraded");
    ck_assert_str_eq(linkstate_state(NULL), "disconnected");
    linkstate_set(ls, "c-00003", "node/n2");
    ck_assert(unit_run_until(g_loop, drained, ls, 5000));
    report_healthy("c-00003");
    row("c-00003", state, via);
    ck_assert_str_eq(state, "degraded");
    ck_assert_str_eq(via, "node/n2");
    linkstate_set(ls, "c-00003", "cluster-agent");
    ck_assert(unit_run_until(g_loop, drained, ls, 5000));
    report_healthy("c-00003");
    row("c-00003", state, via);
    ck_assert_str_eq(state, "active");
    linkstate_free(ls);
}
END_TEST

/* More clusters than write slots, and some that do not exist (deleted
 * meanwhile): everything drains. */
START_TEST(many_clusters)
{
    struct linkstate *ls = linkstate_new(g_loop, g_pool);
    char id[16], state[32], via[32];
    for (int i = 0; i < 80; i++) {
        snprintf(id, sizeof(id), "c-%05d", i);
        linkstate_set(ls, id, "cluster-agent");
    }
    ck_assert_int_eq(linkstate_pending(ls), 80);
    ck_assert(unit_run_until(g_loop, drained, ls, 10000));
    for (int i = 0; i < 50; i++) {
        snprintf(id, sizeof(id), "c-%05d", i);
        row(id, state, via);
        ck_assert_str_eq(state, "active");
    }
    linkstate_free(ls);
}
END_TEST

/* Freeing with writes in flight: the pool goes first and its completions
 * still find the linkstate. */
START_TEST(free_in_flight)
{
    struct linkstate *ls = linkstate_new(g_loop, g_pool);
    for (int i = 0; i < 30; i++) {
        char id[16];
        snprintf(id, sizeof(id), "c-%05d", i);
        linkstate_set(ls, id, NULL);
    }
    db_pool_free(g_pool);
    g_pool = NULL;
    linkstate_free(ls);
    linkstate_free(NULL);
}
END_TEST

Suite *suite_server_linkstate(void)
{
    Suite *s = suite_create("server_linkstate");
    TCase *tc = tcase_create("linkstate");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, up_and_down);
    tcase_add_test(tc, latest_wins);
    tcase_add_test(tc, degraded_via_node);
    tcase_add_test(tc, many_clusters);
    tcase_add_test(tc, free_in_flight);
    suite_add_tcase(s, tc);
    return s;
}
