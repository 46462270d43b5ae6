/*
 * Tests for common/tls*.c: the PKI files in a data directory (creation,
 * reuse, re-issue, damage), operator-supplied certificates, and real
 * handshakes between the contexts over a non-blocking socketpair driven from
 * one thread, so a stuck peer ends the loop instead of hanging the test.
 */
#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <arpa/inet.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/tls.h"

static const char *const pki_files[] = { "ca.crt", "ca.key", "server.crt", "server.key" };

/* ---- helpers ---- */

static void make_tmpdir(char dir[64])
{
    snprintf(dir, 64, "/tmp/drover-tls-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(dir));
}

static void path_of(char *out, size_t cap, const char *dir, const char *name)
{
    int n = snprintf(out, cap, "%s/%s", dir, name);
    ck_assert(n > 0 && (size_t)n < cap);
}

/* Removes a directory tree of files and subdirectories (test dirs only). */
static void rm_tree(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d) {
        unlink(dir);
        return;
    }
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        char p[512];
        path_of(p, sizeof(p), dir, e->d_name);
        struct stat st;
        if (lstat(p, &st) == 0 && S_ISDIR(st.st_mode))
            rm_tree(p);
        else
            unlink(p);
    }
    closedir(d);
    rmdir(dir);
}

/* The whole file, NUL-terminated; NULL if it cannot be read. */
static char *read_file(const char *dir, const char *name, size_t *len)
{
    char p[512];
    path_of(p, sizeof(p), dir, name);
    FILE *f = fopen(p, "rb");
    if (!f)
        return NULL;
    char *buf = NULL;
    size_t cap = 0, used = 0;
    for (;;) {
        if (cap - used < 4096) {
            cap = cap ? cap * 2 : 8192;
            buf = realloc(buf, cap + 1);
            ck_assert_ptr_nonnull(buf);
        }
        size_t n = fread(buf + used, 1, cap - used, f);
        used += n;
        if (n == 0)
            break;
    }
    fclose(f);
    buf[used] = '\0';
    *len = used;
    return buf;
}

static void write_file(const char *dir, const char *name, const void *data, size_t len)
{
    char p[512];
    path_of(p, sizeof(p), dir, name);
    FILE *f = fopen(p, "wb");
    ck_assert_ptr_nonnull(f);
    ck_assert_uint_eq(fwrite(data, 1, len, f), len);
    ck_assert_int_eq(fclose(f), 0);
}

static bool file_equals(const char *dir, const char *name, const char *want, size_t wlen)
{
    size_t len;
    char *got = read_file(dir, name, &len);
    bool eq = got && len == wlen && memcmp(got, want, len) == 0;
    free(got);
    return eq;
}

/* Copies of all four files, to prove which ones a call rewrote. */
struct snapshot {
    char *data[4];
    size_t len[4];
};

static void snap(const char *dir, struct snapshot *s)
{
    for (int i = 0; i < 4; i++) {
        s->data[i] = read_file(dir, pki_files[i], &s->len[i]);
        ck_assert_ptr_nonnull(s->data[i]);
    }
}

static bool snap_same(const char *dir, const struct snapshot *s, int i)
{
    return file_equals(dir, pki_files[i], s->data[i], s->len[i]);
}

static void snap_free(struct snapshot *s)
{
    for (int i = 0; i < 4; i++)
        free(s->data[i]);
}

/* SHA-256 computed here, independently of tls_sha256_hex. */
static void digest_hex(const void *data, size_t len, char out[65])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    ck_assert_int_eq(EVP_Digest(data, len, md, &mdlen, EVP_sha256(), NULL), 1);
    ck_assert_uint_eq(mdlen, 32);
    for (unsigned i = 0; i < 32; i++)
        snprintf(out + 2 * i, 3, "%02x", md[i]);
}

static X509 *pem_cert_at(const char *pem, size_t len, int index)
{
    BIO *b = BIO_new_mem_buf(pem, (int)len);
    X509 *x = NULL;
    for (int i = 0; i <= index; i++) {
        X509_free(x);
        x = PEM_read_bio_X509(b, NULL, NULL, NULL);
        if (!x)
            break;
    }
    BIO_free(b);
    ERR_clear_error();
    return x;
}

static X509 *file_cert(const char *dir, const char *name, int index)
{
    size_t len;
    char *pem = read_file(dir, name, &len);
    ck_assert_ptr_nonnull(pem);
    X509 *x = pem_cert_at(pem, len, index);
    free(pem);
    return x;
}

static EVP_PKEY *file_key(const char *dir, const char *name)
{
    char p[512];
    path_of(p, sizeof(p), dir, name);
    FILE *f = fopen(p, "r");
    ck_assert_ptr_nonnull(f);
    EVP_PKEY *k = PEM_read_PrivateKey(f, NULL, NULL, NULL);
    fclose(f);
    ck_assert_ptr_nonnull(k);
    return k;
}

