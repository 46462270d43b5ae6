/*
 * relay_ports: loopback TCP ports that relay into cluster streams
 * (setting tcp-relay: "LISTEN=CLUSTER/HOST:PORT[,...]"). See relay_ports.c.
 */
#ifndef DROVER_RELAY_PORTS_H
#define DROVER_RELAY_PORTS_H

#include <stddef.h>

#include "common/loop.h"
#include "server/tunnels.h"

struct relay_ports;

/* Validates a tcp-relay value without binding anything: NULL if fine, else a
 * reason (for the settings check). */
const char *relay_ports_check(const char *spec);
/* Binds every port in spec (may be NULL or empty). NULL with err on failure. */
struct relay_ports *relay_ports_new(struct loop *l, struct tunnels *ts, const char *spec,
                                    char *err, size_t errlen);
void relay_ports_free(struct relay_ports *rp);

#endif
