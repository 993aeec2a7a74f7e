/*
 * sparse.c: the inverted index of sparse.h.
 *
 * Two open-addressing hash tables (linear probing, power-of-two sizes,
 * at most half full): labels to slots, and vector indices to posting
 * lists. A put reserves everything it needs before it changes anything,
 * so a failed put leaves the index as it was.
 */
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "sparse.h"
#include "vdb.h"

enum { SLOT_FREE = 0, SLOT_LIVE = 1, SLOT_DEAD = 2 };

#define COMPACT_MIN 1024 /* dead postings and slots before a compaction */

struct posting {
	uint32_t slot;
	float value;
};

struct plist {
	uint32_t len, cap;
	struct posting *p;
};

/* One search's accumulators: acc[slot] is valid when stamp[slot] == gen. */
struct scratch {
	float *acc;
	uint32_t *stamp;
	uint32_t *touched;
	size_t cap;
	uint32_t gen;
	struct scratch *next;
};

struct sparse_index {
	int idf;
	pthread_rwlock_t lock;

	/* slots */
	uint64_t *labels;
	uint32_t *nnz;
	uint8_t *state;
	size_t nslots, slot_cap;
	uint32_t *free_slots;
	size_t nfree;
	size_t live, dead;              /* slots */
	size_t live_postings, dead_postings;

	/* label -> slot + 1 (0: empty) */
	uint64_t *lkeys;
	uint32_t *lvals;
	size_t lcap, lused;

	/* vector index -> list number + 1 (0: empty) */
	uint32_t *ikeys;
	uint32_t *ivals;
	size_t icap, iused;
	struct plist *lists;
	size_t nlists, lists_cap;

	pthread_mutex_t scratch_mu;
	struct scratch *scratch_free;
};

/* ===== Checks ===== */

struct pair {
	uint32_t index;
	float value;
};

static int
pair_cmp(const void *a, const void *b)
{
	const struct pair *x = a, *y = b;

	return (x->index > y->index) - (x->index < y->index);
}

/* Whether indices are strictly ascending and values finite. */
static int
vec_ok(const sparse_vec *v)
{
	if (v->n > SPARSE_NNZ_MAX || (v->n && (!v->indices || !v->values)))
		return 0;
	for (uint32_t i = 0; i < v->n; i++)
		if (!isfinite(v->values[i]) ||
		    (i && v->indices[i] <= v->indices[i - 1]))
			return 0;
	return 1;
}

int
sparse_normalize(uint32_t *indices, float *values, uint32_t n)
{
	struct pair *p;
	int sorted = 1;

	if (n > SPARSE_NNZ_MAX)
		return vdb_err(VECDB_EINVAL, "a sparse vector has %u pairs, "
		    "more than %u", n, SPARSE_NNZ_MAX);
	for (uint32_t i = 0; i < n; i++) {
		if (!isfinite(values[i]))
			return vdb_err(VECDB_EINVAL, "sparse value at "
			    "position %u is not a finite number", i);
		if (i && indices[i] <= indices[i - 1])
			sorted = 0;
	}
	if (!sorted) {
		if ((p = vdb_malloc(n * sizeof(*p))) == NULL)
			return vdb_err(VECDB_ENOMEM, "out of memory");
		for (uint32_t i = 0; i < n; i++)
			p[i] = (struct pair) { indices[i], values[i] };
		qsort(p, n, sizeof(*p), pair_cmp);
		for (uint32_t i = 0; i < n; i++) {
			indices[i] = p[i].index;
			values[i] = p[i].value;
		}
		vdb_free(p);
	}
	for (uint32_t i = 1; i < n; i++)
		if (indices[i] == indices[i - 1])
			return vdb_err(VECDB_EINVAL, "sparse index %u appears "
			    "twice", indices[i]);
	return VECDB_OK;
}

float
sparse_dot(const sparse_vec *a, const sparse_vec *b)
{
	float s = 0;
	uint32_t i = 0, j = 0;

	while (i < a->n && j < b->n) {
		if (a->indices[i] < b->indices[j])
			i++;
		else if (a->indices[i] > b->indices[j])
			j++;
		else
			s += a->values[i++] * b->values[j++];
	}
	return s;
}

