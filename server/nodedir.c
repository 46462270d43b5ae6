/*
 * nodedir: the node agents of every replica. See nodedir.h.
 */
#include "server/nodedir.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "server/store.h"
#include "server/store_peers.h"

#define TICK_MS 1000
#define REWRITE_TICKS 30
#define ROWS_MAX 200000     /* a bound on what one refresh may allocate */

struct nd_row {
    char *cluster, *node, *roles, *peer;
};

struct nodedir {
    struct loop *loop;
    struct tunnels *ts;
    struct peers *peers;
    struct db_pool *pool;
    char me[PEERS_ID_MAX + 1];
    struct loop_timer tick;
    bool inflight;
    unsigned ticks;
    uint64_t written;           /* hash of the set last stored (0: none) */
    struct nd_row *rows;        /* other replicas', by cluster and node */
    size_t n;
};

/* One refresh: our set to store (if write), the others' read back. */
struct sync {
    struct nodedir *nd;
    int64_t now;
    uint64_t hash;
    bool write, cut;
    struct nd_row *mine, *rows;
    size_t nmine, capmine, n, cap;
};

static void rows_free(struct nd_row *r, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(r[i].cluster);
        free(r[i].node);
        free(r[i].roles);
        free(r[i].peer);
    }
    free(r);
}

static int push(struct nd_row **rows, size_t *n, size_t *cap, const char *c, const char *node,
                const char *roles, const char *peer)
{
    if (*n == ROWS_MAX)
        return -1;
    if (*n == *cap) {
        size_t nc = *cap ? *cap * 2 : 16;
        struct nd_row *nr = realloc(*rows, nc * sizeof(*nr));
        if (!nr)
            return -1;
        *rows = nr;
        *cap = nc;
    }
    struct nd_row *r = &(*rows)[*n];
    r->cluster = strdup(c);
    r->node = strdup(node);
    r->roles = strdup(roles ? roles : "");
    r->peer = peer ? strdup(peer) : NULL;
    if (!r->cluster || !r->node || !r->roles || (peer && !r->peer)) {
        free(r->cluster);
        free(r->node);
        free(r->roles);
        free(r->peer);
        return -1;
    }
    (*n)++;
    return 0;
}

/* ---- the hook ---- */

static void nd_each(void *ud, const char *cluster,
                    void (*fn)(void *fud, const char *node, const char *roles), void *fud)
{
    struct nodedir *nd = ud;
    const char *prev = NULL;
    for (size_t i = 0; i < nd->n; i++) {
        struct nd_row *r = &nd->rows[i];
        if (strcmp(r->cluster, cluster) != 0 || (prev && strcmp(prev, r->node) == 0))
            continue;
        prev = r->node;
        fn(fud, r->node, r->roles);
    }
}

static struct tun_stream *nd_open(void *ud, const char *cluster, const char *node,
                                  const char *service, const void *meta, size_t meta_len,
                                  const struct tun_stream_ops *ops, void *sud)
{
    struct nodedir *nd = ud;
    for (size_t i = 0; i < nd->n; i++) {
        struct nd_row *r = &nd->rows[i];
        if (strcmp(r->cluster, cluster) == 0 && strcmp(r->node, node) == 0)
            return peers_open_node(nd->peers, r->peer, cluster, node, service, meta,
                                   meta_len, ops, sud);
    }
    return NULL;
}

/* ---- the refresh ---- */

static uint64_t fnv(uint64_t h, const char *s)
{
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ULL;
    return (h ^ 0xff) * 1099511628211ULL;
}

static void add_mine(void *ud, const char *cluster, const char *node, const char *roles)
{
    struct sync *sy = ud;
    if (push(&sy->mine, &sy->nmine, &sy->capmine, cluster, node, roles, NULL) < 0)
        sy->cut = true;
    /* Order-independent: the registry's order is not stable. */
    sy->hash += fnv(fnv(fnv(14695981039346656037ULL, cluster), node), roles ? roles : "");
}

