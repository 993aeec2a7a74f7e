/*
 * storage_wal.c: the WAL's records, written and read in one place (the
 * contract and the layout are in storage_wal.h). The writer's apply steps
 * log their changes through the encoders; the indexer applies records to
 * the in-memory indexes and replication ships and replays them through
 * the decoders. Records come off disk or the wire, so every length is
 * checked before it is used.
 */
#include "storage_impl.h"

/*
 * A batch's WAL entries go into records of at most WAL_REC_MAX bytes (as
 * far as an entry's size is known before it is written), each its own
 * seq, all in the batch's transaction. LMDB stores a bigger value on
 * contiguous overflow pages, and its free list seldom has a run as long
 * as the next 65 KB record: under an update loop the freed runs piled up
 * and data.mdb grew to 2.15x a fresh load of the same points. Values up
 * to about half a page stay on leaf pages, which are reused one by one.
 */
#define WAL_REC_MAX 2000

/* ===== Writing records ===== */

/* Append one record [ver][term][op][body] at the next seq. */
static int
wal_append(struct wctx *w, uint8_t op, const struct buf *body)
{
	uint8_t kb[8];
	MDB_val k = { 8, kb }, v;
	int rc;

	put_be64(kb, w->seq + 1);
	v.mv_size = WAL_HDR + body->len;
	rc = mdb_put(w->txn, w->db->wal, &k, &v, MDB_RESERVE | MDB_APPEND);
	if (rc != 0)
		return storage_mdb_err(rc, "append WAL record");
	((uint8_t *) v.mv_data)[0] = STORAGE_REC_VERSION;
	put_le64((uint8_t *) v.mv_data + 1, w->term);
	((uint8_t *) v.mv_data)[9] = op;
	if (body->len)
		memcpy((uint8_t *) v.mv_data + WAL_HDR, body->p, body->len);
	w->seq++;
	return VECDB_OK;
}

/* Append a record whose body is [coll id u32][a][b] (either may be empty). */
static int
wal_log_coll(struct wctx *w, uint8_t op, uint32_t coll_id, const void *a,
    size_t alen, const void *b, size_t blen)
{
	struct buf body = { 0 };
	int rv;

	if ((rv = buf_put_le32(&body, coll_id)) == VECDB_OK &&
	    (rv = buf_put(&body, a, alen)) == VECDB_OK &&
	    (rv = buf_put(&body, b, blen)) == VECDB_OK)
		rv = wal_append(w, op, &body);
	buf_fini(&body);
	return rv;
}

int
storage_wal_log_create(struct wctx *w, const char *name,
    const uint8_t *rec, size_t rec_len)
{
	struct buf body = { 0 };
	size_t nlen = strlen(name);
	int rv;

	if ((rv = buf_put_le16(&body, (uint16_t) nlen)) == VECDB_OK &&
	    (rv = buf_put(&body, name, nlen)) == VECDB_OK &&
	    (rv = buf_put(&body, rec, rec_len)) == VECDB_OK)
		rv = wal_append(w, WAL_CREATE, &body);
	buf_fini(&body);
	return rv;
}

int
storage_wal_log_drop(struct wctx *w, uint32_t coll_id)
{
	return wal_log_coll(w, WAL_DROP, coll_id, NULL, 0, NULL, 0);
}

int
storage_wal_log_config(struct wctx *w, uint32_t coll_id,
    const uint8_t *rec, size_t rec_len)
{
	return wal_log_coll(w, WAL_CONFIG, coll_id, rec, rec_len, NULL, 0);
}

int
storage_wal_log_restore(struct wctx *w, uint32_t coll_id,
    const uint8_t sum[32])
{
	return wal_log_coll(w, WAL_RESTORE, coll_id, sum, 32, NULL, 0);
}

int
storage_wal_log_pindex_create(struct wctx *w, uint32_t coll_id, int schema,
    const char *field)
{
	uint8_t s = (uint8_t) schema;

	return wal_log_coll(w, WAL_PINDEX_CREATE, coll_id, &s, 1, field,
	    strlen(field));
}

