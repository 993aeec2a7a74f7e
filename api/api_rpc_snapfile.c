/*
 * api_rpc_snapfile.c: snapshot files over the RPC. SNAPSHOT_READ hands out a
 * piece of a snapshot file; SNAPSHOT_UPLOAD takes one in pieces, in
 * order, into a temp file, and the last piece restores the collection
 * from it. A router builds its one-file cluster snapshot from the first
 * and restores one with the second (router_snapfile.c).
 *
 * Uploads in progress are a small table: at most API_RPC_UPLOADS_MAX at
 * once; one idle for API_RPC_UPLOAD_IDLE_MS is dropped (its sender is gone)
 * when a slot is wanted, and every temp file goes when the server stops.
 */
#define _GNU_SOURCE /* mkostemp */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "api_rpc.h"
#include "vdb.h"

#define API_RPC_UPLOADS_MAX 16
#define API_RPC_UPLOAD_IDLE_MS 120000

struct upload {
	uint64_t id;              /* 0: a free slot */
	char collection[VECDB_NAME_MAX + 1];
	int fd;
	char path[256];
	uint64_t size;            /* bytes received */
	uint64_t touched_ms;
	int busy;                 /* a piece is being written */
};

struct api_rpc_uploads {
	pthread_mutex_t lock;
	struct upload u[API_RPC_UPLOADS_MAX];
};

int
api_rpc_uploads_new(struct api_rpc_uploads **out)
{
	struct api_rpc_uploads *u = vdb_calloc(1, sizeof(*u));

	if (u == NULL)
		return vdb_err(VECDB_ENOMEM, "out of memory");
	pthread_mutex_init(&u->lock, NULL);
	*out = u;
	return VECDB_OK;
}

static void
slot_drop(struct upload *s)
{
	if (s->fd >= 0)
		close(s->fd);
	unlink(s->path);
	memset(s, 0, sizeof(*s));
	s->fd = -1;
}

void
api_rpc_uploads_free(struct api_rpc_uploads *u)
{
	if (u == NULL)
		return;
	for (int i = 0; i < API_RPC_UPLOADS_MAX; i++)
		if (u->u[i].id != 0)
			slot_drop(&u->u[i]);
	pthread_mutex_destroy(&u->lock);
	vdb_free(u);
}

int
api_rpc_snapshot_read(const struct api_backend *b,
    const struct proto_snapshot_read *q, uint8_t **body, size_t *len)
{
	struct stat st;
	uint8_t *buf = NULL;
	ssize_t n = 0;
	size_t want;
	int fd, rv;

	if (b->snapshot_open == NULL)
		return vdb_err(VECDB_EINVAL, "this server keeps no snapshot "
		    "files");
	if ((rv = b->snapshot_open(b->ctx, q->collection, q->name, &fd)) !=
	    VECDB_OK)
		return rv;
	if (fstat(fd, &st) != 0) {
		rv = vdb_err(VECDB_EIO, "snapshot '%s': %s", q->name,
		    strerror(errno));
		goto out;
	}
	want = (uint64_t) st.st_size > q->offset ? (size_t) ((uint64_t)
	    st.st_size - q->offset) : 0;
	if (want > q->max_bytes)
		want = q->max_bytes;
	if (want > 0 && (buf = vdb_malloc(want)) == NULL) {
		rv = vdb_err(VECDB_ENOMEM, "out of memory for %zu bytes", want);
		goto out;
	}
	for (size_t got = 0; got < want; got += (size_t) n)
		if ((n = pread(fd, buf + got, want - got, (off_t) (q->offset +
		    got))) <= 0) {
			rv = vdb_err(VECDB_EIO, "snapshot '%s': %s", q->name,
			    n == 0 ? "shorter than it was" : strerror(errno));
			goto out;
		}
	rv = proto_snapshot_data_encode(buf, want, (uint64_t) st.st_size, body,
	    len);
out:
	vdb_free(buf);
	close(fd);
	return rv;
}

/* The slot of upload q into *out (a new one at offset 0). Called under
 * the lock. */
static int
slot_get(struct api_rpc_uploads *u, const struct proto_snapshot_upload *q,
    struct upload **out)
{
	struct upload *free_slot = NULL;
	uint64_t now = vdb_now_ms();
	const char *tmp = getenv("TMPDIR");

