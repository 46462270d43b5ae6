/*
 * upgrade: upgrade rollouts over node agents. See upgrade.h.
 */
#include "server/upgrade.h"

#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "proto/frame.h"
#include "server/snapshots.h"
#include "server/store.h"
#include "server/store_snapshots.h"

#define NODES_MAX 256
#define NAME_MAX_ 64
#define LINE_MAX_ 8192
#define MSG_MAX 2048

struct rollout;

struct unode {
    struct rollout *ro;
    char name[NAME_MAX_], roles[128];
    char state[16];             /* pending running done failed skipped */
    char msg[MSG_MAX];
    struct tun_stream *s;
    char line[LINE_MAX_];
    size_t line_len;
};

struct rollout {
    struct upgrades *u;
    struct rollout *next;
    char cluster[NAME_MAX_], version[80];
    int concurrency, running;
    bool failed, over, writing, dirty, advancing;
    void (*saved)(void *ud);    /* once the first document is stored */
    void *saved_ud;
    int64_t started, finished;
    size_t n, next_node;
    struct unode nodes[];
};

struct upgrades {
    struct loop *loop;
    struct tunnels *ts;
    struct db_pool *pool;
    struct rollout *list;
    char me[NAME_MAX_];         /* this replica's id ("": a single server) */
};

static char *rollout_doc(struct rollout *ro)
{
    json_t *nodes = json_array();
    for (size_t i = 0; i < ro->n; i++) {
        struct unode *un = &ro->nodes[i];
        json_array_append_new(nodes, json_pack("{s:s,s:s,s:s,s:s}", "node", un->name, "roles",
                                               un->roles, "state", un->state, "message",
                                               un->msg));
    }
    const char *state = !ro->over ? "running" : ro->failed ? "failed" : "done";
    json_t *d = json_pack("{s:s,s:i,s:s,s:o,s:o,s:o}", "version", ro->version, "concurrency",
                          ro->concurrency, "state", state, "startedAt",
                          snap_json_time(ro->started), "finishedAt",
                          snap_json_time(ro->over ? ro->finished : -1), "nodes", nodes);
    char *s = d ? json_dumps(d, JSON_COMPACT) : NULL;
    json_decref(d);
    return s;
}

/* ---- storing the document, one write at a time ---- */

struct docjob {
    struct rollout *ro;
    char cluster[NAME_MAX_];
    char *doc;
    int64_t now;
};

static void save(struct rollout *ro);
static void maybe_free(struct rollout *ro);

/* Tells the waiter (the API's 202) that the first document is stored, so
 * a GET after the answer sees this rollout; later if now is false. */
static void notify_saved(struct rollout *ro, bool now)
{
    void (*fn)(void *) = ro->saved;
    ro->saved = NULL;
    if (!fn)
        return;
    if (now || loop_defer(ro->u->loop, fn, ro->saved_ud) < 0)
        fn(ro->saved_ud);
}

static int doc_work(struct db *db, void *arg)
{
    struct docjob *j = arg;
    return store_upgrade_put(db, j->cluster, j->doc, j->now,
                             j->ro->u->me[0] ? j->ro->u->me : NULL);
}

static void doc_done(void *arg, int rc)
{
    struct docjob *j = arg;
    struct rollout *ro = j->ro;
    if (rc < 0 && rc != DB_CANCELLED)
        log_warn("upgrade of cluster %s: cannot record progress: %s", j->cluster,
                 db_code_str(rc));
    free(j->doc);
    free(j);
    ro->writing = false;
    notify_saved(ro, true);
    if (ro->dirty && ro->u->pool)
        save(ro);
    maybe_free(ro);
}

static void save(struct rollout *ro)
{
    if (ro->writing) {
        ro->dirty = true;
        return;
    }
    ro->dirty = false;
    struct docjob *j = calloc(1, sizeof(*j));
    if (!j || !(j->doc = rollout_doc(ro)) || !ro->u->pool) {
        if (j)
            free(j->doc);
        free(j);
        notify_saved(ro, false);
        return;
    }
    j->ro = ro;
    snprintf(j->cluster, sizeof(j->cluster), "%s", ro->cluster);
    j->now = store_now_ms();
    if (db_pool_submit(ro->u->pool, doc_work, doc_done, j) < 0) {
        free(j->doc);
        free(j);
        notify_saved(ro, false);
        return;
    }
    ro->writing = true;
}

