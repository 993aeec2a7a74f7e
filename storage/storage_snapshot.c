/*
 * storage_snapshot.c: collection snapshots.
 *
 * A snapshot is one file, <data dir>/snapshots/<collection>/<name>.snapshot:
 *
 *   "VDBSNAP1" [version u32][namelen u16][name][reclen u16]
 *   [collection record][count u64] count x ([keylen u8][key]
 *   [veclen u32][vector bytes][paylen u32][payload])
 *   "VDBSNEND" [SHA-256 of everything before]
 *
 * Version 1, still read, has no [reclen]: its record is COLL_REC_SIZE
 * bytes (a collection without sparse vectors).
 *
 * The checksum travels inside the file, so a file that was downloaded and
 * uploaded again verifies on its own; <name>.json beside it holds the
 * metadata (and the same checksum) for listing without reading the file.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "sparse.h"
#include "storage_impl.h"

#define SNAP_MAGIC "VDBSNAP1"
#define SNAP_END "VDBSNEND"
#define SNAP_VERSION 2
#define SNAP_EXT ".snapshot"

/* ===== Paths and names ===== */

/* EINVAL unless a snapshot name is 1..128 chars of [A-Za-z0-9_-]. */
static int
snap_name_check(const char *name)
{
	size_t n = name ? strnlen(name, VECDB_SNAPSHOT_NAME_MAX + 1) : 0;

	if (n == 0 || n > VECDB_SNAPSHOT_NAME_MAX)
		return vdb_err(VECDB_EINVAL, "snapshot name must be 1..%d "
		    "characters", VECDB_SNAPSHOT_NAME_MAX);
	for (size_t i = 0; i < n; i++) {
		char c = name[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
			(c >= '0' && c <= '9') || c == '_' || c == '-'))
			return vdb_err(VECDB_EINVAL, "snapshot name '%s' has a "
			    "character outside [A-Za-z0-9_-]", name);
	}
	return VECDB_OK;
}

/* <data>/snapshots/<coll>[/<name><ext>] into buf. */
static int
snap_path(vecdb *db, const char *coll, const char *name, const char *ext,
    char *buf, size_t len)
{
	int n;

	if (name == NULL)
		n = snprintf(buf, len, "%s/snapshots/%s", db->path, coll);
	else
		n = snprintf(buf, len, "%s/snapshots/%s/%s%s", db->path, coll,
		    name, ext);
	if (n < 0 || (size_t) n >= len)
		return vdb_err(VECDB_EINVAL, "snapshot path too long");
	return VECDB_OK;
}

/* mkdir that tolerates an existing directory. */
static int
mkdir_p1(const char *path)
{
	if (mkdir(path, 0755) != 0 && errno != EEXIST)
		return vdb_err(VECDB_EIO, "cannot create %s: %s", path,
		    strerror(errno));
	return VECDB_OK;
}

/* fsync a directory so a rename in it is durable. */
static void
dir_sync(const char *dir)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	if (fd >= 0) {
		fsync(fd);
		close(fd);
	}
}

/* ===== Writing ===== */

/* A file being written while its SHA-256 is computed. */
struct hfile {
	FILE *f;
	EVP_MD_CTX *md;
	uint64_t size;
	int err;          /* a write failed */
};

/* Write and hash bytes; errors are sticky and checked at the end. */
static void
hwrite(struct hfile *h, const void *p, size_t n)
{
	if (h->err || n == 0)
		return;
	if (fwrite(p, 1, n, h->f) != n ||
	    EVP_DigestUpdate(h->md, p, n) != 1)
		h->err = 1;
	h->size += n;
}

static void
hwrite_le32(struct hfile *h, uint32_t v)
{
	uint8_t b[4];

	put_le32(b, v);
	hwrite(h, b, 4);
}

/* Header: magic, version, the collection's name and record, count. */
static void
snap_write_header(struct hfile *h, const struct coll *c, uint64_t count)
{
	uint8_t rec[COLL_REC_MAX], b[8];
	uint16_t nlen = (uint16_t) strlen(c->cfg.name), rlen;

	hwrite(h, SNAP_MAGIC, 8);
	hwrite_le32(h, SNAP_VERSION);
	hwrite(h, &nlen, 2);
	hwrite(h, c->cfg.name, nlen);
	rlen = (uint16_t) storage_coll_encode(c, rec);
	b[0] = (uint8_t) rlen;
	b[1] = (uint8_t) (rlen >> 8);
	hwrite(h, b, 2);
	hwrite(h, rec, rlen);
	put_le64(b, count);
	hwrite(h, b, 8);
}

