/*
 * rawws: a deliberately dumb, blocking websocket client for tests that must
 * send what a real agent never would (malformed frames, wrong credentials)
 * and see exactly how the server answers.
 */
#ifndef DROVER_TEST_RAWWS_H
#define DROVER_TEST_RAWWS_H

#include <openssl/ssl.h>
#include <stddef.h>
#include <stdint.h>

struct rawws {
    int fd;
    SSL_CTX *ctx;
    SSL *ssl;
    int status;         /* HTTP status of the upgrade answer */
};

/* Connects over TLS to 127.0.0.1:port and sends the upgrade for /v3/connect
 * with the given token and cluster. Returns 0 if an answer head arrived
 * (status set), -1 otherwise. */
int rawws_open(struct rawws *w, int port, const char *token, const char *cluster);
/* Sends one masked websocket frame with payload p. 0 or -1. */
int rawws_send(struct rawws *w, uint8_t opcode, const void *p, size_t len);
/* Reads frames until a close frame arrives (returns its code), the
 * connection ends (returns 0) or timeout_ms passes (-1). */
int rawws_wait_close(struct rawws *w, int timeout_ms, char *reason, size_t cap);
/* Reads the next websocket frame (opcode and payload of at most cap bytes).
 * 1, 0 if the connection ended (or the frame is too big), -1 on timeout. */
int rawws_recv(struct rawws *w, int timeout_ms, uint8_t *opcode, uint8_t *buf, size_t cap,
               size_t *len);
void rawws_free(struct rawws *w);

#endif
