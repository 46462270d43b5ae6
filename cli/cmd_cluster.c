/*
 * cmd_cluster: cluster create|list|get|delete|import-command|kubeconfig
 * and node list.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cmds.h"
#include "cli/ctl.h"
#include "cli/kubeconfig.h"

static void cluster_row(json_t *c, struct table *t)
{
    char nodes[24], age[24], via[96];
    const char *v = json_string_value(jpath(c, "connection.via"));
    snprintf(via, sizeof(via), "%s", v ? v : "-");
    snprintf(nodes, sizeof(nodes), "%lld",
             (long long)json_integer_value(json_object_get(c, "nodeCount")));
    ctl_age(jstr(c, "createdAt"), age, sizeof(age));
    const char *row[] = { jstr(c, "id"), jstr(c, "name"), jstr(c, "state"), via,
                          jstr(c, "kubernetesVersion"), nodes, age };
    table_add(t, row);
}

static void cluster_heads(struct table *t)
{
    static const char *const heads[] = { "ID", "NAME", "STATE", "VIA", "VERSION",
                                         "NODES", "AGE" };
    table_init(t, 7, heads);
}

static void clusters_table(json_t *j, struct table *t)
{
    size_t i;
    json_t *c;
    cluster_heads(t);
    json_array_foreach(j, i, c)
        cluster_row(c, t);
}

static void cluster_table(json_t *j, struct table *t)
{
    cluster_heads(t);
    cluster_row(j, t);
}

/* The cluster's path with rest appended; CTL_OK or CTL_FAILED. */
static int cluster_path(struct ctl *ctl, const char *arg, const char *rest, char *out,
                        size_t cap)
{
    char id[64], seg[200];
    if (ctl_cluster_id(ctl, arg, id) != CTL_OK)
        return CTL_FAILED;
    ctl_seg(id, seg, sizeof(seg));
    snprintf(out, cap, "/v3/clusters/%s%s", seg, rest);
    return CTL_OK;
}

int cmd_cluster_create(struct ctl *ctl, const struct args *a)
{
    long interval = -1, retention = -1;
    json_t *c;
    if (ctl_int_flag(a, "snapshot-interval", 0, 525600, &interval) < 0 ||
        ctl_int_flag(a, "snapshot-retention", 0, 1000, &retention) < 0)
        return CTL_USAGE;
    json_t *body = json_pack("{s:s}", "name", a->pos[0]);
    if (interval >= 0 || retention >= 0) {
        json_t *s = json_object();
        if (interval >= 0)
            json_object_set_new(s, "intervalMinutes", json_integer(interval));
        if (retention >= 0)
            json_object_set_new(s, "retention", json_integer(retention));
        json_object_set_new(body, "etcdSnapshotSchedule", s);
    }
    int rc = ctl_call(ctl, "POST", "/v3/clusters", body, &c, NULL);
    json_decref(body);
    if (rc != CTL_OK)
        return rc;
    rc = ctl_print(ctl, c, cluster_table);
    if (rc == CTL_OK && ctl->format == FMT_TABLE)
        printf("\nTo register it, run in the cluster:\n  %s\n", jstr(c, "registration.command"));
    json_decref(c);
    return rc;
}

int cmd_cluster_list(struct ctl *ctl, const struct args *a)
{
    json_t *all;
    (void)a;
    if (ctl_list(ctl, "/v3/clusters", &all) != CTL_OK)
        return CTL_FAILED;
    int rc = ctl_print(ctl, all, clusters_table);
    json_decref(all);
    return rc;
}

int cmd_cluster_get(struct ctl *ctl, const struct args *a)
{
    char path[512];
    json_t *c;
    if (cluster_path(ctl, a->pos[0], "", path, sizeof(path)) != CTL_OK ||
        ctl_call(ctl, "GET", path, NULL, &c, NULL) != CTL_OK)
        return CTL_FAILED;
    int rc = ctl_print(ctl, c, cluster_table);
    json_decref(c);
    return rc;
}

int cmd_cluster_delete(struct ctl *ctl, const struct args *a)
{
    char path[512];
    if (cluster_path(ctl, a->pos[0], "", path, sizeof(path)) != CTL_OK ||
        ctl_call(ctl, "DELETE", path, NULL, NULL, NULL) != CTL_OK)
        return CTL_FAILED;
    fprintf(stderr, "cluster %s deleted\n", a->pos[0]);
    return CTL_OK;
}

int cmd_cluster_import(struct ctl *ctl, const struct args *a)
{
    char path[512];
    json_t *c;
    if (cluster_path(ctl, a->pos[0], "", path, sizeof(path)) != CTL_OK ||
        ctl_call(ctl, "GET", path, NULL, &c, NULL) != CTL_OK)
        return CTL_FAILED;
    const char *key = args_has(a, "insecure") ? "registration.insecureCommand"
                                              : "registration.command";
    const char *cmd = json_string_value(jpath(c, key));
    int rc = CTL_OK;
    if (!cmd) {
        ctl_err("no registration command for %s: only its owners see it (or the token "
                "needs rotating)", a->pos[0]);
        rc = CTL_FAILED;
    } else
        printf("%s\n", cmd);
    json_decref(c);
    return rc;
}

int cmd_cluster_kubeconfig(struct ctl *ctl, const struct args *a)
{
    char path[512], file[4096], ctx[256], err[512];
    struct http_answer ans;
    memset(&ans, 0, sizeof(ans));
    if (cluster_path(ctl, a->pos[0], "/kubeconfig", path, sizeof(path)) != CTL_OK ||
        ctl_call_raw(ctl, "GET", path, NULL, NULL, 0, -1, &ans) != CTL_OK) {
        http_answer_free(&ans);
        return CTL_FAILED;
    }
    int rc = CTL_OK;
    if (args_has(a, "print")) {
        fwrite(ans.body, 1, ans.len, stdout);
    } else if (kc_path(file, sizeof(file), err, sizeof(err)) < 0 ||
               kc_merge_file(file, ans.body, ans.len, ctx, sizeof(ctx), err,
                             sizeof(err)) < 0) {
        ctl_err("%s", err);
        rc = CTL_FAILED;
    } else {
        fprintf(stderr, "Merged into %s; current context is now \"%s\"\n", file, ctx);
    }
    http_answer_free(&ans);
    return rc;
}

static void nodes_table(json_t *j, struct table *t)
{
    static const char *const heads[] = { "NAME", "ROLES", "READY", "VERSION", "AGENT" };
    size_t i, k;
    json_t *n, *r;
    table_init(t, 5, heads);
    json_array_foreach(j, i, n) {
        char roles[256] = "";
        json_array_foreach(json_object_get(n, "roles"), k, r) {
            size_t l = strlen(roles);
            snprintf(roles + l, sizeof(roles) - l, "%s%s", l ? "," : "",
                     json_string_value(r) ? json_string_value(r) : "");
        }
        const char *row[] = {
            jstr(n, "name"), roles,
            json_is_true(json_object_get(n, "ready")) ? "True" : "False",
            jstr(n, "kubeletVersion"),
            json_is_true(json_object_get(n, "agentConnected")) ? "connected" : "-" };
        table_add(t, row);
    }
}

int cmd_node_list(struct ctl *ctl, const struct args *a)
{
    char path[512];
    json_t *all;
    if (cluster_path(ctl, a->pos[0], "/nodes", path, sizeof(path)) != CTL_OK ||
        ctl_list(ctl, path, &all) != CTL_OK)
        return CTL_FAILED;
    int rc = ctl_print(ctl, all, nodes_table);
    json_decref(all);
    return rc;
}
