/*
 * fuzz_proto_response.c: what a client, a router or a replica reads back
 * from a node: the Response envelope (proto_response_decode) and its
 * result message with the decoder of the method that was called. An
 * input is one byte naming the method (enum proto_method), then one
 * encoded Response.
 */
#include <string.h>

#include "proto.h"
#include "vdb.h"

/* Decode a result message of @p method, then free it. */
static void
result_decode(uint32_t method, const uint8_t *b, size_t n)
{
	switch (method) {
	case PROTO_CREATE_COLLECTION: case PROTO_GET_COLLECTION: {
		vecdb_collection_config c;
		vecdb_collection_stats st;
		(void) proto_collection_info_decode(b, n, &c, &st);
		break;
	}
	case PROTO_LIST_COLLECTIONS: {
		char **names;
		size_t k;
		if (proto_names_decode(b, n, &names, &k) == VECDB_OK)
			vecdb_names_free(names, k);
		break;
	}
	case PROTO_WRITE: {
		vecdb_id *ids;
		size_t k;
		if (proto_ids_decode(b, n, &ids, &k) == VECDB_OK)
			vdb_free(ids);
		break;
	}
	case PROTO_DELETE: {
		uint64_t v;
		(void) proto_deleted_decode(b, n, &v);
		break;
	}
	case PROTO_COUNT: {
		uint64_t v;
		(void) proto_count_result_decode(b, n, &v);
		break;
	}
	case PROTO_SPARSE_STATS: {
		uint64_t points, df[4];
		(void) proto_sparse_stats_result_decode(b, n, 4, &points, df);
		break;
	}
	case PROTO_GET: {
		vecdb_record *r;
		if (proto_record_decode(b, n, &r) == VECDB_OK)
			vecdb_record_free(r);
		break;
	}
	case PROTO_SEARCH: {
		vecdb_records **r;
		size_t k;
		if (proto_search_result_decode(b, n, &r, &k) == VECDB_OK)
			vecdb_records_free_array(r, k);
		break;
	}
	case PROTO_RECOMMEND: case PROTO_DISCOVER: case PROTO_SCROLL:
	case PROTO_SPARSE_SEARCH: {
		vecdb_records *r;
		if (proto_records_decode(b, n, &r) == VECDB_OK)
			vecdb_records_free(r);
		break;
	}
	case PROTO_SNAPSHOT_CREATE: case PROTO_SNAPSHOT_GET: {
		vecdb_snapshot_info s;
		(void) proto_snapshot_info_decode(b, n, &s);
		break;
	}
	case PROTO_SNAPSHOT_LIST: {
		vecdb_snapshot_info *s;
		size_t k;
		if (proto_snapshot_list_decode(b, n, &s, &k) == VECDB_OK)
			vdb_free(s);
		break;
	}
	case PROTO_PAYLOAD_INDEX_LIST: {
		vecdb_payload_index_info *p;
		size_t k;
		if (proto_pindex_list_decode(b, n, &p, &k) == VECDB_OK)
			vdb_free(p);
		break;
	}
	case PROTO_STATS: {
		vecdb_stats s;
		(void) proto_stats_decode(b, n, &s);
		break;
	}
	case PROTO_HEALTH: {
		struct proto_health h;
		(void) proto_health_decode(b, n, &h);
		break;
	}
	case PROTO_FETCH_WAL: {
		struct proto_wal_batch *w;
		if (proto_wal_batch_decode(b, n, &w) == VECDB_OK)
			proto_wal_batch_free(w);
		break;
	}
	case PROTO_BOOTSTRAP_BEGIN: {
		struct proto_bootstrap_info i;
		(void) proto_bootstrap_info_decode(b, n, &i);
		break;
	}
	case PROTO_BOOTSTRAP_CHUNK: {
		uint8_t *data;
		size_t k;
		if (proto_bootstrap_data_decode(b, n, &data, &k) == VECDB_OK)
			vdb_free(data);
		break;
	}
	case PROTO_SNAPSHOT_READ: {
		uint8_t *data;
		uint64_t size;
		size_t k;
		if (proto_snapshot_data_decode(b, n, &data, &k, &size) ==
		    VECDB_OK)
			vdb_free(data);
		break;
	}
	case PROTO_PROMOTE: {
		uint64_t term, seq;
		(void) proto_promote_result_decode(b, n, &term, &seq);
		break;
	}
	default: /* DELETE_COLLECTION, COMPACT_COLLECTION, restores,
		    uploads, index create/delete, FOLLOW: an empty result */
		break;
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *d, size_t n)
{
	struct proto_response *r;

	if (n < 1 || proto_response_decode(d + 1, n - 1, &r) != VECDB_OK)
		return 0;
	(void) proto_err_of(r->code);
	if (r->code == PROTO_OK)
		result_decode(d[0], r->body, r->body_len);
	proto_response_free(r);
	return 0;
}
