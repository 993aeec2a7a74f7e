/*
 * storage_catalog.c: collections: names, configs, the catalog records,
 * per-collection counters in meta, and create / get / list / delete.
 */
#include <math.h>
#include <stdio.h>
#include <time.h>

#include "storage_impl.h"

/* ===== Names and configs ===== */

int
storage_name_check(const char *name)
{
	return storage_name_check_as("collection", name);
}

int
storage_name_check_as(const char *what, const char *name)
{
	size_t n;

	if (name == NULL || *name == '\0')
		return vdb_err(VECDB_EINVAL, "%s name is empty", what);
	n = strnlen(name, VECDB_NAME_MAX + 1);
	if (n > VECDB_NAME_MAX)
		return vdb_err(VECDB_EINVAL,
		    "%s name is longer than %d characters", what,
		    VECDB_NAME_MAX);
	for (size_t i = 0; i < n; i++) {
		char c = name[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
			(c >= '0' && c <= '9') || c == '_' || c == '-'))
			return vdb_err(VECDB_EINVAL,
			    "%s name '%s' has a character outside "
			    "[A-Za-z0-9_-]", what, name);
	}
	return VECDB_OK;
}

/* The named sparse vectors: valid names, each once, known modifiers. */
static int
sparse_config_check(const vecdb_collection_config *c)
{
	int rv;

	if (c->n_sparse > VECDB_SPARSE_MAX)
		return vdb_err(VECDB_EINVAL, "a collection has at most %d "
		    "sparse vectors", VECDB_SPARSE_MAX);
	for (uint32_t i = 0; i < c->n_sparse; i++) {
		const vecdb_sparse_config *v = &c->sparse[i];

		if ((rv = storage_name_check_as("sparse vector", v->name)) !=
		    VECDB_OK)
			return rv;
		if ((unsigned) v->modifier > VECDB_SPARSE_IDF)
			return vdb_err(VECDB_EINVAL, "sparse vector '%s': "
			    "unknown modifier %d", v->name,
			    (int) v->modifier);
		for (uint32_t j = 0; j < i; j++)
			if (strcmp(c->sparse[j].name, v->name) == 0)
				return vdb_err(VECDB_EINVAL, "sparse vector "
				    "'%s' is declared twice", v->name);
	}
	return VECDB_OK;
}

/* Product quantization's defaults: a segment of 8 components, 8 bits. */
static void
quant_defaults(vecdb_quant_config *q, uint32_t dimension)
{
	if (q->quantile == 0)
		q->quantile = 0.99f;
	if (q->type != VECDB_QUANT_PRODUCT) {
		q->segments = q->bits = 0;
		return;
	}
	if (q->segments == 0)
		q->segments = (dimension + 7) / 8;
	if (q->bits == 0)
		q->bits = VECDB_PQ_BITS;
}

void
storage_config_defaults(const vecdb *db, vecdb_collection_config *cfg)
{
	if (cfg->index.max_connections == 0)
		cfg->index.max_connections = db->opts.hnsw_m;
	if (cfg->index.ef_construction == 0)
		cfg->index.ef_construction = VECDB_HNSW_EFC_DEFAULT;
	if (cfg->index.ef_search == 0)
		cfg->index.ef_search = db->opts.hnsw_ef;
	if (cfg->index.max_layer == 0)
		cfg->index.max_layer = VECDB_HNSW_LAYER_DEFAULT;
	quant_defaults(&cfg->quantization, cfg->dimension);
	for (uint32_t i = 0; i < cfg->n_vectors && i < VECDB_VECTORS_MAX;
	    i++) {
		vecdb_collection_config v;

		storage_vector_cfg(cfg, (int) i + 1, &v);
		v.index = cfg->vectors[i].index;
		memset(&v.quantization, 0, sizeof(v.quantization));
		v.quantization = cfg->vectors[i].quantization;
		v.n_vectors = 0;
		storage_config_defaults(db, &v);
		cfg->vectors[i].index = v.index;
		cfg->vectors[i].quantization = v.quantization;
	}
}

