/*
 * table: server-side printing in the kube-standin test stand-in. kubectl get
 * asks for meta.k8s.io/v1 Tables and prints their cells as they come, so the
 * columns here are the real API's for each kind (pods: READY, STATUS,
 * RESTARTS, AGE; nodes: STATUS, ROLES, AGE, VERSION; ...), with ages in the
 * real short form ("5m", "2d3h").
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tests/kube-standin/standin.h"

struct col {
    const char *name, *type, *format;
    int priority;
};

#define END_COLS { NULL, NULL, NULL, 0 }

static const struct col cols_default[] = {
    { "Name", "string", "name", 0 }, { "Created At", "date", "", 0 }, END_COLS };
static const struct col cols_pod[] = {
    { "Name", "string", "name", 0 }, { "Ready", "string", "", 0 },
    { "Status", "string", "", 0 }, { "Restarts", "string", "", 0 },
    { "Age", "string", "", 0 }, { "IP", "string", "", 1 }, { "Node", "string", "", 1 },
    { "Nominated Node", "string", "", 1 }, { "Readiness Gates", "string", "", 1 },
    END_COLS };
static const struct col cols_node[] = {
    { "Name", "string", "name", 0 }, { "Status", "string", "", 0 },
    { "Roles", "string", "", 0 }, { "Age", "string", "", 0 },
    { "Version", "string", "", 0 }, { "Internal-IP", "string", "", 1 },
    { "External-IP", "string", "", 1 }, { "OS-Image", "string", "", 1 },
    { "Kernel-Version", "string", "", 1 }, { "Container-Runtime", "string", "", 1 },
    END_COLS };
static const struct col cols_namespace[] = {
    { "Name", "string", "name", 0 }, { "Status", "string", "", 0 },
    { "Age", "string", "", 0 }, END_COLS };
static const struct col cols_deployment[] = {
    { "Name", "string", "name", 0 }, { "Ready", "string", "", 0 },
    { "Up-to-date", "integer", "", 0 }, { "Available", "integer", "", 0 },
    { "Age", "string", "", 0 }, { "Containers", "string", "", 1 },
    { "Images", "string", "", 1 }, { "Selector", "string", "", 1 }, END_COLS };
static const struct col cols_daemonset[] = {
    { "Name", "string", "name", 0 }, { "Desired", "integer", "", 0 },
    { "Current", "integer", "", 0 }, { "Ready", "integer", "", 0 },
    { "Up-to-date", "integer", "", 0 }, { "Available", "integer", "", 0 },
    { "Node Selector", "string", "", 0 }, { "Age", "string", "", 0 }, END_COLS };
static const struct col cols_event[] = {
    { "Last Seen", "string", "", 0 }, { "Type", "string", "", 0 },
    { "Reason", "string", "", 0 }, { "Object", "string", "", 0 },
    { "Message", "string", "", 0 }, { "Count", "integer", "", 1 },
    { "Name", "string", "name", 1 }, END_COLS };
static const struct col cols_service[] = {
    { "Name", "string", "name", 0 }, { "Type", "string", "", 0 },
    { "Cluster-IP", "string", "", 0 }, { "External-IP", "string", "", 0 },
    { "Port(s)", "string", "", 0 }, { "Age", "string", "", 0 },
    { "Selector", "string", "", 1 }, END_COLS };
static const struct col cols_configmap[] = {
    { "Name", "string", "name", 0 }, { "Data", "integer", "", 0 },
    { "Age", "string", "", 0 }, END_COLS };
static const struct col cols_secret[] = {
    { "Name", "string", "name", 0 }, { "Type", "string", "", 0 },
    { "Data", "integer", "", 0 }, { "Age", "string", "", 0 }, END_COLS };
static const struct col cols_serviceaccount[] = {
    { "Name", "string", "name", 0 }, { "Secrets", "integer", "", 0 },
    { "Age", "string", "", 0 }, END_COLS };
static const struct col cols_binding[] = {
    { "Name", "string", "name", 0 }, { "Role", "string", "", 0 },
    { "Age", "string", "", 0 }, { "Users", "string", "", 1 },
    { "Groups", "string", "", 1 }, { "ServiceAccounts", "string", "", 1 }, END_COLS };

static const struct col *columns(enum kprint p)
{
    switch (p) {
    case KP_POD: return cols_pod;
    case KP_NODE: return cols_node;
    case KP_NAMESPACE: return cols_namespace;
    case KP_DEPLOYMENT: return cols_deployment;
    case KP_DAEMONSET: return cols_daemonset;
    case KP_EVENT: return cols_event;
    case KP_SERVICE: return cols_service;
    case KP_CONFIGMAP: return cols_configmap;
    case KP_SECRET: return cols_secret;
    case KP_SERVICEACCOUNT: return cols_serviceaccount;
    case KP_BINDING:
    case KP_CLUSTERBINDING: return cols_binding;
    default: return cols_default;
    }
}

/* The real short duration form: 45s, 5m10s, 3h, 2d4h, 400d, 3y12d. */
static void human_age(int64_t secs, char *out, size_t cap)
{
    if (secs < 0)
        secs = 0;
    int64_t m = secs / 60, h = secs / 3600, d = h / 24, y = d / 365;
    if (secs < 120)
        snprintf(out, cap, "%llds", (long long)secs);
    else if (m < 10 && secs % 60)
        snprintf(out, cap, "%lldm%llds", (long long)m, (long long)(secs % 60));
    else if (m < 180)
        snprintf(out, cap, "%lldm", (long long)m);
    else if (h < 8 && m % 60)
        snprintf(out, cap, "%lldh%lldm", (long long)h, (long long)(m % 60));
    else if (h < 48)
        snprintf(out, cap, "%lldh", (long long)h);
    else if (h < 192 && h % 24)
        snprintf(out, cap, "%lldd%lldh", (long long)d, (long long)(h % 24));
    else if (d < 730)
        snprintf(out, cap, "%lldd", (long long)d);
    else if (y < 8 && d % 365)
        snprintf(out, cap, "%lldy%lldd", (long long)y, (long long)(d % 365));
    else
        snprintf(out, cap, "%lldy", (long long)y);
}

