/*
 * proto_admin.c: snapshots, payload index lists, stats and health.
 */
#include <math.h>
#include <string.h>

#include "proto_impl.h"

/* ===== Snapshots ===== */

int
proto_snapshot_read_encode(const struct proto_snapshot_read *q,
    uint8_t **out, size_t *len)
{
	Vecdb__SnapshotRead m;

	vecdb__snapshot_read__init(&m);
	m.collection = proto_str(q->collection);
	m.name = proto_str(q->name);
	m.offset = q->offset;
	m.max_bytes = q->max_bytes;
	return proto_pack(&m.base, out, len);
}

int
proto_snapshot_read_decode(const uint8_t *buf, size_t len,
    struct proto_snapshot_read *out)
{
	ProtobufCMessage *pm;
	Vecdb__SnapshotRead *m;
	int rv;

	if ((rv = proto_unpack(&vecdb__snapshot_read__descriptor, buf, len,
	    &pm)) != VECDB_OK)
		return rv;
	m = (Vecdb__SnapshotRead *) pm;
	if ((rv = proto_name_get(m->collection, VECDB_NAME_MAX, 1,
	    "collection", out->collection)) == VECDB_OK)
		rv = proto_name_get(m->name, VECDB_SNAPSHOT_NAME_MAX, 1,
		    "snapshot name", out->name);
	out->offset = m->offset;
	out->max_bytes = m->max_bytes == 0 || m->max_bytes > PROTO_CHUNK_MAX ?
	    PROTO_CHUNK_MAX : m->max_bytes;
	proto_unpacked_free(pm);
	return rv;
}

int
proto_snapshot_data_encode(const uint8_t *data, size_t n, uint64_t size,
    uint8_t **out, size_t *len)
{
	Vecdb__SnapshotData m;

	vecdb__snapshot_data__init(&m);
	m.data.data = (uint8_t *) (uintptr_t) data;
	m.data.len = n;
	m.size = size;
	return proto_pack(&m.base, out, len);
}

int
proto_snapshot_data_decode(const uint8_t *buf, size_t len, uint8_t **data,
    size_t *n, uint64_t *size)
{
	ProtobufCMessage *pm;
	Vecdb__SnapshotData *m;
	int rv;

	if ((rv = proto_unpack(&vecdb__snapshot_data__descriptor, buf, len,
	    &pm)) != VECDB_OK)
		return rv;
	m = (Vecdb__SnapshotData *) pm;
	if ((rv = proto_bytes_dup(m->data.data, m->data.len, data)) ==
	    VECDB_OK) {
		*n = m->data.len;
		*size = m->size;
	}
	proto_unpacked_free(pm);
	return rv;
}

int
proto_snapshot_upload_encode(const struct proto_snapshot_upload *u,
    uint8_t **out, size_t *len)
{
	Vecdb__SnapshotUpload m;

	vecdb__snapshot_upload__init(&m);
	m.collection = proto_str(u->collection);
	m.upload = u->upload;
	m.offset = u->offset;
	m.data.data = (uint8_t *) (uintptr_t) u->data;
	m.data.len = u->n;
	m.last = u->last != 0;
	return proto_pack(&m.base, out, len);
}

int
proto_snapshot_upload_decode(const uint8_t *buf, size_t len,
    struct proto_snapshot_upload *out, void **keep)
{
	ProtobufCMessage *pm;
	Vecdb__SnapshotUpload *m;
	int rv;

	*keep = NULL;
	if ((rv = proto_unpack(&vecdb__snapshot_upload__descriptor, buf, len,
	    &pm)) != VECDB_OK)
		return rv;
	m = (Vecdb__SnapshotUpload *) pm;
	if ((rv = proto_name_get(m->collection, VECDB_NAME_MAX, 1,
	    "collection", out->collection)) != VECDB_OK) {
		proto_unpacked_free(pm);
		return rv;
	}
	out->upload = m->upload;
	out->offset = m->offset;
	out->data = m->data.data;
	out->n = m->data.len;
	out->last = m->last;
	*keep = pm;
	return VECDB_OK;
}

void
proto_unpacked_drop(void *keep)
{
	if (keep != NULL)
		proto_unpacked_free(keep);
}

