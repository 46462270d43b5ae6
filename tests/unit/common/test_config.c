/*
 * Tests for common/config*.c (the settings loader): the value parsers,
 * flags, environment, the YAML file, defaults, their precedence, validation
 * messages and the getters.
 *
 * cfg_load reports through stderr and prints --help/--version to stdout, so
 * every load runs with fds 1 and 2 redirected into temporary files and the
 * tests compare what was printed.
 */
#include <check.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/config.h"

#ifdef DROVER_VERSION
#define EXPECT_VERSION DROVER_VERSION
#else
#define EXPECT_VERSION "dev"
#endif

static const char *check_hostport(const char *v)
{
    return strchr(v, ':') ? NULL : "must be host:port";
}

static const struct cfg_opt T[] = {
    { "listen", "DROVER_T_LISTEN", CFG_STRING, "127.0.0.1:8443", 0, 0,
      "address to listen on", check_hostport },
    { "data-dir", "DROVER_T_DATA_DIR", CFG_STRING, "./drover-data", 0, 0,
      "where state is kept" },
    { "server-url", "DROVER_T_SERVER_URL", CFG_STRING, NULL, 0, 0,
      "what agents dial" },
    { "ping-interval", "DROVER_T_PING_INTERVAL", CFG_DURATION, "5s", 100,
      3600000, "keepalive period" },
    { "workers", "DROVER_T_WORKERS", CFG_INT, "4", 1, 64, "worker threads" },
    { "insecure", "DROVER_T_INSECURE", CFG_BOOL, "false", 0, 0,
      "skip verification" },
    { "max-body", "DROVER_T_MAX_BODY", CFG_SIZE, "1MiB", 1024, 1 << 30,
      "largest request body" },
    { "retries", NULL, CFG_INT, NULL, 0, 0, "how often to retry" },
    { "peers", "DROVER_T_PEERS", CFG_STRING, NULL, 0, 0, "other replicas" },
};
#define NT (sizeof T / sizeof *T)

/* ---- harness ---------------------------------------------------------- */

static char g_out[16384], g_err[16384];
static char g_path[64];         /* the current temporary YAML file */

struct cap {
    int fd, saved, tmp;
};

static void cap_start(struct cap *k, int fd)
{
    char path[] = "/tmp/drover-cap-XXXXXX";

    fflush(stdout);
    fflush(stderr);
    k->tmp = mkstemp(path);
    ck_assert_int_ge(k->tmp, 0);
    unlink(path);
    k->fd = fd;
    k->saved = dup(fd);
    ck_assert_int_ge(k->saved, 0);
    ck_assert_int_ge(dup2(k->tmp, fd), 0);
}

static void cap_end(struct cap *k, char *out, size_t cap)
{
    fflush(stdout);
    fflush(stderr);
    dup2(k->saved, k->fd);
    close(k->saved);
    lseek(k->tmp, 0, SEEK_SET);
    ssize_t n = read(k->tmp, out, cap - 1);
    close(k->tmp);
    out[n < 0 ? 0 : n] = '\0';
}

/* cfg_load with argv = "drover-test" + args (NULL-terminated). */
static int run_opts(struct cfg *c, const struct cfg_opt *opts, size_t n,
                    const char *const *args)
{
    char *argv[32] = { "drover-test" };
    int argc = 1;
    struct cap o, e;

    while (args[argc - 1]) {
        ck_assert_int_lt(argc, 31);
        argv[argc] = (char *)args[argc - 1];
        argc++;
    }
    cap_start(&o, 1);
    cap_start(&e, 2);
    int rc = cfg_load(c, opts, n, "drover-test", "run the test", argc, argv);
    cap_end(&e, g_err, sizeof g_err);
    cap_end(&o, g_out, sizeof g_out);
    return rc;
}
#define RUN(c, ...) run_opts((c), T, NT, (const char *const[]){ __VA_ARGS__ })

/* Writes text to a fresh .yaml file whose path is left in g_path (the
 * previous one is removed: one file per test at a time). */
static const char *yaml(const char *text)
{
    if (g_path[0])
        unlink(g_path);
    snprintf(g_path, sizeof g_path, "/tmp/drover-cfg-XXXXXX.yaml");
    int fd = mkstemps(g_path, 5);
    ck_assert_int_ge(fd, 0);
    size_t len = strlen(text);
    ck_assert_int_eq(write(fd, text, len), (ssize_t)len);
    close(fd);
    return g_path;
}

static void unset_env(void)
{
    for (size_t i = 0; i < NT; i++)
        if (T[i].env)
            unsetenv(T[i].env);
}

static void setup(void)
{
    unset_env();
    g_path[0] = '\0';
}

static void teardown(void)
{
    unset_env();
    if (g_path[0])
        unlink(g_path);
}

/* Expects rc 2 and exactly one line "drover-test: <msg>" on stderr. */
static void expect_error(int rc, const char *msg)
{
    char want[2048];
    snprintf(want, sizeof want, "drover-test: %s\n", msg);
    ck_assert_int_eq(rc, 2);
    ck_assert_str_eq(g_err, want);
}

/* ---- value parsers ---------------------------------------------------- */

