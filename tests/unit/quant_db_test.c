/*
 * quant_db_test.c: quantized collections through the embedded API: the
 * graph searches codes and the answer is rescored from LMDB, checkpoints
 * with codes reload (and a corrupt one is rebuilt), and a collection's
 * quantization changes under concurrent searches and writes with nothing
 * lost. The "concurrency" case is the one to run under ThreadSanitizer.
 */
#include <check.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hnsw.h"
#include "storage_impl.h"
#include "testutil.h"

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define N 4500 /* just above HNSW_TRAIN_DEFAULT: sanitizers are slow */
#else
#define N 6000
#endif
#define K 10
#define NQ 40

/* A database whose searches use the graph from the first point. */
static vecdb *
open_db(const char *dir)
{
	vecdb_options o;
	vecdb *db;

	vecdb_options_init(&o);
	o.durability = VECDB_BUFFERED;
	o.full_scan_threshold = 0;
	ck_assert_int_eq(vecdb_open(dir, &o, &db), VECDB_OK);
	return db;
}

/* Upsert pts[from..to) under ids from..to-1, in batches. */
static void
load(vecdb *db, const char *coll, const float *pts, uint32_t dim,
    uint32_t from, uint32_t to)
{
	vecdb_point p[500];

	for (uint32_t i = from; i < to;) {
		uint32_t n = 0;
		for (; n < 500 && i < to; n++, i++)
			p[n] = (vecdb_point) { vecdb_id_num(i), pts +
				(size_t) i * dim, dim, NULL };
		ck_assert_int_eq(vecdb_upsert(db, coll, p, n), VECDB_OK);
	}
}

static void
create_quantized(vecdb *db, const char *name, uint32_t dim, vecdb_metric m,
    vecdb_quant t)
{
	vecdb_collection_config c;

	vecdb_collection_config_init(&c, name, dim, m);
	c.quantization.type = t;
	if (t == VECDB_QUANT_PRODUCT)
		c.quantization.segments = dim / 4;
	ck_assert_int_eq(vecdb_collection_create(db, &c), VECDB_OK);
}

/* Search q; the ids into out (K), their distances into d. */
static size_t
search(vecdb *db, const char *coll, const float *q, uint32_t dim,
    float over, int exact, int no_rescore, uint64_t *out, float *d)
{
	vecdb_search_params sp = { q, dim, K, 0, NULL, 64, exact, 0, 0, 0,
		no_rescore, over, NULL };
	vecdb_records *r;
	size_t n;

	ck_assert_int_eq(vecdb_search(db, coll, &sp, &r), VECDB_OK);
	for (n = 0; n < r->count; n++) {
		out[n] = r->items[n].id.num;
		d[n] = r->items[n].distance;
	}
	vecdb_records_free(r);
	return n;
}

/* ===== Search on codes, answer on originals ===== */

