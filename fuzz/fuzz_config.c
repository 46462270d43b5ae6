/*
 * libFuzzer target for the pure parsers of the settings loader
 * (common/config_yaml.c, common/config_value.c): the YAML settings reader
 * and the duration, size and bool parsers, each fed a NUL-terminated copy of
 * the input. Beyond "no crash, no leak", it checks what the callers
 * rely on: every key is a non-empty name on a real line, errors always come
 * back as "LINE: reason", and the value parsers accept only their documented
 * alphabet.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/config.h"

static int on_kv(void *ud, const char *key, const char *value, int line,
                 char *err, size_t errlen)
{
    size_t *pairs = ud;

    if (!key || !*key || line < 1)
        abort();
    if (value && strlen(value) > 1024 * 1024)   /* no larger than the input */
        abort();
    /* stop now and then, so the callback's error path is exercised too */
    if (++*pairs > 6 && key[0] == 'x') {
        snprintf(err, errlen, "stop at %s", key);
        return -1;
    }
    return 0;
}

static void check_yaml(const char *buf, size_t len)
{
    char err[128];
    size_t pairs = 0;

    if (cfg_parse_yaml(buf, len, on_kv, &pairs, err, sizeof err) != 0) {
        /* the file name is put in front, so the line must lead */
        if (err[0] < '1' || err[0] > '9' || !strstr(err, ": "))
            abort();
    }
}

static void check_values(const char *s)
{
    uint64_t v;
    bool b;

    if (cfg_parse_duration(s, &v) == 0 && strspn(s, "0123456789msh") != strlen(s))
        abort();
    if (cfg_parse_size(s, &v) == 0 && strspn(s, "0123456789KMGiB") != strlen(s))
        abort();
    if (cfg_parse_bool(s, &b) == 0 && strlen(s) > 5)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *s = malloc(size + 1);

    if (!s)
        return 0;
    memcpy(s, data, size);
    s[size] = '\0';
    check_yaml(s, size);
    check_values(s);
    free(s);
    return 0;
}
