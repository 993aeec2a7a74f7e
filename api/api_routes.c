/*
 * api_routes.c: the route table and the handlers for health, stats,
 * metrics, collections, points and snapshots. Query handlers (search,
 * recommend, discover, scroll, count) are in api_query.c.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "api_impl.h"

#define SEG_COLL 1   /* collections/:c/... */

static json_t *payload_schema_json(struct api_req *r, const char *coll);

/* ===== Health, stats, metrics ===== */

static int
h_health(struct api_req *r, json_t **data)
{
	(void) r;
	*data = json_pack("{s:s, s:s}", "status", "ok", "version",
	    VECDB_VERSION);
	return VECDB_OK;
}

/*
 * Readiness, apart from liveness (/health): a router is ready while it
 * holds a connection to every shard's write member. Not ready is 503
 * UNAVAILABLE with the shards in error.shards, for a probe's log.
 */
static int
h_ready(struct api_req *r, json_t **data)
{
	json_t *shards = NULL;
	int rv;

	if (r->b->ready != NULL &&
	    (rv = r->b->ready(r->b->ctx, &shards)) != VECDB_OK) {
		const char *code;
		int status = api_status_of(rv, &code);
		api_send_json(r, status, json_pack("{s:b, s:{s:s, s:s, s:o}}",
		    "success", 0, "error", "code", code, "message",
		    vecdb_errmsg(), "shards", shards ? shards : json_array()));
		return API_RESPONDED;
	}
	*data = json_pack("{s:s}", "status", "ready");
	return VECDB_OK;
}

static int
h_stats(struct api_req *r, json_t **data)
{
	vecdb_stats st;
	int rv;

	if ((rv = r->b->stats(r->b->ctx, &st)) != VECDB_OK)
		return rv;
	*data = json_pack("{s:I, s:I, s:I, s:I, s:I}", "total_vectors",
	    (json_int_t) st.vectors, "total_collections",
	    (json_int_t) st.collections, "memory_usage",
	    (json_int_t) st.memory_bytes, "disk_usage",
	    (json_int_t) st.disk_bytes, "uptime_seconds",
	    (json_int_t) api_server_uptime(r->srv));
	return VECDB_OK;
}

json_t *
api_cluster_member_json(const char *url, const char *role,
    const char *node_id, uint64_t last_seq, json_t *collections,
    const char *error)
{
	json_int_t vectors = 0;
	json_t *c;
	size_t i;

	json_array_foreach(collections, i, c)
		vectors += json_integer_value(json_object_get(c, "vectors"));
	/* What an unreachable member did not say is null, not zero. */
	return json_pack("{s:s, s:s, s:b, s:s?, s:o, s:o, s:o, s:s?}", "url",
	    url, "role", role, "reachable", error == NULL, "node_id", node_id,
	    "last_seq", error ? json_null() : json_integer((json_int_t)
	    last_seq), "vectors", error ? json_null() : json_integer(vectors),
	    "collections", collections, "error", error);
}

static int
h_cluster(struct api_req *r, json_t **data)
{
	if (r->b->cluster_status == NULL)
		return vdb_err(VECDB_EINVAL, "this server has no cluster "
		    "status");
	return r->b->cluster_status(r->b->ctx, data);
}

static int
h_cluster_promote(struct api_req *r, json_t **data)
{
	static const char *const keys[] = { "node", NULL };
	const char *node;
	int rv;

	if ((rv = api_check_keys(r->body, keys, NULL)) != VECDB_OK ||
	    (rv = api_get_string(r->body, "node", 0, &node)) != VECDB_OK)
		return rv;
	if (r->b->promote == NULL)
		return vdb_err(VECDB_EINVAL, "this server has no replicas to "
		    "promote (promotion needs a vecdb-router)");
	if (node == NULL || *node == '\0')
		return vdb_err(VECDB_EINVAL, "\"node\" (a node id or rpc url) "
		    "is required");
	return r->b->promote(r->b->ctx, node, data);
}


/* ===== Collections ===== */

