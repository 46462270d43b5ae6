/*
 * api: routing of /v3 and the life of an API call. See api.h and api_int.h.
 *
 * Ownership: a struct api_call owns its request from dispatch until it is
 * answered; in between it is in exactly one place: reading its body, in the
 * pool, waiting at the hashing gate, or held back on a timer.
 */
#include "server/api.h"

#include <openssl/crypto.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/hmap.h"
#include "common/log.h"
#include "server/api_int.h"
#include "server/audit.h"

/* Password hashing takes ~32 MiB and a worker for tens of milliseconds: at
 * most this many run at once, so a login flood cannot take every worker or
 * much memory; more wait in a bounded line. */
#define HEAVY_CAP   2
#define WAIT_CAP    256

static const struct api_route *const route_tables[] = {
    api_token_routes, api_user_routes, api_cluster_routes, api_member_routes,
    api_import_routes,
};
#define NTABLES (sizeof(route_tables) / sizeof(route_tables[0]))

struct api *api_new(struct loop *l, const struct api_cfg *cfg)
{
    struct api *a = calloc(1, sizeof(*a));
    if (!a || !(a->throttle = throttle_new(0, 0))) {
        free(a);
        return NULL;
    }
    a->loop = l;
    snprintf(a->server_url, sizeof(a->server_url), "%s", cfg->server_url);
    size_t n = strlen(a->server_url);
    while (n > 0 && a->server_url[n - 1] == '/')    /* it is joined with "/v3/..." */
        a->server_url[--n] = '\0';
    snprintf(a->ca_checksum, sizeof(a->ca_checksum), "%s",
             cfg->ca_checksum ? cfg->ca_checksum : "");
    a->ca_pem = strdup(cfg->ca_pem ? cfg->ca_pem : "");
    if (!a->ca_pem) {
        throttle_free(a->throttle);
        free(a);
        return NULL;
    }
    a->seal = cfg->seal;
    a->on_cluster_deleted = cfg->on_cluster_deleted;
    a->on_membership_changed = cfg->on_membership_changed;
    a->node_connected = cfg->node_connected;
    a->ud = cfg->ud;
    a->heavy_cap = HEAVY_CAP;
    return a;
}

void api_membership_changed(struct api *a, const char *cluster)
{
    if (a->on_membership_changed)
        a->on_membership_changed(a->ud, cluster);
}

void api_set_pool(struct api *a, struct db_pool *pool)
{
    a->pool = pool;
}

/* ---- answering ---- */

static void send_error(struct hs_req *r, int status, const char *code,
                       const char *headers, const char *msg)
{
    json_t *j = json_pack("{s:{s:i,s:s,s:s}}", "error", "status", status, "code", code,
                          "message", msg);
    char *body = j ? json_dumps(j, JSON_COMPACT) : NULL;
    json_decref(j);
    if (!body) {
        hs_error(r, status, code, "%s", msg);
        return;
    }
    hs_respond(r, status, "application/json", body, strlen(body),
               headers && headers[0] ? headers : NULL);
    free(body);
}

static void call_free(struct api_call *c)
{
    json_decref(c->in);
    json_decref(c->out);
    free(c->raw);
    OPENSSL_cleanse(c->pw_hash, sizeof(c->pw_hash));
    free(c);
}

/* Answers from c and frees it. */
/* ---- the /k8s authorization cache ----
 * Every kubectl request is authorized (token, then membership). Asking the
 * datastore each time puts a database round trip in front of every GET and
 * queues concurrent clients behind the pool; a decision is therefore reused
 * for AUTHZ_TTL_MS. Any successful API write clears the cache, so a logout,
 * a removed member or a deleted cluster takes effect at once on this
 * replica; an expiring token may outlive its expiry by at most the TTL. */
#define AUTHZ_TTL_MS 5000
#define AUTHZ_MAX 20000

struct authz_entry {
    uint64_t until;
    char username[STORE_NAME_MAX + 1];
};

static void free_entry(const char *key, void *val, void *ud)
{
    (void)key;
    (void)ud;
    free(val);
}

