/*
 * router_query.c: the cluster backend's queries: search and batch search,
 * scroll, count, recommend and discover. Every shard is asked at once
 * (router_call.c) and the answers merged (router_merge.c); the examples
 * of recommend and discover, given by id, are fetched from their shards
 * first and sent as vectors.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "router_impl.h"
#include "vdb.h"

/* ===== Queries ===== */

/* The filter as compact JSON text, NULL for none (free with free()). */
static char *
filter_text(const json_t *f)
{
	return f == NULL || json_is_null(f) ? NULL : json_dumps(f,
	    JSON_COMPACT);
}

/* Encode a batch with limit+offset per shard and offset 0. */
static int
search_encode(const char *coll, const struct api_search *s, size_t n,
    uint8_t **b, size_t *l)
{
	vecdb_search_params *p = vdb_calloc(n, sizeof(*p));
	char **f = vdb_calloc(n, sizeof(char *));
	int rv = VECDB_OK;

	if (p == NULL || f == NULL)
		rv = vdb_err(VECDB_ENOMEM, "out of memory");
	for (size_t i = 0; i < n && rv == VECDB_OK; i++) {
		p[i] = s[i].p;
		p[i].filter = NULL;
		p[i].limit = s[i].p.limit + s[i].p.offset;
		p[i].offset = 0;
		f[i] = filter_text(s[i].filter);
	}
	if (rv == VECDB_OK)
		rv = proto_search_encode(coll, p, (const char *const *) f, n,
		    b, l);
	for (size_t i = 0; f != NULL && i < n; i++)
		free(f[i]);
	vdb_free(f);
	vdb_free(p);
	return rv;
}

/* Every shard, limit+offset each, merged by (distance, id). */
static int
search_run(router *r, router_topology *t, const char *coll,
    const struct api_search *s, size_t n, vecdb_records ***out)
{
	vecdb_records ***per = vdb_calloc(t->n, sizeof(*per));
	struct router_call *c = NULL;
	uint8_t *b = NULL;
	size_t l = 0, k;
	int rv = per ? search_encode(coll, s, n, &b, &l) :
	    vdb_err(VECDB_ENOMEM, "out of memory");

	if ((rv = router_broadcast(r, t, PROTO_SEARCH, 1, rv, b, l, &c)) !=
	    VECDB_OK || (rv = router_calls_settle(t, c, t->n)) != VECDB_OK)
		goto out;
	for (size_t i = 0, j = 0; i < t->n && rv == VECDB_OK; i++) {
		if (c[i].skip || (rv = proto_search_result_decode(
		    c[i].resp->body, c[i].resp->body_len, &per[j], &k)) !=
		    VECDB_OK)
			continue;
		/* per[j] holds k lists: freed as n below, it must be n */
		if (k != n) {
			vecdb_records_free_array(per[j], k);
			per[j] = NULL;
			rv = vdb_err(VECDB_EINTERNAL, "shard %zu answered %zu "
			    "of %zu searches", i, k, n);
		}
		j++;
	}
	if (rv == VECDB_OK)
		rv = router_merge_search(per, router_calls_answered(c, t->n),
		    s, n, out);
out:
	for (size_t i = 0; per != NULL && i < t->n; i++)
		if (per[i] != NULL)
			vecdb_records_free_array(per[i], n);
	vdb_free(per);
	router_calls_free(c, t->n);
	return rv;
}

/* A search, or a batch: with others of the collection when they would
 * queue on the nodes (router_batch.c). */
static int
cl_search(void *ctx, const char *coll, const struct api_search *s, size_t n,
    vecdb_records ***out)
{
	router *r = ctx;
	router_topology *t = router_topology_acquire(r, NULL, NULL);
	int rv = router_batch_search(r, t, coll, s, n, search_run, out);

	router_topology_release(r, t);
	return rv;
}

/*
 * Broadcast a Records-answering request and merge the answers: by cmp
 * with offset and limit, or with cmp NULL as scroll pages of limit.
 */
