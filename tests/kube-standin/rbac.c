/*
 * rbac: role-based authorization in the kube-standin test stand-in, with the
 * real API's semantics for what tests exercise: ClusterRoleBindings grant
 * everywhere, RoleBindings in their namespace (to a Role there or to a
 * ClusterRole); subjects are users, groups or service accounts; rules match
 * on apiGroups, resources (with "*", "res/sub" and "*\/sub"), verbs and
 * optional resourceNames. The built-in roles (cluster-admin, admin, edit,
 * view) are ClusterRole objects like any other, seeded at start. Not
 * modelled: aggregation and the escalation check on writing roles.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/kube-standin/standin.h"
#include "tests/kube-standin/store.h"

#define SA_PREFIX "system:serviceaccount:"

static const struct kres *res_named(const char *name)
{
    return kres_find("rbac.authorization.k8s.io", "v1", name);
}

static bool list_has(const json_t *list, const char *v, bool star)
{
    size_t i;
    json_t *e;
    json_array_foreach(list, i, e) {
        const char *s = json_string_value(e);
        if (s && ((star && strcmp(s, "*") == 0) || strcmp(s, v) == 0))
            return true;
    }
    return false;
}

static bool rule_allows(const json_t *rule, const char *verb, const char *group,
                        const char *resource, const char *sub, const char *name)
{
    if (!list_has(json_object_get(rule, "verbs"), verb, true) ||
        !list_has(json_object_get(rule, "apiGroups"), group, true))
        return false;
    char combined[200], star_sub[64];
    snprintf(combined, sizeof(combined), "%s%s%s", resource, sub[0] ? "/" : "", sub);
    snprintf(star_sub, sizeof(star_sub), "*/%s", sub);
    const json_t *res = json_object_get(rule, "resources");
    if (!list_has(res, combined, true) && !(sub[0] && list_has(res, star_sub, false)))
        return false;
    const json_t *names = json_object_get(rule, "resourceNames");
    if (json_array_size(names) == 0)
        return true;
    return name[0] && list_has(names, name, false);
}

static bool subject_matches(const json_t *s, const struct kuser *u, const char *binding_ns)
{
    const char *kind = obj_str(s, "kind"), *name = obj_str(s, "name");
    if (!kind || !name)
        return false;
    if (strcmp(kind, "User") == 0)
        return strcmp(name, u->name) == 0;
    if (strcmp(kind, "Group") == 0)
        return list_has(u->groups, name, false);
    if (strcmp(kind, "ServiceAccount") == 0) {
        const char *ns = obj_str(s, "namespace");
        char full[600];
        snprintf(full, sizeof(full), SA_PREFIX "%s:%s", ns && ns[0] ? ns : binding_ns, name);
        return strcmp(full, u->name) == 0;
    }
    return false;
}

static bool binding_applies(const json_t *b, const struct kuser *u)
{
    size_t i;
    json_t *s;
    json_array_foreach(json_object_get(b, "subjects"), i, s)
        if (subject_matches(s, u, obj_ns(b)))
            return true;
    return false;
}

static bool role_allows(const json_t *role, const char *verb, const char *group,
                        const char *resource, const char *sub, const char *name)
{
    size_t i;
    json_t *r;
    json_array_foreach(json_object_get(role, "rules"), i, r)
        if (rule_allows(r, verb, group, resource, sub, name))
            return true;
    return false;
}

/* Whether any binding in bindings gives u the permission. */
static bool bindings_allow(struct ks *ks, json_t *bindings, const struct kuser *u,
                           const char *verb, const char *group, const char *resource,
                           const char *sub, const char *name)
{
    size_t i;
    json_t *b;
    json_array_foreach(bindings, i, b) {
        if (!binding_applies(b, u))
            continue;
        const char *kind = obj_str(b, "roleRef.kind"), *rn = obj_str(b, "roleRef.name");
        if (!kind || !rn)
            continue;
        const json_t *role = NULL;
        if (strcmp(kind, "ClusterRole") == 0)
            role = store_get(ks->store, res_named("clusterroles"), NULL, rn);
        else if (strcmp(kind, "Role") == 0 && obj_ns(b)[0])
            role = store_get(ks->store, res_named("roles"), obj_ns(b), rn);
        if (role && role_allows(role, verb, group, resource, sub, name))
            return true;
    }
    return false;
}

