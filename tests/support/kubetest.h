/*
 * kubetest: what the integration tests of a cluster behind drover share
 * (kubectl, apply, takeover, cluster_agent): running the machine's kubectl,
 * the kubeconfig drover hands a user, cluster members, and reading the
 * cluster's state from the /v3 API. All of it is about the test cluster of
 * a struct dtest (d->cluster) and is done as its admin unless said.
 */
#ifndef DROVER_TEST_KUBETEST_H
#define DROVER_TEST_KUBETEST_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "tests/support/dtest.h"

/* Runs `kubectl ARGS` with kubeconfig kc (30 s at most, stderr into the
 * output too); returns its exit code, its output in out. */
int kubetest_kubectl(const char *kc, const char *args, char *out, size_t cap);
/* For wait_until: kubectl with the kubeconfig at path ud may do anything
 * (`auth can-i '*' '*'` says yes). */
bool kubetest_can_all(void *ud);
/* Writes text to the file name in d's directory; its path into path. */
void kubetest_file(struct dtest *d, const char *name, const char *text, char *path,
                   size_t cap);
/* Writes the kubeconfig drover gives token's user to path. */
void kubetest_kubeconfig(struct dtest *d, const char *token, const char *path);
/* Creates user name (password "pw-<name>-0123456789"); with a role, makes it
 * a member of the cluster; with token, logs it in (its token there). */
void kubetest_user(struct dtest *d, const char *name, const char *role, char *token,
                   size_t cap);
/* GET path; the JSON body, or NULL unless 200 (caller decrefs). */
json_t *kubetest_get(struct dtest *d, const char *path);
/* Waits until GET /v3/clusters/{id} says "state":"<state>". */
bool kubetest_wait_state(struct dtest *d, const char *state, int timeout_ms);

#endif
