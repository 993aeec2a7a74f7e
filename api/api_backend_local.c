/*
 * api_backend_local.c: the backend over an embedded database, used by
 * `vecdb serve` and (later) inside a storage node. Each l_* function maps
 * one backend call onto include/vecdb.h; filters arrive as JSON and are
 * compiled here.
 */
#include <errno.h>
#include <fcntl.h>
#include <string.h>

#include "api.h"
#include "filter.h"
#include "vdb.h"

/* Compile an optional JSON filter; *out stays NULL for none. */
static int
filter_get(const json_t *json, vecdb_filter **out)
{
	*out = NULL;
	if (json == NULL || json_is_null(json))
		return VECDB_OK;
	return filter_compile(json, out);
}

static int
l_collection_create(void *ctx, const vecdb_collection_config *c)
{
	return vecdb_collection_create(ctx, c);
}

static int
l_collection_get(void *ctx, const char *name, vecdb_collection_config *cfg,
    vecdb_collection_stats *st)
{
	int rv = vecdb_collection_get(ctx, name, cfg);

	return rv ? rv : vecdb_collection_stats_get(ctx, name, st);
}

static int
l_collection_list(void *ctx, char ***names, size_t *n)
{
	return vecdb_collection_list(ctx, names, n);
}

static int
l_collection_compact(void *ctx, const char *name)
{
	return vecdb_compact(ctx, name);
}

static int
l_collection_set_quantization(void *ctx, const char *name,
    const vecdb_quant_config *q)
{
	return vecdb_collection_set_quantization(ctx, name, q);
}

static int
l_collection_delete(void *ctx, const char *name)
{
	return vecdb_collection_delete(ctx, name);
}

static int
l_write(void *ctx, const char *coll, vecdb_write_op op, vecdb_point *pts,
    const vecdb_point_sparse *sparse, size_t n)
{
	/* one process holds the only copy: no replica can acknowledge */
	if (api_read_opts()->write_concern > 0)
		return vdb_err(VECDB_EINVAL, "write_concern %u: this server has "
		    "no replicas (write_concern needs a vecdb-node primary)",
		    api_read_opts()->write_concern);
	return vecdb_write(ctx, coll, op, pts, sparse, n, 0);
}

static int
l_delete(void *ctx, const char *coll, const vecdb_id *ids, size_t n,
    size_t *deleted)
{
	return vecdb_delete(ctx, coll, ids, n, deleted);
}

static int
l_get(void *ctx, const char *coll, const vecdb_id *id, vecdb_record **out)
{
	return vecdb_get(ctx, coll, id, out);
}

/* Free the filters compiled for a batch. */
static void
filters_free(vecdb_search_params *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		vecdb_filter_free((vecdb_filter *) p[i].filter);
	vdb_free(p);
}

static int
l_search(void *ctx, const char *coll, const struct api_search *s, size_t n,
    vecdb_records ***out)
{
	vecdb_search_params *p = vdb_calloc(n, sizeof(*p));
	int rv = VECDB_OK;

	if (p == NULL)
		return vdb_err(VECDB_ENOMEM, "out of memory");
	for (size_t i = 0; i < n && rv == VECDB_OK; i++) {
		vecdb_filter *f;
		p[i] = s[i].p;
		p[i].filter = NULL;
		if ((rv = filter_get(s[i].filter, &f)) == VECDB_OK)
			p[i].filter = f;
	}
	if (rv == VECDB_OK && n == 1) {
		/* One search: its errors read without a batch index. */
		vecdb_records **one = vdb_calloc(1, sizeof(*one));
		if (one == NULL)
			rv = vdb_err(VECDB_ENOMEM, "out of memory");
		else if ((rv = vecdb_search(ctx, coll, p, one)) == VECDB_OK)
			*out = one;
		else
			vdb_free(one);
	} else if (rv == VECDB_OK) {
		rv = vecdb_search_batch(ctx, coll, p, n, out);
	}
	filters_free(p, n);
	return rv;
}

