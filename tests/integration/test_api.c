/*
 * The /v3 API end to end: a real drover-server over HTTPS, on SQLite and on
 * PostgreSQL (see tests/support/apitest.h), the same tests on both: every
 * endpoint's happy path, what each role may and may not do, token expiry
 * and logout, registration-token rotation (for /v3/connect and the manifest
 * URL), listing and paging, and input validation.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "server/db.h"
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

static void user_token(const char *name, bool admin, char tok[80])
{
    apitest_user(&d, name, admin, tok);
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

/* ---- tests ---- */

START_TEST(login_logout_expiry)
{
    char tok[80], body[256];
    /* Wrong password or user: 401, held back by the throttle. */
    snprintf(body, sizeof(body), "{\"username\":\"admin\",\"password\":\"nope\"}");
    long long t0 = mono_ms();
    EXPECT_ONLY(401, "POST", "/v3/tokens", NULL, body);
    ck_assert_int_ge(mono_ms() - t0, 200);
    EXPECT_ONLY(401, "POST", "/v3/tokens", NULL,
                "{\"username\":\"nobody\",\"password\":\"whatever\"}");
    /* ttl: 1 second (10 under valgrind, where one call can take a second). */
    int ttl = proc_under_valgrind() ? 10 : 1;
    snprintf(body, sizeof(body), "{\"username\":\"admin\",\"password\":\"%s\",\"ttl\":%d}",
             d.admin_pw, ttl);
    json_t *j = EXPECT(201, "POST", "/v3/tokens", NULL, body);
    ck_assert(strncmp(jstr(j, "token"), "drover_", 7) == 0);
    ck_assert_ptr_nonnull(jstr(j, "expiresAt"));
    snprintf(tok, sizeof(tok), "%s", jstr(j, "token"));
    json_decref(j);
    EXPECT_ONLY(200, "GET", "/v3/clusters", tok, NULL);
    usleep((useconds_t)ttl * 1000 * 1000 + 300 * 1000);
    EXPECT_ONLY(401, "GET", "/v3/clusters", tok, NULL);
    /* ttl as a duration; without ttl no expiry. */
    snprintf(body, sizeof(body), "{\"username\":\"admin\",\"password\":\"%s\",\"ttl\":\"2h\"}",
             d.admin_pw);
    json_decref(EXPECT(201, "POST", "/v3/tokens", NULL, body));
    ck_assert_int_eq(dtest_login(&d, "admin", d.admin_pw, tok, sizeof(tok)), 201);
    j = EXPECT(200, "GET", "/v3/users/admin", tok, NULL);
    json_decref(j);
    /* Logout ends that token only. */
    EXPECT_ONLY(204, "DELETE", "/v3/tokens/current", tok, NULL);
    EXPECT_ONLY(401, "GET", "/v3/clusters", tok, NULL);
    EXPECT_ONLY(401, "DELETE", "/v3/tokens/current", tok, NULL);
    EXPECT_ONLY(200, "GET", "/v3/clusters", d.admin_token, NULL);
    /* No token, a malformed one, an unknown one. */
    struct httpc_resp r;
    ck_assert_int_eq(dtest_call(&d, "GET", "/v3/clusters", NULL, NULL, &r), 401);
    char hdr[128];
    ck_assert_int_eq(httpc_header(&r, "WWW-Authenticate", hdr, sizeof(hdr)), 0);
    httpc_free(&r);
    EXPECT_ONLY(401, "GET", "/v3/clusters", "garbage", NULL);
    EXPECT_ONLY(401, "GET", "/v3/clusters",
                "drover_0000000000000000000000000000000000000000000000000000000000000000",
                NULL);
    /* Bad ttl values. */
    const char *bad[] = { "0", "-5", "\"abc\"", "\"1500ms\"", "99999999999", "1.5", "true" };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        snprintf(body, sizeof(body), "{\"username\":\"admin\",\"password\":\"x\",\"ttl\":%s}",
                 bad[i]);
        EXPECT_ONLY(400, "POST", "/v3/tokens", NULL, body);
    }
}
END_TEST

