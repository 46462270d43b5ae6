/*
 * The kube-standin test stand-in (tests/kube-standin) driven by a real
 * kubectl and curl, so the other tests can trust it to behave like a
 * kube-apiserver: authentication, impersonation and RBAC with the audit
 * file, CRUD with the real error answers, watch, logs, exec and
 * port-forward over both transports kubectl has (websocket and SPDY).
 */
#include <arpa/inet.h>
#include <check.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "tests/support/proc.h"

#define ADMIN_TOKEN "standin-admin-0123456789"
#define ALICE_TOKEN "standin-alice-0123456789"
#define SA_TOKEN "standin-agent-0123456789"
#define SA_USER "system:serviceaccount:drover-system:drover"
#define POD "-n kube-system pod/etcd-node-1"

static struct {
    char dir[256];
    int port;
    struct proc standin;
    char log[300], audit[300], kubeconfig[300], ca[300], portfile[300];
    char kubectl[512], curl[512];
    char k[1600];       /* "env KUBECONFIG=... kubectl --cache-dir ..." */
    int minor;          /* kubectl's minor version */
} s;

/* ---- helpers ---- */

static bool port_file_ready(void *ud)
{
    (void)ud;
    FILE *f = fopen(s.portfile, "r");
    if (!f)
        return false;
    int ok = fscanf(f, "%d", &s.port) == 1;
    fclose(f);
    return ok && s.port > 0;
}

static void write_kubeconfig(void)
{
    FILE *f = fopen(s.kubeconfig, "w");
    ck_assert_ptr_nonnull(f);
    fprintf(f,
            "apiVersion: v1\nkind: Config\nclusters:\n- name: standin\n  cluster:\n"
            "    server: https://127.0.0.1:%d\n    certificate-authority: %s\n"
            "users:\n- name: admin\n  user: {token: %s}\n- name: alice\n  user: {token: %s}\n"
            "- name: agent\n  user: {token: %s}\n- name: nobody\n  user: {token: wrong}\n"
            "contexts:\n- name: admin\n  context: {cluster: standin, user: admin, namespace: "
            "default}\n- name: alice\n  context: {cluster: standin, user: alice, namespace: "
            "default}\n- name: agent\n  context: {cluster: standin, user: agent}\n"
            "- name: nobody\n  context: {cluster: standin, user: nobody}\n"
            "current-context: admin\n",
            s.port, s.ca, ADMIN_TOKEN, ALICE_TOKEN, SA_TOKEN);
    fclose(f);
}

/* Runs a shell command; stdout and stderr in out. Returns the exit code. */
static int sh(char *out, size_t cap, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int sh(char *out, size_t cap, const char *fmt, ...)
{
    char cmd[4096];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof(cmd), fmt, ap);
    va_end(ap);
    char full[4200];
    snprintf(full, sizeof(full), "( %s ) 2>&1", cmd);
    return run_capture(full, out, cap);
}

/* curl as a user (token NULL: none); out gets "BODY\nHTTP=CODE". */
static int curl(char *out, size_t cap, const char *token, const char *args)
{
    char auth[128] = "";
    if (token)
        snprintf(auth, sizeof(auth), "-H 'Authorization: Bearer %s'", token);
    return sh(out, cap, "curl -s --max-time 10 --cacert %s %s -w '\\nHTTP=%%{http_code}' %s",
              s.ca, auth, args);
}

