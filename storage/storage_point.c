/*
 * storage_point.c: point records and the point operations: insert, upsert,
 * update, delete, get.
 */
#include <stdio.h>

#include "sparse.h"
#include "storage_impl.h"

/* ===== Records ===== */

size_t
storage_pkey(uint32_t coll_id, const vecdb_id *id, uint8_t *out)
{
	put_be32(out, coll_id);
	return 4 + vdb_id_key(id, out + 4);
}

int
storage_point_decode(const struct coll *c, const MDB_val *v,
    struct rpoint *out)
{
	const uint8_t *p = v->mv_data;
	size_t vbytes;

	if (v->mv_size < POINT_HDR || (p[0] != STORAGE_REC_VERSION &&
	    p[0] != STORAGE_REC_VERSION_EXT))
		return vdb_err(VECDB_ECORRUPT, "malformed point record");
	out->offset = get_le64(p + 1);
	out->seq = get_le64(p + 9);
	out->dim = get_le32(p + 17);
	vbytes = (size_t) out->dim * vec_elem_size(c->cfg.vector_type);
	if (out->dim != c->cfg.dimension || v->mv_size < POINT_HDR + vbytes)
		return vdb_err(VECDB_ECORRUPT,
		    "point record does not fit collection '%s'", c->cfg.name);
	if (p[0] == STORAGE_REC_VERSION_EXT) {
		/* the sparse vectors' block: [len u32][len bytes] */
		if (v->mv_size - POINT_HDR - vbytes < 4 ||
		    v->mv_size - POINT_HDR - vbytes - 4 <
		    get_le32(p + POINT_HDR + vbytes))
			return vdb_err(VECDB_ECORRUPT, "point record does "
			    "not fit collection '%s'", c->cfg.name);
		vbytes += 4 + (size_t) get_le32(p + POINT_HDR + vbytes);
	}
	out->vec = p + POINT_HDR;
	out->vec_len = vbytes;
	out->payload = (const char *) p + POINT_HDR + vbytes;
	out->payload_len = v->mv_size - POINT_HDR - vbytes;
	return VECDB_OK;
}

/* The record's named vectors, sparse and dense, from the point's
 * block. */
static int
sparse_fill(const struct coll *c, const struct rpoint *rp, vecdb_record *out)
{
	struct xset xs;
	int rv;

	if ((rv = storage_xset_parse(c, rp->vec, rp->vec_len, &xs)) !=
	    VECDB_OK)
		return rv;
	if ((xs.n > 0 && (out->sparse = vdb_calloc(xs.n,
	    sizeof(*out->sparse))) == NULL) || (xs.nd > 0 &&
	    (out->named = vdb_calloc(xs.nd, sizeof(*out->named))) == NULL))
		return vdb_err(VECDB_ENOMEM, "out of memory");
	for (size_t i = 0; i < xs.n; i++) {
		vecdb_sparse_record *r = &out->sparse[i];
		size_t n = xs.v[i].n ? xs.v[i].n : 1;

		out->n_sparse = i + 1;
		memcpy(r->name, c->cfg.sparse[xs.v[i].slot].name,
		    sizeof(r->name));
		r->n = xs.v[i].n;
		if ((r->indices = vdb_malloc(n * sizeof(uint32_t))) == NULL ||
		    (r->values = vdb_malloc(n * sizeof(float))) == NULL)
			return vdb_err(VECDB_ENOMEM, "out of memory");
		storage_xvec_read(&xs.v[i], r->indices, r->values);
	}
	for (size_t i = 0; i < xs.nd; i++) {
		const vecdb_vector_config *v = &c->cfg.vectors[xs.d[i].slot];
		vecdb_named_record *r = &out->named[i];

		out->n_named = i + 1;
		memcpy(r->name, v->name, sizeof(r->name));
		r->dim = v->dimension;
		if ((r->data = vdb_malloc(v->dimension * sizeof(float))) ==
		    NULL)
			return vdb_err(VECDB_ENOMEM, "out of memory");
		vec_decode(xs.d[i].data, v->dimension, v->vector_type,
		    r->data);
	}
	return VECDB_OK;
}

