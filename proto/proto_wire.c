/*
 * proto_wire.c: packing, unpacking and the checks every message shares;
 * the envelope; the mapping between vecdb_err and the gRPC codes.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "proto_impl.h"

/* ===== Allocation ===== */

/* protobuf-c's alloc hook over vdb_malloc. */
static void *
pb_alloc(void *data, size_t size)
{
	(void)data;
	return vdb_malloc(size);
}

/* protobuf-c's free hook over vdb_free. */
static void
pb_free(void *data, void *p)
{
	(void)data;
	vdb_free(p);
}

ProtobufCAllocator proto_allocator = { pb_alloc, pb_free, NULL };

/* ===== Packing ===== */

int
proto_pack(const ProtobufCMessage *m, uint8_t **out, size_t *len)
{
	size_t n = protobuf_c_message_get_packed_size(m);
	uint8_t *buf = NULL;

	if (n > PROTO_MSG_MAX)
		return vdb_err(VECDB_EINVAL, "%s message of %zu bytes is over "
		    "the limit of %u", m->descriptor->short_name, n,
		    PROTO_MSG_MAX);
	if (n > 0) {
		if ((buf = vdb_malloc(n)) == NULL)
			return vdb_err(VECDB_ENOMEM, "out of memory packing %s",
			    m->descriptor->short_name);
		protobuf_c_message_pack(m, buf);
	}
	*out = buf;
	*len = n;
	return VECDB_OK;
}

int
proto_unpack(const ProtobufCMessageDescriptor *d, const uint8_t *buf,
    size_t len, ProtobufCMessage **out)
{
	static const uint8_t empty[1];
	ProtobufCMessage *m;

	if (buf == NULL && len > 0)
		return vdb_err(VECDB_EINVAL, "%s message: no buffer",
		    d->short_name);
	if (len > PROTO_MSG_MAX)
		return vdb_err(VECDB_EINVAL, "%s message of %zu bytes is over "
		    "the limit of %u", d->short_name, len, PROTO_MSG_MAX);
	m = protobuf_c_message_unpack(d, &proto_allocator, len,
	    buf != NULL ? buf : empty);
	if (m == NULL)
		return vdb_err(VECDB_EINVAL, "malformed or truncated %s "
		    "message (%zu bytes)", d->short_name, len);
	*out = m;
	return VECDB_OK;
}

void
proto_unpacked_free(void *m)
{
	if (m != NULL)
		protobuf_c_message_free_unpacked(m, &proto_allocator);
}

/* ===== Shared checks ===== */

char *
proto_str(const char *s)
{
	return (char *)(uintptr_t)(s != NULL ? s : "");
}

int
proto_bytes_dup(const void *p, size_t n, uint8_t **out)
{
	uint8_t *c = NULL;

	if (n > 0) {
		if ((c = vdb_malloc(n)) == NULL)
			return vdb_err(VECDB_ENOMEM, "out of memory for %zu "
			    "bytes", n);
		memcpy(c, p, n);
	}
	*out = c;
	return VECDB_OK;
}

int
proto_name_get(const char *s, size_t max, int required, const char *what,
    char *dst)
{
	size_t n = s != NULL ? strlen(s) : 0;

	if (n == 0 && required)
		return vdb_err(VECDB_EINVAL, "missing %s", what);
	if (n > max)
		return vdb_err(VECDB_EINVAL, "%s of %zu bytes is longer than "
		    "%zu", what, n, max);
	memcpy(dst, s != NULL ? s : "", n);
	dst[n] = '\0';
	return VECDB_OK;
}

int
proto_id_set(const vecdb_id *id, Vecdb__PointId *pb)
{
	vecdb__point_id__init(pb);
	if (id == NULL || id->kind == VECDB_ID_NONE)
		return 0;
	if (id->kind == VECDB_ID_NUM) {
		pb->kind_case = VECDB__POINT_ID__KIND_NUM;
		pb->num = id->num;
	} else {
		pb->kind_case = VECDB__POINT_ID__KIND_UUID;
		pb->uuid.len = 16;
		pb->uuid.data = (uint8_t *)(uintptr_t)id->uuid;
	}
	return 1;
}

