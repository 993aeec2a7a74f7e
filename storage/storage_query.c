/*
 * storage_query.c: queries built on the exact scan: batch search,
 * recommend and discover. Each runs in one read txn and makes one pass over
 * the collection, keeping the best limit + offset hits in a bounded heap
 * ordered by (rank desc, distance, id) as storage_search.c does.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "filter.h"
#include "storage_impl.h"

/* Examples (ids and vectors; a context pair counts two) in one call. */
#define QUERY_EXAMPLES_MAX 1024

/* Which page of the ranked hits to return, and with what. */
struct page {
	uint32_t limit;        /* results wanted */
	uint32_t offset;       /* results skipped first */
	int with_payload;
	int with_vector;
	int with_hits;         /* set context_hits from each hit's rank */
};

/* Prefix this thread's message with "<what> <i>: ". */
static int
err_prefix(int rv, const char *what, size_t i)
{
	char msg[512];

	snprintf(msg, sizeof(msg), "%s", vecdb_errmsg());
	return vdb_err(rv, "%s %zu: %s", what, i, msg);
}

/* Check a page's limit and offset as a search does. */
static int
page_check(uint32_t limit, uint32_t offset)
{
	if (limit == 0)
		return vdb_err(VECDB_EINVAL, "limit must be at least 1");
	if ((uint64_t) limit + offset > VECDB_LIMIT_MAX)
		return vdb_err(VECDB_EINVAL, "limit + offset exceeds %d",
		    VECDB_LIMIT_MAX);
	return VECDB_OK;
}

/* Sort a heap and read back its page into a new list. */
static int
topk_records(vecdb *db, MDB_txn *txn, const struct coll *c,
    struct storage_topk *t, const struct page *pg, vecdb_records **out)
{
	size_t from = pg->offset < t->n ? pg->offset : t->n;
	vecdb_records *res;
	int rv;

	storage_hits_sort(t->h, t->n);
	if ((res = storage_records_new(t->n - from)) == NULL)
		return VECDB_ENOMEM;
	rv = storage_hits_fill(db, txn, c, t->h, from, t->n, pg->with_payload,
	    pg->with_vector, res);
	if (rv != VECDB_OK) {
		vecdb_records_free(res);
		return rv;
	}
	for (size_t i = 0; pg->with_hits && i < res->count; i++)
		res->items[i].context_hits = t->h[from + i].rank;
	*out = res;
	return VECDB_OK;
}

/* ===== Batch search ===== */

/* One search of a batch and its heap. */
struct bquery {
	const vecdb_search_params *p;
	struct storage_topk t;         /* h owned */
};

/* Check what does not depend on the collection, search by search. */
static int
batch_check(const vecdb_search_params *params, size_t n)
{
	int rv;

	if (n > 0 && params == NULL)
		return vdb_err(VECDB_EINVAL, "search batch has no params");
	for (size_t i = 0; i < n; i++)
		if ((rv = storage_search_params_check(&params[i])) != VECDB_OK)
			return err_prefix(rv, "search", i);
	return VECDB_OK;
}

/* Check each search's dimension and give it a heap. */
static int
batch_prepare(const struct coll *c, const vecdb_search_params *params,
    size_t n, struct bquery *q)
{
	for (size_t i = 0; i < n; i++) {
		q[i].p = &params[i];
		if (params[i].dim != c->cfg.dimension)
			return vdb_err(VECDB_EDIM, "search %zu: query has %u "
			    "dimensions, collection '%s' expects %u", i,
			    params[i].dim, c->cfg.name, c->cfg.dimension);
		q[i].t.k = (size_t) params[i].limit + params[i].offset;
		q[i].t.h = vdb_malloc(q[i].t.k * sizeof(*q[i].t.h));
		if (q[i].t.h == NULL)
			return vdb_err(VECDB_ENOMEM, "out of memory");
	}
	return VECDB_OK;
}

/*
 * Offer the scan's current point to every search. The payload is parsed
 * at most once and the vector decoded at most once, when first needed.
 */
static int
batch_point(const struct storage_scan *s, struct bquery *q, size_t n,
    float *buf)
{
	const struct coll *c = s->c;
	json_t *payload = NULL;
	struct storage_hit x;
	struct rpoint rp;
	int rv, parsed = 0, decoded = 0;

	if ((rv = storage_point_decode(c, &s->v, &rp)) != VECDB_OK)
		return rv;
	storage_hit_key(&x, s);
	x.rank = 0;
	for (size_t i = 0; i < n; i++) {
		const vecdb_filter *f = q[i].p->filter;
		if (f != NULL && !parsed) {
			rv = storage_scan_payload(s, &rp, &payload);
			if (rv != VECDB_OK)
				return rv;
			parsed = 1;
		}
		if (f != NULL && !storage_point_match(f, payload, c, &rp,
		    (const uint8_t *) s->k.mv_data + 4, s->k.mv_size - 4))
			continue;
		if (!decoded) {
			vec_decode(rp.vec, rp.dim, c->cfg.vector_type, buf);
			decoded = 1;
		}
		x.dist = storage_distance(c->cfg.metric, q[i].p->vector, buf,
		    rp.dim);
		storage_topk_push(&q[i].t, &x);
	}
	json_decref(payload);
	return VECDB_OK;
}

