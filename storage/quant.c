/*
 * quant.c: scalar, binary and product quantizers (see quant.h).
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "quant.h"
#include "vdb.h"

#define QUANT_MAGIC 0x315a5156u   /* "VQZ1" */
#define SCALAR_VALUES (1u << 20)  /* sample values a range is read from */
#define PQ_TRAIN_MAX 8192         /* sample vectors k-means runs on */
#define PQ_K 256                  /* centroids a segment */

struct quant {
	vecdb_quant type;
	vecdb_metric metric;
	uint32_t dim;
	float quantile;          /* scalar */
	uint32_t segments;       /* product */
	const kern_ops *k;
	kern_op op;              /* the internal distance: L2SQ, DOT, L1 */
	size_t code_size, query_size;

	/* scalar: x ~ lo + alpha * c */
	float lo, alpha;
	size_t sum_off;          /* dot: where the code keeps sum(c) */

	/* binary */
	float *centre;           /* dim */
	uint32_t words;          /* 64-bit words a code */

	/* product: segment s is components off[s] .. off[s+1]; its
	 * codebook is books + PQ_K * off[s], component-major: centroid c's
	 * component d at [d * PQ_K + c], so tables vectorise over c */
	uint32_t *off;           /* segments + 1 */
	float *books;            /* PQ_K * dim */
};

/* ===== Common ===== */

static kern_op
op_of(vecdb_metric m)
{
	return m == VECDB_EUCLIDEAN ? KERN_L2SQ : m == VECDB_MANHATTAN ?
	    KERN_L1 : KERN_DOT;
}

static size_t
align16(size_t n)
{
	return (n + 15) & ~(size_t) 15;
}

/* A quantizer's fixed part and sizes; tables allocated, not filled. */
static int
quant_alloc(vecdb_quant type, vecdb_metric metric, uint32_t dim,
    float quantile, uint32_t segments, quant **out)
{
	quant *q = vdb_calloc(1, sizeof(*q));

	if (q == NULL)
		return VECDB_ENOMEM;
	q->type = type;
	q->metric = metric;
	q->dim = dim;
	q->quantile = quantile;
	q->segments = segments;
	q->k = kern_ops_best();
	q->op = op_of(metric);
	switch (type) {
	case VECDB_QUANT_SCALAR:
		q->code_size = dim;
		if (q->op == KERN_DOT) {
			q->sum_off = (dim + 3) & ~(size_t) 3;
			q->code_size = q->sum_off + 4;
		}
		q->query_size = align16(q->code_size);
		break;
	case VECDB_QUANT_BINARY:
		q->words = (dim + 63) / 64;
		q->code_size = (size_t) q->words * 8;
		q->query_size = q->code_size;
		if ((q->centre = vdb_calloc(dim, sizeof(float))) == NULL)
			goto nomem;
		break;
	default:
		q->code_size = segments;
		q->query_size = (size_t) segments * PQ_K * sizeof(float);
		q->off = vdb_malloc(((size_t) segments + 1) * sizeof(uint32_t));
		q->books = vdb_calloc((size_t) PQ_K * dim, sizeof(float));
		if (q->off == NULL || q->books == NULL)
			goto nomem;
		for (uint32_t s = 0; s <= segments; s++)
			q->off[s] = (uint32_t) ((uint64_t) s * dim / segments);
	}
	*out = q;
	return VECDB_OK;
nomem:
	quant_free(q);
	return VECDB_ENOMEM;
}

void
quant_free(quant *q)
{
	if (q == NULL)
		return;
	vdb_free(q->centre);
	vdb_free(q->off);
	vdb_free(q->books);
	vdb_free(q);
}

void
quant_config_get(const quant *q, vecdb_quant_config *out)
{
	memset(out, 0, sizeof(*out));
	out->type = q->type;
	out->quantile = q->quantile;
	if (q->type == VECDB_QUANT_PRODUCT) {
		out->segments = q->segments;
		out->bits = VECDB_PQ_BITS;
	}
}

size_t
quant_code_size(const quant *q)
{
	return q->code_size;
}

size_t
quant_query_size(const quant *q)
{
	return q->query_size;
}

size_t
quant_memory(const quant *q)
{
	size_t b = sizeof(*q);

	if (q->centre != NULL)
		b += q->dim * sizeof(float);
	if (q->books != NULL)
		b += ((size_t) PQ_K * q->dim) * sizeof(float) +
		    ((size_t) q->segments + 1) * sizeof(uint32_t);
	return b;
}

/* ===== Scalar ===== */