static int
records_query(router *r, router_topology *t, uint32_t method, int enc_rv,
    uint8_t *b, size_t l, int (*cmp)(const void *, const void *),
    uint32_t offset, uint32_t limit, vecdb_records **out)
{
	struct router_call *c = NULL;
	vecdb_records **lists = NULL;
	size_t n = 0;
	int rv;

	if ((rv = router_broadcast(r, t, method, 1, enc_rv, b, l, &c)) ==
	    VECDB_OK && (rv = router_calls_settle(t, c, t->n)) == VECDB_OK &&
	    (rv = router_answers_decode(c, t->n, &lists, &n)) == VECDB_OK)
		rv = cmp != NULL ? router_merge_records(lists, n, cmp, offset,
		    limit, out) : router_merge_scroll(lists, n, limit, out);
	vecdb_records_free_array(lists, n);
	router_calls_free(c, t->n);
	return rv;
}

/* Scroll every shard from the same start and merge by id
 * (router_merge_scroll() says which id comes next). */
static int
cl_scroll(void *ctx, const char *coll, const vecdb_id *start,
    uint32_t limit, const json_t *filter, int with_payload,
    int with_vector, vecdb_records **out)
{
	router *r = ctx;
	router_topology *t = router_topology_acquire(r, NULL, NULL);
	char *f = filter_text(filter);
	uint8_t *b = NULL;
	size_t l = 0;
	int rv = proto_scroll_encode(coll, start, limit, f, with_payload,
	    with_vector, &b, &l);

	free(f);
	rv = records_query(r, t, PROTO_SCROLL, rv, b, l, NULL, 0, limit, out);
	router_topology_release(r, t);
	return rv;
}

/* Sum the counts of every shard. */
static int
cl_count(void *ctx, const char *coll, const json_t *filter, uint64_t *out)
{
	router *r = ctx;
	router_topology *t = router_topology_acquire(r, NULL, NULL);
	char *f = filter_text(filter);
	struct router_call *c = NULL;
	uint8_t *b = NULL;
	size_t l = 0;
	int rv = proto_count_encode(coll, f, &b, &l);

	free(f);
	if ((rv = router_broadcast(r, t, PROTO_COUNT, 1, rv, b, l, &c)) ==
	    VECDB_OK && (rv = router_calls_settle(t, c, t->n)) == VECDB_OK)
		rv = router_merge_count(c, t->n, out);
	router_calls_free(c, t->n);
	router_topology_release(r, t);
	return rv;
}

/* ===== Recommend and discover: examples by id become vectors ===== */

/* Example vectors gathered from the shards, and the ids to exclude. */
struct examples {
	float *vecs;          /* count * dim */
	size_t count;
	vecdb_id *exclude;    /* count of n_exclude */
	size_t n_exclude;
	uint32_t dim;
	const char *using;    /* the named vector fetched; NULL: default */
};

/* Append n floats to e->vecs. */
static int
ex_push(struct examples *e, const float *v, uint32_t dim)
{
	float *g;

	if (e->dim == 0)
		e->dim = dim;
	if (dim != e->dim)
		return vdb_err(VECDB_EDIM, "example vectors differ in "
		    "dimension (%u vs %u)", dim, e->dim);
	if ((g = vdb_realloc(e->vecs, (e->count + 1) * dim * sizeof(float)))
	    == NULL)
		return vdb_err(VECDB_ENOMEM, "out of memory");
	e->vecs = g;
	memcpy(e->vecs + e->count * dim, v, dim * sizeof(float));
	e->count++;
	return VECDB_OK;
}

/* Fetch point id's vector into e and add it to the excluded ids. */
static int
ex_fetch(router *r, router_topology *t, const char *coll,
    const vecdb_id *id, struct examples *e)
{
	vecdb_record *rec = NULL;
	vecdb_id *g;
	int rv;

	const float *v = NULL;
	uint32_t dim = 0;
	char idbuf[VECDB_ID_STRLEN];

	if ((rv = router_get_point(r, t, coll, id, &rec)) != VECDB_OK)
		return rv;
	if (e->using == NULL || e->using[0] == '\0') {
		v = rec->vector;
		dim = rec->dim;
	}
	for (size_t i = 0; v == NULL && e->using != NULL && i < rec->n_named;
	    i++)
		if (strcmp(rec->named[i].name, e->using) == 0) {
			v = rec->named[i].data;
			dim = rec->named[i].dim;
		}
	if (v == NULL)
		rv = vdb_err(VECDB_EINVAL, "point %s has no vector '%s'",
		    vecdb_id_format(id, idbuf), e->using ? e->using : "");
	else
		rv = ex_push(e, v, dim);
	vecdb_record_free(rec);
	if (rv == VECDB_OK && (g = vdb_realloc(e->exclude, (e->n_exclude + 1)
	    * sizeof(*g))) == NULL)
		rv = vdb_err(VECDB_ENOMEM, "out of memory");
	if (rv == VECDB_OK) {
		e->exclude = g;
		e->exclude[e->n_exclude++] = *id;
	}
	return rv;
}

