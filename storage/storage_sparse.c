/*
 * storage_sparse.c: sparse vectors in the engine. A point's sparse
 * vectors in its vector bytes (the block storage_impl.h describes), both
 * ways, and the merge of a write's vectors with those a point had; their
 * posting lists in the `sparse` DB, kept by the writer in the same
 * transaction as the points; and the exact search over those lists.
 *
 * Why postings in LMDB and not an in-memory index (storage/index/
 * sparse.h, measured beside it by vecdb-bench sparse): a search then
 * reads the lists of its own snapshot, so it sees exactly the points its
 * transaction sees, with nothing to rebuild at open, replay after a
 * crash or ship to a replica; the writer pays one B-tree insert a pair.
 */
#include <math.h>

#include "filter.h"
#include "sparse.h"
#include "storage_impl.h"

int
storage_xset_parse(const struct coll *c, const uint8_t *blob, size_t len,
    struct xset *out)
{
	size_t dense = (size_t) c->cfg.dimension *
	    vec_elem_size(c->cfg.vector_type), at, end;
	int last = -1;

	out->n = 0;
	if (len == dense)
		return VECDB_OK;
	if (len < dense + 5 || get_le32(blob + dense) != len - dense - 4)
		return vdb_err(VECDB_ECORRUPT, "vector of %zu bytes does not "
		    "fit collection '%s'", len, c->cfg.name);
	at = dense + 4;
	end = len;
	out->n = blob[at++];
	if (out->n == 0 || out->n > c->cfg.n_sparse)
		goto bad;
	for (size_t i = 0; i < out->n; i++) {
		struct xvec *x = &out->v[i];

		if (end - at < 5)
			goto bad;
		x->slot = blob[at];
		x->n = get_le32(blob + at + 1);
		at += 5;
		if ((int) x->slot <= last || x->slot >= c->cfg.n_sparse ||
		    x->n > SPARSE_NNZ_MAX || (end - at) / 8 < x->n)
			goto bad;
		last = x->slot;
		x->idx_le = blob + at;
		x->val_le = blob + at + 4 * (size_t) x->n;
		at += 8 * (size_t) x->n;
		for (uint32_t j = 0; j < x->n; j++) {
			uint32_t v = get_le32(x->val_le + 4 * j);
			float f;

			memcpy(&f, &v, 4);
			if (!isfinite(f) || (j && get_le32(x->idx_le + 4 * j) <=
			    get_le32(x->idx_le + 4 * (j - 1))))
				goto bad;
		}
	}
	if (at != end)
		goto bad;
	return VECDB_OK;
bad:
	return vdb_err(VECDB_ECORRUPT, "malformed sparse vectors in a point "
	    "of '%s'", c->cfg.name);
}

void
storage_xvec_read(const struct xvec *x, uint32_t *idx, float *val)
{
	for (uint32_t j = 0; j < x->n; j++) {
		uint32_t v = get_le32(x->val_le + 4 * j);

		idx[j] = get_le32(x->idx_le + 4 * j);
		memcpy(&val[j], &v, 4);
	}
}

size_t
storage_xlist_size(const struct xlist *l)
{
	size_t n = 0;

	if (l->n == 0)
		return 0;
	for (size_t i = 0; i < l->n; i++)
		n += 5 + 8 * (size_t) l->v[i].n;
	return 4 + 1 + n;
}

void
storage_xlist_write(const struct xlist *l, uint8_t *out)
{
	size_t at = 5;

	if (l->n == 0)
		return;
	out[4] = (uint8_t) l->n;
	for (size_t i = 0; i < l->n; i++) {
		const struct xnew *x = &l->v[i];

		out[at] = x->slot;
		put_le32(out + at + 1, x->n);
		at += 5;
		if (x->old != NULL) /* kept as it was: the same bytes */
			memcpy(out + at, x->old->idx_le, 8 * (size_t) x->n);
		else for (uint32_t j = 0; j < x->n; j++) {
			uint32_t v;

			memcpy(&v, &x->val[j], 4);
			put_le32(out + at + 4 * j, x->idx[j]);
			put_le32(out + at + 4 * ((size_t) x->n + j), v);
		}
		at += 8 * (size_t) x->n;
	}
	put_le32(out, (uint32_t) (at - 4));
}

/* The slot of sparse vector name in c, or -1. */
static int
slot_of(const struct coll *c, const char *name)
{
	for (uint32_t i = 0; i < c->cfg.n_sparse; i++)
		if (strcmp(c->cfg.sparse[i].name, name) == 0)
			return (int) i;
	return -1;
}

