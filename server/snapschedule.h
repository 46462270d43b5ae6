/*
 * snapschedule: takes each cluster's scheduled etcd snapshots on time
 * (etcdSnapshotSchedule.intervalMinutes) and deletes the oldest scheduled
 * ones beyond its retention.
 *
 * The due time is derived from the datastore, not from memory: the next
 * snapshot is due one interval after the newest scheduled one (done or
 * failed), or now if there is none. A server that was down for many
 * intervals therefore takes one snapshot when it comes back, not a burst.
 * A cluster without a connected etcd node agent is skipped and retried at
 * the next tick. Only manual snapshots are never pruned.
 *
 * Several replicas share the datastore: only the one told it leads
 * (snapschedule_set_leader, true by default until a lease exists) acts.
 *
 * Owns its tick timer and the pool work in flight. Loop thread only.
 */
#ifndef DROVER_SERVER_SNAPSCHEDULE_H
#define DROVER_SERVER_SNAPSCHEDULE_H

#include <stdbool.h>
#include <stdint.h>

#include "server/db_pool.h"
#include "server/snapshots.h"

struct snapschedule;

/* unit_ms: the length of one "minute" of intervalMinutes; 60000 except in
 * tests (the server's debug-snapshot-minute setting). */
struct snapschedule *snapschedule_new(struct loop *l, struct snapshots *sn, uint64_t unit_ms);
/* Starts ticking once the datastore is ready; NULL stops. */
void snapschedule_set_pool(struct snapschedule *ss, struct db_pool *pool);
/* Whether this replica runs the schedules (default true). */
void snapschedule_set_leader(struct snapschedule *ss, bool leader);
/* Tell it a snapshot finished (prunes after scheduled ones). */
void snapschedule_finished(struct snapschedule *ss, const char *cluster, bool scheduled);
/* Free the pool first. NULL is a no-op. */
void snapschedule_free(struct snapschedule *ss);

/*
 * When the next scheduled snapshot is due (unix ms): one interval after
 * last_ms (the newest scheduled snapshot; < 0 if none), never before
 * now_ms's past, i.e. at most one catch-up; INT64_MAX when interval_units
 * is 0 (off). Pure.
 */
int64_t snapschedule_due(int64_t last_ms, int64_t interval_units, uint64_t unit_ms,
                         int64_t now_ms);
/* How often to look: a sixth of a unit, within [100 ms, 10 s]. Pure. */
uint64_t snapschedule_tick_ms(uint64_t unit_ms);

#endif
