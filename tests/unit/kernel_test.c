/*
 * kernel_test.c: every SIMD level this CPU runs agrees with the scalar
 * reference, which agrees with vec_distance; for the code kernels, the
 * scalar reference agrees with sums written out directly here.
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

/* ===== Code kernels (quantization) ===== */

/* 1, 7, 65, 784, 1537 as the float kernels; 0 and 33, 63, 100 for the
 * steps of 16 and 32 codes and the masked tails of the SIMD loops. */
static const size_t code_lens[] = { 0, 1, 7, 33, 63, 65, 100, 784, 1537 };
#define NCODE_LENS (sizeof(code_lens) / sizeof(code_lens[0]))
static const size_t word_counts[] = { 0, 1, 2, 8, 13, 25, 97 };
#define NWORD_COUNTS (sizeof(word_counts) / sizeof(word_counts[0]))
static const size_t lut_ms[] = { 1, 7, 98, 392 };
#define NLUT_MS (sizeof(lut_ms) / sizeof(lut_ms[0]))
#define MAXCODES 65536   /* VECDB_DIM_MAX: the largest u8 sum */
#define MAXWORDS 97
#define MAXM 392
#define LUT_TOL 1e-5

/* Per-op names for messages. */
static const char *const u8_names[KERN_COS] = { "l2sq", "dot", "l1" };

/*
 * The direct sums, written as plainly as possible (64-bit, bit by bit),
 * to check the scalar reference against.
 */
static uint64_t
direct_u8(kern_op op, const uint8_t *a, const uint8_t *b, size_t n)
{
	uint64_t s = 0;

	for (size_t i = 0; i < n; i++) {
		int64_t x = a[i], y = b[i];
		if (op == KERN_L2SQ)
			s += (uint64_t) ((x - y) * (x - y));
		else if (op == KERN_DOT)
			s += (uint64_t) (x * y);
		else
			s += (uint64_t) (x > y ? x - y : y - x);
	}
	return s;
}

static uint64_t
direct_hamming(const uint64_t *a, const uint64_t *b, size_t words)
{
	uint64_t s = 0;

	for (size_t i = 0; i < words; i++)
		for (int bit = 0; bit < 64; bit++)
			s += ((a[i] >> bit) & 1) != ((b[i] >> bit) & 1);
	return s;
}

/* The lut sum in double, and the sum of its terms' magnitudes. */
static double
direct_lut(const float *lut, const uint8_t *codes, size_t m, double *mag)
{
	double s = 0;

	*mag = 0;
	for (size_t i = 0; i < m; i++) {
		s += lut[256 * i + codes[i]];
		*mag += fabs(lut[256 * i + codes[i]]);
	}
	return s;
}

/* A code byte: random, with 0 and 255 a quarter of the time each. */
static uint8_t
rand_code(uint64_t *seed)
{
	uint64_t r = tu_rand(seed);

	switch (r & 3) {
	case 0:
		return 0;
	case 1:
		return 255;
	default:
		return (uint8_t) (r >> 8);
	}
}

/* A 64-bit word: random, or all zeros / all ones an eighth each. */
static uint64_t
rand_word(uint64_t *seed)
{
	uint64_t r = tu_rand(seed);

	switch (r & 7) {
	case 0:
		return 0;
	case 1:
		return ~0ULL;
	default:
		return tu_rand(seed);
	}
}

/* The code inputs of one round: two code rows with room for an odd
 * start, two word rows, a lut and its codes. */
struct codes {
	uint8_t a[MAXCODES + 8], b[MAXCODES + 8];
	uint64_t wa[MAXWORDS], wb[MAXWORDS];
	float lut[256 * MAXM];
	uint8_t c[MAXM];
};

/*
 * Calls f for every u8 input: random rows (0 and 255 frequent) of each
 * length in code_lens, starting at offsets 0..3 so the vector loads are
 * unaligned, and the extreme rows: all 255 against all 0 both ways and
 * all 255 against itself, at 1537 and at MAXCODES (where L2SQ and DOT
 * come within 1% of 2^32).
 */