int
storage_xlist_build(const struct coll *c, vecdb_write_op how,
    const struct wpoint *p, const struct xset *old, struct xlist *out)
{
	int given[VECDB_SPARSE_MAX] = { 0 };
	const struct wsparse *w[VECDB_SPARSE_MAX] = { 0 };

	out->n = 0;
	for (size_t i = 0; i < p->n_sparse; i++) {
		int s = slot_of(c, p->sparse[i].name);

		if (s < 0)
			return vdb_err(VECDB_EINVAL, "collection '%s' has no "
			    "sparse vector '%s'", c->cfg.name,
			    p->sparse[i].name);
		if (given[s])
			return vdb_err(VECDB_EINVAL, "sparse vector '%s' is "
			    "given twice", p->sparse[i].name);
		if (p->sparse[i].remove && how != VECDB_WRITE_UPDATE)
			return vdb_err(VECDB_EINVAL, "sparse vector '%s': "
			    "only an update removes a vector",
			    p->sparse[i].name);
		given[s] = 1;
		w[s] = &p->sparse[i];
	}
	/* slot order: what was given, else (update) what the point had */
	for (uint32_t s = 0; s < c->cfg.n_sparse; s++) {
		struct xnew *x = &out->v[out->n];

		if (given[s]) {
			if (w[s]->remove)
				continue;
			*x = (struct xnew) { .slot = (uint8_t) s,
			    .n = w[s]->n, .idx = w[s]->idx, .val = w[s]->val };
			out->n++;
			continue;
		}
		if (how != VECDB_WRITE_UPDATE || old == NULL)
			continue;
		for (size_t i = 0; i < old->n; i++)
			if (old->v[i].slot == s) {
				*x = (struct xnew) { .slot = (uint8_t) s,
				    .n = old->v[i].n, .old = &old->v[i] };
				out->n++;
			}
	}
	return VECDB_OK;
}

/* ===== Postings (writer thread) ===== */

/* A posting's key: [coll id][slot][index] (9 bytes); count key: 5. */
static void
post_key(uint32_t coll_id, uint8_t slot, uint32_t index, uint8_t out[9])
{
	put_be32(out, coll_id);
	out[4] = slot;
	put_be32(out + 5, index);
}

/* Add (delta +1) or remove (-1) the point counted by slot's count. */
static int
count_add(vecdb *db, MDB_txn *txn, uint32_t coll_id, uint8_t slot,
    int delta)
{
	uint8_t kb[9], vb[12];
	MDB_val k = { 5, kb }, v;
	MDB_cursor *cur;
	uint64_t n = 0;
	int rc;

	post_key(coll_id, slot, 0, kb);
	if ((rc = mdb_cursor_open(txn, db->sparse, &cur)) != 0)
		return storage_mdb_err(rc, "open cursor");
	rc = mdb_cursor_get(cur, &k, &v, MDB_SET_KEY);
	if (rc == 0) {
		if (v.mv_size == 12)
			n = get_le64(v.mv_data);
		rc = mdb_cursor_del(cur, 0);
	} else if (rc == MDB_NOTFOUND) {
		rc = 0;
	}
	if (rc == 0) {
		n = delta < 0 ? (n ? n - 1 : 0) : n + 1;
		put_le64(vb, n);
		memset(vb + 8, 0, 4);
		k.mv_data = kb;
		k.mv_size = 5;
		v.mv_data = vb;
		v.mv_size = 12;
		rc = mdb_cursor_put(cur, &k, &v, 0);
	}
	mdb_cursor_close(cur);
	return rc ? storage_mdb_err(rc, "write sparse count") : VECDB_OK;
}

/* Add (put) or delete one vector's postings under offset off. */
static int
postings_apply(vecdb *db, MDB_txn *txn, uint32_t coll_id, uint64_t off,
    const struct xvec *x, int put)
{
	uint8_t kb[9], vb[12];
	MDB_val k = { 9, kb }, v = { 12, vb };
	int rc;

	for (uint32_t j = 0; j < x->n; j++) {
		post_key(coll_id, x->slot, get_le32(x->idx_le + 4 * j), kb);
		put_be64(vb, off);
		memcpy(vb + 8, x->val_le + 4 * j, 4);
		rc = put ? mdb_put(txn, db->sparse, &k, &v, MDB_NODUPDATA) :
		    mdb_del(txn, db->sparse, &k, &v);
		if (rc != 0 && !(put && rc == MDB_KEYEXIST) &&
		    !(!put && rc == MDB_NOTFOUND))
			return storage_mdb_err(rc, put ? "write sparse "
			    "posting" : "delete sparse posting");
	}
	return VECDB_OK;
}

