/*
 * kernels_avx512.c: AVX-512 (F, BW, VL, DQ) + F16C kernels. Compiled with
 * the AVX-512 flags for this file only; called only after kernels.c saw
 * the CPU flags.
 *
 * Same shape as the AVX2 file: four accumulators of 16 lanes (64
 * components an iteration); the tail is one masked load, which AVX-512
 * has for every element width.
 *
 * The code kernels at the end (quantization) may use two optional
 * extensions the level does not require, AVX512_VNNI and
 * AVX512_VPOPCNTDQ: the functions that do carry a target attribute for
 * them, and kern_fill_avx512 puts them in the table only after
 * __builtin_cpu_supports saw the CPU flag. This was written on a CPU
 * without AVX-512: kernel_test compares it with the scalar reference
 * wherever it does run.
 */
#if defined(__x86_64__)
#include <immintrin.h>

#include "kernels.h"

#define AI static inline __attribute__((always_inline))

/* Mask of the first r (< 16) lanes. */
AI __mmask16
tail_mask(size_t r)
{
	return (__mmask16) ((1u << r) - 1);
}

/* 16 components of each stored type, as floats. */
AI __m512
ld16_f32(const void *x, size_t i)
{
	return _mm512_loadu_ps((const float *) x + i);
}

AI __m512
ld16_f16(const void *x, size_t i)
{
	return _mm512_cvtph_ps(_mm256_loadu_si256(
	    (const __m256i *) ((const uint16_t *) x + i)));
}

AI __m512
ld16_u8(const void *x, size_t i)
{
	return _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(
	    _mm_loadu_si128((const __m128i *) ((const uint8_t *) x + i))));
}

/* The last r (< 16) components, zero-padded. */
AI __m512
tail_f32(const void *x, size_t i, size_t r)
{
	return _mm512_maskz_loadu_ps(tail_mask(r), (const float *) x + i);
}

AI __m512
tail_f16(const void *x, size_t i, size_t r)
{
	return _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(tail_mask(r),
	    (const uint16_t *) x + i));
}

AI __m512
tail_u8(const void *x, size_t i, size_t r)
{
	return _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(
	    _mm_maskz_loadu_epi8(tail_mask(r), (const uint8_t *) x + i)));
}

/* One step of each reduction: acc += f(q, x). */
AI __m512
step_l2(__m512 acc, __m512 q, __m512 x)
{
	__m512 d = _mm512_sub_ps(q, x);

	return _mm512_fmadd_ps(d, d, acc);
}

AI __m512
step_dot(__m512 acc, __m512 q, __m512 x)
{
	return _mm512_fmadd_ps(q, x, acc);
}

AI __m512
step_l1(__m512 acc, __m512 q, __m512 x)
{
	return _mm512_add_ps(acc, _mm512_abs_ps(_mm512_sub_ps(q, x)));
}

