/*
 * quant_test.c: the quantizers (quant.c) and the HNSW index on their
 * codes: what a code keeps of a vector, the tables' round trip and
 * damage, recall with rescoring for each quantization on clustered data,
 * checkpoints of a quantized index, always_ram rescoring, and memory.
 */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hnsw.h"
#include "quant.h"
#include "storage_impl.h"
#include "testutil.h"

#define DIM 48
#define N 6000
#define K 10
#define NQ 100

/* A quantization config of a type with the defaults. */
static vecdb_quant_config
qcfg(vecdb_quant t)
{
	vecdb_quant_config c = { t, 0.99f, 0, 0, 0 };

	return c;
}

/* ===== The quantizers alone ===== */

/* Scalar codes decode to within half a step of a value in range. */
START_TEST(scalar_codes_keep_values_within_half_a_step)
{
	float *pts = tu_clustered(1, 2000, DIM), dec[DIM];
	vecdb_quant_config c = qcfg(VECDB_QUANT_SCALAR);
	quant *q;
	uint8_t code[DIM + 8];
	float lo = INFINITY, hi = -INFINITY;

	c.quantile = 1.0f; /* nothing clipped */
	ck_assert_int_eq(quant_train(&c, VECDB_EUCLIDEAN, DIM, pts, 2000, 1,
	    &q), VECDB_OK);
	for (size_t i = 0; i < 2000 * DIM; i++) {
		lo = fminf(lo, pts[i]);
		hi = fmaxf(hi, pts[i]);
	}
	float step = (hi - lo) / 255.0f;
	ck_assert_uint_eq(quant_code_size(q), DIM);
	for (int i = 0; i < 2000; i++) {
		quant_encode(q, pts + i * DIM, code);
		quant_decode(q, code, dec);
		for (int j = 0; j < DIM; j++)
			ck_assert_float_le(fabsf(dec[j] - pts[i * DIM + j]),
			    step * 0.5f + 1e-5f);
	}
	quant_free(q);
	free(pts);
}
END_TEST

/* Each type's distances between codes order points as the true ones
 * do, most of the time: a sanity bar far below what search needs. */
START_TEST(code_distances_track_true_distances)
{
	static const struct { vecdb_quant t; vecdb_metric m; } cases[] = {
		{ VECDB_QUANT_SCALAR, VECDB_EUCLIDEAN },
		{ VECDB_QUANT_SCALAR, VECDB_DOT },
		{ VECDB_QUANT_SCALAR, VECDB_MANHATTAN },
		{ VECDB_QUANT_BINARY, VECDB_COSINE },
		{ VECDB_QUANT_PRODUCT, VECDB_EUCLIDEAN },
		{ VECDB_QUANT_PRODUCT, VECDB_DOT },
	};
	float *pts = tu_clustered(2, 3000, DIM);
	vecdb_quant_config c = qcfg(cases[_i].t);
	vecdb_metric m = cases[_i].m;
	quant *q;
	uint64_t seed = 5;
	int agree = 0, total = 0;

	if (m == VECDB_COSINE)
		for (int i = 0; i < 3000; i++)
			kern_normalize(pts + i * DIM, DIM);
	ck_assert_int_eq(quant_train(&c, m, DIM, pts, 3000, 1, &q), VECDB_OK);
	uint8_t *qb = malloc(quant_query_size(q)), *a = malloc(
	    quant_code_size(q)), *b = malloc(quant_code_size(q));
	for (int t = 0; t < 400; t++) {
		int x = (int) (tu_rand(&seed) % 3000), y = (int) (tu_rand(&seed) %
		    3000), z = (int) (tu_rand(&seed) % 3000);
		const float *px = pts + x * DIM, *py = pts + y * DIM,
		    *pz = pts + z * DIM;
		float dy = vec_distance(m, px, py, DIM), dz = vec_distance(m, px,
		    pz, DIM);
		if (fabsf(dy - dz) < 1e-3f * (fabsf(dy) + fabsf(dz)))
			continue;
		quant_prepare(q, px, qb);
		quant_encode(q, py, a);
		quant_encode(q, pz, b);
		float ay = quant_dist(q, qb, a), az = quant_dist(q, qb, b);
		agree += (ay < az) == (dy < dz);
		total++;
	}
	ck_assert_int_gt(total, 300);
	/* 48 bits order far fewer pairs right than 48 bytes. */
	int bar = c.type == VECDB_QUANT_BINARY ? 65 : 80;
	ck_assert_msg(agree * 100 > total * bar, "type %d metric %d: %d of %d "
	    "pairs ordered right", c.type, m, agree, total);
	free(qb);
	free(a);
	free(b);
	quant_free(q);
	free(pts);
}
END_TEST

