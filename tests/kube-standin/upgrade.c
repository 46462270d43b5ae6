/*
 * upgrade: HTTP upgrades for exec and port-forward in the kube-standin test
 * stand-in. See upgrade.h.
 */
#include "tests/kube-standin/upgrade.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "common/http1.h"
#include "tests/kube-standin/standin.h"

enum upgrade_kind upgrade_kind(const struct kreq *k)
{
    const struct http_header *h = hs_header(k->r, "upgrade");
    if (!h)
        return UP_NONE;
    if (http1_has_token(h->value, h->value_len, "websocket"))
        return UP_WEBSOCKET;
    if (http1_has_token(h->value, h->value_len, "SPDY/3.1"))
        return UP_SPDY;
    return UP_NONE;
}

static bool offered(const struct kreq *k, const char *header, const char *proto)
{
    const struct http_request *req = hs_request(k->r);
    size_t hl = strlen(header);
    for (size_t i = 0; i < req->num_headers; i++) {
        const struct http_header *h = &req->headers[i];
        if (h->name_len == hl && strncasecmp(h->name, header, hl) == 0 &&
            http1_has_token(h->value, h->value_len, proto))
            return true;
    }
    return false;
}

const char *upgrade_pick(const struct kreq *k, const char *const *want)
{
    const char *header = upgrade_kind(k) == UP_WEBSOCKET ? "sec-websocket-protocol"
                                                         : "x-stream-protocol-version";
    for (; *want; want++)
        if (offered(k, header, *want))
            return *want;
    return NULL;
}

struct ws *upgrade_websocket(struct kreq *k, const char *protocol, size_t max_message)
{
    char answer[512];
    const char *why = NULL;
    ssize_t n = ws_upgrade_answer(hs_request(k->r), protocol, answer, sizeof(answer), &why);
    if (n < 0) {
        ks_reply_status(k, 400, "BadRequest", NULL, "%s", why);
        return NULL;
    }
    k->audit_status = 101;
    struct conn *c = hs_takeover(k->r);     /* k is answered and freed here */
    if (!c)
        return NULL;
    if (conn_write(c, answer, (size_t)n) < 0) {
        conn_close(c);
        return NULL;
    }
    return ws_server_attach(c, NULL, 0, max_message, NULL, NULL);
}

struct conn *upgrade_spdy(struct kreq *k, const char *protocol)
{
    char answer[256];
    int n = snprintf(answer, sizeof(answer),
                     "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\n"
                     "Upgrade: SPDY/3.1\r\nX-Stream-Protocol-Version: %s\r\n\r\n", protocol);
    k->audit_status = 101;
    struct conn *c = hs_takeover(k->r);
    if (!c)
        return NULL;
    if (conn_write(c, answer, (size_t)n) < 0) {
        conn_close(c);
        return NULL;
    }
    return c;
}
