/*
 * router.h: the cluster router (`vecdb-router`): a topology of shards,
 * each an nng rep0 node (docs/NODE.md), and a cluster api_backend that
 * maps every REST call onto them (docs/ROUTER.md).
 *
 * Threading: router_* calls are safe from any thread. The topology is
 * reference counted: a reload (SIGHUP) swaps it while calls in flight
 * keep the old one until they finish.
 */
#ifndef ROUTER_H
#define ROUTER_H

#include <nng/nng.h>
#include <pthread.h>
#include <stdint.h>

#include "api.h"
#include "proto.h"

#define ROUTER_SHARDS_MAX 1024
#define ROUTER_TIMEOUT_MS_MIN 10
#define ROUTER_TIMEOUT_MS_DEFAULT 2000
#define ROUTER_TIMEOUT_MS_MAX 600000
#define ROUTER_BACKOFF_MS 1000    /* a failed member is skipped this long */

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

/* One member of a shard: the primary or a replica. */
struct router_member {
	const char *url;          /* borrowed from the shard's strings */
	int primary;              /* members[0] */
	nng_socket sock;          /* req0 dialed to url */
	int open;                 /* sock is open */
	uint64_t down_until_ms;   /* back-off deadline; guarded by router lock */
	int pipes;                /* live connections (atomic, nng callbacks) */
	int role;                 /* what it last said it is: ROLE_* (atomic) */
	uint64_t term;            /* the term it last reported (atomic) */
	uint64_t last_seq;        /* the last seq it reported (atomic) */
	int heard;                /* answered the last health round (atomic) */
	int unanswered;           /* health rounds in a row it did not
				     answer (atomic): a member that is
				     connected but hung, say SIGSTOPped */
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
	unsigned refs;            /* guarded by the router lock */
} router_topology;

/*
 * Parse and validate a topology file: {"shards": [{"id": 0, "primary":
 * "tcp://...", "replicas": []}, ...]}, ids exactly 0..n-1.
 * @return VECDB_OK, VECDB_EINVAL / VECDB_EIO with a message.
 *	The caller frees *out with router_topology_free().
 */
int router_topology_load(const char *path, router_topology **out);

/* Open a req0 socket per shard member, dialing in the background. */
int router_topology_connect(router_topology *t);

/* Close the sockets and free. NULL is fine. */
void router_topology_free(router_topology *t);

/* The shard of a point id among n shards (jump consistent hash). */
uint32_t router_shard_of(const vecdb_id *id, uint32_t n);

typedef struct router router;

struct router_config {
	const char *topology;     /* file path (borrowed for the router's life) */
	uint32_t timeout_ms;      /* deadline of every fan-out */
	const char *node_api_key; /* sent to nodes; NULL: none */
};

/* Load the topology and connect. Free with router_free(). */
int router_new(const struct router_config *cfg, router **out);

/* Re-read the topology file; on error the old one stays. */
int router_reload(router *r);

/* Free (after the server using it stopped). NULL is fine. */
void router_free(router *r);

/* The cluster backend over a router (borrowed). */
void api_backend_cluster_init(struct api_backend *b, router *r);

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

/*
 * The current topology, referenced until router_topology_release(), with
 * the router's timeout and node api key ("" for none; borrowed for the
 * router's life).
 */
router_topology *router_topology_acquire(router *r, uint32_t *timeout_ms,
    const char **node_key);
void router_topology_release(router *r, router_topology *t);

/*
 * One request to shard's primary under the router's deadline, as the
 * backend's writes go: *out its answer (code OK; caller frees), or the
 * error naming the shard.
 */
int router_shard_call(router *r, router_topology *t, size_t shard,
    uint32_t method, const uint8_t *body, size_t len,
    struct proto_response **out);

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

typedef struct router_health router_health;

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

/* The router's lock (for router_health.c). */
pthread_mutex_t *router_lock(router *r);

#endif /* ROUTER_H */
