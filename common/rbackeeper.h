/*
 * rbackeeper: the agent's "rbac" service. drover-server sends who may do
 * what in this cluster ({"bindings":[{"user":"drover:alice","role":"edit"}]},
 * docs/PROTOCOL.md and the report/rbac contract); the keeper makes the
 * cluster's ClusterRoleBindings say the same and answers with what it
 * changed.
 *
 * It owns only the bindings it made: those labelled drover.io/managed=true,
 * one per user, named drover-user-<username>. Bindings without the label are
 * never read, changed or deleted, whatever their name.
 */
#ifndef DROVER_RBACKEEPER_H
#define DROVER_RBACKEEPER_H

#include <jansson.h>
#include <stddef.h>

#include "common/kubeclient.h"
#include "common/tunnel.h"

#define RBACKEEPER_MAX_DOC (16u * 1024 * 1024)
#define RBACKEEPER_LABEL "drover.io/managed"

/* Serves an "rbac" stream the server opened: reads the request (at most
 * RBACKEEPER_MAX_DOC, else RESET limit), reconciles, answers, closes. */
void rbackeeper_serve(struct kubeclient *kc, struct tun_stream *s);

/* ---- the plan (pure; exported for the tests) ---- */

enum rbackeeper_op_kind { RBK_CREATE, RBK_REPLACE, RBK_DELETE };

struct rbackeeper_op {
    enum rbackeeper_op_kind kind;
    char name[256];             /* the binding's name */
    json_t *binding;            /* CREATE/REPLACE: the object to create (owned) */
};

struct rbackeeper_plan {
    struct rbackeeper_op *ops;  /* deletions first, then replacements, then creations */
    size_t n;
};

/*
 * What to do to make actual (a ClusterRoleBindingList of the managed
 * bindings) match request (the "rbac" document). 0 with *out filled (free
 * with rbackeeper_plan_free), or -1 with err for a malformed request (a user
 * without the drover: prefix or with characters a name cannot hold, a role
 * that is not a name, more than 100000 bindings). A user listed twice keeps
 * the stronger of cluster-admin > edit > view.
 */
int rbackeeper_plan(const json_t *request, const json_t *actual,
                    struct rbackeeper_plan *out, char *err, size_t errlen);
void rbackeeper_plan_free(struct rbackeeper_plan *p);

/* The ClusterRoleBinding the keeper makes for drover:<username> (new ref). */
json_t *rbackeeper_binding(const char *username, const char *role);

#endif
