/*
 * api_impl.h: internals of the front end shared by api_*.c.
 */
#ifndef API_IMPL_H
#define API_IMPL_H

#include <jansson.h>
#include <string.h>
#include <strings.h>

#include "api.h"
#include "api_httpd.h"
#include "api_json_text.h"
#include "vdb.h"

/* ===== JSON fields (api_json.c) ===== */

/* Read an optional unsigned integer field in [lo, hi]; def if absent. */
int api_get_uint(const json_t *obj, const char *key, uint64_t def,
    uint64_t lo, uint64_t hi, uint64_t *out);
/* Read an optional bool field; def if absent or null. */
int api_get_bool(const json_t *obj, const char *key, int def, int *out);
/* Read a required/optional string field (borrowed). */
int api_get_string(const json_t *obj, const char *key, int required,
    const char **out);
/* Read a required array field (borrowed). */
int api_get_array(const json_t *obj, const char *key, int required,
    size_t max, json_t **out);

/*
 * EINVAL naming the first key of obj that is not in @p allowed (NULL-
 * terminated): a misspelt field must not go unnoticed. @p where is the
 * object's path in the body ("params", "context[2]"), or "" for a nested
 * object whose caller names it in the message; NULL means the body
 * itself, which may also hold the read options (consistency,
 * allow_partial, write_concern) api_http.c takes from any route.
 */
int api_check_keys(const json_t *obj, const char *const *allowed,
    const char *where);

/* A point id from JSON: an unsigned integer or a UUID string. */
int api_id_from_json(const json_t *j, const char *what, vecdb_id *out);
json_t *api_id_to_json(const vecdb_id *id);
/* A point id from a URL segment. */
int api_id_from_str(const char *s, vecdb_id *out);

/* A vector from a JSON array of numbers into a new float array. */
int api_vector_from_json(const json_t *j, const char *what, float **out,
    uint32_t *dim);
json_t *api_vector_to_json(const float *v, uint32_t dim);
/* A record's named vectors as {name: [dense...] | {indices, values}}. */
json_t *api_sparse_to_json(const vecdb_record *r);

/* A list of ids from a JSON array; caller frees *out. */
int api_ids_from_json(const json_t *arr, const char *what, vecdb_id **out,
    size_t *n);

/*
 * Points from JSON objects {id?, data|vector, metadata|payload?,
 * vectors?} (each pair synonyms: one of the two); vectors maps named
 * vectors to an array (dense) or {indices, values} (sparse), or null to
 * remove one (updates).
 * The vectors and payloads are owned by *out; free with
 * api_points_free(). Flags: API_POINTS_UPDATE, data and metadata are
 * each optional; API_POINTS_BODY, the array holds the request body
 * itself (the read options may be there too).
 */
#define API_POINTS_UPDATE 1
#define API_POINTS_BODY 2
struct api_points {
	vecdb_point *pts;   /* n points */
	size_t n;
	float **vecs;       /* their vectors (owned) */
	char **payloads;    /* their payloads (owned, from json_dumps) */
	vecdb_point_sparse *sparse; /* their named vectors (owned arrays;
				       names borrowed from the JSON) */
};
int api_points_from_json(const json_t *arr, int flags,
    struct api_points *out);
void api_points_free(struct api_points *p);

/* A create body's "sparse_vectors": {name: {"modifier": "none" | "idf"}
 * or null} into c's sparse vectors. */
int api_sparse_config_from_json(const json_t *j, vecdb_collection_config *c);

/* Collection config <-> JSON. */
int api_config_from_json(const json_t *j, vecdb_collection_config *out);
json_t *api_config_to_json(const vecdb_collection_config *c);
const char *api_metric_name(vecdb_metric m);