static int
h_collection_create(struct api_req *r, json_t **data)
{
	vecdb_collection_config cfg;
	vecdb_collection_stats st;
	int rv;

	if ((rv = api_config_from_json(r->body, &cfg)) != VECDB_OK ||
	    (rv = r->b->collection_create(r->b->ctx, &cfg)) != VECDB_OK ||
	    (rv = r->b->collection_get(r->b->ctx, cfg.name, &cfg, &st)) != VECDB_OK)
		return rv;
	*data = api_config_to_json(&cfg);
	return VECDB_OK;
}

static int
h_collection_list(struct api_req *r, json_t **data)
{
	char **names;
	size_t n;
	int rv;

	if ((rv = r->b->collection_list(r->b->ctx, &names, &n)) != VECDB_OK)
		return rv;
	*data = json_array();
	for (size_t i = 0; i < n; i++)
		json_array_append_new(*data, json_string(names[i]));
	vecdb_names_free(names, n);
	return VECDB_OK;
}

/* {"status": "idle"|"compacting", "progress": 0..1, "compactions": n} */
static json_t *
optimizer_json(const vecdb_collection_stats *st)
{
	return json_pack("{s:s, s:f, s:I}", "status",
	    st->optimizer == VECDB_OPTIMIZER_COMPACTING ? "compacting" : "idle",
	    "progress", st->optimizer_progress, "compactions",
	    (json_int_t) st->compactions);
}

/* {in_force, code_bytes, link_bytes, original_bytes}: what the index's
 * searches walk now, and its memory by kind. */
static json_t *
quant_stats_json(const vecdb_collection_stats *st)
{
	return json_pack("{s:s, s:I, s:I, s:I}", "in_force", api_quant_name(
	    st->quant_in_force), "code_bytes", (json_int_t) st->code_bytes,
	    "link_bytes", (json_int_t) st->link_bytes, "original_bytes",
	    (json_int_t) st->original_bytes);
}

static int
h_collection_get(struct api_req *r, json_t **data)
{
	const char *name = r->segs[SEG_COLL];
	vecdb_collection_config cfg;
	vecdb_collection_stats st;
	int rv;

	if ((rv = r->b->collection_get(r->b->ctx, name, &cfg, &st)) != VECDB_OK)
		return rv;
	*data = json_pack("{s:o, s:{s:s, s:I, s:i, s:I, s:I, s:I, s:I}}",
	    "config", api_config_to_json(&cfg), "stats", "name", name,
	    "vector_count", (json_int_t) st.vector_count, "dimension",
	    (int) st.dimension, "index_size", (json_int_t) st.indexed_count,
	    "memory_usage", (json_int_t) st.memory_bytes, "indexed_count",
	    (json_int_t) st.indexed_count, "pending_count",
	    (json_int_t) st.pending_count);
	json_object_set_new(json_object_get(*data, "stats"), "disk_usage",
	    json_integer((json_int_t) st.disk_bytes));
	json_object_set_new(json_object_get(*data, "stats"), "dead_count",
	    json_integer((json_int_t) st.dead_count));
	json_object_set_new(json_object_get(*data, "stats"), "dead_ratio",
	    json_real(st.dead_ratio));
	json_object_set_new(json_object_get(*data, "stats"), "indexing_rate",
	    json_real(st.indexing_rate));
	json_object_set_new(json_object_get(*data, "stats"), "quantization",
	    quant_stats_json(&st));
	if (cfg.n_vectors > 0) {
		json_t *nv = json_object();

		for (uint32_t i = 0; i < cfg.n_vectors &&
		    i < VECDB_VECTORS_MAX; i++)
			json_object_set_new(nv, cfg.vectors[i].name, json_pack(
			    "{s:I}", "indexed_count",
			    (json_int_t) st.named_indexed[i]));
		json_object_set_new(json_object_get(*data, "stats"),
		    "vectors", nv);
	}
	json_object_set_new(*data, "optimizer", optimizer_json(&st));
	json_object_set_new(*data, "payload_schema", payload_schema_json(r,
	    name));
	return VECDB_OK;
}

