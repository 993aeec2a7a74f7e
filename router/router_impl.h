/*
 * router_impl.h: what the router's files share; router.h is the public
 * contract. The files depend on each other one way only:
 *
 *   router.c ........ router_new/free, the backend table: uses all below
 *   router_query.c, router_ops.c, router_snapshot.c, router_snapfile.c:
 *                    the operations (queries fetch examples with ops)
 *   router_health.c, router_status.c, router_metrics.c
 *   router_batch.c .. searches that would queue on the nodes go together
 *   router_call.c ... requests to members, fan-out
 *   router_core.c ... the router's topology (swap, references), counters
 *   router_merge.c .. shard answers into one; a batch split by shard
 *   router_member.c . which member of a shard a request goes to
 *   router_topology.c the topology file, sockets, point -> shard
 *
 * router_merge.c and router_member.c touch no socket and no router: tests
 * call them on hand-built lists and shards (tests/unit/router_*_test.c).
 *
 * Threading: the topology is reference counted (router_topology_acquire);
 * its shards and members are read by any thread. Fields marked atomic are
 * read and written with relaxed atomics; the router lock guards the rest
 * as marked.
 */
#ifndef ROUTER_IMPL_H
#define ROUTER_IMPL_H

#include <nng/nng.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>

#include "api.h"
#include "proto.h"
#include "proto_rpc.h"
#include "router.h"

#define ROUTER_SHARDS_MAX 1024
#define ROUTER_FOLLOW_MS 100      /* with etcd and no watch: how often
				      members are read */
#define ROUTER_FOLLOW_WATCHED_MS 1000 /* with a watch: read this often
				      anyway (a stream can stall unseen) */
#define ROUTER_WATCH_RETRY_MS 1000 /* a watch that ended: watch again */
#define ROUTER_BACKOFF_MS 1000    /* a failed member is skipped this long */
#define ROUTER_RESEND_MS 20     /* a write no primary could take is
				      offered again this often */
#define ROUTER_CONNECT_WAIT_MS 250 /* a request waits this long at most for
				      a member that lost its connection to
				      have one again (a dead primary must
				      not hold it for the whole deadline) */
#define ROUTER_MEMBERS_MAX 64  /* primary + replicas of one shard */

/*
 * The counters of one shard member. The router keeps them across topology
 * reloads (keyed by shard id and url) so that they only go up, as
 * Prometheus counters must. Updated with relaxed atomics.
 */
#define ROUTER_LAT_BUCKETS 14
struct router_member_stats {
	uint32_t shard;
	char *url;                           /* owned */
	uint64_t requests;                   /* sent */
	uint64_t errors;                     /* no answer, or a bad one */
	uint64_t lat[ROUTER_LAT_BUCKETS + 1];/* answered, by latency; +Inf */
	uint64_t lat_sum_us;
	struct router_member_stats *next;
};

/*
 * The socket of one member url, shared by every topology that names it
 * (router_conns): a topology change keeps the connections of the members
 * it keeps, and the calls in flight on them.
 */
struct router_conn {
	char *url;                /* owned */
	nng_socket sock;          /* req0 dialed to url */
	struct proto_rpc_pool pool; /* contexts on sock, kept for reuse */
	int pipes;                /* live connections (atomic, nng callbacks) */
	int was_connected;        /* had one since sock was opened (atomic) */
	unsigned refs;            /* members holding it (router_conns lock) */
	struct router_conn *next;
};

/* Every open router_conn, by url. */
struct router_conns {
	pthread_mutex_t lock;
	struct router_conn *head;
};

