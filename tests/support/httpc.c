/*
 * httpc: blocking HTTPS requests for tests. See httpc.h.
 */
#include "tests/support/httpc.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "common/tls.h"

#define MAX_ANSWER (8 * 1024 * 1024)

static int connect_tls(int port, int timeout_ms, int *fd, SSL_CTX **ctx, SSL **ssl)
{
    char err[256];
    struct timeval tv = { timeout_ms / 1000, (timeout_ms % 1000) * 1000 };
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    *fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (*fd < 0)
        return -1;
    setsockopt(*fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    setsockopt(*fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    if (connect(*fd, (struct sockaddr *)&a, sizeof(a)) < 0)
        return -1;
    *ctx = tls_client_ctx_insecure(err, sizeof(err));
    *ssl = *ctx ? SSL_new(*ctx) : NULL;
    if (!*ssl || SSL_set_fd(*ssl, *fd) != 1 || SSL_connect(*ssl) != 1)
        return -1;
    return 0;
}

static int write_all(SSL *ssl, const char *p, size_t n)
{
    while (n > 0) {
        int chunk = n > 65536 ? 65536 : (int)n;
        int w = SSL_write(ssl, p, chunk);
        if (w <= 0)
            return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* Reads until the peer closes (we asked for Connection: close). */
static int read_all(SSL *ssl, char **buf, size_t *len)
{
    size_t cap = 16384;
    *buf = malloc(cap + 1);
    *len = 0;
    if (!*buf)
        return -1;
    for (;;) {
        if (cap - *len < 4096 && cap < MAX_ANSWER) {
            char *nb = realloc(*buf, cap * 2 + 1);
            if (!nb)
                return -1;
            *buf = nb;
            cap *= 2;
        }
        int r = SSL_read(ssl, *buf + *len, (int)(cap - *len));
        if (r <= 0)
            break;
        *len += (size_t)r;
    }
    (*buf)[*len] = '\0';
    return 0;
}

static int parse_answer(char *raw, size_t len, struct httpc_resp *out)
{
    char *end = strstr(raw, "\r\n\r\n");
    if (!end || sscanf(raw, "HTTP/1.1 %d", &out->status) != 1) {
        out->status = 0;
        return -1;
    }
    size_t hl = (size_t)(end - raw);
    snprintf(out->head, sizeof(out->head), "%.*s", (int)hl, raw);
    out->len = len - hl - 4;
    out->body = malloc(out->len + 1);
    if (!out->body)
        return -1;
    memcpy(out->body, end + 4, out->len);
    out->body[out->len] = '\0';
    return 0;
}

int httpc_do(int port, const char *method, const char *path, const char *token,
             const char *body, size_t body_len, int timeout_ms, struct httpc_resp *out)
{
    return httpc_do_type(port, method, path, token, "application/json", body, body_len,
                         timeout_ms, out);
}

int httpc_do_type(int port, const char *method, const char *path, const char *token,
                  const char *ctype, const char *body, size_t body_len, int timeout_ms,
                  struct httpc_resp *out)
{
    int fd = -1;
    SSL_CTX *ctx = NULL;
    SSL *ssl = NULL;
    char head[2048], *raw = NULL;
    size_t rl = 0;
    memset(out, 0, sizeof(*out));
    signal(SIGPIPE, SIG_IGN);   /* the server may close on us mid-body (413) */
    if (body && body_len == 0)
        body_len = strlen(body);
    int n = snprintf(head, sizeof(head),
                     "%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
                     "%s%s%s%s%s%sContent-Length: %zu\r\n\r\n", method, path,
                     token ? "Authorization: Bearer " : "", token ? token : "",
                     token ? "\r\n" : "", body && ctype ? "Content-Type: " : "",
                     body && ctype ? ctype : "", body && ctype ? "\r\n" : "",
                     body ? body_len : 0);
    if (connect_tls(port, timeout_ms ? timeout_ms : 30000, &fd, &ctx, &ssl) == 0 &&
        write_all(ssl, head, (size_t)n) == 0) {
        /* A server refusing a large body answers before reading it and
         * closes; the answer must be read before a reset can discard it. */
        struct pollfd pfd = { .fd = fd, .events = POLLIN };
        bool early = body_len > 65536 && poll(&pfd, 1, 1000) == 1;
        if (body && !early)
            (void)write_all(ssl, body, body_len);  /* read the answer even if cut */
        if (read_all(ssl, &raw, &rl) == 0)
            parse_answer(raw, rl, out);
    }
    free(raw);
    if (ssl)
        SSL_free(ssl);
    if (ctx)
        SSL_CTX_free(ctx);
    if (fd >= 0)
        close(fd);
    return out->status ? out->status : -1;
}

void httpc_free(struct httpc_resp *r)
{
    free(r->body);
    r->body = NULL;
}

json_t *httpc_json(const struct httpc_resp *r)
{
    return r->body ? json_loadb(r->body, r->len, 0, NULL) : NULL;
}

int httpc_header(const struct httpc_resp *r, const char *name, char *out, size_t cap)
{
    size_t nl = strlen(name);
    for (const char *l = strstr(r->head, "\r\n"); l; l = strstr(l + 2, "\r\n")) {
        const char *p = l + 2;
        if (strncasecmp(p, name, nl) == 0 && p[nl] == ':') {
            p += nl + 1;
            while (*p == ' ')
                p++;
            size_t vl = strcspn(p, "\r");
            snprintf(out, cap, "%.*s", (int)vl, p);
            return 0;
        }
    }
    return -1;
}
