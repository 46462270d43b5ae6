/*
 * auth: drover-server's credential primitives, free of I/O and of the
 * datastore so they can be unit tested and run on any thread.
 *
 *  - Passwords: scrypt (N=2^15, r=8, p=1, 16-byte random salt) encoded as
 *    "$scrypt$ln=15,r=8,p=1$<salt hex>$<key hex>", so the parameters can be
 *    raised later without breaking stored hashes. Hashing costs ~32 MiB and
 *    tens of milliseconds: call it on a datastore worker, never on the loop.
 *  - API tokens: "drover_" + 64 hex characters (32 random bytes), shown once;
 *    only the SHA-256 hex is stored. Registration tokens: 64 hex characters.
 *  - Registration tokens are also kept sealed (AES-256-GCM, the cluster id as
 *    associated data) under a key derived with HKDF-SHA256 from the CA private
 *    key, so an owner can read the token again but a copy of the database
 *    alone does not reveal it.
 *
 * Nothing here logs, and no function keeps a copy of a secret it was given.
 */
#ifndef DROVER_SERVER_AUTH_H
#define DROVER_SERVER_AUTH_H

#include <stdbool.h>
#include <stddef.h>

#define AUTH_HEX_SHA256     65      /* 64 hex characters and a NUL */
#define AUTH_PW_HASH_MAX    160     /* an encoded password hash and its NUL */
#define AUTH_PW_MAX         1024    /* longest password accepted, in bytes */
#define AUTH_TOKEN_PREFIX   "drover_"
#define AUTH_API_TOKEN_SIZE 72      /* "drover_" + 64 hex + NUL */
#define AUTH_REG_TOKEN_SIZE 65      /* 64 hex + NUL */
#define AUTH_SEALED_MAX     256     /* a sealed registration token and NUL */
#define AUTH_KEY_LEN        32

/*
 * Hashes pw[0..len) with a fresh salt into out ("$scrypt$..."). 0, or -1 if
 * randomness or scrypt failed or cap is too small (out is then "").
 */
int auth_password_hash(const char *pw, size_t len, char *out, size_t cap);

/*
 * 1 if pw matches encoded, 0 if not, -1 if encoded is malformed or asks for
 * parameters outside sane bounds (a tampered row must not make us allocate
 * gigabytes). The comparison is constant-time.
 */
int auth_password_verify(const char *pw, size_t len, const char *encoded);

/* Spends the same effort as a verification, for a user that does not exist,
 * so response times do not tell which usernames exist. */
void auth_password_burn(const char *pw, size_t len);

/* n random characters from [a-z0-9] and a NUL into out[n + 1]. 0 or -1. */
int auth_random_alnum(char *out, size_t n);

/* A new API token and its SHA-256 hex. 0 or -1 (no randomness). */
int auth_api_token_new(char token[AUTH_API_TOKEN_SIZE], char hash[AUTH_HEX_SHA256]);
/* A new registration token and its SHA-256 hex. 0 or -1. */
int auth_reg_token_new(char token[AUTH_REG_TOKEN_SIZE], char hash[AUTH_HEX_SHA256]);

/* SHA-256 of p[0..n) as lowercase hex. */
void auth_sha256_hex(const void *p, size_t n, char out[AUTH_HEX_SHA256]);
/* Constant-time equality of two NUL-terminated strings of equal length
 * (hashes); strings of different lengths are unequal. */
bool auth_hash_equal(const char *a, const char *b);

/* ---- sealing registration tokens ---- */

struct auth_sealkey {
    unsigned char k[AUTH_KEY_LEN];
};

/* Derives the key from secret material (HKDF-SHA256, info "drover
 * registration tokens"). 0 or -1. */
int auth_sealkey_derive(const void *ikm, size_t len, struct auth_sealkey *out);
/* Derives it from a PEM private key file (the CA key): the key's DER
 * encoding is the input, so re-wrapping the PEM does not change it.
 * 0, or -1 with a message in err. */
int auth_sealkey_from_pem_file(const char *path, struct auth_sealkey *out,
                               char *err, size_t errlen);

/*
 * Seals plain under k, bound to aad (the cluster id), into out as
 * "v1." + hex(nonce || ciphertext || tag). 0 or -1 (cap too small, no
 * randomness).
 */
int auth_seal(const struct auth_sealkey *k, const char *aad, const char *plain,
              char *out, size_t cap);
/* Opens what auth_seal made. 0, or -1 if it is malformed, was sealed under
 * another key or for another aad, or does not fit in cap with its NUL. */
int auth_unseal(const struct auth_sealkey *k, const char *aad, const char *sealed,
                char *out, size_t cap);

#endif
