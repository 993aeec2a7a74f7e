/*
 * api_metrics.c: counters and histograms, rendered in the Prometheus text
 * format 0.0.4. Everything is lock-free: relaxed atomic adds on the hot
 * path, and a scrape reads whatever is there.
 */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <unistd.h>

#include "api_impl.h"

#define NBUCKETS 14

/* HTTP statuses counted per route; anything else lands in "other". */
static const int codes[] = { 200, 400, 401, 403, 404, 405, 409, 413, 500,
	503, 507 };
#define NCODES (sizeof(codes) / sizeof(codes[0]))

static const double time_buckets[NBUCKETS] = { 0.0001, 0.00025, 0.0005,
	0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1, 2.5, 10 };
static const double size_buckets[NBUCKETS] = { 1, 2, 5, 10, 20, 50, 100,
	200, 500, 1000, 2000, 5000, 10000, 100000 };

struct hist {
	_Atomic uint64_t buckets[NBUCKETS]; /* non-cumulative counts */
	_Atomic uint64_t count;
	_Atomic uint64_t sum_micros;        /* sum scaled by 1e6 */
};

struct api_metrics {
	size_t n_routes;
	_Atomic uint64_t *requests;   /* [route][NCODES + 1] */
	_Atomic uint64_t queries;
	_Atomic uint64_t inserts;
	struct hist h[API_H_COUNT];
};

static const struct {
	const char *name;
	const char *help;
	const double *bounds;
} hists[API_H_COUNT] = {
	[API_H_QUERY] = { "vecdb_query_duration_seconds",
		"Time to answer a search, recommend or discover request.",
		time_buckets },
	[API_H_INSERT] = { "vecdb_insert_duration_seconds",
		"Time to commit a write request.", time_buckets },
	[API_H_BATCH] = { "vecdb_batch_insert_size",
		"Points per write request.", size_buckets },
};

struct api_metrics *
api_metrics_new(size_t n_routes)
{
	struct api_metrics *m = vdb_calloc(1, sizeof(*m));

	if (m == NULL)
		return NULL;
	m->n_routes = n_routes;
	m->requests = vdb_calloc(n_routes * (NCODES + 1), sizeof(uint64_t));
	if (m->requests == NULL) {
		vdb_free(m);
		return NULL;
	}
	return m;
}

void
api_metrics_free(struct api_metrics *m)
{
	if (m == NULL)
		return;
	vdb_free((void *) m->requests);
	vdb_free(m);
}

void
api_metrics_request(struct api_metrics *m, size_t route, int status)
{
	size_t c = NCODES;

	for (size_t i = 0; i < NCODES; i++)
		if (codes[i] == status)
			c = i;
	if (route < m->n_routes)
		atomic_fetch_add_explicit(&m->requests[route * (NCODES + 1) + c],
		    1, memory_order_relaxed);
}

void
api_metrics_observe(struct api_metrics *m, enum api_hist h, double v)
{
	struct hist *x = &m->h[h];
	size_t b = 0;

	while (b < NBUCKETS - 1 && v > hists[h].bounds[b])
		b++;
	if (v <= hists[h].bounds[b])
		atomic_fetch_add_explicit(&x->buckets[b], 1,
		    memory_order_relaxed);
	atomic_fetch_add_explicit(&x->count, 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&x->sum_micros, (uint64_t) (v * 1e6),
	    memory_order_relaxed);
}

void
api_metrics_add_queries(struct api_metrics *m, uint64_t n)
{
	atomic_fetch_add_explicit(&m->queries, n, memory_order_relaxed);
}

void
api_metrics_add_inserts(struct api_metrics *m, uint64_t n)
{
	atomic_fetch_add_explicit(&m->inserts, n, memory_order_relaxed);
}

/* Render one histogram. */
static void
render_hist(FILE *f, const struct api_metrics *m, enum api_hist h)
{
	const struct hist *x = &m->h[h];
	uint64_t cum = 0;

	fprintf(f, "# HELP %s %s\n# TYPE %s histogram\n", hists[h].name,
	    hists[h].help, hists[h].name);
	for (size_t b = 0; b < NBUCKETS; b++) {
		cum += atomic_load_explicit(&x->buckets[b], memory_order_relaxed);
		fprintf(f, "%s_bucket{le=\"%g\"} %llu\n", hists[h].name,
		    hists[h].bounds[b], (unsigned long long) cum);
	}
	fprintf(f, "%s_bucket{le=\"+Inf\"} %llu\n%s_sum %.6f\n%s_count %llu\n",
	    hists[h].name, (unsigned long long) atomic_load(&x->count),
	    hists[h].name, (double) atomic_load(&x->sum_micros) / 1e6,
	    hists[h].name, (unsigned long long) atomic_load(&x->count));
}

