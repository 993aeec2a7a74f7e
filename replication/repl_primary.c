/*
 * repl_primary.c: the primary's side of replication: FetchWal answers,
 * parked long-polls, replica positions and lag, bootstrap copies.
 *
 * Long-polls wait on our own condition variable, which the engine's commit
 * hook signals after each commit: no polling. One waiter thread answers
 * them (through the caller's wake callback) when the last seq passes their
 * position or their deadline comes, so a parked request holds no RPC
 * thread while it waits.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "repl.h"
#include "storage_repl.h"
#include "vdb.h"

#define COMMITS_KEPT 8192   /* commit times remembered, for lag_seconds */

/* A parked long-poll. */
struct waiter {
	uint64_t after_seq;
	uint64_t deadline_ms;
	void (*wake)(void *);
	void *arg;
};

/* A bootstrap copy being served. */
struct session {
	uint64_t id;             /* 0: slot free */
	char path[4200];
	uint64_t size;
	uint64_t used_ms;        /* last begin or chunk */
};

/* When a commit made a seq visible. */
struct commit {
	uint64_t seq;
	uint64_t ms;             /* CLOCK_MONOTONIC */
};

struct repl_primary {
	vecdb *db;                          /* borrowed */
	char dir[4096];
	uint64_t wal_max_bytes;             /* how far the WAL may grow for
					       replicas behind */
	pthread_t thread;
	pthread_mutex_t lock;               /* guards everything below */
	pthread_cond_t cv;                  /* a commit, a park, or stop */
	pthread_cond_t ack_cv;              /* a replica acknowledged */
	uint64_t last_seq;                  /* the engine's, via the hook */
	int stopping;
	struct waiter parked[REPL_PARKED_MAX];
	size_t nparked;
	struct repl_replica replicas[REPL_REPLICAS_MAX];
	size_t nreplicas;
	struct commit commits[COMMITS_KEPT]; /* a ring, seq ascending */
	size_t ncommits, commit_head;       /* head: the oldest */
	uint64_t start_ms;
	pthread_mutex_t slock;              /* guards sessions, next_session
					       (copies are slow: not under
					       lock) */
	struct session sessions[REPL_SESSIONS_MAX];
	uint64_t next_session;
};

/* ===== Commits and lag ===== */

/* The engine's commit hook (writer thread): note the seq, wake waiters. */
static void
on_commit(void *arg, uint64_t seq)
{
	struct repl_primary *p = arg;
	size_t i;

	pthread_mutex_lock(&p->lock);
	p->last_seq = seq;
	i = (p->commit_head + p->ncommits) % COMMITS_KEPT;
	if (p->ncommits == COMMITS_KEPT)
		p->commit_head = (p->commit_head + 1) % COMMITS_KEPT;
	else
		p->ncommits++;
	p->commits[i] = (struct commit) { seq, vdb_now_ms() };
	pthread_cond_broadcast(&p->cv);
	pthread_mutex_unlock(&p->lock);
}

/*
 * When the first record after @p acked became visible: the commit time of
 * the oldest remembered commit that reached past it (binary search of the
 * ring). Older than the ring: its oldest time (an underestimate).
 */
static uint64_t
first_missing_ms_locked(struct repl_primary *p, uint64_t acked)
{
	size_t lo = 0, hi = p->ncommits;

	if (p->ncommits == 0)
		return p->start_ms;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		if (p->commits[(p->commit_head + mid) % COMMITS_KEPT].seq <= acked)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo == p->ncommits)
		lo = p->ncommits - 1;
	return p->commits[(p->commit_head + lo) % COMMITS_KEPT].ms;
}

/* Fill a replica's lag as of now. */
static void
lag_locked(struct repl_primary *p, struct repl_replica *r, uint64_t now)
{
	if (r->acked_seq >= p->last_seq) {
		r->lag_records = 0;
		r->lag_s = 0;
		return;
	}
	r->lag_records = p->last_seq - r->acked_seq;
	r->lag_s = (double) (now - first_missing_ms_locked(p, r->acked_seq)) /
	    1000.0;
}

/* Hold the WAL after the oldest position a replica has acknowledged. */
static void
hold_update_locked(struct repl_primary *p)
{
	uint64_t hold = UINT64_MAX;

	for (size_t i = 0; i < p->nreplicas; i++)
		if (p->replicas[i].acked_seq < hold)
			hold = p->replicas[i].acked_seq;
	storage_wal_hold_set(p->db, hold, p->wal_max_bytes);
}

