/*
 * exec: `kubectl exec` in the kube-standin test stand-in. The "container"
 * knows two commands: `echo ARGS...` writes its arguments to stdout, `cat`
 * copies stdin to stdout until stdin is closed; anything else writes
 * "kube-standin: command not found: NAME" to stderr and exits 127. The exit
 * is reported as the real API does: a metav1.Status on the error channel,
 * Success, or Failure with reason NonZeroExitCode and the code in
 * details.causes (reason ExitCode), which kubectl turns into its own exit
 * code.
 *
 * Transports: a websocket with subprotocol v5.channel.k8s.io or
 * v4.channel.k8s.io (each message starts with its channel: 0 stdin, 1
 * stdout, 2 stderr, 3 status, 4 resize; v5 adds 255 "close channel N", which
 * is how stdin ends), or SPDY/3.1 with one stream per channel (kubectl before
 * 1.30), where a FIN on the stdin stream ends stdin.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "proto/ws.h"
#include "tests/kube-standin/spdy.h"
#include "tests/kube-standin/spdysess.h"
#include "tests/kube-standin/standin.h"
#include "tests/kube-standin/store.h"
#include "tests/kube-standin/upgrade.h"

enum { CH_STDIN = 0, CH_STDOUT = 1, CH_STDERR = 2, CH_ERROR = 3, CH_RESIZE = 4,
       CH_CLOSE = 255, NCH = 5 };
enum cmd_kind { CMD_ECHO, CMD_CAT, CMD_UNKNOWN };

struct exec_session {
    struct ks *ks;
    struct ws *ws;              /* one transport or the other */
    struct spdy_sess *spdy;
    int version;                /* websocket channel protocol: 4 or 5 */
    json_t *argv;
    enum cmd_kind kind;
    bool want[NCH];             /* which channels the client asked for */
    bool tty, started, done;
    uint32_t sid[NCH];          /* SPDY: the stream of each channel (0: none yet) */
    struct exec_session *prev, *next;
};

static void unlink_session(struct exec_session *e)
{
    if (e->prev)
        e->prev->next = e->next;
    else if (e->ks->execs == e)
        e->ks->execs = e->next;
    if (e->next)
        e->next->prev = e->prev;
}

static void session_free(struct exec_session *e)
{
    unlink_session(e);
    json_decref(e->argv);
    free(e);
}

/* ---- the "container" ---- */

static void out(struct exec_session *e, int ch, const void *p, size_t n)
{
    if (ch == CH_STDERR && e->tty)
        ch = CH_STDOUT;     /* a terminal has one output */
    if (!e->want[ch] || e->done || n == 0)
        return;
    if (e->ws) {
        uint8_t c = (uint8_t)ch;
        ws_send(e->ws, WS_OP_BINARY, &c, 1, p, n);
    } else if (e->spdy && e->sid[ch]) {
        spdy_sess_data(e->spdy, e->sid[ch], p, n, false);
    }
}

static json_t *exit_status(const struct exec_session *e, int code)
{
    if (code == 0)
        return json_pack("{s:{},s:s}", "metadata", "status", "Success");
    char cmd[1024] = "", msg[1200], num[16];
    size_t o = 0, i;
    json_t *a;
    json_array_foreach(e->argv, i, a) {
        int w = snprintf(cmd + o, sizeof(cmd) - o, "%s%s", o ? " " : "", json_string_value(a));
        if (w > 0 && (size_t)w < sizeof(cmd) - o)
            o += (size_t)w;
    }
    snprintf(msg, sizeof(msg), "command terminated with non-zero exit code: error executing "
             "command [%s], exit code %d", cmd, code);
    snprintf(num, sizeof(num), "%d", code);
    return json_pack("{s:{},s:s,s:s,s:s,s:{s:[{s:s,s:s}]}}", "metadata", "status", "Failure",
                     "message", msg, "reason", "NonZeroExitCode", "details", "causes",
                     "reason", "ExitCode", "message", num);
}

/* The command exited: report it and end the session (e is freed). */
static void finish(struct exec_session *e, int code)
{
    json_t *st = exit_status(e, code);
    char *text = json_dumps(st, JSON_COMPACT);
    json_decref(st);
    size_t n = text ? strlen(text) : 0;
    if (e->ws) {
        uint8_t c = CH_ERROR;
        ws_send(e->ws, WS_OP_BINARY, &c, 1, text, n);
        ws_close(e->ws, WS_CLOSE_NORMAL, "");
    } else if (e->spdy) {
        for (int ch = 0; ch < NCH; ch++)
            if (e->sid[ch] && ch != CH_ERROR)
                spdy_sess_data(e->spdy, e->sid[ch], NULL, 0, true);
        if (e->sid[CH_ERROR])
            spdy_sess_data(e->spdy, e->sid[CH_ERROR], text, n, true);
        spdy_sess_close(e->spdy);
    }
    free(text);
    e->done = true;
    session_free(e);
}