static void
each_u8_input(struct codes *v, void (*f)(const uint8_t *a,
    const uint8_t *b, size_t n, void *arg), void *arg)
{
	uint64_t seed = 23;

	for (size_t li = 0; li < NCODE_LENS; li++) {
		size_t n = code_lens[li];
		for (int rep = 0; rep < REPS; rep++) {
			size_t off = (size_t) rep % 4;
			for (size_t i = 0; i < n + off; i++) {
				v->a[i] = rand_code(&seed);
				v->b[i] = rand_code(&seed);
			}
			f(v->a + off, v->b + off, n, arg);
		}
	}
	static const size_t ext[] = { 1537, MAXCODES };
	for (size_t e = 0; e < 2; e++) {
		memset(v->a, 255, ext[e]);
		memset(v->b, 0, ext[e]);
		f(v->a, v->b, ext[e], arg);
		f(v->b, v->a, ext[e], arg);
		f(v->a, v->a, ext[e], arg);
		f(v->b, v->b, ext[e], arg);
	}
}

/* The same for the Hamming kernel over word_counts. */
static void
each_word_input(struct codes *v, void (*f)(const uint64_t *a,
    const uint64_t *b, size_t w, void *arg), void *arg)
{
	uint64_t seed = 29;

	for (size_t wi = 0; wi < NWORD_COUNTS; wi++) {
		size_t w = word_counts[wi];
		for (int rep = 0; rep < REPS; rep++) {
			for (size_t i = 0; i < w; i++) {
				v->wa[i] = rand_word(&seed);
				v->wb[i] = rep == 0 ? ~v->wa[i] :
				    rand_word(&seed);
			}
			f(v->wa, v->wb, w, arg);
		}
	}
}

/*
 * Calls f for every lut input: for each m in lut_ms, tables of random
 * floats in [0, 4) (squared distances, as an L2 product quantizer
 * builds) and in [-1, 1) (inner products), with codes 0 and 255
 * frequent.
 */
static void
each_lut_input(struct codes *v, void (*f)(const float *lut,
    const uint8_t *c, size_t m, int signed_table, void *arg), void *arg)
{
	uint64_t seed = 31;

	for (size_t mi = 0; mi < NLUT_MS; mi++) {
		size_t m = lut_ms[mi];
		for (int rep = 0; rep < REPS; rep++) {
			int sgn = rep & 1;
			for (size_t i = 0; i < 256 * m; i++) {
				float r = tu_randf(&seed);
				v->lut[i] = sgn ? r : 2.0f * (r + 1.0f);
			}
			for (size_t i = 0; i < m; i++)
				v->c[i] = rand_code(&seed);
			f(v->lut, v->c, m, sgn, arg);
		}
	}
}

/*
 * The lut tolerance: LUT_TOL relative to the reference for a table of
 * non-negative entries; for a signed one, LUT_TOL of the sum of the
 * terms' magnitudes (the sum itself may cancel to near 0, where a
 * relative bound says nothing about rounding).
 */
static double
lut_tolerance(const float *lut, const uint8_t *c, size_t m, double ref,
    int signed_table)
{
	double mag;

	direct_lut(lut, c, m, &mag);
	return LUT_TOL * (signed_table ? mag : fabs(ref));
}

static void
check_scalar_u8(const uint8_t *a, const uint8_t *b, size_t n, void *arg)
{
	const kern_ops *k = arg;

	for (int op = 0; op < KERN_COS; op++) {
		uint64_t want = direct_u8((kern_op) op, a, b, n);
		ck_assert_msg(want <= UINT32_MAX, "n %zu too long", n);
		ck_assert_msg(k->u8[op](a, b, n) == want,
		    "scalar %s n %zu: %u vs direct %llu", u8_names[op], n,
		    k->u8[op](a, b, n), (unsigned long long) want);
	}
}

static void
check_scalar_hamming(const uint64_t *a, const uint64_t *b, size_t w,
    void *arg)
{
	const kern_ops *k = arg;
	uint64_t want = direct_hamming(a, b, w);

	ck_assert_msg(k->hamming(a, b, w) == want,
	    "scalar hamming %zu words: %u vs direct %llu", w,
	    k->hamming(a, b, w), (unsigned long long) want);
}