/* One pass over the collection for every search of the batch. */
static int
batch_scan(vecdb *db, MDB_txn *txn, const struct coll *c, struct bquery *q,
    size_t n)
{
	float *buf = vdb_malloc((size_t) c->cfg.dimension * sizeof(float));
	struct storage_scan s;
	int rv;

	if (buf == NULL)
		return vdb_err(VECDB_ENOMEM, "out of memory");
	if ((rv = storage_scan_open(db, txn, c, NULL, &s)) != VECDB_OK) {
		vdb_free(buf);
		return rv;
	}
	for (; storage_scan_valid(&s); storage_scan_next(&s))
		if ((rv = batch_point(&s, q, n, buf)) != VECDB_OK)
			break;
	vdb_free(buf);
	if (rv != VECDB_OK) {
		storage_scan_close(&s);
		return rv;
	}
	return storage_scan_close(&s);
}

/* Read back every search's page. */
static int
batch_results(vecdb *db, MDB_txn *txn, const struct coll *c,
    struct bquery *q, size_t n, vecdb_records **res)
{
	struct page pg = { 0, 0, 0, 0, 0 };
	int rv;

	for (size_t i = 0; i < n; i++) {
		pg.offset = q[i].p->offset;
		pg.with_payload = q[i].p->with_payload;
		pg.with_vector = q[i].p->with_vector;
		if ((rv = topk_records(db, txn, c, &q[i].t, &pg,
			 &res[i])) != VECDB_OK)
			return rv;
	}
	return VECDB_OK;
}

/* Free a batch's heaps and the batch. */
static void
batch_free(struct bquery *q, size_t n)
{
	for (size_t i = 0; q != NULL && i < n; i++)
		vdb_free(q[i].t.h);
	vdb_free(q);
}

/*
 * Above the full-scan threshold each search of a batch goes through the
 * graph (and the planner) like vecdb_search; one shared exact pass pays
 * only below it.
 */
static int
batch_wants_graph(vecdb *db, MDB_txn *txn, const struct coll *c,
    const vecdb_search_params *params, size_t n)
{
	struct coll_state st;
	size_t i;

	/* a search of a named vector goes its own way too (and, in a
	 * collection without a default vector, any search) */
	if (n > 0 && c->cfg.dimension == 0)
		return 1;
	for (i = 0; i < n; i++)
		if (params[i].using != NULL && params[i].using[0] != '\0')
			return 1;
	if (storage_state_get(db, txn, c->id, &st) != VECDB_OK ||
	    st.count <= db->opts.full_scan_threshold)
		return 0;
	for (i = 0; i < n && params[i].exact; i++)
		;
	return i < n;
}

/* Run each search on its own, as vecdb_search; errors name the search. */
static int
batch_each(vecdb *db, const char *coll, const vecdb_search_params *params,
    size_t n, vecdb_records **res)
{
	char msg[512];
	int rv;

	for (size_t i = 0; i < n; i++)
		if ((rv = vecdb_search(db, coll, &params[i], &res[i])) != VECDB_OK) {
			vdb_err_save(msg, sizeof(msg));
			return vdb_err(rv, "search %zu: %s", i, msg);
		}
	return VECDB_OK;
}

int
vecdb_search_batch(vecdb *db, const char *coll,
    const vecdb_search_params *params, size_t n, vecdb_records ***out)
{
	vecdb_records **res = NULL;
	struct bquery *q = NULL;
	struct coll c;
	MDB_txn *txn;
	int rv;

	vdb_err_clear();
	if ((rv = batch_check(params, n)) != VECDB_OK)
		return rv;
	if ((rv = storage_read_begin(db, &txn)) != VECDB_OK)
		return rv;
	q = vdb_calloc(n ? n : 1, sizeof(*q));
	res = vdb_calloc(n ? n : 1, sizeof(*res));
	if (q == NULL || res == NULL) {
		rv = vdb_err(VECDB_ENOMEM, "out of memory");
		goto fail;
	}
	if ((rv = storage_coll_find(db, txn, coll, &c)) != VECDB_OK)
		goto fail;
	if (batch_wants_graph(db, txn, &c, params, n)) {
		mdb_txn_abort(txn);
		txn = NULL;
		if ((rv = batch_each(db, coll, params, n, res)) != VECDB_OK)
			goto fail;
	} else if ((rv = batch_prepare(&c, params, n, q)) != VECDB_OK ||
	    (rv = batch_scan(db, txn, &c, q, n)) != VECDB_OK ||
	    (rv = batch_results(db, txn, &c, q, n, res)) != VECDB_OK) {
		goto fail;
	}
	if (txn != NULL)
		mdb_txn_abort(txn);
	batch_free(q, n);
	*out = res;
	return VECDB_OK;
fail:
	if (txn != NULL)
		mdb_txn_abort(txn);
	batch_free(q, n);
	vecdb_records_free_array(res, n);
	return rv;
}

