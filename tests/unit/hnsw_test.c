/*
 * hnsw_test.c: the HNSW index against brute force: recall for each
 * metric, deletes, filters, persistence and corruption, the graph
 * validator, allocation failures, and searches racing an insert.
 *
 * HNSW_TEST_N scales the point count (default 20000; 5000 under ASan or
 * TSan); the thresholds hold at any count.
 * The "concurrency" and "parallel inserts" cases are the ones to run under
 * ThreadSanitizer:
 *	CK_RUN_CASE=concurrency build-tsan/tests/hnsw_test
 *	CK_RUN_CASE="parallel inserts" build-tsan/tests/hnsw_test
 */
#include <check.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "hnsw.h"
#include "storage_impl.h"
#include "testutil.h"

#define DIM 32
#define K 10
#define NQ 200

/* Points in the test: HNSW_TEST_N, else 20000 (5000 under the address or
 * thread sanitizer, which slow the build down 5-10x). */
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define DEFAULT_N 5000
#else
#define DEFAULT_N 20000
#endif
static uint32_t
npoints(void)
{
	const char *v = getenv("HNSW_TEST_N");
	long n = v ? strtol(v, NULL, 10) : 0;

	return n >= 1000 ? (uint32_t) n : DEFAULT_N;
}

/*
 * Clustered test data (tu_clustered). Uniform random 32-d points have no
 * structure at all; on 20000 of them both this index and hnswlib (same M
 * 16, efC 200) reach recall@10 0.943 at ef 64 and 0.990 at ef 128
 * (measured with vecdb-bench ann --compare hnswlib).
 */
static float *
rand_points(uint64_t seed, uint32_t n)
{
	return tu_clustered(seed, n, DIM);
}

/* A query near the data: a random point plus fresh noise. */
static void
rand_query(uint64_t *seed, const float *pts, uint32_t n, float *q)
{
	tu_clustered_query(seed, pts, n, DIM, q);
}

/* An index with the defaults (M 16, efC 200, ef 64) and a fixed seed. */
static hnsw_index *
new_index(vecdb_metric m)
{
	hnsw_config c = { .dim = DIM, .metric = m, .seed = 1 };
	hnsw_index *h;

	ck_assert_int_eq(hnsw_new(&c, &h), VECDB_OK);
	return h;
}

/* Insert points[0..n) under labels 0..n-1. */
static void
insert_all(hnsw_index *h, const float *pts, uint32_t n)
{
	for (uint32_t i = 0; i < n; i++)
		ck_assert_int_eq(hnsw_insert(h, i, pts + (size_t) i * DIM),
		    VECDB_OK);
}

/* Which labels a filter lets through: label % mod == 0. */
struct keep {
	uint32_t mod;         /* 0: everything */
	const uint8_t *dead;  /* deleted labels, or NULL */
};

/* 1 if label passes. */
static int
keep_label(const struct keep *kp, uint64_t label)
{
	if (kp->dead != NULL && kp->dead[label])
		return 0;
	return kp->mod == 0 || label % kp->mod == 0;
}

/* The hnsw_filter_fn form of keep_label. */
static int
filter_mod(uint64_t label, void *arg)
{
	return keep_label(arg, label);
}

static double recall_q(hnsw_index *h, const float *pts, uint32_t n,
    vecdb_metric m, const struct keep *kp, uint32_t ef, int nq);

/* Mean recall@K over NQ seeded queries; checks every hit passes kp. */
static double
recall(hnsw_index *h, const float *pts, uint32_t n, vecdb_metric m,
    const struct keep *kp, uint32_t ef)
{
	return recall_q(h, pts, n, m, kp, ef, NQ);
}

/* recall over nq queries. */
static double
recall_q(hnsw_index *h, const float *pts, uint32_t n, vecdb_metric m,
    const struct keep *kp, uint32_t ef, int nq)
{
	float q[DIM];
	uint64_t seed = 99, truth[K];
	hnsw_hit hits[K];
	size_t found = 0, want = 0, nh, nt;

	for (int qi = 0; qi < nq; qi++) {
		rand_query(&seed, pts, n, q);
		want += nt = tu_exact_topk(pts, n, DIM, m, q, K, filter_mod,
		    (void *) kp, truth);
		ck_assert_int_eq(hnsw_search(h, q, K, ef, kp->mod ? filter_mod :
		    NULL, (void *) kp, hits, &nh), VECDB_OK);
		for (size_t i = 0; i < nh; i++) {
			ck_assert(keep_label(kp, hits[i].label));
			for (size_t j = 0; j < nt; j++)
				found += hits[i].label == truth[j];
		}
	}
	return (double) found / (double) want;
}

