/*
 * api_clusters: /v3/clusters and its registration token.
 *
 * Any user may create a cluster and becomes its owner. Every other call
 * needs a role in the cluster (admins own them all); a cluster the caller
 * has no role in answers 404, so its existence is never revealed. Only
 * owners see the registration token: it lets an agent speak for the cluster.
 */
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "server/api_int.h"
#include "server/kubeconfig.h"
#include "server/store_snapshots.h"

#define ID_TRIES            8
#define INTERVAL_MAX_MIN    (366 * 24 * 60)
#define RETENTION_MAX       1000

static json_t *registration_json(struct api *a, const struct store_cluster *c)
{
    char token[AUTH_REG_TOKEN_SIZE + 8], url[1024], cmd[1200], insecure[1200];
    if (!c->sealed_token || auth_unseal(&a->seal, c->id, c->sealed_token, token,
                                        sizeof(token)) < 0) {
        /* Sealed under another CA key: only a rotation recovers. */
        log_warn("cluster %s: cannot unseal its registration token; rotate it", c->id);
        return json_pack("{s:n,s:n,s:n,s:n}", "token", "manifestUrl", "command",
                         "insecureCommand");
    }
    snprintf(url, sizeof(url), "%s/v3/import/%s_%s.yaml", a->server_url, token, c->id);
    snprintf(cmd, sizeof(cmd), "kubectl apply -f %s", url);
    snprintf(insecure, sizeof(insecure), "curl --insecure -sfL %s | kubectl apply -f -", url);
    json_t *j = json_pack("{s:s,s:s,s:s,s:s}", "token", token, "manifestUrl", url,
                          "command", cmd, "insecureCommand", insecure);
    OPENSSL_cleanse(token, sizeof(token));
    return j;
}

json_t *api_cluster_json(struct api *a, const struct store_cluster *c, bool admin)
{
    bool owner = admin || c->role == STORE_ROLE_OWNER;
    json_t *conn = json_pack("{s:s?,s:o}", "via", c->via, "since",
                             api_json_time(c->connection_since));
    json_t *sched = json_pack("{s:I,s:I}", "intervalMinutes",
                              (json_int_t)c->snapshot_interval, "retention",
                              (json_int_t)c->snapshot_retention);
    json_t *reg = owner ? registration_json(a, c) : json_null();
    return json_pack("{s:s,s:s,s:s,s:o,s:s?,s:I,s:o,s:o,s:o,s:o,s:o,s:o}",
                     "id", c->id, "name", c->name, "state", c->state,
                     "connection", conn, "kubernetesVersion", c->kubernetes_version,
                     "nodeCount", (json_int_t)c->node_count,
                     "capacity", api_json_doc(c->capacity_json, false),
                     "conditions", api_json_doc(c->conditions_json, true),
                     "lastSeen", api_json_time(c->last_seen),
                     "etcdSnapshotSchedule", sched, "registration", reg,
                     "createdAt", api_json_time(c->created_at));
}

struct one {
    struct api *api;
    bool admin;
    json_t *out;
};

static int one_row(void *ud, const struct store_cluster *c)
{
    struct one *o = ud;
    o->out = api_cluster_json(o->api, c, o->admin);
    return o->out ? 0 : DB_ERROR;
}

/* Answers status with cluster id as the caller sees it. */
static int answer_cluster(struct db *db, struct api_call *c, const char *id, int status)
{
    struct one o = { c->api, c->who.user.admin, NULL };
    int rc = store_cluster_get(db, id, c->who.user.id, one_row, &o);
    if (rc == DB_NOTFOUND)
        return api_no_cluster(c);
    if (rc < 0) {
        json_decref(o.out);
        return rc;
    }
    return api_ok(c, status, o.out);
}

struct many {
    struct api *api;
    bool admin;
    struct api_list l;
};

static int list_row(void *ud, const struct store_cluster *c)
{
    struct many *m = ud;
    return api_list_add(&m->l, api_cluster_json(m->api, c, m->admin), c->id) < 0
        ? DB_ERROR : 0;
}

static int list_clusters(struct db *db, struct api_call *c)
{
    struct many m = { c->api, c->who.user.admin, { 0 } };
    api_list_init(&m.l, c->limit);
    int rc = store_clusters_list(db, c->who.user.admin ? NULL : c->who.user.id, c->cursor,
                                 c->limit + 1, list_row, &m);
    return api_list_finish(c, &m.l, rc);
}

/* Reads an etcdSnapshotSchedule object into *interval / *retention (left
 * alone when absent). false after setting the 400. */
