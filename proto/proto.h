/*
 * proto.h: the wire format (proto/vecdb.proto) in our own types.
 *
 * Generated protobuf-c code stays inside the proto/ sources; callers hand in and get
 * back include/vecdb.h types. Every function returns VECDB_OK or a vecdb_err
 * code with a vdb_err() message, like the embedded API.
 *
 * Conventions:
 * - *_encode() writes a freshly allocated buffer to @p out / @p len; the
 *   caller frees it with vdb_free(). An empty message encodes to length 0
 *   (and *out may then be NULL).
 * - *_decode() distrusts its input: a malformed or truncated message, a
 *   count or size over its limit, a missing required field, a NaN or
 *   infinite float, a uuid that is not 16 bytes, a bad enum value: all
 *   return VECDB_EINVAL saying what is wrong, and nothing leaks. Out
 *   parameters are written only on success.
 * - Decoded structures own their storage and are freed with the matching
 *   *_free() (NULL is fine). Pointer fields inside them (vectors, payloads,
 *   id arrays) are valid until that call.
 * - Filters travel as JSON text: "" or NULL means none.
 * - No function keeps state: all are safe from any thread.
 */
#ifndef PROTO_H
#define PROTO_H

#include <stddef.h>
#include <stdint.h>

#include "vecdb.h"

/* ===== Limits ===== */

#define PROTO_MSG_MAX (512u << 20)   /* bytes of one encoded message */
#define PROTO_KEY_MAX 1024           /* bytes of an api key */
#define PROTO_MESSAGE_MAX 65536      /* bytes of a response message */
#define PROTO_FILTER_MAX (1u << 20)  /* bytes of a filter's JSON */
#define PROTO_FILTER_DEPTH_MAX 128   /* nesting of a filter's JSON */
#define PROTO_SEARCH_MAX 1024        /* searches in one batch */
#define PROTO_LIST_MAX 1000000       /* names, snapshots, indexes, records */
#define PROTO_TEXT_MAX 256           /* health strings */
#define PROTO_URL_MAX 1024           /* an nng url (Follow, Health) */

/* ===== Envelope ===== */

/* Methods (enum Method of vecdb.proto). */
enum proto_method {
	PROTO_CREATE_COLLECTION = 1,
	PROTO_GET_COLLECTION,
	PROTO_LIST_COLLECTIONS,
	PROTO_DELETE_COLLECTION,
	PROTO_WRITE,
	PROTO_DELETE,
	PROTO_GET,
	PROTO_SEARCH,
	PROTO_RECOMMEND,
	PROTO_DISCOVER,
	PROTO_SCROLL,
	PROTO_COUNT,
	PROTO_SNAPSHOT_CREATE,
	PROTO_SNAPSHOT_LIST,
	PROTO_SNAPSHOT_GET,
	PROTO_SNAPSHOT_DELETE,
	PROTO_SNAPSHOT_RESTORE,
	PROTO_PAYLOAD_INDEX_CREATE,
	PROTO_PAYLOAD_INDEX_DELETE,
	PROTO_PAYLOAD_INDEX_LIST,
	PROTO_STATS,
	PROTO_HEALTH,
	PROTO_FETCH_WAL,
	PROTO_BOOTSTRAP_BEGIN,
	PROTO_BOOTSTRAP_CHUNK,
	PROTO_PROMOTE,
	PROTO_FOLLOW,
	PROTO_SNAPSHOT_READ,
	PROTO_SNAPSHOT_UPLOAD,
	PROTO_COMPACT_COLLECTION,
	PROTO_SET_QUANTIZATION,
	PROTO_SPARSE_SEARCH,
	PROTO_SPARSE_STATS,
	PROTO_METHOD_COUNT  /* one past the last method, not a method */
};

/* Response codes: the gRPC status codes (enum Code of vecdb.proto). */
enum proto_code {
	PROTO_OK = 0,
	PROTO_CANCELLED,
	PROTO_UNKNOWN,
	PROTO_INVALID_ARGUMENT,
	PROTO_DEADLINE_EXCEEDED,
	PROTO_NOT_FOUND,
	PROTO_ALREADY_EXISTS,
	PROTO_PERMISSION_DENIED,
	PROTO_RESOURCE_EXHAUSTED,
	PROTO_FAILED_PRECONDITION,
	PROTO_ABORTED,
	PROTO_OUT_OF_RANGE,
	PROTO_UNIMPLEMENTED,
	PROTO_INTERNAL,
	PROTO_UNAVAILABLE,
	PROTO_DATA_LOSS,
	PROTO_UNAUTHENTICATED,
	PROTO_CODE_COUNT    /* not a code */
};

