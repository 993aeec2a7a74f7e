/*
 * router_core.c: the router's shared state: the topology it serves from
 * (swapped by a reload while calls in flight keep the old one, freed by
 * the last reference) and the members' counters, kept across reloads.
 */
#include <pthread.h>
#include <string.h>

#include "coord.h"
#include "router_impl.h"
#include "vdb.h"

/* The stats of (shard, url), created on first sight; lock held. */
static struct router_member_stats *
stats_find_locked(router *r, uint32_t shard, const char *url)
{
	struct router_member_stats *st;

	for (st = r->stats; st != NULL; st = st->next)
		if (st->shard == shard && strcmp(st->url, url) == 0)
			return st;
	if ((st = vdb_calloc(1, sizeof(*st))) == NULL ||
	    (st->url = vdb_strdup(url)) == NULL) {
		vdb_free(st);
		return NULL;
	}
	st->shard = shard;
	st->next = r->stats;
	r->stats = st;
	return st;
}

/* Point every member of t at its stats. */
static int
stats_bind(router *r, router_topology *t)
{
	int rv = VECDB_OK;

	pthread_mutex_lock(&r->lock);
	for (size_t i = 0; i < t->n && rv == VECDB_OK; i++)
		for (size_t k = 0; k < t->shards[i].n_members; k++) {
			struct router_member *m = &t->shards[i].members[k];
			m->stats = stats_find_locked(r, t->shards[i].id,
			    m->url);
			if (m->stats == NULL) {
				rv = vdb_err(VECDB_ENOMEM, "out of memory");
				break;
			}
		}
	pthread_mutex_unlock(&r->lock);
	return rv;
}

/* Load, connect and bind a topology from doc (NULL: r's file). */
static int
topo_open(router *r, const json_t *doc, router_topology **out)
{
	router_topology *t;
	int rv;

	if ((rv = doc != NULL ? router_topology_from_json(doc, &t) :
	    router_topology_load(r->path, &t)) != VECDB_OK)
		return rv;
	if ((rv = router_topology_connect(t, &r->conns, r->tls)) != VECDB_OK ||
	    (rv = stats_bind(r, t)) != VECDB_OK) {
		router_topology_free(t);
		return rv;
	}
	t->refs = 1;
	*out = t;
	return VECDB_OK;
}

int
router_core_init(router *r, const struct router_config *cfg)
{
	int rv;

	pthread_mutex_init(&r->follow_lock, NULL);
	vdb_cond_init(&r->follow_cv);
	router_batcher_init(&r->batch);
	router_conns_init(&r->conns);
	r->path = cfg->topology;
	r->timeout_ms = cfg->timeout_ms;
	r->key = cfg->node_api_key ? cfg->node_api_key : "";
	if (cfg->tls != NULL && (rv = proto_tls_config(cfg->tls, 0,
	    &r->tls)) != VECDB_OK)
		return rv;
	r->coord = cfg->coord;
	pthread_mutex_init(&r->lock, NULL);
	if (r->coord != NULL) {
		json_t *doc = NULL;
		int64_t rev;
		if ((rv = coord_topology_json(r->coord, &doc, &rev)) ==
		    VECDB_OK && (r->topo_text = json_dumps(doc, JSON_COMPACT |
		    JSON_SORT_KEYS)) == NULL)
			rv = vdb_err(VECDB_ENOMEM, "out of memory");
		if (rv == VECDB_OK)
			rv = topo_open(r, doc, &r->topo);
		json_decref(doc);
	} else
		rv = topo_open(r, NULL, &r->topo);
	if (rv != VECDB_OK && r->tls != NULL) {
		nng_tls_config_free(r->tls);
		r->tls = NULL;
	}
	return rv;
}

router_topology *
router_topology_acquire(router *r, uint32_t *timeout_ms, const char **node_key)
{
	router_topology *t;

	if (timeout_ms != NULL)
		*timeout_ms = r->timeout_ms;
	if (node_key != NULL)
		*node_key = r->key;
	pthread_mutex_lock(&r->lock);
	t = r->topo;
	t->refs++;
	pthread_mutex_unlock(&r->lock);
	return t;
}

void
router_topology_release(router *r, router_topology *t)
{
	unsigned left;

	pthread_mutex_lock(&r->lock);
	left = --t->refs;
	pthread_mutex_unlock(&r->lock);
	if (left == 0)
		router_topology_free(t);
}

/* Serve t from now on; calls in flight finish on the old one. */
static void
topo_swap(router *r, router_topology *t)
{
	router_topology *old;

	pthread_mutex_lock(&r->lock);
	old = r->topo;
	r->topo = t;
	pthread_mutex_unlock(&r->lock);
	router_topology_release(r, old);
}

int
router_follow_once(router *r, int *changed)
{
	router_topology *t;
	json_t *doc;
	char *text;
	int64_t rev;
	int rv;

	*changed = 0;
	__atomic_fetch_add(&r->etcd_reads, 1, __ATOMIC_RELAXED);
	if ((rv = coord_topology_json(r->coord, &doc, &rev)) != VECDB_OK)
		return rv;
	if ((text = json_dumps(doc, JSON_COMPACT | JSON_SORT_KEYS)) == NULL) {
		json_decref(doc);
		return vdb_err(VECDB_ENOMEM, "out of memory");
	}
	/* the follow thread and a SIGHUP take turns */
	pthread_mutex_lock(&r->follow_lock);
	if (r->topo_text == NULL || strcmp(text, r->topo_text) != 0) {
		if ((rv = topo_open(r, doc, &t)) == VECDB_OK) {
			topo_swap(r, t);
			free(r->topo_text);
			r->topo_text = text;
			text = NULL;
			*changed = 1;
		}
	}
	pthread_mutex_unlock(&r->follow_lock);
	free(text);
	json_decref(doc);
	return rv;
}

int
router_reload(router *r)
{
	router_topology *t;
	int changed, rv;

	if (r->coord != NULL)
		return router_follow_once(r, &changed);
	if ((rv = topo_open(r, NULL, &t)) != VECDB_OK)
		return rv;
	topo_swap(r, t);
	return VECDB_OK;
}

void
router_core_fini(router *r, int close_sockets)
{
	struct router_member_stats *st, *next;

	if (close_sockets) {
		router_topology_free(r->topo);
		router_conns_fini(&r->conns);
	}
	for (st = r->stats; st != NULL; st = next) {
		next = st->next;
		vdb_free(st->url);
		vdb_free(st);
	}
	if (r->tls != NULL)
		nng_tls_config_free(r->tls);
	free(r->topo_text);
	router_batcher_fini(&r->batch);
	pthread_mutex_destroy(&r->lock);
	pthread_mutex_destroy(&r->follow_lock);
	pthread_cond_destroy(&r->follow_cv);
}

const uint64_t router_lat_bounds_us[ROUTER_LAT_BUCKETS] = {
	500, 1000, 2500, 5000, 10000, 25000, 50000, 100000, 250000, 500000,
	1000000, 2500000, 5000000, 10000000
};

void
router_stats_answer(struct router_member_stats *st, uint64_t us)
{
	size_t b = 0;

	while (b < ROUTER_LAT_BUCKETS && us > router_lat_bounds_us[b])
		b++;
	__atomic_fetch_add(&st->lat[b], 1, __ATOMIC_RELAXED);
	__atomic_fetch_add(&st->lat_sum_us, us, __ATOMIC_RELAXED);
}
