/*
 * rbacpush: pushes desired RBAC bindings to cluster agents. See rbacpush.h.
 *
 * An entry runs: idle (its timer armed: debounce or retry) -> READING (the
 * bindings on a worker) -> SENDING (the "rbac" stream open: request out,
 * answer in) -> done: freed on success unless a change came meanwhile
 * (`dirty`: go again), or kept with the retry timer after a failure.
 */
#include "server/rbacpush.h"

#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/hmap.h"
#include "common/log.h"
#include "proto/frame.h"
#include "server/store.h"

#define ID_MAX 64

enum rb_state { RB_IDLE, RB_READING, RB_SENDING };

struct rb_entry {
    struct rbacpush *rb;
    char cluster[ID_MAX];
    enum rb_state state;
    bool dirty;                 /* changed while reading or sending */
    bool failed;                /* the last attempt failed */
    struct loop_timer timer;
    /* READING: the worker's result */
    char *doc;
    int nbindings;
    /* SENDING */
    struct tun_stream *s;
    size_t sent, doc_len;
    char *ans;
    size_t ans_len;
};

struct rbacpush {
    struct loop *loop;
    struct tunnels *ts;
    struct db_pool *pool;
    struct hmap *entries;       /* cluster id -> struct rb_entry */
    unsigned long pushed, failed;
};

static void start(struct rb_entry *e);

struct rbacpush *rbacpush_new(struct loop *l, struct tunnels *ts)
{
    struct rbacpush *rb = calloc(1, sizeof(*rb));
    if (!rb || !(rb->entries = hmap_new())) {
        free(rb);
        return NULL;
    }
    rb->loop = l;
    rb->ts = ts;
    return rb;
}

void rbacpush_set_pool(struct rbacpush *rb, struct db_pool *pool)
{
    rb->pool = pool;
}

void rbacpush_get_stats(const struct rbacpush *rb, struct rbacpush_stats *out)
{
    out->pushed = rb->pushed;
    out->failed = rb->failed;
    out->pending = hmap_count(rb->entries);
}

static void entry_free(struct rb_entry *e)
{
    loop_timer_stop(e->rb->loop, &e->timer);
    free(e->doc);
    free(e->ans);
    free(e);
}

/* Removes and frees e (not while the worker holds it). */
static void entry_drop(struct rb_entry *e)
{
    hmap_del(e->rb->entries, e->cluster);
    entry_free(e);
}

static void free_one(const char *key, void *val, void *ud)
{
    (void)key;
    struct rb_entry *e = val;
    struct rbacpush *rb = ud;
    if (e->s)
        tun_stream_reset(e->s, TUN_RESET_CANCEL, "server shutting down");
    loop_timer_stop(rb->loop, &e->timer);
    free(e->doc);
    free(e->ans);
    free(e);
}

void rbacpush_free(struct rbacpush *rb)
{
    if (!rb)
        return;
    hmap_each(rb->entries, free_one, rb);
    hmap_free(rb->entries);
    free(rb);
}

/* ---- the request document ---- */

static const char *k8s_role(int role)
{
    switch (role) {
    case STORE_ROLE_OWNER:
        return "cluster-admin";
    case STORE_ROLE_MEMBER:
        return "edit";
    case STORE_ROLE_VIEWER:
        return "view";
    default:
        return NULL;
    }
}

static int add_binding(json_t *list, const char *username, int role)
{
    char user[STORE_NAME_MAX + 16];
    const char *r = k8s_role(role);
    if (!r || !username)
        return 0;
    snprintf(user, sizeof(user), "drover:%s", username);
    return json_array_append_new(list, json_pack("{s:s,s:s}", "user", user, "role", r));
}

char *rbacpush_document(const struct rbacpush_grant *g, size_t n)
{
    json_t *list = json_array();
    for (size_t i = 0; list && i < n; i++)
        if (add_binding(list, g[i].username, g[i].role) < 0)
            break;
    json_t *doc = list ? json_pack("{s:o}", "bindings", list) : NULL;
    char *s = doc ? json_dumps(doc, JSON_COMPACT) : NULL;
    json_decref(doc);
    return s;
}

/* ---- reading the bindings (worker) ---- */

static int grant_row(void *ud, const char *username, enum store_role role)
{
    return add_binding(ud, username, role) < 0 ? DB_ERROR : 0;
}

