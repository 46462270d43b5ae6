/*
 * deploy/ against the build: no container engine or cluster runs here, so
 * what deploy/ says is checked against what the build makes.
 *
 * - Dockerfiles: every binary copied exists in bin/ and is built by the
 *   build stage; the runtime stage installs exactly the library packages
 *   the copied binaries link (NEEDED entries, resolved with dpkg), on
 *   debian:12-slim, as a non-root user.
 * - Every DROVER_* variable set in the systemd units, their environment
 *   files and the Kubernetes manifests is a setting of the program it is
 *   given to (per its --help); units pass systemd-analyze verify.
 * - The agents' pieces in deploy/kubernetes/agent, rendered with kubectl
 *   kustomize, equal the server's import manifest object for object.
 * - Both server overlays render, with the replicas, datastore, probes and
 *   objects the issue asks for.
 * - make install DESTDIR=... lays out binaries, units, man pages and the
 *   bash completion.
 */
#include <check.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli/yamljson.h"
#include "tests/support/apitest.h"

#define BIG (1024 * 1024)

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "r");
    ck_assert_msg(f != NULL, "cannot open %s", path);
    char *buf = malloc(BIG + 1);
    size_t n = fread(buf, 1, BIG, f);
    buf[n] = '\0';
    fclose(f);
    return buf;
}

static char *run(const char *cmd, int *code)
{
    char *out = malloc(BIG);
    *code = run_capture(cmd, out, BIG);
    return out;
}

static bool word_in(const char *list, const char *word)
{
    size_t n = strlen(word);
    for (const char *p = strstr(list, word); p; p = strstr(p + 1, word))
        if ((p == list || strchr(" \t\\\n", p[-1])) && strchr(" \t\\\n", p[n]))
            return true;
    return false;
}

/* ---- Dockerfiles ---- */

/* The package owning a shared library name, via dpkg. */
static void lib_package(const char *lib, char *pkg, size_t cap)
{
    char cmd[300], out[512];
    snprintf(cmd, sizeof(cmd), "dpkg -S '*/%s' 2>/dev/null | head -n1 | cut -d: -f1", lib);
    ck_assert_int_eq(run_capture(cmd, out, sizeof(out)), 0);
    out[strcspn(out, "\n")] = '\0';
    ck_assert_msg(out[0], "no package owns %s", lib);
    snprintf(pkg, cap, "%.*s", (int)(cap - 1), out);
}

