/*
 * manifest: the agent import manifest. See manifest.h, and docs/MANIFEST.md
 * for why each object looks the way it does.
 *
 * The YAML is written with common/yamlout (libyaml's emitter underneath).
 * Small helpers emit the shapes Kubernetes objects repeat (env vars,
 * tolerations, probes, hostPath volumes); one function per object emits a
 * document. The writer's errors are sticky, so the object functions read
 * as straight-line descriptions of the YAML and only the end is checked.
 */
#include "server/manifest.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "common/yamlout.h"

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

/* ---- common shapes ---- */

/* The labels every object carries; callers open and close the map. */
static void common_labels(struct yw *w, const struct manifest_params *p)
{
    yw_kv(w, "app.kubernetes.io/name", "drover-agent");
    yw_kv(w, "app.kubernetes.io/part-of", "drover");
    yw_kv(w, "drover.io/cluster", p->cluster_id);
}

/* ns NULL for cluster-scoped objects. */
static void metadata(struct yw *w, const struct manifest_params *p, const char *name,
                     const char *ns)
{
    yw_key_map(w, "metadata");
    yw_kv(w, "name", name);
    if (ns)
        yw_kv(w, "namespace", ns);
    yw_key_map(w, "labels");
    common_labels(w, p);
    yw_map_end(w);
    yw_map_end(w);
}

/* key: {matchLabels: {app: app}}. Selectors use only the app label: they
 * are immutable, so they must not hold anything a re-import could change. */
static void match_app(struct yw *w, const char *key, const char *app)
{
    yw_key_map(w, key);
    yw_key_map(w, "matchLabels");
    yw_kv(w, "app", app);
    yw_map_end(w);
    yw_map_end(w);
}

/* A pod template's metadata: the common labels plus the selector's. */
static void template_metadata(struct yw *w, const struct manifest_params *p, const char *app)
{
    yw_key_map(w, "metadata");
    yw_key_map(w, "labels");
    common_labels(w, p);
    yw_kv(w, "app", app);
    yw_map_end(w);
    yw_map_end(w);
}

static void env_value(struct yw *w, const char *name, const char *value)
{
    yw_map_begin(w);
    yw_kv(w, "name", name);
    yw_kv(w, "value", value);
    yw_map_end(w);
}

static void env_secret(struct yw *w, const char *name, const char *key)
{
    yw_map_begin(w);
    yw_kv(w, "name", name);
    yw_key_map(w, "valueFrom");
    yw_key_map(w, "secretKeyRef");
    yw_kv(w, "name", SECRET);
    yw_kv(w, "key", key);
    yw_map_end(w);
    yw_map_end(w);
    yw_map_end(w);
}

static void env_field(struct yw *w, const char *name, const char *path)
{
    yw_map_begin(w);
    yw_kv(w, "name", name);
    yw_key_map(w, "valueFrom");
    yw_key_map(w, "fieldRef");
    yw_kv(w, "fieldPath", path);
    yw_map_end(w);
    yw_map_end(w);
    yw_map_end(w);
}

/* What both agents need to reach and trust the server (PRODUCT.md "Agent
 * settings"). URL and token come from the Secret so they do not show in
 * `kubectl describe` output of the workloads; the checksum and id are not
 * secrets. DROVER_NODE_ROLES is left out on purpose: agents read it from
 * their node's labels, which stay current when a node changes role. */
static void env_common(struct yw *w, const struct manifest_params *p)
{
    env_secret(w, "DROVER_SERVER", "url");
    env_secret(w, "DROVER_TOKEN", "token");
    env_value(w, "DROVER_CA_CHECKSUM", p->ca_checksum);
    env_value(w, "DROVER_CLUSTER_ID", p->cluster_id);
    env_field(w, "DROVER_NODE_NAME", "spec.nodeName");
}

/* key NULL matches every taint; effect NULL every effect. */
static void toleration(struct yw *w, const char *key, const char *effect)
{
    yw_map_begin(w);
    if (key)
        yw_kv(w, "key", key);
    yw_kv(w, "operator", "Exists");
    if (effect)
        yw_kv(w, "effect", effect);
    yw_map_end(w);
}

