/*
 * rbackeeper: reconciling drover's ClusterRoleBindings. See rbackeeper.h.
 *
 * A stream is served in three steps: collect the request to EOF (capped),
 * list the managed bindings, then apply the plan one call at a time (they
 * are few, and one at a time keeps the first failure's message exact). The
 * answer goes back on the same stream. If the stream dies meanwhile, the
 * call in flight is cancelled: the server sends the whole state again on
 * its next attempt, so nothing is lost.
 */
#include "common/rbackeeper.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "proto/frame.h"

#define RBK_MAX_BINDINGS 100000
#define RBK_MAX_USER 200
#define RBK_PREFIX "drover-user-"
#define RBK_API "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings"
#define RBK_GROUP "rbac.authorization.k8s.io"

/* ---- the plan ---- */

static int role_rank(const char *role)
{
    if (strcmp(role, "cluster-admin") == 0)
        return 3;
    return strcmp(role, "edit") == 0 ? 2 : strcmp(role, "view") == 0 ? 1 : 0;
}

/* Usernames become part of an object name: lowercase DNS characters. */
static bool username_ok(const char *u)
{
    size_t n = strlen(u);
    if (n == 0 || n > RBK_MAX_USER)
        return false;
    for (const char *p = u; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '-' || *p == '.'))
            return false;
    return true;
}

static bool role_ok(const char *r)
{
    size_t n = strlen(r);
    if (n == 0 || n > 200)
        return false;
    for (const char *p = r; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
              (*p >= '0' && *p <= '9') || strchr("-.:_", *p)))
            return false;
    return true;
}

json_t *rbackeeper_binding(const char *username, const char *role)
{
    char name[256], subject[256];
    snprintf(name, sizeof(name), RBK_PREFIX "%s", username);
    snprintf(subject, sizeof(subject), "drover:%s", username);
    return json_pack("{s:s, s:s, s:{s:s, s:{s:s}}, s:{s:s, s:s, s:s}, s:[{s:s, s:s, s:s}]}",
                     "apiVersion", RBK_GROUP "/v1", "kind", "ClusterRoleBinding",
                     "metadata", "name", name, "labels", RBACKEEPER_LABEL, "true",
                     "roleRef", "apiGroup", RBK_GROUP, "kind", "ClusterRole", "name", role,
                     "subjects", "kind", "User", "apiGroup", RBK_GROUP, "name", subject);
}

/* The request as an object username -> role (new ref), or NULL with err. */
static json_t *desired_roles(const json_t *request, char *err, size_t errlen)
{
    json_t *list = json_object_get(request, "bindings");
    if (!json_is_array(list) || json_array_size(list) > RBK_MAX_BINDINGS) {
        snprintf(err, errlen, "the request needs \"bindings\": an array of at most %d",
                 RBK_MAX_BINDINGS);
        return NULL;
    }
    json_t *want = json_object();
    size_t i;
    json_t *b;
    json_array_foreach(list, i, b) {
        const char *user = json_string_value(json_object_get(b, "user"));
        const char *role = json_string_value(json_object_get(b, "role"));
        if (!user || strncmp(user, "drover:", 7) != 0 || !username_ok(user + 7) || !role ||
            !role_ok(role)) {
            snprintf(err, errlen, "binding %zu: needs a user drover:<name> (lowercase "
                     "letters, digits, '-', '.') and a role name", i);
            json_decref(want);
            return NULL;
        }
        const char *had = json_string_value(json_object_get(want, user + 7));
        if (!had || role_rank(role) > role_rank(had))
            json_object_set_new(want, user + 7, json_string(role));
    }
    return want;
}

/* Whether an existing managed binding already grants exactly role to user. */
static bool binding_matches(const json_t *have, const char *username, const char *role)
{
    json_t *ref = json_object_get(have, "roleRef");
    json_t *subs = json_object_get(have, "subjects");
    const char *kind = json_string_value(json_object_get(ref, "kind"));
    const char *name = json_string_value(json_object_get(ref, "name"));
    if (!kind || strcmp(kind, "ClusterRole") != 0 || !name || strcmp(name, role) != 0 ||
        json_array_size(subs) != 1)
        return false;
    json_t *s = json_array_get(subs, 0);
    const char *sk = json_string_value(json_object_get(s, "kind"));
    const char *sn = json_string_value(json_object_get(s, "name"));
    return sk && strcmp(sk, "User") == 0 && sn && strncmp(sn, "drover:", 7) == 0 &&
           strcmp(sn + 7, username) == 0;
}

static int add_op(struct rbackeeper_plan *p, size_t cap, enum rbackeeper_op_kind kind,
                  const char *name, json_t *binding)
{
    if (p->n == cap || strlen(name) >= sizeof(p->ops[0].name)) {
        json_decref(binding);
        return -1;
    }
    struct rbackeeper_op *op = &p->ops[p->n++];
    op->kind = kind;
    memcpy(op->name, name, strlen(name) + 1);
    op->binding = binding;
    return 0;
}

