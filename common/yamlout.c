/*
 * yamlout: the YAML writer shared by the manifest and kubeconfig renderers.
 * See yamlout.h.
 *
 * libyaml does the syntax; this file adds the output buffer with its cap,
 * the sticky error, and the one decision libyaml leaves to us: which
 * strings may be written plain.
 */
#include "common/yamlout.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* First allocation for the output; it doubles from there up to the cap. */
#define FIRST_CHUNK 16384

static void set_why(struct yw *w, const char *why)
{
    if (!w->why)
        w->why = why;
}

/* ---- output buffer ---- */

/* libyaml's write handler: 1 on success, 0 makes the emitter fail. */
static int out_write(void *data, unsigned char *bytes, size_t size)
{
    struct yw *w = data;
    if (size > w->max - w->len) {
        w->too_big = true;
        return 0;
    }
    if (size >= w->cap - w->len) {
        /* len + size <= max and max <= SIZE_MAX / 4, so neither the sum
         * nor the doubling can overflow. */
        size_t need = w->len + size + 1;
        size_t cap = w->cap ? w->cap : FIRST_CHUNK;
        while (cap < need)
            cap *= 2;
        if (cap > w->max + 1)
            cap = w->max + 1;
        char *nb = realloc(w->buf, cap);
        if (!nb) {
            w->oom = true;
            return 0;
        }
        w->buf = nb;
        w->cap = cap;
    }
    memcpy(w->buf + w->len, bytes, size);
    w->len += size;
    return 1;
}

/* ---- events ---- */

/* Hands ev (made by an *_event_initialize that returned made) to the
 * emitter, which owns it from then on, even when it fails. */
static void emit(struct yw *w, yaml_event_t *ev, int made)
{
    if (!made) {
        /* Scalars are checked for UTF-8 before, so only memory is left. */
        set_why(w, "out of memory building a YAML event");
        return;
    }
    if (w->why) {
        yaml_event_delete(ev);
        return;
    }
    if (!yaml_emitter_emit(&w->e, ev))
        w->why = w->e.problem ? w->e.problem : "YAML emitter failed";
}

