/*
 * storage_repl.c: the engine's side of replication (storage_repl.h).
 *
 * A primary ships its WAL records as raw bytes. A replica replays each
 * record through the same write paths the primary used, but from the
 * record's final state: a PUT entry carries the point's key, vector bytes,
 * payload and both offsets, so the replica writes exactly that point under
 * exactly that offset and seq, and checks on the way that its own copy of
 * the point had the entry's old offset (anything else means the two have
 * diverged, and the whole blob is refused). Then it stores the record
 * itself under the same seq, so its WAL and last seq match the primary's
 * and the indexer follows it unchanged.
 *
 * A bootstrap copies the primary's whole environment (mdb_env_copyfd2,
 * compacted: one consistent read transaction) and loads it on the replica
 * in one write transaction, DB by DB, so readers see one state or the
 * other.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "storage_impl.h"
#include "storage_repl.h"

/* ===== Terms ===== */

/*
 * Every record carries the term of the primary that wrote it, and terms
 * only grow along the WAL. Meta keeps where each term began
 * ("term_start:<term as 16 hex digits>" = its first seq; fixed width so
 * the keys sort by term): a promotion writes its own, a replica writes one
 * when it applies the first record of a newer term, and a bootstrap copy
 * brings its primary's. Term 1, the one a database starts in, may have
 * none: it starts at seq 1.
 */
#define TERM_KEY_PREFIX "term_start:"
#define TERM_KEY_LEN (sizeof(TERM_KEY_PREFIX) - 1 + 16)

static int info_read(vecdb *db, MDB_txn *txn, struct storage_wal_info *out);

/* The meta key of term t's start. */
static void
term_key(uint64_t t, char key[TERM_KEY_LEN + 1])
{
	snprintf(key, TERM_KEY_LEN + 1, TERM_KEY_PREFIX "%016" PRIx64, t);
}

/* Record in w's txn that term t starts at seq. */
static int
term_start_put(struct wctx *w, uint64_t t, uint64_t seq)
{
	char key[TERM_KEY_LEN + 1];

	term_key(t, key);
	return storage_meta_put_u64(w->db, w->txn, key, seq);
}

/*
 * The first term after @p t that this database knows the start of, and
 * that start: *next 0 when none.
 */
static int
term_next(vecdb *db, MDB_txn *txn, uint64_t t, uint64_t *next,
    uint64_t *start)
{
	char key[TERM_KEY_LEN + 1];
	MDB_cursor *cur;
	MDB_val k, v;
	int rc;

	*next = *start = 0;
	if (t == UINT64_MAX)
		return VECDB_OK;
	term_key(t + 1, key);
	k.mv_size = TERM_KEY_LEN;
	k.mv_data = key;
	if ((rc = mdb_cursor_open(txn, db->meta, &cur)) != 0)
		return storage_mdb_err(rc, "open meta cursor");
	rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
	if (rc == 0 && k.mv_size == TERM_KEY_LEN && v.mv_size == 8 &&
	    memcmp(k.mv_data, TERM_KEY_PREFIX, TERM_KEY_LEN - 16) == 0) {
		memcpy(key, k.mv_data, TERM_KEY_LEN);
		key[TERM_KEY_LEN] = '\0';
		*next = strtoull(key + TERM_KEY_LEN - 16, NULL, 16);
		*start = get_le64(v.mv_data);
	}
	mdb_cursor_close(cur);
	if (rc != 0 && rc != MDB_NOTFOUND)
		return storage_mdb_err(rc, "read meta");
	return VECDB_OK;
}

/*
 * The term of the record at @p seq: from the record when the WAL still
 * holds it, else from the term starts (the last term starting at or
 * before seq).
 */
static int
term_at(vecdb *db, MDB_txn *txn, uint64_t seq, uint64_t *out)
{
	uint8_t kb[8];
	MDB_val k = { 8, kb }, v;
	struct wal_rec r;
	uint64_t t = 1, next, start;
	int rc, rv;

	put_be64(kb, seq);
	if ((rc = mdb_get(txn, db->wal, &k, &v)) == 0 &&
	    storage_wal_decode(&k, &v, &r) == VECDB_OK) {
		*out = r.term;
		return VECDB_OK;
	}
	if (rc != 0 && rc != MDB_NOTFOUND)
		return storage_mdb_err(rc, "read WAL");
	for (;;) {
		if ((rv = term_next(db, txn, t, &next, &start)) != VECDB_OK)
			return rv;
		if (next == 0 || start > seq)
			break;
		t = next;
	}
	*out = t;
	return VECDB_OK;
}