/* One member of a shard: the primary or a replica. */
struct router_member {
	const char *url;          /* borrowed from the shard's strings */
	int primary;              /* members[0] */
	struct router_conn *conn; /* its socket; NULL until connected */
	uint64_t down_until_ms;   /* back-off deadline, vdb_now_ms (atomic) */
	int role;                 /* what it last said it is: ROLE_* (atomic) */
	uint64_t term;            /* the term it last reported (atomic) */
	uint64_t last_seq;        /* the last seq it reported (atomic) */
	int heard;                /* answered the last health round (atomic) */
	int unanswered;           /* health rounds in a row it did not
				     answer (atomic): a member that is
				     connected but hung, say SIGSTOPped */
	uint32_t parallelism;     /* requests it runs at once, as it last
				     said (HealthResult); 0: not said
				     (atomic) */
	char node_id[PROTO_TEXT_MAX + 1]; /* its --node-id; router lock */
	char follows[PROTO_URL_MAX + 1];  /* a replica's primary; router lock */
	struct router_member_stats *stats;  /* owned by the router */
};

/* One shard: its primary and replicas. */
struct router_shard {
	uint32_t id;              /* 0..n-1, the index in the shard array */
	char *primary;            /* nng url (owned) */
	char **replicas;          /* nng urls (owned) */
	size_t n_replicas;
	struct router_member *members;  /* the file's primary first */
	size_t n_members;
	unsigned rr;              /* round robin over replicas (atomic) */
	int primary_idx;          /* index of the member writes go to: the
				     file's until a member with a higher term
				     says it is primary (atomic) */
};

enum router_role { ROLE_UNKNOWN, ROLE_PRIMARY, ROLE_REPLICA };

typedef struct router_topology {
	struct router_shard *shards;  /* n shards sorted by id */
	size_t n;
	struct router_conns *conns;   /* where members' sockets come from */
	unsigned refs;            /* guarded by the router lock */
	nng_tls_config *tls;      /* held: for tls+tcp:// members, or NULL */
} router_topology;

typedef struct router_health router_health;

/* Searches waiting to go together (router_batch.c). */
struct router_batcher {
	pthread_mutex_t lock;     /* guards the lanes and their groups */
	struct router_batch_lane *lanes;
	uint64_t batches;         /* groups of 2+ searches sent (atomic) */
	uint64_t batched;         /* ... the searches in them (atomic) */
};

struct router {
	const char *path;         /* topology file */
	uint32_t timeout_ms;      /* deadline of every fan-out */
	const char *key;          /* node api key, "" for none */
	nng_tls_config *tls;      /* to the members; NULL: clear text */
	struct coord *coord;      /* the topology's source, or NULL: path */
	char *topo_text;          /* with coord: the topology served, as
				     JSON text (follow thread and init) */
	pthread_t follow;         /* with coord: follows etcd */
	int follow_on;
	int follow_stop;          /* guarded by follow_lock */
	int follow_kick;          /* the watch saw a change: read now
				     (follow_lock) */
	pthread_mutex_t follow_lock;
	pthread_cond_t follow_cv;
	struct coord_watch *watch;  /* with coord: the members' watch */
	pthread_t watcher;        /* runs it */
	int watch_on;
	int watching;             /* 1 while the watch is in place (atomic) */
	uint64_t etcd_reads;      /* topology reads from etcd (atomic) */
	uint64_t writes_held;     /* writes waiting for a primary now
				     (atomic) */
	uint64_t writes_not_held; /* writes that found their request
				     threads' share of waits taken (atomic) */
	pthread_mutex_t lock;     /* guards topo, refs, stats, and members'
				     node_id and follows */
	router_topology *topo;
	struct router_conns conns;  /* the members' sockets, by url */
	struct router_member_stats *stats;  /* every member ever seen */
	router_health *health;    /* the thread asking members their role */
	struct router_batcher batch;  /* searches waiting to go together */
};

/* ===== The topology file and sockets (router_topology.c) ===== */

/*
 * Parse and validate a topology file: {"shards": [{"id": 0, "primary":
 * "tcp://...", "replicas": []}, ...]}, ids exactly 0..n-1.
 * @return VECDB_OK, VECDB_EINVAL / VECDB_EIO with a message.
 *	The caller frees *out with router_topology_free().
 */
int router_topology_load(const char *path, router_topology **out);

/* The same from a parsed document. */
int router_topology_from_json(const json_t *root, router_topology **out);