/* Checks one Dockerfile: binaries, packages, base, user. */
static void check_dockerfile(const char *path)
{
    char *df = slurp(path), needed_pkgs[2048] = " ";
    const char *final = strstr(df, "\nFROM debian:12-slim\n");
    ck_assert_msg(final, "%s: no final stage FROM debian:12-slim", path);
    ck_assert_msg(strstr(df, "FROM debian:12-slim AS build"), "%s: build stage", path);
    const char *build_make = strstr(df, "RUN make ");
    ck_assert_ptr_nonnull(build_make);
    const char *copy = strstr(final, "COPY --from=build ");
    ck_assert_msg(copy, "%s: no COPY from the build stage", path);
    char line[512], *save1;
    snprintf(line, sizeof(line), "%.*s", (int)strcspn(copy, "\n"), copy);
    int nbins = 0;
    for (char *t = strtok_r(line + 18, " ", &save1); t; t = strtok_r(NULL, " ", &save1)) {
        if (strncmp(t, "/src/bin/", 9) != 0)
            continue;
        const char *b = t + 9;
        char want[128], cmd[600], *objs;
        int code;
        ck_assert_msg(access(bin_path(b), X_OK) == 0, "%s copies %s, not built", path, b);
        snprintf(want, sizeof(want), "bin/%s", b);
        ck_assert_msg(strstr(build_make, want), "%s: the build stage does not make %s", path,
                      want);
        snprintf(want, sizeof(want), "/usr/local/bin/%s", b);
        nbins++;
        snprintf(cmd, sizeof(cmd), "objdump -p %s | awk '/NEEDED/{print $2}'", bin_path(b));
        objs = run(cmd, &code);
        ck_assert_int_eq(code, 0);
        /* A make SAN=... binary links every -l given (no --as-needed
         * effect) and the sanitizer runtimes; images are never built so,
         * so for it only the other direction (nothing installed that is
         * not linked) is checked. */
        bool san = strstr(objs, "libasan") != NULL;
        char *save2;
        for (char *l = strtok_r(objs, "\n", &save2); l; l = strtok_r(NULL, "\n", &save2)) {
            char pkg[128];
            lib_package(l, pkg, sizeof(pkg));
            if (strcmp(pkg, "libc6") == 0)  /* in the base image */
                continue;
            ck_assert_msg(san || word_in(final, pkg), "%s: %s needs %s (%s), not installed",
                          path, b, l, pkg);
            if (!word_in(needed_pkgs, pkg))
                snprintf(needed_pkgs + strlen(needed_pkgs),
                         sizeof(needed_pkgs) - strlen(needed_pkgs), "%s ", pkg);
        }
        free(objs);
    }
    ck_assert_int_gt(nbins, 0);
    /* Nothing but the libraries they link, CA certificates, and etcdctl
     * for the node agent's snapshots. */
    const char *inst = strstr(final, "apt-get install");
    ck_assert_ptr_nonnull(inst);
    char pk[1024];
    snprintf(pk, sizeof(pk), "%.*s", (int)(strstr(inst, "&& rm") - inst), inst);
    for (char *t = strtok(pk, " \\\n"); t; t = strtok(NULL, " \\\n"))
        if (t[0] != '-' && strcmp(t, "apt-get") && strcmp(t, "install") &&
            strcmp(t, "ca-certificates") && strcmp(t, "etcd-client"))
            ck_assert_msg(word_in(needed_pkgs, t), "%s installs %s, which nothing links",
                          path, t);
    /* Non-root at run time. */
    const char *user = strstr(final, "\nUSER ");
    ck_assert_msg(user && strncmp(user + 6, "0", 1) != 0 && strncmp(user + 6, "root", 4) != 0,
                  "%s: runs as root", path);
    free(df);
}

START_TEST(dockerfiles_match_the_build)
{
    check_dockerfile("deploy/container/Dockerfile.server");
    check_dockerfile("deploy/container/Dockerfile.agent");
    /* The image the import manifest names is the one Dockerfile.agent builds. */
    char *df = slurp("deploy/container/Dockerfile.agent");
    ck_assert(strstr(df, "-t drover/agent:" DROVER_VERSION " ") != NULL);
    free(df);
    df = slurp("deploy/kubernetes/base/deployment.yaml");
    ck_assert(strstr(df, "image: drover/server:" DROVER_VERSION "\n") != NULL);
    free(df);
}
END_TEST

/* ---- settings ---- */

/* Every DROVER_X in text must appear as "env DROVER_X" in prog's --help. */
static void check_env(const char *file, const char *prog)
{
    char cmd[400], *help, *text = slurp(file);
    int code;
    snprintf(cmd, sizeof(cmd), "%s --help", bin_path(prog));
    help = run(cmd, &code);
    ck_assert_int_eq(code, 0);
    int n = 0;
    for (const char *p = strstr(text, "DROVER_"); p; p = strstr(p + 1, "DROVER_")) {
        char name[64], want[80];
        size_t l = strspn(p, "ABCDEFGHIJKLMNOPQRSTUVWXYZ_");
        snprintf(name, sizeof(name), "%.*s", (int)l, p);
        snprintf(want, sizeof(want), "env %s", name);
        const char *hit = strstr(help, want);
        ck_assert_msg((hit && !strchr("ABCDEFGHIJKLMNOPQRSTUVWXYZ_", hit[strlen(want)])),
                      "%s sets %s, which %s --help does not list", file, name, prog);
        n++;
    }
    ck_assert_msg(n > 0, "%s sets no settings", file);
    free(help);
    free(text);
}

