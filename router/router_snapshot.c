/*
 * router_snapshot.c: the cluster backend's snapshot operations. A
 * cluster snapshot is a snapshot of the same name on every shard's
 * primary, each holding that shard's points; router_merge.c makes one
 * answer of the parts, router_snapfile.c one file.
 */
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <uuid/uuid.h>

#include "router_impl.h"
#include "vdb.h"

/* Every shard's SnapshotInfo answer into one cluster snapshot. */
static int
snap_answers(router_topology *t, struct router_call *c,
    vecdb_snapshot_info *out)
{
	vecdb_snapshot_info *per = vdb_calloc(t->n, sizeof(*per));
	int rv = per ? VECDB_OK : vdb_err(VECDB_ENOMEM, "out of memory");

	for (size_t i = 0; i < t->n && rv == VECDB_OK; i++)
		rv = proto_snapshot_info_decode(c[i].resp->body,
		    c[i].resp->body_len, &per[i]);
	if (rv == VECDB_OK)
		rv = router_merge_snapshot(per, t->n, out);
	vdb_free(per);
	return rv;
}

/* Send a snapshot target (collection, name) to every primary. */
static int
snap_broadcast(router *r, router_topology *t, uint32_t method,
    const char *coll, const char *name, struct router_call **c)
{
	uint8_t *b = NULL;
	size_t l = 0;
	int rv = proto_target_encode(method, coll, name, 0, &b, &l);

	return router_broadcast(r, t, method, 0, rv, b, l, c);
}

/* A name no other router will pick: <coll>_<time>-<8 hex>. */
static void
snap_name_new(const char *coll, char *buf, size_t len)
{
	uuid_t u;

	uuid_generate_random(u);
	snprintf(buf, len, "%.*s_%lld-%02x%02x%02x%02x",
	    VECDB_SNAPSHOT_NAME_MAX - 32, coll, (long long) time(NULL), u[0],
	    u[1], u[2], u[3]);
}

/* Delete the parts a failed create made (only those: the name may be
 * another snapshot's on the shards that refused it). */
static void
snap_undo(router *r, router_topology *t, const struct router_call *made,
    const char *coll, const char *name)
{
	struct router_call *c = NULL;
	uint8_t *b = NULL;
	size_t l = 0;

	if (proto_target_encode(PROTO_SNAPSHOT_DELETE, coll, name, 0, &b, &l)
	    != VECDB_OK || router_calls_new(r, t->n, PROTO_SNAPSHOT_DELETE, 0,
	    b, l, &c) != VECDB_OK)
		return;
	for (size_t i = 0; i < t->n; i++)
		if (made[i].rv != VECDB_OK) {
			vdb_free(c[i].req);
			c[i].req = NULL;
		}
	router_fanout(r, t, c, t->n);
	router_calls_free(c, t->n);
}

/* Every shard snapshots under one name; a failure removes the others. */
static int
cl_snap_create(void *ctx, const char *coll, const char *name,
    vecdb_snapshot_info *out)
{
	router *r = ctx;
	router_topology *t = router_topology_acquire(r, NULL, NULL);
	char gen[VECDB_SNAPSHOT_NAME_MAX + 1];
	struct router_call *c = NULL;
	char msg[1024];
	int rv;

	if (name == NULL) {
		snap_name_new(coll, gen, sizeof(gen));
		name = gen;
	}
	if ((rv = snap_broadcast(r, t, PROTO_SNAPSHOT_CREATE, coll, name,
	    &c)) == VECDB_OK && (rv = router_calls_check(c, t->n, VECDB_OK)) ==
	    VECDB_OK)
		rv = snap_answers(t, c, out);
	else if (c != NULL) {
		vdb_err_save(msg, sizeof(msg));
		snap_undo(r, t, c, coll, name);
		vdb_err(rv, "%s", msg);
	}
	router_calls_free(c, t->n);
	router_topology_release(r, t);
	return rv;
}

/* NOT_FOUND naming the shards that lack the snapshot, if some do. */
static int
snap_missing(router_topology *t, struct router_call *c, const char *name)
{
	char buf[1024];
	size_t len = 0, k = 0;

	for (size_t i = 0; i < t->n; i++)
		if (c[i].rv == VECDB_ENOTFOUND && len < sizeof(buf)) {
			len += (size_t) snprintf(buf + len, sizeof(buf) - len,
			    "%s%u", k ? ", " : "", t->shards[i].id);
			k++;
		}
	if (k == 0)
		return VECDB_OK;
	return vdb_err(VECDB_ENOTFOUND, "snapshot '%s' not found on shard%s "
	    "%s", name, k > 1 ? "s" : "", buf);
}

