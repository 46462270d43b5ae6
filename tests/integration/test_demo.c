/*
 * make demo's walk-through (scripts/demo.sh with DEMO_ONESHOT=1): the
 * stand-in cluster, drover-server, its agents, droverctl login and cluster
 * create, and kubectl through drover, as a newcomer would run it.
 */
#include <check.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/support/proc.h"

START_TEST(demo_walks_through_to_kubectl)
{
    static char out[64 * 1024];
    char bin[512], tools[512], cmd[1400];
    snprintf(bin, sizeof(bin), "%s", bin_path("drover-server"));
    snprintf(tools, sizeof(tools), "%s", tool_path("kube-standin"));
    snprintf(cmd, sizeof(cmd), "DEMO_ONESHOT=1 timeout 180 scripts/demo.sh %s %s 2>&1",
             dirname(bin), dirname(tools));
    int st = run_capture(cmd, out, sizeof(out));
    ck_assert_msg(st == 0, "demo exited %d:\n%s", st, out);
    /* The cluster turned active through its agent, kubectl saw the stand-in's
     * nodes, and a ConfigMap made through drover read back. */
    ck_assert_msg(strstr(out, "active   cluster-agent"), "%s", out);
    ck_assert_msg(strstr(out, "node-1   Ready"), "%s", out);
    ck_assert_msg(strstr(out, "\nhi\n"), "%s", out);
    ck_assert_msg(strstr(out, "== done"), "%s", out);
}
END_TEST

Suite *suite_integration_demo(void)
{
    Suite *s = suite_create("integration/demo");
    TCase *t = tcase_create("demo");
    tcase_set_timeout(t, 240);
    tcase_add_test(t, demo_walks_through_to_kubectl);
    suite_add_tcase(s, t);
    return s;
}
