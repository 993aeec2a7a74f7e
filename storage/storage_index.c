/*
 * storage_index.c: the in-memory vector indexes and the indexer thread.
 *
 * Each collection with its index on has a `cindex`: an HNSW graph keyed by
 * the collection's vector offsets, and the WAL seq it covers. Writers never
 * touch it: after a commit the writer notifies the indexer thread, which
 * reads the new WAL records in its own read transaction and applies them
 * (a new vector: insert its offset; an old one: mark it deleted). So a
 * write is acknowledged at commit, and indexing cost stays off that path.
 *
 * A search resolves each graph hit through the `offsets` DB in its own
 * read transaction (nodes of points that transaction cannot see are
 * skipped) and brute-forces the WAL tail the index has not applied yet, so
 * results are those of the transaction's snapshot whatever the indexer's
 * progress.
 *
 * A cindex never changes its graph pointer: a rebuild makes a new cindex
 * and retires the old one, which is freed when its last search releases
 * it. The indexer's lock guards the registry and reference counts only.
 */
#include <errno.h>
#include <malloc.h>
#include <math.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "filter.h"
#include "hnsw.h"
#include "storage_impl.h"

#define APPLY_BATCH 4096        /* records per read txn of the indexer */
#define CKPT_CHANGES 100000     /* a checkpoint after this many changes */
/*
 * ...or after a quarter of the collection's points changed, at least
 * CKPT_MIN: the WAL after a checkpoint is kept for the restart, so this
 * bounds it to about a quarter of the collection's vectors. At 100k x 128
 * a checkpoint writes 66 MB and an update stream of 5,000 points a second
 * makes one every 5 s (vecdb-bench update).
 */
#define CKPT_MIN 10000
#define POLL_MS 100             /* read-only: how often to look for writes */
#define VACUUM_QUEUE 64         /* compactions waiting */

struct cindex {
	uint32_t coll_id;
	int vslot;                    /* the vector: 0 default, 1 + i the
					 named dense vector i */
	char name[2 * VECDB_NAME_MAX + 2]; /* "coll" or "coll.vector" */
	vecdb_collection_config cfg;  /* the vector's settings (as if a
					 collection's default vector) */
	struct coll coll;             /* the collection, as it is */
	hnsw_index *h;                /* never changes; NULL: not built yet */
	_Atomic uint64_t applied;     /* WAL seq the graph covers */
	_Atomic uint64_t stale_txn;   /* newest snapshot (LMDB txn id) that
					 decided to skip a stale insert */
	uint64_t changes;             /* since the last checkpoint */
	_Atomic uint64_t compactions; /* vacuums that produced this graph */
	_Atomic uint64_t ckpt_seq;    /* the WAL up to this seq is not needed
					 to restore the graph: its checkpoint
					 covers it (0: no checkpoint) */
	/* The indexing rate: entries applied, and a window over them
	 * (written by the indexer thread, read by stats). */
	_Atomic uint64_t done;        /* entries applied to this graph */
	_Atomic uint64_t rate_ms;     /* the window's start */
	_Atomic uint64_t rate_done;   /* done at rate_ms */
	_Atomic uint64_t rate;        /* entries/s over the last window */
	int refs;                     /* registry + searches (indexer lock) */
	struct cindex *next;          /* registry list (indexer lock) */
};

struct indexer {
	vecdb *db;
	pthread_t thread;
	pthread_mutex_t lock;         /* guards the fields below */
	pthread_cond_t work_cv;       /* target moved, or stopping */
	pthread_cond_t done_cv;       /* applied moved */
	struct cindex *list;          /* live cindexes */
	_Atomic uint64_t wal_floor;   /* storage_index_wal_floor */
	uint64_t open_seq;            /* last seq at open (fixed after) */
	_Atomic uint64_t entries_in;  /* point entries committed since open */
	_Atomic uint64_t entries_out; /* of them, applied */
	_Atomic int building;         /* building a graph from the points */
	storage_pool *pool;           /* index_threads > 1: the inserters */
	double trimmed_at;            /* see trim_when_caught_up */
	/* The vacuum (see its section). */
	pthread_t vac_thread;
	pthread_cond_t vac_cv;        /* a compaction asked for, or stopping */
	uint32_t vac_queue[VACUUM_QUEUE]; /* collections to compact */
	size_t vac_n;                 /* in vac_queue */
	int vac_busy;                 /* compacting vac_coll */
	uint32_t vac_coll;
	_Atomic uint32_t vac_permille; /* its progress */
	_Atomic uint64_t vac_base;    /* it needs the WAL after this seq */
	struct cindex *swap;          /* a compacted graph to put in place */
	struct cindex *swap_old;      /* the graph it replaces */
	int swap_taken;               /* the indexer took swap */
	uint64_t target;              /* last committed seq we know of */
	uint64_t applied;             /* every record <= this is applied */
	int stopping;                 /* set under lock, atomically: the
					 vacuum reads it without (closing) */
	int reset;                    /* storage_index_reset was called */
	uint64_t last_ckpt_ms;
	uint64_t builds;              /* graph (re)builds, for the stats */
	double build_s;
	uint64_t build_buckets[VECDB_BUILD_BUCKETS];
};

#define RATE_WINDOW_MS 2000      /* the indexing rate's window */

/* Is the indexer stopping? For readers without the lock. */
static int
closing(struct indexer *ix)
{
	return __atomic_load_n(&ix->stopping, __ATOMIC_RELAXED);
}

/* ===== Registry ===== */

/* Record r (of ci's collection) is in ci's graph: mark it applied, and
 * count its entries into the indexing rate (indexer thread). */
static void
mark_applied(struct cindex *ci, const struct wal_rec *r)
{
	uint64_t now = vdb_now_ms(), t0 = atomic_load(&ci->rate_ms);
	uint64_t done = atomic_load(&ci->done);

	atomic_store(&ci->applied, r->seq);
	if (r->len >= 8 && (r->op == WAL_PUT || r->op == WAL_DELETE))
		atomic_store(&ci->done, done += storage_wal_count(r));
	if (t0 == 0) {
		atomic_store(&ci->rate_done, done);
		atomic_store(&ci->rate_ms, now);
	} else if (now - t0 >= RATE_WINDOW_MS) {
		atomic_store(&ci->rate, (atomic_load(&ci->done) -
		    atomic_load(&ci->rate_done)) * 1000 / (now - t0));
		atomic_store(&ci->rate_done, done);
		atomic_store(&ci->rate_ms, now);
	}
}

/* Entries a second the indexer applied to ci's graph lately: over the
 * last full window; or over the current one, when none ended yet or
 * this one is overdue (the indexer went quiet: it decays to 0). */
static double
index_rate(struct cindex *ci)
{
	uint64_t now = vdb_now_ms(), t0 = atomic_load(&ci->rate_ms);
	uint64_t r = atomic_load(&ci->rate), dt = now - t0;

	if (t0 == 0)
		return 0;
	if (r > 0 && dt < RATE_WINDOW_MS)
		return (double) r;
	if (dt < RATE_WINDOW_MS / 8)
		dt = RATE_WINDOW_MS / 8; /* a few records are no rate yet */
	return (double) (atomic_load(&ci->done) -
	    atomic_load(&ci->rate_done)) * 1000.0 / (double) dt;
}

/* A new cindex for a collection (no graph yet), one reference. */
static struct cindex *
cindex_new(const struct coll *c, int vslot, uint64_t applied)
{
	struct cindex *ci = vdb_calloc(1, sizeof(*ci));

	if (ci == NULL)
		return NULL;
	ci->coll_id = c->id;
	ci->vslot = vslot;
	ci->coll = *c;
	storage_vector_cfg(&c->cfg, vslot, &ci->cfg);
	if (vslot == 0)
		snprintf(ci->name, sizeof(ci->name), "%s", c->cfg.name);
	else
		snprintf(ci->name, sizeof(ci->name), "%s.%s", c->cfg.name,
		    c->cfg.vectors[vslot - 1].name);
	atomic_store(&ci->applied, applied);
	ci->refs = 1;
	return ci;
}

/* Drop a reference; the last one frees. Caller holds the lock. */
static void
cindex_unref_locked(struct cindex *ci)
{
	if (--ci->refs == 0) {
		hnsw_free(ci->h);
		vdb_free(ci);
	}
}

/* The registered cindex of a collection's vector. Caller holds the
 * lock. */
static struct cindex *
find_locked(struct indexer *ix, uint32_t coll_id, int vslot)
{
	for (struct cindex *ci = ix->list; ci != NULL; ci = ci->next)
		if (ci->coll_id == coll_id && ci->vslot == vslot)
			return ci;
	return NULL;
}

/* Take a collection's cindexes (vslot -1: of every vector) out of the
 * registry (and unref them). */
static void
unregister_locked(struct indexer *ix, uint32_t coll_id, int vslot)
{
	for (struct cindex **pp = &ix->list; *pp != NULL;)
		if ((*pp)->coll_id == coll_id && (vslot < 0 ||
		    (*pp)->vslot == vslot)) {
			struct cindex *ci = *pp;
			*pp = ci->next;
			cindex_unref_locked(ci);
		} else {
			pp = &(*pp)->next;
		}
}

/*
 * Put ci in the registry, replacing the vector's previous graph and the
 * graphs of any other collection of the same name: a restore replaces a
 * collection under a new id without a DROP record for the old one.
 */
static void
register_ci(struct indexer *ix, struct cindex *ci)
{
	pthread_mutex_lock(&ix->lock);
	unregister_locked(ix, ci->coll_id, ci->vslot);
	for (struct cindex *o = ix->list; o != NULL;)
		if (o->coll_id != ci->coll_id && strcmp(o->coll.cfg.name,
		    ci->coll.cfg.name) == 0) {
			uint32_t id = o->coll_id;
			o = o->next;
			unregister_locked(ix, id, -1);
			o = ix->list; /* the list changed: start again */
		} else {
			o = o->next;
		}
	ci->next = ix->list;
	ix->list = ci;
	pthread_mutex_unlock(&ix->lock);
}

/* The vector of ci's slot in a point's vector bytes (len of them), or
 * NULL when the point has none. */
static const void *
ci_vec(const struct cindex *ci, const void *bytes, size_t len)
{
	return storage_xset_vector(&ci->coll, ci->vslot, bytes, len);
}

/* The first vector slot with a graph: 1 when the collection has no
 * default vector (dimension 0), else 0. */
static int
first_slot(const vecdb_collection_config *c)
{
	return c->dimension == 0;
}

/* <data dir>/index/<collection>[.<vector>].hnsw */
static void
ckpt_path(vecdb *db, const char *name, char *buf, size_t len)
{
	snprintf(buf, len, "%s/index/%s.hnsw", db->path, name);
}

/* The HNSW config of a collection's vector (c: its settings). */
static void
hnsw_cfg_of(const vecdb_collection_config *c, uint32_t coll_id, int vslot,
    hnsw_config *out)
{
	memset(out, 0, sizeof(*out));
	out->dim = c->dimension;
	out->metric = c->metric;
	out->m = c->index.max_connections;
	out->ef_construction = c->index.ef_construction;
	out->ef_search = c->index.ef_search;
	out->max_layer = c->index.max_layer;
	out->seed = 0x9E3779B97F4A7C15ULL ^ coll_id ^
	    ((uint64_t) vslot << 32);
	out->quant = c->quantization;
}

/* ===== Applying WAL records ===== */

/*
 * Apply one PUT or DELETE record to a collection's graph. stale[i] (NULL:
 * none) says entry i's vector was overwritten or deleted again before the
 * record was read: its old node still goes, but inserting the new one
 * would only make a node that a later record deletes. Under a stream of
 * updates the backlog is mostly such entries, so skipping them is what
 * lets the indexer catch up (see read_batch).
 */
static int
apply_points(struct cindex *ci, const struct wal_rec *r, float *buf,
    const uint8_t *stale)
{
	struct wal_iter it;
	struct wal_entry e;
	const void *vec;
	int rv, more;

	if ((rv = storage_wal_iter_init(&it, r)) != VECDB_OK)
		return rv;
	while ((more = storage_wal_next(&it, &e)) > 0) {
		/* Every entry counts towards the next checkpoint, skipped or
		 * not: what a checkpoint bounds is the WAL kept behind it. */
		ci->changes++;
		if (e.old_offset == e.offset)
			continue; /* payload-only update */
		if (e.old_offset != WAL_NO_OFFSET)
			hnsw_mark_deleted(ci->h, e.old_offset); /* may be gone */
		if (r->op == WAL_DELETE || (stale != NULL && stale[it.i - 1]))
			continue;
		/* the default vector first; named vectors may follow */
		if ((vec = ci_vec(ci, e.vec, e.vlen)) == NULL) {
			if (ci->vslot == 0)
				return vdb_err(VECDB_ECORRUPT, "WAL vector of "
				    "%zu bytes in '%s'", e.vlen, ci->name);
			continue; /* the point has no such vector */
		}
		vec_decode(vec, ci->cfg.dimension, ci->cfg.vector_type, buf);
		rv = hnsw_insert(ci->h, e.offset, buf);
		if (rv != VECDB_OK && rv != VECDB_EEXIST)
			return rv;
	}
	return more < 0 ? -more : VECDB_OK;
}

/* ===== Building from the points ===== */

/*
 * Points of a build handed to the pool a chunk at a time. The vectors
 * stay in LMDB's map: the workers only read memory the build's read txn
 * (open on the indexer thread throughout) keeps valid, never the txn.
 */
#define BUILD_CHUNK 4096
struct bchunk {
	hnsw_index *h;
	const struct cindex *ci;
	uint64_t offs[BUILD_CHUNK];
	const void *vecs[BUILD_CHUNK];
	size_t n;
	float **bufs;           /* one of dim floats a thread */
	_Atomic int rv;         /* the first failure */
};

/* Insert point i of a chunk, on pool thread w. */
static void
build_task(void *arg, size_t i, unsigned w)
{
	struct bchunk *b = arg;
	int rv, z = VECDB_OK;

	vec_decode(b->vecs[i], b->ci->cfg.dimension, b->ci->cfg.vector_type,
	    b->bufs[w]);
	rv = hnsw_insert(b->h, b->offs[i], b->bufs[w]);
	if (rv != VECDB_OK && rv != VECDB_EEXIST)
		atomic_compare_exchange_strong(&b->rv, &z, rv);
}

