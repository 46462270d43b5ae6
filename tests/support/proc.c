/*
 * proc: process and environment helpers for integration tests. See proc.h.
 */
#include "tests/support/proc.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <openssl/evp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/tls.h"

#define MAX_TRACKED 64

static struct proc *tracked[MAX_TRACKED];
static size_t ntracked;

extern char **environ;

long long mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void child_exec(const char *const argv[], const char *const env[], const char *log)
{
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    setpgid(0, 0);
    int fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (fd >= 0) {
        dup2(fd, 1);
        dup2(fd, 2);
        close(fd);
    }
    int null = open("/dev/null", O_RDONLY);
    if (null >= 0) {
        dup2(null, 0);
        close(null);
    }
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    signal(SIGPIPE, SIG_DFL);
    for (size_t i = 0; env && env[i]; i++)
        putenv((char *)env[i]);
    execv(argv[0], (char *const *)argv);
    fprintf(stderr, "exec %s: %s\n", argv[0], strerror(errno));
    _exit(127);
}

/*
 * Under `make valgrind` (DROVER_VALGRIND=DIR) drover's own programs run under
 * memcheck; a process that stops with errors or definite leaks exits 99 and
 * leaves its report in DIR. Test tools run as they are.
 */
static const char *const *with_valgrind(const char *const argv[], const char **store,
                                        size_t cap, char *logopt, size_t loglen)
{
    const char *dir = getenv("DROVER_VALGRIND");
    const char *bins = getenv("DROVER_BIN_DIR");
    if (!dir || !*dir || !bins || strncmp(argv[0], bins, strlen(bins)) != 0)
        return argv;
    size_t n = 0;
    snprintf(logopt, loglen, "--log-file=%s/vg-%%p.log", dir);
    const char *pre[] = { "/usr/bin/valgrind", "--error-exitcode=99", "--leak-check=full",
                          "--errors-for-leak-kinds=definite", "--show-leak-kinds=definite",
                          "--track-fds=no", logopt };
    for (size_t i = 0; i < sizeof(pre) / sizeof(pre[0]) && n < cap - 1; i++)
        store[n++] = pre[i];
    for (size_t i = 0; argv[i] && n < cap - 1; i++)
        store[n++] = argv[i];
    store[n] = NULL;
    return store;
}

bool proc_under_valgrind(void)
{
    const char *dir = getenv("DROVER_VALGRIND");
    return dir && *dir;
}

void proc_spawn(struct proc *p, const char *const argv[], const char *const env[],
                const char *log)
{
    memset(p, 0, sizeof(*p));
    snprintf(p->log, sizeof(p->log), "%s", log);
    const char *store[48];
    char logopt[600];
    argv = with_valgrind(argv, store, 48, logopt, sizeof(logopt));
    pid_t pid = fork();
    if (pid == 0)
        child_exec(argv, env, log);
    p->pid = pid;
    if (pid > 0 && ntracked < MAX_TRACKED)
        tracked[ntracked++] = p;
}

void proc_signal(struct proc *p, int sig)
{
    if (p->pid > 0)
        kill(p->pid, sig);
}

int proc_wait(struct proc *p, int timeout_ms)
{
    if (p->pid <= 0)
        return -1;
    long long end = mono_ms() + timeout_ms;
    for (;;) {
        int st;
        pid_t r = waitpid(p->pid, &st, WNOHANG);
        if (r == p->pid) {
            p->pid = 0;
            if (WIFEXITED(st))
                return WEXITSTATUS(st);
            return 128 + WTERMSIG(st);
        }
        if (r < 0 || mono_ms() > end)
            return -1;
        usleep(20000);
    }
}

int proc_stop(struct proc *p, int timeout_ms)
{
    if (p->pid <= 0)
        return -1;
    kill(p->pid, SIGCONT);
    kill(p->pid, SIGTERM);
    int rc = proc_wait(p, timeout_ms);
    if (rc < 0)
        proc_kill(p);
    return rc;
}

void proc_kill(struct proc *p)
{
    if (p->pid <= 0)
        return;
    kill(p->pid, SIGCONT);
    kill(p->pid, SIGKILL);
    waitpid(p->pid, NULL, 0);
    p->pid = 0;
}

void proc_end(struct proc *p)
{
    if (p->pid > 0)
        proc_stop(p, proc_under_valgrind() ? 60000 : 5000);
}

void proc_cleanup(void)
{
    for (size_t i = 0; i < ntracked; i++)
        proc_kill(tracked[i]);
    ntracked = 0;
}

