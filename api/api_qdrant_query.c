/*
 * api_qdrant_query.c: Qdrant's search routes: the universal query
 * (/points/query and its batch), the legacy search, recommend and
 * discover that older clients call, scroll and count.
 *
 * A query is translated into the native front end's body (api_query.c)
 * and run there; what it returns is scored as Qdrant scores: cosine and
 * dot as the similarity (higher first), Euclid and Manhattan as the
 * distance (lower first), sparse and fused rankings by their score.
 * Fusion (rrf, dbsf) runs the prefetches and fuses them with vecdb_fuse.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "api_qdrant.h"

#define SEG_COLL 1
#define QD_DEPTH_MAX 4     /* prefetches within prefetches */
#define QD_BATCH_MAX 1024  /* queries in one batch */

/* Hits of one query: res's first n items, ranked, with Qdrant scores. */
struct qd_hits {
	vecdb_records *res;
	size_t n;           /* those that passed score_threshold */
	int lower_better;   /* scores are distances */
};

static void
hits_free(struct qd_hits *h)
{
	vecdb_records_free(h->res);
	memset(h, 0, sizeof(*h));
}

/* What scored the hits, for their Qdrant score. */
enum scoring {
	SC_DENSE,       /* distance by the metric */
	SC_SCORE,       /* the record's score (sparse, fused) */
	SC_NEG,         /* -distance (best_score, context) */
	SC_DISCOVER     /* context pairs satisfied + sigmoid(similarity) */
};

/* The metric of the dense vector @p using names (NULL: the default);
 * *sparse set when it names a sparse vector. */
static int
metric_of(const vecdb_collection_config *c, const char *using,
    vecdb_metric *m, int *sparse)
{
	*sparse = 0;
	if (using == NULL || using[0] == '\0') {
		if (c->dimension == 0)
			return vdb_err(VECDB_EINVAL, "collection '%s' has no "
			    "default vector: say which one with 'using'",
			    c->name);
		*m = c->metric;
		return VECDB_OK;
	}
	for (uint32_t i = 0; i < c->n_vectors; i++)
		if (strcmp(c->vectors[i].name, using) == 0) {
			*m = c->vectors[i].metric;
			return VECDB_OK;
		}
	for (uint32_t i = 0; i < c->n_sparse; i++)
		if (strcmp(c->sparse[i].name, using) == 0) {
			*sparse = 1;
			return VECDB_OK;
		}
	return vdb_err(VECDB_EINVAL, "Wrong input: Not existing vector name "
	    "error: %.64s", using);
}

/* Score the hits, and keep those within score_threshold (thr NULL:
 * all). The ranking already follows the score, so they are a prefix. */
static void
hits_score(struct qd_hits *h, enum scoring sc, vecdb_metric m,
    const json_t *thr)
{
	double t = json_number_value(thr);

	h->lower_better = sc == SC_DENSE && (m == VECDB_EUCLIDEAN ||
	    m == VECDB_MANHATTAN);
	h->n = h->res->count;
	for (size_t i = 0; i < h->res->count; i++) {
		vecdb_record *x = &h->res->items[i];
		double sim;

		switch (sc) {
		case SC_DENSE:
			x->score = m == VECDB_COSINE ? 1 - x->distance :
			    m == VECDB_DOT ? -x->distance : x->distance;
			break;
		case SC_SCORE:
			break;
		case SC_NEG:
			x->score = -x->distance;
			break;
		case SC_DISCOVER:
			sim = m == VECDB_COSINE ? 1 - x->distance :
			    -x->distance;
			x->score = (float) (x->context_hits + 1 / (1 +
			    exp(-sim)));
			break;
		}
		if (thr != NULL && h->n == h->res->count &&
		    (h->lower_better ? x->score > t : x->score < t))
			h->n = i;
	}
}

/* ===== From Qdrant's query to the native body ===== */

/* Copy body[key] into nb when present and not null. */
static void
copy_field(json_t *nb, const json_t *body, const char *key,
    const char *as)
{
	json_t *v = json_object_get(body, key);

	if (v != NULL && !json_is_null(v))
		json_object_set(nb, as ? as : key, v);
}

/* SearchParams {hnsw_ef, exact, quantization, indexed_only, acorn}
 * as the native params (indexed_only and acorn steer Qdrant's segments
 * and filtered walks: nothing here to steer). */
static int
params_native(json_t *nb, const json_t *body)
{
	json_t *p = json_object_get(body, "params"), *np;

	if (p == NULL || json_is_null(p))
		return VECDB_OK;
	if (!json_is_object(p))
		return vdb_err(VECDB_EINVAL, "'params' must be an object");
	if ((np = json_copy(p)) == NULL)
		return vdb_err(VECDB_ENOMEM, "out of memory");
	json_object_del(np, "indexed_only");
	json_object_del(np, "acorn");
	json_object_set_new(nb, "params", np);
	return VECDB_OK;
}

