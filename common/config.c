/*
 * config: settings from flags, DROVER_* environment, a YAML file and
 * defaults. See config.h for the contract.
 *
 * Sources are applied from strongest to weakest and a weaker one only fills
 * what is still unset, so every value carries the one source it came from;
 * validation runs last, once, over the survivors, and its message names that
 * source. The value parsers and the YAML reader are pure (no I/O, no globals)
 * so the fuzz target can drive them directly.
 */
#include "common/config.h"

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/types.h>
#include <yaml.h>

#ifdef DROVER_VERSION
#define CFG_VERSION DROVER_VERSION
#else
#define CFG_VERSION "dev"
#endif

#define CFG_YAML_MAX  (1024 * 1024)  /* a settings file is a few hundred bytes */
#define CFG_SHOW_MAX  80             /* bytes of a bad value echoed back */
#define CFG_ESC_CAP   (CFG_SHOW_MAX * 4 + 8)
#define CFG_MSG_MAX   1024

typedef int (*cfg_kv_fn)(void *ud, const char *key, const char *value,
                         int line, char *err, size_t errlen);

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
static int cfg_parse_int(const char *s, int64_t *out)
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

/* ---- messages --------------------------------------------------------- */

/*
 * Copies s for an error message: quotes, backslashes and non-printable bytes
 * are escaped (a value from the environment may hold anything) and only the
 * first CFG_SHOW_MAX bytes are shown. dst must hold CFG_ESC_CAP bytes.
 */
static const char *cfg_escape(char dst[CFG_ESC_CAP], const char *s)
{
    size_t o = 0, i;

    for (i = 0; s[i] && i < CFG_SHOW_MAX; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (ch == '"' || ch == '\\') {
            dst[o++] = '\\';
            dst[o++] = (char)ch;
        } else if (ch < 0x20 || ch == 0x7f) {
            o += (size_t)snprintf(dst + o, CFG_ESC_CAP - o, "\\x%02x", ch);
        } else {
            dst[o++] = (char)ch;
        }
    }
    if (s[i])
        o += (size_t)snprintf(dst + o, CFG_ESC_CAP - o, "...");
    dst[o] = '\0';
    return dst;
}

/* "prog: message\n" to stderr in one call; returns 2 for the caller. */
__attribute__((format(printf, 2, 3)))
static int cfg_err(const char *prog, const char *fmt, ...)
{
    char msg[CFG_MSG_MAX];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    fprintf(stderr, "%s: %s\n", prog, msg);
    return 2;
}

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

/* ---- sources ---------------------------------------------------------- */

static ssize_t cfg_find(const struct cfg *c, const char *key, size_t keylen)
{
    for (size_t i = 0; i < c->nopts; i++) {
        if (strlen(c->opts[i].key) == keylen &&
            memcmp(c->opts[i].key, key, keylen) == 0)
            return (ssize_t)i;
    }
    return -1;
}

/* Replaces option i's value (a later flag wins over an earlier one). */
static int cfg_set(struct cfg *c, size_t i, const char *v, const char *src,
                   int line)
{
    char *dup = strdup(v);

    if (!dup)
        return -1;
    free(c->values[i]);
    c->values[i] = dup;
    c->sources[i] = src;
    c->lines[i] = line;
    return 0;
}

static void cfg_help(const struct cfg *c, const char *prog, const char *usage)
{
    static const char *const extra[][2] = {
        { "--config FILE", "read settings from a YAML file" },
        { "-h, --help", "show this help and exit" },
        { "--version", "show the version and exit" },
    };
    int w = (int)strlen(extra[0][0]);

    for (size_t i = 0; i < c->nopts; i++) {
        int kw = (int)strlen(c->opts[i].key) + (int)strlen("-- VALUE");
        w = kw > w ? kw : w;
    }
    printf("%s - %s\n", prog, usage ? usage : "");
    for (size_t i = 0; i < c->nopts; i++) {
        const struct cfg_opt *o = &c->opts[i];
        const char *help = o->help ? o->help : "";
        int pad = w - (int)strlen(o->key) - (int)strlen("-- VALUE");
        if (!*help && !o->env && !o->def) {
            printf("  --%s VALUE\n", o->key);  /* no trailing blanks */
            continue;
        }
        printf("  --%s VALUE%*s  %s", o->key, pad, "", help);
        if (o->env || o->def)
            printf("%s(", *help ? " " : "");
        if (o->env)
            printf("env %s%s", o->env, o->def ? ", " : ")");
        if (o->def)
            printf("default %s)", o->def);
        printf("\n");
    }
    for (size_t i = 0; i < sizeof extra / sizeof *extra; i++)
        printf("  %-*s  %s\n", w, extra[i][0], extra[i][1]);
    fflush(stdout);
}

/* The value of the flag at argv[*i] ("--key=v", "--key v" or, for a bool,
 * a bare "--key"); NULL if it is missing. */