/* The name of a method ("search"), or "unknown". */
const char *proto_method_name(uint32_t method);

/* The wire code of a vecdb_err, and the vecdb_err of a wire code. */
int proto_code_of(int vecdb_err);
int proto_err_of(int code);

/* A decoded request; free with proto_request_free(). */
struct proto_request {
	uint32_t method;      /* enum proto_method, always a known one */
	char *api_key;        /* "" when none */
	uint64_t request_id;  /* the caller's tag */
	uint8_t *body;        /* the argument message (NULL when empty) */
	size_t body_len;      /* its bytes */
	int primary_only;     /* read options (docs/ROUTER.md) */
	int allow_partial;
};

/* @p body (len bytes, borrowed) is an encoded argument message. */
int proto_request_encode(uint32_t method, const char *api_key,
    uint64_t request_id, const void *body, size_t len, uint8_t **out,
    size_t *outlen);

/* As proto_request_encode(), with the read options set. */
int proto_request_encode_opts(uint32_t method, const char *api_key,
    uint64_t request_id, int primary_only, int allow_partial,
    const void *body, size_t len, uint8_t **out, size_t *outlen);
int proto_request_decode(const uint8_t *buf, size_t len,
    struct proto_request **out);
void proto_request_free(struct proto_request *r);

/* A decoded response; free with proto_response_free(). */
struct proto_response {
	int code;             /* enum proto_code */
	char *message;        /* "" when none */
	uint8_t *body;        /* the result message (NULL when empty) */
	size_t body_len;      /* its bytes */
	uint32_t *missing;    /* shards a partial answer lacks (owned) */
	size_t n_missing;     /* at most PROTO_MISSING_MAX */
};

#define PROTO_MISSING_MAX 1024

int proto_response_encode(int code, const char *message, const void *body,
    size_t len, uint8_t **out, size_t *outlen);

/* As proto_response_encode(), naming the shards a partial answer lacks. */
int proto_response_encode_missing(int code, const char *message,
    const void *body, size_t len, const uint32_t *missing, size_t n_missing,
    uint8_t **out, size_t *outlen);
int proto_response_decode(const uint8_t *buf, size_t len,
    struct proto_response **out);
void proto_response_free(struct proto_response *r);

/* ===== Collections ===== */

/* CreateCollection. Decode checks the name, dimension and enum ranges;
 * the index settings are checked by the storage engine. */
int proto_collection_create_encode(const vecdb_collection_config *c,
    uint8_t **out, size_t *len);
int proto_collection_create_decode(const uint8_t *buf, size_t len,
    vecdb_collection_config *out);

/* GetCollectionResult: a config and its stats. */
int proto_collection_info_encode(const vecdb_collection_config *c,
    const vecdb_collection_stats *st, uint8_t **out, size_t *len);
int proto_collection_info_decode(const uint8_t *buf, size_t len,
    vecdb_collection_config *c, vecdb_collection_stats *st);

/* SetQuantization: a collection and its new quantization. Decode checks
 * the name, the type's range and that the quantile is finite; the rest
 * (quantile range, segments against the dimension, bits, binary on a
 * metric) is the storage engine's to check. */
int proto_set_quantization_encode(const char *coll,
    const vecdb_quant_config *q, uint8_t **out, size_t *len);
int proto_set_quantization_decode(const uint8_t *buf, size_t len,
    char coll[VECDB_NAME_MAX + 1], vecdb_quant_config *q);

/* ListCollectionsResult. Decoded names: free with vecdb_names_free(). */
int proto_names_encode(char *const *names, size_t n, uint8_t **out,
    size_t *len);
int proto_names_decode(const uint8_t *buf, size_t len, char ***names,
    size_t *n);

/*
 * The messages that name a collection and maybe one thing in it:
 * GetCollection, DeleteCollection, SnapshotCreate, SnapshotList,
 * PayloadIndexList (collection only), SnapshotGet, SnapshotDelete,
 * SnapshotRestore (collection, name), PayloadIndexDelete (collection,
 * field) and PayloadIndexCreate (collection, field, schema). @p method
 * says which message; name is ignored by the collection-only ones and
 * schema by all but PROTO_PAYLOAD_INDEX_CREATE.
 */
