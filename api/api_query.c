/*
 * api_query.c: the read handlers that rank or page points: search, batch
 * search, recommend, discover, scroll, count.
 */
#include <stdio.h>
#include <stdlib.h>

#include "api_impl.h"

#define SEG_COLL 1
#define EXAMPLES_MAX 1024

/* A filter field: absent/null, or an object. */
static int
filter_field(const json_t *body, const json_t **out)
{
	json_t *f = json_object_get(body, "filter");

	*out = NULL;
	if (f == NULL || json_is_null(f))
		return VECDB_OK;
	if (!json_is_object(f))
		return vdb_err(VECDB_EINVAL, "'filter' must be an object");
	/* payload integers are signed: one above INT64_MAX matches none */
	if (api_json_check_int64(f, "filter") != VECDB_OK)
		return VECDB_EINVAL;
	*out = f;
	return VECDB_OK;
}

/* Record a query's latency and count. */
static void
query_done(struct api_req *r, double t0, size_t n)
{
	struct api_metrics *m = api_server_metrics(r->srv);

	api_metrics_observe(m, API_H_QUERY, vdb_now_s() - t0);
	api_metrics_add_queries(m, n);
}

/* A nested object's path in the body, for messages: "params" or
 * "searches[2].params". */
static const char *
path_of(char *buf, size_t len, const char *where, const char *key)
{
	if (where == NULL || *where == '\0')
		return key;
	snprintf(buf, len, "%s.%s", where, key);
	return buf;
}

/*
 * Qdrant's `params.quantization {ignore, rescore, oversampling}` on a
 * quantized collection: rank on the original vectors only, answer with
 * the codes' distances (rescore false), rescore oversampling x limit
 * candidates. The engine would take an oversampling of 0.5 or NaN as 1
 * and cap 1000 at ef's limit: refused here instead.
 */
static int
quant_params_from_json(const json_t *params, const char *where,
    vecdb_search_params *p)
{
	static const char *const keys[] = { "ignore", "rescore",
		"oversampling", NULL };
	json_t *q = json_object_get(params, "quantization"), *o;
	const char *path;
	char buf[64];
	int rescore, rv;

	if (q == NULL || json_is_null(q))
		return VECDB_OK;
	path = path_of(buf, sizeof(buf), where, "params.quantization");
	if (!json_is_object(q))
		return vdb_err(VECDB_EINVAL, "'%s' must be an object", path);
	if ((rv = api_check_keys(q, keys, path)) != VECDB_OK ||
	    (rv = api_get_bool(q, "ignore", 0, &p->quant_ignore)) ||
	    (rv = api_get_bool(q, "rescore", 1, &rescore)))
		return rv;
	if (p->quant_ignore && !rescore)
		return vdb_err(VECDB_EINVAL, "%s: ignore (rank on the original "
		    "vectors) and rescore false (answer with the codes) "
		    "contradict each other", path);
	p->quant_no_rescore = !rescore;
	o = json_object_get(q, "oversampling");
	if (o == NULL || json_is_null(o))
		return VECDB_OK;
	if (!json_is_number(o) || !(json_number_value(o) >= 1 &&
	    json_number_value(o) <= VECDB_OVERSAMPLING_MAX))
		return vdb_err(VECDB_EINVAL, "%s.oversampling must be between "
		    "1 and %g", path, (double) VECDB_OVERSAMPLING_MAX);
	p->oversampling = (float) json_number_value(o);
	return VECDB_OK;
}

/*
 * `exact: true` (or Qdrant's `params: {exact, hnsw_ef}`) asks for an exact
 * search instead of the index; hnsw_ef overrides ef_search;
 * params.quantization steers a quantized index.
 */
static int
search_params_from_json(const json_t *o, const char *where,
    vecdb_search_params *p, uint64_t *ef)
{
	static const char *const keys[] = { "exact", "hnsw_ef",
		"quantization", NULL };
	json_t *params = json_object_get(o, "params");
	char path[48];
	int rv;

	if ((rv = api_get_bool(o, "exact", 0, &p->exact)) != VECDB_OK)
		return rv;
	if (params == NULL || json_is_null(params))
		return VECDB_OK;
	if (!json_is_object(params))
		return vdb_err(VECDB_EINVAL, "'params' must be an object");
	if ((rv = api_check_keys(params, keys, path_of(path, sizeof(path),
	    where, "params"))) != VECDB_OK ||
	    (rv = quant_params_from_json(params, where, p)) != VECDB_OK)
		return rv;
	if (json_object_get(params, "exact") != NULL &&
	    (rv = api_get_bool(params, "exact", 0, &p->exact)) != VECDB_OK)
		return rv;
	if (json_object_get(params, "hnsw_ef") != NULL)
		return api_get_uint(params, "hnsw_ef", *ef, 1,
		    VECDB_HNSW_EF_MAX, ef);
	return VECDB_OK;
}

/*
 * The fields of one search object: the body itself (where NULL) or one
 * of a batch (where "", the caller names it); the vector is owned by
 * *vec.
 */
