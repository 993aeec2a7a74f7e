/*
 * hnsw.h: an in-memory HNSW index (Malkov & Yashunin, "Efficient and
 * robust approximate nearest neighbor search using Hierarchical Navigable
 * Small World graphs", 2016) over float32 vectors keyed by uint64 labels.
 *
 * Self-contained like sds.c (library vecdb_index, storage/index/, which
 * the build keeps closed): libc, pthreads, libxxhash, common/vdb.h
 * (allocation and the VECDB_* codes) and kernels.h. It never logs; every
 * failure is a return code. The storage engine keys nodes by a
 * collection's dense vector offsets, but any uint64 works.
 *
 * Layout: vectors in one arena, one 64-byte aligned row each; layer-0
 * adjacency in one flat array, [count][2*M ids] a node; upper layers in a
 * small block a node (only ~1/M of the nodes have one). Nodes are "slots"
 * numbered in insertion order; a hash maps labels to slots.
 *
 * Threading: any number of threads may search, insert and mark deleted
 * at once (hnswlib's scheme). Every list starts with a lock word: an
 * insert changes one list at a time under its spin lock (the new node's
 * own list, then each neighbour's, with the neighbour selection inside
 * the lock so that two inserts never lose each other's link), and a
 * search reads lists without locking: a read torn by a writer mixes old
 * and new links, every one of them a linked node (where a consistent copy
 * is wanted, a sequence count in the same word makes the reader retry). The insert that raises the top level
 * holds ep_mu throughout and becomes the entry point once linked; the
 * label hash, slot allocation and node states have their own mutex. A
 * node is returned by searches only once its insert has linked it (a
 * search that overlaps an insert on a graph with no dead node may return
 * it a little earlier, complete but for some links). save and validate
 * wait for inserts and deletes in flight and hold new ones off; searches
 * go on. Growth of the arrays and a reused slot's new vector take the
 * write side of an rwlock whose read side searches and linking inserts
 * hold. A search takes one of HNSW_READ_SLOTS read slots, an insert one
 * of HNSW_WRITE_SLOTS write slots, each with its own epoch-marked visited
 * array and heaps, so neither allocates per visited node.
 *
 * Quantization (quant.h): an index configured with one keeps float rows
 * until it holds train_at nodes; the insert that finds that many trains
 * the quantizer on them (inserts wait; searches go on), codes every row,
 * and from then on searches and inserts walk the graph on codes, and the
 * float rows are dropped unless always_ram keeps them. Distances are then
 * the codes' approximations: the caller rescores the best candidates with
 * the original vectors (hnsw_rescore when they are kept here).
 */
#ifndef HNSW_H
#define HNSW_H

#include <stddef.h>
#include <stdint.h>

#include "vecdb.h"

#define HNSW_FORMAT_VERSION 2 /* of the file hnsw_save writes (1: no
				 codes, still read) */
#define HNSW_TRAIN_DEFAULT 4096 /* nodes a quantized index trains on */
#define HNSW_READ_SLOTS 64    /* concurrent searches; more wait */
#define HNSW_WRITE_SLOTS 64   /* concurrent inserts; more wait */

typedef struct hnsw_index hnsw_index;

/*
 * Limits are VECDB_HNSW_{M,EFC,EF,LAYER}_{MIN,DEFAULT,MAX} from vecdb.h; a
 * 0 means the default, other values are clamped into range.
 */
typedef struct hnsw_config {
	uint32_t dim;              /* 1..VECDB_DIM_MAX */
	vecdb_metric metric;       /* cosine is served as 1 - dot of unit
				      vectors, normalised at insert */
	uint32_t m;                /* links a node on upper layers; 2*m on 0 */
	uint32_t ef_construction;  /* candidate list size while inserting */
	uint32_t ef_search;        /* default candidate list size of a search */
	uint32_t max_layer;        /* highest layer a node may reach */
	uint64_t seed;             /* level PRNG owned by the index */
	vecdb_quant_config quant;  /* type NONE: float rows only */
	uint32_t train_at;         /* nodes before quantizing; 0 means
				      HNSW_TRAIN_DEFAULT */
} hnsw_config;

/**
 * Create an empty index.
 * @param[in] cfg the configuration (copied; clamped as described above).
 * @param[out] out the index; free with hnsw_free().
 * @return VECDB_OK, VECDB_EINVAL (NULL argument, dim 0 or above
 *	VECDB_DIM_MAX, unknown metric), VECDB_ENOMEM.
 */
int hnsw_new(const hnsw_config *cfg, hnsw_index **out);

/** Free the index. No search or write may be in flight. NULL is a no-op. */
void hnsw_free(hnsw_index *h);

/**
 * Make room for @p n nodes in total so that inserts up to that count
 * allocate nothing (the arrays grow by a quarter when full otherwise).
 * @return VECDB_OK, VECDB_ENOMEM (the index is unchanged).
 * @note Thread-safe; waits for growth by concurrent inserts.
 */
int hnsw_reserve(hnsw_index *h, uint64_t n);

/**
 * Insert a vector under @p label and link it.
 * @param[in] vec dim floats, finite (the caller validates); copied.
 * @return VECDB_OK, VECDB_EEXIST (label present, deleted or not),
 *	VECDB_EINVAL (NULL), VECDB_ENOMEM (the index is unchanged), VECDB_EFULL
 *	(2^32 - 1 nodes).
 * @note Thread-safe: inserts of different labels run in parallel (two of
 *	one label: one gets VECDB_EEXIST). Searches on other threads
 *	return the node once it is linked.
 */