/* ===== Hash tables ===== */

static size_t
hash64(uint64_t x)
{
	x ^= x >> 33;
	x *= 0xff51afd7ed558ccdULL;
	x ^= x >> 33;
	x *= 0xc4ceb9fe1a85ec53ULL;
	x ^= x >> 33;
	return (size_t) x;
}

/* The slot of label, or -1. */
static long
lmap_get(const sparse_index *s, uint64_t label)
{
	if (s->lcap == 0)
		return -1;
	for (size_t i = hash64(label) & (s->lcap - 1);; i = (i + 1) &
	    (s->lcap - 1)) {
		if (s->lvals[i] == 0)
			return -1;
		if (s->lkeys[i] == label)
			return (long) s->lvals[i] - 1;
	}
}

static void
lmap_insert(uint64_t *keys, uint32_t *vals, size_t cap, uint64_t label,
    uint32_t v)
{
	size_t i = hash64(label) & (cap - 1);

	while (vals[i] != 0 && keys[i] != label)
		i = (i + 1) & (cap - 1);
	keys[i] = label;
	vals[i] = v;
}

/* Room for one more label (the table stays at most half full). */
static int
lmap_reserve(sparse_index *s)
{
	size_t cap = s->lcap ? s->lcap * 2 : 64;
	uint64_t *keys;
	uint32_t *vals;

	if ((s->lused + 1) * 2 <= s->lcap)
		return VECDB_OK;
	keys = vdb_malloc(cap * sizeof(*keys));
	vals = vdb_calloc(cap, sizeof(*vals));
	if (keys == NULL || vals == NULL) {
		vdb_free(keys);
		vdb_free(vals);
		return vdb_err(VECDB_ENOMEM, "out of memory");
	}
	for (size_t i = 0; i < s->lcap; i++)
		if (s->lvals[i])
			lmap_insert(keys, vals, cap, s->lkeys[i], s->lvals[i]);
	vdb_free(s->lkeys);
	vdb_free(s->lvals);
	s->lkeys = keys;
	s->lvals = vals;
	s->lcap = cap;
	return VECDB_OK;
}

/* Remove label (present), shifting the entries after it back so that
 * no probe sequence breaks. */
static void
lmap_del(sparse_index *s, uint64_t label)
{
	size_t m = s->lcap - 1, i = hash64(label) & m, j;

	while (s->lkeys[i] != label || s->lvals[i] == 0)
		i = (i + 1) & m;
	s->lvals[i] = 0;
	s->lused--;
	for (j = (i + 1) & m; s->lvals[j] != 0; j = (j + 1) & m) {
		size_t home = hash64(s->lkeys[j]) & m;

		/* the entry at j may move to the hole at i if its home is
		 * not in (i, j] (cyclically) */
		if ((j > i && (home <= i || home > j)) ||
		    (j < i && (home <= i && home > j))) {
			s->lkeys[i] = s->lkeys[j];
			s->lvals[i] = s->lvals[j];
			s->lvals[j] = 0;
			i = j;
		}
	}
}

static size_t
hash32(uint32_t x)
{
	return (size_t) ((uint64_t) x * 0x9E3779B97F4A7C15ULL >> 20);
}

/* The list of vector index ix, or NULL. */
static struct plist *
imap_get(const sparse_index *s, uint32_t ix)
{
	if (s->icap == 0)
		return NULL;
	for (size_t i = hash32(ix) & (s->icap - 1);; i = (i + 1) &
	    (s->icap - 1)) {
		if (s->ivals[i] == 0)
			return NULL;
		if (s->ikeys[i] == ix)
			return &s->lists[s->ivals[i] - 1];
	}
}