static json_t *age_of(const char *ts)
{
    char buf[32];
    int64_t t = ks_parse_time(ts);
    if (!t)
        return json_string("<unknown>");
    human_age((int64_t)time(NULL) - t, buf, sizeof(buf));
    return json_string(buf);
}

static json_t *created_age(const json_t *o)
{
    return age_of(obj_str(o, "metadata.creationTimestamp"));
}

static const char *or_none(const char *s)
{
    return s && s[0] ? s : "<none>";
}

static json_int_t int_at(const json_t *o, const char *a, const char *b)
{
    return json_integer_value(json_object_get(json_object_get(o, a), b));
}

static json_t *pod_cells(const json_t *o)
{
    const json_t *cs = json_object_get(json_object_get(o, "status"), "containerStatuses");
    size_t total = json_array_size(json_object_get(json_object_get(o, "spec"), "containers"));
    size_t ready = 0;
    json_int_t restarts = 0;
    size_t i;
    json_t *c;
    json_array_foreach(cs, i, c) {
        ready += json_is_true(json_object_get(c, "ready"));
        restarts += json_integer_value(json_object_get(c, "restartCount"));
    }
    char rd[32], rs[32];
    snprintf(rd, sizeof(rd), "%zu/%zu", ready, total);
    snprintf(rs, sizeof(rs), "%lld", (long long)restarts);
    const char *phase = obj_str(o, "status.reason");
    if (!phase)
        phase = obj_str(o, "status.phase");
    return json_pack("[s,s,s,s,o,s,s,s,s]", obj_name(o), rd, phase ? phase : "Pending", rs,
                     created_age(o), or_none(obj_str(o, "status.podIP")),
                     or_none(obj_str(o, "spec.nodeName")), "<none>", "<none>");
}

static json_t *node_cells(const json_t *o)
{
    const char *status = "NotReady";
    size_t i;
    json_t *c;
    json_array_foreach(json_object_get(json_object_get(o, "status"), "conditions"), i, c)
        if (strcmp(obj_str(c, "type") ? obj_str(c, "type") : "", "Ready") == 0 &&
            strcmp(obj_str(c, "status") ? obj_str(c, "status") : "", "True") == 0)
            status = "Ready";
    char roles[256] = "";
    size_t n = 0;
    const char *k;
    json_t *v;
    json_object_foreach(json_object_get(json_object_get(o, "metadata"), "labels"), k, v) {
        if (strncmp(k, "node-role.kubernetes.io/", 24) != 0)
            continue;
        int w = snprintf(roles + n, sizeof(roles) - n, "%s%s", n ? "," : "", k + 24);
        if (w > 0 && (size_t)w < sizeof(roles) - n)
            n += (size_t)w;
    }
    const char *ip = NULL;
    json_array_foreach(json_object_get(json_object_get(o, "status"), "addresses"), i, c)
        if (!ip && strcmp(obj_str(c, "type") ? obj_str(c, "type") : "", "InternalIP") == 0)
            ip = obj_str(c, "address");
    return json_pack("[s,s,s,o,s,s,s,s,s,s]", obj_name(o), status, or_none(roles),
                     created_age(o), or_none(obj_str(o, "status.nodeInfo.kubeletVersion")),
                     or_none(ip), "<none>", or_none(obj_str(o, "status.nodeInfo.osImage")),
                     or_none(obj_str(o, "status.nodeInfo.kernelVersion")),
                     or_none(obj_str(o, "status.nodeInfo.containerRuntimeVersion")));
}