/* host NULL means the pod IP (the kubelet's default). Three misses ten
 * seconds apart: a stalled agent is restarted within ~30 s, a slow one is
 * not killed for a single late answer. */
static void probe(struct yw *w, const char *which, const char *path, int port,
                  const char *host)
{
    yw_key_map(w, which);
    yw_key_map(w, "httpGet");
    if (host)
        yw_kv(w, "host", host);
    yw_kv(w, "path", path);
    yw_kv_int(w, "port", port);
    yw_kv(w, "scheme", "HTTP");
    yw_map_end(w);
    yw_kv_int(w, "periodSeconds", 10);
    yw_kv_int(w, "timeoutSeconds", 5);
    yw_kv_int(w, "failureThreshold", 3);
    yw_map_end(w);
}

/* /healthz: the agent's loop is alive (never depends on the server, or an
 * outage would restart every agent at once). /readyz: it holds a tunnel to
 * the server, which is what a rollout waits for before removing the old pod. */
static void probes(struct yw *w, int port, const char *host)
{
    probe(w, "livenessProbe", "/healthz", port, host);
    probe(w, "readinessProbe", "/readyz", port, host);
}

/* No CPU limit: throttling an agent that carries kubectl traffic only adds
 * latency; memory is limited so a leak is bounded and restarts the agent. */
static void resources(struct yw *w, const char *cpu, const char *mem, const char *mem_limit)
{
    yw_key_map(w, "resources");
    yw_key_map(w, "requests");
    yw_kv(w, "cpu", cpu);
    yw_kv(w, "memory", mem);
    yw_map_end(w);
    yw_key_map(w, "limits");
    yw_kv(w, "memory", mem_limit);
    yw_map_end(w);
    yw_map_end(w);
}

static void seccomp_default(struct yw *w)
{
    yw_key_map(w, "seccompProfile");
    yw_kv(w, "type", "RuntimeDefault");
    yw_map_end(w);
}

static void host_path_volume(struct yw *w, const char *name, const char *path)
{
    yw_map_begin(w);
    yw_kv(w, "name", name);
    yw_key_map(w, "hostPath");
    yw_kv(w, "path", path);
    yw_kv(w, "type", "DirectoryOrCreate");
    yw_map_end(w);
    yw_map_end(w);
}

static void volume_mount(struct yw *w, const char *name, const char *path, bool read_only)
{
    yw_map_begin(w);
    yw_kv(w, "name", name);
    yw_kv(w, "mountPath", path);
    if (read_only)
        yw_kv_bool(w, "readOnly", true);
    yw_map_end(w);
}

/* ---- objects ---- */

static void namespace_doc(struct yw *w, const struct manifest_params *p)
{
    yw_doc_begin(w, "v1", "Namespace");
    yw_key_map(w, "metadata");
    yw_kv(w, "name", NAMESPACE);
    yw_key_map(w, "labels");
    common_labels(w, p);
    /* The node agent needs hostNetwork and hostPath, which the baseline
     * Pod Security level forbids; on a cluster that enforces baseline by
     * default its pods would be refused and the DaemonSet would sit at zero
     * pods with no error anyone sees. */
    yw_kv(w, "pod-security.kubernetes.io/enforce", "privileged");
    yw_map_end(w);
    yw_map_end(w);
    yw_doc_end(w);
}

static void service_account_doc(struct yw *w, const struct manifest_params *p)
{
    yw_doc_begin(w, "v1", "ServiceAccount");
    metadata(w, p, SERVICE_ACCOUNT, NAMESPACE);
    yw_doc_end(w);
}

static void rule(struct yw *w, const char *const *groups, const char *const *res,
                 const char *const *verbs)
{
    yw_map_begin(w);
    yw_kv_list(w, "apiGroups", groups);
    yw_kv_list(w, "resources", res);
    yw_kv_list(w, "verbs", verbs);
    yw_map_end(w);
}

