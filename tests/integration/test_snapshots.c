/*
 * etcd snapshots and upgrades end to end: a real drover-server (SQLite and
 * PostgreSQL), real drover-node-agents and a real etcd (tests/support/
 * etcdtmp). Snapshots are taken, downloaded and compared with the agent's
 * file, restored through a hook that stops etcd, swaps its data directory
 * and starts it again, and deleted; failures (etcd down, a corrupted
 * stored chunk, no etcd agent) must be reported, not swallowed. Upgrades
 * roll over two node agents whose hooks record the order.
 */
#include <check.h>
#include <jansson.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/tls.h"
#include "tests/support/apitest.h"
#include "tests/support/etcdtmp.h"
#include "tests/support/testagent.h"

static struct dtest d;
static struct etcdtmp *etcd;
static char cid[16], reg[80], work[300];
static struct proc agents[2];

static void lite_setup(void) { apitest_lite_setup(&d); }
static void pg_setup(void) { apitest_pg_setup(&d); }

static void teardown(void)
{
    for (int i = 0; i < 2; i++)
        proc_end(&agents[i]);
    etcdtmp_stop(etcd);
    etcd = NULL;
    if (work[0])
        remove_tree(work);
    work[0] = '\0';
    apitest_teardown(&d);
}

static void write_file(const char *path, const char *text, mode_t mode)
{
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fputs(text, f);
    fclose(f);
    chmod(path, mode);
}

/* A cluster as admin, with its registration token. */
static void make_cluster(const char *name)
{
    json_t *c = apitest_cluster(&d, d.admin_token, name, cid);
    snprintf(reg, sizeof(reg), "%s", apitest_str(c, "registration.token"));
    json_decref(c);
}

static bool node_agents_up(void *ud)
{
    return dtest_metric(&d, "drover_tunnels{kind=\"node\"}") == (long)(intptr_t)ud;
}

/* Starts node agent i as node name with roles and extra settings. */
static void start_agent(int i, const char *name, const char *roles, const char *const extra[])
{
    static char env[12][400];
    const char *all[24];
    size_t n = 0;
    snprintf(env[0], sizeof(env[0]), "DROVER_SERVER=https://127.0.0.1:%d", d.https_port);
    snprintf(env[1], sizeof(env[1]), "DROVER_TOKEN=%s", reg);
    snprintf(env[2], sizeof(env[2]), "DROVER_CA_CHECKSUM=%s", d.checksum);
    snprintf(env[3], sizeof(env[3]), "DROVER_CLUSTER_ID=%s", cid);
    snprintf(env[4], sizeof(env[4]), "DROVER_NODE_NAME=%s", name);
    snprintf(env[5], sizeof(env[5]), "DROVER_NODE_ROLES=%s", roles);
    snprintf(env[6], sizeof(env[6]), "DROVER_SNAPSHOT_DIR=%s/%s/snaps", work, name);
    snprintf(env[7], sizeof(env[7]), "DROVER_STATE_DIR=%s/%s/state", work, name);
    snprintf(env[8], sizeof(env[8]), "DROVER_HEALTH_LISTEN=127.0.0.1:0");
    snprintf(env[9], sizeof(env[9]), "DROVER_ETCD_ENDPOINTS=%s",
             etcd ? etcdtmp_endpoint(etcd) : "http://127.0.0.1:1");
    snprintf(env[10], sizeof(env[10]), "DROVER_PING_INTERVAL=500ms");
    snprintf(env[11], sizeof(env[11]), "DROVER_DEAD_AFTER=3s");
    for (size_t k = 0; k < 12; k++)
        all[n++] = env[k];
    for (size_t k = 0; extra && extra[k] && n < 23; k++)
        all[n++] = extra[k];
    all[n] = NULL;
    char log[400];
    snprintf(log, sizeof(log), "%s/agent-%s.log", d.dir, name);
    const char *argv[] = { bin_path("drover-node-agent"), NULL };
    proc_spawn(&agents[i], argv, all, log);
}

static void start_etcd(void)
{
    char err[1024];
    etcd = etcdtmp_start(err, sizeof(err));
    ck_assert_msg(etcd != NULL, "%s", err);
}

static void snap_path(char *out, size_t cap, const char *rest)
{
    snprintf(out, cap, "/v3/clusters/%s/etcdsnapshots%s", cid, rest);
}

