/*
 * reports: the "report" service. See reports.h.
 *
 * A report's life: RECEIVING (buffering DATA, returning credit as it
 * buffers) -> STORING (the document is on a worker; the stream may still
 * die meanwhile) -> ANSWERING (the answer is being written) -> freed.
 * A report is freed when the datastore work is not in flight and the
 * stream is gone (ended by the peer, or closed by us after the answer).
 */
#include "server/reports.h"

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/hmap.h"
#include "common/log.h"
#include "proto/frame.h"
#include "server/report_doc.h"
#include "server/store.h"

#define ID_MAX 64
#define ERR_MAX 300

struct reports {
    struct loop *loop;
    struct tunnels *ts;
    struct db_pool *pool;
    size_t buffered;            /* over every report in progress */
    struct hmap *busy;          /* cluster id -> reports in progress (uintptr_t) */
    unsigned long stored;
};

struct report {
    struct reports *rp;
    struct tun_stream *s;       /* NULL once the stream is gone */
    char cluster[ID_MAX];
    uint8_t *buf;
    size_t len, cap;
    bool storing;               /* datastore work in flight */
    struct hmap *agents;        /* node names with agents (worker reads it) */
    char err[ERR_MAX];          /* the worker's verdict: "" = stored */
    char *answer;
    size_t answer_len, answer_sent;
};

struct reports *reports_new(struct loop *l, struct tunnels *ts)
{
    struct reports *rp = calloc(1, sizeof(*rp));
    if (!rp)
        return NULL;
    rp->loop = l;
    rp->ts = ts;
    rp->busy = hmap_new();
    if (!rp->busy) {
        free(rp);
        return NULL;
    }
    return rp;
}

void reports_set_pool(struct reports *rp, struct db_pool *pool)
{
    rp->pool = pool;
}

unsigned long reports_stored(const struct reports *rp)
{
    return rp->stored;
}

void reports_free(struct reports *rp)
{
    if (!rp)
        return;
    hmap_free(rp->busy);
    free(rp);
}

/* Counts a report of cluster in (delta 1) or out (-1); false when taking
 * one in would pass REPORTS_PER_CLUSTER (or there is no memory to count). */
static bool count_report(struct reports *rp, const char *cluster, int delta)
{
    uintptr_t n = (uintptr_t)hmap_get(rp->busy, cluster);
    if (delta > 0 && n >= REPORTS_PER_CLUSTER)
        return false;
    n = delta > 0 ? n + 1 : n - 1;
    if (n == 0) {
        hmap_del(rp->busy, cluster);
        return true;
    }
    /* hmap_put hands val back when it has no memory for a new key. */
    return hmap_put(rp->busy, cluster, (void *)n) != (void *)n;
}

static void drop_buffer(struct report *r)
{
    r->rp->buffered -= r->cap;
    free(r->buf);
    r->buf = NULL;
    r->len = r->cap = 0;
}

static void report_free(struct report *r)
{
    count_report(r->rp, r->cluster, -1);
    drop_buffer(r);
    hmap_free(r->agents);
    free(r->answer);
    free(r);
}

/* The stream is gone; free r unless the worker still has it. */
static void stream_gone(struct report *r)
{
    r->s = NULL;
    if (!r->storing)
        report_free(r);
}

static void fail_stream(struct report *r, uint16_t code, const char *why)
{
    log_warn("cluster %s: report refused: %s", r->cluster, why);
    tun_stream_reset(r->s, code, why);
    stream_gone(r);
}

/* Grows the buffer to hold n more bytes, within the document cap and the
 * budget shared by all reports. */
static int reserve(struct report *r, size_t n)
{
    if (n <= r->cap - r->len)
        return 0;
    size_t want = r->cap ? r->cap : 64 * 1024;
    while (want - r->len < n)
        want *= 2;
    if (want > REPORT_MAX_DOC)
        want = REPORT_MAX_DOC;
    if (want - r->cap > REPORTS_MAX_BUFFERED - r->rp->buffered)
        return -1;
    uint8_t *b = realloc(r->buf, want);
    if (!b)
        return -1;
    r->rp->buffered += want - r->cap;
    r->buf = b;
    r->cap = want;
    return 0;
}

static void on_data(struct tun_stream *s, const uint8_t *p, size_t n)
{
    struct report *r = tun_stream_ud(s);
    if (r->storing || r->answer) {
        fail_stream(r, TUN_RESET_PROTOCOL, "data after the report was complete");
        return;
    }
    if (n > REPORT_MAX_DOC - r->len) {
        fail_stream(r, TUN_RESET_LIMIT, "the report is larger than 16 MiB");
        return;
    }
    if (reserve(r, n) < 0) {
        fail_stream(r, TUN_RESET_UNAVAILABLE, "too many reports in progress");
        return;
    }
    memcpy(r->buf + r->len, p, n);
    r->len += n;
    /* Credit goes back as soon as the bytes are ours: the cap above, not
     * the window, bounds what a report can cost. */
    tun_stream_consumed(s, n);
}

