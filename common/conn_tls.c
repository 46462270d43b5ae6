/*
 * conn_tls: the TLS layer of a conn (see conn.h for the contract).
 *
 * Owns the SSL object's wiring (a socket BIO for reads, a queue BIO for
 * writes), the handshake, record reads and encrypting the plaintext queue
 * into the record queue. The conn's lifetime and queues stay with conn.c
 * and conn_out.c.
 */
#include "common/conn.h"

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/x509.h>
#include <pthread.h>
#include <stdio.h>

#include "common/conn_int.h"
#include "common/tls.h"

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

void conn_handshake(struct conn *c)
{
    ERR_clear_error();
    int r = SSL_do_handshake(c->ssl);
    int err = r == 1 ? SSL_ERROR_NONE : SSL_get_error(c->ssl, r);
    /* Whatever the handshake produced (even a fatal alert) goes out now. */
    if (!conn_flush_enc(c))
        return;
    if (r == 1) {
        conn_opened(c);
        return;
    }
    if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE) {
        conn_update_interest(c);
        return;
    }
    static __thread char why[300];
    if (err == SSL_ERROR_SYSCALL && ERR_peek_error() == 0)
        snprintf(why, sizeof(why), "TLS handshake: connection closed by peer");
    else
        tls_failure(c, why, sizeof(why));
    conn_fail(c, why);
}

/* conn.c's read_once for TLS: up to cap bytes of plaintext into buf. */
ssize_t conn_tls_read(struct conn *c, uint8_t *buf, size_t cap)
{
    /* SSL_read hands out one record (<= 16 KiB) per call; gather several so
     * the layers above see whole 64 KiB frames in place instead of copying
     * frames that straddle records. */
    size_t got = 0;
    int r = 0;
    while (got < cap) {
        ERR_clear_error();
        r = SSL_read(c->ssl, buf + got, (int)(cap - got));
        if (r <= 0)
            break;
        got += (size_t)r;
    }
    /* Reading can make TLS answer (session tickets, key updates). */
    if (c->enc_pending)
        conn_schedule_flush(c);
    if (got > 0)
        return (ssize_t)got;    /* an error or EOF shows again on the next call */
    int err = SSL_get_error(c->ssl, r);
    if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE)
        return 0;
    if (err == SSL_ERROR_ZERO_RETURN ||
        (err == SSL_ERROR_SYSCALL && ERR_peek_error() == 0)) {
        conn_got_eof(c);
        return -1;
    }
    static __thread char why[300];
    conn_fail(c, tls_failure(c, why, sizeof(why)));
    return -1;
}

/* TLS: turns plaintext into records (in enc, through the queue BIO) while
 * enc is short. 0, or -1 failed (*why). */
int conn_tls_encrypt(struct conn *c, const char **why)
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
        conn_queue_consume(&c->out_head, &c->out_tail, &c->out_pending, (size_t)r);
    }
    return 0;
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
    if (len < 0 || conn_queue_append(&c->enc_head, &c->enc_tail, &c->enc_pending, data,
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

int conn_attach_tls(struct conn *c, SSL_CTX *ctx, int fd)
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
