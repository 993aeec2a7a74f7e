/*
 * client.c: the C client of the binary API (include/vecdb_client.h).
 *
 * One req0 socket per client; every call is an exchange of its own
 * (proto_rpc.h), so calls from several threads run at once, each with its
 * own timeout.
 */
#include <stdatomic.h>
#include <string.h>

#include "proto_rpc.h"
#include "vdb.h"
#include "vecdb_client.h"

struct vecdb_client {
	nng_socket sock;         /* req0, dialed in the background */
	char *url;               /* for messages */
	char *api_key;           /* "" when none */
	uint32_t timeout_ms;     /* one call, send and answer */
	atomic_uint_fast64_t next_id;  /* request ids */
	atomic_int primary_only; /* read options */
	atomic_int allow_partial;
};

/* The shards this thread's last answer lacked. */
static _Thread_local uint32_t missing[PROTO_MISSING_MAX];
static _Thread_local size_t n_missing;

void
vecdb_client_read_options(vecdb_client *c, int primary_only,
    int allow_partial)
{
	atomic_store(&c->primary_only, primary_only != 0);
	atomic_store(&c->allow_partial, allow_partial != 0);
}

size_t
vecdb_client_missing_shards(const uint32_t **ids)
{
	if (ids != NULL)
		*ids = missing;
	return n_missing;
}

/* ===== Connection ===== */

int
vecdb_client_connect(const char *url, const char *api_key,
    uint32_t timeout_ms, vecdb_client **out)
{
	return vecdb_client_connect_tls(url, api_key, timeout_ms, NULL, out);
}

int
vecdb_client_connect_tls(const char *url, const char *api_key,
    uint32_t timeout_ms, const vecdb_client_tls *tls, vecdb_client **out)
{
	nng_tls_config *cfg = NULL;
	vecdb_client *c;
	int rv;

	if (url == NULL || *url == '\0')
		return vdb_err(VECDB_EINVAL, "client: no URL");
	if (api_key != NULL && strlen(api_key) > PROTO_KEY_MAX)
		return vdb_err(VECDB_EINVAL, "client: api key over %d bytes",
		    PROTO_KEY_MAX);
	if ((c = vdb_calloc(1, sizeof(*c))) == NULL)
		return vdb_err(VECDB_ENOMEM, "client: out of memory");
	c->timeout_ms = timeout_ms ? timeout_ms
				   : VECDB_CLIENT_TIMEOUT_DEFAULT_MS;
	atomic_init(&c->next_id, 1);
	if ((c->url = vdb_strdup(url)) == NULL ||
	    (c->api_key = vdb_strdup(api_key ? api_key : "")) == NULL) {
		rv = vdb_err(VECDB_ENOMEM, "client: out of memory");
		goto fail;
	}
	if (tls != NULL) {
		struct proto_tls_files f = { tls->ca, tls->cert, tls->key };
		if ((rv = proto_tls_config(&f, 0, &cfg)) != VECDB_OK) {
			rv = vdb_err(rv, "client: %s", vecdb_errmsg());
			goto fail;
		}
	}
	/* Dialed in the background: the server may come later. */
	rv = proto_rpc_dial(url, 0, cfg, NULL, NULL, &c->sock);
	if (cfg != NULL)
		nng_tls_config_free(cfg); /* the dialer holds it */
	if (rv != VECDB_OK)
		goto fail;
	*out = c;
	return VECDB_OK;
fail:
	vdb_free(c->url);
	vdb_free(c->api_key);
	vdb_free(c);
	return rv;
}

void
vecdb_client_close(vecdb_client *c)
{
	if (c == NULL)
		return;
	nng_close(c->sock);
	vdb_free(c->url);
	vdb_free(c->api_key);
	vdb_free(c);
}

/* ===== Calls ===== */

/*
 * One request: @p body (len bytes; freed here, whatever happens) as the
 * argument of @p method. On VECDB_OK *res holds the decoded response
 * (code OK); the caller frees it with proto_response_free().
 */
