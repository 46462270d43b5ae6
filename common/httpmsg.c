/*
 * httpmsg: HTTP/1.1 message framing for pass-through relays. See httpmsg.h.
 */
#include "common/httpmsg.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* Transfer-Encoding must be exactly chunked (drover relays nothing else);
 * with Content-Length as well, the message is refused (request smuggling). */
static int framing(struct httpmsg *m, const struct http_header *h, size_t n,
                   enum httpmsg_kind none, const char **why)
{
    const struct http_header *te = http1_find(h, n, "transfer-encoding");
    const struct http_header *cl = http1_find(h, n, "content-length");
    memset(m, 0, sizeof(*m));
    if (te) {
        if (cl) {
            *why = "both Transfer-Encoding and Content-Length";
            return -1;
        }
        if (http1_count(h, n, "transfer-encoding") != 1 || te->value_len != 7 ||
            strncasecmp(te->value, "chunked", 7) != 0) {
            *why = "unsupported Transfer-Encoding";
            return -1;
        }
        m->kind = HM_CHUNKED;
        http1_chunked_init(&m->ch);
        return 0;
    }
    if (cl) {
        if (http1_count(h, n, "content-length") != 1 ||
            http1_parse_content_length(cl->value, cl->value_len, &m->left) < 0) {
            *why = "invalid Content-Length";
            return -1;
        }
        m->kind = HM_LENGTH;
        m->done = m->left == 0;
        return 0;
    }
    m->kind = none;
    m->done = none == HM_NONE;
    return 0;
}

int httpmsg_request(struct httpmsg *m, const struct http_request *req, const char **why)
{
    return framing(m, req->headers, req->num_headers, HM_NONE, why);
}

int httpmsg_response(struct httpmsg *m, const struct http_response *res,
                     bool head_request, const char **why)
{
    int s = res->status;
    if (head_request || (s >= 100 && s < 200) || s == 204 || s == 304) {
        memset(m, 0, sizeof(*m));
        m->kind = HM_NONE;
        m->done = true;
        return 0;
    }
    return framing(m, res->headers, res->num_headers, HM_UNTIL_CLOSE, why);
}

ssize_t httpmsg_feed(struct httpmsg *m, const uint8_t *p, size_t len)
{
    if (m->done)
        return 0;
    switch (m->kind) {
    case HM_NONE:
        m->done = true;
        return 0;
    case HM_LENGTH: {
        size_t take = len < m->left ? len : (size_t)m->left;
        m->left -= take;
        m->done = m->left == 0;
        return (ssize_t)take;
    }
    case HM_CHUNKED: {
        ssize_t r = http1_chunked_feed(&m->ch, p, len, NULL, NULL);
        if (r >= 0)
            m->done = m->ch.done;
        return r;
    }
    case HM_UNTIL_CLOSE:
        return (ssize_t)len;
    }
    return -1;
}

bool httpmsg_keep_alive(int minor_version, const struct http_header *h, size_t n)
{
    const struct http_header *c = http1_find(h, n, "connection");
    if (minor_version == 0)
        return c && http1_has_token(c->value, c->value_len, "keep-alive");
    return !(c && http1_has_token(c->value, c->value_len, "close"));
}

int httpmsg_head_feed(struct httpmsg_head *h, const uint8_t *p, size_t n,
                      bool head_request, struct httpmsg *m, size_t *body_off)
{
    if (h->done) {
        *body_off = 0;
        return 1;
    }
    if (!h->buf && !(h->buf = malloc(HTTPMSG_MAX_HEAD)))
        return -1;
    size_t take = n < HTTPMSG_MAX_HEAD - h->len ? n : HTTPMSG_MAX_HEAD - h->len;
    memcpy(h->buf + h->len, p, take);
    size_t prev = h->len;
    h->len += take;
    struct http_header hd[64];
    struct http_response res = { .headers = hd, .num_headers = 64 };
    ssize_t hl = http1_parse_response(h->buf, h->len, &res);
    const char *why;
    if (hl == -2) {
        *body_off = n;
        return h->len == HTTPMSG_MAX_HEAD ? -1 : 0;
    }
    if (hl < 0 || httpmsg_response(m, &res, head_request, &why) < 0)
        return -1;
    *body_off = (size_t)hl - prev;
    h->done = true;
    h->status = res.status;
    h->keep_alive = res.status != 101 && m->kind != HM_UNTIL_CLOSE &&
                    httpmsg_keep_alive(res.minor_version, hd, res.num_headers);
    httpmsg_head_free(h);
    return 1;
}

void httpmsg_head_free(struct httpmsg_head *h)
{
    free(h->buf);
    h->buf = NULL;
    h->len = 0;
}

bool httpmsg_proxy_drops(const struct http_header *h)
{
    static const char *const drop[] = {
        "authorization", "host", "connection", "keep-alive", "proxy-connection",
        "proxy-authorization", "te", "trailer", "cookie",
    };
    for (size_t i = 0; i < sizeof(drop) / sizeof(drop[0]); i++)
        if (h->name_len == strlen(drop[i]) && strncasecmp(h->name, drop[i], h->name_len) == 0)
            return true;
    return h->name_len >= 12 && strncasecmp(h->name, "impersonate-", 12) == 0;
}