static void join_containers(const json_t *o, const char *field, char *out, size_t cap)
{
    const json_t *spec = json_object_get(json_object_get(json_object_get(o, "spec"),
                                                         "template"), "spec");
    size_t i, n = 0;
    json_t *c;
    out[0] = '\0';
    json_array_foreach(json_object_get(spec, "containers"), i, c) {
        const char *v = obj_str(c, field);
        int w = snprintf(out + n, cap - n, "%s%s", n ? "," : "", v ? v : "");
        if (w > 0 && (size_t)w < cap - n)
            n += (size_t)w;
    }
}

static void selector_text(const json_t *labels, char *out, size_t cap)
{
    size_t n = 0;
    const char *k;
    json_t *v;
    out[0] = '\0';
    json_object_foreach((json_t *)labels, k, v) {
        int w = snprintf(out + n, cap - n, "%s%s=%s", n ? "," : "", k,
                         json_string_value(v) ? json_string_value(v) : "");
        if (w > 0 && (size_t)w < cap - n)
            n += (size_t)w;
    }
}

static json_t *deployment_cells(const json_t *o)
{
    char rd[32], cn[256], im[512], sel[256];
    snprintf(rd, sizeof(rd), "%lld/%lld", (long long)int_at(o, "status", "readyReplicas"),
             (long long)int_at(o, "spec", "replicas"));
    join_containers(o, "name", cn, sizeof(cn));
    join_containers(o, "image", im, sizeof(im));
    selector_text(json_object_get(json_object_get(json_object_get(o, "spec"), "selector"),
                                  "matchLabels"), sel, sizeof(sel));
    return json_pack("[s,s,I,I,o,s,s,s]", obj_name(o), rd,
                     int_at(o, "status", "updatedReplicas"),
                     int_at(o, "status", "availableReplicas"), created_age(o), cn, im, sel);
}

static json_t *daemonset_cells(const json_t *o)
{
    char sel[256];
    const json_t *spec = json_object_get(json_object_get(json_object_get(o, "spec"),
                                                         "template"), "spec");
    selector_text(json_object_get(spec, "nodeSelector"), sel, sizeof(sel));
    return json_pack("[s,I,I,I,I,I,s,o]", obj_name(o),
                     int_at(o, "status", "desiredNumberScheduled"),
                     int_at(o, "status", "currentNumberScheduled"),
                     int_at(o, "status", "numberReady"),
                     int_at(o, "status", "updatedNumberScheduled"),
                     int_at(o, "status", "numberAvailable"), or_none(sel), created_age(o));
}

static json_t *event_cells(const json_t *o)
{
    const char *last = obj_str(o, "lastTimestamp");
    if (!last)
        last = obj_str(o, "eventTime");
    if (!last)
        last = obj_str(o, "metadata.creationTimestamp");
    char obj[300], kind[64];
    const char *k = obj_str(o, "involvedObject.kind");
    size_t i;
    for (i = 0; k && k[i] && i + 1 < sizeof(kind); i++)
        kind[i] = (char)(k[i] >= 'A' && k[i] <= 'Z' ? k[i] + 32 : k[i]);
    kind[i] = '\0';
    snprintf(obj, sizeof(obj), "%s/%s", kind,
             obj_str(o, "involvedObject.name") ? obj_str(o, "involvedObject.name") : "");
    json_int_t count = json_integer_value(json_object_get(o, "count"));
    return json_pack("[o,s,s,s,s,I,s]", age_of(last), or_none(obj_str(o, "type")),
                     or_none(obj_str(o, "reason")), obj, obj_str(o, "message") ?
                     obj_str(o, "message") : "", count ? count : 1, obj_name(o));
}

static json_t *service_cells(const json_t *o)
{
    char ports[256] = "", sel[256];
    size_t i, n = 0;
    json_t *p;
    json_array_foreach(json_object_get(json_object_get(o, "spec"), "ports"), i, p) {
        json_int_t port = json_integer_value(json_object_get(p, "port"));
        json_int_t np = json_integer_value(json_object_get(p, "nodePort"));
        const char *proto = obj_str(p, "protocol") ? obj_str(p, "protocol") : "TCP";
        int w = np ? snprintf(ports + n, sizeof(ports) - n, "%s%lld:%lld/%s", n ? "," : "",
                              (long long)port, (long long)np, proto)
                   : snprintf(ports + n, sizeof(ports) - n, "%s%lld/%s", n ? "," : "",
                              (long long)port, proto);
        if (w > 0 && (size_t)w < sizeof(ports) - n)
            n += (size_t)w;
    }
    selector_text(json_object_get(json_object_get(o, "spec"), "selector"), sel, sizeof(sel));
    const char *type = obj_str(o, "spec.type") ? obj_str(o, "spec.type") : "ClusterIP";
    return json_pack("[s,s,s,s,s,o,s]", obj_name(o), type,
                     or_none(obj_str(o, "spec.clusterIP")),
                     strcmp(type, "LoadBalancer") == 0 ? "<pending>" : "<none>",
                     or_none(ports), created_age(o), or_none(sel));
}

