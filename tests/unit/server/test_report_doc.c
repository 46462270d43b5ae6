/*
 * Tests of server/report_doc.c: a cluster agent's report checked and
 * digested for the store.
 */
#include <check.h>
#include <stdio.h>
#include <string.h>

#include "server/report_doc.h"

#define NODE(name, cpu, mem) \
    "{\"name\":\"" name "\",\"roles\":[\"control-plane\",\"etcd\"],\"kubeletVersion\":" \
    "\"v1.31.0\",\"ready\":true,\"addresses\":[{\"type\":\"InternalIP\",\"address\":" \
    "\"10.0.0.1\"}],\"capacity\":{\"cpu\":\"" cpu "\",\"memory\":\"" mem "\",\"pods\":" \
    "\"110\"},\"allocatable\":{\"cpu\":\"" cpu "\",\"memory\":\"" mem "\",\"pods\":\"110\"}}"

static const char good[] =
    "{\"kubernetesVersion\":\"v1.31.0\",\"healthy\":false,\"health\":\"etcd failed\","
    "\"future\":{\"ignored\":1},"
    "\"nodes\":[" NODE("node-1", "4", "16Gi") "," NODE("node-2", "500m", "16Gi") ","
    NODE("node-3", "3500m", "16Gi") "],"
    "\"events\":[{\"type\":\"Warning\",\"reason\":\"BackOff\",\"message\":\"restarting\","
    "\"object\":\"Pod/default/web-1\",\"count\":3,\"time\":\"2026-11-24T18:00:00Z\"},"
    "{\"type\":\"Warning\",\"reason\":\"Failed\",\"message\":\"pull\","
    "\"time\":\"2026-11-24T17:00:00.5+01:00\"}]}";

static struct report_doc *parse_ok(const char *s)
{
    struct report_doc *d = NULL;
    char err[300] = "";
    ck_assert_msg(report_doc_parse((const uint8_t *)s, strlen(s), &d, err, sizeof(err)) == 0,
                  "refused: %s", err);
    return d;
}

static void parse_bad(const char *s, const char *want)
{
    struct report_doc *d = (struct report_doc *)1;
    char err[300] = "";
    ck_assert_int_eq(report_doc_parse((const uint8_t *)s, strlen(s), &d, err, sizeof(err)),
                     -1);
    ck_assert_ptr_null(d);
    ck_assert_msg(strstr(err, want), "error \"%s\" lacks \"%s\" (doc %s)", err, want, s);
}

START_TEST(digest)
{
    struct report_doc *d = parse_ok(good);
    const struct store_report *r = &d->r;
    ck_assert_str_eq(r->kubernetes_version, "v1.31.0");
    ck_assert(!r->healthy);
    ck_assert_uint_eq(r->nnodes, 3);
    ck_assert_str_eq(r->capacity_json, "{\"cpu\":\"8\",\"memory\":\"48Gi\",\"pods\":\"330\"}");
    ck_assert_str_eq(r->conditions_json,
                     "[{\"type\":\"Ready\",\"status\":\"False\",\"message\":\"etcd failed\"}]");
    ck_assert_str_eq(r->nodes[1].name, "node-2");
    ck_assert_str_eq(r->nodes[1].roles, "control-plane,etcd");
    ck_assert_str_eq(r->nodes[1].kubelet_version, "v1.31.0");
    ck_assert(r->nodes[1].ready);
    ck_assert(!r->nodes[1].agent_connected);
    ck_assert_str_eq(r->nodes[1].addresses_json,
                     "[{\"type\":\"InternalIP\",\"address\":\"10.0.0.1\"}]");
    ck_assert_str_eq(r->nodes[1].capacity_json,
                     "{\"cpu\":\"500m\",\"memory\":\"16Gi\",\"pods\":\"110\"}");
    ck_assert_uint_eq(r->nevents, 2);
    ck_assert_str_eq(r->events[0].object, "Pod/default/web-1");
    ck_assert_int_eq(r->events[0].time, INT64_C(1795543200000));
    ck_assert_str_eq(r->events[1].object, "");
    ck_assert_int_eq(r->events[1].time, INT64_C(1795543200000) - 2 * 3600000 + 500);
    report_doc_free(d);
}
END_TEST

START_TEST(minimal_and_fractional_cpu)
{
    struct report_doc *d = parse_ok("{\"kubernetesVersion\":\"v1.30.2\",\"healthy\":true,"
                                    "\"nodes\":[{\"name\":\"a\",\"capacity\":{\"cpu\":"
                                    "\"250m\",\"memory\":\"1000\"}},{\"name\":\"b\"}]}");
    ck_assert_str_eq(d->r.capacity_json, "{\"cpu\":\"250m\",\"memory\":\"1000\",\"pods\":\"0\"}");
    ck_assert_str_eq(d->r.conditions_json,
                     "[{\"type\":\"Ready\",\"status\":\"True\",\"message\":\"\"}]");
    ck_assert_str_eq(d->r.nodes[1].roles, "");
    ck_assert_ptr_null(d->r.nodes[1].kubelet_version);
    ck_assert_uint_eq(d->r.nevents, 0);
    report_doc_free(d);
}
END_TEST

