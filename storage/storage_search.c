/*
 * storage_search.c: reading many points: exact (brute-force) search,
 * scroll and count, all with payload filters, each in one read txn.
 */
#include <math.h>
#include <stdlib.h>

#include "filter.h"
#include "storage_impl.h"

/* ===== Scanning a collection ===== */

/* Position on the first point with id >= start (NULL: the first). */
int
storage_scan_open(vecdb *db, MDB_txn *txn, const struct coll *c,
    const vecdb_id *start, struct storage_scan *s)
{
	uint8_t kb[STORAGE_PKEY_MAX];
	int rc;

	memset(s, 0, sizeof(*s));
	s->c = c;
	put_be32(s->prefix, c->id);
	if ((rc = mdb_cursor_open(txn, db->points, &s->cur)) != 0)
		return storage_mdb_err(rc, "open cursor");
	if (start != NULL && start->kind != VECDB_ID_NONE) {
		s->k.mv_size = storage_pkey(c->id, start, kb);
		s->k.mv_data = kb;
	} else {
		s->k.mv_size = 4;
		s->k.mv_data = s->prefix;
	}
	s->rc = mdb_cursor_get(s->cur, &s->k, &s->v, MDB_SET_RANGE);
	return VECDB_OK;
}

/* 1 while the cursor is on a point of the collection. */
/* Load candidate s->ci (or end the scan); the cursor reads the point. */
static void
cand_fetch(struct storage_scan *s)
{
	const uint8_t *e;

	if (s->ci >= s->cand.n) {
		s->rc = MDB_NOTFOUND;
		return;
	}
	e = s->cand.keys[s->ci];
	memcpy(s->kbuf, s->prefix, 4);
	memcpy(s->kbuf + 4, e + 1, e[0]);
	s->k.mv_size = 4 + (size_t) e[0];
	s->k.mv_data = s->kbuf;
	s->rc = mdb_cursor_get(s->cur, &s->k, &s->v, MDB_SET_KEY);
	if (s->rc == 0)
		s->k.mv_data = s->kbuf;
}

/*
 * Walk index candidates when they are at most half the points. Measured
 * (100k points, 32-d, a range filter on an indexed integer): a candidate
 * costs 1.1 us (a B-tree lookup, payload parse, distance), a scanned point
 * 0.6 us (a cursor step, the same work), so the paths cross near 55%;
 * at 25% the index path is 2.5x faster, at 1% 33x.
 */
#define PLAN_MAX_SHARE 2

/* What the last filtered scan on this thread did (a test hook). */
static _Thread_local int last_planned;
static _Thread_local size_t last_candidates;

int
storage_last_scan_planned(size_t *candidates)
{
	if (candidates != NULL)
		*candidates = last_candidates;
	return last_planned;
}

/* Open a scan that walks index candidates when they are at most max. */
static int
scan_open_planned(vecdb *db, MDB_txn *txn, const struct coll *c,
    const vecdb_id *start, const vecdb_filter *f, size_t max,
    struct storage_scan *s)
{
	uint8_t kb[STORAGE_KEY_MAX];
	size_t klen = 0;
	int rv, used;

	last_planned = 0;
	last_candidates = 0;
	if ((rv = storage_scan_open(db, txn, c, start, s)) != VECDB_OK ||
	    f == NULL)
		return rv;
	rv = storage_pindex_candidates(db, txn, c->id, f, max, &s->cand,
	    &used);
	if (rv != VECDB_OK || !used) {
		if (rv != VECDB_OK)
			mdb_cursor_close(s->cur);
		return rv;
	}
	s->planned = 1;
	last_planned = 1;
	last_candidates = s->cand.n;
	if (start != NULL && start->kind != VECDB_ID_NONE)
		klen = vdb_id_key(start, kb);
	while (klen > 0 && s->ci < s->cand.n &&
	    memcmp(s->cand.keys[s->ci] + 1, kb, klen) < 0)
		s->ci++;
	cand_fetch(s);
	return VECDB_OK;
}

int
storage_scan_open_filtered(vecdb *db, MDB_txn *txn, const struct coll *c,
    const vecdb_id *start, const vecdb_filter *f, struct storage_scan *s)
{
	struct coll_state st;
	int rv;

	if (f != NULL && (rv = storage_state_get(db, txn, c->id, &st)) != VECDB_OK)
		return rv;
	return scan_open_planned(db, txn, c, start, f,
	    f ? (size_t) (st.count / PLAN_MAX_SHARE) : 0, s);
}