static void start(struct exec_session *e)
{
    e->started = true;
    if (e->kind == CMD_ECHO) {
        char line[8192] = "";
        size_t o = 0, i;
        json_t *a;
        json_array_foreach(e->argv, i, a) {
            if (i == 0)
                continue;
            int w = snprintf(line + o, sizeof(line) - o, "%s%s", o ? " " : "",
                             json_string_value(a));
            if (w > 0 && (size_t)w < sizeof(line) - o)
                o += (size_t)w;
        }
        line[o++] = '\n';
        out(e, CH_STDOUT, line, o);
        finish(e, 0);
    } else if (e->kind == CMD_CAT) {
        if (!e->want[CH_STDIN])
            finish(e, 0);   /* cat with no stdin reads EOF at once */
    } else {
        char msg[600];
        snprintf(msg, sizeof(msg), "kube-standin: command not found: %s\n",
                 json_string_value(json_array_get(e->argv, 0)));
        out(e, CH_STDERR, msg, strlen(msg));
        finish(e, 127);
    }
}

static void stdin_data(struct exec_session *e, const uint8_t *p, size_t n)
{
    if (e->started && e->kind == CMD_CAT)
        out(e, CH_STDOUT, p, n);
}

static void stdin_eof(struct exec_session *e)
{
    if (e->started && e->kind == CMD_CAT)
        finish(e, 0);
}

/* ---- websocket transport ---- */

static void w_message(struct ws *w, uint8_t opcode, const uint8_t *data, size_t len)
{
    struct exec_session *e = ws_ud(w);
    if (opcode != WS_OP_BINARY || len == 0)
        return;
    if (data[0] == CH_STDIN)
        stdin_data(e, data + 1, len - 1);
    else if (data[0] == CH_CLOSE && e->version >= 5 && len >= 2 && data[1] == CH_STDIN)
        stdin_eof(e);
    /* resize (4): a terminal size; nothing here draws on a terminal */
}

static void w_close(struct ws *w, const char *why)
{
    struct exec_session *e = ws_ud(w);
    log_debug("exec: client went away: %s", why);
    e->ws = NULL;
    session_free(e);
}

static const struct ws_ops exec_ws_ops = { .on_message = w_message, .on_close = w_close };

/* ---- SPDY transport ---- */

static int channel_of(const char *type)
{
    static const char *const names[NCH] = { "stdin", "stdout", "stderr", "error", "resize" };
    for (int i = 0; i < NCH; i++)
        if (strcmp(type, names[i]) == 0)
            return i;
    return -1;
}

static bool all_streams(const struct exec_session *e)
{
    for (int ch = 0; ch < NCH; ch++)
        if ((e->want[ch] || ch == CH_ERROR) && !e->sid[ch])
            return false;
    return true;
}

static int s_stream(void *ud, uint32_t id, const struct spdy_hdr_list *h, bool fin)
{
    struct exec_session *e = ud;
    int ch = channel_of(h->stream_type);
    (void)fin;
    if (ch < 0 || e->sid[ch])
        return -1;
    e->sid[ch] = id;
    return 0;
}

static void s_data(void *ud, uint32_t id, const uint8_t *p, size_t n)
{
    struct exec_session *e = ud;
    if (id == e->sid[CH_STDIN])
        stdin_data(e, p, n);
}

static void s_fin(void *ud, uint32_t id)
{
    struct exec_session *e = ud;
    if (id == e->sid[CH_STDIN] && e->sid[CH_STDIN])
        stdin_eof(e);
}

static void s_reset(void *ud, uint32_t id)
{
    s_fin(ud, id);
}

static void s_close(void *ud, const char *why)
{
    struct exec_session *e = ud;
    log_debug("exec: client went away: %s", why);
    e->spdy = NULL;
    session_free(e);
}

/* The command starts once every stream the client asked for is open, our
 * replies included (data sent before its reply would be dropped). */
static void s_replied(void *ud, uint32_t id)
{
    struct exec_session *e = ud;
    (void)id;
    if (!e->started && all_streams(e))
        start(e);
}

