/*
 * cmd_auth: login, logout and whoami. Login pins the server's CA the way
 * the agents do (fetch /cacerts, compare its SHA-256 with the checksum
 * the operator gave, then trust only that CA), or trusts the system's CA
 * store, or nothing with --insecure (with a warning); then trades the
 * password for a token and stores both in the config file.
 */
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include "cli/cmds.h"
#include "cli/ctl.h"
#include "common/cacerts.h"
#include "common/tls.h"

#define PW_MAX 1024

/* Reads one line from f into buf (without the newline). 0 or -1. */
static int read_line(FILE *f, char *buf, size_t cap)
{
    if (!fgets(buf, (int)cap, f))
        return -1;
    buf[strcspn(buf, "\r\n")] = '\0';
    return 0;
}

/* Prompts on the terminal with echo off. */
static int prompt_password(char *buf, size_t cap)
{
    FILE *tty = fopen("/dev/tty", "r+e");
    if (!tty)
        return -1;
    struct termios old, quiet;
    int fd = fileno(tty);
    /* Echo off before the prompt, and without flushing: a password typed
     * (or pasted) as soon as the prompt shows must be neither echoed nor
     * dropped. */
    bool have = tcgetattr(fd, &old) == 0;
    if (have) {
        quiet = old;
        quiet.c_lflag &= ~(tcflag_t)ECHO;
        quiet.c_lflag |= ECHONL;
        tcsetattr(fd, TCSANOW, &quiet);
    }
    fputs("Password: ", tty);
    fflush(tty);
    int rc = read_line(tty, buf, cap);
    if (have)
        tcsetattr(fd, TCSAFLUSH, &old);
    fclose(tty);
    return rc;
}

static int get_password(const struct args *a, char *pw, size_t cap)
{
    if (args_has(a, "password-stdin")) {
        if (read_line(stdin, pw, cap) < 0 || !pw[0]) {
            ctl_err("--password-stdin: no password on standard input");
            return CTL_FAILED;
        }
        return CTL_OK;
    }
    if (!isatty(STDIN_FILENO)) {
        ctl_err("standard input is not a terminal: pass the password with --password-stdin");
        return CTL_USAGE;
    }
    if (prompt_password(pw, cap) < 0 || !pw[0]) {
        ctl_err("no password given");
        return CTL_FAILED;
    }
    return CTL_OK;
}

/* Fetches and checks the CA against sum; the PEM into *pem. */
static int pin_ca(const char *server, const char *sum, char **pem)
{
    struct url u;
    const char *why;
    char err[512], got[65];
    size_t len;
    if (url_parse(server, &u, &why) < 0 || strcmp(u.scheme, "https") != 0) {
        ctl_err("bad server URL %s: %s", server, url_parse(server, &u, &why) < 0 ? why
                : "drover serves https only");
        return CTL_USAGE;
    }
    if (cacerts_fetch(&u, 30000, pem, &len, err, sizeof(err)) < 0) {
        ctl_err("%s", err);
        return CTL_FAILED;
    }
    tls_sha256_hex(*pem, len, got);
    if (strcasecmp(got, sum) != 0) {
        ctl_err("the server's CA checksum is %s, not %s: refusing to trust it", got, sum);
        free(*pem);
        *pem = NULL;
        return CTL_FAILED;
    }
    return CTL_OK;
}

static int check_trust_flags(const struct args *a)
{
    const char *sum = args_get(a, "ca-checksum");
    if (sum && args_has(a, "insecure")) {
        ctl_err("--ca-checksum and --insecure exclude each other");
        return CTL_USAGE;
    }
    if (sum && (strlen(sum) != 64 || strspn(sum, "0123456789abcdefABCDEF") != 64)) {
        ctl_err("--ca-checksum must be 64 hex digits (the SHA-256 of the server's CA)");
        return CTL_USAGE;
    }
    if (!args_get(a, "username") || !args_get(a, "username")[0]) {
        ctl_err("--username is required");
        return CTL_USAGE;
    }
    return CTL_OK;
}

/* POST /v3/tokens; the token into ctl->cfg.token. */
static int get_token(struct ctl *ctl, const char *user, const char *pw)
{
    char err[512];
    struct http_answer ans;
    json_t *req = json_pack("{s:s,s:s}", "username", user, "password", pw);
    char *body = req ? json_dumps(req, JSON_COMPACT) : NULL;
    json_decref(req);
    if (!body) {
        ctl_err("out of memory");
        return CTL_FAILED;
    }
    int rc = http_request(&ctl->http, "POST", "/v3/tokens", NULL, "application/json", body,
                          strlen(body), -1, &ans, err, sizeof(err));
    OPENSSL_cleanse(body, strlen(body));
    free(body);
    if (rc < 0) {
        ctl_err("%s", err);
        return CTL_FAILED;
    }
    rc = CTL_FAILED;
    json_t *j = ans.status == 201 ? json_loadb(ans.body, ans.len, 0, NULL) : NULL;
    const char *tok = json_string_value(json_object_get(j, "token"));
    if (ans.status != 201)
        ctl_server_error(&ans);
    else if (!tok)
        ctl_err("the server's answer holds no token");
    else if ((ctl->cfg.token = strdup(tok)))
        rc = CTL_OK;
    json_decref(j);
    http_answer_free(&ans);
    return rc;
}

