/*
 * hnsw.c: the in-memory HNSW index. See hnsw.h for the contract, the
 * layout and the locking.
 *
 * Sections: configuration and memory, the label hash, read slots and
 * scratch, heaps, distances, search (Algorithms 2 and 5 of the paper),
 * neighbour selection (Algorithm 4), insert (Algorithm 1) as a lock-free
 * prepare and a short locked commit, deletes and figures, validation, and
 * persistence.
 */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define XXH_STATIC_LINKING_ONLY
#include <xxhash.h>

#include "hnsw.h"
#include "kernels.h"
#include "quant.h"
#include "vdb.h"

#define ROW_ALIGN 64           /* bytes; every vector row starts on a line */
#define NO_SLOT UINT32_MAX     /* "none" in a uint32 slot field */
#define MAX_SLOTS (UINT32_MAX - 1)

/* A (distance, slot) pair in the heaps and candidate lists. */
struct cand {
	float d;       /* internal distance (see dist_op) */
	uint32_t id;   /* slot */
};

/* A binary heap of cands; the comparison is the caller's. */
struct heap {
	struct cand *a;   /* entries */
	size_t n;         /* in use */
	size_t cap;       /* allocated */
};

/* Per-search state, owned by one read slot (or by the writer). */
struct scratch {
	uint16_t *visited;   /* epoch marks, one a slot */
	size_t vcap;         /* entries in visited */
	uint16_t epoch;      /* mark of the current search; never 0 */
	struct heap cands;   /* min-heap: nodes to expand */
	struct heap res;     /* max-heap: the best ef accepted so far */
	uint32_t *nb;        /* a list copied out (list_read) */
	uint32_t *ids;       /* unvisited neighbours of one expansion */
	float *dists;        /* their distances */
	hnsw_hit *hits;      /* results being sorted */
	size_t hcap;         /* entries in hits */
	float *q;            /* the query, normalised (cosine) */
	void *qb;            /* quantized: the query as quant_prepare made
				it (an insert's: its node's) */
	size_t qbcap;        /* bytes in qb */
	float *tmp;          /* quantized: 2 * dim floats of scratch */
};

/* An insert's state: its node and the lists it is building. */
struct plan {
	uint32_t slot;       /* the new node */
	uint32_t level;      /* its top layer */
	int reuse;           /* slot is a deleted node's, taken over */
	uint32_t *old;       /* reuse: its lists before, layer l at
				old + l * (1 + m0); max_layer + 1 layers */
	uint32_t *list;      /* one list being built: [count][ids] */
	struct cand *pool;   /* candidates of one selection (efc) */
	struct cand *pool2;  /* one list's candidates (2 * m0 + 1) */
};

/* A slot: a search (or an insert) owns it from start to end. */
struct rslot {
	atomic_int busy;     /* 1 while a thread holds it */
	struct scratch s;    /* guarded by busy */
	struct plan p;       /* write slots only; guarded by busy */
	_Atomic uint64_t linking; /* write slots: the node this insert is
				     linking, as INFLIGHT(slot, level), or 0;
				     read by the other inserts */
} __attribute__((aligned(64)));

/* A write slot's linking word: slot, level and a valid bit. */
#define INFLIGHT(slot, level) \
	((uint64_t) (slot) | (uint64_t) (level) << 32 | 1ULL << 63)

/*
 * A node's state, one byte a slot (h->deleted). Searches return only
 * NODE_LIVE nodes; inserts link to anything but a dead or doomed one.
 */
#define NODE_LIVE 0
#define NODE_DEAD 1     /* marked deleted (the saved format's 1) */
#define NODE_LINKING 2  /* an insert is making its links */
#define NODE_DOOMED 4   /* deleted while linking: dead once linked */

/*
 * The first word of every list: its count, and the list's lock, a spin
 * lock for writers and a sequence count for readers. A writer takes
 * LW_LOCKED for the whole read-select-write of the list, but sets
 * LW_WRITING only while it copies the new list in; readers copy a list
 * without any lock and retry when LW_WRITING was set or the version moved
 * meanwhile. So a search never waits for a neighbour selection, only for
 * a 33-word copy (a search expanding a list reads it in place: see
 * gather). In the list's own word, not an array beside the lists, which
 * would be one more cache miss a visited node.
 */
#define LW_COUNT 0x3ffu      /* links in the list (m0 <= 256) */
#define LW_WRITING 0x400u
#define LW_LOCKED 0x800u
#define LW_VERSION 0x1000u   /* the version counts from here up */

#define EP_NONE UINT64_MAX   /* h->ep of an empty index */

struct hnsw_index {
	/* Fixed at creation. */
	hnsw_config cfg;           /* clamped */
	uint32_t m0;               /* 2 * m: layer-0 degree */
	size_t vstride;            /* floats a vector row */
	size_t ls0;                /* uint32 a layer-0 list: 1 + m0 */
	size_t ls;                 /* uint32 an upper list: 1 + m */
	double ml;                 /* level multiplier 1 / ln(m) */
	const kern_ops *kern;      /* the SIMD level in use */
	kern_op op;                /* L2SQ, DOT or L1 */
	kern_batch_fn batch;       /* kern->batch[op] */
	kern_dist_fn dist;         /* kern->dist[op][float32] */
	int negate;                /* dot and cosine order by -dot */
	uint32_t train_at;         /* quantized: nodes the codes wait for */

	/*
	 * The locks, in the order they are taken: ilock, map_mu, lock,
	 * ep_mu, then one node's link lock at a time (never two).
	 */
	pthread_rwlock_t ilock;    /* read side: insert, mark_deleted,
				      reserve; write side: save, validate,
				      which need a graph nobody changes */
	pthread_mutex_t map_mu;    /* the label hash, slot allocation and
				      node states (see below) */
	pthread_rwlock_t lock;     /* read side: searches and inserts while
				      they link; write side: growth and a
				      reused slot's new vector */
	pthread_mutex_t ep_mu;     /* held by the insert raising the top */

	/* Reallocated under map_mu and the write side of lock, so read under
	 * either. A slot's row, label, level and upper block are written by
	 * its insert before any link to it is published (or, on a reuse,
	 * under the write side of lock); lists under their link lock. */
	float *vecs;               /* arena, cap rows of vstride floats;
				      NULL once quantized without always_ram */
	void *vecs_raw;            /* its allocation (vecs is aligned in it) */
	quant *qz;                 /* the quantizer once trained, else NULL;
				      set under ilock and lock, both written */
	uint8_t *codes;            /* quantized: cap codes of cstride bytes */
	void *codes_raw;           /* its allocation */
	size_t cstride;            /* bytes a code row */
	int floats_on;             /* vecs is kept (not quantized, or
				      always_ram) */
	atomic_int quantized;      /* qz is set (for lock-free checks) */
	atomic_int train_failed;   /* training failed: stay on floats */
	uint32_t *links0;          /* cap lists of ls0 */
	uint32_t **upper;          /* per slot: level lists of ls, or NULL */
	uint64_t *labels;          /* per slot */
	uint8_t *levels;           /* per slot */
	uint8_t *deleted;          /* per slot NODE_*; atomic byte access,
				      changed under map_mu */
	uint64_t cap;              /* slots allocated */
	_Atomic uint64_t ep;       /* entry slot | its level << 32; EP_NONE
				      when empty; raised under ep_mu */
	_Atomic size_t upper_bytes; /* held by the upper blocks */
	_Atomic uint64_t n;        /* slots handed out (map_mu) */
	_Atomic uint64_t n_deleted; /* of them dead */
	_Atomic uint64_t n_linking; /* of them being linked */

	/* Guarded by map_mu. */
	uint32_t *free;            /* deleted slots an insert may take over */
	size_t nfree, free_cap;    /* in free; allocated */
	uint64_t *map_keys;        /* label hash: keys */
	uint32_t *map_vals;        /* slot + 1; 0 is empty */
	size_t map_cap;            /* power of two */
	uint64_t rng;              /* level PRNG state */

	/* Read slots (searches) and write slots (inserts). Separate, so that
	 * an insert holding a slot while it waits for growth never keeps a
	 * search, which holds the read side of lock, from a slot. */
	struct rslot slots[HNSW_READ_SLOTS];
	struct rslot wslots[HNSW_WRITE_SLOTS];
	pthread_mutex_t slot_mu;   /* with slot_cv: waiting for a slot */
	pthread_cond_t slot_cv;
	atomic_int slot_waiters;   /* threads waiting on slot_cv */
	_Atomic size_t scratch_bytes; /* held by all scratch */
};

/* ===== Configuration and memory ===== */

/* v, with 0 meaning def, clamped into [lo, hi]. */
static uint32_t
clamp_u32(uint32_t v, uint32_t def, uint32_t lo, uint32_t hi)
{
	if (v == 0)
		v = def;
	return v < lo ? lo : v > hi ? hi : v;
}

/* The configuration as the index will use it. */
static void
config_clamp(const hnsw_config *in, hnsw_config *out)
{
	*out = *in;
	out->m = clamp_u32(in->m, VECDB_HNSW_M_DEFAULT, VECDB_HNSW_M_MIN,
	    VECDB_HNSW_M_MAX);
	out->ef_construction = clamp_u32(in->ef_construction,
	    VECDB_HNSW_EFC_DEFAULT, VECDB_HNSW_EFC_MIN, VECDB_HNSW_EFC_MAX);
	out->ef_search = clamp_u32(in->ef_search, VECDB_HNSW_EF_DEFAULT,
	    VECDB_HNSW_EF_MIN, VECDB_HNSW_EF_MAX);
	out->max_layer = clamp_u32(in->max_layer, VECDB_HNSW_LAYER_DEFAULT,
	    VECDB_HNSW_LAYER_MIN, VECDB_HNSW_LAYER_MAX);
}

/* Grow *p to n bytes; on failure *p is unchanged. */
static int
grow_array(void *pp, size_t n)
{
	void **p = pp;
	void *q = vdb_realloc(*p, n);

	if (q == NULL)
		return VECDB_ENOMEM;
	*p = q;
	return VECDB_OK;
}

/*
 * Grow the vector arena to cap rows. realloc of a large block is an
 * mremap on glibc (no copy, no second resident copy), which is why the
 * arena is not aligned_alloc'ed: the 64-byte alignment is kept by hand,
 * moving the rows when the block's alignment changed.
 */
static int
grow_rows(void **rawp, void **basep, size_t row, uint64_t old_cap,
    uint64_t cap)
{
	size_t old_off = *rawp ?
	    (size_t) ((char *) *basep - (char *) *rawp) : 0;
	void *raw = *rawp;

	if (grow_array(&raw, cap * row + ROW_ALIGN) != VECDB_OK)
		return VECDB_ENOMEM;
	size_t off = (ROW_ALIGN - (uintptr_t) raw % ROW_ALIGN) % ROW_ALIGN;
	if (off != old_off && old_cap > 0)
		memmove((char *) raw + off, (char *) raw + old_off,
		    old_cap * row);
	*rawp = raw;
	*basep = (char *) raw + off;
	return VECDB_OK;
}

/* Grow the arenas in use (floats, codes) to cap rows. */
static int
grow_arena(hnsw_index *h, uint64_t old_cap, uint64_t cap)
{
	if (h->floats_on && grow_rows(&h->vecs_raw,
	    (void **) &h->vecs, h->vstride * sizeof(float), old_cap,
	    cap) != VECDB_OK)
		return VECDB_ENOMEM;
	if (h->qz != NULL && grow_rows(&h->codes_raw, (void **) &h->codes,
	    h->cstride, old_cap, cap) != VECDB_OK)
		return VECDB_ENOMEM;
	return VECDB_OK;
}

static int visited_grow(hnsw_index *h, struct scratch *s, uint64_t cap);

/*
 * Grow every per-slot array to cap slots, and the visited marks of every
 * write slot in use: an insert sizes its scratch when it takes a slot
 * number, so that nothing can fail once it links. Caller holds map_mu and
 * the write lock (or owns the index, as the loader does).
 */
