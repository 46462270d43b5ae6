/*
 * seed: the cluster the kube-standin test stand-in starts with: namespaces
 * default, kube-system, kube-public and kube-node-lease; --nodes nodes
 * (node-1 the control plane and etcd, the rest workers) that are Ready and
 * report the --version kubelet; the kubernetes and kube-dns services; a
 * coredns Deployment and the control plane's static pods in kube-system; a
 * few events, a Warning BackOff among them in default; and the RBAC
 * built-ins (rbac.c).
 */
#include <stdio.h>
#include <string.h>

#include "tests/kube-standin/standin.h"
#include "tests/kube-standin/store.h"

static int put(struct ks *ks, const char *group, const char *resname, json_t *obj)
{
    const struct kres *res = kres_find(group, "v1", resname);
    if (!obj || !res)
        return -1;
    const char *bad = obj_prepare_create(ks, res, obj);
    if (bad) {
        json_decref(obj);
        return -1;
    }
    return store_create(ks->store, res, obj);
}

static json_t *node(struct ks *ks, int i)
{
    char name[32], ip[32], id[40], cidr[32], now[32];
    snprintf(name, sizeof(name), "node-%d", i);
    snprintf(ip, sizeof(ip), "172.18.0.%d", 1 + i);
    snprintf(cidr, sizeof(cidr), "10.244.%d.0/24", i - 1);
    ks_uuid(id);
    ks_now_rfc3339(now);
    json_t *labels = json_pack("{s:s,s:s,s:s,s:s,s:s}", "kubernetes.io/hostname", name,
                               "kubernetes.io/os", "linux", "kubernetes.io/arch", "amd64",
                               "beta.kubernetes.io/os", "linux", "beta.kubernetes.io/arch",
                               "amd64");
    json_t *spec = json_pack("{s:s,s:[s]}", "podCIDR", cidr, "podCIDRs", cidr);
    if (i == 1) {
        json_object_set_new(labels, "node-role.kubernetes.io/control-plane", json_string(""));
        json_object_set_new(labels, "node-role.kubernetes.io/etcd", json_string(""));
        json_object_set_new(spec, "taints", json_pack("[{s:s,s:s}]", "key",
                                                      "node-role.kubernetes.io/control-plane",
                                                      "effect", "NoSchedule"));
    } else {
        json_object_set_new(labels, "node-role.kubernetes.io/worker", json_string(""));
    }
    json_t *res = json_pack("{s:s,s:s,s:s,s:s}", "cpu", "4", "memory", "8148204Ki", "pods",
                            "110", "ephemeral-storage", "61202244Ki");
    json_t *conds = json_array();
    static const char *const pressure[] = { "MemoryPressure", "DiskPressure", "PIDPressure" };
    static const char *const reasons[] = { "KubeletHasSufficientMemory",
                                           "KubeletHasNoDiskPressure",
                                           "KubeletHasSufficientPID" };
    for (int c = 0; c < 3; c++)
        json_array_append_new(conds, json_pack("{s:s,s:s,s:s,s:s,s:s}", "type", pressure[c],
                                               "status", "False", "lastHeartbeatTime", now,
                                               "lastTransitionTime", now, "reason",
                                               reasons[c]));
    json_array_append_new(conds, json_pack("{s:s,s:s,s:s,s:s,s:s,s:s}", "type", "Ready",
                                           "status", "True", "lastHeartbeatTime", now,
                                           "lastTransitionTime", now, "reason", "KubeletReady",
                                           "message", "kubelet is posting ready status"));
    return json_pack("{s:{s:s,s:o},s:o,s:{s:O,s:o,s:o,s:[{s:s,s:s},{s:s,s:s}],s:{s:s,s:s,"
                     "s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:s}}}",
                     "metadata", "name", name, "labels", labels, "spec", spec, "status",
                     "capacity", res, "allocatable", res, "conditions", conds, "addresses",
                     "type", "InternalIP", "address", ip, "type", "Hostname", "address", name,
                     "nodeInfo", "machineID", id, "systemUUID", id, "bootID", id,
                     "kernelVersion", "6.1.0-kube-standin", "osImage",
                     "Debian GNU/Linux 12 (bookworm)", "containerRuntimeVersion",
                     "containerd://1.7.18", "kubeletVersion", ks->o.version,
                     "kubeProxyVersion", ks->o.version, "operatingSystem", "linux",
                     "architecture", "amd64");
}

static json_t *static_pod(const char *component, const char *image)
{
    char name[64];
    snprintf(name, sizeof(name), "%s-node-1", component);
    return json_pack("{s:{s:s,s:s,s:{s:s,s:s}},s:{s:s,s:[{s:s,s:s}],s:b,s:s}}",
                     "metadata", "name", name, "namespace", "kube-system", "labels",
                     "component", component, "tier", "control-plane", "spec", "nodeName",
                     "node-1", "containers", "name", component, "image", image,
                     "hostNetwork", 1, "priorityClassName", "system-node-critical");
}