/* Every point of the collection, in id order, from one read txn. */
static int
snap_write_points(vecdb *db, MDB_txn *txn, const struct coll *c,
    struct hfile *h, uint64_t *count)
{
	uint8_t pre[4];
	MDB_cursor *cur;
	MDB_val k, v;
	struct rpoint rp;
	int rc, rv = VECDB_OK;

	put_be32(pre, c->id);
	if ((rc = mdb_cursor_open(txn, db->points, &cur)) != 0)
		return storage_mdb_err(rc, "open cursor");
	k.mv_size = 4;
	k.mv_data = pre;
	*count = 0;
	for (rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
	     rc == 0 && memcmp(k.mv_data, pre, 4) == 0;
	     rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
		uint8_t klen = (uint8_t) (k.mv_size - 4);
		if ((rv = storage_point_decode(c, &v, &rp)) != VECDB_OK)
			break;
		hwrite(h, &klen, 1);
		hwrite(h, (uint8_t *) k.mv_data + 4, klen);
		hwrite_le32(h, (uint32_t) rp.vec_len);
		hwrite(h, rp.vec, rp.vec_len);
		hwrite_le32(h, (uint32_t) rp.payload_len);
		hwrite(h, rp.payload, rp.payload_len);
		(*count)++;
	}
	mdb_cursor_close(cur);
	if (rv == VECDB_OK && rc != 0 && rc != MDB_NOTFOUND)
		rv = storage_mdb_err(rc, "scan points");
	return rv;
}

/* Finish: trailer, flush, fsync, close. Fills the hex checksum. */
static int
snap_finish(struct hfile *h, char hex[65])
{
	unsigned char sum[32];
	unsigned int n = 0;

	if (EVP_DigestFinal_ex(h->md, sum, &n) != 1 || n != 32)
		h->err = 1;
	if (!h->err && (fwrite(SNAP_END, 1, 8, h->f) != 8 ||
			   fwrite(sum, 1, 32, h->f) != 32))
		h->err = 1;
	h->size += 40;
	if (fflush(h->f) != 0 || fsync(fileno(h->f)) != 0)
		h->err = 1;
	if (fclose(h->f) != 0)
		h->err = 1;
	h->f = NULL;
	for (int i = 0; i < 32; i++)
		snprintf(hex + 2 * i, 3, "%02x", sum[i]);
	return h->err ? vdb_err(VECDB_EIO, "writing the snapshot failed: %s",
			    strerror(errno)) : VECDB_OK;
}

/* ===== Metadata ===== */

/* Write <name>.json atomically (temp file, fsync, rename). */
static int
meta_write(const char *path, const vecdb_snapshot_info *si)
{
	char tmp[4300];
	json_t *o;
	int rv = VECDB_OK;

	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	o = json_pack("{s:s, s:s, s:I, s:I, s:I, s:s}", "name", si->name,
	    "collection", si->collection, "created_at",
	    (json_int_t) si->created_at, "size_bytes",
	    (json_int_t) si->size_bytes, "vector_count",
	    (json_int_t) si->vector_count, "checksum", si->checksum);
	if (o == NULL)
		return vdb_err(VECDB_ENOMEM, "out of memory");
	if (json_dump_file(o, tmp, JSON_INDENT(2)) != 0)
		rv = vdb_err(VECDB_EIO, "cannot write %s", tmp);
	json_decref(o);
	if (rv == VECDB_OK) {
		int fd = open(tmp, O_RDONLY | O_CLOEXEC);
		if (fd >= 0) {
			fsync(fd);
			close(fd);
		}
		if (rename(tmp, path) != 0)
			rv = vdb_err(VECDB_EIO, "cannot rename %s: %s", tmp,
			    strerror(errno));
	}
	return rv;
}

/* Read <name>.json into @p si. */
static int
meta_read(const char *path, vecdb_snapshot_info *si)
{
	json_error_t err;
	json_t *o = json_load_file(path, 0, &err);
	const char *name, *coll, *sum;
	json_int_t at, size, count;
	int ok;

	if (o == NULL)
		return errno == ENOENT ?
		    vdb_err(VECDB_ENOTFOUND, "snapshot not found") :
		    vdb_err(VECDB_ECORRUPT, "%s: %s", path, err.text);
	ok = json_unpack(o, "{s:s, s:s, s:I, s:I, s:I, s:s}", "name", &name,
		 "collection", &coll, "created_at", &at, "size_bytes", &size,
		 "vector_count", &count, "checksum", &sum) == 0 &&
	    strlen(name) <= VECDB_SNAPSHOT_NAME_MAX &&
	    strlen(coll) <= VECDB_NAME_MAX && strlen(sum) == 64;
	if (ok) {
		memset(si, 0, sizeof(*si));
		snprintf(si->name, sizeof(si->name), "%s", name);
		snprintf(si->collection, sizeof(si->collection), "%s", coll);
		snprintf(si->checksum, sizeof(si->checksum), "%s", sum);
		si->created_at = at;
		si->size_bytes = (uint64_t) size;
		si->vector_count = (uint64_t) count;
	}
	json_decref(o);
	return ok ? VECDB_OK :
		    vdb_err(VECDB_ECORRUPT, "%s: malformed metadata", path);
}

