/*
 * conn: one non-blocking byte stream (TCP, optionally TLS) on the loop.
 *
 * What it owns: the socket, the SSL object, a capped output queue and at most
 * one read chunk the owner did not take yet. Reads go through one shared
 * 64 KiB buffer per thread, so an idle connection holds no read buffer and,
 * with SSL_MODE_RELEASE_BUFFERS, no TLS record buffers either.
 *
 * Backpressure both ways: on_read returns how much it took; the rest is kept
 * and reading pauses until conn_resume_read(). Writers check conn_out_pending()
 * against their high-water mark and get on_drain once the queue falls to half
 * of the mark set with conn_set_high_water().
 *
 * Lifetime: the conn frees itself. After conn_close() or the on_close
 * callback the owner must not touch it again; the memory is released after
 * the current loop batch, so a callback that closes its conn may still return
 * into conn code safely.
 */
#ifndef DROVER_CONN_H
#define DROVER_CONN_H

#include <openssl/ssl.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "common/loop.h"

struct conn;

struct conn_ops {
    /* Client: connected (and TLS handshake done). Server: TLS handshake done
     * (plain TCP: called right after adoption). May be NULL. */
    void (*on_open)(struct conn *c);
    /* Bytes arrived (writable: the owner may transform them in place, e.g.
     * unmask). Return how many were taken; if fewer than len, reading
     * pauses and the rest is offered again after conn_resume_read(). */
    size_t (*on_read)(struct conn *c, uint8_t *data, size_t len);
    /* The peer will send no more (TCP FIN; TLS close_notify). Writing may go
     * on for plain TCP. If NULL, EOF closes the connection. */
    void (*on_eof)(struct conn *c);
    /* The output queue fell to half the high-water mark. May be NULL. */
    void (*on_drain)(struct conn *c);
    /* The connection failed or the peer closed it; why is a short text.
     * Not called for conn_close(). The conn is gone after this returns. */
    void (*on_close)(struct conn *c, const char *why);
};

/* Takes ownership of a connected socket fd (made non-blocking here). With
 * ctx, runs a TLS server handshake first. NULL on failure (fd closed). */
struct conn *conn_adopt(struct loop *l, int fd, SSL_CTX *ctx,
                        const struct conn_ops *ops, void *ud);

/*
 * Starts a non-blocking connect to addr. With ctx, a TLS client handshake
 * follows; host (may be NULL) sets SNI and the name the certificate must
 * match (host_is_ip for an IP literal). Failures are reported through
 * on_close. NULL only if no socket could be created.
 */
struct conn *conn_connect(struct loop *l, const struct sockaddr *addr,
                          socklen_t addrlen, SSL_CTX *ctx, const char *host,
                          bool host_is_ip, const struct conn_ops *ops, void *ud);
/* The same, from source address src (a load tool spreading its connections
 * over several local addresses); src NULL picks as conn_connect does. */
struct conn *conn_connect_from(struct loop *l, const struct sockaddr *src, socklen_t srclen,
                               const struct sockaddr *addr, socklen_t addrlen, SSL_CTX *ctx,
                               const char *host, bool host_is_ip,
                               const struct conn_ops *ops, void *ud);

struct loop *conn_loop(const struct conn *c);
void *conn_ud(const struct conn *c);
void conn_set_ud(struct conn *c, void *ud);
void conn_set_ops(struct conn *c, const struct conn_ops *ops);
int conn_fd(const struct conn *c);
bool conn_is_tls(const struct conn *c);
/* Peer address as "1.2.3.4:5678" (empty if unknown). */
const char *conn_peer(const struct conn *c);

/*
 * Queues len bytes (copied). Returns 0, or -1 if the connection is closing
 * or the queue would pass its hard cap (conn_set_out_cap, default 16 MiB);
 * the caller then closes. Never blocks.
 */
int conn_write(struct conn *c, const void *data, size_t len);
/* Two pieces in one queue append (a frame header and its payload). */
int conn_write2(struct conn *c, const void *a, size_t alen,
                const void *b, size_t blen);
/*
 * Reserves len contiguous bytes at the end of the output queue for the
 * caller to fill right away (e.g. to mask a websocket payload in place).
 * NULL under the same conditions as conn_write.
 */
uint8_t *conn_write_reserve(struct conn *c, size_t len);
size_t conn_out_pending(const struct conn *c);
void conn_set_high_water(struct conn *c, size_t bytes);
void conn_set_out_cap(struct conn *c, size_t bytes);
/* Fails the connection (on_close "the peer stopped reading") when queued
 * output makes no progress for ms: a peer that never reads is dropped
 * instead of pinning its buffers. 0 (the default) = never. */
void conn_set_write_stall(struct conn *c, uint64_t ms);

void conn_pause_read(struct conn *c);
void conn_resume_read(struct conn *c);

/* Plain TCP: send FIN once the queue is flushed (half-close). TLS: the same
 * as conn_close_after_flush (no callbacks follow; drop the pointer). */
void conn_shutdown_write(struct conn *c);
/* Flush what is queued (for at most linger_ms), then close. No callbacks. */
void conn_close_after_flush(struct conn *c, uint64_t linger_ms);
/* Closes now, dropping queued output. No callbacks. */
void conn_close(struct conn *c);

/* Connections alive on this thread (including ones still flushing). */
size_t conn_live_count(void);
/* Closes every connection of this thread at once: for process shutdown,
 * after the owners had their chance to close cleanly. */
void conn_close_all(void);

/* Bytes held by this connection's buffers (for the memory benchmarks). */
size_t conn_buffered(const struct conn *c);

#endif
