/*
 * repl.h: WAL shipping from a primary to its read replicas
 * (docs/REPLICATION.md).
 *
 * The primary side (repl_primary.c) answers FetchWal from the WAL, parks
 * long-polls until a commit or their deadline, remembers each replica's
 * acknowledged position, and serves bootstrap copies in chunks. It knows
 * nothing of nng: the RPC server (api_rpc.c) parks a request and is
 * called back when it should answer.
 *
 * The replica side (repl_follower.c) is one thread that dials the primary,
 * fetches after its applied seq, applies, and bootstraps when the primary
 * no longer holds what it needs.
 */
#ifndef REPL_H
#define REPL_H

#include <stdint.h>
#include <stdio.h>

#include "proto.h"
#include "proto_rpc.h"
#include "vecdb.h"

#define REPL_WAIT_MAX_MS 10000          /* cap of FetchWal.max_wait_ms */
#define REPL_RECORDS_DEFAULT 10000      /* FetchWal.max_records 0 */
#define REPL_RECORDS_MAX 100000
#define REPL_BYTES_DEFAULT (8u << 20)   /* FetchWal.max_bytes 0 */
#define REPL_BYTES_MAX (256u << 20)
#define REPL_PARKED_MAX 64              /* long-polls waiting at once */
#define REPL_REPLICAS_MAX 64            /* replicas tracked for metrics */
#define REPL_SESSIONS_MAX 4             /* bootstrap copies kept at once */
#define REPL_SESSION_IDLE_MS 600000     /* a copy unused this long goes */
#define REPL_CHUNK_DEFAULT (4u << 20)   /* bootstrap chunk a replica asks */
#define REPL_READY_LAG_RECORDS 10000    /* /ready: at most this far behind
					   (records of at most ~2 KB) */
#define REPL_READY_CONTACT_MS 10000     /* /ready: heard the primary since */

/* ===== Primary ===== */

typedef struct repl_primary repl_primary;

/* What the primary knows of one replica. */
struct repl_replica {
	char id[PROTO_REPLICA_ID_MAX + 1];
	uint64_t acked_seq;      /* its last FetchWal's after_seq */
	uint64_t contact_ms;     /* when that was (CLOCK_MONOTONIC ms) */
	uint64_t lag_records;    /* last seq - acked_seq, at the time asked */
	double lag_s;            /* age of the oldest record it lacks */
};

/*
 * Serve replication from @p db, keeping bootstrap copies in @p dir (the
 * data dir: same file system, removed again at stop). Installs the
 * engine's commit hook. Beyond the engine's wal_retain window, the WAL
 * keeps the records some replica heard from since start has not
 * acknowledged, while it is under about @p wal_max_bytes. Both pointers
 * are borrowed: free the primary only after vecdb_close(), since the
 * writer may be running the hook until then.
 * @return VECDB_OK, VECDB_ENOMEM, VECDB_EIO.
 */
#define REPL_WAL_MAX_BYTES_DEFAULT (1ull << 30)
int repl_primary_new(vecdb *db, const char *dir, uint64_t wal_max_bytes,
    repl_primary **out);

/*
 * Answer every parked long-poll now and refuse new ones, remove bootstrap
 * copies, stop the waiter thread. Call before the RPC server stops.
 */
void repl_primary_stop(repl_primary *p);

/* Free (after vecdb_close). NULL is fine. */
void repl_primary_free(repl_primary *p);

/*
 * Answer a FetchWal: the records after f->after_seq within the limits,
 * and record the replica's acknowledgement. When f->after_term says the
 * replica's record at after_seq is not ours (an old primary's records of
 * an older term), the answer has no records, out->diverged set and
 * out->common_seq the last seq we share; its acknowledgement counts up to
 * there only. out->records: vdb_free().
 * @return VECDB_OK (out->count may be 0), VECDB_ENOTFOUND when the records
 *	after after_seq are no longer held, or after_seq is past our last
 *	seq (the replica's history is not ours): the message says to
 *	bootstrap, the wire code is OUT_OF_RANGE. VECDB_ENOMEM, VECDB_EIO.
 */
int repl_primary_fetch(repl_primary *p, const struct proto_fetch_wal *f,
    struct proto_wal_batch *out);

