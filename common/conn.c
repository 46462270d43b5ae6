/*
 * conn: non-blocking TCP/TLS byte streams. See conn.h for the contract.
 *
 * Writes are queued and flushed after the current loop batch (or when the
 * socket becomes writable), so several small frames produced in one batch
 * leave in one TLS record and one syscall, and conn_write() never calls back
 * into its caller.
 */
#include "common/conn.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <pthread.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

#include "common/tls.h"

#define CONN_READ_CHUNK   (64 * 1024)
#define CONN_READ_BUDGET  (512 * 1024)  /* per event, for fairness */
#define CONN_OUT_CHUNK    (64 * 1024)
#define CONN_DEFAULT_CAP  (16u * 1024 * 1024)
#define CONN_ENC_AHEAD    (256u * 1024)     /* encrypt at most this far ahead */
#define CONN_IOV          32

enum conn_state { C_CONNECTING, C_HANDSHAKE, C_OPEN, C_CLOSED };

struct out_chunk {
    struct out_chunk *next;
    size_t off, len, cap;
    uint8_t data[];
};

struct conn {
    struct loop_io io;
    struct loop *loop;
    SSL *ssl;
    const struct conn_ops *ops;
    void *ud;
    enum conn_state state;
    bool read_paused, eof_seen, shut_wr_wanted, shut_wr_done;
    bool closing_after_flush, flush_scheduled, resume_scheduled;
    bool tls_write_wants_read, drain_wanted;
    bool in_read_cb, resumed_in_cb;
    bool draining;              /* closing: output done, reading to EOF */
    const char *deferred_error;

    uint8_t *held;              /* read data the owner did not take yet */
    size_t held_off, held_len;

    struct out_chunk *out_head, *out_tail;    /* plaintext to send */
    size_t out_pending, out_cap, high_water;
    struct out_chunk *enc_head, *enc_tail;    /* TLS records for the socket */
    size_t enc_pending;

    struct loop_timer linger;
    struct loop_timer stall;    /* output pending without progress */
    struct loop_timer yield;    /* reading resumes after others had a turn */
    uint64_t stall_ms, sent_total, stall_mark;
    struct conn *live_prev, *live_next;    /* every open conn of the thread */
    char peer[48];
};

static __thread struct conn *live_head;
static __thread size_t live_count;

static __thread uint8_t read_buf[CONN_READ_CHUNK];

static void do_flush(struct conn *c);
static void do_read(struct conn *c);
static void schedule_flush(struct conn *c);
static int queue_append(struct out_chunk **head, struct out_chunk **tail, size_t *pending,
                        const void *data, size_t len);
static int queue_write(struct conn *c, struct out_chunk **head, struct out_chunk **tail,
                       size_t *pending, const char **why);

/* ---- small helpers ---- */

static void free_conn(void *arg)
{
    free(arg);
}

static void free_chunks(struct out_chunk *ch)
{
    while (ch) {
        struct out_chunk *n = ch->next;
        free(ch);
        ch = n;
    }
}

static void free_buffers(struct conn *c)
{
    free_chunks(c->out_head);
    c->out_head = c->out_tail = NULL;
    c->out_pending = 0;
    free_chunks(c->enc_head);
    c->enc_head = c->enc_tail = NULL;
    c->enc_pending = 0;
    free(c->held);
    c->held = NULL;
    c->held_len = c->held_off = 0;
}

static void live_unlink(struct conn *c)
{
    if (c->live_prev)
        c->live_prev->live_next = c->live_next;
    else
        live_head = c->live_next;
    if (c->live_next)
        c->live_next->live_prev = c->live_prev;
    live_count--;
}