/* Is j a point id (an unsigned integer or a UUID string)? */
static int
is_id(const json_t *j)
{
	return json_is_integer(j) || json_is_string(j);
}

/* A query's examples (recommend's positive / negative, discover's
 * target and context) refer to the vector searched: as given. */
static json_t *
context_list(const json_t *c)
{
	json_t *a;

	if (json_is_array(c))
		return json_incref((json_t *) c);
	a = json_array();
	if (a != NULL && c != NULL && !json_is_null(c))
		json_array_append(a, (json_t *) c);
	return a;
}

/*
 * The kind of query and its native body. q is the QueryInterface: a
 * vector, a sparse vector, an id, or {nearest | recommend | discover |
 * context}. *sc says how its hits are scored.
 */
static int
query_native(const json_t *q, json_t *nb, enum api_query *kind,
    enum scoring *sc, int sparse)
{
	json_t *x;

	if (json_is_object(q) && (x = json_object_get(q, "nearest")) != NULL) {
		if (json_object_get(q, "mmr") != NULL &&
		    !json_is_null(json_object_get(q, "mmr")))
			return vdb_err(VECDB_EINVAL, "'mmr' re-ranking is not "
			    "supported");
		if (json_object_size(q) > 1 + (json_object_get(q, "mmr") !=
		    NULL))
			return vdb_err(VECDB_EINVAL, "a nearest query is "
			    "{\"nearest\": vector}");
		q = x;
	}
	if (json_is_array(q) || api_json_is_floats(q)) {
		if (json_is_array(q) && json_array_size(q) > 0 &&
		    json_is_array(json_array_get(q, 0)))
			return vdb_err(VECDB_EINVAL, "multivectors are not "
			    "supported");
		*kind = API_Q_SEARCH;
		*sc = SC_DENSE;
		json_object_set(nb, "vector", (json_t *) q);
		return VECDB_OK;
	}
	if (is_id(q)) {
		/* the stored point's vector: a recommendation from it alone,
		 * which leaves the point itself out */
		*kind = API_Q_RECOMMEND;
		*sc = SC_DENSE;
		json_object_set_new(nb, "positive", json_pack("[O]", q));
		return VECDB_OK;
	}
	if (!json_is_object(q))
		return vdb_err(VECDB_EINVAL, "'query' must be a vector, a point "
		    "id or a query object");
	if (json_object_get(q, "indices") != NULL) {
		json_t *sv;
		if (!sparse)
			return vdb_err(VECDB_EINVAL, "a sparse query needs "
			    "'using' naming a sparse vector");
		if ((sv = json_copy((json_t *) q)) == NULL)
			return vdb_err(VECDB_ENOMEM, "out of memory");
		json_object_set(sv, "using", json_object_get(nb, "using"));
		json_object_del(nb, "using");
		json_object_set_new(nb, "sparse_vector", sv);
		json_object_del(nb, "params");
		*kind = API_Q_SEARCH;
		*sc = SC_SCORE;
		return VECDB_OK;
	}
	if ((x = json_object_get(q, "recommend")) != NULL) {
		static const char *const keys[] = { "positive", "negative",
			"strategy", NULL };
		int rv;
		if (!json_is_object(x))
			return vdb_err(VECDB_EINVAL, "'recommend' must be an "
			    "object");
		if ((rv = api_check_keys(x, keys, "query.recommend")) != 0)
			return rv;
		copy_field(nb, x, "positive", NULL);
		copy_field(nb, x, "negative", NULL);
		copy_field(nb, x, "strategy", NULL);
		*kind = API_Q_RECOMMEND;
		*sc = json_is_string(json_object_get(x, "strategy")) &&
		    strcmp(json_string_value(json_object_get(x, "strategy")),
		    "best_score") == 0 ? SC_NEG : SC_DENSE;
		return VECDB_OK;
	}
	if ((x = json_object_get(q, "discover")) != NULL) {
		static const char *const keys[] = { "target", "context", NULL };
		int rv;
		if (!json_is_object(x))
			return vdb_err(VECDB_EINVAL, "'discover' must be an "
			    "object");
		if ((rv = api_check_keys(x, keys, "query.discover")) != 0)
			return rv;
		if (json_object_get(x, "target") == NULL)
			return vdb_err(VECDB_EINVAL, "query.discover.target is "
			    "required");
		copy_field(nb, x, "target", NULL);
		json_object_set_new(nb, "context", context_list(
		    json_object_get(x, "context")));
		*kind = API_Q_DISCOVER;
		*sc = SC_DISCOVER;
		return VECDB_OK;
	}
	if ((x = json_object_get(q, "context")) != NULL) {
		json_object_set_new(nb, "context", context_list(x));
		*kind = API_Q_DISCOVER;
		*sc = SC_NEG;
		return VECDB_OK;
	}
	if (json_object_get(q, "order_by") != NULL)
		return vdb_err(VECDB_EINVAL, "an order_by query is a query of "
		    "its own: no prefetch, fusion or nested query");
	if (json_object_get(q, "sample") != NULL ||
	    json_object_get(q, "formula") != NULL ||
	    json_object_get(q, "relevance_feedback") != NULL)
		return vdb_err(VECDB_EINVAL, "sample, formula and relevance "
		    "feedback queries are not supported");
	return vdb_err(VECDB_EINVAL, "unknown query: expected a vector, an "
	    "id, nearest, recommend, discover, context or fusion");
}

