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
#include <float.h>
#include <math.h>

#include "filter.h"
#include "sparse.h"
#include "storage_impl.h"

/* Bytes of named dense vector i (0-based) of c. */
static size_t
xdense_size(const struct coll *c, uint32_t i)
{
	return (size_t) c->cfg.vectors[i].dimension *
	    vec_elem_size(c->cfg.vectors[i].vector_type);
}

int
storage_xset_parse(const struct coll *c, const uint8_t *blob, size_t len,
    struct xset *out)
{
	size_t dense = (size_t) c->cfg.dimension *
	    vec_elem_size(c->cfg.vector_type), at, end, n;
	int last = -1;

	out->n = out->nd = 0;
	if (len == dense)
		return VECDB_OK;
	if (len < dense + 5 || get_le32(blob + dense) != len - dense - 4)
		return vdb_err(VECDB_ECORRUPT, "vector of %zu bytes does not "
		    "fit collection '%s'", len, c->cfg.name);
	at = dense + 4;
	end = len;
	n = blob[at++];
	if (n == 0 || n > c->cfg.n_sparse + c->cfg.n_vectors)
		goto bad;
	for (size_t i = 0; i < n; i++) {
		struct xvec *x = &out->v[out->n];
		uint8_t slot;
		size_t sz;

		if (end - at < 1 || (int) (slot = blob[at]) <= last)
			goto bad;
		last = slot;
		if (slot & XDENSE) {
			slot &= (uint8_t) ~XDENSE;
			if (slot >= c->cfg.n_vectors ||
			    end - at - 1 < (sz = xdense_size(c, slot)))
				goto bad;
			out->d[out->nd].slot = slot;
			out->d[out->nd++].data = blob + at + 1;
			at += 1 + sz;
			continue;
		}
		if (end - at < 5)
			goto bad;
		x->slot = slot;
		x->n = get_le32(blob + at + 1);
		at += 5;
		if (x->slot >= c->cfg.n_sparse || x->n > SPARSE_NNZ_MAX ||
		    (end - at) / 8 < x->n)
			goto bad;
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
		out->n++;
	}
	if (at != end)
		goto bad;
	return VECDB_OK;
bad:
	return vdb_err(VECDB_ECORRUPT, "malformed named vectors in a point "
	    "of '%s'", c->cfg.name);
}

const void *
storage_xset_vector(const struct coll *c, int vslot, const uint8_t *blob,
    size_t len)
{
	struct xset xs;

	if (vslot == 0)
		return len >= (size_t) c->cfg.dimension *
		    vec_elem_size(c->cfg.vector_type) ? blob : NULL;
	if (storage_xset_parse(c, blob, len, &xs) != VECDB_OK)
		return NULL;
	for (size_t i = 0; i < xs.nd; i++)
		if (xs.d[i].slot == vslot - 1)
			return xs.d[i].data;
	return NULL;
}

/* has_vector of a filter: does the point carry the vector of that name? */
static int
point_has_vector(const char *name, void *arg)
{
	const struct storage_point_ctx *pc = arg;
	struct xset xs;
	int vslot;

	if (name[0] == '\0')
		return pc->c->cfg.dimension > 0 &&
		    storage_xset_vector(pc->c, 0, pc->rp->vec,
		    pc->rp->vec_len) != NULL;
	if ((vslot = storage_vector_slot(&pc->c->cfg, name)) > 0)
		return storage_xset_vector(pc->c, vslot, pc->rp->vec,
		    pc->rp->vec_len) != NULL;
	for (uint32_t i = 0; i < pc->c->cfg.n_sparse; i++) {
		if (strcmp(pc->c->cfg.sparse[i].name, name) != 0)
			continue;
		if (storage_xset_parse(pc->c, pc->rp->vec, pc->rp->vec_len,
		    &xs) != VECDB_OK)
			return 0;
		for (size_t k = 0; k < xs.n; k++)
			if (xs.v[k].slot == i)
				return 1;
		return 0;
	}
	return 0;
}

