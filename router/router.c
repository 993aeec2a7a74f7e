/*
 * router.c: the router's public calls (router.h): a router is its shared
 * state (router_core.c) and the thread that asks members their roles
 * (router_health.c), and the cluster backend is the table of every
 * operation over it. Nothing else in router/ calls back into this file.
 */
#include <stdio.h>
#include <string.h>

#include "coord.h"
#include "router_impl.h"
#include "vdb.h"

/*
 * With etcd: read the members when the watch says they changed, and at
 * least every ROUTER_FOLLOW_WATCHED_MS (every ROUTER_FOLLOW_MS while
 * there is no watch); serve a topology that changed at once.
 */
static void *
follow_main(void *arg)
{
	router *r = arg;
	uint64_t warned = 0;

	pthread_mutex_lock(&r->follow_lock);
	while (!r->follow_stop) {
		struct timespec ts = vdb_deadline(__atomic_load_n(&r->watching,
		    __ATOMIC_RELAXED) ? ROUTER_FOLLOW_WATCHED_MS :
		    ROUTER_FOLLOW_MS);
		int changed, rv;

		while (!r->follow_stop && !r->follow_kick &&
		    pthread_cond_timedwait(&r->follow_cv, &r->follow_lock,
		    &ts) == 0)
			;
		if (r->follow_stop)
			break;
		r->follow_kick = 0;
		pthread_mutex_unlock(&r->follow_lock);
		rv = router_follow_once(r, &changed);
		if (rv == VECDB_OK && changed)
			VDB_LOG_INFO("ROUT", "topology from etcd: %s",
			    r->topo_text);
		else if (rv != VECDB_OK && vdb_now_ms() - warned > 10000) {
			VDB_LOG_WARN("ROUT", "keeping the topology: %s",
			    vecdb_errmsg());
			warned = vdb_now_ms();
		}
		pthread_mutex_lock(&r->follow_lock);
	}
	pthread_mutex_unlock(&r->follow_lock);
	return NULL;
}

/* The watch is in place, or saw a change: the follow thread reads now. */
static void
watch_kick(void *arg)
{
	router *r = arg;

	pthread_mutex_lock(&r->follow_lock);
	__atomic_store_n(&r->watching, 1, __ATOMIC_RELAXED);
	r->follow_kick = 1;
	pthread_cond_broadcast(&r->follow_cv);
	pthread_mutex_unlock(&r->follow_lock);
}

/* With etcd: watch the members, again after ROUTER_WATCH_RETRY_MS when
 * a watch ends; the follow thread reads every ROUTER_FOLLOW_MS meanwhile. */
static void *
watch_main(void *arg)
{
	router *r = arg;
	char prefix[300];
	uint64_t warned = 0;

	snprintf(prefix, sizeof(prefix), "%s" COORD_MEMBERS,
	    coord_prefix(r->coord));
	pthread_mutex_lock(&r->follow_lock);
	while (!r->follow_stop) {
		pthread_mutex_unlock(&r->follow_lock);
		int rv = coord_watch_run(r->watch, prefix, watch_kick, r);
		pthread_mutex_lock(&r->follow_lock);
		__atomic_store_n(&r->watching, 0, __ATOMIC_RELAXED);
		if (r->follow_stop)
			break;
		if (rv != VECDB_OK && vdb_now_ms() - warned > 10000) {
			VDB_LOG_WARN("ROUT", "not watching etcd (reading it "
			    "every %d ms meanwhile): %s", ROUTER_FOLLOW_MS,
			    vecdb_errmsg());
			warned = vdb_now_ms();
		}
		/* read now, for what the stream may have missed, and from
		 * then on every ROUTER_FOLLOW_MS */
		r->follow_kick = 1;
		pthread_cond_broadcast(&r->follow_cv);
		struct timespec ts = vdb_deadline(ROUTER_WATCH_RETRY_MS);
		while (!r->follow_stop && pthread_cond_timedwait(
		    &r->follow_cv, &r->follow_lock, &ts) == 0)
			;
	}
	pthread_mutex_unlock(&r->follow_lock);
	return NULL;
}

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
	if (r->coord != NULL) {
		if (pthread_create(&r->follow, NULL, follow_main, r) != 0) {
			router_free(r);
			return vdb_err(VECDB_ENOMEM, "cannot start a thread");
		}
		r->follow_on = 1;
		if ((rv = coord_watch_new(r->coord, &r->watch)) != VECDB_OK) {
			router_free(r);
			return rv;
		}
		if (pthread_create(&r->watcher, NULL, watch_main, r) != 0) {
			router_free(r);
			return vdb_err(VECDB_ENOMEM, "cannot start a thread");
		}
		r->watch_on = 1;
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
	if (r->follow_on) {
		pthread_mutex_lock(&r->follow_lock);
		r->follow_stop = 1;
		pthread_cond_broadcast(&r->follow_cv);
		pthread_mutex_unlock(&r->follow_lock);
		if (r->watch_on) {
			coord_watch_stop(r->watch);
			pthread_join(r->watcher, NULL);
		}
		pthread_join(r->follow, NULL);
	}
	coord_watch_free(r->watch);
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
