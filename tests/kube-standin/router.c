/*
 * router: every request to the kube-standin test stand-in comes through
 * here. It makes the request context (struct kreq), authenticates (auth.c),
 * works out what is asked the way the real API's request-info resolver does
 * (group, version, namespace, resource, name, subresource, verb), authorizes
 * (rbac.c) and hands over to a handler. It also owns the answer helpers, so
 * every answer is audited exactly once (ks_on_answered).
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/hmap.h"
#include "common/log.h"
#include "tests/kube-standin/standin.h"

#define MAX_SEGS 12

/* ---- answers ---- */

json_t *ks_status_obj(int code, const char *reason, const char *message, json_t *details)
{
    json_t *st = json_pack("{s:s,s:s,s:{},s:s}", "kind", "Status", "apiVersion", "v1",
                           "metadata", "status", code < 400 ? "Success" : "Failure");
    if (message)
        json_object_set_new(st, "message", json_string(message));
    if (reason)
        json_object_set_new(st, "reason", json_string(reason));
    if (details)
        json_object_set_new(st, "details", details);
    json_object_set_new(st, "code", json_integer(code));
    return st;
}

void ks_reply_json(struct kreq *k, int status, json_t *body)
{
    char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
    json_decref(body);
    if (!text) {
        hs_respond(k->r, 500, "text/plain", "out of memory\n", 14, NULL);
        return;
    }
    size_t n = strlen(text);
    text[n] = '\n';     /* the real server ends JSON answers with a newline */
    hs_respond(k->r, status, "application/json", text, n + 1, NULL);
    free(text);
}

void ks_reply_status(struct kreq *k, int code, const char *reason, json_t *details,
                     const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    ks_reply_json(k, code, ks_status_obj(code, reason, msg, details));
}

void ks_reply_text(struct kreq *k, int status, const char *text)
{
    hs_respond(k->r, status, "text/plain; charset=utf-8", text, strlen(text), NULL);
}

void ks_reply_not_found(struct kreq *k, const struct kres *res, const char *name)
{
    json_t *d = json_pack("{s:s,s:s}", "name", name, "kind", res->name);
    if (res->group[0])
        json_object_set_new(d, "group", json_string(res->group));
    ks_reply_status(k, 404, "NotFound", d, "%s%s%s \"%s\" not found", res->name,
                    res->group[0] ? "." : "", res->group, name);
}

