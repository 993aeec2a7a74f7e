/*
 * ingest.c: `vecdb-bench ingest`: a bulk load over REST, how long until
 * it is acknowledged and until it is searchable, and what a search costs
 * meanwhile (issue 12).
 *
 *   vecdb-bench ingest [--n 200000] [--dim 128] [--batch 1000] [--seed 42]
 *                      [--threads NCPU] [--probe-ms 100] [--port P]
 *                      [--compare hnswlib]
 *
 * Writes n seeded points (uniform in [-1, 1), bench_randf from the seed:
 * with the default seed the points of `vecdb-bench rest`'s load) into
 * collection "ingest" (euclidean; dropped first if it exists), batch
 * points a request, from one keep-alive connection to
 * POST /collections/ingest/vectors/upsert, back to back. Progress goes to
 * stderr about once a second. Meanwhile a probe thread on a connection of
 * its own sends a search (limit 10, a random query) every probe-ms and
 * times it, from the first write until the load is searchable; once, it
 * also searches (limit 1) the vector of a point acknowledged before, and
 * counts a probe miss unless that point is the top hit. After the last
 * acknowledgement, GET /collections/ingest every 50 ms until its
 * pending_count is 0: the whole load is then in the index. The last line:
 *   acked_s=...        first request until the last write is acknowledged
 *   searchable_s=...   first request until pending_count is 0
 *   points_per_s=...   n / searchable_s
 *   search_p50_ms=... search_p99_ms=... search_max_ms=...  the probes
 *   peak_rss_mib=...   see below
 *   probes=... probe_misses=...
 *
 * Without --port the REST server runs in-process on a free loopback port,
 * as `vecdb-bench rest` serves it, over a fresh database in a temp dir
 * (removed at the end) with the default durability (sync) and
 * index_threads --threads (default: the online CPUs); peak_rss_mib is this
 * process's peak resident set less the bench's own copy of the points.
 * With --port the server is one already running on 127.0.0.1:P, and
 * peak_rss_mib is the largest process_resident_memory_bytes of its
 * GET /metrics, read after each probe.
 *
 * --compare hnswlib then builds the same points with hnswlib's addPoint on
 * --threads threads (M 16, ef_construction 200, our collection defaults)
 * and prints `hnswlib_build_s=... searchable_over_hnswlib=...`. The build
 * needs vecdb-bench compiled with hnswlib (libhnswlib-dev); without it,
 * --compare exits 2 before anything is written.
 */
#include <civetweb.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "api.h"
#include "bench.h"
#include "hnswlib_peer.h"

struct ingest_args {
	size_t n, dim, batch, threads;
	uint64_t seed;
	double probe_ms;
	unsigned port;         /* a running server's; 0: serve in-process */
	int compare;           /* --compare hnswlib */
};

struct probe {
	const struct ingest_args *a;
	unsigned port;
	const float *pts;
	atomic_size_t acked;   /* points acknowledged so far */
	atomic_int stop;
	double *lat;           /* latencies of the limit-10 searches, ms */
	size_t nlat, cap;
	size_t misses;
	int checked;           /* the self-search was done */
	double rss_max;        /* bytes, from the server's /metrics */
	pthread_t th;
};

/* Search answers and a /metrics page (some 5 KiB on a fresh server, more
 * with every collection and route used) fit with room to spare. */
#define PROBE_RBUF (256 * 1024)

/* Search body of q; returns its length. */
static size_t
search_json(char *buf, size_t len, size_t limit, const float *q, size_t dim)
{
	size_t off = (size_t) snprintf(buf, len,
	    "{\"limit\":%zu,\"with_payload\":false,\"vector\":", limit);

	off = bench_json_floats(buf, len, off, q, dim, 1);
	return off + (size_t) snprintf(buf + off, len - off, "}");
}

/* One search; dies unless it answers 200 (the body into rbuf). */
static void
probe_search(struct mg_connection *c, const char *body, size_t len,
    char *rbuf)
{
	int st = bench_http_call(c, "POST", "/collections/ingest/search", body,
	    len, rbuf, PROBE_RBUF);

	if (st != 200)
		bench_die("probe search: status %d: %.300s", st, rbuf);
}

/*
 * The self-search: a point acknowledged before now must be its own
 * nearest neighbour (distance 0), whether the indexer has it yet or the
 * search brute-forces it from the WAL tail.
 */
static void
probe_check(struct probe *p, struct mg_connection *c, uint64_t *seed,
    char *body, size_t blen, char *rbuf)
{
	size_t acked = atomic_load(&p->acked), id, len;
	const char *hit;

	if (acked == 0)
		return;
	(void) bench_randf(seed);
	id = (size_t) (*seed % acked);
	len = search_json(body, blen, 1, p->pts + id * p->a->dim, p->a->dim);
	probe_search(c, body, len, rbuf);
	if ((hit = strstr(rbuf, "\"id\":")) == NULL ||
	    strtoull(hit + 5, NULL, 10) != id) {
		fprintf(stderr, "probe miss: point %zu is not its own top hit: "
		    "%.300s\n", id, rbuf);
		p->misses++;
	}
	p->checked = 1;
}