/*
 * Give every shard member a socket from @p conns: the one already open
 * for its url (another topology's), or a req0 socket dialing in the
 * background with @p tls (a client configuration, held by t; NULL:
 * none), which every member url must match (proto_tls_url_check).
 */
int router_topology_connect(router_topology *t, struct router_conns *conns,
    nng_tls_config *tls);

/* Let go of the sockets (closed when no topology holds them) and free.
 * NULL is fine. */
void router_topology_free(router_topology *t);

void router_conns_init(struct router_conns *c);
/* Once every topology is freed. */
void router_conns_fini(struct router_conns *c);

/* Whether m holds a live connection. */
static inline int
router_member_connected(const struct router_member *m)
{
	return m->conn != NULL &&
	    __atomic_load_n(&m->conn->pipes, __ATOMIC_RELAXED) > 0;
}

/*
 * With a coord: read the topology from etcd and, when it differs from the
 * one served, swap it in (*changed = 1). On error the old one stays.
 */
int router_follow_once(router *r, int *changed);

/* ===== Member choice (router_member.c) ===== */

/* Mark m failed at now_ms (skip it for ROUTER_BACKOFF_MS) or healthy. */
void router_member_backoff(struct router_member *m, int failed,
    uint64_t now_ms);

/* Is m in its back-off period at now_ms? */
int router_member_down(const struct router_member *m, uint64_t now_ms);

/*
 * The member a request asks next, or -1 when none is left. @p tried has
 * bit i set for each member i asked already. Writes (@p any 0) go to the
 * primary, s->primary_idx; reads that any member may answer (@p any 1)
 * go to the replicas first, round robin (s->rr), then to the primary.
 * Members in back-off are skipped. Members with a live connection come
 * first: nng tells us at once when a node goes away, so a dead replica
 * costs nothing; one not yet (re)connected is still tried after them,
 * since its connection may be on the way. Safe from any thread.
 */
int router_member_pick(struct router_shard *s, int any, uint64_t tried,
    uint64_t now_ms);

/* Is a member of s left that is not in tried and not in back-off? */
int router_member_left(const struct router_shard *s, uint64_t tried,
    uint64_t now_ms);

/*
 * Send s's writes to the member that says it is primary under the highest
 * term (the first such member on a tie). @return its index, or -1 when
 * no member says primary (primary_idx is kept). *was: primary_idx before.
 */
int router_shard_elect(struct router_shard *s, int *was);

/* ===== The router's shared state (router_core.c) ===== */

/*
 * Fill r from cfg, load and connect the topology. On error r holds
 * nothing to free but its lock: router_core_fini() it.
 */
int router_core_init(router *r, const struct router_config *cfg);

/* Free the topology (when @p close_sockets) and the counters. */
void router_core_fini(router *r, int close_sockets);

/*
 * The current topology, referenced until router_topology_release(), with
 * the router's timeout and node api key ("" for none; borrowed for the
 * router's life). timeout_ms and node_key may be NULL.
 */
router_topology *router_topology_acquire(router *r, uint32_t *timeout_ms,
    const char **node_key);
void router_topology_release(router *r, router_topology *t);

/* Upper bounds of the latency buckets, in microseconds. */
extern const uint64_t router_lat_bounds_us[ROUTER_LAT_BUCKETS];

/* Count an answer of a member that took us microseconds. */
void router_stats_answer(struct router_member_stats *st, uint64_t us);

/* ===== Searches that would queue go together (router_batch.c) ===== */

#define ROUTER_BATCH_MAX 64   /* searches in one group, at most */

void router_batcher_init(struct router_batcher *b);
/* Once no search is in flight. */
void router_batcher_fini(struct router_batcher *b);

/* How a search runs on the shards: n searches of coll, answers in *out
 * (n lists; free with vecdb_records_free_array). */
typedef int (*router_search_fn)(router *r, router_topology *t,
    const char *coll, const struct api_search *s, size_t n,
    vecdb_records ***out);

