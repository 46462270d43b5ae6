/*
 * reporter: the cluster agent's "report" stream to drover-server (run by a
 * node agent while it stands in for the cluster agent). While the agent
 * holds its tunnel it tells the server what the cluster looks like:
 * the Kubernetes version, whether /readyz passes, the nodes (roles, kubelet
 * version, readiness, addresses, capacity) and the 50 newest Warning
 * events. One JSON document per stream, answered with {"ok":...}.
 *
 * Reports go out when the reporter starts (the tunnel came up), within 1 s
 * of a node change (a node watch), and at least every 30 s; never more than
 * one at a time (a trigger during a report queues exactly one more).
 * Failures are logged at warn when they start or change, not every time.
 *
 * Owns its node watch, its requests, its timers and its stream; the caller
 * owns the kubeclient and the tunnel, both of which must outlive it.
 */
#ifndef DROVER_REPORTER_H
#define DROVER_REPORTER_H

#include <jansson.h>

#include "common/kubeclient.h"
#include "common/tunnel.h"

#define REPORTER_PERIOD_MS 30000
#define REPORTER_DEBOUNCE_MS 1000
#define REPORTER_MAX_EVENTS 50

struct reporter;

/* Starts reporting over t. NULL on ENOMEM. */
struct reporter *reporter_new(struct loop *l, struct kubeclient *kc, struct tunnel *t);
/* Stops: cancels what is in flight (resetting a report stream). NULL ok. */
void reporter_free(struct reporter *r);

/*
 * The report document from the apiserver's answers (pure): version (the
 * /version object), ready_status and ready_text (/readyz's status and body
 * text; status 0 if it did not answer), nodes and events (NodeList and
 * EventList, either may be NULL). New reference, NULL on ENOMEM.
 */
json_t *reporter_doc(const json_t *version, int ready_status, const char *ready_text,
                     const json_t *nodes, const json_t *events);

#endif