static bool has_san(X509 *x, int type, const void *val, size_t len)
{
    GENERAL_NAMES *names = X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL);
    bool found = false;
    for (int i = 0; names && i < sk_GENERAL_NAME_num(names); i++) {
        GENERAL_NAME *gn = sk_GENERAL_NAME_value(names, i);
        int t;
        ASN1_STRING *s = GENERAL_NAME_get0_value(gn, &t);
        if (t == type && (size_t)ASN1_STRING_length(s) == len &&
            memcmp(ASN1_STRING_get0_data(s), val, len) == 0)
            found = true;
    }
    GENERAL_NAMES_free(names);
    return found;
}

static bool has_dns(X509 *x, const char *name)
{
    return has_san(x, GEN_DNS, name, strlen(name));
}

static bool has_ip(X509 *x, const char *ip)
{
    unsigned char b[16];
    if (inet_pton(AF_INET, ip, b) == 1)
        return has_san(x, GEN_IPADD, b, 4);
    ck_assert_int_eq(inet_pton(AF_INET6, ip, b), 1);
    return has_san(x, GEN_IPADD, b, 16);
}

/* Days from now until the certificate expires. */
static int days_left(X509 *x)
{
    int days = 0, secs = 0;
    ck_assert_int_eq(ASN1_TIME_diff(&days, &secs, NULL, X509_get0_notAfter(x)), 1);
    return days;
}

static void ensure_ok(const char *dir, const char *const *hosts, size_t n,
                      struct tls_pki *pki)
{
    char err[512] = "";
    int rc = tls_pki_ensure(dir, hosts, n, pki, err, sizeof(err));
    ck_assert_msg(rc == 0, "tls_pki_ensure: %s", err);
}

/* ---- handshakes ---- */

struct hs {
    bool client_ok, server_ok;
    long verify;                /* client's verify result */
    int server_reason;          /* ERR_GET_REASON of the server's failure */
    char alpn[16];
};

typedef void (*tweak_fn)(SSL *client);

/* One step of a non-blocking handshake: 1 done, 0 wants more, -1 failed. */
static int hs_step(SSL *ssl, bool *done, int *reason)
{
    if (*done)
        return 1;
    int r = SSL_do_handshake(ssl);
    if (r == 1) {
        *done = true;
        return 1;
    }
    int e = SSL_get_error(ssl, r);
    if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
        return 0;
    if (reason)
        *reason = ERR_GET_REASON(ERR_peek_last_error());
    ERR_clear_error();
    return -1;
}

/* Both sides of a handshake over a socketpair, then one message each way
 * checked. The step cap ends the loop if a side waits for nothing. */
static void handshake(SSL_CTX *sctx, SSL_CTX *cctx, const char *host, bool is_ip,
                      tweak_fn tweak, struct hs *res)
{
    int sv[2];
    memset(res, 0, sizeof(*res));
    ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv), 0);
    SSL *s = SSL_new(sctx), *c = SSL_new(cctx);
    ck_assert(s && c);
    ck_assert_int_eq(SSL_set_fd(s, sv[0]), 1);
    ck_assert_int_eq(SSL_set_fd(c, sv[1]), 1);
    SSL_set_accept_state(s);
    SSL_set_connect_state(c);
    if (host)
        ck_assert_int_eq(tls_client_set_host(c, host, is_ip), 0);
    if (tweak)
        tweak(c);
    bool cdone = false, sdone = false;
    int cr = 0, sr = 0;
    for (int i = 0; i < 1000 && cr >= 0 && sr >= 0 && !(cdone && sdone); i++) {
        cr = hs_step(c, &cdone, NULL);
        if (cr >= 0)
            sr = hs_step(s, &sdone, &res->server_reason);
    }
    res->verify = SSL_get_verify_result(c);
    if (cdone && sdone) {
        const unsigned char *p;
        unsigned int n;
        SSL_get0_alpn_selected(c, &p, &n);
        if (n > 0 && n < sizeof(res->alpn))
            memcpy(res->alpn, p, n);
        char buf[8] = "";
        ck_assert_int_eq(SSL_write(c, "ping", 4), 4);
        ck_assert_int_eq(SSL_read(s, buf, sizeof(buf)), 4);
        ck_assert_int_eq(SSL_write(s, "pong", 4), 4);
        int got = -1;
        for (int i = 0; i < 10 && got <= 0; i++)  /* TLS 1.3 tickets come first */
            got = SSL_read(c, buf, sizeof(buf));
        ck_assert_int_eq(got, 4);
        ck_assert(memcmp(buf, "pong", 4) == 0);
    }
    res->client_ok = cdone && cr >= 0;
    res->server_ok = sdone && sr >= 0;
    ERR_clear_error();
    SSL_free(s);
    SSL_free(c);
    close(sv[0]);
    close(sv[1]);
}

