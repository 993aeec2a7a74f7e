/*
 * ann.c: approximate-search benchmarks, `vecdb-bench gt` and `ann`.
 *
 *   vecdb-bench gt --base F --query F --k 100 --out F [--metric l2]
 *                  [--threads N]
 *	exact top-k of every query (ivecs), blocked so that a tile of the
 *	base is read from memory once per 64 queries.
 *
 *   vecdb-bench ann --base F --query F --gt F [--metric l2|cosine|dot|
 *                   manhattan] [--m 16] [--ef-construction 200]
 *                   [--ef 10,16,32,64,128,256,512] [--k 10] [--threads 1]
 *                   [--seed 100] [--reps 3] [--compare hnswlib]
 *                   [--build-threads 1] [--quantization none|scalar|
 *                   binary|product] [--segments S] [--oversampling 1]
 *                   [--rescore 1] [--always-ram 0]
 *	builds our index directly through storage/index/hnsw.h (the storage
 *	engine's integration comes later), then for each ef runs every query
 *	and prints `ef=64 recall=0.9612 qps=12345.6`, and once
 *	`build_s=... peak_rss_mib=...`. With --compare hnswlib the same
 *	build and queries run on hnswlib too, interleaved with ours (ours,
 *	then hnswlib, for each ef and repetition; the best of --reps counts),
 *	side by side, with the QPS ratio at the smallest ef reaching recall
 *	0.90, 0.95 and 0.99.
 *
 * Each engine lives in its own forked child, so its peak RSS (VmHWM) is
 * its own: the child reports it after the build and then serves "run this
 * ef" requests over a pipe. --build-threads sets the threads of every
 * engine's build (default 1): ours inserts row i on thread i % N through
 * hnsw.h, or indexes with index_threads N through the embedded API;
 * hnswlib calls addPoint the same way. --threads applies to the searches.
 *
 * With --quantization our collection (or graph) is quantized, and each
 * search rescores oversampling x k candidates with the original vectors:
 * read from LMDB through the embedded API (the product's path), or, with
 * --via hnsw, from the benchmark's own copy of the base. --rescore 0
 * answers with the codes' distances. index_rss_mib is the anonymous memory
 * an engine's build left (RssAnon after it, less before): the index, not
 * LMDB's file pages, which the kernel caches and may drop.
 *
 * Files are the usual fvecs/ivecs: per row an int32 count, then the
 * values.
 */
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bench.h"
#include "hnswlib_peer.h"
#include "hnsw.h"
#include "kernels.h"

#define MAX_EFS 32

/* A matrix read from an fvecs or ivecs file. */
struct mat {
	void *v;       /* n rows of d values, contiguous */
	size_t n, d;
};

struct opts {
	const char *base, *query, *gt, *out, *compare;
	const char *via;           /* "embedded" (default) or "hnsw" */
	vecdb_metric metric;
	uint32_t m, efc, k, threads, reps;
	uint32_t build_threads;    /* of every engine's build */
	uint64_t seed;
	uint32_t efs[MAX_EFS];
	size_t nef;
	vecdb_quant_config quant;  /* --quantization and friends */
	float oversampling;        /* --oversampling */
	int rescore;               /* --rescore */
};

/* Parse "none|scalar|binary|product". */
static vecdb_quant
parse_quant(const char *s)
{
	static const char *const names[] = { "none", "scalar", "binary",
		"product" };

	for (int i = 0; i < 4; i++)
		if (strcmp(s, names[i]) == 0)
			return (vecdb_quant) i;
	bench_die("unknown quantization %s", s);
	return VECDB_QUANT_NONE;
}

/* ===== Helpers ===== */

/* Read a whole [count][count x 4 bytes] file into a matrix. */
static struct mat
read_vecs(const char *path)
{
	FILE *f = fopen(path, "rb");
	struct mat m = { NULL, 0, 0 };
	int32_t d;

	if (f == NULL || fread(&d, 4, 1, f) != 1 || d <= 0)
		bench_die("cannot read %s", path);
	fseek(f, 0, SEEK_END);
	long size = ftell(f);
	size_t rowb = 4 + (size_t) d * 4;
	if (size < 0 || (size_t) size % rowb != 0)
		bench_die("%s: not an fvecs/ivecs file", path);
	m.d = (size_t) d;
	m.n = (size_t) size / rowb;
	m.v = malloc(m.n * m.d * 4);
	fseek(f, 0, SEEK_SET);
	for (size_t i = 0; i < m.n; i++) {
		if (fread(&d, 4, 1, f) != 1 || (size_t) d != m.d ||
		    fread((char *) m.v + i * m.d * 4, 4, m.d, f) != m.d)
			bench_die("%s: bad row", path);
	}
	fclose(f);
	return m;
}

