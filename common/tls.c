/*
 * tls: drover's PKI (a private CA and the serving certificate it signs) and
 * the OpenSSL contexts every connection is made from. See tls.h.
 *
 * The four files in data-dir are the only state; nothing here outlives a
 * call except the SSL_CTXs handed to the caller. The CA is the one thing that
 * must never change by accident, because every agent pins its checksum: a
 * damaged ca.crt or ca.key is an error for the operator, never a reason to
 * mint a new CA. The serving certificate is derived data and is re-issued
 * whenever it is missing, damaged, expiring, from another CA or short of a
 * name. Every file is replaced atomically so a crash leaves either the old or
 * the new file, never half a key.
 */
#include "common/tls.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define TLS_FILE_CAP      (1024 * 1024) /* PEM certs and keys are a few KiB */
#define TLS_PATH_CAP      4096          /* = sizeof(struct tls_pki).cert_file */
#define TLS_CA_DAYS       3650
#define TLS_SERVER_DAYS   365           /* well under the 825 days clients accept */
#define TLS_RENEW_DAYS    30
#define TLS_BACKDATE_SECS 3600          /* agents whose clocks lag a little */
#define TLS_HOST_MAX      253

/* Forward-secret AEAD only; TLS 1.3 keeps OpenSSL's default suites. */
static const char tls12_ciphers[] =
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
    "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305";
static const unsigned char alpn_http11[] = "\x08http/1.1";

/* Names every serving certificate carries, so local tools always work. */
static const char *const default_names[] = { "localhost", "127.0.0.1", "::1" };

struct pki_paths {
    char ca_crt[TLS_PATH_CAP], ca_key[TLS_PATH_CAP];
    char srv_crt[TLS_PATH_CAP], srv_key[TLS_PATH_CAP];
};

/* ---- errors ---- */

