/*
 * droverctl end to end: the real binary against a real drover-server on
 * loopback (SQLite). Login and its failures (wrong password, CA checksum
 * mismatch, usage errors), the config file (0600, DROVER_CONFIG, refused
 * when too open), every cluster/node/member/user command with table, JSON
 * and YAML output, the kubeconfig merge into an existing KUBECONFIG, exit
 * codes, --help on every command, and the shipped completion file.
 */
#include <check.h>
#include <fcntl.h>
#include <poll.h>
#include <pty.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cli/args.h"
#include "cli/yamljson.h"
#include "tests/support/apitest.h"
#include "tests/support/etcdtmp.h"
#include "tests/support/standin.h"

static struct dtest d;
static char cfg_path[400], kube_path[400], url[64];

struct run {
    int code;
    char out[65536], err[8192];
};
static struct run r;

static void setup(void)
{
    apitest_lite_setup(&d);
    snprintf(cfg_path, sizeof(cfg_path), "%s/home/.config/drover/config.yaml", d.dir);
    snprintf(kube_path, sizeof(kube_path), "%s/kube/config", d.dir);
    snprintf(url, sizeof(url), "https://127.0.0.1:%d", d.https_port);
}

static void teardown(void)
{
    apitest_teardown(&d);
}

static void read_into(const char *path, char *buf, size_t cap)
{
    buf[0] = '\0';
    FILE *f = fopen(path, "r");
    if (!f)
        return;
    size_t n = fread(buf, 1, cap - 1, f);
    buf[n] = '\0';
    fclose(f);
}

/* Runs droverctl with argv from the space-separated words of the format,
 * stdin from in (NULL: /dev/null), HOME in the test directory and
 * KUBECONFIG set; extra env may override (e.g. "DROVER_CONFIG=..."). */
static int ctl_env(const char *in, const char *env, const char *fmt, ...)
{
    char line[2048], outp[400], errp[400], inp[400], home[300];
    char *argv[40];
    int argc = 0;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    argv[argc++] = (char *)bin_path("droverctl");
    for (char *t = strtok(line, " "); t && argc < 39; t = strtok(NULL, " "))
        argv[argc++] = t;
    argv[argc] = NULL;
    snprintf(outp, sizeof(outp), "%s/ctl.out", d.dir);
    snprintf(errp, sizeof(errp), "%s/ctl.err", d.dir);
    snprintf(inp, sizeof(inp), "%s/ctl.in", d.dir);
    snprintf(home, sizeof(home), "%s/home", d.dir);
    FILE *f = fopen(inp, "w");
    ck_assert_ptr_nonnull(f);
    fputs(in ? in : "", f);
    fclose(f);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        int i = open(inp, O_RDONLY), o = open(outp, O_WRONLY | O_CREAT | O_TRUNC, 0600),
            e = open(errp, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        dup2(i, 0);
        dup2(o, 1);
        dup2(e, 2);
        setenv("HOME", home, 1);
        setenv("KUBECONFIG", kube_path, 1);
        unsetenv("DROVER_CONFIG");
        if (env) {
            char kv[512];
            snprintf(kv, sizeof(kv), "%s", env);
            char *eq = strchr(kv, '=');
            *eq = '\0';
            setenv(kv, eq + 1, 1);
        }
        execv(argv[0], argv);
        _exit(127);
    }
    int st;
    ck_assert_int_eq(waitpid(pid, &st, 0), pid);
    r.code = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
    read_into(outp, r.out, sizeof(r.out));
    read_into(errp, r.err, sizeof(r.err));
    return r.code;
}
#define ctl(in, ...) ctl_env(in, NULL, __VA_ARGS__)

#define EXPECT_RUN(want, ...) \
    ck_assert_msg(ctl(__VA_ARGS__) == (want), "exit %d, want %d\nstdout: %s\nstderr: %s", \
                  r.code, want, r.out, r.err)
#define HAS(buf, s) ck_assert_msg(strstr(buf, s) != NULL, "no \"%s\" in:\n%s", s, buf)

static void login(void)
{
    char pw[80];
    snprintf(pw, sizeof(pw), "%s\n", d.admin_pw);
    EXPECT_RUN(0, pw, "login %s --username admin --password-stdin --ca-checksum %s", url,
               d.checksum);
}

static json_t *out_json(void)
{
    json_error_t je;
    json_t *j = json_loads(r.out, 0, &je);
    ck_assert_msg(j != NULL, "not JSON (%s):\n%s", je.text, r.out);
    return j;
}

