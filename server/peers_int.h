/*
 * peers_int: what the replica-link modules share and nothing else sees:
 * struct peers, the other live replicas (struct member, with our outgoing
 * link to each), incoming links and the cluster owners, and the calls
 * between the modules.
 *
 *   peers.c          the links: dialling other replicas, routing streams
 *                    to the replica that holds a cluster, incoming links,
 *                    lifetime and stats
 *   peers_refresh.c  the heartbeat: our lease, the live replicas and the
 *                    owners of clusters read back from the datastore
 *
 * Loop thread only, like the public API in peers.h.
 */
#ifndef DROVER_SERVER_PEERS_INT_H
#define DROVER_SERVER_PEERS_INT_H

#include <openssl/ssl.h>
#include <stdbool.h>

#include "common/backoff.h"
#include "common/hmap.h"
#include "common/loop.h"
#include "server/auth.h"
#include "server/peers.h"

#define URL_MAX         512

struct member {
    struct peers *p;
    char id[PEERS_ID_MAX + 1];
    char url[URL_MAX];
    struct ws *ws;              /* dialing */
    struct tunnel *t;           /* up */
    struct backoff bo;
    struct loop_timer retry;
    bool seen;                  /* in the last refresh */
};

/* An incoming link: another replica's streams for our clusters. */
struct inlink {
    struct peers *p;
    struct tunnel *t;
    char id[PEERS_ID_MAX + 1];
    struct inlink *prev, *next;
};

struct peers {
    struct loop *loop;
    struct tunnels *ts;
    struct db_pool *pool;
    struct peers_cfg cfg;
    char id[PEERS_ID_MAX + 1];
    char url[URL_MAX];
    char *token;
    char token_hash[AUTH_HEX_SHA256];
    SSL_CTX *ctx;
    char headers[PEERS_ID_MAX + 128];   /* the id line; the token goes apart */
    char *auth_headers;
    struct hmap *members;       /* id -> struct member (other live replicas) */
    struct hmap *owners;        /* cluster -> struct owner */
    struct inlink *incoming;
    struct loop_timer tick;
    bool inflight, controller;
    unsigned ticks;
};

/* The preferred holder of a cluster's link: a cluster agent's replica
 * before an acting node agent's. */
struct owner {
    bool agent;
    char peer[];
};

/* Dials m's replica (again after a backoff when that fails). */
void pe_dial(struct member *m);
/* Closes m's link and frees m (taken out of p->members by the caller). */
void pe_member_free(struct member *m);

/* peers_refresh.c: one heartbeat (p->tick's callback): renews our lease,
 * reads the live replicas and cluster owners, rearms itself. */
void pe_on_tick(struct loop_timer *t);
/* An hmap_each callback freeing a struct owner (p->owners' values). */
void pe_free_owner(const char *key, void *val, void *ud);

#endif
