/*
 * hmap: string -> pointer map. See hmap.h.
 */
#include "common/hmap.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

struct hent {
    struct hent *next;
    uint64_t hash;
    void *val;
    char key[];
};

struct hmap {
    struct hent **b;
    size_t nb, count;
};

static uint64_t hash_str(const char *s)
{
    uint64_t h = 1469598103934665603ULL;    /* FNV-1a */
    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h *= 1099511628211ULL;
    }
    return h;
}

struct hmap *hmap_new(void)
{
    return calloc(1, sizeof(struct hmap));
}

void hmap_free(struct hmap *m)
{
    if (!m)
        return;
    for (size_t i = 0; i < m->nb; i++) {
        struct hent *e = m->b[i];
        while (e) {
            struct hent *n = e->next;
            free(e);
            e = n;
        }
    }
    free(m->b);
    free(m);
}

static struct hent **slot(const struct hmap *m, const char *key, uint64_t h)
{
    struct hent **pp = &m->b[h & (m->nb - 1)];
    while (*pp && ((*pp)->hash != h || strcmp((*pp)->key, key) != 0))
        pp = &(*pp)->next;
    return pp;
}

void *hmap_get(const struct hmap *m, const char *key)
{
    if (m->nb == 0)
        return NULL;
    struct hent *e = *slot(m, key, hash_str(key));
    return e ? e->val : NULL;
}

static int grow(struct hmap *m)
{
    size_t nb = m->nb ? m->nb * 2 : 16;
    struct hent **b = calloc(nb, sizeof(*b));
    if (!b)
        return -1;
    for (size_t i = 0; i < m->nb; i++) {
        struct hent *e = m->b[i];
        while (e) {
            struct hent *n = e->next;
            e->next = b[e->hash & (nb - 1)];
            b[e->hash & (nb - 1)] = e;
            e = n;
        }
    }
    free(m->b);
    m->b = b;
    m->nb = nb;
    return 0;
}

void *hmap_put(struct hmap *m, const char *key, void *val)
{
    if (m->count >= m->nb && grow(m) < 0)
        return val;
    uint64_t h = hash_str(key);
    struct hent **pp = slot(m, key, h);
    if (*pp) {
        void *old = (*pp)->val;
        (*pp)->val = val;
        return old;
    }
    size_t kl = strlen(key);
    struct hent *e = malloc(sizeof(*e) + kl + 1);
    if (!e)
        return val;
    e->next = NULL;
    e->hash = h;
    e->val = val;
    memcpy(e->key, key, kl + 1);
    *pp = e;
    m->count++;
    return NULL;
}

void *hmap_del(struct hmap *m, const char *key)
{
    if (m->nb == 0)
        return NULL;
    struct hent **pp = slot(m, key, hash_str(key));
    struct hent *e = *pp;
    if (!e)
        return NULL;
    void *v = e->val;
    *pp = e->next;
    free(e);
    m->count--;
    return v;
}

size_t hmap_count(const struct hmap *m)
{
    return m->count;
}

void hmap_each(const struct hmap *m, void (*fn)(const char *key, void *val, void *ud),
               void *ud)
{
    for (size_t i = 0; i < m->nb; i++)
        for (struct hent *e = m->b[i]; e; e = e->next)
            fn(e->key, e->val, ud);
}
