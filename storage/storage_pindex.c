/*
 * storage_pindex.c: payload indexes.
 *
 * An index on a payload field keeps one LMDB entry per value found at the
 * field's path in each point: key [coll id][index id][value][point key],
 * empty value. Values are encoded so that byte order is value order:
 * keywords as their bytes plus a NUL, numbers as order-preserving doubles,
 * bools as one byte, geo points as two doubles. The writer updates entries
 * in the same transaction as the point, so the index is never behind.
 *
 * Numbers are indexed as doubles under both numeric schemas because
 * filters compare numbers as doubles: the entries of a term are then always
 * a superset of the points the term matches (two integers above 2^53 may
 * share an entry), and callers evaluate the full filter on each candidate.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "filter.h"
#include "storage_impl.h"

#define KEYWORD_MAX 256      /* bytes of a keyword kept in the key */
#define VAL_MAX (KEYWORD_MAX + 1)
#define IXKEY_MAX (8 + VAL_MAX + STORAGE_KEY_MAX)

static const char *const schema_names[] = { "keyword", "integer", "float",
	"bool", "geo" };

/* ===== Value encoding ===== */

/* A double as 8 bytes whose unsigned order is the numeric order. */
static void
enc_double(double d, uint8_t out[8])
{
	uint64_t u;

	if (d == 0)
		d = 0; /* -0 and +0 are one value */
	memcpy(&u, &d, 8);
	u = (u & (1ULL << 63)) ? ~u : u | (1ULL << 63);
	put_be64(out, u);
}

static double
dec_double(const uint8_t in[8])
{
	uint64_t u = get_be64(in);
	double d;

	u = (u & (1ULL << 63)) ? u & ~(1ULL << 63) : ~u;
	memcpy(&d, &u, 8);
	return d;
}

/*
 * Encode JSON value v for an index of the given schema; returns the
 * length, or 0 when the schema does not index such a value.
 */
static size_t
enc_value(vecdb_field_schema schema, const json_t *v, uint8_t *out)
{
	switch (schema) {
	case VECDB_FIELD_KEYWORD: {
		size_t n = json_string_length(v);
		const char *s = json_string_value(v);
		if (s == NULL || memchr(s, 0, n) != NULL)
			return 0; /* a NUL would end the value early */
		n = n > KEYWORD_MAX ? KEYWORD_MAX : n;
		memcpy(out, s, n);
		out[n] = 0;
		return n + 1;
	}
	case VECDB_FIELD_INTEGER:
	case VECDB_FIELD_FLOAT:
		if (!json_is_number(v))
			return 0;
		enc_double(json_number_value(v), out);
		return 8;
	case VECDB_FIELD_BOOL:
		if (!json_is_boolean(v))
			return 0;
		out[0] = json_is_true(v);
		return 1;
	default: {
		json_t *la = json_object_get(v, "lat"), *lo = json_object_get(v, "lon");
		if (!json_is_number(la) || !json_is_number(lo))
			return 0;
		enc_double(json_number_value(la), out);
		enc_double(json_number_value(lo), out + 8);
		return 16;
	}
	}
}

/* [coll id][index id] */
static void
ix_prefix(uint32_t coll_id, uint32_t ix_id, uint8_t out[8])
{
	put_be32(out, coll_id);
	put_be32(out + 4, ix_id);
}

/* ===== Definitions ===== */

/* The meta key of a definition: "i"[coll id][field]. */
static size_t
def_key(uint32_t coll_id, const char *field, uint8_t *out)
{
	size_t n = strlen(field);

	out[0] = 'i';
	put_be32(out + 1, coll_id);
	memcpy(out + 5, field, n);
	return 5 + n;
}

int
storage_pindex_load(vecdb *db, MDB_txn *txn, uint32_t coll_id,
    struct pindex_set *out)
{
	uint8_t pre[5];
	MDB_cursor *cur;
	MDB_val k, v;
	int rc;