void
storage_vector_cfg(const vecdb_collection_config *c, int vslot,
    vecdb_collection_config *out)
{
	const vecdb_vector_config *v;

	*out = *c;
	out->n_sparse = 0;
	out->n_vectors = 0;
	if (vslot == 0)
		return;
	v = &c->vectors[vslot - 1];
	out->dimension = v->dimension;
	out->metric = v->metric;
	out->vector_type = v->vector_type;
	out->index = v->index;
	out->quantization = v->quantization;
}

int
storage_vector_slot(const vecdb_collection_config *c, const char *name)
{
	if (name == NULL || name[0] == '\0')
		return 0;
	for (uint32_t i = 0; i < c->n_vectors; i++)
		if (strcmp(c->vectors[i].name, name) == 0)
			return (int) i + 1;
	return -1;
}

int
storage_quant_check(const vecdb_quant_config *q, vecdb_metric metric,
    uint32_t dimension)
{
	if ((unsigned) q->type > VECDB_QUANT_PRODUCT)
		return vdb_err(VECDB_EINVAL, "unknown quantization %d",
		    (int) q->type);
	if (!(q->quantile > 0 && q->quantile <= 1))
		return vdb_err(VECDB_EINVAL,
		    "quantization quantile must be in (0, 1]");
	if (q->type == VECDB_QUANT_BINARY && metric != VECDB_COSINE &&
	    metric != VECDB_DOT)
		return vdb_err(VECDB_EINVAL, "binary quantization needs a cosine "
		    "or dot collection");
	if (q->type != VECDB_QUANT_PRODUCT)
		return VECDB_OK;
	if (q->segments < 1 || q->segments > dimension)
		return vdb_err(VECDB_EINVAL, "product quantization segments %u "
		    "is out of range 1..%u (the dimension)", q->segments,
		    dimension);
	if (q->bits != VECDB_PQ_BITS)
		return vdb_err(VECDB_EINVAL, "product quantization bits must be "
		    "%d", VECDB_PQ_BITS);
	return VECDB_OK;
}

/* EINVAL unless lo <= v <= hi. */
static int
range_check(const char *what, uint32_t v, uint32_t lo, uint32_t hi)
{
	if (v < lo || v > hi)
		return vdb_err(VECDB_EINVAL, "%s %u is out of range %u..%u",
		    what, v, lo, hi);
	return VECDB_OK;
}

/* A vector's settings (the default one's, or a named one's: what names
 * it in messages, "" for the default). */
static int
vector_check(const char *what, uint32_t dimension, vecdb_metric metric,
    vecdb_vtype vtype, const vecdb_index_config *ix,
    const vecdb_quant_config *q)
{
	char w[VECDB_NAME_MAX + 16];
	int rv;

	snprintf(w, sizeof(w), "%s%s%s", what[0] ? "vector '" : "", what,
	    what[0] ? "': " : "");
	if ((unsigned) metric > VECDB_MANHATTAN)
		return vdb_err(VECDB_EINVAL, "%sunknown distance metric %d", w,
		    (int) metric);
	if ((unsigned) vtype > VECDB_UINT8)
		return vdb_err(VECDB_EINVAL, "%sunknown vector type %d", w,
		    (int) vtype);
	if ((rv = storage_quant_check(q, metric, dimension)) != VECDB_OK ||
	    (rv = range_check("dimension", dimension, 1,
		 VECDB_DIM_MAX)) != VECDB_OK ||
	    (rv = range_check("max_connections", ix->max_connections,
		 VECDB_HNSW_M_MIN, VECDB_HNSW_M_MAX)) != VECDB_OK ||
	    (rv = range_check("ef_construction", ix->ef_construction,
		 VECDB_HNSW_EFC_MIN, VECDB_HNSW_EFC_MAX)) != VECDB_OK ||
	    (rv = range_check("ef_search", ix->ef_search, VECDB_HNSW_EF_MIN,
		 VECDB_HNSW_EF_MAX)) != VECDB_OK ||
	    (rv = range_check("max_layer", ix->max_layer,
		 VECDB_HNSW_LAYER_MIN, VECDB_HNSW_LAYER_MAX)) != VECDB_OK) {
		if (w[0] != '\0') {
			char m[512];

			snprintf(m, sizeof(m), "%s%s", w, vecdb_errmsg());
			vdb_err(rv, "%s", m);
		}
		return rv;
	}
	return VECDB_OK;
}

