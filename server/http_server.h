/*
 * http_server: drover-server's HTTPS front end (HTTP/1.1 over TLS).
 *
 * Owns the client connections until a handler takes one over (websocket
 * tunnels, proxied upgrades). Reads one request head at a time under a size
 * and time limit (these apply before anyone is authenticated, so they are
 * tight), hands it to the dispatch function, and keeps the connection alive
 * for the next request once the handler has answered. Handlers may answer
 * later (after a datastore call): the request stays valid until answered,
 * even if the client has gone meanwhile.
 */
#ifndef DROVER_HTTP_SERVER_H
#define DROVER_HTTP_SERVER_H

#include <openssl/ssl.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/conn.h"
#include "common/http1.h"
#include "common/loop.h"
#include "common/netaddr.h"

#define HS_MAX_HEADERS 64

struct hs;
struct hs_req;

struct hs_cfg {
    size_t max_head;            /* default 16 KiB */
    uint64_t head_timeout_ms;   /* TLS handshake + whole head; default 10 s */
    uint64_t idle_timeout_ms;   /* keep-alive wait for the next request; 60 s */
    uint64_t body_timeout_ms;   /* no body progress for this long; 30 s */
    /* Connections one client address may hold here (before a tunnel or the
     * proxy takes them over), and connections of the whole process; over
     * either, a new connection is closed at accept. 0 = no limit. */
    unsigned max_conns_per_ip;
    size_t max_conns;
    /* Called when a request is answered, for metrics and audit. May be NULL. */
    void (*on_answered)(const struct hs_req *r, int status, uint64_t usec, void *ud);
};

typedef void (*hs_dispatch_fn)(struct hs_req *r, void *ud);

struct hs *hs_new(struct loop *l, SSL_CTX *ctx, const struct hs_cfg *cfg,
                  hs_dispatch_fn dispatch, void *ud);
/* Listens on a. 0, or -1 with *err. */
int hs_listen(struct hs *s, const struct netaddr *a, const char **err);
int hs_port(const struct hs *s);
/* Stops listening and closes every connection it still owns. */
void hs_free(struct hs *s);
unsigned long hs_connection_count(const struct hs *s);

/* Connections refused at accept since start, by limit (process-wide). */
enum hs_refusal { HS_REFUSED_PER_IP, HS_REFUSED_TOTAL };
unsigned long long hs_refused(enum hs_refusal why);

/* ---- the request ---- */
const struct http_request *hs_request(const struct hs_req *r);
/* The path (not decoded) and query (without '?', may be empty). */
const char *hs_path(const struct hs_req *r, size_t *len);
const char *hs_query(const struct hs_req *r, size_t *len);
bool hs_method_is(const struct hs_req *r, const char *m);
const struct http_header *hs_header(const struct hs_req *r, const char *name);
const char *hs_peer(const struct hs_req *r);
/* Microseconds since the request head was complete (for the audit log). */
uint64_t hs_elapsed_us(const struct hs_req *r);
/* Whether the client is still connected (an async handler may check). */
bool hs_client_alive(const struct hs_req *r);

/*
 * Reads the whole body (Content-Length or chunked) up to max bytes, then
 * calls done. Over max: answers 413 itself and done is not called. A body
 * that stalls past body_timeout: 408, likewise.
 */
void hs_read_body(struct hs_req *r, size_t max,
                  void (*done)(struct hs_req *r, void *ud), void *ud);
const uint8_t *hs_body(const struct hs_req *r, size_t *len);

/* Answers (exactly once per request); r is freed. extra_headers holds whole
 * "Name: value\r\n" lines or NULL. */
void hs_respond(struct hs_req *r, int status, const char *content_type,
                const void *body, size_t len, const char *extra_headers);
/* {"error":{"status":...,"code":...,"message":...}} */
void hs_error(struct hs_req *r, int status, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/*
 * Detaches the connection (reading paused; bytes after the head stay queued
 * in it and are delivered to the new owner once it resumes reading). r is
 * freed. NULL if the client is gone.
 */
struct conn *hs_takeover(struct hs_req *r);

/*
 * Hands a connection taken over with hs_takeover() back to the server, which
 * serves the next request on it (keep-alive after a proxied exchange). Takes
 * ownership of c; it is closed on failure.
 */
void hs_adopt(struct hs *s, struct conn *c);

#endif