/* Start e with a copy of the caller's excluded ids. */
static int
ex_init(struct examples *e, const vecdb_id *ex, size_t n, uint32_t dim,
    const char *using)
{
	memset(e, 0, sizeof(*e));
	e->dim = dim;
	e->using = using;
	if ((e->exclude = vdb_malloc((n + 1) * sizeof(vecdb_id))) == NULL)
		return vdb_err(VECDB_ENOMEM, "out of memory");
	if (n > 0)
		memcpy(e->exclude, ex, n * sizeof(vecdb_id));
	e->n_exclude = n;
	return VECDB_OK;
}

static void
ex_fini(struct examples *e)
{
	vdb_free(e->vecs);
	vdb_free(e->exclude);
}

/* Given vectors then fetched ids, into e (positive or negative side). */
static int
ex_side(router *r, router_topology *t, const char *coll, const float *v,
    size_t nv, uint32_t dim, const vecdb_id *ids, size_t nid,
    struct examples *e)
{
	int rv = VECDB_OK;

	for (size_t i = 0; i < nv && rv == VECDB_OK; i++)
		rv = ex_push(e, v + i * dim, dim);
	for (size_t i = 0; i < nid && rv == VECDB_OK; i++)
		rv = ex_fetch(r, t, coll, &ids[i], e);
	return rv;
}

/* The ids both example sets exclude, in one new array (vdb_free it). */
static vecdb_id *
ex_join(const struct examples *a, const struct examples *b, size_t *n)
{
	vecdb_id *ex = vdb_malloc((a->n_exclude + b->n_exclude + 1) *
	    sizeof(vecdb_id));

	if (ex == NULL) {
		vdb_err(VECDB_ENOMEM, "out of memory");
		return NULL;
	}
	if (a->n_exclude > 0)
		memcpy(ex, a->exclude, a->n_exclude * sizeof(vecdb_id));
	if (b->n_exclude > 0)
		memcpy(ex + a->n_exclude, b->exclude,
		    b->n_exclude * sizeof(vecdb_id));
	*n = a->n_exclude + b->n_exclude;
	return ex;
}

/* Recommend with every example as a vector. */
static int
reco_run(router *r, router_topology *t, const char *coll,
    const vecdb_recommend_params *p, const json_t *filter,
    struct examples *pos, struct examples *neg, vecdb_records **out)
{
	vecdb_recommend_params q = *p;
	vecdb_id *ex;
	char *f;
	uint8_t *b = NULL;
	size_t l = 0;
	int rv;

	if ((ex = ex_join(pos, neg, &q.n_exclude)) == NULL)
		return VECDB_ENOMEM;
	f = filter_text(filter);
	q.positive = q.negative = NULL;
	q.n_positive = q.n_negative = 0;
	q.positive_vectors = pos->vecs;
	q.n_positive_vectors = pos->count;
	q.negative_vectors = neg->vecs;
	q.n_negative_vectors = neg->count;
	q.dim = pos->dim ? pos->dim : neg->dim;
	q.exclude = ex;
	q.limit = p->limit + p->offset;
	q.offset = 0;
	q.filter = NULL;
	rv = proto_recommend_encode(coll, &q, f, &b, &l);
	free(f);
	rv = records_query(r, t, PROTO_RECOMMEND, rv, b, l, router_by_distance,
	    p->offset, p->limit, out);
	vdb_free(ex);
	return rv;
}