static const char *cfg_flag_value(const struct cfg_opt *o, int argc,
                                  char **argv, int *i)
{
    const char *eq = strchr(argv[*i], '=');
    const char *next = *i + 1 < argc ? argv[*i + 1] : NULL;

    if (eq)
        return eq + 1;
    if (o && o->type == CFG_BOOL) {
        /* "--insecure no" reads as a value, "--insecure --other" does not */
        if (next && next[0] != '-') {
            (*i)++;
            return next;
        }
        return "true";
    }
    if (next && strncmp(next, "--", 2) != 0) {
        (*i)++;
        return next;
    }
    return NULL;
}

static int cfg_flag(struct cfg *c, const char *prog, int argc, char **argv,
                    int *i)
{
    char esc[CFG_ESC_CAP];
    const char *name = argv[*i] + 2;
    size_t len = strcspn(name, "=");
    bool is_config = len == 6 && memcmp(name, "config", 6) == 0;
    ssize_t k = is_config ? -1 : cfg_find(c, name, len);

    if (!is_config && k < 0) {
        char flag[CFG_SHOW_MAX + 2];   /* one over, so "..." shows */
        snprintf(flag, sizeof flag, "%.*s", (int)len, name);
        return cfg_err(prog, "unknown flag --%s (see --help)",
                       cfg_escape(esc, flag));
    }
    const struct cfg_opt *o = k < 0 ? NULL : &c->opts[k];
    const char *v = cfg_flag_value(o, argc, argv, i);
    if (!v || (is_config && !*v))
        return cfg_err(prog, "missing value for --%s (see --help)",
                       is_config ? "config" : o->key);
    if (is_config) {
        char *dup = strdup(v);
        if (!dup)
            return cfg_err(prog, "out of memory");
        free(c->file);
        c->file = dup;
        return 0;
    }
    if (cfg_set(c, (size_t)k, v, "flag", 0) < 0)
        return cfg_err(prog, "out of memory");
    return 0;
}

static int cfg_flags(struct cfg *c, const char *prog, const char *usage,
                     int argc, char **argv)
{
    char esc[CFG_ESC_CAP];

    for (int i = 1; i < argc && argv[i]; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            cfg_help(c, prog, usage);
            return 1;
        }
        if (!strcmp(a, "--version")) {
            printf("%s %s\n", prog, CFG_VERSION);
            fflush(stdout);
            return 1;
        }
        if (a[0] != '-' || a[1] == '\0')
            return cfg_err(prog, "unexpected argument \"%s\" (see --help)",
                           cfg_escape(esc, a));
        if (a[1] != '-' || a[2] == '\0' || a[2] == '=')
            return cfg_err(prog, "unknown flag %s (see --help)",
                           cfg_escape(esc, a));
        int rc = cfg_flag(c, prog, argc, argv, &i);
        if (rc)
            return rc;
    }
    return 0;
}

/* An empty variable is still set: "" is a valid string and an invalid
 * anything else, which validation then reports. */
static int cfg_env(struct cfg *c, const char *prog)
{
    for (size_t i = 0; i < c->nopts; i++) {
        const char *v = c->opts[i].env ? getenv(c->opts[i].env) : NULL;
        if (c->values[i] || !v)
            continue;
        if (cfg_set(c, i, v, "env", 0) < 0)
            return cfg_err(prog, "out of memory");
    }
    return 0;
}

struct cfg_file_ud {
    struct cfg *c;
    int *seen;              /* per option: the line it was first set on */
};

static int cfg_file_kv(void *ud, const char *key, const char *value, int line,
                       char *err, size_t errlen)
{
    struct cfg_file_ud *f = ud;
    char esc[CFG_ESC_CAP];
    ssize_t i = cfg_find(f->c, key, strlen(key));

    if (i < 0) {
        snprintf(err, errlen, "unknown setting \"%s\"", cfg_escape(esc, key));
        return -1;
    }
    if (f->seen[i]) {
        snprintf(err, errlen, "duplicate setting \"%s\" (first on line %d)",
                 cfg_escape(esc, key), f->seen[i]);
        return -1;
    }
    f->seen[i] = line;
    if (!value || !*value || f->c->values[i])
        return 0;           /* unset, or a flag or the environment won */
    if (cfg_set(f->c, (size_t)i, value, "file", line) < 0) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    return 0;
}

/* Reads at most one byte past the YAML limit, so a huge file costs nothing. */
static int cfg_read_file(struct cfg *c, const char *prog, char **buf,
                         size_t *len)
{
    FILE *f = fopen(c->file, "r");
    size_t cap = CFG_YAML_MAX + 1;

    *buf = f ? malloc(cap) : NULL;
    if (!f || !*buf) {
        int e = errno;
        if (f)
            fclose(f);
        return cfg_err(prog, "cannot read config file \"%s\": %s", c->file,
                       strerror(e));
    }
    *len = fread(*buf, 1, cap, f);
    int e = ferror(f) ? errno : 0;
    fclose(f);
    if (e)
        return cfg_err(prog, "cannot read config file \"%s\": %s", c->file,
                       strerror(e));
    if (*len > CFG_YAML_MAX)
        return cfg_err(prog, "config file \"%s\" is larger than 1 MiB",
                       c->file);
    return 0;
}

