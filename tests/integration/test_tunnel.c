/*
 * The reverse tunnel end to end: a real drover-server, a real
 * drover-cluster-agent and a tcpdata target, all on loopback over TLS,
 * driven through the server's relay port.
 */
#include <check.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "proto/frame.h"
#include "proto/ws.h"
#include "tests/support/dtest.h"
#include "tests/support/rawws.h"

#define TUNNELS "drover_tunnels{kind=\"cluster\"}"
#define MIB (1024L * 1024)

static struct dtest d;

static void setup(void)
{
    memset(&d, 0, sizeof(d));
    dtest_up(&d);
}

static void teardown(void)
{
    dtest_down(&d);
    proc_cleanup();
}

/* Bytes moved by the bulk tests: a 32nd under valgrind (a few MB/s there),
 * which is there for memory errors and would only be timing itself with the
 * full load: an agent that slow misses its own dead-after. */
static long bulk(long bytes)
{
    return proc_under_valgrind() ? bytes / 32 : bytes;
}

static void expect_ok(const char *args)
{
    char out[1024];
    int rc = dtest_tcpdata(&d, args, out, sizeof(out));
    ck_assert_msg(rc == 0 && strstr(out, "ok=1"), "tcpdata %s failed (%d): %s (logs %s)",
                  args, rc, out, d.dir);
}

START_TEST(bulk_both_directions)
{
    char args[256];
    snprintf(args, sizeof(args), "upload --connect 127.0.0.1:%d --bytes %ld", d.relay_port,
             bulk(256 * MIB));
    expect_ok(args);
    snprintf(args, sizeof(args), "download --connect 127.0.0.1:%d --bytes %ld", d.relay_port,
             bulk(256 * MIB));
    expect_ok(args);
    snprintf(args, sizeof(args), "echo --connect 127.0.0.1:%d --bytes %ld", d.relay_port,
             bulk(64 * MIB));
    expect_ok(args);
}
END_TEST

START_TEST(hundred_streams)
{
    char args[256];
    snprintf(args, sizeof(args), "download --connect 127.0.0.1:%d --bytes %ld --streams 100",
             d.relay_port, bulk(2 * MIB));
    expect_ok(args);
    snprintf(args, sizeof(args), "upload --connect 127.0.0.1:%d --bytes %ld --streams 100",
             d.relay_port, bulk(2 * MIB));
    expect_ok(args);
    ck_assert(dtest_wait_metric(&d, "drover_streams_open", 0, 10000));
}
END_TEST

/* Starts a client that downloads through the relay port, reads stall_after
 * bytes and then stops reading for good; returns once it has. */
static void start_stalled_reader(struct proc *hold, const char *total, const char *stall_after)
{
    char hold_log[300], target[64];
    snprintf(hold_log, sizeof(hold_log), "%s/hold.log", d.dir);
    snprintf(target, sizeof(target), "127.0.0.1:%d", d.relay_port);
    const char *argv[] = { tool_path("tcpdata"), "hold", "--connect", target, "--download",
                           total, "--stall-after", stall_after, NULL };
    proc_spawn(hold, argv, NULL, hold_log);
    ck_assert_msg(wait_for_log(hold_log, "mode=hold", 15000), "hold client never read");
}

/* A reader that stops: the sender stalls at the window, memory stays flat on
 * both ends, and another stream of the same tunnel still completes. */
START_TEST(stalled_reader)
{
    struct proc hold;
    start_stalled_reader(&hold, "4294967296", "1048576");
    sleep(2);   /* let every buffer on the path fill up */
    long srv0 = rss_kib(d.server.pid), ag0 = rss_kib(d.agent.pid);
    char args[256];
    snprintf(args, sizeof(args), "download --connect 127.0.0.1:%d --bytes %ld", d.relay_port,
             128 * MIB);
    expect_ok(args);
    sleep(2);
    long srv1 = rss_kib(d.server.pid), ag1 = rss_kib(d.agent.pid);
    long buffered = dtest_metric(&d, "drover_tunnel_buffered_bytes");
    fprintf(stderr, "stalled_reader: server RSS %ld -> %ld KiB, agent RSS %ld -> %ld KiB, "
                    "server tunnel buffers %ld bytes\n", srv0, srv1, ag0, ag1, buffered);
    ck_assert_msg(srv1 - srv0 < 16 * 1024, "server RSS grew %ld KiB", srv1 - srv0);
    ck_assert_msg(ag1 - ag0 < 16 * 1024, "agent RSS grew %ld KiB", ag1 - ag0);
    ck_assert_int_ge(buffered, 0);
    ck_assert_int_lt(buffered, 4 * MIB);
    ck_assert_int_eq(dtest_metric(&d, "drover_streams_open"), 1);
    proc_kill(&hold);
    ck_assert(dtest_wait_metric(&d, "drover_streams_open", 0, 10000));
}
END_TEST

