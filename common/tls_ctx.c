/*
 * tls_ctx: the OpenSSL contexts every drover connection is made from (see
 * tls.h): the shared protocol and cipher floor, the server context with ALPN
 * http/1.1, client contexts pinned to a CA or (for fetching /cacerts and
 * --insecure) verifying nothing, and naming the host a client must reach.
 */
#include "common/tls.h"

#include <openssl/err.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <string.h>

#include "common/tls_int.h"

/* Forward-secret AEAD only; TLS 1.3 keeps OpenSSL's default suites. */
static const char tls12_ciphers[] =
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
    "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305";
static const unsigned char alpn_http11[] = "\x08http/1.1";

/* Settings every drover context shares, client or server. */
static SSL_CTX *ctx_new(const SSL_METHOD *method, char *err, size_t errlen)
{
    SSL_CTX *ctx = SSL_CTX_new(method);
    if (!ctx) {
        tls_set_ssl_err(err, errlen, "SSL_CTX_new");
        return NULL;
    }
    if (SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) != 1 ||
        SSL_CTX_set_cipher_list(ctx, tls12_ciphers) != 1) {
        tls_set_ssl_err(err, errlen, "TLS protocol settings");
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
        tls_set_ssl_err(err, errlen, cert_file);
        goto fail;
    }
    if (SSL_CTX_use_PrivateKey_file(ctx, key_file, SSL_FILETYPE_PEM) != 1 ||
        SSL_CTX_check_private_key(ctx) != 1) {
        tls_set_ssl_err(err, errlen, key_file);
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
        tls_set_ssl_err(err, errlen, "ALPN");
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
        tls_set_ssl_err(err, errlen, "X509_STORE_new");
        return NULL;
    }
    if (!ca_pem || tls_pem_each_cert(ca_pem, len, store_add, store) < 1) {
        ERR_clear_error();
        tls_set_err(err, errlen, "pinned CA: no valid PEM certificate");
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
    if (host_is_ip || tls_ip_literal(host, ip)) {
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