/* ===== Create ===== */

/* Pick a free name <coll>_<time>[-n] and open its temp file. */
static int
snap_name_pick(vecdb *db, const char *coll, int64_t now,
    vecdb_snapshot_info *si, char *path, size_t len)
{
	struct stat st;
	int rv;

	for (int i = 0; i < 1000; i++) {
		if (i == 0)
			snprintf(si->name, sizeof(si->name), "%s_%lld", coll,
			    (long long) now);
		else
			snprintf(si->name, sizeof(si->name), "%s_%lld-%d",
			    coll, (long long) now, i);
		if ((rv = snap_path(db, coll, si->name, SNAP_EXT, path,
			 len)) != VECDB_OK)
			return rv;
		if (stat(path, &st) != 0 && errno == ENOENT)
			return VECDB_OK;
	}
	return vdb_err(VECDB_EEXIST, "too many snapshots of '%s' in one "
	    "second", coll);
}

/* Write the snapshot file for collection c from txn into path. */
static int
snap_write(vecdb *db, MDB_txn *txn, const struct coll *c, const char *path,
    vecdb_snapshot_info *si)
{
	struct coll_state st;
	struct hfile h = { NULL, NULL, 0, 0 };
	char tmp[4300];
	uint64_t n = 0;
	int rv;

	if ((rv = storage_state_get(db, txn, c->id, &st)) != VECDB_OK)
		return rv;
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	if ((h.f = fopen(tmp, "wbe")) == NULL)
		return vdb_err(VECDB_EIO, "cannot create %s: %s", tmp,
		    strerror(errno));
	if ((h.md = EVP_MD_CTX_new()) == NULL ||
	    EVP_DigestInit_ex(h.md, EVP_sha256(), NULL) != 1)
		h.err = 1;
	snap_write_header(&h, c, st.count);
	rv = snap_write_points(db, txn, c, &h, &n);
	if (rv == VECDB_OK && n != st.count)
		rv = vdb_err(VECDB_ECORRUPT, "collection '%s' counts %llu "
		    "points but holds %llu", c->cfg.name,
		    (unsigned long long) st.count, (unsigned long long) n);
	if (rv == VECDB_OK)
		rv = snap_finish(&h, si->checksum);
	else
		fclose(h.f);
	EVP_MD_CTX_free(h.md);
	if (rv == VECDB_OK && rename(tmp, path) != 0)
		rv = vdb_err(VECDB_EIO, "cannot rename %s: %s", tmp,
		    strerror(errno));
	if (rv != VECDB_OK)
		unlink(tmp);
	si->size_bytes = h.size;
	si->vector_count = n;
	return rv;
}

/* Take @p name for the snapshot and open its path, EEXIST if taken. */
static int
snap_name_take(vecdb *db, const char *coll, const char *name,
    vecdb_snapshot_info *si, char *path, size_t len)
{
	struct stat st;
	int rv;

	if ((rv = snap_name_check(name)) != VECDB_OK ||
	    (rv = snap_path(db, coll, name, SNAP_EXT, path, len)) != VECDB_OK)
		return rv;
	if (stat(path, &st) == 0 || errno != ENOENT)
		return vdb_err(VECDB_EEXIST, "snapshot '%s' of '%s' exists",
		    name, coll);
	snprintf(si->name, sizeof(si->name), "%s", name);
	return VECDB_OK;
}

int
vecdb_snapshot_create(vecdb *db, const char *coll, vecdb_snapshot_info *out)
{
	return vecdb_snapshot_create_named(db, coll, NULL, out);
}

