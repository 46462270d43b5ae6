/*
 * kubectl through drover: a real drover-server and cluster agent, the
 * stand-in Kubernetes API server (tests/kube-standin) as the cluster's
 * apiserver, and the machine's real kubectl with the kubeconfig drover hands
 * out. The stand-in's audit log says who it saw and with which credential.
 */
#include <check.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tests/support/dtest.h"
#include "tests/support/kubetest.h"
#include "tests/support/standin.h"

#define SA_TOKEN "standin-sa-token-7f3a9c"

static struct dtest d;
static struct standin ks;
static char kubeconfig[400];

static void setup(void)
{
    standin_up(&ks, &d, SA_TOKEN);
    snprintf(kubeconfig, sizeof(kubeconfig), "%s/admin.kubeconfig", d.dir);
    kubetest_kubeconfig(&d, d.admin_token, kubeconfig);
    /* Admins are cluster-admin through the agent's RBAC keeper, which the
     * server asks once the tunnel is up: wait for that binding. */
    ck_assert_msg(wait_until(kubetest_can_all, kubeconfig, 20000),
                  "no cluster-admin for drover:admin");
}

static void teardown(void)
{
    standin_down(&ks, &d);
}

static const char deployment[] =
    "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web, namespace: default}\n"
    "spec:\n  replicas: 2\n  selector: {matchLabels: {app: web}}\n"
    "  template:\n    metadata: {labels: {app: web}}\n"
    "    spec: {containers: [{name: web, image: nginx}]}\n";

START_TEST(kubectl_verbs)
{
    static char out[65536];
    char dep[400], args[600];
    ck_assert_int_eq(kubetest_kubectl(kubeconfig, "get nodes", out, sizeof(out)), 0);
    ck_assert_msg(strstr(out, "node-1") && strstr(out, "node-3"), "%s", out);
    kubetest_file(&d, "dep.yaml", deployment, dep, sizeof(dep));
    snprintf(args, sizeof(args), "apply -f %s", dep);
    ck_assert_int_eq(kubetest_kubectl(kubeconfig, args, out, sizeof(out)), 0);
    ck_assert_int_eq(kubetest_kubectl(kubeconfig, "get pods -o name", out, sizeof(out)), 0);
    char pod[200];
    ck_assert_int_eq(sscanf(out, "pod/%199s", pod), 1);
    char cmd[900];
    snprintf(cmd, sizeof(cmd), "KUBECONFIG=%s timeout 5 kubectl logs -f %s 2>&1 | head -3",
             kubeconfig, pod);
    run_capture(cmd, out, sizeof(out));
    ck_assert_msg(strstr(out, "line 2"), "logs -f: %s", out);
    snprintf(args, sizeof(args), "exec %s -- echo hello-through-drover", pod);
    ck_assert_int_eq(kubetest_kubectl(kubeconfig, args, out, sizeof(out)), 0);
    ck_assert_msg(strstr(out, "hello-through-drover"), "exec: %s", out);
    snprintf(cmd, sizeof(cmd), "echo stdin-data | KUBECONFIG=%s timeout 20 kubectl exec -i %s -- cat",
             kubeconfig, pod);
    ck_assert_int_eq(run_capture(cmd, out, sizeof(out)), 0);
    ck_assert_msg(strstr(out, "stdin-data"), "exec -i: %s", out);
    snprintf(args, sizeof(args), "delete -f %s", dep);
    ck_assert_int_eq(kubetest_kubectl(kubeconfig, args, out, sizeof(out)), 0);
    ck_assert_int_ne(kubetest_kubectl(kubeconfig, "get deployment web", out, sizeof(out)), 0);
    ck_assert_msg(strstr(out, "NotFound") || strstr(out, "not found"), "%s", out);
}
END_TEST

START_TEST(watch_sees_changes)
{
    static char out[65536];
    char dep[400], wlog[400], args[600];
    snprintf(wlog, sizeof(wlog), "%s/watch.log", d.dir);
    char kcenv[500];
    snprintf(kcenv, sizeof(kcenv), "KUBECONFIG=%s", kubeconfig);
    const char *env[] = { kcenv, NULL };
    const char *argv[] = { "/usr/bin/timeout", "8", "kubectl", "get", "deployments", "-w",
                           "--output-watch-events", NULL };
    struct proc w;
    proc_spawn(&w, argv, env, wlog);
    sleep(2);
    kubetest_file(&d, "dep.yaml", deployment, dep, sizeof(dep));
    snprintf(args, sizeof(args), "apply -f %s", dep);
    ck_assert_int_eq(kubetest_kubectl(kubeconfig, args, out, sizeof(out)), 0);
    snprintf(args, sizeof(args), "delete -f %s", dep);
    ck_assert_int_eq(kubetest_kubectl(kubeconfig, args, out, sizeof(out)), 0);
    ck_assert_msg(wait_for_log(wlog, "DELETED", 8000), "watch missed the delete");
    ck_assert(file_contains(wlog, "ADDED"));
    proc_kill(&w);
}
END_TEST