	for (int i = 0; i < API_RPC_UPLOADS_MAX; i++) {
		struct upload *s = &u->u[i];
		if (s->id == q->upload) {
			if (s->busy || strcmp(s->collection, q->collection) != 0)
				return vdb_err(VECDB_EINVAL, "upload %llu is in "
				    "use", (unsigned long long) q->upload);
			*out = s;
			return VECDB_OK;
		}
		if (s->id != 0 && !s->busy &&
		    now - s->touched_ms > API_RPC_UPLOAD_IDLE_MS)
			slot_drop(s);   /* its sender is gone */
		if (s->id == 0 && free_slot == NULL)
			free_slot = s;
	}
	if (q->offset != 0)
		return vdb_err(VECDB_EINVAL, "upload %llu: no such upload "
		    "(it starts at offset 0, or it was dropped after %d s "
		    "idle)", (unsigned long long) q->upload,
		    API_RPC_UPLOAD_IDLE_MS / 1000);
	if (free_slot == NULL)
		return vdb_err(VECDB_EFULL, "%d snapshot uploads are in "
		    "progress already", API_RPC_UPLOADS_MAX);
	snprintf(free_slot->path, sizeof(free_slot->path),
	    "%s/vecdb-upload-XXXXXX", tmp && *tmp ? tmp : "/tmp");
	if ((free_slot->fd = mkostemp(free_slot->path, O_CLOEXEC)) < 0) {
		int rv = vdb_err(VECDB_EIO, "cannot create %s: %s",
		    free_slot->path, strerror(errno));
		memset(free_slot, 0, sizeof(*free_slot));
		free_slot->fd = -1;
		return rv;
	}
	free_slot->id = q->upload;
	snprintf(free_slot->collection, sizeof(free_slot->collection), "%s",
	    q->collection);
	free_slot->size = 0;
	free_slot->touched_ms = now;
	*out = free_slot;
	return VECDB_OK;
}

int
api_rpc_snapshot_upload(struct api_rpc_uploads *u, const struct api_backend *b,
    const struct proto_snapshot_upload *q)
{
	struct upload *s = NULL;
	char path[256];
	int rv = VECDB_OK, fd;

	if (b->snapshot_restore_file == NULL)
		return vdb_err(VECDB_EINVAL, "this server cannot restore "
		    "snapshot files");
	if (q->upload == 0)
		return vdb_err(VECDB_EINVAL, "an upload needs a non-zero id");
	pthread_mutex_lock(&u->lock);
	if ((rv = slot_get(u, q, &s)) != VECDB_OK) {
		pthread_mutex_unlock(&u->lock);
		return rv;
	}
	if (q->offset != s->size) {
		rv = vdb_err(VECDB_EINVAL, "upload %llu: piece at offset %llu, "
		    "expected %llu", (unsigned long long) q->upload,
		    (unsigned long long) q->offset,
		    (unsigned long long) s->size);
		pthread_mutex_unlock(&u->lock);
		return rv;
	}
	s->busy = 1;
	fd = s->fd;
	pthread_mutex_unlock(&u->lock);

	for (size_t off = 0; off < q->n && rv == VECDB_OK;) {
		ssize_t n = write(fd, q->data + off, q->n - off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			rv = vdb_err(errno == ENOSPC ? VECDB_EFULL : VECDB_EIO,
			    "cannot store the upload: %s", strerror(errno));
		else
			off += (size_t) n;
	}
	if (rv == VECDB_OK && q->last && fsync(fd) != 0)
		rv = vdb_err(VECDB_EIO, "cannot store the upload: %s",
		    strerror(errno));

	pthread_mutex_lock(&u->lock);
	s->busy = rv == VECDB_OK && q->last;  /* restoring: keep the slot */
	s->size += q->n;
	s->touched_ms = vdb_now_ms();
	snprintf(path, sizeof(path), "%s", s->path);
	if (rv != VECDB_OK)
		slot_drop(s);
	else if (q->last) {
		close(s->fd);
		s->fd = -1;
	}
	pthread_mutex_unlock(&u->lock);
	if (rv != VECDB_OK || !q->last)
		return rv;
	/* whole: restore from it, then let the slot go */
	rv = b->snapshot_restore_file(b->ctx, q->collection, path);
	pthread_mutex_lock(&u->lock);
	slot_drop(s);
	pthread_mutex_unlock(&u->lock);
	return rv;
}
