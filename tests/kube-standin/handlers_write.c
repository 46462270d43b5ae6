/*
 * handlers_write: the write verbs of the kube-standin test stand-in: create
 * (409 AlreadyExists), update (409 Conflict on a stale resourceVersion),
 * patch (merge, strategic merge, JSON patch, server-side apply), delete
 * (404 NotFound; a namespace takes its objects with it) and
 * deletecollection, plus the status and scale subresources and
 * SelfSubjectAccessReview. dryRun=All runs everything but the store write.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "tests/kube-standin/handlers.h"
#include "tests/kube-standin/standin.h"
#include "tests/kube-standin/store.h"

static json_t *details(const struct kres *res, const char *name)
{
    json_t *d = json_pack("{s:s,s:s}", "name", name, "kind", res->name);
    if (res->group[0])
        json_object_set_new(d, "group", json_string(res->group));
    return d;
}

static void qualified(const struct kres *res, char *out, size_t cap)
{
    snprintf(out, cap, "%s%s%s", res->name, res->group[0] ? "." : "", res->group);
}

static void reply_conflict(struct kreq *k, const char *name)
{
    char q[128];
    qualified(k->a.res, q, sizeof(q));
    ks_reply_status(k, 409, "Conflict", details(k->a.res, name),
                    "Operation cannot be fulfilled on %s \"%s\": the object has been "
                    "modified; please apply your changes to the latest version and try again",
                    q, name);
}

static void reply_invalid(struct kreq *k, const char *name, const char *msg)
{
    json_t *d = details(k->a.res, name);
    json_object_set_new(d, "kind", json_string(k->a.res->kind));
    ks_reply_status(k, 422, "Invalid", d, "%s", msg);
}

static bool dry_run(const struct kreq *k)
{
    char v[16];
    return ks_query(k, "dryRun", v, sizeof(v)) > 0 && strcmp(v, "All") == 0;
}

static json_t *parse_body(struct kreq *k)
{
    size_t len;
    const uint8_t *body = hs_body(k->r, &len);
    char err[256];
    json_t *j = len ? yaml_to_json((const char *)body, len, err, sizeof(err)) : NULL;
    if (!j) {
        ks_reply_status(k, 400, "BadRequest", NULL, "the body of the request was in an "
                        "unknown format or could not be decoded: %s", len ? err : "empty");
        return NULL;
    }
    return j;
}

/* The checks a body gets against the URL before anything is stored. */
static bool check_identity(struct kreq *k, json_t *obj)
{
    const struct kres *res = k->a.res;
    char av[64];
    kres_api_version(res, av, sizeof(av));
    const char *kind = obj_str(obj, "kind"), *bav = obj_str(obj, "apiVersion");
    if (!json_is_object(obj) || (kind && strcmp(kind, res->kind) != 0) ||
        (bav && strcmp(bav, av) != 0)) {
        ks_reply_status(k, 400, "BadRequest", NULL, "the API version in the data (%s) does not "
                        "match the expected API version (%s)", bav ? bav : "", av);
        return false;
    }
    json_t *m = obj_meta(obj);
    const char *ns = obj_str(m, "namespace");
    if (res->namespaced) {
        if (ns && ns[0] && strcmp(ns, k->a.ns) != 0) {
            ks_reply_status(k, 400, "BadRequest", NULL, "the namespace of the provided object "
                            "does not match the namespace sent on the request");
            return false;
        }
        json_object_set_new(m, "namespace", json_string(k->a.ns));
    } else {
        json_object_del(m, "namespace");
    }
    if (k->a.name[0]) {
        const char *name = obj_str(m, "name");
        if (name && name[0] && strcmp(name, k->a.name) != 0) {
            ks_reply_status(k, 400, "BadRequest", NULL, "the name of the object (%s) does not "
                            "match the name on the URL (%s)", name, k->a.name);
            return false;
        }
        json_object_set_new(m, "name", json_string(k->a.name));
    }
    return true;
}

static bool namespace_exists(struct kreq *k)
{
    const struct kres *nsr = kres_find("", "v1", "namespaces");
    if (!k->a.res->namespaced || store_get(k->ks->store, nsr, NULL, k->a.ns))
        return true;
    ks_reply_not_found(k, nsr, k->a.ns);
    return false;
}

