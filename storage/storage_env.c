/*
 * storage_env.c: opening and closing a data dir: options, the writer lock,
 * the LMDB environment and its named DBs, whole-database stats.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "storage_impl.h"

#define MAX_READERS 1024
#define LOCK_FILE "LOCK"

void
vecdb_options_init(vecdb_options *o)
{
	memset(o, 0, sizeof(*o));
	o->durability = VECDB_SYNC;
	o->map_size = VECDB_DEFAULT_MAP_SIZE;
	o->sync_interval_ms = VECDB_DEFAULT_SYNC_INTERVAL_MS;
	o->hnsw_m = VECDB_HNSW_M_DEFAULT;
	o->hnsw_ef = VECDB_HNSW_EF_DEFAULT;
	o->wal_retain = VECDB_DEFAULT_WAL_RETAIN;
	o->full_scan_threshold = VECDB_DEFAULT_FULL_SCAN_THRESHOLD;
	o->checkpoint_interval_s = VECDB_DEFAULT_CHECKPOINT_INTERVAL_S;
}

/* Parse an unsigned number with an optional K/M/G/T suffix (powers of 2). */
static int
parse_size(const char *s, uint64_t *out)
{
	char *end;
	unsigned long long v;
	int shift = 0;

	if (s == NULL || *s < '0' || *s > '9')
		return -1;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno != 0)
		return -1;
	switch (*end) {
	case 'K': case 'k': shift = 10; end++; break;
	case 'M': case 'm': shift = 20; end++; break;
	case 'G': case 'g': shift = 30; end++; break;
	case 'T': case 't': shift = 40; end++; break;
	default: break;
	}
	if (*end != '\0' || (shift && v > (UINT64_MAX >> shift)))
		return -1;
	*out = (uint64_t) v << shift;
	return 0;
}

/* Read env var @p name as a number in [lo, hi] into *out if set. */
static int
env_u64(const char *name, uint64_t lo, uint64_t hi, uint64_t *out)
{
	const char *s = getenv(name);
	uint64_t v;

	if (s == NULL || *s == '\0')
		return VECDB_OK;
	if (parse_size(s, &v) != 0 || v < lo || v > hi)
		return vdb_err(VECDB_EINVAL,
		    "%s='%.32s': expected a number in %llu..%llu", name, s,
		    (unsigned long long) lo, (unsigned long long) hi);
	*out = v;
	return VECDB_OK;
}

int
vecdb_options_from_env(vecdb_options *opts)
{
	vecdb_options o = *opts;
	const char *d = getenv("VECDB_DURABILITY");
	uint64_t m = o.hnsw_m, ef = o.hnsw_ef, it = o.index_threads;
	int rv;

	if (d != NULL && *d != '\0') {
		if (strcmp(d, "sync") == 0)
			o.durability = VECDB_SYNC;
		else if (strcmp(d, "buffered") == 0)
			o.durability = VECDB_BUFFERED;
		else
			return vdb_err(VECDB_EINVAL,
			    "VECDB_DURABILITY='%.32s': expected sync or "
			    "buffered", d);
	}
	if ((rv = env_u64("VECDB_MAP_SIZE", 1 << 20, 1ULL << 46,
		 &o.map_size)) != VECDB_OK ||
	    (rv = env_u64("VECDB_HNSW_M", VECDB_HNSW_M_MIN, VECDB_HNSW_M_MAX,
		 &m)) != VECDB_OK ||
	    (rv = env_u64("VECDB_HNSW_EF", VECDB_HNSW_EF_MIN,
		 VECDB_HNSW_EF_MAX, &ef)) != VECDB_OK ||
	    (rv = env_u64("VECDB_WAL_RETAIN", 1, UINT64_MAX,
		 &o.wal_retain)) != VECDB_OK ||
	    (rv = env_u64("VECDB_FULL_SCAN_THRESHOLD", 0, UINT64_MAX,
		 &o.full_scan_threshold)) != VECDB_OK ||
	    (rv = env_u64("VECDB_INDEX_THREADS", 0, VECDB_INDEX_THREADS_MAX,
		 &it)) != VECDB_OK)
		return rv;
	o.index_threads = (uint32_t) it;
	o.hnsw_m = (uint32_t) m;
	o.hnsw_ef = (uint32_t) ef;
	*opts = o;
	return VECDB_OK;
}

