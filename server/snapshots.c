/*
 * snapshots: taking, restoring and forgetting etcd snapshots over node-agent
 * tunnels. See snapshots.h; the wire format is docs/PROTOCOL.md §11.
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
#include "server/snapshots.h"

#include <jansson.h>
#include <openssl/evp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/log.h"
#include "proto/frame.h"
#include "server/auth.h"
#include "server/store.h"
#include "server/store_snapshots.h"

#define HEAD_MAX 8192
#define NAME_MAX_ 64
#define ERR_MAX 1024

struct take;
struct restore;

struct snapshots {
    struct loop *loop;
    struct tunnels *ts;
    struct db_pool *pool;
    bool recovered;
    struct take *takes;
    struct restore *restores;
    void (*on_finished)(void *ud, const char *cluster, const char *sid, bool scheduled,
                        bool ok);
    void *ud;
    void (*on_recovered)(void *ud);
    void *rec_ud;
    char me[NAME_MAX_];         /* this replica's id ("": a single server) */
    bool sweeping;
};

/* An answer line: the JSON object the agent sends before any data. */
struct head {
    char buf[HEAD_MAX];
    size_t len;
    bool done;
};

/* Feeds n bytes; returns how many belong to the line (all, or up to and
 * including its '\n'), or -1 if the line is too long. */
static ssize_t head_feed(struct head *h, const uint8_t *p, size_t n)
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

static void hex32(const unsigned char md[32], char out[65])
{
    for (int i = 0; i < 32; i++)
        snprintf(out + 2 * i, 3, "%02x", md[i]);
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

struct job;
typedef int (*job_work_fn)(struct db *db, struct job *j);
typedef void (*job_done_fn)(struct job *j, int rc);

struct job {
    job_work_fn work;
    job_done_fn done;
    void *owner;
    char id[SNAP_ID_MAX], cluster[NAME_MAX_], node[NAME_MAX_];
    int64_t seq, size, now;
    bool flag;
    uint8_t *data;
    size_t len;
    char *text;
    const char *me;             /* the replica running the task (NULL: alone) */
    char err[ERR_MAX];
    char dberr[200];
};

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

static struct job *job_new(void *owner, job_work_fn work, job_done_fn done)
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

/* Submits j (a write unless read). On failure j is freed and -1 returned;
 * done is not called. */
static int job_submit(struct snapshots *sn, struct job *j, bool read)
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

/* ---- taking a snapshot ---- */

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
    struct job *j = job_new(t, chunk_work, chunk_done);
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
    if (job_submit(t->sn, j, false) < 0) {
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
        struct job *j = job_new(t, final_work, final_done);
        t->final_sent = true;
        if (j) {
            snprintf(j->id, sizeof(j->id), "%s", t->sid);
            j->flag = t->ok;
            j->size = t->size;
            snprintf(j->err, sizeof(j->err), "%s", t->err);
            j->text = t->ok ? strdup(t->want_sha) : NULL;
            if (job_submit(t->sn, j, false) == 0)
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
        ssize_t used = head_feed(&t->head, p, n);
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
        struct job *j = job_new(t, running_work, take_job_done);
        if (j) {
            snprintf(j->id, sizeof(j->id), "%s", sid);
            if (job_submit(sn, j, false) == 0)
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
    struct job *j = c ? job_new(c, create_work, create_done) : NULL;
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
    if (job_submit(sn, j, false) < 0) {
        free(c);
        cb(ud, 503, NULL, "the datastore is busy; try again");
    }
}

/* ---- restoring ---- */

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
    struct job *j = job_new(r, doc_work, doc_done);
    if (!j || !(j->text = restore_doc(r))) {
        free(j);
        notify_saved(r, false);
        return;
    }
    snprintf(j->id, sizeof(j->id), "%s", r->sid);
    j->me = r->sn->me[0] ? r->sn->me : NULL;
    if (job_submit(r->sn, j, false) == 0) {
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
    struct job *j = job_new(rn, chunk_read_work, chunk_read_done);
    if (!j) {
        rnode_finish(rn, false, "out of memory");
        return;
    }
    snprintf(j->id, sizeof(j->id), "%s", rn->r->sid);
    j->seq = rn->seq;
    if (job_submit(rn->r->sn, j, true) < 0) {
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
    if (head_feed(&rn->head, p, n) < 0) {
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

/* ---- forgetting ---- */

struct forget {
    char node[NAME_MAX_], sid[SNAP_ID_MAX];
    struct head head;
};

static void forget_data(struct tun_stream *s, const uint8_t *p, size_t n)
{
    struct forget *f = tun_stream_ud(s);
    tun_stream_consumed(s, n);
    if (!f->head.done && head_feed(&f->head, p, n) >= 0 && f->head.done)
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
    struct job *j = job_new(sn, recover_work, recover_done);
    if (j)
        j->me = sn->me[0] ? sn->me : NULL;
    if ((!j || job_submit(sn, j, false) < 0) && recovered)
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
    struct job *j = job_new(sn, recover_work, sweep_done);
    if (!j)
        return;
    j->me = sn->me;
    j->flag = true;
    if (job_submit(sn, j, false) == 0)
        sn->sweeping = true;
}

void snapshots_free(struct snapshots *sn)
{
    if (!sn)
        return;
    /* The tunnels are closed by now or soon; detach from any stream still
     * open so no callback reaches freed memory. */
    while (sn->takes) {
        struct take *t = sn->takes;
        if (t->s)
            tun_stream_reset(t->s, TUN_RESET_CANCEL, "server shutting down");
        take_free(t);
    }
    while (sn->restores) {
        struct restore *r = sn->restores;
        for (size_t i = 0; i < r->n; i++)
            if (r->nodes[i].s)
                tun_stream_reset(r->nodes[i].s, TUN_RESET_CANCEL, "server shutting down");
        restore_free(r);
    }
    free(sn);
}