/* A PKI in a fresh directory with its server context, for handshake tests. */
struct fixture {
    char dir[64];
    struct tls_pki pki;
    SSL_CTX *sctx;
};

static void fixture_init(struct fixture *f)
{
    char err[512] = "";
    make_tmpdir(f->dir);
    ensure_ok(f->dir, NULL, 0, &f->pki);
    f->sctx = tls_server_ctx(f->pki.cert_file, f->pki.key_file, err, sizeof(err));
    ck_assert_msg(f->sctx != NULL, "tls_server_ctx: %s", err);
}

static void fixture_free(struct fixture *f)
{
    SSL_CTX_free(f->sctx);
    tls_pki_free(&f->pki);
    rm_tree(f->dir);
}

static SSL_CTX *pinned(const struct tls_pki *pki)
{
    char err[512] = "";
    SSL_CTX *c = tls_client_ctx_pinned(pki->ca_pem, pki->ca_pem_len, err, sizeof(err));
    ck_assert_msg(c != NULL, "tls_client_ctx_pinned: %s", err);
    return c;
}

/* ---- PKI in a data directory ---- */

START_TEST(first_run_creates_files)
{
    char dir[64], sub[128], err[512] = "";
    struct tls_pki pki;
    make_tmpdir(dir);
    path_of(sub, sizeof(sub), dir, "data");
    ck_assert_int_eq(tls_pki_ensure(sub, NULL, 0, &pki, err, sizeof(err)), 0);

    struct stat st;
    ck_assert_int_eq(stat(sub, &st), 0);
    ck_assert_uint_eq(st.st_mode & 0777, 0700);
    for (int i = 0; i < 4; i++) {
        char p[256];
        path_of(p, sizeof(p), sub, pki_files[i]);
        ck_assert_msg(stat(p, &st) == 0, "%s missing", p);
        if (strstr(pki_files[i], ".key"))
            ck_assert_uint_eq(st.st_mode & 0777, 0600);
    }
    size_t len;
    char *ca_pem = read_file(sub, "ca.crt", &len), hex[65];
    digest_hex(ca_pem, len, hex);
    ck_assert_str_eq(pki.checksum, hex);
    ck_assert_uint_eq(pki.ca_pem_len, len);
    ck_assert(memcmp(pki.ca_pem, ca_pem, len) == 0);
    char want[256];
    path_of(want, sizeof(want), sub, "server.crt");
    ck_assert_str_eq(pki.cert_file, want);
    path_of(want, sizeof(want), sub, "server.key");
    ck_assert_str_eq(pki.key_file, want);
    free(ca_pem);
    tls_pki_free(&pki);
    tls_pki_free(&pki); /* idempotent */
    tls_pki_free(NULL);
    rm_tree(dir);
}
END_TEST

START_TEST(certificates_have_the_right_shape)
{
    char dir[64];
    struct tls_pki pki;
    make_tmpdir(dir);
    ensure_ok(dir, NULL, 0, &pki);
    X509 *ca = file_cert(dir, "ca.crt", 0), *leaf = file_cert(dir, "server.crt", 0);
    X509 *chained = file_cert(dir, "server.crt", 1), *third = file_cert(dir, "server.crt", 2);
    ck_assert(ca && leaf && chained);
    ck_assert_ptr_null(third);
    ck_assert_int_eq(X509_cmp(ca, chained), 0);
    ck_assert_int_eq(X509_check_ca(ca), 1);
    ck_assert_int_eq(X509_check_ca(leaf), 0);
    ck_assert_int_gt(days_left(ca), 3600);
    ck_assert_int_gt(days_left(leaf), 300);
    ck_assert_int_le(days_left(leaf), 825);
    ck_assert(has_dns(leaf, "localhost") && has_ip(leaf, "127.0.0.1") && has_ip(leaf, "::1"));
    const ASN1_INTEGER *serial = X509_get0_serialNumber(ca);
    ck_assert_int_eq(ASN1_STRING_type(serial), V_ASN1_INTEGER); /* positive */
    ck_assert_int_ge(ASN1_STRING_length(serial), 15);

    /* The leaf verifies as a TLS server certificate with only the CA trusted. */
    X509_STORE *store = X509_STORE_new();
    X509_STORE_CTX *vctx = X509_STORE_CTX_new();
    ck_assert_int_eq(X509_STORE_add_cert(store, ca), 1);
    ck_assert_int_eq(X509_STORE_CTX_init(vctx, store, leaf, NULL), 1);
    X509_STORE_CTX_set_purpose(vctx, X509_PURPOSE_SSL_SERVER);
    ck_assert_msg(X509_verify_cert(vctx) == 1, "verify: %s",
                  X509_verify_cert_error_string(X509_STORE_CTX_get_error(vctx)));
    X509_STORE_CTX_free(vctx);
    X509_STORE_free(store);
    X509_free(ca);
    X509_free(leaf);
    X509_free(chained);
    tls_pki_free(&pki);
    rm_tree(dir);
}
END_TEST