/* The vector of slot s in x, or NULL. */
static const struct xvec *
xset_slot(const struct xset *x, uint8_t s)
{
	for (size_t i = 0; x != NULL && i < x->n; i++)
		if (x->v[i].slot == s)
			return &x->v[i];
	return NULL;
}

int
storage_sparse_postings(vecdb *db, MDB_txn *txn, const struct coll *c,
    uint64_t old_off, const struct xset *old, uint64_t new_off,
    const struct xset *now)
{
	int rv;

	if (c->cfg.n_sparse == 0 || !db->has_sparse)
		return VECDB_OK;
	for (uint32_t s = 0; s < c->cfg.n_sparse; s++) {
		const struct xvec *a = xset_slot(old, (uint8_t) s);
		const struct xvec *b = xset_slot(now, (uint8_t) s);

		/* the same pairs under the same offset: nothing to do */
		if (a != NULL && b != NULL && old_off == new_off &&
		    a->n == b->n && memcmp(a->idx_le, b->idx_le,
		    8 * (size_t) a->n) == 0)
			continue;
		if (a != NULL && (rv = postings_apply(db, txn, c->id, old_off,
		    a, 0)) != VECDB_OK)
			return rv;
		if (b != NULL && (rv = postings_apply(db, txn, c->id, new_off,
		    b, 1)) != VECDB_OK)
			return rv;
		if ((a == NULL) != (b == NULL) && (rv = count_add(db, txn,
		    c->id, (uint8_t) s, b != NULL ? 1 : -1)) != VECDB_OK)
			return rv;
	}
	return VECDB_OK;
}

/* ===== Search ===== */

/* Score accumulators, one a point offset below cap (zeroed), and a bit
 * a point offset: set once a posting of the query reached it. Branch
 * free: the lists of common indices reach most points. */
struct accum {
	float *acc;
	uint64_t *seen;
	uint64_t cap;
};

static inline void
accum_add(struct accum *a, uint64_t off, float x)
{
	if (off >= a->cap)
		return; /* not a point of this snapshot's */
	a->acc[off] += x;
	a->seen[off >> 6] |= 1ull << (off & 63);
}

/* Add query pair (index, w) over slot's posting list; *df its length. */
static int
accum_list(vecdb *db, MDB_txn *txn, const struct coll *c, uint8_t slot,
    uint32_t index, float w, int idf, uint64_t N, struct accum *a)
{
	uint8_t kb[9];
	MDB_val k = { 9, kb }, v;
	MDB_cursor *cur;
	size_t df = 0;
	int rc, rv = VECDB_OK;

	post_key(c->id, slot, index, kb);
	if ((rc = mdb_cursor_open(txn, db->sparse, &cur)) != 0)
		return storage_mdb_err(rc, "open cursor");
	rc = mdb_cursor_get(cur, &k, &v, MDB_SET_KEY);
	if (rc == 0 && (rc = mdb_cursor_count(cur, &df)) == 0 && idf)
		w = (float) (w * log1p(((double) N - (double) df + 0.5) /
		    ((double) df + 0.5)));
	/* whole pages of the sorted duplicates at a time */
	for (rc = rc ? rc : mdb_cursor_get(cur, &k, &v, MDB_GET_MULTIPLE);
	    rc == 0 && rv == VECDB_OK;
	    rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT_MULTIPLE)) {
		const uint8_t *p = v.mv_data;

		for (size_t i = 0; i + 12 <= v.mv_size; i += 12) {
			uint32_t bits = get_le32(p + i + 8);
			float x;

			memcpy(&x, &bits, 4);
			accum_add(a, get_be64(p + i), w * x);
		}
	}
	mdb_cursor_close(cur);
	if (rv == VECDB_OK && rc != 0 && rc != MDB_NOTFOUND)
		rv = storage_mdb_err(rc, "read sparse postings");
	return rv;
}

/* The points that have slot's vector. */
static uint64_t
slot_count(vecdb *db, MDB_txn *txn, uint32_t coll_id, uint8_t slot)
{
	uint8_t kb[9];
	MDB_val k = { 5, kb }, v;

	post_key(coll_id, slot, 0, kb);
	if (mdb_get(txn, db->sparse, &k, &v) != 0 || v.mv_size != 12)
		return 0;
	return get_le64(v.mv_data);
}