static int read_work(struct db *db, void *arg)
{
    struct rb_entry *e = arg;
    json_t *list = json_array();
    if (!list)
        return DB_ERROR;
    int rc = store_cluster_grants(db, e->cluster, grant_row, list);
    e->nbindings = (int)json_array_size(list);
    json_t *doc = json_pack("{s:o}", "bindings", list);
    if (rc == DB_OK) {
        e->doc = doc ? json_dumps(doc, JSON_COMPACT) : NULL;
        rc = e->doc ? DB_OK : DB_ERROR;
    }
    json_decref(doc);
    return rc;
}

/* ---- finishing ---- */

static void on_timer(struct loop_timer *t)
{
    start((struct rb_entry *)((char *)t - offsetof(struct rb_entry, timer)));
}

/* The attempt is over: ok or not. */
static void finish(struct rb_entry *e, const char *error)
{
    e->state = RB_IDLE;
    e->s = NULL;
    free(e->doc);
    free(e->ans);
    e->doc = e->ans = NULL;
    e->sent = e->ans_len = 0;
    if (error) {
        e->rb->failed++;
        e->failed = true;
        log_warn("cluster %s: cannot update its RBAC bindings: %s (retrying in %d s)",
                 e->cluster, error, RBACPUSH_RETRY_MS / 1000);
    } else {
        e->rb->pushed++;
        e->failed = false;
    }
    if (e->dirty) {
        e->dirty = false;
        loop_timer_start(e->rb->loop, &e->timer, RBACPUSH_DEBOUNCE_MS, on_timer);
    } else if (error) {
        loop_timer_start(e->rb->loop, &e->timer, RBACPUSH_RETRY_MS, on_timer);
    } else {
        entry_drop(e);
    }
}

/* Reads the agent's answer. */
static void check_answer(struct rb_entry *e)
{
    json_error_t je;
    json_t *j = json_loadb(e->ans ? e->ans : "", e->ans_len, 0, &je);
    json_t *ok = json_object_get(j, "ok");
    char why[300];
    if (json_is_true(ok)) {
        log_info("cluster %s: RBAC bindings applied (%d bindings; created %lld, updated "
                 "%lld, deleted %lld)", e->cluster, e->nbindings,
                 (long long)json_integer_value(json_object_get(j, "created")),
                 (long long)json_integer_value(json_object_get(j, "updated")),
                 (long long)json_integer_value(json_object_get(j, "deleted")));
        json_decref(j);
        finish(e, NULL);
        return;
    }
    const char *err = json_string_value(json_object_get(j, "error"));
    snprintf(why, sizeof(why), "the agent says: %.200s",
             err ? err : j ? "not ok" : "an answer that is not JSON");
    json_decref(j);
    finish(e, why);
}

/* ---- the stream ---- */

static void send_more(struct rb_entry *e)
{
    while (e->sent < e->doc_len) {
        ssize_t n = tun_stream_send(e->s, e->doc + e->sent, e->doc_len - e->sent);
        if (n < 0) {
            tun_stream_reset(e->s, TUN_RESET_INTERNAL, "cannot send");
            finish(e, "the stream failed");
            return;
        }
        if (n == 0)
            return;     /* on_writable */
        e->sent += (size_t)n;
    }
    if (tun_stream_close(e->s) == 1)
        check_answer(e);    /* the agent had answered and closed already */
}

static void on_writable(struct tun_stream *s)
{
    struct rb_entry *e = tun_stream_ud(s);
    if (e->sent < e->doc_len)
        send_more(e);
}

static void on_data(struct tun_stream *s, const uint8_t *p, size_t n)
{
    struct rb_entry *e = tun_stream_ud(s);
    if (n > RBACPUSH_ANSWER_MAX - e->ans_len) {
        tun_stream_reset(s, TUN_RESET_LIMIT, "the answer is too long");
        finish(e, "the agent's answer is too long");
        return;
    }
    char *a = realloc(e->ans, e->ans_len + n + 1);
    if (!a) {
        tun_stream_reset(s, TUN_RESET_INTERNAL, "out of memory");
        finish(e, "out of memory");
        return;
    }
    memcpy(a + e->ans_len, p, n);
    e->ans = a;
    e->ans_len += n;
    tun_stream_consumed(s, n);
}

/* The agent's answer is complete; we act when the stream is over: on_end
 * with code 0 once we have half-closed too, or tun_stream_close returning
 * 1 in send_more. Acting here as well would act twice. */
static void on_eof(struct tun_stream *s)
{
    (void)s;
}

static void on_end(struct tun_stream *s, uint16_t code, const char *reason)
{
    struct rb_entry *e = tun_stream_ud(s);
    char why[300];
    snprintf(why, sizeof(why), "stream ended (%u %.200s)", code, reason ? reason : "");
    if (code == 0) {
        check_answer(e);
        return;
    }
    finish(e, why);
}

