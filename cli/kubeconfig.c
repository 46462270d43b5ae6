/*
 * kubeconfig: merge a server-issued kubeconfig into the user's. See
 * kubeconfig.h.
 */
#include "cli/kubeconfig.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli/yamljson.h"

static const char *const lists[] = { "clusters", "users", "contexts" };

/* Checks that j's list key (if present) is an array of named objects. */
static int check_list(const json_t *j, const char *key, const char *what, char *err,
                      size_t errlen)
{
    json_t *l = json_object_get(j, key), *v;
    size_t i;
    if (!l || json_is_null(l))
        return 0;
    if (!json_is_array(l)) {
        snprintf(err, errlen, "%s: %s is not a list", what, key);
        return -1;
    }
    json_array_foreach(l, i, v) {
        if (!json_is_object(v) || !json_is_string(json_object_get(v, "name"))) {
            snprintf(err, errlen, "%s: %s[%zu] has no name", what, key, i);
            return -1;
        }
    }
    return 0;
}

static int check(const json_t *j, const char *what, char *err, size_t errlen)
{
    if (!json_is_object(j)) {
        snprintf(err, errlen, "%s is not a kubeconfig (not a mapping)", what);
        return -1;
    }
    for (size_t i = 0; i < 3; i++)
        if (check_list(j, lists[i], what, err, errlen) < 0)
            return -1;
    return 0;
}

static bool named_in(const json_t *list, const char *name)
{
    size_t i;
    json_t *v;
    json_array_foreach(list, i, v)
        if (strcmp(json_string_value(json_object_get(v, "name")), name) == 0)
            return true;
    return false;
}

/* out[key] = base's entries not named in add, then add's. */
static int merge_list(json_t *out, const json_t *base, const json_t *add, const char *key)
{
    json_t *bl = json_object_get(base, key), *al = json_object_get(add, key), *v;
    json_t *l = json_array();
    size_t i;
    if (!l)
        return -1;
    if (json_is_array(bl))
        json_array_foreach(bl, i, v)
            if (!json_is_array(al) ||
                !named_in(al, json_string_value(json_object_get(v, "name"))))
                json_array_append(l, v);
    if (json_is_array(al))
        json_array_foreach(al, i, v)
            json_array_append_new(l, json_deep_copy(v));
    return json_object_set_new(out, key, l);
}

int kc_merge(json_t **base, const json_t *add, char *err, size_t errlen)
{
    json_t *b = *base && !json_is_null(*base) ? *base : NULL;
    if ((b && check(b, "the existing kubeconfig", err, errlen) < 0) ||
        check(add, "the server's kubeconfig", err, errlen) < 0)
        return -1;
    /* A new file is the server's kubeconfig as it came (preferences too). */
    json_t *out = json_deep_copy(b ? b : add);
    if (!out)
        goto oom;
    for (size_t i = 0; i < 3; i++)
        if (merge_list(out, b, add, lists[i]) < 0)
            goto oom;
    json_t *cur = json_object_get(add, "current-context");
    if (json_is_string(cur) && json_object_set(out, "current-context", cur) < 0)
        goto oom;
    json_decref(*base);
    *base = out;
    return 0;
oom:
    json_decref(out);
    snprintf(err, errlen, "out of memory");
    return -1;
}

int kc_path(char *buf, size_t cap, char *err, size_t errlen)
{
    const char *kc = getenv("KUBECONFIG"), *home = getenv("HOME");
    int n;
    if (kc && kc[0])
        n = snprintf(buf, cap, "%.*s", (int)strcspn(kc, ":"), kc);
    else if (home && home[0])
        n = snprintf(buf, cap, "%s/.kube/config", home);
    else {
        snprintf(err, errlen, "neither KUBECONFIG nor HOME is set");
        return -1;
    }
    if (n < 0 || (size_t)n >= cap) {
        snprintf(err, errlen, "kubeconfig path too long");
        return -1;
    }
    return 0;
}

/* The file's content, or an empty string for a missing file. NULL with err. */
static char *slurp(const char *path, size_t *len, char *err, size_t errlen)
{
    FILE *f = fopen(path, "re");
    if (!f && errno == ENOENT) {
        *len = 0;
        return strdup("");
    }
    char *buf = f ? malloc(YJ_MAX_INPUT + 1) : NULL;
    size_t n = buf ? fread(buf, 1, YJ_MAX_INPUT + 1, f) : 0;
    if (!buf || ferror(f) || n > YJ_MAX_INPUT) {
        snprintf(err, errlen, "cannot read %s: %s", path,
                 !f ? strerror(errno) : n > YJ_MAX_INPUT ? "too large" : "read error");
        free(buf);
        if (f)
            fclose(f);
        return NULL;
    }
    fclose(f);
    buf[n] = '\0';
    *len = n;
    return buf;
}

static int write_file(const char *path, const char *text, size_t len, char *err,
                      size_t errlen)
{
    char tmp[4200], dir[4096];
    snprintf(dir, sizeof(dir), "%s", path);
    char *slash = strrchr(dir, '/');
    if (slash && slash != dir) {
        *slash = '\0';
        if (mkdir(dir, 0700) < 0 && errno != EEXIST) {
            snprintf(err, errlen, "cannot create %s: %s", dir, strerror(errno));
            return -1;
        }
    }
    snprintf(tmp, sizeof(tmp), "%s.drover.%d", path, (int)getpid());
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0) {
        snprintf(err, errlen, "cannot write %s: %s", tmp, strerror(errno));
        return -1;
    }
    ssize_t w = write(fd, text, len);
    if (w < 0 || (size_t)w != len || fsync(fd) < 0 || close(fd) < 0) {
        snprintf(err, errlen, "cannot write %s: %s", tmp, strerror(errno));
        unlink(tmp);
        return -1;
    }
    if (rename(tmp, path) < 0) {
        snprintf(err, errlen, "cannot replace %s: %s", path, strerror(errno));
        unlink(tmp);
        return -1;
    }
    return 0;
}

int kc_merge_file(const char *path, const char *add_yaml, size_t add_len, char *ctx,
                  size_t ctxcap, char *err, size_t errlen)
{
    char why[256];
    size_t len;
    int rc = -1;
    json_t *base = NULL, *add = NULL;
    char *out = NULL, *text = slurp(path, &len, err, errlen);
    if (!text)
        return -1;
    if (!(base = yj_load(text, len, why, sizeof(why)))) {
        snprintf(err, errlen, "%s: %s", path, why);
        goto out;
    }
    if (!(add = yj_load(add_yaml, add_len, why, sizeof(why)))) {
        snprintf(err, errlen, "the server's kubeconfig: %s", why);
        goto out;
    }
    if (kc_merge(&base, add, err, errlen) < 0)
        goto out;
    if (!(out = yj_dump(base, &len))) {
        snprintf(err, errlen, "cannot write the merged kubeconfig");
        goto out;
    }
    if (write_file(path, out, len, err, errlen) < 0)
        goto out;
    const char *cur = json_string_value(json_object_get(base, "current-context"));
    snprintf(ctx, ctxcap, "%s", cur ? cur : "");
    rc = 0;
out:
    free(text);
    free(out);
    json_decref(base);
    json_decref(add);
    return rc;
}
