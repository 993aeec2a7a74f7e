/*
 * kernels_avx2.c: AVX2 + FMA + F16C kernels. Compiled with -mavx2 -mfma
 * -mf16c for this file only; called only after kernels.c saw the CPU
 * flags.
 *
 * Four independent accumulators over 32 components an iteration: one FMA
 * chain has a 4-cycle latency and two FMA ports, so a single accumulator
 * runs at an eighth of the possible rate on data in cache. A tail of
 * fewer than 8 components goes through masked loads (float32) or a
 * zero-padded copy (half, uint8), never a scalar loop.
 *
 * The code kernels at the end (quantization) are exact integer sums,
 * whose short tails are scalar, a POPCNT Hamming distance (the one
 * function that needs more than the file's flags, marked with its
 * target) and the product-quantization table lookup.
 */
#if defined(__x86_64__)
#include <immintrin.h>
#include <string.h>

#include "kernels.h"

#define AI static inline __attribute__((always_inline))

/* Sum of the 8 lanes. */
AI float
hsum(__m256 v)
{
	__m128 s = _mm_add_ps(_mm256_castps256_ps128(v),
	    _mm256_extractf128_ps(v, 1));

	s = _mm_add_ps(s, _mm_movehl_ps(s, s));
	s = _mm_add_ss(s, _mm_movehdup_ps(s));
	return _mm_cvtss_f32(s);
}

/* Mask of the first r (< 8) lanes. */
AI __m256i
tail_mask(size_t r)
{
	static const int32_t m[16] = { -1, -1, -1, -1, -1, -1, -1, -1, 0, 0,
		0, 0, 0, 0, 0, 0 };

	return _mm256_loadu_si256((const __m256i *) (m + 8 - r));
}

/* 8 components of each stored type, as floats. */
AI __m256
ld8_f32(const void *x, size_t i)
{
	return _mm256_loadu_ps((const float *) x + i);
}

AI __m256
ld8_f16(const void *x, size_t i)
{
	return _mm256_cvtph_ps(
	    _mm_loadu_si128((const __m128i *) ((const uint16_t *) x + i)));
}

AI __m256
ld8_u8(const void *x, size_t i)
{
	__m128i b = _mm_loadl_epi64((const __m128i *) ((const uint8_t *) x + i));

	return _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(b));
}

/* The last r (< 8) components, zero-padded. */
AI __m256
tail_f32(const void *x, size_t i, size_t r)
{
	return _mm256_maskload_ps((const float *) x + i, tail_mask(r));
}

AI __m256
tail_f16(const void *x, size_t i, size_t r)
{
	uint16_t b[8] = { 0 };

	memcpy(b, (const uint16_t *) x + i, r * 2);
	return ld8_f16(b, 0);
}

AI __m256
tail_u8(const void *x, size_t i, size_t r)
{
	uint8_t b[8] = { 0 };

	memcpy(b, (const uint8_t *) x + i, r);
	return ld8_u8(b, 0);
}

/* One step of each reduction: acc += f(q, x). */
AI __m256
step_l2(__m256 acc, __m256 q, __m256 x)
{
	__m256 d = _mm256_sub_ps(q, x);

	return _mm256_fmadd_ps(d, d, acc);
}

AI __m256
step_dot(__m256 acc, __m256 q, __m256 x)
{
	return _mm256_fmadd_ps(q, x, acc);
}

AI __m256
step_l1(__m256 acc, __m256 q, __m256 x)
{
	return _mm256_add_ps(acc,
	    _mm256_andnot_ps(_mm256_set1_ps(-0.0f), _mm256_sub_ps(q, x)));
}

/*
 * A reduction op over stored type T. pf, when not NULL, is the next row
 * of a batch: its lines are prefetched at the pace this row is read, so
 * that it arrives from memory while this one is being computed.
 */