static void set_err(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void set_err(char *err, size_t errlen, const char *fmt, ...)
{
    if (!err || errlen == 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

/* "what: <OpenSSL's reason>", draining the error queue. */
static void set_ssl_err(char *err, size_t errlen, const char *what)
{
    char e[256];
    set_err(err, errlen, "%s: %s", what, tls_last_error(e, sizeof(e)));
}

static void set_sys_err(char *err, size_t errlen, const char *what,
                        const char *path, int e)
{
    char buf[128];
    set_err(err, errlen, "%s %s: %s", what, path, strerror_r(e, buf, sizeof(buf)));
}

/* ---- files ---- */

static int path_join(char *out, const char *dir, const char *name,
                     char *err, size_t errlen)
{
    int n = snprintf(out, TLS_PATH_CAP, "%s/%s", dir, name);
    if (n < 0 || (size_t)n >= TLS_PATH_CAP) {
        set_err(err, errlen, "data directory path too long: %s", dir);
        return -1;
    }
    return 0;
}

/*
 * Reads a small regular file whole into a NUL-terminated malloc'd buffer.
 * 0, 1 if it does not exist, -1 with err naming the file.
 */
static int slurp(const char *path, char **buf, size_t *len, char *err, size_t errlen)
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
        set_err(err, errlen, "%s: not a regular file of at most %d bytes", path,
                TLS_FILE_CAP);
        goto out;
    }
    size_t want = (size_t)st.st_size, got = 0;
    if (!(b = malloc(want + 1))) {
        set_err(err, errlen, "%s: out of memory", path);
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
static void free_secret(char *p, size_t len)
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
static int write_atomic(const char *dir, const char *path, const void *data,
                        size_t len, mode_t mode, char *err, size_t errlen)
{
    char tmp[TLS_PATH_CAP + 32];
    int n = snprintf(tmp, sizeof(tmp), "%s.tmp.%ld", path, (long)getpid());
    if (n < 0 || (size_t)n >= sizeof(tmp)) {
        set_err(err, errlen, "path too long: %s", path);
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

static int ensure_dir(const char *dir, char *err, size_t errlen)
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

static char *cert_pem(X509 *x, size_t *len)
{
    BIO *b = BIO_new(BIO_s_mem());
    char *p = NULL;
    if (b && PEM_write_bio_X509(b, x) == 1)
        p = bio_take(b, len);
    BIO_free(b);
    return p;
}

/* A secure-memory BIO so the key's PEM is wiped when the BIO is freed. */
static char *key_pem(EVP_PKEY *k, size_t *len)
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
static int pem_each_cert(const char *pem, size_t len,
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

static X509 *parse_cert(const char *pem, size_t len)
{
    X509 *x = NULL;
    if (pem_each_cert(pem, len, take_first, &x) < 1) {
        X509_free(x);
        return NULL;
    }
    return x;
}

/* Loads the first certificate of a file. 0, 1 if missing, -1 with err. */
static int load_cert_file(const char *path, X509 **out, char *err, size_t errlen)
{
    char *pem = NULL;
    size_t len = 0;
    int r = slurp(path, &pem, &len, err, errlen);
    if (r != 0)
        return r;
    *out = parse_cert(pem, len);
    free(pem);
    if (!*out) {
        set_err(err, errlen, "%s: not a valid PEM certificate", path);
        ERR_clear_error();
        return -1;
    }
    return 0;
}

/* Loads a PEM private key. 0, 1 if missing, -1 with err. */
static int load_key_file(const char *path, EVP_PKEY **out, char *err, size_t errlen)
{
    char *pem = NULL;
    size_t len = 0;
    int r = slurp(path, &pem, &len, err, errlen);
    if (r != 0)
        return r;
    BIO *b = len <= INT_MAX ? BIO_new_mem_buf(pem, (int)len) : NULL;
    *out = b ? PEM_read_bio_PrivateKey(b, NULL, NULL, NULL) : NULL;
    BIO_free(b);
    free_secret(pem, len);
    if (!*out) {
        set_err(err, errlen, "%s: not a valid PEM private key", path);
        ERR_clear_error();
        return -1;
    }
    return 0;
}

/* ---- issuing ---- */

static EVP_PKEY *gen_key(void)
{
    return EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
}

/* 16 random bytes with the top bit clear: positive, as RFC 5280 requires. */
static int set_serial(X509 *x)
{
    unsigned char raw[16];
    if (RAND_bytes(raw, sizeof(raw)) != 1)
        return -1;
    raw[0] &= 0x7f;
    raw[0] |= 0x01; /* never zero */
    BIGNUM *bn = BN_bin2bn(raw, sizeof(raw), NULL);
    int ok = bn && BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x)) != NULL;
    BN_free(bn);
    return ok ? 0 : -1;
}

/* A v3 certificate for key with subject O=drover, CN=cn, valid for days. */
static X509 *cert_start(EVP_PKEY *key, const char *cn, int days)
{
    X509 *x = X509_new();
    if (!x)
        return NULL;
    X509_NAME *name = X509_get_subject_name(x);
    if (X509_set_version(x, X509_VERSION_3) != 1 || set_serial(x) < 0 ||
        X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC,
                                   (const unsigned char *)"drover", -1, -1, 0) != 1 ||
        X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                                   (const unsigned char *)cn, -1, -1, 0) != 1 ||
        !X509_gmtime_adj(X509_getm_notBefore(x), -TLS_BACKDATE_SECS) ||
        !X509_time_adj_ex(X509_getm_notAfter(x), days, 0, NULL) ||
        X509_set_pubkey(x, key) != 1) {
        X509_free(x);
        return NULL;
    }
    return x;
}

/* Adds one extension written in openssl.cnf syntax (value is a constant). */
static int add_ext(X509 *x, X509 *issuer, int nid, const char *value)
{
    X509V3_CTX ctx;
    X509V3_set_ctx(&ctx, issuer, x, NULL, NULL, 0);
    X509_EXTENSION *ext = X509V3_EXT_nconf_nid(NULL, &ctx, nid, value);
    if (!ext)
        return -1;
    int ok = X509_add_ext(x, ext, -1);
    X509_EXTENSION_free(ext);
    return ok == 1 ? 0 : -1;
}

static X509 *issue_ca(EVP_PKEY *key)
{
    X509 *x = cert_start(key, "drover-ca", TLS_CA_DAYS);
    if (!x)
        return NULL;
    if (X509_set_issuer_name(x, X509_get_subject_name(x)) != 1 ||
        add_ext(x, x, NID_basic_constraints, "critical,CA:TRUE") < 0 ||
        add_ext(x, x, NID_key_usage, "critical,keyCertSign,cRLSign") < 0 ||
        add_ext(x, x, NID_subject_key_identifier, "hash") < 0 ||
        X509_sign(x, key, EVP_sha256()) <= 0) {
        X509_free(x);
        return NULL;
    }
    return x;
}

/* 4 or 16 if host is an IPv4 or IPv6 literal (bytes in ip), else 0. */
static int ip_literal(const char *host, unsigned char ip[16])
{
    if (inet_pton(AF_INET, host, ip) == 1)
        return 4;
    if (inet_pton(AF_INET6, host, ip) == 1)
        return 16;
    return 0;
}

/* Appends host as an IP or DNS SAN unless an equal one is there already.
 * Built by hand, not from a config string, so a host cannot inject SANs. */
static int push_san(GENERAL_NAMES *names, const char *host)
{
    unsigned char ip[16];
    int iplen = ip_literal(host, ip);
    ASN1_STRING *s = iplen ? ASN1_OCTET_STRING_new() : ASN1_IA5STRING_new();
    GENERAL_NAME *gn = GENERAL_NAME_new();
    if (!s || !gn ||
        ASN1_STRING_set(s, iplen ? (const void *)ip : (const void *)host,
                        iplen ? iplen : (int)strlen(host)) != 1) {
        ASN1_STRING_free(s);
        GENERAL_NAME_free(gn);
        return -1;
    }
    GENERAL_NAME_set0_value(gn, iplen ? GEN_IPADD : GEN_DNS, s);
    for (int i = 0; i < sk_GENERAL_NAME_num(names); i++) {
        if (GENERAL_NAME_cmp(sk_GENERAL_NAME_value(names, i), gn) == 0) {
            GENERAL_NAME_free(gn);
            return 0;
        }
    }
    if (sk_GENERAL_NAME_push(names, gn) <= 0) {
        GENERAL_NAME_free(gn);
        return -1;
    }
    return 0;
}

static int add_sans(X509 *x, const char *const *hosts, size_t nhosts)
{
    GENERAL_NAMES *names = sk_GENERAL_NAME_new_null();
    int rc = -1;
    if (!names)
        return -1;
    for (size_t i = 0; i < sizeof(default_names) / sizeof(default_names[0]); i++)
        if (push_san(names, default_names[i]) < 0)
            goto out;
    for (size_t i = 0; i < nhosts; i++)
        if (push_san(names, hosts[i]) < 0)
            goto out;
    if (X509_add1_ext_i2d(x, NID_subject_alt_name, names, 0, X509V3_ADD_DEFAULT) == 1)
        rc = 0;
out:
    GENERAL_NAMES_free(names);
    return rc;
}

static X509 *issue_server(EVP_PKEY *key, X509 *ca, EVP_PKEY *ca_key,
                          const char *const *hosts, size_t nhosts)
{
    X509 *x = cert_start(key, "drover-server", TLS_SERVER_DAYS);
    if (!x)
        return NULL;
    if (X509_set_issuer_name(x, X509_get_subject_name(ca)) != 1 ||
        add_ext(x, ca, NID_basic_constraints, "critical,CA:FALSE") < 0 ||
        add_ext(x, ca, NID_key_usage, "critical,digitalSignature") < 0 ||
        add_ext(x, ca, NID_ext_key_usage, "serverAuth") < 0 ||
        add_ext(x, ca, NID_subject_key_identifier, "hash") < 0 ||
        add_ext(x, ca, NID_authority_key_identifier, "keyid:always") < 0 ||
        add_sans(x, hosts, nhosts) < 0 ||
        X509_sign(x, ca_key, EVP_sha256()) <= 0) {
        X509_free(x);
        return NULL;
    }
    return x;
}

/* ---- the CA ---- */

/* Mints a CA: ca.key first, so a crash before ca.crt is written just means
 * the next start mints again (no agent can have pinned it yet). */
static int create_ca(const char *dir, const struct pki_paths *p,
                     char **ca_pem, size_t *ca_len, char *err, size_t errlen)
{
    int rc = -1;
    X509 *ca = NULL;
    char *kpem = NULL;
    size_t klen = 0;
    EVP_PKEY *key = gen_key();
    if (!key || !(ca = issue_ca(key)) || !(kpem = key_pem(key, &klen)) ||
        !(*ca_pem = cert_pem(ca, ca_len))) {
        set_ssl_err(err, errlen, "creating the CA");
        goto out;
    }
    if (write_atomic(dir, p->ca_key, kpem, klen, 0600, err, errlen) < 0 ||
        write_atomic(dir, p->ca_crt, *ca_pem, *ca_len, 0644, err, errlen) < 0) {
        free(*ca_pem);
        *ca_pem = NULL;
        goto out;
    }
    rc = 0;
out:
    free_secret(kpem, klen);
    X509_free(ca);
    EVP_PKEY_free(key);
    return rc;
}

/* Parses ca.crt's bytes and loads ca.key; both must be intact and match. */
static int open_ca(const struct pki_paths *p, const char *pem, size_t len,
                   X509 **ca, EVP_PKEY **key, char *err, size_t errlen)
{
    if (!(*ca = parse_cert(pem, len)) || X509_check_ca(*ca) == 0) {
        ERR_clear_error();
        set_err(err, errlen, "%s: not a valid CA certificate (agents pin it: "
                "restore it, or remove ca.crt and ca.key to start a new CA)",
                p->ca_crt);
        return -1;
    }
    int r = load_key_file(p->ca_key, key, err, errlen);
    if (r == 1)
        set_err(err, errlen, "%s: missing (it signs the serving certificate)",
                p->ca_key);
    if (r != 0)
        return -1;
    if (X509_check_private_key(*ca, *key) != 1) {
        ERR_clear_error();
        set_err(err, errlen, "%s does not match %s", p->ca_key, p->ca_crt);
        return -1;
    }
    return 0;
}

/* ---- the serving certificate ---- */

static bool covers(X509 *x, const char *host)
{
    unsigned char ip[16];
    if (ip_literal(host, ip))
        return X509_check_ip_asc(x, host, 0) == 1;
    return X509_check_host(x, host, strlen(host),
                           X509_CHECK_FLAG_NEVER_CHECK_SUBJECT |
                           X509_CHECK_FLAG_NO_WILDCARDS, NULL) == 1;
}

/* Whether the files on disk can keep serving: a matching key, signed by
 * this CA, more than TLS_RENEW_DAYS left, and every wanted name present. */
static bool server_usable(X509 *leaf, EVP_PKEY *key, X509 *ca,
                          const char *const *hosts, size_t nhosts)
{
    EVP_PKEY *ca_pub = X509_get0_pubkey(ca);
    time_t soon = time(NULL) + (time_t)TLS_RENEW_DAYS * 86400;
    bool ok = leaf && key && ca_pub && X509_check_private_key(leaf, key) == 1 &&
              X509_verify(leaf, ca_pub) == 1 &&
              X509_cmp_time(X509_get0_notAfter(leaf), &soon) == 1;
    for (size_t i = 0; ok && i < sizeof(default_names) / sizeof(default_names[0]); i++)
        ok = covers(leaf, default_names[i]);
    for (size_t i = 0; ok && i < nhosts; i++)
        ok = covers(leaf, hosts[i]);
    ERR_clear_error();
    return ok;
}

/* Issues server.crt (leaf + CA, so a client holding only the CA verifies
 * it). The existing server.key is kept when it is an EC key, so renewing
 * touches one file; a missing or damaged key is replaced first. */
static int issue_server_files(const char *dir, const struct pki_paths *p,
                              EVP_PKEY *key, X509 *ca, EVP_PKEY *ca_key,
                              const char *ca_pem, size_t ca_len,
                              const char *const *hosts, size_t nhosts,
                              char *err, size_t errlen)
{
    int rc = -1;
    EVP_PKEY *fresh = NULL;
    X509 *leaf = NULL;
    char *kpem = NULL, *cpem = NULL, *chain = NULL;
    size_t klen = 0, clen = 0;
    if (!key || !EVP_PKEY_is_a(key, "EC"))
        key = fresh = gen_key();
    if (!key || !(leaf = issue_server(key, ca, ca_key, hosts, nhosts)) ||
        !(cpem = cert_pem(leaf, &clen)) || (fresh && !(kpem = key_pem(key, &klen)))) {
        set_ssl_err(err, errlen, "issuing the serving certificate");
        goto out;
    }
    if (!(chain = malloc(clen + ca_len))) {
        set_err(err, errlen, "issuing the serving certificate: out of memory");
        goto out;
    }
    memcpy(chain, cpem, clen);
    memcpy(chain + clen, ca_pem, ca_len);
    if ((fresh && write_atomic(dir, p->srv_key, kpem, klen, 0600, err, errlen) < 0) ||
        write_atomic(dir, p->srv_crt, chain, clen + ca_len, 0644, err, errlen) < 0)
        goto out;
    rc = 0;
out:
    free(chain);
    free(cpem);
    free_secret(kpem, klen);
    X509_free(leaf);
    EVP_PKEY_free(fresh);
    return rc;
}

static int ensure_server(const char *dir, const struct pki_paths *p, X509 *ca,
                         EVP_PKEY *ca_key, const char *ca_pem, size_t ca_len,
                         const char *const *hosts, size_t nhosts,
                         char *err, size_t errlen)
{
    /* Damage here is not an error: the files are re-issued, and if the
     * directory cannot be written that failure is the one reported. */
    char ignored[256];
    X509 *leaf = NULL;
    EVP_PKEY *key = NULL;
    (void)load_cert_file(p->srv_crt, &leaf, ignored, sizeof(ignored));
    (void)load_key_file(p->srv_key, &key, ignored, sizeof(ignored));
    int rc = 0;
    if (!server_usable(leaf, key, ca, hosts, nhosts))
        rc = issue_server_files(dir, p, key, ca, ca_key, ca_pem, ca_len,
                                hosts, nhosts, err, errlen);
    X509_free(leaf);
    EVP_PKEY_free(key);
    return rc;
}

/* ---- PKI entry points ---- */

static int check_hosts(const char *const *hosts, size_t nhosts, char *err, size_t errlen)
{
    for (size_t i = 0; i < nhosts; i++) {
        const char *h = hosts[i];
        unsigned char ip[16];
        size_t len = h ? strlen(h) : 0;
        bool ok = len > 0 && len <= TLS_HOST_MAX;
        if (ok && !ip_literal(h, ip))
            ok = strspn(h, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                           "0123456789-._*") == len;
        if (!ok) {
            set_err(err, errlen, "TLS host \"%.64s\": not a DNS name or IP address",
                    h ? h : "");
            return -1;
        }
    }
    return 0;
}

static int pki_paths(struct pki_paths *p, const char *dir, char *err, size_t errlen)
{
    if (!dir || !*dir) {
        set_err(err, errlen, "no data directory given");
        return -1;
    }
    if (path_join(p->ca_crt, dir, "ca.crt", err, errlen) < 0 ||
        path_join(p->ca_key, dir, "ca.key", err, errlen) < 0 ||
        path_join(p->srv_crt, dir, "server.crt", err, errlen) < 0 ||
        path_join(p->srv_key, dir, "server.key", err, errlen) < 0)
        return -1;
    return 0;
}

static int sha256_hex(const void *data, size_t len, char out[65])
{
    static const char hex[] = "0123456789abcdef";
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    out[0] = '\0';
    if (EVP_Digest(data, len, md, &mdlen, EVP_sha256(), NULL) != 1 || mdlen != 32)
        return -1;
    for (unsigned int i = 0; i < 32; i++) {
        out[2 * i] = hex[md[i] >> 4];
        out[2 * i + 1] = hex[md[i] & 0x0f];
    }
    out[64] = '\0';
    return 0;
}

int tls_file_read(const char *path, char **buf, size_t *len, char *err, size_t errlen)
{
    return slurp(path, buf, len, err, errlen);
}

int tls_file_write(const char *dir, const char *path, const void *data, size_t len,
                   unsigned mode, char *err, size_t errlen)
{
    return write_atomic(dir, path, data, len, (mode_t)mode, err, errlen);
}

int tls_pki_ensure(const char *data_dir, const char *const *hosts, size_t nhosts,
                   struct tls_pki *out, char *err, size_t errlen)
{
    struct pki_paths p;
    X509 *ca = NULL;
    EVP_PKEY *ca_key = NULL;
    char *ca_pem = NULL;
    size_t ca_len = 0;
    int rc = -1;

    memset(out, 0, sizeof(*out));
    if (!hosts)
        nhosts = 0;
    if (check_hosts(hosts, nhosts, err, errlen) < 0 ||
        pki_paths(&p, data_dir, err, errlen) < 0 || ensure_dir(data_dir, err, errlen) < 0)
        goto out;
    int r = slurp(p.ca_crt, &ca_pem, &ca_len, err, errlen);
    if (r < 0 || (r == 1 && create_ca(data_dir, &p, &ca_pem, &ca_len, err, errlen) < 0))
        goto out;
    if (open_ca(&p, ca_pem, ca_len, &ca, &ca_key, err, errlen) < 0 ||
        ensure_server(data_dir, &p, ca, ca_key, ca_pem, ca_len, hosts, nhosts,
                      err, errlen) < 0)
        goto out;
    /* The checksum covers ca.crt's bytes exactly as /cacerts will serve them. */
    if (sha256_hex(ca_pem, ca_len, out->checksum) < 0) {
        set_ssl_err(err, errlen, "SHA-256");
        goto out;
    }
    memcpy(out->cert_file, p.srv_crt, sizeof(out->cert_file));
    memcpy(out->key_file, p.srv_key, sizeof(out->key_file));
    out->ca_pem = ca_pem;
    out->ca_pem_len = ca_len;
    ca_pem = NULL;
    rc = 0;
out:
    free(ca_pem);
    X509_free(ca);
    EVP_PKEY_free(ca_key);
    return rc;
}

struct chain_ends {
    X509 *first, *last;
};

static int take_ends(X509 *x, void *arg)
{
    struct chain_ends *c = arg;
    if (!c->first) {
        if (X509_up_ref(x) != 1)
            return -1;
        c->first = x;
    }
    if (X509_up_ref(x) != 1)
        return -1;
    X509_free(c->last);
    c->last = x;
    return 0;
}

static int copy_path(char dst[TLS_PATH_CAP], const char *src, char *err, size_t errlen)
{
    size_t n = src ? strlen(src) : 0;
    if (n == 0 || n >= TLS_PATH_CAP) {
        set_err(err, errlen, "TLS certificate or key path empty or too long");
        return -1;
    }
    memcpy(dst, src, n + 1);
    return 0;
}

int tls_pki_from_files(const char *cert_file, const char *key_file,
                       struct tls_pki *out, char *err, size_t errlen)
{
    struct chain_ends ends = { NULL, NULL };
    EVP_PKEY *key = NULL;
    char *pem = NULL;
    size_t len = 0;
    int rc = -1, r;

    memset(out, 0, sizeof(*out));
    if (copy_path(out->cert_file, cert_file, err, errlen) < 0 ||
        copy_path(out->key_file, key_file, err, errlen) < 0)
        goto out;
    if ((r = slurp(cert_file, &pem, &len, err, errlen)) == 1)
        set_err(err, errlen, "%s: no such file", cert_file);
    if (r != 0)
        goto out;
    if (pem_each_cert(pem, len, take_ends, &ends) < 1) {
        ERR_clear_error();
        set_err(err, errlen, "%s: not a valid PEM certificate chain", cert_file);
        goto out;
    }
    if ((r = load_key_file(key_file, &key, err, errlen)) == 1)
        set_err(err, errlen, "%s: no such file", key_file);
    if (r != 0)
        goto out;
    if (X509_check_private_key(ends.first, key) != 1) {
        ERR_clear_error();
        set_err(err, errlen, "%s does not match %s", key_file, cert_file);
        goto out;
    }
    if (!(out->ca_pem = cert_pem(ends.last, &out->ca_pem_len)) ||
        sha256_hex(out->ca_pem, out->ca_pem_len, out->checksum) < 0) {
        set_ssl_err(err, errlen, "encoding the CA certificate");
        goto out;
    }
    rc = 0;
out:
    if (rc < 0)
        tls_pki_free(out);
    free(pem);
    X509_free(ends.first);
    X509_free(ends.last);
    EVP_PKEY_free(key);
    return rc;
}

void tls_pki_free(struct tls_pki *p)
{
    if (!p)
        return;
    free(p->ca_pem);
    p->ca_pem = NULL;
    p->ca_pem_len = 0;
}

void tls_sha256_hex(const void *data, size_t len, char out[65])
{
    /* Fails only if OpenSSL cannot allocate; out is then "". */
    (void)sha256_hex(data, len, out);
}

/* ---- contexts ---- */

/* Settings every drover context shares, client or server. */
static SSL_CTX *ctx_new(const SSL_METHOD *method, char *err, size_t errlen)
{
    SSL_CTX *ctx = SSL_CTX_new(method);
    if (!ctx) {
        set_ssl_err(err, errlen, "SSL_CTX_new");
        return NULL;
    }
    if (SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) != 1 ||
        SSL_CTX_set_cipher_list(ctx, tls12_ciphers) != 1) {
        set_ssl_err(err, errlen, "TLS protocol settings");
        SSL_CTX_free(ctx);
        return NULL;
    }
    SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION);
    /* Idle tunnels hold no record buffers; conn may retry a write from a
     * different buffer address and accepts partial writes. */
    SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS | SSL_MODE_ENABLE_PARTIAL_WRITE |
                              SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    return ctx;
}