/* vecdb_index_build_duration_seconds, from the engine's counters. */
static void
render_build_hist(FILE *f, const vecdb_stats *st)
{
	static const double bounds[] = VECDB_BUILD_BUCKET_BOUNDS;
	uint64_t cum = 0;

	fprintf(f, "# HELP vecdb_index_build_duration_seconds Time to build "
		   "or rebuild a vector index.\n# TYPE "
		   "vecdb_index_build_duration_seconds histogram\n");
	for (int b = 0; b < VECDB_BUILD_BUCKETS; b++) {
		cum += st->index_build_buckets[b];
		fprintf(f, "vecdb_index_build_duration_seconds_bucket{le=\"%g\"} "
			   "%llu\n", bounds[b], (unsigned long long) cum);
	}
	fprintf(f, "vecdb_index_build_duration_seconds_bucket{le=\"+Inf\"} "
		   "%llu\nvecdb_index_build_duration_seconds_sum %.6f\n"
		   "vecdb_index_build_duration_seconds_count %llu\n",
	    (unsigned long long) st->index_builds, st->index_build_seconds,
	    (unsigned long long) st->index_builds);
}

/*
 * vecdb_http_requests_total{method, route, code}. Routes that share a
 * pattern (GET and POST /collections) are told apart by method: without
 * it they would print the same series twice, which Prometheus refuses.
 */
static void
render_requests(FILE *f, const struct api_metrics *m,
    const char *const *names, const char *const *methods)
{
	fprintf(f, "# HELP vecdb_http_requests_total HTTP requests by method, "
		   "route and status code.\n# TYPE vecdb_http_requests_total "
		   "counter\n");
	for (size_t r = 0; r < m->n_routes; r++)
		for (size_t c = 0; c <= NCODES; c++) {
			uint64_t v = atomic_load(&m->requests[r * (NCODES + 1) + c]);
			if (v == 0)
				continue;
			if (c < NCODES)
				fprintf(f, "vecdb_http_requests_total{method="
				    "\"%s\",route=\"%s\",code=\"%d\"} %llu\n",
				    methods[r], names[r], codes[c],
				    (unsigned long long) v);
			else
				fprintf(f, "vecdb_http_requests_total{method="
				    "\"%s\",route=\"%s\",code=\"other\"} "
				    "%llu\n", methods[r], names[r],
				    (unsigned long long) v);
		}
}

/* Per-collection values for the renderer below. */
static double
st_vectors(const vecdb_collection_stats *st)
{
	return (double) st->vector_count;
}

static double
st_pending(const vecdb_collection_stats *st)
{
	return (double) st->pending_count;
}

static double
st_rate(const vecdb_collection_stats *st)
{
	return st->indexing_rate;
}

