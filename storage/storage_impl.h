/*
 * storage_impl.h: the storage module's internals, shared by storage_*.c.
 *
 * On-disk layout: one LMDB environment per data dir with six named DBs.
 * Keys are big-endian so that they sort; values are little-endian and start
 * with a format version byte.
 *
 *   catalog  name -> collection record (config, numeric collection id)
 *   points   [coll id u32][point key] -> point record
 *   offsets  [coll id u32][offset u64] -> point key
 *   wal      [seq u64] -> WAL record (term, op, body)
 *   meta     "format" | "next_coll_id" | "last_seq" | "term" |
 *            "term_start:<term, 16 hex digits>" (its first seq)
 *            | "c"[coll id u32] -> collection state
 *            | "i"[coll id u32][field] -> payload index definition
 *   pindex   [coll id u32][index id u32][value][point key] -> (empty)
 *   sparse   (sorted duplicates of 12 bytes) [coll id u32][slot u8]
 *            [index u32] -> [offset u64][value f32 LE] a point holding
 *            that index; [coll id u32][slot u8] -> [points u64 LE]
 *            [bound f32 LE] the points that have that sparse vector and
 *            the largest |value| it ever held (sign bit: a value was
 *            negative; 0 bits: unknown), MaxScore's bound
 *
 * A point key is [tag u8][value]: tag 1 + u64 for numeric ids, tag 2 + 16
 * bytes for UUIDs, so numbers sort before UUIDs and the two never collide.
 *
 * Points of every collection share one `points` DB under a collection-id
 * prefix rather than a DB each: LMDB needs its DB count fixed at open
 * (maxdbs), and a prefix costs four bytes a key. See docs/ARCHITECTURE.md.
 */
#ifndef STORAGE_IMPL_H
#define STORAGE_IMPL_H

#include <lmdb.h>
#include <jansson.h>
#include <pthread.h>
#include <stdint.h>
#include <string.h>

#include "vdb.h"
#include "vecdb.h"

#define STORAGE_FORMAT 1           /* meta "format"; bump on layout change */
#define STORAGE_REC_VERSION 1      /* first byte of every value we write */
#define STORAGE_KEY_MAX VDB_ID_KEY_MAX
#define STORAGE_PKEY_MAX (4 + STORAGE_KEY_MAX) /* with collection prefix */

/* ===== The database handle ===== */

struct writer;
struct indexer;

struct vecdb {
	char *path;              /* data dir */
	vecdb_options opts;      /* as opened; read-only afterwards */
	MDB_env *env;
	MDB_dbi catalog;         /* the named DBs */
	MDB_dbi points;
	MDB_dbi offsets;
	MDB_dbi wal;
	MDB_dbi meta;
	MDB_dbi pindex;          /* payload index entries */
	MDB_dbi sparse;          /* sparse vectors' postings (storage_sparse.c) */
	int has_sparse;          /* 0: a read-only open of a database made
				    before sparse vectors, which has none */
	int lock_fd;             /* flock'ed LOCK file; -1 when read-only */
	struct writer *writer;   /* NULL when read-only */
	struct indexer *indexer; /* the in-memory indexes */
};

/* Map an LMDB return code to a vecdb code with a message naming @p what. */
int storage_mdb_err(int mdb_rc, const char *what);
/*
 * storage_mdb_err for a failed write to db's files: ENOSPC, or an I/O
 * error (LMDB reports a short write as EIO) on a disk with less than
 * STORAGE_DISK_FULL_BYTES free, is VECDB_EFULL saying the disk is full.
 */
#define STORAGE_DISK_FULL_BYTES (16ULL << 20)
int storage_write_err(const vecdb *db, int rc, const char *what);

/* Begin a read transaction. */
int storage_read_begin(vecdb *db, MDB_txn **out);

/* ===== Point ids (storage_id.c; keys: vdb_id_key in common/) ===== */

/* A fresh v4 UUID id. */
void storage_id_generate(vecdb_id *out);

/* ===== Vectors (storage_vector.c) ===== */

