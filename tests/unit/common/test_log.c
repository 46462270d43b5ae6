/*
 * Tests for common/log.c: the record format, levels, truncation, errno and
 * that records from many threads come out whole.
 *
 * log writes straight to fd 2, so each test points fd 2 at an O_APPEND
 * temporary file (appends from several threads never overwrite each other)
 * and reads back what was written.
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/log.h"

#define LINE_MAX_BYTES 4096

static char g_path[64];
static int g_saved = -1;
static char *g_out;             /* what was captured, after cap_end() */
static size_t g_len;

static void cap_start(void)
{
    snprintf(g_path, sizeof g_path, "/tmp/drover-log-XXXXXX");
    int fd = mkstemp(g_path);
    ck_assert_int_ge(fd, 0);
    close(fd);
    fd = open(g_path, O_WRONLY | O_APPEND);
    ck_assert_int_ge(fd, 0);
    fflush(stderr);
    g_saved = dup(2);
    ck_assert_int_ge(dup2(fd, 2), 0);
    close(fd);
}

static const char *cap_end(void)
{
    dup2(g_saved, 2);
    close(g_saved);
    g_saved = -1;
    FILE *f = fopen(g_path, "r");
    ck_assert_ptr_nonnull(f);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    free(g_out);
    g_out = malloc((size_t)n + 1);
    ck_assert_ptr_nonnull(g_out);
    g_len = fread(g_out, 1, (size_t)n, f);
    g_out[g_len] = '\0';
    fclose(f);
    unlink(g_path);
    g_path[0] = '\0';
    return g_out;
}

static void setup(void)
{
    log_init("drover-test", LOG_INFO);
}

static void teardown(void)
{
    if (g_saved >= 0) {         /* a failed assertion left fd 2 redirected */
        dup2(g_saved, 2);
        close(g_saved);
        g_saved = -1;
    }
    if (g_path[0])
        unlink(g_path);
    free(g_out);
    g_out = NULL;
}

static void expect_match(const char *s, const char *pattern)
{
    regex_t re;
    ck_assert_int_eq(regcomp(&re, pattern, REG_EXTENDED | REG_NOSUB), 0);
    int rc = regexec(&re, s, 0, NULL, 0);
    regfree(&re);
    ck_assert_msg(rc == 0, "\"%s\" does not match %s", s, pattern);
}

#define STAMP "^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\\.[0-9]{3}Z "

START_TEST(t_format)
{
    cap_start();
    log_info("tunnel up cluster=%s streams=%d", "c-4f2a9", 3);
    cap_end();
    expect_match(g_out, STAMP "INFO  drover-test: tunnel up cluster=c-4f2a9 "
                        "streams=3\n$");
}
END_TEST

START_TEST(t_level_tags)
{
    log_set_level(LOG_DEBUG);
    cap_start();
    log_error("e");
    log_warn("w");
    log_info("i");
    log_debug("d");
    cap_end();
    expect_match(g_out, STAMP "ERROR drover-test: e\n"
                        "[^\n]{24} WARN  drover-test: w\n"
                        "[^\n]{24} INFO  drover-test: i\n"
                        "[^\n]{24} DEBUG drover-test: d\n$");
}
END_TEST

/* The stamp is UTC whatever TZ says, and is the current time (a generous
 * window: this catches a local-time stamp, not a slow machine). */
START_TEST(t_utc)
{
    setenv("TZ", "XST-9", 1);   /* nine hours east of UTC */
    tzset();
    time_t before = time(NULL);
    cap_start();
    log_info("now");
    cap_end();
    time_t after = time(NULL);
    struct tm tm = { 0 };
    ck_assert_ptr_nonnull(strptime(g_out, "%Y-%m-%dT%H:%M:%S", &tm));
    time_t t = timegm(&tm);
    ck_assert_int_ge(t, before - 60);
    ck_assert_int_le(t, after + 60);
    unsetenv("TZ");
    tzset();
}
END_TEST

