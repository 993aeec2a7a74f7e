/*
 * gen_seeds.c: writes the seed corpora of fuzz/corpus/ (docs/FUZZING.md).
 *
 *   build-fuzz/fuzz/gen_seeds fuzz/corpus
 *
 * Every seed is a real input: REST bodies and filters from docs/API.md and
 * docs/FILTERS.md, wire messages from proto/'s own encoders, WAL records
 * read off a primary that starts where the fuzz targets' databases start,
 * snapshot files and HNSW checkpoints written by the engine. Files are
 * named seed-*; regression inputs added by hand are named regress-* and
 * are never touched here.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fuzz.h"
#include "hnsw.h"
#include "proto.h"
#include "storage_repl.h"
#include "vdb.h"

static const char *out_dir;

/* Abort unless rv is VECDB_OK. */
static void
ok(int rv, const char *what)
{
	if (rv != VECDB_OK) {
		fprintf(stderr, "gen_seeds: %s: %s (%s)\n", what,
		    vecdb_strerror(rv), vecdb_errmsg());
		exit(1);
	}
}

/* Write seed-<name> of target t. */
static void
seed(const char *t, const char *name, const void *d, size_t n)
{
	char path[4096];

	snprintf(path, sizeof(path), "%s/%s", out_dir, t);
	if (mkdir(path, 0755) != 0 && errno != EEXIST) {
		perror(path);
		exit(1);
	}
	snprintf(path, sizeof(path), "%s/%s/seed-%s", out_dir, t, name);
	fz_file_write(path, d, n);
}

/* A text seed. */
static void
seed_text(const char *t, const char *name, const char *s)
{
	seed(t, name, s, strlen(s));
}

/* An encoded message as a seed; frees it. */
static void
seed_msg(const char *t, const char *name, uint8_t *d, size_t n)
{
	seed(t, name, d, n);
	vdb_free(d);
}

/* ===== Text: REST bodies, filters, YAML ===== */