/* Offer the point at offset off with score s to the best k (its key and,
 * with a filter, its payload read only when it would enter). */
static int
offer(vecdb *db, MDB_txn *txn, const struct coll *c, const vecdb_filter *f,
    uint64_t off, float s, struct storage_topk *t)
{
	uint8_t kb[12], pkey[STORAGE_PKEY_MAX];
	MDB_val k = { 12, kb }, v;
	struct storage_hit h;
	struct rpoint rp;
	json_t *pay = NULL;
	int rc, match;

	if (t->n == t->k && -s > t->h[0].dist)
		return VECDB_OK;
	put_be32(kb, c->id);
	put_be64(kb + 4, off);
	if ((rc = mdb_get(txn, db->offsets, &k, &v)) != 0 ||
	    v.mv_size > STORAGE_KEY_MAX)
		return rc == MDB_NOTFOUND ? VECDB_OK :
		    storage_mdb_err(rc, "read offset");
	memset(&h, 0, sizeof(h));
	h.dist = -s;
	h.klen = (uint8_t) v.mv_size;
	memcpy(h.key, v.mv_data, v.mv_size);
	if (t->n == t->k && storage_hit_cmp(&h, &t->h[0]) >= 0)
		return VECDB_OK;
	if (f != NULL) {
		put_be32(pkey, c->id);
		memcpy(pkey + 4, h.key, h.klen);
		k.mv_size = 4 + (size_t) h.klen;
		k.mv_data = pkey;
		if ((rc = mdb_get(txn, db->points, &k, &v)) != 0)
			return storage_mdb_err(rc, "read point");
		if ((rc = storage_point_decode(c, &v, &rp)) != VECDB_OK)
			return rc;
		if (rp.payload_len > 0 && (pay = json_loadb(rp.payload,
		    rp.payload_len, 0, NULL)) == NULL)
			return VECDB_OK;
		match = filter_match(f, pay);
		json_decref(pay);
		if (!match)
			return VECDB_OK;
	}
	storage_topk_push(t, &h);
	return VECDB_OK;
}

