/*
 * cmd_snapshot: etcd snapshots of a cluster: create (and wait until the
 * node agent has taken it), list, download (checked against its SHA-256),
 * restore (and wait), delete, and the cluster's snapshot schedule.
 */
#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "cli/cmds.h"
#include "cli/ctl.h"
#include "common/tls.h"

/* /v3/clusters/<id>/etcdsnapshots[/<sid>][rest] */
static int snap_path(struct ctl *ctl, const char *cluster, const char *sid, const char *rest,
                     char *out, size_t cap)
{
    char id[64], seg[200], sseg[400];
    if (ctl_cluster_id(ctl, cluster, id) != CTL_OK)
        return CTL_FAILED;
    ctl_seg(id, seg, sizeof(seg));
    ctl_seg(sid ? sid : "", sseg, sizeof(sseg));
    snprintf(out, cap, "/v3/clusters/%s/etcdsnapshots%s%s%s", seg, sid ? "/" : "", sseg,
             rest ? rest : "");
    return CTL_OK;
}

static void snap_row(json_t *s, struct table *t)
{
    char size[32] = "-", age[24];
    json_t *sz = json_object_get(s, "size");
    if (json_is_integer(sz))
        snprintf(size, sizeof(size), "%lld", (long long)json_integer_value(sz));
    ctl_age(jstr(s, "createdAt"), age, sizeof(age));
    const char *row[] = { jstr(s, "id"), jstr(s, "node"), jstr(s, "state"), size, age };
    table_add(t, row);
}

static void snaps_table(json_t *j, struct table *t)
{
    static const char *const heads[] = { "ID", "NODE", "STATE", "SIZE", "AGE" };
    size_t i;
    json_t *s;
    table_init(t, 5, heads);
    if (json_is_object(j)) {
        snap_row(j, t);
        return;
    }
    json_array_foreach(j, i, s)
        snap_row(s, t);
}

/* A snapshot (or restore) ends done or failed. */
static bool snap_finished(const json_t *doc, bool *ok, char *state, size_t cap)
{
    const char *s = jstr(doc, "state");
    snprintf(state, cap, "%s", s[0] ? s : "unknown");
    *ok = strcmp(s, "done") == 0;
    return *ok || strcmp(s, "failed") == 0;
}

static bool no_wait(const struct args *a, long *timeout)
{
    *timeout = 0;
    if (ctl_int_flag(a, "timeout", 1, 86400, timeout) < 0)
        *timeout = -1;
    return args_has(a, "no-wait");
}

int cmd_snapshot_create(struct ctl *ctl, const struct args *a)
{
    char path[1024], what[200];
    long timeout;
    json_t *out, *last;
    bool nowait = no_wait(a, &timeout);
    if (timeout < 0)
        return CTL_USAGE;
    json_t *body = json_object();
    if (args_get(a, "node"))
        json_object_set_new(body, "node", json_string(args_get(a, "node")));
    int rc = snap_path(ctl, a->pos[0], NULL, NULL, path, sizeof(path));
    if (rc == CTL_OK)
        rc = ctl_call(ctl, "POST", path, body, &out, NULL);
    json_decref(body);
    if (rc != CTL_OK)
        return rc;
    if (nowait) {
        rc = ctl_print(ctl, out, snaps_table);
        json_decref(out);
        return rc;
    }
    snprintf(what, sizeof(what), "snapshot %s", jstr(out, "id"));
    rc = snap_path(ctl, a->pos[0], jstr(out, "id"), NULL, path, sizeof(path));
    json_decref(out);
    if (rc != CTL_OK)
        return rc;
    rc = ctl_wait(ctl, path, what, snap_finished, (int)timeout, &last);
    if (last && rc == CTL_OK)
        rc = ctl_print(ctl, last, snaps_table);
    json_decref(last);
    return rc;
}

int cmd_snapshot_list(struct ctl *ctl, const struct args *a)
{
    char path[1024];
    json_t *all;
    if (snap_path(ctl, a->pos[0], NULL, NULL, path, sizeof(path)) != CTL_OK ||
        ctl_list(ctl, path, &all) != CTL_OK)
        return CTL_FAILED;
    int rc = ctl_print(ctl, all, snaps_table);
    json_decref(all);
    return rc;
}

/* Hashes what was downloaded and compares it with the snapshot's sha256. */
static int check_sum(const char *file, const char *want)
{
    char got[65];
    FILE *f = fopen(file, "re");
    if (!f) {
        ctl_err("cannot read %s back: %s", file, strerror(errno));
        return CTL_FAILED;
    }
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    unsigned char buf[65536], d[32];
    size_t n;
    unsigned dl = 0;
    EVP_DigestInit_ex(md, EVP_sha256(), NULL);
    while ((n = fread(buf, 1, sizeof(buf), f)) > 0)
        EVP_DigestUpdate(md, buf, n);
    EVP_DigestFinal_ex(md, d, &dl);
    EVP_MD_CTX_free(md);
    fclose(f);
    for (int i = 0; i < 32; i++)
        snprintf(got + i * 2, 3, "%02x", d[i]);
    if (strcasecmp(got, want) != 0) {
        ctl_err("the download's SHA-256 is %s, the snapshot's %s: removed it", got, want);
        unlink(file);
        return CTL_FAILED;
    }
    return CTL_OK;
}