static void authz_clear(struct api *a)
{
    if (!a->authz)
        return;
    hmap_each(a->authz, free_entry, NULL);
    hmap_free(a->authz);
    a->authz = NULL;
}

static void authz_key(char *out, size_t cap, const char *token_hash, const char *cluster)
{
    snprintf(out, cap, "%s|%s", token_hash, cluster);
}

static const char *authz_lookup(struct api *a, const char *token_hash, const char *cluster)
{
    char key[AUTH_HEX_SHA256 + API_SEG_MAX + 2];
    if (!a->authz)
        return NULL;
    authz_key(key, sizeof(key), token_hash, cluster);
    struct authz_entry *e = hmap_get(a->authz, key);
    if (!e || e->until < loop_now_ms(a->loop))
        return NULL;
    return e->username;
}

static void authz_store(struct api *a, const char *token_hash, const char *cluster,
                        const char *username)
{
    char key[AUTH_HEX_SHA256 + API_SEG_MAX + 2];
    if (a->authz && hmap_count(a->authz) >= AUTHZ_MAX)
        authz_clear(a);     /* crude but bounded; entries are cheap to rebuild */
    if (!a->authz && !(a->authz = hmap_new()))
        return;
    struct authz_entry *e = malloc(sizeof(*e));
    if (!e)
        return;
    e->until = loop_now_ms(a->loop) + AUTHZ_TTL_MS;
    snprintf(e->username, sizeof(e->username), "%s", username);
    authz_key(key, sizeof(key), token_hash, cluster);
    void *old = hmap_put(a->authz, key, e);
    if (old == e)
        free(e);
    else
        free(old);
}

/* The audit line of a call that may change something, and of a refused
 * /k8s request (one that got through is recorded by the proxy). */
static void audit_call(const struct api_call *c)
{
    const struct api_route *rt = c->route;
    bool kube = strcmp(rt->method, "*") == 0;
    if (!audit_enabled() || (!kube && (strcmp(rt->method, "GET") == 0 ||
                                       strcmp(rt->method, "HEAD") == 0)))
        return;
    const struct http_request *rq = hs_request(c->r);
    char method[16];
    snprintf(method, sizeof(method), "%.*s", (int)rq->method_len, rq->method);
    const char *user = c->who.user.username[0] ? c->who.user.username : c->name;
    const char *cluster = NULL;
    if (kube || strncmp(rt->pattern, "/v3/clusters/{}", 15) == 0)
        cluster = c->param[0];
    else if (strcmp(rt->pattern, "/v3/clusters") == 0 && c->status == 201)
        cluster = json_string_value(json_object_get(c->out, "id"));
    size_t plen;
    const char *path = hs_path(c->r, &plen);
    struct audit_rec ar = { .kind = kube ? "kube" : "api", .user = user, .cluster = cluster,
                            .method = method, .path = path, .path_len = plen,
                            .status = c->status, .duration_us = hs_elapsed_us(c->r),
                            .remote = c->peer };
    audit_record(&ar);
}

static void finish(struct api_call *c)
{
    if (c->route && (c->route->flags & API_WRITE) && c->status > 0 && c->status < 400)
        authz_clear(c->api);
    if (c->status == 401 && !c->headers[0])
        snprintf(c->headers, sizeof(c->headers), "WWW-Authenticate: Bearer realm=\"drover\"\r\n");
    if (c->status == 503 && !c->headers[0])
        snprintf(c->headers, sizeof(c->headers), "Retry-After: 1\r\n");
    if (c->status == 0)
        api_fail(c, 500, "InternalError", "the request was not answered");
    audit_call(c);
    if (c->status >= 400) {
        send_error(c->r, c->status, c->code, c->headers, c->msg);
    } else if (c->raw) {
        hs_respond(c->r, c->status, c->raw_type, c->raw, c->raw_len,
                   c->headers[0] ? c->headers : NULL);
    } else {
        char *body = c->out ? json_dumps(c->out, JSON_COMPACT) : NULL;
        if (c->out && !body)
            send_error(c->r, 503, "ServiceUnavailable", NULL, "out of memory");
        else
            hs_respond(c->r, c->status, body ? "application/json" : NULL, body,
                       body ? strlen(body) : 0, c->headers[0] ? c->headers : NULL);
        free(body);
    }
    call_free(c);
}

