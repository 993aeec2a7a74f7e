/*
 * api.h: the front ends' contract.
 *
 * api/ owns HTTP routing, request parsing and validation, and the JSON
 * shapes. It calls a backend: a table of functions over the operations of
 * include/vecdb.h. The local backend (api_backend_local.c) calls the
 * embedded engine directly; the cluster backend (router/) maps the same
 * calls onto shards. Filters travel as JSON (borrowed json_t *) so that a
 * backend can forward them unchanged.
 *
 * Every backend function returns a vecdb_err code and sets vecdb_errmsg()
 * on failure, like the embedded API.
 */
#ifndef API_H
#define API_H

#include <jansson.h>
#include <stdint.h>
#include <stdio.h>

#include "vecdb.h"

/*
 * Write operations a backend performs on points: the engine's own
 * vecdb_write_op (include/vecdb.h), one type from the REST routes through
 * the wire (proto_points.c pins WriteOp's values to it) and the router to
 * the writer. The API_ names are kept for the callers that use them.
 */
#define API_INSERT VECDB_WRITE_INSERT
#define API_UPSERT VECDB_WRITE_UPSERT
#define API_UPDATE VECDB_WRITE_UPDATE

/* One search of a batch: the params plus its filter as JSON. */
struct api_search {
	vecdb_search_params p;   /* p.filter is unused: see filter */
	const json_t *filter;    /* borrowed; NULL: none */
};

struct api_backend {
	void *ctx;  /* passed as the first argument of every call */

	int (*collection_create)(void *ctx, const vecdb_collection_config *c);
	int (*collection_get)(void *ctx, const char *name,
	    vecdb_collection_config *cfg, vecdb_collection_stats *st);
	int (*collection_list)(void *ctx, char ***names, size_t *n);
	int (*collection_delete)(void *ctx, const char *name);
	/* Start compacting the collection's index (vecdb_compact): returns
	 * once it is asked for; collection_get shows the progress. */
	int (*collection_compact)(void *ctx, const char *name);
	/* Set, change or remove (type NONE) a collection's quantization
	 * (vecdb_collection_set_quantization): stored when it returns, the
	 * index rebuilt in the background; collection_get shows both. */
	int (*collection_set_quantization)(void *ctx, const char *name,
	    const vecdb_quant_config *q);

	/* op: a vecdb_write_op; sparse: the points' sparse vectors (NULL:
	 * none), as vecdb_write() takes them */
	int (*write)(void *ctx, const char *coll, vecdb_write_op op,
	    vecdb_point *pts, const vecdb_point_sparse *sparse, size_t n);
	/* Would write() succeed? Changes nothing (vecdb_write_check). */
	int (*write_check)(void *ctx, const char *coll, vecdb_write_op op,
	    const vecdb_point *pts, const vecdb_point_sparse *sparse,
	    size_t n);
	int (*delete)(void *ctx, const char *coll, const vecdb_id *ids,
	    size_t n, size_t *deleted);
	int (*get)(void *ctx, const char *coll, const vecdb_id *id,
	    vecdb_record **out);

	/* n searches in one go; out receives n lists. */
	int (*search)(void *ctx, const char *coll, const struct api_search *s,
	    size_t n, vecdb_records ***out);
	/* Search a sparse vector (vecdb_search_sparse); NULL where the
	 * backend has none yet (a router). */
	int (*search_sparse)(void *ctx, const char *coll,
	    const vecdb_sparse_search_params *p, const json_t *filter,
	    vecdb_records **out);
	/* The counts an IDF weight needs (vecdb_sparse_stats). */
	int (*sparse_stats)(void *ctx, const char *coll, const char *name,
	    const uint32_t *indices, size_t n, uint64_t *points,
	    uint64_t *df);
	int (*recommend)(void *ctx, const char *coll,
	    const vecdb_recommend_params *p, const json_t *filter,
	    vecdb_records **out);
	int (*discover)(void *ctx, const char *coll,
	    const vecdb_discover_params *p, const json_t *filter,
	    vecdb_records **out);
	int (*scroll)(void *ctx, const char *coll, const vecdb_id *start,
	    uint32_t limit, const json_t *filter, int with_payload,
	    int with_vector, vecdb_records **out);
	int (*count)(void *ctx, const char *coll, const json_t *filter,
	    uint64_t *out);