/* The last seq of term @p t in this history (@p last: t is the newest). */
static int
term_end(vecdb *db, MDB_txn *txn, uint64_t t, uint64_t last, uint64_t *out)
{
	uint64_t next, start;
	int rv;

	if ((rv = term_next(db, txn, t, &next, &start)) != VECDB_OK)
		return rv;
	*out = next == 0 ? last : start - 1;
	return VECDB_OK;
}

/*
 * Given a replica at @p after_seq whose record there has term @p
 * after_term, the last seq the two histories share. Two records with the
 * same seq and term are the same record with the same history before it
 * (one primary a term, each starting its term after what it held), so:
 * the same term at after_seq shares everything; else the replica's run of
 * after_term records holds ours only up to where our next term began.
 */
static int
common_read(vecdb *db, MDB_txn *txn, uint64_t last, uint64_t after_seq,
    uint64_t after_term, uint64_t *common)
{
	uint64_t t = 0, end;
	int rv;

	if (after_seq == 0) {
		*common = 0;
		return VECDB_OK;
	}
	if (after_seq <= last &&
	    (rv = term_at(db, txn, after_seq, &t)) != VECDB_OK)
		return rv;
	if (after_seq <= last && t == after_term) {
		*common = after_seq;
		return VECDB_OK;
	}
	if (after_seq <= last && t < after_term)
		/* a newer record than ours there: trust nothing of our term t
		 * past its start (XXX: conservative, may drop more than
		 * needed; needs a history we lack) */
		after_term = t > 1 ? t - 1 : 0;
	if (after_term == 0) {
		*common = 0;
		return VECDB_OK;
	}
	if ((rv = term_end(db, txn, after_term, last, &end)) != VECDB_OK)
		return rv;
	*common = end < after_seq ? end : after_seq;
	if (*common > last)
		*common = last;
	return VECDB_OK;
}

int
storage_wal_common(vecdb *db, uint64_t after_seq, uint64_t after_term,
    uint64_t *common, struct storage_wal_info *info)
{
	MDB_txn *txn;
	int rv;

	vdb_err_clear();
	if ((rv = storage_read_begin(db, &txn)) != VECDB_OK)
		return rv;
	if ((rv = info_read(db, txn, info)) == VECDB_OK)
		rv = common_read(db, txn, info->last_seq, after_seq, after_term,
		    common);
	mdb_txn_abort(txn);
	return rv;
}

/* Start term r->u.term.term at the next seq (writer thread). */
int
storage_apply_term(struct wctx *w, struct wreq *r)
{
	struct wreq_term *t = &r->u.term;
	uint64_t cur = 1;
	int rv;

	rv = storage_meta_get_u64(w->db, w->txn, "term", &cur);
	if (rv != VECDB_OK && rv != VECDB_ENOTFOUND)
		return rv;
	if (rv == VECDB_ENOTFOUND)
		cur = 1;
	if (t->term <= cur || t->term <= w->term)
		return vdb_err(VECDB_EINVAL, "term %" PRIu64 " is not above "
		    "the current term %" PRIu64, t->term,
		    cur > w->term ? cur : w->term);
	if ((rv = storage_meta_put_u64(w->db, w->txn, "term", t->term)) !=
	    VECDB_OK ||
	    (rv = term_start_put(w, t->term, w->seq + 1)) != VECDB_OK)
		return rv;
	w->term = t->term;
	t->start = w->seq + 1;
	return VECDB_OK;
}

int
storage_term_begin(vecdb *db, uint64_t term, uint64_t *start_seq)
{
	struct wreq r;
	int rv;

	memset(&r, 0, sizeof(r));
	r.op = WREQ_TERM;
	r.u.term.term = term;
	if ((rv = storage_writer_submit(db, &r)) == VECDB_OK)
		*start_seq = r.u.term.start;
	return rv;
}

/* ===== Reading the WAL (a primary) ===== */

