/*
 * Tests of server/manifest.c. Each test renders a manifest and reads it back
 * with libyaml's parser (a different code path from the emitter), then checks
 * the objects field by field, so what is tested is what kubectl would read,
 * not the text's layout.
 */
#include <check.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "server/manifest.h"

#define CHECKSUM "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
#define MAX_DOCS 16

enum { NS, SA, CR, CRB, SECRET, DEPLOY, PDB, DS, N_OBJECTS };

static struct manifest_params params(void)
{
    return (struct manifest_params){
        .server_url = "https://drover.example:8443",
        .token = "tok-abc123",
        .cluster_id = "c-4f2a9",
        .ca_checksum = CHECKSUM,
        .agent_image = "drover/agent:0.1.0",
    };
}

/* ---- reading the output back ---- */

struct parsed {
    yaml_document_t docs[MAX_DOCS];
    int n;
};

static struct parsed *g_m;  /* the manifest of the current test */

static struct parsed *parse(const char *buf, size_t len)
{
    struct parsed *m = calloc(1, sizeof(*m));
    yaml_parser_t parser;
    ck_assert_ptr_nonnull(m);
    ck_assert(yaml_parser_initialize(&parser));
    yaml_parser_set_input_string(&parser, (const unsigned char *)buf, len);
    for (;;) {
        ck_assert_int_lt(m->n, MAX_DOCS);
        yaml_document_t *d = &m->docs[m->n];
        ck_assert_msg(yaml_parser_load(&parser, d), "parse error: %s",
                      parser.problem ? parser.problem : "?");
        if (!yaml_document_get_root_node(d)) {  /* end of stream */
            yaml_document_delete(d);
            break;
        }
        m->n++;
    }
    yaml_parser_delete(&parser);
    return m;
}

static void parsed_free(struct parsed *m)
{
    if (!m)
        return;
    for (int i = 0; i < m->n; i++)
        yaml_document_delete(&m->docs[i]);
    free(m);
}

static struct parsed *render_parse(const struct manifest_params *p)
{
    char *out = NULL, err[256] = "";
    size_t len = 0;
    ck_assert_msg(manifest_render(p, &out, &len, err, sizeof(err)) == 0, "render: %s", err);
    ck_assert_uint_eq(strlen(out), len);
    struct parsed *m = parse(out, len);
    free(out);
    return m;
}

static void setup(void)
{
    struct manifest_params p = params();
    g_m = render_parse(&p);
}

static void teardown(void)
{
    parsed_free(g_m);
    g_m = NULL;
}

/* The node at a path of mapping keys and, inside sequences, decimal
 * indexes; NULL if any step is missing. Keys may hold dots and slashes
 * (label keys), hence arguments rather than a path string. */
static yaml_node_t *vget(yaml_document_t *d, yaml_node_t *n, va_list ap)
{
    for (const char *k; n && (k = va_arg(ap, const char *)) != NULL;) {
        yaml_node_t *next = NULL;
        if (n->type == YAML_MAPPING_NODE) {
            for (yaml_node_pair_t *pr = n->data.mapping.pairs.start;
                 pr < n->data.mapping.pairs.top; pr++) {
                yaml_node_t *key = yaml_document_get_node(d, pr->key);
                if (key->type == YAML_SCALAR_NODE && strcmp((char *)key->data.scalar.value, k) == 0)
                    next = yaml_document_get_node(d, pr->value);
            }
        } else if (n->type == YAML_SEQUENCE_NODE) {
            long i = strtol(k, NULL, 10);
            long count = n->data.sequence.items.top - n->data.sequence.items.start;
            if (i >= 0 && i < count)
                next = yaml_document_get_node(d, n->data.sequence.items.start[i]);
        }
        n = next;
    }
    return n;
}

static yaml_node_t *get(int doc, ...)
{
    va_list ap;
    va_start(ap, doc);
    yaml_document_t *d = &g_m->docs[doc];
    yaml_node_t *n = vget(d, yaml_document_get_root_node(d), ap);
    va_end(ap);
    return n;
}

/* The same, from a node of doc. */
static yaml_node_t *under(int doc, yaml_node_t *from, ...)
{
    va_list ap;
    va_start(ap, from);
    yaml_node_t *n = vget(&g_m->docs[doc], from, ap);
    va_end(ap);
    return n;
}

static const char *sval(yaml_node_t *n)
{
    return n && n->type == YAML_SCALAR_NODE ? (const char *)n->data.scalar.value : NULL;
}

static size_t seq_len(yaml_node_t *n)
{
    ck_assert_ptr_nonnull(n);
    ck_assert_int_eq(n->type, YAML_SEQUENCE_NODE);
    return (size_t)(n->data.sequence.items.top - n->data.sequence.items.start);
}

