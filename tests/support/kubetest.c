/*
 * kubetest: kubectl, kubeconfigs, members and cluster state for the
 * integration tests of a cluster behind drover. See kubetest.h.
 */
#include "tests/support/kubetest.h"

#include <check.h>
#include <stdio.h>
#include <string.h>

int kubetest_kubectl(const char *kc, const char *args, char *out, size_t cap)
{
    char cmd[1200];
    snprintf(cmd, sizeof(cmd), "KUBECONFIG=%s timeout 30 kubectl %s 2>&1", kc, args);
    return run_capture(cmd, out, cap);
}

bool kubetest_can_all(void *ud)
{
    static char out[4096];
    return kubetest_kubectl(ud, "auth can-i '*' '*'", out, sizeof(out)) == 0 &&
           strncmp(out, "yes", 3) == 0;
}

void kubetest_file(struct dtest *d, const char *name, const char *text, char *path,
                   size_t cap)
{
    snprintf(path, cap, "%s/%s", d->dir, name);
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fputs(text, f);
    fclose(f);
}

void kubetest_kubeconfig(struct dtest *d, const char *token, const char *path)
{
    char url[200];
    struct httpc_resp r;
    snprintf(url, sizeof(url), "/v3/clusters/%s/kubeconfig", d->cluster);
    ck_assert_int_eq(dtest_call(d, "GET", url, token, NULL, &r), 200);
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fwrite(r.body, 1, r.len, f);
    fclose(f);
    httpc_free(&r);
}

void kubetest_user(struct dtest *d, const char *name, const char *role, char *token,
                   size_t cap)
{
    char body[300], url[200], pw[100];
    struct httpc_resp r;
    snprintf(pw, sizeof(pw), "pw-%s-0123456789", name);
    snprintf(body, sizeof(body), "{\"username\":\"%s\",\"password\":\"%s\",\"admin\":false}",
             name, pw);
    ck_assert_int_eq(dtest_call(d, "POST", "/v3/users", d->admin_token, body, &r), 201);
    httpc_free(&r);
    if (role) {
        snprintf(url, sizeof(url), "/v3/clusters/%s/members", d->cluster);
        snprintf(body, sizeof(body), "{\"user\":\"%s\",\"role\":\"%s\"}", name, role);
        int st = dtest_call(d, "POST", url, d->admin_token, body, &r);
        ck_assert_msg(st == 201 || st == 200, "member add: %d", st);
        httpc_free(&r);
    }
    if (token)
        ck_assert_int_eq(dtest_login(d, name, pw, token, cap), 201);
}

json_t *kubetest_get(struct dtest *d, const char *path)
{
    struct httpc_resp r;
    json_t *j = NULL;
    if (dtest_call(d, "GET", path, d->admin_token, NULL, &r) == 200)
        j = httpc_json(&r);
    httpc_free(&r);
    return j;
}

struct state_want {
    struct dtest *d;
    const char *state;
};

static bool state_is(void *ud)
{
    struct state_want *w = ud;
    char path[200];
    snprintf(path, sizeof(path), "/v3/clusters/%s", w->d->cluster);
    json_t *c = kubetest_get(w->d, path);
    const char *st = json_string_value(json_object_get(c, "state"));
    bool ok = st && strcmp(st, w->state) == 0;
    json_decref(c);
    return ok;
}

bool kubetest_wait_state(struct dtest *d, const char *state, int timeout_ms)
{
    struct state_want w = { d, state };
    return wait_until(state_is, &w, timeout_ms);
}
