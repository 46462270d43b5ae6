/*
 * health: the agents' probe endpoint for the kubelet. Plain HTTP on
 * health-listen: GET /healthz answers 200 while the event loop runs;
 * GET /readyz answers 200 when the agent holds its tunnel (or stands by
 * because a newer agent of its cluster holds it) and 503 otherwise.
 * One request per connection, a small head, a short deadline.
 */
#ifndef DROVER_HEALTH_H
#define DROVER_HEALTH_H

#include <stdbool.h>

#include "common/loop.h"
#include "common/netaddr.h"

struct health;

/* ready(ud) decides /readyz. NULL with *err on failure to listen. */
struct health *health_new(struct loop *l, const struct netaddr *a,
                          bool (*ready)(void *ud), void *ud, const char **err);
void health_free(struct health *h);

#endif