int
storage_record_fill(const struct coll *c, const vecdb_id *id,
    const struct rpoint *rp, int with_payload, int with_vector,
    vecdb_record *out)
{
	int rv;

	memset(out, 0, sizeof(*out));
	out->id = *id;
	out->dim = rp->dim;
	if (with_vector) {
		/* none for a collection without a default vector */
		out->vector = rp->dim == 0 ? NULL :
		    vdb_malloc((size_t) rp->dim * sizeof(float));
		if (rp->dim > 0 && out->vector == NULL)
			return vdb_err(VECDB_ENOMEM, "out of memory");
		if (rp->dim > 0)
			vec_decode(rp->vec, rp->dim, c->cfg.vector_type,
			    out->vector);
		if ((rv = sparse_fill(c, rp, out)) != VECDB_OK) {
			vdb_record_fini(out);
			return rv;
		}
	}
	if (with_payload) {
		size_t n = rp->payload_len ? rp->payload_len : 2;
		if ((out->payload = vdb_malloc(n + 1)) == NULL) {
			vdb_record_fini(out);
			return vdb_err(VECDB_ENOMEM, "out of memory");
		}
		memcpy(out->payload, rp->payload_len ? rp->payload : "{}", n);
		out->payload[n] = '\0';
	}
	return VECDB_OK;
}

/* ===== Writing a point (writer thread) ===== */

/* The offsets key [coll id][offset]. */
static void
offset_key(uint32_t coll_id, uint64_t off, uint8_t out[12])
{
	put_be32(out, coll_id);
	put_be64(out + 4, off);
}

/* Delete the offsets entry of a point record. */
static int
offset_del(vecdb *db, MDB_txn *txn, uint32_t coll_id, uint64_t off)
{
	uint8_t kb[12];
	MDB_val k = { 12, kb };
	int rc;

	offset_key(coll_id, off, kb);
	rc = mdb_del(txn, db->offsets, &k, NULL);
	if (rc != 0 && rc != MDB_NOTFOUND)
		return storage_mdb_err(rc, "delete offset");
	return VECDB_OK;
}

/* Map a new offset to the point key (MDB_NOOVERWRITE: refuse one in use). */
static int
offset_put_flags(vecdb *db, MDB_txn *txn, uint32_t coll_id, uint64_t off,
    const uint8_t *pkey, size_t pklen, unsigned flags)
{
	uint8_t kb[12];
	MDB_val k = { 12, kb }, v = { pklen - 4, (void *) (pkey + 4) };
	int rc;

	offset_key(coll_id, off, kb);
	rc = mdb_put(txn, db->offsets, &k, &v, flags);
	if (rc == MDB_KEYEXIST)
		return vdb_err(VECDB_ECORRUPT, "offset %llu is in use here: "
		    "the replica has diverged", (unsigned long long) off);
	return rc ? storage_mdb_err(rc, "write offset") : VECDB_OK;
}

static int
offset_put(vecdb *db, MDB_txn *txn, uint32_t coll_id, uint64_t off,
    const uint8_t *pkey, size_t pklen)
{
	return offset_put_flags(db, txn, coll_id, off, pkey, pklen, 0);
}

/* The final vector bytes and payload of a put, owned copies. */
struct put_state {
	uint8_t *vec;        /* encoded vector */
	size_t vec_len;
	const char *pay;     /* payload bytes (borrowed or in pay_copy) */
	size_t pay_len;
	char *pay_copy;      /* owned copy of a kept payload */
	uint64_t offset;
	uint32_t dim;
};

/* Work out what a put writes, copying kept parts of the old record. */
static int
put_prepare(const struct coll *c, struct coll_state *st, vecdb_write_op how,
    const struct wpoint *p, const struct rpoint *old, struct put_state *ps)
{
	vecdb_vtype t = c->cfg.vector_type;
	size_t dense = (size_t) c->cfg.dimension * vec_elem_size(t);
	struct xset had;
	struct xlist xl;
	int rv;

	/* the sparse vectors it will have: checked before anything moves */
	if (old != NULL && how == VECDB_WRITE_UPDATE && (rv =
	    storage_xset_parse(c, old->vec, old->vec_len, &had)) != VECDB_OK)
		return rv;
	if ((rv = storage_xlist_build(c, how, p, old != NULL &&
	    how == VECDB_WRITE_UPDATE ? &had : NULL, &xl)) != VECDB_OK)
		return rv;
	ps->dim = c->cfg.dimension;
	ps->vec_len = dense + storage_xlist_size(c, &xl);
	if ((ps->vec = vdb_malloc(ps->vec_len)) == NULL)
		return vdb_err(VECDB_ENOMEM, "out of memory");
	if (p->vector != NULL)
		vec_encode(p->vector, p->dim, t, ps->vec);
	else if (dense > 0)
		memcpy(ps->vec, old->vec, dense);
	/* a new offset whenever a dense vector changes: the graphs see the
	 * point as new; an update of the payload or sparse vectors only
	 * keeps it */
	if (p->vector != NULL || xl.dense_changed || old == NULL)
		ps->offset = st->next_offset++;
	else
		ps->offset = old->offset;
	storage_xlist_write(c, &xl, ps->vec + dense);
	if (p->payload != NULL || old == NULL) {
		ps->pay = p->payload;
		ps->pay_len = p->payload ? p->payload_len : 0;
	} else if (old->payload_len > 0) {
		if ((ps->pay_copy = vdb_malloc(old->payload_len)) == NULL)
			return vdb_err(VECDB_ENOMEM, "out of memory");
		memcpy(ps->pay_copy, old->payload, old->payload_len);
		ps->pay = ps->pay_copy;
		ps->pay_len = old->payload_len;
	}
	return VECDB_OK;
}

