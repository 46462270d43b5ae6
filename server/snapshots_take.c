/*
 * snapshots_take: creating a snapshot (its row, then the agent asked) and
 * taking it: streaming what the node agent sends into the datastore in
 * SNAP_CHUNK pieces, with the size and SHA-256 checked at the end. Owns the
 * takes in progress (sn->takes). See snapshots.h and snapshots_int.h.
 *
 * A take's life: the row is inserted (pending), the stream opened and our
 * side half-closed (the task is all in the metadata), the row marked
 * running; then the agent's answer line, then the file, which is hashed as
 * it arrives and cut into chunks stored one pool write each. At the agent's
 * EOF, with every chunk stored, size and SHA-256 are checked against what
 * the agent announced and the row becomes done or failed. A take is freed
 * once its stream is over, no pool work refers to it and its final state
 * is stored.
 */
#include <jansson.h>
#include <openssl/evp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "proto/frame.h"
#include "server/auth.h"
#include "server/snapshots_int.h"
#include "server/store.h"
#include "server/store_snapshots.h"

static void hex32(const unsigned char md[32], char out[65])
{
    for (int i = 0; i < 32; i++)
        snprintf(out + 2 * i, 3, "%02x", md[i]);
}

struct take {
    struct snapshots *sn;
    struct take *next;
    char cluster[NAME_MAX_], node[NAME_MAX_], sid[SNAP_ID_MAX];
    bool scheduled;
    struct tun_stream *s;
    struct head head;
    int64_t size;
    char want_sha[65];
    EVP_MD_CTX *sha;
    uint64_t received;
    uint8_t *chunk;
    size_t chunk_len;
    int64_t seq;
    unsigned writes;            /* chunk writes in flight */
    unsigned jobs;              /* any pool work referring to us */
    size_t credit_held;
    bool eof, failed, final_sent, final_done, ok;
    char err[ERR_MAX];
};

static void take_check(struct take *t);

static void take_free(struct take *t)
{
    struct snapshots *sn = t->sn;
    for (struct take **pp = &sn->takes; *pp; pp = &(*pp)->next) {
        if (*pp == t) {
            *pp = t->next;
            break;
        }
    }
    EVP_MD_CTX_free(t->sha);
    free(t->chunk);
    free(t);
}