size_t vec_elem_size(vecdb_vtype t);

/* Check finite components that fit @p t; message names the component. */
int vec_validate(const float *v, uint32_t dim, vecdb_vtype t);

/* Convert between float and the storage type. */
void vec_encode(const float *v, uint32_t dim, vecdb_vtype t, void *out);
void vec_decode(const void *in, uint32_t dim, vecdb_vtype t, float *out);

uint16_t vec_f32_to_f16(float f);
float vec_f16_to_f32(uint16_t h);

/* The distance of the metric (smaller is closer): the portable reference
 * the SIMD kernels are tested against. */
float vec_distance(vecdb_metric m, const float *a, const float *b,
    uint32_t dim);

/* The same distance through the best SIMD kernel: what every exact path
 * (scan, batch, recommend, discover, the WAL tail) uses, so that they all
 * agree to the bit. */
float storage_distance(vecdb_metric m, const float *a, const float *b,
    uint32_t dim);

/* ===== Catalog (storage_catalog.c) ===== */

/* A collection as the catalog keeps it. */
struct coll {
	uint32_t id;                    /* numeric id, the key prefix */
	vecdb_collection_config cfg;
};

/* Per-collection counters, kept in meta under "c"[id]. */
struct coll_state {
	uint64_t next_offset;   /* next internal offset to hand out */
	uint64_t count;         /* points */
	uint64_t bytes;         /* key + value bytes of its point records */
	uint64_t created_seq;   /* WAL seq of the record that created it */
};

#define COLL_REC_SIZE 48 /* encoded config, without the name ... */
#define VEC_REC_SIZE 33   /* a named dense vector's settings */
#define COLL_REC_MAX (COLL_REC_SIZE + 1 + VECDB_SPARSE_MAX * \
    (VECDB_NAME_MAX + 2) + 1 + VECDB_VECTORS_MAX * (1 + VECDB_NAME_MAX + \
    VEC_REC_SIZE)) /* ... and with the most named vectors */

int storage_name_check(const char *name);
/* The same rules for another kind of name (what: "sparse vector"). */
int storage_name_check_as(const char *what, const char *name);
int storage_config_check(const vecdb_collection_config *cfg);
/* A quantization config valid for a collection of this metric and dim. */
int storage_quant_check(const vecdb_quant_config *q, vecdb_metric metric,
    uint32_t dimension);
void storage_config_defaults(const vecdb *db, vecdb_collection_config *cfg);

/*
 * Vector slots: 0 is a collection's default vector, 1 + i its named dense
 * vector i. The slot of a name (NULL or "": 0; -1: no such vector), and
 * the config a slot's vector is indexed and searched by: the
 * collection's, with that vector's settings in place of the default
 * one's, and no named vectors.
 */
int storage_vector_slot(const vecdb_collection_config *c, const char *name);
void storage_vector_cfg(const vecdb_collection_config *c, int vslot,
    vecdb_collection_config *out);

/* Encode (returning its length) and decode the catalog value (config
 * without name). */
size_t storage_coll_encode(const struct coll *c, uint8_t out[COLL_REC_MAX]);
int storage_coll_decode(const char *name, const uint8_t *p, size_t len,
    struct coll *out);

/* The collection with id @p coll_id, by a catalog scan (ids are not keys):
 * VECDB_ENOTFOUND (no message) when there is none. */
int storage_coll_by_id(vecdb *db, MDB_txn *txn, uint32_t coll_id,
    struct coll *out);

/* Look up a collection in @p txn: VECDB_ENOTFOUND with a message. */
int storage_coll_find(vecdb *db, MDB_txn *txn, const char *name,
    struct coll *out);

int storage_state_get(vecdb *db, MDB_txn *txn, uint32_t id,
    struct coll_state *out);
int storage_state_put(vecdb *db, MDB_txn *txn, uint32_t id,
    const struct coll_state *st);

/* Meta u64 values. */
int storage_meta_get_u64(vecdb *db, MDB_txn *txn, const char *key,
    uint64_t *out);
