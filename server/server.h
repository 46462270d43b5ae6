/*
 * server: drover-server's process-wide state, shared by its modules.
 * One instance, created by main and owned by it.
 */
#ifndef DROVER_SERVER_H
#define DROVER_SERVER_H

#include <openssl/ssl.h>

#include "common/config.h"
#include "common/loop.h"
#include "common/tls.h"
#include "server/api.h"
#include "server/api_snapshots.h"
#include "server/datastore.h"
#include "server/http_server.h"
#include "server/leases.h"
#include "server/linkstate.h"
#include "server/peers.h"
#include "server/rbacpush.h"
#include "server/reports.h"
#include "server/relay_ports.h"
#include "server/snapschedule.h"
#include "server/snapshots.h"
#include "server/upgrade.h"
#include "server/tunnels.h"

struct server {
    struct loop *loop;
    bool serving;               /* datastore up and start-up fix-ups done: /readyz */
    struct cfg cfg;
    struct tls_pki pki;
    SSL_CTX *tls;
    struct hs *https;
    struct tunnels *tunnels;
    struct relay_ports *relays;
    struct loop_timer trim;     /* periodic malloc_trim */
    struct datastore *ds;       /* until ready, /readyz and the API say 503 */
    struct api *api;
    struct reports *reports;    /* the agents' "report" streams */
    struct rbacpush *rbac;      /* RBAC bindings pushed to cluster agents */
    struct linkstate *ls;       /* once the datastore is ready */
    struct db_pool *pool;       /* likewise (owned by ds) */
    struct peers *peers;        /* several replicas (docs/REPLICAS.md), else NULL */
    struct nodedir *nodedir;    /* the other replicas' node agents, else NULL */
    struct lease *ctl;          /* the run-once controllers' lease */
    char peer_id[64];           /* this replica (also the lease holder name) */
    char *peer_token;           /* from peer-token-file; NULL on a single server */
    size_t peer_token_len;
    struct snapshots *snaps;    /* etcd snapshots over node agents */
    struct snapschedule *snapsched;
    struct upgrades *upgrades;
    struct snapapi *snapapi;    /* their /v3 endpoints */
    char server_url[512];
    bool fatal;                 /* stopped because start-up failed */
};

/* Routes one HTTPS request (server/routes.c). */
void server_dispatch(struct hs_req *r, void *ud);

#endif
