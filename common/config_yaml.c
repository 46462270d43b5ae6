/*
 * config_yaml: the settings file reader (see cfg_parse_yaml in config.h).
 * Pure: a buffer in, key/value callbacks out, no I/O. Accepts only a flat
 * mapping of scalars (a sequence of scalars is joined with commas) and
 * refuses documents over CFG_YAML_MAX.
 */
#include "common/config.h"

#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "common/config_int.h"

/* ---- YAML ------------------------------------------------------------- */

enum yp_state { YP_ROOT, YP_KEY, YP_VALUE, YP_LIST, YP_DONE };

struct yp {
    cfg_kv_fn on_kv;
    void *ud;
    char *err;
    size_t errlen;
    enum yp_state state;
    int docs;
    char *key;              /* the pending key, while in YP_VALUE or YP_LIST */
    int key_line;
    char *list;             /* items joined so far, while in YP_LIST */
    size_t list_len, list_cap;
};

/* Writes "LINE: message" to the caller's err; returns -1. */
__attribute__((format(printf, 3, 4)))
static int yp_fail(struct yp *y, int line, const char *fmt, ...)
{
    char msg[CFG_MSG_MAX];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (y->err && y->errlen)
        snprintf(y->err, y->errlen, "%d: %s", line, msg);
    return -1;
}

/* YAML's null: a plain "", "~" or "null" without a tag. "" quoted is text. */
static bool yp_is_null(const yaml_event_t *ev)
{
    const char *v = (const char *)ev->data.scalar.value;

    if (ev->data.scalar.style != YAML_PLAIN_SCALAR_STYLE || ev->data.scalar.tag)
        return false;
    return !*v || !strcmp(v, "~") || !strcmp(v, "null") || !strcmp(v, "Null") ||
           !strcmp(v, "NULL");
}

/* Hands the pending key and value to on_kv; its reason gets our line. */
static int yp_emit(struct yp *y, const char *value)
{
    char reason[CFG_MSG_MAX] = "";
    int rc = y->on_kv(y->ud, y->key, value, y->key_line, reason, sizeof reason);

    free(y->key);
    y->key = NULL;
    y->state = YP_KEY;
    if (rc != 0)
        return yp_fail(y, y->key_line, "%s", reason[0] ? reason : "rejected");
    return 0;
}

static int yp_list_add(struct yp *y, const char *v, size_t len, bool null,
                       int line)
{
    char k[CFG_ESC_CAP];

    if (null || len == 0)
        return yp_fail(y, line, "\"%s\": empty list item", cfg_escape(k, y->key));
    if (memchr(v, ',', len))
        /* joined with commas, it would read back as two items */
        return yp_fail(y, line, "\"%s\": a list item cannot contain a comma",
                       cfg_escape(k, y->key));
    size_t need = len + 2;      /* separator and NUL */
    if (need > y->list_cap - y->list_len) {
        size_t cap = y->list_cap ? y->list_cap : 64;
        while (need > cap - y->list_len && cap <= CFG_YAML_MAX)
            cap *= 2;
        if (need > cap - y->list_len)
            return yp_fail(y, line, "list too long");
        char *p = realloc(y->list, cap);
        if (!p)
            return yp_fail(y, line, "out of memory");
        y->list = p;
        y->list_cap = cap;
    }
    if (y->list_len)
        y->list[y->list_len++] = ',';
    memcpy(y->list + y->list_len, v, len);
    y->list_len += len;
    y->list[y->list_len] = '\0';
    return 0;
}

static int yp_scalar(struct yp *y, const yaml_event_t *ev, int line)
{
    const char *v = (const char *)ev->data.scalar.value;
    size_t len = ev->data.scalar.length;
    bool null = yp_is_null(ev);

    if (memchr(v, '\0', len))   /* "\0" in a double-quoted string */
        return yp_fail(y, line, "NUL byte in a value");
    switch (y->state) {
    case YP_ROOT:
        if (!null)
            return yp_fail(y, line, "expected a mapping of settings");
        y->state = YP_DONE;     /* an empty document: no settings */
        return 0;
    case YP_KEY:
        if (null || len == 0)
            return yp_fail(y, line, "empty setting name");
        y->key = strndup(v, len);
        if (!y->key)
            return yp_fail(y, line, "out of memory");
        y->key_line = line;
        y->state = YP_VALUE;
        return 0;
    case YP_VALUE:
        return yp_emit(y, null ? NULL : v);
    case YP_LIST:
        return yp_list_add(y, v, len, null, line);
    default:
        return yp_fail(y, line, "unexpected value");
    }
}

