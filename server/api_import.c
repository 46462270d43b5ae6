/*
 * api_import: GET /v3/import/<token>_<clusterId>.yaml, the agent manifest
 * that `kubectl apply -f` fetches. Unauthenticated: the registration token
 * in the path is the credential, checked by hash against the cluster's row,
 * so a rotated token or a deleted cluster stops working at once. Every
 * refusal is the same 404 and never echoes the path.
 */
#include <stdio.h>
#include <string.h>

#include "server/api_int.h"
#include "server/manifest.h"

#define AGENT_IMAGE "drover/agent:" DROVER_VERSION
#define SUFFIX ".yaml"

static int no_manifest(struct api_call *c)
{
    return api_fail(c, 404, "NotFound", "no such manifest");
}

/* Splits "<token>_<id>.yaml"; false if it is not that shape. */
static bool split(const char *seg, char token[AUTH_REG_TOKEN_SIZE], char id[8])
{
    size_t n = strlen(seg), sl = sizeof(SUFFIX) - 1;
    if (n <= sl || strcmp(seg + n - sl, SUFFIX) != 0)
        return false;
    n -= sl;
    const char *us = memrchr(seg, '_', n);
    if (!us || (size_t)(us - seg) != AUTH_REG_TOKEN_SIZE - 1 ||
        n - (size_t)(us - seg) - 1 != 7)
        return false;
    memcpy(token, seg, AUTH_REG_TOKEN_SIZE - 1);
    token[AUTH_REG_TOKEN_SIZE - 1] = '\0';
    memcpy(id, us + 1, 7);
    id[7] = '\0';
    return api_valid_cluster_id(id);
}

static int get_manifest(struct db *db, struct api_call *c)
{
    char token[AUTH_REG_TOKEN_SIZE], id[8], hash[AUTH_HEX_SHA256], err[200];
    if (!split(c->param[0], token, id))
        return no_manifest(c);
    auth_sha256_hex(token, strlen(token), hash);
    int rc = store_cluster_token_ok(db, id, hash);
    if (rc < 0)
        return rc;
    if (rc == 0)
        return no_manifest(c);
    struct manifest_params p = { .server_url = c->api->server_url, .token = token,
                                 .cluster_id = id, .ca_checksum = c->api->ca_checksum,
                                 .agent_image = AGENT_IMAGE };
    if (manifest_render(&p, &c->raw, &c->raw_len, err, sizeof(err)) < 0)
        return api_fail(c, 500, "InternalError", "cannot render the manifest: %s", err);
    c->status = 200;
    c->raw_type = "application/yaml";
    snprintf(c->headers, sizeof(c->headers), "Cache-Control: no-store\r\n");
    return 0;
}

const struct api_route api_import_routes[] = {
    { "GET", "/v3/import/{}", 0, get_manifest, NULL },
    { 0 },
};
