/*
 * api_rpc.h: the binary API server: every proto.h method over nng rep0,
 * executed on an api_backend. Storage nodes serve it over the local
 * backend, routers over the cluster backend (docs/WIRE.md).
 *
 * Threading: nng's aio callbacks only move messages. A receive that
 * completes hands its request to a pool of handler threads of our own,
 * which decode it, call the backend (which may block on LMDB, fsync or,
 * in a router, a fan-out to shards) and send the reply; so no nng thread
 * ever waits on our work, and a router's nested calls cannot starve the
 * nng task threads their own replies need.
 *
 * Replication is not the server's business: a node that has a role plugs
 * it in through struct api_rpc_ext (node/node.h builds one), which takes
 * the replication methods, refuses writes the role does not take and
 * makes writes wait for their replicas. A handler that must wait for
 * something (a FetchWal long-poll) parks its call with api_rpc_park
 * instead of holding a thread.
 */
#ifndef API_RPC_H
#define API_RPC_H

#include <stdint.h>
#include <stdio.h>

#include "api.h"
#include "proto.h"
#include "proto_rpc.h"

#define API_RPC_WORKERS_MIN 1
#define API_RPC_WORKERS_DEFAULT 8
#define API_RPC_WORKERS_MAX 1024
#define API_RPC_STOP_GRACE_MS 5000   /* wait for replies in flight at stop */
#define API_RPC_STOP_QUIET_MS 20     /* and for no request coming in */

/* A handler's result: a vecdb_err and an encoded body (vdb_free). */
struct api_rpc_reply {
	uint8_t *body;
	size_t len;
	int code;          /* a wire code other than the error's, or 0 */
	int parked;        /* parked with api_rpc_park: answered later */
	int drop;          /* stopping: never answer (a FetchWal) */
	int no_wait;       /* a write that changed nothing (check_only) */
	uint32_t wc;       /* Write.write_concern */
};

typedef struct api_rpc api_rpc;
/* One request being served; a handler may park it (api_rpc_park). */
typedef struct api_rpc_call api_rpc_call;

/*
 * What a replication role adds to the server; every function is called
 * with ctx, from the handler threads, and must be thread-safe.
 */
struct api_rpc_ext {
	void *ctx;
	/* Requests that may park at once (FetchWal polls, writes waiting for
	 * replicas): the server keeps that many spare receives for them. */
	unsigned spares;
	/* FETCH_WAL, BOOTSTRAP_BEGIN/CHUNK, PROMOTE, FOLLOW. c is NULL when
	 * the request may not park (it is being re-run after a wake-up). */
	int (*handle)(void *ctx, api_rpc_call *c,
	    const struct proto_request *q, struct api_rpc_reply *out);
	/* VECDB_OK when writes are taken; else an error (message set). */
	int (*writable)(void *ctx);
	/* Fill role, primary and term of a health answer. */
	void (*health)(void *ctx, struct proto_health *h);
	/* Replicas every write waits for (0: none). */
	uint32_t (*acks_min)(void *ctx);
	/* A write committed: a token for acks_wait (may be NULL) and the seq
	 * the replicas must hold. */
	void *(*acks_begin)(void *ctx, uint64_t *seq);
	/* Wait for n replicas to hold seq: VECDB_OK, or VECDB_ETIMEDOUT with
	 * the message saying how many did. Blocks (at most the role's write
	 * concern timeout); runs on a thread of its own when it can. */
	int (*acks_wait)(void *ctx, void *token, uint64_t seq, uint32_t n);
};

/* Server settings; strings borrowed for the server's life. */
struct api_rpc_config {
	const char *url;          /* "tcp://127.0.0.1:7000"; port 0 picks one */
	const char *api_key;      /* NULL: no auth */
	const char *node_id;      /* reported by health */
	int replica;              /* refuse writes with FAILED_PRECONDITION */
	unsigned workers;         /* receives armed, and handler threads;
				     clamped to _MIN.._MAX (0: default) */
	const struct proto_tls_files *tls; /* a tls+tcp:// url's mutual TLS
					      (used at start only); NULL:
					      clear text */
};

/*
 * Listen on cfg->url and start the handler threads. The backend, and ext
 * (NULL: no replication role), are borrowed and must outlive the server.
 * @return VECDB_OK, VECDB_EINVAL (bad url, or one that does not match
 *	cfg->tls; TLS files that do not load), VECDB_EIO (cannot listen:
 *	the message says why), VECDB_ENOMEM.
 */
int api_rpc_start(const struct api_rpc_config *cfg,
    const struct api_backend *b, const struct api_rpc_ext *ext,
    api_rpc **out);

/* The TCP port actually bound (useful with port 0); 0 if not TCP. */
uint16_t api_rpc_port(const api_rpc *r);

/*
 * Begin stopping: no receive is re-armed, and FetchWal polls, parked or
 * new, are dropped unanswered, so that a replica sends nothing more. A
 * primary calls it before it wakes its parked polls. NULL is fine.
 */
void api_rpc_drain(api_rpc *r);

/*
 * Drain, let requests in flight send their replies until none has come
 * in for API_RPC_STOP_QUIET_MS (at most API_RPC_STOP_GRACE_MS in all),
 * stop the handler threads, cancel the receives still armed, then close
 * the socket, its listener and connections, and free. A role that parks
 * requests must have woken them first. NULL is fine.
 */
void api_rpc_stop(api_rpc *r);

/*
 * Write the RPC metrics in the Prometheus text format:
 * vecdb_rpc_requests_total{method, code}. Safe from any thread.
 */
void api_rpc_metrics_write(api_rpc *r, FILE *f);

/* ===== For api_rpc_ext handlers ===== */

/* 1 once api_rpc_drain has begun. */
int api_rpc_stopping(const api_rpc_call *c);

/*
 * Park call c: arm(arg, wake, wake_arg) registers the wake-up (it must
 * call wake(wake_arg) exactly once, from any thread, once it returned
 * VECDB_OK); the request is then run again with a NULL call and its
 * answer sent. A spare receive takes the call's place meanwhile. (The
 * server parks a write waiting for its replicas the same way, on a thread
 * that answers it.)
 * @return 1 parked (set out->parked), 0 when it cannot (stopping, no
 *	spare, or arm failed): answer now.
 */
int api_rpc_park(api_rpc_call *c,
    int (*arm)(void *arg, void (*wake)(void *), void *wake_arg), void *arg);

/* ===== Snapshot files over the RPC (api_rpc_snapfile.c) ===== */

struct api_rpc_uploads;
int api_rpc_uploads_new(struct api_rpc_uploads **out);
/* Remove every upload's temp file. NULL is fine. */
void api_rpc_uploads_free(struct api_rpc_uploads *u);

/* SNAPSHOT_READ: a piece of b's snapshot file, encoded as SnapshotData. */
int api_rpc_snapshot_read(const struct api_backend *b,
    const struct proto_snapshot_read *q, uint8_t **body, size_t *len);

/* SNAPSHOT_UPLOAD: a piece of a file in order; the last one restores
 * q->collection from the whole file (b->snapshot_restore_file). */
int api_rpc_snapshot_upload(struct api_rpc_uploads *u,
    const struct api_backend *b, const struct proto_snapshot_upload *q);

#endif /* API_RPC_H */