/* The named dense vectors: each valid, names unique among all the
 * collection's vectors. */
static int
vectors_check(const vecdb_collection_config *c)
{
	int rv;

	if (c->n_vectors > VECDB_VECTORS_MAX)
		return vdb_err(VECDB_EINVAL, "a collection has at most %d "
		    "named vectors", VECDB_VECTORS_MAX);
	for (uint32_t i = 0; i < c->n_vectors; i++) {
		const vecdb_vector_config *v = &c->vectors[i];

		if ((rv = storage_name_check_as("vector", v->name)) !=
		    VECDB_OK)
			return rv;
		for (uint32_t j = 0; j < i; j++)
			if (strcmp(c->vectors[j].name, v->name) == 0)
				return vdb_err(VECDB_EINVAL, "vector '%s' is "
				    "declared twice", v->name);
		for (uint32_t j = 0; j < c->n_sparse; j++)
			if (strcmp(c->sparse[j].name, v->name) == 0)
				return vdb_err(VECDB_EINVAL, "'%s' names both "
				    "a dense and a sparse vector", v->name);
		if ((rv = vector_check(v->name, v->dimension, v->metric,
		    v->vector_type, &v->index, &v->quantization)) != VECDB_OK)
			return rv;
	}
	return VECDB_OK;
}

int
storage_config_check(const vecdb_collection_config *c)
{
	int rv;

	if ((rv = storage_name_check(c->name)) != VECDB_OK ||
	    (rv = sparse_config_check(c)) != VECDB_OK ||
	    (rv = vectors_check(c)) != VECDB_OK)
		return rv;
	/* dimension 0: no default vector, only named ones */
	if (c->dimension == 0 && c->n_vectors + c->n_sparse > 0) {
		if (c->quantization.type != VECDB_QUANT_NONE)
			return vdb_err(VECDB_EINVAL, "a collection without a "
			    "default vector has no quantization of its own");
		return VECDB_OK;
	}
	return vector_check("", c->dimension, c->metric, c->vector_type,
	    &c->index, &c->quantization);
}

/* ===== Catalog records ===== */

/*
 * [ver u8][id u32][dim u32][metric u8][vtype u8][m u32][efc u32][ef u32]
 * [max_layer u32][quant u8][quantile f32][always_ram u8][created_at i64]
 * [pq segments u32][pq bits u8][2 reserved bytes] (COLL_REC_SIZE), then,
 * only when the collection has named vectors, its sparse ones: [n u8]
 * n x [namelen u8][name][modifier u8], and, only when it has named dense
 * ones, [n u8] n x [namelen u8][name][dim u32][metric u8][vtype u8][m u32]
 * [efc u32][ef u32][max_layer u32][quant u8][quantile f32][always_ram u8]
 * [pq segments u32][pq bits u8] (VEC_REC_SIZE after the name). A record
 * written before named vectors existed is a collection without any.
 */
