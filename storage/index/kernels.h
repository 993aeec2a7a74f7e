/*
 * kernels.h: distance kernels for the HNSW index and exact search.
 *
 * Every kernel compares a float32 query q with one stored vector x of the
 * same dimension; x is float32, float16 (IEEE half, as vec_f32_to_f16
 * writes it) or uint8. Four primitive operations cover the four metrics:
 *
 *	KERN_L2SQ  sum (q-x)^2            euclidean = sqrt(L2SQ)
 *	KERN_DOT   sum q*x                dot = -DOT; cosine of unit vectors
 *	                                   = 1 - DOT (the index normalises at
 *	                                   insert, so it only needs DOT)
 *	KERN_L1    sum |q-x|              manhattan
 *	KERN_COS   1 - q.x/(|q||x|)       cosine of raw vectors (a zero
 *	                                   vector gives 1, as vec_distance)
 *
 * Each operation exists as a portable scalar version and, where the CPU
 * has them, AVX2 (+FMA, F16C) and AVX-512 (F, BW, VL, DQ) versions; the
 * scalar one is the reference the tests compare the others with. The
 * level is picked once at run time from CPUID (__builtin_cpu_supports);
 * VECDB_SIMD=scalar|avx2|avx512 forces a lower one for tests and
 * benchmarks.
 *
 * Self-contained: libc only. Kernels are pure functions, safe from any
 * thread; the tables are static and never freed.
 */
#ifndef KERNELS_H
#define KERNELS_H

#include <stddef.h>
#include <stdint.h>

#include "vecdb.h"

typedef enum kern_level {
	KERN_SCALAR = 0,   /* portable C, the reference */
	KERN_AVX2,         /* AVX2 + FMA + F16C */
	KERN_AVX512,       /* AVX-512 F/BW/VL/DQ + F16C */
	KERN_LEVEL_COUNT
} kern_level;

typedef enum kern_op {
	KERN_L2SQ = 0,     /* squared euclidean */
	KERN_DOT,          /* inner product (not negated) */
	KERN_L1,           /* sum of absolute differences */
	KERN_COS,          /* 1 - cosine similarity */
	KERN_OP_COUNT
} kern_op;

/* Number of stored vector types: indexed by vecdb_vtype. */
#define KERN_TYPE_COUNT 3

/* op(q, x) over dim components; x is float, uint16_t (half) or uint8_t. */
typedef float (*kern_dist_fn)(const float *q, const void *x, size_t dim);

/*
 * out[i] = op(q, base + ids[i] * stride) for i < n, over float32 rows
 * (stride in floats). One call per neighbour list lets the kernel prefetch
 * the next row while it computes the current one, and saves the index an
 * indirect call per distance.
 */
typedef void (*kern_batch_fn)(const float *q, const float *base,
    size_t stride, size_t dim, const uint32_t *ids, size_t n, float *out);

/*
 * Kernels over quantization codes (quant.c), all exact integer sums or
 * sums of table entries:
 *
 *	u8[KERN_L2SQ](a, b, n)  sum (a[i]-b[i])^2     scalar quantization:
 *	u8[KERN_DOT](a, b, n)   sum a[i]*b[i]         one byte a component
 *	u8[KERN_L1](a, b, n)    sum |a[i]-b[i]|
 *	hamming(a, b, w)        popcount(a ^ b) over w 64-bit words (binary)
 *	lut(t, c, m)            sum t[256*s + c[s]] for s < m (product:
 *	                        a per-query table of 256 floats a segment)
 *
 * n <= VECDB_DIM_MAX, so the u8 sums fit 32 bits (65025 * 65536 < 2^32).
 * The integer kernels of every level return the same value; lut's may
 * differ from the scalar one by float rounding (another summation order).
 */
typedef uint32_t (*kern_u8_fn)(const uint8_t *a, const uint8_t *b,
    size_t n);
typedef uint32_t (*kern_hamming_fn)(const uint64_t *a, const uint64_t *b,
    size_t words);
typedef float (*kern_lut_fn)(const float *lut, const uint8_t *codes,
    size_t m);

typedef struct kern_ops {
	kern_level level;                             /* what this table is */
	kern_dist_fn dist[KERN_OP_COUNT][KERN_TYPE_COUNT]; /* [op][vtype] */
	kern_batch_fn batch[KERN_COS];                /* L2SQ, DOT, L1; f32 */
	kern_u8_fn u8[KERN_COS];                      /* L2SQ, DOT, L1 */
	kern_hamming_fn hamming;
	kern_lut_fn lut;
	const char *extras;   /* optional instructions the code kernels of
				 this level use ("vnni vpopcntdq", "popcnt");
				 "" for none */
} kern_ops;

/**
 * The table of one level.
 * @return the table, or NULL when this CPU (or this build) lacks the
 *	level. Static: never freed.
 */
const kern_ops *kern_ops_get(kern_level level);

/**
 * The best table this CPU runs, or the level VECDB_SIMD names if that is
 * lower (an unknown value or a level the CPU lacks is ignored: the best
 * available level is used). Read once per process.
 * @return a static table; never NULL.
 */
const kern_ops *kern_ops_best(void);

/** "scalar", "avx2" or "avx512". */
const char *kern_level_name(kern_level level);

/**
 * The distance of @p metric between float32 query @p q and stored vector
 * @p x of type @p vtype, as vec_distance defines it (smaller is closer).
 */
float kern_distance(const kern_ops *k, vecdb_metric metric, int vtype,
    const float *q, const void *x, size_t dim);

/** Scale @p v to unit length in place; a zero vector stays zero. */
void kern_normalize(float *v, size_t dim);

/** IEEE half to float (same results as vec_f16_to_f32). */
static inline float
kern_f16_to_f32(uint16_t h)
{
	union { uint32_t u; float f; } o, magic = { 113u << 23 };
	uint32_t shifted = (uint32_t) (h & 0x7fff) << 13;
	uint32_t exp = shifted & 0x0f800000u;

	o.u = shifted + ((127u - 15u) << 23);
	if (exp == 0x0f800000u) {          /* inf / NaN */
		o.u += (128u - 16u) << 23;
	} else if (exp == 0) {             /* zero / subnormal */
		o.u += 1u << 23;
		o.f -= magic.f;
	}
	o.u |= (uint32_t) (h & 0x8000) << 16;
	return o.f;
}

/* ===== Per-level tables (kernels_avx2.c, kernels_avx512.c) ===== */

/* Fill @p k with the level's kernels; defined only in builds that
 * compile the level (x86-64). */
void kern_fill_avx2(kern_ops *k);
void kern_fill_avx512(kern_ops *k);

#endif /* KERNELS_H */