static int
grow_locked(hnsw_index *h, uint64_t cap)
{
	uint64_t old = h->cap;

	if (cap > (uint64_t) MAX_SLOTS + 1)
		cap = (uint64_t) MAX_SLOTS + 1;
	if (cap <= old)
		return VECDB_OK;
	if (grow_arena(h, old, cap) != VECDB_OK ||
	    grow_array(&h->links0, cap * h->ls0 * sizeof(uint32_t)) ||
	    grow_array(&h->upper, cap * sizeof(uint32_t *)) ||
	    grow_array(&h->labels, cap * sizeof(uint64_t)) ||
	    grow_array(&h->levels, cap) || grow_array(&h->deleted, cap))
		return VECDB_ENOMEM;
	for (int i = 0; i < HNSW_WRITE_SLOTS; i++)
		if (h->wslots[i].s.ids != NULL &&
		    visited_grow(h, &h->wslots[i].s, cap) != VECDB_OK)
			return VECDB_ENOMEM;
	/* A fresh slot's layer-0 list is zeroed when an insert claims it
	 * (claim_fresh): zeroing the whole growth here would make a half
	 * of the capacity resident that may never be used. */
	memset(h->upper + old, 0, (cap - old) * sizeof(uint32_t *));
	memset(h->deleted + old, 0, cap - old);
	h->cap = cap;
	return VECDB_OK;
}

/* grow_locked under the write lock; caller holds map_mu. */
static int
grow(hnsw_index *h, uint64_t cap)
{
	pthread_rwlock_wrlock(&h->lock);
	int rv = grow_locked(h, cap);
	pthread_rwlock_unlock(&h->lock);
	return rv;
}

/* Vector row of a slot. */
static inline float *
row(const hnsw_index *h, uint32_t slot)
{
	return h->vecs + (size_t) slot * h->vstride;
}

/* Code row of a slot (quantized). */
static inline uint8_t *
code(const hnsw_index *h, uint32_t slot)
{
	return h->codes + (size_t) slot * h->cstride;
}

/* What a distance to the slot reads: its code, or its float row. */
static inline const void *
vec_of(const hnsw_index *h, uint32_t slot)
{
	return h->qz ? (const void *) code(h, slot) : (const void *) row(h, slot);
}

/* The [count][ids] list of a slot on a layer. */
static inline uint32_t *
links(const hnsw_index *h, uint32_t slot, uint32_t layer)
{
	if (layer == 0)
		return h->links0 + (size_t) slot * h->ls0;
	return h->upper[slot] + (size_t) (layer - 1) * h->ls;
}

/* Pick the kernels of the metric. */
static void
setup_kernels(hnsw_index *h)
{
	h->kern = kern_ops_best();
	switch (h->cfg.metric) {
	case VECDB_EUCLIDEAN:
		h->op = KERN_L2SQ;
		break;
	case VECDB_MANHATTAN:
		h->op = KERN_L1;
		break;
	default:
		h->op = KERN_DOT;
		h->negate = 1;
	}
	h->batch = h->kern->batch[h->op];
	h->dist = h->kern->dist[h->op][VECDB_FLOAT32];
}