size_t
storage_coll_encode(const struct coll *c, uint8_t out[COLL_REC_MAX])
{
	const vecdb_collection_config *g = &c->cfg;
	size_t len = COLL_REC_SIZE;
	uint32_t q;

	memset(out, 0, COLL_REC_SIZE);
	out[0] = STORAGE_REC_VERSION;
	put_le32(out + 1, c->id);
	put_le32(out + 5, g->dimension);
	out[9] = (uint8_t) g->metric;
	out[10] = (uint8_t) g->vector_type;
	put_le32(out + 11, g->index.max_connections);
	put_le32(out + 15, g->index.ef_construction);
	put_le32(out + 19, g->index.ef_search);
	put_le32(out + 23, g->index.max_layer);
	out[27] = (uint8_t) g->quantization.type;
	memcpy(&q, &g->quantization.quantile, 4);
	put_le32(out + 28, q);
	out[32] = g->quantization.always_ram ? 1 : 0;
	put_le64(out + 33, (uint64_t) g->created_at);
	put_le32(out + 41, g->quantization.segments);
	out[45] = (uint8_t) g->quantization.bits;
	if (g->n_sparse == 0 && g->n_vectors == 0)
		return len;
	out[len++] = (uint8_t) g->n_sparse;
	for (uint32_t i = 0; i < g->n_sparse && i < VECDB_SPARSE_MAX; i++) {
		size_t n = strnlen(g->sparse[i].name, VECDB_NAME_MAX);

		out[len++] = (uint8_t) n;
		memcpy(out + len, g->sparse[i].name, n);
		len += n;
		out[len++] = (uint8_t) g->sparse[i].modifier;
	}
	if (g->n_vectors == 0)
		return len;
	out[len++] = (uint8_t) g->n_vectors;
	for (uint32_t i = 0; i < g->n_vectors && i < VECDB_VECTORS_MAX; i++) {
		const vecdb_vector_config *v = &g->vectors[i];
		size_t n = strnlen(v->name, VECDB_NAME_MAX);

		out[len++] = (uint8_t) n;
		memcpy(out + len, v->name, n);
		len += n;
		put_le32(out + len, v->dimension);
		out[len + 4] = (uint8_t) v->metric;
		out[len + 5] = (uint8_t) v->vector_type;
		put_le32(out + len + 6, v->index.max_connections);
		put_le32(out + len + 10, v->index.ef_construction);
		put_le32(out + len + 14, v->index.ef_search);
		put_le32(out + len + 18, v->index.max_layer);
		out[len + 22] = (uint8_t) v->quantization.type;
		memcpy(&q, &v->quantization.quantile, 4);
		put_le32(out + len + 23, q);
		out[len + 27] = v->quantization.always_ram ? 1 : 0;
		put_le32(out + len + 28, v->quantization.segments);
		out[len + 32] = (uint8_t) v->quantization.bits;
		len += VEC_REC_SIZE;
	}
	return len;
}

/* The named vectors after the fixed part (len bytes at p): sparse, then
 * dense. */
static int
tail_decode(const uint8_t *p, size_t len, vecdb_collection_config *g)
{
	size_t at = 1;

	if (len == 0)
		return VECDB_OK;
	if (p[0] > VECDB_SPARSE_MAX)
		return VECDB_ECORRUPT;
	g->n_sparse = p[0];
	for (uint32_t i = 0; i < g->n_sparse; i++) {
		size_t n;

		if (at >= len || (n = p[at]) == 0 || n > VECDB_NAME_MAX ||
		    len - at < n + 2)
			return VECDB_ECORRUPT;
		memcpy(g->sparse[i].name, p + at + 1, n);
		g->sparse[i].name[n] = '\0';
		g->sparse[i].modifier = (vecdb_sparse_modifier) p[at + 1 + n];
		at += n + 2;
	}
	if (at == len)
		return g->n_sparse > 0 ? VECDB_OK : VECDB_ECORRUPT;
	if (p[at] == 0 || p[at] > VECDB_VECTORS_MAX)
		return VECDB_ECORRUPT;
	g->n_vectors = p[at++];
	for (uint32_t i = 0; i < g->n_vectors; i++) {
		vecdb_vector_config *v = &g->vectors[i];
		const uint8_t *e;
		uint32_t q;
		size_t n;

		if (at >= len || (n = p[at]) == 0 || n > VECDB_NAME_MAX ||
		    len - at < 1 + n + VEC_REC_SIZE)
			return VECDB_ECORRUPT;
		memcpy(v->name, p + at + 1, n);
		v->name[n] = '\0';
		e = p + at + 1 + n;
		v->dimension = get_le32(e);
		v->metric = (vecdb_metric) e[4];
		v->vector_type = (vecdb_vtype) e[5];
		v->index.max_connections = get_le32(e + 6);
		v->index.ef_construction = get_le32(e + 10);
		v->index.ef_search = get_le32(e + 14);
		v->index.max_layer = get_le32(e + 18);
		v->quantization.type = (vecdb_quant) e[22];
		q = get_le32(e + 23);
		memcpy(&v->quantization.quantile, &q, 4);
		v->quantization.always_ram = e[27];
		v->quantization.segments = get_le32(e + 28);
		v->quantization.bits = e[32];
		at += 1 + n + VEC_REC_SIZE;
	}
	return at == len ? VECDB_OK : VECDB_ECORRUPT;
}

