/*
 * objects: the bookkeeping the kube-standin test stand-in does on objects as
 * the real API server and its defaulting would: metadata fields the server
 * owns (uid, creationTimestamp, generation), per-kind defaults and the small
 * validation kubectl users run into. A pod is scheduled and "running" the
 * moment it is created; this stand-in has no kubelet to wait for.
 */
#include <ctype.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tests/kube-standin/standin.h"
#include "tests/kube-standin/store.h"

const char *obj_str(const json_t *o, const char *path)
{
    char part[64];
    const json_t *cur = o;
    while (cur && *path) {
        const char *dot = strchr(path, '.');
        size_t n = dot ? (size_t)(dot - path) : strlen(path);
        if (n >= sizeof(part))
            return NULL;
        memcpy(part, path, n);
        part[n] = '\0';
        cur = json_object_get(cur, part);
        path += n + (dot ? 1 : 0);
    }
    return json_is_string(cur) ? json_string_value(cur) : NULL;
}

const char *obj_name(const json_t *o)
{
    const char *s = obj_str(o, "metadata.name");
    return s ? s : "";
}

const char *obj_ns(const json_t *o)
{
    const char *s = obj_str(o, "metadata.namespace");
    return s ? s : "";
}

json_t *obj_meta(json_t *o)
{
    json_t *m = json_object_get(o, "metadata");
    if (!json_is_object(m)) {
        m = json_object();
        json_object_set_new(o, "metadata", m);
    }
    return m;
}

void ks_rfc3339(int64_t t, char out[32])
{
    time_t tt = (time_t)t;
    struct tm tm;
    gmtime_r(&tt, &tm);
    strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

void ks_now_rfc3339(char out[32])
{
    ks_rfc3339((int64_t)time(NULL), out);
}

int64_t ks_parse_time(const char *s)
{
    struct tm tm = { 0 };
    if (!s)
        return 0;
    const char *end = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm);
    if (!end)
        return 0;
    return (int64_t)timegm(&tm);
}

uint64_t ks_rand(void)
{
    uint64_t v = 0;
    if (RAND_bytes((unsigned char *)&v, sizeof(v)) != 1)
        v = (uint64_t)time(NULL) * 6364136223846793005ull + 1442695040888963407ull;
    return v;
}

void ks_uuid(char out[37])
{
    unsigned char b[16];
    for (int i = 0; i < 2; i++) {
        uint64_t v = ks_rand();
        memcpy(b + 8 * i, &v, 8);
    }
    b[6] = (unsigned char)((b[6] & 0x0f) | 0x40);   /* version 4 */
    b[8] = (unsigned char)((b[8] & 0x3f) | 0x80);   /* RFC 4122 variant */
    snprintf(out, 37, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
             b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11],
             b[12], b[13], b[14], b[15]);
}

void ks_rand_suffix(char *out, size_t n)
{
    /* The alphabet of the real name generator: no vowels, no look-alikes. */
    static const char alpha[] = "bcdfghjklmnpqrstvwxz2456789";
    for (size_t i = 0; i < n; i++)
        out[i] = alpha[ks_rand() % (sizeof(alpha) - 1)];
    out[n] = '\0';
}

bool ks_valid_name(const char *name)
{
    size_t n = strlen(name);
    if (n == 0 || n > 253)
        return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)name[i];
        bool alnum = islower(c) || isdigit(c);
        if (!alnum && c != '-' && c != '.')
            return false;
        if ((i == 0 || i == n - 1) && !alnum)
            return false;
    }
    return true;
}

static void set_default(json_t *o, const char *key, json_t *v)
{
    if (!json_object_get(o, key))
        json_object_set_new(o, key, v);
    else
        json_decref(v);
}

static json_t *obj_child(json_t *o, const char *key)
{
    json_t *c = json_object_get(o, key);
    if (!json_is_object(c)) {
        c = json_object();
        json_object_set_new(o, key, c);
    }
    return c;
}

/* The node a new pod lands on: round robin over the workers, like a
 * scheduler that respects the control plane's taint. */
static const char *schedule(struct ks *ks, char *buf, size_t cap)
{
    static unsigned next;
    int workers = ks->o.nodes - 1;
    if (workers <= 0) {
        snprintf(buf, cap, "node-1");
        return buf;
    }
    snprintf(buf, cap, "node-%u", 2 + next++ % (unsigned)workers);
    return buf;
}

static void node_ip(const char *node, char *out, size_t cap)
{
    const char *d = strrchr(node, '-');
    long n = d ? strtol(d + 1, NULL, 10) : 1;
    snprintf(out, cap, "172.18.0.%ld", 1 + n);
}

static json_t *container_status(const json_t *c, const char *now, bool ready)
{
    char id[80];
    snprintf(id, sizeof(id), "containerd://%016llx%016llx",
             (unsigned long long)ks_rand(), (unsigned long long)ks_rand());
    const char *image = obj_str(c, "image");
    return json_pack("{s:s?,s:s?,s:s,s:s,s:b,s:b,s:i,s:{s:{s:s}}}",
                     "name", obj_str(c, "name"), "image", image,
                     "imageID", image ? image : "", "containerID", id,
                     "ready", ready, "started", true, "restartCount", 0,
                     "state", "running", "startedAt", now);
}