int
storage_mdb_err(int rc, const char *what)
{
	switch (rc) {
	case MDB_SUCCESS:
		return VECDB_OK;
	case MDB_NOTFOUND:
		return vdb_err(VECDB_ENOTFOUND, "%s: not found", what);
	case MDB_MAP_FULL:
		return vdb_err(VECDB_EFULL,
		    "%s: the database map is full; reopen with a larger "
		    "map_size (VECDB_MAP_SIZE)", what);
	case MDB_CORRUPTED:
	case MDB_PAGE_NOTFOUND:
	case MDB_INVALID:
	case MDB_VERSION_MISMATCH:
		return vdb_err(VECDB_ECORRUPT, "%s: %s", what,
		    mdb_strerror(rc));
	case ENOMEM:
		return vdb_err(VECDB_ENOMEM, "%s: out of memory", what);
	case EACCES:
		return vdb_err(VECDB_EREADONLY, "%s: %s", what,
		    mdb_strerror(rc));
	default:
		return vdb_err(VECDB_EIO, "%s: %s", what, mdb_strerror(rc));
	}
}

int
storage_write_err(const vecdb *db, int rc, const char *what)
{
	struct statvfs st;
	unsigned long long avail;

	if (rc != ENOSPC && rc != EIO)
		return storage_mdb_err(rc, what);
	if (statvfs(db->path, &st) != 0)
		return storage_mdb_err(rc, what);
	avail = (unsigned long long) st.f_bavail * st.f_frsize;
	if (rc == EIO && avail >= STORAGE_DISK_FULL_BYTES)
		return storage_mdb_err(rc, what);
	return vdb_err(VECDB_EFULL, "%s: the disk holding %s is full (%llu "
	    "bytes free): writes fail until space is freed, reads go on",
	    what, db->path, avail);
}

int
storage_read_begin(vecdb *db, MDB_txn **out)
{
	int rc = mdb_txn_begin(db->env, NULL, MDB_RDONLY, out);

	return rc ? storage_mdb_err(rc, "begin read transaction") : VECDB_OK;
}

/*
 * Take the writer lock: an flock on <dir>/LOCK, which the kernel drops when
 * the process dies, so a crash never leaves a stale lock. The holder writes
 * its pid there for the error message of the next would-be writer.
 */
static int
lock_acquire(vecdb *db)
{
	char path[4096], pidbuf[32] = "";
	int fd;
	ssize_t n;

	snprintf(path, sizeof(path), "%s/" LOCK_FILE, db->path);
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	if (fd < 0)
		return vdb_err(VECDB_EIO, "cannot open %s: %s", path,
		    strerror(errno));
	if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
		int err = errno;
		n = pread(fd, pidbuf, sizeof(pidbuf) - 1, 0);
		pidbuf[n > 0 ? n : 0] = '\0';
		pidbuf[strcspn(pidbuf, "\n")] = '\0';
		close(fd);
		if (err == EWOULDBLOCK)
			return vdb_err(VECDB_ELOCKED,
			    "data dir %s is locked by pid %s", db->path,
			    pidbuf[0] ? pidbuf : "(unknown)");
		return vdb_err(VECDB_EIO, "cannot lock %s: %s", path,
		    strerror(err));
	}
	n = snprintf(pidbuf, sizeof(pidbuf), "%ld\n", (long) getpid());
	if (ftruncate(fd, 0) != 0 || pwrite(fd, pidbuf, (size_t) n, 0) != n) {
		close(fd);
		return vdb_err(VECDB_EIO, "cannot write %s", path);
	}
	db->lock_fd = fd;
	return VECDB_OK;
}

/*
 * Check the data format in meta, writing it on a fresh database. Takes over
 * @p txn: commits it (or aborts it on failure).
 */
static int
format_check(vecdb *db, MDB_txn *txn)
{
	uint64_t fmt = 0;
	int rv, rc;

	rv = storage_meta_get_u64(db, txn, "format", &fmt);
	if (rv == VECDB_ENOTFOUND && !db->opts.read_only) {
		if ((rv = storage_meta_put_u64(db, txn, "format",
			 STORAGE_FORMAT)) != VECDB_OK) {
			mdb_txn_abort(txn);
			return rv;
		}
		fmt = STORAGE_FORMAT;
	} else if (rv == VECDB_ENOTFOUND) {
		mdb_txn_abort(txn);
		return vdb_err(VECDB_ENOTFOUND, "no vecdb database in %s",
		    db->path);
	} else if (rv != VECDB_OK) {
		mdb_txn_abort(txn);
		return rv;
	}
	if (fmt != STORAGE_FORMAT) {
		mdb_txn_abort(txn);
		return vdb_err(VECDB_ECORRUPT,
		    "data dir %s has format %llu; this build reads format %d",
		    db->path, (unsigned long long) fmt, STORAGE_FORMAT);
	}
	rc = mdb_txn_commit(txn);
	return rc ? storage_mdb_err(rc, "commit") : VECDB_OK;
}

