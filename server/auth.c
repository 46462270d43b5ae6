/*
 * auth: passwords, tokens and sealed registration tokens. See auth.h.
 */
#include "server/auth.h"

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/tls.h"

/* Current parameters. Stored hashes carry their own, so these may grow. */
#define PW_LOG_N    15
#define PW_R        8
#define PW_P        1
#define PW_SALT     16
#define PW_KEY      32
/* What a stored hash may ask for: enough headroom to raise the cost later,
 * never so much that a tampered row can exhaust memory. */
#define PW_MAX_LOG_N 20
#define PW_MAX_R     32
#define PW_MAX_P     16
#define PW_MAX_MEM   (UINT64_C(256) << 20)

#define SEAL_NONCE  12
#define SEAL_TAG    16
#define SEAL_PREFIX "v1."
#define HKDF_INFO   "drover registration tokens"

static const char hexdigits[] = "0123456789abcdef";

static void to_hex(const unsigned char *p, size_t n, char *out)
{
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = hexdigits[p[i] >> 4];
        out[2 * i + 1] = hexdigits[p[i] & 15];
    }
    out[2 * n] = '\0';
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

/* Decodes exactly n bytes from 2n lowercase hex characters. 0 or -1. */
static int from_hex(const char *s, size_t slen, unsigned char *out, size_t n)
{
    if (slen != 2 * n)
        return -1;
    for (size_t i = 0; i < n; i++) {
        int hi = hexval(s[2 * i]), lo = hexval(s[2 * i + 1]);
        if (hi < 0 || lo < 0)
            return -1;
        out[i] = (unsigned char)(hi << 4 | lo);
    }
    return 0;
}

/* ---- passwords ---- */

static uint64_t scrypt_mem(uint64_t n, uint64_t r, uint64_t p)
{
    /* OpenSSL needs 128*r*(N+2) for V plus 128*r*p for B; leave a margin. */
    return 128 * r * (n + 2 + p) + 65536;
}

static int scrypt(const char *pw, size_t len, const unsigned char *salt,
                  unsigned log_n, unsigned r, unsigned p, unsigned char key[PW_KEY])
{
    uint64_t n = UINT64_C(1) << log_n;
    return EVP_PBE_scrypt(pw, len, salt, PW_SALT, n, r, p, scrypt_mem(n, r, p), key,
                          PW_KEY) == 1 ? 0 : -1;
}

int auth_password_hash(const char *pw, size_t len, char *out, size_t cap)
{
    unsigned char salt[PW_SALT], key[PW_KEY];
    char salt_hex[2 * PW_SALT + 1], key_hex[2 * PW_KEY + 1];
    if (cap)
        out[0] = '\0';
    if (RAND_bytes(salt, sizeof(salt)) != 1 ||
        scrypt(pw, len, salt, PW_LOG_N, PW_R, PW_P, key) < 0)
        return -1;
    to_hex(salt, sizeof(salt), salt_hex);
    to_hex(key, sizeof(key), key_hex);
    OPENSSL_cleanse(key, sizeof(key));
    int n = snprintf(out, cap, "$scrypt$ln=%d,r=%d,p=%d$%s$%s", PW_LOG_N, PW_R, PW_P,
                     salt_hex, key_hex);
    if (n < 0 || (size_t)n >= cap) {
        if (cap)
            out[0] = '\0';
        return -1;
    }
    return 0;
}

/* Reads "NAME=<decimal>" followed by end. */
static int param(const char *s, const char *end, const char *name, unsigned max,
                 unsigned *out)
{
    size_t nl = strlen(name);
    if ((size_t)(end - s) <= nl + 1 || memcmp(s, name, nl) != 0 || s[nl] != '=')
        return -1;
    unsigned v = 0;
    for (s += nl + 1; s < end; s++) {
        if (*s < '0' || *s > '9' || v > max)
            return -1;
        v = v * 10 + (unsigned)(*s - '0');
    }
    if (v < 1 || v > max)
        return -1;
    *out = v;
    return 0;
}

struct pw_parsed {
    unsigned log_n, r, p;
    unsigned char salt[PW_SALT], key[PW_KEY];
};

