/*
 * api_snapshots: etcd snapshot and upgrade endpoints. See api_snapshots.h.
 *
 * A request's life: routed (and its body read, for POSTs) on the loop; one
 * read stage on the pool authenticates it, checks the caller's role and
 * reads what the route needs (a list, a snapshot row); back on the loop the
 * route acts (asks the snapshot engine, the upgrader, starts a download)
 * and answers, or runs one more pool stage (a delete).
 */
#include "server/api_snapshots.h"

#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/log.h"
#include "server/auth.h"
#include "server/store.h"
#include "server/store_snapshots.h"

#define BODY_MAX (64 * 1024)
#define SEG_MAX 64
#define LIMIT_DEF 100
#define LIMIT_MAX 1000
#define DL_HIGH_WATER (1024 * 1024)
#define VERSION_MAX 64

enum route { R_CREATE, R_LIST, R_GET, R_DOWNLOAD, R_RESTORE, R_DELETE, R_UPGRADE };

struct snapapi {
    struct loop *loop;
    struct db_pool *pool;
    struct snapshots *sn;
    struct upgrades *up;
};

struct sreq {
    struct snapapi *sa;
    struct hs_req *r;
    enum route route;
    char cluster[SEG_MAX], sid[SEG_MAX], cursor[SEG_MAX];
    int limit;
    char token_hash[AUTH_HEX_SHA256];
    json_t *in;
    /* from the pool */
    int status;
    char code[32], msg[600];
    json_t *out;
    struct store_principal who;
    char node[SEG_MAX], state[16], sha[65];
    int64_t size;
};

static void sreq_free(struct sreq *q)
{
    json_decref(q->in);
    json_decref(q->out);
    free(q);
}