int storage_meta_put_u64(vecdb *db, MDB_txn *txn, const char *key,
    uint64_t v);

/* Delete every key in @p dbi that starts with the 4-byte collection id. */
int storage_prefix_drop(vecdb *db, MDB_txn *txn, MDB_dbi dbi, uint32_t id);

/* Create / drop inside a write txn (writer thread). */
int storage_coll_create_txn(vecdb *db, MDB_txn *txn,
    const vecdb_collection_config *cfg, uint64_t seq, struct coll *out);
int storage_coll_drop_txn(vecdb *db, MDB_txn *txn, const struct coll *c);

/* A growable byte buffer (storage_buf.c). */
struct buf {
	uint8_t *p;
	size_t len;
	size_t cap;
};
/* Append bytes; VECDB_ENOMEM (b unchanged) when it cannot grow. */
int buf_put(struct buf *b, const void *p, size_t n);
int buf_put_u8(struct buf *b, uint8_t v);
int buf_put_le16(struct buf *b, uint16_t v);
int buf_put_le32(struct buf *b, uint32_t v);
void buf_fini(struct buf *b);

struct pindex_set;

/* Point keys (sorted, unique) a filter can be narrowed to: each entry is
 * [length][key bytes], zero-padded. */
struct keylist {
	uint8_t (*keys)[STORAGE_KEY_MAX + 1];
	size_t n, cap;
};
void keylist_fini(struct keylist *k);

/* ===== Point records (storage_point.c) ===== */

/*
 * Point record: [ver u8][offset u64][seq u64][dim u32][vector bytes]
 * [payload: compact JSON, the rest; empty means {}].
 */
#define POINT_HDR 21

/* One sparse vector of a point to write: normalized (indices ascending,
 * each once, values finite), owned. */
struct wsparse {
	const char *name;      /* borrowed from the caller */
	uint32_t n;
	uint32_t *idx;
	float *val;
	int remove;            /* update: drop the point's vector */
};

/* One named dense vector of a point to write (borrowed from the
 * caller); checked against the collection by the writer. */
struct wdense {
	const char *name;
	const float *data;
	uint32_t dim;
	int remove;            /* update: drop the point's vector */
};

/* A point ready to write: payload already validated and compacted. */
struct wpoint {
	vecdb_id id;
	const float *vector;   /* NULL in an update that keeps the vector */
	uint32_t dim;
	char *payload;         /* owned compact JSON; NULL: none (or keep) */
	size_t payload_len;
	struct wsparse *sparse; /* owned array */
	size_t n_sparse;
	struct wdense *dense;  /* owned array */
	size_t n_dense;
};

/* A point record as read (borrowed from the txn). */
struct rpoint {
	uint64_t offset;
	uint64_t seq;
	uint32_t dim;
	const void *vec;       /* dim elements of the collection's type, then
				  the sparse vectors' block if any */
	size_t vec_len;        /* of both */
	const char *payload;   /* not NUL-terminated */
	size_t payload_len;
};

/* ===== Sparse vectors of a point (storage_sparse.c) ===== */

/*
 * A point's vector bytes, in its record, its WAL entry and its snapshot
 * entry, are the default vector (dimension x element size) and, only when
 * the point has named vectors, a block: [len u32][n u8] n x entries in
 * ascending slot order; a sparse vector's is [slot u8][nnz u32][nnz x
 * index u32][nnz x value f32] (slot: its place in the collection's sparse
 * vectors, indices ascending, values finite), a named dense vector's
 * [0x80 | slot u8][its dimension x its element size] (slot: its place in
 * the collection's named dense vectors); len counts the bytes after it.
 * A record with the block has version byte STORAGE_REC_VERSION_EXT.
 */
#define STORAGE_REC_VERSION_EXT 2
#define XDENSE 0x80

/* One sparse vector as stored (borrowed little-endian arrays). */
struct xvec {
	uint8_t slot;
	uint32_t n;
	const uint8_t *idx_le;   /* n u32, then the values: n f32 */
	const uint8_t *val_le;
};

