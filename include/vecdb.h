/*
 * vecdb.h: the embedded vecdb API.
 *
 * A vecdb database is one directory holding an LMDB environment. It keeps
 * collections of points (an id, a vector, a JSON payload) and searches them
 * by similarity with payload filters.
 *
 * Conventions (the same for every function below):
 * - Functions return an int: VECDB_OK (0) on success, otherwise one of the
 *   vecdb_err codes. vecdb_strerror() names a code; vecdb_errmsg() gives the
 *   detail of the last failure on the calling thread ("collection 'x' not
 *   found", "vector has 3 dimensions, collection 'c' expects 4").
 * - Out-parameters come last and are written only on success.
 * - A vecdb handle is thread-safe: any number of threads may call any
 *   function on it at once. Writes from all threads are grouped into shared
 *   LMDB transactions by one writer thread (group commit); a write function
 *   returns only after its transaction has committed (and, in the default
 *   `sync` durability, reached the disk).
 * - Every write is atomic: a batch is applied whole or not at all, and a
 *   failed call changes nothing.
 * - Memory the library returns is owned by the caller and released with the
 *   matching *_free() function; memory the caller passes in is only borrowed
 *   for the duration of the call.
 */
#ifndef VECDB_H
#define VECDB_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define VECDB_VERSION "0.1.0"

/* ===== Errors ===== */

/** Error codes. 0 is success; all others are positive. */
typedef enum vecdb_err {
	VECDB_OK = 0,      /**< not an error */
	VECDB_EINVAL,      /**< invalid argument (bad name, NaN, bad filter...) */
	VECDB_EDIM,        /**< vector dimension does not match the collection */
	VECDB_ENOTFOUND,   /**< collection, point or snapshot does not exist */
	VECDB_EEXIST,      /**< collection or point already exists */
	VECDB_ELOCKED,     /**< data dir is locked by another process */
	VECDB_EREADONLY,   /**< database was opened read-only */
	VECDB_ECORRUPT,    /**< checksum mismatch or malformed file on disk */
	VECDB_EFULL,       /**< the LMDB map is full (raise map_size) */
	VECDB_ENOMEM,      /**< out of memory */
	VECDB_EIO,         /**< an operating system or LMDB I/O error */
	VECDB_ECLOSED,     /**< the database is closing */
	VECDB_EINTERNAL,   /**< a bug: please report it */
	VECDB_ETIMEDOUT,   /**< done here, but not confirmed in time (write
			        concern: not enough replicas acknowledged) */
	VECDB_EUNAVAILABLE,/**< a server or shard did not answer: not
			        reachable, or no answer in time */
	VECDB_ERR_COUNT    /**< number of codes, not a code */
} vecdb_err;

/**
 * A short static description of an error code ("not found").
 * @return a string owned by the library; never NULL.
 */
const char *vecdb_strerror(int err);

/**
 * The detail message of the last failed call on this thread.
 * @return a thread-local string, valid until the next vecdb call on this
 *	thread; "" when there is no detail.
 */
const char *vecdb_errmsg(void);

/* ===== Database ===== */

typedef struct vecdb vecdb;

/** How commits reach the disk. */
typedef enum vecdb_durability {
	VECDB_SYNC = 0,   /**< fsync at every commit: an acknowledged write
			       survives power loss (the default) */
	VECDB_BUFFERED    /**< no fsync at commit; synced every
			       sync_interval_ms and at close. Survives a
			       process crash, not a power loss. */
} vecdb_durability;

/** Options for vecdb_open(). Fill with vecdb_options_init(). */
typedef struct vecdb_options {
	vecdb_durability durability; /* VECDB_DURABILITY: sync|buffered */
	int read_only;               /* open without the write lock */
	uint64_t map_size;           /* LMDB map size in bytes (VECDB_MAP_SIZE) */
	uint32_t sync_interval_ms;   /* buffered mode flush period */
	uint32_t hnsw_m;             /* default max_connections (VECDB_HNSW_M) */
	uint32_t hnsw_ef;            /* default ef_search (VECDB_HNSW_EF) */
	uint64_t wal_retain;         /* at most this many WAL records are kept
					for replicas (VECDB_WAL_RETAIN); fewer
					once the index checkpoints and the
					replicas have them */
	uint64_t full_scan_threshold; /* collections up to this many points
					 are searched exactly
					 (VECDB_FULL_SCAN_THRESHOLD) */
	uint32_t checkpoint_interval_s; /* index checkpoint timer */
	uint32_t index_threads;      /* threads the indexer inserts with,
					its own included (VECDB_INDEX_THREADS,
					1..VECDB_INDEX_THREADS_MAX); 0: one a
					core (sysconf _SC_NPROCESSORS_ONLN).
					Committed WAL records are applied in
					batches whose inserts run in parallel
					into the same graphs; deletes and
					overwrites keep WAL order */
} vecdb_options;

#define VECDB_DEFAULT_MAP_SIZE (256ULL << 30) /* address space, not disk */
#define VECDB_DEFAULT_SYNC_INTERVAL_MS 1000
#define VECDB_DEFAULT_WAL_RETAIN 1000000
#define VECDB_DEFAULT_FULL_SCAN_THRESHOLD 10000
#define VECDB_DEFAULT_CHECKPOINT_INTERVAL_S 60
#define VECDB_INDEX_THREADS_MAX 256

/** Fill @p opts with the defaults. */
void vecdb_options_init(vecdb_options *opts);