static void fail(struct sreq *q, int status, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void fail(struct sreq *q, int status, const char *code, const char *fmt, ...)
{
    va_list ap;
    q->status = status;
    snprintf(q->code, sizeof(q->code), "%s", code);
    va_start(ap, fmt);
    vsnprintf(q->msg, sizeof(q->msg), fmt, ap);
    va_end(ap);
}

/* Answers q from its status and frees it. */
static void answer(struct sreq *q)
{
    if (q->status >= 400) {
        hs_error(q->r, q->status, q->code, "%s", q->msg);
    } else {
        char *body = q->out ? json_dumps(q->out, JSON_COMPACT) : NULL;
        if (q->out && !body)
            hs_error(q->r, 503, "ServiceUnavailable", "out of memory");
        else
            hs_respond(q->r, q->status, body ? "application/json" : NULL, body,
                       body ? strlen(body) : 0, NULL);
        free(body);
    }
    sreq_free(q);
}

static void answer_json(struct sreq *q, int status, json_t *out)
{
    q->status = out ? status : 503;
    if (!out)
        fail(q, 503, "ServiceUnavailable", "out of memory");
    q->out = out;
    answer(q);
}

/* ---- JSON ---- */

static json_t *doc_or_null(const char *text)
{
    json_t *j = text ? json_loads(text, 0, NULL) : NULL;
    return j ? j : json_null();
}

static json_t *snapshot_json(const struct store_snapshot *s)
{
    return json_pack("{s:s,s:s,s:s,s:s,s:b,s:o,s:s?,s:o,s:o,s:s?,s:o}", "id", s->id,
                     "cluster", s->cluster_id, "node", s->node, "state", s->state,
                     "scheduled", s->scheduled,
                     "size", s->size < 0 ? json_null() : json_integer(s->size),
                     "sha256", s->sha256, "createdAt", snap_json_time(s->created_at),
                     "finishedAt", snap_json_time(s->finished_at), "error", s->error,
                     "restore", doc_or_null(s->restore_json));
}

struct list {
    json_t *data;
    int limit, count;
    char last[SEG_MAX];
    bool more;
};

static int list_row(void *ud, const struct store_snapshot *s)
{
    struct list *l = ud;
    if (l->count == l->limit) {
        l->more = true;
        return 0;
    }
    json_t *j = snapshot_json(s);
    if (!j || json_array_append_new(l->data, j) < 0)
        return DB_ERROR;
    l->count++;
    snprintf(l->last, sizeof(l->last), "%s", s->id);
    return 0;
}

static int one_row(void *ud, const struct store_snapshot *s)
{
    struct sreq *q = ud;
    if (q->route == R_GET)
        return (q->out = snapshot_json(s)) ? 0 : DB_ERROR;
    snprintf(q->node, sizeof(q->node), "%s", s->node);
    snprintf(q->state, sizeof(q->state), "%s", s->state);
    snprintf(q->sha, sizeof(q->sha), "%s", s->sha256 ? s->sha256 : "");
    q->size = s->size;
    return 0;
}

/* ---- the pool stages ---- */

static enum store_role needs(enum route r)
{
    return r == R_LIST || r == R_GET ? STORE_ROLE_VIEWER : STORE_ROLE_OWNER;
}

static int auth_stage(struct db *db, struct sreq *q)
{
    enum store_role role = STORE_ROLE_NONE;
    int rc = store_token_auth(db, q->token_hash, store_now_ms(), &q->who);
    if (rc == DB_NOTFOUND)
        return fail(q, 401, "Unauthorized", "invalid or expired token"), 0;
    if (rc < 0)
        return rc;
    rc = store_cluster_role(db, q->cluster, q->who.user.id, &role);
    if (rc < 0 && rc != DB_NOTFOUND)
        return rc;
    if (rc == 0 && q->who.user.admin)
        role = STORE_ROLE_OWNER;
    if (rc == DB_NOTFOUND || role == STORE_ROLE_NONE)
        return fail(q, 404, "NotFound", "cluster %s not found", q->cluster), 0;
    if (role < needs(q->route))
        return fail(q, 403, "Forbidden", "this needs the owner role in cluster %s",
                    q->cluster), 0;
    return 0;
}

static int read_work(struct db *db, void *arg)
{
    struct sreq *q = arg;
    int rc = auth_stage(db, q);
    if (rc < 0 || q->status)
        return rc;
    if (q->route == R_LIST) {
        struct list l = { json_array(), q->limit, 0, "", false };
        rc = l.data ? store_snapshots_list(db, q->cluster, q->cursor, q->limit + 1, list_row,
                                           &l) : DB_ERROR;
        if (rc >= 0) {
            q->out = json_pack("{s:o,s:s?}", "data", l.data, "next", l.more ? l.last : NULL);
            q->status = 200;
        } else {
            json_decref(l.data);
        }
        return rc;
    }
    if (q->route == R_CREATE || q->route == R_UPGRADE)
        return 0;
    rc = store_snapshot_get(db, q->cluster, q->sid, one_row, q);
    if (rc == DB_NOTFOUND)
        return fail(q, 404, "NotFound", "snapshot %s not found in cluster %s", q->sid,
                    q->cluster), 0;
    if (rc >= 0 && q->route == R_GET)
        q->status = 200;
    return rc;
}

static int delete_work(struct db *db, void *arg)
{
    struct sreq *q = arg;
    int rc = store_snapshot_delete(db, q->cluster, q->sid);
    if (rc == DB_NOTFOUND)
        fail(q, 404, "NotFound", "snapshot %s not found in cluster %s", q->sid, q->cluster);
    return rc == DB_NOTFOUND ? 0 : rc;
}

static void db_failed(struct sreq *q, int rc)
{
    if (rc != DB_CANCELLED)
        log_warn("api: %s snapshots of %s: datastore: %s", hs_method_is(q->r, "GET") ? "GET"
                 : "change", q->cluster, db_code_str(rc));
    fail(q, 503, "ServiceUnavailable", "the datastore is unavailable; try again");
    answer(q);
}

static bool submit(struct sreq *q, db_work_fn work, db_done_fn done, bool write)
{
    struct snapapi *sa = q->sa;
    int rc = !sa->pool ? DB_CANCELLED
           : write ? db_pool_submit(sa->pool, work, done, q)
                   : db_pool_submit_read(sa->pool, work, done, q);
    if (rc < 0) {
        fail(q, 503, "ServiceUnavailable", "the server is busy; try again");
        answer(q);
        return false;
    }
    return true;
}

/* ---- routes on the loop ---- */

static void created(void *ud, int status, const char *sid, const char *msg)
{
    struct sreq *q = ud;
    if (status != 202) {
        fail(q, status, status == 409 ? "Conflict" : status == 404 ? "NotFound"
                        : "ServiceUnavailable", "%s", msg);
        answer(q);
        return;
    }
    answer_json(q, 202, json_pack("{s:s,s:s,s:s}", "id", sid, "state", "pending",
                                  "cluster", q->cluster));
}

/* {node?} (restore and create); false after answering 400. */
static bool read_node(struct sreq *q, const char **node)
{
    *node = NULL;
    if (!q->in)
        return true;
    const char *k;
    json_t *v;
    json_object_foreach(q->in, k, v) {
        if (strcmp(k, "node") != 0 || !json_is_string(v)) {
            fail(q, 400, "BadRequest", strcmp(k, "node") ? "unknown field \"%.40s\""
                 : "field \"%.40s\" must be a string", k);
            answer(q);
            return false;
        }
    }
    *node = json_string_value(json_object_get(q->in, "node"));
    return true;
}

static void do_create(struct sreq *q)
{
    const char *node;
    if (read_node(q, &node))
        snapshots_create(q->sa->sn, q->cluster, node, false, created, q);
}

/* The restore's or rollout's first document is stored: answer now, so
 * the client's next GET shows it. */
static void doc_saved(void *ud)
{
    answer(ud);
}

static void do_restore(struct sreq *q)
{
    const char *node;
    char *doc = NULL, msg[400];
    if (!read_node(q, &node))
        return;
    if (strcmp(q->state, "done") != 0) {
        fail(q, 409, "Conflict", "snapshot %s is %s; only a done snapshot can be restored",
             q->sid, q->state);
        answer(q);
        return;
    }
    int st = snapshots_restore(q->sa->sn, q->cluster, q->sid, q->size, q->sha, node, doc_saved,
                               q, &doc, msg, sizeof(msg));
    if (st != 202) {
        fail(q, st, st == 409 ? "Conflict" : "ServiceUnavailable", "%s", msg);
        answer(q);
        return;
    }
    q->status = 202;
    q->out = json_pack("{s:s,s:o}", "id", q->sid, "restore", doc_or_null(doc));
    free(doc);
}

static void deleted(void *arg, int rc)
{
    struct sreq *q = arg;
    if (rc < 0) {
        db_failed(q, rc);
        return;
    }
    if (!q->status) {
        snapshots_forget(q->sa->sn, q->cluster, q->node, q->sid);
        q->status = 204;
    }
    answer(q);
}

static void do_delete(struct sreq *q)
{
    if (strcmp(q->state, "pending") == 0 || strcmp(q->state, "running") == 0) {
        fail(q, 409, "Conflict", "snapshot %s is still %s; delete it once it is done or failed",
             q->sid, q->state);
        answer(q);
        return;
    }
    if (snapshots_restoring(q->sa->sn, q->sid)) {
        fail(q, 409, "Conflict", "snapshot %s is being restored; delete it once that is over",
             q->sid);
        answer(q);
        return;
    }
    submit(q, delete_work, deleted, true);
}

static bool valid_version(const char *v)
{
    size_t n = v ? strlen(v) : 0;
    if (n == 0 || n > VERSION_MAX)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!((v[i] >= 'a' && v[i] <= 'z') || (v[i] >= 'A' && v[i] <= 'Z') ||
              (v[i] >= '0' && v[i] <= '9') || strchr(".-+_", v[i])))
            return false;
    return true;
}

