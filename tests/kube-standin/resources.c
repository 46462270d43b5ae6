/*
 * resources: the table of resources the kube-standin test stand-in serves.
 * Discovery, routing, RBAC and printing all read it, so adding a resource
 * here is what makes kubectl see it.
 */
#include <stdio.h>
#include <string.h>

#include "tests/kube-standin/standin.h"

#define RBAC "rbac.authorization.k8s.io"

const struct kres kres_table[] = {
    { "namespaces", "namespace", "Namespace", "", "v1", false, { "ns" }, false,
      { "status", "finalize" }, false, KP_NAMESPACE },
    { "nodes", "node", "Node", "", "v1", false, { "no" }, false, { "status" }, false,
      KP_NODE },
    { "pods", "pod", "Pod", "", "v1", true, { "po" }, true,
      { "log", "exec", "portforward", "status" }, false, KP_POD },
    { "events", "event", "Event", "", "v1", true, { "ev" }, false, { 0 }, false,
      KP_EVENT },
    { "configmaps", "configmap", "ConfigMap", "", "v1", true, { "cm" }, false, { 0 },
      false, KP_CONFIGMAP },
    { "services", "service", "Service", "", "v1", true, { "svc" }, true, { "status" },
      false, KP_SERVICE },
    { "serviceaccounts", "serviceaccount", "ServiceAccount", "", "v1", true, { "sa" },
      false, { 0 }, false, KP_SERVICEACCOUNT },
    { "secrets", "secret", "Secret", "", "v1", true, { 0 }, false, { 0 }, false,
      KP_SECRET },
    { "deployments", "deployment", "Deployment", "apps", "v1", true, { "deploy" }, true,
      { "status", "scale" }, false, KP_DEPLOYMENT },
    { "daemonsets", "daemonset", "DaemonSet", "apps", "v1", true, { "ds" }, true,
      { "status" }, false, KP_DAEMONSET },
    { "clusterroles", "clusterrole", "ClusterRole", RBAC, "v1", false, { 0 }, false,
      { 0 }, false, KP_ROLE },
    { "clusterrolebindings", "clusterrolebinding", "ClusterRoleBinding", RBAC, "v1",
      false, { 0 }, false, { 0 }, false, KP_CLUSTERBINDING },
    { "roles", "role", "Role", RBAC, "v1", true, { 0 }, false, { 0 }, false, KP_ROLE },
    { "rolebindings", "rolebinding", "RoleBinding", RBAC, "v1", true, { 0 }, false,
      { 0 }, false, KP_BINDING },
    /* kubectl auth can-i asks through this one. */
    { "selfsubjectaccessreviews", "selfsubjectaccessreview", "SelfSubjectAccessReview",
      "authorization.k8s.io", "v1", false, { 0 }, false, { 0 }, true, KP_DEFAULT },
};
const size_t kres_count = sizeof(kres_table) / sizeof(kres_table[0]);

const struct kres *kres_find(const char *group, const char *version, const char *name)
{
    for (size_t i = 0; i < kres_count; i++) {
        const struct kres *r = &kres_table[i];
        if (strcmp(r->group, group) == 0 && strcmp(r->version, version) == 0 &&
            strcmp(r->name, name) == 0)
            return r;
    }
    return NULL;
}

const struct kres *kres_by_kind(const char *api_version, const char *kind)
{
    char av[96];
    for (size_t i = 0; i < kres_count; i++) {
        kres_api_version(&kres_table[i], av, sizeof(av));
        if (strcmp(av, api_version) == 0 && strcmp(kres_table[i].kind, kind) == 0)
            return &kres_table[i];
    }
    return NULL;
}

void kres_api_version(const struct kres *r, char *out, size_t cap)
{
    if (r->group[0])
        snprintf(out, cap, "%s/%s", r->group, r->version);
    else
        snprintf(out, cap, "%s", r->version);
}

bool kres_sub_known(const struct kres *r, const char *sub)
{
    for (size_t i = 0; i < 5 && r->subresources[i]; i++)
        if (strcmp(r->subresources[i], sub) == 0)
            return true;
    return false;
}

json_t *kres_sub_verbs(const char *sub)
{
    /* As the real discovery documents list them. */
    if (strcmp(sub, "log") == 0)
        return json_pack("[s]", "get");
    if (strcmp(sub, "exec") == 0 || strcmp(sub, "portforward") == 0)
        return json_pack("[ss]", "create", "get");
    if (strcmp(sub, "finalize") == 0)
        return json_pack("[s]", "update");
    return json_pack("[sss]", "get", "patch", "update");
}