static int add_other(void *ud, const struct store_node_agent *a)
{
    struct sync *sy = ud;
    if (push(&sy->rows, &sy->n, &sy->cap, a->cluster, a->node, a->roles, a->peer) < 0)
        sy->cut = true;
    return 0;
}

static int sync_work(struct db *db, void *arg)
{
    struct sync *sy = arg;
    if (sy->write) {
        struct store_node_agent *rows = calloc(sy->nmine + 1, sizeof(*rows));
        if (!rows)
            return DB_ERROR;
        for (size_t i = 0; i < sy->nmine; i++)
            rows[i] = (struct store_node_agent){ sy->mine[i].cluster, sy->mine[i].node,
                                                 sy->mine[i].roles, NULL };
        int rc = store_peer_put_node_agents(db, sy->nd->me, rows, sy->nmine);
        free(rows);
        if (rc < 0)
            return rc;
    }
    return store_peer_node_agents(db, sy->nd->me, sy->now, add_other, sy);
}

static void schedule(struct nodedir *nd);

static void sync_done(void *arg, int rc)
{
    struct sync *sy = arg;
    struct nodedir *nd = sy->nd;
    nd->inflight = false;
    if (rc == 0) {
        if (sy->write)
            nd->written = sy->hash;
        rows_free(nd->rows, nd->n);
        nd->rows = sy->rows;
        nd->n = sy->n;
        sy->rows = NULL;
        sy->n = 0;
        if (sy->cut)
            log_warn("node agents of the other replicas: list cut (out of memory or over "
                     "%d)", ROWS_MAX);
    } else if (rc != DB_CANCELLED) {
        log_warn("node agents of the replicas: cannot refresh: %s", db_code_str(rc));
    }
    rows_free(sy->mine, sy->nmine);
    rows_free(sy->rows, sy->n);
    free(sy);
    schedule(nd);
}

static void on_tick(struct loop_timer *t)
{
    struct nodedir *nd = (struct nodedir *)((char *)t - offsetof(struct nodedir, tick));
    struct sync *sy = nd->pool && !nd->inflight ? calloc(1, sizeof(*sy)) : NULL;
    if (!sy) {
        schedule(nd);
        return;
    }
    sy->nd = nd;
    sy->now = store_now_ms();
    sy->hash = 1;
    tunnels_each_node_agent_all(nd->ts, add_mine, sy);
    sy->write = !sy->cut && (sy->hash != nd->written || ++nd->ticks % REWRITE_TICKS == 0);
    if (db_pool_submit(nd->pool, sync_work, sync_done, sy) < 0) {
        rows_free(sy->mine, sy->nmine);
        free(sy);
        schedule(nd);
        return;
    }
    nd->inflight = true;
}

static void schedule(struct nodedir *nd)
{
    if (nd->pool && !loop_timer_armed(&nd->tick))
        loop_timer_start(nd->loop, &nd->tick, TICK_MS, on_tick);
}

/* ---- setup ---- */

struct nodedir *nodedir_new(struct loop *l, struct tunnels *ts, struct peers *p,
                            const char *me)
{
    struct nodedir *nd = calloc(1, sizeof(*nd));
    if (!nd)
        return NULL;
    nd->loop = l;
    nd->ts = ts;
    nd->peers = p;
    snprintf(nd->me, sizeof(nd->me), "%s", me);
    struct tunnels_node_remote r = { .each = nd_each, .open = nd_open, .ud = nd };
    tunnels_set_node_remote(ts, &r);
    return nd;
}

void nodedir_set_pool(struct nodedir *nd, struct db_pool *pool)
{
    nd->pool = pool;
    if (!pool)
        loop_timer_stop(nd->loop, &nd->tick);
    else if (!nd->inflight)
        loop_timer_start(nd->loop, &nd->tick, 0, on_tick);
}

void nodedir_free(struct nodedir *nd)
{
    if (!nd)
        return;
    tunnels_set_node_remote(nd->ts, NULL);
    loop_timer_stop(nd->loop, &nd->tick);
    rows_free(nd->rows, nd->n);
    free(nd);
}
