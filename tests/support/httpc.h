/*
 * httpc: a small blocking HTTPS client for integration tests of the /v3
 * API: one request per connection to 127.0.0.1:port (the certificate is not
 * verified: the server is ours, on loopback), the whole answer read into
 * memory. Safe to use from several threads at once.
 */
#ifndef DROVER_TEST_HTTPC_H
#define DROVER_TEST_HTTPC_H

#include <jansson.h>
#include <stddef.h>

struct httpc_resp {
    int status;             /* 0 if no answer arrived */
    char head[4096];        /* status line and headers */
    char *body;             /* NUL-terminated; caller frees with httpc_free */
    size_t len;
};

/*
 * Sends method path with an optional bearer token and body (application/json
 * when given; body_len 0 means strlen). Waits at most timeout_ms (0: 30 s).
 * Returns the status, or -1 if the connection failed or no answer came.
 */
int httpc_do(int port, const char *method, const char *path, const char *token,
             const char *body, size_t body_len, int timeout_ms, struct httpc_resp *out);
/* The same with the body's Content-Type (NULL: none). */
int httpc_do_type(int port, const char *method, const char *path, const char *token,
                  const char *ctype, const char *body, size_t body_len, int timeout_ms,
                  struct httpc_resp *out);
void httpc_free(struct httpc_resp *r);

/* The body as JSON (caller decrefs), or NULL. */
json_t *httpc_json(const struct httpc_resp *r);
/* The value of header name (case-insensitive) into out; 0 or -1. */
int httpc_header(const struct httpc_resp *r, const char *name, char *out, size_t cap);

#endif
