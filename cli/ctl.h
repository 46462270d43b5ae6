/*
 * ctl: what every droverctl command shares: the loaded config and HTTPS
 * client, API calls that turn the server's error document into a message
 * and an exit code, output in the chosen format, and waiting for long work.
 *
 * Convention: a command returns CTL_OK, CTL_FAILED or CTL_USAGE; it prints
 * its own errors through ctl_err (stderr, "error: ..."), and results to
 * stdout only.
 */
#ifndef DROVER_CLI_CTL_H
#define DROVER_CLI_CTL_H

#include <jansson.h>
#include <stdbool.h>

#include "cli/args.h"
#include "cli/cfgfile.h"
#include "cli/http.h"
#include "cli/table.h"

enum ctl_format { FMT_TABLE, FMT_JSON, FMT_YAML };

struct ctl {
    enum ctl_format format;
    char config_path[4096];
    struct ctl_config cfg;
    bool have_client;
    struct http_client http;
};

void ctl_err(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Loads the config and sets up the client; CTL_OK, or CTL_FAILED after
 * saying why (not logged in, unreadable config). */
int ctl_connect(struct ctl *ctl);
void ctl_free(struct ctl *ctl);

/*
 * One API call with the stored token. body (JSON, may be NULL) is sent as
 * application/json. On 2xx returns CTL_OK with the decoded JSON in *out
 * (if out is not NULL; JSON null for an empty body). Otherwise prints the
 * server's message (or the transport error) and returns CTL_FAILED.
 * status (may be NULL) gets the HTTP status, 0 if none arrived.
 */
int ctl_call(struct ctl *ctl, const char *method, const char *path, json_t *body,
             json_t **out, int *status);
/* The same for a raw body and answer (ctype may be NULL); a->body on success. */
int ctl_call_raw(struct ctl *ctl, const char *method, const char *path, const char *ctype,
                 const char *body, size_t len, int out_fd, struct http_answer *a);
/* Prints the error an answer carries: the server's message when it sent
 * its error document, else the status and the start of the body. */
void ctl_server_error(const struct http_answer *a);

/* GET a whole list, following "next" cursors; CTL_OK with the array. */
int ctl_list(struct ctl *ctl, const char *path, json_t **items);

/* Resolves a cluster given by id or by name into id[64]. */
int ctl_cluster_id(struct ctl *ctl, const char *arg, char id[64]);

/* Prints j as JSON or YAML per the format; for table calls table_fn. */
int ctl_print(struct ctl *ctl, json_t *j, void (*table_fn)(json_t *j, struct table *t));

/* Shorthands for reading answers. "" for missing strings. */
const char *jstr(const json_t *j, const char *key);
/* A dotted path ("connection.via"); NULL if absent. */
json_t *jpath(const json_t *j, const char *path);

/* "5m", "3h", "2d" since an RFC 3339 time; "-" if unknown. */
void ctl_age(const char *rfc3339, char *buf, size_t cap);

/* Percent-encodes one path segment. */
void ctl_seg(const char *in, char *out, size_t cap);

/* Parses a non-negative decimal within [min, max] for flag name; prints a
 * usage error and returns -1 if it is not one. */
int ctl_int_flag(const struct args *a, const char *name, long min, long max, long *out);

/*
 * Polls path (GET) every second until state_key reaches one of the final
 * states ("done", "failed", or whatever done_fn decides), printing each new
 * state to stderr as "what: state". CTL_OK with the last document in *last
 * when it ends well, CTL_FAILED (with its "error" printed) when it fails.
 * timeout_s 0 means no limit.
 */
int ctl_wait(struct ctl *ctl, const char *path, const char *what,
             bool (*finished)(const json_t *doc, bool *ok, char *state, size_t cap),
             int timeout_s, json_t **last);

/* Prints the per-node results of a restore or upgrade ([{node,state,
 * message}]) as a table (or JSON/YAML), to stderr when it failed so the
 * nodes' messages accompany the error. */
void ctl_print_nodes(struct ctl *ctl, json_t *nodes, bool failed);

#endif