	out->n = 0;
	def_key(coll_id, "", pre);
	if ((rc = mdb_cursor_open(txn, db->meta, &cur)) != 0)
		return storage_mdb_err(rc, "open cursor");
	k.mv_size = 5;
	k.mv_data = pre;
	for (rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
	     rc == 0 && k.mv_size > 5 && memcmp(k.mv_data, pre, 5) == 0 &&
	     out->n < PINDEX_MAX;
	     rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
		struct pindex_def *d = &out->defs[out->n];
		size_t fl = k.mv_size - 5;
		if (v.mv_size != 6 || fl > VECDB_FIELD_NAME_MAX) {
			mdb_cursor_close(cur);
			return vdb_err(VECDB_ECORRUPT, "bad payload index record");
		}
		d->id = get_le32((uint8_t *) v.mv_data + 1);
		d->schema = (vecdb_field_schema) ((uint8_t *) v.mv_data)[5];
		memcpy(d->field, (uint8_t *) k.mv_data + 5, fl);
		d->field[fl] = '\0';
		out->n++;
	}
	mdb_cursor_close(cur);
	if (rc != 0 && rc != MDB_NOTFOUND)
		return storage_mdb_err(rc, "read payload indexes");
	return VECDB_OK;
}

/* ===== Keeping entries up to date ===== */

/* What one visit of a payload does to one index's entries. */
struct entry_op {
	vecdb *db;
	MDB_txn *txn;
	uint32_t coll_id;
	const struct pindex_def *def;
	const uint8_t *pkey;     /* point key */
	size_t pklen;
	int del;                 /* delete rather than put */
	int rv;
};

/* Put or delete the entry of one value (a filter_path_visit callback). */
static int
entry_apply(const json_t *v, void *arg)
{
	struct entry_op *op = arg;
	uint8_t kb[IXKEY_MAX];
	size_t n;
	MDB_val k, e = { 0, NULL };
	int rc;

	if ((n = enc_value(op->def->schema, v, kb + 8)) == 0)
		return 0;
	ix_prefix(op->coll_id, op->def->id, kb);
	memcpy(kb + 8 + n, op->pkey, op->pklen);
	k.mv_size = 8 + n + op->pklen;
	k.mv_data = kb;
	rc = op->del ? mdb_del(op->txn, op->db->pindex, &k, NULL) :
		       mdb_put(op->txn, op->db->pindex, &k, &e, 0);
	if (rc != 0 && rc != MDB_NOTFOUND) {
		op->rv = storage_mdb_err(rc, "update payload index");
		return 1;
	}
	return 0;
}

/* Parse a stored payload; NULL for none. */
static int
payload_parse(const char *p, size_t len, json_t **out)
{
	json_error_t err;

	*out = NULL;
	if (p == NULL || len == 0)
		return VECDB_OK;
	if ((*out = json_loadb(p, len, 0, &err)) == NULL)
		return vdb_err(VECDB_ECORRUPT, "stored payload is not JSON: %s",
		    err.text);
	return VECDB_OK;
}

/* Apply one payload's entries of every index (put or delete). */
static int
entries_apply(struct entry_op *op, const struct pindex_set *ix,
    const json_t *payload)
{
	for (size_t i = 0; payload != NULL && i < ix->n; i++) {
		op->def = &ix->defs[i];
		filter_path_visit(payload, ix->defs[i].field, entry_apply, op);
		if (op->rv != VECDB_OK)
			return op->rv;
	}
	return VECDB_OK;
}

int
storage_pindex_update(vecdb *db, MDB_txn *txn, uint32_t coll_id,
    const struct pindex_set *ix, const uint8_t *key, size_t klen,
    const char *old_pay, size_t old_len, const char *new_pay, size_t new_len)
{
	struct entry_op op = { db, txn, coll_id, NULL, key, klen, 1, VECDB_OK };
	json_t *oldj = NULL, *newj = NULL;
	int rv;

	if (ix == NULL || ix->n == 0)
		return VECDB_OK;
	if ((rv = payload_parse(old_pay, old_len, &oldj)) == VECDB_OK &&
	    (rv = payload_parse(new_pay, new_len, &newj)) == VECDB_OK &&
	    (rv = entries_apply(&op, ix, oldj)) == VECDB_OK) {
		op.del = 0;
		rv = entries_apply(&op, ix, newj);
	}
	json_decref(oldj);
	json_decref(newj);
	return rv;
}