START_TEST(server_restart)
{
    int fds0 = fd_count(d.agent.pid);
    struct proc hold;
    start_stalled_reader(&hold, "1073741824", "65536");
    ck_assert_int_gt(fd_count(d.agent.pid), fds0);   /* the stream's target socket */
    proc_signal(&d.server, SIGKILL);
    proc_wait(&d.server, 5000);
    ck_assert(wait_for_log(d.agent_log, "link to", 10000));
    dtest_start_server(&d);
    ck_assert_msg(dtest_wait_metric(&d, TUNNELS, 1, 20000), "agent did not come back");
    /* The old tunnel's stream failed: its target socket is gone. */
    ck_assert_int_eq(fd_count(d.agent.pid), fds0);
    char args[128];
    snprintf(args, sizeof(args), "download --connect 127.0.0.1:%d --bytes %ld", d.relay_port,
             8 * MIB);
    expect_ok(args);
    proc_kill(&hold);
}
END_TEST

START_TEST(agent_sigkill)
{
    struct proc hold;
    start_stalled_reader(&hold, "1073741824", "65536");
    ck_assert_int_eq(dtest_metric(&d, "drover_streams_open"), 1);
    proc_signal(&d.agent, SIGKILL);
    proc_wait(&d.agent, 5000);
    /* dead-after is 2 s; a killed process's socket closes at once anyway. */
    ck_assert(dtest_wait_metric(&d, TUNNELS, 0, 3000));
    ck_assert_int_eq(dtest_metric(&d, "drover_streams_open"), 0);
    ck_assert(dtest_wait_metric(&d, "drover_relays_open", 0, 3000));
    proc_kill(&hold);
}
END_TEST

START_TEST(agent_silent)
{
    proc_signal(&d.agent, SIGSTOP);
    long long t0 = mono_ms();
    ck_assert_msg(dtest_wait_metric(&d, TUNNELS, 0, proc_under_valgrind() ? 30000 : 10000),
                  "silent agent not dropped");
    fprintf(stderr, "agent_silent: dropped after %lld ms (dead-after %s)\n", mono_ms() - t0,
            proc_under_valgrind() ? "8 s" : "2 s");
    ck_assert(wait_for_log(d.server_log, "peer silent for", 1000));
    proc_signal(&d.agent, SIGCONT);
    ck_assert_msg(dtest_wait_metric(&d, TUNNELS, 1, 20000), "agent did not reconnect");
}
END_TEST

/* Sends one bad tunnel frame on an authenticated websocket and expects the
 * server to close with 1002 and a reason, and to go on serving the agent. */
static void bad_frame(const uint8_t *frame, size_t len, const char *expect)
{
    struct rawws w;
    ck_assert_int_eq(rawws_open(&w, d.https_port, d.raw_token, d.raw_cluster), 0);
    ck_assert_int_eq(w.status, 101);
    ck_assert_int_eq(rawws_send(&w, WS_OP_BINARY, frame, len), 0);
    char reason[200];
    int code = rawws_wait_close(&w, 5000, reason, sizeof(reason));
    rawws_free(&w);
    ck_assert_msg(code == 1002, "close code %d (%s)", code, reason);
    ck_assert_msg(strstr(reason, expect), "reason \"%s\" lacks \"%s\"", reason, expect);
    char args[128];
    snprintf(args, sizeof(args), "download --connect 127.0.0.1:%d --bytes %ld", d.relay_port,
             MIB);
    expect_ok(args);
}

START_TEST(malformed_frames)
{
    uint8_t f[TUN_HDR_LEN + 8];
    tun_frame_put_header(f, TUN_DATA, 2, 4);
    f[0] = 9;                                     /* unknown version */
    bad_frame(f, TUN_HDR_LEN + 4, "version");
    tun_frame_put_header(f, 42, 2, 0);            /* unknown type */
    bad_frame(f, TUN_HDR_LEN, "type");
    tun_frame_put_header(f, TUN_DATA, 2, 0x7fffffff);   /* oversized length */
    bad_frame(f, TUN_HDR_LEN + 8, "");
    tun_frame_put_header(f, TUN_DATA, 2, 100);    /* truncated frame */
    bad_frame(f, TUN_HDR_LEN + 8, "truncated");
    /* A text message is not a tunnel message. */
    struct rawws w;
    ck_assert_int_eq(rawws_open(&w, d.https_port, d.raw_token, d.raw_cluster), 0);
    ck_assert_int_eq(rawws_send(&w, WS_OP_TEXT, "hello", 5), 0);
    char reason[200];
    ck_assert_int_eq(rawws_wait_close(&w, 5000, reason, sizeof(reason)), 1003);
    rawws_free(&w);
    ck_assert_int_eq(dtest_metric(&d, TUNNELS), 1);
}
END_TEST