/* ===== Recall ===== */

START_TEST(recall_at_10_clears_095_for_each_metric)
{
	vecdb_metric m = (vecdb_metric) _i;
	uint32_t n = npoints();
	float *pts = rand_points(5, n);
	hnsw_index *h = new_index(m);
	struct keep all = { 0, NULL };

	insert_all(h, pts, n);
	ck_assert_uint_eq(hnsw_count(h), n);
	ck_assert_int_eq(hnsw_validate(h), VECDB_OK);
	double r = recall(h, pts, n, m, &all, 0);
	fprintf(stderr, "hnsw_test: metric %d n %u recall@10 %.4f\n", m, n, r);
	ck_assert_msg(r >= 0.95, "metric %d: recall %.4f", m, r);
	hnsw_free(h);
	free(pts);
}
END_TEST

START_TEST(hits_are_ascending_with_metric_distances)
{
	uint32_t n = 2000;
	float *pts = rand_points(6, n), q[DIM];
	hnsw_index *h = new_index(VECDB_EUCLIDEAN);
	hnsw_hit hits[K];
	size_t nh;
	uint64_t seed = 3;

	insert_all(h, pts, n);
	tu_rand_vector(&seed, q, DIM);
	ck_assert_int_eq(hnsw_search(h, q, K, 0, NULL, NULL, hits, &nh),
	    VECDB_OK);
	ck_assert_uint_eq(nh, K);
	for (size_t i = 0; i < nh; i++) {
		float want = vec_distance(VECDB_EUCLIDEAN, q,
		    pts + hits[i].label * DIM, DIM);
		ck_assert_float_eq_tol(hits[i].dist, want, 1e-4f);
		if (i > 0)
			ck_assert(hits[i - 1].dist <= hits[i].dist);
	}
	hnsw_free(h);
	free(pts);
}
END_TEST

START_TEST(equal_distances_are_ordered_by_label)
{
	hnsw_index *h = new_index(VECDB_EUCLIDEAN);
	float v[DIM] = { 1 }, far[DIM] = { 50 };
	hnsw_hit hits[4];
	size_t nh;

	ck_assert_int_eq(hnsw_insert(h, 40, far), VECDB_OK);
	for (uint64_t l = 9; l >= 7; l--)
		ck_assert_int_eq(hnsw_insert(h, l, v), VECDB_OK);
	ck_assert_int_eq(hnsw_search(h, v, 4, 0, NULL, NULL, hits, &nh),
	    VECDB_OK);
	ck_assert_uint_eq(nh, 4);
	ck_assert_uint_eq(hits[0].label, 7);
	ck_assert_uint_eq(hits[1].label, 8);
	ck_assert_uint_eq(hits[2].label, 9);
	ck_assert_uint_eq(hits[3].label, 40);
	hnsw_free(h);
}
END_TEST

START_TEST(empty_index_and_small_index_return_what_exists)
{
	hnsw_index *h = new_index(VECDB_COSINE);
	float v[DIM] = { 1, 2 };
	hnsw_hit hits[K];
	size_t nh = 99;

	ck_assert_int_eq(hnsw_search(h, v, K, 0, NULL, NULL, hits, &nh),
	    VECDB_OK);
	ck_assert_uint_eq(nh, 0);
	ck_assert_int_eq(hnsw_insert(h, 3, v), VECDB_OK);
	ck_assert_int_eq(hnsw_search(h, v, K, 0, NULL, NULL, hits, &nh),
	    VECDB_OK);
	ck_assert_uint_eq(nh, 1);
	ck_assert_float_eq_tol(hits[0].dist, 0.0f, 1e-6f);
	ck_assert_int_eq(hnsw_search(h, v, 0, 0, NULL, NULL, hits, &nh),
	    VECDB_EINVAL);
	hnsw_free(h);
}
END_TEST