START_TEST(binary_refuses_euclidean_and_product_checks_segments)
{
	float *pts = tu_clustered(3, 300, DIM);
	vecdb_quant_config c = qcfg(VECDB_QUANT_BINARY);
	quant *q = NULL;

	ck_assert_int_eq(quant_train(&c, VECDB_EUCLIDEAN, DIM, pts, 300, 1,
	    &q), VECDB_EINVAL);
	c = qcfg(VECDB_QUANT_PRODUCT);
	c.segments = DIM + 1;
	ck_assert_int_eq(quant_train(&c, VECDB_EUCLIDEAN, DIM, pts, 300, 1,
	    &q), VECDB_EINVAL);
	c.segments = 5; /* uneven: 9 or 10 components a segment */
	c.bits = 4;
	ck_assert_int_eq(quant_train(&c, VECDB_EUCLIDEAN, DIM, pts, 300, 1,
	    &q), VECDB_EINVAL);
	c.bits = 8;
	ck_assert_int_eq(quant_train(&c, VECDB_EUCLIDEAN, DIM, pts, 300, 1,
	    &q), VECDB_OK);
	ck_assert_uint_eq(quant_code_size(q), 5);
	quant_free(q);
	free(pts);
}
END_TEST

/* Tables survive serialisation bit for bit; damage is ECORRUPT. */
START_TEST(tables_round_trip_and_damage_is_refused)
{
	float *pts = tu_clustered(4, 1000, DIM);
	vecdb_quant_config c = qcfg((vecdb_quant) _i);
	vecdb_metric m = VECDB_DOT;
	quant *q, *r;
	uint8_t *buf, *b2;
	size_t len, len2;

	ck_assert_int_eq(quant_train(&c, m, DIM, pts, 1000, 1, &q), VECDB_OK);
	ck_assert_int_eq(quant_serialize(q, &buf, &len), VECDB_OK);
	ck_assert_int_eq(quant_deserialize(buf, len, m, DIM, &r), VECDB_OK);
	ck_assert_int_eq(quant_serialize(r, &b2, &len2), VECDB_OK);
	ck_assert_uint_eq(len, len2);
	ck_assert_int_eq(memcmp(buf, b2, len), 0);
	ck_assert_int_eq(quant_deserialize(buf, len - 1, m, DIM, &r),
	    VECDB_ECORRUPT);
	ck_assert_int_eq(quant_deserialize(buf, len, VECDB_EUCLIDEAN + (m ==
	    VECDB_EUCLIDEAN), DIM, &r), VECDB_ECORRUPT);
	ck_assert_int_eq(quant_deserialize(buf, len, m, DIM + 1, &r),
	    VECDB_ECORRUPT);
	buf[4] = 9; /* unknown type */
	ck_assert_int_eq(quant_deserialize(buf, len, m, DIM, &r),
	    VECDB_ECORRUPT);
	buf[4] = (uint8_t) _i;
	float nan = NAN;
	memcpy(buf + len - 4, &nan, 4);
	ck_assert_int_eq(quant_deserialize(buf, len, m, DIM, &r),
	    VECDB_ECORRUPT);
	quant_free(r);
	quant_free(q);
	vdb_free(buf);
	vdb_free(b2);
	free(pts);
}
END_TEST