/* What the scheduler and a kubelet would have done by the time anyone looks. */
static void pod_defaults(struct ks *ks, json_t *pod, const char *now)
{
    json_t *spec = obj_child(pod, "spec");
    char node[32], hip[32], pip[32];
    if (!obj_str(spec, "nodeName"))
        json_object_set_new(spec, "nodeName", json_string(schedule(ks, node, sizeof(node))));
    set_default(spec, "restartPolicy", json_string("Always"));
    set_default(spec, "dnsPolicy", json_string("ClusterFirst"));
    set_default(spec, "schedulerName", json_string("default-scheduler"));
    set_default(spec, "serviceAccountName", json_string("default"));
    set_default(spec, "terminationGracePeriodSeconds", json_integer(30));
    size_t i;
    json_t *c;
    json_array_foreach(json_object_get(spec, "containers"), i, c) {
        set_default(c, "imagePullPolicy", json_string("IfNotPresent"));
        set_default(c, "terminationMessagePath", json_string("/dev/termination-log"));
        set_default(c, "terminationMessagePolicy", json_string("File"));
        set_default(c, "resources", json_object());
    }
    json_t *st = obj_child(pod, "status");
    if (obj_str(st, "phase"))
        return;     /* the creator set the status itself (seeds do) */
    node_ip(obj_str(spec, "nodeName"), hip, sizeof(hip));
    snprintf(pip, sizeof(pip), "10.244.%u.%u", (unsigned)(ks_rand() % 3 + 1),
             (unsigned)(ks_rand() % 250 + 2));
    json_t *conds = json_array();
    static const char *const types[] = { "PodReadyToStartContainers", "Initialized",
                                         "Ready", "ContainersReady", "PodScheduled" };
    for (size_t t = 0; t < 5; t++)
        json_array_append_new(conds, json_pack("{s:s,s:s,s:n,s:s}", "type", types[t],
                                               "status", "True", "lastProbeTime",
                                               "lastTransitionTime", now));
    json_t *cs = json_array();
    json_array_foreach(json_object_get(spec, "containers"), i, c)
        json_array_append_new(cs, container_status(c, now, true));
    json_object_set_new(st, "phase", json_string("Running"));
    json_object_set_new(st, "conditions", conds);
    json_object_set_new(st, "hostIP", json_string(hip));
    json_object_set_new(st, "hostIPs", json_pack("[{s:s}]", "ip", hip));
    json_object_set_new(st, "podIP", json_string(pip));
    json_object_set_new(st, "podIPs", json_pack("[{s:s}]", "ip", pip));
    json_object_set_new(st, "startTime", json_string(now));
    json_object_set_new(st, "containerStatuses", cs);
    json_object_set_new(st, "qosClass", json_string("BestEffort"));
}

static void service_defaults(json_t *svc)
{
    json_t *spec = obj_child(svc, "spec");
    set_default(spec, "type", json_string("ClusterIP"));
    set_default(spec, "sessionAffinity", json_string("None"));
    if (!obj_str(spec, "clusterIP")) {
        char ip[32];
        snprintf(ip, sizeof(ip), "10.96.%u.%u", (unsigned)(ks_rand() % 250 + 1),
                 (unsigned)(ks_rand() % 250 + 2));
        json_object_set_new(spec, "clusterIP", json_string(ip));
        json_object_set_new(spec, "clusterIPs", json_pack("[s]", ip));
    }
    size_t i;
    json_t *p;
    json_array_foreach(json_object_get(spec, "ports"), i, p) {
        set_default(p, "protocol", json_string("TCP"));
        if (!json_object_get(p, "targetPort") && json_object_get(p, "port"))
            json_object_set(p, "targetPort", json_object_get(p, "port"));
    }
    set_default(obj_child(svc, "status"), "loadBalancer", json_object());
}

static void deployment_defaults(json_t *d)
{
    json_t *spec = obj_child(d, "spec");
    set_default(spec, "replicas", json_integer(1));
    set_default(spec, "revisionHistoryLimit", json_integer(10));
    set_default(spec, "progressDeadlineSeconds", json_integer(600));
    set_default(spec, "strategy", json_pack("{s:s,s:{s:s,s:s}}", "type", "RollingUpdate",
                                            "rollingUpdate", "maxUnavailable", "25%",
                                            "maxSurge", "25%"));
}