struct proto_target {
	char collection[VECDB_NAME_MAX + 1];    /* always set */
	char name[VECDB_FIELD_NAME_MAX + 1];    /* snapshot name or field */
	vecdb_field_schema schema;              /* payload index create */
};

int proto_target_encode(uint32_t method, const char *coll, const char *name,
    vecdb_field_schema schema, uint8_t **out, size_t *len);
int proto_target_decode(uint32_t method, const uint8_t *buf, size_t len,
    struct proto_target *out);

/* ===== Points ===== */

/* A decoded Write; free with proto_write_free(). */
struct proto_write {
	char collection[VECDB_NAME_MAX + 1];
	vecdb_write_op op;    /* insert, upsert, update */
	int check_only;       /* validate, change nothing */
	uint32_t write_concern; /* replicas that must hold it; 0: none */
	vecdb_point *points;  /* n points; vectors/payloads owned here
				 (vector NULL: none given) */
	vecdb_point_sparse *sparse; /* n: their sparse vectors, owned */
	size_t n;             /* 0..VECDB_BATCH_MAX */
};

int proto_write_encode(const char *coll, vecdb_write_op op, const vecdb_point *pts,
    size_t n, uint8_t **out, size_t *len);
/* A Write of points with sparse vectors (sparse NULL: none), checked only
 * or with a write concern. */
int proto_write_sparse_encode(const char *coll, vecdb_write_op op,
    int check_only, uint32_t write_concern, const vecdb_point *pts,
    const vecdb_point_sparse *sparse, size_t n, uint8_t **out, size_t *len);
/* A Write with check_only set: the receiver validates, changes nothing. */
int proto_write_check_encode(const char *coll, vecdb_write_op op,
    const vecdb_point *pts, size_t n, uint8_t **out, size_t *len);
/* A Write whose acknowledgement waits for write_concern replicas. */
int proto_write_wc_encode(const char *coll, vecdb_write_op op, uint32_t write_concern,
    const vecdb_point *pts, size_t n, uint8_t **out, size_t *len);

/* ===== Promotion (replication) ===== */

/* Promote -> PromoteResult. */
int proto_promote_encode(uint64_t min_term, uint8_t **out, size_t *len);
int proto_promote_decode(const uint8_t *buf, size_t len, uint64_t *min_term);
int proto_promote_result_encode(uint64_t term, uint64_t last_seq,
    uint8_t **out, size_t *len);
int proto_promote_result_decode(const uint8_t *buf, size_t len,
    uint64_t *term, uint64_t *last_seq);

/* Follow: primary_url is checked as an nng url of at most PROTO_URL_MAX. */
int proto_follow_encode(const char *primary_url, uint64_t term,
    uint8_t **out, size_t *len);
int proto_follow_decode(const uint8_t *buf, size_t len,
    char url[PROTO_URL_MAX + 1], uint64_t *term);
int proto_write_decode(const uint8_t *buf, size_t len,
    struct proto_write **out);
void proto_write_free(struct proto_write *w);

/* WriteResult: the ids of the points written (assigned ones included).
 * Decoded ids: free with vdb_free(). */
int proto_ids_encode(const vecdb_point *pts, size_t n, uint8_t **out,
    size_t *len);
int proto_ids_decode(const uint8_t *buf, size_t len, vecdb_id **ids,
    size_t *n);

/* A decoded Delete; free with proto_delete_free(). */
struct proto_delete {
	char collection[VECDB_NAME_MAX + 1];
	vecdb_id *ids;        /* n ids, none of kind NONE */
	size_t n;             /* 0..VECDB_BATCH_MAX */
};

int proto_delete_encode(const char *coll, const vecdb_id *ids, size_t n,
    uint8_t **out, size_t *len);
int proto_delete_decode(const uint8_t *buf, size_t len,
    struct proto_delete **out);
void proto_delete_free(struct proto_delete *d);

/* DeleteResult and CountResult: one number. */
int proto_deleted_encode(uint64_t deleted, uint8_t **out, size_t *len);
int proto_deleted_decode(const uint8_t *buf, size_t len, uint64_t *out);
int proto_count_result_encode(uint64_t count, uint8_t **out, size_t *len);
int proto_count_result_decode(const uint8_t *buf, size_t len, uint64_t *out);