static void close_now(struct conn *c)
{
    if (c->state == C_CLOSED)
        return;
    c->state = C_CLOSED;
    live_unlink(c);
    int fd = c->io.fd;
    loop_io_del(c->loop, &c->io);
    loop_timer_stop(c->loop, &c->linger);
    loop_timer_stop(c->loop, &c->stall);
    loop_timer_stop(c->loop, &c->yield);
    if (c->ssl) {
        SSL_free(c->ssl);
        c->ssl = NULL;
    }
    if (fd >= 0)
        close(fd);
    free_buffers(c);
    /* Freed after the batch: epoll events and deferred calls may still
     * reference this conn, and they check the state first. */
    if (loop_defer(c->loop, free_conn, c) < 0)
        abort();
}

static void fail(struct conn *c, const char *why)
{
    if (c->state == C_CLOSED)
        return;
    close_now(c);
    if (c->ops->on_close && !c->closing_after_flush)
        c->ops->on_close(c, why);
}

static void update_interest(struct conn *c)
{
    if (c->state == C_CLOSED)
        return;
    unsigned ev = 0;
    if (c->state == C_CONNECTING)
        ev = LOOP_WRITE;
    else {
        if ((!c->read_paused && !c->eof_seen) || c->tls_write_wants_read ||
            c->state == C_HANDSHAKE)
            ev |= LOOP_READ;
        if (c->out_pending > 0 || c->enc_pending > 0)
            ev |= LOOP_WRITE;
    }
    loop_io_mod(c->loop, &c->io, ev);
}

static const char *tls_failure(struct conn *c, char *buf, size_t len)
{
    long v = c->ssl ? SSL_get_verify_result(c->ssl) : X509_V_OK;
    if (v != X509_V_OK) {
        snprintf(buf, len, "TLS certificate verify failed: %s",
                 X509_verify_cert_error_string(v));
        ERR_clear_error();
        return buf;
    }
    char e[200];
    snprintf(buf, len, "TLS error: %s", tls_last_error(e, sizeof(e)));
    return buf;
}

/* ---- handshake ---- */

static void opened(struct conn *c)
{
    c->state = C_OPEN;
    update_interest(c);
    /* An owner that already closed (after flush) hears nothing more. */
    if (c->ops->on_open && !c->closing_after_flush)
        c->ops->on_open(c);
    if (c->state == C_OPEN && (c->out_pending || c->enc_pending))
        do_flush(c);
    /* Read-ahead may have pulled application data in with the handshake's
     * last flight; epoll will not report it again. */
    if (c->state == C_OPEN && c->ssl && SSL_has_pending(c->ssl) && !c->read_paused)
        conn_resume_read(c);
}

static bool flush_enc(struct conn *c);

static void do_handshake(struct conn *c)
{
    ERR_clear_error();
    int r = SSL_do_handshake(c->ssl);
    int err = r == 1 ? SSL_ERROR_NONE : SSL_get_error(c->ssl, r);
    /* Whatever the handshake produced (even a fatal alert) goes out now. */
    if (!flush_enc(c))
        return;
    if (r == 1) {
        opened(c);
        return;
    }
    if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE) {
        update_interest(c);
        return;
    }
    static __thread char why[300];
    if (err == SSL_ERROR_SYSCALL && ERR_peek_error() == 0)
        snprintf(why, sizeof(why), "TLS handshake: connection closed by peer");
    else
        tls_failure(c, why, sizeof(why));
    fail(c, why);
}

static void finish_connect(struct conn *c)
{
    int soerr = 0;
    socklen_t sl = sizeof(soerr);
    if (getsockopt(c->io.fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) < 0)
        soerr = errno;
    if (soerr) {
        fail(c, strerror(soerr));
        return;
    }
    if (c->ssl) {
        c->state = C_HANDSHAKE;
        do_handshake(c);
    } else {
        opened(c);
    }
}

/* ---- reading ---- */

static void hold_rest(struct conn *c, const uint8_t *data, size_t len)
{
    c->held = malloc(len);
    if (!c->held) {
        fail(c, "out of memory");
        return;
    }
    memcpy(c->held, data, len);
    c->held_off = 0;
    c->held_len = len;
    c->read_paused = true;
    update_interest(c);
}

/* Hands data to the owner; keeps what it did not take. false if the owner
 * closed or paused the connection, so reading must stop. */
