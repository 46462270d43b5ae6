/*
 * audit: the audit trail of drover-server. One JSON object per line for
 * every API mutation (and refused attempt at one) and every proxied kube
 * request: when it arrived, who, which cluster, method, path, status,
 * duration and the client's address. Never headers, bodies or query strings,
 * so no credential can reach the file.
 *
 * The loop thread only formats a line into a bounded buffer; a writer
 * thread of its own does the file I/O. A slow or full disk therefore never
 * stalls the loop: when the buffer is full, records are dropped and counted
 * (drover_audit_dropped_total in /metrics). SIGHUP makes the writer reopen
 * the file (for logrotate).
 *
 * Process-wide, like the log: audit_open() once from main before any other
 * thread starts, audit_close() at exit. Without audit_open() (or with an
 * empty target) audit_record() is a no-op.
 */
#ifndef DROVER_SERVER_AUDIT_H
#define DROVER_SERVER_AUDIT_H

#include <stddef.h>
#include <stdint.h>

/* Pending bytes the writer may lag behind before records are dropped. */
#define AUDIT_BUFFER_MAX (1024u * 1024)

/*
 * target: a file path (appended to, created 0600), "-" for stderr, or ""
 * or NULL for off. Installs the SIGHUP handler either way. 0, or -1 with a
 * message in err (the file cannot be opened, no thread).
 */
int audit_open(const char *target, char *err, size_t errlen);
/* Writes what is buffered, stops the writer, closes the file. */
void audit_close(void);

struct audit_rec {
    const char *kind;           /* "api" or "kube" */
    const char *user;           /* NULL or "": not authenticated */
    const char *cluster;        /* NULL: none */
    const char *method;
    const char *path;           /* not NUL-terminated: path_len bytes */
    size_t path_len;
    int status;
    uint64_t duration_us;
    const char *remote;         /* "ip:port" */
};

/* Loop thread: queues one line (time = now minus the duration). */
void audit_record(const struct audit_rec *r);

/* Lines written, and lines lost (buffer full or a failed write). */
uint64_t audit_written(void);
uint64_t audit_dropped(void);
/* Whether records are being kept. */
int audit_enabled(void);

#endif