/* ===== Examples ===== */

/*
 * The vector a recommend or discover query ranks by: vector vslot of
 * collection full (0: the default one). view is the collection as that
 * vector sees it (its dimension, metric and type in the default's place):
 * what the scoring reads; records are read through full.
 */
struct qvec {
	const struct coll *full;
	int vslot;
	struct coll view;
};

/* Set up q for the vector called name (NULL: the default) of c. */
static int
qvec_init(struct qvec *q, const struct coll *c, const char *name)
{
	q->full = c;
	if ((q->vslot = storage_vector_slot(&c->cfg, name)) < 0)
		return vdb_err(VECDB_EINVAL, "collection '%s' has no vector "
		    "'%s'", c->cfg.name, name);
	if (q->vslot == 0 && c->cfg.dimension == 0)
		return vdb_err(VECDB_EINVAL, "collection '%s' has no default "
		    "vector: name the vector to compare by ('using')",
		    c->cfg.name);
	q->view.id = c->id;
	storage_vector_cfg(&c->cfg, q->vslot, &q->view.cfg);
	return VECDB_OK;
}

/* Example vectors: n rows of the collection's dimension. */
struct vecs {
	float *v;              /* owned; room for the rows asked at init */
	size_t n;              /* rows filled */
};

/* A point key (without the collection prefix). */
struct pkey {
	uint8_t len;
	uint8_t b[STORAGE_KEY_MAX];
};

/* Points never to return, sorted for bsearch. */
struct keyset {
	struct pkey *k;        /* owned */
	size_t n;
};

/* 1 if @p id names a point (a number or a UUID). */
static int
id_ok(const vecdb_id *id)
{
	return id->kind == VECDB_ID_NUM || id->kind == VECDB_ID_UUID;
}

/* Check that ids[0..n) are ids; @p what names the list. */
static int
ids_check(const vecdb_id *ids, size_t n, const char *what)
{
	if (n > 0 && ids == NULL)
		return vdb_err(VECDB_EINVAL, "%s ids are missing", what);
	for (size_t i = 0; i < n; i++)
		if (!id_ok(&ids[i]))
			return vdb_err(VECDB_EINVAL, "%s id %zu is not valid",
			    what, i);
	return VECDB_OK;
}

/* Check that n raw vectors of dim floats are present and finite. */
static int
raw_check(const float *v, size_t n, uint32_t dim, const char *what)
{
	int rv;

	if (n > 0 && v == NULL)
		return vdb_err(VECDB_EINVAL, "%s vectors are missing", what);
	for (size_t i = 0; i < n; i++)
		if ((rv = vec_validate(v + i * dim, dim,
			 VECDB_FLOAT32)) != VECDB_OK)
			return err_prefix(rv, what, i);
	return VECDB_OK;
}

/* Raw example vectors must have the collection's dimension. */
static int
raw_dim_check(const struct coll *c, uint32_t dim)
{
	if (dim != c->cfg.dimension)
		return vdb_err(VECDB_EDIM, "example vectors have %u "
		    "dimensions, collection '%s' expects %u", dim,
		    c->cfg.name, c->cfg.dimension);
	return VECDB_OK;
}

/* Read q's vector of point @p id into out (dim floats). */
static int
example_read(vecdb *db, MDB_txn *txn, const struct qvec *q,
    const vecdb_id *id, float *out)
{
	const struct coll *c = q->full;
	uint8_t pkey[STORAGE_PKEY_MAX];
	char idbuf[VECDB_ID_STRLEN];
	struct rpoint rp;
	const void *vec;
	MDB_val k, v;
	int rc, rv;

	k.mv_size = storage_pkey(c->id, id, pkey);
	k.mv_data = pkey;
	if ((rc = mdb_get(txn, db->points, &k, &v)) == MDB_NOTFOUND)
		return vdb_err(VECDB_ENOTFOUND, "point %s not found in '%s'",
		    vecdb_id_format(id, idbuf), c->cfg.name);
	if (rc != 0)
		return storage_mdb_err(rc, "read point");
	if ((rv = storage_point_decode(c, &v, &rp)) != VECDB_OK)
		return rv;
	if ((vec = storage_xset_vector(c, q->vslot, rp.vec, rp.vec_len)) ==
	    NULL)
		return vdb_err(VECDB_EINVAL, "point %s has no vector '%s'",
		    vecdb_id_format(id, idbuf),
		    c->cfg.vectors[q->vslot - 1].name);
	vec_decode(vec, q->view.cfg.dimension, q->view.cfg.vector_type, out);
	return VECDB_OK;
}