static int qd_run(struct api_req *r, const vecdb_collection_config *cfg,
    const json_t *req, const struct qd_with *w, int top, int depth,
    struct qd_hits *out);

/* rrf / dbsf over the prefetches. */
static int
fuse(struct api_req *r, const vecdb_collection_config *cfg, const json_t *q,
    const json_t *req, const struct qd_with *w, int depth, uint32_t want,
    struct qd_hits *out)
{
	json_t *pf = json_object_get(req, "prefetch"), *f, *x;
	struct qd_hits in[2];
	vecdb_fusion_params fp;
	size_t n, total[2] = { 0, 0 };
	int rv = VECDB_OK;

	vecdb_fusion_params_init(&fp);
	/* Qdrant's rrf: 1 / (k + position), positions from 0, k 2 */
	fp.rrf_k = 1;
	if ((f = json_object_get(q, "fusion")) != NULL) {
		const char *s = json_string_value(f);
		if (s != NULL && strcmp(s, "rrf") == 0)
			fp.method = VECDB_FUSION_RRF;
		else if (s != NULL && strcmp(s, "dbsf") == 0)
			fp.method = VECDB_FUSION_DBSF;
		else
			return vdb_err(VECDB_EINVAL, "'fusion' must be rrf or "
			    "dbsf");
	} else {
		json_t *k = json_object_get(json_object_get(q, "rrf"), "k");
		if (json_object_get(json_object_get(q, "rrf"), "weights") &&
		    !json_is_null(json_object_get(json_object_get(q, "rrf"),
		    "weights")))
			return vdb_err(VECDB_EINVAL, "rrf weights are not "
			    "supported");
		if (k != NULL && !json_is_null(k)) {
			if (!json_is_integer(k) || json_integer_value(k) < 1 ||
			    json_integer_value(k) > 1000000)
				return vdb_err(VECDB_EINVAL, "rrf.k must be a "
				    "positive integer");
			fp.rrf_k = (float) (json_integer_value(k) - 1);
		}
	}
	if (json_is_object(pf)) {
		x = json_array();
		json_array_append(x, pf);
		pf = x;
	} else {
		json_incref(pf);
	}
	n = json_array_size(pf);
	if (n == 0 || n > 2) {
		json_decref(pf);
		return vdb_err(VECDB_EINVAL, "fusion takes 1 or 2 prefetches "
		    "(got %zu)", n);
	}
	memset(in, 0, sizeof(in));
	for (size_t i = 0; i < n && rv == VECDB_OK; i++) {
		struct qd_hits *h = &in[i];
		if (!json_is_object(json_array_get(pf, i))) {
			rv = vdb_err(VECDB_EINVAL, "prefetch[%zu] must be an "
			    "object", i);
			break;
		}
		if ((rv = qd_run(r, cfg, json_array_get(pf, i), w, 0, depth + 1,
		    h)) != VECDB_OK)
			break;
		/* fusion ranks higher-is-better scores, of the hits within
		 * the threshold */
		total[i] = h->res->count;
		h->res->count = h->n;
		for (size_t k = 0; h->lower_better && k < h->n; k++)
			h->res->items[k].score = -h->res->items[k].score;
	}
	json_decref(pf);
	fp.limit = want;
	if (rv == VECDB_OK)
		rv = vecdb_fuse(in[0].res, in[1].res, &fp, &out->res);
	for (size_t i = 0; i < 2; i++)
		if (in[i].res != NULL && total[i] > 0)
			in[i].res->count = total[i];
	hits_free(&in[0]);
	hits_free(&in[1]);
	if (rv == VECDB_OK) {
		out->n = out->res->count;
		out->lower_better = 0;
	}
	return rv;
}

/* Skip the first off hits (offset over a fused or scrolled list): they
 * move past the n kept, where vecdb_records_free still frees them. */
static int
hits_skip(struct qd_hits *h, size_t off)
{
	size_t total = h->res->count, sz = sizeof(vecdb_record);
	vecdb_record *t;

	off = off < h->n ? off : h->n;
	if (off == 0)
		return VECDB_OK;
	if ((t = vdb_malloc(off * sz)) == NULL)
		return vdb_err(VECDB_ENOMEM, "out of memory");
	memcpy(t, h->res->items, off * sz);
	memmove(h->res->items, h->res->items + off, (total - off) * sz);
	memcpy(h->res->items + total - off, t, off * sz);
	vdb_free(t);
	h->n -= off;
	return VECDB_OK;
}