START_TEST(second_run_reuses_files)
{
    char dir[64];
    struct tls_pki a, b;
    struct snapshot s;
    make_tmpdir(dir);
    ensure_ok(dir, NULL, 0, &a);
    snap(dir, &s);
    ensure_ok(dir, NULL, 0, &b);
    ck_assert_str_eq(a.checksum, b.checksum);
    for (int i = 0; i < 4; i++)
        ck_assert_msg(snap_same(dir, &s, i), "%s rewritten", pki_files[i]);
    snap_free(&s);
    tls_pki_free(&a);
    tls_pki_free(&b);
    rm_tree(dir);
}
END_TEST

START_TEST(new_host_reissues_only_server_crt)
{
    char dir[64];
    struct tls_pki a, b, c;
    struct snapshot s;
    const char *hosts[] = { "drover.example.com", "10.1.2.3", "fd00::5" };
    make_tmpdir(dir);
    ensure_ok(dir, hosts, 1, &a);
    snap(dir, &s);
    ensure_ok(dir, hosts, 3, &b);
    ck_assert_str_eq(a.checksum, b.checksum);
    ck_assert(snap_same(dir, &s, 0) && snap_same(dir, &s, 1) && snap_same(dir, &s, 3));
    ck_assert(!snap_same(dir, &s, 2));
    X509 *leaf = file_cert(dir, "server.crt", 0);
    ck_assert(has_dns(leaf, "drover.example.com"));
    ck_assert(has_ip(leaf, "10.1.2.3") && has_ip(leaf, "fd00::5"));
    ck_assert(!has_dns(leaf, "10.1.2.3")); /* an IP literal is not a DNS name */
    ck_assert(has_dns(leaf, "localhost") && has_ip(leaf, "127.0.0.1"));
    X509_free(leaf);
    snap_free(&s);

    /* The same names again, in another order: nothing changes. */
    const char *again[] = { "fd00::5", "drover.example.com", "10.1.2.3", "localhost" };
    snap(dir, &s);
    ensure_ok(dir, again, 4, &c);
    for (int i = 0; i < 4; i++)
        ck_assert(snap_same(dir, &s, i));
    snap_free(&s);
    tls_pki_free(&a);
    tls_pki_free(&b);
    tls_pki_free(&c);
    rm_tree(dir);
}
END_TEST

/* Replaces server.crt with one from the same CA and key that expires in
 * ten days, as a year-old installation would have. */
static void write_expiring_server_crt(const char *dir)
{
    X509 *ca = file_cert(dir, "ca.crt", 0);
    EVP_PKEY *ca_key = file_key(dir, "ca.key"), *key = file_key(dir, "server.key");
    X509 *x = X509_new();
    ck_assert(ca && x);
    ck_assert_int_eq(X509_set_version(x, X509_VERSION_3), 1);
    ck_assert_int_eq(ASN1_INTEGER_set(X509_get_serialNumber(x), 42), 1);
    ck_assert_int_eq(X509_NAME_add_entry_by_txt(X509_get_subject_name(x), "CN", MBSTRING_ASC,
                                                (const unsigned char *)"drover-server",
                                                -1, -1, 0), 1);
    ck_assert_int_eq(X509_set_issuer_name(x, X509_get_subject_name(ca)), 1);
    ck_assert_ptr_nonnull(X509_gmtime_adj(X509_getm_notBefore(x), -3600));
    ck_assert_ptr_nonnull(X509_time_adj_ex(X509_getm_notAfter(x), 10, 0, NULL));
    ck_assert_int_eq(X509_set_pubkey(x, key), 1);
    X509V3_CTX v3;
    X509V3_set_ctx(&v3, ca, x, NULL, NULL, 0);
    X509_EXTENSION *ext = X509V3_EXT_nconf_nid(NULL, &v3, NID_subject_alt_name,
                                               "DNS:localhost,IP:127.0.0.1,IP:::1");
    ck_assert_ptr_nonnull(ext);
    ck_assert_int_eq(X509_add_ext(x, ext, -1), 1);
    X509_EXTENSION_free(ext);
    ck_assert_int_gt(X509_sign(x, ca_key, EVP_sha256()), 0);

    BIO *b = BIO_new(BIO_s_mem());
    ck_assert_int_eq(PEM_write_bio_X509(b, x), 1);
    ck_assert_int_eq(PEM_write_bio_X509(b, ca), 1);
    char *data;
    long n = BIO_get_mem_data(b, &data);
    write_file(dir, "server.crt", data, (size_t)n);
    BIO_free(b);
    X509_free(x);
    X509_free(ca);
    EVP_PKEY_free(ca_key);
    EVP_PKEY_free(key);
}

