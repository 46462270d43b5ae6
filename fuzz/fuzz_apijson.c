/*
 * libFuzzer target for the /v3 request bodies: the input is parsed the way
 * api.c parses every body (json_loadb, duplicates rejected, an object
 * required), then checked against the field tables of the handlers
 * (mirrored here: login, user create and update, cluster create and update,
 * snapshot schedule, member add) with api_json_check, and the accepted
 * values go through the checks the handlers apply next (name rules, ttl
 * durations). Beyond "no crash, no leak": a refusal always says why, and an
 * accepted body really has its required fields with their types.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/config.h"
#include "server/api_int.h"

struct table {
    const struct api_field *f;
    size_t n;
};

static const struct api_field login[] = {
    { "username", API_J_STRING, true }, { "password", API_J_STRING, true },
    { "ttl", API_J_TTL, false },
};
static const struct api_field user_new[] = {
    { "username", API_J_STRING, true }, { "password", API_J_STRING, true },
    { "admin", API_J_BOOL, false },
};
static const struct api_field user_put[] = {
    { "password", API_J_STRING, false }, { "admin", API_J_BOOL, false },
};
static const struct api_field cluster_new[] = {
    { "name", API_J_STRING, true }, { "etcdSnapshotSchedule", API_J_OBJECT, false },
};
static const struct api_field cluster_put[] = {
    { "name", API_J_STRING, false }, { "etcdSnapshotSchedule", API_J_OBJECT, false },
};
static const struct api_field schedule[] = {
    { "intervalMinutes", API_J_INT, false }, { "retention", API_J_INT, false },
};
static const struct api_field member[] = {
    { "user", API_J_STRING, true }, { "role", API_J_STRING, true },
};

#define T(a) { a, sizeof(a) / sizeof(a[0]) }
static const struct table tables[] = {
    T(login), T(user_new), T(user_put), T(cluster_new), T(cluster_put), T(schedule), T(member),
};

/* What the handlers do with the values once the shape is right. */
static void use_values(const json_t *obj)
{
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)obj, key, v) {
        if (json_is_string(v)) {
            const char *s = json_string_value(v);
            if (strlen(s) == json_string_length(v)) {   /* an embedded NUL is cut */
                (void)api_valid_username(s);
                (void)api_valid_label(s);
                (void)api_valid_cluster_id(s);
                uint64_t ms;
                (void)cfg_parse_duration(s, &ms);
            }
        } else if (json_is_integer(v)) {
            json_decref(api_json_time(json_integer_value(v)));
        }
    }
}

static void check_table(const json_t *obj, const struct table *t)
{
    char err[160] = "";
    if (api_json_check(obj, t->f, t->n, err, sizeof(err)) < 0) {
        if (!err[0])
            abort();
        return;
    }
    for (size_t i = 0; i < t->n; i++) {
        json_t *v = json_object_get(obj, t->f[i].name);
        if ((t->f[i].required && !v) || (v && !api_json_type_ok(v, t->f[i].type)))
            abort();
    }
    if (json_object_size(obj) > t->n)
        abort();
    use_values(obj);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > API_MAX_BODY)
        return 0;
    json_error_t e;
    json_t *j = json_loadb((const char *)data, size, JSON_REJECT_DUPLICATES, &e);
    if (j && json_is_object(j)) {
        for (size_t i = 0; i < sizeof(tables) / sizeof(tables[0]); i++)
            check_table(j, &tables[i]);
    }
    json_decref(j);
    /* Stored documents come back through api_json_doc. */
    char *text = malloc(size + 1);
    if (!text)
        return 0;
    memcpy(text, data, size);
    text[size] = '\0';
    json_t *a = api_json_doc(text, true), *o = api_json_doc(text, false);
    if (!json_is_array(a) || !json_is_object(o))
        abort();
    json_decref(a);
    json_decref(o);
    free(text);
    return 0;
}
