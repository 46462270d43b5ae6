/*
 * kubeclient: the agent's own calls to its kube-apiserver, on the loop.
 *
 * JSON requests (GET/POST/PUT/DELETE with an optional body) and one kind of
 * streaming call, a list-then-watch of one resource collection. It uses the
 * same settings and credentials as the "kube-api" service (kubeapi.h: the
 * service-account token, re-read as it rotates, and the cluster CA) but
 * acts as the service account itself: no impersonation.
 *
 * Each request has its own TLS connection (these calls are few: a report
 * every 30 s, a reconciliation now and then), so nothing is shared between
 * requests and a slow one never delays another. Every buffer is capped: an
 * answer head at 64 KiB, a body or one watch event at KUBECLIENT_MAX_BODY.
 *
 * Ownership: the client owns its requests and watches. kubeclient_free()
 * completes every pending request with status 0 and the error "client
 * closed" (so owners waiting on one can free themselves) and stops watches
 * silently.
 */
#ifndef DROVER_KUBECLIENT_H
#define DROVER_KUBECLIENT_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "common/httpmsg.h"
#include "common/kubeapi.h"
#include "common/loop.h"

#define KUBECLIENT_MAX_BODY (16u * 1024 * 1024)
#define KUBECLIENT_TIMEOUT_MS 30000

struct kubeclient;
struct kc_req;
struct kc_watch;

/*
 * A request's end. status: the HTTP status, or 0 when no answer came (err
 * says why). body: the answer parsed as JSON, NULL if it was not JSON
 * (borrowed: valid during the call). err: NULL for a 2xx answer; otherwise
 * the Status message of a JSON error answer, the text of a non-JSON one
 * (at most 1 KiB), or the transport failure.
 */
typedef void (*kc_done_cb)(void *ud, int status, json_t *body, const char *err);

/* NULL with err if the settings are unusable (bad URL, unreadable CA). */
struct kubeclient *kubeclient_new(struct loop *l, const struct kubeapi_cfg *cfg,
                                  char *err, size_t errlen);
void kubeclient_free(struct kubeclient *kc);

/*
 * Starts method path (an absolute path with its query) with body (may be
 * NULL; not kept). done runs exactly once, from the loop, never from inside
 * this call. Returns NULL (and done never runs) if the request cannot start:
 * no token, out of memory, no socket.
 */
struct kc_req *kubeclient_request(struct kubeclient *kc, const char *method, const char *path,
                                  const json_t *body, kc_done_cb done, void *ud);
/*
 * As kubeclient_request, with more said about the request: the body's
 * media type (NULL: application/json; server-side apply sends
 * application/apply-patch+yaml) and extra header lines ("Name: value\r\n"
 * each, NULL for none; the caller vouches they hold no stray CR or LF), for
 * the Impersonate-* headers of calls made on a user's behalf.
 */
struct kc_extra {
    const char *content_type;
    const char *headers;
};
struct kc_req *kubeclient_request_ex(struct kubeclient *kc, const char *method,
                                     const char *path, const json_t *body,
                                     const struct kc_extra *x, kc_done_cb done, void *ud);
/* Abandons a pending request: its done never runs. */
void kubeclient_cancel(struct kc_req *r);

/*
 * Lists path (a collection, no query) and then watches it from the list's
 * resourceVersion, reconnecting from the last resourceVersion seen when the
 * watch ends, and listing again when the apiserver says that version is
 * gone (410). on_event gets "SYNC" with the whole list after every list,
 * then "ADDED"/"MODIFIED"/"DELETED" with the object (borrowed); on_event
 * must not stop the watch (arm a timer instead). Failures
 * are retried with backoff and logged at debug: the owner notices through
 * its own calls.
 */
typedef void (*kc_event_cb)(void *ud, const char *type, json_t *object);
struct kc_watch *kubeclient_watch(struct kubeclient *kc, const char *path,
                                  kc_event_cb on_event, void *ud);
void kubeclient_watch_stop(struct kc_watch *w);

/* ---- the answer decoder (pure; exported for the tests) ---- */

/*
 * Follows one HTTP/1.1 answer fed in any slices: collects the head (capped
 * at HTTPMSG_MAX_HEAD), then hands the decoded body (Content-Length, chunked
 * or until close) to on_body. Zero it, then set on_body and ud.
 */
struct kc_decoder {
    void (*on_body)(void *ud, const uint8_t *p, size_t n);
    void *ud;
    char *head;
    size_t head_len;
    bool head_done, done;
    int status;
    struct httpmsg m;
};

/* 1 when the answer is complete (bytes past it are ignored), 0 when more is
 * needed, -1 if it is malformed (*why set). */
int kc_decoder_feed(struct kc_decoder *d, const uint8_t *p, size_t n, const char **why);
/* The connection ended: 1 if that completes the answer (a body framed by
 * the close), -1 if the answer was cut short. */
int kc_decoder_eof(struct kc_decoder *d);
void kc_decoder_free(struct kc_decoder *d);

/* Splits a byte stream into lines (newline-delimited JSON), each at most
 * cap bytes. Zero it and set cap. */
struct kc_lines {
    char *buf;
    size_t len, alloc, cap;
};
/* Calls on_line for each complete line (without its line ending; empty
 * lines skipped); on_line returns non-zero to stop. 0, 1 if on_line stopped
 * it (the rest is dropped), -1 if a line passes cap or memory runs out. */
int kc_lines_feed(struct kc_lines *l, const uint8_t *p, size_t n,
                  int (*on_line)(void *ud, const char *line, size_t len), void *ud);
void kc_lines_free(struct kc_lines *l);

#endif
