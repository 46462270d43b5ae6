/*
 * droverctl: the drover command line. Finds the command in the table
 * (cli/commands.c), parses its arguments, loads the login state and runs
 * it. Exit codes: 0 ok, 1 failed, 2 usage error.
 */
#include <stdio.h>
#include <string.h>

#include "cli/args.h"
#include "cli/ctl.h"

static int set_format(struct ctl *ctl, const char *o)
{
    if (!o || strcmp(o, "table") == 0)
        ctl->format = FMT_TABLE;
    else if (strcmp(o, "json") == 0)
        ctl->format = FMT_JSON;
    else if (strcmp(o, "yaml") == 0)
        ctl->format = FMT_YAML;
    else {
        ctl_err("-o must be table, json or yaml, not \"%s\"", o);
        return -1;
    }
    return 0;
}

/* Handles what comes before a command: --help, --version, help [cmd].
 * Returns -1 to go on, else the exit code. */
static int top_level(int argc, char **argv)
{
    if (argc < 2) {
        args_help_all(ctl_commands, stderr);
        return CTL_USAGE;
    }
    const char *a = argv[1];
    if (strcmp(a, "--version") == 0 || strcmp(a, "version") == 0) {
        printf("droverctl %s\n", DROVER_VERSION);
        return CTL_OK;
    }
    if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0 ||
        (strcmp(a, "help") == 0 && argc == 2)) {
        args_help_all(ctl_commands, stdout);
        return CTL_OK;
    }
    return -1;
}

int main(int argc, char **argv)
{
    struct args a;
    struct ctl ctl;
    char err[512];
    bool noun_only;
    int rc = top_level(argc, argv);
    if (rc >= 0)
        return rc;
    /* "droverctl help cluster create" is "droverctl cluster create --help". */
    bool help_word = strcmp(argv[1], "help") == 0;
    int skip = help_word ? 2 : 1;
    if (args_parse(ctl_commands, argc - skip, argv + skip, &a, &noun_only, err,
                   sizeof(err)) < 0) {
        if (noun_only && (a.help || help_word)) {
            args_help_noun(ctl_commands, argv[skip], stdout);
            return CTL_OK;
        }
        if (noun_only) {
            args_help_noun(ctl_commands, argv[skip], stderr);
            return CTL_USAGE;
        }
        if (!a.cmd || !(a.help || help_word)) {
            ctl_err("%s", err);
            fprintf(stderr, "Run \"droverctl %s%s%s%s--help\" for usage.\n",
                    a.cmd ? a.cmd->noun : "", a.cmd ? " " : "",
                    a.cmd && a.cmd->verb ? a.cmd->verb : "", a.cmd && a.cmd->verb ? " " : "");
            return CTL_USAGE;
        }
    }
    if (a.help || help_word) {
        args_help_cmd(a.cmd, stdout);
        return CTL_OK;
    }
    memset(&ctl, 0, sizeof(ctl));
    if (set_format(&ctl, a.output) < 0)
        return CTL_USAGE;
    if (cfgfile_path(ctl.config_path, sizeof(ctl.config_path), err, sizeof(err)) < 0) {
        ctl_err("%s", err);
        return CTL_FAILED;
    }
    rc = a.cmd->run(&ctl, &a);
    ctl_free(&ctl);
    return rc;
}
