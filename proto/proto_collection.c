/*
 * proto_collection.c: collection DDL messages, and the messages that only
 * name a collection (and a snapshot or field in it).
 */
#include <math.h>
#include <string.h>

#include "proto_impl.h"

/* ===== Config ===== */

/* A CollectionConfig and the sparse vector messages it points to. */
struct pb_config {
	Vecdb__CollectionConfig pb;
	Vecdb__SparseVectorConfig sv[VECDB_SPARSE_MAX];
	Vecdb__SparseVectorConfig *svp[VECDB_SPARSE_MAX];
	Vecdb__VectorConfig vc[VECDB_VECTORS_MAX];
	Vecdb__VectorConfig *vcp[VECDB_VECTORS_MAX];
};

/* Fill a CollectionConfig (borrowing the names) from ours. */
static void
config_to_pb(const vecdb_collection_config *c, struct pb_config *x)
{
	Vecdb__CollectionConfig *pb = &x->pb;

	vecdb__collection_config__init(pb);
	pb->name = proto_str(c->name);
	pb->dimension = c->dimension;
	pb->metric = (Vecdb__Metric)c->metric;
	pb->vector_type = (Vecdb__VectorType)c->vector_type;
	pb->max_connections = c->index.max_connections;
	pb->ef_construction = c->index.ef_construction;
	pb->ef_search = c->index.ef_search;
	pb->max_layer = c->index.max_layer;
	pb->quantization = (Vecdb__Quantization)c->quantization.type;
	pb->quantile = c->quantization.quantile;
	pb->always_ram = c->quantization.always_ram != 0;
	pb->created_at = c->created_at;
	pb->segments = c->quantization.segments;
	pb->bits = c->quantization.bits;
	for (uint32_t i = 0; i < c->n_sparse && i < VECDB_SPARSE_MAX; i++) {
		vecdb__sparse_vector_config__init(&x->sv[i]);
		x->sv[i].name = proto_str(c->sparse[i].name);
		x->sv[i].modifier = (Vecdb__SparseModifier)c->sparse[i].modifier;
		x->svp[i] = &x->sv[i];
		pb->n_sparse_vectors = i + 1;
	}
	pb->sparse_vectors = x->svp;
	for (uint32_t i = 0; i < c->n_vectors && i < VECDB_VECTORS_MAX; i++) {
		const vecdb_vector_config *v = &c->vectors[i];
		Vecdb__VectorConfig *y = &x->vc[i];

		vecdb__vector_config__init(y);
		y->name = proto_str(v->name);
		y->dimension = v->dimension;
		y->metric = (Vecdb__Metric)v->metric;
		y->vector_type = (Vecdb__VectorType)v->vector_type;
		y->max_connections = v->index.max_connections;
		y->ef_construction = v->index.ef_construction;
		y->ef_search = v->index.ef_search;
		y->max_layer = v->index.max_layer;
		y->quantization = (Vecdb__Quantization)v->quantization.type;
		y->quantile = v->quantization.quantile;
		y->always_ram = v->quantization.always_ram != 0;
		y->segments = v->quantization.segments;
		y->bits = v->quantization.bits;
		x->vcp[i] = y;
		pb->n_vectors = i + 1;
	}
	pb->vectors = x->vcp;
}

