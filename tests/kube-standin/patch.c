/*
 * patch: the patch formats of the kube-standin test stand-in: JSON merge
 * patch (RFC 7386), JSON patch (RFC 6902), and a simplified strategic merge
 * patch. The strategic one knows the merge keys of the lists kubectl apply
 * touches (containers by name, ports by port, ...) and the directives it
 * sends ($setElementOrder, $patch, $retainKeys, $deleteFromPrimitiveList)
 * instead of reading them from the OpenAPI schema as the real server does.
 * Also YAML to JSON, for server-side apply bodies.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "tests/kube-standin/standin.h"

#define MAX_DEPTH 64

/* ---- JSON merge patch ---- */

static json_t *merge(const json_t *doc, const json_t *patch, int depth)
{
    if (!json_is_object(patch) || depth > MAX_DEPTH)
        return json_deep_copy(patch);
    json_t *out = json_is_object(doc) ? json_deep_copy(doc) : json_object();
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)patch, k, v) {
        if (json_is_null(v)) {
            json_object_del(out, k);
            continue;
        }
        json_object_set_new(out, k, merge(json_object_get(out, k), v, depth + 1));
    }
    return out;
}

json_t *patch_merge(const json_t *doc, const json_t *patch)
{
    return merge(doc, patch, 0);
}

/* ---- strategic merge patch (simplified) ---- */

/* The merge key of a list field, or NULL for lists that are replaced. */
static const char *merge_key(const char *field, const json_t *elem)
{
    static const struct {
        const char *field, *key;
    } keys[] = {
        { "containers", "name" }, { "initContainers", "name" },
        { "ephemeralContainers", "name" }, { "env", "name" }, { "volumes", "name" },
        { "volumeMounts", "mountPath" }, { "volumeDevices", "devicePath" },
        { "imagePullSecrets", "name" }, { "hostAliases", "ip" },
        { "conditions", "type" }, { "ownerReferences", "uid" },
    };
    if (strcmp(field, "ports") == 0)
        return json_object_get(elem, "containerPort") ? "containerPort" : "port";
    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
        if (strcmp(keys[i].field, field) == 0)
            return keys[i].key;
    return NULL;
}

static json_t *smp(const json_t *doc, const json_t *patch, int depth, char *err, size_t cap);

static ssize_t find_by_key(const json_t *list, const char *key, const json_t *want)
{
    size_t i;
    json_t *e;
    json_array_foreach(list, i, e)
        if (json_equal(json_object_get(e, key), want))
            return (ssize_t)i;
    return -1;
}

/* Puts the elements named in order first, in that order. */
static void reorder(json_t *list, const char *key, const json_t *order)
{
    json_t *out = json_array();
    size_t i;
    json_t *o;
    json_array_foreach(order, i, o) {
        ssize_t at = find_by_key(list, key, json_object_get(o, key));
        if (at >= 0) {
            json_array_append(out, json_array_get(list, (size_t)at));
            json_array_remove(list, (size_t)at);
        }
    }
    json_array_extend(out, list);
    json_array_clear(list);
    json_array_extend(list, out);
    json_decref(out);
}

static json_t *merge_list(const json_t *doc, const json_t *patch, const char *key,
                          const json_t *order, int depth, char *err, size_t cap)
{
    json_t *out = json_is_array(doc) ? json_deep_copy(doc) : json_array();
    size_t i;
    json_t *p;
    json_array_foreach(patch, i, p) {
        json_t *kv = json_object_get(p, key);
        ssize_t at = kv ? find_by_key(out, key, kv) : -1;
        const char *dir = json_string_value(json_object_get(p, "$patch"));
        if (dir && strcmp(dir, "delete") == 0) {
            if (at >= 0)
                json_array_remove(out, (size_t)at);
            continue;
        }
        json_t *m = smp(at >= 0 ? json_array_get(out, (size_t)at) : NULL, p, depth + 1,
                        err, cap);
        if (!m) {
            json_decref(out);
            return NULL;
        }
        if (at >= 0)
            json_array_set_new(out, (size_t)at, m);
        else
            json_array_append_new(out, m);
    }
    if (json_is_array(order))
        reorder(out, key, order);
    return out;
}