START_TEST(expiring_server_cert_is_reissued)
{
    char dir[64];
    struct tls_pki a, b;
    struct snapshot s;
    make_tmpdir(dir);
    ensure_ok(dir, NULL, 0, &a);
    write_expiring_server_crt(dir);
    X509 *old = file_cert(dir, "server.crt", 0);
    ck_assert_int_lt(days_left(old), 11);
    X509_free(old);
    snap(dir, &s);
    ensure_ok(dir, NULL, 0, &b);
    ck_assert_str_eq(a.checksum, b.checksum);
    ck_assert(snap_same(dir, &s, 0) && snap_same(dir, &s, 1) && snap_same(dir, &s, 3));
    ck_assert(!snap_same(dir, &s, 2));
    X509 *leaf = file_cert(dir, "server.crt", 0);
    ck_assert_int_gt(days_left(leaf), 300);
    X509_free(leaf);
    snap_free(&s);
    tls_pki_free(&a);
    tls_pki_free(&b);
    rm_tree(dir);
}
END_TEST

START_TEST(foreign_or_damaged_server_cert_is_reissued)
{
    char dir[64], other[64];
    struct tls_pki a, o, b, c;
    make_tmpdir(dir);
    make_tmpdir(other);
    ensure_ok(dir, NULL, 0, &a);
    ensure_ok(other, NULL, 0, &o);

    /* Signed by another CA (a ca.crt restored from a different backup). */
    size_t len;
    char *foreign = read_file(other, "server.crt", &len);
    write_file(dir, "server.crt", foreign, len);
    ensure_ok(dir, NULL, 0, &b);
    ck_assert_str_eq(a.checksum, b.checksum);
    ck_assert(!file_equals(dir, "server.crt", foreign, len));
    X509 *ca = file_cert(dir, "ca.crt", 0), *leaf = file_cert(dir, "server.crt", 0);
    ck_assert_int_eq(X509_verify(leaf, X509_get0_pubkey(ca)), 1);
    X509_free(ca);
    X509_free(leaf);
    free(foreign);

    /* Damaged server files are derived data: replaced, not an error. */
    write_file(dir, "server.crt", "junk", 4);
    write_file(dir, "server.key", "junk", 4);
    ensure_ok(dir, NULL, 0, &c);
    ck_assert_str_eq(a.checksum, c.checksum);
    leaf = file_cert(dir, "server.crt", 0);
    EVP_PKEY *key = file_key(dir, "server.key");
    ck_assert_int_eq(X509_check_private_key(leaf, key), 1);
    X509_free(leaf);
    EVP_PKEY_free(key);
    tls_pki_free(&a);
    tls_pki_free(&o);
    tls_pki_free(&b);
    tls_pki_free(&c);
    rm_tree(dir);
    rm_tree(other);
}
END_TEST

START_TEST(corrupt_ca_is_an_error)
{
    char dir[64], err[512] = "", p[256];
    struct tls_pki a, b;
    make_tmpdir(dir);
    ensure_ok(dir, NULL, 0, &a);
    write_file(dir, "ca.crt", "-----BEGIN CERTIFICATE-----\nnope\n", 33);
    ck_assert_int_eq(tls_pki_ensure(dir, NULL, 0, &b, err, sizeof(err)), -1);
    path_of(p, sizeof(p), dir, "ca.crt");
    ck_assert_msg(strstr(err, p) != NULL, "err: %s", err);
    ck_assert_ptr_null(b.ca_pem);
    ck_assert(file_equals(dir, "ca.crt", "-----BEGIN CERTIFICATE-----\nnope\n", 33));
    tls_pki_free(&b);
    tls_pki_free(&a);
    rm_tree(dir);
}
END_TEST

START_TEST(missing_or_foreign_ca_key_is_an_error)
{
    char dir[64], other[64], err[512] = "", p[256];
    struct tls_pki a, o, b;
    make_tmpdir(dir);
    make_tmpdir(other);
    ensure_ok(dir, NULL, 0, &a);
    ensure_ok(other, NULL, 0, &o);
    path_of(p, sizeof(p), dir, "ca.key");
    size_t len;
    char *key = read_file(other, "ca.key", &len);
    write_file(dir, "ca.key", key, len);
    free(key);
    ck_assert_int_eq(tls_pki_ensure(dir, NULL, 0, &b, err, sizeof(err)), -1);
    ck_assert_msg(strstr(err, p) != NULL, "err: %s", err);
    ck_assert_int_eq(unlink(p), 0);
    ck_assert_int_eq(tls_pki_ensure(dir, NULL, 0, &b, err, sizeof(err)), -1);
    ck_assert_msg(strstr(err, p) != NULL, "err: %s", err);
    tls_pki_free(&a);
    tls_pki_free(&o);
    rm_tree(dir);
    rm_tree(other);
}
END_TEST