static const char *dir_path(const char *var, const char *fallback, const char *name)
{
    static char buf[4][1024];
    static int k;
    const char *dir = getenv(var);
    char *out = buf[k++ % 4];
    snprintf(out, sizeof(buf[0]), "%s/%s", dir ? dir : fallback, name);
    return out;
}

const char *bin_path(const char *name)
{
    return dir_path("DROVER_BIN_DIR", "bin", name);
}

const char *tool_path(const char *name)
{
    return dir_path("DROVER_TOOLS_DIR", "build/tools", name);
}

/* The low end of the kernel's ephemeral range (32768 unless configured). */
static int ephemeral_low(void)
{
    int lo = 32768, hi;
    FILE *f = fopen("/proc/sys/net/ipv4/ip_local_port_range", "r");
    if (f) {
        if (fscanf(f, "%d %d", &lo, &hi) != 2)
            lo = 32768;
        fclose(f);
    }
    return lo;
}

static bool can_bind(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    bool ok = fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0;
    if (fd >= 0)
        close(fd);
    return ok;
}

/*
 * A port below the ephemeral range: a port the kernel hands out for port 0
 * can be taken by any outgoing connection (an agent's, a load tool's) in the
 * gap before the server binds it, or while a test restarts the server, which
 * made a test fail now and then with "Address already in use". Ports handed
 * out in this process are not handed out again.
 */
int free_port(void)
{
    static int given[1024];
    static size_t ngiven;
    static uint32_t x;
    int lo = 20000, hi = ephemeral_low() - 1;
    if (!x)
        x = (uint32_t)getpid() * 2654435761u ^ (uint32_t)mono_ms();
    for (int tries = 0; hi > lo && tries < 1000; tries++) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        int port = lo + (int)(x % (uint32_t)(hi - lo + 1));
        bool used = false;
        for (size_t i = 0; i < ngiven && i < 1024 && !used; i++)
            used = given[i] == port;
        if (used || !can_bind(port))
            continue;
        given[ngiven++ % 1024] = port;
        return port;
    }
    return -1;
}

void make_temp_dir(char *out, size_t cap)
{
    snprintf(out, cap, "/tmp/drover-test-XXXXXX");
    if (!mkdtemp(out))
        out[0] = '\0';
}

void remove_tree(const char *dir)
{
    if (!dir[0] || strncmp(dir, "/tmp/drover-test-", 17) != 0)
        return;
    char cmd[600];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", dir);
}

bool wait_until(bool (*fn)(void *ud), void *ud, int timeout_ms)
{
    long long end = mono_ms() + timeout_ms;
    for (;;) {
        if (fn(ud))
            return true;
        if (mono_ms() > end)
            return false;
        usleep(50000);
    }
}

bool file_contains(const char *path, const char *needle)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return false;
    char line[4096];
    bool found = false;
    while (!found && fgets(line, sizeof(line), f))
        found = strstr(line, needle) != NULL;
    fclose(f);
    return found;
}

struct log_wait {
    const char *path, *needle;
};

static bool log_has(void *ud)
{
    struct log_wait *w = ud;
    return file_contains(w->path, w->needle);
}

bool wait_for_log(const char *path, const char *needle, int timeout_ms)
{
    struct log_wait w = { path, needle };
    return wait_until(log_has, &w, timeout_ms);
}

long rss_kib(pid_t pid)
{
    char path[64], line[256];
    snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "r");
    long v = 0;
    if (!f)
        return 0;
    while (fgets(line, sizeof(line), f))
        if (sscanf(line, "VmRSS: %ld kB", &v) == 1)
            break;
    fclose(f);
    return v;
}

int fd_count(pid_t pid)
{
    char cmd[96], out[32];
    snprintf(cmd, sizeof(cmd), "ls /proc/%d/fd 2>/dev/null | wc -l", (int)pid);
    if (run_capture(cmd, out, sizeof(out)) != 0)
        return -1;
    return (int)strtol(out, NULL, 10);
}

int run_capture(const char *cmd, char *out, size_t cap)
{
    FILE *f = popen(cmd, "r");
    if (!f)
        return -1;
    size_t n = fread(out, 1, cap - 1, f);
    out[n] = '\0';
    int st = pclose(f);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

int file_sha256(const char *path, char out[65])
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return -1;
    char *buf = malloc(1 << 20);
    size_t n = buf ? fread(buf, 1, 1 << 20, f) : 0;
    fclose(f);
    if (!buf)
        return -1;
    tls_sha256_hex(buf, n, out);
    free(buf);
    return 0;
}
