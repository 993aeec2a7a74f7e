/*
 * api_parse_test.c: every REST handler that parses a body, called
 * directly over a fake backend, with each of its allocations failing in
 * turn. Whatever the body and wherever the failure, the handler answers
 * (any code) without a double free, a leak or a read of what it did not
 * set: run it under ASan (build-asan) to know.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api_impl.h"
#include "testutil.h"

#define DIM 4
#define FAIL_MAX 40   /* allocations a handler makes, at most, here */

/* ===== A fake backend ===== */

/* Empty records, or NULL out of memory. */
static vecdb_records *
records_empty(void)
{
	vecdb_records *r = vdb_calloc(1, sizeof(*r));

	if (r != NULL && (r->items = vdb_calloc(1, sizeof(*r->items))) ==
	    NULL) {
		vdb_free(r);
		r = NULL;
	}
	return r;
}

/* One record with a vector of DIM, or NULL out of memory. */
static vecdb_records *
records_one(void)
{
	vecdb_records *r = records_empty();

	if (r == NULL)
		return NULL;
	r->items[0].id = vecdb_id_num(UINT64_MAX);
	r->items[0].dim = DIM;
	if ((r->items[0].vector = vdb_calloc(DIM, sizeof(float))) == NULL ||
	    (r->items[0].payload = vdb_strdup("{\"a\":1}")) == NULL) {
		r->count = 1;
		vecdb_records_free(r);
		return NULL;
	}
	r->count = 1;
	return r;
}

static int
f_coll_create(void *ctx, const vecdb_collection_config *c)
{
	(void) ctx, (void) c;
	return VECDB_OK;
}

static int
f_coll_get(void *ctx, const char *name, vecdb_collection_config *cfg,
    vecdb_collection_stats *st)
{
	(void) ctx;
	vecdb_collection_config_init(cfg, name, DIM, VECDB_EUCLIDEAN);
	memset(st, 0, sizeof(*st));
	return VECDB_OK;
}

static int
f_coll_set_quant(void *ctx, const char *name, const vecdb_quant_config *q)
{
	(void) ctx, (void) name;
	if (q->type == VECDB_QUANT_BINARY)
		return vdb_err(VECDB_EINVAL, "binary quantization needs a "
		    "cosine or dot collection");
	return VECDB_OK;
}

static int
f_write(void *ctx, const char *coll, vecdb_write_op op, vecdb_point *pts,
    const vecdb_point_sparse *sparse, size_t n)
{
	(void) ctx, (void) coll, (void) op, (void) sparse;
	for (size_t i = 0; i < n; i++) {
		if (pts[i].vector != NULL && pts[i].dim != DIM)
			return vdb_err(VECDB_EDIM, "dimension %u", pts[i].dim);
		if (pts[i].id.kind == VECDB_ID_NONE)
			pts[i].id = vecdb_id_num(i + 1);
	}
	return VECDB_OK;
}

static int
f_delete(void *ctx, const char *coll, const vecdb_id *ids, size_t n,
    size_t *deleted)
{
	(void) ctx, (void) coll, (void) ids;
	*deleted = n;
	return VECDB_OK;
}

/* Point 404 is missing; every other one has a DIM vector. */
static int
f_get(void *ctx, const char *coll, const vecdb_id *id, vecdb_record **out)
{
	vecdb_record *r;

	(void) ctx, (void) coll;
	if (id->kind == VECDB_ID_NUM && id->num == 404)
		return vdb_err(VECDB_ENOTFOUND, "point 404 not found");
	if ((r = vdb_calloc(1, sizeof(*r))) == NULL)
		return vdb_err(VECDB_ENOMEM, "out of memory");
	r->id = *id;
	r->dim = DIM;
	if ((r->vector = vdb_calloc(DIM, sizeof(float))) == NULL ||
	    (r->payload = vdb_strdup("{}")) == NULL) {
		vecdb_record_free(r);
		return vdb_err(VECDB_ENOMEM, "out of memory");
	}
	*out = r;
	return VECDB_OK;
}

static int
f_search(void *ctx, const char *coll, const struct api_search *s, size_t n,
    vecdb_records ***out)
{
	vecdb_records **r = vdb_calloc(n + 1, sizeof(*r));

	(void) ctx, (void) coll;
	for (size_t i = 0; i < n; i++) {
		if (s[i].p.dim != DIM) {
			vecdb_records_free_array(r, i);
			return vdb_err(VECDB_EDIM, "dimension %u", s[i].p.dim);
		}
		if (r == NULL || (r[i] = records_one()) == NULL) {
			vecdb_records_free_array(r, i);
			return vdb_err(VECDB_ENOMEM, "out of memory");
		}
	}
	*out = r;
	return VECDB_OK;
}