static int parse_hash(const char *enc, struct pw_parsed *ph)
{
    static const char pre[] = "$scrypt$";
    if (strncmp(enc, pre, sizeof(pre) - 1) != 0)
        return -1;
    const char *s = enc + sizeof(pre) - 1;
    const char *d1 = strchr(s, '$');
    const char *d2 = d1 ? strchr(d1 + 1, '$') : NULL;
    const char *c1 = memchr(s, ',', d1 ? (size_t)(d1 - s) : 0);
    const char *c2 = c1 ? memchr(c1 + 1, ',', (size_t)(d1 - c1 - 1)) : NULL;
    if (!d2 || !c2 || param(s, c1, "ln", PW_MAX_LOG_N, &ph->log_n) < 0 ||
        param(c1 + 1, c2, "r", PW_MAX_R, &ph->r) < 0 ||
        param(c2 + 1, d1, "p", PW_MAX_P, &ph->p) < 0 ||
        from_hex(d1 + 1, (size_t)(d2 - d1 - 1), ph->salt, PW_SALT) < 0 ||
        from_hex(d2 + 1, strlen(d2 + 1), ph->key, PW_KEY) < 0)
        return -1;
    if (ph->log_n < 10 ||
        scrypt_mem(UINT64_C(1) << ph->log_n, ph->r, ph->p) > PW_MAX_MEM)
        return -1;
    return 0;
}

int auth_password_verify(const char *pw, size_t len, const char *encoded)
{
    struct pw_parsed ph;
    unsigned char key[PW_KEY];
    if (!encoded || parse_hash(encoded, &ph) < 0)
        return -1;
    if (scrypt(pw, len, ph.salt, ph.log_n, ph.r, ph.p, key) < 0)
        return -1;
    int same = CRYPTO_memcmp(key, ph.key, PW_KEY) == 0;
    OPENSSL_cleanse(key, sizeof(key));
    return same;
}

void auth_password_burn(const char *pw, size_t len)
{
    static const unsigned char salt[PW_SALT];
    unsigned char key[PW_KEY];
    (void)scrypt(pw, len, salt, PW_LOG_N, PW_R, PW_P, key);
    OPENSSL_cleanse(key, sizeof(key));
}

/* ---- tokens ---- */

int auth_random_alnum(char *out, size_t n)
{
    static const char set[] = "abcdefghijklmnopqrstuvwxyz0123456789";
    size_t i = 0;
    while (i < n) {
        unsigned char b[32];
        if (RAND_bytes(b, sizeof(b)) != 1)
            return -1;
        /* 252 = 7 * 36: rejecting bytes above it keeps the choice uniform. */
        for (size_t j = 0; j < sizeof(b) && i < n; j++)
            if (b[j] < 252)
                out[i++] = set[b[j] % 36];
    }
    out[n] = '\0';
    return 0;
}

void auth_sha256_hex(const void *p, size_t n, char out[AUTH_HEX_SHA256])
{
    tls_sha256_hex(p, n, out);
}

bool auth_hash_equal(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    return la == lb && CRYPTO_memcmp(a, b, la) == 0;
}

static int random_hex(char *out, size_t nbytes)
{
    unsigned char b[64];
    if (nbytes > sizeof(b) || RAND_bytes(b, (int)nbytes) != 1)
        return -1;
    to_hex(b, nbytes, out);
    OPENSSL_cleanse(b, sizeof(b));
    return 0;
}

int auth_api_token_new(char token[AUTH_API_TOKEN_SIZE], char hash[AUTH_HEX_SHA256])
{
    size_t pl = sizeof(AUTH_TOKEN_PREFIX) - 1;
    memcpy(token, AUTH_TOKEN_PREFIX, pl);
    if (random_hex(token + pl, 32) < 0)
        return -1;
    auth_sha256_hex(token, strlen(token), hash);
    return 0;
}

int auth_reg_token_new(char token[AUTH_REG_TOKEN_SIZE], char hash[AUTH_HEX_SHA256])
{
    if (random_hex(token, 32) < 0)
        return -1;
    auth_sha256_hex(token, strlen(token), hash);
    return 0;
}

/* ---- sealing ---- */

int auth_sealkey_derive(const void *ikm, size_t len, struct auth_sealkey *out)
{
    EVP_KDF *kdf = EVP_KDF_fetch(NULL, "HKDF", NULL);
    EVP_KDF_CTX *ctx = kdf ? EVP_KDF_CTX_new(kdf) : NULL;
    EVP_KDF_free(kdf);
    if (!ctx)
        return -1;
    OSSL_PARAM params[] = {
        OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, (char *)"SHA256", 0),
        OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, (void *)ikm, len),
        OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, (void *)HKDF_INFO,
                                          sizeof(HKDF_INFO) - 1),
        OSSL_PARAM_construct_end(),
    };
    int ok = EVP_KDF_derive(ctx, out->k, sizeof(out->k), params) == 1;
    EVP_KDF_CTX_free(ctx);
    return ok ? 0 : -1;
}

