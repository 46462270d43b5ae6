/*
 * metrics: counters and Prometheus text. See metrics.h.
 */
#include "server/metrics.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/relay.h"
#include "server/audit.h"
#include "server/http_server.h"
#include "server/kubeproxy.h"

/* Latency buckets in seconds, as Prometheus histograms want them. */
static const double bucket_le[] = { 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5 };
#define NBUCKETS (sizeof(bucket_le) / sizeof(bucket_le[0]))

static uint64_t by_code[600];
static uint64_t buckets[NBUCKETS];
static uint64_t req_count;
static double req_sum;

void metrics_request(int status, uint64_t usec)
{
    if (status >= 100 && status < 600)
        by_code[status]++;
    double s = (double)usec / 1e6;
    for (size_t i = 0; i < NBUCKETS; i++)
        if (s <= bucket_le[i])
            buckets[i]++;
    req_count++;
    req_sum += s;
}

struct out {
    char *buf;
    size_t len, cap;
    int failed;
};

static void put(struct out *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void put(struct out *o, const char *fmt, ...)
{
    if (o->failed)
        return;
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(o->buf + o->len, o->cap - o->len, fmt, ap);
        va_end(ap);
        if (n < 0) {
            o->failed = 1;
            return;
        }
        if ((size_t)n < o->cap - o->len) {
            o->len += (size_t)n;
            return;
        }
        char *b = realloc(o->buf, o->cap * 2);
        if (!b) {
            o->failed = 1;
            return;
        }
        o->buf = b;
        o->cap *= 2;
    }
}

static void put_pool(struct out *o, struct db_pool *pool)
{
    struct db_pool_stats ps;
    if (!pool)
        return;
    db_pool_get_stats(pool, &ps);
    put(o, "# HELP drover_datastore_queue Datastore jobs waiting for a worker.\n"
           "# TYPE drover_datastore_queue gauge\ndrover_datastore_queue %zu\n", ps.queued);
    put(o, "# HELP drover_datastore_rejected_total Datastore jobs refused (queue full).\n"
           "# TYPE drover_datastore_rejected_total counter\n"
           "drover_datastore_rejected_total %llu\n", (unsigned long long)ps.rejected);
    put(o, "# HELP drover_datastore_duration_seconds Datastore jobs from submission to answer.\n"
           "# TYPE drover_datastore_duration_seconds histogram\n");
    for (size_t i = 0; i < DB_POOL_BUCKETS; i++)
        put(o, "drover_datastore_duration_seconds_bucket{le=\"%g\"} %llu\n",
            db_pool_bucket_le[i], (unsigned long long)ps.lat_buckets[i]);
    put(o, "drover_datastore_duration_seconds_bucket{le=\"+Inf\"} %llu\n"
           "drover_datastore_duration_seconds_sum %.6f\n"
           "drover_datastore_duration_seconds_count %llu\n",
        (unsigned long long)ps.lat_count, ps.lat_sum, (unsigned long long)ps.lat_count);
}

/* The audit writer's counters and the connections the limits turned away. */
static void put_limits(struct out *o)
{
    put(o, "# HELP drover_audit_records_total Audit log lines written.\n"
           "# TYPE drover_audit_records_total counter\ndrover_audit_records_total %llu\n"
           "# HELP drover_audit_dropped_total Audit log lines lost (writer behind, write failed).\n"
           "# TYPE drover_audit_dropped_total counter\ndrover_audit_dropped_total %llu\n",
        (unsigned long long)audit_written(), (unsigned long long)audit_dropped());
    put(o, "# HELP drover_connections_refused_total Connections closed at accept, by limit.\n"
           "# TYPE drover_connections_refused_total counter\n"
           "drover_connections_refused_total{limit=\"per_ip\"} %llu\n"
           "drover_connections_refused_total{limit=\"total\"} %llu\n",
        (unsigned long long)hs_refused(HS_REFUSED_PER_IP),
        (unsigned long long)hs_refused(HS_REFUSED_TOTAL));
}