int cmd_login(struct ctl *ctl, const struct args *a)
{
    char pw[PW_MAX], err[512];
    const char *server = a->pos[0], *sum = args_get(a, "ca-checksum");
    bool insecure = args_has(a, "insecure");
    int rc = check_trust_flags(a);
    if (rc != CTL_OK)
        return rc;
    struct ctl_config *c = &ctl->cfg;
    cfgfile_free(c);
    size_t sl = strlen(server);
    while (sl > 0 && server[sl - 1] == '/')
        sl--;
    c->server = strndup(server, sl);
    c->username = strdup(args_get(a, "username"));
    c->insecure = insecure;
    if (insecure)
        fprintf(stderr, "warning: --insecure: the server's certificate is not checked; "
                        "anyone on the path can read your password and token\n");
    if (sum && (rc = pin_ca(c->server, sum, &c->ca_cert)) != CTL_OK)
        return rc;
    if (sum)
        c->ca_checksum = strdup(sum);
    if ((rc = get_password(a, pw, sizeof(pw))) != CTL_OK)
        return rc;
    if (http_client_init(&ctl->http, c->server, c->ca_cert, insecure, err, sizeof(err)) < 0) {
        OPENSSL_cleanse(pw, sizeof(pw));
        ctl_err("%s", err);
        return CTL_USAGE;
    }
    ctl->have_client = true;
    rc = get_token(ctl, c->username, pw);
    OPENSSL_cleanse(pw, sizeof(pw));
    if (rc != CTL_OK)
        return rc;
    if (cfgfile_save(ctl->config_path, c, err, sizeof(err)) < 0) {
        ctl_err("%s", err);
        return CTL_FAILED;
    }
    fprintf(stderr, "Logged in to %s as %s (config: %s)\n", c->server, c->username,
            ctl->config_path);
    return CTL_OK;
}

int cmd_logout(struct ctl *ctl, const struct args *a)
{
    char err[512];
    (void)a;
    if (ctl_connect(ctl) != CTL_OK)
        return CTL_FAILED;
    struct http_answer ans;
    int rc = CTL_FAILED;
    if (http_request(&ctl->http, "DELETE", "/v3/tokens/current", ctl->cfg.token, NULL, NULL,
                     0, -1, &ans, err, sizeof(err)) < 0) {
        ctl_err("%s", err);
    } else if (ans.status / 100 == 2 || ans.status == 401) {
        rc = CTL_OK;    /* 401: the session had ended already */
    } else {
        ctl_server_error(&ans);
    }
    http_answer_free(&ans);
    /* Forget the token locally either way: a token the server no longer
     * knows is of no use, and one it still knows should not linger here. */
    OPENSSL_cleanse(ctl->cfg.token, strlen(ctl->cfg.token));
    free(ctl->cfg.token);
    ctl->cfg.token = NULL;
    if (cfgfile_save(ctl->config_path, &ctl->cfg, err, sizeof(err)) < 0) {
        ctl_err("%s", err);
        return CTL_FAILED;
    }
    if (rc == CTL_OK)
        fprintf(stderr, "Logged out of %s\n", ctl->cfg.server);
    return rc;
}

static void whoami_table(json_t *j, struct table *t)
{
    static const char *const heads[] = { "USERNAME", "ADMIN", "SERVER" };
    table_init(t, 3, heads);
    const char *row[] = { jstr(j, "username"),
                          json_is_true(json_object_get(j, "admin")) ? "yes" : "no",
                          jstr(j, "server") };
    table_add(t, row);
}

int cmd_whoami(struct ctl *ctl, const struct args *a)
{
    char path[512], seg[400];
    json_t *me;
    (void)a;
    if (ctl_connect(ctl) != CTL_OK)
        return CTL_FAILED;
    ctl_seg(ctl->cfg.username ? ctl->cfg.username : "", seg, sizeof(seg));
    snprintf(path, sizeof(path), "/v3/users/%s", seg);
    if (ctl_call(ctl, "GET", path, NULL, &me, NULL) != CTL_OK)
        return CTL_FAILED;
    json_object_set_new(me, "server", json_string(ctl->cfg.server));
    int rc = ctl_print(ctl, me, whoami_table);
    json_decref(me);
    return rc;
}
