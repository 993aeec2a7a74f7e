/*
 * storage_writer.c: the single writer thread, group commit, and WAL
 * retention (the records themselves are storage_wal.c's).
 *
 * LMDB allows one write transaction at a time. Rather than make writers
 * queue on LMDB's mutex, each paying its own fsync, callers hand requests
 * to one writer thread. It takes everything queued, applies each request
 * in a nested transaction (so one failing request rolls back alone),
 * commits the outer transaction once, and only then wakes the callers: one
 * fsync is shared by every request in the group, and no caller hears of
 * success before its data is committed.
 */
#include <assert.h>
#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>

#include "storage_impl.h"
#include "storage_repl.h"

struct writer {
	pthread_t thread;
	pthread_mutex_t lock;     /* guards every field below */
	pthread_cond_t work_cv;   /* queue not empty, or stopping */
	pthread_cond_t done_cv;   /* some request finished */
	struct wreq *head;        /* queued requests, FIFO */
	struct wreq *tail;
	int stopping;             /* close requested */
	int dirty;                /* buffered mode: commits not yet synced */
	uint64_t last_seq;        /* last WAL seq committed */
	uint64_t term;            /* term stamped on WAL records */
	void (*hook)(void *, uint64_t); /* storage_commit_hook_set */
	void *hook_arg;
	_Atomic uint64_t wal_hold;      /* keep records after this seq... */
	_Atomic uint64_t wal_max_bytes; /* ...while the WAL is under this */
};

/* ===== WAL retention ===== */

/* About how many bytes the WAL DB takes in txn (its pages). */
static uint64_t
wal_bytes(vecdb *db, MDB_txn *txn)
{
	MDB_stat st;

	if (mdb_stat(txn, db->wal, &st) != 0)
		return 0;
	return (uint64_t) st.ms_psize * (st.ms_branch_pages +
	    st.ms_leaf_pages + st.ms_overflow_pages);
}

/*
 * The last WAL_KEEP_BYTES of the WAL stay even when recovery and the known
 * replicas need none of it: a replica the primary has not heard from
 * since it started (so not in the hold) finds the latest writes without
 * a bootstrap, and so do tests and tools reading a plain database's WAL.
 * Small next to the data: 1/60 of a 100k x 128 collection.
 */
#define WAL_KEEP_BYTES (1u << 20)

/*
 * Drop the WAL records nobody needs. Recovery needs those after the
 * indexes' checkpoints (storage_index_wal_floor), replicas those after
 * the oldest position they acknowledged (the hold); past both, records
 * go while the WAL is over WAL_KEEP_BYTES. Records older than the
 * retention window (the last wal_retain) go anyway once the replicas have
 * them, or while the WAL is over its byte bound (that replica will
 * bootstrap, a restart rebuilds the graph from the points). The byte
 * count is LMDB's page count at the start less an estimate per record
 * dropped (its value, key and node header).
 */
static int
wal_trim(vecdb *db, MDB_txn *txn, uint64_t last_seq)
{
	struct writer *wr = db->writer;
	uint64_t bound = 0, hold = atomic_load(&wr->wal_hold), bytes, seq;
	uint64_t max = atomic_load(&wr->wal_max_bytes);
	uint64_t floor = storage_index_wal_floor(db);
	MDB_cursor *cur;
	MDB_val k, v;
	int rc;

	if (last_seq > db->opts.wal_retain)
		bound = last_seq - db->opts.wal_retain;
	if (floor > last_seq)
		floor = last_seq;
	if (hold < floor)
		floor = hold; /* needed by neither recovery nor a replica */
	if (bound == 0 && floor == 0)
		return VECDB_OK;
	bytes = wal_bytes(db, txn);
	if ((rc = mdb_cursor_open(txn, db->wal, &cur)) != 0)
		return storage_mdb_err(rc, "open WAL cursor");
	while ((rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST)) == 0) {
		seq = get_be64(k.mv_data);
		if (!(seq <= bound && (seq <= hold || bytes > max)) &&
		    !(seq <= floor && bytes > WAL_KEEP_BYTES))
			break;
		if ((rc = mdb_cursor_del(cur, 0)) != 0)
			break;
		bytes -= bytes < v.mv_size + 16 ? bytes : v.mv_size + 16;
	}
	mdb_cursor_close(cur);
	if (rc != 0 && rc != MDB_NOTFOUND)
		return storage_mdb_err(rc, "trim WAL");
	return VECDB_OK;
}