static int
call(vecdb_client *c, uint32_t method, uint8_t *body, size_t len,
    struct proto_response **res)
{
	struct proto_rpc_req rq = { .url = c->url, .api_key = c->api_key,
		.id = (uint64_t) atomic_fetch_add(&c->next_id, 1),
		.primary_only = atomic_load(&c->primary_only),
		.allow_partial = atomic_load(&c->allow_partial),
		.timeout_ms = c->timeout_ms };
	struct proto_response *r = NULL;
	int rv;

	n_missing = 0;
	rv = proto_rpc_call(c->sock, &rq, method, body, len, &r);
	vdb_free(body);
	if (rv != VECDB_OK) {
		proto_response_free(r);
		return rv;
	}
	if (r->n_missing > 0)
		memcpy(missing, r->missing, r->n_missing * sizeof(uint32_t));
	n_missing = r->n_missing;
	*res = r;
	return VECDB_OK;
}

/* A call whose answer has no body. */
static int
call_empty(vecdb_client *c, uint32_t method, uint8_t *body, size_t len)
{
	struct proto_response *r;
	int rv;

	if ((rv = call(c, method, body, len, &r)) == VECDB_OK)
		proto_response_free(r);
	return rv;
}

/* A call whose answer is a Records message. */
static int
call_records(vecdb_client *c, uint32_t method, int rv, uint8_t *body,
    size_t len, vecdb_records **out)
{
	struct proto_response *r;

	if (rv != VECDB_OK)
		return rv;
	if ((rv = call(c, method, body, len, &r)) != VECDB_OK)
		return rv;
	rv = proto_records_decode(r->body, r->body_len, out);
	proto_response_free(r);
	return rv;
}

/* A call naming a collection and maybe a field (proto_target). */
static int
call_target(vecdb_client *c, uint32_t method, const char *coll,
    const char *name, vecdb_field_schema schema)
{
	uint8_t *body = NULL;
	size_t len = 0;
	int rv;

	if ((rv = proto_target_encode(method, coll, name, schema, &body,
	    &len)) != VECDB_OK)
		return rv;
	return call_empty(c, method, body, len);
}

/* ===== Collections ===== */

int
vecdb_client_collection_create(vecdb_client *c,
    const vecdb_collection_config *cfg)
{
	uint8_t *body = NULL;
	size_t len = 0;
	int rv;

	if ((rv = proto_collection_create_encode(cfg, &body, &len)) !=
	    VECDB_OK)
		return rv;
	return call_empty(c, PROTO_CREATE_COLLECTION, body, len);
}

int
vecdb_client_collection_get(vecdb_client *c, const char *name,
    vecdb_collection_config *cfg, vecdb_collection_stats *st)
{
	struct proto_response *r;
	vecdb_collection_config cf;
	vecdb_collection_stats s;
	uint8_t *body = NULL;
	size_t len = 0;
	int rv;

	if ((rv = proto_target_encode(PROTO_GET_COLLECTION, name, "",
	    VECDB_FIELD_KEYWORD, &body, &len)) != VECDB_OK)
		return rv;
	if ((rv = call(c, PROTO_GET_COLLECTION, body, len, &r)) != VECDB_OK)
		return rv;
	rv = proto_collection_info_decode(r->body, r->body_len, &cf, &s);
	proto_response_free(r);
	if (rv != VECDB_OK)
		return rv;
	if (cfg != NULL)
		*cfg = cf;
	if (st != NULL)
		*st = s;
	return VECDB_OK;
}

int
vecdb_client_collection_list(vecdb_client *c, char ***names, size_t *count)
{
	struct proto_response *r;
	int rv;

	if ((rv = call(c, PROTO_LIST_COLLECTIONS, NULL, 0, &r)) != VECDB_OK)
		return rv;
	rv = proto_names_decode(r->body, r->body_len, names, count);
	proto_response_free(r);
	return rv;
}

int
vecdb_client_collection_delete(vecdb_client *c, const char *name)
{
	return call_target(c, PROTO_DELETE_COLLECTION, name, "",
	    VECDB_FIELD_KEYWORD);
}

