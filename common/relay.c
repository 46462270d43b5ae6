/*
 * relay: conn <-> tunnel stream pumping. See relay.h.
 *
 * Direction conn -> stream: on_read hands bytes to tun_stream_send; what the
 * window does not take stays held by the conn, which pauses reading until
 * the stream calls on_writable. Direction stream -> conn: data is queued on
 * the conn and credited back at once while the conn's queue is short, or on
 * on_drain once it has flushed.
 */
#include "common/relay.h"

#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "proto/frame.h"

struct relay {
    struct conn *c;
    struct tun_stream *s;
    size_t credit_held;     /* stream bytes queued on c, not yet credited */
    bool dialing;           /* agent side: connect not finished yet */
    uint64_t up, down;      /* bytes conn->stream, stream->conn */
};

static unsigned long live_relays;
static uint64_t bytes_to_stream, bytes_from_stream;

unsigned long relay_count(void) { return live_relays; }
uint64_t relay_bytes_to_stream(void) { return bytes_to_stream; }
uint64_t relay_bytes_from_stream(void) { return bytes_from_stream; }

static void maybe_free(struct relay *r)
{
    if (!r->c && !r->s) {
        live_relays--;
        free(r);
    }
}

/* ---- stream side ---- */

static void s_on_data(struct tun_stream *s, const uint8_t *p, size_t n)
{
    struct relay *r = tun_stream_ud(s);
    if (!r->c)
        return;
    bytes_from_stream += n;
    r->down += n;
    if (conn_write(r->c, p, n) < 0) {
        conn_close(r->c);
        r->c = NULL;
        tun_stream_reset(s, TUN_RESET_CANCEL, "connection write failed");
        r->s = NULL;
        maybe_free(r);
        return;
    }
    if (conn_out_pending(r->c) < RELAY_HIGH_WATER)
        tun_stream_consumed(s, n);
    else
        r->credit_held += n;
}

static void s_on_eof(struct tun_stream *s)
{
    struct relay *r = tun_stream_ud(s);
    if (r->c)
        conn_shutdown_write(r->c);
}

static void s_on_writable(struct tun_stream *s)
{
    struct relay *r = tun_stream_ud(s);
    if (r->c)
        conn_resume_read(r->c);
}

static void s_on_end(struct tun_stream *s, uint16_t code, const char *reason)
{
    struct relay *r = tun_stream_ud(s);
    (void)s;
    r->s = NULL;
    log_debug("relay end: code %u up %llu down %llu", code, (unsigned long long)r->up,
              (unsigned long long)r->down);
    if (r->c) {
        if (code == 0) {
            conn_close_after_flush(r->c, 5000);
        } else {
            log_debug("relay %s: stream ended: %s (%s)", conn_peer(r->c),
                      tun_reset_code_name(code), reason ? reason : "");
            conn_close(r->c);
        }
        r->c = NULL;
    }
    maybe_free(r);
}

static const struct tun_stream_ops relay_stream_ops = {
    .on_data = s_on_data,
    .on_eof = s_on_eof,
    .on_writable = s_on_writable,
    .on_end = s_on_end,
};

/* ---- conn side ---- */

static size_t c_on_read(struct conn *c, uint8_t *data, size_t len)
{
    struct relay *r = conn_ud(c);
    if (!r->s)
        return len;
    ssize_t n = tun_stream_send(r->s, data, len);
    if (n < 0) {
        tun_stream_reset(r->s, TUN_RESET_CANCEL, "stream cannot send");
        r->s = NULL;
        conn_close(c);
        r->c = NULL;
        maybe_free(r);
        return len;
    }
    bytes_to_stream += (size_t)n;
    r->up += (size_t)n;
    return (size_t)n;
}

static void c_on_eof(struct conn *c)
{
    struct relay *r = conn_ud(c);
    log_debug("relay conn eof: up %llu down %llu", (unsigned long long)r->up,
              (unsigned long long)r->down);
    if (r->s && tun_stream_close(r->s) == 1) {
        /* Both directions are done. */
        r->s = NULL;
        conn_close_after_flush(c, 5000);
        r->c = NULL;
        maybe_free(r);
    }
}

static void c_on_drain(struct conn *c)
{
    struct relay *r = conn_ud(c);
    if (r->s && r->credit_held) {
        size_t n = r->credit_held;
        r->credit_held = 0;
        tun_stream_consumed(r->s, n);
    }
}

static void c_on_close(struct conn *c, const char *why)
{
    struct relay *r = conn_ud(c);
    (void)c;
    r->c = NULL;
    if (r->s) {
        tun_stream_reset(r->s, r->dialing ? TUN_RESET_UNREACHABLE : TUN_RESET_CANCEL, why);
        r->s = NULL;
    }
    maybe_free(r);
}

static void c_on_open(struct conn *c)
{
    struct relay *r = conn_ud(c);
    r->dialing = false;
    if (r->s && tun_stream_accept(r->s, &relay_stream_ops, r) < 0) {
        r->s = NULL;
        conn_close(c);
        r->c = NULL;
        maybe_free(r);
    }
}

static const struct conn_ops relay_conn_ops = {
    .on_read = c_on_read,
    .on_eof = c_on_eof,
    .on_drain = c_on_drain,
    .on_close = c_on_close,
};

static const struct conn_ops relay_dial_ops = {
    .on_open = c_on_open,
    .on_read = c_on_read,
    .on_eof = c_on_eof,
    .on_drain = c_on_drain,
    .on_close = c_on_close,
};

static struct relay *relay_new(void)
{
    struct relay *r = calloc(1, sizeof(*r));
    if (r)
        live_relays++;
    return r;
}

struct relay *relay_open(struct conn *c, struct tunnel *t, const char *service,
                         const void *meta, size_t meta_len)
{
    struct relay *r = relay_new();
    if (!r) {
        conn_close(c);
        return NULL;
    }
    r->c = c;
    r->s = tun_stream_open(t, service, meta, meta_len, &relay_stream_ops, r);
    if (!r->s) {
        conn_close(c);
        live_relays--;
        free(r);
        return NULL;
    }
    conn_set_ops(c, &relay_conn_ops);
    conn_set_ud(c, r);
    conn_set_high_water(c, RELAY_HIGH_WATER);
    return r;
}

struct relay *relay_dial(struct loop *l, struct tun_stream *s,
                         const struct sockaddr *addr, socklen_t addrlen)
{
    struct relay *r = relay_new();
    if (!r) {
        tun_stream_reset(s, TUN_RESET_INTERNAL, "out of memory");
        return NULL;
    }
    r->s = s;
    r->dialing = true;
    tun_stream_set_ops(s, &relay_stream_ops, r);
    r->c = conn_connect(l, addr, addrlen, NULL, NULL, false, &relay_dial_ops, r);
    if (!r->c) {
        tun_stream_reset(s, TUN_RESET_UNREACHABLE, "cannot create a socket");
        live_relays--;
        free(r);
        return NULL;
    }
    conn_set_high_water(r->c, RELAY_HIGH_WATER);
    return r;
}
