/*
 * libFuzzer target for what the /k8s proxy does with a client's request
 * head: parse it (http1), split the target, find the cluster id of a
 * /k8s/clusters/{id}/... path, rebuild the head for the agent without the
 * prefix and without the headers a proxy drops (httpmsg_proxy_drops: the
 * caller's credentials, impersonation, hop-by-hop), and work out the body
 * framing (httpmsg_request). Checks the properties kubeproxy.c relies on:
 * the rebuilt head parses back completely, keeps the method and the rest of
 * the target, and carries no Authorization or Impersonate-* header.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/http1.h"
#include "common/httpmsg.h"

#define PREFIX "/k8s/clusters/"
#define MAX_HEADERS 64

static size_t put(char *b, size_t cap, size_t len, const void *s, size_t n, int *ok)
{
    if (!*ok || n > cap - len) {
        *ok = 0;
        return len;
    }
    memcpy(b + len, s, n);
    return len + n;
}

/* As kubeproxy.c's build_head: 0 if it does not fit. */
static size_t rebuild(const struct http_request *rq, const char *rest, size_t rlen,
                      const char *query, size_t qlen, char *out, size_t cap)
{
    int ok = 1;
    size_t len = 0;
    len = put(out, cap, len, rq->method, rq->method_len, &ok);
    len = put(out, cap, len, " ", 1, &ok);
    len = rlen ? put(out, cap, len, rest, rlen, &ok) : put(out, cap, len, "/", 1, &ok);
    if (qlen) {
        len = put(out, cap, len, "?", 1, &ok);
        len = put(out, cap, len, query, qlen, &ok);
    }
    len = put(out, cap, len, " HTTP/1.1\r\n", 11, &ok);
    for (size_t i = 0; i < rq->num_headers; i++) {
        const struct http_header *h = &rq->headers[i];
        if (httpmsg_proxy_drops(h))
            continue;
        len = put(out, cap, len, h->name, h->name_len, &ok);
        len = put(out, cap, len, ": ", 2, &ok);
        len = put(out, cap, len, h->value, h->value_len, &ok);
        len = put(out, cap, len, "\r\n", 2, &ok);
    }
    len = put(out, cap, len, "\r\n", 2, &ok);
    return ok ? len : 0;
}

static void check_rebuilt(const struct http_request *orig, const char *head, size_t hl,
                          const char *rest, size_t rlen)
{
    struct http_header hdrs[MAX_HEADERS];
    struct http_request rq = { .headers = hdrs, .num_headers = MAX_HEADERS };
    if (http1_parse_request(head, hl, &rq) != (ssize_t)hl)
        abort();
    if (rq.method_len != orig->method_len || memcmp(rq.method, orig->method, rq.method_len))
        abort();
    if (rlen && (rq.target_len < rlen || memcmp(rq.target, rest, rlen) != 0))
        abort();
    for (size_t i = 0; i < rq.num_headers; i++) {
        const struct http_header *h = &hdrs[i];
        if ((h->name_len == 13 && strncasecmp(h->name, "authorization", 13) == 0) ||
            (h->name_len >= 12 && strncasecmp(h->name, "impersonate-", 12) == 0))
            abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct http_header hdrs[MAX_HEADERS];
    struct http_request rq = { .headers = hdrs, .num_headers = MAX_HEADERS };
    const char *buf = (const char *)data;
    ssize_t n = http1_parse_request(buf, size, &rq);
    if (n < 0)
        return 0;
    if ((size_t)n > size)
        abort();
    const char *path, *query;
    size_t plen, qlen;
    if (http1_split_target(rq.target, rq.target_len, &path, &plen, &query, &qlen) < 0)
        return 0;
    if (plen > rq.target_len || qlen > rq.target_len)
        abort();
    struct httpmsg m;
    const char *why;
    if (httpmsg_request(&m, &rq, &why) == 0)
        (void)httpmsg_feed(&m, data + n, size - (size_t)n);
    (void)httpmsg_keep_alive(rq.minor_version, rq.headers, rq.num_headers);
    size_t pl = sizeof(PREFIX) - 1;
    if (plen <= pl || memcmp(path, PREFIX, pl) != 0)
        return 0;
    const char *id = path + pl, *slash = memchr(id, '/', plen - pl);
    size_t il = slash ? (size_t)(slash - id) : plen - pl;
    if (il == 0 || il >= 64)
        return 0;
    const char *rest = id + il;
    size_t rlen = plen - pl - il;
    static char out[64 * 1024];
    size_t hl = rebuild(&rq, rest, rlen, query, qlen, out, sizeof(out));
    if (hl)
        check_rebuilt(&rq, out, hl, rest, rlen);
    return 0;
}