static const char *const rest[][3] = {
	/* target, name, request */
	{ "rest_points", "insert", "POST collections/places/vectors\n"
	  "{\"id\": 1, \"data\": [9, 9]}" },
	{ "rest_points", "insert-uuid", "POST collections/docs/vectors\n"
	  "{\"id\": \"5c56c793-69f3-4fbf-87e6-c4bf54c28c26\", \"vector\": "
	  "[0.5, 0.25, 1], \"payload\": {\"tags\": [\"x\"]}}" },
	{ "rest_points", "insert-noid", "POST collections/bytes/vectors\n"
	  "{\"data\": [1, 2, 3, 255], \"metadata\": {\"k\": \"v\"}}" },
	{ "rest_points", "upsert", "POST collections/places/vectors/upsert\n"
	  "{\"vectors\": [{\"id\": 1, \"data\": [0, 0], \"metadata\": "
	  "{\"kind\": \"cafe\", \"rating\": 4}}, {\"id\": 2, \"data\": [3, "
	  "4], \"metadata\": {\"kind\": \"bar\", \"rating\": 5}}, {\"id\": 3, "
	  "\"data\": [6, 8], \"metadata\": {\"kind\": \"cafe\", \"rating\": "
	  "2}}, {\"id\": 4, \"data\": [0, 1], \"metadata\": {\"kind\": "
	  "\"shop\", \"rating\": 3}}]}" },
	{ "rest_points", "batch-wc", "POST collections/places/vectors/batch\n"
	  "{\"write_concern\": 2, \"vectors\": [{\"id\": 7, \"data\": "
	  "[1, 1]}]}" },
	{ "rest_points", "batch", "POST collections/places/vectors/batch\n"
	  "{\"vectors\": [{\"id\": 5, \"data\": [1, 1]}, {\"id\": 6, \"data\": "
	  "[2, 2], \"metadata\": {\"kind\": \"bar\"}}]}" },
	{ "rest_points", "batch-dup", "POST collections/places/vectors/batch\n"
	  "{\"vectors\": [{\"id\": 5, \"data\": [1, 1]}, {\"id\": 1, \"data\": "
	  "[1, 2]}]}" },
	{ "rest_points", "upsert-sparse", "POST collections/hybrid/vectors/"
	  "upsert\n{\"vectors\": [{\"id\": 9, \"data\": [1, 1], \"vectors\": "
	  "{\"text\": {\"indices\": [5, 1], \"values\": [1, 2]}, "
	  "\"tags\": {\"indices\": [], \"values\": []}}}]}" },
	{ "rest_points", "upsert-named", "POST collections/hybrid/vectors/"
	  "upsert\n{\"vectors\": [{\"id\": 10, \"data\": [0, 1], \"vectors\": "
	  "{\"image\": [0.5, 1, -2], \"tags\": {\"indices\": [1], "
	  "\"values\": [3]}}}]}" },
	{ "rest_points", "put-named", "PUT collections/hybrid/vectors/3\n"
	  "{\"vectors\": {\"image\": null, \"text\": {\"indices\": [2], "
	  "\"values\": [1]}}}" },
	{ "rest_points", "put-sparse", "PUT collections/hybrid/vectors/1\n"
	  "{\"vectors\": {\"text\": null, \"tags\": {\"indices\": [8], "
	  "\"values\": [0.5]}}}" },
	{ "rest_points", "put", "PUT collections/places/vectors/2\n"
	  "{\"metadata\": {\"kind\": \"bar\", \"rating\": 4}}" },
	{ "rest_points", "put-data", "PUT collections/docs/vectors/"
	  "0b6a2e1e-3c8e-4f0a-9d4b-9f1f7f1c2a11\n{\"data\": [1, 2, 3]}" },
	{ "rest_points", "get", "GET collections/places/vectors/2\n" },
	{ "rest_points", "get-escaped", "GET collections/pl%61ces/vectors/"
	  "%32?consistency=any\n" },
	{ "rest_points", "delete", "DELETE collections/places/vectors/6\n" },
	{ "rest_points", "batch-delete",
	  "POST collections/places/vectors/batch-delete\n"
	  "{\"ids\": [4, 99, \"f0e1d2c3-b4a5-4697-8879-6a5b4c3d2e1f\"]}" },
	{ "rest_query", "search", "POST collections/places/search\n"
	  "{\"vector\": [0, 0], \"limit\": 3}" },
	{ "rest_query", "search-opts", "POST collections/places/search"
	  "?consistency=primary&allow_partial=true\n{\"vector\": [1, 2], "
	  "\"write_concern\": 1, \"consistency\": \"any\"}" },
	{ "rest_query", "search-filter", "POST collections/places/search\n"
	  "{\"vector\": [0, 0], \"limit\": 3, \"filter\": {\"must\": "
	  "[{\"key\": \"kind\", \"match\": {\"value\": \"cafe\"}}], "
	  "\"must_not\": [{\"key\": \"rating\", \"range\": {\"lt\": 3}}]}}" },
	{ "rest_query", "search-params", "POST collections/docs/search\n"
	  "{\"vector\": [1, 0.5, 0], \"limit\": 2, \"offset\": 1, "
	  "\"with_vectors\": true, \"with_payload\": false, \"params\": "
	  "{\"hnsw_ef\": 32, \"exact\": false}, \"filter\": {\"should\": "
	  "[{\"key\": \"loc\", \"geo_radius\": {\"center\": {\"lat\": 52.5, "
	  "\"lon\": 13.4}, \"radius\": 5000}}, {\"key\": \"a.b.c\", "
	  "\"range\": {\"gte\": 7}}]}}" },
	{ "rest_query", "search-exact", "POST collections/bytes/search\n"
	  "{\"vector\": [1, 2, 3, 4], \"exact\": true, \"ef_search\": 8}" },
	{ "rest_query", "search-dim", "POST collections/places/search\n"
	  "{\"vector\": [0, 0, 0]}" },
	{ "rest_query", "search-sparse", "POST collections/hybrid/search\n"
	  "{\"sparse_vector\": {\"using\": \"text\", \"indices\": [42, 1], "
	  "\"values\": [1, 0.5]}, \"limit\": 2, \"filter\": {\"must\": "
	  "[{\"key\": \"n\", \"match\": {\"value\": 1}}]}, "
	  "\"with_vector\": true}" },
	{ "rest_query", "search-using", "POST collections/hybrid/search\n"
	  "{\"vector\": [1, 2, 2.5], \"using\": \"image\", \"limit\": 2, "
	  "\"with_vector\": true}" },
	{ "rest_query", "recommend-using", "POST collections/hybrid/points/"
	  "recommend\n{\"positive\": [1], \"negative\": [[0, 0, 1]], "
	  "\"using\": \"image\", \"limit\": 2}" },
	{ "rest_query", "discover-using", "POST collections/hybrid/points/"
	  "discover\n{\"target\": 3, \"context\": [{\"positive\": 1, "
	  "\"negative\": [1, 1, 1]}], \"using\": \"image\"}" },
	{ "rest_query", "hybrid-using", "POST collections/hybrid/search/"
	  "hybrid\n{\"dense\": {\"vector\": [1, 2, 3], \"using\": "
	  "\"image\"}, \"sparse\": {\"using\": \"text\", \"indices\": [7], "
	  "\"values\": [1]}, \"limit\": 2}" },
	{ "rest_query", "hybrid", "POST collections/hybrid/search/hybrid\n"
	  "{\"dense\": {\"vector\": [1, 0.5]}, \"sparse\": {\"using\": "
	  "\"tags\", \"indices\": [3], \"values\": [2]}, \"fusion\": "
	  "\"dbsf\", \"limit\": 3, \"prefetch_limit\": 10, \"alpha\": 0.5, "
	  "\"rrf_k\": 10, \"with_payload\": false}" },
	{ "rest_query", "batch", "POST collections/places/points/search/batch\n"
	  "{\"searches\": [{\"vector\": [6, 8], \"limit\": 1}, {\"vector\": "
	  "[0, 1], \"limit\": 2}]}" },
	{ "rest_query", "recommend",
	  "POST collections/places/points/recommend\n"
	  "{\"positive\": [2], \"negative\": [4], \"limit\": 2}" },
	{ "rest_query", "recommend-best",
	  "POST collections/docs/points/recommend\n"
	  "{\"positive\": [[1, 0, 0], \"5c56c793-69f3-4fbf-87e6-c4bf54c28c26\"]"
	  ", \"negative\": [[0, 0, 1]], \"strategy\": \"best_score\", "
	  "\"with_vector\": true, \"filter\": {\"must\": {\"key\": \"flag\", "
	  "\"match\": {\"value\": true}}}}" },
	{ "rest_query", "discover", "POST collections/places/points/discover\n"
	  "{\"target\": [0, 0], \"context\": [{\"positive\": 3, \"negative\": "
	  "4}], \"limit\": 2}" },
	{ "rest_query", "discover-vectors",
	  "POST collections/places/points/discover\n"
	  "{\"target\": 1, \"context\": [{\"positive\": [1, 1], \"negative\": "
	  "2}, {\"positive\": [5, 5], \"negative\": [0, 9]}], \"offset\": 1}" },
	{ "rest_query", "scroll", "POST collections/places/points/scroll\n"
	  "{\"limit\": 2, \"offset\": 3}" },
	{ "rest_query", "scroll-filter", "POST collections/docs/points/scroll\n"
	  "{\"limit\": 1, \"with_vector\": true, \"filter\": {\"must\": "
	  "[{\"nested\": {\"key\": \"diet\", \"filter\": {\"must\": [{\"key\": "
	  "\"food\", \"match\": {\"value\": \"meat\"}}, {\"key\": \"likes\", "
	  "\"match\": {\"value\": true}}]}}}]}}" },
	{ "rest_query", "count", "POST collections/places/points/count\n"
	  "{\"filter\": {\"must\": [{\"key\": \"kind\", \"match\": {\"any\": "
	  "[\"cafe\", \"shop\"]}}]}}" },
	{ "rest_query", "count-except", "POST collections/docs/points/count\n"
	  "{\"exact\": true, \"filter\": {\"must\": [{\"key\": \"tags[]\", "
	  "\"match\": {\"except\": [\"a\", 3]}}, {\"key\": \"n\", \"range\": "
	  "{\"gt\": -2, \"lte\": 1e300}}]}}" },
	{ "rest_query", "count-empty", "POST collections/places/points/count\n"
	  "{}" },
	{ "rest_config", "create-sparse", "POST collections\n"
	  "{\"name\": \"sp\", \"dimension\": 2, \"sparse_vectors\": "
	  "{\"text\": {\"modifier\": \"idf\"}, \"tags\": null}}" },
	{ "rest_config", "create-named", "POST collections\n"
	  "{\"name\": \"nv\", \"vectors\": {\"image\": {\"dimension\": 3, "
	  "\"distance_metric\": \"dot\", \"vector_type\": \"float16\", "
	  "\"index_config\": {\"max_connections\": 8}, \"quantization\": "
	  "\"scalar\"}}, \"sparse_vectors\": {\"text\": {}}}" },
	{ "rest_config", "create", "POST collections\n"
	  "{\"name\": \"places2\", \"dimension\": 2, \"distance_metric\": "
	  "\"euclidean\"}" },
	{ "rest_config", "create-full", "POST collections\n"
	  "{\"name\": \"articles\", \"dimension\": 384, \"distance_metric\": "
	  "\"cosine\", \"index_config\": {\"max_connections\": 16, "
	  "\"ef_construction\": 200}}" },
	{ "rest_config", "create-exists", "POST collections\n"
	  "{\"name\": \"places\", \"dimension\": 2}" },
	{ "rest_config", "index", "POST collections/places/index\n"
	  "{\"field_name\": \"kind2\", \"field_schema\": \"keyword\"}" },
	{ "rest_config", "index-geo", "POST collections/docs/index\n"
	  "{\"field_name\": \"diet[].food\", \"field_schema\": \"geo\"}" },
	{ "rest_config", "promote", "POST cluster/promote\n"
	  "{\"node\": \"node-2\"}" },
	{ "rest_config", "snapshot-get", "GET collections/places/snapshots/"
	  "places_1700000000\n" },
	{ "rest_config", "snapshot-list", "GET collections/docs/snapshots\n" },
};