static const struct spdy_sess_ops exec_spdy_ops = {
    .on_stream = s_stream, .on_replied = s_replied, .on_data = s_data, .on_fin = s_fin,
    .on_reset = s_reset, .on_close = s_close,
};

/* ---- the request ---- */

/* Checks the request and fills e; false after answering. */
static bool prepare(struct kreq *k, struct exec_session *e)
{
    const struct kattrs *a = &k->a;
    const json_t *pod = store_get(k->ks->store, a->res, a->ns, a->name);
    char cbuf[256];
    if (!pod) {
        ks_reply_not_found(k, a->res, a->name);
        return false;
    }
    if (!pod_container(k, pod, cbuf, sizeof(cbuf)))
        return false;
    const char *phase = obj_str(pod, "status.phase");
    if (!phase || strcmp(phase, "Running") != 0) {
        ks_reply_status(k, 400, "BadRequest", NULL, "cannot exec into a container in a "
                        "completed pod; current phase is %s", phase ? phase : "Unknown");
        return false;
    }
    e->argv = ks_query_all(k, "command");
    if (json_array_size(e->argv) == 0) {
        ks_reply_status(k, 400, "BadRequest", NULL, "you must specify at least 1 command");
        return false;
    }
    e->want[CH_STDIN] = ks_query_bool(k, "stdin");
    e->want[CH_STDOUT] = ks_query_bool(k, "stdout");
    e->want[CH_STDERR] = ks_query_bool(k, "stderr");
    e->tty = ks_query_bool(k, "tty");
    e->want[CH_RESIZE] = e->tty;
    if (e->tty)
        e->want[CH_STDERR] = false;
    if (!e->want[CH_STDIN] && !e->want[CH_STDOUT] && !e->want[CH_STDERR]) {
        ks_reply_status(k, 400, "BadRequest", NULL,
                        "you must specify at least 1 of stdin, stdout, stderr");
        return false;
    }
    const char *cmd = json_string_value(json_array_get(e->argv, 0));
    e->kind = strcmp(cmd, "echo") == 0 ? CMD_ECHO : strcmp(cmd, "cat") == 0 ? CMD_CAT
                                                                            : CMD_UNKNOWN;
    return true;
}

void h_exec(struct kreq *k)
{
    static const char *const ws_protos[] = { "v5.channel.k8s.io", "v4.channel.k8s.io", NULL };
    static const char *const spdy_protos[] = { "v4.channel.k8s.io", "v5.channel.k8s.io", NULL };
    struct ks *ks = k->ks;
    struct exec_session *e = calloc(1, sizeof(*e));
    if (!e) {
        ks_reply_status(k, 500, "InternalError", NULL, "out of memory");
        return;
    }
    e->ks = ks;
    if (!prepare(k, e)) {
        json_decref(e->argv);
        free(e);
        return;
    }
    enum upgrade_kind kind = upgrade_kind(k);
    const char *proto = kind == UP_WEBSOCKET ? upgrade_pick(k, ws_protos)
                        : kind == UP_SPDY    ? upgrade_pick(k, spdy_protos) : NULL;
    if (!proto) {
        json_decref(e->argv);
        free(e);
        ks_reply_status(k, 400, "BadRequest", NULL, "Upgrade request required: exec takes a "
                        "websocket (v5.channel.k8s.io or v4.channel.k8s.io) or SPDY/3.1");
        return;
    }
    e->version = proto[1] - '0';
    e->next = ks->execs;
    if (ks->execs)
        ks->execs->prev = e;
    ks->execs = e;
    if (kind == UP_WEBSOCKET) {
        e->ws = upgrade_websocket(k, proto, 1u << 20);     /* k is gone now */
        if (!e->ws) {
            session_free(e);
            return;
        }
        ws_set_ops(e->ws, &exec_ws_ops);
        ws_set_ud(e->ws, e);
        conn_resume_read(ws_conn(e->ws));
        start(e);
        return;
    }
    struct conn *c = upgrade_spdy(k, proto);
    e->spdy = c ? spdy_sess_on_conn(c, &exec_spdy_ops, e) : NULL;
    if (!e->spdy)
        session_free(e);
}

void exec_shutdown_all(struct ks *ks)
{
    while (ks->execs) {
        struct exec_session *e = ks->execs;
        if (e->ws)
            ws_close(e->ws, WS_CLOSE_GOING_AWAY, "shutting down");
        if (e->spdy)
            spdy_sess_close(e->spdy);
        session_free(e);
    }
}
