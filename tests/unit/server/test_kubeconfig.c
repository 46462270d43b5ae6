/*
 * Tests of server/kubeconfig.c. Each test renders a kubeconfig and reads it
 * back with libyaml's parser, then checks it field by field; one test also
 * hands the file to the real kubectl, when it is installed.
 */
#include <check.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include <openssl/evp.h>
#include <yaml.h>

#include "server/kubeconfig.h"

/* A throwaway self-signed test CA (EC P-256, CN=drover-test-ca). */
static const char CA_PEM[] =
    "-----BEGIN CERTIFICATE-----\n"
    "MIIBiDCCAS2gAwIBAgIUCIQIEBk2r9x8aBJHffrUF26htJgwCgYIKoZIzj0EAwIw\n"
    "GTEXMBUGA1UEAwwOZHJvdmVyLXRlc3QtY2EwHhcNMjYxMTI0MjAwNDQzWhcNMzYx\n"
    "MTIxMjAwNDQzWjAZMRcwFQYDVQQDDA5kcm92ZXItdGVzdC1jYTBZMBMGByqGSM49\n"
    "AgEGCCqGSM49AwEHA0IABD6d8BZRuYz7uLjY83S2x2sn3+NOtAws7YxjO89bFdur\n"
    "mFNL1dKMxx1Ry5vvXU4Ob50Y7Y7Xdsq3zWC/X8INqJqjUzBRMB0GA1UdDgQWBBQ6\n"
    "ga9HPaHO2JsVY0ilAd/iDImh7zAfBgNVHSMEGDAWgBQ6ga9HPaHO2JsVY0ilAd/i\n"
    "DImh7zAPBgNVHRMBAf8EBTADAQH/MAoGCCqGSM49BAMCA0kAMEYCIQDnDYZHlNcT\n"
    "ClPS2+4MdnohqGnEg6GXKlalxcoCalrr+AIhAIO0P9eRqB9QeqdfpCI5+8LXPRGR\n"
    "I6/BOeGefB0SQCak\n"
    "-----END CERTIFICATE-----\n";

#define SERVER "https://drover.example:8443"
#define PROXIED SERVER "/k8s/clusters/c-4f2a9"

static struct kubeconfig_params params(void)
{
    return (struct kubeconfig_params){
        .server_url = SERVER,
        .cluster_id = "c-4f2a9",
        .cluster_name = "prod-eu",
        .ca_pem = CA_PEM,
        .username = "alice",
        .token = "kubeconfig-u-abc:9f86d081884c7d659a2feaa0",
    };
}

/* ---- reading the output back ---- */

struct parsed {
    yaml_document_t doc;
    char *text;
    size_t len;
};

static struct parsed *g_k;  /* the kubeconfig of the current test */

static struct parsed *render_parse(const struct kubeconfig_params *p)
{
    struct parsed *k = calloc(1, sizeof(*k));
    char err[256] = "";
    yaml_parser_t parser;
    yaml_document_t extra;

    ck_assert_ptr_nonnull(k);
    ck_assert_msg(kubeconfig_render(p, &k->text, &k->len, err, sizeof(err)) == 0, "render: %s",
                  err);
    ck_assert_uint_eq(strlen(k->text), k->len);
    ck_assert(yaml_parser_initialize(&parser));
    yaml_parser_set_input_string(&parser, (const unsigned char *)k->text, k->len);
    ck_assert_msg(yaml_parser_load(&parser, &k->doc), "parse error: %s",
                  parser.problem ? parser.problem : "?");
    ck_assert_ptr_nonnull(yaml_document_get_root_node(&k->doc));
    /* Exactly one document. */
    ck_assert(yaml_parser_load(&parser, &extra));
    ck_assert_ptr_null(yaml_document_get_root_node(&extra));
    yaml_document_delete(&extra);
    yaml_parser_delete(&parser);
    return k;
}

static void parsed_free(struct parsed *k)
{
    if (!k)
        return;
    yaml_document_delete(&k->doc);
    free(k->text);
    free(k);
}

static void teardown(void)
{
    parsed_free(g_k);
    g_k = NULL;
}