static int
f_recommend(void *ctx, const char *coll, const vecdb_recommend_params *p,
    const json_t *filter, vecdb_records **out)
{
	(void) ctx, (void) coll, (void) filter;
	if (p->dim != 0 && p->dim != DIM)
		return vdb_err(VECDB_EDIM, "dimension %u", p->dim);
	if ((*out = records_one()) == NULL)
		return vdb_err(VECDB_ENOMEM, "out of memory");
	return VECDB_OK;
}

static int
f_discover(void *ctx, const char *coll, const vecdb_discover_params *p,
    const json_t *filter, vecdb_records **out)
{
	(void) ctx, (void) coll, (void) filter;
	if (p->dim != 0 && p->dim != DIM)
		return vdb_err(VECDB_EDIM, "dimension %u", p->dim);
	if ((*out = records_one()) == NULL)
		return vdb_err(VECDB_ENOMEM, "out of memory");
	return VECDB_OK;
}

static int
f_scroll(void *ctx, const char *coll, const vecdb_id *start, uint32_t limit,
    const json_t *filter, int with_payload, int with_vector,
    vecdb_records **out)
{
	(void) ctx, (void) coll, (void) start, (void) limit, (void) filter;
	(void) with_payload, (void) with_vector;
	if ((*out = records_one()) == NULL)
		return vdb_err(VECDB_ENOMEM, "out of memory");
	(*out)->has_next = 1;
	(*out)->next = vecdb_id_num(1ULL << 63);
	return VECDB_OK;
}

static int
f_count(void *ctx, const char *coll, const json_t *filter, uint64_t *out)
{
	(void) ctx, (void) coll, (void) filter;
	*out = 0;
	return VECDB_OK;
}

static int
f_pindex_create(void *ctx, const char *coll, const char *field,
    vecdb_field_schema schema)
{
	(void) ctx, (void) coll, (void) field, (void) schema;
	return VECDB_OK;
}

static int
f_snap_create(void *ctx, const char *coll, const char *name,
    vecdb_snapshot_info *out)
{
	(void) ctx, (void) name;
	memset(out, 0, sizeof(*out));
	snprintf(out->name, sizeof(out->name), "%s_1", coll);
	snprintf(out->collection, sizeof(out->collection), "%s", coll);
	return VECDB_OK;
}

static const struct api_backend fake = {
	.collection_create = f_coll_create,
	.collection_get = f_coll_get,
	.collection_set_quantization = f_coll_set_quant,
	.write = f_write,
	.delete = f_delete,
	.get = f_get,
	.search = f_search,
	.recommend = f_recommend,
	.discover = f_discover,
	.scroll = f_scroll,
	.count = f_count,
	.payload_index_create = f_pindex_create,
	.snapshot_create = f_snap_create,
};

/* ===== Driving handlers ===== */

static api_server *srv;

/* Start a server over the fake backend: the handlers need its metrics. */
static void
srv_up(void)
{
	struct api_server_config c;

	memset(&c, 0, sizeof(c));
	c.host = "127.0.0.1";
	c.threads = 1;
	ck_assert_int_eq(api_server_start(&c, &fake, &srv), VECDB_OK);
}

static void
srv_down(void)
{
	api_server_stop(srv);
	srv = NULL;
}

/* The handler of a route. */
static api_handler
route_fn(const char *method, const char *pattern)
{
	for (size_t i = 0; i < api_n_routes; i++)
		if (strcmp(api_routes[i].method, method) == 0 &&
		    strcmp(api_routes[i].pattern, pattern) == 0)
			return api_routes[i].fn;
	ck_abort_msg("no route %s %s", method, pattern);
	return NULL;
}

/* A request: method, route pattern, the path's segments, a body. */
struct call {
	const char *method;
	const char *pattern;
	const char *segs[5];
	const char *body;
};