START_TEST(duplicate_label_is_eexist)
{
	hnsw_index *h = new_index(VECDB_DOT);
	float v[DIM] = { 1 };

	ck_assert_int_eq(hnsw_insert(h, 5, v), VECDB_OK);
	ck_assert_int_eq(hnsw_insert(h, 5, v), VECDB_EEXIST);
	ck_assert_int_eq(hnsw_mark_deleted(h, 5), VECDB_OK);
	ck_assert_int_eq(hnsw_insert(h, 5, v), VECDB_EEXIST);
	ck_assert_uint_eq(hnsw_count(h), 0);
	hnsw_free(h);
}
END_TEST

START_TEST(config_is_clamped)
{
	hnsw_config c = { .dim = 4, .metric = VECDB_EUCLIDEAN, .m = 1,
		.ef_construction = 100000, .max_layer = 1000 }, got;
	hnsw_index *h;

	ck_assert_int_eq(hnsw_new(&c, &h), VECDB_OK);
	hnsw_config_get(h, &got);
	ck_assert_uint_eq(got.m, VECDB_HNSW_M_MIN);
	ck_assert_uint_eq(got.ef_construction, VECDB_HNSW_EFC_MAX);
	ck_assert_uint_eq(got.ef_search, VECDB_HNSW_EF_DEFAULT);
	ck_assert_uint_eq(got.max_layer, VECDB_HNSW_LAYER_MAX);
	hnsw_free(h);
	c.dim = 0;
	ck_assert_int_eq(hnsw_new(&c, &h), VECDB_EINVAL);
}
END_TEST

/* ===== Deletes ===== */

START_TEST(deleted_points_are_never_returned_and_recall_holds)
{
	uint32_t n = npoints();
	float *pts = rand_points(7, n);
	uint8_t *dead = calloc(n, 1);
	hnsw_index *h = new_index(VECDB_EUCLIDEAN);
	struct keep live = { 0, dead };

	insert_all(h, pts, n);
	for (uint32_t i = 0; i < n; i += 10) {
		ck_assert_int_eq(hnsw_mark_deleted(h, i), VECDB_OK);
		dead[i] = 1;
	}
	ck_assert_int_eq(hnsw_mark_deleted(h, 0), VECDB_ENOTFOUND);
	ck_assert_int_eq(hnsw_mark_deleted(h, n + 5), VECDB_ENOTFOUND);
	ck_assert_uint_eq(hnsw_deleted_count(h), (n + 9) / 10);
	ck_assert_uint_eq(hnsw_count(h), n - (n + 9) / 10);
	ck_assert_int_eq(hnsw_validate(h), VECDB_OK);
	/* recall() checks that no hit is a dead label. */
	double r = recall(h, pts, n, VECDB_EUCLIDEAN, &live, 0);
	fprintf(stderr, "hnsw_test: after deleting 10%%: recall@10 %.4f\n", r);
	ck_assert(r >= 0.95);
	free(dead);
	hnsw_free(h);
	free(pts);
}
END_TEST

START_TEST(inserts_after_deletes_keep_the_graph_valid)
{
	uint32_t n = 3000;
	float *pts = rand_points(8, 2 * n);
	hnsw_index *h = new_index(VECDB_MANHATTAN);

	insert_all(h, pts, n);
	for (uint32_t i = 0; i < n; i += 2)
		ck_assert_int_eq(hnsw_mark_deleted(h, i), VECDB_OK);
	for (uint32_t i = n; i < 2 * n; i++)
		ck_assert_int_eq(hnsw_insert(h, i, pts + (size_t) i * DIM),
		    VECDB_OK);
	ck_assert_int_eq(hnsw_validate(h), VECDB_OK);
	ck_assert_uint_eq(hnsw_count(h), 2 * n - n / 2);
	hnsw_free(h);
	free(pts);
}
END_TEST

/* ===== Filters ===== */

/*
 * Filters are evaluated during the walk; nodes that do not match still
 * route, and the walk goes on until ef matching nodes are found, so a
 * selective filter walks a larger part of the graph. Measured on these
 * 20000 clustered points (RelWithDebInfo): 10% selectivity 0.9995 at the
 * default ef 64, 1% 1.0000 at ef 64, 0.1% (20 points) 1.0000 at ef 64.
 * The storage engine still switches to an exact scan of the matching set
 * below a selectivity it measures, where the walk costs more than the
 * scan; the asserts leave room for that choice.
 */
