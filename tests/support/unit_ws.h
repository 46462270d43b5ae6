/*
 * unit_ws: the two ends of a tunnel websocket over loopback, for the unit
 * tests of what runs on one (tunnel, splice). The listening end answers the
 * HTTP upgrade itself (ws_upgrade_answer, ws_server_attach), as the
 * server's /v3/connect does; the dialling end is ws_client_connect with the
 * tunnel's subprotocol. What a test builds on each websocket (a tunnel, raw
 * frames) stays in the test.
 */
#ifndef DROVER_TEST_UNIT_WS_H
#define DROVER_TEST_UNIT_WS_H

#include <openssl/ssl.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/loop.h"
#include "common/netaddr.h"
#include "common/wsconn.h"

/* An on_message that drops the message: for a websocket's first moments,
 * before a tunnel takes it. */
void unit_ws_ignore(struct ws *w, uint8_t op, const uint8_t *d, size_t n);

/* The listening end of one upgrade. Until on_ws takes the websocket its
 * messages are ignored and a close fails the test. */
struct unit_ws_accept {
    void (*on_ws)(struct unit_ws_accept *a, struct ws *w);
    void *ud;
    bool done;                  /* the upgrade was answered */
    char buf[8192];             /* the request so far */
    size_t len;
};
/* Takes the accepted fd on l (TLS if tls) and answers its upgrade into a. */
void unit_ws_accept(struct loop *l, int fd, SSL_CTX *tls, struct unit_ws_accept *a);

/* Dials addr (TLS if tls) for path with the tunnel's subprotocol and
 * message limit; the websocket (asserted non-NULL). */
struct ws *unit_ws_dial(struct loop *l, const struct netaddr *addr, SSL_CTX *tls,
                        const char *path, const struct ws_ops *ops, void *ud);

#endif