static void maybe_free(struct rollout *ro)
{
    if (!ro->over || ro->writing || ro->dirty)
        return;
    for (struct rollout **pp = &ro->u->list; *pp; pp = &(*pp)->next) {
        if (*pp == ro) {
            *pp = ro->next;
            break;
        }
    }
    free(ro);
}

/* ---- the rollout ---- */

static void advance(struct rollout *ro);

static void node_done(struct unode *un, bool ok, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void node_done(struct unode *un, bool ok, const char *fmt, ...)
{
    struct rollout *ro = un->ro;
    if (strcmp(un->state, "running") != 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(un->msg, sizeof(un->msg), fmt, ap);
    va_end(ap);
    snprintf(un->state, sizeof(un->state), "%s", ok ? "done" : "failed");
    log_info("upgrade of cluster %s to %s: node %s %s%s%s", ro->cluster, ro->version, un->name,
             un->state, un->msg[0] ? ": " : "", un->msg);
    if (un->s) {
        tun_stream_reset(un->s, TUN_RESET_CANCEL, "upgrade task over");
        un->s = NULL;
    }
    ro->running--;
    if (!ok)
        ro->failed = true;
    advance(ro);
}

static void u_data(struct tun_stream *s, const uint8_t *p, size_t n)
{
    struct unode *un = tun_stream_ud(s);
    tun_stream_consumed(s, n);
    const uint8_t *nl = memchr(p, '\n', n);
    size_t take = nl ? (size_t)(nl - p) : n;
    if (take > sizeof(un->line) - 1 - un->line_len) {
        node_done(un, false, "node %s sent an answer line that is too long", un->name);
        return;
    }
    memcpy(un->line + un->line_len, p, take);
    un->line_len += take;
    un->line[un->line_len] = '\0';
    if (!nl)
        return;
    json_t *h = json_loads(un->line, 0, NULL);
    const char *out = json_string_value(json_object_get(h, "output"));
    const char *err = json_string_value(json_object_get(h, "error"));
    if (json_is_true(json_object_get(h, "ok")))
        node_done(un, true, "%s", out ? out : "");
    else
        node_done(un, false, "%s%s%s", err ? err : "the node agent failed",
                  out && *out ? ": " : "", out ? out : "");
    json_decref(h);
}

static void u_end(struct tun_stream *s, uint16_t code, const char *reason)
{
    struct unode *un = tun_stream_ud(s);
    un->s = NULL;
    node_done(un, false, "the link to node %s was lost during the upgrade (%u: %s)", un->name,
              code, reason ? reason : "");
}

static void u_eof(struct tun_stream *s)
{
    struct unode *un = tun_stream_ud(s);
    node_done(un, false, "node %s closed the stream without an answer", un->name);
}

static const struct tun_stream_ops u_ops = {
    .on_data = u_data,
    .on_eof = u_eof,
    .on_end = u_end,
};

static void start_node(struct rollout *ro, struct unode *un)
{
    char meta[160];
    int ml = snprintf(meta, sizeof(meta), "{\"version\":\"%s\"}", ro->version);
    snprintf(un->state, sizeof(un->state), "running");
    ro->running++;
    un->s = tunnels_open_node_stream(ro->u->ts, ro->cluster, un->name, "upgrade", meta,
                                     (size_t)ml, &u_ops, un);
    if (!un->s) {
        node_done(un, false, "node %s has no connected node agent now", un->name);
        return;
    }
    tun_stream_close(un->s);
    log_info("upgrade of cluster %s to %s: node %s started", ro->cluster, ro->version,
             un->name);
}

/* Starts what may start and ends the rollout when nothing runs. A node
 * that fails at once re-enters through node_done: the flag keeps that inner
 * call from ending (and freeing) the rollout under this loop. */
static void advance(struct rollout *ro)
{
    if (ro->advancing)
        return;
    ro->advancing = true;
    while (!ro->failed && ro->running < ro->concurrency && ro->next_node < ro->n)
        start_node(ro, &ro->nodes[ro->next_node++]);
    if (!ro->over && ro->running == 0 && (ro->failed || ro->next_node == ro->n)) {
        ro->over = true;
        ro->finished = store_now_ms();
        for (size_t i = ro->next_node; i < ro->n; i++) {
            snprintf(ro->nodes[i].state, sizeof(ro->nodes[i].state), "skipped");
            snprintf(ro->nodes[i].msg, sizeof(ro->nodes[i].msg), "an earlier node failed");
        }
        log_info("upgrade of cluster %s to %s: %s", ro->cluster, ro->version,
                 ro->failed ? "failed" : "done");
    }
    ro->advancing = false;
    save(ro);
    maybe_free(ro);
}

/* ---- starting ---- */

struct gather {
    struct unode *nodes;
    size_t n;
};

static void gather_node(void *ud, const char *node, const char *roles)
{
    struct gather *g = ud;
    for (size_t i = 0; i < g->n; i++)
        if (strcmp(g->nodes[i].name, node) == 0)
            return;
    if (g->n == NODES_MAX)
        return;
    struct unode *un = &g->nodes[g->n++];
    memset(un, 0, sizeof(*un));
    snprintf(un->name, sizeof(un->name), "%s", node);
    snprintf(un->roles, sizeof(un->roles), "%s", roles);
    snprintf(un->state, sizeof(un->state), "pending");
}

static int by_order(const void *a, const void *b)
{
    const struct unode *x = a, *y = b;
    bool cx = tunnels_roles_has(x->roles, "controlplane"), cy = tunnels_roles_has(y->roles, "controlplane");
    if (cx != cy)
        return cx ? -1 : 1;
    return strcmp(x->name, y->name);
}

int upgrades_start(struct upgrades *u, const char *cluster, const char *version,
                   int concurrency, void (*saved)(void *ud), void *ud, char **doc, char *msg,
                   size_t msgcap)
{
    for (struct rollout *o = u->list; o; o = o->next) {
        if (strcmp(o->cluster, cluster) == 0 && !o->over) {
            snprintf(msg, msgcap, "an upgrade of cluster %s to %s is in progress", cluster,
                     o->version);
            return 409;
        }
    }
    struct gather g = { calloc(NODES_MAX, sizeof(struct unode)), 0 };
    if (!g.nodes) {
        snprintf(msg, msgcap, "out of memory");
        return 503;
    }
    tunnels_each_node_anywhere(u->ts, cluster, gather_node, &g);
    if (g.n == 0) {
        free(g.nodes);
        snprintf(msg, msgcap, "cluster %s has no connected node agent to upgrade", cluster);
        return 409;
    }
    qsort(g.nodes, g.n, sizeof(g.nodes[0]), by_order);
    struct rollout *ro = calloc(1, sizeof(*ro) + g.n * sizeof(struct unode));
    if (!ro) {
        free(g.nodes);
        snprintf(msg, msgcap, "out of memory");
        return 503;
    }
    ro->u = u;
    snprintf(ro->cluster, sizeof(ro->cluster), "%s", cluster);
    snprintf(ro->version, sizeof(ro->version), "%s", version);
    ro->concurrency = concurrency;
    ro->started = store_now_ms();
    ro->n = g.n;
    memcpy(ro->nodes, g.nodes, g.n * sizeof(struct unode));
    free(g.nodes);
    for (size_t i = 0; i < ro->n; i++)
        ro->nodes[i].ro = ro;
    ro->next = u->list;
    u->list = ro;
    ro->saved = saved;
    ro->saved_ud = ud;
    *doc = rollout_doc(ro);
    log_info("upgrade of cluster %s to %s: %zu node(s), %d at a time", cluster, version, ro->n,
             concurrency);
    advance(ro);
    return 202;
}

/* ---- setup ---- */

struct upgrades *upgrades_new(struct loop *l, struct tunnels *ts)
{
    struct upgrades *u = calloc(1, sizeof(*u));
    if (u) {
        u->loop = l;
        u->ts = ts;
    }
    return u;
}

void upgrades_set_replica(struct upgrades *u, const char *id)
{
    snprintf(u->me, sizeof(u->me), "%s", id ? id : "");
}

void upgrades_set_pool(struct upgrades *u, struct db_pool *pool)
{
    u->pool = pool;
}

void upgrades_free(struct upgrades *u)
{
    if (!u)
        return;
    while (u->list) {
        struct rollout *ro = u->list;
        u->list = ro->next;
        for (size_t i = 0; i < ro->n; i++)
            if (ro->nodes[i].s)
                tun_stream_reset(ro->nodes[i].s, TUN_RESET_CANCEL, "server shutting down");
        free(ro);
    }
    free(u);
}
