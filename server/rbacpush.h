/*
 * rbacpush: keeps each cluster's drover-managed RBAC in step with its
 * membership. Over the "rbac" service it sends the cluster agent the full
 * list of bindings the cluster should have ({"bindings":[{"user":
 * "drover:alice","role":"cluster-admin"},...]}: owners and every admin ->
 * cluster-admin, members -> edit, viewers -> view) and reads its answer
 * ({"ok":true,...} or {"ok":false,"error":...}).
 *
 * A push is due when the cluster agent's tunnel comes up and when the
 * cluster's membership changes. Changes are debounced per cluster
 * (RBACPUSH_DEBOUNCE_MS), at most one push per cluster is in flight (a
 * change meanwhile sends again after it), and a failed push is retried
 * every RBACPUSH_RETRY_MS. A cluster with no tunnel is not pushed to: its
 * tunnel coming up pushes anyway, so nothing is kept for it.
 *
 * The bindings are read on a datastore worker. Owns one entry per cluster
 * with a push due, in flight or failed, with its timer and stream. Loop
 * thread only.
 */
#ifndef DROVER_SERVER_RBACPUSH_H
#define DROVER_SERVER_RBACPUSH_H

#include <stddef.h>

#include "common/loop.h"
#include "server/db_pool.h"
#include "server/tunnels.h"

#define RBACPUSH_SERVICE     "rbac"
#define RBACPUSH_DEBOUNCE_MS 500
#define RBACPUSH_RETRY_MS    60000
#define RBACPUSH_ANSWER_MAX  (64u * 1024)

struct rbacpush;

/* ts (not owned) carries the pushes. NULL without memory. */
struct rbacpush *rbacpush_new(struct loop *l, struct tunnels *ts);
/* The datastore to read bindings from (not owned); NULL stops new pushes
 * (call it before freeing the pool). */
void rbacpush_set_pool(struct rbacpush *rb, struct db_pool *pool);
/* The membership of cluster changed; NULL: of every cluster (a user deleted,
 * an admin flag changed). */
void rbacpush_changed(struct rbacpush *rb, const char *cluster);
/* cluster's agent tunnel came up: push now (no debounce wait beyond one
 * loop turn). */
void rbacpush_tunnel_up(struct rbacpush *rb, const char *cluster);

struct rbacpush_stats {
    unsigned long pushed, failed;   /* answers ok / pushes that failed */
    size_t pending;                 /* clusters with an entry */
};
void rbacpush_get_stats(const struct rbacpush *rb, struct rbacpush_stats *out);

/* Free the pool and close the tunnels first: both call back into rb.
 * NULL is a no-op. */
void rbacpush_free(struct rbacpush *rb);

/* The request document for a list of (username, role) grants, for tests:
 * builds it into a malloc'd string (caller frees), NULL without memory. */
struct rbacpush_grant {
    const char *username;
    int role;                       /* enum store_role */
};
char *rbacpush_document(const struct rbacpush_grant *g, size_t n);

#endif
