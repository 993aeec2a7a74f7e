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
#include "proto.h"

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
struct repl_follower_status;

/* ===== Snapshot files over the RPC (node_snapfile.c) ===== */

struct node_uploads;
int node_uploads_new(struct node_uploads **out);
/* Remove every upload's temp file. NULL is fine. */
void node_uploads_free(struct node_uploads *u);

/* SNAPSHOT_READ: a piece of b's snapshot file, encoded as SnapshotData. */
int node_snapshot_read(const struct api_backend *b,
    const struct proto_snapshot_read *q, uint8_t **body, size_t *len);

/* SNAPSHOT_UPLOAD: a piece of a file in order; the last one restores
 * q->collection from the whole file (b->snapshot_restore_file). */
int node_snapshot_upload(struct node_uploads *u, const struct api_backend *b,
    const struct proto_snapshot_upload *q);

/* ===== Replication role (node_role.c) ===== */

#define NODE_WC_TIMEOUT_DEFAULT_MS 5000  /* --write-concern-timeout-ms */
#define NODE_WC_TIMEOUT_MAX_MS 600000
#define NODE_MIN_REPLICAS_MAX 63         /* API_WRITE_CONCERN_MAX */
#define NODE_RETIRED_MAX 64              /* primary roles kept until exit */

/* Role settings; strings borrowed for the role's life. */
struct node_role_config {
	vecdb *db;
	const char *data_dir;        /* bootstrap copies, both ways */
	const char *node_id;         /* how a primary names us */
	const char *api_key;         /* sent to the primary we follow */
	uint64_t wal_max_bytes;      /* a primary's WAL bound for replicas */
	const char *primary_url;     /* non-NULL: start as its replica */
	uint32_t min_replicas;       /* every write waits for this many */
	uint32_t wc_timeout_ms;      /* ... at most this long */
};

/*
 * A node's replication role, which changes at run time: a primary
 * (serving FetchWal through a repl_primary, taking writes) or a replica
 * (a repl_follower of some primary, refusing writes), and the term. A
 * primary that learns of a newer term is fenced: it refuses writes at
 * once and until it is told to follow. Thread-safe.
 */
typedef struct node_role node_role;

/* What a role is now. */
struct node_role_status {
	int primary;                 /* 1: primary (maybe fenced) */
	int fenced;                  /* a primary that heard of a newer term */
	uint64_t term;               /* the highest term this node knows */
	char primary_url[PROTO_URL_MAX + 1]; /* a replica's primary, or "" */
	uint64_t dropped;            /* records dropped to rejoin a primary's
					history, since start */
};

/*
 * Start as cfg->primary_url says (a follower, or a repl_primary).
 * @return VECDB_OK, VECDB_EINVAL (bad url), VECDB_ENOMEM, VECDB_EIO.
 */
int node_role_start(const struct node_role_config *cfg, node_role **out);

/* Stop the follower or the primary role (parked polls answer now); call
 * before node_rpc_stop(). */
void node_role_stop(node_role *r);

/* Free, with every primary role it ever ran: after vecdb_close(), since
 * the writer may run a primary's commit hook until then. NULL is fine. */
void node_role_free(node_role *r);

/* VECDB_OK when this node takes writes; else VECDB_EREADONLY, the message
 * naming the primary to write to. */
int node_role_writable(node_role *r);

/* The primary role serving FetchWal, or NULL. Borrowed: valid until
 * node_role_free (a primary role that stepped down stays allocated). */
struct repl_primary *node_role_primary(node_role *r);

/*
 * Become primary (PROMOTE): stop following, start term max(own term,
 * min_term) + 1, serve replication and take writes. A primary (not
 * fenced) keeps its term unless min_term >= it (then it starts a newer
 * one as above). Slow (stops the follower): not from a latency-critical
 * thread.
 * @param[out] term, last_seq the term now and the last seq.
 * @return VECDB_OK, VECDB_EIO, VECDB_ENOMEM, VECDB_ECLOSED.
 */
int node_role_promote(node_role *r, uint64_t min_term, uint64_t *term,
    uint64_t *last_seq);

/*
 * Follow @p url in @p term (FOLLOW): a replica switches to it; a primary
 * of an older term steps down (refuses writes at once, answers its parked
 * polls, follows url). A follower whose history left url's rejoins it
 * (docs/REPLICATION.md).
 * @return VECDB_OK, VECDB_EREADONLY ("stale term": term is below ours, or
 *	equal to ours on a primary), VECDB_EINVAL (bad url), VECDB_ENOMEM.
 */
int node_role_follow(node_role *r, const char *url, uint64_t term);

/* A replica showed us @p term: if newer than ours, note it and, if we are
 * primary, fence. */
void node_role_fence(node_role *r, uint64_t term);

void node_role_status_get(node_role *r, struct node_role_status *out);

/* The write concern: how many replicas a write waits for (at least
 * min_replicas), and for how long. */
uint32_t node_role_min_replicas(const node_role *r);
uint32_t node_role_wc_timeout_ms(const node_role *r);

/* The database's last seq now (0 on error). */
uint64_t node_role_last_seq(node_role *r);

/* A replica's follower status: 1 with *out filled, 0 when not following. */
int node_role_follower_status(node_role *r, struct repl_follower_status *out);

/* /ready: a primary not fenced, or a replica caught up. */
int node_role_ready(node_role *r);

/* The role's metrics: the primary's or the follower's, the term,
 * vecdb_replica_dropped_records_total. */
void node_role_metrics_write(node_role *r, FILE *f);

/* ===== RPC server (node_rpc.c) ===== */

/* A storage node's replication role; borrowed for the server's life. */
struct node_repl {
	node_role *role;
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
 * As node_rpc_start, with a replication role (NULL: none): the server
 * then refuses writes the role does not take, answers FetchWal and the
 * bootstrap methods as a primary, PROMOTE and FOLLOW, and makes writes
 * wait for the write concern. Long-polls and writes waiting for replicas
 * park without holding a worker: the server keeps REPL_PARKED_MAX spare
 * contexts for them. Call node_role_stop() before node_rpc_stop() so
 * parked requests answer at once.
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