static int
cmp_float(const void *a, const void *b)
{
	float x = *(const float *) a, y = *(const float *) b;

	return x < y ? -1 : x > y;
}

/* The range holding the quantile's share of the sample's values. */
static int
train_scalar(quant *q, const float *v, size_t n)
{
	size_t total = n * q->dim, take = total < SCALAR_VALUES ? total :
	    SCALAR_VALUES;
	float *vals = vdb_malloc(take * sizeof(float));

	if (vals == NULL)
		return VECDB_ENOMEM;
	for (size_t i = 0; i < take; i++)
		vals[i] = v[(size_t) ((double) i * (double) total / (double) take)];
	qsort(vals, take, sizeof(float), cmp_float);
	double tail = (1.0 - q->quantile) / 2.0;
	size_t a = (size_t) floor(tail * (double) (take - 1));
	size_t b = (size_t) ceil((1.0 - tail) * (double) (take - 1));
	q->lo = vals[a];
	float hi = vals[b < take ? b : take - 1];
	q->alpha = hi > q->lo ? (hi - q->lo) / 255.0f : 1.0f;
	vdb_free(vals);
	return VECDB_OK;
}

static void
encode_scalar(const quant *q, const float *v, uint8_t *code)
{
	float inv = 1.0f / q->alpha;
	uint32_t sum = 0;

	for (uint32_t i = 0; i < q->dim; i++) {
		float c = rintf((v[i] - q->lo) * inv);
		uint8_t b = c <= 0 ? 0 : c >= 255 ? 255 : (uint8_t) c;
		code[i] = b;
		sum += b;
	}
	if (q->op == KERN_DOT) {
		for (size_t i = q->dim; i < q->sum_off; i++)
			code[i] = 0;
		memcpy(code + q->sum_off, &sum, 4);
	}
}

static float
dist_scalar(const quant *q, const uint8_t *a, const uint8_t *b)
{
	uint32_t r = q->k->u8[q->op](a, b, q->dim);

	switch (q->op) {
	case KERN_L2SQ:
		return q->alpha * q->alpha * (float) r;
	case KERN_L1:
		return q->alpha * (float) r;
	default: {
		uint32_t sa, sb;
		memcpy(&sa, a + q->sum_off, 4);
		memcpy(&sb, b + q->sum_off, 4);
		float dot = (float) q->dim * q->lo * q->lo + q->lo * q->alpha *
		    (float) ((double) sa + sb) + q->alpha * q->alpha * (float) r;
		return -dot;
	}
	}
}

/* ===== Binary ===== */

static void
train_binary(quant *q, const float *v, size_t n)
{
	double *sum = vdb_calloc(q->dim, sizeof(double));

	for (size_t j = 0; j < n; j++)
		for (uint32_t i = 0; i < q->dim; i++) {
			if (sum != NULL)
				sum[i] += v[j * q->dim + i];
		}
	for (uint32_t i = 0; i < q->dim; i++)
		q->centre[i] = sum != NULL ? (float) (sum[i] / (double) n) : 0;
	vdb_free(sum);
}

static void
encode_binary(const quant *q, const float *v, uint8_t *code)
{
	uint64_t w[1];

	memset(code, 0, q->code_size);
	for (uint32_t i = 0; i < q->dim; i++)
		if (v[i] > q->centre[i]) {
			memcpy(w, code + (i / 64) * 8, 8);
			w[0] |= 1ULL << (i % 64);
			memcpy(code + (i / 64) * 8, w, 8);
		}
}

static float
dist_binary(const quant *q, const uint8_t *a, const uint8_t *b)
{
	uint32_t h = q->k->hamming((const uint64_t *) a, (const uint64_t *) b,
	    q->words);

	return 2.0f * (float) h / (float) q->dim - 1.0f;
}

/* ===== Product ===== */

/* Squared distances from x (d components) to every centroid of a
 * component-major codebook, into dist[PQ_K]. */
static void
seg_dists(const float *book, uint32_t d, const float *x, kern_op op,
    float *dist)
{
	for (int c = 0; c < PQ_K; c++)
		dist[c] = 0;
	for (uint32_t j = 0; j < d; j++) {
		const float *col = book + (size_t) j * PQ_K;
		float xj = x[j];
		switch (op) {
		case KERN_L2SQ:
			for (int c = 0; c < PQ_K; c++)
				dist[c] += (xj - col[c]) * (xj - col[c]);
			break;
		case KERN_L1:
			for (int c = 0; c < PQ_K; c++)
				dist[c] += fabsf(xj - col[c]);
			break;
		default:
			for (int c = 0; c < PQ_K; c++)
				dist[c] -= xj * col[c];
		}
	}
}

