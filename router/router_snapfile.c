/*
 * router_snapfile.c: one file for a cluster snapshot (router_impl.h says its
 * layout). Users back up through the router: GET .../download assembles
 * the file from every shard's snapshot of that name (SNAPSHOT_READ, in
 * pieces), and an upload of such a file restores every shard
 * (SNAPSHOT_UPLOAD, in pieces; the last restores). A router of one shard
 * also takes a single-node snapshot file: it is that shard's part.
 */
#define _GNU_SOURCE /* mkostemp */
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <uuid/uuid.h>

#include "proto.h"
#include "router_impl.h"
#include "vdb.h"

#define TRAILER (8 + sizeof(ROUTER_SNAPFILE_MAGIC) - 1)
#define MANIFEST_MAX (1u << 20)

/* A temp file that is already unlinked: gone when its fd is closed. */
static int
tmp_file(int *fd)
{
	const char *dir = getenv("TMPDIR");
	char path[512];

	snprintf(path, sizeof(path), "%s/vecdb-snapfile-XXXXXX",
	    dir && *dir ? dir : "/tmp");
	if ((*fd = mkostemp(path, O_CLOEXEC)) < 0)
		return vdb_err(VECDB_EIO, "cannot create a temp file in %s: %s",
		    dir && *dir ? dir : "/tmp", strerror(errno));
	unlink(path);
	return VECDB_OK;
}

static int
write_all(int fd, const void *p, size_t n)
{
	const uint8_t *b = p;

	while (n > 0) {
		ssize_t k = write(fd, b, n);
		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0)
			return vdb_err(errno == ENOSPC ? VECDB_EFULL : VECDB_EIO,
			    "cannot write the snapshot file: %s",
			    strerror(errno));
		b += k;
		n -= (size_t) k;
	}
	return VECDB_OK;
}

static int
pread_all(int fd, void *p, size_t n, uint64_t off)
{
	uint8_t *b = p;

	while (n > 0) {
		ssize_t k = pread(fd, b, n, (off_t) off);
		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0)
			return vdb_err(VECDB_EINVAL, "the snapshot file is "
			    "truncated");
		b += k;
		n -= (size_t) k;
		off += (uint64_t) k;
	}
	return VECDB_OK;
}

static void
hex(const unsigned char *d, unsigned n, char *out)
{
	for (unsigned i = 0; i < n; i++)
		snprintf(out + 2 * i, 3, "%02x", d[i]);
}

/* Append shard s's snapshot file to fd; its size and SHA-256 (hex). */
static int
part_fetch(router *r, router_topology *t, size_t s, const char *coll,
    const char *name, int fd, uint64_t *size, char sha[65])
{
	struct proto_snapshot_read q;
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	unsigned char d[EVP_MAX_MD_SIZE];
	uint64_t total = UINT64_MAX, off = 0;
	unsigned dl = 0;
	int rv = md != NULL && EVP_DigestInit_ex(md, EVP_sha256(), NULL) == 1 ?
	    VECDB_OK : vdb_err(VECDB_ENOMEM, "SHA-256 failed");

	memset(&q, 0, sizeof(q));
	snprintf(q.collection, sizeof(q.collection), "%s", coll);
	snprintf(q.name, sizeof(q.name), "%s", name);
	q.max_bytes = ROUTER_SNAPFILE_PIECE;
	while (rv == VECDB_OK && off < total) {
		struct proto_response *resp = NULL;
		uint8_t *body = NULL, *data = NULL;
		size_t blen = 0, n = 0;
		q.offset = off;
		if ((rv = proto_snapshot_read_encode(&q, &body, &blen)) ==
		    VECDB_OK && (rv = router_shard_call(r, t, s,
		    PROTO_SNAPSHOT_READ, body, blen, &resp)) == VECDB_OK &&
		    (rv = proto_snapshot_data_decode(resp->body,
		    resp->body_len, &data, &n, &total)) == VECDB_OK) {
			if (n == 0 && off < total)
				rv = vdb_err(VECDB_EIO, "shard %zu: snapshot "
				    "'%s' ended at %llu of %llu bytes", s, name,
				    (unsigned long long) off,
				    (unsigned long long) total);
			else if ((rv = write_all(fd, data, n)) == VECDB_OK &&
			    EVP_DigestUpdate(md, data, n) != 1)
				rv = vdb_err(VECDB_ENOMEM, "SHA-256 failed");
			off += n;
		}
		vdb_free(body);
		vdb_free(data);
		proto_response_free(resp);
	}
	if (rv == VECDB_OK && (EVP_DigestFinal_ex(md, d, &dl) != 1 || dl != 32))
		rv = vdb_err(VECDB_ENOMEM, "SHA-256 failed");
	EVP_MD_CTX_free(md);
	if (rv == VECDB_OK) {
		hex(d, 32, sha);
		*size = off;
	}
	return rv;
}

