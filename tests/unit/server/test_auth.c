/*
 * Tests of server/auth.c: password hashing and its encoding, tokens,
 * constant-time comparison, and sealing of registration tokens.
 */
#include <check.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/tls.h"
#include "server/auth.h"

static bool all_in(const char *s, const char *set)
{
    return strspn(s, set) == strlen(s);
}

START_TEST(password_roundtrip)
{
    char h[AUTH_PW_HASH_MAX];
    ck_assert_int_eq(auth_password_hash("correct horse", 13, h, sizeof(h)), 0);
    ck_assert_msg(strncmp(h, "$scrypt$ln=15,r=8,p=1$", 22) == 0, "encoding: %s", h);
    ck_assert_int_eq(auth_password_verify("correct horse", 13, h), 1);
    ck_assert_int_eq(auth_password_verify("correct horsf", 13, h), 0);
    ck_assert_int_eq(auth_password_verify("correct hors", 12, h), 0);
    ck_assert_int_eq(auth_password_verify("", 0, h), 0);
    /* Salted: the same password never hashes the same way twice. */
    char h2[AUTH_PW_HASH_MAX];
    ck_assert_int_eq(auth_password_hash("correct horse", 13, h2, sizeof(h2)), 0);
    ck_assert_str_ne(h, h2);
    ck_assert_int_eq(auth_password_verify("correct horse", 13, h2), 1);
}
END_TEST

START_TEST(password_binary_and_long)
{
    char pw[AUTH_PW_MAX], h[AUTH_PW_HASH_MAX];
    for (size_t i = 0; i < sizeof(pw); i++)
        pw[i] = (char)(i * 7 + 1);
    ck_assert_int_eq(auth_password_hash(pw, sizeof(pw), h, sizeof(h)), 0);
    ck_assert_int_eq(auth_password_verify(pw, sizeof(pw), h), 1);
    pw[sizeof(pw) - 1] ^= 1;
    ck_assert_int_eq(auth_password_verify(pw, sizeof(pw), h), 0);
}
END_TEST

START_TEST(password_small_buffer)
{
    char h[40] = "x";
    ck_assert_int_eq(auth_password_hash("pw", 2, h, sizeof(h)), -1);
    ck_assert_str_eq(h, "");
}
END_TEST

/* Hashes stored with other parameters keep verifying: the encoding carries
 * them, so the defaults can be raised later. */
START_TEST(password_other_params)
{
    unsigned char salt[16], key[32];
    char enc[200], sh[33], kh[65];
    memset(salt, 0x5a, sizeof(salt));
    ck_assert_int_eq(EVP_PBE_scrypt("pw1", 3, salt, 16, 1024, 4, 2, 64u << 20, key, 32), 1);
    for (int i = 0; i < 16; i++)
        snprintf(sh + 2 * i, 3, "%02x", salt[i]);
    for (int i = 0; i < 32; i++)
        snprintf(kh + 2 * i, 3, "%02x", key[i]);
    snprintf(enc, sizeof(enc), "$scrypt$ln=10,r=4,p=2$%s$%s", sh, kh);
    ck_assert_int_eq(auth_password_verify("pw1", 3, enc), 1);
    ck_assert_int_eq(auth_password_verify("pw2", 3, enc), 0);
}
END_TEST