/* Parse "l2|euclidean|cosine|dot|manhattan". */
static vecdb_metric
parse_metric(const char *s)
{
	if (strcmp(s, "l2") == 0 || strcmp(s, "euclidean") == 0)
		return VECDB_EUCLIDEAN;
	if (strcmp(s, "cosine") == 0)
		return VECDB_COSINE;
	if (strcmp(s, "dot") == 0)
		return VECDB_DOT;
	if (strcmp(s, "manhattan") == 0)
		return VECDB_MANHATTAN;
	bench_die("unknown metric %s", s);
	return VECDB_EUCLIDEAN;
}

/* Parse a comma-separated ef list. */
static void
parse_efs(struct opts *o, const char *s)
{
	o->nef = 0;
	for (const char *p = s; *p && o->nef < MAX_EFS;) {
		o->efs[o->nef++] = (uint32_t) strtoul(p, NULL, 10);
		p = strchr(p, ',');
		if (p == NULL)
			break;
		p++;
	}
}

/* Parse --flag value pairs shared by gt and ann. */
static void
parse(int argc, char **argv, struct opts *o)
{
	*o = (struct opts) { .metric = VECDB_EUCLIDEAN, .m = 16, .efc = 200,
		.k = 10, .threads = 1, .reps = 3, .seed = 100, .via = "embedded",
		.quant = { VECDB_QUANT_NONE, 0.99f, 0, 0, 0 }, .oversampling = 1,
		.rescore = 1,
		.build_threads = 1 };
	parse_efs(o, "10,16,32,64,128,256,512");
	for (int i = 2; i + 1 < argc; i += 2) {
		const char *k = argv[i], *v = argv[i + 1];
		if (strcmp(k, "--base") == 0) o->base = v;
		else if (strcmp(k, "--query") == 0) o->query = v;
		else if (strcmp(k, "--gt") == 0) o->gt = v;
		else if (strcmp(k, "--out") == 0) o->out = v;
		else if (strcmp(k, "--compare") == 0) o->compare = v;
		else if (strcmp(k, "--via") == 0) o->via = v;
		else if (strcmp(k, "--metric") == 0) o->metric = parse_metric(v);
		else if (strcmp(k, "--m") == 0) o->m = (uint32_t) atoi(v);
		else if (strcmp(k, "--ef-construction") == 0)
			o->efc = (uint32_t) atoi(v);
		else if (strcmp(k, "--k") == 0) o->k = (uint32_t) atoi(v);
		else if (strcmp(k, "--threads") == 0)
			o->threads = (uint32_t) atoi(v);
		else if (strcmp(k, "--reps") == 0) o->reps = (uint32_t) atoi(v);
		else if (strcmp(k, "--build-threads") == 0)
			o->build_threads = (uint32_t) atoi(v);
		else if (strcmp(k, "--seed") == 0) o->seed = strtoull(v, 0, 10);
		else if (strcmp(k, "--ef") == 0) parse_efs(o, v);
		else if (strcmp(k, "--quantization") == 0)
			o->quant.type = parse_quant(v);
		else if (strcmp(k, "--segments") == 0)
			o->quant.segments = (uint32_t) atoi(v);
		else if (strcmp(k, "--always-ram") == 0)
			o->quant.always_ram = atoi(v);
		else if (strcmp(k, "--oversampling") == 0)
			o->oversampling = strtof(v, NULL);
		else if (strcmp(k, "--rescore") == 0) o->rescore = atoi(v);
		else bench_die("unknown flag %s", k);
	}
	if (o->k == 0 || o->threads == 0 || o->reps == 0 || o->nef == 0 ||
	    o->build_threads == 0 || o->build_threads > 256)
		bench_die("%s", "k, threads, build-threads, reps and ef must be "
		    ">= 1");
}

/* Run fn(arg, t) on t = 0..n-1 threads and wait. */
static void
run_threads(uint32_t n, void *(*fn)(void *), void **args)
{
	pthread_t th[256];

	if (n > 256)
		n = 256;
	for (uint32_t t = 0; t < n; t++)
		pthread_create(&th[t], NULL, fn, args[t]);
	for (uint32_t t = 0; t < n; t++)
		pthread_join(th[t], NULL);
}