/* A chunk and its buffers for the pool's threads; NULL without memory. */
static struct bchunk *
bchunk_new(struct indexer *ix, const struct cindex *ci, hnsw_index *h)
{
	unsigned n = storage_pool_threads(ix->pool);
	struct bchunk *b = vdb_calloc(1, sizeof(*b));

	if (b == NULL || (b->bufs = vdb_calloc(n, sizeof(float *))) == NULL) {
		vdb_free(b);
		return NULL;
	}
	b->h = h;
	b->ci = ci;
	for (unsigned i = 0; i < n; i++)
		if ((b->bufs[i] = vdb_malloc(ci->cfg.dimension *
		    sizeof(float))) == NULL)
			b->n = SIZE_MAX;
	return b;
}

/* Free a chunk. */
static void
bchunk_free(struct indexer *ix, struct bchunk *b)
{
	for (unsigned i = 0; b->bufs && i < storage_pool_threads(ix->pool); i++)
		vdb_free(b->bufs[i]);
	vdb_free(b->bufs);
	vdb_free(b);
}

/* Insert the scan's points on the pool, BUILD_CHUNK at a time. */
static int
build_parallel(struct indexer *ix, const struct cindex *ci,
    struct storage_scan *s, hnsw_index *h)
{
	struct bchunk *b = bchunk_new(ix, ci, h);
	struct rpoint rp;
	const void *vec;
	int rv = VECDB_OK;

	if (b == NULL || b->n == SIZE_MAX) {
		if (b != NULL)
			bchunk_free(ix, b);
		return vdb_err(VECDB_ENOMEM, "out of memory");
	}
	for (int more = storage_scan_valid(s); more && rv == VECDB_OK;) {
		if ((rv = storage_point_decode(&ci->coll, &s->v, &rp)) !=
		    VECDB_OK)
			break;
		if ((vec = ci_vec(ci, rp.vec, rp.vec_len)) != NULL) {
			b->offs[b->n] = rp.offset;
			b->vecs[b->n++] = vec;
		}
		storage_scan_next(s);
		more = storage_scan_valid(s);
		if (b->n == BUILD_CHUNK || !more) {
			storage_pool_run(ix->pool, b->n, build_task, b);
			b->n = 0;
			rv = atomic_load(&b->rv);
		}
	}
	bchunk_free(ix, b);
	return rv;
}

/* A graph of every point of collection c as of txn; *applied set. */
static int
build_graph(struct indexer *ix, MDB_txn *txn, struct cindex *ci)
{
	vecdb *db = ix->db;
	const struct coll *c = &ci->coll;
	struct coll_state st;
	struct storage_scan s;
	struct rpoint rp;
	const void *vec;
	hnsw_config hc;
	uint64_t last = 0;
	float *buf = NULL;
	int rv;

	hnsw_cfg_of(&ci->cfg, ci->coll_id, ci->vslot, &hc);
	if ((rv = storage_state_get(db, txn, c->id, &st)) != VECDB_OK ||
	    (rv = hnsw_new(&hc, &ci->h)) != VECDB_OK ||
	    (rv = hnsw_reserve(ci->h, st.count)) != VECDB_OK)
		return rv;
	if ((buf = vdb_malloc(hc.dim * sizeof(float))) == NULL)
		return vdb_err(VECDB_ENOMEM, "out of memory");
	if ((rv = storage_scan_open(db, txn, c, NULL, &s)) != VECDB_OK) {
		vdb_free(buf);
		return rv;
	}
	if (ix->pool != NULL)
		rv = build_parallel(ix, ci, &s, ci->h);
	for (; rv == VECDB_OK && storage_scan_valid(&s); storage_scan_next(&s)) {
		if ((rv = storage_point_decode(c, &s.v, &rp)) != VECDB_OK)
			break;
		if ((vec = ci_vec(ci, rp.vec, rp.vec_len)) == NULL)
			continue;
		vec_decode(vec, ci->cfg.dimension, ci->cfg.vector_type, buf);
		rv = hnsw_insert(ci->h, rp.offset, buf);
	}
	if (storage_scan_close(&s) != VECDB_OK && rv == VECDB_OK)
		rv = VECDB_EIO;
	vdb_free(buf);
	if (rv == VECDB_OK && (rv = storage_meta_get_u64(db, txn, "last_seq",
				   &last)) == VECDB_ENOTFOUND)
		rv = VECDB_OK;
	atomic_store(&ci->applied, last);
	ci->changes = st.count ? st.count : 1; /* worth a checkpoint */
	return rv;
}

/* Count a build of @p s seconds in the stats' histogram. */
static void
build_observe(struct indexer *ix, double s)
{
	static const double bounds[] = VECDB_BUILD_BUCKET_BOUNDS;
	int b = 0;

	while (b < VECDB_BUILD_BUCKETS && s > bounds[b])
		b++;
	pthread_mutex_lock(&ix->lock);
	ix->builds++;
	ix->build_s += s;
	if (b < VECDB_BUILD_BUCKETS)
		ix->build_buckets[b]++;
	pthread_mutex_unlock(&ix->lock);
}

/* Build and register a fresh graph for vector vslot of collection c as
 * of txn. */
static int
rebuild_one(struct indexer *ix, MDB_txn *txn, const struct coll *c,
    int vslot)
{
	struct cindex *ci = cindex_new(c, vslot, 0);
	double t0 = vdb_now_s();
	int rv;

	if (ci == NULL)
		return vdb_err(VECDB_ENOMEM, "out of memory");
	atomic_fetch_add(&ix->building, 1);
	rv = build_graph(ix, txn, ci);
	atomic_fetch_sub(&ix->building, 1);
	if (rv != VECDB_OK) {
		hnsw_free(ci->h);
		vdb_free(ci);
		return rv;
	}
	t0 = vdb_now_s() - t0;
	VDB_LOG_INFO("INDX", "built the index of '%s': %llu points in %.2f s",
	    ci->name, (unsigned long long) hnsw_count(ci->h), t0);
	build_observe(ix, t0);
	register_ci(ix, ci);
	return VECDB_OK;
}

/* Build and register fresh graphs for every vector of collection c. */
static int
rebuild(struct indexer *ix, MDB_txn *txn, const struct coll *c)
{
	int rv = VECDB_OK;

	for (int s = first_slot(&c->cfg); s <= (int) c->cfg.n_vectors &&
	    rv == VECDB_OK; s++)
		rv = rebuild_one(ix, txn, c, s);
	return rv;
}

int
storage_coll_by_id(vecdb *db, MDB_txn *txn, uint32_t coll_id, struct coll *out)
{
	MDB_cursor *cur;
	MDB_val k, v;
	char name[VECDB_NAME_MAX + 1];
	int rc, rv = VECDB_ENOTFOUND;

	if ((rc = mdb_cursor_open(txn, db->catalog, &cur)) != 0)
		return storage_mdb_err(rc, "open cursor");
	for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0;
	     rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
		if (v.mv_size < 5 || k.mv_size > VECDB_NAME_MAX ||
		    get_le32((uint8_t *) v.mv_data + 1) != coll_id)
			continue;
		memcpy(name, k.mv_data, k.mv_size);
		name[k.mv_size] = '\0';
		rv = storage_coll_decode(name, v.mv_data, v.mv_size, out);
		break;
	}
	mdb_cursor_close(cur);
	return rv;
}

/* Unregister a collection's graphs and remove their checkpoints. */
static void
forget(struct indexer *ix, uint32_t coll_id)
{
	char path[4200];
	struct cindex *ci;

	pthread_mutex_lock(&ix->lock);
	for (ci = ix->list; ci != NULL; ci = ci->next)
		if (ci->coll_id == coll_id) {
			ckpt_path(ix->db, ci->name, path, sizeof(path));
			unlink(path);
		}
	unregister_locked(ix, coll_id, -1);
	pthread_mutex_unlock(&ix->lock);
}

/* The graph of a collection's vector, referenced, if it is built. */
static struct cindex *
acquire(struct indexer *ix, uint32_t coll_id, int vslot)
{
	struct cindex *ci;

	pthread_mutex_lock(&ix->lock);
	if ((ci = find_locked(ix, coll_id, vslot)) != NULL && ci->h != NULL)
		ci->refs++;
	else
		ci = NULL;
	pthread_mutex_unlock(&ix->lock);
	return ci;
}

static void
release(struct indexer *ix, struct cindex *ci)
{
	pthread_mutex_lock(&ix->lock);
	cindex_unref_locked(ci);
	pthread_mutex_unlock(&ix->lock);
}

/* A CREATE record: an empty graph for the new collection. */
static int
apply_create(struct indexer *ix, const struct wal_rec *r)
{
	struct cindex *ci;
	struct coll c;
	hnsw_config hc;
	char name[VECDB_NAME_MAX + 1];
	const uint8_t *rec;
	size_t rec_len;
	int rv;

	if ((rv = storage_wal_create_decode(r, name, &rec, &rec_len)) !=
	    VECDB_OK ||
	    (rv = storage_coll_decode(name, rec, rec_len, &c)) != VECDB_OK)
		return rv;
	for (int s = first_slot(&c.cfg); s <= (int) c.cfg.n_vectors; s++) {
		if ((ci = cindex_new(&c, s, r->seq)) == NULL)
			return vdb_err(VECDB_ENOMEM, "out of memory");
		/* empty: nothing to restore */
		atomic_store(&ci->ckpt_seq, r->seq);
		hnsw_cfg_of(&ci->cfg, c.id, s, &hc);
		if ((rv = hnsw_new(&hc, &ci->h)) != VECDB_OK) {
			vdb_free(ci);
			return rv;
		}
		register_ci(ix, ci);
	}
	return VECDB_OK;
}

/* Rebuild the graph of coll_id from txn, or forget it if it is gone. */
static int
apply_rebuild(struct indexer *ix, MDB_txn *txn, uint32_t coll_id)
{
	struct coll c;
	int rv = storage_coll_by_id(ix->db, txn, coll_id, &c);

	if (rv == VECDB_ENOTFOUND) {
		forget(ix, coll_id);
		return VECDB_OK;
	}
	return rv ? rv : rebuild(ix, txn, &c);
}

/* Apply a point record to its collection's graph, if not done yet. */
static int
apply_point_record(struct indexer *ix, const struct wal_rec *r, float **buf,
    const uint8_t *stale, uint64_t txnid)
{
	struct cindex *ci;
	uint32_t coll_id;
	int rv;

	if ((rv = storage_wal_coll(r, &coll_id)) != VECDB_OK)
		return rv;
	for (int s = 0; s <= VECDB_VECTORS_MAX && rv == VECDB_OK; s++) {
		if ((ci = acquire(ix, coll_id, s)) == NULL)
			continue; /* index off, collection gone, no vector */
		if (r->seq > atomic_load(&ci->applied)) {
			float *nb = vdb_realloc(*buf, ci->cfg.dimension *
			    sizeof(float));
			if (nb == NULL)
				rv = vdb_err(VECDB_ENOMEM, "out of memory");
			else {
				/* Published before the graph changes: a
				 * search that sees the change sees this
				 * (storage_index_search). */
				if (stale != NULL &&
				    txnid > atomic_load(&ci->stale_txn))
					atomic_store(&ci->stale_txn, txnid);
				if ((rv = apply_points(ci, r, (*buf = nb),
				    stale)) == VECDB_OK)
					mark_applied(ci, r);
			}
		}
		release(ix, ci);
	}
	return rv;
}

/* Apply one WAL record (indexer thread). txn is needed only by the
 * records that rebuild from the points (needs_txn). */
static int
apply_record(struct indexer *ix, MDB_txn *txn, const struct wal_rec *r,
    float **buf, const uint8_t *stale, uint64_t txnid)
{
	uint32_t coll_id;
	int rv;

	switch (r->op) {
	case WAL_CREATE:
		return apply_create(ix, r);
	case WAL_PUT:
	case WAL_DELETE:
		return apply_point_record(ix, r, buf, stale, txnid);
	case WAL_DROP:
		if ((rv = storage_wal_coll(r, &coll_id)) == VECDB_OK)
			forget(ix, coll_id);
		return rv;
	case WAL_RESTORE:
	case WAL_INDEX:
	case WAL_CONFIG:
		if ((rv = storage_wal_coll(r, &coll_id)) != VECDB_OK)
			return rv;
		if (storage_wal_index_off(r)) {
			forget(ix, coll_id);
			return VECDB_OK;
		}
		if (r->op == WAL_CONFIG) {
			int on = 0;
			if ((rv = storage_index_enabled(ix->db, txn, coll_id,
			    &on)) != VECDB_OK || !on)
				return rv; /* no graph to rebuild */
		}
		return apply_rebuild(ix, txn, coll_id);
	default:
		return VECDB_OK; /* payload index records: nothing to do */
	}
}

/* ===== Checkpoints ===== */

/* Publish the WAL floor: the oldest seq a checkpoint or the indexer still
 * needs. Graphs not built yet need none (they are built from the points). */
static void
floor_update(struct indexer *ix)
{
	uint64_t floor;

	pthread_mutex_lock(&ix->lock);
	floor = ix->applied;
	if (atomic_load(&ix->vac_base) < floor)
		floor = atomic_load(&ix->vac_base);
	for (struct cindex *ci = ix->list; ci != NULL; ci = ci->next)
		if (ci->h != NULL && atomic_load(&ci->ckpt_seq) < floor)
			floor = atomic_load(&ci->ckpt_seq);
	pthread_mutex_unlock(&ix->lock);
	atomic_store(&ix->wal_floor, floor);
}

/*
 * Entries the indexer may fall behind before writers wait: at least
 * LAG_MIN, else half the points, but at most LAG_MAX: searches scan the
 * backlog exactly, about 0.3 ms per 1,000 pending 128-d points on 2 busy
 * cores (vecdb-bench ingest), so a search never waits for more than
 * ~60 ms of it. Writers see the bound as latency, never as an error, and
 * a bulk load is searchable no later for it: the indexer sets the pace
 * either way. Without a bound the backlog settles,
 * thanks to the skipped stale inserts, near N ln(write rate / index rate)
 * entries only while writes are under e times the index rate; at 100k x
 * 128, 6,000 updates a second against ~1,000 indexed, it grew past 287,000
 * in 80 s and the WAL that holds it took data.mdb to 2.35x a fresh load
 * (vecdb-bench update). Searches also scan the backlog exactly.
 */
#define LAG_MIN 20000
#define LAG_MAX 200000
#define LAG_WAIT_MS 5000        /* longest a write waits for the indexer */

