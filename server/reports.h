/*
 * reports: the server end of the "report" service. A cluster agent opens a
 * stream, writes one JSON document (report_doc.h) and half-closes; we buffer
 * it (at most REPORT_MAX_DOC bytes: more gets RESET limit), then on a
 * datastore worker parse it and store it (store_cluster_report), and answer
 * {"ok":true} or {"ok":false,"error":"..."} and half-close.
 *
 * Owns each report in progress (its buffer, and its stream until the
 * answer is out). Loop thread only.
 */
#ifndef DROVER_SERVER_REPORTS_H
#define DROVER_SERVER_REPORTS_H

#include <stddef.h>

#include "common/tunnel.h"
#include "server/db_pool.h"
#include "server/tunnels.h"

#define REPORTS_SERVICE "report"
/* Bytes all reports in progress may hold together; a stream that would go
 * past it is refused (RESET unavailable) rather than let agents pin memory. */
#define REPORTS_MAX_BUFFERED (256u * 1024 * 1024)
/* Reports of one cluster in progress at once (its agent sends one every
 * 30 s, an acting node agent too): more get RESET limit, so no one agent can
 * hold the shared budget above and make other clusters' reports wait. */
#define REPORTS_PER_CLUSTER 2

struct reports;

/* ts (not owned) tells which nodes have agents. NULL without memory. */
struct reports *reports_new(struct loop *l, struct tunnels *ts);
/* The datastore to store into (not owned); NULL refuses new reports. */
void reports_set_pool(struct reports *rp, struct db_pool *pool);
/* Takes a stream a cluster agent opened for REPORTS_SERVICE. */
void reports_accept(struct reports *rp, struct tun_stream *s, const char *cluster);
/* Reports stored since start (for tests and metrics). */
unsigned long reports_stored(const struct reports *rp);
/* Free the pool and close the tunnels first: both call back into rp.
 * NULL is a no-op. */
void reports_free(struct reports *rp);

#endif