static const struct tun_stream_ops rb_stream_ops = {
    .on_data = on_data, .on_eof = on_eof, .on_writable = on_writable, .on_end = on_end,
};

static void open_stream(struct rb_entry *e)
{
    struct tunnel *t = tunnels_for_cluster(e->rb->ts, e->cluster);
    if (!t) {
        /* Its tunnel coming up will push: nothing to keep until then. */
        log_debug("cluster %s: no tunnel for an RBAC push; it will go when one is up",
                  e->cluster);
        e->state = RB_IDLE;
        entry_drop(e);
        return;
    }
    e->state = RB_SENDING;
    e->doc_len = strlen(e->doc);
    e->s = tun_stream_open(t, RBACPUSH_SERVICE, NULL, 0, &rb_stream_ops, e);
    if (!e->s) {
        finish(e, "cannot open a stream");
        return;
    }
    send_more(e);
}

static void read_done(void *arg, int rc)
{
    struct rb_entry *e = arg;
    if (rc == DB_CANCELLED || !e->rb->pool) {
        e->state = RB_IDLE;
        return;     /* shutting down: rbacpush_free takes it */
    }
    if (rc == DB_NOTFOUND) {
        e->state = RB_IDLE;
        entry_drop(e);      /* the cluster is gone */
        return;
    }
    if (rc < 0) {
        char why[120];
        snprintf(why, sizeof(why), "cannot read its members: %s", db_code_str(rc));
        finish(e, why);
        return;
    }
    if (e->dirty) {
        /* Stale already: read again rather than push what changed. */
        e->dirty = false;
        free(e->doc);
        e->doc = NULL;
        e->state = RB_IDLE;
        start(e);
        return;
    }
    open_stream(e);
}

/* Timer fired (or tunnel up): read the bindings and push them. */
static void start(struct rb_entry *e)
{
    struct rbacpush *rb = e->rb;
    loop_timer_stop(rb->loop, &e->timer);
    if (!rb->pool)
        return;     /* not ready or shutting down; a later event restarts */
    if (!tunnels_for_cluster(rb->ts, e->cluster)) {
        entry_drop(e);
        return;
    }
    e->state = RB_READING;
    if (db_pool_submit_read(rb->pool, read_work, read_done, e) < 0) {
        e->state = RB_IDLE;
        finish(e, "the datastore is busy");
    }
}

/* The entry for cluster, made if missing; NULL without memory. */
static struct rb_entry *entry_for(struct rbacpush *rb, const char *cluster)
{
    struct rb_entry *e = hmap_get(rb->entries, cluster);
    if (e)
        return e;
    e = calloc(1, sizeof(*e));
    if (!e || hmap_put(rb->entries, cluster, e) == e) {
        free(e);
        log_warn("cluster %s: out of memory scheduling an RBAC push", cluster);
        return NULL;
    }
    e->rb = rb;
    snprintf(e->cluster, sizeof(e->cluster), "%s", cluster);
    return e;
}

/* Schedules a push of cluster after delay_ms (sooner wins over later). */
static void schedule(struct rbacpush *rb, const char *cluster, uint64_t delay_ms)
{
    if (strlen(cluster) >= ID_MAX)
        return;
    struct rb_entry *e = entry_for(rb, cluster);
    if (!e)
        return;
    if (e->state != RB_IDLE) {
        e->dirty = true;
        return;
    }
    /* A pending debounce keeps its deadline: a burst of changes sends
     * once, at most delay_ms after the first. A retry wait is cut short. */
    if (loop_timer_armed(&e->timer) && !e->failed)
        return;
    loop_timer_start(rb->loop, &e->timer, delay_ms, on_timer);
}

static void schedule_one(void *ud, const char *cluster)
{
    schedule(ud, cluster, RBACPUSH_DEBOUNCE_MS);
}

void rbacpush_changed(struct rbacpush *rb, const char *cluster)
{
    if (cluster) {
        /* No tunnel: its tunnel coming up pushes anyway. */
        if (tunnels_for_cluster(rb->ts, cluster))
            schedule(rb, cluster, RBACPUSH_DEBOUNCE_MS);
        return;
    }
    tunnels_each_cluster(rb->ts, schedule_one, rb);
}

void rbacpush_tunnel_up(struct rbacpush *rb, const char *cluster)
{
    struct rb_entry *e = entry_for(rb, cluster);
    if (!e)
        return;
    e->failed = true;   /* so schedule() cuts any wait short */
    schedule(rb, cluster, 0);
}
