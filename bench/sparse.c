/*
 * sparse.c: `vecdb-bench sparse`: the inverted index of sparse vectors
 * (storage/index/sparse.h) against an exact scan of the same vectors, in
 * the same run.
 *
 *   vecdb-bench sparse [--n 100000] [--terms 100] [--vocab 30000]
 *                      [--zipf 1.0] [--queries 200] [--qterms 8]
 *                      [--k 10] [--idf 1] [--rounds 3] [--seed 42]
 *                      [--engine 1] [--dense-dim 32]
 *
 * The corpus is BM25-like: each of n documents draws words from a
 * vocabulary of --vocab term ids with Zipf's law (exponent --zipf) until
 * it holds about --terms distinct ones (0.5x to 1.5x), and stores each
 * term's BM25 weight, tf (k1 + 1) / (tf + k1 (1 - b + b dl / avgdl)) with
 * k1 1.2, b 0.75. A query is --qterms distinct Zipf-drawn terms of value
 * 1; with --idf 1 the index weighs them by IDF, which makes the score
 * the documents' BM25 score.
 *
 * Prints the time and memory the in-memory index (storage/index/
 * sparse.h) took to build and, with --engine 1, the time the engine took
 * to store the same documents (vecdb_write in batches of 1,000 into a
 * fresh database with buffered durability: the writer keeps the posting
 * lists in LMDB). Then for each of --rounds rounds the QPS and latency on
 * one thread of the in-memory index, of the engine (vecdb_search_sparse)
 * and of an exact scan, in turn (the machine may be shared), and last how
 * many of the index's and the engine's answers equal the scan's (all of
 * them: all three are exact). With --engine 1 each document also has a
 * random --dense-dim dense vector (cosine), and each round times hybrid
 * searches as the REST API runs them: a dense search and a sparse search
 * for the best 100 each, fused by RRF into the top --k (vecdb_fuse).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"
#include "sparse.h"
#include "vdb.h"

struct sargs {
	size_t n, terms, vocab, queries, qterms, k, rounds;
	double zipf;
	int idf, engine;
	uint64_t seed;
	size_t dense_dim;
};

struct corpus {
	uint32_t *idx;     /* all documents' indices, back to back */
	float *val;
	size_t *start;     /* document d: [start[d], start[d + 1]) */
	size_t n;
	uint32_t *df;      /* documents holding each term */
};

static void
sparse_parse(int argc, char **argv, struct sargs *a)
{
	for (int i = 2; i + 1 < argc; i += 2) {
		const char *k = argv[i], *v = argv[i + 1];

		if (strcmp(k, "--n") == 0)
			a->n = strtoul(v, NULL, 10);
		else if (strcmp(k, "--terms") == 0)
			a->terms = strtoul(v, NULL, 10);
		else if (strcmp(k, "--vocab") == 0)
			a->vocab = strtoul(v, NULL, 10);
		else if (strcmp(k, "--zipf") == 0)
			a->zipf = strtod(v, NULL);
		else if (strcmp(k, "--queries") == 0)
			a->queries = strtoul(v, NULL, 10);
		else if (strcmp(k, "--qterms") == 0)
			a->qterms = strtoul(v, NULL, 10);
		else if (strcmp(k, "--k") == 0)
			a->k = strtoul(v, NULL, 10);
		else if (strcmp(k, "--idf") == 0)
			a->idf = atoi(v);
		else if (strcmp(k, "--engine") == 0)
			a->engine = atoi(v);
		else if (strcmp(k, "--dense-dim") == 0)
			a->dense_dim = strtoul(v, NULL, 10);
		else if (strcmp(k, "--rounds") == 0)
			a->rounds = strtoul(v, NULL, 10);
		else if (strcmp(k, "--seed") == 0)
			a->seed = strtoull(v, NULL, 10);
		else
			bench_die("unknown flag %s", k);
	}
	if (a->n == 0 || a->terms == 0 || a->vocab < 2 || a->queries == 0 ||
	    a->qterms == 0 || a->k == 0 || a->rounds == 0 || a->zipf <= 0 ||
	    a->dense_dim == 0)
		bench_die("every setting must be positive (vocab at least 2)");
	if (a->terms * 3 / 2 + 1 > a->vocab / 2)
		bench_die("--terms too large for --vocab");
}