int
proto_id_get(const Vecdb__PointId *pb, int required, const char *what,
    vecdb_id *out)
{
	memset(out, 0, sizeof(*out));
	if (pb == NULL)
		return required ? vdb_err(VECDB_EINVAL, "missing %s", what)
				: VECDB_OK;
	if (pb->kind_case == VECDB__POINT_ID__KIND_NUM) {
		out->kind = VECDB_ID_NUM;
		out->num = pb->num;
		return VECDB_OK;
	}
	if (pb->kind_case != VECDB__POINT_ID__KIND_UUID)
		return vdb_err(VECDB_EINVAL, "%s has neither num nor uuid",
		    what);
	if (pb->uuid.len != 16)
		return vdb_err(VECDB_EINVAL, "%s: uuid of %zu bytes, not 16",
		    what, pb->uuid.len);
	out->kind = VECDB_ID_UUID;
	memcpy(out->uuid, pb->uuid.data, 16);
	return VECDB_OK;
}

int
proto_ids_to_pb(const vecdb_id *ids, size_t n, Vecdb__PointId **pbs,
    Vecdb__PointId ***ptrs)
{
	Vecdb__PointId *a = vdb_calloc(n ? n : 1, sizeof(*a));
	Vecdb__PointId **p = vdb_calloc(n ? n : 1, sizeof(*p));

	if (a == NULL || p == NULL) {
		vdb_free(a);
		vdb_free(p);
		return vdb_err(VECDB_ENOMEM, "out of memory packing ids");
	}
	for (size_t i = 0; i < n; i++) {
		p[i] = &a[i];
		if (!proto_id_set(&ids[i], &a[i])) {
			vdb_free(a);
			vdb_free(p);
			return vdb_err(VECDB_EINVAL, "id %zu has no kind", i);
		}
	}
	*pbs = a;
	*ptrs = p;
	return VECDB_OK;
}

int
proto_ids_from_pb(Vecdb__PointId *const *pbs, size_t n, size_t max,
    const char *what, vecdb_id **out)
{
	vecdb_id *ids = NULL;
	int rv;

	if (n > max)
		return vdb_err(VECDB_EINVAL, "%zu %s, more than %zu", n, what,
		    max);
	if (n > 0 && (ids = vdb_calloc(n, sizeof(*ids))) == NULL)
		return vdb_err(VECDB_ENOMEM, "out of memory for %zu ids", n);
	for (size_t i = 0; i < n; i++) {
		if ((rv = proto_id_get(pbs[i], 1, what, &ids[i])) != VECDB_OK) {
			vdb_free(ids);
			return rv;
		}
	}
	*out = ids;
	return VECDB_OK;
}

int
proto_floats_check(const float *v, size_t n, const char *what)
{
	for (size_t i = 0; i < n; i++)
		if (!isfinite(v[i]))
			return vdb_err(VECDB_EINVAL, "%s: component %zu is "
			    "not a finite number", what, i);
	return VECDB_OK;
}

int
proto_floats_dup(const float *v, size_t n, float **out)
{
	float *c = NULL;

	if (n > 0) {
		if ((c = vdb_malloc(n * sizeof(*c))) == NULL)
			return vdb_err(VECDB_ENOMEM, "out of memory for a "
			    "vector of %zu", n);
		memcpy(c, v, n * sizeof(*c));
	}
	*out = c;
	return VECDB_OK;
}