/* kubectl port-forward through drover: the stand-in's pods echo on any
 * port, so what we send comes back through both tunnels. */
START_TEST(port_forward_echoes)
{
    static char out[65536];
    char dep[400], args[600];
    kubetest_file(&d, "dep.yaml", deployment, dep, sizeof(dep));
    snprintf(args, sizeof(args), "apply -f %s", dep);
    ck_assert_int_eq(kubetest_kubectl(kubeconfig, args, out, sizeof(out)), 0);
    ck_assert_int_eq(kubetest_kubectl(kubeconfig, "get pods -o name", out, sizeof(out)), 0);
    char pod[200], kcenv[500], ports[32], pflog[400];
    ck_assert_int_eq(sscanf(out, "pod/%199s", pod), 1);
    int port = free_port();
    snprintf(ports, sizeof(ports), "%d:80", port);
    snprintf(kcenv, sizeof(kcenv), "KUBECONFIG=%s", kubeconfig);
    snprintf(pflog, sizeof(pflog), "%s/pf.log", d.dir);
    const char *env[] = { kcenv, NULL };
    const char *argv[] = { "/usr/bin/timeout", "30", "kubectl", "port-forward", pod, ports,
                           NULL };
    struct proc pf;
    proc_spawn(&pf, argv, env, pflog);
    ck_assert_msg(wait_for_log(pflog, "Forwarding from", 15000), "port-forward did not start");
    char cmd[300];
    snprintf(cmd, sizeof(cmd),
             "bash -c 'exec 3<>/dev/tcp/127.0.0.1/%d; printf through-two-tunnels >&3; "
             "timeout 5 head -c 19 <&3'", port);
    ck_assert_int_eq(run_capture(cmd, out, sizeof(out)), 0);
    ck_assert_str_eq(out, "through-two-tunnels");
    proc_kill(&pf);
}
END_TEST

/* The apiserver saw the agent's token and drover's user, never the caller's
 * drover token. */
START_TEST(identity_seen_downstream)
{
    static char out[65536];
    ck_assert_int_eq(kubetest_kubectl(kubeconfig, "get namespaces", out, sizeof(out)), 0);
    FILE *f = fopen(ks.audit, "r");
    ck_assert_ptr_nonnull(f);
    char line[4096];
    int n = 0;
    while (fgets(line, sizeof(line), f)) {
        ck_assert_msg(strstr(line, "\"token\":\"" STANDIN_SA_USER "\""), "%s", line);
        /* The agent's own calls (reports, RBAC) are its service account's. */
        if (strstr(line, "\"impersonatedBy\":null"))
            continue;
        ck_assert_msg(strstr(line, "\"user\":\"drover:admin\""), "%s", line);
        ck_assert_msg(!strstr(line, d.admin_token), "drover token leaked: %s", line);
        n++;
    }
    fclose(f);
    ck_assert_int_gt(n, 0);
    char slog[400];
    snprintf(slog, sizeof(slog), "%s/standin.log", d.dir);
    ck_assert(!file_contains(slog, d.admin_token));
    ck_assert(!file_contains(d.agent_log, d.admin_token));
    ck_assert(!file_contains(d.server_log, d.admin_token));
}
END_TEST

START_TEST(access_rules)
{
    static char out[65536];
    char bob[100], carol[100], bobkc[400], crb[400], args[600];
    kubetest_user(&d, "bob", "viewer", bob, sizeof(bob));
    kubetest_user(&d, "carol", NULL, carol, sizeof(carol));
    /* What the agent's RBAC keeper will do for viewers: view, downstream. */
    kubetest_file(&d, "crb.yaml",
                  "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRoleBinding\n"
                  "metadata: {name: drover-bob-view}\n"
                  "roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: view}\n"
                  "subjects: [{kind: User, name: 'drover:bob', "
                  "apiGroup: rbac.authorization.k8s.io}]\n",
                  crb, sizeof(crb));
    snprintf(args, sizeof(args), "apply -f %s", crb);
    ck_assert_int_eq(kubetest_kubectl(kubeconfig, args, out, sizeof(out)), 0);
    snprintf(bobkc, sizeof(bobkc), "%s/bob.kubeconfig", d.dir);
    kubetest_kubeconfig(&d, bob, bobkc);
    ck_assert_int_eq(kubetest_kubectl(bobkc, "get pods -n kube-system", out, sizeof(out)), 0);
    ck_assert_int_ne(kubetest_kubectl(bobkc, "create configmap nope", out, sizeof(out)), 0);
    ck_assert_msg(strstr(out, "forbidden") || strstr(out, "Forbidden"), "%s", out);
    char path[200];
    struct httpc_resp r;
    snprintf(path, sizeof(path), "/k8s/clusters/%s/api/v1/namespaces", d.cluster);
    ck_assert_int_eq(dtest_call(&d, "GET", path, carol, NULL, &r), 404);
    httpc_free(&r);
    ck_assert_int_eq(dtest_call(&d, "GET", path, NULL, NULL, &r), 401);
    httpc_free(&r);
}
END_TEST