START_TEST(users)
{
    char alice[80], bob[80], body[256];
    user_token("alice", false, alice);
    user_token("bob", false, bob);
    EXPECT_ONLY(409, "POST", "/v3/users", d.admin_token,
                "{\"username\":\"alice\",\"password\":\"another-password\"}");
    /* Pages of one, by cursor. */
    json_t *j = EXPECT(200, "GET", "/v3/users?limit=1", d.admin_token, NULL);
    ck_assert_str_eq(jstr(json_array_get(json_object_get(j, "data"), 0), "username"), "admin");
    char path[256];
    snprintf(path, sizeof(path), "/v3/users?limit=2&cursor=%s", jstr(j, "next"));
    json_decref(j);
    j = EXPECT(200, "GET", path, d.admin_token, NULL);
    ck_assert_int_eq(json_array_size(json_object_get(j, "data")), 2);
    ck_assert_str_eq(jstr(json_array_get(json_object_get(j, "data"), 1), "username"), "bob");
    ck_assert(json_is_null(json_object_get(j, "next")));
    json_decref(j);
    /* Only admins manage users; a user may read itself. */
    EXPECT_ONLY(403, "GET", "/v3/users", alice, NULL);
    EXPECT_ONLY(403, "POST", "/v3/users", alice,
                "{\"username\":\"eve\",\"password\":\"eve-password-123\"}");
    EXPECT_ONLY(403, "DELETE", "/v3/users/bob", alice, NULL);
    EXPECT_ONLY(200, "GET", "/v3/users/alice", alice, NULL);
    EXPECT_ONLY(403, "GET", "/v3/users/bob", alice, NULL);
    EXPECT_ONLY(403, "PUT", "/v3/users/alice", alice, "{\"admin\":true}");
    /* Changing one's password ends one's other sessions, not this one. */
    char alice2[80];
    ck_assert_int_eq(dtest_login(&d, "alice", "alice-password-123", alice2, 80), 201);
    EXPECT_ONLY(200, "PUT", "/v3/users/alice", alice, "{\"password\":\"a-new-password-1\"}");
    EXPECT_ONLY(200, "GET", "/v3/users/alice", alice, NULL);
    EXPECT_ONLY(401, "GET", "/v3/users/alice", alice2, NULL);
    ck_assert_int_eq(dtest_login(&d, "alice", "alice-password-123", alice2, 80), 401);
    ck_assert_int_eq(dtest_login(&d, "alice", "a-new-password-1", alice2, 80), 201);
    /* Admins promote; the last admin cannot go. */
    j = EXPECT(200, "PUT", "/v3/users/bob", d.admin_token, "{\"admin\":true}");
    ck_assert(json_is_true(json_object_get(j, "admin")));
    json_decref(j);
    EXPECT_ONLY(200, "GET", "/v3/users", bob, NULL);
    EXPECT_ONLY(200, "PUT", "/v3/users/bob", d.admin_token, "{\"admin\":false}");
    EXPECT_ONLY(409, "PUT", "/v3/users/admin", d.admin_token, "{\"admin\":false}");
    EXPECT_ONLY(409, "DELETE", "/v3/users/admin", d.admin_token, NULL);
    /* Deleting a user ends its sessions. */
    EXPECT_ONLY(204, "DELETE", "/v3/users/bob", d.admin_token, NULL);
    EXPECT_ONLY(401, "GET", "/v3/clusters", bob, NULL);
    EXPECT_ONLY(404, "DELETE", "/v3/users/bob", d.admin_token, NULL);
    EXPECT_ONLY(404, "GET", "/v3/users/nobody", d.admin_token, NULL);
    EXPECT_ONLY(404, "PUT", "/v3/users/nobody", d.admin_token, "{\"admin\":true}");
    /* Validation. */
    const char *bad[] = {
        "{\"username\":\"Eve\",\"password\":\"long-enough-pw\"}",
        "{\"username\":\"-eve\",\"password\":\"long-enough-pw\"}",
        "{\"username\":\"eve\",\"password\":\"short\"}",
        "{\"username\":\"eve\"}",
        "{\"username\":\"eve\",\"password\":\"long-enough-pw\",\"admin\":\"yes\"}",
        "{\"username\":\"eve\",\"password\":\"long-enough-pw\",\"role\":\"x\"}",
        "{\"username\":7,\"password\":\"long-enough-pw\"}",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        EXPECT_ONLY(400, "POST", "/v3/users", d.admin_token, bad[i]);
    snprintf(body, sizeof(body), "{\"password\":\"x\"}");
    EXPECT_ONLY(400, "PUT", "/v3/users/alice", d.admin_token, body);
}
END_TEST

static void check_cluster_shape(json_t *c, const char *name)
{
    const char *id = jstr(c, "id");
    ck_assert_msg(id && strlen(id) == 7 && strncmp(id, "c-", 2) == 0 &&
                  strspn(id + 2, "abcdefghijklmnopqrstuvwxyz0123456789") == 5, "id %s", id);
    ck_assert_str_eq(jstr(c, "name"), name);
    ck_assert_str_eq(jstr(c, "state"), "pending");
    ck_assert(json_is_null(jget(c, "connection.via")));
    ck_assert(json_is_object(json_object_get(c, "connection")));
    ck_assert(json_is_null(json_object_get(c, "kubernetesVersion")));
    ck_assert_int_eq(json_integer_value(json_object_get(c, "nodeCount")), 0);
    ck_assert(json_is_object(json_object_get(c, "capacity")));
    ck_assert(json_is_array(json_object_get(c, "conditions")));
    ck_assert(json_is_null(json_object_get(c, "lastSeen")));
    ck_assert(json_is_integer(jget(c, "etcdSnapshotSchedule.intervalMinutes")));
    ck_assert(json_is_integer(jget(c, "etcdSnapshotSchedule.retention")));
    const char *tok = jstr(c, "registration.token");
    ck_assert_msg(tok && strlen(tok) == 64, "token %s", tok ? tok : "(null)");
    char url[512], cmd[600];
    snprintf(url, sizeof(url), "https://127.0.0.1:%d/v3/import/%s_%s.yaml", d.https_port, tok,
             id);
    ck_assert_str_eq(jstr(c, "registration.manifestUrl"), url);
    snprintf(cmd, sizeof(cmd), "kubectl apply -f %s", url);
    ck_assert_str_eq(jstr(c, "registration.command"), cmd);
    snprintf(cmd, sizeof(cmd), "curl --insecure -sfL %s | kubectl apply -f -", url);
    ck_assert_str_eq(jstr(c, "registration.insecureCommand"), cmd);
}

START_TEST(clusters)
{
    char id[16], path[128];
    json_t *c = EXPECT(201, "POST", "/v3/clusters", d.admin_token,
                       "{\"name\":\"prod\",\"etcdSnapshotSchedule\":{\"intervalMinutes\":60,"
                       "\"retention\":3}}");
    check_cluster_shape(c, "prod");
    ck_assert_int_eq(json_integer_value(jget(c, "etcdSnapshotSchedule.intervalMinutes")), 60);
    ck_assert_int_eq(json_integer_value(jget(c, "etcdSnapshotSchedule.retention")), 3);
    snprintf(id, sizeof(id), "%s", jstr(c, "id"));
    json_decref(c);
    c = new_cluster(d.admin_token, "staging", path);
    ck_assert_int_eq(json_integer_value(jget(c, "etcdSnapshotSchedule.intervalMinutes")), 720);
    json_decref(c);
    EXPECT_ONLY(409, "POST", "/v3/clusters", d.admin_token, "{\"name\":\"prod\"}");
    /* The list and one cluster. */
    c = EXPECT(200, "GET", "/v3/clusters", d.admin_token, NULL);
    ck_assert_int_eq(json_array_size(json_object_get(c, "data")), 2);
    ck_assert(json_is_null(json_object_get(c, "next")));
    json_decref(c);
    c = EXPECT(200, "GET", "/v3/clusters?limit=1", d.admin_token, NULL);
    ck_assert_int_eq(json_array_size(json_object_get(c, "data")), 1);
    ck_assert(json_is_string(json_object_get(c, "next")));
    json_decref(c);
    path_of(path, sizeof(path), id, "");
    c = EXPECT(200, "GET", path, d.admin_token, NULL);
    check_cluster_shape(c, "prod");
    json_decref(c);
    /* PUT: rename, schedule; names stay unique; read-only fields refused. */
    c = EXPECT(200, "PUT", path, d.admin_token,
               "{\"name\":\"production\",\"etcdSnapshotSchedule\":{\"retention\":9}}");
    ck_assert_str_eq(jstr(c, "name"), "production");
    ck_assert_int_eq(json_integer_value(jget(c, "etcdSnapshotSchedule.intervalMinutes")), 60);
    ck_assert_int_eq(json_integer_value(jget(c, "etcdSnapshotSchedule.retention")), 9);
    json_decref(c);
    EXPECT_ONLY(409, "PUT", path, d.admin_token, "{\"name\":\"staging\"}");
    EXPECT_ONLY(200, "PUT", path, d.admin_token, "{\"name\":\"production\"}");
    EXPECT_ONLY(400, "PUT", path, d.admin_token, "{\"state\":\"active\"}");
    EXPECT_ONLY(400, "PUT", path, d.admin_token, "{\"etcdSnapshotSchedule\":{\"retention\":0}}");
    /* Nodes and events start empty. */
    char sub[160];
    snprintf(sub, sizeof(sub), "%s/nodes", path);
    c = EXPECT(200, "GET", sub, d.admin_token, NULL);
    ck_assert_int_eq(json_array_size(json_object_get(c, "data")), 0);
    json_decref(c);
    snprintf(sub, sizeof(sub), "%s/events?since=0", path);
    c = EXPECT(200, "GET", sub, d.admin_token, NULL);
    ck_assert_int_eq(json_array_size(json_object_get(c, "data")), 0);
    json_decref(c);
    /* DELETE. */
    EXPECT_ONLY(204, "DELETE", path, d.admin_token, NULL);
    EXPECT_ONLY(404, "GET", path, d.admin_token, NULL);
    EXPECT_ONLY(404, "DELETE", path, d.admin_token, NULL);
    snprintf(sub, sizeof(sub), "%s/nodes", path);
    EXPECT_ONLY(404, "GET", sub, d.admin_token, NULL);
}
END_TEST

struct roles {
    char owner[80], member[80], viewer[80], outsider[80];
    char id[16];
};

static void set_up_roles(struct roles *r)
{
    char path[128], body[128];
    user_token("olga", false, r->owner);
    user_token("mike", false, r->member);
    user_token("vera", false, r->viewer);
    user_token("nora", false, r->outsider);
    json_decref(new_cluster(r->owner, "team", r->id));
    path_of(path, sizeof(path), r->id, "/members");
    snprintf(body, sizeof(body), "{\"user\":\"mike\",\"role\":\"member\"}");
    EXPECT_ONLY(201, "POST", path, r->owner, body);
    snprintf(body, sizeof(body), "{\"user\":\"vera\",\"role\":\"viewer\"}");
    EXPECT_ONLY(201, "POST", path, r->owner, body);
}

START_TEST(roles_read)
{
    struct roles r;
    char path[160];
    set_up_roles(&r);
    path_of(path, sizeof(path), r.id, "");
    /* Owners and admins see the registration token; others do not. */
    json_t *c = EXPECT(200, "GET", path, r.owner, NULL);
    ck_assert_ptr_nonnull(jstr(c, "registration.token"));
    json_decref(c);
    c = EXPECT(200, "GET", path, d.admin_token, NULL);
    ck_assert_ptr_nonnull(jstr(c, "registration.token"));
    json_decref(c);
    c = EXPECT(200, "GET", path, r.member, NULL);
    ck_assert(json_is_null(json_object_get(c, "registration")));
    json_decref(c);
    json_decref(EXPECT(200, "GET", path, r.viewer, NULL));
    /* An outsider cannot tell the cluster exists. */
    json_t *e = EXPECT(404, "GET", path, r.outsider, NULL);
    json_t *e2 = EXPECT(404, "GET", "/v3/clusters/c-zzzzz", r.outsider, NULL);
    ck_assert_str_eq(jstr(e, "error.code"), jstr(e2, "error.code"));
    json_decref(e);
    json_decref(e2);
    EXPECT_ONLY(401, "GET", path, NULL, NULL);
    /* Lists show only one's own clusters; admins see all. */
    char other[16];
    json_decref(new_cluster(d.admin_token, "admins-own", other));
    c = EXPECT(200, "GET", "/v3/clusters", r.viewer, NULL);
    ck_assert_int_eq(json_array_size(json_object_get(c, "data")), 1);
    json_decref(c);
    c = EXPECT(200, "GET", "/v3/clusters", r.outsider, NULL);
    ck_assert_int_eq(json_array_size(json_object_get(c, "data")), 0);
    json_decref(c);
    c = EXPECT(200, "GET", "/v3/clusters", d.admin_token, NULL);
    ck_assert_int_eq(json_array_size(json_object_get(c, "data")), 2);
    json_decref(c);
    /* Members, nodes, events: every role reads, outsiders get 404. */
    const char *subs[] = { "members", "nodes", "events" };
    for (size_t i = 0; i < 3; i++) {
        snprintf(path, sizeof(path), "/v3/clusters/%s/%s", r.id, subs[i]);
        json_decref(EXPECT(200, "GET", path, r.viewer, NULL));
        json_decref(EXPECT(200, "GET", path, r.member, NULL));
        json_decref(EXPECT(404, "GET", path, r.outsider, NULL));
        json_decref(EXPECT(401, "GET", path, NULL, NULL));
    }
    /* The kubectl proxy asks the same question: any role gets through (to a
     * 503 here, as no agent is connected), outsiders see nothing. */
    snprintf(path, sizeof(path), "/k8s/clusters/%s/api", r.id);
    ck_assert_int_eq(apitest_call(&d, "GET", path, r.viewer, NULL, NULL), 503);
    ck_assert_int_eq(apitest_call(&d, "GET", path, d.admin_token, NULL, NULL), 503);
    EXPECT_ONLY(404, "GET", path, r.outsider, NULL);
    EXPECT_ONLY(404, "GET", "/k8s/clusters/c-zzzzz/api", r.owner, NULL);
    EXPECT_ONLY(401, "GET", path, NULL, NULL);
    EXPECT_ONLY(401, "GET", path, "garbage", NULL);
    snprintf(path, sizeof(path), "/v3/clusters/%s/members", r.id);
    c = EXPECT(200, "GET", path, r.viewer, NULL);
    ck_assert_int_eq(json_array_size(json_object_get(c, "data")), 3);
    ck_assert_str_eq(jstr(json_array_get(json_object_get(c, "data"), 0), "user"), "mike");
    ck_assert_str_eq(jstr(json_array_get(json_object_get(c, "data"), 0), "role"), "member");
    json_decref(c);
}
END_TEST

START_TEST(roles_write)
{
    struct roles r;
    char path[160], sub[200];
    set_up_roles(&r);
    path_of(path, sizeof(path), r.id, "");
    const char *lesser[] = { r.member, r.viewer };
    for (size_t i = 0; i < 2; i++) {
        EXPECT_ONLY(403, "PUT", path, lesser[i], "{\"name\":\"mine\"}");
        EXPECT_ONLY(403, "DELETE", path, lesser[i], NULL);
        snprintf(sub, sizeof(sub), "%s/registrationtoken", path);
        EXPECT_ONLY(403, "POST", sub, lesser[i], NULL);
        snprintf(sub, sizeof(sub), "%s/members", path);
        EXPECT_ONLY(403, "POST", sub, lesser[i], "{\"user\":\"nora\",\"role\":\"owner\"}");
        snprintf(sub, sizeof(sub), "%s/members/vera", path);
        EXPECT_ONLY(403, "DELETE", sub, lesser[i], NULL);
    }
    EXPECT_ONLY(404, "PUT", path, r.outsider, "{\"name\":\"mine\"}");
    EXPECT_ONLY(404, "DELETE", path, r.outsider, NULL);
    snprintf(sub, sizeof(sub), "%s/members", path);
    EXPECT_ONLY(404, "POST", sub, r.outsider, "{\"user\":\"nora\",\"role\":\"owner\"}");
    EXPECT_ONLY(401, "DELETE", path, NULL, NULL);
    /* Owners manage members: add, change a role, remove; not the last owner. */
    EXPECT_ONLY(201, "POST", sub, r.owner, "{\"user\":\"nora\",\"role\":\"viewer\"}");
    json_t *m = EXPECT(200, "POST", sub, r.owner, "{\"user\":\"nora\",\"role\":\"member\"}");
    ck_assert_str_eq(jstr(m, "role"), "member");
    json_decref(m);
    EXPECT_ONLY(200, "GET", path, r.outsider, NULL);
    EXPECT_ONLY(404, "POST", sub, r.owner, "{\"user\":\"ghost\",\"role\":\"viewer\"}");
    EXPECT_ONLY(400, "POST", sub, r.owner, "{\"user\":\"nora\",\"role\":\"admin\"}");
    EXPECT_ONLY(409, "POST", sub, r.owner, "{\"user\":\"olga\",\"role\":\"viewer\"}");
    snprintf(sub, sizeof(sub), "%s/members/olga", path);
    EXPECT_ONLY(409, "DELETE", sub, r.owner, NULL);
    snprintf(sub, sizeof(sub), "%s/members/nora", path);
    EXPECT_ONLY(204, "DELETE", sub, r.owner, NULL);
    EXPECT_ONLY(404, "DELETE", sub, r.owner, NULL);
    EXPECT_ONLY(404, "GET", path, r.outsider, NULL);
    /* Admins own every cluster. */
    json_decref(EXPECT(200, "PUT", path, d.admin_token, "{\"name\":\"team-2\"}"));
    json_decref(EXPECT(200, "PUT", path, r.owner, "{\"name\":\"team-3\"}"));
    EXPECT_ONLY(204, "DELETE", path, r.owner, NULL);
    EXPECT_ONLY(404, "GET", path, r.member, NULL);
}
END_TEST

/* The cluster's registration token is the agent's credential, for the
 * tunnel and for the manifest URL; rotating it cuts the old one off. */
START_TEST(rotation)
{
    char id[16], old_tok[80], old_url[512], path[160];
    json_t *c = new_cluster(d.admin_token, "rotating", id);
    snprintf(old_tok, sizeof(old_tok), "%s", jstr(c, "registration.token"));
    snprintf(old_url, sizeof(old_url), "/v3/import/%s_%s.yaml", old_tok, id);
    json_decref(c);
    struct rawws w;
    ck_assert_int_eq(rawws_open(&w, d.https_port, old_tok, id), 0);
    ck_assert_int_eq(w.status, 101);
    rawws_free(&w);
    struct httpc_resp r;
    ck_assert_int_eq(dtest_call(&d, "GET", old_url, NULL, NULL, &r), 200);
    ck_assert_ptr_nonnull(strstr(r.body, id));
    char ctype[64];
    ck_assert_int_eq(httpc_header(&r, "Content-Type", ctype, sizeof(ctype)), 0);
    ck_assert_str_eq(ctype, "application/yaml");
    httpc_free(&r);
    /* The right token for another cluster is wrong. */
    ck_assert_int_eq(rawws_open(&w, d.https_port, old_tok, "c-zzzzz"), 0);
    ck_assert_int_eq(w.status, 401);
    rawws_free(&w);
    snprintf(path, sizeof(path), "/v3/clusters/%s/registrationtoken", id);
    c = EXPECT(200, "POST", path, d.admin_token, NULL);
    const char *new_tok = jstr(c, "registration.token");
    ck_assert_str_ne(new_tok, old_tok);
    ck_assert_int_eq(rawws_open(&w, d.https_port, old_tok, id), 0);
    ck_assert_int_eq(w.status, 401);
    rawws_free(&w);
    ck_assert_int_eq(rawws_open(&w, d.https_port, new_tok, id), 0);
    ck_assert_int_eq(w.status, 101);
    rawws_free(&w);
    EXPECT_ONLY(404, "GET", old_url, NULL, NULL);
    char new_url[512];
    snprintf(new_url, sizeof(new_url), "/v3/import/%s_%s.yaml", new_tok, id);
    EXPECT_ONLY(200, "GET", new_url, NULL, NULL);
    /* Deleting the cluster ends both, and closes its live tunnels. */
    ck_assert_int_eq(rawws_open(&w, d.https_port, new_tok, id), 0);
    ck_assert_int_eq(w.status, 101);
    snprintf(path, sizeof(path), "/v3/clusters/%s", id);
    EXPECT_ONLY(204, "DELETE", path, d.admin_token, NULL);
    char reason[128];
    ck_assert_int_eq(rawws_wait_close(&w, 5000, reason, sizeof(reason)), 1008);
    ck_assert_str_eq(reason, "cluster deleted");
    rawws_free(&w);
    ck_assert_int_eq(rawws_open(&w, d.https_port, new_tok, id), 0);
    ck_assert_int_eq(w.status, 401);
    rawws_free(&w);
    EXPECT_ONLY(404, "GET", new_url, NULL, NULL);
    json_decref(c);
    EXPECT_ONLY(404, "GET", "/v3/import/nonsense.yaml", NULL, NULL);
}
END_TEST

START_TEST(validation)
{
    const char *t = d.admin_token;
    const char *bodies[] = {
        "{\"name\":\"ok\",\"extra\":1}",                 /* unknown field */
        "{\"name\":5}",                                  /* wrong type */
        "{}",                                            /* missing field */
        "{\"name\":\"ok\"",                              /* not JSON */
        "[\"name\"]",                                    /* not an object */
        "{\"name\":\"ok\",\"name\":\"ok2\"}",            /* duplicate key */
        "{\"name\":\"Upper\"}", "{\"name\":\"-dash\"}", "{\"name\":\"dash-\"}",
        "{\"name\":\"\"}", "{\"name\":\"a.b\"}",
        "{\"name\":\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\"}",
        "{\"name\":\"ok\",\"etcdSnapshotSchedule\":5}",
        "{\"name\":\"ok\",\"etcdSnapshotSchedule\":{\"every\":5}}",
        "{\"name\":\"ok\",\"etcdSnapshotSchedule\":{\"intervalMinutes\":-1}}",
        "{\"name\":\"ok\",\"etcdSnapshotSchedule\":{\"intervalMinutes\":1.5}}",
    };
    for (size_t i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++)
        EXPECT_ONLY(400, "POST", "/v3/clusters", t, bodies[i]);
    json_t *e = EXPECT(400, "POST", "/v3/clusters", t, "{\"name\":\"ok\",\"extra\":1}");
    ck_assert_ptr_nonnull(strstr(jstr(e, "error.message"), "extra"));
    ck_assert_str_eq(jstr(e, "error.code"), "BadRequest");
    json_decref(e);
    EXPECT_ONLY(400, "POST", "/v3/clusters", t, NULL);    /* no body */
    /* 63 characters is still a DNS label. */
    json_decref(EXPECT(201, "POST", "/v3/clusters", t,
                       "{\"name\":\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\"}"));
    /* Bodies over 1 MiB. */
    size_t big = 1024 * 1024 + 10;
    char *huge = malloc(big + 1);
    memset(huge, ' ', big);
    memcpy(huge, "{\"name\":\"x\"", 11);
    huge[big - 1] = '}';
    huge[big] = '\0';
    struct httpc_resp r;
    ck_assert_int_eq(httpc_do(d.https_port, "POST", "/v3/clusters", t, huge, big, 0, &r), 413);
    httpc_free(&r);
    free(huge);
    /* Query parameters. */
    EXPECT_ONLY(400, "GET", "/v3/clusters?limit=0", t, NULL);
    EXPECT_ONLY(400, "GET", "/v3/clusters?limit=abc", t, NULL);
    EXPECT_ONLY(400, "GET", "/v3/clusters?limit=1001", t, NULL);
    EXPECT_ONLY(400, "GET", "/v3/clusters?cursor=%27or", t, NULL);
    EXPECT_ONLY(200, "GET", "/v3/clusters?limit=1000&other=x", t, NULL);
    /* Unknown ids and endpoints, wrong methods. */
    EXPECT_ONLY(404, "GET", "/v3/clusters/c-zzzzz", t, NULL);
    EXPECT_ONLY(404, "GET", "/v3/clusters/not-an-id", t, NULL);
    EXPECT_ONLY(404, "GET", "/v3/clusters/c-zzzzz/events?since=3", t, NULL);
    EXPECT_ONLY(404, "GET", "/v3/nothing", t, NULL);
    EXPECT_ONLY(404, "GET", "/v3/clusters/c-zzzzz/unknown", t, NULL);
    ck_assert_int_eq(dtest_call(&d, "PATCH", "/v3/clusters", t, NULL, &r), 405);
    char allow[64];
    ck_assert_int_eq(httpc_header(&r, "Allow", allow, sizeof(allow)), 0);
    ck_assert_str_eq(allow, "GET, POST");
    httpc_free(&r);
    EXPECT_ONLY(405, "GET", "/v3/tokens", NULL, NULL);
    EXPECT_ONLY(405, "POST", "/v3/clusters/c-zzzzz", t, NULL);
    EXPECT_ONLY(405, "PUT", "/v3/clusters/c-zzzzz/members/x", t, NULL);
    EXPECT_ONLY(400, "GET", "/v3/clusters/c-zzzzz/events?since=-1", t, NULL);
}
END_TEST

/* Rows the agents will write in a later issue, put in directly, so the
 * listing and paging of nodes and events are covered now. */
static void seed(const char *id)
{
    char dir[300], err[256];
    snprintf(dir, sizeof(dir), "%s/data", d.dir);
    struct db_options o = { .datastore = d.datastore[0] ? d.datastore : "sqlite",
                            .data_dir = dir };
    struct db *db = NULL;
    ck_assert_msg(db_open(&o, &db, err, sizeof(err)) == DB_OK, "%s", err);
    for (int i = 0; i < 3; i++) {
        char name[16], msg[32];
        snprintf(name, sizeof(name), "node-%d", i);
        snprintf(msg, sizeof(msg), "event %d", i);
        ck_assert_int_eq(db_execp(db, "INSERT INTO nodes (cluster_id, name, roles, ready, "
                                  "updated_at) VALUES (?, ?, 'etcd,worker', 1, 0)",
                                  DB_ARGS(DB_TEXT(id), DB_TEXT(name)), NULL), DB_OK);
        ck_assert_int_eq(db_execp(db, "INSERT INTO events (cluster_id, created_at, type, "
                                  "reason, message) VALUES (?, 1000, 'Normal', 'Test', ?)",
                                  DB_ARGS(DB_TEXT(id), DB_TEXT(msg)), NULL), DB_OK);
    }
    db_close(db);
}

START_TEST(nodes_and_events)
{
    char id[16], path[200];
    json_decref(new_cluster(d.admin_token, "seeded", id));
    seed(id);
    snprintf(path, sizeof(path), "/v3/clusters/%s/nodes?limit=2", id);
    json_t *j = EXPECT(200, "GET", path, d.admin_token, NULL);
    json_t *n0 = json_array_get(json_object_get(j, "data"), 0);
    ck_assert_str_eq(jstr(n0, "name"), "node-0");
    ck_assert_str_eq(json_string_value(json_array_get(json_object_get(n0, "roles"), 1)),
                     "worker");
    ck_assert(json_is_true(json_object_get(n0, "ready")));
    ck_assert_str_eq(jstr(j, "next"), "node-1");
    json_decref(j);
    snprintf(path, sizeof(path), "/v3/clusters/%s/events?since=0&limit=2", id);
    j = EXPECT(200, "GET", path, d.admin_token, NULL);
    ck_assert_int_eq(json_array_size(json_object_get(j, "data")), 2);
    json_int_t second = json_integer_value(jget(json_array_get(json_object_get(j, "data"), 1),
                                                "id"));
    ck_assert_str_eq(jstr(json_array_get(json_object_get(j, "data"), 0), "message"), "event 0");
    json_decref(j);
    snprintf(path, sizeof(path), "/v3/clusters/%s/events?since=%lld", id, (long long)second);
    j = EXPECT(200, "GET", path, d.admin_token, NULL);
    ck_assert_int_eq(json_array_size(json_object_get(j, "data")), 1);
    ck_assert_str_eq(jstr(json_array_get(json_object_get(j, "data"), 0), "message"), "event 2");
    ck_assert(json_is_null(json_object_get(j, "next")));
    json_decref(j);
}
END_TEST

/* Walks GET /v3/clusters by pages of limit; returns the names seen, in
 * order, joined by ',' (every page but the last must be full). */
static void walk_clusters(const char *token, int limit, char *names, size_t cap)
{
    char path[256];
    size_t used = 0;
    names[0] = 0;
    snprintf(path, sizeof(path), "/v3/clusters?limit=%d", limit);
    for (int page = 0; page < 100; page++) {
        json_t *j = EXPECT(200, "GET", path, token, NULL);
        json_t *data = json_object_get(j, "data"), *next = json_object_get(j, "next");
        for (size_t i = 0; i < json_array_size(data); i++) {
            int n = snprintf(names + used, cap - used, "%s%s", used ? "," : "",
                             jstr(json_array_get(data, i), "name"));
            ck_assert(n > 0 && (size_t)n < cap - used);
            used += (size_t)n;
        }
        if (json_is_null(next)) {
            json_decref(j);
            return;
        }
        ck_assert_int_eq(json_array_size(data), limit);
        snprintf(path, sizeof(path), "/v3/clusters?limit=%d&cursor=%s", limit,
                 json_string_value(next));
        json_decref(j);
    }
    ck_abort_msg("GET /v3/clusters never ended");
}

START_TEST(cluster_pages)
{
    char alice[80], bob[80], all[512], mine[512], want[512] = "";
    user_token("alice", false, alice);
    user_token("bob", false, bob);
    /* Ids are random: the names are given in the order the ids sort. */
    char ids[7][16], names[7][8];
    for (int i = 0; i < 7; i++) {
        snprintf(names[i], sizeof(names[i]), "p%d", i);
        json_decref(new_cluster(i < 5 ? alice : bob, names[i], ids[i]));
    }
    walk_clusters(d.admin_token, 3, all, sizeof(all));
    walk_clusters(alice, 2, mine, sizeof(mine));
    /* Every cluster once for the admin; alice's five, in the same order,
     * with nothing of bob's. */
    size_t seen = 0;
    for (char *p = all, *save = NULL, *tok; (tok = strtok_r(p, ",", &save)); p = NULL) {
        seen++;
        if (tok[1] - '0' < 5)
            snprintf(want + strlen(want), sizeof(want) - strlen(want), "%s%s",
                     want[0] ? "," : "", tok);
    }
    ck_assert_uint_eq(seen, 7);
    ck_assert_str_eq(mine, want);
    walk_clusters(bob, 1, mine, sizeof(mine));
    ck_assert_msg(strcmp(mine, "p5,p6") == 0 || strcmp(mine, "p6,p5") == 0, "bob sees %s",
                  mine);
    /* A member's page carries its role's view: the owner sees the token. */
    json_t *j = EXPECT(200, "GET", "/v3/clusters?limit=1", alice, NULL);
    ck_assert(json_is_string(jget(json_array_get(json_object_get(j, "data"), 0),
                                  "registration.token")));
    json_decref(j);
}
END_TEST

Suite *suite_integration_api(void)
{
    const TTest *const both[] = {
        login_logout_expiry, users, clusters, roles_read, roles_write, rotation,
        validation, nodes_and_events, cluster_pages,
    };
    Suite *s = suite_create("integration/api");
    TCase *lite = tcase_create("sqlite");
    TCase *pg = tcase_create("postgres");
    apitest_fixtures(lite, pg, lite_setup, pg_setup, teardown);
    for (size_t i = 0; i < sizeof(both) / sizeof(both[0]); i++) {
        tcase_add_test(lite, both[i]);
        tcase_add_test(pg, both[i]);
    }
    tcase_set_timeout(lite, 180);
    tcase_set_timeout(pg, 180);
    suite_add_tcase(s, lite);
    suite_add_tcase(s, pg);
    return s;
}