static const char *const filters[][2] = {
	{ "match", "{\"must\": [{\"key\": \"kind\", \"match\": {\"value\": "
	  "\"cafe\"}}], \"must_not\": [{\"key\": \"rating\", \"range\": "
	  "{\"lt\": 3}}]}" },
	{ "any", "{\"must\": [{\"key\": \"kind\", \"match\": {\"any\": "
	  "[\"cafe\", \"shop\", 4, true]}}]}" },
	{ "except", "{\"should\": [{\"key\": \"tags[]\", \"match\": "
	  "{\"except\": [\"a\"]}}, {\"key\": \"t\", \"match\": {\"value\": "
	  "false}}]}" },
	{ "nested", "{\"must\": [{\"nested\": {\"key\": \"diet\", \"filter\": "
	  "{\"must\": [{\"key\": \"food\", \"match\": {\"value\": \"meat\"}}, "
	  "{\"key\": \"likes\", \"match\": {\"value\": true}}]}}}]}" },
	{ "geo", "{\"must\": {\"key\": \"loc\", \"geo_radius\": {\"center\": "
	  "{\"lat\": 52.5, \"lon\": 13.4}, \"radius\": 10000.5}}}" },
	{ "range", "{\"must\": [{\"key\": \"a.b.c\", \"range\": {\"gt\": 1, "
	  "\"gte\": null, \"lte\": 9007199254740993}}], \"should\": null}" },
	{ "sub", "{\"should\": [{\"must\": [{\"key\": \"n\", \"range\": "
	  "{\"lt\": 4.5}}]}, {\"must_not\": {\"key\": \"s\", \"match\": "
	  "{\"value\": \"\\u00e9\"}}}]}" },
	{ "empty", "{}" },
	{ "payload", "{\"must\": [{\"key\": \"x.y\", \"match\": {\"value\": "
	  "3}}]}\0{\"x\": [{\"y\": 3.0}, {\"y\": [3]}, 3]}" },
};