static json_t *binding_cells(const json_t *o)
{
    char role[300], users[512] = "", groups[512] = "", sas[512] = "";
    snprintf(role, sizeof(role), "%s/%s", obj_str(o, "roleRef.kind") ?
             obj_str(o, "roleRef.kind") : "", obj_str(o, "roleRef.name") ?
             obj_str(o, "roleRef.name") : "");
    size_t i, nu = 0, ng = 0, ns = 0;
    json_t *s;
    json_array_foreach(json_object_get(o, "subjects"), i, s) {
        const char *kind = obj_str(s, "kind") ? obj_str(s, "kind") : "";
        const char *name = obj_str(s, "name") ? obj_str(s, "name") : "";
        char *out = users;
        size_t *n = &nu;
        char item[300];
        snprintf(item, sizeof(item), "%s", name);
        if (strcmp(kind, "Group") == 0) {
            out = groups;
            n = &ng;
        } else if (strcmp(kind, "ServiceAccount") == 0) {
            out = sas;
            n = &ns;
            snprintf(item, sizeof(item), "%s/%s", obj_str(s, "namespace") ?
                     obj_str(s, "namespace") : "", name);
        }
        int w = snprintf(out + *n, 512 - *n, "%s%s", *n ? ", " : "", item);
        if (w > 0 && (size_t)w < 512 - *n)
            *n += (size_t)w;
    }
    return json_pack("[s,s,o,s,s,s]", obj_name(o), role, created_age(o), users, groups, sas);
}

static json_t *cells(enum kprint p, const json_t *o)
{
    switch (p) {
    case KP_POD: return pod_cells(o);
    case KP_NODE: return node_cells(o);
    case KP_NAMESPACE:
        return json_pack("[s,s,o]", obj_name(o), obj_str(o, "status.phase") ?
                         obj_str(o, "status.phase") : "Active", created_age(o));
    case KP_DEPLOYMENT: return deployment_cells(o);
    case KP_DAEMONSET: return daemonset_cells(o);
    case KP_EVENT: return event_cells(o);
    case KP_SERVICE: return service_cells(o);
    case KP_CONFIGMAP:
        return json_pack("[s,I,o]", obj_name(o),
                         (json_int_t)(json_object_size(json_object_get(o, "data")) +
                                      json_object_size(json_object_get(o, "binaryData"))),
                         created_age(o));
    case KP_SECRET:
        return json_pack("[s,s,I,o]", obj_name(o), obj_str(o, "type") ? obj_str(o, "type") :
                         "Opaque", (json_int_t)json_object_size(json_object_get(o, "data")),
                         created_age(o));
    case KP_SERVICEACCOUNT:
        return json_pack("[s,I,o]", obj_name(o),
                         (json_int_t)json_array_size(json_object_get(o, "secrets")),
                         created_age(o));
    case KP_BINDING:
    case KP_CLUSTERBINDING: return binding_cells(o);
    default:
        return json_pack("[s,s]", obj_name(o), obj_str(o, "metadata.creationTimestamp") ?
                         obj_str(o, "metadata.creationTimestamp") : "");
    }
}

static json_t *row_object(const json_t *o, const char *include)
{
    if (strcmp(include, "None") == 0)
        return NULL;
    if (strcmp(include, "Object") == 0)
        return json_incref((json_t *)o);
    return json_pack("{s:s,s:s,s:O}", "kind", "PartialObjectMetadata", "apiVersion",
                     "meta.k8s.io/v1", "metadata", json_object_get(o, "metadata"));
}

json_t *table_of(const struct kres *res, json_t *objs, const char *rv, const char *include)
{
    json_t *defs = json_array(), *rows = json_array();
    for (const struct col *c = columns(res->print); c->name; c++)
        json_array_append_new(defs, json_pack("{s:s,s:s,s:s,s:s,s:i}", "name", c->name,
                                              "type", c->type, "format", c->format,
                                              "description", "", "priority", c->priority));
    size_t i;
    json_t *o;
    json_array_foreach(objs, i, o) {
        json_t *row = json_pack("{s:o}", "cells", cells(res->print, o));
        json_t *ro = row_object(o, include ? include : "");
        if (ro)
            json_object_set_new(row, "object", ro);
        json_array_append_new(rows, row);
    }
    return json_pack("{s:s,s:s,s:{s:s?},s:o,s:o}", "kind", "Table", "apiVersion",
                     "meta.k8s.io/v1", "metadata", "resourceVersion", rv,
                     "columnDefinitions", defs, "rows", rows);
}