/* Remember a replica's acknowledgement (the first REPL_REPLICAS_MAX). */
static void
ack_locked(struct repl_primary *p, const char *id, uint64_t seq)
{
	struct repl_replica *r = NULL;

	if (*id == '\0')
		id = "unnamed";
	for (size_t i = 0; i < p->nreplicas && r == NULL; i++)
		if (strcmp(p->replicas[i].id, id) == 0)
			r = &p->replicas[i];
	if (r == NULL && p->nreplicas < REPL_REPLICAS_MAX) {
		r = &p->replicas[p->nreplicas++];
		memset(r, 0, sizeof(*r));
		snprintf(r->id, sizeof(r->id), "%s", id);
	}
	if (r == NULL)
		return;
	r->acked_seq = seq;
	r->contact_ms = vdb_now_ms();
	hold_update_locked(p);
	pthread_cond_broadcast(&p->ack_cv);
}

size_t
repl_primary_replicas(repl_primary *p, struct repl_replica *out, size_t cap)
{
	uint64_t now = vdb_now_ms();
	size_t n;

	pthread_mutex_lock(&p->lock);
	for (n = 0; n < p->nreplicas && n < cap; n++) {
		out[n] = p->replicas[n];
		lag_locked(p, &out[n], now);
	}
	pthread_mutex_unlock(&p->lock);
	return n;
}

/* How many replicas have acknowledged @p seq. */
static size_t
acked_count_locked(struct repl_primary *p, uint64_t seq)
{
	size_t n = 0;

	for (size_t i = 0; i < p->nreplicas; i++)
		n += p->replicas[i].acked_seq >= seq;
	return n;
}

int
repl_primary_wait_acks(repl_primary *p, uint64_t seq, size_t n,
    uint32_t timeout_ms)
{
	struct timespec ts;
	size_t have;
	int rv = VECDB_OK;

	ts = vdb_deadline(timeout_ms);
	pthread_mutex_lock(&p->lock);
	while ((have = acked_count_locked(p, seq)) < n && !p->stopping &&
	    rv == VECDB_OK)
		if (pthread_cond_timedwait(&p->ack_cv, &p->lock, &ts) ==
		    ETIMEDOUT)
			rv = VECDB_EIO;
	have = acked_count_locked(p, seq);
	pthread_mutex_unlock(&p->lock);
	if (have >= n)
		return VECDB_OK;
	return vdb_err(VECDB_EIO, "%zu of %zu replicas have acknowledged seq %"
	    PRIu64 "%s", have, n, seq, rv == VECDB_OK ? " (stopping)" :
	    " in time");
}

void
repl_primary_metrics_write(repl_primary *p, FILE *f)
{
	struct repl_replica r[REPL_REPLICAS_MAX];
	size_t n = repl_primary_replicas(p, r, REPL_REPLICAS_MAX);

	fprintf(f, "# HELP vecdb_replication_lag_records WAL records the "
		   "replica has not acknowledged.\n"
		   "# TYPE vecdb_replication_lag_records gauge\n");
	for (size_t i = 0; i < n; i++)
		fprintf(f, "vecdb_replication_lag_records{replica=\"%s\"} %"
		    PRIu64 "\n", r[i].id, r[i].lag_records);
	fprintf(f, "# HELP vecdb_replication_lag_seconds Age of the oldest "
		   "record the replica has not acknowledged.\n"
		   "# TYPE vecdb_replication_lag_seconds gauge\n");
	for (size_t i = 0; i < n; i++)
		fprintf(f, "vecdb_replication_lag_seconds{replica=\"%s\"} "
		    "%.3f\n", r[i].id, r[i].lag_s);
}

/* ===== FetchWal ===== */

/* The answer to a replica whose history left ours after @p common. */
static int
diverged(const struct proto_fetch_wal *f, uint64_t common,
    const struct storage_wal_info *info, struct proto_wal_batch *out)
{
	VDB_LOG_WARN("REPL", "replica '%s' at seq %" PRIu64 " (term %" PRIu64
	    ") shares our history only up to seq %" PRIu64, f->replica_id,
	    f->after_seq, f->after_term, common);
	memset(out, 0, sizeof(*out));
	out->last_seq = info->last_seq;
	out->oldest_seq = info->oldest_seq;
	out->term = info->term;
	out->diverged = 1;
	out->common_seq = common;
	return VECDB_OK;
}

