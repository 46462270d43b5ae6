/*
 * libFuzzer target for common/http1.c.
 *
 * The first byte picks the mode (low two bits, so '0'..'3' in the seeds):
 *   0  request head, then the target and header helpers on what parsed
 *   1  response head
 *   2  chunked body, fed whole and then in pieces whose sizes come from the
 *      input itself: both runs must agree byte for byte
 *   3  a request-target: split, percent-decode, query parameters
 * The rest is passed at its exact size, so a read past len is an ASan
 * report. Invariants are checked with abort().
 */
#include "common/http1.h"

#include <stdlib.h>
#include <string.h>

#define MAXH 32

static void need(bool cond)
{
    if (!cond)
        abort();
}

static bool within(const char *p, size_t n, const char *buf, size_t len)
{
    return p >= buf && (size_t)(p - buf) <= len && n <= len - (size_t)(p - buf);
}

static void check_target(const char *t, size_t n)
{
    static const char *const names[] = { "watch", "resourceVersion", "limit",
                                         "labelSelector", "a", "" };
    const char *path, *query;
    size_t path_len, query_len;
    char dst[256];

    if (http1_split_target(t, n, &path, &path_len, &query, &query_len) < 0)
        return;
    need(path == t && path_len >= 1 && path_len <= n && path[0] == '/');
    need(within(query, query_len, t, n));
    for (int is_path = 0; is_path < 2; is_path++) {
        ssize_t d = http1_pct_decode(path, path_len, dst, sizeof(dst), is_path);
        need(d >= -1 && d < (ssize_t)sizeof(dst));
        if (d >= 0)
            need(dst[d] == '\0' && memchr(dst, '\0', (size_t)d) == NULL);
    }
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        ssize_t v = http1_query_param(query, query_len, names[i], dst, sizeof(dst));
        need(v >= -2 && v < (ssize_t)sizeof(dst));
        if (v >= 0)
            need(dst[v] == '\0' && strlen(dst) == (size_t)v);
    }
}

static void check_headers(const struct http_header *h, size_t n, const char *buf,
                          size_t len)
{
    uint64_t cl;
    need((http1_find(h, n, "Content-Length") != NULL) ==
         (http1_count(h, n, "content-length") > 0));
    for (size_t i = 0; i < n; i++) {
        need(h[i].name_len > 0 && within(h[i].name, h[i].name_len, buf, len));
        need(within(h[i].value, h[i].value_len, buf, len));
        if (h[i].value_len) {
            char last = h[i].value[h[i].value_len - 1];
            need(h[i].value[0] != ' ' && h[i].value[0] != '\t');
            need(last != ' ' && last != '\t');
            need(memchr(h[i].value, '\r', h[i].value_len) == NULL);
        }
        http1_has_token(h[i].value, h[i].value_len, "upgrade");
        if (http1_parse_content_length(h[i].value, h[i].value_len, &cl) == 0)
            need(cl <= INT64_MAX);
    }
}

static void fuzz_request(const char *buf, size_t len)
{
    struct http_header h[MAXH];
    struct http_request r = { .headers = h, .num_headers = MAXH };
    ssize_t n = http1_parse_request(buf, len, &r);

    need(n >= -2 && (n != -1 || r.error) && (n == -1 || !r.error));
    if (n < 0)
        return;
    need((size_t)n <= len && r.num_headers <= MAXH);
    need(r.minor_version == 0 || r.minor_version == 1);
    need(within(r.method, r.method_len, buf, len) && r.method_len > 0);
    need(within(r.target, r.target_len, buf, len) && r.target_len > 0);
    check_headers(h, r.num_headers, buf, len);
    check_target(r.target, r.target_len);
    /* a strict prefix of a valid head is incomplete, never invalid */
    struct http_request r2 = { .headers = h, .num_headers = MAXH };
    need(http1_parse_request(buf, (size_t)n - 1, &r2) == -2);
}

static void fuzz_response(const char *buf, size_t len)
{
    struct http_header h[MAXH];
    struct http_response r = { .headers = h, .num_headers = MAXH };
    ssize_t n = http1_parse_response(buf, len, &r);

    need(n >= -2 && (n != -1 || r.error) && (n == -1 || !r.error));
    if (n < 0)
        return;
    need((size_t)n <= len && r.status >= 100 && r.status <= 599);
    need(within(r.reason, r.reason_len, buf, len));
    check_headers(h, r.num_headers, buf, len);
    struct http_response r2 = { .headers = h, .num_headers = MAXH };
    need(http1_parse_response(buf, (size_t)n - 1, &r2) == -2);
}

struct out {
    uint8_t *p;
    size_t len;
};

static void collect(void *ud, const uint8_t *p, size_t n)
{
    struct out *o = ud;
    need(n > 0);
    memcpy(o->p + o->len, p, n);    /* decoded <= input, sized for it */
    o->len += n;
}

static void fuzz_chunked(const uint8_t *buf, size_t len)
{
    struct http1_chunked a, b;
    struct out oa = { malloc(len + 1), 0 }, ob = { malloc(len + 1), 0 };
    need(oa.p && ob.p);

    http1_chunked_init(&a);
    ssize_t na = http1_chunked_feed(&a, buf, len, collect, &oa);
    need(na == -1 ? a.error != NULL : (size_t)na <= len);
    need(na < 0 || (size_t)na == len || a.done);

    /* again in pieces of 1..16 bytes, sizes taken from the data */
    http1_chunked_init(&b);
    size_t pos = 0, seed = 0;
    ssize_t nb = 0;
    while (pos < len && !b.done) {
        size_t piece = (size_t)(buf[seed++ % len] & 15) + 1;
        if (piece > len - pos)
            piece = len - pos;
        ssize_t r = http1_chunked_feed(&b, buf + pos, piece, collect, &ob);
        if (r < 0) {
            nb = -1;
            break;
        }
        pos += (size_t)r;
        nb = (ssize_t)pos;
    }
    need((na < 0) == (nb < 0) && a.done == b.done);
    need(na < 0 || na == nb);
    need(oa.len == ob.len && memcmp(oa.p, ob.p, oa.len) == 0);
    if (a.done)
        need(http1_chunked_feed(&a, buf, len, collect, &oa) == 0);
    free(oa.p);
    free(ob.p);
}

/* Mode 3: "name\ntarget" when there is a newline, else just a target. */
static void fuzz_target(const char *buf, size_t len)
{
    char name[64], dst[128];
    const char *nl = memchr(buf, '\n', len);
    check_target(buf, len);
    if (!nl || (size_t)(nl - buf) >= sizeof(name))
        return;
    size_t nlen = (size_t)(nl - buf);
    memcpy(name, buf, nlen);
    name[nlen] = '\0';
    const char *q = nl + 1;
    size_t qlen = len - nlen - 1;
    ssize_t v = http1_query_param(q, qlen, name, dst, sizeof(dst));
    need(v >= -2 && v < (ssize_t)sizeof(dst));
    ssize_t d = http1_pct_decode(q, qlen, dst, sizeof(dst), false);
    need(d >= -1 && d < (ssize_t)sizeof(dst));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    const char *buf = (const char *)data + 1;
    size_t len = size - 1;
    switch (data[0] & 3) {
    case 0: fuzz_request(buf, len); break;
    case 1: fuzz_response(buf, len); break;
    case 2: fuzz_chunked(data + 1, len); break;
    default: fuzz_target(buf, len); break;
    }
    if (len >= 3)
        need(http1_reason((data[1] << 8 | data[2]) % 1000) != NULL);
    return 0;
}