START_TEST(filtered_recall_at_10_1_and_01_percent)
{
	uint32_t n = npoints();
	float *pts = rand_points(5, n);
	hnsw_index *h = new_index(VECDB_EUCLIDEAN);
	struct keep ten = { 10, NULL }, one = { 100, NULL };
	struct keep tenth = { 1000, NULL };

	insert_all(h, pts, n);
	double r10 = recall(h, pts, n, VECDB_EUCLIDEAN, &ten, 0);
	double r1 = recall(h, pts, n, VECDB_EUCLIDEAN, &one, 0);
	double r01 = recall(h, pts, n, VECDB_EUCLIDEAN, &tenth, 0);
	fprintf(stderr, "hnsw_test: filtered recall@10 at ef 64: 10%% %.4f, "
			"1%% %.4f, 0.1%% %.4f\n", r10, r1, r01);
	ck_assert(r10 >= 0.95);
	ck_assert(r1 >= 0.95);
	ck_assert(r01 >= 0.95);
	hnsw_free(h);
	free(pts);
}
END_TEST

/* ===== Persistence ===== */

/* A saved index of n points in a fresh dir; returns the file path. */
static char *
saved_index(uint32_t n, float **pts_out, hnsw_index **h_out)
{
	float *pts = rand_points(9, n);
	hnsw_index *h = new_index(VECDB_COSINE);
	char *dir = tu_subdir(), *path = malloc(strlen(dir) + 16);

	insert_all(h, pts, n);
	for (uint32_t i = 0; i < n; i += 7)
		ck_assert_int_eq(hnsw_mark_deleted(h, i), VECDB_OK);
	sprintf(path, "%s/c.hnsw", dir);
	free(dir);
	ck_assert_int_eq(hnsw_save(h, path, 1234), VECDB_OK);
	*pts_out = pts;
	*h_out = h;
	return path;
}

/* Two result lists are the same (field by field: hnsw_hit has padding). */
static void
assert_same_hits(const hnsw_hit *a, size_t na, const hnsw_hit *b, size_t nb)
{
	ck_assert_uint_eq(na, nb);
	for (size_t i = 0; i < na; i++) {
		ck_assert_uint_eq(a[i].label, b[i].label);
		ck_assert_float_eq(a[i].dist, b[i].dist);
	}
}

/* The config saved_index uses. */
static hnsw_config
saved_config(void)
{
	return (hnsw_config) { .dim = DIM, .metric = VECDB_COSINE };
}

START_TEST(save_and_load_give_identical_results)
{
	float *pts, q[DIM];
	hnsw_index *h, *g;
	char *path = saved_index(3000, &pts, &h);
	hnsw_config c = saved_config();
	uint64_t seq = 0, seed = 4;
	hnsw_hit a[K], b[K];
	size_t na, nb;

	ck_assert_int_eq(hnsw_load(path, &c, &g, &seq), VECDB_OK);
	ck_assert_uint_eq(seq, 1234);
	ck_assert_uint_eq(hnsw_count(g), hnsw_count(h));
	ck_assert_uint_eq(hnsw_deleted_count(g), hnsw_deleted_count(h));
	ck_assert_int_eq(hnsw_validate(g), VECDB_OK);
	for (int i = 0; i < 50; i++) {
		tu_rand_vector(&seed, q, DIM);
		ck_assert_int_eq(hnsw_search(h, q, K, 0, NULL, NULL, a, &na), 0);
		ck_assert_int_eq(hnsw_search(g, q, K, 0, NULL, NULL, b, &nb), 0);
		assert_same_hits(a, na, b, nb);
	}
	/* The level PRNG is saved too: the same inserts build the same
	 * graph in both. */
	for (uint32_t i = 0; i < 100; i++) {
		ck_assert_int_eq(hnsw_insert(h, 5000 + i, pts + i * DIM), 0);
		ck_assert_int_eq(hnsw_insert(g, 5000 + i, pts + i * DIM), 0);
	}
	ck_assert_int_eq(hnsw_search(h, pts, K, 0, NULL, NULL, a, &na), 0);
	ck_assert_int_eq(hnsw_search(g, pts, K, 0, NULL, NULL, b, &nb), 0);
	assert_same_hits(a, na, b, nb);
	hnsw_free(h);
	hnsw_free(g);
	free(pts);
	free(path);
}
END_TEST

