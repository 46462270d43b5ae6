/*
 * etcdtask: the etcd node tasks (docs/PROTOCOL.md §11).
 *
 *  - etcd-snapshot: `etcdctl snapshot save` into DROVER_SNAPSHOT_DIR/<id>.db,
 *    then the answer {ok,size,sha256,path} followed by the file's bytes.
 *  - etcd-restore: the server streams the file; it is kept as
 *    DROVER_SNAPSHOT_DIR/restore-<id>.db and refused unless its size and
 *    SHA-256 match the task's; then restored into a fresh data directory
 *    under DROVER_STATE_DIR (etcdutl when there is one, else etcdctl), and
 *    DROVER_RESTORE_HOOK puts it in place (the site's way to stop etcd,
 *    swap the data directory and start it).
 *  - etcd-snapshot-delete: removes DROVER_SNAPSHOT_DIR/<id>.db.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/log.h"
#include "node-agent/ntask.h"

#define MAX_ARGS 16

/* etcdctl's global flags for this node's etcd (only the first endpoint
 * with first_only: a snapshot is taken from exactly one member). */
static size_t etcd_flags(const struct nodecfg *c, const char **argv, char buf[4][600],
                         bool first_only)
{
    size_t n = 0;
    snprintf(buf[0], sizeof(buf[0]), "--endpoints=%.*s",
             first_only ? (int)strcspn(c->endpoints, ",") : (int)strlen(c->endpoints),
             c->endpoints);
    argv[n++] = buf[0];
    if (c->cacert) {
        snprintf(buf[1], sizeof(buf[1]), "--cacert=%s", c->cacert);
        argv[n++] = buf[1];
    }
    if (c->cert) {
        snprintf(buf[2], sizeof(buf[2]), "--cert=%s", c->cert);
        argv[n++] = buf[2];
    }
    if (c->key) {
        snprintf(buf[3], sizeof(buf[3]), "--key=%s", c->key);
        argv[n++] = buf[3];
    }
    return n;
}

static const char *const etcdctl_env[] = { "ETCDCTL_API=3", NULL };

/* ---- etcd-snapshot ---- */

static void snapshot_hashed(struct ntask *t, const char *hex, uint64_t size)
{
    int fd = open(t->path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        ntask_fail(t, "cannot open %s: %s", t->path, strerror(errno));
        return;
    }
    log_info("snapshot %s saved: %s, %llu bytes, sha256 %s", t->id, t->path,
             (unsigned long long)size, hex);
    ntask_answer(t, json_pack("{s:b,s:I,s:s,s:s}", "ok", 1, "size", (json_int_t)size,
                              "sha256", hex, "path", t->path), fd, size);
}

static void snapshot_saved(struct ntask *t, int status, const char *out, size_t len)
{
    char tail[NTASK_OUTPUT];
    ntask_output_tail(out, len, tail, sizeof(tail));
    if (status != 0) {
        unlink(t->path);
        if (status == CHILDPROC_TIMEOUT)
            ntask_fail(t, "etcdctl snapshot save timed out: %s", tail);
        else
            ntask_fail(t, "etcdctl snapshot save failed (exit %d): %s", status, tail);
        return;
    }
    ntask_hash_file(t, t->path, snapshot_hashed);
}

/* etcdctl 3.4's snapshot save waits for ever on an etcd that is down; a
 * status call first fails in seconds with etcdctl's own words for why. */
static void snapshot_checked(struct ntask *t, int status, const char *out, size_t len)
{
    char tail[NTASK_OUTPUT];
    if (status != 0) {
        ntask_output_tail(out, len, tail, sizeof(tail));
        ntask_fail(t, "etcd is not reachable (etcdctl endpoint status, exit %d): %s", status,
                   tail);
        return;
    }
    const struct nodecfg *c = t->cfg;
    const char *argv[MAX_ARGS];
    char buf[4][600];
    size_t n = 0;
    argv[n++] = c->etcdctl;
    n += etcd_flags(c, argv + n, buf, true);
    argv[n++] = "snapshot";
    argv[n++] = "save";
    argv[n++] = t->path;
    argv[n] = NULL;
    ntask_run(t, argv, etcdctl_env, snapshot_saved);
}

void etcdtask_snapshot(void *ud, struct loop *l, struct tun_stream *s, const uint8_t *meta,
                       size_t len)
{
    const struct nodecfg *c = ud;
    struct ntask *t = ntask_accept(l, c, s, meta, len, true);
    if (!t)
        return;
    if (ntask_mkdirs(c->snapshot_dir) < 0) {
        ntask_fail(t, "cannot make DROVER_SNAPSHOT_DIR %s: %s", c->snapshot_dir,
                   strerror(errno));
        return;
    }
    snprintf(t->path, sizeof(t->path), "%s/%s.db", c->snapshot_dir, t->id);
    unlink(t->path);
    const char *argv[MAX_ARGS];
    char buf[4][600];
    size_t n = 0;
    argv[n++] = c->etcdctl;
    n += etcd_flags(c, argv + n, buf, true);
    argv[n++] = "--dial-timeout=3s";
    argv[n++] = "--command-timeout=5s";
    argv[n++] = "endpoint";
    argv[n++] = "status";
    argv[n] = NULL;
    ntask_run(t, argv, etcdctl_env, snapshot_checked);
}

/* ---- etcd-restore ---- */

static void restore_hooked(struct ntask *t, int status, const char *out, size_t len)
{
    char tail[NTASK_OUTPUT];
    ntask_output_tail(out, len, tail, sizeof(tail));
    if (status != 0) {
        ntask_fail(t, "DROVER_RESTORE_HOOK %s (exit %d): %s",
                   status == CHILDPROC_TIMEOUT ? "timed out" : "failed", status, tail);
        return;
    }
    log_info("snapshot %s restored into %s and put in place by the hook", t->id, t->path2);
    ntask_answer(t, json_pack("{s:b,s:s,s:s}", "ok", 1, "dataDir", t->path2, "output", tail),
                 -1, 0);
}

