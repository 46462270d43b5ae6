/*
 * The server's life around the /v3 API, on SQLite and on PostgreSQL (see
 * tests/support/apitest.h): the bootstrap admin is made once (also by
 * replicas starting together), readiness waits for the datastore, tunnels
 * write the cluster's link state, and every acknowledged write survives a
 * SIGKILL in the middle of a burst.
 */
#include <check.h>
#include <libpq-fe.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tests/support/apitest.h"
#include "tests/support/rawws.h"

static struct dtest d;

static void lite_setup(void)
{
    apitest_lite_setup(&d);
}

static void pg_setup(void)
{
    apitest_pg_setup(&d);
}

static void teardown(void)
{
    apitest_teardown(&d);
}

#define jget apitest_get
#define jstr apitest_str

static int call(const char *method, const char *path, const char *token, const char *body,
                json_t **out)
{
    return apitest_call(&d, method, path, token, body, out);
}

static json_t *new_cluster(const char *token, const char *name, char id[16])
{
    return apitest_cluster(&d, token, name, id);
}

/* "/v3/clusters/<id>" and what follows (rest may be ""). */
static void path_of(char *out, size_t cap, const char *id, const char *rest)
{
    snprintf(out, cap, "/v3/clusters/%s%s", id, rest);
}

START_TEST(bootstrap_once)
{
    ck_assert_int_eq(strlen(d.admin_pw), 24);
    /* Printed once, and the password appears nowhere else in the output. */
    dtest_stop_server(&d);
    dtest_spawn_server(&d, NULL);
    char cmd[512], out[64];
    snprintf(cmd, sizeof(cmd), "grep -c 'Bootstrap admin password' %s", d.server_log);
    ck_assert_int_eq(run_capture(cmd, out, sizeof(out)), 0);
    ck_assert_int_eq(strtol(out, NULL, 10), 1);
    snprintf(cmd, sizeof(cmd), "grep -c '%s' %s", d.admin_pw, d.server_log);
    run_capture(cmd, out, sizeof(out));
    ck_assert_int_eq(strtol(out, NULL, 10), 1);
    dtest_admin(&d);
    json_t *j = EXPECT(200, "GET", "/v3/users", d.admin_token, NULL);
    ck_assert_int_eq(json_array_size(json_object_get(j, "data")), 1);
    ck_assert_str_eq(jstr(json_array_get(json_object_get(j, "data"), 0), "username"), "admin");
    ck_assert(json_is_true(jget(json_array_get(json_object_get(j, "data"), 0), "admin")));
    json_decref(j);
}
END_TEST

struct state_wait {
    const char *path, *state;
};

static bool has_state(void *ud)
{
    struct state_wait *w = ud;
    json_t *c = NULL;
    bool ok = call("GET", w->path, d.admin_token, NULL, &c) == 200 &&
              strcmp(jstr(c, "state"), w->state) == 0;
    json_decref(c);
    return ok;
}

/* A cluster agent's tunnel coming and going is written to the cluster. */
START_TEST(link_state)
{
    char id[16], tok[80], path[128];
    json_t *c = new_cluster(d.admin_token, "linked", id);
    snprintf(tok, sizeof(tok), "%s", jstr(c, "registration.token"));
    json_decref(c);
    path_of(path, sizeof(path), id, "");
    struct rawws w;
    ck_assert_int_eq(rawws_open(&w, d.https_port, tok, id), 0);
    ck_assert_int_eq(w.status, 101);
    struct state_wait sw = { path, "active" };
    ck_assert_msg(wait_until(has_state, &sw, 10000), "never active");
    c = EXPECT(200, "GET", path, d.admin_token, NULL);
    ck_assert_str_eq(jstr(c, "connection.via"), "cluster-agent");
    ck_assert_ptr_nonnull(jstr(c, "connection.since"));
    ck_assert_ptr_nonnull(jstr(c, "lastSeen"));
    json_decref(c);
    rawws_free(&w);
    sw.state = "disconnected";
    ck_assert_msg(wait_until(has_state, &sw, 10000), "never disconnected");
    c = EXPECT(200, "GET", path, d.admin_token, NULL);
    ck_assert(json_is_null(jget(c, "connection.via")));
    ck_assert_ptr_nonnull(jstr(c, "lastSeen"));
    json_decref(c);
    /* A restart forgets links of the previous run. */
    ck_assert_int_eq(rawws_open(&w, d.https_port, tok, id), 0);
    sw.state = "active";
    ck_assert(wait_until(has_state, &sw, 10000));
    proc_signal(&d.server, SIGKILL);
    proc_wait(&d.server, 5000);
    rawws_free(&w);
    dtest_spawn_server(&d, NULL);
    json_decref(EXPECT(200, "GET", path, d.admin_token, NULL));
    sw.state = "disconnected";
    ck_assert(has_state(&sw));
}
END_TEST

