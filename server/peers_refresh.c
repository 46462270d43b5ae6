/*
 * peers_refresh: the replicas' heartbeat. Every TICK_MS it renews this
 * replica's lease and reads back, in one pool job, the live replicas and
 * the preferred holder of each cluster's link; then it dials replicas that
 * joined, drops those whose lease ran out, replaces the owners map and has
 * the tunnels recheck who carries each cluster. The controllers' lease
 * holder also reaps, every REAP_EVERY ticks, the links of replicas gone.
 * Owns p->members' membership and p->owners. See peers.h and peers_int.h.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "server/peers_int.h"
#include "server/store.h"
#include "server/store_peers.h"

#define TICK_MS         1000
#define REAP_EVERY      3           /* ticks */
/* Refresh results larger than this are cut (and logged): a bound on what
 * one heartbeat may allocate. */
#define MAX_ROWS        1000000


struct row {
    char *a, *b;
    bool agent;
};

struct refresh {
    struct peers *p;
    char id[PEERS_ID_MAX + 1], url[URL_MAX];
    int64_t lease_ms;
    struct row *live, *owners;
    size_t nlive, nowners, cap_live, cap_owners;
    char last_cluster[PEERS_ID_MAX + 1];
    bool cut;
};

static int push(struct row **rows, size_t *n, size_t *cap, const char *a, const char *b,
                bool *cut)
{
    if (*n >= MAX_ROWS) {
        *cut = true;
        return 0;
    }
    if (*n == *cap) {
        size_t nc = *cap ? *cap * 2 : 64;
        struct row *r = realloc(*rows, nc * sizeof(*r));
        if (!r)
            return DB_ERROR;
        *rows = r;
        *cap = nc;
    }
    struct row *r = &(*rows)[*n];
    r->a = strdup(a ? a : "");
    r->b = strdup(b ? b : "");
    if (!r->a || !r->b) {
        free(r->a);
        free(r->b);
        return DB_ERROR;
    }
    (*n)++;
    return 0;
}

static int on_live(void *ud, const char *id, const char *url)
{
    struct refresh *f = ud;
    return push(&f->live, &f->nlive, &f->cap_live, id, url, &f->cut);
}

/* Rows come preferred-first per cluster: keep the first of each. */
static int on_owner(void *ud, const char *cluster, const char *peer, const char *kind)
{
    struct refresh *f = ud;
    if (strcmp(cluster, f->last_cluster) == 0)
        return 0;
    snprintf(f->last_cluster, sizeof(f->last_cluster), "%s", cluster);
    size_t n = f->nowners;
    int rc = push(&f->owners, &f->nowners, &f->cap_owners, cluster, peer, &f->cut);
    if (rc == 0 && f->nowners > n)
        f->owners[n].agent = kind && strcmp(kind, "cluster-agent") == 0;
    return rc;
}

static int refresh_work(struct db *db, void *arg)
{
    struct refresh *f = arg;
    int64_t now = store_now_ms();
    int rc = store_peer_heartbeat(db, f->id, f->url, now, now + f->lease_ms);
    if (rc == 0)
        rc = store_peers_live(db, now, on_live, f);
    if (rc == 0)
        rc = store_peer_owners(db, now, on_owner, f);
    return rc;
}

static void free_rows(struct row *rows, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(rows[i].a);
        free(rows[i].b);
    }
    free(rows);
}

static void refresh_free(struct refresh *f)
{
    free_rows(f->live, f->nlive);
    free_rows(f->owners, f->nowners);
    free(f);
}

static void unsee(const char *key, void *val, void *ud)
{
    (void)key;
    (void)ud;
    ((struct member *)val)->seen = false;
}

struct sweep {
    char **gone;
    size_t n;
};

static void collect_unseen(const char *key, void *val, void *ud)
{
    (void)key;
    struct sweep *s = ud;
    if (!((struct member *)val)->seen)
        s->gone[s->n++] = ((struct member *)val)->id;
}

