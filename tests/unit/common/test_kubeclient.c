/* Tests for common/kubeclient.c: the answer decoder and the watch line
 * splitter (the parts that never touch a socket). */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "common/kubeclient.h"

struct sink {
    char buf[4096];
    size_t len;
};

static void sink_body(void *ud, const uint8_t *p, size_t n)
{
    struct sink *s = ud;
    ck_assert_uint_le(n, sizeof(s->buf) - s->len);
    memcpy(s->buf + s->len, p, n);
    s->len += n;
}

/* Feeds text one byte at a time when bytewise, else at once. */
static int feed(struct kc_decoder *d, const char *text, bool bytewise, const char **why)
{
    size_t n = strlen(text);
    if (!bytewise)
        return kc_decoder_feed(d, (const uint8_t *)text, n, why);
    int r = 0;
    for (size_t i = 0; i < n && r == 0; i++)
        r = kc_decoder_feed(d, (const uint8_t *)text + i, 1, why);
    return r;
}

START_TEST(content_length_answer)
{
    for (int bytewise = 0; bytewise < 2; bytewise++) {
        struct sink s = { .len = 0 };
        struct kc_decoder d = { .on_body = sink_body, .ud = &s };
        const char *why = NULL;
        int r = feed(&d, "HTTP/1.1 200 OK\r\nContent-Length: 11\r\n\r\n{\"a\":\"xyz\"}trailing",
                     bytewise, &why);
        ck_assert_int_eq(r, 1);
        ck_assert_int_eq(d.status, 200);
        ck_assert_uint_eq(s.len, 11);
        ck_assert(memcmp(s.buf, "{\"a\":\"xyz\"}", 11) == 0);
        kc_decoder_free(&d);
    }
}
END_TEST

START_TEST(chunked_answer_is_decoded)
{
    for (int bytewise = 0; bytewise < 2; bytewise++) {
        struct sink s = { .len = 0 };
        struct kc_decoder d = { .on_body = sink_body, .ud = &s };
        const char *why = NULL;
        int r = feed(&d, "HTTP/1.1 404 Not Found\r\nTransfer-Encoding: chunked\r\n\r\n"
                     "5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n", bytewise, &why);
        ck_assert_int_eq(r, 1);
        ck_assert_int_eq(d.status, 404);
        ck_assert_uint_eq(s.len, 11);
        ck_assert(memcmp(s.buf, "hello world", 11) == 0);
        kc_decoder_free(&d);
    }
}
END_TEST

