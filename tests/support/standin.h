/*
 * standin: the stand-in Kubernetes API server (tests/kube-standin) beside a
 * dtest deployment, as the cluster's apiserver, and a cluster agent pointed
 * at it with the service-account token only the stand-in knows; and the
 * fixture bodies the suites of such a deployment share (standin_up/down).
 */
#ifndef DROVER_TEST_STANDIN_H
#define DROVER_TEST_STANDIN_H

#include "tests/support/dtest.h"

#define STANDIN_SA_USER "system:serviceaccount:drover-system:drover"

struct standin {
    struct proc proc;
    int port;
    char dir[400];              /* its data directory (ca.crt is there) */
    char audit[400];            /* one JSON line per request */
    char sa_token[64];
};

/* Starts it in d->dir with only the agent's service account bound to
 * cluster-admin (drover users' access comes from the agent's RBAC keeper). */
void standin_start(struct standin *s, struct dtest *d, const char *sa_token);
/* The same with extra arguments (NULL-terminated), e.g. more --token and
 * --admin pairs for other agents. */
void standin_start_with(struct standin *s, struct dtest *d, const char *sa_token,
                        const char *const extra[]);
/* Starts d's cluster agent against it and waits for the tunnel. */
void standin_start_agent(struct standin *s, struct dtest *d);
void standin_stop(struct standin *s);

/* The usual fixture: d's server (fresh, d zeroed first), the stand-in and
 * the cluster agent, connected. */
void standin_up(struct standin *s, struct dtest *d, const char *sa_token);
/* Its teardown: the stand-in, the deployment, then any process left. */
void standin_down(struct standin *s, struct dtest *d);
/* Writes to path a kubeconfig straight at the stand-in, as the agent's
 * service account (to look at or change the cluster behind drover's back). */
void standin_kubeconfig(const struct standin *s, const char *path);

/* The audit file's size now: later calls are past it. */
long standin_audit_mark(const struct standin *s);
/* Audit lines past mark containing every string of the NULL-terminated
 * needles. */
int standin_audit_count(const struct standin *s, long mark, const char *const needles[]);

#endif
