/*
 * conn_int: what the conn files share (conn.c, conn_out.c, conn_tls.c,
 * conn_open.c): the conn struct, its output chunks and the steps one file
 * calls in another. Not for code outside common/conn*.c; the contract is
 * conn.h.
 */
#ifndef DROVER_CONN_INT_H
#define DROVER_CONN_INT_H

#include <openssl/ssl.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "common/conn.h"
#include "common/loop.h"

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

/* conn.c: lifetime and reading */
void conn_live_link(struct conn *c);
void conn_live_unlink(struct conn *c);
/* Closes without callbacks; the memory goes after the loop batch. */
void conn_close_now(struct conn *c);
/* Closes and tells the owner why (on_close), unless it closed already. */
void conn_fail(struct conn *c, const char *why);
void conn_update_interest(struct conn *c);
void conn_got_eof(struct conn *c);
void conn_on_io(struct loop_io *io, unsigned events);
/* Lingering close: FIN sent, input read and dropped until the peer closes. */
void conn_start_drain(struct conn *c);

/* conn_out.c: the output queues */
/* Appends len bytes at the tail of a chunk queue. 0 or -1 (ENOMEM). */
int conn_queue_append(struct out_chunk **head, struct out_chunk **tail, size_t *pending,
                      const void *data, size_t len);
/* Drops n sent bytes from the front of a queue. */
void conn_queue_consume(struct out_chunk **head, struct out_chunk **tail, size_t *pending,
                        size_t n);
void conn_flush(struct conn *c);
void conn_schedule_flush(struct conn *c);
/* Sends what TLS produced. false if the conn failed. */
bool conn_flush_enc(struct conn *c);

/* conn_tls.c: the TLS layer */
int conn_attach_tls(struct conn *c, SSL_CTX *ctx, int fd);
void conn_handshake(struct conn *c);
/* Reads plaintext into buf: >0 bytes, 0 would block, -1 EOF or failure
 * handled (the conn is then closed or saw EOF). */
ssize_t conn_tls_read(struct conn *c, uint8_t *buf, size_t cap);
/* Turns queued plaintext into records while the record queue is short.
 * 0, or -1 failed (*why). */
int conn_tls_encrypt(struct conn *c, const char **why);

/* conn_open.c: connecting */
void conn_finish_connect(struct conn *c);
/* Connected (and TLS done): tells the owner and starts the flow. */
void conn_opened(struct conn *c);

#endif
