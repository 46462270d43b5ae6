/*
 * kubeconfig: renders the kubeconfig a drover user downloads to reach one
 * cluster through the server's /k8s/clusters/<id> proxy with kubectl.
 *
 * Pure: no I/O, no server state, no globals. The YAML goes through
 * common/yamlout, so no value (a cluster name, a token) can change the
 * file's structure whatever bytes it holds.
 *
 * What it owns: nothing past a call. The rendered buffer belongs to the
 * caller. The output holds a bearer token: callers must serve it only to
 * the user it was minted for, and a refusal never echoes a value.
 */
#ifndef DROVER_SERVER_KUBECONFIG_H
#define DROVER_SERVER_KUBECONFIG_H

#include <stddef.h>

/* Longest accepted value of any parameter but ca_pem, in bytes. */
#define KUBECONFIG_MAX_VALUE 2048
/* Longest accepted CA PEM: room for a chain of several certificates. */
#define KUBECONFIG_MAX_CA_PEM (64 * 1024)
/* Longest rendered kubeconfig; the inputs' caps keep real ones far below. */
#define KUBECONFIG_MAX_OUTPUT (256 * 1024)

struct kubeconfig_params {
    const char *server_url;   /* https://drover.example:8443 (no trailing slash
                               * needed; any is dropped). Printable ASCII, no
                               * spaces, no query or fragment */
    const char *cluster_id;   /* c-4f2a9: 1-63 of [a-z0-9-], alphanumeric at both ends */
    const char *cluster_name; /* the drover cluster's name, used as the context
                               * name (UTF-8, no control characters) */
    const char *ca_pem;       /* the server CA (PEM, one or more certificates) */
    const char *username;     /* drover user (UTF-8, no control characters) */
    const char *token;        /* the bearer token kubectl will send (printable
                               * ASCII, no spaces) */
};

/*
 * Renders one kubeconfig document for p into a malloc'd, NUL-terminated
 * buffer: *out (caller frees) and *len (bytes, without the NUL). It holds a
 * cluster, a user and a context, and makes that context current:
 *
 *   cluster  <cluster_name>: server <server_url>/k8s/clusters/<cluster_id>,
 *            certificate-authority-data base64(ca_pem)
 *   user     <username>@<cluster_name>: token <token>
 *   context  <cluster_name>: that cluster and that user
 *
 * Returns 0, or -1 with a message in err (if err is not NULL and errlen > 0)
 * that starts with the bad parameter's name ("token: ..."); on -1, *out is
 * NULL and *len 0. Deterministic: the same params always give the same bytes.
 */
int kubeconfig_render(const struct kubeconfig_params *p, char **out, size_t *len, char *err,
                      size_t errlen);

#endif
