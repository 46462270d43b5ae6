/*
 * leases: a named lease in the datastore for work that must run on one
 * replica at a time (controllers: the sweep of dead replicas' links, the
 * snapshot schedule, ...). The holder renews it every ttl/3; another replica
 * takes it once it has expired. A holder that cannot renew gives it up by
 * itself after 2/3 of the ttl, before anyone else may take it, so two
 * replicas never both believe they hold it (given clocks in step).
 * On SQLite there is one replica: it always holds every lease.
 *
 * Owns its timer and its state; renewals run on the datastore pool.
 * Loop thread only.
 */
#ifndef DROVER_SERVER_LEASES_H
#define DROVER_SERVER_LEASES_H

#include <stdbool.h>
#include <stdint.h>

#include "common/loop.h"
#include "server/db_pool.h"

struct lease;

/* on_change(ud, held) runs whenever this replica gains or loses the lease. */
struct lease *lease_new(struct loop *l, const char *name, const char *holder,
                        uint64_t ttl_ms, void (*on_change)(void *ud, bool held), void *ud);
/* Starts trying: shared (several replicas) through pool, else held now. */
void lease_start(struct lease *ls, struct db_pool *pool, bool shared);
bool lease_held(const struct lease *ls);
/* Gives the lease up (if held) so another replica takes it at once, and
 * stops. Call before the pool is freed; no on_change follows. */
void lease_stop(struct lease *ls);
/* Free the pool first. NULL is a no-op. */
void lease_free(struct lease *ls);

#endif
