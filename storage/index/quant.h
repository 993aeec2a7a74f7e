/*
 * quant.h: vector quantizers for the HNSW index: scalar (a byte a
 * component), binary (a bit a component) and product (a byte a segment).
 *
 * A quantizer is trained once on a sample of the vectors (as the index
 * stores them: unit length for cosine), then turns vectors into codes of
 * quant_code_size() bytes and queries into a prepared form of
 * quant_query_size() bytes, and measures distances between them with the
 * code kernels of kernels.h. Every distance is the index's internal one
 * ("smaller is closer": squared L2, L1, or -dot for dot and cosine),
 * approximated:
 *
 *	scalar   x ~ lo + alpha * c, c in 0..255, one range [lo, hi] for
 *	         all components (the quantile's share of the sample's values
 *	         fall in it, the rest are clipped); queries are coded the
 *	         same way and distances taken between codes (L2SQ, DOT, L1
 *	         over bytes). A dot code also stores sum(c), for the
 *	         lo terms.
 *	binary   bit i = x_i > centre_i (the sample's mean of component i);
 *	         a bit decodes to the mean of the sample's values on its
 *	         side. A query is not coded: its weights are kept as 4-bit
 *	         planes, and q . x is four Hamming kernels against the
 *	         code's bits (see prepare_binary); cosine divides by the
 *	         decoded vector's norm, kept in the code. Cosine and dot.
 *	product  the components cut into S segments of ceil or floor(dim/S);
 *	         a byte a segment names one of 256 centroids (k-means on the
 *	         sample). Queries are tables of 256 partial distances a
 *	         segment (asymmetric: the query is not coded).
 *
 * Between two codes (an index's neighbour selection), quant_dist_codes
 * compares codes directly, or, for product, the decoded vectors.
 *
 * Self-contained: libc, common/vdb.h, kernels.h. A trained quantizer is
 * immutable and safe to share between threads.
 */
#ifndef QUANT_H
#define QUANT_H

#include <stddef.h>
#include <stdint.h>

#include "kernels.h"
#include "vecdb.h"

typedef struct quant quant;

#define QUANT_TRAIN_MAX 16384  /* sample vectors training looks at */
#define QUANT_KMEANS_ITERS 12  /* Lloyd iterations a product segment */

/**
 * Train a quantizer.
 * @param[in] qc type (not NONE) and its settings; product segments 0 mean
 *	ceil(dim / 8).
 * @param[in] sample n vectors of dim floats, finite; at most
 *	QUANT_TRAIN_MAX of them are used (spread evenly). n >= 1.
 * @param[in] seed of the k-means initialisation.
 * @return VECDB_OK, VECDB_EINVAL (binary for euclidean or manhattan,
 *	segments above dim, bits other than 8, n 0), VECDB_ENOMEM.
 */
int quant_train(const vecdb_quant_config *qc, vecdb_metric metric,
    uint32_t dim, const float *sample, size_t n, uint64_t seed,
    quant **out);

void quant_free(quant *q);

/** What the quantizer is (type and settings as trained). */
void quant_config_get(const quant *q, vecdb_quant_config *out);

/** Bytes of a vector's code. */
size_t quant_code_size(const quant *q);

/** Bytes of a prepared query. */
size_t quant_query_size(const quant *q);

/** Bytes the quantizer's tables take (ranges, centres, codebooks). */
size_t quant_memory(const quant *q);

/** Code a vector (dim floats) into code_size bytes. */
void quant_encode(const quant *q, const float *v, uint8_t *code);

/** Decode a code to dim floats (approximately the vector coded). */
void quant_decode(const quant *q, const uint8_t *code, float *out);

/** Prepare a query (dim floats) into query_size bytes (aligned to 16). */
void quant_prepare(const quant *q, const float *v, void *qbuf);

/** Internal distance from a prepared query to a code. */
float quant_dist(const quant *q, const void *qbuf, const uint8_t *code);

/*
 * Internal distances from a prepared query to the codes at base + ids[i] *
 * stride, i < n, into out (prefetching the next code).
 */
void quant_dist_batch(const quant *q, const void *qbuf,
    const uint8_t *base, size_t stride, const uint32_t *ids, size_t n,
    float *out);

/**
 * Internal distance between two codes.
 * @param tmp 2 * dim floats of scratch (product decodes into it).
 */
float quant_dist_codes(const quant *q, const uint8_t *a, const uint8_t *b,
    float *tmp);

/**
 * The quantizer's tables as bytes (for a checkpoint): a malloc'ed
 * buffer the caller frees with vdb_free.
 */
int quant_serialize(const quant *q, uint8_t **buf, size_t *len);

/**
 * A quantizer from quant_serialize's bytes; nothing in them is trusted.
 * @return VECDB_OK, VECDB_ECORRUPT (any damage, or a metric or dim other
 *	than the given ones), VECDB_ENOMEM.
 */
int quant_deserialize(const uint8_t *buf, size_t len, vecdb_metric metric,
    uint32_t dim, quant **out);

#endif /* QUANT_H */
