/* Tests for common/httpmsg.c: message framing for pass-through relays. */
#include <check.h>
#include <string.h>

#include "common/httpmsg.h"

static struct http_header hdrs[32];

static struct http_request parse_req(const char *s)
{
    struct http_request r = { .headers = hdrs, .num_headers = 32 };
    ck_assert_int_eq(http1_parse_request(s, strlen(s), &r), (ssize_t)strlen(s));
    return r;
}

static struct http_response parse_res(const char *s)
{
    struct http_response r = { .headers = hdrs, .num_headers = 32 };
    ck_assert_int_eq(http1_parse_response(s, strlen(s), &r), (ssize_t)strlen(s));
    return r;
}

START_TEST(request_without_body)
{
    struct httpmsg m;
    const char *why;
    struct http_request r = parse_req("GET /api HTTP/1.1\r\nHost: x\r\n\r\n");
    ck_assert_int_eq(httpmsg_request(&m, &r, &why), 0);
    ck_assert_int_eq(m.kind, HM_NONE);
    ck_assert(m.done);
    ck_assert_int_eq(httpmsg_feed(&m, (const uint8_t *)"GET", 3), 0);
}
END_TEST

START_TEST(content_length_split_and_overrun)
{
    struct httpmsg m;
    const char *why;
    struct http_request r = parse_req("POST / HTTP/1.1\r\nContent-Length: 10\r\n\r\n");
    ck_assert_int_eq(httpmsg_request(&m, &r, &why), 0);
    ck_assert_int_eq(m.kind, HM_LENGTH);
    ck_assert_int_eq(httpmsg_feed(&m, (const uint8_t *)"12345", 5), 5);
    ck_assert(!m.done);
    /* The next message's bytes are not counted as this one's. */
    ck_assert_int_eq(httpmsg_feed(&m, (const uint8_t *)"67890GET /", 10), 5);
    ck_assert(m.done);
    ck_assert_int_eq(httpmsg_feed(&m, (const uint8_t *)"x", 1), 0);
}
END_TEST

START_TEST(chunked_body_ends_exactly)
{
    struct httpmsg m;
    const char *why;
    struct http_response r = parse_res("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n");
    ck_assert_int_eq(httpmsg_response(&m, &r, false, &why), 0);
    ck_assert_int_eq(m.kind, HM_CHUNKED);
    const char *body = "4\r\nwiki\r\n0\r\n\r\nHTTP/1.1";
    size_t total = 0;
    for (size_t i = 0; i < strlen(body) && !m.done; i++) {
        ssize_t n = httpmsg_feed(&m, (const uint8_t *)body + i, 1);
        ck_assert_int_ge(n, 0);
        total += (size_t)n;
    }
    ck_assert(m.done);
    ck_assert_uint_eq(total, strlen("4\r\nwiki\r\n0\r\n\r\n"));
}
END_TEST

START_TEST(bad_chunked_is_an_error)
{
    struct httpmsg m;
    const char *why;
    struct http_response r = parse_res("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n");
    ck_assert_int_eq(httpmsg_response(&m, &r, false, &why), 0);
    ck_assert_int_eq(httpmsg_feed(&m, (const uint8_t *)"zz\r\n", 4), -1);
}
END_TEST

START_TEST(response_kinds)
{
    struct httpmsg m;
    const char *why;
    struct http_response r = parse_res("HTTP/1.1 200 OK\r\nContent-Type: x\r\n\r\n");
    ck_assert_int_eq(httpmsg_response(&m, &r, false, &why), 0);
    ck_assert_int_eq(m.kind, HM_UNTIL_CLOSE);
    ck_assert(!m.done);
    ck_assert_int_eq(httpmsg_feed(&m, (const uint8_t *)"abc", 3), 3);
    r = parse_res("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n");
    ck_assert_int_eq(httpmsg_response(&m, &r, true, &why), 0);   /* HEAD */
    ck_assert(m.done);
    r = parse_res("HTTP/1.1 204 No Content\r\n\r\n");
    ck_assert_int_eq(httpmsg_response(&m, &r, false, &why), 0);
    ck_assert(m.done);
    r = parse_res("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n");
    ck_assert_int_eq(httpmsg_response(&m, &r, false, &why), 0);
    ck_assert(m.done);
    r = parse_res("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
    ck_assert_int_eq(httpmsg_response(&m, &r, false, &why), 0);
    ck_assert(m.done);
}
END_TEST

START_TEST(smuggling_shapes_refused)
{
    struct httpmsg m;
    const char *why = NULL;
    struct http_request r =
        parse_req("POST / HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n");
    ck_assert_int_eq(httpmsg_request(&m, &r, &why), -1);
    ck_assert_ptr_nonnull(why);
    r = parse_req("POST / HTTP/1.1\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n");
    ck_assert_int_eq(httpmsg_request(&m, &r, &why), -1);
    r = parse_req("POST / HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n");
    ck_assert_int_eq(httpmsg_request(&m, &r, &why), -1);
    r = parse_req("POST / HTTP/1.1\r\nContent-Length: -1\r\n\r\n");
    ck_assert_int_eq(httpmsg_request(&m, &r, &why), -1);
}
END_TEST

START_TEST(keep_alive_rules)
{
    struct http_request r = parse_req("GET / HTTP/1.1\r\n\r\n");
    ck_assert(httpmsg_keep_alive(1, r.headers, r.num_headers));
    r = parse_req("GET / HTTP/1.1\r\nConnection: close\r\n\r\n");
    ck_assert(!httpmsg_keep_alive(1, r.headers, r.num_headers));
    r = parse_req("GET / HTTP/1.0\r\n\r\n");
    ck_assert(!httpmsg_keep_alive(0, r.headers, r.num_headers));
    r = parse_req("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n");
    ck_assert(httpmsg_keep_alive(0, r.headers, r.num_headers));
}
END_TEST

START_TEST(proxy_drops_credentials_and_hop_by_hop)
{
    struct http_request r = parse_req(
        "GET / HTTP/1.1\r\nAuthorization: Bearer x\r\nIMPERSONATE-User: y\r\n"
        "Impersonate-Group: z\r\nCookie: c\r\nHost: h\r\nConnection: Upgrade\r\n"
        "Keep-Alive: 5\r\nTE: trailers\r\nProxy-Authorization: p\r\n"
        "Upgrade: websocket\r\nAccept: application/json\r\nContent-Length: 0\r\n"
        "Impersonat: not-a-prefix\r\n\r\n");
    size_t kept = 0;
    for (size_t i = 0; i < r.num_headers; i++)
        if (!httpmsg_proxy_drops(&r.headers[i]))
            kept++;
    /* Upgrade, Accept, Content-Length and the near-miss name stay. */
    ck_assert_uint_eq(kept, 4);
}
END_TEST

Suite *suite_common_httpmsg(void)
{
    Suite *s = suite_create("common_httpmsg");
    TCase *tc = tcase_create("framing");
    tcase_add_test(tc, request_without_body);
    tcase_add_test(tc, content_length_split_and_overrun);
    tcase_add_test(tc, chunked_body_ends_exactly);
    tcase_add_test(tc, bad_chunked_is_an_error);
    tcase_add_test(tc, response_kinds);
    tcase_add_test(tc, smuggling_shapes_refused);
    tcase_add_test(tc, keep_alive_rules);
    tcase_add_test(tc, proxy_drops_credentials_and_hop_by_hop);
    suite_add_tcase(s, tc);
    return s;
}
