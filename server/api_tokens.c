/*
 * api_tokens: logging in and out. POST /v3/tokens checks the password on a
 * reader (scrypt, through the hashing gate), then issues the token on the
 * writer; a failure is answered only after the throttle's delay.
 */
#include <stdio.h>
#include <string.h>

#include "common/config.h"
#include "server/api_int.h"

#define TTL_MAX_S (366LL * 24 * 3600)

static const struct api_field login_fields[] = {
    { "username", API_J_STRING, true },
    { "password", API_J_STRING, true },
    { "ttl", API_J_TTL, false },
};

/* ttl as seconds or a duration ("90m"); c->n1 = expiry (ms) or -1. */
static bool read_ttl(struct api_call *c)
{
    json_t *v = json_object_get(c->in, "ttl");
    int64_t secs;
    c->n1 = -1;
    if (!v)
        return true;
    if (json_is_integer(v)) {
        secs = json_integer_value(v);
    } else {
        uint64_t ms;
        if (cfg_parse_duration(json_string_value(v), &ms) < 0 || ms % 1000 ||
            ms > (uint64_t)TTL_MAX_S * 1000)
            return false;
        secs = (int64_t)(ms / 1000);
    }
    if (secs < 1 || secs > TTL_MAX_S)
        return false;
    c->n1 = store_now_ms() + secs * 1000;
    return true;
}

static int refuse(struct api_call *c)
{
    c->failed_login = true;
    return api_fail(c, 401, "Unauthorized", "invalid username or password");
}

static int issue_token(struct db *db, struct api_call *c)
{
    char token[AUTH_API_TOKEN_SIZE], hash[AUTH_HEX_SHA256];
    if (auth_api_token_new(token, hash) < 0)
        return api_fail(c, 503, "ServiceUnavailable", "no randomness available");
    int rc = store_token_create(db, c->user.id, hash, c->n1);
    if (rc == DB_CONSTRAINT)
        return refuse(c);   /* the user was deleted meanwhile */
    if (rc < 0)
        return rc;
    snprintf(c->headers, sizeof(c->headers), "Cache-Control: no-store\r\n");
    return api_ok(c, 201, json_pack("{s:s,s:o}", "token", token, "expiresAt",
                                    api_json_time(c->n1)));
}

static int check_password(struct db *db, struct api_call *c)
{
    char err[160];
    if (api_json_check(c->in, login_fields, 3, err, sizeof(err)) < 0)
        return api_fail(c, 400, "BadRequest", "%s", err);
    const char *user = api_json_str(c->in, "username");
    const char *pw = api_json_str(c->in, "password");
    size_t pwlen = json_string_length(json_object_get(c->in, "password"));
    if (!api_valid_username(user))
        return api_fail(c, 400, "BadRequest", "invalid username");
    if (pwlen > AUTH_PW_MAX)
        return api_fail(c, 400, "BadRequest", "password longer than %d bytes", AUTH_PW_MAX);
    if (!read_ttl(c))
        return api_fail(c, 400, "BadRequest", "ttl must be from 1 second to 366 days");
    snprintf(c->name, sizeof(c->name), "%s", user);
    int rc = store_user_get(db, user, &c->user, c->pw_hash, sizeof(c->pw_hash));
    if (rc == DB_NOTFOUND) {
        auth_password_burn(pw, pwlen);
        return refuse(c);
    }
    if (rc < 0)
        return rc;
    if (auth_password_verify(pw, pwlen, c->pw_hash) != 1)
        return refuse(c);
    api_then(c, issue_token, true, false);
    return 0;
}

/* "1.2.3.4:5678" or "[::1]:5678" without the port. */
static void peer_addr(const char *peer, char *out, size_t cap)
{
    const char *colon = strrchr(peer, ':');
    size_t n = colon ? (size_t)(colon - peer) : strlen(peer);
    snprintf(out, cap, "%.*s", (int)n, peer);
}

static bool login_after(struct api_call *c)
{
    struct api *a = c->api;
    if (c->status == 201) {
        throttle_success(a->throttle, c->name);
        return false;
    }
    if (!c->failed_login)
        return false;
    char addr[48];
    peer_addr(c->peer, addr, sizeof(addr));
    uint64_t delay = throttle_fail(a->throttle, c->name[0] ? c->name : NULL, addr,
                                   loop_now_ms(a->loop));
    api_delay_answer(c, delay);
    return true;
}

static int logout(struct db *db, struct api_call *c)
{
    int rc = store_token_delete(db, c->who.token_id);
    if (rc < 0 && rc != DB_NOTFOUND)
        return rc;
    return api_ok(c, 204, NULL);
}

const struct api_route api_token_routes[] = {
    { "POST", "/v3/tokens", API_BODY | API_HEAVY, check_password, login_after },
    { "DELETE", "/v3/tokens/current", API_AUTH | API_WRITE, logout, NULL },
    { 0 },
};
