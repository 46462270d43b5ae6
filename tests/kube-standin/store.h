/*
 * store: the in-memory object store of the kube-standin test stand-in.
 *
 * Objects are JSON documents that are never changed once stored: a change
 * replaces the object, so the watch history and a list being written out can
 * hold references instead of copies. Every change takes the next value of one
 * global resourceVersion counter (etcd's revision, in the real thing) and is
 * kept in a bounded history so a watch can resume from a resourceVersion.
 * Observers (the watch hub, the controllers) hear of each change once it is
 * stored.
 */
#ifndef KUBE_STANDIN_STORE_H
#define KUBE_STANDIN_STORE_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct kres;
struct store;

enum kev_type { KEV_ADDED, KEV_MODIFIED, KEV_DELETED };

struct kevent {
    uint64_t rv;
    enum kev_type type;
    const struct kres *res;
    const json_t *obj;      /* the new state; for DELETED the last one, at the deletion's rv */
    const json_t *old;      /* the previous state (NULL for ADDED) */
};

typedef void (*store_observer)(void *ud, const struct kevent *ev);

/* history_cap: how many changes a watch can resume across. NULL on ENOMEM. */
struct store *store_new(size_t history_cap, uint64_t first_rv);
void store_free(struct store *s);
/* Up to 4 observers, called in registration order. 0 or -1. */
int store_observe(struct store *s, store_observer fn, void *ud);
uint64_t store_rv(const struct store *s);

/* Borrowed; valid until the object changes. NULL if absent. */
const json_t *store_get(struct store *s, const struct kres *res, const char *ns,
                        const char *name);
/* A new array of the objects of res in ns (NULL: every namespace), sorted by
 * namespace then name. */
json_t *store_list(struct store *s, const struct kres *res, const char *ns);
/* Every namespaced object in ns, of every resource (for namespace deletion):
 * calls fn with each; fn may delete the object it is given. */
void store_each_in_ns(struct store *s, const char *ns,
                      void (*fn)(void *ud, const struct kres *res, const json_t *obj),
                      void *ud);

/* Each takes ownership of obj and sets its metadata.resourceVersion.
 * store_create: -1 if the object exists (obj freed). store_update: -1 if it
 * does not. */
int store_create(struct store *s, const struct kres *res, json_t *obj);
int store_update(struct store *s, const struct kres *res, json_t *obj);
/* -1 if absent. *last (optional) gets a new reference to the final state. */
int store_delete(struct store *s, const struct kres *res, const char *ns,
                 const char *name, json_t **last);

/* Calls fn for each kept change after rv since, oldest first. -1 if changes
 * after since have already left the history (the watch is too old). */
int store_since(struct store *s, uint64_t since, store_observer fn, void *ud);
/* The oldest resourceVersion a watch may still start from. */
uint64_t store_oldest_rv(const struct store *s);

#endif
