/*
 * snapshots: the server's half of etcd snapshots (docs/PROTOCOL.md §11):
 * asks node agents for snapshots and stores what they stream in the
 * datastore in chunks; streams stored snapshots back to etcd nodes for a
 * restore and records each node's result; asks nodes to delete their copy.
 *
 * Memory per transfer is bounded: a snapshot coming in holds at most
 * SNAP_CHUNK being filled plus SNAP_WRITES_MAX chunks on their way to the
 * datastore (beyond that the agent's stream credit is held back, so the
 * agent waits); a restore going out holds one chunk per node. The loop
 * thread never waits on the datastore: every read and write goes through
 * the pool.
 *
 * Owns the transfers in progress. Loop thread only.
 */
#ifndef DROVER_SERVER_SNAPSHOTS_H
#define DROVER_SERVER_SNAPSHOTS_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "server/db_pool.h"
#include "server/tunnels.h"

#define SNAP_CHUNK (256 * 1024)
#define SNAP_WRITES_MAX 2
#define SNAP_ID_MAX 32
#define SNAP_ROLE "etcd"

struct snapshots;

struct snapshots *snapshots_new(struct loop *l, struct tunnels *ts);
/* The datastore is ready (NULL: going away). The first call also marks what
 * a previous run left unfinished as failed / interrupted, then calls
 * recovered(ud) (may be NULL), so the API can wait for that before it
 * shows snapshots. */
void snapshots_set_pool(struct snapshots *sn, struct db_pool *pool,
                        void (*recovered)(void *ud), void *ud);
/* Several replicas: this one's peer id, recorded with each task it runs,
 * so the start-up fix-up touches only its own (and dead replicas') tasks.
 * Before snapshots_set_pool. */
void snapshots_set_replica(struct snapshots *sn, const char *id);
/* The controllers' lease holder: marks failed / interrupted the tasks of
 * replicas whose membership lease has run out (they can never finish). */
void snapshots_sweep(struct snapshots *sn);
/* Ends every transfer (their rows are fixed at the next start). Free the
 * pool first. NULL is a no-op. */
void snapshots_free(struct snapshots *sn);

/* A transfer finished: the snapshot of cluster is done (ok) or failed. */
void snapshots_on_finished(struct snapshots *sn,
                           void (*fn)(void *ud, const char *cluster, const char *sid,
                                      bool scheduled, bool ok),
                           void *ud);

/*
 * Starts a snapshot of cluster on node (NULL: any connected node agent with
 * the etcd role, preferably on this replica; one held by another replica is
 * reached through it). cb(ud, status, sid, msg) follows on the loop: 202 with
 * the new id once its row is stored and the agent asked; 409 when there is
 * no such agent; 404 if the cluster is gone; 503 on a datastore failure.
 */
typedef void (*snapshots_cb)(void *ud, int status, const char *sid, const char *msg);
void snapshots_create(struct snapshots *sn, const char *cluster, const char *node,
                      bool scheduled, snapshots_cb cb, void *ud);
/* Whether a snapshot of cluster is being taken by this server now. */
bool snapshots_busy(struct snapshots *sn, const char *cluster);

/*
 * Restores done snapshot sid (size bytes, sha256) of cluster on node (NULL:
 * every connected node agent with the etcd role). Returns 202 with the
 * restore document (JSON text, malloc'd) in *doc, and saved(ud) follows on
 * the loop (never from inside this call) once that document is stored, so
 * an answer sent then is seen by any later GET; or 409 with why in msg (no
 * such agent; a restore of this cluster is running), 503 without memory
 * (then saved is not called).
 */
int snapshots_restore(struct snapshots *sn, const char *cluster, const char *sid, int64_t size,
                      const char *sha256, const char *node, void (*saved)(void *ud), void *ud,
                      char **doc, char *msg, size_t msgcap);

/* Whether sid is being streamed to a node for a restore by this server. */
bool snapshots_restoring(struct snapshots *sn, const char *sid);

/* Asks node (if connected) to remove its copy of sid; fire and forget. */
void snapshots_forget(struct snapshots *sn, const char *cluster, const char *node,
                      const char *sid);

/* RFC 3339 UTC with milliseconds, or JSON null for ms < 0 (the API's time
 * format, for the documents stored by snapshots and upgrades). */
json_t *snap_json_time(int64_t ms);

#endif
