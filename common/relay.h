/*
 * relay: joins a TCP (or TLS) connection and a tunnel stream so bytes flow
 * both ways with backpressure end to end and half-closes carried across.
 *
 * Owns both ends once joined. Memory per relay is bounded: at most one read
 * chunk held by the paused connection one way, and the stream window plus
 * RELAY_HIGH_WATER queued on the connection the other way.
 */
#ifndef DROVER_RELAY_H
#define DROVER_RELAY_H

#include "common/conn.h"
#include "common/tunnel.h"

#define RELAY_HIGH_WATER (256u * 1024)

struct relay;

/*
 * Server side of a relay port: c was just accepted; opens a stream for
 * service with meta on t and joins them. NULL (c closed) on failure.
 */
struct relay *relay_open(struct conn *c, struct tunnel *t, const char *service,
                         const void *meta, size_t meta_len);

/*
 * Agent side: s was opened by the peer; dials addr (TLS if ctx) and accepts
 * s once connected, or resets s with "unreachable" and the reason.
 */
struct relay *relay_dial(struct loop *l, struct tun_stream *s,
                         const struct sockaddr *addr, socklen_t addrlen);

/* Relays alive in this process (for metrics and leak checks in tests). */
unsigned long relay_count(void);
/* Bytes moved from connections into streams, and from streams out. */
uint64_t relay_bytes_to_stream(void);
uint64_t relay_bytes_from_stream(void);

#endif
