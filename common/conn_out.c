/*
 * conn_out: the output side of a conn (see conn.h for the contract).
 *
 * Owns the chunk queues (plaintext in out, TLS records in enc), flushing
 * them with one sendmsg for many chunks, the high-water drain callback, the
 * write-stall timer and the writer API (conn_write*).
 *
 * Writes are queued and flushed after the current loop batch (or when the
 * socket becomes writable), so several small frames produced in one batch
 * leave in one TLS record and one syscall, and conn_write() never calls back
 * into its caller.
 */
#include "common/conn.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include "common/conn_int.h"

static int queue_write(struct conn *c, struct out_chunk **head, struct out_chunk **tail,
                       size_t *pending, const char **why);

static void on_stall(struct loop_timer *t)
{
    struct conn *c = (struct conn *)((char *)t - offsetof(struct conn, stall));
    conn_fail(c, "the peer stopped reading");
}

/* Arms the stall timer while output waits, and re-arms it whenever some of
 * it left: only a peer that takes nothing for stall_ms is dropped. */
static void watch_stall(struct conn *c)
{
    if (!c->out_pending && !c->enc_pending) {
        loop_timer_stop(c->loop, &c->stall);
        return;
    }
    if (!loop_timer_armed(&c->stall) || c->sent_total != c->stall_mark) {
        c->stall_mark = c->sent_total;
        loop_timer_start(c->loop, &c->stall, c->stall_ms, on_stall);
    }
}

static void flush_done(struct conn *c)
{
    if (c->stall_ms)
        watch_stall(c);
    if (c->out_pending == 0 && c->shut_wr_wanted && !c->shut_wr_done) {
        c->shut_wr_done = true;
        if (c->ssl)
            c->closing_after_flush = true;
        else
            shutdown(c->io.fd, SHUT_WR);
    }
    if (c->out_pending == 0 && c->enc_pending == 0 && c->closing_after_flush) {
        if (c->ssl) {
            /* Best effort close_notify: one try, no waiting. */
            SSL_shutdown(c->ssl);
            const char *why;
            queue_write(c, &c->enc_head, &c->enc_tail, &c->enc_pending, &why);
        }
        conn_start_drain(c);
        return;
    }
    conn_update_interest(c);
    if (c->drain_wanted && c->out_pending <= c->high_water / 2) {
        c->drain_wanted = false;
        if (c->ops->on_drain)
            c->ops->on_drain(c);
    }
}

/* Appends len bytes at the tail of a chunk queue. 0 or -1 (ENOMEM). */
int conn_queue_append(struct out_chunk **head, struct out_chunk **tail, size_t *pending,
                      const void *data, size_t len)
{
    const uint8_t *p = data;
    while (len > 0) {
        struct out_chunk *t = *tail;
        if (!t || t->len == t->cap) {
            size_t cap = len > CONN_OUT_CHUNK ? len : CONN_OUT_CHUNK;
            t = malloc(sizeof(*t) + cap);
            if (!t)
                return -1;
            t->next = NULL;
            t->off = t->len = 0;
            t->cap = cap;
            if (*tail)
                (*tail)->next = t;
            else
                *head = t;
            *tail = t;
        }
        size_t n = t->cap - t->len < len ? t->cap - t->len : len;
        memcpy(t->data + t->len, p, n);
        t->len += n;
        *pending += n;
        p += n;
        len -= n;
    }
    return 0;
}

/* Drops n sent bytes from the front of a queue. */
void conn_queue_consume(struct out_chunk **head, struct out_chunk **tail, size_t *pending,
                        size_t n)
{
    *pending -= n;
    while (n > 0) {
        struct out_chunk *ch = *head;
        size_t k = ch->len - ch->off < n ? ch->len - ch->off : n;
        ch->off += k;
        n -= k;
        if (ch->off == ch->len) {
            *head = ch->next;
            if (!*head)
                *tail = NULL;
            free(ch);
        }
    }
}

/* Writes as much of a queue to the socket as it takes, many chunks per
 * syscall. 1 queue empty, 0 would block, -1 failed (*why). */
