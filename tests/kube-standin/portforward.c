/*
 * portforward: pod port-forwarding in the kube-standin test stand-in. Every
 * pod runs an echo "container" on every port: what the client sends on a
 * forwarded connection comes back on it.
 *
 * The protocol is kubelet's portforward.k8s.io over SPDY/3.1: each forwarded
 * connection is a pair of client-opened streams with the same requestID and
 * port, one of streamType "error" and one of "data". Data is echoed on the
 * data stream; when the client half-closes it we close our side of both,
 * which is the "connection finished, no error" kubectl waits for. It runs on
 * a websocket (subprotocol SPDY/3.1+portforward.k8s.io, kubectl 1.31+) or on
 * a plain "Upgrade: SPDY/3.1" connection (older kubectl and client-go).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "tests/kube-standin/spdy.h"
#include "tests/kube-standin/spdysess.h"
#include "tests/kube-standin/standin.h"
#include "tests/kube-standin/store.h"
#include "tests/kube-standin/upgrade.h"

#define PF_MAX_STREAMS 256

struct pf_stream {
    uint32_t id;
    bool data;                      /* else the error stream */
    char request_id[32];
    struct pf_stream *next;
};

struct pf_session {
    struct ks *ks;
    struct spdy_sess *s;
    struct pf_stream *streams;
    size_t nstreams;
    char pod[520];
    struct pf_session *prev, *next;
};

static void unlink_session(struct pf_session *p)
{
    if (p->prev)
        p->prev->next = p->next;
    else if (p->ks->pfs == p)
        p->ks->pfs = p->next;
    if (p->next)
        p->next->prev = p->prev;
}

static void session_free(struct pf_session *p)
{
    unlink_session(p);
    while (p->streams) {
        struct pf_stream *st = p->streams;
        p->streams = st->next;
        free(st);
    }
    free(p);
}

static struct pf_stream *find(struct pf_session *p, uint32_t id)
{
    for (struct pf_stream *st = p->streams; st; st = st->next)
        if (st->id == id)
            return st;
    return NULL;
}

static void drop(struct pf_session *p, struct pf_stream *st)
{
    for (struct pf_stream **pp = &p->streams; *pp; pp = &(*pp)->next)
        if (*pp == st) {
            *pp = st->next;
            free(st);
            p->nstreams--;
            return;
        }
}

static int on_stream(void *ud, uint32_t id, const struct spdy_hdr_list *h, bool fin)
{
    struct pf_session *p = ud;
    (void)fin;
    bool data = strcmp(h->stream_type, "data") == 0;
    if ((!data && strcmp(h->stream_type, "error") != 0) || !h->request_id[0] ||
        p->nstreams == PF_MAX_STREAMS) {
        log_warn("port-forward to %s: refusing a stream (type \"%s\")", p->pod, h->stream_type);
        return -1;
    }
    char *end;
    long port = strtol(h->port, &end, 10);
    if (*end || port < 1 || port > 65535) {
        log_warn("port-forward to %s: invalid port \"%s\"", p->pod, h->port);
        return -1;
    }
    struct pf_stream *st = calloc(1, sizeof(*st));
    if (!st)
        return -1;
    st->id = id;
    st->data = data;
    snprintf(st->request_id, sizeof(st->request_id), "%s", h->request_id);
    st->next = p->streams;
    p->streams = st;
    p->nstreams++;
    if (data)
        log_debug("port-forward to %s: connection %s to port %ld", p->pod, h->request_id, port);
    return 0;
}

static void on_data(void *ud, uint32_t id, const uint8_t *d, size_t n)
{
    struct pf_session *p = ud;
    struct pf_stream *st = find(p, id);
    if (!st || !st->data)
        return;     /* nothing is read from the error stream */
    if (spdy_sess_data(p->s, id, d, n, false) < 0)
        log_warn("port-forward to %s: output queue full", p->pod);
}