/* Check the enum fields of a CollectionConfig. */
static int
config_check(const Vecdb__CollectionConfig *pb)
{
	if ((unsigned)pb->metric > VECDB_MANHATTAN)
		return vdb_err(VECDB_EINVAL, "unknown metric %d",
		    (int)pb->metric);
	if ((unsigned)pb->vector_type > VECDB_UINT8)
		return vdb_err(VECDB_EINVAL, "unknown vector type %d",
		    (int)pb->vector_type);
	if ((unsigned)pb->quantization > VECDB_QUANT_PRODUCT)
		return vdb_err(VECDB_EINVAL, "unknown quantization %d",
		    (int)pb->quantization);
	if ((pb->dimension < 1 && pb->n_vectors + pb->n_sparse_vectors ==
	    0) || pb->dimension > VECDB_DIM_MAX)
		return vdb_err(VECDB_EINVAL, "dimension %u out of range "
		    "1..%d (0: named vectors only)", pb->dimension,
		    VECDB_DIM_MAX);
	if (!isfinite(pb->quantile))
		return vdb_err(VECDB_EINVAL, "quantile is not a finite "
		    "number");
	if (pb->n_sparse_vectors > VECDB_SPARSE_MAX)
		return vdb_err(VECDB_EINVAL, "a collection has at most %d "
		    "sparse vectors", VECDB_SPARSE_MAX);
	for (size_t i = 0; i < pb->n_sparse_vectors; i++)
		if ((unsigned)pb->sparse_vectors[i]->modifier >
		    VECDB_SPARSE_IDF)
			return vdb_err(VECDB_EINVAL, "unknown sparse "
			    "modifier %d",
			    (int)pb->sparse_vectors[i]->modifier);
	if (pb->n_vectors > VECDB_VECTORS_MAX)
		return vdb_err(VECDB_EINVAL, "a collection has at most %d "
		    "named vectors", VECDB_VECTORS_MAX);
	for (size_t i = 0; i < pb->n_vectors; i++) {
		const Vecdb__VectorConfig *v = pb->vectors[i];

		if ((unsigned)v->metric > VECDB_MANHATTAN ||
		    (unsigned)v->vector_type > VECDB_UINT8 ||
		    (unsigned)v->quantization > VECDB_QUANT_PRODUCT ||
		    v->dimension < 1 || v->dimension > VECDB_DIM_MAX ||
		    !isfinite(v->quantile))
			return vdb_err(VECDB_EINVAL, "named vector %zu: a "
			    "metric, type, quantization, dimension or "
			    "quantile out of range", i);
	}
	return VECDB_OK;
}

/* Ours from a CollectionConfig (required). */
static int
config_from_pb(const Vecdb__CollectionConfig *pb, vecdb_collection_config *c)
{
	int rv;

	if (pb == NULL)
		return vdb_err(VECDB_EINVAL, "missing collection config");
	if ((rv = config_check(pb)) != VECDB_OK)
		return rv;
	memset(c, 0, sizeof(*c));
	if ((rv = proto_name_get(pb->name, VECDB_NAME_MAX, 1,
	    "collection name", c->name)) != VECDB_OK)
		return rv;
	c->dimension = pb->dimension;
	c->metric = (vecdb_metric)pb->metric;
	c->vector_type = (vecdb_vtype)pb->vector_type;
	c->index.max_connections = pb->max_connections;
	c->index.ef_construction = pb->ef_construction;
	c->index.ef_search = pb->ef_search;
	c->index.max_layer = pb->max_layer;
	c->quantization.type = (vecdb_quant)pb->quantization;
	c->quantization.quantile = pb->quantile;
	c->quantization.always_ram = pb->always_ram != 0;
	c->quantization.segments = pb->segments;
	c->quantization.bits = pb->bits;
	c->created_at = pb->created_at;
	for (size_t i = 0; i < pb->n_sparse_vectors; i++) {
		if ((rv = proto_name_get(pb->sparse_vectors[i]->name,
		    VECDB_NAME_MAX, 1, "sparse vector name",
		    c->sparse[i].name)) != VECDB_OK)
			return rv;
		c->sparse[i].modifier =
		    (vecdb_sparse_modifier)pb->sparse_vectors[i]->modifier;
	}
	c->n_sparse = (uint32_t)pb->n_sparse_vectors;
	for (size_t i = 0; i < pb->n_vectors; i++) {
		const Vecdb__VectorConfig *y = pb->vectors[i];
		vecdb_vector_config *v = &c->vectors[i];

		if ((rv = proto_name_get(y->name, VECDB_NAME_MAX, 1,
		    "vector name", v->name)) != VECDB_OK)
			return rv;
		v->dimension = y->dimension;
		v->metric = (vecdb_metric)y->metric;
		v->vector_type = (vecdb_vtype)y->vector_type;
		v->index.max_connections = y->max_connections;
		v->index.ef_construction = y->ef_construction;
		v->index.ef_search = y->ef_search;
		v->index.max_layer = y->max_layer;
		v->quantization.type = (vecdb_quant)y->quantization;
		v->quantization.quantile = y->quantile;
		v->quantization.always_ram = y->always_ram != 0;
		v->quantization.segments = y->segments;
		v->quantization.bits = y->bits;
	}
	c->n_vectors = (uint32_t)pb->n_vectors;
	return VECDB_OK;
}

