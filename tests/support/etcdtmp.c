/*
 * etcdtmp: a throwaway etcd for tests. See etcdtmp.h.
 */
#include "tests/support/etcdtmp.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tests/support/proc.h"

#define READY_MS 30000

struct etcdtmp {
    char dir[256];
    char endpoint[64];
    pid_t owner;
    struct etcdtmp *next;
};

static struct etcdtmp *live;

static int write_script(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    if (!f)
        return -1;
    fputs(text, f);
    fclose(f);
    return chmod(path, 0755);
}

static int scripts(struct etcdtmp *e)
{
    char path[300], text[2048];
    int cport = free_port(), pport = free_port();
    snprintf(e->endpoint, sizeof(e->endpoint), "http://127.0.0.1:%d", cport);
    /* setsid + nohup: etcd must outlive a hook that starts it. */
    snprintf(text, sizeof(text),
             "#!/bin/sh\n"
             "cd %s || exit 1\n"
             "setsid nohup etcd --name default --data-dir %s/data "
             "--listen-client-urls http://127.0.0.1:%d --advertise-client-urls "
             "http://127.0.0.1:%d --listen-peer-urls http://127.0.0.1:%d "
             "--initial-advertise-peer-urls http://127.0.0.1:%d "
             "--initial-cluster default=http://127.0.0.1:%d >>%s/etcd.log 2>&1 </dev/null &\n"
             "echo $! > %s/etcd.pid\n",
             e->dir, e->dir, cport, cport, pport, pport, pport, e->dir, e->dir);
    snprintf(path, sizeof(path), "%s/start.sh", e->dir);
    if (write_script(path, text) < 0)
        return -1;
    snprintf(text, sizeof(text),
             "#!/bin/sh\n"
             "pid=$(cat %s/etcd.pid 2>/dev/null) || exit 0\n"
             "kill $pid 2>/dev/null\n"
             "i=0; while kill -0 $pid 2>/dev/null && [ $i -lt 100 ]; do sleep 0.1; "
             "i=$((i+1)); done\n"
             "kill -9 $pid 2>/dev/null\n"
             "rm -f %s/etcd.pid\n", e->dir, e->dir);
    snprintf(path, sizeof(path), "%s/stop.sh", e->dir);
    return write_script(path, text);
}

static int run(struct etcdtmp *e, const char *script)
{
    char cmd[400], out[256];
    snprintf(cmd, sizeof(cmd), "%s/%s", e->dir, script);
    return run_capture(cmd, out, sizeof(out)) == 0 ? 0 : -1;
}

static bool answers(void *ud)
{
    struct etcdtmp *e = ud;
    char cmd[400], out[256];
    snprintf(cmd, sizeof(cmd), "etcdctl --endpoints=%s --dial-timeout=1s endpoint health "
             ">/dev/null 2>&1", e->endpoint);
    return run_capture(cmd, out, sizeof(out)) == 0;
}

int etcdtmp_resume(struct etcdtmp *e)
{
    if (run(e, "start.sh") < 0)
        return -1;
    return wait_until(answers, e, READY_MS) ? 0 : -1;
}

int etcdtmp_halt(struct etcdtmp *e)
{
    return run(e, "stop.sh");
}

static void stop_all(void)
{
    while (live) {
        struct etcdtmp *e = live;
        if (e->owner != getpid())
            return;     /* a forked test child: the parent cleans up */
        etcdtmp_stop(e);
    }
}

struct etcdtmp *etcdtmp_start(char *err, size_t errlen)
{
    static bool registered;
    struct etcdtmp *e = calloc(1, sizeof(*e));
    char tmpl[] = "/tmp/drover-etcdtmp-XXXXXX";
    if (!e || !mkdtemp(tmpl)) {
        snprintf(err, errlen, "cannot make a temporary directory");
        free(e);
        return NULL;
    }
    snprintf(e->dir, sizeof(e->dir), "%s", tmpl);
    e->owner = getpid();
    e->next = live;
    live = e;
    if (!registered) {
        atexit(stop_all);
        registered = true;
    }
    if (scripts(e) < 0 || etcdtmp_resume(e) < 0) {
        char log[300], tail[600] = "", cmd[400];
        snprintf(log, sizeof(log), "%s/etcd.log", e->dir);
        snprintf(cmd, sizeof(cmd), "tail -c 500 %s 2>/dev/null", log);
        run_capture(cmd, tail, sizeof(tail));
        snprintf(err, errlen, "etcd did not start (is etcd-server installed?): %s", tail);
        etcdtmp_stop(e);
        return NULL;
    }
    return e;
}

const char *etcdtmp_endpoint(const struct etcdtmp *e)
{
    return e->endpoint;
}

const char *etcdtmp_dir(const struct etcdtmp *e)
{
    return e->dir;
}

int etcdtmp_put(struct etcdtmp *e, const char *key, const char *value)
{
    char cmd[600], out[256];
    snprintf(cmd, sizeof(cmd), "etcdctl --endpoints=%s put '%s' '%s' >/dev/null 2>&1",
             e->endpoint, key, value);
    return run_capture(cmd, out, sizeof(out)) == 0 ? 0 : -1;
}

int etcdtmp_get(struct etcdtmp *e, const char *key, char *out, size_t cap)
{
    char cmd[600];
    snprintf(cmd, sizeof(cmd), "etcdctl --endpoints=%s get --print-value-only '%s' 2>/dev/null",
             e->endpoint, key);
    if (run_capture(cmd, out, cap) != 0)
        return -1;
    out[strcspn(out, "\n")] = '\0';
    return 0;
}

void etcdtmp_stop(struct etcdtmp *e)
{
    if (!e)
        return;
    for (struct etcdtmp **pp = &live; *pp; pp = &(*pp)->next) {
        if (*pp == e) {
            *pp = e->next;
            break;
        }
    }
    run(e, "stop.sh");
    remove_tree(e->dir);
    free(e);
}