/* One named dense vector as stored (borrowed, the vector's type). */
struct xdvec {
	uint8_t slot;            /* 0-based: vector slot - 1 */
	const uint8_t *data;
};

struct xset {
	size_t n;
	struct xvec v[VECDB_SPARSE_MAX];
	size_t nd;
	struct xdvec d[VECDB_VECTORS_MAX];
};

/* The raw bytes of vector slot vslot (0: the default) in a point's
 * vector bytes (len of them), or NULL when the point has none. */
const void *storage_xset_vector(const struct coll *c, int vslot,
    const uint8_t *blob, size_t len);

/*
 * A filter on a stored point: its payload (parsed), and for has_id and
 * has_vector its id key (vdb_id_key's bytes, after the collection
 * prefix) and its record.
 */
struct storage_point_ctx {
	const struct coll *c;
	const struct rpoint *rp;
};
int storage_point_match(const vecdb_filter *f, const json_t *payload,
    const struct coll *c, const struct rpoint *rp, const uint8_t *key,
    size_t klen);

/* Check and split a point's vector bytes (len of them) into the dense
 * vector (the first bytes) and its sparse vectors; VECDB_ECORRUPT if
 * they do not fit collection c. */
int storage_xset_parse(const struct coll *c, const uint8_t *blob, size_t len,
    struct xset *out);
/* One stored sparse vector into arrays of x->n. */
void storage_xvec_read(const struct xvec *x, uint32_t *idx, float *val);

/* The sparse vectors a write leaves a point with. */
struct xnew {
	uint8_t slot;
	uint32_t n;
	const uint32_t *idx;     /* given ... */
	const float *val;
	const struct xvec *old;  /* ... or kept from the record */
};

/* The named dense vectors a write leaves a point with. */
struct xdnew {
	uint8_t slot;            /* 0-based */
	const float *val;        /* given ... */
	const uint8_t *old;      /* ... or kept from the record */
};

struct xlist {
	size_t n;
	struct xnew v[VECDB_SPARSE_MAX];
	size_t nd;
	struct xdnew d[VECDB_VECTORS_MAX];
	int dense_changed;       /* a named dense vector set or removed */
};

/* What write p (op how) leaves: p's vectors by name, and for an update
 * the others of old (NULL: none). VECDB_EINVAL for a name c does not
 * declare, a name twice, or remove outside an update; VECDB_EDIM for a
 * dense vector of another dimension. */
int storage_xlist_build(const struct coll *c, vecdb_write_op how,
    const struct wpoint *p, const struct xset *old, struct xlist *out);
/* Move the postings of a point's sparse vectors: remove those of old
 * (NULL: none) under old_off, add those of now (NULL: none) under
 * new_off, and count the points that have each vector (writer txn). */
int storage_sparse_postings(vecdb *db, MDB_txn *txn, const struct coll *c,
    uint64_t old_off, const struct xset *old, uint64_t new_off,
    const struct xset *now);
/* Test hook: how many of the query's lists the last vecdb_search_sparse
 * on this thread read only for candidates (MaxScore pruning). */
unsigned storage_last_sparse_pruned(void);
/* The block's bytes (0 without named vectors), and the block. */
size_t storage_xlist_size(const struct coll *c, const struct xlist *l);
void storage_xlist_write(const struct coll *c, const struct xlist *l,
    uint8_t *out);

int storage_point_decode(const struct coll *c, const MDB_val *v,
    struct rpoint *out);

/*
 * Write one point in the writer's txn (insert, upsert or update) and
 * add its final state (key, vector bytes, payload) to the WAL batch
 * (NULL: none, a restore logs only a marker).
 */
struct wal_batch;
int storage_point_put_txn(vecdb *db, MDB_txn *txn, const struct coll *c,
    struct coll_state *st, vecdb_write_op how, const struct wpoint *p,
    uint64_t seq, struct wal_batch *wal, const struct pindex_set *ix);

