/*
 * spdysess: the server end of a SPDY/3.1 connection in the kube-standin
 * test stand-in, over either transport kubectl uses: a connection upgraded
 * with "Upgrade: SPDY/3.1" (kubectl before 1.30 for exec, before 1.31 for
 * port-forward), or a websocket whose binary messages carry the SPDY byte
 * stream (subprotocol SPDY/3.1+portforward.k8s.io, kubectl 1.31 and later).
 *
 * The session owns its transport, the header compression state and an input
 * buffer. It answers PINGs, replies to each SYN_STREAM the owner accepts,
 * and hands stream data, half-closes and resets to the owner (port-forward
 * or exec). Flow control: SPDY/3.1 windows are not enforced by kubectl's
 * spdystream, so none are sent; instead reading pauses while our output
 * queue is above its high-water mark.
 */
#ifndef KUBE_STANDIN_SPDYSESS_H
#define KUBE_STANDIN_SPDYSESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/conn.h"
#include "common/wsconn.h"

struct spdy_sess;

struct spdy_hdr_list {
    /* A SYN_STREAM's headers, lower-case names; only what the owners need. */
    char stream_type[32];       /* "streamtype" */
    char port[16];              /* "port" */
    char request_id[32];        /* "requestid" */
};

struct spdy_sess_ops {
    /* A new stream from the client. Return 0 to accept (a SYN_REPLY is
     * sent), -1 to refuse it (RST_STREAM). */
    int (*on_stream)(void *ud, uint32_t id, const struct spdy_hdr_list *h, bool fin);
    /* The SYN_REPLY of an accepted stream is queued: data may follow. May be
     * NULL. */
    void (*on_replied)(void *ud, uint32_t id);
    void (*on_data)(void *ud, uint32_t id, const uint8_t *p, size_t n);
    /* The client will send no more on id (FIN). */
    void (*on_fin)(void *ud, uint32_t id);
    void (*on_reset)(void *ud, uint32_t id);
    /* The transport is gone (peer closed, error, GOAWAY). The session is
     * freed after this returns. Not called after spdy_sess_close(). */
    void (*on_close)(void *ud, const char *why);
};

/* Each takes ownership of its transport (already upgraded; reading is
 * resumed here). NULL on ENOMEM, with the transport closed. */
struct spdy_sess *spdy_sess_on_conn(struct conn *c, const struct spdy_sess_ops *ops,
                                    void *ud);
struct spdy_sess *spdy_sess_on_ws(struct ws *w, const struct spdy_sess_ops *ops, void *ud);

/* Sends DATA on id (fin: our last frame on it). 0, or -1 if the transport
 * cannot take it (the owner then closes). */
int spdy_sess_data(struct spdy_sess *s, uint32_t id, const void *p, size_t n, bool fin);
int spdy_sess_reset(struct spdy_sess *s, uint32_t id, uint32_t status);
/* Sends GOAWAY and closes once flushed. No callbacks follow; s is freed. */
void spdy_sess_close(struct spdy_sess *s);

#endif
