/*
 * Tests for common/backoff.c. The delays are random, so the checks are
 * statistical over many draws with tolerances wide enough that a correct
 * generator fails them with negligible probability (each bound is many
 * standard deviations away), while an off-by-one window or a biased draw
 * still trips them.
 */
#include <check.h>
#include <stdint.h>

#include "common/backoff.h"

#define DRAWS 20000

/* Fresh generator, positioned at the given attempt. */
static void at_attempt(struct backoff *b, uint64_t base, uint64_t max,
                       unsigned attempt)
{
    backoff_init(b, base, max);
    for (unsigned i = 0; i < attempt; i++)
        backoff_next(b);
}

/* Draws DRAWS delays at one attempt; checks they lie in [0, window], that
 * the largest comes near the window and that the mean is about half of it. */
static void check_window(uint64_t base, uint64_t max, unsigned attempt,
                         uint64_t window)
{
    struct backoff b;
    at_attempt(&b, base, max, attempt);
    uint64_t hi = 0;
    double sum = 0;
    for (int i = 0; i < DRAWS; i++) {
        b.attempt = attempt;            /* stay on this attempt */
        uint64_t d = backoff_next(&b);
        ck_assert_msg(d <= window, "attempt %u: %llu > %llu", attempt,
                      (unsigned long long)d, (unsigned long long)window);
        hi = d > hi ? d : hi;
        sum += (double)d;
    }
    double mean = sum / DRAWS / (double)window;
    ck_assert_msg(hi >= window - window / 50, "attempt %u: max %llu of %llu",
                  attempt, (unsigned long long)hi, (unsigned long long)window);
    ck_assert_msg(mean > 0.45 && mean < 0.55, "attempt %u: mean %.3f", attempt,
                  mean);
}

START_TEST(t_window_doubles)
{
    /* 100, 200, 400, ... up to the 30 s cap, which then holds */
    uint64_t w = 100;
    for (unsigned a = 0; a < 14; a++) {
        check_window(100, 30000, a, w < 30000 ? w : 30000);
        w *= 2;
    }
    check_window(100, 30000, 40, 30000);
}
END_TEST

START_TEST(t_attempt_counts)
{
    struct backoff b;
    backoff_init(&b, 100, 30000);
    ck_assert_uint_eq(b.attempt, 0);
    ck_assert_uint_le(backoff_next(&b), 100);
    ck_assert_uint_eq(b.attempt, 1);
    ck_assert_uint_le(backoff_next(&b), 200);
    ck_assert_uint_eq(b.attempt, 2);
}
END_TEST

START_TEST(t_reset)
{
    struct backoff b;
    at_attempt(&b, 100, 30000, 10);
    backoff_reset(&b);
    ck_assert_uint_eq(b.attempt, 0);
    uint64_t hi = 0;
    for (int i = 0; i < DRAWS; i++) {
        backoff_reset(&b);
        uint64_t d = backoff_next(&b);
        ck_assert_uint_le(d, 100);
        hi = d > hi ? d : hi;
    }
    ck_assert_uint_eq(hi, 100);     /* 20000 draws over 101 values */
    /* after a reset the windows grow again from the base */
    backoff_reset(&b);
    backoff_next(&b);
    for (int i = 0; i < 1000; i++) {
        b.attempt = 1;
        ck_assert_uint_le(backoff_next(&b), 200);
    }
}
END_TEST

/* Huge bases and attempt counts saturate at max instead of wrapping (a
 * wrap would show as a tiny window; UBSan would flag an oversized shift). */
START_TEST(t_no_overflow)
{
    struct backoff b;
    backoff_init(&b, UINT64_MAX / 3, UINT64_MAX - 1);
    for (int i = 0; i < 200; i++)
        ck_assert_uint_le(backoff_next(&b), UINT64_MAX - 1);
    ck_assert_uint_le(b.attempt, 64);
    check_window(1000, 600000, 200, 600000);
    check_window(1, UINT64_MAX, 63, (uint64_t)1 << 63);
    check_window(1, UINT64_MAX, 64, UINT64_MAX);
    check_window(3, UINT64_MAX, 63, UINT64_MAX);   /* 3 * 2^63 saturates */

    /* the attempt counter stops instead of wrapping back to short delays */
    backoff_init(&b, 1000, 60000);
    b.attempt = UINT32_MAX;
    backoff_next(&b);
    ck_assert_uint_ge(b.attempt, 63);
}
END_TEST

START_TEST(t_degenerate)
{
    struct backoff b;
    backoff_init(&b, 0, 30000);         /* no base: always retry at once */
    for (int i = 0; i < 100; i++)
        ck_assert_uint_eq(backoff_next(&b), 0);
    backoff_init(&b, 500, 0);           /* a zero cap caps everything */
    for (int i = 0; i < 100; i++)
        ck_assert_uint_eq(backoff_next(&b), 0);
    check_window(5000, 1000, 0, 1000);  /* max below base caps attempt 0 */
}
END_TEST

START_TEST(t_rand_range)
{
    struct backoff b;
    backoff_init(&b, 1, 1);
    for (int i = 0; i < 1000; i++)
        ck_assert_uint_eq(backoff_rand(&b, 0), 0);

    /* each of 10 values near 1/10 of the draws: expected 2000 each, sd 42 */
    int count[10] = { 0 };
    for (int i = 0; i < DRAWS; i++) {
        uint64_t r = backoff_rand(&b, 9);
        ck_assert_uint_le(r, 9);
        count[r]++;
    }
    for (int v = 0; v < 10; v++)
        ck_assert_msg(count[v] > 1700 && count[v] < 2300, "%d: %d", v, count[v]);

    /* the full range: top bits are used too */
    int high = 0;
    for (int i = 0; i < 1000; i++)
        high += backoff_rand(&b, UINT64_MAX) >> 63;
    ck_assert(high > 400 && high < 600);
    /* a range just past 2^63, where a plain modulo would be most biased */
    uint64_t n = ((uint64_t)1 << 63) + ((uint64_t)1 << 62);
    int low = 0;
    for (int i = 0; i < DRAWS; i++) {
        uint64_t r = backoff_rand(&b, n);
        ck_assert_uint_le(r, n);
        low += r < n / 2;
    }
    ck_assert_msg(low > DRAWS * 45 / 100 && low < DRAWS * 55 / 100, "%d", low);
}
END_TEST

/* Two generators seeded apart draw different sequences (2^-64 to collide). */
START_TEST(t_seeded_apart)
{
    struct backoff a, b;
    backoff_init(&a, 1, 1);
    backoff_init(&b, 1, 1);
    ck_assert_uint_ne(a.rng, 0);
    ck_assert_uint_ne(a.rng, b.rng);
    int same = 0;
    for (int i = 0; i < 64; i++)
        same += backoff_rand(&a, UINT64_MAX) == backoff_rand(&b, UINT64_MAX);
    ck_assert_int_eq(same, 0);
}
END_TEST

Suite *suite_common_backoff(void)
{
    Suite *s = suite_create("common/backoff");
    TCase *tc = tcase_create("backoff");
    tcase_add_test(tc, t_window_doubles);
    tcase_add_test(tc, t_attempt_counts);
    tcase_add_test(tc, t_reset);
    tcase_add_test(tc, t_no_overflow);
    tcase_add_test(tc, t_degenerate);
    tcase_add_test(tc, t_rand_range);
    tcase_add_test(tc, t_seeded_apart);
    suite_add_tcase(s, tc);
    return s;
}
