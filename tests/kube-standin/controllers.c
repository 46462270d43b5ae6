/*
 * controllers: what the controller manager would do, in the kube-standin
 * test stand-in. A Deployment gets one running pod per replica, named
 * <deployment>-<template hash>-<random> like the real ones; a DaemonSet one
 * per node; a changed template replaces the pods, a changed replica count
 * adds or removes some, a deleted owner takes its pods, and a deleted pod of
 * an owner is replaced. Owners get the status a rollout would end with, so
 * `kubectl rollout status` and `kubectl wait` finish. A new namespace gets
 * its "default" service account.
 *
 * Work runs deferred (after the current loop batch), as a controller reacts
 * after the write that triggered it; it still finishes before the client
 * that wrote can send its next request.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "tests/kube-standin/standin.h"
#include "tests/kube-standin/store.h"

struct work {
    struct ks *ks;
    const struct kres *res;     /* deployments, daemonsets or namespaces */
    char ns[256], name[256];
};

static const struct kres *R(const char *group, const char *name)
{
    return kres_find(group, "v1", name);
}

/* A stable 10-character hash of the pod template, in the name alphabet. */
static void template_hash(const json_t *tmpl, char out[11])
{
    static const char alpha[] = "bcdfghjklmnpqrstvwxz2456789";
    char *text = json_dumps(tmpl, JSON_COMPACT | JSON_SORT_KEYS);
    uint64_t h = 1469598103934665603ull;
    for (const char *p = text ? text : ""; *p; p++)
        h = (h ^ (uint8_t)*p) * 1099511628211ull;
    free(text);
    for (int i = 0; i < 10; i++) {
        out[i] = alpha[h % (sizeof(alpha) - 1)];
        h /= sizeof(alpha) - 1;
        if (!h)
            h = 0x9e3779b97f4a7c15ull;
    }
    out[10] = '\0';
}

static bool owned_by(const json_t *pod, const char *kind, const char *name)
{
    size_t i;
    json_t *o;
    json_array_foreach(json_object_get(json_object_get(pod, "metadata"), "ownerReferences"),
                       i, o)
        if (strcmp(obj_str(o, "kind") ? obj_str(o, "kind") : "", kind) == 0 &&
            strcmp(obj_str(o, "name") ? obj_str(o, "name") : "", name) == 0)
            return true;
    return false;
}

static json_t *owned_pods(struct ks *ks, const char *ns, const char *kind, const char *name)
{
    json_t *all = store_list(ks->store, R("", "pods"), ns), *out = json_array();
    size_t i;
    json_t *p;
    json_array_foreach(all, i, p)
        if (owned_by(p, kind, name))
            json_array_append(out, p);
    json_decref(all);
    return out;
}

static void delete_pod(struct ks *ks, const json_t *pod)
{
    char ns[256], name[256];
    snprintf(ns, sizeof(ns), "%s", obj_ns(pod));
    snprintf(name, sizeof(name), "%s", obj_name(pod));
    store_delete(ks->store, R("", "pods"), ns, name, NULL);
}

static void make_pod(struct ks *ks, const json_t *owner, const char *name,
                     const char *hash_label, const char *hash, const char *node)
{
    const json_t *tmpl = json_object_get(json_object_get(owner, "spec"), "template");
    json_t *labels = json_deep_copy(json_object_get(json_object_get(tmpl, "metadata"),
                                                    "labels"));
    if (!json_is_object(labels)) {
        json_decref(labels);
        labels = json_object();
    }
    json_object_set_new(labels, hash_label, json_string(hash));
    json_t *spec = json_deep_copy(json_object_get(tmpl, "spec"));
    if (!spec)
        spec = json_object();
    if (node)
        json_object_set_new(spec, "nodeName", json_string(node));
    json_t *pod = json_pack("{s:s,s:s,s:{s:s,s:s,s:o,s:[{s:s,s:s,s:s,s:s?,s:b,s:b}]},s:o}",
                            "apiVersion", "v1", "kind", "Pod", "metadata", "name", name,
                            "namespace", obj_ns(owner), "labels", labels, "ownerReferences",
                            "apiVersion", "apps/v1", "kind", obj_str(owner, "kind"),
                            "name", obj_name(owner), "uid", obj_str(owner, "metadata.uid"),
                            "controller", 1, "blockOwnerDeletion", 1, "spec", spec);
    if (!pod)
        return;
    const char *bad = obj_prepare_create(ks, R("", "pods"), pod);
    if (bad) {
        log_warn("controller: cannot make pod %s: %s", name, bad);
        json_decref(pod);
        return;
    }
    store_create(ks->store, R("", "pods"), pod);
}

