/*
 * Tests for common/http1.c. Every parse runs on an exact-size heap copy so
 * a read past len (the parsers must not assume a NUL) trips the sanitizers
 * and valgrind; every valid head is also checked for -2 at each prefix.
 */
#include "common/http1.h"

#include <check.h>
#include <stdlib.h>
#include <string.h>

#define MAXH 16

static struct http_header hdrs[MAXH];

/* An exact-size copy with no terminator. */
static char *dup_exact(const char *s, size_t n)
{
    char *p = malloc(n ? n : 1);
    ck_assert_ptr_nonnull(p);
    memcpy(p, s, n);
    return p;
}

static ssize_t req_n(const char *s, size_t n, struct http_request *r, size_t cap)
{
    char *p = dup_exact(s, n);
    memset(r, 0, sizeof(*r));
    r->headers = hdrs;
    r->num_headers = cap;
    ssize_t rc = http1_parse_request(p, n, r);
    /* pointers into p are compared by offset below, so keep them valid:
     * rebase them onto s before freeing */
    if (rc > 0) {
        r->method = s + (r->method - p);
        r->target = s + (r->target - p);
        for (size_t i = 0; i < r->num_headers; i++) {
            hdrs[i].name = s + (hdrs[i].name - p);
            hdrs[i].value = s + (hdrs[i].value - p);
        }
    }
    free(p);
    return rc;
}

static ssize_t req(const char *s, struct http_request *r)
{
    return req_n(s, strlen(s), r, MAXH);
}

static ssize_t res_n(const char *s, size_t n, struct http_response *r, size_t cap)
{
    char *p = dup_exact(s, n);
    memset(r, 0, sizeof(*r));
    r->headers = hdrs;
    r->num_headers = cap;
    ssize_t rc = http1_parse_response(p, n, r);
    if (rc > 0) {
        r->reason = s + (r->reason - p);
        for (size_t i = 0; i < r->num_headers; i++) {
            hdrs[i].name = s + (hdrs[i].name - p);
            hdrs[i].value = s + (hdrs[i].value - p);
        }
    }
    free(p);
    return rc;
}

static ssize_t res(const char *s, struct http_response *r)
{
    return res_n(s, strlen(s), r, MAXH);
}

static void hdr_is(size_t i, const char *name, const char *value)
{
    ck_assert_uint_eq(hdrs[i].name_len, strlen(name));
    ck_assert_mem_eq(hdrs[i].name, name, strlen(name));
    ck_assert_uint_eq(hdrs[i].value_len, strlen(value));
    ck_assert_mem_eq(hdrs[i].value, value, strlen(value));
}

/* Every strict prefix of a valid head is -2, the whole head its length. */
static void req_prefixes(const char *s)
{
    struct http_request r;
    size_t n = strlen(s);
    for (size_t i = 0; i < n; i++) {
        ck_assert_msg(req_n(s, i, &r, MAXH) == -2, "prefix %zu of %s", i, s);
        ck_assert_ptr_null(r.error);
        ck_assert_uint_eq(r.num_headers, MAXH);     /* untouched */
    }
    ck_assert_int_eq(req_n(s, n, &r, MAXH), (ssize_t)n);
}

static void res_prefixes(const char *s)
{
    struct http_response r;
    size_t n = strlen(s);
    for (size_t i = 0; i < n; i++) {
        ck_assert_msg(res_n(s, i, &r, MAXH) == -2, "prefix %zu of %s", i, s);
        ck_assert_ptr_null(r.error);
    }
    ck_assert_int_eq(res_n(s, n, &r, MAXH), (ssize_t)n);
}

static void req_bad(const char *s, size_t n, const char *why)
{
    struct http_request r;
    ck_assert_msg(req_n(s, n, &r, MAXH) == -1, "accepted: %s", s);
    ck_assert_str_eq(r.error, why);
    ck_assert_uint_eq(r.num_headers, MAXH);
}

/* For literals with embedded NULs. */
#define REQ_BAD(s, why) req_bad(s, sizeof(s) - 1, why)

static void res_bad(const char *s, const char *why)
{
    struct http_response r;
    ck_assert_msg(res(s, &r) == -1, "accepted: %s", s);
    ck_assert_str_eq(r.error, why);
}

#define KUBECTL_GET \
    "GET /k8s/clusters/c-4f2a9/api/v1/namespaces/default/pods?watch=true&resourceVersion=10 HTTP/1.1\r\n" \
    "Host: drover.example.com\r\n" \
    "User-Agent: kubectl/v1.30.2 (linux/amd64) kubernetes/3968350\r\n" \
    "Accept: application/json;as=Table;v=v1;g=meta.k8s.io,application/json\r\n" \
    "Authorization: Bearer token-xyz:abc123\r\n" \
    "Kubectl-Command: kubectl get\r\n" \
    "Kubectl-Session: 0d4b7a1e-6c0f-4b0f-9d0a-3a8b5f0c2e11\r\n" \
    "Accept-Encoding: gzip\r\n" \
    "\r\n"

#define WS_UPGRADE \
    "GET /v3/connect HTTP/1.1\r\n" \
    "Host: drover.example.com\r\n" \
    "Upgrade: websocket\r\n" \
    "Connection: Upgrade\r\n" \
    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n" \
    "Sec-WebSocket-Version: 13\r\n" \
    "\r\n"

/* ---- requests ---- */