/* One family with a sample per collection whose stats were read. */
static void
render_per_collection(FILE *f, const char *name, const char *type,
    const char *help, char **names, const vecdb_collection_stats *st,
    const uint8_t *ok, size_t n, double (*value)(const vecdb_collection_stats *))
{
	fprintf(f, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
	for (size_t i = 0; i < n; i++)
		if (ok[i])
			fprintf(f, "%s{collection=\"%s\"} %.15g\n", name,
			    names[i], value(&st[i]));
}

/* Collections, and per collection its points, pending writes and
 * indexing rate, from the backend. */
static void
render_collections(FILE *f, const struct api_backend *b)
{
	vecdb_collection_config cfg;
	vecdb_collection_stats *st;
	char **names = NULL;
	uint8_t *ok;
	size_t n = 0, m;

	if (b->collection_list(b->ctx, &names, &n) != VECDB_OK)
		n = 0;
	/* These two are current counts and can go down, but their names end
	 * in _total, which promtool accepts only on counters: typed counter
	 * to keep the names the API promises (docs/API.md says so). */
	fprintf(f, "# HELP vecdb_collections_total Collections now (can "
		   "decrease).\n# TYPE vecdb_collections_total counter\n"
		   "vecdb_collections_total %zu\n", n);
	st = vdb_calloc(n ? n : 1, sizeof(*st));
	ok = vdb_calloc(n ? n : 1, 1);
	m = st != NULL && ok != NULL ? n : 0;
	for (size_t i = 0; i < m; i++)
		ok[i] = b->collection_get(b->ctx, names[i], &cfg, &st[i]) ==
		    VECDB_OK;
	render_per_collection(f, "vecdb_vectors_total", "counter",
	    "Points now, per collection (can decrease).", names, st, ok, m,
	    st_vectors);
	render_per_collection(f, "vecdb_collection_pending_points", "gauge",
	    "Writes and deletes committed but not yet in the index.", names,
	    st, ok, m, st_pending);
	render_per_collection(f, "vecdb_collection_indexing_rate", "gauge",
	    "Writes and deletes the indexer applied a second, lately.", names,
	    st, ok, m, st_rate);
	vdb_free(st);
	vdb_free(ok);
	vecdb_names_free(names, n);
}

/* Process CPU and resident memory, as the Prometheus clients name them. */
static void
render_process(FILE *f)
{
	struct rusage ru;
	long pages = 0, rss = 0;
	FILE *sm = fopen("/proc/self/statm", "r");

	getrusage(RUSAGE_SELF, &ru);
	if (sm != NULL) {
		if (fscanf(sm, "%ld %ld", &pages, &rss) != 2)
			rss = 0;
		fclose(sm);
	}
	fprintf(f, "# HELP process_cpu_seconds_total User and system CPU "
		   "seconds.\n# TYPE process_cpu_seconds_total counter\n"
		   "process_cpu_seconds_total %.3f\n",
	    (double) ru.ru_utime.tv_sec + (double) ru.ru_stime.tv_sec +
		(double) (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6);
	fprintf(f, "# HELP process_resident_memory_bytes Resident memory.\n"
		   "# TYPE process_resident_memory_bytes gauge\n"
		   "process_resident_memory_bytes %ld\n",
	    rss * sysconf(_SC_PAGESIZE));
}

char *
api_metrics_render(struct api_metrics *m, const struct api_backend *b,
    const char *const *route_names, const char *const *route_methods,
    size_t n_routes, double uptime_s, const struct httpd_stats *hs)
{
	vecdb_stats st;
	char *out = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&out, &len);

	(void) n_routes;
	if (f == NULL)
		return NULL;
	if (b->stats(b->ctx, &st) != VECDB_OK)
		memset(&st, 0, sizeof(st));
	fprintf(f, "# HELP vecdb_queries_total Searches answered (a batch "
		   "counts each search).\n# TYPE vecdb_queries_total counter\n"
		   "vecdb_queries_total %llu\n",
	    (unsigned long long) atomic_load(&m->queries));
	fprintf(f, "# HELP vecdb_inserts_total Points written.\n"
		   "# TYPE vecdb_inserts_total counter\n"
		   "vecdb_inserts_total %llu\n",
	    (unsigned long long) atomic_load(&m->inserts));
	for (int h = 0; h < API_H_COUNT; h++)
		render_hist(f, m, (enum api_hist) h);
	render_build_hist(f, &st);
	render_collections(f, b);
	fprintf(f, "# HELP vecdb_memory_usage_bytes Memory held by indexes "
		   "and caches.\n# TYPE vecdb_memory_usage_bytes gauge\n"
		   "vecdb_memory_usage_bytes %llu\n",
	    (unsigned long long) st.memory_bytes);
	fprintf(f, "# HELP vecdb_disk_usage_bytes Bytes used in the data "
		   "file.\n# TYPE vecdb_disk_usage_bytes gauge\n"
		   "vecdb_disk_usage_bytes %llu\n",
	    (unsigned long long) st.disk_bytes);
	fprintf(f, "# HELP vecdb_uptime_seconds Seconds since start.\n"
		   "# TYPE vecdb_uptime_seconds gauge\n"
		   "vecdb_uptime_seconds %.0f\n", uptime_s);
	render_requests(f, m, route_names, route_methods);
	fprintf(f, "# HELP vecdb_http_connections Open HTTP connections.\n"
		   "# TYPE vecdb_http_connections gauge\n"
		   "vecdb_http_connections %u\n"
		   "# HELP vecdb_http_refused_total Requests answered 503 "
		   "over the connection limits.\n"
		   "# TYPE vecdb_http_refused_total counter\n"
		   "vecdb_http_refused_total %llu\n"
		   "# HELP vecdb_http_timeouts_total Connections closed past "
		   "a deadline (headers, body, keep-alive idle).\n"
		   "# TYPE vecdb_http_timeouts_total counter\n"
		   "vecdb_http_timeouts_total %llu\n", hs->connections,
	    (unsigned long long) hs->refused, (unsigned long long) hs->late);
	if (b->metrics != NULL)
		b->metrics(b->ctx, f);
	render_process(f);
	fclose(f);
	return out;
}