/* ---- tests ---- */

START_TEST(login_errors)
{
    char pw[80], bad[65];
    /* Wrong password: the server's message, exit 1, no config written. */
    EXPECT_RUN(1, "wrong\n", "login %s --username admin --password-stdin --ca-checksum %s",
               url, d.checksum);
    HAS(r.err, "invalid username or password");
    ck_assert_int_ne(access(cfg_path, F_OK), 0);
    /* A CA that is not the pinned one is refused before the password goes out. */
    snprintf(bad, sizeof(bad), "%s", d.checksum);
    bad[0] = bad[0] == '0' ? '1' : '0';
    snprintf(pw, sizeof(pw), "%s\n", d.admin_pw);
    EXPECT_RUN(1, pw, "login %s --username admin --password-stdin --ca-checksum %s", url, bad);
    HAS(r.err, "refusing to trust it");
    ck_assert_int_ne(access(cfg_path, F_OK), 0);
    /* Usage errors exit 2. */
    EXPECT_RUN(2, pw, "login %s --password-stdin --insecure", url);
    HAS(r.err, "--username");
    EXPECT_RUN(2, pw, "login %s -u admin --password-stdin --ca-checksum 12ab", url);
    EXPECT_RUN(2, pw, "login %s -u admin --password-stdin --insecure --ca-checksum %s", url,
               d.checksum);
    EXPECT_RUN(2, pw, "login");
    /* Stdin is not a terminal and no --password-stdin: told how, exit 2. */
    EXPECT_RUN(2, pw, "login %s -u admin --insecure", url);
    HAS(r.err, "--password-stdin");
    /* Without a pin or --insecure the system store does not know our CA. */
    EXPECT_RUN(1, pw, "login %s -u admin --password-stdin", url);
    HAS(r.err, "not trusted");
    /* Nothing answers there. */
    EXPECT_RUN(1, pw, "login https://127.0.0.1:%d -u admin --password-stdin --insecure",
               free_port());
    HAS(r.err, "cannot connect");
    /* Not logged in. */
    EXPECT_RUN(1, NULL, "cluster list");
    HAS(r.err, "not logged in");
}
END_TEST

/* Reads the pty until needle shows or the child is done; all into buf. */
static bool pty_read_until(int fd, char *buf, size_t cap, const char *needle, int ms)
{
    size_t n = strlen(buf);
    long long end = mono_ms() + ms;
    while (!strstr(buf, needle) && mono_ms() < end && n < cap - 1) {
        struct pollfd p = { .fd = fd, .events = POLLIN };
        if (poll(&p, 1, 100) <= 0)
            continue;
        ssize_t got = read(fd, buf + n, cap - 1 - n);
        if (got <= 0)
            break;
        n += (size_t)got;
        buf[n] = '\0';
    }
    return strstr(buf, needle) != NULL;
}

START_TEST(login_prompts_without_echo)
{
    char home[300], seen[8192] = "", line[100];
    int fd;
    snprintf(home, sizeof(home), "%s/home", d.dir);
    pid_t pid = forkpty(&fd, NULL, NULL, NULL);
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        setenv("HOME", home, 1);
        unsetenv("DROVER_CONFIG");
        execl(bin_path("droverctl"), "droverctl", "login", url, "-u", "admin",
              "--ca-checksum", d.checksum, (char *)NULL);
        _exit(127);
    }
    ck_assert_msg(pty_read_until(fd, seen, sizeof(seen), "Password: ", 30000), "%s", seen);
    snprintf(line, sizeof(line), "%s\n", d.admin_pw);
    ck_assert_int_eq(write(fd, line, strlen(line)), (ssize_t)strlen(line));
    ck_assert_msg(pty_read_until(fd, seen, sizeof(seen), "Logged in", 30000), "%s", seen);
    int st;
    ck_assert_int_eq(waitpid(pid, &st, 0), pid);
    close(fd);
    ck_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    ck_assert_msg(strstr(seen, d.admin_pw) == NULL, "the password was echoed: %s", seen);
    ck_assert_int_eq(access(cfg_path, F_OK), 0);
}
END_TEST

