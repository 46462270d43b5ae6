/*
 * standin: the stand-in Kubernetes API server (tests/kube-standin) beside a
 * dtest deployment, as the cluster's apiserver, and a cluster agent pointed
 * at it with the service-account token only the stand-in knows.
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

/* The audit file's size now: later calls are past it. */
long standin_audit_mark(const struct standin *s);
/* Audit lines past mark containing every string of the NULL-terminated
 * needles. */
int standin_audit_count(const struct standin *s, long mark, const char *const needles[]);

#endif