/* A reduction op over stored type T; pf as in kernels_avx2.c. */
#define REDUCE(OP, T)                                                       \
	AI float OP##_##T##_pf(const float *q, const void *x, size_t dim,  \
	    const float *pf)                                                \
	{                                                                   \
		__m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0; \
		size_t i = 0;                                               \
		for (; i + 64 <= dim; i += 64) {                            \
			if (pf != NULL) {                                   \
				for (int l = 0; l < 4; l++)                 \
					_mm_prefetch((const char *) (pf + i + \
					    16 * l), _MM_HINT_T0);          \
			}                                                   \
			a0 = step_##OP(a0, _mm512_loadu_ps(q + i),          \
			    ld16_##T(x, i));                                \
			a1 = step_##OP(a1, _mm512_loadu_ps(q + i + 16),     \
			    ld16_##T(x, i + 16));                           \
			a2 = step_##OP(a2, _mm512_loadu_ps(q + i + 32),     \
			    ld16_##T(x, i + 32));                           \
			a3 = step_##OP(a3, _mm512_loadu_ps(q + i + 48),     \
			    ld16_##T(x, i + 48));                           \
		}                                                           \
		for (; i + 16 <= dim; i += 16) {                            \
			if (pf != NULL)                                     \
				_mm_prefetch((const char *) (pf + i),       \
				    _MM_HINT_T0);                           \
			a0 = step_##OP(a0, _mm512_loadu_ps(q + i),          \
			    ld16_##T(x, i));                                \
		}                                                           \
		if (i < dim) {                                              \
			size_t r = dim - i;                                 \
			a1 = step_##OP(a1,                                  \
			    _mm512_maskz_loadu_ps(tail_mask(r), q + i),     \
			    tail_##T(x, i, r));                             \
		}                                                           \
		return _mm512_reduce_add_ps(_mm512_add_ps(                  \
		    _mm512_add_ps(a0, a1), _mm512_add_ps(a2, a3)));         \
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
		__m512 d = _mm512_setzero_ps(), nq = d, nx = d;             \
		size_t i = 0;                                               \
		for (; i + 16 <= dim; i += 16) {                            \
			__m512 a = _mm512_loadu_ps(q + i);                  \
			__m512 b = ld16_##T(x, i);                          \
			d = _mm512_fmadd_ps(a, b, d);                       \
			nq = _mm512_fmadd_ps(a, a, nq);                     \
			nx = _mm512_fmadd_ps(b, b, nx);                     \
		}                                                           \
		if (i < dim) {                                              \
			size_t r = dim - i;                                 \
			__m512 a = _mm512_maskz_loadu_ps(tail_mask(r), q + i); \
			__m512 b = tail_##T(x, i, r);                       \
			d = _mm512_fmadd_ps(a, b, d);                       \
			nq = _mm512_fmadd_ps(a, a, nq);                     \
			nx = _mm512_fmadd_ps(b, b, nx);                     \
		}                                                           \
		float sq = _mm512_reduce_add_ps(nq);                        \
		float sx = _mm512_reduce_add_ps(nx);                        \
		if (sq == 0 || sx == 0)                                     \
			return 1.0f;                                        \
		return 1.0f - _mm512_reduce_add_ps(d) /                     \
		    (__builtin_sqrtf(sq) * __builtin_sqrtf(sx));            \
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
 * value. 64 codes a step; the last n % 64 go through one masked load
 * (_mm512_maskz_loadu_epi8 zeroes the lanes past n and does not touch
 * their memory), and zero codes in both a and b add nothing to any of
 * the sums. For L2SQ and DOT each half of the 64 codes is widened to
 * 32 16-bit lanes, which hold a difference (-255..255) or a code
 * (0..255); pairs of their products (<= 2 * 65025) are added into 16
 * 32-bit lanes, by _mm512_madd_epi16 + _mm512_add_epi32 or, with
 * AVX512_VNNI, by one _mm512_dpwssd_epi32 (the non-saturating form).
 * The 32-bit lanes wrap as the scalar uint32 sum does.
 */

#define TARGET_VNNI __attribute__((target("avx512vnni")))
#define TARGET_VPOPCNTDQ __attribute__((target("avx512vpopcntdq")))

/* Mask of the first r (< 64) bytes. */
AI __mmask64
tail_mask64(size_t r)
{
	return (__mmask64) ((1ULL << r) - 1);
}

/* The low and the high 32 codes of v, widened to 16 bits. */
AI __m512i
wide_lo(__m512i v)
{
	return _mm512_cvtepu8_epi16(_mm512_castsi512_si256(v));
}

AI __m512i
wide_hi(__m512i v)
{
	return _mm512_cvtepu8_epi16(_mm512_extracti64x4_epi64(v, 1));
}

/*
 * Sum of the 16 32-bit lanes, modulo 2^32, with vector adds only:
 * _mm512_reduce_add_epi32 ends on a signed int addition, which
 * overflows (undefined) once a sum passes 2^31, as an L2SQ of 65536
 * codes can.
 */
AI uint32_t
hsum_epi32(__m512i v)
{
	__m256i s = _mm256_add_epi32(_mm512_castsi512_si256(v),
	    _mm512_extracti64x4_epi64(v, 1));
	__m128i t = _mm_add_epi32(_mm256_castsi256_si128(s),
	    _mm256_extracti128_si256(s, 1));

	t = _mm_add_epi32(t, _mm_unpackhi_epi64(t, t));
	t = _mm_add_epi32(t, _mm_shuffle_epi32(t, _MM_SHUFFLE(1, 1, 1, 1)));
	return (uint32_t) _mm_cvtsi128_si32(t);
}

/* acc + the sums of adjacent pairs of x*y (16-bit lanes to 32-bit). */
AI __m512i
acc_madd(__m512i acc, __m512i x, __m512i y)
{
	return _mm512_add_epi32(acc, _mm512_madd_epi16(x, y));
}

AI TARGET_VNNI __m512i
acc_vnni(__m512i acc, __m512i x, __m512i y)
{
	return _mm512_dpwssd_epi32(acc, x, y);
}

/* One step of 64 codes x of a and y of b, into s0 (low 32) and s1. */
#define STEP_L2SQ(ACC, x, y)                                                \
	do {                                                                \
		__m512i dl = _mm512_sub_epi16(wide_lo(x), wide_lo(y));      \
		__m512i dh = _mm512_sub_epi16(wide_hi(x), wide_hi(y));      \
		s0 = ACC(s0, dl, dl);                                       \
		s1 = ACC(s1, dh, dh);                                       \
	} while (0)

#define STEP_DOT(ACC, x, y)                                                 \
	do {                                                                \
		s0 = ACC(s0, wide_lo(x), wide_lo(y));                       \
		s1 = ACC(s1, wide_hi(x), wide_hi(y));                       \
	} while (0)

/* OP_codes_SUF: the u8 kernel OP with the accumulate ACC. */
#define CODES_WIDE(OP, STEP, SUF, ACC, ATTR)                                \
	ATTR static uint32_t OP##_codes_##SUF(const uint8_t *a,             \
	    const uint8_t *b, size_t n)                                     \
	{                                                                   \
		__m512i s0 = _mm512_setzero_si512(), s1 = s0;               \
		size_t i = 0;                                               \
		for (; i + 64 <= n; i += 64) {                              \
			__m512i x = _mm512_loadu_si512(a + i);              \
			__m512i y = _mm512_loadu_si512(b + i);              \
			STEP(ACC, x, y);                                    \
		}                                                           \
		if (i < n) {                                                \
			__mmask64 m = tail_mask64(n - i);                   \
			__m512i x = _mm512_maskz_loadu_epi8(m, a + i);      \
			__m512i y = _mm512_maskz_loadu_epi8(m, b + i);      \
			STEP(ACC, x, y);                                    \
		}                                                           \
		return hsum_epi32(_mm512_add_epi32(s0, s1));                \
	}

