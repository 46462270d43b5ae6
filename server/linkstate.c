/*
 * linkstate: coalescing writer of tunnel state. See linkstate.h.
 *
 * An entry is in one of three places: the FIFO (waiting for a write slot),
 * in flight (its write is in the pool; `dirty` notes a change since), or
 * gone (written and unchanged: freed).
 */
#include "server/linkstate.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/hmap.h"
#include "common/log.h"
#include "server/store.h"
#include "server/store_peers.h"

#define RETRY_MS 1000
#define ID_MAX 64
#define VIA_MAX 80

struct ls_entry {
    char id[ID_MAX];
    char via[VIA_MAX];
    bool has_via, queued, inflight, dirty;
    int64_t since;
    struct ls_entry *next;      /* FIFO */
};

struct linkstate {
    struct loop *loop;
    struct db_pool *pool;
    struct hmap *entries;       /* cluster id -> struct ls_entry */
    struct ls_entry *head, *tail;
    unsigned inflight;
    struct loop_timer retry;
    char replica[ID_MAX];       /* "" on a single server */
    void (*on_claim)(void *ud, const char *cluster, const char *via, bool granted);
    void *claim_ud;
};

/* What one write carries: a copy, since the entry may change meanwhile. */
struct ls_write {
    struct linkstate *ls;
    struct ls_entry *e;
    char id[ID_MAX], via[VIA_MAX], replica[ID_MAX];
    bool has_via, granted;
    int64_t since;
};

static void pump(struct linkstate *ls);

struct linkstate *linkstate_new(struct loop *l, struct db_pool *pool)
{
    struct linkstate *ls = calloc(1, sizeof(*ls));
    if (!ls || !(ls->entries = hmap_new())) {
        free(ls);
        return NULL;
    }
    ls->loop = l;
    ls->pool = pool;
    return ls;
}

static void free_entry(const char *key, void *val, void *ud)
{
    (void)key;
    (void)ud;
    free(val);
}

void linkstate_free(struct linkstate *ls)
{
    if (!ls)
        return;
    loop_timer_stop(ls->loop, &ls->retry);
    hmap_each(ls->entries, free_entry, NULL);
    hmap_free(ls->entries);
    free(ls);
}

size_t linkstate_pending(const struct linkstate *ls)
{
    return hmap_count(ls->entries);
}

static void enqueue(struct linkstate *ls, struct ls_entry *e, bool front)
{
    e->queued = true;
    e->next = NULL;
    if (front) {
        e->next = ls->head;
        ls->head = e;
        if (!ls->tail)
            ls->tail = e;
    } else {
        if (ls->tail)
            ls->tail->next = e;
        else
            ls->head = e;
        ls->tail = e;
    }
}

static struct ls_entry *dequeue(struct linkstate *ls)
{
    struct ls_entry *e = ls->head;
    if (e) {
        ls->head = e->next;
        if (!ls->head)
            ls->tail = NULL;
        e->queued = false;
    }
    return e;
}

void linkstate_set_replica(struct linkstate *ls, const char *peer_id)
{
    snprintf(ls->replica, sizeof(ls->replica), "%s", peer_id ? peer_id : "");
}

void linkstate_set_claim_hook(struct linkstate *ls,
                              void (*fn)(void *ud, const char *cluster, const char *via,
                                         bool granted),
                              void *ud)
{
    ls->on_claim = fn;
    ls->claim_ud = ud;
}

void linkstate_set(struct linkstate *ls, const char *cluster, const char *via)
{
    struct ls_entry *e = hmap_get(ls->entries, cluster);
    if (!e) {
        e = calloc(1, sizeof(*e));
        if (!e || hmap_put(ls->entries, cluster, e) == e) {
            free(e);
            log_warn("cluster %s: out of memory recording its link state", cluster);
            return;
        }
        snprintf(e->id, sizeof(e->id), "%s", cluster);
    }
    e->has_via = via != NULL;
    snprintf(e->via, sizeof(e->via), "%s", via ? via : "");
    e->since = store_now_ms();
    if (e->inflight)
        e->dirty = true;
    else if (!e->queued)
        enqueue(ls, e, false);
    pump(ls);
}

const char *linkstate_state(const char *via)
{
    if (!via)
        return "disconnected";
    /* A node agent standing in: reachable, but not as it should be. */
    return strncmp(via, "node/", 5) == 0 ? "degraded" : "active";
}

static int write_work(struct db *db, void *arg)
{
    struct ls_write *w = arg;
    if (w->replica[0])
        return store_peer_set_link(db, w->replica, w->id, w->has_via ? w->via : NULL,
                                   w->since, store_now_ms(), &w->granted);
    /* lastSeen is "now" both ways: up, the agent is talking to us; down,
     * this is the last moment we heard from it. */
    return store_cluster_set_link(db, w->id, linkstate_state(w->has_via ? w->via : NULL),
                                  w->has_via ? w->via : NULL, w->since, store_now_ms());
}

static void on_retry(struct loop_timer *t)
{
    pump((struct linkstate *)((char *)t - offsetof(struct linkstate, retry)));
}

static void write_done(void *arg, int rc)
{
    struct ls_write *w = arg;
    struct linkstate *ls = w->ls;
    struct ls_entry *e = w->e;
    /* A claim's answer, unless a newer change overtook it (then it is stale
     * and the newer write follows). */
    bool claim = rc == 0 && !e->dirty && w->replica[0] && w->has_via &&
                 strncmp(w->via, "node/", 5) == 0 && ls->on_claim;
    char id[ID_MAX], via[VIA_MAX];
    bool granted = w->granted;
    memcpy(id, w->id, sizeof(id));
    memcpy(via, w->via, sizeof(via));
    free(w);
    ls->inflight--;
    e->inflight = false;
    bool failed = rc < 0 && rc != DB_CANCELLED;
    if (failed)
        log_warn("cluster %s: cannot record its link state: %s (will retry)", e->id,
                 db_code_str(rc));
    if (e->dirty || failed) {
        e->dirty = false;
        enqueue(ls, e, false);
    } else {
        hmap_del(ls->entries, e->id);
        free(e);
    }
    if (failed || rc == DB_CANCELLED) {
        if (rc != DB_CANCELLED)
            loop_timer_start(ls->loop, &ls->retry, RETRY_MS, on_retry);
        return;
    }
    pump(ls);
    if (claim)
        ls->on_claim(ls->claim_ud, id, via, granted);
}

static void pump(struct linkstate *ls)
{
    if (loop_timer_armed(&ls->retry))
        return;     /* the datastore pushed back: wait for the timer */
    while (ls->inflight < LINKSTATE_INFLIGHT && ls->head) {
        struct ls_entry *e = dequeue(ls);
        struct ls_write *w = malloc(sizeof(*w));
        int rc = DB_ERROR;
        if (w) {
            *w = (struct ls_write){ .ls = ls, .e = e, .has_via = e->has_via,
                                    .since = e->since };
            snprintf(w->id, sizeof(w->id), "%s", e->id);
            snprintf(w->via, sizeof(w->via), "%s", e->via);
            snprintf(w->replica, sizeof(w->replica), "%s", ls->replica);
            rc = db_pool_submit(ls->pool, write_work, write_done, w);
        }
        if (rc < 0) {
            free(w);
            enqueue(ls, e, true);
            if (rc != DB_CANCELLED)
                loop_timer_start(ls->loop, &ls->retry, RETRY_MS / 5, on_retry);
            return;
        }
        e->inflight = true;
        ls->inflight++;
    }
}