char *metrics_render(struct tunnels *ts, struct db_pool *pool, size_t *len)
{
    struct out o = { .buf = malloc(8192), .cap = 8192 };
    if (!o.buf)
        return NULL;
    struct tunnels_stats st;
    tunnels_stats(ts, &st);
    put(&o, "# HELP drover_tunnels Agent tunnels connected, by agent kind.\n"
            "# TYPE drover_tunnels gauge\n"
            "drover_tunnels{kind=\"cluster\"} %zu\ndrover_tunnels{kind=\"node\"} %zu\n",
        st.cluster_agents, st.node_agents);
    put(&o, "# HELP drover_clusters_via_node_agent Clusters whose cluster agent is gone, "
            "carried by a node agent on this server.\n"
            "# TYPE drover_clusters_via_node_agent gauge\n"
            "drover_clusters_via_node_agent %zu\n", st.acting);
    put(&o, "# HELP drover_takeovers_total Node agents given a cluster's role (takeovers).\n"
            "# TYPE drover_takeovers_total counter\ndrover_takeovers_total %llu\n",
        (unsigned long long)st.takeovers);
    put(&o, "# HELP drover_step_downs_total Node agents that handed the role back to a "
            "returning cluster agent.\n"
            "# TYPE drover_step_downs_total counter\ndrover_step_downs_total %llu\n",
        (unsigned long long)st.step_downs);
    put(&o, "# HELP drover_streams_open Streams open over all tunnels.\n"
            "# TYPE drover_streams_open gauge\ndrover_streams_open %zu\n", st.streams);
    put(&o, "# HELP drover_tunnel_buffered_bytes Bytes held in tunnel buffers.\n"
            "# TYPE drover_tunnel_buffered_bytes gauge\ndrover_tunnel_buffered_bytes %zu\n",
        st.buffered);
    put(&o, "# HELP drover_relays_open TCP relays open (relay ports).\n"
            "# TYPE drover_relays_open gauge\ndrover_relays_open %lu\n", relay_count());
    put(&o, "# HELP drover_relay_bytes_total Bytes relayed between connections and streams.\n"
            "# TYPE drover_relay_bytes_total counter\n"
            "drover_relay_bytes_total{direction=\"to_stream\"} %llu\n"
            "drover_relay_bytes_total{direction=\"from_stream\"} %llu\n",
        (unsigned long long)relay_bytes_to_stream(),
        (unsigned long long)relay_bytes_from_stream());
    put(&o, "# HELP drover_kube_exchanges_open kubectl requests being proxied now.\n"
            "# TYPE drover_kube_exchanges_open gauge\ndrover_kube_exchanges_open %lu\n",
        kubeproxy_active());
    put_pool(&o, pool);
    put_limits(&o);
    put(&o, "# HELP drover_http_requests_total HTTP requests answered, by status code.\n"
            "# TYPE drover_http_requests_total counter\n");
    for (int c = 100; c < 600; c++)
        if (by_code[c])
            put(&o, "drover_http_requests_total{code=\"%d\"} %llu\n", c,
                (unsigned long long)by_code[c]);
    put(&o, "# HELP drover_http_request_duration_seconds Time to answer HTTP requests.\n"
            "# TYPE drover_http_request_duration_seconds histogram\n");
    for (size_t i = 0; i < NBUCKETS; i++)
        put(&o, "drover_http_request_duration_seconds_bucket{le=\"%g\"} %llu\n",
            bucket_le[i], (unsigned long long)buckets[i]);
    put(&o, "drover_http_request_duration_seconds_bucket{le=\"+Inf\"} %llu\n"
            "drover_http_request_duration_seconds_sum %.6f\n"
            "drover_http_request_duration_seconds_count %llu\n",
        (unsigned long long)req_count, req_sum, (unsigned long long)req_count);
    if (o.failed) {
        free(o.buf);
        return NULL;
    }
    *len = o.len;
    return o.buf;
}