void
storage_index_throttle(vecdb *db, size_t entries)
{
	struct indexer *ix = db->indexer;
	uint64_t live = 0, cap, deadline = vdb_now_ms() + LAG_WAIT_MS;

	if (ix == NULL)
		return;
	atomic_fetch_add(&ix->entries_in, entries);
	pthread_mutex_lock(&ix->lock);
	for (struct cindex *ci = ix->list; ci != NULL; ci = ci->next)
		live += ci->h ? hnsw_count(ci->h) : 0;
	cap = live / 2 > LAG_MIN ? live / 2 : LAG_MIN;
	if (cap > LAG_MAX)
		cap = LAG_MAX;
	while (!ix->stopping && atomic_load(&ix->building) == 0 &&
	    atomic_load(&ix->entries_in) > atomic_load(&ix->entries_out) + cap &&
	    vdb_now_ms() < deadline) {
		struct timespec ts;
		ts = vdb_deadline(20);
		pthread_cond_timedwait(&ix->done_cv, &ix->lock, &ts);
	}
	pthread_mutex_unlock(&ix->lock);
}

uint64_t
storage_index_wal_floor(vecdb *db)
{
	return db->indexer ? atomic_load(&db->indexer->wal_floor) : 0;
}

/*
 * Is a graph due for a checkpoint? When changed: at the timer, or after
 * enough changes (CKPT_CHANGES, CKPT_MIN). When idle but its checkpoint
 * holds the WAL back by CKPT_CHANGES records: at the timer, so that the
 * writes of other collections can be trimmed.
 */
static int
ckpt_due(struct indexer *ix, const struct cindex *ci, int force, int timer)
{
	uint64_t live = hnsw_count(ci->h), want = live / 4;

	if (want < CKPT_MIN)
		want = CKPT_MIN;
	if (ci->changes > 0)
		return force || timer || ci->changes >= CKPT_CHANGES ||
		    ci->changes >= want;
	return timer &&
	    ix->applied > atomic_load(&ci->ckpt_seq) + CKPT_CHANGES;
}

/*
 * Save the graphs due (writable only). Called on the indexer thread
 * between steps, so every record up to ix->applied is in every graph:
 * the checkpoint covers that far even when its own last record is older.
 */
static void
checkpoint_all(struct indexer *ix, int force)
{
	struct cindex *todo[256];
	size_t n = 0;
	char path[4200];
	uint64_t covered;
	int timer;

	if (ix->db->opts.read_only)
		return;
	pthread_mutex_lock(&ix->lock);
	timer = vdb_now_ms() - ix->last_ckpt_ms >=
	    ix->db->opts.checkpoint_interval_s * 1000ULL;
	for (struct cindex *ci = ix->list; ci && n < 256; ci = ci->next)
		if (ci->h != NULL && ckpt_due(ix, ci, force, timer)) {
			ci->refs++;
			todo[n++] = ci;
		}
	covered = ix->applied;
	pthread_mutex_unlock(&ix->lock);
	for (size_t i = 0; i < n; i++) {
		struct cindex *ci = todo[i];
		uint64_t seq = atomic_load(&ci->applied);
		if (seq < covered)
			seq = covered;
		ckpt_path(ix->db, ci->name, path, sizeof(path));
		if (hnsw_save(ci->h, path, seq) == VECDB_OK) {
			VDB_LOG_DEBUG("INDX", "checkpoint of '%s' at %llu",
			    ci->name, (unsigned long long) seq);
			ci->changes = 0;
			atomic_store(&ci->ckpt_seq, seq);
		} else {
			VDB_LOG_WARN("INDX", "checkpoint of '%s' failed: %s",
			    ci->name, vecdb_errmsg());
		}
		release(ix, ci);
	}
	if (timer || force)
		ix->last_ckpt_ms = vdb_now_ms();
	floor_update(ix);
}

/* ===== The indexer thread ===== */

/* Build the graphs that have none yet (no usable checkpoint at open). */
static int
build_missing(struct indexer *ix)
{
	uint32_t ids[256];
	int slots[256];
	size_t n = 0;
	MDB_txn *txn;
	struct coll c;
	int rv;

	pthread_mutex_lock(&ix->lock);
	for (struct cindex *ci = ix->list; ci && n < 256; ci = ci->next)
		if (ci->h == NULL) {
			slots[n] = ci->vslot;
			ids[n++] = ci->coll_id;
		}
	pthread_mutex_unlock(&ix->lock);
	if (n == 0)
		return 0;
	if ((rv = storage_read_begin(ix->db, &txn)) != VECDB_OK)
		return rv;
	for (size_t i = 0; i < n && rv == VECDB_OK; i++) {
		rv = storage_coll_by_id(ix->db, txn, ids[i], &c);
		if (rv == VECDB_ENOTFOUND || (rv == VECDB_OK &&
		    slots[i] > (int) c.cfg.n_vectors)) {
			forget(ix, ids[i]);
			rv = VECDB_OK;
		} else if (rv == VECDB_OK) {
			rv = rebuild_one(ix, txn, &c, slots[i]);
		}
	}
	mdb_txn_abort(txn);
	return rv;
}

/* Rebuild every graph from txn (the WAL no longer reaches back). */
static int
rebuild_all(struct indexer *ix, MDB_txn *txn)
{
	uint32_t ids[256];
	size_t n = 0;
	int rv = VECDB_OK;

	pthread_mutex_lock(&ix->lock);
	for (struct cindex *ci = ix->list; ci && n < 256; ci = ci->next) {
		size_t j = 0;

		while (j < n && ids[j] != ci->coll_id)
			j++;
		if (j == n) /* once a collection */
			ids[n++] = ci->coll_id;
	}
	pthread_mutex_unlock(&ix->lock);
	for (size_t i = 0; i < n && rv == VECDB_OK; i++)
		rv = apply_rebuild(ix, txn, ids[i]);
	return rv;
}

/*
 * Let go of the map pages of a WAL record once it is applied. The indexer
 * reads every record once and copies its vectors into the graph; left
 * mapped, those pages stayed resident for nothing: as much memory again as
 * the graph (measured on fashion-mnist: 401 MiB of RSS growth for a
 * 188 MiB graph). LMDB maps the file read-only and shared, so dropping the
 * pages only drops our page-table entries: the data stays in the page
 * cache, and a later read (a search of the WAL tail) faults it back in.
 */
static void
unmap_hint(const MDB_val *v)
{
	static _Atomic long page_size; /* every handle's indexer shares it */
	long page = atomic_load_explicit(&page_size, memory_order_relaxed);
	uintptr_t a, b;

	if (page == 0) {
		page = sysconf(_SC_PAGESIZE);
		atomic_store_explicit(&page_size, page, memory_order_relaxed);
	}
	a = ((uintptr_t) v->mv_data + (uintptr_t) page - 1) &
	    ~((uintptr_t) page - 1);
	b = ((uintptr_t) v->mv_data + v->mv_size) & ~((uintptr_t) page - 1);
	if (b > a) /* whole pages inside the value only */
		madvise((void *) a, b - a, MADV_DONTNEED);
}

/* A record that rebuilds a graph from the points, in a read txn. */
static int
needs_txn(const struct wal_rec *r)
{
	return r->op == WAL_RESTORE || r->op == WAL_CONFIG ||
	    (r->op == WAL_INDEX && !storage_wal_index_off(r));
}

/*
 * WAL records copied out of the indexer's read txn. The indexer used to
 * apply records inside the txn that read them: with a backlog that txn
 * stayed open for minutes (4096 records of 100 points at ~1,500 inserts
 * a second), and LMDB cannot reuse a page freed after the oldest reader
 * began, so every update took new pages: data.mdb grew from 28 MiB to
 * 3.5 GiB in 50 s of upserts over 20,000 points (vecdb-bench update).
 * Now the txn only copies; the graph work happens with no txn open.
 */
struct rcopy {
	uint64_t seq;
	size_t off, len;        /* the value, in the batch's arena */
	size_t stale;           /* per-entry flags in the arena, or SIZE_MAX */
};

struct rbatch {
	struct buf arena;       /* values and flags */
	struct rcopy *recs;
	size_t n, cap;
	uint64_t txnid;         /* the snapshot the flags were decided in */
};

#define APPLY_BYTES (1u << 20)  /* bytes of records copied per read txn */

/* Is offset `off` of collection coll_id current in txn? */
static int
offset_live(vecdb *db, MDB_txn *txn, uint32_t coll_id, uint64_t off)
{
	uint8_t kb[12];
	MDB_val k = { 12, kb }, v;

	put_be32(kb, coll_id);
	put_be64(kb + 4, off);
	return mdb_get(txn, db->offsets, &k, &v) != MDB_NOTFOUND;
}

/* Flag the entries of a PUT record whose new vector is no longer current
 * in txn; appended to the arena. Returns the flags' offset or SIZE_MAX. */
static size_t
stale_flags(vecdb *db, MDB_txn *txn, const struct wal_rec *r,
    struct buf *arena)
{
	struct wal_iter it;
	struct wal_entry e;
	size_t at = arena->len;
	int any = 0;
	uint8_t f;

	if (r->op != WAL_PUT || storage_wal_iter_init(&it, r) != VECDB_OK)
		return SIZE_MAX;
	while (storage_wal_next(&it, &e) > 0) {
		f = e.old_offset != e.offset &&
		    !offset_live(db, txn, it.coll_id, e.offset);
		any |= f;
		if (buf_put_u8(arena, f) != VECDB_OK)
			break;
	}
	if (!any || it.i != it.n || arena->len - at != it.n) {
		arena->len = at;
		return SIZE_MAX;
	}
	return at;
}

/* Copy one record (value and stale flags) into the batch. */
static int
batch_push(struct indexer *ix, MDB_txn *txn, struct rbatch *b,
    const MDB_val *v, const struct wal_rec *r)
{
	struct rcopy c = { r->seq, b->arena.len, v->mv_size, SIZE_MAX };
	int rv;

	if (b->n == b->cap) {
		size_t cap = b->cap ? 2 * b->cap : 64;
		struct rcopy *nr = vdb_realloc(b->recs, cap * sizeof(*nr));
		if (nr == NULL)
			return vdb_err(VECDB_ENOMEM, "out of memory");
		b->recs = nr;
		b->cap = cap;
	}
	if ((rv = buf_put(&b->arena, v->mv_data, v->mv_size)) != VECDB_OK)
		return rv;
	/* the flags are read from the record in the txn, not from its copy:
	 * appending them may move the arena under an iterator */
	c.stale = stale_flags(ix->db, txn, r, &b->arena);
	b->recs[b->n++] = c;
	return VECDB_OK;
}

/*
 * Read the records after *applied into b, at most APPLY_BATCH records or
 * APPLY_BYTES bytes, in one short read txn. A record that rebuilds from
 * the points (or a WAL trimmed past us) is applied here, in the txn, and
 * ends the batch; *applied moves past what was applied here.
 */
static int
read_batch(struct indexer *ix, uint64_t *applied, struct rbatch *b,
    float **buf)
{
	uint8_t kb[8];
	MDB_cursor *cur;
	MDB_val k = { 8, kb }, v;
	MDB_txn *txn;
	struct wal_rec r;
	int rc, rv;

	if ((rv = storage_read_begin(ix->db, &txn)) != VECDB_OK)
		return rv;
	b->txnid = mdb_txn_id(txn);
	put_be64(kb, *applied + 1);
	if ((rc = mdb_cursor_open(txn, ix->db->wal, &cur)) != 0) {
		mdb_txn_abort(txn);
		return storage_mdb_err(rc, "open cursor");
	}
	rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
	if (rc == 0 && get_be64(k.mv_data) != *applied + 1) {
		/* Trimmed past us: the WAL cannot bring us up to date. */
		rv = rebuild_all(ix, txn);
		if (rv == VECDB_OK)
			rv = storage_meta_get_u64(ix->db, txn, "last_seq",
			    applied);
		rc = MDB_NOTFOUND;
	}
	for (; rc == 0 && rv == VECDB_OK && b->n < APPLY_BATCH &&
	     b->arena.len < APPLY_BYTES;
	     rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
		if ((rv = storage_wal_decode(&k, &v, &r)) != VECDB_OK)
			break;
		if (needs_txn(&r)) {
			if (b->n == 0) {
				if (apply_record(ix, txn, &r, buf, NULL, 0) !=
				    VECDB_OK)
					VDB_LOG_ERROR("INDX", "WAL record %llu: "
					    "%s", (unsigned long long) r.seq,
					    vecdb_errmsg());
				*applied = r.seq;
			}
			break;
		}
		rv = batch_push(ix, txn, b, &v, &r);
		unmap_hint(&v);
	}
	mdb_cursor_close(cur);
	mdb_txn_abort(txn);
	return rv;
}

/* A record failed to apply: rebuild what it touched from the points,
 * which are the truth, so that the indexer does not get stuck on it. */
static int
recover_record(struct indexer *ix, const struct wal_rec *r)
{
	MDB_txn *txn;
	uint32_t id;
	int rv;

	VDB_LOG_ERROR("INDX", "WAL record %llu: %s; rebuilding",
	    (unsigned long long) r->seq, vecdb_errmsg());
	if ((rv = storage_read_begin(ix->db, &txn)) != VECDB_OK)
		return rv;
	rv = storage_wal_coll(r, &id) == VECDB_OK ?
	    apply_rebuild(ix, txn, id) : rebuild_all(ix, txn);
	mdb_txn_abort(txn);
	return rv;
}

/* Apply the copied records of b, with no txn open. */
static int
apply_copied(struct indexer *ix, struct rbatch *b, uint64_t *applied,
    float **buf)
{
	uint8_t kb[8];
	MDB_val k = { 8, kb }, v;
	struct wal_rec r;
	int rv = VECDB_OK;

	for (size_t i = 0; i < b->n && rv == VECDB_OK; i++) {
		const struct rcopy *c = &b->recs[i];
		put_be64(kb, c->seq);
		v.mv_data = b->arena.p + c->off;
		v.mv_size = c->len;
		if ((rv = storage_wal_decode(&k, &v, &r)) != VECDB_OK)
			break;
		if (apply_record(ix, NULL, &r, buf, c->stale == SIZE_MAX ?
			NULL : b->arena.p + c->stale, b->txnid) != VECDB_OK)
			rv = recover_record(ix, &r);
		*applied = r.seq;
		if (r.seq > ix->open_seq)
			atomic_fetch_add(&ix->entries_out, storage_wal_count(&r));
	}
	return rv;
}

/* ===== Parallel apply ===== */

