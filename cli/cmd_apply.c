/*
 * cmd_apply: apply -f FILE (objects sent to the cluster agent, one result
 * per object), upgrade (a cluster's Kubernetes version, node by node, with
 * progress), and completion (the bash script).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cmds.h"
#include "cli/ctl.h"

#define APPLY_MAX (8 * 1024 * 1024)

/* Reads FILE ("-" for stdin) whole, under APPLY_MAX. */
static char *read_input(const char *name, size_t *len)
{
    FILE *f = strcmp(name, "-") == 0 ? stdin : fopen(name, "re");
    if (!f) {
        ctl_err("cannot open %s: %s", name, strerror(errno));
        return NULL;
    }
    char *buf = malloc(APPLY_MAX + 1);
    size_t n = buf ? fread(buf, 1, APPLY_MAX + 1, f) : 0;
    bool bad = !buf || ferror(f) || n > APPLY_MAX;
    if (bad)
        ctl_err("cannot read %s: %s", name, !buf ? "out of memory" : n > APPLY_MAX
                ? "larger than 8 MiB" : "read error");
    if (f != stdin)
        fclose(f);
    if (bad) {
        free(buf);
        return NULL;
    }
    buf[n] = '\0';
    *len = n;
    return buf;
}

/* JSON when the file says so by name or by its first character. */
static const char *content_type(const char *name, const char *buf)
{
    size_t nl = strlen(name);
    if (nl > 5 && strcmp(name + nl - 5, ".json") == 0)
        return "application/json";
    buf += strspn(buf, " \t\r\n");
    return *buf == '{' || *buf == '[' ? "application/json" : "application/yaml";
}

static const char *first_str(const json_t *j, const char *const *keys)
{
    for (; *keys; keys++) {
        const char *s = json_string_value(jpath(j, *keys));
        if (s)
            return s;
    }
    return "";
}

static void apply_table(json_t *j, struct table *t)
{
    static const char *const heads[] = { "KIND", "NAMESPACE", "NAME", "OUTCOME" };
    static const char *const name_k[] = { "name", "metadata.name", NULL };
    static const char *const ns_k[] = { "namespace", "metadata.namespace", NULL };
    static const char *const res_k[] = { "outcome", "result", "action", NULL };
    static const char *const msg_k[] = { "message", "error", "error.message", NULL };
    size_t i;
    json_t *r;
    table_init(t, 4, heads);
    json_array_foreach(j, i, r) {
        char res[512];
        const char *what = first_str(r, res_k), *msg = first_str(r, msg_k);
        snprintf(res, sizeof(res), "%s%s%s", what, what[0] && msg[0] ? ": " : "", msg);
        const char *row[] = { jstr(r, "kind"), first_str(r, ns_k), first_str(r, name_k),
                              res };
        table_add(t, row);
    }
}

/* The server's summary line, e.g. "2 objects: 1 created, 1 failed". */
static void print_summary(const json_t *sum)
{
    static const char *const keys[] = { "created", "configured", "unchanged", "failed" };
    if (!json_is_object(sum))
        return;
    fprintf(stderr, "%lld objects:", (long long)json_integer_value(json_object_get(sum,
                                                                                 "objects")));
    for (size_t i = 0, n = 0; i < 4; i++) {
        json_int_t v = json_integer_value(json_object_get(sum, keys[i]));
        if (v)
            fprintf(stderr, "%s %lld %s", n++ ? "," : "", (long long)v, keys[i]);
    }
    fputc('\n', stderr);
}

/* Sends the file; any answer the server gave is in ans (CTL_OK), else
 * CTL_FAILED after saying why. */
static int send_apply(struct ctl *ctl, const char *path, const char *file,
                      struct http_answer *ans)
{
    char err[512];
    size_t len;
    if (ctl_connect(ctl) != CTL_OK)
        return CTL_FAILED;
    char *buf = read_input(file, &len);
    if (!buf)
        return CTL_FAILED;
    int rc = http_request(&ctl->http, "POST", path, ctl->cfg.token, content_type(file, buf),
                          buf, len, -1, ans, err, sizeof(err));
    free(buf);
    if (rc < 0) {
        ctl_err("%s", err);
        return CTL_FAILED;
    }
    return CTL_OK;
}

