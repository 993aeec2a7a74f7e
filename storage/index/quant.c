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
#define BIN_PLANES 4              /* bits a binary query's weight keeps */
#define BIN_EXTRA 16              /* a binary code's sums: see encode_binary */
#define BIN_QEXTRA 48             /* a binary query: see prepare_binary */

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

	/* binary: x_i ~ lo_i, or hi_i when bit i is set */
	float *centre;           /* dim centres, dim lo, dim hi */
	uint32_t words;          /* 64-bit words of bits a code */
	float ll;                /* sum lo^2 */
	float d2;                /* mean (hi - lo)^2 of components that vary */

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
		q->code_size = (size_t) q->words * 8 + BIN_EXTRA;
		q->query_size = (size_t) BIN_PLANES * q->words * 8 + BIN_QEXTRA;
		if ((q->centre = vdb_calloc(3 * (size_t) dim, sizeof(float))) ==
		    NULL)
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
		b += 3 * (size_t) q->dim * sizeof(float);
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
		uint8_t b = !(c > 0) ? 0 : c >= 255 ? 255 : (uint8_t) c;
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

/* The sums dist_binary_codes needs, from the tables. */
static void
binary_sums(quant *q)
{
	const float *lo = q->centre + q->dim, *hi = lo + q->dim;
	double ll = 0, d2 = 0;
	uint32_t live = 0;

	for (uint32_t i = 0; i < q->dim; i++) {
		double d = (double) hi[i] - lo[i];
		ll += (double) lo[i] * lo[i];
		d2 += d * d;
		live += d != 0;
	}
	q->ll = (float) ll;
	q->d2 = live ? (float) (d2 / live) : 0;
}

/*
 * A component's centre is the sample's mean; a bit says which side of it
 * a value is, and decodes to the mean of the sample's values on that side
 * (lo below, hi above): the best two values to stand for the component.
 */
static void
train_binary(quant *q, const float *v, size_t n)
{
	double *acc = vdb_calloc(4 * (size_t) q->dim, sizeof(double));
	float *lo = q->centre + q->dim, *hi = lo + q->dim;

	if (acc == NULL) { /* still a code: centres 0, -1 and 1 */
		for (uint32_t i = 0; i < q->dim; i++) {
			lo[i] = -1;
			hi[i] = 1;
		}
		binary_sums(q);
		return;
	}
	double *nlo = acc + q->dim, *slo = nlo + q->dim, *shi = slo + q->dim;
	for (size_t j = 0; j < n; j++)
		for (uint32_t i = 0; i < q->dim; i++)
			acc[i] += v[j * q->dim + i];
	for (uint32_t i = 0; i < q->dim; i++)
		q->centre[i] = (float) (acc[i] / (double) n);
	for (size_t j = 0; j < n; j++)
		for (uint32_t i = 0; i < q->dim; i++) {
			float x = v[j * q->dim + i];
			if (x > q->centre[i]) {
				shi[i] += x;
			} else {
				slo[i] += x;
				nlo[i] += 1;
			}
		}
	for (uint32_t i = 0; i < q->dim; i++) {
		double nhi = (double) n - nlo[i];
		lo[i] = nlo[i] > 0 ? (float) (slo[i] / nlo[i]) : q->centre[i];
		hi[i] = nhi > 0 ? (float) (shi[i] / nhi) : q->centre[i];
	}
	binary_sums(q);
	vdb_free(acc);
}

/*
 * [bits: words x u64][popcount u32][a f32][norm f32][0 u32]: a = sum
 * lo_i (hi_i - lo_i) b_i (the code's share of the cross terms between two
 * codes), norm = |decoded vector|.
 */
