/*
 * Tests of common/childproc.c: real children on a real loop (exit codes,
 * the kept output tail, timeouts, a missing program, a child that leaves a
 * daemon behind, and a cancel).
 */
#include <check.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/childproc.h"

struct result {
    struct loop *l;
    bool done;
    int status;
    char out[8192];
    size_t len;
};

static void on_done(void *ud, int status, const char *out, size_t len)
{
    struct result *r = ud;
    r->done = true;
    r->status = status;
    memcpy(r->out, out, len + 1);
    r->len = len;
    loop_stop(r->l);
}

static void on_guard(struct loop_timer *t)
{
    (void)t;
    ck_abort_msg("the child did not finish in time");
}

/* Runs sh -c script to completion. */
static struct result run(const char *script, size_t cap, uint64_t timeout_ms)
{
    struct result r = { .l = loop_new() };
    const char *argv[] = { "/bin/sh", "-c", script, NULL };
    const char *env[] = { "DROVER_TEST_VAR=hello", NULL };
    struct childproc_cfg cfg = { .argv = argv, .env = env, .output_cap = cap,
                                 .timeout_ms = timeout_ms };
    char err[200];
    struct loop_timer guard = { 0 };
    ck_assert_ptr_nonnull(r.l);
    ck_assert_ptr_nonnull(childproc_start(r.l, &cfg, on_done, &r, err, sizeof(err)));
    loop_timer_start(r.l, &guard, 20000, on_guard);
    loop_run(r.l);
    loop_timer_stop(r.l, &guard);
    loop_free(r.l);
    ck_assert(r.done);
    return r;
}

START_TEST(exit_status_and_output)
{
    struct result r = run("echo out; echo err >&2; echo $DROVER_TEST_VAR; exit 3", 0, 0);
    ck_assert_int_eq(r.status, 3);
    ck_assert_str_eq(r.out, "out\nerr\nhello\n");
    r = run("true", 0, 0);
    ck_assert_int_eq(r.status, 0);
    ck_assert_int_eq(r.len, 0);
    r = run("kill -9 $$", 0, 0);
    ck_assert_int_eq(r.status, 128 + SIGKILL);
}
END_TEST

START_TEST(output_keeps_the_tail)
{
    struct result r = run("i=0; while [ $i -lt 2000 ]; do echo line$i; i=$((i+1)); done", 64, 0);
    ck_assert_int_eq(r.status, 0);
    ck_assert_int_eq(r.len, 64);
    ck_assert_ptr_nonnull(strstr(r.out, "line1999\n"));
    ck_assert_ptr_null(strstr(r.out, "line0\n"));
}
END_TEST

START_TEST(timeout_kills_the_group)
{
    struct result r = run("sleep 30 & sleep 30; echo never", 0, 300);
    ck_assert_int_eq(r.status, CHILDPROC_TIMEOUT);
}
END_TEST

START_TEST(missing_program)
{
    struct result r = { .l = loop_new() };
    const char *argv[] = { "/nonexistent/program", NULL };
    struct childproc_cfg cfg = { .argv = argv };
    char err[200];
    ck_assert_ptr_nonnull(childproc_start(r.l, &cfg, on_done, &r, err, sizeof(err)));
    loop_run(r.l);
    loop_free(r.l);
    ck_assert_int_eq(r.status, 127);
    ck_assert_ptr_nonnull(strstr(r.out, "cannot run /nonexistent/program"));
}
END_TEST

/* A hook that starts a daemon (which keeps the output pipe) still ends
 * when the hook exits. */
START_TEST(daemon_left_behind)
{
    struct result r = run("setsid sleep 5 & echo started", 0, 0);
    ck_assert_int_eq(r.status, 0);
    ck_assert_ptr_nonnull(strstr(r.out, "started"));
}
END_TEST

START_TEST(kill_cancels)
{
    struct result r = { .l = loop_new() };
    const char *argv[] = { "/bin/sleep", "30", NULL };
    struct childproc_cfg cfg = { .argv = argv };
    char err[200];
    struct childproc *p = childproc_start(r.l, &cfg, on_done, &r, err, sizeof(err));
    ck_assert_ptr_nonnull(p);
    childproc_kill(p);
    childproc_kill(NULL);
    ck_assert(!r.done);
    loop_free(r.l);
}
END_TEST

Suite *suite_common_childproc(void)
{
    Suite *s = suite_create("common_childproc");
    TCase *tc = tcase_create("childproc");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, exit_status_and_output);
    tcase_add_test(tc, output_keeps_the_tail);
    tcase_add_test(tc, timeout_kills_the_group);
    tcase_add_test(tc, missing_program);
    tcase_add_test(tc, daemon_left_behind);
    tcase_add_test(tc, kill_cancels);
    suite_add_tcase(s, tc);
    return s;
}