static int
search_from_json(const json_t *o, const char *where, struct api_search *s,
    float **vec, int *with_payload)
{
	static const char *const keys[] = { "vector", "limit", "offset",
		"ef_search", "exact", "params", "filter", "with_vector",
		"with_vectors", "with_payload", "using", NULL };
	uint64_t limit, offset, ef;
	int rv;

	memset(s, 0, sizeof(*s));
	*vec = NULL;
	if (!json_is_object(o))
		return vdb_err(VECDB_EINVAL, "a search must be an object");
	if ((rv = api_check_keys(o, keys, where)) != VECDB_OK)
		return rv;
	if (json_object_get(o, "vector") == NULL)
		return vdb_err(VECDB_EINVAL, "'vector' is required");
	if ((rv = api_vector_from_json(json_object_get(o, "vector"), "vector",
		 vec, &s->p.dim)) != VECDB_OK)
		return rv;
	s->p.vector = *vec;
	if ((rv = api_get_uint(o, "limit", 10, 1, VECDB_LIMIT_MAX, &limit)) ||
	    (rv = api_get_uint(o, "offset", 0, 0, VECDB_LIMIT_MAX, &offset)) ||
	    (rv = api_get_uint(o, "ef_search", 0, 0, VECDB_HNSW_EF_MAX, &ef)) ||
	    (rv = api_get_bool(o, "with_vector", 0, &s->p.with_vector)) ||
	    (rv = api_get_bool(o, "with_payload", 1, with_payload)) ||
	    (rv = api_get_string(o, "using", 0, &s->p.using)) ||
	    (rv = filter_field(o, &s->filter)))
		return rv;
	if (json_object_get(o, "with_vectors") != NULL &&
	    (rv = api_get_bool(o, "with_vectors", 0, &s->p.with_vector)) != 0)
		return rv;
	if ((rv = search_params_from_json(o, where, &s->p, &ef)) != VECDB_OK)
		return rv;
	s->p.limit = (uint32_t) limit;
	s->p.offset = (uint32_t) offset;
	s->p.ef_search = (uint32_t) ef;
	s->p.with_payload = 1; /* metadata is part of every hit */
	return VECDB_OK;
}

/* ===== Sparse and hybrid search ===== */

/* {"using": name, "indices": [...], "values": [...]} at what into v (its
 * arrays the caller's to free, even on failure). */
static int
sparse_query_from_json(const json_t *o, const char *what,
    vecdb_sparse_vector *v)
{
	static const char *const keys[] = { "using", "indices", "values",
		NULL };
	json_t *u = json_object_get(o, "using"), *pairs;
	char where[64];
	int rv;

	memset(v, 0, sizeof(*v));
	if (!json_is_object(o))
		return vdb_err(VECDB_EINVAL, "'%s' must be an object {\"using\", "
		    "\"indices\", \"values\"}", what);
	if ((rv = api_check_keys(o, keys, what)) != VECDB_OK)
		return rv;
	if (!json_is_string(u))
		return vdb_err(VECDB_EINVAL, "'%s.using' must name a sparse "
		    "vector of the collection", what);
	/* the pairs without "using", checked as a point's are */
	if ((pairs = json_copy((json_t *) o)) == NULL)
		return vdb_err(VECDB_ENOMEM, "out of memory");
	json_object_del(pairs, "using");
	snprintf(where, sizeof(where), "%s", what);
	rv = api_sparse_vector_from_json(pairs, json_string_value(u), where,
	    v);
	json_decref(pairs);
	if (rv == VECDB_OK && v->remove)
		rv = vdb_err(VECDB_EINVAL, "'%s' must be an object", what);
	return rv;
}

static void
sparse_query_free(vecdb_sparse_vector *v)
{
	vdb_free((void *) (uintptr_t) v->indices);
	vdb_free((void *) (uintptr_t) v->values);
}

/* What hits carry: with_vector (or with_vectors), with_payload, and
 * the filter. */
static int
hit_options(const json_t *body, int *wp, int *wv, const json_t **filter)
{
	int rv;

	*wv = 0;
	if ((rv = api_get_bool(body, "with_vector", 0, wv)) ||
	    (rv = api_get_bool(body, "with_payload", 1, wp)) ||
	    (rv = filter_field(body, filter)))
		return rv;
	if (json_object_get(body, "with_vectors") != NULL)
		return api_get_bool(body, "with_vectors", 0, wv);
	return VECDB_OK;
}

/* A sparse search described by body ("sparse_vector"): hits by
 * descending score into *out. */