/* The checks users meet most; the message is the real one's shape. */
static const char *validate(const struct kres *res, const json_t *o)
{
    static __thread char msg[512];
    const char *name = obj_name(o);
    if (!ks_valid_name(name)) {
        snprintf(msg, sizeof(msg), "%s \"%s\" is invalid: metadata.name: Invalid value: "
                 "\"%s\": a lowercase RFC 1123 subdomain must consist of lower case "
                 "alphanumeric characters, '-' or '.', and must start and end with an "
                 "alphanumeric character", res->kind, name, name);
        return msg;
    }
    if (res->print == KP_POD) {
        json_t *cs = json_object_get(json_object_get(o, "spec"), "containers");
        if (json_array_size(cs) == 0) {
            snprintf(msg, sizeof(msg), "Pod \"%s\" is invalid: spec.containers: Required "
                     "value", name);
            return msg;
        }
    }
    if (res->print == KP_DEPLOYMENT || res->print == KP_DAEMONSET) {
        if (!json_object_get(json_object_get(o, "spec"), "selector")) {
            snprintf(msg, sizeof(msg), "%s.apps \"%s\" is invalid: spec.selector: Required "
                     "value", res->kind, name);
            return msg;
        }
    }
    return NULL;
}

/* Puts the keys in the order the real API writes them: kind, apiVersion,
 * metadata, the rest, status last. Only for people reading the output. */
static void reorder(json_t *o)
{
    static const char *const first[] = { "kind", "apiVersion", "metadata" };
    json_t *n = json_object();
    for (size_t i = 0; i < 3; i++)
        if (json_object_get(o, first[i]))
            json_object_set(n, first[i], json_object_get(o, first[i]));
    const char *k;
    json_t *v;
    json_object_foreach(o, k, v)
        if (!json_object_get(n, k) && strcmp(k, "status") != 0)
            json_object_set(n, k, v);
    if (json_object_get(o, "status"))
        json_object_set(n, "status", json_object_get(o, "status"));
    json_object_clear(o);
    json_object_update(o, n);
    json_decref(n);
}

const char *obj_prepare_create(struct ks *ks, const struct kres *res, json_t *o)
{
    char now[32], uid[37], av[64];
    const char *bad = validate(res, o);
    if (bad)
        return bad;
    ks_now_rfc3339(now);
    ks_uuid(uid);
    kres_api_version(res, av, sizeof(av));
    json_object_set_new(o, "kind", json_string(res->kind));
    json_object_set_new(o, "apiVersion", json_string(av));
    json_t *m = obj_meta(o);
    json_object_set_new(m, "uid", json_string(uid));
    json_object_set_new(m, "creationTimestamp", json_string(now));
    /* Kinds whose spec something acts on carry a generation (pods since
     * 1.33); plain data (config maps, secrets, RBAC) has none. */
    if (strcmp(res->group, "apps") == 0 || res->print == KP_POD)
        json_object_set_new(m, "generation", json_integer(1));
    else
        json_object_del(m, "generation");
    json_object_del(m, "resourceVersion");
    json_object_del(m, "deletionTimestamp");
    json_object_del(m, "managedFields");
    switch (res->print) {
    case KP_POD:
        pod_defaults(ks, o, now);
        break;
    case KP_NAMESPACE:
        json_object_set_new(obj_child(m, "labels"), "kubernetes.io/metadata.name",
                            json_string(obj_name(o)));
        set_default(obj_child(o, "spec"), "finalizers", json_pack("[s]", "kubernetes"));
        json_object_set_new(obj_child(o, "status"), "phase", json_string("Active"));
        break;
    case KP_SERVICE:
        service_defaults(o);
        break;
    case KP_DEPLOYMENT:
        deployment_defaults(o);
        break;
    case KP_SECRET:
        set_default(o, "type", json_string("Opaque"));
        break;
    default:
        break;
    }
    reorder(o);
    return NULL;
}

/* Whether a and b differ outside metadata and status (a spec change). */
static bool spec_changed(const json_t *a, const json_t *b)
{
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)a, k, v) {
        if (strcmp(k, "metadata") == 0 || strcmp(k, "status") == 0)
            continue;
        if (!json_equal(v, json_object_get(b, k)))
            return true;
    }
    json_object_foreach((json_t *)b, k, v) {
        if (strcmp(k, "metadata") != 0 && strcmp(k, "status") != 0 &&
            !json_object_get(a, k))
            return true;
    }
    return false;
}

void obj_prepare_update(const struct kres *res, const json_t *old, json_t *o)
{
    char av[64];
    kres_api_version(res, av, sizeof(av));
    json_object_set_new(o, "kind", json_string(res->kind));
    json_object_set_new(o, "apiVersion", json_string(av));
    json_t *m = obj_meta(o);
    const json_t *om = json_object_get(old, "metadata");
    static const char *const owned[] = { "uid", "creationTimestamp", "namespace",
                                         "deletionTimestamp" };
    for (size_t i = 0; i < sizeof(owned) / sizeof(owned[0]); i++) {
        json_t *v = json_object_get(om, owned[i]);
        if (v)
            json_object_set(m, owned[i], v);
        else
            json_object_del(m, owned[i]);
    }
    json_object_del(m, "managedFields");
    json_int_t gen = json_integer_value(json_object_get(om, "generation"));
    if (gen && spec_changed(old, o))
        gen++;
    if (gen)
        json_object_set_new(m, "generation", json_integer(gen));
    else
        json_object_del(m, "generation");
    /* Status belongs to the controllers; a plain update keeps theirs. */
    if (json_object_get(old, "status"))
        json_object_set(o, "status", json_object_get(old, "status"));
    reorder(o);
}