static const char *const json_texts[][2] = {
	{ "ids", "{\"ids\": [18446744073709551615, 9223372036854775808, "
	  "9223372036854775807, 0, \"5c56c793-69f3-4fbf-87e6-c4bf54c28c26\"]}" },
	{ "body", "{\"id\": 18446744073709551615, \"data\": [0.5, -1e-3, "
	  "3], \"metadata\": {\"s\": \"\\\"18446744073709551615\\\"\", "
	  "\"n\": -9223372036854775808}}" },
	{ "too-big", "[18446744073709551616, 1]" },
	{ "nul", "{\"k\": \"a\\u0000b\", \"id\": 18446744073709551615}" },
	{ "error", "{\"a\": 18446744073709551615, \"b\": 18446744073709551614"
	  ",\n \"c\": }" },
	{ "scalar", "12345678901234567890" },
};

static const char *const yamls[][2] = {
	{ "docs", "data_dir: ./data\nport: 8080\napi_key: change-me\n"
	  "collections:\n  - name: articles\n    dimension: 384\n"
	  "    distance_metric: cosine\n"
	  "    index_config: {max_connections: 16, ef_construction: 200}\n" },
	{ "settings", "host: 0.0.0.0\nport: \"9000\"\nmax_body: 64M\n"
	  "threads: 8\ndurability: buffered\nread_only_api_key: ro\n"
	  "tls_cert: ~\ntls_key: null\n" },
	{ "collections", "collections:\n- name: a\n  dimension: 3\n"
	  "  distance_metric: dot\n  vector_type: float16\n"
	  "- {name: b, dimension: 8, distance_metric: manhattan, "
	  "quantization_config: {type: scalar, quantile: 0.99}}\n"
	  "- name: a\n  dimension: 3\n" },
	{ "scalars", "port: 0x10\nmax_body: 1.5e3\nthreads: yes\n"
	  "data_dir: 'quoted'\nhost: \"127.0.0.1\"\nlist: [1, -2, 3.0, "
	  "true, False, ~, '', \"x\"]\n" },
	{ "empty", "" },
	{ "document", "---\nport: 8080\n...\n" },
};

/* Every text seed. */
static void
seeds_text(void)
{
	char name[64];

	for (size_t i = 0; i < sizeof(rest) / sizeof(rest[0]); i++)
		seed_text(rest[i][0], rest[i][1], rest[i][2]);
	for (size_t i = 0; i < sizeof(filters) / sizeof(filters[0]); i++) {
		/* "payload" carries a NUL: its length is both parts */
		size_t n = strlen(filters[i][1]);
		if (strcmp(filters[i][0], "payload") == 0)
			n += 1 + strlen(filters[i][1] + n + 1);
		seed("filter", filters[i][0], filters[i][1], n);
	}
	for (size_t i = 0; i < sizeof(json_texts) / sizeof(json_texts[0]); i++)
		seed_text("json_text", json_texts[i][0], json_texts[i][1]);
	for (size_t i = 0; i < sizeof(yamls) / sizeof(yamls[0]); i++) {
		snprintf(name, sizeof(name), "%s.yaml", yamls[i][0]);
		seed_text("yaml", name, yamls[i][1]);
	}
}

/* ===== Wire messages ===== */

/* A Request envelope around an argument message; frees the body. */
static void
seed_request(const char *name, uint32_t method, uint8_t *body, size_t n)
{
	uint8_t *d;
	size_t len;

	ok(proto_request_encode_opts(method, "key", 7, method == PROTO_SEARCH,
	    method == PROTO_COUNT, body, n, &d, &len), name);
	seed_msg("proto_request", name, d, len);
	vdb_free(body);
}

/* A Response envelope around a result, prefixed by the method byte. */
static void
seed_response(const char *name, uint32_t method, uint8_t *body, size_t n)
{
	static const uint32_t missing[] = { 1, 3 };
	uint8_t *d, *s;
	size_t len;

	if (method == PROTO_SEARCH)
		ok(proto_response_encode_missing(PROTO_OK, "", body, n,
		    missing, 2, &d, &len), name);
	else
		ok(proto_response_encode(PROTO_OK, "", body, n, &d, &len),
		    name);
	if ((s = malloc(len + 1)) == NULL)
		exit(1);
	s[0] = (uint8_t) method;
	if (len > 0)
		memcpy(s + 1, d, len);
	seed("proto_response", name, s, len + 1);
	free(s);
	vdb_free(d);
	vdb_free(body);
}

static const float qv[3] = { 0.5f, -1, 2 };
static const char *const filt = "{\"must\": [{\"key\": \"kind\", \"match\": "
    "{\"value\": \"cafe\"}}]}";