/* Initialise the locks; 0 on success. */
static int
init_locks(hnsw_index *h)
{
	pthread_rwlockattr_t a;
	int rc;

	/* Writer preference: a steady stream of searches must not starve
	 * the indexer (glibc's default prefers readers). */
	pthread_rwlockattr_init(&a);
	pthread_rwlockattr_setkind_np(&a,
	    PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
	rc = pthread_rwlock_init(&h->lock, &a);
	if (rc == 0 && (rc = pthread_rwlock_init(&h->ilock, &a)) != 0)
		pthread_rwlock_destroy(&h->lock);
	pthread_rwlockattr_destroy(&a);
	if (rc != 0)
		return -1;
	pthread_mutex_init(&h->map_mu, NULL);
	pthread_mutex_init(&h->ep_mu, NULL);
	pthread_mutex_init(&h->slot_mu, NULL);
	pthread_cond_init(&h->slot_cv, NULL);
	return 0;
}

int
hnsw_new(const hnsw_config *cfg, hnsw_index **out)
{
	hnsw_index *h;

	if (cfg == NULL || out == NULL || cfg->dim == 0 ||
	    cfg->dim > VECDB_DIM_MAX || (unsigned) cfg->metric > VECDB_MANHATTAN ||
	    (unsigned) cfg->quant.type > VECDB_QUANT_PRODUCT)
		return VECDB_EINVAL;
	if ((h = vdb_calloc(1, sizeof(*h))) == NULL)
		return VECDB_ENOMEM;
	config_clamp(cfg, &h->cfg);
	h->m0 = 2 * h->cfg.m;
	h->vstride = (h->cfg.dim + 15) & ~(size_t) 15;
	h->ls0 = 1 + h->m0;
	h->ls = 1 + h->cfg.m;
	h->ml = 1.0 / log((double) h->cfg.m);
	h->rng = h->cfg.seed ^ 0x9e3779b97f4a7c15ULL;
	h->train_at = h->cfg.train_at ? h->cfg.train_at : HNSW_TRAIN_DEFAULT;
	h->floats_on = 1;
	atomic_init(&h->ep, EP_NONE);
	setup_kernels(h);
	if (init_locks(h) != 0) {
		vdb_free(h);
		return VECDB_ENOMEM;
	}
	*out = h;
	return VECDB_OK;
}

/* Free a scratch's buffers. */
static void
scratch_free(struct scratch *s)
{
	vdb_free(s->visited);
	vdb_free(s->cands.a);
	vdb_free(s->res.a);
	vdb_free(s->ids);
	vdb_free(s->nb);
	vdb_free(s->dists);
	vdb_free(s->hits);
	vdb_free(s->q);
	vdb_free(s->qb);
	vdb_free(s->tmp);
}

/* Free the insert plan's buffers. */
static void
plan_free(struct plan *p)
{
	vdb_free(p->old);
	vdb_free(p->list);
	vdb_free(p->pool);
	vdb_free(p->pool2);
}

void
hnsw_free(hnsw_index *h)
{
	if (h == NULL)
		return;
	for (uint64_t i = 0; i < h->cap; i++)
		vdb_free(h->upper[i]);
	vdb_free(h->vecs_raw);
	vdb_free(h->codes_raw);
	quant_free(h->qz);
	vdb_free(h->links0);
	vdb_free(h->upper);
	vdb_free(h->labels);
	vdb_free(h->levels);
	vdb_free(h->deleted);
	vdb_free(h->map_keys);
	vdb_free(h->map_vals);
	vdb_free(h->free);
	for (int i = 0; i < HNSW_READ_SLOTS; i++)
		scratch_free(&h->slots[i].s);
	for (int i = 0; i < HNSW_WRITE_SLOTS; i++) {
		scratch_free(&h->wslots[i].s);
		plan_free(&h->wslots[i].p);
	}
	pthread_rwlock_destroy(&h->lock);
	pthread_rwlock_destroy(&h->ilock);
	pthread_mutex_destroy(&h->map_mu);
	pthread_mutex_destroy(&h->ep_mu);
	pthread_mutex_destroy(&h->slot_mu);
	pthread_cond_destroy(&h->slot_cv);
	vdb_free(h);
}

int
hnsw_reserve(hnsw_index *h, uint64_t n)
{
	if (h == NULL)
		return VECDB_EINVAL;
	pthread_rwlock_rdlock(&h->ilock);
	pthread_mutex_lock(&h->map_mu);
	int rv = n > h->cap ? grow(h, n) : VECDB_OK;
	pthread_mutex_unlock(&h->map_mu);
	pthread_rwlock_unlock(&h->ilock);
	return rv;
}

void
hnsw_config_get(const hnsw_index *h, hnsw_config *out)
{
	*out = h->cfg;
}

/* ===== Label hash (map_mu) ===== */

/* Home bucket of a label. */
static inline size_t
map_home(const hnsw_index *h, uint64_t label)
{
	return (size_t) ((label * 0x9e3779b97f4a7c15ULL) >> 17) &
	    (h->map_cap - 1);
}

/* The slot of a label, or NO_SLOT. */
static uint32_t
map_find(const hnsw_index *h, uint64_t label)
{
	if (h->map_cap == 0)
		return NO_SLOT;
	for (size_t i = map_home(h, label);; i = (i + 1) & (h->map_cap - 1)) {
		if (h->map_vals[i] == 0)
			return NO_SLOT;
		if (h->map_keys[i] == label)
			return h->map_vals[i] - 1;
	}
}

/* Add label -> slot; the label is absent and there is room. */
static void
map_put(hnsw_index *h, uint64_t label, uint32_t slot)
{
	size_t i = map_home(h, label);

	while (h->map_vals[i] != 0)
		i = (i + 1) & (h->map_cap - 1);
	h->map_keys[i] = label;
	h->map_vals[i] = slot + 1;
}

/* Remove a label (backward-shift deletion: no tombstones, so lookups
 * stay as short as in a table that never had it). */
static void
map_del(hnsw_index *h, uint64_t label)
{
	size_t mask = h->map_cap - 1, i, j;

	if (h->map_cap == 0)
		return;
	for (i = map_home(h, label); h->map_keys[i] != label; i = (i + 1) & mask)
		if (h->map_vals[i] == 0)
			return;
	if (h->map_vals[i] == 0)
		return;
	for (j = i;;) {
		j = (j + 1) & mask;
		if (h->map_vals[j] == 0)
			break;
		size_t k = map_home(h, h->map_keys[j]);
		/* j stays if its home lies cyclically in (i, j]. */
		if (i <= j ? (i < k && k <= j) : (i < k || k <= j))
			continue;
		h->map_keys[i] = h->map_keys[j];
		h->map_vals[i] = h->map_vals[j];
		i = j;
	}
	h->map_vals[i] = 0;
}

/* Make room for `want` labels at load <= 1/2 (rehashing). */
static int
map_reserve(hnsw_index *h, uint64_t want)
{
	size_t cap = h->map_cap ? h->map_cap : 64;

	while (cap < 2 * want)
		cap *= 2;
	if (cap == h->map_cap)
		return VECDB_OK;
	uint64_t *keys = vdb_malloc(cap * sizeof(uint64_t));
	uint32_t *vals = vdb_calloc(cap, sizeof(uint32_t));
	if (keys == NULL || vals == NULL) {
		vdb_free(keys);
		vdb_free(vals);
		return VECDB_ENOMEM;
	}
	uint64_t *ok = h->map_keys;
	uint32_t *ov = h->map_vals;
	size_t ocap = h->map_cap;
	h->map_keys = keys;
	h->map_vals = vals;
	h->map_cap = cap;
	for (size_t i = 0; i < ocap; i++)
		if (ov[i] != 0)
			map_put(h, ok[i], ov[i] - 1);
	vdb_free(ok);
	vdb_free(ov);
	return VECDB_OK;
}

/* ===== Read slots and scratch ===== */

/* Grow a heap to hold at least n entries. */
static int
heap_reserve(hnsw_index *h, struct heap *hp, size_t n)
{
	if (hp->cap >= n)
		return VECDB_OK;
	size_t cap = hp->cap ? hp->cap : 64;
	while (cap < n)
		cap *= 2;
	if (grow_array(&hp->a, cap * sizeof(struct cand)) != VECDB_OK)
		return VECDB_ENOMEM;
	atomic_fetch_add(&h->scratch_bytes, (cap - hp->cap) *
	    sizeof(struct cand));
	hp->cap = cap;
	return VECDB_OK;
}

/* Size a visited array to cap slots. */
static int
visited_grow(hnsw_index *h, struct scratch *s, uint64_t cap)
{
	if (s->vcap >= cap)
		return VECDB_OK;
	if (grow_array(&s->visited, cap * sizeof(uint16_t)) != VECDB_OK)
		return VECDB_ENOMEM;
	/* Old marks are all below the next epoch; new ones must be too. */
	memset(s->visited + s->vcap, 0, (cap - s->vcap) * sizeof(uint16_t));
	atomic_fetch_add(&h->scratch_bytes, (cap - s->vcap) * 2);
	s->vcap = cap;
	return VECDB_OK;
}

/* Size the visited array to the index's capacity. */
static int
visited_fit(hnsw_index *h, struct scratch *s)
{
	return visited_grow(h, s, h->cap);
}

/* Allocate the fixed-size parts of a scratch on first use. */
static int
scratch_init(hnsw_index *h, struct scratch *s)
{
	if (s->ids != NULL)
		return VECDB_OK;
	s->dists = vdb_malloc((h->m0 + 1) * sizeof(float));
	s->q = vdb_malloc(h->vstride * sizeof(float));
	s->nb = vdb_malloc((h->m0 + 1) * sizeof(uint32_t));
	s->ids = vdb_malloc((h->m0 + 1) * sizeof(uint32_t));
	if (s->ids == NULL || s->nb == NULL || s->dists == NULL ||
	    s->q == NULL) {
		vdb_free(s->ids);
		vdb_free(s->nb);
		vdb_free(s->dists);
		vdb_free(s->q);
		s->ids = s->nb = NULL;
		s->dists = s->q = NULL;
		return VECDB_ENOMEM;
	}
	atomic_fetch_add(&h->scratch_bytes, (h->m0 + 1) * 12 +
	    h->vstride * sizeof(float));
	return VECDB_OK;
}

/* The query buffers of a quantized index (sized once it has trained);
 * caller holds lock or ilock, so the quantizer cannot appear meanwhile. */
static int
scratch_quant(hnsw_index *h, struct scratch *s)
{
	if (h->qz == NULL || s->qbcap >= quant_query_size(h->qz))
		return VECDB_OK;
	size_t n = quant_query_size(h->qz);
	void *qb = vdb_malloc(n);
	float *tmp = s->tmp ? s->tmp :
	    vdb_malloc(2 * (size_t) h->cfg.dim * sizeof(float));

	if (qb == NULL || tmp == NULL) {
		vdb_free(qb);
		if (tmp != s->tmp)
			vdb_free(tmp);
		return VECDB_ENOMEM;
	}
	atomic_fetch_add(&h->scratch_bytes, n - s->qbcap +
	    (s->tmp ? 0 : 2 * (size_t) h->cfg.dim * sizeof(float)));
	vdb_free(s->qb);
	s->qb = qb;
	s->qbcap = n;
	s->tmp = tmp;
	return VECDB_OK;
}

/* Make a scratch ready for a search with this ef. */
static int
scratch_fit(hnsw_index *h, struct scratch *s, uint32_t ef)
{
	if (scratch_init(h, s) != VECDB_OK || visited_fit(h, s) != VECDB_OK ||
	    heap_reserve(h, &s->res, ef + 1) != VECDB_OK ||
	    heap_reserve(h, &s->cands, 2 * (size_t) ef + h->m0) != VECDB_OK)
		return VECDB_ENOMEM;
	if (s->hcap < ef) {
		if (grow_array(&s->hits, ef * sizeof(hnsw_hit)) != VECDB_OK)
			return VECDB_ENOMEM;
		atomic_fetch_add(&h->scratch_bytes, (ef - s->hcap) *
		    sizeof(hnsw_hit));
		s->hcap = ef;
	}
	return scratch_quant(h, s);
}

/* A fresh visited mark: epochs wrap after 65535 searches. */
static inline uint16_t
next_epoch(struct scratch *s)
{
	if (++s->epoch == 0) {
		memset(s->visited, 0, s->vcap * sizeof(uint16_t));
		s->epoch = 1;
	}
	return s->epoch;
}

/* Try to take a free slot of the n in a, starting at *hint. */
static struct rslot *
slot_try(struct rslot *a, unsigned n, unsigned *hint)
{
	for (unsigned i = 0; i < n; i++) {
		unsigned j = (*hint + i) % n;
		int z = 0;
		if (atomic_load_explicit(&a[j].busy,
		    memory_order_relaxed) == 0 &&
		    atomic_compare_exchange_strong(&a[j].busy, &z, 1)) {
			*hint = j;
			return &a[j];
		}
	}
	return NULL;
}

/*
 * Take a read slot, waiting when all are busy. The waiter count and the
 * busy flags are sequentially consistent, so either a releaser sees the
 * waiter or the waiter's rescan sees the freed slot.
 */
static struct rslot *
slot_acquire(hnsw_index *h, int write)
{
	static _Thread_local unsigned hint, whint;
	struct rslot *a = write ? h->wslots : h->slots;
	unsigned n = write ? HNSW_WRITE_SLOTS : HNSW_READ_SLOTS;
	unsigned *ph = write ? &whint : &hint;
	struct rslot *rs;

	if ((rs = slot_try(a, n, ph)) != NULL)
		return rs;
	pthread_mutex_lock(&h->slot_mu);
	atomic_fetch_add(&h->slot_waiters, 1);
	while ((rs = slot_try(a, n, ph)) == NULL)
		pthread_cond_wait(&h->slot_cv, &h->slot_mu);
	atomic_fetch_sub(&h->slot_waiters, 1);
	pthread_mutex_unlock(&h->slot_mu);
	return rs;
}

/* Give a read slot back. */
static void
slot_release(hnsw_index *h, struct rslot *rs)
{
	atomic_store(&rs->busy, 0);
	if (atomic_load(&h->slot_waiters) > 0) {
		pthread_mutex_lock(&h->slot_mu);
		pthread_cond_broadcast(&h->slot_cv);
		pthread_mutex_unlock(&h->slot_mu);
	}
}

/* ===== Heaps ===== */

/* Push onto the min-heap of candidates (room was reserved or grows). */
static inline int
cand_push(hnsw_index *h, struct heap *hp, float d, uint32_t id)
{
	if (hp->n == hp->cap && heap_reserve(h, hp, hp->n + 1) != VECDB_OK)
		return VECDB_ENOMEM;
	struct cand *a = hp->a;
	size_t i = hp->n++;
	while (i > 0) {
		size_t p = (i - 1) / 2;
		if (a[p].d <= d)
			break;
		a[i] = a[p];
		i = p;
	}
	a[i] = (struct cand) { d, id };
	return VECDB_OK;
}

/* Remove the nearest candidate. */
static inline void
cand_pop(struct heap *hp)
{
	struct cand *a = hp->a, last = a[--hp->n];
	size_t i = 0, n = hp->n;

	for (;;) {
		size_t c = 2 * i + 1;
		if (c >= n)
			break;
		if (c + 1 < n && a[c + 1].d < a[c].d)
			c++;
		if (last.d <= a[c].d)
			break;
		a[i] = a[c];
		i = c;
	}
	a[i] = last;
}

/* Push onto the max-heap of results (room for ef + 1 is reserved). */
static inline void
res_push(struct heap *hp, float d, uint32_t id)
{
	struct cand *a = hp->a;
	size_t i = hp->n++;

	while (i > 0) {
		size_t p = (i - 1) / 2;
		if (a[p].d >= d)
			break;
		a[i] = a[p];
		i = p;
	}
	a[i] = (struct cand) { d, id };
}

/* Remove the farthest result. */
static inline void
res_pop(struct heap *hp)
{
	struct cand *a = hp->a, last = a[--hp->n];
	size_t i = 0, n = hp->n;

	for (;;) {
		size_t c = 2 * i + 1;
		if (c >= n)
			break;
		if (c + 1 < n && a[c + 1].d > a[c].d)
			c++;
		if (last.d >= a[c].d)
			break;
		a[i] = a[c];
		i = c;
	}
	a[i] = last;
}

/* ===== Distances ===== */

/*
 * Internally distances are "smaller is closer" and cheap: squared L2,
 * L1, or -dot for dot and cosine (cosine vectors are unit length, so
 * 1 - dot orders as -dot). to_metric turns them into the metric's value.
 */
/*
 * A query q is the float query (normalised for cosine) on a float index,
 * and quant_prepare's form of it on a quantized one.
 */
static inline float
dist1(const hnsw_index *h, const void *q, uint32_t slot)
{
	if (h->qz != NULL)
		return quant_dist(h->qz, q, code(h, slot));
	float d = h->dist(q, row(h, slot), h->cfg.dim);

	return h->negate ? -d : d;
}

/* Distances from q to the nodes ids[0..n) into out. */
static inline void
dist_batch(const hnsw_index *h, const void *q, const uint32_t *ids,
    size_t n, float *out)
{
	if (h->qz != NULL) {
		quant_dist_batch(h->qz, q, h->codes, h->cstride, ids, n, out);
		return;
	}
	h->batch(q, h->vecs, h->vstride, h->cfg.dim, ids, n, out);
	if (h->negate)
		for (size_t i = 0; i < n; i++)
			out[i] = -out[i];
}

/* Distance between two nodes (neighbour selection); tmp is the
 * scratch's (2 * dim floats, used by product codes). */
static inline float
dist_nodes(const hnsw_index *h, float *tmp, uint32_t a, uint32_t b)
{
	if (h->qz != NULL)
		return quant_dist_codes(h->qz, code(h, a), code(h, b), tmp);
	return dist1(h, row(h, a), b);
}

/* The metric's distance from an internal one. */
static inline float
to_metric(const hnsw_index *h, float d)
{
	switch (h->cfg.metric) {
	case VECDB_EUCLIDEAN:
		return sqrtf(d);
	case VECDB_COSINE:
		return 1.0f + d;
	default:
		return d;
	}
}

/* ===== Search ===== */

/* What a search may return. */
struct accept {
	hnsw_filter_fn filter;  /* NULL: everything */
	void *arg;              /* for filter */
	uint8_t reject;         /* node states (NODE_*) that may not */
};

/* A node's state (NODE_*). Acquire: a search that sees a reused slot
 * live also sees its new label. */
static inline uint8_t
node_state(const hnsw_index *h, uint32_t slot)
{
	return atomic_load_explicit((_Atomic uint8_t *) &h->deleted[slot],
	    memory_order_acquire);
}

/* 1 if slot may enter the results. */
static inline int
accepted(const hnsw_index *h, const struct accept *a, uint32_t slot)
{
	/* No load when nothing is rejected: the state array is one more
	 * cache miss a candidate. */
	if (a->reject && (node_state(h, slot) & a->reject))
		return 0;
	return a->filter == NULL || a->filter(h->labels[slot], a->arg);
}

/*
 * Copy a node's list on a layer into out (room for m0); returns its
 * count. Lock-free: retried while a writer copies a list in (see LW_*).
 * The list words are read with acquire so that the closing read of the
 * lock word cannot move above them (a fence would do, but ThreadSanitizer
 * does not model fences); on x86 both are plain loads.
 */
static inline uint32_t
list_read(const hnsw_index *h, uint32_t slot, uint32_t layer, uint32_t *out)
{
	_Atomic uint32_t *ll = (_Atomic uint32_t *) links(h, slot, layer);
	uint32_t max = layer ? h->cfg.m : h->m0;

	for (;;) {
		uint32_t v1 = atomic_load_explicit(&ll[0], memory_order_acquire);
		if (__builtin_expect(v1 & LW_WRITING, 0)) {
			sched_yield();
			continue;
		}
		uint32_t cnt = v1 & LW_COUNT;
		if (cnt > max)
			cnt = max; /* cannot happen; keeps out in bounds */
		for (uint32_t j = 0; j < cnt; j++)
			out[j] = atomic_load_explicit(&ll[1 + j],
			    memory_order_acquire);
		uint32_t v2 = atomic_load_explicit(&ll[0], memory_order_relaxed);
		if (__builtin_expect(((v1 ^ v2) & ~LW_LOCKED) == 0, 1))
			return cnt;
	}
}

/*
 * Mark and collect the unvisited neighbours in a node's list, prefetching
 * their rows so that they load while the visited marks are being
 * checked. The list is read in place, without list_read's retry: a read
 * torn by a concurrent writer mixes old and new links, each of them a
 * node with its row in place (acquire loads: the row was written before
 * the link), which is all a search needs, as in hnswlib; so the hottest
 * loop of searches and inserts copies nothing.
 */
static inline size_t
gather(const hnsw_index *h, struct scratch *s, uint32_t slot,
    uint32_t layer, uint16_t mark)
{
	_Atomic uint32_t *ll = (_Atomic uint32_t *) links(h, slot, layer);
	uint32_t max = layer ? h->cfg.m : h->m0, cnt;
	size_t m = 0;

	cnt = atomic_load_explicit(&ll[0], memory_order_acquire) & LW_COUNT;
	if (cnt > max)
		cnt = max;
	for (uint32_t j = 1; j <= cnt; j++)
		__builtin_prefetch(&s->visited[atomic_load_explicit(&ll[j],
		    memory_order_relaxed)], 1, 3);
	for (uint32_t j = 1; j <= cnt; j++) {
		uint32_t id = atomic_load_explicit(&ll[j], memory_order_acquire);
		if (s->visited[id] == mark)
			continue;
		s->visited[id] = mark;
		__builtin_prefetch(vec_of(h, id), 0, 3);
		s->ids[m++] = id;
	}
	return m;
}

/* Offer the distances of one expansion to the heaps; returns the new
 * bound (the farthest result once there are ef). */
static inline int
offer(hnsw_index *h, struct scratch *s, size_t m, uint32_t ef,
    const struct accept *acc, float *bound)
{
	for (size_t i = 0; i < m; i++) {
		float d = s->dists[i];
		uint32_t id = s->ids[i];
		if (s->res.n >= ef && d >= *bound)
			continue;
		if (cand_push(h, &s->cands, d, id) != VECDB_OK)
			return VECDB_ENOMEM;
		if (!accepted(h, acc, id))
			continue;
		res_push(&s->res, d, id);
		if (s->res.n > ef)
			res_pop(&s->res);
		*bound = s->res.a[0].d;
	}
	return VECDB_OK;
}

/*
 * Algorithm 2 from paper (SEARCH-LAYER): the ef nearest accepted nodes
 * to q on a layer, left in s->res. Nodes that are not accepted (deleted,
 * filtered out) still enter the candidate queue, so they route.
 */
static int
search_layer(hnsw_index *h, struct scratch *s, const void *q, uint32_t ep,
    uint32_t layer, uint32_t ef, const struct accept *acc)
{
	uint16_t mark = next_epoch(s);
	float d = dist1(h, q, ep), bound = INFINITY;

	s->cands.n = s->res.n = 0;
	s->visited[ep] = mark;
	cand_push(h, &s->cands, d, ep); /* reserved: cannot fail */
	if (accepted(h, acc, ep)) {
		res_push(&s->res, d, ep);
		bound = d;
	}
	while (s->cands.n > 0) {
		struct cand c = s->cands.a[0];
		if (c.d > bound && s->res.n >= ef)
			break;
		cand_pop(&s->cands);
		size_t m = gather(h, s, c.id, layer, mark);
		dist_batch(h, q, s->ids, m, s->dists);
		if (offer(h, s, m, ef, acc, &bound) != VECDB_OK)
			return VECDB_ENOMEM;
		if (s->cands.n > 0)
			__builtin_prefetch(links(h, s->cands.a[0].id, layer));
	}
	return VECDB_OK;
}

/* 1 if a node is being linked: its lists below the layer it was found
 * on may not be written yet. */
static inline int
linking(const hnsw_index *h, uint32_t slot)
{
	return (node_state(h, slot) & NODE_LINKING) != 0;
}

/*
 * Greedy descent on one layer (ef = 1): the nearest node reachable from
 * *ep by always moving closer; *d is its distance. It never moves to a
 * node being linked: that node's lists on the layers below may still be
 * empty, and the descent would end there, in a dead end.
 */
static void
greedy(const hnsw_index *h, struct scratch *s, const void *q,
    uint32_t layer, uint32_t *ep, float *d)
{
	int some = atomic_load(&((hnsw_index *) h)->n_linking) > 0;

	for (int changed = 1; changed;) {
		uint32_t cnt = list_read(h, *ep, layer, s->nb);
		changed = 0;
		dist_batch(h, q, s->nb, cnt, s->dists);
		for (uint32_t j = 0; j < cnt; j++) {
			if (s->dists[j] < *d && !(some && linking(h,
			    s->nb[j]))) {
				*d = s->dists[j];
				*ep = s->nb[j];
				changed = 1;
			}
		}
	}
}

/* Entry slot and top level of an h->ep value. */
static inline uint32_t
ep_slot(uint64_t e)
{
	return (uint32_t) e;
}

static inline uint32_t
ep_top(uint64_t e)
{
	return (uint32_t) (e >> 32);
}

/* Descend from entry point e to layer `to` + 1's nearest node. */
static uint32_t
descend(const hnsw_index *h, struct scratch *s, const void *q, uint64_t e,
    uint32_t to)
{
	uint32_t ep = ep_slot(e);
	float d = dist1(h, q, ep);

	for (uint32_t l = ep_top(e); l > to; l--)
		greedy(h, s, q, l, &ep, &d);
	return ep;
}

/* Order hits by distance, then label. */
static int
hit_cmp(const void *a, const void *b)
{
	const hnsw_hit *x = a, *y = b;

	if (x->dist != y->dist)
		return x->dist < y->dist ? -1 : 1;
	return x->label < y->label ? -1 : x->label > y->label;
}

/* The best k of s->res into out, as metric distances; returns the count. */
static size_t
emit(const hnsw_index *h, struct scratch *s, uint32_t k, hnsw_hit *out)
{
	size_t n = s->res.n;

	for (size_t i = 0; i < n; i++)
		s->hits[i] = (hnsw_hit) { h->labels[s->res.a[i].id],
			to_metric(h, s->res.a[i].d) };
	qsort(s->hits, n, sizeof(hnsw_hit), hit_cmp);
	if (n > k)
		n = k;
	memcpy(out, s->hits, n * sizeof(hnsw_hit));
	return n;
}

/* The query as the index compares it: normalised for cosine, then
 * prepared for the codes of a quantized index. */
static const void *
prep_query(const hnsw_index *h, struct scratch *s, const float *query)
{
	if (h->cfg.metric == VECDB_COSINE) {
		memcpy(s->q, query, h->cfg.dim * sizeof(float));
		kern_normalize(s->q, h->cfg.dim);
		query = s->q;
	}
	if (h->qz == NULL)
		return query;
	quant_prepare(h->qz, query, s->qb);
	return s->qb;
}

/* Algorithm 5 from paper (K-NN-SEARCH), under the read lock. */
static int
search_locked(hnsw_index *h, struct scratch *s, const float *query,
    uint32_t k, uint32_t ef, const struct accept *acc, hnsw_hit *out,
    size_t *n)
{
	int rv;

	if ((rv = scratch_fit(h, s, ef)) != VECDB_OK)
		return rv;
	uint64_t e = atomic_load_explicit(&h->ep, memory_order_acquire);
	if (e == EP_NONE) {
		*n = 0;
		return VECDB_OK;
	}
	const void *q = prep_query(h, s, query);
	uint32_t ep = descend(h, s, q, e, 0);
	if ((rv = search_layer(h, s, q, ep, 0, ef, acc)) != VECDB_OK)
		return rv;
	*n = emit(h, s, k, out);
	return VECDB_OK;
}

int
hnsw_search(hnsw_index *h, const float *query, uint32_t k, uint32_t ef,
    hnsw_filter_fn filter, void *arg, hnsw_hit *out, size_t *n)
{
	if (h == NULL || query == NULL || out == NULL || n == NULL || k == 0)
		return VECDB_EINVAL;
	if (ef == 0)
		ef = h->cfg.ef_search;
	if (ef < k)
		ef = k;
	if (ef > VECDB_HNSW_EF_MAX)
		ef = k > VECDB_HNSW_EF_MAX ? k : VECDB_HNSW_EF_MAX;
	/* With no dead or linking node when it starts, a search checks no
	 * states: a node an insert links meanwhile is complete but for some
	 * links, and a reuse (which changes a row) waits for the search. */
	struct accept acc = { filter, arg, atomic_load(&h->n_deleted) +
		atomic_load(&h->n_linking) > 0 ? 0xff : 0 };
	pthread_rwlock_rdlock(&h->lock);
	struct rslot *rs = slot_acquire(h, 0);
	int rv = search_locked(h, &rs->s, query, k, ef, &acc, out, n);
	slot_release(h, rs);
	pthread_rwlock_unlock(&h->lock);
	return rv;
}

/* ===== Neighbour selection ===== */

/* Order candidates by distance, then slot. */
static int
cand_cmp(const void *a, const void *b)
{
	const struct cand *x = a, *y = b;

	if (x->d != y->d)
		return x->d < y->d ? -1 : 1;
	return x->id < y->id ? -1 : x->id > y->id;
}

/* 1 if c is closer to the base than to every kept candidate. */
static int
diverse(const hnsw_index *h, float *tmp, const struct cand *c,
    const struct cand *kept, size_t nkept)
{
	for (size_t j = 0; j < nkept; j++)
		if (dist_nodes(h, tmp, c->id, kept[j].id) < c->d)
			return 0;
	return 1;
}

/*
 * Algorithm 4 from paper (SELECT-NEIGHBORS-HEURISTIC), without extending
 * the candidates or keeping pruned ones, as hnswlib: a candidate is kept
 * only if it is closer to the base than to every candidate kept before
 * it, which spreads links over directions instead of clustering them.
 * With no more than m candidates all are kept. Compacts c[0..n) so that
 * the kept ones come first, nearest first; returns their count.
 */
static size_t
select_neighbors(const hnsw_index *h, float *tmp, struct cand *c, size_t n,
    size_t m)
{
	size_t kept = 0;

	qsort(c, n, sizeof(*c), cand_cmp);
	if (n <= m)
		return n;
	for (size_t i = 0; i < n && kept < m; i++)
		if (diverse(h, tmp, &c[i], c, kept))
			c[kept++] = c[i];
	return kept;
}

/* ===== Insert ===== */

/* A level -ln(U) * mL with U in (0, 1], capped at max_layer (xorshift*).
 * Caller holds map_mu. */
static uint32_t
random_level(hnsw_index *h)
{
	h->rng ^= h->rng >> 12;
	h->rng ^= h->rng << 25;
	h->rng ^= h->rng >> 27;
	uint64_t r = h->rng * 0x2545f4914f6cdd1dULL;
	double u = ((double) (r >> 11) + 1.0) * 0x1p-53;
	double l = -log(u) * h->ml;

	return l >= h->cfg.max_layer ? h->cfg.max_layer : (uint32_t) l;
}

/* Size a write slot's plan, once, for a node of any level. */
static int
plan_fit(hnsw_index *h, struct plan *p)
{
	size_t layers = h->cfg.max_layer + 1;
	size_t np = h->cfg.ef_construction + h->m0 + 1;

	if (p->pool != NULL)
		return VECDB_OK;
	p->old = vdb_malloc(layers * h->ls0 * sizeof(uint32_t));
	p->list = vdb_malloc(h->ls0 * sizeof(uint32_t));
	p->pool2 = vdb_malloc((2 * h->m0 + 1) * sizeof(struct cand));
	p->pool = vdb_malloc(np * sizeof(struct cand));
	if (p->old == NULL || p->list == NULL || p->pool2 == NULL ||
	    p->pool == NULL) {
		plan_free(p);
		memset(p, 0, sizeof(*p));
		return VECDB_ENOMEM;
	}
	atomic_fetch_add(&h->scratch_bytes, (layers + 1) * h->ls0 * 4 +
	    (np + 2 * h->m0 + 1) * sizeof(struct cand));
	return VECDB_OK;
}

/* Take a list's lock. It is held for one neighbour selection at most,
 * so a waiter spins a little, then yields. */
static void
list_lock(hnsw_index *h, uint32_t slot, uint32_t layer)
{
	_Atomic uint32_t *w = (_Atomic uint32_t *) links(h, slot, layer);

	for (unsigned spin = 0;; spin++) {
		uint32_t v = atomic_load_explicit(w, memory_order_relaxed);
		if (!(v & LW_LOCKED) && atomic_compare_exchange_weak_explicit(
		    w, &v, v | LW_LOCKED, memory_order_acquire,
		    memory_order_relaxed))
			return;
		if (spin >= 64)
			sched_yield();
	}
}

/* Release a list's lock. */
static void
list_unlock(hnsw_index *h, uint32_t slot, uint32_t layer)
{
	atomic_fetch_and_explicit((_Atomic uint32_t *) links(h, slot, layer),
	    ~LW_LOCKED, memory_order_release);
}

/* Write a [count][ids] list (a plain count) over a node's list on a
 * layer; caller holds its lock. The id stores are release stores: a
 * reader that sees one of them also sees LW_WRITING, and retries (see
 * list_read). */
static void
list_write(hnsw_index *h, uint32_t slot, uint32_t layer, const uint32_t *src)
{
	_Atomic uint32_t *ll = (_Atomic uint32_t *) links(h, slot, layer);
	uint32_t v = atomic_load_explicit(&ll[0], memory_order_relaxed);
	uint32_t ver = (v & ~(LW_COUNT | LW_WRITING)) + LW_VERSION;

	atomic_store_explicit(&ll[0], v | LW_WRITING, memory_order_relaxed);
	for (uint32_t j = 1; j <= src[0]; j++)
		atomic_store_explicit(&ll[j], src[j], memory_order_release);
	atomic_store_explicit(&ll[0], ver | src[0], memory_order_release);
}

/*
 * Link neighbour e on a layer to the new node: appended if there is
 * room, otherwise the heuristic picks among its links and the new node,
 * with distances from e. The whole read-select-write holds e's link
 * lock, so two inserts linking to e never lose each other's link.
 */
static void
link_back(hnsw_index *h, struct scratch *s, struct plan *p, uint32_t e,
    uint32_t layer, float d_new)
{
	size_t max = layer ? h->cfg.m : h->m0, cnt = 0;
	uint32_t *dst = p->list;

	list_lock(h, e, layer);
	uint32_t n = list_read(h, e, layer, s->nb);
	/* A reused slot may be in the list already, as its old self. */
	for (uint32_t j = 0; j < n; j++)
		if (s->nb[j] != p->slot)
			dst[1 + cnt++] = s->nb[j];
	if (cnt < max) {
		dst[1 + cnt++] = p->slot;
		dst[0] = (uint32_t) cnt;
	} else {
		for (size_t j = 0; j < cnt; j++)
			p->pool2[j] = (struct cand) { dist_nodes(h, s->tmp, e,
				dst[1 + j]), dst[1 + j] };
		p->pool2[cnt] = (struct cand) { d_new, p->slot };
		size_t k = select_neighbors(h, s->tmp, p->pool2, cnt + 1, max);
		for (size_t j = 0; j < k; j++)
			dst[1 + j] = p->pool2[j].id;
		dst[0] = (uint32_t) k;
	}
	list_write(h, e, layer, dst);
	list_unlock(h, e, layer);
}

/* Is x among the n ids of a? */
static int
among(const uint32_t *a, uint32_t n, uint32_t x)
{
	for (uint32_t i = 0; i < n; i++)
		if (a[i] == x)
			return 1;
	return 0;
}

/*
 * Write the new node's own list on a layer: the k neighbours chosen
 * (p->pool), plus the links other inserts made to it meanwhile (one that
 * started its search from this node on the layer above may have picked
 * it already), by the heuristic if they are too many. hnswlib keeps
 * these by holding the new node's lock for the whole insert; here they
 * are merged, so that no insert waits for another's search.
 */
static void
own_write(hnsw_index *h, struct scratch *s, struct plan *p, uint32_t layer,
    size_t k)
{
	const uint32_t *old = p->old + (size_t) layer * h->ls0;
	size_t max = layer ? h->cfg.m : h->m0, n = k;

	list_lock(h, p->slot, layer);
	uint32_t cur = list_read(h, p->slot, layer, s->nb);
	for (size_t j = 0; j < k; j++)
		p->pool2[j] = p->pool[j];
	for (uint32_t j = 0; j < cur; j++) {
		uint32_t x = s->nb[j];
		int dup = 0;
		for (size_t i = 0; i < k && !dup; i++)
			dup = p->pool[i].id == x;
		if (dup || (p->reuse && among(old + 1, old[0], x)))
			continue; /* chosen already, or a reused slot's old link */
		p->pool2[n++] = (struct cand) { dist_nodes(h, s->tmp, p->slot,
			x), x };
	}
	if (n > max)
		n = select_neighbors(h, s->tmp, p->pool2, n, max);
	p->list[0] = (uint32_t) n;
	for (size_t j = 0; j < n; j++)
		p->list[1 + j] = p->pool2[j].id;
	list_write(h, p->slot, layer, p->list);
	list_unlock(h, p->slot, layer);
}

/* Drop the reused slot from e's list on a layer, if it is there. */
static void
unlink_from(hnsw_index *h, struct scratch *s, struct plan *p, uint32_t e,
    uint32_t layer)
{
	uint32_t *dst = p->list, cnt = 0;

	list_lock(h, e, layer);
	uint32_t n = list_read(h, e, layer, s->nb);
	for (uint32_t j = 0; j < n; j++)
		if (s->nb[j] != p->slot)
			dst[1 + cnt++] = s->nb[j];
	if (cnt != n) {
		dst[0] = cnt;
		list_write(h, e, layer, dst);
	}
	list_unlock(h, e, layer);
}

/*
 * A reused slot's old neighbours mostly link back to it (links are made
 * in pairs), and those links would now lead to an unrelated vector: drop
 * them. Links to it from nodes it did not link to stay, as long-range
 * links, until a vacuum rebuilds the graph.
 */
static void
unlink_old(hnsw_index *h, struct scratch *s, struct plan *p)
{
	uint32_t *old = p->old;

	for (uint32_t l = 0; l <= p->level; l++)
		old[l * h->ls0] = list_read(h, p->slot, l, old + l * h->ls0 + 1);
	for (uint32_t l = 0; l <= p->level; l++)
		for (uint32_t j = 1; j <= old[l * h->ls0]; j++)
			unlink_from(h, s, p, old[l * h->ls0 + j], l);
}

/*
 * Offer the nodes other inserts are linking right now (on this layer,
 * not visited, accepted) to the results of the search just done. Such a
 * node is not reachable until its insert links back to it, so two
 * concurrent inserts near each other would otherwise never see each
 * other; the heuristic then prunes links on the belief that the nearer
 * of the two leads to the other, and a small far cluster inserted in
 * parallel could lose every link into it. With its in-flight neighbours
 * offered, each insert sees what a one-thread build would have linked
 * before it.
 */
static void
offer_linking(hnsw_index *h, struct scratch *s, struct plan *p,
    const void *q, uint32_t l, uint32_t efc, const struct accept *acc)
{
	for (int i = 0; i < HNSW_WRITE_SLOTS; i++) {
		uint64_t v = atomic_load_explicit(&h->wslots[i].linking,
		    memory_order_acquire);
		uint32_t z = (uint32_t) v;
		if (v == 0 || z == p->slot || ((v >> 32) & 0xff) < l ||
		    s->visited[z] == s->epoch || !accepted(h, acc, z))
			continue;
		s->visited[z] = s->epoch;
		float d = dist1(h, q, z);
		if (s->res.n >= efc && d >= s->res.a[0].d)
			continue;
		res_push(&s->res, d, z);
		if (s->res.n > efc)
			res_pop(&s->res);
	}
}

/*
 * Search one layer for the new node's neighbours (no dead nodes, unless
 * nothing else is reachable), with the nodes being linked alongside;
 * copies them into pool, returns how many.
 * XXX: a candidate heap that cannot grow (ENOMEM) ends the search early,
 * and the node links to what was found: better than failing half linked.
 */
static size_t
layer_candidates(hnsw_index *h, struct scratch *s, struct plan *p,
    const void *q, uint32_t ep, uint32_t l)
{
	/* Dead nodes exist only with n_deleted, doomed ones only while
	 * another insert links; nodes other inserts are linking are fine. */
	int some = atomic_load(&h->n_deleted) > 0 ||
	    atomic_load(&h->n_linking) > 1;
	struct accept acc = { NULL, NULL, some ? NODE_DEAD | NODE_DOOMED : 0 };
	uint32_t efc = h->cfg.ef_construction;
	size_t n = 0;

	(void) search_layer(h, s, q, ep, l, efc, &acc);
	if (s->res.n == 0) {
		acc.reject = 0;
		(void) search_layer(h, s, q, ep, l, efc, &acc);
	}
	if (atomic_load(&h->n_linking) > 1)
		offer_linking(h, s, p, q, l, efc, &acc);
	for (size_t i = 0; i < s->res.n; i++)
		if (s->res.a[i].id != p->slot) /* a reused slot's old self */
			p->pool[n++] = s->res.a[i];
	return n;
}

/*
 * Algorithm 1 from paper (INSERT), from entry point e: on each layer from
 * the node's level down, the heuristic picks its neighbours among the
 * efc nearest, its list is written, and each neighbour links back
 * (hnswlib's mutuallyConnectNewElement). Lists change one at a time,
 * each under its link lock, so searches and other inserts go on.
 */
static void
link_layers(hnsw_index *h, struct scratch *s, struct plan *p, uint64_t e)
{
	/* The node's own vector as a query: its row, or its prepared form
	 * (store_vector left it in the scratch). */
	const void *q = h->qz ? s->qb : (const void *) row(h, p->slot);
	uint32_t top = ep_top(e), ep = descend(h, s, q, e, p->level);

	for (uint32_t l = p->level < top ? p->level : top;; l--) {
		size_t nw = layer_candidates(h, s, p, q, ep, l);
		size_t k = select_neighbors(h, s->tmp, p->pool, nw, h->cfg.m);
		own_write(h, s, p, l, k);
		for (size_t j = 0; j < k; j++)
			link_back(h, s, p, p->pool[j].id, l, p->pool[j].d);
		/* The next layer starts from the nearest neighbour whose
		 * lists are all written (see greedy). */
		for (size_t j = 0; j < k; j++)
			if (!linking(h, p->pool[j].id)) {
				ep = p->pool[j].id;
				break;
			}
		if (l == 0)
			break;
	}
}

/*
 * Link a claimed node; caller holds the read side of lock. An insert
 * whose level is above the top holds ep_mu throughout, as hnswlib's
 * global lock, and makes its node the entry point once linked; the
 * others link alongside from the entry point they read.
 */
static void
link_node(hnsw_index *h, struct scratch *s, struct plan *p)
{
	uint64_t e = atomic_load_explicit(&h->ep, memory_order_acquire);
	int raise = e == EP_NONE || p->level > ep_top(e);

	if (raise) {
		pthread_mutex_lock(&h->ep_mu);
		e = atomic_load_explicit(&h->ep, memory_order_acquire);
		raise = e == EP_NONE || p->level > ep_top(e);
		if (!raise)
			pthread_mutex_unlock(&h->ep_mu);
	}
	if (e != EP_NONE)
		link_layers(h, s, p, e);
	if (raise) {
		atomic_store_explicit(&h->ep, (uint64_t) p->slot |
		    (uint64_t) p->level << 32, memory_order_release);
		pthread_mutex_unlock(&h->ep_mu);
	}
}

/*
 * Write a new node's vector (normalised for cosine) into its row, and on
 * a quantized index its code, leaving the vector prepared as a query in
 * the insert's scratch (link_layers searches with it).
 */
static void
store_vector(hnsw_index *h, struct scratch *s, uint32_t slot,
    const float *vec)
{
	float *v = s->q;

	memcpy(v, vec, h->cfg.dim * sizeof(float));
	memset(v + h->cfg.dim, 0, (h->vstride - h->cfg.dim) * sizeof(float));
	if (h->cfg.metric == VECDB_COSINE)
		kern_normalize(v, h->cfg.dim);
	if (h->vecs != NULL)
		memcpy(row(h, slot), v, h->vstride * sizeof(float));
	if (h->qz != NULL) {
		quant_encode(h->qz, v, code(h, slot));
		quant_prepare(h->qz, v, s->qb);
	}
}

/*
 * Take over the most recently deleted slot, as hnswlib's replace_deleted
 * does: the slot keeps its level and upper block and gets new links. An
 * update (mark_deleted of the old offset, insert of the new one) so
 * reuses its own slot, and the graph does not grow. It stays NODE_DEAD
 * until reuse_store has put the new vector in. Caller holds map_mu.
 */
static void
claim_reuse(hnsw_index *h, struct plan *p)
{
	uint32_t s = h->free[--h->nfree];

	p->slot = s;
	p->level = h->levels[s];
	p->reuse = 1;
	map_del(h, h->labels[s]);
	atomic_fetch_or((_Atomic uint8_t *) &h->deleted[s], NODE_LINKING);
	atomic_fetch_sub(&h->n_deleted, 1);
}

/* A fresh slot at the end. Caller holds map_mu. */
static int
claim_fresh(hnsw_index *h, struct plan *p)
{
	uint64_t n = atomic_load(&h->n);
	uint32_t level = random_level(h), *upper = NULL;

	if (n >= MAX_SLOTS)
		return VECDB_EFULL;
	if (n == h->cap && grow(h, h->cap + h->cap / 4 + 64) != VECDB_OK)
		return VECDB_ENOMEM;
	if (level > 0 && (upper = vdb_calloc((size_t) level * h->ls,
	    sizeof(uint32_t))) == NULL)
		return VECDB_ENOMEM;
	p->slot = (uint32_t) n;
	p->level = level;
	p->reuse = 0;
	memset(links(h, p->slot, 0), 0, h->ls0 * sizeof(uint32_t));
	h->upper[n] = upper;
	h->levels[n] = (uint8_t) level;
	atomic_store_explicit((_Atomic uint8_t *) &h->deleted[n],
	    NODE_LINKING, memory_order_relaxed);
	atomic_fetch_add(&h->upper_bytes, (size_t) level * h->ls * 4);
	atomic_store(&h->n, n + 1);
	return VECDB_OK;
}

/*
 * Give a label a slot and size the write slot's scratch, so that
 * linking cannot fail. Caller holds map_mu. Every error (EEXIST, EFULL,
 * ENOMEM) leaves the index as it was.
 */
static int
claim(hnsw_index *h, struct rslot *ws, uint64_t label)
{
	struct plan *p = &ws->p;
	int rv;

	if (map_find(h, label) != NO_SLOT)
		return VECDB_EEXIST;
	if ((rv = plan_fit(h, p)) != VECDB_OK || (rv = scratch_fit(h, &ws->s,
	    h->cfg.ef_construction)) != VECDB_OK)
		return rv;
	if (h->nfree > 0) {
		claim_reuse(h, p);
	} else {
		size_t before = h->map_cap;
		if (map_reserve(h, atomic_load(&h->n) + 1) != VECDB_OK)
			return VECDB_ENOMEM;
		atomic_fetch_add(&h->scratch_bytes,
		    (h->map_cap - before) * 12);
		if ((rv = claim_fresh(h, p)) != VECDB_OK)
			return rv;
	}
	map_put(h, label, p->slot);
	atomic_fetch_add(&h->n_linking, 1);
	return VECDB_OK;
}

/*
 * Put a reused slot's new vector and label in. Searches read the rows of
 * dead nodes (they route), hence the write side of lock.
 * XXX: that waits for the inserts linking meanwhile, so a stream of
 * updates inserts about one at a time; a row version checked by the
 * distance loop would lift it.
 */
static void
reuse_store(hnsw_index *h, struct scratch *s, const struct plan *p,
    uint64_t label, const float *vec)
{
	pthread_rwlock_wrlock(&h->lock);
	store_vector(h, s, p->slot, vec);
	h->labels[p->slot] = label;
	atomic_fetch_and((_Atomic uint8_t *) &h->deleted[p->slot],
	    (uint8_t) ~NODE_DEAD);
	pthread_rwlock_unlock(&h->lock);
}

/* Offer a deleted slot for reuse; without memory it just stays dead.
 * Caller holds map_mu. */
static void
free_push(hnsw_index *h, uint32_t s)
{
	if (h->nfree == h->free_cap) {
		size_t cap = h->free_cap ? 2 * h->free_cap : 64;
		if (grow_array(&h->free, cap * sizeof(uint32_t)) != VECDB_OK)
			return;
		atomic_fetch_add(&h->scratch_bytes, (cap - h->free_cap) * 4);
		h->free_cap = cap;
	}
	h->free[h->nfree++] = s;
}

/* The node is linked: live now, or dead if deleted meanwhile. */
static void
publish(hnsw_index *h, uint32_t s)
{
	pthread_mutex_lock(&h->map_mu);
	/* Not before: growth moves the array, under map_mu. */
	_Atomic uint8_t *st = (_Atomic uint8_t *) &h->deleted[s];
	if (atomic_load(st) & NODE_DOOMED) {
		atomic_store_explicit(st, NODE_DEAD, memory_order_release);
		atomic_fetch_add(&h->n_deleted, 1);
		free_push(h, s);
	} else
		atomic_store_explicit(st, NODE_LIVE, memory_order_release);
	atomic_fetch_sub(&h->n_linking, 1);
	pthread_mutex_unlock(&h->map_mu);
}

/* hnsw_insert with the read side of ilock held: claim a slot (map_mu),
 * link it (the read side of lock), publish it (map_mu). */
static int
insert_ilocked(hnsw_index *h, uint64_t label, const float *vec)
{
	struct rslot *ws = slot_acquire(h, 1);
	struct plan *p = &ws->p;
	int rv;

	pthread_mutex_lock(&h->map_mu);
	rv = claim(h, ws, label);
	pthread_mutex_unlock(&h->map_mu);
	if (rv == VECDB_OK) {
		if (p->reuse)
			reuse_store(h, &ws->s, p, label, vec);
		pthread_rwlock_rdlock(&h->lock);
		if (p->reuse) {
			unlink_old(h, &ws->s, p);
		} else {
			/* Nothing links to the slot yet: no one reads it. */
			store_vector(h, &ws->s, p->slot, vec);
			h->labels[p->slot] = label;
		}
		/* Its row is in: other inserts may link to it now. */
		atomic_store_explicit(&ws->linking, INFLIGHT(p->slot,
		    p->level), memory_order_release);
		link_node(h, &ws->s, p);
		atomic_store_explicit(&ws->linking, 0, memory_order_release);
		pthread_rwlock_unlock(&h->lock);
		publish(h, p->slot);
	}
	slot_release(h, ws);
	return rv;
}

/*
 * Train the quantizer on the rows present (spread evenly, at most
 * QUANT_TRAIN_MAX) and move the index onto codes. Holding the write side
 * of ilock keeps inserts and deletes off while the codes are made;
 * searches go on on the floats until the switch, under the write lock.
 * A failure leaves the index on floats for good (train_failed).
 */
static int
train_now(hnsw_index *h)
{
	uint32_t dim = h->cfg.dim;
	float *sample = NULL;
	quant *qz = NULL;
	void *raw = NULL, *base = NULL;
	int rv = VECDB_OK;

	pthread_rwlock_wrlock(&h->ilock);
	uint64_t n = atomic_load(&h->n);
	if (h->qz != NULL || n == 0)
		goto out;
	size_t m = n < QUANT_TRAIN_MAX ? (size_t) n : QUANT_TRAIN_MAX;
	if ((sample = vdb_malloc(m * dim * sizeof(float))) == NULL) {
		rv = VECDB_ENOMEM;
		goto out;
	}
	for (size_t i = 0; i < m; i++)
		memcpy(sample + i * dim, row(h, (uint32_t) (i * n / m)),
		    dim * sizeof(float));
	if ((rv = quant_train(&h->cfg.quant, h->cfg.metric, dim, sample, m,
	    h->cfg.seed, &qz)) != VECDB_OK)
		goto out;
	size_t cstride = (quant_code_size(qz) + 15) & ~(size_t) 15;
	if ((rv = grow_rows(&raw, &base, cstride, 0, h->cap)) != VECDB_OK)
		goto out;
	for (uint64_t i = 0; i < n; i++)
		quant_encode(qz, row(h, (uint32_t) i), (uint8_t *) base +
		    i * cstride);
	pthread_rwlock_wrlock(&h->lock);
	h->codes_raw = raw;
	h->codes = base;
	h->cstride = cstride;
	h->qz = qz;
	if (!h->cfg.quant.always_ram) {
		vdb_free(h->vecs_raw);
		h->vecs_raw = NULL;
		h->vecs = NULL;
		h->floats_on = 0;
	}
	atomic_store(&h->quantized, 1);
	pthread_rwlock_unlock(&h->lock);
	raw = NULL;
	qz = NULL;
out:
	if (rv != VECDB_OK)
		atomic_store(&h->train_failed, 1);
	pthread_rwlock_unlock(&h->ilock);
	vdb_free(sample);
	vdb_free(raw);
	quant_free(qz);
	return rv;
}

int
hnsw_quantize(hnsw_index *h)
{
	if (h == NULL)
		return VECDB_EINVAL;
	if (h->cfg.quant.type == VECDB_QUANT_NONE)
		return VECDB_OK;
	return train_now(h);
}

vecdb_quant
hnsw_quantized(const hnsw_index *h)
{
	return atomic_load(&((hnsw_index *) h)->quantized) ?
	    h->cfg.quant.type : VECDB_QUANT_NONE;
}

int
hnsw_insert(hnsw_index *h, uint64_t label, const float *vec)
{
	if (h == NULL || vec == NULL)
		return VECDB_EINVAL;
	if (h->cfg.quant.type != VECDB_QUANT_NONE &&
	    !atomic_load(&h->quantized) && !atomic_load(&h->train_failed) &&
	    atomic_load(&h->n) >= h->train_at)
		(void) train_now(h);
	pthread_rwlock_rdlock(&h->ilock);
	int rv = insert_ilocked(h, label, vec);
	pthread_rwlock_unlock(&h->ilock);
	return rv;
}

/* ===== Deletes and figures ===== */

int
hnsw_mark_deleted(hnsw_index *h, uint64_t label)
{
	int rv = VECDB_ENOTFOUND;

	if (h == NULL)
		return VECDB_EINVAL;
	pthread_rwlock_rdlock(&h->ilock);
	pthread_mutex_lock(&h->map_mu);
	uint32_t s = map_find(h, label);
	if (s != NO_SLOT) {
		_Atomic uint8_t *st = (_Atomic uint8_t *) &h->deleted[s];
		uint8_t v = atomic_load(st);
		if (v == NODE_LIVE) {
			atomic_store_explicit(st, NODE_DEAD,
			    memory_order_relaxed);
			atomic_fetch_add(&h->n_deleted, 1);
			free_push(h, s);
			rv = VECDB_OK;
		} else if ((v & NODE_LINKING) && !(v & NODE_DOOMED)) {
			/* Its insert is linking it: publish() retires it. */
			atomic_fetch_or(st, NODE_DOOMED);
			rv = VECDB_OK;
		}
	}
	pthread_mutex_unlock(&h->map_mu);
	pthread_rwlock_unlock(&h->ilock);
	return rv;
}

uint64_t
hnsw_count(const hnsw_index *hc)
{
	hnsw_index *h = (hnsw_index *) hc;
	uint64_t d = atomic_load(&h->n_deleted);
	uint64_t l = atomic_load(&h->n_linking);
	uint64_t n = atomic_load(&h->n);

	return n > d + l ? n - d - l : 0;
}

uint64_t
hnsw_deleted_count(const hnsw_index *h)
{
	return atomic_load(&((hnsw_index *) h)->n_deleted);
}

size_t
hnsw_memory(const hnsw_index *hc)
{
	hnsw_index *h = (hnsw_index *) hc;
	size_t b;

	pthread_rwlock_rdlock(&h->lock);
	b = sizeof(*h) + (h->vecs_raw ? ROW_ALIGN : 0) + h->upper_bytes +
	    h->cap * ((h->floats_on ? h->vstride * sizeof(float) : 0) +
	    h->ls0 * sizeof(uint32_t) + sizeof(uint32_t *) + sizeof(uint64_t) +
	    2);
	if (h->qz != NULL)
		b += ROW_ALIGN + h->cap * h->cstride + quant_memory(h->qz);
	pthread_rwlock_unlock(&h->lock);
	return b + atomic_load(&h->scratch_bytes);
}

void
hnsw_memory_parts(const hnsw_index *hc, size_t *codes, size_t *linkb,
    size_t *originals)
{
	hnsw_index *h = (hnsw_index *) hc;

	pthread_rwlock_rdlock(&h->lock);
	*codes = h->qz ? h->cap * h->cstride + quant_memory(h->qz) : 0;
	*linkb = h->cap * h->ls0 * sizeof(uint32_t) + h->upper_bytes;
	*originals = h->floats_on ? h->cap * h->vstride * sizeof(float) : 0;
	pthread_rwlock_unlock(&h->lock);
}

int
hnsw_rescore(hnsw_index *h, const float *query, hnsw_hit *hits, size_t n)
{
	const float *q = query;
	float *qn = NULL;

	if (h == NULL || query == NULL || (hits == NULL && n > 0) ||
	    !atomic_load(&h->quantized) || !h->cfg.quant.always_ram)
		return 0;
	if (h->cfg.metric == VECDB_COSINE) {
		if ((qn = vdb_malloc(h->cfg.dim * sizeof(float))) == NULL)
			return 0;
		memcpy(qn, query, h->cfg.dim * sizeof(float));
		kern_normalize(qn, h->cfg.dim);
		q = qn;
	}
	/* map_mu comes before lock (hnsw.h's order): find the slot first,
	 * then check under lock that it still holds the label (a reuse
	 * changes both under the write lock). */
	for (size_t i = 0; i < n; i++) {
		pthread_mutex_lock(&h->map_mu);
		uint32_t slot = map_find(h, hits[i].label);
		pthread_mutex_unlock(&h->map_mu);
		if (slot == NO_SLOT)
			continue; /* gone: the caller drops it */
		pthread_rwlock_rdlock(&h->lock);
		if (h->labels[slot] == hits[i].label) {
			float d = h->dist(q, row(h, slot), h->cfg.dim);
			hits[i].dist = to_metric(h, h->negate ? -d : d);
		}
		pthread_rwlock_unlock(&h->lock);
	}
	vdb_free(qn);
	return 1;
}

/* ===== Validation ===== */

/* One list: count within max, links in range, on the layer, no self or
 * duplicate links. */
static int
list_ok(const hnsw_index *h, uint32_t self, uint32_t layer, uint64_t n)
{
	const uint32_t *ll = links(h, self, layer);
	uint32_t max = layer ? h->cfg.m : h->m0, cnt = ll[0] & LW_COUNT;

	if (cnt > max || (ll[0] & (LW_LOCKED | LW_WRITING)))
		return 0;
	for (uint32_t i = 1; i <= cnt; i++) {
		if (ll[i] >= n || ll[i] == self || h->levels[ll[i]] < layer)
			return 0;
		for (uint32_t j = 1; j < i; j++)
			if (ll[j] == ll[i])
				return 0;
	}
	return 1;
}

/* One node: level, upper block, label hash, every list. */
static int
node_ok(const hnsw_index *h, uint32_t s, uint64_t n)
{
	uint32_t lev = h->levels[s];

	if (lev > h->cfg.max_layer || (lev > 0) != (h->upper[s] != NULL))
		return 0;
	if (map_find(h, h->labels[s]) != s)
		return 0;
	for (uint32_t l = 0; l <= lev; l++)
		if (!list_ok(h, s, l, n))
			return 0;
	return 1;
}

/* hnsw_validate with the write side of ilock held: no insert is
 * linking, so every node is live or dead and nobody holds a link lock. */
static int
validate_locked(const hnsw_index *h)
{
	uint64_t n = atomic_load(&((hnsw_index *) h)->n), dels = 0;
	uint64_t e = atomic_load(&((hnsw_index *) h)->ep);
	uint32_t maxlev = 0;

	for (uint32_t s = 0; s < n; s++) {
		if (!node_ok(h, s, n) || h->deleted[s] > NODE_DEAD)
			return VECDB_ECORRUPT;
		dels += h->deleted[s];
		if (h->levels[s] > maxlev)
			maxlev = h->levels[s];
	}
	if ((n > 0) != (e != EP_NONE) || atomic_load(
	    &((hnsw_index *) h)->n_linking) != 0)
		return VECDB_ECORRUPT;
	if (n > 0 && (ep_slot(e) >= n || h->levels[ep_slot(e)] != ep_top(e) ||
	    ep_top(e) != maxlev))
		return VECDB_ECORRUPT;
	if (dels != atomic_load(&((hnsw_index *) h)->n_deleted) ||
	    h->nfree > dels)
		return VECDB_ECORRUPT;
	for (size_t i = 0; i < h->nfree; i++)
		if (h->free[i] >= n || !h->deleted[h->free[i]])
			return VECDB_ECORRUPT;
	return VECDB_OK;
}

int
hnsw_validate(const hnsw_index *hc)
{
	hnsw_index *h = (hnsw_index *) hc;

	if (h == NULL)
		return VECDB_EINVAL;
	pthread_rwlock_wrlock(&h->ilock);
	int rv = validate_locked(h);
	pthread_rwlock_unlock(&h->ilock);
	return rv;
}

/* ===== Checksum: XXH64, seed 0, from libxxhash ===== */

/*
 * The checksum was a hand-written XXH64 until libxxhash (Debian's
 * libxxhash-dev) took its place; the two give the same values, so
 * checkpoints written before read as they did (fuzz_hnsw has always made
 * its trailers with libxxhash). XXH_STATIC_LINKING_ONLY puts the state in
 * our structs, so a save or load allocates no hash state.
 */
struct xxh {
	XXH64_state_t st;
};

static void
xxh_init(struct xxh *x)
{
	XXH64_reset(&x->st, 0);
}

static void
xxh_update(struct xxh *x, const void *data, size_t n)
{
	if (n > 0) /* data may be NULL */
		XXH64_update(&x->st, data, n);
}

static uint64_t
xxh_digest(const struct xxh *x)
{
	return XXH64_digest(&x->st);
}

/* ===== Persistence ===== */

/*
 * File layout (little-endian, as the host: x86-64 and arm64):
 *   file_hdr
 *   labels     n x u64
 *   levels     n x u8
 *   deleted    n x u8
 *   vectors    n x dim x f32 (as stored: unit length for cosine)
 *   layer 0    n x (1 + 2m) x u32, [count][ids][zero padding]
 *   upper      for each node with level > 0, layers 1..level:
 *              (1 + m) x u32 each
 *   checksum   u64 XXH64 of everything above
 * Fixed-size lists make the file size a function of n, dim, m and the
 * levels, which load checks before it allocates anything.
 */
#define HNSW_MAGIC "VDBHNSW"
#define IO_BUF (1u << 20)

struct file_hdr {
	char magic[8];         /* HNSW_MAGIC */
	uint32_t version;      /* HNSW_FORMAT_VERSION */
	uint32_t dim;
	uint32_t metric;       /* vecdb_metric */
	uint32_t m;
	uint32_t max_layer;    /* of the saving index */
	uint32_t top;          /* entry point's level */
	uint32_t entry;        /* entry slot; NO_SLOT when empty */
	uint32_t flags;        /* FILE_* (version 1: 0, floats only) */
	uint64_t n;            /* slots */
	uint64_t n_deleted;
	uint64_t covered_seq;  /* the caller's */
	uint64_t rng;          /* level PRNG state */
};

#define FILE_CODES 1u    /* quantized: [len u32][quant tables] follow the
			    header, and a code a node after its floats */
#define FILE_NOFLOATS 2u /* no float rows (quantized, not always_ram) */
#define QUANT_BLOB_MAX (64u + 256u * 4u * VECDB_DIM_MAX)

/* A buffered, hashing writer. */
struct wfile {
	int fd;
	uint8_t *buf;      /* IO_BUF bytes */
	size_t len;        /* in buf */
	struct xxh x;      /* of everything put */
	int err;           /* a write failed */
};

/* Write out the buffer. */
static void
w_flush(struct wfile *w)
{
	for (size_t off = 0; off < w->len && !w->err;) {
		ssize_t k = write(w->fd, w->buf + off, w->len - off);
		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0)
			w->err = 1;
		else
			off += (size_t) k;
	}
	w->len = 0;
}

