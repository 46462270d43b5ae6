/*
 * upgrade: the "upgrade" node task (docs/PROTOCOL.md §11). Runs
 * DROVER_UPGRADE_HOOK VERSION (also DROVER_UPGRADE_VERSION in its
 * environment) and answers {ok, exitCode, output} with the output's tail.
 */
#include <stdio.h>
#include <string.h>

#include "common/log.h"
#include "node-agent/ntask.h"

#define VERSION_MAX 64

static void upgraded(struct ntask *t, int status, const char *out, size_t len)
{
    char tail[NTASK_OUTPUT];
    ntask_output_tail(out, len, tail, sizeof(tail));
    log_info("upgrade hook ended with status %d", status);
    if (status != 0) {
        ntask_answer(t, json_pack("{s:b,s:i,s:s,s:s}", "ok", 0, "exitCode", status,
                                  "output", tail, "error",
                                  status == CHILDPROC_TIMEOUT ? "DROVER_UPGRADE_HOOK timed out"
                                                              : "DROVER_UPGRADE_HOOK failed"),
                     -1, 0);
        return;
    }
    ntask_answer(t, json_pack("{s:b,s:i,s:s}", "ok", 1, "exitCode", 0, "output", tail), -1, 0);
}

static bool valid_version(const char *v)
{
    size_t n = v ? strlen(v) : 0;
    if (n == 0 || n > VERSION_MAX)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = v[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '-' || c == '+' || c == '_'))
            return false;
    }
    return true;
}

void upgrade_serve(void *ud, struct loop *l, struct tun_stream *s, const uint8_t *meta,
                   size_t len)
{
    const struct nodecfg *c = ud;
    struct ntask *t = ntask_accept(l, c, s, meta, len, false);
    if (!t)
        return;
    const char *version = json_string_value(json_object_get(t->meta, "version"));
    if (!valid_version(version)) {
        ntask_fail(t, "the upgrade task needs a version (letters, digits, . - + _)");
        return;
    }
    snprintf(t->id, sizeof(t->id), "upgrade");
    if (!c->upgrade_hook) {
        ntask_fail(t, "no DROVER_UPGRADE_HOOK is set on node %s", c->node_name);
        return;
    }
    static char e_ver[VERSION_MAX + 32], e_node[120];
    snprintf(e_ver, sizeof(e_ver), "DROVER_UPGRADE_VERSION=%s", version);
    snprintf(e_node, sizeof(e_node), "DROVER_NODE_NAME=%s", c->node_name);
    const char *env[] = { e_ver, e_node, NULL };
    const char *argv[] = { c->upgrade_hook, version, NULL };
    ntask_run(t, argv, env, upgraded);
}