/* Check a new vector against the collection. */
static int
vector_check(const struct coll *c, const struct wpoint *p)
{
	if (p->dim != c->cfg.dimension)
		return vdb_err(VECDB_EDIM,
		    "vector has %u dimensions, collection '%s' expects %u",
		    p->dim, c->cfg.name, c->cfg.dimension);
	return vec_validate(p->vector, p->dim, c->cfg.vector_type);
}

/* Store the record and append its WAL entry. */
static int
put_write(vecdb *db, MDB_txn *txn, const uint8_t *pkey, size_t pklen,
    const struct put_state *ps, size_t elem, uint64_t seq, uint64_t old_off,
    struct wal_batch *wal)
{
	MDB_val k = { pklen, (void *) pkey }, v;
	uint8_t *d;
	int rc;

	v.mv_size = POINT_HDR + ps->vec_len + ps->pay_len;
	if ((rc = mdb_put(txn, db->points, &k, &v, MDB_RESERVE)) != 0)
		return storage_mdb_err(rc, "write point");
	d = v.mv_data;
	d[0] = ps->vec_len > (size_t) ps->dim * elem ?
	    STORAGE_REC_VERSION_EXT : STORAGE_REC_VERSION;
	put_le64(d + 1, ps->offset);
	put_le64(d + 9, seq);
	put_le32(d + 17, ps->dim);
	memcpy(d + POINT_HDR, ps->vec, ps->vec_len);
	if (ps->pay_len)
		memcpy(d + POINT_HDR + ps->vec_len, ps->pay, ps->pay_len);
	if (wal == NULL)
		return VECDB_OK;
	return storage_wal_batch_put(wal, pkey + 4, pklen - 4, old_off,
	    ps->offset, ps->vec, ps->vec_len, ps->pay, ps->pay_len);
}

/* Move the postings of a point's sparse vectors from its old record
 * (NULL: none) to its new vector bytes (NULL: deleted). */
static int
sparse_update(vecdb *db, MDB_txn *txn, const struct coll *c,
    const struct rpoint *old, uint64_t off, const uint8_t *vec, size_t len)
{
	struct xset a, b;
	int rv;

	if (c->cfg.n_sparse == 0)
		return VECDB_OK;
	if ((old != NULL && (rv = storage_xset_parse(c, old->vec,
	    old->vec_len, &a)) != VECDB_OK) ||
	    (vec != NULL && (rv = storage_xset_parse(c, vec, len, &b)) !=
	    VECDB_OK))
		return rv;
	return storage_sparse_postings(db, txn, c, old ? old->offset : 0,
	    old ? &a : NULL, off, vec ? &b : NULL);
}

int
storage_point_put_txn(vecdb *db, MDB_txn *txn, const struct coll *c,
    struct coll_state *st, vecdb_write_op how, const struct wpoint *p,
    uint64_t seq, struct wal_batch *wal, const struct pindex_set *ix)
{
	uint8_t pkey[STORAGE_PKEY_MAX];
	size_t pklen = storage_pkey(c->id, &p->id, pkey);
	MDB_val k = { pklen, pkey }, v;
	struct put_state ps;
	struct rpoint old;
	char idbuf[VECDB_ID_STRLEN];
	int rc, rv, exists;

	rc = mdb_get(txn, db->points, &k, &v);
	if (rc != 0 && rc != MDB_NOTFOUND)
		return storage_mdb_err(rc, "read point");
	exists = rc == 0;
	if (exists && how == VECDB_WRITE_INSERT)
		return vdb_err(VECDB_EEXIST, "point %s already exists",
		    vecdb_id_format(&p->id, idbuf));
	if (!exists && how == VECDB_WRITE_UPDATE)
		return vdb_err(VECDB_ENOTFOUND, "point %s not found",
		    vecdb_id_format(&p->id, idbuf));
	if (exists && (rv = storage_point_decode(c, &v, &old)) != VECDB_OK)
		return rv;
	/* the default vector: required, unless the collection has none */
	if (p->vector == NULL && how != VECDB_WRITE_UPDATE &&
	    c->cfg.dimension > 0)
		return vdb_err(VECDB_EINVAL, "point has no vector");
	if (p->vector != NULL && c->cfg.dimension == 0)
		return vdb_err(VECDB_EDIM, "collection '%s' has no default "
		    "vector: give the point named vectors only",
		    c->cfg.name);
	if (p->vector != NULL && (rv = vector_check(c, p)) != VECDB_OK)
		return rv;
	memset(&ps, 0, sizeof(ps));
	rv = put_prepare(c, st, how, p, exists ? &old : NULL, &ps);
	if (rv == VECDB_OK && exists && ps.offset != old.offset)
		rv = offset_del(db, txn, c->id, old.offset);
	if (rv == VECDB_OK && (!exists || ps.offset != old.offset))
		rv = offset_put(db, txn, c->id, ps.offset, pkey, pklen);
	if (rv == VECDB_OK)
		rv = storage_pindex_update(db, txn, c->id, ix, pkey + 4,
		    pklen - 4, exists ? old.payload : NULL,
		    exists ? old.payload_len : 0, ps.pay, ps.pay_len);
	if (rv == VECDB_OK)
		rv = sparse_update(db, txn, c, exists ? &old : NULL, ps.offset,
		    ps.vec, ps.vec_len);
	if (rv == VECDB_OK) {
		if (exists)
			st->bytes -= pklen + v.mv_size;
		else
			st->count++;
		rv = put_write(db, txn, pkey, pklen, &ps,
		    vec_elem_size(c->cfg.vector_type), seq,
		    exists ? old.offset : WAL_NO_OFFSET, wal);
		st->bytes += pklen + POINT_HDR + ps.vec_len + ps.pay_len;
	}
	vdb_free(ps.vec);
	vdb_free(ps.pay_copy);
	return rv;
}