/* A term drawn by Zipf's law: cdf[i] = P(term <= i). */
static uint32_t
zipf_draw(const double *cdf, size_t vocab, uint64_t *seed)
{
	double u = (bench_randf(seed) + 1) / 2;
	size_t lo = 0, hi = vocab - 1;

	while (lo < hi) {
		size_t mid = (lo + hi) / 2;

		if (cdf[mid] < u)
			lo = mid + 1;
		else
			hi = mid;
	}
	return (uint32_t) lo;
}

static void *
xcalloc(size_t n, size_t size)
{
	void *p = calloc(n ? n : 1, size);

	if (p == NULL)
		bench_die("out of memory");
	return p;
}

static void
make_corpus(const struct sargs *a, const double *cdf, struct corpus *c)
{
	uint32_t *tf = xcalloc(a->vocab, sizeof(uint32_t));
	uint32_t *seen = xcalloc(a->terms * 2, sizeof(uint32_t));
	size_t *dl = xcalloc(a->n, sizeof(size_t));
	size_t cap = a->n * a->terms * 3 / 2 + a->n, total = 0;
	double avgdl = 0;
	uint64_t seed = a->seed;

	c->n = a->n;
	c->idx = xcalloc(cap, sizeof(uint32_t));
	c->val = xcalloc(cap, sizeof(float));
	c->start = xcalloc(a->n + 1, sizeof(size_t));
	c->df = xcalloc(a->vocab, sizeof(uint32_t));
	/* draw the words; keep term frequencies in val for now */
	for (size_t d = 0; d < a->n; d++) {
		size_t want = a->terms / 2 + (size_t) ((bench_randf(&seed) +
		    1) / 2 * (double) a->terms), nd = 0;

		c->start[d] = total;
		while (nd < want) {
			uint32_t t = zipf_draw(cdf, a->vocab, &seed);

			if (tf[t]++ == 0)
				seen[nd++] = t;
			dl[d]++;
		}
		for (size_t i = 0; i < nd; i++) {
			c->idx[total + i] = seen[i];
			c->val[total + i] = (float) tf[seen[i]];
			c->df[seen[i]]++;
			tf[seen[i]] = 0;
		}
		bench_check(sparse_normalize(c->idx + total, c->val + total,
		    (uint32_t) nd), "normalize");
		total += nd;
		avgdl += (double) dl[d] / (double) a->n;
	}
	c->start[a->n] = total;
	for (size_t d = 0; d < a->n; d++)
		for (size_t i = c->start[d]; i < c->start[d + 1]; i++) {
			double f = c->val[i];

			c->val[i] = (float) (f * 2.2 / (f + 1.2 * (0.25 +
			    0.75 * (double) dl[d] / avgdl)));
		}
	free(tf);
	free(seen);
	free(dl);
}

static sparse_vec
doc(const struct corpus *c, size_t d)
{
	return (sparse_vec) { c->idx + c->start[d], c->val + c->start[d],
	    (uint32_t) (c->start[d + 1] - c->start[d]) };
}

/* The exact answer: every document scored, the best k kept (selection
 * by score desc, label asc, as the index ranks). */
static size_t
scan(const struct corpus *c, const sparse_vec *q, size_t k, sparse_hit *out)
{
	size_t n = 0;

	for (size_t d = 0; d < c->n; d++) {
		sparse_vec v = doc(c, d);
		float s = 0;
		int shared = 0;
		uint32_t i = 0, j = 0;

		while (i < q->n && j < v.n) {
			if (q->indices[i] < v.indices[j])
				i++;
			else if (q->indices[i] > v.indices[j])
				j++;
			else {
				s += q->values[i++] * v.values[j++];
				shared = 1;
			}
		}
		if (!shared)
			continue;
		/* insert into the sorted top k */
		size_t p = n < k ? n++ : k;

		while (p > 0 && (out[p - 1].score < s ||
		    (out[p - 1].score == s && out[p - 1].label > d))) {
			if (p < k)
				out[p] = out[p - 1];
			p--;
		}
		if (p < k)
			out[p] = (sparse_hit) { d, s };
	}
	return n;
}

