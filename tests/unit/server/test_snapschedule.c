/*
 * Tests of server/snapschedule.c's due-time rule and of the snapshot store
 * it relies on (server/store_snapshots.c, on SQLite): retention pruning and
 * what a restart does to work left unfinished.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/db_migrate.h"
#include "server/snapschedule.h"
#include "server/store.h"
#include "server/store_peers.h"
#include "server/store_snapshots.h"
#include "tests/support/proc.h"

#define MIN 60000

START_TEST(due_times)
{
    /* Off. */
    ck_assert(snapschedule_due(-1, 0, MIN, 1000) == INT64_MAX);
    /* Never taken: now. */
    ck_assert_int_eq(snapschedule_due(-1, 5, MIN, 1000), 1000);
    /* On time: one interval after the last. */
    ck_assert_int_eq(snapschedule_due(10 * MIN, 5, MIN, 11 * MIN), 15 * MIN);
    /* Exactly due. */
    ck_assert_int_eq(snapschedule_due(10 * MIN, 5, MIN, 15 * MIN), 15 * MIN);
    /* Down for 100 intervals: one catch-up now, and the next one a whole
     * interval after it, not a burst of missed ones. */
    int64_t now = 10 * MIN + 500 * MIN;
    int64_t due = snapschedule_due(10 * MIN, 5, MIN, now);
    ck_assert_int_eq(due, now);
    ck_assert_int_eq(snapschedule_due(due, 5, MIN, now + 1), now + 5 * MIN);
    /* A shorter unit (tests). */
    ck_assert_int_eq(snapschedule_due(1000, 2, 1000, 1500), 3000);
}
END_TEST

START_TEST(tick_bounds)
{
    ck_assert_uint_eq(snapschedule_tick_ms(60000), 10000);
    ck_assert_uint_eq(snapschedule_tick_ms(1000), 166);
    ck_assert_uint_eq(snapschedule_tick_ms(100), 100);
    ck_assert_uint_eq(snapschedule_tick_ms(3600000), 10000);
}
END_TEST

static char g_dir[64];