/* ---- the query string ---- */

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Form decoding: '+' is a space (Go's url.Values encodes spaces that way). */
static ssize_t form_decode(const char *s, size_t len, char *dst, size_t cap)
{
    size_t o = 0;
    for (size_t i = 0; i < len; i++) {
        int c = (unsigned char)s[i];
        if (c == '+') {
            c = ' ';
        } else if (c == '%') {
            if (i + 2 >= len)
                return -1;
            int h = hexval(s[i + 1]), l = hexval(s[i + 2]);
            if (h < 0 || l < 0)
                return -1;
            c = h * 16 + l;
            i += 2;
        }
        if (o + 1 >= cap || c == 0)
            return -1;
        dst[o++] = (char)c;
    }
    dst[o] = '\0';
    return (ssize_t)o;
}

/* Calls fn(name, value) for each parameter; stops when fn returns nonzero. */
static int query_each(const char *q, int (*fn)(void *ud, const char *name, const char *s,
                                               size_t len), void *ud)
{
    while (*q) {
        const char *amp = strchr(q, '&');
        size_t n = amp ? (size_t)(amp - q) : strlen(q);
        const char *eq = memchr(q, '=', n);
        char name[64];
        size_t nl = eq ? (size_t)(eq - q) : n;
        if (form_decode(q, nl, name, sizeof(name)) >= 0) {
            const char *v = eq ? eq + 1 : q + n;
            int rc = fn(ud, name, v, (size_t)(q + n - v));
            if (rc)
                return rc;
        }
        q += n + (amp ? 1 : 0);
    }
    return 0;
}

struct qfind {
    const char *name;
    char *dst;
    size_t cap;
    ssize_t rc;
};

static int qfind_one(void *ud, const char *name, const char *s, size_t len)
{
    struct qfind *f = ud;
    if (strcmp(name, f->name) != 0)
        return 0;
    f->rc = form_decode(s, len, f->dst, f->cap);
    if (f->rc < 0)
        f->rc = -2;
    return 1;
}

ssize_t ks_query(const struct kreq *k, const char *name, char *dst, size_t cap)
{
    struct qfind f = { name, dst, cap, -1 };
    if (cap)
        dst[0] = '\0';
    query_each(k->query, qfind_one, &f);
    return f.rc;
}

bool ks_query_bool(const struct kreq *k, const char *name)
{
    char v[16];
    if (ks_query(k, name, v, sizeof(v)) < 0)
        return false;
    return strcmp(v, "true") == 0 || strcmp(v, "1") == 0 || strcmp(v, "True") == 0;
}

struct qall {
    const char *name;
    json_t *out;
};

static int qall_one(void *ud, const char *name, const char *s, size_t len)
{
    struct qall *a = ud;
    char v[4096];
    if (strcmp(name, a->name) == 0 && form_decode(s, len, v, sizeof(v)) >= 0)
        json_array_append_new(a->out, json_string(v));
    return 0;
}

json_t *ks_query_all(const struct kreq *k, const char *name)
{
    struct qall a = { name, json_array() };
    query_each(k->query, qall_one, &a);
    return a.out;
}

/* ---- request context ---- */

void kreq_free(struct kreq *k)
{
    if (!k)
        return;
    free(k->path);
    free(k->query);
    free(k->impersonator);
    kuser_clear(&k->user);
    free(k);
}

void ks_on_answered(const struct hs_req *r, int status, uint64_t usec, void *ud)
{
    struct ks *ks = ud;
    char key[32];
    (void)usec;
    snprintf(key, sizeof(key), "%p", (const void *)r);
    struct kreq *k = hmap_del(ks->inflight, key);
    if (!k)
        return;
    if (status == 101 && k->audit_status)
        status = k->audit_status;
    audit_record(ks, k, status);
    kreq_free(k);
}

static int copy_seg(char *dst, size_t cap, const char *s)
{
    if (strlen(s) >= cap)
        return -1;
    snprintf(dst, cap, "%s", s);
    return 0;
}

/*
 * Resolves a resource path into k->a the way the real request-info resolver
 * does. Returns 1 for a resource request, 0 for a non-resource URL, -1 for a
 * path too long to be either.
 */
static int resolve(struct kreq *k, char **seg, size_t n)
{
    struct kattrs *a = &k->a;
    size_t i;
    if (n >= 2 && strcmp(seg[0], "api") == 0) {
        a->group[0] = '\0';
        if (copy_seg(a->version, sizeof(a->version), seg[1]) < 0)
            return -1;
        i = 2;
    } else if (n >= 3 && strcmp(seg[0], "apis") == 0) {
        if (copy_seg(a->group, sizeof(a->group), seg[1]) < 0 ||
            copy_seg(a->version, sizeof(a->version), seg[2]) < 0)
            return -1;
        i = 3;
    } else {
        return 0;
    }
    if (i == n)
        return 0;   /* a discovery document */
    bool watch = false;
    if (strcmp(seg[i], "watch") == 0) {
        watch = true;
        i++;
    }
    if (i + 1 < n && strcmp(seg[i], "namespaces") == 0) {
        if (copy_seg(a->ns, sizeof(a->ns), seg[i + 1]) < 0)
            return -1;
        /* namespaces/NAME/status and /finalize are the namespace's own. */
        if (i + 2 < n && strcmp(seg[i + 2], "status") != 0 &&
            strcmp(seg[i + 2], "finalize") != 0)
            i += 2;
    }
    size_t left = n - i;
    if (left == 0 || left > 3)
        return -1;
    if (copy_seg(a->resname, sizeof(a->resname), seg[i]) < 0 ||
        (left > 1 && copy_seg(a->name, sizeof(a->name), seg[i + 1]) < 0) ||
        (left > 2 && copy_seg(a->sub, sizeof(a->sub), seg[i + 2]) < 0))
        return -1;
    a->resource = true;
    a->res = kres_find(a->group, a->version, a->resname);
    const char *verb = "get";
    if (strcmp(k->method, "GET") == 0 || strcmp(k->method, "HEAD") == 0) {
        if (watch || ks_query_bool(k, "watch"))
            verb = "watch";
        else if (!a->name[0])
            verb = "list";
    } else if (strcmp(k->method, "POST") == 0) {
        verb = "create";
    } else if (strcmp(k->method, "PUT") == 0) {
        verb = "update";
    } else if (strcmp(k->method, "PATCH") == 0) {
        verb = "patch";
    } else if (strcmp(k->method, "DELETE") == 0) {
        verb = a->name[0] ? "delete" : "deletecollection";
    } else {
        verb = "";
    }
    /* Streaming subresources are authorized as create whatever the method,
     * as the real server does since websockets (GET) carry them. */
    if (strcmp(a->sub, "exec") == 0 || strcmp(a->sub, "portforward") == 0 ||
        strcmp(a->sub, "attach") == 0)
        verb = "create";
    snprintf(a->verb, sizeof(a->verb), "%s", verb);
    return 1;
}

static bool wants_table(const struct kreq *k)
{
    const struct http_header *h = hs_header(k->r, "accept");
    if (!h)
        return false;
    for (size_t i = 0; i + 8 <= h->value_len; i++)
        if (memcmp(h->value + i, "as=Table", 8) == 0)
            return true;
    return false;
}

static void route_resource(struct kreq *k)
{
    struct kattrs *a = &k->a;
    if (!a->res || (a->sub[0] && !kres_sub_known(a->res, a->sub)) ||
        (a->ns[0] && !a->res->namespaced && strcmp(a->resname, "namespaces") != 0)) {
        ks_reply_status(k, 404, "NotFound", NULL,
                        "the server could not find the requested resource");
        return;
    }
    if (!a->verb[0] || (a->res->create_only && strcmp(a->verb, "create") != 0)) {
        ks_reply_status(k, 405, "MethodNotAllowed", NULL,
                        "the server does not allow this method on the requested resource");
        return;
    }
    if (!rbac_allows_attrs(k->ks, &k->user, a)) {
        rbac_forbid(k);
        return;
    }
    if (strcmp(a->sub, "log") == 0)
        h_log(k);
    else if (strcmp(a->sub, "exec") == 0)
        h_exec(k);
    else if (strcmp(a->sub, "portforward") == 0)
        h_portforward(k);
    else if (strcmp(a->verb, "get") == 0)
        h_get(k);
    else if (strcmp(a->verb, "list") == 0)
        h_list(k);
    else if (strcmp(a->verb, "watch") == 0)
        watch_start(k);
    else
        h_write(k);
}

static void route(struct kreq *k)
{
    char *seg[MAX_SEGS];
    size_t n = 0;
    char *save = NULL;
    char *copy = strdup(k->path);
    if (!copy) {
        ks_reply_status(k, 500, "InternalError", NULL, "out of memory");
        return;
    }
    for (char *t = strtok_r(copy, "/", &save); t; t = strtok_r(NULL, "/", &save)) {
        if (n == MAX_SEGS) {
            n = MAX_SEGS + 1;
            break;
        }
        seg[n++] = t;
    }
    int kind = n > MAX_SEGS ? -1 : resolve(k, seg, n);
    free(copy);
    if (auth_request(k) < 0)
        return;
    if (kind == 1) {
        route_resource(k);
        return;
    }
    /* Discovery and health are open to every authenticated user, as the
     * system:discovery and system:public-info-viewer roles make them. */
    if (kind == 0 && (disc_handle(k) || openapi_handle(k)))
        return;
    ks_reply_status(k, 404, "NotFound", NULL, "the server could not find the requested resource");
}

void ks_dispatch(struct hs_req *r, void *ud)
{
    struct ks *ks = ud;
    struct kreq *k = calloc(1, sizeof(*k));
    if (!k) {
        hs_error(r, 503, "ServiceUnavailable", "out of memory");
        return;
    }
    k->ks = ks;
    k->r = r;
    snprintf(k->key, sizeof(k->key), "%p", (void *)r);
    const struct http_request *h = hs_request(r);
    snprintf(k->method, sizeof(k->method), "%.*s", (int)h->method_len, h->method);
    size_t plen, qlen;
    const char *p = hs_path(r, &plen), *q = hs_query(r, &qlen);
    k->path = malloc(plen + 1);
    k->query = strndup(q, qlen);
    if (!k->path || !k->query || hmap_put(ks->inflight, k->key, k) == k) {
        kreq_free(k);
        hs_error(r, 503, "ServiceUnavailable", "out of memory");
        return;
    }
    if (http1_pct_decode(p, plen, k->path, plen + 1, true) < 0) {
        k->path[0] = '\0';
        ks_reply_status(k, 400, "BadRequest", NULL, "malformed request path");
        return;
    }
    k->table = wants_table(k);
    log_debug("%s %s%s%s", k->method, k->path, k->query[0] ? "?" : "", k->query);
    route(k);
}