/* Make room for n rows of dim floats. */
static int
vecs_init(struct vecs *x, size_t n, uint32_t dim)
{
	x->n = 0;
	x->v = vdb_malloc((n ? n : 1) * dim * sizeof(float));
	if (x->v == NULL)
		return vdb_err(VECDB_ENOMEM, "out of memory");
	return VECDB_OK;
}

/* Append the vectors of points ids[0..n). */
static int
vecs_add_ids(vecdb *db, MDB_txn *txn, const struct qvec *q, struct vecs *x,
    const vecdb_id *ids, size_t n)
{
	uint32_t dim = q->view.cfg.dimension;
	int rv;

	for (size_t i = 0; i < n; i++, x->n++)
		if ((rv = example_read(db, txn, q, &ids[i],
			 x->v + x->n * dim)) != VECDB_OK)
			return rv;
	return VECDB_OK;
}

/* Append n raw vectors of dim floats. */
static void
vecs_add_raw(struct vecs *x, const float *v, size_t n, uint32_t dim)
{
	if (n == 0)
		return;
	memcpy(x->v + x->n * dim, v, n * dim * sizeof(float));
	x->n += n;
}

/* The smallest distance from v to a row of x; +inf when x is empty. */
static float
vecs_min_distance(const struct coll *c, const struct vecs *x,
    const float *v)
{
	uint32_t dim = c->cfg.dimension;
	float best = INFINITY;

	for (size_t i = 0; i < x->n; i++) {
		float d = storage_distance(c->cfg.metric, x->v + i * dim, v, dim);
		if (d < best)
			best = d;
	}
	return best;
}

/* Make room for n keys. */
static int
keyset_init(struct keyset *ks, size_t n)
{
	ks->n = 0;
	if ((ks->k = vdb_calloc(n ? n : 1, sizeof(*ks->k))) == NULL)
		return vdb_err(VECDB_ENOMEM, "out of memory");
	return VECDB_OK;
}

/* Add one id to a set with room for it. */
static void
keyset_add(struct keyset *ks, const vecdb_id *id)
{
	struct pkey *k = &ks->k[ks->n++];

	k->len = (uint8_t) vdb_id_key(id, k->b);
}

/* Add ids[0..n). */
static void
keyset_add_ids(struct keyset *ks, const vecdb_id *ids, size_t n)
{
	for (size_t i = 0; i < n; i++)
		keyset_add(ks, &ids[i]);
}

/* Order keys as LMDB does: bytes, then length. */
static int
pkey_cmp(const void *a, const void *b)
{
	const struct pkey *x = a, *y = b;
	int c = memcmp(x->b, y->b, x->len < y->len ? x->len : y->len);

	return c ? c : (int) x->len - (int) y->len;
}

/* Is the scan's current point in the (sorted) set? */
static int
keyset_has(const struct keyset *ks, const struct storage_scan *s)
{
	struct pkey k;

	if (ks->n == 0 || s->k.mv_size - 4 > STORAGE_KEY_MAX)
		return 0;
	k.len = (uint8_t) (s->k.mv_size - 4);
	memcpy(k.b, (uint8_t *) s->k.mv_data + 4, k.len);
	return bsearch(&k, ks->k, ks->n, sizeof(k), pkey_cmp) != NULL;
}

/* ===== Ranked scans ===== */

struct ranker;

/* Set x->dist and x->rank for the point with vector v. */
typedef void (*score_fn)(const struct ranker *r, const struct coll *c,
    const float *v, struct storage_hit *x);

/* One recommend or discover query: what to skip, keep and score. */
struct ranker {
	const vecdb_filter *filter;  /* borrowed; NULL: every point */
	struct keyset skip;          /* examples and excluded ids */
	struct vecs pos, neg;        /* examples (discover: pair i is row i
					of both) */
	float *target;               /* query or target; NULL: none */
	score_fn score;
	struct page pg;
	struct storage_topk t;       /* h owned */
	uint32_t ef;                 /* recommend's ef_search */
	struct qvec q;               /* the vector ranked by */
};