/* A figure from /proc/self/status, in MiB. */
static double
status_mib(const char *key)
{
	FILE *f = fopen("/proc/self/status", "r");
	char line[256];
	double v = 0;

	while (f != NULL && fgets(line, sizeof(line), f) != NULL)
		if (strncmp(line, key, strlen(key)) == 0)
			v = strtod(line + strlen(key) + 1, NULL) / 1024.0;
	if (f != NULL)
		fclose(f);
	return v;
}

/* The CPU model from /proc/cpuinfo. */
static void
cpu_model(char *buf, size_t len)
{
	FILE *f = fopen("/proc/cpuinfo", "r");
	char line[512];

	snprintf(buf, len, "unknown");
	while (f != NULL && fgets(line, sizeof(line), f) != NULL) {
		char *c = strchr(line, ':');
		if (strncmp(line, "model name", 10) == 0 && c != NULL) {
			snprintf(buf, len, "%s", c + 2);
			buf[strcspn(buf, "\n")] = '\0';
			break;
		}
	}
	if (f != NULL)
		fclose(f);
}

/* ===== gt: exact ground truth ===== */

#define GT_QB 64   /* queries a block: they share each base tile */
#define GT_TB 64   /* base rows a tile (~200 KB at 784-d: stays in L2) */

struct gt_job {
	const struct opts *o;
	const struct mat *base, *query;
	const float *qn;           /* queries prepared for the metric */
	const float *bn;           /* base prepared (cosine: normalised) */
	int32_t *out;              /* nq x k ids */
	atomic_size_t *next;       /* next query block */
};

/* Insert (d, id) into a max-heap of at most k by (distance, id). */
static void
topk_push(float *hd, int32_t *hi, size_t *n, size_t k, float d, int32_t id)
{
	size_t i;

	if (*n == k) {
		if (d > hd[0] || (d == hd[0] && id > hi[0]))
			return;
		/* Replace the root and sift down. */
		for (i = 0;;) {
			size_t c = 2 * i + 1;
			if (c >= k)
				break;
			if (c + 1 < k && (hd[c + 1] > hd[c] ||
			    (hd[c + 1] == hd[c] && hi[c + 1] > hi[c])))
				c++;
			if (hd[c] < d || (hd[c] == d && hi[c] < id))
				break;
			hd[i] = hd[c];
			hi[i] = hi[c];
			i = c;
		}
	} else {
		for (i = (*n)++; i > 0; i = (i - 1) / 2) {
			size_t p = (i - 1) / 2;
			if (hd[p] > d || (hd[p] == d && hi[p] > id))
				break;
			hd[i] = hd[p];
			hi[i] = hi[p];
		}
	}
	hd[i] = d;
	hi[i] = id;
}

/* Sort a finished heap ascending into out. */
static void
topk_sorted(float *hd, int32_t *hi, size_t n, int32_t *out)
{
	for (size_t i = 0; i < n; i++) {
		size_t best = i;
		for (size_t j = i + 1; j < n; j++)
			if (hd[j] < hd[best] ||
			    (hd[j] == hd[best] && hi[j] < hi[best]))
				best = j;
		float td = hd[i];
		int32_t ti = hi[i];
		hd[i] = hd[best];
		hi[i] = hi[best];
		hd[best] = td;
		hi[best] = ti;
		out[i] = hi[i];
	}
}

/* The internal distance of the benchmark metric (smaller is closer). */
static float
gt_dist(const kern_ops *k, vecdb_metric m, const float *q, const float *x,
    size_t dim)
{
	switch (m) {
	case VECDB_EUCLIDEAN:
		return k->dist[KERN_L2SQ][0](q, x, dim);
	case VECDB_MANHATTAN:
		return k->dist[KERN_L1][0](q, x, dim);
	default: /* dot; cosine on normalised copies */
		return -k->dist[KERN_DOT][0](q, x, dim);
	}
}