/* Delete one point; *found says whether it existed. */
int storage_point_del_txn(vecdb *db, MDB_txn *txn, const struct coll *c,
    struct coll_state *st, const vecdb_id *id, int *found, uint64_t *offset,
    const struct pindex_set *ix);

/*
 * Write one replicated PUT entry as the primary wrote it (same offset and
 * seq), after checking it against this database: VECDB_ECORRUPT when the
 * point's current offset is not the entry's old offset.
 */
struct wal_entry;
int storage_point_put_raw(vecdb *db, MDB_txn *txn, const struct coll *c,
    struct coll_state *st, const struct wal_entry *e, uint64_t seq,
    const struct pindex_set *ix);

/* Build the full [coll][key] LMDB key; returns its length. */
size_t storage_pkey(uint32_t coll_id, const vecdb_id *id, uint8_t *out);

/* Fill a vecdb_record from a stored point (allocates vector/payload). */
int storage_record_fill(const struct coll *c, const vecdb_id *id,
    const struct rpoint *rp, int with_payload, int with_vector,
    vecdb_record *out);

/* ===== A pool of index threads (storage_pool.c) ===== */

typedef struct storage_pool storage_pool;

/* Task i of a run, on thread `worker` (0 is the caller, then 1..n-1). */
typedef void (*storage_pool_fn)(void *arg, size_t i, unsigned worker);

/**
 * Start a pool of @p threads threads in all: the caller of
 * storage_pool_run and threads - 1 workers (none for 0 or 1).
 * @param[out] out free with storage_pool_free().
 * @return VECDB_OK, VECDB_ENOMEM (no pool; nothing left running).
 */
int storage_pool_new(unsigned threads, storage_pool **out);

/** Threads a run uses, the caller's included. */
unsigned storage_pool_threads(const storage_pool *p);

/**
 * Run fn(arg, i, worker) for every i in [0, n), spread over the caller
 * and the workers; returns when all have returned. One run at a time.
 */
void storage_pool_run(storage_pool *p, size_t n, storage_pool_fn fn,
    void *arg);

/** Stop the workers and free the pool. NULL is a no-op. */
void storage_pool_free(storage_pool *p);

/* ===== In-memory vector indexes (storage_index.c) ===== */

struct storage_topk;

/*
 * Load the checkpoints of every collection and start the indexer thread,
 * which builds what has no usable checkpoint and then follows the WAL.
 */
int storage_index_start(vecdb *db);

/* Stop the indexer; checkpoint every changed index when writable. */
void storage_index_stop(vecdb *db);

/* The writer committed records up to @p seq. */
void storage_index_notify(vecdb *db, uint64_t seq);

/*
 * Search vector vslot (storage_vector_slot) of collection c through its
 * HNSW index plus the WAL tail the index has not applied yet, pushing
 * hits into t. *used is 0 (and t untouched) when the vector has no ready
 * index: the caller scans instead.
 */
int storage_index_search(vecdb *db, MDB_txn *txn, const struct coll *c,
    int vslot, const vecdb_search_params *p, struct storage_topk *t,
    int *used);

/* indexed_count, pending_count, memory_bytes of a collection. */
int storage_index_stats(vecdb *db, MDB_txn *txn, const struct coll *c,
    vecdb_collection_stats *st);

/* Turn a collection's index flag on (delete "n"[id]) or off. */
int storage_index_flag_txn(vecdb *db, MDB_txn *txn, uint32_t coll_id, int on);

/*
 * The whole database was replaced (storage_load) and committed at @p seq:
 * drop every graph and build them again from the points.
 */
void storage_index_reset(vecdb *db, uint64_t seq);

/* Whether a collection's vector index is on (meta flag "n"[id] absent). */
int storage_index_enabled(vecdb *db, MDB_txn *txn, uint32_t coll_id,
    int *on);

/* Bytes held by all in-memory indexes. */
uint64_t storage_index_memory(vecdb *db);

/*
 * The WAL records up to this seq are not needed to bring the indexes back
 * after a restart (every graph's checkpoint covers them) nor by the
 * indexer: the writer may trim them, replicas permitting. 0 until the
 * indexer has checkpointed every graph; any thread.
 */