/* Start compacting a collection's index; the answer is its state now. */
static int
h_collection_compact(struct api_req *r, json_t **data)
{
	const char *name = r->segs[SEG_COLL];
	vecdb_collection_config cfg;
	vecdb_collection_stats st;
	int rv;

	if ((rv = r->b->collection_compact(r->b->ctx, name)) != VECDB_OK ||
	    (rv = r->b->collection_get(r->b->ctx, name, &cfg, &st)) != VECDB_OK)
		return rv;
	*data = json_pack("{s:s, s:o}", "name", name, "optimizer",
	    optimizer_json(&st));
	return VECDB_OK;
}

/*
 * The new quantization of a PATCH body: {"quantization": q} or Qdrant's
 * {"quantization_config": q}, q any form create takes, null or "none" to
 * remove it. Nothing else of a collection can be changed (yet).
 */
static int
patch_quant(const json_t *body, uint32_t dim, vecdb_quant_config *q)
{
	static const char *const keys[] = { "quantization",
		"quantization_config", NULL };
	json_t *a = json_object_get(body, "quantization");
	json_t *b = json_object_get(body, "quantization_config");
	char msg[512];
	int rv;

	if ((rv = api_check_keys(body, keys, NULL)) != VECDB_OK) {
		vdb_err_save(msg, sizeof(msg));
		return vdb_err(rv, "%s: only 'quantization' can be changed",
		    msg);
	}
	if (a != NULL && b != NULL)
		return vdb_err(VECDB_EINVAL, "'quantization' and "
		    "'quantization_config' are the same field: give one");
	if (a == NULL && b == NULL)
		return vdb_err(VECDB_EINVAL, "'quantization' is required (null "
		    "or \"none\" removes it)");
	return api_quant_from_json(a != NULL ? a : b, dim, q);
}

/* Change a collection's quantization; the answer is its new config. */
static int
h_collection_update(struct api_req *r, json_t **data)
{
	const char *name = r->segs[SEG_COLL];
	vecdb_collection_config cfg;
	vecdb_collection_stats st;
	vecdb_quant_config q;
	int rv;

	/* the dimension first: Qdrant's compression is a share of it */
	if ((rv = r->b->collection_get(r->b->ctx, name, &cfg, &st)) ||
	    (rv = patch_quant(r->body, cfg.dimension, &q)) ||
	    (rv = r->b->collection_set_quantization(r->b->ctx, name, &q)) ||
	    (rv = r->b->collection_get(r->b->ctx, name, &cfg, &st)))
		return rv;
	*data = api_config_to_json(&cfg);
	return VECDB_OK;
}

static int
h_collection_delete(struct api_req *r, json_t **data)
{
	int rv = r->b->collection_delete(r->b->ctx, r->segs[SEG_COLL]);

	if (rv == VECDB_OK)
		*data = json_pack("{s:s}", "name", r->segs[SEG_COLL]);
	return rv;
}

/* ===== Points ===== */

int
api_points_write(struct api_req *r, vecdb_write_op op, struct api_points *p)
{
	struct api_metrics *m = api_server_metrics(r->srv);
	double t0 = vdb_now_s();
	int rv = r->b->write(r->b->ctx, r->segs[SEG_COLL], op, p->pts,
	    p->sparse, p->n);

	if (rv == VECDB_OK) {
		api_metrics_observe(m, API_H_INSERT,
		    vdb_now_s() - t0);
		api_metrics_observe(m, API_H_BATCH, (double) p->n);
		api_metrics_add_inserts(m, p->n);
	}
	return rv;
}

/* The ids of written points as a JSON array. */
static json_t *
ids_json(const struct api_points *p)
{
	json_t *a = json_array();

	for (size_t i = 0; i < p->n; i++)
		json_array_append_new(a, api_id_to_json(&p->pts[i].id));
	return a;
}

static int
h_point_insert(struct api_req *r, json_t **data)
{
	struct api_points p;
	json_t *one;
	int rv;

	if ((one = json_array()) == NULL)
		return vdb_err(VECDB_ENOMEM, "out of memory");
	json_array_append(one, r->body);
	rv = api_points_from_json(one, API_POINTS_BODY, &p);
	json_decref(one);
	if (rv != VECDB_OK)
		return rv;
	if ((rv = api_points_write(r, API_INSERT, &p)) == VECDB_OK)
		*data = json_pack("{s:o}", "id", api_id_to_json(&p.pts[0].id));
	api_points_free(&p);
	return rv;
}

