/*
 * api_int: what the /v3 handler files (api_*.c) share with api.c. Not for
 * code outside server/api*.c.
 *
 * A request becomes a struct api_call. api.c routes it, reads its body,
 * checks the bearer token's shape and submits the route's work to the
 * datastore pool. On the worker, api.c authenticates the token and parses
 * the JSON body, then runs the route's work function, which fills in the
 * answer (status plus c->out, or an error through api_fail) or names a next
 * stage to run (c->next: e.g. hash a password on a reader, then write on the
 * writer). Back on the loop, the route's optional `after` hook runs and
 * api.c answers.
 */
#ifndef DROVER_SERVER_API_INT_H
#define DROVER_SERVER_API_INT_H

#include <jansson.h>
#include <stdarg.h>

#include "server/api.h"
#include "server/store.h"
#include "server/throttle.h"

struct hmap;

#define API_MAX_BODY    (1024 * 1024)
#define API_SEG_MAX     128     /* a path segment or cursor, with its NUL */
#define API_MAX_PARAMS  2
#define API_LIMIT_DEF   100
#define API_LIMIT_MAX   1000

enum api_flags {
    API_AUTH = 1,       /* needs a valid bearer token */
    API_ADMIN = 2,      /* ... of an admin */
    API_BODY = 4,       /* reads a JSON object body */
    API_WRITE = 8,      /* may write: on SQLite it runs on the writer */
    API_HEAVY = 16,     /* hashes a password: goes through the gate */
};

struct api_call;
/* Runs on a worker. Returns >= 0 when the call is decided (the answer is in
 * c), or a negative db/store code that api.c turns into a generic answer. */
typedef int (*api_work_fn)(struct db *db, struct api_call *c);

struct api_route {
    const char *method;
    const char *pattern;        /* "{}" matches one path segment */
    unsigned flags;
    api_work_fn work;
    /* Loop thread, after the work: returns true if it took over answering
     * (e.g. a delayed login failure). May be NULL. */
    bool (*after)(struct api_call *c);
};

struct api {
    struct loop *loop;
    struct db_pool *pool;
    char server_url[512];
    char ca_checksum[AUTH_HEX_SHA256];
    char *ca_pem;
    struct auth_sealkey seal;
    void (*on_cluster_deleted)(void *ud, const char *cluster_id);
    void (*on_membership_changed)(void *ud, const char *cluster_id);
    bool (*node_connected)(void *ud, const char *cluster_id, const char *node);
    void *ud;
    struct throttle *throttle;
    unsigned heavy_running, heavy_cap;
    struct api_call *wait_head, *wait_tail;  /* waiting for the gate */
    size_t nwaiting;
    struct api_call *delayed;                /* failed logins held back */
    struct hmap *authz;                      /* /k8s decisions (api.c) */
};

struct api_call {
    struct api *api;
    struct hs_req *r;
    const struct api_route *route;
    char param[API_MAX_PARAMS][API_SEG_MAX];
    /* query: ?limit= ?cursor= ?since= */
    int limit;
    char cursor[API_SEG_MAX];
    int64_t since;
    char peer[48];
    /* request */
    const uint8_t *body;
    size_t body_len;
    json_t *in;                 /* the parsed body object */
    bool has_token;
    char token_hash[AUTH_HEX_SHA256];
    struct store_principal who;
    /* the next stage, if any */
    api_work_fn next;
    bool next_write, next_heavy, heavy;
    /* the answer */
    int status;
    json_t *out;
    char *raw;                  /* or a body that is not JSON (malloc'd) */
    size_t raw_len;
    const char *raw_type;
    char code[32];
    char msg[300];
    char headers[256];
    char dberr[200];            /* for the log, never for the client */
    /* handler scratch */
    char name[STORE_NAME_MAX + 1];
    char pw_hash[AUTH_PW_HASH_MAX];
    struct store_user user;
    int64_t n1, n2;
    bool failed_login;
    /* api_authorize_cluster's continuation */
    void (*authz_ok)(struct hs_req *r, const char *username, void *ud);
    void *authz_ud;
    /* lists and timers on the loop side */
    struct api_call *wait_next;
    struct api_call *delay_next, **delay_prev;
    struct loop_timer timer;
};