/* Polls the snapshot until its state leaves pending/running. */
static json_t *wait_snapshot(const char *sid)
{
    char path[200], rest[80];
    snprintf(rest, sizeof(rest), "/%s", sid);
    snap_path(path, sizeof(path), rest);
    long long until = mono_ms() + 60000;
    for (;;) {
        json_t *s = EXPECT(200, "GET", path, d.admin_token, NULL);
        const char *st = apitest_str(s, "state");
        if (strcmp(st, "done") == 0 || strcmp(st, "failed") == 0 || mono_ms() > until)
            return s;
        json_decref(s);
        usleep(100000);
    }
}

/* Polls until the snapshot's restore is over. */
static json_t *wait_restore(const char *sid)
{
    char path[200], rest[80];
    snprintf(rest, sizeof(rest), "/%s", sid);
    snap_path(path, sizeof(path), rest);
    long long until = mono_ms() + 60000;
    for (;;) {
        json_t *s = EXPECT(200, "GET", path, d.admin_token, NULL);
        const char *st = apitest_str(s, "restore.state");
        if ((st && strcmp(st, "running") != 0) || mono_ms() > until)
            return s;
        json_decref(s);
        usleep(100000);
    }
}

/* POST a snapshot and wait for its end; its id into sid[40]. */
static json_t *take(char sid[40])
{
    char path[200];
    snap_path(path, sizeof(path), "");
    json_t *j = EXPECT(202, "POST", path, d.admin_token, "{}");
    ck_assert_str_eq(apitest_str(j, "state"), "pending");
    snprintf(sid, 40, "%s", apitest_str(j, "id"));
    json_decref(j);
    return wait_snapshot(sid);
}

static void etcd_agent_up(void)
{
    char hook[400], text[1024];
    snprintf(work, sizeof(work), "%s/work", d.dir);
    mkdir(work, 0700);
    /* What a site's hook does: stop etcd, swap the data directory, start it. */
    snprintf(hook, sizeof(hook), "%s/restore-hook.sh", work);
    snprintf(text, sizeof(text),
             "#!/bin/sh\nset -e\n%s/stop.sh\nrm -rf %s/data\nmv \"$DROVER_RESTORE_DATA_DIR\" "
             "%s/data\n%s/start.sh\n"
             "i=0; until etcdctl --endpoints=%s --dial-timeout=1s endpoint health >/dev/null "
             "2>&1; do i=$((i+1)); [ $i -gt 200 ] && exit 1; sleep 0.1; done\n"
             "echo \"restored $DROVER_SNAPSHOT_ID\"\n",
             etcdtmp_dir(etcd), etcdtmp_dir(etcd), etcdtmp_dir(etcd), etcdtmp_dir(etcd),
             etcdtmp_endpoint(etcd));
    write_file(hook, text, 0755);
    static char env_hook[500];
    snprintf(env_hook, sizeof(env_hook), "DROVER_RESTORE_HOOK=%s", hook);
    const char *extra[] = { env_hook, NULL };
    start_agent(0, "etcd-1", "etcd,controlplane", extra);
    ck_assert_msg(wait_until(node_agents_up, (void *)1, 20000),
                  "the node agent did not connect (logs in %s)", d.dir);
}

static void get_key(const char *key, const char *want)
{
    char v[256];
    ck_assert_int_eq(etcdtmp_get(etcd, key, v, sizeof(v)), 0);
    ck_assert_msg(strcmp(v, want) == 0, "%s is \"%s\", want \"%s\"", key, v, want);
}