START_TEST(t_duration_valid)
{
    static const struct { const char *s; uint64_t ms; } ok[] = {
        { "0", 0 }, { "0s", 0 }, { "0ms", 0 }, { "1ms", 1 }, { "500ms", 500 },
        { "5s", 5000 }, { "1m", 60000 }, { "2h", 7200000 },
        { "1m30s", 90000 }, { "1h1m1s1ms", 3661001 }, { "30s1m", 90000 },
        { "007s", 7000 }, { "1s1s", 2000 },
        { "18446744073709551615ms", UINT64_MAX },
        { "5124095576030h", 5124095576030ULL * 3600000ULL },
    };
    for (size_t i = 0; i < sizeof ok / sizeof *ok; i++) {
        uint64_t ms = 12345;
        ck_assert_msg(cfg_parse_duration(ok[i].s, &ms) == 0, "%s", ok[i].s);
        ck_assert_msg(ms == ok[i].ms, "%s -> %llu", ok[i].s,
                      (unsigned long long)ms);
    }
}
END_TEST

START_TEST(t_duration_invalid)
{
    static const char *const bad[] = {
        "", "5", "10", "00", "5x", "s", "ms", "h", "-5s", "+5s", " 5s", "5s ",
        "5 s", "1.5s", "5S", "5sm", "5msec", "1m30", "0ms0", "5hh",
        "18446744073709551616ms",          /* the number itself overflows */
        "5124095576031h",                  /* the product overflows */
        "18446744073709551615ms1ms",       /* the sum overflows */
        "99999999999999999999999999s",
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        uint64_t ms = 777;
        ck_assert_msg(cfg_parse_duration(bad[i], &ms) == -1, "%s", bad[i]);
        ck_assert_msg(ms == 777, "%s changed the output", bad[i]);
    }
    uint64_t ms;
    ck_assert_int_eq(cfg_parse_duration(NULL, &ms), -1);
}
END_TEST

START_TEST(t_size_valid)
{
    static const struct { const char *s; uint64_t b; } ok[] = {
        { "0", 0 }, { "1", 1 }, { "4096", 4096 }, { "1B", 1 },
        { "1K", 1024 }, { "1KiB", 1024 }, { "256KiB", 262144 },
        { "4M", 4194304 }, { "4MiB", 4194304 }, { "1G", 1073741824 },
        { "1GiB", 1073741824 }, { "0GiB", 0 },
        { "18446744073709551615", UINT64_MAX },
        { "17179869183GiB", 17179869183ULL << 30 },
        { "18014398509481983KiB", 18014398509481983ULL << 10 },
    };
    for (size_t i = 0; i < sizeof ok / sizeof *ok; i++) {
        uint64_t b = 12345;
        ck_assert_msg(cfg_parse_size(ok[i].s, &b) == 0, "%s", ok[i].s);
        ck_assert_msg(b == ok[i].b, "%s -> %llu", ok[i].s, (unsigned long long)b);
    }
}
END_TEST

START_TEST(t_size_invalid)
{
    static const char *const bad[] = {
        "", "B", "KiB", "1KB", "1kib", "1k", "1 KiB", " 1", "1 ", "-1", "+1",
        "1.5MiB", "1MiBx", "1Ki", "1i", "1TiB", "1GB", "0x10",
        "18446744073709551616",            /* overflows as a number */
        "17179869184GiB",                  /* overflows after the shift */
        "18014398509481984KiB",
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        uint64_t b = 777;
        ck_assert_msg(cfg_parse_size(bad[i], &b) == -1, "%s", bad[i]);
        ck_assert_msg(b == 777, "%s changed the output", bad[i]);
    }
    uint64_t b;
    ck_assert_int_eq(cfg_parse_size(NULL, &b), -1);
}
END_TEST

START_TEST(t_bool_words)
{
    static const char *const yes[] = { "true", "TRUE", "True", "yes", "Yes",
                                       "on", "ON", "1" };
    static const char *const no[] = { "false", "FALSE", "no", "NO", "off",
                                      "Off", "0" };
    static const char *const bad[] = { "", "2", "t", "f", "y", "n", "tru",
                                       "yess", " true", "true ", "01", "-1" };
    bool b;
    for (size_t i = 0; i < sizeof yes / sizeof *yes; i++) {
        b = false;
        ck_assert_msg(cfg_parse_bool(yes[i], &b) == 0 && b, "%s", yes[i]);
    }
    for (size_t i = 0; i < sizeof no / sizeof *no; i++) {
        b = true;
        ck_assert_msg(cfg_parse_bool(no[i], &b) == 0 && !b, "%s", no[i]);
    }
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        b = true;
        ck_assert_msg(cfg_parse_bool(bad[i], &b) == -1 && b, "%s", bad[i]);
    }
    ck_assert_int_eq(cfg_parse_bool(NULL, &b), -1);
}
END_TEST

/* ---- flags ------------------------------------------------------------ */

START_TEST(t_defaults_only)
{
    struct cfg c;
    ck_assert_int_eq(RUN(&c, NULL), 0);
    ck_assert_str_eq(g_err, "");
    ck_assert_str_eq(cfg_str(&c, "listen"), "127.0.0.1:8443");
    ck_assert_str_eq(cfg_source(&c, "listen"), "default");
    ck_assert_ptr_null(cfg_str(&c, "server-url"));
    ck_assert_ptr_null(cfg_source(&c, "server-url"));
    ck_assert_uint_eq(cfg_duration_ms(&c, "ping-interval"), 5000);
    ck_assert_int_eq(cfg_int(&c, "workers"), 4);
    ck_assert(!cfg_bool(&c, "insecure"));
    ck_assert_uint_eq(cfg_size(&c, "max-body"), 1048576);
    ck_assert_int_eq(cfg_int(&c, "retries"), 0);     /* unset */
    ck_assert_ptr_null(c.file);
    cfg_free(&c);
}
END_TEST