/* Fetch examples by id from their shards, then ask every shard. */
static int
cl_recommend(void *ctx, const char *coll, const vecdb_recommend_params *p,
    const json_t *filter, vecdb_records **out)
{
	router *r = ctx;
	router_topology *t = router_topology_acquire(r, NULL, NULL);
	struct examples pos, neg;
	int rv;

	memset(&neg, 0, sizeof(neg));
	if ((rv = ex_init(&pos, p->exclude, p->n_exclude, p->dim,
	    p->using)) == VECDB_OK && (rv = ex_init(&neg, NULL, 0, p->dim,
	    p->using)) == VECDB_OK &&
	    (rv = ex_side(r, t, coll, p->positive_vectors,
	    p->n_positive_vectors, p->dim, p->positive, p->n_positive, &pos))
	    == VECDB_OK && (rv = ex_side(r, t, coll, p->negative_vectors,
	    p->n_negative_vectors, p->dim, p->negative, p->n_negative, &neg))
	    == VECDB_OK)
		rv = reco_run(r, t, coll, p, filter, &pos, &neg, out);
	ex_fini(&pos);
	ex_fini(&neg);
	router_topology_release(r, t);
	return rv;
}

/* Discover's examples: the target, then context pairs as vectors. */
static int
disc_examples(router *r, router_topology *t, const char *coll,
    const vecdb_discover_params *p, struct examples *tgt,
    struct examples *ctxv)
{
	int rv = VECDB_OK;

	if (p->has_target && p->target.kind != VECDB_ID_NONE)
		rv = ex_fetch(r, t, coll, &p->target, tgt);
	else if (p->has_target)
		rv = ex_push(tgt, p->target_vector, p->dim);
	for (size_t i = 0; i < p->n_context_vectors * 2 && rv == VECDB_OK;
	    i++)
		rv = ex_push(ctxv, p->context_vectors + i * p->dim, p->dim);
	for (size_t i = 0; i < p->n_context && rv == VECDB_OK; i++)
		if ((rv = ex_fetch(r, t, coll, &p->context[i].positive, ctxv))
		    == VECDB_OK)
			rv = ex_fetch(r, t, coll, &p->context[i].negative, ctxv);
	return rv;
}

/* Discover with every example as a vector. */
static int
disc_run(router *r, router_topology *t, const char *coll,
    const vecdb_discover_params *p, const json_t *filter,
    struct examples *tgt, struct examples *ctxv, vecdb_records **out)
{
	vecdb_discover_params q = *p;
	vecdb_id *ex;
	char *f;
	uint8_t *b = NULL;
	size_t l = 0;
	int rv;

	if ((ex = ex_join(tgt, ctxv, &q.n_exclude)) == NULL)
		return VECDB_ENOMEM;
	f = filter_text(filter);
	memset(&q.target, 0, sizeof(q.target));
	q.target_vector = p->has_target ? tgt->vecs : NULL;
	q.context = NULL;
	q.n_context = 0;
	q.context_vectors = ctxv->vecs;
	q.n_context_vectors = ctxv->count / 2;
	q.dim = tgt->dim ? tgt->dim : ctxv->dim;
	q.exclude = ex;
	q.limit = p->limit + p->offset;
	q.offset = 0;
	q.filter = NULL;
	rv = proto_discover_encode(coll, &q, f, &b, &l);
	free(f);
	rv = records_query(r, t, PROTO_DISCOVER, rv, b, l, router_by_hits,
	    p->offset, p->limit, out);
	vdb_free(ex);
	return rv;
}

/* Fetch target and context by id, then ask every shard. */
static int
cl_discover(void *ctx, const char *coll, const vecdb_discover_params *p,
    const json_t *filter, vecdb_records **out)
{
	router *r = ctx;
	router_topology *t = router_topology_acquire(r, NULL, NULL);
	struct examples tgt, ctxv;
	int rv;

	memset(&ctxv, 0, sizeof(ctxv));
	if ((rv = ex_init(&tgt, p->exclude, p->n_exclude, p->dim,
	    p->using)) == VECDB_OK && (rv = ex_init(&ctxv, NULL, 0, p->dim,
	    p->using)) == VECDB_OK &&
	    (rv = disc_examples(r, t, coll, p, &tgt, &ctxv)) == VECDB_OK)
		rv = disc_run(r, t, coll, p, filter, &tgt, &ctxv, out);
	ex_fini(&tgt);
	ex_fini(&ctxv);
	router_topology_release(r, t);
	return rv;
}

/* ===== Sparse search: weighed by the whole collection ===== */