/* Append bytes (not hashed). */
static void
w_raw(struct wfile *w, const void *p, size_t n)
{
	const uint8_t *b = p;

	while (n > 0) {
		size_t t = IO_BUF - w->len < n ? IO_BUF - w->len : n;
		memcpy(w->buf + w->len, b, t);
		w->len += t;
		b += t;
		n -= t;
		if (w->len == IO_BUF)
			w_flush(w);
	}
}

/* Append bytes and hash them. */
static void
w_put(struct wfile *w, const void *p, size_t n)
{
	xxh_update(&w->x, p, n);
	w_raw(w, p, n);
}

/* Write one list padded with zeros to max entries. */
static void
w_list(struct wfile *w, const uint32_t *ll, size_t max)
{
	uint32_t tmp[1 + 2 * VECDB_HNSW_M_MAX] = { 0 };

	tmp[0] = ll[0] & LW_COUNT;
	memcpy(tmp + 1, ll + 1, tmp[0] * sizeof(uint32_t));
	w_put(w, tmp, (1 + max) * sizeof(uint32_t));
}

/* Everything but the checksum. */
static void
save_body(const hnsw_index *h, struct wfile *w, uint64_t covered_seq)
{
	uint64_t n = atomic_load(&((hnsw_index *) h)->n);
	uint64_t e = atomic_load(&((hnsw_index *) h)->ep);
	uint32_t flags = (h->qz ? FILE_CODES : 0) |
	    (h->floats_on ? 0 : FILE_NOFLOATS);
	struct file_hdr hd = { HNSW_MAGIC, HNSW_FORMAT_VERSION, h->cfg.dim,
		(uint32_t) h->cfg.metric, h->cfg.m, h->cfg.max_layer,
		n ? ep_top(e) : 0, n ? ep_slot(e) : NO_SLOT, flags, n,
		atomic_load(&((hnsw_index *) h)->n_deleted), covered_seq,
		h->rng };

	w_put(w, &hd, sizeof(hd));
	if (h->qz != NULL) {
		uint8_t *blob = NULL;
		size_t len = 0;
		if (quant_serialize(h->qz, &blob, &len) != VECDB_OK) {
			w->err = 1;
			return;
		}
		uint32_t l32 = (uint32_t) len;
		w_put(w, &l32, 4);
		w_put(w, blob, len);
		vdb_free(blob);
	}
	w_put(w, h->labels, n * sizeof(uint64_t));
	w_put(w, h->levels, n);
	w_put(w, h->deleted, n);
	if (h->floats_on)
		for (uint32_t s = 0; s < n; s++)
			w_put(w, row(h, s), h->cfg.dim * sizeof(float));
	if (h->qz != NULL)
		for (uint32_t s = 0; s < n; s++)
			w_put(w, code(h, s), quant_code_size(h->qz));
	for (uint32_t s = 0; s < n; s++)
		w_list(w, links(h, s, 0), h->m0);
	for (uint32_t s = 0; s < n; s++)
		for (uint32_t l = 1; l <= h->levels[s]; l++)
			w_list(w, links(h, s, l), h->cfg.m);
}