int
storage_coll_decode(const char *name, const uint8_t *p, size_t len,
    struct coll *out)
{
	vecdb_collection_config *g = &out->cfg;
	uint32_t q;

	if (len < COLL_REC_SIZE || len > COLL_REC_MAX ||
	    p[0] != STORAGE_REC_VERSION)
		return vdb_err(VECDB_ECORRUPT,
		    "malformed catalog record for '%s'", name);
	memset(out, 0, sizeof(*out));
	snprintf(g->name, sizeof(g->name), "%s", name);
	out->id = get_le32(p + 1);
	g->dimension = get_le32(p + 5);
	g->metric = (vecdb_metric) p[9];
	g->vector_type = (vecdb_vtype) p[10];
	g->index.max_connections = get_le32(p + 11);
	g->index.ef_construction = get_le32(p + 15);
	g->index.ef_search = get_le32(p + 19);
	g->index.max_layer = get_le32(p + 23);
	g->quantization.type = (vecdb_quant) p[27];
	q = get_le32(p + 28);
	memcpy(&g->quantization.quantile, &q, 4);
	g->quantization.always_ram = p[32];
	g->created_at = (int64_t) get_le64(p + 33);
	g->quantization.segments = get_le32(p + 41);
	g->quantization.bits = p[45];
	if (tail_decode(p + COLL_REC_SIZE, len - COLL_REC_SIZE, g) !=
	    VECDB_OK || storage_config_check(g) != VECDB_OK)
		return vdb_err(VECDB_ECORRUPT,
		    "catalog record for '%s' is invalid", name);
	return VECDB_OK;
}

int
storage_coll_find(vecdb *db, MDB_txn *txn, const char *name,
    struct coll *out)
{
	MDB_val k, v;
	int rc, rv;

	if ((rv = storage_name_check(name)) != VECDB_OK)
		return rv;
	k.mv_data = (void *) name;
	k.mv_size = strlen(name);
	rc = mdb_get(txn, db->catalog, &k, &v);
	if (rc == MDB_NOTFOUND)
		return vdb_err(VECDB_ENOTFOUND, "collection '%s' not found",
		    name);
	if (rc != 0)
		return storage_mdb_err(rc, "read catalog");
	return storage_coll_decode(name, v.mv_data, v.mv_size, out);
}

/* ===== Meta ===== */

int
storage_meta_get_u64(vecdb *db, MDB_txn *txn, const char *key,
    uint64_t *out)
{
	MDB_val k = { strlen(key), (void *) key }, v;
	int rc = mdb_get(txn, db->meta, &k, &v);

	if (rc == MDB_NOTFOUND)
		return VECDB_ENOTFOUND; /* callers decide; no message */
	if (rc != 0)
		return storage_mdb_err(rc, "read meta");
	if (v.mv_size != 8)
		return vdb_err(VECDB_ECORRUPT, "meta '%s' is malformed", key);
	*out = get_le64(v.mv_data);
	return VECDB_OK;
}

int
storage_meta_put_u64(vecdb *db, MDB_txn *txn, const char *key, uint64_t val)
{
	uint8_t b[8];
	MDB_val k = { strlen(key), (void *) key }, v = { 8, b };
	int rc;

	put_le64(b, val);
	rc = mdb_put(txn, db->meta, &k, &v, 0);
	return rc ? storage_mdb_err(rc, "write meta") : VECDB_OK;
}

/* The meta key of a collection's state: "c" + id (big-endian). */
static void
state_key(uint32_t id, uint8_t key[5])
{
	key[0] = 'c';
	put_be32(key + 1, id);
}

int
storage_state_get(vecdb *db, MDB_txn *txn, uint32_t id,
    struct coll_state *out)
{
	uint8_t kb[5];
	MDB_val k = { 5, kb }, v;
	int rc;

