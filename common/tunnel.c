/*
 * tunnel: stream multiplexing, flow control and keepalive. See tunnel.h.
 *
 * Flow control is counted in cumulative bytes per direction: a stream may
 * send while send_total < send_limit, and accepts DATA while
 * recv_total <= recv_limit. Limits only grow (OPEN_OK sets the starting
 * grant, WINDOW adds to it), which makes the checks one comparison each and
 * immune to reordering between credits and data.
 */
#include "common/tunnel.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "proto/frame.h"
#include "proto/ws.h"

/* Streams stop producing when this much is queued on the websocket; they
 * are woken when it drains to half. */
#define TUNNEL_HIGH_WATER (512u * 1024)

enum stream_state { S_OPENING, S_PENDING, S_OPEN };

struct tun_stream {
    struct tunnel *t;
    uint32_t id;
    enum stream_state state;
    bool local_closed, remote_closed, ended, waiting, peer_opened;
    const struct tun_stream_ops *ops;
    void *ud;
    uint64_t send_total, send_limit;
    uint64_t recv_total, recv_limit;
    uint32_t credit_pending;
    uint8_t *early;             /* data that came before the owner accepted */
    size_t early_len;
    struct tun_stream *hnext;   /* id hash chain */
    struct tun_stream *wnext;   /* wait list for on_writable */
};

struct tunnel {
    struct loop *loop;
    struct ws *ws;
    bool server_side, dead;
    struct tunnel_cfg cfg;
    const struct tunnel_ops *ops;
    void *ud;
    struct loop_timer keepalive;

    struct tun_stream **buckets;
    uint32_t nbuckets, nstreams, npeer_streams;
    uint32_t next_local_id, last_peer_id;

    struct tun_stream *wait_head, *wait_tail;
};

static void tunnel_die(struct tunnel *t, uint16_t ws_code, const char *why,
                       bool notify);

/* ---- the id table ---- */

static uint32_t bucket_of(const struct tunnel *t, uint32_t id)
{
    return (id * 2654435761u) & (t->nbuckets - 1);
}

static struct tun_stream *find_stream(const struct tunnel *t, uint32_t id)
{
    if (t->nbuckets == 0)
        return NULL;
    for (struct tun_stream *s = t->buckets[bucket_of(t, id)]; s; s = s->hnext)
        if (s->id == id)
            return s;
    return NULL;
}

static int grow_table(struct tunnel *t)
{
    uint32_t n = t->nbuckets ? t->nbuckets * 2 : 16;
    struct tun_stream **b = calloc(n, sizeof(*b));
    if (!b)
        return -1;
    struct tun_stream **old = t->buckets;
    uint32_t oldn = t->nbuckets;
    t->buckets = b;
    t->nbuckets = n;
    for (uint32_t i = 0; i < oldn; i++) {
        struct tun_stream *s = old[i];
        while (s) {
            struct tun_stream *next = s->hnext;
            uint32_t k = bucket_of(t, s->id);
            s->hnext = b[k];
            b[k] = s;
            s = next;
        }
    }
    free(old);
    return 0;
}

static int insert_stream(struct tunnel *t, struct tun_stream *s)
{
    if (t->nstreams >= t->nbuckets && grow_table(t) < 0)
        return -1;
    uint32_t k = bucket_of(t, s->id);
    s->hnext = t->buckets[k];
    t->buckets[k] = s;
    t->nstreams++;
    if (s->peer_opened)
        t->npeer_streams++;
    return 0;
}

static void remove_stream(struct tunnel *t, struct tun_stream *s)
{
    struct tun_stream **pp = &t->buckets[bucket_of(t, s->id)];
    while (*pp && *pp != s)
        pp = &(*pp)->hnext;
    if (*pp) {
        *pp = s->hnext;
        t->nstreams--;
        if (s->peer_opened)
            t->npeer_streams--;
    }
    if (t->nstreams == 0) {
        /* Idle tunnels keep no table: thousands of them add up. */
        free(t->buckets);
        t->buckets = NULL;
        t->nbuckets = 0;
    }
}