int
proto_collection_create_encode(const vecdb_collection_config *c,
    uint8_t **out, size_t *len)
{
	Vecdb__CreateCollection m;
	struct pb_config pc;

	vecdb__create_collection__init(&m);
	config_to_pb(c, &pc);
	m.config = &pc.pb;
	return proto_pack(&m.base, out, len);
}

int
proto_collection_create_decode(const uint8_t *buf, size_t len,
    vecdb_collection_config *out)
{
	ProtobufCMessage *pm;
	vecdb_collection_config c;
	int rv;

	if ((rv = proto_unpack(&vecdb__create_collection__descriptor, buf,
	    len, &pm)) != VECDB_OK)
		return rv;
	rv = config_from_pb(((Vecdb__CreateCollection *)pm)->config, &c);
	proto_unpacked_free(pm);
	if (rv == VECDB_OK)
		*out = c;
	return rv;
}

/* ===== Info ===== */

int
proto_collection_info_encode(const vecdb_collection_config *c,
    const vecdb_collection_stats *st, uint8_t **out, size_t *len)
{
	Vecdb__GetCollectionResult m;
	struct pb_config pc;
	Vecdb__CollectionStats ps;

	vecdb__get_collection_result__init(&m);
	config_to_pb(c, &pc);
	vecdb__collection_stats__init(&ps);
	ps.vector_count = st->vector_count;
	ps.dimension = st->dimension;
	ps.disk_bytes = st->disk_bytes;
	ps.memory_bytes = st->memory_bytes;
	ps.indexed_count = st->indexed_count;
	ps.pending_count = st->pending_count;
	ps.dead_count = st->dead_count;
	ps.compacting = st->optimizer == VECDB_OPTIMIZER_COMPACTING;
	ps.optimizer_progress = st->optimizer_progress;
	ps.compactions = st->compactions;
	ps.indexing_rate = st->indexing_rate;
	ps.quant_in_force = (Vecdb__Quantization)st->quant_in_force;
	ps.code_bytes = st->code_bytes;
	ps.link_bytes = st->link_bytes;
	ps.original_bytes = st->original_bytes;
	ps.n_named_indexed = c->n_vectors < VECDB_VECTORS_MAX ?
	    c->n_vectors : VECDB_VECTORS_MAX;
	ps.named_indexed = (uint64_t *)(uintptr_t)st->named_indexed;
	m.config = &pc.pb;
	m.stats = &ps;
	return proto_pack(&m.base, out, len);
}

