/*
 * backoff: exponential backoff with full jitter. See backoff.h.
 *
 * Each struct carries its own xorshift64* generator, seeded from the kernel,
 * so agents started from the same image at the same second still draw
 * different delays, and no state is shared between threads.
 */
#include "common/backoff.h"

#include <stdint.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

/* From 2^64 on every window is saturated; stop counting there so the
 * attempt counter cannot wrap back to short delays. */
#define BACKOFF_MAX_EXP 64u

/* splitmix64: spreads weak fallback seeds over all 64 bits. */
static uint64_t backoff_mix(uint64_t x)
{
    x += 0x9e3779b97f4a7c15ULL;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
    return x ^ (x >> 31);
}

static uint64_t backoff_seed(const struct backoff *b)
{
    uint64_t seed = 0;

    if (getrandom(&seed, sizeof seed, GRND_NONBLOCK) != (ssize_t)sizeof seed) {
        /* Early boot or seccomp: time, pid and address still differ between
         * agents, which is all the jitter needs. */
        struct timespec ts = { 0, 0 };
        clock_gettime(CLOCK_REALTIME, &ts);
        seed = (uint64_t)ts.tv_sec * 1000000007ULL ^ (uint64_t)ts.tv_nsec ^
               (uint64_t)getpid() << 32 ^ (uint64_t)(uintptr_t)b;
    }
    seed = backoff_mix(seed);
    return seed ? seed : 0x2545f4914f6cdd1dULL;   /* xorshift must not be 0 */
}

/*
 * Starts a fresh sequence: the first delay is drawn from [0, min(max, base)].
 * max_ms caps every window (a max below base caps the first one too).
 */
void backoff_init(struct backoff *b, uint64_t base_ms, uint64_t max_ms)
{
    b->base_ms = base_ms;
    b->max_ms = max_ms;
    b->attempt = 0;
    b->rng = backoff_seed(b);
}

static uint64_t backoff_next_raw(struct backoff *b)
{
    uint64_t x = b->rng;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    b->rng = x;
    return x * 0x2545f4914f6cdd1dULL;
}

/*
 * Uniform in [0, n]. Rejection instead of a bare modulo, so that small
 * windows are not biased towards their low end.
 */
uint64_t backoff_rand(struct backoff *b, uint64_t n)
{
    if (n == UINT64_MAX)
        return backoff_next_raw(b);
    uint64_t range = n + 1;
    uint64_t threshold = (0 - range) % range;   /* 2^64 mod range */
    for (;;) {
        uint64_t r = backoff_next_raw(b);
        if (r >= threshold)
            return r % range;
    }
}

/* min(max, base * 2^attempt), saturating instead of overflowing. */
static uint64_t backoff_window(const struct backoff *b)
{
    unsigned n = b->attempt;
    uint64_t w;

    if (b->base_ms == 0)
        w = 0;
    else if (n >= BACKOFF_MAX_EXP || b->base_ms > UINT64_MAX >> n)
        w = UINT64_MAX;     /* a shift by 64 or more is undefined */
    else
        w = b->base_ms << n;
    return w < b->max_ms ? w : b->max_ms;
}

/*
 * The delay before the next attempt, uniform in [0, min(max, base * 2^n)]
 * where n counts the calls since init or reset.
 */
uint64_t backoff_next(struct backoff *b)
{
    uint64_t w = backoff_window(b);
    if (b->attempt < BACKOFF_MAX_EXP)
        b->attempt++;
    return backoff_rand(b, w);
}

/* The next delay is again drawn from the first window; the seed is kept. */
void backoff_reset(struct backoff *b)
{
    b->attempt = 0;
}