/* Stores a new object (stolen) and answers 201, or the reason it cannot. */
static void create_object(struct kreq *k, json_t *obj)
{
    const struct kres *res = k->a.res;
    json_t *m = obj_meta(obj);
    const char *gen = obj_str(m, "generateName");
    if (!obj_str(m, "name") && gen) {
        char name[300], suf[8];
        ks_rand_suffix(suf, 5);
        snprintf(name, sizeof(name), "%s%s", gen, suf);
        json_object_set_new(m, "name", json_string(name));
    }
    const char *name = obj_str(m, "name");
    if (!name || !name[0]) {
        json_decref(obj);
        reply_invalid(k, "", "metadata.name: Required value: name or generateName is required");
        return;
    }
    char q[128], nm[256];
    snprintf(nm, sizeof(nm), "%s", name);
    const char *bad = obj_prepare_create(k->ks, res, obj);
    if (bad) {
        json_decref(obj);
        reply_invalid(k, nm, bad);
        return;
    }
    if (store_get(k->ks->store, res, res->namespaced ? k->a.ns : NULL, nm)) {
        json_decref(obj);
        qualified(res, q, sizeof(q));
        ks_reply_status(k, 409, "AlreadyExists", details(res, nm), "%s \"%s\" already exists",
                        q, nm);
        return;
    }
    if (dry_run(k)) {
        reply_object(k, 201, obj);
        json_decref(obj);
        return;
    }
    json_incref(obj);
    if (store_create(k->ks->store, res, obj) < 0) {
        json_decref(obj);
        ks_reply_status(k, 500, "InternalError", NULL, "could not store the object");
        return;
    }
    reply_object(k, 201, obj);
    json_decref(obj);
}

static void access_review(struct kreq *k, json_t *body)
{
    json_t *spec = json_object_get(body, "spec");
    json_t *ra = json_object_get(spec, "resourceAttributes");
    bool allowed;
    if (ra) {
        const char *res = obj_str(ra, "resource");
        allowed = rbac_allowed(k->ks, &k->user, obj_str(ra, "verb") ? obj_str(ra, "verb") : "",
                               obj_str(ra, "group") ? obj_str(ra, "group") : "",
                               res ? res : "",
                               obj_str(ra, "subresource") ? obj_str(ra, "subresource") : "",
                               obj_str(ra, "namespace") ? obj_str(ra, "namespace") : "",
                               obj_str(ra, "name") ? obj_str(ra, "name") : "");
    } else {
        /* Discovery URLs are open to everyone here; anything else takes
         * cluster-admin's nonResourceURLs "*". */
        allowed = rbac_allowed(k->ks, &k->user, "*", "*", "*", "", "", "");
        const char *path = obj_str(json_object_get(spec, "nonResourceAttributes"), "path");
        if (path && (strncmp(path, "/api", 4) == 0 || strcmp(path, "/version") == 0 ||
                     strncmp(path, "/openapi", 8) == 0 || strcmp(path, "/healthz") == 0))
            allowed = true;
    }
    json_t *out = json_pack("{s:s,s:s,s:{s:n},s:O?,s:{s:b}}", "kind", "SelfSubjectAccessReview",
                            "apiVersion", "authorization.k8s.io/v1", "metadata",
                            "creationTimestamp", "spec", spec, "status", "allowed", allowed);
    if (allowed)
        json_object_set_new(json_object_get(out, "status"), "reason",
                            json_string("allowed by the kube-standin RBAC bindings"));
    json_decref(body);
    ks_reply_json(k, 201, out);
}

static void do_create(struct kreq *k)
{
    json_t *obj = parse_body(k);
    if (!obj)
        return;
    if (k->a.res->create_only) {
        access_review(k, obj);
        return;
    }
    if (!check_identity(k, obj) || !namespace_exists(k)) {
        json_decref(obj);
        return;
    }
    create_object(k, obj);
}

static json_t *without_rv(const json_t *o)
{
    json_t *c = json_deep_copy(o);
    json_object_del(obj_meta(c), "resourceVersion");
    return c;
}

/*
 * Replaces old by next (stolen), which a PUT or PATCH produced: keeps the
 * server-owned fields, writes only if something changed (a no-op keeps the
 * resourceVersion, as the real server does) and answers.
 */
static void commit(struct kreq *k, const json_t *old, json_t *next)
{
    const struct kres *res = k->a.res;
    const char *want = obj_str(next, "metadata.resourceVersion");
    if (want && strcmp(want, obj_str(old, "metadata.resourceVersion")) != 0) {
        json_decref(next);
        reply_conflict(k, k->a.name);
        return;
    }
    if (strcmp(k->a.sub, "status") == 0) {
        json_t *st = json_incref(json_object_get(next, "status"));
        json_decref(next);
        next = json_deep_copy(old);
        if (st)
            json_object_set_new(next, "status", st);
    } else {
        obj_prepare_update(res, old, next);
    }
    json_t *a = without_rv(old), *b = without_rv(next);
    bool same = json_equal(a, b);
    json_decref(a);
    json_decref(b);
    if (same || dry_run(k)) {
        reply_object(k, 200, same ? old : next);
        json_decref(next);
        return;
    }
    json_incref(next);
    store_update(k->ks->store, res, next);
    if (strcmp(k->a.sub, "scale") == 0)
        ks_reply_json(k, 200, scale_of(next));
    else
        reply_object(k, 200, next);
    json_decref(next);
}