/* Open (or, when writable, create) the named DBs. */
static int
dbs_open(vecdb *db)
{
	unsigned flags = db->opts.read_only ? 0 : MDB_CREATE;
	MDB_txn *txn;
	int rc;

	rc = mdb_txn_begin(db->env, NULL, db->opts.read_only ? MDB_RDONLY : 0,
	    &txn);
	if (rc != 0)
		return storage_mdb_err(rc, "begin transaction");
	if ((rc = mdb_dbi_open(txn, "catalog", flags, &db->catalog)) ||
	    (rc = mdb_dbi_open(txn, "points", flags, &db->points)) ||
	    (rc = mdb_dbi_open(txn, "offsets", flags, &db->offsets)) ||
	    (rc = mdb_dbi_open(txn, "wal", flags, &db->wal)) ||
	    (rc = mdb_dbi_open(txn, "meta", flags, &db->meta)) ||
	    (rc = mdb_dbi_open(txn, "pindex", flags, &db->pindex))) {
		mdb_txn_abort(txn);
		if (rc == MDB_NOTFOUND)
			return vdb_err(VECDB_ENOTFOUND,
			    "no vecdb database in %s", db->path);
		return storage_mdb_err(rc, "open named databases");
	}
	/* added with sparse vectors: a database from before has none */
	rc = mdb_dbi_open(txn, "sparse", flags | MDB_DUPSORT | MDB_DUPFIXED,
	    &db->sparse);
	if (rc != 0 && rc != MDB_NOTFOUND) {
		mdb_txn_abort(txn);
		return storage_mdb_err(rc, "open named databases");
	}
	db->has_sparse = rc == 0;
	return format_check(db, txn);
}

/* Create the LMDB environment and open it on the data dir. */
static int
env_open(vecdb *db)
{
	unsigned flags = MDB_NOTLS;
	int rc;

	if (db->opts.read_only)
		flags |= MDB_RDONLY;
	else if (db->opts.durability == VECDB_BUFFERED)
		flags |= MDB_NOSYNC;
	if ((rc = mdb_env_create(&db->env)) != 0)
		return storage_mdb_err(rc, "create LMDB env");
	mdb_env_set_maxdbs(db->env, 9);
	mdb_env_set_maxreaders(db->env, MAX_READERS);
	if ((rc = mdb_env_set_mapsize(db->env, db->opts.map_size)) != 0)
		return storage_mdb_err(rc, "set map size");
	if ((rc = mdb_env_open(db->env, db->path, flags, 0644)) != 0) {
		if (rc == ENOENT)
			return vdb_err(VECDB_ENOTFOUND,
			    "no vecdb database in %s", db->path);
		return storage_mdb_err(rc, db->path);
	}
	return VECDB_OK;
}

/* Make the data dir (and its parents' last level) when writable. */
static int
dir_prepare(vecdb *db)
{
	struct stat st;

	if (stat(db->path, &st) == 0) {
		if (!S_ISDIR(st.st_mode))
			return vdb_err(VECDB_EINVAL, "%s is not a directory",
			    db->path);
		return VECDB_OK;
	}
	if (db->opts.read_only)
		return vdb_err(VECDB_ENOTFOUND, "no vecdb database in %s",
		    db->path);
	if (mkdir(db->path, 0755) != 0 && errno != EEXIST)
		return vdb_err(VECDB_EIO, "cannot create data dir %s: %s",
		    db->path, strerror(errno));
	return VECDB_OK;
}

/* Release everything vecdb_open may have set up. */
static void
db_free(vecdb *db)
{
	if (db->env != NULL)
		mdb_env_close(db->env);
	if (db->lock_fd >= 0)
		close(db->lock_fd); /* drops the flock */
	vdb_free(db->path);
	vdb_free(db);
}

/* Check options a caller may have filled by hand. */
static int
options_check(const vecdb_options *o)
{
	if (o->durability != VECDB_SYNC && o->durability != VECDB_BUFFERED)
		return vdb_err(VECDB_EINVAL, "unknown durability %d",
		    (int) o->durability);
	if (o->map_size < (1 << 20))
		return vdb_err(VECDB_EINVAL, "map_size below 1 MiB");
	if (o->hnsw_m < VECDB_HNSW_M_MIN || o->hnsw_m > VECDB_HNSW_M_MAX ||
	    o->hnsw_ef < VECDB_HNSW_EF_MIN || o->hnsw_ef > VECDB_HNSW_EF_MAX)
		return vdb_err(VECDB_EINVAL, "hnsw_m or hnsw_ef out of range");
	if (o->wal_retain == 0)
		return vdb_err(VECDB_EINVAL, "wal_retain must be at least 1");
	if (o->checkpoint_interval_s == 0)
		return vdb_err(VECDB_EINVAL, "checkpoint_interval_s must be at "
		    "least 1");
	if (o->index_threads > VECDB_INDEX_THREADS_MAX)
		return vdb_err(VECDB_EINVAL, "index_threads above %d",
		    VECDB_INDEX_THREADS_MAX);
	return VECDB_OK;
}