int
repl_primary_fetch(repl_primary *p, const struct proto_fetch_wal *f,
    struct proto_wal_batch *out)
{
	struct storage_wal_info info;
	size_t recs = f->max_records ? f->max_records : REPL_RECORDS_DEFAULT;
	uint64_t bytes = f->max_bytes ? f->max_bytes : REPL_BYTES_DEFAULT;
	size_t n = 0, len = 0;
	uint8_t *blob = NULL;
	uint64_t common = f->after_seq;
	int rv;

	if (f->after_term != 0 && (rv = storage_wal_common(p->db, f->after_seq,
	    f->after_term, &common, &info)) != VECDB_OK)
		return rv;
	pthread_mutex_lock(&p->lock);
	/* a diverged replica holds only what we share: its acknowledgement
	 * must not count our records past that for write concern */
	ack_locked(p, f->replica_id, common);
	pthread_mutex_unlock(&p->lock);
	if (common < f->after_seq)
		return diverged(f, common, &info, out);
	rv = storage_wal_read(p->db, f->after_seq,
	    recs > REPL_RECORDS_MAX ? REPL_RECORDS_MAX : recs,
	    bytes > REPL_BYTES_MAX ? REPL_BYTES_MAX : (size_t) bytes, &blob,
	    &len, &n, &info);
	if (rv == VECDB_ENOTFOUND)
		return vdb_err(VECDB_ENOTFOUND, "records after %" PRIu64 " are "
		    "no longer held (oldest is %" PRIu64 "): bootstrap",
		    f->after_seq, info.oldest_seq);
	if (rv != VECDB_OK)
		return rv;
	if (f->after_seq > info.last_seq)
		return vdb_err(VECDB_ENOTFOUND, "the replica is at %" PRIu64
		    ", past this primary's last seq %" PRIu64 ": its history "
		    "differs; bootstrap", f->after_seq, info.last_seq);
	memset(out, 0, sizeof(*out));
	out->records = blob;
	out->records_len = len;
	out->count = (uint32_t) n;
	out->last_seq = info.last_seq;
	out->oldest_seq = info.oldest_seq;
	out->term = info.term;
	return VECDB_OK;
}

/* ===== Parked long-polls ===== */

int
repl_primary_park(repl_primary *p, uint64_t after_seq, uint32_t wait_ms,
    void (*wake)(void *), void *arg)
{
	int rv = VECDB_OK;

	if (wait_ms > REPL_WAIT_MAX_MS)
		wait_ms = REPL_WAIT_MAX_MS;
	pthread_mutex_lock(&p->lock);
	if (p->last_seq > after_seq)
		rv = VECDB_EEXIST;
	else if (p->stopping || p->nparked == REPL_PARKED_MAX)
		rv = VECDB_EFULL;
	else {
		p->parked[p->nparked++] = (struct waiter) { after_seq,
			vdb_now_ms() + wait_ms, wake, arg };
		pthread_cond_broadcast(&p->cv);
	}
	pthread_mutex_unlock(&p->lock);
	return rv;
}

/* Move the waiters due now into @p due; returns how many. */
static size_t
take_due_locked(struct repl_primary *p, struct waiter *due)
{
	uint64_t now = vdb_now_ms();
	size_t n = 0, keep = 0;

	for (size_t i = 0; i < p->nparked; i++) {
		struct waiter *w = &p->parked[i];
		if (p->stopping || p->last_seq > w->after_seq ||
		    now >= w->deadline_ms)
			due[n++] = *w;
		else
			p->parked[keep++] = *w;
	}
	p->nparked = keep;
	return n;
}

/* Sleep until the earliest deadline, a commit, a park or a stop. */
static void
wait_locked(struct repl_primary *p)
{
	uint64_t first = UINT64_MAX, now = vdb_now_ms(), ms;
	struct timespec ts;

	for (size_t i = 0; i < p->nparked; i++)
		if (p->parked[i].deadline_ms < first)
			first = p->parked[i].deadline_ms;
	if (first == UINT64_MAX) {
		pthread_cond_wait(&p->cv, &p->lock);
		return;
	}
	ms = first > now ? first - now : 0;
	ts = vdb_deadline(ms);
	pthread_cond_timedwait(&p->cv, &p->lock, &ts);
}

/* The waiter thread: answer parked long-polls when they are due. */
static void *
waiter_main(void *arg)
{
	struct repl_primary *p = arg;
	struct waiter due[REPL_PARKED_MAX];
	size_t n;

	pthread_mutex_lock(&p->lock);
	for (;;) {
		n = take_due_locked(p, due);
		if (n > 0) {
			pthread_mutex_unlock(&p->lock);
			for (size_t i = 0; i < n; i++)
				due[i].wake(due[i].arg);
			pthread_mutex_lock(&p->lock);
			continue;
		}
		if (p->stopping)
			break;
		wait_locked(p);
	}
	pthread_mutex_unlock(&p->lock);
	return NULL;
}