/* ---- the wait list ---- */

static void wait_add(struct tunnel *t, struct tun_stream *s)
{
    if (s->waiting)
        return;
    s->waiting = true;
    s->wnext = NULL;
    if (t->wait_tail)
        t->wait_tail->wnext = s;
    else
        t->wait_head = s;
    t->wait_tail = s;
}

static void wait_remove(struct tunnel *t, struct tun_stream *s)
{
    if (!s->waiting)
        return;
    struct tun_stream *prev = NULL;
    for (struct tun_stream *w = t->wait_head; w; prev = w, w = w->wnext) {
        if (w != s)
            continue;
        if (prev)
            prev->wnext = s->wnext;
        else
            t->wait_head = s->wnext;
        if (t->wait_tail == s)
            t->wait_tail = prev;
        break;
    }
    s->waiting = false;
}

/* ---- sending frames ---- */

static int send_frame(struct tunnel *t, const struct tun_frame *f)
{
    uint8_t buf[TUN_HDR_LEN + 7 + TUN_MAX_SERVICE + TUN_MAX_META];
    if (t->dead)
        return -1;
    ssize_t n = tun_frame_encode(buf, sizeof(buf), f);
    if (n < 0)
        return -1;
    return ws_send(t->ws, WS_OP_BINARY, buf, (size_t)n, NULL, 0);
}

static void send_reset(struct tunnel *t, uint32_t id, uint16_t code, const char *reason)
{
    struct tun_frame f = { .type = TUN_RESET, .stream = id, .code = code };
    if (reason) {
        f.data = (const uint8_t *)reason;
        f.data_len = strlen(reason);
        if (f.data_len > TUN_MAX_REASON)
            f.data_len = TUN_MAX_REASON;
    }
    send_frame(t, &f);
}

/* ---- stream lifetime ---- */

static void free_stream(void *arg)
{
    struct tun_stream *s = arg;
    free(s->early);
    free(s);
}

/* Removes s from the tunnel; memory goes after the batch so callers up the
 * stack may still look at s->ended. */
static void finish_stream(struct tun_stream *s)
{
    if (s->ended)
        return;
    s->ended = true;
    wait_remove(s->t, s);
    remove_stream(s->t, s);
    if (loop_defer(s->t->loop, free_stream, s) < 0)
        abort();
}

static void end_stream(struct tun_stream *s, uint16_t code, const char *reason)
{
    if (s->ended)
        return;
    finish_stream(s);
    if (s->ops && s->ops->on_end)
        s->ops->on_end(s, code, reason);
}

/* The peer broke the protocol on s: tell it, and tell s's owner (who still
 * holds the pointer, unlike after its own tun_stream_reset). */
static void violation(struct tun_stream *s, uint16_t code, const char *why)
{
    send_reset(s->t, s->id, code, why);
    end_stream(s, code, why);
}

static struct tun_stream *new_stream(struct tunnel *t, uint32_t id, bool peer_opened)
{
    struct tun_stream *s = calloc(1, sizeof(*s));
    if (!s)
        return NULL;
    s->t = t;
    s->id = id;
    s->peer_opened = peer_opened;
    if (insert_stream(t, s) < 0) {
        free(s);
        return NULL;
    }
    return s;
}

struct tun_stream *tun_stream_open(struct tunnel *t, const char *service,
                                   const void *meta, size_t meta_len,
                                   const struct tun_stream_ops *ops, void *ud)
{
    if (t->dead || t->next_local_id > UINT32_MAX - 2)
        return NULL;
    struct tun_stream *s = new_stream(t, t->next_local_id, false);
    if (!s)
        return NULL;
    t->next_local_id += 2;
    s->ops = ops;
    s->ud = ud;
    s->state = S_OPENING;
    s->send_limit = TUN_EARLY_WINDOW;
    s->recv_limit = t->cfg.window;
    struct tun_frame f = {
        .type = TUN_OPEN, .stream = s->id, .window = t->cfg.window,
        .service = service, .service_len = strlen(service),
        .meta = meta, .meta_len = meta_len,
    };
    if (send_frame(t, &f) < 0) {
        remove_stream(t, s);
        free(s);
        return NULL;
    }
    return s;
}

