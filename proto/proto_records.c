/*
 * proto_records.c: records, the results of get, search, recommend,
 * discover and scroll. Decoded ones are built with vdb_malloc so that
 * vecdb_record_free() and vecdb_records_free() release them.
 */
#include <math.h>
#include <string.h>

#include "proto_impl.h"

/* ===== One record ===== */

int
proto_record_to_pb(const vecdb_record *r, Vecdb__Record *pb,
    Vecdb__PointId *id)
{
	vecdb__record__init(pb);
	if (!proto_id_set(&r->id, id))
		return vdb_err(VECDB_EINVAL, "record without an id");
	pb->id = id;
	pb->distance = r->distance;
	pb->score = r->score;
	pb->context_hits = r->context_hits;
	if (r->vector != NULL) {
		pb->has_vector = 1;
		pb->n_vector = r->dim;
		pb->vector = r->vector;
	}
	if (r->payload != NULL) {
		pb->has_payload = 1;
		pb->payload_json = r->payload;
	}
	/* last: nothing to free when an earlier step fails */
	return proto_sparse_records_to_pb(r, &pb->sparse, &pb->n_sparse);
}

/* Check a Record's fields before anything is copied. */
static int
record_check(const Vecdb__Record *pb)
{
	size_t n = pb->payload_json != NULL ? strlen(pb->payload_json) : 0;

	if (isnan(pb->distance) || isnan(pb->score))
		return vdb_err(VECDB_EINVAL, "record distance or score is "
		    "NaN");
	if (!pb->has_vector && pb->n_vector > 0)
		return vdb_err(VECDB_EINVAL, "record vector given without "
		    "has_vector");
	if (pb->has_vector && (pb->n_vector < 1 ||
	    pb->n_vector > VECDB_DIM_MAX))
		return vdb_err(VECDB_EINVAL, "record vector of %zu components, "
		    "not 1..%d", pb->n_vector, VECDB_DIM_MAX);
	if (!pb->has_payload && n > 0)
		return vdb_err(VECDB_EINVAL, "record payload given without "
		    "has_payload");
	if (pb->has_payload && (n == 0 || n > VECDB_PAYLOAD_MAX))
		return vdb_err(VECDB_EINVAL, "record payload of %zu bytes, "
		    "not 1..%u", n, VECDB_PAYLOAD_MAX);
	return proto_floats_check(pb->vector, pb->n_vector, "record vector");
}

int
proto_record_from_pb(const Vecdb__Record *pb, vecdb_record *out)
{
	vecdb_record r;
	int rv;

	memset(&r, 0, sizeof(r));
	if ((rv = proto_id_get(pb->id, 1, "record id", &r.id)) != VECDB_OK ||
	    (rv = record_check(pb)) != VECDB_OK)
		return rv;
	r.distance = pb->distance;
	r.score = pb->score;
	r.context_hits = pb->context_hits;
	if ((rv = proto_floats_dup(pb->vector, pb->n_vector, &r.vector)))
		return rv;
	r.dim = (uint32_t)pb->n_vector;
	if (pb->has_payload &&
	    (r.payload = vdb_strdup(pb->payload_json)) == NULL) {
		vdb_free(r.vector);
		return vdb_err(VECDB_ENOMEM, "out of memory for a payload");
	}
	if ((rv = proto_sparse_records_from_pb(pb->sparse, pb->n_sparse,
	    &r)) != VECDB_OK) {
		vdb_record_fini(&r);
		return rv;
	}
	*out = r;
	return VECDB_OK;
}

int
proto_record_encode(const vecdb_record *r, uint8_t **out, size_t *len)
{
	Vecdb__GetResult m;
	Vecdb__Record pr;
	Vecdb__PointId id;
	int rv;

	if ((rv = proto_record_to_pb(r, &pr, &id)) != VECDB_OK)
		return rv;
	vecdb__get_result__init(&m);
	m.record = &pr;
	rv = proto_pack(&m.base, out, len);
	vdb_free(pr.sparse);
	return rv;
}