/*
 * A collection's quantization (create's and PATCH's field) into *out, for
 * a collection of dimension dim (Qdrant's product compression is a share
 * of it): null, "none"|"scalar"|"binary"|"product", {type, quantile?,
 * always_ram?, segments?, bits?}, or Qdrant's {"scalar": {type: "int8",
 * quantile?, always_ram?}}, {"binary": {always_ram?}} or {"product":
 * {compression: "x4".."x64", always_ram?}}. null means none. Ranges that
 * need the collection's metric or dimension are left to the engine.
 */
int api_quant_from_json(const json_t *j, uint32_t dim,
    vecdb_quant_config *out);
/* "none", "scalar", "binary", "product". */
const char *api_quant_name(vecdb_quant q);

/* Search hits as [{id, distance, metadata, vector?, vectors?}]; scored:
 * [{id, score, ...}] (sparse and hybrid searches). */
json_t *api_hits_to_json(const vecdb_records *r, int with_payload,
    int with_vector);
json_t *api_scored_hits_to_json(const vecdb_records *r, int with_payload,
    int with_vector);
/* A sparse vector {indices, values} at what into v (arrays owned by the
 * caller, even on failure); null is refused unless null_removes. */
int api_sparse_vector_from_json(const json_t *j, const char *name,
    const char *what, vecdb_sparse_vector *v);
json_t *api_snapshot_to_json(const vecdb_snapshot_info *si);

/* ===== Metrics (api_metrics.c) ===== */

enum api_hist {
	API_H_QUERY,      /* vecdb_query_duration_seconds */
	API_H_INSERT,     /* vecdb_insert_duration_seconds */
	API_H_BATCH,      /* vecdb_batch_insert_size */
	API_H_COUNT
};

struct api_metrics;
struct api_metrics *api_metrics_new(size_t n_routes);
void api_metrics_free(struct api_metrics *m);
void api_metrics_request(struct api_metrics *m, size_t route, int status);
void api_metrics_observe(struct api_metrics *m, enum api_hist h, double v);
void api_metrics_add_queries(struct api_metrics *m, uint64_t n);
void api_metrics_add_inserts(struct api_metrics *m, uint64_t n);

/* Render everything in the Prometheus text format 0.0.4. */
char *api_metrics_render(struct api_metrics *m, const struct api_backend *b,
    const char *const *route_names, const char *const *route_methods,
    size_t n_routes, double uptime_s, const struct httpd_stats *hs);

/* ===== Requests and routes (api_http.c, api_routes.c) ===== */

#define API_MAX_SEGS 8
#define API_RESPONDED (-1)  /* a handler that wrote its own response */

enum api_body {
	API_BODY_NONE,   /* no body expected */
	API_BODY_JSON,   /* a JSON object, parsed into req->body */
	API_BODY_RAW     /* the handler reads the body itself */
};

#define API_PATH_MAX 2048

struct api_req {
	struct httpd_req *h;
	const struct api_backend *b;
	struct api_server *srv;
	char *segs[API_MAX_SEGS];   /* path segments, each decoded once */
	size_t nsegs;
	json_t *body;               /* parsed JSON body (owned) or NULL */
	int status;                 /* response status, for logs/metrics */
	size_t route;               /* index in api_routes, or api_n_routes */
	uint64_t t0;                /* ms, when the headers were in */
	double t0s;                 /* the same in seconds (vdb_now_s) */
	const struct api_route *routes; /* the listener's table (NULL in
				       api_route: the native one) */
	size_t n_routes;
	int qdrant;                 /* Qdrant's envelope (api_qdrant.c) */
	char alias_to[VECDB_NAME_MAX + 1]; /* the collection an alias in
				       the path names (api_qdrant.c) */
	char raw[API_PATH_MAX];     /* the path as sent, split */
	char dec[API_PATH_MAX];     /* the segments decoded */
};

/*
 * Record the response status (logs, vecdb_http_requests_total) just before
 * the response is written: counted after, a client that reads its answer
 * and scrapes /metrics at once could miss its own request.
 */
void api_req_status(struct api_req *r, int status);

