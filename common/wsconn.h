/*
 * wsconn: a websocket (RFC 6455) over a conn, for both ends of a tunnel.
 *
 * Owns the conn it runs on and the buffers for partial frames and fragmented
 * messages (capped by max_message, freed when a message completes so an idle
 * websocket holds none). Answers pings and close frames itself; the owner
 * sees whole messages. Client side it also performs the HTTP upgrade and
 * reports a refused upgrade with the server's status and error text.
 */
#ifndef DROVER_WSCONN_H
#define DROVER_WSCONN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>

#include "common/conn.h"
#include "common/loop.h"

struct ws;

struct ws_ops {
    /* Client: the upgrade succeeded. May be NULL. */
    void (*on_open)(struct ws *w);
    /* A whole text or binary message (opcode WS_OP_TEXT / WS_OP_BINARY).
     * The bytes are only valid during the call. */
    void (*on_message)(struct ws *w, uint8_t opcode, const uint8_t *data, size_t len);
    /* The output queue drained below half its high-water mark. May be NULL. */
    void (*on_drain)(struct ws *w);
    /* The websocket is gone (error, peer close, refused upgrade). Not called
     * after ws_close(). The ws is freed when this returns. */
    void (*on_close)(struct ws *w, const char *why);
};

struct ws_client_opts {
    const char *path;           /* e.g. "/v3/connect" */
    const char *host;           /* Host header, SNI and certificate name */
    bool host_is_ip;
    const char *subprotocol;    /* required in the answer when set */
    const char *extra_headers;  /* "Name: value\r\n" lines, may be NULL */
    size_t max_message;
    const struct sockaddr *src; /* source address to bind, or NULL */
    socklen_t src_len;
};

/* Starts connect + TLS + upgrade. NULL only if no socket could be made;
 * every later failure arrives through on_close. */
struct ws *ws_client_connect(struct loop *l, const struct sockaddr *addr,
                             socklen_t addrlen, SSL_CTX *ctx,
                             const struct ws_client_opts *o,
                             const struct ws_ops *ops, void *ud);

/*
 * Server side: takes over c (whose 101 answer the caller has queued) and
 * parses early (bytes that followed the request head). NULL on ENOMEM, with
 * c closed.
 */
struct ws *ws_server_attach(struct conn *c, const uint8_t *early, size_t early_len,
                            size_t max_message, const struct ws_ops *ops, void *ud);

struct http_request;
/*
 * Server side, before attaching: checks that req is a websocket upgrade
 * (GET, HTTP/1.1, Upgrade, Connection, version 13, a valid key) that offers
 * subprotocol, and writes the 101 answer into out. Returns its length, or -1
 * with *why set to a reason suitable for a 400 answer.
 */
ssize_t ws_upgrade_answer(const struct http_request *req, const char *subprotocol,
                          char *out, size_t cap, const char **why);

/* Queues one message made of a then b (b may be NULL). 0, or -1 if the
 * connection is closing or its queue cap would be passed. */
int ws_send(struct ws *w, uint8_t opcode, const void *a, size_t alen,
            const void *b, size_t blen);
int ws_ping(struct ws *w);
/* Pings the peer has sent us (each answered with a pong). */
uint64_t ws_pings_received(const struct ws *w);
/* Sends a close frame and closes once it is flushed. No callbacks follow. */
void ws_close(struct ws *w, uint16_t code, const char *reason);

void *ws_ud(const struct ws *w);
void ws_set_ud(struct ws *w, void *ud);
void ws_set_ops(struct ws *w, const struct ws_ops *ops);
struct conn *ws_conn(const struct ws *w);
size_t ws_out_pending(const struct ws *w);
void ws_set_high_water(struct ws *w, size_t bytes);
/* Loop time of the last byte received. */
uint64_t ws_last_rx_ms(const struct ws *w);
/* Client: the HTTP status of a refused upgrade (0 if none). */
int ws_refused_status(const struct ws *w);
/* Bytes held by the websocket and its connection (memory benchmarks). */
size_t ws_buffered(const struct ws *w);

#endif