/* A heap record from a GetResult. */
static int
get_result_from_pb(const Vecdb__GetResult *m, vecdb_record **out)
{
	vecdb_record *r;
	int rv;

	if (m->record == NULL)
		return vdb_err(VECDB_EINVAL, "missing record");
	if ((r = vdb_calloc(1, sizeof(*r))) == NULL)
		return vdb_err(VECDB_ENOMEM, "out of memory for a record");
	if ((rv = proto_record_from_pb(m->record, r)) != VECDB_OK) {
		vdb_free(r);
		return rv;
	}
	*out = r;
	return VECDB_OK;
}

int
proto_record_decode(const uint8_t *buf, size_t len, vecdb_record **out)
{
	ProtobufCMessage *pm;
	int rv;

	if ((rv = proto_unpack(&vecdb__get_result__descriptor, buf, len,
	    &pm)) != VECDB_OK)
		return rv;
	rv = get_result_from_pb((Vecdb__GetResult *)pm, out);
	proto_unpacked_free(pm);
	return rv;
}

/* ===== Lists ===== */

int
proto_records_to_pb(const vecdb_records *r, struct records_pb *pb)
{
	size_t n = r->count, k = n ? n : 1;
	int rv = VECDB_OK;

	memset(pb, 0, sizeof(*pb));
	vecdb__records__init(&pb->m);
	pb->recs = vdb_calloc(k, sizeof(*pb->recs));
	pb->ptrs = vdb_calloc(k, sizeof(*pb->ptrs));
	pb->ids = vdb_calloc(n + 1, sizeof(*pb->ids));
	if (pb->recs == NULL || pb->ptrs == NULL || pb->ids == NULL)
		rv = vdb_err(VECDB_ENOMEM, "out of memory packing records");
	for (size_t i = 0; rv == VECDB_OK && i < n; i++) {
		pb->ptrs[i] = &pb->recs[i];
		if ((rv = proto_record_to_pb(&r->items[i], &pb->recs[i],
		    &pb->ids[i + 1])) == VECDB_OK)
			pb->m.n_items = i + 1;
	}
	if (rv != VECDB_OK) {
		proto_records_pb_fini(pb);
		return rv;
	}
	pb->m.n_items = n;
	pb->m.items = pb->ptrs;
	pb->m.has_next = r->has_next != 0;
	if (proto_id_set(r->has_next ? &r->next : NULL, &pb->ids[0]))
		pb->m.next = &pb->ids[0];
	return VECDB_OK;
}

void
proto_records_pb_fini(struct records_pb *pb)
{
	for (size_t i = 0; pb->recs != NULL && i < pb->m.n_items; i++)
		vdb_free(pb->recs[i].sparse);
	vdb_free(pb->recs);
	vdb_free(pb->ptrs);
	vdb_free(pb->ids);
	memset(pb, 0, sizeof(*pb));
}

/* Check a Records' fields before anything is copied. */
static int
records_check(const Vecdb__Records *pb, vecdb_id *next)
{
	int rv;

	if (pb->n_items > PROTO_LIST_MAX)
		return vdb_err(VECDB_EINVAL, "%zu records, more than %d",
		    pb->n_items, PROTO_LIST_MAX);
	if ((rv = proto_id_get(pb->next, 0, "next id", next)) != VECDB_OK)
		return rv;
	if (pb->has_next && next->kind == VECDB_ID_NONE)
		return vdb_err(VECDB_EINVAL, "has_next without a next id");
	return VECDB_OK;
}