int cmd_apply(struct ctl *ctl, const struct args *a)
{
    char id[64], seg[200], path[512];
    struct http_answer ans;
    const char *file = args_get(a, "file");
    if (!file || !file[0]) {
        ctl_err("apply needs -f FILE (\"-\" for standard input)");
        return CTL_USAGE;
    }
    if (ctl_cluster_id(ctl, a->pos[0], id) != CTL_OK)
        return CTL_FAILED;
    ctl_seg(id, seg, sizeof(seg));
    snprintf(path, sizeof(path), "/v3/clusters/%s/apply", seg);
    if (send_apply(ctl, path, file, &ans) != CTL_OK)
        return CTL_FAILED;
    /* Some objects may have failed (422) or the link broken midway (502,
     * 503): the results so far are still shown, then the error. */
    json_t *j = json_loadb(ans.body, ans.len, 0, NULL);
    json_t *items = json_object_get(j, "data");
    int rc = ans.status / 100 == 2 ? CTL_OK : CTL_FAILED;
    if (json_is_array(items)) {
        if (ctl_print(ctl, ctl->format == FMT_TABLE ? items : j, apply_table) != CTL_OK)
            rc = CTL_FAILED;
        print_summary(json_object_get(j, "summary"));
    } else if (rc == CTL_OK) {
        ctl_err("the server's answer holds no results");
        rc = CTL_FAILED;
    }
    if (ans.status / 100 != 2)
        ctl_server_error(&ans);
    json_decref(j);
    http_answer_free(&ans);
    return rc;
}

/* An upgrade is the cluster's upgrade object: running until it is done,
 * failed (the nodes after the failure are skipped) or interrupted. */
static bool upgrade_finished(const json_t *doc, bool *ok, char *state, size_t cap)
{
    const char *s = jstr(doc, "upgrade.state");
    size_t i, done = 0;
    json_t *n, *nodes = jpath(doc, "upgrade.nodes");
    json_array_foreach(nodes, i, n)
        done += strcmp(jstr(n, "state"), "done") == 0;
    snprintf(state, cap, "%s (%zu/%zu nodes)", s[0] ? s : "pending", done,
             json_array_size(nodes));
    *ok = strcmp(s, "done") == 0;
    return s[0] && strcmp(s, "running") != 0 && strcmp(s, "pending") != 0;
}

int cmd_upgrade(struct ctl *ctl, const struct args *a)
{
    char id[64], seg[200], path[512], what[200];
    long conc = 1, timeout = 0;
    const char *version = args_get(a, "version");
    if (!version || !version[0]) {
        ctl_err("upgrade needs --version (e.g. v1.31.2)");
        return CTL_USAGE;
    }
    if (ctl_int_flag(a, "concurrency", 1, 1000, &conc) < 0 ||
        ctl_int_flag(a, "timeout", 1, 86400, &timeout) < 0)
        return CTL_USAGE;
    if (ctl_cluster_id(ctl, a->pos[0], id) != CTL_OK)
        return CTL_FAILED;
    ctl_seg(id, seg, sizeof(seg));
    snprintf(path, sizeof(path), "/v3/clusters/%s/upgrade", seg);
    json_t *out, *last, *body = json_pack("{s:s,s:I}", "version", version, "concurrency",
                                          (json_int_t)conc);
    int rc = ctl_call(ctl, "POST", path, body, &out, NULL);
    json_decref(body);
    if (rc != CTL_OK)
        return rc;
    if (args_has(a, "no-wait")) {
        rc = ctl_print(ctl, out, NULL);
        json_decref(out);
        return rc;
    }
    json_decref(out);
    /* Progress is in the cluster's own document. */
    snprintf(path, sizeof(path), "/v3/clusters/%s", seg);
    snprintf(what, sizeof(what), "upgrade of %s to %s", a->pos[0], version);
    rc = ctl_wait(ctl, path, what, upgrade_finished, (int)timeout, &last);
    if (last)
        ctl_print_nodes(ctl, jpath(last, "upgrade.nodes"), rc != CTL_OK);
    json_decref(last);
    return rc;
}

int cmd_completion(struct ctl *ctl, const struct args *a)
{
    (void)ctl;
    if (strcmp(a->pos[0], "bash") != 0) {
        ctl_err("only bash completion is available");
        return CTL_USAGE;
    }
    args_bash_completion(ctl_commands, stdout);
    return CTL_OK;
}