static bool deliver(struct conn *c, uint8_t *data, size_t len)
{
    c->in_read_cb = true;
    c->resumed_in_cb = false;
    size_t took = c->ops->on_read(c, data, len);
    c->in_read_cb = false;
    if (c->state == C_CLOSED)
        return false;
    if (took < len) {
        hold_rest(c, data + took, len - took);
        /* The owner already asked for more (it finished its work inside
         * the callback): offer the rest again after this batch. */
        if (c->resumed_in_cb && c->state == C_OPEN)
            conn_resume_read(c);
        return false;
    }
    return !c->read_paused;
}

static void got_eof(struct conn *c)
{
    c->eof_seen = true;
    update_interest(c);
    if (c->ops->on_eof)
        c->ops->on_eof(c);
    else
        fail(c, "connection closed by peer");
}

/* One read attempt. >0 bytes, 0 would block, -1 EOF or failure handled. */
static ssize_t read_once(struct conn *c)
{
    if (!c->ssl) {
        ssize_t n = read(c->io.fd, read_buf, sizeof(read_buf));
        if (n > 0)
            return n;
        if (n == 0) {
            got_eof(c);
            return -1;
        }
        if (errno == EAGAIN || errno == EINTR)
            return 0;
        fail(c, strerror(errno));
        return -1;
    }
    /* SSL_read hands out one record (<= 16 KiB) per call; gather several so
     * the layers above see whole 64 KiB frames in place instead of copying
     * frames that straddle records. */
    size_t got = 0;
    int r = 0;
    while (got < sizeof(read_buf)) {
        ERR_clear_error();
        r = SSL_read(c->ssl, read_buf + got, (int)(sizeof(read_buf) - got));
        if (r <= 0)
            break;
        got += (size_t)r;
    }
    /* Reading can make TLS answer (session tickets, key updates). */
    if (c->enc_pending)
        schedule_flush(c);
    if (got > 0)
        return (ssize_t)got;    /* an error or EOF shows again on the next call */
    int err = SSL_get_error(c->ssl, r);
    if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE)
        return 0;
    if (err == SSL_ERROR_ZERO_RETURN ||
        (err == SSL_ERROR_SYSCALL && ERR_peek_error() == 0)) {
        got_eof(c);
        return -1;
    }
    static __thread char why[300];
    fail(c, tls_failure(c, why, sizeof(why)));
    return -1;
}

/* Offers the held bytes again. true if they were all taken and reading
 * may go on. Held bytes always go first, or the stream would reorder. */
static bool deliver_held(struct conn *c)
{
    uint8_t *h = c->held;
    size_t off = c->held_off, len = c->held_len;
    c->in_read_cb = true;
    c->resumed_in_cb = false;
    size_t took = c->ops->on_read(c, h + off, len - off);
    c->in_read_cb = false;
    if (c->state == C_CLOSED)
        return false;
    if (took < len - off) {
        c->held_off = off + took;
        if (c->resumed_in_cb) {
            conn_resume_read(c);
            return false;
        }
        c->read_paused = true;
        update_interest(c);
        return false;
    }
    free(h);
    c->held = NULL;
    c->held_len = c->held_off = 0;
    return !c->read_paused;
}

static void on_yield(struct loop_timer *t)
{
    struct conn *c = (struct conn *)((char *)t - offsetof(struct conn, yield));
    if (c->state == C_OPEN && !c->read_paused)
        do_read(c);
}

static void do_read(struct conn *c)
{
    size_t budget = CONN_READ_BUDGET;
    if (c->held && (c->read_paused || !deliver_held(c)))
        return;
    while (c->state == C_OPEN && !c->read_paused && !c->eof_seen) {
        ssize_t n = read_once(c);
        if (n <= 0)
            break;
        if (!deliver(c, read_buf, (size_t)n))
            break;
        if ((size_t)n >= budget) {
            /* Let other connections run; TLS may hold decrypted bytes that
             * epoll cannot see, so come back explicitly, but on the next
             * loop pass: a deferred call would run in this same pass, and a
             * peer that keeps sending would then never let the loop go. */
            if (c->ssl && SSL_has_pending(c->ssl))
                loop_timer_start(c->loop, &c->yield, 1, on_yield);
            break;
        }
        budget -= (size_t)n;
    }
    update_interest(c);
}

