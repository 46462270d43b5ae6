/*
 * report_doc: the document of a "report" stream (docs/PROTOCOL.md services;
 * the cluster agent's view of its cluster), parsed and checked, and turned
 * into what the store writes: the node capacities summed, the health as a
 * Ready condition, each node's parts as JSON text.
 *
 * Pure: no I/O, no database. Unknown fields are ignored (newer agents may
 * send more); a known field of the wrong type or out of its limits fails
 * the whole document with a message for the agent.
 */
#ifndef DROVER_SERVER_REPORT_DOC_H
#define DROVER_SERVER_REPORT_DOC_H

#include <stddef.h>
#include <stdint.h>

#include "server/store.h"

#define REPORT_MAX_DOC      (16u * 1024 * 1024)
#define REPORT_MAX_NODES    10000
#define REPORT_MAX_EVENTS   STORE_EVENTS_KEEP   /* newest first: the rest are dropped */
#define REPORT_HEALTH_MAX   200                 /* bytes of the health text kept */

struct report_doc {
    struct store_report r;      /* points into the rest of this struct */
    void *priv;                 /* the parsed document and the texts made from it */
};

/*
 * Parses buf[len]. 0 with *out (the caller's, for report_doc_free), or -1
 * with a message in err (JSON syntax, or which field is wrong). Nodes get
 * agent_connected false: the caller knows the live tunnels.
 */
int report_doc_parse(const uint8_t *buf, size_t len, struct report_doc **out, char *err,
                     size_t errlen);
/* NULL is a no-op. */
void report_doc_free(struct report_doc *d);

/* "2026-11-24T18:00:00Z" / "...:00.123Z" / "...+02:00" as unix ms; -1 if
 * not an RFC 3339 time. */
int64_t report_parse_time(const char *s);

#endif