/* Writes status into owner if it differs from what is stored. */
static void set_status(struct ks *ks, const struct kres *res, const json_t *owner,
                       json_t *status)
{
    if (json_equal(json_object_get(owner, "status"), status)) {
        json_decref(status);
        return;
    }
    json_t *next = json_deep_copy(owner);
    json_object_set_new(next, "status", status);
    store_update(ks->store, res, next);
}

static void deployment_status(struct ks *ks, const json_t *d, json_int_t n)
{
    char now[32];
    ks_now_rfc3339(now);
    const json_t *old = json_object_get(d, "status");
    /* Condition times stay put once set, as the real controller keeps them. */
    json_t *oc = json_object_get(old, "conditions");
    const char *since = json_array_size(oc) ?
                        obj_str(json_array_get(oc, 0), "lastTransitionTime") : NULL;
    if (!since)
        since = now;
    json_t *st = json_pack("{s:I,s:I,s:I,s:I,s:I}", "observedGeneration",
                           json_integer_value(json_object_get(json_object_get(d, "metadata"),
                                                              "generation")),
                           "replicas", n, "updatedReplicas", n, "readyReplicas", n,
                           "availableReplicas", n);
    json_object_set_new(st, "conditions", json_pack(
        "[{s:s,s:s,s:s,s:s,s:s,s:s},{s:s,s:s,s:s,s:s,s:s,s:s}]",
        "type", "Available", "status", "True", "lastUpdateTime", since,
        "lastTransitionTime", since, "reason", "MinimumReplicasAvailable",
        "message", "Deployment has minimum availability.",
        "type", "Progressing", "status", "True", "lastUpdateTime", since,
        "lastTransitionTime", since, "reason", "NewReplicaSetAvailable",
        "message", "ReplicaSet has successfully progressed."));
    if (n == 0) {
        json_object_del(st, "readyReplicas");
        json_object_del(st, "availableReplicas");
        json_object_del(st, "updatedReplicas");
        json_object_del(st, "replicas");
    }
    set_status(ks, R("apps", "deployments"), d, st);
}

static void reconcile_deployment(struct ks *ks, const char *ns, const char *name)
{
    const json_t *d = store_get(ks->store, R("apps", "deployments"), ns, name);
    json_t *pods = owned_pods(ks, ns, "Deployment", name);
    size_t i;
    json_t *p;
    if (!d) {
        json_array_foreach(pods, i, p)
            delete_pod(ks, p);
        json_decref(pods);
        return;
    }
    json_incref((json_t *)d);   /* our pod writes must not free it under us */
    char hash[11];
    template_hash(json_object_get(json_object_get(d, "spec"), "template"), hash);
    json_int_t want = json_integer_value(json_object_get(json_object_get(d, "spec"),
                                                         "replicas"));
    json_int_t have = 0;
    json_array_foreach(pods, i, p) {
        const char *h = obj_str(p, "metadata.labels.pod-template-hash");
        if (!h || strcmp(h, hash) != 0 || have >= want)
            delete_pod(ks, p);
        else
            have++;
    }
    json_decref(pods);
    for (; have < want; have++) {
        char pod[300], suf[8];
        ks_rand_suffix(suf, 5);
        snprintf(pod, sizeof(pod), "%s-%s-%s", name, hash, suf);
        make_pod(ks, d, pod, "pod-template-hash", hash, NULL);
    }
    deployment_status(ks, d, want);
    json_decref((json_t *)d);
}

