/*
 * tls: drover's PKI and OpenSSL contexts.
 *
 * The server generates, on first start, an EC P-256 CA and a serving
 * certificate signed by it in data-dir (or uses tls-cert/tls-key). Agents pin
 * the CA by checksum: lowercase hex SHA-256 of the CA PEM that /cacerts serves.
 * Contexts allow TLS 1.2+ only with forward-secret AEAD ciphers and release
 * idle buffers (SSL_MODE_RELEASE_BUFFERS) so idle tunnels stay small.
 */
#ifndef DROVER_TLS_H
#define DROVER_TLS_H

#include <openssl/ssl.h>
#include <stdbool.h>
#include <stddef.h>

struct tls_pki {
    char *ca_pem;           /* what /cacerts serves (caller frees with tls_pki_free) */
    size_t ca_pem_len;
    char checksum[65];      /* hex SHA-256 of ca_pem */
    char cert_file[4096];   /* serving certificate chain (PEM) */
    char key_file[4096];    /* its private key (PEM) */
};

/*
 * Makes sure data_dir holds ca.crt, ca.key, server.crt, server.key (keys
 * 0600), creating what is missing. The serving certificate is re-issued by the
 * same CA (so the checksum does not change) when it is missing, expires within
 * 30 days, or does not cover every name in hosts (DNS names or IP literals;
 * "localhost" and 127.0.0.1 are always included). Returns 0, or -1 with a
 * message in err.
 */
int tls_pki_ensure(const char *data_dir, const char *const *hosts, size_t nhosts,
                   struct tls_pki *out, char *err, size_t errlen);

/*
 * Uses an operator's certificate and key instead. /cacerts then serves the
 * last certificate of cert_file's chain (the issuing CA; the certificate
 * itself if it stands alone). 0 or -1 with err.
 */
int tls_pki_from_files(const char *cert_file, const char *key_file,
                       struct tls_pki *out, char *err, size_t errlen);
void tls_pki_free(struct tls_pki *p);

/* For keeping a CA shared by replicas in data-dir: reads a PEM file
 * (malloc'd, NUL-terminated; 1 if it does not exist), and replaces one
 * atomically with mode. 0 or -1 with err. */
int tls_file_read(const char *path, char **buf, size_t *len, char *err, size_t errlen);
int tls_file_write(const char *dir, const char *path, const void *data, size_t len,
                   unsigned mode, char *err, size_t errlen);

/* out: 64 hex characters and a NUL. */
void tls_sha256_hex(const void *data, size_t len, char out[65]);

/* A server context for cert/key: TLS 1.2+, modern ciphers, ALPN http/1.1.
 * NULL with err on failure. */
SSL_CTX *tls_server_ctx(const char *cert_file, const char *key_file,
                        char *err, size_t errlen);

/* A client context that trusts only the given CA PEM. NULL with err. */
SSL_CTX *tls_client_ctx_pinned(const char *ca_pem, size_t len,
                               char *err, size_t errlen);

/* A client context that verifies nothing: only for fetching /cacerts before
 * the checksum is compared, and for --insecure. */
SSL_CTX *tls_client_ctx_insecure(char *err, size_t errlen);

/* Sets SNI (for DNS names) and the name or IP the peer certificate must
 * match on a client SSL. 0 or -1. */
int tls_client_set_host(SSL *ssl, const char *host, bool host_is_ip);

/* The last OpenSSL error queue entry as text (and clears the queue). */
const char *tls_last_error(char *buf, size_t len);

#endif
