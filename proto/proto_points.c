/*
 * proto_points.c: writing, deleting and reading points by id.
 */
#include <string.h>

#include "proto_impl.h"

/* ===== Write ===== */

/* The packing scratch of a Write: n points and their ids. */
struct write_pb {
	Vecdb__Point *pts;
	Vecdb__Point **ptrs;
	Vecdb__PointId *ids;
	size_t n;
};

/* Free the scratch. */
static void
write_pb_fini(struct write_pb *w)
{
	for (size_t i = 0; w->pts != NULL && i < w->n; i++)
		vdb_free(w->pts[i].sparse);
	vdb_free(w->pts);
	vdb_free(w->ptrs);
	vdb_free(w->ids);
}

/* Fill point @p i of the scratch from ours (borrowing). */
static void
point_to_pb(const vecdb_point *p, Vecdb__Point *pb, Vecdb__PointId *id)
{
	vecdb__point__init(pb);
	if (proto_id_set(&p->id, id))
		pb->id = id;
	if (p->vector != NULL) {
		pb->has_vector = 1;
		pb->n_vector = p->dim;
		pb->vector = (float *)(uintptr_t)p->vector;
	}
	if (p->payload != NULL) {
		pb->has_payload = 1;
		pb->payload_json = proto_str(p->payload);
	}
}

/* WriteOp on the wire is vecdb_write_op, value for value: the casts of
 * write_encode and write_from_pb depend on it. */
_Static_assert(VECDB__WRITE_OP__INSERT == (int)VECDB_WRITE_INSERT &&
    VECDB__WRITE_OP__UPSERT == (int)VECDB_WRITE_UPSERT &&
    VECDB__WRITE_OP__UPDATE == (int)VECDB_WRITE_UPDATE,
    "proto WriteOp and vecdb_write_op must agree");

/* A Write message, or a check of one. */
static int
write_encode(const char *coll, vecdb_write_op op, int check_only, uint32_t wc,
    const vecdb_point *pts, const vecdb_point_sparse *sparse, size_t n,
    uint8_t **out, size_t *len)
{
	Vecdb__Write m;
	struct write_pb w;
	size_t k = n ? n : 1;
	int rv;

	w.n = 0;
	w.pts = vdb_calloc(k, sizeof(*w.pts));
	w.ptrs = vdb_calloc(k, sizeof(*w.ptrs));
	w.ids = vdb_calloc(k, sizeof(*w.ids));
	if (w.pts == NULL || w.ptrs == NULL || w.ids == NULL) {
		write_pb_fini(&w);
		return vdb_err(VECDB_ENOMEM, "out of memory packing a write");
	}
	for (size_t i = 0; i < n; i++) {
		point_to_pb(&pts[i], &w.pts[i], &w.ids[i]);
		w.ptrs[i] = &w.pts[i];
		w.n = i + 1;
		if (sparse != NULL && (rv = proto_sparse_to_pb(&sparse[i],
		    &w.pts[i].sparse, &w.pts[i].n_sparse)) != VECDB_OK) {
			write_pb_fini(&w);
			return rv;
		}
	}
	vecdb__write__init(&m);
	m.collection = proto_str(coll);
	m.op = (Vecdb__WriteOp)op;
	m.check_only = check_only != 0;
	m.write_concern = wc;
	m.n_points = n;
	m.points = w.ptrs;
	rv = proto_pack(&m.base, out, len);
	write_pb_fini(&w);
	return rv;
}

int
proto_write_encode(const char *coll, vecdb_write_op op,
    const vecdb_point *pts,
    size_t n, uint8_t **out, size_t *len)
{
	return write_encode(coll, op, 0, 0, pts, NULL, n, out, len);
}

int
proto_write_sparse_encode(const char *coll, vecdb_write_op op,
    int check_only, uint32_t write_concern, const vecdb_point *pts,
    const vecdb_point_sparse *sparse, size_t n, uint8_t **out, size_t *len)
{
	return write_encode(coll, op, check_only, write_concern, pts, sparse,
	    n, out, len);
}