/* The node at a path of mapping keys and, in sequences, decimal indexes
 * (NULL-terminated); NULL if any step is missing. */
static yaml_node_t *get(const char *first, ...)
{
    yaml_document_t *d = &g_k->doc;
    yaml_node_t *n = yaml_document_get_root_node(d);
    va_list ap;
    va_start(ap, first);
    for (const char *k = first; n && k; k = va_arg(ap, const char *)) {
        yaml_node_t *next = NULL;
        if (n->type == YAML_MAPPING_NODE) {
            for (yaml_node_pair_t *pr = n->data.mapping.pairs.start;
                 pr < n->data.mapping.pairs.top; pr++) {
                yaml_node_t *key = yaml_document_get_node(d, pr->key);
                if (key->type == YAML_SCALAR_NODE &&
                    strcmp((char *)key->data.scalar.value, k) == 0)
                    next = yaml_document_get_node(d, pr->value);
            }
        } else if (n->type == YAML_SEQUENCE_NODE) {
            long i = strtol(k, NULL, 10);
            if (i >= 0 && i < n->data.sequence.items.top - n->data.sequence.items.start)
                next = yaml_document_get_node(d, n->data.sequence.items.start[i]);
        }
        n = next;
    }
    va_end(ap);
    return n;
}

static size_t count(yaml_node_t *n)
{
    ck_assert_ptr_nonnull(n);
    if (n->type == YAML_MAPPING_NODE)
        return (size_t)(n->data.mapping.pairs.top - n->data.mapping.pairs.start);
    ck_assert_int_eq(n->type, YAML_SEQUENCE_NODE);
    return (size_t)(n->data.sequence.items.top - n->data.sequence.items.start);
}

/* A scalar that a YAML 1.1 reader takes as the string want: equal, and
 * quoted unless it is a plain word. */