static void deliver_data(struct tun_stream *s, const uint8_t *p, size_t n)
{
    if (n && s->ops->on_data)
        s->ops->on_data(s, p, n);
}

void tun_stream_set_ops(struct tun_stream *s, const struct tun_stream_ops *ops, void *ud)
{
    s->ops = ops;
    s->ud = ud;
}

int tun_stream_accept(struct tun_stream *s, const struct tun_stream_ops *ops, void *ud)
{
    struct tunnel *t = s->t;
    if (s->ended || s->state != S_PENDING)
        return -1;
    s->ops = ops;
    s->ud = ud;
    s->state = S_OPEN;
    s->recv_limit = t->cfg.window;
    struct tun_frame f = { .type = TUN_OPEN_OK, .stream = s->id, .window = t->cfg.window };
    if (send_frame(t, &f) < 0)
        return -1;
    uint8_t *early = s->early;
    size_t elen = s->early_len;
    s->early = NULL;
    s->early_len = 0;
    deliver_data(s, early, elen);
    free(early);
    if (!s->ended && s->remote_closed && s->ops->on_eof)
        s->ops->on_eof(s);
    return 0;
}

ssize_t tun_stream_send(struct tun_stream *s, const void *p, size_t n)
{
    struct tunnel *t = s->t;
    if (s->ended || s->local_closed || t->dead || s->state == S_PENDING)
        return -1;
    const uint8_t *src = p;
    size_t done = 0;
    while (done < n) {
        uint64_t avail = s->send_limit - s->send_total;
        if (avail == 0 || ws_out_pending(t->ws) >= TUNNEL_HIGH_WATER) {
            wait_add(t, s);
            break;
        }
        size_t chunk = n - done;
        if (chunk > TUN_MAX_DATA)
            chunk = TUN_MAX_DATA;
        if (chunk > avail)
            chunk = (size_t)avail;
        uint8_t hdr[TUN_HDR_LEN];
        tun_frame_put_header(hdr, TUN_DATA, s->id, (uint32_t)chunk);
        if (ws_send(t->ws, WS_OP_BINARY, hdr, sizeof(hdr), src + done, chunk) < 0)
            return done ? (ssize_t)done : -1;
        s->send_total += chunk;
        done += chunk;
    }
    return (ssize_t)done;
}

void tun_stream_consumed(struct tun_stream *s, size_t n)
{
    struct tunnel *t = s->t;
    if (s->ended || t->dead || s->remote_closed)
        return;
    s->credit_pending += (uint32_t)n;
    uint32_t threshold = t->cfg.window / 4;
    uint64_t left = s->recv_limit - s->recv_total;
    /* Batch credits, but never leave the peer stuck near an empty window. */
    if (s->credit_pending < threshold && left >= threshold)
        return;
    struct tun_frame f = { .type = TUN_WINDOW, .stream = s->id,
                           .window = s->credit_pending };
    s->recv_limit += s->credit_pending;
    s->credit_pending = 0;
    send_frame(t, &f);
}

int tun_stream_close(struct tun_stream *s)
{
    if (s->ended)
        return 1;
    if (s->local_closed)
        return 0;
    s->local_closed = true;
    struct tun_frame f = { .type = TUN_CLOSE, .stream = s->id };
    send_frame(s->t, &f);
    wait_remove(s->t, s);
    if (s->remote_closed) {
        finish_stream(s);
        return 1;
    }
    return 0;
}

void tun_stream_reset(struct tun_stream *s, uint16_t code, const char *reason)
{
    if (s->ended)
        return;
    send_reset(s->t, s->id, code, reason);
    finish_stream(s);
}

