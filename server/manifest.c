/*
 * manifest: the agent import manifest. See manifest.h, and docs/MANIFEST.md
 * for why each object looks the way it does.
 *
 * The YAML is built from libyaml emitter events. Small helpers emit the
 * shapes Kubernetes objects repeat (env vars, tolerations, probes, hostPath
 * volumes); one function per object emits a document. Emitter errors are
 * sticky: the first one is kept and every later event is dropped, so the
 * object functions read as straight-line descriptions of the YAML.
 */
#include "server/manifest.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <yaml.h>

#define NAMESPACE "drover-system"
#define SERVICE_ACCOUNT "drover"
#define ROLE "drover-agent"
#define SECRET "drover-credentials"
#define CLUSTER_AGENT "drover-cluster-agent"
#define NODE_AGENT "drover-node-agent"

/*
 * Health ports. The cluster agent lives in the pod network, where the
 * kubelet probes the pod IP, so it must listen on 0.0.0.0:9443 (plain HTTP,
 * /healthz and /readyz only; nothing else is served there). The node agent
 * uses the host's network, so it takes a different port: two agents that
 * share a binary and its defaults must never fight over one host port, and
 * a port seen on a node then says which agent holds it. Its probes target
 * 127.0.0.1, which with hostNetwork is the node's loopback where the kubelet
 * also runs, so the node agent may bind loopback only and not expose an
 * HTTP port on every interface of every node.
 */
#define CLUSTER_AGENT_HEALTH_PORT 9443
#define NODE_AGENT_HEALTH_PORT 9444

/* Same cap as the agents' DROVER_SERVER parser (AGENT_MAX_SERVERS): a list
 * the agents would refuse is refused here, where the admin can see it. */
#define MAX_SERVERS 8

/* ---- output buffer ---- */

struct outbuf {
    char *buf;
    size_t len, cap;    /* cap always leaves room for the final NUL */
    bool too_big, oom;
};

static int out_write(void *data, unsigned char *bytes, size_t size)
{
    struct outbuf *o = data;
    if (size > MANIFEST_MAX_OUTPUT - o->len) {
        o->too_big = true;
        return 0;
    }
    if (size >= o->cap - o->len) {
        size_t cap = o->cap ? o->cap : 16384;
        while (size >= cap - o->len)
            cap *= 2;   /* bounded: len + size <= MANIFEST_MAX_OUTPUT */
        char *nb = realloc(o->buf, cap);
        if (!nb) {
            o->oom = true;
            return 0;
        }
        o->buf = nb;
        o->cap = cap;
    }
    memcpy(o->buf + o->len, bytes, size);
    o->len += size;
    return 1;
}

/* ---- events ---- */

struct em {
    yaml_emitter_t e;
    const char *why;    /* first failure (static text); NULL while all is well */
};

/* Hands ev (made by an *_event_initialize that returned made) to the
 * emitter, which owns it from then on, even when it fails. */
static void emit(struct em *m, yaml_event_t *ev, int made)
{
    if (!made) {
        /* Values are checked for UTF-8 beforehand, so only memory is left. */
        if (!m->why)
            m->why = "out of memory building a YAML event";
        return;
    }
    if (m->why) {
        yaml_event_delete(ev);
        return;
    }
    if (!yaml_emitter_emit(&m->e, ev))
        m->why = m->e.problem ? m->e.problem : "YAML emitter failed";
}

