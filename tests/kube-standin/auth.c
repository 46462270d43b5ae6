/*
 * auth: authentication and impersonation in the kube-standin test stand-in.
 *
 * A bearer token from --token names the user; service-account users get
 * their groups as the real token authenticator gives them. Impersonate-User,
 * Impersonate-Group, Impersonate-Uid and Impersonate-Extra-* are honoured
 * only when RBAC lets the authenticated user impersonate each of them, as
 * the real impersonation filter checks; the effective user then replaces the
 * authenticated one for everything after (authorization, audit).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/http1.h"
#include "tests/kube-standin/standin.h"

#define SA_PREFIX "system:serviceaccount:"

void kuser_clear(struct kuser *u)
{
    free(u->name);
    free(u->uid);
    json_decref(u->groups);
    json_decref(u->extra);
    memset(u, 0, sizeof(*u));
}

static bool has_group(const json_t *groups, const char *g)
{
    size_t i;
    json_t *v;
    json_array_foreach(groups, i, v)
        if (strcmp(json_string_value(v), g) == 0)
            return true;
    return false;
}

/* The groups the real authenticators add for a user name. */
static void implied_groups(const char *name, json_t *groups, bool sa_groups)
{
    if (sa_groups && strncmp(name, SA_PREFIX, strlen(SA_PREFIX)) == 0) {
        const char *ns = name + strlen(SA_PREFIX);
        const char *colon = strchr(ns, ':');
        char g[300];
        if (!has_group(groups, "system:serviceaccounts"))
            json_array_append_new(groups, json_string("system:serviceaccounts"));
        snprintf(g, sizeof(g), "system:serviceaccounts:%.*s",
                 (int)(colon ? colon - ns : (long)strlen(ns)), ns);
        if (!has_group(groups, g))
            json_array_append_new(groups, json_string(g));
    }
    if (strcmp(name, "system:anonymous") != 0 && !has_group(groups, "system:authenticated"))
        json_array_append_new(groups, json_string("system:authenticated"));
}

static const struct ks_token *find_token(struct ks *ks, const char *tok, size_t len)
{
    for (size_t i = 0; i < ks->o.ntokens; i++) {
        const char *t = ks->o.tokens[i].token;
        if (strlen(t) == len && memcmp(t, tok, len) == 0)
            return &ks->o.tokens[i];
    }
    return NULL;
}

static int unauthorized(struct kreq *k)
{
    ks_reply_status(k, 401, "Unauthorized", NULL, "Unauthorized");
    return -1;
}

/* Answers the real filter's 403 for one impersonation it refused. */
static int refuse(struct kreq *k, const char *resource, const char *group,
                  const char *ns, const char *name)
{
    json_t *d = json_pack("{s:s,s:s}", "name", name, "kind", resource);
    if (group[0])
        json_object_set_new(d, "group", json_string(group));
    char scope[300];
    if (ns)
        snprintf(scope, sizeof(scope), "in the namespace \"%s\"", ns);
    else
        snprintf(scope, sizeof(scope), "at the cluster scope");
    ks_reply_status(k, 403, "Forbidden", d,
                    "%s%s%s \"%s\" is forbidden: User \"%s\" cannot impersonate resource "
                    "\"%s\" in API group \"%s\" %s", resource, group[0] ? "." : "", group,
                    name, k->user.name, resource, group, scope);
    return -1;
}

static int check_user(struct kreq *k, const char *name)
{
    if (strncmp(name, SA_PREFIX, strlen(SA_PREFIX)) == 0) {
        char ns[256];
        const char *rest = name + strlen(SA_PREFIX), *colon = strchr(rest, ':');
        if (colon && (size_t)(colon - rest) < sizeof(ns)) {
            snprintf(ns, sizeof(ns), "%.*s", (int)(colon - rest), rest);
            if (!rbac_allowed(k->ks, &k->user, "impersonate", "", "serviceaccounts", "", ns,
                              colon + 1))
                return refuse(k, "serviceaccounts", "", ns, colon + 1);
            return 0;
        }
    }
    if (!rbac_allowed(k->ks, &k->user, "impersonate", "", "users", "", "", name))
        return refuse(k, "users", "", NULL, name);
    return 0;
}

static char *hval(const struct http_header *h)
{
    return strndup(h->value, h->value_len);
}