static int queue_write(struct conn *c, struct out_chunk **head, struct out_chunk **tail,
                       size_t *pending, const char **why)
{
    while (*head) {
        struct iovec iov[CONN_IOV];
        int n = 0;
        for (struct out_chunk *ch = *head; ch && n < CONN_IOV; ch = ch->next, n++) {
            iov[n].iov_base = ch->data + ch->off;
            iov[n].iov_len = ch->len - ch->off;
        }
        struct msghdr mh = { .msg_iov = iov, .msg_iovlen = (size_t)n };
        ssize_t w = sendmsg(c->io.fd, &mh, MSG_NOSIGNAL);
        if (w < 0) {
            if (errno == EAGAIN || errno == EINTR)
                return 0;
            *why = strerror(errno);
            return -1;
        }
        c->sent_total += (uint64_t)w;
        conn_queue_consume(head, tail, pending, (size_t)w);
    }
    return 1;
}

/* Sends what TLS produced. false if the conn failed. */
bool conn_flush_enc(struct conn *c)
{
    const char *why = NULL;
    if (c->enc_pending &&
        queue_write(c, &c->enc_head, &c->enc_tail, &c->enc_pending, &why) < 0) {
        conn_fail(c, why);
        return false;
    }
    return true;
}

void conn_flush(struct conn *c)
{
    c->tls_write_wants_read = false;
    while (c->state == C_OPEN) {
        const char *why = NULL;
        int r;
        if (!c->ssl) {
            r = queue_write(c, &c->out_head, &c->out_tail, &c->out_pending, &why);
        } else {
            if (conn_tls_encrypt(c, &why) < 0)
                r = -1;
            else
                r = queue_write(c, &c->enc_head, &c->enc_tail, &c->enc_pending, &why);
            /* More plaintext may fit now that records left. */
            if (r == 1 && c->out_head && !c->tls_write_wants_read)
                continue;
        }
        if (r < 0) {
            conn_fail(c, why);
            return;
        }
        break;
    }
    if (c->state == C_OPEN)
        flush_done(c);
}

static void deferred_flush(void *arg)
{
    struct conn *c = arg;
    c->flush_scheduled = false;
    if (c->state != C_OPEN)
        return;
    if (c->deferred_error) {
        conn_fail(c, c->deferred_error);
        return;
    }
    conn_flush(c);
}

void conn_schedule_flush(struct conn *c)
{
    if (c->flush_scheduled)
        return;
    if (loop_defer(c->loop, deferred_flush, c) < 0) {
        c->deferred_error = "out of memory";
        return;
    }
    c->flush_scheduled = true;
}

static int append(struct conn *c, const void *data, size_t len)
{
    return conn_queue_append(&c->out_head, &c->out_tail, &c->out_pending, data, len);
}

int conn_write2(struct conn *c, const void *a, size_t alen,
                const void *b, size_t blen)
{
    if (c->state == C_CLOSED || c->closing_after_flush || c->shut_wr_wanted)
        return -1;
    if (alen > c->out_cap - c->out_pending ||
        blen > c->out_cap - c->out_pending - alen)
        return -1;
    if (append(c, a, alen) < 0 || append(c, b, blen) < 0)
        return -1;
    if (c->high_water && c->out_pending >= c->high_water)
        c->drain_wanted = true;
    if (c->state == C_OPEN)
        conn_schedule_flush(c);
    return 0;
}

uint8_t *conn_write_reserve(struct conn *c, size_t len)
{
    if (c->state == C_CLOSED || c->closing_after_flush || c->shut_wr_wanted ||
        len > c->out_cap - c->out_pending)
        return NULL;
    struct out_chunk *t = c->out_tail;
    if (!t || len > t->cap - t->len) {
        size_t cap = len > CONN_OUT_CHUNK ? len : CONN_OUT_CHUNK;
        t = malloc(sizeof(*t) + cap);
        if (!t)
            return NULL;
        t->next = NULL;
        t->off = t->len = 0;
        t->cap = cap;
        if (c->out_tail)
            c->out_tail->next = t;
        else
            c->out_head = t;
        c->out_tail = t;
    }
    uint8_t *p = t->data + t->len;
    t->len += len;
    c->out_pending += len;
    if (c->high_water && c->out_pending >= c->high_water)
        c->drain_wanted = true;
    if (c->state == C_OPEN)
        conn_schedule_flush(c);
    return p;
}

int conn_write(struct conn *c, const void *data, size_t len)
{
    return conn_write2(c, data, len, NULL, 0);
}
