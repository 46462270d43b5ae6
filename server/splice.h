/*
 * splice: joins two tunnel streams so bytes flow both ways with flow
 * control end to end: what arrives on one side is sent on the other, and
 * credit goes back to the sender only once the bytes have left for the
 * other side. A side whose window is full makes us hold at most what its
 * peer was allowed to send (one receive window), never more. Half-closes
 * are carried across once the held bytes are gone, and a reset on one side
 * resets the other with the same code and reason.
 *
 * The replicas' peer link uses it: a stream from another replica is spliced
 * onto a stream of the local agent tunnel (server/peers.c).
 *
 * Owns both streams once joined, and frees itself when both have ended.
 */
#ifndef DROVER_SPLICE_H
#define DROVER_SPLICE_H

#include "common/tunnel.h"

struct splice;

/* in: a stream the peer opened (not yet accepted); accepted here. out: a
 * stream we just opened. 0, or -1 when they could not be joined (both are
 * then ended). Either way the streams are no longer the caller's. */
int splice_join(struct tun_stream *in, struct tun_stream *out);

/* Splices alive in this process (tests, leak checks). */
unsigned long splice_count(void);

#endif