/* No query: the first points by id, score 0. */
static int
by_id(struct api_req *r, const json_t *req, uint32_t want,
    struct qd_hits *out)
{
	vecdb_id start = { VECDB_ID_NONE, 0, { 0 } };
	const json_t *filter;
	int rv;

	if ((rv = api_filter_field(req, &filter)) != VECDB_OK ||
	    (rv = r->b->scroll(r->b->ctx, r->segs[SEG_COLL], &start, want,
		 filter, 1, 1, &out->res)) != VECDB_OK)
		return rv;
	out->n = out->res->count;
	return VECDB_OK;
}

/*
 * Run one QueryRequest (top) or Prefetch: its hits into *out, scored
 * and within its score_threshold; the top level applies offset.
 */
static int
qd_run(struct api_req *r, const vecdb_collection_config *cfg,
    const json_t *req, const struct qd_with *w, int top, int depth,
    struct qd_hits *out)
{
	static const char *const top_keys[] = { "prefetch", "query", "using",
		"filter", "params", "score_threshold", "limit", "offset",
		"with_vector", "with_payload", "lookup_from", "shard_key",
		NULL };
	static const char *const pf_keys[] = { "prefetch", "query", "using",
		"filter", "params", "score_threshold", "limit", "lookup_from",
		NULL };
	json_t *q = json_object_get(req, "query");
	json_t *thr = json_object_get(req, "score_threshold"), *nb;
	const char *using = NULL;
	enum api_query kind = API_Q_SEARCH;
	enum scoring sc = SC_DENSE;
	vecdb_metric m = VECDB_COSINE;
	uint64_t limit, offset = 0;
	int rv, sparse = 0;

	memset(out, 0, sizeof(*out));
	if (depth > QD_DEPTH_MAX)
		return vdb_err(VECDB_EINVAL, "prefetches nest deeper than %d",
		    QD_DEPTH_MAX);
	if ((rv = api_check_keys(req, top ? top_keys : pf_keys, top ? NULL :
	    "prefetch")) != VECDB_OK ||
	    (rv = api_get_uint(req, "limit", 10, 1, VECDB_LIMIT_MAX,
		 &limit)) != VECDB_OK ||
	    (top && (rv = api_get_uint(req, "offset", 0, 0, VECDB_LIMIT_MAX,
		 &offset)) != VECDB_OK) ||
	    (rv = api_get_string(req, "using", 0, &using)) != VECDB_OK)
		return rv;
	if (thr != NULL && json_is_null(thr))
		thr = NULL;
	if (thr != NULL && !json_is_number(thr))
		return vdb_err(VECDB_EINVAL, "'score_threshold' must be a "
		    "number");
	if (json_object_get(req, "lookup_from") != NULL &&
	    !json_is_null(json_object_get(req, "lookup_from")))
		return vdb_err(VECDB_EINVAL, "'lookup_from' is not supported: "
		    "give the example vectors");
	if (limit + offset > VECDB_LIMIT_MAX)
		return vdb_err(VECDB_EINVAL, "limit + offset must be at most "
		    "%d", VECDB_LIMIT_MAX);
	if (q != NULL && json_is_object(q) && (json_object_get(q, "fusion") ||
	    json_object_get(q, "rrf"))) {
		rv = fuse(r, cfg, q, req, w, depth, (uint32_t) (limit + offset),
		    out);
		if (rv == VECDB_OK) {
			hits_score(out, SC_SCORE, m, thr);
			rv = hits_skip(out, offset);
		}
		return rv;
	}
	if (json_object_get(req, "prefetch") != NULL &&
	    !json_is_null(json_object_get(req, "prefetch")))
		return vdb_err(VECDB_EINVAL, "a prefetch is used by a fusion "
		    "query (rrf or dbsf); re-scoring prefetched points with "
		    "another query is not supported");
	if (q == NULL || json_is_null(q)) {
		if ((rv = by_id(r, req, (uint32_t) (limit + offset), out)) ==
		    VECDB_OK) {
			for (size_t i = 0; i < out->res->count; i++)
				out->res->items[i].score = 0;
			rv = hits_skip(out, offset);
		}
		return rv;
	}
	/* the unnamed vector, where the collection keeps it named */
	if ((using == NULL || using[0] == '\0') &&
	    qd_default_vector(cfg) != NULL)
		using = QD_DEFAULT;
	if ((rv = metric_of(cfg, using, &m, &sparse)) != VECDB_OK)
		return rv;
	if ((nb = json_pack("{s:I, s:I, s:b}", "limit", (json_int_t) limit,
	    "offset", (json_int_t) offset, "with_vector",
	    qd_with_vector(w))) == NULL)
		return vdb_err(VECDB_ENOMEM, "out of memory");
	copy_field(nb, req, "filter", NULL);
	if (using != NULL && using[0] != '\0')
		json_object_set_new(nb, "using", json_string(using));
	if ((rv = params_native(nb, req)) == VECDB_OK &&
	    (rv = query_native(q, nb, &kind, &sc, sparse)) == VECDB_OK) {
		if (sparse && sc != SC_SCORE)
			rv = vdb_err(VECDB_EINVAL, "'%s' is a sparse vector: "
			    "query it with {\"indices\", \"values\"}", using);
		else {
			/* recommend and discover walk with the collection's
			 * ef: the native bodies take no params */
			if (kind != API_Q_SEARCH)
				json_object_del(nb, "params");
			rv = api_query_run(r, kind, nb, &out->res);
		}
	}
	json_decref(nb);
	if (rv == VECDB_OK)
		hits_score(out, sc, m, thr);
	return rv;
}