/* The bounds of the WAL in txn. */
static int
info_read(vecdb *db, MDB_txn *txn, struct storage_wal_info *out)
{
	MDB_cursor *cur;
	MDB_val k, v;
	int rc, rv;

	memset(out, 0, sizeof(*out));
	rv = storage_meta_get_u64(db, txn, "last_seq", &out->last_seq);
	if (rv != VECDB_OK && rv != VECDB_ENOTFOUND)
		return rv;
	rv = storage_meta_get_u64(db, txn, "term", &out->term);
	if (rv == VECDB_ENOTFOUND)
		out->term = 1; /* what the writer stamps when meta has none */
	else if (rv != VECDB_OK)
		return rv;
	if ((rc = mdb_cursor_open(txn, db->wal, &cur)) != 0)
		return storage_mdb_err(rc, "open WAL cursor");
	rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST);
	if (rc == 0 && k.mv_size == 8)
		out->oldest_seq = get_be64(k.mv_data);
	mdb_cursor_close(cur);
	if (rc != 0 && rc != MDB_NOTFOUND)
		return storage_mdb_err(rc, "read WAL");
	if (out->last_seq > 0)
		return term_at(db, txn, out->last_seq, &out->last_term);
	return VECDB_OK;
}

int
storage_wal_info_get(vecdb *db, struct storage_wal_info *out)
{
	MDB_txn *txn;
	int rv;

	vdb_err_clear();
	if ((rv = storage_read_begin(db, &txn)) != VECDB_OK)
		return rv;
	rv = info_read(db, txn, out);
	mdb_txn_abort(txn);
	return rv;
}

/* Append one record to the packed blob. */
static int
pack_one(struct buf *b, const MDB_val *k, const MDB_val *v)
{
	int rv;

	if (v->mv_size > UINT32_MAX)
		return vdb_err(VECDB_ECORRUPT, "WAL record too large to ship");
	if ((rv = buf_put_le32(b, (uint32_t) v->mv_size)) != VECDB_OK ||
	    (rv = buf_put(b, k->mv_data, 8)) != VECDB_OK)
		return rv;
	return buf_put(b, v->mv_data, v->mv_size);
}

/* Pack the records from after_seq + 1 on; the cursor is open in txn.
 * The limits end a batch only between requests (WAL_MORE), so that a
 * replica never applies part of one. */
static int
pack_records(MDB_cursor *cur, uint64_t after_seq, size_t max_records,
    size_t max_bytes, struct buf *b, size_t *count)
{
	uint8_t kb[8];
	MDB_val k = { 8, kb }, v;
	int rc, rv = VECDB_OK, more = 0;

	put_be64(kb, after_seq + 1);
	rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
	if (rc == 0 && (k.mv_size != 8 || get_be64(k.mv_data) != after_seq + 1))
		return vdb_err(VECDB_ENOTFOUND, "WAL records after %llu are "
		    "no longer held", (unsigned long long) after_seq);
	for (; rc == 0; (*count)++) {
		if (!more && (*count >= max_records || (*count > 0 &&
		    b->len + STORAGE_REPL_HDR + v.mv_size > max_bytes)))
			break;
		if ((rv = pack_one(b, &k, &v)) != VECDB_OK)
			return rv;
		more = storage_wal_more(&v);
		rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
	}
	if (rc != 0 && rc != MDB_NOTFOUND)
		return storage_mdb_err(rc, "read WAL");
	return VECDB_OK;
}

int
storage_wal_read(vecdb *db, uint64_t after_seq, size_t max_records,
    size_t max_bytes, uint8_t **blob, size_t *len, size_t *count,
    struct storage_wal_info *info)
{
	struct buf b = { 0 };
	MDB_cursor *cur = NULL;
	MDB_txn *txn;
	size_t n = 0;
	int rc, rv;

	vdb_err_clear();
	if ((rv = storage_read_begin(db, &txn)) != VECDB_OK)
		return rv;
	if ((rv = info_read(db, txn, info)) != VECDB_OK ||
	    after_seq >= info->last_seq || max_records == 0)
		goto out;
	if ((rc = mdb_cursor_open(txn, db->wal, &cur)) != 0) {
		rv = storage_mdb_err(rc, "open WAL cursor");
		goto out;
	}
	rv = pack_records(cur, after_seq, max_records, max_bytes, &b, &n);
	mdb_cursor_close(cur);
out:
	mdb_txn_abort(txn);
	if (rv != VECDB_OK) {
		buf_fini(&b);
		return rv;
	}
	*blob = b.p;
	*len = b.len;
	*count = n;
	return VECDB_OK;
}