/* ===== The index on codes ===== */

/* An index of the type over N clustered points (trained at N / 2). */
static hnsw_index *
quant_index_dim(vecdb_quant t, vecdb_metric m, int always_ram,
    const float *pts, uint32_t dim, uint32_t segments)
{
	hnsw_config c = { .dim = dim, .metric = m, .seed = 1,
		.quant = qcfg(t), .train_at = N / 2 };
	hnsw_index *h;

	c.quant.always_ram = always_ram;
	c.quant.segments = segments;
	ck_assert_int_eq(hnsw_new(&c, &h), VECDB_OK);
	for (uint32_t i = 0; i < N; i++) {
		ck_assert_int_eq(hnsw_insert(h, i, pts + (size_t) i * dim),
		    VECDB_OK);
		if (i + 1 < N / 2)
			ck_assert_int_eq(hnsw_quantized(h), VECDB_QUANT_NONE);
	}
	ck_assert_int_eq(hnsw_quantized(h), t);
	ck_assert_int_eq(hnsw_validate(h), VECDB_OK);
	return h;
}

static hnsw_index *
quant_index(vecdb_quant t, vecdb_metric m, int always_ram,
    const float *pts)
{
	return quant_index_dim(t, m, always_ram, pts, DIM, 0);
}

static int
hit_cmp(const void *a, const void *b)
{
	const hnsw_hit *x = a, *y = b;

	return x->dist < y->dist ? -1 : x->dist > y->dist;
}

/*
 * Recall@K with rescoring: ask the graph for over * K candidates, rescore
 * them with the original vectors (as the engine does from LMDB), keep K.
 */
static double
rescored_recall(hnsw_index *h, const float *pts, uint32_t dim,
    vecdb_metric m, int over, uint32_t ef)
{
	uint64_t seed = 77, truth[K];
	float *q = malloc(dim * sizeof(float));
	size_t found = 0, nh;
	hnsw_hit *hits = malloc(over * K * sizeof(*hits));

	for (int qi = 0; qi < NQ; qi++) {
		tu_clustered_query(&seed, pts, N, dim, q);
		tu_exact_topk(pts, N, dim, m, q, K, NULL, NULL, truth);
		ck_assert_int_eq(hnsw_search(h, q, over * K, ef, NULL, NULL,
		    hits, &nh), VECDB_OK);
		for (size_t i = 0; i < nh; i++)
			hits[i].dist = vec_distance(m, q, pts + hits[i].label *
			    dim, dim);
		qsort(hits, nh, sizeof(*hits), hit_cmp);
		for (size_t i = 0; i < nh && i < K; i++)
			for (int j = 0; j < K; j++)
				found += hits[i].label == truth[j];
	}
	free(hits);
	free(q);
	return (double) found / (NQ * K);
}

START_TEST(each_quantization_with_rescoring_reaches_recall)
{
	/* Binary keeps a bit a component: it is for wide vectors. */
	static const struct {
		vecdb_quant t;
		vecdb_metric m;
		uint32_t dim, segments;
		int over;
		double min;
	} cases[] = {
		{ VECDB_QUANT_SCALAR, VECDB_EUCLIDEAN, DIM, 0, 2, 0.95 },
		{ VECDB_QUANT_SCALAR, VECDB_COSINE, DIM, 0, 2, 0.95 },
		{ VECDB_QUANT_SCALAR, VECDB_MANHATTAN, DIM, 0, 2, 0.95 },
		{ VECDB_QUANT_SCALAR, VECDB_DOT, DIM, 0, 2, 0.95 },
		{ VECDB_QUANT_PRODUCT, VECDB_EUCLIDEAN, DIM, 12, 4, 0.93 },
		{ VECDB_QUANT_PRODUCT, VECDB_COSINE, DIM, 12, 4, 0.93 },
		{ VECDB_QUANT_BINARY, VECDB_COSINE, 512, 0, 8, 0.90 },
	};
	uint32_t dim = cases[_i].dim;
	float *pts = tu_clustered(10 + (uint64_t) _i, N, dim);
	hnsw_index *h = quant_index_dim(cases[_i].t, cases[_i].m, 0, pts, dim,
	    cases[_i].segments);
	double r = rescored_recall(h, pts, dim, cases[_i].m, cases[_i].over,
	    128);

	printf("quant %d metric %d oversampling %d: recall@10 %.4f\n",
	    cases[_i].t, cases[_i].m, cases[_i].over, r);
	ck_assert_msg(r >= cases[_i].min, "recall %.4f < %.2f", r,
	    cases[_i].min);
	hnsw_free(h);
	free(pts);
}
END_TEST