/*
 * How many searches of one collection t keeps in flight before more wait
 * to go together: for every shard, what the members a read goes to (the
 * replicas, or the primary alone with @p primary or no replica) run at
 * once, summed; the smallest over the shards. 0 (no limit) while one of
 * those members has not said.
 */
unsigned router_batch_limit(router_topology *t, int primary);

/*
 * Run n searches of coll with @p run: at once, alone, while fewer than
 * router_batch_limit() of the collection's are in flight (under this
 * thread's read options, api_read_opts); otherwise in the collection's
 * group, sent as one batch when one in flight comes back, or after the
 * router's timeout whatever is in flight. A batch refused for one
 * search's own error (EINVAL, EDIM) is run again alone by each member.
 * The shards a group's answer left out are reported to every member's
 * read options. @return as @p run.
 */
int router_batch_search(router *r, router_topology *t, const char *coll,
    const struct api_search *s, size_t n, router_search_fn run,
    vecdb_records ***out);

/* Searches waiting in groups now (tests wait on it). */
size_t router_batch_waiting(router *r);

/* ===== Calls to members and fan-out (router_call.c) ===== */

/* One request to one shard, sent to one of its members at a time. */
struct router_call {
	size_t shard;                 /* index in the topology */
	int read;                     /* may be answered by a replica */
	int check;                    /* a write's check: changes nothing */
	int member;                   /* the member asked, -1 before */
	uint64_t tried;               /* members asked so far (bits) */
	uint64_t sent_us;             /* when the member was asked */
	int unconnected;              /* ... while it had lost its connection
					 (sent by ROUTER_CONNECT_WAIT_MS) */
	int hold;                     /* a write that waits for a connected
					 primary (see call_resend) */
	int unsent;                   /* the last try surely never left (no
					 member to take it, or no connection) */
	int skip;                     /* left out of a partial answer */
	uint8_t *req;                 /* encoded request (owned) */
	size_t reqlen;
	struct proto_response *resp;  /* the answer when transport worked */
	int rv;                       /* VECDB_OK or the shard's error */
	char msg[512];                /* why, naming the shard */
	struct proto_rpc_xchg x;      /* the exchange with the member */
};

/* Run the calls that have a request, in parallel under one deadline. */
void router_fanout(router *r, router_topology *t, struct router_call *calls,
    size_t n);

/* Free n calls (and the array). NULL is fine. */
void router_calls_free(struct router_call *calls, size_t n);

/* The same for a call in caller storage. */
void router_call_fini(struct router_call *c);

/*
 * Fail with the first failing call's code and a message naming every
 * failed shard; calls whose rv is @p ignore, and skipped ones, count as
 * successes.
 */
int router_calls_check(struct router_call *calls, size_t n, int ignore);

/*
 * router_calls_check for queries: with "allow_partial", shards that could
 * not be reached are skipped (and named in the answer), as long as one
 * shard answered.
 */
int router_calls_settle(router_topology *t, struct router_call *c,
    size_t n);

/* How many calls were not skipped. */
size_t router_calls_answered(const struct router_call *c, size_t n);

/*
 * Calls of one encoded body (owned, freed here) for every shard; reads
 * may go to replicas. The caller frees *out with router_calls_free().
 */
int router_calls_new(router *r, size_t nshards, uint32_t method, int read,
    uint8_t *body, size_t len, struct router_call **out);

/*
 * Send one encoded body (owned, freed here; enc_rv: how encoding went) to
 * every shard: to the primaries, or with @p read to any member. On
 * success the caller frees *out with router_calls_free(out, t->n).
 */
int router_broadcast(router *r, router_topology *t, uint32_t method,
    int read, int enc_rv, uint8_t *body, size_t len,
    struct router_call **out);

/* A body (owned) to every primary: every one must succeed. */
int router_primaries(router *r, uint32_t method, int enc_rv, uint8_t *body,
    size_t len);

/* DDL on every primary: absent_code (EEXIST on create, ENOTFOUND on
 * delete) is an error only when every shard answered it. */
int router_ddl(router *r, uint32_t method, int enc_rv, uint8_t *body,
    size_t len, int absent_code);