void
storage_wal_hold_set(vecdb *db, uint64_t hold_seq, uint64_t max_bytes)
{
	if (db->writer == NULL)
		return;
	atomic_store(&db->writer->wal_hold, hold_seq);
	atomic_store(&db->writer->wal_max_bytes, max_bytes);
}

/* ===== The operations ===== */

/* The WAL records of the operations whose apply step leaves one record
 * to write after it (the others write their own, or none). */

/* CREATE: [name][catalog record]. */
static int
log_create(struct wctx *w, const struct wreq *r)
{
	return storage_wal_log_create(w, r->u.create.cfg->name,
	    r->u.create.rec, r->u.create.rec_len);
}

/* DROP: the id the collection had. */
static int
log_drop(struct wctx *w, const struct wreq *r)
{
	return storage_wal_log_drop(w, r->u.drop.coll_id);
}

/* CONFIG: the new catalog record. */
static int
log_config(struct wctx *w, const struct wreq *r)
{
	return storage_wal_log_config(w, r->u.config.coll_id, r->u.config.rec,
	    r->u.config.rec_len);
}

/* RESTORE: a marker with the snapshot's checksum, not its points. */
static int
log_restore(struct wctx *w, const struct wreq *r)
{
	return storage_wal_log_restore(w, r->u.restore.coll_id,
	    r->u.restore.sum);
}

/* PINDEX_CREATE: the field and its schema. */
static int
log_pindex_create(struct wctx *w, const struct wreq *r)
{
	return storage_wal_log_pindex_create(w, r->u.pindex.coll_id,
	    (int) r->u.pindex.schema, r->u.pindex.field);
}

/* PINDEX_DROP: the field. */
static int
log_pindex_drop(struct wctx *w, const struct wreq *r)
{
	return storage_wal_log_pindex_drop(w, r->u.pindex.coll_id,
	    r->u.pindex.field);
}

/* INDEX: on or off. */
static int
log_index(struct wctx *w, const struct wreq *r)
{
	return storage_wal_log_index(w, r->u.index.coll_id, r->u.index.on);
}

/* One row a write operation. */
struct wop {
	const char *name;                        /* for the debug log */
	int (*apply)(struct wctx *, struct wreq *); /* the change, in w->txn */
	int (*log)(struct wctx *, const struct wreq *); /* its WAL record,
						   after apply; NULL: apply
						   writes its own, or none */
	int throttle;                            /* r->entries count against
						   the indexer's backlog */
};

static const struct wop wops[WREQ_OPS] = {
	[WREQ_CREATE] = { "create", storage_apply_create, log_create, 0 },
	[WREQ_DROP] = { "drop", storage_apply_drop, log_drop, 0 },
	[WREQ_CONFIG] = { "config", storage_apply_config, log_config, 0 },
	/* points: a PUT or DELETE record every ~2 KB, as they go */
	[WREQ_WRITE] = { "write", storage_apply_points, NULL, 1 },
	[WREQ_DELETE] = { "delete", storage_apply_delete, NULL, 1 },
	[WREQ_RESTORE] = { "restore", storage_apply_restore, log_restore, 0 },
	[WREQ_PINDEX_CREATE] = { "pindex_create",
	    storage_apply_pindex_create, log_pindex_create, 0 },
	[WREQ_PINDEX_DROP] = { "pindex_drop", storage_apply_pindex_drop,
	    log_pindex_drop, 0 },
	[WREQ_INDEX] = { "index", storage_apply_index, log_index, 0 },
	/* the records as the primary wrote them */
	[WREQ_REPLICATE] = { "replicate", storage_apply_replicated, NULL, 0 },
	/* the copy brings its own WAL */
	[WREQ_LOAD] = { "load", storage_apply_load, NULL, 0 },
	/* meta "term" only: the next record carries the term */
	[WREQ_TERM] = { "term", storage_apply_term, NULL, 0 },
};

/* ===== The writer thread ===== */

