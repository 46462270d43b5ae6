/*
 * Fuzz target for common/applydoc.c: the body of POST .../apply. A first
 * byte 'J' means JSON, anything else YAML; the rest is the body. On success every object
 * must be one line of JSON that passes applydoc_check(), no more than
 * APPLYDOC_MAX_OBJECTS of them, each index used once, in rank order; on
 * failure there must be a message and nothing left allocated.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/applydoc.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_objects(const struct applydoc *d)
{
    if (d->n == 0 || d->n > APPLYDOC_MAX_OBJECTS)
        abort();
    uint8_t *seen = calloc(d->n, 1);
    if (!seen)
        return;
    for (size_t i = 0; i < d->n; i++) {
        const struct applydoc_obj *o = &d->objs[i];
        if (o->len != strlen(o->json) || memchr(o->json, '\n', o->len) ||
            o->len > APPLYDOC_MAX_OBJECT || o->index >= d->n || seen[o->index]++)
            abort();
        if (i && (o->rank < d->objs[i - 1].rank ||
                  (o->rank == d->objs[i - 1].rank && o->index < d->objs[i - 1].index)))
            abort();
        json_t *j = json_loadb(o->json, o->len, JSON_ALLOW_NUL, NULL);
        if (!j || applydoc_check(j))
            abort();
        json_decref(j);
    }
    free(seen);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    enum applydoc_format fmt = data[0] == 'J' ? APPLYDOC_JSON : APPLYDOC_YAML;
    struct applydoc d;
    char err[400];
    err[0] = '\0';
    if (applydoc_parse(data + 1, size - 1, fmt, &d, err, sizeof(err)) == 0) {
        check_objects(&d);
        applydoc_free(&d);
    } else if (!err[0] || d.objs || d.n) {
        abort();
    }
    return 0;
}