/* Batch insert or upsert of {vectors: [...]}. */
static int
points_batch(struct api_req *r, json_t **data, vecdb_write_op op,
    const char *count_key)
{
	static const char *const keys[] = { "vectors", NULL };
	struct api_points p;
	json_t *arr;
	int rv;

	if ((rv = api_check_keys(r->body, keys, NULL)) != VECDB_OK ||
	    (rv = api_get_array(r->body, "vectors", 1, VECDB_BATCH_MAX,
		 &arr)) != VECDB_OK ||
	    (rv = api_points_from_json(arr, 0, &p)) != VECDB_OK)
		return rv;
	if ((rv = api_points_write(r, op, &p)) == VECDB_OK)
		*data = json_pack("{s:I, s:o}", count_key, (json_int_t) p.n,
		    "ids", ids_json(&p));
	api_points_free(&p);
	return rv;
}

static int
h_point_batch(struct api_req *r, json_t **data)
{
	return points_batch(r, data, API_INSERT, "inserted_count");
}

static int
h_point_upsert(struct api_req *r, json_t **data)
{
	return points_batch(r, data, API_UPSERT, "upserted_count");
}

static int
h_point_batch_delete(struct api_req *r, json_t **data)
{
	static const char *const keys[] = { "ids", NULL };
	vecdb_id *ids;
	size_t n, deleted = 0;
	json_t *arr;
	int rv;

	if ((rv = api_check_keys(r->body, keys, NULL)) != VECDB_OK ||
	    (rv = api_get_array(r->body, "ids", 1, VECDB_BATCH_MAX,
		 &arr)) != VECDB_OK ||
	    (rv = api_ids_from_json(arr, "ids", &ids, &n)) != VECDB_OK)
		return rv;
	rv = r->b->delete(r->b->ctx, r->segs[SEG_COLL], ids, n, &deleted);
	if (rv == VECDB_OK)
		*data = json_pack("{s:I}", "deleted_count", (json_int_t) deleted);
	vdb_free(ids);
	return rv;
}

/* The point id in segment 3 (collections/:c/vectors/:id). */
static int
url_id(struct api_req *r, vecdb_id *id)
{
	return api_id_from_str(r->segs[3], id);
}

static int
h_point_get(struct api_req *r, json_t **data)
{
	vecdb_record *rec;
	vecdb_id id;
	int rv;

	if ((rv = url_id(r, &id)) != VECDB_OK ||
	    (rv = r->b->get(r->b->ctx, r->segs[SEG_COLL], &id, &rec)) != VECDB_OK)
		return rv;
	*data = json_pack("{s:o}", "id", api_id_to_json(&rec->id));
	/* no data in a collection without a default vector */
	if (*data != NULL && rec->vector != NULL)
		json_object_set_new(*data, "data",
		    api_vector_to_json(rec->vector, rec->dim));
	if (*data != NULL && rec->payload != NULL)
		json_object_set_new(*data, "metadata",
		    api_json_raw(rec->payload));
	if (*data != NULL && rec->n_sparse + rec->n_named > 0)
		json_object_set_new(*data, "vectors", api_sparse_to_json(rec));
	vecdb_record_free(rec);
	return VECDB_OK;
}

/* Does the body give field a or its synonym b (not null)? */
static int
has_field(const json_t *body, const char *a, const char *b)
{
	json_t *va = json_object_get(body, a), *vb = json_object_get(body, b);

	return (va != NULL && !json_is_null(va)) ||
	    (vb != NULL && !json_is_null(vb));
}