/* Until its datastore is reachable and migrated the server is alive but not
 * ready, and refuses API calls and agents with 503; then it becomes ready on
 * its own. PostgreSQL only: a database that does not exist yet stands in
 * for one that is still starting. */
START_TEST(readiness)
{
    struct dtest prev = d;
    char db[64], sql[96];
    memset(&d, 0, sizeof(d));
    snprintf(db, sizeof(db), "late_%d", (int)getpid());
    snprintf(d.datastore, sizeof(d.datastore), "postgres://postgres@127.0.0.1:%d/%s",
             apitest_pg_port(), db);
    dtest_spawn(&d, NULL, false);
    ck_assert(wait_until(apitest_alive, &d, 15000));
    ck_assert_int_eq(call("GET", "/readyz", NULL, NULL, NULL), 503);
    EXPECT_ONLY(503, "POST", "/v3/tokens", NULL, "{\"username\":\"a\",\"password\":\"b\"}");
    EXPECT_ONLY(503, "GET", "/v3/clusters", prev.admin_token, NULL);
    struct rawws w;
    ck_assert_int_eq(rawws_open(&w, d.https_port, prev.token[0] ? prev.token : "x", "c-aaaaa"),
                     0);
    ck_assert_int_eq(w.status, 503);
    rawws_free(&w);
    dtest_stop_server(&d);      /* a clean stop while it is still retrying */
    dtest_spawn(&d, NULL, false);
    ck_assert(wait_until(apitest_alive, &d, 15000));
    PGconn *c = PQconnectdb(apitest_pg_admin_url());
    snprintf(sql, sizeof(sql), "CREATE DATABASE %s", db);
    PGresult *r = PQexec(c, sql);
    ck_assert_int_eq(PQresultStatus(r), PGRES_COMMAND_OK);
    PQclear(r);
    PQfinish(c);
    ck_assert_msg(wait_until(apitest_ready, &d, 20000), "never ready (log %s)", d.server_log);
    dtest_admin(&d);
    EXPECT_ONLY(200, "GET", "/v3/clusters", d.admin_token, NULL);
    dtest_down(&prev);
}
END_TEST

/* Replicas starting together on one empty database: exactly one creates
 * the admin and prints its password. */
START_TEST(replicas_bootstrap_once)
{
    static struct dtest r[3];
    char url[256], cmd[1200], out[64];
    apitest_new_database(url, sizeof(url));
    for (int i = 0; i < 3; i++) {
        memset(&r[i], 0, sizeof(r[i]));
        snprintf(r[i].datastore, sizeof(r[i].datastore), "%s", url);
        dtest_spawn(&r[i], NULL, false);
    }
    for (int i = 0; i < 3; i++)
        ck_assert_msg(wait_until(apitest_ready, &r[i], 30000), "replica %d not ready", i);
    snprintf(cmd, sizeof(cmd), "cat %s %s %s | grep -c 'Bootstrap admin password'",
             r[0].server_log, r[1].server_log, r[2].server_log);
    run_capture(cmd, out, sizeof(out));
    ck_assert_int_eq(strtol(out, NULL, 10), 1);
    for (int i = 0; i < 3; i++)
        dtest_down(&r[i]);
}
END_TEST

START_TEST(bad_datastore_setting)
{
    char cmd[512], out[512];
    snprintf(cmd, sizeof(cmd), "%s --datastore mysql://x --data-dir %s/x 2>&1",
             bin_path("drover-server"), d.dir);
    ck_assert_int_eq(run_capture(cmd, out, sizeof(out)), 2);
    ck_assert_msg(strstr(out, "datastore"), "message: %s", out);
}
END_TEST

struct prober {
    int port, status;
};

static void *bad_login(void *arg)
{
    struct prober *p = arg;
    struct httpc_resp r;
    p->status = httpc_do(p->port, "POST", "/v3/tokens", NULL,
                         "{\"username\":\"admin\",\"password\":\"wrong-password\"}", 0,
                         20000, &r);
    httpc_free(&r);
    return NULL;
}

/* SIGTERM while logins are being hashed, queued at the hashing gate and
 * held back by the throttle: every one is answered or cut, and the server
 * exits cleanly (under the sanitizers: without leaks). */