static void setup(void)
{
    char out[4096];
    memset(&s, 0, sizeof(s));
    make_temp_dir(s.dir, sizeof(s.dir));
    ck_assert(s.dir[0]);
    ck_assert_msg(run_capture("command -v kubectl", s.kubectl, sizeof(s.kubectl)) == 0,
                  "these tests need a kubectl on PATH");
    s.kubectl[strcspn(s.kubectl, "\n")] = '\0';
    ck_assert_msg(run_capture("command -v curl", s.curl, sizeof(s.curl)) == 0,
                  "these tests need curl on PATH");
    s.curl[strcspn(s.curl, "\n")] = '\0';
    snprintf(s.log, sizeof(s.log), "%s/standin.log", s.dir);
    snprintf(s.audit, sizeof(s.audit), "%s/audit.log", s.dir);
    snprintf(s.kubeconfig, sizeof(s.kubeconfig), "%s/kubeconfig", s.dir);
    snprintf(s.ca, sizeof(s.ca), "%s/data/ca.crt", s.dir);
    snprintf(s.portfile, sizeof(s.portfile), "%s/port", s.dir);
    char data[300];
    snprintf(data, sizeof(data), "%s/data", s.dir);
    const char *argv[] = {
        tool_path("kube-standin"), "--data-dir", data, "--port-file", s.portfile,
        "--audit", s.audit, "--token", "admin=" ADMIN_TOKEN, "--token", "alice=" ALICE_TOKEN,
        "--token", SA_USER "=" SA_TOKEN, "--admin", "admin", "--admin", SA_USER, NULL };
    proc_spawn(&s.standin, argv, NULL, s.log);
    ck_assert_msg(wait_until(port_file_ready, NULL, 15000), "stand-in did not start (log %s)",
                  s.log);
    write_kubeconfig();
    /* Through env, so the prefix also works after `timeout`. */
    snprintf(s.k, sizeof(s.k), "env HOME=%s KUBECONFIG=%s %s --cache-dir %s/cache", s.dir,
             s.kubeconfig, s.kubectl, s.dir);
    /* kubectl's transports depend on its version: note it for the checks. */
    ck_assert_int_eq(sh(out, sizeof(out), "%s version -o json", s.k), 0);
    const char *m = strstr(out, "\"minor\": \"");
    s.minor = m ? (int)strtol(m + 10, NULL, 10) : 0;
}

/* Every test ends with a clean shutdown: under a sanitizer build of the
 * stand-in (DROVER_TOOLS_DIR) a leak or error there makes it exit non-zero. */
static void teardown(void)
{
    int rc = 0;
    if (s.standin.pid > 0) {
        proc_signal(&s.standin, SIGTERM);
        rc = proc_wait(&s.standin, 15000);
    }
    proc_cleanup();
    if (rc == 0)
        remove_tree(s.dir);
    ck_assert_msg(rc == 0, "the stand-in exited %d on SIGTERM (log %s)", rc, s.log);
}

/* The last audit record whose text holds every needle (NULL-terminated). */
static bool audit_has(const char *const *needles)
{
    FILE *f = fopen(s.audit, "r");
    if (!f)
        return false;
    char line[8192];
    bool found = false;
    while (!found && fgets(line, sizeof(line), f)) {
        found = true;
        for (size_t i = 0; needles[i] && found; i++)
            found = strstr(line, needles[i]) != NULL;
    }
    fclose(f);
    return found;
}

/* Sends len bytes to 127.0.0.1:port, half-closes, and checks that exactly
 * the same bytes come back (the stand-in's pods echo on every port). */
static bool echo_roundtrip(int port, size_t len)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof(a)) < 0) {
        if (fd >= 0)
            close(fd);
        return false;
    }
    char *snd = malloc(len), *rcv = malloc(len + 1);
    for (size_t i = 0; i < len; i++)
        snd[i] = (char)('a' + i % 26);
    size_t sent = 0, got = 0;
    bool ok = true;
    long long end = mono_ms() + 15000;
    while (ok && (sent < len || got <= len)) {
        struct pollfd p = { fd, (short)(POLLIN | (sent < len ? POLLOUT : 0)), 0 };
        if (poll(&p, 1, 500) < 0 || mono_ms() > end) {
            ok = false;
            break;
        }
        if ((p.revents & POLLOUT) && sent < len) {
            ssize_t n = send(fd, snd + sent, len - sent, MSG_NOSIGNAL);
            if (n < 0 && errno != EAGAIN)
                ok = false;
            sent += n > 0 ? (size_t)n : 0;
            if (sent == len)
                shutdown(fd, SHUT_WR);
        }
        if (p.revents & (POLLIN | POLLHUP)) {
            ssize_t n = recv(fd, rcv + got, len + 1 - got, 0);
            if (n <= 0)
                break;      /* EOF: the echo ended */
            got += (size_t)n;
        }
    }
    ok = ok && got == len && memcmp(snd, rcv, len) == 0;
    free(snd);
    free(rcv);
    close(fd);
    return ok;
}