void *tun_stream_ud(const struct tun_stream *s) { return s->ud; }
uint32_t tun_stream_id(const struct tun_stream *s) { return s->id; }
struct tunnel *tun_stream_tunnel(const struct tun_stream *s) { return s->t; }

/* ---- receiving frames ---- */

static void on_peer_open(struct tunnel *t, const struct tun_frame *f)
{
    bool peer_parity_odd = !t->server_side;   /* the server opens odd ids */
    if ((f->stream & 1u) != (peer_parity_odd ? 1u : 0u) || f->stream <= t->last_peer_id) {
        tunnel_die(t, WS_CLOSE_PROTOCOL, "peer opened a stream with an invalid id", true);
        return;
    }
    t->last_peer_id = f->stream;
    if (t->npeer_streams >= t->cfg.max_streams) {
        send_reset(t, f->stream, TUN_RESET_LIMIT, "too many streams on this tunnel");
        return;
    }
    struct tun_stream *s = new_stream(t, f->stream, true);
    if (!s) {
        send_reset(t, f->stream, TUN_RESET_INTERNAL, "out of memory");
        return;
    }
    s->state = S_PENDING;
    s->send_limit = f->window;
    s->recv_limit = TUN_EARLY_WINDOW;
    char service[TUN_MAX_SERVICE + 1];
    memcpy(service, f->service, f->service_len);
    service[f->service_len] = '\0';
    t->ops->on_open(t, s, service, f->meta, f->meta_len);
}

static void wake(struct tun_stream *s)
{
    if (!s->waiting || s->ended)
        return;
    if (ws_out_pending(s->t->ws) >= TUNNEL_HIGH_WATER)
        return;
    wait_remove(s->t, s);
    if (s->ops && s->ops->on_writable)
        s->ops->on_writable(s);
}

static void on_open_ok(struct tun_stream *s, const struct tun_frame *f)
{
    if (s->state != S_OPENING || f->window < s->send_total) {
        violation(s, TUN_RESET_PROTOCOL, "unexpected open-ok");
        return;
    }
    s->state = S_OPEN;
    s->send_limit = f->window;
    if (s->ops->on_opened)
        s->ops->on_opened(s);
    if (!s->ended)
        wake(s);
}

static void on_data(struct tun_stream *s, const struct tun_frame *f)
{
    if (s->remote_closed) {
        violation(s, TUN_RESET_PROTOCOL, "data after close");
        return;
    }
    if (f->data_len > s->recv_limit - s->recv_total) {
        violation(s, TUN_RESET_FLOW, "data beyond the granted window");
        return;
    }
    s->recv_total += f->data_len;
    if (s->state == S_PENDING) {
        /* Bounded by the early window, which the flow check enforced. */
        uint8_t *e = realloc(s->early, s->early_len + f->data_len);
        if (!e) {
            violation(s, TUN_RESET_INTERNAL, "out of memory");
            return;
        }
        memcpy(e + s->early_len, f->data, f->data_len);
        s->early = e;
        s->early_len += f->data_len;
        return;
    }
    deliver_data(s, f->data, f->data_len);
}

static void on_close_frame(struct tun_stream *s)
{
    if (s->remote_closed)
        return;
    s->remote_closed = true;
    if (s->state == S_PENDING)
        return;     /* reported when the owner accepts */
    if (s->ops->on_eof)
        s->ops->on_eof(s);
    if (!s->ended && s->local_closed)
        end_stream(s, 0, NULL);
}

static void on_stream_frame(struct tunnel *t, const struct tun_frame *f)
{
    struct tun_stream *s = find_stream(t, f->stream);
    if (!s)
        return;     /* ended here already; the peer has not heard yet */
    char reason[TUN_MAX_REASON + 1];
    switch (f->type) {
    case TUN_OPEN_OK:
        on_open_ok(s, f);
        break;
    case TUN_DATA:
        on_data(s, f);
        break;
    case TUN_WINDOW:
        if (f->window > UINT64_MAX / 2 - s->send_limit) {
            violation(s, TUN_RESET_PROTOCOL, "window overflow");
            break;
        }
        s->send_limit += f->window;
        wake(s);
        break;
    case TUN_CLOSE:
        on_close_frame(s);
        break;
    case TUN_RESET:
        memcpy(reason, f->data, f->data_len);
        reason[f->data_len] = '\0';
        end_stream(s, f->code, reason);
        break;
    }
}