int
storage_point_del_txn(vecdb *db, MDB_txn *txn, const struct coll *c,
    struct coll_state *st, const vecdb_id *id, int *found, uint64_t *offset,
    const struct pindex_set *ix)
{
	uint8_t pkey[STORAGE_PKEY_MAX];
	size_t pklen = storage_pkey(c->id, id, pkey);
	MDB_val k = { pklen, pkey }, v;
	struct rpoint old;
	int rc, rv;

	rc = mdb_get(txn, db->points, &k, &v);
	if (rc == MDB_NOTFOUND) {
		*found = 0;
		return VECDB_OK;
	}
	if (rc != 0)
		return storage_mdb_err(rc, "read point");
	if ((rv = storage_point_decode(c, &v, &old)) != VECDB_OK ||
	    (rv = offset_del(db, txn, c->id, old.offset)) != VECDB_OK ||
	    (rv = storage_pindex_update(db, txn, c->id, ix, pkey + 4,
		 pklen - 4, old.payload, old.payload_len, NULL, 0)) != VECDB_OK ||
	    (rv = sparse_update(db, txn, c, &old, 0, NULL, 0)) != VECDB_OK)
		return rv;
	st->count--;
	st->bytes -= pklen + v.mv_size;
	if ((rc = mdb_del(txn, db->points, &k, NULL)) != 0)
		return storage_mdb_err(rc, "delete point");
	*found = 1;
	*offset = old.offset;
	return VECDB_OK;
}

/* Check a replicated entry against the point it replaces (or not). */
static int
raw_check(const struct coll *c, const struct wal_entry *e, int exists,
    const struct rpoint *old)
{
	vecdb_id id;
	struct xset xs;
	int rv;

	if (vdb_key_id(e->key, e->klen, &id) != VECDB_OK)
		return vdb_err(VECDB_ECORRUPT, "bad point key");
	if ((rv = storage_xset_parse(c, e->vec, e->vlen, &xs)) != VECDB_OK)
		return rv;
	if (e->offset == WAL_NO_OFFSET)
		return vdb_err(VECDB_ECORRUPT, "point has no offset");
	if (exists ? old->offset != e->old_offset :
		     e->old_offset != WAL_NO_OFFSET)
		return vdb_err(VECDB_ECORRUPT, "point's old offset differs "
		    "from this database's: the replica has diverged");
	return VECDB_OK;
}