/**
 * Apply the VECDB_* environment variables to @p opts: VECDB_DURABILITY
 * (sync|buffered), VECDB_MAP_SIZE (bytes, or with a K/M/G/T suffix),
 * VECDB_HNSW_M, VECDB_HNSW_EF, VECDB_WAL_RETAIN, VECDB_FULL_SCAN_THRESHOLD,
 * VECDB_INDEX_THREADS (0 for one a core).
 * @return VECDB_OK, or VECDB_EINVAL naming the variable with a bad value
 *	(then @p opts is unchanged).
 */
int vecdb_options_from_env(vecdb_options *opts);

/**
 * Open (creating if needed) the database in directory @p path.
 * @param[in] path the data dir; NULL means $VECDB_DATA_DIR, else "./data".
 * @param[in] opts options, or NULL for defaults plus the environment.
 * @param[out] out the handle; close it with vecdb_close().
 * @return VECDB_OK, VECDB_ELOCKED ("data dir D is locked by pid N": another
 *	process has it open for writing), VECDB_EINVAL (bad options),
 *	VECDB_ENOTFOUND (read-only open of a missing database), VECDB_ECORRUPT
 *	(not a vecdb data dir, or a newer format), VECDB_EIO.
 * @note Only one process may open a data dir for writing; any number of
 *	others may open it with read_only set, and see each commit.
 */
int vecdb_open(const char *path, const vecdb_options *opts, vecdb **out);

/**
 * Close the database: waits for writes in flight, syncs, and releases the
 * lock. No other thread may use @p db during or after the call.
 * vecdb_close(NULL) does nothing.
 */
void vecdb_close(vecdb *db);

/* Upper bounds (seconds) of the index build time histogram buckets. */
#define VECDB_BUILD_BUCKETS 10
#define VECDB_BUILD_BUCKET_BOUNDS \
	{ 0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 300 }

/** Whole-database figures. */
typedef struct vecdb_stats {
	uint64_t collections;   /* number of collections */
	uint64_t vectors;       /* points in all collections */
	uint64_t disk_bytes;    /* size of the data file */
	uint64_t memory_bytes;  /* memory held by in-memory structures */
	uint64_t last_seq;      /* sequence number of the last WAL record */
	uint64_t index_builds;  /* vector index (re)builds since open */
	double index_build_seconds; /* their total time */
	uint64_t index_build_buckets[VECDB_BUILD_BUCKETS]; /* builds per
				   bucket (not cumulative); longer ones are
				   counted in index_builds only */
	uint64_t wal_records;   /* WAL records kept (for recovery and
				   replicas; older ones are trimmed) */
} vecdb_stats;

int vecdb_stats_get(vecdb *db, vecdb_stats *out);

/* ===== Collections ===== */

#define VECDB_NAME_MAX 64           /* collection name length */
#define VECDB_DIM_MAX 65536

typedef enum vecdb_metric {
	VECDB_COSINE = 0,    /* 1 - cos(a, b) */
	VECDB_EUCLIDEAN,     /* sqrt(sum (a-b)^2) */
	VECDB_DOT,           /* -(a . b) */
	VECDB_MANHATTAN      /* sum |a-b| */
} vecdb_metric;

typedef enum vecdb_vtype {
	VECDB_FLOAT32 = 0,   /* 4 bytes a component */
	VECDB_FLOAT16,       /* 2 bytes; |x| <= 65504 */
	VECDB_UINT8          /* 1 byte; integers 0..255 */
} vecdb_vtype;

/*
 * Quantization: the index keeps compact codes of the vectors, walks its
 * graph on them, and rescores the best candidates with the original
 * vectors (read from the data file) unless the search says not to.
 */
typedef enum vecdb_quant {
	VECDB_QUANT_NONE = 0,
	VECDB_QUANT_SCALAR,  /* one byte a component */
	VECDB_QUANT_BINARY,  /* one bit a component; cosine and dot only */
	VECDB_QUANT_PRODUCT  /* one byte a segment of components */
} vecdb_quant;

/* Index limits: _MIN/_DEFAULT/_MAX. A 0 in a config means the default. */
#define VECDB_HNSW_M_MIN 2
#define VECDB_HNSW_M_DEFAULT 16
#define VECDB_HNSW_M_MAX 128
#define VECDB_HNSW_EFC_MIN 4
#define VECDB_HNSW_EFC_DEFAULT 200
#define VECDB_HNSW_EFC_MAX 4096
#define VECDB_HNSW_EF_MIN 1
#define VECDB_HNSW_EF_DEFAULT 64
#define VECDB_HNSW_EF_MAX 4096
#define VECDB_HNSW_LAYER_MIN 1
#define VECDB_HNSW_LAYER_DEFAULT 16
#define VECDB_HNSW_LAYER_MAX 64

typedef struct vecdb_index_config {
	uint32_t max_connections;  /* M; layer 0 gets 2*M */
	uint32_t ef_construction;  /* candidate list size while building */
	uint32_t ef_search;        /* default candidate list size of a search */
	uint32_t max_layer;        /* highest layer a node may reach */
} vecdb_index_config;

#define VECDB_PQ_BITS 8      /* bits a product-quantization code */

typedef struct vecdb_quant_config {
	vecdb_quant type;   /* VECDB_QUANT_* */
	float quantile;     /* scalar: share of values kept in range, (0,1] */
	int always_ram;     /* also keep the original vectors in the index's
			       memory (rescoring reads them there, not from
			       the data file); 0: only codes and links */
	uint32_t segments;  /* product: segments a vector is cut into,
			       1..dimension; 0 means ceil(dimension / 8) */
	uint32_t bits;      /* product: bits a segment's code; only
			       VECDB_PQ_BITS; 0 means it */
} vecdb_quant_config;

