/*
 * config: settings from flags, DROVER_* environment, a YAML file and
 * defaults. See config.h for the contract.
 *
 * This file owns loading: the sources (flags, environment, the --config
 * file, defaults), --help, the error messages and the typed getters. The
 * value parsers and the validation of loaded values are in config_value.c,
 * the YAML reader in config_yaml.c; config_int.h is what they share.
 *
 * Sources are applied from strongest to weakest and a weaker one only fills
 * what is still unset, so every value carries the one source it came from;
 * validation runs last, once, over the survivors, and its message names that
 * source. The value parsers and the YAML reader are pure (no I/O, no globals)
 * so the fuzz target can drive them directly.
 */
#include "common/config.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

#include "common/config_int.h"

#ifdef DROVER_VERSION
#define CFG_VERSION DROVER_VERSION
#else
#define CFG_VERSION "dev"
#endif

/* ---- messages --------------------------------------------------------- */

/*
 * Copies s for an error message: quotes, backslashes and non-printable bytes
 * are escaped (a value from the environment may hold anything) and only the
 * first CFG_SHOW_MAX bytes are shown. dst must hold CFG_ESC_CAP bytes.
 */
const char *cfg_escape(char dst[CFG_ESC_CAP], const char *s)
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
int cfg_err(const char *prog, const char *fmt, ...)
{
    char msg[CFG_MSG_MAX];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    fprintf(stderr, "%s: %s\n", prog, msg);
    return 2;
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