int
proto_write_wc_encode(const char *coll, vecdb_write_op op,
    uint32_t write_concern,
    const vecdb_point *pts, size_t n, uint8_t **out, size_t *len)
{
	return write_encode(coll, op, 0, write_concern, pts, NULL, n, out,
	    len);
}

int
proto_write_check_encode(const char *coll, vecdb_write_op op,
    const vecdb_point *pts,
    size_t n, uint8_t **out, size_t *len)
{
	return write_encode(coll, op, 1, 0, pts, NULL, n, out, len);
}

/* The vector of a Point, checked and copied. */
static int
point_vector(const Vecdb__Point *pb, size_t i, vecdb_point *p)
{
	float *v;
	int rv;

	if (!pb->has_vector) {
		if (pb->n_vector > 0)
			return vdb_err(VECDB_EINVAL, "point %zu: vector "
			    "given without has_vector", i);
		return VECDB_OK;
	}
	if (pb->n_vector < 1 || pb->n_vector > VECDB_DIM_MAX)
		return vdb_err(VECDB_EINVAL, "point %zu: vector of %zu "
		    "components, not 1..%d", i, pb->n_vector, VECDB_DIM_MAX);
	if ((rv = proto_floats_check(pb->vector, pb->n_vector, "vector")))
		return rv;
	if ((rv = proto_floats_dup(pb->vector, pb->n_vector, &v)))
		return rv;
	p->vector = v;
	p->dim = (uint32_t)pb->n_vector;
	return VECDB_OK;
}

/* The payload of a Point, checked and copied. */
static int
point_payload(const Vecdb__Point *pb, size_t i, vecdb_point *p)
{
	size_t n = pb->payload_json != NULL ? strlen(pb->payload_json) : 0;

	if (!pb->has_payload) {
		if (n > 0)
			return vdb_err(VECDB_EINVAL, "point %zu: payload "
			    "given without has_payload", i);
		return VECDB_OK;
	}
	if (n == 0 || n > VECDB_PAYLOAD_MAX)
		return vdb_err(VECDB_EINVAL, "point %zu: payload of %zu "
		    "bytes, not 1..%u", i, n, VECDB_PAYLOAD_MAX);
	if ((p->payload = vdb_strdup(pb->payload_json)) == NULL)
		return vdb_err(VECDB_ENOMEM, "out of memory for a payload");
	return VECDB_OK;
}

/* Ours from a Write. */
static int
write_from_pb(const Vecdb__Write *m, struct proto_write *w)
{
	int rv;

	if ((rv = proto_name_get(m->collection, VECDB_NAME_MAX, 1,
	    "collection name", w->collection)) != VECDB_OK)
		return rv;
	if ((unsigned)m->op > VECDB__WRITE_OP__UPDATE)
		return vdb_err(VECDB_EINVAL, "unknown write op %d",
		    (int)m->op);
	w->op = (vecdb_write_op)m->op;
	w->check_only = m->check_only;
	w->write_concern = m->write_concern;
	if (m->n_points > VECDB_BATCH_MAX)
		return vdb_err(VECDB_EINVAL, "%zu points, more than %d",
		    m->n_points, VECDB_BATCH_MAX);
	if (m->n_points > 0 && ((w->points = vdb_calloc(m->n_points,
	    sizeof(*w->points))) == NULL || (w->sparse = vdb_calloc(
	    m->n_points, sizeof(*w->sparse))) == NULL))
		return vdb_err(VECDB_ENOMEM, "out of memory for points");
	for (size_t i = 0; i < m->n_points; i++) {
		w->n = i + 1;
		if ((rv = proto_id_get(m->points[i]->id, 0, "point id",
		    &w->points[i].id)) != VECDB_OK ||
		    (rv = point_vector(m->points[i], i, &w->points[i])) ||
		    (rv = point_payload(m->points[i], i, &w->points[i])) ||
		    (rv = proto_sparse_from_pb(m->points[i]->sparse,
		    m->points[i]->n_sparse, &w->sparse[i])))
			return rv;
	}
	return VECDB_OK;
}

