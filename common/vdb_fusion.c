/*
 * vdb_fusion.c: vecdb_fuse, one ranking made of two (include/vecdb.h
 * says how each method scores). In vecdb_types, so that the engine and
 * the router, which fuses what its shards return, share it.
 *
 * Each list's contributions are computed first (normalised score or
 * reciprocal rank, in double), then the entries of both lists are sorted
 * by id so that a point's two entries meet, then the points by fused
 * score.
 */
#include <math.h>
#include <stdlib.h>

#include "vdb.h"

struct entry {
	const vecdb_record *rec;
	double part;      /* this list's contribution to the fused score */
	unsigned list;    /* 0 or 1 */
	size_t rank;      /* 0-based place in its list */
};

struct fused {
	const vecdb_record *rec;  /* of the first list that holds it */
	double score;
};

void
vecdb_fusion_params_init(vecdb_fusion_params *p)
{
	p->method = VECDB_FUSION_RRF;
	p->limit = 10;
	p->alpha = VECDB_FUSION_ALPHA_DEFAULT;
	p->rrf_k = VECDB_FUSION_RRF_K_DEFAULT;
}

static int
entry_cmp(const void *a, const void *b)
{
	const struct entry *x = a, *y = b;
	int c = vecdb_id_cmp(&x->rec->id, &y->rec->id);

	if (c)
		return c;
	if (x->list != y->list)
		return x->list < y->list ? -1 : 1;
	return (x->rank > y->rank) - (x->rank < y->rank);
}

static int
fused_cmp(const void *a, const void *b)
{
	const struct fused *x = a, *y = b;

	if (x->score != y->score)
		return x->score > y->score ? -1 : 1;
	return vecdb_id_cmp(&x->rec->id, &y->rec->id);
}

/* Each entry's part of list l (n entries from e). */
static void
contributions(const vecdb_fusion_params *p, unsigned l, struct entry *e,
    size_t n)
{
	double lo = INFINITY, hi = -INFINITY, mean = 0, var = 0, sd;
	double weight = l == 0 ? p->alpha : 1.0 - p->alpha;

	for (size_t i = 0; i < n; i++) {
		double s = e[i].rec->score;

		lo = s < lo ? s : lo;
		hi = s > hi ? s : hi;
		mean += s;
	}
	if (n)
		mean /= (double) n;
	for (size_t i = 0; i < n; i++)
		var += (e[i].rec->score - mean) * (e[i].rec->score - mean);
	sd = n ? sqrt(var / (double) n) : 0;
	for (size_t i = 0; i < n; i++) {
		double s = e[i].rec->score, v;

		switch (p->method) {
		case VECDB_FUSION_RRF:
			v = 1.0 / ((double) p->rrf_k + (double) (i + 1));
			break;
		case VECDB_FUSION_RELATIVE_SCORE:
			v = hi > lo ? (s - lo) / (hi - lo) : 1.0;
			v *= weight;
			break;
		default: /* VECDB_FUSION_DBSF */
			v = sd > 0 ? (s - (mean - 3 * sd)) / (6 * sd) : 0.5;
			v = v < 0 ? 0 : v > 1 ? 1 : v;
			break;
		}
		e[i].part = v;
	}
}

int
vecdb_fuse(const vecdb_records *first, const vecdb_records *second,
    const vecdb_fusion_params *p, vecdb_records **out)
{
	const vecdb_records *lists[2] = { first, second };
	size_t n = 0, nf = 0, k;
	struct entry *e = NULL;
	struct fused *f = NULL;
	vecdb_records *r = NULL;

	*out = NULL;
	if (p->method != VECDB_FUSION_RRF &&
	    p->method != VECDB_FUSION_RELATIVE_SCORE &&
	    p->method != VECDB_FUSION_DBSF)
		return vdb_err(VECDB_EINVAL, "unknown fusion method %d",
		    (int) p->method);
	if (p->limit == 0)
		return vdb_err(VECDB_EINVAL, "limit must be at least 1");
	if (!(p->alpha >= 0 && p->alpha <= 1))
		return vdb_err(VECDB_EINVAL, "alpha must be in [0, 1]");
	if (!(p->rrf_k >= 0 && isfinite(p->rrf_k)))
		return vdb_err(VECDB_EINVAL, "rrf_k must be a finite number "
		    ">= 0");
	for (unsigned l = 0; l < 2; l++)
		n += lists[l] ? lists[l]->count : 0;
	if ((e = vdb_malloc((n ? n : 1) * sizeof(*e))) == NULL ||
	    (f = vdb_malloc((n ? n : 1) * sizeof(*f))) == NULL ||
	    (r = vdb_calloc(1, sizeof(*r))) == NULL)
		goto oom;
	n = 0;
	for (unsigned l = 0; l < 2; l++) {
		size_t start = n;

		for (size_t i = 0; lists[l] && i < lists[l]->count; i++)
			e[n++] = (struct entry) { &lists[l]->items[i], 0, l,
			    i };
		contributions(p, l, e + start, n - start);
	}
	qsort(e, n, sizeof(*e), entry_cmp);
	for (size_t i = 0; i < n; i++) {
		/* a point's first entry of each list counts, once */
		if (i && vecdb_id_cmp(&e[i].rec->id, &e[i - 1].rec->id) == 0) {
			if (e[i].list != e[i - 1].list)
				f[nf - 1].score += e[i].part;
			continue;
		}
		f[nf++] = (struct fused) { e[i].rec, e[i].part };
	}
	qsort(f, nf, sizeof(*f), fused_cmp);
	k = nf < p->limit ? nf : p->limit;
	if ((r->items = vdb_calloc(k ? k : 1, sizeof(*r->items))) == NULL)
		goto oom;
	for (size_t i = 0; i < k; i++) {
		if (vdb_record_copy(f[i].rec, &r->items[i]) != VECDB_OK)
			goto oom;
		r->items[i].score = (float) f[i].score;
		r->count = i + 1;
	}
	vdb_free(e);
	vdb_free(f);
	*out = r;
	return VECDB_OK;
oom:
	vdb_free(e);
	vdb_free(f);
	vecdb_records_free(r);
	return vdb_err(VECDB_ENOMEM, "out of memory");
}
