/*
 * throttle: failed-login bookkeeping. See throttle.h.
 */
#include "server/throttle.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/hmap.h"

#define KEY_MAX 300

struct entry {
    unsigned count;
    uint64_t last_ms;
};

struct throttle {
    struct hmap *m;         /* "u:<name>" / "a:<addr>" -> struct entry */
    size_t max_keys;
    uint64_t forget_ms;
};

struct throttle *throttle_new(size_t max_keys, uint64_t forget_ms)
{
    struct throttle *t = calloc(1, sizeof(*t));
    if (!t || !(t->m = hmap_new())) {
        free(t);
        return NULL;
    }
    t->max_keys = max_keys ? max_keys : 10000;
    t->forget_ms = forget_ms ? forget_ms : 15 * 60 * 1000;
    return t;
}

static void free_entry(const char *key, void *val, void *ud)
{
    (void)key;
    (void)ud;
    free(val);
}

void throttle_free(struct throttle *t)
{
    if (!t)
        return;
    hmap_each(t->m, free_entry, NULL);
    hmap_free(t->m);
    free(t);
}

uint64_t throttle_delay(unsigned count)
{
    if (count == 0)
        return 0;
    uint64_t d = 250;
    for (unsigned i = 1; i < count && d < THROTTLE_MAX_DELAY_MS; i++)
        d *= 2;
    return d < THROTTLE_MAX_DELAY_MS ? d : THROTTLE_MAX_DELAY_MS;
}

struct sweep {
    struct throttle *t;
    uint64_t now;
    char **keys;
    size_t n, cap;
};

static void find_stale(const char *key, void *val, void *ud)
{
    struct sweep *s = ud;
    struct entry *e = val;
    if (s->now - e->last_ms >= s->t->forget_ms && s->n < s->cap)
        s->keys[s->n++] = strdup(key);
}

/* Drops forgotten entries; runs only when the table is full, so its cost is
 * spread over many failures. */
static void sweep(struct throttle *t, uint64_t now)
{
    struct sweep s = { .t = t, .now = now, .cap = hmap_count(t->m) };
    s.keys = calloc(s.cap ? s.cap : 1, sizeof(*s.keys));
    if (!s.keys)
        return;
    hmap_each(t->m, find_stale, &s);
    for (size_t i = 0; i < s.n; i++) {
        if (s.keys[i])
            free(hmap_del(t->m, s.keys[i]));
        free(s.keys[i]);
    }
    free(s.keys);
}

/* Counts one failure for "<kind>:<name>"; returns the new count. */
static unsigned bump(struct throttle *t, char kind, const char *name, uint64_t now)
{
    char key[KEY_MAX];
    snprintf(key, sizeof(key), "%c:%s", kind, name);
    struct entry *e = hmap_get(t->m, key);
    if (e) {
        if (now - e->last_ms >= t->forget_ms)
            e->count = 0;
    } else {
        if (hmap_count(t->m) >= t->max_keys)
            sweep(t, now);
        if (hmap_count(t->m) >= t->max_keys || !(e = calloc(1, sizeof(*e))))
            return 1000;    /* full of live entries: the longest delay */
        if (hmap_put(t->m, key, e) == e) {
            free(e);
            return 1000;
        }
    }
    e->last_ms = now;
    if (e->count < 1000)
        e->count++;
    return e->count;
}

uint64_t throttle_fail(struct throttle *t, const char *user, const char *addr,
                       uint64_t now_ms)
{
    unsigned nu = user ? bump(t, 'u', user, now_ms) : 0;
    unsigned na = addr ? bump(t, 'a', addr, now_ms) : 0;
    return throttle_delay(nu > na ? nu : na);
}

static uint64_t wait_for(const struct throttle *t, char kind, const char *name,
                         uint64_t now)
{
    char key[KEY_MAX];
    snprintf(key, sizeof(key), "%c:%s", kind, name);
    const struct entry *e = hmap_get(t->m, key);
    if (!e || !e->count || now - e->last_ms >= t->forget_ms)
        return 0;
    uint64_t until = e->last_ms + throttle_delay(e->count);
    return until > now ? until - now : 0;
}

uint64_t throttle_wait(const struct throttle *t, const char *user, const char *addr,
                       uint64_t now_ms)
{
    uint64_t wu = user ? wait_for(t, 'u', user, now_ms) : 0;
    uint64_t wa = addr ? wait_for(t, 'a', addr, now_ms) : 0;
    return wu > wa ? wu : wa;
}

void throttle_success(struct throttle *t, const char *user)
{
    char key[KEY_MAX];
    snprintf(key, sizeof(key), "u:%s", user);
    free(hmap_del(t->m, key));
}

size_t throttle_size(const struct throttle *t)
{
    return hmap_count(t->m);
}