static void
encode_binary(const quant *q, const float *v, uint8_t *code)
{
	const float *lo = q->centre + q->dim, *hi = lo + q->dim;
	size_t pw = (size_t) q->words * 8;
	uint64_t w;
	uint32_t pop = 0;
	double a = 0, nn = 0;

	memset(code, 0, q->code_size);
	for (uint32_t i = 0; i < q->dim; i++) {
		int bit = v[i] > q->centre[i];
		float x = bit ? hi[i] : lo[i];
		nn += (double) x * x;
		if (!bit)
			continue;
		a += (double) lo[i] * ((double) hi[i] - lo[i]);
		memcpy(&w, code + (i / 64) * 8, 8);
		w |= 1ULL << (i % 64);
		memcpy(code + (i / 64) * 8, &w, 8);
		pop++;
	}
	float fa = (float) a, fn = (float) sqrt(nn);
	memcpy(code + pw, &pop, 4);
	memcpy(code + pw + 4, &fa, 4);
	memcpy(code + pw + 8, &fn, 4);
}

/* Internal distance from a dot product of decoded vectors: cosine
 * divides by the decoded norm (the decoded vectors are not unit). */
static float
binary_internal(const quant *q, double dot, float norm)
{
	if (q->metric == VECDB_COSINE)
		return norm > 0 ? -(float) (dot / norm) : 0.0f;
	return -(float) dot;
}

/*
 * A binary query is asymmetric: q . x ~ sum q_i lo_i + sum w_i b_i with
 * w_i = q_i (hi_i - lo_i). Each w_i is kept as 4 bits, w ~ wlo + step *
 * u, one bit plane a power of two, so that sum w_i b_i is wlo *
 * popcount(b) + step * sum_p 2^p popcount(plane_p & b), and popcount(x &
 * b) = (popcount(x) + popcount(b) - hamming(x, b)) / 2: four Hamming
 * kernels a distance. Layout: [4 planes x words u64][qlo f32][wlo f32]
 * [step f32][0 f32][4 x plane popcount u32][pad to BIN_QEXTRA].
 */
static void
prepare_binary(const quant *q, const float *v, uint8_t *qb)
{
	const float *lo = q->centre + q->dim, *hi = lo + q->dim;
	size_t pw = (size_t) q->words * 8, tail = BIN_PLANES * pw;
	float wlo = INFINITY, whi = -INFINITY;
	double qlo = 0;
	uint32_t pops[BIN_PLANES] = { 0 };
	uint64_t w;

	memset(qb, 0, q->query_size);
	for (uint32_t i = 0; i < q->dim; i++) {
		float x = v[i] * (hi[i] - lo[i]);
		wlo = fminf(wlo, x);
		whi = fmaxf(whi, x);
		qlo += (double) v[i] * lo[i];
	}
	float step = whi > wlo ? (whi - wlo) / 15.0f : 1.0f, fq = (float) qlo;
	for (uint32_t i = 0; i < q->dim; i++) {
		float u = rintf((v[i] * (hi[i] - lo[i]) - wlo) / step);
		/* !(u > 0) also takes NaN: extreme tables or queries
		 * overflow the weights to infinities */
		unsigned b = !(u > 0) ? 0 : u >= 15 ? 15 : (unsigned) u;
		for (int p = 0; p < BIN_PLANES; p++) {
			if (!(b >> p & 1))
				continue;
			uint8_t *at = qb + (size_t) p * pw + (i / 64) * 8;
			memcpy(&w, at, 8);
			w |= 1ULL << (i % 64);
			memcpy(at, &w, 8);
			pops[p]++;
		}
	}
	memcpy(qb + tail, &fq, 4);
	memcpy(qb + tail + 4, &wlo, 4);
	memcpy(qb + tail + 8, &step, 4);
	memcpy(qb + tail + 16, pops, sizeof(pops));
}