/* Applies the Impersonate-* headers, if any. 0, or -1 after answering. */
static int impersonate(struct kreq *k)
{
    const struct http_request *req = hs_request(k->r);
    char *user = NULL, *uid = NULL;
    json_t *groups = json_array(), *extra = json_object();
    int rc = -1;
    bool any = false;
    for (size_t i = 0; i < req->num_headers; i++) {
        const struct http_header *h = &req->headers[i];
        char name[128];
        snprintf(name, sizeof(name), "%.*s", (int)h->name_len, h->name);
        if (strncasecmp(name, "impersonate-", 12) != 0)
            continue;
        any = true;
        char *v = hval(h);
        if (!v)
            goto out;
        if (strcasecmp(name, "impersonate-user") == 0) {
            free(user);
            user = v;
        } else if (strcasecmp(name, "impersonate-uid") == 0) {
            free(uid);
            uid = v;
        } else if (strcasecmp(name, "impersonate-group") == 0) {
            json_array_append_new(groups, json_string(v));
            free(v);
        } else if (strncasecmp(name, "impersonate-extra-", 18) == 0) {
            char key[128];
            ssize_t n = http1_pct_decode(name + 18, strlen(name + 18), key, sizeof(key), false);
            for (ssize_t j = 0; j < n; j++)
                key[j] = (char)(key[j] >= 'A' && key[j] <= 'Z' ? key[j] + 32 : key[j]);
            if (n > 0) {
                json_t *arr = json_object_get(extra, key);
                if (!arr) {
                    arr = json_array();
                    json_object_set_new(extra, key, arr);
                }
                json_array_append_new(arr, json_string(v));
            }
            free(v);
        } else {
            free(v);
        }
    }
    if (!any) {
        rc = 0;
        goto out;
    }
    if (!user) {
        ks_reply_status(k, 500, "InternalError", NULL, "Internal error occurred: "
                        "requested impersonation of groups, uid or extras without "
                        "impersonating a user");
        goto out;
    }
    if (check_user(k, user) < 0)
        goto out;
    size_t i;
    json_t *g;
    json_array_foreach(groups, i, g) {
        const char *gn = json_string_value(g);
        if (!rbac_allowed(k->ks, &k->user, "impersonate", "", "groups", "", "", gn)) {
            refuse(k, "groups", "", NULL, gn);
            goto out;
        }
    }
    if (uid && !rbac_allowed(k->ks, &k->user, "impersonate", "authentication.k8s.io", "uids",
                             "", "", uid)) {
        refuse(k, "uids", "authentication.k8s.io", NULL, uid);
        goto out;
    }
    const char *ek;
    json_t *ev;
    json_object_foreach(extra, ek, ev) {
        char res[160];
        snprintf(res, sizeof(res), "userextras/%s", ek);
        json_array_foreach(ev, i, g) {
            if (!rbac_allowed(k->ks, &k->user, "impersonate", "authentication.k8s.io",
                              "userextras", ek, "", json_string_value(g))) {
                refuse(k, res, "authentication.k8s.io", NULL, json_string_value(g));
                goto out;
            }
        }
    }
    implied_groups(user, groups, json_array_size(groups) == 0);
    k->impersonator = k->user.name;
    k->user.name = user;
    user = NULL;
    json_decref(k->user.groups);
    k->user.groups = groups;
    groups = NULL;
    k->user.uid = uid;
    uid = NULL;
    if (json_object_size(extra)) {
        k->user.extra = extra;
        extra = NULL;
    }
    rc = 0;
out:
    free(user);
    free(uid);
    json_decref(groups);
    json_decref(extra);
    return rc;
}

int auth_request(struct kreq *k)
{
    const struct http_header *h = hs_header(k->r, "authorization");
    if (!h || h->value_len < 8 || strncasecmp(h->value, "bearer ", 7) != 0)
        return unauthorized(k);
    const char *tok = h->value + 7;
    size_t len = h->value_len - 7;
    while (len && *tok == ' ') {
        tok++;
        len--;
    }
    const struct ks_token *t = find_token(k->ks, tok, len);
    if (!t)
        return unauthorized(k);
    k->token_name = t->name;
    k->user.name = strdup(t->name);
    k->user.groups = json_array();
    if (!k->user.name || !k->user.groups)
        return unauthorized(k);
    implied_groups(t->name, k->user.groups, true);
    return impersonate(k);
}