CODES_WIDE(l2sq, STEP_L2SQ, madd, acc_madd, )
CODES_WIDE(dot, STEP_DOT, madd, acc_madd, )
CODES_WIDE(l2sq, STEP_L2SQ, vnni, acc_vnni, TARGET_VNNI)
CODES_WIDE(dot, STEP_DOT, vnni, acc_vnni, TARGET_VNNI)

/* Sum |a-b|: _mm512_sad_epu8 adds 8 absolute differences a 64-bit lane
 * (VNNI has nothing for it). */
static uint32_t
l1_codes(const uint8_t *a, const uint8_t *b, size_t n)
{
	__m512i s = _mm512_setzero_si512();
	size_t i = 0;

	for (; i + 64 <= n; i += 64)
		s = _mm512_add_epi64(s, _mm512_sad_epu8(
		    _mm512_loadu_si512(a + i), _mm512_loadu_si512(b + i)));
	if (i < n) {
		__mmask64 m = tail_mask64(n - i);
		s = _mm512_add_epi64(s, _mm512_sad_epu8(
		    _mm512_maskz_loadu_epi8(m, a + i),
		    _mm512_maskz_loadu_epi8(m, b + i)));
	}
	return (uint32_t) _mm512_reduce_add_epi64(s);
}

/* AVX512_VPOPCNTDQ: 8 words a step, the tail through a masked load. */
TARGET_VPOPCNTDQ static uint32_t
hamming_vpopcntdq(const uint64_t *a, const uint64_t *b, size_t words)
{
	__m512i s = _mm512_setzero_si512();
	size_t i = 0;

	for (; i + 8 <= words; i += 8)
		s = _mm512_add_epi64(s, _mm512_popcnt_epi64(_mm512_xor_si512(
		    _mm512_loadu_si512(a + i), _mm512_loadu_si512(b + i))));
	if (i < words) {
		__mmask8 m = (__mmask8) ((1u << (words - i)) - 1);
		s = _mm512_add_epi64(s, _mm512_popcnt_epi64(_mm512_xor_si512(
		    _mm512_maskz_loadu_epi64(m, a + i),
		    _mm512_maskz_loadu_epi64(m, b + i))));
	}
	return (uint32_t) _mm512_reduce_add_epi64(s);
}

void
kern_fill_avx512(kern_ops *k)
{
	*k = (kern_ops) {
		.level = KERN_AVX512,
		.dist = {
			[KERN_L2SQ] = { l2_f32, l2_f16, l2_u8 },
			[KERN_DOT] = { dot_f32, dot_f16, dot_u8 },
			[KERN_L1] = { l1_f32, l1_f16, l1_u8 },
			[KERN_COS] = { cos_f32, cos_f16, cos_u8 },
		},
		.batch = { l2_batch, dot_batch, l1_batch },
		.u8 = { l2sq_codes_madd, dot_codes_madd, l1_codes },
	};
	/*
	 * The optional instructions, each checked on its own; extras lists
	 * those the table uses. Without VPOPCNTDQ, hamming stays NULL, and
	 * so does lut (no AVX-512 version has been measured yet): kernels.c
	 * fills them in from the AVX2 table (POPCNT when the CPU has it).
	 */
	int vnni = __builtin_cpu_supports("avx512vnni");
	int vpop = __builtin_cpu_supports("avx512vpopcntdq");
	int pop = __builtin_cpu_supports("popcnt");

	if (vnni) {
		k->u8[KERN_L2SQ] = l2sq_codes_vnni;
		k->u8[KERN_DOT] = dot_codes_vnni;
	}
	if (vpop)
		k->hamming = hamming_vpopcntdq;
	k->extras = vnni ? (vpop ? "vnni vpopcntdq" : pop ? "vnni popcnt" :
	    "vnni") : vpop ? "vpopcntdq" : pop ? "popcnt" : "";
}
#endif /* __x86_64__ */
