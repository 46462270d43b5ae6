/*
 * tls: drover's PKI (a private CA and the serving certificate it signs). See
 * tls.h. The OpenSSL contexts are in tls_ctx.c, the file and PEM plumbing in
 * tls_files.c; tls_int.h is what they share.
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
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/tls_int.h"

#define TLS_CA_DAYS       3650
#define TLS_SERVER_DAYS   365           /* well under the 825 days clients accept */
#define TLS_RENEW_DAYS    30
#define TLS_BACKDATE_SECS 3600          /* agents whose clocks lag a little */
#define TLS_HOST_MAX      253

/* Names every serving certificate carries, so local tools always work. */
static const char *const default_names[] = { "localhost", "127.0.0.1", "::1" };

struct pki_paths {
    char ca_crt[TLS_PATH_CAP], ca_key[TLS_PATH_CAP];
    char srv_crt[TLS_PATH_CAP], srv_key[TLS_PATH_CAP];
};

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
int tls_ip_literal(const char *host, unsigned char ip[16])
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
    int iplen = tls_ip_literal(host, ip);
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
    if (!key || !(ca = issue_ca(key)) || !(kpem = tls_key_pem(key, &klen)) ||
        !(*ca_pem = tls_cert_pem(ca, ca_len))) {
        tls_set_ssl_err(err, errlen, "creating the CA");
        goto out;
    }
    if (tls_write_atomic(dir, p->ca_key, kpem, klen, 0600, err, errlen) < 0 ||
        tls_write_atomic(dir, p->ca_crt, *ca_pem, *ca_len, 0644, err, errlen) < 0) {
        free(*ca_pem);
        *ca_pem = NULL;
        goto out;
    }
    rc = 0;
out:
    tls_free_secret(kpem, klen);
    X509_free(ca);
    EVP_PKEY_free(key);
    return rc;
}

/* Parses ca.crt's bytes and loads ca.key; both must be intact and match. */
static int open_ca(const struct pki_paths *p, const char *pem, size_t len,
                   X509 **ca, EVP_PKEY **key, char *err, size_t errlen)
{
    if (!(*ca = tls_parse_cert(pem, len)) || X509_check_ca(*ca) == 0) {
        ERR_clear_error();
        tls_set_err(err, errlen, "%s: not a valid CA certificate (agents pin it: "
                    "restore it, or remove ca.crt and ca.key to start a new CA)",
                    p->ca_crt);
        return -1;
    }
    int r = tls_load_key_file(p->ca_key, key, err, errlen);
    if (r == 1)
        tls_set_err(err, errlen, "%s: missing (it signs the serving certificate)",
                    p->ca_key);
    if (r != 0)
        return -1;
    if (X509_check_private_key(*ca, *key) != 1) {
        ERR_clear_error();
        tls_set_err(err, errlen, "%s does not match %s", p->ca_key, p->ca_crt);
        return -1;
    }
    return 0;
}

/* ---- the serving certificate ---- */

static bool covers(X509 *x, const char *host)
{
    unsigned char ip[16];
    if (tls_ip_literal(host, ip))
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
        !(cpem = tls_cert_pem(leaf, &clen)) || (fresh && !(kpem = tls_key_pem(key, &klen)))) {
        tls_set_ssl_err(err, errlen, "issuing the serving certificate");
        goto out;
    }
    if (!(chain = malloc(clen + ca_len))) {
        tls_set_err(err, errlen, "issuing the serving certificate: out of memory");
        goto out;
    }
    memcpy(chain, cpem, clen);
    memcpy(chain + clen, ca_pem, ca_len);
    if ((fresh && tls_write_atomic(dir, p->srv_key, kpem, klen, 0600, err, errlen) < 0) ||
        tls_write_atomic(dir, p->srv_crt, chain, clen + ca_len, 0644, err, errlen) < 0)
        goto out;
    rc = 0;
out:
    free(chain);
    free(cpem);
    tls_free_secret(kpem, klen);
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
    (void)tls_load_cert_file(p->srv_crt, &leaf, ignored, sizeof(ignored));
    (void)tls_load_key_file(p->srv_key, &key, ignored, sizeof(ignored));
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
        if (ok && !tls_ip_literal(h, ip))
            ok = strspn(h, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                           "0123456789-._*") == len;
        if (!ok) {
            tls_set_err(err, errlen, "TLS host \"%.64s\": not a DNS name or IP address",
                        h ? h : "");
            return -1;
        }
    }
    return 0;
}

static int pki_paths(struct pki_paths *p, const char *dir, char *err, size_t errlen)
{
    if (!dir || !*dir) {
        tls_set_err(err, errlen, "no data directory given");
        return -1;
    }
    if (tls_path_join(p->ca_crt, dir, "ca.crt", err, errlen) < 0 ||
        tls_path_join(p->ca_key, dir, "ca.key", err, errlen) < 0 ||
        tls_path_join(p->srv_crt, dir, "server.crt", err, errlen) < 0 ||
        tls_path_join(p->srv_key, dir, "server.key", err, errlen) < 0)
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
        pki_paths(&p, data_dir, err, errlen) < 0 || tls_ensure_dir(data_dir, err, errlen) < 0)
        goto out;
    int r = tls_slurp(p.ca_crt, &ca_pem, &ca_len, err, errlen);
    if (r < 0 || (r == 1 && create_ca(data_dir, &p, &ca_pem, &ca_len, err, errlen) < 0))
        goto out;
    if (open_ca(&p, ca_pem, ca_len, &ca, &ca_key, err, errlen) < 0 ||
        ensure_server(data_dir, &p, ca, ca_key, ca_pem, ca_len, hosts, nhosts,
                      err, errlen) < 0)
        goto out;
    /* The checksum covers ca.crt's bytes exactly as /cacerts will serve them. */
    if (sha256_hex(ca_pem, ca_len, out->checksum) < 0) {
        tls_set_ssl_err(err, errlen, "SHA-256");
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
        tls_set_err(err, errlen, "TLS certificate or key path empty or too long");
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
    if ((r = tls_slurp(cert_file, &pem, &len, err, errlen)) == 1)
        tls_set_err(err, errlen, "%s: no such file", cert_file);
    if (r != 0)
        goto out;
    if (tls_pem_each_cert(pem, len, take_ends, &ends) < 1) {
        ERR_clear_error();
        tls_set_err(err, errlen, "%s: not a valid PEM certificate chain", cert_file);
        goto out;
    }
    if ((r = tls_load_key_file(key_file, &key, err, errlen)) == 1)
        tls_set_err(err, errlen, "%s: no such file", key_file);
    if (r != 0)
        goto out;
    if (X509_check_private_key(ends.first, key) != 1) {
        ERR_clear_error();
        tls_set_err(err, errlen, "%s does not match %s", key_file, cert_file);
        goto out;
    }
    if (!(out->ca_pem = tls_cert_pem(ends.last, &out->ca_pem_len)) ||
        sha256_hex(out->ca_pem, out->ca_pem_len, out->checksum) < 0) {
        tls_set_ssl_err(err, errlen, "encoding the CA certificate");
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