	state_key(id, kb);
	rc = mdb_get(txn, db->meta, &k, &v);
	if (rc == MDB_NOTFOUND) {
		memset(out, 0, sizeof(*out));
		return VECDB_OK;
	}
	if (rc != 0)
		return storage_mdb_err(rc, "read collection state");
	if (v.mv_size != 32)
		return vdb_err(VECDB_ECORRUPT, "collection state malformed");
	out->next_offset = get_le64(v.mv_data);
	out->count = get_le64((uint8_t *) v.mv_data + 8);
	out->bytes = get_le64((uint8_t *) v.mv_data + 16);
	out->created_seq = get_le64((uint8_t *) v.mv_data + 24);
	return VECDB_OK;
}

int
storage_state_put(vecdb *db, MDB_txn *txn, uint32_t id,
    const struct coll_state *st)
{
	uint8_t kb[5], vb[32];
	MDB_val k = { 5, kb }, v = { 32, vb };
	int rc;

	state_key(id, kb);
	put_le64(vb, st->next_offset);
	put_le64(vb + 8, st->count);
	put_le64(vb + 16, st->bytes);
	put_le64(vb + 24, st->created_seq);
	rc = mdb_put(txn, db->meta, &k, &v, 0);
	return rc ? storage_mdb_err(rc, "write collection state") : VECDB_OK;
}

int
storage_prefix_drop(vecdb *db, MDB_txn *txn, MDB_dbi dbi, uint32_t id)
{
	uint8_t pre[4];
	MDB_cursor *cur;
	MDB_val k, v;
	int rc;

	(void) db;
	put_be32(pre, id);
	if ((rc = mdb_cursor_open(txn, dbi, &cur)) != 0)
		return storage_mdb_err(rc, "open cursor");
	k.mv_size = 4;
	k.mv_data = pre;
	rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
	while (rc == 0 && k.mv_size >= 4 && memcmp(k.mv_data, pre, 4) == 0) {
		if ((rc = mdb_cursor_del(cur, 0)) != 0)
			break;
		/* After a delete, MDB_NEXT yields the item that followed. */
		rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
	}
	mdb_cursor_close(cur);
	if (rc != 0 && rc != MDB_NOTFOUND)
		return storage_mdb_err(rc, "drop collection records");
	return VECDB_OK;
}

/* ===== Create and drop (writer thread) ===== */

int
storage_coll_create_txn(vecdb *db, MDB_txn *txn,
    const vecdb_collection_config *cfg, uint64_t seq, struct coll *out)
{
	uint8_t rec[COLL_REC_MAX];
	uint64_t next_id = 1;
	struct coll c;
	struct coll_state st = { 0, 0, 0, seq };
	MDB_val k, v;
	int rc, rv;

	rv = storage_meta_get_u64(db, txn, "next_coll_id", &next_id);
	if (rv != VECDB_OK && rv != VECDB_ENOTFOUND)
		return rv;
	if (next_id > UINT32_MAX)
		return vdb_err(VECDB_EFULL, "collection ids exhausted");
	memset(&c, 0, sizeof(c));
	c.id = (uint32_t) next_id;
	c.cfg = *cfg;
	k.mv_data = c.cfg.name;
	k.mv_size = strlen(c.cfg.name);
	v.mv_data = rec;
	v.mv_size = storage_coll_encode(&c, rec);
	rc = mdb_put(txn, db->catalog, &k, &v, MDB_NOOVERWRITE);
	if (rc == MDB_KEYEXIST)
		return vdb_err(VECDB_EEXIST, "collection '%s' already exists",
		    cfg->name);
	if (rc != 0)
		return storage_mdb_err(rc, "write catalog");
	if ((rv = storage_meta_put_u64(db, txn, "next_coll_id",
		 next_id + 1)) != VECDB_OK ||
	    (rv = storage_state_put(db, txn, c.id, &st)) != VECDB_OK)
		return rv;
	*out = c;
	return VECDB_OK;
}