/* Fill a SnapshotInfo (borrowing) from ours. */
static void
snap_to_pb(const vecdb_snapshot_info *s, Vecdb__SnapshotInfo *pb)
{
	vecdb__snapshot_info__init(pb);
	pb->name = proto_str(s->name);
	pb->collection = proto_str(s->collection);
	pb->created_at = s->created_at;
	pb->size_bytes = s->size_bytes;
	pb->vector_count = s->vector_count;
	pb->checksum = proto_str(s->checksum);
}

/* Ours from a SnapshotInfo (required). */
static int
snap_from_pb(const Vecdb__SnapshotInfo *pb, vecdb_snapshot_info *s)
{
	int rv;

	if (pb == NULL)
		return vdb_err(VECDB_EINVAL, "missing snapshot info");
	memset(s, 0, sizeof(*s));
	if ((rv = proto_name_get(pb->name, VECDB_SNAPSHOT_NAME_MAX, 1,
	    "snapshot name", s->name)) != VECDB_OK ||
	    (rv = proto_name_get(pb->collection, VECDB_NAME_MAX, 1,
	    "collection name", s->collection)) != VECDB_OK ||
	    (rv = proto_name_get(pb->checksum, sizeof(s->checksum) - 1, 0,
	    "checksum", s->checksum)) != VECDB_OK)
		return rv;
	s->created_at = pb->created_at;
	s->size_bytes = pb->size_bytes;
	s->vector_count = pb->vector_count;
	return VECDB_OK;
}

int
proto_snapshot_info_encode(const vecdb_snapshot_info *s, uint8_t **out,
    size_t *len)
{
	Vecdb__SnapshotInfo m;

	snap_to_pb(s, &m);
	return proto_pack(&m.base, out, len);
}

int
proto_snapshot_info_decode(const uint8_t *buf, size_t len,
    vecdb_snapshot_info *out)
{
	ProtobufCMessage *pm;
	vecdb_snapshot_info s;
	int rv;

	if ((rv = proto_unpack(&vecdb__snapshot_info__descriptor, buf, len,
	    &pm)) != VECDB_OK)
		return rv;
	rv = snap_from_pb((Vecdb__SnapshotInfo *)pm, &s);
	proto_unpacked_free(pm);
	if (rv == VECDB_OK)
		*out = s;
	return rv;
}

int
proto_snapshot_list_encode(const vecdb_snapshot_info *s, size_t n,
    uint8_t **out, size_t *len)
{
	Vecdb__SnapshotListResult m;
	Vecdb__SnapshotInfo *pbs = vdb_calloc(n ? n : 1, sizeof(*pbs));
	Vecdb__SnapshotInfo **ptrs = vdb_calloc(n ? n : 1, sizeof(*ptrs));
	int rv;

	if (pbs == NULL || ptrs == NULL) {
		vdb_free(pbs);
		vdb_free(ptrs);
		return vdb_err(VECDB_ENOMEM, "out of memory packing snapshots");
	}
	for (size_t i = 0; i < n; i++) {
		snap_to_pb(&s[i], &pbs[i]);
		ptrs[i] = &pbs[i];
	}
	vecdb__snapshot_list_result__init(&m);
	m.n_snapshots = n;
	m.snapshots = ptrs;
	rv = proto_pack(&m.base, out, len);
	vdb_free(pbs);
	vdb_free(ptrs);
	return rv;
}

/* Ours from a SnapshotListResult. */
static int
snap_list_from_pb(const Vecdb__SnapshotListResult *m,
    vecdb_snapshot_info **out)
{
	vecdb_snapshot_info *s;
	int rv;

	if (m->n_snapshots > PROTO_LIST_MAX)
		return vdb_err(VECDB_EINVAL, "%zu snapshots, more than %d",
		    m->n_snapshots, PROTO_LIST_MAX);
	if ((s = vdb_calloc(m->n_snapshots + 1, sizeof(*s))) == NULL)
		return vdb_err(VECDB_ENOMEM, "out of memory for snapshots");
	for (size_t i = 0; i < m->n_snapshots; i++) {
		if ((rv = snap_from_pb(m->snapshots[i], &s[i])) != VECDB_OK) {
			vdb_free(s);
			return rv;
		}
	}
	*out = s;
	return VECDB_OK;
}