/* ===== Bootstrap copies ===== */

/* SHA-256 of a whole file, and its size. */
static int
file_sha256(const char *path, uint8_t sum[32], uint64_t *size)
{
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	uint8_t *buf = vdb_malloc(1 << 16);
	ssize_t k = 0;
	int fd = -1, rv = VECDB_OK;

	*size = 0;
	if (md == NULL || buf == NULL ||
	    EVP_DigestInit_ex(md, EVP_sha256(), NULL) != 1)
		rv = vdb_err(VECDB_ENOMEM, "out of memory");
	else if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
		rv = vdb_err(VECDB_EIO, "cannot open %s: %s", path,
		    strerror(errno));
	while (rv == VECDB_OK && (k = read(fd, buf, 1 << 16)) > 0) {
		EVP_DigestUpdate(md, buf, (size_t) k);
		*size += (uint64_t) k;
	}
	if (rv == VECDB_OK && k < 0)
		rv = vdb_err(VECDB_EIO, "cannot read %s: %s", path,
		    strerror(errno));
	if (rv == VECDB_OK)
		EVP_DigestFinal_ex(md, sum, NULL);
	if (fd >= 0)
		close(fd);
	vdb_free(buf);
	EVP_MD_CTX_free(md);
	return rv;
}

/* Forget a session and remove its file. Caller holds slock. */
static void
session_drop_locked(struct session *s)
{
	if (s->id != 0)
		unlink(s->path);
	s->id = 0;
}

/* A free slot, freeing idle ones and then the least recently used. */
static struct session *
session_slot_locked(struct repl_primary *p)
{
	struct session *lru = &p->sessions[0];
	uint64_t now = vdb_now_ms();

	for (size_t i = 0; i < REPL_SESSIONS_MAX; i++) {
		struct session *s = &p->sessions[i];
		if (s->id != 0 && now - s->used_ms > REPL_SESSION_IDLE_MS)
			session_drop_locked(s);
		if (s->id == 0)
			return s;
		if (s->used_ms < lru->used_ms)
			lru = s;
	}
	session_drop_locked(lru);
	return lru;
}

int
repl_primary_bootstrap_begin(repl_primary *p, const char *replica_id,
    struct proto_bootstrap_info *out)
{
	char path[4200];
	struct session *s;
	uint64_t id, size;
	int rv;

	pthread_mutex_lock(&p->slock);
	id = ++p->next_session;
	pthread_mutex_unlock(&p->slock);
	snprintf(path, sizeof(path), "%s/repl-bootstrap-%" PRIu64 ".mdb",
	    p->dir, id);
	unlink(path);
	if ((rv = storage_copy(p->db, path)) != VECDB_OK ||
	    (rv = file_sha256(path, out->sha256, &size)) != VECDB_OK) {
		unlink(path);
		return rv;
	}
	VDB_LOG_INFO("REPL", "bootstrap copy %" PRIu64 " for '%s': %" PRIu64
	    " bytes", id, replica_id, size);
	pthread_mutex_lock(&p->slock);
	s = session_slot_locked(p);
	s->id = id;
	snprintf(s->path, sizeof(s->path), "%s", path);
	s->size = size;
	s->used_ms = vdb_now_ms();
	pthread_mutex_unlock(&p->slock);
	out->session = id;
	out->size = size;
	return VECDB_OK;
}

/* Read n bytes at off from path into a fresh buffer. */
static int
file_read_at(const char *path, uint64_t off, size_t n, uint8_t **out)
{
	uint8_t *b = vdb_malloc(n ? n : 1);
	ssize_t k = -1;
	int fd;

	if (b == NULL)
		return vdb_err(VECDB_ENOMEM, "out of memory");
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) >= 0) {
		k = pread(fd, b, n, (off_t) off);
		close(fd);
	}
	if (k < 0 || (size_t) k != n) {
		vdb_free(b);
		return vdb_err(VECDB_EIO, "cannot read bootstrap copy %s",
		    path);
	}
	*out = b;
	return VECDB_OK;
}