static int
l_recommend(void *ctx, const char *coll, const vecdb_recommend_params *p,
    const json_t *filter, vecdb_records **out)
{
	vecdb_recommend_params q = *p;
	vecdb_filter *f;
	int rv;

	if ((rv = filter_get(filter, &f)) != VECDB_OK)
		return rv;
	q.filter = f;
	rv = vecdb_recommend(ctx, coll, &q, out);
	vecdb_filter_free(f);
	return rv;
}

static int
l_search_sparse(void *ctx, const char *coll,
    const vecdb_sparse_search_params *p, const json_t *filter,
    vecdb_records **out)
{
	vecdb_sparse_search_params q = *p;
	vecdb_filter *f;
	int rv;

	if ((rv = filter_get(filter, &f)) != VECDB_OK)
		return rv;
	q.filter = f;
	rv = vecdb_search_sparse(ctx, coll, &q, out);
	vecdb_filter_free(f);
	return rv;
}

static int
l_sparse_stats(void *ctx, const char *coll, const char *name,
    const uint32_t *indices, size_t n, uint64_t *points, uint64_t *df)
{
	return vecdb_sparse_stats(ctx, coll, name, indices, n, points, df);
}

static int
l_discover(void *ctx, const char *coll, const vecdb_discover_params *p,
    const json_t *filter, vecdb_records **out)
{
	vecdb_discover_params q = *p;
	vecdb_filter *f;
	int rv;

	if ((rv = filter_get(filter, &f)) != VECDB_OK)
		return rv;
	q.filter = f;
	rv = vecdb_discover(ctx, coll, &q, out);
	vecdb_filter_free(f);
	return rv;
}

static int
l_scroll(void *ctx, const char *coll, const vecdb_id *start, uint32_t limit,
    const json_t *filter, int with_payload, int with_vector,
    vecdb_records **out)
{
	vecdb_filter *f;
	int rv;

	if ((rv = filter_get(filter, &f)) != VECDB_OK)
		return rv;
	rv = vecdb_scroll(ctx, coll, start, limit, f, with_payload,
	    with_vector, out);
	vecdb_filter_free(f);
	return rv;
}

static int
l_count(void *ctx, const char *coll, const json_t *filter, uint64_t *out)
{
	vecdb_filter *f;
	int rv;

	if ((rv = filter_get(filter, &f)) != VECDB_OK)
		return rv;
	rv = vecdb_count(ctx, coll, f, out);
	vecdb_filter_free(f);
	return rv;
}

static int
l_write_check(void *ctx, const char *coll, vecdb_write_op op,
    const vecdb_point *pts, const vecdb_point_sparse *sparse, size_t n)
{
	return vecdb_write(ctx, coll, op, (vecdb_point *) (uintptr_t) pts,
	    sparse, n, 1);
}

static int
l_snapshot_create(void *ctx, const char *coll, const char *name,
    vecdb_snapshot_info *out)
{
	return vecdb_snapshot_create_named(ctx, coll, name, out);
}

static int
l_snapshot_list(void *ctx, const char *coll, vecdb_snapshot_info **out,
    size_t *n)
{
	return vecdb_snapshot_list(ctx, coll, out, n);
}

static int
l_snapshot_get(void *ctx, const char *coll, const char *name,
    vecdb_snapshot_info *out)
{
	return vecdb_snapshot_get(ctx, coll, name, out);
}

static int
l_snapshot_delete(void *ctx, const char *coll, const char *name)
{
	return vecdb_snapshot_delete(ctx, coll, name);
}

static int
l_snapshot_restore(void *ctx, const char *coll, const char *name)
{
	return vecdb_snapshot_restore(ctx, coll, name);
}