/* One query block against the whole base, tile by tile. */
static void
gt_block(const struct gt_job *j, size_t q0, size_t q1, float *hd,
    int32_t *hi, size_t *hn)
{
	const kern_ops *k = kern_ops_best();
	size_t d = j->base->d, kk = j->o->k;

	memset(hn, 0, GT_QB * sizeof(size_t));
	for (size_t b0 = 0; b0 < j->base->n; b0 += GT_TB) {
		size_t b1 = b0 + GT_TB < j->base->n ? b0 + GT_TB : j->base->n;
		for (size_t q = q0; q < q1; q++)
			for (size_t b = b0; b < b1; b++)
				topk_push(hd + (q - q0) * kk, hi + (q - q0) * kk,
				    &hn[q - q0], kk, gt_dist(k, j->o->metric,
				    j->qn + q * d, j->bn + b * d, d),
				    (int32_t) b);
	}
	for (size_t q = q0; q < q1; q++)
		topk_sorted(hd + (q - q0) * kk, hi + (q - q0) * kk, hn[q - q0],
		    j->out + q * kk);
}

/* A gt worker: takes query blocks until none are left. */
static void *
gt_worker(void *arg)
{
	struct gt_job *j = arg;
	size_t kk = j->o->k;
	float *hd = malloc(GT_QB * kk * sizeof(float));
	int32_t *hi = malloc(GT_QB * kk * sizeof(int32_t));
	size_t hn[GT_QB];

	for (;;) {
		size_t q0 = atomic_fetch_add(j->next, GT_QB);
		if (q0 >= j->query->n)
			break;
		size_t q1 = q0 + GT_QB < j->query->n ? q0 + GT_QB : j->query->n;
		gt_block(j, q0, q1, hd, hi, hn);
	}
	free(hd);
	free(hi);
	return NULL;
}

/* A normalised copy of a matrix (cosine), or the matrix itself. */
static float *
prepared(const struct mat *m, vecdb_metric metric)
{
	if (metric != VECDB_COSINE)
		return m->v;
	float *c = malloc(m->n * m->d * sizeof(float));
	memcpy(c, m->v, m->n * m->d * sizeof(float));
	for (size_t i = 0; i < m->n; i++)
		kern_normalize(c + i * m->d, m->d);
	return c;
}

/* Write n rows of k ids as ivecs. */
static void
write_ivecs(const char *path, const int32_t *ids, size_t n, size_t k)
{
	FILE *f = fopen(path, "wb");
	int32_t kk = (int32_t) k;

	if (f == NULL)
		bench_die("cannot write %s", path);
	for (size_t i = 0; i < n; i++)
		if (fwrite(&kk, 4, 1, f) != 1 ||
		    fwrite(ids + i * k, 4, k, f) != k)
			bench_die("cannot write %s", path);
	if (fclose(f) != 0)
		bench_die("cannot write %s", path);
}

int
bench_gt_main(int argc, char **argv)
{
	struct opts o;
	atomic_size_t next = 0;

	parse(argc, argv, &o);
	if (o.base == NULL || o.query == NULL || o.out == NULL)
		bench_die("%s", "gt needs --base, --query and --out");
	if (o.threads == 1)
		o.threads = (uint32_t) sysconf(_SC_NPROCESSORS_ONLN);
	struct mat base = read_vecs(o.base), query = read_vecs(o.query);
	if (base.d != query.d || o.k > base.n)
		bench_die("%s", "dimension mismatch, or k above the base size");
	struct gt_job j = { &o, &base, &query, prepared(&query, o.metric),
		prepared(&base, o.metric),
		malloc(query.n * o.k * sizeof(int32_t)), &next };
	void *args[256];
	for (int t = 0; t < 256; t++)
		args[t] = &j;
	double t0 = bench_now();
	run_threads(o.threads, gt_worker, args);
	write_ivecs(o.out, j.out, query.n, o.k);
	printf("gt: %zu queries x %zu base, k=%u, %u threads, %.1f s\n",
	    query.n, base.n, o.k, o.threads, bench_now() - t0);
	return 0;
}

/* ===== ann: the engines ===== */

/* One engine under test, in its child process. */
struct engine {
	const char *name;
	void *idx;                                  /* built index */
	void (*build)(struct engine *, const struct opts *, const struct mat *);
	size_t (*search)(struct engine *, const float *q, uint32_t k,
	    uint32_t ef, uint64_t *labels);
	void (*set_ef)(struct engine *, uint32_t ef);
	const struct opts *o;                       /* set in the child */
	const struct mat *base;                     /* likewise */
};

/* One build thread's share of ours: rows t, t + nt, ... */
struct ours_share {
	hnsw_index *h;
	const struct mat *b;
	size_t t, nt;
};

