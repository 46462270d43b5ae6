/*
 * api_users: /v3/users. Admins manage users; a user may read itself and
 * change its own password. Creating a user or setting a password hashes on
 * a reader through the hashing gate, then writes on the writer.
 */
#include <stdio.h>
#include <string.h>

#include "server/api_int.h"

#define PW_MIN 12

static json_t *user_json(const struct store_user *u)
{
    return json_pack("{s:s,s:b,s:o}", "username", u->username, "admin", u->admin,
                     "createdAt", api_json_time(u->created_at));
}

static int user_row(void *ud, const struct store_user *u)
{
    return api_list_add(ud, user_json(u), u->username) < 0 ? DB_ERROR : 0;
}

static int list_users(struct db *db, struct api_call *c)
{
    struct api_list l;
    api_list_init(&l, c->limit);
    int rc = store_users_list(db, c->cursor, c->limit + 1, user_row, &l);
    return api_list_finish(c, &l, rc);
}

/* Checks a new password's length; false after setting the 400. */
static bool password_ok(struct api_call *c)
{
    size_t n = json_string_length(json_object_get(c->in, "password"));
    if (n >= PW_MIN && n <= AUTH_PW_MAX)
        return true;
    api_fail(c, 400, "BadRequest", "password must be %d to %d bytes long", PW_MIN,
             AUTH_PW_MAX);
    return false;
}

static int hash_password(struct db *db, struct api_call *c, api_work_fn then)
{
    (void)db;
    json_t *pw = json_object_get(c->in, "password");
    if (auth_password_hash(json_string_value(pw), json_string_length(pw), c->pw_hash,
                           sizeof(c->pw_hash)) < 0)
        return api_fail(c, 503, "ServiceUnavailable", "cannot hash the password");
    api_then(c, then, true, false);
    return 0;
}

static int create_user(struct db *db, struct api_call *c)
{
    bool admin = json_is_true(json_object_get(c->in, "admin"));
    int rc = store_user_create(db, c->name, c->pw_hash, admin, &c->user);
    if (rc == STORE_E_EXISTS)
        return api_fail(c, 409, "Conflict", "user %s already exists", c->name);
    if (rc < 0)
        return rc;
    return api_ok(c, 201, user_json(&c->user));
}

static int hash_for_create(struct db *db, struct api_call *c)
{
    return hash_password(db, c, create_user);
}

static int post_user(struct db *db, struct api_call *c)
{
    static const struct api_field fields[] = {
        { "username", API_J_STRING, true },
        { "password", API_J_STRING, true },
        { "admin", API_J_BOOL, false },
    };
    char err[160];
    (void)db;
    if (api_json_check(c->in, fields, 3, err, sizeof(err)) < 0)
        return api_fail(c, 400, "BadRequest", "%s", err);
    const char *name = api_json_str(c->in, "username");
    if (!api_valid_username(name))
        return api_fail(c, 400, "BadRequest", "invalid username \"%.64s\": use 1-64 of "
                        "a-z, 0-9, '.', '_', '-', starting with a letter or digit", name);
    if (!password_ok(c))
        return 0;
    snprintf(c->name, sizeof(c->name), "%s", name);
    api_then(c, hash_for_create, false, true);
    return 0;
}

/* Admins see everyone; others only themselves. */
static bool may_see(struct api_call *c)
{
    return c->who.user.admin || strcmp(c->who.user.username, c->param[0]) == 0;
}

static int no_user(struct api_call *c)
{
    return api_fail(c, 404, "NotFound", "user %.64s not found", c->param[0]);
}

static int get_user(struct db *db, struct api_call *c)
{
    if (!may_see(c))
        return api_fail(c, 403, "Forbidden", "only admins may read other users");
    int rc = api_valid_username(c->param[0])
        ? store_user_get(db, c->param[0], &c->user, NULL, 0) : DB_NOTFOUND;
    if (rc == DB_NOTFOUND)
        return no_user(c);
    return rc < 0 ? rc : api_ok(c, 200, user_json(&c->user));
}

static int update_user(struct db *db, struct api_call *c)
{
    bool self = strcmp(c->who.user.username, c->param[0]) == 0;
    int rc = store_user_update(db, c->param[0], c->pw_hash[0] ? c->pw_hash : NULL,
                               (int)c->n1, self ? c->who.token_id : NULL, &c->user);
    if (rc == DB_NOTFOUND)
        return no_user(c);
    if (rc == STORE_E_LAST)
        return api_fail(c, 409, "Conflict", "%s is the last admin", c->param[0]);
    return rc < 0 ? rc : api_ok(c, 200, user_json(&c->user));
}

static int hash_for_update(struct db *db, struct api_call *c)
{
    return hash_password(db, c, update_user);
}

static int put_user(struct db *db, struct api_call *c)
{
    static const struct api_field fields[] = {
        { "password", API_J_STRING, false },
        { "admin", API_J_BOOL, false },
    };
    char err[160];
    (void)db;
    if (!may_see(c))
        return api_fail(c, 403, "Forbidden", "only admins may change other users");
    if (api_json_check(c->in, fields, 2, err, sizeof(err)) < 0)
        return api_fail(c, 400, "BadRequest", "%s", err);
    json_t *admin = json_object_get(c->in, "admin");
    if (admin && !c->who.user.admin)
        return api_fail(c, 403, "Forbidden", "only admins may change the admin flag");
    if (!api_valid_username(c->param[0]))
        return no_user(c);
    c->n1 = admin ? json_is_true(admin) : -1;
    if (!json_object_get(c->in, "password")) {
        api_then(c, update_user, true, false);
        return 0;
    }
    if (password_ok(c))
        api_then(c, hash_for_update, false, true);
    return 0;
}

static int delete_user(struct db *db, struct api_call *c)
{
    int rc = api_valid_username(c->param[0]) ? store_user_delete(db, c->param[0])
                                             : DB_NOTFOUND;
    if (rc == DB_NOTFOUND)
        return no_user(c);
    if (rc == STORE_E_LAST)
        return api_fail(c, 409, "Conflict", "%s is the last admin", c->param[0]);
    return rc < 0 ? rc : api_ok(c, 204, NULL);
}

/* Admins own every cluster, so a new admin, a changed admin flag or a
 * deleted user changes every cluster's bindings. */
static bool after_user_change(struct api_call *c)
{
    bool changed = false;
    if (strcmp(c->route->method, "POST") == 0)
        changed = c->status == 201 && json_is_true(json_object_get(c->out, "admin"));
    else if (strcmp(c->route->method, "PUT") == 0)
        changed = c->status == 200 && c->n1 >= 0;
    else
        changed = c->status == 204;
    if (changed)
        api_membership_changed(c->api, NULL);
    return false;
}

const struct api_route api_user_routes[] = {
    { "GET", "/v3/users", API_AUTH | API_ADMIN, list_users, NULL },
    { "POST", "/v3/users", API_AUTH | API_ADMIN | API_BODY, post_user, after_user_change },
    { "GET", "/v3/users/{}", API_AUTH, get_user, NULL },
    { "PUT", "/v3/users/{}", API_AUTH | API_BODY, put_user, after_user_change },
    { "DELETE", "/v3/users/{}", API_AUTH | API_ADMIN | API_WRITE, delete_user,
      after_user_change },
    { 0 },
};