START_TEST(settings_are_real)
{
    static const char *const pairs[][2] = {
        { "deploy/systemd/drover-server.env", "drover-server" },
        { "deploy/systemd/drover-cluster-agent.env", "drover-cluster-agent" },
        { "deploy/systemd/drover-node-agent.env", "drover-node-agent" },
        { "deploy/kubernetes/base/deployment.yaml", "drover-server" },
        { "deploy/kubernetes/overlays/postgres/deployment-patch.yaml", "drover-server" },
        { "deploy/kubernetes/overlays/sqlite/deployment-patch.yaml", "drover-server" },
        { "deploy/kubernetes/agent/cluster-agent.yaml", "drover-cluster-agent" },
        { "deploy/kubernetes/agent/node-agent.yaml", "drover-node-agent" },
        { "deploy/container/Dockerfile.server", "drover-server" },
    };
    for (size_t i = 0; i < sizeof(pairs) / sizeof(pairs[0]); i++)
        check_env(pairs[i][0], pairs[i][1]);
    /* Units: each runs a binary we build, reads its env file, and passes
     * systemd-analyze verify without a word. */
    char dir[256], cmd[1200];
    make_temp_dir(dir, sizeof(dir));
    static const char *const units[] = { "drover-server", "drover-cluster-agent",
                                         "drover-node-agent" };
    for (size_t i = 0; i < 3; i++) {
        char path[300], want[200];
        snprintf(path, sizeof(path), "deploy/systemd/%s.service", units[i]);
        char *u = slurp(path);
        snprintf(want, sizeof(want), "ExecStart=/usr/local/bin/%s\n", units[i]);
        ck_assert_msg(strstr(u, want), "%s: %s", path, want);
        snprintf(want, sizeof(want), "EnvironmentFile=/etc/drover/%s.env\n", units[i]);
        ck_assert_msg(strstr(u, want), "%s: %s", path, want);
        ck_assert(strstr(u, "NoNewPrivileges=yes") && strstr(u, "ProtectSystem=strict"));
        free(u);
        snprintf(cmd, sizeof(cmd), "sed 's|/usr/local/bin/|%s/|' %s > %s/%s.service",
                 getenv("DROVER_BIN_DIR"), path, dir, units[i]);
        ck_assert_int_eq(system(cmd), 0);
    }
    int code;
    snprintf(cmd, sizeof(cmd), "cd %s && systemd-analyze verify --man=no *.service 2>&1", dir);
    char *out = run(cmd, &code);
    ck_assert_msg(code == 0 && out[0] == '\0', "systemd-analyze verify: %s", out);
    free(out);
    remove_tree(dir);
}
END_TEST

/* ---- manifests ---- */

/* Splits a YAML stream into its documents, as a JSON array. */
static json_t *load_stream(const char *text)
{
    json_t *all = json_array();
    char *copy = strdup(text), *doc = copy, err[256];
    for (;;) {
        char *sep = strstr(doc, "\n---");
        if (sep && (sep[4] == '\n' || sep[4] == ' ' || sep[4] == '\0'))
            *sep = '\0';
        const char *body = strncmp(doc, "---", 3) == 0 ? doc + 3 : doc;
        json_t *j = yj_load(body, strlen(body), err, sizeof(err));
        ck_assert_msg(j != NULL, "%s\n%s", err, body);
        if (json_is_object(j))
            json_array_append_new(all, j);
        else
            json_decref(j);
        if (!sep)
            break;
        doc = sep + 1;
    }
    free(copy);
    return all;
}

static const char *obj_name(const json_t *o)
{
    const char *n = json_string_value(json_object_get(json_object_get(o, "metadata"), "name"));
    return n ? n : "";
}

static json_t *find_obj(json_t *objs, const char *kind, const char *name)
{
    size_t i;
    json_t *o;
    json_array_foreach(objs, i, o)
        if (strcmp(json_string_value(json_object_get(o, "kind")), kind) == 0 &&
            strcmp(obj_name(o), name) == 0)
            return o;
    return NULL;
}