static void cluster_role_doc(struct yw *w, const struct manifest_params *p)
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

    yw_doc_begin(w, "rbac.authorization.k8s.io/v1", "ClusterRole");
    metadata(w, p, ROLE, NULL);
    yw_key_seq(w, "rules");
    /* What the agents themselves use: node and event watches for cluster
     * state, impersonation so proxied requests run as drover:<user>, and
     * the membership ClusterRoleBindings (labelled drover.io/managed; RBAC
     * cannot restrict by label, hence all of them). */
    rule(w, core, watched, read);
    rule(w, core, identities, impersonate);
    rule(w, rbac, roles, manage);
    /* Everything, as Rancher's cattle-admin grants: the cluster agent
     * applies arbitrary objects that admins POST to /v3/clusters/{id}/apply,
     * and binding users to cluster-admin needs the rights it grants. This
     * makes the rules above redundant today; they stay so that narrowing
     * this rule later cannot silently drop what the agents rely on. */
    rule(w, any, any, any);
    yw_seq_end(w);
    yw_doc_end(w);
}

static void cluster_role_binding_doc(struct yw *w, const struct manifest_params *p)
{
    yw_doc_begin(w, "rbac.authorization.k8s.io/v1", "ClusterRoleBinding");
    metadata(w, p, ROLE, NULL);
    yw_key_map(w, "roleRef");
    yw_kv(w, "apiGroup", "rbac.authorization.k8s.io");
    yw_kv(w, "kind", "ClusterRole");
    yw_kv(w, "name", ROLE);
    yw_map_end(w);
    yw_key_seq(w, "subjects");
    yw_map_begin(w);
    yw_kv(w, "kind", "ServiceAccount");
    yw_kv(w, "name", SERVICE_ACCOUNT);
    yw_kv(w, "namespace", NAMESPACE);
    yw_map_end(w);
    yw_seq_end(w);
    yw_doc_end(w);
}

static void secret_doc(struct yw *w, const struct manifest_params *p)
{
    yw_doc_begin(w, "v1", "Secret");
    metadata(w, p, SECRET, NAMESPACE);
    yw_kv(w, "type", "Opaque");
    /* stringData, not data: the API server does the base64, and an
     * operator reviewing the manifest sees the URL the agents will dial. */
    yw_key_map(w, "stringData");
    yw_kv(w, "url", p->server_url);
    yw_kv(w, "token", p->token);
    yw_map_end(w);
    yw_doc_end(w);
}

static void cluster_agent_container(struct yw *w, const struct manifest_params *p)
{
    static const char *const command[] = { CLUSTER_AGENT, NULL };
    static const char *const drop_all[] = { "ALL", NULL };

    yw_map_begin(w);
    yw_kv(w, "name", "cluster-agent");
    yw_kv(w, "image", p->agent_image);
    yw_kv_list(w, "command", command);
    yw_key_seq(w, "env");
    env_common(w, p);
    yw_seq_end(w);
    probes(w, CLUSTER_AGENT_HEALTH_PORT, NULL);
    resources(w, "50m", "64Mi", "256Mi");
    /* The cluster agent only talks to the server and the API server: it
     * needs no root, no capability and no writable filesystem. */
    yw_key_map(w, "securityContext");
    yw_kv_bool(w, "runAsNonRoot", true);
    yw_kv_int(w, "runAsUser", 65532);
    yw_kv_bool(w, "allowPrivilegeEscalation", false);
    yw_kv_bool(w, "readOnlyRootFilesystem", true);
    yw_key_map(w, "capabilities");
    yw_kv_list(w, "drop", drop_all);
    yw_map_end(w);
    seccomp_default(w);
    yw_map_end(w);
    yw_map_end(w);
}