/* Insert a share. */
static void *
ours_insert(void *arg)
{
	struct ours_share *s = arg;

	for (size_t i = s->t; i < s->b->n; i += s->nt)
		if (hnsw_insert(s->h, i, (const float *) s->b->v +
		    i * s->b->d) != 0)
			bench_die("%s", "hnsw_insert failed");
	return NULL;
}

/* Build ours through hnsw.h, on --build-threads threads. */
static void
ours_build(struct engine *e, const struct opts *o, const struct mat *b)
{
	hnsw_config c = { .dim = (uint32_t) b->d, .metric = o->metric, .m = o->m,
		.ef_construction = o->efc, .seed = o->seed, .quant = o->quant };
	struct ours_share sh[256];
	void *args[256];
	hnsw_index *h;

	if (hnsw_new(&c, &h) != VECDB_OK || hnsw_reserve(h, b->n) != VECDB_OK)
		bench_die("%s", "hnsw_new failed");
	for (uint32_t t = 0; t < o->build_threads; t++) {
		sh[t] = (struct ours_share) { h, b, t, o->build_threads };
		args[t] = &sh[t];
	}
	run_threads(o->build_threads, ours_insert, args);
	e->idx = h;
}

static int
hit_order(const void *a, const void *b)
{
	const hnsw_hit *x = a, *y = b;

	return x->dist < y->dist ? -1 : x->dist > y->dist;
}

/* One query on ours; a quantized graph's candidates are rescored from
 * the base (e->base) unless --rescore 0. */
static size_t
ours_search(struct engine *e, const float *q, uint32_t k, uint32_t ef,
    uint64_t *labels)
{
	hnsw_hit hits[4096];
	size_t n = 0;
	uint32_t want = k;
	int rescore = e->o->rescore && hnsw_quantized(e->idx) !=
	    VECDB_QUANT_NONE;

	if (rescore) {
		want = (uint32_t) ceilf(e->o->oversampling * (float) k);
		want = want < k ? k : want > 4096 ? 4096 : want;
	}
	if (hnsw_search(e->idx, q, want, ef, NULL, NULL, hits, &n) != VECDB_OK)
		bench_die("%s", "hnsw_search failed");
	if (rescore) {
		const struct mat *b = e->base;
		for (size_t i = 0; i < n; i++)
			hits[i].dist = kern_distance(kern_ops_best(),
			    e->o->metric, VECDB_FLOAT32, q, (const float *)
			    b->v + hits[i].label * b->d, b->d);
		qsort(hits, n, sizeof(*hits), hit_order);
		if (n > k)
			n = k;
	}
	for (size_t i = 0; i < n; i++)
		labels[i] = hits[i].label;
	return n;
}

/* ef is per query for ours. */
static void
ours_set_ef(struct engine *e, uint32_t ef)
{
	(void) e;
	(void) ef;
}

/* ===== ann through the embedded API ===== */

/* The database an embedded engine runs in. */
struct emb {
	vecdb *db;
	char *dir;
	uint32_t dim;
};

/*
 * Build through include/vecdb.h: batches of 1000 upserts (ids = row
 * numbers) into a buffered-durability database in a temp dir, then wait
 * for the indexer. Build time counts LMDB writes and indexing both.
 */
static void
emb_build(struct engine *e, const struct opts *o, const struct mat *b)
{
	struct emb *x = calloc(1, sizeof(*x));
	vecdb_collection_config cfg;
	vecdb_point *p = calloc(1000, sizeof(*p));
	vecdb_options vo;

	x->dir = bench_tmpdir();
	x->dim = (uint32_t) b->d;
	vecdb_options_init(&vo);
	vo.durability = VECDB_BUFFERED;
	vo.full_scan_threshold = 0;
	vo.index_threads = o->build_threads;
	if (vecdb_open(x->dir, &vo, &x->db) != VECDB_OK)
		bench_die("open: %s", vecdb_errmsg());
	vecdb_collection_config_init(&cfg, "ann", x->dim, o->metric);
	cfg.index.max_connections = o->m;
	cfg.index.ef_construction = o->efc;
	cfg.quantization = o->quant;
	if (vecdb_collection_create(x->db, &cfg) != VECDB_OK)
		bench_die("create: %s", vecdb_errmsg());
	for (size_t i = 0; i < b->n; i += 1000) {
		size_t m = b->n - i < 1000 ? b->n - i : 1000;
		for (size_t j = 0; j < m; j++)
			p[j] = (vecdb_point) { vecdb_id_num(i + j),
				(const float *) b->v + (i + j) * b->d, x->dim,
				NULL };
		if (vecdb_upsert(x->db, "ann", p, m) != VECDB_OK)
			bench_die("upsert: %s", vecdb_errmsg());
	}
	if (vecdb_index_sync(x->db, 24 * 3600 * 1000) != VECDB_OK)
		bench_die("index: %s", vecdb_errmsg());
	free(p);
	e->idx = x;
}