/* --port: the server's resident set from its metrics. */
static void
probe_rss(struct probe *p, struct mg_connection *c, char *rbuf)
{
	static const char key[] = "\nprocess_resident_memory_bytes ";
	const char *s;
	double v;

	bench_http_ok(c, "GET", "/metrics", "", rbuf, PROBE_RBUF);
	if ((s = strstr(rbuf, key)) == NULL)
		bench_die("no process_resident_memory_bytes in /metrics");
	if ((v = strtod(s + sizeof(key) - 1, NULL)) > p->rss_max)
		p->rss_max = v;
}

/* Probe thread: a search every probe_ms until told to stop. */
static void *
probe_main(void *arg)
{
	struct probe *p = arg;
	const struct ingest_args *a = p->a;
	struct mg_connection *c = bench_http_connect(p->port);
	size_t blen = bench_upsert_cap(1, a->dim);
	char *body = malloc(blen), *rbuf = malloc(PROBE_RBUF);
	float *q = malloc(a->dim * sizeof(float));
	uint64_t seed = a->seed + 1000; /* queries apart from the points */
	double next = bench_now(), now;

	while (!atomic_load(&p->stop)) {
		/* short naps, so that the end of the load is not missed */
		if ((now = bench_now()) < next) {
			double left = (next - now) * 1e6;
			usleep(left < 10000 ? (useconds_t) left : 10000);
			continue;
		}
		for (size_t j = 0; j < a->dim; j++)
			q[j] = bench_randf(&seed);
		size_t len = search_json(body, blen, 10, q, a->dim);
		double t = bench_now();
		probe_search(c, body, len, rbuf);
		if (p->nlat == p->cap) {
			p->cap = p->cap ? p->cap * 2 : 1024;
			p->lat = realloc(p->lat, p->cap * sizeof(double));
		}
		p->lat[p->nlat++] = (bench_now() - t) * 1000;
		if (!p->checked)
			probe_check(p, c, &seed, body, blen, rbuf);
		if (a->port != 0)
			probe_rss(p, c, rbuf);
		/* a slow probe delays the next one; no burst to catch up */
		next += a->probe_ms / 1000;
		if (next < bench_now())
			next = bench_now();
	}
	/* A load shorter than one period still gets its check. */
	if (!p->checked)
		probe_check(p, c, &seed, body, blen, rbuf);
	mg_close_connection(c);
	free(body);
	free(rbuf);
	free(q);
	return NULL;
}

/* Drop "ingest" if it is there and create it afresh. */
static void
collection_reset(struct mg_connection *c, size_t dim)
{
	char body[256], rbuf[4096];
	int st;

	st = bench_http_call(c, "DELETE", "/collections/ingest", "", 0, rbuf,
	    sizeof(rbuf));
	if (st != 200 && st != 404)
		bench_die("DELETE /collections/ingest: status %d: %.300s", st,
		    rbuf);
	snprintf(body, sizeof(body), "{\"name\":\"ingest\",\"dimension\":%zu,"
	    "\"distance_metric\":\"euclidean\"}", dim);
	bench_http_ok(c, "POST", "/collections", body, rbuf, sizeof(rbuf));
}

/*
 * Write the points in batches on c while the probe runs; returns acked_s
 * and sets *searchable_s, both from the first request.
 */
static double
load(struct mg_connection *c, struct probe *p, double *searchable_s)
{
	const struct ingest_args *a = p->a;
	size_t cap = bench_upsert_cap(a->batch, a->dim), len, shown = 0;
	char *body = malloc(cap), rbuf[4096];
	double t0 = bench_now(), last = t0, acked_s, now;

	pthread_create(&p->th, NULL, probe_main, p);
	for (size_t done = 0; done < a->n;) {
		size_t m = a->n - done < a->batch ? a->n - done : a->batch;
		len = bench_upsert_json(body, cap, done, m,
		    p->pts + done * a->dim, a->dim);
		int st = bench_http_call(c, "POST",
		    "/collections/ingest/vectors/upsert", body, len, rbuf,
		    sizeof(rbuf));
		if (st != 200)
			bench_die("upsert at %zu: status %d: %.300s", done, st,
			    rbuf);
		atomic_store(&p->acked, done += m);
		if ((now = bench_now()) - last >= 1) {
			fprintf(stderr, "ingest: %zu/%zu points, %.0f "
			    "points/s\n", done, a->n,
			    (double) (done - shown) / (now - last));
			shown = done;
			last = now;
		}
	}
	acked_s = bench_now() - t0;
	while (bench_http_pending(c, "ingest") != 0)
		usleep(50 * 1000);
	*searchable_s = bench_now() - t0;
	atomic_store(&p->stop, 1);
	pthread_join(p->th, NULL);
	free(body);
	return acked_s;
}