/* Start an empty ranker. */
static void
ranker_init(struct ranker *r, const vecdb_filter *f, const struct page *pg)
{
	memset(r, 0, sizeof(*r));
	r->filter = f;
	r->pg = *pg;
}

/* Free what a ranker holds. */
static void
ranker_fini(struct ranker *r)
{
	vdb_free(r->skip.k);
	vdb_free(r->pos.v);
	vdb_free(r->neg.v);
	vdb_free(r->target);
	vdb_free(r->t.h);
}

/* Score every point that is not skipped and passes the filter. */
static int
rank_scan(vecdb *db, MDB_txn *txn, const struct coll *c, struct ranker *r)
{
	float *buf = vdb_malloc((size_t) c->cfg.dimension * sizeof(float));
	struct storage_scan s;
	struct storage_hit x;
	struct rpoint rp;
	int rv, match;

	if (buf == NULL)
		return vdb_err(VECDB_ENOMEM, "out of memory");
	if ((rv = storage_scan_open(db, txn, r->q.full, NULL, &s)) !=
	    VECDB_OK) {
		vdb_free(buf);
		return rv;
	}
	for (; storage_scan_valid(&s); storage_scan_next(&s)) {
		const void *vec;

		if (keyset_has(&r->skip, &s))
			continue;
		if ((rv = storage_point_decode(r->q.full, &s.v, &rp)) !=
		    VECDB_OK)
			break;
		if ((vec = storage_xset_vector(r->q.full, r->q.vslot, rp.vec,
		    rp.vec_len)) == NULL)
			continue; /* the point has no such vector */
		if ((rv = storage_scan_match(&s, &rp, r->filter,
			 &match)) != VECDB_OK)
			break;
		if (!match)
			continue;
		vec_decode(vec, c->cfg.dimension, c->cfg.vector_type, buf);
		r->score(r, c, buf, &x);
		storage_hit_key(&x, &s);
		storage_topk_push(&r->t, &x);
	}
	vdb_free(buf);
	if (rv != VECDB_OK) {
		storage_scan_close(&s);
		return rv;
	}
	return storage_scan_close(&s);
}

static void score_query(const struct ranker *r, const struct coll *c,
    const float *v, struct storage_hit *x);

/*
 * average_vector is a search for r->target: on a collection served by a
 * graph, ask it for the page plus as many hits as there are points to
 * skip, then drop those. *used is 0 when there is no graph to ask.
 */
static int
rank_graph(vecdb *db, MDB_txn *txn, const struct coll *c, struct ranker *r,
    int *used)
{
	struct storage_topk g = { NULL, 0, r->t.k + r->skip.n };
	vecdb_search_params sp = { r->target, c->cfg.dimension, 0, 0,
		r->filter, r->ef, 0, 0, 0, 0, 0, 0, NULL };
	struct pkey k;
	int rv;

	*used = 0;
	if (r->score != score_query)
		return VECDB_OK;
	sp.limit = (uint32_t) g.k;
	if ((g.h = vdb_malloc(g.k * sizeof(*g.h))) == NULL)
		return vdb_err(VECDB_ENOMEM, "out of memory");
	rv = storage_index_search(db, txn, r->q.full, r->q.vslot, &sp, &g,
	    used);
	for (size_t i = 0; rv == VECDB_OK && *used && i < g.n; i++) {
		k.len = g.h[i].klen;
		memcpy(k.b, g.h[i].key, k.len);
		if (r->skip.n == 0 || bsearch(&k, r->skip.k, r->skip.n,
					  sizeof(k), pkey_cmp) == NULL)
			storage_topk_push(&r->t, &g.h[i]);
	}
	vdb_free(g.h);
	return rv;
}

/* Scan (or ask the graph), then read back the page. Skipping happens
 * before the heap, so a full page is returned whenever enough other
 * points match. */
static int
ranker_run(vecdb *db, MDB_txn *txn, const struct coll *c, struct ranker *r,
    vecdb_records **out)
{
	int rv, graph;

	qsort(r->skip.k, r->skip.n, sizeof(*r->skip.k), pkey_cmp);
	r->t.k = (size_t) r->pg.limit + r->pg.offset;
	if ((r->t.h = vdb_malloc(r->t.k * sizeof(*r->t.h))) == NULL)
		return vdb_err(VECDB_ENOMEM, "out of memory");
	if ((rv = rank_graph(db, txn, c, r, &graph)) != VECDB_OK ||
	    (!graph && (rv = rank_scan(db, txn, c, r)) != VECDB_OK))
		return rv;
	return topk_records(db, txn, r->q.full, &r->t, &r->pg, out);
}

/* ===== Recommend ===== */

