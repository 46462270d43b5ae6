/*
 * http: blocking HTTPS requests for droverctl. See http.h.
 */
#include "cli/http.h"

#include <errno.h>
#include <netdb.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "common/http1.h"
#include "common/tls.h"

#define HEAD_MAX (64 * 1024)

static SSL_CTX *system_ctx(char *err, size_t errlen)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    if (!ctx || SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) != 1 ||
        SSL_CTX_set_default_verify_paths(ctx) != 1) {
        char e[200];
        snprintf(err, errlen, "TLS setup failed: %s", tls_last_error(e, sizeof(e)));
        SSL_CTX_free(ctx);
        return NULL;
    }
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    return ctx;
}

int http_client_init(struct http_client *c, const char *server, const char *ca_pem,
                     bool insecure, char *err, size_t errlen)
{
    const char *why;
    memset(c, 0, sizeof(*c));
    c->timeout_ms = 60000;
    if (url_parse(server, &c->url, &why) < 0) {
        snprintf(err, errlen, "bad server URL %s: %s", server, why);
        return -1;
    }
    if (strcmp(c->url.scheme, "https") != 0) {
        snprintf(err, errlen, "bad server URL %s: drover serves https only", server);
        return -1;
    }
    if (insecure)
        c->ctx = tls_client_ctx_insecure(err, errlen);
    else if (ca_pem)
        c->ctx = tls_client_ctx_pinned(ca_pem, strlen(ca_pem), err, errlen);
    else
        c->ctx = system_ctx(err, errlen);
    return c->ctx ? 0 : -1;
}

void http_client_free(struct http_client *c)
{
    if (c && c->ctx)
        SSL_CTX_free(c->ctx);
    if (c)
        c->ctx = NULL;
}

void http_answer_free(struct http_answer *a)
{
    if (!a)
        return;
    free(a->body);
    a->body = NULL;
    a->len = 0;
}

/* ---- connection ---- */

static int dial(const struct http_client *c, char *err, size_t errlen)
{
    struct addrinfo hints = { .ai_socktype = SOCK_STREAM }, *res = NULL;
    char port[8];
    snprintf(port, sizeof(port), "%d", c->url.port);
    int g = getaddrinfo(c->url.host, port, &hints, &res);
    if (g != 0) {
        snprintf(err, errlen, "cannot resolve %s: %s", c->url.host, gai_strerror(g));
        return -1;
    }
    struct timeval tv = { c->timeout_ms / 1000, (c->timeout_ms % 1000) * 1000 };
    int fd = -1, e = 0;
    for (struct addrinfo *ai = res; ai && fd < 0; ai = ai->ai_next) {
        fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
            continue;
        /* On Linux the send timeout also bounds connect(). */
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
        if (connect(fd, ai->ai_addr, ai->ai_addrlen) < 0) {
            e = errno;
            close(fd);
            fd = -1;
        }
    }
    freeaddrinfo(res);
    if (fd < 0)
        snprintf(err, errlen, "cannot connect to %s:%d: %s", c->url.host, c->url.port,
                 e == EINPROGRESS || e == EAGAIN ? "timed out" : strerror(e));
    return fd;
}

static void tls_error(const struct http_client *c, SSL *ssl, char *err, size_t errlen)
{
    char e[256];
    long v = SSL_get_verify_result(ssl);
    if (v != X509_V_OK)
        snprintf(err, errlen, "TLS with %s:%d failed: the server's certificate is not "
                 "trusted (%s); log in again with --ca-checksum or --insecure",
                 c->url.host, c->url.port, X509_verify_cert_error_string(v));
    else
        snprintf(err, errlen, "TLS with %s:%d failed: %s", c->url.host, c->url.port,
                 tls_last_error(e, sizeof(e)));
}

static int ssl_write_all(SSL *ssl, const char *p, size_t n)
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

/* ---- answer ---- */

struct sink {
    struct http_answer *a;
    size_t cap;
    int fd;                 /* >= 0: write there */
    bool failed;
    const char *why;
};