static int
l_snapshot_open(void *ctx, const char *coll, const char *name, int *fd)
{
	char path[4096];
	int rv;

	if ((rv = vecdb_snapshot_path(ctx, coll, name, path, sizeof(path))) !=
	    VECDB_OK)
		return rv;
	if ((*fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
		return vdb_err(errno == ENOENT ? VECDB_ENOTFOUND : VECDB_EIO,
		    "cannot read snapshot '%s': %s", name, strerror(errno));
	return VECDB_OK;
}

static int
l_snapshot_restore_file(void *ctx, const char *coll, const char *path)
{
	return vecdb_snapshot_restore_file(ctx, coll, path);
}

static int
l_payload_index_create(void *ctx, const char *coll, const char *field,
    vecdb_field_schema schema)
{
	return vecdb_payload_index_create(ctx, coll, field, schema);
}

static int
l_payload_index_delete(void *ctx, const char *coll, const char *field)
{
	return vecdb_payload_index_delete(ctx, coll, field);
}

static int
l_payload_index_list(void *ctx, const char *coll,
    vecdb_payload_index_info **out, size_t *n)
{
	return vecdb_payload_index_list(ctx, coll, out, n);
}

static int
l_stats(void *ctx, vecdb_stats *out)
{
	return vecdb_stats_get(ctx, out);
}

/* Every collection of the database with its point count. */
static int
collections_json(vecdb *db, json_t **out)
{
	vecdb_collection_stats st;
	json_t *a = json_array();
	char **names;
	size_t n;
	int rv;

	if ((rv = vecdb_collection_list(db, &names, &n)) != VECDB_OK) {
		json_decref(a);
		return rv;
	}
	for (size_t i = 0; i < n && rv == VECDB_OK; i++) {
		/* Dropped since the list: not an error, just gone. */
		if ((rv = vecdb_collection_stats_get(db, names[i], &st)) ==
		    VECDB_ENOTFOUND) {
			rv = VECDB_OK;
			continue;
		}
		if (rv == VECDB_OK)
			json_array_append_new(a, json_pack("{s:s, s:I}", "name",
			    names[i], "vectors", (json_int_t) st.vector_count));
	}
	vecdb_names_free(names, n);
	if (rv != VECDB_OK) {
		json_decref(a);
		return rv;
	}
	*out = a;
	return VECDB_OK;
}

/* One shard, one member: this process. */
static int
l_cluster_status(void *ctx, json_t **out)
{
	json_t *colls, *member;
	vecdb_stats st;
	int rv;

	if ((rv = vecdb_stats_get(ctx, &st)) != VECDB_OK ||
	    (rv = collections_json(ctx, &colls)) != VECDB_OK)
		return rv;
	member = api_cluster_member_json("local", "primary", "local",
	    st.last_seq, colls, NULL);
	*out = json_pack("{s:s, s:[{s:i, s:[o]}]}", "role", "standalone",
	    "shards", "id", 0, "members", member);
	return *out ? VECDB_OK : vdb_err(VECDB_ENOMEM, "out of memory");
}

void
api_backend_local_init(struct api_backend *b, vecdb *db)
{
	*b = (struct api_backend) {
		.ctx = db,
		.collection_create = l_collection_create,
		.collection_get = l_collection_get,
		.collection_list = l_collection_list,
		.collection_delete = l_collection_delete,
		.collection_compact = l_collection_compact,
		.collection_set_quantization = l_collection_set_quantization,
		.write = l_write,
		.delete = l_delete,
		.get = l_get,
		.search = l_search,
		.recommend = l_recommend,
		.discover = l_discover,
		.scroll = l_scroll,
		.count = l_count,
		.snapshot_create = l_snapshot_create,
		.write_check = l_write_check,
		.search_sparse = l_search_sparse,
		.sparse_stats = l_sparse_stats,
		.snapshot_list = l_snapshot_list,
		.snapshot_get = l_snapshot_get,
		.snapshot_delete = l_snapshot_delete,
		.snapshot_restore = l_snapshot_restore,
		.snapshot_open = l_snapshot_open,
		.snapshot_restore_file = l_snapshot_restore_file,
		.payload_index_create = l_payload_index_create,
		.payload_index_delete = l_payload_index_delete,
		.payload_index_list = l_payload_index_list,
		.stats = l_stats,
		.cluster_status = l_cluster_status,
	};
}