/* Delete every key of @p dbi that starts with @p pre. */
static int
range_drop(MDB_txn *txn, MDB_dbi dbi, const uint8_t *pre, size_t plen)
{
	MDB_cursor *cur;
	MDB_val k = { plen, (void *) pre }, v;
	int rc;

	if ((rc = mdb_cursor_open(txn, dbi, &cur)) != 0)
		return storage_mdb_err(rc, "open cursor");
	rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
	while (rc == 0 && k.mv_size >= plen && memcmp(k.mv_data, pre, plen) == 0) {
		if ((rc = mdb_cursor_del(cur, 0)) != 0)
			break;
		rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
	}
	mdb_cursor_close(cur);
	return rc == 0 || rc == MDB_NOTFOUND ? VECDB_OK :
					     storage_mdb_err(rc, "drop range");
}

int
storage_pindex_drop_all(vecdb *db, MDB_txn *txn, uint32_t coll_id)
{
	uint8_t pre[5];
	int rv;

	put_be32(pre, coll_id);
	if ((rv = range_drop(txn, db->pindex, pre, 4)) != VECDB_OK)
		return rv;
	def_key(coll_id, "", pre);
	return range_drop(txn, db->meta, pre, 5);
}

/* ===== Create and drop (writer thread) ===== */

/* Add the entries of every existing point to a new index. */
static int
backfill(vecdb *db, MDB_txn *txn, const struct coll *c,
    const struct pindex_def *def)
{
	struct pindex_set one = { 1, { *def } };
	struct storage_scan s;
	struct rpoint rp;
	int rv;

	if ((rv = storage_scan_open(db, txn, c, NULL, &s)) != VECDB_OK)
		return rv;
	for (; rv == VECDB_OK && storage_scan_valid(&s); storage_scan_next(&s))
		if ((rv = storage_point_decode(c, &s.v, &rp)) == VECDB_OK)
			rv = storage_pindex_update(db, txn, c->id, &one,
			    (uint8_t *) s.k.mv_data + 4, s.k.mv_size - 4, NULL,
			    0, rp.payload, rp.payload_len);
	if (storage_scan_close(&s) != VECDB_OK && rv == VECDB_OK)
		rv = VECDB_EIO;
	return rv;
}

/* Write a definition record: [ver][index id u32][schema]. */
static int
def_put(vecdb *db, MDB_txn *txn, uint32_t coll_id,
    const struct pindex_def *d)
{
	uint8_t kb[5 + VECDB_FIELD_NAME_MAX], vb[6];
	MDB_val k = { def_key(coll_id, d->field, kb), kb }, v = { 6, vb };
	int rc;

	vb[0] = STORAGE_REC_VERSION;
	put_le32(vb + 1, d->id);
	vb[5] = (uint8_t) d->schema;
	rc = mdb_put(txn, db->meta, &k, &v, MDB_NOOVERWRITE);
	if (rc == MDB_KEYEXIST)
		return vdb_err(VECDB_EEXIST, "field '%s' is already indexed",
		    d->field);
	return rc ? storage_mdb_err(rc, "write payload index") : VECDB_OK;
}

int
storage_pindex_create_txn(vecdb *db, MDB_txn *txn, const struct coll *c,
    vecdb_field_schema schema, const char *field)
{
	struct pindex_set ix;
	struct pindex_def d;
	uint64_t next = 1;
	int rv;

	if ((rv = storage_pindex_load(db, txn, c->id, &ix)) != VECDB_OK)
		return rv;
	if (ix.n >= PINDEX_MAX)
		return vdb_err(VECDB_EINVAL, "collection '%s' has %d payload "
		    "indexes, the most it may have", c->cfg.name, PINDEX_MAX);
	rv = storage_meta_get_u64(db, txn, "next_index_id", &next);
	if (rv != VECDB_OK && rv != VECDB_ENOTFOUND)
		return rv;
	d.id = (uint32_t) next;
	d.schema = schema;
	snprintf(d.field, sizeof(d.field), "%s", field);
	if ((rv = def_put(db, txn, c->id, &d)) != VECDB_OK ||
	    (rv = storage_meta_put_u64(db, txn, "next_index_id",
		 next + 1)) != VECDB_OK)
		return rv;
	return backfill(db, txn, c, &d);
}