/*
 * Sparse vectors: (u32 index, float value) pairs, such as BM25 or SPLADE
 * term weights, searched by dot product through an inverted index. A
 * collection may declare up to VECDB_SPARSE_MAX of them by name; a point
 * carries any subset.
 */
#define VECDB_SPARSE_MAX 8

typedef enum vecdb_sparse_modifier {
	VECDB_SPARSE_PLAIN = 0, /* score: the dot product */
	VECDB_SPARSE_IDF        /* each query index weighed by its inverse
				   document frequency in the collection:
				   ln(1 + (N - n + 0.5) / (n + 0.5)) */
} vecdb_sparse_modifier;

typedef struct vecdb_sparse_config {
	char name[VECDB_NAME_MAX + 1]; /* 1-64 chars of [A-Za-z0-9_-] */
	vecdb_sparse_modifier modifier;
} vecdb_sparse_config;

/*
 * Named dense vectors: beside its default vector (dimension, metric, ...
 * below), a collection may declare up to VECDB_VECTORS_MAX more, each
 * with its own settings and its own HNSW index; a point carries any
 * subset of them, and a search names the one it uses.
 */
#define VECDB_VECTORS_MAX 4

typedef struct vecdb_vector_config {
	char name[VECDB_NAME_MAX + 1]; /* 1-64 chars of [A-Za-z0-9_-]; not
					  a sparse vector's name too */
	uint32_t dimension;            /* 1..VECDB_DIM_MAX */
	vecdb_metric metric;
	vecdb_vtype vector_type;
	vecdb_index_config index;      /* 0 fields: the defaults */
	vecdb_quant_config quantization;
} vecdb_vector_config;

typedef struct vecdb_collection_config {
	char name[VECDB_NAME_MAX + 1]; /* 1-64 chars of [A-Za-z0-9_-] */
	uint32_t dimension;            /* 1..VECDB_DIM_MAX */
	vecdb_metric metric;
	vecdb_vtype vector_type;
	vecdb_index_config index;
	vecdb_quant_config quantization;
	int64_t created_at;            /* unix seconds; set by create */
	uint32_t n_sparse;             /* named sparse vectors, ... */
	vecdb_sparse_config sparse[VECDB_SPARSE_MAX]; /* ... names unique */
	uint32_t n_vectors;            /* named dense vectors, ... */
	vecdb_vector_config vectors[VECDB_VECTORS_MAX]; /* ... names unique */
} vecdb_collection_config;

/**
 * Fill @p cfg with a float32 collection of the given name, dimension and
 * metric and default index and quantization settings. A name longer than
 * VECDB_NAME_MAX is stored truncated to an invalid (over-long) marker so
 * that create refuses it.
 */
void vecdb_collection_config_init(vecdb_collection_config *cfg,
    const char *name, uint32_t dimension, vecdb_metric metric);

/**
 * Create a collection. Index fields left 0 take the database defaults
 * (vecdb_options hnsw_m / hnsw_ef, then the VECDB_HNSW_*_DEFAULT values).
 * @return VECDB_OK, VECDB_EINVAL (bad name, dimension, metric, vector type,
 *	or a setting out of its _MIN.._MAX range), VECDB_EEXIST,
 *	VECDB_EREADONLY.
 */
int vecdb_collection_create(vecdb *db, const vecdb_collection_config *cfg);

/**
 * Set, change or remove (type VECDB_QUANT_NONE) a collection's
 * quantization. Stored at once (vecdb_collection_get shows it, with the
 * defaults filled in); the index is then rebuilt on it in the background,
 * searches going on on the old index until the new one replaces it
 * (vecdb_collection_stats quant_in_force says when). Replicas follow.
 * @return VECDB_OK, VECDB_ENOTFOUND, VECDB_EINVAL (unknown type, quantile
 *	outside (0, 1], binary on a euclidean or manhattan collection,
 *	product segments outside 1..dimension or bits other than
 *	VECDB_PQ_BITS), VECDB_EREADONLY.
 */
int vecdb_collection_set_quantization(vecdb *db, const char *name,
    const vecdb_quant_config *q);

/** Read a collection's config. @return VECDB_OK or VECDB_ENOTFOUND. */
int vecdb_collection_get(vecdb *db, const char *name,
    vecdb_collection_config *out);

/**
 * List the collection names, sorted.
 * @param[out] names an array of @p count strings; caller frees it with
 *	vecdb_names_free(names, count).
 */
int vecdb_collection_list(vecdb *db, char ***names, size_t *count);
void vecdb_names_free(char **names, size_t count);

/**
 * Delete a collection and all its points. Its snapshots are kept.
 * @return VECDB_OK, VECDB_ENOTFOUND, VECDB_EREADONLY.
 */
int vecdb_collection_delete(vecdb *db, const char *name);

/** What the background optimizer (vacuum) is doing to a collection. */
typedef enum vecdb_optimizer_status {
	VECDB_OPTIMIZER_IDLE = 0,   /* nothing */
	VECDB_OPTIMIZER_COMPACTING  /* rebuilding its index from the live
				       points, off to the side */
} vecdb_optimizer_status;