/* ===== Applying records (a replica, writer thread) ===== */

/* The collection a record names, which this database must have. */
static int
rec_coll(struct wctx *w, const struct wal_rec *r, struct coll *c)
{
	uint32_t id;
	int rv;

	if ((rv = storage_wal_coll(r, &id)) != VECDB_OK)
		return rv;
	rv = storage_coll_by_id(w->db, w->txn, id, c);
	if (rv == VECDB_ENOTFOUND)
		return vdb_err(VECDB_ECORRUPT, "collection id %u does not "
		    "exist here", id);
	return rv;
}

/* CREATE: the collection under the primary's id. */
static int
rep_create(struct wctx *w, const struct wal_rec *r)
{
	char name[VECDB_NAME_MAX + 1];
	uint8_t rec[COLL_REC_MAX];
	const uint8_t *body_rec;
	size_t rec_len;
	struct coll c, other;
	struct coll_state st = { 0, 0, 0, r->seq };
	uint64_t next = 1;
	MDB_val k, v;
	int rc, rv;

	if ((rv = storage_wal_create_decode(r, name, &body_rec, &rec_len)) !=
	    VECDB_OK)
		return rv;
	memcpy(rec, body_rec, rec_len);
	if (storage_name_check(name) != VECDB_OK ||
	    (rv = storage_coll_decode(name, rec, rec_len, &c)) != VECDB_OK)
		return vdb_err(VECDB_ECORRUPT, "malformed CREATE record");
	rv = storage_coll_by_id(w->db, w->txn, c.id, &other);
	if (rv == VECDB_OK)
		return vdb_err(VECDB_ECORRUPT, "collection id %u is in use "
		    "here", c.id);
	if (rv != VECDB_ENOTFOUND)
		return rv;
	k.mv_data = name;
	k.mv_size = strlen(name);
	v.mv_data = rec;
	v.mv_size = rec_len;
	if ((rc = mdb_put(w->txn, w->db->catalog, &k, &v, MDB_NOOVERWRITE)) != 0)
		return rc == MDB_KEYEXIST ? vdb_err(VECDB_ECORRUPT, "collection "
		    "'%s' already exists here", name) :
		    storage_mdb_err(rc, "write catalog");
	rv = storage_meta_get_u64(w->db, w->txn, "next_coll_id", &next);
	if (rv != VECDB_OK && rv != VECDB_ENOTFOUND)
		return rv;
	if (next <= c.id && (rv = storage_meta_put_u64(w->db, w->txn,
				 "next_coll_id", (uint64_t) c.id + 1)) != VECDB_OK)
		return rv;
	return storage_state_put(w->db, w->txn, c.id, &st);
}

/* DROP. */
static int
rep_drop(struct wctx *w, const struct wal_rec *r)
{
	struct coll c;
	int rv;

	if ((rv = rec_coll(w, r, &c)) != VECDB_OK)
		return rv;
	return storage_coll_drop_txn(w->db, w->txn, &c);
}

/* A replicated payload: empty, or a JSON object. */
static int
payload_check(const char *p, size_t n)
{
	json_error_t err;
	json_t *j;
	int ok;

	if (n == 0)
		return VECDB_OK;
	j = json_loadb(p, n, 0, &err);
	ok = json_is_object(j);
	json_decref(j);
	return ok ? VECDB_OK :
		    vdb_err(VECDB_ECORRUPT, "payload is not a JSON object");
}

/* One DELETE entry: the point must be there with the entry's offset. */
static int
rep_del_one(struct wctx *w, const struct coll *c, struct coll_state *st,
    const struct wal_entry *e, const struct pindex_set *ix)
{
	uint64_t off = 0;
	vecdb_id id;
	int rv, found = 0;

	if (vdb_key_id(e->key, e->klen, &id) != VECDB_OK)
		return vdb_err(VECDB_ECORRUPT, "bad point key");
	if ((rv = storage_point_del_txn(w->db, w->txn, c, st, &id, &found,
		 &off, ix)) != VECDB_OK)
		return rv;
	if (!found || off != e->old_offset)
		return vdb_err(VECDB_ECORRUPT, "deleted point is not here as "
		    "the primary had it: the replica has diverged");
	return VECDB_OK;
}