int
storage_apply_pindex_create(struct wctx *w, struct wreq *r)
{
	struct wreq_pindex *p = &r->u.pindex;
	struct coll c;
	int rv;

	if ((rv = storage_coll_find(w->db, w->txn, p->coll, &c)) != VECDB_OK ||
	    (rv = storage_pindex_create_txn(w->db, w->txn, &c, p->schema,
		 p->field)) != VECDB_OK)
		return rv;
	p->coll_id = c.id;
	return VECDB_OK;
}

int
storage_pindex_drop_txn(vecdb *db, MDB_txn *txn, const struct coll *c,
    const char *field)
{
	uint8_t kb[5 + VECDB_FIELD_NAME_MAX], pre[8];
	struct pindex_set ix;
	size_t i;
	int rc, rv;

	if ((rv = storage_pindex_load(db, txn, c->id, &ix)) != VECDB_OK)
		return rv;
	for (i = 0; i < ix.n && strcmp(ix.defs[i].field, field) != 0; i++)
		;
	if (i == ix.n)
		return vdb_err(VECDB_ENOTFOUND, "field '%s' of '%s' has no "
		    "payload index", field, c->cfg.name);
	MDB_val k = { def_key(c->id, field, kb), kb };
	if ((rc = mdb_del(txn, db->meta, &k, NULL)) != 0)
		return storage_mdb_err(rc, "drop payload index");
	ix_prefix(c->id, ix.defs[i].id, pre);
	return range_drop(txn, db->pindex, pre, 8);
}

int
storage_apply_pindex_drop(struct wctx *w, struct wreq *r)
{
	struct wreq_pindex *p = &r->u.pindex;
	struct coll c;
	int rv;

	if ((rv = storage_coll_find(w->db, w->txn, p->coll, &c)) != VECDB_OK ||
	    (rv = storage_pindex_drop_txn(w->db, w->txn, &c,
		 p->field)) != VECDB_OK)
		return rv;
	p->coll_id = c.id;
	return VECDB_OK;
}

/* ===== Candidates for a filter (the planner's probe) ===== */

void
keylist_fini(struct keylist *k)
{
	vdb_free(k->keys);
	memset(k, 0, sizeof(*k));
}

/* Append a point key. */
static int
keylist_push(struct keylist *k, const uint8_t *key, size_t len)
{
	if (len > STORAGE_KEY_MAX)
		return vdb_err(VECDB_ECORRUPT, "bad key in payload index");
	if (k->n == k->cap) {
		size_t cap = k->cap ? k->cap * 2 : 64;
		void *nk = vdb_realloc(k->keys, cap * sizeof(*k->keys));
		if (nk == NULL)
			return vdb_err(VECDB_ENOMEM, "out of memory");
		k->keys = nk;
		k->cap = cap;
	}
	memset(k->keys[k->n], 0, sizeof(k->keys[0]));
	k->keys[k->n][0] = (uint8_t) len;
	memcpy(k->keys[k->n] + 1, key, len);
	k->n++;
	return VECDB_OK;
}

/*
 * Order of [len][key] entries: by key bytes, then length; the same as id
 * order, since the tag byte of a key separates numbers from UUIDs.
 */
static int
entry_cmp(const void *a, const void *b)
{
	const uint8_t *x = a, *y = b;
	int c = memcmp(x + 1, y + 1, x[0] < y[0] ? x[0] : y[0]);

	return c ? c : (int) x[0] - (int) y[0];
}

/* Sort the keys and drop repeats (a point with two matching values). */
static void
keylist_unique(struct keylist *k)
{
	size_t out = 0;

	if (k->n > 1)
		qsort(k->keys, k->n, sizeof(k->keys[0]), entry_cmp);
	for (size_t i = 0; i < k->n; i++)
		if (out == 0 || entry_cmp(k->keys[out - 1], k->keys[i]) != 0)
			memmove(k->keys[out++], k->keys[i], sizeof(k->keys[0]));
	k->n = out;
}