/* fsync the directory holding path, so that a rename survives a crash. */
static int
sync_dir(const char *path)
{
	char dir[4096];
	const char *slash = strrchr(path, '/');
	size_t len = slash == NULL ? 1 : slash == path ? 1 : (size_t) (slash - path);

	if (len >= sizeof(dir))
		return -1;
	memcpy(dir, slash == NULL ? "." : path, len);
	dir[len] = '\0';
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	int rc = fsync(fd);
	close(fd);
	return rc;
}

/* Write the file to tmp; 0 on success. */
static int
save_tmp(const hnsw_index *h, const char *tmp, uint64_t covered_seq)
{
	struct wfile w = { .fd = -1 };

	if ((w.buf = vdb_malloc(IO_BUF)) == NULL)
		return -1;
	w.fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (w.fd < 0) {
		vdb_free(w.buf);
		return -1;
	}
	xxh_init(&w.x);
	save_body(h, &w, covered_seq);
	uint64_t sum = xxh_digest(&w.x);
	w_raw(&w, &sum, sizeof(sum));
	w_flush(&w);
	if (fsync(w.fd) != 0)
		w.err = 1;
	if (close(w.fd) != 0)
		w.err = 1;
	vdb_free(w.buf);
	return w.err ? -1 : 0;
}

