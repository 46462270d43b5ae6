/*
 * standin: the stand-in apiserver for integration tests. See standin.h.
 */
#include "tests/support/standin.h"

#include <check.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

static bool port_file_ready(void *ud)
{
    struct standin *s = ud;
    char path[450];
    snprintf(path, sizeof(path), "%s.port", s->dir);
    FILE *f = fopen(path, "r");
    if (!f)
        return false;
    int ok = fscanf(f, "%d", &s->port) == 1;
    fclose(f);
    return ok && s->port > 0;
}

void standin_start(struct standin *s, struct dtest *d, const char *sa_token)
{
    standin_start_with(s, d, sa_token, NULL);
}

void standin_start_with(struct standin *s, struct dtest *d, const char *sa_token,
                        const char *const extra[])
{
    char portfile[450], log[400], tok[200];
    memset(s, 0, sizeof(*s));
    snprintf(s->dir, sizeof(s->dir), "%s/standin", d->dir);
    snprintf(s->audit, sizeof(s->audit), "%s/audit.jsonl", d->dir);
    snprintf(s->sa_token, sizeof(s->sa_token), "%s", sa_token);
    snprintf(portfile, sizeof(portfile), "%s.port", s->dir);
    snprintf(log, sizeof(log), "%s/standin.log", d->dir);
    snprintf(tok, sizeof(tok), "%s=%s", STANDIN_SA_USER, sa_token);
    const char *argv[40] = { tool_path("kube-standin"), "--listen", "127.0.0.1:0",
                             "--port-file", portfile, "--data-dir", s->dir, "--token", tok,
                             "--admin", STANDIN_SA_USER, "--audit", s->audit };
    size_t n = 13;
    for (size_t i = 0; extra && extra[i] && n < 39; i++)
        argv[n++] = extra[i];
    argv[n] = NULL;
    proc_spawn(&s->proc, argv, NULL, log);
    ck_assert_msg(wait_until(port_file_ready, s, 15000), "stand-in did not start");
}

void standin_start_agent(struct standin *s, struct dtest *d)
{
    char tokfile[450], e1[500], e2[500], e3[500];
    snprintf(tokfile, sizeof(tokfile), "%s/sa.token", d->dir);
    FILE *f = fopen(tokfile, "w");
    ck_assert_ptr_nonnull(f);
    fprintf(f, "%s\n", s->sa_token);
    fclose(f);
    snprintf(e1, sizeof(e1), "DROVER_KUBE_API=https://127.0.0.1:%d", s->port);
    snprintf(e2, sizeof(e2), "DROVER_KUBE_TOKEN_FILE=%s", tokfile);
    snprintf(e3, sizeof(e3), "DROVER_KUBE_CA_FILE=%s/ca.crt", s->dir);
    const char *env[] = { e1, e2, e3, NULL };
    dtest_start_agent(d, env);
    ck_assert_msg(dtest_wait_metric(d, "drover_tunnels{kind=\"cluster\"}", 1, 15000),
                  "agent did not connect (logs in %s)", d->dir);
}

void standin_stop(struct standin *s)
{
    proc_kill(&s->proc);
}

void standin_up(struct standin *s, struct dtest *d, const char *sa_token)
{
    memset(d, 0, sizeof(*d));
    dtest_start_server(d);
    standin_start(s, d, sa_token);
    standin_start_agent(s, d);
}

void standin_down(struct standin *s, struct dtest *d)
{
    standin_stop(s);
    dtest_down(d);
    proc_cleanup();
}

void standin_kubeconfig(const struct standin *s, const char *path)
{
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fprintf(f, "apiVersion: v1\nkind: Config\nclusters:\n- name: standin\n  cluster:\n"
            "    server: https://127.0.0.1:%d\n    certificate-authority: %s/ca.crt\n"
            "users:\n- name: sa\n  user:\n    token: %s\ncontexts:\n- name: sa\n  context:\n"
            "    cluster: standin\n    user: sa\ncurrent-context: sa\n",
            s->port, s->dir, s->sa_token);
    fclose(f);
}

long standin_audit_mark(const struct standin *s)
{
    struct stat st;
    return stat(s->audit, &st) == 0 ? (long)st.st_size : 0;
}

int standin_audit_count(const struct standin *s, long mark, const char *const needles[])
{
    static char line[16384];
    FILE *f = fopen(s->audit, "r");
    int n = 0;
    if (!f)
        return 0;
    fseek(f, mark, SEEK_SET);
    while (fgets(line, sizeof(line), f)) {
        bool all = true;
        for (size_t i = 0; needles[i] && all; i++)
            all = strstr(line, needles[i]) != NULL;
        n += all;
    }
    fclose(f);
    return n;
}
