/*
 * config_value: the value side of the settings loader (see config.h): the
 * pure parsers for durations, sizes, booleans and integers, and the
 * validation of every loaded value against its option's type, bounds and
 * check, with a message naming where the value came from.
 */
#include "common/config.h"

#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "common/config_int.h"

/* ---- value parsers ---------------------------------------------------- */

/* One or more decimal digits at *s into *out, advancing *s. 0, or -1 if
 * there is no digit or the number does not fit in 64 bits. */
static int cfg_digits(const char **s, uint64_t *out)
{
    const char *p = *s;
    uint64_t v = 0;

    if (*p < '0' || *p > '9')
        return -1;
    for (; *p >= '0' && *p <= '9'; p++) {
        unsigned d = (unsigned)(*p - '0');
        if (v > (UINT64_MAX - d) / 10)
            return -1;
        v = v * 10 + d;
    }
    *s = p;
    *out = v;
    return 0;
}

/*
 * "500ms", "5s", "1m30s", "2h" → milliseconds. Terms may come in any order
 * and repeat; the total must fit in 64 bits. A bare number is refused (is
 * "5" seconds or milliseconds?) except "0", which is the same in any unit.
 */
int cfg_parse_duration(const char *s, uint64_t *ms)
{
    uint64_t total = 0;

    if (!s || !*s)
        return -1;
    if (strcmp(s, "0") == 0) {
        *ms = 0;
        return 0;
    }
    while (*s) {
        uint64_t n, unit;
        if (cfg_digits(&s, &n) < 0)
            return -1;
        if (s[0] == 'm' && s[1] == 's') {
            unit = 1;
            s += 2;
        } else if (*s == 's' || *s == 'm' || *s == 'h') {
            unit = *s == 's' ? 1000 : *s == 'm' ? 60000 : 3600000;
            s++;
        } else {
            return -1;
        }
        if (n > UINT64_MAX / unit || total > UINT64_MAX - n * unit)
            return -1;
        total += n * unit;
    }
    *ms = total;
    return 0;
}

/* Binary units only: K, M and G mean KiB, MiB and GiB, never powers of 10. */
static const struct {
    const char *name;
    unsigned shift;
} cfg_size_units[] = {
    { "", 0 },   { "B", 0 },    { "K", 10 }, { "KiB", 10 },
    { "M", 20 }, { "MiB", 20 }, { "G", 30 }, { "GiB", 30 },
};

/* "4096", "256KiB", "4M", "1GiB" → bytes. 0, or -1 on anything else or on
 * a size that does not fit in 64 bits. */
int cfg_parse_size(const char *s, uint64_t *bytes)
{
    uint64_t n;

    if (!s || cfg_digits(&s, &n) < 0)
        return -1;
    for (size_t i = 0; i < sizeof cfg_size_units / sizeof *cfg_size_units; i++) {
        unsigned sh = cfg_size_units[i].shift;
        if (strcmp(s, cfg_size_units[i].name) != 0)
            continue;
        if (n > UINT64_MAX >> sh)
            return -1;
        *bytes = n << sh;
        return 0;
    }
    return -1;
}

/* true/false, yes/no, on/off, 1/0, in any case. 0, or -1. */
int cfg_parse_bool(const char *s, bool *out)
{
    static const char *const yes[] = { "true", "yes", "on", "1" };
    static const char *const no[] = { "false", "no", "off", "0" };

    if (!s)
        return -1;
    for (size_t i = 0; i < sizeof yes / sizeof *yes; i++) {
        if (strcasecmp(s, yes[i]) == 0 || strcasecmp(s, no[i]) == 0) {
            *out = strcasecmp(s, yes[i]) == 0;
            return 0;
        }
    }
    return -1;
}

/* Decimal with an optional sign, no spaces, within int64. 0, or -1. */
int cfg_parse_int(const char *s, int64_t *out)
{
    bool neg = false;
    uint64_t v;

    if (!s)
        return -1;
    if (*s == '-' || *s == '+')
        neg = *s++ == '-';
    if (cfg_digits(&s, &v) < 0 || *s)
        return -1;
    if (v > (uint64_t)INT64_MAX + neg)
        return -1;
    *out = neg ? (int64_t)(0 - v) : (int64_t)v;
    return 0;
}

/* ---- validation ------------------------------------------------------- */

