/*
 * handlers: the read verbs of the kube-standin test stand-in: get and list,
 * with label and field selectors, limit/continue paging, and the Table
 * answers kubectl asks for (Accept: ...;as=Table;g=meta.k8s.io). Also the
 * scale subresource's read side, shared with the writers.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/kube-standin/handlers.h"
#include "tests/kube-standin/standin.h"
#include "tests/kube-standin/store.h"

json_t *scale_of(const json_t *d)
{
    char sel[512] = "";
    const char *k;
    json_t *v;
    size_t o = 0;
    json_object_foreach(json_object_get(json_object_get(json_object_get(d, "spec"),
                                                        "selector"), "matchLabels"), k, v) {
        int n = snprintf(sel + o, sizeof(sel) - o, "%s%s=%s", o ? "," : "", k,
                         json_string_value(v) ? json_string_value(v) : "");
        if (n < 0 || (size_t)n >= sizeof(sel) - o)
            break;
        o += (size_t)n;
    }
    json_t *meta = json_deep_copy(json_object_get(d, "metadata"));
    json_object_del(meta, "labels");
    json_object_del(meta, "annotations");
    json_object_del(meta, "generation");
    json_object_del(meta, "ownerReferences");
    return json_pack("{s:s,s:s,s:o,s:{s:O?},s:{s:O?,s:s}}", "kind", "Scale", "apiVersion",
                     "autoscaling/v1", "metadata", meta, "spec", "replicas",
                     json_object_get(json_object_get(d, "spec"), "replicas"), "status",
                     "replicas", json_object_get(json_object_get(d, "status"), "replicas"),
                     "selector", sel);
}

/* The object as the client should see it: the Table form when asked. */
void reply_object(struct kreq *k, int status, const json_t *obj)
{
    if (k->table) {
        char inc[32];
        json_t *one = json_pack("[O]", obj);
        if (ks_query(k, "includeObject", inc, sizeof(inc)) < 0)
            inc[0] = '\0';
        json_t *t = table_of(k->a.res, one, obj_str(obj, "metadata.resourceVersion"), inc);
        json_decref(one);
        ks_reply_json(k, status, t);
        return;
    }
    ks_reply_json(k, status, json_incref((json_t *)obj));
}

void h_get(struct kreq *k)
{
    const struct kattrs *a = &k->a;
    const json_t *obj = store_get(k->ks->store, a->res, a->ns, a->name);
    if (!obj) {
        ks_reply_not_found(k, a->res, a->name);
        return;
    }
    if (strcmp(a->sub, "scale") == 0) {
        ks_reply_json(k, 200, scale_of(obj));
        return;
    }
    reply_object(k, 200, obj);
}

struct ksel *parse_selectors(struct kreq *k, struct ksel **fields)
{
    char text[2048], err[512];
    *fields = NULL;
    if (ks_query(k, "labelSelector", text, sizeof(text)) < -1 ||
        ks_query(k, "fieldSelector", text, sizeof(text)) < -1) {
        ks_reply_status(k, 400, "BadRequest", NULL, "selector too long or malformed");
        return NULL;
    }
    ks_query(k, "labelSelector", text, sizeof(text));
    struct ksel *labels = sel_parse_labels(text, err, sizeof(err));
    if (!labels) {
        ks_reply_status(k, 400, "BadRequest", NULL, "unable to parse requirement: %s", err);
        return NULL;
    }
    ks_query(k, "fieldSelector", text, sizeof(text));
    *fields = sel_parse_fields(text, err, sizeof(err));
    if (!*fields) {
        sel_free(labels);
        ks_reply_status(k, 400, "BadRequest", NULL, "invalid field selector: %s", err);
        return NULL;
    }
    return labels;
}

/* The objects of the request's resource and namespace that match both
 * selectors (new array). */
json_t *matching(struct kreq *k, const struct ksel *labels, const struct ksel *fields)
{
    const struct kattrs *a = &k->a;
    bool all = !a->res->namespaced || !a->ns[0];
    json_t *objs = store_list(k->ks->store, a->res, all ? NULL : a->ns);
    json_t *out = json_array();
    size_t i;
    json_t *o;
    json_array_foreach(objs, i, o)
        if (sel_match(labels, o) && sel_match(fields, o))
            json_array_append(out, o);
    json_decref(objs);
    return out;
}

/* A page of objs. Items of a list carry no kind or apiVersion in the real
 * API's JSON (strip); a Table's rows keep whole objects. */
static json_t *list_items(json_t *objs, size_t from, size_t count, bool strip)
{
    json_t *items = json_array();
    for (size_t i = from; i < from + count && i < json_array_size(objs); i++) {
        json_t *c = json_copy(json_array_get(objs, i));
        if (strip) {
            json_object_del(c, "kind");
            json_object_del(c, "apiVersion");
        }
        json_array_append_new(items, c);
    }
    return items;
}

void h_list(struct kreq *k)
{
    struct ksel *fields;
    struct ksel *labels = parse_selectors(k, &fields);
    if (!labels)
        return;
    json_t *objs = matching(k, labels, fields);
    sel_free(labels);
    sel_free(fields);
    char rv[24], buf[64], av[64], kind[96];
    snprintf(rv, sizeof(rv), "%llu", (unsigned long long)store_rv(k->ks->store));
    size_t total = json_array_size(objs), from = 0, limit = total;
    if (ks_query(k, "continue", buf, sizeof(buf)) > 0) {
        char *end;
        unsigned long v = strtoul(buf, &end, 10);
        if (*end || v > total) {
            json_decref(objs);
            ks_reply_status(k, 400, "BadRequest", NULL, "invalid continue token");
            return;
        }
        from = v;
    }
    if (ks_query(k, "limit", buf, sizeof(buf)) > 0) {
        unsigned long v = strtoul(buf, NULL, 10);
        if (v > 0 && v < limit)
            limit = v;
    }
    size_t count = total - from < limit ? total - from : limit;
    if (k->table) {
        char inc[32];
        if (ks_query(k, "includeObject", inc, sizeof(inc)) < 0)
            inc[0] = '\0';
        json_t *page = list_items(objs, from, count, false);
        json_t *t = table_of(k->a.res, page, rv, inc);
        json_decref(page);
        if (from + count < total) {
            snprintf(buf, sizeof(buf), "%zu", from + count);
            json_object_set_new(json_object_get(t, "metadata"), "continue", json_string(buf));
        }
        json_decref(objs);
        ks_reply_json(k, 200, t);
        return;
    }
    kres_api_version(k->a.res, av, sizeof(av));
    snprintf(kind, sizeof(kind), "%sList", k->a.res->kind);
    json_t *list = json_pack("{s:s,s:s,s:{s:s},s:o}", "kind", kind, "apiVersion", av,
                             "metadata", "resourceVersion", rv,
                             "items", list_items(objs, from, count, true));
    if (from + count < total) {
        json_t *m = json_object_get(list, "metadata");
        snprintf(buf, sizeof(buf), "%zu", from + count);
        json_object_set_new(m, "continue", json_string(buf));
        json_object_set_new(m, "remainingItemCount",
                            json_integer((json_int_t)(total - from - count)));
    }
    json_decref(objs);
    ks_reply_json(k, 200, list);
}
