/*
 * kubeconfig: a user's kubeconfig for one cluster. See kubeconfig.h.
 *
 * Checks every parameter first, so a refusal names the field; then builds
 * the three derived values (proxy URL, user entry name, base64 CA) and
 * writes one document with common/yamlout.
 */
#include "server/kubeconfig.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <openssl/evp.h>

#include "common/url.h"
#include "common/yamlout.h"
#include "server/kubeproxy.h"   /* KUBEPROXY_PREFIX: where the proxy listens */

#define CLUSTER_ID_MAX 63

static int fail(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int fail(char *err, size_t errlen, const char *fmt, ...)
{
    if (err && errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return -1;
}

/* ---- parameter checks: NULL if v is fine, else why not (static text) ---- */

/* The proxy path is appended to it, so a query or fragment would swallow
 * the path; url_parse refuses fragments, userinfo and bad ports. */
static const char *check_server_url(const char *v)
{
    struct url u;
    const char *why = NULL;
    if (url_parse(v, &u, &why) < 0)
        return why;
    if (strcmp(u.scheme, "https") != 0)
        return "must be an https:// URL";
    if (strchr(v, '?'))
        return "must not have a query";
    return NULL;
}

/* The same rule as the manifest's: the id is also a label value there. */
static const char *check_cluster_id(const char *v)
{
    static const char why[] =
        "must be 1-63 characters of a-z, 0-9 and '-', not starting or ending with '-'";
    size_t len = strlen(v);
    if (len > CLUSTER_ID_MAX || v[0] == '-' || v[len - 1] == '-')
        return why;
    for (const char *c = v; *c; c++)
        if (!((*c >= 'a' && *c <= 'z') || (*c >= '0' && *c <= '9') || *c == '-'))
            return why;
    return NULL;
}

/* Names are shown by `kubectl config get-contexts` and typed back into
 * `kubectl config use-context`: any text, but no control characters. */
static const char *check_name(const char *v)
{
    if (!yw_utf8_ok(v))
        return "must be valid UTF-8";
    for (const unsigned char *c = (const unsigned char *)v; *c; c++)
        if (*c < ' ' || *c == 0x7f)
            return "must not hold control characters";
    return NULL;
}

/* Not parsed as X.509 here (the server loaded it already); the shape check
 * catches a key or an empty file passed by mistake. */
static const char *check_ca_pem(const char *v)
{
    for (const unsigned char *c = (const unsigned char *)v; *c; c++)
        if ((*c < ' ' && *c != '\n' && *c != '\r' && *c != '\t') || *c > '~')
            return "must be ASCII PEM text";
    if (!strstr(v, "-----BEGIN CERTIFICATE-----") || !strstr(v, "-----END CERTIFICATE-----"))
        return "must hold a PEM certificate";
    return NULL;
}

/* kubectl sends it as "Authorization: Bearer <token>": a header value
 * must not hold spaces or control characters. */
static const char *check_token(const char *v)
{
    for (const unsigned char *c = (const unsigned char *)v; *c; c++)
        if (*c <= ' ' || *c > '~')
            return "must be printable ASCII without spaces";
    return NULL;
}

/* 0, or -1 with "<field>: <why>" in err. Never quotes a value: the token is
 * a secret and the others may be long. */
static int check_params(const struct kubeconfig_params *p, char *err, size_t errlen)
{
    if (!p)
        return fail(err, errlen, "kubeconfig_render: no parameters");
    const struct {
        const char *name, *value;
        size_t max;
        const char *(*check)(const char *);
    } fields[] = {
        { "server_url", p->server_url, KUBECONFIG_MAX_VALUE, check_server_url },
        { "cluster_id", p->cluster_id, KUBECONFIG_MAX_VALUE, check_cluster_id },
        { "cluster_name", p->cluster_name, KUBECONFIG_MAX_VALUE, check_name },
        { "ca_pem", p->ca_pem, KUBECONFIG_MAX_CA_PEM, check_ca_pem },
        { "username", p->username, KUBECONFIG_MAX_VALUE, check_name },
        { "token", p->token, KUBECONFIG_MAX_VALUE, check_token },
    };
    for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) {
        const char *v = fields[i].value, *why;
        if (!v || !*v)
            return fail(err, errlen, "%s: missing", fields[i].name);
        if (strlen(v) > fields[i].max)
            return fail(err, errlen, "%s: longer than %zu bytes", fields[i].name,
                        fields[i].max);
        if ((why = fields[i].check(v)) != NULL)
            return fail(err, errlen, "%s: %s", fields[i].name, why);
    }
    return 0;
}

/* ---- render ---- */

/* The values the document is written from. */
struct entries {
    char server[KUBECONFIG_MAX_VALUE + sizeof(KUBEPROXY_PREFIX) + CLUSTER_ID_MAX];
    char user[2 * KUBECONFIG_MAX_VALUE + 2];
    char *ca_data;  /* base64 of the PEM, one line */
};

/* 0, or -1 if out of memory. The params are checked, so the texts fit. */
static int make_entries(const struct kubeconfig_params *p, struct entries *e)
{
    size_t url_len = strlen(p->server_url);
    while (url_len && p->server_url[url_len - 1] == '/')
        url_len--;
    snprintf(e->server, sizeof(e->server), "%.*s" KUBEPROXY_PREFIX "%s", (int)url_len,
             p->server_url, p->cluster_id);
    /* Qualified by the cluster: kubeconfigs of several clusters are often
     * merged into one file, where a plain per-user name would make the
     * clusters share whichever token was merged last. */
    snprintf(e->user, sizeof(e->user), "%s@%s", p->username, p->cluster_name);
    /* EVP_EncodeBlock, not the EVP_Encode* stream: one line with no breaks,
     * as kubectl itself writes this field. */
    size_t pem_len = strlen(p->ca_pem);
    e->ca_data = malloc(4 * ((pem_len + 2) / 3) + 1);
    if (!e->ca_data)
        return -1;
    EVP_EncodeBlock((unsigned char *)e->ca_data, (const unsigned char *)p->ca_pem,
                    (int)pem_len);
    return 0;
}

static void document(struct yw *w, const struct kubeconfig_params *p, const struct entries *e)
{
    yw_doc_begin(w, "v1", "Config");
    yw_key_seq(w, "clusters");
    yw_map_begin(w);
    yw_kv(w, "name", p->cluster_name);
    yw_key_map(w, "cluster");
    yw_kv(w, "server", e->server);
    yw_kv(w, "certificate-authority-data", e->ca_data);
    yw_map_end(w);
    yw_map_end(w);
    yw_seq_end(w);

    yw_key_seq(w, "users");
    yw_map_begin(w);
    yw_kv(w, "name", e->user);
    yw_key_map(w, "user");
    yw_kv(w, "token", p->token);
    yw_map_end(w);
    yw_map_end(w);
    yw_seq_end(w);

    yw_key_seq(w, "contexts");
    yw_map_begin(w);
    yw_kv(w, "name", p->cluster_name);
    yw_key_map(w, "context");
    yw_kv(w, "cluster", p->cluster_name);
    yw_kv(w, "user", e->user);
    yw_map_end(w);
    yw_map_end(w);
    yw_seq_end(w);

    yw_kv(w, "current-context", p->cluster_name);
    yw_key_map(w, "preferences");
    yw_map_end(w);
    yw_doc_end(w);
}

int kubeconfig_render(const struct kubeconfig_params *p, char **out, size_t *len, char *err,
                      size_t errlen)
{
    struct entries *e = NULL;
    struct yw w = { 0 };    /* yw_free is safe on it before yw_init */
    char why[128];
    int rc = -1;

    if (!out || !len)
        return fail(err, errlen, "kubeconfig_render: out and len are required");
    *out = NULL;
    *len = 0;
    if (check_params(p, err, errlen) < 0)
        return -1;
    /* ~6 KiB: off the stack, which may be a server worker's. */
    e = calloc(1, sizeof(*e));
    if (!e || make_entries(p, e) < 0) {
        fail(err, errlen, "out of memory");
        goto out;
    }
    yw_init(&w, KUBECONFIG_MAX_OUTPUT);   /* a failure here comes out of yw_finish */
    document(&w, p, e);
    if (yw_finish(&w, out, len, why, sizeof(why)) < 0) {
        fail(err, errlen, "rendering the kubeconfig: %s", why);
        goto out;
    }
    rc = 0;
out:
    yw_free(&w);
    if (e)
        free(e->ca_data);
    free(e);
    return rc;
}
