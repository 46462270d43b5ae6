/*
 * snapshots_restore: restoring a stored snapshot on etcd nodes. Each node
 * (struct rnode) gets its own stream and reads the chunks from the datastore
 * one at a time, so a restore holds one chunk per node; the node's answer
 * line says whether etcd was restored. The restore document (state per
 * node) is stored as it changes, one write at a time. Owns the restores in
 * progress (sn->restores). See snapshots.h and snapshots_int.h.
 */
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "proto/frame.h"
#include "server/snapshots_int.h"
#include "server/store.h"
#include "server/store_snapshots.h"

struct rnode {
    struct restore *r;
    char node[NAME_MAX_];
    struct tun_stream *s;
    int64_t seq;
    uint8_t *buf;
    size_t len, sent;
    bool reading, all_sent, finished;
    struct head head;
    char state[16];
    char msg[ERR_MAX];
};

struct restore {
    struct snapshots *sn;
    struct restore *next;
    char cluster[NAME_MAX_], sid[SNAP_ID_MAX];
    int64_t size, started;
    char sha[65];
    unsigned jobs;
    bool writing, dirty;
    void (*saved)(void *ud);    /* once the first document is stored */
    void *saved_ud;
    size_t n;
    struct rnode nodes[];
};

static void restore_check(struct restore *r);

static char *restore_doc(struct restore *r)
{
    bool all = true, ok = true;
    json_t *nodes = json_array();
    for (size_t i = 0; i < r->n; i++) {
        struct rnode *rn = &r->nodes[i];
        all = all && rn->finished;
        ok = ok && strcmp(rn->state, "done") == 0;
        json_array_append_new(nodes, json_pack("{s:s,s:s,s:s}", "node", rn->node, "state",
                                               rn->state, "message", rn->msg));
    }
    json_t *d = json_pack("{s:s,s:o,s:o}", "state", !all ? "running" : ok ? "done" : "failed",
                          "startedAt", snap_json_time(r->started), "nodes", nodes);
    char *s = d ? json_dumps(d, JSON_COMPACT) : NULL;
    json_decref(d);
    return s;
}

static int doc_work(struct db *db, struct job *j)
{
    return store_snapshot_set_restore(db, j->id, j->text, j->me);
}

static void save_doc(struct restore *r);

/* Tells the waiter (the API's 202) that the first document is stored; on
 * the next loop turn when not now, never from inside snapshots_restore. */
static void notify_saved(struct restore *r, bool now)
{
    void (*fn)(void *) = r->saved;
    r->saved = NULL;
    if (!fn)
        return;
    if (now || loop_defer(r->sn->loop, fn, r->saved_ud) < 0)
        fn(r->saved_ud);
}

static void doc_done(struct job *j, int rc)
{
    struct restore *r = j->owner;
    r->jobs--;
    r->writing = false;
    notify_saved(r, true);
    if (rc < 0)
        log_warn("restore of %s: cannot record progress: %s", r->sid, db_code_str(rc));
    if (r->dirty)
        save_doc(r);
    restore_check(r);
}

/* One write at a time, so PostgreSQL cannot apply an older document last. */
static void save_doc(struct restore *r)
{
    if (r->writing) {
        r->dirty = true;
        return;
    }
    r->dirty = false;
    struct job *j = snap_job_new(r, doc_work, doc_done);
    if (!j || !(j->text = restore_doc(r))) {
        free(j);
        notify_saved(r, false);
        return;
    }
    snprintf(j->id, sizeof(j->id), "%s", r->sid);
    j->me = r->sn->me[0] ? r->sn->me : NULL;
    if (snap_job_submit(r->sn, j, false) == 0) {
        r->jobs++;
        r->writing = true;
    } else {
        notify_saved(r, false);
    }
}

static void restore_free(struct restore *r)
{
    struct snapshots *sn = r->sn;
    for (struct restore **pp = &sn->restores; *pp; pp = &(*pp)->next) {
        if (*pp == r) {
            *pp = r->next;
            break;
        }
    }
    for (size_t i = 0; i < r->n; i++)
        free(r->nodes[i].buf);
    free(r);
}

void snap_restores_free(struct snapshots *sn)
{
    while (sn->restores) {
        struct restore *r = sn->restores;
        for (size_t i = 0; i < r->n; i++)
            if (r->nodes[i].s)
                tun_stream_reset(r->nodes[i].s, TUN_RESET_CANCEL, "server shutting down");
        restore_free(r);
    }
}