START_TEST(disconnected_answers_503)
{
    static char out[65536];
    ck_assert(kubetest_wait_state(&d, "active", 5000));
    proc_signal(&d.agent, SIGKILL);
    proc_wait(&d.agent, 5000);
    /* dead-after is 2 s in these tests; a killed agent's socket closes at once. */
    ck_assert_msg(kubetest_wait_state(&d, "disconnected", 3000),
                  "cluster not disconnected");
    long long t0 = mono_ms();
    ck_assert_int_ne(kubetest_kubectl(kubeconfig, "get nodes --request-timeout=10s", out,
                                      sizeof(out)), 0);
    fprintf(stderr, "disconnected_answers_503: kubectl failed after %lld ms: %.120s\n",
            mono_ms() - t0, out);
    ck_assert_msg(strstr(out, "unable to handle") || strstr(out, "ServiceUnavailable") ||
                  strstr(out, "503"), "%s", out);
}
END_TEST

/* 50 watches and a 200 MiB transfer on the same tunnel; a plain GET still
 * answers (its latency is reported, not asserted). */
START_TEST(busy_tunnel_still_answers)
{
    static char out[65536];
    char kcenv[500];
    snprintf(kcenv, sizeof(kcenv), "KUBECONFIG=%s", kubeconfig);
    const char *env[] = { kcenv, NULL };
    /* Under valgrind, a tenth of the load: memcheck is here for memory
     * errors, and at its speed the full load only measures valgrind. */
    bool vg = proc_under_valgrind();
    int nwatch = vg ? 5 : 50;
    static struct proc watches[50];
    for (int i = 0; i < nwatch; i++) {
        char wlog[400];
        snprintf(wlog, sizeof(wlog), "%s/w%d.log", d.dir, i);
        const char *argv[] = { "/usr/bin/timeout", "60", "kubectl", "get", "pods", "-A", "-w",
                               NULL };
        proc_spawn(&watches[i], argv, env, wlog);
    }
    char dlog[400], target[64];
    snprintf(dlog, sizeof(dlog), "%s/download.log", d.dir);
    snprintf(target, sizeof(target), "127.0.0.1:%d", d.relay_port);
    const char *dargv[] = { tool_path("tcpdata"), "download", "--connect", target, "--bytes",
                            vg ? "20971520" : "209715200", NULL };
    struct proc dl;
    proc_spawn(&dl, dargv, NULL, dlog);
    sleep(3);
    char cmd[900];
    snprintf(cmd, sizeof(cmd),
             "curl -sk -o /dev/null -w '%%{http_code} %%{time_total}' -H 'Authorization: "
             "Bearer %s' https://127.0.0.1:%d/k8s/clusters/%s/api/v1/namespaces/default",
             d.admin_token, d.https_port, d.cluster);
    double worst = 0;
    for (int i = 0; i < 10; i++) {
        ck_assert_int_eq(run_capture(cmd, out, sizeof(out)), 0);
        int code = 0;
        double secs = 0;
        ck_assert_int_eq(sscanf(out, "%d %lf", &code, &secs), 2);
        ck_assert_int_eq(code, 200);
        if (secs > worst)
            worst = secs;
    }
    ck_assert_int_eq(proc_wait(&dl, 120000), 0);
    ck_assert(file_contains(dlog, "ok=1"));
    fprintf(stderr, "busy_tunnel_still_answers: GET under %d watches + %s: worst %.1f ms\n",
            nwatch, vg ? "20 MiB" : "200 MiB", worst * 1000);
    for (int i = 0; i < nwatch; i++)
        proc_kill(&watches[i]);
}
END_TEST

Suite *suite_integration_kubectl(void)
{
    Suite *s = suite_create("integration/kubectl");
    TCase *tc = tcase_create("kubectl");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 180);
    tcase_add_test(tc, kubectl_verbs);
    tcase_add_test(tc, watch_sees_changes);
    tcase_add_test(tc, port_forward_echoes);
    tcase_add_test(tc, identity_seen_downstream);
    tcase_add_test(tc, access_rules);
    tcase_add_test(tc, disconnected_answers_503);
    tcase_add_test(tc, busy_tunnel_still_answers);
    suite_add_tcase(s, tc);
    return s;
}
