/*
 * kernels.c: the portable scalar kernels (the reference the SIMD versions
 * are tested against) and the run-time choice of level.
 */
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "kernels.h"

#if defined(__x86_64__)
#include <cpuid.h>
#endif

/* ===== Scalar kernels ===== */

/* Component i of a float32 / float16 / uint8 vector as float. */
static inline float
ld_f32(const void *x, size_t i)
{
	return ((const float *) x)[i];
}

static inline float
ld_f16(const void *x, size_t i)
{
	return kern_f16_to_f32(((const uint16_t *) x)[i]);
}

static inline float
ld_u8(const void *x, size_t i)
{
	return (float) ((const uint8_t *) x)[i];
}

/*
 * The four operations for one stored type. Two accumulators: enough for
 * the compiler to overlap iterations, and a summation order close to the
 * SIMD versions'.
 */
#define SCALAR_OPS(T)                                                     \
	static float l2sq_##T(const float *q, const void *x, size_t dim) \
	{                                                                 \
		float s0 = 0, s1 = 0;                                     \
		size_t i = 0;                                             \
		for (; i + 2 <= dim; i += 2) {                            \
			float d0 = q[i] - ld_##T(x, i);                   \
			float d1 = q[i + 1] - ld_##T(x, i + 1);           \
			s0 += d0 * d0;                                    \
			s1 += d1 * d1;                                    \
		}                                                         \
		for (; i < dim; i++) {                                    \
			float d = q[i] - ld_##T(x, i);                    \
			s0 += d * d;                                      \
		}                                                         \
		return s0 + s1;                                           \
	}                                                                 \
	static float dot_##T(const float *q, const void *x, size_t dim)  \
	{                                                                 \
		float s0 = 0, s1 = 0;                                     \
		size_t i = 0;                                             \
		for (; i + 2 <= dim; i += 2) {                            \
			s0 += q[i] * ld_##T(x, i);                        \
			s1 += q[i + 1] * ld_##T(x, i + 1);                \
		}                                                         \
		for (; i < dim; i++)                                      \
			s0 += q[i] * ld_##T(x, i);                        \
		return s0 + s1;                                           \
	}                                                                 \
	static float l1_##T(const float *q, const void *x, size_t dim)   \
	{                                                                 \
		float s0 = 0, s1 = 0;                                     \
		size_t i = 0;                                             \
		for (; i + 2 <= dim; i += 2) {                            \
			s0 += fabsf(q[i] - ld_##T(x, i));                 \
			s1 += fabsf(q[i + 1] - ld_##T(x, i + 1));         \
		}                                                         \
		for (; i < dim; i++)                                      \
			s0 += fabsf(q[i] - ld_##T(x, i));                 \
		return s0 + s1;                                           \
	}                                                                 \
	static float cos_##T(const float *q, const void *x, size_t dim)  \
	{                                                                 \
		float dot = 0, nq = 0, nx = 0;                            \
		for (size_t i = 0; i < dim; i++) {                        \
			float v = ld_##T(x, i);                           \
			dot += q[i] * v;                                  \
			nq += q[i] * q[i];                                \
			nx += v * v;                                      \
		}                                                         \
		if (nq == 0 || nx == 0)                                   \
			return 1.0f;                                      \
		return 1.0f - dot / (sqrtf(nq) * sqrtf(nx));              \
	}

SCALAR_OPS(f32)
SCALAR_OPS(f16)
SCALAR_OPS(u8)

/* Batch form of a scalar f32 kernel. */
#define SCALAR_BATCH(OP)                                                   \
	static void OP##_batch(const float *q, const float *base,          \
	    size_t stride, size_t dim, const uint32_t *ids, size_t n,      \
	    float *out)                                                    \
	{                                                                  \
		for (size_t i = 0; i < n; i++)                             \
			out[i] = OP##_f32(q, base + (size_t) ids[i] * stride, \
			    dim);                                          \
	}

SCALAR_BATCH(l2sq)
SCALAR_BATCH(dot)
SCALAR_BATCH(l1)

/* ===== Scalar code kernels ===== */

static uint32_t
l2sq_codes(const uint8_t *a, const uint8_t *b, size_t n)
{
	uint32_t s = 0;

	for (size_t i = 0; i < n; i++) {
		int d = (int) a[i] - (int) b[i];
		s += (uint32_t) (d * d);
	}
	return s;
}

static uint32_t
dot_codes(const uint8_t *a, const uint8_t *b, size_t n)
{
	uint32_t s = 0;

	for (size_t i = 0; i < n; i++)
		s += (uint32_t) a[i] * b[i];
	return s;
}

static uint32_t
l1_codes(const uint8_t *a, const uint8_t *b, size_t n)
{
	uint32_t s = 0;

	for (size_t i = 0; i < n; i++)
		s += (uint32_t) (a[i] > b[i] ? a[i] - b[i] : b[i] - a[i]);
	return s;
}

/* Bit-parallel popcount: no POPCNT instruction in a portable build. */
static uint32_t
hamming_words(const uint64_t *a, const uint64_t *b, size_t words)
{
	uint32_t s = 0;

	for (size_t i = 0; i < words; i++) {
		uint64_t x = a[i] ^ b[i];
		x = x - ((x >> 1) & 0x5555555555555555ULL);
		x = (x & 0x3333333333333333ULL) +
		    ((x >> 2) & 0x3333333333333333ULL);
		x = (x + (x >> 4)) & 0x0f0f0f0f0f0f0f0fULL;
		s += (uint32_t) ((x * 0x0101010101010101ULL) >> 56);
	}
	return s;
}

static float
lut_sum(const float *lut, const uint8_t *codes, size_t m)
{
	float s0 = 0, s1 = 0;
	size_t i = 0;

	for (; i + 2 <= m; i += 2) {
		s0 += lut[256 * i + codes[i]];
		s1 += lut[256 * (i + 1) + codes[i + 1]];
	}
	for (; i < m; i++)
		s0 += lut[256 * i + codes[i]];
	return s0 + s1;
}

static const kern_ops scalar_ops = {
	.level = KERN_SCALAR,
	.dist = {
		[KERN_L2SQ] = { l2sq_f32, l2sq_f16, l2sq_u8 },
		[KERN_DOT] = { dot_f32, dot_f16, dot_u8 },
		[KERN_L1] = { l1_f32, l1_f16, l1_u8 },
		[KERN_COS] = { cos_f32, cos_f16, cos_u8 },
	},
	.batch = { l2sq_batch, dot_batch, l1_batch },
	.u8 = { l2sq_codes, dot_codes, l1_codes },
	.hamming = hamming_words,
	.lut = lut_sum,
	.extras = "",
};

/* ===== Run-time choice ===== */

static kern_ops simd_ops[KERN_LEVEL_COUNT]; /* filled once by init_tables */
static int simd_ok[KERN_LEVEL_COUNT];        /* CPU runs the level */
static kern_level best_level;                /* after VECDB_SIMD */
static pthread_once_t tables_once = PTHREAD_ONCE_INIT;

/* The level VECDB_SIMD asks for, or KERN_LEVEL_COUNT when unset. */
static kern_level
env_level(void)
{
	const char *v = getenv("VECDB_SIMD");

	if (v == NULL)
		return KERN_LEVEL_COUNT;
	for (int l = 0; l < KERN_LEVEL_COUNT; l++)
		if (strcmp(v, kern_level_name((kern_level) l)) == 0)
			return (kern_level) l;
	return KERN_LEVEL_COUNT;
}

#if defined(__x86_64__)
/*
 * F16C from CPUID leaf 1 (ECX bit 29): clang before 16 does not know the
 * "f16c" of __builtin_cpu_supports, and the fuzz build uses Debian 12's
 * clang 14.
 */
static int
cpu_has_f16c(void)
{
	unsigned int a, b, c, d;

	return __get_cpuid(1, &a, &b, &c, &d) && (c & bit_F16C) != 0;
}
#endif

/* Code kernels a level's fill left unset take those of the level below
 * (from). */
static void
kern_fill_codes_default(kern_ops *k, const kern_ops *from)
{
	for (int op = 0; op < KERN_COS; op++)
		if (k->u8[op] == NULL)
			k->u8[op] = from->u8[op];
	if (k->hamming == NULL)
		k->hamming = from->hamming;
	if (k->lut == NULL)
		k->lut = from->lut;
	if (k->extras == NULL)
		k->extras = "";
}

/* Probe the CPU and fill the SIMD tables (pthread_once). */
static void
init_tables(void)
{
	simd_ok[KERN_SCALAR] = 1;
#if defined(__x86_64__)
	__builtin_cpu_init();
	if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") &&
	    cpu_has_f16c()) {
		kern_fill_avx2(&simd_ops[KERN_AVX2]);
		kern_fill_codes_default(&simd_ops[KERN_AVX2], &scalar_ops);
		simd_ok[KERN_AVX2] = 1;
		if (__builtin_cpu_supports("avx512f") &&
		    __builtin_cpu_supports("avx512bw") &&
		    __builtin_cpu_supports("avx512vl") &&
		    __builtin_cpu_supports("avx512dq")) {
			kern_fill_avx512(&simd_ops[KERN_AVX512]);
			kern_fill_codes_default(&simd_ops[KERN_AVX512],
			    &simd_ops[KERN_AVX2]);
			simd_ok[KERN_AVX512] = 1;
		}
	}
#endif
	best_level = KERN_SCALAR;
	for (int l = KERN_LEVEL_COUNT - 1; l > 0; l--) {
		if (simd_ok[l]) {
			best_level = (kern_level) l;
			break;
		}
	}
	kern_level want = env_level();
	if (want < best_level)
		best_level = want;
}