START_TEST(config_file_and_session)
{
    char alt[400], env[500], pw[80];
    login();
    struct stat st;
    ck_assert_int_eq(stat(cfg_path, &st), 0);
    ck_assert_int_eq(st.st_mode & 0777, 0600);
    char dir[400];
    snprintf(dir, sizeof(dir), "%s/home/.config/drover", d.dir);
    ck_assert_int_eq(stat(dir, &st), 0);
    ck_assert_int_eq(st.st_mode & 0777, 0700);
    EXPECT_RUN(0, NULL, "whoami");
    HAS(r.out, "USERNAME");
    HAS(r.out, "admin");
    EXPECT_RUN(0, NULL, "whoami -o json");
    json_t *j = out_json();
    ck_assert_str_eq(json_string_value(json_object_get(j, "username")), "admin");
    ck_assert(json_is_true(json_object_get(j, "admin")));
    json_decref(j);
    /* DROVER_CONFIG moves the file; --insecure logs in with a warning. */
    snprintf(alt, sizeof(alt), "%s/elsewhere.yaml", d.dir);
    snprintf(env, sizeof(env), "DROVER_CONFIG=%s", alt);
    snprintf(pw, sizeof(pw), "%s\n", d.admin_pw);
    ck_assert_int_eq(ctl_env(pw, env, "login %s/ -u admin --password-stdin --insecure", url), 0);
    HAS(r.err, "warning: --insecure");
    ck_assert_int_eq(stat(alt, &st), 0);
    ck_assert_int_eq(st.st_mode & 0777, 0600);
    ck_assert_int_eq(ctl_env(NULL, env, "whoami"), 0);
    /* A config others may read is refused. */
    chmod(cfg_path, 0644);
    EXPECT_RUN(1, NULL, "whoami");
    HAS(r.err, "too open");
    chmod(cfg_path, 0600);
    /* Logout ends the session on the server and forgets the token. */
    char tok[200] = "";
    read_into(cfg_path, r.out, sizeof(r.out));
    char *t = strstr(r.out, "token: ");
    ck_assert_ptr_nonnull(t);
    sscanf(t + 7, "%199s", tok);
    EXPECT_RUN(0, NULL, "logout");
    ck_assert_int_eq(apitest_call(&d, "GET", "/v3/clusters", tok, NULL, NULL), 401);
    EXPECT_RUN(1, NULL, "whoami");
    HAS(r.err, "not logged in");
    /* The other session still works, until the server forgets it; a
     * session the server already ended logs out quietly. */
    ck_assert_int_eq(ctl_env(NULL, env, "cluster list"), 0);
    char alt_tok[200] = "";
    read_into(alt, r.out, sizeof(r.out));
    t = strstr(r.out, "token: ");
    ck_assert_ptr_nonnull(t);
    sscanf(t + 7, "%199s", alt_tok);
    char path[300];
    snprintf(path, sizeof(path), "/v3/tokens/current");
    ck_assert_int_eq(apitest_call(&d, "DELETE", path, alt_tok, NULL, NULL), 204);
    ck_assert_int_eq(ctl_env(NULL, env, "cluster list"), 1);
    HAS(r.err, "log in again");
    ck_assert_int_eq(ctl_env(NULL, env, "logout"), 0);
    ck_assert_int_eq(ctl_env(NULL, env, "cluster list"), 1);
    HAS(r.err, "not logged in");
}
END_TEST