static void cluster_agent_pod_spec(struct yw *w, const struct manifest_params *p)
{
    yw_key_map(w, "spec");
    yw_kv(w, "serviceAccountName", SERVICE_ACCOUNT);
    /* Prefer another node than the pod being replaced: during a surge the
     * old and new agent then do not share a node's fate. Only preferred, so
     * a one-node cluster still schedules. */
    yw_key_map(w, "affinity");
    yw_key_map(w, "podAntiAffinity");
    yw_key_seq(w, "preferredDuringSchedulingIgnoredDuringExecution");
    yw_map_begin(w);
    yw_kv_int(w, "weight", 100);
    yw_key_map(w, "podAffinityTerm");
    match_app(w, "labelSelector", CLUSTER_AGENT);
    yw_kv(w, "topologyKey", "kubernetes.io/hostname");
    yw_map_end(w);
    yw_map_end(w);
    yw_seq_end(w);
    yw_map_end(w);
    yw_map_end(w);
    /* A freshly built cluster may have only tainted control-plane nodes, or
     * nodes not yet Ready because their CNI is what an admin wants to install
     * through drover: the agent must run there to be of any use. */
    yw_key_seq(w, "tolerations");
    toleration(w, "node-role.kubernetes.io/control-plane", "NoSchedule");
    toleration(w, "node-role.kubernetes.io/master", "NoSchedule");
    toleration(w, "node.kubernetes.io/not-ready", "NoExecute");
    yw_seq_end(w);
    yw_key_seq(w, "containers");
    cluster_agent_container(w, p);
    yw_seq_end(w);
    yw_map_end(w);
}

static void deployment_doc(struct yw *w, const struct manifest_params *p)
{
    yw_doc_begin(w, "apps/v1", "Deployment");
    metadata(w, p, CLUSTER_AGENT, NAMESPACE);
    yw_key_map(w, "spec");
    /* One replica: the server routes a cluster's streams over one cluster
     * agent; node agents stand in while it is away. */
    yw_kv_int(w, "replicas", 1);
    match_app(w, "selector", CLUSTER_AGENT);
    /* Start the new agent and wait for it to be ready (connected) before
     * stopping the old one, so an upgrade never leaves the cluster without
     * a cluster agent. */
    yw_key_map(w, "strategy");
    yw_kv(w, "type", "RollingUpdate");
    yw_key_map(w, "rollingUpdate");
    yw_kv_int(w, "maxUnavailable", 0);
    yw_kv_int(w, "maxSurge", 1);
    yw_map_end(w);
    yw_map_end(w);
    yw_key_map(w, "template");
    template_metadata(w, p, CLUSTER_AGENT);
    cluster_agent_pod_spec(w, p);
    yw_map_end(w);
    yw_map_end(w);
    yw_doc_end(w);
}

