/*
 * kube-standin main: flags, start-up and clean shutdown of the STAND-IN
 * Kubernetes API server that drover's tests run against (see standin.h).
 * It is test code: it never ships and is never used outside the tests.
 *
 *   kube-standin --data-dir DIR [--listen 127.0.0.1:0] [--port-file F]
 *                [--token NAME=TOKEN]... [--admin USER]... [--audit FILE]
 *                [--nodes 3] [--version v1.31.0] [--watch-history 1000]
 *
 * On start it prints one line to stdout, "kube-standin: listening on
 * 127.0.0.1:PORT ca=DIR/ca.crt", and writes the port to --port-file (written
 * whole, then renamed into place, so a reader never sees half a number).
 * Flags are read with getopt_long rather than common/config because --token
 * and --admin repeat. README.md says what it serves and how it simplifies.
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/conn.h"
#include "common/hmap.h"
#include "common/log.h"
#include "common/netaddr.h"
#include "common/tls.h"
#include "tests/kube-standin/standin.h"
#include "tests/kube-standin/store.h"

#define FIRST_RV 1000   /* real resourceVersions never start at 1 */

static void usage(FILE *f)
{
    fprintf(f,
            "usage: kube-standin --data-dir DIR [options]\n"
            "A stand-in Kubernetes API server for drover's tests (test use only).\n"
            "  --listen HOST:PORT      address to listen on (default 127.0.0.1:0)\n"
            "  --port-file FILE        write the bound port here\n"
            "  --data-dir DIR          CA and serving certificate (created if missing)\n"
            "  --token NAME=TOKEN      a bearer token and the user it is (repeatable)\n"
            "  --admin USER            bind USER to cluster-admin (repeatable)\n"
            "  --audit FILE            append one JSON line per request\n"
            "  --nodes N               nodes to report (default 3)\n"
            "  --version V             gitVersion of /version and the kubelets (v1.31.0)\n"
            "  --watch-history N       changes a watch can resume across (default 1000)\n"
            "  --log-level LEVEL       error, warn, info or debug (default info)\n");
}

static int parse_args(struct ks *ks, int argc, char **argv)
{
    static const struct option opts[] = {
        { "listen", required_argument, 0, 'l' }, { "port-file", required_argument, 0, 'p' },
        { "data-dir", required_argument, 0, 'd' }, { "token", required_argument, 0, 't' },
        { "admin", required_argument, 0, 'a' }, { "audit", required_argument, 0, 'u' },
        { "nodes", required_argument, 0, 'n' }, { "version", required_argument, 0, 'v' },
        { "watch-history", required_argument, 0, 'w' },
        { "log-level", required_argument, 0, 'L' }, { "help", no_argument, 0, 'h' },
        { 0, 0, 0, 0 } };
    struct ks_opts *o = &ks->o;
    o->listen = "127.0.0.1:0";
    o->version = "v1.31.0";
    o->nodes = 3;
    o->watch_history = 1000;
    int c;
    char *end;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 'l': o->listen = optarg; break;
        case 'p': o->port_file = optarg; break;
        case 'd': o->data_dir = optarg; break;
        case 'u': o->audit = optarg; break;
        case 'v': o->version = optarg; break;
        case 't': {
            char *eq = strchr(optarg, '=');
            if (!eq || eq == optarg || !eq[1] || o->ntokens == KS_MAX_TOKENS) {
                fprintf(stderr, "kube-standin: --token wants NAME=TOKEN\n");
                return 2;
            }
            *eq = '\0';     /* argv is ours to split */
            o->tokens[o->ntokens++] = (struct ks_token){ optarg, eq + 1 };
            break;
        }
        case 'a':
            if (o->nadmins == KS_MAX_ADMINS) {
                fprintf(stderr, "kube-standin: at most %d --admin users\n", KS_MAX_ADMINS);
                return 2;
            }
            o->admins[o->nadmins++] = optarg;
            break;
        case 'n':
            o->nodes = (int)strtol(optarg, &end, 10);
            if (*end || o->nodes < 1 || o->nodes > 100) {
                fprintf(stderr, "kube-standin: --nodes wants 1..100\n");
                return 2;
            }
            break;
        case 'w':
            o->watch_history = (size_t)strtoul(optarg, &end, 10);
            if (*end || o->watch_history < 1) {
                fprintf(stderr, "kube-standin: --watch-history wants a positive number\n");
                return 2;
            }
            break;
        case 'L': {
            enum log_level lvl;
            if (log_parse_level(optarg, &lvl) < 0) {
                fprintf(stderr, "kube-standin: bad --log-level\n");
                return 2;
            }
            log_set_level(lvl);
            break;
        }
        case 'h':
            usage(stdout);
            return 1;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (optind != argc || !o->data_dir) {
        usage(stderr);
        return 2;
    }
    return 0;
}