/* Turns a code the work left unmapped into an answer; 5xx ones are logged. */
static void answer_code(struct api_call *c, int rc)
{
    switch (rc) {
    case DB_NOTFOUND:
        api_fail(c, 404, "NotFound", "not found");
        return;
    case DB_CONFLICT:
    case STORE_E_EXISTS:
    case STORE_E_LAST:
        api_fail(c, 409, "Conflict", "conflicts with the current state; try again");
        return;
    case DB_BUSY:
    case DB_UNAVAILABLE:
    case DB_QUEUE_FULL:
    case DB_CANCELLED:
        api_fail(c, 503, "ServiceUnavailable", "the datastore is unavailable; try again");
        break;
    default:
        api_fail(c, 500, "InternalError", "datastore error");
        break;
    }
    if (rc != DB_CANCELLED)
        log_warn("api: %s %s: datastore: %s (%s)", c->route->method, c->route->pattern,
                 db_code_str(rc), c->dberr);
}

/* ---- stages ---- */

static void submit(struct api_call *c, api_work_fn fn, bool write, bool heavy);

static int first_stage(struct db *db, struct api_call *c)
{
    const struct api_route *rt = c->route;
    if (rt->flags & API_AUTH) {
        int rc = store_token_auth(db, c->token_hash, store_now_ms(), &c->who);
        if (rc == DB_NOTFOUND)
            return api_fail(c, 401, "Unauthorized", "invalid or expired token");
        if (rc < 0)
            return rc;
        if ((rt->flags & API_ADMIN) && !c->who.user.admin)
            return api_fail(c, 403, "Forbidden", "only admins may do this");
    }
    if (rt->flags & API_BODY) {
        json_error_t e;
        c->in = json_loadb((const char *)c->body, c->body_len, JSON_REJECT_DUPLICATES, &e);
        if (!c->in)
            return api_fail(c, 400, "BadRequest", "invalid JSON body: %s (line %d)",
                            e.text, e.line);
        if (!json_is_object(c->in))
            return api_fail(c, 400, "BadRequest", "the body must be a JSON object");
    }
    return rt->work(db, c);
}

struct stage {
    struct api_call *c;
    api_work_fn fn;
};

/* On the worker, once the last stage has answered: writes the JSON body
 * here rather than on the loop thread, where a page of a hundred clusters
 * would hold up every tunnel's pings for its milliseconds of dumping.
 * Calls with an `after` hook keep their object, which the hook may read. */
static void render_on_worker(struct api_call *c)
{
    if (c->next || c->route->after || !c->out || c->raw || c->status >= 400)
        return;
    char *body = json_dumps(c->out, JSON_COMPACT);
    if (!body)
        return;   /* finish() tries again and answers 503 if it fails too */
    c->raw = body;
    c->raw_len = strlen(body);
    c->raw_type = "application/json";
    json_decref(c->out);
    c->out = NULL;
}

static int run_stage(struct db *db, void *arg)
{
    struct stage *s = arg;
    int rc = s->fn(db, s->c);
    if (rc < 0)
        snprintf(s->c->dberr, sizeof(s->c->dberr), "%s", db_errmsg(db));
    else if (s->c->status > 0)
        render_on_worker(s->c);
    return rc;
}

/* Frees a slot and fills it from the line; a waiting call may be answered
 * without taking the slot (a refused login), so go on until one takes it. */
static void gate_release(struct api *a)
{
    a->heavy_running--;
    while (a->wait_head && a->heavy_running < a->heavy_cap) {
        struct api_call *c = a->wait_head;
        a->wait_head = c->wait_next;
        if (!a->wait_head)
            a->wait_tail = NULL;
        a->nwaiting--;
        api_work_fn fn = c->next;
        c->next = NULL;
        submit(c, fn, c->next_write, true);
    }
}