START_TEST(snapshot_download_restore_delete)
{
    char sid[40], path[200], rest[120];
    start_etcd();
    make_cluster("snap");
    etcd_agent_up();
    ck_assert_int_eq(etcdtmp_put(etcd, "k1", "v1"), 0);
    ck_assert_int_eq(etcdtmp_put(etcd, "k2", "v2"), 0);

    json_t *s = take(sid);
    ck_assert_msg(strcmp(apitest_str(s, "state"), "done") == 0, "snapshot %s: %s (logs %s)",
                  apitest_str(s, "state"), apitest_str(s, "error"), d.dir);
    ck_assert_str_eq(apitest_str(s, "node"), "etcd-1");
    json_int_t size = json_integer_value(apitest_get(s, "size"));
    char sha[65];
    snprintf(sha, sizeof(sha), "%s", apitest_str(s, "sha256"));
    ck_assert_int_gt(size, 0);
    ck_assert_int_eq(strlen(sha), 64);
    json_decref(s);

    /* The download is the agent's file, byte for byte. */
    struct httpc_resp r;
    snprintf(rest, sizeof(rest), "/%s/download", sid);
    snap_path(path, sizeof(path), rest);
    ck_assert_int_eq(dtest_call(&d, "GET", path, d.admin_token, NULL, &r), 200);
    ck_assert_int_eq((json_int_t)r.len, size);
    char body_sha[65], hdr[100], file[400], file_sha[65];
    tls_sha256_hex(r.body, r.len, body_sha);
    ck_assert_str_eq(body_sha, sha);
    ck_assert_int_eq(httpc_header(&r, "x-drover-sha256", hdr, sizeof(hdr)), 0);
    ck_assert_str_eq(hdr, sha);
    httpc_free(&r);
    snprintf(file, sizeof(file), "%s/etcd-1/snaps/%s.db", work, sid);
    ck_assert_int_eq(file_sha256(file, file_sha), 0);
    ck_assert_str_eq(file_sha, sha);

    /* Listed. */
    snap_path(path, sizeof(path), "?limit=10");
    json_t *l = EXPECT(200, "GET", path, d.admin_token, NULL);
    ck_assert_int_eq(json_array_size(apitest_get(l, "data")), 1);
    ck_assert_str_eq(apitest_str(json_array_get(apitest_get(l, "data"), 0), "id"), sid);
    ck_assert(json_is_null(apitest_get(l, "next")));
    json_decref(l);

    /* Later writes are undone by the restore. */
    ck_assert_int_eq(etcdtmp_put(etcd, "k1", "changed"), 0);
    ck_assert_int_eq(etcdtmp_put(etcd, "k3", "new"), 0);
    snprintf(rest, sizeof(rest), "/%s/restore", sid);
    snap_path(path, sizeof(path), rest);
    json_t *rs = EXPECT(202, "POST", path, d.admin_token, NULL);
    ck_assert_str_eq(apitest_str(rs, "restore.state"), "running");
    json_decref(rs);
    s = wait_restore(sid);
    json_t *n0 = json_array_get(apitest_get(s, "restore.nodes"), 0);
    ck_assert_msg(strcmp(apitest_str(s, "restore.state"), "done") == 0,
                  "restore: %s: %s (logs %s)", apitest_str(s, "restore.state"),
                  apitest_str(n0, "message"), d.dir);
    ck_assert_str_eq(apitest_str(n0, "node"), "etcd-1");
    json_decref(s);
    get_key("k1", "v1");
    get_key("k2", "v2");
    get_key("k3", "");

    /* Delete: gone from the server and from the node. */
    snprintf(rest, sizeof(rest), "/%s", sid);
    snap_path(path, sizeof(path), rest);
    EXPECT_ONLY(204, "DELETE", path, d.admin_token, NULL);
    EXPECT_ONLY(404, "GET", path, d.admin_token, NULL);
    EXPECT_ONLY(404, "DELETE", path, d.admin_token, NULL);
    long long until = mono_ms() + 10000;
    while (access(file, F_OK) == 0 && mono_ms() < until)
        usleep(50000);
    ck_assert_msg(access(file, F_OK) != 0, "the node still has %s", file);
    /* Clean exits (under SAN: no leaks) after all that. */
    ck_assert_int_eq(proc_stop(&agents[0], 10000), 0);
    dtest_stop_server(&d);
}
END_TEST

/* Zeroes the first stored chunk of sid in the SQLite datastore. */
static void corrupt_chunk(const char *sid)
{
    char db[400];
    sqlite3 *h;
    snprintf(db, sizeof(db), "%s/data/drover.db", d.dir);
    ck_assert_int_eq(sqlite3_open(db, &h), SQLITE_OK);
    sqlite3_busy_timeout(h, 5000);
    char sql[300];
    snprintf(sql, sizeof(sql), "UPDATE etcd_snapshot_chunks SET data = zeroblob(length(data)) "
             "WHERE snapshot_id = '%s' AND seq = 0", sid);
    char *err = NULL;
    ck_assert_msg(sqlite3_exec(h, sql, NULL, NULL, &err) == SQLITE_OK, "%s", err);
    ck_assert_int_eq(sqlite3_changes(h), 1);
    sqlite3_close(h);
}

