/*
 * kernel_test.c: every SIMD level this CPU runs agrees with the scalar
 * reference, which agrees with vec_distance.
 */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels.h"
#include "storage_impl.h"
#include "testutil.h"

static const size_t dims[] = { 1, 7, 65, 784, 1537 };
#define NDIMS (sizeof(dims) / sizeof(dims[0]))
#define MAXDIM 1537
#define REPS 8

/* Test vectors: a float query and one stored vector of each type. */
struct vecs {
	float q[MAXDIM];
	float x[MAXDIM];       /* the stored vector as float */
	uint16_t h[MAXDIM];    /* as half */
	uint8_t b[MAXDIM];     /* as uint8 */
	float xh[MAXDIM];      /* the half decoded */
	float xb[MAXDIM];      /* the uint8 decoded */
};

/* Fill v with seeded values; uint8-like ranges for the uint8 vector. */
static void
fill(struct vecs *v, uint64_t *seed, size_t dim)
{
	tu_rand_vector(seed, v->q, (uint32_t) dim);
	tu_rand_vector(seed, v->x, (uint32_t) dim);
	for (size_t i = 0; i < dim; i++) {
		v->h[i] = vec_f32_to_f16(v->x[i]);
		v->xh[i] = vec_f16_to_f32(v->h[i]);
		v->b[i] = (uint8_t) (tu_rand(seed) & 0xff);
		v->xb[i] = v->b[i];
	}
}

/* The stored vector of type t, and its decoded float form. */
static const void *
stored(const struct vecs *v, int t, const float **dec)
{
	*dec = t == VECDB_FLOAT32 ? v->x : t == VECDB_FLOAT16 ? v->xh : v->xb;
	return t == VECDB_FLOAT32 ? (const void *) v->x :
	    t == VECDB_FLOAT16 ? (const void *) v->h : (const void *) v->b;
}

/* The absolute error allowed: 1e-4 relative, plus slack near 0 scaled by
 * the magnitude of the terms (a dot of random vectors cancels). */
static double
tolerance(kern_op op, const float *q, const float *x, size_t dim,
    double ref)
{
	double terms = 0;

	for (size_t i = 0; i < dim; i++)
		terms += fabs((double) q[i] * x[i]) + (double) x[i] * x[i];
	if (op == KERN_COS)
		return 1e-4 * fabs(ref) + 1e-5;
	return 1e-4 * fabs(ref) + 1e-6 * terms + 1e-6;
}

/* Compare every op and type of one level with the scalar table. */
static void
compare_level(const kern_ops *k)
{
	const kern_ops *ref = kern_ops_get(KERN_SCALAR);
	static struct vecs v;
	uint64_t seed = 7;

	for (size_t di = 0; di < NDIMS; di++) {
		size_t dim = dims[di];
		for (int rep = 0; rep < REPS; rep++) {
			fill(&v, &seed, dim);
			for (int t = 0; t < KERN_TYPE_COUNT; t++) {
				const float *dec;
				const void *x = stored(&v, t, &dec);
				for (int op = 0; op < KERN_OP_COUNT; op++) {
					double a = ref->dist[op][t](v.q, x, dim);
					double b = k->dist[op][t](v.q, x, dim);
					double tol = tolerance((kern_op) op, v.q,
					    dec, dim, a);
					ck_assert_msg(fabs(a - b) <= tol,
					    "%s op %d type %d dim %zu: %.9g vs "
					    "scalar %.9g",
					    kern_level_name(k->level), op, t,
					    dim, b, a);
				}
			}
		}
	}
}

/* The table of a level, or NULL with a message when the CPU lacks it. */
static const kern_ops *
level_or_skip(kern_level l)
{
	const kern_ops *k = kern_ops_get(l);

	if (k == NULL)
		fprintf(stderr, "kernel_test: skipped %s: not available on "
				"this CPU\n", kern_level_name(l));
	return k;
}

START_TEST(each_simd_level_agrees_with_scalar)
{
	kern_level l = (kern_level) (KERN_AVX2 + _i);
	const kern_ops *k = level_or_skip(l);

	if (k != NULL) {
		ck_assert_int_eq(k->level, l);
		compare_level(k);
	}
}
END_TEST

START_TEST(scalar_agrees_with_vec_distance)
{
	const kern_ops *k = kern_ops_get(KERN_SCALAR);
	static struct vecs v;
	uint64_t seed = 11;

	for (size_t di = 0; di < NDIMS; di++) {
		fill(&v, &seed, dims[di]);
		for (int m = VECDB_COSINE; m <= VECDB_MANHATTAN; m++) {
			double a = vec_distance((vecdb_metric) m, v.q, v.x,
			    (uint32_t) dims[di]);
			double b = kern_distance(k, (vecdb_metric) m,
			    VECDB_FLOAT32, v.q, v.x, dims[di]);
			ck_assert_msg(fabs(a - b) <= 1e-4 * fabs(a) + 1e-4,
			    "metric %d dim %zu: %.9g vs %.9g", m, dims[di], b,
			    a);
		}
	}
}
END_TEST