START_TEST(until_close_and_short_answers)
{
    struct sink s = { .len = 0 };
    struct kc_decoder d = { .on_body = sink_body, .ud = &s };
    const char *why = NULL;
    ck_assert_int_eq(feed(&d, "HTTP/1.1 200 OK\r\n\r\nabc", false, &why), 0);
    ck_assert_int_eq(kc_decoder_eof(&d), 1);
    ck_assert_uint_eq(s.len, 3);
    kc_decoder_free(&d);

    struct kc_decoder d2 = { .on_body = sink_body, .ud = &s };
    ck_assert_int_eq(feed(&d2, "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc", false, &why),
                     0);
    ck_assert_int_eq(kc_decoder_eof(&d2), -1);
    kc_decoder_free(&d2);

    struct kc_decoder d3 = { 0 };
    ck_assert_int_eq(feed(&d3, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", false, &why), 1);
    kc_decoder_free(&d3);
    struct kc_decoder d4 = { 0 };
    ck_assert_int_eq(feed(&d4, "HTTP/1.1 204 No Content\r\n\r\n", false, &why), 1);
    kc_decoder_free(&d4);
}
END_TEST

START_TEST(malformed_answers_fail)
{
    const char *bad[] = {
        "HTTX/1.1 200 OK\r\n\r\n",
        "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n",
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
        "HTTP/1.1 101 Switching Protocols\r\n\r\n",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct kc_decoder d = { 0 };
        const char *why = NULL;
        ck_assert_msg(feed(&d, bad[i], false, &why) == -1, "%s", bad[i]);
        ck_assert_ptr_nonnull(why);
        kc_decoder_free(&d);
    }
}
END_TEST

START_TEST(oversized_head_fails)
{
    struct kc_decoder d = { 0 };
    const char *why = NULL;
    ck_assert_int_eq(feed(&d, "HTTP/1.1 200 OK\r\n", false, &why), 0);
    char *junk = malloc(HTTPMSG_MAX_HEAD);
    memset(junk, 'a', HTTPMSG_MAX_HEAD);
    memcpy(junk, "X-A: ", 5);
    ck_assert_int_eq(kc_decoder_feed(&d, (uint8_t *)junk, HTTPMSG_MAX_HEAD, &why), -1);
    free(junk);
    kc_decoder_free(&d);
}
END_TEST

struct got {
    char lines[8][64];
    int n, stop_at;
};

static int on_line(void *ud, const char *line, size_t len)
{
    struct got *g = ud;
    ck_assert_int_lt(g->n, 8);
    ck_assert_uint_lt(len, 64);
    memcpy(g->lines[g->n], line, len);
    g->lines[g->n][len] = '\0';
    g->n++;
    return g->n == g->stop_at;
}

START_TEST(lines_split_across_pieces)
{
    struct kc_lines l = { .cap = 32 };
    struct got g = { .n = 0 };
    const char *text = "{\"a\":1}\n\n{\"b\":2}\r\n{\"c\"";
    for (size_t i = 0; text[i]; i++)
        ck_assert_int_eq(kc_lines_feed(&l, (const uint8_t *)text + i, 1, on_line, &g), 0);
    ck_assert_int_eq(kc_lines_feed(&l, (const uint8_t *)":3}\n{\"d\":4}\n", 12, on_line, &g),
                     0);
    ck_assert_int_eq(g.n, 4);
    ck_assert_str_eq(g.lines[0], "{\"a\":1}");
    ck_assert_str_eq(g.lines[1], "{\"b\":2}");
    ck_assert_str_eq(g.lines[2], "{\"c\":3}");
    ck_assert_str_eq(g.lines[3], "{\"d\":4}");
    kc_lines_free(&l);
}
END_TEST

START_TEST(lines_cap_and_stop)
{
    struct kc_lines l = { .cap = 8 };
    struct got g = { .n = 0 };
    ck_assert_int_eq(kc_lines_feed(&l, (const uint8_t *)"12345", 5, on_line, &g), 0);
    ck_assert_int_eq(kc_lines_feed(&l, (const uint8_t *)"6789\n", 5, on_line, &g), -1);
    kc_lines_free(&l);
    struct kc_lines l2 = { .cap = 8 };
    ck_assert_int_eq(kc_lines_feed(&l2, (const uint8_t *)"123456789\n", 10, on_line, &g), -1);
    kc_lines_free(&l2);
    struct kc_lines l3 = { .cap = 8 };
    struct got g2 = { .n = 0, .stop_at = 1 };
    ck_assert_int_eq(kc_lines_feed(&l3, (const uint8_t *)"a\nb\nc\n", 6, on_line, &g2), 1);
    ck_assert_int_eq(g2.n, 1);
    kc_lines_free(&l3);
}
END_TEST

Suite *suite_common_kubeclient(void)
{
    Suite *s = suite_create("common_kubeclient");
    TCase *tc = tcase_create("decoding");
    tcase_add_test(tc, content_length_answer);
    tcase_add_test(tc, chunked_answer_is_decoded);
    tcase_add_test(tc, until_close_and_short_answers);
    tcase_add_test(tc, malformed_answers_fail);
    tcase_add_test(tc, oversized_head_fails);
    tcase_add_test(tc, lines_split_across_pieces);
    tcase_add_test(tc, lines_cap_and_stop);
    suite_add_tcase(s, tc);
    return s;
}