/* Get: a collection and a point id (required). */
int proto_get_encode(const char *coll, const vecdb_id *id, uint8_t **out,
    size_t *len);
int proto_get_decode(const uint8_t *buf, size_t len,
    char coll[VECDB_NAME_MAX + 1], vecdb_id *id);

/* GetResult. Decoded record: free with vecdb_record_free(). */
int proto_record_encode(const vecdb_record *r, uint8_t **out, size_t *len);
int proto_record_decode(const uint8_t *buf, size_t len, vecdb_record **out);

/* Records (results of recommend, discover and scroll). Decoded: free
 * with vecdb_records_free(). */
int proto_records_encode(const vecdb_records *r, uint8_t **out,
    size_t *len);
int proto_records_decode(const uint8_t *buf, size_t len,
    vecdb_records **out);

/* SearchResult: n lists. Decoded: free with vecdb_records_free_array(). */
int proto_search_result_encode(vecdb_records *const *r, size_t n,
    uint8_t **out, size_t *len);
int proto_search_result_decode(const uint8_t *buf, size_t len,
    vecdb_records ***out, size_t *n);

/* ===== Queries ===== */

/* One search of a decoded Search: p.filter is NULL, see filter_json. */
struct proto_search_one {
	vecdb_search_params p;  /* p.vector owned by the proto_search */
	char *filter_json;      /* NULL: no filter */
	char using[VECDB_NAME_MAX + 1]; /* p.using points here (or NULL) */
};

/* A decoded Search; free with proto_search_free(). */
struct proto_search {
	char collection[VECDB_NAME_MAX + 1];
	struct proto_search_one *s;  /* n searches */
	size_t n;                    /* 1..PROTO_SEARCH_MAX */
};

/* @p filters: n JSON texts (NULL entries: none), or NULL for none at
 * all; params' filter fields are ignored. */
int proto_search_encode(const char *coll, const vecdb_search_params *p,
    const char *const *filters, size_t n, uint8_t **out, size_t *len);
int proto_search_decode(const uint8_t *buf, size_t len,
    struct proto_search **out);
void proto_search_free(struct proto_search *s);

/* A decoded Recommend (p.filter NULL); free with proto_recommend_free(). */
struct proto_recommend {
	char collection[VECDB_NAME_MAX + 1];
	vecdb_recommend_params p;  /* arrays owned here */
	char *filter_json;         /* NULL: no filter */
	char using[VECDB_NAME_MAX + 1]; /* p.using points here (or NULL) */
};

int proto_recommend_encode(const char *coll,
    const vecdb_recommend_params *p, const char *filter_json, uint8_t **out,
    size_t *len);
int proto_recommend_decode(const uint8_t *buf, size_t len,
    struct proto_recommend **out);
void proto_recommend_free(struct proto_recommend *r);

/* A decoded Discover (p.filter NULL); free with proto_discover_free(). */
struct proto_discover {
	char collection[VECDB_NAME_MAX + 1];
	vecdb_discover_params p;   /* arrays owned here */
	char *filter_json;         /* NULL: no filter */
	char using[VECDB_NAME_MAX + 1]; /* p.using points here (or NULL) */
};

int proto_discover_encode(const char *coll, const vecdb_discover_params *p,
    const char *filter_json, uint8_t **out, size_t *len);
int proto_discover_decode(const uint8_t *buf, size_t len,
    struct proto_discover **out);
void proto_discover_free(struct proto_discover *d);

/* A decoded Scroll; free with proto_scroll_free(). */
struct proto_scroll {
	char collection[VECDB_NAME_MAX + 1];
	vecdb_id start;            /* kind NONE: from the first point */
	uint32_t limit;            /* 1..VECDB_LIMIT_MAX */
	char *filter_json;         /* NULL: no filter */
	int with_payload;
	int with_vector;
};

int proto_scroll_encode(const char *coll, const vecdb_id *start,
    uint32_t limit, const char *filter_json, int with_payload,
    int with_vector, uint8_t **out, size_t *len);
int proto_scroll_decode(const uint8_t *buf, size_t len,
    struct proto_scroll **out);
void proto_scroll_free(struct proto_scroll *s);

/* Count: a collection and a filter. *filter_json (NULL: none) is freed
 * with vdb_free(). */