static void send_answer(struct report *r)
{
    while (r->answer_sent < r->answer_len) {
        ssize_t n = tun_stream_send(r->s, r->answer + r->answer_sent,
                                    r->answer_len - r->answer_sent);
        if (n < 0) {
            tun_stream_reset(r->s, TUN_RESET_INTERNAL, "cannot answer");
            stream_gone(r);
            return;
        }
        if (n == 0)
            return;     /* on_writable comes back here */
        r->answer_sent += (size_t)n;
    }
    /* The agent half-closed before we answered, so this ends the stream;
     * if it somehow did not, its on_end frees r. */
    if (tun_stream_close(r->s) == 1)
        stream_gone(r);
}

static void on_writable(struct tun_stream *s)
{
    struct report *r = tun_stream_ud(s);
    if (r->answer)
        send_answer(r);
}

static void answer(struct report *r, const char *error)
{
    json_t *j = error ? json_pack("{s:b,s:s}", "ok", 0, "error", error)
                      : json_pack("{s:b}", "ok", 1);
    r->answer = j ? json_dumps(j, JSON_COMPACT) : NULL;
    json_decref(j);
    if (!r->answer) {
        fail_stream(r, TUN_RESET_INTERNAL, "out of memory");
        return;
    }
    r->answer_len = strlen(r->answer);
    send_answer(r);
}

/* ---- on the worker ---- */

static void mark_agents(struct report *r, struct store_report *sr)
{
    for (size_t i = 0; i < sr->nnodes; i++)
        ((struct store_report_node *)sr->nodes)[i].agent_connected =
            r->agents && hmap_get(r->agents, sr->nodes[i].name) != NULL;
}

static int store_work(struct db *db, void *arg)
{
    struct report *r = arg;
    struct report_doc *doc;
    int64_t added = 0;
    if (report_doc_parse(r->buf, r->len, &doc, r->err, sizeof(r->err)) < 0)
        return 0;
    mark_agents(r, &doc->r);
    int rc = store_cluster_report(db, r->cluster, &doc->r, store_now_ms(), &added);
    report_doc_free(doc);
    if (rc == DB_CONFLICT)
        snprintf(r->err, sizeof(r->err), "a node name is listed twice");
    else if (rc == DB_NOTFOUND)
        snprintf(r->err, sizeof(r->err), "cluster %s no longer exists", r->cluster);
    else if (rc < 0)
        snprintf(r->err, sizeof(r->err), "the datastore failed (%s); try again later",
                 db_code_str(rc));
    return rc < 0 ? rc : (int)(added > 1000000 ? 1000000 : added);
}

/* ---- back on the loop ---- */

static void store_done(void *arg, int rc)
{
    struct report *r = arg;
    r->storing = false;
    drop_buffer(r);
    if (rc == DB_CANCELLED)
        snprintf(r->err, sizeof(r->err), "the server is shutting down");
    if (!r->s) {
        report_free(r);
        return;
    }
    if (r->err[0]) {
        log_warn("cluster %s: report not stored: %s", r->cluster, r->err);
        answer(r, r->err);
        return;
    }
    r->rp->stored++;
    log_debug("cluster %s: report stored (%d new events)", r->cluster, rc);
    answer(r, NULL);
}

static void add_agent(void *ud, const char *node)
{
    hmap_put(ud, node, (void *)1);
}

static void on_eof(struct tun_stream *s)
{
    struct report *r = tun_stream_ud(s);
    if (r->storing || r->answer)
        return;
    if (!r->rp->pool) {
        answer(r, "the datastore is not ready");
        return;
    }
    /* The worker may not touch the tunnel registry: hand it a copy. */
    r->agents = hmap_new();
    if (r->agents)
        tunnels_each_node(r->rp->ts, r->cluster, add_agent, r->agents);
    r->storing = true;
    int rc = db_pool_submit(r->rp->pool, store_work, store_done, r);
    if (rc < 0) {
        r->storing = false;
        answer(r, "the server is busy; try again later");
    }
}

static void on_end(struct tun_stream *s, uint16_t code, const char *reason)
{
    struct report *r = tun_stream_ud(s);
    if (code)
        log_debug("cluster %s: report stream ended: %u %s", r->cluster, code, reason);
    stream_gone(r);
}

static const struct tun_stream_ops report_ops = {
    .on_data = on_data, .on_eof = on_eof, .on_writable = on_writable, .on_end = on_end,
};

void reports_accept(struct reports *rp, struct tun_stream *s, const char *cluster)
{
    struct report *r = calloc(1, sizeof(*r));
    if (!r) {
        tun_stream_reset(s, TUN_RESET_INTERNAL, "out of memory");
        return;
    }
    r->rp = rp;
    r->s = s;
    snprintf(r->cluster, sizeof(r->cluster), "%s", cluster);
    if (!count_report(rp, r->cluster, 1)) {
        log_warn("cluster %s: report refused: %d of its reports are still in progress",
                 r->cluster, REPORTS_PER_CLUSTER);
        tun_stream_reset(s, TUN_RESET_LIMIT, "too many reports of this cluster in progress");
        free(r);
        return;
    }
    if (tun_stream_accept(s, &report_ops, r) < 0) {
        tun_stream_reset(s, TUN_RESET_INTERNAL, "cannot accept");
        report_free(r);
    }
}