int
storage_coll_drop_txn(vecdb *db, MDB_txn *txn, const struct coll *c)
{
	uint8_t kb[5];
	MDB_val k = { strlen(c->cfg.name), (void *) c->cfg.name };
	int rc, rv;

	if ((rv = storage_prefix_drop(db, txn, db->points, c->id)) != VECDB_OK ||
	    (rv = storage_prefix_drop(db, txn, db->offsets, c->id)) != VECDB_OK ||
	    (rv = storage_pindex_drop_all(db, txn, c->id)) != VECDB_OK ||
	    (db->has_sparse && (rv = storage_prefix_drop(db, txn, db->sparse,
		 c->id)) != VECDB_OK))
		return rv;
	if ((rc = mdb_del(txn, db->catalog, &k, NULL)) != 0)
		return storage_mdb_err(rc, "delete catalog record");
	kb[0] = 'c';
	put_be32(kb + 1, c->id);
	k.mv_data = kb;
	k.mv_size = 5;
	rc = mdb_del(txn, db->meta, &k, NULL);
	if (rc != 0 && rc != MDB_NOTFOUND)
		return storage_mdb_err(rc, "delete collection state");
	return VECDB_OK;
}

int
storage_apply_create(struct wctx *w, struct wreq *r)
{
	struct coll c;
	int rv;

	if ((rv = storage_coll_create_txn(w->db, w->txn, r->u.create.cfg,
		 w->seq + 1, &c)) != VECDB_OK)
		return rv;
	r->u.create.rec_len = storage_coll_encode(&c, r->u.create.rec);
	return VECDB_OK;
}

int
storage_apply_drop(struct wctx *w, struct wreq *r)
{
	struct coll c;
	int rv;

	if ((rv = storage_coll_find(w->db, w->txn, r->u.drop.coll, &c)) !=
	    VECDB_OK ||
	    (rv = storage_coll_drop_txn(w->db, w->txn, &c)) != VECDB_OK)
		return rv;
	r->u.drop.coll_id = c.id;
	return VECDB_OK;
}

/* Store the new quantization in the catalog; WAL_CONFIG makes the indexer
 * (and each replica's) rebuild the graph on it. */
int
storage_apply_config(struct wctx *w, struct wreq *r)
{
	struct wreq_config *q = &r->u.config;
	struct coll c;
	MDB_val k, v;
	int rc, rv;

	if ((rv = storage_coll_find(w->db, w->txn, q->coll, &c)) != VECDB_OK)
		return rv;
	c.cfg.quantization = *q->quant;
	quant_defaults(&c.cfg.quantization, c.cfg.dimension);
	if ((rv = storage_config_check(&c.cfg)) != VECDB_OK)
		return rv;
	q->rec_len = storage_coll_encode(&c, q->rec);
	k.mv_data = c.cfg.name;
	k.mv_size = strlen(c.cfg.name);
	v.mv_data = q->rec;
	v.mv_size = q->rec_len;
	if ((rc = mdb_put(w->txn, w->db->catalog, &k, &v, 0)) != 0)
		return storage_mdb_err(rc, "write catalog");
	q->coll_id = c.id;
	return VECDB_OK;
}

/* ===== Public API ===== */

/* VECDB_EREADONLY for a read-only handle. */
static int
writable(vecdb *db)
{
	if (db->writer == NULL)
		return vdb_err(VECDB_EREADONLY, "database %s is open read-only",
		    db->path);
	return VECDB_OK;
}

int
vecdb_collection_create(vecdb *db, const vecdb_collection_config *cfg)
{
	vecdb_collection_config c = *cfg;
	struct wreq r;
	int rv;

	vdb_err_clear();
	if ((rv = writable(db)) != VECDB_OK)
		return rv;
	c.name[VECDB_NAME_MAX] = '\0';
	storage_config_defaults(db, &c);
	if ((rv = storage_config_check(&c)) != VECDB_OK)
		return rv;
	c.created_at = (int64_t) time(NULL);
	memset(&r, 0, sizeof(r));
	r.op = WREQ_CREATE;
	r.u.create.cfg = &c;
	return storage_writer_submit(db, &r);
}