/* A SparseSearch: p's query and options (p->filter unused), the filter
 * as JSON ("" or NULL: none). Decoded: a checked copy, freed with
 * proto_sparse_search_free(). */
struct proto_sparse_search {
	char collection[VECDB_NAME_MAX + 1];
	char name[VECDB_NAME_MAX + 1];
	vecdb_sparse_search_params p;  /* name, indices and values here */
	char *filter_json;             /* NULL: none */
};
int proto_sparse_search_encode(const char *coll,
    const vecdb_sparse_search_params *p, const char *filter_json,
    uint8_t **out, size_t *len);
int proto_sparse_search_decode(const uint8_t *buf, size_t len,
    struct proto_sparse_search **out);
void proto_sparse_search_free(struct proto_sparse_search *s);

/* A SparseStats, and its result (df: n counts). */
int proto_sparse_stats_encode(const char *coll, const char *name,
    const uint32_t *indices, size_t n, uint8_t **out, size_t *len);
int proto_sparse_stats_decode(const uint8_t *buf, size_t len,
    char coll[VECDB_NAME_MAX + 1], char name[VECDB_NAME_MAX + 1],
    uint32_t **indices, size_t *n);
int proto_sparse_stats_result_encode(uint64_t points, const uint64_t *df,
    size_t n, uint8_t **out, size_t *len);
/* Exactly n counts, or VECDB_EINVAL. */
int proto_sparse_stats_result_decode(const uint8_t *buf, size_t len,
    size_t n, uint64_t *points, uint64_t *df);

int proto_count_encode(const char *coll, const char *filter_json,
    uint8_t **out, size_t *len);
int proto_count_decode(const uint8_t *buf, size_t len,
    char coll[VECDB_NAME_MAX + 1], char **filter_json);

/* ===== Snapshots, payload indexes ===== */

/* SnapshotRead: a piece of a snapshot file; SnapshotData the answer. */
struct proto_snapshot_read {
	char collection[VECDB_NAME_MAX + 1];
	char name[VECDB_SNAPSHOT_NAME_MAX + 1];
	uint64_t offset;
	uint32_t max_bytes;         /* capped at PROTO_CHUNK_MAX */
};
int proto_snapshot_read_encode(const struct proto_snapshot_read *q,
    uint8_t **out, size_t *len);
int proto_snapshot_read_decode(const uint8_t *buf, size_t len,
    struct proto_snapshot_read *out);
int proto_snapshot_data_encode(const uint8_t *data, size_t n, uint64_t size,
    uint8_t **out, size_t *len);
/* *data: caller frees with vdb_free() (NULL when *n is 0). */
int proto_snapshot_data_decode(const uint8_t *buf, size_t len,
    uint8_t **data, size_t *n, uint64_t *size);

/* SnapshotUpload: data borrowed when encoding, and when decoding from the
 * unpacked message that *keep holds (free it with proto_unpacked_drop). */
struct proto_snapshot_upload {
	char collection[VECDB_NAME_MAX + 1];
	uint64_t upload;
	uint64_t offset;
	const uint8_t *data;
	size_t n;
	int last;
};
int proto_snapshot_upload_encode(const struct proto_snapshot_upload *u,
    uint8_t **out, size_t *len);
int proto_snapshot_upload_decode(const uint8_t *buf, size_t len,
    struct proto_snapshot_upload *out, void **keep);
void proto_unpacked_drop(void *keep);

/* SnapshotInfo (results of snapshot create and get). */
int proto_snapshot_info_encode(const vecdb_snapshot_info *s, uint8_t **out,
    size_t *len);
int proto_snapshot_info_decode(const uint8_t *buf, size_t len,
    vecdb_snapshot_info *out);

/* SnapshotListResult. Decoded array: free with vdb_free(). */
int proto_snapshot_list_encode(const vecdb_snapshot_info *s, size_t n,
    uint8_t **out, size_t *len);
int proto_snapshot_list_decode(const uint8_t *buf, size_t len,
    vecdb_snapshot_info **out, size_t *n);

/* PayloadIndexListResult. Decoded array: free with vdb_free(). */
int proto_pindex_list_encode(const vecdb_payload_index_info *p, size_t n,
    uint8_t **out, size_t *len);
int proto_pindex_list_decode(const uint8_t *buf, size_t len,
    vecdb_payload_index_info **out, size_t *n);