static int
sparse_run(struct api_req *r, const json_t *body, vecdb_records **out,
    int *wp, int *wv)
{
	static const char *const keys[] = { "sparse_vector", "limit",
		"offset", "filter", "with_vector", "with_vectors",
		"with_payload", NULL };
	vecdb_sparse_search_params p;
	vecdb_sparse_vector v;
	const json_t *filter;
	double t0 = vdb_now_s();
	uint64_t limit, offset;
	int rv;

	memset(&p, 0, sizeof(p));
	if (json_object_get(body, "vector") != NULL)
		return vdb_err(VECDB_EINVAL, "give 'vector' or 'sparse_vector', "
		    "not both (POST /collections/:c/search/hybrid fuses "
		    "the two)");
	if ((rv = api_check_keys(body, keys, NULL)) != VECDB_OK ||
	    (rv = api_get_uint(body, "limit", 10, 1, VECDB_LIMIT_MAX,
		 &limit)) ||
	    (rv = api_get_uint(body, "offset", 0, 0, VECDB_LIMIT_MAX,
		 &offset)) ||
	    (rv = hit_options(body, wp, wv, &filter)))
		return rv;
	if (r->b->search_sparse == NULL)
		return vdb_err(VECDB_EINVAL, "this server has no sparse "
		    "search");
	if ((rv = sparse_query_from_json(json_object_get(body,
	    "sparse_vector"), "sparse_vector", &v)) == VECDB_OK) {
		p.name = v.name;
		p.indices = v.indices;
		p.values = v.values;
		p.n = v.n;
		p.limit = (uint32_t) limit;
		p.offset = (uint32_t) offset;
		p.with_payload = *wp;
		p.with_vector = *wv;
		rv = r->b->search_sparse(r->b->ctx, r->segs[SEG_COLL], &p,
		    filter, out);
	}
	sparse_query_free(&v);
	if (rv == VECDB_OK)
		query_done(r, t0, 1);
	return rv;
}

static const char *const fusions[] = { "rrf", "relative_score", "dbsf" };

/* The hybrid body's numbers: fusion, limits, alpha, rrf_k. */
static int
fusion_from_json(const json_t *b, vecdb_fusion_params *fp,
    uint32_t *prefetch)
{
	json_t *x;
	uint64_t limit, pre;
	int rv, i;

	vecdb_fusion_params_init(fp);
	if ((x = json_object_get(b, "fusion")) != NULL && !json_is_null(x)) {
		for (i = 0; i < 3 && !(json_is_string(x) &&
		    strcmp(json_string_value(x), fusions[i]) == 0); i++)
			;
		if (i == 3)
			return vdb_err(VECDB_EINVAL, "'fusion' must be rrf, "
			    "relative_score or dbsf");
		fp->method = (vecdb_fusion) i;
	}
	if ((rv = api_get_uint(b, "limit", 10, 1, VECDB_LIMIT_MAX, &limit)))
		return rv;
	if ((rv = api_get_uint(b, "prefetch_limit", limit > 100 ? limit : 100,
	    1, VECDB_LIMIT_MAX, &pre)))
		return rv;
	fp->limit = (uint32_t) limit;
	*prefetch = (uint32_t) pre;
	if ((x = json_object_get(b, "alpha")) != NULL) {
		if (!json_is_number(x) || !(json_number_value(x) >= 0 &&
		    json_number_value(x) <= 1))
			return vdb_err(VECDB_EINVAL, "'alpha' must be a number "
			    "in [0, 1]");
		fp->alpha = (float) json_number_value(x);
	}
	if ((x = json_object_get(b, "rrf_k")) != NULL) {
		if (!json_is_number(x) || !(json_number_value(x) >= 0 &&
		    json_number_value(x) <= 1e9))
			return vdb_err(VECDB_EINVAL, "'rrf_k' must be a number "
			    ">= 0");
		fp->rrf_k = (float) json_number_value(x);
	}
	return VECDB_OK;
}

/* The dense side: {"vector": [...], "using"?: a named dense vector}. */
static int
dense_from_json(const json_t *d, float **vec, uint32_t *dim,
    const char **using)
{
	static const char *const keys[] = { "vector", "using", NULL };
	int rv;

	if (!json_is_object(d))
		return vdb_err(VECDB_EINVAL, "'dense' must be an object "
		    "{\"vector\": [...]}");
	if ((rv = api_check_keys(d, keys, "dense")) != VECDB_OK ||
	    (rv = api_get_string(d, "using", 0, using)) != VECDB_OK)
		return rv;
	if (json_object_get(d, "vector") == NULL)
		return vdb_err(VECDB_EINVAL, "'dense.vector' is required");
	return api_vector_from_json(json_object_get(d, "vector"),
	    "dense.vector", vec, dim);
}