int
hnsw_save(const hnsw_index *hc, const char *path, uint64_t covered_seq)
{
	hnsw_index *h = (hnsw_index *) hc;
	char tmp[4096];
	int rv = VECDB_OK;

	if (h == NULL || path == NULL)
		return VECDB_EINVAL;
	if (snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= (int) sizeof(tmp))
		return VECDB_EINVAL;
	pthread_rwlock_wrlock(&h->ilock);
	errno = 0;
	if (save_tmp(h, tmp, covered_seq) != 0 || rename(tmp, path) != 0 ||
	    sync_dir(path) != 0) {
		int e = errno;
		unlink(tmp);
		rv = vdb_err(e == ENOSPC ? VECDB_EFULL : VECDB_EIO, "cannot "
		    "write %s: %s", tmp, e == ENOSPC ? "the disk is full" :
		    e ? strerror(e) : "write failed");
	}
	pthread_rwlock_unlock(&h->ilock);
	return rv;
}

/* A buffered, hashing reader. */
struct rfile {
	int fd;
	uint8_t *buf;      /* IO_BUF bytes */
	size_t pos, len;   /* unread bytes are buf[pos..len) */
	struct xxh x;      /* of everything got */
};

/* Read exactly n bytes; hash them if `hash`. */
static int
r_read(struct rfile *r, void *p, size_t n, int hash)
{
	uint8_t *b = p;

	while (n > 0) {
		if (r->pos == r->len) {
			ssize_t k = read(r->fd, r->buf, IO_BUF);
			if (k < 0 && errno == EINTR)
				continue;
			if (k < 0)
				return VECDB_EIO;
			if (k == 0)
				return VECDB_ECORRUPT; /* truncated */
			r->pos = 0;
			r->len = (size_t) k;
		}
		size_t t = r->len - r->pos < n ? r->len - r->pos : n;
		memcpy(b, r->buf + r->pos, t);
		if (hash)
			xxh_update(&r->x, b, t);
		r->pos += t;
		b += t;
		n -= t;
	}
	return VECDB_OK;
}

