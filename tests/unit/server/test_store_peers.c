/*
 * Tests of server/store_peers.c on SQLite and a throwaway PostgreSQL:
 * controller leases change hands only when free or expired, tunnel owners
 * count only while their holder's lease does, a "down" from one replica
 * leaves a cluster another replica holds active, start-up and the sweep mark
 * only orphaned clusters disconnected, the first stored CA stays, and a node
 * agent's claim of the cluster role is granted to one replica only while no
 * other live replica holds the cluster.
 */
#include <check.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "server/db_migrate.h"
#include "server/store.h"
#include "server/store_peers.h"
#include "server/store_snapshots.h"
#include "tests/support/pgtmp.h"

static struct pgtmp *g_pg;
static char g_dir[64];
static char g_store[256];
static struct db *g_db;

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

static void open_and_fill(void)
{
    char err[512];
    struct db_options o = { .datastore = g_store, .data_dir = g_dir };
    log_set_level(LOG_WARN);
    ck_assert_int_eq(db_open(&o, &g_db, err, sizeof(err)), DB_OK);
    if (g_pg && strcmp(g_store, "sqlite") != 0)
        ck_assert_int_eq(db_exec(g_db, "DROP SCHEMA public CASCADE; CREATE SCHEMA public"),
                         DB_OK);
    ck_assert_int_eq(db_migrate(g_db), DB_OK);
    struct store_user u;
    ck_assert_int_eq(store_user_create(g_db, "owner", "x", false, &u), DB_OK);
    for (int i = 0; i < 3; i++) {
        char id[16], name[16];
        snprintf(id, sizeof(id), "c-%d", i);
        snprintf(name, sizeof(name), "n%d", i);
        struct store_cluster_new n = { .id = id, .name = name, .token_hash = id,
                                       .token_sealed = "v1.", .snapshot_interval = -1,
                                       .snapshot_retention = -1, .owner_id = u.id };
        ck_assert_int_eq(store_cluster_create(g_db, &n), DB_OK);
    }
}

