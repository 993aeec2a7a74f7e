/*
 * sparse.h: an in-memory inverted index over sparse vectors (u32 index ->
 * f32 value pairs, such as BM25 or SPLADE term weights) keyed by uint64
 * labels, searched by dot product.
 *
 * Self-contained like hnsw.h (library vecdb_index): libc, pthreads, libm
 * and vecdb_common. It never logs; every failure is a return code.
 *
 * Layout: each label has a slot; each index present in some vector has a
 * posting list, an array of (slot, value) in insertion order. A search
 * walks the lists of the query's indices only, adding query value x
 * stored value into one accumulator a slot, and keeps the best k slots
 * that share at least one index with the query.
 *
 * Removal and replacement are lazy: the old slot is marked dead, and its
 * postings are skipped by searches until a compaction (run by the write
 * that finds dead postings outnumbering live ones) drops them from every
 * list and frees the slots.
 *
 * IDF: an index built with idf weighs each query index i by
 *	ln(1 + (N - n + 0.5) / (n + 0.5))
 * where N is the number of live labels and n the number of live labels
 * whose vector has index i, both as of the search.
 *
 * Threading: searches hold the read side of an rwlock and may run at
 * once; puts, removes and compactions hold the write side.
 */
#ifndef SPARSE_H
#define SPARSE_H

#include <stddef.h>
#include <stdint.h>

typedef struct sparse_index sparse_index;

/* A sparse vector: n (index, value) pairs, indices strictly ascending
 * (sparse_normalize makes them so), values finite. n may be 0. */
typedef struct sparse_vec {
	const uint32_t *indices;
	const float *values;
	uint32_t n;
} sparse_vec;

#define SPARSE_NNZ_MAX 65536u /* pairs in one vector */

/*
 * Sort n pairs by index, in place, and check them: VECDB_EINVAL naming
 * the first repeated index, non-finite value or a count over
 * SPARSE_NNZ_MAX (with a message for vecdb_errmsg()).
 */
int sparse_normalize(uint32_t *indices, float *values, uint32_t n);

/* A new empty index; idf != 0 weighs query indices by IDF (above). */
int sparse_new(int idf, sparse_index **out);
void sparse_free(sparse_index *s);

/* Set label's vector (replacing any it had); v as sparse_normalize
 * leaves it (VECDB_EINVAL otherwise). */
int sparse_put(sparse_index *s, uint64_t label, const sparse_vec *v);

/* Remove label's vector; *found (may be NULL) says whether it had one. */
int sparse_remove(sparse_index *s, uint64_t label, int *found);

/* Whether label has a vector here. */
int sparse_has(sparse_index *s, uint64_t label);

/* Live labels. */
size_t sparse_count(sparse_index *s);

/* Bytes held (slots, lists, postings, hash tables, search scratch). */
size_t sparse_memory(sparse_index *s);

/* Postings held, live and dead (what a compaction would drop). */
void sparse_postings(sparse_index *s, size_t *live, size_t *dead);

/* Drop dead postings now (writes also do it on their own). */
int sparse_compact(sparse_index *s);

/* A filter: nonzero keeps the label. */
typedef int (*sparse_accept_fn)(void *arg, uint64_t label);

typedef struct sparse_hit {
	uint64_t label;
	float score;
} sparse_hit;

/*
 * The best k labels by score = sum over shared indices of (IDF weight x)
 * query value x stored value, descending, ties by ascending label; only
 * labels sharing at least one index with q, and (accept non-NULL) that
 * accept keeps; accept is called only for labels that would enter the
 * best k. q as sparse_normalize leaves it. out holds k hits; *n_out is
 * how many were found.
 */
int sparse_search(sparse_index *s, const sparse_vec *q, size_t k,
    sparse_accept_fn accept, void *arg, sparse_hit *out, size_t *n_out);

/* The score of one stored vector against q, as a search computes it
 * (without IDF: the plain dot product of two normalized vectors). */
float sparse_dot(const sparse_vec *a, const sparse_vec *b);

#endif /* SPARSE_H */