/* Deletions of managed bindings nobody wants; marks the kept ones in want
 * (value replaced by null when already right). */
static int plan_existing(const json_t *items, json_t *want, struct rbackeeper_plan *p,
                         size_t cap, json_t *replace)
{
    size_t i;
    json_t *it;
    json_array_foreach(items, i, it) {
        const char *name = json_string_value(json_object_get(json_object_get(it, "metadata"),
                                                             "name"));
        if (!name)
            continue;
        const char *user = strncmp(name, RBK_PREFIX, strlen(RBK_PREFIX)) == 0
                           ? name + strlen(RBK_PREFIX) : NULL;
        const char *role = user ? json_string_value(json_object_get(want, user)) : NULL;
        if (!role) {
            if (add_op(p, cap, RBK_DELETE, name, NULL) < 0)
                return -1;
        } else if (binding_matches(it, user, role)) {
            json_object_set_new(want, user, json_null());
        } else {
            json_object_set_new(replace, user, json_true());
        }
    }
    return 0;
}

/* Deletions, then replacements, then creations, each by name: freeing
 * names first, and an order the tests and logs can rely on. */
static int op_order(const void *a, const void *b)
{
    const struct rbackeeper_op *x = a, *y = b;
    if (x->kind != y->kind)
        return x->kind == RBK_DELETE ? -1 : y->kind == RBK_DELETE ? 1
               : x->kind == RBK_REPLACE ? -1 : 1;
    return strcmp(x->name, y->name);
}

int rbackeeper_plan(const json_t *request, const json_t *actual,
                    struct rbackeeper_plan *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof(*out));
    json_t *items = json_object_get(actual, "items");
    json_t *want = desired_roles(request, err, errlen);
    if (!want)
        return -1;
    size_t cap = json_object_size(want) + json_array_size(items) + 1;
    json_t *replace = json_object();
    out->ops = calloc(cap, sizeof(*out->ops));
    int rc = out->ops && replace ? plan_existing(items, want, out, cap, replace) : -1;
    const char *user;
    json_t *v;
    json_object_foreach(want, user, v) {
        if (rc < 0 || !json_is_string(v))
            continue;
        bool repl = json_object_get(replace, user) != NULL;
        char name[256];
        snprintf(name, sizeof(name), RBK_PREFIX "%s", user);
        rc = add_op(out, cap, repl ? RBK_REPLACE : RBK_CREATE, name,
                    rbackeeper_binding(user, json_string_value(v)));
    }
    json_decref(want);
    json_decref(replace);
    if (rc < 0) {
        rbackeeper_plan_free(out);
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    qsort(out->ops, out->n, sizeof(*out->ops), op_order);
    return 0;
}

void rbackeeper_plan_free(struct rbackeeper_plan *p)
{
    for (size_t i = 0; p->ops && i < p->n; i++)
        json_decref(p->ops[i].binding);
    free(p->ops);
    memset(p, 0, sizeof(*p));
}

/* ---- serving a stream ---- */

struct rbk {
    struct kubeclient *kc;
    struct tun_stream *s;
    char *doc;
    size_t len, alloc;
    json_t *request;
    struct rbackeeper_plan plan;
    size_t next;
    bool deleted_first;         /* a replacement's delete is done */
    int created, updated, deleted;
    struct kc_req *req;
    char *answer;
    size_t ans_len, ans_off;
};

static void rbk_free(struct rbk *k)
{
    kubeclient_cancel(k->req);
    rbackeeper_plan_free(&k->plan);
    json_decref(k->request);
    free(k->doc);
    free(k->answer);
    free(k);
}

/* Sends what is left of the answer, then closes; frees k once done. */
static void send_answer(struct rbk *k)
{
    while (k->ans_off < k->ans_len) {
        ssize_t n = tun_stream_send(k->s, k->answer + k->ans_off, k->ans_len - k->ans_off);
        if (n < 0) {
            tun_stream_reset(k->s, TUN_RESET_CANCEL, "cannot send the answer");
            rbk_free(k);
            return;
        }
        if (n == 0)
            return;             /* on_writable resumes */
        k->ans_off += (size_t)n;
    }
    /* The peer closed first (we act on its EOF), so this normally ends the
     * stream; otherwise on_end follows and frees k. */
    if (tun_stream_close(k->s) == 1)
        rbk_free(k);
}

static void answer(struct rbk *k, const char *error)
{
    json_t *a = error ? json_pack("{s:b, s:s}", "ok", 0, "error", error)
                      : json_pack("{s:b, s:i, s:i, s:i}", "ok", 1, "created", k->created,
                                  "updated", k->updated, "deleted", k->deleted);
    k->answer = a ? json_dumps(a, JSON_COMPACT) : NULL;
    json_decref(a);
    if (!k->answer) {
        tun_stream_reset(k->s, TUN_RESET_INTERNAL, "out of memory");
        rbk_free(k);
        return;
    }
    k->ans_len = strlen(k->answer);
    if (error)
        log_warn("rbac: %s", error);
    else if (k->created || k->updated || k->deleted)
        log_info("rbac: %d bindings created, %d replaced, %d deleted", k->created,
                 k->updated, k->deleted);
    send_answer(k);
}

