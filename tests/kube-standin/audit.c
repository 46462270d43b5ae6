/*
 * audit: the kube-standin test stand-in's audit file, one JSON object per
 * line and per request, so tests can check what the stand-in saw: which
 * token was used (its user name, never the token), who the request acted as
 * after impersonation and who impersonated, and the answer's status code.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "common/log.h"
#include "tests/kube-standin/standin.h"

int audit_open(struct ks *ks)
{
    ks->audit_fd = -1;
    if (!ks->o.audit)
        return 0;
    ks->audit_fd = open(ks->o.audit, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (ks->audit_fd < 0) {
        log_error("cannot open the audit file %s: %s", ks->o.audit, strerror(errno));
        return -1;
    }
    return 0;
}

static void timestamp(char out[40])
{
    struct timeval tv;
    struct tm tm;
    gettimeofday(&tv, NULL);
    gmtime_r(&tv.tv_sec, &tm);
    size_t n = strftime(out, 40, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(out + n, 40 - n, ".%06ldZ", (long)tv.tv_usec);
}

void audit_record(struct ks *ks, const struct kreq *k, int status)
{
    if (ks->audit_fd < 0)
        return;
    char ts[40];
    timestamp(ts);
    const struct kattrs *a = &k->a;
    json_t *rec = json_pack("{s:s,s:s,s:s,s:s,s:s?,s:s?,s:O?,s:s?,s:i}", "time", ts,
                            "method", k->method, "path", k->path ? k->path : "",
                            "query", k->query ? k->query : "", "token", k->token_name,
                            "user", k->user.name, "groups", k->user.groups,
                            "impersonatedBy", k->impersonator, "status", status);
    if (!rec)
        return;
    if (a->resource) {
        json_object_set_new(rec, "verb", json_string(a->verb));
        json_object_set_new(rec, "resource", json_string(a->resname));
        if (a->ns[0])
            json_object_set_new(rec, "namespace", json_string(a->ns));
        if (a->name[0])
            json_object_set_new(rec, "name", json_string(a->name));
        if (a->sub[0])
            json_object_set_new(rec, "subresource", json_string(a->sub));
    }
    char *line = json_dumps(rec, JSON_COMPACT);
    json_decref(rec);
    if (!line)
        return;
    size_t n = strlen(line);
    line[n] = '\n';
    /* One write per record: O_APPEND keeps lines whole for concurrent readers. */
    if (write(ks->audit_fd, line, n + 1) < 0)
        log_warn("audit write failed: %s", strerror(errno));
    free(line);
}
