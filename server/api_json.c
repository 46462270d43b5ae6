/*
 * api_json: strict request-body checks, JSON rendering helpers, list
 * answers and name rules shared by the /v3 handlers. See api_int.h.
 */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "server/api_int.h"

static const char *type_name(enum api_jtype t)
{
    switch (t) {
    case API_J_STRING:
        return "a string";
    case API_J_INT:
        return "an integer";
    case API_J_BOOL:
        return "a boolean";
    case API_J_OBJECT:
        return "an object";
    case API_J_TTL:
        return "a number of seconds or a duration like \"24h\"";
    }
    return "?";
}

bool api_json_type_ok(const json_t *v, enum api_jtype t)
{
    switch (t) {
    case API_J_STRING:
        return json_is_string(v);
    case API_J_INT:
        return json_is_integer(v);
    case API_J_BOOL:
        return json_is_boolean(v);
    case API_J_OBJECT:
        return json_is_object(v);
    case API_J_TTL:
        return json_is_integer(v) || json_is_string(v);
    }
    return false;
}

int api_json_check(const json_t *obj, const struct api_field *fields, size_t n,
                   char *err, size_t errlen)
{
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)obj, key, v) {
        size_t i = 0;
        while (i < n && strcmp(fields[i].name, key) != 0)
            i++;
        if (i == n) {
            snprintf(err, errlen, "unknown field \"%.64s\"", key);
            return -1;
        }
        if (!api_json_type_ok(v, fields[i].type)) {
            snprintf(err, errlen, "field \"%s\" must be %s", key, type_name(fields[i].type));
            return -1;
        }
    }
    for (size_t i = 0; i < n; i++) {
        if (fields[i].required && !json_object_get(obj, fields[i].name)) {
            snprintf(err, errlen, "missing field \"%s\"", fields[i].name);
            return -1;
        }
    }
    return 0;
}

const char *api_json_str(const json_t *obj, const char *name)
{
    return json_string_value(json_object_get(obj, name));
}

json_t *api_json_time(int64_t ms)
{
    if (ms < 0)
        return json_null();
    time_t secs = (time_t)(ms / 1000);
    struct tm tm;
    char buf[40];
    if (!gmtime_r(&secs, &tm) || strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%S", &tm) == 0)
        return json_null();
    size_t n = strlen(buf);
    snprintf(buf + n, sizeof(buf) - n, ".%03dZ", (int)(ms % 1000));
    return json_string(buf);
}

json_t *api_json_doc(const char *text, bool array)
{
    json_t *j = text ? json_loads(text, 0, NULL) : NULL;
    if (j && (array ? json_is_array(j) : json_is_object(j)))
        return j;
    json_decref(j);
    return array ? json_array() : json_object();
}

/* ---- lists ---- */

void api_list_init(struct api_list *l, int limit)
{
    memset(l, 0, sizeof(*l));
    l->data = json_array();
    l->limit = limit;
}

int api_list_add(struct api_list *l, json_t *item, const char *key)
{
    if (l->count == l->limit) {
        json_decref(item);
        l->more = true;
        return 0;
    }
    if (!item || !l->data || json_array_append_new(l->data, item) < 0)
        return -1;
    l->count++;
    snprintf(l->last, sizeof(l->last), "%s", key);
    return 0;
}

int api_list_finish(struct api_call *c, struct api_list *l, int rc)
{
    if (rc < 0 || !l->data) {
        json_decref(l->data);
        return rc < 0 ? rc : api_fail(c, 503, "ServiceUnavailable", "out of memory");
    }
    json_t *next = l->more ? json_string(l->last) : json_null();
    return api_ok(c, 200, json_pack("{s:o,s:o}", "data", l->data, "next", next));
}

/* ---- names ---- */

static bool lower_alnum(char ch)
{
    return (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9');
}

bool api_valid_label(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 63 || !lower_alnum(s[0]) || !lower_alnum(s[n - 1]))
        return false;
    for (size_t i = 0; i < n; i++)
        if (!lower_alnum(s[i]) && s[i] != '-')
            return false;
    return true;
}

bool api_valid_username(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > STORE_NAME_MAX || !lower_alnum(s[0]))
        return false;
    for (size_t i = 0; i < n; i++)
        if (!lower_alnum(s[i]) && s[i] != '-' && s[i] != '_' && s[i] != '.')
            return false;
    return true;
}

bool api_valid_cluster_id(const char *s)
{
    if (strlen(s) != 7 || s[0] != 'c' || s[1] != '-')
        return false;
    for (size_t i = 2; i < 7; i++)
        if (!lower_alnum(s[i]))
            return false;
    return true;
}