/* Only the root may be a mapping; only a value may be a list. */
static int yp_collection(struct yp *y, bool mapping, int line)
{
    char k[CFG_ESC_CAP];

    if (y->state == YP_ROOT && mapping) {
        y->state = YP_KEY;
        return 0;
    }
    if (y->state == YP_VALUE && !mapping) {
        y->state = YP_LIST;
        y->list_len = 0;
        return 0;
    }
    if (y->state == YP_VALUE)
        return yp_fail(y, line, "\"%s\": nested settings are not supported",
                       cfg_escape(k, y->key));
    if (y->state == YP_LIST)
        return yp_fail(y, line, "\"%s\": a list may hold only plain values",
                       cfg_escape(k, y->key));
    if (y->state == YP_KEY)
        return yp_fail(y, line, "a setting name must be a plain string");
    return yp_fail(y, line, "expected a mapping of settings");
}

static int yp_event(struct yp *y, const yaml_event_t *ev)
{
    size_t l = ev->start_mark.line;
    int line = l < INT_MAX ? (int)l + 1 : INT_MAX;

    switch (ev->type) {
    case YAML_DOCUMENT_START_EVENT:
        if (++y->docs > 1)
            return yp_fail(y, line, "only one document is allowed");
        return 0;
    case YAML_ALIAS_EVENT:
        return yp_fail(y, line, "aliases are not supported");
    case YAML_SCALAR_EVENT:
        return yp_scalar(y, ev, line);
    case YAML_SEQUENCE_START_EVENT:
        return yp_collection(y, false, line);
    case YAML_MAPPING_START_EVENT:
        return yp_collection(y, true, line);
    case YAML_SEQUENCE_END_EVENT:     /* nested lists were refused at start */
        return yp_emit(y, y->list_len ? y->list : "");
    case YAML_MAPPING_END_EVENT:      /* likewise, this is the root's end */
        y->state = YP_DONE;
        return 0;
    default:
        return 0;
    }
}

/*
 * Parses a flat YAML mapping; see config.h. on_kv gets each key with its
 * value (NULL for a YAML null or an empty plain value, "" for an empty list)
 * and the key's 1-based line; to stop, it returns nonzero with a reason in
 * err, which is returned as "LINE: reason". Every other error is "LINE:
 * reason" too, so a caller can prefix the file name.
 */
int cfg_parse_yaml(const char *buf, size_t len, cfg_kv_fn on_kv, void *ud,
                   char *err, size_t errlen)
{
    struct yp y = { .on_kv = on_kv, .ud = ud, .err = err, .errlen = errlen };
    yaml_parser_t p;
    int rc = 0;

    if (err && errlen)
        err[0] = '\0';
    if (len > CFG_YAML_MAX)
        return yp_fail(&y, 1, "larger than 1 MiB");
    if (!yaml_parser_initialize(&p))
        return yp_fail(&y, 1, "out of memory");
    yaml_parser_set_input_string(&p, (const unsigned char *)(buf ? buf : ""),
                                 buf ? len : 0);
    for (;;) {
        yaml_event_t ev;
        if (!yaml_parser_parse(&p, &ev)) {
            size_t l = p.problem_mark.line;
            rc = yp_fail(&y, l < INT_MAX ? (int)l + 1 : INT_MAX,
                         "invalid YAML: %s",
                         p.problem ? p.problem : "syntax error");
            break;
        }
        bool end = ev.type == YAML_STREAM_END_EVENT;
        rc = yp_event(&y, &ev);
        yaml_event_delete(&ev);
        if (rc || end)
            break;
    }
    yaml_parser_delete(&p);
    free(y.key);
    free(y.list);
    return rc;
}
