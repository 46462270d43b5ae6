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

const char *relay_ports_check(const char *spec)
{
    static __thread char msg[160];
    struct relay_port p;
    size_t count = 0;
    for (const char *s = spec; *s;) {
        size_t n = strcspn(s, ",");
        const char *why;
        while (n && (*s == ' ')) {
            s++;
            n--;
        }
        if (n && parse_entry(s, n, &p, &why) < 0) {
            snprintf(msg, sizeof(msg), "%s", why);
            return msg;
        }
        struct netaddr a;
        if (n && netaddr_parse(p.listen, &a, &why) < 0) {
            snprintf(msg, sizeof(msg), "listen address %s: %s", p.listen, why);
            return msg;
        }
        if (n && !netaddr_is_loopback(&a))
            return "relay ports listen on loopback addresses only";
        if (n && ++count > RELAY_MAX_PORTS)
            return "too many relay ports";
        s += n;
        if (*s == ',')
            s++;
    }
    return NULL;
}

struct relay_ports *relay_ports_new(struct loop *l, struct tunnels *ts, const char *spec,
                                    char *err, size_t errlen)
{
    struct relay_ports *rp = calloc(1, sizeof(*rp));
    if (!rp) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    rp->loop = l;
    rp->ts = ts;
    for (const char *s = spec ? spec : ""; *s;) {
        size_t n = strcspn(s, ",");
        const char *why;
        while (n && *s == ' ') {
            s++;
            n--;
        }
        if (n) {
            struct relay_port *p = &rp->ports[rp->n];
            struct netaddr a;
            if (rp->n == RELAY_MAX_PORTS || parse_entry(s, n, p, &why) < 0 ||
                netaddr_parse(p->listen, &a, &why) < 0 ||
                !(p->ls = listener_new(l, &a, on_accept, p, &why))) {
                snprintf(err, errlen, "tcp-relay %.*s: %s", (int)n, s,
                         rp->n == RELAY_MAX_PORTS ? "too many" : why);
                relay_ports_free(rp);
                return NULL;
            }
            p->owner = rp;
            rp->n++;
            log_info("relay port %s -> cluster %s, %s", p->listen, p->cluster, p->target);
        }
        s += n;
        if (*s == ',')
            s++;
    }
    return rp;
}

void relay_ports_free(struct relay_ports *rp)
{
    if (!rp)
        return;
    for (size_t i = 0; i < rp->n; i++)
        listener_free(rp->ports[i].ls);
    free(rp);
}