int
proto_records_from_pb(const Vecdb__Records *pb, vecdb_records **out)
{
	vecdb_records *r;
	vecdb_id next;
	int rv;

	if ((rv = records_check(pb, &next)) != VECDB_OK)
		return rv;
	if ((r = vdb_calloc(1, sizeof(*r))) == NULL ||
	    (r->items = vdb_calloc(pb->n_items ? pb->n_items : 1,
	    sizeof(*r->items))) == NULL) {
		vdb_free(r);
		return vdb_err(VECDB_ENOMEM, "out of memory for records");
	}
	for (size_t i = 0; i < pb->n_items; i++) {
		if ((rv = proto_record_from_pb(pb->items[i], &r->items[i]))) {
			vecdb_records_free(r);
			return rv;
		}
		r->count = i + 1;
	}
	r->has_next = pb->has_next != 0;
	r->next = next;
	*out = r;
	return VECDB_OK;
}

int
proto_records_encode(const vecdb_records *r, uint8_t **out, size_t *len)
{
	struct records_pb pb;
	int rv;

	if ((rv = proto_records_to_pb(r, &pb)) != VECDB_OK)
		return rv;
	rv = proto_pack(&pb.m.base, out, len);
	proto_records_pb_fini(&pb);
	return rv;
}

int
proto_records_decode(const uint8_t *buf, size_t len, vecdb_records **out)
{
	ProtobufCMessage *pm;
	int rv;

	if ((rv = proto_unpack(&vecdb__records__descriptor, buf, len, &pm)))
		return rv;
	rv = proto_records_from_pb((Vecdb__Records *)pm, out);
	proto_unpacked_free(pm);
	return rv;
}

/* ===== Search results ===== */

int
proto_search_result_encode(vecdb_records *const *r, size_t n,
    uint8_t **out, size_t *len)
{
	Vecdb__SearchResult m;
	struct records_pb *pbs = vdb_calloc(n ? n : 1, sizeof(*pbs));
	Vecdb__Records **ptrs = vdb_calloc(n ? n : 1, sizeof(*ptrs));
	size_t done = 0;
	int rv = VECDB_OK;

	if (pbs == NULL || ptrs == NULL)
		rv = vdb_err(VECDB_ENOMEM, "out of memory packing results");
	for (; rv == VECDB_OK && done < n; done++) {
		if ((rv = proto_records_to_pb(r[done], &pbs[done])) != VECDB_OK)
			break;
		ptrs[done] = &pbs[done].m;
	}
	if (rv == VECDB_OK) {
		vecdb__search_result__init(&m);
		m.n_results = n;
		m.results = ptrs;
		rv = proto_pack(&m.base, out, len);
	}
	for (size_t i = 0; pbs != NULL && i < done; i++)
		proto_records_pb_fini(&pbs[i]);
	vdb_free(pbs);
	vdb_free(ptrs);
	return rv;
}

/* The n lists of a SearchResult. */
static int
search_result_from_pb(const Vecdb__SearchResult *m, vecdb_records ***out)
{
	vecdb_records **r;
	int rv;

	if (m->n_results > PROTO_SEARCH_MAX)
		return vdb_err(VECDB_EINVAL, "%zu result lists, more than %d",
		    m->n_results, PROTO_SEARCH_MAX);
	if ((r = vdb_calloc(m->n_results + 1, sizeof(*r))) == NULL)
		return vdb_err(VECDB_ENOMEM, "out of memory for results");
	for (size_t i = 0; i < m->n_results; i++) {
		if ((rv = proto_records_from_pb(m->results[i], &r[i]))) {
			vecdb_records_free_array(r, i);
			return rv;
		}
	}
	*out = r;
	return VECDB_OK;
}

int
proto_search_result_decode(const uint8_t *buf, size_t len,
    vecdb_records ***out, size_t *n)
{
	ProtobufCMessage *pm;
	int rv;

	if ((rv = proto_unpack(&vecdb__search_result__descriptor, buf, len,
	    &pm)) != VECDB_OK)
		return rv;
	if ((rv = search_result_from_pb((Vecdb__SearchResult *)pm, out)) ==
	    VECDB_OK)
		*n = ((Vecdb__SearchResult *)pm)->n_results;
	proto_unpacked_free(pm);
	return rv;
}