int
proto_write_decode(const uint8_t *buf, size_t len, struct proto_write **out)
{
	ProtobufCMessage *pm;
	struct proto_write *w;
	int rv;

	if ((rv = proto_unpack(&vecdb__write__descriptor, buf, len, &pm)))
		return rv;
	if ((w = vdb_calloc(1, sizeof(*w))) == NULL) {
		proto_unpacked_free(pm);
		return vdb_err(VECDB_ENOMEM, "out of memory for a write");
	}
	rv = write_from_pb((Vecdb__Write *)pm, w);
	proto_unpacked_free(pm);
	if (rv != VECDB_OK) {
		proto_write_free(w);
		return rv;
	}
	*out = w;
	return VECDB_OK;
}

void
proto_write_free(struct proto_write *w)
{
	if (w == NULL)
		return;
	for (size_t i = 0; i < w->n; i++) {
		vdb_free((void *)(uintptr_t)w->points[i].vector);
		vdb_free((void *)(uintptr_t)w->points[i].payload);
		if (w->sparse != NULL)
			proto_sparse_free(&w->sparse[i]);
	}
	vdb_free(w->points);
	vdb_free(w->sparse);
	vdb_free(w);
}

/* ===== Write result ===== */

int
proto_ids_encode(const vecdb_point *pts, size_t n, uint8_t **out,
    size_t *len)
{
	Vecdb__WriteResult m;
	Vecdb__PointId *pbs = vdb_calloc(n ? n : 1, sizeof(*pbs));
	Vecdb__PointId **ptrs = vdb_calloc(n ? n : 1, sizeof(*ptrs));
	int rv = VECDB_OK;

	if (pbs == NULL || ptrs == NULL)
		rv = vdb_err(VECDB_ENOMEM, "out of memory packing ids");
	for (size_t i = 0; rv == VECDB_OK && i < n; i++) {
		ptrs[i] = &pbs[i];
		if (!proto_id_set(&pts[i].id, &pbs[i]))
			rv = vdb_err(VECDB_EINVAL, "point %zu has no id", i);
	}
	if (rv == VECDB_OK) {
		vecdb__write_result__init(&m);
		m.n_ids = n;
		m.ids = ptrs;
		rv = proto_pack(&m.base, out, len);
	}
	vdb_free(pbs);
	vdb_free(ptrs);
	return rv;
}

int
proto_ids_decode(const uint8_t *buf, size_t len, vecdb_id **ids, size_t *n)
{
	ProtobufCMessage *pm;
	Vecdb__WriteResult *m;
	int rv;

	if ((rv = proto_unpack(&vecdb__write_result__descriptor, buf, len,
	    &pm)) != VECDB_OK)
		return rv;
	m = (Vecdb__WriteResult *)pm;
	if ((rv = proto_ids_from_pb(m->ids, m->n_ids, VECDB_BATCH_MAX,
	    "point ids", ids)) == VECDB_OK)
		*n = m->n_ids;
	proto_unpacked_free(pm);
	return rv;
}

/* ===== Delete ===== */

int
proto_delete_encode(const char *coll, const vecdb_id *ids, size_t n,
    uint8_t **out, size_t *len)
{
	Vecdb__Delete m;
	Vecdb__PointId *pbs, **ptrs;
	int rv;

	if ((rv = proto_ids_to_pb(ids, n, &pbs, &ptrs)) != VECDB_OK)
		return rv;
	vecdb__delete__init(&m);
	m.collection = proto_str(coll);
	m.n_ids = n;
	m.ids = ptrs;
	rv = proto_pack(&m.base, out, len);
	vdb_free(pbs);
	vdb_free(ptrs);
	return rv;
}