/* average_vector: the distance to the combined query. */
static void
score_query(const struct ranker *r, const struct coll *c, const float *v,
    struct storage_hit *x)
{
	x->rank = 0;
	x->dist = storage_distance(c->cfg.metric, r->target, v, c->cfg.dimension);
}

/* The logistic function. */
static double
sigmoid(double z)
{
	return 1.0 / (1.0 + exp(-z));
}

/*
 * best_score: distance = -score, i.e. -sigmoid(-dp) when dp <= dn, else
 * sigmoid(-dn). The rank (1 when dp <= dn) keeps those candidates first
 * even where the sigmoid underflows to 0 (large distances: uint8 vectors).
 */
static void
score_best(const struct ranker *r, const struct coll *c, const float *v,
    struct storage_hit *x)
{
	float dp = vecs_min_distance(c, &r->pos, v);
	float dn = vecs_min_distance(c, &r->neg, v);

	x->rank = dp <= dn;
	x->dist = (float) (dp <= dn ? -sigmoid(-(double) dp) :
	    sigmoid(-(double) dn));
}

/* Check what does not depend on the collection. */
static int
reco_check(const vecdb_recommend_params *p)
{
	size_t np, nn;
	int rv;

	if (p == NULL)
		return vdb_err(VECDB_EINVAL, "recommend has no params");
	if ((rv = page_check(p->limit, p->offset)) != VECDB_OK)
		return rv;
	if (p->strategy != VECDB_RECO_AVERAGE_VECTOR &&
	    p->strategy != VECDB_RECO_BEST_SCORE)
		return vdb_err(VECDB_EINVAL, "unknown recommend strategy %d",
		    (int) p->strategy);
	np = p->n_positive + p->n_positive_vectors;
	nn = p->n_negative + p->n_negative_vectors;
	if (np == 0)
		return vdb_err(VECDB_EINVAL,
		    "recommend needs at least one positive example");
	if (p->n_positive > QUERY_EXAMPLES_MAX ||
	    p->n_positive_vectors > QUERY_EXAMPLES_MAX ||
	    p->n_negative > QUERY_EXAMPLES_MAX ||
	    p->n_negative_vectors > QUERY_EXAMPLES_MAX ||
	    np + nn > QUERY_EXAMPLES_MAX)
		return vdb_err(VECDB_EINVAL, "recommend takes at most %d "
		    "examples", QUERY_EXAMPLES_MAX);
	if ((rv = ids_check(p->positive, p->n_positive, "positive")) !=
		VECDB_OK ||
	    (rv = ids_check(p->negative, p->n_negative, "negative")) !=
		VECDB_OK)
		return rv;
	return ids_check(p->exclude, p->n_exclude, "exclude");
}

/* Gather the example vectors and the points to skip. */
static int
reco_load(vecdb *db, MDB_txn *txn, const struct coll *c,
    const vecdb_recommend_params *p, struct ranker *r)
{
	uint32_t dim = c->cfg.dimension;
	int rv;

	if (p->n_positive_vectors + p->n_negative_vectors > 0 &&
	    (rv = raw_dim_check(c, p->dim)) != VECDB_OK)
		return rv;
	if ((rv = raw_check(p->positive_vectors, p->n_positive_vectors, dim,
		 "positive vector")) != VECDB_OK ||
	    (rv = raw_check(p->negative_vectors, p->n_negative_vectors, dim,
		 "negative vector")) != VECDB_OK ||
	    (rv = vecs_init(&r->pos, p->n_positive + p->n_positive_vectors,
		 dim)) != VECDB_OK ||
	    (rv = vecs_init(&r->neg, p->n_negative + p->n_negative_vectors,
		 dim)) != VECDB_OK ||
	    (rv = vecs_add_ids(db, txn, &r->q, &r->pos, p->positive,
		 p->n_positive)) != VECDB_OK ||
	    (rv = vecs_add_ids(db, txn, &r->q, &r->neg, p->negative,
		 p->n_negative)) != VECDB_OK ||
	    (rv = keyset_init(&r->skip, p->n_positive + p->n_negative +
		 p->n_exclude)) != VECDB_OK)
		return rv;
	vecs_add_raw(&r->pos, p->positive_vectors, p->n_positive_vectors, dim);
	vecs_add_raw(&r->neg, p->negative_vectors, p->n_negative_vectors, dim);
	keyset_add_ids(&r->skip, p->positive, p->n_positive);
	keyset_add_ids(&r->skip, p->negative, p->n_negative);
	keyset_add_ids(&r->skip, p->exclude, p->n_exclude);
	return VECDB_OK;
}