static void sink_put(void *ud, const uint8_t *p, size_t n)
{
    struct sink *s = ud;
    if (s->failed || n == 0)
        return;
    if (s->fd >= 0) {
        while (n > 0) {
            ssize_t w = write(s->fd, p, n);
            if (w < 0 && errno == EINTR)
                continue;
            if (w <= 0) {
                s->failed = true;
                s->why = "cannot write the download";
                return;
            }
            p += w;
            n -= (size_t)w;
        }
        return;
    }
    if (n > HTTP_BODY_MAX - s->a->len) {
        s->failed = true;
        s->why = "answer larger than 32 MiB";
        return;
    }
    if (s->a->len + n + 1 > s->cap) {
        size_t nc = s->cap ? s->cap : 16384;
        while (nc < s->a->len + n + 1)
            nc *= 2;
        char *nb = realloc(s->a->body, nc);
        if (!nb) {
            s->failed = true;
            s->why = "out of memory";
            return;
        }
        s->a->body = nb;
        s->cap = nc;
    }
    memcpy(s->a->body + s->a->len, p, n);
    s->a->len += n;
    s->a->body[s->a->len] = '\0';
}

static void copy_header(const struct http_header *h, size_t n, const char *name,
                        char *out, size_t cap)
{
    const struct http_header *f = http1_find(h, n, name);
    if (f)
        snprintf(out, cap, "%.*s", (int)(f->value_len < cap ? f->value_len : cap - 1),
                 f->value);
}

enum body_mode { BODY_NONE, BODY_LENGTH, BODY_CHUNKED, BODY_CLOSE };

/* Feeds body bytes to the sink per mode; returns 1 when the body is complete. */
static int feed(enum body_mode mode, uint64_t *left, struct http1_chunked *ch,
                struct sink *s, const char *p, size_t n)
{
    if (mode == BODY_LENGTH) {
        size_t take = n < *left ? n : (size_t)*left;
        sink_put(s, (const uint8_t *)p, take);
        *left -= take;
        return *left == 0;
    }
    if (mode == BODY_CHUNKED) {
        if (http1_chunked_feed(ch, (const uint8_t *)p, n, sink_put, s) < 0) {
            s->failed = true;
            s->why = "malformed chunked answer";
        }
        return ch->done;
    }
    sink_put(s, (const uint8_t *)p, n);
    return 0;
}

/* Reads until the head is complete: its length in *hl, the bytes read in
 * *len (the head and whatever body came with it). 0 or -1 with err. */
static int read_head(SSL *ssl, char *buf, size_t *len, struct http_response *res,
                     struct http_header *h, size_t nh, ssize_t *hl, char *err, size_t errlen)
{
    *hl = -2;
    *len = 0;
    while (*hl == -2) {
        if (*len == HEAD_MAX) {
            snprintf(err, errlen, "answer head too large");
            return -1;
        }
        int r = SSL_read(ssl, buf + *len, (int)(HEAD_MAX - *len));
        if (r <= 0) {
            snprintf(err, errlen, "the server closed the connection without an answer");
            return -1;
        }
        *len += (size_t)r;
        *res = (struct http_response){ .headers = h, .num_headers = nh };
        *hl = http1_parse_response(buf, *len, res);
    }
    if (*hl < 0) {
        snprintf(err, errlen, "malformed answer: %s", res->error ? res->error : "?");
        return -1;
    }
    return 0;
}

/* How the body is framed, per RFC 9112 section 6.3. -1 on a bad length. */
static int framing(const struct http_response *res, bool head_only, uint64_t *left,
                     enum body_mode *mode)
{
    const struct http_header *te = http1_find(res->headers, res->num_headers,
                                              "transfer-encoding");
    const struct http_header *cl = http1_find(res->headers, res->num_headers,
                                              "content-length");
    *left = 0;
    *mode = BODY_CLOSE;
    if (head_only || res->status == 204 || res->status == 304)
        *mode = BODY_NONE;
    else if (te && http1_has_token(te->value, te->value_len, "chunked"))
        *mode = BODY_CHUNKED;
    else if (cl) {
        if (http1_parse_content_length(cl->value, cl->value_len, left) < 0)
            return -1;
        *mode = BODY_LENGTH;
    }
    return 0;
}

