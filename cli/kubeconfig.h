/*
 * kubeconfig: merges a kubeconfig the server issued into the user's own
 * (~/.kube/config, or the first file in KUBECONFIG), the way kubectl
 * users expect: clusters, users and contexts of the same name are
 * replaced, all others kept, and the current context switched to the new
 * one. The merge is pure (on jansson trees); the file part writes 0600
 * through a temporary file and a rename.
 */
#ifndef DROVER_CLI_KUBECONFIG_H
#define DROVER_CLI_KUBECONFIG_H

#include <jansson.h>
#include <stddef.h>

/*
 * Merges add into *base (which may be JSON null or NULL for a missing
 * file: a new Config is made). Both must be kubeconfig objects whose
 * clusters/users/contexts are lists of objects with a string "name".
 * Returns 0, or -1 with a reason in err (base left unchanged then).
 * *base is replaced by the result (the old one released).
 */
int kc_merge(json_t **base, const json_t *add, char *err, size_t errlen);

/* The file to write: the first path of KUBECONFIG, else $HOME/.kube/config.
 * 0 or -1 with err. */
int kc_path(char *buf, size_t cap, char *err, size_t errlen);

/* Reads path (a missing file is an empty config), merges add_yaml into it
 * and writes it back 0600. The new current context's name into ctx. */
int kc_merge_file(const char *path, const char *add_yaml, size_t add_len, char *ctx,
                  size_t ctxcap, char *err, size_t errlen);

#endif