uint64_t storage_index_wal_floor(vecdb *db);

/*
 * A write of @p entries points was committed: count them, and wait (at
 * most a few seconds) while the indexer is too far behind. Called by the
 * writing thread after its commit, with no lock held.
 */
void storage_index_throttle(vecdb *db, size_t entries);

/* The index build counters of vecdb_stats. */
void storage_index_build_stats(vecdb *db, vecdb_stats *st);

/* ===== Writer (storage_writer.c) ===== */

/*
 * The operations of the writer thread. Each has one row in the writer's
 * table (storage_writer.c: its name, apply step and WAL record) and one
 * payload struct in struct wreq; adding an operation adds those two.
 */
enum wreq_op {
	WREQ_CREATE,
	WREQ_DROP,
	WREQ_CONFIG,         /* change a collection's quantization */
	WREQ_WRITE,          /* insert, upsert or update points */
	WREQ_DELETE,
	WREQ_RESTORE,
	WREQ_PINDEX_CREATE,
	WREQ_PINDEX_DROP,
	WREQ_INDEX,
	WREQ_REPLICATE,      /* apply raw WAL records (a replica) */
	WREQ_LOAD,           /* replace everything with a copy */
	WREQ_TERM,           /* start a new term (a promotion) */
	WREQ_OPS             /* the number of operations */
};

/* The context a request's apply step runs in (the writer thread). */
struct wctx {
	vecdb *db;
	MDB_txn *txn;        /* the request's own nested txn */
	uint64_t seq;        /* the next WAL seq to use */
	uint64_t term;
	int reset_index;     /* a LOAD replaced everything: rebuild graphs */
};

/*
 * Per-operation payloads: the caller fills the inputs (borrowed until
 * storage_writer_submit returns); "out" fields are the apply step's, for
 * the caller or for the operation's WAL record.
 */
struct wreq_create {
	const vecdb_collection_config *cfg;  /* with defaults applied */
	uint8_t rec[COLL_REC_MAX];           /* out: its catalog record */
	size_t rec_len;
};

struct wreq_drop {
	const char *coll;
	uint32_t coll_id;                    /* out: the id it had */
};

struct wreq_config {
	const char *coll;
	const vecdb_quant_config *quant;     /* the new quantization */
	uint32_t coll_id;                    /* out */
	uint8_t rec[COLL_REC_MAX];           /* out: the new catalog record */
	size_t rec_len;
};

struct wreq_write {
	const char *coll;
	vecdb_write_op how;                  /* insert, upsert or update */
	struct wpoint *pts;                  /* validated; ids assigned */
	size_t n;
};

struct wreq_delete {
	const char *coll;
	const vecdb_id *ids;
	size_t n;
	size_t deleted;                      /* out: how many existed */
};

struct wreq_restore {
	const char *coll;
	const char *path;                    /* the snapshot file */
	uint32_t coll_id;                    /* out: the new collection's id */
	uint8_t sum[32];                     /* out: the file's SHA-256 */
};

struct wreq_pindex {
	const char *coll;
	const char *field;                   /* dotted path */
	vecdb_field_schema schema;           /* PINDEX_CREATE only */
	uint32_t coll_id;                    /* out */
};

struct wreq_index {
	const char *coll;
	int on;                              /* on (and rebuild) or off */
	uint32_t coll_id;                    /* out */
};

struct wreq_replicate {
	const uint8_t *blob;                 /* packed records */
	size_t len;
	int restore;                         /* out: stopped at a RESTORE
						record */
};

struct wreq_load {
	const char *path;                    /* the copy to load */
};

struct wreq_term {
	uint64_t term;                       /* the new term */
	uint64_t start;                      /* out: its first seq */
};