int
storage_scan_valid(const struct storage_scan *s)
{
	if (s->planned)
		return s->rc == 0;
	return s->rc == 0 && s->k.mv_size > 4 &&
	    memcmp(s->k.mv_data, s->prefix, 4) == 0;
}

void
storage_scan_next(struct storage_scan *s)
{
	if (s->planned) {
		s->ci++;
		cand_fetch(s);
		return;
	}
	s->rc = mdb_cursor_get(s->cur, &s->k, &s->v, MDB_NEXT);
}

/* LMDB's error if the scan stopped on one rather than at the end. */
int
storage_scan_close(struct storage_scan *s)
{
	int rc = s->rc;

	keylist_fini(&s->cand);
	mdb_cursor_close(s->cur);
	if (rc != 0 && rc != MDB_NOTFOUND)
		return storage_mdb_err(rc, "scan points");
	return VECDB_OK;
}

/* Parse the current point's payload; NULL when it is empty ({}). */
int
storage_scan_payload(const struct storage_scan *s, const struct rpoint *rp,
    json_t **out)
{
	json_error_t err;

	*out = NULL;
	if (rp->payload_len == 0)
		return VECDB_OK;
	*out = json_loadb(rp->payload, rp->payload_len, 0, &err);
	if (*out == NULL)
		return vdb_err(VECDB_ECORRUPT, "stored payload in '%s' "
		    "is not JSON: %s", s->c->cfg.name, err.text);
	return VECDB_OK;
}

/* Does the current point's payload match @p f? (NULL: yes.) */
int
storage_scan_match(const struct storage_scan *s, const struct rpoint *rp,
    const vecdb_filter *f, int *match)
{
	json_t *payload;
	int rv;

	if (f == NULL) {
		*match = 1;
		return VECDB_OK;
	}
	if ((rv = storage_scan_payload(s, rp, &payload)) != VECDB_OK)
		return rv;
	*match = storage_point_match(f, payload, s->c, rp,
	    (const uint8_t *) s->k.mv_data + 4, s->k.mv_size - 4);
	json_decref(payload);
	return VECDB_OK;
}

/* ===== Search ===== */

/* Order by rank (descending), distance (NaN last), then id. */
int
storage_hit_cmp(const struct storage_hit *a, const struct storage_hit *b)
{
	int an = isnan(a->dist), bn = isnan(b->dist), c;

	if (a->rank != b->rank)
		return a->rank > b->rank ? -1 : 1;
	if (an != bn)
		return an - bn;
	if (!an && a->dist != b->dist)
		return a->dist < b->dist ? -1 : 1;
	c = memcmp(a->key, b->key, a->klen < b->klen ? a->klen : b->klen);
	return c ? c : (int) a->klen - (int) b->klen;
}

/* qsort adapter for storage_hit_cmp. */
static int
hit_qcmp(const void *a, const void *b)
{
	return storage_hit_cmp(a, b);
}

/* Sort hits best first. */
void
storage_hits_sort(struct storage_hit *h, size_t n)
{
	qsort(h, n, sizeof(*h), hit_qcmp);
}

/* Set the hit's key to the scan's current point. */
void
storage_hit_key(struct storage_hit *x, const struct storage_scan *s)
{
	size_t n = s->k.mv_size - 4;

	/* Only a corrupt key is longer; clamp it rather than overrun key[]. */
	x->klen = (uint8_t) (n < STORAGE_KEY_MAX ? n : STORAGE_KEY_MAX);
	memcpy(x->key, (uint8_t *) s->k.mv_data + 4, x->klen);
}

/* Restore the heap below index i. */
static void
topk_sift_down(struct storage_topk *t, size_t i)
{
	for (;;) {
		size_t l = 2 * i + 1, r = l + 1, m = i;
		if (l < t->n && storage_hit_cmp(&t->h[l], &t->h[m]) > 0)
			m = l;
		if (r < t->n && storage_hit_cmp(&t->h[r], &t->h[m]) > 0)
			m = r;
		if (m == i)
			return;
		struct storage_hit tmp = t->h[i];
		t->h[i] = t->h[m];
		t->h[m] = tmp;
		i = m;
	}
}

/* Offer a hit; kept if among the k best so far. */
void
storage_topk_push(struct storage_topk *t, const struct storage_hit *x)
{
	size_t i;

	if (t->n == t->k) {
		if (storage_hit_cmp(x, &t->h[0]) >= 0)
			return;
		t->h[0] = *x;
		topk_sift_down(t, 0);
		return;
	}
	i = t->n++;
	t->h[i] = *x;
	while (i > 0 && storage_hit_cmp(&t->h[(i - 1) / 2], &t->h[i]) < 0) {
		struct storage_hit tmp = t->h[i];
		t->h[i] = t->h[(i - 1) / 2];
		t->h[(i - 1) / 2] = tmp;
		i = (i - 1) / 2;
	}
}