int
storage_wal_log_pindex_drop(struct wctx *w, uint32_t coll_id,
    const char *field)
{
	return wal_log_coll(w, WAL_PINDEX_DROP, coll_id, field, strlen(field),
	    NULL, 0);
}

int
storage_wal_log_index(struct wctx *w, uint32_t coll_id, int on)
{
	uint8_t b = (uint8_t) on;

	return wal_log_coll(w, WAL_INDEX, coll_id, &b, 1, NULL, 0);
}

/* ===== Batches of point entries ===== */

/* Start the next record: [coll id][n = 0, patched when it is appended]. */
static int
batch_start(struct wal_batch *b)
{
	int rv;

	b->body.len = 0;
	b->n = 0;
	if ((rv = buf_put_le32(&b->body, b->coll_id)) != VECDB_OK)
		return rv;
	return buf_put_le32(&b->body, 0);
}

/* Append the open record, if it has entries (with WAL_MORE unless it is
 * the request's last); start the next one. */
static int
batch_flush(struct wctx *w, struct wal_batch *b, int last)
{
	int rv;

	if (b->n == 0)
		return VECDB_OK;
	put_le32(b->body.p + 4, b->n);
	if ((rv = wal_append(w, last ? b->op : b->op | WAL_MORE, &b->body)) !=
	    VECDB_OK)
		return rv;
	return batch_start(b);
}

int
storage_wal_batch_init(struct wal_batch *b, uint8_t op, uint32_t coll_id)
{
	memset(b, 0, sizeof(*b));
	b->op = op;
	b->coll_id = coll_id;
	return batch_start(b);
}

int
storage_wal_batch_room(struct wctx *w, struct wal_batch *b,
    size_t entry_bytes)
{
	if (WAL_HDR + b->body.len + entry_bytes <= WAL_REC_MAX)
		return VECDB_OK;
	return batch_flush(w, b, 0);
}

size_t
storage_wal_put_size(size_t vec_len, size_t pay_len)
{
	return 1 + STORAGE_KEY_MAX + 16 + 4 + vec_len + 4 + pay_len;
}

size_t
storage_wal_del_size(size_t klen)
{
	return 1 + klen + 8;
}

int
storage_wal_batch_put(struct wal_batch *b, const uint8_t *key, size_t klen,
    uint64_t old_offset, uint64_t offset, const void *vec, size_t vec_len,
    const char *pay, size_t pay_len)
{
	uint8_t offs[16];
	int rv;

	put_le64(offs, old_offset);
	put_le64(offs + 8, offset);
	if ((rv = buf_put_u8(&b->body, (uint8_t) klen)) != VECDB_OK ||
	    (rv = buf_put(&b->body, key, klen)) != VECDB_OK ||
	    (rv = buf_put(&b->body, offs, 16)) != VECDB_OK ||
	    (rv = buf_put_le32(&b->body, (uint32_t) vec_len)) != VECDB_OK ||
	    (rv = buf_put(&b->body, vec, vec_len)) != VECDB_OK ||
	    (rv = buf_put_le32(&b->body, (uint32_t) pay_len)) != VECDB_OK ||
	    (rv = buf_put(&b->body, pay, pay_len)) != VECDB_OK)
		return rv;
	b->n++;
	return VECDB_OK;
}

int
storage_wal_batch_del(struct wal_batch *b, const uint8_t *key, size_t klen,
    uint64_t offset)
{
	uint8_t off[8];
	int rv;

	put_le64(off, offset);
	if ((rv = buf_put_u8(&b->body, (uint8_t) klen)) != VECDB_OK ||
	    (rv = buf_put(&b->body, key, klen)) != VECDB_OK ||
	    (rv = buf_put(&b->body, off, 8)) != VECDB_OK)
		return rv;
	b->n++;
	return VECDB_OK;
}

int
storage_wal_batch_end(struct wctx *w, struct wal_batch *b)
{
	return batch_flush(w, b, 1);
}

