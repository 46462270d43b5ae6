/*
 * yamljson: converts between YAML and jansson values, for -o yaml and for
 * reading and merging kubeconfig files. Pure, with hard limits.
 *
 * Reading: a plain scalar becomes null (~, null, empty), a boolean
 * (true/false in any case), an integer or a real when it reads as one;
 * everything else, and every quoted scalar, a string. Anchors, aliases,
 * tags other than the standard ones and non-scalar keys are refused, as are
 * inputs over YJ_MAX_INPUT or nested deeper than YJ_MAX_DEPTH.
 *
 * Writing: block style, indent 2, ASCII; a string is plain only when it
 * cannot read back as anything else (the rule of common/yamlout.c), else
 * double-quoted, so a round trip keeps every type.
 */
#ifndef DROVER_CLI_YAMLJSON_H
#define DROVER_CLI_YAMLJSON_H

#include <jansson.h>
#include <stddef.h>

#define YJ_MAX_INPUT (4 * 1024 * 1024)
#define YJ_MAX_DEPTH 64

/* The first document of buf (len bytes) as JSON (caller decrefs); an empty
 * stream gives JSON null. NULL with "line N: reason" in err. */
json_t *yj_load(const char *buf, size_t len, char *err, size_t errlen);

/* j as one YAML document (no "---"); a malloc'd NUL-terminated string
 * (caller frees), NULL on failure (out of memory, invalid UTF-8). */
char *yj_dump(const json_t *j, size_t *len);

#endif