static int
imap_grow(sparse_index *s)
{
	size_t cap = s->icap ? s->icap * 2 : 256;
	uint32_t *keys = vdb_malloc(cap * sizeof(*keys));
	uint32_t *vals = vdb_calloc(cap, sizeof(*vals));

	if (keys == NULL || vals == NULL) {
		vdb_free(keys);
		vdb_free(vals);
		return vdb_err(VECDB_ENOMEM, "out of memory");
	}
	for (size_t i = 0; i < s->icap; i++) {
		size_t j;

		if (s->ivals[i] == 0)
			continue;
		for (j = hash32(s->ikeys[i]) & (cap - 1); vals[j];
		    j = (j + 1) & (cap - 1))
			;
		keys[j] = s->ikeys[i];
		vals[j] = s->ivals[i];
	}
	vdb_free(s->ikeys);
	vdb_free(s->ivals);
	s->ikeys = keys;
	s->ivals = vals;
	s->icap = cap;
	return VECDB_OK;
}

/* The list of ix, created (empty) if it has none. */
static struct plist *
imap_add(sparse_index *s, uint32_t ix)
{
	struct plist *l = imap_get(s, ix);
	size_t i;

	if (l != NULL)
		return l;
	if ((s->iused + 1) * 2 > s->icap && imap_grow(s) != VECDB_OK)
		return NULL;
	if (s->nlists == s->lists_cap) {
		size_t cap = s->lists_cap ? s->lists_cap * 2 : 256;
		struct plist *n = vdb_realloc(s->lists, cap * sizeof(*n));

		if (n == NULL) {
			vdb_err(VECDB_ENOMEM, "out of memory");
			return NULL;
		}
		s->lists = n;
		s->lists_cap = cap;
	}
	for (i = hash32(ix) & (s->icap - 1); s->ivals[i];
	    i = (i + 1) & (s->icap - 1))
		;
	s->ikeys[i] = ix;
	s->ivals[i] = (uint32_t) ++s->nlists;
	s->iused++;
	l = &s->lists[s->nlists - 1];
	memset(l, 0, sizeof(*l));
	return l;
}

/* ===== The index ===== */