int
vecdb_snapshot_create_named(vecdb *db, const char *coll, const char *name,
    vecdb_snapshot_info *out)
{
	char dir[4096], path[4200], mpath[4200];
	vecdb_snapshot_info si;
	struct coll c;
	MDB_txn *txn;
	int rv;

	vdb_err_clear();
	memset(&si, 0, sizeof(si));
	if ((rv = storage_read_begin(db, &txn)) != VECDB_OK)
		return rv;
	if ((rv = storage_coll_find(db, txn, coll, &c)) != VECDB_OK)
		goto out;
	snprintf(dir, sizeof(dir), "%s/snapshots", db->path);
	if ((rv = mkdir_p1(dir)) != VECDB_OK ||
	    (rv = snap_path(db, coll, NULL, NULL, dir, sizeof(dir))) != VECDB_OK ||
	    (rv = mkdir_p1(dir)) != VECDB_OK)
		goto out;
	si.created_at = (int64_t) time(NULL);
	snprintf(si.collection, sizeof(si.collection), "%s", coll);
	if (name != NULL)
		rv = snap_name_take(db, coll, name, &si, path, sizeof(path));
	else
		rv = snap_name_pick(db, coll, si.created_at, &si, path,
		    sizeof(path));
	if (rv != VECDB_OK ||
	    (rv = snap_write(db, txn, &c, path, &si)) != VECDB_OK ||
	    (rv = snap_path(db, coll, si.name, ".json", mpath,
		 sizeof(mpath))) != VECDB_OK)
		goto out;
	if ((rv = meta_write(mpath, &si)) != VECDB_OK)
		unlink(path);
	dir_sync(dir);
out:
	mdb_txn_abort(txn);
	if (rv == VECDB_OK && out != NULL)
		*out = si;
	return rv;
}

/* ===== List, get, delete, path ===== */

/* Order snapshots oldest first, then by name. */
static int
info_cmp(const void *a, const void *b)
{
	const vecdb_snapshot_info *x = a, *y = b;

	if (x->created_at != y->created_at)
		return x->created_at < y->created_at ? -1 : 1;
	return strcmp(x->name, y->name);
}

/* Add the snapshot described by a .json dir entry to the list. */
static int
list_add(const char *dir, const char *fname, vecdb_snapshot_info **list,
    size_t *n, size_t *cap)
{
	char path[4400];
	size_t len = strlen(fname);

	if (len < 6 || strcmp(fname + len - 5, ".json") != 0)
		return VECDB_OK;
	if (*n == *cap) {
		size_t nc = *cap ? *cap * 2 : 8;
		vecdb_snapshot_info *nl = vdb_realloc(*list, nc * sizeof(*nl));
		if (nl == NULL)
			return vdb_err(VECDB_ENOMEM, "out of memory");
		*list = nl;
		*cap = nc;
	}
	snprintf(path, sizeof(path), "%s/%s", dir, fname);
	if (meta_read(path, &(*list)[*n]) == VECDB_OK)
		(*n)++; /* a damaged .json is skipped, not fatal to listing */
	return VECDB_OK;
}

int
vecdb_snapshot_list(vecdb *db, const char *coll, vecdb_snapshot_info **out,
    size_t *count)
{
	vecdb_snapshot_info *list = NULL;
	size_t n = 0, cap = 0;
	char dir[4096];
	struct dirent *de;
	DIR *d;
	int rv;

	vdb_err_clear();
	if ((rv = storage_name_check(coll)) != VECDB_OK ||
	    (rv = snap_path(db, coll, NULL, NULL, dir, sizeof(dir))) != VECDB_OK)
		return rv;
	if ((d = opendir(dir)) != NULL) {
		while (rv == VECDB_OK && (de = readdir(d)) != NULL)
			rv = list_add(dir, de->d_name, &list, &n, &cap);
		closedir(d);
	}
	if (rv != VECDB_OK) {
		vdb_free(list);
		return rv;
	}
	if (n > 1)
		qsort(list, n, sizeof(*list), info_cmp);
	*out = list;
	*count = n;
	return VECDB_OK;
}

int
vecdb_snapshot_get(vecdb *db, const char *coll, const char *name,
    vecdb_snapshot_info *out)
{
	char path[4200];
	int rv;

	vdb_err_clear();
	if ((rv = storage_name_check(coll)) != VECDB_OK ||
	    (rv = snap_name_check(name)) != VECDB_OK ||
	    (rv = snap_path(db, coll, name, ".json", path,
		 sizeof(path))) != VECDB_OK)
		return rv;
	rv = meta_read(path, out);
	if (rv == VECDB_ENOTFOUND)
		return vdb_err(rv, "snapshot '%s' of '%s' not found", name,
		    coll);
	return rv;
}

