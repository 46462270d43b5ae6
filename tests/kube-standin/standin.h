/*
 * kube-standin: a STAND-IN Kubernetes API server for drover's tests. It is
 * test code only and never ships: no kube-apiserver is packaged on the test
 * machines, so this program speaks the part of the API that drover and a real
 * kubectl use (discovery, CRUD, watch, RBAC with impersonation, logs, exec and
 * port-forward), with real semantics but everything kept in memory.
 *
 * This header holds what the modules share: the process-wide context (struct
 * ks), one request being served (struct kreq), the resource table and the
 * entry points of each module. Each module's own comment says what it owns.
 */
#ifndef KUBE_STANDIN_H
#define KUBE_STANDIN_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/loop.h"
#include "server/http_server.h"

#define KS_MAX_TOKENS 64
#define KS_MAX_ADMINS 64
#define KS_MAX_BODY (3u * 1024u * 1024u)    /* the real API's request limit */

struct store;
struct kstream;

struct ks_token {
    const char *name;       /* the user it authenticates as */
    const char *token;
};

struct ks_opts {
    const char *listen, *port_file, *data_dir, *audit, *version;
    struct ks_token tokens[KS_MAX_TOKENS];
    size_t ntokens;
    const char *admins[KS_MAX_ADMINS];
    size_t nadmins;
    int nodes;
    size_t watch_history;
};

/* The whole stand-in; one per process, owned by main. */
struct ks {
    struct ks_opts o;
    struct loop *loop;
    struct hs *http;
    SSL_CTX *tls;
    struct store *store;
    struct hmap *inflight;      /* "%p" of an hs_req -> its kreq (for the audit) */
    int audit_fd;               /* -1 without --audit */
    int port;
    /* Long-lived sessions, each list owned by its module (freed at shutdown). */
    struct kstream *streams;    /* stream.c: watches and followed logs */
    struct watcher *watchers;   /* watch.c */
    struct exec_session *execs; /* exec.c */
    struct pf_session *pfs;     /* portforward.c */
    bool stopping;              /* shutting down: deferred controller work is dropped */
};

/* ---- one request ---- */

struct kuser {
    char *name;
    char *uid;              /* may be NULL */
    json_t *groups;         /* array of strings */
    json_t *extra;          /* object of arrays, may be NULL */
};

/* What a request asks for, in RBAC's terms. */
struct kattrs {
    bool resource;                  /* false: a non-resource URL such as /version */
    const struct kres *res;         /* NULL when the resource is unknown */
    char verb[24];
    char group[64], version[24], resname[64];
    char ns[256], name[256], sub[32];
};

struct kreq {
    struct ks *ks;
    struct hs_req *r;
    char key[32];                   /* its key in ks->inflight */
    char method[12];
    char *path;                     /* percent-decoded */
    char *query;                    /* raw, NUL-terminated ("" if none) */
    const char *token_name;         /* borrowed from the options; NULL if none */
    struct kuser user;              /* the effective user (after impersonation) */
    char *impersonator;             /* the authenticated user when impersonating */
    struct kattrs a;
    int audit_status;               /* set before a takeover: what the audit records */
    bool table;                     /* Accept asks for a meta.k8s.io Table */
};

/* ---- resources.c: the resource table ---- */

enum kprint {
    KP_DEFAULT, KP_POD, KP_NODE, KP_NAMESPACE, KP_DEPLOYMENT, KP_DAEMONSET,
    KP_EVENT, KP_SERVICE, KP_CONFIGMAP, KP_SECRET, KP_SERVICEACCOUNT,
    KP_ROLE, KP_BINDING, KP_CLUSTERBINDING,
};

struct kres {
    const char *name, *singular, *kind, *group, *version;
    bool namespaced;
    const char *short_names[3];
    bool in_all;                    /* category "all" */
    const char *subresources[5];    /* "log", "exec", ... */
    bool create_only;               /* review-style resources */
    enum kprint print;
};

extern const struct kres kres_table[];
extern const size_t kres_count;

const struct kres *kres_find(const char *group, const char *version, const char *name);
const struct kres *kres_by_kind(const char *api_version, const char *kind);
/* "v1" or "apps/v1". */
void kres_api_version(const struct kres *r, char *out, size_t cap);
/* Verbs a subresource supports, as a JSON array (new reference). */
json_t *kres_sub_verbs(const char *sub);
bool kres_sub_known(const struct kres *r, const char *sub);

/* ---- router.c: answering, and small helpers every handler uses ---- */

void ks_dispatch(struct hs_req *r, void *ud);
void ks_on_answered(const struct hs_req *r, int status, uint64_t usec, void *ud);
/* Answers with body (a reference is stolen). */
void ks_reply_json(struct kreq *k, int status, json_t *body);
/* Answers with a kind: Status failure (details may be NULL; stolen). */
void ks_reply_status(struct kreq *k, int code, const char *reason, json_t *details,
                     const char *fmt, ...) __attribute__((format(printf, 5, 6)));
void ks_reply_text(struct kreq *k, int status, const char *text);
/* The standard NotFound / AlreadyExists answers for an object. */
void ks_reply_not_found(struct kreq *k, const struct kres *res, const char *name);
/* Query parameter value (decoded, '+' as space) into dst; -1 absent, -2 bad. */
ssize_t ks_query(const struct kreq *k, const char *name, char *dst, size_t cap);
bool ks_query_bool(const struct kreq *k, const char *name);
/* Every value of a repeated parameter, as a JSON array of strings. */
json_t *ks_query_all(const struct kreq *k, const char *name);
/* A Status object (new reference). */
json_t *ks_status_obj(int code, const char *reason, const char *message, json_t *details);
/* Frees a request context. */
void kreq_free(struct kreq *k);