/* ---- writing ---- */

static void on_linger(struct loop_timer *t);

/*
 * A lingering close. close(2) on a socket with unread input makes Linux send
 * RST, and the peer then loses whatever of ours it had not read yet. So send
 * FIN, read and discard until the peer closes too (or the linger time runs
 * out), and only then close.
 */
static void start_drain(struct conn *c)
{
    c->draining = true;
    shutdown(c->io.fd, SHUT_WR);
    if (!loop_timer_armed(&c->linger))
        loop_timer_start(c->loop, &c->linger, 5000, on_linger);
    loop_io_mod(c->loop, &c->io, LOOP_READ);
}

static void drain_input(struct conn *c)
{
    for (;;) {
        ssize_t n = recv(c->io.fd, read_buf, sizeof(read_buf), 0);
        if (n > 0)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EINTR))
            return;
        close_now(c);   /* EOF or error: the peer is done */
        return;
    }
}

static void on_stall(struct loop_timer *t)
{
    struct conn *c = (struct conn *)((char *)t - offsetof(struct conn, stall));
    fail(c, "the peer stopped reading");
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
        start_drain(c);
        return;
    }
    update_interest(c);
    if (c->drain_wanted && c->out_pending <= c->high_water / 2) {
        c->drain_wanted = false;
        if (c->ops->on_drain)
            c->ops->on_drain(c);
    }
}

/* Appends len bytes at the tail of a chunk queue. 0 or -1 (ENOMEM). */
static int queue_append(struct out_chunk **head, struct out_chunk **tail, size_t *pending,
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
static void queue_consume(struct out_chunk **head, struct out_chunk **tail, size_t *pending,
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
        queue_consume(head, tail, pending, (size_t)w);
    }
    return 1;
}

/* TLS: turns plaintext into records (in enc, through the queue BIO) while
 * enc is short. 0, or -1 failed (*why). */
static int tls_encrypt(struct conn *c, const char **why)
{
    while (c->out_head && c->enc_pending < CONN_ENC_AHEAD) {
        struct out_chunk *ch = c->out_head;
        ERR_clear_error();
        int r = SSL_write(c->ssl, ch->data + ch->off, (int)(ch->len - ch->off));
        if (r <= 0) {
            int err = SSL_get_error(c->ssl, r);
            if (err == SSL_ERROR_WANT_READ) {
                c->tls_write_wants_read = true;
                return 0;
            }
            if (err == SSL_ERROR_WANT_WRITE)
                return 0;
            static __thread char buf[300];
            *why = tls_failure(c, buf, sizeof(buf));
            return -1;
        }
        queue_consume(&c->out_head, &c->out_tail, &c->out_pending, (size_t)r);
    }
    return 0;
}

/* Sends what TLS produced. false if the conn failed. */
static bool flush_enc(struct conn *c)
{
    const char *why = NULL;
    if (c->enc_pending &&
        queue_write(c, &c->enc_head, &c->enc_tail, &c->enc_pending, &why) < 0) {
        fail(c, why);
        return false;
    }
    return true;
}

static void do_flush(struct conn *c)
{
    c->tls_write_wants_read = false;
    while (c->state == C_OPEN) {
        const char *why = NULL;
        int r;
        if (!c->ssl) {
            r = queue_write(c, &c->out_head, &c->out_tail, &c->out_pending, &why);
        } else {
            if (tls_encrypt(c, &why) < 0)
                r = -1;
            else
                r = queue_write(c, &c->enc_head, &c->enc_tail, &c->enc_pending, &why);
            /* More plaintext may fit now that records left. */
            if (r == 1 && c->out_head && !c->tls_write_wants_read)
                continue;
        }
        if (r < 0) {
            fail(c, why);
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
        fail(c, c->deferred_error);
        return;
    }
    do_flush(c);
}

static void schedule_flush(struct conn *c)
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
    return queue_append(&c->out_head, &c->out_tail, &c->out_pending, data, len);
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
        schedule_flush(c);
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
        schedule_flush(c);
    return p;
}