/*
 * A handler returns VECDB_OK with *data set (stolen into the envelope),
 * a vecdb_err with the message set, or API_RESPONDED.
 */
typedef int (*api_handler)(struct api_req *r, json_t **data);

struct api_route {
	const char *method;
	const char *pattern;   /* "collections/:c/vectors/:id" */
	api_handler fn;
	int writes;            /* refused to the read-only key */
	enum api_body body;
	int noauth;            /* served without an API key (/health) */
};

/* GET /metrics of either API: this listener's requests by route and the
 * backend's figures, in the Prometheus text format (api_http.c). */
int api_h_metrics(struct api_req *r, json_t **data);

/* Query handlers (api_query.c). */
int api_h_search(struct api_req *r, json_t **data);
int api_h_search_batch(struct api_req *r, json_t **data);
int api_h_search_hybrid(struct api_req *r, json_t **data);
int api_h_recommend(struct api_req *r, json_t **data);
int api_h_discover(struct api_req *r, json_t **data);
int api_h_scroll(struct api_req *r, json_t **data);
int api_h_count(struct api_req *r, json_t **data);

/*
 * One query described by a body in the native API's shape (POST
 * /search, /points/recommend, /points/discover; a search with
 * "sparse_vector" is a sparse one), its hits into *out: what the Qdrant
 * front end runs once it has translated a request.
 */
enum api_query { API_Q_SEARCH, API_Q_RECOMMEND, API_Q_DISCOVER };
int api_query_run(struct api_req *r, enum api_query q, const json_t *body,
    vecdb_records **out);
/* A body's "filter": absent or null (*out NULL), or an object. */
int api_filter_field(const json_t *body, const json_t **out);
/* Write points through the backend, timing it for the metrics. */
int api_points_write(struct api_req *r, vecdb_write_op op,
    struct api_points *p);

extern const struct api_route api_routes[];
extern const size_t api_n_routes;
/* Qdrant's REST API (api_qdrant.c), served by a listener of its own. */
extern const struct api_route api_qdrant_routes[];
extern const size_t api_qdrant_n_routes;

/* Before a Qdrant route runs: its collection segment, when an alias,
 * replaced by the collection it names. VECDB_OK or an error. */
int api_qdrant_prepare(struct api_req *r);

/* Seconds since the request's headers were in (Qdrant's "time"). */
double api_req_seconds(const struct api_req *r);

/*
 * The framing of a request, before its handler: route method and path
 * (as sent) into r, each segment decoded once after routing: 0, or the
 * HTTP status of the refusal (404, 405, 400) with why.
 */
int api_route(struct api_req *r, const char *method, const char *path,
    char *why, size_t whylen);
/* A JSON object body into r->body (an empty one is {}): 0, or -1 with
 * why (a 400). */
int api_body_parse(struct api_req *r, const char *buf, size_t len, char *why,
    size_t whylen);
/* This thread's read options from the query string (or NULL) and r's
 * body: VECDB_OK or VECDB_EINVAL with the message set. */
int api_read_opts_parse(const struct api_req *r, const char *qs);

/* Write a JSON response (steals root). */
void api_send_json(struct api_req *r, int status, json_t *root);

/* Write a response of another type (body copied). */
void api_send_text(struct api_req *r, int status, const char *type,
    const char *body, size_t len);

/* Write the error envelope with an explicit status and code name. */
void api_send_error_status(struct api_req *r, int status, const char *code,
    const char *msg);

/* Write the error envelope for a vecdb_err and its message. */
void api_send_error(struct api_req *r, int err, const char *msg);

/* HTTP status and gRPC-style code name of a vecdb_err. */
int api_status_of(int err, const char **code);

/* Server pieces handlers need. */
struct api_metrics *api_server_metrics(struct api_server *s);
const struct api_server_config *api_server_cfg(struct api_server *s);
double api_server_uptime(struct api_server *s);
void api_server_http_stats(struct api_server *s, struct httpd_stats *out);

#endif /* API_IMPL_H */