static void on_frame(struct tunnel *t, const struct tun_frame *f)
{
    switch (f->type) {
    case TUN_OPEN:
        on_peer_open(t, f);
        break;
    case TUN_CONTROL:
        if (t->ops->on_control)
            t->ops->on_control(t, f->data, f->data_len);
        break;
    default:
        on_stream_frame(t, f);
        break;
    }
}

static void on_ws_message(struct ws *w, uint8_t opcode, const uint8_t *data, size_t len)
{
    struct tunnel *t = ws_ud(w);
    if (opcode != WS_OP_BINARY) {
        tunnel_die(t, WS_CLOSE_UNSUPPORTED, "text message on a tunnel", true);
        return;
    }
    if (len == 0) {
        tunnel_die(t, WS_CLOSE_PROTOCOL, "bad frame: empty message", true);
        return;
    }
    size_t off = 0;
    while (off < len && !t->dead) {
        struct tun_frame f;
        ssize_t n = tun_frame_parse(data + off, len - off, &f);
        if (n < 0) {
            char why[160];
            snprintf(why, sizeof(why), "bad frame: %s",
                     n == -2 ? "truncated frame" : (f.error ? f.error : "invalid"));
            tunnel_die(t, WS_CLOSE_PROTOCOL, why, true);
            return;
        }
        on_frame(t, &f);
        off += (size_t)n;
    }
}

static void on_ws_drain(struct ws *w)
{
    struct tunnel *t = ws_ud(w);
    /* Wake each waiting stream at most once per drain, oldest first. */
    uint32_t budget = t->nstreams;
    while (t->wait_head && budget-- > 0 && !t->dead &&
           ws_out_pending(t->ws) < TUNNEL_HIGH_WATER) {
        struct tun_stream *s = t->wait_head;
        if (s->send_limit == s->send_total) {
            /* Still no window: keep it waiting, at the back. */
            wait_remove(t, s);
            wait_add(t, s);
            continue;
        }
        wake(s);
    }
}

static void on_ws_close(struct ws *w, const char *why)
{
    struct tunnel *t = ws_ud(w);
    t->ws = NULL;
    tunnel_die(t, 0, why, true);
}

static const struct ws_ops tunnel_ws_ops = {
    .on_message = on_ws_message,
    .on_drain = on_ws_drain,
    .on_close = on_ws_close,
};

/* ---- keepalive and lifetime ---- */

static void on_keepalive(struct loop_timer *timer)
{
    struct tunnel *t = (struct tunnel *)((char *)timer - offsetof(struct tunnel, keepalive));
    uint64_t now = loop_now_ms(t->loop);
    uint64_t silent = now - ws_last_rx_ms(t->ws);
    if (silent >= t->cfg.dead_after_ms) {
        char why[96];
        snprintf(why, sizeof(why), "peer silent for %llu ms",
                 (unsigned long long)silent);
        tunnel_die(t, WS_CLOSE_GOING_AWAY, why, true);
        return;
    }
    /* The dialing end pings whatever the traffic; the server end only when
     * it has heard nothing for a whole interval. At rest an agent's pings
     * and our pongs prove both ends alive: half the frames, which is most
     * of the CPU of tens of thousands of idle tunnels. */
    if (!t->server_side || silent >= t->cfg.ping_interval_ms)
        ws_ping(t->ws);
    uint64_t next = t->cfg.ping_interval_ms;
    uint64_t until_dead = t->cfg.dead_after_ms - silent;
    loop_timer_start(t->loop, &t->keepalive, next < until_dead ? next : until_dead,
                     on_keepalive);
}