START_TEST(t_flag_forms)
{
    struct cfg c;
    ck_assert_int_eq(RUN(&c, "--listen", "0.0.0.0:1", "--workers=8",
                         "--insecure", "--ping-interval", "1m30s",
                         "--max-body=4MiB", "--retries", "-3",
                         "--data-dir=", NULL), 0);
    ck_assert_str_eq(g_err, "");
    ck_assert_str_eq(cfg_str(&c, "listen"), "0.0.0.0:1");
    ck_assert_int_eq(cfg_int(&c, "workers"), 8);
    ck_assert(cfg_bool(&c, "insecure"));
    ck_assert_uint_eq(cfg_duration_ms(&c, "ping-interval"), 90000);
    ck_assert_uint_eq(cfg_size(&c, "max-body"), 4 << 20);
    ck_assert_int_eq(cfg_int(&c, "retries"), -3);     /* "-3" is a value */
    ck_assert_str_eq(cfg_str(&c, "data-dir"), "");   /* "--k=" sets empty */
    const char *keys[] = { "listen", "workers", "insecure", "ping-interval",
                           "max-body", "retries", "data-dir" };
    for (size_t i = 0; i < sizeof keys / sizeof *keys; i++)
        ck_assert_str_eq(cfg_source(&c, keys[i]), "flag");
    cfg_free(&c);
}
END_TEST

START_TEST(t_flag_bool_forms)
{
    struct cfg c;
    ck_assert_int_eq(RUN(&c, "--insecure=false", NULL), 0);
    ck_assert(!cfg_bool(&c, "insecure"));
    cfg_free(&c);
    ck_assert_int_eq(RUN(&c, "--insecure", "no", NULL), 0);
    ck_assert(!cfg_bool(&c, "insecure"));
    cfg_free(&c);
    /* a bare bool does not swallow the next flag */
    ck_assert_int_eq(RUN(&c, "--insecure", "--workers", "3", NULL), 0);
    ck_assert(cfg_bool(&c, "insecure"));
    ck_assert_int_eq(cfg_int(&c, "workers"), 3);
    cfg_free(&c);
    expect_error(RUN(&c, "--insecure=maybe", NULL),
                 "invalid insecure \"maybe\" (from flag --insecure): not a "
                 "boolean (true/false, yes/no, on/off, 1/0)");
    expect_error(RUN(&c, "--insecure", "maybe", NULL),
                 "invalid insecure \"maybe\" (from flag --insecure): not a "
                 "boolean (true/false, yes/no, on/off, 1/0)");
}
END_TEST

START_TEST(t_flag_repeat_last_wins)
{
    struct cfg c;
    ck_assert_int_eq(RUN(&c, "--workers", "2", "--workers=9", NULL), 0);
    ck_assert_int_eq(cfg_int(&c, "workers"), 9);
    cfg_free(&c);
}
END_TEST

START_TEST(t_unknown_flag)
{
    struct cfg c;
    expect_error(RUN(&c, "--lisen", "x", NULL),
                 "unknown flag --lisen (see --help)");
    expect_error(RUN(&c, "--lisen=secret", NULL),
                 "unknown flag --lisen (see --help)");
    expect_error(RUN(&c, "-x", NULL), "unknown flag -x (see --help)");
    expect_error(RUN(&c, "--", NULL), "unknown flag -- (see --help)");
    expect_error(RUN(&c, "--=v", NULL), "unknown flag --=v (see --help)");
    /* a prefix of a key is not the key */
    expect_error(RUN(&c, "--work", "3", NULL),
                 "unknown flag --work (see --help)");
    /* and the failure leaves nothing behind to free */
    ck_assert_ptr_null(c.values);
    ck_assert_uint_eq(c.nopts, 0);
    cfg_free(&c);
}
END_TEST

START_TEST(t_missing_value)
{
    struct cfg c;
    expect_error(RUN(&c, "--listen", NULL),
                 "missing value for --listen (see --help)");
    expect_error(RUN(&c, "--listen", "--workers", "3", NULL),
                 "missing value for --listen (see --help)");
    expect_error(RUN(&c, "--config", NULL),
                 "missing value for --config (see --help)");
    expect_error(RUN(&c, "--config=", NULL),
                 "missing value for --config (see --help)");
}
END_TEST

START_TEST(t_positional)
{
    struct cfg c;
    expect_error(RUN(&c, "serve", NULL),
                 "unexpected argument \"serve\" (see --help)");
    expect_error(RUN(&c, "--workers", "3", "extra", NULL),
                 "unexpected argument \"extra\" (see --help)");
    expect_error(RUN(&c, "-", NULL), "unexpected argument \"-\" (see --help)");
}
END_TEST

/* The column where the help text starts on an option line. */
static long help_column(const char *line)
{
    const char *p = strstr(line + 2, "  ");
    if (!p)
        return -1;
    while (*p == ' ')
        p++;
    return p - line;
}