static uint8_t
argmin(const float *dist)
{
	int best = 0;

	for (int c = 1; c < PQ_K; c++)
		if (dist[c] < dist[best])
			best = c;
	return (uint8_t) best;
}

/* k-means (Lloyd) of one segment over m sample vectors; the codebook
 * clusters by squared L2 whatever the metric, as vectors do. */
static int
kmeans_segment(quant *q, uint32_t s, const float *v, size_t m,
    uint64_t *rng)
{
	uint32_t o = q->off[s], d = q->off[s + 1] - o;
	float *book = q->books + (size_t) PQ_K * o, dist[PQ_K];
	double *acc = vdb_calloc((size_t) PQ_K * d, sizeof(double));
	uint32_t *cnt = vdb_calloc(PQ_K, sizeof(uint32_t));
	uint8_t *asg = vdb_malloc(m);

	if (acc == NULL || cnt == NULL || asg == NULL) {
		vdb_free(acc);
		vdb_free(cnt);
		vdb_free(asg);
		return VECDB_ENOMEM;
	}
	for (int c = 0; c < PQ_K; c++) {
		const float *x = v + ((size_t) c * m / PQ_K) * q->dim + o;
		for (uint32_t j = 0; j < d; j++)
			book[(size_t) j * PQ_K + c] = x[j];
	}
	for (int it = 0; it < QUANT_KMEANS_ITERS; it++) {
		memset(acc, 0, (size_t) PQ_K * d * sizeof(double));
		memset(cnt, 0, PQ_K * sizeof(uint32_t));
		for (size_t i = 0; i < m; i++) {
			const float *x = v + i * q->dim + o;
			seg_dists(book, d, x, KERN_L2SQ, dist);
			uint8_t c = argmin(dist);
			asg[i] = c;
			cnt[c]++;
			for (uint32_t j = 0; j < d; j++)
				acc[(size_t) c * d + j] += x[j];
		}
		for (int c = 0; c < PQ_K; c++) {
			if (cnt[c] == 0) {
				/* An empty cluster takes a random point. */
				*rng = *rng * 6364136223846793005ULL +
				    1442695040888963407ULL;
				const float *x = v + (size_t) ((*rng >> 33) % m) *
				    q->dim + o;
				for (uint32_t j = 0; j < d; j++)
					book[(size_t) j * PQ_K + c] = x[j];
				continue;
			}
			for (uint32_t j = 0; j < d; j++)
				book[(size_t) j * PQ_K + c] = (float)
				    (acc[(size_t) c * d + j] / cnt[c]);
		}
	}
	vdb_free(acc);
	vdb_free(cnt);
	vdb_free(asg);
	return VECDB_OK;
}

static int
train_product(quant *q, const float *v, size_t n, uint64_t seed)
{
	size_t m = n < PQ_TRAIN_MAX ? n : PQ_TRAIN_MAX;
	float *sub = NULL;
	uint64_t rng = seed ^ 0x2545F4914F6CDD1DULL;
	int rv = VECDB_OK;

	if (m < n) { /* spread evenly over the sample */
		if ((sub = vdb_malloc(m * q->dim * sizeof(float))) == NULL)
			return VECDB_ENOMEM;
		for (size_t i = 0; i < m; i++)
			memcpy(sub + i * q->dim, v + (i * n / m) * q->dim,
			    q->dim * sizeof(float));
		v = sub;
	}
	for (uint32_t s = 0; s < q->segments && rv == VECDB_OK; s++)
		rv = kmeans_segment(q, s, v, m, &rng);
	vdb_free(sub);
	return rv;
}

static void
encode_product(const quant *q, const float *v, uint8_t *code)
{
	float dist[PQ_K];

	for (uint32_t s = 0; s < q->segments; s++) {
		uint32_t o = q->off[s];
		seg_dists(q->books + (size_t) PQ_K * o, q->off[s + 1] - o,
		    v + o, KERN_L2SQ, dist);
		code[s] = argmin(dist);
	}
}

/* ===== Interface ===== */