START_TEST(req_kubectl)
{
    struct http_request r;
    const char *s = KUBECTL_GET;
    ck_assert_int_eq(req(s, &r), (ssize_t)strlen(s));
    ck_assert_uint_eq(r.method_len, 3);
    ck_assert_mem_eq(r.method, "GET", 3);
    const char *t = "/k8s/clusters/c-4f2a9/api/v1/namespaces/default/pods?watch=true&resourceVersion=10";
    ck_assert_uint_eq(r.target_len, strlen(t));
    ck_assert_mem_eq(r.target, t, strlen(t));
    ck_assert_int_eq(r.minor_version, 1);
    ck_assert_uint_eq(r.num_headers, 7);
    hdr_is(0, "Host", "drover.example.com");
    hdr_is(3, "Authorization", "Bearer token-xyz:abc123");
    hdr_is(4, "Kubectl-Command", "kubectl get");
    hdr_is(6, "Accept-Encoding", "gzip");
    ck_assert_ptr_null(r.error);
}
END_TEST

START_TEST(req_prefixes_all)
{
    req_prefixes(KUBECTL_GET);
    req_prefixes(WS_UPGRADE);
    req_prefixes("GET / HTTP/1.0\r\n\r\n");
    req_prefixes("GET / HTTP/1.1\n\n");
    req_prefixes("\r\n\n\r\nPOST /x HTTP/1.1\r\nContent-Length: 5\r\nX:\r\n\r\n");
    req_prefixes("DELETE /a?b HTTP/1.1\r\nX:  padded value \t \r\n\r\n");
}
END_TEST

START_TEST(req_body_not_consumed)
{
    struct http_request r;
    const char *s = "POST /v3/clusters HTTP/1.1\r\nContent-Length: 2\r\n\r\n{}";
    ck_assert_int_eq(req(s, &r), (ssize_t)strlen(s) - 2);
    ck_assert_uint_eq(r.num_headers, 1);
    hdr_is(0, "Content-Length", "2");
}
END_TEST

START_TEST(req_lf_only_and_mixed)
{
    struct http_request r;
    const char *s = "GET /a HTTP/1.0\nHost: x\r\nA: b\n\r\n";
    ck_assert_int_eq(req(s, &r), (ssize_t)strlen(s));
    ck_assert_int_eq(r.minor_version, 0);
    ck_assert_uint_eq(r.num_headers, 2);
    hdr_is(1, "A", "b");
}
END_TEST

START_TEST(req_leading_empty_lines)
{
    struct http_request r;
    const char *s = "\r\n\r\nGET / HTTP/1.1\r\n\r\n";
    ck_assert_int_eq(req(s, &r), (ssize_t)strlen(s));
    ck_assert_mem_eq(r.method, "GET", 3);
    ck_assert_int_eq(req("\r\n", &r), -2);
    ck_assert_int_eq(req("\r\n\r", &r), -2);
    REQ_BAD("\r\r\nGET / HTTP/1.1\r\n\r\n", "bare CR");
}
END_TEST

START_TEST(req_values_stripped)
{
    struct http_request r;
    const char *s = "GET / HTTP/1.1\r\nA:x\r\nB: \t y z \t\r\nC:\r\nD:   \r\nE: \x80\xff\r\n\r\n";
    ck_assert_int_eq(req(s, &r), (ssize_t)strlen(s));
    ck_assert_uint_eq(r.num_headers, 5);
    hdr_is(0, "A", "x");
    hdr_is(1, "B", "y z");
    hdr_is(2, "C", "");
    hdr_is(3, "D", "");
    hdr_is(4, "E", "\x80\xff");
}
END_TEST

START_TEST(req_token_chars)
{
    struct http_request r;
    const char *s = "M-E.T_H~O!D#$%&'*+^`| / HTTP/1.1\r\nX-a!#$%&'*+-.^_`|~9: v\r\n\r\n";
    ck_assert_int_eq(req(s, &r), (ssize_t)strlen(s));
    ck_assert_uint_eq(r.method_len, strlen("M-E.T_H~O!D#$%&'*+^`|"));
    ck_assert_uint_eq(hdrs[0].name_len, strlen("X-a!#$%&'*+-.^_`|~9"));
}
END_TEST

START_TEST(req_header_capacity)
{
    struct http_request r;
    const char *s = "GET / HTTP/1.1\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n";
    size_t n = strlen(s);
    ck_assert_int_eq(req_n(s, n, &r, 3), (ssize_t)n);
    ck_assert_uint_eq(r.num_headers, 3);
    ck_assert_int_eq(req_n(s, n, &r, 2), -1);
    ck_assert_str_eq(r.error, "too many headers");
    ck_assert_uint_eq(r.num_headers, 2);
    /* the extra header is refused as soon as its first byte is seen */
    size_t at = strlen("GET / HTTP/1.1\r\nA: 1\r\nB: 2\r\n");
    ck_assert_int_eq(req_n(s, at, &r, 2), -2);
    ck_assert_int_eq(req_n(s, at + 1, &r, 2), -1);
    /* no headers, no capacity */
    ck_assert_int_eq(req_n("GET / HTTP/1.1\r\n\r\n", 18, &r, 0), 18);
    ck_assert_uint_eq(r.num_headers, 0);
    ck_assert_int_eq(req_n("GET / HTTP/1.1\r\nA: 1\r\n\r\n", 24, &r, 0), -1);
    ck_assert_str_eq(r.error, "too many headers");
}
END_TEST

START_TEST(req_bad_method)
{
    REQ_BAD(" / HTTP/1.1\r\n\r\n", "bad method");
    REQ_BAD("G(T / HTTP/1.1\r\n\r\n", "bad method");
    REQ_BAD("GET\t/ HTTP/1.1\r\n\r\n", "bad method");
    REQ_BAD("GET\r\n\r\n", "bad method");
    REQ_BAD("G\0T / HTTP/1.1\r\n\r\n", "bad method");
    REQ_BAD("G\x80T / HTTP/1.1\r\n\r\n", "bad method");
}
END_TEST