/* The corpus into collection "docs" of a fresh database under dir: a
 * 1-d dense vector each and sparse vector "text"; returns the seconds. */
static double
engine_load(const struct sargs *a, const struct corpus *c, const char *dir,
    vecdb **out)
{
	float *dv = xcalloc(1000 * a->dense_dim, sizeof(float));
	uint64_t seed = a->seed + 7;
	vecdb_options o;
	vecdb_collection_config cfg;
	vecdb_point *p = xcalloc(1000, sizeof(*p));
	vecdb_sparse_vector *sv = xcalloc(1000, sizeof(*sv));
	vecdb_point_sparse *ps = xcalloc(1000, sizeof(*ps));
	double t0;

	vecdb_options_init(&o);
	o.durability = VECDB_BUFFERED;
	o.map_size = (size_t) 16 << 30;
	bench_check(vecdb_open(dir, &o, out), "open");
	vecdb_collection_config_init(&cfg, "docs", (uint32_t) a->dense_dim,
	    VECDB_COSINE);
	cfg.n_sparse = 1;
	snprintf(cfg.sparse[0].name, sizeof(cfg.sparse[0].name), "text");
	cfg.sparse[0].modifier = a->idf ? VECDB_SPARSE_IDF :
	    VECDB_SPARSE_PLAIN;
	bench_check(vecdb_collection_create(*out, &cfg), "create");
	t0 = bench_now();
	for (size_t d0 = 0; d0 < c->n; d0 += 1000) {
		size_t m = c->n - d0 < 1000 ? c->n - d0 : 1000;

		for (size_t i = 0; i < m; i++) {
			sparse_vec v = doc(c, d0 + i);

			for (size_t j = 0; j < a->dense_dim; j++)
				dv[i * a->dense_dim + j] = bench_randf(&seed);
			p[i] = (vecdb_point) { vecdb_id_num(d0 + i),
				dv + i * a->dense_dim,
				(uint32_t) a->dense_dim, NULL };
			sv[i] = (vecdb_sparse_vector) { "text", v.indices,
				v.values, v.n, 0 };
			ps[i] = (vecdb_point_sparse) { &sv[i], 1, NULL, 0 };
		}
		bench_check(vecdb_write(*out, "docs", VECDB_WRITE_UPSERT, p, ps,
		    m, 0), "write");
	}
	free(p);
	free(sv);
	free(ps);
	free(dv);
	t0 = bench_now() - t0;
	/* the dense graph builds in the background: let it finish before
	 * searches are timed */
	bench_check(vecdb_index_sync(*out, 600000), "index sync");
	return t0;
}

static void
report(const char *mode, double *lat, size_t n, double secs)
{
	qsort(lat, n, sizeof(double), bench_dcmp);
	printf("mode=%s queries=%zu qps=%.1f p50_ms=%.3f p99_ms=%.3f\n", mode,
	    n, (double) n / secs, lat[n / 2] * 1e3,
	    lat[(size_t) ((double) n * 0.99)] * 1e3);
}