int
quant_train(const vecdb_quant_config *qc, vecdb_metric metric, uint32_t dim,
    const float *sample, size_t n, uint64_t seed, quant **out)
{
	uint32_t segs = 0;
	quant *q;
	int rv;

	if (qc == NULL || sample == NULL || out == NULL || n == 0 ||
	    dim == 0 || dim > VECDB_DIM_MAX)
		return VECDB_EINVAL;
	switch (qc->type) {
	case VECDB_QUANT_SCALAR:
		if (!(qc->quantile > 0 && qc->quantile <= 1))
			return VECDB_EINVAL;
		break;
	case VECDB_QUANT_BINARY:
		if (metric != VECDB_COSINE && metric != VECDB_DOT)
			return VECDB_EINVAL;
		break;
	case VECDB_QUANT_PRODUCT:
		segs = qc->segments ? qc->segments : (dim + 7) / 8;
		if (segs > dim || (qc->bits != 0 && qc->bits != VECDB_PQ_BITS))
			return VECDB_EINVAL;
		break;
	default:
		return VECDB_EINVAL;
	}
	if ((rv = quant_alloc(qc->type, metric, dim, qc->type ==
	    VECDB_QUANT_SCALAR ? qc->quantile : 0, segs, &q)) != VECDB_OK)
		return rv;
	if (n > QUANT_TRAIN_MAX)
		n = QUANT_TRAIN_MAX; /* the caller spreads its sample */
	switch (qc->type) {
	case VECDB_QUANT_SCALAR:
		rv = train_scalar(q, sample, n);
		break;
	case VECDB_QUANT_BINARY:
		train_binary(q, sample, n);
		break;
	default:
		rv = train_product(q, sample, n, seed);
	}
	if (rv != VECDB_OK) {
		quant_free(q);
		return rv;
	}
	*out = q;
	return VECDB_OK;
}

void
quant_encode(const quant *q, const float *v, uint8_t *code)
{
	switch (q->type) {
	case VECDB_QUANT_SCALAR:
		encode_scalar(q, v, code);
		break;
	case VECDB_QUANT_BINARY:
		encode_binary(q, v, code);
		break;
	default:
		encode_product(q, v, code);
	}
}

void
quant_decode(const quant *q, const uint8_t *code, float *out)
{
	switch (q->type) {
	case VECDB_QUANT_SCALAR:
		for (uint32_t i = 0; i < q->dim; i++)
			out[i] = q->lo + q->alpha * (float) code[i];
		break;
	case VECDB_QUANT_BINARY: {
		/* +-1 around the centre: the direction the bits keep. */
		for (uint32_t i = 0; i < q->dim; i++) {
			int bit = (code[i / 8] >> (i % 8)) & 1;
			out[i] = q->centre[i] + (bit ? 1.0f : -1.0f);
		}
		break;
	}
	default:
		for (uint32_t s = 0; s < q->segments; s++) {
			uint32_t o = q->off[s], d = q->off[s + 1] - o;
			const float *book = q->books + (size_t) PQ_K * o;
			for (uint32_t j = 0; j < d; j++)
				out[o + j] = book[(size_t) j * PQ_K + code[s]];
		}
	}
}

void
quant_prepare(const quant *q, const float *v, void *qbuf)
{
	if (q->type != VECDB_QUANT_PRODUCT) {
		memset(qbuf, 0, q->query_size);
		quant_encode(q, v, qbuf);
		return;
	}
	float *lut = qbuf;
	for (uint32_t s = 0; s < q->segments; s++) {
		uint32_t o = q->off[s];
		seg_dists(q->books + (size_t) PQ_K * o, q->off[s + 1] - o,
		    v + o, q->op, lut + (size_t) s * PQ_K);
	}
}

float
quant_dist(const quant *q, const void *qbuf, const uint8_t *code)
{
	switch (q->type) {
	case VECDB_QUANT_SCALAR:
		return dist_scalar(q, qbuf, code);
	case VECDB_QUANT_BINARY:
		return dist_binary(q, qbuf, code);
	default:
		return q->k->lut(qbuf, code, q->segments);
	}
}

void
quant_dist_batch(const quant *q, const void *qbuf, const uint8_t *base,
    size_t stride, const uint32_t *ids, size_t n, float *out)
{
	for (size_t i = 0; i < n; i++) {
		if (i + 1 < n)
			__builtin_prefetch(base + (size_t) ids[i + 1] * stride,
			    0, 3);
		out[i] = quant_dist(q, qbuf, base + (size_t) ids[i] * stride);
	}
}

float
quant_dist_codes(const quant *q, const uint8_t *a, const uint8_t *b,
    float *tmp)
{
	if (q->type == VECDB_QUANT_SCALAR)
		return dist_scalar(q, a, b);
	if (q->type == VECDB_QUANT_BINARY)
		return dist_binary(q, a, b);
	quant_decode(q, a, tmp);
	quant_decode(q, b, tmp + q->dim);
	float d = q->k->dist[q->op][VECDB_FLOAT32](tmp, tmp + q->dim, q->dim);
	return q->op == KERN_DOT ? -d : d;
}

