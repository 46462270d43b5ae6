/*
 * config_int: what the settings loader's files share (config.c,
 * config_value.c, config_yaml.c): limits, the error message helpers and the
 * steps one file calls in another. Not for code outside common/config*.c;
 * the contract is config.h.
 */
#ifndef DROVER_CONFIG_INT_H
#define DROVER_CONFIG_INT_H

#include <stddef.h>
#include <stdint.h>

#include "common/config.h"

#define CFG_YAML_MAX  (1024 * 1024)  /* a settings file is a few hundred bytes */
#define CFG_SHOW_MAX  80             /* bytes of a bad value echoed back */
#define CFG_ESC_CAP   (CFG_SHOW_MAX * 4 + 8)
#define CFG_MSG_MAX   1024

typedef int (*cfg_kv_fn)(void *ud, const char *key, const char *value,
                         int line, char *err, size_t errlen);

/* config.c: messages */
/* s escaped and cut for an error message, in dst (CFG_ESC_CAP bytes). */
const char *cfg_escape(char dst[CFG_ESC_CAP], const char *s);
/* "prog: message\n" to stderr in one call; returns 2 for the caller. */
int cfg_err(const char *prog, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* config_value.c: parsing and validation */
/* Decimal with an optional sign, no spaces, within int64. 0, or -1. */
int cfg_parse_int(const char *s, int64_t *out);
/* Checks every set value; reports each bad one. 0, or 2 after a message. */
int cfg_validate(const struct cfg *c, const char *prog);

#endif