int
vecdb_search_sparse(vecdb *db, const char *coll,
    const vecdb_sparse_search_params *p, vecdb_records **out)
{
	struct accum a;
	struct storage_topk t = { NULL, 0, 0 };
	struct coll_state st;
	vecdb_records *res = NULL;
	uint32_t *qi = NULL;
	float *qv = NULL;
	struct coll c;
	MDB_txn *txn = NULL;
	int slot = -1, rv;
	uint64_t N;

	vdb_err_clear();
	*out = NULL;
	memset(&a, 0, sizeof(a));
	if (p->name == NULL)
		return vdb_err(VECDB_EINVAL, "a sparse search needs the name "
		    "of a sparse vector");
	if (p->limit == 0)
		return vdb_err(VECDB_EINVAL, "limit must be at least 1");
	if ((uint64_t) p->limit + p->offset > VECDB_LIMIT_MAX)
		return vdb_err(VECDB_EINVAL, "limit + offset is over %d",
		    VECDB_LIMIT_MAX);
	if (p->n > SPARSE_NNZ_MAX || (p->n && (!p->indices || !p->values)))
		return vdb_err(VECDB_EINVAL, "a sparse query has at most %u "
		    "pairs, given as indices and values", SPARSE_NNZ_MAX);
	qi = vdb_malloc((p->n ? p->n : 1) * sizeof(*qi));
	qv = vdb_malloc((p->n ? p->n : 1) * sizeof(*qv));
	if (qi == NULL || qv == NULL) {
		rv = vdb_err(VECDB_ENOMEM, "out of memory");
		goto out;
	}
	memcpy(qi, p->indices, p->n * sizeof(*qi));
	memcpy(qv, p->values, p->n * sizeof(*qv));
	if ((rv = sparse_normalize(qi, qv, p->n)) != VECDB_OK ||
	    (rv = storage_read_begin(db, &txn)) != VECDB_OK ||
	    (rv = storage_coll_find(db, txn, coll, &c)) != VECDB_OK ||
	    (rv = storage_state_get(db, txn, c.id, &st)) != VECDB_OK)
		goto out;
	if ((slot = slot_of(&c, p->name)) < 0) {
		rv = vdb_err(VECDB_EINVAL, "collection '%s' has no sparse "
		    "vector '%s'", coll, p->name);
		goto out;
	}
	t.k = (size_t) p->limit + p->offset;
	a.cap = st.next_offset;
	if ((t.h = vdb_malloc(t.k * sizeof(*t.h))) == NULL ||
	    (a.acc = vdb_calloc(a.cap ? a.cap : 1, sizeof(float))) == NULL ||
	    (a.seen = vdb_calloc(a.cap / 64 + 1, 8)) == NULL) {
		rv = vdb_err(VECDB_ENOMEM, "out of memory");
		goto out;
	}
	N = db->has_sparse ? slot_count(db, txn, c.id, (uint8_t) slot) : 0;
	for (uint32_t i = 0; db->has_sparse && i < p->n && rv == VECDB_OK;
	    i++)
		rv = accum_list(db, txn, &c, (uint8_t) slot, qi[i], qv[i],
		    !p->weighted && c.cfg.sparse[slot].modifier ==
		    VECDB_SPARSE_IDF, N, &a);
	for (uint64_t w = 0; w <= a.cap / 64 && rv == VECDB_OK; w++)
		for (uint64_t bits = a.seen[w]; bits != 0 && rv == VECDB_OK;
		    bits &= bits - 1) {
			uint64_t off = w * 64 + (uint64_t) __builtin_ctzll(bits);

			rv = offer(db, txn, &c, p->filter, off, a.acc[off], &t);
		}
	if (rv != VECDB_OK)
		goto out;
	storage_hits_sort(t.h, t.n);
	if ((res = storage_records_new(t.n > p->offset ? t.n - p->offset :
	    0)) == NULL) {
		rv = vdb_err(VECDB_ENOMEM, "out of memory");
		goto out;
	}
	if (t.n > p->offset && (rv = storage_hits_fill(db, txn, &c, t.h,
	    p->offset, t.n, p->with_payload, p->with_vector, res)) !=
	    VECDB_OK)
		goto out;
	for (size_t i = 0; i < res->count; i++)
		res->items[i].score = -res->items[i].distance;
	*out = res;
	res = NULL;
out:
	if (txn != NULL)
		mdb_txn_abort(txn);
	vecdb_records_free(res);
	vdb_free(t.h);
	vdb_free(a.acc);
	vdb_free(a.seen);
	vdb_free(qi);
	vdb_free(qv);
	return rv;
}

int
vecdb_sparse_stats(vecdb *db, const char *coll, const char *name,
    const uint32_t *indices, size_t n, uint64_t *points, uint64_t *df)
{
	MDB_txn *txn;
	MDB_cursor *cur = NULL;
	struct coll c;
	int slot, rc, rv;

	vdb_err_clear();
	*points = 0;
	if (name == NULL || (n > 0 && indices == NULL))
		return vdb_err(VECDB_EINVAL, "sparse statistics need a name "
		    "and indices");
	if ((rv = storage_read_begin(db, &txn)) != VECDB_OK)
		return rv;
	if ((rv = storage_coll_find(db, txn, coll, &c)) != VECDB_OK)
		goto out;
	if ((slot = slot_of(&c, name)) < 0) {
		rv = vdb_err(VECDB_EINVAL, "collection '%s' has no sparse "
		    "vector '%s'", coll, name);
		goto out;
	}
	for (size_t i = 0; i < n; i++)
		df[i] = 0;
	if (!db->has_sparse)
		goto out;
	*points = slot_count(db, txn, c.id, (uint8_t) slot);
	if ((rc = mdb_cursor_open(txn, db->sparse, &cur)) != 0) {
		rv = storage_mdb_err(rc, "open cursor");
		goto out;
	}
	for (size_t i = 0; i < n && rv == VECDB_OK; i++) {
		uint8_t kb[9];
		MDB_val k = { 9, kb }, v;
		size_t cnt = 0;

		post_key(c.id, (uint8_t) slot, indices[i], kb);
		rc = mdb_cursor_get(cur, &k, &v, MDB_SET_KEY);
		if (rc == 0 && (rc = mdb_cursor_count(cur, &cnt)) == 0)
			df[i] = cnt;
		else if (rc != MDB_NOTFOUND)
			rv = storage_mdb_err(rc, "read sparse postings");
	}
out:
	if (cur != NULL)
		mdb_cursor_close(cur);
	mdb_txn_abort(txn);
	return rv;
}
