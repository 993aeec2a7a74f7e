/*
 * storage_wal.c: reading WAL records back: the indexer applies them to
 * the in-memory indexes, and replication will ship them. Records come off
 * disk, so every length is checked before it is used.
 */
#include "storage_impl.h"

int
storage_wal_decode(const MDB_val *k, const MDB_val *v, struct wal_rec *out)
{
	const uint8_t *p = v->mv_data;

	if (k->mv_size != 8 || v->mv_size < 10 || p[0] != STORAGE_REC_VERSION)
		return vdb_err(VECDB_ECORRUPT, "malformed WAL record");
	out->seq = get_be64(k->mv_data);
	out->term = get_le64(p + 1);
	out->op = p[9] & (uint8_t) ~WAL_MORE;
	out->more = (p[9] & WAL_MORE) != 0;
	out->body = p + 10;
	out->len = v->mv_size - 10;
	return VECDB_OK;
}

int
storage_wal_coll(const struct wal_rec *r, uint32_t *coll_id)
{
	if (r->op == WAL_CREATE || r->len < 4)
		return vdb_err(VECDB_ECORRUPT, "WAL record has no collection");
	*coll_id = get_le32(r->body);
	return VECDB_OK;
}

int
storage_wal_iter_init(struct wal_iter *it, const struct wal_rec *r)
{
	if ((r->op != WAL_PUT && r->op != WAL_DELETE) || r->len < 8)
		return vdb_err(VECDB_ECORRUPT, "not a WAL point record");
	it->op = r->op;
	it->coll_id = get_le32(r->body);
	it->n = get_le32(r->body + 4);
	it->i = 0;
	it->p = r->body + 8;
	it->end = r->body + r->len;
	return VECDB_OK;
}

/* Take @p n bytes from the iterator, or NULL when the record is short. */
static const uint8_t *
take(struct wal_iter *it, size_t n)
{
	const uint8_t *p = it->p;

	if ((size_t) (it->end - it->p) < n)
		return NULL;
	it->p += n;
	return p;
}

int
storage_wal_next(struct wal_iter *it, struct wal_entry *e)
{
	const uint8_t *p;

	if (it->i == it->n)
		return it->p == it->end ? 0 :
		    -vdb_err(VECDB_ECORRUPT, "WAL record has trailing bytes");
	it->i++;
	memset(e, 0, sizeof(*e));
	if ((p = take(it, 1)) == NULL || (e->klen = p[0]) > STORAGE_KEY_MAX ||
	    (e->key = take(it, e->klen)) == NULL)
		goto bad;
	if (it->op == WAL_DELETE) {
		if ((p = take(it, 8)) == NULL)
			goto bad;
		e->old_offset = get_le64(p);
		e->offset = WAL_NO_OFFSET;
		return 1;
	}
	if ((p = take(it, 20)) == NULL)
		goto bad;
	e->old_offset = get_le64(p);
	e->offset = get_le64(p + 8);
	e->vlen = get_le32(p + 16);
	if ((e->vec = take(it, e->vlen)) == NULL || (p = take(it, 4)) == NULL)
		goto bad;
	e->plen = get_le32(p);
	if ((e->payload = (const char *) take(it, e->plen)) == NULL)
		goto bad;
	return 1;
bad:
	return -vdb_err(VECDB_ECORRUPT, "WAL record entry %u is truncated",
	    it->i);
}
