/*
 * ctl: the pieces droverctl's commands share. See ctl.h.
 */
#include "cli/ctl.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli/yamljson.h"

void ctl_err(const char *fmt, ...)
{
    va_list ap;
    fputs("error: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

int ctl_connect(struct ctl *ctl)
{
    char err[512];
    if (ctl->have_client)
        return CTL_OK;
    int rc = cfgfile_load(ctl->config_path, &ctl->cfg, err, sizeof(err));
    if (rc < 0) {
        ctl_err("%s", err);
        return CTL_FAILED;
    }
    if (rc == 1 || !ctl->cfg.server || !ctl->cfg.token || !ctl->cfg.token[0]) {
        ctl_err("not logged in: run droverctl login <server-url> --username <user>");
        return CTL_FAILED;
    }
    if (http_client_init(&ctl->http, ctl->cfg.server, ctl->cfg.insecure ? NULL
                         : ctl->cfg.ca_cert, ctl->cfg.insecure, err, sizeof(err)) < 0) {
        ctl_err("%s", err);
        return CTL_FAILED;
    }
    ctl->have_client = true;
    return CTL_OK;
}

void ctl_free(struct ctl *ctl)
{
    if (ctl->have_client)
        http_client_free(&ctl->http);
    ctl->have_client = false;
    cfgfile_free(&ctl->cfg);
}

void ctl_server_error(const struct http_answer *a)
{
    json_t *j = a->body ? json_loadb(a->body, a->len, 0, NULL) : NULL;
    const char *msg = json_string_value(jpath(j, "error.message"));
    if (msg)
        ctl_err("%s", msg);
    else
        ctl_err("the server answered HTTP %d%s%.200s", a->status,
                a->len ? ": " : "", a->body ? a->body : "");
    json_decref(j);
}

int ctl_call_raw(struct ctl *ctl, const char *method, const char *path, const char *ctype,
                 const char *body, size_t len, int out_fd, struct http_answer *a)
{
    char err[512];
    if (ctl_connect(ctl) != CTL_OK)
        return CTL_FAILED;
    if (http_request(&ctl->http, method, path, ctl->cfg.token, ctype, body, len, out_fd, a,
                     err, sizeof(err)) < 0) {
        ctl_err("%s", err);
        return CTL_FAILED;
    }
    if (a->status / 100 != 2) {
        ctl_server_error(a);
        if (a->status == 401)
            fprintf(stderr, "(log in again: droverctl login %s --username %s)\n",
                    ctl->cfg.server, ctl->cfg.username ? ctl->cfg.username : "USER");
        return CTL_FAILED;
    }
    return CTL_OK;
}

int ctl_call(struct ctl *ctl, const char *method, const char *path, json_t *body,
             json_t **out, int *status)
{
    struct http_answer a;
    char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
    if (body && !text) {
        ctl_err("out of memory");
        return CTL_FAILED;
    }
    memset(&a, 0, sizeof(a));
    int rc = ctl_call_raw(ctl, method, path, text ? "application/json" : NULL, text,
                          text ? strlen(text) : 0, -1, &a);
    free(text);
    if (status)
        *status = a.status;
    if (rc == CTL_OK && out) {
        json_error_t je;
        *out = a.len ? json_loadb(a.body, a.len, 0, &je) : json_null();
        if (!*out) {
            ctl_err("the server's answer is not JSON: %s", je.text);
            rc = CTL_FAILED;
        }
    }
    http_answer_free(&a);
    return rc;
}

int ctl_list(struct ctl *ctl, const char *path, json_t **items)
{
    char p[1024], cursor[512] = "";
    *items = json_array();
    for (int pages = 0; pages < 1000; pages++) {
        json_t *page;
        snprintf(p, sizeof(p), "%s?limit=1000%s%s", path, cursor[0] ? "&cursor=" : "",
                 cursor);
        if (ctl_call(ctl, "GET", p, NULL, &page, NULL) != CTL_OK) {
            json_decref(*items);
            *items = NULL;
            return CTL_FAILED;
        }
        json_array_extend(*items, json_object_get(page, "data"));
        const char *next = json_string_value(json_object_get(page, "next"));
        if (next)
            ctl_seg(next, cursor, sizeof(cursor));
        json_decref(page);
        if (!next)
            break;
    }
    return CTL_OK;
}

static bool looks_like_id(const char *s)
{
    return strncmp(s, "c-", 2) == 0;
}

int ctl_cluster_id(struct ctl *ctl, const char *arg, char id[64])
{
    if (looks_like_id(arg) && strlen(arg) < 64) {
        snprintf(id, 64, "%s", arg);
        return CTL_OK;
    }
    json_t *all, *c;
    size_t i;
    if (ctl_list(ctl, "/v3/clusters", &all) != CTL_OK)
        return CTL_FAILED;
    int rc = CTL_FAILED;
    json_array_foreach(all, i, c)
        if (strcmp(jstr(c, "name"), arg) == 0) {
            snprintf(id, 64, "%s", jstr(c, "id"));
            rc = CTL_OK;
            break;
        }
    json_decref(all);
    if (rc != CTL_OK)
        ctl_err("cluster %s not found", arg);
    return rc;
}

int ctl_print(struct ctl *ctl, json_t *j, void (*table_fn)(json_t *j, struct table *t))
{
    if (ctl->format == FMT_JSON) {
        if (json_dumpf(j, stdout, JSON_INDENT(2) | JSON_ENCODE_ANY) < 0)
            return CTL_FAILED;
        putchar('\n');
    } else if (ctl->format == FMT_YAML || !table_fn) {
        char *y = yj_dump(j, NULL);
        if (!y) {
            ctl_err("cannot write the answer as YAML");
            return CTL_FAILED;
        }
        fputs(y, stdout);
        free(y);
    } else {
        struct table t;
        memset(&t, 0, sizeof(t));
        table_fn(j, &t);
        int rc = table_print(&t, stdout);
        table_free(&t);
        if (rc < 0)
            return CTL_FAILED;
    }
    return fflush(stdout) == 0 ? CTL_OK : CTL_FAILED;
}

json_t *jpath(const json_t *j, const char *path)
{
    char key[128];
    while (j && *path) {
        size_t n = strcspn(path, ".");
        snprintf(key, sizeof(key), "%.*s", (int)(n < sizeof(key) ? n : sizeof(key) - 1),
                 path);
        j = json_object_get(j, key);
        path += n + (path[n] == '.');
    }
    return (json_t *)j;
}

const char *jstr(const json_t *j, const char *key)
{
    const char *s = json_string_value(jpath(j, key));
    return s ? s : "";
}

void ctl_age(const char *t, char *buf, size_t cap)
{
    struct tm tm;
    memset(&tm, 0, sizeof(tm));
    if (!t || !strptime(t, "%Y-%m-%dT%H:%M:%S", &tm)) {
        snprintf(buf, cap, "-");
        return;
    }
    long s = (long)difftime(time(NULL), timegm(&tm));
    if (s < 0)
        s = 0;
    if (s < 120)
        snprintf(buf, cap, "%lds", s);
    else if (s < 7200)
        snprintf(buf, cap, "%ldm", s / 60);
    else if (s < 172800)
        snprintf(buf, cap, "%ldh", s / 3600);
    else
        snprintf(buf, cap, "%ldd", s / 86400);
}

void ctl_seg(const char *in, char *out, size_t cap)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t o = 0;
    for (; *in && o + 4 < cap; in++) {
        unsigned char ch = (unsigned char)*in;
        if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
            (ch >= '0' && ch <= '9') || strchr("-._~", ch)) {
            out[o++] = (char)ch;
        } else {
            out[o++] = '%';
            out[o++] = hex[ch >> 4];
            out[o++] = hex[ch & 15];
        }
    }
    out[o] = '\0';
}

