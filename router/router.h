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
#include <stdint.h>

#include "api.h"

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
	struct router_member_stats *stats;  /* owned by the router */
};

/* One shard: its primary and replicas. */
struct router_shard {
	uint32_t id;              /* 0..n-1, the index in the shard array */
	char *primary;            /* nng url (owned) */
	char **replicas;          /* nng urls (owned) */
	size_t n_replicas;
	struct router_member *members;  /* primary first, then replicas */
	size_t n_members;
	unsigned rr;              /* round robin over replicas (atomic) */
};

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
 * The current topology, referenced until router_topology_release(), with
 * the router's timeout and node api key ("" for none; borrowed for the
 * router's life).
 */
router_topology *router_topology_acquire(router *r, uint32_t *timeout_ms,
    const char **node_key);
void router_topology_release(router *r, router_topology *t);

#endif /* ROUTER_H */