static void stage_done(void *arg, int rc)
{
    struct stage *s = arg;
    struct api_call *c = s->c;
    free(s);
    if (c->heavy) {
        c->heavy = false;
        gate_release(c->api);
    }
    if (rc >= 0 && c->status == 0 && c->next) {
        api_work_fn fn = c->next;
        c->next = NULL;
        submit(c, fn, c->next_write, c->next_heavy);
        return;
    }
    if (rc < 0)
        answer_code(c, rc);
    if (c->route->after && c->route->after(c))
        return;
    finish(c);
}

/*
 * A login from an address whose last failure is still being held back is
 * refused (429) before it costs a password hash: otherwise parallel guesses
 * would each wait out the delay side by side. Checked where the hashing
 * would start, so logins queued at the gate are caught too.
 */
static bool login_held_back(struct api_call *c)
{
    if (strcmp(c->route->pattern, "/v3/tokens") != 0)
        return false;
    char addr[48];
    const char *colon = strrchr(c->peer, ':');
    snprintf(addr, sizeof(addr), "%.*s",
             (int)(colon ? (size_t)(colon - c->peer) : strlen(c->peer)), c->peer);
    uint64_t wait = throttle_wait(c->api->throttle, NULL, addr, loop_now_ms(c->api->loop));
    if (!wait)
        return false;
    api_fail(c, 429, "TooManyRequests",
             "too many failed logins from this address; try again in %llu ms",
             (unsigned long long)wait);
    snprintf(c->headers, sizeof(c->headers), "Retry-After: %llu\r\n",
             (unsigned long long)(wait + 999) / 1000);
    finish(c);
    return true;
}

static void submit(struct api_call *c, api_work_fn fn, bool write, bool heavy)
{
    struct api *a = c->api;
    if (heavy && login_held_back(c))
        return;
    if (heavy && a->heavy_running >= a->heavy_cap) {
        if (a->nwaiting >= WAIT_CAP) {
            api_fail(c, 503, "ServiceUnavailable", "too many logins at once; try again");
            finish(c);
            return;
        }
        c->next = fn;
        c->next_write = write;
        c->wait_next = NULL;
        if (a->wait_tail)
            a->wait_tail->wait_next = c;
        else
            a->wait_head = c;
        a->wait_tail = c;
        a->nwaiting++;
        return;
    }
    struct stage *s = a->pool ? malloc(sizeof(*s)) : NULL;
    int rc = DB_ERROR;
    if (s) {
        *s = (struct stage){ c, fn };
        rc = write ? db_pool_submit(a->pool, run_stage, stage_done, s)
                   : db_pool_submit_read(a->pool, run_stage, stage_done, s);
    }
    if (rc < 0) {
        free(s);
        api_fail(c, 503, "ServiceUnavailable", "the server is busy; try again");
        finish(c);
        return;
    }
    if (heavy) {
        c->heavy = true;
        a->heavy_running++;
    }
}

void api_then(struct api_call *c, api_work_fn next, bool write, bool heavy)
{
    c->next = next;
    c->next_write = write;
    c->next_heavy = heavy;
}

/* ---- routing ---- */

static bool seg_char(char ch)
{
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
           (ch >= '0' && ch <= '9') || ch == '-' || ch == '.' || ch == '_' || ch == '~';
}

/* Matches path against pattern, filling params. */
static bool match(const char *pat, const char *path, size_t len,
                  char params[API_MAX_PARAMS][API_SEG_MAX])
{
    size_t i = 0, np = 0;
    while (*pat) {
        if (pat[0] == '{' && pat[1] == '}') {
            size_t start = i;
            while (i < len && seg_char(path[i]))
                i++;
            size_t n = i - start;
            if (n == 0 || n >= API_SEG_MAX || np == API_MAX_PARAMS)
                return false;
            memcpy(params[np], path + start, n);
            params[np++][n] = '\0';
            pat += 2;
            continue;
        }
        if (i >= len || path[i] != *pat)
            return false;
        i++;
        pat++;
    }
    return i == len;
}