/* Run c once, with the allocation k from now failing (0: none). */
static int
run(const struct call *c, uint64_t k)
{
	api_handler fn = route_fn(c->method, c->pattern);
	struct api_req r;
	json_error_t e;
	json_t *data = NULL;
	int rv;

	memset(&r, 0, sizeof(r));
	r.b = &fake;
	r.srv = srv;
	for (size_t i = 0; i < 5 && c->segs[i] != NULL; i++)
		r.segs[r.nsegs++] = (char *) (uintptr_t) c->segs[i];
	r.body = api_json_loadb(c->body, strlen(c->body),
	    JSON_REJECT_DUPLICATES, &e);
	ck_assert_msg(r.body != NULL, "%s: %s", c->body, e.text);
	vdb_err_clear();
	vdb_alloc_fail_after(k);
	rv = fn(&r, &data);
	vdb_alloc_fail_after(0);
	if (rv == VECDB_OK) {
		char *s = api_json_dumps(data, JSON_COMPACT);
		ck_assert_msg(s != NULL, "%s %s: no data", c->method,
		    c->pattern);
		free(s);
	} else {
		ck_assert_msg(vecdb_errmsg()[0] != '\0', "%s %s (%s), "
		    "failing allocation %llu: error %d without a message",
		    c->method, c->pattern, c->body, (unsigned long long) k,
		    rv);
	}
	json_decref(data);
	json_decref(r.body);
	return rv;
}

#define C3(p) { "collections", "c", p }
#define V4 "[0.1, 0.2, 0.3, 0.4]"
#define V3 "[0.1, 0.2, 0.3]"