/* One query through vecdb_search (ids only, as the peer returns). */
static size_t
emb_search(struct engine *e, const float *q, uint32_t k, uint32_t ef,
    uint64_t *labels)
{
	struct emb *x = e->idx;
	vecdb_search_params sp = { q, x->dim, k, 0, NULL, ef, 0, 0, 0, 0,
		!e->o->rescore, e->o->oversampling, NULL };
	vecdb_records *r;
	size_t n;

	if (vecdb_search(x->db, "ann", &sp, &r) != VECDB_OK)
		bench_die("search: %s", vecdb_errmsg());
	for (n = 0; n < r->count; n++)
		labels[n] = r->items[n].id.num;
	vecdb_records_free(r);
	return n;
}

#ifdef VDB_HAVE_HNSWLIB
/* The hnswlib metric of ours. */
static int
peer_metric(vecdb_metric m)
{
	return m == VECDB_EUCLIDEAN ? PEER_L2 : m == VECDB_DOT ? PEER_DOT :
	    m == VECDB_COSINE ? PEER_COSINE : -1;
}

/* Build hnswlib. */
static void
peer_build_e(struct engine *e, const struct opts *o, const struct mat *b)
{
	e->idx = peer_build(b->v, b->n, b->d, peer_metric(o->metric), o->m,
	    o->efc, o->seed, o->build_threads);
}

/* One query on hnswlib. */
static size_t
peer_search_e(struct engine *e, const float *q, uint32_t k, uint32_t ef,
    uint64_t *labels)
{
	(void) ef;
	return peer_search(e->idx, q, k, labels);
}

/* hnswlib's ef is a property of the index. */
static void
peer_set_ef_e(struct engine *e, uint32_t ef)
{
	peer_set_ef(e->idx, ef);
}
#endif

/* A search pass of one thread over its share of the queries. */
struct pass {
	struct engine *e;
	const struct opts *o;
	const struct mat *query, *gt;
	uint32_t ef;
	size_t q0, q1;
	size_t found;      /* true neighbours among the hits */
} __attribute__((aligned(64))); /* a line each: threads write found */

/* Run the queries [q0, q1) and count recall hits. */
static void *
pass_worker(void *arg)
{
	struct pass *p = arg;
	uint64_t labels[1024];
	const int32_t *gt = p->gt->v;
	uint32_t k = p->o->k;

	for (size_t q = p->q0; q < p->q1; q++) {
		size_t n = p->e->search(p->e, (const float *) p->query->v +
		    q * p->query->d, k, p->ef, labels);
		for (size_t i = 0; i < n; i++)
			for (uint32_t j = 0; j < k; j++)
				p->found += labels[i] == (uint64_t) gt[q *
				    p->gt->d + j];
	}
	return NULL;
}

/* All queries at one ef: recall and QPS. */
static void
run_pass(struct engine *e, const struct opts *o, const struct mat *query,
    const struct mat *gt, uint32_t ef, double *recall, double *qps)
{
	struct pass ps[256];
	void *args[256];
	uint32_t nt = o->threads > 256 ? 256 : o->threads;
	size_t found = 0;

	e->set_ef(e, ef);
	for (uint32_t t = 0; t < nt; t++) {
		ps[t] = (struct pass) { e, o, query, gt, ef,
			query->n * t / nt, query->n * (t + 1) / nt, 0 };
		args[t] = &ps[t];
	}
	double t0 = bench_now();
	run_threads(nt, pass_worker, args);
	double dt = bench_now() - t0;
	for (uint32_t t = 0; t < nt; t++)
		found += ps[t].found;
	*recall = (double) found / ((double) query->n * o->k);
	*qps = (double) query->n / dt;
}

/* ===== ann: child processes ===== */

/* A forked engine: the parent writes ef values, reads results. */
struct child {
	pid_t pid;
	FILE *to, *from;
	double build_s, peak_mib, index_mib;
};