int
proto_snapshot_list_decode(const uint8_t *buf, size_t len,
    vecdb_snapshot_info **out, size_t *n)
{
	ProtobufCMessage *pm;
	int rv;

	if ((rv = proto_unpack(&vecdb__snapshot_list_result__descriptor, buf,
	    len, &pm)) != VECDB_OK)
		return rv;
	if ((rv = snap_list_from_pb((Vecdb__SnapshotListResult *)pm, out)) ==
	    VECDB_OK)
		*n = ((Vecdb__SnapshotListResult *)pm)->n_snapshots;
	proto_unpacked_free(pm);
	return rv;
}

/* ===== Payload indexes ===== */

int
proto_pindex_list_encode(const vecdb_payload_index_info *p, size_t n,
    uint8_t **out, size_t *len)
{
	Vecdb__PayloadIndexListResult m;
	Vecdb__PayloadIndexInfo *pbs = vdb_calloc(n ? n : 1, sizeof(*pbs));
	Vecdb__PayloadIndexInfo **ptrs = vdb_calloc(n ? n : 1, sizeof(*ptrs));
	int rv;

	if (pbs == NULL || ptrs == NULL) {
		vdb_free(pbs);
		vdb_free(ptrs);
		return vdb_err(VECDB_ENOMEM, "out of memory packing indexes");
	}
	for (size_t i = 0; i < n; i++) {
		vecdb__payload_index_info__init(&pbs[i]);
		pbs[i].field = proto_str(p[i].field);
		pbs[i].schema = (Vecdb__FieldSchema)p[i].schema;
		pbs[i].entries = p[i].entries;
		ptrs[i] = &pbs[i];
	}
	vecdb__payload_index_list_result__init(&m);
	m.n_indexes = n;
	m.indexes = ptrs;
	rv = proto_pack(&m.base, out, len);
	vdb_free(pbs);
	vdb_free(ptrs);
	return rv;
}

/* Ours from one PayloadIndexInfo. */
static int
pindex_from_pb(const Vecdb__PayloadIndexInfo *pb, vecdb_payload_index_info *p)
{
	int rv;

	if ((rv = proto_name_get(pb->field, VECDB_FIELD_NAME_MAX, 1,
	    "field", p->field)) != VECDB_OK)
		return rv;
	if ((unsigned)pb->schema > VECDB_FIELD_GEO)
		return vdb_err(VECDB_EINVAL, "unknown field schema %d",
		    (int)pb->schema);
	p->schema = (vecdb_field_schema)pb->schema;
	p->entries = pb->entries;
	return VECDB_OK;
}

/* Ours from a PayloadIndexListResult. */
static int
pindex_list_from_pb(const Vecdb__PayloadIndexListResult *m,
    vecdb_payload_index_info **out)
{
	vecdb_payload_index_info *p;
	int rv;

	if (m->n_indexes > PROTO_LIST_MAX)
		return vdb_err(VECDB_EINVAL, "%zu indexes, more than %d",
		    m->n_indexes, PROTO_LIST_MAX);
	if ((p = vdb_calloc(m->n_indexes + 1, sizeof(*p))) == NULL)
		return vdb_err(VECDB_ENOMEM, "out of memory for indexes");
	for (size_t i = 0; i < m->n_indexes; i++) {
		if ((rv = pindex_from_pb(m->indexes[i], &p[i])) != VECDB_OK) {
			vdb_free(p);
			return rv;
		}
	}
	*out = p;
	return VECDB_OK;
}

int
proto_pindex_list_decode(const uint8_t *buf, size_t len,
    vecdb_payload_index_info **out, size_t *n)
{
	ProtobufCMessage *pm;
	int rv;

	if ((rv = proto_unpack(&vecdb__payload_index_list_result__descriptor,
	    buf, len, &pm)) != VECDB_OK)
		return rv;
	if ((rv = pindex_list_from_pb((Vecdb__PayloadIndexListResult *)pm,
	    out)) == VECDB_OK)
		*n = ((Vecdb__PayloadIndexListResult *)pm)->n_indexes;
	proto_unpacked_free(pm);
	return rv;
}

/* ===== Stats and health ===== */

