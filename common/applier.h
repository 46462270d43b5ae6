/*
 * applier: the cluster agent's "apply" service (docs/PROTOCOL.md section
 * 11). drover-server sends Kubernetes objects, one compact JSON object per
 * line, on behalf of a user named in the stream's metadata
 * ({"user":"drover:alice","groups":["drover:authenticated"]}); the applier
 * server-side-applies each one in turn as that user and answers one JSON
 * result per line, in the same order:
 *
 *   {"apiVersion":"apps/v1","kind":"Deployment","namespace":"default",
 *    "name":"web","outcome":"created","status":201}
 *
 * outcome is created, configured, unchanged or failed (then "message" holds
 * the kube-apiserver's reason and status its HTTP status). A failed object
 * does not stop the ones after it.
 *
 * Each object: its resource is found by discovery (kind and apiVersion to
 * plural name and scope; cached per group/version for APPLIER_DISCOVERY_TTL_MS
 * and fetched again on a miss, so a kind a CRD earlier in the same request
 * made is found), a namespaced object without a namespace goes to
 * "default", a cluster-scoped one loses any namespace it names. Then, with
 * the agent's own service-account token and Impersonate-User/-Group, a GET
 * (to tell unchanged from configured by resourceVersion) and
 * PATCH ...?fieldManager=drover&force=true with Content-Type
 * application/apply-patch+yaml. So the cluster's RBAC decides: a viewer's
 * apply fails per object with the apiserver's 403.
 *
 * Memory per stream is bounded: objects waiting to be applied up to
 * APPLIER_QUEUE_SOFT (past that the stream's credit is held back, so the
 * server waits), one line being read (at most APPLYDOC_MAX_OBJECT), and
 * results not yet sent up to APPLIER_OUT_SOFT (past that applying pauses).
 *
 * Owns its discovery cache and, through the streams, one job per stream.
 */
#ifndef DROVER_APPLIER_H
#define DROVER_APPLIER_H

#include <stddef.h>
#include <stdint.h>

#include "common/kubeclient.h"
#include "common/loop.h"
#include "common/tunnel.h"

#define APPLIER_SERVICE "apply"
#define APPLIER_FIELD_MANAGER "drover"
#define APPLIER_DISCOVERY_TTL_MS (10 * 60 * 1000)
#define APPLIER_QUEUE_SOFT (1024u * 1024)
#define APPLIER_OUT_SOFT (64u * 1024)

struct applier;

/* kc (not owned) makes the calls. NULL without memory. */
struct applier *applier_new(struct loop *l, struct kubeclient *kc);
/* Close the tunnel first (its streams let go of their jobs). NULL is a
 * no-op. */
void applier_free(struct applier *ap);

/* Serves an "apply" stream the server opened (meta as sent). */
void applier_serve(struct applier *ap, struct tun_stream *s, const uint8_t *meta,
                   size_t meta_len);

#endif
