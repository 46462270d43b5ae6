/*
 * apitest: fixtures and helpers for the /v3 API tests. See apitest.h.
 */
#include "tests/support/apitest.h"

#include <libpq-fe.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "tests/support/pgtmp.h"

static struct pgtmp *g_pg;

static void start(struct dtest *d)
{
    dtest_spawn_server(d, NULL);
    dtest_admin(d);
}

void apitest_lite_setup(struct dtest *d)
{
    memset(d, 0, sizeof(*d));
    start(d);
}

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

void apitest_new_database(char *url, size_t cap)
{
    static int n;
    char name[64], sql[96];
    PGconn *c = PQconnectdb(pgtmp_admin_url(g_pg));
    ck_assert_msg(PQstatus(c) == CONNECTION_OK, "%s", PQerrorMessage(c));
    snprintf(name, sizeof(name), "api_%d_%d", (int)getpid(), n++);
    snprintf(sql, sizeof(sql), "CREATE DATABASE %s", name);
    PGresult *r = PQexec(c, sql);
    ck_assert_msg(PQresultStatus(r) == PGRES_COMMAND_OK, "%s", PQerrorMessage(c));
    PQclear(r);
    PQfinish(c);
    snprintf(url, cap, "postgres://postgres@127.0.0.1:%d/%s", pgtmp_port(g_pg), name);
}

const char *apitest_pg_admin_url(void)
{
    return pgtmp_admin_url(g_pg);
}

int apitest_pg_port(void)
{
    return pgtmp_port(g_pg);
}

/* A database of its own for each test, so tests never see each other. */
void apitest_pg_setup(struct dtest *d)
{
    memset(d, 0, sizeof(*d));
    apitest_new_database(d->datastore, sizeof(d->datastore));
    start(d);
}

void apitest_teardown(struct dtest *d)
{
    dtest_down(d);
    proc_cleanup();
}

void apitest_fixtures(TCase *lite, TCase *pg, void (*lite_setup)(void),
                      void (*pg_setup)(void), void (*teardown)(void))
{
    if (lite)
        tcase_add_checked_fixture(lite, lite_setup, teardown);
    if (pg) {
        tcase_add_unchecked_fixture(pg, pg_suite_setup, pg_suite_teardown);
        tcase_add_checked_fixture(pg, pg_setup, teardown);
    }
}

int apitest_call(struct dtest *d, const char *method, const char *path, const char *token,
                 const char *body, json_t **out)
{
    struct httpc_resp r;
    int st = dtest_call(d, method, path, token, body, &r);
    if (out)
        *out = httpc_json(&r);
    httpc_free(&r);
    return st;
}

json_t *apitest_expect(struct dtest *d, int line, int status, const char *method,
                       const char *path, const char *token, const char *body)
{
    struct httpc_resp r;
    int st = dtest_call(d, method, path, token, body, &r);
    ck_assert_msg(st == status, "line %d: %s %s: %d, want %d: %s (log %s)", line, method, path,
                  st, status, r.body ? r.body : "", d->server_log);
    json_t *j = httpc_json(&r);
    if (st >= 400) {
        json_t *e = json_object_get(j, "error");
        ck_assert_msg(json_integer_value(json_object_get(e, "status")) == st &&
                      json_is_string(json_object_get(e, "code")) &&
                      json_is_string(json_object_get(e, "message")),
                      "line %d: error shape: %s", line, r.body);
    }
    httpc_free(&r);
    return j;
}

json_t *apitest_get(json_t *j, const char *path)
{
    char key[64];
    while (j && *path) {
        size_t n = strcspn(path, ".");
        snprintf(key, sizeof(key), "%.*s", (int)n, path);
        j = json_object_get(j, key);
        path += n + (path[n] == '.');
    }
    return j;
}

const char *apitest_str(json_t *j, const char *path)
{
    return json_string_value(apitest_get(j, path));
}

void apitest_user(struct dtest *d, const char *name, bool admin, char tok[80])
{
    char body[256], pw[64];
    snprintf(pw, sizeof(pw), "%s-password-123", name);
    snprintf(body, sizeof(body), "{\"username\":\"%s\",\"password\":\"%s\",\"admin\":%s}",
             name, pw, admin ? "true" : "false");
    json_decref(apitest_expect(d, __LINE__, 201, "POST", "/v3/users", d->admin_token, body));
    ck_assert_int_eq(dtest_login(d, name, pw, tok, 80), 201);
}

json_t *apitest_cluster(struct dtest *d, const char *token, const char *name, char id[16])
{
    char body[128];
    snprintf(body, sizeof(body), "{\"name\":\"%s\"}", name);
    json_t *j = apitest_expect(d, __LINE__, 201, "POST", "/v3/clusters", token, body);
    snprintf(id, 16, "%s", apitest_str(j, "id"));
    return j;
}

static int status_of(struct dtest *d, const char *path)
{
    struct httpc_resp r;
    int st = dtest_call(d, "GET", path, NULL, NULL, &r);
    httpc_free(&r);
    return st;
}

bool apitest_ready(void *ud)
{
    return status_of(ud, "/readyz") == 200;
}

bool apitest_alive(void *ud)
{
    return status_of(ud, "/healthz") == 200;
}
