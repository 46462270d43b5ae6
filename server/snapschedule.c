/*
 * snapschedule: scheduled etcd snapshots and retention. See snapschedule.h.
 */
#include "server/snapschedule.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "server/store.h"
#include "server/store_snapshots.h"

#define DUE_MAX 256         /* clusters started per tick */
#define FORGET_MAX 64
#define SWEEP_MS 3000       /* tasks of dead replicas are looked for this often */

struct snapschedule {
    struct loop *loop;
    struct snapshots *sn;
    struct db_pool *pool;
    uint64_t unit_ms;
    bool leader, ticking, scanning;
    unsigned jobs;
    int64_t last_sweep;
    struct loop_timer tick;
};

int64_t snapschedule_due(int64_t last_ms, int64_t interval_units, uint64_t unit_ms,
                         int64_t now_ms)
{
    if (interval_units <= 0)
        return INT64_MAX;
    if (last_ms < 0)
        return now_ms;
    int64_t due = last_ms + interval_units * (int64_t)unit_ms;
    return due < now_ms ? now_ms : due;
}

uint64_t snapschedule_tick_ms(uint64_t unit_ms)
{
    uint64_t t = unit_ms / 6;
    return t < 100 ? 100 : t > 10000 ? 10000 : t;
}

/* ---- the scan ---- */

struct scan {
    struct snapschedule *ss;
    int64_t now;
    size_t n;
    char due[DUE_MAX][STORE_ID_MAX];
};

static int scan_row(void *ud, const struct store_snap_due *d)
{
    struct scan *sc = ud;
    if (d->in_progress || sc->n == DUE_MAX)
        return 0;
    if (snapschedule_due(d->last_created, d->interval_min, sc->ss->unit_ms, sc->now) <= sc->now)
        snprintf(sc->due[sc->n++], STORE_ID_MAX, "%s", d->cluster_id);
    return 0;
}

static int scan_work(struct db *db, void *arg)
{
    struct scan *sc = arg;
    return store_snapshot_schedules(db, scan_row, sc);
}

static void created(void *ud, int status, const char *sid, const char *msg)
{
    char *cluster = ud;
    if (status == 202)
        log_info("scheduled snapshot %s of cluster %s started", sid, cluster);
    else
        log_debug("scheduled snapshot of cluster %s not taken now: %s", cluster, msg);
    free(cluster);
}

static void schedule_next(struct snapschedule *ss);

static void scan_done(void *arg, int rc)
{
    struct scan *sc = arg;
    struct snapschedule *ss = sc->ss;
    ss->jobs--;
    ss->scanning = false;
    if (rc < 0 && rc != DB_CANCELLED)
        log_warn("snapshot schedules: cannot read them: %s", db_code_str(rc));
    for (size_t i = 0; rc >= 0 && ss->leader && ss->pool && i < sc->n; i++) {
        if (snapshots_busy(ss->sn, sc->due[i]))
            continue;
        char *cluster = strdup(sc->due[i]);
        if (cluster)
            snapshots_create(ss->sn, cluster, NULL, true, created, cluster);
    }
    free(sc);
    schedule_next(ss);
}

static void on_tick(struct loop_timer *t)
{
    struct snapschedule *ss = (struct snapschedule *)((char *)t -
                                                      offsetof(struct snapschedule, tick));
    if (!ss->pool || !ss->leader || ss->scanning) {
        schedule_next(ss);
        return;
    }
    /* A task of a replica that died stays "running" (and its schedule held
     * back) until marked failed here. */
    int64_t now = store_now_ms();
    if (now - ss->last_sweep >= SWEEP_MS) {
        ss->last_sweep = now;
        snapshots_sweep(ss->sn);
    }
    struct scan *sc = calloc(1, sizeof(*sc));
    if (!sc) {
        schedule_next(ss);
        return;
    }
    sc->ss = ss;
    sc->now = now;
    if (db_pool_submit_read(ss->pool, scan_work, scan_done, sc) < 0) {
        free(sc);
        schedule_next(ss);
        return;
    }
    ss->jobs++;
    ss->scanning = true;
}