#define REDUCE(OP, T)                                                       \
	AI float OP##_##T##_pf(const float *q, const void *x, size_t dim,  \
	    const float *pf)                                                \
	{                                                                   \
		__m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0; \
		size_t i = 0;                                               \
		for (; i + 32 <= dim; i += 32) {                            \
			if (pf != NULL) {                                   \
				_mm_prefetch((const char *) (pf + i),       \
				    _MM_HINT_T0);                           \
				_mm_prefetch((const char *) (pf + i + 16),  \
				    _MM_HINT_T0);                           \
			}                                                   \
			a0 = step_##OP(a0, _mm256_loadu_ps(q + i),          \
			    ld8_##T(x, i));                                 \
			a1 = step_##OP(a1, _mm256_loadu_ps(q + i + 8),      \
			    ld8_##T(x, i + 8));                             \
			a2 = step_##OP(a2, _mm256_loadu_ps(q + i + 16),     \
			    ld8_##T(x, i + 16));                            \
			a3 = step_##OP(a3, _mm256_loadu_ps(q + i + 24),     \
			    ld8_##T(x, i + 24));                            \
		}                                                           \
		if (pf != NULL && i < dim)                                  \
			_mm_prefetch((const char *) (pf + i), _MM_HINT_T0); \
		for (; i + 8 <= dim; i += 8)                                \
			a0 = step_##OP(a0, _mm256_loadu_ps(q + i),          \
			    ld8_##T(x, i));                                 \
		if (i < dim) {                                              \
			size_t r = dim - i;                                 \
			a1 = step_##OP(a1,                                  \
			    _mm256_maskload_ps(q + i, tail_mask(r)),        \
			    tail_##T(x, i, r));                             \
		}                                                           \
		return hsum(_mm256_add_ps(_mm256_add_ps(a0, a1),            \
		    _mm256_add_ps(a2, a3)));                                \
	}                                                                   \
	static float OP##_##T(const float *q, const void *x, size_t dim)   \
	{                                                                   \
		return OP##_##T##_pf(q, x, dim, NULL);                      \
	}

REDUCE(l2, f32)
REDUCE(l2, f16)
REDUCE(l2, u8)
REDUCE(dot, f32)
REDUCE(dot, f16)
REDUCE(dot, u8)
REDUCE(l1, f32)
REDUCE(l1, f16)
REDUCE(l1, u8)

/* 1 - cosine over stored type T: dot and both norms in one pass. */
#define COSINE(T)                                                           \
	static float cos_##T(const float *q, const void *x, size_t dim)    \
	{                                                                   \
		__m256 d = _mm256_setzero_ps(), nq = d, nx = d;             \
		size_t i = 0;                                               \
		for (; i + 8 <= dim; i += 8) {                              \
			__m256 a = _mm256_loadu_ps(q + i), b = ld8_##T(x, i); \
			d = _mm256_fmadd_ps(a, b, d);                       \
			nq = _mm256_fmadd_ps(a, a, nq);                     \
			nx = _mm256_fmadd_ps(b, b, nx);                     \
		}                                                           \
		if (i < dim) {                                              \
			size_t r = dim - i;                                 \
			__m256 a = _mm256_maskload_ps(q + i, tail_mask(r)); \
			__m256 b = tail_##T(x, i, r);                       \
			d = _mm256_fmadd_ps(a, b, d);                       \
			nq = _mm256_fmadd_ps(a, a, nq);                     \
			nx = _mm256_fmadd_ps(b, b, nx);                     \
		}                                                           \
		float sq = hsum(nq), sx = hsum(nx);                         \
		if (sq == 0 || sx == 0)                                     \
			return 1.0f;                                        \
		return 1.0f - hsum(d) / (__builtin_sqrtf(sq) *              \
		    __builtin_sqrtf(sx));                                   \
	}

COSINE(f32)
COSINE(f16)
COSINE(u8)

/* Batch over float32 rows, each row prefetching the next. */
#define BATCH(OP)                                                          \
	static void OP##_batch(const float *q, const float *base,          \
	    size_t stride, size_t dim, const uint32_t *ids, size_t n,      \
	    float *out)                                                    \
	{                                                                  \
		for (size_t i = 0; i < n; i++) {                           \
			const float *x = base + (size_t) ids[i] * stride;  \
			const float *nx = i + 1 < n ?                      \
			    base + (size_t) ids[i + 1] * stride : x;       \
			out[i] = OP##_f32_pf(q, x, dim, nx);               \
		}                                                          \
	}