/* A write request handed to the writer thread. */
struct wreq {
	enum wreq_op op;
	int check_only;                      /* validate, then roll back */
	union {                              /* the payload of op */
		struct wreq_create create;
		struct wreq_drop drop;
		struct wreq_config config;
		struct wreq_write write;
		struct wreq_delete del;
		struct wreq_restore restore;
		struct wreq_pindex pindex;   /* PINDEX_CREATE, PINDEX_DROP */
		struct wreq_index index;
		struct wreq_replicate replicate;
		struct wreq_load load;
		struct wreq_term term;
	} u;
	size_t entries;                      /* out: point entries written or
						deleted, for the indexer's
						throttle */
	int rc;                              /* out */
	char msg[512];                       /* out: detail on failure */
	int done;                            /* guarded by writer lock */
	struct wreq *next;                   /* queue link */
};

int storage_writer_start(vecdb *db);
void storage_writer_stop(vecdb *db);

/* Queue @p r, wait for its commit; returns r->rc with the message set. */
int storage_writer_submit(vecdb *db, struct wreq *r);

/*
 * Apply steps (storage_point.c, storage_catalog.c, storage_snapshot.c,
 * storage_pindex.c, storage_index.c, storage_repl.c): the change, in
 * w->txn. The writer's table then appends the operation's WAL record,
 * except for those that write their own (points: a record every ~2 KB)
 * or none (replicate, load, term).
 */
int storage_apply_points(struct wctx *w, struct wreq *r);
int storage_apply_delete(struct wctx *w, struct wreq *r);
int storage_apply_create(struct wctx *w, struct wreq *r);
int storage_apply_drop(struct wctx *w, struct wreq *r);
int storage_apply_config(struct wctx *w, struct wreq *r);
int storage_apply_restore(struct wctx *w, struct wreq *r);
int storage_apply_pindex_create(struct wctx *w, struct wreq *r);
int storage_apply_pindex_drop(struct wctx *w, struct wreq *r);
int storage_apply_index(struct wctx *w, struct wreq *r);
int storage_apply_replicated(struct wctx *w, struct wreq *r);
int storage_apply_load(struct wctx *w, struct wreq *r);
int storage_apply_term(struct wctx *w, struct wreq *r);

/* ===== Payload indexes (storage_pindex.c) ===== */

#define PINDEX_MAX 64   /* indexes per collection */

/* One payload index of a collection. */
struct pindex_def {
	uint32_t id;                         /* key prefix after coll id */
	vecdb_field_schema schema;
	char field[VECDB_FIELD_NAME_MAX + 1];
};

/* The indexes of one collection, loaded once per write request. */
struct pindex_set {
	size_t n;
	struct pindex_def defs[PINDEX_MAX];
};

int storage_pindex_load(vecdb *db, MDB_txn *txn, uint32_t coll_id,
    struct pindex_set *out);

/* EINVAL unless field is a usable dotted path and schema is known. */
int storage_field_check(const char *field, int schema);

/* Add an index on @p field (backfilled from the points) / remove one. */
int storage_pindex_create_txn(vecdb *db, MDB_txn *txn, const struct coll *c,
    vecdb_field_schema schema, const char *field);
int storage_pindex_drop_txn(vecdb *db, MDB_txn *txn, const struct coll *c,
    const char *field);

/*
 * Keep the indexes in step with a point write: remove the entries of the
 * old payload, add those of the new one (either may be NULL/empty).
 */
int storage_pindex_update(vecdb *db, MDB_txn *txn, uint32_t coll_id,
    const struct pindex_set *ix, const uint8_t *key, size_t klen,
    const char *old_pay, size_t old_len, const char *new_pay,
    size_t new_len);

/* Remove every index definition and entry of a collection. */
int storage_pindex_drop_all(vecdb *db, MDB_txn *txn, uint32_t coll_id);

/* Re-create definitions (empty) under another collection id. */
int storage_pindex_copy_defs(vecdb *db, MDB_txn *txn, uint32_t coll_id,
    const struct pindex_set *ix);

const char *storage_schema_name(vecdb_field_schema s);


/*
 * Ask the payload indexes for the points that can match @p f. When some
 * `must` term of the filter is on an indexed field and matches at most
 * @p max points, *used is 1 and @p out holds a superset of the filter's
 * matches (callers still evaluate the filter); else *used is 0.
 */