static int
cl_snap_get(void *ctx, const char *coll, const char *name,
    vecdb_snapshot_info *out)
{
	router *r = ctx;
	router_topology *t = router_topology_acquire(r, NULL, NULL);
	struct router_call *c = NULL;
	int rv;

	if ((rv = snap_broadcast(r, t, PROTO_SNAPSHOT_GET, coll, name, &c)) ==
	    VECDB_OK && (rv = router_calls_check(c, t->n, VECDB_ENOTFOUND)) ==
	    VECDB_OK && (rv = snap_missing(t, c, name)) == VECDB_OK)
		rv = snap_answers(t, c, out);
	router_calls_free(c, t->n);
	router_topology_release(r, t);
	return rv;
}
/* Snapshots present on every shard (a failed create leaves none). */
static int
cl_snap_list(void *ctx, const char *coll, vecdb_snapshot_info **out,
    size_t *n)
{
	router *r = ctx;
	router_topology *t = router_topology_acquire(r, NULL, NULL);
	vecdb_snapshot_info **lists = vdb_calloc(t->n, sizeof(*lists));
	vecdb_snapshot_info *per = vdb_calloc(t->n, sizeof(*per)), *res = NULL;
	size_t *counts = vdb_calloc(t->n, sizeof(*counts));
	struct router_call *c = NULL;
	int rv = VECDB_OK;

	if (lists == NULL || per == NULL || counts == NULL)
		rv = vdb_err(VECDB_ENOMEM, "out of memory");
	if (rv == VECDB_OK && (rv = snap_broadcast(r, t, PROTO_SNAPSHOT_LIST,
	    coll, NULL, &c)) == VECDB_OK)
		rv = router_calls_check(c, t->n, VECDB_OK);
	for (size_t i = 0; i < t->n && rv == VECDB_OK; i++)
		rv = proto_snapshot_list_decode(c[i].resp->body,
		    c[i].resp->body_len, &lists[i], &counts[i]);
	if (rv == VECDB_OK && (res = vdb_calloc(counts[0] + 1,
	    sizeof(*res))) == NULL)
		rv = vdb_err(VECDB_ENOMEM, "out of memory");
	if (rv == VECDB_OK && (rv = router_merge_snapshot_lists(lists, counts,
	    t->n, per, res, n)) == VECDB_OK) {
		*out = res;
		res = NULL;
	}
	for (size_t i = 0; lists != NULL && i < t->n; i++)
		vdb_free(lists[i]);
	vdb_free(lists);
	vdb_free(per);
	vdb_free(counts);
	vdb_free(res);
	router_calls_free(c, t->n);
	router_topology_release(r, t);
	return rv;
}

/* Delete on every shard; NOT_FOUND only when no shard had it. */
static int
cl_snap_delete(void *ctx, const char *coll, const char *name)
{
	uint8_t *b = NULL;
	size_t l = 0;
	int rv = proto_target_encode(PROTO_SNAPSHOT_DELETE, coll, name, 0, &b,
	    &l);

	return router_ddl(ctx, PROTO_SNAPSHOT_DELETE, rv, b, l,
	    VECDB_ENOTFOUND);
}

/*
 * Restore every shard from its part. Checked first on every shard; the
 * restores then run in parallel, and one that fails is named (the
 * others have restored: restore again once the cause is fixed).
 */
static int
cl_snap_restore(void *ctx, const char *coll, const char *name)
{
	router *r = ctx;
	router_topology *t;
	vecdb_snapshot_info si;
	struct router_call *c = NULL;
	int rv;

	if ((rv = cl_snap_get(ctx, coll, name, &si)) != VECDB_OK)
		return rv;
	t = router_topology_acquire(r, NULL, NULL);
	if ((rv = snap_broadcast(r, t, PROTO_SNAPSHOT_RESTORE, coll, name,
	    &c)) == VECDB_OK)
		rv = router_calls_check(c, t->n, VECDB_OK);
	router_calls_free(c, t->n);
	router_topology_release(r, t);
	return rv;
}

void
router_snapshot_ops_init(struct api_backend *b)
{
	b->snapshot_create = cl_snap_create;
	b->snapshot_list = cl_snap_list;
	b->snapshot_get = cl_snap_get;
	b->snapshot_delete = cl_snap_delete;
	b->snapshot_restore = cl_snap_restore;
	b->snapshot_open = router_snapshot_open;
	b->snapshot_restore_file = router_snapshot_restore_file;
}