/* Load must fail with ECORRUPT. */
static void
assert_corrupt(const char *path, const hnsw_config *c)
{
	hnsw_index *g = NULL;

	ck_assert_int_eq(hnsw_load(path, c, &g, NULL), VECDB_ECORRUPT);
	ck_assert_ptr_null(g);
}

/* Copy file src to dst with byte `at` xor'ed with x, cut to `len`. */
static void
mangle(const char *src, const char *dst, long at, uint8_t x, long len)
{
	FILE *f = fopen(src, "rb"), *o = fopen(dst, "wb");
	long i = 0;
	int ch;

	ck_assert(f != NULL && o != NULL);
	while ((ch = fgetc(f)) != EOF && (len < 0 || i < len)) {
		fputc(i == at ? ch ^ x : ch, o);
		i++;
	}
	if (len > i)
		fputc(0, o); /* longer than written */
	fclose(f);
	fclose(o);
}

START_TEST(corrupted_or_truncated_file_is_ecorrupt)
{
	float *pts;
	hnsw_index *h;
	char *path = saved_index(1500, &pts, &h), bad[4200];
	hnsw_config c = saved_config();
	struct stat st;

	ck_assert_int_eq(stat(path, &st), 0);
	long size = (long) st.st_size;
	long spots[] = { 0, 9, 12, 40, 80, 200, size / 3, size / 2, size - 9,
		size - 1 };
	snprintf(bad, sizeof(bad), "%s.bad", path);
	for (size_t i = 0; i < sizeof(spots) / sizeof(spots[0]); i++) {
		mangle(path, bad, spots[i], 0x40, -1);
		assert_corrupt(bad, &c);
	}
	long cuts[] = { 0, 10, 72, size / 2, size - 8, size - 1 };
	for (size_t i = 0; i < sizeof(cuts) / sizeof(cuts[0]); i++) {
		mangle(path, bad, -1, 0, cuts[i]);
		assert_corrupt(bad, &c);
	}
	mangle(path, bad, -1, 0, size + 1);
	assert_corrupt(bad, &c);
	/* A config the file does not match. */
	c.dim = DIM + 1;
	assert_corrupt(path, &c);
	c = saved_config();
	c.m = 8;
	assert_corrupt(path, &c);
	c = saved_config();
	c.metric = VECDB_EUCLIDEAN;
	assert_corrupt(path, &c);
	hnsw_free(h);
	free(pts);
	free(path);
}
END_TEST

START_TEST(missing_file_is_enotfound)
{
	hnsw_config c = saved_config();
	hnsw_index *g;
	char *dir = tu_subdir(), path[4200];

	snprintf(path, sizeof(path), "%s/none.hnsw", dir);
	ck_assert_int_eq(hnsw_load(path, &c, &g, NULL), VECDB_ENOTFOUND);
	snprintf(path, sizeof(path), "%s/none/x.hnsw", dir);
	hnsw_index *h = new_index(VECDB_COSINE);
	ck_assert_int_eq(hnsw_save(h, path, 1), VECDB_EIO);
	hnsw_free(h);
	free(dir);
}
END_TEST

START_TEST(empty_index_round_trips)
{
	hnsw_index *h = new_index(VECDB_DOT), *g;
	hnsw_config c = { .dim = DIM, .metric = VECDB_DOT };
	char *dir = tu_subdir(), path[4200];
	uint64_t seq;

	snprintf(path, sizeof(path), "%s/e.hnsw", dir);
	ck_assert_int_eq(hnsw_save(h, path, 0), VECDB_OK);
	ck_assert_int_eq(hnsw_load(path, &c, &g, &seq), VECDB_OK);
	ck_assert_uint_eq(hnsw_count(g), 0);
	hnsw_free(g);
	hnsw_free(h);
	free(dir);
}
END_TEST

/* ===== Allocation failures ===== */