int hnsw_insert(hnsw_index *h, uint64_t label, const float *vec);

/**
 * Mark a node deleted: it still routes searches but is never returned.
 * A later insert takes its slot over (the most recent dead slot first).
 * A node whose insert is still linking it is retired when linked.
 * @return VECDB_OK, VECDB_ENOTFOUND (no such label, or already deleted).
 * @note Thread-safe, with inserts and searches.
 */
int hnsw_mark_deleted(hnsw_index *h, uint64_t label);

/**
 * A search filter: return 1 if @p label may be returned, 0 if not. Called
 * during traversal (non-matching nodes still route), on the searching
 * thread, with the index's read lock held: it must not call into the index.
 */
typedef int (*hnsw_filter_fn)(uint64_t label, void *arg);

typedef struct hnsw_hit {
	uint64_t label;  /* as inserted */
	float dist;      /* the metric's distance (vec_distance's definition) */
} hnsw_hit;

/**
 * The approximate k nearest live (and, with a filter, matching) nodes.
 * @param[in] query dim floats.
 * @param[in] k results wanted, >= 1.
 * @param[in] ef candidate list size; 0 means the index's ef_search. Raised
 *	to k and clamped to VECDB_HNSW_EF_MAX.
 * @param[in] filter NULL, or called for candidates (see hnsw_filter_fn).
 * @param[out] out room for k hits: ascending by dist, ties by label.
 * @param[out] n hits written (< k when fewer nodes qualify).
 * @return VECDB_OK, VECDB_EINVAL (NULL, k 0), VECDB_ENOMEM (a read slot's
 *	scratch could not grow).
 * @note Thread-safe; waits when all HNSW_READ_SLOTS slots are busy.
 */
int hnsw_search(hnsw_index *h, const float *query, uint32_t k, uint32_t ef,
    hnsw_filter_fn filter, void *arg, hnsw_hit *out, size_t *n);

/**
 * Train the quantizer now on the nodes present (not waiting for
 * train_at) and move the index onto codes. A no-op without quantization,
 * when already quantized, or when empty.
 * @return VECDB_OK, VECDB_ENOMEM, VECDB_EINVAL (the quantizer refused
 *	the config); on failure the index stays on floats for good.
 */
int hnsw_quantize(hnsw_index *h);

/** The quantization searches walk on: NONE until trained. Lock-free. */
vecdb_quant hnsw_quantized(const hnsw_index *h);

/**
 * Replace the distances of @p hits with exact ones from the float rows a
 * quantized index keeps with always_ram. Hits whose label is gone keep
 * theirs.
 * @return 1 if rescored, 0 if the index keeps no floats besides codes
 *	(or is not quantized: its distances are exact already).
 */
int hnsw_rescore(hnsw_index *h, const float *query, hnsw_hit *hits,
    size_t n);

/** Bytes of codes (with the quantizer's tables), links, and float rows. */
void hnsw_memory_parts(const hnsw_index *h, size_t *codes, size_t *links,
    size_t *originals);

/** Live (not deleted) nodes. Lock-free. */
uint64_t hnsw_count(const hnsw_index *h);

/** Nodes marked deleted. Lock-free. */
uint64_t hnsw_deleted_count(const hnsw_index *h);

/** Bytes held by the index, scratch included. */
size_t hnsw_memory(const hnsw_index *h);

/** The configuration in force (after clamping). */
void hnsw_config_get(const hnsw_index *h, hnsw_config *out);

/**
 * Save the index to @p path: written to "<path>.tmp", fsync'ed, renamed
 * over @p path, and the directory fsync'ed. The file starts with a magic
 * and HNSW_FORMAT_VERSION and ends with a 64-bit checksum (XXH64) of all
 * that precedes it.
 * @param[in] covered_seq stored as is (the WAL seq the index covers).
 * @return VECDB_OK, VECDB_EIO (the old file, if any, is untouched).
 * @note Waits for inserts and deletes in flight; new ones wait for the
 *	save; searches go on.
 */
int hnsw_save(const hnsw_index *h, const char *path, uint64_t covered_seq);

/**
 * Load an index that hnsw_save wrote. Nothing in the file is trusted: the
 * size is checked before anything is allocated, every count, level and
 * link is range-checked, and the checksum must match.
 * @param[in] expect dim, metric and m must match the file (after
 *	clamping); no level may exceed its max_layer; ef_construction and
 *	ef_search are taken from it.
 * @param[out] out the index; free with hnsw_free().
 * @param[out] covered_seq the seq given to hnsw_save (may be NULL).
 * @return VECDB_OK, VECDB_ENOTFOUND (no file), VECDB_ECORRUPT (any
 *	mismatch or damage), VECDB_EIO, VECDB_ENOMEM, VECDB_EINVAL (NULL).
 */
int hnsw_load(const char *path, const hnsw_config *expect, hnsw_index **out,
    uint64_t *covered_seq);

/**
 * Check the graph: every link in range, no self or duplicate links,
 * degrees within bounds, levels within max_layer, the entry point on the
 * top level, labels and the label hash agreeing, no list locked and no
 * node half inserted. A test hook; O(n * M^2). Waits like hnsw_save.
 * @return VECDB_OK or VECDB_ECORRUPT.
 */
int hnsw_validate(const hnsw_index *h);

#endif /* HNSW_H */
