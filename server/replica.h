/*
 * replica: wires drover-server's replica mode (docs/REPLICAS.md) into its
 * start-up and shutdown, so main.c only calls in at a few points. Replica
 * mode is on when the datastore is PostgreSQL and peer-token-file is set;
 * otherwise the server runs alone and only the controllers' lease exists
 * (always held).
 */
#ifndef DROVER_SERVER_REPLICA_H
#define DROVER_SERVER_REPLICA_H

#include <stdbool.h>
#include <stddef.h>

struct server;
struct db_pool;

/* Settings checks (for main's option table). */
const char *replica_check_id(const char *v);

/* Before TLS is set up: reads the peer settings and, in replica mode
 * without tls-cert, brings the shared CA into data-dir. 0 or -1 (logged);
 * 2 for settings that do not fit together. */
int replica_prepare(struct server *s);
/* The advertised host, for the serving certificate's names (NULL if none). */
const char *replica_tls_host(struct server *s, char *buf, size_t cap);
/* Once the loop and tunnels exist: the peers and the controllers' lease.
 * 0 or -1 (logged). */
int replica_start(struct server *s);
/* The datastore is ready. */
void replica_store_ready(struct server *s, struct db_pool *pool);
/* Before the pool is freed: stop the lease. */
void replica_stop(struct server *s);
/* After the pool is freed: end our leases in the datastore, then free. */
void replica_free(struct server *s);

#endif
