/*
 * api_members: a cluster's members, nodes and events. Every role may read
 * them; only owners change membership.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/api_int.h"

static int member_row(void *ud, const struct store_member *m)
{
    json_t *j = json_pack("{s:s,s:s}", "user", m->username, "role", store_role_name(m->role));
    return api_list_add(ud, j, m->username) < 0 ? DB_ERROR : 0;
}

static int list_members(struct db *db, struct api_call *c)
{
    enum store_role role;
    struct api_list l;
    int rc = api_cluster_access(db, c, STORE_ROLE_VIEWER, &role);
    if (rc)
        return rc < 0 ? rc : 0;
    api_list_init(&l, c->limit);
    rc = store_members_list(db, c->param[0], c->cursor, c->limit + 1, member_row, &l);
    return api_list_finish(c, &l, rc);
}

static int put_member(struct db *db, struct api_call *c)
{
    static const struct api_field fields[] = {
        { "user", API_J_STRING, true },
        { "role", API_J_STRING, true },
    };
    enum store_role role;
    char err[160];
    bool created = false;
    int rc = api_cluster_access(db, c, STORE_ROLE_OWNER, &role);
    if (rc)
        return rc < 0 ? rc : 0;
    if (api_json_check(c->in, fields, 2, err, sizeof(err)) < 0)
        return api_fail(c, 400, "BadRequest", "%s", err);
    const char *user = api_json_str(c->in, "user");
    enum store_role want = store_role_parse(api_json_str(c->in, "role"));
    if (!api_valid_username(user))
        return api_fail(c, 400, "BadRequest", "invalid user name \"%.64s\"", user);
    if (want == STORE_ROLE_NONE)
        return api_fail(c, 400, "BadRequest", "role must be owner, member or viewer");
    rc = store_member_set(db, c->param[0], user, want, &created);
    if (rc == STORE_E_NOUSER)
        return api_fail(c, 404, "NotFound", "user %s not found", user);
    if (rc == STORE_E_LAST)
        return api_fail(c, 409, "Conflict", "%s is the last owner of %s; add another owner "
                        "first", user, c->param[0]);
    if (rc < 0)
        return rc;
    return api_ok(c, created ? 201 : 200, json_pack("{s:s,s:s}", "user", user, "role",
                                                    store_role_name(want)));
}

static int delete_member(struct db *db, struct api_call *c)
{
    enum store_role role;
    int rc = api_cluster_access(db, c, STORE_ROLE_OWNER, &role);
    if (rc)
        return rc < 0 ? rc : 0;
    rc = api_valid_username(c->param[1]) ? store_member_remove(db, c->param[0], c->param[1])
                                         : DB_NOTFOUND;
    if (rc == DB_NOTFOUND)
        return api_fail(c, 404, "NotFound", "%.64s is not a member of %s", c->param[1],
                        c->param[0]);
    if (rc == STORE_E_LAST)
        return api_fail(c, 409, "Conflict", "%s is the last owner of %s; add another owner "
                        "first", c->param[1], c->param[0]);
    return rc < 0 ? rc : api_ok(c, 204, NULL);
}

static bool after_member_change(struct api_call *c)
{
    if (c->status >= 200 && c->status < 300)
        api_membership_changed(c->api, c->param[0]);
    return false;
}

/* "etcd,worker" as ["etcd","worker"]. */
static json_t *roles_json(const char *roles)
{
    json_t *a = json_array();
    for (const char *s = roles ? roles : ""; a && *s;) {
        size_t n = strcspn(s, ",");
        if (n)
            json_array_append_new(a, json_stringn(s, n));
        s += n + (s[n] == ',');
    }
    return a;
}

static int node_row(void *ud, const struct store_node *n)
{
    json_t *j = json_pack("{s:s,s:o,s:s?,s:b,s:o,s:o,s:o,s:b,s:o}", "name", n->name,
                          "roles", roles_json(n->roles), "kubeletVersion", n->kubelet_version,
                          "ready", n->ready, "addresses", api_json_doc(n->addresses_json, true),
                          "capacity", api_json_doc(n->capacity_json, false),
                          "allocatable", api_json_doc(n->allocatable_json, false),
                          "agentConnected", n->agent_connected,
                          "updatedAt", api_json_time(n->updated_at));
    return api_list_add(ud, j, n->name) < 0 ? DB_ERROR : 0;
}

static int list_nodes(struct db *db, struct api_call *c)
{
    enum store_role role;
    struct api_list l;
    int rc = api_cluster_access(db, c, STORE_ROLE_VIEWER, &role);
    if (rc)
        return rc < 0 ? rc : 0;
    api_list_init(&l, c->limit);
    rc = store_nodes_list(db, c->param[0], c->cursor, c->limit + 1, node_row, &l);
    return api_list_finish(c, &l, rc);
}

static int event_row(void *ud, const struct store_event *e)
{
    char key[24];
    snprintf(key, sizeof(key), "%lld", (long long)e->id);
    json_t *j = json_pack("{s:I,s:o,s:s,s:s,s:s,s:s?}", "id", (json_int_t)e->id,
                          "time", api_json_time(e->created_at), "type", e->type,
                          "reason", e->reason, "message", e->message, "object", e->object);
    return api_list_add(ud, j, key) < 0 ? DB_ERROR : 0;
}

/* The stored agentConnected is as of the last report; the registry knows
 * now. */
static bool after_nodes(struct api_call *c)
{
    struct api *a = c->api;
    json_t *data = json_object_get(c->out, "data"), *n;
    size_t i;
    if (c->status != 200 || !a->node_connected)
        return false;
    json_array_foreach(data, i, n) {
        const char *name = json_string_value(json_object_get(n, "name"));
        if (name)
            json_object_set_new(n, "agentConnected",
                                json_boolean(a->node_connected(a->ud, c->param[0], name)));
    }
    return false;
}

/* ?since= takes the id of the last event seen; so does ?cursor=, which is
 * what "next" hands back. */
static int list_events(struct db *db, struct api_call *c)
{
    enum store_role role;
    struct api_list l;
    int64_t since = c->since;
    int rc = api_cluster_access(db, c, STORE_ROLE_VIEWER, &role);
    if (rc)
        return rc < 0 ? rc : 0;
    if (c->cursor[0]) {
        char *end;
        long long v = strtoll(c->cursor, &end, 10);
        if (*end || v < 0)
            return api_fail(c, 400, "BadRequest", "invalid cursor");
        since = v > since ? v : since;
    }
    api_list_init(&l, c->limit);
    rc = store_events_list(db, c->param[0], since, c->limit + 1, event_row, &l);
    return api_list_finish(c, &l, rc);
}

const struct api_route api_member_routes[] = {
    { "GET", "/v3/clusters/{}/members", API_AUTH, list_members, NULL },
    { "POST", "/v3/clusters/{}/members", API_AUTH | API_BODY | API_WRITE, put_member,
      after_member_change },
    { "DELETE", "/v3/clusters/{}/members/{}", API_AUTH | API_WRITE, delete_member,
      after_member_change },
    { "GET", "/v3/clusters/{}/nodes", API_AUTH, list_nodes, after_nodes },
    { "GET", "/v3/clusters/{}/events", API_AUTH, list_events, NULL },
    { 0 },
};