static void do_upgrade(struct sreq *q)
{
    const char *k;
    json_t *v;
    json_object_foreach(q->in, k, v) {
        if (strcmp(k, "version") != 0 && strcmp(k, "concurrency") != 0) {
            fail(q, 400, "BadRequest", "unknown field \"%.40s\"", k);
            answer(q);
            return;
        }
    }
    const char *version = json_string_value(json_object_get(q->in, "version"));
    json_t *cj = json_object_get(q->in, "concurrency");
    if (!valid_version(version)) {
        fail(q, 400, "BadRequest", "version is required: 1-%d of letters, digits, . - + _",
             VERSION_MAX);
    } else if (cj && (!json_is_integer(cj) || json_integer_value(cj) < 1 ||
                      json_integer_value(cj) > UPGRADE_CONCURRENCY_MAX)) {
        fail(q, 400, "BadRequest", "concurrency must be a number from 1 to %d",
             UPGRADE_CONCURRENCY_MAX);
    } else {
        char *doc = NULL, msg[400];
        int st = upgrades_start(q->sa->up, q->cluster, version,
                                cj ? (int)json_integer_value(cj) : 1, doc_saved, q, &doc, msg,
                                sizeof(msg));
        if (st == 202) {
            q->status = 202;
            q->out = doc_or_null(doc);
            free(doc);
            return;
        }
        fail(q, st, st == 409 ? "Conflict" : "ServiceUnavailable", "%s", msg);
    }
    answer(q);
}