int cmd_snapshot_download(struct ctl *ctl, const struct args *a)
{
    char path[1024], file[4096], tmp[4200];
    json_t *meta;
    struct http_answer ans;
    const char *sid = a->pos[1];
    if (snap_path(ctl, a->pos[0], sid, NULL, path, sizeof(path)) != CTL_OK ||
        ctl_call(ctl, "GET", path, NULL, &meta, NULL) != CTL_OK)
        return CTL_FAILED;
    snprintf(file, sizeof(file), "%s", args_get(a, "file") ? args_get(a, "file") : sid);
    if (!args_get(a, "file"))
        snprintf(file + strlen(file), sizeof(file) - strlen(file), ".db");
    snprintf(tmp, sizeof(tmp), "%s.part", file);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) {
        ctl_err("cannot write %s: %s", tmp, strerror(errno));
        json_decref(meta);
        return CTL_FAILED;
    }
    snap_path(ctl, a->pos[0], sid, "/download", path, sizeof(path));
    int rc = ctl_call_raw(ctl, "GET", path, NULL, NULL, 0, fd, &ans);
    http_answer_free(&ans);
    if (close(fd) < 0 && rc == CTL_OK) {
        ctl_err("cannot write %s: %s", tmp, strerror(errno));
        rc = CTL_FAILED;
    }
    const char *want = jstr(meta, "sha256");
    if (rc == CTL_OK && want[0])
        rc = check_sum(tmp, want);
    if (rc == CTL_OK && rename(tmp, file) < 0) {
        ctl_err("cannot rename %s to %s: %s", tmp, file, strerror(errno));
        rc = CTL_FAILED;
    }
    if (rc != CTL_OK)
        unlink(tmp);
    else
        fprintf(stderr, "snapshot %s saved to %s%s\n", sid, file,
                want[0] ? " (SHA-256 checked)" : "");
    json_decref(meta);
    return rc;
}

/* A restore's progress is the snapshot's restore object: running until it
 * is done, failed or interrupted (by a server restart). */
static bool restore_finished(const json_t *doc, bool *ok, char *state, size_t cap)
{
    const char *s = jstr(doc, "restore.state");
    snprintf(state, cap, "%s", s[0] ? s : "pending");
    *ok = strcmp(s, "done") == 0;
    return s[0] && strcmp(s, "running") != 0 && strcmp(s, "pending") != 0;
}

int cmd_snapshot_restore(struct ctl *ctl, const struct args *a)
{
    char path[1024], what[200];
    long timeout;
    json_t *out, *last;
    bool nowait = no_wait(a, &timeout);
    if (timeout < 0)
        return CTL_USAGE;
    if (snap_path(ctl, a->pos[0], a->pos[1], "/restore", path, sizeof(path)) != CTL_OK ||
        ctl_call(ctl, "POST", path, NULL, &out, NULL) != CTL_OK)
        return CTL_FAILED;
    int rc = CTL_OK;
    if (nowait) {
        rc = ctl_print(ctl, out, snaps_table);
        json_decref(out);
        return rc;
    }
    json_decref(out);
    snprintf(what, sizeof(what), "restore of %s", a->pos[1]);
    snap_path(ctl, a->pos[0], a->pos[1], NULL, path, sizeof(path));
    rc = ctl_wait(ctl, path, what, restore_finished, (int)timeout, &last);
    if (last)
        ctl_print_nodes(ctl, jpath(last, "restore.nodes"), rc != CTL_OK);
    json_decref(last);
    return rc;
}

int cmd_snapshot_delete(struct ctl *ctl, const struct args *a)
{
    char path[1024];
    if (snap_path(ctl, a->pos[0], a->pos[1], NULL, path, sizeof(path)) != CTL_OK ||
        ctl_call(ctl, "DELETE", path, NULL, NULL, NULL) != CTL_OK)
        return CTL_FAILED;
    fprintf(stderr, "snapshot %s deleted\n", a->pos[1]);
    return CTL_OK;
}

static void schedule_table(json_t *j, struct table *t)
{
    static const char *const heads[] = { "CLUSTER", "INTERVAL-MINUTES", "RETENTION" };
    char iv[24], rt[24];
    table_init(t, 3, heads);
    snprintf(iv, sizeof(iv), "%lld", (long long)json_integer_value(
                 jpath(j, "etcdSnapshotSchedule.intervalMinutes")));
    snprintf(rt, sizeof(rt), "%lld", (long long)json_integer_value(
                 jpath(j, "etcdSnapshotSchedule.retention")));
    const char *row[] = { jstr(j, "name"), iv, rt };
    table_add(t, row);
}

int cmd_snapshot_schedule(struct ctl *ctl, const struct args *a)
{
    char id[64], seg[200], path[512];
    long interval = -1, retention = -1;
    json_t *c;
    if (ctl_int_flag(a, "interval", 0, 525600, &interval) < 0 ||
        ctl_int_flag(a, "retention", 0, 1000, &retention) < 0)
        return CTL_USAGE;
    if (ctl_cluster_id(ctl, a->pos[0], id) != CTL_OK)
        return CTL_FAILED;
    ctl_seg(id, seg, sizeof(seg));
    snprintf(path, sizeof(path), "/v3/clusters/%s", seg);
    if (interval >= 0 || retention >= 0) {
        json_t *s = json_object();
        if (interval >= 0)
            json_object_set_new(s, "intervalMinutes", json_integer(interval));
        if (retention >= 0)
            json_object_set_new(s, "retention", json_integer(retention));
        json_t *body = json_pack("{s:o}", "etcdSnapshotSchedule", s);
        int rc = ctl_call(ctl, "PUT", path, body, &c, NULL);
        json_decref(body);
        if (rc != CTL_OK)
            return rc;
    } else if (ctl_call(ctl, "GET", path, NULL, &c, NULL) != CTL_OK) {
        return CTL_FAILED;
    }
    int rc = ctl_print(ctl, ctl->format == FMT_TABLE ? c : jpath(c, "etcdSnapshotSchedule"),
                       schedule_table);
    json_decref(c);
    return rc;
}
