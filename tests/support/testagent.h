/*
 * testagent: a minimal cluster agent for integration tests, built on the
 * same common/ modules as the real agents: one TLS websocket tunnel (role
 * cluster) to a drover-server on loopback, run by a loop on a thread of its
 * own so a test can drive it with blocking calls.
 *
 * It sends "report" documents when asked and answers every "rbac" stream
 * the server opens with {"ok":true,...}, keeping the documents it received
 * for the test to read. Any other service is refused.
 */
#ifndef DROVER_TEST_TESTAGENT_H
#define DROVER_TEST_TESTAGENT_H

#include <stddef.h>
#include <stdint.h>

struct testagent;

/* Connects to https://127.0.0.1:port as cluster's agent with the
 * registration token, and waits up to timeout_ms for the tunnel. NULL if it
 * did not come up. */
struct testagent *testagent_start(int port, const char *cluster, const char *token,
                                  int timeout_ms);
/* Sends doc[len] on a new "report" stream and waits for the answer (into
 * answer[cap], NUL-terminated). Returns 0, or the RESET code the stream
 * ended with, or -1 on a timeout or a dead tunnel. */
int testagent_report(struct testagent *a, const char *doc, size_t len, char *answer,
                     size_t cap, int timeout_ms);
/* The next rbac document received (malloc'd, caller frees), waiting up to
 * timeout_ms; NULL if none came. */
char *testagent_next_rbac(struct testagent *a, int timeout_ms);
/* rbac documents received so far. */
int testagent_rbac_count(struct testagent *a);
/* Closes the tunnel, stops the thread, frees. NULL is a no-op. */
void testagent_stop(struct testagent *a);

#endif