/* The hits as [ScoredPoint]. */
static json_t *
hits_json(const struct qd_hits *h, const vecdb_collection_config *cfg,
    const struct qd_with *w)
{
	json_t *a = json_array();

	for (size_t i = 0; a != NULL && i < h->n; i++)
		json_array_append_new(a, qd_record_json(&h->res->items[i], cfg,
		    w, 1));
	return a;
}

/* {"order_by": ...} as the query: the points by a payload value, score
 * 0 and their order_value, as Qdrant answers it. */
static int
order_query(struct api_req *r, const vecdb_collection_config *cfg,
    const json_t *req, const struct qd_with *w, json_t **points)
{
	static const char *const keys[] = { "query", "filter", "limit",
		"offset", "with_vector", "with_payload", "shard_key", NULL };
	const json_t *filter;
	uint64_t limit, offset;
	int rv;

	if ((rv = api_check_keys(req, keys, NULL)) != VECDB_OK ||
	    (rv = api_get_uint(req, "limit", 10, 1, VECDB_LIMIT_MAX,
		 &limit)) != VECDB_OK ||
	    (rv = api_get_uint(req, "offset", 0, 0, VECDB_LIMIT_MAX,
		 &offset)) != VECDB_OK ||
	    (rv = api_filter_field(req, &filter)) != VECDB_OK)
		return rv;
	return qd_order_by(r, cfg, json_object_get(json_object_get(req,
	    "query"), "order_by"), filter, w, limit, offset, 1, points);
}

/* One query request into its [ScoredPoint]. */
static int
query_one(struct api_req *r, const json_t *req, json_t **points)
{
	vecdb_collection_config cfg;
	struct qd_hits h;
	struct qd_with w;
	int rv;

	if (!json_is_object(req))
		return vdb_err(VECDB_EINVAL, "a query must be an object");
	if ((rv = qd_with_from_json(req, 0, &w)) != VECDB_OK)
		return rv;
	if ((rv = qd_config(r, r->segs[SEG_COLL], &cfg)) != VECDB_OK)
		return qd_coll_missing(rv, r->segs[SEG_COLL]);
	if (json_is_object(json_object_get(req, "query")) &&
	    json_object_get(json_object_get(req, "query"), "order_by")) {
		rv = order_query(r, &cfg, req, &w, points);
		return qd_coll_missing(rv, r->segs[SEG_COLL]);
	}
	if ((rv = qd_run(r, &cfg, req, &w, 1, 0, &h)) != VECDB_OK)
		return qd_coll_missing(rv, r->segs[SEG_COLL]);
	*points = hits_json(&h, &cfg, &w);
	hits_free(&h);
	return *points ? VECDB_OK : vdb_err(VECDB_ENOMEM, "out of memory");
}

int
qd_h_query(struct api_req *r, json_t **data)
{
	json_t *pts;
	int rv;

	if ((rv = query_one(r, r->body, &pts)) != VECDB_OK)
		return rv;
	*data = json_pack("{s:o}", "points", pts);
	return VECDB_OK;
}

/* {searches: [...]}: each translated by tr (NULL: as it is) and run. */
static int
batch(struct api_req *r, json_t **data, json_t *(*tr)(const json_t *),
    int wrap)
{
	static const char *const keys[] = { "searches", NULL };
	json_t *arr, *s, *out;
	size_t i;
	int rv;

	if ((rv = api_check_keys(r->body, keys, NULL)) != VECDB_OK ||
	    (rv = api_get_array(r->body, "searches", 1, QD_BATCH_MAX, &arr)))
		return rv;
	if ((out = json_array()) == NULL)
		return vdb_err(VECDB_ENOMEM, "out of memory");
	json_array_foreach(arr, i, s) {
		json_t *req = tr ? tr(s) : json_incref(s), *pts;
		rv = req ? query_one(r, req, &pts) : VECDB_EINVAL;
		json_decref(req);
		if (rv != VECDB_OK) {
			char msg[512];
			vdb_err_save(msg, sizeof(msg));
			json_decref(out);
			return vdb_err(rv, "searches[%zu]: %s", i, msg);
		}
		json_array_append_new(out, wrap ? json_pack("{s:o}", "points",
		    pts) : pts);
	}
	*data = out;
	return VECDB_OK;
}