/* s with every occurrence of from replaced by to (malloc'd; frees s). */
static char *subst(char *s, const char *from, const char *to)
{
    size_t fl = strlen(from), tl = strlen(to), n = 0;
    for (const char *p = strstr(s, from); p; p = strstr(p + fl, from))
        n++;
    char *out = malloc(strlen(s) + n * (tl + 1) + 1), *o = out;
    const char *p = s;
    for (const char *q = strstr(p, from); q; p = q + fl, q = strstr(p, from)) {
        memcpy(o, p, (size_t)(q - p));
        o += q - p;
        memcpy(o, to, tl);
        o += tl;
    }
    memcpy(o, p, strlen(p) + 1);
    free(s);
    return out;
}

static bool kustomize_ok(void)
{
    char out[4096];
    /* `labels:` and `patches:` need kustomize v4 or later (kubectl 1.21+). */
    return run_capture("kubectl version --client 2>/dev/null", out, sizeof(out)) == 0 &&
           (strstr(out, "Kustomize Version: v4") || strstr(out, "Kustomize Version: v5"));
}

static json_t *kustomize(const char *dir)
{
    char cmd[400];
    int code;
    snprintf(cmd, sizeof(cmd), "kubectl kustomize %s 2>&1", dir);
    char *out = run(cmd, &code);
    ck_assert_msg(code == 0, "%s: %s", cmd, out);
    json_t *objs = load_stream(out);
    free(out);
    return objs;
}

START_TEST(agent_pieces_match_the_manifest)
{
    struct dtest d;
    char id[16], path[400];
    apitest_lite_setup(&d);
    json_t *c = apitest_cluster(&d, d.admin_token, "deploycheck", id);
    snprintf(path, sizeof(path), "/v3/import/%s_%s.yaml",
             apitest_str(c, "registration.token"), id);
    struct httpc_resp resp;
    ck_assert_int_eq(dtest_call(&d, "GET", path, NULL, NULL, &resp), 200);
    /* The placeholders deploy/ uses where the manifest has this cluster's
     * values. */
    char *text = subst(subst(strdup(resp.body), d.checksum, "CA-CHECKSUM"), id, "CLUSTER-ID");
    httpc_free(&resp);
    json_t *manifest = load_stream(text);
    free(text);
    ck_assert_int_eq(json_array_size(manifest), 8);
    ck_assert_msg(kustomize_ok(), "kubectl with kustomize v4+ is needed (install-deps)");
    json_t *pieces = kustomize("deploy/kubernetes/agent");
    ck_assert_int_eq(json_array_size(pieces), json_array_size(manifest));
    size_t i;
    json_t *m;
    json_array_foreach(manifest, i, m) {
        const char *kind = json_string_value(json_object_get(m, "kind"));
        json_t *p = find_obj(pieces, kind, obj_name(m));
        ck_assert_msg(p != NULL, "deploy/kubernetes/agent has no %s %s", kind, obj_name(m));
        if (strcmp(kind, "Secret") == 0) {
            /* Generated from credentials.env: same keys, values the operator's. */
            json_t *sd = json_object_get(m, "stringData"), *pd = json_object_get(p, "data");
            ck_assert_int_eq(json_object_size(sd), json_object_size(pd));
            const char *k;
            json_t *v;
            json_object_foreach(sd, k, v)
                ck_assert_msg(json_object_get(pd, k), "Secret key %s", k);
            ck_assert(json_equal(json_object_get(json_object_get(m, "metadata"), "labels"),
                                 json_object_get(json_object_get(p, "metadata"), "labels")));
            continue;
        }
        /* Everything else is the same object: kinds, names, labels, env,
         * probes, tolerations, security contexts, volumes. */
        char *a = json_dumps(m, JSON_SORT_KEYS | JSON_INDENT(1));
        char *b = json_dumps(p, JSON_SORT_KEYS | JSON_INDENT(1));
        ck_assert_msg(json_equal(m, p), "%s %s differs:\nserver: %.1500s\ndeploy: %.1500s",
                      kind, obj_name(m), a, b);
        free(a);
        free(b);
    }
    json_decref(pieces);
    json_decref(manifest);
    json_decref(c);
    apitest_teardown(&d);
}
END_TEST