/* average_vector's query: 2*avg(pos) - avg(neg), or avg(pos). */
static int
reco_average(const struct coll *c, struct ranker *r)
{
	uint32_t dim = c->cfg.dimension;

	if ((r->target = vdb_malloc((size_t) dim * sizeof(float))) == NULL)
		return vdb_err(VECDB_ENOMEM, "out of memory");
	for (uint32_t j = 0; j < dim; j++) {
		double sp = 0, sn = 0;
		for (size_t i = 0; i < r->pos.n; i++)
			sp += r->pos.v[i * dim + j];
		for (size_t i = 0; i < r->neg.n; i++)
			sn += r->neg.v[i * dim + j];
		sp /= (double) r->pos.n;
		r->target[j] = (float) (r->neg.n == 0 ? sp :
		    2 * sp - sn / (double) r->neg.n);
	}
	if (vec_validate(r->target, dim, VECDB_FLOAT32) != VECDB_OK)
		return vdb_err(VECDB_EINVAL, "the average of the examples "
		    "is not a finite vector");
	r->score = score_query;
	return VECDB_OK;
}

int
vecdb_recommend(vecdb *db, const char *coll,
    const vecdb_recommend_params *p, vecdb_records **out)
{
	struct ranker r;
	struct page pg;
	struct coll c;
	MDB_txn *txn;
	int rv;

	vdb_err_clear();
	if ((rv = reco_check(p)) != VECDB_OK)
		return rv;
	pg = (struct page) { p->limit, p->offset, p->with_payload,
		p->with_vector, 0 };
	ranker_init(&r, p->filter, &pg);
	r.ef = p->ef_search;
	if ((rv = storage_read_begin(db, &txn)) != VECDB_OK)
		return rv;
	if ((rv = storage_coll_find(db, txn, coll, &c)) != VECDB_OK ||
	    (rv = qvec_init(&r.q, &c, p->using)) != VECDB_OK ||
	    (rv = reco_load(db, txn, &r.q.view, p, &r)) != VECDB_OK)
		goto out;
	if (p->strategy == VECDB_RECO_AVERAGE_VECTOR)
		rv = reco_average(&r.q.view, &r);
	else
		r.score = score_best;
	if (rv == VECDB_OK)
		rv = ranker_run(db, txn, &r.q.view, &r, out);
out:
	mdb_txn_abort(txn);
	ranker_fini(&r);
	return rv;
}

/* ===== Discover ===== */

/*
 * Context pairs satisfied (strictly nearer the positive), then the
 * distance to the target, or without one the sum over pairs of
 * d(point, positive) - d(point, negative).
 */
static void
score_discover(const struct ranker *r, const struct coll *c, const float *v,
    struct storage_hit *x)
{
	uint32_t dim = c->cfg.dimension;
	double sum = 0;

	x->rank = 0;
	for (size_t i = 0; i < r->pos.n; i++) {
		float dp = storage_distance(c->cfg.metric, r->pos.v + i * dim, v,
		    dim);
		float dn = storage_distance(c->cfg.metric, r->neg.v + i * dim, v,
		    dim);
		x->rank += dp < dn;
		sum += (double) dp - (double) dn;
	}
	x->dist = r->target != NULL ?
	    storage_distance(c->cfg.metric, r->target, v, dim) : (float) sum;
}

/* Check the ids of the context pairs. */
static int
pairs_check(const vecdb_context_pair *ctx, size_t n)
{
	if (n > 0 && ctx == NULL)
		return vdb_err(VECDB_EINVAL, "context pairs are missing");
	for (size_t i = 0; i < n; i++)
		if (!id_ok(&ctx[i].positive) || !id_ok(&ctx[i].negative))
			return vdb_err(VECDB_EINVAL, "context pair %zu has an "
			    "id that is not valid", i);
	return VECDB_OK;
}

/* Check what does not depend on the collection. */
static int
disc_check(const vecdb_discover_params *p)
{
	int rv;

	if (p == NULL)
		return vdb_err(VECDB_EINVAL, "discover has no params");
	if ((rv = page_check(p->limit, p->offset)) != VECDB_OK)
		return rv;
	if (!p->has_target && p->n_context + p->n_context_vectors == 0)
		return vdb_err(VECDB_EINVAL, "discover needs a target or at "
		    "least one context pair");
	if (p->n_context > QUERY_EXAMPLES_MAX ||
	    p->n_context_vectors > QUERY_EXAMPLES_MAX ||
	    2 * (p->n_context + p->n_context_vectors) + !!p->has_target >
		QUERY_EXAMPLES_MAX)
		return vdb_err(VECDB_EINVAL, "discover takes at most %d "
		    "examples (a context pair counts two)",
		    QUERY_EXAMPLES_MAX);
	if (p->has_target && p->target.kind != VECDB_ID_NONE &&
	    !id_ok(&p->target))
		return vdb_err(VECDB_EINVAL, "target id is not valid");
	if (p->has_target && p->target.kind == VECDB_ID_NONE &&
	    p->target_vector == NULL)
		return vdb_err(VECDB_EINVAL,
		    "discover target needs an id or a vector");
	if ((rv = pairs_check(p->context, p->n_context)) != VECDB_OK)
		return rv;
	return ids_check(p->exclude, p->n_exclude, "exclude");
}