/*
 * With index_threads above 1 a batch is applied in groups. The indexer
 * walks the records in WAL order and does everything but the inserts
 * itself (retiring overwritten and deleted vectors, creates, drops),
 * queueing each insert; the queue runs on the pool when the group ends:
 * at the end of the batch, before a record that is not a point record,
 * and before a retirement whose vector may still be queued (its
 * hnsw_mark_deleted found nothing). Offsets are never reused, so the
 * queued inserts touch distinct labels, and every retirement applies
 * after its insert, as in WAL order. A record is marked applied (its
 * cindex's applied seq, the indexer's) only when the inserts of the whole
 * group are done, so the seq a checkpoint records covers only records
 * whose inserts are complete, however the pool finished them.
 */
struct ins_task {
	struct cindex *ci;
	uint64_t offset;        /* the label */
	const void *vec;        /* encoded, in the batch's arena */
	size_t rec;             /* its record in g->recs */
};

/* A record of the group, applied once the group's inserts are done. */
struct grec {
	struct wal_rec r;
	struct cindex *ci;      /* a reference; NULL: no graph to mark */
	int last;               /* the record's last grec (one a graph of
				   its collection, or one when none) */
	_Atomic int rv;         /* its first failure */
};

struct group {
	struct indexer *ix;
	struct grec *recs;
	size_t nrec, rcap;
	struct ins_task *tasks;
	size_t ntask, tcap;
	float **bufs;           /* one decode buffer a thread */
	uint32_t bufdim;        /* floats each of bufs holds */
	uint32_t maxdim;        /* of the queued inserts */
};

/* Grow an array of elements of size sz to hold n + 1. */
static int
grow_for(void *pp, size_t *cap, size_t n, size_t sz)
{
	void **p = pp;

	if (n < *cap)
		return VECDB_OK;
	size_t c = *cap ? 2 * *cap : 256;
	void *q = vdb_realloc(*p, c * sz);
	if (q == NULL)
		return VECDB_ENOMEM;
	*p = q;
	*cap = c;
	return VECDB_OK;
}

/* Record a failure of record i (the first one wins). */
static void
grec_fail(struct group *g, size_t i, int rv)
{
	int z = VECDB_OK;

	atomic_compare_exchange_strong(&g->recs[i].rv, &z, rv);
}

/* One queued insert, on pool thread w. */
static void
insert_task(void *arg, size_t i, unsigned w)
{
	struct group *g = arg;
	const struct ins_task *t = &g->tasks[i];

	vec_decode(t->vec, t->ci->cfg.dimension, t->ci->cfg.vector_type,
	    g->bufs[w]);
	int rv = hnsw_insert(t->ci->h, t->offset, g->bufs[w]);
	if (rv != VECDB_OK && rv != VECDB_EEXIST)
		grec_fail(g, t->rec, rv);
}

/* Size every thread's decode buffer for the queued inserts. */
static int
bufs_fit(struct group *g)
{
	unsigned n = storage_pool_threads(g->ix->pool);

	if (g->bufs == NULL && (g->bufs = vdb_calloc(n, sizeof(float *))) ==
	    NULL)
		return VECDB_ENOMEM;
	if (g->maxdim <= g->bufdim)
		return VECDB_OK;
	for (unsigned i = 0; i < n; i++) {
		float *b = vdb_realloc(g->bufs[i], g->maxdim * sizeof(float));
		if (b == NULL)
			return VECDB_ENOMEM;
		g->bufs[i] = b;
	}
	g->bufdim = g->maxdim;
	return VECDB_OK;
}

/* Run the queued inserts: on the pool, or here if the buffers cannot be
 * had (then with buf, one at a time). */
static void
run_tasks(struct group *g, float **buf)
{
	if (g->ntask == 0)
		return;
	if (bufs_fit(g) == VECDB_OK) {
		storage_pool_run(g->ix->pool, g->ntask, insert_task, g);
	} else {
		for (size_t i = 0; i < g->ntask; i++) {
			const struct ins_task *t = &g->tasks[i];
			float *nb = vdb_realloc(*buf, t->ci->cfg.dimension *
			    sizeof(float));
			if (nb == NULL) {
				grec_fail(g, t->rec, VECDB_ENOMEM);
				continue;
			}
			*buf = nb;
			vec_decode(t->vec, t->ci->cfg.dimension,
			    t->ci->cfg.vector_type, nb);
			int rv = hnsw_insert(t->ci->h, t->offset, nb);
			if (rv != VECDB_OK && rv != VECDB_EEXIST)
				grec_fail(g, t->rec, rv);
		}
	}
	g->ntask = 0;
	g->maxdim = 0;
}

/* A record whose inserts are all done: mark it applied, or rebuild what
 * it touched if any part failed (as apply_copied does). */
static void
grec_finish(struct group *g, struct grec *gr, uint64_t *applied)
{
	struct indexer *ix = g->ix;
	int rv = atomic_load(&gr->rv);

	if (rv != VECDB_OK) {
		vdb_err(rv, "indexing into '%s' failed", gr->ci ?
		    gr->ci->name : "?");
		recover_record(ix, &gr->r);
	} else if (gr->ci != NULL) {
		mark_applied(gr->ci, &gr->r);
	}
	if (gr->ci != NULL)
		release(ix, gr->ci);
	if (!gr->last)
		return;
	*applied = gr->r.seq;
	if (gr->r.seq > ix->open_seq)
		atomic_fetch_add(&ix->entries_out, storage_wal_count(&gr->r));
}

/* End the group: run its inserts, then finish its records in WAL order;
 * with `open`, the last record is still being read and stays. */
static void
group_flush(struct group *g, uint64_t *applied, float **buf, int open)
{
	size_t done = g->nrec - (open && g->nrec > 0);

	run_tasks(g, buf);
	for (size_t i = 0; i < done; i++)
		grec_finish(g, &g->recs[i], applied);
	if (done < g->nrec) {
		g->recs[0].r = g->recs[done].r;
		g->recs[0].ci = g->recs[done].ci;
		g->recs[0].last = g->recs[done].last;
		atomic_store(&g->recs[0].rv, atomic_load(&g->recs[done].rv));
	}
	g->nrec -= done;
}

/* Queue one insert of record gi, or do it now if the queue cannot grow. */
static void
queue_insert(struct group *g, size_t gi, const struct wal_entry *e,
    const void *vec, float **buf)
{
	struct cindex *ci = g->recs[gi].ci;

	if (grow_for(&g->tasks, &g->tcap, g->ntask, sizeof(*g->tasks)) ==
	    VECDB_OK) {
		g->tasks[g->ntask++] = (struct ins_task) { ci, e->offset,
			vec, gi };
		if (ci->cfg.dimension > g->maxdim)
			g->maxdim = ci->cfg.dimension;
		return;
	}
	float *nb = vdb_realloc(*buf, ci->cfg.dimension * sizeof(float));
	int rv = nb == NULL ? VECDB_ENOMEM : VECDB_OK;
	if (nb != NULL) {
		*buf = nb;
		vec_decode(vec, ci->cfg.dimension, ci->cfg.vector_type, nb);
		rv = hnsw_insert(ci->h, e->offset, nb);
	}
	if (rv != VECDB_OK && rv != VECDB_EEXIST)
		grec_fail(g, gi, rv);
}

/* Retire an offset. If it is not in the graph its insert may be queued:
 * run the queue, then try again. */
static void
retire(struct group *g, struct cindex *ci, uint64_t off, uint64_t *applied,
    float **buf)
{
	if (hnsw_mark_deleted(ci->h, off) == VECDB_ENOTFOUND &&
	    g->ntask > 0) {
		group_flush(g, applied, buf, 1);
		hnsw_mark_deleted(ci->h, off); /* may be gone */
	}
}

/* The entries of the group's last record (apply_points, but queueing
 * the inserts). */
static int
collect_entries(struct group *g, const uint8_t *stale, uint64_t *applied,
    float **buf)
{
	struct grec *gr = &g->recs[g->nrec - 1];
	struct cindex *ci = gr->ci;
	const void *vec;
	struct wal_iter it;
	struct wal_entry e;
	int rv, more;

	if ((rv = storage_wal_iter_init(&it, &gr->r)) != VECDB_OK)
		return rv;
	while ((more = storage_wal_next(&it, &e)) > 0) {
		ci->changes++;
		if (e.old_offset == e.offset)
			continue; /* payload-only update */
		if (e.old_offset != WAL_NO_OFFSET) {
			retire(g, ci, e.old_offset, applied, buf);
			gr = &g->recs[g->nrec - 1]; /* moved by a flush */
		}
		if (gr->r.op == WAL_DELETE || (stale != NULL && stale[it.i - 1]))
			continue;
		/* the default vector first; named vectors may follow */
		if ((vec = ci_vec(ci, e.vec, e.vlen)) == NULL) {
			if (ci->vslot == 0)
				return vdb_err(VECDB_ECORRUPT, "WAL vector of "
				    "%zu bytes in '%s'", e.vlen, ci->name);
			continue; /* the point has no such vector */
		}
		queue_insert(g, g->nrec - 1, &e, vec, buf);
	}
	return more < 0 ? -more : VECDB_OK;
}

/* Add a PUT or DELETE record to the group (apply_point_record). */
static int
collect_record(struct group *g, const struct wal_rec *r, const uint8_t *stale,
    uint64_t txnid, uint64_t *applied, float **buf)
{
	struct cindex *cis[VECDB_VECTORS_MAX + 1];
	size_t n = 0;
	uint32_t coll_id;
	int rv;

	/* a grec for each graph of the collection (one with none) */
	if ((rv = storage_wal_coll(r, &coll_id)) == VECDB_OK)
		for (int s = 0; s <= VECDB_VECTORS_MAX; s++) {
			struct cindex *ci = acquire(g->ix, coll_id, s);

			if (ci != NULL && r->seq <= atomic_load(&ci->applied)) {
				release(g->ix, ci);
				ci = NULL; /* applied already (built later) */
			}
			if (ci != NULL)
				cis[n++] = ci;
		}
	for (size_t i = 0; i < (n ? n : 1); i++) {
		struct cindex *ci = n ? cis[i] : NULL;
		struct grec *gr;
		int rc;

		if (grow_for(&g->recs, &g->rcap, g->nrec, sizeof(*g->recs)) !=
		    VECDB_OK) {
			for (size_t j = i; j < n; j++)
				release(g->ix, cis[j]);
			/* the ones queued already are applied again in
			 * order: inserts of labels they hold are no-ops */
			return VECDB_ENOMEM;
		}
		gr = &g->recs[g->nrec++];
		gr->r = *r;
		gr->ci = ci;
		gr->last = i + 1 == (n ? n : 1);
		atomic_store(&gr->rv, rv);
		if (ci == NULL || rv != VECDB_OK)
			continue;
		/* Published before the graph changes: a search that sees
		 * the change sees this (storage_index_search). */
		if (stale != NULL && txnid > atomic_load(&ci->stale_txn))
			atomic_store(&ci->stale_txn, txnid);
		if ((rc = collect_entries(g, stale, applied, buf)) != VECDB_OK)
			grec_fail(g, g->nrec - 1, rc);
	}
	return VECDB_OK;
}

/* apply_copied with the pool. */
static int
apply_parallel(struct indexer *ix, struct rbatch *b, uint64_t *applied,
    float **buf)
{
	struct group g;
	uint8_t kb[8];
	MDB_val k = { 8, kb }, v;
	struct wal_rec r;
	int rv = VECDB_OK;

	memset(&g, 0, sizeof(g));
	g.ix = ix;
	for (size_t i = 0; i < b->n && rv == VECDB_OK; i++) {
		const struct rcopy *c = &b->recs[i];
		const uint8_t *stale = c->stale == SIZE_MAX ? NULL :
		    b->arena.p + c->stale;
		put_be64(kb, c->seq);
		v.mv_data = b->arena.p + c->off;
		v.mv_size = c->len;
		if ((rv = storage_wal_decode(&k, &v, &r)) != VECDB_OK)
			break;
		if ((r.op == WAL_PUT || r.op == WAL_DELETE) &&
		    collect_record(&g, &r, stale, b->txnid, applied, buf) ==
		    VECDB_OK)
			continue;
		/* Any other record, or no memory to queue: in order. */
		group_flush(&g, applied, buf, 0);
		if (apply_record(ix, NULL, &r, buf, stale, b->txnid) != VECDB_OK)
			rv = recover_record(ix, &r);
		*applied = r.seq;
		if (r.seq > ix->open_seq)
			atomic_fetch_add(&ix->entries_out, storage_wal_count(&r));
	}
	group_flush(&g, applied, buf, 0);
	if (g.bufs != NULL)
		for (unsigned i = 0; i < storage_pool_threads(ix->pool); i++)
			vdb_free(g.bufs[i]);
	vdb_free(g.bufs);
	vdb_free(g.recs);
	vdb_free(g.tasks);
	return rv;
}

/* Apply a batch of records after *applied. */
static int
apply_batch(struct indexer *ix, uint64_t *applied)
{
	struct rbatch b;
	float *buf = NULL;
	int rv;

	memset(&b, 0, sizeof(b));
	if ((rv = read_batch(ix, applied, &b, &buf)) == VECDB_OK)
		rv = ix->pool != NULL ? apply_parallel(ix, &b, applied, &buf) :
		    apply_copied(ix, &b, applied, &buf);
	buf_fini(&b.arena);
	vdb_free(b.recs);
	vdb_free(buf);
	return rv;
}

/* ===== Vacuum ===== */

/*
 * The vacuum rebuilds a collection's graph from its live points off to
 * the side, as Qdrant's optimizer does, and puts it in place: searches go
 * on over the old graph and writes are not held. A slot freed by a delete
 * is reused by the next insert (hnsw.c), so updates leave no dead nodes;
 * deletes without inserts do, and so does anything that drops a slot
 * from reuse. The thread compacts what an operator asks for
 * (vecdb_compact) and, every VACUUM_POLL_MS, any graph whose dead share
 * is over VACUUM_RATIO.
 *
 * Passes: copy the points in chunks, each in its own short read txn (a
 * long one would keep LMDB from reusing pages, see rcopy); catch up on
 * the WAL written meanwhile (records are idempotent, so a point seen by a
 * chunk and again in the WAL comes out right); hand the graph to the
 * indexer, which applies the last few records and swaps it in.
 */