START_TEST(t_help)
{
    struct cfg c;
    /* help wins even over a bad value: validation never runs */
    ck_assert_int_eq(RUN(&c, "--workers=abc", "--help", NULL), 1);
    ck_assert_str_eq(g_err, "");
    ck_assert_ptr_null(c.values);
    ck_assert(strncmp(g_out, "drover-test - run the test\n", 27) == 0);
    ck_assert_ptr_nonnull(strstr(g_out, "  --listen VALUE"));
    ck_assert_ptr_nonnull(strstr(g_out, "address to listen on (env "
                                 "DROVER_T_LISTEN, default 127.0.0.1:8443)\n"));
    ck_assert_ptr_nonnull(strstr(g_out, "what agents dial (env "
                                 "DROVER_T_SERVER_URL)\n"));
    ck_assert_ptr_nonnull(strstr(g_out, "how often to retry\n"));
    ck_assert_ptr_nonnull(strstr(g_out, "--config FILE"));
    ck_assert_ptr_nonnull(strstr(g_out, "--version"));

    /* every option line, and the built-in ones, start their help together */
    long col = -1;
    int lines = 0;
    for (char *l = strchr(g_out, '\n') + 1; *l; l = strchr(l, '\n') + 1) {
        long here = help_column(l);
        ck_assert_int_gt(here, 0);
        if (col < 0)
            col = here;
        ck_assert_int_eq(here, col);
        lines++;
    }
    ck_assert_int_eq(lines, (int)NT + 3);

    char first[sizeof g_out];
    memcpy(first, g_out, sizeof g_out);
    ck_assert_int_eq(RUN(&c, "-h", NULL), 1);
    ck_assert_str_eq(g_out, first);
}
END_TEST

/* An option with no help, env or default gets a bare line, no blanks. */
START_TEST(t_help_bare)
{
    static const struct cfg_opt bare[] = {
        { "plain", NULL, CFG_STRING, NULL, 0, 0, NULL },
        { "with-default", NULL, CFG_INT, "3", 0, 0, NULL },
    };
    struct cfg c;
    ck_assert_int_eq(run_opts(&c, bare, 2,
                              (const char *const[]){ "--help", NULL }), 1);
    ck_assert_ptr_nonnull(strstr(g_out, "\n  --plain VALUE\n"));
    ck_assert_ptr_nonnull(strstr(g_out, "\n  --with-default VALUE  (default 3)\n"));
    ck_assert_ptr_null(strstr(g_out, " \n"));
}
END_TEST

START_TEST(t_version)
{
    struct cfg c;
    ck_assert_int_eq(RUN(&c, "--version", NULL), 1);
    ck_assert_str_eq(g_out, "drover-test " EXPECT_VERSION "\n");
    ck_assert_str_eq(g_err, "");
    ck_assert_ptr_null(c.values);
}
END_TEST

START_TEST(t_no_options)
{
    struct cfg c;
    ck_assert_int_eq(run_opts(&c, NULL, 0, (const char *const[]){ NULL }), 0);
    cfg_free(&c);
    ck_assert_int_eq(run_opts(&c, NULL, 0,
                              (const char *const[]){ "--x", NULL }), 2);
    ck_assert_str_eq(g_err, "drover-test: unknown flag --x (see --help)\n");
}
END_TEST

/* ---- precedence and the environment ----------------------------------- */

START_TEST(t_precedence)
{
    struct cfg c;
    const char *path = yaml("# settings\nworkers: 3\nlisten: file:1\n");

    setenv("DROVER_T_WORKERS", "5", 1);
    setenv("DROVER_T_LISTEN", "env:1", 1);
    ck_assert_int_eq(RUN(&c, "--config", path, "--workers", "7",
                         "--listen=flag:1", NULL), 0);
    ck_assert_int_eq(cfg_int(&c, "workers"), 7);
    ck_assert_str_eq(cfg_source(&c, "workers"), "flag");
    ck_assert_str_eq(cfg_str(&c, "listen"), "flag:1");
    ck_assert_str_eq(c.file, path);
    cfg_free(&c);

    ck_assert_int_eq(RUN(&c, "--config", path, NULL), 0);
    ck_assert_int_eq(cfg_int(&c, "workers"), 5);
    ck_assert_str_eq(cfg_source(&c, "workers"), "env");
    ck_assert_str_eq(cfg_str(&c, "listen"), "env:1");
    cfg_free(&c);

    unset_env();
    ck_assert_int_eq(RUN(&c, "--config", path, NULL), 0);
    ck_assert_int_eq(cfg_int(&c, "workers"), 3);
    ck_assert_str_eq(cfg_source(&c, "workers"), "file");
    ck_assert_int_eq(c.lines[4], 2);
    ck_assert_str_eq(cfg_str(&c, "listen"), "file:1");
    cfg_free(&c);

    ck_assert_int_eq(RUN(&c, NULL), 0);
    ck_assert_int_eq(cfg_int(&c, "workers"), 4);
    ck_assert_str_eq(cfg_source(&c, "workers"), "default");
    ck_assert_int_eq(c.lines[4], 0);
    cfg_free(&c);
}
END_TEST

START_TEST(t_env_values)
{
    struct cfg c;
    setenv("DROVER_T_PING_INTERVAL", "250ms", 1);
    setenv("DROVER_T_INSECURE", "yes", 1);
    setenv("DROVER_T_MAX_BODY", "2K", 1);
    setenv("DROVER_T_DATA_DIR", "", 1);     /* set to empty, not unset */
    ck_assert_int_eq(RUN(&c, NULL), 0);
    ck_assert_uint_eq(cfg_duration_ms(&c, "ping-interval"), 250);
    ck_assert(cfg_bool(&c, "insecure"));
    ck_assert_uint_eq(cfg_size(&c, "max-body"), 2048);
    ck_assert_str_eq(cfg_str(&c, "data-dir"), "");
    ck_assert_str_eq(cfg_source(&c, "data-dir"), "env");
    cfg_free(&c);
}
END_TEST