/*
 * One request to shard's primary under the router's deadline, as the
 * backend's writes go: *out its answer (code OK; caller frees), or the
 * error naming the shard.
 */
int router_shard_call(router *r, router_topology *t, size_t shard,
    uint32_t method, const uint8_t *body, size_t len,
    struct proto_response **out);

/* ===== Shard answers into one (router_merge.c) ===== */

/* qsort orders of records: (distance, id); context hits desc, then
 * (distance, id); id. Distances are lower-is-better for every metric
 * (dot is -a.b), so one order serves them all. */
int router_by_distance(const void *a, const void *b);
int router_by_hits(const void *a, const void *b);
int router_by_id(const void *a, const void *b);

/*
 * Move the records of lists[0..n) into one list sorted by cmp, skip
 * offset and keep limit. The lists are emptied (still to be freed).
 * Caller frees *out with vecdb_records_free().
 */
int router_merge_records(vecdb_records **lists, size_t n,
    int (*cmp)(const void *, const void *), uint32_t offset, uint32_t limit,
    vecdb_records **out);

/*
 * A batch of n searches: per[shard][q] is a shard's answer to search q
 * (asked with limit+offset, offset 0); out[q] the merged answer with s[q]'s
 * offset and limit. per's lists are emptied. Caller frees *out with
 * vecdb_records_free_array(*out, n).
 */
int router_merge_search(vecdb_records ***per, size_t nshards,
    const struct api_search *s, size_t n, vecdb_records ***out);

/*
 * Scroll pages of n shards, each asked from the same start with limit
 * (or more): the first limit by id. The next id is the smallest point
 * not returned: the first merged one past the page or a shard's own next,
 * whichever is smaller. The lists are emptied.
 */
int router_merge_scroll(vecdb_records **lists, size_t n, uint32_t limit,
    vecdb_records **out);

/*
 * The records answers of the calls not skipped, decoded into *lists
 * (*n of them). Caller frees with vecdb_records_free_array(*lists, *n).
 */
int router_answers_decode(const struct router_call *c, size_t nshards,
    vecdb_records ***lists, size_t *n);

/* The sum of the count answers of the calls not skipped. */
int router_merge_count(const struct router_call *c, size_t nshards,
    uint64_t *out);

/* Add shard i's collection stats into sum (i = 0 starts it): counts
 * summed; quantization in force only where every shard has it;
 * compacting while any shard is, with the least progress. */
void router_merge_collection_stats(vecdb_collection_stats *sum,
    const vecdb_collection_stats *s, size_t i);

/* Add shard i's node stats into sum (i = 0 starts it): summed, but
 * collections from shard 0 and last_seq the highest. */
void router_merge_stats(vecdb_stats *sum, const vecdb_stats *s, size_t i);

/*
 * One cluster snapshot from its n shards' parts: size and count summed,
 * the newest time, and as checksum the SHA-256 of the shards' checksums
 * (hex, in shard order), so that it changes if any shard's does.
 */
int router_merge_snapshot(const vecdb_snapshot_info *per, size_t n,
    vecdb_snapshot_info *out);

/*
 * The snapshots every shard lists (lists[i] of counts[i]), in shard 0's
 * order, each merged with router_merge_snapshot() into out (room for
 * counts[0]); per is scratch room for nshards.
 */
int router_merge_snapshot_lists(vecdb_snapshot_info **lists,
    const size_t *counts, size_t nshards, vecdb_snapshot_info *per,
    vecdb_snapshot_info *out, size_t *n);

/*
 * Split n ids (each @p stride bytes after the previous: ids of an array
 * of points, or an array of ids) over nshards by router_shard_of():
 * (*shard_of)[i] and (*counts)[shard]. Caller frees both with vdb_free.
 */
int router_split(const vecdb_id *ids, size_t stride, size_t n,
    size_t nshards, uint32_t **shard_of, size_t **counts);

/* Copy the items (of @p size bytes) of one shard into part, in their
 * order; returns how many. */
size_t router_split_part(const void *items, size_t size, size_t n,
    const uint32_t *shard_of, uint32_t shard, void *part);