START_TEST(failed_allocations_leave_the_index_valid)
{
	uint32_t n = 400;
	float *pts = rand_points(10, n);
	hnsw_index *h = new_index(VECDB_EUCLIDEAN);
	uint32_t ok = 0;

	for (uint32_t i = 0; i < n; i++) {
		vdb_alloc_fail_after(1 + i % 5);
		int rv = hnsw_insert(h, i, pts + (size_t) i * DIM);
		vdb_alloc_fail_after(0);
		ck_assert(rv == VECDB_OK || rv == VECDB_ENOMEM);
		ok += rv == VECDB_OK;
		ck_assert_uint_eq(hnsw_count(h), ok);
	}
	ck_assert_int_eq(hnsw_validate(h), VECDB_OK);
	ck_assert_int_eq(hnsw_insert(h, n, pts), VECDB_OK);
	hnsw_free(h);
	free(pts);
}
END_TEST

/* ===== Parallel inserts ===== */

#define WRITERS 4

/* One inserting thread's share: labels i with i % WRITERS == t. */
struct share {
	hnsw_index *h;
	const float *pts;
	uint32_t n, t;
	int churn;           /* also delete and re-insert (slot reuse) */
	int bad;             /* an unexpected return code */
};

/* Insert a share; with churn, delete every 7th label inserted and put
 * it back under label + n, so that inserts take over dead slots. */
static void *
writer(void *arg)
{
	struct share *w = arg;

	for (uint32_t i = w->t; i < w->n; i += WRITERS) {
		const float *v = w->pts + (size_t) i * DIM;
		if (hnsw_insert(w->h, i, v) != VECDB_OK)
			w->bad = 1;
		if (!w->churn || i % 7 != 0)
			continue;
		if (hnsw_mark_deleted(w->h, i) != VECDB_OK ||
		    hnsw_insert(w->h, (uint64_t) i + w->n, v) != VECDB_OK)
			w->bad = 1;
	}
	return NULL;
}

/* Insert pts[0..n) from WRITERS threads at once. */
static void
insert_parallel(hnsw_index *h, const float *pts, uint32_t n, int churn)
{
	pthread_t th[WRITERS];
	struct share w[WRITERS];

	for (uint32_t t = 0; t < WRITERS; t++) {
		w[t] = (struct share) { h, pts, n, t, churn, 0 };
		ck_assert_int_eq(pthread_create(&th[t], NULL, writer, &w[t]), 0);
	}
	for (uint32_t t = 0; t < WRITERS; t++) {
		pthread_join(th[t], NULL);
		ck_assert_int_eq(w[t].bad, 0);
	}
}

/*
 * A parallel build is not deterministic, and on NQ queries two builds of
 * the same points differ by up to 0.005 at ef 16 either way (measured:
 * 4-thread builds 0.9130-0.9225 against the 1-thread 0.9180), so this
 * compares on PAR_NQ queries: there, four 4-thread builds measured
 * 0.9110-0.9134 at ef 16 against the 1-thread 0.9133, and within 0.002
 * of it at ef 32-128.
 */
#define PAR_NQ 2000

START_TEST(parallel_build_recall_is_within_0005_of_one_thread)
{
	static const uint32_t efs[] = { 16, 32, 64, 128 };
	uint32_t n = npoints();
	float *pts = rand_points(21, n);
	hnsw_index *one = new_index(VECDB_EUCLIDEAN);
	hnsw_index *par = new_index(VECDB_EUCLIDEAN);
	struct keep all = { 0, NULL };

	insert_all(one, pts, n);
	insert_parallel(par, pts, n, 0);
	ck_assert_int_eq(hnsw_validate(par), VECDB_OK);
	ck_assert_uint_eq(hnsw_count(par), n);
	for (size_t i = 0; i < sizeof(efs) / sizeof(efs[0]); i++) {
		double r1 = recall_q(one, pts, n, VECDB_EUCLIDEAN, &all, efs[i],
		    PAR_NQ);
		double rp = recall_q(par, pts, n, VECDB_EUCLIDEAN, &all, efs[i],
		    PAR_NQ);
		fprintf(stderr, "hnsw_test: ef %u recall@10 1 thread %.4f, "
		    "%d threads %.4f\n", efs[i], r1, WRITERS, rp);
		ck_assert(rp >= r1 - 0.005);
	}
	hnsw_free(one);
	hnsw_free(par);
	free(pts);
}
END_TEST

/* Points of pts[0..n) that a search for their own vector (k 1, ef 64)
 * does not return first. */