int
vecdb_snapshot_delete(vecdb *db, const char *coll, const char *name)
{
	char path[4200], mpath[4200];
	int rv, a, b;

	vdb_err_clear();
	if ((rv = storage_name_check(coll)) != VECDB_OK ||
	    (rv = snap_name_check(name)) != VECDB_OK ||
	    (rv = snap_path(db, coll, name, SNAP_EXT, path,
		 sizeof(path))) != VECDB_OK ||
	    (rv = snap_path(db, coll, name, ".json", mpath,
		 sizeof(mpath))) != VECDB_OK)
		return rv;
	a = unlink(path);
	b = unlink(mpath);
	if (a != 0 && b != 0)
		return vdb_err(VECDB_ENOTFOUND, "snapshot '%s' of '%s' not "
		    "found", name, coll);
	return VECDB_OK;
}

int
vecdb_snapshot_path(vecdb *db, const char *coll, const char *name, char *buf,
    size_t len)
{
	struct stat st;
	int rv;

	vdb_err_clear();
	if ((rv = storage_name_check(coll)) != VECDB_OK ||
	    (rv = snap_name_check(name)) != VECDB_OK ||
	    (rv = snap_path(db, coll, name, SNAP_EXT, buf, len)) != VECDB_OK)
		return rv;
	if (stat(buf, &st) != 0)
		return vdb_err(VECDB_ENOTFOUND, "snapshot '%s' of '%s' not "
		    "found", name, coll);
	return VECDB_OK;
}

/* ===== Restore (writer thread) ===== */

/* A snapshot file being read while its SHA-256 is computed. */
struct hreader {
	FILE *f;
	EVP_MD_CTX *md;
	const char *path;
};

/* Read exactly n bytes (hashed); ECORRUPT on a short file. */
static int
hread(struct hreader *r, void *p, size_t n)
{
	if (n == 0)
		return VECDB_OK;
	if (fread(p, 1, n, r->f) != n)
		return vdb_err(VECDB_ECORRUPT, "snapshot %s is truncated",
		    r->path);
	if (EVP_DigestUpdate(r->md, p, n) != 1)
		return vdb_err(VECDB_ENOMEM, "hashing failed");
	return VECDB_OK;
}

static int
hread_le32(struct hreader *r, uint32_t *v)
{
	uint8_t b[4];
	int rv = hread(r, b, 4);

	*v = get_le32(b);
	return rv;
}

/* Header: the stored config becomes collection @p name's config. */
static int
restore_header(struct hreader *r, const char *name, struct coll *c,
    uint64_t *count)
{
	uint8_t magic[8], rec[COLL_REC_MAX], b[8];
	char oldname[VECDB_NAME_MAX + 1];
	uint32_t ver;
	uint16_t nlen;
	size_t rlen = COLL_REC_SIZE;
	int rv;

	if ((rv = hread(r, magic, 8)) != VECDB_OK)
		return rv;
	if (memcmp(magic, SNAP_MAGIC, 8) != 0)
		return vdb_err(VECDB_ECORRUPT, "%s is not a vecdb snapshot",
		    r->path);
	if ((rv = hread_le32(r, &ver)) != VECDB_OK ||
	    (rv = hread(r, &nlen, 2)) != VECDB_OK)
		return rv;
	if ((ver != 1 && ver != SNAP_VERSION) || nlen == 0 ||
	    nlen > VECDB_NAME_MAX)
		return vdb_err(VECDB_ECORRUPT, "snapshot %s: unsupported "
		    "version %u or bad header", r->path, ver);
	if ((rv = hread(r, oldname, nlen)) != VECDB_OK)
		return rv;
	if (ver >= 2) {
		if ((rv = hread(r, b, 2)) != VECDB_OK)
			return rv;
		rlen = (size_t) b[0] | (size_t) b[1] << 8;
		if (rlen < COLL_REC_SIZE || rlen > COLL_REC_MAX)
			return vdb_err(VECDB_ECORRUPT, "snapshot %s: bad "
			    "collection config", r->path);
	}
	if ((rv = hread(r, rec, rlen)) != VECDB_OK ||
	    (rv = hread(r, b, 8)) != VECDB_OK)
		return rv;
	if (storage_coll_decode(name, rec, rlen, c) != VECDB_OK)
		return vdb_err(VECDB_ECORRUPT, "snapshot %s: bad collection "
		    "config", r->path);
	*count = get_le64(b);
	return VECDB_OK;
}

/* Scratch space for one restored point. */
struct rpt {
	uint8_t key[STORAGE_KEY_MAX];
	uint8_t *vec;            /* the vector bytes, vec_cap of room */
	size_t vec_cap;
	float *fvec;
	char *pay;
	struct wsparse sp[VECDB_SPARSE_MAX]; /* its sparse vectors */
	struct wdense dn[VECDB_VECTORS_MAX]; /* its named dense vectors */
	float *dv[VECDB_VECTORS_MAX];        /* their floats */
};