int conn_write(struct conn *c, const void *data, size_t len)
{
    return conn_write2(c, data, len, NULL, 0);
}

/* ---- events ---- */

static void on_io(struct loop_io *io, unsigned events)
{
    struct conn *c = (struct conn *)((char *)io - offsetof(struct conn, io));
    if (c->draining) {
        drain_input(c);
        return;
    }
    switch (c->state) {
    case C_CONNECTING:
        finish_connect(c);
        return;
    case C_HANDSHAKE:
        if ((events & LOOP_WRITE) && !flush_enc(c))
            return;
        do_handshake(c);
        return;
    case C_OPEN:
        break;
    case C_CLOSED:
        return;
    }
    if ((events & LOOP_WRITE) || ((events & LOOP_READ) && c->tls_write_wants_read))
        do_flush(c);
    if (c->state == C_OPEN && (events & LOOP_READ))
        do_read(c);
    /* epoll repeats a hang-up for as long as the socket is registered. */
    if (c->state == C_OPEN && (events & LOOP_HUP)) {
        if (c->eof_seen && c->out_pending == 0)
            fail(c, "connection closed by peer");
        else if (c->read_paused && !c->eof_seen)
            loop_io_park(c->loop, &c->io);  /* unread data stays readable */
    }
}

/* ---- creation ---- */

static void tune_socket(int fd)
{
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    int fl = fcntl(fd, F_GETFL);
    if (fl >= 0)
        fcntl(fd, F_SETFL, fl | O_NONBLOCK);
}

static void format_peer(char *buf, size_t len, const struct sockaddr *sa)
{
    char ip[INET6_ADDRSTRLEN] = "";
    int port = 0;
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
        inet_ntop(AF_INET, &in->sin_addr, ip, sizeof(ip));
        port = ntohs(in->sin_port);
        snprintf(buf, len, "%s:%d", ip, port);
    } else if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
        inet_ntop(AF_INET6, &in6->sin6_addr, ip, sizeof(ip));
        port = ntohs(in6->sin6_port);
        snprintf(buf, len, "[%s]:%d", ip, port);
    } else {
        buf[0] = '\0';
    }
}

/* ---- TLS BIOs ----
 * Reads come straight from the socket (with read-ahead, several records per
 * syscall). Writes go to a BIO that appends records to the conn's enc queue,
 * so a batch of records leaves in one sendmsg instead of one write(2) per
 * 16 KiB record, and OpenSSL never sees a blocked socket. */

static BIO_METHOD *queue_bio;
static pthread_once_t queue_bio_once = PTHREAD_ONCE_INIT;

static int qbio_write(BIO *b, const char *data, int len)
{
    struct conn *c = BIO_get_data(b);
    BIO_clear_retry_flags(b);
    if (len < 0 || queue_append(&c->enc_head, &c->enc_tail, &c->enc_pending, data,
                                (size_t)len) < 0)
        return -1;
    return len;
}

static long qbio_ctrl(BIO *b, int cmd, long num, void *ptr)
{
    (void)b;
    (void)num;
    (void)ptr;
    return cmd == BIO_CTRL_FLUSH ? 1 : 0;
}

static void make_queue_bio(void)
{
    queue_bio = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "drover-queue");
    if (queue_bio) {
        BIO_meth_set_write(queue_bio, qbio_write);
        BIO_meth_set_ctrl(queue_bio, qbio_ctrl);
    }
}