/* The child's life: build, report, serve passes until "0". */
static void
child_main(struct engine *e, const struct opts *o, const struct mat *b,
    const struct mat *q, const struct mat *gt, FILE *in, FILE *out)
{
	double anon = status_mib("RssAnon:"), t0 = bench_now();
	unsigned ef;

	e->o = o;
	e->base = b;
	e->build(e, o, b);
	fprintf(out, "%.3f %.1f %.1f\n", bench_now() - t0, status_mib("VmHWM:"),
	    status_mib("RssAnon:") - anon);
	fflush(out);
	while (fscanf(in, "%u", &ef) == 1 && ef > 0) {
		double r, qps;
		run_pass(e, o, q, gt, ef, &r, &qps);
		fprintf(out, "%.6f %.3f\n", r, qps);
		fflush(out);
	}
	exit(0);
}

/* Fork a child for an engine and wait for its build report. */
static void
child_start(struct child *c, struct engine *e, const struct opts *o,
    const struct mat *b, const struct mat *q, const struct mat *gt)
{
	int down[2], up[2];

	if (pipe(down) != 0 || pipe(up) != 0)
		bench_die("%s", "pipe failed");
	fflush(stdout);
	c->pid = fork();
	if (c->pid < 0)
		bench_die("%s", "fork failed");
	if (c->pid == 0) {
		close(down[1]);
		close(up[0]);
		child_main(e, o, b, q, gt, fdopen(down[0], "r"),
		    fdopen(up[1], "w"));
	}
	close(down[0]);
	close(up[1]);
	c->to = fdopen(down[1], "w");
	c->from = fdopen(up[0], "r");
	if (fscanf(c->from, "%lf %lf %lf", &c->build_s, &c->peak_mib,
	    &c->index_mib) != 3)
		bench_die("%s: build failed", e->name);
}

/* One pass in a child. */
static void
child_pass(struct child *c, uint32_t ef, double *recall, double *qps)
{
	fprintf(c->to, "%u\n", ef);
	fflush(c->to);
	if (fscanf(c->from, "%lf %lf", recall, qps) != 2)
		bench_die("%s", "engine child died");
}

/* Stop a child. */
static void
child_stop(struct child *c)
{
	fprintf(c->to, "0\n");
	fclose(c->to);
	fclose(c->from);
	waitpid(c->pid, NULL, 0);
}

/* ===== ann: the report ===== */

struct result {
	double recall[MAX_EFS], qps[MAX_EFS];
};

/* The QPS at the smallest ef reaching `target` (0 if none), and that ef. */
static double
qps_at(const struct opts *o, const struct result *r, double target,
    uint32_t *ef)
{
	for (size_t i = 0; i < o->nef; i++) {
		if (r->recall[i] >= target) {
			*ef = o->efs[i];
			return r->qps[i];
		}
	}
	*ef = 0;
	return 0;
}

/* The header line. */
static void
print_header(const struct opts *o, const struct mat *b, const struct mat *q)
{
	static const char *mn[] = { "cosine", "l2", "dot", "manhattan" };
	char cpu[256], day[32];
	time_t t = time(NULL);

	cpu_model(cpu, sizeof(cpu));
	strftime(day, sizeof(day), "%Y-%m-%d", localtime(&t));
	if (strcmp(o->via, "embedded") == 0)
		printf("# vecdb-bench ann: vecdb through the embedded API "
		       "(vecdb_upsert, vecdb_index_sync, vecdb_search)\n");
	else
		printf("# vecdb-bench ann: our HNSW graph alone, through "
		       "storage/index/hnsw.h (--via hnsw)\n");
	printf("# base=%s n=%zu dim=%zu queries=%zu metric=%s M=%u efC=%u "
	       "k=%u threads=%u build_threads=%u reps=%u simd=%s\n"
	       "# cpu=%s date=%s\n", o->base,
	    b->n, b->d, q->n, mn[o->metric], o->m, o->efc, o->k, o->threads,
	    o->build_threads, o->reps, kern_level_name(kern_ops_best()->level), cpu, day);
}

/* One ef line: ours, and the peer's when comparing. */
static void
print_ef(const struct opts *o, size_t i, const struct result *r,
    const struct result *p)
{
	printf("ef=%u recall=%.4f qps=%.1f", o->efs[i], r->recall[i],
	    r->qps[i]);
	if (p != NULL)
		printf("  hnswlib_recall=%.4f hnswlib_qps=%.1f qps_ratio=%.3f",
		    p->recall[i], p->qps[i], r->qps[i] / p->qps[i]);
	printf("\n");
}