static void delete_primitives(json_t *out, const char *field, const json_t *values)
{
    json_t *list = json_object_get(out, field);
    size_t i, j;
    json_t *v;
    json_array_foreach(values, i, v) {
        for (j = 0; j < json_array_size(list); j++)
            if (json_equal(json_array_get(list, j), v)) {
                json_array_remove(list, j);
                break;
            }
    }
}

/* $retainKeys: fields of the object not listed are cleared. */
static void retain_keys(json_t *out, const json_t *keep)
{
    json_t *drop = json_array();
    const char *k;
    json_t *v;
    json_object_foreach(out, k, v) {
        bool kept = false;
        size_t i;
        json_t *e;
        json_array_foreach(keep, i, e)
            kept = kept || strcmp(json_string_value(e) ? json_string_value(e) : "", k) == 0;
        if (!kept)
            json_array_append_new(drop, json_string(k));
    }
    size_t i;
    json_array_foreach(drop, i, v)
        json_object_del(out, json_string_value(v));
    json_decref(drop);
}

static json_t *smp(const json_t *doc, const json_t *patch, int depth, char *err, size_t cap)
{
    if (depth > MAX_DEPTH) {
        snprintf(err, cap, "patch nested too deeply");
        return NULL;
    }
    if (!json_is_object(patch))
        return json_deep_copy(patch);
    const char *dir = json_string_value(json_object_get(patch, "$patch"));
    if (dir && strcmp(dir, "replace") == 0) {
        json_t *out = json_deep_copy(patch);
        json_object_del(out, "$patch");
        return out;
    }
    json_t *out = json_is_object(doc) ? json_deep_copy(doc) : json_object();
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)patch, k, v) {
        if (strncmp(k, "$deleteFromPrimitiveList/", 25) == 0) {
            delete_primitives(out, k + 25, v);
            continue;
        }
        if (k[0] == '$')
            continue;
        if (json_is_null(v)) {
            json_object_del(out, k);
            continue;
        }
        json_t *cur = json_object_get(out, k), *m;
        const char *key = json_is_array(v) && json_is_object(json_array_get(v, 0))
                              ? merge_key(k, json_array_get(v, 0)) : NULL;
        if (key) {
            char ok[300];
            snprintf(ok, sizeof(ok), "$setElementOrder/%s", k);
            m = merge_list(cur, v, key, json_object_get(patch, ok), depth, err, cap);
        } else if (json_is_array(v) && strcmp(k, "finalizers") == 0 && json_is_array(cur)) {
            m = json_deep_copy(cur);   /* a merge list of strings: the union */
            size_t i, j;
            json_t *e, *x;
            json_array_foreach(v, i, e) {
                bool have = false;
                json_array_foreach(m, j, x)
                    have = have || json_equal(x, e);
                if (!have)
                    json_array_append(m, e);
            }
        } else {
            m = smp(cur, v, depth + 1, err, cap);
        }
        if (!m) {
            json_decref(out);
            return NULL;
        }
        json_object_set_new(out, k, m);
    }
    json_t *keep = json_object_get(patch, "$retainKeys");
    if (json_is_array(keep))
        retain_keys(out, keep);
    return out;
}

json_t *patch_strategic(const json_t *doc, const json_t *patch, char *err, size_t cap)
{
    if (!json_is_object(patch)) {
        snprintf(err, cap, "a strategic merge patch must be a JSON object");
        return NULL;
    }
    return smp(doc, patch, 0, err, cap);
}

/* ---- JSON patch ---- */

