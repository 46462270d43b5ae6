/*
 * manifest: renders the agent import manifest, the multi-document YAML that
 * `kubectl apply -f https://<server>/v3/import/<token>_<clusterId>.yaml`
 * applies to register a cluster (docs/MANIFEST.md explains each object).
 *
 * Pure: no I/O, no server state, no globals. Every value goes to libyaml's
 * emitter as an event, never into a string template, so a token or URL can
 * not end its scalar, start a comment or open another document whatever
 * bytes it holds.
 *
 * What it owns: nothing past a call. The rendered buffer belongs to the
 * caller. The route serving it is unauthenticated, so inputs and output
 * have hard caps (below) and a refusal never echoes the token.
 */
#ifndef DROVER_SERVER_MANIFEST_H
#define DROVER_SERVER_MANIFEST_H

#include <stddef.h>

/* Longest accepted value for any parameter, in bytes. */
#define MANIFEST_MAX_VALUE 2048
/* Longest rendered manifest; the inputs' caps keep real ones far below. */
#define MANIFEST_MAX_OUTPUT (256 * 1024)

struct manifest_params {
    const char *server_url;     /* what agents dial: https://..., or a comma list
                                 * of them (replicas), at most 8 */
    const char *token;          /* the cluster's registration token (any UTF-8) */
    const char *cluster_id;     /* 1-63 of [a-z0-9-], alphanumeric at both ends
                                 * (it is also a label value) */
    const char *ca_checksum;    /* lowercase hex SHA-256 of the CA PEM (64) */
    const char *agent_image;    /* e.g. "drover/agent:0.1.0" (printable ASCII) */
};

/*
 * Renders the manifest for p into a malloc'd, NUL-terminated buffer: *out
 * (caller frees) and *len (bytes, without the NUL). Returns 0, or -1 with a
 * message in err (if err is not NULL and errlen > 0) that names the bad
 * parameter; on -1, *out is NULL and *len 0. Deterministic: the same
 * params always give the same bytes.
 */
int manifest_render(const struct manifest_params *p, char **out, size_t *len, char *err,
                    size_t errlen);

#endif