bool yw_utf8_ok(const char *s)
{
    static const uint32_t min[] = { 0, 0x80, 0x800, 0x10000 };
    const unsigned char *u = (const unsigned char *)s;
    while (*u) {
        unsigned char c = *u;
        int n = c < 0x80 ? 0 : (c & 0xe0) == 0xc0 ? 1 : (c & 0xf0) == 0xe0 ? 2
              : (c & 0xf8) == 0xf0 ? 3 : -1;
        if (n < 0)
            return false;
        uint32_t cp = n == 0 ? c : n == 1 ? c & 0x1f : n == 2 ? c & 0x0f : c & 0x07;
        for (int i = 1; i <= n; i++) {
            if ((u[i] & 0xc0) != 0x80)
                return false;   /* also stops at the NUL */
            cp = (cp << 6) | (u[i] & 0x3f);
        }
        if (cp < min[n] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
            return false;
        u += n + 1;
    }
    return true;
}

static bool is_alpha(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static bool is_alnum(char c)
{
    return is_alpha(c) || (c >= '0' && c <= '9');
}

/*
 * True if s, written unquoted, reads back as this same string. Kubernetes
 * decodes YAML with 1.1 rules, where yes/no/on/off/y/n are booleans and a
 * leading digit may make a number (an all-digit cluster id or checksum as
 * a label or env value would become an int and be rejected). So: a letter
 * or '/' first, only [A-Za-z0-9._/-] after, and none of the 1.1 boolean or
 * null words. Deliberately conservative; everything else is double-quoted.
 */
static bool plain_is_string(const char *s)
{
    static const char *const words[] = { "y", "n", "yes", "no", "on", "off",
                                         "true", "false", "null", NULL };
    if (!is_alpha(s[0]) && s[0] != '/')
        return false;
    for (const char *c = s; *c; c++)
        if (!is_alnum(*c) && *c != '-' && *c != '.' && *c != '_' && *c != '/')
            return false;
    for (size_t i = 0; words[i]; i++)
        if (strcasecmp(s, words[i]) == 0)
            return false;
    return true;
}

/* A string scalar (is_string) is plain when that is safe and double-quoted
 * otherwise; a number or boolean is always plain, so it keeps its type. */
static void scalar(struct yw *w, const char *s, bool is_string)
{
    if (w->why)
        return;
    size_t n = strlen(s);
    /* Cannot fit anyway; checked here so the length below fits an int. */
    if (n > w->max) {
        w->too_big = true;
        set_why(w, "larger than the output cap");
        return;
    }
    if (!yw_utf8_ok(s)) {
        set_why(w, "a value is not valid UTF-8");
        return;
    }
    yaml_event_t ev;
    bool plain = !is_string || plain_is_string(s);
    int made = yaml_scalar_event_initialize(
        &ev, NULL, NULL, (const yaml_char_t *)s, (int)n, plain, is_string,
        plain ? YAML_PLAIN_SCALAR_STYLE : YAML_DOUBLE_QUOTED_SCALAR_STYLE);
    emit(w, &ev, made);
}

/* ---- stream ---- */

int yw_init(struct yw *w, size_t max_output)
{
    yaml_event_t ev;

    memset(w, 0, sizeof(*w));
    if (max_output == 0 || max_output > SIZE_MAX / 4) {
        w->why = "output cap out of range";
        return -1;
    }
    w->max = max_output;
    if (!yaml_emitter_initialize(&w->e)) {
        w->oom = true;
        w->why = "out of memory";
        return -1;
    }
    w->emitter_ready = true;
    yaml_emitter_set_output(&w->e, out_write, w);
    /* ASCII output (anything else escaped), no line folding: see the
     * header for why. */
    yaml_emitter_set_unicode(&w->e, 0);
    yaml_emitter_set_width(&w->e, -1);
    yaml_emitter_set_indent(&w->e, 2);
    emit(w, &ev, yaml_stream_start_event_initialize(&ev, YAML_UTF8_ENCODING));
    return w->why ? -1 : 0;
}

int yw_finish(struct yw *w, char **out, size_t *len, char *err, size_t errlen)
{
    yaml_event_t ev;

    *out = NULL;
    *len = 0;
    emit(w, &ev, yaml_stream_end_event_initialize(&ev));
    if (w->why || !w->buf) {
        /* The cap and memory first: libyaml itself only says "write error". */
        if (err && errlen && w->too_big)
            snprintf(err, errlen, "larger than the output cap of %zu bytes", w->max);
        else if (err && errlen)
            snprintf(err, errlen, "%s", w->oom ? "out of memory" : w->why ? w->why : "no output");
        return -1;
    }
    w->buf[w->len] = '\0';
    *out = w->buf;
    *len = w->len;
    w->buf = NULL;
    w->len = w->cap = 0;
    return 0;
}

void yw_free(struct yw *w)
{
    if (!w)
        return;
    if (w->emitter_ready)
        yaml_emitter_delete(&w->e);
    w->emitter_ready = false;
    free(w->buf);
    w->buf = NULL;
    w->len = w->cap = 0;
}

/* ---- structure ---- */

void yw_doc_begin(struct yw *w, const char *api, const char *kind)
{
    yaml_event_t ev;
    emit(w, &ev, yaml_document_start_event_initialize(&ev, NULL, NULL, NULL, 0));
    yw_map_begin(w);
    yw_kv(w, "apiVersion", api);
    yw_kv(w, "kind", kind);
}

void yw_doc_end(struct yw *w)
{
    yaml_event_t ev;
    yw_map_end(w);
    emit(w, &ev, yaml_document_end_event_initialize(&ev, 1));
}

void yw_map_begin(struct yw *w)
{
    yaml_event_t ev;
    emit(w, &ev, yaml_mapping_start_event_initialize(&ev, NULL, NULL, 1,
                                                     YAML_BLOCK_MAPPING_STYLE));
}

void yw_map_end(struct yw *w)
{
    yaml_event_t ev;
    emit(w, &ev, yaml_mapping_end_event_initialize(&ev));
}

void yw_seq_begin(struct yw *w, bool flow)
{
    yaml_event_t ev;
    emit(w, &ev, yaml_sequence_start_event_initialize(
                     &ev, NULL, NULL, 1,
                     flow ? YAML_FLOW_SEQUENCE_STYLE : YAML_BLOCK_SEQUENCE_STYLE));
}

void yw_seq_end(struct yw *w)
{
    yaml_event_t ev;
    emit(w, &ev, yaml_sequence_end_event_initialize(&ev));
}

/* ---- scalars and pairs ---- */

void yw_str(struct yw *w, const char *s)
{
    scalar(w, s, true);
}

void yw_kv(struct yw *w, const char *k, const char *v)
{
    yw_str(w, k);
    yw_str(w, v);
}

void yw_kv_int(struct yw *w, const char *k, long v)
{
    char b[24];
    snprintf(b, sizeof(b), "%ld", v);
    yw_str(w, k);
    scalar(w, b, false);
}

void yw_kv_bool(struct yw *w, const char *k, bool v)
{
    yw_str(w, k);
    scalar(w, v ? "true" : "false", false);
}

void yw_key_map(struct yw *w, const char *k)
{
    yw_str(w, k);
    yw_map_begin(w);
}

void yw_key_seq(struct yw *w, const char *k)
{
    yw_str(w, k);
    yw_seq_begin(w, false);
}

void yw_kv_list(struct yw *w, const char *k, const char *const *items)
{
    yw_str(w, k);
    yw_seq_begin(w, true);
    for (; *items; items++)
        yw_str(w, *items);
    yw_seq_end(w);
}
