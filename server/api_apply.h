/*
 * api_apply: POST /v3/clusters/{id}/apply. Takes Kubernetes objects (YAML,
 * one or more documents; or JSON: an object, a List, an array) and has the
 * cluster agent server-side-apply them as the caller, over an "apply"
 * stream on the cluster's tunnel (docs/PROTOCOL.md section 11); answers
 * with one result per object, in the order of the request.
 *
 *   200 {"data":[results],"summary":{...}}          every object applied
 *   422 {"error":{...,"code":"ApplyFailed"},"data":[...],"summary":{...}}
 *                                                   some objects failed
 *   503 {"error":{...},"data":[what was applied]}   the link was lost midway
 *                                                   (502: the agent broke
 *                                                   the exchange)
 *
 * Before any object goes: 401 (token), 404 (not a member; never says
 * whether the cluster exists), 503 at once when the cluster has no link,
 * 415 (media type), 413 (body over APPLY_MAX_BODY), 400 naming the document
 * that is wrong (applydoc.h). Membership is all the server checks: the
 * agent impersonates drover:<username> in drover:authenticated, so the
 * cluster's RBAC decides per object (a viewer gets 403 results).
 *
 * The body is parsed on a datastore worker (an 8 MiB YAML body takes a
 * while; the loop thread never does it). At most APPLY_MAX_ACTIVE applies
 * run at once. Each holds its body, its objects serialized and their
 * results; the stream carries them with flow control both ways. Owns
 * nothing beyond its requests: each ends with its stream or its answer.
 */
#ifndef DROVER_SERVER_API_APPLY_H
#define DROVER_SERVER_API_APPLY_H

#include <stdbool.h>

#include "server/http_server.h"

#define APPLY_MAX_BODY (8u * 1024 * 1024)
#define APPLY_MAX_ACTIVE 16
#define APPLY_MAX_RESULT (64u * 1024)       /* one result line from the agent */
#define APPLY_MAX_RESULTS (8u * 1024 * 1024) /* all of them */

struct server;

/* Whether r's path is /v3/clusters/<id>/apply; the id into cluster[64]. */
bool api_apply_path(const struct hs_req *r, char cluster[64]);
/* Handles it (any method: others get 405), answering now or later. */
void api_apply(struct server *s, struct hs_req *r, const char *cluster);

/* Applies in progress (tests, metrics). */
unsigned long api_apply_active(void);

#endif