/* Starts kubectl ARGS... in the background (tracked: killed in teardown),
 * with extra_env (may be NULL) added to its environment. */
static void spawn_kubectl(struct proc *p, const char *log, const char *extra_env,
                          const char *const *args)
{
    static char kcfg[400], home[300], cache[300];
    snprintf(kcfg, sizeof(kcfg), "KUBECONFIG=%s", s.kubeconfig);
    snprintf(home, sizeof(home), "HOME=%s", s.dir);
    snprintf(cache, sizeof(cache), "%s/cache", s.dir);
    const char *envp[] = { kcfg, home, extra_env, NULL };
    const char *argv[16] = { s.kubectl, "--cache-dir", cache };
    size_t n = 3;
    for (size_t i = 0; args[i] && n < 15; i++)
        argv[n++] = args[i];
    argv[n] = NULL;
    proc_spawn(p, argv, envp, log);
}

/* ---- tests ---- */

START_TEST(discovery_and_seed)
{
    char out[16384];
    ck_assert_int_eq(sh(out, sizeof(out), "%s version", s.k), 0);
    ck_assert_msg(strstr(out, "Server Version: v1.31.0"), "%s", out);
    ck_assert_int_eq(sh(out, sizeof(out), "%s get nodes", s.k), 0);
    ck_assert_msg(strstr(out, "node-1   Ready    control-plane,etcd") &&
                  strstr(out, "node-3   Ready    worker") && strstr(out, "v1.31.0"), "%s", out);
    ck_assert_int_eq(sh(out, sizeof(out), "%s get ns", s.k), 0);
    ck_assert(strstr(out, "default") && strstr(out, "kube-system") && strstr(out, "kube-public"));
    ck_assert_int_eq(sh(out, sizeof(out), "%s get pods -n kube-system", s.k), 0);
    ck_assert_msg(strstr(out, "etcd-node-1") && strstr(out, "coredns-") &&
                  strstr(out, "Running"), "%s", out);
    ck_assert_int_eq(sh(out, sizeof(out), "%s get events --field-selector type=Warning", s.k), 0);
    ck_assert_msg(strstr(out, "BackOff"), "%s", out);
    ck_assert_int_eq(sh(out, sizeof(out), "%s api-resources", s.k), 0);
    ck_assert_msg(strstr(out, "deployments") && strstr(out, "rolebindings"), "%s", out);
}
END_TEST

START_TEST(unauthenticated_401)
{
    char out[4096], url[128];
    snprintf(url, sizeof(url), "https://127.0.0.1:%d/api/v1/namespaces/default/pods", s.port);
    curl(out, sizeof(out), NULL, url);
    ck_assert_msg(strstr(out, "HTTP=401") && strstr(out, "\"kind\":\"Status\"") &&
                  strstr(out, "\"reason\":\"Unauthorized\""), "%s", out);
    curl(out, sizeof(out), "not-a-token", url);
    ck_assert_msg(strstr(out, "HTTP=401"), "%s", out);
    ck_assert_int_ne(sh(out, sizeof(out), "%s --context nobody get pods", s.k), 0);
    ck_assert_msg(strstr(out, "You must be logged in to the server"), "%s", out);
    ck_assert(audit_has((const char *const[]){ "\"token\":null", "\"status\":401", NULL }));
    ck_assert(!file_contains(s.audit, "not-a-token"));
    ck_assert(!file_contains(s.audit, ADMIN_TOKEN));
}
END_TEST