START_TEST(t_env_errors)
{
    struct cfg c;
    setenv("DROVER_T_PING_INTERVAL", "5x", 1);
    expect_error(RUN(&c, NULL),
                 "invalid ping-interval \"5x\" (from env "
                 "DROVER_T_PING_INTERVAL): not a duration (e.g. 500ms, 5s, 1m)");
    unset_env();
    setenv("DROVER_T_WORKERS", "", 1);      /* empty is invalid when typed */
    expect_error(RUN(&c, NULL),
                 "invalid workers \"\" (from env DROVER_T_WORKERS): "
                 "not an integer");
    unset_env();
    setenv("DROVER_T_MAX_BODY", "lots", 1);
    expect_error(RUN(&c, NULL),
                 "invalid max-body \"lots\" (from env DROVER_T_MAX_BODY): "
                 "not a size (e.g. 512KiB, 4MiB, 1GiB)");
    /* a flag hides a bad environment value: only survivors are checked */
    ck_assert_int_eq(RUN(&c, "--max-body", "2KiB", NULL), 0);
    cfg_free(&c);
}
END_TEST

/* ---- validation ------------------------------------------------------- */

START_TEST(t_ranges)
{
    static const struct { const char *flag; int ok; const char *why; } r[] = {
        { "--workers=1", 1, NULL }, { "--workers=64", 1, NULL },
        { "--workers=0", 0, "must be between 1 and 64" },
        { "--workers=65", 0, "must be between 1 and 64" },
        { "--workers=-1", 0, "must be between 1 and 64" },
        { "--ping-interval=100ms", 1, NULL }, { "--ping-interval=1h", 1, NULL },
        { "--ping-interval=99ms", 0, "must be between 100ms and 1h" },
        { "--ping-interval=1h1ms", 0, "must be between 100ms and 1h" },
        { "--ping-interval=0", 0, "must be between 100ms and 1h" },
        { "--max-body=1KiB", 1, NULL }, { "--max-body=1GiB", 1, NULL },
        { "--max-body=1023", 0, "must be between 1KiB and 1GiB" },
        { "--max-body=1073741825", 0, "must be between 1KiB and 1GiB" },
        /* no bounds at all: anything in int64 */
        { "--retries=9223372036854775807", 1, NULL },
        { "--retries=-9223372036854775808", 1, NULL },
        { "--retries=+5", 1, NULL },
    };
    for (size_t i = 0; i < sizeof r / sizeof *r; i++) {
        struct cfg c;
        int rc = RUN(&c, r[i].flag, NULL);
        ck_assert_msg(rc == (r[i].ok ? 0 : 2), "%s: rc %d", r[i].flag, rc);
        if (r[i].ok) {
            cfg_free(&c);
            continue;
        }
        ck_assert_msg(strstr(g_err, r[i].why), "%s: %s", r[i].flag, g_err);
    }
    struct cfg c;
    ck_assert_int_eq(RUN(&c, "--retries=-9223372036854775808", NULL), 0);
    ck_assert(cfg_int(&c, "retries") == INT64_MIN);
    cfg_free(&c);
}
END_TEST

START_TEST(t_int_invalid)
{
    static const char *const bad[] = {
        "--retries=abc", "--retries=1.5", "--retries= 1", "--retries=1 ",
        "--retries=0x10", "--retries=", "--retries=-",
        "--retries=9223372036854775808", "--retries=-9223372036854775809",
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        struct cfg c;
        ck_assert_int_eq(RUN(&c, bad[i], NULL), 2);
        ck_assert_msg(strstr(g_err, "(from flag --retries): not an integer\n"),
                      "%s: %s", bad[i], g_err);
    }
}
END_TEST

START_TEST(t_check_callback)
{
    struct cfg c;
    expect_error(RUN(&c, "--listen", "nocolon", NULL),
                 "invalid listen \"nocolon\" (from flag --listen): "
                 "must be host:port");
}
END_TEST

START_TEST(t_all_errors_reported)
{
    struct cfg c;
    ck_assert_int_eq(RUN(&c, "--workers=0", "--insecure=2", NULL), 2);
    ck_assert_str_eq(g_err,
        "drover-test: invalid workers \"0\" (from flag --workers): must be "
        "between 1 and 64\n"
        "drover-test: invalid insecure \"2\" (from flag --insecure): not a "
        "boolean (true/false, yes/no, on/off, 1/0)\n");
}
END_TEST