/* Requests of the collection, point and admin methods. */
static void
seeds_requests_admin(void)
{
	vecdb_collection_config c;
	vecdb_point p[2];
	vecdb_id ids[2];
	uint8_t *b;
	size_t n;

	vecdb_collection_config_init(&c, "places", 3, VECDB_DOT);
	c.vector_type = VECDB_FLOAT16;
	c.quantization.type = VECDB_QUANT_BINARY;
	ok(proto_collection_create_encode(&c, &b, &n), "create");
	seed_request("create", PROTO_CREATE_COLLECTION, b, n);
	ok(proto_target_encode(PROTO_GET_COLLECTION, "places", NULL, 0, &b,
	    &n), "get coll");
	seed_request("get-collection", PROTO_GET_COLLECTION, b, n);
	ok(proto_target_encode(PROTO_COMPACT_COLLECTION, "places", NULL, 0,
	    &b, &n), "compact");
	seed_request("compact", PROTO_COMPACT_COLLECTION, b, n);
	ok(proto_target_encode(PROTO_SNAPSHOT_RESTORE, "places", "snap_1", 0,
	    &b, &n), "restore");
	seed_request("snapshot-restore", PROTO_SNAPSHOT_RESTORE, b, n);
	ok(proto_target_encode(PROTO_PAYLOAD_INDEX_CREATE, "places", "a.b",
	    VECDB_FIELD_GEO, &b, &n), "pindex");
	seed_request("pindex-create", PROTO_PAYLOAD_INDEX_CREATE, b, n);
	ids[0] = vecdb_id_num(7);
	ok(vecdb_id_parse("5c56c793-69f3-4fbf-87e6-c4bf54c28c26", &ids[1]),
	    "uuid");
	p[0] = (vecdb_point) { ids[0], qv, 3, "{\"kind\": \"cafe\"}" };
	p[1] = (vecdb_point) { ids[1], NULL, 0, "{}" };
	ok(proto_write_wc_encode("places", 2, 1, p, 2, &b, &n), "write");
	seed_request("write", PROTO_WRITE, b, n);
	ok(proto_write_check_encode("places", 0, p, 1, &b, &n), "check");
	seed_request("write-check", PROTO_WRITE, b, n);
	ok(proto_delete_encode("places", ids, 2, &b, &n), "delete");
	seed_request("delete", PROTO_DELETE, b, n);
	ok(proto_get_encode("places", &ids[1], &b, &n), "get");
	seed_request("get", PROTO_GET, b, n);
	seed_request("list", PROTO_LIST_COLLECTIONS, NULL, 0);
	seed_request("health", PROTO_HEALTH, NULL, 0);
}

/* Requests of the query methods. */
static void
seeds_requests_query(void)
{
	vecdb_search_params sp[2];
	vecdb_recommend_params rp;
	vecdb_discover_params dp;
	vecdb_context_pair pair = { vecdb_id_num(3), vecdb_id_num(4) };
	vecdb_id ids[2] = { vecdb_id_num(2), vecdb_id_num(4) };
	vecdb_id start = vecdb_id_num(3);
	const char *const fl[2] = { filt, NULL };
	uint8_t *b;
	size_t n;

	memset(sp, 0, sizeof(sp));
	sp[0] = (vecdb_search_params) { qv, 3, 5, 1, NULL, 32, 0, 1, 1, 0, 0, 0,
		NULL };
	sp[1] = (vecdb_search_params) { qv, 3, 1, 0, NULL, 0, 1, 0, 0, 0, 0, 0,
		NULL };
	ok(proto_search_encode("places", sp, fl, 2, &b, &n), "search");
	seed_request("search", PROTO_SEARCH, b, n);
	memset(&rp, 0, sizeof(rp));
	rp.positive = ids;
	rp.n_positive = 1;
	rp.negative = ids + 1;
	rp.n_negative = 1;
	rp.positive_vectors = qv;
	rp.n_positive_vectors = 1;
	rp.dim = 3;
	rp.strategy = VECDB_RECO_BEST_SCORE;
	rp.limit = 2;
	ok(proto_recommend_encode("places", &rp, filt, &b, &n), "recommend");
	seed_request("recommend", PROTO_RECOMMEND, b, n);
	memset(&dp, 0, sizeof(dp));
	dp.has_target = 1;
	dp.target_vector = qv;
	dp.dim = 3;
	dp.context = &pair;
	dp.n_context = 1;
	dp.exclude = ids;
	dp.n_exclude = 2;
	dp.limit = 2;
	ok(proto_discover_encode("places", &dp, NULL, &b, &n), "discover");
	seed_request("discover", PROTO_DISCOVER, b, n);
	ok(proto_scroll_encode("places", &start, 2, filt, 1, 1, &b, &n),
	    "scroll");
	seed_request("scroll", PROTO_SCROLL, b, n);
	ok(proto_count_encode("places", filt, &b, &n), "count");
	seed_request("count", PROTO_COUNT, b, n);
	{
		static const uint32_t ix[] = { 42, 1 };
		static const float val[] = { 1, 0.5f };
		vecdb_sparse_search_params ssp = { "text", ix, val, 2, 3, 1,
			NULL, 1, 1, 1 };

		ok(proto_sparse_search_encode(FZ_HYBRID, &ssp, filt, &b, &n),
		    "sparse search");
		seed_request("sparse-search", PROTO_SPARSE_SEARCH, b, n);
		ok(proto_sparse_stats_encode(FZ_HYBRID, "text", ix, 2, &b,
		    &n), "sparse stats");
		seed_request("sparse-stats", PROTO_SPARSE_STATS, b, n);
	}
}