/* ---- downloads ---- */

struct dl {
    struct snapapi *sa;
    struct conn *c;
    char sid[SEG_MAX];
    int64_t seq, size, sent;
    bool reading;
};

struct dl_job {
    struct dl *d;
    char sid[SEG_MAX];
    int64_t seq;
    uint8_t *data;
    size_t len;
};

static void dl_next(struct dl *d);

static void dl_end(struct dl *d)
{
    if (d->c) {
        conn_close_after_flush(d->c, 30000);
        d->c = NULL;
    }
    if (!d->reading)
        free(d);
}

static int dl_work(struct db *db, void *arg)
{
    struct dl_job *j = arg;
    return store_snapshot_get_chunk(db, j->sid, j->seq, &j->data, &j->len);
}

static void dl_done(void *arg, int rc)
{
    struct dl_job *j = arg;
    struct dl *d = j->d;
    d->reading = false;
    if (!d->c) {
        free(j->data);
        free(j);
        free(d);
        return;
    }
    if (rc < 0) {
        /* The client sees a short body against Content-Length: a failure. */
        log_warn("download of snapshot %s: chunk %lld: %s", d->sid, (long long)j->seq,
                 db_code_str(rc));
        free(j);
        conn_close(d->c);
        d->c = NULL;
        dl_end(d);
        return;
    }
    int w = conn_write(d->c, j->data, j->len);
    d->sent += (int64_t)j->len;
    d->seq++;
    free(j->data);
    free(j);
    if (w < 0) {
        conn_close(d->c);
        d->c = NULL;
        dl_end(d);
        return;
    }
    if (conn_out_pending(d->c) < DL_HIGH_WATER)
        dl_next(d);
}

static void dl_next(struct dl *d)
{
    if (d->sent >= d->size) {
        dl_end(d);
        return;
    }
    struct dl_job *j = calloc(1, sizeof(*j));
    if (!j || !d->sa->pool ||
        (j->d = d, snprintf(j->sid, sizeof(j->sid), "%s", d->sid), j->seq = d->seq,
         db_pool_submit_read(d->sa->pool, dl_work, dl_done, j)) < 0) {
        free(j);
        conn_close(d->c);
        d->c = NULL;
        dl_end(d);
        return;
    }
    d->reading = true;
}

static size_t dl_read(struct conn *c, uint8_t *p, size_t n)
{
    (void)c;
    (void)p;
    return n;   /* nothing more is expected from the client */
}

static void dl_eof(struct conn *c)
{
    (void)c;
}

static void dl_drain(struct conn *c)
{
    struct dl *d = conn_ud(c);
    if (!d->reading && d->c)
        dl_next(d);
}

static void dl_close(struct conn *c, const char *why)
{
    struct dl *d = conn_ud(c);
    (void)why;
    d->c = NULL;
    dl_end(d);
}

static const struct conn_ops dl_ops = {
    .on_read = dl_read,
    .on_eof = dl_eof,
    .on_drain = dl_drain,
    .on_close = dl_close,
};

