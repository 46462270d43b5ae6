/*
 * sharedca: the replicas' CA kept in the datastore. See sharedca.h.
 */
#include "server/sharedca.h"

#include <openssl/crypto.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/log.h"
#include "common/tls.h"
#include "server/auth.h"
#include "server/db_migrate.h"
#include "server/store.h"
#include "server/store_peers.h"

#define OPEN_ATTEMPTS 30
#define SEAL_AAD "drover shared CA key"
#define SEALED_CAP 8192

struct paths {
    char crt[4096], key[4096];
};

static void paths_of(const char *dir, struct paths *p)
{
    snprintf(p->crt, sizeof(p->crt), "%s/ca.crt", dir);
    snprintf(p->key, sizeof(p->key), "%s/ca.key", dir);
}

static struct db *open_retrying(const char *datastore, const char *dir)
{
    struct db_options opt = { .datastore = datastore, .data_dir = dir };
    char err[512];
    for (int i = 0; i < OPEN_ATTEMPTS; i++) {
        struct db *db = NULL;
        int rc = db_open(&opt, &db, err, sizeof(err));
        if (rc == 0 && (rc = db_migrate(db)) == 0)
            return db;
        if (db)
            snprintf(err, sizeof(err), "%s", db_errmsg(db));
        db_close(db);
        if (rc != DB_UNAVAILABLE && rc != DB_BUSY)
            break;
        log_warn("shared CA: datastore unavailable (%s); retrying", err);
        sleep(1);
    }
    log_error("shared CA: cannot reach the datastore: %s", err);
    return NULL;
}

/* auth_seal takes short texts: the key goes in pieces, each bound to its
 * place and the count ("<aad> i/n"), joined with ','. */
#define PIECE 90

static int seal_pem(const struct auth_sealkey *k, const char *pem, char *out, size_t cap)
{
    size_t len = strlen(pem), n = (len + PIECE - 1) / PIECE, used = 0;
    for (size_t i = 0; i < n; i++) {
        char plain[PIECE + 1], aad[64];
        size_t pl = len - i * PIECE < PIECE ? len - i * PIECE : PIECE;
        memcpy(plain, pem + i * PIECE, pl);
        plain[pl] = '\0';
        snprintf(aad, sizeof(aad), SEAL_AAD " %zu/%zu", i, n);
        if (used + 2 > cap || (i && (out[used++] = ',', 0)) ||
            auth_seal(k, aad, plain, out + used, cap - used) < 0) {
            OPENSSL_cleanse(plain, sizeof(plain));
            return -1;
        }
        OPENSSL_cleanse(plain, sizeof(plain));
        used += strlen(out + used);
    }
    return n ? 0 : -1;
}

static int unseal_pem(const struct auth_sealkey *k, const char *sealed, char *out,
                      size_t cap)
{
    size_t n = 1, used = 0;
    for (const char *c = sealed; *c; c++)
        n += *c == ',';
    const char *p = sealed;
    for (size_t i = 0; i < n; i++) {
        char piece[AUTH_SEALED_MAX * 2], aad[64];
        size_t pl = strcspn(p, ",");
        if (pl >= sizeof(piece))
            return -1;
        memcpy(piece, p, pl);
        piece[pl] = '\0';
        snprintf(aad, sizeof(aad), SEAL_AAD " %zu/%zu", i, n);
        if (auth_unseal(k, aad, piece, out + used, cap - used) < 0)
            return -1;
        used += strlen(out + used);
        p += pl + (p[pl] == ',');
    }
    return 0;
}

/* Offers this data-dir's CA (made now if there is none). */
static int offer_local(struct db *db, const char *dir, const struct auth_sealkey *k)
{
    struct tls_pki pki;
    struct paths p;
    char err[512], *crt = NULL, *key = NULL;
    size_t cl, kl;
    if (tls_pki_ensure(dir, NULL, 0, &pki, err, sizeof(err)) < 0) {
        log_error("shared CA: %s", err);
        return -1;
    }
    tls_pki_free(&pki);
    paths_of(dir, &p);
    if (tls_file_read(p.crt, &crt, &cl, err, sizeof(err)) != 0 ||
        tls_file_read(p.key, &key, &kl, err, sizeof(err)) != 0) {
        log_error("shared CA: %s", err);
        free(crt);
        return -1;
    }
    char *sealed = malloc(SEALED_CAP);
    int rc = -1;
    if (!sealed || seal_pem(k, key, sealed, SEALED_CAP) < 0)
        log_error("shared CA: cannot seal its key");
    else if ((rc = store_shared_ca_put(db, crt, sealed, store_now_ms())) < 0)
        log_error("shared CA: cannot store it: %s", db_errmsg(db));
    OPENSSL_cleanse(key, kl);
    free(key);
    free(crt);
    free(sealed);
    return rc < 0 ? -1 : 0;
}

/* Writes the shared CA into data-dir unless it is there already. */
static int install(const char *dir, const char *crt, const char *key)
{
    struct paths p;
    char err[512], *have = NULL;
    size_t hl = 0;
    paths_of(dir, &p);
    bool same = tls_file_read(p.crt, &have, &hl, err, sizeof(err)) == 0 &&
                hl == strlen(crt) && memcmp(have, crt, hl) == 0;
    free(have);
    if (same)
        return 0;
    if (tls_file_write(dir, p.key, key, strlen(key), 0600, err, sizeof(err)) < 0 ||
        tls_file_write(dir, p.crt, crt, strlen(crt), 0644, err, sizeof(err)) < 0) {
        log_error("shared CA: %s", err);
        return -1;
    }
    log_info("shared CA: installed the replicas' CA in %s", dir);
    return 0;
}

static int fetch_and_install(struct db *db, const char *dir, const struct auth_sealkey *k)
{
    char *crt = NULL, *sealed = NULL;
    int rc = store_shared_ca_get(db, &crt, &sealed);
    if (rc == DB_NOTFOUND) {
        if (offer_local(db, dir, k) < 0)
            return -1;
        rc = store_shared_ca_get(db, &crt, &sealed);
    }
    if (rc < 0) {
        log_error("shared CA: cannot read it: %s", db_errmsg(db));
        return -1;
    }
    char *key = malloc(SEALED_CAP);
    rc = -1;
    if (!key)
        log_error("shared CA: out of memory");
    else if (unseal_pem(k, sealed, key, SEALED_CAP) < 0)
        log_error("shared CA: cannot open its key: the peer token differs from the one "
                  "of the replica that stored it");
    else
        rc = install(dir, crt, key);
    if (key) {
        OPENSSL_cleanse(key, SEALED_CAP);
        free(key);
    }
    free(crt);
    free(sealed);
    return rc;
}

int sharedca_sync(const char *datastore, const char *data_dir, const char *peer_token,
                  size_t token_len)
{
    struct auth_sealkey k;
    if (auth_sealkey_derive(peer_token, token_len, &k) < 0) {
        log_error("shared CA: cannot derive a key from the peer token");
        return -1;
    }
    struct db *db = open_retrying(datastore, data_dir);
    int rc = db ? fetch_and_install(db, data_dir, &k) : -1;
    db_close(db);
    OPENSSL_cleanse(&k, sizeof(k));
    return rc;
}