int
api_h_search_hybrid(struct api_req *r, json_t **data)
{
	static const char *const keys[] = { "dense", "sparse", "fusion",
		"limit", "prefetch_limit", "alpha", "rrf_k", "filter",
		"with_payload", "with_vector", "with_vectors", NULL };
	const char *coll = r->segs[SEG_COLL];
	vecdb_collection_config cfg;
	vecdb_collection_stats st;
	vecdb_fusion_params fp;
	vecdb_sparse_search_params sp;
	vecdb_sparse_vector v;
	struct api_search s;
	vecdb_records **dres = NULL, *sres = NULL, *fused = NULL;
	const json_t *filter;
	double t0 = vdb_now_s();
	uint32_t prefetch = 0;
	vecdb_metric metric;
	float *vec = NULL;
	int rv, wp, wv;

	memset(&v, 0, sizeof(v));
	memset(&s, 0, sizeof(s));
	if ((rv = api_check_keys(r->body, keys, NULL)) != VECDB_OK ||
	    (rv = fusion_from_json(r->body, &fp, &prefetch)) != VECDB_OK ||
	    (rv = hit_options(r->body, &wp, &wv, &filter)))
		return rv;
	if (json_object_get(r->body, "dense") == NULL ||
	    json_object_get(r->body, "sparse") == NULL)
		return vdb_err(VECDB_EINVAL, "a hybrid search needs 'dense' "
		    "and 'sparse'");
	if (r->b->search_sparse == NULL)
		return vdb_err(VECDB_EINVAL, "this server has no sparse "
		    "search");
	if ((rv = dense_from_json(json_object_get(r->body, "dense"), &vec,
	    &s.p.dim, &s.p.using)) != VECDB_OK ||
	    (rv = sparse_query_from_json(json_object_get(r->body, "sparse"),
	    "sparse", &v)) != VECDB_OK ||
	    (rv = r->b->collection_get(r->b->ctx, coll, &cfg, &st)) !=
	    VECDB_OK)
		goto out;
	/* each side's best prefetch, with the filter */
	s.p.vector = vec;
	s.p.limit = prefetch;
	s.p.with_payload = wp;
	s.p.with_vector = wv;
	s.filter = filter;
	memset(&sp, 0, sizeof(sp));
	sp.name = v.name;
	sp.indices = v.indices;
	sp.values = v.values;
	sp.n = v.n;
	sp.limit = prefetch;
	sp.with_payload = wp;
	sp.with_vector = wv;
	if ((rv = r->b->search(r->b->ctx, coll, &s, 1, &dres)) != VECDB_OK ||
	    (rv = r->b->search_sparse(r->b->ctx, coll, &sp, filter,
		 &sres)) != VECDB_OK)
		goto out;
	/* the dense side as a similarity: higher is better */
	metric = cfg.metric;
	for (uint32_t i = 0; s.p.using != NULL && i < cfg.n_vectors; i++)
		if (strcmp(cfg.vectors[i].name, s.p.using) == 0)
			metric = cfg.vectors[i].metric;
	for (size_t i = 0; i < dres[0]->count; i++) {
		vecdb_record *x = &dres[0]->items[i];

		x->score = metric == VECDB_COSINE ? 1 - x->distance :
		    -x->distance;
	}
	if ((rv = vecdb_fuse(dres[0], sres, &fp, &fused)) != VECDB_OK)
		goto out;
	*data = api_scored_hits_to_json(fused, wp, wv);
	query_done(r, t0, 1);
out:
	if (dres != NULL)
		vecdb_records_free_array(dres, 1);
	vecdb_records_free(sres);
	vecdb_records_free(fused);
	sparse_query_free(&v);
	vdb_free(vec);
	return rv;
}

/* One dense or sparse search described by body into *out. */
static int
search_run(struct api_req *r, const json_t *body, vecdb_records **out,
    int *wp, int *wv)
{
	struct api_search s;
	vecdb_records **res;
	double t0 = vdb_now_s();
	float *vec;
	int rv;

	if (json_object_get(body, "sparse_vector") != NULL)
		return sparse_run(r, body, out, wp, wv);
	if ((rv = search_from_json(body, NULL, &s, &vec, wp)) == VECDB_OK &&
	    (rv = r->b->search(r->b->ctx, r->segs[SEG_COLL], &s, 1,
		 &res)) == VECDB_OK) {
		*out = res[0];
		res[0] = NULL;
		vecdb_records_free_array(res, 1);
		query_done(r, t0, 1);
	}
	*wv = s.p.with_vector;
	vdb_free(vec);
	return rv;
}

int
api_h_search(struct api_req *r, json_t **data)
{
	vecdb_records *res;
	int rv, wp, wv, sparse = json_object_get(r->body, "sparse_vector") !=
	    NULL;

	if ((rv = search_run(r, r->body, &res, &wp, &wv)) != VECDB_OK)
		return rv;
	*data = sparse ? api_scored_hits_to_json(res, wp, wv) :
	    api_hits_to_json(res, wp, wv);
	vecdb_records_free(res);
	return VECDB_OK;
}

/* Free the vectors of a parsed batch. */
static void
batch_free(struct api_search *s, float **vecs, int *wp, size_t n)
{
	for (size_t i = 0; vecs != NULL && i < n; i++)
		vdb_free(vecs[i]);
	vdb_free(vecs);
	vdb_free(s);
	vdb_free(wp);
}

/* Prefix the thread's message with the index of the failing search. */
static int
batch_err(int rv, size_t i)
{
	char msg[512];

	vdb_err_save(msg, sizeof(msg));
	return vdb_err(rv, "searches[%zu]: %s", i, msg);
}