int
storage_point_put_raw(vecdb *db, MDB_txn *txn, const struct coll *c,
    struct coll_state *st, const struct wal_entry *e, uint64_t seq,
    const struct pindex_set *ix)
{
	uint8_t pkey[STORAGE_PKEY_MAX], d[POINT_HDR];
	MDB_val k = { 4 + e->klen, pkey }, v;
	struct rpoint old;
	int rc, rv, exists;

	put_be32(pkey, c->id);
	memcpy(pkey + 4, e->key, e->klen);
	if ((rc = mdb_get(txn, db->points, &k, &v)) != 0 && rc != MDB_NOTFOUND)
		return storage_mdb_err(rc, "read point");
	exists = rc == 0;
	if ((exists && (rv = storage_point_decode(c, &v, &old)) != VECDB_OK) ||
	    (rv = raw_check(c, e, exists, &old)) != VECDB_OK)
		return rv;
	if (exists && old.offset != e->offset &&
	    (rv = offset_del(db, txn, c->id, old.offset)) != VECDB_OK)
		return rv;
	/* Offsets are never reused, so a new one must be free here. */
	if ((!exists || old.offset != e->offset) &&
	    (rv = offset_put_flags(db, txn, c->id, e->offset, pkey, k.mv_size,
		 MDB_NOOVERWRITE)) != VECDB_OK)
		return rv;
	if ((rv = storage_pindex_update(db, txn, c->id, ix, e->key, e->klen,
		 exists ? old.payload : NULL, exists ? old.payload_len : 0,
		 e->payload, e->plen)) != VECDB_OK ||
	    (rv = sparse_update(db, txn, c, exists ? &old : NULL, e->offset,
		 e->vec, e->vlen)) != VECDB_OK)
		return rv;
	if (exists)
		st->bytes -= k.mv_size + v.mv_size;
	else
		st->count++;
	if (e->offset >= st->next_offset)
		st->next_offset = e->offset + 1;
	d[0] = e->vlen > (size_t) c->cfg.dimension *
	    vec_elem_size(c->cfg.vector_type) ? STORAGE_REC_VERSION_EXT :
	    STORAGE_REC_VERSION;
	put_le64(d + 1, e->offset);
	put_le64(d + 9, seq);
	put_le32(d + 17, c->cfg.dimension);
	v.mv_size = POINT_HDR + e->vlen + e->plen;
	if ((rc = mdb_put(txn, db->points, &k, &v, MDB_RESERVE)) != 0)
		return storage_mdb_err(rc, "write point");
	memcpy(v.mv_data, d, POINT_HDR);
	memcpy((uint8_t *) v.mv_data + POINT_HDR, e->vec, e->vlen);
	if (e->plen)
		memcpy((uint8_t *) v.mv_data + POINT_HDR + e->vlen, e->payload,
		    e->plen);
	st->bytes += k.mv_size + v.mv_size;
	return VECDB_OK;
}

/* Prefix the thread's message with the point's place in its batch. */
static int
point_err(int rv, size_t i, size_t n, const vecdb_id *id)
{
	char msg[512], idbuf[VECDB_ID_STRLEN];

	if (n <= 1)
		return rv;
	vdb_err_save(msg, sizeof(msg));
	return vdb_err(rv, "point %zu of %zu (id %s): %s", i, n,
	    vecdb_id_format(id, idbuf), msg);
}

/* An entry's WAL bytes for point p, as far as known before writing it
 * (an update that keeps the payload copies one of unknown length). */
static size_t
put_entry_size(const struct coll *c, const struct wpoint *p)
{
	size_t sparse = p->n_sparse + p->n_dense ? 5 : 0;

	for (size_t i = 0; i < p->n_sparse; i++)
		sparse += 5 + 8 * (size_t) p->sparse[i].n;
	for (size_t i = 0; i < p->n_dense; i++)
		sparse += 1 + (size_t) p->dense[i].dim * sizeof(float);
	return storage_wal_put_size((size_t) c->cfg.dimension *
	    vec_elem_size(c->cfg.vector_type) + sparse, p->payload_len);
}

int
storage_apply_points(struct wctx *w, struct wreq *r)
{
	struct wreq_write *q = &r->u.write;
	struct wal_batch wal;
	struct pindex_set ix;
	struct coll_state st;
	struct coll c;
	int rv;

	if ((rv = storage_coll_find(w->db, w->txn, q->coll, &c)) != VECDB_OK ||
	    (rv = storage_state_get(w->db, w->txn, c.id, &st)) != VECDB_OK ||
	    (rv = storage_pindex_load(w->db, w->txn, c.id, &ix)) != VECDB_OK)
		return rv;
	if ((rv = storage_wal_batch_init(&wal, WAL_PUT, c.id)) != VECDB_OK)
		goto out;
	for (size_t i = 0; i < q->n; i++) {
		if ((rv = storage_wal_batch_room(w, &wal, put_entry_size(&c,
			 &q->pts[i]))) != VECDB_OK)
			goto out;
		/* The point records the seq of the record its entry is in. */
		rv = storage_point_put_txn(w->db, w->txn, &c, &st, q->how,
		    &q->pts[i], w->seq + 1, &wal, &ix);
		if (rv != VECDB_OK) {
			rv = point_err(rv, i, q->n, &q->pts[i].id);
			goto out;
		}
	}
	if ((rv = storage_state_put(w->db, w->txn, c.id, &st)) == VECDB_OK)
		rv = storage_wal_batch_end(w, &wal);
	r->entries = q->n;
out:
	storage_wal_batch_fini(&wal);
	return rv;
}

