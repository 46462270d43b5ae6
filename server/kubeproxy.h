/*
 * kubeproxy: the server half of /k8s/clusters/{id}/... Carries one kubectl
 * request at a time from a client connection to the cluster's kube-apiserver
 * through a "kube-api" stream on the cluster's tunnel, and the answer back,
 * byte for byte; upgraded exchanges (exec, attach, port-forward, whatever
 * their subprotocol: websocket or SPDY) become a raw relay. The caller's
 * drover credentials are stripped here; the agent adds the cluster's own and
 * impersonates the identity named in the stream's metadata.
 *
 * Owns the client connection for the length of an exchange and hands it back
 * to the HTTPS server afterwards when both sides allow keep-alive.
 */
#ifndef DROVER_KUBEPROXY_H
#define DROVER_KUBEPROXY_H

#include "server/http_server.h"
#include "server/tunnels.h"

#define KUBEPROXY_PREFIX "/k8s/clusters/"

/*
 * Forwards r (whose path starts with /k8s/clusters/<cluster>) as user
 * drover:<username> in group drover:authenticated. Answers 503 itself when
 * the cluster has no link, and 502 when the link fails before an answer.
 */
void kubeproxy_forward(struct hs *srv, struct tunnels *ts, struct hs_req *r,
                       const char *cluster, const char *username);

/* Exchanges in progress (metrics, tests). */
unsigned long kubeproxy_active(void);

#endif