BATCH(l2)
BATCH(dot)
BATCH(l1)

/* ===== Code kernels (quantization) ===== */

/*
 * The u8 sums are exact, so any order of additions gives the scalar
 * value: 32 codes an iteration, one 16-code step, then at most 15 codes
 * one by one (an integer tail needs no padding to stay exact). The
 * 16-bit lanes hold a difference (-255..255) or a code (0..255), and
 * _mm256_madd_epi16 adds pairs of their products (<= 2 * 65025) into
 * 32-bit lanes, which wrap as the scalar uint32 sum does.
 */

/* Sum of the 8 32-bit lanes, modulo 2^32. */
AI uint32_t
hsum_epi32(__m256i v)
{
	__m128i s = _mm_add_epi32(_mm256_castsi256_si128(v),
	    _mm256_extracti128_si256(v, 1));

	s = _mm_add_epi32(s, _mm_unpackhi_epi64(s, s));
	s = _mm_add_epi32(s, _mm_shuffle_epi32(s, _MM_SHUFFLE(1, 1, 1, 1)));
	return (uint32_t) _mm_cvtsi128_si32(s);
}

/* 16 codes of a and b at i, widened to 16 bits. */
AI __m256i
wide16(const uint8_t *p, size_t i)
{
	return _mm256_cvtepu8_epi16(_mm_loadu_si128((const __m128i *) (p + i)));
}

/* Sums over 16 codes, as 8 32-bit lanes. */
AI __m256i
l2sq16(const uint8_t *a, const uint8_t *b, size_t i)
{
	__m256i d = _mm256_sub_epi16(wide16(a, i), wide16(b, i));

	return _mm256_madd_epi16(d, d);
}

AI __m256i
dot16(const uint8_t *a, const uint8_t *b, size_t i)
{
	return _mm256_madd_epi16(wide16(a, i), wide16(b, i));
}