static int attach_tls(struct conn *c, SSL_CTX *ctx, int fd)
{
    pthread_once(&queue_bio_once, make_queue_bio);
    c->ssl = SSL_new(ctx);
    if (!c->ssl || !queue_bio)
        return -1;
    BIO *rb = BIO_new_socket(fd, BIO_NOCLOSE);
    BIO *wb = BIO_new(queue_bio);
    if (!rb || !wb) {
        BIO_free(rb);
        BIO_free(wb);
        return -1;
    }
    BIO_set_data(wb, c);
    BIO_set_init(wb, 1);
    SSL_set_bio(c->ssl, rb, wb);
    SSL_set_read_ahead(c->ssl, 1);
    return 0;
}

static struct conn *conn_new(struct loop *l, const struct conn_ops *ops, void *ud)
{
    struct conn *c = calloc(1, sizeof(*c));
    if (!c)
        return NULL;
    c->loop = l;
    c->ops = ops;
    c->ud = ud;
    c->io.fd = -1;
    c->out_cap = CONN_DEFAULT_CAP;
    c->live_next = live_head;
    if (live_head)
        live_head->live_prev = c;
    live_head = c;
    live_count++;
    return c;
}

/* Undoes conn_new for a conn that never got going. */
static void discard(struct conn *c)
{
    c->state = C_CONNECTING;    /* anything but C_CLOSED */
    loop_io_del(c->loop, &c->io);
    c->io.fd = -1;
    live_unlink(c);
    free(c);
}

static void deferred_open(void *arg)
{
    struct conn *c = arg;
    if (c->state == C_OPEN && c->ops->on_open)
        c->ops->on_open(c);
}

struct conn *conn_adopt(struct loop *l, int fd, SSL_CTX *ctx,
                        const struct conn_ops *ops, void *ud)
{
    struct conn *c = conn_new(l, ops, ud);
    if (!c) {
        close(fd);
        return NULL;
    }
    tune_socket(fd);
    struct sockaddr_storage ss;
    socklen_t sl = sizeof(ss);
    if (getpeername(fd, (struct sockaddr *)&ss, &sl) == 0)
        format_peer(c->peer, sizeof(c->peer), (struct sockaddr *)&ss);
    if (ctx) {
        if (attach_tls(c, ctx, fd) < 0)
            goto fail;
        SSL_set_accept_state(c->ssl);
        c->state = C_HANDSHAKE;
    } else {
        c->state = C_OPEN;
    }
    if (loop_io_add(l, &c->io, fd, LOOP_READ, on_io) < 0)
        goto fail;
    if (!ctx && loop_defer(l, deferred_open, c) < 0)
        goto fail;
    return c;
fail:
    if (c->ssl)
        SSL_free(c->ssl);
    close(fd);
    discard(c);
    return NULL;
}

static void deferred_fail(void *arg)
{
    struct conn *c = arg;
    if (c->state != C_CLOSED)
        fail(c, c->deferred_error);
}

struct conn *conn_connect(struct loop *l, const struct sockaddr *addr,
                          socklen_t addrlen, SSL_CTX *ctx, const char *host,
                          bool host_is_ip, const struct conn_ops *ops, void *ud)
{
    return conn_connect_from(l, NULL, 0, addr, addrlen, ctx, host, host_is_ip, ops, ud);
}

struct conn *conn_connect_from(struct loop *l, const struct sockaddr *src, socklen_t srclen,
                               const struct sockaddr *addr, socklen_t addrlen, SSL_CTX *ctx,
                               const char *host, bool host_is_ip,
                               const struct conn_ops *ops, void *ud)
{
    int fd = socket(addr->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return NULL;
    if (src) {
        /* The port is picked at connect, per destination: a source address
         * then has the whole ephemeral range toward each server port. */
        int one = 1;
        setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof(one));
        if (bind(fd, src, srclen) < 0) {
            close(fd);
            return NULL;
        }
    }
    struct conn *c = conn_new(l, ops, ud);
    if (!c) {
        close(fd);
        return NULL;
    }
    tune_socket(fd);
    format_peer(c->peer, sizeof(c->peer), addr);
    if (ctx) {
        if (attach_tls(c, ctx, fd) < 0 ||
            (host && tls_client_set_host(c->ssl, host, host_is_ip) < 0)) {
            if (c->ssl)
                SSL_free(c->ssl);
            close(fd);
            discard(c);
            return NULL;
        }
        SSL_set_connect_state(c->ssl);
    }
    c->state = C_CONNECTING;
    if (loop_io_add(l, &c->io, fd, LOOP_WRITE, on_io) < 0) {
        if (c->ssl)
            SSL_free(c->ssl);
        close(fd);
        discard(c);
        return NULL;
    }
    if (connect(fd, addr, addrlen) < 0 && errno != EINPROGRESS) {
        /* Report through on_close like any other failure, but not from
         * inside this call: the caller has not stored c yet. */
        c->deferred_error = strerror(errno);
        if (loop_defer(l, deferred_fail, c) < 0)
            abort();
    }
    return c;
}