typedef struct vecdb_collection_stats {
	uint64_t vector_count;  /* points in the collection */
	uint32_t dimension;
	uint64_t disk_bytes;    /* bytes of its records in the data file */
	uint64_t memory_bytes;  /* bytes of its in-memory structures */
	uint64_t indexed_count; /* points linked into the in-memory index */
	uint64_t pending_count; /* writes and deletes committed but not yet
	                           applied to the index */
	uint64_t dead_count;    /* index nodes of deleted or overwritten
				   vectors not yet reused or vacuumed: they
				   take memory and slow searches */
	double dead_ratio;      /* dead_count / (indexed_count + dead_count);
				   0 with no index */
	vecdb_optimizer_status optimizer; /* is a compaction running */
	double optimizer_progress; /* its share done, 0..1; 0 when idle */
	uint64_t compactions;   /* compactions finished since open */
	double indexing_rate;   /* writes and deletes the indexer applied a
				   second, over the last 2 s or more; 0 when
				   it has nothing to do */
	vecdb_quant quant_in_force; /* the codes searches walk: NONE until
				   the index has trained on enough points
				   (or when the collection has none) */
	uint64_t code_bytes;    /* index memory: codes and codebooks */
	uint64_t link_bytes;    /* index memory: the graph's links */
	uint64_t original_bytes; /* index memory: float vectors kept */
	uint64_t named_indexed[VECDB_VECTORS_MAX]; /* indexed_count of each
				   named dense vector, in the config's order
				   (their memory is in memory_bytes) */
} vecdb_collection_stats;

int vecdb_collection_stats_get(vecdb *db, const char *name,
    vecdb_collection_stats *out);

/* ===== Point ids ===== */

typedef enum vecdb_id_kind {
	VECDB_ID_NONE = 0,  /* no id: the library assigns a v4 UUID */
	VECDB_ID_NUM,       /* an unsigned 64-bit integer */
	VECDB_ID_UUID       /* a UUID */
} vecdb_id_kind;

/* Numeric ids sort before UUIDs; each kind sorts by value. */
typedef struct vecdb_id {
	vecdb_id_kind kind;
	uint64_t num;       /* VECDB_ID_NUM */
	uint8_t uuid[16];   /* VECDB_ID_UUID, big-endian bytes */
} vecdb_id;

#define VECDB_ID_STRLEN 37  /* longest formatted id plus NUL */

/** A numeric id. */
vecdb_id vecdb_id_num(uint64_t n);

/**
 * Parse an id: decimal digits (a u64) or a UUID in its 36-character form.
 * @return VECDB_OK or VECDB_EINVAL.
 */
int vecdb_id_parse(const char *s, vecdb_id *out);

/** Parse a UUID only ("invalid UUID" otherwise). */
int vecdb_id_parse_uuid(const char *s, vecdb_id *out);

/** Format @p id into @p buf (decimal or lowercase UUID); returns buf. */
char *vecdb_id_format(const vecdb_id *id, char buf[VECDB_ID_STRLEN]);

/** Compare two ids in their sort order: <0, 0, >0. */
int vecdb_id_cmp(const vecdb_id *a, const vecdb_id *b);

/* ===== Points ===== */

/**
 * One named sparse vector of a point to write: n (index, value) pairs,
 * each index once (any order), values finite; n may be 0. In an update,
 * remove != 0 drops the point's vector of that name instead.
 */
typedef struct vecdb_sparse_vector {
	const char *name;         /* one of the collection's sparse vectors */
	const uint32_t *indices;
	const float *values;
	uint32_t n;
	int remove;
} vecdb_sparse_vector;

/** A point to write. All pointers are borrowed for the call. */
typedef struct vecdb_point {
	vecdb_id id;          /* VECDB_ID_NONE: assigned, written back */
	const float *vector;  /* dim components, all finite */
	uint32_t dim;
	const char *payload;  /* a JSON object, or NULL for none ({}) */
} vecdb_point;

/**
 * One named dense vector of a point to write: dim finite components (the
 * vector's dimension). In an update, remove != 0 drops it instead.
 */
typedef struct vecdb_named_vector {
	const char *name;         /* one of the collection's named vectors */
	const float *data;
	uint32_t dim;
	int remove;
} vecdb_named_vector;

/** The named vectors, sparse and dense, of one point to write
 * (vecdb_write). */
typedef struct vecdb_point_sparse {
	const vecdb_sparse_vector *v;   /* sparse */
	size_t n;
	const vecdb_named_vector *d;    /* dense */
	size_t nd;
} vecdb_point_sparse;

/** A stored point's named dense vector, as read back. */
typedef struct vecdb_named_record {
	char name[VECDB_NAME_MAX + 1];
	float *data;
	uint32_t dim;
} vecdb_named_record;

/** A stored point's sparse vector, as read back (indices ascending). */
typedef struct vecdb_sparse_record {
	char name[VECDB_NAME_MAX + 1];
	uint32_t *indices;
	float *values;
	uint32_t n;
} vecdb_sparse_record;

#define VECDB_PAYLOAD_MAX (16u << 20) /* bytes of compact JSON */
#define VECDB_PAYLOAD_DEPTH_MAX 100   /* nesting of objects and arrays */

/** A stored point, as read back. */
typedef struct vecdb_record {
	vecdb_id id;
	float *vector;        /* dim components (NULL if not requested) */
	uint32_t dim;
	char *payload;        /* compact JSON object (NULL if not requested) */
	float distance;       /* search: distance to the query; else 0 */
	uint32_t context_hits; /* discover: context pairs satisfied */
	float score;          /* sparse and fused rankings: higher is
				 better (vecdb_fuse); else 0 */
	vecdb_sparse_record *sparse; /* its sparse vectors, in the
				 collection's order (with the vector) */
	size_t n_sparse;
	vecdb_named_record *named; /* its named dense vectors, likewise */
	size_t n_named;
} vecdb_record;