START_TEST(t_filtering)
{
    int evaluated = 0;
    log_set_level(LOG_WARN);
    ck_assert_int_eq(log_get_level(), LOG_WARN);
    cap_start();
    log_info("hidden");
    log_debug("hidden %d", ++evaluated);   /* arguments not even evaluated */
    log_warn("shown");
    log_error("also shown");
    cap_end();
    ck_assert_int_eq(evaluated, 0);
    ck_assert_ptr_null(strstr(g_out, "hidden"));
    ck_assert_ptr_nonnull(strstr(g_out, " WARN  drover-test: shown\n"));
    ck_assert_ptr_nonnull(strstr(g_out, " ERROR drover-test: also shown\n"));

    log_set_level(LOG_ERROR);
    cap_start();
    log_warn("hidden");
    cap_end();
    ck_assert_str_eq(g_out, "");
}
END_TEST

START_TEST(t_level_clamped)
{
    log_set_level((enum log_level)99);
    ck_assert_int_eq(log_get_level(), LOG_DEBUG);
    log_set_level((enum log_level)-5);
    ck_assert_int_eq(log_get_level(), LOG_ERROR);
    log_init(NULL, LOG_INFO);       /* keeps the name */
    ck_assert_int_eq(log_get_level(), LOG_INFO);
    cap_start();
    log_msg((enum log_level)-1, "odd level");
    cap_end();
    expect_match(g_out, STAMP "ERROR drover-test: odd level\n$");
}
END_TEST

/* The header's length, measured from a record with an empty message. */
static size_t header_len(void)
{
    cap_start();
    log_info("%s", "");
    cap_end();
    ck_assert_uint_gt(g_len, 1);
    return g_len - 1;
}

START_TEST(t_truncation)
{
    size_t h = header_len();
    size_t fit = LINE_MAX_BYTES - 1 - h;    /* longest message kept whole */
    char *msg = malloc(3 * LINE_MAX_BYTES);
    ck_assert_ptr_nonnull(msg);
    memset(msg, 'a', 3 * LINE_MAX_BYTES);

    msg[fit] = '\0';
    cap_start();
    log_info("%s", msg);
    cap_end();
    ck_assert_uint_eq(g_len, LINE_MAX_BYTES);
    ck_assert(g_out[g_len - 2] == 'a' && g_out[g_len - 1] == '\n');

    msg[fit] = 'a';
    msg[fit + 1] = '\0';
    cap_start();
    log_info("%s", msg);
    cap_end();
    ck_assert_uint_eq(g_len, LINE_MAX_BYTES);
    ck_assert_str_eq(g_out + g_len - 5, "a...\n");

    msg[fit + 1] = 'a';
    msg[3 * LINE_MAX_BYTES - 1] = '\0';
    cap_start();
    log_info("%s", msg);
    cap_end();
    ck_assert_uint_eq(g_len, LINE_MAX_BYTES);
    ck_assert_str_eq(g_out + g_len - 4, "...\n");
    ck_assert_ptr_null(memchr(g_out, '\n', g_len - 1));
    free(msg);
}
END_TEST

START_TEST(t_one_line)
{
    cap_start();
    log_warn("peer said: %s", "bad\nFAKE RECORD\r\x1b[31m\tend");
    cap_end();
    ck_assert_ptr_nonnull(strstr(g_out, "peer said: bad?FAKE RECORD??[31m\tend\n"));
    ck_assert_ptr_eq(strchr(g_out, '\n'), g_out + g_len - 1);
}
END_TEST

START_TEST(t_errno_preserved)
{
    cap_start();
    errno = ERANGE;
    log_error("%s", "shown");
    ck_assert_int_eq(errno, ERANGE);
    errno = EPIPE;
    log_debug("filtered");
    log_msg(LOG_DEBUG, "filtered too");
    ck_assert_int_eq(errno, EPIPE);
    cap_end();
    /* and when the write itself fails */
    int saved = dup(2);
    close(2);
    errno = ENOSPC;
    log_error("into a closed fd");
    int e = errno;
    dup2(saved, 2);
    close(saved);
    ck_assert_int_eq(e, ENOSPC);
}
END_TEST