int
router_snapshot_open(void *ctx, const char *coll, const char *name, int *fd)
{
	router *r = ctx;
	uint32_t timeout_ms;
	const char *key;
	router_topology *t = router_topology_acquire(r, &timeout_ms, &key);
	json_t *man = json_pack("{s:s, s:i, s:s, s:s, s:[]}", "format",
	    "vecdb-cluster-snapshot", "version", 1, "collection", coll, "name",
	    name, "shards");
	uint8_t trailer[TRAILER];
	char *text = NULL;
	size_t len;
	int f = -1, rv;

	if (man == NULL) {
		router_topology_release(r, t);
		return vdb_err(VECDB_ENOMEM, "out of memory");
	}
	rv = tmp_file(&f);
	for (size_t s = 0; s < t->n && rv == VECDB_OK; s++) {
		uint64_t size = 0;
		char sha[65];
		if ((rv = part_fetch(r, t, s, coll, name, f, &size, sha)) ==
		    VECDB_OK && json_array_append_new(json_object_get(man,
		    "shards"), json_pack("{s:I, s:I, s:s}", "id",
		    (json_int_t) t->shards[s].id, "size", (json_int_t) size,
		    "sha256", sha)) != 0)
			rv = vdb_err(VECDB_ENOMEM, "out of memory");
	}
	router_topology_release(r, t);
	if (rv == VECDB_OK && (text = json_dumps(man, JSON_COMPACT)) == NULL)
		rv = vdb_err(VECDB_ENOMEM, "out of memory");
	if (rv == VECDB_OK) {
		len = strlen(text);
		for (int i = 0; i < 8; i++)
			trailer[i] = (uint8_t) ((uint64_t) len >> (8 * i));
		memcpy(trailer + 8, ROUTER_SNAPFILE_MAGIC, TRAILER - 8);
		if ((rv = write_all(f, text, len)) == VECDB_OK &&
		    (rv = write_all(f, trailer, TRAILER)) == VECDB_OK &&
		    lseek(f, 0, SEEK_SET) != 0)
			rv = vdb_err(VECDB_EIO, "cannot rewind the snapshot "
			    "file: %s", strerror(errno));
	}
	free(text);
	json_decref(man);
	if (rv != VECDB_OK) {
		if (f >= 0)
			close(f);
		return rv;
	}
	*fd = f;
	return VECDB_OK;
}

/* One part of a file: where and how long, and its checksum. */
struct part {
	uint64_t off, size;
	char sha[65];
};

/* Read the manifest of a cluster file of size bytes into parts[n]
 * (n: the topology's shards). 1 when the file is no cluster file. */
static int
manifest_read(int fd, uint64_t size, size_t n, struct part *parts)
{
	uint8_t trailer[TRAILER];
	uint64_t mlen = 0, off = 0;
	json_error_t je;
	json_t *man, *shards, *p;
	char *text;
	size_t i;
	int rv;

	if (size < TRAILER || pread_all(fd, trailer, TRAILER, size - TRAILER)
	    != VECDB_OK || memcmp(trailer + 8, ROUTER_SNAPFILE_MAGIC,
	    TRAILER - 8) != 0)
		return 1;
	for (int k = 0; k < 8; k++)
		mlen |= (uint64_t) trailer[k] << (8 * k);
	if (mlen == 0 || mlen > MANIFEST_MAX || mlen > size - TRAILER)
		return vdb_err(VECDB_EINVAL, "the cluster snapshot file is "
		    "corrupted: bad manifest length");
	if ((text = vdb_malloc(mlen)) == NULL)
		return vdb_err(VECDB_ENOMEM, "out of memory");
	if ((rv = pread_all(fd, text, mlen, size - TRAILER - mlen)) !=
	    VECDB_OK) {
		vdb_free(text);
		return rv;
	}
	man = json_loadb(text, mlen, 0, &je);
	vdb_free(text);
	shards = json_object_get(man, "shards");
	if (!json_is_array(shards)) {
		json_decref(man);
		return vdb_err(VECDB_EINVAL, "the cluster snapshot file is "
		    "corrupted: its manifest is unreadable");
	}
	if (json_array_size(shards) != n) {
		rv = vdb_err(VECDB_EINVAL, "the cluster snapshot file holds "
		    "%zu shards; this cluster has %zu", json_array_size(shards),
		    n);
		json_decref(man);
		return rv;
	}
	rv = VECDB_OK;
	json_array_foreach(shards, i, p) {
		json_t *id = json_object_get(p, "id");
		json_t *sz = json_object_get(p, "size");
		const char *sha = json_string_value(json_object_get(p,
		    "sha256"));
		if (!json_is_integer(id) || json_integer_value(id) != (json_int_t)
		    i || !json_is_integer(sz) || json_integer_value(sz) < 0 ||
		    sha == NULL || strlen(sha) != 64) {
			rv = vdb_err(VECDB_EINVAL, "the cluster snapshot file "
			    "is corrupted: part %zu of its manifest", i);
			break;
		}
		parts[i].off = off;
		parts[i].size = (uint64_t) json_integer_value(sz);
		memcpy(parts[i].sha, sha, 65);
		off += parts[i].size;
	}
	json_decref(man);
	if (rv == VECDB_OK && off != size - TRAILER - mlen)
		rv = vdb_err(VECDB_EINVAL, "the cluster snapshot file is "
		    "corrupted: its parts do not add up to its size");
	return rv;
}

