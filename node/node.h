/*
 * node.h: the storage node (`vecdb-node`): the nng RPC server that executes
 * every proto.h method on a local api_backend, and its metrics.
 *
 * The RPC server is an nng rep0 socket with a pool of nng_ctx workers,
 * each an aio state machine (recv -> handle -> send). Handlers run on the
 * aio callback thread and call the backend, which is thread-safe.
 */
#ifndef NODE_H
#define NODE_H

#include <stdint.h>
#include <stdio.h>

#include "api.h"

#define NODE_WORKERS_MIN 1
#define NODE_WORKERS_DEFAULT 8
#define NODE_WORKERS_MAX 1024
#define NODE_STOP_GRACE_MS 5000   /* wait for replies in flight at stop */
#define NODE_STOP_QUIET_MS 20     /* and for no request coming in */

/* RPC server settings; strings borrowed for the server's life. */
struct node_rpc_config {
	const char *url;          /* "tcp://127.0.0.1:7000"; port 0 picks one */
	const char *api_key;      /* NULL: no auth */
	const char *node_id;      /* reported by health */
	int replica;              /* refuse writes with FAILED_PRECONDITION */
	unsigned workers;         /* nng_ctx workers, clamped to _MIN.._MAX */
};

typedef struct node_rpc node_rpc;
struct repl_primary;

/* A storage node's replication role; pointers borrowed for the server's
 * life. */
struct node_repl {
	struct repl_primary *primary; /* serve FetchWal and bootstraps */
	const char *primary_url;      /* a replica's primary: named when it
					 refuses writes */
};

/*
 * Listen on cfg->url and start the workers. The backend is borrowed and
 * must outlive the server.
 * @return VECDB_OK, VECDB_EINVAL (bad url), VECDB_EIO (cannot listen: the
 *	message says why), VECDB_ENOMEM.
 */
int node_rpc_start(const struct node_rpc_config *cfg,
    const struct api_backend *b, node_rpc **out);

/*
 * As node_rpc_start, with a replication role (NULL: none). A primary's
 * FetchWal long-polls park without holding a worker: the server keeps
 * REPL_PARKED_MAX spare contexts for them. Call repl_primary_stop()
 * before node_rpc_stop() so parked polls answer at once.
 */
int node_rpc_start_repl(const struct node_rpc_config *cfg,
    const struct node_repl *repl, const struct api_backend *b,
    node_rpc **out);

/* The TCP port actually bound (useful with port 0); 0 if not TCP. */
uint16_t node_rpc_port(const node_rpc *r);

/*
 * Begin stopping: no receive is re-armed, and FetchWal polls, parked or
 * new, are dropped unanswered, so that a replica sends nothing more. A
 * primary calls it before repl_primary_stop(), which wakes the parked
 * polls. NULL is fine.
 */
void node_rpc_drain(node_rpc *r);

/*
 * Drain, let requests in flight send their replies until none has come
 * in for NODE_STOP_QUIET_MS (at most NODE_STOP_GRACE_MS in all), cancel
 * the receives still armed, then close the socket, its listener and
 * connections, and free. A primary's repl_primary_stop() must come
 * first. NULL is fine.
 */
void node_rpc_stop(node_rpc *r);

/*
 * Write the RPC metrics in the Prometheus text format:
 * vecdb_rpc_requests_total{method, code}. Safe from any thread.
 */
void node_rpc_metrics_write(node_rpc *r, FILE *f);

#endif /* NODE_H */
