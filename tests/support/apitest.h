/*
 * apitest: what the /v3 API integration tests share: fixtures that run each
 * test against a fresh server on SQLite (a new data dir) or on PostgreSQL
 * (one throwaway server per run from pgtmp, a new database per test), logged
 * in as admin; and small helpers for calls, expected statuses and JSON.
 *
 * A test file keeps its own `static struct dtest d;`, which the fixtures
 * fill and the EXPECT macros use.
 */
#ifndef DROVER_TEST_APITEST_H
#define DROVER_TEST_APITEST_H

#include <check.h>
#include <jansson.h>
#include <stdbool.h>

#include "tests/support/dtest.h"

/* Fixture bodies. A test file wraps them around its own `d` (Check's
 * fixtures take no arguments) and passes the wrappers to apitest_fixtures,
 * which also runs pgtmp around the pg case. */
void apitest_lite_setup(struct dtest *d);
void apitest_pg_setup(struct dtest *d);
void apitest_teardown(struct dtest *d);
void apitest_fixtures(TCase *lite, TCase *pg, void (*lite_setup)(void),
                      void (*pg_setup)(void), void (*teardown)(void));
/* A fresh database on the throwaway PostgreSQL (pg cases only). */
void apitest_new_database(char *url, size_t cap);
/* Its URL pieces, for databases made by hand. */
const char *apitest_pg_admin_url(void);
int apitest_pg_port(void);

/* One call; the body as JSON into *out (may be NULL). Returns the status. */
int apitest_call(struct dtest *d, const char *method, const char *path, const char *token,
                 const char *body, json_t **out);
/* Asserts the status (and, for errors, the documented error shape) and
 * returns the JSON (caller decrefs). */
json_t *apitest_expect(struct dtest *d, int line, int status, const char *method,
                       const char *path, const char *token, const char *body);
#define EXPECT(status, method, path, token, body) \
    apitest_expect(&d, __LINE__, status, method, path, token, body)
#define EXPECT_ONLY(status, method, path, token, body) \
    json_decref(EXPECT(status, method, path, token, body))

/* Follows a dotted path of object keys ("registration.token"). */
json_t *apitest_get(json_t *j, const char *path);
const char *apitest_str(json_t *j, const char *path);

/* Creates user name (password "<name>-password-123") and logs it in. */
void apitest_user(struct dtest *d, const char *name, bool admin, char tok[80]);
/* Creates a cluster as token's user; its id into id[16]. Returns its JSON. */
json_t *apitest_cluster(struct dtest *d, const char *token, const char *name, char id[16]);
/* For wait_until: the server of the struct dtest ud says ready / alive. */
bool apitest_ready(void *ud);
bool apitest_alive(void *ud);

#endif