START_TEST(searches_rescore_codes_with_the_stored_vectors)
{
	static const struct {
		vecdb_quant t;
		vecdb_metric m;
		uint32_t dim;
		float over;
		double min;
	} cases[] = {
		{ VECDB_QUANT_SCALAR, VECDB_EUCLIDEAN, 32, 2, 0.95 },
		{ VECDB_QUANT_PRODUCT, VECDB_EUCLIDEAN, 32, 4, 0.93 },
		{ VECDB_QUANT_BINARY, VECDB_COSINE, 256, 8, 0.90 },
	};
	uint32_t dim = cases[_i].dim;
	float *pts = tu_clustered(40 + (uint64_t) _i, N, dim);
	float *q = malloc(dim * sizeof(float)), da[K], de[K], dn[K];
	char *dir = tu_subdir();
	vecdb *db = open_db(dir);
	vecdb_collection_stats st;
	uint64_t seed = 5, a[K], e[K], nr[K];
	size_t found = 0, want = 0, differ = 0;

	create_quantized(db, "q", dim, cases[_i].m, cases[_i].t);
	load(db, "q", pts, dim, 0, N);
	ck_assert_int_eq(vecdb_index_sync(db, 120000), VECDB_OK);
	ck_assert_int_eq(vecdb_collection_stats_get(db, "q", &st), VECDB_OK);
	ck_assert_int_eq(st.quant_in_force, cases[_i].t);
	ck_assert_uint_eq(st.original_bytes, 0);
	ck_assert_uint_gt(st.code_bytes, 0);
	ck_assert_uint_gt(st.link_bytes, 0);
	for (int i = 0; i < NQ; i++) {
		tu_clustered_query(&seed, pts, N, dim, q);
		size_t ne = search(db, "q", q, dim, 1, 1, 0, e, de);
		size_t na = search(db, "q", q, dim, cases[_i].over, 0, 0, a, da);
		ck_assert_uint_eq(na, K);
		want += ne;
		for (size_t j = 0; j < na; j++) {
			/* Rescored: the distance is the stored vector's. */
			ck_assert_float_eq_tol(da[j], vec_distance(cases[_i].m, q,
			    pts + a[j] * dim, dim), 1e-4);
			for (size_t k = 0; k < ne; k++)
				found += a[j] == e[k];
		}
		/* Without rescoring: the codes' distances, near but not
		 * equal to the stored vectors'. */
		size_t nn = search(db, "q", q, dim, 1, 0, 1, nr, dn);
		ck_assert_uint_eq(nn, K);
		for (size_t j = 0; j < nn; j++)
			differ += fabsf(dn[j] - vec_distance(cases[_i].m, q,
			    pts + nr[j] * dim, dim)) > 1e-6f;
	}
	double r = (double) found / (double) want;
	printf("quant %d: recall@10 %.4f with oversampling %.0f; %zu of %d "
	    "unrescored distances differ\n", cases[_i].t, r, cases[_i].over,
	    differ, NQ * K);
	ck_assert_msg(r >= cases[_i].min, "recall %.4f", r);
	ck_assert_uint_gt(differ, 0);
	vecdb_close(db);
	free(pts);
	free(q);
	free(dir);
}
END_TEST

START_TEST(bad_settings_are_refused_and_change_nothing)
{
	char *dir = tu_subdir();
	vecdb *db = open_db(dir);
	vecdb_quant_config q = { VECDB_QUANT_BINARY, 0.99f, 0, 0, 0 };
	vecdb_collection_config c;

	tu_create(db, "e", 16, VECDB_EUCLIDEAN);
	ck_assert_int_eq(vecdb_collection_set_quantization(db, "e", &q),
	    VECDB_EINVAL);
	ck_assert_ptr_nonnull(strstr(vecdb_errmsg(), "binary"));
	q.type = VECDB_QUANT_PRODUCT;
	q.segments = 17;
	ck_assert_int_eq(vecdb_collection_set_quantization(db, "e", &q),
	    VECDB_EINVAL);
	q.segments = 4;
	q.bits = 4;
	ck_assert_int_eq(vecdb_collection_set_quantization(db, "e", &q),
	    VECDB_EINVAL);
	q.type = VECDB_QUANT_SCALAR;
	q.quantile = 1.5f;
	ck_assert_int_eq(vecdb_collection_set_quantization(db, "e", &q),
	    VECDB_EINVAL);
	ck_assert_int_eq(vecdb_collection_set_quantization(db, "none", &q),
	    VECDB_ENOTFOUND);
	/* Oversampling is 0 (meaning 1) or 1..100. */
	float v[16] = { 0 }, bad[] = { 0.5f, -1, 101, NAN, INFINITY };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		vecdb_search_params sp = { v, 16, 3, 0, NULL, 0, 0, 0, 0, 0, 0,
			bad[i], NULL };
		vecdb_records *r = NULL;
		ck_assert_int_eq(vecdb_search(db, "e", &sp, &r), VECDB_EINVAL);
		ck_assert_ptr_nonnull(strstr(vecdb_errmsg(), "oversampling"));
	}
	ck_assert_int_eq(vecdb_collection_get(db, "e", &c), VECDB_OK);
	ck_assert_int_eq(c.quantization.type, VECDB_QUANT_NONE);
	/* Product defaults are filled in and shown. */
	q = (vecdb_quant_config) { VECDB_QUANT_PRODUCT, 0, 0, 0, 0 };
	ck_assert_int_eq(vecdb_collection_set_quantization(db, "e", &q),
	    VECDB_OK);
	ck_assert_int_eq(vecdb_collection_get(db, "e", &c), VECDB_OK);
	ck_assert_int_eq(c.quantization.type, VECDB_QUANT_PRODUCT);
	ck_assert_uint_eq(c.quantization.segments, 2);
	ck_assert_uint_eq(c.quantization.bits, 8);
	vecdb_close(db);
	free(dir);
}
END_TEST

