/*
 * Tests of server/throttle.c: the failed-login delays.
 */
#include <check.h>
#include <stdio.h>

#include "server/throttle.h"

START_TEST(escalates_and_caps)
{
    ck_assert_int_eq(throttle_delay(0), 0);
    ck_assert_int_eq(throttle_delay(1), 250);
    ck_assert_int_eq(throttle_delay(2), 500);
    ck_assert_int_eq(throttle_delay(4), 2000);
    ck_assert_int_eq(throttle_delay(5), THROTTLE_MAX_DELAY_MS);
    ck_assert_int_eq(throttle_delay(100000), THROTTLE_MAX_DELAY_MS);
    struct throttle *t = throttle_new(0, 0);
    uint64_t want[] = { 250, 500, 1000, 2000, 4000, 4000 };
    for (size_t i = 0; i < 6; i++)
        ck_assert_int_eq(throttle_fail(t, "alice", "10.0.0.1", 1000 + i), want[i]);
    throttle_free(t);
}
END_TEST

/* Guessing one user's password from many addresses, or many users'
 * passwords from one address, escalates either way. */
START_TEST(per_user_and_per_address)
{
    struct throttle *t = throttle_new(0, 0);
    char addr[32], user[32];
    uint64_t d = 0;
    for (int i = 0; i < 4; i++) {
        snprintf(addr, sizeof(addr), "10.0.0.%d", i);
        d = throttle_fail(t, "alice", addr, 1000);
    }
    ck_assert_int_eq(d, 2000);
    for (int i = 0; i < 4; i++) {
        snprintf(user, sizeof(user), "user%d", i);
        d = throttle_fail(t, user, "10.9.9.9", 1000);
    }
    ck_assert_int_eq(d, 2000);
    /* A fresh user from a fresh address starts over. */
    ck_assert_int_eq(throttle_fail(t, "bob", "10.1.1.1", 1000), 250);
    throttle_free(t);
}
END_TEST

START_TEST(success_and_forgetting)
{
    struct throttle *t = throttle_new(0, 60000);
    throttle_fail(t, "alice", "10.0.0.1", 0);
    throttle_fail(t, "alice", "10.0.0.1", 0);
    throttle_success(t, "alice");
    /* The user's count is gone, the address's is not (one valid account
     * must not reset an attacker's address). */
    ck_assert_int_eq(throttle_fail(t, "alice", "10.0.0.2", 1), 250);
    ck_assert_int_eq(throttle_fail(t, "carol", "10.0.0.1", 1), 1000);
    /* After a quiet minute both start over. */
    ck_assert_int_eq(throttle_fail(t, "alice", "10.0.0.1", 70000), 250);
    throttle_free(t);
}
END_TEST

/* A table full of live keys gives new keys the longest delay rather than
 * none, and forgotten keys are swept to make room. */
START_TEST(bounded)
{
    struct throttle *t = throttle_new(10, 1000);
    char user[32];
    for (int i = 0; i < 10; i++) {
        snprintf(user, sizeof(user), "u%d", i);
        throttle_fail(t, user, NULL, 0);
    }
    ck_assert_int_eq(throttle_size(t), 10);
    ck_assert_int_eq(throttle_fail(t, "new", NULL, 10), THROTTLE_MAX_DELAY_MS);
    ck_assert_int_eq(throttle_size(t), 10);
    ck_assert_int_eq(throttle_fail(t, "new", NULL, 5000), 250);
    ck_assert_int_eq(throttle_size(t), 1);
    throttle_free(t);
    throttle_free(NULL);
}
END_TEST

/* While a failure's delay runs, its user and address are held back. */
START_TEST(wait_until_the_delay_is_over)
{
    struct throttle *t = throttle_new(0, 60000);
    ck_assert_int_eq(throttle_wait(t, "alice", "10.0.0.1", 1000), 0);
    ck_assert_int_eq(throttle_fail(t, "alice", "10.0.0.1", 1000), 250);
    ck_assert_int_eq(throttle_wait(t, NULL, "10.0.0.1", 1100), 150);
    ck_assert_int_eq(throttle_wait(t, "alice", NULL, 1000), 250);
    ck_assert_int_eq(throttle_wait(t, NULL, "10.0.0.2", 1100), 0);
    ck_assert_int_eq(throttle_wait(t, NULL, "10.0.0.1", 1250), 0);
    ck_assert_int_eq(throttle_fail(t, "bob", "10.0.0.1", 2000), 500);
    ck_assert_int_eq(throttle_wait(t, "carol", "10.0.0.1", 2100), 400);
    /* Forgotten after the quiet period. */
    ck_assert_int_eq(throttle_wait(t, NULL, "10.0.0.1", 2000 + 60000), 0);
    throttle_free(t);
}
END_TEST

Suite *suite_server_throttle(void)
{
    Suite *s = suite_create("server_throttle");
    TCase *tc = tcase_create("throttle");
    tcase_add_test(tc, escalates_and_caps);
    tcase_add_test(tc, per_user_and_per_address);
    tcase_add_test(tc, success_and_forgetting);
    tcase_add_test(tc, bounded);
    tcase_add_test(tc, wait_until_the_delay_is_over);
    suite_add_tcase(s, tc);
    return s;
}