/* Parse --flag value pairs. */
static void
ingest_parse(int argc, char **argv, struct ingest_args *a)
{
	for (int i = 2; i < argc; i += 2) {
		const char *k = argv[i], *v = i + 1 < argc ? argv[i + 1] : "";
		if (!strcmp(k, "--n"))
			a->n = strtoul(v, NULL, 10);
		else if (!strcmp(k, "--dim"))
			a->dim = strtoul(v, NULL, 10);
		else if (!strcmp(k, "--batch"))
			a->batch = strtoul(v, NULL, 10);
		else if (!strcmp(k, "--seed"))
			a->seed = strtoull(v, NULL, 10);
		else if (!strcmp(k, "--threads"))
			a->threads = strtoul(v, NULL, 10);
		else if (!strcmp(k, "--probe-ms"))
			a->probe_ms = atof(v);
		else if (!strcmp(k, "--port"))
			a->port = (unsigned) strtoul(v, NULL, 10);
		else if (!strcmp(k, "--compare") && !strcmp(v, "hnswlib"))
			a->compare = 1;
		else
			bench_die("unknown flag %s %s", k, v);
	}
	if (!a->n || !a->dim || !a->batch || !a->threads || a->probe_ms <= 0)
		bench_die("n, dim, batch, threads and probe-ms must be "
		    "positive");
	if (a->seed == 0)
		bench_die("--seed 0 would make bench_randf return -1 forever");
	if (a->threads > VECDB_INDEX_THREADS_MAX)
		bench_die("--threads is at most %d", VECDB_INDEX_THREADS_MAX);
	if (a->port > 65535)
		bench_die("--port %u is not a port", a->port);
}

/* --compare hnswlib: the same points into hnswlib; its build seconds. */
static double
hnswlib_build(const struct ingest_args *a, const float *pts)
{
#ifdef VDB_HAVE_HNSWLIB
	double t0 = bench_now();
	struct peer *h = peer_build(pts, a->n, a->dim, PEER_L2, 16, 200,
	    a->seed, a->threads);
	double s = bench_now() - t0;

	peer_free(h);
	return s;
#else
	(void) a;
	(void) pts;
	return 0;
#endif
}

int
bench_ingest(int argc, char **argv)
{
	struct ingest_args a = { 200000, 128, 1000, 0, 42, 100, 0, 0 };
	struct probe p = { 0 };
	struct api_backend b;
	struct api_server *srv = NULL;
	struct mg_connection *c;
	struct rusage ru;
	vecdb_options o;
	vecdb *db = NULL;
	char *tmp = NULL;
	float *pts;
	double acked_s, searchable_s, rss_mib, hs;
	uint64_t seed;

	a.threads = (size_t) sysconf(_SC_NPROCESSORS_ONLN);
	ingest_parse(argc, argv, &a);
#ifndef VDB_HAVE_HNSWLIB
	if (a.compare) {
		fprintf(stderr, "--compare hnswlib: vecdb-bench was built "
		    "without hnswlib (install libhnswlib-dev, rebuild)\n");
		return 2;
	}
#endif
	p.a = &a;
	p.pts = pts = malloc(a.n * a.dim * sizeof(float));
	seed = a.seed;
	for (size_t i = 0; i < a.n * a.dim; i++)
		pts[i] = bench_randf(&seed);
	if ((p.port = a.port) == 0) {
		tmp = bench_tmpdir();
		vecdb_options_init(&o);
		o.index_threads = (uint32_t) a.threads;
		bench_check(vecdb_open(tmp, &o, &db), "open");
		/* the writer's and the probe's connections, and spares */
		srv = bench_serve(db, &b, 4);
		p.port = api_server_port(srv);
	} else
		mg_init_library(0);
	c = bench_http_connect(p.port);
	collection_reset(c, a.dim);
	acked_s = load(c, &p, &searchable_s);
	mg_close_connection(c);
	if (srv != NULL) {
		/*
		 * ru_maxrss counts the bench's own copy of the points too
		 * (touched before the server started, so it is in the
		 * peak); it is taken off. The JSON buffers, a few MiB, stay.
		 */
		getrusage(RUSAGE_SELF, &ru);
		rss_mib = (double) ru.ru_maxrss / 1024 -
		    (double) (a.n * a.dim * sizeof(float)) / 1048576;
		api_server_stop(srv);
		vecdb_close(db);
		bench_rmrf(tmp);
		free(tmp);
	} else
		rss_mib = p.rss_max / 1048576;
	qsort(p.lat, p.nlat, sizeof(double), bench_dcmp);
	printf("acked_s=%.2f searchable_s=%.2f points_per_s=%.0f "
	    "search_p50_ms=%.1f search_p99_ms=%.1f search_max_ms=%.1f "
	    "peak_rss_mib=%.0f probes=%zu probe_misses=%zu\n", acked_s,
	    searchable_s, (double) a.n / searchable_s,
	    p.nlat ? p.lat[p.nlat / 2] : 0,
	    p.nlat ? p.lat[(p.nlat * 99) / 100] : 0,
	    p.nlat ? p.lat[p.nlat - 1] : 0, rss_mib, p.nlat, p.misses);
	fflush(stdout);
	if (a.compare) {
		hs = hnswlib_build(&a, pts);
		printf("hnswlib_build_s=%.2f searchable_over_hnswlib=%.2f\n",
		    hs, searchable_s / hs);
	}
	free(p.lat);
	free(pts);
	return p.misses != 0;
}