/* Does the part match its checksum? */
static int
part_check(int fd, const struct part *p, size_t i, uint8_t *buf)
{
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	unsigned char d[EVP_MAX_MD_SIZE];
	unsigned dl = 0;
	char sha[65];
	int rv = md != NULL && EVP_DigestInit_ex(md, EVP_sha256(), NULL) == 1 ?
	    VECDB_OK : vdb_err(VECDB_ENOMEM, "SHA-256 failed");

	for (uint64_t off = 0; rv == VECDB_OK && off < p->size;) {
		size_t n = p->size - off < ROUTER_SNAPFILE_PIECE ?
		    (size_t) (p->size - off) : ROUTER_SNAPFILE_PIECE;
		if ((rv = pread_all(fd, buf, n, p->off + off)) == VECDB_OK &&
		    EVP_DigestUpdate(md, buf, n) != 1)
			rv = vdb_err(VECDB_ENOMEM, "SHA-256 failed");
		off += n;
	}
	if (rv == VECDB_OK && (EVP_DigestFinal_ex(md, d, &dl) != 1 || dl != 32))
		rv = vdb_err(VECDB_ENOMEM, "SHA-256 failed");
	EVP_MD_CTX_free(md);
	if (rv != VECDB_OK)
		return rv;
	hex(d, 32, sha);
	if (strcmp(sha, p->sha) != 0)
		return vdb_err(VECDB_EINVAL, "the cluster snapshot file is "
		    "corrupted: shard %zu's part does not match its checksum "
		    "(nothing was restored)", i);
	return VECDB_OK;
}

/* Send part p to shard s in pieces; the last one restores it there. */
static int
part_send(router *r, router_topology *t, size_t s, const char *coll,
    int fd, const struct part *p, uint8_t *buf)
{
	struct proto_snapshot_upload u;
	uuid_t id;
	int rv = VECDB_OK;

	memset(&u, 0, sizeof(u));
	snprintf(u.collection, sizeof(u.collection), "%s", coll);
	uuid_generate_random(id);
	memcpy(&u.upload, id, sizeof(u.upload));
	u.upload |= 1;   /* never 0 */
	for (uint64_t off = 0; rv == VECDB_OK;) {
		struct proto_response *resp = NULL;
		uint8_t *body = NULL;
		size_t blen = 0;
		u.n = p->size - off < ROUTER_SNAPFILE_PIECE ?
		    (size_t) (p->size - off) : ROUTER_SNAPFILE_PIECE;
		u.offset = off;
		u.last = off + u.n == p->size;
		u.data = buf;
		if ((rv = pread_all(fd, buf, u.n, p->off + off)) == VECDB_OK &&
		    (rv = proto_snapshot_upload_encode(&u, &body, &blen)) ==
		    VECDB_OK)
			rv = router_shard_call(r, t, s, PROTO_SNAPSHOT_UPLOAD,
			    body, blen, &resp);
		vdb_free(body);
		proto_response_free(resp);
		off += u.n;
		if (u.last)
			break;
	}
	return rv;
}

int
router_snapshot_restore_file(void *ctx, const char *coll, const char *path)
{
	router *r = ctx;
	uint32_t timeout_ms;
	const char *key;
	router_topology *t;
	struct part *parts;
	struct stat st;
	uint8_t *buf;
	int fd, rv;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
		return vdb_err(VECDB_EIO, "cannot read %s: %s", path,
		    strerror(errno));
	t = router_topology_acquire(r, &timeout_ms, &key);
	parts = vdb_calloc(t->n, sizeof(*parts));
	buf = vdb_malloc(ROUTER_SNAPFILE_PIECE);
	if (parts == NULL || buf == NULL)
		rv = vdb_err(VECDB_ENOMEM, "out of memory");
	else if (fstat(fd, &st) != 0)
		rv = vdb_err(VECDB_EIO, "cannot read %s: %s", path,
		    strerror(errno));
	else if ((rv = manifest_read(fd, (uint64_t) st.st_size, t->n,
	    parts)) == 1) {
		/* a single-node file: the whole of a one-shard cluster */
		if (t->n != 1)
			rv = vdb_err(VECDB_EINVAL, "this is a single-node "
			    "snapshot file, not a cluster one: it holds the "
			    "points of every shard, and this cluster has %zu "
			    "shards (restore it on a vecdb serve or a "
			    "one-shard cluster)", t->n);
		else {
			parts[0].off = 0;
			parts[0].size = (uint64_t) st.st_size;
			rv = part_send(r, t, 0, coll, fd, &parts[0], buf);
		}
	} else if (rv == VECDB_OK) {
		/* every part checked before any shard changes */
		for (size_t i = 0; i < t->n && rv == VECDB_OK; i++)
			rv = part_check(fd, &parts[i], i, buf);
		for (size_t i = 0; i < t->n && rv == VECDB_OK; i++)
			rv = part_send(r, t, i, coll, fd, &parts[i], buf);
	}
	router_topology_release(r, t);
	vdb_free(parts);
	vdb_free(buf);
	close(fd);
	return rv;
}