int
storage_apply_delete(struct wctx *w, struct wreq *r)
{
	struct wreq_delete *q = &r->u.del;
	struct wal_batch wal;
	struct pindex_set ix;
	struct coll_state st;
	struct coll c;
	uint8_t key[STORAGE_KEY_MAX];
	uint64_t offset;
	int rv, found;

	if ((rv = storage_coll_find(w->db, w->txn, q->coll, &c)) != VECDB_OK ||
	    (rv = storage_state_get(w->db, w->txn, c.id, &st)) != VECDB_OK ||
	    (rv = storage_pindex_load(w->db, w->txn, c.id, &ix)) != VECDB_OK)
		return rv;
	q->deleted = 0;
	if ((rv = storage_wal_batch_init(&wal, WAL_DELETE, c.id)) != VECDB_OK)
		goto out;
	for (size_t i = 0; i < q->n; i++) {
		size_t klen = vdb_id_key(&q->ids[i], key);
		rv = storage_point_del_txn(w->db, w->txn, &c, &st, &q->ids[i],
		    &found, &offset, &ix);
		if (rv != VECDB_OK)
			goto out;
		if (!found)
			continue;
		q->deleted++;
		if ((rv = storage_wal_batch_room(w, &wal,
			 storage_wal_del_size(klen))) != VECDB_OK ||
		    (rv = storage_wal_batch_del(&wal, key, klen, offset)) !=
		    VECDB_OK)
			goto out;
	}
	r->entries = q->deleted;
	if (q->deleted == 0)
		goto out; /* nothing changed: no WAL record */
	if ((rv = storage_state_put(w->db, w->txn, c.id, &st)) == VECDB_OK)
		rv = storage_wal_batch_end(w, &wal);
out:
	storage_wal_batch_fini(&wal);
	return rv;
}

/* ===== Public API ===== */

/* Validate and compact a payload: a JSON object, at most the limit, its
 * reals in the fewest digits that keep them. */
static int
payload_prepare(const char *json, char **out, size_t *len)
{
	json_error_t err;
	json_t *root;
	char *s;

	*out = NULL;
	*len = 0;
	if (json == NULL)
		return VECDB_OK;
	if (vdb_json_depth(json, strlen(json)) > VECDB_PAYLOAD_DEPTH_MAX)
		return vdb_err(VECDB_EINVAL, "payload nests deeper than %d "
		    "levels", VECDB_PAYLOAD_DEPTH_MAX);
	root = json_loads(json, JSON_REJECT_DUPLICATES, &err);
	if (root == NULL)
		return vdb_err(VECDB_EINVAL, "payload is not valid JSON: %s "
		    "(at character %d)", err.text, err.position);
	if (!json_is_object(root)) {
		json_decref(root);
		return vdb_err(VECDB_EINVAL, "payload must be a JSON object");
	}
	s = json_dumps(root, JSON_COMPACT | JSON_ENCODE_ANY);
	json_decref(root);
	if (s == NULL)
		return vdb_err(VECDB_ENOMEM, "out of memory");
	/* jansson prints reals in 17 digits: 0.1 as 0.10000000000000001 */
	*len = vdb_json_reals_shortest(s);
	if (*len > VECDB_PAYLOAD_MAX) {
		free(s); /* jansson allocates with malloc */
		return vdb_err(VECDB_EINVAL, "payload is %zu bytes; the limit "
		    "is %u", *len, VECDB_PAYLOAD_MAX);
	}
	*out = s;
	return VECDB_OK;
}

/* Free the payload copies of a prepared batch. */
static void
wpoints_free(struct wpoint *wp, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(wp[i].payload);
		for (size_t j = 0; j < wp[i].n_sparse; j++) {
			vdb_free(wp[i].sparse[j].idx);
			vdb_free(wp[i].sparse[j].val);
		}
		vdb_free(wp[i].sparse);
		vdb_free(wp[i].dense);
	}
	vdb_free(wp);
}

/* Copy and normalize a point's sparse vectors, and take its named dense
 * ones (names and dimensions are checked against the collection by the
 * writer). */
