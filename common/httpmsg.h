/*
 * httpmsg: where one HTTP/1.1 message ends, for relays that pass the bytes
 * through unchanged. From a parsed head it decides the body framing (none,
 * Content-Length, chunked, or until the connection closes) and then counts
 * body bytes as they go by. Pure: no I/O, no allocation.
 */
#ifndef DROVER_HTTPMSG_H
#define DROVER_HTTPMSG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "common/http1.h"

enum httpmsg_kind { HM_NONE, HM_LENGTH, HM_CHUNKED, HM_UNTIL_CLOSE };

struct httpmsg {
    enum httpmsg_kind kind;
    uint64_t left;              /* HM_LENGTH: body bytes still to come */
    struct http1_chunked ch;
    bool done;
};

/* Request framing (a request without Content-Length or chunked has no body).
 * 0, or -1 with *why for conflicting or malformed framing headers. */
int httpmsg_request(struct httpmsg *m, const struct http_request *req, const char **why);

/* Response framing; head_request: the request was HEAD (no body follows). */
int httpmsg_response(struct httpmsg *m, const struct http_response *res,
                     bool head_request, const char **why);

/* Counts body bytes. Returns how many of len belong to this message (fewer
 * than len only when the message ended inside p; m->done is then set), or
 * -1 if a chunked body is malformed. */
ssize_t httpmsg_feed(struct httpmsg *m, const uint8_t *p, size_t len);

/*
 * Follows an answer head that is being passed through in pieces: keeps a
 * side copy (up to HTTPMSG_MAX_HEAD) until it parses, then sets the framing.
 * Zero it to start; httpmsg_head_free() releases the copy.
 */
#define HTTPMSG_MAX_HEAD (64 * 1024)
struct httpmsg_head {
    char *buf;
    size_t len;
    bool done;
    int status;                 /* once done */
    bool keep_alive;            /* once done: the connection may be reused */
};

/*
 * Feeds n bytes that were passed on. Returns 1 when the head completed
 * inside p (*body_off: where the body starts in p; m: the answer's
 * framing), 0 when more is needed (*body_off = n), -1 if the head is
 * malformed or over the cap (or memory ran out).
 */
int httpmsg_head_feed(struct httpmsg_head *h, const uint8_t *p, size_t n,
                      bool head_request, struct httpmsg *m, size_t *body_off);
void httpmsg_head_free(struct httpmsg_head *h);

/*
 * Whether a proxy must not pass header h on to the next hop: the hop-by-hop
 * ones (Connection, Keep-Alive, TE, Trailer, Proxy-*), Host (each hop sets
 * its own) and the caller's credentials (Authorization, Cookie,
 * Impersonate-*), which belong to drover and never to a cluster. Both ends
 * of the kube proxy apply it, so neither relies on the other.
 */
bool httpmsg_proxy_drops(const struct http_header *h);

/* Whether the connection may carry another message after this one. */
bool httpmsg_keep_alive(int minor_version, const struct http_header *h, size_t n);

#endif