static int
h_point_put(struct api_req *r, json_t **data)
{
	char want[VECDB_ID_STRLEN], got[VECDB_ID_STRLEN];
	struct api_points p;
	json_t *one;
	vecdb_id id;
	int rv;

	if ((rv = url_id(r, &id)) != VECDB_OK)
		return rv;
	if (!has_field(r->body, "data", "vector") &&
	    !has_field(r->body, "metadata", "payload") &&
	    json_object_get(r->body, "vectors") == NULL)
		return vdb_err(VECDB_EINVAL, "give 'data', 'metadata', "
		    "'vectors' or several");
	if ((one = json_array()) == NULL)
		return vdb_err(VECDB_ENOMEM, "out of memory");
	json_array_append(one, r->body);
	rv = api_points_from_json(one, API_POINTS_UPDATE | API_POINTS_BODY,
	    &p);
	json_decref(one);
	if (rv != VECDB_OK)
		return rv;
	/* an id in the body may only repeat the URL's */
	if (p.pts[0].id.kind != VECDB_ID_NONE &&
	    vecdb_id_cmp(&p.pts[0].id, &id) != 0) {
		rv = vdb_err(VECDB_EINVAL, "the body's id %s is not the URL's "
		    "%s", vecdb_id_format(&p.pts[0].id, got),
		    vecdb_id_format(&id, want));
		api_points_free(&p);
		return rv;
	}
	p.pts[0].id = id;
	if ((rv = api_points_write(r, API_UPDATE, &p)) == VECDB_OK)
		*data = json_pack("{s:o}", "id", api_id_to_json(&id));
	api_points_free(&p);
	return rv;
}

static int
h_point_delete(struct api_req *r, json_t **data)
{
	char idbuf[VECDB_ID_STRLEN];
	size_t deleted = 0;
	vecdb_id id;
	int rv;

	if ((rv = url_id(r, &id)) != VECDB_OK ||
	    (rv = r->b->delete(r->b->ctx, r->segs[SEG_COLL], &id, 1,
		 &deleted)) != VECDB_OK)
		return rv;
	if (deleted == 0)
		return vdb_err(VECDB_ENOTFOUND, "point %s not found in '%s'",
		    vecdb_id_format(&id, idbuf), r->segs[SEG_COLL]);
	*data = json_pack("{s:o}", "id", api_id_to_json(&id));
	return VECDB_OK;
}

/* ===== Payload indexes ===== */

static const char *const schemas[] = { "keyword", "integer", "float", "bool",
	"geo" };

static int
h_index_create(struct api_req *r, json_t **data)
{
	static const char *const keys[] = { "field_name", "field_schema",
		NULL };
	const char *field, *schema;
	int rv, s = -1;

	if ((rv = api_check_keys(r->body, keys, NULL)) ||
	    (rv = api_get_string(r->body, "field_name", 1, &field)) ||
	    (rv = api_get_string(r->body, "field_schema", 1, &schema)))
		return rv;
	for (int i = 0; i < 5; i++)
		if (strcasecmp(schema, schemas[i]) == 0)
			s = i;
	if (s < 0)
		return vdb_err(VECDB_EINVAL, "unknown field_schema '%.32s' "
		    "(expected keyword, integer, float, bool or geo)", schema);
	if ((rv = r->b->payload_index_create(r->b->ctx, r->segs[SEG_COLL],
		 field, (vecdb_field_schema) s)) != VECDB_OK)
		return rv;
	*data = json_pack("{s:s, s:s}", "field_name", field, "field_schema",
	    schemas[s]);
	return VECDB_OK;
}

static int
h_index_delete(struct api_req *r, json_t **data)
{
	int rv = r->b->payload_index_delete(r->b->ctx, r->segs[SEG_COLL],
	    r->segs[3]);

	if (rv == VECDB_OK)
		*data = json_pack("{s:s}", "field_name", r->segs[3]);
	return rv;
}

/* {field: {type, points}} for GET /collections/:name. */
static json_t *
payload_schema_json(struct api_req *r, const char *coll)
{
	vecdb_payload_index_info *l;
	json_t *o = json_object();
	size_t n;

	if (r->b->payload_index_list(r->b->ctx, coll, &l, &n) != VECDB_OK)
		return o;
	for (size_t i = 0; i < n; i++)
		json_object_set_new(o, l[i].field, json_pack("{s:s, s:I}",
		    "type", schemas[l[i].schema], "points",
		    (json_int_t) l[i].entries));
	vdb_free(l);
	return o;
}