/* Requests of replication and promotion. */
static void
seeds_requests_repl(void)
{
	struct proto_fetch_wal f = { 12, 100, 1 << 20, 500, "replica-1", 1,
		2 };
	struct proto_bootstrap_chunk c = { 99, 4096, 65536 };
	uint8_t *b;
	size_t n;

	ok(proto_fetch_wal_encode(&f, &b, &n), "fetch");
	seed_request("fetch-wal", PROTO_FETCH_WAL, b, n);
	ok(proto_bootstrap_begin_encode("replica-1", &b, &n), "begin");
	seed_request("bootstrap-begin", PROTO_BOOTSTRAP_BEGIN, b, n);
	ok(proto_bootstrap_chunk_encode(&c, &b, &n), "chunk");
	seed_request("bootstrap-chunk", PROTO_BOOTSTRAP_CHUNK, b, n);
	ok(proto_promote_encode(3, &b, &n), "promote");
	seed_request("promote", PROTO_PROMOTE, b, n);
	ok(proto_follow_encode("tcp://127.0.0.1:7001", 4, &b, &n), "follow");
	seed_request("follow", PROTO_FOLLOW, b, n);
}

/* Requests that move snapshot files in pieces (router <-> nodes). */
static void
seeds_requests_snapfile(void)
{
	static const uint8_t piece[] = "VDBSNAP1 the first piece of a file";
	struct proto_snapshot_read rq = { "places", "places_1700000000",
		4096, 65536 };
	struct proto_snapshot_upload up = { "places", 0x1234567890abcdefULL,
		0, piece, sizeof(piece) - 1, 1 };
	uint8_t *b;
	size_t n;

	ok(proto_snapshot_read_encode(&rq, &b, &n), "snapshot read");
	seed_request("snapshot-read", PROTO_SNAPSHOT_READ, b, n);
	ok(proto_snapshot_upload_encode(&up, &b, &n), "snapshot upload");
	seed_request("snapshot-upload", PROTO_SNAPSHOT_UPLOAD, b, n);
}

/* Responses carrying records (get, search, scroll). */
static void
seeds_responses_records(void)
{
	float v[2] = { 3, 4 };
	vecdb_record r[2] = {
		{ .id = vecdb_id_num(2), .vector = v, .dim = 2,
		    .payload = "{\"kind\": \"bar\"}", .distance = 0.5f,
		    .context_hits = 1 },
		{ .id = vecdb_id_num(9), .distance = 1.25f },
	};
	vecdb_records rs = { 2, r, 1, { VECDB_ID_NUM, 10, { 0 } } };
	vecdb_records *lists[2] = { &rs, &rs };
	uint8_t *b;
	size_t n;

	ok(vecdb_id_parse("5c56c793-69f3-4fbf-87e6-c4bf54c28c26", &r[1].id),
	    "uuid");
	ok(proto_record_encode(&r[0], &b, &n), "record");
	seed_response("get", PROTO_GET, b, n);
	ok(proto_records_encode(&rs, &b, &n), "records");
	seed_response("scroll", PROTO_SCROLL, b, n);
	ok(proto_search_result_encode(lists, 2, &b, &n), "search result");
	seed_response("search", PROTO_SEARCH, b, n);
}

/* Responses of the collection, admin and node methods. */
static void
seeds_responses_admin(void)
{
	static char *const names[] = { "docs", "places" };
	vecdb_collection_config c;
	vecdb_collection_stats st = { .vector_count = 4, .dimension = 2,
		.disk_bytes = 8192, .memory_bytes = 1024, .indexed_count = 3,
		.pending_count = 1, .dead_count = 1, .dead_ratio = 0.25 };
	vecdb_snapshot_info si = { "places_1", "places", 1700000000, 4242,
		4, "ab" };
	vecdb_payload_index_info pi[2] = { { "kind", VECDB_FIELD_KEYWORD, 4 },
		{ "loc", VECDB_FIELD_GEO, 2 } };
	vecdb_stats s = { .collections = 2, .vectors = 7,
		.disk_bytes = 1 << 20, .memory_bytes = 1 << 16, .last_seq = 42,
		.index_builds = 1, .index_build_seconds = 0.5,
		.index_build_buckets = { 1 }, .wal_records = 42 };
	struct proto_health h = { "ok", "0.1.0", "replica", "node-2", 42, 3,
		"tcp://127.0.0.1:7000", 4 };
	vecdb_point p = { vecdb_id_num(5), NULL, 0, NULL };
	uint8_t *b;
	size_t n;

	vecdb_collection_config_init(&c, "places", 2, VECDB_EUCLIDEAN);
	ok(proto_collection_info_encode(&c, &st, &b, &n), "info");
	seed_response("collection", PROTO_GET_COLLECTION, b, n);
	ok(proto_names_encode(names, 2, &b, &n), "names");
	seed_response("list", PROTO_LIST_COLLECTIONS, b, n);
	ok(proto_ids_encode(&p, 1, &b, &n), "ids");
	seed_response("write", PROTO_WRITE, b, n);
	ok(proto_deleted_encode(3, &b, &n), "deleted");
	seed_response("delete", PROTO_DELETE, b, n);
	ok(proto_count_result_encode(4, &b, &n), "count");
	seed_response("count", PROTO_COUNT, b, n);
	{
		static const uint64_t df[4] = { 1, 0, 7, 3 };

		ok(proto_sparse_stats_result_encode(9, df, 4, &b, &n),
		    "sparse stats");
		seed_response("sparse-stats", PROTO_SPARSE_STATS, b, n);
	}
	ok(proto_snapshot_info_encode(&si, &b, &n), "snapshot");
	seed_response("snapshot", PROTO_SNAPSHOT_GET, b, n);
	ok(proto_snapshot_list_encode(&si, 1, &b, &n), "snapshots");
	seed_response("snapshot-list", PROTO_SNAPSHOT_LIST, b, n);
	ok(proto_pindex_list_encode(pi, 2, &b, &n), "pindexes");
	seed_response("pindex-list", PROTO_PAYLOAD_INDEX_LIST, b, n);
	ok(proto_stats_encode(&s, &b, &n), "stats");
	seed_response("stats", PROTO_STATS, b, n);
	ok(proto_health_encode(&h, &b, &n), "health");
	seed_response("health", PROTO_HEALTH, b, n);
}