int
api_h_search_batch(struct api_req *r, json_t **data)
{
	static const char *const keys[] = { "searches", NULL };
	struct api_search *s = NULL;
	vecdb_records **res;
	float **vecs = NULL;
	double t0 = vdb_now_s();
	size_t n = 0;
	json_t *arr;
	int rv, *wp = NULL;

	if ((rv = api_check_keys(r->body, keys, NULL)) != VECDB_OK ||
	    (rv = api_get_array(r->body, "searches", 1, 1024, &arr)) !=
	    VECDB_OK)
		return rv;
	n = json_array_size(arr);
	s = vdb_calloc(n ? n : 1, sizeof(*s));
	vecs = vdb_calloc(n ? n : 1, sizeof(*vecs));
	wp = vdb_calloc(n ? n : 1, sizeof(*wp));
	if (s == NULL || vecs == NULL || wp == NULL)
		rv = vdb_err(VECDB_ENOMEM, "out of memory");
	for (size_t i = 0; rv == VECDB_OK && i < n; i++)
		if ((rv = search_from_json(json_array_get(arr, i), "", &s[i],
			 &vecs[i], &wp[i])) != VECDB_OK)
			rv = batch_err(rv, i);
	if (rv == VECDB_OK && n > 0 &&
	    (rv = r->b->search(r->b->ctx, r->segs[SEG_COLL], s, n,
		 &res)) == VECDB_OK) {
		*data = json_array();
		for (size_t i = 0; i < n; i++)
			json_array_append_new(*data, api_hits_to_json(res[i],
			    wp[i], s[i].p.with_vector));
		vecdb_records_free_array(res, n);
		query_done(r, t0, n);
	} else if (rv == VECDB_OK) {
		*data = json_array();
	}
	batch_free(s, vecs, wp, n);
	return rv;
}

/* ===== Recommend and discover ===== */

/* Examples given as ids and as raw vectors. */
struct examples {
	vecdb_id *ids;
	size_t n_ids;
	float *vecs;        /* row-major, dim each */
	size_t n_vecs;
};

/* Free what examples_add allocated. */
static void
examples_free(struct examples *e)
{
	vdb_free(e->ids);
	vdb_free(e->vecs);
	memset(e, 0, sizeof(*e));
}

/* Append one vector example (all examples share one dimension). */
static int
example_vec_add(struct examples *e, const float *v, uint32_t d, uint32_t *dim)
{
	float *nv;

	if (*dim != 0 && d != *dim)
		return vdb_err(VECDB_EDIM, "example vectors differ in "
		    "dimension (%u and %u)", *dim, d);
	*dim = d;
	if ((nv = vdb_realloc(e->vecs, (e->n_vecs + 1) * d *
		 sizeof(float))) == NULL)
		return vdb_err(VECDB_ENOMEM, "out of memory");
	e->vecs = nv;
	memcpy(e->vecs + e->n_vecs * d, v, d * sizeof(float));
	e->n_vecs++;
	return VECDB_OK;
}

/* Append one id example. */
static int
example_id_add(struct examples *e, const vecdb_id *id)
{
	vecdb_id *ni;

	if ((ni = vdb_realloc(e->ids, (e->n_ids + 1) * sizeof(*ni))) == NULL)
		return vdb_err(VECDB_ENOMEM, "out of memory");
	e->ids = ni;
	e->ids[e->n_ids++] = *id;
	return VECDB_OK;
}

/* Append one example: an id or a vector. */
static int
example_add(struct examples *e, const json_t *x, const char *where,
    uint32_t *dim)
{
	vecdb_id id;
	float *v;
	uint32_t d;
	int rv;

	if (json_is_array(x)) {
		if ((rv = api_vector_from_json(x, where, &v, &d)) != VECDB_OK)
			return rv;
		rv = example_vec_add(e, v, d, dim);
		vdb_free(v);
		return rv;
	}
	if ((rv = api_id_from_json(x, where, &id)) != VECDB_OK)
		return rv;
	return example_id_add(e, &id);
}

/* A list of examples (ids or vectors) from field @p key. */
static int
examples_from_json(const json_t *body, const char *key, struct examples *e,
    uint32_t *dim)
{
	char where[48];
	json_t *arr, *x;
	size_t i;
	int rv;

	memset(e, 0, sizeof(*e));
	if ((rv = api_get_array(body, key, 0, EXAMPLES_MAX, &arr)) != VECDB_OK)
		return rv;
	json_array_foreach(arr, i, x) {
		snprintf(where, sizeof(where), "%s[%zu]", key, i);
		if ((rv = example_add(e, x, where, dim)) != VECDB_OK) {
			examples_free(e);
			return rv;
		}
	}
	return VECDB_OK;
}

