/*
 * logs: pod logs in the kube-standin test stand-in. Every container "has
 * written" LOG_LINES lines since its pod started; tailLines keeps the last N,
 * timestamps=true prefixes each with its time, and follow=true streams the
 * backlog and then a new line every 200 ms until the client goes away or the
 * pod is deleted, as a real log stream ends with its container.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tests/kube-standin/standin.h"
#include "tests/kube-standin/store.h"

#define LOG_LINES 20
#define FOLLOW_MS 200

struct follower {
    struct ks *ks;
    struct kstream *s;
    char ns[256], pod[256], container[256];
    bool timestamps;
    unsigned next;
    int64_t start;
    struct loop_timer timer;
};

static void format_line(char *out, size_t cap, const char *ns, const char *pod,
                        const char *container, unsigned n, int64_t start, bool ts)
{
    char stamp[40] = "";
    if (ts) {
        char t[32];
        ks_rfc3339(start + n, t);
        /* The real stamps are RFC 3339 with nanoseconds. */
        snprintf(stamp, sizeof(stamp), "%.19s.000000000Z ", t);
    }
    snprintf(out, cap, "%skube-standin: %s/%s container %s line %u\n", stamp, ns, pod,
             container, n);
}

/* The container a log or exec request names (or the only one), or NULL
 * after answering 400 as the real API does. */
const char *pod_container(struct kreq *k, const json_t *pod, char *buf, size_t cap)
{
    const json_t *cs = json_object_get(json_object_get(pod, "spec"), "containers");
    ssize_t n = ks_query(k, "container", buf, cap);
    if (n > 0) {
        size_t i;
        json_t *c;
        json_array_foreach(cs, i, c)
            if (strcmp(obj_str(c, "name") ? obj_str(c, "name") : "", buf) == 0)
                return buf;
        ks_reply_status(k, 400, "BadRequest", NULL, "container %s is not valid for pod %s",
                        buf, k->a.name);
        return NULL;
    }
    if (json_array_size(cs) == 1) {
        snprintf(buf, cap, "%s", obj_str(json_array_get(cs, 0), "name"));
        return buf;
    }
    char names[1024] = "";
    size_t o = 0, i;
    json_t *c;
    json_array_foreach(cs, i, c) {
        int w = snprintf(names + o, sizeof(names) - o, "%s%s", o ? " " : "", obj_str(c, "name"));
        if (w > 0 && (size_t)w < sizeof(names) - o)
            o += (size_t)w;
    }
    ks_reply_status(k, 400, "BadRequest", NULL, "a container name must be specified for pod "
                    "%s, choose one of: [%s]", k->a.name, names);
    return NULL;
}

static void on_gone(void *ud)
{
    struct follower *f = ud;
    loop_timer_stop(f->ks->loop, &f->timer);
    free(f);
}

static void tick(struct loop_timer *t)
{
    struct follower *f = (struct follower *)((char *)t - offsetof(struct follower, timer));
    const struct kres *pods = kres_find("", "v1", "pods");
    char line[1024];
    if (!store_get(f->ks->store, pods, f->ns, f->pod)) {
        kstream_end(f->s);
        free(f);
        return;
    }
    format_line(line, sizeof(line), f->ns, f->pod, f->container, f->next++, f->start,
                f->timestamps);
    if (kstream_write(f->s, line, strlen(line)) < 0 || kstream_pending(f->s) > (1u << 20)) {
        kstream_end(f->s);
        free(f);
        return;
    }
    loop_timer_start(f->ks->loop, &f->timer, FOLLOW_MS, tick);
}

void h_log(struct kreq *k)
{
    const struct kattrs *a = &k->a;
    const json_t *pod = store_get(k->ks->store, a->res, a->ns, a->name);
    if (!pod) {
        ks_reply_not_found(k, a->res, a->name);
        return;
    }
    char cbuf[256], buf[32];
    const char *container = pod_container(k, pod, cbuf, sizeof(cbuf));
    if (!container)
        return;
    if (ks_query_bool(k, "previous")) {
        ks_reply_status(k, 400, "BadRequest", NULL, "previous terminated container \"%s\" in "
                        "pod \"%s\" not found", container, a->name);
        return;
    }
    unsigned from = 0;
    if (ks_query(k, "tailLines", buf, sizeof(buf)) > 0) {
        long n = strtol(buf, NULL, 10);
        if (n >= 0 && n < LOG_LINES)
            from = LOG_LINES - (unsigned)n;
    }
    bool ts = ks_query_bool(k, "timestamps");
    int64_t start = ks_parse_time(obj_str(pod, "metadata.creationTimestamp"));
    if (!ks_query_bool(k, "follow")) {
        char text[LOG_LINES * 600] = "";
        size_t o = 0;
        for (unsigned i = from; i < LOG_LINES; i++) {
            format_line(text + o, sizeof(text) - o, a->ns, a->name, container, i, start, ts);
            o += strlen(text + o);
        }
        ks_reply_text(k, 200, text);
        return;
    }
    struct follower *f = calloc(1, sizeof(*f));
    if (!f) {
        ks_reply_status(k, 500, "InternalError", NULL, "out of memory");
        return;
    }
    f->ks = k->ks;
    snprintf(f->ns, sizeof(f->ns), "%s", a->ns);
    snprintf(f->pod, sizeof(f->pod), "%s", a->name);
    snprintf(f->container, sizeof(f->container), "%s", container);
    f->timestamps = ts;
    f->start = start;
    f->next = LOG_LINES;
    f->s = kstream_start(k, "text/plain", on_gone, f);    /* k is gone now */
    if (!f->s) {
        free(f);
        return;
    }
    for (unsigned i = from; i < LOG_LINES; i++) {
        char line[1024];
        format_line(line, sizeof(line), f->ns, f->pod, f->container, i, start, ts);
        kstream_write(f->s, line, strlen(line));
    }
    loop_timer_start(f->ks->loop, &f->timer, FOLLOW_MS, tick);
}