/* Run one request in its own nested txn; updates w->seq on success. */
static void
apply_one(vecdb *db, MDB_txn *parent, struct wctx *w, struct wreq *r)
{
	const struct wop *op = &wops[r->op];
	uint64_t seq0 = w->seq, term0 = w->term;
	int rc;

	vdb_err_clear();
	if ((rc = mdb_txn_begin(db->env, parent, 0, &w->txn)) != 0) {
		r->rc = storage_mdb_err(rc, "begin nested transaction");
		goto out;
	}
	r->rc = op->apply(w, r);
	if (r->rc == VECDB_OK && op->log != NULL)
		r->rc = op->log(w, r);
	if (r->rc == VECDB_OK && r->check_only) {
		mdb_txn_abort(w->txn);  /* it would pass: undo it all the same */
		w->seq = seq0;
	} else if (r->rc == VECDB_OK && (rc = mdb_txn_commit(w->txn)) != 0)
		r->rc = storage_mdb_err(rc, "commit nested transaction");
	else if (r->rc != VECDB_OK)
		mdb_txn_abort(w->txn);
	if (r->rc != VECDB_OK) {
		w->seq = seq0;
		w->term = term0;
	}
out:
	w->txn = NULL;
	vdb_err_save(r->msg, sizeof(r->msg));
	if (r->rc != VECDB_OK)
		VDB_LOG_DEBUG("STOR", "%s request failed: %s", op->name,
		    r->msg);
}

/* Apply and commit one group; fills rc/msg of every request in it. */
static void
group_commit(vecdb *db, struct writer *wr, struct wreq *group,
    void (*hook)(void *, uint64_t), void *hook_arg)
{
	struct wctx w = { db, NULL, wr->last_seq, wr->term, 0 };
	MDB_txn *txn;
	int rc, rv = VECDB_OK;

	if ((rc = mdb_txn_begin(db->env, NULL, 0, &txn)) != 0) {
		rv = storage_mdb_err(rc, "begin write transaction");
		goto fail;
	}
	for (struct wreq *r = group; r != NULL; r = r->next)
		apply_one(db, txn, &w, r);
	if (w.seq != wr->last_seq &&
	    ((rv = storage_meta_put_u64(db, txn, "last_seq", w.seq)) != VECDB_OK ||
		(rv = wal_trim(db, txn, w.seq)) != VECDB_OK)) {
		mdb_txn_abort(txn);
		goto fail;
	}
	if ((rc = mdb_txn_commit(txn)) != 0) {
		rv = storage_write_err(db, rc, "commit");
		goto fail;
	}
	if (w.reset_index)
		storage_index_reset(db, w.seq);
	else
		storage_index_notify(db, w.seq);
	if (w.seq != wr->last_seq && hook != NULL)
		hook(hook_arg, w.seq);
	wr->last_seq = w.seq;
	wr->term = w.term; /* a TERM request started a new one */
	return;
fail:
	/* Nothing of the group is committed: every request fails. */
	VDB_LOG_ERROR("STOR", "group commit failed: %s", vecdb_errmsg());
	for (struct wreq *r = group; r != NULL; r = r->next) {
		r->rc = rv;
		vdb_err_save(r->msg, sizeof(r->msg));
	}
}

/* Wait for work; in buffered mode, sync when idle past the interval. */
static struct wreq *
queue_take_locked(vecdb *db, struct writer *wr)
{
	struct wreq *group;

	while (wr->head == NULL && !wr->stopping) {
		if (wr->dirty) {
			struct timespec ts;
			ts = vdb_deadline(db->opts.sync_interval_ms);
			if (pthread_cond_timedwait(&wr->work_cv, &wr->lock,
				&ts) == ETIMEDOUT) {
				wr->dirty = 0;
				pthread_mutex_unlock(&wr->lock);
				mdb_env_sync(db->env, 1);
				pthread_mutex_lock(&wr->lock);
			}
		} else {
			pthread_cond_wait(&wr->work_cv, &wr->lock);
		}
	}
	group = wr->head;
	wr->head = wr->tail = NULL;
	return group;
}