static void do_download(struct sreq *q)
{
    if (strcmp(q->state, "done") != 0) {
        fail(q, 409, "Conflict", "snapshot %s is %s; only a done snapshot can be downloaded",
             q->sid, q->state);
        answer(q);
        return;
    }
    struct dl *d = calloc(1, sizeof(*d));
    if (!d) {
        fail(q, 503, "ServiceUnavailable", "out of memory");
        answer(q);
        return;
    }
    char head[600];
    int hl = snprintf(head, sizeof(head),
                      "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n"
                      "Content-Length: %lld\r\nX-Drover-Sha256: %s\r\n"
                      "Content-Disposition: attachment; filename=\"%s.db\"\r\n"
                      "Connection: close\r\n\r\n", (long long)q->size, q->sha, q->sid);
    d->sa = q->sa;
    d->size = q->size;
    snprintf(d->sid, sizeof(d->sid), "%s", q->sid);
    struct hs_req *r = q->r;
    q->r = NULL;
    sreq_free(q);
    d->c = hs_takeover(r);
    if (!d->c || conn_write(d->c, head, (size_t)hl) < 0) {
        if (d->c)
            conn_close(d->c);
        free(d);
        return;
    }
    conn_set_ops(d->c, &dl_ops);
    conn_set_ud(d->c, d);
    conn_set_high_water(d->c, DL_HIGH_WATER);
    conn_resume_read(d->c);
    dl_next(d);
}

/* ---- after the read stage ---- */

static void read_done(void *arg, int rc)
{
    struct sreq *q = arg;
    if (rc < 0) {
        db_failed(q, rc);
        return;
    }
    if (q->status) {
        answer(q);
        return;
    }
    switch (q->route) {
    case R_CREATE: do_create(q); break;
    case R_RESTORE: do_restore(q); break;
    case R_DELETE: do_delete(q); break;
    case R_DOWNLOAD: do_download(q); break;
    case R_UPGRADE: do_upgrade(q); break;
    default:
        fail(q, 500, "InternalError", "unrouted");
        answer(q);
    }
}

/* ---- routing ---- */

static bool seg(const char **p, const char *end, char out[SEG_MAX])
{
    size_t n = 0;
    while (*p + n < end && (*p)[n] != '/')
        n++;
    if (n == 0 || n >= SEG_MAX)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = (*p)[i];
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-'))
            return false;
    }
    memcpy(out, *p, n);
    out[n] = '\0';
    *p += n;
    return true;
}

static bool lit(const char **p, const char *end, const char *s)
{
    size_t n = strlen(s);
    if ((size_t)(end - *p) < n || memcmp(*p, s, n) != 0)
        return false;
    *p += n;
    return true;
}

/* The route of path and method, or -1 (not ours) / -2 (ours, bad method or
 * malformed: 404/405 answered by the caller). */
static int route_of(struct hs_req *r, struct sreq *q)
{
    size_t len;
    const char *p = hs_path(r, &len), *end = p + len;
    char id[SEG_MAX];
    if (!lit(&p, end, "/v3/clusters/") || !seg(&p, end, id))
        return -1;
    snprintf(q->cluster, sizeof(q->cluster), "%s", id);
    if (lit(&p, end, "/upgrade") && p == end)
        return hs_method_is(r, "POST") ? R_UPGRADE : -2;
    if (!lit(&p, end, "/etcdsnapshots"))
        return -1;
    if (p == end)
        return hs_method_is(r, "POST") ? R_CREATE : hs_method_is(r, "GET") ? R_LIST : -2;
    if (!lit(&p, end, "/") || !seg(&p, end, q->sid))
        return -2;
    if (p == end)
        return hs_method_is(r, "GET") ? R_GET : hs_method_is(r, "DELETE") ? R_DELETE : -2;
    if (lit(&p, end, "/download") && p == end)
        return hs_method_is(r, "GET") ? R_DOWNLOAD : -2;
    if (lit(&p, end, "/restore") && p == end)
        return hs_method_is(r, "POST") ? R_RESTORE : -2;
    return -2;
}

static bool read_bearer(struct hs_req *r, char hash[AUTH_HEX_SHA256])
{
    const struct http_header *h = hs_header(r, "authorization");
    size_t pl = sizeof(AUTH_TOKEN_PREFIX) - 1;
    if (!h || h->value_len < 7 || strncasecmp(h->value, "bearer ", 7) != 0)
        return false;
    const char *t = h->value + 7;
    size_t n = h->value_len - 7;
    while (n && *t == ' ')
        t++, n--;
    if (n != AUTH_API_TOKEN_SIZE - 1 || memcmp(t, AUTH_TOKEN_PREFIX, pl) != 0)
        return false;
    auth_sha256_hex(t, n, hash);
    return true;
}