static bool read_schedule(struct api_call *c, int64_t *interval, int64_t *retention)
{
    static const struct api_field fields[] = {
        { "intervalMinutes", API_J_INT, false },
        { "retention", API_J_INT, false },
    };
    json_t *s = json_object_get(c->in, "etcdSnapshotSchedule");
    char err[160];
    if (!s)
        return true;
    if (api_json_check(s, fields, 2, err, sizeof(err)) < 0)
        return api_fail(c, 400, "BadRequest", "etcdSnapshotSchedule: %s", err), false;
    json_t *iv = json_object_get(s, "intervalMinutes"), *rv = json_object_get(s, "retention");
    if (iv && (json_integer_value(iv) < 0 || json_integer_value(iv) > INTERVAL_MAX_MIN))
        return api_fail(c, 400, "BadRequest", "intervalMinutes must be 0 (off) to %d",
                        INTERVAL_MAX_MIN), false;
    if (rv && (json_integer_value(rv) < 1 || json_integer_value(rv) > RETENTION_MAX))
        return api_fail(c, 400, "BadRequest", "retention must be 1 to %d",
                        RETENTION_MAX), false;
    if (iv)
        *interval = json_integer_value(iv);
    if (rv)
        *retention = json_integer_value(rv);
    return true;
}

static bool read_name(struct api_call *c, const char **name)
{
    *name = api_json_str(c->in, "name");
    if (!*name || api_valid_label(*name))
        return true;
    api_fail(c, 400, "BadRequest", "invalid name \"%.64s\": use a DNS label (1-63 of a-z, "
             "0-9 and '-', starting and ending with a letter or digit)", *name);
    return false;
}

/* A fresh registration token for cluster id: hash and sealed copy. */
static bool new_reg_token(struct api_call *c, const char *id, char hash[AUTH_HEX_SHA256],
                          char sealed[AUTH_SEALED_MAX])
{
    char token[AUTH_REG_TOKEN_SIZE];
    bool ok = auth_reg_token_new(token, hash) == 0 &&
              auth_seal(&c->api->seal, id, token, sealed, AUTH_SEALED_MAX) == 0;
    OPENSSL_cleanse(token, sizeof(token));
    if (!ok)
        api_fail(c, 503, "ServiceUnavailable", "cannot make a registration token");
    return ok;
}

static int insert_cluster(struct db *db, struct api_call *c, struct store_cluster_new *n,
                          char *id)
{
    char rnd[6], hash[AUTH_HEX_SHA256], sealed[AUTH_SEALED_MAX];
    int rc = DB_CONFLICT;
    /* 36^5 ids: collisions are rare but possible; the primary key tells. */
    for (int i = 0; i < ID_TRIES && rc == DB_CONFLICT; i++) {
        if (auth_random_alnum(rnd, 5) < 0)
            return api_fail(c, 503, "ServiceUnavailable", "no randomness available");
        snprintf(id, 8, "c-%s", rnd);
        if (!new_reg_token(c, id, hash, sealed))
            return 0;
        n->id = id;
        n->token_hash = hash;
        n->token_sealed = sealed;
        rc = store_cluster_create(db, n);
    }
    if (rc == STORE_E_EXISTS)
        return api_fail(c, 409, "Conflict", "a cluster named %s already exists", n->name);
    if (rc < 0)
        return rc;
    snprintf(c->headers, sizeof(c->headers), "Location: /v3/clusters/%s\r\n", id);
    return answer_cluster(db, c, id, 201);
}

static int post_cluster(struct db *db, struct api_call *c)
{
    static const struct api_field fields[] = {
        { "name", API_J_STRING, true },
        { "etcdSnapshotSchedule", API_J_OBJECT, false },
    };
    char err[160], id[8];
    if (api_json_check(c->in, fields, 2, err, sizeof(err)) < 0)
        return api_fail(c, 400, "BadRequest", "%s", err);
    struct store_cluster_new n = { .snapshot_interval = -1, .snapshot_retention = -1,
                                   .owner_id = c->who.user.id };
    if (!read_name(c, &n.name) || !read_schedule(c, &n.snapshot_interval,
                                                 &n.snapshot_retention))
        return 0;
    return insert_cluster(db, c, &n, id);
}

/* The cluster's last upgrade rollout (server/upgrade.c), or null. */
static int add_upgrade(struct db *db, struct api_call *c)
{
    char *doc = NULL;
    int rc = store_upgrade_get(db, c->param[0], &doc);
    if (rc < 0 && rc != DB_NOTFOUND)
        return rc;
    json_t *u = doc ? json_loads(doc, 0, NULL) : NULL;
    free(doc);
    json_object_set_new(c->out, "upgrade", u ? u : json_null());
    return 0;
}

static int get_cluster(struct db *db, struct api_call *c)
{
    enum store_role role;
    int rc = api_cluster_access(db, c, STORE_ROLE_VIEWER, &role);
    if (rc)
        return rc < 0 ? rc : 0;
    rc = answer_cluster(db, c, c->param[0], 200);
    return rc < 0 || c->status != 200 ? rc : add_upgrade(db, c);
}

/* Fields of the cluster object a PUT may not set. */
static const char *const read_only[] = {
    "id", "state", "connection", "kubernetesVersion", "nodeCount", "capacity",
    "conditions", "lastSeen", "registration", "createdAt", "upgrade",
};