static void lite_setup(void)
{
    snprintf(g_dir, sizeof(g_dir), "/tmp/drover-peerstest-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(g_dir));
    snprintf(g_store, sizeof(g_store), "sqlite");
    open_and_fill();
}

static void pg_setup(void)
{
    g_dir[0] = '\0';
    snprintf(g_store, sizeof(g_store), "%s", pgtmp_url(g_pg));
    open_and_fill();
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
    db_close(g_db);
    g_db = NULL;
    if (g_dir[0])
        nftw(g_dir, rm_entry, 8, FTW_DEPTH | FTW_PHYS);
}

static void state_of(const char *id, char *out, size_t cap)
{
    struct db_stmt *st;
    ck_assert_int_eq(db_query(g_db, "SELECT state FROM clusters WHERE id = ?",
                              DB_ARGS(DB_TEXT(id)), &st), DB_OK);
    ck_assert_int_eq(db_step(st), DB_ROW);
    snprintf(out, cap, "%s", db_col_text(st, 0));
    db_finalize(st);
}

static void assert_state(const char *id, const char *want)
{
    char s[32];
    state_of(id, s, sizeof(s));
    ck_assert_str_eq(s, want);
}

struct owners {
    char cluster[4][16], peer[4][16];
    int n;
};

static int collect(void *ud, const char *cluster, const char *peer, const char *kind)
{
    struct owners *o = ud;
    (void)kind;
    if (o->n < 4) {
        snprintf(o->cluster[o->n], 16, "%s", cluster);
        snprintf(o->peer[o->n], 16, "%s", peer);
        o->n++;
    }
    return 0;
}

START_TEST(test_lease_changes_hands_only_when_free)
{
    bool held;
    ck_assert_int_eq(store_lease_acquire(g_db, "ctl", "a", 1000, 2000, &held), DB_OK);
    ck_assert(held);
    ck_assert_int_eq(store_lease_acquire(g_db, "ctl", "b", 1500, 2500, &held), DB_OK);
    ck_assert(!held);
    ck_assert_int_eq(store_lease_acquire(g_db, "ctl", "a", 1800, 2800, &held), DB_OK);
    ck_assert(held);    /* renewed */
    ck_assert_int_eq(store_lease_acquire(g_db, "ctl", "b", 2900, 3900, &held), DB_OK);
    ck_assert(held);    /* a's ran out */
    ck_assert_int_eq(store_lease_acquire(g_db, "ctl", "a", 3000, 4000, &held), DB_OK);
    ck_assert(!held);
    ck_assert_int_eq(store_lease_release(g_db, "ctl", "a"), DB_OK);   /* not a's */
    ck_assert_int_eq(store_lease_acquire(g_db, "ctl", "a", 3100, 4100, &held), DB_OK);
    ck_assert(!held);
    ck_assert_int_eq(store_lease_release(g_db, "ctl", "b"), DB_OK);
    ck_assert_int_eq(store_lease_acquire(g_db, "ctl", "a", 3200, 4200, &held), DB_OK);
    ck_assert(held);
}
END_TEST

START_TEST(test_owners_follow_leases)
{
    int64_t now = store_now_ms();
    bool written;
    ck_assert_int_eq(store_peer_heartbeat(g_db, "a", "https://a", now, now + 10000), DB_OK);
    ck_assert_int_eq(store_peer_heartbeat(g_db, "b", "https://b", now, now + 10000), DB_OK);
    ck_assert_int_eq(store_peer_set_link(g_db, "a", "c-0", "cluster-agent", now, now,
                                         &written), DB_OK);
    ck_assert(written);
    assert_state("c-0", "active");
    /* The agent moved to b; a hears of its old link's end afterwards. */
    ck_assert_int_eq(store_peer_set_link(g_db, "b", "c-0", "cluster-agent", now + 1, now,
                                         &written), DB_OK);
    ck_assert_int_eq(store_peer_set_link(g_db, "a", "c-0", NULL, now + 2, now, &written),
                     DB_OK);
    ck_assert(!written);
    assert_state("c-0", "active");
    struct owners o = { 0 };
    ck_assert_int_eq(store_peer_owners(g_db, now, collect, &o), DB_OK);
    ck_assert_int_eq(o.n, 1);
    ck_assert_str_eq(o.peer[0], "b");
    /* Newest cluster agent first; a node agent only after it. */
    ck_assert_int_eq(store_peer_set_link(g_db, "a", "c-1", "node/n1", now + 5, now, NULL),
                     DB_OK);
    ck_assert_int_eq(store_peer_set_link(g_db, "b", "c-1", "cluster-agent", now, now, NULL),
                     DB_OK);
    memset(&o, 0, sizeof(o));
    ck_assert_int_eq(store_peer_owners(g_db, now, collect, &o), DB_OK);
    ck_assert_int_eq(o.n, 3);
    ck_assert_str_eq(o.cluster[1], "c-1");
    ck_assert_str_eq(o.peer[1], "b");
    ck_assert_str_eq(o.peer[2], "a");
    /* b's lease runs out: its rows stop counting. */
    memset(&o, 0, sizeof(o));
    ck_assert_int_eq(store_peer_owners(g_db, now + 20000, collect, &o), DB_OK);
    ck_assert_int_eq(o.n, 0);
    ck_assert_int_eq(store_peer_heartbeat(g_db, "a", "https://a", now, now + 30000), DB_OK);
    memset(&o, 0, sizeof(o));
    ck_assert_int_eq(store_peer_owners(g_db, now + 20000, collect, &o), DB_OK);
    ck_assert_int_eq(o.n, 1);
    ck_assert_str_eq(o.peer[0], "a");
    /* Down with b gone for good: disconnected. */
    ck_assert_int_eq(store_peer_set_link(g_db, "a", "c-0", NULL, now, now + 20000, &written),
                     DB_OK);
    ck_assert(written);
    assert_state("c-0", "disconnected");
}
END_TEST

START_TEST(test_reset_and_reap_touch_only_orphans)
{
    int64_t now = store_now_ms(), changed = -1;
    ck_assert_int_eq(store_peer_heartbeat(g_db, "a", "https://a", now, now + 10000), DB_OK);
    ck_assert_int_eq(store_peer_heartbeat(g_db, "b", "https://b", now, now + 10000), DB_OK);
    ck_assert_int_eq(store_peer_set_link(g_db, "a", "c-0", "cluster-agent", now, now, NULL),
                     DB_OK);
    ck_assert_int_eq(store_peer_set_link(g_db, "b", "c-1", "cluster-agent", now, now, NULL),
                     DB_OK);
    /* a restarts: what it held is gone, what b holds stays. */
    ck_assert_int_eq(store_peer_reset_links(g_db, "a", now, &changed), DB_OK);
    ck_assert_int_eq(changed, 1);
    assert_state("c-0", "disconnected");
    assert_state("c-1", "active");
    /* b dies: once its lease is over the sweep marks its cluster. */
    ck_assert_int_eq(store_peer_reap(g_db, now + 5000, &changed), DB_OK);
    ck_assert_int_eq(changed, 0);
    ck_assert_int_eq(store_peer_reap(g_db, now + 10001, &changed), DB_OK);
    ck_assert_int_eq(changed, 1);
    assert_state("c-1", "disconnected");
    /* Long gone: forgotten with its rows. */
    ck_assert_int_eq(store_peer_reap(g_db, now + 3600 * 1000, &changed), DB_OK);
    int64_t n = -1;
    ck_assert_int_eq(db_query_int64(g_db, "SELECT COUNT(*) FROM peer_tunnels", NULL, 0, &n),
                     DB_OK);
    ck_assert_int_eq(n, 0);
    ck_assert_int_eq(db_query_int64(g_db, "SELECT COUNT(*) FROM peers", NULL, 0, &n), DB_OK);
    ck_assert_int_eq(n, 0);
    /* A clean leave ends the lease and drops the rows at once. */
    ck_assert_int_eq(store_peer_heartbeat(g_db, "a", "https://a", now, now + 10000), DB_OK);
    ck_assert_int_eq(store_peer_set_link(g_db, "a", "c-2", "cluster-agent", now, now, NULL),
                     DB_OK);
    ck_assert_int_eq(store_peer_leave(g_db, "a"), DB_OK);
    ck_assert_int_eq(db_query_int64(g_db, "SELECT COUNT(*) FROM peers WHERE expires_at > 0",
                                    NULL, 0, &n), DB_OK);
    ck_assert_int_eq(n, 0);
}
END_TEST

static bool set_link(const char *me, const char *cluster, const char *via, int64_t now)
{
    bool written = false;
    ck_assert_int_eq(store_peer_set_link(g_db, me, cluster, via, now, now, &written), DB_OK);
    return written;
}

static void via_of(const char *id, char *out, size_t cap)
{
    struct db_stmt *st;
    ck_assert_int_eq(db_query(g_db, "SELECT connection_via FROM clusters WHERE id = ?",
                              DB_ARGS(DB_TEXT(id)), &st), DB_OK);
    ck_assert_int_eq(db_step(st), DB_ROW);
    snprintf(out, cap, "%s", db_col_text(st, 0) ? db_col_text(st, 0) : "");
    db_finalize(st);
}

/* The stand-in role is granted to one replica's node agent, only while no
 * other live replica holds the cluster; a cluster agent anywhere wins. */
START_TEST(test_stand_in_claim_is_exclusive)
{
    char via[64];
    for (int i = 0; i < 3; i++) {
        char id[8];
        snprintf(id, sizeof(id), "r%d", i);
        ck_assert_int_eq(store_peer_heartbeat(g_db, id, "https://x", 1000, 100000), DB_OK);
    }
    ck_assert(set_link("r0", "c-0", "cluster-agent", 1000));
    /* r1's node agent may not stand in while r0 holds the cluster agent. */
    ck_assert(!set_link("r1", "c-0", "node/n1", 1100));
    assert_state("c-0", "active");
    /* The cluster agent goes: r1's claim is granted, r2's then refused. */
    ck_assert(set_link("r0", "c-0", NULL, 1200));
    assert_state("c-0", "disconnected");
    ck_assert(set_link("r1", "c-0", "node/n1", 1300));
    assert_state("c-0", "degraded");
    via_of("c-0", via, sizeof(via));
    ck_assert_str_eq(via, "node/n1");
    ck_assert(!set_link("r2", "c-0", "node/n2", 1400));
    /* r2's "down" leaves the stand-in's state alone. */
    ck_assert(!set_link("r2", "c-0", NULL, 1450));
    assert_state("c-0", "degraded");
    /* The cluster agent is back on r0: active again, and r1 stepping down
     * (even if its write came last) keeps it so. */
    ck_assert(set_link("r0", "c-0", "cluster-agent", 1500));
    assert_state("c-0", "active");
    ck_assert(set_link("r1", "c-0", "node/n1", 1550) == false);
    ck_assert(!set_link("r1", "c-0", NULL, 1600));
    assert_state("c-0", "active");
    via_of("c-0", via, sizeof(via));
    ck_assert_str_eq(via, "cluster-agent");
    /* A stand-in whose replica's lease ran out holds nothing: r2 may claim. */
    ck_assert(set_link("r0", "c-0", NULL, 1700));
    ck_assert(set_link("r1", "c-0", "node/n1", 1800));
    ck_assert_int_eq(store_peer_heartbeat(g_db, "r1", "https://x", 1000, 2000), DB_OK);
    ck_assert(set_link("r2", "c-0", "node/n2", 3000));
    via_of("c-0", via, sizeof(via));
    ck_assert_str_eq(via, "node/n2");
}
END_TEST

START_TEST(test_first_ca_stays)
{
    char *crt = NULL, *key = NULL;
    ck_assert_int_eq(store_shared_ca_get(g_db, &crt, &key), DB_NOTFOUND);
    ck_assert_int_eq(store_shared_ca_put(g_db, "CERT1", "KEY1", 1), DB_OK);
    ck_assert_int_eq(store_shared_ca_put(g_db, "CERT2", "KEY2", 2), DB_OK);
    ck_assert_int_eq(store_shared_ca_get(g_db, &crt, &key), DB_OK);
    ck_assert_str_eq(crt, "CERT1");
    ck_assert_str_eq(key, "KEY1");
    free(crt);
    free(key);
}
END_TEST

static int collect_agent(void *ud, const struct store_node_agent *a)
{
    char *out = ud;
    size_t n = strlen(out);
    snprintf(out + n, 512 - n, "%s/%s/%s/%s ", a->cluster, a->node, a->roles, a->peer);
    return 0;
}

/* Each replica's node agents replace its earlier set; others see those of
 * live replicas only. */
START_TEST(test_node_agents_of_live_peers)
{
    char got[512];
    ck_assert_int_eq(store_peer_heartbeat(g_db, "a", "https://a", 1, 1000), DB_OK);
    ck_assert_int_eq(store_peer_heartbeat(g_db, "b", "https://b", 1, 1000), DB_OK);
    ck_assert_int_eq(store_peer_heartbeat(g_db, "c", "https://c", 1, 50), DB_OK);
    const struct store_node_agent mine[] = { { "c-0", "n1", "etcd", NULL },
                                             { "c-1", "n2", "", NULL } };
    const struct store_node_agent theirs[] = { { "c-0", "n3", "etcd,controlplane", NULL } };
    const struct store_node_agent dead[] = { { "c-0", "n4", "etcd", NULL } };
    ck_assert_int_eq(store_peer_put_node_agents(g_db, "a", mine, 2), DB_OK);
    ck_assert_int_eq(store_peer_put_node_agents(g_db, "a", mine, 2), DB_OK);
    ck_assert_int_eq(store_peer_put_node_agents(g_db, "b", theirs, 1), DB_OK);
    ck_assert_int_eq(store_peer_put_node_agents(g_db, "c", dead, 1), DB_OK);
    got[0] = '\0';
    ck_assert_int_eq(store_peer_node_agents(g_db, "a", 100, collect_agent, got), DB_OK);
    ck_assert_str_eq(got, "c-0/n3/etcd,controlplane/b ");
    got[0] = '\0';
    ck_assert_int_eq(store_peer_node_agents(g_db, "b", 100, collect_agent, got), DB_OK);
    ck_assert_str_eq(got, "c-0/n1/etcd/a c-1/n2//a ");
    /* a's agents left. */
    ck_assert_int_eq(store_peer_put_node_agents(g_db, "a", NULL, 0), DB_OK);
    got[0] = '\0';
    ck_assert_int_eq(store_peer_node_agents(g_db, "b", 100, collect_agent, got), DB_OK);
    ck_assert_str_eq(got, "");
}
END_TEST

/* The runner-scoped recovery of node tasks, on both datastores. */
START_TEST(test_recover_tasks_of_gone_runners)
{
    int64_t changed = -1;
    ck_assert_int_eq(store_peer_heartbeat(g_db, "b", "https://b", 1, 1000), DB_OK);
    ck_assert_int_eq(store_snapshot_create(g_db, "s-1", "c-0", "n1", true, 1, "a"), DB_OK);
    ck_assert_int_eq(store_snapshot_create(g_db, "s-2", "c-0", "n1", true, 2, "b"), DB_OK);
    ck_assert_int_eq(store_upgrade_put(g_db, "c-1", "{\"state\":\"running\"}", 3, "a"), DB_OK);
    /* b's sweep: a is gone (no lease), b's own task stays. */
    ck_assert_int_eq(store_snapshots_recover(g_db, 100, "b", true, &changed), DB_OK);
    ck_assert_int_eq(changed, 2);
    /* b restarts: now its own too. */
    ck_assert_int_eq(store_snapshots_recover(g_db, 100, "b", false, &changed), DB_OK);
    ck_assert_int_eq(changed, 1);
    ck_assert_int_eq(store_snapshots_recover(g_db, 100, NULL, false, &changed), DB_OK);
    ck_assert_int_eq(changed, 0);
}
END_TEST

Suite *suite_server_store_peers(void)
{
    Suite *s = suite_create("server_store_peers");
    TCase *lite = tcase_create("sqlite");
    tcase_add_checked_fixture(lite, lite_setup, teardown);
    TCase *pg = tcase_create("postgres");
    tcase_add_unchecked_fixture(pg, pg_suite_setup, pg_suite_teardown);
    tcase_add_checked_fixture(pg, pg_setup, teardown);
    const TTest *all[] = { test_lease_changes_hands_only_when_free, test_owners_follow_leases,
                           test_reset_and_reap_touch_only_orphans, test_first_ca_stays,
                           test_stand_in_claim_is_exclusive,

                           test_node_agents_of_live_peers, test_recover_tasks_of_gone_runners };
    for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++) {
        tcase_add_test(lite, all[i]);
        tcase_add_test(pg, all[i]);
    }
    tcase_set_timeout(pg, 120);
    suite_add_tcase(s, lite);
    suite_add_tcase(s, pg);
    return s;
}