START_TEST(unwritable_dir_is_an_error)
{
    char dir[64], bad[128], err[512] = "";
    struct tls_pki pki;
    make_tmpdir(dir);

    /* Root writes through permission bits, so also cases no one can write:
     * a data dir that is a file, and one below a file. */
    path_of(bad, sizeof(bad), dir, "file");
    write_file(dir, "file", "x", 1);
    ck_assert_int_eq(tls_pki_ensure(bad, NULL, 0, &pki, err, sizeof(err)), -1);
    ck_assert_msg(strstr(err, bad) != NULL, "err: %s", err);
    path_of(bad, sizeof(bad), dir, "file/data");
    ck_assert_int_eq(tls_pki_ensure(bad, NULL, 0, &pki, err, sizeof(err)), -1);
    ck_assert_msg(strstr(err, bad) != NULL, "err: %s", err);

    if (geteuid() != 0) {
        path_of(bad, sizeof(bad), dir, "ro");
        ck_assert_int_eq(mkdir(bad, 0500), 0);
        ck_assert_int_eq(tls_pki_ensure(bad, NULL, 0, &pki, err, sizeof(err)), -1);
        ck_assert_msg(strstr(err, bad) != NULL, "err: %s", err);
        chmod(bad, 0700);
    }
    rm_tree(dir);
}
END_TEST

START_TEST(bad_hosts_are_rejected)
{
    char dir[64], err[512] = "";
    struct tls_pki pki;
    const char *bad[] = { "ok.example", "evil.example,DNS:bank.example" };
    const char *empty[] = { "" };
    make_tmpdir(dir);
    ck_assert_int_eq(tls_pki_ensure(dir, bad, 2, &pki, err, sizeof(err)), -1);
    ck_assert_msg(strstr(err, "evil.example") != NULL, "err: %s", err);
    ck_assert_int_eq(tls_pki_ensure(dir, empty, 1, &pki, err, sizeof(err)), -1);
    rm_tree(dir);
}
END_TEST

/* ---- operator certificates ---- */

START_TEST(from_files_serves_the_chain_ca)
{
    char dir[64], crt[256], key[256], err[512] = "", hex[65];
    struct tls_pki gen, chain, lone;
    make_tmpdir(dir);
    ensure_ok(dir, NULL, 0, &gen);
    path_of(crt, sizeof(crt), dir, "server.crt");
    path_of(key, sizeof(key), dir, "server.key");
    ck_assert_msg(tls_pki_from_files(crt, key, &chain, err, sizeof(err)) == 0, "%s", err);
    ck_assert_uint_eq(chain.ca_pem_len, gen.ca_pem_len);
    ck_assert(memcmp(chain.ca_pem, gen.ca_pem, gen.ca_pem_len) == 0);
    digest_hex(chain.ca_pem, chain.ca_pem_len, hex);
    ck_assert_str_eq(chain.checksum, hex);
    ck_assert_str_eq(chain.cert_file, crt);
    ck_assert_str_eq(chain.key_file, key);

    /* A lone self-signed certificate is its own CA. */
    path_of(crt, sizeof(crt), dir, "ca.crt");
    path_of(key, sizeof(key), dir, "ca.key");
    ck_assert_msg(tls_pki_from_files(crt, key, &lone, err, sizeof(err)) == 0, "%s", err);
    X509 *served = pem_cert_at(lone.ca_pem, lone.ca_pem_len, 0);
    X509 *ca = file_cert(dir, "ca.crt", 0);
    ck_assert_int_eq(X509_cmp(served, ca), 0);
    digest_hex(lone.ca_pem, lone.ca_pem_len, hex);
    ck_assert_str_eq(lone.checksum, hex);
    X509_free(served);
    X509_free(ca);
    tls_pki_free(&gen);
    tls_pki_free(&chain);
    tls_pki_free(&lone);
    rm_tree(dir);
}
END_TEST

START_TEST(from_files_errors)
{
    char dir[64], crt[256], key[256], missing[256], err[512] = "";
    struct tls_pki gen, pki;
    make_tmpdir(dir);
    ensure_ok(dir, NULL, 0, &gen);
    path_of(crt, sizeof(crt), dir, "server.crt");
    path_of(key, sizeof(key), dir, "ca.key");
    path_of(missing, sizeof(missing), dir, "nope.crt");
    ck_assert_int_eq(tls_pki_from_files(crt, key, &pki, err, sizeof(err)), -1);
    ck_assert_msg(strstr(err, key) != NULL, "err: %s", err); /* key does not match */
    ck_assert_ptr_null(pki.ca_pem);
    ck_assert_int_eq(tls_pki_from_files(missing, key, &pki, err, sizeof(err)), -1);
    ck_assert_msg(strstr(err, missing) != NULL, "err: %s", err);
    ck_assert_int_eq(tls_pki_from_files(key, key, &pki, err, sizeof(err)), -1);
    ck_assert_msg(strstr(err, key) != NULL, "err: %s", err);  /* no certificate */
    tls_pki_free(&gen);
    rm_tree(dir);
}
END_TEST