/* PUT or DELETE: every entry, then the collection's counters. */
static int
rep_points(struct wctx *w, const struct wal_rec *r)
{
	struct pindex_set ix;
	struct coll_state st;
	struct wal_iter it;
	struct wal_entry e;
	struct coll c;
	int rv, more;

	if ((rv = rec_coll(w, r, &c)) != VECDB_OK ||
	    (rv = storage_state_get(w->db, w->txn, c.id, &st)) != VECDB_OK ||
	    (rv = storage_pindex_load(w->db, w->txn, c.id, &ix)) != VECDB_OK ||
	    (rv = storage_wal_iter_init(&it, r)) != VECDB_OK)
		return rv;
	while ((more = storage_wal_next(&it, &e)) == 1) {
		if (r->op == WAL_DELETE)
			rv = rep_del_one(w, &c, &st, &e, &ix);
		else if ((rv = payload_check(e.payload, e.plen)) ==
		    VECDB_OK)
			rv = storage_point_put_raw(w->db, w->txn, &c, &st, &e,
			    r->seq, &ix);
		if (rv != VECDB_OK)
			return rv;
	}
	if (more < 0)
		return -more;
	return storage_state_put(w->db, w->txn, c.id, &st);
}

/* PINDEX_CREATE, PINDEX_DROP, INDEX. */
static int
rep_indexes(struct wctx *w, const struct wal_rec *r)
{
	char field[VECDB_FIELD_NAME_MAX + 1];
	struct coll c;
	int rv, on, schema = 0;

	if ((rv = rec_coll(w, r, &c)) != VECDB_OK)
		return rv;
	if (r->op == WAL_INDEX) {
		if ((rv = storage_wal_index_decode(r, &on)) != VECDB_OK)
			return rv;
		return storage_index_flag_txn(w->db, w->txn, c.id, on);
	}
	if ((rv = storage_wal_pindex_decode(r, &schema, field)) != VECDB_OK)
		return rv;
	if (r->op == WAL_PINDEX_DROP)
		return storage_pindex_drop_txn(w->db, w->txn, &c, field);
	if (storage_field_check(field, schema) != VECDB_OK)
		return vdb_err(VECDB_ECORRUPT, "malformed payload index record");
	return storage_pindex_create_txn(w->db, w->txn, &c,
	    (vecdb_field_schema) schema, field);
}

/* CONFIG: the collection's record as the primary stored it. */
static int
rep_config(struct wctx *w, const struct wal_rec *r)
{
	const uint8_t *rec;
	size_t rec_len;
	struct coll c, got;
	MDB_val k, v;
	int rc, rv;

	if ((rv = rec_coll(w, r, &c)) != VECDB_OK)
		return rv;
	if (storage_wal_config_decode(r, &rec, &rec_len) != VECDB_OK ||
	    storage_coll_decode(c.cfg.name, rec, rec_len,
	    &got) != VECDB_OK || got.id != c.id)
		return vdb_err(VECDB_ECORRUPT, "malformed CONFIG record");
	k.mv_data = c.cfg.name;
	k.mv_size = strlen(c.cfg.name);
	v.mv_data = (void *) rec;
	v.mv_size = rec_len;
	if ((rc = mdb_put(w->txn, w->db->catalog, &k, &v, 0)) != 0)
		return storage_mdb_err(rc, "write catalog");
	return VECDB_OK;
}

/* Replay one record's change (not the record itself). */
static int
rep_apply(struct wctx *w, const struct wal_rec *r)
{
	switch (r->op) {
	case WAL_CREATE: return rep_create(w, r);
	case WAL_DROP: return rep_drop(w, r);
	case WAL_PUT:
	case WAL_DELETE: return rep_points(w, r);
	case WAL_PINDEX_CREATE:
	case WAL_PINDEX_DROP:
	case WAL_INDEX: return rep_indexes(w, r);
	case WAL_CONFIG: return rep_config(w, r);
	default:
		return vdb_err(VECDB_ECORRUPT, "unknown WAL op %u", r->op);
	}
}

