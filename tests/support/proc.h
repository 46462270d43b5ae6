/*
 * proc: what the integration tests need to run real drover processes on
 * loopback and always clean them up: spawning with extra environment and a
 * log file, signals, waiting with deadlines, free ports, log searches, RSS.
 *
 * Every spawned process is recorded; proc_cleanup() (a checked teardown)
 * kills whatever is left, and each child dies with its parent
 * (PR_SET_PDEATHSIG) if a test is killed by its timeout.
 */
#ifndef DROVER_TEST_PROC_H
#define DROVER_TEST_PROC_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

struct proc {
    pid_t pid;
    char log[512];
};

/* Starts argv[0] (a path) with the current environment plus env (KEY=VALUE
 * strings, NULL-terminated, may be NULL), stdout and stderr to log. */
void proc_spawn(struct proc *p, const char *const argv[], const char *const env[],
                const char *log);
/* Sends sig (if running). */
void proc_signal(struct proc *p, int sig);
/* Waits up to timeout_ms; returns the exit code, 128+signal, or -1 on timeout. */
int proc_wait(struct proc *p, int timeout_ms);
/* SIGTERM, then waits up to timeout_ms for a clean exit (SIGKILL after).
 * Returns the exit code as proc_wait does, or -1 if it had to be killed. */
int proc_stop(struct proc *p, int timeout_ms);
/* Whether drover's programs run under valgrind (make valgrind). */
bool proc_under_valgrind(void);
/* SIGKILL and reap. Safe on a process that already ended. */
void proc_kill(struct proc *p);
/* For teardown: ends a process the test is done with as an operator would
 * (SIGTERM), so that under `make valgrind` memcheck gets to check it for
 * leaks; SIGKILL if it has not exited after 5 s (60 s under valgrind). */
void proc_end(struct proc *p);
void proc_cleanup(void);

/* A path to one of our binaries (DROVER_BIN_DIR) or test tools (DROVER_TOOLS_DIR). */
const char *bin_path(const char *name);
const char *tool_path(const char *name);

/* An unused loopback TCP port. */
int free_port(void);
/* Makes a fresh temporary directory; returns its path (static storage per
 * call site: copy it). */
void make_temp_dir(char *out, size_t cap);
void remove_tree(const char *dir);

/* Polls fn(ud) every 50 ms until it returns true or timeout_ms passes. */
bool wait_until(bool (*fn)(void *ud), void *ud, int timeout_ms);
bool file_contains(const char *path, const char *needle);
/* Waits until path contains needle. */
bool wait_for_log(const char *path, const char *needle, int timeout_ms);

/* Resident set size of pid in KiB (0 if unknown). */
long rss_kib(pid_t pid);
/* Open file descriptors of pid (-1 if unknown). */
int fd_count(pid_t pid);

/* Runs a shell command and captures its stdout (up to cap-1 bytes).
 * Returns the exit status (-1 if it could not run). */
int run_capture(const char *cmd, char *out, size_t cap);

/* SHA-256 hex of a file's bytes into out[65]; 0 or -1. */
int file_sha256(const char *path, char out[65]);

/* Milliseconds on the monotonic clock. */
long long mono_ms(void);

#endif
