/*
 * node.h: the storage node (`vecdb-node`): the binary API server of
 * api_rpc.h over a local api_backend, with a replication role (primary or
 * replica, changing at run time) plugged into it.
 */
#ifndef NODE_H
#define NODE_H

#include <stdint.h>
#include <stdio.h>

#include "api.h"
#include "api_rpc.h"
#include "proto.h"

struct repl_primary;
struct repl_follower_status;

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
	nng_tls_config *tls;         /* to a tls+tcp:// primary (borrowed);
					NULL: none */
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
 * before api_rpc_stop(). */
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

/* ===== The role in the RPC server (node_rpc.c) ===== */

/*
 * The binary API server's extension for @p role (borrowed; it must
 * outlive the server): the server then refuses writes the role does not
 * take, answers FetchWal and the bootstrap methods as a primary, PROMOTE
 * and FOLLOW, and makes writes wait for the write concern. Long-polls and
 * writes waiting for replicas park without holding a handler thread: the
 * server keeps REPL_PARKED_MAX spare receives for them. Call
 * api_rpc_drain(), then node_role_stop(), then api_rpc_stop(), so parked
 * requests are dropped at once (api_rpc_stop says why).
 */
void node_rpc_ext(node_role *role, struct api_rpc_ext *out);

/* ===== Leadership through etcd (node_elect.c) ===== */

struct coord;
struct coord_member;

struct node_elect_config {
	struct coord *c;
	struct coord_member *member; /* ours: the leader key rides its lease */
	node_role *role;
	uint32_t shard;
	const char *node_id;
	const char *rpc;             /* the url the others follow */
	_Atomic int64_t *elect_rev;  /* where the elector publishes the
					store's revision when it last saw no
					leader, for the member's value
					(coord_member_info.elect_rev) */
};

/*
 * A thread that keeps @p cfg->role in line with the shard's leader in
 * etcd: leads when it holds the leader key (elected by the most
 * up-to-date member when the key is gone), follows whoever holds it
 * otherwise, and refuses writes as soon as its lease may have expired.
 * All borrowed, to outlive it.
 */
typedef struct node_elect node_elect;

int node_elect_start(const struct node_elect_config *cfg, node_elect **out);

/* Stop; a leader refuses writes and gives the key up at once. NULL is
 * fine. */
void node_elect_stop(node_elect *e);

/* vecdb_elections_total, vecdb_leader_changes_total, vecdb_leader. */
void node_elect_metrics_write(node_elect *e, FILE *f);

#endif /* NODE_H */