static void restore_check(struct restore *r)
{
    if (r->jobs || r->writing)
        return;
    for (size_t i = 0; i < r->n; i++)
        if (!r->nodes[i].finished || r->nodes[i].s)
            return;
    restore_free(r);
}

static void rnode_finish(struct rnode *rn, bool ok, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void rnode_finish(struct rnode *rn, bool ok, const char *fmt, ...)
{
    if (rn->finished)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(rn->msg, sizeof(rn->msg), fmt, ap);
    va_end(ap);
    rn->finished = true;
    snprintf(rn->state, sizeof(rn->state), "%s", ok ? "done" : "failed");
    log_info("restore of snapshot %s on node %s: %s%s%s", rn->r->sid, rn->node, rn->state,
             rn->msg[0] ? ": " : "", rn->msg);
    if (rn->s && !ok) {
        tun_stream_reset(rn->s, TUN_RESET_CANCEL, "restore failed");
        rn->s = NULL;
    }
    save_doc(rn->r);
}

static void rnode_read(struct rnode *rn);

/* Sends the chunk in hand; reads the next when it is all out. */
static void rnode_pump(struct rnode *rn)
{
    while (rn->s && rn->buf && rn->sent < rn->len) {
        ssize_t n = tun_stream_send(rn->s, rn->buf + rn->sent, rn->len - rn->sent);
        if (n < 0) {
            rnode_finish(rn, false, "cannot send to node %s", rn->node);
            return;
        }
        if (n == 0)
            return;     /* on_writable */
        rn->sent += (size_t)n;
    }
    if (rn->s && rn->buf) {
        free(rn->buf);
        rn->buf = NULL;
        rnode_read(rn);
    }
}

static int chunk_read_work(struct db *db, struct job *j)
{
    return store_snapshot_get_chunk(db, j->id, j->seq, &j->data, &j->len);
}

static void chunk_read_done(struct job *j, int rc)
{
    struct rnode *rn = (struct rnode *)j->owner;
    struct restore *r = rn->r;
    r->jobs--;
    rn->reading = false;
    if (!rn->s || rn->finished) {
        restore_check(r);
        return;
    }
    if (rc == DB_NOTFOUND) {
        rn->all_sent = true;
        tun_stream_close(rn->s);    /* the agent verifies and restores now */
    } else if (rc < 0) {
        rnode_finish(rn, false, "reading the snapshot from the datastore: %s",
                     db_code_str(rc));
    } else {
        rn->buf = j->data;
        rn->len = j->len;
        rn->sent = 0;
        j->data = NULL;
        rn->seq++;
        rnode_pump(rn);
    }
    restore_check(r);
}

static void rnode_read(struct rnode *rn)
{
    struct job *j = snap_job_new(rn, chunk_read_work, chunk_read_done);
    if (!j) {
        rnode_finish(rn, false, "out of memory");
        return;
    }
    snprintf(j->id, sizeof(j->id), "%s", rn->r->sid);
    j->seq = rn->seq;
    if (snap_job_submit(rn->r->sn, j, true) < 0) {
        rnode_finish(rn, false, "the datastore is busy");
        return;
    }
    rn->reading = true;
    rn->r->jobs++;
}

static void rnode_data(struct tun_stream *s, const uint8_t *p, size_t n)
{
    struct rnode *rn = tun_stream_ud(s);
    tun_stream_consumed(s, n);
    if (rn->head.done || rn->finished)
        return;
    if (snap_head_feed(&rn->head, p, n) < 0) {
        rnode_finish(rn, false, "node %s sent an answer line that is too long", rn->node);
        return;
    }
    if (!rn->head.done)
        return;
    json_t *h = json_loads(rn->head.buf, 0, NULL);
    const char *err = json_string_value(json_object_get(h, "error"));
    const char *dir = json_string_value(json_object_get(h, "dataDir"));
    if (json_is_true(json_object_get(h, "ok")))
        rnode_finish(rn, true, "restored into %s", dir ? dir : "a new data directory");
    else
        rnode_finish(rn, false, "%s", err ? err : "the node agent failed without saying why");
    json_decref(h);
}

static void rnode_writable(struct tun_stream *s)
{
    rnode_pump(tun_stream_ud(s));
}

static void rnode_eof(struct tun_stream *s)
{
    struct rnode *rn = tun_stream_ud(s);
    if (!rn->finished)
        rnode_finish(rn, false, "node %s closed the stream without an answer", rn->node);
    if (rn->s && tun_stream_close(rn->s) == 1) {
        rn->s = NULL;
        restore_check(rn->r);
    }
}

static void rnode_end(struct tun_stream *s, uint16_t code, const char *reason)
{
    struct rnode *rn = tun_stream_ud(s);
    rn->s = NULL;
    if (!rn->finished)
        rnode_finish(rn, false, "the link to node %s was lost during the restore (%u: %s)",
                     rn->node, code, reason ? reason : "");
    restore_check(rn->r);
}

static const struct tun_stream_ops rnode_ops = {
    .on_data = rnode_data,
    .on_eof = rnode_eof,
    .on_writable = rnode_writable,
    .on_end = rnode_end,
};

struct pick {
    const char *only;
    char names[16][NAME_MAX_];
    size_t n;
};

static void pick_node(void *ud, const char *node, const char *roles)
{
    struct pick *pk = ud;
    if (pk->n == 16 || !tunnels_roles_has(roles, "etcd") ||
        (pk->only && strcmp(pk->only, node) != 0))
        return;
    for (size_t i = 0; i < pk->n; i++)
        if (strcmp(pk->names[i], node) == 0)
            return;
    snprintf(pk->names[pk->n++], NAME_MAX_, "%s", node);
}

int snapshots_restore(struct snapshots *sn, const char *cluster, const char *sid, int64_t size,
                      const char *sha256, const char *node, void (*saved)(void *ud), void *ud,
                      char **doc, char *msg, size_t msgcap)
{
    struct pick pk = { .only = node };
    for (struct restore *o = sn->restores; o; o = o->next) {
        if (strcmp(o->cluster, cluster) == 0) {
            snprintf(msg, msgcap, "a restore of cluster %s (snapshot %s) is in progress",
                     cluster, o->sid);
            return 409;
        }
    }
    tunnels_each_node_anywhere(sn->ts, cluster, pick_node, &pk);
    if (pk.n == 0) {
        snprintf(msg, msgcap, "%s%s has no connected node agent with the etcd role",
                 node ? "node " : "cluster ", node ? node : cluster);
        return 409;
    }
    struct restore *r = calloc(1, sizeof(*r) + pk.n * sizeof(r->nodes[0]));
    if (!r) {
        snprintf(msg, msgcap, "out of memory");
        return 503;
    }
    r->sn = sn;
    snprintf(r->cluster, sizeof(r->cluster), "%s", cluster);
    snprintf(r->sid, sizeof(r->sid), "%s", sid);
    snprintf(r->sha, sizeof(r->sha), "%s", sha256);
    r->size = size;
    r->started = store_now_ms();
    r->n = pk.n;
    r->next = sn->restores;
    sn->restores = r;
    r->saved = saved;
    r->saved_ud = ud;
    char meta[256];
    int ml = snprintf(meta, sizeof(meta), "{\"id\":\"%s\",\"size\":%lld,\"sha256\":\"%s\"}",
                      sid, (long long)size, sha256);
    for (size_t i = 0; i < pk.n; i++) {
        struct rnode *rn = &r->nodes[i];
        rn->r = r;
        snprintf(rn->node, sizeof(rn->node), "%s", pk.names[i]);
        snprintf(rn->state, sizeof(rn->state), "running");
        rn->s = tunnels_open_node_stream(sn->ts, cluster, rn->node, "etcd-restore", meta,
                                         (size_t)ml, &rnode_ops, rn);
        if (!rn->s)
            rnode_finish(rn, false, "cannot open a stream to node %s", rn->node);
        else
            rnode_read(rn);
    }
    *doc = restore_doc(r);
    save_doc(r);
    log_info("restore of snapshot %s of cluster %s: started on %zu node(s)", sid, cluster, pk.n);
    restore_check(r);
    return 202;
}

bool snapshots_restoring(struct snapshots *sn, const char *sid)
{
    for (struct restore *r = sn->restores; r; r = r->next)
        for (size_t i = 0; i < r->n; i++)
            if (strcmp(r->sid, sid) == 0 && !r->nodes[i].finished)
                return true;
    return false;
}