/*
 * Picks http/1.1 when offered. A client offering only other protocols (h2
 * alone) is refused outright rather than spoken to in a protocol it did not
 * ask for; a client offering no ALPN never gets here and is accepted.
 */
static int alpn_select(SSL *ssl, const unsigned char **out, unsigned char *outlen,
                       const unsigned char *in, unsigned int inlen, void *arg)
{
    (void)ssl;
    (void)arg;
    for (unsigned int i = 0; i < inlen;) {
        unsigned int n = in[i++];
        if (n > inlen - i)
            break;
        if (n == 8 && memcmp(in + i, "http/1.1", 8) == 0) {
            *out = in + i;
            *outlen = 8;
            return SSL_TLSEXT_ERR_OK;
        }
        i += n;
    }
    return SSL_TLSEXT_ERR_ALERT_FATAL;
}

SSL_CTX *tls_server_ctx(const char *cert_file, const char *key_file,
                        char *err, size_t errlen)
{
    SSL_CTX *ctx = ctx_new(TLS_server_method(), err, errlen);
    if (!ctx)
        return NULL;
    SSL_CTX_set_options(ctx, SSL_OP_CIPHER_SERVER_PREFERENCE);
    /* Agents hold one long-lived connection; a cache would only cost memory.
     * TLS 1.3 stateless tickets still allow resumption. */
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
    SSL_CTX_set_alpn_select_cb(ctx, alpn_select, NULL);
    if (SSL_CTX_use_certificate_chain_file(ctx, cert_file) != 1) {
        set_ssl_err(err, errlen, cert_file);
        goto fail;
    }
    if (SSL_CTX_use_PrivateKey_file(ctx, key_file, SSL_FILETYPE_PEM) != 1 ||
        SSL_CTX_check_private_key(ctx) != 1) {
        set_ssl_err(err, errlen, key_file);
        goto fail;
    }
    return ctx;
fail:
    SSL_CTX_free(ctx);
    return NULL;
}