START_TEST(password_malformed)
{
    char good[AUTH_PW_HASH_MAX], bad[AUTH_PW_HASH_MAX];
    ck_assert_int_eq(auth_password_hash("pw", 2, good, sizeof(good)), 0);
    const char *salt_key = strrchr(good, '$') - 32;    /* "<salt>$<key>" */
    const char *cases[] = {
        "", "plaintext", "$scrypt$", "$bcrypt$ln=15,r=8,p=1$00$00",
        "$scrypt$ln=15,r=8$aa$bb", "$scrypt$ln=15,r=8,p=1$zz$zz",
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        ck_assert_msg(auth_password_verify("pw", 2, cases[i]) == -1, "accepted %s", cases[i]);
    ck_assert_int_eq(auth_password_verify("pw", 2, NULL), -1);
    /* Parameters out of bounds are refused before any work is done: a
     * tampered row must not make us allocate gigabytes. */
    const char *params[] = { "ln=30,r=8,p=1", "ln=15,r=8,p=0", "ln=9,r=8,p=1",
                             "ln=20,r=32,p=1", "ln=15,r=99999999999,p=1", "ln=,r=8,p=1",
                             "ln=15,r=8,p=1,x=1" };
    for (size_t i = 0; i < sizeof(params) / sizeof(params[0]); i++) {
        snprintf(bad, sizeof(bad), "$scrypt$%s$%s", params[i], salt_key);
        ck_assert_msg(auth_password_verify("pw", 2, bad) == -1, "accepted %s", bad);
    }
    /* Truncated key. */
    snprintf(bad, sizeof(bad), "%.*s", (int)strlen(good) - 2, good);
    ck_assert_int_eq(auth_password_verify("pw", 2, bad), -1);
}
END_TEST

START_TEST(tokens)
{
    char t1[AUTH_API_TOKEN_SIZE], t2[AUTH_API_TOKEN_SIZE], h1[65], h2[65], want[65];
    ck_assert_int_eq(auth_api_token_new(t1, h1), 0);
    ck_assert_int_eq(auth_api_token_new(t2, h2), 0);
    ck_assert_int_eq(strlen(t1), AUTH_API_TOKEN_SIZE - 1);
    ck_assert(strncmp(t1, "drover_", 7) == 0);
    ck_assert(all_in(t1 + 7, "0123456789abcdef"));
    ck_assert_str_ne(t1, t2);
    tls_sha256_hex(t1, strlen(t1), want);
    ck_assert_str_eq(h1, want);
    char r[AUTH_REG_TOKEN_SIZE], rh[65];
    ck_assert_int_eq(auth_reg_token_new(r, rh), 0);
    ck_assert_int_eq(strlen(r), 64);
    ck_assert(all_in(r, "0123456789abcdef"));
    auth_sha256_hex(r, strlen(r), want);
    ck_assert_str_eq(rh, want);
}
END_TEST

START_TEST(random_alnum)
{
    char s[301];
    ck_assert_int_eq(auth_random_alnum(s, 300), 0);
    ck_assert_int_eq(strlen(s), 300);
    ck_assert(all_in(s, "abcdefghijklmnopqrstuvwxyz0123456789"));
    char e[1];
    ck_assert_int_eq(auth_random_alnum(e, 0), 0);
    ck_assert_str_eq(e, "");
}
END_TEST

START_TEST(hash_equal)
{
    ck_assert(auth_hash_equal("abc", "abc"));
    ck_assert(!auth_hash_equal("abc", "abd"));
    ck_assert(!auth_hash_equal("abc", "abcd"));
    ck_assert(!auth_hash_equal("", "a"));
    ck_assert(auth_hash_equal("", ""));
}
END_TEST

static struct auth_sealkey key_of(const char *s)
{
    struct auth_sealkey k;
    ck_assert_int_eq(auth_sealkey_derive(s, strlen(s), &k), 0);
    return k;
}

START_TEST(seal_roundtrip)
{
    struct auth_sealkey k = key_of("ca key bytes");
    char sealed[AUTH_SEALED_MAX], sealed2[AUTH_SEALED_MAX], out[100];
    const char *tok = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
    ck_assert_int_eq(auth_seal(&k, "c-abcde", tok, sealed, sizeof(sealed)), 0);
    ck_assert(strncmp(sealed, "v1.", 3) == 0);
    ck_assert_ptr_null(strstr(sealed, tok));
    ck_assert_int_eq(auth_unseal(&k, "c-abcde", sealed, out, sizeof(out)), 0);
    ck_assert_str_eq(out, tok);
    /* A fresh nonce each time. */
    ck_assert_int_eq(auth_seal(&k, "c-abcde", tok, sealed2, sizeof(sealed2)), 0);
    ck_assert_str_ne(sealed, sealed2);
    /* Too small an output buffer fails cleanly. */
    ck_assert_int_eq(auth_unseal(&k, "c-abcde", sealed, out, 10), -1);
    ck_assert_int_eq(auth_seal(&k, "c-abcde", tok, sealed2, 40), -1);
}
END_TEST

START_TEST(seal_refuses)
{
    struct auth_sealkey k = key_of("ca key bytes"), other = key_of("another CA");
    char sealed[AUTH_SEALED_MAX], out[100];
    ck_assert_int_eq(auth_seal(&k, "c-abcde", "secret", sealed, sizeof(sealed)), 0);
    /* Another key (a database copied next to another CA) or another row. */
    ck_assert_int_eq(auth_unseal(&other, "c-abcde", sealed, out, sizeof(out)), -1);
    ck_assert_int_eq(auth_unseal(&k, "c-zzzzz", sealed, out, sizeof(out)), -1);
    ck_assert_str_eq(out, "");
    /* Any flipped character: GCM's tag catches it. */
    for (size_t i = 3; i < strlen(sealed); i += 7) {
        char t[AUTH_SEALED_MAX];
        memcpy(t, sealed, sizeof(t));
        t[i] = t[i] == '0' ? '1' : '0';
        ck_assert_msg(auth_unseal(&k, "c-abcde", t, out, sizeof(out)) == -1, "at %zu", i);
    }
    const char *junk[] = { "", "v1.", "v2.00", "v1.zz", "v1.0011", "v1.000" };
    for (size_t i = 0; i < sizeof(junk) / sizeof(junk[0]); i++)
        ck_assert_int_eq(auth_unseal(&k, "c-abcde", junk[i], out, sizeof(out)), -1);
    ck_assert_int_eq(auth_unseal(&k, "c-abcde", NULL, out, sizeof(out)), -1);
}
END_TEST

/* The key comes from the private key itself, not from how its PEM is
 * wrapped, so replicas that received the CA key in another encoding agree. */
START_TEST(sealkey_from_pem)
{
    char dir[] = "/tmp/drover-authtest-XXXXXX", p1[64], p2[64], err[200];
    ck_assert_ptr_nonnull(mkdtemp(dir));
    snprintf(p1, sizeof(p1), "%s/a.key", dir);
    snprintf(p2, sizeof(p2), "%s/b.key", dir);
    EVP_PKEY *pk = EVP_EC_gen("P-256");
    ck_assert_ptr_nonnull(pk);
    FILE *f = fopen(p1, "w");
    ck_assert(f && PEM_write_PrivateKey(f, pk, NULL, NULL, 0, NULL, NULL) == 1);
    fclose(f);
    BIO *bio = BIO_new_file(p2, "w");
    ck_assert(bio && PEM_write_bio_PrivateKey_traditional(bio, pk, NULL, NULL, 0, NULL,
                                                          NULL) == 1);
    BIO_free(bio);
    struct auth_sealkey a, b;
    ck_assert_int_eq(auth_sealkey_from_pem_file(p1, &a, err, sizeof(err)), 0);
    ck_assert_int_eq(auth_sealkey_from_pem_file(p2, &b, err, sizeof(err)), 0);
    ck_assert(memcmp(a.k, b.k, sizeof(a.k)) == 0);
    EVP_PKEY_free(pk);
    /* Another key, another sealing key. */
    pk = EVP_EC_gen("P-256");
    f = fopen(p2, "w");
    ck_assert(f && PEM_write_PrivateKey(f, pk, NULL, NULL, 0, NULL, NULL) == 1);
    fclose(f);
    EVP_PKEY_free(pk);
    ck_assert_int_eq(auth_sealkey_from_pem_file(p2, &b, err, sizeof(err)), 0);
    ck_assert(memcmp(a.k, b.k, sizeof(a.k)) != 0);
    /* Missing or not a key. */
    unlink(p2);
    ck_assert_int_eq(auth_sealkey_from_pem_file(p2, &b, err, sizeof(err)), -1);
    f = fopen(p2, "w");
    fputs("not a key\n", f);
    fclose(f);
    ck_assert_int_eq(auth_sealkey_from_pem_file(p2, &b, err, sizeof(err)), -1);
    ck_assert_ptr_nonnull(strstr(err, "no readable private key"));
    unlink(p1);
    unlink(p2);
    rmdir(dir);
}
END_TEST

Suite *suite_server_auth(void)
{
    Suite *s = suite_create("server_auth");
    TCase *tc = tcase_create("auth");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, password_roundtrip);
    tcase_add_test(tc, password_binary_and_long);
    tcase_add_test(tc, password_small_buffer);
    tcase_add_test(tc, password_other_params);
    tcase_add_test(tc, password_malformed);
    tcase_add_test(tc, tokens);
    tcase_add_test(tc, random_alnum);
    tcase_add_test(tc, hash_equal);
    tcase_add_test(tc, seal_roundtrip);
    tcase_add_test(tc, seal_refuses);
    tcase_add_test(tc, sealkey_from_pem);
    suite_add_tcase(s, tc);
    return s;
}
