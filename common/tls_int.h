/*
 * tls_int: what the tls files share (tls.c, tls_ctx.c, tls_files.c): error
 * texts, the file and PEM helpers and IP literal detection. Not for code
 * outside common/tls*.c; the contract is tls.h.
 */
#ifndef DROVER_TLS_INT_H
#define DROVER_TLS_INT_H

#include <openssl/evp.h>
#include <openssl/x509.h>
#include <stddef.h>
#include <sys/types.h>

#define TLS_PATH_CAP      4096          /* = sizeof(struct tls_pki).cert_file */

/* Errors: formatted into err (which may be NULL). */
void tls_set_err(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* "what: <OpenSSL's reason>", draining the error queue. */
void tls_set_ssl_err(char *err, size_t errlen, const char *what);

/* Files (tls_files.c). */
/* dir/name into out (TLS_PATH_CAP bytes). 0 or -1 with err. */
int tls_path_join(char *out, const char *dir, const char *name,
                  char *err, size_t errlen);
/* A small regular file whole, NUL-terminated, malloc'd. 0, 1 if it does
 * not exist, -1 with err naming the file. */
int tls_slurp(const char *path, char **buf, size_t *len, char *err, size_t errlen);
/* Frees a buffer that held a private key without leaving it in the heap. */
void tls_free_secret(char *p, size_t len);
/* Replaces path (inside dir) atomically and durably. 0 or -1 with err. */
int tls_write_atomic(const char *dir, const char *path, const void *data,
                     size_t len, mode_t mode, char *err, size_t errlen);
int tls_ensure_dir(const char *dir, char *err, size_t errlen);

/* PEM (tls_files.c). Encoders return malloc'd NUL-terminated text. */
char *tls_cert_pem(X509 *x, size_t *len);
char *tls_key_pem(EVP_PKEY *k, size_t *len);
/* fn on every certificate of a PEM buffer; how many, or -1 if one is
 * damaged or fn failed. */
int tls_pem_each_cert(const char *pem, size_t len,
                      int (*fn)(X509 *x, void *arg), void *arg);
/* The first certificate of a PEM buffer (caller frees), or NULL. */
X509 *tls_parse_cert(const char *pem, size_t len);
/* The first certificate / the private key of a file. 0, 1 if missing, -1
 * with err. */
int tls_load_cert_file(const char *path, X509 **out, char *err, size_t errlen);
int tls_load_key_file(const char *path, EVP_PKEY **out, char *err, size_t errlen);

/* 4 or 16 if host is an IPv4 or IPv6 literal (bytes in ip), else 0 (tls.c). */
int tls_ip_literal(const char *host, unsigned char ip[16]);

#endif