START_TEST(snapshot_failures)
{
    char sid[40], path[200], rest[120], viewer[80];
    start_etcd();
    make_cluster("snapfail");
    char bare[16];
    json_decref(apitest_cluster(&d, d.admin_token, "no-agents", bare));

    /* No etcd node agent: 409 with a message that says so. */
    char p2[200];
    snprintf(p2, sizeof(p2), "/v3/clusters/%s/etcdsnapshots", bare);
    json_t *e = EXPECT(409, "POST", p2, d.admin_token, "{}");
    ck_assert_ptr_nonnull(strstr(apitest_str(e, "error.message"), "etcd role"));
    json_decref(e);
    EXPECT_ONLY(404, "POST", "/v3/clusters/c-nope0/etcdsnapshots", d.admin_token, "{}");

    etcd_agent_up();
    snap_path(path, sizeof(path), "/s-unknown");
    EXPECT_ONLY(404, "GET", path, d.admin_token, NULL);
    snap_path(path, sizeof(path), "");
    EXPECT_ONLY(400, "POST", path, d.admin_token, "{\"nodes\":1}");
    EXPECT_ONLY(409, "POST", path, d.admin_token, "{\"node\":\"no-such-node\"}");
    EXPECT_ONLY(401, "GET", path, NULL, NULL);

    /* Viewers see snapshots but may not take them. */
    apitest_user(&d, "vera", false, viewer);
    char mp[200];
    snprintf(mp, sizeof(mp), "/v3/clusters/%s/members", cid);
    EXPECT_ONLY(201, "POST", mp, d.admin_token, "{\"user\":\"vera\",\"role\":\"viewer\"}");
    EXPECT_ONLY(200, "GET", path, viewer, NULL);
    EXPECT_ONLY(403, "POST", path, viewer, "{}");

    /* etcd down: failed, with etcdctl's words. */
    ck_assert_int_eq(etcdtmp_halt(etcd), 0);
    json_t *s = take(sid);
    ck_assert_str_eq(apitest_str(s, "state"), "failed");
    const char *err = apitest_str(s, "error");
    ck_assert_msg(err && strstr(err, "connection refused") && strstr(err, "etcdctl"),
                  "error: %s", err ? err : "(none)");
    snprintf(rest, sizeof(rest), "/%s/download", sid);
    snap_path(path, sizeof(path), rest);
    EXPECT_ONLY(409, "GET", path, d.admin_token, NULL);
    json_decref(s);
    ck_assert_int_eq(etcdtmp_resume(etcd), 0);

    /* A stored chunk that no longer matches: the agent refuses it and the
     * hook never runs (etcd keeps its later writes). */
    ck_assert_int_eq(etcdtmp_put(etcd, "k", "before"), 0);
    s = take(sid);
    ck_assert_str_eq(apitest_str(s, "state"), "done");
    json_decref(s);
    ck_assert_int_eq(etcdtmp_put(etcd, "k", "after"), 0);
    corrupt_chunk(sid);
    snprintf(rest, sizeof(rest), "/%s/restore", sid);
    snap_path(path, sizeof(path), rest);
    EXPECT_ONLY(403, "POST", path, viewer, NULL);
    EXPECT_ONLY(202, "POST", path, d.admin_token, NULL);
    s = wait_restore(sid);
    ck_assert_str_eq(apitest_str(s, "restore.state"), "failed");
    const char *msg = apitest_str(json_array_get(apitest_get(s, "restore.nodes"), 0), "message");
    ck_assert_msg(msg && strstr(msg, "checksum mismatch"), "message: %s", msg ? msg : "");
    json_decref(s);
    get_key("k", "after");
    ck_assert_int_eq(proc_stop(&agents[0], 10000), 0);
    dtest_stop_server(&d);
}
END_TEST

/* A node agent without DROVER_NODE_ROLES (as the manifest runs it) gets
 * the roles the cluster agent reported for its node. */