int
storage_point_match(const vecdb_filter *f, const json_t *payload,
    const struct coll *c, const struct rpoint *rp, const uint8_t *key,
    size_t klen)
{
	struct storage_point_ctx pc = { c, rp };
	struct filter_point pt = { key, klen, point_has_vector, &pc };

	return filter_match_point(f, payload, &pt);
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
storage_xlist_size(const struct coll *c, const struct xlist *l)
{
	size_t n = 0;

	if (l->n + l->nd == 0)
		return 0;
	for (size_t i = 0; i < l->n; i++)
		n += 5 + 8 * (size_t) l->v[i].n;
	for (size_t i = 0; i < l->nd; i++)
		n += 1 + xdense_size(c, l->d[i].slot);
	return 4 + 1 + n;
}

void
storage_xlist_write(const struct coll *c, const struct xlist *l,
    uint8_t *out)
{
	size_t at = 5;

	if (l->n + l->nd == 0)
		return;
	out[4] = (uint8_t) (l->n + l->nd);
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
	for (size_t i = 0; i < l->nd; i++) {
		const struct xdnew *x = &l->d[i];
		const vecdb_vector_config *v = &c->cfg.vectors[x->slot];
		size_t sz = xdense_size(c, x->slot);

		out[at++] = (uint8_t) (XDENSE | x->slot);
		if (x->old != NULL)
			memcpy(out + at, x->old, sz);
		else
			vec_encode(x->val, v->dimension, v->vector_type,
			    out + at);
		at += sz;
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

/* The named dense vectors of write p: each checked, in slot order, the
 * others of old kept by an update. */
static int
xdense_build(const struct coll *c, vecdb_write_op how,
    const struct wpoint *p, const struct xset *old, struct xlist *out)
{
	const struct wdense *w[VECDB_VECTORS_MAX] = { 0 };
	struct wdense rm[VECDB_SPARSE_MAX];
	int rv;

	/* removals given with the sparse vectors (by name only) */
	for (size_t i = 0; i < p->n_sparse && i < VECDB_SPARSE_MAX; i++) {
		int s = storage_vector_slot(&c->cfg, p->sparse[i].name) - 1;

		if (!p->sparse[i].remove || s < 0 ||
		    slot_of(c, p->sparse[i].name) >= 0)
			continue;
		if (w[s] != NULL)
			return vdb_err(VECDB_EINVAL, "vector '%s' is given "
			    "twice", p->sparse[i].name);
		if (how != VECDB_WRITE_UPDATE)
			return vdb_err(VECDB_EINVAL, "vector '%s': only an "
			    "update removes a vector", p->sparse[i].name);
		rm[i] = (struct wdense) { p->sparse[i].name, NULL, 0, 1 };
		w[s] = &rm[i];
		out->dense_changed = 1;
	}
	for (size_t i = 0; i < p->n_dense; i++) {
		const struct wdense *x = &p->dense[i];
		int s = storage_vector_slot(&c->cfg, x->name) - 1;
		const vecdb_vector_config *v;

		if (s < 0 && x->name != NULL && slot_of(c, x->name) >= 0)
			return vdb_err(VECDB_EINVAL, "'%s' is a sparse vector: "
			    "give {\"indices\": [...], \"values\": [...]}",
			    x->name);
		if (x->name == NULL || x->name[0] == '\0' || s < 0)
			return vdb_err(VECDB_EINVAL, "collection '%s' has no "
			    "vector '%s'", c->cfg.name, x->name ? x->name : "");
		if (w[s] != NULL)
			return vdb_err(VECDB_EINVAL, "vector '%s' is given "
			    "twice", x->name);
		if (x->remove && how != VECDB_WRITE_UPDATE)
			return vdb_err(VECDB_EINVAL, "vector '%s': only an "
			    "update removes a vector", x->name);
		v = &c->cfg.vectors[s];
		if (!x->remove && (x->data == NULL || x->dim != v->dimension))
			return vdb_err(VECDB_EDIM, "vector '%s' has %u "
			    "dimensions, collection '%s' expects %u", x->name,
			    x->data ? x->dim : 0, c->cfg.name, v->dimension);
		if (!x->remove && (rv = vec_validate(x->data, x->dim,
		    v->vector_type)) != VECDB_OK) {
			char msg[256];

			vdb_err_save(msg, sizeof(msg));
			return vdb_err(rv, "vector '%s': %s", x->name, msg);
		}
		w[s] = x;
		out->dense_changed = 1;
	}
	for (uint32_t s = 0; s < c->cfg.n_vectors; s++) {
		struct xdnew *x = &out->d[out->nd];

		if (w[s] != NULL) {
			if (w[s]->remove)
				continue;
			*x = (struct xdnew) { .slot = (uint8_t) s,
			    .val = w[s]->data };
			out->nd++;
			continue;
		}
		if (how != VECDB_WRITE_UPDATE || old == NULL)
			continue;
		for (size_t i = 0; i < old->nd; i++)
			if (old->d[i].slot == s) {
				*x = (struct xdnew) { .slot = (uint8_t) s,
				    .old = old->d[i].data };
				out->nd++;
			}
	}
	return VECDB_OK;
}

int
storage_xlist_build(const struct coll *c, vecdb_write_op how,
    const struct wpoint *p, const struct xset *old, struct xlist *out)
{
	int given[VECDB_SPARSE_MAX] = { 0 };
	const struct wsparse *w[VECDB_SPARSE_MAX] = { 0 };

	out->n = out->nd = 0;
	out->dense_changed = 0;
	for (size_t i = 0; i < p->n_sparse; i++) {
		int s = slot_of(c, p->sparse[i].name);

		/* a removal by name alone: the dense vector of that name */
		if (s < 0 && p->sparse[i].remove &&
		    storage_vector_slot(&c->cfg, p->sparse[i].name) > 0)
			continue;
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
	return xdense_build(c, how, p, old, out);
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

/*
 * A slot's count value: [points u64 LE][bound f32 LE]. The bound is the
 * largest |value| any of the slot's vectors ever held (at least FLT_MIN),
 * its sign bit set once a value was negative; 0 bits: unknown (a slot
 * written before bounds were kept). Deletes leave it as it is, so it only
 * loosens: a search may use it as an upper bound of every stored value.
 */
static uint32_t
bound_merge(uint32_t bits, const struct xvec *x)
{
	float m, b;
	int neg;

	if (bits == 0 || x == NULL)
		return bits;
	memcpy(&b, &bits, 4);
	m = fabsf(b);
	neg = signbit(b) != 0;
	for (uint32_t j = 0; j < x->n; j++) {
		uint32_t vb = get_le32(x->val_le + 4 * j);
		float v;

		memcpy(&v, &vb, 4);
		if (fabsf(v) > m)
			m = fabsf(v);
		neg |= v < 0;
	}
	b = neg ? -m : m;
	memcpy(&bits, &b, 4);
	return bits;
}

/* Count a point gaining (delta +1) or losing (-1) slot's vector, or
 * neither (0), and widen the slot's bound to the values of added (NULL:
 * none). Writes only what changed. */
static int
count_update(vecdb *db, MDB_txn *txn, uint32_t coll_id, uint8_t slot,
    int delta, const struct xvec *added)
{
	const float fresh = FLT_MIN;
	uint8_t kb[9], vb[12];
	MDB_val k = { 5, kb }, v;
	MDB_cursor *cur;
	uint64_t n = 0;
	uint32_t bits, nbits;
	int rc, found = 0;

	memcpy(&bits, &fresh, 4); /* a new slot: known, nothing yet */
	post_key(coll_id, slot, 0, kb);
	if ((rc = mdb_cursor_open(txn, db->sparse, &cur)) != 0)
		return storage_mdb_err(rc, "open cursor");
	rc = mdb_cursor_get(cur, &k, &v, MDB_SET_KEY);
	if (rc == 0) {
		found = 1;
		n = v.mv_size == 12 ? get_le64(v.mv_data) : 0;
		bits = v.mv_size == 12 ? get_le32((uint8_t *) v.mv_data + 8) :
		    0;
	} else if (rc == MDB_NOTFOUND) {
		rc = 0;
	}
	nbits = bound_merge(bits, added);
	if (rc == 0 && (delta != 0 || nbits != bits)) {
		if (found && (rc = mdb_cursor_del(cur, 0)) != 0)
			goto out;
		n = delta < 0 ? (n ? n - 1 : 0) : n + (uint64_t) (delta > 0);
		put_le64(vb, n);
		put_le32(vb + 8, nbits);
		k.mv_data = kb;
		k.mv_size = 5;
		v.mv_data = vb;
		v.mv_size = 12;
		rc = mdb_cursor_put(cur, &k, &v, 0);
	}
out:
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
		if ((rv = count_update(db, txn, c->id, (uint8_t) s,
		    (a == NULL) == (b == NULL) ? 0 : b != NULL ? 1 : -1, b)) !=
		    VECDB_OK)
			return rv;
	}
	return VECDB_OK;
}

/* ===== Search ===== */

/*
 * The exact top k by MaxScore over the query's posting lists. Each list
 * has an upper bound of what it adds to a point's score (|weight| x the
 * slot's value bound) and a lower bound (0 unless a weight or a stored
 * value is negative). Lists are walked whole, largest bound first (the
 * rare indices, whose IDF is high and whose lists are short), into
 * per-offset accumulators. After each one: theta, the k-th best score
 * some point is sure to reach (what it has plus the lower bounds still
 * to come, among points that pass the filter). Once the bounds still to
 * come sum below theta, no point left unseen can reach the top k: the
 * remaining lists (the common indices: long, and worth little) are only
 * looked up for the seen points that can still reach theta, one B-tree
 * probe each, or walked when those are too many. So the answer is the
 * full walk's, to the point and in the same order.
 */

/* Lists the last search on this thread took only for candidates. */
static _Thread_local unsigned last_pruned;

unsigned
storage_last_sparse_pruned(void)
{
	return last_pruned;
}

#define PROBE_COST 64   /* a probe costs about this many walked postings */
#define THETA_CAP 4096  /* filter checks one theta may spend */

struct qterm {
	uint8_t key[9];
	float w;                /* query value x IDF weight */
	size_t df;              /* postings */
	float ub, lb;           /* what the list can add to a point */
};

struct sctx {
	vecdb *db;
	MDB_txn *txn;
	MDB_cursor *cur;        /* on the sparse DB */
	const struct coll *c;
	const vecdb_filter *f;
	float *acc;             /* a score per offset below cap */
	uint64_t *seen;         /* a bit per offset: a posting reached it */
	uint64_t cap;
	uint8_t *memo;          /* with a filter: 0 unknown, 1 match, 2 not */
};

static inline void
accum_add(struct sctx *s, uint64_t off, float x)
{
	if (off >= s->cap)
		return; /* not a point of this snapshot's */
	s->acc[off] += x;
	s->seen[off >> 6] |= 1ull << (off & 63);
}

/* Position on term t's list: its length, or 0 when it has none. */
static int
term_open(struct sctx *s, struct qterm *t)
{
	MDB_val k = { 9, t->key }, v;
	int rc;

	t->df = 0;
	rc = mdb_cursor_get(s->cur, &k, &v, MDB_SET_KEY);
	if (rc == 0)
		rc = mdb_cursor_count(s->cur, &t->df);
	if (rc != 0 && rc != MDB_NOTFOUND)
		return storage_mdb_err(rc, "read sparse postings");
	return VECDB_OK;
}

/* Add term t's whole list to the accumulators. */
static int
term_walk(struct sctx *s, const struct qterm *t)
{
	MDB_val k = { 9, (void *) t->key }, v;
	int rc;

	rc = mdb_cursor_get(s->cur, &k, &v, MDB_SET_KEY);
	/* whole pages of the sorted duplicates at a time */
	for (rc = rc ? rc : mdb_cursor_get(s->cur, &k, &v, MDB_GET_MULTIPLE);
	    rc == 0; rc = mdb_cursor_get(s->cur, &k, &v, MDB_NEXT_MULTIPLE)) {
		const uint8_t *p = v.mv_data;

		for (size_t i = 0; i + 12 <= v.mv_size; i += 12) {
			uint32_t bits = get_le32(p + i + 8);
			float x;

			memcpy(&x, &bits, 4);
			accum_add(s, get_be64(p + i), t->w * x);
		}
	}
	return rc == MDB_NOTFOUND ? VECDB_OK :
	    storage_mdb_err(rc, "read sparse postings");
}

/* Add term t's postings of the points at offs[0..n) only. */
static int
term_probe(struct sctx *s, const struct qterm *t, const uint64_t *offs,
    size_t n)
{
	for (size_t i = 0; i < n; i++) {
		uint8_t vb[12] = { 0 };
		MDB_val k = { 9, (void *) t->key }, v = { 12, vb };
		uint32_t bits;
		float x;
		int rc;

		put_be64(vb, offs[i]);
		rc = mdb_cursor_get(s->cur, &k, &v, MDB_GET_BOTH_RANGE);
		if (rc == MDB_NOTFOUND)
			continue;
		if (rc != 0)
			return storage_mdb_err(rc, "read sparse postings");
		if (v.mv_size != 12 || get_be64(v.mv_data) != offs[i])
			continue;
		bits = get_le32((uint8_t *) v.mv_data + 8);
		memcpy(&x, &bits, 4);
		s->acc[offs[i]] += t->w * x;
	}
	return VECDB_OK;
}

/* The key of the point at offset off into h (0: none in this snapshot). */
static int
offset_key(struct sctx *s, uint64_t off, struct storage_hit *h, int *found)
{
	uint8_t kb[12];
	MDB_val k = { 12, kb }, v;
	int rc;

	*found = 0;
	put_be32(kb, s->c->id);
	put_be64(kb + 4, off);
	if ((rc = mdb_get(s->txn, s->db->offsets, &k, &v)) != 0 ||
	    v.mv_size > STORAGE_KEY_MAX)
		return rc == MDB_NOTFOUND ? VECDB_OK :
		    storage_mdb_err(rc, "read offset");
	h->klen = (uint8_t) v.mv_size;
	memcpy(h->key, v.mv_data, v.mv_size);
	*found = 1;
	return VECDB_OK;
}

/* Does the point at offset off exist and pass the filter? Remembered. */
static int
passes(struct sctx *s, uint64_t off, int *match)
{
	uint8_t pkey[STORAGE_PKEY_MAX];
	struct storage_hit h;
	struct rpoint rp;
	MDB_val k, v;
	json_t *pay = NULL;
	int rc, found;

	if (s->memo[off] != 0) {
		*match = s->memo[off] == 1;
		return VECDB_OK;
	}
	*match = 0;
	if ((rc = offset_key(s, off, &h, &found)) != VECDB_OK)
		return rc;
	if (found) {
		put_be32(pkey, s->c->id);
		memcpy(pkey + 4, h.key, h.klen);
		k.mv_size = 4 + (size_t) h.klen;
		k.mv_data = pkey;
		if ((rc = mdb_get(s->txn, s->db->points, &k, &v)) != 0)
			return storage_mdb_err(rc, "read point");
		if ((rc = storage_point_decode(s->c, &v, &rp)) != VECDB_OK)
			return rc;
		if (rp.payload_len == 0 || (pay = json_loadb(rp.payload,
		    rp.payload_len, 0, NULL)) != NULL)
			*match = storage_point_match(s->f, pay, s->c, &rp,
			    pkey + 4, k.mv_size - 4);
		json_decref(pay);
	}
	s->memo[off] = *match ? 1 : 2;
	return VECDB_OK;
}

/* Offer the point at offset off with score x to the best k (its key and,
 * with a filter, its payload read only when it would enter). */
static int
offer(struct sctx *s, uint64_t off, float x, struct storage_topk *t)
{
	struct storage_hit h;
	int rc, found, match;

	if (t->n == t->k && -x > t->h[0].dist)
		return VECDB_OK;
	memset(&h, 0, sizeof(h));
	h.dist = -x;
	if ((rc = offset_key(s, off, &h, &found)) != VECDB_OK || !found)
		return rc;
	if (t->n == t->k && storage_hit_cmp(&h, &t->h[0]) >= 0)
		return VECDB_OK;
	if (s->f != NULL && ((rc = passes(s, off, &match)) != VECDB_OK ||
	    !match))
		return rc;
	storage_topk_push(t, &h);
	return VECDB_OK;
}

struct cand {
	float x;
	uint64_t off;
};

static int
cand_desc(const void *a, const void *b)
{
	const struct cand *p = a, *q = b;

	return p->x < q->x ? 1 : p->x > q->x ? -1 :
	    (p->off > q->off) - (p->off < q->off);
}

/*
 * theta: the k-th best acc + lb over the points at offs[0..n) that pass
 * the filter (every posting of this snapshot is a live point's); -inf
 * when fewer than k do or, with a filter, when THETA_CAP checks of the
 * best first do not find k.
 */
static int
theta_of(struct sctx *s, const uint64_t *offs, size_t n, size_t k, float lb,
    float *theta)
{
	float *heap;
	struct cand *c;
	size_t hn = 0, found = 0;
	int rv = VECDB_OK, match;

	*theta = -INFINITY;
	if (n < k)
		return VECDB_OK;
	if (s->f == NULL) {
		/* a min-heap of the k best */
		if ((heap = vdb_malloc(k * sizeof(*heap))) == NULL)
			return vdb_err(VECDB_ENOMEM, "out of memory");
		for (size_t i = 0; i < n; i++) {
			float x = s->acc[offs[i]];
			size_t j, p;

			if (hn < k) {
				for (j = hn++; j > 0 && heap[(j - 1) / 2] > x;
				    j = (j - 1) / 2)
					heap[j] = heap[(j - 1) / 2];
				heap[j] = x;
			} else if (x > heap[0]) {
				for (j = 0; (p = 2 * j + 1) < k; j = p) {
					if (p + 1 < k && heap[p + 1] < heap[p])
						p++;
					if (heap[p] >= x)
						break;
					heap[j] = heap[p];
				}
				heap[j] = x;
			}
		}
		*theta = heap[0] + lb;
		vdb_free(heap);
		return VECDB_OK;
	}
	if ((c = vdb_malloc(n * sizeof(*c))) == NULL)
		return vdb_err(VECDB_ENOMEM, "out of memory");
	for (size_t i = 0; i < n; i++) {
		c[i].x = s->acc[offs[i]];
		c[i].off = offs[i];
	}
	qsort(c, n, sizeof(*c), cand_desc);
	for (size_t i = 0; i < n && i < THETA_CAP && rv == VECDB_OK; i++)
		if ((rv = passes(s, c[i].off, &match)) == VECDB_OK && match &&
		    ++found == k)
			*theta = c[i].x + lb;
	vdb_free(c);
	return rv;
}

/* The seen offsets, ascending, into *offs (n of them; caller frees). */
static int
seen_list(const struct sctx *s, uint64_t **offs, size_t *n)
{
	size_t m = 0;

	for (uint64_t w = 0; w <= s->cap / 64; w++)
		m += (size_t) __builtin_popcountll(s->seen[w]);
	if ((*offs = vdb_malloc((m ? m : 1) * sizeof(**offs))) == NULL)
		return vdb_err(VECDB_ENOMEM, "out of memory");
	*n = 0;
	for (uint64_t w = 0; w <= s->cap / 64; w++)
		for (uint64_t bits = s->seen[w]; bits != 0; bits &= bits - 1)
			(*offs)[(*n)++] = w * 64 +
			    (uint64_t) __builtin_ctzll(bits);
	return VECDB_OK;
}

/* Keep the offsets of offs whose acc + ub can still reach theta (ub: the
 * most the lists left can add; slack: float rounding). */
static size_t
cand_prune(const struct sctx *s, uint64_t *offs, size_t n, float ub,
    float slack, float theta)
{
	size_t m = 0;

	for (size_t i = 0; i < n; i++)
		if (s->acc[offs[i]] + ub + slack >= theta)
			offs[m++] = offs[i];
	return m;
}

static int
term_by_bound(const void *a, const void *b)
{
	const struct qterm *p = a, *q = b;

	if (p->ub != q->ub)
		return p->ub < q->ub ? 1 : -1;
	return (p->df > q->df) - (p->df < q->df);
}

/* The slot's point count and value bound (0: unknown). */
static uint64_t
slot_count(vecdb *db, MDB_txn *txn, uint32_t coll_id, uint8_t slot,
    uint32_t *bound)
{
	uint8_t kb[9];
	MDB_val k = { 5, kb }, v;

	post_key(coll_id, slot, 0, kb);
	if (bound != NULL)
		*bound = 0;
	if (mdb_get(txn, db->sparse, &k, &v) != 0 || v.mv_size != 12)
		return 0;
	if (bound != NULL)
		*bound = get_le32((uint8_t *) v.mv_data + 8);
	return get_le64(v.mv_data);
}

/*
 * Score the query's terms t[0..n) into s's accumulators and the best
 * t->k into top: MaxScore as above when bound (the slot's value bound)
 * is known, else every list walked.
 */
static int
sparse_topk(struct sctx *s, struct qterm *t, uint32_t n, uint32_t bound,
    struct storage_topk *top)
{
	uint64_t *offs = NULL;
	size_t nc = 0;
	float m = 0, ub = 0, lb = 0, sumw = 0, theta, slack;
	int neg = 0, rv = VECDB_OK;
	uint32_t i = 0;

	last_pruned = 0;
	if (bound != 0) {
		memcpy(&m, &bound, 4);
		neg = signbit(m) != 0;
		m = fabsf(m);
	}
	for (uint32_t j = 0; j < n; j++) {
		float a = fabsf(t[j].w) * m;

		t[j].ub = bound == 0 ? INFINITY : neg || t[j].w >= 0 ? a : 0;
		t[j].lb = bound == 0 ? -INFINITY : neg || t[j].w < 0 ? -a : 0;
		if (t[j].df > 0) {
			ub += t[j].ub;
			lb += t[j].lb;
			sumw += a;
		}
	}
	qsort(t, n, sizeof(*t), term_by_bound);
	/* each accumulator sums at most n rounded products */
	slack = 2.0f * (float) (n + 1) * FLT_EPSILON * sumw + FLT_MIN;
	/* walk whole lists while a point not seen yet might still enter */
	for (; i < n && rv == VECDB_OK; i++) {
		if (t[i].df == 0)
			continue;
		if ((rv = term_walk(s, &t[i])) != VECDB_OK)
			break;
		ub -= t[i].ub;
		lb -= t[i].lb;
		if (bound == 0 || i + 1 == n)
			continue;
		if ((rv = seen_list(s, &offs, &nc)) != VECDB_OK ||
		    (rv = theta_of(s, offs, nc, top->k, lb, &theta)) !=
		    VECDB_OK)
			break;
		if (ub + slack < theta) {
			i++;
			break;
		}
		vdb_free(offs);
		offs = NULL;
	}
	/* the rest only for the seen points that can still get there */
	if (rv == VECDB_OK && offs != NULL)
		nc = cand_prune(s, offs, nc, ub, slack, theta);
	for (; rv == VECDB_OK && offs != NULL && i < n; i++) {
		if (t[i].df == 0)
			continue;
		last_pruned++;
		rv = t[i].df < nc * PROBE_COST ? term_walk(s, &t[i]) :
		    term_probe(s, &t[i], offs, nc);
		ub -= t[i].ub;
		lb -= t[i].lb;
		if (rv == VECDB_OK && i + 1 < n && (rv = theta_of(s, offs, nc,
		    top->k, lb, &theta)) == VECDB_OK)
			nc = cand_prune(s, offs, nc, ub, slack, theta);
	}
	if (rv == VECDB_OK && offs != NULL) {
		for (size_t j = 0; j < nc && rv == VECDB_OK; j++)
			rv = offer(s, offs[j], s->acc[offs[j]], top);
	} else {
		for (uint64_t w = 0; w <= s->cap / 64 && rv == VECDB_OK; w++)
			for (uint64_t bits = s->seen[w]; bits != 0 &&
			    rv == VECDB_OK; bits &= bits - 1) {
				uint64_t off = w * 64 +
				    (uint64_t) __builtin_ctzll(bits);

				rv = offer(s, off, s->acc[off], top);
			}
	}
	vdb_free(offs);
	return rv;
}

int
vecdb_search_sparse(vecdb *db, const char *coll,
    const vecdb_sparse_search_params *p, vecdb_records **out)
{
	struct sctx s;
	struct storage_topk t = { NULL, 0, 0 };
	struct coll_state st;
	vecdb_records *res = NULL;
	struct qterm *q = NULL;
	uint32_t *qi = NULL, bound = 0;
	float *qv = NULL;
	struct coll c;
	int slot = -1, idf, rv;
	uint64_t N = 0;

	vdb_err_clear();
	*out = NULL;
	memset(&s, 0, sizeof(s));
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
	q = vdb_calloc(p->n ? p->n : 1, sizeof(*q));
	if (qi == NULL || qv == NULL || q == NULL) {
		rv = vdb_err(VECDB_ENOMEM, "out of memory");
		goto out;
	}
	memcpy(qi, p->indices, p->n * sizeof(*qi));
	memcpy(qv, p->values, p->n * sizeof(*qv));
	if ((rv = sparse_normalize(qi, qv, p->n)) != VECDB_OK ||
	    (rv = storage_read_begin(db, &s.txn)) != VECDB_OK ||
	    (rv = storage_coll_find(db, s.txn, coll, &c)) != VECDB_OK ||
	    (rv = storage_state_get(db, s.txn, c.id, &st)) != VECDB_OK)
		goto out;
	if ((slot = slot_of(&c, p->name)) < 0) {
		rv = vdb_err(VECDB_EINVAL, "collection '%s' has no sparse "
		    "vector '%s'", coll, p->name);
		goto out;
	}
	s.db = db;
	s.c = &c;
	s.f = p->filter;
	s.cap = st.next_offset;
	t.k = (size_t) p->limit + p->offset;
	if ((t.h = vdb_malloc(t.k * sizeof(*t.h))) == NULL ||
	    (s.acc = vdb_calloc(s.cap ? s.cap : 1, sizeof(float))) == NULL ||
	    (s.seen = vdb_calloc(s.cap / 64 + 1, 8)) == NULL ||
	    (s.f != NULL && (s.memo = vdb_calloc(s.cap ? s.cap : 1, 1)) ==
	    NULL)) {
		rv = vdb_err(VECDB_ENOMEM, "out of memory");
		goto out;
	}
	if (db->has_sparse) {
		if ((rv = mdb_cursor_open(s.txn, db->sparse, &s.cur)) != 0) {
			rv = storage_mdb_err(rv, "open cursor");
			goto out;
		}
		N = slot_count(db, s.txn, c.id, (uint8_t) slot, &bound);
		idf = !p->weighted &&
		    c.cfg.sparse[slot].modifier == VECDB_SPARSE_IDF;
		for (uint32_t i = 0; i < p->n && rv == VECDB_OK; i++) {
			post_key(c.id, (uint8_t) slot, qi[i], q[i].key);
			rv = term_open(&s, &q[i]);
			q[i].w = !idf ? qv[i] : (float) (qv[i] *
			    log1p(((double) N - (double) q[i].df + 0.5) /
			    ((double) q[i].df + 0.5)));
		}
		if (rv == VECDB_OK)
			rv = sparse_topk(&s, q, (uint32_t) p->n, bound, &t);
	}
	if (rv != VECDB_OK)
		goto out;
	storage_hits_sort(t.h, t.n);
	if ((res = storage_records_new(t.n > p->offset ? t.n - p->offset :
	    0)) == NULL) {
		rv = vdb_err(VECDB_ENOMEM, "out of memory");
		goto out;
	}
	if (t.n > p->offset && (rv = storage_hits_fill(db, s.txn, &c, t.h,
	    p->offset, t.n, p->with_payload, p->with_vector, res)) !=
	    VECDB_OK)
		goto out;
	for (size_t i = 0; i < res->count; i++)
		res->items[i].score = -res->items[i].distance;
	*out = res;
	res = NULL;
out:
	if (s.cur != NULL)
		mdb_cursor_close(s.cur);
	if (s.txn != NULL)
		mdb_txn_abort(s.txn);
	vecdb_records_free(res);
	vdb_free(t.h);
	vdb_free(s.acc);
	vdb_free(s.seen);
	vdb_free(s.memo);
	vdb_free(q);
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
	*points = slot_count(db, txn, c.id, (uint8_t) slot, NULL);
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
