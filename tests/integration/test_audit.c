/*
 * The audit log and the handling of secrets, against a real server and a
 * real cluster agent: every API change and kube request is a JSON line with
 * its fields; the log reopens on SIGHUP; no token or password a test run
 * used appears in the audit file or in the programs' logs; and an agent
 * that was connected refuses the server once its CA has changed.
 */
#include <check.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tests/support/dtest.h"

#define TUNNELS "drover_tunnels{kind=\"cluster\"}"

static struct dtest d;
static char audit_dir[256], audit_path[300];

static void setup(void)
{
    memset(&d, 0, sizeof(d));
    make_temp_dir(audit_dir, sizeof(audit_dir));
    snprintf(audit_path, sizeof(audit_path), "%s/audit.log", audit_dir);
}

static void teardown(void)
{
    dtest_down(&d);
    remove_tree(audit_dir);
    proc_cleanup();
}

static const char *server_args[] = { "--ping-interval", "500ms", "--dead-after", "2s",
                                     "--log-level", "debug", "--audit-log", audit_path,
                                     NULL };

static void up(void)
{
    dtest_spawn_server(&d, server_args);
    d.target_port = 9;  /* the agent needs something to allow; nothing dials it */
    dtest_admin(&d);
    dtest_create_cluster(&d, "test", d.cluster, d.token);
    dtest_start_agent(&d, NULL);
    ck_assert_msg(dtest_wait_metric(&d, TUNNELS, 1, 15000), "agent did not connect (%s)",
                  d.dir);
}

static int call(const char *method, const char *path, const char *token, const char *body,
                json_t **out)
{
    struct httpc_resp r;
    int st = dtest_call(&d, method, path, token, body, &r);
    if (out)
        *out = httpc_json(&r);
    httpc_free(&r);
    return st;
}

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return strdup("");
    static char buf[1 << 20];
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    return strdup(buf);
}

static size_t count_lines(const char *path)
{
    char *s = slurp(path);
    size_t n = 0;
    for (char *p = s; *p; p++)
        n += *p == '\n';
    free(s);
    return n;
}

struct lines_wait {
    const char *path;
    size_t want;
    const char *last;           /* text of the last record expected, or NULL */
};

/* The writer thread appends in its own time: wait for the count and, when
 * given, for the record written last, so no record is looked for early. */
static bool enough_lines(void *ud)
{
    struct lines_wait *w = ud;
    if (count_lines(w->path) < w->want)
        return false;
    if (!w->last)
        return true;
    char *s = slurp(w->path);
    bool found = s && strstr(s, w->last);
    free(s);
    return found;
}

/* The audit records, each checked for its fields. */
static json_t *read_audit(const char *path)
{
    json_t *all = json_array();
    char *s = slurp(path);
    for (char *line = strtok(s, "\n"); line; line = strtok(NULL, "\n")) {
        json_error_t e;
        json_t *j = json_loads(line, 0, &e);
        ck_assert_msg(j, "audit line is not JSON: %s (%s)", line, e.text);
        const char *t = json_string_value(json_object_get(j, "time"));
        ck_assert_msg(t && strlen(t) == 24 && t[23] == 'Z', "bad time in %s", line);
        ck_assert(json_is_string(json_object_get(j, "kind")));
        ck_assert(json_is_string(json_object_get(j, "method")));
        ck_assert(json_is_string(json_object_get(j, "path")));
        ck_assert(json_is_integer(json_object_get(j, "status")));
        ck_assert(json_is_number(json_object_get(j, "durationMs")));
        const char *remote = json_string_value(json_object_get(j, "remote"));
        ck_assert_msg(remote && strncmp(remote, "127.0.0.1:", 10) == 0, "remote in %s", line);
        ck_assert(json_object_get(j, "user") && json_object_get(j, "cluster"));
        json_array_append_new(all, j);
    }
    free(s);
    return all;
}

