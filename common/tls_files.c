/*
 * tls_files: the file and PEM plumbing under drover's PKI (see tls.h).
 *
 * Owns the error texts, bounded reads of small files, atomic replacement
 * (write, fsync, rename, fsync the directory) and PEM encoding and decoding
 * of certificates and keys. tls.c decides what the files hold; this file
 * only moves bytes safely.
 */
#include "common/tls.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/tls_int.h"

#define TLS_FILE_CAP      (1024 * 1024) /* PEM certs and keys are a few KiB */

/* ---- errors ---- */

void tls_set_err(char *err, size_t errlen, const char *fmt, ...)
{
    if (!err || errlen == 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

/* "what: <OpenSSL's reason>", draining the error queue. */
void tls_set_ssl_err(char *err, size_t errlen, const char *what)
{
    char e[256];
    tls_set_err(err, errlen, "%s: %s", what, tls_last_error(e, sizeof(e)));
}

static void set_sys_err(char *err, size_t errlen, const char *what,
                        const char *path, int e)
{
    char buf[128];
    tls_set_err(err, errlen, "%s %s: %s", what, path, strerror_r(e, buf, sizeof(buf)));
}

/* ---- files ---- */

int tls_path_join(char *out, const char *dir, const char *name,
                  char *err, size_t errlen)
{
    int n = snprintf(out, TLS_PATH_CAP, "%s/%s", dir, name);
    if (n < 0 || (size_t)n >= TLS_PATH_CAP) {
        tls_set_err(err, errlen, "data directory path too long: %s", dir);
        return -1;
    }
    return 0;
}

/*
 * Reads a small regular file whole into a NUL-terminated malloc'd buffer.
 * 0, 1 if it does not exist, -1 with err naming the file.
 */
int tls_slurp(const char *path, char **buf, size_t *len, char *err, size_t errlen)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        int e = errno;
        if (e == ENOENT)
            return 1;
        set_sys_err(err, errlen, "cannot open", path, e);
        return -1;
    }
    int rc = -1;
    char *b = NULL;
    struct stat st;
    if (fstat(fd, &st) < 0) {
        set_sys_err(err, errlen, "cannot stat", path, errno);
        goto out;
    }
    if (!S_ISREG(st.st_mode) || st.st_size > TLS_FILE_CAP) {
        tls_set_err(err, errlen, "%s: not a regular file of at most %d bytes", path,
                    TLS_FILE_CAP);
        goto out;
    }
    size_t want = (size_t)st.st_size, got = 0;
    if (!(b = malloc(want + 1))) {
        tls_set_err(err, errlen, "%s: out of memory", path);
        goto out;
    }
    while (got < want) {
        ssize_t n = read(fd, b + got, want - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            set_sys_err(err, errlen, "cannot read", path, errno);
            goto out;
        }
        if (n == 0)
            break; /* shrank under us: what is there is all there is */
        got += (size_t)n;
    }
    b[got] = '\0';
    *buf = b;
    *len = got;
    b = NULL;
    rc = 0;
out:
    free(b);
    close(fd);
    return rc;
}

/* Frees a buffer that held a private key without leaving it in the heap. */
void tls_free_secret(char *p, size_t len)
{
    if (p)
        OPENSSL_cleanse(p, len);
    free(p);
}

