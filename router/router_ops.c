/*
 * router_ops.c: the cluster backend's collection, point, query and stats
 * operations. Each becomes requests to the shards (router_call.c), and
 * their answers become one (router_merge.c): DDL goes to every primary,
 * a batch of points is split by shard, a query asks every shard.
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
    vecdb_write_op op,
    const vecdb_point *pts, size_t n, int check, struct router_call *c)
{
	uint32_t *of;
	size_t *cnt;
	vecdb_point *part = vdb_malloc((n ? n : 1) * sizeof(*part));
	int rv;

	if (part == NULL)
		return vdb_err(VECDB_ENOMEM, "out of memory");
	if ((rv = router_split(&pts[0].id, sizeof(*pts), n, t->n, &of,
	    &cnt)) != VECDB_OK) {
		vdb_free(part);
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
		rv = check ? proto_write_check_encode(coll, op, part, k, &b,
		    &l) : proto_write_wc_encode(coll, op,
		    api_read_opts()->write_concern, part, k, &b, &l);
		if (rv == VECDB_OK) {
			rv = proto_request_encode(PROTO_WRITE, r->key, s, b, l,
			    &c[s].req, &c[s].reqlen);
			vdb_free(b);
		}
	}
	vdb_free(part);
	vdb_free(of);
	vdb_free(cnt);
	return rv;
}

/* Send each shard its part of a batch (or, with check, a check of it). */
static int
write_phase(router *r, router_topology *t, const char *coll,
    vecdb_write_op op,
    vecdb_point *pts, size_t n, int check)
{
	struct router_call *c = vdb_calloc(t->n, sizeof(*c));
	int rv;

	if (c == NULL)
		return vdb_err(VECDB_ENOMEM, "out of memory");
	if ((rv = write_calls(r, t, coll, op, pts, n, check, c)) == VECDB_OK) {
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
    size_t n)
{
	router *r = ctx;
	router_topology *t = router_topology_acquire(r, NULL, NULL);
	int rv = VECDB_OK;

	ids_assign(op, pts, n);
	if (multi_shard(t, pts, n))
		rv = write_phase(r, t, coll, op, pts, n, 1);
	if (rv == VECDB_OK)
		rv = write_phase(r, t, coll, op, pts, n, 0);
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

/* Get one point from shard s of t. */
static int
get_from(router *r, router_topology *t, const char *coll,
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
	int rv = get_from(r, t, coll, id, out);

	router_topology_release(r, t);
	return rv;
}

/* ===== Queries ===== */

/* The filter as compact JSON text, NULL for none (free with free()). */
static char *
filter_text(const json_t *f)
{
	return f == NULL || json_is_null(f) ? NULL : json_dumps(f,
	    JSON_COMPACT);
}

/* Encode a batch with limit+offset per shard and offset 0. */
static int
search_encode(const char *coll, const struct api_search *s, size_t n,
    uint8_t **b, size_t *l)
{
	vecdb_search_params *p = vdb_calloc(n, sizeof(*p));
	char **f = vdb_calloc(n, sizeof(char *));
	int rv = VECDB_OK;

	if (p == NULL || f == NULL)
		rv = vdb_err(VECDB_ENOMEM, "out of memory");
	for (size_t i = 0; i < n && rv == VECDB_OK; i++) {
		p[i] = s[i].p;
		p[i].filter = NULL;
		p[i].limit = s[i].p.limit + s[i].p.offset;
		p[i].offset = 0;
		f[i] = filter_text(s[i].filter);
	}
	if (rv == VECDB_OK)
		rv = proto_search_encode(coll, p, (const char *const *) f, n,
		    b, l);
	for (size_t i = 0; f != NULL && i < n; i++)
		free(f[i]);
	vdb_free(f);
	vdb_free(p);
	return rv;
}

/* Every shard, limit+offset each, merged by (distance, id). */
static int
cl_search(void *ctx, const char *coll, const struct api_search *s, size_t n,
    vecdb_records ***out)
{
	router *r = ctx;
	router_topology *t = router_topology_acquire(r, NULL, NULL);
	vecdb_records ***per = vdb_calloc(t->n, sizeof(*per));
	struct router_call *c = NULL;
	uint8_t *b = NULL;
	size_t l = 0, k;
	int rv = per ? search_encode(coll, s, n, &b, &l) :
	    vdb_err(VECDB_ENOMEM, "out of memory");

	if ((rv = router_broadcast(r, t, PROTO_SEARCH, 1, rv, b, l, &c)) !=
	    VECDB_OK || (rv = router_calls_settle(t, c, t->n)) != VECDB_OK)
		goto out;
	for (size_t i = 0, j = 0; i < t->n && rv == VECDB_OK; i++) {
		if (c[i].skip || (rv = proto_search_result_decode(
		    c[i].resp->body, c[i].resp->body_len, &per[j], &k)) !=
		    VECDB_OK)
			continue;
		/* per[j] holds k lists: freed as n below, it must be n */
		if (k != n) {
			vecdb_records_free_array(per[j], k);
			per[j] = NULL;
			rv = vdb_err(VECDB_EINTERNAL, "shard %zu answered %zu "
			    "of %zu searches", i, k, n);
		}
		j++;
	}
	if (rv == VECDB_OK)
		rv = router_merge_search(per, router_calls_answered(c, t->n),
		    s, n, out);
out:
	for (size_t i = 0; per != NULL && i < t->n; i++)
		if (per[i] != NULL)
			vecdb_records_free_array(per[i], n);
	vdb_free(per);
	router_calls_free(c, t->n);
	router_topology_release(r, t);
	return rv;
}

/*
 * Broadcast a Records-answering request and merge the answers: by cmp
 * with offset and limit, or with cmp NULL as scroll pages of limit.
 */
static int
records_query(router *r, router_topology *t, uint32_t method, int enc_rv,
    uint8_t *b, size_t l, int (*cmp)(const void *, const void *),
    uint32_t offset, uint32_t limit, vecdb_records **out)
{
	struct router_call *c = NULL;
	vecdb_records **lists = NULL;
	size_t n = 0;
	int rv;

	if ((rv = router_broadcast(r, t, method, 1, enc_rv, b, l, &c)) ==
	    VECDB_OK && (rv = router_calls_settle(t, c, t->n)) == VECDB_OK &&
	    (rv = router_answers_decode(c, t->n, &lists, &n)) == VECDB_OK)
		rv = cmp != NULL ? router_merge_records(lists, n, cmp, offset,
		    limit, out) : router_merge_scroll(lists, n, limit, out);
	vecdb_records_free_array(lists, n);
	router_calls_free(c, t->n);
	return rv;
}

/* Scroll every shard from the same start and merge by id
 * (router_merge_scroll() says which id comes next). */
static int
cl_scroll(void *ctx, const char *coll, const vecdb_id *start,
    uint32_t limit, const json_t *filter, int with_payload,
    int with_vector, vecdb_records **out)
{
	router *r = ctx;
	router_topology *t = router_topology_acquire(r, NULL, NULL);
	char *f = filter_text(filter);
	uint8_t *b = NULL;
	size_t l = 0;
	int rv = proto_scroll_encode(coll, start, limit, f, with_payload,
	    with_vector, &b, &l);

	free(f);
	rv = records_query(r, t, PROTO_SCROLL, rv, b, l, NULL, 0, limit, out);
	router_topology_release(r, t);
	return rv;
}

/* Sum the counts of every shard. */
static int
cl_count(void *ctx, const char *coll, const json_t *filter, uint64_t *out)
{
	router *r = ctx;
	router_topology *t = router_topology_acquire(r, NULL, NULL);
	char *f = filter_text(filter);
	struct router_call *c = NULL;
	uint8_t *b = NULL;
	size_t l = 0;
	int rv = proto_count_encode(coll, f, &b, &l);

	free(f);
	if ((rv = router_broadcast(r, t, PROTO_COUNT, 1, rv, b, l, &c)) ==
	    VECDB_OK && (rv = router_calls_settle(t, c, t->n)) == VECDB_OK)
		rv = router_merge_count(c, t->n, out);
	router_calls_free(c, t->n);
	router_topology_release(r, t);
	return rv;
}

/* ===== Recommend and discover: examples by id become vectors ===== */

/* Example vectors gathered from the shards, and the ids to exclude. */
struct examples {
	float *vecs;          /* count * dim */
	size_t count;
	vecdb_id *exclude;    /* count of n_exclude */
	size_t n_exclude;
	uint32_t dim;
};

/* Append n floats to e->vecs. */
static int
ex_push(struct examples *e, const float *v, uint32_t dim)
{
	float *g;

	if (e->dim == 0)
		e->dim = dim;
	if (dim != e->dim)
		return vdb_err(VECDB_EDIM, "example vectors differ in "
		    "dimension (%u vs %u)", dim, e->dim);
	if ((g = vdb_realloc(e->vecs, (e->count + 1) * dim * sizeof(float)))
	    == NULL)
		return vdb_err(VECDB_ENOMEM, "out of memory");
	e->vecs = g;
	memcpy(e->vecs + e->count * dim, v, dim * sizeof(float));
	e->count++;
	return VECDB_OK;
}

/* Fetch point id's vector into e and add it to the excluded ids. */
static int
ex_fetch(router *r, router_topology *t, const char *coll,
    const vecdb_id *id, struct examples *e)
{
	vecdb_record *rec = NULL;
	vecdb_id *g;
	int rv;

	if ((rv = get_from(r, t, coll, id, &rec)) != VECDB_OK)
		return rv;
	if (rec->vector == NULL)
		rv = vdb_err(VECDB_EINTERNAL, "example point has no vector");
	else
		rv = ex_push(e, rec->vector, rec->dim);
	vecdb_record_free(rec);
	if (rv == VECDB_OK && (g = vdb_realloc(e->exclude, (e->n_exclude + 1)
	    * sizeof(*g))) == NULL)
		rv = vdb_err(VECDB_ENOMEM, "out of memory");
	if (rv == VECDB_OK) {
		e->exclude = g;
		e->exclude[e->n_exclude++] = *id;
	}
	return rv;
}

/* Start e with a copy of the caller's excluded ids. */
static int
ex_init(struct examples *e, const vecdb_id *ex, size_t n, uint32_t dim)
{
	memset(e, 0, sizeof(*e));
	e->dim = dim;
	if ((e->exclude = vdb_malloc((n + 1) * sizeof(vecdb_id))) == NULL)
		return vdb_err(VECDB_ENOMEM, "out of memory");
	if (n > 0)
		memcpy(e->exclude, ex, n * sizeof(vecdb_id));
	e->n_exclude = n;
	return VECDB_OK;
}

static void
ex_fini(struct examples *e)
{
	vdb_free(e->vecs);
	vdb_free(e->exclude);
}

/* Given vectors then fetched ids, into e (positive or negative side). */
static int
ex_side(router *r, router_topology *t, const char *coll, const float *v,
    size_t nv, uint32_t dim, const vecdb_id *ids, size_t nid,
    struct examples *e)
{
	int rv = VECDB_OK;

	for (size_t i = 0; i < nv && rv == VECDB_OK; i++)
		rv = ex_push(e, v + i * dim, dim);
	for (size_t i = 0; i < nid && rv == VECDB_OK; i++)
		rv = ex_fetch(r, t, coll, &ids[i], e);
	return rv;
}

/* The ids both example sets exclude, in one new array (vdb_free it). */
static vecdb_id *
ex_join(const struct examples *a, const struct examples *b, size_t *n)
{
	vecdb_id *ex = vdb_malloc((a->n_exclude + b->n_exclude + 1) *
	    sizeof(vecdb_id));

	if (ex == NULL) {
		vdb_err(VECDB_ENOMEM, "out of memory");
		return NULL;
	}
	if (a->n_exclude > 0)
		memcpy(ex, a->exclude, a->n_exclude * sizeof(vecdb_id));
	if (b->n_exclude > 0)
		memcpy(ex + a->n_exclude, b->exclude,
		    b->n_exclude * sizeof(vecdb_id));
	*n = a->n_exclude + b->n_exclude;
	return ex;
}

/* Recommend with every example as a vector. */
static int
reco_run(router *r, router_topology *t, const char *coll,
    const vecdb_recommend_params *p, const json_t *filter,
    struct examples *pos, struct examples *neg, vecdb_records **out)
{
	vecdb_recommend_params q = *p;
	vecdb_id *ex;
	char *f;
	uint8_t *b = NULL;
	size_t l = 0;
	int rv;

	if ((ex = ex_join(pos, neg, &q.n_exclude)) == NULL)
		return VECDB_ENOMEM;
	f = filter_text(filter);
	q.positive = q.negative = NULL;
	q.n_positive = q.n_negative = 0;
	q.positive_vectors = pos->vecs;
	q.n_positive_vectors = pos->count;
	q.negative_vectors = neg->vecs;
	q.n_negative_vectors = neg->count;
	q.dim = pos->dim ? pos->dim : neg->dim;
	q.exclude = ex;
	q.limit = p->limit + p->offset;
	q.offset = 0;
	q.filter = NULL;
	rv = proto_recommend_encode(coll, &q, f, &b, &l);
	free(f);
	rv = records_query(r, t, PROTO_RECOMMEND, rv, b, l, router_by_distance,
	    p->offset, p->limit, out);
	vdb_free(ex);
	return rv;
}

/* Fetch examples by id from their shards, then ask every shard. */
static int
cl_recommend(void *ctx, const char *coll, const vecdb_recommend_params *p,
    const json_t *filter, vecdb_records **out)
{
	router *r = ctx;
	router_topology *t = router_topology_acquire(r, NULL, NULL);
	struct examples pos, neg;
	int rv;

	memset(&neg, 0, sizeof(neg));
	if ((rv = ex_init(&pos, p->exclude, p->n_exclude, p->dim)) ==
	    VECDB_OK && (rv = ex_init(&neg, NULL, 0, p->dim)) == VECDB_OK &&
	    (rv = ex_side(r, t, coll, p->positive_vectors,
	    p->n_positive_vectors, p->dim, p->positive, p->n_positive, &pos))
	    == VECDB_OK && (rv = ex_side(r, t, coll, p->negative_vectors,
	    p->n_negative_vectors, p->dim, p->negative, p->n_negative, &neg))
	    == VECDB_OK)
		rv = reco_run(r, t, coll, p, filter, &pos, &neg, out);
	ex_fini(&pos);
	ex_fini(&neg);
	router_topology_release(r, t);
	return rv;
}

/* Discover's examples: the target, then context pairs as vectors. */
static int
disc_examples(router *r, router_topology *t, const char *coll,
    const vecdb_discover_params *p, struct examples *tgt,
    struct examples *ctxv)
{
	int rv = VECDB_OK;

	if (p->has_target && p->target.kind != VECDB_ID_NONE)
		rv = ex_fetch(r, t, coll, &p->target, tgt);
	else if (p->has_target)
		rv = ex_push(tgt, p->target_vector, p->dim);
	for (size_t i = 0; i < p->n_context_vectors * 2 && rv == VECDB_OK;
	    i++)
		rv = ex_push(ctxv, p->context_vectors + i * p->dim, p->dim);
	for (size_t i = 0; i < p->n_context && rv == VECDB_OK; i++)
		if ((rv = ex_fetch(r, t, coll, &p->context[i].positive, ctxv))
		    == VECDB_OK)
			rv = ex_fetch(r, t, coll, &p->context[i].negative, ctxv);
	return rv;
}

/* Discover with every example as a vector. */
static int
disc_run(router *r, router_topology *t, const char *coll,
    const vecdb_discover_params *p, const json_t *filter,
    struct examples *tgt, struct examples *ctxv, vecdb_records **out)
{
	vecdb_discover_params q = *p;
	vecdb_id *ex;
	char *f;
	uint8_t *b = NULL;
	size_t l = 0;
	int rv;

	if ((ex = ex_join(tgt, ctxv, &q.n_exclude)) == NULL)
		return VECDB_ENOMEM;
	f = filter_text(filter);
	memset(&q.target, 0, sizeof(q.target));
	q.target_vector = p->has_target ? tgt->vecs : NULL;
	q.context = NULL;
	q.n_context = 0;
	q.context_vectors = ctxv->vecs;
	q.n_context_vectors = ctxv->count / 2;
	q.dim = tgt->dim ? tgt->dim : ctxv->dim;
	q.exclude = ex;
	q.limit = p->limit + p->offset;
	q.offset = 0;
	q.filter = NULL;
	rv = proto_discover_encode(coll, &q, f, &b, &l);
	free(f);
	rv = records_query(r, t, PROTO_DISCOVER, rv, b, l, router_by_hits,
	    p->offset, p->limit, out);
	vdb_free(ex);
	return rv;
}

/* Fetch target and context by id, then ask every shard. */
static int
cl_discover(void *ctx, const char *coll, const vecdb_discover_params *p,
    const json_t *filter, vecdb_records **out)
{
	router *r = ctx;
	router_topology *t = router_topology_acquire(r, NULL, NULL);
	struct examples tgt, ctxv;
	int rv;

	memset(&ctxv, 0, sizeof(ctxv));
	if ((rv = ex_init(&tgt, p->exclude, p->n_exclude, p->dim)) ==
	    VECDB_OK && (rv = ex_init(&ctxv, NULL, 0, p->dim)) == VECDB_OK &&
	    (rv = disc_examples(r, t, coll, p, &tgt, &ctxv)) == VECDB_OK)
		rv = disc_run(r, t, coll, p, filter, &tgt, &ctxv, out);
	ex_fini(&tgt);
	ex_fini(&ctxv);
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
	b->search = cl_search;
	b->recommend = cl_recommend;
	b->discover = cl_discover;
	b->scroll = cl_scroll;
	b->count = cl_count;
	b->payload_index_create = cl_pindex_create;
	b->payload_index_delete = cl_pindex_delete;
	b->payload_index_list = cl_pindex_list;
	b->stats = cl_stats;
}