/* Ours from a Delete. */
static int
delete_from_pb(const Vecdb__Delete *m, struct proto_delete *d)
{
	int rv;

	if ((rv = proto_name_get(m->collection, VECDB_NAME_MAX, 1,
	    "collection name", d->collection)) != VECDB_OK)
		return rv;
	if ((rv = proto_ids_from_pb(m->ids, m->n_ids, VECDB_BATCH_MAX,
	    "point ids", &d->ids)) != VECDB_OK)
		return rv;
	d->n = m->n_ids;
	return VECDB_OK;
}

int
proto_delete_decode(const uint8_t *buf, size_t len,
    struct proto_delete **out)
{
	ProtobufCMessage *pm;
	struct proto_delete *d;
	int rv;

	if ((rv = proto_unpack(&vecdb__delete__descriptor, buf, len, &pm)))
		return rv;
	if ((d = vdb_calloc(1, sizeof(*d))) == NULL) {
		proto_unpacked_free(pm);
		return vdb_err(VECDB_ENOMEM, "out of memory for a delete");
	}
	rv = delete_from_pb((Vecdb__Delete *)pm, d);
	proto_unpacked_free(pm);
	if (rv != VECDB_OK) {
		proto_delete_free(d);
		return rv;
	}
	*out = d;
	return VECDB_OK;
}

void
proto_delete_free(struct proto_delete *d)
{
	if (d == NULL)
		return;
	vdb_free(d->ids);
	vdb_free(d);
}

int
proto_deleted_encode(uint64_t deleted, uint8_t **out, size_t *len)
{
	Vecdb__DeleteResult m;

	vecdb__delete_result__init(&m);
	m.deleted = deleted;
	return proto_pack(&m.base, out, len);
}

int
proto_deleted_decode(const uint8_t *buf, size_t len, uint64_t *out)
{
	ProtobufCMessage *pm;
	int rv;

	if ((rv = proto_unpack(&vecdb__delete_result__descriptor, buf, len,
	    &pm)) != VECDB_OK)
		return rv;
	*out = ((Vecdb__DeleteResult *)pm)->deleted;
	proto_unpacked_free(pm);
	return VECDB_OK;
}

int
proto_count_result_encode(uint64_t count, uint8_t **out, size_t *len)
{
	Vecdb__CountResult m;

	vecdb__count_result__init(&m);
	m.count = count;
	return proto_pack(&m.base, out, len);
}

int
proto_count_result_decode(const uint8_t *buf, size_t len, uint64_t *out)
{
	ProtobufCMessage *pm;
	int rv;

	if ((rv = proto_unpack(&vecdb__count_result__descriptor, buf, len,
	    &pm)) != VECDB_OK)
		return rv;
	*out = ((Vecdb__CountResult *)pm)->count;
	proto_unpacked_free(pm);
	return VECDB_OK;
}

/* ===== Get ===== */

int
proto_get_encode(const char *coll, const vecdb_id *id, uint8_t **out,
    size_t *len)
{
	Vecdb__Get m;
	Vecdb__PointId pid;

	vecdb__get__init(&m);
	m.collection = proto_str(coll);
	if (proto_id_set(id, &pid))
		m.id = &pid;
	return proto_pack(&m.base, out, len);
}

int
proto_get_decode(const uint8_t *buf, size_t len,
    char coll[VECDB_NAME_MAX + 1], vecdb_id *id)
{
	ProtobufCMessage *pm;
	Vecdb__Get *m;
	char c[VECDB_NAME_MAX + 1];
	vecdb_id i;
	int rv;

	if ((rv = proto_unpack(&vecdb__get__descriptor, buf, len, &pm)))
		return rv;
	m = (Vecdb__Get *)pm;
	if ((rv = proto_name_get(m->collection, VECDB_NAME_MAX, 1,
	    "collection name", c)) == VECDB_OK)
		rv = proto_id_get(m->id, 1, "point id", &i);
	proto_unpacked_free(pm);
	if (rv == VECDB_OK) {
		memcpy(coll, c, sizeof(c));
		*id = i;
	}
	return rv;
}