int
proto_using_get(const char *s, char buf[VECDB_NAME_MAX + 1],
    const char **out)
{
	*out = NULL;
	if (s == NULL || s[0] == '\0')
		return VECDB_OK;
	if (strlen(s) > VECDB_NAME_MAX)
		return vdb_err(VECDB_EINVAL, "vector name over %d "
		    "characters", VECDB_NAME_MAX);
	snprintf(buf, VECDB_NAME_MAX + 1, "%s", s);
	*out = buf;
	return VECDB_OK;
}

int
proto_filter_get(const char *s, char **out)
{
	size_t n = s != NULL ? strlen(s) : 0;
	char *c;

	if (n == 0) {
		*out = NULL;
		return VECDB_OK;
	}
	if (n > PROTO_FILTER_MAX)
		return vdb_err(VECDB_EINVAL, "filter of %zu bytes is over the "
		    "limit of %u", n, PROTO_FILTER_MAX);
	if (vdb_json_depth(s, n) > PROTO_FILTER_DEPTH_MAX)
		return vdb_err(VECDB_EINVAL, "filter nested deeper than %d",
		    PROTO_FILTER_DEPTH_MAX);
	if ((c = vdb_strdup(s)) == NULL)
		return vdb_err(VECDB_ENOMEM, "out of memory for a filter");
	*out = c;
	return VECDB_OK;
}

/* ===== Codes ===== */

/* Method names, by enum proto_method value (for logs and metrics). */
static const char *const method_names[PROTO_METHOD_COUNT] = {
	"unspecified", "create_collection", "get_collection",
	"list_collections", "delete_collection", "write", "delete", "get",
	"search", "recommend", "discover", "scroll", "count",
	"snapshot_create", "snapshot_list", "snapshot_get", "snapshot_delete",
	"snapshot_restore", "payload_index_create", "payload_index_delete",
	"payload_index_list", "stats", "health", "fetch_wal",
	"bootstrap_begin", "bootstrap_chunk", "promote", "follow",
	"snapshot_read", "snapshot_upload",
	"compact_collection", "set_quantization", "sparse_search",
	"sparse_stats",
};

const char *
proto_method_name(uint32_t method)
{
	if (method == 0 || method >= PROTO_METHOD_COUNT)
		return "unknown";
	return method_names[method];
}

/* vecdb_err -> code; ENOMEM and EFULL share RESOURCE_EXHAUSTED. */
static const int code_of_err[VECDB_ERR_COUNT] = {
	[VECDB_OK] = PROTO_OK,
	[VECDB_EINVAL] = PROTO_INVALID_ARGUMENT,
	[VECDB_EDIM] = PROTO_OUT_OF_RANGE,
	[VECDB_ENOTFOUND] = PROTO_NOT_FOUND,
	[VECDB_EEXIST] = PROTO_ALREADY_EXISTS,
	[VECDB_ELOCKED] = PROTO_ABORTED,
	[VECDB_EREADONLY] = PROTO_FAILED_PRECONDITION,
	[VECDB_ECORRUPT] = PROTO_DATA_LOSS,
	[VECDB_EFULL] = PROTO_RESOURCE_EXHAUSTED,
	[VECDB_ENOMEM] = PROTO_RESOURCE_EXHAUSTED,
	[VECDB_EIO] = PROTO_UNKNOWN,
	[VECDB_ECLOSED] = PROTO_CANCELLED,
	[VECDB_EINTERNAL] = PROTO_INTERNAL,
	[VECDB_ETIMEDOUT] = PROTO_DEADLINE_EXCEEDED,
	[VECDB_EUNAVAILABLE] = PROTO_UNAVAILABLE,
};