static void step(struct rbk *k);

static void op_done(void *ud, int status, json_t *body, const char *err)
{
    struct rbk *k = ud;
    struct rbackeeper_op *op = &k->plan.ops[k->next];
    bool deleting = op->kind == RBK_DELETE || (op->kind == RBK_REPLACE && !k->deleted_first);
    (void)body;
    k->req = NULL;
    /* Someone deleted it already: that is what we wanted. */
    bool ok = deleting ? (status == 200 || status == 202 || status == 404)
                       : (status == 200 || status == 201);
    if (!ok) {
        char msg[1300];
        snprintf(msg, sizeof(msg), "%s ClusterRoleBinding %s: %s",
                 deleting ? "deleting" : "creating", op->name, err ? err : "failed");
        answer(k, msg);
        return;
    }
    if (op->kind == RBK_REPLACE && !k->deleted_first) {
        k->deleted_first = true;        /* roleRef is immutable: now create it anew */
        step(k);
        return;
    }
    k->deleted_first = false;
    if (op->kind == RBK_CREATE)
        k->created++;
    else if (op->kind == RBK_REPLACE)
        k->updated++;
    else
        k->deleted++;
    k->next++;
    step(k);
}

static void step(struct rbk *k)
{
    if (k->next == k->plan.n) {
        answer(k, NULL);
        return;
    }
    struct rbackeeper_op *op = &k->plan.ops[k->next];
    if (op->kind == RBK_DELETE || (op->kind == RBK_REPLACE && !k->deleted_first)) {
        char path[512];
        snprintf(path, sizeof(path), RBK_API "/%s", op->name);
        k->req = kubeclient_request(k->kc, "DELETE", path, NULL, op_done, k);
    } else {
        k->req = kubeclient_request(k->kc, "POST", RBK_API, op->binding, op_done, k);
    }
    if (!k->req)
        answer(k, "cannot reach the kube-apiserver");
}

static void list_done(void *ud, int status, json_t *body, const char *err)
{
    struct rbk *k = ud;
    char why[1300];
    k->req = NULL;
    if (status != 200 || !json_is_array(json_object_get(body, "items"))) {
        snprintf(why, sizeof(why), "listing ClusterRoleBindings: %s",
                 err ? err : "not a list");
        answer(k, why);
        return;
    }
    if (rbackeeper_plan(k->request, body, &k->plan, why, sizeof(why)) < 0) {
        answer(k, why);
        return;
    }
    step(k);
}

static void s_data(struct tun_stream *s, const uint8_t *p, size_t n)
{
    struct rbk *k = tun_stream_ud(s);
    if (n > RBACKEEPER_MAX_DOC - k->len) {
        tun_stream_reset(s, TUN_RESET_LIMIT, "limit");
        rbk_free(k);
        return;
    }
    if (n > k->alloc - k->len) {
        size_t want = k->alloc ? k->alloc : 4096;
        while (want - k->len < n)
            want = want > RBACKEEPER_MAX_DOC / 2 ? RBACKEEPER_MAX_DOC : want * 2;
        char *d = realloc(k->doc, want);
        if (!d) {
            tun_stream_reset(s, TUN_RESET_INTERNAL, "out of memory");
            rbk_free(k);
            return;
        }
        k->doc = d;
        k->alloc = want;
    }
    memcpy(k->doc + k->len, p, n);
    k->len += n;
    tun_stream_consumed(s, n);
}

static void s_eof(struct tun_stream *s)
{
    struct rbk *k = tun_stream_ud(s);
    k->request = json_loadb(k->doc ? k->doc : "", k->len, 0, NULL);
    if (!json_is_object(k->request)) {
        answer(k, "the request is not a JSON object");
        return;
    }
    k->req = kubeclient_request(k->kc, "GET", RBK_API "?labelSelector="
                                "drover.io%2Fmanaged%3Dtrue", NULL, list_done, k);
    if (!k->req)
        answer(k, "cannot reach the kube-apiserver");
}

static void s_writable(struct tun_stream *s)
{
    struct rbk *k = tun_stream_ud(s);
    if (k->answer)
        send_answer(k);
}

static void s_end(struct tun_stream *s, uint16_t code, const char *reason)
{
    struct rbk *k = tun_stream_ud(s);
    (void)code;
    (void)reason;
    k->s = NULL;
    rbk_free(k);
}

static const struct tun_stream_ops rbk_ops = {
    .on_data = s_data,
    .on_eof = s_eof,
    .on_writable = s_writable,
    .on_end = s_end,
};

void rbackeeper_serve(struct kubeclient *kc, struct tun_stream *s)
{
    struct rbk *k = calloc(1, sizeof(*k));
    if (!k) {
        tun_stream_reset(s, TUN_RESET_INTERNAL, "out of memory");
        return;
    }
    k->kc = kc;
    k->s = s;
    if (tun_stream_accept(s, &rbk_ops, k) < 0)
        free(k);
}