/* The most vector bytes a point of c may have. */
static size_t
vec_bytes_max(const struct coll *c)
{
	size_t n = (size_t) c->cfg.dimension *
	    vec_elem_size(c->cfg.vector_type);

	if (c->cfg.n_sparse + c->cfg.n_vectors == 0)
		return n;
	n += 5 + c->cfg.n_sparse * (5 + 8 * (size_t) SPARSE_NNZ_MAX);
	for (uint32_t i = 0; i < c->cfg.n_vectors; i++)
		n += 1 + (size_t) c->cfg.vectors[i].dimension *
		    vec_elem_size(c->cfg.vectors[i].vector_type);
	return n;
}

static void
rpt_sparse_free(struct rpt *s)
{
	for (size_t i = 0; i < VECDB_SPARSE_MAX; i++) {
		vdb_free(s->sp[i].idx);
		vdb_free(s->sp[i].val);
		s->sp[i].idx = NULL;
		s->sp[i].val = NULL;
	}
	for (size_t i = 0; i < VECDB_VECTORS_MAX; i++) {
		vdb_free(s->dv[i]);
		s->dv[i] = NULL;
	}
}

/* The point's named vectors from its vector bytes (n of them). */
static int
restore_sparse(const struct coll *c, struct rpt *s, size_t n,
    struct wpoint *p)
{
	struct xset xs;
	int rv;

	if ((rv = storage_xset_parse(c, s->vec, n, &xs)) != VECDB_OK)
		return rv;
	rpt_sparse_free(s);
	for (size_t i = 0; i < xs.n; i++) {
		struct wsparse *w = &s->sp[i];
		size_t m = xs.v[i].n ? xs.v[i].n : 1;

		w->name = c->cfg.sparse[xs.v[i].slot].name;
		w->n = xs.v[i].n;
		w->remove = 0;
		if ((w->idx = vdb_malloc(m * sizeof(uint32_t))) == NULL ||
		    (w->val = vdb_malloc(m * sizeof(float))) == NULL)
			return vdb_err(VECDB_ENOMEM, "out of memory");
		storage_xvec_read(&xs.v[i], w->idx, w->val);
	}
	p->sparse = xs.n ? s->sp : NULL;
	p->n_sparse = xs.n;
	for (size_t i = 0; i < xs.nd; i++) {
		const vecdb_vector_config *v = &c->cfg.vectors[xs.d[i].slot];

		if ((s->dv[i] = vdb_malloc(v->dimension * sizeof(float))) ==
		    NULL)
			return vdb_err(VECDB_ENOMEM, "out of memory");
		vec_decode(xs.d[i].data, v->dimension, v->vector_type,
		    s->dv[i]);
		s->dn[i] = (struct wdense) { v->name, s->dv[i], v->dimension,
		    0 };
	}
	p->dense = xs.nd ? s->dn : NULL;
	p->n_dense = xs.nd;
	return VECDB_OK;
}

/* Read one point record and check it fits collection c. */
static int
restore_point(struct hreader *r, const struct coll *c, struct rpt *s,
    struct wpoint *p)
{
	size_t vlen = (size_t) c->cfg.dimension *
	    vec_elem_size(c->cfg.vector_type);
	uint32_t n;
	uint8_t klen;
	int rv;

	if ((rv = hread(r, &klen, 1)) != VECDB_OK)
		return rv;
	if (klen > STORAGE_KEY_MAX || (rv = hread(r, s->key, klen)) != VECDB_OK ||
	    (rv = vdb_key_id(s->key, klen, &p->id)) != VECDB_OK ||
	    (rv = hread_le32(r, &n)) != VECDB_OK || n < vlen ||
	    n > vec_bytes_max(c))
		return rv ? rv : vdb_err(VECDB_ECORRUPT, "snapshot %s: "
		    "malformed point record", r->path);
	if (n > s->vec_cap) {
		uint8_t *b = vdb_realloc(s->vec, n);

		if (b == NULL)
			return vdb_err(VECDB_ENOMEM, "out of memory");
		s->vec = b;
		s->vec_cap = n;
	}
	if ((rv = hread(r, s->vec, n)) != VECDB_OK ||
	    (rv = restore_sparse(c, s, n, p)) != VECDB_OK ||
	    (rv = hread_le32(r, &n)) != VECDB_OK || n > VECDB_PAYLOAD_MAX)
		return rv ? rv : vdb_err(VECDB_ECORRUPT, "snapshot %s: "
		    "malformed point record", r->path);
	vdb_free(s->pay);
	if ((s->pay = vdb_malloc(n + 1)) == NULL)
		return vdb_err(VECDB_ENOMEM, "out of memory");
	if ((rv = hread(r, s->pay, n)) != VECDB_OK)
		return rv;
	vec_decode(s->vec, c->cfg.dimension, c->cfg.vector_type, s->fvec);
	/* none in a collection without a default vector */
	p->vector = c->cfg.dimension > 0 ? s->fvec : NULL;
	p->dim = c->cfg.dimension;
	p->payload = n ? s->pay : NULL;
	p->payload_len = n;
	return vec_validate(s->fvec, p->dim, c->cfg.vector_type);
}