int
qd_h_query_batch(struct api_req *r, json_t **data)
{
	return batch(r, data, NULL, 1);
}

/* ===== The legacy routes, as queries ===== */

/* The fields a legacy request shares with a query. */
static json_t *
legacy_common(const json_t *b, const char *const *own)
{
	static const char *const shared[] = { "filter", "params", "limit",
		"offset", "with_payload", "with_vector", "with_vectors",
		"score_threshold", "using", "lookup_from", "shard_key", NULL };
	json_t *q = json_object();
	const char *key;
	json_t *v;

	if (q == NULL || !json_is_object(b)) {
		json_decref(q);
		vdb_err(VECDB_EINVAL, "a search must be an object");
		return NULL;
	}
	json_object_foreach((json_t *) b, key, v) {
		int known = 0;
		for (size_t i = 0; !known && shared[i] != NULL; i++)
			known = strcmp(key, shared[i]) == 0;
		for (size_t i = 0; !known && own[i] != NULL; i++)
			known = strcmp(key, own[i]) == 0;
		if (!known) {
			json_decref(q);
			vdb_err(VECDB_EINVAL, "unknown field '%.64s'", key);
			return NULL;
		}
		for (size_t i = 0; shared[i] != NULL; i++)
			if (strcmp(key, shared[i]) == 0)
				json_object_set(q, strcmp(key, "with_vectors") ?
				    key : "with_vector", v);
	}
	return q;
}

/* SearchRequest {vector: [...] | {name, vector}, ...} as a query. */
static json_t *
search_tr(const json_t *b)
{
	static const char *const own[] = { "vector", NULL };
	json_t *q = legacy_common(b, own), *v;

	if (q == NULL)
		return NULL;
	v = json_object_get(b, "vector");
	if (json_is_object(v) && json_object_get(v, "name") != NULL) {
		json_object_set(q, "using", json_object_get(v, "name"));
		v = json_object_get(v, "vector");
	}
	if (v == NULL || json_is_null(v)) {
		json_decref(q);
		vdb_err(VECDB_EINVAL, "'vector' is required");
		return NULL;
	}
	json_object_set(q, "query", v);
	return q;
}

/* RecommendRequest {positive, negative, strategy, ...} as a query. */
static json_t *
recommend_tr(const json_t *b)
{
	static const char *const own[] = { "positive", "negative",
		"strategy", NULL };
	json_t *q = legacy_common(b, own), *rq;

	if (q == NULL)
		return NULL;
	rq = json_object();
	copy_field(rq, b, "positive", NULL);
	copy_field(rq, b, "negative", NULL);
	copy_field(rq, b, "strategy", NULL);
	json_object_set_new(q, "query", json_pack("{s:o}", "recommend", rq));
	return q;
}

/* DiscoverRequest {target?, context, ...} as a query. */
static json_t *
discover_tr(const json_t *b)
{
	static const char *const own[] = { "target", "context", NULL };
	json_t *q = legacy_common(b, own), *t;

	if (q == NULL)
		return NULL;
	t = json_object_get(b, "target");
	if (t != NULL && !json_is_null(t))
		json_object_set_new(q, "query", json_pack("{s:{s:O, s:O*}}",
		    "discover", "target", t, "context", json_object_get(b,
		    "context")));
	else
		json_object_set_new(q, "query", json_pack("{s:O*}", "context",
		    json_object_get(b, "context")));
	return q;
}

/* One legacy request: [ScoredPoint]. */
static int
legacy(struct api_req *r, json_t **data, json_t *(*tr)(const json_t *))
{
	json_t *q = tr(r->body);
	int rv;

	if (q == NULL)
		return VECDB_EINVAL;
	rv = query_one(r, q, data);
	json_decref(q);
	return rv;
}

int
qd_h_search(struct api_req *r, json_t **data)
{
	return legacy(r, data, search_tr);
}

int
qd_h_search_batch(struct api_req *r, json_t **data)
{
	return batch(r, data, search_tr, 0);
}

int
qd_h_recommend(struct api_req *r, json_t **data)
{
	return legacy(r, data, recommend_tr);
}

int
qd_h_recommend_batch(struct api_req *r, json_t **data)
{
	return batch(r, data, recommend_tr, 0);
}

int
qd_h_discover(struct api_req *r, json_t **data)
{
	return legacy(r, data, discover_tr);
}

int
qd_h_discover_batch(struct api_req *r, json_t **data)
{
	return batch(r, data, discover_tr, 0);
}

/* ===== Scroll and count ===== */