static json_t *container(json_t *objs, const char *kind, const char *name)
{
    json_t *o = find_obj(objs, kind, name);
    ck_assert_msg(o != NULL, "no %s %s", kind, name);
    return json_array_get(json_object_get(json_object_get(json_object_get(json_object_get(
        o, "spec"), "template"), "spec"), "containers"), 0);
}

static const char *env_of(json_t *ctr, const char *name, bool *from_secret)
{
    size_t i;
    json_t *e;
    json_array_foreach(json_object_get(ctr, "env"), i, e)
        if (strcmp(json_string_value(json_object_get(e, "name")), name) == 0) {
            *from_secret = json_object_get(json_object_get(e, "valueFrom"),
                                           "secretKeyRef") != NULL;
            return json_string_value(json_object_get(e, "value"));
        }
    *from_secret = false;
    return NULL;
}

static void check_overlay(const char *dir, int replicas)
{
    json_t *objs = kustomize(dir);
    static const char *const need[][2] = {
        { "Namespace", "drover" }, { "Deployment", "drover-server" },
        { "Service", "drover-server" }, { "Ingress", "drover-server" },
        { "PodDisruptionBudget", "drover-server" }, { "Secret", "drover-ca" },
    };
    for (size_t i = 0; i < sizeof(need) / sizeof(need[0]); i++)
        ck_assert_msg(find_obj(objs, need[i][0], need[i][1]), "%s: no %s %s", dir,
                      need[i][0], need[i][1]);
    json_t *dep = find_obj(objs, "Deployment", "drover-server");
    ck_assert_int_eq(json_integer_value(json_object_get(json_object_get(dep, "spec"),
                                                        "replicas")), replicas);
    json_t *ctr = container(objs, "Deployment", "drover-server");
    ck_assert_str_eq(json_string_value(json_object_get(json_object_get(json_object_get(
        ctr, "livenessProbe"), "httpGet"), "path")), "/healthz");
    ck_assert_str_eq(json_string_value(json_object_get(json_object_get(json_object_get(
        ctr, "readinessProbe"), "httpGet"), "path")), "/readyz");
    ck_assert_ptr_nonnull(json_object_get(json_object_get(ctr, "resources"), "requests"));
    bool secret;
    const char *ds = env_of(ctr, "DROVER_DATASTORE", &secret);
    if (replicas == 1) {
        ck_assert_str_eq(ds, "sqlite");
        ck_assert_msg(find_obj(objs, "PersistentVolumeClaim", "drover-data"), "no PVC");
        char *text = json_dumps(dep, 0);
        ck_assert(strstr(text, "\"claimName\": \"drover-data\"") ||
                  strstr(text, "\"claimName\":\"drover-data\""));
        ck_assert(!strstr(text, "emptyDir"));
        free(text);
    } else {
        ck_assert(secret);
        ck_assert_msg(find_obj(objs, "Secret", "drover-datastore"), "no datastore Secret");
        /* Replica mode needs the shared peer token. */
        ck_assert_msg(find_obj(objs, "Secret", "drover-peer"), "no peer Secret");
        ck_assert_str_eq(env_of(ctr, "DROVER_PEER_TOKEN_FILE", &secret),
                         "/etc/drover/peer/token");
    }
    /* The shared CA reaches the data directory before the server starts. */
    json_t *init = json_array_get(json_object_get(json_object_get(json_object_get(
        json_object_get(dep, "spec"), "template"), "spec"), "initContainers"), 0);
    ck_assert_ptr_nonnull(init);
    char *cmd = json_dumps(json_object_get(init, "command"), 0);
    ck_assert_msg(strstr(cmd, "/etc/drover/ca/ca.key") && strstr(cmd, "/var/lib/drover/"),
                  "%s", cmd);
    free(cmd);
    /* Everything lands in the namespace it creates. */
    size_t i;
    json_t *o;
    json_array_foreach(objs, i, o) {
        const char *ns = json_string_value(json_object_get(json_object_get(o, "metadata"),
                                                           "namespace"));
        if (strcmp(json_string_value(json_object_get(o, "kind")), "Namespace") != 0)
            ck_assert_msg(ns && strcmp(ns, "drover") == 0, "%s", obj_name(o));
    }
    json_decref(objs);
}