static bool is_alpha(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static bool is_alnum(char c)
{
    return is_alpha(c) || (c >= '0' && c <= '9');
}

/*
 * True if s, written unquoted, reads back as this same string. Kubernetes
 * decodes YAML with 1.1 rules, where yes/no/on/off/y/n are booleans and a
 * leading digit may make a number (an all-digit cluster id or checksum as
 * a label or env value would become an int and be rejected). So: a letter
 * or '/' first, only [A-Za-z0-9._/-] after, and none of the 1.1 boolean or
 * null words. Deliberately conservative; everything else is double-quoted.
 */
static bool plain_is_string(const char *s)
{
    static const char *const words[] = { "y", "n", "yes", "no", "on", "off",
                                         "true", "false", "null", NULL };
    if (!is_alpha(s[0]) && s[0] != '/')
        return false;
    for (const char *c = s; *c; c++)
        if (!is_alnum(*c) && *c != '-' && *c != '.' && *c != '_' && *c != '/')
            return false;
    for (size_t i = 0; words[i]; i++)
        if (strcasecmp(s, words[i]) == 0)
            return false;
    return true;
}

/* A string scalar (is_string) is plain when that is safe and double-quoted
 * otherwise; a number or boolean is always plain, so it keeps its type. */
static void scalar(struct em *m, const char *s, bool is_string)
{
    yaml_event_t ev;
    bool plain = !is_string || plain_is_string(s);
    int made = yaml_scalar_event_initialize(
        &ev, NULL, NULL, (const yaml_char_t *)s, (int)strlen(s), plain, is_string,
        plain ? YAML_PLAIN_SCALAR_STYLE : YAML_DOUBLE_QUOTED_SCALAR_STYLE);
    emit(m, &ev, made);
}

static void str(struct em *m, const char *s)
{
    scalar(m, s, true);
}

static void map_begin(struct em *m)
{
    yaml_event_t ev;
    emit(m, &ev, yaml_mapping_start_event_initialize(&ev, NULL, NULL, 1,
                                                     YAML_BLOCK_MAPPING_STYLE));
}

static void map_end(struct em *m)
{
    yaml_event_t ev;
    emit(m, &ev, yaml_mapping_end_event_initialize(&ev));
}

/* Short lists of words (verbs, commands) read best in flow style. */
static void seq_begin(struct em *m, bool flow)
{
    yaml_event_t ev;
    emit(m, &ev, yaml_sequence_start_event_initialize(
                     &ev, NULL, NULL, 1,
                     flow ? YAML_FLOW_SEQUENCE_STYLE : YAML_BLOCK_SEQUENCE_STYLE));
}

static void seq_end(struct em *m)
{
    yaml_event_t ev;
    emit(m, &ev, yaml_sequence_end_event_initialize(&ev));
}

static void kv(struct em *m, const char *k, const char *v)
{
    str(m, k);
    str(m, v);
}

static void kv_int(struct em *m, const char *k, long v)
{
    char b[24];
    snprintf(b, sizeof(b), "%ld", v);
    str(m, k);
    scalar(m, b, false);
}

static void kv_bool(struct em *m, const char *k, bool v)
{
    str(m, k);
    scalar(m, v ? "true" : "false", false);
}

static void key_map(struct em *m, const char *k)
{
    str(m, k);
    map_begin(m);
}

static void key_seq(struct em *m, const char *k)
{
    str(m, k);
    seq_begin(m, false);
}

/* k: [items...], items NULL-terminated. */
static void kv_list(struct em *m, const char *k, const char *const *items)
{
    str(m, k);
    seq_begin(m, true);
    for (; *items; items++)
        str(m, *items);
    seq_end(m);
}

/* ---- common shapes ---- */

/* Documents start with an explicit "---" so the stream reads (and greps)
 * as one object per document. */
static void doc_begin(struct em *m, const char *api, const char *kind)
{
    yaml_event_t ev;
    emit(m, &ev, yaml_document_start_event_initialize(&ev, NULL, NULL, NULL, 0));
    map_begin(m);
    kv(m, "apiVersion", api);
    kv(m, "kind", kind);
}

static void doc_end(struct em *m)
{
    yaml_event_t ev;
    map_end(m);
    emit(m, &ev, yaml_document_end_event_initialize(&ev, 1));
}

/* The labels every object carries; callers open and close the map. */
static void common_labels(struct em *m, const struct manifest_params *p)
{
    kv(m, "app.kubernetes.io/name", "drover-agent");
    kv(m, "app.kubernetes.io/part-of", "drover");
    kv(m, "drover.io/cluster", p->cluster_id);
}

/* ns NULL for cluster-scoped objects. */
static void metadata(struct em *m, const struct manifest_params *p, const char *name,
                     const char *ns)
{
    key_map(m, "metadata");
    kv(m, "name", name);
    if (ns)
        kv(m, "namespace", ns);
    key_map(m, "labels");
    common_labels(m, p);
    map_end(m);
    map_end(m);
}

/* key: {matchLabels: {app: app}}. Selectors use only the app label: they
 * are immutable, so they must not hold anything a re-import could change. */
static void match_app(struct em *m, const char *key, const char *app)
{
    key_map(m, key);
    key_map(m, "matchLabels");
    kv(m, "app", app);
    map_end(m);
    map_end(m);
}

/* A pod template's metadata: the common labels plus the selector's. */
static void template_metadata(struct em *m, const struct manifest_params *p, const char *app)
{
    key_map(m, "metadata");
    key_map(m, "labels");
    common_labels(m, p);
    kv(m, "app", app);
    map_end(m);
    map_end(m);
}

static void env_value(struct em *m, const char *name, const char *value)
{
    map_begin(m);
    kv(m, "name", name);
    kv(m, "value", value);
    map_end(m);
}

static void env_secret(struct em *m, const char *name, const char *key)
{
    map_begin(m);
    kv(m, "name", name);
    key_map(m, "valueFrom");
    key_map(m, "secretKeyRef");
    kv(m, "name", SECRET);
    kv(m, "key", key);
    map_end(m);
    map_end(m);
    map_end(m);
}

static void env_field(struct em *m, const char *name, const char *path)
{
    map_begin(m);
    kv(m, "name", name);
    key_map(m, "valueFrom");
    key_map(m, "fieldRef");
    kv(m, "fieldPath", path);
    map_end(m);
    map_end(m);
    map_end(m);
}

/* What both agents need to reach and trust the server (PRODUCT.md "Agent
 * settings"). URL and token come from the Secret so they do not show in
 * `kubectl describe` output of the workloads; the checksum and id are not
 * secrets. DROVER_NODE_ROLES is left out on purpose: agents read it from
 * their node's labels, which stay current when a node changes role. */
static void env_common(struct em *m, const struct manifest_params *p)
{
    env_secret(m, "DROVER_SERVER", "url");
    env_secret(m, "DROVER_TOKEN", "token");
    env_value(m, "DROVER_CA_CHECKSUM", p->ca_checksum);
    env_value(m, "DROVER_CLUSTER_ID", p->cluster_id);
    env_field(m, "DROVER_NODE_NAME", "spec.nodeName");
}

/* key NULL matches every taint; effect NULL every effect. */
static void toleration(struct em *m, const char *key, const char *effect)
{
    map_begin(m);
    if (key)
        kv(m, "key", key);
    kv(m, "operator", "Exists");
    if (effect)
        kv(m, "effect", effect);
    map_end(m);
}

/* host NULL means the pod IP (the kubelet's default). Three misses ten
 * seconds apart: a stalled agent is restarted within ~30 s, a slow one is
 * not killed for a single late answer. */
static void probe(struct em *m, const char *which, const char *path, int port,
                  const char *host)
{
    key_map(m, which);
    key_map(m, "httpGet");
    if (host)
        kv(m, "host", host);
    kv(m, "path", path);
    kv_int(m, "port", port);
    kv(m, "scheme", "HTTP");
    map_end(m);
    kv_int(m, "periodSeconds", 10);
    kv_int(m, "timeoutSeconds", 5);
    kv_int(m, "failureThreshold", 3);
    map_end(m);
}

/* /healthz: the agent's loop is alive (never depends on the server, or an
 * outage would restart every agent at once). /readyz: it holds a tunnel to
 * the server, which is what a rollout waits for before removing the old pod. */
static void probes(struct em *m, int port, const char *host)
{
    probe(m, "livenessProbe", "/healthz", port, host);
    probe(m, "readinessProbe", "/readyz", port, host);
}

/* No CPU limit: throttling an agent that carries kubectl traffic only adds
 * latency; memory is limited so a leak is bounded and restarts the agent. */
static void resources(struct em *m, const char *cpu, const char *mem, const char *mem_limit)
{
    key_map(m, "resources");
    key_map(m, "requests");
    kv(m, "cpu", cpu);
    kv(m, "memory", mem);
    map_end(m);
    key_map(m, "limits");
    kv(m, "memory", mem_limit);
    map_end(m);
    map_end(m);
}

static void seccomp_default(struct em *m)
{
    key_map(m, "seccompProfile");
    kv(m, "type", "RuntimeDefault");
    map_end(m);
}

static void host_path_volume(struct em *m, const char *name, const char *path)
{
    map_begin(m);
    kv(m, "name", name);
    key_map(m, "hostPath");
    kv(m, "path", path);
    kv(m, "type", "DirectoryOrCreate");
    map_end(m);
    map_end(m);
}

static void volume_mount(struct em *m, const char *name, const char *path, bool read_only)
{
    map_begin(m);
    kv(m, "name", name);
    kv(m, "mountPath", path);
    if (read_only)
        kv_bool(m, "readOnly", true);
    map_end(m);
}

/* ---- objects ---- */

static void namespace_doc(struct em *m, const struct manifest_params *p)
{
    doc_begin(m, "v1", "Namespace");
    key_map(m, "metadata");
    kv(m, "name", NAMESPACE);
    key_map(m, "labels");
    common_labels(m, p);
    /* The node agent needs hostNetwork and hostPath, which the baseline
     * Pod Security level forbids; on a cluster that enforces baseline by
     * default its pods would be refused and the DaemonSet would sit at zero
     * pods with no error anyone sees. */
    kv(m, "pod-security.kubernetes.io/enforce", "privileged");
    map_end(m);
    map_end(m);
    doc_end(m);
}

static void service_account_doc(struct em *m, const struct manifest_params *p)
{
    doc_begin(m, "v1", "ServiceAccount");
    metadata(m, p, SERVICE_ACCOUNT, NAMESPACE);
    doc_end(m);
}

static void rule(struct em *m, const char *const *groups, const char *const *res,
                 const char *const *verbs)
{
    map_begin(m);
    kv_list(m, "apiGroups", groups);
    kv_list(m, "resources", res);
    kv_list(m, "verbs", verbs);
    map_end(m);
}

static void cluster_role_doc(struct em *m, const struct manifest_params *p)
{
    static const char *const core[] = { "", NULL };
    static const char *const rbac[] = { "rbac.authorization.k8s.io", NULL };
    static const char *const any[] = { "*", NULL };
    static const char *const watched[] = { "nodes", "events", "namespaces", "pods", NULL };
    static const char *const read[] = { "get", "list", "watch", NULL };
    static const char *const identities[] = { "users", "groups", "serviceaccounts", NULL };
    static const char *const impersonate[] = { "impersonate", NULL };
    static const char *const roles[] = { "clusterroles", "clusterrolebindings", NULL };
    static const char *const manage[] = { "create", "get", "list", "watch",
                                          "update", "patch", "delete", NULL };

    doc_begin(m, "rbac.authorization.k8s.io/v1", "ClusterRole");
    metadata(m, p, ROLE, NULL);
    key_seq(m, "rules");
    /* What the agents themselves use: node and event watches for cluster
     * state, impersonation so proxied requests run as drover:<user>, and
     * the membership ClusterRoleBindings (labelled drover.io/managed; RBAC
     * cannot restrict by label, hence all of them). */
    rule(m, core, watched, read);
    rule(m, core, identities, impersonate);
    rule(m, rbac, roles, manage);
    /* Everything, as Rancher's cattle-admin grants: the cluster agent
     * applies arbitrary objects that admins POST to /v3/clusters/{id}/apply,
     * and binding users to cluster-admin needs the rights it grants. This
     * makes the rules above redundant today; they stay so that narrowing
     * this rule later cannot silently drop what the agents rely on. */
    rule(m, any, any, any);
    seq_end(m);
    doc_end(m);
}

static void cluster_role_binding_doc(struct em *m, const struct manifest_params *p)
{
    doc_begin(m, "rbac.authorization.k8s.io/v1", "ClusterRoleBinding");
    metadata(m, p, ROLE, NULL);
    key_map(m, "roleRef");
    kv(m, "apiGroup", "rbac.authorization.k8s.io");
    kv(m, "kind", "ClusterRole");
    kv(m, "name", ROLE);
    map_end(m);
    key_seq(m, "subjects");
    map_begin(m);
    kv(m, "kind", "ServiceAccount");
    kv(m, "name", SERVICE_ACCOUNT);
    kv(m, "namespace", NAMESPACE);
    map_end(m);
    seq_end(m);
    doc_end(m);
}

static void secret_doc(struct em *m, const struct manifest_params *p)
{
    doc_begin(m, "v1", "Secret");
    metadata(m, p, SECRET, NAMESPACE);
    kv(m, "type", "Opaque");
    /* stringData, not data: the API server does the base64, and an
     * operator reviewing the manifest sees the URL the agents will dial. */
    key_map(m, "stringData");
    kv(m, "url", p->server_url);
    kv(m, "token", p->token);
    map_end(m);
    doc_end(m);
}

static void cluster_agent_container(struct em *m, const struct manifest_params *p)
{
    static const char *const command[] = { CLUSTER_AGENT, NULL };
    static const char *const drop_all[] = { "ALL", NULL };

    map_begin(m);
    kv(m, "name", "cluster-agent");
    kv(m, "image", p->agent_image);
    kv_list(m, "command", command);
    key_seq(m, "env");
    env_common(m, p);
    seq_end(m);
    probes(m, CLUSTER_AGENT_HEALTH_PORT, NULL);
    resources(m, "50m", "64Mi", "256Mi");
    /* The cluster agent only talks to the server and the API server: it
     * needs no root, no capability and no writable filesystem. */
    key_map(m, "securityContext");
    kv_bool(m, "runAsNonRoot", true);
    kv_int(m, "runAsUser", 65532);
    kv_bool(m, "allowPrivilegeEscalation", false);
    kv_bool(m, "readOnlyRootFilesystem", true);
    key_map(m, "capabilities");
    kv_list(m, "drop", drop_all);
    map_end(m);
    seccomp_default(m);
    map_end(m);
    map_end(m);
}

static void cluster_agent_pod_spec(struct em *m, const struct manifest_params *p)
{
    key_map(m, "spec");
    kv(m, "serviceAccountName", SERVICE_ACCOUNT);
    /* Prefer another node than the pod being replaced: during a surge the
     * old and new agent then do not share a node's fate. Only preferred, so
     * a one-node cluster still schedules. */
    key_map(m, "affinity");
    key_map(m, "podAntiAffinity");
    key_seq(m, "preferredDuringSchedulingIgnoredDuringExecution");
    map_begin(m);
    kv_int(m, "weight", 100);
    key_map(m, "podAffinityTerm");
    match_app(m, "labelSelector", CLUSTER_AGENT);
    kv(m, "topologyKey", "kubernetes.io/hostname");
    map_end(m);
    map_end(m);
    seq_end(m);
    map_end(m);
    map_end(m);
    /* A freshly built cluster may have only tainted control-plane nodes, or
     * nodes not yet Ready because their CNI is what an admin wants to install
     * through drover: the agent must run there to be of any use. */
    key_seq(m, "tolerations");
    toleration(m, "node-role.kubernetes.io/control-plane", "NoSchedule");
    toleration(m, "node-role.kubernetes.io/master", "NoSchedule");
    toleration(m, "node.kubernetes.io/not-ready", "NoExecute");
    seq_end(m);
    key_seq(m, "containers");
    cluster_agent_container(m, p);
    seq_end(m);
    map_end(m);
}

static void deployment_doc(struct em *m, const struct manifest_params *p)
{
    doc_begin(m, "apps/v1", "Deployment");
    metadata(m, p, CLUSTER_AGENT, NAMESPACE);
    key_map(m, "spec");
    /* One replica: the server routes a cluster's streams over one cluster
     * agent; node agents stand in while it is away. */
    kv_int(m, "replicas", 1);
    match_app(m, "selector", CLUSTER_AGENT);
    /* Start the new agent and wait for it to be ready (connected) before
     * stopping the old one, so an upgrade never leaves the cluster without
     * a cluster agent. */
    key_map(m, "strategy");
    kv(m, "type", "RollingUpdate");
    key_map(m, "rollingUpdate");
    kv_int(m, "maxUnavailable", 0);
    kv_int(m, "maxSurge", 1);
    map_end(m);
    map_end(m);
    key_map(m, "template");
    template_metadata(m, p, CLUSTER_AGENT);
    cluster_agent_pod_spec(m, p);
    map_end(m);
    map_end(m);
    doc_end(m);
}

static void pdb_doc(struct em *m, const struct manifest_params *p)
{
    doc_begin(m, "policy/v1", "PodDisruptionBudget");
    metadata(m, p, CLUSTER_AGENT, NAMESPACE);
    key_map(m, "spec");
    /* maxUnavailable 1, not minAvailable 1: with one replica the latter
     * would block every `kubectl drain` of the agent's node forever. While
     * the agent is evicted, node agents carry the tunnel; if replicas are
     * ever raised this still keeps evictions to one at a time. */
    kv_int(m, "maxUnavailable", 1);
    match_app(m, "selector", CLUSTER_AGENT);
    map_end(m);
    doc_end(m);
}

/* The node agent's host paths, each mounted at the same path in the pod.
 * /var/lib/drover holds its state and snapshots so they survive the pod;
 * /var/lib/etcd is read-write because a restore rewrites it; the etcd PKI
 * (client certificates for 127.0.0.1:2379) is only read. DirectoryOrCreate
 * throughout, so workers without etcd still start the pod. */
static const struct {
    const char *name, *path;
    bool read_only;
} node_paths[] = {
    { "drover-data", "/var/lib/drover", false },
    { "etcd-data", "/var/lib/etcd", false },
    { "etcd-pki", "/etc/kubernetes/pki/etcd", true },
};

#define N_NODE_PATHS (sizeof(node_paths) / sizeof(node_paths[0]))

static void node_agent_container(struct em *m, const struct manifest_params *p)
{
    static const char *const command[] = { NODE_AGENT, NULL };
    static const char *const drop_all[] = { "ALL", NULL };
    static const char *const file_caps[] = { "CHOWN", "DAC_OVERRIDE", "FOWNER", NULL };

    map_begin(m);
    kv(m, "name", "node-agent");
    kv(m, "image", p->agent_image);
    kv_list(m, "command", command);
    key_seq(m, "env");
    env_common(m, p);
    env_value(m, "DROVER_SNAPSHOT_DIR", "/var/lib/drover/snapshots");
    env_value(m, "DROVER_STATE_DIR", "/var/lib/drover/state");
    seq_end(m);
    probes(m, NODE_AGENT_HEALTH_PORT, "127.0.0.1");
    resources(m, "20m", "32Mi", "256Mi");
    /* Root, because etcd's data and certificates are root-owned and
     * mode 0600/0700. Not privileged, and of root's capabilities only
     * those needed to read and rewrite files etcd may own: no NET_RAW on
     * the host network, no SYS_ADMIN. */
    key_map(m, "securityContext");
    kv_bool(m, "privileged", false);
    kv_int(m, "runAsUser", 0);
    kv_bool(m, "allowPrivilegeEscalation", false);
    key_map(m, "capabilities");
    kv_list(m, "drop", drop_all);
    kv_list(m, "add", file_caps);
    map_end(m);
    seccomp_default(m);
    map_end(m);
    key_seq(m, "volumeMounts");
    for (size_t i = 0; i < N_NODE_PATHS; i++)
        volume_mount(m, node_paths[i].name, node_paths[i].path, node_paths[i].read_only);
    seq_end(m);
    map_end(m);
}

static void node_agent_pod_spec(struct em *m, const struct manifest_params *p)
{
    key_map(m, "spec");
    kv(m, "serviceAccountName", SERVICE_ACCOUNT);
    /* Host network to reach etcd on 127.0.0.1:2379; ClusterFirstWithHostNet
     * keeps cluster DNS working despite it. */
    kv_bool(m, "hostNetwork", true);
    kv(m, "dnsPolicy", "ClusterFirstWithHostNet");
    /* Every node, whatever its taints: etcd and control-plane nodes are
     * where the node agent matters most. */
    key_seq(m, "tolerations");
    toleration(m, NULL, NULL);
    seq_end(m);
    key_seq(m, "containers");
    node_agent_container(m, p);
    seq_end(m);
    key_seq(m, "volumes");
    for (size_t i = 0; i < N_NODE_PATHS; i++)
        host_path_volume(m, node_paths[i].name, node_paths[i].path);
    seq_end(m);
    map_end(m);
}

static void daemonset_doc(struct em *m, const struct manifest_params *p)
{
    doc_begin(m, "apps/v1", "DaemonSet");
    metadata(m, p, NODE_AGENT, NAMESPACE);
    key_map(m, "spec");
    match_app(m, "selector", NODE_AGENT);
    key_map(m, "updateStrategy");
    kv(m, "type", "RollingUpdate");
    key_map(m, "rollingUpdate");
    kv_int(m, "maxUnavailable", 1);
    map_end(m);
    map_end(m);
    key_map(m, "template");
    template_metadata(m, p, NODE_AGENT);
    node_agent_pod_spec(m, p);
    map_end(m);
    map_end(m);
    doc_end(m);
}

/* ---- parameter checks ---- */

static int fail(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int fail(char *err, size_t errlen, const char *fmt, ...)
{
    if (err && errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return -1;
}

/* Well-formed UTF-8 without overlongs, surrogates or values past U+10FFFF:
 * what a YAML reader on the cluster side will accept back. */
static bool utf8_ok(const char *s)
{
    const unsigned char *u = (const unsigned char *)s;
    while (*u) {
        unsigned char c = *u;
        int n = c < 0x80 ? 0 : (c & 0xe0) == 0xc0 ? 1 : (c & 0xf0) == 0xe0 ? 2
              : (c & 0xf8) == 0xf0 ? 3 : -1;
        if (n < 0)
            return false;
        uint32_t cp = n == 0 ? c : n == 1 ? c & 0x1f : n == 2 ? c & 0x0f : c & 0x07;
        for (int i = 1; i <= n; i++) {
            if ((u[i] & 0xc0) != 0x80)
                return false;   /* also stops at the NUL */
            cp = (cp << 6) | (u[i] & 0x3f);
        }
        static const uint32_t min[] = { 0, 0x80, 0x800, 0x10000 };
        if (cp < min[n] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
            return false;
        u += n + 1;
    }
    return true;
}

/* Printable ASCII, no spaces: image references and URLs are nothing else. */
static bool printable_word(const char *s)
{
    for (; *s; s++)
        if (*s <= ' ' || *s > '~')
            return false;
    return true;
}

/* A comma list of https:// URLs, spaces allowed around the commas, as the
 * agents' DROVER_SERVER accepts. Only the shape is checked here; the agents
 * parse each URL fully. */
static const char *check_servers(const char *v)
{
    static const char scheme[] = "https://";
    size_t n = 0;
    for (const char *s = v;; s++) {
        while (*s == ' ')
            s++;
        size_t len = strcspn(s, ","), used = len;
        while (len && s[len - 1] == ' ')
            len--;
        if (len <= strlen(scheme) || strncmp(s, scheme, strlen(scheme)) != 0)
            return "each URL must be https://host[:port][/path]";
        for (size_t i = 0; i < len; i++)
            if (s[i] <= ' ' || s[i] > '~')
                return "URLs must be printable ASCII without spaces";
        if (++n > MAX_SERVERS)
            return "at most 8 URLs";
        s += used;
        if (!*s)
            return NULL;
    }
}

static const char *check_cluster_id(const char *v)
{
    /* Also a label value: at most 63 characters, alphanumeric at both ends. */
    size_t len = strlen(v);
    if (len > 63 || v[0] == '-' || v[len - 1] == '-')
        return "must be 1-63 characters of a-z, 0-9 and '-', not starting or ending with '-'";
    for (const char *c = v; *c; c++)
        if (!((*c >= 'a' && *c <= 'z') || (*c >= '0' && *c <= '9') || *c == '-'))
            return "must be 1-63 characters of a-z, 0-9 and '-', not starting or ending with '-'";
    return NULL;
}

static const char *check_checksum(const char *v)
{
    /* Lowercase only: the agents compare it as text and refuse uppercase. */
    if (strlen(v) != 64)
        return "must be 64 lowercase hex characters (SHA-256 of the CA PEM)";
    for (const char *c = v; *c; c++)
        if (!((*c >= '0' && *c <= '9') || (*c >= 'a' && *c <= 'f')))
            return "must be 64 lowercase hex characters (SHA-256 of the CA PEM)";
    return NULL;
}

static const char *check_token(const char *v)
{
    return utf8_ok(v) ? NULL : "must be valid UTF-8";
}

static const char *check_image(const char *v)
{
    return printable_word(v) ? NULL : "must be printable ASCII without spaces";
}

/* 0, or -1 with "<field>: <why>" in err. Never quotes a value: the token is
 * a secret and the others may be long. */
static int check_params(const struct manifest_params *p, char *err, size_t errlen)
{
    if (!p)
        return fail(err, errlen, "manifest_render: no parameters");
    const struct {
        const char *name, *value;
        const char *(*check)(const char *);
    } fields[] = {
        { "server_url", p->server_url, check_servers },
        { "token", p->token, check_token },
        { "cluster_id", p->cluster_id, check_cluster_id },
        { "ca_checksum", p->ca_checksum, check_checksum },
        { "agent_image", p->agent_image, check_image },
    };
    for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) {
        const char *v = fields[i].value, *why;
        if (!v || !*v)
            return fail(err, errlen, "%s: missing", fields[i].name);
        if (strlen(v) > MANIFEST_MAX_VALUE)
            return fail(err, errlen, "%s: longer than %d bytes", fields[i].name,
                        MANIFEST_MAX_VALUE);
        if ((why = fields[i].check(v)) != NULL)
            return fail(err, errlen, "%s: %s", fields[i].name, why);
    }
    return 0;
}

/* ---- render ---- */

static void stream(struct em *m, const struct manifest_params *p)
{
    yaml_event_t ev;
    emit(m, &ev, yaml_stream_start_event_initialize(&ev, YAML_UTF8_ENCODING));
    namespace_doc(m, p);
    service_account_doc(m, p);
    cluster_role_doc(m, p);
    cluster_role_binding_doc(m, p);
    secret_doc(m, p);
    deployment_doc(m, p);
    pdb_doc(m, p);
    daemonset_doc(m, p);
    emit(m, &ev, yaml_stream_end_event_initialize(&ev));
}

int manifest_render(const struct manifest_params *p, char **out, size_t *len, char *err,
                    size_t errlen)
{
    struct outbuf o = { 0 };
    struct em m = { 0 };
    int rc = -1;

    if (!out || !len)
        return fail(err, errlen, "manifest_render: out and len are required");
    *out = NULL;
    *len = 0;
    if (check_params(p, err, errlen) < 0)
        return -1;
    if (!yaml_emitter_initialize(&m.e))
        return fail(err, errlen, "out of memory");
    yaml_emitter_set_output(&m.e, out_write, &o);
    /* ASCII output (anything else escaped), no line folding: a long token
     * or URL stays on one line, and what kubectl reads is byte-for-byte
     * what was reviewed. */
    yaml_emitter_set_unicode(&m.e, 0);
    yaml_emitter_set_width(&m.e, -1);
    yaml_emitter_set_indent(&m.e, 2);
    stream(&m, p);
    if (m.why || !o.buf) {
        fail(err, errlen, "rendering the manifest: %s",
             o.too_big ? "larger than MANIFEST_MAX_OUTPUT" : o.oom ? "out of memory"
             : m.why ? m.why : "no output");
        goto out;
    }
    o.buf[o.len] = '\0';
    *out = o.buf;
    *len = o.len;
    o.buf = NULL;
    rc = 0;
out:
    yaml_emitter_delete(&m.e);
    free(o.buf);
    return rc;
}