static const struct call calls[] = {
	{ "POST", "collections", { "collections" }, "{\"name\": \"c\", "
	    "\"dimension\": 4, \"index_config\": {\"max_connections\": 8}, "
	    "\"quantization\": {\"scalar\": {\"quantile\": 0.9}}}" },
	{ "POST", "collections", { "collections" }, "{\"name\": \"c\", "
	    "\"dimension\": 4, \"metric\": \"l2\"}" },
	{ "POST", "collections", { "collections" }, "{\"name\": \"c\", "
	    "\"dimension\": 4, \"quantization\": {\"product\": "
	    "{\"compression\": \"x8\", \"always_ram\": true}}}" },
	{ "POST", "collections", { "collections" }, "{\"name\": \"c\", "
	    "\"dimension\": 4, \"quantization\": {\"type\": \"product\", "
	    "\"segments\": 2, \"bits\": 8}}" },
	{ "POST", "collections", { "collections" }, "{\"name\": \"c\", "
	    "\"dimension\": 4, \"quantization\": {\"scalar\": {\"type\": "
	    "\"int4\"}}}" },
	{ "PATCH", "collections/:c", { "collections", "c" },
	    "{\"quantization\": {\"scalar\": {\"type\": \"int8\", "
	    "\"quantile\": 0.9}}}" },
	{ "PATCH", "collections/:c", { "collections", "c" },
	    "{\"quantization_config\": null}" },
	{ "PATCH", "collections/:c", { "collections", "c" },
	    "{\"quantization\": \"binary\"}" },
	{ "PATCH", "collections/:c", { "collections", "c" },
	    "{\"quantization\": \"scalar\", \"name\": \"d\"}" },
	{ "POST", "collections/:c/vectors", C3("vectors"), "{\"id\": 1, "
	    "\"data\": " V4 ", \"metadata\": {\"a\": [1, 2]}}" },
	{ "POST", "collections/:c/vectors", C3("vectors"), "{\"id\": "
	    "18446744073709551615, \"data\": " V3 "}" },
	{ "POST", "collections/:c/vectors", C3("vectors"), "{\"data\": " V4
	    ", \"metadata\": {\"n\": 18446744073709551615}}" },
	{ "POST", "collections/:c/vectors/batch", C3("vectors"),
	    "{\"vectors\": [{\"id\": 1, \"data\": " V4 "}, {\"data\": " V4
	    ", \"payload\": {}}, {\"id\": \"x\", \"data\": " V4 "}]}" },
	{ "POST", "collections/:c/vectors/upsert", C3("vectors"),
	    "{\"vectors\": [{\"id\": 1, \"data\": " V4 "}, {\"id\": 2, "
	    "\"data\": " V4 ", \"metadata\": {\"k\": \"v\"}}]}" },
	{ "POST", "collections/:c/vectors/batch-delete", C3("vectors"),
	    "{\"ids\": [1, \"6ba7b810-9dad-11d1-80b4-00c04fd430c8\", "
	    "9223372036854775808]}" },
	{ "PUT", "collections/:c/vectors/:id", { "collections", "c",
	    "vectors", "7" }, "{\"data\": " V4 ", \"metadata\": {}}" },
	{ "PUT", "collections/:c/vectors/:id", { "collections", "c",
	    "vectors", "7" }, "{\"id\": 8, \"metadata\": {}}" },
	{ "POST", "collections/:c/search", C3("search"), "{\"vector\": " V4
	    ", \"limit\": 3, \"params\": {\"hnsw_ef\": 32}, \"filter\": "
	    "{\"must\": [{\"key\": \"a\", \"match\": {\"value\": 1}}]}}" },
	{ "POST", "collections/:c/search", C3("search"), "{\"vector\": " V4
	    ", \"fliter\": {}}" },
	{ "POST", "collections/:c/search", C3("search"), "{\"vector\": " V4
	    ", \"params\": {\"quantization\": {\"ignore\": false, "
	    "\"rescore\": false, \"oversampling\": 2}}}" },
	{ "POST", "collections/:c/search", C3("search"), "{\"vector\": " V4
	    ", \"params\": {\"quantization\": {\"oversampling\": 0.5}}}" },
	{ "POST", "collections/:c/points/search/batch", C3("points"),
	    "{\"searches\": [{\"vector\": " V4 "}, {\"vector\": " V4 ", "
	    "\"params\": {\"quantization\": {\"ignore\": true}}}]}" },
	{ "POST", "collections/:c/points/search/batch", C3("points"),
	    "{\"searches\": [{\"vector\": " V4 "}, {\"vector\": " V4 ", "
	    "\"with_vector\": true}]}" },
	{ "POST", "collections/:c/points/search/batch", C3("points"),
	    "{\"searches\": [{\"vector\": " V4 "}, {\"vector\": " V3 "}]}" },
	{ "POST", "collections/:c/points/recommend", C3("points"),
	    "{\"positive\": [1, " V4 ", 18446744073709551615], \"negative\": "
	    "[2, " V4 "], \"strategy\": \"best_score\"}" },
	{ "POST", "collections/:c/points/recommend", C3("points"),
	    "{\"positive\": [1, " V4 "], \"negative\": [" V3 "]}" },
	{ "POST", "collections/:c/points/discover", C3("points"),
	    "{\"target\": 29, \"context\": [{\"positive\": 8, \"negative\": "
	    V3 "}], \"limit\": 5}" },
	{ "POST", "collections/:c/points/discover", C3("points"),
	    "{\"target\": 29, \"context\": [{\"positive\": " V3 ", "
	    "\"negative\": 8}]}" },
	{ "POST", "collections/:c/points/discover", C3("points"),
	    "{\"target\": " V4 ", \"context\": [{\"positive\": 8, "
	    "\"negative\": " V4 "}, {\"positive\": 1, \"negative\": 2}, "
	    "{\"positive\": " V4 ", \"negative\": " V4 "}]}" },
	{ "POST", "collections/:c/points/discover", C3("points"),
	    "{\"target\": " V3 ", \"context\": [{\"positive\": 8, "
	    "\"negative\": " V4 "}]}" },
	{ "POST", "collections/:c/points/discover", C3("points"),
	    "{\"context\": [{\"positive\": 8, \"negative\": 404}]}" },
	{ "POST", "collections/:c/points/scroll", C3("points"), "{\"limit\": "
	    "2, \"offset\": 18446744073709551615, \"with_vectors\": true}" },
	{ "POST", "collections/:c/points/count", C3("points"), "{\"filter\": "
	    "{\"must\": [{\"key\": \"a\", \"range\": {\"gt\": 1}}]}}" },
	{ "POST", "collections/:c/index", C3("index"), "{\"field_name\": "
	    "\"a\", \"field_schema\": \"keyword\"}" },
	{ "POST", "collections/:c/snapshots", C3("snapshots"), "{}" },
};

START_TEST(every_allocation_failure_is_survived)
{
	const struct call *c = &calls[_i];

	run(c, 0);
	for (uint64_t k = 1; k <= FAIL_MAX; k++)
		run(c, k);
}
END_TEST

static Suite *
api_parse_suite(void)
{
	Suite *s = suite_create("api_parse");
	TCase *tc = tcase_create("handlers");

	tcase_add_checked_fixture(tc, srv_up, srv_down);
	tcase_add_loop_test(tc, every_allocation_failure_is_survived, 0,
	    (int) (sizeof(calls) / sizeof(calls[0])));
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	return tu_run(api_parse_suite());
}