/* Splits a JSON pointer: the parent container and the last token. */
static json_t *pointer_parent(json_t *doc, const char *ptr, char *last, size_t cap)
{
    if (ptr[0] != '/')
        return NULL;
    json_t *cur = doc;
    const char *p = ptr + 1;
    for (;;) {
        char tok[256];
        size_t n = 0;
        while (*p && *p != '/') {
            char c = *p++;
            if (c == '~' && (*p == '0' || *p == '1'))
                c = *p++ == '0' ? '~' : '/';
            if (n + 1 >= sizeof(tok))
                return NULL;
            tok[n++] = c;
        }
        tok[n] = '\0';
        if (!*p) {
            snprintf(last, cap, "%s", tok);
            return cur;
        }
        p++;
        if (json_is_object(cur)) {
            cur = json_object_get(cur, tok);
        } else if (json_is_array(cur)) {
            char *end;
            unsigned long idx = strtoul(tok, &end, 10);
            cur = *end || !tok[0] ? NULL : json_array_get(cur, idx);
        } else {
            return NULL;
        }
        if (!cur)
            return NULL;
    }
}

static bool array_index(const json_t *arr, const char *tok, bool for_add, size_t *idx)
{
    if (for_add && strcmp(tok, "-") == 0) {
        *idx = json_array_size(arr);
        return true;
    }
    char *end;
    unsigned long v = strtoul(tok, &end, 10);
    if (!tok[0] || *end)
        return false;
    *idx = v;
    return for_add ? v <= json_array_size(arr) : v < json_array_size(arr);
}

static json_t *ptr_get(json_t *doc, const char *ptr)
{
    char last[256];
    if (ptr[0] == '\0')
        return doc;
    json_t *parent = pointer_parent(doc, ptr, last, sizeof(last));
    size_t idx;
    if (json_is_object(parent))
        return json_object_get(parent, last);
    if (json_is_array(parent) && array_index(parent, last, false, &idx))
        return json_array_get(parent, idx);
    return NULL;
}

static int ptr_remove(json_t *doc, const char *ptr)
{
    char last[256];
    json_t *parent = pointer_parent(doc, ptr, last, sizeof(last));
    size_t idx;
    if (json_is_object(parent))
        return json_object_del(parent, last);
    if (json_is_array(parent) && array_index(parent, last, false, &idx))
        return json_array_remove(parent, idx);
    return -1;
}

/* add (and replace when must_exist): value is stolen. */
static int ptr_put(json_t *doc, const char *ptr, json_t *value, bool must_exist)
{
    char last[256];
    json_t *parent = pointer_parent(doc, ptr, last, sizeof(last));
    size_t idx;
    if (json_is_object(parent) && (!must_exist || json_object_get(parent, last)))
        return json_object_set_new(parent, last, value);
    if (json_is_array(parent) && array_index(parent, last, !must_exist, &idx))
        return must_exist ? json_array_set_new(parent, idx, value)
                          : json_array_insert_new(parent, idx, value);
    json_decref(value);
    return -1;
}

static int apply_op(json_t *doc, const json_t *op, char *err, size_t cap)
{
    const char *name = json_string_value(json_object_get(op, "op"));
    const char *path = json_string_value(json_object_get(op, "path"));
    const char *from = json_string_value(json_object_get(op, "from"));
    json_t *value = json_object_get(op, "value");
    if (!name || !path || path[0] == '\0') {
        snprintf(err, cap, "a JSON patch operation needs op and a non-empty path");
        return -1;
    }
    int rc = -1;
    if (strcmp(name, "add") == 0 && value)
        rc = ptr_put(doc, path, json_deep_copy(value), false);
    else if (strcmp(name, "replace") == 0 && value)
        rc = ptr_put(doc, path, json_deep_copy(value), true);
    else if (strcmp(name, "remove") == 0)
        rc = ptr_remove(doc, path);
    else if (strcmp(name, "test") == 0 && value)
        rc = json_equal(ptr_get(doc, path), value) ? 0 : -1;
    else if ((strcmp(name, "move") == 0 || strcmp(name, "copy") == 0) && from) {
        json_t *v = ptr_get(doc, from);
        v = v ? json_deep_copy(v) : NULL;
        if (v && strcmp(name, "move") == 0 && ptr_remove(doc, from) < 0) {
            json_decref(v);
            v = NULL;
        }
        rc = v ? ptr_put(doc, path, v, false) : -1;
    }
    if (rc < 0)
        snprintf(err, cap, "the JSON patch operation %s on %s failed", name, path);
    return rc;
}