START_TEST(clusters)
{
    login();
    EXPECT_RUN(0, NULL, "cluster create prod-eu --snapshot-interval 60 --snapshot-retention 3");
    HAS(r.out, "prod-eu");
    HAS(r.out, "kubectl apply -f");
    EXPECT_RUN(0, NULL, "cluster create staging -o json");
    json_t *j = out_json();
    char id[64];
    snprintf(id, sizeof(id), "%s", json_string_value(json_object_get(j, "id")));
    ck_assert_int_eq(strncmp(id, "c-", 2), 0);
    json_decref(j);
    /* The table lines up: every row's NAME column starts where the header's does. */
    EXPECT_RUN(0, NULL, "cluster list");
    const char *h = strstr(r.out, "NAME"), *row = strstr(r.out, "staging");
    ck_assert_ptr_nonnull(row);
    const char *ls = row;
    while (ls > r.out && ls[-1] != '\n')
        ls--;
    ck_assert_int_eq(h - r.out, row - ls);
    EXPECT_RUN(0, NULL, "cluster list -o json");
    j = out_json();
    ck_assert_int_eq(json_array_size(j), 2);
    json_decref(j);
    /* By name or by id; YAML reads back. */
    EXPECT_RUN(0, NULL, "cluster get prod-eu -o yaml");
    char err[200];
    j = yj_load(r.out, strlen(r.out), err, sizeof(err));
    ck_assert_msg(j != NULL, "%s", err);
    ck_assert_str_eq(json_string_value(json_object_get(j, "name")), "prod-eu");
    ck_assert_int_eq(json_integer_value(json_object_get(json_object_get(
                         j, "etcdSnapshotSchedule"), "intervalMinutes")), 60);
    json_decref(j);
    EXPECT_RUN(0, NULL, "cluster get %s", id);
    HAS(r.out, "staging");
    /* Unknown clusters: exit 1 with a message, by id (the server's) or name. */
    EXPECT_RUN(1, NULL, "cluster get c-zzzzz");
    HAS(r.err, "not found");
    EXPECT_RUN(1, NULL, "cluster get nosuch");
    HAS(r.err, "cluster nosuch not found");
    EXPECT_RUN(0, NULL, "cluster import-command staging");
    HAS(r.out, "kubectl apply -f https://127.0.0.1:");
    HAS(r.out, id);
    EXPECT_RUN(0, NULL, "cluster import-command staging --insecure");
    HAS(r.out, "curl --insecure");
    EXPECT_RUN(0, NULL, "node list staging");
    HAS(r.out, "NAME");
    EXPECT_RUN(0, NULL, "node list staging -o json");
    j = out_json();
    ck_assert(json_is_array(j));
    json_decref(j);
    /* Snapshot schedule is a PUT on the cluster. */
    EXPECT_RUN(0, NULL, "snapshot schedule staging --interval 30 --retention 7 -o json");
    j = out_json();
    ck_assert_int_eq(json_integer_value(json_object_get(j, "intervalMinutes")), 30);
    ck_assert_int_eq(json_integer_value(json_object_get(j, "retention")), 7);
    json_decref(j);
    EXPECT_RUN(2, NULL, "snapshot schedule staging --interval soon");
    /* Delete; then it is gone. */
    EXPECT_RUN(0, NULL, "cluster delete staging");
    EXPECT_RUN(1, NULL, "cluster get %s", id);
    EXPECT_RUN(1, NULL, "cluster delete staging");
}
END_TEST

START_TEST(kubeconfig_merge)
{
    login();
    EXPECT_RUN(0, NULL, "cluster create prod-eu");
    EXPECT_RUN(0, NULL, "cluster kubeconfig prod-eu --print");
    HAS(r.out, "/k8s/clusters/c-");
    HAS(r.out, "current-context: prod-eu");
    /* An existing kubeconfig keeps its own entries. */
    char dir[400];
    snprintf(dir, sizeof(dir), "%s/kube", d.dir);
    mkdir(dir, 0700);
    FILE *f = fopen(kube_path, "w");
    fputs("apiVersion: v1\nkind: Config\nclusters:\n- name: home\n  cluster:\n"
          "    server: https://10.0.0.1:6443\n    insecure-skip-tls-verify: true\n"
          "users:\n- name: me\n  user: {token: abc}\ncontexts:\n- name: home\n"
          "  context: {cluster: home, user: me}\ncurrent-context: home\n", f);
    fclose(f);
    chmod(kube_path, 0644);
    EXPECT_RUN(0, NULL, "cluster kubeconfig prod-eu");
    HAS(r.err, "current context is now \"prod-eu\"");
    char text[16384], err[200];
    read_into(kube_path, text, sizeof(text));
    json_t *j = yj_load(text, strlen(text), err, sizeof(err));
    ck_assert_msg(j != NULL, "%s", err);
    ck_assert_int_eq(json_array_size(json_object_get(j, "contexts")), 2);
    ck_assert_int_eq(json_array_size(json_object_get(j, "clusters")), 2);
    ck_assert_str_eq(json_string_value(json_object_get(j, "current-context")), "prod-eu");
    /* Types survive: the boolean stays a boolean. */
    ck_assert(json_is_true(json_object_get(json_object_get(json_array_get(
        json_object_get(j, "clusters"), 0), "cluster"), "insecure-skip-tls-verify")));
    json_decref(j);
    struct stat st;
    ck_assert_int_eq(stat(kube_path, &st), 0);
    ck_assert_int_eq(st.st_mode & 0777, 0600);
    /* kubectl reads the result. */
    char cmd[600], out[4096];
    snprintf(cmd, sizeof(cmd), "KUBECONFIG=%s kubectl config get-contexts -o name 2>&1",
             kube_path);
    ck_assert_int_eq(run_capture(cmd, out, sizeof(out)), 0);
    HAS(out, "home");
    HAS(out, "prod-eu");
}
END_TEST

