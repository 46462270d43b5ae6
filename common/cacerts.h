/*
 * cacerts: the first step of an agent's trust in its server. Fetches
 * GET /cacerts over TLS without verification (there is nothing to verify
 * against yet), then the caller compares its SHA-256 with the pinned
 * checksum. Blocking, with a deadline: agents do this before their loop runs.
 */
#ifndef DROVER_CACERTS_H
#define DROVER_CACERTS_H

#include <stddef.h>

#include "common/url.h"

#define CACERTS_MAX (64 * 1024)

/*
 * Fetches u's /cacerts. On success returns 0 and a malloc'd NUL-terminated
 * *pem (caller frees). -1 with err on any failure (DNS, connect, TLS, HTTP
 * status other than 200, a body over CACERTS_MAX, timeout).
 */
int cacerts_fetch(const struct url *u, int timeout_ms, char **pem, size_t *len,
                  char *err, size_t errlen);

#endif