/* Store the record under its seq, and keep meta "term" at the highest. */
static int
rep_store(struct wctx *w, const MDB_val *k, const MDB_val *v,
    const struct wal_rec *r)
{
	uint64_t term = 0;
	int rc, rv;

	rc = mdb_put(w->txn, w->db->wal, (MDB_val *) k, (MDB_val *) v,
	    MDB_APPEND);
	if (rc != 0)
		return storage_mdb_err(rc, "append WAL record");
	rv = storage_meta_get_u64(w->db, w->txn, "term", &term);
	if (rv != VECDB_OK && rv != VECDB_ENOTFOUND)
		return rv;
	if (r->term <= term)
		return VECDB_OK;
	if ((rv = storage_meta_put_u64(w->db, w->txn, "term", r->term)) !=
	    VECDB_OK)
		return rv;
	return term_start_put(w, r->term, r->seq);
}

/* Cut the next record off the blob: 1 with k/v set, 0 at the end. */
static int
blob_next(const uint8_t **p, const uint8_t *end, MDB_val *k, MDB_val *v)
{
	uint32_t len;

	if (*p == end)
		return 0;
	if ((size_t) (end - *p) < STORAGE_REPL_HDR ||
	    (len = get_le32(*p)) > (size_t) (end - *p) - STORAGE_REPL_HDR)
		return -vdb_err(VECDB_ECORRUPT, "truncated record in batch");
	k->mv_size = 8;
	k->mv_data = (void *) (*p + 4);
	v->mv_size = len;
	v->mv_data = (void *) (*p + STORAGE_REPL_HDR);
	*p += STORAGE_REPL_HDR + len;
	return 1;
}

int
storage_apply_replicated(struct wctx *w, struct wreq *r)
{
	const uint8_t *p = r->u.replicate.blob;
	const uint8_t *end = p + r->u.replicate.len;
	struct wal_rec rec;
	MDB_val k, v;
	int rv, more;

	while ((more = blob_next(&p, end, &k, &v)) == 1) {
		if ((rv = storage_wal_decode(&k, &v, &rec)) != VECDB_OK)
			return rv;
		if (rec.seq != w->seq + 1)
			return vdb_err(VECDB_ECORRUPT, "record %llu is out of "
			    "order: this database is at %llu",
			    (unsigned long long) rec.seq,
			    (unsigned long long) w->seq);
		if (rec.op == WAL_RESTORE) {
			r->u.replicate.restore = 1;
			return VECDB_OK;
		}
		if ((rv = rep_apply(w, &rec)) != VECDB_OK ||
		    (rv = rep_store(w, &k, &v, &rec)) != VECDB_OK) {
			char msg[400];
			vdb_err_save(msg, sizeof(msg));
			return vdb_err(rv, "WAL record %llu: %s",
			    (unsigned long long) rec.seq, msg);
		}
		w->seq = rec.seq;
	}
	return more < 0 ? -more : VECDB_OK;
}

int
storage_wal_apply(vecdb *db, const uint8_t *blob, size_t len,
    uint64_t *last_seq, int *restore)
{
	struct storage_wal_info info;
	struct wreq r;
	int rv;

	vdb_err_clear();
	if (db->writer == NULL)
		return vdb_err(VECDB_EREADONLY, "database is open read-only");
	memset(&r, 0, sizeof(r));
	r.op = WREQ_REPLICATE;
	r.u.replicate.blob = blob;
	r.u.replicate.len = len;
	if ((rv = storage_writer_submit(db, &r)) != VECDB_OK ||
	    (rv = storage_wal_info_get(db, &info)) != VECDB_OK)
		return rv;
	*last_seq = info.last_seq;
	*restore = r.u.replicate.restore;
	return VECDB_OK;
}

/* ===== Copy and load (bootstrap) ===== */

int
storage_copy(vecdb *db, const char *path)
{
	int fd, rc;

	vdb_err_clear();
	if ((fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC,
		 0600)) < 0)
		return vdb_err(VECDB_EIO, "cannot create %s: %s", path,
		    strerror(errno));
	rc = mdb_env_copyfd2(db->env, fd, MDB_CP_COMPACT);
	if (rc == 0 && fsync(fd) != 0)
		rc = errno;
	close(fd);
	if (rc != 0) {
		unlink(path);
		return vdb_err(VECDB_EIO, "cannot copy the database to %s: %s",
		    path, mdb_strerror(rc));
	}
	return VECDB_OK;
}

/* The named DBs, in the order of struct vecdb's fields. */
static const char *const db_names[] = { "catalog", "points", "offsets",
	"wal", "meta", "pindex" };
#define NDBS (sizeof(db_names) / sizeof(db_names[0]))