START_TEST(t_value_escaped)
{
    struct cfg c;
    setenv("DROVER_T_WORKERS", "1\n\"2\\", 1);
    expect_error(RUN(&c, NULL),
                 "invalid workers \"1\\x0a\\\"2\\\\\" (from env "
                 "DROVER_T_WORKERS): not an integer");
    char big[300];
    memset(big, '9', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    setenv("DROVER_T_WORKERS", big, 1);
    ck_assert_int_eq(RUN(&c, NULL), 2);
    char want[200];
    snprintf(want, sizeof want, "\"%.80s...\" (from env", big);
    ck_assert_msg(strstr(g_err, want), "%s", g_err);
}
END_TEST

START_TEST(t_bad_default)
{
    static const struct cfg_opt bad[] = {
        { "timeout", "DROVER_T_TIMEOUT", CFG_DURATION, "5", 0, 0, "oops" },
    };
    struct cfg c;
    ck_assert_int_eq(run_opts(&c, bad, 1, (const char *const[]){ NULL }), 2);
    ck_assert_str_eq(g_err, "drover-test: invalid timeout \"5\" (from default): "
                            "not a duration (e.g. 500ms, 5s, 1m)\n");
}
END_TEST

/* ---- the file --------------------------------------------------------- */

START_TEST(t_file_server_config)
{
    struct cfg c;
    const char *path = yaml(
        "# drover-server settings\n"
        "listen: \"0.0.0.0:8443\"   # all interfaces\n"
        "data-dir: '/var/lib/drover'\n"
        "server-url: https://drover.example.com\n"
        "ping-interval: 10s\n"
        "workers: 16\n"
        "insecure: no\n"
        "max-body: 8MiB\n"
        "peers:\n"
        "  - https://a.example.com\n"
        "  - https://b.example.com\n");
    ck_assert_int_eq(RUN(&c, "--config", path, NULL), 0);
    ck_assert_str_eq(g_err, "");
    ck_assert_str_eq(cfg_str(&c, "listen"), "0.0.0.0:8443");
    ck_assert_str_eq(cfg_str(&c, "data-dir"), "/var/lib/drover");
    ck_assert_str_eq(cfg_str(&c, "server-url"), "https://drover.example.com");
    ck_assert_uint_eq(cfg_duration_ms(&c, "ping-interval"), 10000);
    ck_assert_int_eq(cfg_int(&c, "workers"), 16);
    ck_assert(!cfg_bool(&c, "insecure"));
    ck_assert_uint_eq(cfg_size(&c, "max-body"), 8 << 20);
    ck_assert_str_eq(cfg_str(&c, "peers"),
                     "https://a.example.com,https://b.example.com");
    ck_assert_str_eq(cfg_source(&c, "peers"), "file");
    ck_assert_int_eq(c.lines[8], 9);
    ck_assert_ptr_null(cfg_source(&c, "retries"));
    cfg_free(&c);
}
END_TEST

START_TEST(t_file_lists)
{
    struct cfg c;
    ck_assert_int_eq(RUN(&c, "--config", yaml("peers: [a, 'b', \"c\"]\n"),
                         NULL), 0);
    ck_assert_str_eq(cfg_str(&c, "peers"), "a,b,c");
    cfg_free(&c);
    unlink(g_path);
    ck_assert_int_eq(RUN(&c, "--config", yaml("peers: []\n"), NULL), 0);
    ck_assert_ptr_null(cfg_str(&c, "peers"));        /* empty means unset */
    cfg_free(&c);
    unlink(g_path);
    ck_assert_int_eq(RUN(&c, "--config", yaml("peers: [one]\n"), NULL), 0);
    ck_assert_str_eq(cfg_str(&c, "peers"), "one");
    cfg_free(&c);
}
END_TEST

/* Loads text as the --config file and expects "PATH:msg" on stderr. */
static void expect_file_error(const char *text, const char *msg)
{
    struct cfg c;
    char want[1024];
    const char *path = yaml(text);
    snprintf(want, sizeof want, "%s:%s", path, msg);
    expect_error(RUN(&c, "--config", path, NULL), want);
    unlink(g_path);
    g_path[0] = '\0';
}

START_TEST(t_file_errors)
{
    expect_file_error("listen: a:1\ndata-dir: /x\nlistn: b\n",
                      "3: unknown setting \"listn\"");
    expect_file_error("listen:\n  host: a\n  port: 1\n",
                      "2: \"listen\": nested settings are not supported");
    expect_file_error("listen: {host: a}\n",
                      "1: \"listen\": nested settings are not supported");
    expect_file_error("workers: 1\n---\nworkers: 2\n",
                      "2: only one document is allowed");
    expect_file_error("workers: 1\nworkers: 2\n",
                      "2: duplicate setting \"workers\" (first on line 1)");
    expect_file_error("listen: &l a:1\nserver-url: *l\n",
                      "2: aliases are not supported");
    expect_file_error("just a string\n", "1: expected a mapping of settings");
    expect_file_error("- listen\n- a:1\n", "1: expected a mapping of settings");
    expect_file_error("[a, b]: x\n", "1: a setting name must be a plain string");
    expect_file_error("~: x\n", "1: empty setting name");
    expect_file_error("\"\": x\n", "1: empty setting name");
    expect_file_error("peers: [a, [b]]\n",
                      "1: \"peers\": a list may hold only plain values");
    expect_file_error("peers:\n  - a\n  - {b: c}\n",
                      "3: \"peers\": a list may hold only plain values");
    expect_file_error("peers: [a, ~]\n", "1: \"peers\": empty list item");
    expect_file_error("peers: [a, 'b,c']\n",
                      "1: \"peers\": a list item cannot contain a comma");
    expect_file_error("listen: \"a\\0b\"\n", "1: NUL byte in a value");
}
END_TEST

START_TEST(t_file_syntax_errors)
{
    static const char *const bad[] = {
        "listen: a\n  data-dir: b\n",          /* bad indentation */
        "listen: a\ndata-dir: \"unterminated\n",
        "listen: [a, b\n",
        "listen: a\n\tworkers: 2\n",            /* a tab */
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        struct cfg c;
        char want[128];
        const char *path = yaml(bad[i]);
        snprintf(want, sizeof want, "drover-test: %s:", path);
        ck_assert_int_eq(RUN(&c, "--config", path, NULL), 2);
        ck_assert_msg(strncmp(g_err, want, strlen(want)) == 0, "%s", g_err);
        ck_assert_msg(strstr(g_err, ": invalid YAML: "), "%s", g_err);
        unlink(g_path);
    }
    expect_file_error("listen: a\n  data-dir: b\n",
                      "2: invalid YAML: mapping values are not allowed in "
                      "this context");
}
END_TEST

START_TEST(t_file_unset_values)
{
    struct cfg c;
    const char *path = yaml("listen:\nserver-url: ~\ndata-dir: \"\"\n"
                            "workers: null\npeers: NULL\n");
    ck_assert_int_eq(RUN(&c, "--config", path, NULL), 0);
    ck_assert_str_eq(cfg_str(&c, "listen"), "127.0.0.1:8443");
    ck_assert_str_eq(cfg_source(&c, "listen"), "default");
    ck_assert_ptr_null(cfg_str(&c, "server-url"));
    ck_assert_str_eq(cfg_str(&c, "data-dir"), "./drover-data");
    ck_assert_int_eq(cfg_int(&c, "workers"), 4);
    ck_assert_ptr_null(cfg_str(&c, "peers"));
    cfg_free(&c);
}
END_TEST

START_TEST(t_file_empty_documents)
{
    static const char *const empty[] = { "", "# only a comment\n", "---\n",
                                         "--- ~\n", "{}\n", "---\n...\n" };
    for (size_t i = 0; i < sizeof empty / sizeof *empty; i++) {
        struct cfg c;
        ck_assert_msg(RUN(&c, "--config", yaml(empty[i]), NULL) == 0, "%s: %s",
                      empty[i], g_err);
        ck_assert_str_eq(cfg_source(&c, "workers"), "default");
        cfg_free(&c);
        unlink(g_path);
    }
}
END_TEST

START_TEST(t_file_value_errors)
{
    struct cfg c;
    char want[256];
    const char *path = yaml("listen: a:1\nworkers: lots\n");
    snprintf(want, sizeof want, "invalid workers \"lots\" (from file %s:2): "
             "not an integer", path);
    expect_error(RUN(&c, "--config", path, NULL), want);
    /* a flag hides the bad file value */
    ck_assert_int_eq(RUN(&c, "--config", path, "--workers", "2", NULL), 0);
    cfg_free(&c);
    /* ... but not an unknown key: the file itself is wrong */
    ck_assert_int_eq(RUN(&c, "--config", yaml("nope: 1\n"), "--workers", "2",
                         NULL), 2);
}
END_TEST

START_TEST(t_file_unreadable)
{
    struct cfg c;
    expect_error(RUN(&c, "--config", "/nonexistent/drover.yaml", NULL),
                 "cannot read config file \"/nonexistent/drover.yaml\": "
                 "No such file or directory");
    expect_error(RUN(&c, "--config=/", NULL),
                 "cannot read config file \"/\": Is a directory");
}
END_TEST

/* A file of n bytes of comment lines (valid, empty YAML). */
static const char *yaml_of_size(size_t n)
{
    char *text = malloc(n + 1);
    ck_assert_ptr_nonnull(text);
    for (size_t i = 0; i < n; i++)
        text[i] = i % 64 == 63 ? '\n' : i % 64 == 0 ? '#' : 'x';
    text[n] = '\0';
    const char *path = yaml(text);
    free(text);
    return path;
}

START_TEST(t_file_size_limit)
{
    struct cfg c;
    ck_assert_int_eq(RUN(&c, "--config", yaml_of_size(1 << 20), NULL), 0);
    cfg_free(&c);
    unlink(g_path);
    const char *path = yaml_of_size((1 << 20) + 1);
    char want[256];
    snprintf(want, sizeof want, "config file \"%s\" is larger than 1 MiB", path);
    expect_error(RUN(&c, "--config", path, NULL), want);
}
END_TEST

START_TEST(t_config_flag_last_wins)
{
    struct cfg c;
    ck_assert_int_eq(RUN(&c, "--config", "/nonexistent/a.yaml",
                         "--config", yaml("workers: 9\n"), NULL), 0);
    ck_assert_str_eq(c.file, g_path);
    ck_assert_int_eq(cfg_int(&c, "workers"), 9);
    cfg_free(&c);
}
END_TEST

/* ---- cfg_parse_yaml itself -------------------------------------------- */

struct seen {
    int n;
    char text[512];
    int fail_at;            /* 1-based call that fails; 0 never */
};

static int collect(void *ud, const char *key, const char *value, int line,
                   char *err, size_t errlen)
{
    struct seen *s = ud;
    size_t o = strlen(s->text);
    s->n++;
    snprintf(s->text + o, sizeof s->text - o, "%d:%s=%s;", line, key,
             value ? value : "(null)");
    if (s->n == s->fail_at) {
        snprintf(err, errlen, "nope");
        return -1;
    }
    return 0;
}

START_TEST(t_parse_yaml_callbacks)
{
    struct seen s = { 0 };
    char err[64] = "untouched";
    const char *doc = "a: 1\n\nb: ~\nc: [x, y]\nd: \"\"\ne: []\n";
    ck_assert_int_eq(cfg_parse_yaml(doc, strlen(doc), collect, &s, err,
                                    sizeof err), 0);
    ck_assert_str_eq(err, "");
    ck_assert_str_eq(s.text, "1:a=1;3:b=(null);4:c=x,y;5:d=;6:e=;");

    struct seen f = { .fail_at = 2 };
    ck_assert_int_eq(cfg_parse_yaml(doc, strlen(doc), collect, &f, err,
                                    sizeof err), -1);
    ck_assert_str_eq(err, "3: nope");
    ck_assert_int_eq(f.n, 2);                /* it stopped there */
}
END_TEST

START_TEST(t_parse_yaml_limits)
{
    struct seen s = { 0 };
    char err[8];
    /* a short err buffer is cut, never overrun */
    ck_assert_int_eq(cfg_parse_yaml("x", 1, collect, &s, err, sizeof err), -1);
    ck_assert_str_eq(err, "1: expe");
    /* no err buffer at all */
    ck_assert_int_eq(cfg_parse_yaml("x", 1, collect, &s, NULL, 0), -1);
    ck_assert_int_eq(cfg_parse_yaml(NULL, 0, collect, &s, NULL, 0), 0);
    ck_assert_int_eq(s.n, 0);

    size_t big = (1 << 20) + 1;
    char *doc = malloc(big);
    ck_assert_ptr_nonnull(doc);
    memset(doc, '#', big);
    char msg[64];
    ck_assert_int_eq(cfg_parse_yaml(doc, big, collect, &s, msg, sizeof msg), -1);
    ck_assert_str_eq(msg, "1: larger than 1 MiB");
    ck_assert_int_eq(cfg_parse_yaml(doc, big - 1, collect, &s, msg,
                                    sizeof msg), 0);
    free(doc);
    /* a NUL inside the buffer is an error, not the end of the document */
    ck_assert_int_eq(cfg_parse_yaml("a: 1\0b: 2", 10, collect, &s, msg,
                                    sizeof msg), -1);
}
END_TEST

/* ---- getters and cfg_free --------------------------------------------- */

/* Runs fn in a child with stderr captured; expects it to die of SIGABRT
 * saying msg. A fork of our own, so this works with CK_FORK=no too. */
static void expect_abort(void (*fn)(void), const char *msg)
{
    int p[2];
    ck_assert_int_eq(pipe(p), 0);
    fflush(NULL);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        dup2(p[1], 2);
        close(p[0]);
        fn();
        _exit(0);
    }
    close(p[1]);
    char out[4096];
    size_t len = 0;
    ssize_t n;
    while ((n = read(p[0], out + len, sizeof out - 1 - len)) > 0)
        len += (size_t)n;
    out[len] = '\0';
    close(p[0]);
    int st;
    ck_assert_int_eq(waitpid(pid, &st, 0), pid);
    ck_assert_msg(WIFSIGNALED(st) && WTERMSIG(st) == SIGABRT, "status %d", st);
    ck_assert_msg(strstr(out, msg), "%s", out);
}