int
bench_sparse(int argc, char **argv)
{
	struct sargs a = { 100000, 100, 30000, 200, 8, 10, 3, 1.0, 1, 1,
		42, 32 };
	struct corpus c;
	double *cdf, sum = 0, run = 0, t0, t_build, *lat_i, *lat_s, *lat_e;
	double *lat_h;
	vecdb *db = NULL;
	char *dir = NULL;
	size_t agree_e = 0;
	uint32_t *qidx;
	float *qval, *qw;
	sparse_hit *hi, *hs;
	sparse_index *s;
	size_t live, dead, agree = 0, checked = 0;
	uint64_t seed;

	sparse_parse(argc, argv, &a);
	cdf = xcalloc(a.vocab, sizeof(double));
	for (size_t i = 0; i < a.vocab; i++)
		sum += 1.0 / pow((double) (i + 1), a.zipf);
	for (size_t i = 0; i < a.vocab; i++) {
		run += 1.0 / pow((double) (i + 1), a.zipf) / sum;
		cdf[i] = i + 1 == a.vocab ? 1.0 : run;
	}
	make_corpus(&a, cdf, &c);
	printf("# n=%zu vocab=%zu zipf=%.2f terms=%zu postings=%zu "
	    "qterms=%zu k=%zu idf=%d\n", a.n, a.vocab, a.zipf, a.terms,
	    c.start[c.n], a.qterms, a.k, a.idf);

	bench_check(sparse_new(a.idf, &s), "sparse_new");
	t0 = bench_now();
	for (size_t d = 0; d < c.n; d++) {
		sparse_vec v = doc(&c, d);

		bench_check(sparse_put(s, d, &v), "sparse_put");
	}
	t_build = bench_now() - t0;
	sparse_postings(s, &live, &dead);
	printf("build_s=%.2f postings=%zu memory_mib=%.1f\n", t_build, live,
	    (double) sparse_memory(s) / (1 << 20));
	if (a.engine) {
		dir = bench_tmpdir();
		printf("engine_load_s=%.2f\n", engine_load(&a, &c, dir, &db));
	}

	/* the queries, and for the scan their IDF-weighted values */
	qidx = xcalloc(a.queries * a.qterms, sizeof(uint32_t));
	qval = xcalloc(a.queries * a.qterms, sizeof(float));
	qw = xcalloc(a.queries * a.qterms, sizeof(float));
	seed = a.seed + 1;
	for (size_t q = 0; q < a.queries; q++) {
		uint32_t *ix = qidx + q * a.qterms;
		float *w = qw + q * a.qterms;

		for (size_t i = 0; i < a.qterms; i++) {
			int dup;

			do {
				ix[i] = zipf_draw(cdf, a.vocab, &seed);
				dup = 0;
				for (size_t j = 0; j < i; j++)
					dup |= ix[j] == ix[i];
			} while (dup);
			qval[q * a.qterms + i] = 1;
		}
		bench_check(sparse_normalize(ix, qval + q * a.qterms,
		    (uint32_t) a.qterms), "normalize");
		for (size_t i = 0; i < a.qterms; i++) {
			double df = c.df[ix[i]], n = (double) c.n;

			w[i] = !a.idf ? 1.0f : (float) (1.0 *
			    log1p((n - df + 0.5) / (df + 0.5)));
		}
	}

	hi = xcalloc(a.k, sizeof(sparse_hit));
	hs = xcalloc(a.k, sizeof(sparse_hit));
	lat_i = xcalloc(a.queries, sizeof(double));
	lat_s = xcalloc(a.queries, sizeof(double));
	lat_e = xcalloc(a.queries, sizeof(double));
	lat_h = xcalloc(a.queries, sizeof(double));
	for (size_t r = 0; r < a.rounds; r++) {
		double ti = 0, ts = 0, te = 0, th = 0;
		size_t r0 = r;

		printf("# round %zu\n", r + 1);
		for (size_t q = 0; q < a.queries; q++) {
			sparse_vec qv = { qidx + q * a.qterms,
			    qval + q * a.qterms, (uint32_t) a.qterms };
			size_t n;

			t0 = bench_now();
			bench_check(sparse_search(s, &qv, a.k, NULL, NULL, hi,
			    &n), "sparse_search");
			lat_i[q] = bench_now() - t0;
			ti += lat_i[q];
		}
		report("index", lat_i, a.queries, ti);
		for (size_t q = 0; db != NULL && q < a.queries; q++) {
			vecdb_sparse_search_params sp = { "text",
			    qidx + q * a.qterms, qval + q * a.qterms,
			    (uint32_t) a.qterms, (uint32_t) a.k, 0, NULL, 0,
			    0, 0 };
			vecdb_records *r;
			size_t n;

			t0 = bench_now();
			bench_check(vecdb_search_sparse(db, "docs", &sp, &r),
			    "vecdb_search_sparse");
			lat_e[q] = bench_now() - t0;
			te += lat_e[q];
			if (r0 == 0) {
				sparse_vec qv = { qidx + q * a.qterms,
				    qw + q * a.qterms, (uint32_t) a.qterms };
				int same;

				n = scan(&c, &qv, a.k, hs);
				same = r->count == (n < a.k ? n : a.k);
				for (size_t i = 0; same && i < r->count; i++)
					same = r->items[i].id.num ==
					    hs[i].label && fabsf(
					    r->items[i].score - hs[i].score) <=
					    1e-4f * fabsf(hs[i].score) + 1e-6f;
				agree_e += same;
			}
			vecdb_records_free(r);
		}
		if (db != NULL)
			report("engine", lat_e, a.queries, te);
		for (size_t q = 0; db != NULL && q < a.queries; q++) {
			vecdb_sparse_search_params sp = { "text",
			    qidx + q * a.qterms, qval + q * a.qterms,
			    (uint32_t) a.qterms, 100, 0, NULL, 1, 0, 0 };
			vecdb_search_params dp = { 0 };
			vecdb_fusion_params fp;
			vecdb_records *dr, *sr, *fr;
			float *dq = xcalloc(a.dense_dim, sizeof(float));
			uint64_t qs = a.seed + 1000 + q;

			for (size_t j = 0; j < a.dense_dim; j++)
				dq[j] = bench_randf(&qs);
			dp.vector = dq;
			dp.dim = (uint32_t) a.dense_dim;
			dp.limit = 100;
			dp.with_payload = 1;
			vecdb_fusion_params_init(&fp);
			fp.limit = (uint32_t) a.k;
			t0 = bench_now();
			bench_check(vecdb_search(db, "docs", &dp, &dr),
			    "vecdb_search");
			for (size_t i = 0; i < dr->count; i++)
				dr->items[i].score = 1 - dr->items[i].distance;
			bench_check(vecdb_search_sparse(db, "docs", &sp, &sr),
			    "vecdb_search_sparse");
			bench_check(vecdb_fuse(dr, sr, &fp, &fr), "vecdb_fuse");
			lat_h[q] = bench_now() - t0;
			th += lat_h[q];
			vecdb_records_free(dr);
			vecdb_records_free(sr);
			vecdb_records_free(fr);
			free(dq);
		}
		if (db != NULL)
			report("hybrid", lat_h, a.queries, th);
		for (size_t q = 0; q < a.queries; q++) {
			sparse_vec qv = { qidx + q * a.qterms,
			    qw + q * a.qterms, (uint32_t) a.qterms };
			sparse_vec qi = { qidx + q * a.qterms,
			    qval + q * a.qterms, (uint32_t) a.qterms };
			size_t n, ni;
			int same;

			t0 = bench_now();
			n = scan(&c, &qv, a.k, hs);
			lat_s[q] = bench_now() - t0;
			ts += lat_s[q];
			if (r > 0)
				continue;
			/* the same answer (scores within float rounding:
			 * the scan adds in document order as well) */
			bench_check(sparse_search(s, &qi, a.k, NULL, NULL, hi,
			    &ni), "sparse_search");
			checked++;
			same = ni == (n < a.k ? n : a.k);

			for (size_t i = 0; same && i < ni; i++)
				same = hi[i].label == hs[i].label &&
				    fabsf(hi[i].score - hs[i].score) <=
				    1e-4f * fabsf(hs[i].score) + 1e-6f;
			agree += same;
		}
		report("scan", lat_s, a.queries, ts);
		printf("index_over_scan_qps=%.1f\n", ts / ti);
		if (db != NULL)
			printf("engine_over_scan_qps=%.1f\n", ts / te);
	}
	printf("answers_equal=%zu/%zu\n", agree, checked);
	if (db != NULL) {
		printf("engine_answers_equal=%zu/%zu\n", agree_e, checked);
		vecdb_close(db);
		bench_rmrf(dir);
		free(dir);
	}
	sparse_free(s);
	free(cdf);
	free(c.idx);
	free(c.val);
	free(c.start);
	free(c.df);
	free(qidx);
	free(qval);
	free(qw);
	free(hi);
	free(hs);
	free(lat_i);
	free(lat_s);
	free(lat_e);
	free(lat_h);
	return agree == checked && (a.engine == 0 || agree_e == checked) ?
	    0 : 1;
}