/* The paging and output fields shared by recommend and discover. */
static int
paging_from_json(const json_t *b, uint32_t *limit, uint32_t *offset,
    int *with_vector)
{
	uint64_t l, o;
	int rv;

	if ((rv = api_get_uint(b, "limit", 10, 1, VECDB_LIMIT_MAX, &l)) ||
	    (rv = api_get_uint(b, "offset", 0, 0, VECDB_LIMIT_MAX, &o)) ||
	    (rv = api_get_bool(b, "with_vector", 0, with_vector)))
		return rv;
	*limit = (uint32_t) l;
	*offset = (uint32_t) o;
	return VECDB_OK;
}

/* strategy: "average_vector" (default) or "best_score". */
static int
strategy_from_json(const json_t *b, vecdb_reco_strategy *out)
{
	const char *s;
	int rv;

	if ((rv = api_get_string(b, "strategy", 0, &s)) != VECDB_OK)
		return rv;
	if (s == NULL || strcmp(s, "average_vector") == 0)
		*out = VECDB_RECO_AVERAGE_VECTOR;
	else if (strcmp(s, "best_score") == 0)
		*out = VECDB_RECO_BEST_SCORE;
	else
		return vdb_err(VECDB_EINVAL, "unknown strategy '%.32s' "
		    "(expected average_vector or best_score)", s);
	return VECDB_OK;
}

/* A recommendation described by body into *out. */
static int
recommend_run(struct api_req *r, const json_t *body, vecdb_records **out,
    int *wv)
{
	static const char *const keys[] = { "positive", "negative",
		"strategy", "limit", "offset", "filter", "with_vector", "using",
		NULL };
	struct examples pos, neg = { 0 };
	vecdb_recommend_params p;
	const json_t *filter;
	double t0 = vdb_now_s();
	int rv;

	memset(&p, 0, sizeof(p));
	if ((rv = api_check_keys(body, keys, NULL)) != VECDB_OK ||
	    (rv = examples_from_json(body, "positive", &pos, &p.dim)) != 0)
		return rv;
	if ((rv = examples_from_json(body, "negative", &neg, &p.dim)) ||
	    (rv = strategy_from_json(body, &p.strategy)) ||
	    (rv = paging_from_json(body, &p.limit, &p.offset,
		 &p.with_vector)) ||
	    (rv = api_get_string(body, "using", 0, &p.using)) ||
	    (rv = filter_field(body, &filter)))
		goto out;
	p.positive = pos.ids;
	p.n_positive = pos.n_ids;
	p.positive_vectors = pos.vecs;
	p.n_positive_vectors = pos.n_vecs;
	p.negative = neg.ids;
	p.n_negative = neg.n_ids;
	p.negative_vectors = neg.vecs;
	p.n_negative_vectors = neg.n_vecs;
	p.with_payload = 1;
	*wv = p.with_vector;
	rv = r->b->recommend(r->b->ctx, r->segs[SEG_COLL], &p, filter, out);
	if (rv == VECDB_OK)
		query_done(r, t0, 1);
out:
	examples_free(&pos);
	examples_free(&neg);
	return rv;
}

int
api_h_recommend(struct api_req *r, json_t **data)
{
	vecdb_records *res;
	int rv, wv;

	if ((rv = recommend_run(r, r->body, &res, &wv)) != VECDB_OK)
		return rv;
	*data = api_hits_to_json(res, 1, wv);
	vecdb_records_free(res);
	return VECDB_OK;
}

/*
 * The vector of a discover example, given or that of the point it names
 * (*id; kind NONE for a given vector): a new *out of *d floats, written
 * only on success.
 */
static int
member_fetch(struct api_req *r, const json_t *x, const char *where,
    const char *using, float **out, uint32_t *d, vecdb_id *id)
{
	vecdb_record *rec;
	float **from = NULL;
	int rv;

	id->kind = VECDB_ID_NONE;
	if (json_is_array(x))
		return api_vector_from_json(x, where, out, d);
	if ((rv = api_id_from_json(x, where, id)) != VECDB_OK ||
	    (rv = r->b->get(r->b->ctx, r->segs[SEG_COLL], id, &rec)) !=
	    VECDB_OK)
		return rv;
	if (using == NULL || using[0] == '\0') {
		from = &rec->vector;
		*d = rec->dim;
	}
	for (size_t i = 0; from == NULL && i < rec->n_named; i++)
		if (strcmp(rec->named[i].name, using) == 0) {
			from = &rec->named[i].data;
			*d = rec->named[i].dim;
		}
	if (from == NULL || *from == NULL) {
		vecdb_record_free(rec);
		return vdb_err(VECDB_EINVAL, "%s: the point has no vector%s%s%s",
		    where, using ? " '" : "", using ? using : "",
		    using ? "'" : "");
	}
	*out = *from;
	*from = NULL; /* taken */
	vecdb_record_free(rec);
	return VECDB_OK;
}

/*
 * A discover example that must be a vector, of dimension *dim when that
 * is set. A point given by id is added to @p fetched (excluded from the
 * answer). On success *out is a new vector the caller frees; on failure
 * *out is left alone and nothing is kept.
 */
static int
member_vector(struct api_req *r, const json_t *x, const char *where,
    const char *using, float **out, uint32_t *dim,
    struct examples *fetched)
{
	vecdb_id id;
	float *v;
	uint32_t d;
	int rv;

