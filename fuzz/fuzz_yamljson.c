/*
 * Fuzz target for cli/yamljson.c, droverctl's YAML reader and writer (it
 * reads kubeconfig files a user may have edited by hand). Whatever loads
 * must dump, and the dump must load back to an equal value: -o yaml and
 * the kubeconfig merge rely on that round trip keeping every type.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cli/yamljson.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[200];
    json_t *j = yj_load((const char *)data, size, err, sizeof(err));
    if (!j) {
        if (!err[0])
            abort();            /* a refusal always says why */
        return 0;
    }
    size_t len = 0;
    char *out = yj_dump(j, &len);
    if (out) {
        json_t *back = yj_load(out, len, err, sizeof(err));
        if (!back || !json_equal(j, back))
            abort();
        json_decref(back);
        free(out);
    }
    json_decref(j);
    return 0;
}