#define VACUUM_CHUNK 1024       /* points copied per read txn */
#define VACUUM_POLL_MS 5000     /* how often to look at the dead shares */
#define VACUUM_MIN_DEAD 1000    /* fewer dead nodes are not worth a build */
/*
 * XXX: a guess, not measured yet. Dead nodes cost memory, 1/(1 - share)
 * of the graph (0.2: 1.25x, inside the 1.5x the space issue allows with
 * room for the second graph a compaction builds), and they still route
 * searches, which then visit more nodes for the same results. A sweep of
 * recall and latency over the share (vecdb-bench ann on a graph with
 * deletes) should set it.
 */
#define VACUUM_RATIO 0.2

/* Queue a compaction of coll_id (once). Caller holds the lock. */
static void
vacuum_push_locked(struct indexer *ix, uint32_t coll_id)
{
	if (ix->vac_busy && ix->vac_coll == coll_id)
		return;
	for (size_t i = 0; i < ix->vac_n; i++)
		if (ix->vac_queue[i] == coll_id)
			return;
	if (ix->vac_n < VACUUM_QUEUE)
		ix->vac_queue[ix->vac_n++] = coll_id;
}

/* Ask for a compaction of a collection; returns at once. */
static void
vacuum_request(struct indexer *ix, uint32_t coll_id)
{
	pthread_mutex_lock(&ix->lock);
	vacuum_push_locked(ix, coll_id);
	pthread_cond_signal(&ix->vac_cv);
	pthread_mutex_unlock(&ix->lock);
}

/* The optimizer fields of a collection's stats. */
static void
vacuum_stats(struct indexer *ix, uint32_t coll_id, vecdb_collection_stats *st)
{
	pthread_mutex_lock(&ix->lock);
	if (ix->vac_busy && ix->vac_coll == coll_id) {
		st->optimizer = VECDB_OPTIMIZER_COMPACTING;
		st->optimizer_progress = atomic_load(&ix->vac_permille) / 1000.0;
	}
	for (size_t i = 0; i < ix->vac_n; i++)
		if (ix->vac_queue[i] == coll_id)
			st->optimizer = VECDB_OPTIMIZER_COMPACTING;
	pthread_mutex_unlock(&ix->lock);
}

/* Queue every graph whose dead share is over VACUUM_RATIO. */
static void
vacuum_pick_locked(struct indexer *ix)
{
	for (struct cindex *ci = ix->list; ci != NULL; ci = ci->next) {
		uint64_t dead, live;
		if (ci->h == NULL)
			continue;
		dead = hnsw_deleted_count(ci->h);
		live = hnsw_count(ci->h);
		if (dead >= VACUUM_MIN_DEAD &&
		    (double) dead > VACUUM_RATIO * (double) (dead + live))
			vacuum_push_locked(ix, ci->coll_id);
	}
}

/* The points of one chunk: offsets and decoded vectors. */
struct vchunk {
	uint64_t *offs;
	float *vecs;
	size_t n;
	uint8_t last[STORAGE_KEY_MAX]; /* the chunk's last point key */
	size_t last_len;               /* 0: start at the first point */
};

/* Copy up to VACUUM_CHUNK points after ch->last in a short read txn. */
static int
vacuum_read_chunk(struct indexer *ix, struct cindex *ci, struct vchunk *ch,
    int *done)
{
	const struct coll *c = &ci->coll;
	struct storage_scan sc;
	struct rpoint rp;
	const void *vec;
	vecdb_id start;
	MDB_txn *txn;
	int rv;

	ch->n = 0;
	if ((rv = storage_read_begin(ix->db, &txn)) != VECDB_OK)
		return rv;
	if (atomic_load(&ci->stale_txn) < mdb_txn_id(txn))
		atomic_store(&ci->stale_txn, mdb_txn_id(txn));
	if (ch->last_len > 0 && (rv = vdb_key_id(ch->last, ch->last_len,
				     &start)) != VECDB_OK)
		goto out;
	if ((rv = storage_scan_open(ix->db, txn, c, ch->last_len ? &start :
		 NULL, &sc)) != VECDB_OK)
		goto out;
	for (; rv == VECDB_OK && storage_scan_valid(&sc) &&
	     ch->n < VACUUM_CHUNK; storage_scan_next(&sc)) {
		const uint8_t *key = (const uint8_t *) sc.k.mv_data + 4;
		size_t klen = sc.k.mv_size - 4;
		if (ch->last_len == klen && memcmp(key, ch->last, klen) == 0)
			continue; /* the previous chunk's last point */
		if ((rv = storage_point_decode(c, &sc.v, &rp)) != VECDB_OK)
			break;
		memcpy(ch->last, key, klen);
		ch->last_len = klen;
		if ((vec = ci_vec(ci, rp.vec, rp.vec_len)) == NULL)
			continue; /* the point has no such vector */
		ch->offs[ch->n] = rp.offset;
		vec_decode(vec, ci->cfg.dimension, ci->cfg.vector_type,
		    ch->vecs + ch->n * ci->cfg.dimension);
		ch->n++;
	}
	*done = !storage_scan_valid(&sc);
	if (storage_scan_close(&sc) != VECDB_OK && rv == VECDB_OK)
		rv = VECDB_EIO;
out:
	mdb_txn_abort(txn);
	return rv;
}

/* Pass 1: every live point into ci's graph, chunk by chunk. */
static int
vacuum_copy_points(struct indexer *ix, struct cindex *ci, uint64_t count)
{
	struct vchunk ch = { 0 };
	uint64_t copied = 0;
	int rv = VECDB_OK, done = 0;

	ch.offs = vdb_malloc(VACUUM_CHUNK * sizeof(uint64_t));
	ch.vecs = vdb_malloc((size_t) VACUUM_CHUNK * ci->cfg.dimension *
	    sizeof(float));
	if (ch.offs == NULL || ch.vecs == NULL)
		rv = vdb_err(VECDB_ENOMEM, "out of memory");
	while (rv == VECDB_OK && !done && !closing(ix)) {
		if ((rv = vacuum_read_chunk(ix, ci, &ch, &done)) != VECDB_OK)
			break;
		for (size_t i = 0; i < ch.n && rv == VECDB_OK; i++) {
			rv = hnsw_insert(ci->h, ch.offs[i],
			    ch.vecs + i * ci->cfg.dimension);
			if (rv == VECDB_EEXIST)
				rv = VECDB_OK;
		}
		copied += ch.n;
		if (count > 0 && copied < count)
			atomic_store(&ix->vac_permille,
			    (uint32_t) (900 * copied / count));
	}
	vdb_free(ch.offs);
	vdb_free(ch.vecs);
	if (rv == VECDB_OK && closing(ix))
		rv = vdb_err(VECDB_ECLOSED, "database is closing");
	return rv;
}

/*
 * Copy the records after ci->applied (at most up to `upto`) that concern
 * ci's collection into b, in one short read txn; *last is the seq read up
 * to. A record that replaces the collection, or a WAL trimmed past us,
 * makes the compaction moot (VECDB_ENOTFOUND).
 */
static int
vacuum_read_wal(struct indexer *ix, struct cindex *ci, uint64_t upto,
    struct rbatch *b, uint64_t *last)
{
	uint8_t kb[8];
	MDB_cursor *cur;
	MDB_val k = { 8, kb }, v;
	MDB_txn *txn;
	struct wal_rec r;
	uint32_t id;
	int rc, rv;

	if ((rv = storage_read_begin(ix->db, &txn)) != VECDB_OK)
		return rv;
	b->txnid = mdb_txn_id(txn);
	*last = atomic_load(&ci->applied);
	put_be64(kb, *last + 1);
	if ((rc = mdb_cursor_open(txn, ix->db->wal, &cur)) != 0) {
		mdb_txn_abort(txn);
		return storage_mdb_err(rc, "open cursor");
	}
	rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
	if (rc == 0 && get_be64(k.mv_data) != *last + 1)
		rv = vdb_err(VECDB_ENOTFOUND, "the WAL was trimmed");
	for (; rc == 0 && rv == VECDB_OK && b->arena.len < APPLY_BYTES;
	     rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
		if ((rv = storage_wal_decode(&k, &v, &r)) != VECDB_OK ||
		    r.seq > upto)
			break;
		*last = r.seq;
		if (r.op == WAL_CREATE || storage_wal_coll(&r, &id) != VECDB_OK ||
		    id != ci->coll_id)
			continue;
		if (r.op != WAL_PUT && r.op != WAL_DELETE)
			rv = vdb_err(VECDB_ENOTFOUND, "collection changed");
		else
			rv = batch_push(ix, txn, b, &v, &r);
	}
	mdb_cursor_close(cur);
	mdb_txn_abort(txn);
	return rv;
}

/* Pass 2: apply the WAL after ci->applied up to `upto` to ci's graph. */
static int
vacuum_catch_up(struct indexer *ix, struct cindex *ci, uint64_t upto)
{
	float *buf = vdb_malloc(ci->cfg.dimension * sizeof(float));
	int rv = buf ? VECDB_OK : vdb_err(VECDB_ENOMEM, "out of memory");

	while (rv == VECDB_OK && atomic_load(&ci->applied) < upto) {
		struct rbatch b;
		uint64_t last = 0;
		memset(&b, 0, sizeof(b));
		rv = vacuum_read_wal(ix, ci, upto, &b, &last);
		for (size_t i = 0; i < b.n && rv == VECDB_OK; i++) {
			const struct rcopy *c = &b.recs[i];
			uint8_t kb[8];
			MDB_val k = { 8, kb }, v = { c->len, b.arena.p + c->off };
			struct wal_rec r;
			put_be64(kb, c->seq);
			if (c->stale != SIZE_MAX &&
			    b.txnid > atomic_load(&ci->stale_txn))
				atomic_store(&ci->stale_txn, b.txnid);
			if ((rv = storage_wal_decode(&k, &v, &r)) == VECDB_OK)
				rv = apply_points(ci, &r, buf, c->stale ==
				    SIZE_MAX ? NULL : b.arena.p + c->stale);
		}
		if (rv == VECDB_OK && last == atomic_load(&ci->applied))
			rv = vdb_err(VECDB_EIO, "the WAL ends before %llu",
			    (unsigned long long) upto);
		if (rv == VECDB_OK)
			atomic_store(&ci->applied, last);
		buf_fini(&b.arena);
		vdb_free(b.recs);
	}
	vdb_free(buf);
	return rv;
}

/*
 * Indexer thread: put a compacted graph in place once it has every record
 * the indexer applied, unless the graph it replaces is gone meanwhile (a
 * drop, a rebuild, a restore).
 */
static void
take_swap(struct indexer *ix)
{
	struct cindex *ci, *old, *cur;
	uint64_t upto;
	int rv;

	pthread_mutex_lock(&ix->lock);
	ci = ix->swap;
	old = ix->swap_old;
	upto = ix->applied;
	ix->swap = NULL;
	pthread_mutex_unlock(&ix->lock);
	if (ci == NULL)
		return;
	rv = vacuum_catch_up(ix, ci, upto);
	pthread_mutex_lock(&ix->lock);
	cur = find_locked(ix, ci->coll_id, ci->vslot);
	pthread_mutex_unlock(&ix->lock);
	if (rv == VECDB_OK && cur == old) {
		ci->changes = hnsw_count(ci->h) + 1; /* a compact checkpoint */
		atomic_store(&ci->ckpt_seq, atomic_load(&old->ckpt_seq));
		atomic_store(&ci->compactions,
		    atomic_load(&old->compactions) + 1);
		register_ci(ix, ci);
	} else {
		VDB_LOG_INFO("INDX", "compaction of '%s' dropped: %s", ci->name,
		    rv ? vecdb_errmsg() : "the graph was replaced");
		hnsw_free(ci->h);
		vdb_free(ci);
	}
	pthread_mutex_lock(&ix->lock);
	ix->swap_taken = 1;
	pthread_cond_broadcast(&ix->done_cv);
	pthread_mutex_unlock(&ix->lock);
}

/* Hand ci to the indexer and wait until it took it (or we stop). */
static void
vacuum_hand_over(struct indexer *ix, struct cindex *ci, struct cindex *old)
{
	pthread_mutex_lock(&ix->lock);
	ix->swap = ci;
	ix->swap_old = old;
	ix->swap_taken = 0;
	pthread_cond_signal(&ix->work_cv);
	while (!ix->swap_taken && !ix->stopping)
		pthread_cond_wait(&ix->done_cv, &ix->lock);
	if (!ix->swap_taken && ix->swap == ci) {
		ix->swap = NULL; /* stopping: nobody will take it */
		hnsw_free(ci->h);
		vdb_free(ci);
	}
	pthread_mutex_unlock(&ix->lock);
}

/* The new graph's start: the collection, its size and the seq S before
 * the copy (the WAL after S is kept for us from here on). */
static int
vacuum_begin(struct indexer *ix, uint32_t coll_id, int vslot,
    struct cindex **out, uint64_t *count)
{
	struct coll_state st;
	struct coll c;
	hnsw_config hc;
	MDB_txn *txn;
	uint64_t seq = 0;
	int rv;

	atomic_store(&ix->vac_base, atomic_load(&ix->wal_floor));
	floor_update(ix);
	if ((rv = storage_read_begin(ix->db, &txn)) != VECDB_OK)
		return rv;
	if ((rv = storage_coll_by_id(ix->db, txn, coll_id, &c)) == VECDB_OK &&
	    (rv = storage_state_get(ix->db, txn, coll_id, &st)) == VECDB_OK &&
	    (rv = storage_meta_get_u64(ix->db, txn, "last_seq", &seq)) ==
		VECDB_ENOTFOUND)
		rv = VECDB_OK;
	mdb_txn_abort(txn);
	if (rv != VECDB_OK)
		return rv;
	atomic_store(&ix->vac_base, seq);
	if (vslot > (int) c.cfg.n_vectors)
		return vdb_err(VECDB_ENOTFOUND, "collection changed");
	if ((*out = cindex_new(&c, vslot, seq)) == NULL)
		return vdb_err(VECDB_ENOMEM, "out of memory");
	hnsw_cfg_of(&(*out)->cfg, c.id, vslot, &hc);
	if ((rv = hnsw_new(&hc, &(*out)->h)) != VECDB_OK ||
	    (rv = hnsw_reserve((*out)->h, st.count)) != VECDB_OK) {
		hnsw_free((*out)->h);
		vdb_free(*out);
		return rv;
	}
	*count = st.count;
	return VECDB_OK;
}