/* ---- contexts and handshakes ---- */

START_TEST(handshake_with_pinned_ca)
{
    struct fixture f;
    struct hs r;
    fixture_init(&f);
    SSL_CTX *c = pinned(&f.pki);
    const char *names[] = { "localhost", "127.0.0.1", "::1", "[::1]" };
    for (int i = 0; i < 4; i++) {
        handshake(f.sctx, c, names[i], names[i][0] != 'l', NULL, &r);
        ck_assert_msg(r.client_ok && r.server_ok, "%s: verify %s", names[i],
                      X509_verify_cert_error_string(r.verify));
        ck_assert_str_eq(r.alpn, "http/1.1");
    }
    handshake(f.sctx, c, "127.0.0.1", false, NULL, &r); /* IP detected anyway */
    ck_assert(r.client_ok && r.server_ok);
    SSL_CTX_free(c);
    fixture_free(&f);
}
END_TEST

START_TEST(handshake_fails_with_other_ca)
{
    struct fixture f, g;
    struct hs r;
    fixture_init(&f);
    fixture_init(&g);
    ck_assert_str_ne(f.pki.checksum, g.pki.checksum);
    SSL_CTX *c = pinned(&g.pki);
    handshake(f.sctx, c, "localhost", false, NULL, &r);
    ck_assert(!r.client_ok && !r.server_ok);
    ck_assert_int_ne(r.verify, X509_V_OK);
    SSL_CTX_free(c);
    fixture_free(&f);
    fixture_free(&g);
}
END_TEST

START_TEST(handshake_fails_with_wrong_host)
{
    struct fixture f;
    struct hs r;
    fixture_init(&f);
    SSL_CTX *c = pinned(&f.pki);
    handshake(f.sctx, c, "wrong.example", false, NULL, &r);
    ck_assert(!r.client_ok);
    ck_assert_int_eq(r.verify, X509_V_ERR_HOSTNAME_MISMATCH);
    handshake(f.sctx, c, "10.9.9.9", true, NULL, &r);
    ck_assert(!r.client_ok);
    ck_assert_int_eq(r.verify, X509_V_ERR_IP_ADDRESS_MISMATCH);
    SSL_CTX_free(c);
    fixture_free(&f);
}
END_TEST

START_TEST(server_refuses_tls11)
{
    struct fixture f;
    struct hs r;
    fixture_init(&f);
    /* Security level 0 so the client itself is willing to speak TLS 1.1 and
     * the refusal demonstrably comes from the server. */
    SSL_CTX *c = SSL_CTX_new(TLS_client_method());
    ck_assert_ptr_nonnull(c);
    SSL_CTX_set_security_level(c, 0);
    ck_assert_int_eq(SSL_CTX_set_min_proto_version(c, TLS1_VERSION), 1);
    ck_assert_int_eq(SSL_CTX_set_max_proto_version(c, TLS1_1_VERSION), 1);
    ck_assert_int_eq(SSL_CTX_set_cipher_list(c, "DEFAULT:@SECLEVEL=0"), 1);
    SSL_CTX_set_verify(c, SSL_VERIFY_NONE, NULL);
    handshake(f.sctx, c, NULL, false, NULL, &r);
    ck_assert(!r.client_ok && !r.server_ok);
    ck_assert_int_eq(r.server_reason, SSL_R_UNSUPPORTED_PROTOCOL);
    SSL_CTX_free(c);
    fixture_free(&f);
}
END_TEST

static void offer_h2_only(SSL *c)
{
    ck_assert_int_eq(SSL_set_alpn_protos(c, (const unsigned char *)"\x02h2", 3), 0);
}

static void offer_h2_and_http11(SSL *c)
{
    ck_assert_int_eq(SSL_set_alpn_protos(c, (const unsigned char *)"\x02h2\x08http/1.1", 12), 0);
}

static void offer_no_alpn(SSL *c)
{
    ck_assert_int_eq(SSL_set_alpn_protos(c, NULL, 0), 0);
}

START_TEST(alpn_selection)
{
    struct fixture f;
    struct hs r;
    fixture_init(&f);
    SSL_CTX *c = pinned(&f.pki);
    handshake(f.sctx, c, "localhost", false, offer_h2_and_http11, &r);
    ck_assert(r.client_ok && r.server_ok);
    ck_assert_str_eq(r.alpn, "http/1.1");
    handshake(f.sctx, c, "localhost", false, offer_no_alpn, &r);
    ck_assert(r.client_ok && r.server_ok);
    ck_assert_str_eq(r.alpn, "");
    handshake(f.sctx, c, "localhost", false, offer_h2_only, &r);
    ck_assert(!r.client_ok && !r.server_ok);
    SSL_CTX_free(c);
    fixture_free(&f);
}
END_TEST