	/* name NULL: the backend picks one */
	int (*snapshot_create)(void *ctx, const char *coll, const char *name,
	    vecdb_snapshot_info *out);
	int (*snapshot_list)(void *ctx, const char *coll,
	    vecdb_snapshot_info **out, size_t *n);
	int (*snapshot_get)(void *ctx, const char *coll, const char *name,
	    vecdb_snapshot_info *out);
	int (*snapshot_delete)(void *ctx, const char *coll, const char *name);
	int (*snapshot_restore)(void *ctx, const char *coll, const char *name);
	/* The snapshot file, open for reading at its start (*fd the
	 * caller's to close): a local one, or one a router assembled from
	 * its shards' files. */
	int (*snapshot_open)(void *ctx, const char *coll, const char *name,
	    int *fd);
	int (*snapshot_restore_file)(void *ctx, const char *coll,
	    const char *path);

	int (*payload_index_create)(void *ctx, const char *coll,
	    const char *field, vecdb_field_schema schema);
	int (*payload_index_delete)(void *ctx, const char *coll,
	    const char *field);
	int (*payload_index_list)(void *ctx, const char *coll,
	    vecdb_payload_index_info **out, size_t *n);
	/* Backend-specific series for /metrics (Prometheus text); NULL: none. */
	void (*metrics)(void *ctx, FILE *f);

	int (*stats)(void *ctx, vecdb_stats *out);

	/*
	 * GET /cluster: {role, shards: [{id, members: [{url, role,
	 * reachable, node_id, last_seq, vectors, collections: [{name,
	 * vectors}], error}]}]}. A member that cannot be reached is listed
	 * with reachable false and its error, not failed: the call fails
	 * only when the backend itself cannot answer. *out is new (caller
	 * decrefs). NULL op: the route answers INVALID_ARGUMENT.
	 */
	int (*cluster_status)(void *ctx, json_t **out);

	/*
	 * POST /cluster/promote {"node"}: make a replica (url or node id) its
	 * shard's primary. *out is new. NULL op: INVALID_ARGUMENT.
	 */
	int (*promote)(void *ctx, const char *node, json_t **out);

	/*
	 * GET /ready: can this backend take writes now? VECDB_OK, or
	 * VECDB_ECLOSED with a message naming what is missing and *not_ready
	 * a new array of the shard ids that cannot take them (caller
	 * decrefs). NULL op: ready once serving (the local backend).
	 */
	int (*ready)(void *ctx, json_t **not_ready);
};

/*
 * Per-request read options. The front end (REST or binary) sets them for
 * the request its thread serves, before calling the backend; the cluster
 * backend reads them and reports the shards it left out. Thread-local,
 * like vecdb_errmsg(). The local backend holds all the data in one place
 * and ignores them.
 */
#define API_SHARDS_MAX 1024
#define API_WRITE_CONCERN_MAX 63    /* replicas of a shard, at most */
struct api_read_opts {
	int primary;           /* "consistency": "primary": primaries only */
	int allow_partial;     /* answer without shards that cannot be reached */
	uint32_t write_concern;/* a write waits for this many replicas */
	size_t n_missing;      /* out: the shards left out of the answer */
	uint64_t missing[API_SHARDS_MAX / 64];  /* ... as bits (thread-local
				  storage comes out of every thread's stack:
				  keep it small) */
};

/* This thread's options. */
struct api_read_opts *api_read_opts(void);

/* Back to the defaults (replicas first, all shards), nothing missing. */
void api_read_opts_reset(void);

/* Record that shard id (< API_SHARDS_MAX) was left out (once). */
void api_read_opts_missing(uint32_t shard);

