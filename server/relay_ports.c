/*
 * relay_ports: local TCP ports that relay each accepted connection into a
 * new "tcp" stream to an address on a cluster's agent. Operators use them to
 * reach a service inside a cluster; the benchmarks use them so any TCP load
 * tool can measure the tunnel. Loopback addresses only: a relay port has no
 * authentication of its own.
 */
#include "server/relay_ports.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/conn.h"
#include "common/log.h"
#include "common/relay.h"

#define RELAY_MAX_PORTS 64

struct relay_port {
    struct listener *ls;
    struct relay_ports *owner;
    char cluster[64];
    char target[128];
    char listen[64];
};

struct relay_ports {
    struct loop *loop;
    struct tunnels *ts;
    struct relay_port ports[RELAY_MAX_PORTS];
    size_t n;
};

static const struct conn_ops idle_ops = { 0 };

static void on_accept(struct listener *ls, int fd, void *ud)
{
    struct relay_port *p = ud;
    (void)ls;
    struct tunnel *t = tunnels_for_cluster(p->owner->ts, p->cluster);
    if (!t) {
        log_warn("relay %s: cluster %s has no tunnel; closing the connection",
                 p->listen, p->cluster);
        close(fd);
        return;
    }
    struct conn *c = conn_adopt(p->owner->loop, fd, NULL, &idle_ops, NULL);
    if (!c)
        return;
    conn_pause_read(c);
    if (!relay_open(c, t, "tcp", p->target, strlen(p->target)))
        return;
    conn_resume_read(c);
}

/* One entry: LISTEN=CLUSTER/TARGET. */
static int parse_entry(const char *s, size_t n, struct relay_port *p, const char **why)
{
    char buf[256];
    if (n >= sizeof(buf)) {
        *why = "entry too long";
        return -1;
    }
    memcpy(buf, s, n);
    buf[n] = '\0';
    char *eq = strchr(buf, '='), *slash = eq ? strchr(eq, '/') : NULL;
    if (!eq || !slash) {
        *why = "expected LISTEN=CLUSTER/HOST:PORT";
        return -1;
    }
    *eq = '\0';
    *slash = '\0';
    if (strlen(buf) >= sizeof(p->listen) || strlen(eq + 1) >= sizeof(p->cluster) ||
        strlen(slash + 1) >= sizeof(p->target) || !eq[1] || !slash[1]) {
        *why = "a part is empty or too long";
        return -1;
    }
    /* Lengths were checked above. */
    memcpy(p->listen, buf, strlen(buf) + 1);
    memcpy(p->cluster, eq + 1, strlen(eq + 1) + 1);
    memcpy(p->target, slash + 1, strlen(slash + 1) + 1);
    return 0;
}

/*
 * Parses and checks every entry of spec into rp->ports (listeners not yet
 * bound) and their addresses. 0, or -1 with a message in err. One parser for
 * the settings check and for start-up, so both refuse the same things.
 */
static int parse_spec(const char *spec, struct relay_ports *rp, struct netaddr *addrs,
                      char *err, size_t errlen)
{
    for (const char *s = spec ? spec : ""; *s;) {
        size_t n = strcspn(s, ",");
        while (n && *s == ' ') {
            s++;
            n--;
        }
        if (n) {
            const char *why = NULL;
            struct relay_port *p = &rp->ports[rp->n];
            if (rp->n == RELAY_MAX_PORTS)
                why = "too many relay ports";
            else if (parse_entry(s, n, p, &why) == 0 &&
                     netaddr_parse(p->listen, &addrs[rp->n], &why) == 0 &&
                     !netaddr_is_loopback(&addrs[rp->n]))
                why = "relay ports listen on loopback addresses only";
            if (why) {
                snprintf(err, errlen, "%.*s: %s", (int)(n > 100 ? 100 : n), s, why);
                return -1;
            }
            p->owner = rp;
            rp->n++;
        }
        s += n;
        if (*s == ',')
            s++;
    }
    return 0;
}

const char *relay_ports_check(const char *spec)
{
    static __thread char msg[200];
    struct relay_ports *rp = calloc(1, sizeof(*rp));
    struct netaddr *addrs = calloc(RELAY_MAX_PORTS, sizeof(*addrs));
    const char *why = "out of memory";
    if (rp && addrs)
        why = parse_spec(spec, rp, addrs, msg, sizeof(msg)) < 0 ? msg : NULL;
    free(addrs);
    free(rp);
    return why;
}

struct relay_ports *relay_ports_new(struct loop *l, struct tunnels *ts, const char *spec,
                                    char *err, size_t errlen)
{
    struct relay_ports *rp = calloc(1, sizeof(*rp));
    struct netaddr *addrs = calloc(RELAY_MAX_PORTS, sizeof(*addrs));
    if (!rp || !addrs) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    rp->loop = l;
    rp->ts = ts;
    char msg[200];
    if (parse_spec(spec, rp, addrs, msg, sizeof(msg)) < 0) {
        snprintf(err, errlen, "tcp-relay %s", msg);
        goto fail;
    }
    for (size_t i = 0; i < rp->n; i++) {
        struct relay_port *p = &rp->ports[i];
        const char *why;
        if (!(p->ls = listener_new(l, &addrs[i], on_accept, p, &why))) {
            snprintf(err, errlen, "tcp-relay %s: %s", p->listen, why);
            goto fail;
        }
        log_info("relay port %s -> cluster %s, %s", p->listen, p->cluster, p->target);
    }
    free(addrs);
    return rp;
fail:
    free(addrs);
    relay_ports_free(rp);
    return NULL;
}

void relay_ports_free(struct relay_ports *rp)
{
    if (!rp)
        return;
    for (size_t i = 0; i < rp->n; i++)
        listener_free(rp->ports[i].ls);
    free(rp);
}