json_t *patch_json(const json_t *doc, const json_t *ops, char *err, size_t cap)
{
    if (!json_is_array(ops)) {
        snprintf(err, cap, "a JSON patch must be an array of operations");
        return NULL;
    }
    json_t *out = json_deep_copy(doc);
    size_t i;
    json_t *op;
    json_array_foreach(ops, i, op) {
        if (apply_op(out, op, err, cap) < 0) {
            json_decref(out);
            return NULL;
        }
    }
    return out;
}

/* ---- YAML to JSON ---- */

static json_t *scalar(const yaml_node_t *n)
{
    const char *v = (const char *)n->data.scalar.value;
    size_t len = n->data.scalar.length;
    if (n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
        return json_stringn(v, len);
    if (len == 0 || strcmp(v, "~") == 0 || strcmp(v, "null") == 0)
        return json_null();
    if (strcmp(v, "true") == 0)
        return json_true();
    if (strcmp(v, "false") == 0)
        return json_false();
    char *end;
    long long i = strtoll(v, &end, 10);
    if (*end == '\0')
        return json_integer(i);
    double d = strtod(v, &end);
    if (*end == '\0' && (v[0] == '-' || v[0] == '.' || (v[0] >= '0' && v[0] <= '9')))
        return json_real(d);
    return json_stringn(v, len);
}

static json_t *node_to_json(yaml_document_t *doc, yaml_node_t *n, int depth)
{
    if (!n || depth > MAX_DEPTH)
        return NULL;
    if (n->type == YAML_SCALAR_NODE)
        return scalar(n);
    if (n->type == YAML_SEQUENCE_NODE) {
        json_t *a = json_array();
        for (yaml_node_item_t *it = n->data.sequence.items.start;
             it < n->data.sequence.items.top; it++) {
            json_t *v = node_to_json(doc, yaml_document_get_node(doc, *it), depth + 1);
            if (!v) {
                json_decref(a);
                return NULL;
            }
            json_array_append_new(a, v);
        }
        return a;
    }
    json_t *o = json_object();
    for (yaml_node_pair_t *p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top;
         p++) {
        yaml_node_t *k = yaml_document_get_node(doc, p->key);
        json_t *v = node_to_json(doc, yaml_document_get_node(doc, p->value), depth + 1);
        if (!k || k->type != YAML_SCALAR_NODE || !v) {
            json_decref(v);
            json_decref(o);
            return NULL;
        }
        json_object_set_new(o, (const char *)k->data.scalar.value, v);
    }
    return o;
}

json_t *yaml_to_json(const char *buf, size_t len, char *err, size_t cap)
{
    json_error_t je;
    json_t *j = json_loadb(buf, len, 0, &je);
    if (j)
        return j;
    yaml_parser_t parser;
    yaml_document_t doc;
    if (!yaml_parser_initialize(&parser)) {
        snprintf(err, cap, "out of memory");
        return NULL;
    }
    yaml_parser_set_input_string(&parser, (const unsigned char *)buf, len);
    if (!yaml_parser_load(&parser, &doc)) {
        snprintf(err, cap, "invalid YAML: %s", parser.problem ? parser.problem : "?");
        yaml_parser_delete(&parser);
        return NULL;
    }
    j = node_to_json(&doc, yaml_document_get_root_node(&doc), 0);
    if (!j)
        snprintf(err, cap, "the YAML document is empty or not a plain document");
    yaml_document_delete(&doc);
    yaml_parser_delete(&parser);
    return j;
}