/* Bytes of the fixed-size part a node takes in the file. */
static uint64_t
node_bytes(const hnsw_config *c, uint32_t flags, size_t code_size)
{
	return 8 + 1 + 1 + (flags & FILE_NOFLOATS ? 0 : (uint64_t) c->dim * 4) +
	    (flags & FILE_CODES ? code_size : 0) +
	    (1 + 2 * (uint64_t) c->m) * 4;
}

/* Read and check the header against the expected config and file size. */
static int
load_header(struct rfile *r, const hnsw_config *c, uint64_t size,
    struct file_hdr *hd)
{
	int rv;

	if (size < sizeof(*hd) + 8)
		return VECDB_ECORRUPT;
	if ((rv = r_read(r, hd, sizeof(*hd), 1)) != VECDB_OK)
		return rv;
	if (memcmp(hd->magic, HNSW_MAGIC, sizeof(HNSW_MAGIC)) != 0 ||
	    hd->version < 1 || hd->version > HNSW_FORMAT_VERSION ||
	    (hd->version == 1 && hd->flags != 0) ||
	    (hd->flags & ~(FILE_CODES | FILE_NOFLOATS)) != 0 ||
	    hd->flags == FILE_NOFLOATS || hd->dim != c->dim ||
	    hd->metric != (uint32_t) c->metric || hd->m != c->m ||
	    hd->top > c->max_layer || hd->n > MAX_SLOTS ||
	    hd->n_deleted > hd->n)
		return VECDB_ECORRUPT;
	if (hd->n > (size - sizeof(*hd) - 8) / node_bytes(c, hd->flags, 0))
		return VECDB_ECORRUPT;
	if (hd->n == 0 && (hd->top != 0 || hd->entry != NO_SLOT))
		return VECDB_ECORRUPT;
	if (hd->n > 0 && hd->entry >= hd->n)
		return VECDB_ECORRUPT;
	return VECDB_OK;
}

