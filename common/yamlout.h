/*
 * yamlout: writes the YAML that Kubernetes tools read (the agents' import
 * manifest, kubeconfigs) through libyaml's emitter. Every value goes in as
 * an emitter event, never into a text template, so no value can end its
 * scalar, start a comment or open another document whatever bytes it holds;
 * strings that a YAML 1.1 reader could take for something else are quoted.
 *
 * What it owns: a struct yw (caller-allocated, usually on the stack) owns
 * the libyaml emitter and the output buffer until yw_finish hands the
 * buffer to the caller or yw_free releases it. The output buffer has a cap
 * given at yw_init; a document past it fails cleanly.
 *
 * Errors are sticky: the first failure (over the cap, out of memory, an
 * event libyaml refuses) is kept, every later call is a no-op, and
 * yw_finish reports it. So the builder calls need no checks and a renderer
 * reads as a straight-line description of its YAML.
 *
 * Values must be valid UTF-8 (libyaml refuses anything else, which fails
 * the writer); callers check their inputs first to name the bad field.
 * Output is ASCII (other characters escaped inside double quotes), indented
 * by two, with no line folding, so a long token or URL stays on one line
 * and what a tool reads is byte for byte what a reviewer saw.
 */
#ifndef DROVER_YAMLOUT_H
#define DROVER_YAMLOUT_H

#include <stdbool.h>
#include <stddef.h>
#include <yaml.h>

/* Private: use the functions below. */
struct yw {
    yaml_emitter_t e;
    bool emitter_ready;     /* e initialised, so yw_free must delete it */
    char *buf;
    size_t len, cap;        /* cap always leaves room for the final NUL */
    size_t max;             /* output cap in bytes, without the NUL */
    bool too_big, oom;
    const char *why;        /* first failure (static text); NULL while all is well */
};

/*
 * Starts a YAML stream in w whose output may hold at most max_output bytes
 * (1 .. SIZE_MAX / 4). Returns 0, or -1 if the emitter could not be set up
 * (out of memory) or the cap is out of range; the failure is also kept in
 * w, so a caller may ignore the return and learn it from yw_finish. Either
 * way, call yw_free(w) when done.
 */
int yw_init(struct yw *w, size_t max_output);

/*
 * Ends the stream and hands over the output: *out a malloc'd, NUL-terminated
 * buffer (caller frees), *len its length without the NUL. Returns 0, or -1
 * with *out NULL, *len 0 and the first failure in err (if err is not NULL
 * and errlen > 0): the output cap, memory, or libyaml's complaint. Call it
 * once; yw_free is still needed afterwards.
 */
int yw_finish(struct yw *w, char **out, size_t *len, char *err, size_t errlen);

/* Releases the emitter and any output not handed over. A no-op for NULL,
 * and safe on a zeroed struct yw or after a failed yw_init. */
void yw_free(struct yw *w);

/*
 * Opens a document with an explicit "---" (so a stream reads and greps as
 * one object per document) whose root is a mapping that starts with
 * apiVersion: api and kind: kind. yw_doc_end closes the mapping and the
 * document.
 */
void yw_doc_begin(struct yw *w, const char *api, const char *kind);
void yw_doc_end(struct yw *w);

/* Block mappings; an empty one is written as {}. */
void yw_map_begin(struct yw *w);
void yw_map_end(struct yw *w);

/* Sequences: flow style ([a, b]) reads best for short lists of words
 * (verbs, commands), block style for lists of mappings. */
void yw_seq_begin(struct yw *w, bool flow);
void yw_seq_end(struct yw *w);

/* A string scalar: plain when a YAML 1.1 reader would read it back as this
 * same string, double-quoted otherwise. Keys are written with it too. A
 * string that is not valid UTF-8 (see yw_utf8_ok) or is longer than the
 * output cap fails the writer. */
void yw_str(struct yw *w, const char *s);

/* k: v, both strings. */
void yw_kv(struct yw *w, const char *k, const char *v);
/* k: v with v a plain decimal integer, so a reader sees a number. */
void yw_kv_int(struct yw *w, const char *k, long v);
/* k: true or false, plain, so a reader sees a boolean. */
void yw_kv_bool(struct yw *w, const char *k, bool v);
/* k: and open the mapping (or block sequence) that is its value; close it
 * with yw_map_end (yw_seq_end). */
void yw_key_map(struct yw *w, const char *k);
void yw_key_seq(struct yw *w, const char *k);
/* k: [items...] in flow style, items NULL-terminated. */
void yw_kv_list(struct yw *w, const char *k, const char *const *items);

/* True if s is well-formed UTF-8 (no overlongs, surrogates or values past
 * U+10FFFF), which yw_str accepts and a YAML reader will read back. Callers
 * use it to refuse a bad input by name before writing anything. */
bool yw_utf8_ok(const char *s);

#endif