/* Ours from a GetCollectionResult. */
static int
info_from_pb(const Vecdb__GetCollectionResult *m, vecdb_collection_config *c,
    vecdb_collection_stats *st)
{
	const Vecdb__CollectionStats *ps = m->stats;
	int rv;

	if ((rv = config_from_pb(m->config, c)) != VECDB_OK)
		return rv;
	if (ps == NULL)
		return vdb_err(VECDB_EINVAL, "missing collection stats");
	if ((unsigned)ps->quant_in_force > VECDB_QUANT_PRODUCT)
		return vdb_err(VECDB_EINVAL, "unknown quantization in force %d",
		    (int)ps->quant_in_force);
	st->vector_count = ps->vector_count;
	st->dimension = ps->dimension;
	st->disk_bytes = ps->disk_bytes;
	st->memory_bytes = ps->memory_bytes;
	st->indexed_count = ps->indexed_count;
	st->pending_count = ps->pending_count;
	st->dead_count = ps->dead_count;
	st->dead_ratio = 0;
	if (st->dead_count > 0)
		st->dead_ratio = (double) st->dead_count /
		    (double) (st->indexed_count + st->dead_count);
	st->optimizer = ps->compacting ? VECDB_OPTIMIZER_COMPACTING :
					 VECDB_OPTIMIZER_IDLE;
	st->optimizer_progress = isfinite(ps->optimizer_progress) &&
	    ps->optimizer_progress >= 0 && ps->optimizer_progress <= 1 ?
	    ps->optimizer_progress : 0;
	st->compactions = ps->compactions;
	st->indexing_rate = isfinite(ps->indexing_rate) &&
	    ps->indexing_rate >= 0 ? ps->indexing_rate : 0;
	st->quant_in_force = (vecdb_quant)ps->quant_in_force;
	st->code_bytes = ps->code_bytes;
	st->link_bytes = ps->link_bytes;
	st->original_bytes = ps->original_bytes;
	memset(st->named_indexed, 0, sizeof(st->named_indexed));
	for (size_t i = 0; i < ps->n_named_indexed && i < VECDB_VECTORS_MAX;
	    i++)
		st->named_indexed[i] = ps->named_indexed[i];
	return VECDB_OK;
}

int
proto_collection_info_decode(const uint8_t *buf, size_t len,
    vecdb_collection_config *c, vecdb_collection_stats *st)
{
	ProtobufCMessage *pm;
	vecdb_collection_config cc;
	vecdb_collection_stats cs;
	int rv;

	if ((rv = proto_unpack(&vecdb__get_collection_result__descriptor, buf,
	    len, &pm)) != VECDB_OK)
		return rv;
	rv = info_from_pb((Vecdb__GetCollectionResult *)pm, &cc, &cs);
	proto_unpacked_free(pm);
	if (rv == VECDB_OK) {
		*c = cc;
		*st = cs;
	}
	return rv;
}

/* ===== Quantization ===== */

int
proto_set_quantization_encode(const char *coll,
    const vecdb_quant_config *q, uint8_t **out, size_t *len)
{
	Vecdb__SetQuantization m;

	vecdb__set_quantization__init(&m);
	m.collection = proto_str(coll);
	m.quantization = (Vecdb__Quantization)q->type;
	m.quantile = q->quantile;
	m.always_ram = q->always_ram != 0;
	m.segments = q->segments;
	m.bits = q->bits;
	return proto_pack(&m.base, out, len);
}

/* Ours from a SetQuantization. */
static int
set_quant_from_pb(const Vecdb__SetQuantization *m,
    char coll[VECDB_NAME_MAX + 1], vecdb_quant_config *q)
{
	int rv;

	if ((rv = proto_name_get(m->collection, VECDB_NAME_MAX, 1,
	    "collection name", coll)) != VECDB_OK)
		return rv;
	if ((unsigned)m->quantization > VECDB_QUANT_PRODUCT)
		return vdb_err(VECDB_EINVAL, "unknown quantization %d",
		    (int)m->quantization);
	if (!isfinite(m->quantile))
		return vdb_err(VECDB_EINVAL, "quantile is not a finite "
		    "number");
	memset(q, 0, sizeof(*q));
	q->type = (vecdb_quant)m->quantization;
	q->quantile = m->quantile;
	q->always_ram = m->always_ram != 0;
	q->segments = m->segments;
	q->bits = m->bits;
	return VECDB_OK;
}

