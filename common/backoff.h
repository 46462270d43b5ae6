/*
 * backoff: exponential backoff with full jitter, for agents reconnecting.
 *
 * The n-th delay is uniform in [0, min(max, base * 2^n)] so that thousands of
 * agents losing their server at once come back spread over the window
 * instead of in a storm.
 */
#ifndef DROVER_BACKOFF_H
#define DROVER_BACKOFF_H

#include <stdint.h>

struct backoff {
    uint64_t base_ms;
    uint64_t max_ms;
    unsigned attempt;
    uint64_t rng;           /* xorshift state, seeded from getrandom */
};

void backoff_init(struct backoff *b, uint64_t base_ms, uint64_t max_ms);
/* The delay before the next attempt; counts the attempt. */
uint64_t backoff_next(struct backoff *b);
/* Call once a connection is established (and has proven itself). */
void backoff_reset(struct backoff *b);
/* Uniform random in [0, n] from b's generator (n may be 0). */
uint64_t backoff_rand(struct backoff *b, uint64_t n);

#endif
