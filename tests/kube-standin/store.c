/*
 * store: objects and change history of the kube-standin test stand-in.
 * See store.h. A few hundred objects at most live here, so lists are a scan
 * of one hash map and a sort; lookups by name are one hash probe.
 */
#include "tests/kube-standin/store.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/hmap.h"
#include "tests/kube-standin/standin.h"

#define MAX_OBSERVERS 4

struct entry {
    const struct kres *res;
    json_t *obj;
};

struct hist {
    uint64_t rv;
    enum kev_type type;
    const struct kres *res;
    json_t *obj, *old;
};

struct store {
    struct hmap *objs;              /* key() -> struct entry */
    uint64_t rv;
    struct hist *ring;
    size_t cap, head, count;        /* head: index of the oldest */
    uint64_t first_rv;
    struct {
        store_observer fn;
        void *ud;
    } obs[MAX_OBSERVERS];
    size_t nobs;
};

/* Unit separators cannot occur in names, namespaces or resource names. */
static void key(char *out, size_t cap, const struct kres *res, const char *ns,
                const char *name)
{
    /* Cluster-scoped objects have no namespace, whatever the caller passes. */
    snprintf(out, cap, "%s/%s\x1f%s\x1f%s", res->group, res->name,
             res->namespaced && ns ? ns : "", name);
}

struct store *store_new(size_t history_cap, uint64_t first_rv)
{
    struct store *s = calloc(1, sizeof(*s));
    if (!s)
        return NULL;
    s->objs = hmap_new();
    s->cap = history_cap ? history_cap : 1;
    s->ring = calloc(s->cap, sizeof(*s->ring));
    s->rv = first_rv;
    s->first_rv = first_rv;
    if (!s->objs || !s->ring) {
        store_free(s);
        return NULL;
    }
    return s;
}

static void free_entry(const char *k, void *val, void *ud)
{
    (void)k;
    (void)ud;
    struct entry *e = val;
    json_decref(e->obj);
    free(e);
}

void store_free(struct store *s)
{
    if (!s)
        return;
    if (s->objs) {
        hmap_each(s->objs, free_entry, NULL);
        hmap_free(s->objs);
    }
    for (size_t i = 0; s->ring && i < s->count; i++) {
        struct hist *h = &s->ring[(s->head + i) % s->cap];
        json_decref(h->obj);
        json_decref(h->old);
    }
    free(s->ring);
    free(s);
}

int store_observe(struct store *s, store_observer fn, void *ud)
{
    if (s->nobs == MAX_OBSERVERS)
        return -1;
    s->obs[s->nobs].fn = fn;
    s->obs[s->nobs].ud = ud;
    s->nobs++;
    return 0;
}

uint64_t store_rv(const struct store *s)
{
    return s->rv;
}

uint64_t store_oldest_rv(const struct store *s)
{
    if (s->count == 0)
        return s->rv;
    return s->ring[s->head].rv - 1;
}

const json_t *store_get(struct store *s, const struct kres *res, const char *ns,
                        const char *name)
{
    char k[600];
    key(k, sizeof(k), res, ns, name);
    struct entry *e = hmap_get(s->objs, k);
    return e ? e->obj : NULL;
}

struct collect {
    const struct kres *res;
    const char *ns;
    json_t *out;
};

static void collect_one(const char *k, void *val, void *ud)
{
    (void)k;
    struct entry *e = val;
    struct collect *c = ud;
    if (e->res != c->res)
        return;
    if (c->ns && strcmp(obj_ns(e->obj), c->ns) != 0)
        return;
    json_array_append(c->out, e->obj);
}

static int by_ns_name(const void *a, const void *b)
{
    const json_t *x = *(json_t *const *)a, *y = *(json_t *const *)b;
    int c = strcmp(obj_ns(x), obj_ns(y));
    return c ? c : strcmp(obj_name(x), obj_name(y));
}

json_t *store_list(struct store *s, const struct kres *res, const char *ns)
{
    struct collect c = { res, ns, json_array() };
    if (!c.out)
        return NULL;
    hmap_each(s->objs, collect_one, &c);
    size_t n = json_array_size(c.out);
    if (n < 2)
        return c.out;
    json_t **v = malloc(n * sizeof(*v));
    if (!v)
        return c.out;
    for (size_t i = 0; i < n; i++)
        v[i] = json_incref(json_array_get(c.out, i));
    qsort(v, n, sizeof(*v), by_ns_name);
    json_array_clear(c.out);
    for (size_t i = 0; i < n; i++)
        json_array_append_new(c.out, v[i]);
    free(v);
    return c.out;
}