/*
 * With a graph, reading index candidates exactly beats a filtered graph
 * search only for a few thousand of them (a candidate costs ~1.1 us, a
 * filtered graph search a few ms however selective the filter).
 */
#define PLAN_GRAPH_MAX 5000

/*
 * Choose how to search: exact over payload-index candidates when a filter
 * term is selective, else the HNSW graph (then *graph is 1 and t holds the
 * hits), else a scan of every point. On return with *graph 0, s is open.
 */
static int
search_open(vecdb *db, MDB_txn *txn, const struct coll *c, int vslot,
    const vecdb_search_params *p, struct storage_topk *t,
    struct storage_scan *s, int *graph)
{
	struct coll_state st;
	size_t max;
	int rv;

	*graph = 0;
	if ((rv = storage_state_get(db, txn, c->id, &st)) != VECDB_OK)
		return rv;
	max = (size_t) (st.count / PLAN_MAX_SHARE);
	if (!p->exact && st.count > db->opts.full_scan_threshold &&
	    max > PLAN_GRAPH_MAX)
		max = PLAN_GRAPH_MAX;
	if ((rv = scan_open_planned(db, txn, c, NULL, p->filter, max,
		 s)) != VECDB_OK || s->planned)
		return rv;
	if ((rv = storage_index_search(db, txn, c, vslot, p, t, graph)) !=
	    VECDB_OK ||
	    *graph) {
		storage_scan_close(s);
		return rv;
	}
	return VECDB_OK;
}

/* Scan every point, keeping the best limit+offset in @p t (the distance
 * of vector vslot; points without it are skipped). */
static int
search_scan(vecdb *db, MDB_txn *txn, const struct coll *c, int vslot,
    const vecdb_search_params *p, struct storage_topk *t)
{
	vecdb_collection_config vc;
	float *buf;
	struct storage_scan s;
	struct rpoint rp;
	struct storage_hit x;
	const void *vec;
	int rv, match, graph;

	storage_vector_cfg(&c->cfg, vslot, &vc);
	if ((buf = vdb_malloc((size_t) vc.dimension * sizeof(float))) == NULL)
		return vdb_err(VECDB_ENOMEM, "out of memory");
	if ((rv = search_open(db, txn, c, vslot, p, t, &s, &graph)) !=
	    VECDB_OK || graph) {
		vdb_free(buf);
		return rv;
	}
	for (; storage_scan_valid(&s); storage_scan_next(&s)) {
		if ((rv = storage_point_decode(c, &s.v, &rp)) != VECDB_OK)
			break;
		if ((vec = storage_xset_vector(c, vslot, rp.vec,
		    rp.vec_len)) == NULL)
			continue;
		if ((rv = storage_scan_match(&s, &rp, p->filter,
			 &match)) != VECDB_OK)
			break;
		if (!match)
			continue;
		vec_decode(vec, vc.dimension, vc.vector_type, buf);
		x.dist = storage_distance(vc.metric, p->vector, buf,
		    vc.dimension);
		x.rank = 0;
		storage_hit_key(&x, &s);
		storage_topk_push(t, &x);
	}
	vdb_free(buf);
	if (rv != VECDB_OK) {
		storage_scan_close(&s);
		return rv;
	}
	return storage_scan_close(&s);
}

/* Read back the records of hits [from, to) into a result list. */
int
storage_hits_fill(vecdb *db, MDB_txn *txn, const struct coll *c,
    const struct storage_hit *h, size_t from, size_t to, int with_payload,
    int with_vector, vecdb_records *res)
{
	uint8_t pkey[STORAGE_PKEY_MAX];
	struct rpoint rp;
	vecdb_id id;
	MDB_val k, v;
	int rc, rv;

	for (size_t i = from; i < to; i++) {
		if (!with_payload && !with_vector) {
			/* Ids only: the key says it all, no point read. */
			vecdb_record *r = &res->items[res->count];
			memset(r, 0, sizeof(*r));
			if ((rv = vdb_key_id(h[i].key, h[i].klen,
				 &r->id)) != VECDB_OK)
				return rv;
			r->dim = c->cfg.dimension;
			res->items[res->count++].distance = h[i].dist;
			continue;
		}
		put_be32(pkey, c->id);
		memcpy(pkey + 4, h[i].key, h[i].klen);
		k.mv_size = 4 + h[i].klen;
		k.mv_data = pkey;
		if ((rc = mdb_get(txn, db->points, &k, &v)) != 0)
			return storage_mdb_err(rc, "read point");
		if ((rv = vdb_key_id(h[i].key, h[i].klen, &id)) != VECDB_OK ||
		    (rv = storage_point_decode(c, &v, &rp)) != VECDB_OK ||
		    (rv = storage_record_fill(c, &id, &rp, with_payload,
			 with_vector, &res->items[res->count])) != VECDB_OK)
			return rv;
		res->items[res->count++].distance = h[i].dist;
	}
	return VECDB_OK;
}

