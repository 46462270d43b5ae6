/*
 * ntask: one node task on one tunnel stream the server opened (the
 * services of docs/PROTOCOL.md §11: etcd-snapshot, etcd-restore,
 * etcd-snapshot-delete, upgrade).
 *
 * The shape every task shares: the stream's metadata is a JSON object (the
 * task); the server may send a file as the stream's data (restore); the
 * agent runs child programs (childproc, never blocking the loop) and
 * answers with one JSON line, optionally followed by a file's bytes, then
 * half-closes. If the stream or tunnel ends first, the running child is
 * killed and the task freed: nothing outlives the link that asked for it.
 *
 * Owns its child, its open files and its answer buffer.
 */
#ifndef DROVER_NODE_NTASK_H
#define DROVER_NODE_NTASK_H

#include <jansson.h>
#include <openssl/evp.h>
#include <stdbool.h>
#include <stdint.h>

#include "common/childproc.h"
#include "common/loop.h"
#include "common/tunnel.h"

#define NTASK_META_MAX  4096
#define NTASK_ID_MAX    48
#define NTASK_OUTPUT    4096    /* output tail kept from a child */

/* The node agent's task settings (PRODUCT.md "Agent settings"). */
struct nodecfg {
    const char *node_name;
    const char *etcdctl, *etcdutl;      /* etcdutl NULL: etcdctl restores */
    const char *endpoints, *cacert, *cert, *key;
    const char *snapshot_dir, *state_dir;
    const char *restore_hook, *upgrade_hook;
    uint64_t timeout_ms;                /* per child */
};

struct ntask;
typedef void (*ntask_child_fn)(struct ntask *t, int status, const char *out, size_t len);

struct ntask {
    struct loop *loop;
    struct tun_stream *s;               /* NULL once gone */
    const struct nodecfg *cfg;
    json_t *meta;                       /* the task object */
    char id[NTASK_ID_MAX + 1];          /* meta "id", checked, if the task has one */
    struct childproc *child;
    ntask_child_fn child_done;
    /* input: the file the server streams (restore) */
    int in_fd;
    EVP_MD_CTX *in_sha;
    uint64_t in_len;
    bool in_eof;
    void (*on_input)(struct ntask *t);  /* the server's data has all arrived */
    /* output: the answer line, then out_left bytes of out_fd */
    char *line;
    size_t line_len, line_sent;
    int out_fd;
    uint64_t out_left;
    uint8_t chunk[65536];
    size_t chunk_len, chunk_sent;
    /* hashing a file a bit per loop turn */
    struct loop_timer hash_timer;
    int hash_fd;
    EVP_MD_CTX *hash;
    uint64_t hash_len;
    void (*hash_done)(struct ntask *t, const char *hex, uint64_t len);
    char path[512], path2[512];         /* task scratch: files and dirs */
};

/* Accepts s for a task: parses meta (an object, within NTASK_META_MAX; an
 * "id" must be a safe file name). NULL after resetting s with the reason. */
struct ntask *ntask_accept(struct loop *l, const struct nodecfg *cfg, struct tun_stream *s,
                           const uint8_t *meta, size_t len, bool needs_id);
/* Runs argv with env (both NULL-terminated); done gets the result. On a
 * failure to start, answers the error and returns -1. */
int ntask_run(struct ntask *t, const char *const *argv, const char *const *env,
              ntask_child_fn done);
/* Answers with reply (taken) and then size bytes of fd (taken; -1 none),
 * then half-closes. The task frees itself once the stream is over. */
void ntask_answer(struct ntask *t, json_t *reply, int fd, uint64_t size);
/* Answers {"ok":false,"error":...}. */
void ntask_fail(struct ntask *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Hashes path (SHA-256) without blocking the loop for long; then done. On
 * an error, answers it. */
void ntask_hash_file(struct ntask *t, const char *path,
                     void (*done)(struct ntask *t, const char *hex, uint64_t len));
/* Makes dir and its parents (0700). 0 or -1 with errno. */
int ntask_mkdirs(const char *dir);
/* The trimmed output of a child as a JSON-able string (last line if err). */
void ntask_output_tail(const char *out, size_t len, char *dst, size_t cap);

/* The services (etcdtask.c, upgrade.c). */
void etcdtask_snapshot(void *ud, struct loop *l, struct tun_stream *s, const uint8_t *meta,
                       size_t len);
void etcdtask_restore(void *ud, struct loop *l, struct tun_stream *s, const uint8_t *meta,
                      size_t len);
void etcdtask_delete(void *ud, struct loop *l, struct tun_stream *s, const uint8_t *meta,
                     size_t len);
void upgrade_serve(void *ud, struct loop *l, struct tun_stream *s, const uint8_t *meta,
                   size_t len);

#endif