int
proto_stats_encode(const vecdb_stats *s, uint8_t **out, size_t *len)
{
	Vecdb__StatsResult m;

	vecdb__stats_result__init(&m);
	m.collections = s->collections;
	m.vectors = s->vectors;
	m.disk_bytes = s->disk_bytes;
	m.memory_bytes = s->memory_bytes;
	m.last_seq = s->last_seq;
	m.index_builds = s->index_builds;
	m.index_build_seconds = s->index_build_seconds;
	m.n_index_build_buckets = VECDB_BUILD_BUCKETS;
	m.index_build_buckets = (uint64_t *)(uintptr_t)s->index_build_buckets;
	m.wal_records = s->wal_records;
	return proto_pack(&m.base, out, len);
}

/* Ours from a StatsResult. */
static int
stats_from_pb(const Vecdb__StatsResult *m, vecdb_stats *s)
{
	if (m->n_index_build_buckets != VECDB_BUILD_BUCKETS)
		return vdb_err(VECDB_EINVAL, "%zu build buckets, not %d",
		    m->n_index_build_buckets, VECDB_BUILD_BUCKETS);
	if (!isfinite(m->index_build_seconds))
		return vdb_err(VECDB_EINVAL, "index_build_seconds is not a "
		    "finite number");
	s->collections = m->collections;
	s->vectors = m->vectors;
	s->disk_bytes = m->disk_bytes;
	s->memory_bytes = m->memory_bytes;
	s->last_seq = m->last_seq;
	s->index_builds = m->index_builds;
	s->index_build_seconds = m->index_build_seconds;
	memcpy(s->index_build_buckets, m->index_build_buckets,
	    sizeof(s->index_build_buckets));
	s->wal_records = m->wal_records;
	return VECDB_OK;
}

int
proto_stats_decode(const uint8_t *buf, size_t len, vecdb_stats *out)
{
	ProtobufCMessage *pm;
	vecdb_stats s;
	int rv;

	if ((rv = proto_unpack(&vecdb__stats_result__descriptor, buf, len,
	    &pm)) != VECDB_OK)
		return rv;
	rv = stats_from_pb((Vecdb__StatsResult *)pm, &s);
	proto_unpacked_free(pm);
	if (rv == VECDB_OK)
		*out = s;
	return rv;
}

int
proto_health_encode(const struct proto_health *h, uint8_t **out,
    size_t *len)
{
	Vecdb__HealthResult m;

	vecdb__health_result__init(&m);
	m.status = proto_str(h->status);
	m.version = proto_str(h->version);
	m.role = proto_str(h->role);
	m.node_id = proto_str(h->node_id);
	m.last_seq = h->last_seq;
	m.term = h->term;
	m.primary = proto_str(h->primary);
	m.parallelism = h->parallelism;
	return proto_pack(&m.base, out, len);
}

/* Ours from a HealthResult. */
static int
health_from_pb(const Vecdb__HealthResult *m, struct proto_health *h)
{
	int rv;

	memset(h, 0, sizeof(*h));
	if ((rv = proto_name_get(m->status, PROTO_TEXT_MAX, 1, "status",
	    h->status)) != VECDB_OK ||
	    (rv = proto_name_get(m->version, PROTO_TEXT_MAX, 0, "version",
	    h->version)) != VECDB_OK ||
	    (rv = proto_name_get(m->role, PROTO_TEXT_MAX, 0, "role",
	    h->role)) != VECDB_OK ||
	    (rv = proto_name_get(m->node_id, PROTO_TEXT_MAX, 0, "node id",
	    h->node_id)) != VECDB_OK ||
	    (rv = proto_name_get(m->primary, PROTO_URL_MAX, 0, "primary url",
	    h->primary)) != VECDB_OK)
		return rv;
	h->last_seq = m->last_seq;
	h->term = m->term;
	h->parallelism = m->parallelism;
	return VECDB_OK;
}

int
proto_health_decode(const uint8_t *buf, size_t len,
    struct proto_health *out)
{
	ProtobufCMessage *pm;
	struct proto_health h;
	int rv;

	if ((rv = proto_unpack(&vecdb__health_result__descriptor, buf, len,
	    &pm)) != VECDB_OK)
		return rv;
	rv = health_from_pb((Vecdb__HealthResult *)pm, &h);
	proto_unpacked_free(pm);
	if (rv == VECDB_OK)
		*out = h;
	return rv;
}