/* The route for r, or NULL with allow listing the methods the path has. */
static const struct api_route *find_route(struct hs_req *r,
                                          char params[API_MAX_PARAMS][API_SEG_MAX],
                                          char *allow, size_t cap)
{
    size_t len, used = 0;
    const char *path = hs_path(r, &len);
    allow[0] = '\0';
    for (size_t t = 0; t < NTABLES; t++) {
        for (const struct api_route *rt = route_tables[t]; rt->method; rt++) {
            if (!match(rt->pattern, path, len, params))
                continue;
            if (hs_method_is(r, rt->method))
                return rt;
            int n = snprintf(allow + used, cap - used, "%s%s", used ? ", " : "", rt->method);
            if (n > 0 && (size_t)n < cap - used)
                used += (size_t)n;
        }
    }
    return NULL;
}

/* Reads "digits" into *out within [min, max]. */
static bool parse_num(const char *s, size_t n, int64_t min, int64_t max, int64_t *out)
{
    int64_t v = 0;
    if (n == 0 || n > 18)
        return false;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        v = v * 10 + (s[i] - '0');
    }
    if (v < min || v > max)
        return false;
    *out = v;
    return true;
}

/* One "key=value" of the query; false with why on a bad value. */
static bool query_param(struct api_call *c, const char *k, size_t kl, const char *v,
                        size_t vl, const char **why)
{
    int64_t n;
    if (kl == 5 && memcmp(k, "limit", 5) == 0) {
        if (!parse_num(v, vl, 1, API_LIMIT_MAX, &n))
            return *why = "limit must be a number from 1 to 1000", false;
        c->limit = (int)n;
    } else if (kl == 6 && memcmp(k, "cursor", 6) == 0) {
        for (size_t i = 0; i < vl; i++)
            if (!seg_char(v[i]))
                return *why = "invalid cursor", false;
        if (vl >= API_SEG_MAX)
            return *why = "invalid cursor", false;
        memcpy(c->cursor, v, vl);
        c->cursor[vl] = '\0';
    } else if (kl == 5 && memcmp(k, "since", 5) == 0) {
        if (!parse_num(v, vl, 0, INT64_MAX / 16, &n))
            return *why = "since must be a non-negative event id", false;
        c->since = n;
    }
    return true;    /* other parameters are not ours to judge */
}

static const char *parse_query(struct api_call *c)
{
    size_t len;
    const char *q = hs_query(c->r, &len), *why = NULL;
    c->limit = API_LIMIT_DEF;
    while (len > 0) {
        const char *amp = memchr(q, '&', len);
        size_t pl = amp ? (size_t)(amp - q) : len;
        const char *eq = memchr(q, '=', pl);
        size_t kl = eq ? (size_t)(eq - q) : pl;
        if (!query_param(c, q, kl, eq ? eq + 1 : q + pl, eq ? pl - kl - 1 : 0, &why))
            return why;
        q += pl + (amp ? 1 : 0);
        len -= pl + (amp ? 1 : 0);
    }
    return NULL;
}

/* Takes the bearer token's hash; false if there is none of the right shape
 * (then there is nothing worth asking the datastore about). */
static bool read_bearer(struct api_call *c)
{
    const struct http_header *h = hs_header(c->r, "authorization");
    size_t pl = sizeof(AUTH_TOKEN_PREFIX) - 1;
    if (!h || h->value_len < 7 || strncasecmp(h->value, "bearer ", 7) != 0)
        return false;
    const char *t = h->value + 7;
    size_t n = h->value_len - 7;
    while (n && *t == ' ')
        t++, n--;
    if (n != AUTH_API_TOKEN_SIZE - 1 || memcmp(t, AUTH_TOKEN_PREFIX, pl) != 0)
        return false;
    auth_sha256_hex(t, n, c->token_hash);
    c->has_token = true;
    return true;
}