START_TEST(members_and_users)
{
    login();
    EXPECT_RUN(0, NULL, "cluster create prod-eu");
    EXPECT_RUN(0, "bob-password-123\n", "user add bob --password-stdin");
    HAS(r.out, "bob");
    EXPECT_RUN(1, "bob-password-123\n", "user add bob --password-stdin");
    HAS(r.err, "already exists");
    EXPECT_RUN(0, NULL, "user list -o json");
    json_t *j = out_json();
    ck_assert_int_eq(json_array_size(j), 2);
    json_decref(j);
    EXPECT_RUN(0, NULL, "member add prod-eu bob --role viewer");
    EXPECT_RUN(2, NULL, "member add prod-eu bob --role boss");
    EXPECT_RUN(0, NULL, "member list prod-eu");
    HAS(r.out, "bob");
    HAS(r.out, "viewer");
    /* Bob sees the cluster but may not list users: the server's message. */
    char env[500];
    snprintf(env, sizeof(env), "DROVER_CONFIG=%s/bob.yaml", d.dir);
    ck_assert_int_eq(ctl_env("bob-password-123\n", env,
                             "login %s -u bob --password-stdin --ca-checksum %s", url,
                             d.checksum), 0);
    ck_assert_int_eq(ctl_env(NULL, env, "cluster list"), 0);
    HAS(r.out, "prod-eu");
    ck_assert_int_eq(ctl_env(NULL, env, "user list"), 1);
    HAS(r.err, "error: ");
    ck_assert_int_eq(ctl_env(NULL, env, "cluster import-command prod-eu"), 1);
    EXPECT_RUN(0, NULL, "member remove prod-eu bob");
    EXPECT_RUN(0, NULL, "member list prod-eu -o json");
    j = out_json();
    ck_assert_int_eq(json_array_size(j), 1);
    json_decref(j);
    EXPECT_RUN(0, NULL, "user remove bob");
    EXPECT_RUN(1, NULL, "user remove bob");
}
END_TEST

START_TEST(usage_and_help)
{
    EXPECT_RUN(2, NULL, "");
    EXPECT_RUN(2, NULL, "frobnicate");
    HAS(r.err, "unknown command");
    EXPECT_RUN(2, NULL, "cluster");
    EXPECT_RUN(2, NULL, "cluster get");
    EXPECT_RUN(2, NULL, "cluster list --bogus");
    EXPECT_RUN(2, NULL, "cluster list -o xml");
    EXPECT_RUN(0, NULL, "--version");
    HAS(r.out, "droverctl ");
    EXPECT_RUN(0, NULL, "--help");
    EXPECT_RUN(0, NULL, "cluster --help");
    EXPECT_RUN(0, NULL, "help snapshot create");
    HAS(r.out, "--no-wait");
    /* --help on every command, with no login and no server. */
    for (const struct cmdspec *c = ctl_commands; c->noun; c++) {
        EXPECT_RUN(0, NULL, "%s %s --help", c->noun, c->verb ? c->verb : "");
        HAS(r.out, c->summary);
    }
    /* Usage is checked before anything else. */
    EXPECT_RUN(2, NULL, "apply c-abcde");
    HAS(r.err, "-f FILE");
    EXPECT_RUN(2, NULL, "upgrade c-abcde");
    HAS(r.err, "--version");
    EXPECT_RUN(2, NULL, "upgrade c-abcde --version v1.31.2 --concurrency 0");
    EXPECT_RUN(2, NULL, "snapshot download c-abcde");
    EXPECT_RUN(2, NULL, "snapshot create c-abcde --timeout never");
    EXPECT_RUN(2, NULL, "completion zsh");
    /* The shipped completion file is what the binary prints, and bash reads it. */
    EXPECT_RUN(0, NULL, "completion bash");
    char shipped[65536];
    read_into("cli/droverctl.bash", shipped, sizeof(shipped));
    ck_assert_msg(strcmp(shipped, r.out) == 0,
                  "cli/droverctl.bash is stale: run bin/droverctl completion bash > "
                  "cli/droverctl.bash");
    char out[256];
    ck_assert_int_eq(run_capture("bash -n cli/droverctl.bash && echo parsed", out,
                                 sizeof(out)), 0);
    HAS(out, "parsed");
}
END_TEST

/* ---- with a cluster: the stand-in apiserver and a real cluster agent ---- */

#define SA_TOKEN "standin-sa-token-7c1e55"
static struct standin ks;

