/*
 * conn: non-blocking TCP/TLS byte streams. See conn.h for the contract.
 *
 * This file owns a conn's lifetime (the per-thread list of live conns,
 * failing and closing, the lingering close), the read path and the epoll
 * event dispatch. The output queue is in conn_out.c, the TLS layer in
 * conn_tls.c, creating and connecting in conn_open.c; conn_int.h is what
 * they share.
 */
#include "common/conn.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/conn_int.h"

static __thread struct conn *live_head;
static __thread size_t live_count;

static __thread uint8_t read_buf[CONN_READ_CHUNK];

static void do_read(struct conn *c);

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

void conn_live_unlink(struct conn *c)
{
    if (c->live_prev)
        c->live_prev->live_next = c->live_next;
    else
        live_head = c->live_next;
    if (c->live_next)
        c->live_next->live_prev = c->live_prev;
    live_count--;
}

void conn_live_link(struct conn *c)
{
    c->live_next = live_head;
    if (live_head)
        live_head->live_prev = c;
    live_head = c;
    live_count++;
}

void conn_close_now(struct conn *c)
{
    if (c->state == C_CLOSED)
        return;
    c->state = C_CLOSED;
    conn_live_unlink(c);
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

void conn_fail(struct conn *c, const char *why)
{
    if (c->state == C_CLOSED)
        return;
    conn_close_now(c);
    if (c->ops->on_close && !c->closing_after_flush)
        c->ops->on_close(c, why);
}

void conn_update_interest(struct conn *c)
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

/* ---- reading ---- */

static void hold_rest(struct conn *c, const uint8_t *data, size_t len)
{
    c->held = malloc(len);
    if (!c->held) {
        conn_fail(c, "out of memory");
        return;
    }
    memcpy(c->held, data, len);
    c->held_off = 0;
    c->held_len = len;
    c->read_paused = true;
    conn_update_interest(c);
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

void conn_got_eof(struct conn *c)
{
    c->eof_seen = true;
    conn_update_interest(c);
    if (c->ops->on_eof)
        c->ops->on_eof(c);
    else
        conn_fail(c, "connection closed by peer");
}

/* One read attempt. >0 bytes, 0 would block, -1 EOF or failure handled. */
static ssize_t read_once(struct conn *c)
{
    if (c->ssl)
        return conn_tls_read(c, read_buf, sizeof(read_buf));
    ssize_t n = read(c->io.fd, read_buf, sizeof(read_buf));
    if (n > 0)
        return n;
    if (n == 0) {
        conn_got_eof(c);
        return -1;
    }
    if (errno == EAGAIN || errno == EINTR)
        return 0;
    conn_fail(c, strerror(errno));
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
        conn_update_interest(c);
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
    conn_update_interest(c);
}

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
    conn_update_interest(c);
}

void conn_resume_read(struct conn *c)
{
    if (c->state == C_CLOSED)
        return;
    if (c->in_read_cb)
        c->resumed_in_cb = true;
    c->read_paused = false;
    conn_update_interest(c);
    /* Held bytes, or bytes OpenSSL already decrypted, will not wake epoll. */
    if (!c->resume_scheduled && c->state == C_OPEN &&
        (c->held || (c->ssl && SSL_has_pending(c->ssl)))) {
        if (loop_defer(c->loop, deferred_resume, c) == 0)
            c->resume_scheduled = true;
    }
}

/* ---- closing ---- */

static void on_linger(struct loop_timer *t);

/*
 * A lingering close. close(2) on a socket with unread input makes Linux send
 * RST, and the peer then loses whatever of ours it had not read yet. So send
 * FIN, read and discard until the peer closes too (or the linger time runs
 * out), and only then close.
 */
void conn_start_drain(struct conn *c)
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
        conn_close_now(c);   /* EOF or error: the peer is done */
        return;
    }
}

void conn_shutdown_write(struct conn *c)
{
    if (c->state == C_CLOSED || c->shut_wr_wanted)
        return;
    c->shut_wr_wanted = true;
    if (c->state == C_OPEN)
        conn_schedule_flush(c);
}

static void on_linger(struct loop_timer *t)
{
    struct conn *c = (struct conn *)((char *)t - offsetof(struct conn, linger));
    conn_close_now(c);
}

void conn_close_after_flush(struct conn *c, uint64_t linger_ms)
{
    if (c->state == C_CLOSED || c->draining)
        return;
    bool queued = c->out_pending || c->enc_pending;
    if (c->state != C_OPEN && !queued) {
        conn_close_now(c);
        return;
    }
    c->closing_after_flush = true;
    c->read_paused = true;
    loop_timer_start(c->loop, &c->linger, linger_ms, on_linger);
    /* Not connected yet: conn_opened() flushes, then flush_done closes. */
    if (c->state == C_OPEN)
        conn_schedule_flush(c);
}

void conn_close(struct conn *c)
{
    conn_close_now(c);
}

size_t conn_live_count(void)
{
    return live_count;
}

void conn_close_all(void)
{
    while (live_head)
        conn_close_now(live_head);
}

/* ---- events ---- */

void conn_on_io(struct loop_io *io, unsigned events)
{
    struct conn *c = (struct conn *)((char *)io - offsetof(struct conn, io));
    if (c->draining) {
        drain_input(c);
        return;
    }
    switch (c->state) {
    case C_CONNECTING:
        conn_finish_connect(c);
        return;
    case C_HANDSHAKE:
        if ((events & LOOP_WRITE) && !conn_flush_enc(c))
            return;
        conn_handshake(c);
        return;
    case C_OPEN:
        break;
    case C_CLOSED:
        return;
    }
    if ((events & LOOP_WRITE) || ((events & LOOP_READ) && c->tls_write_wants_read))
        conn_flush(c);
    if (c->state == C_OPEN && (events & LOOP_READ))
        do_read(c);
    /* epoll repeats a hang-up for as long as the socket is registered. */
    if (c->state == C_OPEN && (events & LOOP_HUP)) {
        if (c->eof_seen && c->out_pending == 0)
            conn_fail(c, "connection closed by peer");
        else if (c->read_paused && !c->eof_seen)
            loop_io_park(c->loop, &c->io);  /* unread data stays readable */
    }
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