int
sparse_new(int idf, sparse_index **out)
{
	sparse_index *s = vdb_calloc(1, sizeof(*s));
	pthread_rwlockattr_t attr;

	*out = NULL;
	if (s == NULL)
		return vdb_err(VECDB_ENOMEM, "out of memory");
	s->idf = idf != 0;
	/* writers first: glibc's default lets a steady stream of searches
	 * starve every put */
	pthread_rwlockattr_init(&attr);
	pthread_rwlockattr_setkind_np(&attr,
	    PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
	pthread_rwlock_init(&s->lock, &attr);
	pthread_rwlockattr_destroy(&attr);
	pthread_mutex_init(&s->scratch_mu, NULL);
	*out = s;
	return VECDB_OK;
}

static void
scratch_free(struct scratch *x)
{
	vdb_free(x->acc);
	vdb_free(x->stamp);
	vdb_free(x->touched);
	vdb_free(x);
}

void
sparse_free(sparse_index *s)
{
	if (s == NULL)
		return;
	for (size_t i = 0; i < s->nlists; i++)
		vdb_free(s->lists[i].p);
	vdb_free(s->lists);
	vdb_free(s->ikeys);
	vdb_free(s->ivals);
	vdb_free(s->lkeys);
	vdb_free(s->lvals);
	vdb_free(s->labels);
	vdb_free(s->nnz);
	vdb_free(s->state);
	vdb_free(s->free_slots);
	while (s->scratch_free) {
		struct scratch *x = s->scratch_free;

		s->scratch_free = x->next;
		scratch_free(x);
	}
	pthread_mutex_destroy(&s->scratch_mu);
	pthread_rwlock_destroy(&s->lock);
	vdb_free(s);
}

/* Room for one more slot. */
static int
slots_reserve(sparse_index *s)
{
	size_t cap;
	void *p;

	if (s->nfree || s->nslots < s->slot_cap)
		return VECDB_OK;
	if (s->slot_cap >= UINT32_MAX / 2)
		return vdb_err(VECDB_EFULL, "the sparse index is full");
	cap = s->slot_cap ? s->slot_cap * 2 : 256;
	if ((p = vdb_realloc(s->labels, cap * sizeof(*s->labels))) == NULL)
		goto oom;
	s->labels = p;
	if ((p = vdb_realloc(s->nnz, cap * sizeof(*s->nnz))) == NULL)
		goto oom;
	s->nnz = p;
	if ((p = vdb_realloc(s->state, cap)) == NULL)
		goto oom;
	s->state = p;
	if ((p = vdb_realloc(s->free_slots, cap * sizeof(uint32_t))) == NULL)
		goto oom;
	s->free_slots = p;
	s->slot_cap = cap;
	return VECDB_OK;
oom:
	return vdb_err(VECDB_ENOMEM, "out of memory");
}

/* Mark slot dead (its postings stay until a compaction). */
static void
slot_kill(sparse_index *s, uint32_t slot)
{
	s->state[slot] = SLOT_DEAD;
	s->live--;
	s->dead++;
	s->live_postings -= s->nnz[slot];
	s->dead_postings += s->nnz[slot];
	lmap_del(s, s->labels[slot]);
}

/* Drop every dead posting and free the dead slots (write lock held). */
static void
compact_locked(sparse_index *s)
{
	for (size_t i = 0; i < s->nlists; i++) {
		struct plist *l = &s->lists[i];
		uint32_t n = 0;

		for (uint32_t j = 0; j < l->len; j++)
			if (s->state[l->p[j].slot] == SLOT_LIVE)
				l->p[n++] = l->p[j];
		l->len = n;
		if (n == 0) {
			vdb_free(l->p);
			l->p = NULL;
			l->cap = 0;
		} else if (n < l->cap / 4) {
			struct posting *p = vdb_realloc(l->p,
			    n * sizeof(*p));

			if (p != NULL) {
				l->p = p;
				l->cap = n;
			}
		}
	}
	for (size_t i = 0; i < s->nslots; i++)
		if (s->state[i] == SLOT_DEAD) {
			s->state[i] = SLOT_FREE;
			s->free_slots[s->nfree++] = (uint32_t) i;
		}
	s->dead = 0;
	s->dead_postings = 0;
}

static void
maybe_compact(sparse_index *s)
{
	size_t dead = s->dead + s->dead_postings;

	if (dead >= COMPACT_MIN && dead > s->live + s->live_postings)
		compact_locked(s);
}

int
sparse_put(sparse_index *s, uint64_t label, const sparse_vec *v)
{
	long old;
	uint32_t slot;
	int rc;

	if (!vec_ok(v))
		return vdb_err(VECDB_EINVAL, "sparse vector not normalized: "
		    "indices must ascend, values be finite");
	pthread_rwlock_wrlock(&s->lock);
	/* reserve: a slot, a label entry, each list and a posting in it */
	if ((rc = slots_reserve(s)) != VECDB_OK ||
	    (rc = lmap_reserve(s)) != VECDB_OK)
		goto out;
	for (uint32_t i = 0; i < v->n; i++) {
		struct plist *l = imap_add(s, v->indices[i]);

		if (l == NULL) {
			rc = VECDB_ENOMEM;
			goto out;
		}
		if (l->len == l->cap) {
			uint32_t cap = l->cap ? l->cap * 2 : 4;
			struct posting *p;

			if (l->cap >= UINT32_MAX / 2) {
				rc = vdb_err(VECDB_EFULL, "a sparse index's "
				    "posting list is full");
				goto out;
			}
			if ((p = vdb_realloc(l->p, cap * sizeof(*p))) ==
			    NULL) {
				rc = vdb_err(VECDB_ENOMEM, "out of memory");
				goto out;
			}
			l->p = p;
			l->cap = cap;
		}
	}
	/* nothing can fail from here on */
	if ((old = lmap_get(s, label)) >= 0)
		slot_kill(s, (uint32_t) old);
	slot = s->nfree ? s->free_slots[--s->nfree] : (uint32_t) s->nslots++;
	s->labels[slot] = label;
	s->nnz[slot] = v->n;
	s->state[slot] = SLOT_LIVE;
	lmap_insert(s->lkeys, s->lvals, s->lcap, label, slot + 1);
	s->lused++;
	for (uint32_t i = 0; i < v->n; i++) {
		struct plist *l = imap_get(s, v->indices[i]);

		l->p[l->len++] = (struct posting) { slot, v->values[i] };
	}
	s->live++;
	s->live_postings += v->n;
	maybe_compact(s);
	rc = VECDB_OK;
out:
	pthread_rwlock_unlock(&s->lock);
	return rc;
}

int
sparse_remove(sparse_index *s, uint64_t label, int *found)
{
	long slot;

	pthread_rwlock_wrlock(&s->lock);
	slot = lmap_get(s, label);
	if (slot >= 0) {
		slot_kill(s, (uint32_t) slot);
		maybe_compact(s);
	}
	pthread_rwlock_unlock(&s->lock);
	if (found)
		*found = slot >= 0;
	return VECDB_OK;
}

int
sparse_compact(sparse_index *s)
{
	pthread_rwlock_wrlock(&s->lock);
	compact_locked(s);
	pthread_rwlock_unlock(&s->lock);
	return VECDB_OK;
}

int
sparse_has(sparse_index *s, uint64_t label)
{
	int r;

	pthread_rwlock_rdlock(&s->lock);
	r = lmap_get(s, label) >= 0;
	pthread_rwlock_unlock(&s->lock);
	return r;
}

size_t
sparse_count(sparse_index *s)
{
	size_t n;

	pthread_rwlock_rdlock(&s->lock);
	n = s->live;
	pthread_rwlock_unlock(&s->lock);
	return n;
}

void
sparse_postings(sparse_index *s, size_t *live, size_t *dead)
{
	pthread_rwlock_rdlock(&s->lock);
	*live = s->live_postings;
	*dead = s->dead_postings;
	pthread_rwlock_unlock(&s->lock);
}

size_t
sparse_memory(sparse_index *s)
{
	size_t b = sizeof(*s);

	pthread_rwlock_rdlock(&s->lock);
	b += s->slot_cap * (sizeof(uint64_t) + 2 * sizeof(uint32_t) + 1);
	b += s->lcap * (sizeof(uint64_t) + sizeof(uint32_t));
	b += s->icap * 2 * sizeof(uint32_t);
	b += s->lists_cap * sizeof(struct plist);
	for (size_t i = 0; i < s->nlists; i++)
		b += s->lists[i].cap * sizeof(struct posting);
	pthread_mutex_lock(&s->scratch_mu);
	for (struct scratch *x = s->scratch_free; x; x = x->next)
		b += sizeof(*x) + x->cap * (sizeof(float) +
		    2 * sizeof(uint32_t));
	pthread_mutex_unlock(&s->scratch_mu);
	pthread_rwlock_unlock(&s->lock);
	return b;
}

/* ===== Search ===== */

/* A scratch for n slots, from the free list or new. */
static struct scratch *
scratch_get(sparse_index *s, size_t n)
{
	struct scratch *x;

	pthread_mutex_lock(&s->scratch_mu);
	if ((x = s->scratch_free) != NULL)
		s->scratch_free = x->next;
	pthread_mutex_unlock(&s->scratch_mu);
	if (x == NULL && (x = vdb_calloc(1, sizeof(*x))) == NULL)
		return NULL;
	if (x->cap < n) {
		size_t cap = n < 256 ? 256 : n + n / 2;
		float *acc = vdb_malloc(cap * sizeof(float));
		uint32_t *stamp = vdb_calloc(cap, sizeof(uint32_t));
		uint32_t *touched = vdb_malloc(cap * sizeof(uint32_t));

		if (acc == NULL || stamp == NULL || touched == NULL) {
			vdb_free(acc);
			vdb_free(stamp);
			vdb_free(touched);
			scratch_free(x);
			return NULL;
		}
		vdb_free(x->acc);
		vdb_free(x->stamp);
		vdb_free(x->touched);
		x->acc = acc;
		x->stamp = stamp;
		x->touched = touched;
		x->cap = cap;
		x->gen = 0;
	}
	if (++x->gen == 0) {
		memset(x->stamp, 0, x->cap * sizeof(uint32_t));
		x->gen = 1;
	}
	return x;
}

static void
scratch_put(sparse_index *s, struct scratch *x)
{
	pthread_mutex_lock(&s->scratch_mu);
	x->next = s->scratch_free;
	s->scratch_free = x;
	pthread_mutex_unlock(&s->scratch_mu);
}

/* Whether hit a ranks below hit b. */
static int
worse(const sparse_hit *a, const sparse_hit *b)
{
	return a->score < b->score ||
	    (a->score == b->score && a->label > b->label);
}

/* Min-heap on worse(): h[0] is the worst kept. */
static void
heap_down(sparse_hit *h, size_t n, size_t i)
{
	for (;;) {
		size_t l = 2 * i + 1, m = i;

		if (l < n && worse(&h[l], &h[m]))
			m = l;
		if (l + 1 < n && worse(&h[l + 1], &h[m]))
			m = l + 1;
		if (m == i)
			return;
		sparse_hit t = h[i];
		h[i] = h[m];
		h[m] = t;
		i = m;
	}
}

static void
heap_up(sparse_hit *h, size_t i)
{
	while (i > 0) {
		size_t p = (i - 1) / 2;

		if (!worse(&h[i], &h[p]))
			return;
		sparse_hit t = h[i];
		h[i] = h[p];
		h[p] = t;
		i = p;
	}
}

static int
hit_desc(const void *a, const void *b)
{
	const sparse_hit *x = a, *y = b;

	if (worse(x, y))
		return 1;
	return worse(y, x) ? -1 : 0;
}

int
sparse_search(sparse_index *s, const sparse_vec *q, size_t k,
    sparse_accept_fn accept, void *arg, sparse_hit *out, size_t *n_out)
{
	struct scratch *x;
	size_t nt = 0, n = 0;
	int all_live;

	*n_out = 0;
	if (!vec_ok(q))
		return vdb_err(VECDB_EINVAL, "sparse query not normalized: "
		    "indices must ascend, values be finite");
	if (k == 0 || q->n == 0)
		return VECDB_OK;
	pthread_rwlock_rdlock(&s->lock);
	if ((x = scratch_get(s, s->nslots)) == NULL) {
		pthread_rwlock_unlock(&s->lock);
		return vdb_err(VECDB_ENOMEM, "out of memory");
	}
	/* with no dead posting anywhere (no removal since the last
	 * compaction), every posting counts and a list's length is its
	 * document frequency */
	all_live = s->dead_postings == 0;
	for (uint32_t i = 0; i < q->n; i++) {
		struct plist *l = imap_get(s, q->indices[i]);
		const struct posting *p;
		float w = q->values[i];
		size_t df = 0;

		if (l == NULL || l->len == 0)
			continue;
		p = l->p;
		if (s->idf) {
			double N = (double) s->live;

			if (all_live)
				df = l->len;
			else
				for (uint32_t j = 0; j < l->len; j++)
					df += s->state[p[j].slot] ==
					    SLOT_LIVE;
			if (df == 0)
				continue;
			w = (float) (w * log1p((N - (double) df + 0.5) /
			    ((double) df + 0.5)));
		}
		for (uint32_t j = 0; j < l->len; j++) {
			uint32_t slot = p[j].slot;

			if (!all_live && s->state[slot] != SLOT_LIVE)
				continue;
			if (x->stamp[slot] != x->gen) {
				x->stamp[slot] = x->gen;
				x->acc[slot] = 0;
				x->touched[nt++] = slot;
			}
			x->acc[slot] += w * p[j].value;
		}
	}
	for (size_t i = 0; i < nt; i++) {
		sparse_hit h = { s->labels[x->touched[i]],
		    x->acc[x->touched[i]] };

		if (n == k && !worse(&out[0], &h))
			continue;
		if (accept && !accept(arg, h.label))
			continue;
		if (n < k) {
			out[n] = h;
			heap_up(out, n++);
		} else {
			out[0] = h;
			heap_down(out, n, 0);
		}
	}
	scratch_put(s, x);
	pthread_rwlock_unlock(&s->lock);
	qsort(out, n, sizeof(*out), hit_desc);
	*n_out = n;
	return VECDB_OK;
}