static int store_add(X509 *x, void *arg)
{
    return X509_STORE_add_cert(arg, x) == 1 ? 0 : -1;
}

/* A client context offering http/1.1, verifying with store if given. */
static SSL_CTX *client_ctx(X509_STORE *store, char *err, size_t errlen)
{
    SSL_CTX *ctx = ctx_new(TLS_client_method(), err, errlen);
    if (!ctx) {
        X509_STORE_free(store);
        return NULL;
    }
    if (store) {
        SSL_CTX_set_cert_store(ctx, store); /* takes ownership */
        SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    } else {
        SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
    }
    /* set_alpn_protos returns 0 on success, unlike almost everything else. */
    if (SSL_CTX_set_alpn_protos(ctx, alpn_http11, sizeof(alpn_http11) - 1) != 0) {
        set_ssl_err(err, errlen, "ALPN");
        SSL_CTX_free(ctx);
        return NULL;
    }
    return ctx;
}

SSL_CTX *tls_client_ctx_pinned(const char *ca_pem, size_t len,
                               char *err, size_t errlen)
{
    X509_STORE *store = X509_STORE_new();
    if (!store) {
        set_ssl_err(err, errlen, "X509_STORE_new");
        return NULL;
    }
    if (!ca_pem || pem_each_cert(ca_pem, len, store_add, store) < 1) {
        ERR_clear_error();
        set_err(err, errlen, "pinned CA: no valid PEM certificate");
        X509_STORE_free(store);
        return NULL;
    }
    /* Whatever was pinned is a trust anchor, even an intermediate served by
     * an operator's chain: the pin is the trust decision, not a root store. */
    X509_STORE_set_flags(store, X509_V_FLAG_PARTIAL_CHAIN);
    return client_ctx(store, err, errlen);
}