/* The length of the encoded value at the start of p (n bytes), or 0. */
static size_t
value_len(vecdb_field_schema schema, const uint8_t *p, size_t n)
{
	const uint8_t *nul;

	switch (schema) {
	case VECDB_FIELD_KEYWORD:
		nul = memchr(p, 0, n);
		return nul ? (size_t) (nul - p) + 1 : 0;
	case VECDB_FIELD_BOOL:
		return n >= 1 ? 1 : 0;
	case VECDB_FIELD_GEO:
		return n >= 16 ? 16 : 0;
	default:
		return n >= 8 ? 8 : 0;
	}
}

/* A probe of the indexes for one filter. */
struct probe {
	vecdb *db;
	MDB_txn *txn;
	uint32_t coll_id;
	const struct pindex_set *ix;
	size_t max;              /* larger candidate sets are useless */
	struct keylist best;     /* the smallest set found so far */
	int have;
	int rv;
};

/* What a scan entry is checked against. */
struct scan_test {
	const struct filter_term *t;
	vecdb_field_schema schema;
};

/* Does an entry's value satisfy the term? (MATCH entries are exact.) */
static int
entry_holds(const struct scan_test *st, const uint8_t *val)
{
	const struct filter_term *t = st->t;
	double x, y;

	if (t->kind == FILTER_TERM_RANGE) {
		x = dec_double(val);
		return (x > t->lo || (t->lo_incl && x == t->lo)) &&
		    (x < t->hi || (t->hi_incl && x == t->hi));
	}
	if (t->kind == FILTER_TERM_GEO) {
		x = dec_double(val);
		y = dec_double(val + 8);
		return filter_geo_distance(t->lat, t->lon, x, y) <= t->radius;
	}
	return 1;
}

/*
 * Collect the point keys of entries from key `from` while they keep the
 * first `plen` bytes of it; stops past p->max. Returns -1 when over.
 */
static int
collect(struct probe *p, const struct scan_test *st, const uint8_t *from,
    size_t flen, size_t plen, struct keylist *out)
{
	MDB_cursor *cur;
	MDB_val k = { flen, (void *) from }, v;
	int rc, over = 0;

	if ((rc = mdb_cursor_open(p->txn, p->db->pindex, &cur)) != 0) {
		p->rv = storage_mdb_err(rc, "open cursor");
		return -1;
	}
	for (rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
	     rc == 0 && k.mv_size > plen && memcmp(k.mv_data, from, plen) == 0;
	     rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
		const uint8_t *val = (uint8_t *) k.mv_data + 8;
		size_t vl = value_len(st->schema, val, k.mv_size - 8);
		if (vl == 0)
			continue;
		if (st->t->kind == FILTER_TERM_RANGE && dec_double(val) > st->t->hi)
			break; /* past the range: entries are in value order */
		if (!entry_holds(st, val))
			continue;
		if (out->n >= p->max) {
			over = 1;
			break;
		}
		if ((p->rv = keylist_push(out, val + vl,
			 k.mv_size - 8 - vl)) != VECDB_OK)
			break;
	}
	mdb_cursor_close(cur);
	return over || p->rv != VECDB_OK ? -1 : 0;
}

/* The schema class a match value needs, or -1. */
static int
value_schema_ok(const struct filter_value *v, vecdb_field_schema s)
{
	switch (v->type) {
	case 0: return s == VECDB_FIELD_KEYWORD && !memchr(v->str, 0, v->len);
	case 1: return s == VECDB_FIELD_INTEGER || s == VECDB_FIELD_FLOAT;
	default: return s == VECDB_FIELD_BOOL;
	}
}

/* Can index d answer term t exactly or as a superset? */
static int
term_fits(const struct filter_term *t, const struct pindex_def *d)
{
	if (strcmp(t->path, d->field) != 0)
		return 0;
	if (t->kind == FILTER_TERM_RANGE)
		return d->schema == VECDB_FIELD_INTEGER ||
		    d->schema == VECDB_FIELD_FLOAT;
	if (t->kind == FILTER_TERM_GEO)
		return d->schema == VECDB_FIELD_GEO;
	for (size_t i = 0; i < t->n; i++)
		if (!value_schema_ok(&t->values[i], d->schema))
			return 0;
	return 1;
}

