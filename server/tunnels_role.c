/*
 * tunnels_role: the cluster role. A cluster without a connected cluster
 * agent is carried by one of its node agents that can reach the
 * kube-apiserver (eligible), the one connected the longest, after a
 * start-up grace; it steps down when the cluster agent is back. With
 * several replicas a node agent only claims the role through the datastore
 * (linkstate) and acts once granted. Owns the acting / claiming choice of
 * each cluster_entry. See tunnels.h and tunnels_int.h.
 */
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "common/log.h"
#include "server/tunnels_int.h"

static void send_role(struct link *lk, bool active)
{
    char msg[64];
    int n = snprintf(msg, sizeof(msg), "{\"type\":\"cluster-role\",\"active\":%s}",
                     active ? "true" : "false");
    tunnel_send_control(lk->t, msg, (size_t)n);
}

/* The node agent to stand in: eligible, and connected the longest (the
 * steadiest; it also keeps the choice stable while others reconnect). */
static struct link *pick_acting(const struct cluster_entry *e)
{
    struct link *best = NULL;
    for (struct link *n = e->nodes; n; n = n->next)
        if (n->eligible && (!best || n->since_ms < best->since_ms))
            best = n;
    return best;
}

static void on_grace_end(struct loop_timer *t);

/* Several replicas: who else holds the cluster's link, per the last
 * ownership refresh. */
static enum tunnels_held held_elsewhere(struct tunnels *ts, const char *cluster)
{
    return ts->remote.held ? ts->remote.held(ts->remote.ud, cluster) : TUNNELS_HELD_NONE;
}

/* Several replicas decide through the datastore (the claim); alone, here. */
static bool replicated(const struct tunnels *ts)
{
    return ts->remote.held && ts->ls;
}

/* n holds the cluster role from now on. */
static void act(struct tunnels *ts, struct cluster_entry *e, struct link *n)
{
    e->acting = n;
    ts->takeovers++;
    log_info("cluster=%s: node=%s takes the cluster role", n->cluster, n->node);
    send_role(n, true);
    if (ts->hooks.on_cluster_up)
        ts->hooks.on_cluster_up(ts->hooks.ud, n->cluster);
}

static void via_node(const struct link *n, char *via, size_t cap)
{
    snprintf(via, cap, "node/%s", n->node);
}

/*
 * The cluster has neither a cluster agent nor an acting node agent (lost:
 * because one just went): hand the cluster role to an eligible node agent,
 * if there is one, and record the new link (or, when lost, that there is
 * none). The cluster's new streams follow at once (tunnels_for_cluster).
 * With several replicas the node agent only claims the role: another
 * replica may hold the cluster's link, and of two replicas claiming at once
 * only one is granted it (store_peer_set_link); tunnels_claimed() hears the
 * answer.
 */
void tnl_relink(struct tunnels *ts, const char *cluster, bool lost)
{
    struct cluster_entry *e = tnl_entry_for(ts, cluster, false);
    if (e && (e->agent || e->acting || e->claiming))
        return;
    struct link *n = e ? pick_acting(e) : NULL;
    if (n && loop_now_ms(ts->loop) < ts->grace_until) {
        if (!loop_timer_armed(&ts->grace))
            loop_timer_start(ts->loop, &ts->grace,
                             ts->grace_until - loop_now_ms(ts->loop), on_grace_end);
        n = NULL;
    }
    if (n && replicated(ts) && held_elsewhere(ts, cluster) != TUNNELS_HELD_NONE)
        n = NULL;   /* another replica carries the cluster: route there */
    if (!n) {
        if (!lost)
            return;
        log_info("cluster=%s: no link left here (no cluster agent, no node agent to "
                 "stand in)", cluster);
        if (ts->ls)
            linkstate_set(ts->ls, cluster, NULL);
        return;
    }
    char via[ID_MAX + 8];
    via_node(n, via, sizeof(via));
    if (replicated(ts)) {
        e->claiming = n;
        log_info("cluster=%s: node=%s claims the cluster role", cluster, n->node);
        linkstate_set(ts->ls, cluster, via);
        return;
    }
    if (ts->ls)
        linkstate_set(ts->ls, cluster, via);
    act(ts, e, n);
}

void tunnels_claimed(struct tunnels *ts, const char *cluster, const char *via, bool granted)
{
    struct cluster_entry *e = tnl_entry_for(ts, cluster, false);
    char want[ID_MAX + 8];
    if (!e || !e->claiming)
        return;
    via_node(e->claiming, want, sizeof(want));
    if (strcmp(want, via) != 0)
        return;
    struct link *n = e->claiming;
    e->claiming = NULL;
    if (granted && !e->agent && !e->acting) {
        act(ts, e, n);
        return;
    }
    log_info("cluster=%s: node=%s stays on standby: another replica holds the cluster",
             cluster, n->node);
}

static void relink_idle(const char *key, void *val, void *ud)
{
    struct cluster_entry *e = val;
    if (!e->agent && !e->acting && !e->claiming)
        tnl_relink(ud, key, false);
}

/* The start-up grace is over: clusters still without a link get one. */
static void on_grace_end(struct loop_timer *t)
{
    struct tunnels *ts = (struct tunnels *)((char *)t - offsetof(struct tunnels, grace));
    hmap_each(ts->clusters, relink_idle, ts);
}

/* The cluster agent is back: the acting node agent hands the role back. */
void tnl_step_down(struct cluster_entry *e)
{
    struct link *n = e->acting;
    e->claiming = NULL;
    if (!n)
        return;
    e->acting = NULL;
    n->ts->step_downs++;
    log_info("cluster=%s: node=%s steps down: the cluster agent is back", n->cluster,
             n->node);
    send_role(n, false);
}

/* After an ownership refresh (several replicas): an acting node agent steps
 * down when a cluster agent is up on another replica; a cluster nobody
 * holds gets a stand-in claimed here if a node agent can. */
static void recheck_one(const char *key, void *val, void *ud)
{
    struct tunnels *ts = ud;
    struct cluster_entry *e = val;
    if (e->agent || e->claiming)
        return;
    enum tunnels_held h = held_elsewhere(ts, key);
    if (e->acting && h == TUNNELS_HELD_AGENT) {
        tnl_step_down(e);
        linkstate_set(ts->ls, key, NULL);
    } else if (!e->acting && h == TUNNELS_HELD_NONE) {
        tnl_relink(ts, key, false);
    }
}

void tunnels_recheck(struct tunnels *ts)
{
    if (replicated(ts))
        hmap_each(ts->clusters, recheck_one, ts);
}

/* {"type":"eligible","eligible":BOOL}: whether a node agent can reach the
 * kube-apiserver with its service account, so it can stand in. */
void tnl_node_eligible(struct link *lk, bool eligible)
{
    struct tunnels *ts = lk->ts;
    struct cluster_entry *e = tnl_entry_for(ts, lk->cluster, false);
    if (!e || lk->eligible == eligible)
        return;
    lk->eligible = eligible;
    log_info("cluster=%s: node=%s %s stand in for the cluster agent", lk->cluster, lk->node,
             eligible ? "can" : "can no longer");
    if (!eligible && e->acting == lk) {
        e->acting = NULL;
        send_role(lk, false);
        tnl_relink(ts, lk->cluster, true);
    } else if (!eligible && e->claiming == lk) {
        e->claiming = NULL;
        tnl_relink(ts, lk->cluster, true);
    } else if (eligible && !e->agent && !e->acting && !e->claiming) {
        tnl_relink(ts, lk->cluster, false);
    }
}