START_TEST(req_bad_target)
{
    REQ_BAD("GET  / HTTP/1.1\r\n\r\n", "bad request-target");
    REQ_BAD("GET /a\tb HTTP/1.1\r\n\r\n", "bad request-target");
    REQ_BAD("GET /a\x7f HTTP/1.1\r\n\r\n", "bad request-target");
    REQ_BAD("GET /\x80 HTTP/1.1\r\n\r\n", "bad request-target");
    REQ_BAD("GET /\0 HTTP/1.1\r\n\r\n", "bad request-target");
    REQ_BAD("GET /a\r\n\r\n", "bad request-target");
}
END_TEST

START_TEST(req_bad_version)
{
    REQ_BAD("GET / HTTP/1.2\r\n\r\n", "bad HTTP version");
    REQ_BAD("GET / HTTP/2.0\r\n\r\n", "bad HTTP version");
    REQ_BAD("GET / http/1.1\r\n\r\n", "bad HTTP version");
    REQ_BAD("GET / HTTP/1.1 \r\n\r\n", "expected end of line");
    REQ_BAD("GET / HTTP/1.10\r\n\r\n", "expected end of line");
    REQ_BAD("GET /  HTTP/1.1\r\n\r\n", "bad HTTP version");
    REQ_BAD("GET / HTTP/1.1\rX\r\n", "bare CR");
    REQ_BAD("GET / HTTP/1\r\n\r\n", "bad HTTP version");
}
END_TEST

START_TEST(req_bad_headers)
{
    REQ_BAD("GET / HTTP/1.1\r\nA : b\r\n\r\n", "bad header name");
    REQ_BAD("GET / HTTP/1.1\r\n: b\r\n\r\n", "bad header name");
    REQ_BAD("GET / HTTP/1.1\r\nAb\r\n\r\n", "bad header name");
    REQ_BAD("GET / HTTP/1.1\r\nA\0: b\r\n\r\n", "bad header name");
    REQ_BAD("GET / HTTP/1.1\r\nA(: b\r\n\r\n", "bad header name");
    REQ_BAD("GET / HTTP/1.1\r\nA: b\0c\r\n\r\n", "bad header value");
    REQ_BAD("GET / HTTP/1.1\r\nA: b\x7f\r\n\r\n", "bad header value");
    REQ_BAD("GET / HTTP/1.1\r\nA: b\x01\r\n\r\n", "bad header value");
    REQ_BAD("GET / HTTP/1.1\r\nA: b\rc\r\n\r\n", "bare CR");
    REQ_BAD("GET / HTTP/1.1\r\nA: b\r\n c\r\n\r\n", "obs-fold");
    REQ_BAD("GET / HTTP/1.1\r\nA: b\r\n\tc\r\n\r\n", "obs-fold");
    REQ_BAD("GET / HTTP/1.1\r\n A: b\r\n\r\n", "obs-fold");
    REQ_BAD("GET / HTTP/1.1\r\nA: b\r\n\r\r\n", "bare CR");
}
END_TEST

/* Each invalid head is -2 or -1 at each prefix and never anything else. */
START_TEST(req_bad_prefixes)
{
    const char *s = "GET / HTTP/1.1\r\nA: 1\r\nB : 2\r\n\r\n";
    struct http_request r;
    size_t n = strlen(s), first_bad = strlen("GET / HTTP/1.1\r\nA: 1\r\nB ");
    for (size_t i = 0; i <= n; i++)
        ck_assert_int_eq(req_n(s, i, &r, MAXH), i < first_bad ? -2 : -1);
}
END_TEST

/* ---- responses ---- */

START_TEST(res_chunked_200)
{
    struct http_response r;
    const char *s = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                    "Transfer-Encoding: chunked\r\nDate: Mon, 24 Nov 2026 18:53:13 GMT\r\n\r\n";
    ck_assert_int_eq(res(s, &r), (ssize_t)strlen(s));
    ck_assert_int_eq(r.status, 200);
    ck_assert_int_eq(r.minor_version, 1);
    ck_assert_uint_eq(r.reason_len, 2);
    ck_assert_mem_eq(r.reason, "OK", 2);
    ck_assert_uint_eq(r.num_headers, 3);
    hdr_is(1, "Transfer-Encoding", "chunked");
    res_prefixes(s);
}
END_TEST

