/*
 * args: the command table's parser, help and completion. See args.h.
 */
#include "cli/args.h"

#include <stdio.h>
#include <string.h>

static const struct flagspec global_flags[] = {
    { "output", 'o', true, "output format: table (default), json or yaml" },
    { "help", 'h', false, "show this help" },
    { 0 },
};

static bool is_noun(const struct cmdspec *t, const char *s)
{
    for (; t->noun; t++)
        if (strcmp(t->noun, s) == 0)
            return true;
    return false;
}

static const struct cmdspec *find_cmd(const struct cmdspec *t, const char *noun,
                                      const char *verb)
{
    for (; t->noun; t++) {
        if (strcmp(t->noun, noun) != 0)
            continue;
        if (!t->verb || (verb && strcmp(t->verb, verb) == 0))
            return t;
    }
    return NULL;
}

static const struct flagspec *find_flag(const struct flagspec *f, const char *name,
                                        size_t len, char shortc)
{
    for (; f && f->name; f++) {
        if (shortc ? f->shortc == shortc
                   : strlen(f->name) == len && strncmp(f->name, name, len) == 0)
            return f;
    }
    return NULL;
}

static int set_flag(struct args *out, const struct flagspec *f, const char *val,
                    char *err, size_t errlen)
{
    if (strcmp(f->name, "output") == 0) {
        out->output = val;
        return 0;
    }
    if (strcmp(f->name, "help") == 0) {
        out->help = true;
        return 0;
    }
    for (int i = 0; i < out->nflags; i++)
        if (strcmp(out->fname[i], f->name) == 0) {
            out->fval[i] = val;     /* the last one wins, as in most tools */
            return 0;
        }
    if (out->nflags == ARGS_MAX_FLAGS) {
        snprintf(err, errlen, "too many flags");
        return -1;
    }
    out->fname[out->nflags] = f->name;
    out->fval[out->nflags++] = val;
    return 0;
}

/* One flag at argv[*i]; advances *i past its value. */
static int parse_flag(const struct cmdspec *c, int argc, char **argv, int *i,
                      struct args *out, char *err, size_t errlen)
{
    const char *arg = argv[*i], *name, *eq = NULL;
    size_t len;
    char shortc = 0;
    if (arg[1] == '-') {
        name = arg + 2;
        eq = strchr(name, '=');
        len = eq ? (size_t)(eq - name) : strlen(name);
    } else {
        if (arg[2] != '\0') {
            snprintf(err, errlen, "unknown flag %s (short flags take their value "
                     "as the next argument)", arg);
            return -1;
        }
        name = arg + 1;
        len = 1;
        shortc = arg[1];
    }
    const struct flagspec *f = find_flag(global_flags, name, len, shortc);
    if (!f)
        f = find_flag(c->flags, name, len, shortc);
    if (!f) {
        snprintf(err, errlen, "unknown flag %.*s%.*s", shortc ? 1 : 2, "--", (int)len, name);
        return -1;
    }
    const char *val = "";
    if (f->value) {
        if (eq)
            val = eq + 1;
        else if (*i + 1 < argc)
            val = argv[++*i];
        else {
            snprintf(err, errlen, "flag --%s needs a value", f->name);
            return -1;
        }
    } else if (eq) {
        snprintf(err, errlen, "flag --%s takes no value", f->name);
        return -1;
    }
    return set_flag(out, f, val, err, errlen);
}

int args_parse(const struct cmdspec *table, int argc, char **argv, struct args *out,
               bool *noun_only, char *err, size_t errlen)
{
    memset(out, 0, sizeof(*out));
    *noun_only = false;
    if (argc < 1) {
        snprintf(err, errlen, "no command given");
        return -1;
    }
    const char *verb = argc > 1 && argv[1][0] != '-' ? argv[1] : NULL;
    const struct cmdspec *c = find_cmd(table, argv[0], verb);
    if (!c) {
        if (is_noun(table, argv[0]) && !verb) {
            *noun_only = true;
            for (int i = 1; i < argc; i++)
                if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0)
                    out->help = true;
            snprintf(err, errlen, "%s needs a command", argv[0]);
        } else if (is_noun(table, argv[0]))
            snprintf(err, errlen, "unknown command \"%s %s\"", argv[0], verb);
        else
            snprintf(err, errlen, "unknown command \"%s\"", argv[0]);
        return -1;
    }
    out->cmd = c;
    bool flags_done = false;
    for (int i = c->verb ? 2 : 1; i < argc; i++) {
        if (!flags_done && strcmp(argv[i], "--") == 0) {
            flags_done = true;
        } else if (!flags_done && argv[i][0] == '-' && argv[i][1] != '\0') {
            if (parse_flag(c, argc, argv, &i, out, err, errlen) < 0)
                return -1;
        } else if (out->npos == ARGS_MAX_POS || out->npos == c->max_pos) {
            snprintf(err, errlen, "unexpected argument \"%s\"", argv[i]);
            if (!out->help)
                return -1;
        } else {
            out->pos[out->npos++] = argv[i];
        }
    }
    if (!out->help && out->npos < c->min_pos) {
        snprintf(err, errlen, "missing argument: %s", c->usage);
        return -1;
    }
    return 0;
}

const char *args_get(const struct args *a, const char *name)
{
    for (int i = 0; i < a->nflags; i++)
        if (strcmp(a->fname[i], name) == 0)
            return a->fval[i];
    return NULL;
}

bool args_has(const struct args *a, const char *name)
{
    return args_get(a, name) != NULL;
}

/* ---- help ---- */

