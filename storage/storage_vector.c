/*
 * storage_vector.c: vector storage types and the exact distance functions.
 *
 * These are the portable reference kernels. The index (a later module)
 * brings SIMD versions that are tested against these.
 */
#include <math.h>

#include "kernels.h"
#include "storage_impl.h"

#define F16_MAX 65504.0f

size_t
vec_elem_size(vecdb_vtype t)
{
	switch (t) {
	case VECDB_FLOAT16:
		return 2;
	case VECDB_UINT8:
		return 1;
	default:
		return 4;
	}
}

int
vec_validate(const float *v, uint32_t dim, vecdb_vtype t)
{
	for (uint32_t i = 0; i < dim; i++) {
		float x = v[i];

		if (!isfinite(x))
			return vdb_err(VECDB_EINVAL,
			    "vector component %u is not a finite number", i);
		if (t == VECDB_FLOAT16 && fabsf(x) > F16_MAX)
			return vdb_err(VECDB_EINVAL,
			    "vector component %u (%g) is out of float16 range "
			    "(|x| <= 65504)", i, (double) x);
		if (t == VECDB_UINT8 && (x < 0 || x > 255 || x != floorf(x)))
			return vdb_err(VECDB_EINVAL,
			    "vector component %u (%g) is not a uint8 "
			    "(an integer 0..255)", i, (double) x);
	}
	return VECDB_OK;
}

/*
 * IEEE 754 binary32 -> binary16, round to nearest even. Inputs were checked
 * by vec_validate (finite, |x| <= 65504), so no overflow to infinity here.
 */
uint16_t
vec_f32_to_f16(float f)
{
	uint32_t x;
	memcpy(&x, &f, 4);
	uint16_t sign = (uint16_t) ((x >> 16) & 0x8000);
	int32_t exp = (int32_t) ((x >> 23) & 0xff) - 127 + 15;
	uint32_t mant = x & 0x7fffff;

	if (exp >= 31)
		return sign | 0x7bff; /* clamp to the largest finite */
	if (exp <= 0) {
		/* Subnormal half (or zero): shift the implicit bit in. */
		if (exp < -10)
			return sign;
		mant |= 0x800000;
		uint32_t shift = (uint32_t) (14 - exp);
		uint32_t half = mant >> shift;
		uint32_t rem = mant & ((1u << shift) - 1);
		uint32_t mid = 1u << (shift - 1);
		if (rem > mid || (rem == mid && (half & 1)))
			half++;
		return sign | (uint16_t) half;
	}
	uint32_t half = ((uint32_t) exp << 10) | (mant >> 13);
	uint32_t rem = mant & 0x1fff;
	if (rem > 0x1000 || (rem == 0x1000 && (half & 1)))
		half++; /* may carry into the exponent, which is right */
	if (half >= 0x7c00)
		half = 0x7bff;
	return sign | (uint16_t) half;
}

float
vec_f16_to_f32(uint16_t h)
{
	uint32_t sign = (uint32_t) (h & 0x8000) << 16;
	uint32_t exp = (h >> 10) & 0x1f;
	uint32_t mant = h & 0x3ff;
	uint32_t x;
	float f;

	if (exp == 0) {
		/* Zero or subnormal: value is mant * 2^-24. */
		f = (float) mant * 0x1p-24f;
		return sign ? -f : f;
	}
	if (exp == 31)
		x = sign | 0x7f800000 | (mant << 13);
	else
		x = sign | ((exp - 15 + 127) << 23) | (mant << 13);
	memcpy(&f, &x, 4);
	return f;
}

void
vec_encode(const float *v, uint32_t dim, vecdb_vtype t, void *out)
{
	if (t == VECDB_FLOAT16) {
		uint16_t *h = out;
		for (uint32_t i = 0; i < dim; i++) {
			uint16_t x = vec_f32_to_f16(v[i]);
			memcpy(&h[i], &x, 2);
		}
	} else if (t == VECDB_UINT8) {
		uint8_t *u = out;
		for (uint32_t i = 0; i < dim; i++)
			u[i] = (uint8_t) v[i];
	} else {
		memcpy(out, v, (size_t) dim * 4);
	}
}

void
vec_decode(const void *in, uint32_t dim, vecdb_vtype t, float *out)
{
	if (t == VECDB_FLOAT16) {
		const uint8_t *p = in;
		for (uint32_t i = 0; i < dim; i++) {
			uint16_t x;
			memcpy(&x, p + 2 * i, 2);
			out[i] = vec_f16_to_f32(x);
		}
	} else if (t == VECDB_UINT8) {
		const uint8_t *u = in;
		for (uint32_t i = 0; i < dim; i++)
			out[i] = u[i];
	} else {
		memcpy(out, in, (size_t) dim * 4);
	}
}

/* 1 - cos(a, b); a zero vector is orthogonal to everything. */
static float
dist_cosine(const float *a, const float *b, uint32_t dim)
{
	float dot = 0, na = 0, nb = 0;

	for (uint32_t i = 0; i < dim; i++) {
		dot += a[i] * b[i];
		na += a[i] * a[i];
		nb += b[i] * b[i];
	}
	if (na == 0 || nb == 0)
		return 1.0f;
	return 1.0f - dot / (sqrtf(na) * sqrtf(nb));
}

/* sqrt(sum (a-b)^2) */
static float
dist_euclidean(const float *a, const float *b, uint32_t dim)
{
	float s = 0;

	for (uint32_t i = 0; i < dim; i++) {
		float d = a[i] - b[i];
		s += d * d;
	}
	return sqrtf(s);
}

/* -(a . b) */
static float
dist_dot(const float *a, const float *b, uint32_t dim)
{
	float s = 0;

	for (uint32_t i = 0; i < dim; i++)
		s += a[i] * b[i];
	return -s;
}

/* sum |a-b| */
static float
dist_manhattan(const float *a, const float *b, uint32_t dim)
{
	float s = 0;

	for (uint32_t i = 0; i < dim; i++)
		s += fabsf(a[i] - b[i]);
	return s;
}

float
vec_distance(vecdb_metric m, const float *a, const float *b, uint32_t dim)
{
	switch (m) {
	case VECDB_COSINE:
		return dist_cosine(a, b, dim);
	case VECDB_EUCLIDEAN:
		return dist_euclidean(a, b, dim);
	case VECDB_DOT:
		return dist_dot(a, b, dim);
	default:
		return dist_manhattan(a, b, dim);
	}
}

float
storage_distance(vecdb_metric m, const float *a, const float *b, uint32_t dim)
{
	return kern_distance(kern_ops_best(), m, VECDB_FLOAT32, a, b, dim);
}