int
vecdb_client_collection_set_quantization(vecdb_client *c, const char *name,
    const vecdb_quant_config *q)
{
	uint8_t *body = NULL;
	size_t len = 0;
	int rv;

	if (q == NULL)
		return vdb_err(VECDB_EINVAL, "no quantization given");
	if ((rv = proto_set_quantization_encode(name, q, &body, &len)) !=
	    VECDB_OK)
		return rv;
	return call_empty(c, PROTO_SET_QUANTIZATION, body, len);
}

/* ===== Points ===== */

/* Write with @p op; copy the ids the server answered into pts. */
static int
write_points(vecdb_client *c, const char *coll, vecdb_write_op op,
    vecdb_point *pts, const vecdb_point_sparse *sparse, size_t n)
{
	struct proto_response *r;
	vecdb_id *ids = NULL;
	uint8_t *body = NULL;
	size_t len = 0, nids = 0;
	int rv;

	if ((rv = proto_write_sparse_encode(coll, op, 0, 0, pts, sparse, n,
	    &body, &len)) != VECDB_OK)
		return rv;
	if ((rv = call(c, PROTO_WRITE, body, len, &r)) != VECDB_OK)
		return rv;
	rv = proto_ids_decode(r->body, r->body_len, &ids, &nids);
	proto_response_free(r);
	if (rv != VECDB_OK)
		return rv;
	if (nids != n)
		rv = vdb_err(VECDB_EINVAL, "client: write: %zu ids answered "
		    "for %zu points", nids, n);
	for (size_t i = 0; rv == VECDB_OK && i < n; i++)
		pts[i].id = ids[i];
	vdb_free(ids);
	return rv;
}

int
vecdb_client_insert(vecdb_client *c, const char *coll, vecdb_point *pts,
    size_t n)
{
	return write_points(c, coll, VECDB_WRITE_INSERT, pts, NULL, n);
}

int
vecdb_client_upsert(vecdb_client *c, const char *coll, vecdb_point *pts,
    size_t n)
{
	return write_points(c, coll, VECDB_WRITE_UPSERT, pts, NULL, n);
}

int
vecdb_client_update(vecdb_client *c, const char *coll, vecdb_point *pts,
    size_t n)
{
	return write_points(c, coll, VECDB_WRITE_UPDATE, pts, NULL, n);
}

int
vecdb_client_write(vecdb_client *c, const char *coll, vecdb_write_op op,
    vecdb_point *pts, const vecdb_point_sparse *sparse, size_t n)
{
	if ((unsigned) op > VECDB_WRITE_UPDATE)
		return vdb_err(VECDB_EINVAL, "unknown write op %d", (int) op);
	return write_points(c, coll, op, pts, sparse, n);
}

int
vecdb_client_delete(vecdb_client *c, const char *coll, const vecdb_id *ids,
    size_t n, size_t *deleted)
{
	struct proto_response *r;
	uint8_t *body = NULL;
	size_t len = 0;
	uint64_t d = 0;
	int rv;

	if ((rv = proto_delete_encode(coll, ids, n, &body, &len)) != VECDB_OK)
		return rv;
	if ((rv = call(c, PROTO_DELETE, body, len, &r)) != VECDB_OK)
		return rv;
	rv = proto_deleted_decode(r->body, r->body_len, &d);
	proto_response_free(r);
	if (rv == VECDB_OK && deleted != NULL)
		*deleted = (size_t) d;
	return rv;
}

int
vecdb_client_get(vecdb_client *c, const char *coll, const vecdb_id *id,
    vecdb_record **out)
{
	struct proto_response *r;
	uint8_t *body = NULL;
	size_t len = 0;
	int rv;

	if ((rv = proto_get_encode(coll, id, &body, &len)) != VECDB_OK)
		return rv;
	if ((rv = call(c, PROTO_GET, body, len, &r)) != VECDB_OK)
		return rv;
	rv = proto_record_decode(r->body, r->body_len, out);
	proto_response_free(r);
	return rv;
}

/* ===== Queries ===== */