START_TEST(res_switching)
{
    struct http_response r;
    const char *s = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                    "Connection: Upgrade\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n";
    ck_assert_int_eq(res(s, &r), (ssize_t)strlen(s));
    ck_assert_int_eq(r.status, 101);
    ck_assert_uint_eq(r.reason_len, strlen("Switching Protocols"));
    hdr_is(2, "Sec-WebSocket-Accept", "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
    res_prefixes(s);
}
END_TEST

START_TEST(res_reason_forms)
{
    struct http_response r;
    ck_assert_int_eq(res("HTTP/1.0 404\r\n\r\n", &r), 16);
    ck_assert_int_eq(r.status, 404);
    ck_assert_int_eq(r.minor_version, 0);
    ck_assert_uint_eq(r.reason_len, 0);
    ck_assert_int_eq(res("HTTP/1.1 204 \r\n\r\n", &r), 17);
    ck_assert_uint_eq(r.reason_len, 0);
    ck_assert_int_eq(res("HTTP/1.1 500 Oops \x80 \r\n\r\n", &r), 24);
    ck_assert_uint_eq(r.reason_len, 6);
    ck_assert_int_eq(res("HTTP/1.1 100 Continue\n\n", &r), 23);
    ck_assert_int_eq(r.status, 100);
    ck_assert_int_eq(res("HTTP/1.1 599 x\r\n\r\n", &r), 18);
    ck_assert_int_eq(r.status, 599);
    res_prefixes("HTTP/1.1 404\r\n\r\n");
    res_prefixes("HTTP/1.1 404 \r\n\r\n");
}
END_TEST

START_TEST(res_invalid)
{
    res_bad("HTTP/1.1 099 x\r\n\r\n", "bad status code");
    res_bad("HTTP/1.1 600 x\r\n\r\n", "bad status code");
    res_bad("HTTP/1.1 20 x\r\n\r\n", "bad status code");
    res_bad("HTTP/1.1 2000 x\r\n\r\n", "expected end of line");
    res_bad("HTTP/1.1 2x0 x\r\n\r\n", "bad status code");
    res_bad("HTTP/1.1  200 x\r\n\r\n", "bad status code");
    res_bad("HTTP/1.1\t200 x\r\n\r\n", "bad status line");
    res_bad("HTTP/1.2 200 x\r\n\r\n", "bad HTTP version");
    res_bad("HTTP/2 200 x\r\n\r\n", "bad HTTP version");
    res_bad("\r\nHTTP/1.1 200 OK\r\n\r\n", "bad HTTP version");
    res_bad("HTTP/1.1 200 O\x01K\r\n\r\n", "bad reason phrase");
    res_bad("HTTP/1.1 200 OK\rX\r\n\r\n", "bare CR");
    res_bad("HTTP/1.1 200 OK\r\nA: b\r\n c\r\n\r\n", "obs-fold");
    struct http_response r;
    const char *s = "HTTP/1.1 200 OK\r\nA: 1\r\nB: 2\r\n\r\n";
    ck_assert_int_eq(res_n(s, strlen(s), &r, 1), -1);
    ck_assert_str_eq(r.error, "too many headers");
    ck_assert_int_eq(res_n(s, strlen(s), &r, 2), (ssize_t)strlen(s));
}
END_TEST

/* ---- header helpers ---- */

START_TEST(find_and_count)
{
    struct http_request r;
    const char *s = "GET / HTTP/1.1\r\nContent-Length: 1\r\nHost: a\r\ncontent-length: 2\r\n\r\n";
    ck_assert_int_gt(req(s, &r), 0);
    const struct http_header *h = http1_find(hdrs, r.num_headers, "CONTENT-LENGTH");
    ck_assert_ptr_eq(h, &hdrs[0]);
    ck_assert_ptr_eq(http1_find(hdrs, r.num_headers, "host"), &hdrs[1]);
    ck_assert_ptr_null(http1_find(hdrs, r.num_headers, "Hos"));
    ck_assert_ptr_null(http1_find(hdrs, r.num_headers, "Hostt"));
    ck_assert_ptr_null(http1_find(hdrs, 0, "Host"));
    ck_assert_uint_eq(http1_count(hdrs, r.num_headers, "Content-Length"), 2);
    ck_assert_uint_eq(http1_count(hdrs, r.num_headers, "Host"), 1);
    ck_assert_uint_eq(http1_count(hdrs, r.num_headers, "Upgrade"), 0);
    ck_assert_uint_eq(http1_count(hdrs, 1, "content-length"), 1);
}
END_TEST

static bool tok(const char *v, const char *t)
{
    return http1_has_token(v, strlen(v), t);
}

START_TEST(has_token)
{
    ck_assert(tok("Upgrade", "upgrade"));
    ck_assert(tok("keep-alive, Upgrade", "upgrade"));
    ck_assert(tok("keep-alive,Upgrade", "UPGRADE"));
    ck_assert(tok(" \tupgrade\t , close", "upgrade"));
    ck_assert(tok(",,upgrade,", "upgrade"));
    ck_assert(tok("close", "close"));
    ck_assert(!tok("upgrade2", "upgrade"));
    ck_assert(!tok("upgr", "upgrade"));
    ck_assert(!tok("up grade", "upgrade"));
    ck_assert(!tok("", "upgrade"));
    ck_assert(!tok(", ,", "upgrade"));
    ck_assert(!tok("a,,b", ""));
    /* only len bytes count */
    ck_assert(!http1_has_token("upgradeX", 6, "upgrade"));
    ck_assert(http1_has_token("upgrade,x", 7, "upgrade"));
}
END_TEST

static int cl(const char *v, uint64_t *out)
{
    return http1_parse_content_length(v, strlen(v), out);
}

START_TEST(content_length)
{
    uint64_t v = 99;
    ck_assert_int_eq(cl("0", &v), 0);
    ck_assert_uint_eq(v, 0);
    ck_assert_int_eq(cl("123", &v), 0);
    ck_assert_uint_eq(v, 123);
    ck_assert_int_eq(cl("007", &v), 0);
    ck_assert_uint_eq(v, 7);
    ck_assert_int_eq(cl("00000000000000000000000000042", &v), 0);
    ck_assert_uint_eq(v, 42);
    ck_assert_int_eq(cl("9223372036854775807", &v), 0);
    ck_assert_uint_eq(v, INT64_MAX);
    v = 5;
    ck_assert_int_eq(cl("9223372036854775808", &v), -1);
    ck_assert_int_eq(cl("18446744073709551616", &v), -1);
    ck_assert_int_eq(cl("99999999999999999999", &v), -1);
    ck_assert_int_eq(cl("", &v), -1);
    ck_assert_int_eq(cl("+1", &v), -1);
    ck_assert_int_eq(cl("-1", &v), -1);
    ck_assert_int_eq(cl("1 ", &v), -1);
    ck_assert_int_eq(cl(" 1", &v), -1);
    ck_assert_int_eq(cl("1a", &v), -1);
    ck_assert_int_eq(cl("0x10", &v), -1);
    ck_assert_int_eq(cl("5, 5", &v), -1);
    ck_assert_uint_eq(v, 5);     /* untouched on failure */
    ck_assert_int_eq(http1_parse_content_length("12x", 2, &v), 0);
    ck_assert_uint_eq(v, 12);
}
END_TEST

/* ---- chunked ---- */

struct sink {
    uint8_t buf[8192];
    size_t len;
    size_t calls;
};

static void sink_data(void *ud, const uint8_t *p, size_t n)
{
    struct sink *s = ud;
    ck_assert_uint_gt(n, 0);
    ck_assert_uint_le(n, sizeof(s->buf) - s->len);
    memcpy(s->buf + s->len, p, n);
    s->len += n;
    s->calls++;
}

static ssize_t feed(struct http1_chunked *st, const char *s, size_t n, struct sink *k)
{
    uint8_t *p = (uint8_t *)dup_exact(s, n);
    ssize_t rc = http1_chunked_feed(st, p, n, sink_data, k);
    free(p);
    return rc;
}

/* Decodes s whole; returns the feed result and checks the body. */
static ssize_t chunked_whole(const char *s, size_t n, const char *body)
{
    struct http1_chunked st;
    struct sink k = { .len = 0 };
    http1_chunked_init(&st);
    ssize_t rc = feed(&st, s, n, &k);
    if (rc >= 0 && body) {
        ck_assert_uint_eq(k.len, strlen(body));
        ck_assert_mem_eq(k.buf, body, k.len);
    }
    return rc;
}

static void chunked_bad(const char *s, size_t n, const char *why)
{
    struct http1_chunked st;
    struct sink k = { .len = 0 };
    http1_chunked_init(&st);
    ck_assert_int_eq(feed(&st, s, n, &k), -1);
    ck_assert_str_eq(st.error, why);
    ck_assert(!st.done);
    /* stays failed */
    ck_assert_int_eq(feed(&st, "0\r\n\r\n", 5, &k), -1);
}

#define CHUNKED_BAD(s, why) chunked_bad(s, sizeof(s) - 1, why)

#define CHUNKED_BODY \
    "5\r\nhello\r\n" \
    "1A;name=value;x=\"q\"\r\nabcdefghijklmnopqrstuvwxyz\r\n" \
    "3 ; ext\r\n!!!\r\n" \
    "0\r\nExpires: never\r\nX-Trailer: 1\r\n\r\n"
#define CHUNKED_DATA "helloabcdefghijklmnopqrstuvwxyz!!!"

START_TEST(chunked_basic)
{
    ck_assert_int_eq(chunked_whole(CHUNKED_BODY, strlen(CHUNKED_BODY), CHUNKED_DATA),
                     (ssize_t)strlen(CHUNKED_BODY));
    ck_assert_int_eq(chunked_whole("0\r\n\r\n", 5, ""), 5);
    ck_assert_int_eq(chunked_whole("0\n\n", 3, ""), 3);
    ck_assert_int_eq(chunked_whole("3\nabc\n0\nT: 1\n\n", 14, "abc"), 14);
    ck_assert_int_eq(chunked_whole("a\r\n0123456789\r\n0\r\n\r\n", 20, "0123456789"), 20);
    ck_assert_int_eq(chunked_whole("A\r\n0123456789\r\n000\r\n\r\n", 22, "0123456789"), 22);
}
END_TEST

/* Split at every offset into two feeds; one byte at a time; the same body
 * comes out and the end is found at the same place. */
START_TEST(chunked_every_split)
{
    const char *s = CHUNKED_BODY;
    size_t n = strlen(s);
    for (size_t cut = 0; cut <= n; cut++) {
        struct http1_chunked st;
        struct sink k = { .len = 0 };
        http1_chunked_init(&st);
        ck_assert_int_eq(feed(&st, s, cut, &k), (ssize_t)cut);
        ck_assert(st.done == (cut == n));
        ck_assert_int_eq(feed(&st, s + cut, n - cut, &k), (ssize_t)(n - cut));
        ck_assert(st.done);
        ck_assert_uint_eq(k.len, strlen(CHUNKED_DATA));
        ck_assert_mem_eq(k.buf, CHUNKED_DATA, k.len);
    }
    struct http1_chunked st;
    struct sink k = { .len = 0 };
    http1_chunked_init(&st);
    for (size_t i = 0; i < n; i++) {
        ck_assert(!st.done);
        ck_assert_int_eq(feed(&st, s + i, 1, &k), 1);
    }
    ck_assert(st.done);
    ck_assert_uint_eq(k.len, strlen(CHUNKED_DATA));
}
END_TEST

START_TEST(chunked_stops_at_end)
{
    const char *s = "2\r\nhi\r\n0\r\n\r\nGET / HTTP/1.1\r\n";
    struct http1_chunked st;
    struct sink k = { .len = 0 };
    http1_chunked_init(&st);
    ck_assert_int_eq(feed(&st, s, strlen(s), &k), 12);
    ck_assert(st.done);
    ck_assert_int_eq(feed(&st, "more", 4, &k), 0);
    ck_assert_int_eq(feed(&st, "0\r\n\r\n", 5, &k), 0);
    ck_assert_uint_eq(k.len, 2);
}
END_TEST

START_TEST(chunked_null_callback)
{
    struct http1_chunked st;
    http1_chunked_init(&st);
    ck_assert_int_eq(http1_chunked_feed(&st, (const uint8_t *)"3\r\nabc\r\n0\r\n\r\n",
                                        13, NULL, NULL), 13);
    ck_assert(st.done);
    ck_assert_int_eq(http1_chunked_feed(&st, NULL, 0, NULL, NULL), 0);
}
END_TEST

START_TEST(chunked_size_limit)
{
    struct http1_chunked st;
    struct sink k = { .len = 0 };
    /* 2^62 is the largest size accepted */
    http1_chunked_init(&st);
    ck_assert_int_eq(feed(&st, "4000000000000000\r\nab", 20, &k), 20);
    ck_assert_uint_eq(st.remaining, ((uint64_t)1 << 62) - 2);
    http1_chunked_init(&st);
    ck_assert_int_eq(feed(&st, "00004000000000000000\r\n", 22, &k), 22);
    CHUNKED_BAD("4000000000000001\r\n", "chunk size too big");
    CHUNKED_BAD("40000000000000000", "chunk size too big");
    CHUNKED_BAD("ffffffffffffffffff\r\n", "chunk size too big");
    CHUNKED_BAD("10000000000000000\r\n", "chunk size too big");
}
END_TEST

START_TEST(chunked_bad_syntax)
{
    CHUNKED_BAD("\r\n", "missing chunk size");
    CHUNKED_BAD(";x\r\n", "missing chunk size");
    CHUNKED_BAD("g\r\n", "missing chunk size");
    CHUNKED_BAD("-1\r\n", "missing chunk size");
    CHUNKED_BAD("0x5\r\n", "bad chunk size");
    CHUNKED_BAD("5 5\r\n", "bad chunk size");
    CHUNKED_BAD("5\rX", "bare CR");
    CHUNKED_BAD("5;a\x01\r\n", "bad chunk extension");
    CHUNKED_BAD("5;a\0\r\n", "bad chunk extension");
    CHUNKED_BAD("5\r\nhelloX", "missing CRLF after chunk data");
    CHUNKED_BAD("5\r\nhello\rX", "missing CRLF after chunk data");
    CHUNKED_BAD("5\r\nhello\r\r\n", "missing CRLF after chunk data");
    CHUNKED_BAD("0\r\nT: 1\rX", "bare CR");
    CHUNKED_BAD("0\r\n\rX", "bare CR");
    CHUNKED_BAD("0\r\nT: \x01\r\n\r\n", "bad trailer");
}
END_TEST

START_TEST(chunked_line_limit)
{
    static char buf[4200];
    /* size line: "1;" + extension, 4096 bytes before CRLF */
    memset(buf, 'e', sizeof(buf));
    buf[0] = '1';
    buf[1] = ';';
    memcpy(buf + 4096, "\r\nX\r\n0\r\n\r\n", 10);
    ck_assert_int_eq(chunked_whole(buf, 4106, "X"), 4106);
    memset(buf, 'e', sizeof(buf));
    buf[0] = '1';
    buf[1] = ';';
    memcpy(buf + 4097, "\r\nX\r\n0\r\n\r\n", 10);
    chunked_bad(buf, 4107, "chunk line too long");
    /* a long run of leading zeros counts towards the same limit */
    memset(buf, '0', sizeof(buf));
    chunked_bad(buf, 4097, "chunk line too long");
    memcpy(buf + 4096, "\r\n\r\n", 4);
    ck_assert_int_eq(chunked_whole(buf, 4100, ""), 4100);
}
END_TEST

START_TEST(trailer_line_limit)
{
    static char buf[4200];
    memcpy(buf, "0\r\nT:", 5);
    memset(buf + 5, 'v', 4096 - 2);
    memcpy(buf + 3 + 4096, "\r\n\r\n", 4);
    ck_assert_int_eq(chunked_whole(buf, 3 + 4096 + 4, ""), 4103);
    memcpy(buf, "0\r\nT:", 5);
    memset(buf + 5, 'v', 4097 - 2);
    memcpy(buf + 3 + 4097, "\r\n\r\n", 4);
    chunked_bad(buf, 3 + 4097 + 4, "chunk line too long");
    /* the limit is per line, not per trailer section */
    memcpy(buf, "0\r\nA:", 5);
    memset(buf + 5, 'v', 3000);
    memcpy(buf + 3005, "\r\nB:", 4);
    memset(buf + 3009, 'v', 1000);
    memcpy(buf + 4009, "\r\n\r\n", 4);
    ck_assert_int_eq(chunked_whole(buf, 4013, ""), 4013);
}
END_TEST

/* ---- targets and queries ---- */

static int split(const char *t, const char **p, size_t *pl, const char **q, size_t *ql)
{
    return http1_split_target(t, strlen(t), p, pl, q, ql);
}

START_TEST(split_target)
{
    const char *p, *q;
    size_t pl, ql;
    const char *t = "/v3/clusters?limit=5&x";
    ck_assert_int_eq(split(t, &p, &pl, &q, &ql), 0);
    ck_assert_ptr_eq(p, t);
    ck_assert_uint_eq(pl, 12);
    ck_assert_ptr_eq(q, t + 13);
    ck_assert_uint_eq(ql, 9);
    t = "/healthz";
    ck_assert_int_eq(split(t, &p, &pl, &q, &ql), 0);
    ck_assert_uint_eq(pl, 8);
    ck_assert_ptr_eq(q, t + 8);
    ck_assert_uint_eq(ql, 0);
    t = "/?";
    ck_assert_int_eq(split(t, &p, &pl, &q, &ql), 0);
    ck_assert_uint_eq(pl, 1);
    ck_assert_uint_eq(ql, 0);
    t = "/a?b?c";
    ck_assert_int_eq(split(t, &p, &pl, &q, &ql), 0);
    ck_assert_uint_eq(pl, 2);
    ck_assert_uint_eq(ql, 3);
    ck_assert_mem_eq(q, "b?c", 3);
    ck_assert_int_eq(split("/", &p, &pl, &q, &ql), 0);
    ck_assert_uint_eq(pl, 1);

    ck_assert_int_eq(split("", &p, &pl, &q, &ql), -1);
    ck_assert_int_eq(split("a/b", &p, &pl, &q, &ql), -1);
    ck_assert_int_eq(split("*", &p, &pl, &q, &ql), -1);
    ck_assert_int_eq(split("http://h/x", &p, &pl, &q, &ql), -1);
    ck_assert_int_eq(split("/a#frag", &p, &pl, &q, &ql), -1);
    ck_assert_int_eq(split("/a?b#frag", &p, &pl, &q, &ql), -1);
    ck_assert_int_eq(split("/a b", &p, &pl, &q, &ql), -1);
    ck_assert_int_eq(split("/a\x7f", &p, &pl, &q, &ql), -1);
    ck_assert_int_eq(split("/a\x80", &p, &pl, &q, &ql), -1);
    ck_assert_int_eq(http1_split_target("/a\0b", 4, &p, &pl, &q, &ql), -1);
    /* only len counts */
    ck_assert_int_eq(http1_split_target("/a#", 2, &p, &pl, &q, &ql), 0);
}
END_TEST

static ssize_t pct(const char *s, char *dst, size_t cap, bool is_path)
{
    return http1_pct_decode(s, strlen(s), dst, cap, is_path);
}

START_TEST(pct_decode)
{
    char d[32];
    ck_assert_int_eq(pct("%41%62c", d, sizeof(d), false), 3);
    ck_assert_str_eq(d, "Abc");
    ck_assert_int_eq(pct("%7e%7E%c3%A9", d, sizeof(d), false), 4);
    ck_assert_str_eq(d, "~~\xc3\xa9");
    ck_assert_int_eq(pct("a+b", d, sizeof(d), false), 3);
    ck_assert_str_eq(d, "a+b");
    ck_assert_int_eq(pct("", d, sizeof(d), true), 0);
    ck_assert_str_eq(d, "");
    ck_assert_int_eq(pct("/api/v1/x%20y", d, sizeof(d), true), 11);
    ck_assert_str_eq(d, "/api/v1/x y");
    ck_assert_int_eq(pct("a%2Fb", d, sizeof(d), false), 3);
    ck_assert_str_eq(d, "a/b");

    ck_assert_int_eq(pct("a%2Fb", d, sizeof(d), true), -1);
    ck_assert_int_eq(pct("a%2fb", d, sizeof(d), true), -1);
    ck_assert_int_eq(pct("%", d, sizeof(d), false), -1);
    ck_assert_int_eq(pct("a%4", d, sizeof(d), false), -1);
    ck_assert_int_eq(pct("%G1", d, sizeof(d), false), -1);
    ck_assert_int_eq(pct("%4G", d, sizeof(d), false), -1);
    ck_assert_int_eq(pct("%%41", d, sizeof(d), false), -1);
    ck_assert_int_eq(pct("%00", d, sizeof(d), false), -1);
    ck_assert_int_eq(http1_pct_decode("a\0b", 3, d, sizeof(d), false), -1);
    /* a '%' at the very end of len, with more bytes after it in memory */
    ck_assert_int_eq(http1_pct_decode("ab%41", 3, d, sizeof(d), false), -1);
}
END_TEST

START_TEST(pct_decode_cap)
{
    char d[8];
    ck_assert_int_eq(pct("abcdefg", d, 8, false), 7);
    ck_assert_str_eq(d, "abcdefg");
    ck_assert_int_eq(pct("abcdefgh", d, 8, false), -1);
    ck_assert_int_eq(pct("%41%41%41%41%41%41%41", d, 8, false), 7);
    ck_assert_int_eq(pct("%41%41%41%41%41%41%41%41", d, 8, false), -1);
    ck_assert_int_eq(pct("", d, 1, false), 0);
    ck_assert_str_eq(d, "");
    ck_assert_int_eq(pct("a", d, 1, false), -1);
    ck_assert_int_eq(pct("", d, 0, false), -1);
}
END_TEST

static ssize_t qp(const char *q, const char *name, char *dst, size_t cap)
{
    char *p = dup_exact(q, strlen(q));
    ssize_t rc = http1_query_param(p, strlen(q), name, dst, cap);
    free(p);
    return rc;
}

START_TEST(query_param)
{
    char d[32];
    const char *q = "watch=true&resourceVersion=10&labelSelector=app%3Dweb+tier&x&=y&&";
    ck_assert_int_eq(qp(q, "watch", d, sizeof(d)), 4);
    ck_assert_str_eq(d, "true");
    ck_assert_int_eq(qp(q, "resourceVersion", d, sizeof(d)), 2);
    ck_assert_str_eq(d, "10");
    ck_assert_int_eq(qp(q, "labelSelector", d, sizeof(d)), 12);
    ck_assert_str_eq(d, "app=web tier");
    ck_assert_int_eq(qp(q, "x", d, sizeof(d)), 0);
    ck_assert_str_eq(d, "");
    ck_assert_int_eq(qp(q, "", d, sizeof(d)), -1);
    ck_assert_int_eq(qp(q, "wat", d, sizeof(d)), -1);
    ck_assert_int_eq(qp(q, "watchX", d, sizeof(d)), -1);
    ck_assert_int_eq(qp(q, "WATCH", d, sizeof(d)), -1);
    ck_assert_int_eq(qp(q, "y", d, sizeof(d)), -1);
    ck_assert_int_eq(qp("", "a", d, sizeof(d)), -1);
    ck_assert_int_eq(http1_query_param(NULL, 0, "a", d, sizeof(d)), -1);

    ck_assert_int_eq(qp("a=1&a=2", "a", d, sizeof(d)), 1);
    ck_assert_str_eq(d, "1");
    ck_assert_int_eq(qp("a=b=c", "a", d, sizeof(d)), 3);
    ck_assert_str_eq(d, "b=c");
    ck_assert_int_eq(qp("a=%2B+%2b", "a", d, sizeof(d)), 3);
    ck_assert_str_eq(d, "+ +");
    ck_assert_int_eq(qp("%77atch=1", "watch", d, sizeof(d)), 1);
    ck_assert_int_eq(qp("field+selector=1", "field selector", d, sizeof(d)), 1);
    ck_assert_int_eq(qp("%zz=1&a=2", "a", d, sizeof(d)), 1);
    ck_assert_str_eq(d, "2");
    ck_assert_int_eq(qp("a%00=1", "a", d, sizeof(d)), -1);
}
END_TEST

START_TEST(query_param_errors)
{
    char d[4];
    ck_assert_int_eq(qp("a=%zz", "a", d, sizeof(d)), -2);
    ck_assert_int_eq(qp("a=%4", "a", d, sizeof(d)), -2);
    ck_assert_int_eq(qp("a=%00", "a", d, sizeof(d)), -2);
    ck_assert_int_eq(qp("a=abc", "a", d, sizeof(d)), 3);
    ck_assert_int_eq(qp("a=abcd", "a", d, sizeof(d)), -2);
    ck_assert_int_eq(qp("a=%41%41%41", "a", d, sizeof(d)), 3);
    ck_assert_int_eq(qp("a=%41%41%41%41", "a", d, sizeof(d)), -2);
    ck_assert_int_eq(qp("a", "a", d, 1), 0);
    ck_assert_int_eq(qp("a", "a", d, 0), -2);
    /* a malformed value elsewhere does not matter */
    ck_assert_int_eq(qp("b=%zz&a=1", "a", d, sizeof(d)), 1);
}
END_TEST

START_TEST(reasons)
{
    const int codes[] = { 101, 200, 201, 202, 204, 301, 302, 304, 400, 401, 403,
                          404, 405, 409, 410, 411, 413, 415, 422, 429, 431, 500,
                          501, 502, 503, 504 };
    for (size_t i = 0; i < sizeof(codes) / sizeof(codes[0]); i++) {
        const char *r = http1_reason(codes[i]);
        ck_assert_str_ne(r, "Unknown");
        ck_assert_uint_gt(strlen(r), 0);
    }
    ck_assert_str_eq(http1_reason(200), "OK");
    ck_assert_str_eq(http1_reason(101), "Switching Protocols");
    ck_assert_str_eq(http1_reason(404), "Not Found");
    ck_assert_str_eq(http1_reason(431), "Request Header Fields Too Large");
    ck_assert_str_eq(http1_reason(503), "Service Unavailable");
    ck_assert_str_eq(http1_reason(0), "Unknown");
    ck_assert_str_eq(http1_reason(418), "Unknown");
    ck_assert_str_eq(http1_reason(-200), "Unknown");
    ck_assert_str_eq(http1_reason(999), "Unknown");
}
END_TEST

Suite *suite_common_http1(void)
{
    Suite *s = suite_create("common_http1");
    TCase *t = tcase_create("request");
    tcase_add_test(t, req_kubectl);
    tcase_add_test(t, req_prefixes_all);
    tcase_add_test(t, req_body_not_consumed);
    tcase_add_test(t, req_lf_only_and_mixed);
    tcase_add_test(t, req_leading_empty_lines);
    tcase_add_test(t, req_values_stripped);
    tcase_add_test(t, req_token_chars);
    tcase_add_test(t, req_header_capacity);
    tcase_add_test(t, req_bad_method);
    tcase_add_test(t, req_bad_target);
    tcase_add_test(t, req_bad_version);
    tcase_add_test(t, req_bad_headers);
    tcase_add_test(t, req_bad_prefixes);
    suite_add_tcase(s, t);

    t = tcase_create("response");
    tcase_add_test(t, res_chunked_200);
    tcase_add_test(t, res_switching);
    tcase_add_test(t, res_reason_forms);
    tcase_add_test(t, res_invalid);
    suite_add_tcase(s, t);

    t = tcase_create("headers");
    tcase_add_test(t, find_and_count);
    tcase_add_test(t, has_token);
    tcase_add_test(t, content_length);
    suite_add_tcase(s, t);

    t = tcase_create("chunked");
    tcase_add_test(t, chunked_basic);
    tcase_add_test(t, chunked_every_split);
    tcase_add_test(t, chunked_stops_at_end);
    tcase_add_test(t, chunked_null_callback);
    tcase_add_test(t, chunked_size_limit);
    tcase_add_test(t, chunked_bad_syntax);
    tcase_add_test(t, chunked_line_limit);
    tcase_add_test(t, trailer_line_limit);
    suite_add_tcase(s, t);

    t = tcase_create("target");
    tcase_add_test(t, split_target);
    tcase_add_test(t, pct_decode);
    tcase_add_test(t, pct_decode_cap);
    tcase_add_test(t, query_param);
    tcase_add_test(t, query_param_errors);
    tcase_add_test(t, reasons);
    suite_add_tcase(s, t);
    return s;
}