START_TEST(insecure_client_connects_to_anything)
{
    struct fixture f;
    struct hs r;
    char err[512] = "";
    fixture_init(&f);
    SSL_CTX *c = tls_client_ctx_insecure(err, sizeof(err));
    ck_assert_msg(c != NULL, "%s", err);
    handshake(f.sctx, c, "wrong.example", false, NULL, &r);
    ck_assert(r.client_ok && r.server_ok);
    ck_assert_str_eq(r.alpn, "http/1.1");
    handshake(f.sctx, c, NULL, false, NULL, &r);
    ck_assert(r.client_ok && r.server_ok);
    SSL_CTX_free(c);
    fixture_free(&f);
}
END_TEST

START_TEST(context_errors)
{
    char err[512] = "";
    const char *missing = "/nonexistent/drover/server.crt";
    ck_assert_ptr_null(tls_server_ctx(missing, missing, err, sizeof(err)));
    ck_assert_msg(strstr(err, missing) != NULL, "err: %s", err);
    err[0] = '\0';
    ck_assert_ptr_null(tls_client_ctx_pinned("garbage", 7, err, sizeof(err)));
    ck_assert(err[0] != '\0');
    ck_assert_ptr_null(tls_client_ctx_pinned(NULL, 0, err, sizeof(err)));
    ck_assert_int_eq(ERR_peek_error(), 0);

    SSL_CTX *ctx = tls_client_ctx_insecure(err, sizeof(err));
    SSL *ssl = SSL_new(ctx);
    ck_assert_int_eq(tls_client_set_host(ssl, "", false), -1);
    ck_assert_int_eq(tls_client_set_host(ssl, "not-an-ip", true), -1);
    ck_assert_int_eq(tls_client_set_host(NULL, "localhost", false), -1);
    ERR_clear_error();
    SSL_free(ssl);
    SSL_CTX_free(ctx);
}
END_TEST

START_TEST(sha256_and_last_error)
{
    char hex[65], buf[256];
    tls_sha256_hex("abc", 3, hex);
    ck_assert_str_eq(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    tls_sha256_hex("", 0, hex);
    ck_assert_str_eq(hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");

    ERR_clear_error();
    ck_assert_str_eq(tls_last_error(buf, sizeof(buf)), "unknown TLS error");
    /* Two failures queued: the text is the last one's and the queue empties. */
    ck_assert_ptr_null(SSL_CTX_new(NULL));
    ERR_raise(ERR_LIB_SSL, SSL_R_UNSUPPORTED_PROTOCOL);
    const char *s = tls_last_error(buf, sizeof(buf));
    ck_assert_ptr_eq(s, buf);
    char want[256];
    ERR_error_string_n(ERR_PACK(ERR_LIB_SSL, 0, SSL_R_UNSUPPORTED_PROTOCOL), want, sizeof(want));
    ck_assert_str_eq(s, want);
    ck_assert_int_eq(ERR_peek_error(), 0);
}
END_TEST

Suite *suite_common_tls(void)
{
    Suite *s = suite_create("common_tls");
    TCase *pki = tcase_create("pki");
    TCase *ctx = tcase_create("contexts");
    tcase_set_timeout(pki, 30);
    tcase_set_timeout(ctx, 30);
    tcase_add_test(pki, first_run_creates_files);
    tcase_add_test(pki, certificates_have_the_right_shape);
    tcase_add_test(pki, second_run_reuses_files);
    tcase_add_test(pki, new_host_reissues_only_server_crt);
    tcase_add_test(pki, expiring_server_cert_is_reissued);
    tcase_add_test(pki, foreign_or_damaged_server_cert_is_reissued);
    tcase_add_test(pki, corrupt_ca_is_an_error);
    tcase_add_test(pki, missing_or_foreign_ca_key_is_an_error);
    tcase_add_test(pki, unwritable_dir_is_an_error);
    tcase_add_test(pki, bad_hosts_are_rejected);
    tcase_add_test(pki, from_files_serves_the_chain_ca);
    tcase_add_test(pki, from_files_errors);
    tcase_add_test(ctx, handshake_with_pinned_ca);
    tcase_add_test(ctx, handshake_fails_with_other_ca);
    tcase_add_test(ctx, handshake_fails_with_wrong_host);
    tcase_add_test(ctx, server_refuses_tls11);
    tcase_add_test(ctx, alpn_selection);
    tcase_add_test(ctx, insecure_client_connects_to_anything);
    tcase_add_test(ctx, context_errors);
    tcase_add_test(ctx, sha256_and_last_error);
    suite_add_tcase(s, pki);
    suite_add_tcase(s, ctx);
    return s;
}