/* Compact the graph of one vector of a collection. */
static int
vacuum_vector(struct indexer *ix, uint32_t coll_id, int vslot)
{
	struct cindex *old = acquire(ix, coll_id, vslot), *ci = NULL;
	uint64_t count = 0, target;
	double t0 = vdb_now_s();
	int rv;

	if (old == NULL)
		return VECDB_OK; /* index off, not built yet, or no vector */
	if ((rv = vacuum_begin(ix, coll_id, vslot, &ci, &count)) ==
	    VECDB_OK &&
	    (rv = vacuum_copy_points(ix, ci, count)) == VECDB_OK) {
		pthread_mutex_lock(&ix->lock);
		target = ix->applied;
		pthread_mutex_unlock(&ix->lock);
		rv = vacuum_catch_up(ix, ci, target);
	}
	if (rv == VECDB_OK) {
		atomic_store(&ix->vac_permille, 990);
		VDB_LOG_INFO("INDX", "compacted '%s': %llu dead nodes of %llu "
		    "dropped in %.2f s", old->name,
		    (unsigned long long) hnsw_deleted_count(old->h),
		    (unsigned long long) (hnsw_count(old->h) +
			hnsw_deleted_count(old->h)), vdb_now_s() - t0);
		vacuum_hand_over(ix, ci, old);
	} else if (ci != NULL) {
		hnsw_free(ci->h);
		vdb_free(ci);
	}
	atomic_store(&ix->vac_base, UINT64_MAX);
	release(ix, old);
	return rv;
}

/* Compact every graph of one collection. */
static int
vacuum_one(struct indexer *ix, uint32_t coll_id)
{
	int rv = VECDB_OK;

	for (int s = 0; s <= VECDB_VECTORS_MAX && rv == VECDB_OK; s++)
		rv = vacuum_vector(ix, coll_id, s);
	return rv;
}

/* The vacuum thread: compact what is asked for or over the threshold. */
static void *
vacuum_main(void *arg)
{
	struct indexer *ix = arg;

	pthread_mutex_lock(&ix->lock);
	while (!ix->stopping) {
		if (ix->vac_n == 0) {
			struct timespec ts;
			ts = vdb_deadline(VACUUM_POLL_MS);
			pthread_cond_timedwait(&ix->vac_cv, &ix->lock, &ts);
			if (ix->vac_n == 0 && !ix->stopping)
				vacuum_pick_locked(ix);
			continue;
		}
		ix->vac_coll = ix->vac_queue[0];
		memmove(ix->vac_queue, ix->vac_queue + 1,
		    --ix->vac_n * sizeof(uint32_t));
		ix->vac_busy = 1;
		atomic_store(&ix->vac_permille, 0);
		pthread_mutex_unlock(&ix->lock);
		if (vacuum_one(ix, ix->vac_coll) != VECDB_OK)
			VDB_LOG_WARN("INDX", "compaction failed: %s",
			    vecdb_errmsg());
		pthread_mutex_lock(&ix->lock);
		ix->vac_busy = 0;
	}
	pthread_mutex_unlock(&ix->lock);
	return NULL;
}

/*
 * In a read-only handle, the last seq another process committed. Called
 * without the indexer lock: it opens an LMDB transaction.
 */
static uint64_t
poll_last(struct indexer *ix)
{
	MDB_txn *txn;
	uint64_t last = 0;

	if (storage_read_begin(ix->db, &txn) != VECDB_OK)
		return 0;
	if (storage_meta_get_u64(ix->db, txn, "last_seq", &last) != VECDB_OK)
		last = 0;
	mdb_txn_abort(txn);
	return last;
}

/* Sleep until there is work, the checkpoint timer, or a stop. */
static void
wait_work_locked(struct indexer *ix)
{
	uint64_t ms = ix->db->opts.read_only ? POLL_MS :
	    ix->db->opts.checkpoint_interval_s * 1000ULL;
	struct timespec ts;

	ts = vdb_deadline(ms);
	pthread_cond_timedwait(&ix->work_cv, &ix->lock, &ts);
}

/* Register every collection of txn whose index is on, without a graph
 * (build_missing builds them). */
static int
register_unbuilt(struct indexer *ix, MDB_txn *txn)
{
	char name[VECDB_NAME_MAX + 1];
	MDB_cursor *cur;
	MDB_val k, v;
	struct coll c;
	int rc, rv = VECDB_OK, on;

	if ((rc = mdb_cursor_open(txn, ix->db->catalog, &cur)) != 0)
		return storage_mdb_err(rc, "open cursor");
	for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST);
	     rc == 0 && rv == VECDB_OK && k.mv_size <= VECDB_NAME_MAX;
	     rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
		struct cindex *ci;
		memcpy(name, k.mv_data, k.mv_size);
		name[k.mv_size] = '\0';
		if ((rv = storage_coll_decode(name, v.mv_data, v.mv_size,
			 &c)) != VECDB_OK ||
		    (rv = storage_index_enabled(ix->db, txn, c.id, &on)) !=
			VECDB_OK || !on)
			continue;
		for (int s = first_slot(&c.cfg); s <= (int) c.cfg.n_vectors &&
		    rv == VECDB_OK;
		    s++)
			if ((ci = cindex_new(&c, s, 0)) == NULL)
				rv = vdb_err(VECDB_ENOMEM, "out of memory");
			else
				register_ci(ix, ci);
	}
	mdb_cursor_close(cur);
	return rv;
}

/*
 * The database was replaced (storage_load): drop every graph and its
 * checkpoint, and register the new collections to be built from the
 * points; the WAL is followed again from the new last seq.
 */
static int
reset_all(struct indexer *ix)
{
	uint32_t ids[256];
	size_t n = 0;
	MDB_txn *txn;
	uint64_t last = 0;
	int rv;

	pthread_mutex_lock(&ix->lock);
	for (struct cindex *ci = ix->list; ci && n < 256; ci = ci->next)
		ids[n++] = ci->coll_id;
	pthread_mutex_unlock(&ix->lock);
	for (size_t i = 0; i < n; i++)
		forget(ix, ids[i]);
	if ((rv = storage_read_begin(ix->db, &txn)) != VECDB_OK)
		return rv;
	if ((rv = storage_meta_get_u64(ix->db, txn, "last_seq", &last)) ==
	    VECDB_ENOTFOUND)
		rv = VECDB_OK;
	if (rv == VECDB_OK)
		rv = register_unbuilt(ix, txn);
	mdb_txn_abort(txn);
	pthread_mutex_lock(&ix->lock);
	ix->applied = last;
	if (ix->target < last)
		ix->target = last;
	pthread_mutex_unlock(&ix->lock);
	return rv;
}

/*
 * An indexer that catches up after work hands the heap's free memory back
 * to the system (at most once a TRIM_EVERY_S). A bulk load leaves tens
 * of MiB free in malloc's heaps (WAL copies, decode buffers, the writer's
 * pages), which glibc keeps once large blocks have raised its trim
 * threshold: the process looked that much bigger than its index
 * (fashion-mnist, 60,000 points: 19 MiB of 83).
 */
#define TRIM_EVERY_S 0.5

/*
 * Under a sanitizer malloc is the sanitizer's, and glibc's malloc_trim
 * is not intercepted: it initialises glibc's unused heap from whichever
 * thread calls first. Two indexers doing that at once leave the main
 * arena counted once for two threads, and the second to exit aborts in
 * glibc ("a->attached_threads > 0"), or malloc_trim itself faults. There
 * is nothing of glibc's to trim then, so skip it.
 */
#if defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define VDB_SANITIZED 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define VDB_SANITIZED 1
#endif
#if defined(__GLIBC__) && !defined(VDB_SANITIZED)
#define VDB_TRIM_HEAP 1
#endif

/* Trim if caught up (before waiters are told, so that a vecdb_index_sync
 * sees the heap trimmed). */
static void
trim_when_caught_up(struct indexer *ix, uint64_t applied)
{
	double now = vdb_now_s();
	int go;

	pthread_mutex_lock(&ix->lock);
	go = applied >= ix->target && now - ix->trimmed_at >= TRIM_EVERY_S;
	if (go)
		ix->trimmed_at = now;
	pthread_mutex_unlock(&ix->lock);
#ifdef VDB_TRIM_HEAP
	if (go)
		malloc_trim(0);
#endif
}

/*
 * One step of work; returns 1 only when the applied seq moved, so that a
 * step that cannot progress (an error, a WAL that ends early) never spins
 * the loop or holds off a stop.
 */
static int
step(struct indexer *ix)
{
	uint64_t applied, before;
	int rv, reset;

	take_swap(ix);
	pthread_mutex_lock(&ix->lock);
	reset = ix->reset;
	ix->reset = 0;
	pthread_mutex_unlock(&ix->lock);
	if (reset && (rv = reset_all(ix)) != VECDB_OK)
		VDB_LOG_ERROR("INDX", "resetting the indexes failed: %s",
		    vecdb_errmsg());
	if ((rv = build_missing(ix)) != 0) {
		if (rv < 0 || rv != VECDB_OK)
			VDB_LOG_ERROR("INDX", "building an index failed: %s",
			    vecdb_errmsg());
	}
	pthread_mutex_lock(&ix->lock);
	applied = ix->applied;
	if (applied >= ix->target) {
		pthread_mutex_unlock(&ix->lock);
		return 0;
	}
	pthread_mutex_unlock(&ix->lock);
	before = applied;
	if ((rv = apply_batch(ix, &applied)) != VECDB_OK)
		VDB_LOG_ERROR("INDX", "applying the WAL after %llu failed: %s",
		    (unsigned long long) applied, vecdb_errmsg());
	trim_when_caught_up(ix, applied);
	pthread_mutex_lock(&ix->lock);
	ix->applied = applied;
	pthread_cond_broadcast(&ix->done_cv);
	pthread_mutex_unlock(&ix->lock);
	return applied > before;
}

/* The indexer's main loop: apply, checkpoint, sleep; drain on stop. */
static void *
indexer_main(void *arg)
{
	struct indexer *ix = arg;

	for (;;) {
		int worked = step(ix);
		checkpoint_all(ix, 0);
		pthread_mutex_lock(&ix->lock);
		if (ix->stopping && !worked) {
			pthread_mutex_unlock(&ix->lock);
			break;
		}
		if (!worked && !ix->stopping) {
			if (ix->db->opts.read_only) {
				uint64_t last;
				pthread_mutex_unlock(&ix->lock);
				last = poll_last(ix);
				pthread_mutex_lock(&ix->lock);
				if (last > ix->target)
					ix->target = last;
			}
			if (ix->applied >= ix->target && !ix->stopping)
				wait_work_locked(ix);
		}
		pthread_mutex_unlock(&ix->lock);
	}
	checkpoint_all(ix, 1);
	return NULL;
}

/* ===== Start and stop ===== */

/*
 * A checkpoint is usable if it covers this collection (not an older one of
 * the same name), is not from the future, and the WAL still holds every
 * record after it.
 */
static int
ckpt_usable(vecdb *db, MDB_txn *txn, uint64_t covered, uint64_t created,
    uint64_t last)
{
	uint8_t kb[8];
	MDB_cursor *cur;
	MDB_val k = { 8, kb }, v;
	int rc, ok;

	if (covered < created || covered > last)
		return 0;
	if (covered == last)
		return 1;
	put_be64(kb, covered + 1);
	if (mdb_cursor_open(txn, db->wal, &cur) != 0)
		return 0;
	rc = mdb_cursor_get(cur, &k, &v, MDB_SET_KEY);
	ok = rc == 0;
	mdb_cursor_close(cur);
	return ok;
}

/* Register the graph of vector vslot of collection c: its checkpoint if
 * usable, else one to build. */
static int
open_vector(struct indexer *ix, MDB_txn *txn, const struct coll *c,
    const struct coll_state *st, int vslot, uint64_t last)
{
	struct cindex *ci;
	hnsw_config hc;
	char path[4200];
	uint64_t covered = 0;
	int rv;

	if ((ci = cindex_new(c, vslot, 0)) == NULL)
		return vdb_err(VECDB_ENOMEM, "out of memory");
	hnsw_cfg_of(&ci->cfg, c->id, vslot, &hc);
	ckpt_path(ix->db, ci->name, path, sizeof(path));
	rv = hnsw_load(path, &hc, &ci->h, &covered);
	if (rv == VECDB_OK && !ckpt_usable(ix->db, txn, covered,
				  st->created_seq, last)) {
		hnsw_free(ci->h);
		ci->h = NULL;
		rv = VECDB_ECORRUPT;
	}
	if (rv != VECDB_OK && rv != VECDB_ENOTFOUND)
		VDB_LOG_WARN("INDX", "checkpoint of '%s' not used (%s): "
		    "rebuilding from the points", ci->name, vecdb_strerror(rv));
	/* A checkpoint saved before the index had enough points to train
	 * on, that now has them: quantize it now, not at the next insert. */
	if (ci->h != NULL && hnsw_quantized(ci->h) == VECDB_QUANT_NONE &&
	    hnsw_count(ci->h) >= HNSW_TRAIN_DEFAULT)
		(void) hnsw_quantize(ci->h);
	atomic_store(&ci->applied, ci->h ? covered : 0);
	atomic_store(&ci->ckpt_seq, ci->h ? covered : 0);
	register_ci(ix, ci);
	return VECDB_OK;
}

/* Register the graphs of collection c (open_vector). */
static int
open_coll(struct indexer *ix, MDB_txn *txn, const struct coll *c,
    uint64_t last)
{
	struct coll_state st;
	int rv, on;

	if ((rv = storage_index_enabled(ix->db, txn, c->id, &on)) != VECDB_OK ||
	    !on || (rv = storage_state_get(ix->db, txn, c->id, &st)) != VECDB_OK)
		return rv;
	for (int s = first_slot(&c->cfg); s <= (int) c->cfg.n_vectors &&
	    rv == VECDB_OK; s++)
		rv = open_vector(ix, txn, c, &st, s, last);
	return rv;
}

