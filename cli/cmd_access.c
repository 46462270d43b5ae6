/*
 * cmd_access: who may do what: member add|list|remove (a cluster's
 * owners, members and viewers) and user add|list|remove (admins only).
 */
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cmds.h"
#include "cli/ctl.h"

static int members_path(struct ctl *ctl, const char *cluster, const char *user, char *out,
                        size_t cap)
{
    char id[64], seg[200], useg[400];
    if (ctl_cluster_id(ctl, cluster, id) != CTL_OK)
        return CTL_FAILED;
    ctl_seg(id, seg, sizeof(seg));
    ctl_seg(user ? user : "", useg, sizeof(useg));
    snprintf(out, cap, "/v3/clusters/%s/members%s%s", seg, user ? "/" : "", useg);
    return CTL_OK;
}

static void members_table(json_t *j, struct table *t)
{
    static const char *const heads[] = { "USER", "ROLE" };
    size_t i;
    json_t *m;
    table_init(t, 2, heads);
    if (json_is_object(j)) {
        const char *row[] = { jstr(j, "user"), jstr(j, "role") };
        table_add(t, row);
        return;
    }
    json_array_foreach(j, i, m) {
        const char *row[] = { jstr(m, "user"), jstr(m, "role") };
        table_add(t, row);
    }
}

int cmd_member_add(struct ctl *ctl, const struct args *a)
{
    char path[1024];
    const char *role = args_get(a, "role") ? args_get(a, "role") : "member";
    if (strcmp(role, "owner") && strcmp(role, "member") && strcmp(role, "viewer")) {
        ctl_err("--role must be owner, member or viewer");
        return CTL_USAGE;
    }
    json_t *out, *body = json_pack("{s:s,s:s}", "user", a->pos[1], "role", role);
    int rc = members_path(ctl, a->pos[0], NULL, path, sizeof(path));
    if (rc == CTL_OK)
        rc = ctl_call(ctl, "POST", path, body, &out, NULL);
    json_decref(body);
    if (rc != CTL_OK)
        return rc;
    rc = ctl_print(ctl, out, members_table);
    json_decref(out);
    return rc;
}

int cmd_member_list(struct ctl *ctl, const struct args *a)
{
    char path[1024];
    json_t *all;
    if (members_path(ctl, a->pos[0], NULL, path, sizeof(path)) != CTL_OK ||
        ctl_list(ctl, path, &all) != CTL_OK)
        return CTL_FAILED;
    int rc = ctl_print(ctl, all, members_table);
    json_decref(all);
    return rc;
}

int cmd_member_remove(struct ctl *ctl, const struct args *a)
{
    char path[1024];
    if (members_path(ctl, a->pos[0], a->pos[1], path, sizeof(path)) != CTL_OK ||
        ctl_call(ctl, "DELETE", path, NULL, NULL, NULL) != CTL_OK)
        return CTL_FAILED;
    fprintf(stderr, "%s is no longer a member of %s\n", a->pos[1], a->pos[0]);
    return CTL_OK;
}

static void users_table(json_t *j, struct table *t)
{
    static const char *const heads[] = { "USERNAME", "ADMIN", "AGE" };
    size_t i;
    json_t *u, *one = NULL;
    table_init(t, 3, heads);
    if (json_is_object(j)) {
        one = json_array();
        json_array_append(one, j);
        j = one;
    }
    json_array_foreach(j, i, u) {
        char age[24];
        ctl_age(jstr(u, "createdAt"), age, sizeof(age));
        const char *row[] = { jstr(u, "username"),
                              json_is_true(json_object_get(u, "admin")) ? "yes" : "no", age };
        table_add(t, row);
    }
    json_decref(one);
}

/* The new user's password: from stdin with --password-stdin, else asked
 * twice on the terminal. */
static int new_password(const struct args *a, char *pw, size_t cap)
{
    if (args_has(a, "password-stdin")) {
        if (!fgets(pw, (int)cap, stdin) || !(pw[strcspn(pw, "\r\n")] = '\0', pw[0])) {
            ctl_err("--password-stdin: no password on standard input");
            return CTL_FAILED;
        }
        return CTL_OK;
    }
    if (!isatty(STDIN_FILENO)) {
        ctl_err("standard input is not a terminal: pass the password with --password-stdin");
        return CTL_USAGE;
    }
    char *p = getpass("New user's password: ");
    if (!p || !p[0]) {
        ctl_err("no password given");
        return CTL_FAILED;
    }
    snprintf(pw, cap, "%s", p);
    OPENSSL_cleanse(p, strlen(p));
    return CTL_OK;
}

int cmd_user_add(struct ctl *ctl, const struct args *a)
{
    char pw[1024];
    json_t *out;
    int rc = new_password(a, pw, sizeof(pw));
    if (rc != CTL_OK)
        return rc;
    json_t *body = json_pack("{s:s,s:s,s:b}", "username", a->pos[0], "password", pw,
                             "admin", args_has(a, "admin"));
    OPENSSL_cleanse(pw, sizeof(pw));
    rc = ctl_call(ctl, "POST", "/v3/users", body, &out, NULL);
    json_decref(body);
    if (rc != CTL_OK)
        return rc;
    rc = ctl_print(ctl, out, users_table);
    json_decref(out);
    return rc;
}

int cmd_user_list(struct ctl *ctl, const struct args *a)
{
    json_t *all;
    (void)a;
    if (ctl_list(ctl, "/v3/users", &all) != CTL_OK)
        return CTL_FAILED;
    int rc = ctl_print(ctl, all, users_table);
    json_decref(all);
    return rc;
}

int cmd_user_remove(struct ctl *ctl, const struct args *a)
{
    char path[512], seg[400];
    ctl_seg(a->pos[0], seg, sizeof(seg));
    snprintf(path, sizeof(path), "/v3/users/%s", seg);
    if (ctl_call(ctl, "DELETE", path, NULL, NULL, NULL) != CTL_OK)
        return CTL_FAILED;
    fprintf(stderr, "user %s removed\n", a->pos[0]);
    return CTL_OK;
}