static void free_tunnel(void *arg)
{
    struct tunnel *t = arg;
    free(t->buckets);
    free(t);
}

static void tunnel_die(struct tunnel *t, uint16_t ws_code, const char *why, bool notify)
{
    if (t->dead)
        return;
    t->dead = true;
    loop_timer_stop(t->loop, &t->keepalive);
    if (t->ws) {
        ws_set_ud(t->ws, NULL);
        ws_close(t->ws, ws_code ? ws_code : WS_CLOSE_GOING_AWAY, why);
        t->ws = NULL;
    }
    char reason[200];
    snprintf(reason, sizeof(reason), "tunnel lost: %s", why);
    /* End every stream; each end removes it from the table. */
    /* One pass over the buckets: each end unlinks the stream at the head of
     * its bucket (the table is not rehashed while the tunnel dies; it is
     * freed when the last stream goes, which ends the loop). */
    for (uint32_t i = 0; i < t->nbuckets;) {
        struct tun_stream *s = t->buckets[i];
        if (!s) {
            i++;
            continue;
        }
        /* Closed by its owner: streams were cancelled; otherwise the link
         * was lost under them. */
        end_stream(s, notify ? TUN_RESET_UNAVAILABLE : TUN_RESET_CANCEL, reason);
    }
    if (notify && t->ops->on_down)
        t->ops->on_down(t, why);
    if (loop_defer(t->loop, free_tunnel, t) < 0)
        abort();
}

void tunnel_close(struct tunnel *t, uint16_t ws_code, const char *reason)
{
    tunnel_die(t, ws_code, reason, false);
}

struct tunnel *tunnel_new(struct loop *l, struct ws *w, bool server_side,
                          const struct tunnel_cfg *cfg,
                          const struct tunnel_ops *ops, void *ud)
{
    struct tunnel *t = calloc(1, sizeof(*t));
    if (!t) {
        ws_close(w, WS_CLOSE_INTERNAL, "out of memory");
        return NULL;
    }
    t->loop = l;
    t->ws = w;
    t->server_side = server_side;
    t->ops = ops;
    t->ud = ud;
    t->cfg = *cfg;
    if (!t->cfg.ping_interval_ms)
        t->cfg.ping_interval_ms = 5000;
    if (!t->cfg.dead_after_ms)
        t->cfg.dead_after_ms = 15000;
    if (t->cfg.window < TUN_EARLY_WINDOW)
        t->cfg.window = TUN_DEFAULT_WINDOW;
    if (!t->cfg.max_streams)
        t->cfg.max_streams = 1024;
    t->next_local_id = server_side ? 1 : 2;
    ws_set_ud(w, t);
    ws_set_ops(w, &tunnel_ws_ops);
    ws_set_high_water(w, TUNNEL_HIGH_WATER);
    loop_timer_start(l, &t->keepalive, t->cfg.ping_interval_ms, on_keepalive);
    return t;
}

void *tunnel_ud(const struct tunnel *t) { return t->ud; }
void tunnel_set_ud(struct tunnel *t, void *ud) { t->ud = ud; }
size_t tunnel_stream_count(const struct tunnel *t) { return t->nstreams; }

size_t tunnel_buffered(const struct tunnel *t)
{
    return t->ws ? ws_buffered(t->ws) : 0;
}

const char *tunnel_peer(const struct tunnel *t)
{
    return t->ws && ws_conn(t->ws) ? conn_peer(ws_conn(t->ws)) : "";
}

int tunnel_send_control(struct tunnel *t, const void *json, size_t len)
{
    if (len == 0 || len > TUN_MAX_CONTROL || t->dead)
        return -1;
    uint8_t hdr[TUN_HDR_LEN];
    tun_frame_put_header(hdr, TUN_CONTROL, 0, (uint32_t)len);
    return ws_send(t->ws, WS_OP_BINARY, hdr, sizeof(hdr), json, len);
}
