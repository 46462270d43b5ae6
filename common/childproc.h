/*
 * childproc: runs one child program from an event loop without blocking it
 * (the node agent's etcdctl and hook runs).
 *
 * The child gets /dev/null as stdin and one pipe for stdout and stderr
 * together; the parent keeps only the last output_cap bytes of that output
 * (the tail is where a failing tool says why). The child leads a process
 * group of its own, so a timeout or a cancel (childproc_kill) kills
 * whatever it started too. Its exit is seen through a pidfd on the loop.
 *
 * Completion is the child's exit, not the end of its output: a hook that
 * starts a daemon (which inherits the pipe) still completes when the hook
 * itself exits; output still buffered in the pipe at that moment is read,
 * later output is not.
 *
 * Owns the pid, the pidfd, the pipe and the output buffer until done runs
 * or childproc_kill returns.
 */
#ifndef DROVER_CHILDPROC_H
#define DROVER_CHILDPROC_H

#include <stddef.h>
#include <stdint.h>

#include "common/loop.h"

#define CHILDPROC_TIMEOUT (-1)

struct childproc;

struct childproc_cfg {
    const char *const *argv;        /* argv[0] is a path or found on $PATH */
    const char *const *env;         /* KEY=VALUE added to ours; NULL-terminated, may be NULL */
    size_t output_cap;              /* bytes of output kept (the tail); 0 = 4096 */
    uint64_t timeout_ms;            /* 0 = none; then SIGKILL to the group */
};

/* status: the exit code, 128 + signal, or CHILDPROC_TIMEOUT; output is the
 * tail (NUL-terminated, len bytes). The child is reaped and p is freed
 * after this returns. */
typedef void (*childproc_done_fn)(void *ud, int status, const char *output, size_t len);

/* Starts the child. NULL with a message in err if it could not be started
 * (a program that is missing is an exit status of 127 through done, as
 * from a shell). */
struct childproc *childproc_start(struct loop *l, const struct childproc_cfg *cfg,
                                  childproc_done_fn done, void *ud, char *err, size_t errlen);
/* Kills the group (SIGKILL), reaps, frees; done is not called. NULL: no-op. */
void childproc_kill(struct childproc *p);

#endif