static void cluster_setup(void)
{
    standin_up(&ks, &d, SA_TOKEN);
    snprintf(cfg_path, sizeof(cfg_path), "%s/home/.config/drover/config.yaml", d.dir);
    snprintf(kube_path, sizeof(kube_path), "%s/kube/config", d.dir);
    snprintf(url, sizeof(url), "https://127.0.0.1:%d", d.https_port);
}

static void cluster_teardown(void)
{
    standin_down(&ks, &d);
}

static bool three_nodes(void *ud)
{
    (void)ud;
    return ctl(NULL, "node list test -o json") == 0 && strstr(r.out, "node-3") != NULL;
}

static bool kubectl_sees_nodes(void *ud)
{
    char cmd[600];
    snprintf(cmd, sizeof(cmd), "KUBECONFIG=%s kubectl get nodes -o name 2>&1", kube_path);
    return run_capture(cmd, (char *)ud, 4096) == 0 && strstr((char *)ud, "node/node-1");
}

/* The README's walk: log in, see the cluster active with its nodes, merge
 * its kubeconfig, and kubectl reaches the cluster through drover. */
START_TEST(readme_walkthrough)
{
    login();
    ck_assert_msg(wait_until(three_nodes, NULL, 30000), "nodes not listed: %s %s", r.out,
                  r.err);
    json_t *j = out_json();
    ck_assert_int_eq(json_array_size(j), 3);
    json_decref(j);
    EXPECT_RUN(0, NULL, "node list test");
    HAS(r.out, "ROLES");
    HAS(r.out, "node-1");
    EXPECT_RUN(0, NULL, "cluster get test -o json");
    j = out_json();
    ck_assert_str_eq(json_string_value(json_object_get(j, "state")), "active");
    ck_assert_str_eq(json_string_value(json_object_get(json_object_get(j, "connection"),
                                                       "via")), "cluster-agent");
    json_decref(j);
    EXPECT_RUN(0, NULL, "cluster list");
    HAS(r.out, "cluster-agent");
    EXPECT_RUN(0, NULL, "cluster kubeconfig test");
    char out[4096] = "";
    ck_assert_msg(wait_until(kubectl_sees_nodes, out, 30000), "kubectl: %s", out);
}
END_TEST

static bool admin_bound(void *ud)
{
    (void)ud;
    char path[300];
    snprintf(path, sizeof(path), "/k8s/clusters/%s/apis/rbac.authorization.k8s.io/v1/"
             "clusterrolebindings/drover-user-admin", d.cluster);
    return apitest_call(&d, "GET", path, d.admin_token, NULL, NULL) == 200;
}

/* apply -f: YAML from a file, JSON from stdin, one result per object;
 * failures still show every result, then the server's message, exit 1. */
START_TEST(apply_objects)
{
    char file[400];
    login();
    ck_assert_msg(wait_until(admin_bound, NULL, 20000), "no cluster-admin for drover:admin");
    snprintf(file, sizeof(file), "%s/app.yaml", d.dir);
    FILE *f = fopen(file, "w");
    fputs("apiVersion: v1\nkind: Namespace\nmetadata: {name: shop}\n---\n"
          "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: settings, namespace: shop}\n"
          "data: {mode: blue}\n", f);
    fclose(f);
    EXPECT_RUN(0, NULL, "apply test -f %s", file);
    HAS(r.out, "OUTCOME");
    HAS(r.out, "ConfigMap   shop        settings   created");
    HAS(r.err, "2 objects: 2 created");
    EXPECT_RUN(0, NULL, "apply test -f %s -o json", file);
    json_t *j = out_json();
    ck_assert_int_eq(json_integer_value(apitest_get(j, "summary.unchanged")) +
                     json_integer_value(apitest_get(j, "summary.configured")), 2);
    json_decref(j);
    /* JSON on stdin; a kind the apiserver does not know fails alone. */
    EXPECT_RUN(1, "[{\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\",\"metadata\":"
               "{\"name\":\"more\",\"namespace\":\"shop\"}},{\"apiVersion\":\"nope.io/v1\","
               "\"kind\":\"Nothing\",\"metadata\":{\"name\":\"x\"}}]", "apply test -f -");
    HAS(r.out, "more");
    HAS(r.out, "failed");
    HAS(r.err, "1 failed");
    HAS(r.err, "error: ");
    /* The server refuses a document it cannot read: its message, exit 1. */
    EXPECT_RUN(1, "apiVersion: v1\nkind: ConfigMap\n", "apply test -f -");
    HAS(r.err, "document 1: ");
    EXPECT_RUN(1, NULL, "apply test -f %s/nonexistent.yaml", d.dir);
    HAS(r.err, "cannot open");
    EXPECT_RUN(1, NULL, "apply nosuch -f %s", file);
    HAS(r.err, "cluster nosuch not found");
}
END_TEST