START_TEST(health_is_cut)
{
    char doc[1200], health[600];
    memset(health, 'x', sizeof(health) - 1);
    health[sizeof(health) - 1] = '\0';
    snprintf(doc, sizeof(doc), "{\"kubernetesVersion\":\"v1\",\"healthy\":false,"
             "\"health\":\"%s\",\"nodes\":[]}", health);
    struct report_doc *d = parse_ok(doc);
    ck_assert_uint_eq(strlen(d->r.conditions_json),
                      strlen("[{\"type\":\"Ready\",\"status\":\"False\",\"message\":\"\"}]") +
                      REPORT_HEALTH_MAX);
    report_doc_free(d);
}
END_TEST

START_TEST(wrong_shapes)
{
    parse_bad("not json", "not JSON");
    parse_bad("[]", "object");
    parse_bad("{\"kubernetesVersion\":\"v1\",\"nodes\":[]}", "healthy");
    parse_bad("{\"kubernetesVersion\":1,\"healthy\":true,\"nodes\":[]}",
              "kubernetesVersion must be a string");
    parse_bad("{\"healthy\":true,\"nodes\":[]}", "kubernetesVersion is required");
    parse_bad("{\"kubernetesVersion\":\"v1\",\"healthy\":true}", "nodes must be an array");
    parse_bad("{\"kubernetesVersion\":\"v1\",\"healthy\":true,\"nodes\":[1]}",
              "nodes[0] must be an object");
    parse_bad("{\"kubernetesVersion\":\"v1\",\"healthy\":true,\"nodes\":[{}]}",
              "nodes[0].name is required");
    parse_bad("{\"kubernetesVersion\":\"v1\",\"healthy\":true,\"nodes\":[{\"name\":\"a\","
              "\"ready\":\"yes\"}]}", "ready must be a boolean");
    parse_bad("{\"kubernetesVersion\":\"v1\",\"healthy\":true,\"nodes\":[{\"name\":\"a\","
              "\"roles\":\"etcd\"}]}", "roles");
    parse_bad("{\"kubernetesVersion\":\"v1\",\"healthy\":true,\"nodes\":[{\"name\":\"a\","
              "\"capacity\":{\"memory\":\"lots\"}}]}", "capacity.memory");
    parse_bad("{\"kubernetesVersion\":\"v1\",\"healthy\":true,\"nodes\":[{\"name\":\"a\","
              "\"capacity\":{\"cpu\":4}}]}", "capacity.cpu");
    parse_bad("{\"kubernetesVersion\":\"v1\",\"healthy\":true,\"nodes\":[{\"name\":\"a\","
              "\"addresses\":[{\"type\":\"InternalIP\"}]}]}", "address is required");
    parse_bad("{\"kubernetesVersion\":\"v1\",\"healthy\":true,\"nodes\":[],\"events\":{}}",
              "events must be an array");
    parse_bad("{\"kubernetesVersion\":\"v1\",\"healthy\":true,\"nodes\":[],\"events\":[{"
              "\"type\":\"Warning\",\"reason\":\"X\",\"message\":\"m\",\"time\":\"yesterday\"}]}",
              "RFC 3339");
    parse_bad("{\"kubernetesVersion\":\"v1\",\"healthy\":true,\"nodes\":[],\"events\":[{"
              "\"type\":\"Warning\",\"reason\":\"X\",\"message\":\"m\",\"count\":\"3\","
              "\"time\":\"2026-11-24T18:00:00Z\"}]}", "count must be an integer");
    parse_bad("{\"kubernetesVersion\":\"v1\",\"healthy\":true,\"nodes\":[],\"events\":[{"
              "\"type\":\"Warning\",\"message\":\"m\",\"time\":\"2026-11-24T18:00:00Z\"}]}",
              "events[0].reason is required");
}
END_TEST

START_TEST(times)
{
    ck_assert_int_eq(report_parse_time("1970-01-01T00:00:00Z"), 0);
    ck_assert_int_eq(report_parse_time("1970-01-01T00:00:01.25Z"), 1250);
    ck_assert_int_eq(report_parse_time("1970-01-01T01:00:00+01:00"), 0);
    ck_assert_int_lt(report_parse_time("1970-01-01 00:00:00Z"), 0);
    ck_assert_int_lt(report_parse_time("1970-01-01T00:00:00"), 0);
    ck_assert_int_lt(report_parse_time("1970-13-01T00:00:00Z"), 0);
    ck_assert_int_lt(report_parse_time("1970-01-01T00:00:00.Z"), 0);
    ck_assert_int_lt(report_parse_time("1970-01-01T00:00:00Zjunk"), 0);
    ck_assert_int_lt(report_parse_time(NULL), 0);
}
END_TEST

Suite *suite_server_report_doc(void)
{
    Suite *s = suite_create("server/report_doc");
    TCase *tc = tcase_create("report_doc");
    tcase_add_test(tc, digest);
    tcase_add_test(tc, minimal_and_fractional_cpu);
    tcase_add_test(tc, health_is_cut);
    tcase_add_test(tc, wrong_shapes);
    tcase_add_test(tc, times);
    suite_add_tcase(s, tc);
    return s;
}