/* Read the trailer and compare the checksum with what was read. */
static int
restore_trailer(struct hreader *r, uint8_t sum[32])
{
	uint8_t end[8], want[32];
	unsigned int n = 0;

	if (EVP_DigestFinal_ex(r->md, sum, &n) != 1 || n != 32)
		return vdb_err(VECDB_ENOMEM, "hashing failed");
	if (fread(end, 1, 8, r->f) != 8 || memcmp(end, SNAP_END, 8) != 0 ||
	    fread(want, 1, 32, r->f) != 32 || fgetc(r->f) != EOF)
		return vdb_err(VECDB_ECORRUPT, "snapshot %s: bad trailer",
		    r->path);
	if (memcmp(sum, want, 32) != 0)
		return vdb_err(VECDB_ECORRUPT, "snapshot %s: checksum "
		    "mismatch; the file is corrupted", r->path);
	return VECDB_OK;
}

/* Replace the collection of the snapshot's header with its points. */
static int
restore_points(struct wctx *w, struct hreader *r, const struct coll *cfg,
    uint64_t count, struct coll *c)
{
	struct coll old;
	struct pindex_set ix = { 0 };
	struct coll_state st;
	struct rpt s;
	struct wpoint p;
	int rv;

	/* The payload indexes of the collection being replaced carry over
	 * and are rebuilt as the points go in. */
	rv = storage_coll_find(w->db, w->txn, cfg->cfg.name, &old);
	if (rv == VECDB_OK &&
	    (rv = storage_pindex_load(w->db, w->txn, old.id, &ix)) == VECDB_OK)
		rv = storage_coll_drop_txn(w->db, w->txn, &old);
	if (rv == VECDB_ENOTFOUND)
		rv = VECDB_OK;
	if (rv != VECDB_OK ||
	    (rv = storage_coll_create_txn(w->db, w->txn, &cfg->cfg, w->seq + 1,
		 c)) != VECDB_OK ||
	    (rv = storage_pindex_copy_defs(w->db, w->txn, c->id, &ix)) != VECDB_OK ||
	    (rv = storage_state_get(w->db, w->txn, c->id, &st)) != VECDB_OK)
		return rv;
	memset(&s, 0, sizeof(s));
	s.vec_cap = (size_t) c->cfg.dimension * 4 + 1;
	s.vec = vdb_malloc(s.vec_cap);
	s.fvec = vdb_malloc((size_t) c->cfg.dimension * sizeof(float) + 1);
	if (s.vec == NULL || s.fvec == NULL)
		rv = vdb_err(VECDB_ENOMEM, "out of memory");
	for (uint64_t i = 0; rv == VECDB_OK && i < count; i++) {
		memset(&p, 0, sizeof(p));
		/* the WAL gets a marker (RESTORE), not the points */
		if ((rv = restore_point(r, c, &s, &p)) == VECDB_OK)
			rv = storage_point_put_txn(w->db, w->txn, c, &st,
			    VECDB_WRITE_UPSERT, &p, w->seq + 1, NULL, &ix);
	}
	if (rv == VECDB_OK)
		rv = storage_state_put(w->db, w->txn, c->id, &st);
	vdb_free(s.vec);
	vdb_free(s.fvec);
	vdb_free(s.pay);
	rpt_sparse_free(&s);
	return rv;
}