/*
 * Routes r and makes its call, answering (and returning NULL) when the
 * request is refused before any datastore work: no such path or method,
 * not ready, a bad query, no bearer token where one is needed.
 */
static struct api_call *call_new(struct api *a, struct hs_req *r)
{
    char params[API_MAX_PARAMS][API_SEG_MAX], allow[64], hdr[96], msg[300];
    size_t n;
    const char *path = hs_path(r, &n), *why;
    const struct api_route *rt = find_route(r, params, allow, sizeof(allow));
    if (!rt && allow[0]) {
        snprintf(hdr, sizeof(hdr), "Allow: %s\r\n", allow);
        send_error(r, 405, "MethodNotAllowed", hdr, "method not allowed here");
        return NULL;
    }
    if (!rt) {
        snprintf(msg, sizeof(msg), "no such endpoint: %.*s", (int)(n > 200 ? 200 : n), path);
        send_error(r, 404, "NotFound", NULL, msg);
        return NULL;
    }
    if (!a->pool) {
        send_error(r, 503, "ServiceUnavailable", "Retry-After: 1\r\n",
                   "the datastore is not ready yet");
        return NULL;
    }
    struct api_call *c = calloc(1, sizeof(*c));
    if (!c) {
        send_error(r, 503, "ServiceUnavailable", NULL, "out of memory");
        return NULL;
    }
    *c = (struct api_call){ .api = a, .r = r, .route = rt };
    memcpy(c->param, params, sizeof(params));
    snprintf(c->peer, sizeof(c->peer), "%s", hs_peer(r));
    if ((why = parse_query(c)))
        api_fail(c, 400, "BadRequest", "%s", why);
    else if ((rt->flags & API_AUTH) && !read_bearer(c))
        api_fail(c, 401, "Unauthorized", "a valid bearer token is required");
    if (c->status) {
        finish(c);
        return NULL;
    }
    return c;
}

static void start_call(struct api_call *c)
{
    unsigned f = c->route->flags;
    submit(c, first_stage, f & API_WRITE, f & API_HEAVY);
}

static void on_body(struct hs_req *r, void *ud)
{
    struct api_call *c = call_new(ud, r);
    if (!c)
        return;
    c->body = hs_body(r, &c->body_len);
    if (c->body_len == 0) {
        api_fail(c, 400, "BadRequest", "a JSON object body is required");
        finish(c);
        return;
    }
    start_call(c);
}

void api_dispatch(struct api *a, struct hs_req *r)
{
    struct api_call *c = call_new(a, r);
    if (!c)
        return;
    if (!(c->route->flags & API_BODY)) {
        start_call(c);
        return;
    }
    /* hs_read_body answers an oversized or stalled body itself without
     * calling back, so nothing of ours may wait on it: the call is made
     * again (cheaply) once the body is in. Refusals come first, so a bad
     * token never costs a 1 MiB read. */
    free(c);
    hs_read_body(r, API_MAX_BODY, on_body, a);
}

/* ---- authorization for other front ends ---- */

static int authz_work(struct db *db, struct api_call *c)
{
    enum store_role role;
    int rc = api_cluster_access(db, c, STORE_ROLE_VIEWER, &role);
    if (rc)
        return rc < 0 ? rc : 0;
    c->status = 200;    /* allowed: the continuation answers, not us */
    return 0;
}

static bool authz_after(struct api_call *c)
{
    if (c->status != 200)
        return false;
    authz_store(c->api, c->token_hash, c->param[0], c->who.user.username);
    c->authz_ok(c->r, c->who.user.username, c->authz_ud);
    call_free(c);
    return true;
}

static const struct api_route authz_route = {
    "*", "/k8s/clusters/{}", API_AUTH, authz_work, authz_after,
};

