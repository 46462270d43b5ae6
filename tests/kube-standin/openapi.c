/*
 * openapi: the smallest OpenAPI documents that let a real kubectl validate
 * and apply against the kube-standin test stand-in.
 *
 * kubectl (1.27 and later) fetches /openapi/v3, then the document of each
 * group version it writes to, and looks there for a PATCH operation tagged
 * with the kind's x-kubernetes-group-version-kind that takes the
 * fieldValidation query parameter: finding it, it leaves validation to the
 * server (which here accepts what it can store). The documents list exactly
 * that for every resource and carry no schemas, so kubectl apply computes
 * its strategic merge patches from the types compiled into it. /openapi/v2
 * gets the same paths in Swagger 2.0 form for kubectl versions that ask it.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/kube-standin/standin.h"

/* The item path of r in its group version, e.g.
 * /api/v1/namespaces/{namespace}/pods/{name}. */
static void item_path(const struct kres *r, char *out, size_t cap)
{
    snprintf(out, cap, "/%s%s%s/%s%s/{name}", r->group[0] ? "apis/" : "api", r->group,
             r->group[0] ? "/v1" : "/v1", r->namespaced ? "namespaces/{namespace}/" : "",
             r->name);
}

static json_t *gvk(const struct kres *r)
{
    return json_pack("{s:s,s:s,s:s}", "group", r->group, "version", r->version, "kind",
                     r->kind);
}

static json_t *patch_op(const struct kres *r, bool v3)
{
    json_t *param = v3 ? json_pack("{s:s,s:s,s:{s:s}}", "name", "fieldValidation", "in", "query",
                                   "schema", "type", "string")
                       : json_pack("{s:s,s:s,s:s}", "name", "fieldValidation", "in", "query",
                                   "type", "string");
    json_t *op = json_pack("{s:o,s:s,s:[o],s:{s:{s:s}}}", "x-kubernetes-group-version-kind",
                           gvk(r), "x-kubernetes-action", "patch", "parameters", param,
                           "responses", "200", "description", "OK");
    char id[128];
    snprintf(id, sizeof(id), "patch%s", r->kind);
    json_object_set_new(op, "operationId", json_string(id));
    return op;
}

/* The paths of one group version (group NULL: all of them, for v2). */
static json_t *paths(const char *group, bool v3)
{
    json_t *p = json_object();
    for (size_t i = 0; i < kres_count; i++) {
        const struct kres *r = &kres_table[i];
        if ((group && strcmp(r->group, group) != 0) || r->create_only)
            continue;
        char path[256];
        item_path(r, path, sizeof(path));
        json_object_set_new(p, path, json_pack("{s:o}", "patch", patch_op(r, v3)));
    }
    return p;
}

static json_t *v3_root(void)
{
    json_t *p = json_object();
    for (size_t i = 0; i < kres_count; i++) {
        const struct kres *r = &kres_table[i];
        char key[128], url[192];
        if (r->group[0])
            snprintf(key, sizeof(key), "apis/%s/%s", r->group, r->version);
        else
            snprintf(key, sizeof(key), "api/%s", r->version);
        snprintf(url, sizeof(url), "/openapi/v3/%s?hash=0000000000000001", key);
        json_object_set_new(p, key, json_pack("{s:s}", "serverRelativeURL", url));
    }
    return json_pack("{s:o}", "paths", p);
}

static json_t *v3_doc(struct kreq *k, const char *group)
{
    return json_pack("{s:s,s:{s:s,s:s},s:o,s:{s:{}}}", "openapi", "3.0.0", "info", "title",
                     "Kubernetes (kube-standin)", "version", k->ks->o.version, "paths",
                     paths(group, true), "components", "schemas");
}

static bool accepts_protobuf(const struct kreq *k)
{
    const struct http_header *h = hs_header(k->r, "accept");
    return h && memmem(h->value, h->value_len, "protobuf", 8) != NULL;
}

/* Appends a length-delimited protobuf field (wire type 2, length < 128). */
static size_t pb_bytes(uint8_t *out, unsigned field, const void *p, size_t n)
{
    out[0] = (uint8_t)(field << 3 | 2);
    out[1] = (uint8_t)n;
    memcpy(out + 2, p, n);
    return n + 2;
}

/*
 * kubectl before 1.30 fetches /openapi/v2 as protobuf only (gnostic's
 * openapi_v2.Document) and cannot read JSON there. A Document holding just
 * swagger (field 1) and info (field 2: title 1, version 2) parses, and having
 * no definitions makes kubectl skip client-side schema validation and use
 * its compiled-in types for apply, as it does for a kind it has no schema of.
 */
static void reply_v2_protobuf(struct kreq *k)
{
    uint8_t info[160], doc[200];
    const char *title = "Kubernetes (kube-standin)";
    char version[48];
    snprintf(version, sizeof(version), "%s", k->ks->o.version);
    size_t il = pb_bytes(info, 1, title, strlen(title));
    il += pb_bytes(info + il, 2, version, strlen(version));
    size_t dl = pb_bytes(doc, 1, "2.0", 3);
    dl += pb_bytes(doc + dl, 2, info, il);
    hs_respond(k->r, 200, "application/com.github.proto-openapi.spec.v2.v1.0+protobuf", doc, dl,
               NULL);
}

bool openapi_handle(struct kreq *k)
{
    const char *p = k->path;
    if (strcmp(k->method, "GET") != 0 || strncmp(p, "/openapi/", 9) != 0)
        return false;
    json_t *doc = NULL;
    if (strcmp(p, "/openapi/v2") == 0 && accepts_protobuf(k)) {
        reply_v2_protobuf(k);
        return true;
    }
    if (strcmp(p, "/openapi/v2") == 0) {
        doc = json_pack("{s:s,s:{s:s,s:s},s:o,s:{}}", "swagger", "2.0", "info", "title",
                        "Kubernetes (kube-standin)", "version", k->ks->o.version, "paths",
                        paths(NULL, false), "definitions");
    } else if (strcmp(p, "/openapi/v3") == 0 || strcmp(p, "/openapi/v3/") == 0) {
        doc = v3_root();
    } else if (strcmp(p, "/openapi/v3/api/v1") == 0) {
        doc = v3_doc(k, "");
    } else if (strncmp(p, "/openapi/v3/apis/", 17) == 0) {
        char group[64], version[24];
        if (sscanf(p + 17, "%63[^/]/%23s", group, version) == 2) {
            for (size_t i = 0; i < kres_count && !doc; i++)
                if (strcmp(kres_table[i].group, group) == 0 &&
                    strcmp(kres_table[i].version, version) == 0)
                    doc = v3_doc(k, group);
        }
    }
    if (!doc)
        return false;
    ks_reply_json(k, 200, doc);
    return true;
}