	if ((rv = member_fetch(r, x, where, using, &v, &d, &id)) !=
	    VECDB_OK)
		return rv;
	if (*dim != 0 && d != *dim)
		rv = vdb_err(VECDB_EDIM, "%s has %u dimensions, earlier "
		    "examples %u", where, d, *dim);
	else if (id.kind != VECDB_ID_NONE)
		rv = example_id_add(fetched, &id);
	if (rv != VECDB_OK) {
		vdb_free(v);
		return rv;
	}
	*dim = d;
	*out = v;
	return VECDB_OK;
}

/* Discover's parsed examples. */
struct disc {
	vecdb_context_pair *pairs;   /* pairs given by two ids */
	size_t n_pairs;
	struct examples cvecs;       /* pairs given as vectors (2 rows) */
	struct examples fetched;     /* ids fetched to make vectors */
	float *target;
	const char *using;           /* the named vector compared by */
};

/* One context pair: both ids, else both as vectors. */
static int
pair_add(struct api_req *r, const json_t *o, size_t i, struct disc *d,
    uint32_t *dim)
{
	static const char *const keys[] = { "positive", "negative", NULL };
	json_t *pj = json_object_get(o, "positive");
	json_t *nj = json_object_get(o, "negative");
	char where[48];
	float *pv = NULL, *nv = NULL;
	int rv;

	if (!json_is_object(o) || pj == NULL || nj == NULL)
		return vdb_err(VECDB_EINVAL, "context[%zu] must be {positive, "
		    "negative}", i);
	snprintf(where, sizeof(where), "context[%zu]", i);
	if ((rv = api_check_keys(o, keys, where)) != VECDB_OK)
		return rv;
	if (!json_is_array(pj) && !json_is_array(nj)) {
		vecdb_context_pair *cp = &d->pairs[d->n_pairs];
		if ((rv = api_id_from_json(pj, where, &cp->positive)) ||
		    (rv = api_id_from_json(nj, where, &cp->negative)))
			return rv;
		d->n_pairs++;
		return VECDB_OK;
	}
	/* pv and nv are ours from here; member_vector sets them only on
	 * success */
	snprintf(where, sizeof(where), "context[%zu].positive", i);
	rv = member_vector(r, pj, where, d->using, &pv, dim, &d->fetched);
	snprintf(where, sizeof(where), "context[%zu].negative", i);
	if (rv == VECDB_OK)
		rv = member_vector(r, nj, where, d->using, &nv, dim,
		    &d->fetched);
	if (rv == VECDB_OK)
		rv = example_vec_add(&d->cvecs, pv, *dim, dim);
	if (rv == VECDB_OK)
		rv = example_vec_add(&d->cvecs, nv, *dim, dim);
	vdb_free(pv);
	vdb_free(nv);
	return rv;
}

/* target (id or vector, optional) and context into p. */
static int
discover_from_json(struct api_req *r, const json_t *body,
    vecdb_discover_params *p, struct disc *d)
{
	static const char *const keys[] = { "target", "context", "limit",
		"offset", "filter", "with_vector", "using", NULL };
	json_t *t = json_object_get(body, "target"), *arr, *o;
	size_t i;
	int rv;

	if ((rv = api_check_keys(body, keys, NULL)) != VECDB_OK ||
	    (rv = api_get_string(body, "using", 0, &d->using)) !=
		VECDB_OK ||
	    (rv = api_get_array(body, "context", 0, EXAMPLES_MAX,
		 &arr)) != VECDB_OK)
		return rv;
	p->using = d->using;
	if ((d->pairs = vdb_calloc(json_array_size(arr) + 1,
		 sizeof(*d->pairs))) == NULL)
		return vdb_err(VECDB_ENOMEM, "out of memory");
	json_array_foreach(arr, i, o)
		if ((rv = pair_add(r, o, i, d, &p->dim)) != VECDB_OK)
			return rv;
	if (t != NULL && !json_is_null(t)) {
		p->has_target = 1;
		if (json_is_array(t)) {
			uint32_t td;
			if ((rv = api_vector_from_json(t, "target", &d->target,
				 &td)) != VECDB_OK)
				return rv;
			if (p->dim != 0 && td != p->dim)
				return vdb_err(VECDB_EDIM, "target has %u "
				    "dimensions, the context %u", td, p->dim);
			p->dim = td;
			p->target_vector = d->target;
		} else if ((rv = api_id_from_json(t, "target",
				&p->target)) != VECDB_OK) {
			return rv;
		}
	}
	p->context = d->pairs;
	p->n_context = d->n_pairs;
	p->context_vectors = d->cvecs.vecs;
	p->n_context_vectors = d->cvecs.n_vecs / 2;
	p->exclude = d->fetched.ids;
	p->n_exclude = d->fetched.n_ids;
	return VECDB_OK;
}