int
storage_apply_restore(struct wctx *w, struct wreq *r)
{
	struct wreq_restore *q = &r->u.restore;
	struct hreader hr = { NULL, NULL, q->path };
	struct coll cfg, c;
	uint64_t count = 0;
	int rv;

	if ((hr.f = fopen(q->path, "rbe")) == NULL)
		return vdb_err(errno == ENOENT ? VECDB_ENOTFOUND : VECDB_EIO,
		    "cannot open snapshot %s: %s", q->path, strerror(errno));
	if ((hr.md = EVP_MD_CTX_new()) == NULL ||
	    EVP_DigestInit_ex(hr.md, EVP_sha256(), NULL) != 1) {
		rv = vdb_err(VECDB_ENOMEM, "out of memory");
		goto out;
	}
	/* The caller verified the checksum; this pass hashes again in case
	 * the file changed since. Any failure below aborts this request's
	 * nested txn, so the live collection is untouched unless the whole
	 * file checks out. */
	if ((rv = restore_header(&hr, q->coll, &cfg, &count)) == VECDB_OK &&
	    (rv = restore_points(w, &hr, &cfg, count, &c)) == VECDB_OK &&
	    (rv = restore_trailer(&hr, q->sum)) == VECDB_OK)
		q->coll_id = c.id;
out:
	EVP_MD_CTX_free(hr.md);
	fclose(hr.f);
	return rv;
}

/* Hash the first @p n bytes of f into sum. */
static int
hash_prefix(FILE *f, uint64_t n, uint8_t sum[32])
{
	static const size_t chunk = 1 << 16;
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	uint8_t *buf = vdb_malloc(chunk);
	unsigned int len = 0;
	int rv = VECDB_OK;

	if (md == NULL || buf == NULL ||
	    EVP_DigestInit_ex(md, EVP_sha256(), NULL) != 1)
		rv = vdb_err(VECDB_ENOMEM, "out of memory");
	while (rv == VECDB_OK && n > 0) {
		size_t want = n < chunk ? (size_t) n : chunk;
		if (fread(buf, 1, want, f) != want)
			rv = vdb_err(VECDB_EIO, "read error");
		else if (EVP_DigestUpdate(md, buf, want) != 1)
			rv = vdb_err(VECDB_ENOMEM, "hashing failed");
		n -= want;
	}
	if (rv == VECDB_OK && (EVP_DigestFinal_ex(md, sum, &len) != 1 ||
				  len != 32))
		rv = vdb_err(VECDB_ENOMEM, "hashing failed");
	EVP_MD_CTX_free(md);
	vdb_free(buf);
	return rv;
}

/*
 * Check a snapshot file's checksum before anything reads its structure, so
 * any corruption, even of a length field, is reported as what it is.
 */
static int
snap_verify(const char *path)
{
	uint8_t sum[32], trailer[40];
	struct stat st;
	FILE *f;
	int rv;

	if ((f = fopen(path, "rbe")) == NULL)
		return vdb_err(errno == ENOENT ? VECDB_ENOTFOUND : VECDB_EIO,
		    "cannot open snapshot %s: %s", path, strerror(errno));
	if (fstat(fileno(f), &st) != 0 || st.st_size < 40 + 8 + 4 + 2) {
		fclose(f);
		return vdb_err(VECDB_ECORRUPT, "snapshot %s is too short to "
		    "be a vecdb snapshot", path);
	}
	rv = hash_prefix(f, (uint64_t) st.st_size - 40, sum);
	if (rv == VECDB_OK && (fread(trailer, 1, 40, f) != 40 ||
				  memcmp(trailer, SNAP_END, 8) != 0))
		rv = vdb_err(VECDB_ECORRUPT, "snapshot %s has no valid "
		    "trailer (truncated or not a vecdb snapshot)", path);
	if (rv == VECDB_OK && memcmp(trailer + 8, sum, 32) != 0)
		rv = vdb_err(VECDB_ECORRUPT, "snapshot %s: checksum "
		    "mismatch; the file is corrupted", path);
	fclose(f);
	return rv;
}

int
vecdb_snapshot_restore_file(vecdb *db, const char *coll, const char *path)
{
	struct wreq r;
	int rv;

	vdb_err_clear();
	if (db->writer == NULL)
		return vdb_err(VECDB_EREADONLY, "database is open read-only");
	if ((rv = storage_name_check(coll)) != VECDB_OK ||
	    (rv = snap_verify(path)) != VECDB_OK)
		return rv;
	memset(&r, 0, sizeof(r));
	r.op = WREQ_RESTORE;
	r.u.restore.coll = coll;
	r.u.restore.path = path;
	return storage_writer_submit(db, &r);
}

int
vecdb_snapshot_restore(vecdb *db, const char *coll, const char *name)
{
	char path[4200];
	int rv;

	vdb_err_clear();
	if ((rv = vecdb_snapshot_path(db, coll, name, path,
		 sizeof(path))) != VECDB_OK)
		return rv;
	return vecdb_snapshot_restore_file(db, coll, path);
}
