/*
 * store: the SQL behind drover's API entities, one file per entity
 * (store_users.c: users and API tokens; store_clusters.c: clusters, their
 * link state, nodes and events; store_members.c: cluster membership).
 *
 * Every function runs on a datastore worker with that worker's struct db
 * (never on the loop thread) and returns 0, DB_NOTFOUND, a negative db code,
 * or one of the STORE_E_* codes below, which name a domain rule the caller
 * turns into an HTTP answer. Functions that change several rows run their own
 * db_tx(), so a retry after DB_BUSY starts clean.
 *
 * Listing functions call fn once per row with pointers that are valid only
 * during the call, in key order, starting after `after` ("" for the start),
 * at most `limit` rows; fn returns < 0 to stop early (that value is
 * returned). Times are unix milliseconds; -1 stands for SQL NULL.
 */
#ifndef DROVER_SERVER_STORE_H
#define DROVER_SERVER_STORE_H

#include <stdbool.h>
#include <stdint.h>

#include "server/db.h"

#define STORE_E_EXISTS  (-100)  /* the unique name is taken */
#define STORE_E_LAST    (-101)  /* would leave no admin / no owner */
#define STORE_E_NOUSER  (-102)  /* the user named in the request does not exist */

#define STORE_ID_MAX    32
#define STORE_NAME_MAX  64

int64_t store_now_ms(void);

enum store_role { STORE_ROLE_NONE, STORE_ROLE_VIEWER, STORE_ROLE_MEMBER, STORE_ROLE_OWNER };
/* "owner", "member", "viewer" (NULL for NONE). */
const char *store_role_name(enum store_role r);
/* STORE_ROLE_NONE if s names no role. */
enum store_role store_role_parse(const char *s);

struct store_user {
    char id[STORE_ID_MAX];
    char username[STORE_NAME_MAX + 1];
    bool admin;
    int64_t created_at;
};

/* The owner of a valid API token. */
struct store_principal {
    struct store_user user;
    char token_id[STORE_ID_MAX];
};

/* ---- users and tokens (store_users.c) ---- */

/* The user and its password hash (into pw_hash[cap]). 0 or DB_NOTFOUND. */
int store_user_get(struct db *db, const char *username, struct store_user *out,
                   char *pw_hash, size_t cap);
/* 0 with *out filled, or STORE_E_EXISTS. */
int store_user_create(struct db *db, const char *username, const char *pw_hash,
                      bool admin, struct store_user *out);
/*
 * Changes a user: pw_hash (NULL keeps it; a new one also revokes every API
 * token of the user except keep_token_id, which may be NULL) and admin
 * (-1 keeps it). 0 with *out, DB_NOTFOUND, or STORE_E_LAST when it would
 * demote the last admin.
 */
int store_user_update(struct db *db, const char *username, const char *pw_hash,
                      int admin, const char *keep_token_id, struct store_user *out);
/* 0, DB_NOTFOUND, or STORE_E_LAST for the last admin. Tokens and
 * memberships go with the user. */
int store_user_delete(struct db *db, const char *username);
int store_users_list(struct db *db, const char *after, int limit,
                     int (*fn)(void *ud, const struct store_user *u), void *ud);
/* Creates user admin (an admin) if the table is empty. *created is true only
 * for the one caller whose insert won (the username is unique), so of several
 * replicas starting at once exactly one reports a new password. */
int store_bootstrap_admin(struct db *db, const char *pw_hash, bool *created);

/* Stores a token hash for user_id (expires_at -1: never) and drops the
 * user's expired tokens. 0 or a code. */
int store_token_create(struct db *db, const char *user_id, const char *hash,
                       int64_t expires_at);
/* The principal of a token hash that exists and has not expired at now:
 * 0 or DB_NOTFOUND. */
int store_token_auth(struct db *db, const char *hash, int64_t now,
                     struct store_principal *out);
/* 0 or DB_NOTFOUND. */
int store_token_delete(struct db *db, const char *token_id);

/* ---- clusters (store_clusters.c) ---- */

struct store_cluster {
    const char *id, *name, *state;
    const char *sealed_token;       /* NULL if not recoverable */
    const char *kubernetes_version; /* may be NULL */
    const char *capacity_json, *conditions_json;
    const char *via;                /* NULL when no link is up */
    int64_t created_at, updated_at, last_seen, connection_since;
    int64_t snapshot_interval, snapshot_retention, node_count;
    enum store_role role;           /* the asking user's own membership */
};

struct store_cluster_new {
    const char *id, *name;
    const char *token_hash, *token_sealed;
    int64_t snapshot_interval, snapshot_retention;   /* -1: the default */
    const char *owner_id;           /* becomes its owner */
};

typedef int (*store_cluster_fn)(void *ud, const struct store_cluster *c);