/* ===== Node ===== */

int proto_stats_encode(const vecdb_stats *s, uint8_t **out, size_t *len);
int proto_stats_decode(const uint8_t *buf, size_t len, vecdb_stats *out);

/* HealthResult. */
struct proto_health {
	char status[PROTO_TEXT_MAX + 1];   /* "ok" */
	char version[PROTO_TEXT_MAX + 1];  /* VECDB_VERSION */
	char role[PROTO_TEXT_MAX + 1];     /* primary, replica, router */
	char node_id[PROTO_TEXT_MAX + 1];
	uint64_t last_seq;                 /* last WAL sequence number */
	uint64_t term;                     /* the node's term */
	char primary[PROTO_URL_MAX + 1];   /* a replica's primary, or "" */
	uint32_t parallelism;              /* requests it runs at once: its
					      handler threads, at most one a
					      CPU it may run on; 0: unknown */
};

int proto_health_encode(const struct proto_health *h, uint8_t **out,
    size_t *len);
int proto_health_decode(const uint8_t *buf, size_t len,
    struct proto_health *out);

/* ===== Replication (proto_repl.c) ===== */

#define PROTO_REPLICA_ID_MAX 128     /* bytes of a replica id */
#define PROTO_CHUNK_MAX (64u << 20)  /* bytes of one bootstrap chunk */

/* FetchWal. */
struct proto_fetch_wal {
	uint64_t after_seq;
	uint32_t max_records;       /* 0: the server's default */
	uint64_t max_bytes;         /* 0: the server's default */
	uint32_t max_wait_ms;
	char replica_id[PROTO_REPLICA_ID_MAX + 1]; /* "" when none */
	uint64_t after_term;        /* term of its record at after_seq */
	uint64_t term;              /* the highest term it knows of */
};
int proto_fetch_wal_encode(const struct proto_fetch_wal *f, uint8_t **out,
    size_t *len);
int proto_fetch_wal_decode(const uint8_t *buf, size_t len,
    struct proto_fetch_wal *out);

/* WalBatch. records is the packed blob of storage_repl.h (borrowed when
 * encoding; owned by the decoded struct, freed by proto_wal_batch_free). */
struct proto_wal_batch {
	uint8_t *records;
	size_t records_len;
	uint32_t count;
	uint64_t last_seq;
	uint64_t oldest_seq;
	uint64_t term;
	int diverged;               /* the replica's history differs... */
	uint64_t common_seq;        /* ...after this seq (records empty) */
};
int proto_wal_batch_encode(const struct proto_wal_batch *b, uint8_t **out,
    size_t *len);
int proto_wal_batch_decode(const uint8_t *buf, size_t len,
    struct proto_wal_batch **out);
void proto_wal_batch_free(struct proto_wal_batch *b);

/* BootstrapBegin (replica_id) and BootstrapInfo. */
int proto_bootstrap_begin_encode(const char *replica_id, uint8_t **out,
    size_t *len);
int proto_bootstrap_begin_decode(const uint8_t *buf, size_t len,
    char replica_id[PROTO_REPLICA_ID_MAX + 1]);
struct proto_bootstrap_info {
	uint64_t session;
	uint64_t size;
	uint8_t sha256[32];
};
int proto_bootstrap_info_encode(const struct proto_bootstrap_info *i,
    uint8_t **out, size_t *len);
int proto_bootstrap_info_decode(const uint8_t *buf, size_t len,
    struct proto_bootstrap_info *out);

/* BootstrapChunk and BootstrapData (data: as records above). */
struct proto_bootstrap_chunk {
	uint64_t session;
	uint64_t offset;
	uint32_t max_bytes;         /* capped at PROTO_CHUNK_MAX */
};
int proto_bootstrap_chunk_encode(const struct proto_bootstrap_chunk *c,
    uint8_t **out, size_t *len);
int proto_bootstrap_chunk_decode(const uint8_t *buf, size_t len,
    struct proto_bootstrap_chunk *out);
int proto_bootstrap_data_encode(const uint8_t *data, size_t n, uint8_t **out,
    size_t *len);
/* *data: caller frees with vdb_free() (NULL when *n is 0). */
int proto_bootstrap_data_decode(const uint8_t *buf, size_t len,
    uint8_t **data, size_t *n);

#endif /* PROTO_H */
