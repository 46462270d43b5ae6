/*
 * replicas: several drover-server replicas on loopback for integration
 * tests (docs/REPLICAS.md): one fresh PostgreSQL database, one peer token,
 * and for each replica its own port, data dir and peer id "r<i>", with
 * short keepalive settings (ping 500 ms, dead after 2 s). The first one
 * starts alone (it makes the shared CA and the admin); the others share
 * its admin token. base.dir holds the token file and whatever the test
 * keeps besides (agent logs).
 */
#ifndef DROVER_TEST_REPLICAS_H
#define DROVER_TEST_REPLICAS_H

#include <stdbool.h>

#include "tests/support/dtest.h"

#define REPLICAS_MAX 3
#define REPLICAS_PEER_TOKEN "replica-peer-token-0123456789abcdef"

struct replicas {
    int n;
    struct dtest rep[REPLICAS_MAX];
    struct dtest base;
    char dburl[256], tokfile[400];
    char servers[400];          /* every replica's URL, a DROVER_SERVER list */
    const char *const *extra;   /* more server flags (NULL-terminated; kept) */
};

/* Starts n replicas with extra flags (may be NULL; must outlive R). */
void replicas_start(struct replicas *R, int n, const char *const *extra);
/* (Re)starts replica i, in a fresh data dir if fresh_dir. */
void replicas_spawn(struct replicas *R, int i, bool fresh_dir);
/* How many running replicas last logged holding the controllers' lease;
 * the last such one into *who. */
int replicas_lease_holders(struct replicas *R, int *who);
/* Stops every replica still running and removes base.dir. */
void replicas_down(struct replicas *R);

#endif