static struct cfg g_cfg;
static void get_unknown(void) { cfg_int(&g_cfg, "nope"); }
static void get_wrong_type(void) { cfg_int(&g_cfg, "listen"); }
static void get_from_zeroed(void)
{
    struct cfg z = { 0 };
    cfg_str(&z, "listen");
}
static void get_source_unknown(void) { cfg_source(&g_cfg, "nope"); }

START_TEST(t_getters_abort)
{
    ck_assert_int_eq(RUN(&g_cfg, NULL), 0);
    expect_abort(get_unknown, "cfg: no setting \"nope\" in the option table");
    expect_abort(get_wrong_type, "cfg: setting \"listen\" read as the wrong type");
    expect_abort(get_from_zeroed, "no setting \"listen\"");
    expect_abort(get_source_unknown, "no setting \"nope\"");
    /* cfg_str reads any type as text */
    ck_assert_str_eq(cfg_str(&g_cfg, "workers"), "4");
    cfg_free(&g_cfg);
}
END_TEST

START_TEST(t_free)
{
    struct cfg z = { 0 };
    cfg_free(&z);
    cfg_free(&z);
    cfg_free(NULL);
    struct cfg c;
    ck_assert_int_eq(RUN(&c, "--config", yaml("workers: 2\n"), NULL), 0);
    cfg_free(&c);
    ck_assert_ptr_null(c.values);
    ck_assert_ptr_null(c.file);
    cfg_free(&c);               /* freeing twice is harmless */
}
END_TEST