/* ?limit= and ?cursor=; false with why. */
static bool read_query(struct hs_req *r, struct sreq *q, const char **why)
{
    size_t len;
    const char *s = hs_query(r, &len);
    q->limit = LIMIT_DEF;
    while (len > 0) {
        const char *amp = memchr(s, '&', len);
        size_t pl = amp ? (size_t)(amp - s) : len;
        if (pl > 6 && memcmp(s, "limit=", 6) == 0) {
            int v = 0;
            for (size_t i = 6; i < pl; i++) {
                if (s[i] < '0' || s[i] > '9' || v > LIMIT_MAX)
                    return *why = "limit must be a number from 1 to 1000", false;
                v = v * 10 + (s[i] - '0');
            }
            if (v < 1 || v > LIMIT_MAX)
                return *why = "limit must be a number from 1 to 1000", false;
            q->limit = v;
        } else if (pl >= 7 && memcmp(s, "cursor=", 7) == 0) {
            const char *c = s + 7;
            if (!seg(&c, s + pl, q->cursor) && pl > 7)
                return *why = "invalid cursor", false;
        }
        s += pl + (amp ? 1 : 0);
        len -= pl + (amp ? 1 : 0);
    }
    return true;
}

static void start(struct sreq *q)
{
    submit(q, read_work, read_done, false);
}

/* Routes r and checks what needs no datastore; NULL after answering (or
 * when r is not ours: *ours false). */
static struct sreq *make_req(struct snapapi *sa, struct hs_req *r, bool *ours)
{
    struct sreq probe = { 0 };
    int rt = route_of(r, &probe);
    const char *why = NULL;
    *ours = rt != -1;
    if (rt == -1)
        return NULL;
    if (rt == -2) {
        hs_error(r, 404, "NotFound", "no such endpoint (or method) under this cluster");
        return NULL;
    }
    if (!sa->pool) {
        hs_error(r, 503, "ServiceUnavailable", "the datastore is not ready yet");
        return NULL;
    }
    struct sreq *q = calloc(1, sizeof(*q));
    if (!q) {
        hs_error(r, 503, "ServiceUnavailable", "out of memory");
        return NULL;
    }
    *q = probe;
    q->sa = sa;
    q->r = r;
    q->route = (enum route)rt;
    if (!read_bearer(r, q->token_hash)) {
        fail(q, 401, "Unauthorized", "a valid bearer token is required");
        answer(q);
        return NULL;
    }
    if (!read_query(r, q, &why)) {
        fail(q, 400, "BadRequest", "%s", why);
        answer(q);
        return NULL;
    }
    return q;
}

static void on_body(struct hs_req *r, void *ud)
{
    bool ours;
    struct sreq *q = make_req(ud, r, &ours);
    size_t n;
    const uint8_t *b = hs_body(r, &n);
    if (!q)
        return;
    if (n > 0) {
        json_error_t e;
        q->in = json_loadb((const char *)b, n, JSON_REJECT_DUPLICATES, &e);
        if (!json_is_object(q->in)) {
            fail(q, 400, "BadRequest", "the body must be a JSON object");
            answer(q);
            return;
        }
    } else if (q->route == R_UPGRADE) {
        fail(q, 400, "BadRequest", "a JSON object body {version, concurrency?} is required");
        answer(q);
        return;
    }
    start(q);
}

bool snapapi_dispatch(struct snapapi *sa, struct hs_req *r)
{
    bool ours;
    struct sreq *q = make_req(sa, r, &ours);
    if (!q)
        return ours;
    if (hs_method_is(r, "POST")) {
        /* hs_read_body answers an oversized or stalled body itself without
         * calling back: nothing of ours may wait on it, so the request is
         * made again (cheaply) once the body is in. */
        sreq_free(q);
        hs_read_body(r, BODY_MAX, on_body, sa);
        return true;
    }
    start(q);
    return true;
}

/* ---- setup ---- */

struct snapapi *snapapi_new(struct loop *l, struct snapshots *sn, struct upgrades *up)
{
    struct snapapi *sa = calloc(1, sizeof(*sa));
    if (sa) {
        sa->loop = l;
        sa->sn = sn;
        sa->up = up;
    }
    return sa;
}

void snapapi_set_pool(struct snapapi *sa, struct db_pool *pool)
{
    sa->pool = pool;
}

void snapapi_free(struct snapapi *sa)
{
    free(sa);
}