START_TEST(roles_from_reports)
{
    char sid[40], ans[256];
    start_etcd();
    make_cluster("roles");
    struct testagent *ta = testagent_start(d.https_port, cid, reg, 15000);
    ck_assert_ptr_nonnull(ta);
    static const char doc[] =
        "{\"kubernetesVersion\":\"v1.31.0\",\"healthy\":true,\"health\":\"ok\",\"nodes\":["
        "{\"name\":\"etcd-1\",\"roles\":[\"control-plane\",\"etcd\"],\"ready\":true,"
        "\"addresses\":[],\"capacity\":{},\"allocatable\":{}}],\"events\":[]}";
    ck_assert_int_eq(testagent_report(ta, doc, sizeof(doc) - 1, ans, sizeof(ans), 20000), 0);
    ck_assert_str_eq(ans, "{\"ok\":true}");
    snprintf(work, sizeof(work), "%s/work", d.dir);
    mkdir(work, 0700);
    start_agent(0, "etcd-1", "", NULL);
    ck_assert(wait_until(node_agents_up, (void *)1, 20000));
    json_t *s = take(sid);
    ck_assert_msg(strcmp(apitest_str(s, "state"), "done") == 0, "%s: %s",
                  apitest_str(s, "state"), apitest_str(s, "error"));
    json_decref(s);
    testagent_stop(ta);
    ck_assert_int_eq(proc_stop(&agents[0], 10000), 0);
    dtest_stop_server(&d);
}
END_TEST

static bool pid_gone(void *ud)
{
    char cmd[500], out[64];
    snprintf(cmd, sizeof(cmd), "kill -0 $(cat %s) 2>/dev/null", (const char *)ud);
    return run_capture(cmd, out, sizeof(out)) != 0;
}

/* A snapshot the server never saw finish reads failed after its restart,
 * and the agent stops its etcdctl as soon as the link that asked is gone.
 * The etcdctl here only hangs (as 3.4's does against a stuck etcd). */
START_TEST(restart_fails_running_snapshot)
{
    char tool[400], pidf[400], text[800], path[200], rest[80], sid[40];
    make_cluster("restart");
    snprintf(work, sizeof(work), "%s/work", d.dir);
    mkdir(work, 0700);
    snprintf(tool, sizeof(tool), "%s/etcdctl-hangs.sh", work);
    snprintf(pidf, sizeof(pidf), "%s/etcdctl.pid", work);
    snprintf(text, sizeof(text), "#!/bin/sh\ncase \"$*\" in *status*) exit 0;; esac\n"
             "echo $$ > %s\nexec sleep 120\n", pidf);
    write_file(tool, text, 0755);
    static char env_tool[500];
    snprintf(env_tool, sizeof(env_tool), "DROVER_ETCDCTL=%s", tool);
    const char *extra[] = { env_tool, NULL };
    start_agent(0, "etcd-1", "etcd", extra);
    ck_assert(wait_until(node_agents_up, (void *)1, 20000));
    snap_path(path, sizeof(path), "");
    json_t *j = EXPECT(202, "POST", path, d.admin_token, "{}");
    snprintf(sid, sizeof(sid), "%s", apitest_str(j, "id"));
    json_decref(j);
    snprintf(rest, sizeof(rest), "/%s", sid);
    snap_path(path, sizeof(path), rest);
    long long until = mono_ms() + 20000;
    while (access(pidf, F_OK) != 0 && mono_ms() < until)
        usleep(50000);
    ck_assert_msg(access(pidf, F_OK) == 0, "etcdctl never ran (logs %s)", d.dir);
    j = EXPECT(200, "GET", path, d.admin_token, NULL);
    ck_assert_str_eq(apitest_str(j, "state"), "running");
    json_decref(j);

    proc_kill(&d.server);
    ck_assert_msg(wait_until(pid_gone, pidf, 20000), "etcdctl outlived the link");
    dtest_spawn_server(&d, NULL);
    j = EXPECT(200, "GET", path, d.admin_token, NULL);
    ck_assert_str_eq(apitest_str(j, "state"), "failed");
    ck_assert_str_eq(apitest_str(j, "error"), "the server stopped before the snapshot finished");
    json_decref(j);
}
END_TEST

static int count_scheduled(json_t *list, const char *state)
{
    json_t *it;
    size_t i;
    int n = 0;
    json_array_foreach(apitest_get(list, "data"), i, it)
        if (json_is_true(apitest_get(it, "scheduled")) &&
            (!state || strcmp(apitest_str(it, "state"), state) == 0))
            n++;
    return n;
}