/* A discovery described by body into *out. */
static int
discover_run(struct api_req *r, const json_t *body, vecdb_records **out,
    int *wv)
{
	vecdb_discover_params p;
	struct disc d;
	const json_t *filter;
	double t0 = vdb_now_s();
	int rv;

	memset(&p, 0, sizeof(p));
	memset(&d, 0, sizeof(d));
	if ((rv = discover_from_json(r, body, &p, &d)) == VECDB_OK &&
	    (rv = paging_from_json(body, &p.limit, &p.offset,
		 &p.with_vector)) == VECDB_OK &&
	    (rv = filter_field(body, &filter)) == VECDB_OK) {
		p.with_payload = 1;
		*wv = p.with_vector;
		rv = r->b->discover(r->b->ctx, r->segs[SEG_COLL], &p, filter,
		    out);
		if (rv == VECDB_OK)
			query_done(r, t0, 1);
	}
	vdb_free(d.pairs);
	vdb_free(d.target);
	examples_free(&d.cvecs);
	examples_free(&d.fetched);
	return rv;
}

int
api_h_discover(struct api_req *r, json_t **data)
{
	vecdb_records *res;
	int rv, wv;

	if ((rv = discover_run(r, r->body, &res, &wv)) != VECDB_OK)
		return rv;
	*data = api_hits_to_json(res, 1, wv);
	vecdb_records_free(res);
	return VECDB_OK;
}

int
api_query_run(struct api_req *r, enum api_query q, const json_t *body,
    vecdb_records **out)
{
	int wp, wv;

	*out = NULL;
	switch (q) {
	case API_Q_SEARCH: return search_run(r, body, out, &wp, &wv);
	case API_Q_RECOMMEND: return recommend_run(r, body, out, &wv);
	case API_Q_DISCOVER: return discover_run(r, body, out, &wv);
	}
	return vdb_err(VECDB_EINVAL, "unknown query");
}

int
api_filter_field(const json_t *body, const json_t **out)
{
	return filter_field(body, out);
}

/* ===== Scroll and count ===== */

/* Scroll points as [{id, score: null, payload?, vector?}]. */
static json_t *
scroll_points(const vecdb_records *res)
{
	json_t *a = json_array();

	for (size_t i = 0; i < res->count; i++) {
		const vecdb_record *x = &res->items[i];
		json_t *o = json_pack("{s:o, s:n}", "id", api_id_to_json(&x->id),
		    "score");
		if (x->payload != NULL)
			json_object_set_new(o, "payload",
			    api_json_raw(x->payload));
		if (x->vector != NULL)
			json_object_set_new(o, "vector",
			    api_vector_to_json(x->vector, x->dim));
		if (x->n_sparse + x->n_named > 0)
			json_object_set_new(o, "vectors",
			    api_sparse_to_json(x));
		json_array_append_new(a, o);
	}
	return a;
}

int
api_h_scroll(struct api_req *r, json_t **data)
{
	static const char *const keys[] = { "limit", "offset", "with_vectors",
		"with_vector", "with_payload", "filter", NULL };
	vecdb_id start = { VECDB_ID_NONE, 0, { 0 } };
	json_t *off = json_object_get(r->body, "offset");
	const json_t *filter;
	vecdb_records *res;
	uint64_t limit;
	int rv, wv, wv2, wp;

	if ((rv = api_check_keys(r->body, keys, NULL)) ||
	    (rv = api_get_uint(r->body, "limit", 10, 1, VECDB_LIMIT_MAX,
		 &limit)) ||
	    (rv = api_get_bool(r->body, "with_vectors", 0, &wv)) ||
	    (rv = api_get_bool(r->body, "with_vector", 0, &wv2)) ||
	    (rv = api_get_bool(r->body, "with_payload", 1, &wp)) ||
	    (rv = filter_field(r->body, &filter)))
		return rv;
	if (off != NULL && !json_is_null(off) &&
	    (rv = api_id_from_json(off, "offset", &start)) != VECDB_OK)
		return rv;
	if ((rv = r->b->scroll(r->b->ctx, r->segs[SEG_COLL], &start,
		 (uint32_t) limit, filter, wp, wv || wv2, &res)) != VECDB_OK)
		return rv;
	*data = json_pack("{s:o, s:o}", "points", scroll_points(res),
	    "next_offset", res->has_next ? api_id_to_json(&res->next) :
					   json_null());
	vecdb_records_free(res);
	return VECDB_OK;
}

int
api_h_count(struct api_req *r, json_t **data)
{
	static const char *const keys[] = { "filter", "exact", NULL };
	const json_t *filter;
	uint64_t n;
	int rv, exact;

	if ((rv = api_check_keys(r->body, keys, NULL)) ||
	    (rv = filter_field(r->body, &filter)) ||
	    (rv = api_get_bool(r->body, "exact", 1, &exact)) ||
	    (rv = r->b->count(r->b->ctx, r->segs[SEG_COLL], filter, &n)))
		return rv;
	*data = json_pack("{s:I}", "count", (json_int_t) n);
	return VECDB_OK;
}