SSL_CTX *tls_client_ctx_insecure(char *err, size_t errlen)
{
    return client_ctx(NULL, err, errlen);
}

int tls_client_set_host(SSL *ssl, const char *host, bool host_is_ip)
{
    unsigned char ip[16];
    char bare[64];
    if (!ssl || !host || !*host)
        return -1;
    size_t n = strlen(host);
    if (host[0] == '[' && host[n - 1] == ']' && n - 2 < sizeof(bare)) {
        memcpy(bare, host + 1, n - 2); /* "[::1]" as written in URLs */
        bare[n - 2] = '\0';
        host = bare;
        host_is_ip = true;
    }
    if (host_is_ip || ip_literal(host, ip)) {
        /* No SNI: RFC 6066 does not allow IP literals there. */
        return X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), host) == 1 ? 0 : -1;
    }
    SSL_set_hostflags(ssl, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
    if (SSL_set_tlsext_host_name(ssl, host) != 1 || SSL_set1_host(ssl, host) != 1)
        return -1;
    return 0;
}

const char *tls_last_error(char *buf, size_t len)
{
    unsigned long e, last = 0;
    while ((e = ERR_get_error()) != 0)
        last = e;
    if (!buf || len == 0)
        return "unknown TLS error";
    if (last == 0)
        snprintf(buf, len, "%s", "unknown TLS error");
    else
        ERR_error_string_n(last, buf, len);
    return buf;
}