#define CODES_MADD(OP, SCALAR)                                              \
	static uint32_t OP##_codes(const uint8_t *a, const uint8_t *b,      \
	    size_t n)                                                       \
	{                                                                   \
		__m256i s0 = _mm256_setzero_si256(), s1 = s0;               \
		size_t i = 0;                                               \
		for (; i + 32 <= n; i += 32) {                              \
			s0 = _mm256_add_epi32(s0, OP##16(a, b, i));         \
			s1 = _mm256_add_epi32(s1, OP##16(a, b, i + 16));    \
		}                                                           \
		if (i + 16 <= n) {                                          \
			s0 = _mm256_add_epi32(s0, OP##16(a, b, i));         \
			i += 16;                                            \
		}                                                           \
		uint32_t s = hsum_epi32(_mm256_add_epi32(s0, s1));          \
		for (; i < n; i++)                                          \
			s += SCALAR;                                        \
		return s;                                                   \
	}

CODES_MADD(l2sq, (uint32_t) (((int) a[i] - b[i]) * ((int) a[i] - b[i])))
CODES_MADD(dot, (uint32_t) a[i] * b[i])

/* Sum |a-b|: _mm256_sad_epu8 adds 8 absolute differences a 64-bit lane. */
static uint32_t
l1_codes(const uint8_t *a, const uint8_t *b, size_t n)
{
	__m256i s0 = _mm256_setzero_si256(), s1 = s0;
	__m128i t = _mm_setzero_si128();
	size_t i = 0;

	for (; i + 64 <= n; i += 64) {
		s0 = _mm256_add_epi64(s0, _mm256_sad_epu8(
		    _mm256_loadu_si256((const __m256i *) (a + i)),
		    _mm256_loadu_si256((const __m256i *) (b + i))));
		s1 = _mm256_add_epi64(s1, _mm256_sad_epu8(
		    _mm256_loadu_si256((const __m256i *) (a + i + 32)),
		    _mm256_loadu_si256((const __m256i *) (b + i + 32))));
	}
	if (i + 32 <= n) {
		s0 = _mm256_add_epi64(s0, _mm256_sad_epu8(
		    _mm256_loadu_si256((const __m256i *) (a + i)),
		    _mm256_loadu_si256((const __m256i *) (b + i))));
		i += 32;
	}
	if (i + 16 <= n) {
		t = _mm_sad_epu8(_mm_loadu_si128((const __m128i *) (a + i)),
		    _mm_loadu_si128((const __m128i *) (b + i)));
		i += 16;
	}
	s0 = _mm256_add_epi64(s0, s1);
	t = _mm_add_epi64(t, _mm_add_epi64(_mm256_castsi256_si128(s0),
	    _mm256_extracti128_si256(s0, 1)));
	uint32_t s = (uint32_t) (_mm_cvtsi128_si64(t) +
	    _mm_extract_epi64(t, 1));
	for (; i < n; i++)
		s += (uint32_t) (a[i] > b[i] ? a[i] - b[i] : b[i] - a[i]);
	return s;
}

/*
 * POPCNT, four independent sums. Every AVX2 CPU has the instruction,
 * but the fill still checks its CPUID bit: the attribute says what this
 * function needs, whatever the file's flags imply.
 */
__attribute__((target("popcnt"))) static uint32_t
hamming_popcnt(const uint64_t *a, const uint64_t *b, size_t words)
{
	uint64_t s0 = 0, s1 = 0, s2 = 0, s3 = 0;
	size_t i = 0;

	for (; i + 4 <= words; i += 4) {
		s0 += (uint64_t) _mm_popcnt_u64(a[i] ^ b[i]);
		s1 += (uint64_t) _mm_popcnt_u64(a[i + 1] ^ b[i + 1]);
		s2 += (uint64_t) _mm_popcnt_u64(a[i + 2] ^ b[i + 2]);
		s3 += (uint64_t) _mm_popcnt_u64(a[i + 3] ^ b[i + 3]);
	}
	for (; i < words; i++)
		s0 += (uint64_t) _mm_popcnt_u64(a[i] ^ b[i]);
	return (uint32_t) (s0 + s1 + s2 + s3);
}

/*
 * Table lookups: four scalar sums. Measured against _mm256_i32gather_ps
 * (8 segments a gather, two accumulators) on the AMD EPYC this was
 * written on, streaming 20000 code rows through one table: m = 98 0.46
 * vs 0.57 ns a segment, m = 392 0.64 vs 0.72; the gather loses at both.
 */
static float
lut_sum4(const float *lut, const uint8_t *codes, size_t m)
{
	float s0 = 0, s1 = 0, s2 = 0, s3 = 0;
	size_t i = 0;

	for (; i + 4 <= m; i += 4) {
		const float *t = lut + 256 * i;
		s0 += t[codes[i]];
		s1 += t[256 + codes[i + 1]];
		s2 += t[512 + codes[i + 2]];
		s3 += t[768 + codes[i + 3]];
	}
	for (; i < m; i++)
		s0 += lut[256 * i + codes[i]];
	return (s0 + s1) + (s2 + s3);
}

void
kern_fill_avx2(kern_ops *k)
{
	*k = (kern_ops) {
		.level = KERN_AVX2,
		.dist = {
			[KERN_L2SQ] = { l2_f32, l2_f16, l2_u8 },
			[KERN_DOT] = { dot_f32, dot_f16, dot_u8 },
			[KERN_L1] = { l1_f32, l1_f16, l1_u8 },
			[KERN_COS] = { cos_f32, cos_f16, cos_u8 },
		},
		.batch = { l2_batch, dot_batch, l1_batch },
		.u8 = { l2sq_codes, dot_codes, l1_codes },
		.lut = lut_sum4,
		.extras = "",
	};
	/* Without POPCNT, hamming stays NULL: kernels.c then fills in the
	 * scalar one. */
	if (__builtin_cpu_supports("popcnt")) {
		k->hamming = hamming_popcnt;
		k->extras = "popcnt";
	}
}
#endif /* __x86_64__ */