static void reconcile_daemonset(struct ks *ks, const char *ns, const char *name)
{
    const json_t *ds = store_get(ks->store, R("apps", "daemonsets"), ns, name);
    json_t *pods = owned_pods(ks, ns, "DaemonSet", name);
    size_t i, j;
    json_t *p, *node;
    if (!ds) {
        json_array_foreach(pods, i, p)
            delete_pod(ks, p);
        json_decref(pods);
        return;
    }
    json_incref((json_t *)ds);
    char hash[11];
    template_hash(json_object_get(json_object_get(ds, "spec"), "template"), hash);
    json_t *nodes = store_list(ks->store, R("", "nodes"), NULL);
    json_array_foreach(pods, i, p) {
        const char *h = obj_str(p, "metadata.labels.controller-revision-hash");
        if (!h || strcmp(h, hash) != 0)
            delete_pod(ks, p);
    }
    json_decref(pods);
    pods = owned_pods(ks, ns, "DaemonSet", name);
    json_array_foreach(nodes, i, node) {
        bool has = false;
        json_array_foreach(pods, j, p)
            has = has || strcmp(obj_str(p, "spec.nodeName") ? obj_str(p, "spec.nodeName") :
                                "", obj_name(node)) == 0;
        if (!has) {
            char pod[300], suf[8];
            ks_rand_suffix(suf, 5);
            snprintf(pod, sizeof(pod), "%s-%s", name, suf);
            make_pod(ks, ds, pod, "controller-revision-hash", hash, obj_name(node));
        }
    }
    json_decref(pods);
    json_int_t n = (json_int_t)json_array_size(nodes);
    json_decref(nodes);
    set_status(ks, R("apps", "daemonsets"), ds,
               json_pack("{s:I,s:I,s:I,s:i,s:I,s:I,s:I,s:I}", "currentNumberScheduled", n,
                         "desiredNumberScheduled", n, "numberAvailable", n,
                         "numberMisscheduled", 0, "numberReady", n, "observedGeneration",
                         json_integer_value(json_object_get(json_object_get(ds, "metadata"),
                                                            "generation")),
                         "updatedNumberScheduled", n, "numberUnavailable", (json_int_t)0));
    json_decref((json_t *)ds);
}

static void namespace_added(struct ks *ks, const char *ns)
{
    const struct kres *sa = R("", "serviceaccounts");
    if (!store_get(ks->store, R("", "namespaces"), NULL, ns) ||
        store_get(ks->store, sa, ns, "default"))
        return;
    json_t *o = json_pack("{s:{s:s,s:s}}", "metadata", "name", "default", "namespace", ns);
    if (!obj_prepare_create(ks, sa, o))
        store_create(ks->store, sa, o);
    else
        json_decref(o);
}

static void run_work(void *arg)
{
    struct work *w = arg;
    struct ks *ks = w->ks;
    if (!ks->stopping) {
        if (w->res->print == KP_DEPLOYMENT)
            reconcile_deployment(ks, w->ns, w->name);
        else if (w->res->print == KP_DAEMONSET)
            reconcile_daemonset(ks, w->ns, w->name);
        else if (w->res->print == KP_NAMESPACE)
            namespace_added(ks, w->name);
    }
    free(w);
}

static void enqueue(struct ks *ks, const struct kres *res, const char *ns, const char *name)
{
    struct work *w = calloc(1, sizeof(*w));
    if (!w)
        return;
    w->ks = ks;
    w->res = res;
    snprintf(w->ns, sizeof(w->ns), "%s", ns);
    snprintf(w->name, sizeof(w->name), "%s", name);
    if (loop_defer(ks->loop, run_work, w) < 0)
        free(w);
}

static void on_change(void *ud, const struct kevent *ev)
{
    struct ks *ks = ud;
    const json_t *o = ev->obj;
    switch (ev->res->print) {
    case KP_DEPLOYMENT:
    case KP_DAEMONSET:
        /* Our own status writes change nothing a reconcile would act on. */
        if (ev->type == KEV_MODIFIED &&
            json_equal(json_object_get(ev->old, "spec"), json_object_get(o, "spec")))
            return;
        enqueue(ks, ev->res, obj_ns(o), obj_name(o));
        break;
    case KP_NAMESPACE:
        if (ev->type == KEV_ADDED)
            enqueue(ks, ev->res, "", obj_name(o));
        break;
    case KP_POD:
        if (ev->type != KEV_DELETED)
            return;
        size_t i;
        json_t *ref;
        json_array_foreach(json_object_get(json_object_get(o, "metadata"), "ownerReferences"),
                           i, ref) {
            const char *kind = obj_str(ref, "kind");
            const struct kres *res = NULL;
            if (kind && strcmp(kind, "Deployment") == 0)
                res = R("apps", "deployments");
            else if (kind && strcmp(kind, "DaemonSet") == 0)
                res = R("apps", "daemonsets");
            if (res && obj_str(ref, "name"))
                enqueue(ks, res, obj_ns(o), obj_str(ref, "name"));
        }
        break;
    default:
        break;
    }
}

int ctl_start(struct ks *ks)
{
    return store_observe(ks->store, on_change, ks);
}