START_TEST(impersonation)
{
    char out[4096];
    /* admin may impersonate: the request then acts as alice, who may not list. */
    ck_assert_int_ne(sh(out, sizeof(out), "%s --as alice get pods", s.k), 0);
    ck_assert_msg(strstr(out, "pods is forbidden: User \"alice\" cannot list resource \"pods\" "
                              "in API group \"\" in the namespace \"default\""), "%s", out);
    ck_assert(audit_has((const char *const[]){ "\"token\":\"admin\"", "\"user\":\"alice\"",
                                               "\"impersonatedBy\":\"admin\"",
                                               "\"status\":403", NULL }));
    ck_assert_int_eq(sh(out, sizeof(out), "%s --as alice --as-group system:masters get nodes",
                        s.k), 0);
    ck_assert(audit_has((const char *const[]){ "\"user\":\"alice\"", "system:masters",
                                               "\"impersonatedBy\":\"admin\"",
                                               "\"status\":200", "\"resource\":\"nodes\"",
                                               NULL }));
    /* The agent's service account is bound to cluster-admin: it may too. */
    ck_assert_int_eq(sh(out, sizeof(out), "%s --context agent --as bob --as-group "
                        "system:masters get pods -n kube-system", s.k), 0);
    ck_assert(audit_has((const char *const[]){ "\"user\":\"bob\"",
                                               "\"impersonatedBy\":\"" SA_USER "\"", NULL }));
    /* alice may not impersonate anyone. */
    ck_assert_int_ne(sh(out, sizeof(out), "%s --context alice --as bob get pods", s.k), 0);
    ck_assert_msg(strstr(out, "users \"bob\" is forbidden: User \"alice\" cannot impersonate "
                              "resource \"users\""), "%s", out);
    ck_assert(audit_has((const char *const[]){ "\"token\":\"alice\"", "\"user\":\"alice\"",
                                               "\"impersonatedBy\":null", "\"status\":403",
                                               NULL }));
}
END_TEST

START_TEST(rbac_view)
{
    char out[4096], url[160], args[512];
    ck_assert_int_eq(sh(out, sizeof(out), "%s create rolebinding alice-view --clusterrole=view "
                        "--user=alice -n default", s.k), 0);
    ck_assert_int_eq(sh(out, sizeof(out), "%s --context alice get pods,services", s.k), 0);
    ck_assert_int_ne(sh(out, sizeof(out), "%s --context alice create configmap c1", s.k), 0);
    ck_assert_msg(strstr(out, "configmaps is forbidden: User \"alice\" cannot create resource "
                              "\"configmaps\" in API group \"\" in the namespace \"default\""),
                  "%s", out);
    ck_assert_int_ne(sh(out, sizeof(out), "%s --context alice get secrets", s.k), 0);
    ck_assert_msg(strstr(out, "forbidden"), "%s", out);
    ck_assert_int_ne(sh(out, sizeof(out), "%s --context alice get pods -n kube-system", s.k), 0);
    ck_assert_int_eq(sh(out, sizeof(out), "%s --context alice auth can-i list pods", s.k), 0);
    ck_assert_msg(strstr(out, "yes"), "%s", out);
    snprintf(url, sizeof(url), "https://127.0.0.1:%d/api/v1/namespaces/default/configmaps",
             s.port);
    snprintf(args, sizeof(args), "-X POST -H 'Content-Type: application/json' -d "
             "'{\"metadata\":{\"name\":\"c2\"}}' %s", url);
    curl(out, sizeof(out), ALICE_TOKEN, args);
    ck_assert_msg(strstr(out, "HTTP=403") && strstr(out, "\"reason\":\"Forbidden\"") &&
                  strstr(out, "\"code\":403"), "%s", out);
}
END_TEST