/* Without always_ram the floats go; the codes are a quarter of them. */
START_TEST(memory_holds_codes_and_links_not_floats)
{
	float *pts = tu_clustered(20, N, DIM);
	hnsw_index *h = quant_index(VECDB_QUANT_SCALAR, VECDB_EUCLIDEAN, 0,
	    pts), *g = quant_index(VECDB_QUANT_SCALAR, VECDB_EUCLIDEAN, 1, pts);
	size_t codes, links, orig, c2, l2, o2;

	hnsw_memory_parts(h, &codes, &links, &orig);
	hnsw_memory_parts(g, &c2, &l2, &o2);
	ck_assert_uint_eq(orig, 0);
	ck_assert_uint_ge(codes, (size_t) N * DIM);
	ck_assert_uint_gt(links, 0);
	ck_assert_uint_ge(o2, (size_t) N * DIM * 4);
	ck_assert_uint_lt(codes, o2 / 3);
	ck_assert_uint_lt(hnsw_memory(h) + o2 / 2, hnsw_memory(g));
	hnsw_free(h);
	hnsw_free(g);
	free(pts);
}
END_TEST

/* With always_ram, hnsw_rescore gives the exact distances. */
START_TEST(always_ram_rescores_from_memory)
{
	float *pts = tu_clustered(21, N, DIM), q[DIM];
	hnsw_index *h = quant_index(VECDB_QUANT_PRODUCT, VECDB_EUCLIDEAN, 1,
	    pts), *g = quant_index(VECDB_QUANT_PRODUCT, VECDB_EUCLIDEAN, 0, pts);
	uint64_t seed = 3;
	hnsw_hit hits[K];
	size_t n;

	tu_clustered_query(&seed, pts, N, DIM, q);
	ck_assert_int_eq(hnsw_search(h, q, K, 64, NULL, NULL, hits, &n), 0);
	ck_assert_uint_eq(n, K);
	ck_assert_int_eq(hnsw_rescore(h, q, hits, n), 1);
	for (size_t i = 0; i < n; i++)
		ck_assert_float_eq_tol(hits[i].dist, vec_distance(VECDB_EUCLIDEAN,
		    q, pts + hits[i].label * DIM, DIM), 1e-4);
	ck_assert_int_eq(hnsw_rescore(g, q, hits, n), 0);
	hnsw_free(h);
	hnsw_free(g);
	free(pts);
}
END_TEST

/* A checkpoint with codes and tables reloads to identical answers; one
 * saved with other settings, or damaged, is refused (the engine then
 * rebuilds). */