/* Responses of replication, and an error envelope. */
static void
seeds_responses_repl(const uint8_t *blob, size_t blob_len)
{
	struct proto_wal_batch wb = { (uint8_t *) blob, blob_len, 2, 44, 1, 1,
		0, 0 };
	struct proto_bootstrap_info bi = { 7, 1 << 20, { 1, 2, 3 } };
	static const uint8_t chunk[] = "a chunk of an LMDB file";
	uint8_t *b, *d;
	size_t n;

	ok(proto_wal_batch_encode(&wb, &b, &n), "wal batch");
	seed_response("wal-batch", PROTO_FETCH_WAL, b, n);
	ok(proto_bootstrap_info_encode(&bi, &b, &n), "bootstrap info");
	seed_response("bootstrap-info", PROTO_BOOTSTRAP_BEGIN, b, n);
	ok(proto_bootstrap_data_encode(chunk, sizeof(chunk), &b, &n), "data");
	seed_response("bootstrap-data", PROTO_BOOTSTRAP_CHUNK, b, n);
	ok(proto_snapshot_data_encode(chunk, sizeof(chunk), 1 << 20, &b, &n),
	    "snapshot data");
	seed_response("snapshot-data", PROTO_SNAPSHOT_READ, b, n);
	ok(proto_promote_result_encode(4, 44, &b, &n), "promote result");
	seed_response("promote", PROTO_PROMOTE, b, n);
	ok(proto_response_encode(PROTO_NOT_FOUND, "collection 'x' not found",
	    NULL, 0, &d, &n), "error");
	if ((b = malloc(n + 1)) == NULL)
		exit(1);
	b[0] = PROTO_GET;
	memcpy(b + 1, d, n);
	seed("proto_response", "error", b, n + 1);
	free(b);
	vdb_free(d);
}

/* ===== WAL records, snapshots, checkpoints ===== */

/*
 * A primary that starts as the fuzz targets' databases do (fz_db_seed),
 * then writes one record of every kind; the WAL after the seeded state,
 * as blobs of its first k records (each seed's seqs follow the replica's
 * last seq). The whole blob is kept for the WalBatch response seed.
 */
static void
seeds_wal(uint8_t **all, size_t *all_len)
{
	static const float v[2] = { 7, 7 };
	vecdb_collection_config c;
	struct storage_wal_info info;
	uint64_t from;
	vecdb_point p = { vecdb_id_num(42), v, 2, "{\"kind\": \"new\"}" };
	vecdb_id del = vecdb_id_num(3);
	vecdb_snapshot_info si;
	vecdb *db = fz_db_open(fz_tmpdir("wal-primary"));
	uint8_t *blob;
	size_t len, count;
	char name[32];

	fz_db_seed(db);
	ok(storage_wal_info_get(db, &info), "wal info");
	from = info.last_seq;
	ok(vecdb_upsert(db, FZ_PLACES, &p, 1), "put");
	ok(vecdb_delete(db, FZ_PLACES, &del, 1, NULL), "delete");
	{
		/* sparse vectors: a new point with both, one updated */
		static const uint32_t ix[] = { 2, 9 };
		static const float val[] = { 1.5f, -1 };
		static const float img[3] = { 4, 5, 6 };
		vecdb_sparse_vector sv[2] = { { "text", ix, val, 2, 0 },
			{ "tags", NULL, NULL, 0, 1 } };
		vecdb_named_vector nv = { "image", img, 3, 0 };
		vecdb_point_sparse ps = { sv, 1, &nv, 1 };
		vecdb_point hp = { vecdb_id_num(8), v, 2, NULL };
		vecdb_id two = vecdb_id_num(2);

		ok(vecdb_write(db, FZ_HYBRID, VECDB_WRITE_UPSERT, &hp, &ps, 1,
		    0), "sparse put");
		hp.id = vecdb_id_num(1);
		hp.vector = NULL;
		ps.v = sv + 1;
		ok(vecdb_write(db, FZ_HYBRID, VECDB_WRITE_UPDATE, &hp, &ps, 1,
		    0), "sparse update");
		ok(vecdb_delete(db, FZ_HYBRID, &two, 1, NULL),
		    "sparse delete");
	}
	vecdb_collection_config_init(&c, "fresh", 2, VECDB_MANHATTAN);
	ok(vecdb_collection_create(db, &c), "create");
	ok(vecdb_payload_index_create(db, FZ_PLACES, "colour",
	    VECDB_FIELD_KEYWORD), "pindex create");
	ok(vecdb_payload_index_delete(db, FZ_PLACES, "colour"), "pindex drop");
	ok(vecdb_index_delete(db, FZ_BYTES), "index off");
	ok(vecdb_index_rebuild(db, FZ_BYTES), "index on");
	ok(vecdb_collection_delete(db, "fresh"), "drop");
	ok(vecdb_snapshot_create_named(db, FZ_PLACES, "s1", &si), "snap");
	ok(vecdb_snapshot_restore(db, FZ_PLACES, "s1"), "restore");
	for (size_t k = 1; k <= 64; k++) {
		ok(storage_wal_read(db, from, k, 1 << 20, &blob, &len,
		    &count, &info), "wal read");
		if (count < k) {
			*all = blob;
			*all_len = len;
			break;
		}
		snprintf(name, sizeof(name), "first-%zu", k);
		seed("wal", name, blob, len);
		vdb_free(blob);
	}
	vecdb_close(db);
}