int storage_pindex_candidates(vecdb *db, MDB_txn *txn, uint32_t coll_id,
    const vecdb_filter *f, size_t max, struct keylist *out, int *used);

/* ===== Scans and ranked hits (storage_search.c) ===== */

/* A cursor over one collection's points, in id order. */
struct storage_scan {
	MDB_cursor *cur;
	const struct coll *c;
	uint8_t prefix[4];     /* the collection id, big-endian */
	MDB_val k, v;          /* current record */
	int rc;                /* 0 while positioned on a record */
	int planned;           /* walking cand, not the whole collection */
	struct keylist cand;   /* candidates from payload indexes */
	size_t ci;             /* the current candidate */
	uint8_t kbuf[STORAGE_PKEY_MAX]; /* k's bytes in planned mode */
};

/* Position on the first point with id >= start (NULL: the first). */
int storage_scan_open(vecdb *db, MDB_txn *txn, const struct coll *c,
    const vecdb_id *start, struct storage_scan *s);

/*
 * As storage_scan_open, but for a scan that only needs the points matching
 * @p f: when a payload index narrows f to few enough points, the scan
 * visits just those (in id order). Callers still evaluate f.
 */
int storage_scan_open_filtered(vecdb *db, MDB_txn *txn, const struct coll *c,
    const vecdb_id *start, const vecdb_filter *f, struct storage_scan *s);

/* Test hook: did this thread's last filtered scan walk index candidates,
 * and how many? */
int storage_last_scan_planned(size_t *candidates);

/* 1 while the cursor is on a point of the collection. */
int storage_scan_valid(const struct storage_scan *s);
void storage_scan_next(struct storage_scan *s);

/* Close the cursor; LMDB's error if the scan stopped on one. */
int storage_scan_close(struct storage_scan *s);

/* Parse the current point's payload: NULL when empty ({}); caller
 * json_decref()s it. VECDB_ECORRUPT if it is not JSON. */
int storage_scan_payload(const struct storage_scan *s,
    const struct rpoint *rp, json_t **out);

/* Does the current point's payload match @p f? (NULL: yes.) */
int storage_scan_match(const struct storage_scan *s, const struct rpoint *rp,
    const vecdb_filter *f, int *match);

/* A candidate: its ranking keys and point key (without the prefix). */
struct storage_hit {
	float dist;                     /* ascending: the record's distance */
	uint32_t rank;                  /* descending, before dist; 0 in a
					   plain search */
	uint8_t klen;                   /* bytes of key */
	uint8_t key[STORAGE_KEY_MAX];
};

/* Order by rank (descending), dist (NaN last), then id: <0 if a first. */
int storage_hit_cmp(const struct storage_hit *a, const struct storage_hit *b);

/* Sort hits best first. */
void storage_hits_sort(struct storage_hit *h, size_t n);

/* Set x's key to the scan's current point. */
void storage_hit_key(struct storage_hit *x, const struct storage_scan *s);

/* A bounded max-heap keeping the k best hits seen (h has room for k). */
struct storage_topk {
	struct storage_hit *h;          /* owned by the caller */
	size_t n, k;                    /* hits held, capacity */
};

/* Offer a hit; kept if among the k best so far. */
void storage_topk_push(struct storage_topk *t, const struct storage_hit *x);

/* Read back the records of sorted hits [from, to) into res (which has
 * room), setting each distance. */
int storage_hits_fill(vecdb *db, MDB_txn *txn, const struct coll *c,
    const struct storage_hit *h, size_t from, size_t to, int with_payload,
    int with_vector, vecdb_records *res);

/* An empty result list with room for n records; NULL (message set) on
 * failure. Free with vecdb_records_free(). */
vecdb_records *storage_records_new(size_t n);

/* Check search parameters that do not depend on the collection. */
int storage_search_params_check(const vecdb_search_params *p);

/* The WAL's records, written and read (storage_wal.c). */
#include "storage_wal.h"

#endif /* STORAGE_IMPL_H */