/** A list of records; free with vecdb_records_free(). */
typedef struct vecdb_records {
	size_t count;
	vecdb_record *items;
	int has_next;         /* scroll: more points follow */
	vecdb_id next;        /* scroll: the id to continue from */
} vecdb_records;

void vecdb_records_free(vecdb_records *r);

/**
 * Write points. Each call is atomic: every point is validated and written,
 * or the call fails and nothing is written. Points whose id kind is
 * VECDB_ID_NONE get a fresh v4 UUID, written back into pts[i].id on
 * success.
 * - insert: fails with VECDB_EEXIST if any id exists (or repeats).
 * - upsert: creates or replaces.
 * - update: replaces the vector (if vector != NULL) and the payload (if
 *   payload != NULL) of existing points; VECDB_ENOTFOUND if any is missing.
 * @return VECDB_OK, VECDB_ENOTFOUND (collection or, for update, a point),
 *	VECDB_EDIM, VECDB_EINVAL (NaN/inf, value out of the vector type's
 *	range, payload not a JSON object, too many points), VECDB_EEXIST,
 *	VECDB_EFULL, VECDB_EREADONLY, VECDB_EIO.
 */
int vecdb_insert(vecdb *db, const char *coll, vecdb_point *pts, size_t n);
int vecdb_upsert(vecdb *db, const char *coll, vecdb_point *pts, size_t n);
int vecdb_update(vecdb *db, const char *coll, vecdb_point *pts, size_t n);

typedef enum vecdb_write_op {
	VECDB_WRITE_INSERT,
	VECDB_WRITE_UPSERT,
	VECDB_WRITE_UPDATE
} vecdb_write_op;

/**
 * Would this write succeed? Runs every check of vecdb_insert(),
 * vecdb_upsert() or vecdb_update() (collection, dimension, values, ids
 * that exist or not) in the writer's transaction, then rolls it back:
 * nothing changes and nothing reaches the WAL. A router checks a batch
 * on every shard this way before writing any part of it.
 * @return what the write would return.
 */
int vecdb_write_check(vecdb *db, const char *coll, vecdb_write_op op,
    const vecdb_point *pts, size_t n);

/**
 * Write points with their sparse vectors: as vecdb_insert(),
 * vecdb_upsert() or vecdb_update() by @p op, @p sparse[i] being the sparse
 * vectors of @p pts[i] (@p sparse NULL: none given). Insert and upsert
 * store exactly the sparse vectors given; update sets those given (or
 * removes those marked remove) and keeps the point's others. Refused
 * whole (VECDB_EINVAL) for a name the collection does not declare, a
 * name twice in one point, an index twice in one vector, a value that is
 * not finite, or remove outside an update.
 * @p check_only != 0 checks as vecdb_write_check() does.
 */
int vecdb_write(vecdb *db, const char *coll, vecdb_write_op op,
    vecdb_point *pts, const vecdb_point_sparse *sparse, size_t n,
    int check_only);

#define VECDB_BATCH_MAX 100000  /* points (or ids) in one write call */

/**
 * Delete points. Ids that do not exist are skipped.
 * @param[out] deleted how many points existed and were deleted (may be NULL)
 * @return VECDB_OK, VECDB_ENOTFOUND (collection), VECDB_EINVAL, ...
 */
int vecdb_delete(vecdb *db, const char *coll, const vecdb_id *ids,
    size_t n, size_t *deleted);

/**
 * Read one point, with its vector and payload.
 * @param[out] out the record; free with vecdb_record_free().
 * @return VECDB_OK, VECDB_ENOTFOUND (collection or point).
 */
int vecdb_get(vecdb *db, const char *coll, const vecdb_id *id,
    vecdb_record **out);
void vecdb_record_free(vecdb_record *r);

/* ===== Filters ===== */

typedef struct vecdb_filter vecdb_filter;

/**
 * Compile a JSON filter:
 *   {"must": [c...], "should": [c...], "must_not": [c...]}
 * where a condition c is one of
 *   {"key": "a.b", "match": {"value": "s" | 1 | true}}
 *   {"key": k, "match": {"any": [v...]}}      value is one of the list
 *   {"key": k, "match": {"except": [v...]}}   value is none of the list
 *   {"key": k, "range": {"gt"|"gte"|"lt"|"lte": number, ...}}
 *   {"key": k, "geo_radius": {"center": {"lat": x, "lon": y},
 *                             "radius": metres}}
 *   {"nested": {"key": k, "filter": F}}  some object in array k matches F
 *   F                                   a filter, as a condition
 * Dotted keys reach into nested objects (and into objects inside arrays).
 * When the value at a key is an array, a condition holds if it holds for
 * one of its elements. A condition on a missing key is false.
 * @param[out] out the compiled filter; free with vecdb_filter_free().
 * @return VECDB_OK or VECDB_EINVAL with a message that says where.
 */
int vecdb_filter_parse(const char *json, vecdb_filter **out);
void vecdb_filter_free(vecdb_filter *f);

/* ===== Search, scroll, count ===== */

#define VECDB_LIMIT_MAX 100000  /* limit + offset of one search */