/*
 * Park a long-poll that found nothing after @p after_seq: @p wake(arg) is
 * called once, from the waiter thread with no lock held, when a commit
 * moves the last seq past after_seq, @p wait_ms pass (capped at
 * REPL_WAIT_MAX_MS), or the primary stops. wake must not block.
 * @return VECDB_OK (parked), VECDB_EEXIST (records arrived meanwhile:
 *	answer now), VECDB_EFULL (REPL_PARKED_MAX are waiting, or stopping:
 *	answer now).
 */
int repl_primary_park(repl_primary *p, uint64_t after_seq, uint32_t wait_ms,
    void (*wake)(void *), void *arg);

/*
 * Make a consistent copy of the database for a bootstrap and describe it.
 * @return VECDB_OK, VECDB_EIO (cannot copy), VECDB_ENOMEM.
 */
int repl_primary_bootstrap_begin(repl_primary *p, const char *replica_id,
    struct proto_bootstrap_info *out);

/*
 * Read a chunk of a bootstrap copy; the copy is removed once its last
 * byte is served. *data: vdb_free().
 * @return VECDB_OK, VECDB_ENOTFOUND (no such session: begin again),
 *	VECDB_EINVAL (offset past the end), VECDB_EIO, VECDB_ENOMEM.
 */
int repl_primary_bootstrap_chunk(repl_primary *p,
    const struct proto_bootstrap_chunk *c, uint8_t **data, size_t *n);

/*
 * The replicas heard from (at most REPL_REPLICAS_MAX), with their lag
 * now. For metrics, and for write concern to wait on.
 */
size_t repl_primary_replicas(repl_primary *p, struct repl_replica *out,
    size_t cap);

/*
 * Wait until at least @p n replicas have acknowledged @p seq (a replica
 * acknowledges a record by its next FetchWal after applying it), at most
 * @p timeout_ms: the primitive write concern will wait on. Blocks the
 * calling thread; never call it from an nng callback.
 * @return VECDB_OK, VECDB_EIO ("k of n replicas have acknowledged seq S in
 *	time", or the primary is stopping).
 */
int repl_primary_wait_acks(repl_primary *p, uint64_t seq, size_t n,
    uint32_t timeout_ms);

/* vecdb_replication_lag_records{replica} and _lag_seconds{replica}. */
void repl_primary_metrics_write(repl_primary *p, FILE *f);

/* ===== Replica ===== */

typedef struct repl_follower repl_follower;

/* Follower settings; strings borrowed for the follower's life. */
struct repl_follower_config {
	vecdb *db;
	const char *primary_url;  /* "tcp://host:port" */
	const char *replica_id;   /* how the primary names us */
	const char *api_key;      /* the primary's, or NULL */
	const char *dir;          /* where a bootstrap copy is downloaded */
	uint32_t wait_ms;         /* long-poll; 0: 1000 */
	uint64_t term;            /* the term we follow in (FetchWal.term) */
	nng_tls_config *tls;      /* to a tls+tcp:// primary (a client
				     side, borrowed); NULL: none */
};

/* Where a follower stands. */
struct repl_follower_status {
	uint64_t applied_seq;     /* last record applied here */
	uint64_t primary_seq;     /* the primary's last seq, last we heard */
	uint64_t contact_age_ms;  /* since the last answer; UINT64_MAX: never */
	uint64_t bootstraps;      /* completed */
	uint64_t errors;          /* failed fetches, applies, bootstraps */
	uint64_t dropped;         /* records of ours the primary never had,
				     dropped to rejoin its history */
	uint64_t primary_term;    /* the primary's term, last we heard */
	int bootstrapping;
};

/*
 * Start the follower thread. Each FetchWal says the term of our last
 * record, so a primary whose history replaced ours after some seq
 * answers "diverged": the follower logs how many records it drops (ours
 * after that seq), counts them in status.dropped, and bootstraps. A
 * follower merely behind fetches on.
 * @return VECDB_OK, VECDB_EINVAL (bad url), VECDB_ENOMEM.
 */
int repl_follower_start(const struct repl_follower_config *cfg,
    repl_follower **out);

/* Stop within the socket's timeouts at most (it closes the socket). */
void repl_follower_stop(repl_follower *f);

void repl_follower_status_get(repl_follower *f,
    struct repl_follower_status *out);

/* 1 when caught up within REPL_READY_LAG_RECORDS and heard from the
 * primary within REPL_READY_CONTACT_MS, not bootstrapping. */
int repl_follower_ready(repl_follower *f);

/* vecdb_replica_applied_seq and friends. */
void repl_follower_metrics_write(repl_follower *f, FILE *out);

#endif /* REPL_H */
