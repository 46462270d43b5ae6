/*
 * upgrade: taking a request of the kube-standin test stand-in over into a
 * streaming protocol, shared by exec and port-forward: a websocket with one
 * of the offered subprotocols, or the older "Upgrade: SPDY/3.1" with an
 * X-Stream-Protocol-Version.
 */
#ifndef KUBE_STANDIN_UPGRADE_H
#define KUBE_STANDIN_UPGRADE_H

#include <stdbool.h>

#include "common/conn.h"
#include "common/wsconn.h"

struct kreq;

enum upgrade_kind { UP_NONE, UP_WEBSOCKET, UP_SPDY };

/* What the client asks to upgrade to. */
enum upgrade_kind upgrade_kind(const struct kreq *k);
/* The first of want (NULL-terminated, in our order of preference) that the
 * client offers: in Sec-WebSocket-Protocol for a websocket, in any
 * X-Stream-Protocol-Version header for SPDY. NULL if none. */
const char *upgrade_pick(const struct kreq *k, const char *const *want);
/* Answers 101 with protocol and takes the connection over (k is freed).
 * NULL after answering an error, or if the client is gone. */
struct ws *upgrade_websocket(struct kreq *k, const char *protocol, size_t max_message);
struct conn *upgrade_spdy(struct kreq *k, const char *protocol);

#endif