START_TEST(crud)
{
    char out[16384], url[200], args[1024];
    ck_assert_int_eq(sh(out, sizeof(out), "%s create configmap c1 --from-literal=a=1", s.k), 0);
    ck_assert_int_ne(sh(out, sizeof(out), "%s create configmap c1 --from-literal=a=1", s.k), 0);
    ck_assert_msg(strstr(out, "configmaps \"c1\" already exists"), "%s", out);
    ck_assert_int_eq(sh(out, sizeof(out), "%s get configmap c1 -o jsonpath="
                        "'{.data.a} {.metadata.uid} {.metadata.resourceVersion}'", s.k), 0);
    char uid[64];
    unsigned long rv;
    ck_assert_msg(sscanf(out, "1 %63s %lu", uid, &rv) == 2 && strlen(uid) == 36, "%s", out);
    /* An update naming a stale resourceVersion conflicts. */
    snprintf(url, sizeof(url), "https://127.0.0.1:%d/api/v1/namespaces/default/configmaps/c1",
             s.port);
    snprintf(args, sizeof(args), "-X PUT -H 'Content-Type: application/json' -d '{\"metadata\":"
             "{\"name\":\"c1\",\"resourceVersion\":\"%lu\"},\"data\":{\"a\":\"2\"}}' %s", rv, url);
    curl(out, sizeof(out), ADMIN_TOKEN, args);
    ck_assert_msg(strstr(out, "HTTP=200") && strstr(out, "\"a\":\"2\""), "%s", out);
    curl(out, sizeof(out), ADMIN_TOKEN, args);
    ck_assert_msg(strstr(out, "HTTP=409") && strstr(out, "\"reason\":\"Conflict\""), "%s", out);
    snprintf(args, sizeof(args), "-X PATCH -H 'Content-Type: application/merge-patch+json' -d "
             "'{\"data\":{\"b\":\"3\"}}' %s", url);
    curl(out, sizeof(out), ADMIN_TOKEN, args);
    ck_assert_msg(strstr(out, "HTTP=200") && strstr(out, "\"b\":\"3\""), "%s", out);
    ck_assert_int_eq(sh(out, sizeof(out), "%s delete configmap c1", s.k), 0);
    ck_assert_int_ne(sh(out, sizeof(out), "%s delete configmap c1", s.k), 0);
    ck_assert_msg(strstr(out, "configmaps \"c1\" not found"), "%s", out);
    /* A Deployment gets its pods, and takes them along when deleted. */
    char yaml[300];
    snprintf(yaml, sizeof(yaml), "%s/web.yaml", s.dir);
    for (int replicas = 2; replicas <= 3; replicas++) {
        FILE *f = fopen(yaml, "w");
        fprintf(f, "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web}\nspec:\n"
                "  replicas: %d\n  selector: {matchLabels: {app: web}}\n  template:\n"
                "    metadata: {labels: {app: web}}\n    spec:\n      containers:\n"
                "      - {name: web, image: nginx, ports: [{containerPort: 80}]}\n", replicas);
        fclose(f);
        ck_assert_int_eq(sh(out, sizeof(out), "%s apply -f %s", s.k, yaml), 0);
        ck_assert_int_eq(sh(out, sizeof(out), "%s get pods -l app=web --no-headers | wc -l",
                            s.k), 0);
        ck_assert_int_eq(strtol(out, NULL, 10), replicas);
    }
    ck_assert_int_eq(sh(out, sizeof(out), "%s rollout status deployment/web --timeout=10s",
                        s.k), 0);
    ck_assert_int_eq(sh(out, sizeof(out), "%s get pods -l app=web -o name", s.k), 0);
    ck_assert_msg(strncmp(out, "pod/web-", 8) == 0 && strlen(out) > 8 + 17, "%s", out);
    ck_assert_int_eq(sh(out, sizeof(out), "%s delete -f %s", s.k, yaml), 0);
    ck_assert_int_eq(sh(out, sizeof(out), "%s get pods -l app=web", s.k), 0);
    ck_assert_msg(strstr(out, "No resources found"), "%s", out);
}
END_TEST

