/*
 * cli/args.c: finding commands, flags in every form, argument counts,
 * help for every command, and the bash completion script.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/args.h"

static int parse(struct args *a, bool *noun_only, char *err, const char *line)
{
    static char buf[512];
    static char *argv[32];
    int argc = 0;
    snprintf(buf, sizeof(buf), "%s", line);
    for (char *t = strtok(buf, " "); t && argc < 32; t = strtok(NULL, " "))
        argv[argc++] = t;
    return args_parse(ctl_commands, argc, argv, a, noun_only, err, 256);
}

START_TEST(finds_commands_and_flags)
{
    struct args a;
    bool noun;
    char err[256];
    ck_assert_int_eq(parse(&a, &noun, err, "cluster create prod --snapshot-interval 60 -o json"), 0);
    ck_assert_str_eq(a.cmd->verb, "create");
    ck_assert_int_eq(a.npos, 1);
    ck_assert_str_eq(a.pos[0], "prod");
    ck_assert_str_eq(args_get(&a, "snapshot-interval"), "60");
    ck_assert_str_eq(a.output, "json");
    /* --flag=value, flags before positionals, short flags, "--". */
    ck_assert_int_eq(parse(&a, &noun, err, "member add --role=viewer prod bob"), 0);
    ck_assert_str_eq(args_get(&a, "role"), "viewer");
    ck_assert_str_eq(a.pos[1], "bob");
    ck_assert_int_eq(parse(&a, &noun, err, "member add -r owner prod -- -bob"), 0);
    ck_assert_str_eq(args_get(&a, "role"), "owner");
    ck_assert_str_eq(a.pos[1], "-bob");
    /* Lone nouns and flags without value. */
    ck_assert_int_eq(parse(&a, &noun, err, "login https://x:1 -u admin --insecure"), 0);
    ck_assert_str_eq(a.cmd->noun, "login");
    ck_assert(args_has(&a, "insecure"));
    ck_assert(!args_has(&a, "ca-checksum"));
    ck_assert_int_eq(parse(&a, &noun, err, "apply prod -f -"), 0);
    ck_assert_str_eq(args_get(&a, "file"), "-");
}
END_TEST

START_TEST(refuses_bad_usage)
{
    struct args a;
    bool noun;
    char err[256];
    ck_assert_int_eq(parse(&a, &noun, err, "frobnicate"), -1);
    ck_assert(strstr(err, "unknown command") != NULL);
    ck_assert_int_eq(parse(&a, &noun, err, "cluster explode"), -1);
    ck_assert(!noun);
    ck_assert_int_eq(parse(&a, &noun, err, "cluster"), -1);
    ck_assert(noun);
    ck_assert_int_eq(parse(&a, &noun, err, "cluster get"), -1);
    ck_assert(strstr(err, "missing argument") != NULL);
    ck_assert_int_eq(parse(&a, &noun, err, "cluster get a b"), -1);
    ck_assert(strstr(err, "unexpected argument") != NULL);
    ck_assert_int_eq(parse(&a, &noun, err, "cluster list --bogus"), -1);
    ck_assert(strstr(err, "--bogus") != NULL);
    ck_assert_int_eq(parse(&a, &noun, err, "cluster list -o"), -1);
    ck_assert(strstr(err, "needs a value") != NULL);
    ck_assert_int_eq(parse(&a, &noun, err, "logout --help=yes"), -1);
    ck_assert_int_eq(parse(&a, &noun, err, "cluster list -oj"), -1);
    /* --help skips the argument count. */
    ck_assert_int_eq(parse(&a, &noun, err, "cluster get --help"), 0);
    ck_assert(a.help);
}
END_TEST

START_TEST(help_and_completion_cover_every_command)
{
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    args_bash_completion(ctl_commands, f);
    fclose(f);
    for (const struct cmdspec *c = ctl_commands; c->noun; c++) {
        ck_assert_msg(strstr(text, c->noun) != NULL, "%s", c->noun);
        if (c->verb)
            ck_assert_msg(strstr(text, c->verb) != NULL, "%s", c->verb);
        for (const struct flagspec *fl = c->flags; fl && fl->name; fl++)
            ck_assert_msg(strstr(text, fl->name) != NULL, "%s", fl->name);
        char *h = NULL;
        size_t hl = 0;
        FILE *hf = open_memstream(&h, &hl);
        args_help_cmd(c, hf);
        fclose(hf);
        ck_assert(strstr(h, "Usage: droverctl ") != NULL);
        ck_assert(strstr(h, c->summary) != NULL);
        free(h);
    }
    free(text);
}
END_TEST

Suite *suite_cli_args(void)
{
    Suite *s = suite_create("cli_args");
    TCase *t = tcase_create("args");
    tcase_add_test(t, finds_commands_and_flags);
    tcase_add_test(t, refuses_bad_usage);
    tcase_add_test(t, help_and_completion_cover_every_command);
    suite_add_tcase(s, t);
    return s;
}