int
proto_set_quantization_decode(const uint8_t *buf, size_t len,
    char coll[VECDB_NAME_MAX + 1], vecdb_quant_config *q)
{
	char c[VECDB_NAME_MAX + 1];
	ProtobufCMessage *pm;
	vecdb_quant_config qc;
	int rv;

	if ((rv = proto_unpack(&vecdb__set_quantization__descriptor, buf, len,
	    &pm)) != VECDB_OK)
		return rv;
	rv = set_quant_from_pb((Vecdb__SetQuantization *)pm, c, &qc);
	proto_unpacked_free(pm);
	if (rv == VECDB_OK) {
		memcpy(coll, c, sizeof(c));
		*q = qc;
	}
	return rv;
}

/* ===== Names ===== */

int
proto_names_encode(char *const *names, size_t n, uint8_t **out,
    size_t *len)
{
	Vecdb__ListCollectionsResult m;

	vecdb__list_collections_result__init(&m);
	m.n_names = n;
	m.names = (char **)(uintptr_t)names;
	return proto_pack(&m.base, out, len);
}

/* Copy the names of a ListCollectionsResult. */
static int
names_from_pb(const Vecdb__ListCollectionsResult *m, char ***out)
{
	char **names;
	char buf[VECDB_NAME_MAX + 1];
	int rv;

	if (m->n_names > PROTO_LIST_MAX)
		return vdb_err(VECDB_EINVAL, "%zu names, more than %d",
		    m->n_names, PROTO_LIST_MAX);
	if ((names = vdb_calloc(m->n_names + 1, sizeof(*names))) == NULL)
		return vdb_err(VECDB_ENOMEM, "out of memory for names");
	for (size_t i = 0; i < m->n_names; i++) {
		rv = proto_name_get(m->names[i], VECDB_NAME_MAX, 1,
		    "collection name", buf);
		if (rv == VECDB_OK && (names[i] = vdb_strdup(buf)) == NULL)
			rv = vdb_err(VECDB_ENOMEM, "out of memory for names");
		if (rv != VECDB_OK) {
			vecdb_names_free(names, i);
			return rv;
		}
	}
	*out = names;
	return VECDB_OK;
}

int
proto_names_decode(const uint8_t *buf, size_t len, char ***names,
    size_t *n)
{
	ProtobufCMessage *pm;
	int rv;

	if ((rv = proto_unpack(&vecdb__list_collections_result__descriptor,
	    buf, len, &pm)) != VECDB_OK)
		return rv;
	if ((rv = names_from_pb((Vecdb__ListCollectionsResult *)pm,
	    names)) == VECDB_OK)
		*n = ((Vecdb__ListCollectionsResult *)pm)->n_names;
	proto_unpacked_free(pm);
	return rv;
}

/* ===== Targets ===== */

/* The shape of a target message: its descriptor and second field. */
struct target_kind {
	const ProtobufCMessageDescriptor *desc;
	const char *field;   /* "name", "field" or NULL */
	size_t max;          /* bytes of that field */
	int optional;        /* the field may be empty */
};