static float
dist_binary(const quant *q, const uint8_t *qb, const uint8_t *code)
{
	size_t pw = (size_t) q->words * 8, tail = BIN_PLANES * pw;
	float qlo, wlo, step, norm;
	uint32_t pops[BIN_PLANES], pb;
	double and_sum = 0;

	memcpy(&qlo, qb + tail, 4);
	memcpy(&wlo, qb + tail + 4, 4);
	memcpy(&step, qb + tail + 8, 4);
	memcpy(pops, qb + tail + 16, sizeof(pops));
	memcpy(&pb, code + pw, 4);
	memcpy(&norm, code + pw + 8, 4);
	for (int p = 0; p < BIN_PLANES; p++) {
		uint32_t h = q->k->hamming((const uint64_t *) (qb + p * pw),
		    (const uint64_t *) code, q->words);
		and_sum += (double) (1u << p) * (double) (pops[p] + pb - h) / 2;
	}
	return binary_internal(q, (double) qlo + (double) wlo * pb +
	    (double) step * and_sum, norm);
}

/*
 * Between two codes, on the queries' scale: decoded x . y = sum lo^2 +
 * a(x) + a(y) + sum (hi - lo)^2 b_x b_y, the last sum taken as if every
 * component that varies had the mean (hi - lo)^2 (d2), times the bits
 * both set, (popcount x + popcount y - hamming) / 2.
 */
static float
dist_binary_codes(const quant *q, const uint8_t *a, const uint8_t *b)
{
	size_t pw = (size_t) q->words * 8;
	uint32_t pa, pb, h = q->k->hamming((const uint64_t *) a,
	    (const uint64_t *) b, q->words);
	float fa, fb, na, nb;

	memcpy(&pa, a + pw, 4);
	memcpy(&pb, b + pw, 4);
	memcpy(&fa, a + pw + 4, 4);
	memcpy(&fb, b + pw + 4, 4);
	memcpy(&na, a + pw + 8, 4);
	memcpy(&nb, b + pw + 8, 4);
	double dot = (double) q->ll + fa + fb + (double) q->d2 *
	    ((double) pa + pb - h) / 2;
	return binary_internal(q, dot, na * nb);
}

/* ===== Product ===== */

/* Squared distances from x (d components) to every centroid of a
 * component-major codebook, into dist[PQ_K]. (A target_clones AVX2 copy
 * made no difference we could measure, and its ifunc resolver runs
 * before ThreadSanitizer's runtime starts: the TSan build crashed.) */
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
		const float *lo = q->centre + q->dim, *hi = lo + q->dim;
		for (uint32_t i = 0; i < q->dim; i++) {
			uint64_t w;
			memcpy(&w, code + (i / 64) * 8, 8);
			out[i] = w >> (i % 64) & 1 ? hi[i] : lo[i];
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
	if (q->type == VECDB_QUANT_BINARY) {
		prepare_binary(q, v, qbuf);
		return;
	}
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
	/* A code is several lines (784 bytes: 13): fetch all of the next
	 * one while this one is compared, not just its first line. */
	for (size_t i = 0; i < n; i++) {
		if (i + 1 < n) {
			const uint8_t *nx = base + (size_t) ids[i + 1] * stride;
			for (size_t o = 0; o < q->code_size; o += 64)
				__builtin_prefetch(nx + o, 0, 3);
		}
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
		return dist_binary_codes(q, a, b);
	quant_decode(q, a, tmp);
	quant_decode(q, b, tmp + q->dim);
	float d = q->k->dist[q->op][VECDB_FLOAT32](tmp, tmp + q->dim, q->dim);
	return q->op == KERN_DOT ? -d : d;
}

/* ===== Serialization ===== */

/*
 * [magic u32][type u8][metric u8][0 u16][dim u32][quantile f32]
 * [segments u32], then scalar [lo f32][alpha f32], binary dim centres,
 * dim lows and dim highs,
 * product PQ_K * dim codebook floats; host byte order, as the index file.
 */
#define SER_HDR 20

static size_t
tables_size(const quant *q)
{
	return q->type == VECDB_QUANT_SCALAR ? 8 : q->type ==
	    VECDB_QUANT_BINARY ? (size_t) q->dim * 12 :
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
		memcpy(b + SER_HDR, q->centre, (size_t) q->dim * 12);
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
		memcpy(q->centre, b + SER_HDR, (size_t) dim * 12);
		rv = all_finite(q->centre, 3 * (size_t) dim);
		binary_sums(q);
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