struct ns_scan {
    const char *ns;
    json_t *objs;       /* pairs [res index, obj] */
};

static void scan_ns(const char *k, void *val, void *ud)
{
    (void)k;
    struct entry *e = val;
    struct ns_scan *sc = ud;
    if (e->res->namespaced && strcmp(obj_ns(e->obj), sc->ns) == 0)
        json_array_append_new(sc->objs, json_pack("[IO]",
                                                  (json_int_t)(e->res - kres_table), e->obj));
}

void store_each_in_ns(struct store *s, const char *ns,
                      void (*fn)(void *ud, const struct kres *res, const json_t *obj),
                      void *ud)
{
    /* Collected first: fn deletes, and the map must not change under hmap_each. */
    struct ns_scan sc = { ns, json_array() };
    if (!sc.objs)
        return;
    hmap_each(s->objs, scan_ns, &sc);
    size_t i;
    json_t *pair;
    json_array_foreach(sc.objs, i, pair) {
        const struct kres *res = &kres_table[json_integer_value(json_array_get(pair, 0))];
        fn(ud, res, json_array_get(pair, 1));
    }
    json_decref(sc.objs);
}

/* Records a change in the history and tells the observers. */
static void emit(struct store *s, enum kev_type type, const struct kres *res,
                 json_t *obj, json_t *old)
{
    if (s->count == s->cap) {
        struct hist *h = &s->ring[s->head];
        json_decref(h->obj);
        json_decref(h->old);
        s->head = (s->head + 1) % s->cap;
        s->count--;
    }
    struct hist *h = &s->ring[(s->head + s->count) % s->cap];
    *h = (struct hist){ s->rv, type, res, json_incref(obj), json_incref(old) };
    s->count++;
    struct kevent ev = { s->rv, type, res, obj, old };
    for (size_t i = 0; i < s->nobs; i++)
        s->obs[i].fn(s->obs[i].ud, &ev);
}

static void stamp(struct store *s, json_t *obj)
{
    char rv[24];
    s->rv++;
    snprintf(rv, sizeof(rv), "%llu", (unsigned long long)s->rv);
    json_object_set_new(obj_meta(obj), "resourceVersion", json_string(rv));
}

int store_create(struct store *s, const struct kres *res, json_t *obj)
{
    char k[600];
    key(k, sizeof(k), res, obj_ns(obj), obj_name(obj));
    struct entry *e = malloc(sizeof(*e));
    if (!e || hmap_get(s->objs, k)) {
        free(e);
        json_decref(obj);
        return -1;
    }
    stamp(s, obj);
    e->res = res;
    e->obj = obj;
    if (hmap_put(s->objs, k, e) == e) {
        free(e);
        json_decref(obj);
        return -1;
    }
    emit(s, KEV_ADDED, res, obj, NULL);
    return 0;
}

int store_update(struct store *s, const struct kres *res, json_t *obj)
{
    char k[600];
    key(k, sizeof(k), res, obj_ns(obj), obj_name(obj));
    struct entry *e = hmap_get(s->objs, k);
    if (!e) {
        json_decref(obj);
        return -1;
    }
    stamp(s, obj);
    json_t *old = e->obj;
    e->obj = obj;
    emit(s, KEV_MODIFIED, res, obj, old);
    json_decref(old);
    return 0;
}

int store_delete(struct store *s, const struct kres *res, const char *ns,
                 const char *name, json_t **last)
{
    char k[600];
    key(k, sizeof(k), res, ns, name);
    struct entry *e = hmap_del(s->objs, k);
    if (!e)
        return -1;
    /* The DELETED event carries the last state at the deletion's version. */
    json_t *final = json_deep_copy(e->obj);
    if (!final) {
        final = json_incref(e->obj);
        s->rv++;
    } else {
        stamp(s, final);
    }
    emit(s, KEV_DELETED, res, final, e->obj);
    if (last)
        *last = json_incref(final);
    json_decref(final);
    json_decref(e->obj);
    free(e);
    return 0;
}

int store_since(struct store *s, uint64_t since, store_observer fn, void *ud)
{
    if (since >= s->rv)
        return 0;
    if (since < store_oldest_rv(s))
        return -1;
    for (size_t i = 0; i < s->count; i++) {
        struct hist *h = &s->ring[(s->head + i) % s->cap];
        if (h->rv <= since)
            continue;
        struct kevent ev = { h->rv, h->type, h->res, h->obj, h->old };
        fn(ud, &ev);
    }
    return 0;
}