void api_authorize_cluster(struct api *a, struct hs_req *r, const char *cluster,
                           void (*ok)(struct hs_req *r, const char *username, void *ud),
                           void *ud)
{
    struct api_call *c = a->pool ? calloc(1, sizeof(*c)) : NULL;
    if (!c) {
        send_error(r, 503, "ServiceUnavailable", "Retry-After: 1\r\n",
                   a->pool ? "out of memory" : "the datastore is not ready yet");
        return;
    }
    *c = (struct api_call){ .api = a, .r = r, .route = &authz_route, .authz_ok = ok,
                            .authz_ud = ud };
    snprintf(c->param[0], sizeof(c->param[0]), "%s", cluster);
    snprintf(c->peer, sizeof(c->peer), "%s", hs_peer(r));
    if (!read_bearer(c)) {
        api_fail(c, 401, "Unauthorized", "a valid bearer token is required");
        finish(c);
        return;
    }
    const char *user = authz_lookup(a, c->token_hash, cluster);
    if (user) {
        char name[STORE_NAME_MAX + 1];
        snprintf(name, sizeof(name), "%s", user);
        call_free(c);
        ok(r, name, ud);
        return;
    }
    submit(c, first_stage, false, false);
}

/* ---- delayed answers and teardown ---- */

static void on_delay(struct loop_timer *t)
{
    struct api_call *c = (struct api_call *)((char *)t - offsetof(struct api_call, timer));
    *c->delay_prev = c->delay_next;
    if (c->delay_next)
        c->delay_next->delay_prev = c->delay_prev;
    finish(c);
}

void api_delay_answer(struct api_call *c, uint64_t ms)
{
    struct api *a = c->api;
    c->delay_next = a->delayed;
    if (a->delayed)
        a->delayed->delay_prev = &c->delay_next;
    c->delay_prev = &a->delayed;
    a->delayed = c;
    loop_timer_start(a->loop, &c->timer, ms, on_delay);
}

void api_free(struct api *a)
{
    if (!a)
        return;
    while (a->delayed) {
        struct api_call *c = a->delayed;
        loop_timer_stop(a->loop, &c->timer);
        a->delayed = c->delay_next;
        finish(c);
    }
    while (a->wait_head) {
        struct api_call *c = a->wait_head;
        a->wait_head = c->wait_next;
        api_fail(c, 503, "ServiceUnavailable", "the server is shutting down");
        finish(c);
    }
    throttle_free(a->throttle);
    OPENSSL_cleanse(&a->seal, sizeof(a->seal));
    authz_clear(a);
    free(a->ca_pem);
    free(a);
}

/* ---- shared worker-side helpers ---- */

int api_fail(struct api_call *c, int status, const char *code, const char *fmt, ...)
{
    va_list ap;
    c->status = status;
    snprintf(c->code, sizeof(c->code), "%s", code);
    va_start(ap, fmt);
    vsnprintf(c->msg, sizeof(c->msg), fmt, ap);
    va_end(ap);
    json_decref(c->out);
    c->out = NULL;
    return 0;
}

int api_ok(struct api_call *c, int status, json_t *out)
{
    c->status = status;
    json_decref(c->out);
    c->out = out;
    if (status != 204 && !out)
        return api_fail(c, 503, "ServiceUnavailable", "out of memory");
    return 0;
}

int api_no_cluster(struct api_call *c)
{
    return api_fail(c, 404, "NotFound", "cluster %s not found", c->param[0]);
}

int api_cluster_access(struct db *db, struct api_call *c, enum store_role need,
                       enum store_role *role)
{
    if (!api_valid_cluster_id(c->param[0]))
        return api_no_cluster(c), 1;
    int rc = store_cluster_role(db, c->param[0], c->who.user.id, role);
    if (rc == DB_NOTFOUND)
        return api_no_cluster(c), 1;
    if (rc < 0)
        return rc;
    if (c->who.user.admin)
        *role = STORE_ROLE_OWNER;
    if (*role == STORE_ROLE_NONE)
        return api_no_cluster(c), 1;
    if (*role < need)
        return api_fail(c, 403, "Forbidden", "this needs the %s role in cluster %s",
                        store_role_name(need), c->param[0]), 1;
    return 0;
}
