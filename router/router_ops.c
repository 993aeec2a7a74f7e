/*
 * router_ops.c: the cluster backend's collection, point and stats
 * operations (queries: router_query.c). Each becomes requests to the
 * shards (router_call.c), and their answers become one (router_merge.c):
 * DDL goes to every primary, a batch of points is split by shard.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uuid/uuid.h>

#include "router_impl.h"
#include "vdb.h"

/* ===== Collections ===== */

/* Create on every shard, repairing a partial one. */
static int
cl_collection_create(void *ctx, const vecdb_collection_config *cfg)
{
	uint8_t *b = NULL;
	size_t l = 0;
	int rv = proto_collection_create_encode(cfg, &b, &l);

	return router_ddl(ctx, PROTO_CREATE_COLLECTION, rv, b, l,
	    VECDB_EEXIST);
}

/* Delete on every shard. */
static int
cl_collection_delete(void *ctx, const char *name)
{
	uint8_t *b = NULL;
	size_t l = 0;
	int rv = proto_target_encode(PROTO_DELETE_COLLECTION, name, NULL, 0,
	    &b, &l);

	return router_ddl(ctx, PROTO_DELETE_COLLECTION, rv, b, l,
	    VECDB_ENOTFOUND);
}

/* Compact on every shard's primary; replicas compact on their own. */
static int
cl_collection_compact(void *ctx, const char *name)
{
	uint8_t *b = NULL;
	size_t l = 0;
	int rv = proto_target_encode(PROTO_COMPACT_COLLECTION, name, NULL, 0,
	    &b, &l);

	return router_primaries(ctx, PROTO_COMPACT_COLLECTION, rv, b, l);
}

/*
 * Quantization on every shard's primary; replicas follow through the
 * WAL. Every shard checks the setting against the same config, so a bad
 * one is refused by all and changes nothing. XXX: a shard that cannot be
 * reached keeps its old setting while the others change: the call fails
 * (UNAVAILABLE) and may be repeated, as it is idempotent.
 */
static int
cl_collection_set_quantization(void *ctx, const char *name,
    const vecdb_quant_config *q)
{
	uint8_t *b = NULL;
	size_t l = 0;
	int rv = proto_set_quantization_encode(name, q, &b, &l);

	return router_primaries(ctx, PROTO_SET_QUANTIZATION, rv, b, l);
}

/* A payload index on every shard. */
static int
cl_pindex_create(void *ctx, const char *coll, const char *field,
    vecdb_field_schema schema)
{
	uint8_t *b = NULL;
	size_t l = 0;
	int rv = proto_target_encode(PROTO_PAYLOAD_INDEX_CREATE, coll, field,
	    schema, &b, &l);

	return router_ddl(ctx, PROTO_PAYLOAD_INDEX_CREATE, rv, b, l,
	    VECDB_EEXIST);
}

/* Drop a payload index on every shard. */
static int
cl_pindex_delete(void *ctx, const char *coll, const char *field)
{
	uint8_t *b = NULL;
	size_t l = 0;
	int rv = proto_target_encode(PROTO_PAYLOAD_INDEX_DELETE, coll, field,
	    0, &b, &l);

	return router_ddl(ctx, PROTO_PAYLOAD_INDEX_DELETE, rv, b, l,
	    VECDB_ENOTFOUND);
}

/* Config from shard 0, stats summed over all shards. */
static int
cl_collection_get(void *ctx, const char *name, vecdb_collection_config *cfg,
    vecdb_collection_stats *st)
{
	router *r = ctx;
	router_topology *t = router_topology_acquire(r, NULL, NULL);
	vecdb_collection_config c0, ci;
	vecdb_collection_stats sum, si;
	struct router_call *c = NULL;
	uint8_t *b = NULL;
	size_t l = 0;
	int rv = proto_target_encode(PROTO_GET_COLLECTION, name, NULL, 0, &b,
	    &l);

	memset(&sum, 0, sizeof(sum));
	if ((rv = router_broadcast(r, t, PROTO_GET_COLLECTION, 1, rv, b, l,
	    &c)) != VECDB_OK || (rv = router_calls_check(c, t->n, VECDB_OK)) !=
	    VECDB_OK)
		goto out;
	for (size_t i = 0; i < t->n && rv == VECDB_OK; i++) {
		if ((rv = proto_collection_info_decode(c[i].resp->body,
		    c[i].resp->body_len, i == 0 ? &c0 : &ci, &si)) != VECDB_OK)
			break; /* si is not written */
		router_merge_collection_stats(&sum, &si, i);
	}
	if (rv == VECDB_OK) {
		*cfg = c0;
		*st = sum;
	}
out:
	router_calls_free(c, t->n);
	router_topology_release(r, t);
	return rv;
}