bool rbac_allowed(struct ks *ks, const struct kuser *u, const char *verb,
                  const char *group, const char *resource, const char *sub,
                  const char *ns, const char *name)
{
    json_t *crbs = store_list(ks->store, res_named("clusterrolebindings"), NULL);
    bool ok = bindings_allow(ks, crbs, u, verb, group, resource, sub, name);
    json_decref(crbs);
    if (ok || !ns || !ns[0])
        return ok;
    json_t *rbs = store_list(ks->store, res_named("rolebindings"), ns);
    ok = bindings_allow(ks, rbs, u, verb, group, resource, sub, name);
    json_decref(rbs);
    return ok;
}

bool rbac_allows_attrs(struct ks *ks, const struct kuser *u, const struct kattrs *a)
{
    return rbac_allowed(ks, u, a->verb, a->group, a->resname, a->sub, a->ns, a->name);
}

void rbac_forbid(struct kreq *k)
{
    const struct kattrs *a = &k->a;
    char res[128], scope[320], what[600];
    snprintf(res, sizeof(res), "%s%s%s", a->resname, a->sub[0] ? "/" : "", a->sub);
    if (a->ns[0])
        snprintf(scope, sizeof(scope), "in the namespace \"%s\"", a->ns);
    else
        snprintf(scope, sizeof(scope), "at the cluster scope");
    if (a->name[0])
        snprintf(what, sizeof(what), "%s%s%s \"%s\"", a->resname, a->group[0] ? "." : "",
                 a->group, a->name);
    else
        snprintf(what, sizeof(what), "%s%s%s", a->resname, a->group[0] ? "." : "", a->group);
    json_t *d = json_pack("{s:s}", "kind", a->resname);
    if (a->name[0])
        json_object_set_new(d, "name", json_string(a->name));
    if (a->group[0])
        json_object_set_new(d, "group", json_string(a->group));
    ks_reply_status(k, 403, "Forbidden", d,
                    "%s is forbidden: User \"%s\" cannot %s resource \"%s\" in API group "
                    "\"%s\" %s", what, k->user.name, a->verb, res, a->group, scope);
}

/* ---- the built-in roles ---- */

static const char *const core_read[] = {
    "pods", "pods/log", "pods/status", "events", "configmaps", "services",
    "services/status", "serviceaccounts", "endpoints", "persistentvolumeclaims",
    "replicationcontrollers", "namespaces", "namespaces/status", "resourcequotas",
    "limitranges", NULL };
static const char *const core_write[] = {
    "pods", "pods/exec", "pods/portforward", "pods/attach", "pods/log", "events",
    "configmaps", "secrets", "services", "serviceaccounts", "endpoints",
    "persistentvolumeclaims", "replicationcontrollers", NULL };
static const char *const apps_res[] = {
    "deployments", "deployments/scale", "deployments/status", "daemonsets",
    "daemonsets/status", "replicasets", "statefulsets", NULL };

static json_t *strings(const char *const *v)
{
    json_t *a = json_array();
    for (; *v; v++)
        json_array_append_new(a, json_string(*v));
    return a;
}

static json_t *rule(const char *group, json_t *resources, json_t *verbs)
{
    return json_pack("{s:[s],s:o,s:o}", "apiGroups", group, "resources", resources,
                     "verbs", verbs);
}

static json_t *read_verbs(void)
{
    return json_pack("[sss]", "get", "list", "watch");
}

static json_t *all_verbs(void)
{
    return json_pack("[ssssssss]", "create", "delete", "deletecollection", "get", "list",
                     "patch", "update", "watch");
}