static uint32_t
self_misses(hnsw_index *h, const float *pts, uint32_t n)
{
	hnsw_hit hit;
	size_t nh;
	uint32_t miss = 0;

	for (uint32_t i = 0; i < n; i++) {
		ck_assert_int_eq(hnsw_search(h, pts + (size_t) i * DIM, 1, 64,
		    NULL, NULL, &hit, &nh), VECDB_OK);
		miss += nh != 1 || hit.label != i;
	}
	return miss;
}

/*
 * A node is reachable at a layer before its lists below are written,
 * and invisible to the inserts running alongside until it links back.
 * Before inserts stepped around nodes being linked and offered them to
 * each other, 4-thread builds of 3000-point sets lost 11 points in
 * 60,000 (20 seeds) to self-searches, mostly in small far clusters
 * linked only among themselves; one-thread builds lost none in 240,000.
 * After, 4-thread builds lost 1 in about 170,000, always in seed 6's
 * far cluster: a build is not deterministic, so this allows 2 in the
 * 24,000 here, where the old builds lost 4 on average.
 */
START_TEST(parallel_build_finds_every_point_by_its_own_vector)
{
	uint32_t n = 3000, miss = 0;

	for (uint64_t seed = 1; seed <= 8; seed++) {
		float *pts = rand_points(seed, n);
		hnsw_index *par = new_index(VECDB_EUCLIDEAN);
		insert_parallel(par, pts, n, 0);
		uint32_t m = self_misses(par, pts, n);
		if (m > 0)
			fprintf(stderr, "hnsw_test: seed %llu: %u of %u points "
			    "not found by their own vector\n",
			    (unsigned long long) seed, m, n);
		miss += m;
		hnsw_free(par);
		free(pts);
	}
	ck_assert_uint_le(miss, 2);
}
END_TEST

/* ===== Concurrency ===== */

/* What reader threads share with the writer. */
struct race {
	hnsw_index *h;
	const float *pts;
	uint32_t n;               /* points the writer will insert */
	int done;                 /* writer finished (atomic) */
	int bad;                  /* a reader saw an invalid result */
	uint64_t searches;        /* total, atomic */
};

/* Search until the writer is done; flag any invalid hit. */
static void *
reader(void *arg)
{
	struct race *r = arg;
	uint64_t seed = (uint64_t) (uintptr_t) &seed, cnt = 0;
	float q[DIM];
	hnsw_hit hits[K];
	size_t nh;

	while (!__atomic_load_n(&r->done, __ATOMIC_ACQUIRE) || cnt < 10) {
		tu_rand_vector(&seed, q, DIM);
		if (hnsw_search(r->h, q, K, 32, NULL, NULL, hits, &nh) != 0)
			__atomic_store_n(&r->bad, 1, __ATOMIC_RELAXED);
		for (size_t i = 0; i < nh; i++)
			if (hits[i].label >= r->n || !isfinite(hits[i].dist) ||
			    (i > 0 && hits[i].dist < hits[i - 1].dist))
				__atomic_store_n(&r->bad, 1, __ATOMIC_RELAXED);
		cnt++;
	}
	__atomic_fetch_add(&r->searches, cnt, __ATOMIC_RELAXED);
	return NULL;
}

START_TEST(readers_search_while_a_writer_inserts_and_deletes)
{
	struct race r = { new_index(VECDB_EUCLIDEAN), NULL, 4000, 0, 0, 0 };
	float *pts = rand_points(12, r.n);
	pthread_t th[4];

	r.pts = pts;
	for (int i = 0; i < 4; i++)
		ck_assert_int_eq(pthread_create(&th[i], NULL, reader, &r), 0);
	for (uint32_t i = 0; i < r.n; i++) {
		ck_assert_int_eq(hnsw_insert(r.h, i, pts + (size_t) i * DIM), 0);
		if (i % 9 == 0)
			ck_assert_int_eq(hnsw_mark_deleted(r.h, i / 2), 0);
	}
	__atomic_store_n(&r.done, 1, __ATOMIC_RELEASE);
	for (int i = 0; i < 4; i++)
		pthread_join(th[i], NULL);
	fprintf(stderr, "hnsw_test: %llu searches raced %u inserts\n",
	    (unsigned long long) r.searches, r.n);
	ck_assert_int_eq(r.bad, 0);
	ck_assert_int_eq(hnsw_validate(r.h), VECDB_OK);
	ck_assert_uint_gt(hnsw_memory(r.h), (size_t) r.n * DIM * 4);
	hnsw_free(r.h);
	free(pts);
}
END_TEST