START_TEST(checkpoint_with_codes_reloads_identically)
{
	vecdb_quant t = (vecdb_quant) _i;
	vecdb_metric m = t == VECDB_QUANT_BINARY ? VECDB_COSINE :
	    VECDB_EUCLIDEAN;
	float *pts = tu_clustered(30, N, DIM), q[DIM];
	hnsw_index *h = quant_index(t, m, 0, pts), *g;
	hnsw_config c = { .dim = DIM, .metric = m, .quant = qcfg(t) };
	char *dir = tu_subdir(), path[512];
	uint64_t seed = 8, seq;
	hnsw_hit a[K], b[K];
	size_t na, nb;

	snprintf(path, sizeof(path), "%s/q.hnsw", dir);
	ck_assert_int_eq(hnsw_save(h, path, 42), VECDB_OK);
	ck_assert_int_eq(hnsw_load(path, &c, &g, &seq), VECDB_OK);
	ck_assert_uint_eq(seq, 42);
	ck_assert_int_eq(hnsw_quantized(g), t);
	ck_assert_int_eq(hnsw_validate(g), VECDB_OK);
	for (int i = 0; i < 30; i++) {
		tu_clustered_query(&seed, pts, N, DIM, q);
		ck_assert_int_eq(hnsw_search(h, q, K, 0, NULL, NULL, a, &na), 0);
		ck_assert_int_eq(hnsw_search(g, q, K, 0, NULL, NULL, b, &nb), 0);
		ck_assert_uint_eq(na, nb);
		for (size_t j = 0; j < na; j++) {
			ck_assert_uint_eq(a[j].label, b[j].label);
			ck_assert_float_eq(a[j].dist, b[j].dist);
		}
	}
	/* New inserts are coded as before. */
	ck_assert_int_eq(hnsw_insert(g, N + 1, pts), VECDB_OK);
	hnsw_free(g);
	/* Other settings, or none: refused. */
	c.quant.always_ram = 1;
	ck_assert_int_eq(hnsw_load(path, &c, &g, &seq), VECDB_ECORRUPT);
	c.quant = qcfg(VECDB_QUANT_NONE);
	ck_assert_int_eq(hnsw_load(path, &c, &g, &seq), VECDB_ECORRUPT);
	c.quant = qcfg(t == VECDB_QUANT_SCALAR ? VECDB_QUANT_PRODUCT :
	    VECDB_QUANT_SCALAR);
	ck_assert_int_eq(hnsw_load(path, &c, &g, &seq), VECDB_ECORRUPT);
	/* A flipped byte in the codes: the checksum catches it. */
	c.quant = qcfg(t);
	FILE *f = fopen(path, "r+b");
	ck_assert_ptr_nonnull(f);
	fseek(f, -(long) (N * 40), SEEK_END);
	int ch = fgetc(f);
	fseek(f, -1, SEEK_CUR);
	fputc(ch ^ 0x5a, f);
	fclose(f);
	ck_assert_int_eq(hnsw_load(path, &c, &g, &seq), VECDB_ECORRUPT);
	hnsw_free(h);
	free(pts);
	free(dir);
}
END_TEST

static Suite *
quant_suite(void)
{
	Suite *s = suite_create("quant");
	TCase *tc;

	tc = tcase_create("quantizers");
	tcase_add_test(tc, scalar_codes_keep_values_within_half_a_step);
	tcase_add_loop_test(tc, code_distances_track_true_distances, 0, 6);
	tcase_add_test(tc, binary_refuses_euclidean_and_product_checks_segments);
	tcase_add_loop_test(tc, tables_round_trip_and_damage_is_refused,
	    VECDB_QUANT_SCALAR, VECDB_QUANT_PRODUCT + 1);
	suite_add_tcase(s, tc);
	tc = tcase_create("index");
	tcase_set_timeout(tc, 120);
	tcase_add_unchecked_fixture(tc, tu_base_setup, tu_base_teardown);
	tcase_add_loop_test(tc, each_quantization_with_rescoring_reaches_recall,
	    0, 7);
	tcase_add_test(tc, memory_holds_codes_and_links_not_floats);
	tcase_add_test(tc, always_ram_rescores_from_memory);
	tcase_add_loop_test(tc, checkpoint_with_codes_reloads_identically,
	    VECDB_QUANT_SCALAR, VECDB_QUANT_PRODUCT + 1);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	return tu_run(quant_suite());
}