static void restore_done(struct ntask *t, int status, const char *out, size_t len)
{
    char tail[NTASK_OUTPUT];
    ntask_output_tail(out, len, tail, sizeof(tail));
    if (status != 0) {
        ntask_fail(t, "%s snapshot restore failed (exit %d): %s",
                   t->cfg->etcdutl ? "etcdutl" : "etcdctl", status, tail);
        return;
    }
    if (!t->cfg->restore_hook) {
        ntask_fail(t, "restored into %s, but no DROVER_RESTORE_HOOK is set to put it in "
                   "place", t->path2);
        return;
    }
    static char e_dir[600], e_file[600], e_id[80], e_node[120], e_ep[600];
    snprintf(e_dir, sizeof(e_dir), "DROVER_RESTORE_DATA_DIR=%s", t->path2);
    snprintf(e_file, sizeof(e_file), "DROVER_SNAPSHOT_FILE=%s", t->path);
    snprintf(e_id, sizeof(e_id), "DROVER_SNAPSHOT_ID=%s", t->id);
    snprintf(e_node, sizeof(e_node), "DROVER_NODE_NAME=%s", t->cfg->node_name);
    snprintf(e_ep, sizeof(e_ep), "DROVER_ETCD_ENDPOINTS=%s", t->cfg->endpoints);
    const char *env[] = { e_dir, e_file, e_id, e_node, e_ep, NULL };
    const char *argv[] = { t->cfg->restore_hook, t->path2, t->path, NULL };
    ntask_run(t, argv, env, restore_hooked);
}

static void restore_received(struct ntask *t)
{
    unsigned char md[32];
    char hex[65];
    const char *want = json_string_value(json_object_get(t->meta, "sha256"));
    json_int_t size = json_integer_value(json_object_get(t->meta, "size"));
    close(t->in_fd);
    t->in_fd = -1;
    EVP_DigestFinal_ex(t->in_sha, md, NULL);
    for (int i = 0; i < 32; i++)
        snprintf(hex + 2 * i, 3, "%02x", md[i]);
    if ((json_int_t)t->in_len != size || strcmp(hex, want) != 0) {
        unlink(t->path);
        ntask_fail(t, "checksum mismatch: refused the snapshot (expected %lld bytes with "
                   "sha256 %s, received %llu bytes with sha256 %s)", (long long)size, want,
                   (unsigned long long)t->in_len, hex);
        return;
    }
    if (ntask_mkdirs(t->cfg->state_dir) < 0) {
        ntask_fail(t, "cannot make DROVER_STATE_DIR %s: %s", t->cfg->state_dir,
                   strerror(errno));
        return;
    }
    snprintf(t->path2, sizeof(t->path2), "%s/restore-%s-%lld", t->cfg->state_dir, t->id,
             (long long)time(NULL));
    const char *argv[] = { t->cfg->etcdutl ? t->cfg->etcdutl : t->cfg->etcdctl, "snapshot",
                           "restore", t->path, "--data-dir", t->path2, NULL };
    ntask_run(t, argv, etcdctl_env, restore_done);
}

static bool valid_hex64(const char *s)
{
    if (!s || strlen(s) != 64)
        return false;
    for (; *s; s++)
        if (!((*s >= '0' && *s <= '9') || (*s >= 'a' && *s <= 'f')))
            return false;
    return true;
}

void etcdtask_restore(void *ud, struct loop *l, struct tun_stream *s, const uint8_t *meta,
                      size_t len)
{
    const struct nodecfg *c = ud;
    struct ntask *t = ntask_accept(l, c, s, meta, len, true);
    if (!t)
        return;
    if (!valid_hex64(json_string_value(json_object_get(t->meta, "sha256"))) ||
        !json_is_integer(json_object_get(t->meta, "size"))) {
        ntask_fail(t, "the restore task needs size and sha256");
        return;
    }
    if (ntask_mkdirs(c->snapshot_dir) < 0) {
        ntask_fail(t, "cannot make DROVER_SNAPSHOT_DIR %s: %s", c->snapshot_dir,
                   strerror(errno));
        return;
    }
    snprintf(t->path, sizeof(t->path), "%s/restore-%s.db", c->snapshot_dir, t->id);
    t->in_fd = open(t->path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    t->in_sha = EVP_MD_CTX_new();
    if (t->in_fd < 0 || !t->in_sha || EVP_DigestInit_ex(t->in_sha, EVP_sha256(), NULL) != 1) {
        ntask_fail(t, "cannot write %s: %s", t->path, strerror(errno));
        return;
    }
    t->on_input = restore_received;
    log_info("snapshot %s: receiving it for a restore", t->id);
}

/* ---- etcd-snapshot-delete ---- */

void etcdtask_delete(void *ud, struct loop *l, struct tun_stream *s, const uint8_t *meta,
                     size_t len)
{
    const struct nodecfg *c = ud;
    struct ntask *t = ntask_accept(l, c, s, meta, len, true);
    if (!t)
        return;
    snprintf(t->path, sizeof(t->path), "%s/%s.db", c->snapshot_dir, t->id);
    bool gone = unlink(t->path) == 0;
    if (!gone && errno != ENOENT) {
        ntask_fail(t, "cannot remove %s: %s", t->path, strerror(errno));
        return;
    }
    log_info("snapshot %s: %s %s", t->id, gone ? "removed" : "already absent:", t->path);
    ntask_answer(t, json_pack("{s:b,s:b}", "ok", 1, "removed", gone), -1, 0);
}