int
qd_h_scroll(struct api_req *r, json_t **data)
{
	static const char *const keys[] = { "offset", "limit", "filter",
		"with_payload", "with_vector", "with_vectors", "order_by",
		"shard_key", NULL };
	vecdb_id start = { VECDB_ID_NONE, 0, { 0 } };
	json_t *off = json_object_get(r->body, "offset"), *pts;
	vecdb_collection_config cfg;
	const json_t *filter;
	vecdb_records *res;
	struct qd_with w;
	uint64_t limit;
	int rv;

	if ((rv = api_check_keys(r->body, keys, NULL)) ||
	    (rv = api_get_uint(r->body, "limit", 10, 1, VECDB_LIMIT_MAX,
		 &limit)) ||
	    (rv = qd_with_from_json(r->body, 1, &w)) ||
	    (rv = api_filter_field(r->body, &filter)))
		return rv;
	if (json_object_get(r->body, "order_by") != NULL &&
	    !json_is_null(json_object_get(r->body, "order_by"))) {
		/* ordered by a payload value: no id to continue from */
		if (off != NULL && !json_is_null(off))
			return vdb_err(VECDB_EINVAL, "an ordered scroll continues "
			    "with order_by.start_from, not offset");
		if ((rv = qd_config(r, r->segs[SEG_COLL], &cfg)) != VECDB_OK ||
		    (rv = qd_order_by(r, &cfg, json_object_get(r->body,
			 "order_by"), filter, &w, limit, 0, 0, &pts)) != 0)
			return qd_coll_missing(rv, r->segs[SEG_COLL]);
		*data = json_pack("{s:o, s:n}", "points", pts,
		    "next_page_offset");
		return VECDB_OK;
	}
	if (off != NULL && !json_is_null(off) &&
	    (rv = api_id_from_json(off, "offset", &start)) != VECDB_OK)
		return rv;
	if ((rv = qd_config(r, r->segs[SEG_COLL], &cfg)) != VECDB_OK ||
	    (rv = r->b->scroll(r->b->ctx, r->segs[SEG_COLL], &start,
		 (uint32_t) limit, filter, qd_with_payload(&w),
		 qd_with_vector(&w), &res)) != VECDB_OK)
		return qd_coll_missing(rv, r->segs[SEG_COLL]);
	pts = json_array();
	for (size_t i = 0; i < res->count; i++)
		json_array_append_new(pts, qd_record_json(&res->items[i], &cfg,
		    &w, 0));
	*data = json_pack("{s:o, s:o}", "points", pts, "next_page_offset",
	    res->has_next ? api_id_to_json(&res->next) : json_null());
	vecdb_records_free(res);
	return VECDB_OK;
}

int
qd_h_count(struct api_req *r, json_t **data)
{
	static const char *const keys[] = { "filter", "exact", "shard_key",
		NULL };
	const json_t *filter;
	uint64_t n;
	int rv, exact;

	if ((rv = api_check_keys(r->body, keys, NULL)) ||
	    (rv = api_filter_field(r->body, &filter)) ||
	    (rv = api_get_bool(r->body, "exact", 1, &exact)))
		return rv;
	if ((rv = r->b->count(r->b->ctx, r->segs[SEG_COLL], filter, &n)) != 0)
		return qd_coll_missing(rv, r->segs[SEG_COLL]);
	*data = json_pack("{s:I}", "count", (json_int_t) n);
	return VECDB_OK;
}

/* ===== Groups ===== */

/* A group's key for a value at group_by (strings and integers group),
 * or 0 when the value cannot. */
static int
group_key(const json_t *v, char *buf, size_t len)
{
	if (json_is_string(v))
		snprintf(buf, len, "s%s", json_string_value(v));
	else if (json_is_integer(v))
		snprintf(buf, len, "i%lld", (long long) json_integer_value(v));
	else
		return 0;
	return 1;
}

struct grouping {
	json_t *index;       /* group key -> position in groups */
	json_t *groups;      /* [{id, hits: [...]}] in order of first hit */
	size_t size;         /* group_size */
	size_t limit;        /* groups wanted */
	size_t full;         /* groups that have size hits */
	const vecdb_collection_config *cfg;
	const struct qd_with *w;
	const vecdb_record *x;   /* the hit being placed */
};

/* Place the current hit in the group of one of its values. */
static void
group_add(const json_t *v, void *arg)
{
	struct grouping *g = arg;
	char key[512];
	json_t *pos, *grp, *hits;

	if (!group_key(v, key, sizeof(key)))
		return;
	if ((pos = json_object_get(g->index, key)) == NULL) {
		if (json_array_size(g->groups) >= g->limit)
			return;
		json_object_set_new(g->index, key, json_integer((json_int_t)
		    json_array_size(g->groups)));
		json_array_append_new(g->groups, json_pack("{s:O, s:[]}", "id",
		    v, "hits"));
		pos = json_object_get(g->index, key);
	}
	grp = json_array_get(g->groups, (size_t) json_integer_value(pos));
	hits = json_object_get(grp, "hits");
	if (json_array_size(hits) >= g->size)
		return;
	/* a point with the same value twice joins its group once */
	if (json_array_size(hits) > 0) {
		json_t *id = api_id_to_json(&g->x->id);
		int same = json_equal(json_object_get(json_array_get(hits,
		    json_array_size(hits) - 1), "id"), id);
		json_decref(id);
		if (same)
			return;
	}
	json_array_append_new(hits, qd_record_json(g->x, g->cfg, g->w, 1));
	if (json_array_size(hits) == g->size)
		g->full++;
}