#define ck_str(node, want)                                                          \
    do {                                                                            \
        yaml_node_t *n_ = (node);                                                   \
        const char *w_ = (want);                                                    \
        ck_assert_msg(n_ && n_->type == YAML_SCALAR_NODE, "%s: missing", #node);   \
        ck_assert_msg(strcmp((char *)n_->data.scalar.value, w_) == 0,               \
                      "%s: got \"%s\", want \"%s\"", #node,                         \
                      (char *)n_->data.scalar.value, w_);                           \
        ck_assert_msg(n_->data.scalar.style != YAML_PLAIN_SCALAR_STYLE ||           \
                          strspn(w_, "abcdefghijklmnopqrstuvwxyz"                   \
                                     "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-./_") == \
                              strlen(w_),                                           \
                      "%s: \"%s\" is plain", #node, w_);                            \
    } while (0)

/* Decodes the base64 in n and compares it with want byte for byte. */
static void ck_base64_of(yaml_node_t *n, const char *want)
{
    ck_assert_ptr_nonnull(n);
    ck_assert_int_eq(n->type, YAML_SCALAR_NODE);
    const char *b64 = (const char *)n->data.scalar.value;
    size_t b64_len = strlen(b64);
    ck_assert_uint_eq(b64_len % 4, 0);
    ck_assert_ptr_null(strchr(b64, '\n'));
    unsigned char *raw = malloc(b64_len / 4 * 3 + 1);
    ck_assert_ptr_nonnull(raw);
    int got = EVP_DecodeBlock(raw, (const unsigned char *)b64, (int)b64_len);
    ck_assert_int_ge(got, 0);
    /* EVP_DecodeBlock counts the padding as zero bytes. */
    for (size_t i = b64_len; i > 0 && b64[i - 1] == '='; i--)
        got--;
    ck_assert_uint_eq((size_t)got, strlen(want));
    ck_assert_mem_eq(raw, want, strlen(want));
    free(raw);
}

/* ---- the document ---- */

START_TEST(test_every_field)
{
    struct kubeconfig_params p = params();
    g_k = render_parse(&p);

    ck_assert_uint_eq(count(get(NULL)), 7);
    ck_str(get("apiVersion", NULL), "v1");
    ck_str(get("kind", NULL), "Config");

    ck_assert_uint_eq(count(get("clusters", NULL)), 1);
    ck_assert_uint_eq(count(get("clusters", "0", NULL)), 2);
    ck_str(get("clusters", "0", "name", NULL), "prod-eu");
    ck_assert_uint_eq(count(get("clusters", "0", "cluster", NULL)), 2);
    ck_str(get("clusters", "0", "cluster", "server", NULL), PROXIED);
    ck_base64_of(get("clusters", "0", "cluster", "certificate-authority-data", NULL), CA_PEM);

    ck_assert_uint_eq(count(get("users", NULL)), 1);
    ck_assert_uint_eq(count(get("users", "0", NULL)), 2);
    ck_str(get("users", "0", "name", NULL), "alice@prod-eu");
    ck_assert_uint_eq(count(get("users", "0", "user", NULL)), 1);
    ck_str(get("users", "0", "user", "token", NULL), p.token);

    ck_assert_uint_eq(count(get("contexts", NULL)), 1);
    ck_assert_uint_eq(count(get("contexts", "0", NULL)), 2);
    ck_str(get("contexts", "0", "name", NULL), "prod-eu");
    ck_assert_uint_eq(count(get("contexts", "0", "context", NULL)), 2);
    ck_str(get("contexts", "0", "context", "cluster", NULL), "prod-eu");
    ck_str(get("contexts", "0", "context", "user", NULL), "alice@prod-eu");

    ck_str(get("current-context", NULL), "prod-eu");
    ck_assert_uint_eq(count(get("preferences", NULL)), 0);
}
END_TEST

/* Trailing slashes are dropped; a path prefix (a server behind a proxy) is
 * kept in front of the proxy path. */
START_TEST(test_server_url_forms)
{
    static const struct {
        const char *in, *want;
    } cases[] = {
        { SERVER "/", PROXIED },
        { SERVER "///", PROXIED },
        { "https://10.0.0.1", "https://10.0.0.1/k8s/clusters/c-4f2a9" },
        { "https://[::1]:8443/drover/", "https://[::1]:8443/drover/k8s/clusters/c-4f2a9" },
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct kubeconfig_params p = params();
        p.server_url = cases[i].in;
        g_k = render_parse(&p);
        ck_str(get("clusters", "0", "cluster", "server", NULL), cases[i].want);
        teardown();
    }
}
END_TEST

/* Names a YAML 1.1 reader would take for something else, or that hold
 * YAML syntax, come back the same everywhere they are used. */
START_TEST(test_names_needing_quotes)
{
    static const char *const names[] = {
        "prod: eu #1", "yes", "12345", "null", "~", "- x", "[a]", "caf\xc3\xa9 \xe2\x98\x83",
        "'single'", "\"double\"", "a\\b", "@home",
    };
    char user[128];
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        struct kubeconfig_params p = params();
        p.cluster_name = names[i];
        p.username = "0042";
        snprintf(user, sizeof(user), "0042@%s", names[i]);
        g_k = render_parse(&p);
        ck_assert_uint_eq(count(get(NULL)), 7);
        ck_str(get("clusters", "0", "name", NULL), names[i]);
        ck_str(get("contexts", "0", "name", NULL), names[i]);
        ck_str(get("contexts", "0", "context", "cluster", NULL), names[i]);
        ck_str(get("contexts", "0", "context", "user", NULL), user);
        ck_str(get("users", "0", "name", NULL), user);
        ck_str(get("current-context", NULL), names[i]);
        teardown();
    }
}
END_TEST

/* Tokens are printable ASCII, which includes YAML syntax. */
START_TEST(test_token_with_syntax)
{
    static const char *const tokens[] = { "a:b#c", "'\"{}[],&*!|>%@`", "true", "123", "-" };
    for (size_t i = 0; i < sizeof(tokens) / sizeof(tokens[0]); i++) {
        struct kubeconfig_params p = params();
        p.token = tokens[i];
        g_k = render_parse(&p);
        ck_str(get("users", "0", "user", "token", NULL), tokens[i]);
        ck_assert_uint_eq(count(get("users", "0", "user", NULL)), 1);
        teardown();
    }
}
END_TEST

START_TEST(test_deterministic_and_terminated)
{
    struct kubeconfig_params p = params();
    char *a = NULL, *b = NULL;
    size_t alen = 0, blen = 0;
    ck_assert_int_eq(kubeconfig_render(&p, &a, &alen, NULL, 0), 0);
    ck_assert_int_eq(kubeconfig_render(&p, &b, &blen, NULL, 0), 0);
    ck_assert_uint_eq(alen, blen);
    ck_assert_mem_eq(a, b, alen);
    ck_assert_int_eq(a[alen], '\0');
    ck_assert_int_eq(a[alen - 1], '\n');
    free(a);
    free(b);
}
END_TEST

/* Largest inputs everywhere still fit the output cap. */
START_TEST(test_largest_inputs)
{
    static char pem[KUBECONFIG_MAX_CA_PEM + 1], name[KUBECONFIG_MAX_VALUE + 1];
    static char token[KUBECONFIG_MAX_VALUE + 1], url[1001];
    static const char head[] = "-----BEGIN CERTIFICATE-----\n",
                      tail[] = "\n-----END CERTIFICATE-----\n";
    memset(pem, 'A', KUBECONFIG_MAX_CA_PEM);
    memcpy(pem, head, strlen(head));
    memcpy(pem + KUBECONFIG_MAX_CA_PEM - strlen(tail), tail, strlen(tail));
    memset(name, 'n', KUBECONFIG_MAX_VALUE);
    memset(token, 't', KUBECONFIG_MAX_VALUE);
    /* url_parse caps the path at URL_MAX_PATH (1024). */
    memset(url, 'p', 1000);
    memcpy(url, "https://h.example/", strlen("https://h.example/"));

    struct kubeconfig_params p = params();
    p.ca_pem = pem;
    p.cluster_name = name;
    p.username = name;
    p.token = token;
    p.server_url = url;
    g_k = render_parse(&p);
    ck_base64_of(get("clusters", "0", "cluster", "certificate-authority-data", NULL), pem);
    ck_str(get("users", "0", "user", "token", NULL), token);
    ck_assert_uint_le(g_k->len, KUBECONFIG_MAX_OUTPUT);
}
END_TEST

/* ---- refusals ---- */

/* Refused, with nothing handed out, and a message naming field. */
static void ck_refused(const struct kubeconfig_params *p, const char *field)
{
    char *out = (char *)"untouched", err[256] = "";
    size_t len = 99;
    ck_assert_int_eq(kubeconfig_render(p, &out, &len, err, sizeof(err)), -1);
    ck_assert_ptr_null(out);
    ck_assert_uint_eq(len, 0);
    ck_assert_msg(strncmp(err, field, strlen(field)) == 0 && err[strlen(field)] == ':',
                  "message \"%s\" does not name %s", err, field);
    ck_assert_uint_gt(strlen(err), strlen(field) + 2);
}

enum field { URL, ID, NAME, CA, USER, TOKEN };

static const char *const field_names[] = { "server_url", "cluster_id", "cluster_name",
                                           "ca_pem", "username", "token" };

static void set(struct kubeconfig_params *p, enum field f, const char *v)
{
    const char **slot[] = { &p->server_url, &p->cluster_id, &p->cluster_name,
                            &p->ca_pem, &p->username, &p->token };
    *slot[f] = v;
}

START_TEST(test_missing_fields_refused)
{
    for (int f = URL; f <= TOKEN; f++) {
        struct kubeconfig_params p = params();
        set(&p, f, NULL);
        ck_refused(&p, field_names[f]);
        set(&p, f, "");
        ck_refused(&p, field_names[f]);
    }
}
END_TEST

START_TEST(test_bad_values_refused)
{
    static char long_value[KUBECONFIG_MAX_VALUE + 2], long_pem[KUBECONFIG_MAX_CA_PEM + 2];
    memset(long_value, 'a', sizeof(long_value) - 1);
    memset(long_pem, 'A', sizeof(long_pem) - 1);
    memcpy(long_pem, "-----BEGIN CERTIFICATE-----", 27);
    static const struct {
        enum field f;
        const char *v;
    } cases[] = {
        { URL, "http://drover.example" },
        { URL, "drover.example:8443" },
        { URL, "https://" },
        { URL, "https:///k8s" },
        { URL, "https://drover.example?x=1" },
        { URL, "https://drover.example/#frag" },
        { URL, "https://user@drover.example" },
        { URL, "https://drover.example:99999" },
        { URL, "https://drover.example/a b" },
        { URL, " https://drover.example" },
        { URL, "https://drover.example/\n" },
        { URL, "https://drover.example/caf\xc3\xa9" },
        { ID, "C-4F2A9" },
        { ID, "c_4f2a9" },
        { ID, "c.4f2a9" },
        { ID, "-c4f2a9" },
        { ID, "c4f2a9-" },
        { ID, "c/../x" },
        { ID, "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa" },   /* 64 */
        { NAME, "prod\neu" },
        { NAME, "tab\there" },
        { NAME, "del\x7f" },
        { NAME, "bad \xff" },
        { NAME, "surrogate \xed\xa0\x80" },
        { CA, "not a certificate" },
        { CA, "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n" },
        { CA, "-----BEGIN CERTIFICATE-----\nAAAA\n" },
        { CA, "-----BEGIN CERTIFICATE-----\n\xc3\xa9\n-----END CERTIFICATE-----\n" },
        { CA, "-----BEGIN CERTIFICATE-----\n\x01\n-----END CERTIFICATE-----\n" },
        { USER, "al\nice" },
        { USER, "\x1b[31mred" },
        { USER, "\xc3" },
        { TOKEN, "has space" },
        { TOKEN, "tab\t" },
        { TOKEN, "line\n" },
        { TOKEN, "t\xc3\xb6k" },
        { TOKEN, "del\x7f" },
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct kubeconfig_params p = params();
        set(&p, cases[i].f, cases[i].v);
        ck_refused(&p, field_names[cases[i].f]);
    }
    for (int f = URL; f <= TOKEN; f++) {
        struct kubeconfig_params p = params();
        set(&p, f, f == CA ? long_pem : long_value);
        ck_refused(&p, field_names[f]);
    }
}
END_TEST

START_TEST(test_refusal_does_not_echo_values)
{
    struct kubeconfig_params p = params();
    char *out = NULL, err[256] = "";
    size_t len = 0;
    p.token = "s3cret token";
    ck_assert_int_eq(kubeconfig_render(&p, &out, &len, err, sizeof(err)), -1);
    ck_assert_ptr_null(strstr(err, "s3cret"));
}
END_TEST

START_TEST(test_missing_arguments)
{
    struct kubeconfig_params p = params();
    char *out = NULL, err[256] = "";
    size_t len = 0;
    ck_assert_int_eq(kubeconfig_render(NULL, &out, &len, err, sizeof(err)), -1);
    ck_assert_uint_gt(strlen(err), 0);
    err[0] = '\0';
    ck_assert_int_eq(kubeconfig_render(&p, NULL, &len, err, sizeof(err)), -1);
    ck_assert_uint_gt(strlen(err), 0);
    ck_assert_int_eq(kubeconfig_render(&p, &out, NULL, err, sizeof(err)), -1);
    /* No error buffer is fine too. */
    ck_assert_int_eq(kubeconfig_render(NULL, &out, &len, NULL, 0), -1);
    ck_assert_ptr_null(out);
}
END_TEST

/* ---- kubectl ---- */

/* kubectl's full path from PATH, or 0 if it is not installed. */
static int find_kubectl(char *path, size_t cap)
{
    const char *env = getenv("PATH");
    if (!env)
        return 0;
    for (const char *dir = env; *dir;) {
        size_t n = strcspn(dir, ":");
        if (n > 0 && (size_t)snprintf(path, cap, "%.*s/kubectl", (int)n, dir) < cap &&
            access(path, X_OK) == 0)
            return 1;
        dir += n;
        if (*dir == ':')
            dir++;
    }
    return 0;
}

/* Runs argv (no shell) with its stdout in out, NUL-terminated. Returns
 * its wait status, or -1 if it could not be started. */
static int run(char *const argv[], char *out, size_t cap)
{
    int fds[2], status = -1;
    size_t used = 0;
    out[0] = '\0';
    if (pipe(fds) < 0)
        return -1;
    pid_t pid = fork();
    if (pid == 0) {
        dup2(fds[1], STDOUT_FILENO);
        close(fds[0]);
        close(fds[1]);
        execv(argv[0], argv);
        _exit(127);
    }
    close(fds[1]);
    for (ssize_t n; pid > 0 && used < cap - 1;) {
        n = read(fds[0], out + used, cap - 1 - used);
        if (n <= 0)
            break;
        used += (size_t)n;
    }
    out[used] = '\0';
    close(fds[0]);
    if (pid > 0 && waitpid(pid, &status, 0) != pid)
        status = -1;
    return status;
}

/* The real consumer: kubectl loads the file and reads back the server URL,
 * the current context and the token, with a name that needs quoting. */
START_TEST(test_kubectl_reads_it)
{
    char kubectl[4096], file[] = "/tmp/drover-kubeconfig-XXXXXX";
    if (!find_kubectl(kubectl, sizeof(kubectl))) {
        fprintf(stderr, "test_kubeconfig: kubectl not installed; kubectl check skipped\n");
        return;
    }
    struct kubeconfig_params p = params();
    p.cluster_name = "prod: eu #1";
    char *out = NULL, err[256] = "";
    size_t len = 0;
    ck_assert_msg(kubeconfig_render(&p, &out, &len, err, sizeof(err)) == 0, "render: %s", err);
    int fd = mkstemp(file);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(write(fd, out, len), (ssize_t)len);
    close(fd);
    free(out);

    char *server_argv[] = { kubectl, "config", "view", "--kubeconfig", file, "-o",
                            "jsonpath={.clusters[0].cluster.server}", NULL };
    char *context_argv[] = { kubectl, "config", "current-context", "--kubeconfig", file, NULL };
    char *token_argv[] = { kubectl, "config", "view", "--raw", "--kubeconfig", file, "-o",
                           "jsonpath={.users[?(@.name==\"alice@prod: eu #1\")].user.token}",
                           NULL };
    char server[1024], context[1024], token[1024];
    int server_rc = run(server_argv, server, sizeof(server));
    int context_rc = run(context_argv, context, sizeof(context));
    int token_rc = run(token_argv, token, sizeof(token));
    unlink(file);   /* before any assertion can end the test */

    ck_assert_int_eq(server_rc, 0);
    ck_assert_str_eq(server, PROXIED);
    ck_assert_int_eq(context_rc, 0);
    ck_assert_str_eq(context, "prod: eu #1\n");
    ck_assert_int_eq(token_rc, 0);
    ck_assert_str_eq(token, p.token);
}
END_TEST

Suite *suite_server_kubeconfig(void)
{
    Suite *s = suite_create("server_kubeconfig");

    TCase *doc = tcase_create("document");
    tcase_add_checked_fixture(doc, NULL, teardown);
    tcase_add_test(doc, test_every_field);
    tcase_add_test(doc, test_server_url_forms);
    tcase_add_test(doc, test_names_needing_quotes);
    tcase_add_test(doc, test_token_with_syntax);
    tcase_add_test(doc, test_deterministic_and_terminated);
    tcase_add_test(doc, test_largest_inputs);
    suite_add_tcase(s, doc);

    TCase *bad = tcase_create("refusals");
    tcase_add_test(bad, test_missing_fields_refused);
    tcase_add_test(bad, test_bad_values_refused);
    tcase_add_test(bad, test_refusal_does_not_echo_values);
    tcase_add_test(bad, test_missing_arguments);
    suite_add_tcase(s, bad);

    TCase *tool = tcase_create("kubectl");
    /* kubectl is a large Go binary; its start-up alone can take seconds. */
    tcase_set_timeout(tool, 60);
    tcase_add_test(tool, test_kubectl_reads_it);
    suite_add_tcase(s, tool);
    return s;
}