/* A Scale written back onto its deployment (new reference). */
static json_t *apply_scale(const json_t *old, const json_t *scale)
{
    json_t *next = json_deep_copy(old);
    json_t *r = json_object_get(json_object_get(scale, "spec"), "replicas");
    if (json_is_integer(r))
        json_object_set(json_object_get(next, "spec"), "replicas", r);
    const char *rv = obj_str(scale, "metadata.resourceVersion");
    if (rv)
        json_object_set_new(obj_meta(next), "resourceVersion", json_string(rv));
    else
        json_object_del(obj_meta(next), "resourceVersion");
    return next;
}

static void do_update(struct kreq *k)
{
    json_t *obj = parse_body(k);
    if (!obj)
        return;
    const json_t *old = store_get(k->ks->store, k->a.res, k->a.ns, k->a.name);
    if (!old) {
        json_decref(obj);
        ks_reply_not_found(k, k->a.res, k->a.name);
        return;
    }
    if (strcmp(k->a.sub, "scale") == 0) {
        json_t *next = apply_scale(old, obj);
        json_decref(obj);
        commit(k, old, next);
        return;
    }
    if (!check_identity(k, obj)) {
        json_decref(obj);
        return;
    }
    commit(k, old, obj);
}

/* The patched document, or NULL after answering. */
static json_t *patched(struct kreq *k, const json_t *base, const json_t *patch,
                       const char *ctype)
{
    char err[256] = "";
    json_t *out = NULL;
    if (strncasecmp(ctype, "application/merge-patch+json", 28) == 0)
        out = json_is_object(patch) ? patch_merge(base, patch) : NULL;
    else if (strncasecmp(ctype, "application/strategic-merge-patch+json", 38) == 0 ||
             strncasecmp(ctype, "application/apply-patch+yaml", 28) == 0)
        out = patch_strategic(base, patch, err, sizeof(err));
    else if (strncasecmp(ctype, "application/json-patch+json", 27) == 0)
        out = patch_json(base, patch, err, sizeof(err));
    if (!out) {
        if (strncasecmp(ctype, "application/json-patch+json", 27) == 0)
            ks_reply_status(k, 422, "Invalid", NULL, "%s", err[0] ? err : "invalid patch");
        else
            ks_reply_status(k, 400, "BadRequest", NULL, "%s", err[0] ? err : "invalid patch");
    }
    return out;
}

static void do_patch(struct kreq *k)
{
    const struct http_header *ct = hs_header(k->r, "content-type");
    char ctype[96];
    snprintf(ctype, sizeof(ctype), "%.*s", ct ? (int)ct->value_len : 0, ct ? ct->value : "");
    bool apply = strncasecmp(ctype, "application/apply-patch+yaml", 28) == 0;
    if (!apply && strncasecmp(ctype, "application/merge-patch+json", 28) != 0 &&
        strncasecmp(ctype, "application/strategic-merge-patch+json", 38) != 0 &&
        strncasecmp(ctype, "application/json-patch+json", 27) != 0) {
        ks_reply_status(k, 415, "UnsupportedMediaType", NULL,
                        "the body of the request was in an unknown format - accepted media "
                        "types include: application/json-patch+json, "
                        "application/merge-patch+json, application/apply-patch+yaml");
        return;
    }
    char fm[128];
    if (apply && ks_query(k, "fieldManager", fm, sizeof(fm)) <= 0) {
        ks_reply_status(k, 400, "BadRequest", NULL,
                        "PATCH /apply requires fieldManager to be set");
        return;
    }
    json_t *patch = parse_body(k);
    if (!patch)
        return;
    const json_t *old = store_get(k->ks->store, k->a.res, k->a.ns, k->a.name);
    if (!old && apply && !k->a.sub[0]) {
        /* Server-side apply creates what is missing. */
        if (!check_identity(k, patch) || !namespace_exists(k))
            json_decref(patch);
        else
            create_object(k, patch);
        return;
    }
    if (!old) {
        json_decref(patch);
        ks_reply_not_found(k, k->a.res, k->a.name);
        return;
    }
    bool scale = strcmp(k->a.sub, "scale") == 0;
    json_t *base = scale ? scale_of(old) : json_incref((json_t *)old);
    json_t *next = patched(k, base, patch, ctype);
    json_decref(patch);
    json_decref(base);
    if (!next)
        return;
    if (scale) {
        json_t *d = apply_scale(old, next);
        json_decref(next);
        next = d;
    } else if (!check_identity(k, next)) {
        json_decref(next);
        return;
    }
    /* A patch only conflicts when it names a resourceVersion itself. */
    if (json_equal(json_object_get(obj_meta(next), "resourceVersion"),
                   json_object_get(json_object_get(old, "metadata"), "resourceVersion")))
        json_object_del(obj_meta(next), "resourceVersion");
    commit(k, old, next);
}