static int put_cluster(struct db *db, struct api_call *c)
{
    static const struct api_field fields[] = {
        { "name", API_J_STRING, false },
        { "etcdSnapshotSchedule", API_J_OBJECT, false },
    };
    enum store_role role;
    char err[160];
    int rc = api_cluster_access(db, c, STORE_ROLE_OWNER, &role);
    if (rc)
        return rc < 0 ? rc : 0;
    for (size_t i = 0; i < sizeof(read_only) / sizeof(read_only[0]); i++)
        if (json_object_get(c->in, read_only[i]))
            return api_fail(c, 400, "BadRequest", "field \"%s\" cannot be set", read_only[i]);
    if (api_json_check(c->in, fields, 2, err, sizeof(err)) < 0)
        return api_fail(c, 400, "BadRequest", "%s", err);
    const char *name;
    int64_t interval = -1, retention = -1;
    if (!read_name(c, &name) || !read_schedule(c, &interval, &retention))
        return 0;
    rc = store_cluster_update(db, c->param[0], name, interval, retention);
    if (rc == STORE_E_EXISTS)
        return api_fail(c, 409, "Conflict", "a cluster named %s already exists", name);
    if (rc == DB_NOTFOUND)
        return api_no_cluster(c);
    return rc < 0 ? rc : answer_cluster(db, c, c->param[0], 200);
}

static int delete_cluster(struct db *db, struct api_call *c)
{
    enum store_role role;
    int rc = api_cluster_access(db, c, STORE_ROLE_OWNER, &role);
    if (rc)
        return rc < 0 ? rc : 0;
    rc = store_cluster_delete(db, c->param[0]);
    if (rc == DB_NOTFOUND)
        return api_no_cluster(c);
    return rc < 0 ? rc : api_ok(c, 204, NULL);
}

static bool after_delete(struct api_call *c)
{
    struct api *a = c->api;
    if (c->status == 204 && a->on_cluster_deleted)
        a->on_cluster_deleted(a->ud, c->param[0]);
    return false;
}

/* A new cluster's owner (and every admin) needs bindings once it connects. */
static bool after_create(struct api_call *c)
{
    const char *id = json_string_value(json_object_get(c->out, "id"));
    if (c->status == 201 && id)
        api_membership_changed(c->api, id);
    return false;
}

static int rotate_token(struct db *db, struct api_call *c)
{
    enum store_role role;
    char hash[AUTH_HEX_SHA256], sealed[AUTH_SEALED_MAX];
    int rc = api_cluster_access(db, c, STORE_ROLE_OWNER, &role);
    if (rc)
        return rc < 0 ? rc : 0;
    if (!new_reg_token(c, c->param[0], hash, sealed))
        return 0;
    rc = store_cluster_rotate(db, c->param[0], hash, sealed);
    if (rc == DB_NOTFOUND)
        return api_no_cluster(c);
    return rc < 0 ? rc : answer_cluster(db, c, c->param[0], 200);
}

/* The kubeconfig carries the token the caller authenticated this request
 * with: it is theirs already, and it dies with their session. */
static int kubeconfig_row(void *ud, const struct store_cluster *cl)
{
    struct api_call *c = ud;
    const struct http_header *h = hs_header(c->r, "authorization");
    char token[AUTH_API_TOKEN_SIZE + 8] = "";
    if (h && h->value_len > 7 && h->value_len - 7 < sizeof(token)) {
        memcpy(token, h->value + 7, h->value_len - 7);
        token[h->value_len - 7] = '\0';
    }
    struct kubeconfig_params p = {
        .server_url = c->api->server_url, .cluster_id = cl->id, .cluster_name = cl->name,
        .ca_pem = c->api->ca_pem, .username = c->who.user.username, .token = token,
    };
    char err[200], *out = NULL;
    size_t len = 0;
    if (kubeconfig_render(&p, &out, &len, err, sizeof(err)) < 0) {
        api_fail(c, 500, "InternalError", "cannot render the kubeconfig: %s", err);
        return 0;
    }
    c->status = 200;
    c->raw = out;
    c->raw_len = len;
    c->raw_type = "application/yaml";
    return 0;
}

static int get_kubeconfig(struct db *db, struct api_call *c)
{
    enum store_role role;
    int rc = api_cluster_access(db, c, STORE_ROLE_VIEWER, &role);
    if (rc)
        return rc < 0 ? rc : 0;
    rc = store_cluster_get(db, c->param[0], c->who.user.id, kubeconfig_row, c);
    if (rc == DB_NOTFOUND)
        return api_no_cluster(c);
    return rc < 0 ? rc : 0;
}

const struct api_route api_cluster_routes[] = {
    { "GET", "/v3/clusters/{}/kubeconfig", API_AUTH, get_kubeconfig, NULL },
    { "GET", "/v3/clusters", API_AUTH, list_clusters, NULL },
    { "POST", "/v3/clusters", API_AUTH | API_BODY | API_WRITE, post_cluster, after_create },
    { "GET", "/v3/clusters/{}", API_AUTH, get_cluster, NULL },
    { "PUT", "/v3/clusters/{}", API_AUTH | API_BODY | API_WRITE, put_cluster, NULL },
    { "DELETE", "/v3/clusters/{}", API_AUTH | API_WRITE, delete_cluster, after_delete },
    { "POST", "/v3/clusters/{}/registrationtoken", API_AUTH | API_WRITE, rotate_token, NULL },
    { 0 },
};
