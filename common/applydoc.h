/*
 * applydoc: the body of POST /v3/clusters/{id}/apply, split into the
 * Kubernetes objects to apply. Pure: bytes in, compact JSON objects out; no
 * I/O. drover-server parses with it, the cluster agent checks each object it
 * is sent with applydoc_check().
 *
 * A body is YAML (any number of documents separated by `---`; JSON is YAML
 * too) or JSON (one object, or an array of objects). A document or item of
 * kind `List` contributes its `items`. Empty documents are skipped. Every
 * object needs apiVersion, kind and metadata.name of the shapes Kubernetes
 * accepts in a URL, so the agent can build its request paths from them.
 *
 * Limits (all hard; past one the body is refused with a message naming the
 * document): APPLYDOC_MAX_OBJECTS objects, APPLYDOC_MAX_NODES values in all
 * (YAML aliases count what they expand to, so an alias bomb is refused
 * early), APPLYDOC_MAX_DEPTH nesting, APPLYDOC_MAX_OBJECT bytes per object
 * once serialized. YAML merge keys (<<) are refused rather than misread.
 * Plain scalars resolve as kubectl reads them (YAML 1.1, as go-yaml does):
 * ~ and null are null, yes/no/on/off and true/false are booleans, 0644 is
 * octal, 0x1f hex; quoted scalars are always strings.
 *
 * Documents are numbered from 1 in the order they appear (a JSON body is
 * document 1); items of a List or of a JSON array from 1 as well.
 */
#ifndef DROVER_APPLYDOC_H
#define DROVER_APPLYDOC_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#define APPLYDOC_MAX_OBJECTS 1000
#define APPLYDOC_MAX_NODES 500000
#define APPLYDOC_MAX_DEPTH 100
#define APPLYDOC_MAX_OBJECT (3u * 1024 * 1024)  /* etcd keeps at most 1.5 MiB */
#define APPLYDOC_MAX_NAME 253

enum applydoc_format { APPLYDOC_YAML, APPLYDOC_JSON };

struct applydoc_obj {
    char *json;                 /* compact JSON, no newline (owned) */
    size_t len;
    size_t index;               /* position in the request, from 0 */
    int rank;                   /* applydoc_rank() of its kind */
};

/* The objects in the order to apply them: Namespaces first, then
 * CustomResourceDefinitions, then the rest as they came (a stable order). */
struct applydoc {
    struct applydoc_obj *objs;
    size_t n;
};

/*
 * Splits buf (len bytes, need not be NUL-terminated) into objects. 0 with
 * *out filled (free with applydoc_free), or -1 with a message for a 400 in
 * err ("document 2: metadata.name is required"). No objects at all is an
 * error too.
 */
int applydoc_parse(const uint8_t *buf, size_t len, enum applydoc_format fmt,
                   struct applydoc *out, char *err, size_t errlen);
void applydoc_free(struct applydoc *d);

/*
 * Whether obj is an object drover can apply: apiVersion ("v1" or
 * "group/version"), kind (letters and digits), metadata.name (1-253 of
 * [A-Za-z0-9._:@+~-], not "." or ".."), metadata.namespace if present (a
 * DNS label). NULL if so, else what is wrong (a static string).
 */
const char *applydoc_check(const json_t *obj);

/* The apply rank of a kind: 0 Namespace, 1 CustomResourceDefinition,
 * 2 anything else. */
int applydoc_rank(const char *kind);

#endif