START_TEST(server_overlays_render)
{
    ck_assert_msg(kustomize_ok(), "kubectl with kustomize v4+ is needed (install-deps)");
    check_overlay("deploy/kubernetes/overlays/postgres", 3);
    check_overlay("deploy/kubernetes/overlays/sqlite", 1);
}
END_TEST

/* ---- make install ---- */

static void must_exist(const char *root, const char *rel, mode_t mode)
{
    char p[600];
    struct stat st;
    snprintf(p, sizeof(p), "%s%s", root, rel);
    ck_assert_msg(stat(p, &st) == 0, "make install left no %s", rel);
    ck_assert_msg((st.st_mode & 0777) == mode, "%s has mode %o", rel, st.st_mode & 0777);
}

START_TEST(make_install_lays_out_the_tree)
{
    char dir[256], cmd[1200];
    make_temp_dir(dir, sizeof(dir));
    /* -o all: install what this run built (BIN may be the SAN build's),
     * without rebuilding. */
    snprintf(cmd, sizeof(cmd), "make -s --no-print-directory -o all install DESTDIR=%s "
             "PREFIX=/usr BIN=%s 2>&1", dir, getenv("DROVER_BIN_DIR"));
    int code;
    char *out = run(cmd, &code);
    ck_assert_msg(code == 0, "%s\n%s", cmd, out);
    free(out);
    static const char *const bins[] = { "drover-server", "drover-cluster-agent",
                                        "drover-node-agent", "droverctl" };
    for (size_t i = 0; i < 4; i++) {
        char rel[200];
        snprintf(rel, sizeof(rel), "/usr/bin/%s", bins[i]);
        must_exist(dir, rel, 0755);
        snprintf(rel, sizeof(rel), "/usr/share/man/man%d/%s.%d", i == 3 ? 1 : 8, bins[i],
                 i == 3 ? 1 : 8);
        must_exist(dir, rel, 0644);
        if (i < 3) {
            snprintf(rel, sizeof(rel), "/usr/lib/systemd/system/%s.service", bins[i]);
            must_exist(dir, rel, 0644);
            snprintf(rel, sizeof(rel), "/usr/share/drover/%s.env", bins[i]);
            must_exist(dir, rel, 0644);
        }
    }
    must_exist(dir, "/usr/share/bash-completion/completions/droverctl", 0644);
    /* Units point at where the binaries went. */
    char path[400];
    snprintf(path, sizeof(path), "%s/usr/lib/systemd/system/drover-server.service", dir);
    char *u = slurp(path);
    ck_assert(strstr(u, "ExecStart=/usr/bin/drover-server\n") != NULL);
    free(u);
    /* The installed programs run. */
    snprintf(cmd, sizeof(cmd), "%s/usr/bin/droverctl --version", dir);
    out = run(cmd, &code);
    ck_assert_int_eq(code, 0);
    ck_assert(strstr(out, DROVER_VERSION) != NULL);
    free(out);
    remove_tree(dir);
}
END_TEST

Suite *suite_integration_deploy(void)
{
    Suite *s = suite_create("integration/deploy");
    TCase *t = tcase_create("deploy");
    tcase_add_checked_fixture(t, NULL, proc_cleanup);
    tcase_set_timeout(t, 180);
    tcase_add_test(t, dockerfiles_match_the_build);
    tcase_add_test(t, settings_are_real);
    tcase_add_test(t, agent_pieces_match_the_manifest);
    tcase_add_test(t, server_overlays_render);
    tcase_add_test(t, make_install_lays_out_the_tree);
    suite_add_tcase(s, t);
    return s;
}