/* ===== Serialization ===== */

/*
 * [magic u32][type u8][metric u8][0 u16][dim u32][quantile f32]
 * [segments u32], then scalar [lo f32][alpha f32], binary dim centres,
 * product PQ_K * dim codebook floats; host byte order, as the index file.
 */
#define SER_HDR 20

static size_t
tables_size(const quant *q)
{
	return q->type == VECDB_QUANT_SCALAR ? 8 : q->type ==
	    VECDB_QUANT_BINARY ? (size_t) q->dim * 4 :
	    (size_t) PQ_K * q->dim * 4;
}

int
quant_serialize(const quant *q, uint8_t **buf, size_t *len)
{
	size_t n = SER_HDR + tables_size(q);
	uint8_t *b = vdb_malloc(n);
	uint32_t magic = QUANT_MAGIC;

	if (b == NULL)
		return VECDB_ENOMEM;
	memcpy(b, &magic, 4);
	b[4] = (uint8_t) q->type;
	b[5] = (uint8_t) q->metric;
	b[6] = b[7] = 0;
	memcpy(b + 8, &q->dim, 4);
	memcpy(b + 12, &q->quantile, 4);
	memcpy(b + 16, &q->segments, 4);
	if (q->type == VECDB_QUANT_SCALAR) {
		memcpy(b + SER_HDR, &q->lo, 4);
		memcpy(b + SER_HDR + 4, &q->alpha, 4);
	} else if (q->type == VECDB_QUANT_BINARY) {
		memcpy(b + SER_HDR, q->centre, (size_t) q->dim * 4);
	} else {
		memcpy(b + SER_HDR, q->books, (size_t) PQ_K * q->dim * 4);
	}
	*buf = b;
	*len = n;
	return VECDB_OK;
}

/* Every float of a table finite; 1 if so. */
static int
all_finite(const float *f, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!isfinite(f[i]))
			return 0;
	return 1;
}

int
quant_deserialize(const uint8_t *b, size_t len, vecdb_metric metric,
    uint32_t dim, quant **out)
{
	uint32_t magic, fdim, segs;
	float quantile;
	quant *q;
	int rv;

	if (b == NULL || len < SER_HDR)
		return VECDB_ECORRUPT;
	memcpy(&magic, b, 4);
	memcpy(&fdim, b + 8, 4);
	memcpy(&quantile, b + 12, 4);
	memcpy(&segs, b + 16, 4);
	if (magic != QUANT_MAGIC || b[5] != (uint8_t) metric || fdim != dim ||
	    b[6] != 0 || b[7] != 0 || b[4] < VECDB_QUANT_SCALAR ||
	    b[4] > VECDB_QUANT_PRODUCT)
		return VECDB_ECORRUPT;
	vecdb_quant type = (vecdb_quant) b[4];
	if ((type == VECDB_QUANT_SCALAR && !(quantile > 0 && quantile <= 1)) ||
	    (type == VECDB_QUANT_PRODUCT && (segs == 0 || segs > dim)) ||
	    (type != VECDB_QUANT_PRODUCT && segs != 0) ||
	    (type == VECDB_QUANT_BINARY && metric != VECDB_COSINE &&
	    metric != VECDB_DOT))
		return VECDB_ECORRUPT;
	if ((rv = quant_alloc(type, metric, dim, quantile, segs, &q)) != VECDB_OK)
		return rv;
	if (len != SER_HDR + tables_size(q)) {
		quant_free(q);
		return VECDB_ECORRUPT;
	}
	if (type == VECDB_QUANT_SCALAR) {
		memcpy(&q->lo, b + SER_HDR, 4);
		memcpy(&q->alpha, b + SER_HDR + 4, 4);
		rv = isfinite(q->lo) && isfinite(q->alpha) && q->alpha > 0;
	} else if (type == VECDB_QUANT_BINARY) {
		memcpy(q->centre, b + SER_HDR, (size_t) dim * 4);
		rv = all_finite(q->centre, dim);
	} else {
		memcpy(q->books, b + SER_HDR, (size_t) PQ_K * dim * 4);
		rv = all_finite(q->books, (size_t) PQ_K * dim);
	}
	if (!rv) {
		quant_free(q);
		return VECDB_ECORRUPT;
	}
	*out = q;
	return VECDB_OK;
}