/* ---- auth.c: tokens and impersonation ---- */

/* Fills k->user (and k->impersonator) or answers 401/403 and returns -1. */
int auth_request(struct kreq *k);
void kuser_clear(struct kuser *u);

/* ---- rbac.c ---- */

/* Whether user may do verb on the resource (group, resource[/sub], ns, name). */
bool rbac_allowed(struct ks *ks, const struct kuser *u, const char *verb,
                  const char *group, const char *resource, const char *sub,
                  const char *ns, const char *name);
bool rbac_allows_attrs(struct ks *ks, const struct kuser *u, const struct kattrs *a);
/* Answers the real API's 403 for a denied request. */
void rbac_forbid(struct kreq *k);
/* The built-in ClusterRoles and the bindings of --admin users. */
void rbac_seed(struct ks *ks);

/* ---- audit.c ---- */

int audit_open(struct ks *ks);
void audit_record(struct ks *ks, const struct kreq *k, int status);

/* ---- discovery.c and openapi.c ---- */

/* Non-resource URLs; false if the path is not one of ours. */
bool disc_handle(struct kreq *k);
bool openapi_handle(struct kreq *k);

/* ---- handlers.c / handlers_write.c: the REST verbs ---- */

void h_get(struct kreq *k);
void h_list(struct kreq *k);
void h_write(struct kreq *k);      /* create, update, patch, delete(collection) */

/* ---- objects.c: object bookkeeping shared by handlers and seeds ---- */

const char *obj_str(const json_t *o, const char *path);   /* "metadata.name" */
const char *obj_name(const json_t *o);
const char *obj_ns(const json_t *o);
json_t *obj_meta(json_t *o);                /* creates metadata if missing */
void ks_now_rfc3339(char out[32]);
void ks_rfc3339(int64_t t, char out[32]);
int64_t ks_parse_time(const char *s);       /* 0 if unparsable */
void ks_uuid(char out[37]);
void ks_rand_suffix(char *out, size_t n);   /* n characters of [bcdf..2-9] */
uint64_t ks_rand(void);
/* Fills metadata and defaults of a new object: uid, creationTimestamp,
 * generation, kind/apiVersion, and per-kind defaults (a pod gets scheduled
 * and runs). Returns NULL or a validation message. */
const char *obj_prepare_create(struct ks *ks, const struct kres *res, json_t *o);
/* Carries server-owned fields from old to an update; bumps generation when
 * anything outside metadata and status changed. */
void obj_prepare_update(const struct kres *res, const json_t *old, json_t *o);
bool ks_valid_name(const char *name);

/* ---- patch.c ---- */

/* Each returns the patched document (new reference) or NULL with err set. */
json_t *patch_merge(const json_t *doc, const json_t *patch);
json_t *patch_strategic(const json_t *doc, const json_t *patch, char *err, size_t cap);
json_t *patch_json(const json_t *doc, const json_t *ops, char *err, size_t cap);
/* Parses a YAML or JSON document into JSON (new reference); NULL with err. */
json_t *yaml_to_json(const char *buf, size_t len, char *err, size_t cap);

/* ---- selector.c ---- */

struct ksel;
/* NULL with err for a malformed selector; an empty text gives an empty
 * selector that matches everything. */
struct ksel *sel_parse_labels(const char *text, char *err, size_t cap);
struct ksel *sel_parse_fields(const char *text, char *err, size_t cap);
bool sel_match(const struct ksel *s, const json_t *obj);
void sel_free(struct ksel *s);

/* ---- table.c: server-side printing for kubectl get ---- */

/* A meta.k8s.io/v1 Table of objs (array) for res (new reference). */
json_t *table_of(const struct kres *res, json_t *objs, const char *rv,
                 const char *include_object);

/* ---- controllers.c: what controllers and kubelets would do ---- */

int ctl_start(struct ks *ks);

/* ---- seed.c ---- */

int seed_all(struct ks *ks);

/* ---- stream.c: long HTTP answers (chunked) on a taken-over connection ---- */

/*
 * Takes the connection over and writes a 200 head with chunked coding.
 * on_gone runs once when the client goes away or at shutdown (not after
 * kstream_end); the stream is freed after it returns. NULL if the client has
 * gone already (k is answered and freed in every case).
 */
struct kstream *kstream_start(struct kreq *k, const char *ctype,
                              void (*on_gone)(void *ud), void *ud);
/* One chunk; -1 if the client cannot take more (the caller then ends it). */
int kstream_write(struct kstream *s, const void *p, size_t n);
size_t kstream_pending(const struct kstream *s);
/* Ends the answer and closes once flushed; frees s, no callbacks. */
void kstream_end(struct kstream *s);
void kstream_shutdown_all(struct ks *ks);
struct ks *kstream_ks(const struct kstream *s);

/* ---- watch.c, logs.c, exec.c, portforward.c ---- */

void watch_start(struct kreq *k);
int watch_init(struct ks *ks);
void h_log(struct kreq *k);
const char *pod_container(struct kreq *k, const json_t *pod, char *buf, size_t cap);
void h_exec(struct kreq *k);
void exec_shutdown_all(struct ks *ks);
void h_portforward(struct kreq *k);
void pf_shutdown_all(struct ks *ks);

#endif