/* A copy opened read-only: its env, a read txn and its DBs. */
struct src {
	MDB_env *env;
	MDB_txn *txn;
	MDB_dbi dbi[NDBS];
};

/* Open the copy at path; every DB must be there. */
static int
src_open(const char *path, struct src *s)
{
	struct stat st;
	int rc;

	memset(s, 0, sizeof(*s));
	if (stat(path, &st) != 0)
		return vdb_err(VECDB_EIO, "cannot open %s: %s", path,
		    strerror(errno));
	if ((rc = mdb_env_create(&s->env)) != 0)
		return storage_mdb_err(rc, "create environment");
	mdb_env_set_maxdbs(s->env, 8);
	mdb_env_set_mapsize(s->env, (size_t) st.st_size + (1 << 20));
	if ((rc = mdb_env_open(s->env, path, MDB_RDONLY | MDB_NOSUBDIR |
		 MDB_NOLOCK | MDB_NOTLS, 0600)) != 0 ||
	    (rc = mdb_txn_begin(s->env, NULL, MDB_RDONLY, &s->txn)) != 0)
		goto fail;
	for (size_t i = 0; i < NDBS; i++)
		if ((rc = mdb_dbi_open(s->txn, db_names[i], 0, &s->dbi[i])) != 0)
			goto fail;
	return VECDB_OK;
fail:
	if (s->txn != NULL)
		mdb_txn_abort(s->txn);
	mdb_env_close(s->env);
	return vdb_err(VECDB_ECORRUPT, "%s is not a vecdb database copy: %s",
	    path, mdb_strerror(rc));
}

static void
src_close(struct src *s)
{
	mdb_txn_abort(s->txn);
	mdb_env_close(s->env);
}

/* Empty DB dst and copy every entry of the copy's DB src into it. */
static int
db_replace(MDB_txn *txn, MDB_dbi dst, MDB_txn *stxn, MDB_dbi src)
{
	MDB_cursor *cur;
	MDB_val k, v;
	int rc;

	if ((rc = mdb_drop(txn, dst, 0)) != 0)
		return storage_mdb_err(rc, "empty a database");
	if ((rc = mdb_cursor_open(stxn, src, &cur)) != 0)
		return storage_mdb_err(rc, "open cursor");
	for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0;
	     rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT))
		if ((rc = mdb_put(txn, dst, &k, &v, MDB_APPEND)) != 0)
			break;
	mdb_cursor_close(cur);
	if (rc != 0 && rc != MDB_NOTFOUND)
		return storage_mdb_err(rc, "load a database");
	return VECDB_OK;
}

/* The copy's format and last seq, read through our meta helpers. */
static int
src_check(vecdb *db, struct src *s, uint64_t *last)
{
	MDB_val k = { 6, (void *) "format" }, v;
	MDB_val lk = { 8, (void *) "last_seq" };

	(void) db;
	if (mdb_get(s->txn, s->dbi[4], &k, &v) != 0 || v.mv_size != 8 ||
	    get_le64(v.mv_data) != STORAGE_FORMAT)
		return vdb_err(VECDB_ECORRUPT, "the copy is not of format %d",
		    STORAGE_FORMAT);
	*last = 0;
	if (mdb_get(s->txn, s->dbi[4], &lk, &v) == 0) {
		if (v.mv_size != 8)
			return vdb_err(VECDB_ECORRUPT, "the copy's last_seq "
			    "is malformed");
		*last = get_le64(v.mv_data);
	}
	return VECDB_OK;
}

int
storage_apply_load(struct wctx *w, struct wreq *r)
{
	MDB_dbi dst[NDBS] = { w->db->catalog, w->db->points, w->db->offsets,
		w->db->wal, w->db->meta, w->db->pindex };
	uint64_t last = 0;
	struct src s;
	int rv;

	if ((rv = src_open(r->u.load.path, &s)) != VECDB_OK)
		return rv;
	rv = src_check(w->db, &s, &last);
	for (size_t i = 0; i < NDBS && rv == VECDB_OK; i++)
		rv = db_replace(w->txn, dst[i], s.txn, s.dbi[i]);
	src_close(&s);
	if (rv == VECDB_OK) {
		w->seq = last;
		w->reset_index = 1;
	}
	return rv;
}