START_TEST(quantized_types_match_their_decoded_floats)
{
	const kern_ops *k = kern_ops_best();
	static struct vecs v;
	uint64_t seed = 13;

	for (size_t di = 0; di < NDIMS; di++) {
		size_t dim = dims[di];
		fill(&v, &seed, dim);
		for (int t = VECDB_FLOAT16; t <= VECDB_UINT8; t++) {
			const float *dec;
			const void *x = stored(&v, t, &dec);
			for (int op = 0; op < KERN_OP_COUNT; op++) {
				double a = k->dist[op][VECDB_FLOAT32](v.q, dec,
				    dim);
				double b = k->dist[op][t](v.q, x, dim);
				ck_assert(fabs(a - b) <= tolerance((kern_op) op,
				    v.q, dec, dim, a));
			}
		}
	}
}
END_TEST

START_TEST(batch_kernels_match_single_calls)
{
	enum { N = 40, DIM = 65, STRIDE = 80 };
	static float base[N * STRIDE], q[DIM], out[N];
	uint32_t ids[N];
	uint64_t seed = 17;

	for (int i = 0; i < N * STRIDE; i++)
		base[i] = tu_randf(&seed);
	tu_rand_vector(&seed, q, DIM);
	for (int i = 0; i < N; i++)
		ids[i] = (uint32_t) ((i * 7) % N);
	for (int l = 0; l < KERN_LEVEL_COUNT; l++) {
		const kern_ops *k = kern_ops_get((kern_level) l);
		if (k == NULL)
			continue;
		for (int op = 0; op < KERN_COS; op++) {
			k->batch[op](q, base, STRIDE, DIM, ids, N, out);
			for (int i = 0; i < N; i++)
				ck_assert_float_eq(out[i], k->dist[op][0](q,
				    base + (size_t) ids[i] * STRIDE, DIM));
		}
	}
}
END_TEST

START_TEST(half_decoding_matches_vec_f16_to_f32)
{
	for (uint32_t h = 0; h < 0x10000; h++) {
		if ((h & 0x7c00) == 0x7c00 && (h & 0x3ff) != 0)
			continue; /* NaN != NaN */
		float a = vec_f16_to_f32((uint16_t) h);
		float b = kern_f16_to_f32((uint16_t) h);
		ck_assert_msg(memcmp(&a, &b, 4) == 0, "half %#x", h);
	}
}
END_TEST

START_TEST(vecdb_simd_forces_a_lower_level)
{
	/* Tables are picked once a process: CK_FORK gives each test its
	 * own, so the variable set here is the one read. */
	const char *fork = getenv("CK_FORK");

	if (fork != NULL && strcmp(fork, "no") == 0)
		return;
	setenv("VECDB_SIMD", "scalar", 1);
	ck_assert_int_eq(kern_ops_best()->level, KERN_SCALAR);
}
END_TEST

START_TEST(unknown_level_is_refused)
{
	ck_assert_ptr_null(kern_ops_get(KERN_LEVEL_COUNT));
	ck_assert_ptr_nonnull(kern_ops_get(KERN_SCALAR));
	ck_assert_str_eq(kern_level_name(KERN_AVX512), "avx512");
}
END_TEST

START_TEST(normalize_gives_unit_length_and_keeps_zero)
{
	float v[5] = { 3, 4, 0, 0, 0 }, z[3] = { 0 };

	kern_normalize(v, 5);
	ck_assert_float_eq_tol(v[0], 0.6f, 1e-6f);
	ck_assert_float_eq_tol(v[1], 0.8f, 1e-6f);
	kern_normalize(z, 3);
	ck_assert_float_eq(z[0], 0.0f);
}
END_TEST

/* The suite. */
static Suite *
kernel_suite(void)
{
	Suite *s = suite_create("kernels");
	TCase *tc;

	tc = tcase_create("simd");
	tcase_add_loop_test(tc, each_simd_level_agrees_with_scalar, 0,
	    KERN_LEVEL_COUNT - 1);
	suite_add_tcase(s, tc);
	tc = tcase_create("reference");
	tcase_add_test(tc, scalar_agrees_with_vec_distance);
	tcase_add_test(tc, half_decoding_matches_vec_f16_to_f32);
	suite_add_tcase(s, tc);
	tc = tcase_create("types");
	tcase_add_test(tc, quantized_types_match_their_decoded_floats);
	tcase_add_test(tc, batch_kernels_match_single_calls);
	suite_add_tcase(s, tc);
	tc = tcase_create("dispatch");
	tcase_add_test(tc, vecdb_simd_forces_a_lower_level);
	tcase_add_test(tc, unknown_level_is_refused);
	tcase_add_test(tc, normalize_gives_unit_length_and_keeps_zero);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	return tu_run(kernel_suite());
}