/* The shards left out, ascending, into ids (room for n_missing). */
void api_read_opts_missing_ids(uint32_t *ids);

/*
 * Request threads and long waits. A front end's request threads (the
 * REST workers, the binary API's handlers) form a pool, which each
 * thread joins as it starts. A request about to wait long for something
 * other than its own work (the router holding a write until a shard has
 * a primary again) asks first: at most half of its pool's threads (at
 * least one) wait at once, so that other requests (reads) always find a
 * thread. A thread outside any pool may always wait.
 */
struct api_pool {
	unsigned max;              /* threads that may wait at once */
	unsigned waiting;          /* now (atomic) */
};

/* A pool of @p threads request threads. */
void api_pool_init(struct api_pool *p, unsigned threads);

/* The calling thread serves requests of @p p from now on. */
void api_pool_join(struct api_pool *p);

/*
 * 1: this thread may wait (call api_wait_end() when done); 0: its
 * pool's share of waiting threads is taken (do not wait).
 */
int api_wait_begin(void);
void api_wait_end(void);

/* The most of this thread's pool that may wait at once (0 outside a
 * pool). */
unsigned api_wait_max(void);

/* One member of GET /cluster's shards[].members, filled from what was
 * learnt (error NULL: reachable; else last_seq and vectors are null).
 * vectors is the sum over collections, which is stolen. */
json_t *api_cluster_member_json(const char *url, const char *role,
    const char *node_id, uint64_t last_seq, json_t *collections,
    const char *error);

/* The local backend over an open database (borrowed). */
void api_backend_local_init(struct api_backend *b, vecdb *db);

/* ===== The HTTP server (api_http.c) ===== */

/*
 * What one HTTP listener allows its connections (api_httpd.h; 0: its
 * defaults). The same flags, YAML keys and variables on `vecdb serve`
 * and vecdb-router: API_CONN_LONG_OPTS, API_CONN_SETTING_NAMES and
 * api_conn_setting().
 */
struct api_conn_limits {
	uint64_t max_conns;          /* over it: 503 */
	uint64_t max_conns_per_ip;   /* over it: 503; 0: no limit */
	uint64_t header_timeout_ms;  /* request line and headers */
	uint64_t body_timeout_ms;    /* the body, once the headers are in */
	uint64_t idle_timeout_ms;    /* keep-alive between requests */
};

enum {
	API_OPT_MAX_CONNS = 1000,
	API_OPT_MAX_CONNS_PER_IP,
	API_OPT_HEADER_TIMEOUT,
	API_OPT_BODY_TIMEOUT,
	API_OPT_IDLE_TIMEOUT
};

#define API_CONN_LONG_OPTS \
	{ "max-connections", required_argument, NULL, API_OPT_MAX_CONNS }, \
	{ "max-connections-per-ip", required_argument, NULL, \
	    API_OPT_MAX_CONNS_PER_IP }, \
	{ "header-timeout-ms", required_argument, NULL, \
	    API_OPT_HEADER_TIMEOUT }, \
	{ "body-timeout-ms", required_argument, NULL, API_OPT_BODY_TIMEOUT }, \
	{ "idle-timeout-ms", required_argument, NULL, API_OPT_IDLE_TIMEOUT }

#define API_CONN_SETTING_NAMES \
	{ API_OPT_MAX_CONNS, "max_connections", "VECDB_MAX_CONNECTIONS" }, \
	{ API_OPT_MAX_CONNS_PER_IP, "max_connections_per_ip", \
	    "VECDB_MAX_CONNECTIONS_PER_IP" }, \
	{ API_OPT_HEADER_TIMEOUT, "header_timeout_ms", \
	    "VECDB_HEADER_TIMEOUT_MS" }, \
	{ API_OPT_BODY_TIMEOUT, "body_timeout_ms", "VECDB_BODY_TIMEOUT_MS" }, \
	{ API_OPT_IDLE_TIMEOUT, "idle_timeout_ms", "VECDB_IDLE_TIMEOUT_MS" }