int
storage_load(vecdb *db, const char *path)
{
	struct wreq r;

	vdb_err_clear();
	if (db->writer == NULL)
		return vdb_err(VECDB_EREADONLY, "database is open read-only");
	memset(&r, 0, sizeof(r));
	r.op = WREQ_LOAD;
	r.u.load.path = path;
	return storage_writer_submit(db, &r);
}

/* ===== Digests ===== */

/* Hash n bytes preceded by their length. */
static void
hash_field(EVP_MD_CTX *md, const void *p, uint32_t n)
{
	uint8_t b[4];

	put_le32(b, n);
	EVP_DigestUpdate(md, b, 4);
	EVP_DigestUpdate(md, p, n);
}

/* Digest one collection's points in id order. */
static int
digest_coll(vecdb *db, MDB_txn *txn, const struct coll *c,
    struct storage_digest *d)
{
	struct storage_scan s;
	struct rpoint rp;
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	int rv;

	if (md == NULL || EVP_DigestInit_ex(md, EVP_sha256(), NULL) != 1) {
		EVP_MD_CTX_free(md);
		return vdb_err(VECDB_ENOMEM, "out of memory");
	}
	memset(d, 0, sizeof(*d));
	snprintf(d->name, sizeof(d->name), "%s", c->cfg.name);
	if ((rv = storage_scan_open(db, txn, c, NULL, &s)) != VECDB_OK) {
		EVP_MD_CTX_free(md);
		return rv;
	}
	for (; rv == VECDB_OK && storage_scan_valid(&s); storage_scan_next(&s)) {
		if ((rv = storage_point_decode(c, &s.v, &rp)) != VECDB_OK)
			break;
		hash_field(md, (uint8_t *) s.k.mv_data + 4,
		    (uint32_t) s.k.mv_size - 4);
		hash_field(md, rp.vec, (uint32_t) (rp.dim *
		    vec_elem_size(c->cfg.vector_type)));
		hash_field(md, rp.payload, (uint32_t) rp.payload_len);
		d->count++;
	}
	if (storage_scan_close(&s) != VECDB_OK && rv == VECDB_OK)
		rv = VECDB_EIO;
	EVP_DigestFinal_ex(md, d->sha256, NULL);
	EVP_MD_CTX_free(md);
	return rv;
}

/* Digest every collection of the catalog into a growing array. */
static int
digest_catalog(vecdb *db, MDB_txn *txn, struct storage_digest **out,
    size_t *n)
{
	char name[VECDB_NAME_MAX + 1];
	struct storage_digest *d = NULL;
	MDB_cursor *cur;
	MDB_val k, v;
	struct coll c;
	int rc, rv = VECDB_OK;

	if ((rc = mdb_cursor_open(txn, db->catalog, &cur)) != 0)
		return storage_mdb_err(rc, "open cursor");
	for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST);
	     rc == 0 && rv == VECDB_OK && k.mv_size <= VECDB_NAME_MAX;
	     rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
		struct storage_digest *nd = vdb_realloc(d, (*n + 1) * sizeof(*d));
		if (nd == NULL) {
			rv = vdb_err(VECDB_ENOMEM, "out of memory");
			break;
		}
		d = nd;
		memcpy(name, k.mv_data, k.mv_size);
		name[k.mv_size] = '\0';
		if ((rv = storage_coll_decode(name, v.mv_data, v.mv_size,
			 &c)) == VECDB_OK &&
		    (rv = digest_coll(db, txn, &c, &d[*n])) == VECDB_OK)
			(*n)++;
	}
	mdb_cursor_close(cur);
	*out = d;
	return rv;
}

int
storage_digest_all(vecdb *db, struct storage_digest **out, size_t *n,
    uint64_t *last_seq)
{
	struct storage_digest *d = NULL;
	MDB_txn *txn;
	size_t cnt = 0;
	uint64_t last = 0;
	int rv;

	vdb_err_clear();
	if ((rv = storage_read_begin(db, &txn)) != VECDB_OK)
		return rv;
	rv = storage_meta_get_u64(db, txn, "last_seq", &last);
	if (rv == VECDB_ENOTFOUND)
		rv = VECDB_OK;
	if (rv == VECDB_OK)
		rv = digest_catalog(db, txn, &d, &cnt);
	mdb_txn_abort(txn);
	if (rv != VECDB_OK) {
		vdb_free(d);
		return rv;
	}
	*out = d;
	*n = cnt;
	*last_seq = last;
	return VECDB_OK;
}