/* Register every collection; ix->applied = the oldest graph's seq. */
static int
open_all(struct indexer *ix)
{
	MDB_txn *txn;
	MDB_cursor *cur;
	MDB_val k, v;
	uint64_t last = 0;
	char name[VECDB_NAME_MAX + 1];
	struct coll c;
	int rc, rv;

	if ((rv = storage_read_begin(ix->db, &txn)) != VECDB_OK)
		return rv;
	if ((rv = storage_meta_get_u64(ix->db, txn, "last_seq", &last)) ==
	    VECDB_ENOTFOUND)
		rv = VECDB_OK;
	ix->applied = ix->target = last;
	ix->open_seq = last;
	if (rv == VECDB_OK && (rc = mdb_cursor_open(txn, ix->db->catalog,
				   &cur)) != 0)
		rv = storage_mdb_err(rc, "open cursor");
	if (rv == VECDB_OK) {
		for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST);
		     rc == 0 && rv == VECDB_OK && k.mv_size <= VECDB_NAME_MAX;
		     rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
			memcpy(name, k.mv_data, k.mv_size);
			name[k.mv_size] = '\0';
			if ((rv = storage_coll_decode(name, v.mv_data,
				 v.mv_size, &c)) == VECDB_OK)
				rv = open_coll(ix, txn, &c, last);
		}
		mdb_cursor_close(cur);
	}
	mdb_txn_abort(txn);
	/* Replay from the oldest checkpoint; graphs to build start later. */
	for (struct cindex *ci = ix->list; ci != NULL; ci = ci->next)
		if (ci->h != NULL && atomic_load(&ci->applied) < ix->applied)
			ix->applied = atomic_load(&ci->applied);
	return rv;
}

/* Start the insert pool: index_threads threads in all, 0 meaning one a
 * core. Without it (one thread, or none could start) the indexer inserts
 * alone. */
static void
pool_start(struct indexer *ix)
{
	long n = ix->db->opts.index_threads;

	if (n == 0)
		n = sysconf(_SC_NPROCESSORS_ONLN);
	if (n > VECDB_INDEX_THREADS_MAX)
		n = VECDB_INDEX_THREADS_MAX;
	if (n <= 1)
		return;
	if (storage_pool_new((unsigned) n, &ix->pool) != VECDB_OK) {
		VDB_LOG_WARN("INDX", "%s; indexing with one thread",
		    vecdb_errmsg());
		ix->pool = NULL;
	}
}

int
storage_index_start(vecdb *db)
{
	struct indexer *ix = vdb_calloc(1, sizeof(*ix));
	char dir[4200];
	int rv;

	if (ix == NULL)
		return vdb_err(VECDB_ENOMEM, "out of memory");
	ix->db = db;
	pthread_mutex_init(&ix->lock, NULL);
	vdb_cond_init(&ix->work_cv);
	vdb_cond_init(&ix->done_cv);
	vdb_cond_init(&ix->vac_cv);
	atomic_init(&ix->vac_base, UINT64_MAX);
	ix->last_ckpt_ms = vdb_now_ms();
	db->indexer = ix;
	snprintf(dir, sizeof(dir), "%s/index", db->path);
	if (!db->opts.read_only && mkdir(dir, 0755) != 0 && errno != EEXIST)
		VDB_LOG_WARN("INDX", "cannot create %s: %s", dir,
		    strerror(errno));
	pool_start(ix);
	if ((rv = open_all(ix)) != VECDB_OK ||
	    pthread_create(&ix->thread, NULL, indexer_main, ix) != 0) {
		if (rv == VECDB_OK)
			rv = vdb_err(VECDB_ENOMEM, "cannot start the indexer");
		goto fail;
	}
	if (pthread_create(&ix->vac_thread, NULL, vacuum_main, ix) != 0) {
		pthread_mutex_lock(&ix->lock);
		__atomic_store_n(&ix->stopping, 1, __ATOMIC_RELAXED);
		pthread_cond_broadcast(&ix->work_cv);
		pthread_mutex_unlock(&ix->lock);
		pthread_join(ix->thread, NULL);
		rv = vdb_err(VECDB_ENOMEM, "cannot start the vacuum");
		goto fail;
	}
	return VECDB_OK;
fail:
	while (ix->list != NULL)
		unregister_locked(ix, ix->list->coll_id, -1);
	storage_pool_free(ix->pool);
	db->indexer = NULL;
	pthread_cond_destroy(&ix->vac_cv);
	vdb_free(ix);
	return rv;
}

void
storage_index_stop(vecdb *db)
{
	struct indexer *ix = db->indexer;

	if (ix == NULL)
		return;
	pthread_mutex_lock(&ix->lock);
	__atomic_store_n(&ix->stopping, 1, __ATOMIC_RELAXED);
	pthread_cond_broadcast(&ix->work_cv);
	pthread_cond_broadcast(&ix->vac_cv);
	pthread_cond_broadcast(&ix->done_cv);
	pthread_mutex_unlock(&ix->lock);
	pthread_join(ix->vac_thread, NULL); /* gives up a compaction */
	pthread_join(ix->thread, NULL); /* drains, then checkpoints */
	storage_pool_free(ix->pool);
	while (ix->list != NULL)
		unregister_locked(ix, ix->list->coll_id, -1);
	pthread_mutex_destroy(&ix->lock);
	pthread_cond_destroy(&ix->work_cv);
	pthread_cond_destroy(&ix->done_cv);
	pthread_cond_destroy(&ix->vac_cv);
	vdb_free(ix);
	db->indexer = NULL;
}

void
storage_index_notify(vecdb *db, uint64_t seq)
{
	struct indexer *ix = db->indexer;

	if (ix == NULL)
		return;
	pthread_mutex_lock(&ix->lock);
	if (seq > ix->target) {
		ix->target = seq;
		pthread_cond_signal(&ix->work_cv);
	}
	pthread_mutex_unlock(&ix->lock);
}

void
storage_index_reset(vecdb *db, uint64_t seq)
{
	struct indexer *ix = db->indexer;

	if (ix == NULL)
		return;
	pthread_mutex_lock(&ix->lock);
	ix->reset = 1;
	if (seq > ix->target)
		ix->target = seq;
	pthread_cond_signal(&ix->work_cv);
	pthread_mutex_unlock(&ix->lock);
}

/* ===== Searching ===== */

/* What the graph's filter callback needs: the search's own snapshot. */
struct fctx {
	vecdb *db;
	MDB_txn *txn;
	const struct coll *c;
	const vecdb_filter *f;
	uint64_t calls;     /* candidates the graph asked about */
	uint64_t passes;    /* of which matched */
	int vslot;          /* the vector searched ... */
	vecdb_collection_config vc; /* ... and its settings */
};

/* The searched vector in a point's vector bytes (NULL: it has none). */
static const void *
fctx_vec(const struct fctx *x, const void *bytes, size_t len)
{
	return storage_xset_vector(x->c, x->vslot, bytes, len);
}

/*
 * The point key of an offset in txn; VECDB_ENOTFOUND if that offset is not
 * current there (the offsets entry goes when the point or its vector does,
 * so its presence alone says the point exists with this vector).
 */
static int
key_of_offset(vecdb *db, MDB_txn *txn, const struct coll *c, uint64_t off,
    uint8_t *pkey, size_t *pklen)
{
	uint8_t kb[12];
	MDB_val k = { 12, kb }, v;
	int rc;

	put_be32(kb, c->id);
	put_be64(kb + 4, off);
	if ((rc = mdb_get(txn, db->offsets, &k, &v)) != 0 ||
	    v.mv_size > STORAGE_KEY_MAX)
		return rc == MDB_NOTFOUND ? VECDB_ENOTFOUND :
					    storage_mdb_err(rc, "read offset");
	put_be32(pkey, c->id);
	memcpy(pkey + 4, v.mv_data, v.mv_size);
	*pklen = 4 + v.mv_size;
	return VECDB_OK;
}

/* The point of an offset in txn; VECDB_ENOTFOUND if it is not current. */
static int
point_of_offset(vecdb *db, MDB_txn *txn, const struct coll *c, uint64_t off,
    uint8_t *pkey, size_t *pklen, MDB_val *val)
{
	MDB_val k;
	int rc, rv;

	if ((rv = key_of_offset(db, txn, c, off, pkey, pklen)) != VECDB_OK)
		return rv;
	k.mv_size = *pklen;
	k.mv_data = pkey;
	if ((rc = mdb_get(txn, db->points, &k, val)) != 0)
		return rc == MDB_NOTFOUND ? VECDB_ENOTFOUND :
					    storage_mdb_err(rc, "read point");
	return VECDB_OK;
}

/* Does the point at offset `label` match the filter, in this snapshot? */
static int
filter_cb(uint64_t label, void *arg)
{
	struct fctx *x = arg;
	uint8_t pkey[STORAGE_PKEY_MAX];
	struct rpoint rp;
	json_t *pay = NULL;
	size_t pklen = 0;
	MDB_val v;
	int match;

	if (point_of_offset(x->db, x->txn, x->c, label, pkey, &pklen,
		&v) != VECDB_OK ||
	    storage_point_decode(x->c, &v, &rp) != VECDB_OK)
		return 0;
	if (rp.payload_len > 0 &&
	    (pay = json_loadb(rp.payload, rp.payload_len, 0, NULL)) == NULL)
		return 0;
	match = storage_point_match(x->f, pay, x->c, &rp, pkey + 4,
	    pklen - 4);
	json_decref(pay);
	x->calls++;
	x->passes += (uint64_t) match;
	return match;
}

/* Offer the point with full key pkey at distance dist. */
static void
push_hit(struct storage_topk *t, const uint8_t *pkey, size_t pklen,
    float dist)
{
	struct storage_hit hit;

	hit.dist = dist;
	hit.rank = 0;
	hit.klen = (uint8_t) (pklen - 4);
	memcpy(hit.key, pkey + 4, hit.klen);
	storage_topk_push(t, &hit);
}

/*
 * Push the graph's hits, resolved in txn; stale nodes (deleted or
 * overwritten since indexing, or newer than the snapshot) are skipped and
 * counted in *dropped. With q (a quantized graph's candidates to rescore)
 * each distance is taken anew from the point's vector in txn, decoded
 * into buf.
 */
static int
push_graph_hits(struct fctx *x, const hnsw_hit *h, size_t n,
    struct storage_topk *t, size_t *dropped, const float *q, float *buf)
{
	uint8_t pkey[STORAGE_PKEY_MAX];
	struct rpoint rp;
	size_t pklen;
	MDB_val v;
	float d;
	int rv;

	*dropped = 0;
	for (size_t i = 0; i < n; i++) {
		d = h[i].dist;
		if (q == NULL) {
			rv = key_of_offset(x->db, x->txn, x->c, h[i].label, pkey,
			    &pklen);
		} else if ((rv = point_of_offset(x->db, x->txn, x->c,
		    h[i].label, pkey, &pklen, &v)) == VECDB_OK &&
		    (rv = storage_point_decode(x->c, &v, &rp)) == VECDB_OK) {
			const void *vec = fctx_vec(x, rp.vec, rp.vec_len);

			if (vec == NULL) {
				(*dropped)++;
				continue;
			}
			vec_decode(vec, x->vc.dimension, x->vc.vector_type,
			    buf);
			d = storage_distance(x->vc.metric, q, buf,
			    x->vc.dimension);
		}
		if (rv == VECDB_ENOTFOUND) {
			(*dropped)++;
			continue;
		}
		if (rv != VECDB_OK)
			return rv;
		push_hit(t, pkey, pklen, d);
	}
	return VECDB_OK;
}

/*
 * Candidates a search asks the graph for: the limit, or on a quantized
 * graph whose hits are rescored, oversampling x the limit (every
 * candidate the walk keeps, ef, when the codes are to be ignored).
 */
static uint32_t
candidates(const vecdb_search_params *p, uint32_t k, uint32_t ef,
    int rescore)
{
	if (!rescore)
		return k;
	if (p->quant_ignore)
		return ef > k ? ef : k;
	double over = p->oversampling >= 1 ? p->oversampling : 1.0;
	double want = ceil(over * k);
	return want > VECDB_HNSW_EF_MAX ? VECDB_HNSW_EF_MAX :
	    want < k ? k : (uint32_t) want;
}

/* Was offset `off` among the graph's hits? */
static int
in_hits(const hnsw_hit *h, size_t n, uint64_t off)
{
	for (size_t i = 0; i < n; i++)
		if (h[i].label == off)
			return 1;
	return 0;
}

/*
 * Score one tail entry exactly, from the WAL's copy of its vector (the
 * vector of that offset, which never changes). Only an entry that would
 * make the top k is looked up: is its offset still the point's (not
 * overwritten or deleted later), does it match the filter. So a long
 * tail costs a sequential read and a distance an entry, not two B-tree
 * lookups (at 200,000 pending 128-d points, searches took ~100 ms).
 */
static int
push_tail_entry(struct fctx *x, const struct wal_entry *e,
    const vecdb_search_params *p, float *buf, struct storage_topk *t)
{
	uint32_t dim = x->vc.dimension;
	const void *vec = fctx_vec(x, e->vec, e->vlen);
	uint8_t pkey[STORAGE_PKEY_MAX];
	size_t pklen;
	float d;
	int rv;

	if (vec == NULL) {
		if (x->vslot != 0)
			return VECDB_OK; /* the point has no such vector */
		return vdb_err(VECDB_ECORRUPT, "WAL vector of %zu bytes in "
		    "'%s'", e->vlen, x->c->cfg.name);
	}
	vec_decode(vec, dim, x->vc.vector_type, buf);
	d = storage_distance(x->vc.metric, p->vector, buf, dim);
	if (t->k == 0 || (t->n == t->k && t->h[0].rank == 0 &&
	    d > t->h[0].dist))
		return VECDB_OK; /* farther than all k found: no lookup */
	rv = key_of_offset(x->db, x->txn, x->c, e->offset, pkey, &pklen);
	if (rv == VECDB_ENOTFOUND)
		return VECDB_OK; /* overwritten or deleted later in the tail */
	if (rv != VECDB_OK)
		return rv;
	if (x->f != NULL && !filter_cb(e->offset, x))
		return VECDB_OK;
	push_hit(t, pkey, pklen, d);
	return VECDB_OK;
}

/*
 * Brute-force the points written after `applied` (and seen by txn) that
 * the graph did not return: the writes the indexer has not applied yet.
 */
