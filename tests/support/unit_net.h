/*
 * unit_net: helpers for unit tests of the loop-driven modules (loop, conn,
 * wsconn, tunnel): running a loop, or two loops taking turns on one thread,
 * in short slices until a condition holds or a deadline passes, a TLS PKI in
 * a temporary directory, loopback listeners and connected loopback TCP
 * sockets.
 *
 * Every wait has a deadline, so a module that stalls fails its test instead
 * of hanging it.
 */
#ifndef DROVER_TEST_UNIT_NET_H
#define DROVER_TEST_UNIT_NET_H

#include <openssl/ssl.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/loop.h"
#include "common/netaddr.h"
#include "common/tls.h"

typedef bool (*unit_cond)(void *ud);

/* Runs l for about ms milliseconds (at least one pass over epoll). */
void unit_run_for(struct loop *l, int ms);
/* Runs l until cond(ud) holds (checked between slices of about 1 ms) or
 * timeout_ms passes. Returns the last value of cond. */
bool unit_run_until(struct loop *l, unit_cond cond, void *ud, int timeout_ms);
/* Same with two loops that take turns; b may be NULL. */
bool unit_run2_until(struct loop *a, struct loop *b, unit_cond cond, void *ud,
                     int timeout_ms);
/* Runs both loops for about ms milliseconds. */
void unit_run2_for(struct loop *a, struct loop *b, int ms);

/* A listener on 127.0.0.1 at a free port; addr becomes its address, port
 * included, for the other end to dial. */
struct listener *unit_listen(struct loop *l, struct netaddr *addr, listener_cb on_accept,
                             void *ud);

/* A connected loopback TCP pair: fds[0] connected out, fds[1] accepted.
 * Both blocking; conn_adopt makes them non-blocking. */
void unit_tcp_pair(int fds[2]);

/* A server PKI in a temporary directory, with a server context and a client
 * context pinned to its CA. */
struct unit_pki {
    char dir[64];
    struct tls_pki pki;
    SSL_CTX *server;
    SSL_CTX *client;
};
void unit_pki_init(struct unit_pki *p);
/* Frees the contexts and removes the directory. */
void unit_pki_free(struct unit_pki *p);

/* Byte i of a deterministic test stream (for order and content checks). */
static inline uint8_t unit_stream_byte(uint64_t i)
{
    uint64_t x = i * 0x9E3779B97F4A7C15ULL;
    return (uint8_t)((x >> 29) ^ (x >> 47) ^ i);
}

#endif
