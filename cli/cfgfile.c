/*
 * cfgfile: read and write droverctl's config file. See cfgfile.h.
 */
#include "cli/cfgfile.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/config.h"
#include "common/yamlout.h"

#define CFGFILE_MAX (256 * 1024)

int cfgfile_path(char *buf, size_t cap, char *err, size_t errlen)
{
    const char *env = getenv("DROVER_CONFIG"), *home = getenv("HOME");
    int n;
    if (env && env[0])
        n = snprintf(buf, cap, "%s", env);
    else if (home && home[0])
        n = snprintf(buf, cap, "%s/.config/drover/config.yaml", home);
    else {
        snprintf(err, errlen, "neither DROVER_CONFIG nor HOME is set");
        return -1;
    }
    if (n < 0 || (size_t)n >= cap) {
        snprintf(err, errlen, "config path too long");
        return -1;
    }
    return 0;
}

static int on_kv(void *ud, const char *key, const char *value, int line, char *err,
                 size_t errlen)
{
    struct ctl_config *c = ud;
    char **slot = NULL;
    (void)line;
    if (strcmp(key, "server") == 0)
        slot = &c->server;
    else if (strcmp(key, "username") == 0)
        slot = &c->username;
    else if (strcmp(key, "token") == 0)
        slot = &c->token;
    else if (strcmp(key, "ca-checksum") == 0)
        slot = &c->ca_checksum;
    else if (strcmp(key, "ca-cert") == 0)
        slot = &c->ca_cert;
    else if (strcmp(key, "insecure") == 0) {
        if (value && cfg_parse_bool(value, &c->insecure) < 0) {
            snprintf(err, errlen, "insecure: not a boolean");
            return -1;
        }
        return 0;
    } else
        return 0;   /* apiVersion, kind, and keys of newer versions */
    free(*slot);
    *slot = value ? strdup(value) : NULL;
    if (value && !*slot) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    return 0;
}

static char *read_file(int fd, size_t *len, char *err, size_t errlen)
{
    char *buf = malloc(CFGFILE_MAX + 1);
    size_t n = 0;
    if (!buf) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    for (;;) {
        if (n == CFGFILE_MAX) {
            snprintf(err, errlen, "larger than %d bytes", CFGFILE_MAX);
            free(buf);
            return NULL;
        }
        ssize_t r = read(fd, buf + n, CFGFILE_MAX - n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            snprintf(err, errlen, "%s", strerror(errno));
            free(buf);
            return NULL;
        }
        if (r == 0)
            break;
        n += (size_t)r;
    }
    buf[n] = '\0';
    *len = n;
    return buf;
}

int cfgfile_load(const char *path, struct ctl_config *c, char *err, size_t errlen)
{
    char why[200];
    struct stat st;
    memset(c, 0, sizeof(*c));
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0 && errno == ENOENT)
        return 1;
    if (fd < 0 || fstat(fd, &st) < 0) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        if (fd >= 0)
            close(fd);
        return -1;
    }
    /* It holds a bearer token: refuse a file others could have read, as
     * ssh does with keys, rather than use a token that may be leaked. */
    if (st.st_mode & 077) {
        snprintf(err, errlen, "%s: permissions %03o are too open (it holds a token); "
                 "run chmod 600 %s", path, (unsigned)(st.st_mode & 0777), path);
        close(fd);
        return -1;
    }
    size_t len = 0;
    char *buf = read_file(fd, &len, why, sizeof(why));
    close(fd);
    if (!buf) {
        snprintf(err, errlen, "%s: %s", path, why);
        return -1;
    }
    int rc = cfg_parse_yaml(buf, len, on_kv, c, why, sizeof(why));
    free(buf);
    if (rc < 0) {
        snprintf(err, errlen, "%s:%s", path, why);
        cfgfile_free(c);
        return -1;
    }
    return 0;
}

/* mkdir -p for the file's directory, new directories 0700. */
static int make_parent(const char *path, char *err, size_t errlen)
{
    char dir[4096];
    snprintf(dir, sizeof(dir), "%s", path);
    char *slash = strrchr(dir, '/');
    if (!slash || slash == dir)
        return 0;
    *slash = '\0';
    for (char *p = dir + 1; ; p++) {
        if (*p == '/' || *p == '\0') {
            char keep = *p;
            *p = '\0';
            if (mkdir(dir, 0700) < 0 && errno != EEXIST) {
                snprintf(err, errlen, "cannot create %s: %s", dir, strerror(errno));
                return -1;
            }
            *p = keep;
            if (keep == '\0')
                break;
        }
    }
    return 0;
}

static char *render(const struct ctl_config *c, size_t *len, char *err, size_t errlen)
{
    struct yw w;
    char *out = NULL;
    yw_init(&w, CFGFILE_MAX);
    yw_doc_begin(&w, "drover.io/v1", "Config");
    yw_kv(&w, "server", c->server ? c->server : "");
    yw_kv(&w, "username", c->username ? c->username : "");
    yw_kv(&w, "token", c->token ? c->token : "");
    yw_kv_bool(&w, "insecure", c->insecure);
    if (c->ca_checksum)
        yw_kv(&w, "ca-checksum", c->ca_checksum);
    if (c->ca_cert)
        yw_kv(&w, "ca-cert", c->ca_cert);
    yw_doc_end(&w);
    if (yw_finish(&w, &out, len, err, errlen) < 0)
        out = NULL;
    yw_free(&w);
    return out;
}

static int write_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

int cfgfile_save(const char *path, const struct ctl_config *c, char *err, size_t errlen)
{
    char tmp[4200], why[200];
    size_t len;
    char *text = render(c, &len, why, sizeof(why));
    if (!text) {
        snprintf(err, errlen, "cannot write the config: %s", why);
        return -1;
    }
    int rc = -1;
    snprintf(tmp, sizeof(tmp), "%s.tmp.%d", path, (int)getpid());
    if (make_parent(path, err, errlen) < 0)
        goto out;
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0) {
        snprintf(err, errlen, "cannot write %s: %s", tmp, strerror(errno));
        goto out;
    }
    /* 0600 whatever the umask, and fsync so a crash leaves the old file
     * or the whole new one. */
    if (fchmod(fd, 0600) < 0 || write_all(fd, text, len) < 0 || fsync(fd) < 0) {
        snprintf(err, errlen, "cannot write %s: %s", tmp, strerror(errno));
        close(fd);
        unlink(tmp);
        goto out;
    }
    close(fd);
    if (rename(tmp, path) < 0) {
        snprintf(err, errlen, "cannot replace %s: %s", path, strerror(errno));
        unlink(tmp);
        goto out;
    }
    rc = 0;
out:
    free(text);
    return rc;
}

void cfgfile_free(struct ctl_config *c)
{
    if (!c)
        return;
    free(c->server);
    free(c->username);
    if (c->token)
        OPENSSL_cleanse(c->token, strlen(c->token));
    free(c->token);
    free(c->ca_checksum);
    free(c->ca_cert);
    memset(c, 0, sizeof(*c));
}