/* The first record with these values (NULL: any). */
static json_t *find_in(json_t *all, const char *kind, const char *method, const char *path,
                       int status, const char *user, const char *cluster)
{
    size_t i;
    json_t *j;
    json_array_foreach(all, i, j) {
        const char *u = json_string_value(json_object_get(j, "user"));
        if (strcmp(json_string_value(json_object_get(j, "kind")), kind) == 0 &&
            strcmp(json_string_value(json_object_get(j, "method")), method) == 0 &&
            strcmp(json_string_value(json_object_get(j, "path")), path) == 0 &&
            json_integer_value(json_object_get(j, "status")) == status &&
            (!user || (u && strcmp(u, user) == 0)) &&
            (!cluster || (json_string_value(json_object_get(j, "cluster")) &&
                          strcmp(json_string_value(json_object_get(j, "cluster")), cluster) == 0)))
            return j;
    }
    return NULL;
}

static json_t *find(json_t *all, const char *kind, const char *method, const char *path,
                    int status, const char *user)
{
    return find_in(all, kind, method, path, status, user, NULL);
}

static void assert_absent(const char *file, const char *secret, const char *what)
{
    char *s = slurp(file);
    bool found = secret[0] && strstr(s, secret);
    free(s);
    ck_assert_msg(!found, "%s appears in %s", what, file);
}

START_TEST(audit_records_and_no_secrets)
{
    up();
    static const char alice_pw[] = "alice-Secret-pw-1234";
    static const char wrong_pw[] = "wrong-Secret-pw-5678";
    char body[256], alice_tok[100], k8s[128], rot_path[128];
    snprintf(body, sizeof(body), "{\"username\":\"alice\",\"password\":\"%s\",\"admin\":false}",
             alice_pw);
    ck_assert_int_eq(call("POST", "/v3/users", d.admin_token, body, NULL), 201);
    ck_assert_int_eq(dtest_login(&d, "alice", wrong_pw, alice_tok, sizeof(alice_tok)), 401);
    ck_assert_int_eq(dtest_login(&d, "alice", alice_pw, alice_tok, sizeof(alice_tok)), 201);
    char aud[16], aud_token[80];
    dtest_create_cluster(&d, "aud", aud, aud_token);
    json_t *rot;
    snprintf(rot_path, sizeof(rot_path), "/v3/clusters/%s/registrationtoken", aud);
    int st_rot = call("POST", rot_path, d.admin_token, NULL, &rot);
    ck_assert_int_lt(st_rot, 300);
    char rotated[100] = "";
    json_t *rt = json_object_get(json_object_get(rot, "registration"), "token");
    snprintf(rotated, sizeof(rotated), "%s", rt ? json_string_value(rt) : "");
    json_decref(rot);
    ck_assert_msg(rotated[0], "no token in the rotation answer");
    /* kube: a cluster without a link, one with, and a bad token. */
    snprintf(k8s, sizeof(k8s), "/k8s/clusters/%s/api/v1/namespaces", aud);
    ck_assert_int_eq(call("GET", k8s, d.admin_token, NULL, NULL), 503);
    char k8s_test[128];
    snprintf(k8s_test, sizeof(k8s_test), "/k8s/clusters/%s/version", d.cluster);
    int st_test = call("GET", k8s_test, d.admin_token, NULL, NULL);
    ck_assert_int_eq(call("GET", k8s, "drover_0000000000000000000000000000000000000000000000"
                                      "000000000000000000", NULL, NULL), 401);
    ck_assert_int_eq(call("DELETE", "/v3/tokens/current", alice_tok, NULL, NULL), 204);
    /* GETs of the API are not changes: not recorded. */
    ck_assert_int_eq(call("GET", "/v3/clusters", d.admin_token, NULL, NULL), 200);

    struct lines_wait w = { audit_path, 10, "\"path\":\"/v3/tokens/current\"" };
    ck_assert_msg(wait_until(enough_lines, &w, 10000), "audit has %zu lines",
                  count_lines(audit_path));
    json_t *all = read_audit(audit_path);
    ck_assert_ptr_nonnull(find(all, "api", "POST", "/v3/tokens", 201, "admin"));
    ck_assert_ptr_nonnull(find(all, "api", "POST", "/v3/tokens", 401, "alice"));
    ck_assert_ptr_nonnull(find(all, "api", "POST", "/v3/users", 201, "admin"));
    ck_assert_ptr_nonnull(find_in(all, "api", "POST", "/v3/clusters", 201, "admin", aud));
    ck_assert_ptr_nonnull(find_in(all, "api", "POST", rot_path, st_rot, "admin", aud));
    json_t *k = find(all, "kube", "GET", k8s, 503, "admin");
    ck_assert_msg(k, "no kube record for %s", k8s);
    ck_assert_str_eq(json_string_value(json_object_get(k, "cluster")), aud);
    ck_assert_ptr_nonnull(find(all, "kube", "GET", k8s_test, st_test, "admin"));
    json_t *anon = find(all, "kube", "GET", k8s, 401, NULL);
    ck_assert_ptr_nonnull(anon);
    ck_assert(json_is_null(json_object_get(anon, "user")));
    ck_assert_ptr_nonnull(find(all, "api", "DELETE", "/v3/tokens/current", 204, "alice"));
    size_t i;
    json_t *j;
    json_array_foreach(all, i, j)
        ck_assert_msg(strcmp(json_string_value(json_object_get(j, "method")), "GET") != 0 ||
                      strcmp(json_string_value(json_object_get(j, "kind")), "kube") == 0,
                      "an API read was recorded");
    json_decref(all);

    const char *files[] = { audit_path, d.server_log, d.agent_log };
    for (size_t f = 0; f < 3; f++) {
        assert_absent(files[f], alice_pw, "alice's password");
        assert_absent(files[f], wrong_pw, "a wrong password");
        assert_absent(files[f], alice_tok, "alice's token");
        assert_absent(files[f], d.admin_token, "the admin's token");
        assert_absent(files[f], d.token, "a registration token");
        assert_absent(files[f], aud_token, "a registration token");
        assert_absent(files[f], rotated, "a rotated registration token");
    }
    assert_absent(audit_path, d.admin_pw, "the bootstrap password");
    ck_assert_int_ge(dtest_metric(&d, "drover_audit_records_total"), 10);
    ck_assert_int_eq(dtest_metric(&d, "drover_audit_dropped_total"), 0);
}
END_TEST

