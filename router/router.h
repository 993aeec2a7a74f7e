/*
 * router.h: the cluster router (`vecdb-router`): a topology of shards,
 * each an nng rep0 node (docs/NODE.md), and a cluster api_backend that
 * maps every REST call onto them (docs/ROUTER.md). The router's files
 * share router_impl.h; this is what the rest of the house may call.
 *
 * Threading: router_* calls are safe from any thread. The topology is
 * reference counted: a reload (SIGHUP) swaps it while calls in flight
 * keep the old one until they finish.
 */
#ifndef ROUTER_H
#define ROUTER_H

#include <stdint.h>

#include "api.h"

#define ROUTER_TIMEOUT_MS_MIN 10
#define ROUTER_TIMEOUT_MS_DEFAULT 2000
#define ROUTER_TIMEOUT_MS_MAX 600000

typedef struct router router;

struct proto_tls_files;

struct router_config {
	const char *topology;     /* file path (borrowed for the router's life) */
	uint32_t timeout_ms;      /* deadline of every fan-out */
	const char *node_api_key; /* sent to nodes; NULL: none */
	const struct proto_tls_files *tls; /* to tls+tcp:// members; NULL:
					      none (borrowed for the call) */
	struct coord *coord;      /* the topology from the members
				     registered in etcd instead of a file,
				     followed as it changes (borrowed) */
};

/*
 * Load the topology, connect to every member and start asking them their
 * roles (a thread). @return VECDB_OK, or VECDB_EINVAL / VECDB_EIO /
 * VECDB_ENOMEM with a message. The caller frees *out with router_free().
 */
int router_new(const struct router_config *cfg, router **out);

/* Re-read the topology file (or etcd); on error the old one stays. */
int router_reload(router *r);

/* Free (after the server using it stopped). NULL is fine. */
void router_free(router *r);

/*
 * Cluster status workers still running after router_free(): one stuck in
 * a blocking dial (a member that accepts connections but does not answer)
 * can be neither interrupted nor waited for. A process that sees any
 * should end with _exit(), not run exit handlers under it.
 */
unsigned router_status_running(void);

/* The cluster backend over a router (borrowed for b's life). */
void api_backend_cluster_init(struct api_backend *b, router *r);

/*
 * The shard of a point id among n shards (jump consistent hash). This is
 * part of the data's contract: tests/unit/router_place_test.c pins it.
 */
uint32_t router_shard_of(const vecdb_id *id, uint32_t n);

#endif /* ROUTER_H */
