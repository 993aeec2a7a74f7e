/*
 * router.c: the router's public calls (router.h): a router is its shared
 * state (router_core.c) and the thread that asks members their roles
 * (router_health.c), and the cluster backend is the table of every
 * operation over it. Nothing else in router/ calls back into this file.
 */
#include <string.h>

#include "router_impl.h"
#include "vdb.h"

int
router_new(const struct router_config *cfg, router **out)
{
	router *r = vdb_calloc(1, sizeof(*r));
	int rv;

	if (r == NULL)
		return vdb_err(VECDB_ENOMEM, "out of memory");
	if ((rv = router_core_init(r, cfg)) != VECDB_OK ||
	    (rv = router_health_start(r, &r->health)) != VECDB_OK) {
		router_free(r);
		return rv;
	}
	*out = r;
	return VECDB_OK;
}

void
router_free(router *r)
{
	int close_sockets = 1;

	if (r == NULL)
		return;
	router_health_stop(r->health);
	/* A status worker still closing its socket: leave ours open (the
	 * process is ending) rather than risk both waiting in nng_close. */
	if (router_status_drain(5000) > 0) {
		VDB_LOG_WARN("ROUT", "a cluster status worker is still "
		    "running: not closing the member sockets");
		close_sockets = 0;
	}
	router_core_fini(r, close_sockets);
	vdb_free(r);
}

void
api_backend_cluster_init(struct api_backend *b, router *r)
{
	memset(b, 0, sizeof(*b));
	b->ctx = r;
	router_ops_init(b);
	router_query_ops_init(b);
	router_snapshot_ops_init(b);
	b->metrics = router_metrics;
	b->promote = router_promote;
	b->cluster_status = router_cluster_status;
	b->ready = router_ready;
}