START_TEST(audit_reopens_on_sighup)
{
    up();
    struct lines_wait w = { audit_path, 1, NULL };
    ck_assert(wait_until(enough_lines, &w, 10000));     /* the admin's login */
    char rotated[320];
    snprintf(rotated, sizeof(rotated), "%s.1", audit_path);
    ck_assert_int_eq(rename(audit_path, rotated), 0);
    proc_signal(&d.server, SIGHUP);
    ck_assert(wait_for_log(d.server_log, "audit-log: reopened", 10000));
    char id[16], tok[80];
    dtest_create_cluster(&d, "after-rotation", id, tok);
    ck_assert(wait_for_log(audit_path, id, 10000));
    ck_assert(!file_contains(rotated, id));
    /* Still a server, not a process killed by SIGHUP. */
    ck_assert_int_eq(call("GET", "/v3/clusters", d.admin_token, NULL, NULL), 200);
}
END_TEST

START_TEST(agent_refuses_changed_ca_on_reconnect)
{
    up();
    char old_sum[65];
    snprintf(old_sum, sizeof(old_sum), "%s", d.checksum);
    dtest_stop_server(&d);
    char cmd[600];
    snprintf(cmd, sizeof(cmd), "rm -f %s/data/*.crt %s/data/*.key", d.dir, d.dir);
    ck_assert_int_eq(system(cmd), 0);
    dtest_spawn_server(&d, server_args);    /* a new CA, the same clusters */
    ck_assert_str_ne(d.checksum, old_sum);
    ck_assert_msg(wait_for_log(d.agent_log, "verify failed", 20000) ||
                  file_contains(d.agent_log, "CA checksum"),
                  "the agent did not refuse the new CA (logs %s)", d.dir);
    /* It keeps refusing: several of its retries later, still no tunnel. */
    sleep(3);
    ck_assert_int_eq(dtest_metric(&d, TUNNELS), 0);
}
END_TEST

Suite *suite_integration_audit(void)
{
    Suite *s = suite_create("integration/audit");
    TCase *tc = tcase_create("audit");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, audit_records_and_no_secrets);
    tcase_add_test(tc, audit_reopens_on_sighup);
    tcase_add_test(tc, agent_refuses_changed_ca_on_reconnect);
    suite_add_tcase(s, tc);
    return s;
}