static int
search_tail(struct fctx *x, uint64_t applied, const vecdb_search_params *p,
    const hnsw_hit *h, size_t n, struct storage_topk *t)
{
	uint8_t kb[8];
	MDB_cursor *cur;
	MDB_val k = { 8, kb }, v;
	struct wal_rec r;
	struct wal_iter it;
	struct wal_entry e;
	float *buf = vdb_malloc(x->vc.dimension * sizeof(float));
	uint32_t id;
	int rc, rv = VECDB_OK, more;

	if (buf == NULL)
		return vdb_err(VECDB_ENOMEM, "out of memory");
	put_be64(kb, applied + 1);
	if ((rc = mdb_cursor_open(x->txn, x->db->wal, &cur)) != 0) {
		vdb_free(buf);
		return storage_mdb_err(rc, "open cursor");
	}
	for (rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
	     rc == 0 && rv == VECDB_OK; rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
		if ((rv = storage_wal_decode(&k, &v, &r)) != VECDB_OK ||
		    r.op != WAL_PUT || storage_wal_coll(&r, &id) != VECDB_OK ||
		    id != x->c->id)
			continue;
		if ((rv = storage_wal_iter_init(&it, &r)) != VECDB_OK)
			break;
		/* A payload-only entry keeps its offset: the graph, or the
		 * entry that wrote the vector, already covers the point. */
		while (rv == VECDB_OK && (more = storage_wal_next(&it, &e)) > 0)
			if (e.old_offset != e.offset && !in_hits(h, n, e.offset))
				rv = push_tail_entry(x, &e, p, buf, t);
		if (rv == VECDB_OK && more < 0)
			rv = -more;
	}
	mdb_cursor_close(cur);
	vdb_free(buf);
	return rv;
}

/* The collection has enough points to be worth the graph. */
static int
big_enough(vecdb *db, MDB_txn *txn, const struct coll *c)
{
	struct coll_state st;

	return storage_state_get(db, txn, c->id, &st) == VECDB_OK &&
	    st.count > db->opts.full_scan_threshold;
}

/*
 * A filter passing under 1 in FILTER_PASS_MIN of the nodes the graph
 * looked at leaves too few matching nodes for the walk to find the
 * nearest ones (the 1% and 0.1% filters measured recall well
 * under 0.95 at ef 64 in index_test), and so does a walk that found fewer
 * hits than wanted: then an exact scan is both right and cheap enough,
 * since so few points match. A payload index on the field avoids even
 * the scan (the planner reads just the matching points).
 */
#define FILTER_PASS_MIN 50

/* Should a filtered graph search give way to an exact scan? */
static int
too_selective(const struct fctx *x, size_t n, size_t want)
{
	return n < want || x->passes * FILTER_PASS_MIN < x->calls;
}

int
storage_index_search(vecdb *db, MDB_txn *txn, const struct coll *c,
    int vslot, const vecdb_search_params *p, struct storage_topk *t,
    int *used)
{
	struct fctx x = { .db = db, .txn = txn, .c = c, .f = p->filter,
	    .vslot = vslot };
	struct cindex *ci;
	hnsw_hit *hits = NULL;
	float *rbuf = NULL;
	uint64_t applied;
	uint32_t k = (uint32_t) t->k, ef;
	size_t n = 0, dropped = 0;
	int rv, stale, rescore, in_ram = 0;

	*used = 0;
	storage_vector_cfg(&c->cfg, vslot, &x.vc);
	if (p->exact || db->indexer == NULL || !big_enough(db, txn, c) ||
	    (ci = acquire(db->indexer, c->id, vslot)) == NULL)
		return VECDB_OK;
	ef = p->ef_search ? p->ef_search : ci->cfg.index.ef_search;
	applied = atomic_load(&ci->applied);
	rescore = hnsw_quantized(ci->h) != VECDB_QUANT_NONE &&
	    !p->quant_no_rescore;
	k = candidates(p, k, ef, rescore);
	if (rescore && (rbuf = vdb_malloc(x.vc.dimension *
	    sizeof(float))) == NULL) {
		release(db->indexer, ci);
		return vdb_err(VECDB_ENOMEM, "out of memory");
	}
	/* Ask for k; if resolving drops stale nodes, ask again for more
	 * (rare: only writes the indexer has not applied make them). */
	for (int round = 0; round < 4; round++) {
		hnsw_hit *nh = vdb_realloc(hits, k * sizeof(*hits));
		if (nh == NULL) {
			rv = vdb_err(VECDB_ENOMEM, "out of memory");
			break;
		}
		hits = nh;
		x.calls = x.passes = 0;
		rv = hnsw_search(ci->h, p->vector, k, ef < k ? k : ef,
		    p->filter ? filter_cb : NULL, &x, hits, &n);
		if (rv != VECDB_OK || (p->filter != NULL &&
			too_selective(&x, n, t->k)))
			break;
		t->n = 0; /* a retry starts the heap over */
		/* Rescored from the floats the index keeps (always_ram), or
		 * from the points' vectors, read as each hit is resolved. */
		in_ram = rescore && hnsw_rescore(ci->h, p->vector, hits, n);
		if ((rv = push_graph_hits(&x, hits, n, t, &dropped,
		    rescore && !in_ram ? p->vector : NULL, rbuf)) != VECDB_OK ||
		    dropped == 0 || n < k)
			break;
		k += (uint32_t) (2 * dropped + 8);
	}
	/* The indexer skipped inserts that a snapshot newer than ours found
	 * overwritten: ours may still hold those points, which neither the
	 * graph nor our WAL tail has. Rare (an indexer batch must begin and
	 * a write commit while this search runs); scan exactly then. */
	stale = atomic_load(&ci->stale_txn) > mdb_txn_id(txn);
	release(db->indexer, ci);
	if (rv == VECDB_OK && stale) {
		t->n = 0;
		vdb_free(hits);
		vdb_free(rbuf);
		return VECDB_OK;
	}
	if (rv == VECDB_OK && p->filter != NULL && too_selective(&x, n, t->k)) {
		t->n = 0;
		vdb_free(hits);
		vdb_free(rbuf);
		return VECDB_OK; /* *used 0: the caller scans exactly */
	}
	if (rv == VECDB_OK)
		rv = search_tail(&x, applied, p, hits, n, t);
	vdb_free(hits);
	vdb_free(rbuf);
	*used = rv == VECDB_OK;
	return rv;
}

/* ===== Stats and API ===== */

/* Entries in the WAL after `applied` that wrote or deleted vectors of
 * collection c: the index work still to do. */
static uint64_t
tail_count(vecdb *db, MDB_txn *txn, uint32_t coll_id, uint64_t applied)
{
	uint8_t kb[8];
	MDB_cursor *cur;
	MDB_val k = { 8, kb }, v;
	struct wal_rec r;
	struct wal_iter it;
	struct wal_entry e;
	uint64_t n = 0;
	uint32_t id;
	int rc;

	put_be64(kb, applied + 1);
	if (mdb_cursor_open(txn, db->wal, &cur) != 0)
		return 0;
	for (rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE); rc == 0;
	     rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
		if (storage_wal_decode(&k, &v, &r) != VECDB_OK ||
		    (r.op != WAL_PUT && r.op != WAL_DELETE) ||
		    storage_wal_coll(&r, &id) != VECDB_OK || id != coll_id ||
		    storage_wal_iter_init(&it, &r) != VECDB_OK)
			continue;
		while (storage_wal_next(&it, &e) > 0)
			n += e.old_offset != e.offset;
	}
	mdb_cursor_close(cur);
	return n;
}

int
storage_index_stats(vecdb *db, MDB_txn *txn, const struct coll *c,
    vecdb_collection_stats *st)
{
	struct cindex *ci = db->indexer ? acquire(db->indexer, c->id, 0) :
	    NULL;
	int on = 0, rv;

	if ((rv = storage_index_enabled(db, txn, c->id, &on)) != VECDB_OK)
		goto out;
	if (ci != NULL) {
		st->indexed_count = hnsw_count(ci->h);
		st->dead_count = hnsw_deleted_count(ci->h);
		if (st->dead_count > 0)
			st->dead_ratio = (double) st->dead_count /
			    (double) (st->indexed_count + st->dead_count);
		st->memory_bytes = hnsw_memory(ci->h);
		size_t codes, links, orig;
		hnsw_memory_parts(ci->h, &codes, &links, &orig);
		st->code_bytes = codes;
		st->link_bytes = links;
		st->original_bytes = orig;
		st->quant_in_force = hnsw_quantized(ci->h);
		st->pending_count = tail_count(db, txn, c->id,
		    atomic_load(&ci->applied));
		st->compactions = atomic_load(&ci->compactions);
		st->indexing_rate = index_rate(ci);
		vacuum_stats(db->indexer, c->id, st);
	} else if (on && c->cfg.dimension > 0) {
		st->pending_count = st->vector_count; /* still building */
	}
	for (int s = 1; db->indexer && s <= (int) c->cfg.n_vectors; s++) {
		struct cindex *vi = acquire(db->indexer, c->id, s);

		if (vi == NULL)
			continue;
		st->named_indexed[s - 1] = hnsw_count(vi->h);
		st->memory_bytes += hnsw_memory(vi->h);
		release(db->indexer, vi);
	}
out:
	if (ci != NULL)
		release(db->indexer, ci);
	return rv;
}

void
storage_index_build_stats(vecdb *db, vecdb_stats *st)
{
	struct indexer *ix = db->indexer;

	if (ix == NULL)
		return;
	pthread_mutex_lock(&ix->lock);
	st->index_builds = ix->builds;
	st->index_build_seconds = ix->build_s;
	memcpy(st->index_build_buckets, ix->build_buckets,
	    sizeof(st->index_build_buckets));
	pthread_mutex_unlock(&ix->lock);
}

uint64_t
storage_index_memory(vecdb *db)
{
	struct indexer *ix = db->indexer;
	uint64_t n = 0;

	if (ix == NULL)
		return 0;
	pthread_mutex_lock(&ix->lock);
	for (struct cindex *ci = ix->list; ci != NULL; ci = ci->next)
		if (ci->h != NULL)
			n += hnsw_memory(ci->h);
	pthread_mutex_unlock(&ix->lock);
	return n;
}

/* The meta key of a collection's "index off" flag. */
static void
off_key(uint32_t coll_id, uint8_t out[5])
{
	out[0] = 'n';
	put_be32(out + 1, coll_id);
}

int
storage_index_enabled(vecdb *db, MDB_txn *txn, uint32_t coll_id, int *on)
{
	uint8_t kb[5];
	MDB_val k = { 5, kb }, v;
	int rc;

	off_key(coll_id, kb);
	rc = mdb_get(txn, db->meta, &k, &v);
	if (rc != 0 && rc != MDB_NOTFOUND)
		return storage_mdb_err(rc, "read index flag");
	*on = rc == MDB_NOTFOUND;
	return VECDB_OK;
}

int
storage_index_flag_txn(vecdb *db, MDB_txn *txn, uint32_t coll_id, int on)
{
	uint8_t kb[5], one = 1;
	MDB_val k = { 5, kb }, v = { 1, &one };
	int rc;

	off_key(coll_id, kb);
	rc = on ? mdb_del(txn, db->meta, &k, NULL) :
		  mdb_put(txn, db->meta, &k, &v, 0);
	if (rc != 0 && rc != MDB_NOTFOUND)
		return storage_mdb_err(rc, "write index flag");
	return VECDB_OK;
}

int
storage_apply_index(struct wctx *w, struct wreq *r)
{
	struct coll c;
	int rv;

	if ((rv = storage_coll_find(w->db, w->txn, r->u.index.coll, &c)) !=
	    VECDB_OK ||
	    (rv = storage_index_flag_txn(w->db, w->txn, c.id,
		 r->u.index.on)) != VECDB_OK)
		return rv;
	r->u.index.coll_id = c.id;
	return VECDB_OK;
}

/* Ask the writer to turn a collection's index on (rebuild) or off. */
static int
index_request(vecdb *db, const char *coll, int on)
{
	struct wreq r;
	int rv;

	vdb_err_clear();
	if (db->writer == NULL)
		return vdb_err(VECDB_EREADONLY, "database is open read-only");
	if ((rv = storage_name_check(coll)) != VECDB_OK)
		return rv;
	memset(&r, 0, sizeof(r));
	r.op = WREQ_INDEX;
	r.u.index.coll = coll;
	r.u.index.on = on;
	return storage_writer_submit(db, &r);
}

int
vecdb_index_rebuild(vecdb *db, const char *coll)
{
	return index_request(db, coll, 1);
}

int
vecdb_compact(vecdb *db, const char *coll)
{
	struct coll c;
	MDB_txn *txn;
	int rv;

	vdb_err_clear();
	if (db->indexer == NULL)
		return vdb_err(VECDB_ECLOSED, "database is closing");
	if ((rv = storage_name_check(coll)) != VECDB_OK ||
	    (rv = storage_read_begin(db, &txn)) != VECDB_OK)
		return rv;
	rv = storage_coll_find(db, txn, coll, &c);
	mdb_txn_abort(txn);
	if (rv == VECDB_OK)
		vacuum_request(db->indexer, c.id);
	return rv;
}

int
vecdb_index_delete(vecdb *db, const char *coll)
{
	return index_request(db, coll, 0);
}

int
vecdb_index_has(vecdb *db, const char *coll, int *out)
{
	struct coll c;
	MDB_txn *txn;
	int rv, on = 0;

	vdb_err_clear();
	if ((rv = storage_read_begin(db, &txn)) != VECDB_OK)
		return rv;
	if ((rv = storage_coll_find(db, txn, coll, &c)) == VECDB_OK)
		rv = storage_index_enabled(db, txn, c.id, &on);
	mdb_txn_abort(txn);
	if (rv == VECDB_OK)
		*out = on;
	return rv;
}

/* Are all graphs built and the WAL applied up to `target`? */
static int
synced_locked(struct indexer *ix, uint64_t target)
{
	if (ix->applied < target)
		return 0;
	for (struct cindex *ci = ix->list; ci != NULL; ci = ci->next)
		if (ci->h == NULL)
			return 0;
	return 1;
}

int
vecdb_index_sync(vecdb *db, uint32_t timeout_ms)
{
	struct indexer *ix = db->indexer;
	uint64_t target, deadline = vdb_now_ms() + timeout_ms;
	MDB_txn *txn;
	int rv, ok;

	vdb_err_clear();
	if ((rv = storage_read_begin(db, &txn)) != VECDB_OK)
		return rv;
	rv = storage_meta_get_u64(db, txn, "last_seq", &target);
	mdb_txn_abort(txn);
	if (rv == VECDB_ENOTFOUND || ix == NULL)
		return VECDB_OK;
	if (rv != VECDB_OK)
		return rv;
	storage_index_notify(db, target);
	pthread_mutex_lock(&ix->lock);
	while (!(ok = synced_locked(ix, target)) && vdb_now_ms() < deadline) {
		struct timespec ts;
		ts = vdb_deadline(20);
		pthread_cond_timedwait(&ix->done_cv, &ix->lock, &ts);
	}
	pthread_mutex_unlock(&ix->lock);
	return ok ? VECDB_OK : vdb_err(VECDB_EIO, "the index is still behind "
	    "after %u ms", timeout_ms);
}