START_TEST(t_parse_level)
{
    static const struct { const char *s; enum log_level l; } ok[] = {
        { "error", LOG_ERROR }, { "ERROR", LOG_ERROR }, { "warn", LOG_WARN },
        { "Warn", LOG_WARN }, { "info", LOG_INFO }, { "INFO", LOG_INFO },
        { "debug", LOG_DEBUG }, { "DeBuG", LOG_DEBUG },
    };
    static const char *const bad[] = { "", "warning", "inf", "debug ",
                                       " info", "3", "trace", "errorx" };
    for (size_t i = 0; i < sizeof ok / sizeof *ok; i++) {
        enum log_level l = (enum log_level)42;
        ck_assert_msg(log_parse_level(ok[i].s, &l) == 0 && l == ok[i].l, "%s",
                      ok[i].s);
        ck_assert_ptr_null(log_level_check(ok[i].s));
    }
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        enum log_level l = (enum log_level)42;
        ck_assert_msg(log_parse_level(bad[i], &l) == -1, "%s", bad[i]);
        ck_assert_int_eq(l, 42);
        ck_assert_str_eq(log_level_check(bad[i]),
                         "must be error, warn, info or debug");
    }
    enum log_level l;
    ck_assert_int_eq(log_parse_level(NULL, &l), -1);
}
END_TEST

#define THREADS 8
#define PER_THREAD 400

static void *writer(void *arg)
{
    int id = (int)(intptr_t)arg;
    char pad[300];
    memset(pad, 'a' + id, sizeof pad - 1);
    pad[sizeof pad - 1] = '\0';
    for (int i = 0; i < PER_THREAD; i++)
        log_info("t=%d i=%d %s", id, i, pad);
    return NULL;
}

/* Every record arrives whole, none lost, none interleaved with another. */
START_TEST(t_threads)
{
    pthread_t th[THREADS];
    int next[THREADS] = { 0 };
    cap_start();
    for (int t = 0; t < THREADS; t++)
        ck_assert_int_eq(pthread_create(&th[t], NULL, writer,
                                        (void *)(intptr_t)t), 0);
    for (int t = 0; t < THREADS; t++)
        pthread_join(th[t], NULL);
    cap_end();

    int lines = 0;
    for (char *l = g_out; *l; lines++) {
        char *nl = strchr(l, '\n');
        ck_assert_ptr_nonnull(nl);
        *nl = '\0';
        int id, i, n = 0;
        char *body = strstr(l, " INFO  drover-test: ");
        ck_assert_msg(body == l + 24, "%.80s", l);
        ck_assert_int_eq(sscanf(body, " INFO  drover-test: t=%d i=%d %n",
                                &id, &i, &n), 2);
        ck_assert(id >= 0 && id < THREADS);
        ck_assert_int_eq(i, next[id]);      /* in order within a thread */
        next[id]++;
        ck_assert_uint_eq(strlen(body + n), 299);
        ck_assert_uint_eq(strspn(body + n, (char[]){ (char)('a' + id), 0 }), 299);
        l = nl + 1;
    }
    ck_assert_int_eq(lines, THREADS * PER_THREAD);
}
END_TEST

Suite *suite_common_log(void)
{
    Suite *s = suite_create("common/log");
    TCase *tc = tcase_create("log");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, t_format);
    tcase_add_test(tc, t_level_tags);
    tcase_add_test(tc, t_utc);
    tcase_add_test(tc, t_filtering);
    tcase_add_test(tc, t_level_clamped);
    tcase_add_test(tc, t_truncation);
    tcase_add_test(tc, t_one_line);
    tcase_add_test(tc, t_errno_preserved);
    tcase_add_test(tc, t_parse_level);
    tcase_add_test(tc, t_threads);
    suite_add_tcase(s, tc);
    return s;
}
