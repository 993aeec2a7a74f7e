/*
 * kernels_avx512.c: AVX-512 (F, BW, VL, DQ) + F16C kernels. Compiled with
 * the AVX-512 flags for this file only; called only after kernels.c saw
 * the CPU flags.
 *
 * Same shape as the AVX2 file: four accumulators of 16 lanes (64
 * components an iteration); the tail is one masked load, which AVX-512
 * has for every element width.
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
	};
}
#endif /* __x86_64__ */