/* ---- with etcd: a real etcd and a node agent with the etcd role ---- */

static struct etcdtmp *etcd;
static struct proc node_agent;
static char cid[16];

static void write_script(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fputs(text, f);
    fclose(f);
    chmod(path, 0755);
}

/* The node agent of cluster cid, with a restore hook that swaps etcd's data
 * directory (as a site's would) and an upgrade hook that fails for v-bad. */
static void start_node_agent(const char *reg)
{
    static char env[14][600];
    char work[300], text[1200], restore[400], upgrade[400], log[400];
    snprintf(work, sizeof(work), "%s/work", d.dir);
    mkdir(work, 0700);
    snprintf(restore, sizeof(restore), "%s/restore.sh", work);
    snprintf(text, sizeof(text),
             "#!/bin/sh\nset -e\n%s/stop.sh\nrm -rf %s/data\nmv \"$DROVER_RESTORE_DATA_DIR\" "
             "%s/data\n%s/start.sh\n"
             "i=0; until etcdctl --endpoints=%s --dial-timeout=1s endpoint health >/dev/null "
             "2>&1; do i=$((i+1)); [ $i -gt 200 ] && exit 1; sleep 0.1; done\n",
             etcdtmp_dir(etcd), etcdtmp_dir(etcd), etcdtmp_dir(etcd), etcdtmp_dir(etcd),
             etcdtmp_endpoint(etcd));
    write_script(restore, text);
    snprintf(upgrade, sizeof(upgrade), "%s/upgrade.sh", work);
    write_script(upgrade, "#!/bin/sh\n[ \"$1\" = v-bad ] && { echo boom; exit 3; }\n"
                          "echo upgraded to $1\n");
    snprintf(env[0], 600, "DROVER_SERVER=https://127.0.0.1:%d", d.https_port);
    snprintf(env[1], 600, "DROVER_TOKEN=%s", reg);
    snprintf(env[2], 600, "DROVER_CA_CHECKSUM=%s", d.checksum);
    snprintf(env[3], 600, "DROVER_CLUSTER_ID=%s", cid);
    snprintf(env[4], 600, "DROVER_NODE_NAME=etcd-1");
    snprintf(env[5], 600, "DROVER_NODE_ROLES=etcd,controlplane");
    snprintf(env[6], 600, "DROVER_SNAPSHOT_DIR=%s/snaps", work);
    snprintf(env[7], 600, "DROVER_STATE_DIR=%s/state", work);
    snprintf(env[8], 600, "DROVER_HEALTH_LISTEN=127.0.0.1:0");
    snprintf(env[9], 600, "DROVER_ETCD_ENDPOINTS=%s", etcdtmp_endpoint(etcd));
    snprintf(env[10], 600, "DROVER_RESTORE_HOOK=%s", restore);
    snprintf(env[11], 600, "DROVER_UPGRADE_HOOK=%s", upgrade);
    const char *all[] = { env[0], env[1], env[2], env[3], env[4], env[5], env[6], env[7],
                          env[8], env[9], env[10], env[11], NULL };
    const char *argv[] = { bin_path("drover-node-agent"), NULL };
    snprintf(log, sizeof(log), "%s/node-agent.log", d.dir);
    proc_spawn(&node_agent, argv, all, log);
}

static bool node_agent_up(void *ud)
{
    (void)ud;
    return dtest_metric(&d, "drover_tunnels{kind=\"node\"}") == 1;
}

static void etcd_setup(void)
{
    char err[1024];
    setup();
    etcd = etcdtmp_start(err, sizeof(err));
    ck_assert_msg(etcd != NULL, "%s", err);
    json_t *c = apitest_cluster(&d, d.admin_token, "etcd-cluster", cid);
    start_node_agent(apitest_str(c, "registration.token"));
    json_decref(c);
    ck_assert_msg(wait_until(node_agent_up, NULL, 20000), "no node agent (logs in %s)", d.dir);
}

static void etcd_teardown(void)
{
    proc_end(&node_agent);
    etcdtmp_stop(etcd);
    etcd = NULL;
    teardown();
}

