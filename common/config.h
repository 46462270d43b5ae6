/*
 * config: settings from flags, DROVER_* environment, a YAML file and defaults,
 * in that order of precedence, described by one table per program.
 *
 * A bad setting is reported naming the key and where it came from, and the
 * program exits 2. --help prints the table; --version the version.
 */
#ifndef DROVER_CONFIG_H
#define DROVER_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum cfg_type {
    CFG_STRING,
    CFG_INT,        /* decimal, within [min, max] */
    CFG_DURATION,   /* "500ms", "5s", "1m30s", "2h" → milliseconds, within [min, max] */
    CFG_BOOL,       /* true/false/yes/no/1/0/on/off */
    CFG_SIZE,       /* "256KiB", "4MiB", "1GiB", plain bytes → bytes, within [min, max] */
};

struct cfg_opt {
    const char *key;        /* YAML key and --flag name, e.g. "ping-interval" */
    const char *env;        /* e.g. "DROVER_PING_INTERVAL"; NULL for none */
    enum cfg_type type;
    const char *def;        /* default as text; NULL = unset */
    int64_t min, max;       /* for INT, DURATION (ms) and SIZE; both 0 = no bound */
    const char *help;
    /* Optional extra check of the text value; returns NULL if fine or a short
     * reason ("must be a loopback address"). */
    const char *(*check)(const char *value);
};

struct cfg {
    const struct cfg_opt *opts;
    size_t nopts;
    char **values;          /* per option; NULL when unset */
    const char **sources;   /* per option: "flag", "env", "file", "default" */
    char *file;             /* the --config path, if any */
    int *lines;             /* per option: its line in the file, 0 if not from it */
};

/*
 * Fills c from argv, the environment and the --config file. Returns 0 to go
 * on, 1 if --help or --version was printed (exit 0), 2 after printing a
 * message naming the bad flag, key or value to stderr (exit 2).
 * usage is one line shown under the program name in --help.
 * On 1 or 2, c is left empty (cfg_free on it is a no-op).
 */
int cfg_load(struct cfg *c, const struct cfg_opt *opts, size_t nopts,
             const char *prog, const char *usage, int argc, char **argv);
void cfg_free(struct cfg *c);

/* Typed getters; the key must be in the table (abort() otherwise: a bug). */
const char *cfg_str(const struct cfg *c, const char *key);   /* NULL if unset */
int64_t cfg_int(const struct cfg *c, const char *key);
uint64_t cfg_duration_ms(const struct cfg *c, const char *key);
uint64_t cfg_size(const struct cfg *c, const char *key);
bool cfg_bool(const struct cfg *c, const char *key);
const char *cfg_source(const struct cfg *c, const char *key);

/* Pure parsers, also used by the fuzz target. 0 or -1. */
int cfg_parse_duration(const char *s, uint64_t *ms);
int cfg_parse_size(const char *s, uint64_t *bytes);
int cfg_parse_bool(const char *s, bool *out);

/*
 * Parses a YAML document that must be a flat mapping of scalar keys to scalar
 * values (a sequence of scalars is joined with commas). Calls on_kv for each
 * pair (value NULL for a YAML null or empty value). on_kv returns nonzero
 * with a reason in err to stop. Returns 0, or -1 with "LINE: reason" in err.
 * Documents over 1 MiB are refused.
 */
int cfg_parse_yaml(const char *buf, size_t len,
                   int (*on_kv)(void *ud, const char *key, const char *value,
                                int line, char *err, size_t errlen),
                   void *ud, char *err, size_t errlen);

#endif
