/*
 * http: droverctl's blocking HTTPS client. One request per connection
 * (Connection: close); the answer's body is decoded (Content-Length,
 * chunked, or until close) into memory under a cap, or into a file
 * descriptor for downloads.
 *
 * Trust is chosen once per client: a pinned CA PEM (what login stored),
 * the system's trust store, or none (--insecure). The peer's name is
 * checked against the URL's host whenever a CA is trusted.
 */
#ifndef DROVER_CLI_HTTP_H
#define DROVER_CLI_HTTP_H

#include <openssl/ssl.h>
#include <stdbool.h>
#include <stddef.h>

#include "common/url.h"

#define HTTP_BODY_MAX (32 * 1024 * 1024)

struct http_client {
    struct url url;
    SSL_CTX *ctx;
    int timeout_ms;
};

struct http_answer {
    int status;
    char ctype[128];        /* Content-Type, "" if none */
    char location[512];     /* Location, "" if none */
    char *body;             /* NUL-terminated (caller frees with http_answer_free) */
    size_t len;
};

/* Sets up c for server (an https URL). ca_pem NULL and insecure false means
 * the system trust store. 0 or -1 with err. */
int http_client_init(struct http_client *c, const char *server, const char *ca_pem,
                     bool insecure, char *err, size_t errlen);
void http_client_free(struct http_client *c);

/*
 * Sends one request. token, ctype and body may be NULL. If out_fd >= 0 a
 * 2xx body is written there instead of memory (other bodies still go to
 * memory, to show the server's message). Returns 0 with the answer in a
 * (even for 4xx/5xx), or -1 with err if no complete answer came.
 */
int http_request(struct http_client *c, const char *method, const char *path,
                 const char *token, const char *ctype, const char *body, size_t body_len,
                 int out_fd, struct http_answer *a, char *err, size_t errlen);
void http_answer_free(struct http_answer *a);

#endif