/* code -> vecdb_err: the inverse where there is one. */
static const int err_of_code[PROTO_CODE_COUNT] = {
	[PROTO_OK] = VECDB_OK,
	[PROTO_CANCELLED] = VECDB_ECLOSED,
	[PROTO_UNKNOWN] = VECDB_EIO,
	[PROTO_INVALID_ARGUMENT] = VECDB_EINVAL,
	[PROTO_DEADLINE_EXCEEDED] = VECDB_ETIMEDOUT,
	[PROTO_NOT_FOUND] = VECDB_ENOTFOUND,
	[PROTO_ALREADY_EXISTS] = VECDB_EEXIST,
	[PROTO_PERMISSION_DENIED] = VECDB_EREADONLY,
	[PROTO_RESOURCE_EXHAUSTED] = VECDB_EFULL,
	[PROTO_FAILED_PRECONDITION] = VECDB_EREADONLY,
	[PROTO_ABORTED] = VECDB_ELOCKED,
	[PROTO_OUT_OF_RANGE] = VECDB_EDIM,
	[PROTO_UNIMPLEMENTED] = VECDB_EINVAL,
	[PROTO_INTERNAL] = VECDB_EINTERNAL,
	[PROTO_UNAVAILABLE] = VECDB_EUNAVAILABLE,
	[PROTO_DATA_LOSS] = VECDB_ECORRUPT,
	[PROTO_UNAUTHENTICATED] = VECDB_EREADONLY,
};

int
proto_code_of(int vecdb_err)
{
	if (vecdb_err < 0 || vecdb_err >= VECDB_ERR_COUNT)
		return PROTO_UNKNOWN;
	return code_of_err[vecdb_err];
}

int
proto_err_of(int code)
{
	if (code < 0 || code >= PROTO_CODE_COUNT)
		return VECDB_EINTERNAL;
	return err_of_code[code];
}

/* ===== Sparse vectors ===== */

/* A block of n pointers followed by the n messages. */
static Vecdb__SparseVector **
sparse_block(size_t n)
{
	Vecdb__SparseVector **p;

	if ((p = vdb_malloc(n * (sizeof(*p) + sizeof(**p)))) == NULL)
		return NULL;
	for (size_t i = 0; i < n; i++) {
		p[i] = (Vecdb__SparseVector *)(void *)(p + n) + i;
		vecdb__sparse_vector__init(p[i]);
	}
	return p;
}

int
proto_sparse_to_pb(const vecdb_point_sparse *ps, Vecdb__SparseVector ***out,
    size_t *n)
{
	Vecdb__SparseVector **p;
	size_t k;

	*out = NULL;
	*n = 0;
	if (ps == NULL || (k = ps->n + ps->nd) == 0)
		return VECDB_OK;
	if ((p = sparse_block(k)) == NULL)
		return vdb_err(VECDB_ENOMEM, "out of memory packing sparse "
		    "vectors");
	for (size_t i = 0; i < ps->n; i++) {
		const vecdb_sparse_vector *v = &ps->v[i];

		p[i]->name = proto_str(v->name);
		p[i]->remove = v->remove != 0;
		p[i]->n_indices = p[i]->n_values = v->n;
		p[i]->indices = (uint32_t *)(uintptr_t)v->indices;
		p[i]->values = (float *)(uintptr_t)v->values;
	}
	for (size_t i = 0; i < ps->nd; i++) {
		const vecdb_named_vector *d = &ps->d[i];
		Vecdb__SparseVector *x = p[ps->n + i];

		x->name = proto_str(d->name);
		x->dense = 1;
		x->remove = d->remove != 0;
		x->n_values = d->remove ? 0 : d->dim;
		x->values = (float *)(uintptr_t)d->data;
	}
	*out = p;
	*n = k;
	return VECDB_OK;
}