int
vecdb_client_search_batch(vecdb_client *c, const char *coll,
    const vecdb_search_params *params, const char *const *filters, size_t n,
    vecdb_records ***out)
{
	struct proto_response *r;
	vecdb_records **lists = NULL;
	uint8_t *body = NULL;
	size_t len = 0, got = 0;
	int rv;

	if ((rv = proto_search_encode(coll, params, filters, n, &body,
	    &len)) != VECDB_OK)
		return rv;
	if ((rv = call(c, PROTO_SEARCH, body, len, &r)) != VECDB_OK)
		return rv;
	rv = proto_search_result_decode(r->body, r->body_len, &lists, &got);
	proto_response_free(r);
	if (rv != VECDB_OK)
		return rv;
	if (got != n) {
		vecdb_records_free_array(lists, got);
		return vdb_err(VECDB_EINVAL, "client: search: %zu result lists "
		    "answered for %zu searches", got, n);
	}
	*out = lists;
	return VECDB_OK;
}

int
vecdb_client_search(vecdb_client *c, const char *coll,
    const vecdb_search_params *p, const char *filter_json,
    vecdb_records **out)
{
	vecdb_records **lists = NULL;
	int rv;

	if ((rv = vecdb_client_search_batch(c, coll, p, &filter_json, 1,
	    &lists)) != VECDB_OK)
		return rv;
	*out = lists[0];
	lists[0] = NULL;
	vecdb_records_free_array(lists, 1);
	return VECDB_OK;
}

int
vecdb_client_recommend(vecdb_client *c, const char *coll,
    const vecdb_recommend_params *p, const char *filter_json,
    vecdb_records **out)
{
	uint8_t *body = NULL;
	size_t len = 0;
	int rv;

	rv = proto_recommend_encode(coll, p, filter_json, &body, &len);
	return call_records(c, PROTO_RECOMMEND, rv, body, len, out);
}

int
vecdb_client_discover(vecdb_client *c, const char *coll,
    const vecdb_discover_params *p, const char *filter_json,
    vecdb_records **out)
{
	uint8_t *body = NULL;
	size_t len = 0;
	int rv;

	rv = proto_discover_encode(coll, p, filter_json, &body, &len);
	return call_records(c, PROTO_DISCOVER, rv, body, len, out);
}

int
vecdb_client_scroll(vecdb_client *c, const char *coll, const vecdb_id *start,
    uint32_t limit, const char *filter_json, int with_payload,
    int with_vector, vecdb_records **out)
{
	vecdb_id none = { 0 };
	uint8_t *body = NULL;
	size_t len = 0;
	int rv;

	rv = proto_scroll_encode(coll, start ? start : &none, limit,
	    filter_json, with_payload, with_vector, &body, &len);
	return call_records(c, PROTO_SCROLL, rv, body, len, out);
}

int
vecdb_client_search_sparse(vecdb_client *c, const char *coll,
    const vecdb_sparse_search_params *p, const char *filter_json,
    vecdb_records **out)
{
	uint8_t *body = NULL;
	size_t len = 0;
	int rv;

	rv = proto_sparse_search_encode(coll, p, filter_json, &body, &len);
	return call_records(c, PROTO_SPARSE_SEARCH, rv, body, len, out);
}

int
vecdb_client_count(vecdb_client *c, const char *coll,
    const char *filter_json, uint64_t *out)
{
	struct proto_response *r;
	uint8_t *body = NULL;
	size_t len = 0;
	int rv;

	if ((rv = proto_count_encode(coll, filter_json, &body, &len)) !=
	    VECDB_OK)
		return rv;
	if ((rv = call(c, PROTO_COUNT, body, len, &r)) != VECDB_OK)
		return rv;
	rv = proto_count_result_decode(r->body, r->body_len, out);
	proto_response_free(r);
	return rv;
}

/* ===== Payload indexes ===== */

int
vecdb_client_payload_index_create(vecdb_client *c, const char *coll,
    const char *field, vecdb_field_schema schema)
{
	return call_target(c, PROTO_PAYLOAD_INDEX_CREATE, coll, field,
	    schema);
}

int
vecdb_client_payload_index_delete(vecdb_client *c, const char *coll,
    const char *field)
{
	return call_target(c, PROTO_PAYLOAD_INDEX_DELETE, coll, field,
	    VECDB_FIELD_KEYWORD);
}