/* ===== Snapshots ===== */

/* The keys of a body that has none of its own (read options only). */
static const char *const no_keys[] = { NULL };

static int
h_snapshot_create(struct api_req *r, json_t **data)
{
	vecdb_snapshot_info si;
	int rv;

	if ((rv = api_check_keys(r->body, no_keys, NULL)) != VECDB_OK ||
	    (rv = r->b->snapshot_create(r->b->ctx, r->segs[SEG_COLL], NULL,
	    &si)) != VECDB_OK)
		return rv;
	*data = api_snapshot_to_json(&si);
	return VECDB_OK;
}

static int
h_snapshot_list(struct api_req *r, json_t **data)
{
	vecdb_snapshot_info *list;
	size_t n;
	int rv;

	rv = r->b->snapshot_list(r->b->ctx, r->segs[SEG_COLL], &list, &n);
	if (rv != VECDB_OK)
		return rv;
	*data = json_array();
	for (size_t i = 0; i < n; i++)
		json_array_append_new(*data, api_snapshot_to_json(&list[i]));
	vdb_free(list);
	return VECDB_OK;
}

static int
h_snapshot_get(struct api_req *r, json_t **data)
{
	vecdb_snapshot_info si;
	int rv = r->b->snapshot_get(r->b->ctx, r->segs[SEG_COLL], r->segs[3],
	    &si);

	if (rv == VECDB_OK)
		*data = api_snapshot_to_json(&si);
	return rv;
}

static int
h_snapshot_delete(struct api_req *r, json_t **data)
{
	int rv = r->b->snapshot_delete(r->b->ctx, r->segs[SEG_COLL],
	    r->segs[3]);

	if (rv == VECDB_OK)
		*data = json_pack("{s:s}", "name", r->segs[3]);
	return rv;
}

static int
h_snapshot_restore(struct api_req *r, json_t **data)
{
	vecdb_snapshot_info si;
	int rv;

	if ((rv = api_check_keys(r->body, no_keys, NULL)) != VECDB_OK ||
	    (rv = r->b->snapshot_get(r->b->ctx, r->segs[SEG_COLL], r->segs[3],
		 &si)) != VECDB_OK ||
	    (rv = r->b->snapshot_restore(r->b->ctx, r->segs[SEG_COLL],
		 r->segs[3])) != VECDB_OK)
		return rv;
	*data = api_snapshot_to_json(&si);
	return VECDB_OK;
}

static int
h_snapshot_download(struct api_req *r, json_t **data)
{
	int rv, fd;

	(void) data;
	if ((rv = r->b->snapshot_open(r->b->ctx, r->segs[SEG_COLL], r->segs[3],
	    &fd)) != VECDB_OK)
		return rv;
	api_req_status(r, 200);
	if (httpd_respond_fd(r->h, 200, "application/octet-stream", fd) != 0)
		return vdb_err(VECDB_ENOMEM, "cannot send snapshot '%s'",
		    r->segs[3]);
	return API_RESPONDED;
}

/*
 * The engine names the file it read; for an upload that is our temp
 * file, meaningless to the client: say "the uploaded snapshot" instead.
 */
static void
upload_msg_fix(const char *path, int rv)
{
	char msg[1024], out[1200], *at;

	vdb_err_save(msg, sizeof(msg));
	if ((at = strstr(msg, path)) == NULL)
		return;
	*at = '\0';
	snprintf(out, sizeof(out), "%sthe uploaded file%s", msg,
	    at + strlen(path));
	vdb_err(rv, "%s", out);
}

static int
h_snapshot_upload(struct api_req *r, json_t **data)
{
	const char *path, *err;
	int rv;

	/* the server kept the body (or the form's file field) in a temp
	 * file, and removes it when the request ends */
	if ((path = httpd_upload(r->h, &err)) == NULL)
		return vdb_err(VECDB_EINVAL, "%s", err);
	rv = r->b->snapshot_restore_file(r->b->ctx, r->segs[SEG_COLL], path);
	if (rv == VECDB_OK)
		*data = json_pack("{s:s, s:b}", "collection", r->segs[SEG_COLL],
		    "restored", 1);
	else
		upload_msg_fix(path, rv);
	return rv;
}

