/*
 * leases: a controller lease. See leases.h.
 */
#include "server/leases.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "server/store.h"
#include "server/store_peers.h"

#define NAME_MAX_LEN 64

struct lease {
    struct loop *loop;
    struct db_pool *pool;
    char name[NAME_MAX_LEN], holder[NAME_MAX_LEN];
    uint64_t ttl_ms;
    bool held, inflight, stopped, shared;
    uint64_t held_until;        /* loop time we must stop believing we hold it */
    struct loop_timer timer;
    void (*on_change)(void *ud, bool held);
    void *ud;
};

/* One renewal in the pool; it outlives the lease if the pool is freed late. */
struct renew {
    struct lease *ls;           /* NULL once the lease was stopped */
    char name[NAME_MAX_LEN], holder[NAME_MAX_LEN];
    uint64_t ttl_ms, sent_at;
    bool held, release;
};

static void tick(struct loop_timer *t);

struct lease *lease_new(struct loop *l, const char *name, const char *holder,
                        uint64_t ttl_ms, void (*on_change)(void *ud, bool held), void *ud)
{
    struct lease *ls = calloc(1, sizeof(*ls));
    if (!ls)
        return NULL;
    ls->loop = l;
    snprintf(ls->name, sizeof(ls->name), "%s", name);
    snprintf(ls->holder, sizeof(ls->holder), "%s", holder);
    ls->ttl_ms = ttl_ms < 300 ? 300 : ttl_ms;
    ls->on_change = on_change;
    ls->ud = ud;
    return ls;
}

static void set_held(struct lease *ls, bool held)
{
    if (ls->held == held)
        return;
    ls->held = held;
    log_info("lease %s: %s by %s", ls->name, held ? "acquired" : "lost", ls->holder);
    if (ls->on_change)
        ls->on_change(ls->ud, held);
}

static int renew_work(struct db *db, void *arg)
{
    struct renew *r = arg;
    int64_t now = store_now_ms();
    if (r->release)
        return store_lease_release(db, r->name, r->holder);
    return store_lease_acquire(db, r->name, r->holder, now, now + (int64_t)r->ttl_ms,
                               &r->held);
}

static void renew_done(void *arg, int rc)
{
    struct renew *r = arg;
    struct lease *ls = r->ls;
    if (ls && !ls->stopped) {
        ls->inflight = false;
        if (rc == 0 && r->held)
            ls->held_until = r->sent_at + ls->ttl_ms * 2 / 3;
        if (rc == 0)
            set_held(ls, r->held);
        else if (rc != DB_CANCELLED)
            log_warn("lease %s: cannot renew: %s", ls->name, db_code_str(rc));
        if (ls->held && loop_now_ms(ls->loop) >= ls->held_until)
            set_held(ls, false);
    }
    free(r);
}

static void submit(struct lease *ls, bool release)
{
    struct renew *r = calloc(1, sizeof(*r));
    if (!r)
        return;
    r->ls = release ? NULL : ls;
    snprintf(r->name, sizeof(r->name), "%s", ls->name);
    snprintf(r->holder, sizeof(r->holder), "%s", ls->holder);
    r->ttl_ms = ls->ttl_ms;
    r->sent_at = loop_now_ms(ls->loop);
    r->release = release;
    if (db_pool_submit(ls->pool, renew_work, renew_done, r) < 0) {
        free(r);
        return;
    }
    if (!release)
        ls->inflight = true;
}

static void tick(struct loop_timer *t)
{
    struct lease *ls = (struct lease *)((char *)t - offsetof(struct lease, timer));
    if (ls->held && loop_now_ms(ls->loop) >= ls->held_until)
        set_held(ls, false);    /* renewals failed for too long */
    if (!ls->inflight)
        submit(ls, false);
    loop_timer_start(ls->loop, &ls->timer, ls->ttl_ms / 3, tick);
}

void lease_start(struct lease *ls, struct db_pool *pool, bool shared)
{
    ls->pool = pool;
    ls->shared = shared;
    if (!shared) {
        set_held(ls, true);
        return;
    }
    tick(&ls->timer);
}

bool lease_held(const struct lease *ls)
{
    return ls && ls->held;
}

void lease_stop(struct lease *ls)
{
    if (!ls || ls->stopped)
        return;
    ls->stopped = true;
    loop_timer_stop(ls->loop, &ls->timer);
    if (ls->shared && ls->held && ls->pool)
        submit(ls, true);
    ls->held = false;
}

void lease_free(struct lease *ls)
{
    if (!ls)
        return;
    loop_timer_stop(ls->loop, &ls->timer);
    free(ls);
}