static int read_answer(SSL *ssl, bool head_only, int out_fd, struct http_answer *a,
                       char *err, size_t errlen)
{
    char *buf = malloc(HEAD_MAX);
    size_t len;
    ssize_t hl;
    struct http_header h[64];
    struct http_response res;
    enum body_mode mode;
    uint64_t left;
    struct http1_chunked ch;
    int rc = -1;
    if (!buf) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    if (read_head(ssl, buf, &len, &res, h, 64, &hl, err, errlen) < 0)
        goto out;
    a->status = res.status;
    copy_header(h, res.num_headers, "content-type", a->ctype, sizeof(a->ctype));
    copy_header(h, res.num_headers, "location", a->location, sizeof(a->location));
    if (framing(&res, head_only, &left, &mode) < 0) {
        snprintf(err, errlen, "malformed Content-Length");
        goto out;
    }
    /* Only a success goes to the file; an error's body is its message. */
    struct sink s = { .a = a, .fd = res.status / 100 == 2 ? out_fd : -1 };
    http1_chunked_init(&ch);
    int done = mode == BODY_NONE || (mode == BODY_LENGTH && left == 0);
    if (!done && len > (size_t)hl)
        done = feed(mode, &left, &ch, &s, buf + hl, len - (size_t)hl);
    while (!done && !s.failed) {
        int r = SSL_read(ssl, buf, HEAD_MAX);
        if (r <= 0)
            break;
        done = feed(mode, &left, &ch, &s, buf, (size_t)r);
    }
    if (s.failed || (!done && mode != BODY_CLOSE)) {
        snprintf(err, errlen, "%s", s.failed ? s.why : "the answer was cut short");
        goto out;
    }
    if (!a->body && !(a->body = calloc(1, 1))) {
        snprintf(err, errlen, "out of memory");
        goto out;
    }
    rc = 0;
out:
    free(buf);
    return rc;
}

int http_request(struct http_client *c, const char *method, const char *path,
                 const char *token, const char *ctype, const char *body, size_t body_len,
                 int out_fd, struct http_answer *a, char *err, size_t errlen)
{
    char hostport[300], *head = NULL;
    SSL *ssl = NULL;
    int rc = -1;
    memset(a, 0, sizeof(*a));
    signal(SIGPIPE, SIG_IGN);
    url_hostport(&c->url, hostport, sizeof(hostport));
    int fd = dial(c, err, errlen);
    if (fd < 0)
        return -1;
    ssl = SSL_new(c->ctx);
    if (!ssl || SSL_set_fd(ssl, fd) != 1 ||
        tls_client_set_host(ssl, c->url.host, c->url.host_is_ip) < 0 ||
        SSL_connect(ssl) != 1) {
        tls_error(c, ssl, err, errlen);
        goto out;
    }
    int n = asprintf(&head, "%s %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: droverctl/%s\r\n"
                     "Connection: close\r\nAccept: application/json\r\n%s%s%s"
                     "%s%s%sContent-Length: %zu\r\n\r\n", method, path, hostport,
                     DROVER_VERSION, token ? "Authorization: Bearer " : "",
                     token ? token : "", token ? "\r\n" : "", ctype ? "Content-Type: " : "",
                     ctype ? ctype : "", ctype ? "\r\n" : "", body ? body_len : 0);
    if (n < 0) {
        head = NULL;
        snprintf(err, errlen, "out of memory");
        goto out;
    }
    if (ssl_write_all(ssl, head, (size_t)n) < 0 ||
        (body && ssl_write_all(ssl, body, body_len) < 0)) {
        /* A server refusing the body may have answered already. */
        if (read_answer(ssl, false, -1, a, err, errlen) == 0)
            rc = 0;
        else
            snprintf(err, errlen, "sending the request to %s failed", hostport);
        goto out;
    }
    rc = read_answer(ssl, strcmp(method, "HEAD") == 0, out_fd, a, err, errlen);
out:
    if (rc < 0)
        http_answer_free(a);
    free(head);
    if (ssl)
        SSL_free(ssl);
    close(fd);
    return rc;
}