static int write_all(int fd, const char *p, size_t len)
{
    while (len > 0) {
        ssize_t n = write(fd, p, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -1;
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

/* Makes the rename durable: without it a power cut can undo the rename. */
static void sync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
        (void)fsync(fd);
        close(fd);
    }
}

/*
 * Replaces path (inside dir) with data: write a temporary file beside it
 * created with the final mode, fsync, rename. Readers and crashes see the old
 * file or the new one, never a prefix. 0 or -1 with err naming path.
 */
int tls_write_atomic(const char *dir, const char *path, const void *data,
                     size_t len, mode_t mode, char *err, size_t errlen)
{
    char tmp[TLS_PATH_CAP + 32];
    int n = snprintf(tmp, sizeof(tmp), "%s.tmp.%ld", path, (long)getpid());
    if (n < 0 || (size_t)n >= sizeof(tmp)) {
        tls_set_err(err, errlen, "path too long: %s", path);
        return -1;
    }
    (void)unlink(tmp); /* left by a crashed process that had our pid */
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
    if (fd < 0) {
        set_sys_err(err, errlen, "cannot write", path, errno);
        return -1;
    }
    int e = 0;
    if (write_all(fd, data, len) < 0 || fsync(fd) < 0)
        e = errno;
    if (close(fd) < 0 && e == 0)
        e = errno;
    if (e == 0 && rename(tmp, path) < 0)
        e = errno;
    if (e != 0) {
        (void)unlink(tmp);
        set_sys_err(err, errlen, "cannot write", path, e);
        return -1;
    }
    sync_dir(dir);
    return 0;
}

int tls_ensure_dir(const char *dir, char *err, size_t errlen)
{
    if (mkdir(dir, 0700) == 0)
        return 0;
    int e = errno;
    struct stat st;
    if (e == EEXIST && stat(dir, &st) == 0 && S_ISDIR(st.st_mode))
        return 0;
    set_sys_err(err, errlen, "cannot create data directory", dir,
                e == EEXIST ? ENOTDIR : e);
    return -1;
}

/* ---- PEM ---- */

/* Copies a memory BIO's contents into a NUL-terminated malloc'd string. */
static char *bio_take(BIO *b, size_t *len)
{
    char *data;
    long n = BIO_get_mem_data(b, &data);
    if (n < 0)
        return NULL;
    char *p = malloc((size_t)n + 1);
    if (!p)
        return NULL;
    memcpy(p, data, (size_t)n);
    p[n] = '\0';
    *len = (size_t)n;
    return p;
}

char *tls_cert_pem(X509 *x, size_t *len)
{
    BIO *b = BIO_new(BIO_s_mem());
    char *p = NULL;
    if (b && PEM_write_bio_X509(b, x) == 1)
        p = bio_take(b, len);
    BIO_free(b);
    return p;
}

/* A secure-memory BIO so the key's PEM is wiped when the BIO is freed. */
char *tls_key_pem(EVP_PKEY *k, size_t *len)
{
    BIO *b = BIO_new(BIO_s_secmem());
    char *p = NULL;
    if (b && PEM_write_bio_PrivateKey(b, k, NULL, NULL, 0, NULL, NULL) == 1)
        p = bio_take(b, len);
    BIO_free(b);
    return p;
}

/*
 * Calls fn on every certificate of a PEM buffer in order (fn borrows it).
 * Returns how many there were, or -1 if one is damaged or fn failed: a chain
 * that silently stopped halfway would serve the wrong CA.
 */
int tls_pem_each_cert(const char *pem, size_t len,
                      int (*fn)(X509 *x, void *arg), void *arg)
{
    if (len > INT_MAX)
        return -1;
    BIO *b = BIO_new_mem_buf(pem, (int)len);
    if (!b)
        return -1;
    int n = 0;
    X509 *x;
    ERR_set_mark();
    while ((x = PEM_read_bio_X509(b, NULL, NULL, NULL)) != NULL) {
        int r = fn(x, arg);
        X509_free(x);
        if (r < 0) {
            n = -1;
            break;
        }
        n++;
    }
    unsigned long e = ERR_peek_last_error();
    bool clean_end = ERR_GET_LIB(e) == ERR_LIB_PEM &&
                     ERR_GET_REASON(e) == PEM_R_NO_START_LINE;
    if (n >= 0 && clean_end) {
        ERR_pop_to_mark(); /* "no more PEM blocks" is how a buffer ends */
    } else {
        ERR_clear_last_mark();
        n = -1;
    }
    BIO_free(b);
    return n;
}

static int take_first(X509 *x, void *arg)
{
    X509 **first = arg;
    if (!*first && X509_up_ref(x) == 1)
        *first = x;
    return 0;
}

X509 *tls_parse_cert(const char *pem, size_t len)
{
    X509 *x = NULL;
    if (tls_pem_each_cert(pem, len, take_first, &x) < 1) {
        X509_free(x);
        return NULL;
    }
    return x;
}

/* Loads the first certificate of a file. 0, 1 if missing, -1 with err. */
int tls_load_cert_file(const char *path, X509 **out, char *err, size_t errlen)
{
    char *pem = NULL;
    size_t len = 0;
    int r = tls_slurp(path, &pem, &len, err, errlen);
    if (r != 0)
        return r;
    *out = tls_parse_cert(pem, len);
    free(pem);
    if (!*out) {
        tls_set_err(err, errlen, "%s: not a valid PEM certificate", path);
        ERR_clear_error();
        return -1;
    }
    return 0;
}

/* Loads a PEM private key. 0, 1 if missing, -1 with err. */
int tls_load_key_file(const char *path, EVP_PKEY **out, char *err, size_t errlen)
{
    char *pem = NULL;
    size_t len = 0;
    int r = tls_slurp(path, &pem, &len, err, errlen);
    if (r != 0)
        return r;
    BIO *b = len <= INT_MAX ? BIO_new_mem_buf(pem, (int)len) : NULL;
    *out = b ? PEM_read_bio_PrivateKey(b, NULL, NULL, NULL) : NULL;
    BIO_free(b);
    tls_free_secret(pem, len);
    if (!*out) {
        tls_set_err(err, errlen, "%s: not a valid PEM private key", path);
        ERR_clear_error();
        return -1;
    }
    return 0;
}

int tls_file_read(const char *path, char **buf, size_t *len, char *err, size_t errlen)
{
    return tls_slurp(path, buf, len, err, errlen);
}

int tls_file_write(const char *dir, const char *path, const void *data, size_t len,
                   unsigned mode, char *err, size_t errlen)
{
    return tls_write_atomic(dir, path, data, len, (mode_t)mode, err, errlen);
}