/* ms as the shortest duration text that reads back the same: 90000 → 1m30s. */
static void cfg_fmt_duration(char *buf, size_t cap, int64_t ms)
{
    static const struct { const char *unit; int64_t ms; } u[] = {
        { "h", 3600000 }, { "m", 60000 }, { "s", 1000 }, { "ms", 1 },
    };
    size_t o = 0;

    if (ms <= 0) {
        snprintf(buf, cap, "%s", ms == 0 ? "0" : "a negative duration");
        return;
    }
    buf[0] = '\0';
    for (size_t i = 0; i < sizeof u / sizeof *u && o < cap; i++) {
        if (ms / u[i].ms == 0)
            continue;
        int n = snprintf(buf + o, cap - o, "%lld%s",
                         (long long)(ms / u[i].ms), u[i].unit);
        o += n > 0 ? (size_t)n : 0;
        ms %= u[i].ms;
    }
}

static void cfg_fmt_size(char *buf, size_t cap, int64_t b)
{
    static const char *const unit[] = { "GiB", "MiB", "KiB" };

    for (int i = 0; i < 3 && b > 0; i++) {
        int64_t m = (int64_t)1 << (30 - 10 * i);
        if (b % m == 0) {
            snprintf(buf, cap, "%lld%s", (long long)(b / m), unit[i]);
            return;
        }
    }
    snprintf(buf, cap, "%lld", (long long)b);
}

static bool cfg_outside(uint64_t v, int64_t lo, int64_t hi)
{
    if (lo == 0 && hi == 0)
        return false;
    return hi < 0 || v > (uint64_t)hi || (lo > 0 && v < (uint64_t)lo);
}

/* NULL if v is a valid value for o, otherwise why not (in buf or static). */
static const char *cfg_reason(const struct cfg_opt *o, const char *v,
                              char *buf, size_t cap)
{
    char lo[48], hi[48];
    int64_t n;
    uint64_t u;
    bool b;

    switch (o->type) {
    case CFG_INT:
        if (cfg_parse_int(v, &n) < 0)
            return "not an integer";
        if ((o->min || o->max) && (n < o->min || n > o->max)) {
            snprintf(buf, cap, "must be between %lld and %lld",
                     (long long)o->min, (long long)o->max);
            return buf;
        }
        break;
    case CFG_DURATION:
    case CFG_SIZE: {
        bool dur = o->type == CFG_DURATION;
        if ((dur ? cfg_parse_duration(v, &u) : cfg_parse_size(v, &u)) < 0)
            return dur ? "not a duration (e.g. 500ms, 5s, 1m)"
                       : "not a size (e.g. 512KiB, 4MiB, 1GiB)";
        if (cfg_outside(u, o->min, o->max)) {
            (dur ? cfg_fmt_duration : cfg_fmt_size)(lo, sizeof lo, o->min);
            (dur ? cfg_fmt_duration : cfg_fmt_size)(hi, sizeof hi, o->max);
            snprintf(buf, cap, "must be between %s and %s", lo, hi);
            return buf;
        }
        break;
    }
    case CFG_BOOL:
        if (cfg_parse_bool(v, &b) < 0)
            return "not a boolean (true/false, yes/no, on/off, 1/0)";
        break;
    case CFG_STRING:
        break;
    }
    return o->check ? o->check(v) : NULL;
}

/* "flag --key", "env DROVER_KEY", "file config.yaml:3" or "default". */
static void cfg_origin(const struct cfg *c, size_t i, char *buf, size_t cap)
{
    const char *src = c->sources[i];

    if (!strcmp(src, "flag"))
        snprintf(buf, cap, "flag --%s", c->opts[i].key);
    else if (!strcmp(src, "env"))
        snprintf(buf, cap, "env %s", c->opts[i].env);
    else if (!strcmp(src, "file"))
        snprintf(buf, cap, "file %s:%d", c->file, c->lines[i]);
    else
        snprintf(buf, cap, "%s", src);
}

/* Reports every bad value, not just the first, so one run shows them all. */
int cfg_validate(const struct cfg *c, const char *prog)
{
    int rc = 0;

    for (size_t i = 0; i < c->nopts; i++) {
        char buf[256], origin[512], esc[CFG_ESC_CAP];
        if (!c->values[i])
            continue;
        const char *why = cfg_reason(&c->opts[i], c->values[i], buf, sizeof buf);
        if (!why)
            continue;
        cfg_origin(c, i, origin, sizeof origin);
        rc = cfg_err(prog, "invalid %s \"%s\" (from %s): %s", c->opts[i].key,
                     cfg_escape(esc, c->values[i]), origin, why);
    }
    return rc;
}
