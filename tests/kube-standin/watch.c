/*
 * watch: watches in the kube-standin test stand-in. A watch is a chunked
 * answer of newline-delimited {"type":...,"object":...} events, as the real
 * API sends them. Without a resourceVersion (or with "0") it starts with an
 * ADDED event per existing object; from resourceVersion N it replays the
 * stored history after N, and if that history no longer reaches back to N it
 * sends the real API's ERROR event (a Status with code 410, reason Expired)
 * and ends, which is what makes client-go relist. Selectors apply to both
 * states of a change, so an object that stops matching is DELETED from the
 * watcher's point of view and one that starts matching is ADDED.
 * timeoutSeconds ends the watch; a watcher whose client reads too slowly is
 * dropped, as the real server drops it.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "tests/kube-standin/handlers.h"
#include "tests/kube-standin/standin.h"
#include "tests/kube-standin/store.h"

#define WATCH_DEFAULT_TIMEOUT_S 1800
#define WATCH_MAX_PENDING (8u * 1024u * 1024u)

struct watcher {
    struct ks *ks;
    struct kstream *s;
    const struct kres *res;
    char ns[256], name[256];
    struct ksel *labels, *fields;
    bool table;
    char include[32];
    struct loop_timer timer;
    struct watcher *prev, *next;
    bool dead;
};

/* Unlinks w; the memory goes after the current loop batch, because a
 * replay or a fan-out may still hold w when it ends. */
static void watcher_release(struct watcher *w)
{
    if (w->dead)
        return;
    w->dead = true;
    if (w->prev)
        w->prev->next = w->next;
    else if (w->ks->watchers == w)
        w->ks->watchers = w->next;
    if (w->next)
        w->next->prev = w->prev;
    loop_timer_stop(w->ks->loop, &w->timer);
    sel_free(w->labels);
    sel_free(w->fields);
    w->labels = w->fields = NULL;
    if (loop_defer(w->ks->loop, free, w) < 0)
        log_warn("watch: out of memory, leaking a watcher");
}

static void end_watch(struct watcher *w)
{
    if (w->dead)
        return;
    kstream_end(w->s);
    watcher_release(w);
}

static void on_gone(void *ud)
{
    watcher_release(ud);
}

static void on_timeout(struct loop_timer *t)
{
    struct watcher *w = (struct watcher *)((char *)t - offsetof(struct watcher, timer));
    end_watch(w);
}

static bool wants(const struct watcher *w, const json_t *obj)
{
    if (!obj)
        return false;
    if (w->ns[0] && strcmp(obj_ns(obj), w->ns) != 0)
        return false;
    if (w->name[0] && strcmp(obj_name(obj), w->name) != 0)
        return false;
    return sel_match(w->labels, obj) && sel_match(w->fields, obj);
}

/* Sends one event; false if the watcher was ended. */
static bool send_event(struct watcher *w, const char *type, const json_t *obj)
{
    json_t *o;
    if (w->table && strcmp(type, "ERROR") != 0) {
        json_t *one = json_pack("[O]", obj);
        o = table_of(w->res, one, obj_str(obj, "metadata.resourceVersion"), w->include);
        json_decref(one);
    } else {
        o = json_incref((json_t *)obj);
    }
    json_t *ev = json_pack("{s:s,s:o}", "type", type, "object", o);
    char *text = ev ? json_dumps(ev, JSON_COMPACT) : NULL;
    json_decref(ev);
    if (!text) {
        end_watch(w);
        return false;
    }
    size_t n = strlen(text);
    text[n] = '\n';
    int rc = kstream_write(w->s, text, n + 1);
    free(text);
    if (rc < 0 || kstream_pending(w->s) > WATCH_MAX_PENDING) {
        log_warn("dropping a %s watch whose client does not keep up", w->res->name);
        end_watch(w);
        return false;
    }
    return true;
}

/* What a change looks like to w: NULL if it does not see it. */
static const char *event_type(const struct watcher *w, const struct kevent *ev)
{
    if (ev->res != w->res)
        return NULL;
    bool now = ev->type != KEV_DELETED && wants(w, ev->obj);
    bool before = ev->type == KEV_ADDED ? false : wants(w, ev->old);
    if (ev->type == KEV_DELETED)
        return before ? "DELETED" : NULL;
    if (now && before)
        return "MODIFIED";
    if (now)
        return "ADDED";
    return before ? "DELETED" : NULL;
}

