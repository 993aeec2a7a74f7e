/*
 * router_metrics.c: the router's own /metrics series, one per member of
 * the topology: requests, errors, back-off, connection, the latency
 * histogram and what it runs at once; and the searches sent together
 * (docs/ROUTER.md, "Metrics"). The counters are the router's
 * (router_core.c), kept across reloads so that they never go down.
 */
#include <stdio.h>

#include "router_impl.h"
#include "vdb.h"

/* The label set of a member. */
static void
member_labels(const struct router_shard *s, const struct router_member *m,
    char *buf, size_t len)
{
	snprintf(buf, len, "shard=\"%u\",member=\"%s\",role=\"%s\"", s->id,
	    m->url, m->primary ? "primary" : "replica");
}

/* The series of family `which` for one member. */
static void
metrics_member(FILE *f, const struct router_shard *s,
    struct router_member *m, int which)
{
	const struct router_member_stats *st = m->stats;
	char lab[1200];
	uint64_t cum = 0;

	member_labels(s, m, lab, sizeof(lab));
	if (which == 0)
		fprintf(f, "vecdb_router_shard_requests_total{%s} %llu\n", lab,
		    (unsigned long long) __atomic_load_n(&st->requests,
		    __ATOMIC_RELAXED));
	else if (which == 1)
		fprintf(f, "vecdb_router_shard_errors_total{%s} %llu\n", lab,
		    (unsigned long long) __atomic_load_n(&st->errors,
		    __ATOMIC_RELAXED));
	else if (which == 2)
		fprintf(f, "vecdb_router_shard_up{%s} %d\n", lab,
		    !router_member_down(m, vdb_now_ms()));
	else if (which == 3)
		fprintf(f, "vecdb_router_shard_connected{%s} %d\n", lab,
		    router_member_connected(m));
	else if (which == 5)
		fprintf(f, "vecdb_router_shard_parallelism{%s} %u\n", lab,
		    __atomic_load_n(&m->parallelism, __ATOMIC_RELAXED));
	if (which != 4)
		return;
	for (size_t b = 0; b <= ROUTER_LAT_BUCKETS; b++) {
		cum += __atomic_load_n(&st->lat[b], __ATOMIC_RELAXED);
		if (b < ROUTER_LAT_BUCKETS)
			fprintf(f, "vecdb_router_shard_duration_seconds_bucket"
			    "{%s,le=\"%g\"} %llu\n", lab,
			    (double) router_lat_bounds_us[b] / 1e6,
			    (unsigned long long) cum);
		else
			fprintf(f, "vecdb_router_shard_duration_seconds_bucket"
			    "{%s,le=\"+Inf\"} %llu\n", lab,
			    (unsigned long long) cum);
	}
	fprintf(f, "vecdb_router_shard_duration_seconds_sum{%s} %.6f\n", lab,
	    (double) __atomic_load_n(&st->lat_sum_us, __ATOMIC_RELAXED) / 1e6);
	fprintf(f, "vecdb_router_shard_duration_seconds_count{%s} %llu\n", lab,
	    (unsigned long long) cum);
}

void
router_metrics(void *ctx, FILE *f)
{
	static const char *const head[6] = {
		"# HELP vecdb_router_shard_requests_total Requests sent to a "
		"shard member.\n"
		"# TYPE vecdb_router_shard_requests_total counter\n",
		"# HELP vecdb_router_shard_errors_total Requests a shard member "
		"did not answer in time, or answered garbled.\n"
		"# TYPE vecdb_router_shard_errors_total counter\n",
		"# HELP vecdb_router_shard_up 0 while the member is skipped "
		"after a failure.\n"
		"# TYPE vecdb_router_shard_up gauge\n",
		"# HELP vecdb_router_shard_connected 1 while the router holds "
		"a connection to the member.\n"
		"# TYPE vecdb_router_shard_connected gauge\n",
		"# HELP vecdb_router_shard_duration_seconds Time to a shard "
		"member's answer.\n"
		"# TYPE vecdb_router_shard_duration_seconds histogram\n",
		"# HELP vecdb_router_shard_parallelism Requests the member "
		"says it runs at once (0: not said yet); past that many "
		"searches of a collection in flight, more go together.\n"
		"# TYPE vecdb_router_shard_parallelism gauge\n",
	};
	router *r = ctx;
	router_topology *t = router_topology_acquire(r, NULL, NULL);

	for (int which = 0; which < 6; which++) {
		fputs(head[which], f);
		for (size_t i = 0; i < t->n; i++)
			for (size_t k = 0; k < t->shards[i].n_members; k++)
				metrics_member(f, &t->shards[i],
				    &t->shards[i].members[k], which);
	}
	router_topology_release(r, t);
	fprintf(f, "# HELP vecdb_router_writes_held Writes waiting now for "
	    "their shard to have a connected primary.\n"
	    "# TYPE vecdb_router_writes_held gauge\n"
	    "vecdb_router_writes_held %llu\n"
	    "# HELP vecdb_router_writes_not_held_total Writes answered 503 "
	    "at once because half of their front end's request threads "
	    "already waited for a primary.\n"
	    "# TYPE vecdb_router_writes_not_held_total counter\n"
	    "vecdb_router_writes_not_held_total %llu\n",
	    (unsigned long long) __atomic_load_n(&r->writes_held,
	    __ATOMIC_RELAXED),
	    (unsigned long long) __atomic_load_n(&r->writes_not_held,
	    __ATOMIC_RELAXED));
	fprintf(f, "# HELP vecdb_router_search_batches_total Groups of "
	    "searches that waited for a search of their collection in "
	    "flight and were sent together, as one batch.\n"
	    "# TYPE vecdb_router_search_batches_total counter\n"
	    "vecdb_router_search_batches_total %llu\n"
	    "# HELP vecdb_router_searches_batched_total Search requests "
	    "sent in those groups.\n"
	    "# TYPE vecdb_router_searches_batched_total counter\n"
	    "vecdb_router_searches_batched_total %llu\n",
	    (unsigned long long) __atomic_load_n(&r->batch.batches,
	    __ATOMIC_RELAXED),
	    (unsigned long long) __atomic_load_n(&r->batch.batched,
	    __ATOMIC_RELAXED));
	if (r->coord == NULL)
		return;
	fprintf(f, "# HELP vecdb_router_etcd_reads_total Reads of the "
	    "members from etcd.\n"
	    "# TYPE vecdb_router_etcd_reads_total counter\n"
	    "vecdb_router_etcd_reads_total %llu\n"
	    "# HELP vecdb_router_etcd_watching 1 while the router watches "
	    "the members in etcd (0: it reads them every %d ms).\n"
	    "# TYPE vecdb_router_etcd_watching gauge\n"
	    "vecdb_router_etcd_watching %d\n",
	    (unsigned long long) __atomic_load_n(&r->etcd_reads,
	    __ATOMIC_RELAXED), ROUTER_FOLLOW_MS,
	    __atomic_load_n(&r->watching, __ATOMIC_RELAXED));
}