START_TEST(watch_events)
{
    char out[8192], url[300], wlog[300];
    snprintf(url, sizeof(url), "https://127.0.0.1:%d/api/v1/namespaces/default/configmaps",
             s.port);
    curl(out, sizeof(out), ADMIN_TOKEN, url);
    const char *p = strstr(out, "\"resourceVersion\":\"");
    ck_assert_ptr_nonnull(p);
    unsigned long rv = strtoul(p + 19, NULL, 10);
    snprintf(wlog, sizeof(wlog), "%s/watch.out", s.dir);
    snprintf(url, sizeof(url), "https://127.0.0.1:%d/api/v1/namespaces/default/configmaps?"
             "watch=1&resourceVersion=%lu&timeoutSeconds=20", s.port, rv);
    const char *argv[] = { s.curl, "-sN", "--cacert", s.ca, "-H",
                           "Authorization: Bearer " ADMIN_TOKEN, url, NULL };
    struct proc w;
    proc_spawn(&w, argv, NULL, wlog);
    usleep(300000);
    ck_assert_int_eq(sh(out, sizeof(out), "%s create configmap w1", s.k), 0);
    ck_assert_int_eq(sh(out, sizeof(out), "%s delete configmap w1", s.k), 0);
    ck_assert_msg(wait_for_log(wlog, "{\"type\":\"ADDED\",\"object\":{\"kind\":\"ConfigMap\"",
                               10000), "no ADDED event (%s)", wlog);
    ck_assert_msg(wait_for_log(wlog, "{\"type\":\"DELETED\"", 10000), "no DELETED event");
    ck_assert(file_contains(wlog, "\"name\":\"w1\""));
    proc_kill(&w);
    /* A resourceVersion the history no longer reaches gets the 410 event. */
    snprintf(url, sizeof(url), "'https://127.0.0.1:%d/api/v1/namespaces/default/configmaps?"
             "watch=1&resourceVersion=1'", s.port);
    curl(out, sizeof(out), ADMIN_TOKEN, url);
    ck_assert_msg(strstr(out, "\"type\":\"ERROR\"") && strstr(out, "\"code\":410") &&
                  strstr(out, "\"reason\":\"Expired\""), "%s", out);
    /* kubectl's own watch (a Table stream) sees the change too. */
    snprintf(wlog, sizeof(wlog), "%s/getw.out", s.dir);
    struct proc kw;
    spawn_kubectl(&kw, wlog, NULL, (const char *const[]){ "get", "configmaps", "-w", NULL });
    usleep(1500000);    /* its list and watch are under way */
    ck_assert_int_eq(sh(out, sizeof(out), "%s create configmap w2", s.k), 0);
    ck_assert_msg(wait_for_log(wlog, "w2", 10000), "kubectl get -w missed w2");
    proc_kill(&kw);
}
END_TEST

START_TEST(logs_follow)
{
    char out[8192], llog[300];
    ck_assert_int_eq(sh(out, sizeof(out), "%s logs %s --tail=3 | wc -l", s.k, POD), 0);
    ck_assert_int_eq(strtol(out, NULL, 10), 3);
    snprintf(llog, sizeof(llog), "%s/follow.out", s.dir);
    ck_assert_int_eq(sh(out, sizeof(out), "timeout 3 %s logs -f %s --tail=1 > %s; true", s.k,
                        POD, llog), 0);
    /* 1 backlog line, then one every 200 ms for about 3 s. */
    ck_assert_int_eq(sh(out, sizeof(out), "wc -l < %s", llog), 0);
    long lines = strtol(out, NULL, 10);
    ck_assert_msg(lines >= 8, "only %ld lines followed", lines);
    ck_assert(file_contains(llog, "kube-standin: kube-system/etcd-node-1 container etcd line 19"));
    ck_assert(file_contains(llog, "line 25"));
}
END_TEST

/* exec over the transport kubectl picks, and over SPDY when forced (kubectl
 * 1.30+ falls back to it; older ones only have SPDY). */