/* The target message of @p method, or NULL when it has none. */
static const struct target_kind *
target_kind(uint32_t method)
{
	static const struct target_kind k[PROTO_METHOD_COUNT] = {
		[PROTO_GET_COLLECTION] = { &vecdb__get_collection__descriptor,
		    NULL, 0, 0 },
		[PROTO_DELETE_COLLECTION] = {
		    &vecdb__delete_collection__descriptor, NULL, 0, 0 },
		[PROTO_COMPACT_COLLECTION] = {
		    &vecdb__compact_collection__descriptor, NULL, 0, 0 },
		[PROTO_SNAPSHOT_CREATE] = {
		    &vecdb__snapshot_create__descriptor, "name",
		    VECDB_SNAPSHOT_NAME_MAX, 1 },
		[PROTO_SNAPSHOT_LIST] = { &vecdb__snapshot_list__descriptor,
		    NULL, 0, 0 },
		[PROTO_PAYLOAD_INDEX_LIST] = {
		    &vecdb__payload_index_list__descriptor, NULL, 0, 0 },
		[PROTO_SNAPSHOT_GET] = { &vecdb__snapshot_get__descriptor,
		    "name", VECDB_SNAPSHOT_NAME_MAX, 0 },
		[PROTO_SNAPSHOT_DELETE] = {
		    &vecdb__snapshot_delete__descriptor, "name",
		    VECDB_SNAPSHOT_NAME_MAX, 0 },
		[PROTO_SNAPSHOT_RESTORE] = {
		    &vecdb__snapshot_restore__descriptor, "name",
		    VECDB_SNAPSHOT_NAME_MAX, 0 },
		[PROTO_PAYLOAD_INDEX_DELETE] = {
		    &vecdb__payload_index_delete__descriptor, "field",
		    VECDB_FIELD_NAME_MAX, 0 },
		[PROTO_PAYLOAD_INDEX_CREATE] = {
		    &vecdb__payload_index_create__descriptor, "field",
		    VECDB_FIELD_NAME_MAX, 0 },
	};

	if (method >= PROTO_METHOD_COUNT || k[method].desc == NULL)
		return NULL;
	return &k[method];
}

/* The address of a named field inside an unpacked message. */
static void *
field_at(ProtobufCMessage *m, const char *name)
{
	const ProtobufCFieldDescriptor *f =
	    protobuf_c_message_descriptor_get_field_by_name(m->descriptor,
		name);

	return (char *)m + f->offset;
}

int
proto_target_encode(uint32_t method, const char *coll, const char *name,
    vecdb_field_schema schema, uint8_t **out, size_t *len)
{
	const struct target_kind *k = target_kind(method);
	/* room for the largest target message: three fields */
	union {
		ProtobufCMessage base;
		Vecdb__PayloadIndexCreate pic;
	} m;

	if (k == NULL)
		return vdb_err(VECDB_EINVAL, "method %s takes no target",
		    proto_method_name(method));
	protobuf_c_message_init(k->desc, &m);
	*(char **)field_at(&m.base, "collection") = proto_str(coll);
	if (k->field != NULL)
		*(char **)field_at(&m.base, k->field) = proto_str(name);
	if (method == PROTO_PAYLOAD_INDEX_CREATE)
		m.pic.schema = (Vecdb__FieldSchema)schema;
	return proto_pack(&m.base, out, len);
}

/* Ours from an unpacked target message of kind @p k. */
static int
target_from_pb(const struct target_kind *k, ProtobufCMessage *m,
    struct proto_target *t)
{
	int rv;

	memset(t, 0, sizeof(*t));
	if ((rv = proto_name_get(*(char **)field_at(m, "collection"),
	    VECDB_NAME_MAX, 1, "collection name", t->collection)))
		return rv;
	if (k->field != NULL && (rv = proto_name_get(*(char **)field_at(m,
	    k->field), k->max, !k->optional, k->field, t->name)) != VECDB_OK)
		return rv;
	if (k->desc == &vecdb__payload_index_create__descriptor) {
		int s = (int)((Vecdb__PayloadIndexCreate *)m)->schema;

		if (s < 0 || s > VECDB_FIELD_GEO)
			return vdb_err(VECDB_EINVAL, "unknown field schema "
			    "%d", s);
		t->schema = (vecdb_field_schema)s;
	}
	return VECDB_OK;
}

int
proto_target_decode(uint32_t method, const uint8_t *buf, size_t len,
    struct proto_target *out)
{
	const struct target_kind *k = target_kind(method);
	ProtobufCMessage *pm;
	struct proto_target t;
	int rv;

	if (k == NULL)
		return vdb_err(VECDB_EINVAL, "method %s takes no target",
		    proto_method_name(method));
	if ((rv = proto_unpack(k->desc, buf, len, &pm)) != VECDB_OK)
		return rv;
	rv = target_from_pb(k, pm, &t);
	proto_unpacked_free(pm);
	if (rv == VECDB_OK)
		*out = t;
	return rv;
}