int
vecdb_open(const char *path, const vecdb_options *opts, vecdb **out)
{
	vecdb *db;
	int rv;

	vdb_err_clear();
	if (path == NULL || *path == '\0')
		path = getenv("VECDB_DATA_DIR");
	if (path == NULL || *path == '\0')
		path = "./data";
	if ((db = vdb_calloc(1, sizeof(*db))) == NULL)
		return vdb_err(VECDB_ENOMEM, "out of memory");
	db->lock_fd = -1;
	if (opts != NULL) {
		db->opts = *opts;
	} else {
		vecdb_options_init(&db->opts);
		if ((rv = vecdb_options_from_env(&db->opts)) != VECDB_OK)
			goto fail;
	}
	if ((db->path = vdb_strdup(path)) == NULL) {
		rv = vdb_err(VECDB_ENOMEM, "out of memory");
		goto fail;
	}
	if ((rv = options_check(&db->opts)) != VECDB_OK ||
	    (rv = dir_prepare(db)) != VECDB_OK)
		goto fail;
	if (!db->opts.read_only && (rv = lock_acquire(db)) != VECDB_OK)
		goto fail;
	if ((rv = env_open(db)) != VECDB_OK || (rv = dbs_open(db)) != VECDB_OK)
		goto fail;
	if ((rv = storage_index_start(db)) != VECDB_OK)
		goto fail;
	if (!db->opts.read_only && (rv = storage_writer_start(db)) != VECDB_OK) {
		storage_index_stop(db);
		goto fail;
	}
	*out = db;
	return VECDB_OK;
fail:
	db_free(db);
	return rv;
}

void
vecdb_close(vecdb *db)
{
	if (db == NULL)
		return;
	if (db->writer != NULL)
		storage_writer_stop(db);
	storage_index_stop(db); /* applies what the writer committed */
	if (!db->opts.read_only)
		mdb_env_sync(db->env, 1);
	db_free(db);
}

/* Count collections and sum their points in one read txn. */
static int
stats_collect(vecdb *db, MDB_txn *txn, vecdb_stats *st)
{
	MDB_cursor *cur;
	MDB_val k, v;
	int rc, rv = VECDB_OK;

	if ((rc = mdb_cursor_open(txn, db->catalog, &cur)) != 0)
		return storage_mdb_err(rc, "open cursor");
	for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0;
	     rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
		struct coll_state cs;
		if (v.mv_size < 5) {
			rv = vdb_err(VECDB_ECORRUPT, "malformed catalog record");
			break;
		}
		st->collections++;
		rv = storage_state_get(db, txn, get_le32((uint8_t *) v.mv_data + 1),
		    &cs);
		if (rv != VECDB_OK)
			break;
		st->vectors += cs.count;
	}
	mdb_cursor_close(cur);
	return rv;
}

int
vecdb_stats_get(vecdb *db, vecdb_stats *out)
{
	vecdb_stats st;
	MDB_envinfo info;
	MDB_stat ms;
	MDB_txn *txn;
	int rv;

	vdb_err_clear();
	memset(&st, 0, sizeof(st));
	if ((rv = storage_read_begin(db, &txn)) != VECDB_OK)
		return rv;
	rv = stats_collect(db, txn, &st);
	if (rv == VECDB_OK)
		rv = storage_meta_get_u64(db, txn, "last_seq", &st.last_seq);
	if (rv == VECDB_ENOTFOUND)
		rv = VECDB_OK;
	if (rv == VECDB_OK && mdb_stat(txn, db->wal, &ms) == 0)
		st.wal_records = ms.ms_entries;
	mdb_txn_abort(txn);
	if (rv != VECDB_OK)
		return rv;
	mdb_env_info(db->env, &info);
	mdb_env_stat(db->env, &ms);
	st.disk_bytes = (uint64_t) (info.me_last_pgno + 1) * ms.ms_psize;
	st.memory_bytes = storage_index_memory(db);
	storage_index_build_stats(db, &st);
	*out = st;
	return VECDB_OK;
}