START_TEST(snapshot_schedule)
{
    /* One "minute" of the schedule lasts 1 s on this server. */
    dtest_stop_server(&d);
    const char *extra[] = { "--debug-snapshot-minute", "1s", NULL };
    dtest_spawn_server(&d, extra);
    start_etcd();
    make_cluster("sched");
    etcd_agent_up();
    char cp[200], path[200];
    snprintf(cp, sizeof(cp), "/v3/clusters/%s", cid);
    EXPECT_ONLY(200, "PUT", cp, d.admin_token,
                "{\"etcdSnapshotSchedule\":{\"intervalMinutes\":1,\"retention\":2}}");
    /* Several rounds pass; retention keeps the newest two done ones. */
    snap_path(path, sizeof(path), "");
    long long until = mono_ms() + 60000;
    char seen[8][40];
    int nseen = 0, done = 0;
    while (mono_ms() < until && nseen < 5) {
        json_t *l = EXPECT(200, "GET", path, d.admin_token, NULL);
        json_t *it;
        size_t i;
        json_array_foreach(apitest_get(l, "data"), i, it) {
            bool known = false;
            for (int k = 0; k < nseen; k++)
                known = known || strcmp(seen[k], apitest_str(it, "id")) == 0;
            if (!known && nseen < 8)
                snprintf(seen[nseen++], 40, "%s", apitest_str(it, "id"));
        }
        done = count_scheduled(l, "done");
        json_decref(l);
        usleep(100000);
    }
    ck_assert_msg(nseen >= 5, "only %d scheduled snapshots in 60 s (logs %s)", nseen, d.dir);
    /* Pruning follows each finish; give the last one a moment. */
    until = mono_ms() + 10000;
    while (done > 2 && mono_ms() < until) {
        json_t *l = EXPECT(200, "GET", path, d.admin_token, NULL);
        done = count_scheduled(l, "done");
        json_decref(l);
        usleep(100000);
    }
    ck_assert_int_le(done, 2);
    /* Off again: nothing new after the one in flight. */
    EXPECT_ONLY(200, "PUT", cp, d.admin_token,
                "{\"etcdSnapshotSchedule\":{\"intervalMinutes\":0}}");
    /* A clean stop, maybe with a snapshot still in flight. */
    dtest_stop_server(&d);
    ck_assert_int_eq(proc_stop(&agents[0], 10000), 0);
}
END_TEST

/* The rollout to version ud is over (the document is written as it goes,
 * so right after the POST an older rollout may still show). */
static bool upgrade_over(void *ud)
{
    char path[200];
    snprintf(path, sizeof(path), "/v3/clusters/%s", cid);
    json_t *c = EXPECT(200, "GET", path, d.admin_token, NULL);
    const char *st = apitest_str(c, "upgrade.state"), *v = apitest_str(c, "upgrade.version");
    bool over = st && strcmp(st, "running") != 0 && v && strcmp(v, ud) == 0;
    json_decref(c);
    return over;
}

static json_t *upgrade_node(json_t *c, const char *name)
{
    json_t *it;
    size_t i;
    json_array_foreach(apitest_get(c, "upgrade.nodes"), i, it)
        if (strcmp(apitest_str(it, "node"), name) == 0)
            return it;
    return NULL;
}