int
vecdb_collection_set_quantization(vecdb *db, const char *name,
    const vecdb_quant_config *q)
{
	struct wreq r;
	int rv;

	vdb_err_clear();
	if (q == NULL)
		return vdb_err(VECDB_EINVAL, "no quantization given");
	if ((rv = writable(db)) != VECDB_OK ||
	    (rv = storage_name_check(name)) != VECDB_OK)
		return rv;
	memset(&r, 0, sizeof(r));
	r.op = WREQ_CONFIG;
	r.u.config.coll = name;
	r.u.config.quant = q;
	return storage_writer_submit(db, &r);
}

int
vecdb_collection_get(vecdb *db, const char *name, vecdb_collection_config *out)
{
	struct coll c;
	MDB_txn *txn;
	int rv;

	vdb_err_clear();
	if ((rv = storage_read_begin(db, &txn)) != VECDB_OK)
		return rv;
	rv = storage_coll_find(db, txn, name, &c);
	mdb_txn_abort(txn);
	if (rv == VECDB_OK)
		*out = c.cfg;
	return rv;
}

/* Append a copy of a catalog key to the growing list. */
static int
names_push(char ***names, size_t *n, size_t *cap, const MDB_val *k)
{
	char *s;

	if (*n == *cap) {
		size_t nc = *cap ? *cap * 2 : 16;
		char **nn = vdb_realloc(*names, nc * sizeof(*nn));
		if (nn == NULL)
			return vdb_err(VECDB_ENOMEM, "out of memory");
		*names = nn;
		*cap = nc;
	}
	if ((s = vdb_malloc(k->mv_size + 1)) == NULL)
		return vdb_err(VECDB_ENOMEM, "out of memory");
	memcpy(s, k->mv_data, k->mv_size);
	s[k->mv_size] = '\0';
	(*names)[(*n)++] = s;
	return VECDB_OK;
}

int
vecdb_collection_list(vecdb *db, char ***names, size_t *count)
{
	char **list = NULL;
	size_t n = 0, cap = 0;
	MDB_cursor *cur = NULL;
	MDB_txn *txn;
	MDB_val k, v;
	int rc, rv;

	vdb_err_clear();
	if ((rv = storage_read_begin(db, &txn)) != VECDB_OK)
		return rv;
	if ((rc = mdb_cursor_open(txn, db->catalog, &cur)) != 0) {
		rv = storage_mdb_err(rc, "open cursor");
		goto fail;
	}
	for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0;
	     rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT))
		if ((rv = names_push(&list, &n, &cap, &k)) != VECDB_OK)
			goto fail;
	mdb_cursor_close(cur);
	mdb_txn_abort(txn);
	*names = list;
	*count = n;
	return VECDB_OK;
fail:
	if (cur != NULL)
		mdb_cursor_close(cur);
	mdb_txn_abort(txn);
	vecdb_names_free(list, n);
	return rv;
}

int
vecdb_collection_delete(vecdb *db, const char *name)
{
	struct wreq r;
	int rv;

	vdb_err_clear();
	if ((rv = writable(db)) != VECDB_OK ||
	    (rv = storage_name_check(name)) != VECDB_OK)
		return rv;
	memset(&r, 0, sizeof(r));
	r.op = WREQ_DROP;
	r.u.drop.coll = name;
	return storage_writer_submit(db, &r);
}

int
vecdb_collection_stats_get(vecdb *db, const char *name,
    vecdb_collection_stats *out)
{
	vecdb_collection_stats s;
	struct coll_state st;
	struct coll c;
	MDB_txn *txn;
	int rv;

	vdb_err_clear();
	if ((rv = storage_read_begin(db, &txn)) != VECDB_OK)
		return rv;
	memset(&s, 0, sizeof(s));
	if ((rv = storage_coll_find(db, txn, name, &c)) == VECDB_OK &&
	    (rv = storage_state_get(db, txn, c.id, &st)) == VECDB_OK) {
		s.vector_count = st.count;
		s.dimension = c.cfg.dimension;
		s.disk_bytes = st.bytes;
		rv = storage_index_stats(db, txn, &c, &s);
	}
	mdb_txn_abort(txn);
	if (rv == VECDB_OK)
		*out = s;
	return rv;
}