int
proto_sparse_records_to_pb(const vecdb_record *r, Vecdb__SparseVector ***out,
    size_t *n)
{
	Vecdb__SparseVector **p;
	size_t k = r->n_sparse + r->n_named;

	*out = NULL;
	*n = 0;
	if (k == 0)
		return VECDB_OK;
	if ((p = sparse_block(k)) == NULL)
		return vdb_err(VECDB_ENOMEM, "out of memory packing sparse "
		    "vectors");
	for (size_t i = 0; i < r->n_sparse; i++) {
		const vecdb_sparse_record *v = &r->sparse[i];

		p[i]->name = (char *)(uintptr_t)v->name;
		p[i]->n_indices = p[i]->n_values = v->n;
		p[i]->indices = v->indices;
		p[i]->values = v->values;
	}
	for (size_t i = 0; i < r->n_named; i++) {
		const vecdb_named_record *d = &r->named[i];
		Vecdb__SparseVector *x = p[r->n_sparse + i];

		x->name = (char *)(uintptr_t)d->name;
		x->dense = 1;
		x->n_values = d->dim;
		x->values = d->data;
	}
	*out = p;
	*n = k;
	return VECDB_OK;
}

/* Check one wire named vector; its values are copied by the caller. */
static int
sparse_check(const Vecdb__SparseVector *pb, size_t i, int remove_ok)
{
	if (pb->name == NULL || pb->name[0] == '\0' ||
	    strlen(pb->name) > VECDB_NAME_MAX)
		return vdb_err(VECDB_EINVAL, "named vector %zu: no name or "
		    "one over %d characters", i, VECDB_NAME_MAX);
	if (pb->remove && !remove_ok)
		return vdb_err(VECDB_EINVAL, "named vector %zu: remove in "
		    "a record", i);
	if (pb->dense && (pb->n_indices > 0 || pb->n_values >
	    VECDB_DIM_MAX || (!pb->remove && pb->n_values == 0)))
		return vdb_err(VECDB_EINVAL, "named vector %zu: a dense one "
		    "of %zu components, or with indices", i, pb->n_values);
	if (!pb->dense && (pb->n_indices != pb->n_values ||
	    pb->n_indices > 65536))
		return vdb_err(VECDB_EINVAL, "sparse vector %zu: %zu indices "
		    "and %zu values", i, pb->n_indices, pb->n_values);
	return proto_floats_check(pb->values, pb->n_values,
	    pb->dense ? "vector values" : "sparse values");
}

/* Copies of one vector's pairs (at least one slot each). */
static int
sparse_pairs(const Vecdb__SparseVector *pb, uint32_t **idx, float **val)
{
	size_t n = pb->n_indices ? pb->n_indices : 1;

	*idx = vdb_malloc(n * sizeof(**idx));
	*val = vdb_malloc(n * sizeof(**val));
	if (*idx == NULL || *val == NULL)
		return vdb_err(VECDB_ENOMEM, "out of memory for a sparse "
		    "vector");
	if (pb->n_indices) {
		memcpy(*idx, pb->indices, pb->n_indices * sizeof(**idx));
		memcpy(*val, pb->values, pb->n_values * sizeof(**val));
	}
	return VECDB_OK;
}

/* How many of n wire named vectors are dense; EINVAL past the limits. */
static int
sparse_count(Vecdb__SparseVector *const *pb, size_t n, size_t *nd)
{
	*nd = 0;
	for (size_t i = 0; i < n; i++)
		*nd += pb[i]->dense != 0;
	if (n - *nd > VECDB_SPARSE_MAX || *nd > VECDB_VECTORS_MAX)
		return vdb_err(VECDB_EINVAL, "%zu sparse and %zu dense named "
		    "vectors, more than %d and %d", n - *nd, *nd,
		    VECDB_SPARSE_MAX, VECDB_VECTORS_MAX);
	return VECDB_OK;
}

void
proto_sparse_free(vecdb_point_sparse *ps)
{
	for (size_t i = 0; ps->v != NULL && i < ps->n; i++) {
		vdb_free((void *)(uintptr_t)ps->v[i].name);
		vdb_free((void *)(uintptr_t)ps->v[i].indices);
		vdb_free((void *)(uintptr_t)ps->v[i].values);
	}
	for (size_t i = 0; ps->d != NULL && i < ps->nd; i++) {
		vdb_free((void *)(uintptr_t)ps->d[i].name);
		vdb_free((void *)(uintptr_t)ps->d[i].data);
	}
	vdb_free((void *)(uintptr_t)ps->v);
	vdb_free((void *)(uintptr_t)ps->d);
	memset(ps, 0, sizeof(*ps));
}