/* The usage lines of those flags, each after indent (a literal). */
#define API_CONN_USAGE(indent) \
	indent "[--max-connections N] [--max-connections-per-ip N]\n" \
	indent "[--header-timeout-ms MS] [--body-timeout-ms MS]\n" \
	indent "[--idle-timeout-ms MS]\n"

/*
 * Apply one of those settings. @return 0, -1 for a bad value (printed,
 * naming PROG), or 1 when opt is not one of them.
 */
int api_conn_setting(const char *prog, struct api_conn_limits *c, int opt,
    const char *v);

typedef struct api_server api_server;

struct api_server_config {
	const char *host;            /* "127.0.0.1" */
	uint16_t port;               /* 0: pick a free port */
	const char *api_key;         /* NULL: no auth */
	const char *read_only_key;   /* may search, not write */
	const char *tls_cert;        /* PEM; with tls_key enables HTTPS */
	const char *tls_key;
	uint64_t max_body;           /* bytes; larger bodies get 413 */
	unsigned threads;            /* request workers */
	const char *tmp_dir;         /* for snapshot uploads */
	struct api_conn_limits conn; /* zeroes: the defaults */
	int qdrant;                  /* serve Qdrant's REST API instead
					(docs/QDRANT.md) */
};

#define API_QDRANT_DEFAULT_PORT 6333

/* The flag, YAML key and variable of that port on `vecdb serve` and
 * vecdb-router. */
#define API_OPT_QDRANT_PORT 'Q'

#define API_DEFAULT_MAX_BODY (64ULL << 20)
#define API_JSON_DEPTH_MAX 128      /* nesting of a request body */
#define API_JSON_DEPTH_MAX_STR "128"
#define API_DEFAULT_THREADS 16

/*
 * Start serving. The backend is borrowed and must outlive the server.
 * @return VECDB_OK, or VECDB_EIO when the port cannot be bound (message
 *	says why).
 */
int api_server_start(const struct api_server_config *cfg,
    const struct api_backend *b, api_server **out);

/*
 * Start the Qdrant listener (docs/QDRANT.md) beside a native one, with
 * its host, keys, TLS and limits, on port (0: none, *out NULL). The
 * default port taken by another process is a warning, and the native
 * API serves on; a port the user set (port_set) is an error, printed
 * naming prog. @return 0 or -1.
 */
int api_qdrant_start(const char *prog, const struct api_server_config *native,
    uint16_t port, int port_set, const struct api_backend *b,
    api_server **out);

/* The port actually bound (useful with port 0). */
uint16_t api_server_port(const api_server *s);

/* Stop accepting, finish the requests in flight, free. NULL is fine. */
void api_server_stop(api_server *s);

/* ===== Settings of the commands (api_env.c) ===== */

/*
 * One setting of a command (`vecdb serve`, vecdb-node, vecdb-router):
 * its getopt value, its YAML key (NULL: not in a file) and its
 * environment variable.
 */
struct api_setting_name {
	int opt;
	const char *key;
	const char *env;
};

/*
 * Apply every variable of names[0..n) that is set, in table order, with
 * set(s, opt, value); the commands then apply their flags, which win.
 * A value set rejects (it printed why) gets a second line naming the
 * variable, since the message names the flag.
 * @return 0, or -1 at the first value rejected.
 */
int api_settings_from_env(const char *prog,
    const struct api_setting_name *names, size_t n,
    int (*set)(void *s, int opt, const char *v), void *s);

/*
 * A setting's number: decimal, in lo..hi; with @p size also a K, M, G or
 * T suffix (powers of 1024, either case, "iB" allowed after it). On error
 * prints "PROG: WHAT 'S' is not a number in LO..HI" (or "is not a size
 * ...") and returns -1.
 */
int api_parse_u64(const char *prog, const char *what, const char *s,
    uint64_t lo, uint64_t hi, int size, uint64_t *out);

#endif /* API_H */