/* Allocate an empty result list with room for n records. */
vecdb_records *
storage_records_new(size_t n)
{
	vecdb_records *r = vdb_calloc(1, sizeof(*r));

	if (r != NULL && (r->items = vdb_calloc(n ? n : 1,
			      sizeof(*r->items))) == NULL) {
		vdb_free(r);
		r = NULL;
	}
	if (r == NULL)
		vdb_err(VECDB_ENOMEM, "out of memory");
	return r;
}

/* Check search parameters that do not depend on the collection. */
int
storage_search_params_check(const vecdb_search_params *p)
{
	if (p->vector == NULL)
		return vdb_err(VECDB_EINVAL, "search needs a query vector");
	if (p->limit == 0)
		return vdb_err(VECDB_EINVAL, "limit must be at least 1");
	if ((uint64_t) p->limit + p->offset > VECDB_LIMIT_MAX)
		return vdb_err(VECDB_EINVAL, "limit + offset exceeds %d",
		    VECDB_LIMIT_MAX);
	if (p->oversampling != 0 && !(p->oversampling >= 1 &&
	    p->oversampling <= VECDB_OVERSAMPLING_MAX))
		return vdb_err(VECDB_EINVAL, "oversampling must be between 1 "
		    "and %g", (double) VECDB_OVERSAMPLING_MAX);
	return vec_validate(p->vector, p->dim, VECDB_FLOAT32);
}

int
vecdb_search(vecdb *db, const char *coll, const vecdb_search_params *p,
    vecdb_records **out)
{
	struct storage_topk t = { NULL, 0, 0 };
	vecdb_records *res = NULL;
	struct coll c;
	MDB_txn *txn;
	int rv, vslot;
	uint32_t dim;

	vdb_err_clear();
	if ((rv = storage_search_params_check(p)) != VECDB_OK)
		return rv;
	if ((rv = storage_read_begin(db, &txn)) != VECDB_OK)
		return rv;
	if ((rv = storage_coll_find(db, txn, coll, &c)) != VECDB_OK)
		goto out;
	if ((vslot = storage_vector_slot(&c.cfg, p->using)) < 0) {
		rv = vdb_err(VECDB_EINVAL, "collection '%s' has no vector "
		    "'%s'", coll, p->using);
		goto out;
	}
	if (vslot == 0 && c.cfg.dimension == 0) {
		rv = vdb_err(VECDB_EINVAL, "collection '%s' has no default "
		    "vector: name the vector to search ('using')", coll);
		goto out;
	}
	dim = vslot ? c.cfg.vectors[vslot - 1].dimension : c.cfg.dimension;
	if (p->dim != dim) {
		if (vslot)
			rv = vdb_err(VECDB_EDIM, "query has %u dimensions, "
			    "vector '%s' of collection '%s' expects %u",
			    p->dim, p->using, coll, dim);
		else
			rv = vdb_err(VECDB_EDIM, "query has %u dimensions, "
			    "collection '%s' expects %u", p->dim, coll, dim);
		goto out;
	}
	t.k = (size_t) p->limit + p->offset;
	if ((t.h = vdb_malloc(t.k * sizeof(*t.h))) == NULL) {
		rv = vdb_err(VECDB_ENOMEM, "out of memory");
		goto out;
	}
	if ((rv = search_scan(db, txn, &c, vslot, p, &t)) != VECDB_OK)
		goto out;
	storage_hits_sort(t.h, t.n);
	res = storage_records_new(t.n > p->offset ? t.n - p->offset : 0);
	if (res == NULL) {
		rv = VECDB_ENOMEM;
		goto out;
	}
	rv = storage_hits_fill(db, txn, &c, t.h,
	    p->offset < t.n ? p->offset : t.n, t.n, p->with_payload,
	    p->with_vector, res);
out:
	mdb_txn_abort(txn);
	vdb_free(t.h);
	if (rv != VECDB_OK) {
		vecdb_records_free(res);
		return rv;
	}
	*out = res;
	return VECDB_OK;
}