typedef struct vecdb_search_params {
	const float *vector;         /* the query, dim components */
	uint32_t dim;
	uint32_t limit;              /* results wanted (>= 1) */
	uint32_t offset;             /* results skipped first */
	const vecdb_filter *filter;  /* NULL: every point */
	uint32_t ef_search;          /* 0: the collection's default */
	int exact;                   /* force exact (brute-force) search */
	int with_payload;
	int with_vector;
	/* Quantized collections (ignored by the others): */
	int quant_ignore;            /* rank on the original vectors only:
					every candidate the walk keeps (ef)
					is rescored */
	int quant_no_rescore;        /* answer with the codes' approximate
					distances, read nothing */
	float oversampling;          /* rescore the best oversampling x
					limit candidates; 0 means 1, else
					1..VECDB_OVERSAMPLING_MAX */
	const char *using;           /* a named dense vector of the
					collection; NULL or "": the default
					one. Points without it are not
					found. */
} vecdb_search_params;

#define VECDB_OVERSAMPLING_MAX 100.0f

/**
 * Find the points nearest to a vector, by the collection's metric,
 * ascending by distance, ties broken by id.
 * @param[out] out the hits (distance set); free with vecdb_records_free().
 * @return VECDB_OK, VECDB_ENOTFOUND, VECDB_EDIM, VECDB_EINVAL.
 */
int vecdb_search(vecdb *db, const char *coll, const vecdb_search_params *p,
    vecdb_records **out);

/**
 * Page through the points in id order, starting at @p start (inclusive;
 * NULL or kind VECDB_ID_NONE for the first). At most @p limit points that
 * match @p filter; out->has_next and out->next say where to continue.
 * All points present for a whole scroll are returned exactly once.
 */
int vecdb_scroll(vecdb *db, const char *coll, const vecdb_id *start,
    uint32_t limit, const vecdb_filter *filter, int with_payload,
    int with_vector, vecdb_records **out);

/**
 * Run several searches in one read transaction and one pass over the
 * collection. @p out receives @p n result lists (an array the caller frees
 * with vecdb_records_free_array(out, n)). Fails whole if any one is bad.
 */
int vecdb_search_batch(vecdb *db, const char *coll,
    const vecdb_search_params *params, size_t n, vecdb_records ***out);
void vecdb_records_free_array(vecdb_records **r, size_t n);

/* ===== Sparse search ===== */

typedef struct vecdb_sparse_search_params {
	const char *name;            /* the collection's sparse vector */
	const uint32_t *indices;     /* the query: n pairs, each index once */
	const float *values;         /* (any order), values finite */
	uint32_t n;
	uint32_t limit;              /* results wanted (>= 1) */
	uint32_t offset;             /* results skipped first */
	const vecdb_filter *filter;  /* NULL: every point */
	int with_payload;
	int with_vector;
	int weighted;                /* values already carry their weights:
					no IDF here (a router weighs by
					the whole collection's counts) */
} vecdb_sparse_search_params;

/**
 * Find the points whose sparse vector @p p->name scores highest against
 * the query: the sum over the indices they share of query value x stored
 * value, each index weighed by its IDF when the vector's modifier is
 * idf. Only points sharing at least one index with the query are
 * returned, by descending score (the record's score; its distance is
 * -score), ties by id. Exact: it reads the posting lists of the query's
 * indices, kept in the same transactions as the points (MaxScore skips
 * the parts of them that cannot change the answer).
 * @return VECDB_OK, VECDB_ENOTFOUND (collection), VECDB_EINVAL (a name
 *	the collection does not declare, a repeated index, a value not
 *	finite, limit 0 or limit + offset over VECDB_LIMIT_MAX).
 */
int vecdb_search_sparse(vecdb *db, const char *coll,
    const vecdb_sparse_search_params *p, vecdb_records **out);

/**
 * What an IDF weight counts: the points that have sparse vector @p name
 * (*points) and, for each of the n indices, how many of them hold it
 * (df[i]). A router sums them over its shards.
 * @return VECDB_OK, VECDB_ENOTFOUND, VECDB_EINVAL (an unknown name).
 */
int vecdb_sparse_stats(vecdb *db, const char *coll, const char *name,
    const uint32_t *indices, size_t n, uint64_t *points, uint64_t *df);

/* ===== Fusing two rankings (hybrid search) ===== */

typedef enum vecdb_fusion {
	VECDB_FUSION_RRF = 0,        /* reciprocal rank fusion */
	VECDB_FUSION_RELATIVE_SCORE, /* min-max normalised, weighted sum */
	VECDB_FUSION_DBSF            /* distribution-based score fusion */
} vecdb_fusion;

#define VECDB_FUSION_ALPHA_DEFAULT 0.7f
#define VECDB_FUSION_RRF_K_DEFAULT 60.0f

typedef struct vecdb_fusion_params {
	vecdb_fusion method;
	uint32_t limit;   /* hits wanted (>= 1) */
	float alpha;      /* relative_score: the first list's weight, in
			     [0, 1]; the second's is 1 - alpha */
	float rrf_k;      /* rrf: the rank constant (>= 0) */
} vecdb_fusion_params;

/** method rrf, limit 10, alpha and rrf_k their defaults. */
void vecdb_fusion_params_init(vecdb_fusion_params *p);