static void purge_one(void *ud, const struct kres *res, const json_t *obj)
{
    struct ks *ks = ud;
    char ns[256], name[256];
    snprintf(ns, sizeof(ns), "%s", obj_ns(obj));
    snprintf(name, sizeof(name), "%s", obj_name(obj));
    store_delete(ks->store, res, ns, name, NULL);
}

/* Deletes one object; a namespace takes everything in it along. 0 or -1. */
static int delete_one(struct ks *ks, const struct kres *res, const char *ns,
                      const char *name, json_t **last)
{
    char n[256];
    snprintf(n, sizeof(n), "%s", name);     /* name may live in the object */
    if (res->print == KP_NAMESPACE)
        store_each_in_ns(ks->store, n, purge_one, ks);
    return store_delete(ks->store, res, ns, n, last);
}

static void do_delete(struct kreq *k)
{
    const struct kres *res = k->a.res;
    const json_t *old = store_get(k->ks->store, res, k->a.ns, k->a.name);
    if (!old) {
        ks_reply_not_found(k, res, k->a.name);
        return;
    }
    json_t *d = details(res, k->a.name);
    json_object_set(d, "uid", json_object_get(json_object_get(old, "metadata"), "uid"));
    if (!dry_run(k))
        delete_one(k->ks, res, k->a.ns, k->a.name, NULL);
    json_t *st = ks_status_obj(200, NULL, NULL, d);
    ks_reply_json(k, 200, st);
}

static void do_delete_collection(struct kreq *k)
{
    struct ksel *fields;
    struct ksel *labels = parse_selectors(k, &fields);
    if (!labels)
        return;
    json_t *objs = matching(k, labels, fields);
    sel_free(labels);
    sel_free(fields);
    json_t *items = json_array();
    size_t i;
    json_t *o;
    json_array_foreach(objs, i, o) {
        json_t *last = NULL;
        if (dry_run(k))
            last = json_incref(o);
        else
            delete_one(k->ks, k->a.res, obj_ns(o), obj_name(o), &last);
        if (last)
            json_array_append_new(items, last);
    }
    json_decref(objs);
    char av[64], kind[96], rv[24];
    kres_api_version(k->a.res, av, sizeof(av));
    snprintf(kind, sizeof(kind), "%sList", k->a.res->kind);
    snprintf(rv, sizeof(rv), "%llu", (unsigned long long)store_rv(k->ks->store));
    ks_reply_json(k, 200, json_pack("{s:s,s:s,s:{s:s},s:o}", "kind", kind, "apiVersion", av,
                                    "metadata", "resourceVersion", rv, "items", items));
}

static void body_read(struct hs_req *r, void *ud)
{
    struct kreq *k = ud;
    (void)r;
    const char *verb = k->a.verb;
    if (strcmp(verb, "create") == 0)
        do_create(k);
    else if (strcmp(verb, "update") == 0)
        do_update(k);
    else if (strcmp(verb, "patch") == 0)
        do_patch(k);
    else if (strcmp(verb, "delete") == 0)
        do_delete(k);
    else
        do_delete_collection(k);
}

void h_write(struct kreq *k)
{
    const char *sub = k->a.sub;
    if (sub[0] && strcmp(sub, "status") != 0 && strcmp(sub, "scale") != 0) {
        ks_reply_status(k, 405, "MethodNotAllowed", NULL,
                        "the server does not allow this method on the requested resource");
        return;
    }
    if (sub[0] && strcmp(k->a.verb, "update") != 0 && strcmp(k->a.verb, "patch") != 0) {
        ks_reply_status(k, 405, "MethodNotAllowed", NULL,
                        "the server does not allow this method on the requested resource");
        return;
    }
    bool named_verb = strcmp(k->a.verb, "create") != 0 &&
                      strcmp(k->a.verb, "deletecollection") != 0;
    if (named_verb != (k->a.name[0] != '\0') && !k->a.res->create_only) {
        ks_reply_status(k, 405, "MethodNotAllowed", NULL,
                        "the server does not allow this method on the requested resource");
        return;
    }
    hs_read_body(k->r, KS_MAX_BODY, body_read, k);
}
