/*
 * args: droverctl's command table and its argument parser. Pure: no I/O
 * beyond formatting help text into a caller's FILE.
 *
 * Every command is a noun and a verb (or a lone noun: login, apply) with a
 * spec naming its positional arguments and flags. The parser accepts
 * "--flag value", "--flag=value", "-x value", flags before, between and
 * after positionals, and "--" to end flags. The global flags (-o/--output,
 * -h/--help) are accepted by every command.
 */
#ifndef DROVER_CLI_ARGS_H
#define DROVER_CLI_ARGS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#define ARGS_MAX_POS 8
#define ARGS_MAX_FLAGS 16

struct ctl;
struct args;

struct flagspec {
    const char *name;       /* long name without "--" */
    char shortc;            /* 0 for none */
    bool value;             /* takes a value */
    const char *help;
};

struct cmdspec {
    const char *noun, *verb;    /* verb NULL for a lone noun */
    const char *usage;          /* positionals, e.g. "CLUSTER SNAPSHOT" */
    int min_pos, max_pos;
    const struct flagspec *flags;   /* terminated by a zeroed entry; may be NULL */
    const char *summary;
    int (*run)(struct ctl *ctl, const struct args *a);
};

struct args {
    const struct cmdspec *cmd;
    const char *pos[ARGS_MAX_POS];
    int npos;
    /* flag values by name; "" for a flag without value that was given */
    const char *fname[ARGS_MAX_FLAGS];
    const char *fval[ARGS_MAX_FLAGS];
    int nflags;
    const char *output;     /* -o; NULL if not given */
    bool help;
};

/* The table (cli/commands.c), terminated by a zeroed entry. */
extern const struct cmdspec ctl_commands[];

/* Exit codes. */
enum { CTL_OK = 0, CTL_FAILED = 1, CTL_USAGE = 2 };

/*
 * Finds the command named by argv[0..] in table and parses the rest into
 * out. Returns 0, or -1 with a reason in err (unknown command, unknown
 * flag, missing value, wrong number of arguments). When -h/--help is
 * present the argument count is not checked. *noun_only is set when argv
 * names a known noun but no verb (so help for the noun can be shown);
 * then out->cmd is NULL.
 */
int args_parse(const struct cmdspec *table, int argc, char **argv, struct args *out,
               bool *noun_only, char *err, size_t errlen);

/* A flag's value, or NULL if it was not given. */
const char *args_get(const struct args *a, const char *name);
bool args_has(const struct args *a, const char *name);

/* Help for everything, one noun, or one command. */
void args_help_all(const struct cmdspec *table, FILE *f);
void args_help_noun(const struct cmdspec *table, const char *noun, FILE *f);
void args_help_cmd(const struct cmdspec *c, FILE *f);

/* A bash completion script for the table. */
void args_bash_completion(const struct cmdspec *table, FILE *f);

#endif
