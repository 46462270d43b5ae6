/*
 * cacerts: blocking fetch of the server CA. See cacerts.h.
 */
#include "common/cacerts.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "common/http1.h"
#include "common/tls.h"

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Waits for fd to become ready for ev until deadline. 0 or -1 (timeout). */
static int wait_fd(int fd, short ev, long long deadline)
{
    long long left = deadline - now_ms();
    if (left <= 0)
        return -1;
    struct pollfd p = { .fd = fd, .events = ev };
    int r = poll(&p, 1, (int)left);
    return r > 0 ? 0 : -1;
}

static int dial(const struct url *u, long long deadline, char *err, size_t errlen)
{
    struct addrinfo hints = { .ai_socktype = SOCK_STREAM }, *res = NULL;
    char port[8];
    snprintf(port, sizeof(port), "%d", u->port);
    int g = getaddrinfo(u->host, port, &hints, &res);
    if (g != 0) {
        snprintf(err, errlen, "cannot resolve %s: %s", u->host, gai_strerror(g));
        return -1;
    }
    int fd = -1;
    for (struct addrinfo *ai = res; ai && fd < 0; ai = ai->ai_next) {
        fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd < 0)
            continue;
        int soerr = 0;
        socklen_t sl = sizeof(soerr);
        if ((connect(fd, ai->ai_addr, ai->ai_addrlen) < 0 && errno != EINPROGRESS) ||
            wait_fd(fd, POLLOUT, deadline) < 0 ||
            getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) < 0 || soerr) {
            snprintf(err, errlen, "cannot connect to %s:%d: %s", u->host, u->port,
                     soerr ? strerror(soerr) : errno ? strerror(errno) : "timed out");
            close(fd);
            fd = -1;
        }
    }
    freeaddrinfo(res);
    return fd;
}

/* Runs one SSL operation to completion or the deadline. */
static int ssl_step(SSL *ssl, int fd, int r, long long deadline)
{
    int e = SSL_get_error(ssl, r);
    if (e == SSL_ERROR_WANT_READ)
        return wait_fd(fd, POLLIN, deadline) < 0 ? -1 : 1;
    if (e == SSL_ERROR_WANT_WRITE)
        return wait_fd(fd, POLLOUT, deadline) < 0 ? -1 : 1;
    return -1;
}

static ssize_t read_all(SSL *ssl, int fd, char *buf, size_t cap, long long deadline)
{
    size_t len = 0;
    for (;;) {
        /* Stop as soon as the whole answer is here (keep-alive servers do
         * not close). */
        struct http_header h[32];
        struct http_response res = { .headers = h, .num_headers = 32 };
        ssize_t hl = http1_parse_response(buf, len, &res);
        if (hl > 0) {
            const struct http_header *cl = http1_find(h, res.num_headers, "content-length");
            uint64_t n;
            if (cl && http1_parse_content_length(cl->value, cl->value_len, &n) == 0 &&
                len >= (size_t)hl + n)
                return (ssize_t)len;
        }
        if (len == cap)
            return -1;
        int r = SSL_read(ssl, buf + len, (int)(cap - len));
        if (r > 0) {
            len += (size_t)r;
            continue;
        }
        int e = SSL_get_error(ssl, r);
        if (e == SSL_ERROR_ZERO_RETURN || e == SSL_ERROR_SYSCALL)
            return (ssize_t)len;
        if (ssl_step(ssl, fd, r, deadline) < 0)
            return -1;
    }
}

static int parse_answer(char *buf, size_t len, char **pem, size_t *pem_len,
                        char *err, size_t errlen)
{
    struct http_header h[32];
    struct http_response res = { .headers = h, .num_headers = 32 };
    ssize_t hl = http1_parse_response(buf, len, &res);
    if (hl < 0) {
        snprintf(err, errlen, "malformed answer to GET /cacerts");
        return -1;
    }
    if (res.status != 200) {
        snprintf(err, errlen, "GET /cacerts answered HTTP %d", res.status);
        return -1;
    }
    size_t body = len - (size_t)hl;
    const struct http_header *cl = http1_find(h, res.num_headers, "content-length");
    uint64_t n;
    if (cl && http1_parse_content_length(cl->value, cl->value_len, &n) == 0 && n < body)
        body = (size_t)n;
    *pem = malloc(body + 1);
    if (!*pem) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    memcpy(*pem, buf + hl, body);
    (*pem)[body] = '\0';
    *pem_len = body;
    return 0;
}

int cacerts_fetch(const struct url *u, int timeout_ms, char **pem, size_t *len,
                  char *err, size_t errlen)
{
    long long deadline = now_ms() + timeout_ms;
    int rc = -1;
    char *buf = malloc(CACERTS_MAX + 4096);
    SSL_CTX *ctx = tls_client_ctx_insecure(err, errlen);
    SSL *ssl = NULL;
    int fd = -1;
    if (!buf || !ctx)
        goto out;
    fd = dial(u, deadline, err, errlen);
    if (fd < 0)
        goto out;
    ssl = SSL_new(ctx);
    if (!ssl || SSL_set_fd(ssl, fd) != 1 || tls_client_set_host(ssl, u->host, u->host_is_ip) < 0)
        goto tls_fail;
    int r;
    while ((r = SSL_connect(ssl)) != 1)
        if (ssl_step(ssl, fd, r, deadline) < 0)
            goto tls_fail;
    char req[600];
    int n = snprintf(req, sizeof(req), "GET /cacerts HTTP/1.1\r\nHost: %s\r\n"
                     "User-Agent: drover-agent\r\nConnection: close\r\n\r\n", u->host);
    while ((r = SSL_write(ssl, req, n)) <= 0)
        if (ssl_step(ssl, fd, r, deadline) < 0)
            goto tls_fail;
    ssize_t got = read_all(ssl, fd, buf, CACERTS_MAX + 4096, deadline);
    if (got < 0) {
        snprintf(err, errlen, "GET /cacerts: no complete answer from %s:%d", u->host, u->port);
        goto out;
    }
    rc = parse_answer(buf, (size_t)got, pem, len, err, errlen);
    goto out;
tls_fail: {
        char e[200];
        snprintf(err, errlen, "TLS with %s:%d failed: %s", u->host, u->port,
                 tls_last_error(e, sizeof(e)));
    }
out:
    if (ssl)
        SSL_free(ssl);
    if (fd >= 0)
        close(fd);
    if (ctx)
        SSL_CTX_free(ctx);
    free(buf);
    return rc;
}