/* ---- control ---- */

static void deferred_resume(void *arg)
{
    struct conn *c = arg;
    c->resume_scheduled = false;
    if (c->state == C_OPEN && !c->read_paused)
        do_read(c);
}

void conn_pause_read(struct conn *c)
{
    if (c->state == C_CLOSED || c->read_paused)
        return;
    c->read_paused = true;
    update_interest(c);
}

void conn_resume_read(struct conn *c)
{
    if (c->state == C_CLOSED)
        return;
    if (c->in_read_cb)
        c->resumed_in_cb = true;
    c->read_paused = false;
    update_interest(c);
    /* Held bytes, or bytes OpenSSL already decrypted, will not wake epoll. */
    if (!c->resume_scheduled && c->state == C_OPEN &&
        (c->held || (c->ssl && SSL_has_pending(c->ssl)))) {
        if (loop_defer(c->loop, deferred_resume, c) == 0)
            c->resume_scheduled = true;
    }
}

void conn_shutdown_write(struct conn *c)
{
    if (c->state == C_CLOSED || c->shut_wr_wanted)
        return;
    c->shut_wr_wanted = true;
    if (c->state == C_OPEN)
        schedule_flush(c);
}

static void on_linger(struct loop_timer *t)
{
    struct conn *c = (struct conn *)((char *)t - offsetof(struct conn, linger));
    close_now(c);
}

void conn_close_after_flush(struct conn *c, uint64_t linger_ms)
{
    if (c->state == C_CLOSED || c->draining)
        return;
    bool queued = c->out_pending || c->enc_pending;
    if (c->state != C_OPEN && !queued) {
        close_now(c);
        return;
    }
    c->closing_after_flush = true;
    c->read_paused = true;
    loop_timer_start(c->loop, &c->linger, linger_ms, on_linger);
    /* Not connected yet: opened() flushes, then flush_done closes. */
    if (c->state == C_OPEN)
        schedule_flush(c);
}

void conn_close(struct conn *c)
{
    close_now(c);
}

size_t conn_live_count(void)
{
    return live_count;
}

void conn_close_all(void)
{
    while (live_head)
        close_now(live_head);
}

/* ---- accessors ---- */

struct loop *conn_loop(const struct conn *c) { return c->loop; }
void *conn_ud(const struct conn *c) { return c->ud; }
void conn_set_ud(struct conn *c, void *ud) { c->ud = ud; }
void conn_set_ops(struct conn *c, const struct conn_ops *ops) { c->ops = ops; }
int conn_fd(const struct conn *c) { return c->io.fd; }
bool conn_is_tls(const struct conn *c) { return c->ssl != NULL; }
const char *conn_peer(const struct conn *c) { return c->peer; }
size_t conn_out_pending(const struct conn *c) { return c->out_pending; }
void conn_set_high_water(struct conn *c, size_t bytes) { c->high_water = bytes; }
void conn_set_out_cap(struct conn *c, size_t bytes) { c->out_cap = bytes; }
void conn_set_write_stall(struct conn *c, uint64_t ms) { c->stall_ms = ms; }

size_t conn_buffered(const struct conn *c)
{
    return c->out_pending + c->enc_pending + (c->held_len - c->held_off);
}
