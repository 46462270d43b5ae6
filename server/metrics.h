/*
 * metrics: the server's counters and their Prometheus text rendering for
 * GET /metrics. Loop thread only.
 */
#ifndef DROVER_METRICS_H
#define DROVER_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include "server/db_pool.h"
#include "server/tunnels.h"

/* Counts one answered API request: status code and latency. */
void metrics_request(int status, uint64_t usec);

/* Renders every metric into a malloc'd buffer (caller frees). NULL on ENOMEM. */
char *metrics_render(struct tunnels *ts, struct db_pool *pool, size_t *len);

#endif
