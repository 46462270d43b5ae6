/*
 * tunnel: many streams over one websocket, for both ends (docs/PROTOCOL.md).
 *
 * Owns its websocket, its streams and their id table, and the keepalive
 * timer. Per-stream credit flow control bounds what a stream can cost: a
 * sender never has more unacknowledged bytes in flight than the receiver
 * granted, and the receiver only grants more as its consumer drains, so a
 * stalled reader pins at most one window and never delays other streams.
 *
 * Callbacks that end a stream (on_end) or the tunnel (on_down) are made only
 * for ends the owner did not ask for; what the owner ends itself it already
 * knows about.
 */
#ifndef DROVER_TUNNEL_H
#define DROVER_TUNNEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/loop.h"
#include "common/wsconn.h"

#define TUN_SUBPROTOCOL "drover-tunnel.v1"
#define TUN_DEFAULT_WINDOW (256u * 1024)
/* An opener may send this much before OPEN_OK arrives (saves a round trip
 * for request/response streams); acceptors must be able to hold it. */
#define TUN_EARLY_WINDOW (64u * 1024)
#define TUN_MAX_MESSAGE (1024u * 1024)

struct tunnel;
struct tun_stream;

struct tunnel_cfg {
    uint64_t ping_interval_ms;  /* default 5000 */
    uint64_t dead_after_ms;     /* default 15000 */
    uint32_t window;            /* receive window we grant; default 256 KiB */
    uint32_t max_streams;       /* streams the peer may open; default 1024 */
};

struct tunnel_ops {
    /* The peer opened a stream for service with metadata meta. Call
     * tun_stream_accept() (now or later) or tun_stream_reset(). */
    void (*on_open)(struct tunnel *t, struct tun_stream *s, const char *service,
                    const uint8_t *meta, size_t meta_len);
    /* A CONTROL message (JSON text). May be NULL. */
    void (*on_control)(struct tunnel *t, const uint8_t *json, size_t len);
    /* The tunnel is gone (peer silent, websocket closed, protocol error);
     * every stream has already had on_end. Freed when this returns. */
    void (*on_down)(struct tunnel *t, const char *why);
};

struct tun_stream_ops {
    /* Our OPEN was accepted. May be NULL. */
    void (*on_opened)(struct tun_stream *s);
    /* Data from the peer. Always take all of it (it is within the window we
     * granted); call tun_stream_consumed() once it has left our hands. */
    void (*on_data)(struct tun_stream *s, const uint8_t *p, size_t n);
    /* The peer half-closed: no more data will come. */
    void (*on_eof)(struct tun_stream *s);
    /* Window or tunnel room became available after a short send. */
    void (*on_writable)(struct tun_stream *s);
    /* The stream ended without the owner asking: code 0 = both sides
     * closed, else a TUN_RESET_* code (the peer's, or ours when the tunnel
     * died). The stream is freed when this returns. */
    void (*on_end)(struct tun_stream *s, uint16_t code, const char *reason);
};

/* Takes ownership of an open websocket. NULL on ENOMEM (w is closed). */
struct tunnel *tunnel_new(struct loop *l, struct ws *w, bool server_side,
                          const struct tunnel_cfg *cfg,
                          const struct tunnel_ops *ops, void *ud);
/* Closes the websocket with code/reason and ends every stream (their on_end
 * runs, code TUN_RESET_CANCEL). No on_down. */
void tunnel_close(struct tunnel *t, uint16_t ws_code, const char *reason);

void *tunnel_ud(const struct tunnel *t);
void tunnel_set_ud(struct tunnel *t, void *ud);
/* Sends a CONTROL message. 0, or -1 if too big or the tunnel is closing. */
int tunnel_send_control(struct tunnel *t, const void *json, size_t len);
size_t tunnel_stream_count(const struct tunnel *t);
/* Memory held by buffers of this tunnel (websocket and connection). */
size_t tunnel_buffered(const struct tunnel *t);
const char *tunnel_peer(const struct tunnel *t);

/* Opens a stream to service. NULL if the tunnel is closing, the id space is
 * exhausted or memory is short. Data may be sent at once (early window). */
struct tun_stream *tun_stream_open(struct tunnel *t, const char *service,
                                   const void *meta, size_t meta_len,
                                   const struct tun_stream_ops *ops, void *ud);
/* Sets who hears about a stream the peer opened before it is accepted
 * (so a reset or a dead tunnel reaches the owner while it is dialing). */
void tun_stream_set_ops(struct tun_stream *s, const struct tun_stream_ops *ops, void *ud);
/* Accepts a stream the peer opened (from or after tunnel on_open). */
int tun_stream_accept(struct tun_stream *s, const struct tun_stream_ops *ops, void *ud);

/*
 * Sends up to n bytes; returns how many were taken (0..n). Fewer than n
 * means the window or the tunnel's queue is full: hold the rest and wait for
 * on_writable. -1 if the stream cannot send (closed or ended).
 */
ssize_t tun_stream_send(struct tun_stream *s, const void *p, size_t n);
/* Returns n bytes of credit to the peer after on_data bytes were consumed. */
void tun_stream_consumed(struct tun_stream *s, size_t n);
/* Half-close: we send no more. Returns 1 if this ended the stream (the peer
 * had closed too: drop the pointer, no on_end follows), else 0. */
int tun_stream_close(struct tun_stream *s);
/* Aborts the stream with code and reason; the pointer is dead after this. */
void tun_stream_reset(struct tun_stream *s, uint16_t code, const char *reason);

void *tun_stream_ud(const struct tun_stream *s);
uint32_t tun_stream_id(const struct tun_stream *s);
struct tunnel *tun_stream_tunnel(const struct tun_stream *s);

#endif