/*
 * One groups request (a query request with group_by, group_size and
 * limit of groups): the query runs for more hits each time until the
 * groups are full or the hits run out.
 */
static int
groups_one(struct api_req *r, const json_t *req, json_t **out)
{
	static const char *const gkeys[] = { "group_by", "group_size",
		"limit", "with_lookup" };
	vecdb_collection_config cfg;
	struct grouping g;
	struct qd_with w;
	const char *by;
	uint64_t size, limit, fetch;
	json_t *q;
	int rv;

	if (!json_is_object(req))
		return vdb_err(VECDB_EINVAL, "a query must be an object");
	if ((rv = api_get_string(req, "group_by", 1, &by)) != VECDB_OK ||
	    (rv = api_get_uint(req, "group_size", 3, 1, 1000, &size)) ||
	    (rv = api_get_uint(req, "limit", 10, 1, 1000, &limit)) ||
	    (rv = qd_with_from_json(req, 0, &w)) != VECDB_OK)
		return rv;
	if (by[0] == '\0' || json_object_get(req, "offset") != NULL)
		return vdb_err(VECDB_EINVAL, "group_by must name a payload key, "
		    "and groups take no offset");
	if (json_object_get(req, "with_lookup") != NULL &&
	    !json_is_null(json_object_get(req, "with_lookup")))
		return vdb_err(VECDB_EINVAL, "'with_lookup' is not supported");
	if ((rv = qd_config(r, r->segs[SEG_COLL], &cfg)) != VECDB_OK)
		return qd_coll_missing(rv, r->segs[SEG_COLL]);
	if ((q = json_copy((json_t *) req)) == NULL)
		return vdb_err(VECDB_ENOMEM, "out of memory");
	for (size_t i = 0; i < sizeof(gkeys) / sizeof(gkeys[0]); i++)
		json_object_del(q, gkeys[i]);
	for (fetch = limit * size * 2 < 64 ? 64 : limit * size * 2;;
	    fetch = fetch * 4 < VECDB_LIMIT_MAX ? fetch * 4 :
	    VECDB_LIMIT_MAX) {
		struct qd_hits h;
		memset(&g, 0, sizeof(g));
		g.index = json_object();
		g.groups = json_array();
		g.size = size;
		g.limit = limit;
		g.cfg = &cfg;
		g.w = &w;
		json_object_set_new(q, "limit", json_integer((json_int_t)
		    fetch));
		if ((rv = qd_run(r, &cfg, q, &w, 1, 0, &h)) != VECDB_OK) {
			json_decref(g.index);
			json_decref(g.groups);
			break;
		}
		for (size_t i = 0; i < h.n && !(g.full == limit); i++) {
			json_t *pl = h.res->items[i].payload ? json_loads(
			    h.res->items[i].payload, 0, NULL) : NULL;
			g.x = &h.res->items[i];
			qd_values_at(pl, by, group_add, &g);
			json_decref(pl);
		}
		json_decref(g.index);
		if (g.full == limit || h.n < fetch || fetch == VECDB_LIMIT_MAX) {
			hits_free(&h);
			*out = json_pack("{s:o}", "groups", g.groups);
			break;
		}
		hits_free(&h);
		json_decref(g.groups);
	}
	json_decref(q);
	return qd_coll_missing(rv, r->segs[SEG_COLL]);
}

int
qd_h_query_groups(struct api_req *r, json_t **data)
{
	return groups_one(r, r->body, data);
}

/* A legacy groups request: its group fields kept aside while the rest is
 * translated as the plain request would be. */
static int
legacy_groups(struct api_req *r, json_t **data, json_t *(*tr)(const json_t *))
{
	static const char *const gkeys[] = { "group_by", "group_size",
		"limit", "with_lookup" };
	json_t *rest = json_copy(r->body), *q;
	int rv;

	if (rest == NULL)
		return vdb_err(VECDB_ENOMEM, "out of memory");
	for (size_t i = 0; i < sizeof(gkeys) / sizeof(gkeys[0]); i++)
		json_object_del(rest, gkeys[i]);
	q = tr(rest);
	json_decref(rest);
	if (q == NULL)
		return VECDB_EINVAL;
	for (size_t i = 0; i < sizeof(gkeys) / sizeof(gkeys[0]); i++)
		if (json_object_get(r->body, gkeys[i]) != NULL)
			json_object_set(q, gkeys[i], json_object_get(r->body,
			    gkeys[i]));
	rv = groups_one(r, q, data);
	json_decref(q);
	return rv;
}

int
qd_h_search_groups(struct api_req *r, json_t **data)
{
	return legacy_groups(r, data, search_tr);
}

int
qd_h_recommend_groups(struct api_req *r, json_t **data)
{
	return legacy_groups(r, data, recommend_tr);
}
