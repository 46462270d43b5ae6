/*
 * http1: pure HTTP/1.1 message-head parsing and body framing, shared by the
 * server's API and proxy, the agents and the test tools.
 *
 * Parsers never allocate and never touch a socket: they point into the
 * caller's buffer and return bytes used, -2 for "need more", -1 for
 * "invalid". Size limits are the caller's (it knows whether the peer has
 * authenticated yet); the parser enforces the header count it is given.
 */
#ifndef DROVER_HTTP1_H
#define DROVER_HTTP1_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct http_header {
    const char *name;
    size_t name_len;
    const char *value;      /* leading and trailing blanks stripped */
    size_t value_len;
};

struct http_request {
    const char *method;
    size_t method_len;
    const char *target;     /* request-target as sent, e.g. /v3/clusters?limit=5 */
    size_t target_len;
    int minor_version;      /* HTTP/1.<minor>: 0 or 1 */
    struct http_header *headers;   /* caller's array */
    size_t num_headers;     /* in: capacity of headers; out: count */
    const char *error;      /* set when -1 is returned */
};

struct http_response {
    int minor_version;
    int status;             /* 100..599 */
    const char *reason;
    size_t reason_len;
    struct http_header *headers;
    size_t num_headers;     /* in: capacity; out: count */
    const char *error;
};

/*
 * Parses a request head (request line, headers, blank line). Returns the head
 * length including the final CRLF CRLF, -2 if incomplete, -1 if invalid
 * (bad token characters, a bare CR, obs-fold, more headers than capacity,
 * an HTTP version other than 1.0/1.1). A lone LF line ending is accepted.
 */
ssize_t http1_parse_request(const char *buf, size_t len, struct http_request *req);

/* Same for a response head. */
ssize_t http1_parse_response(const char *buf, size_t len, struct http_response *res);

/* Case-insensitive lookup; NULL if absent. With several, the first. */
const struct http_header *http1_find(const struct http_header *h, size_t n,
                                     const char *name);
/* Number of headers with this name (to reject duplicated Content-Length). */
size_t http1_count(const struct http_header *h, size_t n, const char *name);

/* true if a comma-separated header value holds token (case-insensitive),
 * e.g. Connection: keep-alive, Upgrade. */
bool http1_has_token(const char *value, size_t len, const char *token);

/* Strict Content-Length: digits only, no sign, fits in 63 bits. 0 or -1. */
int http1_parse_content_length(const char *value, size_t len, uint64_t *out);

/*
 * Chunked transfer coding as a state machine fed any slices of the body.
 * on_data (may be NULL) receives the decoded payload pieces. Returns the bytes
 * consumed: less than len only when the body ended inside buf (st->done is
 * then set and the rest belongs to the next message), or -1 if the coding is
 * invalid (st->error says why). Chunk-size lines and trailers are limited to
 * 4 KiB each. Feeding after done returns 0.
 */
struct http1_chunked {
    int state;
    uint64_t remaining;     /* bytes left in the current chunk */
    size_t line_len;        /* bytes of the current size/trailer line */
    bool done;
    const char *error;
};
void http1_chunked_init(struct http1_chunked *st);
ssize_t http1_chunked_feed(struct http1_chunked *st, const uint8_t *buf, size_t len,
                           void (*on_data)(void *ud, const uint8_t *p, size_t n),
                           void *ud);

/*
 * Splits a request-target into path and query (without '?'), both pointing
 * into target. Only origin-form ("/..." ) is accepted: returns 0 or -1.
 */
int http1_split_target(const char *target, size_t len, const char **path,
                       size_t *path_len, const char **query, size_t *query_len);

/*
 * Percent-decodes src into dst (cap bytes, NUL-terminated). Rejects malformed
 * escapes, a decoded NUL, and (when is_path) a decoded '/'. Returns the
 * decoded length or -1.
 */
ssize_t http1_pct_decode(const char *src, size_t len, char *dst, size_t cap,
                         bool is_path);

/* Finds query parameter name in a query string and percent-decodes its value
 * into dst. Returns the length, -1 if absent, -2 if malformed or too long. */
ssize_t http1_query_param(const char *query, size_t len, const char *name,
                          char *dst, size_t cap);

/* "OK", "Not Found", ... for status codes drover sends; "Unknown" otherwise. */
const char *http1_reason(int status);

#endif