/* The writer thread's main loop. */
static void *
writer_main(void *arg)
{
	vecdb *db = arg;
	struct writer *wr = db->writer;
	struct wreq *group;

	pthread_mutex_lock(&wr->lock);
	while ((group = queue_take_locked(db, wr)) != NULL) {
		void (*hook)(void *, uint64_t) = wr->hook;
		void *hook_arg = wr->hook_arg;
		pthread_mutex_unlock(&wr->lock);
		group_commit(db, wr, group, hook, hook_arg);
		pthread_mutex_lock(&wr->lock);
		if (db->opts.durability == VECDB_BUFFERED)
			wr->dirty = 1;
		for (struct wreq *r = group, *next; r != NULL; r = next) {
			next = r->next; /* r belongs to its caller once done */
			r->done = 1;
		}
		pthread_cond_broadcast(&wr->done_cv);
	}
	pthread_mutex_unlock(&wr->lock);
	return NULL;
}

/* Read the last seq and term the database has committed. */
static int
writer_load(vecdb *db, struct writer *wr)
{
	MDB_txn *txn;
	int rv;

	if ((rv = storage_read_begin(db, &txn)) != VECDB_OK)
		return rv;
	rv = storage_meta_get_u64(db, txn, "last_seq", &wr->last_seq);
	if (rv == VECDB_ENOTFOUND)
		rv = VECDB_OK;
	if (rv == VECDB_OK)
		rv = storage_meta_get_u64(db, txn, "term", &wr->term);
	if (rv == VECDB_ENOTFOUND) {
		wr->term = 1;
		rv = VECDB_OK;
	}
	mdb_txn_abort(txn);
	return rv;
}

int
storage_writer_start(vecdb *db)
{
	struct writer *wr;
	int rv;

	if ((wr = vdb_calloc(1, sizeof(*wr))) == NULL)
		return vdb_err(VECDB_ENOMEM, "out of memory");
	if ((rv = writer_load(db, wr)) != VECDB_OK) {
		vdb_free(wr);
		return rv;
	}
	atomic_init(&wr->wal_hold, UINT64_MAX);
	atomic_init(&wr->wal_max_bytes, 0);
	pthread_mutex_init(&wr->lock, NULL);
	vdb_cond_init(&wr->work_cv);
	pthread_cond_init(&wr->done_cv, NULL);
	db->writer = wr;
	if (pthread_create(&wr->thread, NULL, writer_main, db) != 0) {
		db->writer = NULL;
		pthread_mutex_destroy(&wr->lock);
		pthread_cond_destroy(&wr->work_cv);
		pthread_cond_destroy(&wr->done_cv);
		vdb_free(wr);
		return vdb_err(VECDB_ENOMEM, "cannot start the writer thread");
	}
	return VECDB_OK;
}

void
storage_writer_stop(vecdb *db)
{
	struct writer *wr = db->writer;

	pthread_mutex_lock(&wr->lock);
	wr->stopping = 1;
	pthread_cond_signal(&wr->work_cv);
	pthread_mutex_unlock(&wr->lock);
	pthread_join(wr->thread, NULL);
	pthread_mutex_destroy(&wr->lock);
	pthread_cond_destroy(&wr->work_cv);
	pthread_cond_destroy(&wr->done_cv);
	vdb_free(wr);
	db->writer = NULL;
}

void
storage_commit_hook_set(vecdb *db, void (*fn)(void *, uint64_t), void *arg)
{
	struct writer *wr = db->writer;

	if (wr == NULL)
		return;
	/* The writer copies the hook under the lock as it takes a group. */
	pthread_mutex_lock(&wr->lock);
	wr->hook = fn;
	wr->hook_arg = arg;
	pthread_mutex_unlock(&wr->lock);
}

int
storage_writer_submit(vecdb *db, struct wreq *r)
{
	struct writer *wr = db->writer;

	assert((unsigned) r->op < WREQ_OPS && wops[r->op].apply != NULL);
	r->next = NULL;
	r->done = 0;
	pthread_mutex_lock(&wr->lock);
	if (wr->stopping) {
		pthread_mutex_unlock(&wr->lock);
		return vdb_err(VECDB_ECLOSED, "database is closing");
	}
	if (wr->tail != NULL)
		wr->tail->next = r;
	else
		wr->head = r;
	wr->tail = r;
	pthread_cond_signal(&wr->work_cv);
	while (!r->done)
		pthread_cond_wait(&wr->done_cv, &wr->lock);
	pthread_mutex_unlock(&wr->lock);
	if (r->rc == VECDB_OK && !r->check_only && wops[r->op].throttle)
		storage_index_throttle(db, r->entries);
	vdb_err_restore(r->rc, r->rc == VECDB_OK ? "" : r->msg);
	return r->rc;
}