/* Gather the context pairs: by id first, then as vectors. */
static int
disc_pairs(vecdb *db, MDB_txn *txn, const struct coll *c,
    const vecdb_discover_params *p, struct ranker *r)
{
	uint32_t dim = c->cfg.dimension;
	size_t n = p->n_context + p->n_context_vectors;
	int rv;

	if ((rv = raw_check(p->context_vectors, p->n_context_vectors, 2 * dim,
		 "context pair vector")) != VECDB_OK ||
	    (rv = vecs_init(&r->pos, n, dim)) != VECDB_OK ||
	    (rv = vecs_init(&r->neg, n, dim)) != VECDB_OK)
		return rv;
	for (size_t i = 0; i < p->n_context; i++)
		if ((rv = vecs_add_ids(db, txn, &r->q, &r->pos,
			 &p->context[i].positive, 1)) != VECDB_OK ||
		    (rv = vecs_add_ids(db, txn, &r->q, &r->neg,
			 &p->context[i].negative, 1)) != VECDB_OK)
			return rv;
	for (size_t i = 0; i < p->n_context_vectors; i++) {
		const float *v = p->context_vectors + 2 * i * dim;
		vecs_add_raw(&r->pos, v, 1, dim);
		vecs_add_raw(&r->neg, v + dim, 1, dim);
	}
	return VECDB_OK;
}

/* Gather the target (if any) and the points to skip. */
static int
disc_target(vecdb *db, MDB_txn *txn, const struct coll *c,
    const vecdb_discover_params *p, struct ranker *r)
{
	size_t dim = c->cfg.dimension;
	int by_id = p->has_target && p->target.kind != VECDB_ID_NONE;
	int rv;

	if ((rv = keyset_init(&r->skip, (size_t) by_id + 2 * p->n_context +
		 p->n_exclude)) != VECDB_OK)
		return rv;
	if (by_id)
		keyset_add(&r->skip, &p->target);
	for (size_t i = 0; i < p->n_context; i++) {
		keyset_add(&r->skip, &p->context[i].positive);
		keyset_add(&r->skip, &p->context[i].negative);
	}
	keyset_add_ids(&r->skip, p->exclude, p->n_exclude);
	if (!p->has_target)
		return VECDB_OK;
	if ((r->target = vdb_malloc(dim * sizeof(float))) == NULL)
		return vdb_err(VECDB_ENOMEM, "out of memory");
	if (by_id)
		return example_read(db, txn, &r->q, &p->target, r->target);
	if ((rv = raw_check(p->target_vector, 1, (uint32_t) dim,
		 "target vector")) != VECDB_OK)
		return rv;
	memcpy(r->target, p->target_vector, dim * sizeof(float));
	return VECDB_OK;
}

int
vecdb_discover(vecdb *db, const char *coll,
    const vecdb_discover_params *p, vecdb_records **out)
{
	struct ranker r;
	struct page pg;
	struct coll c;
	MDB_txn *txn;
	int rv;

	vdb_err_clear();
	if ((rv = disc_check(p)) != VECDB_OK)
		return rv;
	pg = (struct page) { p->limit, p->offset, p->with_payload,
		p->with_vector, 1 };
	ranker_init(&r, p->filter, &pg);
	r.score = score_discover;
	if ((rv = storage_read_begin(db, &txn)) != VECDB_OK)
		return rv;
	if ((rv = storage_coll_find(db, txn, coll, &c)) != VECDB_OK ||
	    (rv = qvec_init(&r.q, &c, p->using)) != VECDB_OK)
		goto out;
	if ((p->n_context_vectors > 0 || (p->has_target &&
		p->target.kind == VECDB_ID_NONE)) &&
	    (rv = raw_dim_check(&r.q.view, p->dim)) != VECDB_OK)
		goto out;
	if ((rv = disc_pairs(db, txn, &r.q.view, p, &r)) != VECDB_OK ||
	    (rv = disc_target(db, txn, &r.q.view, p, &r)) != VECDB_OK)
		goto out;
	rv = ranker_run(db, txn, &r.q.view, &r, out);
out:
	mdb_txn_abort(txn);
	ranker_fini(&r);
	return rv;
}