/* Records why the take failed (the first reason wins) and stops the agent. */
static void take_fail(struct take *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void take_fail(struct take *t, const char *fmt, ...)
{
    if (t->failed || t->final_sent)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(t->err, sizeof(t->err), fmt, ap);
    va_end(ap);
    t->failed = true;
    log_warn("snapshot %s of cluster %s on node %s failed: %s", t->sid, t->cluster, t->node,
             t->err);
    if (t->s) {
        tun_stream_reset(t->s, TUN_RESET_CANCEL, "snapshot failed");
        t->s = NULL;
    }
}

static int running_work(struct db *db, struct job *j)
{
    return store_snapshot_running(db, j->id);
}

static void take_job_done(struct job *j, int rc)
{
    struct take *t = j->owner;
    (void)rc;
    t->jobs--;
    take_check(t);
}

static int chunk_work(struct db *db, struct job *j)
{
    return store_snapshot_put_chunk(db, j->id, j->seq, j->data, j->len);
}

static void chunk_done(struct job *j, int rc)
{
    struct take *t = j->owner;
    t->jobs--;
    t->writes--;
    if (rc < 0)
        take_fail(t, "storing chunk %lld: %s", (long long)j->seq,
                  rc == DB_NOTFOUND ? "the snapshot was deleted" : db_code_str(rc));
    if (t->credit_held && t->s && t->writes < SNAP_WRITES_MAX) {
        tun_stream_consumed(t->s, t->credit_held);
        t->credit_held = 0;
    }
    take_check(t);
}

/* Sends the filled chunk to the datastore. */
static void flush_chunk(struct take *t)
{
    if (!t->chunk_len)
        return;
    struct job *j = snap_job_new(t, chunk_work, chunk_done);
    if (!j) {
        take_fail(t, "out of memory");
        return;
    }
    snprintf(j->id, sizeof(j->id), "%s", t->sid);
    j->seq = t->seq++;
    j->data = t->chunk;
    j->len = t->chunk_len;
    t->chunk = NULL;
    t->chunk_len = 0;
    if (snap_job_submit(t->sn, j, false) < 0) {
        take_fail(t, "the datastore is busy");
        return;
    }
    t->jobs++;
    t->writes++;
}

static int final_work(struct db *db, struct job *j)
{
    if (j->flag)
        return store_snapshot_done(db, j->id, j->size, j->text, j->now);
    /* The chunks of a failed snapshot are of no use to anyone. */
    int rc = store_snapshot_fail(db, j->id, j->err, j->now);
    if (rc == 0)
        rc = db_execp(db, "DELETE FROM etcd_snapshot_chunks WHERE snapshot_id = ?",
                      DB_ARGS(DB_TEXT(j->id)), NULL);
    return rc;
}

static void final_done(struct job *j, int rc)
{
    struct take *t = j->owner;
    t->jobs--;
    t->final_done = true;
    if (rc < 0)
        log_warn("snapshot %s: cannot record its end: %s (%s)", t->sid, db_code_str(rc),
                 j->dberr);
    else if (t->ok)
        log_info("snapshot %s of cluster %s: done, %lld bytes", t->sid, t->cluster,
                 (long long)t->size);
    if (t->sn->on_finished)
        t->sn->on_finished(t->sn->ud, t->cluster, t->sid, t->scheduled, t->ok && rc >= 0);
    take_check(t);
}

/* At the agent's EOF with everything stored: compare with the announcement. */
static void take_verify(struct take *t)
{
    unsigned char md[32];
    char got[65];
    if (!t->head.done) {
        take_fail(t, "node %s closed the stream without an answer", t->node);
        return;
    }
    EVP_DigestFinal_ex(t->sha, md, NULL);
    hex32(md, got);
    if ((int64_t)t->received != t->size || strcmp(got, t->want_sha) != 0)
        take_fail(t, "checksum mismatch: node %s announced %lld bytes with sha256 %s, the "
                  "server received %llu bytes with sha256 %s", t->node, (long long)t->size,
                  t->want_sha, (unsigned long long)t->received, got);
    else
        t->ok = true;
}

/* Moves the take on: stores its final state when it can, frees it when it
 * is over. May free t. */
static void take_check(struct take *t)
{
    if (!t->final_sent && t->writes == 0 && (t->failed || (t->eof && t->head.done))) {
        if (!t->failed)
            take_verify(t);
        struct job *j = snap_job_new(t, final_work, final_done);
        t->final_sent = true;
        if (j) {
            snprintf(j->id, sizeof(j->id), "%s", t->sid);
            j->flag = t->ok;
            j->size = t->size;
            snprintf(j->err, sizeof(j->err), "%s", t->err);
            j->text = t->ok ? strdup(t->want_sha) : NULL;
            if (snap_job_submit(t->sn, j, false) == 0)
                t->jobs++;
            else
                t->final_done = true;
        } else {
            t->final_done = true;
        }
    }
    if (!t->s && t->jobs == 0 && t->final_done)
        take_free(t);
}

/* The agent's answer line: {ok,size,sha256} or {ok:false,error}. */
static void take_head(struct take *t)
{
    json_t *h = json_loads(t->head.buf, 0, NULL);
    const char *err = json_string_value(json_object_get(h, "error"));
    const char *sha = json_string_value(json_object_get(h, "sha256"));
    json_t *size = json_object_get(h, "size");
    if (!json_is_object(h)) {
        take_fail(t, "node %s sent an unreadable answer", t->node);
    } else if (!json_is_true(json_object_get(h, "ok"))) {
        take_fail(t, "%s", err ? err : "the node agent failed without saying why");
    } else if (!sha || strlen(sha) != 64 || !json_is_integer(size) ||
               json_integer_value(size) < 0) {
        take_fail(t, "node %s announced no size or sha256", t->node);
    } else {
        t->size = json_integer_value(size);
        snprintf(t->want_sha, sizeof(t->want_sha), "%s", sha);
    }
    json_decref(h);
}

static void take_bytes(struct take *t, const uint8_t *p, size_t n)
{
    if ((int64_t)(t->received + n) > t->size) {
        take_fail(t, "node %s sent more than the %lld bytes it announced", t->node,
                  (long long)t->size);
        return;
    }
    EVP_DigestUpdate(t->sha, p, n);
    t->received += n;
    while (n > 0) {
        if (!t->chunk && !(t->chunk = malloc(SNAP_CHUNK))) {
            take_fail(t, "out of memory");
            return;
        }
        size_t room = SNAP_CHUNK - t->chunk_len, c = n < room ? n : room;
        memcpy(t->chunk + t->chunk_len, p, c);
        t->chunk_len += c;
        p += c;
        n -= c;
        if (t->chunk_len == SNAP_CHUNK)
            flush_chunk(t);
    }
}

static void take_data(struct tun_stream *s, const uint8_t *p, size_t n)
{
    struct take *t = tun_stream_ud(s);
    size_t total = n;
    if (!t->head.done) {
        ssize_t used = snap_head_feed(&t->head, p, n);
        if (used < 0) {
            take_fail(t, "node %s sent an answer line that is too long", t->node);
            take_check(t);
            return;
        }
        p += used;
        n -= (size_t)used;
        if (t->head.done)
            take_head(t);
    }
    if (n && !t->failed)
        take_bytes(t, p, n);
    if (t->failed) {
        take_check(t);
        return;
    }
    if (t->writes >= SNAP_WRITES_MAX)
        t->credit_held += total;   /* the agent waits until a write is done */
    else
        tun_stream_consumed(s, total);
}

static void take_eof(struct tun_stream *s)
{
    struct take *t = tun_stream_ud(s);
    t->eof = true;
    if (!t->failed)
        flush_chunk(t);
    /* on_end follows (we closed our side at the start). */
}

static void take_end(struct tun_stream *s, uint16_t code, const char *reason)
{
    struct take *t = tun_stream_ud(s);
    t->s = NULL;
    if (code || !t->eof)
        take_fail(t, "the link to node %s was lost during the snapshot (%s)", t->node,
                  reason && *reason ? reason : "stream ended");
    take_check(t);
}

static const struct tun_stream_ops take_ops = {
    .on_data = take_data,
    .on_eof = take_eof,
    .on_end = take_end,
};

static void take_start(struct snapshots *sn, const char *cluster, const char *node,
                       const char *sid, bool scheduled)
{
    struct take *t = calloc(1, sizeof(*t));
    if (!t) {
        log_error("snapshot %s: out of memory", sid);
        return;
    }
    t->sn = sn;
    snprintf(t->cluster, sizeof(t->cluster), "%s", cluster);
    snprintf(t->node, sizeof(t->node), "%s", node);
    snprintf(t->sid, sizeof(t->sid), "%s", sid);
    t->scheduled = scheduled;
    t->next = sn->takes;
    sn->takes = t;
    t->sha = EVP_MD_CTX_new();
    char meta[128];
    int ml = snprintf(meta, sizeof(meta), "{\"id\":\"%s\"}", sid);
    if (!t->sha || EVP_DigestInit_ex(t->sha, EVP_sha256(), NULL) != 1) {
        take_fail(t, "out of memory");
    } else if (!tunnels_find_node_anywhere(sn->ts, cluster, node, NULL, NULL, 0)) {
        take_fail(t, "the node agent of %s is not connected", node);
    } else if (!(t->s = tunnels_open_node_stream(sn->ts, cluster, node, "etcd-snapshot", meta,
                                                 (size_t)ml, &take_ops, t))) {
        take_fail(t, "cannot open a stream to node %s", node);
    } else {
        tun_stream_close(t->s);     /* the task is all in the metadata */
        struct job *j = snap_job_new(t, running_work, take_job_done);
        if (j) {
            snprintf(j->id, sizeof(j->id), "%s", sid);
            if (snap_job_submit(sn, j, false) == 0)
                t->jobs++;
        }
        log_info("snapshot %s of cluster %s: asked node %s", sid, cluster, node);
    }
    take_check(t);
}

bool snapshots_busy(struct snapshots *sn, const char *cluster)
{
    for (struct take *t = sn->takes; t; t = t->next)
        if (strcmp(t->cluster, cluster) == 0 && !t->final_done)
            return true;
    return false;
}

void snap_takes_free(struct snapshots *sn)
{
    while (sn->takes) {
        struct take *t = sn->takes;
        if (t->s)
            tun_stream_reset(t->s, TUN_RESET_CANCEL, "server shutting down");
        take_free(t);
    }
}

/* ---- creating one ---- */

struct create {
    struct snapshots *sn;
    snapshots_cb cb;
    void *ud;
};

static int create_work(struct db *db, struct job *j)
{
    return store_snapshot_create(db, j->id, j->cluster, j->node, j->flag, j->now, j->me);
}

static void create_done(struct job *j, int rc)
{
    struct create *c = j->owner;
    if (rc == 0) {
        take_start(c->sn, j->cluster, j->node, j->id, j->flag);
        c->cb(c->ud, 202, j->id, NULL);
    } else if (rc == DB_NOTFOUND) {
        c->cb(c->ud, 404, NULL, "the cluster was deleted");
    } else {
        log_warn("snapshot of %s: cannot store it: %s (%s)", j->cluster, db_code_str(rc),
                 j->dberr);
        c->cb(c->ud, 503, NULL, "the datastore is unavailable; try again");
    }
    free(c);
}

static int new_id(char *out, size_t cap)
{
    char rnd[6];    /* and the NUL it writes */
    if (auth_random_alnum(rnd, 5) < 0)
        return -1;
    snprintf(out, cap, "s-%012llx%.5s", (unsigned long long)store_now_ms(), rnd);
    return 0;
}

void snapshots_create(struct snapshots *sn, const char *cluster, const char *node,
                      bool scheduled, snapshots_cb cb, void *ud)
{
    char name[NAME_MAX_], msg[300];
    if (!tunnels_find_node_anywhere(sn->ts, cluster, node, SNAP_ROLE, name, sizeof(name))) {
        if (node)
            snprintf(msg, sizeof(msg), "node %s has no connected node agent with the etcd "
                     "role (DROVER_NODE_ROLES)", node);
        else
            snprintf(msg, sizeof(msg), "cluster %s has no connected node agent with the "
                     "etcd role (DROVER_NODE_ROLES=etcd)", cluster);
        cb(ud, 409, NULL, msg);
        return;
    }
    struct create *c = malloc(sizeof(*c));
    struct job *j = c ? snap_job_new(c, create_work, create_done) : NULL;
    if (!j || new_id(j->id, sizeof(j->id)) < 0) {
        free(c);
        free(j);
        cb(ud, 503, NULL, "out of memory");
        return;
    }
    *c = (struct create){ sn, cb, ud };
    snprintf(j->cluster, sizeof(j->cluster), "%s", cluster);
    snprintf(j->node, sizeof(j->node), "%s", name);
    j->flag = scheduled;
    j->me = sn->me[0] ? sn->me : NULL;
    if (snap_job_submit(sn, j, false) < 0) {
        free(c);
        cb(ud, 503, NULL, "the datastore is busy; try again");
    }
}
