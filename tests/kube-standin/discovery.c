/*
 * discovery: the kube-standin test stand-in's discovery documents (/version,
 * /api, /apis, /api/v1, /apis/GROUP[/VERSION]) and health endpoints, built
 * from the resource table. Aggregated discovery (the apidiscovery.k8s.io
 * media types) is not offered: the answer is always plain application/json,
 * which real clients take as "legacy discovery" and then fetch each group
 * version, exactly as against an older API server.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/kube-standin/standin.h"

static json_t *version_doc(struct ks *ks)
{
    const char *v = ks->o.version;
    char major[8] = "1", minor[8] = "31";
    unsigned ma, mi;
    if (sscanf(v, "v%u.%u", &ma, &mi) == 2) {
        snprintf(major, sizeof(major), "%u", ma);
        snprintf(minor, sizeof(minor), "%u", mi);
    }
    return json_pack("{s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:s}", "major", major, "minor", minor,
                     "gitVersion", v, "gitCommit", "0000000000000000000000000000000000000000",
                     "gitTreeState", "clean", "buildDate", "2024-08-13T07:28:49Z",
                     "goVersion", "go1.22.5", "compiler", "gc", "platform", "linux/amd64");
}

static const char *sub_kind(const struct kres *r, const char *sub)
{
    if (strcmp(sub, "exec") == 0)
        return "PodExecOptions";
    if (strcmp(sub, "portforward") == 0)
        return "PodPortForwardOptions";
    if (strcmp(sub, "scale") == 0)
        return "Scale";
    return r->kind;
}

static json_t *resource_entry(const struct kres *r)
{
    json_t *e = json_pack("{s:s,s:s,s:b,s:s}", "name", r->name, "singularName", r->singular,
                          "namespaced", r->namespaced, "kind", r->kind);
    if (r->create_only) {
        json_object_set_new(e, "verbs", json_pack("[s]", "create"));
        return e;
    }
    json_object_set_new(e, "verbs", json_pack("[ssssssss]", "create", "delete",
                                              "deletecollection", "get", "list", "patch",
                                              "update", "watch"));
    if (r->short_names[0]) {
        json_t *sn = json_array();
        for (size_t i = 0; i < 3 && r->short_names[i]; i++)
            json_array_append_new(sn, json_string(r->short_names[i]));
        json_object_set_new(e, "shortNames", sn);
    }
    if (r->in_all)
        json_object_set_new(e, "categories", json_pack("[s]", "all"));
    return e;
}

static json_t *resource_list(const char *group, const char *version)
{
    char gv[96];
    snprintf(gv, sizeof(gv), "%s%s%s", group, group[0] ? "/" : "", version);
    json_t *list = json_array();
    for (size_t i = 0; i < kres_count; i++) {
        const struct kres *r = &kres_table[i];
        if (strcmp(r->group, group) != 0 || strcmp(r->version, version) != 0)
            continue;
        json_array_append_new(list, resource_entry(r));
        for (size_t s = 0; s < 5 && r->subresources[s]; s++) {
            char name[96];
            snprintf(name, sizeof(name), "%s/%s", r->name, r->subresources[s]);
            json_t *e = json_pack("{s:s,s:s,s:b,s:s,s:o}", "name", name, "singularName", "",
                                  "namespaced", r->namespaced, "kind",
                                  sub_kind(r, r->subresources[s]), "verbs",
                                  kres_sub_verbs(r->subresources[s]));
            if (strcmp(r->subresources[s], "scale") == 0) {
                json_object_set_new(e, "group", json_string("autoscaling"));
                json_object_set_new(e, "version", json_string("v1"));
            }
            json_array_append_new(list, e);
        }
    }
    if (json_array_size(list) == 0) {
        json_decref(list);
        return NULL;
    }
    return json_pack("{s:s,s:s,s:s,s:o}", "kind", "APIResourceList", "apiVersion", "v1",
                     "groupVersion", gv, "resources", list);
}

static json_t *group_entry(const char *group)
{
    const char *version = NULL;
    for (size_t i = 0; i < kres_count && !version; i++)
        if (strcmp(kres_table[i].group, group) == 0)
            version = kres_table[i].version;
    if (!version)
        return NULL;
    char gv[96];
    snprintf(gv, sizeof(gv), "%s/%s", group, version);
    return json_pack("{s:s,s:[{s:s,s:s}],s:{s:s,s:s}}", "name", group, "versions",
                     "groupVersion", gv, "version", version, "preferredVersion",
                     "groupVersion", gv, "version", version);
}

static json_t *group_list(void)
{
    json_t *groups = json_array();
    for (size_t i = 0; i < kres_count; i++) {
        const char *g = kres_table[i].group;
        bool seen = !g[0];
        for (size_t j = 0; j < i && !seen; j++)
            seen = strcmp(kres_table[j].group, g) == 0;
        if (!seen)
            json_array_append_new(groups, group_entry(g));
    }
    return json_pack("{s:s,s:s,s:o}", "kind", "APIGroupList", "apiVersion", "v1",
                     "groups", groups);
}

static json_t *api_versions(struct ks *ks)
{
    char addr[64];
    snprintf(addr, sizeof(addr), "127.0.0.1:%d", ks->port);
    return json_pack("{s:s,s:[s],s:[{s:s,s:s}]}", "kind", "APIVersions", "versions", "v1",
                     "serverAddressByClientCIDRs", "clientCIDR", "0.0.0.0/0",
                     "serverAddress", addr);
}

bool disc_handle(struct kreq *k)
{
    const char *p = k->path;
    if (strcmp(k->method, "GET") != 0)
        return false;
    if (strcmp(p, "/healthz") == 0 || strcmp(p, "/livez") == 0 || strcmp(p, "/readyz") == 0) {
        ks_reply_text(k, 200, "ok");
        return true;
    }
    if (strcmp(p, "/version") == 0 || strcmp(p, "/version/") == 0) {
        ks_reply_json(k, 200, version_doc(k->ks));
        return true;
    }
    if (strcmp(p, "/api") == 0 || strcmp(p, "/api/") == 0) {
        ks_reply_json(k, 200, api_versions(k->ks));
        return true;
    }
    if (strcmp(p, "/apis") == 0 || strcmp(p, "/apis/") == 0) {
        ks_reply_json(k, 200, group_list());
        return true;
    }
    char group[64], version[24];
    json_t *doc = NULL;
    if (sscanf(p, "/api/%23[^/]", version) == 1 && strchr(p + 5, '/') == NULL) {
        doc = resource_list("", version);
    } else if (sscanf(p, "/apis/%63[^/]/%23[^/]", group, version) == 2) {
        doc = resource_list(group, version);
    } else if (sscanf(p, "/apis/%63[^/]", group) == 1 && strchr(p + 6, '/') == NULL) {
        doc = group_entry(group);
        if (doc) {
            json_object_set_new(doc, "kind", json_string("APIGroup"));
            json_object_set_new(doc, "apiVersion", json_string("v1"));
        }
    }
    if (!doc)
        return false;
    ks_reply_json(k, 200, doc);
    return true;
}