/* The routes of each handler file, NULL-method terminated. */
extern const struct api_route api_token_routes[];
extern const struct api_route api_user_routes[];
extern const struct api_route api_cluster_routes[];
extern const struct api_route api_member_routes[];
extern const struct api_route api_import_routes[];

/* ---- answers (worker side) ---- */

/* Sets an error answer; returns 0 so work functions can `return api_fail()`. */
int api_fail(struct api_call *c, int status, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* Sets a success answer; takes ownership of out (may be NULL for 204). */
int api_ok(struct api_call *c, int status, json_t *out);
/* 404 for a cluster the caller may not see (never says whether it exists). */
int api_no_cluster(struct api_call *c);
/* The caller's role in the cluster named by c->param[0] (admins own every
 * cluster), checked against need: 0 to go on, or 1 with the 404/403 answer
 * set, or a negative code. */
int api_cluster_access(struct db *db, struct api_call *c, enum store_role need,
                       enum store_role *role);
/* Runs next as the following stage (on the writer if write; through the
 * hashing gate if heavy). */
void api_then(struct api_call *c, api_work_fn next, bool write, bool heavy);
/* Loop thread, from an `after` hook: tells the api_cfg hook that the
 * membership of cluster (NULL: of every cluster) changed. */
void api_membership_changed(struct api *a, const char *cluster);
/* Loop thread, from an `after` hook: answers c after ms. */
void api_delay_answer(struct api_call *c, uint64_t ms);

/* ---- JSON (api_json.c) ---- */

enum api_jtype { API_J_STRING, API_J_INT, API_J_BOOL, API_J_OBJECT, API_J_TTL };

struct api_field {
    const char *name;
    enum api_jtype type;
    bool required;
};

/* Whether v has the JSON type a field of type t needs. */
bool api_json_type_ok(const json_t *v, enum api_jtype t);
/* Checks that obj has only these fields, of these types, and the required
 * ones. 0, or -1 with a message for a 400 in err. */
int api_json_check(const json_t *obj, const struct api_field *fields, size_t n,
                   char *err, size_t errlen);
/* Works on the field's string value, or NULL if absent. */
const char *api_json_str(const json_t *obj, const char *name);
/* RFC 3339 UTC ("2026-11-24T18:53:13.123Z"), or JSON null for ms < 0. */
json_t *api_json_time(int64_t ms);
/* A stored JSON document, or an empty object/array if it is unreadable. */
json_t *api_json_doc(const char *text, bool array);

/* A list answer: {"data":[...],"next":cursor|null}. The store is asked for
 * limit + 1 rows: the extra one only says there is more. */
struct api_list {
    json_t *data;
    int limit, count;
    char last[API_SEG_MAX];
    bool more;
};
void api_list_init(struct api_list *l, int limit);
/* Adds item (takes ownership) under key (the cursor for the next page).
 * Returns 0, or -1 without memory. */
int api_list_add(struct api_list *l, json_t *item, const char *key);
/* Answers 200 with the list (also on a store error: then it just frees). */
int api_list_finish(struct api_call *c, struct api_list *l, int rc);

/* ---- names ---- */

/* A DNS label: 1-63 of [a-z0-9-], starting and ending alphanumeric. */
bool api_valid_label(const char *s);
/* A username: 1-64 of [a-z0-9._-], starting alphanumeric. */
bool api_valid_username(const char *s);
/* c- and 5 of [a-z0-9]. */
bool api_valid_cluster_id(const char *s);

/* ---- the cluster object (api_clusters.c) ---- */
json_t *api_cluster_json(struct api *a, const struct store_cluster *c, bool admin);

#endif
