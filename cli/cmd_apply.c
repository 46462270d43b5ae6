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
    static const char *const heads[] = { "KIND", "NAMESPACE", "NAME", "RESULT" };
    static const char *const name_k[] = { "name", "metadata.name", NULL };
    static const char *const ns_k[] = { "namespace", "metadata.namespace", NULL };
    static const char *const res_k[] = { "result", "action", "status", NULL };
    size_t i;
    json_t *r;
    table_init(t, 4, heads);
    json_array_foreach(j, i, r) {
        char res[512];
        const char *err = first_str(r, (const char *const[]){ "error", "error.message",
                                                              "message", NULL });
        const char *what = first_str(r, res_k);
        snprintf(res, sizeof(res), "%s%s%s", what, what[0] && err[0] ? ": " : "", err);
        const char *row[] = { jstr(r, "kind"), first_str(r, ns_k), first_str(r, name_k),
                              res };
        table_add(t, row);
    }
}

/* An object failed if its result carries an error. */
static bool any_failed(const json_t *items)
{
    size_t i;
    json_t *r;
    json_array_foreach(items, i, r) {
        json_t *e = json_object_get(r, "error");
        const char *res = first_str(r, (const char *const[]){ "result", "status", NULL });
        if ((e && !json_is_null(e) && !json_is_false(e)) || strcmp(res, "failed") == 0 ||
            strcmp(res, "error") == 0)
            return true;
    }
    return false;
}

int cmd_apply(struct ctl *ctl, const struct args *a)
{
    char id[64], seg[200], path[512];
    size_t len;
    struct http_answer ans;
    const char *file = args_get(a, "file");
    if (!file || !file[0]) {
        ctl_err("apply needs -f FILE (\"-\" for standard input)");
        return CTL_USAGE;
    }
    if (ctl_cluster_id(ctl, a->pos[0], id) != CTL_OK)
        return CTL_FAILED;
    char *buf = read_input(file, &len);
    if (!buf)
        return CTL_FAILED;
    ctl_seg(id, seg, sizeof(seg));
    snprintf(path, sizeof(path), "/v3/clusters/%s/apply", seg);
    int rc = ctl_call_raw(ctl, "POST", path, content_type(file, buf), buf, len, -1, &ans);
    free(buf);
    json_t *j = rc == CTL_OK ? json_loadb(ans.body, ans.len, 0, NULL) : NULL;
    if (rc == CTL_OK && !j) {
        ctl_err("the server's answer is not JSON");
        rc = CTL_FAILED;
    }
    http_answer_free(&ans);
    if (rc != CTL_OK)
        return rc;
    json_t *items = json_is_array(json_object_get(j, "data")) ? json_object_get(j, "data") : j;
    rc = ctl_print(ctl, items, apply_table);
    if (rc == CTL_OK && json_is_array(items) && any_failed(items))
        rc = CTL_FAILED;
    json_decref(j);
    return rc;
}

/* An upgrade ends when its state says so. */
static bool upgrade_finished(const json_t *doc, bool *ok, char *state, size_t cap)
{
    const json_t *u = json_object_get(doc, "upgrade");
    if (!json_is_object(u))
        u = doc;
    const char *s = jstr(u, "state");
    char extra[64] = "";
    json_t *done = json_object_get(u, "nodesDone"), *total = json_object_get(u, "nodesTotal");
    if (json_is_integer(done) && json_is_integer(total))
        snprintf(extra, sizeof(extra), " (%lld/%lld nodes)",
                 (long long)json_integer_value(done), (long long)json_integer_value(total));
    snprintf(state, cap, "%s%s", s[0] ? s : "unknown", extra);
    *ok = strcmp(s, "done") == 0 || strcmp(s, "succeeded") == 0;
    return *ok || strcmp(s, "failed") == 0;
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
    bool ok;
    char state[64];
    if (args_has(a, "no-wait") || upgrade_finished(out, &ok, state, sizeof(state))) {
        rc = ctl_print(ctl, out, NULL);
        json_decref(out);
        return rc;
    }
    json_decref(out);
    snprintf(what, sizeof(what), "upgrade of %s to %s", a->pos[0], version);
    rc = ctl_wait(ctl, path, what, upgrade_finished, (int)timeout, &last);
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