START_TEST(wrong_token)
{
    struct rawws w;
    ck_assert_int_eq(rawws_open(&w, d.https_port, "not-the-token", d.cluster), 0);
    ck_assert_int_eq(w.status, 401);
    rawws_free(&w);
    ck_assert(file_contains(d.server_log, "bad credentials"));
    ck_assert(!file_contains(d.server_log, "not-the-token"));
    ck_assert_int_eq(dtest_metric(&d, TUNNELS), 1);
}
END_TEST

START_TEST(wrong_ca_checksum)
{
    struct proc bad;
    char log[300], env[5][200];
    snprintf(log, sizeof(log), "%s/bad-agent.log", d.dir);
    snprintf(env[0], sizeof(env[0]), "DROVER_SERVER=https://127.0.0.1:%d", d.https_port);
    snprintf(env[1], sizeof(env[1]), "DROVER_TOKEN=%s", d.token);
    snprintf(env[2], sizeof(env[2]), "DROVER_CA_CHECKSUM=%064d", 0);
    snprintf(env[3], sizeof(env[3]), "DROVER_CLUSTER_ID=c-other");
    snprintf(env[4], sizeof(env[4]), "DROVER_HEALTH_LISTEN=");
    const char *envp[] = { env[0], env[1], env[2], env[3], env[4], NULL };
    const char *argv[] = { bin_path("drover-cluster-agent"), NULL };
    proc_spawn(&bad, argv, envp, log);
    ck_assert_int_eq(proc_wait(&bad, 15000), 1);
    ck_assert(file_contains(log, "CA checksum"));
    ck_assert_int_eq(dtest_metric(&d, TUNNELS), 1);
}
END_TEST

START_TEST(refused_dial)
{
    char out[512];
    char args[128];
    snprintf(args, sizeof(args), "download --connect 127.0.0.1:%d --bytes 1000 --timeout 10",
             d.refused_relay_port);
    int rc = dtest_tcpdata(&d, args, out, sizeof(out));
    ck_assert_int_eq(rc, 1);
    ck_assert(wait_for_log(d.agent_log, "not in DROVER_ALLOW_DIAL", 5000));
    snprintf(args, sizeof(args), "download --connect 127.0.0.1:%d --bytes %ld", d.relay_port,
             MIB);
    expect_ok(args);
}
END_TEST

START_TEST(bad_setting_exits_2)
{
    char out[1024];
    char cmd[512];
    snprintf(cmd, sizeof(cmd), "%s --ping-interval 5x --data-dir %s/x 2>&1",
             bin_path("drover-server"), d.dir);
    ck_assert_int_eq(run_capture(cmd, out, sizeof(out)), 2);
    ck_assert_msg(strstr(out, "ping-interval"), "message: %s", out);
    snprintf(cmd, sizeof(cmd), "DROVER_SERVER=ftp://x %s 2>&1", bin_path("drover-cluster-agent"));
    ck_assert_int_eq(run_capture(cmd, out, sizeof(out)), 2);
    ck_assert_msg(strstr(out, "server"), "message: %s", out);
}
END_TEST

Suite *suite_integration_tunnel(void)
{
    Suite *s = suite_create("integration/tunnel");
    TCase *tc = tcase_create("tunnel");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 180);
    tcase_add_test(tc, bulk_both_directions);
    tcase_add_test(tc, hundred_streams);
    tcase_add_test(tc, stalled_reader);
    tcase_add_test(tc, server_restart);
    tcase_add_test(tc, agent_sigkill);
    tcase_add_test(tc, agent_silent);
    tcase_add_test(tc, malformed_frames);
    tcase_add_test(tc, wrong_token);
    tcase_add_test(tc, wrong_ca_checksum);
    tcase_add_test(tc, refused_dial);
    tcase_add_test(tc, bad_setting_exits_2);
    suite_add_tcase(s, tc);
    return s;
}