/* ===== The table ===== */

#define C "collections/:c"
const struct api_route api_routes[] = {
	{ "GET", "health", h_health, 0, API_BODY_NONE, 1 },
	{ "GET", "ready", h_ready, 0, API_BODY_NONE, 1 },
	{ "GET", "stats", h_stats, 0, API_BODY_NONE, 0 },
	{ "GET", "metrics", api_h_metrics, 0, API_BODY_NONE, 0 },
	{ "GET", "cluster", h_cluster, 0, API_BODY_NONE, 0 },
	{ "POST", "cluster/promote", h_cluster_promote, 1, API_BODY_JSON, 0 },
	{ "POST", "collections", h_collection_create, 1, API_BODY_JSON, 0 },
	{ "GET", "collections", h_collection_list, 0, API_BODY_NONE, 0 },
	{ "GET", C, h_collection_get, 0, API_BODY_NONE, 0 },
	{ "DELETE", C, h_collection_delete, 1, API_BODY_NONE, 0 },
	{ "PATCH", C, h_collection_update, 1, API_BODY_JSON, 0 },
	{ "POST", C "/compact", h_collection_compact, 1, API_BODY_NONE, 0 },
	{ "POST", C "/vectors", h_point_insert, 1, API_BODY_JSON, 0 },
	{ "POST", C "/vectors/batch", h_point_batch, 1, API_BODY_JSON, 0 },
	{ "POST", C "/vectors/upsert", h_point_upsert, 1, API_BODY_JSON, 0 },
	{ "POST", C "/vectors/batch-delete", h_point_batch_delete, 1,
	    API_BODY_JSON, 0 },
	{ "GET", C "/vectors/:id", h_point_get, 0, API_BODY_NONE, 0 },
	{ "PUT", C "/vectors/:id", h_point_put, 1, API_BODY_JSON, 0 },
	{ "DELETE", C "/vectors/:id", h_point_delete, 1, API_BODY_NONE, 0 },
	{ "POST", C "/search", api_h_search, 0, API_BODY_JSON, 0 },
	{ "POST", C "/search/hybrid", api_h_search_hybrid, 0, API_BODY_JSON,
	    0 },
	{ "POST", C "/points/recommend", api_h_recommend, 0, API_BODY_JSON, 0 },
	{ "POST", C "/points/discover", api_h_discover, 0, API_BODY_JSON, 0 },
	{ "POST", C "/points/scroll", api_h_scroll, 0, API_BODY_JSON, 0 },
	{ "POST", C "/points/count", api_h_count, 0, API_BODY_JSON, 0 },
	{ "POST", C "/points/search/batch", api_h_search_batch, 0,
	    API_BODY_JSON, 0 },
	{ "POST", C "/index", h_index_create, 1, API_BODY_JSON, 0 },
	{ "DELETE", C "/index/:field", h_index_delete, 1, API_BODY_NONE, 0 },
	{ "POST", C "/snapshots/upload", h_snapshot_upload, 1, API_BODY_RAW, 0 },
	{ "POST", C "/snapshots", h_snapshot_create, 1, API_BODY_JSON, 0 },
	{ "GET", C "/snapshots", h_snapshot_list, 0, API_BODY_NONE, 0 },
	{ "GET", C "/snapshots/:s", h_snapshot_get, 0, API_BODY_NONE, 0 },
	{ "DELETE", C "/snapshots/:s", h_snapshot_delete, 1, API_BODY_NONE, 0 },
	{ "POST", C "/snapshots/:s/restore", h_snapshot_restore, 1,
	    API_BODY_JSON, 0 },
	{ "GET", C "/snapshots/:s/download", h_snapshot_download, 0,
	    API_BODY_NONE, 0 },
};
#undef C
const size_t api_n_routes = sizeof(api_routes) / sizeof(api_routes[0]);