int auth_sealkey_from_pem_file(const char *path, struct auth_sealkey *out,
                               char *err, size_t errlen)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        snprintf(err, errlen, "cannot open %s", path);
        return -1;
    }
    EVP_PKEY *pk = PEM_read_PrivateKey(f, NULL, NULL, NULL);
    fclose(f);
    unsigned char *der = NULL;
    int n = pk ? i2d_PrivateKey(pk, &der) : -1;
    EVP_PKEY_free(pk);
    if (n <= 0) {
        snprintf(err, errlen, "%s holds no readable private key", path);
        return -1;
    }
    int rc = auth_sealkey_derive(der, (size_t)n, out);
    OPENSSL_clear_free(der, (size_t)n);
    if (rc < 0)
        snprintf(err, errlen, "HKDF failed");
    return rc;
}

/* One AES-256-GCM pass. enc: in -> out and tag is written; else tag is
 * checked. 0 or -1. */
static int gcm(bool enc, const struct auth_sealkey *k, const unsigned char *nonce,
               const char *aad, const unsigned char *in, size_t len,
               unsigned char *out, unsigned char *tag)
{
    EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
    int n = 0, ok = c && EVP_CipherInit_ex(c, EVP_aes_256_gcm(), NULL, k->k, nonce,
                                            enc ? 1 : 0) == 1;
    ok = ok && EVP_CipherUpdate(c, NULL, &n, (const unsigned char *)aad,
                                (int)strlen(aad)) == 1;
    ok = ok && EVP_CipherUpdate(c, out, &n, in, (int)len) == 1;
    if (ok && !enc)
        ok = EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_TAG, SEAL_TAG, tag) == 1;
    ok = ok && EVP_CipherFinal_ex(c, out + n, &n) == 1;
    if (ok && enc)
        ok = EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_GET_TAG, SEAL_TAG, tag) == 1;
    EVP_CIPHER_CTX_free(c);
    return ok ? 0 : -1;
}

#define SEAL_PLAIN_MAX 96

int auth_seal(const struct auth_sealkey *k, const char *aad, const char *plain,
              char *out, size_t cap)
{
    size_t len = strlen(plain), pl = sizeof(SEAL_PREFIX) - 1;
    unsigned char buf[SEAL_NONCE + SEAL_PLAIN_MAX + SEAL_TAG];
    size_t total = SEAL_NONCE + len + SEAL_TAG;
    if (len > SEAL_PLAIN_MAX || cap < pl + 2 * total + 1 ||
        RAND_bytes(buf, SEAL_NONCE) != 1 ||
        gcm(true, k, buf, aad, (const unsigned char *)plain, len, buf + SEAL_NONCE,
            buf + SEAL_NONCE + len) < 0)
        return -1;
    memcpy(out, SEAL_PREFIX, pl);
    to_hex(buf, total, out + pl);
    return 0;
}

int auth_unseal(const struct auth_sealkey *k, const char *aad, const char *sealed,
                char *out, size_t cap)
{
    size_t pl = sizeof(SEAL_PREFIX) - 1, sl = sealed ? strlen(sealed) : 0;
    unsigned char buf[SEAL_NONCE + SEAL_PLAIN_MAX + SEAL_TAG];
    if (sl < pl || memcmp(sealed, SEAL_PREFIX, pl) != 0 || (sl - pl) % 2)
        return -1;
    size_t total = (sl - pl) / 2;
    if (total < SEAL_NONCE + SEAL_TAG || total > sizeof(buf) ||
        from_hex(sealed + pl, sl - pl, buf, total) < 0)
        return -1;
    size_t len = total - SEAL_NONCE - SEAL_TAG;
    if (cap < len + 1 ||
        gcm(false, k, buf, aad, buf + SEAL_NONCE, len, (unsigned char *)out,
            buf + SEAL_NONCE + len) < 0) {
        OPENSSL_cleanse(out, cap);     /* never hand out unverified bytes */
        return -1;
    }
    out[len] = '\0';
    return 0;
}