/* The counts of every shard, summed: the whole collection's. */
static int
cl_sparse_stats(void *ctx, const char *coll, const char *name,
    const uint32_t *indices, size_t n, uint64_t *points, uint64_t *df)
{
	router *r = ctx;
	router_topology *t = router_topology_acquire(r, NULL, NULL);
	struct router_call *c = NULL;
	uint64_t *one = vdb_malloc((n ? n : 1) * sizeof(*one));
	uint8_t *b = NULL;
	size_t l = 0;
	int rv = proto_sparse_stats_encode(coll, name, indices, n, &b, &l);

	*points = 0;
	for (size_t i = 0; i < n; i++)
		df[i] = 0;
	if (one == NULL && rv == VECDB_OK)
		rv = vdb_err(VECDB_ENOMEM, "out of memory");
	if ((rv = router_broadcast(r, t, PROTO_SPARSE_STATS, 1, rv, b, l,
	    &c)) == VECDB_OK && (rv = router_calls_settle(t, c, t->n)) ==
	    VECDB_OK)
		for (size_t s = 0; s < t->n && rv == VECDB_OK; s++) {
			uint64_t p;

			if (c[s].skip || c[s].resp == NULL)
				continue;
			if ((rv = proto_sparse_stats_result_decode(
			    c[s].resp->body, c[s].resp->body_len, n, &p,
			    one)) != VECDB_OK)
				break;
			*points += p;
			for (size_t i = 0; i < n; i++)
				df[i] += one[i];
		}
	vdb_free(one);
	router_calls_free(c, t->n);
	router_topology_release(r, t);
	return rv;
}

/*
 * A sparse search over every shard. With an IDF modifier each shard
 * would weigh by its own counts; the router sums them first and sends
 * the query weighed by the collection's, so that the answer is one
 * node's. Each shard returns its best limit + offset.
 */
static int
cl_search_sparse(void *ctx, const char *coll,
    const vecdb_sparse_search_params *p, const json_t *filter,
    vecdb_records **out)
{
	router *r = ctx;
	vecdb_sparse_search_params q = *p;
	vecdb_collection_config cfg;
	router_topology *t;
	uint64_t *df = NULL, points = 0;
	float *w = NULL;
	char *f;
	uint8_t *b = NULL;
	size_t l = 0;
	int idf = 0, rv;

	*out = NULL;
	if ((rv = router_collection_config(r, coll, &cfg)) != VECDB_OK)
		return rv;
	for (uint32_t i = 0; p->name != NULL && i < cfg.n_sparse; i++)
		if (strcmp(cfg.sparse[i].name, p->name) == 0)
			idf = cfg.sparse[i].modifier == VECDB_SPARSE_IDF;
	if (idf && !p->weighted && p->n > 0) {
		df = vdb_malloc(p->n * sizeof(*df));
		w = vdb_malloc(p->n * sizeof(*w));
		if (df == NULL || w == NULL)
			rv = vdb_err(VECDB_ENOMEM, "out of memory");
		else if ((rv = cl_sparse_stats(ctx, coll, p->name, p->indices,
		    p->n, &points, df)) == VECDB_OK)
			for (uint32_t i = 0; i < p->n; i++)
				w[i] = (float) (p->values[i] * log1p(((double)
				    points - (double) df[i] + 0.5) /
				    ((double) df[i] + 0.5)));
		q.values = w;
		q.weighted = 1;
	}
	if (rv == VECDB_OK) {
		q.limit = p->limit + p->offset;
		q.offset = 0;
		f = filter_text(filter);
		rv = proto_sparse_search_encode(coll, &q, f, &b, &l);
		free(f);
		t = router_topology_acquire(r, NULL, NULL);
		rv = records_query(r, t, PROTO_SPARSE_SEARCH, rv, b, l,
		    router_by_distance, p->offset, p->limit, out);
		router_topology_release(r, t);
	}
	vdb_free(df);
	vdb_free(w);
	return rv;
}

void
router_query_ops_init(struct api_backend *b)
{
	b->search = cl_search;
	b->recommend = cl_recommend;
	b->discover = cl_discover;
	b->scroll = cl_scroll;
	b->count = cl_count;
	b->search_sparse = cl_search_sparse;
	b->sparse_stats = cl_sparse_stats;
}
