/*
 * router_batch.c: searches that would only queue on the nodes go
 * together. A node says in its health answer how many requests it runs
 * at once (HealthResult.parallelism: its handler threads, at most one a
 * CPU). Once a collection has that many searches in flight on a shard, a
 * search sent now would wait on the node for one of them to end; it
 * waits here instead, in the collection's open group, and the group goes
 * as one batch search when a search in flight comes back. Each node then
 * receives, hands off and answers one request for the group instead of
 * one a search: on the benchmark's shared core, more than half of what
 * a routed search cost a node (docs/ROUTER.md, "Searches that queue go
 * together"; docs/PERFORMANCE.md). Below that many
 * in flight, or while a shard's member has not said, a search goes at
 * once on its own, as before.
 *
 * The first search to wait leads its group: it sends the batch when a
 * slot frees (or its deadline says go anyway) and every member takes its
 * own answers from it. Searches of a group share one collection, one
 * topology and the same read options.
 *
 * Errors: a batch refused for something in one search (EINVAL, EDIM) is
 * not the others' error, so every member then runs alone and gets its
 * own answer; any other error (a shard unavailable or late, no such
 * collection) is every member's, as it would have been alone.
 */
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "router_impl.h"
#include "vdb.h"

/* The searches of one group: every member's, in the order they came. */
struct group {
	struct api_search *s;     /* shallow copies: vectors and filters are
				     the members', who wait until done */
	size_t n, cap;
	unsigned members;         /* threads in it, the leader first */
	unsigned left;            /* members yet to take their answers */
	int done;
	int rv;                   /* the batch's outcome */
	char msg[1024];           /* ... its message, when not OK */
	vecdb_records **out;      /* n answers (rv OK); taken by members */
	uint64_t missing[API_SHARDS_MAX / 64]; /* shards left out */
	pthread_cond_t cv;        /* done */
};

/* The searches of one collection under one topology and read options. */
struct router_batch_lane {
	router_topology *t;       /* the key: t, coll, primary, partial */
	char *coll;               /* owned */
	int primary, partial;
	unsigned refs;            /* threads using it */
	unsigned inflight;        /* searches sent and not yet back */
	unsigned waiting;         /* requests waiting in its groups */
	struct group *open;       /* the group new searches join, or NULL */
	pthread_cond_t cv;        /* inflight went down */
	struct router_batch_lane *next;
};

void
router_batcher_init(struct router_batcher *b)
{
	pthread_mutex_init(&b->lock, NULL);
	b->lanes = NULL;
	b->batches = 0;
	b->batched = 0;
}

void
router_batcher_fini(struct router_batcher *b)
{
	/* every search has returned: no lane is left */
	pthread_mutex_destroy(&b->lock);
}

unsigned
router_batch_limit(router_topology *t, int primary)
{
	unsigned lim = UINT_MAX;

	for (size_t i = 0; i < t->n; i++) {
		struct router_shard *s = &t->shards[i];
		size_t p = (size_t) __atomic_load_n(&s->primary_idx,
		    __ATOMIC_RELAXED);
		unsigned sum = 0, k;

		for (size_t j = 0; j < s->n_members; j++) {
			/* reads go to the replicas while there are any */
			if ((primary || s->n_members == 1) != (j == p))
				continue;
			if ((k = __atomic_load_n(&s->members[j].parallelism,
			    __ATOMIC_RELAXED)) == 0)
				return 0;   /* not said yet: no limit */
			sum += k;
		}
		if (sum < lim)
			lim = sum;
	}
	return lim == UINT_MAX ? 0 : lim;
}

/* The lane of (t, coll, read options), made if need be, referenced;
 * NULL when out of memory. Under b->lock. */
static struct router_batch_lane *
lane_get(struct router_batcher *b, router_topology *t, const char *coll,
    int primary, int partial)
{
	struct router_batch_lane *l;

	for (l = b->lanes; l != NULL; l = l->next)
		if (l->t == t && l->primary == primary &&
		    l->partial == partial && strcmp(l->coll, coll) == 0)
			break;
	if (l == NULL) {
		if ((l = vdb_calloc(1, sizeof(*l))) == NULL ||
		    (l->coll = vdb_strdup(coll)) == NULL) {
			vdb_free(l);
			return NULL;
		}
		l->t = t;
		l->primary = primary;
		l->partial = partial;
		vdb_cond_init(&l->cv);
		l->next = b->lanes;
		b->lanes = l;
	}
	l->refs++;
	return l;
}

/* Let go of l; the last user frees it. Under b->lock. */
static void
lane_put(struct router_batcher *b, struct router_batch_lane *l)
{
	struct router_batch_lane **pp;

	if (--l->refs > 0)
		return;
	for (pp = &b->lanes; *pp != l; pp = &(*pp)->next)
		;
	*pp = l->next;
	pthread_cond_destroy(&l->cv);
	vdb_free(l->coll);
	vdb_free(l);
}

static void
group_free(struct group *g)
{
	if (g->out != NULL)
		vecdb_records_free_array(g->out, g->n);
	pthread_cond_destroy(&g->cv);
	vdb_free(g->s);
	vdb_free(g);
}

/* Add n searches to g. */
static int
group_add(struct group *g, const struct api_search *s, size_t n)
{
	if (g->n + n > g->cap) {
		size_t cap = g->cap ? g->cap : 8;
		struct api_search *ns;

		while (cap < g->n + n)
			cap *= 2;
		if ((ns = vdb_realloc(g->s, cap * sizeof(*ns))) == NULL)
			return VECDB_ENOMEM;
		g->s = ns;
		g->cap = cap;
	}
	memcpy(g->s + g->n, s, n * sizeof(*s));
	g->n += n;
	g->members++;
	g->left++;
	return VECDB_OK;
}