START_TEST(upgrade_rollout)
{
    char hook[400], text[800], order[400], path[200], cp[200], out[512];
    make_cluster("upg");
    snprintf(work, sizeof(work), "%s/work", d.dir);
    mkdir(work, 0700);
    snprintf(order, sizeof(order), "%s/order", work);
    snprintf(hook, sizeof(hook), "%s/upgrade-hook.sh", work);
    snprintf(text, sizeof(text),
             "#!/bin/sh\necho \"$DROVER_NODE_NAME $1\" >> %s\n"
             "if [ \"$1\" = v-bad ] && [ \"$DROVER_NODE_NAME\" = z-cp ]; then echo boom; exit 3; fi\n"
             "echo upgraded to $DROVER_UPGRADE_VERSION\n", order);
    write_file(hook, text, 0755);
    static char env_hook[500];
    snprintf(env_hook, sizeof(env_hook), "DROVER_UPGRADE_HOOK=%s", hook);
    const char *extra[] = { env_hook, NULL };
    /* Names sort the other way round: the control plane must still go first. */
    start_agent(0, "a-worker", "worker", extra);
    start_agent(1, "z-cp", "controlplane,etcd", extra);
    ck_assert(wait_until(node_agents_up, (void *)2, 20000));

    snprintf(path, sizeof(path), "/v3/clusters/%s/upgrade", cid);
    snprintf(cp, sizeof(cp), "/v3/clusters/%s", cid);
    EXPECT_ONLY(400, "POST", path, d.admin_token, "{\"concurrency\":1}");
    EXPECT_ONLY(400, "POST", path, d.admin_token, "{\"version\":\"v1\",\"concurrency\":0}");
    EXPECT_ONLY(400, "POST", path, d.admin_token, "{\"version\":\"v1; rm -rf /\"}");
    json_t *u = EXPECT(202, "POST", path, d.admin_token, "{\"version\":\"v1.2.3\"}");
    ck_assert_str_eq(apitest_str(u, "version"), "v1.2.3");
    json_decref(u);
    ck_assert(wait_until(upgrade_over, "v1.2.3", 30000));
    json_t *c = EXPECT(200, "GET", cp, d.admin_token, NULL);
    ck_assert_str_eq(apitest_str(c, "upgrade.state"), "done");
    ck_assert_str_eq(apitest_str(upgrade_node(c, "z-cp"), "state"), "done");
    ck_assert_str_eq(apitest_str(upgrade_node(c, "z-cp"), "message"), "upgraded to v1.2.3");
    json_decref(c);
    char cmd[500];
    snprintf(cmd, sizeof(cmd), "cat %s", order);
    ck_assert_int_eq(run_capture(cmd, out, sizeof(out)), 0);
    ck_assert_str_eq(out, "z-cp v1.2.3\na-worker v1.2.3\n");

    /* The first failure stops the rollout: the worker is never started. */
    EXPECT_ONLY(202, "POST", path, d.admin_token, "{\"version\":\"v-bad\",\"concurrency\":1}");
    /* The answer came once the rollout was stored: a GET sees it. */
    c = EXPECT(200, "GET", cp, d.admin_token, NULL);
    ck_assert_str_eq(apitest_str(c, "upgrade.version"), "v-bad");
    json_decref(c);
    ck_assert(wait_until(upgrade_over, "v-bad", 30000));
    c = EXPECT(200, "GET", cp, d.admin_token, NULL);
    ck_assert_str_eq(apitest_str(c, "upgrade.state"), "failed");
    ck_assert_str_eq(apitest_str(upgrade_node(c, "z-cp"), "state"), "failed");
    ck_assert_ptr_nonnull(strstr(apitest_str(upgrade_node(c, "z-cp"), "message"), "boom"));
    ck_assert_str_eq(apitest_str(upgrade_node(c, "a-worker"), "state"), "skipped");
    json_decref(c);
    ck_assert_int_eq(run_capture(cmd, out, sizeof(out)), 0);
    ck_assert_str_eq(out, "z-cp v1.2.3\na-worker v1.2.3\nz-cp v-bad\n");
    ck_assert_int_eq(proc_stop(&agents[0], 10000), 0);
    ck_assert_int_eq(proc_stop(&agents[1], 10000), 0);
    dtest_stop_server(&d);
}
END_TEST

Suite *suite_integration_snapshots(void)
{
    Suite *s = suite_create("integration/snapshots");
    TCase *lite = tcase_create("sqlite");
    TCase *pg = tcase_create("postgres");
    apitest_fixtures(lite, pg, lite_setup, pg_setup, teardown);
    tcase_set_timeout(lite, 240);
    tcase_set_timeout(pg, 120);
    tcase_add_test(lite, snapshot_download_restore_delete);
    tcase_add_test(lite, snapshot_failures);
    tcase_add_test(lite, snapshot_schedule);
    tcase_add_test(lite, upgrade_rollout);
    tcase_add_test(lite, roles_from_reports);
    tcase_add_test(lite, restart_fails_running_snapshot);
    tcase_add_test(pg, snapshot_download_restore_delete);
    suite_add_tcase(s, lite);
    suite_add_tcase(s, pg);
    return s;
}