static json_t *role_rules(const char *name)
{
    json_t *rules = json_array();
    if (strcmp(name, "cluster-admin") == 0) {
        json_array_append_new(rules, json_pack("{s:[s],s:[s],s:[s]}", "apiGroups", "*",
                                               "resources", "*", "verbs", "*"));
        json_array_append_new(rules, json_pack("{s:[s],s:[s]}", "nonResourceURLs", "*",
                                               "verbs", "*"));
        return rules;
    }
    bool view = strcmp(name, "view") == 0;
    json_array_append_new(rules, rule("", strings(core_read), read_verbs()));
    json_array_append_new(rules, rule("apps", strings(apps_res),
                                      view ? read_verbs() : all_verbs()));
    if (view)
        return rules;
    json_array_append_new(rules, rule("", strings(core_write), all_verbs()));
    json_array_append_new(rules, rule("", json_pack("[s]", "serviceaccounts"),
                                      json_pack("[s]", "impersonate")));
    if (strcmp(name, "admin") == 0)
        json_array_append_new(rules, rule("rbac.authorization.k8s.io",
                                          json_pack("[ss]", "roles", "rolebindings"),
                                          all_verbs()));
    return rules;
}

static void put(struct ks *ks, const char *resname, json_t *obj)
{
    const struct kres *res = res_named(resname);
    obj_prepare_create(ks, res, obj);
    store_create(ks->store, res, obj);
}

/* A ClusterRoleBinding of a ClusterRole to a group. */
static json_t *binding(const char *name, const char *role, const char *group)
{
    return json_pack("{s:{s:s},s:{s:s,s:s,s:s},s:[{s:s,s:s,s:s}]}", "metadata", "name", name,
                     "roleRef", "apiGroup", "rbac.authorization.k8s.io", "kind", "ClusterRole",
                     "name", role, "subjects", "apiGroup", "rbac.authorization.k8s.io", "kind",
                     "Group", "name", group);
}

void rbac_seed(struct ks *ks)
{
    static const char *const roles[] = { "cluster-admin", "admin", "edit", "view" };
    for (size_t i = 0; i < 4; i++)
        put(ks, "clusterroles",
            json_pack("{s:{s:s,s:{s:s},s:{s:s}},s:o}", "metadata", "name", roles[i],
                      "labels", "kubernetes.io/bootstrapping", "rbac-defaults",
                      "annotations", "rbac.authorization.kubernetes.io/autoupdate", "true",
                      "rules", role_rules(roles[i])));
    /* What every authenticated user may do about itself (kubectl auth can-i). */
    put(ks, "clusterroles",
        json_pack("{s:{s:s,s:{s:s}},s:[{s:[s],s:[ss],s:[s]}]}", "metadata", "name",
                  "system:basic-user", "labels", "kubernetes.io/bootstrapping", "rbac-defaults",
                  "rules", "apiGroups", "authorization.k8s.io", "resources",
                  "selfsubjectaccessreviews", "selfsubjectrulesreviews", "verbs", "create"));
    put(ks, "clusterrolebindings", binding("cluster-admin", "cluster-admin",
                                           "system:masters"));
    put(ks, "clusterrolebindings", binding("system:basic-user", "system:basic-user",
                                           "system:authenticated"));
    for (size_t i = 0; i < ks->o.nadmins; i++) {
        const char *u = ks->o.admins[i];
        char name[64], ns[256];
        json_t *subject;
        snprintf(name, sizeof(name), "kube-standin-admin-%zu", i + 1);
        bool is_sa = strncmp(u, SA_PREFIX, strlen(SA_PREFIX)) == 0;
        const char *rest = is_sa ? u + strlen(SA_PREFIX) : u, *colon = strchr(rest, ':');
        if (is_sa && colon && (size_t)(colon - rest) < sizeof(ns)) {
            snprintf(ns, sizeof(ns), "%.*s", (int)(colon - rest), rest);
            subject = json_pack("{s:s,s:s,s:s}", "kind", "ServiceAccount", "name", colon + 1,
                                "namespace", ns);
        } else {
            subject = json_pack("{s:s,s:s,s:s}", "apiGroup", "rbac.authorization.k8s.io",
                                "kind", "User", "name", u);
        }
        put(ks, "clusterrolebindings",
            json_pack("{s:{s:s},s:{s:s,s:s,s:s},s:[o]}", "metadata", "name", name, "roleRef",
                      "apiGroup", "rbac.authorization.k8s.io", "kind", "ClusterRole", "name",
                      "cluster-admin", "subjects", subject));
    }
}