/* qsort order of names. */
static int
name_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *) a, *(char *const *) b);
}

/* Append shard lists' names, then sort and drop duplicates. */
static int
names_union(struct router_call *c, size_t nshards, char ***names, size_t *n)
{
	char **all = NULL, **part, **grown;
	size_t total = 0, k, w = 0;
	int rv = VECDB_OK;

	for (size_t i = 0; i < nshards && rv == VECDB_OK; i++) {
		if ((rv = proto_names_decode(c[i].resp->body,
		    c[i].resp->body_len, &part, &k)) != VECDB_OK)
			break;
		grown = vdb_realloc(all, (total + k + 1) * sizeof(char *));
		if (grown == NULL) {
			vecdb_names_free(part, k);
			rv = vdb_err(VECDB_ENOMEM, "out of memory");
			break;
		}
		all = grown;
		if (k > 0)
			memcpy(all + total, part, k * sizeof(char *));
		total += k;
		vdb_free(part);
	}
	if (rv != VECDB_OK) {
		vecdb_names_free(all, total);
		return rv;
	}
	if (total > 0)
		qsort(all, total, sizeof(char *), name_cmp);
	for (size_t i = 0; i < total; i++)
		if (w > 0 && strcmp(all[w - 1], all[i]) == 0)
			vdb_free(all[i]);
		else
			all[w++] = all[i];
	*names = all;
	*n = w;
	return VECDB_OK;
}

/* The union of every shard's collections. */
static int
cl_collection_list(void *ctx, char ***names, size_t *n)
{
	router *r = ctx;
	router_topology *t = router_topology_acquire(r, NULL, NULL);
	struct router_call *c = NULL;
	int rv;

	if ((rv = router_broadcast(r, t, PROTO_LIST_COLLECTIONS, 1, VECDB_OK,
	    NULL, 0, &c)) == VECDB_OK && (rv = router_calls_check(c, t->n,
	    VECDB_OK)) == VECDB_OK)
		rv = names_union(c, t->n, names, n);
	router_calls_free(c, t->n);
	router_topology_release(r, t);
	return rv;
}

/* Payload indexes of shard 0, entries summed over all shards. */
static int
cl_pindex_list(void *ctx, const char *coll, vecdb_payload_index_info **out,
    size_t *n)
{
	router *r = ctx;
	router_topology *t = router_topology_acquire(r, NULL, NULL);
	vecdb_payload_index_info *l0 = NULL, *li;
	struct router_call *c = NULL;
	size_t n0 = 0, ni;
	uint8_t *b = NULL;
	size_t l = 0;
	int rv = proto_target_encode(PROTO_PAYLOAD_INDEX_LIST, coll, NULL, 0,
	    &b, &l);

	if ((rv = router_broadcast(r, t, PROTO_PAYLOAD_INDEX_LIST, 1, rv, b, l,
	    &c)) != VECDB_OK || (rv = router_calls_check(c, t->n, VECDB_OK)) !=
	    VECDB_OK ||
	    (rv = proto_pindex_list_decode(c[0].resp->body,
	    c[0].resp->body_len, &l0, &n0)) != VECDB_OK)
		goto out;
	for (size_t i = 1; i < t->n; i++) {
		if (proto_pindex_list_decode(c[i].resp->body,
		    c[i].resp->body_len, &li, &ni) != VECDB_OK)
			continue;
		for (size_t a = 0; a < n0; a++)
			for (size_t z = 0; z < ni; z++)
				if (strcmp(l0[a].field, li[z].field) == 0)
					l0[a].entries += li[z].entries;
		vdb_free(li);
	}
	*out = l0;
	*n = n0;
out:
	router_calls_free(c, t->n);
	router_topology_release(r, t);
	return rv;
}

/* ===== Points ===== */

/* A v4 uuid for every point without an id (insert and upsert). */
static void
ids_assign(vecdb_write_op op, vecdb_point *pts, size_t n)
{
	if (op == API_UPDATE)
		return;
	for (size_t i = 0; i < n; i++)
		if (pts[i].id.kind == VECDB_ID_NONE) {
			pts[i].id.kind = VECDB_ID_UUID;
			uuid_generate_random(pts[i].id.uuid);
		}
}

/* Encode one request per shard with items; calls for empty shards are
 * marked done with rv VECDB_OK and no request. */
static int
write_calls(router *r, router_topology *t, const char *coll,
    vecdb_write_op op, const vecdb_point *pts,
    const vecdb_point_sparse *sparse, size_t n, int check,
    struct router_call *c)
{
	uint32_t *of;
	size_t *cnt;
	vecdb_point *part = vdb_malloc((n ? n : 1) * sizeof(*part));
	vecdb_point_sparse *spart = sparse == NULL ? NULL :
	    vdb_malloc((n ? n : 1) * sizeof(*spart));
	int rv;