const kern_ops *
kern_ops_get(kern_level level)
{
	if ((int) level < 0 || level >= KERN_LEVEL_COUNT)
		return NULL;
	pthread_once(&tables_once, init_tables);
	if (level == KERN_SCALAR)
		return &scalar_ops;
	return simd_ok[level] ? &simd_ops[level] : NULL;
}

const kern_ops *
kern_ops_best(void)
{
	pthread_once(&tables_once, init_tables);
	return kern_ops_get(best_level);
}

const char *
kern_level_name(kern_level level)
{
	static const char *names[KERN_LEVEL_COUNT] = { "scalar", "avx2",
		"avx512" };

	return (int) level >= 0 && level < KERN_LEVEL_COUNT ? names[level] :
							       "?";
}

float
kern_distance(const kern_ops *k, vecdb_metric metric, int vtype,
    const float *q, const void *x, size_t dim)
{
	switch (metric) {
	case VECDB_COSINE:
		return k->dist[KERN_COS][vtype](q, x, dim);
	case VECDB_EUCLIDEAN:
		return sqrtf(k->dist[KERN_L2SQ][vtype](q, x, dim));
	case VECDB_DOT:
		return -k->dist[KERN_DOT][vtype](q, x, dim);
	default:
		return k->dist[KERN_L1][vtype](q, x, dim);
	}
}

void
kern_normalize(float *v, size_t dim)
{
	double s = 0;

	for (size_t i = 0; i < dim; i++)
		s += (double) v[i] * v[i];
	if (s == 0)
		return;
	float inv = (float) (1.0 / sqrt(s));
	for (size_t i = 0; i < dim; i++)
		v[i] *= inv;
}