static void
check_scalar_lut(const float *lut, const uint8_t *c, size_t m, int sgn,
    void *arg)
{
	const kern_ops *k = arg;
	double mag, want = direct_lut(lut, c, m, &mag);
	double got = k->lut(lut, c, m);

	ck_assert_msg(fabs(got - want) <= lut_tolerance(lut, c, m, want, sgn),
	    "scalar lut m %zu: %.9g vs direct %.9g", m, got, want);
}

START_TEST(scalar_code_kernels_match_direct_sums)
{
	const kern_ops *k = kern_ops_get(KERN_SCALAR);
	static struct codes v;

	ck_assert_str_eq(k->extras, "");
	each_u8_input(&v, check_scalar_u8, (void *) k);
	each_word_input(&v, check_scalar_hamming, (void *) k);
	each_lut_input(&v, check_scalar_lut, (void *) k);
	fprintf(stderr, "kernel_test: codes: scalar agrees with the direct "
			"sums\n");
}
END_TEST

static void
check_level_u8(const uint8_t *a, const uint8_t *b, size_t n, void *arg)
{
	const kern_ops *k = arg, *ref = kern_ops_get(KERN_SCALAR);

	for (int op = 0; op < KERN_COS; op++) {
		uint32_t want = ref->u8[op](a, b, n), got = k->u8[op](a, b, n);
		ck_assert_msg(got == want, "%s %s n %zu: %u vs scalar %u",
		    kern_level_name(k->level), u8_names[op], n, got, want);
	}
}

static void
check_level_hamming(const uint64_t *a, const uint64_t *b, size_t w,
    void *arg)
{
	const kern_ops *k = arg, *ref = kern_ops_get(KERN_SCALAR);
	uint32_t want = ref->hamming(a, b, w), got = k->hamming(a, b, w);

	ck_assert_msg(got == want, "%s hamming %zu words: %u vs scalar %u",
	    kern_level_name(k->level), w, got, want);
}

static void
check_level_lut(const float *lut, const uint8_t *c, size_t m, int sgn,
    void *arg)
{
	const kern_ops *k = arg, *ref = kern_ops_get(KERN_SCALAR);
	double want = ref->lut(lut, c, m), got = k->lut(lut, c, m);

	ck_assert_msg(fabs(got - want) <= lut_tolerance(lut, c, m, want, sgn),
	    "%s lut m %zu (%s table): %.9g vs scalar %.9g",
	    kern_level_name(k->level), m, sgn ? "signed" : "non-negative",
	    got, want);
}

/* Each SIMD level the CPU runs, with what it ran; the others skipped. */
static void
each_code_level(const char *what, void (*run)(const kern_ops *k))
{
	for (int l = KERN_AVX2; l < KERN_LEVEL_COUNT; l++) {
		const kern_ops *k = kern_ops_get((kern_level) l);
		if (k == NULL) {
			fprintf(stderr, "kernel_test: %s: skipped %s: not "
					"available on this CPU\n", what,
			    kern_level_name((kern_level) l));
			continue;
		}
		ck_assert_int_eq(k->level, l);
		ck_assert_ptr_nonnull(k->extras);
		run(k);
		fprintf(stderr, "kernel_test: %s: ran %s (extras \"%s\")\n",
		    what, kern_level_name((kern_level) l), k->extras);
	}
}

static void
run_int_codes(const kern_ops *k)
{
	static struct codes v;

	each_u8_input(&v, check_level_u8, (void *) k);
	each_word_input(&v, check_level_hamming, (void *) k);
}

static void
run_lut(const kern_ops *k)
{
	static struct codes v;

	each_lut_input(&v, check_level_lut, (void *) k);
}

START_TEST(u8_and_hamming_kernels_equal_scalar)
{
	each_code_level("u8 + hamming", run_int_codes);
}
END_TEST

START_TEST(lut_kernels_agree_with_scalar)
{
	each_code_level("lut", run_lut);
}
END_TEST

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
	tc = tcase_create("codes");
	tcase_add_test(tc, scalar_code_kernels_match_direct_sums);
	tcase_add_test(tc, u8_and_hamming_kernels_equal_scalar);
	tcase_add_test(tc, lut_kernels_agree_with_scalar);
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