static void apply_members(struct peers *p, const struct refresh *f)
{
    hmap_each(p->members, unsee, NULL);
    for (size_t i = 0; i < f->nlive; i++) {
        const char *id = f->live[i].a, *url = f->live[i].b;
        if (strcmp(id, p->id) == 0)
            continue;
        struct member *m = hmap_get(p->members, id);
        if (m && strcmp(m->url, url) != 0) {
            hmap_del(p->members, id);
            pe_member_free(m);
            m = NULL;
        }
        if (!m) {
            if (strlen(id) > PEERS_ID_MAX || strlen(url) >= URL_MAX ||
                !(m = calloc(1, sizeof(*m))))
                continue;
            m->p = p;
            snprintf(m->id, sizeof(m->id), "%s", id);
            snprintf(m->url, sizeof(m->url), "%s", url);
            backoff_init(&m->bo, 200, 5000);
            if (hmap_put(p->members, m->id, m) == m) {
                free(m);
                continue;
            }
            log_info("peer %s: joined (%s)", m->id, m->url);
            pe_dial(m);
        }
        m->seen = true;
    }
    struct sweep s = { .gone = calloc(hmap_count(p->members) + 1, sizeof(char *)) };
    if (!s.gone)
        return;
    hmap_each(p->members, collect_unseen, &s);
    for (size_t i = 0; i < s.n; i++) {
        struct member *m = hmap_del(p->members, s.gone[i]);
        if (m) {
            log_info("peer %s: its lease ran out; dropping the link", m->id);
            pe_member_free(m);
        }
    }
    free(s.gone);
}

void pe_free_owner(const char *key, void *val, void *ud)
{
    (void)key;
    (void)ud;
    free(val);
}

static void apply_owners(struct peers *p, const struct refresh *f)
{
    struct hmap *m = hmap_new();
    if (!m)
        return;
    for (size_t i = 0; i < f->nowners; i++) {
        size_t len = strlen(f->owners[i].b);
        struct owner *o = malloc(sizeof(*o) + len + 1);
        if (!o)
            continue;
        o->agent = f->owners[i].agent;
        memcpy(o->peer, f->owners[i].b, len + 1);
        if (hmap_put(m, f->owners[i].a, o) == o)
            free(o);
    }
    hmap_each(p->owners, pe_free_owner, NULL);
    hmap_free(p->owners);
    p->owners = m;
}

static void refresh_done(void *arg, int rc)
{
    struct refresh *f = arg;
    struct peers *p = f->p;
    p->inflight = false;
    if (rc == 0) {
        if (f->cut)
            log_warn("replicas: refresh cut at %d rows", MAX_ROWS);
        apply_members(p, f);
        apply_owners(p, f);
        tunnels_recheck(p->ts);
    } else if (rc < 0 && rc != DB_CANCELLED) {
        log_warn("replicas: heartbeat failed: %s", db_code_str(rc));
    }
    refresh_free(f);
}

static int reap_work(struct db *db, void *arg)
{
    int64_t changed = 0;
    int rc = store_peer_reap(db, store_now_ms(), &changed);
    *(int64_t *)arg = changed;
    return rc;
}

static void reap_done(void *arg, int rc)
{
    int64_t *changed = arg;
    if (rc == 0 && *changed > 0)
        log_info("replicas: %lld cluster(s) marked disconnected: no live replica holds "
                 "their link", (long long)*changed);
    free(changed);
}

static void reap(struct peers *p)
{
    int64_t *changed = calloc(1, sizeof(*changed));
    if (changed && db_pool_submit(p->pool, reap_work, reap_done, changed) < 0)
        free(changed);
}

void pe_on_tick(struct loop_timer *t)
{
    struct peers *p = (struct peers *)((char *)t - offsetof(struct peers, tick));
    loop_timer_start(p->loop, &p->tick, TICK_MS, pe_on_tick);
    if (p->controller && ++p->ticks % REAP_EVERY == 0)
        reap(p);
    if (p->inflight)
        return;
    struct refresh *f = calloc(1, sizeof(*f));
    if (!f)
        return;
    f->p = p;
    snprintf(f->id, sizeof(f->id), "%s", p->id);
    snprintf(f->url, sizeof(f->url), "%s", p->url);
    f->lease_ms = (int64_t)p->cfg.lease_ms;
    if (db_pool_submit(p->pool, refresh_work, refresh_done, f) < 0) {
        free(f);
        return;
    }
    p->inflight = true;
}