/* ===== Operations (router_ops.c, router_query.c, router_snapshot.c) ===== */

/* The collection, point and stats ops of the backend over r. */
void router_ops_init(struct api_backend *b);

/* A collection's config as the router's GET gives it. */
int router_collection_config(router *r, const char *name,
    vecdb_collection_config *cfg);

/* One point from its shard (a read: a replica may answer). */
int router_get_point(router *r, router_topology *t, const char *coll,
    const vecdb_id *id, vecdb_record **out);

/* The query ops (router_query.c): search, scroll, count, recommend,
 * discover. */
void router_query_ops_init(struct api_backend *b);

/* The snapshot ops (router_snapshot.c, router_snapfile.c). */
void router_snapshot_ops_init(struct api_backend *b);

/* ===== Cluster snapshot files (router_snapfile.c) ===== */

/*
 * The api_backend snapshot_open and snapshot_restore_file ops over a
 * router (ctx). A cluster snapshot file holds every shard's snapshot
 * file of that name, in shard order, then a JSON manifest naming each
 * part's shard, size and SHA-256, then the manifest's length (8 bytes,
 * little-endian) and the magic ROUTER_SNAPFILE_MAGIC. Restoring checks
 * every part against its checksum before any shard is changed, then
 * sends each shard its part.
 */
#define ROUTER_SNAPFILE_MAGIC "VDBCSNP1"
#define ROUTER_SNAPFILE_PIECE (16u << 20)  /* bytes a message carries */
int router_snapshot_open(void *ctx, const char *coll, const char *name,
    int *fd);
int router_snapshot_restore_file(void *ctx, const char *coll,
    const char *path);

/* ===== Metrics (router_metrics.c) ===== */

/* The api_backend metrics op: per-member request, error and latency
 * series of the current topology. */
void router_metrics(void *ctx, FILE *f);

/* ===== Cluster status (router_status.c) ===== */

/*
 * The api_backend cluster_status op over a router (ctx): asks every
 * member of the topology, primaries and replicas, over a short-lived
 * socket of its own, so that the answer does not depend on the router's
 * back-off state. Unreachable members are listed with their error.
 */
int router_cluster_status(void *ctx, json_t **out);

/*
 * Wait, at most timeout_ms, for the status workers a late member left
 * running (a status answers at its deadline without them); returns how
 * many are still running. Closing the router's sockets while one of them
 * closes its own could hang both in nng_close (seen at SIGTERM after a
 * member was stopped with SIGSTOP).
 */
unsigned router_status_drain(uint32_t timeout_ms);

/* ===== Members' roles and promotion (router_health.c) ===== */

#define ROUTER_HEALTH_MS 500      /* how often every member is asked */
#define ROUTER_UNANSWERED_MAX 2  /* health rounds missed: not ready */

/*
 * Ask every member of t for HEALTH at once (within timeout_ms) and take
 * what they say: role, term, node id. Then each shard's writes go to the
 * member that says it is primary with the highest term, and a member
 * that says primary under a lower term is told to FOLLOW that one (a
 * former primary come back). Called by the health thread, and by promote
 * before it looks a node up.
 */
void router_health_round(router_topology *t, const char *key,
    uint32_t timeout_ms, pthread_mutex_t *lock);

/* The thread that runs a round every ROUTER_HEALTH_MS. */
int router_health_start(router *r, router_health **out);
void router_health_stop(router_health *h);

/*
 * The api_backend promote op over a router (ctx): make @p node (a
 * member's url or node id) its shard's primary: PROMOTE it with a term
 * above every term of the shard, send writes to it, and tell the other
 * members to FOLLOW it. *out: {shard, node, url, term, last_seq,
 * members: [{url, followed, error}]}.
 */
int router_promote(void *ctx, const char *node, json_t **out);

/*
 * The api_backend ready op: every shard has a member that is connected
 * and answers the health rounds.
 */
int router_ready(void *ctx, json_t **not_ready);

#endif /* ROUTER_IMPL_H */