/* Ends one forwarded connection: our side of its data and error streams. */
static void finish_pair(struct pf_session *p, struct pf_stream *data)
{
    struct pf_stream *err = NULL;
    for (struct pf_stream *st = p->streams; st; st = st->next)
        if (!st->data && strcmp(st->request_id, data->request_id) == 0)
            err = st;
    spdy_sess_data(p->s, data->id, NULL, 0, true);
    if (err) {
        spdy_sess_data(p->s, err->id, NULL, 0, true);
        drop(p, err);
    }
    drop(p, data);
}

static void on_fin(void *ud, uint32_t id)
{
    struct pf_session *p = ud;
    struct pf_stream *st = find(p, id);
    if (st && st->data)
        finish_pair(p, st);     /* the echo container closes when its client does */
}

static void on_reset(void *ud, uint32_t id)
{
    struct pf_session *p = ud;
    struct pf_stream *st = find(p, id);
    if (!st)
        return;
    if (st->data) {
        /* The client gave up on the connection: end its error stream too. */
        for (struct pf_stream *e = p->streams; e; e = e->next)
            if (!e->data && strcmp(e->request_id, st->request_id) == 0) {
                spdy_sess_data(p->s, e->id, NULL, 0, true);
                drop(p, e);
                break;
            }
    }
    drop(p, st);
}

static void on_close(void *ud, const char *why)
{
    struct pf_session *p = ud;
    log_debug("port-forward to %s ended: %s", p->pod, why);
    session_free(p);
}

static const struct spdy_sess_ops pf_ops = {
    .on_stream = on_stream, .on_data = on_data, .on_fin = on_fin, .on_reset = on_reset,
    .on_close = on_close,
};

void h_portforward(struct kreq *k)
{
    static const char *const ws_protos[] = { "SPDY/3.1+portforward.k8s.io", NULL };
    static const char *const spdy_protos[] = { "portforward.k8s.io", NULL };
    const struct kattrs *a = &k->a;
    const json_t *pod = store_get(k->ks->store, a->res, a->ns, a->name);
    if (!pod) {
        ks_reply_not_found(k, a->res, a->name);
        return;
    }
    const char *phase = obj_str(pod, "status.phase");
    if (!phase || strcmp(phase, "Running") != 0) {
        ks_reply_status(k, 400, "BadRequest", NULL, "pod %s is not running", a->name);
        return;
    }
    enum upgrade_kind kind = upgrade_kind(k);
    const char *proto = kind == UP_WEBSOCKET ? upgrade_pick(k, ws_protos)
                        : kind == UP_SPDY    ? upgrade_pick(k, spdy_protos) : NULL;
    if (!proto) {
        ks_reply_status(k, 400, "BadRequest", NULL, "Upgrade request required: port-forward "
                        "takes a websocket (SPDY/3.1+portforward.k8s.io) or SPDY/3.1 with "
                        "X-Stream-Protocol-Version portforward.k8s.io");
        return;
    }
    struct pf_session *p = calloc(1, sizeof(*p));
    if (!p) {
        ks_reply_status(k, 500, "InternalError", NULL, "out of memory");
        return;
    }
    struct ks *ks = k->ks;
    p->ks = ks;
    snprintf(p->pod, sizeof(p->pod), "%s/%s", a->ns, a->name);
    if (kind == UP_WEBSOCKET) {
        struct ws *w = upgrade_websocket(k, proto, 1u << 20);   /* k is gone now */
        p->s = w ? spdy_sess_on_ws(w, &pf_ops, p) : NULL;
    } else {
        struct conn *c = upgrade_spdy(k, proto);
        p->s = c ? spdy_sess_on_conn(c, &pf_ops, p) : NULL;
    }
    if (!p->s) {
        free(p);
        return;
    }
    p->next = ks->pfs;
    if (ks->pfs)
        ks->pfs->prev = p;
    ks->pfs = p;
}

void pf_shutdown_all(struct ks *ks)
{
    while (ks->pfs) {
        struct pf_session *p = ks->pfs;
        spdy_sess_close(p->s);
        session_free(p);
    }
}