static void deliver(void *ud, const struct kevent *ev)
{
    struct watcher *w = ud;
    if (w->dead)
        return;
    const char *type = event_type(w, ev);
    if (type)
        send_event(w, type, ev->obj);
}

static void on_change(void *ud, const struct kevent *ev)
{
    struct ks *ks = ud;
    struct watcher *w = ks->watchers, *next;
    for (; w; w = next) {
        next = w->next;     /* w may end while being told */
        deliver(w, ev);
    }
}

int watch_init(struct ks *ks)
{
    return store_observe(ks->store, on_change, ks);
}

/* Sends the state a watch without a resourceVersion starts from. */
static bool send_initial(struct watcher *w)
{
    json_t *objs = store_list(w->ks->store, w->res, w->ns[0] ? w->ns : NULL);
    size_t i;
    json_t *o;
    bool ok = true;
    json_array_foreach(objs, i, o) {
        if (wants(w, o) && !(ok = send_event(w, "ADDED", o)))
            break;
    }
    json_decref(objs);
    return ok;
}

static void send_expired(struct watcher *w, unsigned long long rv)
{
    char msg[128];
    snprintf(msg, sizeof(msg), "too old resource version: %llu (%llu)", rv,
             (unsigned long long)store_oldest_rv(w->ks->store) + 1);
    json_t *st = ks_status_obj(410, "Expired", msg, NULL);
    if (send_event(w, "ERROR", st))
        end_watch(w);
    json_decref(st);
}

static void drop_unstarted(struct watcher *w)
{
    sel_free(w->labels);
    sel_free(w->fields);
    free(w);
}

void watch_start(struct kreq *k)
{
    struct ks *ks = k->ks;
    struct ksel *fields;
    struct ksel *labels = parse_selectors(k, &fields);
    if (!labels)
        return;
    struct watcher *w = calloc(1, sizeof(*w));
    if (!w) {
        sel_free(labels);
        sel_free(fields);
        ks_reply_status(k, 500, "InternalError", NULL, "out of memory");
        return;
    }
    w->dead = true;     /* not listed until the stream starts */
    w->ks = ks;
    w->res = k->a.res;
    w->labels = labels;
    w->fields = fields;
    w->table = k->table;
    if (k->a.res->namespaced)
        snprintf(w->ns, sizeof(w->ns), "%s", k->a.ns);
    snprintf(w->name, sizeof(w->name), "%s", k->a.name);
    if (ks_query(k, "includeObject", w->include, sizeof(w->include)) < 0)
        w->include[0] = '\0';
    char buf[32];
    bool from_rv = false;
    unsigned long long rv = 0;
    if (ks_query(k, "resourceVersion", buf, sizeof(buf)) > 0 && strcmp(buf, "0") != 0) {
        char *end;
        rv = strtoull(buf, &end, 10);
        if (*end) {
            drop_unstarted(w);
            ks_reply_status(k, 400, "BadRequest", NULL, "invalid resourceVersion %s", buf);
            return;
        }
        from_rv = true;
    }
    unsigned long timeout = WATCH_DEFAULT_TIMEOUT_S;
    if (ks_query(k, "timeoutSeconds", buf, sizeof(buf)) > 0 && strtoul(buf, NULL, 10) > 0)
        timeout = strtoul(buf, NULL, 10);
    w->s = kstream_start(k, "application/json", on_gone, w);   /* k is gone now */
    if (!w->s) {
        drop_unstarted(w);
        return;
    }
    w->dead = false;
    w->next = ks->watchers;
    if (ks->watchers)
        ks->watchers->prev = w;
    ks->watchers = w;
    if (from_rv) {
        if (store_since(ks->store, rv, deliver, w) < 0) {
            send_expired(w, rv);
            return;
        }
    } else if (!send_initial(w)) {
        return;
    }
    if (!w->dead)
        loop_timer_start(ks->loop, &w->timer, (uint64_t)timeout * 1000, on_timeout);
}