/**
 * Fuse two rankings of points (a dense and a sparse search's, say) into
 * one. Each list is ordered best first, its items' score fields higher
 * is better; either may be NULL or empty. A point's fused score:
 * - rrf: the sum over the lists that hold it of 1 / (rrf_k + rank),
 *   rank counted from 1;
 * - relative_score: each list's scores min-max normalised to [0, 1] (a
 *   list whose scores are all equal gives each 1), then alpha x first +
 *   (1 - alpha) x second, a list without the point adding 0;
 * - dbsf: each list's scores normalised as (s - (mean - 3 sd)) / (6 sd),
 *   sd the population standard deviation (0 sd gives 0.5), clipped to
 *   [0, 1], then summed.
 * out: at most limit records by descending fused score (its score field;
 * distance copied from the point's first list), ties by ascending id;
 * vector and payload copied from the first list that holds the point.
 * A point listed twice in one list counts at its first place.
 * @return VECDB_OK, VECDB_EINVAL (limit 0, alpha or rrf_k out of range,
 *	an unknown method), VECDB_ENOMEM.
 */
int vecdb_fuse(const vecdb_records *first, const vecdb_records *second,
    const vecdb_fusion_params *p, vecdb_records **out);

/* ===== Recommend and discover ===== */

typedef enum vecdb_reco_strategy {
	VECDB_RECO_AVERAGE_VECTOR = 0, /* search 2*avg(pos) - avg(neg) */
	VECDB_RECO_BEST_SCORE          /* best similarity to a positive,
					  penalised when a negative wins */
} vecdb_reco_strategy;

/*
 * Examples are given as ids (looked up in the collection) and/or as raw
 * vectors (row-major, dim floats each: what a router sends a shard after it
 * fetched the examples itself). Points named in positive/negative or in
 * exclude are never returned.
 */
typedef struct vecdb_recommend_params {
	const vecdb_id *positive;        /* example ids */
	size_t n_positive;
	const vecdb_id *negative;
	size_t n_negative;
	const float *positive_vectors;   /* example vectors */
	size_t n_positive_vectors;
	const float *negative_vectors;
	size_t n_negative_vectors;
	uint32_t dim;                    /* of the example vectors */
	const vecdb_id *exclude;         /* more ids never to return */
	size_t n_exclude;
	vecdb_reco_strategy strategy;
	uint32_t limit;
	uint32_t offset;
	const vecdb_filter *filter;
	uint32_t ef_search;
	int with_payload;
	int with_vector;
	const char *using;               /* the named dense vector examples
					    and candidates are compared by;
					    NULL or "": the default one */
} vecdb_recommend_params;

/**
 * Recommend points like the positives and unlike the negatives. At least
 * one positive (id or vector) is needed. average_vector ranks by the
 * collection's distance to 2*avg(positive) - avg(negative) (avg(positive)
 * when there are no negatives). best_score ranks by
 * distance = -score, where with dp / dn the smallest distance to any
 * positive / negative: score = sigmoid(-dp) when dp <= dn, else
 * -sigmoid(-dn); so every candidate closer to a positive than to all
 * negatives ranks before every candidate that is not.
 * @return VECDB_OK, VECDB_ENOTFOUND (collection or an example id: the
 *	message names it), VECDB_EINVAL, VECDB_EDIM.
 */
int vecdb_recommend(vecdb *db, const char *coll,
    const vecdb_recommend_params *p, vecdb_records **out);

typedef struct vecdb_context_pair {
	vecdb_id positive;
	vecdb_id negative;
} vecdb_context_pair;

typedef struct vecdb_discover_params {
	int has_target;                  /* 0: context only */
	vecdb_id target;                 /* target id (kind NONE: use vector) */
	const float *target_vector;
	const vecdb_context_pair *context;   /* pairs given by id */
	size_t n_context;
	const float *context_vectors;    /* pairs given as vectors: 2*dim each,
					    positive then negative */
	size_t n_context_vectors;
	uint32_t dim;
	const vecdb_id *exclude;
	size_t n_exclude;
	uint32_t limit;
	uint32_t offset;
	const vecdb_filter *filter;
	int with_payload;
	int with_vector;
	const char *using;               /* as vecdb_recommend_params */
} vecdb_discover_params;

/**
 * Discover: rank points by how many context pairs they satisfy (closer to
 * the pair's positive than to its negative; record field context_hits),
 * descending, then by distance to the target, ascending (the record's
 * distance). Without a target the second key is the sum over pairs of
 * d(point, positive) - d(point, negative). Example points (target and
 * context ids) are not returned.
 */
int vecdb_discover(vecdb *db, const char *coll,
    const vecdb_discover_params *p, vecdb_records **out);

/** Count the points matching @p filter (NULL: all). */
int vecdb_count(vecdb *db, const char *coll, const vecdb_filter *filter,
    uint64_t *out);

/* ===== Vector indexes ===== */

/*
 * Every collection gets an in-memory HNSW index, built after each commit by
 * an indexer thread; points committed but not yet indexed are still found
 * (searched exactly), so results never lag behind writes. Collections of at
 * most full_scan_threshold points are searched exactly regardless.
 */

/**
 * Rebuild a collection's vector index from its points (dropping the nodes
 * of deleted and overwritten points), or turn it back on after
 * vecdb_index_delete(). Returns once the request is committed; the build
 * runs in the background (vecdb_index_sync() waits for it).
 * @return VECDB_OK, VECDB_ENOTFOUND, VECDB_EREADONLY.
 */
int vecdb_index_rebuild(vecdb *db, const char *coll);