static int write_port_file(const char *path, int port)
{
    char tmp[4200];
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    if (!f)
        return -1;
    fprintf(f, "%d\n", port);
    if (fclose(f) != 0 || rename(tmp, path) < 0)
        return -1;
    return 0;
}

static int start(struct ks *ks, struct tls_pki *pki)
{
    char err[512];
    const char *why;
    struct netaddr addr;
    if (netaddr_parse(ks->o.listen, &addr, &why) < 0) {
        log_error("bad --listen %s: %s", ks->o.listen, why);
        return -1;
    }
    if (tls_pki_ensure(ks->o.data_dir, NULL, 0, pki, err, sizeof(err)) < 0) {
        log_error("certificates: %s", err);
        return -1;
    }
    ks->tls = tls_server_ctx(pki->cert_file, pki->key_file, err, sizeof(err));
    ks->loop = loop_new();
    ks->store = store_new(ks->o.watch_history, FIRST_RV);
    ks->inflight = hmap_new();
    if (!ks->tls || !ks->loop || !ks->store || !ks->inflight) {
        log_error("start-up failed: %s", ks->tls ? "out of memory" : err);
        return -1;
    }
    if (audit_open(ks) < 0 || watch_init(ks) < 0 || ctl_start(ks) < 0 || seed_all(ks) < 0)
        return -1;
    /* A watch or an exec session may sit idle for long: the idle timeout only
     * applies between requests, which kubectl keeps alive for a while. */
    struct hs_cfg cfg = { .max_head = 64 * 1024, .idle_timeout_ms = 90000,
                          .on_answered = ks_on_answered };
    ks->http = hs_new(ks->loop, ks->tls, &cfg, ks_dispatch, ks);
    if (!ks->http || hs_listen(ks->http, &addr, &why) < 0) {
        log_error("cannot listen on %s: %s", ks->o.listen, ks->http ? why : "out of memory");
        return -1;
    }
    ks->port = hs_port(ks->http);
    if (ks->o.port_file && write_port_file(ks->o.port_file, ks->port) < 0) {
        log_error("cannot write %s: %s", ks->o.port_file, strerror(errno));
        return -1;
    }
    const char *colon = strrchr(ks->o.listen, ':');
    int hl = colon ? (int)(colon - ks->o.listen) : 0;
    printf("kube-standin: listening on %.*s:%d ca=%s/ca.crt\n", hl, ks->o.listen, ks->port,
           ks->o.data_dir);
    fflush(stdout);
    log_info("listening on port %d (nodes=%d version=%s tokens=%zu)", ks->port, ks->o.nodes,
             ks->o.version, ks->o.ntokens);
    return 0;
}

static void on_flush_done(struct loop_timer *t)
{
    loop_stop(*(struct loop **)(t + 1));
}

/* Lets closing connections send their last bytes (close frames, last chunk). */
static void flush_briefly(struct loop *l)
{
    struct {
        struct loop_timer t;
        struct loop *l;
    } ft = { .l = l };
    loop_timer_start(l, &ft.t, 200, on_flush_done);
    loop_run(l);
    loop_timer_stop(l, &ft.t);
}

static void free_inflight(const char *key, void *val, void *ud)
{
    (void)key;
    (void)ud;
    kreq_free(val);
}

static void shutdown_all(struct ks *ks, struct tls_pki *pki)
{
    ks->stopping = true;
    hs_free(ks->http);      /* answers nothing more; requests in flight are dropped */
    if (ks->loop) {
        kstream_shutdown_all(ks);
        exec_shutdown_all(ks);
        pf_shutdown_all(ks);
        flush_briefly(ks->loop);
        conn_close_all();
        loop_free(ks->loop);
    }
    if (ks->inflight) {
        hmap_each(ks->inflight, free_inflight, NULL);
        hmap_free(ks->inflight);
    }
    store_free(ks->store);
    if (ks->tls)
        SSL_CTX_free(ks->tls);
    if (ks->audit_fd >= 0)
        close(ks->audit_fd);
    tls_pki_free(pki);
}

int main(int argc, char **argv)
{
    struct ks ks = { .audit_fd = -1 };
    struct tls_pki pki = { 0 };
    log_init("kube-standin", LOG_INFO);
    int rc = parse_args(&ks, argc, argv);
    if (rc)
        return rc == 1 ? 0 : 2;
    signal(SIGPIPE, SIG_IGN);
    if (start(&ks, &pki) < 0 || loop_stop_on_signals(ks.loop) < 0) {
        shutdown_all(&ks, &pki);
        return 1;
    }
    loop_run(ks.loop);
    if (loop_stopped_by(ks.loop))
        log_info("received %s, shutting down", strsignal(loop_stopped_by(ks.loop)));
    shutdown_all(&ks, &pki);
    log_info("stopped");
    return 0;
}
