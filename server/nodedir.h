/*
 * nodedir: which node agents every replica holds (docs/REPLICAS.md, "Node
 * tasks"), so a snapshot, restore, delete or upgrade that lands on one
 * replica reaches a node agent connected to another.
 *
 * Every second this replica writes the set of node agents it holds to the
 * peer_node_agents table when the set changed (and every 30 s anyway), and
 * reads back those of the other live replicas into memory. Installed as the
 * tunnels' node_remote hook: node tasks look up and open streams without
 * waiting on the datastore; a stream goes over the peer link addressed to
 * "<cluster>/<node>" (peers_open_node). The view may lag by a second: a
 * stream sent to a replica the agent just left is reset "unavailable" and
 * the task fails with that reason.
 *
 * Owns its cache and timer. Loop thread only.
 */
#ifndef DROVER_SERVER_NODEDIR_H
#define DROVER_SERVER_NODEDIR_H

#include "common/loop.h"
#include "server/db_pool.h"
#include "server/peers.h"
#include "server/tunnels.h"

struct nodedir;

/* Installs itself as ts's node_remote hook. NULL without memory. */
struct nodedir *nodedir_new(struct loop *l, struct tunnels *ts, struct peers *p,
                            const char *me);
/* The datastore is ready (starts the timer), or NULL: going away. */
void nodedir_set_pool(struct nodedir *nd, struct db_pool *pool);
/* Uninstalls and frees. Free the pool first. NULL is a no-op. */
void nodedir_free(struct nodedir *nd);

#endif