/* 0, STORE_E_EXISTS (name), or DB_CONFLICT (the id is taken: pick another). */
int store_cluster_create(struct db *db, const struct store_cluster_new *n);
/* One cluster with user_id's role in it. 0 or DB_NOTFOUND. */
int store_cluster_get(struct db *db, const char *id, const char *user_id,
                      store_cluster_fn fn, void *ud);
/* All clusters (user_id NULL) or those user_id is a member of, by id. */
int store_clusters_list(struct db *db, const char *user_id, const char *after,
                        int limit, store_cluster_fn fn, void *ud);
/* user_id's role in cluster id: 0 with *role (NONE if not a member), or
 * DB_NOTFOUND if the cluster does not exist. */
int store_cluster_role(struct db *db, const char *id, const char *user_id,
                       enum store_role *role);
/* name NULL and -1 values keep what is there. 0, DB_NOTFOUND or
 * STORE_E_EXISTS. */
int store_cluster_update(struct db *db, const char *id, const char *name,
                         int64_t snapshot_interval, int64_t snapshot_retention);
int store_cluster_delete(struct db *db, const char *id);
/* Replaces the registration token: the old one stops working now. */
int store_cluster_rotate(struct db *db, const char *id, const char *token_hash,
                         const char *token_sealed);
/* 1 if cluster id exists and its registration token hashes to token_hash
 * (compared in constant time), 0 if not, or a negative code. The check for
 * agents (/v3/connect) and for the manifest URL. */
int store_cluster_token_ok(struct db *db, const char *id, const char *token_hash);
/* Records a link change: state, via (NULL: none), since and last_seen. */
int store_cluster_set_link(struct db *db, const char *id, const char *state,
                           const char *via, int64_t since, int64_t last_seen);
/* At start: links of a previous run are gone; active clusters become
 * disconnected. *changed gets the number of clusters. */
int store_clusters_reset_links(struct db *db, int64_t now, int64_t *changed);

struct store_node {
    const char *name, *roles, *kubelet_version;
    const char *addresses_json, *capacity_json, *allocatable_json;
    bool ready, agent_connected;
    int64_t updated_at;
};
int store_nodes_list(struct db *db, const char *cluster_id, const char *after,
                     int limit, int (*fn)(void *ud, const struct store_node *n),
                     void *ud);

struct store_event {
    int64_t id, created_at;
    const char *type, *reason, *message, *object;
};
/* Events with id > since, oldest first. */
int store_events_list(struct db *db, const char *cluster_id, int64_t since,
                      int limit, int (*fn)(void *ud, const struct store_event *e),
                      void *ud);

/* ---- agent reports (store_reports.c) ---- */

#define STORE_EVENTS_KEEP 1000  /* events kept per cluster, newest by id */

struct store_report_node {
    const char *name, *roles;       /* roles: "etcd,worker" */
    const char *kubelet_version;    /* may be NULL */
    const char *addresses_json, *capacity_json, *allocatable_json;
    bool ready, agent_connected;
};

struct store_report_event {
    const char *type, *reason, *message, *object;   /* object "" if none */
    int64_t time;                   /* unix ms: the event's own time */
};

/* What a cluster agent reported, ready to store. Events newest first. */
struct store_report {
    const char *kubernetes_version;
    const char *capacity_json, *conditions_json;
    bool healthy;
    const struct store_report_node *nodes;
    size_t nnodes;
    const struct store_report_event *events;
    size_t nevents;
};

/*
 * In one transaction: the cluster's version, node count, capacity,
 * conditions and last_seen (and state active / degraded by health while a
 * link is up); its nodes rows replaced by r's; r's events not stored before
 * (same object, reason and time) added oldest first; then all but the newest
 * STORE_EVENTS_KEEP events dropped. *added (may be NULL) gets the number of
 * new events. 0, DB_NOTFOUND (no such cluster) or a code.
 */
int store_cluster_report(struct db *db, const char *cluster_id, const struct store_report *r,
                         int64_t now, int64_t *added);

/* ---- members (store_members.c) ---- */

struct store_member {
    const char *username;
    enum store_role role;
};
int store_members_list(struct db *db, const char *cluster_id, const char *after,
                       int limit, int (*fn)(void *ud, const struct store_member *m),
                       void *ud);
/* Adds username to the cluster or changes its role. *created tells which.
 * 0, STORE_E_NOUSER, or STORE_E_LAST when it demotes the last owner. */
int store_member_set(struct db *db, const char *cluster_id, const char *username,
                     enum store_role role, bool *created);
/* 0, DB_NOTFOUND (not a member) or STORE_E_LAST (the last owner). */
int store_member_remove(struct db *db, const char *cluster_id, const char *username);
/* Everyone with a role in the cluster, by username: its members, and every
 * admin as an owner (admins own every cluster). 0, DB_NOTFOUND (no such
 * cluster) or a code. */
int store_cluster_grants(struct db *db, const char *cluster_id,
                         int (*fn)(void *ud, const char *username, enum store_role role),
                         void *ud);

#endif