START_TEST(snapshots)
{
    char file[400], sid[64], sum[65];
    login();
    ck_assert_int_eq(etcdtmp_put(etcd, "/drover-test/k", "before"), 0);
    /* create waits, showing the states, and ends with the done snapshot. */
    EXPECT_RUN(0, NULL, "snapshot create etcd-cluster -o json");
    HAS(r.err, ": done");
    json_t *j = out_json();
    ck_assert_str_eq(json_string_value(json_object_get(j, "state")), "done");
    snprintf(sid, sizeof(sid), "%s", json_string_value(json_object_get(j, "id")));
    snprintf(sum, sizeof(sum), "%s", json_string_value(json_object_get(j, "sha256")));
    json_decref(j);
    EXPECT_RUN(0, NULL, "snapshot list etcd-cluster");
    HAS(r.out, sid);
    HAS(r.out, "etcd-1");
    /* download: the bytes the server recorded. */
    snprintf(file, sizeof(file), "%s/snap.db", d.dir);
    EXPECT_RUN(0, NULL, "snapshot download etcd-cluster %s --file %s", sid, file);
    HAS(r.err, "SHA-256 checked");
    char got[65];
    ck_assert_int_eq(file_sha256(file, got), 0);
    ck_assert_str_eq(got, sum);
    /* restore: a later write is gone afterwards. */
    ck_assert_int_eq(etcdtmp_put(etcd, "/drover-test/k", "after"), 0);
    EXPECT_RUN(0, NULL, "snapshot restore etcd-cluster %s --timeout 120", sid);
    HAS(r.err, "restore of");
    HAS(r.out, "etcd-1");
    char v[64];
    ck_assert_int_eq(etcdtmp_get(etcd, "/drover-test/k", v, sizeof(v)), 0);
    ck_assert_str_eq(v, "before");
    /* --no-wait answers at once. */
    EXPECT_RUN(0, NULL, "snapshot create etcd-cluster --no-wait -o json");
    j = out_json();
    ck_assert_ptr_nonnull(json_string_value(json_object_get(j, "id")));
    json_decref(j);
    /* delete; then it is not there. */
    EXPECT_RUN(0, NULL, "snapshot delete etcd-cluster %s", sid);
    EXPECT_RUN(1, NULL, "snapshot download etcd-cluster %s --file %s", sid, file);
    EXPECT_RUN(1, NULL, "snapshot restore etcd-cluster %s", sid);
    /* A cluster without an etcd node agent: the server's message, exit 1. */
    EXPECT_RUN(0, NULL, "cluster create bare");
    EXPECT_RUN(1, NULL, "snapshot create bare");
    HAS(r.err, "error: ");
    EXPECT_RUN(1, NULL, "snapshot list nosuch");
}
END_TEST

START_TEST(upgrades)
{
    login();
    EXPECT_RUN(0, NULL, "upgrade etcd-cluster --version v1.2.3 --timeout 120");
    HAS(r.err, "upgrade of etcd-cluster to v1.2.3: done (1/1 nodes)");
    HAS(r.out, "upgraded to v1.2.3");
    /* A failing node: exit 1, its message with the error. */
    EXPECT_RUN(1, NULL, "upgrade etcd-cluster --version v-bad --timeout 120");
    HAS(r.err, "failed");
    HAS(r.err, "boom");
    EXPECT_RUN(1, NULL, "upgrade etcd-cluster --version \"v1;rm\"");
}
END_TEST

Suite *suite_integration_droverctl(void)
{
    Suite *s = suite_create("integration/droverctl");
    TCase *t = tcase_create("droverctl");
    tcase_add_checked_fixture(t, setup, teardown);
    tcase_set_timeout(t, 180);
    tcase_add_test(t, login_errors);
    tcase_add_test(t, login_prompts_without_echo);
    tcase_add_test(t, config_file_and_session);
    tcase_add_test(t, clusters);
    tcase_add_test(t, kubeconfig_merge);
    tcase_add_test(t, members_and_users);
    tcase_add_test(t, usage_and_help);
    suite_add_tcase(s, t);
    TCase *c = tcase_create("with_cluster");
    tcase_add_checked_fixture(c, cluster_setup, cluster_teardown);
    tcase_set_timeout(c, 180);
    tcase_add_test(c, readme_walkthrough);
    tcase_add_test(c, apply_objects);
    suite_add_tcase(s, c);
    TCase *e = tcase_create("with_etcd");
    tcase_add_checked_fixture(e, etcd_setup, etcd_teardown);
    tcase_set_timeout(e, 300);
    tcase_add_test(e, snapshots);
    tcase_add_test(e, upgrades);
    suite_add_tcase(s, e);
    return s;
}
