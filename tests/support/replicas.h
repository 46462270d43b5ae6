/*
 * replicas: several drover-server replicas on one real PostgreSQL database
 * (docs/REPLICAS.md) for integration tests: each on loopback with its own
 * port, data dir and peer id ("r<i>"), one shared peer token, short
 * keepalive settings (ping 500 ms, dead after 2 s); and agents (cluster or
 * node) pointed at a stand-in apiserver and at chosen replicas.
 */
#ifndef DROVER_TEST_REPLICAS_H
#define DROVER_TEST_REPLICAS_H

#include <stdbool.h>

#include "tests/support/dtest.h"
#include "tests/support/standin.h"

#define REPLICAS_MAX 4
#define REPLICAS_PEER_TOKEN "replica-peer-token-0123456789abcdef"

struct replica_set {
    int n;
    struct dtest rep[REPLICAS_MAX];
    struct dtest base;          /* its dir: the token, the stand-in, agent logs */
    char dburl[256], tokfile[400];
    char servers[400];          /* every replica's URL, comma-separated */
    const char *const *extra;   /* more server flags (NULL-terminated; kept) */
};

/* A fresh database and n replicas, the first one alone first (it makes the
 * CA and prints the admin password, which the others share). extra: more
 * server flags for every replica (may be NULL; must outlive rs). */
void replicas_start(struct replica_set *rs, int n, const char *const *extra);
/* Starts replica i again (with a fresh data dir if asked; same port). */
void replicas_spawn(struct replica_set *rs, int i, bool fresh_dir);
/* How many running replicas last logged holding the controllers' lease;
 * the last such one into *who. */
int replicas_lease_holders(struct replica_set *rs, int *who);
/* Stops every replica and removes the base dir. */
void replicas_down(struct replica_set *rs);
/* Replica i's URL into buf (a DROVER_SERVER pinning an agent to it). */
const char *replicas_url(const struct replica_set *rs, int i, char *buf, size_t cap);

struct replica_agent {
    const char *servers;        /* DROVER_SERVER */
    const char *cluster, *token;
    const char *node;           /* NULL: a cluster agent; else a node agent */
    const char *sa_token;       /* its service-account token at the stand-in */
    const char *log;
};
/* Spawns the agent against stand-in ks. */
void replicas_spawn_agent(struct replica_set *rs, const struct standin *ks, struct proc *p,
                          const struct replica_agent *a);

#endif