static int cfg_file(struct cfg *c, const char *prog)
{
    struct cfg_file_ud f = { c, calloc(c->nopts + 1, sizeof(int)) };
    char *buf = NULL;
    size_t len = 0;
    char err[CFG_MSG_MAX];
    int rc;

    if (!f.seen)
        return cfg_err(prog, "out of memory");
    rc = cfg_read_file(c, prog, &buf, &len);
    if (rc == 0 && cfg_parse_yaml(buf, len, cfg_file_kv, &f, err, sizeof err))
        rc = cfg_err(prog, "%s:%s", c->file, err);
    free(buf);
    free(f.seen);
    return rc;
}

static int cfg_defaults(struct cfg *c, const char *prog)
{
    for (size_t i = 0; i < c->nopts; i++) {
        if (c->values[i] || !c->opts[i].def)
            continue;
        if (cfg_set(c, i, c->opts[i].def, "default", 0) < 0)
            return cfg_err(prog, "out of memory");
    }
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
static int cfg_validate(const struct cfg *c, const char *prog)
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

/* ---- public ----------------------------------------------------------- */

/*
 * See config.h. On a return of 1 or 2, c is left empty (cfg_free on it is a
 * no-op), so callers may free unconditionally or not at all.
 */
int cfg_load(struct cfg *c, const struct cfg_opt *opts, size_t nopts,
             const char *prog, const char *usage, int argc, char **argv)
{
    size_t n = nopts ? nopts : 1;
    int rc;

    memset(c, 0, sizeof *c);
    prog = prog ? prog : "drover";
    c->opts = opts;
    c->nopts = nopts;
    c->values = calloc(n, sizeof *c->values);
    c->sources = calloc(n, sizeof *c->sources);
    c->lines = calloc(n, sizeof *c->lines);
    if (!c->values || !c->sources || !c->lines)
        rc = cfg_err(prog, "out of memory");
    else
        rc = cfg_flags(c, prog, usage, argc, argv);
    if (rc == 0)
        rc = cfg_env(c, prog);
    if (rc == 0 && c->file)
        rc = cfg_file(c, prog);
    if (rc == 0)
        rc = cfg_defaults(c, prog);
    if (rc == 0)
        rc = cfg_validate(c, prog);
    if (rc != 0)
        cfg_free(c);
    return rc;
}

/* Frees every value and the file name; a no-op on a zeroed or freed cfg. */
void cfg_free(struct cfg *c)
{
    if (!c)
        return;
    for (size_t i = 0; c->values && i < c->nopts; i++)
        free(c->values[i]);
    free(c->values);
    free(c->sources);
    free(c->lines);
    free(c->file);
    memset(c, 0, sizeof *c);
}

/* A key missing from the table, or asked for as the wrong type, is a bug in
 * the program, not a user error: stop loudly. */
static size_t cfg_index(const struct cfg *c, const char *key, int type)
{
    ssize_t i = key ? cfg_find(c, key, strlen(key)) : -1;

    if (i < 0) {
        fprintf(stderr, "cfg: no setting \"%s\" in the option table\n",
                key ? key : "(null)");
        abort();
    }
    if (type >= 0 && c->opts[i].type != (enum cfg_type)type) {
        fprintf(stderr, "cfg: setting \"%s\" read as the wrong type\n", key);
        abort();
    }
    return (size_t)i;
}

/* The text of the value (any type), NULL if unset. */
const char *cfg_str(const struct cfg *c, const char *key)
{
    return c->values[cfg_index(c, key, -1)];
}

/* The typed getters return 0 (false) for an unset value. */
int64_t cfg_int(const struct cfg *c, const char *key)
{
    int64_t n = 0;
    const char *v = c->values[cfg_index(c, key, CFG_INT)];
    return v && cfg_parse_int(v, &n) == 0 ? n : 0;
}

uint64_t cfg_duration_ms(const struct cfg *c, const char *key)
{
    uint64_t ms = 0;
    const char *v = c->values[cfg_index(c, key, CFG_DURATION)];
    return v && cfg_parse_duration(v, &ms) == 0 ? ms : 0;
}

uint64_t cfg_size(const struct cfg *c, const char *key)
{
    uint64_t b = 0;
    const char *v = c->values[cfg_index(c, key, CFG_SIZE)];
    return v && cfg_parse_size(v, &b) == 0 ? b : 0;
}

bool cfg_bool(const struct cfg *c, const char *key)
{
    bool b = false;
    const char *v = c->values[cfg_index(c, key, CFG_BOOL)];
    return v && cfg_parse_bool(v, &b) == 0 ? b : false;
}

/* "flag", "env", "file" or "default"; NULL if unset. */
const char *cfg_source(const struct cfg *c, const char *key)
{
    return c->sources[cfg_index(c, key, -1)];
}