void
storage_wal_batch_fini(struct wal_batch *b)
{
	buf_fini(&b->body);
}

/* ===== Reading records ===== */

int
storage_wal_decode(const MDB_val *k, const MDB_val *v, struct wal_rec *out)
{
	const uint8_t *p = v->mv_data;

	if (k->mv_size != 8 || v->mv_size < WAL_HDR ||
	    p[0] != STORAGE_REC_VERSION)
		return vdb_err(VECDB_ECORRUPT, "malformed WAL record");
	out->seq = get_be64(k->mv_data);
	out->term = get_le64(p + 1);
	out->op = p[9] & (uint8_t) ~WAL_MORE;
	out->more = (p[9] & WAL_MORE) != 0;
	out->body = p + WAL_HDR;
	out->len = v->mv_size - WAL_HDR;
	return VECDB_OK;
}

int
storage_wal_more(const MDB_val *v)
{
	return v->mv_size >= WAL_HDR &&
	    (((const uint8_t *) v->mv_data)[9] & WAL_MORE);
}

int
storage_wal_coll(const struct wal_rec *r, uint32_t *coll_id)
{
	if (r->op == WAL_CREATE || r->len < 4)
		return vdb_err(VECDB_ECORRUPT, "WAL record has no collection");
	*coll_id = get_le32(r->body);
	return VECDB_OK;
}

uint32_t
storage_wal_count(const struct wal_rec *r)
{
	if ((r->op != WAL_PUT && r->op != WAL_DELETE) || r->len < 8)
		return 0;
	return get_le32(r->body + 4);
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

int
storage_wal_create_decode(const struct wal_rec *r,
    char name[VECDB_NAME_MAX + 1], const uint8_t **rec, size_t *rec_len)
{
	uint16_t nlen;

	if (r->op != WAL_CREATE || r->len < 2 ||
	    (nlen = (uint16_t) (r->body[0] | r->body[1] << 8)) >
	    VECDB_NAME_MAX || r->len < 2u + nlen + COLL_REC_SIZE ||
	    r->len > 2u + nlen + COLL_REC_MAX)
		return vdb_err(VECDB_ECORRUPT, "malformed CREATE record");
	memcpy(name, r->body + 2, nlen);
	name[nlen] = '\0';
	*rec = r->body + 2 + nlen;
	*rec_len = r->len - 2u - nlen;
	return VECDB_OK;
}

int
storage_wal_config_decode(const struct wal_rec *r, const uint8_t **rec,
    size_t *rec_len)
{
	if (r->op != WAL_CONFIG || r->len < 4u + COLL_REC_SIZE ||
	    r->len > 4u + COLL_REC_MAX)
		return vdb_err(VECDB_ECORRUPT, "malformed CONFIG record");
	*rec = r->body + 4;
	*rec_len = r->len - 4u;
	return VECDB_OK;
}

int
storage_wal_index_decode(const struct wal_rec *r, int *on)
{
	if (r->op != WAL_INDEX || r->len != 5)
		return vdb_err(VECDB_ECORRUPT, "malformed INDEX record");
	*on = r->body[4];
	return VECDB_OK;
}

int
storage_wal_index_off(const struct wal_rec *r)
{
	return r->op == WAL_INDEX && r->len >= 5 && r->body[4] == 0;
}

int
storage_wal_pindex_decode(const struct wal_rec *r, int *schema,
    char field[VECDB_FIELD_NAME_MAX + 1])
{
	size_t skip = r->op == WAL_PINDEX_CREATE, n = r->len - 4 - skip;

	if ((r->op != WAL_PINDEX_CREATE && r->op != WAL_PINDEX_DROP) ||
	    r->len < 4 + skip + 1 || n > VECDB_FIELD_NAME_MAX)
		return vdb_err(VECDB_ECORRUPT, "malformed payload index record");
	memcpy(field, r->body + 4 + skip, n);
	field[n] = '\0';
	if (skip)
		*schema = r->body[4];
	return VECDB_OK;
}