/**
 * Start compacting a collection's vector index: a background thread
 * rebuilds the graph from the live points off to the side (dropping the
 * nodes of deleted points that no insert has reused: dead_count), catches
 * up with the writes made meanwhile and swaps it in. Searches and writes
 * go on throughout, over the old graph until the swap. The same runs on
 * its own when a graph's dead_ratio passes 0.2 (and it has at least 1,000
 * dead nodes). The points themselves hold no garbage: LMDB reuses freed
 * pages, and the WAL is trimmed to what the index checkpoints and the
 * replicas need.
 * @return VECDB_OK once it is queued (vecdb_collection_stats: optimizer,
 *	optimizer_progress, compactions show how it goes; a collection whose
 *	index is off or not built yet is left as it is), VECDB_ENOTFOUND,
 *	VECDB_EINVAL (bad name), VECDB_ECLOSED.
 * @note Works on read-only handles too: only memory changes.
 */
int vecdb_compact(vecdb *db, const char *coll);

/**
 * Drop a collection's vector index (and its checkpoint) and keep it off,
 * across restarts, until vecdb_index_rebuild(): searches are exact.
 */
int vecdb_index_delete(vecdb *db, const char *coll);

/** *out = 1 if the collection's vector index is on. */
int vecdb_index_has(vecdb *db, const char *coll, int *out);

/**
 * Wait until the indexer has applied every write committed before the
 * call (pending_count 0), at most @p timeout_ms.
 * @return VECDB_OK, VECDB_EIO on timeout ("index still behind").
 */
int vecdb_index_sync(vecdb *db, uint32_t timeout_ms);

/* ===== Payload indexes ===== */

typedef enum vecdb_field_schema {
	VECDB_FIELD_KEYWORD = 0, /* strings */
	VECDB_FIELD_INTEGER,     /* numbers */
	VECDB_FIELD_FLOAT,       /* numbers */
	VECDB_FIELD_BOOL,        /* true / false */
	VECDB_FIELD_GEO          /* {"lat": .., "lon": ..} */
} vecdb_field_schema;

#define VECDB_FIELD_NAME_MAX 255

/**
 * Index a payload field (a dotted path, as in filters) so that searches and
 * counts whose filter has a selective `must` condition on it read only the
 * matching points instead of scanning the collection. The index is built
 * from the existing points in the same transaction and kept up to date by
 * every write. Integer and float fields both index every number at the
 * path (as filters compare numbers as doubles).
 * @return VECDB_OK, VECDB_EEXIST (already indexed), VECDB_ENOTFOUND,
 *	VECDB_EINVAL (bad field name or schema).
 */
int vecdb_payload_index_create(vecdb *db, const char *coll, const char *field,
    vecdb_field_schema schema);

/** Drop a payload index. @return VECDB_OK, VECDB_ENOTFOUND. */
int vecdb_payload_index_delete(vecdb *db, const char *coll, const char *field);

typedef struct vecdb_payload_index_info {
	char field[VECDB_FIELD_NAME_MAX + 1];
	vecdb_field_schema schema;
	uint64_t entries;            /* indexed values */
} vecdb_payload_index_info;

/** The payload indexes of a collection, by field; caller frees *out. */
int vecdb_payload_index_list(vecdb *db, const char *coll,
    vecdb_payload_index_info **out, size_t *count);

/* ===== Snapshots ===== */

#define VECDB_SNAPSHOT_NAME_MAX 128

typedef struct vecdb_snapshot_info {
	char name[VECDB_SNAPSHOT_NAME_MAX + 1];    /* <collection>_<unix time> */
	char collection[VECDB_NAME_MAX + 1];
	int64_t created_at;                        /* unix seconds */
	uint64_t size_bytes;                       /* size of the file */
	uint64_t vector_count;
	char checksum[65];                         /* SHA-256, lowercase hex */
} vecdb_snapshot_info;

/**
 * Write a snapshot of a collection: a consistent copy taken in one read
 * transaction, to <data dir>/snapshots/<collection>/<name>.snapshot, with
 * its SHA-256 in the file's trailer and in a .json metadata file beside it.
 * @param[out] out its metadata (may be NULL).
 */
int vecdb_snapshot_create(vecdb *db, const char *coll,
    vecdb_snapshot_info *out);

/**
 * As vecdb_snapshot_create(), named @p name (1..128 of [A-Za-z0-9_-];
 * NULL: <collection>_<unix time>). VECDB_EEXIST if that name is taken.
 * A router names the snapshots of every shard alike this way.
 */
int vecdb_snapshot_create_named(vecdb *db, const char *coll,
    const char *name, vecdb_snapshot_info *out);

/** The snapshots of a collection, oldest first; caller frees *out. */
int vecdb_snapshot_list(vecdb *db, const char *coll,
    vecdb_snapshot_info **out, size_t *count);

int vecdb_snapshot_get(vecdb *db, const char *coll, const char *name,
    vecdb_snapshot_info *out);

int vecdb_snapshot_delete(vecdb *db, const char *coll, const char *name);

/**
 * Write the path of a snapshot file into @p buf (for streaming it out).
 * @return VECDB_OK, VECDB_ENOTFOUND, VECDB_EINVAL (buffer too small).
 */
int vecdb_snapshot_path(vecdb *db, const char *coll, const char *name,
    char *buf, size_t len);

/**
 * Replace the contents (and config) of collection @p coll with a snapshot,
 * creating the collection if it does not exist. The file's checksum and
 * every record are verified before anything is written; a corrupted file
 * is refused with VECDB_ECORRUPT and the live collection is untouched. The
 * swap is one transaction.
 */
int vecdb_snapshot_restore(vecdb *db, const char *coll, const char *name);

/** As vecdb_snapshot_restore(), from any snapshot file (an upload). */
int vecdb_snapshot_restore_file(vecdb *db, const char *coll,
    const char *path);

#ifdef __cplusplus
}
#endif

#endif /* VECDB_H */