/* ===== Checkpoints ===== */

START_TEST(a_checkpoint_with_codes_reloads_and_a_corrupt_one_is_rebuilt)
{
	uint32_t dim = 24;
	float *pts = tu_clustered(50, N, dim), q[24], d0[NQ][K], d1[K];
	uint64_t ids0[NQ][K], ids1[K], seed = 9;
	char *dir = tu_subdir();
	vecdb *db = open_db(dir);
	vecdb_collection_stats st;
	char path[1024];

	create_quantized(db, "c", dim, VECDB_EUCLIDEAN, VECDB_QUANT_SCALAR);
	load(db, "c", pts, dim, 0, N);
	ck_assert_int_eq(vecdb_index_sync(db, 120000), VECDB_OK);
	for (int i = 0; i < NQ; i++) {
		tu_clustered_query(&seed, pts, N, dim, q);
		ck_assert_uint_eq(search(db, "c", q, dim, 2, 0, 0, ids0[i],
		    d0[i]), K);
	}
	vecdb_close(db); /* saves the checkpoint */
	snprintf(path, sizeof(path), "%s/index/c.hnsw", dir);
	for (int round = 0; round < 2; round++) {
		db = open_db(dir);
		ck_assert_int_eq(vecdb_index_sync(db, 120000), VECDB_OK);
		ck_assert_int_eq(vecdb_collection_stats_get(db, "c", &st), 0);
		ck_assert_int_eq(st.quant_in_force, VECDB_QUANT_SCALAR);
		seed = 9;
		for (int i = 0; i < NQ; i++) {
			tu_clustered_query(&seed, pts, N, dim, q);
			ck_assert_uint_eq(search(db, "c", q, dim, 2, 0, 0, ids1,
			    d1), K);
			/* Reloaded: the same graph, so the same answers.
			 * Rebuilt: the same points found, by distance. */
			for (int j = 0; j < K; j++)
				if (round == 0)
					ck_assert_uint_eq(ids1[j], ids0[i][j]);
				else
					ck_assert_float_eq_tol(d1[j], d0[i][j],
					    1e-4);
		}
		vecdb_close(db);
		/* Flip a byte in the middle: the checksum must catch it. */
		FILE *f = fopen(path, "r+b");
		ck_assert_ptr_nonnull(f);
		fseek(f, 0, SEEK_END);
		long size = ftell(f);
		fseek(f, size / 2, SEEK_SET);
		int ch = fgetc(f);
		fseek(f, size / 2, SEEK_SET);
		fputc(ch ^ 0x41, f);
		fclose(f);
	}
	free(pts);
	free(dir);
}
END_TEST

/* ===== Changing the quantization under load ===== */

struct load_ctx {
	vecdb *db;
	const float *pts;
	uint32_t dim;
	atomic_int stop;
	atomic_int searches, errors;
};

static void *
searcher(void *arg)
{
	struct load_ctx *x = arg;
	uint64_t seed = 3;
	float q[16];

	while (!atomic_load(&x->stop)) {
		tu_clustered_query(&seed, x->pts, N, x->dim, q);
		vecdb_search_params sp = { q, x->dim, K, 0, NULL, 0, 0, 0, 0,
			0, 0, 2, NULL };
		vecdb_records *r;
		if (vecdb_search(x->db, "m", &sp, &r) != VECDB_OK) {
			atomic_fetch_add(&x->errors, 1);
		} else {
			if (r->count != K)
				atomic_fetch_add(&x->errors, 1);
			vecdb_records_free(r);
		}
		atomic_fetch_add(&x->searches, 1);
	}
	return NULL;
}