static void schedule_next(struct snapschedule *ss)
{
    if (ss->pool)
        loop_timer_start(ss->loop, &ss->tick, snapschedule_tick_ms(ss->unit_ms), on_tick);
}

/* ---- retention ---- */

struct prune {
    struct snapschedule *ss;
    char cluster[STORE_ID_MAX];
    size_t n;
    char ids[FORGET_MAX][32], nodes[FORGET_MAX][STORE_NAME_MAX + 1];
};

static int prune_one(void *ud, const char *id, const char *node)
{
    struct prune *p = ud;
    if (p->n == FORGET_MAX)
        return -1;      /* the rest waits for the next prune */
    snprintf(p->ids[p->n], sizeof(p->ids[0]), "%s", id);
    snprintf(p->nodes[p->n++], sizeof(p->nodes[0]), "%s", node);
    return 0;
}

static int prune_work(struct db *db, void *arg)
{
    struct prune *p = arg;
    int64_t retention = 0;
    int rc = db_query_int64(db, "SELECT etcd_snapshot_retention FROM clusters WHERE id = ?",
                            DB_ARGS(DB_TEXT(p->cluster)), &retention);
    if (rc < 0)
        return rc;
    return store_snapshots_prune(db, p->cluster, retention < 1 ? 1 : retention, prune_one, p);
}

static void prune_done(void *arg, int rc)
{
    struct prune *p = arg;
    p->ss->jobs--;
    if (rc < 0 && rc != DB_NOTFOUND && rc != DB_CANCELLED)
        log_warn("snapshot retention of cluster %s: %s", p->cluster, db_code_str(rc));
    for (size_t i = 0; i < p->n; i++) {
        log_info("snapshot %s of cluster %s: beyond retention, deleted", p->ids[i], p->cluster);
        if (p->ss->pool)
            snapshots_forget(p->ss->sn, p->cluster, p->nodes[i], p->ids[i]);
    }
    free(p);
}

void snapschedule_finished(struct snapschedule *ss, const char *cluster, bool scheduled)
{
    if (!scheduled || !ss->pool || !ss->leader)
        return;
    struct prune *p = calloc(1, sizeof(*p));
    if (!p)
        return;
    p->ss = ss;
    snprintf(p->cluster, sizeof(p->cluster), "%s", cluster);
    if (db_pool_submit(ss->pool, prune_work, prune_done, p) < 0) {
        free(p);
        return;
    }
    ss->jobs++;
}

/* ---- setup ---- */

struct snapschedule *snapschedule_new(struct loop *l, struct snapshots *sn, uint64_t unit_ms)
{
    struct snapschedule *ss = calloc(1, sizeof(*ss));
    if (!ss)
        return NULL;
    ss->loop = l;
    ss->sn = sn;
    ss->unit_ms = unit_ms ? unit_ms : 60000;
    ss->leader = true;
    return ss;
}

void snapschedule_set_pool(struct snapschedule *ss, struct db_pool *pool)
{
    ss->pool = pool;
    if (!pool)
        loop_timer_stop(ss->loop, &ss->tick);
    else if (!loop_timer_armed(&ss->tick) && !ss->scanning)
        loop_timer_start(ss->loop, &ss->tick, snapschedule_tick_ms(ss->unit_ms), on_tick);
}

void snapschedule_set_leader(struct snapschedule *ss, bool leader)
{
    if (ss->leader != leader)
        log_info("snapshot schedules: this replica %s", leader ? "runs them" : "stands by");
    ss->leader = leader;
}

void snapschedule_free(struct snapschedule *ss)
{
    if (!ss)
        return;
    loop_timer_stop(ss->loop, &ss->tick);
    free(ss);
}