static json_t *coredns(void)
{
    return json_pack("{s:{s:s,s:s,s:{s:s}},s:{s:i,s:{s:{s:s}},s:{s:{s:{s:s}},s:{s:[{s:s,"
                     "s:s,s:[s,s],s:[{s:s,s:i,s:s},{s:s,s:i,s:s}]}],s:{s:s}}}}}",
                     "metadata", "name", "coredns", "namespace", "kube-system", "labels",
                     "k8s-app", "kube-dns", "spec", "replicas", 2, "selector", "matchLabels",
                     "k8s-app", "kube-dns", "template", "metadata", "labels", "k8s-app",
                     "kube-dns", "spec", "containers", "name", "coredns", "image",
                     "registry.k8s.io/coredns/coredns:v1.11.1", "args", "-conf",
                     "/etc/coredns/Corefile", "ports", "name", "dns", "containerPort", 53,
                     "protocol", "UDP", "name", "dns-tcp", "containerPort", 53, "protocol",
                     "TCP", "nodeSelector", "kubernetes.io/os", "linux");
}

static json_t *event(const char *ns, const char *name, const char *kind, const char *obj,
                     const char *type, const char *reason, const char *msg, int count,
                     const char *host)
{
    char now[32], first[32];
    ks_now_rfc3339(now);
    ks_rfc3339((int64_t)ks_parse_time(now) - 300, first);
    return json_pack("{s:{s:s,s:s},s:{s:s,s:s,s:s,s:s},s:s,s:s,s:s,s:{s:s,s:s},s:s,s:s,"
                     "s:i,s:n,s:s,s:s}",
                     "metadata", "name", name, "namespace", ns, "involvedObject", "kind", kind,
                     "namespace", ns, "name", obj, "apiVersion", "v1", "reason", reason,
                     "message", msg, "type", type, "source", "component", "kubelet", "host",
                     host, "firstTimestamp", first, "lastTimestamp", now, "count", count,
                     "eventTime", "reportingComponent", "kubelet", "reportingInstance", host);
}

static int services(struct ks *ks)
{
    int rc = put(ks, "", "services",
                 json_pack("{s:{s:s,s:s,s:{s:s,s:s}},s:{s:s,s:[s],s:[{s:s,s:i,s:s,s:i}]}}",
                           "metadata", "name", "kubernetes", "namespace", "default",
                           "labels", "component", "apiserver", "provider", "kubernetes",
                           "spec", "clusterIP", "10.96.0.1", "clusterIPs", "10.96.0.1",
                           "ports", "name", "https", "port", 443, "protocol", "TCP",
                           "targetPort", 6443));
    rc |= put(ks, "", "services",
              json_pack("{s:{s:s,s:s,s:{s:s}},s:{s:s,s:[s],s:{s:s},s:[{s:s,s:i,s:s},"
                        "{s:s,s:i,s:s}]}}",
                        "metadata", "name", "kube-dns", "namespace", "kube-system", "labels",
                        "k8s-app", "kube-dns", "spec", "clusterIP", "10.96.0.10",
                        "clusterIPs", "10.96.0.10", "selector", "k8s-app", "kube-dns",
                        "ports", "name", "dns", "port", 53, "protocol", "UDP", "name",
                        "dns-tcp", "port", 53, "protocol", "TCP"));
    return rc;
}

int seed_all(struct ks *ks)
{
    static const char *const nss[] = { "default", "kube-system", "kube-public",
                                        "kube-node-lease" };
    int rc = 0;
    for (size_t i = 0; i < 4; i++)
        rc |= put(ks, "", "namespaces", json_pack("{s:{s:s}}", "metadata", "name", nss[i]));
    for (int i = 1; i <= ks->o.nodes; i++)
        rc |= put(ks, "", "nodes", node(ks, i));
    rbac_seed(ks);
    rc |= services(ks);
    rc |= put(ks, "", "pods", static_pod("etcd", "registry.k8s.io/etcd:3.5.15-0"));
    rc |= put(ks, "", "pods",
              static_pod("kube-apiserver", "registry.k8s.io/kube-apiserver:v1.31.0"));
    rc |= put(ks, "apps", "deployments", coredns());
    rc |= put(ks, "", "events", event("default", "crashy.17f3a2b4c5d6e7f8", "Pod", "crashy",
                                      "Warning", "BackOff",
                                      "Back-off restarting failed container app in pod "
                                      "crashy_default", 7, "node-2"));
    rc |= put(ks, "", "events", event("default", "node-1.17f3a2b4c5d6e7f0", "Node", "node-1",
                                      "Normal", "Starting", "Starting kubelet.", 1, "node-1"));
    rc |= put(ks, "", "events", event("kube-system", "coredns.17f3a2b4c5d6e7f1", "Deployment",
                                      "coredns", "Normal", "ScalingReplicaSet",
                                      "Scaled up replica set coredns to 2", 1, "node-1"));
    return rc ? -1 : 0;
}