/* ===== Scroll and count ===== */

/* Collect up to limit matching points from s; note where to go on. */
static int
scroll_collect(struct storage_scan *s, uint32_t limit, const vecdb_filter *f,
    int with_payload, int with_vector, vecdb_records *res)
{
	struct rpoint rp;
	vecdb_id id;
	int rv, match;

	for (; storage_scan_valid(s); storage_scan_next(s)) {
		if ((rv = storage_point_decode(s->c, &s->v, &rp)) != VECDB_OK ||
		    (rv = storage_scan_match(s, &rp, f, &match)) != VECDB_OK ||
		    (rv = vdb_key_id((uint8_t *) s->k.mv_data + 4,
			 s->k.mv_size - 4, &id)) != VECDB_OK)
			return rv;
		if (!match)
			continue;
		if (res->count == limit) {
			res->has_next = 1;
			res->next = id;
			return VECDB_OK;
		}
		rv = storage_record_fill(s->c, &id, &rp, with_payload,
		    with_vector, &res->items[res->count]);
		if (rv != VECDB_OK)
			return rv;
		res->count++;
	}
	return VECDB_OK;
}

int
vecdb_scroll(vecdb *db, const char *coll, const vecdb_id *start,
    uint32_t limit, const vecdb_filter *filter, int with_payload,
    int with_vector, vecdb_records **out)
{
	vecdb_records *res = NULL;
	struct storage_scan s;
	struct coll c;
	MDB_txn *txn;
	int rv;

	vdb_err_clear();
	if (limit == 0 || limit > VECDB_LIMIT_MAX)
		return vdb_err(VECDB_EINVAL, "scroll limit must be 1..%d",
		    VECDB_LIMIT_MAX);
	if ((rv = storage_read_begin(db, &txn)) != VECDB_OK)
		return rv;
	if ((rv = storage_coll_find(db, txn, coll, &c)) != VECDB_OK)
		goto out;
	if ((res = storage_records_new(limit)) == NULL) {
		rv = VECDB_ENOMEM;
		goto out;
	}
	if ((rv = storage_scan_open_filtered(db, txn, &c, start, filter,
		 &s)) != VECDB_OK)
		goto out;
	rv = scroll_collect(&s, limit, filter, with_payload, with_vector, res);
	if (storage_scan_close(&s) != VECDB_OK && rv == VECDB_OK)
		rv = VECDB_EIO;
out:
	mdb_txn_abort(txn);
	if (rv != VECDB_OK) {
		vecdb_records_free(res);
		return rv;
	}
	*out = res;
	return VECDB_OK;
}

/* Count the matching points of a scan. */
static int
count_scan(struct storage_scan *s, const vecdb_filter *f, uint64_t *n)
{
	struct rpoint rp;
	int rv, match;

	for (; storage_scan_valid(s); storage_scan_next(s)) {
		if ((rv = storage_point_decode(s->c, &s->v, &rp)) != VECDB_OK ||
		    (rv = storage_scan_match(s, &rp, f, &match)) != VECDB_OK)
			return rv;
		*n += (uint64_t) match;
	}
	return VECDB_OK;
}

int
vecdb_count(vecdb *db, const char *coll, const vecdb_filter *filter,
    uint64_t *out)
{
	struct coll_state st;
	struct storage_scan s;
	struct coll c;
	MDB_txn *txn;
	uint64_t n = 0;
	int rv;

	vdb_err_clear();
	if ((rv = storage_read_begin(db, &txn)) != VECDB_OK)
		return rv;
	if ((rv = storage_coll_find(db, txn, coll, &c)) != VECDB_OK)
		goto out;
	if (filter == NULL) {
		if ((rv = storage_state_get(db, txn, c.id, &st)) == VECDB_OK)
			n = st.count;
		goto out;
	}
	if ((rv = storage_scan_open_filtered(db, txn, &c, NULL, filter,
		 &s)) != VECDB_OK)
		goto out;
	rv = count_scan(&s, filter, &n);
	if (storage_scan_close(&s) != VECDB_OK && rv == VECDB_OK)
		rv = VECDB_EIO;
out:
	mdb_txn_abort(txn);
	if (rv == VECDB_OK)
		*out = n;
	return rv;
}
