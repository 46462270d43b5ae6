/*
 * throttle: slows down password guessing. Counts failed logins per username
 * and per client address in memory and says how long to hold back the
 * answer to the next failure: 250 ms doubling up to 4 s. A key forgets its
 * failures after a quiet period; a success clears the username's count (not
 * the address's, or one valid account would reset an attacker's address).
 *
 * The table is capped: when it is full of live entries, new keys get the
 * longest delay, so flooding it with names cannot switch the delay off.
 * Pure bookkeeping on the loop thread: the caller owns the timer.
 */
#ifndef DROVER_SERVER_THROTTLE_H
#define DROVER_SERVER_THROTTLE_H

#include <stddef.h>
#include <stdint.h>

#define THROTTLE_MAX_DELAY_MS 4000

struct throttle;

/* max_keys: entries kept (0 = 10000); forget_ms: quiet time after which a
 * key starts over (0 = 15 minutes). NULL without memory. */
struct throttle *throttle_new(size_t max_keys, uint64_t forget_ms);
void throttle_free(struct throttle *t);

/* Records one failure for user and addr (either may be NULL) at now_ms and
 * returns the delay in ms to wait before answering it. */
uint64_t throttle_fail(struct throttle *t, const char *user, const char *addr,
                       uint64_t now_ms);
/* How long (ms) user or addr (either may be NULL) is still held back at
 * now_ms: the delay of its last failure not yet over; 0 if free. A login
 * that would start hashing meanwhile is refused instead, so parallel
 * guesses cannot go around the delay. */
uint64_t throttle_wait(const struct throttle *t, const char *user, const char *addr,
                       uint64_t now_ms);
/* A successful login of user. */
void throttle_success(struct throttle *t, const char *user);
/* The delay for the count-th failure in a row (count >= 1). */
uint64_t throttle_delay(unsigned count);
size_t throttle_size(const struct throttle *t);

#endif
