/*
 * fuzz_proto_request.c: what a storage node reads off its socket: the
 * Request envelope (proto_request_decode) and then, as api_rpc.c's
 * dispatch does, the argument message of its method with that method's
 * decoder. An input is one encoded Request, as a client sends it.
 */
#include <string.h>

#include "proto.h"
#include "vdb.h"

static volatile uint8_t sink;   /* what reading borrowed data yields */

/* Decode q's body as its method's argument message, then free it. */
static void
body_decode(const struct proto_request *q)
{
	const uint8_t *b = q->body;
	size_t n = q->body_len;

	switch (q->method) {
	case PROTO_CREATE_COLLECTION: {
		vecdb_collection_config c;
		(void) proto_collection_create_decode(b, n, &c);
		break;
	}
	case PROTO_GET_COLLECTION: case PROTO_DELETE_COLLECTION:
	case PROTO_COMPACT_COLLECTION: case PROTO_SNAPSHOT_CREATE: case PROTO_SNAPSHOT_LIST:
	case PROTO_SNAPSHOT_GET: case PROTO_SNAPSHOT_DELETE:
	case PROTO_SNAPSHOT_RESTORE: case PROTO_PAYLOAD_INDEX_CREATE:
	case PROTO_PAYLOAD_INDEX_DELETE: case PROTO_PAYLOAD_INDEX_LIST: {
		struct proto_target t;
		(void) proto_target_decode(q->method, b, n, &t);
		break;
	}
	case PROTO_SET_QUANTIZATION: {
		char coll[VECDB_NAME_MAX + 1];
		vecdb_quant_config qc;
		(void) proto_set_quantization_decode(b, n, coll, &qc);
		break;
	}
	case PROTO_WRITE: {
		struct proto_write *w;
		if (proto_write_decode(b, n, &w) == VECDB_OK)
			proto_write_free(w);
		break;
	}
	case PROTO_DELETE: {
		struct proto_delete *d;
		if (proto_delete_decode(b, n, &d) == VECDB_OK)
			proto_delete_free(d);
		break;
	}
	case PROTO_GET: {
		char coll[VECDB_NAME_MAX + 1];
		vecdb_id id;
		(void) proto_get_decode(b, n, coll, &id);
		break;
	}
	case PROTO_SEARCH: {
		struct proto_search *s;
		if (proto_search_decode(b, n, &s) == VECDB_OK)
			proto_search_free(s);
		break;
	}
	case PROTO_RECOMMEND: {
		struct proto_recommend *r;
		if (proto_recommend_decode(b, n, &r) == VECDB_OK)
			proto_recommend_free(r);
		break;
	}
	case PROTO_DISCOVER: {
		struct proto_discover *d;
		if (proto_discover_decode(b, n, &d) == VECDB_OK)
			proto_discover_free(d);
		break;
	}
	case PROTO_SCROLL: {
		struct proto_scroll *s;
		if (proto_scroll_decode(b, n, &s) == VECDB_OK)
			proto_scroll_free(s);
		break;
	}
	case PROTO_COUNT: {
		char coll[VECDB_NAME_MAX + 1], *filter = NULL;
		if (proto_count_decode(b, n, coll, &filter) == VECDB_OK)
			vdb_free(filter);
		break;
	}
	case PROTO_SPARSE_SEARCH: {
		struct proto_sparse_search *ss;
		if (proto_sparse_search_decode(b, n, &ss) == VECDB_OK)
			proto_sparse_search_free(ss);
		break;
	}
	case PROTO_SPARSE_STATS: {
		char coll[VECDB_NAME_MAX + 1], name[VECDB_NAME_MAX + 1];
		uint32_t *ix = NULL;
		size_t k;
		if (proto_sparse_stats_decode(b, n, coll, name, &ix, &k) ==
		    VECDB_OK)
			vdb_free(ix);
		break;
	}
	case PROTO_FETCH_WAL: {
		struct proto_fetch_wal f;
		(void) proto_fetch_wal_decode(b, n, &f);
		break;
	}
	case PROTO_BOOTSTRAP_BEGIN: {
		char id[PROTO_REPLICA_ID_MAX + 1];
		(void) proto_bootstrap_begin_decode(b, n, id);
		break;
	}
	case PROTO_BOOTSTRAP_CHUNK: {
		struct proto_bootstrap_chunk c;
		(void) proto_bootstrap_chunk_decode(b, n, &c);
		break;
	}
	case PROTO_PROMOTE: {
		uint64_t t;
		(void) proto_promote_decode(b, n, &t);
		break;
	}
	case PROTO_FOLLOW: {
		char url[PROTO_URL_MAX + 1];
		uint64_t t;
		(void) proto_follow_decode(b, n, url, &t);
		break;
	}
	case PROTO_SNAPSHOT_READ: {
		struct proto_snapshot_read rq;
		(void) proto_snapshot_read_decode(b, n, &rq);
		break;
	}
	case PROTO_SNAPSHOT_UPLOAD: {
		struct proto_snapshot_upload up;
		void *keep;
		if (proto_snapshot_upload_decode(b, n, &up, &keep) ==
		    VECDB_OK) {
			/* the data is borrowed from keep: read it all */
			for (size_t i = 0; i < up.n; i++)
				sink ^= up.data[i];
			proto_unpacked_drop(keep);
		}
		break;
	}
	default: /* LIST_COLLECTIONS, STATS, HEALTH: no argument */
		break;
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *d, size_t n)
{
	struct proto_request *q;

	if (proto_request_decode(d, n, &q) != VECDB_OK)
		return 0;
	(void) proto_method_name(q->method);
	body_decode(q);
	proto_request_free(q);
	return 0;
}