int
vecdb_client_payload_index_list(vecdb_client *c, const char *coll,
    vecdb_payload_index_info **out, size_t *count)
{
	struct proto_response *r;
	uint8_t *body = NULL;
	size_t len = 0;
	int rv;

	if ((rv = proto_target_encode(PROTO_PAYLOAD_INDEX_LIST, coll, NULL, 0,
	    &body, &len)) != VECDB_OK ||
	    (rv = call(c, PROTO_PAYLOAD_INDEX_LIST, body, len, &r)) !=
	    VECDB_OK)
		return rv;
	rv = proto_pindex_list_decode(r->body, r->body_len, out, count);
	proto_response_free(r);
	return rv;
}

/* ===== Snapshots ===== */

/* A snapshot call answered by a SnapshotInfo. */
static int
call_snapshot(vecdb_client *c, uint32_t method, const char *coll,
    const char *name, vecdb_snapshot_info *out)
{
	struct proto_response *r;
	uint8_t *body = NULL;
	size_t len = 0;
	int rv;

	if ((rv = proto_target_encode(method, coll, name, 0, &body, &len)) !=
	    VECDB_OK || (rv = call(c, method, body, len, &r)) != VECDB_OK)
		return rv;
	rv = proto_snapshot_info_decode(r->body, r->body_len, out);
	proto_response_free(r);
	return rv;
}

int
vecdb_client_snapshot_create(vecdb_client *c, const char *coll,
    const char *name, vecdb_snapshot_info *out)
{
	return call_snapshot(c, PROTO_SNAPSHOT_CREATE, coll, name, out);
}

int
vecdb_client_snapshot_get(vecdb_client *c, const char *coll,
    const char *name, vecdb_snapshot_info *out)
{
	return call_snapshot(c, PROTO_SNAPSHOT_GET, coll, name, out);
}

int
vecdb_client_snapshot_list(vecdb_client *c, const char *coll,
    vecdb_snapshot_info **out, size_t *count)
{
	struct proto_response *r;
	uint8_t *body = NULL;
	size_t len = 0;
	int rv;

	if ((rv = proto_target_encode(PROTO_SNAPSHOT_LIST, coll, NULL, 0,
	    &body, &len)) != VECDB_OK ||
	    (rv = call(c, PROTO_SNAPSHOT_LIST, body, len, &r)) != VECDB_OK)
		return rv;
	rv = proto_snapshot_list_decode(r->body, r->body_len, out, count);
	proto_response_free(r);
	return rv;
}

int
vecdb_client_snapshot_delete(vecdb_client *c, const char *coll,
    const char *name)
{
	return call_target(c, PROTO_SNAPSHOT_DELETE, coll, name, 0);
}

int
vecdb_client_snapshot_restore(vecdb_client *c, const char *coll,
    const char *name)
{
	return call_target(c, PROTO_SNAPSHOT_RESTORE, coll, name, 0);
}

/* ===== Server ===== */

int
vecdb_client_stats(vecdb_client *c, vecdb_stats *out)
{
	struct proto_response *r;
	int rv;

	if ((rv = call(c, PROTO_STATS, NULL, 0, &r)) != VECDB_OK)
		return rv;
	rv = proto_stats_decode(r->body, r->body_len, out);
	proto_response_free(r);
	return rv;
}

int
vecdb_client_health(vecdb_client *c, vecdb_health *out)
{
	struct proto_response *r;
	struct proto_health h;
	int rv;

	if ((rv = call(c, PROTO_HEALTH, NULL, 0, &r)) != VECDB_OK)
		return rv;
	rv = proto_health_decode(r->body, r->body_len, &h);
	proto_response_free(r);
	if (rv != VECDB_OK)
		return rv;
	memset(out, 0, sizeof(*out));
	memcpy(out->status, h.status, sizeof(out->status));
	memcpy(out->version, h.version, sizeof(out->version));
	memcpy(out->role, h.role, sizeof(out->role));
	memcpy(out->node_id, h.node_id, sizeof(out->node_id));
	out->last_seq = h.last_seq;
	return VECDB_OK;
}