int
proto_sparse_from_pb(Vecdb__SparseVector *const *pb, size_t n,
    vecdb_point_sparse *out)
{
	vecdb_sparse_vector *v = NULL;
	vecdb_named_vector *d = NULL;
	size_t nd;
	int rv = VECDB_OK;

	memset(out, 0, sizeof(*out));
	if (n == 0)
		return VECDB_OK;
	if ((rv = sparse_count(pb, n, &nd)) != VECDB_OK)
		return rv;
	if ((n > nd && (v = vdb_calloc(n - nd, sizeof(*v))) == NULL) ||
	    (nd > 0 && (d = vdb_calloc(nd, sizeof(*d))) == NULL)) {
		vdb_free(v);
		return vdb_err(VECDB_ENOMEM, "out of memory for sparse "
		    "vectors");
	}
	out->v = v;
	out->d = d;
	for (size_t i = 0; i < n && rv == VECDB_OK; i++) {
		char *name;

		if ((rv = sparse_check(pb[i], i, 1)) != VECDB_OK)
			break;
		if ((name = vdb_strdup(pb[i]->name)) == NULL) {
			rv = vdb_err(VECDB_ENOMEM, "out of memory");
			break;
		}
		if (pb[i]->dense) {
			vecdb_named_vector *x = &d[out->nd++];

			x->name = name;
			x->remove = pb[i]->remove;
			x->dim = (uint32_t)pb[i]->n_values;
			rv = proto_floats_dup(pb[i]->values, pb[i]->n_values,
			    (float **)(uintptr_t)&x->data);
			continue;
		}
		uint32_t *idx = NULL;
		float *val = NULL;
		vecdb_sparse_vector *x = &v[out->n++];

		x->name = name;
		rv = sparse_pairs(pb[i], &idx, &val);
		x->indices = idx;
		x->values = val;
		x->n = (uint32_t)pb[i]->n_indices;
		x->remove = pb[i]->remove;
	}
	if (rv != VECDB_OK)
		proto_sparse_free(out);
	return rv;
}

int
proto_sparse_records_from_pb(Vecdb__SparseVector *const *pb, size_t n,
    vecdb_record *r)
{
	size_t nd;
	int rv = VECDB_OK;

	if (n == 0)
		return VECDB_OK;
	if ((rv = sparse_count(pb, n, &nd)) != VECDB_OK)
		return rv;
	if ((n > nd && (r->sparse = vdb_calloc(n - nd,
	    sizeof(*r->sparse))) == NULL) || (nd > 0 && (r->named =
	    vdb_calloc(nd, sizeof(*r->named))) == NULL))
		return vdb_err(VECDB_ENOMEM, "out of memory for sparse "
		    "vectors"); /* the caller's vdb_record_fini frees */
	for (size_t i = 0; i < n && rv == VECDB_OK; i++) {
		if ((rv = sparse_check(pb[i], i, 0)) != VECDB_OK)
			break;
		if (pb[i]->dense) {
			vecdb_named_record *x = &r->named[r->n_named++];

			snprintf(x->name, sizeof(x->name), "%s", pb[i]->name);
			x->dim = (uint32_t)pb[i]->n_values;
			rv = proto_floats_dup(pb[i]->values, pb[i]->n_values,
			    &x->data);
			continue;
		}
		vecdb_sparse_record *x = &r->sparse[r->n_sparse++];

		snprintf(x->name, sizeof(x->name), "%s", pb[i]->name);
		rv = sparse_pairs(pb[i], &x->indices, &x->values);
		x->n = (uint32_t)pb[i]->n_indices;
	}
	return rv;
}