static size_t map_len(yaml_node_t *n)
{
    ck_assert_ptr_nonnull(n);
    ck_assert_int_eq(n->type, YAML_MAPPING_NODE);
    return (size_t)(n->data.mapping.pairs.top - n->data.mapping.pairs.start);
}

/* A string scalar equal to want. */
#define ck_str(node, want)                                                        \
    do {                                                                          \
        const char *got_ = sval(node);                                            \
        ck_assert_msg(got_ && strcmp(got_, want) == 0, "%s: got %s, want %s",    \
                      #node, got_ ? got_ : "(none)", want);                       \
    } while (0)

/* A plain scalar (so an int or bool to a YAML reader) equal to want. */
#define ck_plain(node, want)                                                      \
    do {                                                                          \
        yaml_node_t *n_ = (node);                                                 \
        ck_str(n_, want);                                                         \
        ck_assert_msg(n_->data.scalar.style == YAML_PLAIN_SCALAR_STYLE,          \
                      "%s is quoted, so not a number or boolean", #node);         \
    } while (0)

/* A string a YAML 1.1 reader cannot take for anything else: quoted. */
#define ck_quoted(node, want)                                                     \
    do {                                                                          \
        yaml_node_t *n_ = (node);                                                 \
        ck_str(n_, want);                                                         \
        ck_assert_msg(n_->data.scalar.style != YAML_PLAIN_SCALAR_STYLE,          \
                      "%s is plain, a YAML 1.1 reader may not see a string", #node); \
    } while (0)

/* A sequence of exactly the strings given (NULL-terminated). */
static void ck_strings(yaml_document_t *d, yaml_node_t *seq, ...)
{
    va_list ap;
    size_t i = 0;
    ck_assert_ptr_nonnull(seq);
    ck_assert_int_eq(seq->type, YAML_SEQUENCE_NODE);
    va_start(ap, seq);
    for (const char *want; (want = va_arg(ap, const char *)) != NULL; i++) {
        ck_assert_uint_lt(i, seq_len(seq));
        ck_str(yaml_document_get_node(d, seq->data.sequence.items.start[i]), want);
    }
    va_end(ap);
    ck_assert_uint_eq(i, seq_len(seq));
}

/* ---- objects, kinds, names, labels ---- */

static const struct {
    const char *api, *kind, *name, *ns;
} objects[N_OBJECTS] = {
    [NS] = { "v1", "Namespace", "drover-system", NULL },
    [SA] = { "v1", "ServiceAccount", "drover", "drover-system" },
    [CR] = { "rbac.authorization.k8s.io/v1", "ClusterRole", "drover-agent", NULL },
    [CRB] = { "rbac.authorization.k8s.io/v1", "ClusterRoleBinding", "drover-agent", NULL },
    [SECRET] = { "v1", "Secret", "drover-credentials", "drover-system" },
    [DEPLOY] = { "apps/v1", "Deployment", "drover-cluster-agent", "drover-system" },
    [PDB] = { "policy/v1", "PodDisruptionBudget", "drover-cluster-agent", "drover-system" },
    [DS] = { "apps/v1", "DaemonSet", "drover-node-agent", "drover-system" },
};

START_TEST(test_objects_in_order)
{
    ck_assert_int_eq(g_m->n, N_OBJECTS);
    for (int i = 0; i < N_OBJECTS; i++) {
        ck_str(get(i, "apiVersion", NULL), objects[i].api);
        ck_str(get(i, "kind", NULL), objects[i].kind);
        ck_str(get(i, "metadata", "name", NULL), objects[i].name);
        if (objects[i].ns)
            ck_str(get(i, "metadata", "namespace", NULL), objects[i].ns);
        else
            ck_assert_ptr_null(get(i, "metadata", "namespace", NULL));
    }
}
END_TEST

static void ck_common_labels(int doc, yaml_node_t *labels)
{
    ck_str(under(doc, labels, "app.kubernetes.io/name", NULL), "drover-agent");
    ck_str(under(doc, labels, "app.kubernetes.io/part-of", NULL), "drover");
    ck_str(under(doc, labels, "drover.io/cluster", NULL), "c-4f2a9");
}

START_TEST(test_labels)
{
    for (int i = 0; i < N_OBJECTS; i++) {
        yaml_node_t *labels = get(i, "metadata", "labels", NULL);
        ck_common_labels(i, labels);
        /* The namespace alone adds the Pod Security level the node agent needs. */
        ck_assert_uint_eq(map_len(labels), i == NS ? 4 : 3);
    }
    ck_str(get(NS, "metadata", "labels", "pod-security.kubernetes.io/enforce", NULL),
           "privileged");

    /* Pod templates carry the common labels plus the one their selector,
     * the PDB and the anti-affinity term match on. */
    yaml_node_t *tl = get(DEPLOY, "spec", "template", "metadata", "labels", NULL);
    ck_common_labels(DEPLOY, tl);
    ck_str(under(DEPLOY, tl, "app", NULL), "drover-cluster-agent");
    ck_assert_uint_eq(map_len(get(DEPLOY, "spec", "selector", "matchLabels", NULL)), 1);
    ck_str(get(DEPLOY, "spec", "selector", "matchLabels", "app", NULL), "drover-cluster-agent");
    ck_str(get(PDB, "spec", "selector", "matchLabels", "app", NULL), "drover-cluster-agent");

    tl = get(DS, "spec", "template", "metadata", "labels", NULL);
    ck_common_labels(DS, tl);
    ck_str(under(DS, tl, "app", NULL), "drover-node-agent");
    ck_assert_uint_eq(map_len(get(DS, "spec", "selector", "matchLabels", NULL)), 1);
    ck_str(get(DS, "spec", "selector", "matchLabels", "app", NULL), "drover-node-agent");
}
END_TEST

/* ---- RBAC, Secret, PDB ---- */

START_TEST(test_cluster_role)
{
    yaml_document_t *d = &g_m->docs[CR];
    ck_assert_uint_eq(seq_len(get(CR, "rules", NULL)), 4);
    ck_strings(d, get(CR, "rules", "0", "apiGroups", NULL), "", NULL);
    ck_strings(d, get(CR, "rules", "0", "resources", NULL), "nodes", "events", "namespaces",
               "pods", NULL);
    ck_strings(d, get(CR, "rules", "0", "verbs", NULL), "get", "list", "watch", NULL);
    ck_strings(d, get(CR, "rules", "1", "apiGroups", NULL), "", NULL);
    ck_strings(d, get(CR, "rules", "1", "resources", NULL), "users", "groups",
               "serviceaccounts", NULL);
    ck_strings(d, get(CR, "rules", "1", "verbs", NULL), "impersonate", NULL);
    ck_strings(d, get(CR, "rules", "2", "apiGroups", NULL), "rbac.authorization.k8s.io", NULL);
    ck_strings(d, get(CR, "rules", "2", "resources", NULL), "clusterroles",
               "clusterrolebindings", NULL);
    ck_strings(d, get(CR, "rules", "2", "verbs", NULL), "create", "get", "list", "watch",
               "update", "patch", "delete", NULL);
    ck_strings(d, get(CR, "rules", "3", "apiGroups", NULL), "*", NULL);
    ck_strings(d, get(CR, "rules", "3", "resources", NULL), "*", NULL);
    ck_strings(d, get(CR, "rules", "3", "verbs", NULL), "*", NULL);
    /* "" and "*" must be quoted to mean the core group and "everything". */
    ck_quoted(get(CR, "rules", "0", "apiGroups", "0", NULL), "");
    ck_quoted(get(CR, "rules", "3", "verbs", "0", NULL), "*");
}
END_TEST

START_TEST(test_cluster_role_binding)
{
    ck_str(get(CRB, "roleRef", "apiGroup", NULL), "rbac.authorization.k8s.io");
    ck_str(get(CRB, "roleRef", "kind", NULL), "ClusterRole");
    ck_str(get(CRB, "roleRef", "name", NULL), "drover-agent");
    ck_assert_uint_eq(seq_len(get(CRB, "subjects", NULL)), 1);
    ck_str(get(CRB, "subjects", "0", "kind", NULL), "ServiceAccount");
    ck_str(get(CRB, "subjects", "0", "name", NULL), "drover");
    ck_str(get(CRB, "subjects", "0", "namespace", NULL), "drover-system");
}
END_TEST

START_TEST(test_secret)
{
    ck_str(get(SECRET, "type", NULL), "Opaque");
    ck_assert_uint_eq(map_len(get(SECRET, "stringData", NULL)), 2);
    ck_str(get(SECRET, "stringData", "url", NULL), "https://drover.example:8443");
    ck_str(get(SECRET, "stringData", "token", NULL), "tok-abc123");
    ck_assert_ptr_null(get(SECRET, "data", NULL));
}
END_TEST

START_TEST(test_pdb)
{
    ck_plain(get(PDB, "spec", "maxUnavailable", NULL), "1");
    ck_assert_ptr_null(get(PDB, "spec", "minAvailable", NULL));
}
END_TEST

/* ---- workloads ---- */

#define POD(doc, ...) get(doc, "spec", "template", "spec", __VA_ARGS__)
#define CTR(doc, ...) POD(doc, "containers", "0", __VA_ARGS__)

/* The env list of a workload's container holds exactly these names, in this
 * order (NULL-terminated). */
static void ck_env_names(int doc, ...)
{
    va_list ap;
    size_t i = 0;
    va_start(ap, doc);
    for (const char *want; (want = va_arg(ap, const char *)) != NULL; i++) {
        char idx[8];
        snprintf(idx, sizeof(idx), "%zu", i);
        ck_str(CTR(doc, "env", idx, "name", NULL), want);
    }
    va_end(ap);
    ck_assert_uint_eq(seq_len(CTR(doc, "env", NULL)), i);
}

static yaml_node_t *env(int doc, const char *name)
{
    yaml_node_t *list = CTR(doc, "env", NULL);
    for (size_t i = 0; i < seq_len(list); i++) {
        yaml_node_t *e = yaml_document_get_node(&g_m->docs[doc],
                                                list->data.sequence.items.start[i]);
        const char *n = sval(under(doc, e, "name", NULL));
        if (n && strcmp(n, name) == 0)
            return e;
    }
    ck_abort_msg("env %s not found", name);
    return NULL;
}

static void ck_env_secret(int doc, const char *name, const char *key)
{
    yaml_node_t *e = env(doc, name);
    ck_assert_ptr_null(under(doc, e, "value", NULL));
    ck_str(under(doc, e, "valueFrom", "secretKeyRef", "name", NULL), "drover-credentials");
    ck_str(under(doc, e, "valueFrom", "secretKeyRef", "key", NULL), key);
}

static void ck_env_value(int doc, const char *name, const char *value)
{
    yaml_node_t *e = env(doc, name);
    ck_assert_ptr_null(under(doc, e, "valueFrom", NULL));
    ck_str(under(doc, e, "value", NULL), value);
}

static void ck_env_common(int doc)
{
    ck_env_secret(doc, "DROVER_SERVER", "url");
    ck_env_secret(doc, "DROVER_TOKEN", "token");
    ck_env_value(doc, "DROVER_CA_CHECKSUM", CHECKSUM);
    ck_env_value(doc, "DROVER_CLUSTER_ID", "c-4f2a9");
    yaml_node_t *e = env(doc, "DROVER_NODE_NAME");
    ck_assert_ptr_null(under(doc, e, "value", NULL));
    ck_str(under(doc, e, "valueFrom", "fieldRef", "fieldPath", NULL), "spec.nodeName");
}

START_TEST(test_cluster_agent_env)
{
    ck_env_names(DEPLOY, "DROVER_SERVER", "DROVER_TOKEN", "DROVER_CA_CHECKSUM",
                 "DROVER_CLUSTER_ID", "DROVER_NODE_NAME", NULL);
    ck_env_common(DEPLOY);
}
END_TEST

START_TEST(test_node_agent_env)
{
    ck_env_names(DS, "DROVER_SERVER", "DROVER_TOKEN", "DROVER_CA_CHECKSUM", "DROVER_CLUSTER_ID",
                 "DROVER_NODE_NAME", "DROVER_SNAPSHOT_DIR", "DROVER_STATE_DIR", NULL);
    ck_env_common(DS);
    ck_env_value(DS, "DROVER_SNAPSHOT_DIR", "/var/lib/drover/snapshots");
    ck_env_value(DS, "DROVER_STATE_DIR", "/var/lib/drover/state");
}
END_TEST

START_TEST(test_deployment)
{
    ck_plain(get(DEPLOY, "spec", "replicas", NULL), "1");
    ck_str(get(DEPLOY, "spec", "strategy", "type", NULL), "RollingUpdate");
    ck_plain(get(DEPLOY, "spec", "strategy", "rollingUpdate", "maxUnavailable", NULL), "0");
    ck_plain(get(DEPLOY, "spec", "strategy", "rollingUpdate", "maxSurge", NULL), "1");
    ck_str(POD(DEPLOY, "serviceAccountName", NULL), "drover");
    ck_assert_ptr_null(POD(DEPLOY, "hostNetwork", NULL));
    ck_assert_uint_eq(seq_len(POD(DEPLOY, "containers", NULL)), 1);
    ck_str(CTR(DEPLOY, "image", NULL), "drover/agent:0.1.0");
    ck_strings(&g_m->docs[DEPLOY], CTR(DEPLOY, "command", NULL), "drover-cluster-agent", NULL);
}
END_TEST

static void ck_toleration(int doc, const char *idx, const char *key, const char *effect)
{
    yaml_node_t *t = POD(doc, "tolerations", idx, NULL);
    ck_str(under(doc, t, "operator", NULL), "Exists");
    if (key)
        ck_str(under(doc, t, "key", NULL), key);
    else
        ck_assert_ptr_null(under(doc, t, "key", NULL));
    if (effect)
        ck_str(under(doc, t, "effect", NULL), effect);
    else
        ck_assert_ptr_null(under(doc, t, "effect", NULL));
    ck_assert_ptr_null(under(doc, t, "tolerationSeconds", NULL));
}

START_TEST(test_tolerations)
{
    ck_assert_uint_eq(seq_len(POD(DEPLOY, "tolerations", NULL)), 3);
    ck_toleration(DEPLOY, "0", "node-role.kubernetes.io/control-plane", "NoSchedule");
    ck_toleration(DEPLOY, "1", "node-role.kubernetes.io/master", "NoSchedule");
    ck_toleration(DEPLOY, "2", "node.kubernetes.io/not-ready", "NoExecute");
    /* The node agent tolerates every taint: no key, no effect. */
    ck_assert_uint_eq(seq_len(POD(DS, "tolerations", NULL)), 1);
    ck_toleration(DS, "0", NULL, NULL);
}
END_TEST

START_TEST(test_affinity)
{
    yaml_node_t *pref = POD(DEPLOY, "affinity", "podAntiAffinity",
                            "preferredDuringSchedulingIgnoredDuringExecution", NULL);
    ck_assert_uint_eq(seq_len(pref), 1);
    ck_assert_ptr_null(POD(DEPLOY, "affinity", "podAntiAffinity",
                           "requiredDuringSchedulingIgnoredDuringExecution", NULL));
    ck_plain(under(DEPLOY, pref, "0", "weight", NULL), "100");
    ck_str(under(DEPLOY, pref, "0", "podAffinityTerm", "topologyKey", NULL),
           "kubernetes.io/hostname");
    ck_str(under(DEPLOY, pref, "0", "podAffinityTerm", "labelSelector", "matchLabels", "app",
                 NULL), "drover-cluster-agent");
    ck_assert_ptr_null(POD(DS, "affinity", NULL));
}
END_TEST

static void ck_probe(int doc, const char *which, const char *path, const char *port,
                     const char *host)
{
    yaml_node_t *g = CTR(doc, which, "httpGet", NULL);
    ck_str(under(doc, g, "path", NULL), path);
    ck_plain(under(doc, g, "port", NULL), port);
    ck_str(under(doc, g, "scheme", NULL), "HTTP");
    if (host)
        ck_str(under(doc, g, "host", NULL), host);
    else
        ck_assert_ptr_null(under(doc, g, "host", NULL));
    ck_plain(CTR(doc, which, "periodSeconds", NULL), "10");
    ck_plain(CTR(doc, which, "failureThreshold", NULL), "3");
}

START_TEST(test_probes)
{
    /* Cluster agent: the pod IP, port 9443. */
    ck_probe(DEPLOY, "livenessProbe", "/healthz", "9443", NULL);
    ck_probe(DEPLOY, "readinessProbe", "/readyz", "9443", NULL);
    /* Node agent: host network, so its own port and the node's loopback. */
    ck_probe(DS, "livenessProbe", "/healthz", "9444", "127.0.0.1");
    ck_probe(DS, "readinessProbe", "/readyz", "9444", "127.0.0.1");
}
END_TEST

static void ck_resources(int doc, const char *cpu, const char *mem, const char *limit)
{
    ck_assert_uint_eq(map_len(CTR(doc, "resources", "requests", NULL)), 2);
    ck_str(CTR(doc, "resources", "requests", "cpu", NULL), cpu);
    ck_str(CTR(doc, "resources", "requests", "memory", NULL), mem);
    ck_assert_uint_eq(map_len(CTR(doc, "resources", "limits", NULL)), 1);
    ck_str(CTR(doc, "resources", "limits", "memory", NULL), limit);
}

START_TEST(test_resources)
{
    ck_resources(DEPLOY, "50m", "64Mi", "256Mi");
    ck_resources(DS, "20m", "32Mi", "256Mi");
}
END_TEST

START_TEST(test_security_contexts)
{
    ck_plain(CTR(DEPLOY, "securityContext", "runAsNonRoot", NULL), "true");
    ck_plain(CTR(DEPLOY, "securityContext", "runAsUser", NULL), "65532");
    ck_plain(CTR(DEPLOY, "securityContext", "allowPrivilegeEscalation", NULL), "false");
    ck_plain(CTR(DEPLOY, "securityContext", "readOnlyRootFilesystem", NULL), "true");
    ck_strings(&g_m->docs[DEPLOY], CTR(DEPLOY, "securityContext", "capabilities", "drop", NULL),
               "ALL", NULL);
    ck_assert_ptr_null(CTR(DEPLOY, "securityContext", "capabilities", "add", NULL));
    ck_assert_ptr_null(CTR(DEPLOY, "securityContext", "privileged", NULL));
    ck_str(CTR(DEPLOY, "securityContext", "seccompProfile", "type", NULL), "RuntimeDefault");

    ck_plain(CTR(DS, "securityContext", "privileged", NULL), "false");
    ck_plain(CTR(DS, "securityContext", "runAsUser", NULL), "0");
    ck_plain(CTR(DS, "securityContext", "allowPrivilegeEscalation", NULL), "false");
    ck_assert_ptr_null(CTR(DS, "securityContext", "runAsNonRoot", NULL));
    ck_strings(&g_m->docs[DS], CTR(DS, "securityContext", "capabilities", "drop", NULL),
               "ALL", NULL);
    ck_strings(&g_m->docs[DS], CTR(DS, "securityContext", "capabilities", "add", NULL),
               "CHOWN", "DAC_OVERRIDE", "FOWNER", NULL);
    ck_str(CTR(DS, "securityContext", "seccompProfile", "type", NULL), "RuntimeDefault");
}
END_TEST

START_TEST(test_daemonset)
{
    ck_str(get(DS, "spec", "updateStrategy", "type", NULL), "RollingUpdate");
    ck_plain(get(DS, "spec", "updateStrategy", "rollingUpdate", "maxUnavailable", NULL), "1");
    ck_str(POD(DS, "serviceAccountName", NULL), "drover");
    ck_plain(POD(DS, "hostNetwork", NULL), "true");
    ck_str(POD(DS, "dnsPolicy", NULL), "ClusterFirstWithHostNet");
    ck_assert_uint_eq(seq_len(POD(DS, "containers", NULL)), 1);
    ck_str(CTR(DS, "image", NULL), "drover/agent:0.1.0");
    ck_strings(&g_m->docs[DS], CTR(DS, "command", NULL), "drover-node-agent", NULL);
}
END_TEST

START_TEST(test_host_paths)
{
    static const struct {
        const char *path;
        bool read_only;
    } want[] = {
        { "/var/lib/drover", false },
        { "/var/lib/etcd", false },             /* a restore rewrites it */
        { "/etc/kubernetes/pki/etcd", true },
    };
    ck_assert_uint_eq(seq_len(POD(DS, "volumes", NULL)), 3);
    ck_assert_uint_eq(seq_len(CTR(DS, "volumeMounts", NULL)), 3);
    for (size_t i = 0; i < 3; i++) {
        char idx[4];
        snprintf(idx, sizeof(idx), "%zu", i);
        const char *vname = sval(POD(DS, "volumes", idx, "name", NULL));
        ck_assert_ptr_nonnull(vname);
        ck_str(POD(DS, "volumes", idx, "hostPath", "path", NULL), want[i].path);
        ck_str(POD(DS, "volumes", idx, "hostPath", "type", NULL), "DirectoryOrCreate");
        ck_str(CTR(DS, "volumeMounts", idx, "name", NULL), vname);
        ck_str(CTR(DS, "volumeMounts", idx, "mountPath", NULL), want[i].path);
        if (want[i].read_only)
            ck_plain(CTR(DS, "volumeMounts", idx, "readOnly", NULL), "true");
        else
            ck_assert_ptr_null(CTR(DS, "volumeMounts", idx, "readOnly", NULL));
    }
    /* The cluster agent touches no host path. */
    ck_assert_ptr_null(POD(DEPLOY, "volumes", NULL));
    ck_assert_ptr_null(CTR(DEPLOY, "volumeMounts", NULL));
}
END_TEST

/* ---- escaping ---- */

/* Values that a template would have turned into extra keys, comments,
 * documents or objects come back byte for byte, and the stream still holds
 * exactly the eight objects. */
START_TEST(test_special_values_round_trip)
{
    static const char *const tokens[] = {
        ": #'\"\n",
        "a: b\n---\napiVersion: v1\nkind: Secret\n# not a comment",
        "  leading and trailing  ",
        "tab\there, {flow: [x]}, &anchor *alias !tag |block >fold %dir @ `",
        "\x01\x7f control and caf\xc3\xa9 \xf0\x9f\x94\x91",
        "yes", "No", "on", "OFF", "y", "N", "TRUE", "null", "~", "0x1F", "012", "1e3",
        ".inf", "-", "?", "'",
    };
    for (size_t i = 0; i < sizeof(tokens) / sizeof(tokens[0]); i++) {
        struct manifest_params p = params();
        p.token = tokens[i];
        p.server_url = "https://h.example:8443/a#b?c=d&e='f'";
        g_m = render_parse(&p);
        ck_assert_int_eq(g_m->n, N_OBJECTS);
        ck_quoted(get(SECRET, "stringData", "token", NULL), tokens[i]);
        ck_str(get(SECRET, "stringData", "url", NULL), p.server_url);
        ck_assert_uint_eq(map_len(get(SECRET, "stringData", NULL)), 2);
        ck_str(get(SECRET, "kind", NULL), "Secret");
        parsed_free(g_m);
        g_m = NULL;
    }
}
END_TEST

/* An all-digit cluster id or checksum would be an integer if unquoted,
 * which Kubernetes refuses as a label or env value. */
START_TEST(test_number_like_values_quoted)
{
    struct manifest_params p = params();
    p.cluster_id = "12345";
    p.ca_checksum = "1234567890123456789012345678901234567890123456789012345678901234";
    g_m = render_parse(&p);
    for (int i = 0; i < N_OBJECTS; i++)
        ck_quoted(get(i, "metadata", "labels", "drover.io/cluster", NULL), "12345");
    ck_quoted(get(DEPLOY, "spec", "template", "metadata", "labels", "drover.io/cluster", NULL),
              "12345");
    ck_quoted(under(DEPLOY, env(DEPLOY, "DROVER_CLUSTER_ID"), "value", NULL), "12345");
    ck_quoted(under(DS, env(DS, "DROVER_CA_CHECKSUM"), "value", NULL), p.ca_checksum);
    /* Quantities are strings too; a bare 1e3-like value must not be a float. */
    ck_quoted(CTR(DEPLOY, "resources", "requests", "cpu", NULL), "50m");
    parsed_free(g_m);
    g_m = NULL;

    p.cluster_id = "1e3";
    g_m = render_parse(&p);
    ck_quoted(get(NS, "metadata", "labels", "drover.io/cluster", NULL), "1e3");
}
END_TEST

START_TEST(test_long_values_stay_on_one_line)
{
    static char token[MANIFEST_MAX_VALUE + 1];
    memset(token, 'x', MANIFEST_MAX_VALUE);
    for (size_t i = 100; i < MANIFEST_MAX_VALUE; i += 100)
        token[i] = ' ';
    struct manifest_params p = params();
    p.token = token;
    char *out = NULL;
    size_t len = 0;
    ck_assert_int_eq(manifest_render(&p, &out, &len, NULL, 0), 0);
    /* Folded scalars read back the same, but a reviewer greps lines. */
    ck_assert_ptr_nonnull(strstr(out, token));
    g_m = parse(out, len);
    free(out);
    ck_str(get(SECRET, "stringData", "token", NULL), token);
}
END_TEST

START_TEST(test_deterministic_and_terminated)
{
    struct manifest_params p = params();
    char *a = NULL, *b = NULL;
    size_t la = 0, lb = 0;
    ck_assert_int_eq(manifest_render(&p, &a, &la, NULL, 0), 0);
    ck_assert_int_eq(manifest_render(&p, &b, &lb, NULL, 0), 0);
    ck_assert_uint_eq(la, lb);
    ck_assert_int_eq(memcmp(a, b, la), 0);
    ck_assert_int_eq(a[la], '\0');
    ck_assert_int_eq(strncmp(a, "---\n", 4), 0);
    free(a);
    free(b);
}
END_TEST

START_TEST(test_server_list_accepted)
{
    struct manifest_params p = params();
    p.server_url = "https://a.example:8443,https://b.example:8443, https://[::1]:9443";
    g_m = render_parse(&p);
    ck_str(get(SECRET, "stringData", "url", NULL), p.server_url);
}
END_TEST

/* ---- refusals ---- */

static void ck_refused(const struct manifest_params *p, const char *field)
{
    char *out = (char *)"untouched", err[256] = "";
    size_t len = 99;
    ck_assert_int_eq(manifest_render(p, &out, &len, err, sizeof(err)), -1);
    ck_assert_ptr_null(out);
    ck_assert_uint_eq(len, 0);
    ck_assert_msg(strncmp(err, field, strlen(field)) == 0 && err[strlen(field)] == ':',
                  "message \"%s\" does not name %s", err, field);
    ck_assert_uint_gt(strlen(err), strlen(field) + 2);
}

START_TEST(test_invalid_params_refused)
{
    static char long_token[MANIFEST_MAX_VALUE + 2];
    memset(long_token, 't', MANIFEST_MAX_VALUE + 1);
    static const struct {
        const char *field, *value;
    } bad[] = {
        { "server_url", NULL },
        { "server_url", "" },
        { "server_url", "http://drover.example" },
        { "server_url", "drover.example:8443" },
        { "server_url", "https://" },
        { "server_url", "HTTPS://drover.example" },
        { "server_url", "https://a.example,,https://b.example" },
        { "server_url", "https://a.example," },
        { "server_url", "https://a.example,http://b.example" },
        { "server_url", "https://drover example" },
        { "server_url", "https://drover.example\n#x" },
        { "server_url", "https://1,https://2,https://3,https://4,https://5,https://6,"
                        "https://7,https://8,https://9" },
        { "token", NULL },
        { "token", "" },
        { "token", long_token },
        { "token", "bad \xff utf-8" },
        { "token", "truncated \xc3" },
        { "token", "overlong \xc0\xaf" },
        { "token", "surrogate \xed\xa0\x80" },
        { "token", "too high \xf4\x90\x80\x80" },
        { "cluster_id", NULL },
        { "cluster_id", "" },
        { "cluster_id", "C-4F2A9" },
        { "cluster_id", "c_4f2a9" },
        { "cluster_id", "c.4f2a9" },
        { "cluster_id", "-c4f2a9" },
        { "cluster_id", "c4f2a9-" },
        { "cluster_id", "c 4f" },
        { "cluster_id", "c-4f2a9\n" },
        { "cluster_id", "c-01234567890123456789012345678901234567890123456789012345678901" },
        { "ca_checksum", NULL },
        { "ca_checksum", "" },
        { "ca_checksum", "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a0" },
        { "ca_checksum", CHECKSUM "0" },
        { "ca_checksum", "9F86D081884C7D659A2FEAA0C55AD015A3BF4F1B2B0B822CD15D6C15B0F00A08" },
        { "ca_checksum", "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a0g" },
        { "agent_image", NULL },
        { "agent_image", "" },
        { "agent_image", "drover/agent:0.1.0 --privileged" },
        { "agent_image", "drover/agent:0.1.0\n" },
        { "agent_image", "drover/agent:\xc3\xa9" },
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct manifest_params p = params();
        const char **slot = strcmp(bad[i].field, "server_url") == 0 ? &p.server_url
                            : strcmp(bad[i].field, "token") == 0      ? &p.token
                            : strcmp(bad[i].field, "cluster_id") == 0 ? &p.cluster_id
                            : strcmp(bad[i].field, "ca_checksum") == 0 ? &p.ca_checksum
                                                                      : &p.agent_image;
        *slot = bad[i].value;
        ck_refused(&p, bad[i].field);
    }
}
END_TEST

/* The message says what is wrong with the token, never what it is. */
START_TEST(test_refusal_does_not_echo_values)
{
    struct manifest_params p = params();
    p.token = "s3cret-\xff";
    char *out = NULL, err[256] = "";
    size_t len = 0;
    ck_assert_int_eq(manifest_render(&p, &out, &len, err, sizeof(err)), -1);
    ck_assert_ptr_null(strstr(err, "s3cret"));
}
END_TEST

START_TEST(test_missing_arguments)
{
    struct manifest_params p = params();
    char *out = NULL, err[256] = "";
    size_t len = 0;
    ck_assert_int_eq(manifest_render(NULL, &out, &len, err, sizeof(err)), -1);
    ck_assert_uint_gt(strlen(err), 0);
    err[0] = '\0';
    ck_assert_int_eq(manifest_render(&p, NULL, &len, err, sizeof(err)), -1);
    ck_assert_uint_gt(strlen(err), 0);
    ck_assert_int_eq(manifest_render(&p, &out, NULL, err, sizeof(err)), -1);
    /* No error buffer is fine too. */
    p.cluster_id = "BAD";
    ck_assert_int_eq(manifest_render(&p, &out, &len, NULL, 0), -1);
    ck_assert_ptr_null(out);
    /* A short buffer truncates the message, still terminated. */
    char tiny[8];
    ck_assert_int_eq(manifest_render(&p, &out, &len, tiny, sizeof(tiny)), -1);
    ck_assert_uint_eq(strlen(tiny), sizeof(tiny) - 1);
}
END_TEST

Suite *suite_server_manifest(void)
{
    Suite *s = suite_create("server_manifest");

    TCase *objs = tcase_create("objects");
    tcase_add_checked_fixture(objs, setup, teardown);
    tcase_add_test(objs, test_objects_in_order);
    tcase_add_test(objs, test_labels);
    tcase_add_test(objs, test_cluster_role);
    tcase_add_test(objs, test_cluster_role_binding);
    tcase_add_test(objs, test_secret);
    tcase_add_test(objs, test_pdb);
    tcase_add_test(objs, test_deployment);
    tcase_add_test(objs, test_daemonset);
    tcase_add_test(objs, test_cluster_agent_env);
    tcase_add_test(objs, test_node_agent_env);
    tcase_add_test(objs, test_tolerations);
    tcase_add_test(objs, test_affinity);
    tcase_add_test(objs, test_probes);
    tcase_add_test(objs, test_resources);
    tcase_add_test(objs, test_security_contexts);
    tcase_add_test(objs, test_host_paths);
    suite_add_tcase(s, objs);

    /* These render their own manifests into g_m; teardown frees it. */
    TCase *esc = tcase_create("escaping");
    tcase_add_checked_fixture(esc, NULL, teardown);
    tcase_add_test(esc, test_special_values_round_trip);
    tcase_add_test(esc, test_number_like_values_quoted);
    tcase_add_test(esc, test_long_values_stay_on_one_line);
    tcase_add_test(esc, test_deterministic_and_terminated);
    tcase_add_test(esc, test_server_list_accepted);
    suite_add_tcase(s, esc);

    TCase *bad = tcase_create("refusals");
    tcase_add_test(bad, test_invalid_params_refused);
    tcase_add_test(bad, test_refusal_does_not_echo_values);
    tcase_add_test(bad, test_missing_arguments);
    suite_add_tcase(s, bad);

    return s;
}