int
repl_primary_bootstrap_chunk(repl_primary *p,
    const struct proto_bootstrap_chunk *c, uint8_t **data, size_t *n)
{
	struct session *s = NULL;
	char path[4200];
	uint64_t size;
	size_t len;
	int rv;

	pthread_mutex_lock(&p->slock);
	for (size_t i = 0; i < REPL_SESSIONS_MAX && s == NULL; i++)
		if (c->session != 0 && p->sessions[i].id == c->session)
			s = &p->sessions[i];
	if (s == NULL) {
		pthread_mutex_unlock(&p->slock);
		return vdb_err(VECDB_ENOTFOUND, "bootstrap session %" PRIu64
		    " is not open here", c->session);
	}
	s->used_ms = vdb_now_ms();
	size = s->size;
	snprintf(path, sizeof(path), "%s", s->path);
	pthread_mutex_unlock(&p->slock);
	if (c->offset > size)
		return vdb_err(VECDB_EINVAL, "offset %" PRIu64 " is past the "
		    "copy's %" PRIu64 " bytes", c->offset, size);
	len = size - c->offset < c->max_bytes ? (size_t) (size - c->offset) :
						c->max_bytes;
	if ((rv = file_read_at(path, c->offset, len, data)) != VECDB_OK)
		return rv;
	*n = len;
	if (c->offset + len == size) {
		/* Served whole: the replica verifies and loads it. */
		pthread_mutex_lock(&p->slock);
		for (size_t i = 0; i < REPL_SESSIONS_MAX; i++)
			if (p->sessions[i].id == c->session)
				session_drop_locked(&p->sessions[i]);
		pthread_mutex_unlock(&p->slock);
	}
	return VECDB_OK;
}

/* ===== Lifecycle ===== */

/* Remove bootstrap copies a crash left behind in dir. */
static void
stale_copies_remove(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	char path[4200];

	while (d != NULL && (e = readdir(d)) != NULL)
		if (strncmp(e->d_name, "repl-bootstrap-", 15) == 0) {
			snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
			unlink(path);
		}
	if (d != NULL)
		closedir(d);
}

int
repl_primary_new(vecdb *db, const char *dir, uint64_t wal_max_bytes,
    repl_primary **out)
{
	struct storage_wal_info info;
	struct repl_primary *p;
	int rv;

	if ((rv = storage_wal_info_get(db, &info)) != VECDB_OK)
		return rv;
	if ((p = vdb_calloc(1, sizeof(*p))) == NULL)
		return vdb_err(VECDB_ENOMEM, "out of memory");
	p->db = db;
	p->wal_max_bytes = wal_max_bytes;
	snprintf(p->dir, sizeof(p->dir), "%s", dir);
	stale_copies_remove(dir);
	p->last_seq = info.last_seq;
	p->start_ms = vdb_now_ms();
	pthread_mutex_init(&p->lock, NULL);
	pthread_mutex_init(&p->slock, NULL);
	vdb_cond_init(&p->cv);
	vdb_cond_init(&p->ack_cv);
	if (pthread_create(&p->thread, NULL, waiter_main, p) != 0) {
		pthread_mutex_destroy(&p->lock);
		pthread_mutex_destroy(&p->slock);
		pthread_cond_destroy(&p->cv);
		pthread_cond_destroy(&p->ack_cv);
		vdb_free(p);
		return vdb_err(VECDB_ENOMEM, "cannot start the waiter thread");
	}
	storage_commit_hook_set(db, on_commit, p);
	*out = p;
	return VECDB_OK;
}

void
repl_primary_stop(repl_primary *p)
{
	if (p == NULL)
		return;
	pthread_mutex_lock(&p->lock);
	if (p->stopping) {
		pthread_mutex_unlock(&p->lock);
		return;
	}
	p->stopping = 1;
	pthread_cond_broadcast(&p->cv);
	pthread_cond_broadcast(&p->ack_cv);
	pthread_mutex_unlock(&p->lock);
	pthread_join(p->thread, NULL); /* it answers every parked poll */
	storage_commit_hook_set(p->db, NULL, NULL);
	pthread_mutex_lock(&p->slock);
	for (size_t i = 0; i < REPL_SESSIONS_MAX; i++)
		session_drop_locked(&p->sessions[i]);
	pthread_mutex_unlock(&p->slock);
}

void
repl_primary_free(repl_primary *p)
{
	if (p == NULL)
		return;
	repl_primary_stop(p);
	pthread_mutex_destroy(&p->lock);
	pthread_mutex_destroy(&p->slock);
	pthread_cond_destroy(&p->cv);
	pthread_cond_destroy(&p->ack_cv);
	vdb_free(p);
}