START_TEST(shutdown_in_flight)
{
    enum { N = 8 };
    struct prober p[N];
    pthread_t th[N];
    for (int i = 0; i < N; i++) {
        p[i] = (struct prober){ .port = d.https_port };
        ck_assert_int_eq(pthread_create(&th[i], NULL, bad_login, &p[i]), 0);
    }
    usleep(400 * 1000);
    dtest_stop_server(&d);
    for (int i = 0; i < N; i++) {
        pthread_join(th[i], NULL);
        ck_assert_msg(p[i].status == 401 || p[i].status == 429 || p[i].status == 503 ||
                          p[i].status == -1,
                      "login %d: %d", i, p[i].status);
    }
}
END_TEST

/* ---- crash safety ---- */

#define WRITERS 4
#define PER_WRITER 400

static int g_created;   /* across writer threads (atomic) */

struct writer {
    int index, port;
    const char *token;
    char ids[PER_WRITER][16];
    char names[PER_WRITER][32];
    int ok;
};

static void *write_clusters(void *arg)
{
    struct writer *w = arg;
    for (int i = 0; i < PER_WRITER; i++) {
        char body[96];
        struct httpc_resp r;
        snprintf(w->names[w->ok], sizeof(w->names[0]), "w%d-n%d", w->index, i);
        snprintf(body, sizeof(body), "{\"name\":\"%s\"}", w->names[w->ok]);
        int st = httpc_do(w->port, "POST", "/v3/clusters", w->token, body, 0, 10000, &r);
        json_t *j = st == 201 ? httpc_json(&r) : NULL;
        const char *id = json_string_value(json_object_get(j, "id"));
        if (id) {
            snprintf(w->ids[w->ok++], sizeof(w->ids[0]), "%s", id);
            __atomic_add_fetch(&g_created, 1, __ATOMIC_SEQ_CST);
        }
        json_decref(j);
        httpc_free(&r);
        if (st < 0)
            break;      /* the server is gone */
    }
    return NULL;
}

START_TEST(crash_safety)
{
    static struct writer ws[WRITERS];
    pthread_t th[WRITERS];
    for (int i = 0; i < WRITERS; i++) {
        ws[i] = (struct writer){ .index = i, .port = d.https_port, .token = d.admin_token };
        ck_assert_int_eq(pthread_create(&th[i], NULL, write_clusters, &ws[i]), 0);
    }
    /* Kill it in the middle of the burst, once a fair number went through. */
    long long t0 = mono_ms();
    while (__atomic_load_n(&g_created, __ATOMIC_SEQ_CST) < 60 && mono_ms() - t0 < 20000)
        usleep(5000);
    proc_signal(&d.server, SIGKILL);
    for (int i = 0; i < WRITERS; i++)
        pthread_join(th[i], NULL);
    proc_wait(&d.server, 5000);
    int total = 0;
    for (int i = 0; i < WRITERS; i++)
        total += ws[i].ok;
    ck_assert_msg(total > 0 && total < WRITERS * PER_WRITER,
                  "the kill did not land mid-burst (%d created)", total);
    dtest_spawn_server(&d, NULL);
    for (int i = 0; i < WRITERS; i++) {
        for (int k = 0; k < ws[i].ok; k++) {
            char path[64];
            json_t *c = NULL;
            snprintf(path, sizeof(path), "/v3/clusters/%s", ws[i].ids[k]);
            int st = call("GET", path, d.admin_token, NULL, &c);
            ck_assert_msg(st == 200, "cluster %s (%s) lost after the crash: %d", ws[i].ids[k],
                          ws[i].names[k], st);
            ck_assert_str_eq(jstr(c, "name"), ws[i].names[k]);
            json_decref(c);
        }
    }
    fprintf(stderr, "crash_safety%s: %d acknowledged clusters all present after SIGKILL\n",
            d.datastore[0] ? " (postgres)" : " (sqlite)", total);
}
END_TEST

Suite *suite_integration_api_lifecycle(void)
{
    const TTest *const both[] = { bootstrap_once, link_state, crash_safety,
                                  shutdown_in_flight };
    Suite *s = suite_create("integration/api_lifecycle");
    TCase *lite = tcase_create("sqlite");
    TCase *pg = tcase_create("postgres");
    apitest_fixtures(lite, pg, lite_setup, pg_setup, teardown);
    for (size_t i = 0; i < sizeof(both) / sizeof(both[0]); i++) {
        tcase_add_test(lite, both[i]);
        tcase_add_test(pg, both[i]);
    }
    tcase_add_test(lite, bad_datastore_setting);
    tcase_add_test(pg, readiness);
    tcase_add_test(pg, replicas_bootstrap_once);
    tcase_set_timeout(lite, 180);
    tcase_set_timeout(pg, 180);
    suite_add_tcase(s, lite);
    suite_add_tcase(s, pg);
    return s;
}