Suite *suite_common_config(void)
{
    Suite *s = suite_create("common/config");
    struct { const char *name; const TTest *tests[16]; } groups[] = {
        /* first, so the children it forks to abort (which valgrind checks
         * for leaks as they die) hold no setenv() strings of later tests */
        { "getters", { t_getters_abort, t_free } },
        { "parsers", { t_duration_valid, t_duration_invalid, t_size_valid,
                       t_size_invalid, t_bool_words } },
        { "flags", { t_defaults_only, t_flag_forms, t_flag_bool_forms,
                     t_flag_repeat_last_wins, t_unknown_flag, t_missing_value,
                     t_positional, t_help, t_help_bare, t_version,
                     t_no_options } },
        { "sources", { t_precedence, t_env_values, t_env_errors,
                       t_config_flag_last_wins } },
        { "validation", { t_ranges, t_int_invalid, t_check_callback,
                          t_all_errors_reported, t_value_escaped,
                          t_bad_default } },
        { "file", { t_file_server_config, t_file_lists, t_file_errors,
                    t_file_syntax_errors, t_file_unset_values,
                    t_file_empty_documents, t_file_value_errors,
                    t_file_unreadable, t_file_size_limit } },
        { "yaml", { t_parse_yaml_callbacks, t_parse_yaml_limits } },
    };
    for (size_t g = 0; g < sizeof groups / sizeof *groups; g++) {
        TCase *tc = tcase_create(groups[g].name);
        tcase_add_checked_fixture(tc, setup, teardown);
        for (size_t i = 0; groups[g].tests[i]; i++)
            tcase_add_test(tc, groups[g].tests[i]);
        suite_add_tcase(s, tc);
    }
    return s;
}