int ctl_int_flag(const struct args *a, const char *name, long min, long max, long *out)
{
    const char *v = args_get(a, name);
    char *end;
    if (!v)
        return 1;
    long n = strtol(v, &end, 10);
    if (!v[0] || *end || n < min || n > max) {
        ctl_err("--%s must be a number from %ld to %ld", name, min, max);
        return -1;
    }
    *out = n;
    return 0;
}

int ctl_wait(struct ctl *ctl, const char *path, const char *what,
             bool (*finished)(const json_t *doc, bool *ok, char *state, size_t cap),
             int timeout_s, json_t **last)
{
    char prev[64] = "", state[64];
    time_t start = time(NULL);
    *last = NULL;
    for (;;) {
        json_t *doc;
        if (ctl_call(ctl, "GET", path, NULL, &doc, NULL) != CTL_OK)
            return CTL_FAILED;
        bool ok = false, end = finished(doc, &ok, state, sizeof(state));
        if (strcmp(state, prev) != 0) {
            fprintf(stderr, "%s: %s\n", what, state);
            snprintf(prev, sizeof(prev), "%s", state);
        }
        if (end) {
            *last = doc;
            if (!ok) {
                const char *e = jstr(doc, "error");
                if (!e[0])
                    e = jstr(doc, "restore.error");
                if (!e[0])
                    e = jstr(doc, "upgrade.error");
                ctl_err("%s failed%s%s", what, e[0] ? ": " : "", e);
                return CTL_FAILED;
            }
            return CTL_OK;
        }
        json_decref(doc);
        if (timeout_s && time(NULL) - start > timeout_s) {
            ctl_err("%s: still %s after %d s; stopped waiting", what, state, timeout_s);
            return CTL_FAILED;
        }
        sleep(1);
    }
}

static void nodes_table(json_t *j, struct table *t)
{
    static const char *const heads[] = { "NODE", "STATE", "MESSAGE" };
    size_t i;
    json_t *n;
    table_init(t, 3, heads);
    json_array_foreach(j, i, n) {
        const char *row[] = { jstr(n, "node"), jstr(n, "state"), jstr(n, "message") };
        table_add(t, row);
    }
}

void ctl_print_nodes(struct ctl *ctl, json_t *nodes, bool failed)
{
    if (!json_is_array(nodes) || json_array_size(nodes) == 0)
        return;
    if (!failed) {
        ctl_print(ctl, nodes, nodes_table);
        return;
    }
    struct table t;
    nodes_table(nodes, &t);
    table_print(&t, stderr);
    table_free(&t);
}