static int
wsparse_prepare(const vecdb_point_sparse *sp, struct wpoint *w)
{
	int rv;

	if (sp != NULL && sp->nd > 0) {
		if (sp->d == NULL || sp->nd > VECDB_VECTORS_MAX)
			return vdb_err(VECDB_EINVAL, "a point has at most %d "
			    "named vectors", VECDB_VECTORS_MAX);
		if ((w->dense = vdb_calloc(sp->nd, sizeof(*w->dense))) == NULL)
			return vdb_err(VECDB_ENOMEM, "out of memory");
		w->n_dense = sp->nd;
		for (size_t i = 0; i < sp->nd; i++)
			w->dense[i] = (struct wdense) { sp->d[i].name,
			    sp->d[i].data, sp->d[i].dim, sp->d[i].remove != 0 };
	}
	if (sp == NULL || sp->n == 0)
		return VECDB_OK;
	if (sp->v == NULL || sp->n > VECDB_SPARSE_MAX)
		return vdb_err(VECDB_EINVAL, "a point has at most %d sparse "
		    "vectors", VECDB_SPARSE_MAX);
	if ((w->sparse = vdb_calloc(sp->n, sizeof(*w->sparse))) == NULL)
		return vdb_err(VECDB_ENOMEM, "out of memory");
	for (size_t i = 0; i < sp->n; i++) {
		const vecdb_sparse_vector *v = &sp->v[i];
		struct wsparse *x = &w->sparse[i];
		size_t m = v->n ? v->n : 1;

		w->n_sparse = i + 1;
		if (v->name == NULL)
			return vdb_err(VECDB_EINVAL, "a sparse vector has no "
			    "name");
		x->name = v->name;
		x->remove = v->remove != 0;
		if (x->remove)
			continue;
		if (v->n > SPARSE_NNZ_MAX)
			return vdb_err(VECDB_EINVAL, "sparse vector '%s' has "
			    "%u pairs, more than %u", v->name, v->n,
			    SPARSE_NNZ_MAX);
		if (v->n && (v->indices == NULL || v->values == NULL))
			return vdb_err(VECDB_EINVAL, "sparse vector '%s' has "
			    "no indices or values", v->name);
		if ((x->idx = vdb_malloc(m * sizeof(uint32_t))) == NULL ||
		    (x->val = vdb_malloc(m * sizeof(float))) == NULL)
			return vdb_err(VECDB_ENOMEM, "out of memory");
		x->n = v->n;
		if (v->n) {
			memcpy(x->idx, v->indices, v->n * sizeof(uint32_t));
			memcpy(x->val, v->values, v->n * sizeof(float));
		}
		if ((rv = sparse_normalize(x->idx, x->val, x->n)) !=
		    VECDB_OK) {
			char msg[256];

			vdb_err_save(msg, sizeof(msg));
			return vdb_err(rv, "sparse vector '%s': %s", v->name,
			    msg);
		}
	}
	return VECDB_OK;
}

/* Check the caller's points and turn them into writer points. */
static int
wpoints_prepare(vecdb_write_op how, const vecdb_point *pts,
    const vecdb_point_sparse *sparse, size_t n, struct wpoint **out)
{
	struct wpoint *wp = vdb_calloc(n, sizeof(*wp));
	int rv = VECDB_OK;

	if (wp == NULL)
		return vdb_err(VECDB_ENOMEM, "out of memory");
	for (size_t i = 0; i < n && rv == VECDB_OK; i++) {
		wp[i].id = pts[i].id;
		wp[i].vector = pts[i].vector;
		wp[i].dim = pts[i].dim;
		if (pts[i].id.kind == VECDB_ID_NONE && how != VECDB_WRITE_UPDATE)
			storage_id_generate(&wp[i].id);
		else if ((unsigned) pts[i].id.kind > VECDB_ID_UUID ||
		    pts[i].id.kind == VECDB_ID_NONE)
			rv = vdb_err(VECDB_EINVAL, "point has no valid id");
		if (rv == VECDB_OK)
			rv = payload_prepare(pts[i].payload, &wp[i].payload,
			    &wp[i].payload_len);
		if (rv == VECDB_OK && sparse != NULL)
			rv = wsparse_prepare(&sparse[i], &wp[i]);
		if (rv != VECDB_OK)
			rv = point_err(rv, i, n, &wp[i].id);
	}
	if (rv != VECDB_OK) {
		wpoints_free(wp, n);
		return rv;
	}
	*out = wp;
	return VECDB_OK;
}

/* The common path of insert, upsert and update. */
static int
points_write(vecdb *db, const char *coll, vecdb_point *pts,
    const vecdb_point_sparse *sparse, size_t n, vecdb_write_op how,
    int check_only)
{
	struct wpoint *wp = NULL;
	struct wreq r;
	int rv;

	vdb_err_clear();
	if (db->writer == NULL)
		return vdb_err(VECDB_EREADONLY, "database is open read-only");
	if (n > VECDB_BATCH_MAX)
		return vdb_err(VECDB_EINVAL, "%zu points in one call; the "
		    "limit is %d", n, VECDB_BATCH_MAX);
	if (n == 0 || pts == NULL)
		return n == 0 ? VECDB_OK : vdb_err(VECDB_EINVAL, "no points");
	if ((rv = storage_name_check(coll)) != VECDB_OK ||
	    (rv = wpoints_prepare(how, pts, sparse, n, &wp)) != VECDB_OK)
		return rv;
	memset(&r, 0, sizeof(r));
	r.op = WREQ_WRITE;
	r.u.write.coll = coll;
	r.u.write.how = how;
	r.u.write.pts = wp;
	r.u.write.n = n;
	r.check_only = check_only;
	rv = storage_writer_submit(db, &r);
	if (rv == VECDB_OK && !check_only)
		for (size_t i = 0; i < n; i++)
			pts[i].id = wp[i].id;
	wpoints_free(wp, n);
	return rv;
}