static void cmd_name(const struct cmdspec *c, char *buf, size_t cap)
{
    snprintf(buf, cap, "%s%s%s", c->noun, c->verb ? " " : "", c->verb ? c->verb : "");
}

void args_help_all(const struct cmdspec *table, FILE *f)
{
    fprintf(f, "droverctl: the drover command line\n\n"
               "Usage: droverctl <command> [arguments] [flags]\n\nCommands:\n");
    for (const struct cmdspec *c = table; c->noun; c++) {
        char name[64];
        cmd_name(c, name, sizeof(name));
        fprintf(f, "  %-26s %s\n", name, c->summary);
    }
    fprintf(f, "\nGlobal flags:\n"
               "  -o, --output FORMAT        table (default), json or yaml\n"
               "  -h, --help                 help for droverctl or a command\n"
               "      --version              print the version\n"
               "\nEnvironment: DROVER_CONFIG (default ~/.config/drover/config.yaml), "
               "KUBECONFIG.\nExit codes: 0 ok, 1 failed, 2 usage error.\n");
}

void args_help_noun(const struct cmdspec *table, const char *noun, FILE *f)
{
    fprintf(f, "Usage: droverctl %s <command> [arguments] [flags]\n\nCommands:\n", noun);
    for (const struct cmdspec *c = table; c->noun; c++)
        if (strcmp(c->noun, noun) == 0)
            fprintf(f, "  %-16s %s\n", c->verb ? c->verb : "", c->summary);
    fprintf(f, "\nRun \"droverctl %s <command> --help\" for a command's flags.\n", noun);
}

void args_help_cmd(const struct cmdspec *c, FILE *f)
{
    char name[64];
    cmd_name(c, name, sizeof(name));
    fprintf(f, "%s\n\nUsage: droverctl %s%s%s [flags]\n\nFlags:\n", c->summary, name,
            c->usage[0] ? " " : "", c->usage);
    for (const struct flagspec *fl = c->flags; fl && fl->name; fl++) {
        char left[64], sh[8] = "    ";
        if (fl->shortc)
            snprintf(sh, sizeof(sh), "-%c, ", fl->shortc);
        snprintf(left, sizeof(left), "%s--%s%s", sh, fl->name, fl->value ? " VALUE" : "");
        fprintf(f, "  %-34s %s\n", left, fl->help);
    }
    for (const struct flagspec *fl = global_flags; fl->name; fl++) {
        char left[64];
        snprintf(left, sizeof(left), "-%c, --%s%s", fl->shortc, fl->name,
                 fl->value ? " FORMAT" : "");
        fprintf(f, "  %-34s %s\n", left, fl->help);
    }
}

/* ---- bash completion ---- */

static void words_for_noun(const struct cmdspec *table, const char *noun, FILE *f)
{
    bool first = true;
    for (const struct cmdspec *c = table; c->noun; c++)
        if (strcmp(c->noun, noun) == 0 && c->verb) {
            fprintf(f, "%s%s", first ? "" : " ", c->verb);
            first = false;
        }
}

static void flags_for(const struct cmdspec *c, FILE *f)
{
    fprintf(f, "--output --help");
    for (const struct flagspec *fl = c->flags; fl && fl->name; fl++)
        fprintf(f, " --%s", fl->name);
}

void args_bash_completion(const struct cmdspec *table, FILE *f)
{
    fprintf(f, "# bash completion for droverctl (generated by droverctl completion bash)\n"
               "_droverctl() {\n"
               "    local cur=${COMP_WORDS[COMP_CWORD]} prev=${COMP_WORDS[COMP_CWORD-1]}\n"
               "    local noun=${COMP_WORDS[1]} verb=${COMP_WORDS[2]} verbs='' words=''\n"
               "    case $prev in\n"
               "        -o|--output) COMPREPLY=($(compgen -W 'table json yaml' -- \"$cur\"));"
               " return;;\n"
               "        -f|--file) COMPREPLY=($(compgen -f -- \"$cur\")); return;;\n"
               "    esac\n"
               "    case $noun in\n");
    const char *last = "";
    for (const struct cmdspec *c = table; c->noun; c++) {
        if (c->verb && strcmp(c->noun, last) != 0) {
            fprintf(f, "        %s) verbs='", c->noun);
            words_for_noun(table, c->noun, f);
            fprintf(f, "';;\n");
        }
        last = c->noun;
    }
    fprintf(f, "    esac\n    if [ \"$COMP_CWORD\" -eq 1 ]; then\n        words='");
    last = "";
    for (const struct cmdspec *c = table; c->noun; c++) {
        if (strcmp(c->noun, last) != 0)
            fprintf(f, "%s%s", last[0] ? " " : "", c->noun);
        last = c->noun;
    }
    fprintf(f, "'\n    elif [ \"$COMP_CWORD\" -eq 2 ] && [ -n \"$verbs\" ]; then\n"
               "        words=$verbs\n"
               "    elif [ \"$COMP_CWORD\" -eq 2 ] && [ \"$noun\" = completion ]; then\n"
               "        words=bash\n    else\n        case \"$noun $verb\" in\n");
    for (const struct cmdspec *c = table; c->noun; c++) {
        fprintf(f, "            \"%s %s\"%s) words='", c->noun, c->verb ? c->verb : "",
                c->verb ? "" : "*");
        flags_for(c, f);
        fprintf(f, "';;\n");
    }
    fprintf(f, "        esac\n    fi\n"
               "    COMPREPLY=($(compgen -W \"$words\" -- \"$cur\"))\n}\n"
               "complete -F _droverctl droverctl\n");
}