static void pdb_doc(struct yw *w, const struct manifest_params *p)
{
    yw_doc_begin(w, "policy/v1", "PodDisruptionBudget");
    metadata(w, p, CLUSTER_AGENT, NAMESPACE);
    yw_key_map(w, "spec");
    /* maxUnavailable 1, not minAvailable 1: with one replica the latter
     * would block every `kubectl drain` of the agent's node forever. While
     * the agent is evicted, node agents carry the tunnel; if replicas are
     * ever raised this still keeps evictions to one at a time. */
    yw_kv_int(w, "maxUnavailable", 1);
    match_app(w, "selector", CLUSTER_AGENT);
    yw_map_end(w);
    yw_doc_end(w);
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

static void node_agent_container(struct yw *w, const struct manifest_params *p)
{
    static const char *const command[] = { NODE_AGENT, NULL };
    static const char *const drop_all[] = { "ALL", NULL };
    static const char *const file_caps[] = { "CHOWN", "DAC_OVERRIDE", "FOWNER", NULL };

    yw_map_begin(w);
    yw_kv(w, "name", "node-agent");
    yw_kv(w, "image", p->agent_image);
    yw_kv_list(w, "command", command);
    yw_key_seq(w, "env");
    env_common(w, p);
    env_value(w, "DROVER_SNAPSHOT_DIR", "/var/lib/drover/snapshots");
    env_value(w, "DROVER_STATE_DIR", "/var/lib/drover/state");
    yw_seq_end(w);
    probes(w, NODE_AGENT_HEALTH_PORT, "127.0.0.1");
    resources(w, "20m", "32Mi", "256Mi");
    /* Root, because etcd's data and certificates are root-owned and
     * mode 0600/0700. Not privileged, and of root's capabilities only
     * those needed to read and rewrite files etcd may own: no NET_RAW on
     * the host network, no SYS_ADMIN. */
    yw_key_map(w, "securityContext");
    yw_kv_bool(w, "privileged", false);
    yw_kv_int(w, "runAsUser", 0);
    yw_kv_bool(w, "allowPrivilegeEscalation", false);
    yw_key_map(w, "capabilities");
    yw_kv_list(w, "drop", drop_all);
    yw_kv_list(w, "add", file_caps);
    yw_map_end(w);
    seccomp_default(w);
    yw_map_end(w);
    yw_key_seq(w, "volumeMounts");
    for (size_t i = 0; i < N_NODE_PATHS; i++)
        volume_mount(w, node_paths[i].name, node_paths[i].path, node_paths[i].read_only);
    yw_seq_end(w);
    yw_map_end(w);
}

static void node_agent_pod_spec(struct yw *w, const struct manifest_params *p)
{
    yw_key_map(w, "spec");
    yw_kv(w, "serviceAccountName", SERVICE_ACCOUNT);
    /* Host network to reach etcd on 127.0.0.1:2379; ClusterFirstWithHostNet
     * keeps cluster DNS working despite it. */
    yw_kv_bool(w, "hostNetwork", true);
    yw_kv(w, "dnsPolicy", "ClusterFirstWithHostNet");
    /* Every node, whatever its taints: etcd and control-plane nodes are
     * where the node agent matters most. */
    yw_key_seq(w, "tolerations");
    toleration(w, NULL, NULL);
    yw_seq_end(w);
    yw_key_seq(w, "containers");
    node_agent_container(w, p);
    yw_seq_end(w);
    yw_key_seq(w, "volumes");
    for (size_t i = 0; i < N_NODE_PATHS; i++)
        host_path_volume(w, node_paths[i].name, node_paths[i].path);
    yw_seq_end(w);
    yw_map_end(w);
}

static void daemonset_doc(struct yw *w, const struct manifest_params *p)
{
    yw_doc_begin(w, "apps/v1", "DaemonSet");
    metadata(w, p, NODE_AGENT, NAMESPACE);
    yw_key_map(w, "spec");
    match_app(w, "selector", NODE_AGENT);
    yw_key_map(w, "updateStrategy");
    yw_kv(w, "type", "RollingUpdate");
    yw_key_map(w, "rollingUpdate");
    yw_kv_int(w, "maxUnavailable", 1);
    yw_map_end(w);
    yw_map_end(w);
    yw_key_map(w, "template");
    template_metadata(w, p, NODE_AGENT);
    node_agent_pod_spec(w, p);
    yw_map_end(w);
    yw_map_end(w);
    yw_doc_end(w);
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
    return yw_utf8_ok(v) ? NULL : "must be valid UTF-8";
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

int manifest_render(const struct manifest_params *p, char **out, size_t *len, char *err,
                    size_t errlen)
{
    struct yw w;
    char why[128];
    int rc = -1;

    if (!out || !len)
        return fail(err, errlen, "manifest_render: out and len are required");
    *out = NULL;
    *len = 0;
    if (check_params(p, err, errlen) < 0)
        return -1;
    yw_init(&w, MANIFEST_MAX_OUTPUT);   /* a failure here comes out of yw_finish */
    namespace_doc(&w, p);
    service_account_doc(&w, p);
    cluster_role_doc(&w, p);
    cluster_role_binding_doc(&w, p);
    secret_doc(&w, p);
    deployment_doc(&w, p);
    pdb_doc(&w, p);
    daemonset_doc(&w, p);
    if (yw_finish(&w, out, len, why, sizeof(why)) < 0) {
        fail(err, errlen, "rendering the manifest: %s", why);
        goto out;
    }
    rc = 0;
out:
    yw_free(&w);
    return rc;
}