/* The ratio lines at the recall targets. */
static void
print_ratios(const struct opts *o, const struct result *r,
    const struct result *p)
{
	static const double targets[] = { 0.90, 0.95, 0.99 };

	for (int t = 0; t < 3; t++) {
		uint32_t ea, eb;
		double a = qps_at(o, r, targets[t], &ea);
		double b = qps_at(o, p, targets[t], &eb);
		if (ea == 0 || eb == 0) {
			printf("recall>=%.2f: not reached by %s\n", targets[t],
			    ea == 0 ? "vecdb" : "hnswlib");
			continue;
		}
		printf("recall>=%.2f: vecdb ef=%u qps=%.1f  hnswlib ef=%u "
		       "qps=%.1f  qps_ratio=%.3f\n", targets[t], ea, a, eb, b,
		    a / b);
	}
}

/* Fill the engine table; returns how many engines run. */
static int
engines(const struct opts *o, struct engine *e)
{
	if (strcmp(o->via, "embedded") == 0)
		e[0] = (struct engine) { "vecdb", NULL, emb_build, emb_search,
			ours_set_ef, NULL, NULL };
	else if (strcmp(o->via, "hnsw") == 0)
		e[0] = (struct engine) { "vecdb", NULL, ours_build, ours_search,
			ours_set_ef, NULL, NULL };
	else
		bench_die("unknown --via %s (embedded or hnsw)", o->via);
	if (o->compare == NULL)
		return 1;
	if (strcmp(o->compare, "hnswlib") != 0)
		bench_die("unknown --compare %s", o->compare);
#ifdef VDB_HAVE_HNSWLIB
	if (!peer_supports(o->metric == VECDB_EUCLIDEAN ? PEER_L2 :
	    o->metric == VECDB_DOT ? PEER_DOT : o->metric == VECDB_COSINE ?
	    PEER_COSINE : -1))
		bench_die("%s", "hnswlib has no manhattan space");
	e[1] = (struct engine) { "hnswlib", NULL, peer_build_e, peer_search_e,
		peer_set_ef_e, NULL, NULL };
	return 2;
#else
	bench_die("%s", "built without hnswlib (install libhnswlib-dev, rebuild)");
	return 1;
#endif
}

/* Interleave the passes: for each ef and rep, every engine in turn. */
static void
measure(const struct opts *o, struct child *c, int ne, struct result *res)
{
	memset(res, 0, 2 * sizeof(*res));
	for (size_t i = 0; i < o->nef; i++) {
		for (uint32_t rep = 0; rep < o->reps; rep++) {
			for (int e = 0; e < ne; e++) {
				double r, q;
				child_pass(&c[e], o->efs[i], &r, &q);
				res[e].recall[i] = r;
				if (q > res[e].qps[i])
					res[e].qps[i] = q;
			}
		}
	}
}

int
bench_ann_main(int argc, char **argv)
{
	struct opts o;
	struct engine e[2];
	struct child c[2];
	struct result res[2];

	parse(argc, argv, &o);
	if (o.base == NULL || o.query == NULL || o.gt == NULL)
		bench_die("%s", "ann needs --base, --query and --gt");
	struct mat b = read_vecs(o.base), q = read_vecs(o.query);
	struct mat gt = read_vecs(o.gt);
	if (b.d != q.d || gt.n != q.n || gt.d < o.k || o.k > 1024)
		bench_die("%s", "base, query and gt files do not match (or k > gt)");
	int ne = engines(&o, e);
	print_header(&o, &b, &q);
	for (int i = 0; i < ne; i++) {
		child_start(&c[i], &e[i], &o, &b, &q, &gt);
		const char *pre = i ? "hnswlib_" : "";
		printf("%sbuild_s=%.2f %speak_rss_mib=%.1f %sindex_rss_mib=%.1f\n",
		    pre, c[i].build_s, pre, c[i].peak_mib, pre, c[i].index_mib);
		fflush(stdout);
	}
	measure(&o, c, ne, res);
	for (size_t i = 0; i < o.nef; i++)
		print_ef(&o, i, &res[0], ne > 1 ? &res[1] : NULL);
	if (ne > 1) {
		printf("build_ratio=%.3f index_rss_ratio=%.3f\n",
		    c[0].build_s / c[1].build_s, c[0].index_mib / c[1].index_mib);
		print_ratios(&o, &res[0], &res[1]);
	}
	for (int i = 0; i < ne; i++)
		child_stop(&c[i]);
	return 0;
}
