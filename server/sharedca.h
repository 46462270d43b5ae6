/*
 * sharedca: one CA for every replica (docs/REPLICAS.md). In replica mode,
 * before the loop starts, the CA certificate and key are taken from the
 * datastore into data-dir/ca.crt and ca.key, where tls_pki_ensure() then
 * finds them and issues this replica's own serving certificate from them.
 * The first replica to start stores its CA (made now if data-dir has none);
 * the insert keeps whichever row landed first, so replicas starting together
 * agree. The key is stored sealed (AES-256-GCM) under a key derived from the
 * peer token, so the datastore alone does not give it away.
 *
 * Blocking: it runs once, on the main thread, before anything is served;
 * it retries an unreachable datastore for a while, then gives up.
 */
#ifndef DROVER_SERVER_SHAREDCA_H
#define DROVER_SERVER_SHAREDCA_H

#include <stddef.h>

/* 0, or -1 (logged). */
int sharedca_sync(const char *datastore, const char *data_dir, const char *peer_token,
                  size_t token_len);

#endif