static void exec_checks(const char *env)
{
    char out[8192];
    ck_assert_int_eq(sh(out, sizeof(out), "%s %s exec %s -- echo hello stand-in", env, s.k, POD),
                     0);
    ck_assert_msg(strcmp(out, "hello stand-in\n") == 0, "[%s]", out);
    ck_assert_int_eq(sh(out, sizeof(out), "printf 'one\\ntwo\\n' | %s %s exec -i %s -- cat", env,
                        s.k, POD), 0);
    ck_assert_msg(strcmp(out, "one\ntwo\n") == 0, "[%s]", out);
    ck_assert_int_eq(sh(out, sizeof(out), "%s %s exec %s -- ls /", env, s.k, POD), 127);
    ck_assert_msg(strstr(out, "kube-standin: command not found: ls") &&
                  strstr(out, "command terminated with exit code 127"), "[%s]", out);
}

START_TEST(exec_echo_cat)
{
    exec_checks("");
    if (s.minor >= 30)
        ck_assert(audit_has((const char *const[]){ "\"method\":\"GET\"", "\"status\":101",
                                                   "\"subresource\":\"exec\"", NULL }));
    exec_checks("KUBECTL_REMOTE_COMMAND_WEBSOCKETS=false");
    ck_assert(audit_has((const char *const[]){ "\"method\":\"POST\"", "\"status\":101",
                                               "\"subresource\":\"exec\"", NULL }));
}
END_TEST

static void portforward_check(const char *ws_flag)
{
    char log[300], target[64], env[64];
    int local = free_port();
    snprintf(log, sizeof(log), "%s/pf-%d.log", s.dir, local);
    snprintf(target, sizeof(target), "%d:80", local);
    snprintf(env, sizeof(env), "KUBECTL_PORT_FORWARD_WEBSOCKETS=%s", ws_flag);
    struct proc pf;
    spawn_kubectl(&pf, log, env, (const char *const[]){ "port-forward", "-n", "kube-system",
                                                        "pod/etcd-node-1", target, NULL });
    ck_assert_msg(wait_for_log(log, "Forwarding from", 15000), "port-forward did not start");
    ck_assert_msg(echo_roundtrip(local, 5), "small echo failed (%s)", log);
    ck_assert_msg(echo_roundtrip(local, 1 << 20), "1 MiB echo failed (%s)", log);
    ck_assert_msg(echo_roundtrip(local, 100), "echo after the big one failed (%s)", log);
    proc_kill(&pf);
}

START_TEST(portforward_echo)
{
    portforward_check("true");
    if (s.minor >= 31)
        ck_assert(audit_has((const char *const[]){ "\"method\":\"GET\"", "\"status\":101",
                                                   "\"subresource\":\"portforward\"", NULL }));
    portforward_check("false");
    ck_assert(audit_has((const char *const[]){ "\"method\":\"POST\"", "\"status\":101",
                                               "\"subresource\":\"portforward\"", NULL }));
}
END_TEST

START_TEST(sigterm_clean)
{
    char out[4096];
    ck_assert_int_eq(sh(out, sizeof(out), "%s get pods -A", s.k), 0);
    proc_signal(&s.standin, SIGTERM);
    ck_assert_int_eq(proc_wait(&s.standin, 10000), 0);
    ck_assert(file_contains(s.log, "kube-standin: stopped"));
}
END_TEST

Suite *suite_integration_standin(void)
{
    Suite *su = suite_create("integration/standin");
    TCase *tc = tcase_create("standin");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, discovery_and_seed);
    tcase_add_test(tc, unauthenticated_401);
    tcase_add_test(tc, impersonation);
    tcase_add_test(tc, rbac_view);
    tcase_add_test(tc, crud);
    tcase_add_test(tc, watch_events);
    tcase_add_test(tc, logs_follow);
    tcase_add_test(tc, exec_echo_cat);
    tcase_add_test(tc, portforward_echo);
    tcase_add_test(tc, sigterm_clean);
    suite_add_tcase(su, tc);
    return su;
}