/*
 * WRITERS threads insert, delete and re-insert (taking over dead slots)
 * while readers search; then the graph validates, and every live label
 * is where it should be.
 */
START_TEST(parallel_inserts_and_deletes_race_searches)
{
	uint32_t n = 4000;
	struct race r = { new_index(VECDB_EUCLIDEAN), NULL, 2 * n, 0, 0, 0 };
	float *pts = rand_points(13, n);
	pthread_t th[3];

	r.pts = pts;
	for (int i = 0; i < 3; i++)
		ck_assert_int_eq(pthread_create(&th[i], NULL, reader, &r), 0);
	insert_parallel(r.h, pts, n, 1);
	__atomic_store_n(&r.done, 1, __ATOMIC_RELEASE);
	for (int i = 0; i < 3; i++)
		pthread_join(th[i], NULL);
	fprintf(stderr, "hnsw_test: %llu searches raced %d writers\n",
	    (unsigned long long) r.searches, WRITERS);
	ck_assert_int_eq(r.bad, 0);
	ck_assert_int_eq(hnsw_validate(r.h), VECDB_OK);
	ck_assert_uint_eq(hnsw_count(r.h), n);
	ck_assert_uint_eq(hnsw_count(r.h) + hnsw_deleted_count(r.h),
	    n + 0); /* every re-insert took its own dead slot back */
	/* A second round over the churned graph, then validate again. */
	for (uint32_t i = 0; i < n; i += 7)
		ck_assert_int_eq(hnsw_mark_deleted(r.h, (uint64_t) i + n), 0);
	ck_assert_int_eq(hnsw_validate(r.h), VECDB_OK);
	hnsw_free(r.h);
	free(pts);
}
END_TEST

/* The suite. */
static Suite *
hnsw_suite(void)
{
	Suite *s = suite_create("hnsw");
	TCase *tc;

	tc = tcase_create("recall");
	tcase_add_loop_test(tc, recall_at_10_clears_095_for_each_metric,
	    VECDB_COSINE, VECDB_MANHATTAN + 1);
	tcase_add_test(tc, hits_are_ascending_with_metric_distances);
	tcase_add_test(tc, equal_distances_are_ordered_by_label);
	tcase_add_test(tc, empty_index_and_small_index_return_what_exists);
	tcase_add_test(tc, duplicate_label_is_eexist);
	tcase_add_test(tc, config_is_clamped);
	suite_add_tcase(s, tc);
	tc = tcase_create("deletes");
	tcase_add_test(tc, deleted_points_are_never_returned_and_recall_holds);
	tcase_add_test(tc, inserts_after_deletes_keep_the_graph_valid);
	suite_add_tcase(s, tc);
	tc = tcase_create("filters");
	tcase_add_test(tc, filtered_recall_at_10_1_and_01_percent);
	suite_add_tcase(s, tc);
	tc = tcase_create("persistence");
	tcase_add_unchecked_fixture(tc, tu_base_setup, tu_base_teardown);
	tcase_add_test(tc, save_and_load_give_identical_results);
	tcase_add_test(tc, corrupted_or_truncated_file_is_ecorrupt);
	tcase_add_test(tc, missing_file_is_enotfound);
	tcase_add_test(tc, empty_index_round_trips);
	suite_add_tcase(s, tc);
	tc = tcase_create("alloc");
	tcase_add_test(tc, failed_allocations_leave_the_index_valid);
	suite_add_tcase(s, tc);
	tc = tcase_create("concurrency");
	tcase_add_test(tc, readers_search_while_a_writer_inserts_and_deletes);
	suite_add_tcase(s, tc);
	tc = tcase_create("parallel inserts");
	tcase_set_timeout(tc, 300);
	tcase_add_test(tc, parallel_inserts_and_deletes_race_searches);
	suite_add_tcase(s, tc);
	tc = tcase_create("parallel recall");
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, parallel_build_recall_is_within_0005_of_one_thread);
	tcase_add_test(tc, parallel_build_finds_every_point_by_its_own_vector);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	return tu_run(hnsw_suite());
}