/* Labels, levels and deleted marks; checks them and the exact size. */
static int
load_nodes(struct rfile *r, hnsw_index *h, const struct file_hdr *hd,
    uint64_t size, uint64_t qbytes)
{
	uint64_t n = hd->n, dels = 0, levsum = 0;
	int rv;

	if ((rv = r_read(r, h->labels, n * 8, 1)) != VECDB_OK ||
	    (rv = r_read(r, h->levels, n, 1)) != VECDB_OK ||
	    (rv = r_read(r, h->deleted, n, 1)) != VECDB_OK)
		return rv;
	for (uint64_t s = 0; s < n; s++) {
		if (h->levels[s] > h->cfg.max_layer || h->levels[s] > hd->top ||
		    h->deleted[s] > 1)
			return VECDB_ECORRUPT;
		dels += h->deleted[s];
		levsum += h->levels[s];
	}
	if (dels != hd->n_deleted || (n > 0 && h->levels[hd->entry] != hd->top))
		return VECDB_ECORRUPT;
	if (size != sizeof(*hd) + qbytes + n * node_bytes(&h->cfg, hd->flags,
	    h->qz ? quant_code_size(h->qz) : 0) + levsum * h->ls * 4 + 8)
		return VECDB_ECORRUPT;
	return VECDB_OK;
}

/* Vector rows (every component finite), then codes. */
static int
load_vectors(struct rfile *r, hnsw_index *h, uint64_t n)
{
	int rv;

	for (uint32_t s = 0; h->floats_on && s < n; s++) {
		float *v = row(h, s);
		if ((rv = r_read(r, v, h->cfg.dim * sizeof(float), 1)) != VECDB_OK)
			return rv;
		for (uint32_t i = 0; i < h->cfg.dim; i++)
			if (!isfinite(v[i]))
				return VECDB_ECORRUPT;
		memset(v + h->cfg.dim, 0,
		    (h->vstride - h->cfg.dim) * sizeof(float));
	}
	/* Any bytes are a code; a code past the data is never read. */
	for (uint32_t s = 0; h->qz != NULL && s < n; s++) {
		size_t cs = quant_code_size(h->qz);
		if ((rv = r_read(r, code(h, s), cs, 1)) != VECDB_OK)
			return rv;
		memset(code(h, s) + cs, 0, h->cstride - cs);
	}
	return VECDB_OK;
}

/*
 * The quantizer section of a FILE_CODES file; it must be what the
 * caller's config asks for (type and settings), and floats must be kept
 * exactly when always_ram says so: else the caller rebuilds. Sets *qbytes
 * to the section's size.
 */
static int
load_quant(struct rfile *r, hnsw_index *h, const struct file_hdr *hd,
    uint64_t size, uint64_t *qbytes)
{
	const vecdb_quant_config *want = &h->cfg.quant;
	vecdb_quant_config got;
	uint32_t len;
	uint8_t *blob;
	quant *qz;
	int rv;

	*qbytes = 0;
	if (!(hd->flags & FILE_CODES))
		return VECDB_OK; /* floats: untrained, or not quantized */
	if (want->type == VECDB_QUANT_NONE ||
	    !(hd->flags & FILE_NOFLOATS) != !!want->always_ram)
		return VECDB_ECORRUPT;
	if ((rv = r_read(r, &len, 4, 1)) != VECDB_OK)
		return rv;
	if (len > QUANT_BLOB_MAX || len > size)
		return VECDB_ECORRUPT;
	if ((blob = vdb_malloc(len ? len : 1)) == NULL)
		return VECDB_ENOMEM;
	if ((rv = r_read(r, blob, len, 1)) == VECDB_OK)
		rv = quant_deserialize(blob, len, h->cfg.metric, h->cfg.dim, &qz);
	vdb_free(blob);
	if (rv != VECDB_OK)
		return rv;
	quant_config_get(qz, &got);
	uint32_t segs = want->segments ? want->segments :
	    (h->cfg.dim + 7) / 8;
	if (got.type != want->type || (got.type == VECDB_QUANT_SCALAR &&
	    got.quantile != want->quantile) || (got.type ==
	    VECDB_QUANT_PRODUCT && got.segments != segs)) {
		quant_free(qz);
		return VECDB_ECORRUPT;
	}
	h->qz = qz;
	h->cstride = (quant_code_size(qz) + 15) & ~(size_t) 15;
	h->floats_on = !(hd->flags & FILE_NOFLOATS);
	atomic_store(&h->quantized, 1);
	*qbytes = 4 + (uint64_t) len;
	return VECDB_OK;
}

/*
 * One list read into ll: count and links range-checked, and no slot named
 * twice (hnsw_validate's rule: a duplicate link would stay in the graph).
 * seen[x] holds the stamp of the last list that named slot x.
 */
static int
load_list(struct rfile *r, const hnsw_index *h, uint32_t self,
    uint32_t layer, uint64_t n, uint32_t *ll, uint32_t *seen, uint32_t stamp)
{
	size_t max = layer ? h->cfg.m : h->m0;
	int rv;

	if ((rv = r_read(r, ll, (1 + max) * sizeof(uint32_t), 1)) != VECDB_OK)
		return rv;
	if (ll[0] > max)
		return VECDB_ECORRUPT;
	for (uint32_t i = 1; i <= ll[0]; i++) {
		if (ll[i] >= n || ll[i] == self || h->levels[ll[i]] < layer ||
		    seen[ll[i]] == stamp)
			return VECDB_ECORRUPT;
		seen[ll[i]] = stamp;
	}
	return VECDB_OK;
}

/* The next list's stamp; seen[] starts over when the stamps wrap. */
static uint32_t
stamp_next(uint32_t *stamp, uint32_t *seen, uint64_t n)
{
	if (++*stamp == 0) {
		memset(seen, 0, n * sizeof(*seen));
		*stamp = 1;
	}
	return *stamp;
}

/* Every node's lists, allocating the upper blocks. */
static int
load_links(struct rfile *r, hnsw_index *h, uint64_t n)
{
	uint32_t *seen = vdb_calloc(n ? n : 1, sizeof(*seen)), stamp = 0;
	int rv = seen == NULL ? VECDB_ENOMEM : VECDB_OK;

	for (uint32_t s = 0; rv == VECDB_OK && s < n; s++)
		rv = load_list(r, h, s, 0, n, links(h, s, 0), seen,
		    stamp_next(&stamp, seen, n));
	for (uint32_t s = 0; rv == VECDB_OK && s < n; s++) {
		if (h->levels[s] == 0)
			continue;
		size_t words = (size_t) h->levels[s] * h->ls;
		if ((h->upper[s] = vdb_malloc(words * 4)) == NULL) {
			rv = VECDB_ENOMEM;
			break;
		}
		h->upper_bytes += words * 4;
		for (uint32_t l = 1; rv == VECDB_OK && l <= h->levels[s]; l++)
			rv = load_list(r, h, s, l, n, links(h, s, l), seen,
			    stamp_next(&stamp, seen, n));
	}
	vdb_free(seen);
	return rv;
}

/* The checksum, then the label hash and the published state. */
static int
load_finish(struct rfile *r, hnsw_index *h, const struct file_hdr *hd)
{
	uint64_t sum, want = xxh_digest(&r->x);
	int rv;

	if ((rv = r_read(r, &sum, sizeof(sum), 0)) != VECDB_OK)
		return rv;
	if (sum != want)
		return VECDB_ECORRUPT;
	if (map_reserve(h, hd->n) != VECDB_OK)
		return VECDB_ENOMEM;
	atomic_fetch_add(&h->scratch_bytes, h->map_cap * 12);
	for (uint32_t s = 0; s < hd->n; s++) {
		if (map_find(h, h->labels[s]) != NO_SLOT)
			return VECDB_ECORRUPT; /* duplicate label */
		map_put(h, h->labels[s], s);
	}
	for (uint32_t s = 0; s < hd->n; s++)
		if (h->deleted[s])
			free_push(h, s);
	if (hd->n > 0)
		atomic_store(&h->ep, (uint64_t) hd->entry |
		    (uint64_t) hd->top << 32);
	h->rng = hd->rng;
	atomic_store(&h->n_deleted, hd->n_deleted);
	atomic_store(&h->n, hd->n);
	return VECDB_OK;
}

/* Parse the whole file into a new index. */
static int
load_all(struct rfile *r, uint64_t size, const hnsw_config *expect,
    hnsw_index **out, struct file_hdr *hd)
{
	hnsw_config c;
	hnsw_index *h;
	int rv;

	config_clamp(expect, &c);
	if ((rv = load_header(r, &c, size, hd)) != VECDB_OK)
		return rv;
	if ((rv = hnsw_new(&c, &h)) != VECDB_OK)
		return rv;
	uint64_t qbytes = 0;
	if ((rv = load_quant(r, h, hd, size, &qbytes)) != VECDB_OK ||
	    (rv = grow_locked(h, hd->n)) != VECDB_OK ||
	    (rv = load_nodes(r, h, hd, size, qbytes)) != VECDB_OK ||
	    (rv = load_vectors(r, h, hd->n)) != VECDB_OK ||
	    (rv = load_links(r, h, hd->n)) != VECDB_OK ||
	    (rv = load_finish(r, h, hd)) != VECDB_OK) {
		hnsw_free(h);
		return rv;
	}
	*out = h;
	return VECDB_OK;
}

int
hnsw_load(const char *path, const hnsw_config *expect, hnsw_index **out,
    uint64_t *covered_seq)
{
	struct rfile r = { .fd = -1 };
	struct file_hdr hd;
	struct stat st;
	int rv;

	if (path == NULL || expect == NULL || out == NULL)
		return VECDB_EINVAL;
	if (expect->dim == 0 || expect->dim > VECDB_DIM_MAX)
		return VECDB_EINVAL;
	if ((r.fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
		return errno == ENOENT ? VECDB_ENOTFOUND : VECDB_EIO;
	if (fstat(r.fd, &st) != 0) {
		close(r.fd);
		return VECDB_EIO;
	}
	if ((r.buf = vdb_malloc(IO_BUF)) == NULL) {
		close(r.fd);
		return VECDB_ENOMEM;
	}
	xxh_init(&r.x);
	rv = load_all(&r, (uint64_t) st.st_size, expect, out, &hd);
	close(r.fd);
	vdb_free(r.buf);
	if (rv == VECDB_OK && covered_seq != NULL)
		*covered_seq = hd.covered_seq;
	return rv;
}