int
vecdb_insert(vecdb *db, const char *coll, vecdb_point *pts, size_t n)
{
	return points_write(db, coll, pts, NULL, n, VECDB_WRITE_INSERT, 0);
}

int
vecdb_upsert(vecdb *db, const char *coll, vecdb_point *pts, size_t n)
{
	return points_write(db, coll, pts, NULL, n, VECDB_WRITE_UPSERT, 0);
}

int
vecdb_update(vecdb *db, const char *coll, vecdb_point *pts, size_t n)
{
	return points_write(db, coll, pts, NULL, n, VECDB_WRITE_UPDATE, 0);
}

int
vecdb_write_check(vecdb *db, const char *coll, vecdb_write_op op,
    const vecdb_point *pts, size_t n)
{
	if ((unsigned) op > VECDB_WRITE_UPDATE)
		return vdb_err(VECDB_EINVAL, "unknown write op %d", (int) op);
	/* generated ids go to the writer's copy: pts is only read */
	return points_write(db, coll, (vecdb_point *) (uintptr_t) pts, NULL,
	    n, op, 1);
}

int
vecdb_write(vecdb *db, const char *coll, vecdb_write_op op,
    vecdb_point *pts, const vecdb_point_sparse *sparse, size_t n,
    int check_only)
{
	if ((unsigned) op > VECDB_WRITE_UPDATE)
		return vdb_err(VECDB_EINVAL, "unknown write op %d", (int) op);
	return points_write(db, coll, pts, sparse, n, op, check_only);
}

int
vecdb_delete(vecdb *db, const char *coll, const vecdb_id *ids, size_t n,
    size_t *deleted)
{
	struct wreq r;
	int rv;

	vdb_err_clear();
	if (db->writer == NULL)
		return vdb_err(VECDB_EREADONLY, "database is open read-only");
	if (n > VECDB_BATCH_MAX)
		return vdb_err(VECDB_EINVAL, "%zu ids in one call; the limit "
		    "is %d", n, VECDB_BATCH_MAX);
	if ((rv = storage_name_check(coll)) != VECDB_OK)
		return rv;
	for (size_t i = 0; i < n; i++)
		if (ids[i].kind != VECDB_ID_NUM && ids[i].kind != VECDB_ID_UUID)
			return vdb_err(VECDB_EINVAL, "id %zu is not valid", i);
	memset(&r, 0, sizeof(r));
	r.op = WREQ_DELETE;
	r.u.del.coll = coll;
	r.u.del.ids = ids;
	r.u.del.n = n;
	if ((rv = storage_writer_submit(db, &r)) == VECDB_OK && deleted)
		*deleted = r.u.del.deleted;
	return rv;
}

int
vecdb_get(vecdb *db, const char *coll, const vecdb_id *id,
    vecdb_record **out)
{
	uint8_t pkey[STORAGE_PKEY_MAX];
	char idbuf[VECDB_ID_STRLEN];
	vecdb_record *rec = NULL;
	struct rpoint rp;
	struct coll c;
	MDB_txn *txn;
	MDB_val k, v;
	int rc, rv;

	vdb_err_clear();
	if (id->kind != VECDB_ID_NUM && id->kind != VECDB_ID_UUID)
		return vdb_err(VECDB_EINVAL, "id is not valid");
	if ((rv = storage_read_begin(db, &txn)) != VECDB_OK)
		return rv;
	if ((rv = storage_coll_find(db, txn, coll, &c)) != VECDB_OK)
		goto out;
	k.mv_size = storage_pkey(c.id, id, pkey);
	k.mv_data = pkey;
	if ((rc = mdb_get(txn, db->points, &k, &v)) != 0) {
		rv = rc == MDB_NOTFOUND ?
		    vdb_err(VECDB_ENOTFOUND, "point %s not found in '%s'",
			vecdb_id_format(id, idbuf), coll) :
		    storage_mdb_err(rc, "read point");
		goto out;
	}
	if ((rv = storage_point_decode(&c, &v, &rp)) != VECDB_OK)
		goto out;
	if ((rec = vdb_malloc(sizeof(*rec))) == NULL) {
		rv = vdb_err(VECDB_ENOMEM, "out of memory");
		goto out;
	}
	if ((rv = storage_record_fill(&c, id, &rp, 1, 1, rec)) != VECDB_OK) {
		vdb_free(rec);
		goto out;
	}
	*out = rec;
out:
	mdb_txn_abort(txn);
	return rv;
}
