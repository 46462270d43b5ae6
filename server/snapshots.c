/*
 * snapshots: the lifecycle of the snapshot service (new, set_pool with the
 * start-up fix-up of what a previous run left unfinished, the sweep of dead
 * replicas' tasks, free), the pool job and answer-line helpers that the take
 * and restore paths share (snapshots_int.h), and forgetting a node's copy.
 * Taking is in snapshots_take.c, restoring in snapshots_restore.c. See
 * snapshots.h; the wire format is docs/PROTOCOL.md §11.
 */
#include "server/snapshots.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/log.h"
#include "server/snapshots_int.h"
#include "server/store.h"
#include "server/store_snapshots.h"

ssize_t snap_head_feed(struct head *h, const uint8_t *p, size_t n)
{
    const uint8_t *nl = memchr(p, '\n', n);
    size_t take = nl ? (size_t)(nl - p) + 1 : n;
    if (take > HEAD_MAX - 1 - h->len)
        return -1;
    memcpy(h->buf + h->len, p, take);
    h->len += take;
    h->buf[h->len] = '\0';
    h->done = nl != NULL;
    return (ssize_t)take;
}

json_t *snap_json_time(int64_t ms)
{
    time_t secs = (time_t)(ms / 1000);
    struct tm tm;
    char buf[40];
    if (ms < 0 || !gmtime_r(&secs, &tm) ||
        strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%S", &tm) == 0)
        return json_null();
    size_t n = strlen(buf);
    snprintf(buf + n, sizeof(buf) - n, ".%03dZ", (int)(ms % 1000));
    return json_string(buf);
}

/* ---- pool jobs ---- */

static int job_work(struct db *db, void *arg)
{
    struct job *j = arg;
    int rc = j->work(db, j);
    if (rc < 0)
        snprintf(j->dberr, sizeof(j->dberr), "%s", db_errmsg(db));
    return rc;
}

static void job_done(void *arg, int rc)
{
    struct job *j = arg;
    j->done(j, rc);
    free(j->data);
    free(j->text);
    free(j);
}

struct job *snap_job_new(void *owner, job_work_fn work, job_done_fn done)
{
    struct job *j = calloc(1, sizeof(*j));
    if (j) {
        j->owner = owner;
        j->work = work;
        j->done = done;
        j->now = store_now_ms();
    }
    return j;
}

int snap_job_submit(struct snapshots *sn, struct job *j, bool read)
{
    int rc = !sn->pool ? DB_CANCELLED
           : read ? db_pool_submit_read(sn->pool, job_work, job_done, j)
                  : db_pool_submit(sn->pool, job_work, job_done, j);
    if (rc < 0) {
        free(j->data);
        free(j->text);
        free(j);
        return -1;
    }
    return 0;
}

/* ---- forgetting ---- */

struct forget {
    char node[NAME_MAX_], sid[SNAP_ID_MAX];
    struct head head;
};

static void forget_data(struct tun_stream *s, const uint8_t *p, size_t n)
{
    struct forget *f = tun_stream_ud(s);
    tun_stream_consumed(s, n);
    if (!f->head.done && snap_head_feed(&f->head, p, n) >= 0 && f->head.done)
        log_info("snapshot %s: node %s answers %.*s", f->sid, f->node,
                 (int)strcspn(f->head.buf, "\n"), f->head.buf);
}

static void forget_end(struct tun_stream *s, uint16_t code, const char *reason)
{
    struct forget *f = tun_stream_ud(s);
    if (code)
        log_warn("snapshot %s: node %s did not remove its copy (%u: %s)", f->sid, f->node,
                 code, reason ? reason : "");
    free(f);
}

static const struct tun_stream_ops forget_ops = {
    .on_data = forget_data,
    .on_end = forget_end,
};

void snapshots_forget(struct snapshots *sn, const char *cluster, const char *node,
                      const char *sid)
{
    struct forget *f = calloc(1, sizeof(*f));
    if (!f)
        return;
    snprintf(f->node, sizeof(f->node), "%s", node);
    snprintf(f->sid, sizeof(f->sid), "%s", sid);
    char meta[128];
    int ml = snprintf(meta, sizeof(meta), "{\"id\":\"%s\"}", sid);
    struct tun_stream *s = tunnels_open_node_stream(sn->ts, cluster, node, "etcd-snapshot-delete",
                                                    meta, (size_t)ml, &forget_ops, f);
    if (!s) {
        log_info("snapshot %s deleted; node %s is not connected to remove its copy", sid, node);
        free(f);
        return;
    }
    tun_stream_close(s);
}

/* ---- setup ---- */

struct snapshots *snapshots_new(struct loop *l, struct tunnels *ts)
{
    struct snapshots *sn = calloc(1, sizeof(*sn));
    if (sn) {
        sn->loop = l;
        sn->ts = ts;
    }
    return sn;
}

void snapshots_on_finished(struct snapshots *sn,
                           void (*fn)(void *ud, const char *cluster, const char *sid,
                                      bool scheduled, bool ok),
                           void *ud)
{
    sn->on_finished = fn;
    sn->ud = ud;
}

static int recover_work(struct db *db, struct job *j)
{
    return store_snapshots_recover(db, j->now, j->me, j->flag, &j->size);
}

static void recover_done(struct job *j, int rc)
{
    struct snapshots *sn = j->owner;
    if (sn->on_recovered && rc != DB_CANCELLED)
        sn->on_recovered(sn->rec_ud);
    if (rc < 0)
        log_warn("snapshots: cannot fix what the last run left unfinished: %s (%s)",
                 db_code_str(rc), j->dberr);
    else if (j->size)
        log_info("snapshots: %lld snapshot(s), restore(s) or upgrade(s) of the last run "
                 "marked failed or interrupted", (long long)j->size);
}

void snapshots_set_pool(struct snapshots *sn, struct db_pool *pool,
                        void (*recovered)(void *ud), void *ud)
{
    sn->pool = pool;
    if (!pool || sn->recovered)
        return;
    sn->recovered = true;
    sn->on_recovered = recovered;
    sn->rec_ud = ud;
    struct job *j = snap_job_new(sn, recover_work, recover_done);
    if (j)
        j->me = sn->me[0] ? sn->me : NULL;
    if ((!j || snap_job_submit(sn, j, false) < 0) && recovered)
        recovered(ud);  /* serve anyway; the log says why the fix-up failed */
}

void snapshots_set_replica(struct snapshots *sn, const char *id)
{
    snprintf(sn->me, sizeof(sn->me), "%s", id ? id : "");
}

static void sweep_done(struct job *j, int rc)
{
    struct snapshots *sn = j->owner;
    sn->sweeping = false;
    if (rc < 0 && rc != DB_CANCELLED)
        log_warn("snapshots: cannot sweep the tasks of replicas gone: %s (%s)",
                 db_code_str(rc), j->dberr);
    else if (j->size)
        log_info("snapshots: %lld snapshot(s), restore(s) or upgrade(s) of replicas gone "
                 "marked failed or interrupted", (long long)j->size);
}

void snapshots_sweep(struct snapshots *sn)
{
    if (!sn->pool || !sn->me[0] || sn->sweeping)
        return;
    struct job *j = snap_job_new(sn, recover_work, sweep_done);
    if (!j)
        return;
    j->me = sn->me;
    j->flag = true;
    if (snap_job_submit(sn, j, false) == 0)
        sn->sweeping = true;
}

void snapshots_free(struct snapshots *sn)
{
    if (!sn)
        return;
    /* The tunnels are closed by now or soon; detach from any stream still
     * open so no callback reaches freed memory. */
    snap_takes_free(sn);
    snap_restores_free(sn);
    free(sn);
}