/* A snapshot file of each seeded collection, as the engine writes it. */
static void
seeds_snapshots(void)
{
	static const char *const colls[] = { FZ_PLACES, FZ_DOCS, FZ_BYTES,
		FZ_HYBRID };
	vecdb *db = fz_db_open(fz_tmpdir("snap"));
	vecdb_snapshot_info si;
	char path[4200];
	FILE *f;
	uint8_t *d;
	long n;

	fz_db_seed(db);
	for (size_t i = 0; i < 4; i++) {
		ok(vecdb_snapshot_create_named(db, colls[i], "seed", &si),
		    "snapshot");
		ok(vecdb_snapshot_path(db, colls[i], "seed", path,
		    sizeof(path)), "snapshot path");
		if ((f = fopen(path, "rb")) == NULL ||
		    fseek(f, 0, SEEK_END) != 0 || (n = ftell(f)) < 0 ||
		    fseek(f, 0, SEEK_SET) != 0 ||
		    (d = malloc((size_t) n + 1)) == NULL ||
		    fread(d, 1, (size_t) n, f) != (size_t) n) {
			perror(path);
			exit(1);
		}
		fclose(f);
		seed("snapshot", colls[i], d, (size_t) n);
		free(d);
	}
	vecdb_close(db);
}

/* An index of n nodes saved by hnsw_save, copied into the corpus. */
static void
seed_hnsw(const char *name, uint32_t dim, vecdb_metric metric, uint32_t m,
    uint32_t n, int del, vecdb_quant qt)
{
	hnsw_config c = { .dim = dim, .metric = metric, .m = m,
		.ef_construction = 16, .ef_search = 16, .seed = 42,
		.quant = { qt, 0.99f, 0, qt == VECDB_QUANT_PRODUCT ? 2 : 0,
			qt == VECDB_QUANT_PRODUCT ? 8 : 0 },
		.train_at = 8 };
	char path[4200];
	hnsw_index *h;
	uint64_t s = 0x9E3779B97F4A7C15ULL;
	float v[16];
	FILE *f;
	uint8_t d[1 << 16];
	size_t len;

	ok(hnsw_new(&c, &h), "hnsw_new");
	for (uint32_t i = 0; i < n; i++) {
		for (uint32_t j = 0; j < dim; j++) {
			s ^= s << 13, s ^= s >> 7, s ^= s << 17;
			v[j] = (float) (s >> 40) / (float) (1 << 24) - 0.5f;
		}
		ok(hnsw_insert(h, (uint64_t) i * 3 + 1, v), "hnsw_insert");
	}
	if (del)
		ok(hnsw_mark_deleted(h, 4), "hnsw_mark_deleted");
	snprintf(path, sizeof(path), "%s/%s.hnsw", fz_tmpdir("hnsw"), name);
	ok(hnsw_save(h, path, 77), "hnsw_save");
	hnsw_free(h);
	if ((f = fopen(path, "rb")) == NULL ||
	    (len = fread(d, 1, sizeof(d), f)) == sizeof(d)) {
		perror(path);
		exit(1);
	}
	fclose(f);
	seed("hnsw", name, d, len);
}

int
main(int argc, char **argv)
{
	uint8_t *blob = NULL;
	size_t len = 0;

	if (argc != 2) {
		fprintf(stderr, "usage: gen_seeds CORPUS_DIR\n");
		return 2;
	}
	out_dir = argv[1];
	fz_init();
	seeds_text();
	seeds_requests_admin();
	seeds_requests_query();
	seeds_requests_repl();
	seeds_requests_snapfile();
	seeds_responses_records();
	seeds_responses_admin();
	seeds_wal(&blob, &len);
	seeds_responses_repl(blob, len);
	vdb_free(blob);
	seeds_snapshots();
	seed_hnsw("empty", 2, VECDB_EUCLIDEAN, 2, 0, 0, VECDB_QUANT_NONE);
	seed_hnsw("l2-m2", 2, VECDB_EUCLIDEAN, 2, 24, 1, VECDB_QUANT_NONE);
	seed_hnsw("cos-m4", 3, VECDB_COSINE, 4, 16, 0, VECDB_QUANT_NONE);
	seed_hnsw("dot-m3", 4, VECDB_DOT, 3, 12, 1, VECDB_QUANT_NONE);
	seed_hnsw("l1-m2", 1, VECDB_MANHATTAN, 2, 8, 0, VECDB_QUANT_NONE);
	/* Quantized (trained at 8 nodes): codes and tables in the file. */
	seed_hnsw("sq-l2", 4, VECDB_EUCLIDEAN, 2, 20, 1, VECDB_QUANT_SCALAR);
	seed_hnsw("bq-cos", 5, VECDB_COSINE, 3, 20, 0, VECDB_QUANT_BINARY);
	seed_hnsw("pq-dot", 4, VECDB_DOT, 2, 16, 1, VECDB_QUANT_PRODUCT);
	return 0;
}