static struct db *open_store(void)
{
    struct db *db = NULL;
    char err[512];
    snprintf(g_dir, sizeof(g_dir), "/tmp/drover-snaptest-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(g_dir));
    struct db_options o = { .datastore = "sqlite", .data_dir = g_dir };
    ck_assert_msg(db_open(&o, &db, err, sizeof(err)) == DB_OK, "%s", err);
    ck_assert_int_eq(db_migrate(db), DB_OK);
    static struct store_user u;
    ck_assert_int_eq(store_user_create(db, "owner", "hash", true, &u), 0);
    struct store_cluster_new n = { .id = "c-aaaaa", .name = "one", .token_hash = "h",
                                   .token_sealed = "s", .snapshot_interval = 1,
                                   .snapshot_retention = 2, .owner_id = u.id };
    ck_assert_int_eq(store_cluster_create(db, &n), 0);
    return db;
}

#define GONE_CAP 256
static int collect(void *ud, const char *id, const char *node)
{
    char *out = ud;             /* GONE_CAP bytes */
    size_t used = strlen(out);
    (void)node;
    snprintf(out + used, GONE_CAP - used, "%s ", id);
    return 0;
}

static int due_row(void *ud, const struct store_snap_due *d)
{
    *(int64_t *)ud = d->last_created;
    return 0;
}

START_TEST(prune_keeps_newest_scheduled)
{
    struct db *db = open_store();
    char id[16], gone[GONE_CAP] = "";
    for (int i = 0; i < 5; i++) {
        snprintf(id, sizeof(id), "s-%d", i);
        ck_assert_int_eq(store_snapshot_create(db, id, "c-aaaaa", "n1", true, 1000 + i, NULL), 0);
        ck_assert_int_eq(store_snapshot_put_chunk(db, id, 0, "abc", 3), 0);
        ck_assert_int_eq(store_snapshot_done(db, id, 3, "x", 2000 + i), 0);
    }
    /* A manual one is never pruned. */
    ck_assert_int_eq(store_snapshot_create(db, "s-0m", "c-aaaaa", "n1", false, 999, NULL), 0);
    ck_assert_int_eq(store_snapshot_done(db, "s-0m", 3, "x", 999), 0);
    int64_t last = 0;
    ck_assert_int_eq(store_snapshot_schedules(db, due_row, &last), 0);
    ck_assert_int_eq(last, 1004);
    ck_assert_int_eq(store_snapshots_prune(db, "c-aaaaa", 2, collect, gone), 0);
    ck_assert_str_eq(gone, "s-2 s-1 s-0 ");
    int64_t n = 0;
    ck_assert_int_eq(db_query_int64(db, "SELECT COUNT(*) FROM etcd_snapshots", NULL, 0, &n), 0);
    ck_assert_int_eq(n, 3);
    ck_assert_int_eq(db_query_int64(db, "SELECT COUNT(*) FROM etcd_snapshot_chunks", NULL, 0,
                                    &n), 0);
    ck_assert_int_eq(n, 2);
    uint8_t *p;
    size_t len;
    ck_assert_int_eq(store_snapshot_get_chunk(db, "s-4", 0, &p, &len), 0);
    ck_assert_int_eq(len, 3);
    ck_assert_int_eq(memcmp(p, "abc", 3), 0);
    free(p);
    ck_assert_int_eq(store_snapshot_get_chunk(db, "s-4", 1, &p, &len), DB_NOTFOUND);
    db_close(db);
    remove_tree(g_dir);
}
END_TEST

static int state_row(void *ud, const struct store_snapshot *s)
{
    snprintf(ud, 200, "%s|%s|%s", s->state, s->error ? s->error : "",
             s->restore_json ? s->restore_json : "");
    return 0;
}

START_TEST(restart_ends_unfinished_work)
{
    struct db *db = open_store();
    char got[200], *doc = NULL;
    int64_t changed = 0;
    ck_assert_int_eq(store_snapshot_create(db, "s-run", "c-aaaaa", "n1", false, 1, NULL), 0);
    ck_assert_int_eq(store_snapshot_running(db, "s-run"), 0);
    ck_assert_int_eq(store_snapshot_create(db, "s-done", "c-aaaaa", "n1", false, 2, NULL), 0);
    ck_assert_int_eq(store_snapshot_done(db, "s-done", 1, "x", 3), 0);
    ck_assert_int_eq(store_snapshot_set_restore(db, "s-done",
        "{\"state\":\"running\",\"nodes\":[{\"node\":\"n1\",\"state\":\"running\"}]}", NULL), 0);
    ck_assert_int_eq(store_upgrade_put(db, "c-aaaaa", "{\"state\":\"running\",\"nodes\":"
                                       "[{\"node\":\"n1\",\"state\":\"done\"},"
                                       "{\"node\":\"n2\",\"state\":\"pending\"}]}", 5, NULL), 0);
    ck_assert_int_eq(store_snapshots_recover(db, 10, NULL, false, &changed), 0);
    ck_assert_int_eq(changed, 3);
    ck_assert_int_eq(store_snapshot_get(db, "c-aaaaa", "s-run", state_row, got), 0);
    ck_assert_str_eq(got, "failed|the server stopped before the snapshot finished|");
    ck_assert_int_eq(store_snapshot_get(db, "c-aaaaa", "s-done", state_row, got), 0);
    ck_assert_ptr_nonnull(strstr(got, "done||{\"state\":\"interrupted\""));
    ck_assert_int_eq(store_upgrade_get(db, "c-aaaaa", &doc), 0);
    ck_assert_ptr_nonnull(strstr(doc, "\"state\":\"interrupted\""));
    ck_assert_ptr_nonnull(strstr(doc, "{\"node\":\"n1\",\"state\":\"done\"}"));
    free(doc);
    /* A done snapshot is not failed by a late update. */
    ck_assert_int_eq(store_snapshot_fail(db, "s-done", "late", 11), 0);
    ck_assert_int_eq(store_snapshot_get(db, "c-aaaaa", "s-done", state_row, got), 0);
    ck_assert(strncmp(got, "done|", 5) == 0);
    /* The cluster's deletion takes its snapshots along. */
    ck_assert_int_eq(store_cluster_delete(db, "c-aaaaa"), 0);
    ck_assert_int_eq(store_snapshot_get(db, "c-aaaaa", "s-done", state_row, got), DB_NOTFOUND);
    db_close(db);
    remove_tree(g_dir);
}
END_TEST

static const char *state_of(struct db *db, const char *id, char *got)
{
    ck_assert_int_eq(store_snapshot_get(db, "c-aaaaa", id, state_row, got), 0);
    return got;
}

/* Several replicas: a restarting replica ends its own tasks and those of
 * replicas gone, never a live replica's; the controllers' sweep ends only
 * gone replicas' tasks. */
START_TEST(recover_only_own_and_dead_runners)
{
    struct db *db = open_store();
    char got[200], *doc = NULL;
    int64_t changed = 0;
    /* b is live until 1000, c's lease ran out at 5; "now" is 10. */
    ck_assert_int_eq(store_peer_heartbeat(db, "b", "https://b", 1, 1000), 0);
    ck_assert_int_eq(store_peer_heartbeat(db, "c", "https://c", 1, 5), 0);
    ck_assert_int_eq(store_snapshot_create(db, "s-a", "c-aaaaa", "n1", true, 1, "a"), 0);
    ck_assert_int_eq(store_snapshot_create(db, "s-b", "c-aaaaa", "n1", true, 2, "b"), 0);
    ck_assert_int_eq(store_snapshot_running(db, "s-b"), 0);
    ck_assert_int_eq(store_snapshot_create(db, "s-c", "c-aaaaa", "n1", true, 3, "c"), 0);
    ck_assert_int_eq(store_snapshot_create(db, "s-r", "c-aaaaa", "n1", false, 4, "a"), 0);
    ck_assert_int_eq(store_snapshot_done(db, "s-r", 1, "x", 5), 0);
    ck_assert_int_eq(store_snapshot_set_restore(db, "s-r", "{\"state\":\"running\"}", "b"), 0);
    ck_assert_int_eq(store_upgrade_put(db, "c-aaaaa", "{\"state\":\"running\"}", 5, "b"), 0);
    /* a restarts. */
    ck_assert_int_eq(store_snapshots_recover(db, 10, "a", false, &changed), 0);
    ck_assert_int_eq(changed, 2);
    ck_assert(strncmp(state_of(db, "s-a", got), "failed|", 7) == 0);
    ck_assert(strncmp(state_of(db, "s-c", got), "failed|", 7) == 0);
    ck_assert(strncmp(state_of(db, "s-b", got), "running|", 8) == 0);
    ck_assert_ptr_nonnull(strstr(state_of(db, "s-r", got), "\"state\":\"running\""));
    ck_assert_int_eq(store_upgrade_get(db, "c-aaaaa", &doc), 0);
    ck_assert_ptr_nonnull(strstr(doc, "\"state\":\"running\""));
    free(doc);
    /* b is live: the sweep (by a, the lease holder) leaves its work. */
    ck_assert_int_eq(store_snapshots_recover(db, 10, "a", true, &changed), 0);
    ck_assert_int_eq(changed, 0);
    /* b dies; a's own new task is not swept, b's are. */
    ck_assert_int_eq(store_snapshot_create(db, "s-a2", "c-aaaaa", "n1", true, 6, "a"), 0);
    ck_assert_int_eq(store_snapshots_recover(db, 2000, "a", true, &changed), 0);
    ck_assert_int_eq(changed, 3);
    ck_assert(strncmp(state_of(db, "s-b", got), "failed|", 7) == 0);
    ck_assert(strncmp(state_of(db, "s-a2", got), "pending|", 8) == 0);
    ck_assert_ptr_nonnull(strstr(state_of(db, "s-r", got), "\"state\":\"interrupted\""));
    ck_assert_int_eq(store_upgrade_get(db, "c-aaaaa", &doc), 0);
    ck_assert_ptr_nonnull(strstr(doc, "\"state\":\"interrupted\""));
    free(doc);
    db_close(db);
    remove_tree(g_dir);
}
END_TEST

Suite *suite_server_snapschedule(void)
{
    Suite *s = suite_create("server_snapschedule");
    TCase *tc = tcase_create("due");
    TCase *st = tcase_create("store");
    tcase_add_test(tc, due_times);
    tcase_add_test(tc, tick_bounds);
    tcase_add_test(st, prune_keeps_newest_scheduled);
    tcase_add_test(st, restart_ends_unfinished_work);
    tcase_add_test(st, recover_only_own_and_dead_runners);
    suite_add_tcase(s, tc);
    suite_add_tcase(s, st);
    return s;
}