	if (part == NULL || (sparse != NULL && spart == NULL)) {
		vdb_free(part);
		vdb_free(spart);
		return vdb_err(VECDB_ENOMEM, "out of memory");
	}
	if ((rv = router_split(&pts[0].id, sizeof(*pts), n, t->n, &of,
	    &cnt)) != VECDB_OK) {
		vdb_free(part);
		vdb_free(spart);
		return rv;
	}
	for (size_t s = 0; s < t->n && rv == VECDB_OK; s++) {
		size_t k;
		uint8_t *b;
		size_t l;
		c[s].shard = s;
		c[s].check = check;
		if (cnt[s] == 0)
			continue;
		k = router_split_part(pts, sizeof(*pts), n, of, (uint32_t) s,
		    part);
		if (sparse != NULL)
			(void) router_split_part(sparse, sizeof(*sparse), n, of,
			    (uint32_t) s, spart);
		rv = proto_write_sparse_encode(coll, op, check, check ? 0 :
		    api_read_opts()->write_concern, part, spart, k, &b, &l);
		if (rv == VECDB_OK) {
			rv = proto_request_encode(PROTO_WRITE, r->key, s, b, l,
			    &c[s].req, &c[s].reqlen);
			vdb_free(b);
		}
	}
	vdb_free(part);
	vdb_free(spart);
	vdb_free(of);
	vdb_free(cnt);
	return rv;
}

/* Send each shard its part of a batch (or, with check, a check of it). */
static int
write_phase(router *r, router_topology *t, const char *coll,
    vecdb_write_op op, vecdb_point *pts, const vecdb_point_sparse *sparse,
    size_t n, int check)
{
	struct router_call *c = vdb_calloc(t->n, sizeof(*c));
	int rv;

	if (c == NULL)
		return vdb_err(VECDB_ENOMEM, "out of memory");
	if ((rv = write_calls(r, t, coll, op, pts, sparse, n, check, c)) ==
	    VECDB_OK) {
		router_fanout(r, t, c, t->n);
		rv = router_calls_check(c, t->n, VECDB_OK);
	}
	router_calls_free(c, t->n);
	return rv;
}

/* Does the batch touch more than one shard? */
static int
multi_shard(router_topology *t, const vecdb_point *pts, size_t n)
{
	for (size_t i = 1; i < n; i++)
		if (router_shard_of(&pts[i].id, (uint32_t) t->n) !=
		    router_shard_of(&pts[0].id, (uint32_t) t->n))
			return 1;
	return 0;
}

/*
 * Split a batch by shard. Each shard's part is atomic; a batch over
 * several shards is first checked on each of them (the write, rolled
 * back), so that bad input (a wrong dimension, an id that exists) is
 * refused before any part is written. Only a failure between the check
 * and the write (a concurrent write, a node dying) can leave some parts
 * written; the error then names the shards that failed.
 */
static int
cl_write(void *ctx, const char *coll, vecdb_write_op op, vecdb_point *pts,
    const vecdb_point_sparse *sparse, size_t n)
{
	router *r = ctx;
	router_topology *t = router_topology_acquire(r, NULL, NULL);
	int rv = VECDB_OK;

	ids_assign(op, pts, n);
	if (multi_shard(t, pts, n))
		rv = write_phase(r, t, coll, op, pts, sparse, n, 1);
	if (rv == VECDB_OK)
		rv = write_phase(r, t, coll, op, pts, sparse, n, 0);
	router_topology_release(r, t);
	return rv;
}

/* Delete calls: one per shard with ids. */
static int
delete_calls(router *r, router_topology *t, const char *coll,
    const vecdb_id *ids, size_t n, struct router_call *c)
{
	uint32_t *of;
	size_t *cnt;
	vecdb_id *part = vdb_malloc((n ? n : 1) * sizeof(*part));
	int rv;

	if (part == NULL)
		return vdb_err(VECDB_ENOMEM, "out of memory");
	if ((rv = router_split(ids, sizeof(*ids), n, t->n, &of, &cnt)) !=
	    VECDB_OK) {
		vdb_free(part);
		return rv;
	}
	for (size_t s = 0; s < t->n && rv == VECDB_OK; s++) {
		size_t k;
		uint8_t *b;
		size_t l;
		c[s].shard = s;
		if (cnt[s] == 0)
			continue;
		k = router_split_part(ids, sizeof(*ids), n, of, (uint32_t) s,
		    part);
		if ((rv = proto_delete_encode(coll, part, k, &b, &l)) ==
		    VECDB_OK) {
			rv = proto_request_encode(PROTO_DELETE, r->key, s, b, l,
			    &c[s].req, &c[s].reqlen);
			vdb_free(b);
		}
	}
	vdb_free(part);
	vdb_free(of);
	vdb_free(cnt);
	return rv;
}