/* The index key where a match value's entries start. */
static size_t
match_key(const struct pindex_def *d, uint32_t coll_id,
    const struct filter_value *v, uint8_t *kb)
{
	size_t n;

	ix_prefix(coll_id, d->id, kb);
	if (v->type == 0) {
		n = v->len > KEYWORD_MAX ? KEYWORD_MAX : v->len;
		memcpy(kb + 8, v->str, n);
		kb[8 + n] = 0;
		return 8 + n + 1;
	}
	if (v->type == 1) {
		enc_double((double) v->num, kb + 8);
		return 16;
	}
	kb[8] = v->num != 0;
	return 9;
}

/* Collect the candidates of one term from index d. */
static int
term_collect(struct probe *p, const struct filter_term *t,
    const struct pindex_def *d, struct keylist *kl)
{
	struct scan_test st = { t, d->schema };
	uint8_t kb[IXKEY_MAX];
	size_t n;

	if (t->kind == FILTER_TERM_MATCH) {
		for (size_t i = 0; i < t->n; i++) {
			n = match_key(d, p->coll_id, &t->values[i], kb);
			if (collect(p, &st, kb, n, n, kl) != 0)
				return -1;
		}
		return 0;
	}
	ix_prefix(p->coll_id, d->id, kb);
	n = 8;
	if (t->kind == FILTER_TERM_RANGE) {
		enc_double(isinf(t->lo) ? -HUGE_VAL : t->lo, kb + 8);
		n = 16;
	}
	return collect(p, &st, kb, n, 8, kl);
}

/* filter_terms callback: keep the smallest usable candidate set. */
static void
probe_term(const struct filter_term *t, void *arg)
{
	struct probe *p = arg;
	struct keylist kl = { NULL, 0, 0 };

	for (size_t i = 0; i < p->ix->n && p->rv == VECDB_OK; i++) {
		if (!term_fits(t, &p->ix->defs[i]))
			continue;
		if (term_collect(p, t, &p->ix->defs[i], &kl) == 0) {
			keylist_unique(&kl);
			if (!p->have || kl.n < p->best.n) {
				keylist_fini(&p->best);
				p->best = kl;
				p->have = 1;
				p->max = kl.n; /* later terms must beat it */
				return;
			}
		}
		keylist_fini(&kl);
		return;
	}
}

int
storage_pindex_candidates(vecdb *db, MDB_txn *txn, uint32_t coll_id,
    const vecdb_filter *f, size_t max, struct keylist *out, int *used)
{
	struct pindex_set ix;
	struct probe p;
	int rv;

	*used = 0;
	if (f == NULL)
		return VECDB_OK;
	if ((rv = storage_pindex_load(db, txn, coll_id, &ix)) != VECDB_OK)
		return rv;
	if (ix.n == 0)
		return VECDB_OK;
	memset(&p, 0, sizeof(p));
	p.db = db;
	p.txn = txn;
	p.coll_id = coll_id;
	p.ix = &ix;
	p.max = max;
	if ((rv = filter_terms(f, probe_term, &p)) == VECDB_OK)
		rv = p.rv;
	if (rv != VECDB_OK || !p.have) {
		keylist_fini(&p.best);
		return rv;
	}
	*out = p.best;
	*used = 1;
	return VECDB_OK;
}

/* ===== Public API ===== */

int
storage_field_check(const char *field, int schema)
{
	size_t n = field ? strnlen(field, VECDB_FIELD_NAME_MAX + 1) : 0;

	if (n == 0 || n > VECDB_FIELD_NAME_MAX)
		return vdb_err(VECDB_EINVAL, "field name must be 1..%d bytes",
		    VECDB_FIELD_NAME_MAX);
	if (field[0] == '.' || field[n - 1] == '.' || strstr(field, ".."))
		return vdb_err(VECDB_EINVAL, "field '%s' has an empty path "
		    "segment", field);
	if (schema < VECDB_FIELD_KEYWORD || schema > VECDB_FIELD_GEO)
		return vdb_err(VECDB_EINVAL, "unknown field schema %d", schema);
	return VECDB_OK;
}

