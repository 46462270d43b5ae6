/*
 * rawws: blocking websocket client for protocol tests. See rawws.h.
 */
#include "tests/support/rawws.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/tls.h"
#include "proto/ws.h"
#include "tests/support/proc.h"

int rawws_open(struct rawws *w, int port, const char *token, const char *cluster)
{
    char err[256];
    memset(w, 0, sizeof(*w));
    w->fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    if (w->fd < 0 || connect(w->fd, (struct sockaddr *)&a, sizeof(a)) < 0)
        return -1;
    w->ctx = tls_client_ctx_insecure(err, sizeof(err));
    w->ssl = w->ctx ? SSL_new(w->ctx) : NULL;
    if (!w->ssl || SSL_set_fd(w->ssl, w->fd) != 1 || SSL_connect(w->ssl) != 1)
        return -1;
    char req[1024];
    int n = snprintf(req, sizeof(req),
                     "GET /v3/connect HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
                     "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                     "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: drover-tunnel.v1\r\n"
                     "Authorization: Bearer %s\r\nX-Drover-Cluster: %s\r\n\r\n",
                     token, cluster);
    if (SSL_write(w->ssl, req, n) != n)
        return -1;
    /* Read the answer head byte by byte so no frame bytes are consumed. */
    char head[4096];
    size_t len = 0;
    while (len < sizeof(head) - 1) {
        if (SSL_read(w->ssl, head + len, 1) != 1)
            return -1;
        len++;
        if (len >= 4 && memcmp(head + len - 4, "\r\n\r\n", 4) == 0)
            break;
    }
    head[len] = '\0';
    if (sscanf(head, "HTTP/1.1 %d", &w->status) != 1)
        return -1;
    return 0;
}

int rawws_send(struct rawws *w, uint8_t opcode, const void *p, size_t len)
{
    uint8_t hdr[WS_MAX_HDR];
    const uint8_t mask[4] = { 0x12, 0x34, 0x56, 0x78 };
    size_t hl = ws_hdr_build(hdr, true, opcode, len, mask);
    uint8_t *buf = malloc(hl + len + 1);
    if (!buf)
        return -1;
    memcpy(buf, hdr, hl);
    memcpy(buf + hl, p, len);
    ws_mask(buf + hl, len, mask, 0);
    int ok = SSL_write(w->ssl, buf, (int)(hl + len)) == (int)(hl + len);
    free(buf);
    return ok ? 0 : -1;
}

static int read_exact(struct rawws *w, uint8_t *p, size_t n, long long deadline)
{
    size_t got = 0;
    while (got < n) {
        if (!SSL_pending(w->ssl)) {
            struct pollfd pf = { .fd = w->fd, .events = POLLIN };
            long long left = deadline - mono_ms();
            if (left <= 0 || poll(&pf, 1, (int)left) <= 0)
                return -1;
        }
        int r = SSL_read(w->ssl, p + got, (int)(n - got));
        if (r <= 0)
            return 0;
        got += (size_t)r;
    }
    return 1;
}

int rawws_recv(struct rawws *w, int timeout_ms, uint8_t *opcode, uint8_t *buf, size_t cap,
               size_t *len)
{
    long long deadline = mono_ms() + timeout_ms;
    uint8_t h[10];
    int r = read_exact(w, h, 2, deadline);
    if (r <= 0)
        return r;
    uint64_t plen = h[1] & 0x7f;
    if (plen == 126 || plen == 127) {
        size_t extra = plen == 126 ? 2 : 8;
        if ((r = read_exact(w, h + 2, extra, deadline)) <= 0)
            return r;
        plen = 0;
        for (size_t i = 0; i < extra; i++)
            plen = plen << 8 | h[2 + i];
    }
    if (plen > cap)
        return 0;
    if (plen && (r = read_exact(w, buf, plen, deadline)) <= 0)
        return r;
    *opcode = h[0] & 0x0f;
    *len = plen;
    return 1;
}

int rawws_wait_close(struct rawws *w, int timeout_ms, char *reason, size_t cap)
{
    long long deadline = mono_ms() + timeout_ms;
    reason[0] = '\0';
    for (;;) {
        uint8_t h[10];
        int r = read_exact(w, h, 2, deadline);
        if (r <= 0)
            return r;
        uint64_t plen = h[1] & 0x7f;
        if (plen == 126 || plen == 127) {
            size_t extra = plen == 126 ? 2 : 8;
            if ((r = read_exact(w, h + 2, extra, deadline)) <= 0)
                return r;
            plen = 0;
            for (size_t i = 0; i < extra; i++)
                plen = plen << 8 | h[2 + i];
        }
        if (plen > 1 << 20)
            return 0;
        uint8_t *p = malloc(plen + 1);
        if (!p || (plen && (r = read_exact(w, p, plen, deadline)) <= 0)) {
            free(p);
            return p ? r : -1;
        }
        if ((h[0] & 0x0f) == WS_OP_CLOSE) {
            int code = plen >= 2 ? (p[0] << 8 | p[1]) : 1005;
            if (plen > 2)
                snprintf(reason, cap, "%.*s", (int)(plen - 2), (char *)p + 2);
            free(p);
            return code;
        }
        free(p);
    }
}

void rawws_free(struct rawws *w)
{
    if (w->ssl)
        SSL_free(w->ssl);
    if (w->ctx)
        SSL_CTX_free(w->ctx);
    if (w->fd > 0)
        close(w->fd);
    memset(w, 0, sizeof(*w));
}
