/*
 * hmap: a string-keyed hash map of pointers (chaining, power-of-two
 * buckets, grows at load 1). Keys are copied; values are the caller's.
 * Used for the server's tunnel registry, which holds tens of thousands of
 * entries and is looked up on every proxied request.
 */
#ifndef DROVER_HMAP_H
#define DROVER_HMAP_H

#include <stddef.h>

struct hmap;

struct hmap *hmap_new(void);
/* Frees the map and its key copies, not the values. NULL is a no-op. */
void hmap_free(struct hmap *m);
void *hmap_get(const struct hmap *m, const char *key);
/* Sets key to val, returning the previous value (or NULL). On ENOMEM
 * returns val itself and leaves the map unchanged. */
void *hmap_put(struct hmap *m, const char *key, void *val);
/* Removes key, returning its value (or NULL). */
void *hmap_del(struct hmap *m, const char *key);
size_t hmap_count(const struct hmap *m);
/* Calls fn for every entry; fn must not change the map. */
void hmap_each(const struct hmap *m, void (*fn)(const char *key, void *val, void *ud),
               void *ud);

#endif