/* Submit a payload index create or drop to the writer. */
static int
pindex_submit(vecdb *db, const char *coll, const char *field,
    enum wreq_op op, int schema)
{
	struct wreq r;
	int rv;

	vdb_err_clear();
	if (db->writer == NULL)
		return vdb_err(VECDB_EREADONLY, "database is open read-only");
	if ((rv = storage_name_check(coll)) != VECDB_OK ||
	    (rv = storage_field_check(field, schema)) != VECDB_OK)
		return rv;
	memset(&r, 0, sizeof(r));
	r.op = op;
	r.u.pindex.coll = coll;
	r.u.pindex.field = field;
	r.u.pindex.schema = (vecdb_field_schema) schema;
	return storage_writer_submit(db, &r);
}

int
vecdb_payload_index_create(vecdb *db, const char *coll, const char *field,
    vecdb_field_schema schema)
{
	return pindex_submit(db, coll, field, WREQ_PINDEX_CREATE, (int) schema);
}

int
vecdb_payload_index_delete(vecdb *db, const char *coll, const char *field)
{
	return pindex_submit(db, coll, field, WREQ_PINDEX_DROP, 0);
}

/* The number of entries of one index. */
static int
entries_count(vecdb *db, MDB_txn *txn, uint32_t coll_id, uint32_t ix_id,
    uint64_t *out)
{
	uint8_t pre[8];
	MDB_cursor *cur;
	MDB_val k = { 8, pre }, v;
	uint64_t n = 0;
	int rc;

	ix_prefix(coll_id, ix_id, pre);
	if ((rc = mdb_cursor_open(txn, db->pindex, &cur)) != 0)
		return storage_mdb_err(rc, "open cursor");
	for (rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
	     rc == 0 && k.mv_size > 8 && memcmp(k.mv_data, pre, 8) == 0;
	     rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT))
		n++;
	mdb_cursor_close(cur);
	*out = n;
	return VECDB_OK;
}

int
vecdb_payload_index_list(vecdb *db, const char *coll,
    vecdb_payload_index_info **out, size_t *count)
{
	vecdb_payload_index_info *list = NULL;
	struct pindex_set ix;
	struct coll c;
	MDB_txn *txn;
	int rv;

	vdb_err_clear();
	if ((rv = storage_read_begin(db, &txn)) != VECDB_OK)
		return rv;
	if ((rv = storage_coll_find(db, txn, coll, &c)) != VECDB_OK ||
	    (rv = storage_pindex_load(db, txn, c.id, &ix)) != VECDB_OK)
		goto out;
	if ((list = vdb_calloc(ix.n ? ix.n : 1, sizeof(*list))) == NULL) {
		rv = vdb_err(VECDB_ENOMEM, "out of memory");
		goto out;
	}
	for (size_t i = 0; i < ix.n && rv == VECDB_OK; i++) {
		snprintf(list[i].field, sizeof(list[i].field), "%s",
		    ix.defs[i].field);
		list[i].schema = ix.defs[i].schema;
		rv = entries_count(db, txn, c.id, ix.defs[i].id,
		    &list[i].entries);
	}
out:
	mdb_txn_abort(txn);
	if (rv != VECDB_OK) {
		vdb_free(list);
		return rv;
	}
	*out = list;
	*count = ix.n;
	return VECDB_OK;
}

const char *
storage_schema_name(vecdb_field_schema s)
{
	return (unsigned) s <= VECDB_FIELD_GEO ? schema_names[s] : "unknown";
}

int
storage_pindex_copy_defs(vecdb *db, MDB_txn *txn, uint32_t coll_id,
    const struct pindex_set *ix)
{
	int rv = VECDB_OK;

	for (size_t i = 0; i < ix->n && rv == VECDB_OK; i++)
		rv = def_put(db, txn, coll_id, &ix->defs[i]);
	return rv;
}
