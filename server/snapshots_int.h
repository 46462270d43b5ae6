/*
 * snapshots_int: what the snapshot modules share and nothing else sees:
 * struct snapshots itself, the agent's answer line (struct head) and the
 * pool job that every datastore read and write of a transfer goes through.
 *
 *   snapshots.c          lifecycle (new, set_pool, recovery, sweep, free),
 *                        the job helper, the answer line, forgetting
 *   snapshots_take.c     creating a snapshot and taking it from the agent
 *   snapshots_restore.c  streaming a stored snapshot back to etcd nodes
 *
 * Loop thread only, like the public API in snapshots.h.
 */
#ifndef DROVER_SERVER_SNAPSHOTS_INT_H
#define DROVER_SERVER_SNAPSHOTS_INT_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "server/db.h"
#include "server/snapshots.h"

#define HEAD_MAX 8192
#define NAME_MAX_ 64
#define ERR_MAX 1024

struct take;
struct restore;

struct snapshots {
    struct loop *loop;
    struct tunnels *ts;
    struct db_pool *pool;
    bool recovered;
    struct take *takes;
    struct restore *restores;
    void (*on_finished)(void *ud, const char *cluster, const char *sid, bool scheduled,
                        bool ok);
    void *ud;
    void (*on_recovered)(void *ud);
    void *rec_ud;
    char me[NAME_MAX_];         /* this replica's id ("": a single server) */
    bool sweeping;
};

/* An answer line: the JSON object the agent sends before any data. */
struct head {
    char buf[HEAD_MAX];
    size_t len;
    bool done;
};

/* ---- pool jobs ---- */

/* One datastore task and its answer: work(db, j) runs on a pool thread,
 * done(j, rc) back on the loop; the fields are the task's arguments and
 * results, whichever the task needs. */
struct job;
typedef int (*job_work_fn)(struct db *db, struct job *j);
typedef void (*job_done_fn)(struct job *j, int rc);

struct job {
    job_work_fn work;
    job_done_fn done;
    void *owner;
    char id[SNAP_ID_MAX], cluster[NAME_MAX_], node[NAME_MAX_];
    int64_t seq, size, now;
    bool flag;
    uint8_t *data;
    size_t len;
    char *text;
    const char *me;             /* the replica running the task (NULL: alone) */
    char err[ERR_MAX];
    char dberr[200];
};

/* Feeds n bytes; returns how many belong to the line (all, or up to and
 * including its '\n'), or -1 if the line is too long. */
ssize_t snap_head_feed(struct head *h, const uint8_t *p, size_t n);

/* A job owned by owner (NULL without memory); its now is the current time.
 * The job is freed after done runs. */
struct job *snap_job_new(void *owner, job_work_fn work, job_done_fn done);
/* Submits j (a write unless read). On failure j is freed and -1 returned;
 * done is not called. */
int snap_job_submit(struct snapshots *sn, struct job *j, bool read);

/* snapshots_free's helpers: end every take / restore, resetting their
 * streams, and free them. */
void snap_takes_free(struct snapshots *sn);
void snap_restores_free(struct snapshots *sn);

#endif