START_TEST(changing_quantization_under_searches_and_writes_loses_nothing)
{
	uint32_t dim = 16, n0 = N - 1500;
	float *pts = tu_clustered(60, N, dim), d[K];
	char *dir = tu_subdir();
	vecdb *db = open_db(dir);
	struct load_ctx x = { db, pts, dim, 0, 0, 0 };
	vecdb_quant_config qs[] = {
		{ VECDB_QUANT_SCALAR, 0.99f, 0, 0, 0 },
		{ VECDB_QUANT_PRODUCT, 0.99f, 0, 4, 8 },
		{ VECDB_QUANT_NONE, 0.99f, 0, 0, 0 },
		{ VECDB_QUANT_SCALAR, 0.95f, 1, 0, 0 },
	};
	vecdb_collection_config c;
	vecdb_collection_stats st;
	uint64_t ids[K];
	pthread_t th;

	tu_create(db, "m", dim, VECDB_EUCLIDEAN);
	load(db, "m", pts, dim, 0, n0);
	ck_assert_int_eq(vecdb_index_sync(db, 120000), VECDB_OK);
	pthread_create(&th, NULL, searcher, &x);
	/* Writes in between the changes, on this thread. */
	uint32_t step = (N - n0) / 4;
	for (int i = 0; i < 4; i++) {
		ck_assert_int_eq(vecdb_collection_set_quantization(db, "m",
		    &qs[i]), VECDB_OK);
		load(db, "m", pts, dim, n0 + i * step, i == 3 ? N :
		    n0 + (i + 1) * step);
	}
	ck_assert_int_eq(vecdb_index_sync(db, 300000), VECDB_OK);
	atomic_store(&x.stop, 1);
	pthread_join(th, NULL);
	ck_assert_int_eq(atomic_load(&x.errors), 0);
	ck_assert_int_gt(atomic_load(&x.searches), 0);
	/* The last setting is in force, stored and indexed. */
	ck_assert_int_eq(vecdb_collection_get(db, "m", &c), VECDB_OK);
	ck_assert_int_eq(c.quantization.type, VECDB_QUANT_SCALAR);
	ck_assert_float_eq(c.quantization.quantile, 0.95f);
	ck_assert_int_eq(vecdb_collection_stats_get(db, "m", &st), VECDB_OK);
	ck_assert_uint_eq(st.vector_count, N);
	ck_assert_uint_eq(st.indexed_count, N);
	ck_assert_int_eq(st.quant_in_force, VECDB_QUANT_SCALAR);
	ck_assert_uint_gt(st.original_bytes, 0); /* always_ram */
	/* Every point, old or written meanwhile, is found by its vector. */
	for (uint32_t i = 0; i < N; i += 7) {
		ck_assert_uint_ge(search(db, "m", pts + (size_t) i * dim, dim, 1,
		    0, 0, ids, d), 1);
		ck_assert_msg(ids[0] == i || d[0] == 0, "point %u: got %llu at "
		    "%g", i, (unsigned long long) ids[0], (double) d[0]);
	}
	vecdb_close(db);
	free(pts);
	free(dir);
}
END_TEST

static Suite *
quant_db_suite(void)
{
	Suite *s = suite_create("quant_db");
	TCase *tc;

	tc = tcase_create("search");
	tcase_set_timeout(tc, 300);
	tcase_add_unchecked_fixture(tc, tu_base_setup, tu_base_teardown);
	tcase_add_loop_test(tc, searches_rescore_codes_with_the_stored_vectors,
	    0, 3);
	tcase_add_test(tc, bad_settings_are_refused_and_change_nothing);
	tcase_add_test(tc,
	    a_checkpoint_with_codes_reloads_and_a_corrupt_one_is_rebuilt);
	suite_add_tcase(s, tc);
	tc = tcase_create("concurrency");
	tcase_set_timeout(tc, 600);
	tcase_add_unchecked_fixture(tc, tu_base_setup, tu_base_teardown);
	tcase_add_test(tc,
	    changing_quantization_under_searches_and_writes_loses_nothing);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	return tu_run(quant_db_suite());
}