/* Split ids by shard, sum the deleted counts. */
static int
cl_delete(void *ctx, const char *coll, const vecdb_id *ids, size_t n,
    size_t *deleted)
{
	router *r = ctx;
	router_topology *t = router_topology_acquire(r, NULL, NULL);
	struct router_call *c = vdb_calloc(t->n, sizeof(*c));
	uint64_t sum = 0, d;
	int rv;

	if (c == NULL) {
		router_topology_release(r, t);
		return vdb_err(VECDB_ENOMEM, "out of memory");
	}
	if ((rv = delete_calls(r, t, coll, ids, n, c)) == VECDB_OK) {
		router_fanout(r, t, c, t->n);
		rv = router_calls_check(c, t->n, VECDB_OK);
	}
	for (size_t s = 0; s < t->n && rv == VECDB_OK; s++)
		if (c[s].resp != NULL && (rv = proto_deleted_decode(
		    c[s].resp->body, c[s].resp->body_len, &d)) == VECDB_OK)
			sum += d;
	if (rv == VECDB_OK)
		*deleted = (size_t) sum;
	router_calls_free(c, t->n);
	router_topology_release(r, t);
	return rv;
}

int
router_get_point(router *r, router_topology *t, const char *coll,
    const vecdb_id *id, vecdb_record **out)
{
	struct router_call c;
	uint8_t *b;
	size_t l;
	int rv;

	memset(&c, 0, sizeof(c));
	c.shard = router_shard_of(id, (uint32_t) t->n);
	c.read = 1;
	if ((rv = proto_get_encode(coll, id, &b, &l)) != VECDB_OK)
		return rv;
	rv = proto_request_encode(PROTO_GET, r->key, 0, b, l, &c.req,
	    &c.reqlen);
	vdb_free(b);
	if (rv == VECDB_OK) {
		router_fanout(r, t, &c, 1);
		if ((rv = router_calls_check(&c, 1, VECDB_OK)) == VECDB_OK)
			rv = proto_record_decode(c.resp->body, c.resp->body_len,
			    out);
	}
	router_call_fini(&c);
	return rv;
}

/* A point from its shard. */
static int
cl_get(void *ctx, const char *coll, const vecdb_id *id, vecdb_record **out)
{
	router *r = ctx;
	router_topology *t = router_topology_acquire(r, NULL, NULL);
	int rv = router_get_point(r, t, coll, id, out);

	router_topology_release(r, t);
	return rv;
}

/* ===== Node-wide ===== */

/* Sum the nodes' stats (collections: shard 0's, last_seq: max). */
static int
cl_stats(void *ctx, vecdb_stats *out)
{
	router *r = ctx;
	router_topology *t = router_topology_acquire(r, NULL, NULL);
	struct router_call *c = NULL;
	vecdb_stats sum, s;
	int rv;

	memset(&sum, 0, sizeof(sum));
	if ((rv = router_broadcast(r, t, PROTO_STATS, 1, VECDB_OK, NULL, 0,
	    &c)) == VECDB_OK && (rv = router_calls_check(c, t->n, VECDB_OK)) ==
	    VECDB_OK)
		for (size_t i = 0; i < t->n && rv == VECDB_OK; i++)
			if ((rv = proto_stats_decode(c[i].resp->body,
			    c[i].resp->body_len, &s)) == VECDB_OK)
				router_merge_stats(&sum, &s, i);
	if (rv == VECDB_OK)
		*out = sum;
	router_calls_free(c, t->n);
	router_topology_release(r, t);
	return rv;
}

int
router_collection_config(router *r, const char *name,
    vecdb_collection_config *cfg)
{
	vecdb_collection_stats st;

	return cl_collection_get(r, name, cfg, &st);
}

void
router_ops_init(struct api_backend *b)
{
	b->collection_create = cl_collection_create;
	b->collection_get = cl_collection_get;
	b->collection_list = cl_collection_list;
	b->collection_delete = cl_collection_delete;
	b->collection_compact = cl_collection_compact;
	b->collection_set_quantization = cl_collection_set_quantization;
	b->write = cl_write;
	b->delete = cl_delete;
	b->get = cl_get;
	b->payload_index_create = cl_pindex_create;
	b->payload_index_delete = cl_pindex_delete;
	b->payload_index_list = cl_pindex_list;
	b->stats = cl_stats;
}