/* A new group holding n searches, or NULL when out of memory. */
static struct group *
group_new(const struct api_search *s, size_t n)
{
	struct group *g = vdb_calloc(1, sizeof(*g));

	if (g == NULL)
		return NULL;
	pthread_cond_init(&g->cv, NULL);
	if (group_add(g, s, n) != VECDB_OK) {
		group_free(g);
		return NULL;
	}
	return g;
}

/* Run one search of l's alone, counted in flight. Called unlocked. */
static int
run_counted(router *r, struct router_batch_lane *l, const char *coll,
    const struct api_search *s, size_t n, router_search_fn run,
    vecdb_records ***out)
{
	struct router_batcher *b = &r->batch;
	int rv = run(r, l->t, coll, s, n, out);

	pthread_mutex_lock(&b->lock);
	l->inflight--;
	pthread_cond_signal(&l->cv);
	lane_put(b, l);
	pthread_mutex_unlock(&b->lock);
	return rv;
}

/*
 * Lead g: wait for a slot in l (until the router's deadline, then go
 * anyway), send the batch and tell the members. Under b->lock, which it
 * drops while the batch is out.
 */
static void
lead(router *r, struct router_batch_lane *l, struct group *g,
    unsigned limit, router_search_fn run)
{
	struct router_batcher *b = &r->batch;
	struct timespec end = vdb_deadline(r->timeout_ms);
	struct api_read_opts *ro = api_read_opts();

	while (l->inflight >= limit)
		if (pthread_cond_timedwait(&l->cv, &b->lock, &end) != 0)
			break;
	if (l->open == g)
		l->open = NULL;
	l->waiting -= g->members;
	l->inflight++;
	if (g->members > 1) {
		__atomic_fetch_add(&b->batches, 1, __ATOMIC_RELAXED);
		__atomic_fetch_add(&b->batched, g->members, __ATOMIC_RELAXED);
	}
	pthread_mutex_unlock(&b->lock);
	if ((g->rv = run(r, l->t, l->coll, g->s, g->n, &g->out)) != VECDB_OK)
		vdb_err_save(g->msg, sizeof(g->msg));
	memcpy(g->missing, ro->missing, sizeof(g->missing));
	pthread_mutex_lock(&b->lock);
	l->inflight--;
	pthread_cond_signal(&l->cv);
	g->done = 1;
	pthread_cond_broadcast(&g->cv);
}

/* Is rv about one search of a batch rather than all of it? */
static int
own_error(int rv)
{
	return rv == VECDB_EINVAL || rv == VECDB_EDIM;
}

/*
 * Take the answers of searches [off, off + n) of g, done, into *out.
 * @return VECDB_OK; g's error; or -1: run alone (an error that may be
 *	another member's). Under b->lock.
 */
static int
take(struct group *g, size_t off, size_t n, int leader, vecdb_records ***out)
{
	vecdb_records **mine;

	if (g->rv != VECDB_OK)
		return g->members > 1 && own_error(g->rv) ? -1 :
		    vdb_err(g->rv, "%s", g->msg);
	if ((mine = vdb_calloc(n ? n : 1, sizeof(*mine))) == NULL)
		return vdb_err(VECDB_ENOMEM, "out of memory");
	memcpy(mine, g->out + off, n * sizeof(*mine));
	memset(g->out + off, 0, n * sizeof(*mine));
	if (!leader)
		for (uint32_t i = 0; i < API_SHARDS_MAX; i++)
			if (g->missing[i / 64] & (1ULL << (i % 64)))
				api_read_opts_missing(i);
	*out = mine;
	return VECDB_OK;
}

int
router_batch_search(router *r, router_topology *t, const char *coll,
    const struct api_search *s, size_t n, router_search_fn run,
    vecdb_records ***out)
{
	struct router_batcher *b = &r->batch;
	struct api_read_opts *ro = api_read_opts();
	unsigned limit = router_batch_limit(t, ro->primary);
	struct router_batch_lane *l;
	struct group *g;
	size_t off = 0;
	int leader = 0, rv;

	if (limit == 0 || n == 0 || n >= ROUTER_BATCH_MAX)
		return run(r, t, coll, s, n, out);
	pthread_mutex_lock(&b->lock);
	if ((l = lane_get(b, t, coll, ro->primary, ro->allow_partial)) ==
	    NULL) {
		pthread_mutex_unlock(&b->lock);
		return run(r, t, coll, s, n, out);
	}
	if (l->open == NULL && l->inflight < limit)
		goto alone;
	if ((g = l->open) != NULL && g->n + n <= ROUTER_BATCH_MAX &&
	    group_add(g, s, n) == VECDB_OK) {
		off = g->n - n;
	} else if ((g = group_new(s, n)) != NULL) {
		l->open = g;       /* a full group still waits to go */
		leader = 1;
	} else {
		goto alone;        /* out of memory for a group */
	}
	l->waiting++;
	if (leader)
		lead(r, l, g, limit, run);
	else
		while (!g->done)
			pthread_cond_wait(&g->cv, &b->lock);
	rv = take(g, off, n, leader, out);
	if (--g->left == 0)
		group_free(g);
	lane_put(b, l);
	pthread_mutex_unlock(&b->lock);
	if (rv == -1)
		return run(r, t, coll, s, n, out);
	return rv;
alone:
	l->inflight++;
	pthread_mutex_unlock(&b->lock);
	return run_counted(r, l, coll, s, n, run, out);
}

size_t
router_batch_waiting(router *r)
{
	struct router_batcher *b = &r->batch;
	size_t k = 0;

	pthread_mutex_lock(&b->lock);
	for (struct router_batch_lane *l = b->lanes; l != NULL; l = l->next)
		k += l->waiting;
	pthread_mutex_unlock(&b->lock);
	return k;
}
