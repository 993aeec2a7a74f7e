/*
 * rest_test.c: the REST API end to end (issue 4): a real `vecdb serve`
 * process per test, driven over HTTP. Every route's success and error
 * cases, the envelope on every JSON response, exact answers checked
 * against naive double-precision references computed here, scroll
 * completeness, snapshots through download and upload, restart, metrics,
 * API keys, body limits and TLS.
 *
 * With VECDB_TEST_TARGET=cluster (ctest's rest_cluster_test) the same
 * cases run against three vecdb-node shards behind a vecdb-router
 * (tests/e2e/http.h); the few that cannot are listed in rest_suite()
 * with the reason.
 */
#define _GNU_SOURCE
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "api_impl.h"
#include "http.h"
#include "testutil.h"

#define N 300         /* points in a filled collection */
#define DIM 8
#define NQ 5          /* query vectors */
#define EF 512        /* ef_search >= N: an HNSW index answers exactly */

static float V[N][DIM];   /* the points; V[i] has id IDS(i) */
static float Q[NQ][DIM];  /* queries */
static struct srv S;      /* the test's server */

/* Point ids are sparse, so that id order is not insertion order. */
#define IDS(i) ((uint64_t) (10 + 3 * (i)))

enum { M_COS, M_L2, M_DOT, M_L1, M_COUNT };
static const char *const metric_names[M_COUNT] = { "cosine", "euclidean",
	"dot_product", "manhattan" };

/* The gRPC status code names: the only codes an error may carry. */
static const char *const grpc_codes[] = { "CANCELLED", "UNKNOWN",
	"INVALID_ARGUMENT", "DEADLINE_EXCEEDED", "NOT_FOUND", "ALREADY_EXISTS",
	"PERMISSION_DENIED", "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION",
	"ABORTED", "OUT_OF_RANGE", "UNIMPLEMENTED", "INTERNAL", "UNAVAILABLE",
	"DATA_LOSS", "UNAUTHENTICATED", NULL };

/* ===== Data and references ===== */

/* The index of a point id, or -1. */
static int
id_index(json_int_t id)
{
	if (id < 10 || (id - 10) % 3 != 0 || (id - 10) / 3 >= N)
		return -1;
	return (int) ((id - 10) / 3);
}

/* The payload of point i (new reference). */
static json_t *
payload(int i)
{
	char grp[8], tag[8];

	snprintf(grp, sizeof(grp), "g%d", i % 3);
	snprintf(tag, sizeof(tag), "t%d", i % 5);
	return json_pack("{s:i, s:s, s:b, s:[s, s]}", "i", i, "grp", grp,
	    "even", i % 2 == 0, "tags", tag, "all");
}

/* Filters used below, with the same predicates written in C. */
#define F1 "{\"must\": [{\"key\": \"grp\", \"match\": {\"value\": \"g1\"}}," \
	   " {\"key\": \"i\", \"range\": {\"gte\": 100, \"lt\": 200}}]}"
#define F2 "{\"must_not\": [{\"key\": \"even\", \"match\": {\"value\": " \
	   "true}}], \"should\": [{\"key\": \"tags\", \"match\": {\"any\": " \
	   "[\"t1\", \"t2\"]}}]}"

/* Does point i pass filter f (NULL, F1 or F2)? */
static int
passes(const char *f, int i)
{
	if (f == NULL)
		return 1;
	if (strcmp(f, F1) == 0)
		return i % 3 == 1 && i >= 100 && i < 200;
	return i % 2 == 1 && (i % 5 == 1 || i % 5 == 2);
}

/* Fill V and Q from a fixed seed. */
static void
data_init(void)
{
	uint64_t seed = 0x5eed2024ULL;

	for (int i = 0; i < N; i++)
		tu_rand_vector(&seed, V[i], DIM);
	for (int q = 0; q < NQ; q++)
		tu_rand_vector(&seed, Q[q], DIM);
}

/* The reference distance between a (double) query and a point. */
static double
ref_dist(int m, const double *q, const float *v)
{
	double dot = 0, nq = 0, nv = 0, l2 = 0, l1 = 0;

	for (int j = 0; j < DIM; j++) {
		dot += q[j] * v[j];
		nq += q[j] * q[j];
		nv += (double) v[j] * v[j];
		l2 += (q[j] - v[j]) * (q[j] - v[j]);
		l1 += fabs(q[j] - v[j]);
	}
	switch (m) {
	case M_COS: return 1 - dot / (sqrt(nq) * sqrt(nv));
	case M_L2: return sqrt(l2);
	case M_DOT: return -dot;
	default: return l1;
	}
}

/* A float vector as doubles. */
static void
to_double(const float *v, double *out)
{
	for (int j = 0; j < DIM; j++)
		out[j] = v[j];
}

/* A reference hit: rank (desc: discover's pairs), distance (asc), id. */
struct ref {
	int rank;
	double d;
	json_int_t id;
};

/* Order reference hits as the API documents. */
static int
ref_cmp(const void *a, const void *b)
{
	const struct ref *x = a, *y = b;

	if (x->rank != y->rank)
		return x->rank > y->rank ? -1 : 1;
	if (x->d != y->d)
		return x->d < y->d ? -1 : 1;
	return x->id < y->id ? -1 : x->id > y->id;
}

/* Equal within 1e-4 relative (with a floor for values near 0). */
static int
close_to(double got, double want)
{
	return fabs(got - want) <= 1e-4 * fmax(fabs(want), 1e-2);
}

/* Find the reference of an id among n, or NULL. */
static const struct ref *
ref_find(const struct ref *c, size_t n, json_int_t id)
{
	for (size_t i = 0; i < n; i++)
		if (c[i].id == id)
			return &c[i];
	return NULL;
}

/*
 * Check one hit against position i of the sorted references: the id it
 * names must be a candidate whose own (rank, distance) equals position
 * i's (so exact ties may come in either order), its reported distance
 * must be its true one, and its metadata the point's payload.
 */
static void
hit_check(const json_t *h, const struct ref *c, size_t n, size_t i,
    const char *what)
{
	json_t *idj = json_object_get(h, "id"), *md, *want;
	const struct ref *r;
	double d;

	ck_assert_msg(json_is_integer(idj), "%s[%zu]: id is not an integer",
	    what, i);
	r = ref_find(c, n, json_integer_value(idj));
	ck_assert_msg(r != NULL, "%s[%zu]: id %lld must not be returned "
	    "(excluded, filtered or unknown)", what, i,
	    (long long) json_integer_value(idj));
	ck_assert_msg(json_is_number(json_object_get(h, "distance")),
	    "%s[%zu]: distance is not a number", what, i);
	d = json_number_value(json_object_get(h, "distance"));
	ck_assert_msg(r->rank == c[i].rank && close_to(r->d, c[i].d),
	    "%s[%zu]: got id %lld (rank %d, d %.9g), expected id %lld "
	    "(rank %d, d %.9g)", what, i, (long long) r->id, r->rank, r->d,
	    (long long) c[i].id, c[i].rank, c[i].d);
	ck_assert_msg(close_to(d, r->d), "%s[%zu]: id %lld distance %.9g, "
	    "expected %.9g", what, i, (long long) r->id, d, r->d);
	md = json_object_get(h, "metadata");
	want = payload(id_index(r->id));
	ck_assert_msg(json_equal(md, want), "%s[%zu]: metadata differs",
	    what, i);
	json_decref(want);
}

/* Check a hit list against the references c[0..n) (sorted here). */
static void
ranked_check(const json_t *hits, struct ref *c, size_t n, size_t limit,
    size_t offset, const char *what)
{
	size_t want = offset >= n ? 0 : (n - offset < limit ? n - offset :
							    limit);

	qsort(c, n, sizeof(*c), ref_cmp);
	ck_assert_msg(json_is_array(hits), "%s: data is not an array", what);
	ck_assert_msg(json_array_size(hits) == want, "%s: %zu hits, expected "
	    "%zu", what, json_array_size(hits), want);
	for (size_t i = 0; i < want; i++) {
		hit_check(json_array_get(hits, i), c, n, offset + i, what);
		for (size_t k = 0; k < i; k++)
			ck_assert_msg(!json_equal(json_object_get(
			    json_array_get(hits, k), "id"), json_object_get(
			    json_array_get(hits, i), "id")),
			    "%s: id repeated at %zu and %zu", what, k, i);
	}
}

/* References of a plain search: every point passing f by distance to q. */
static size_t
search_refs(int m, const double *q, const char *f, struct ref *c)
{
	size_t n = 0;

	for (int i = 0; i < N; i++)
		if (passes(f, i))
			c[n++] = (struct ref) { 0, ref_dist(m, q, V[i]),
				IDS(i) };
	return n;
}

/* ===== JSON helpers ===== */

/* A float vector as a JSON array (exact: floats widen to doubles). */
static json_t *
vec_json(const float *v)
{
	json_t *a = json_array();

	for (int j = 0; j < DIM; j++)
		json_array_append_new(a, json_real(v[j]));
	return a;
}

/* A filter given as text, as JSON (new reference). */
static json_t *
filter_json(const char *f)
{
	json_t *j = json_loads(f, 0, NULL);

	ck_assert_msg(j != NULL, "bad filter in the test: %s", f);
	return j;
}

/* Serialize and free. */
static char *
dumps(json_t *j)
{
	char *s = json_dumps(j, JSON_COMPACT);

	ck_assert(s != NULL);
	json_decref(j);
	return s;
}

/* Is code one of the gRPC status names? */
static int
is_grpc_code(const char *code)
{
	for (size_t i = 0; grpc_codes[i] != NULL; i++)
		if (strcmp(code, grpc_codes[i]) == 0)
			return 1;
	return 0;
}

/* The envelope: {success: true, data} or {success: false, error {code,
 * message}}, served as application/json. */
static void
envelope_check(const struct resp *r, const char *m, const char *p)
{
	json_t *ok, *err;

	ck_assert_msg(r->json != NULL && json_is_object(r->json),
	    "%s %s: status %d, body is not a JSON object (Content-Type '%s'): "
	    "%.400s", m, p, r->status, r->ctype, r->body);
	ck_assert_msg(strncmp(r->ctype, "application/json", 16) == 0,
	    "%s %s: Content-Type '%s'", m, p, r->ctype);
	ok = json_object_get(r->json, "success");
	ck_assert_msg(json_is_boolean(ok), "%s %s: no boolean 'success'", m,
	    p);
	if (r->status == 200) {
		ck_assert_msg(json_is_true(ok) && json_object_get(r->json,
		    "data") != NULL, "%s %s: 200 without success/data: %.400s",
		    m, p, r->body);
		return;
	}
	err = json_object_get(r->json, "error");
	ck_assert_msg(json_is_false(ok) && json_is_object(err), "%s %s: "
	    "error without success false / error object: %.400s", m, p,
	    r->body);
	ck_assert_msg(json_is_string(json_object_get(err, "code")) &&
	    is_grpc_code(json_string_value(json_object_get(err, "code"))),
	    "%s %s: error.code is not a gRPC code name: %.400s", m, p,
	    r->body);
	ck_assert_msg(json_is_string(json_object_get(err, "message")) &&
	    json_string_length(json_object_get(err, "message")) > 0,
	    "%s %s: error.message missing or empty: %.400s", m, p, r->body);
}

/*
 * One request on s, checked: the status must be want and the envelope
 * right. Returns "data" (200) or "error" as a new reference.
 */
static json_t *
call_on(struct srv *s, int want, const char *m, const char *p,
    const char *body, const char *const *hdrs)
{
	struct resp r;
	json_t *out;

	ck_assert_msg(http_req(s, m, p, body, hdrs, &r) == 0,
	    "%s %s: no HTTP response; server stderr:\n%s", m, p,
	    srv_log_tail(s));
	ck_assert_msg(r.status == want, "%s %s (body %.200s): expected %d, "
	    "got %d: %.600s", m, p, body ? body : "none", want, r.status,
	    r.body);
	envelope_check(&r, m, p);
	out = json_incref(json_object_get(r.json, want == 200 ? "data" :
	    "error"));
	resp_free(&r);
	return out;
}

/* call_on the test's server. */
static json_t *
call(int want, const char *m, const char *p, const char *body)
{
	return call_on(&S, want, m, p, body, NULL);
}

/* call with a JSON body (stolen). */
static json_t *
callj(int want, const char *m, const char *p, json_t *body)
{
	char *s = dumps(body);
	json_t *out = call(want, m, p, s);

	free(s);
	return out;
}

/* Expect an error status and code (code NULL: any gRPC name). */
static void
expect_err_on(struct srv *s, int status, const char *code, const char *m,
    const char *p, const char *body, const char *const *hdrs)
{
	json_t *e = call_on(s, status, m, p, body, hdrs);

	if (code != NULL)
		ck_assert_msg(strcmp(json_string_value(json_object_get(e,
		    "code")), code) == 0, "%s %s (body %.200s): code %s, "
		    "expected %s", m, p, body ? body : "none",
		    json_string_value(json_object_get(e, "code")), code);
	json_decref(e);
}

/* expect_err_on the test's server without extra headers. */
static void
expect_err(int status, const char *code, const char *m, const char *p,
    const char *body)
{
	expect_err_on(&S, status, code, m, p, body, NULL);
}

/* A 200 whose data we do not need. */
static void
ok(const char *m, const char *p, const char *body)
{
	json_decref(call(200, m, p, body));
}

/* An integer member of an object, failing the test if it is not one. */
static json_int_t
int_of(const json_t *o, const char *key)
{
	json_t *v = json_object_get(o, key);

	ck_assert_msg(json_is_integer(v), "'%s' is not an integer", key);
	return json_integer_value(v);
}

/* ===== Fixtures and collections ===== */

/* Checked fixture: a plain server for the test. */
static void
up(void)
{
	srv_start(NULL, &S);
}

/* Checked teardown: stop it, which must be clean. */
static void
down(void)
{
	srv_stop(&S);
}

/* Create collection name with metric m. */
static void
coll_create(const char *name, int m)
{
	json_decref(callj(200, "POST", "/collections", json_pack("{s:s, s:i, "
	    "s:s}", "name", name, "dimension", DIM, "distance_metric",
	    metric_names[m])));
}

/* Point i as {id, data, metadata}. */
static json_t *
point_json(int i)
{
	return json_pack("{s:I, s:o, s:o}", "id", (json_int_t) IDS(i), "data",
	    vec_json(V[i]), "metadata", payload(i));
}

/* Create and fill a collection with all N points in one batch, in an
 * order that is neither id order nor its reverse. */
static void
coll_fill(const char *name, int m)
{
	json_t *pts = json_array(), *d;
	char path[128];

	coll_create(name, m);
	for (int k = 0; k < N; k++)
		json_array_append_new(pts, point_json((k * 17) % N));
	snprintf(path, sizeof(path), "/collections/%s/vectors/batch", name);
	d = callj(200, "POST", path, json_pack("{s:o}", "vectors", pts));
	ck_assert_int_eq(int_of(d, "inserted_count"), N);
	ck_assert_int_eq(json_array_size(json_object_get(d, "ids")), N);
	json_decref(d);
}

/* POST a search for Q[q] and return the data (new reference). */
static json_t *
search(const char *coll, int q, int limit, int offset, const char *f)
{
	char path[128];
	json_t *b = json_pack("{s:o, s:i, s:i, s:i}", "vector", vec_json(Q[q]),
	    "limit", limit, "offset", offset, "ef_search", EF);

	if (f != NULL)
		json_object_set_new(b, "filter", filter_json(f));
	snprintf(path, sizeof(path), "/collections/%s/search", coll);
	return callj(200, "POST", path, b);
}

/* Search and compare with the naive answer. */
static void
search_check(const char *coll, int m, int q, int limit, int offset,
    const char *f)
{
	struct ref c[N];
	double qd[DIM];
	char what[160];
	json_t *hits = search(coll, q, limit, offset, f);

	to_double(Q[q], qd);
	snprintf(what, sizeof(what), "search %s q%d limit %d offset %d %s",
	    coll, q, limit, offset, f ? f : "");
	ranked_check(hits, c, search_refs(m, qd, f, c), (size_t) limit,
	    (size_t) offset, what);
	json_decref(hits);
}

/* ===== Health, stats, metrics ===== */

START_TEST(health_and_stats_have_their_shapes)
{
	json_t *d = call(200, "GET", "/health", NULL);

	ck_assert_str_eq(json_string_value(json_object_get(d, "status")),
	    "ok");
	ck_assert_str_eq(json_string_value(json_object_get(d, "version")),
	    VECDB_VERSION);
	json_decref(d);
	/* serving, and (a router) connected to every primary: ready */
	d = call(200, "GET", "/ready", NULL);
	ck_assert_str_eq(json_string_value(json_object_get(d, "status")),
	    "ready");
	json_decref(d);
	coll_fill("a", M_L2);
	coll_create("b", M_COS);
	d = call(200, "GET", "/stats", NULL);
	ck_assert_int_eq(int_of(d, "total_vectors"), N);
	ck_assert_int_eq(int_of(d, "total_collections"), 2);
	ck_assert_int_ge(int_of(d, "memory_usage"), 0);
	ck_assert_int_gt(int_of(d, "disk_usage"), 0);
	ck_assert_int_ge(int_of(d, "uptime_seconds"), 0);
	json_decref(d);
}
END_TEST

/* The value of the first sample line that starts with prefix, or -1. */
static double
sample(const char *text, const char *prefix)
{
	size_t n = strlen(prefix);

	for (const char *l = text; l != NULL && *l; l = strchr(l, '\n'),
	     l = l ? l + 1 : NULL)
		if (strncmp(l, prefix, n) == 0 && l[n] == ' ')
			return strtod(l + n + 1, NULL);
	return -1;
}

/* Does the exposition declare family name with TYPE type (NULL: counter
 * or gauge)? */
static int
has_family(const char *text, const char *name, const char *type)
{
	char line[160];

	if (type == NULL)
		return has_family(text, name, "counter") ||
		    has_family(text, name, "gauge");
	snprintf(line, sizeof(line), "# TYPE %s %s\n", name, type);
	return strstr(text, line) != NULL;
}

/* Prometheus refuses a scrape that has one series twice. */
static void
no_series_twice(const char *body)
{
	char *copy = strdup(body), *line, *save = NULL, *sp;
	json_t *seen = json_object();

	ck_assert_ptr_nonnull(copy);
	for (line = strtok_r(copy, "\n", &save); line != NULL;
	    line = strtok_r(NULL, "\n", &save)) {
		if (line[0] == '#' || (sp = strrchr(line, ' ')) == NULL)
			continue;
		*sp = '\0';  /* the series: name and labels */
		ck_assert_msg(json_object_get(seen, line) == NULL,
		    "/metrics has the series %s twice", line);
		json_object_set_new(seen, line, json_true());
	}
	json_decref(seen);
	free(copy);
}

START_TEST(metrics_lists_every_documented_family)
{
	static const char *const fam[][2] = {
		{ "vecdb_queries_total", "counter" },
		{ "vecdb_query_duration_seconds", "histogram" },
		{ "vecdb_inserts_total", "counter" },
		{ "vecdb_insert_duration_seconds", "histogram" },
		{ "vecdb_batch_insert_size", "histogram" },
		/* counter or gauge: promtool refuses a gauge named _total */
		{ "vecdb_collections_total", NULL },
		{ "vecdb_vectors_total", NULL },
		{ "vecdb_index_build_duration_seconds", "histogram" },
		{ "vecdb_memory_usage_bytes", "gauge" },
		{ "vecdb_disk_usage_bytes", "gauge" },
		{ "vecdb_http_requests_total", "counter" },
		{ "process_cpu_seconds_total", "counter" },
		{ "process_resident_memory_bytes", "gauge" },
	};
	struct resp r;

	coll_fill("m", M_L2);
	search_check("m", M_L2, 0, 5, 0, NULL);
	expect_err(404, "NOT_FOUND", "GET", "/collections/nope", NULL);
	/* GET and POST /collections share a pattern: two series */
	json_decref(call(200, "GET", "/collections", NULL));
	ck_assert_int_eq(http_req(&S, "GET", "/metrics", NULL, NULL, &r), 0);
	ck_assert_int_eq(r.status, 200);
	ck_assert_msg(strncmp(r.ctype, "text/plain", 10) == 0 &&
	    strstr(r.ctype, "version=0.0.4") != NULL, "Content-Type '%s'",
	    r.ctype);
	for (size_t i = 0; i < sizeof(fam) / sizeof(fam[0]); i++)
		ck_assert_msg(has_family(r.body, fam[i][0], fam[i][1]),
		    "/metrics has no '# TYPE %s %s'", fam[i][0],
		    fam[i][1] ? fam[i][1] : "counter|gauge");
	ck_assert(strstr(r.body, "vecdb_query_duration_seconds_bucket{le=") !=
	    NULL);
	ck_assert(sample(r.body, "vecdb_inserts_total") >= N);
	ck_assert(sample(r.body, "vecdb_queries_total") >= 1);
	ck_assert(sample(r.body, "vecdb_collections_total") == 1);
	ck_assert(sample(r.body, "vecdb_vectors_total{collection=\"m\"}") ==
	    N);
	ck_assert_msg(strstr(r.body, "vecdb_http_requests_total{method=\"POST\","
	    "route=\"collections\",code=\"200\"}") != NULL &&
	    strstr(r.body, "vecdb_http_requests_total{method=\"GET\","
	    "route=\"collections\",code=\"200\"}") != NULL &&
	    strstr(r.body, "code=\"404\"}") != NULL,
	    "vecdb_http_requests_total lacks method/route/code samples");
	no_series_twice(r.body);
	resp_free(&r);
}
END_TEST

/* ===== Collections ===== */

START_TEST(collection_lifecycle)
{
	json_t *d, *st, *ix;

	d = call(200, "POST", "/collections", "{\"name\": \"c1\", \"dimension\":"
	    " 8, \"distance_metric\": \"manhattan\", \"vector_type\": "
	    "\"float32\", \"index_config\": {\"max_connections\": 8, "
	    "\"ef_construction\": 100, \"ef_search\": 50, \"max_layer\": 10}, "
	    "\"quantization\": \"none\"}");
	ck_assert_str_eq(json_string_value(json_object_get(d, "name")), "c1");
	ck_assert_int_eq(int_of(d, "dimension"), 8);
	ck_assert_str_eq(json_string_value(json_object_get(d,
	    "distance_metric")), "manhattan");
	ck_assert_str_eq(json_string_value(json_object_get(d, "vector_type")),
	    "float32");
	ix = json_object_get(d, "index_config");
	ck_assert_int_eq(int_of(ix, "max_connections"), 8);
	ck_assert_int_eq(int_of(ix, "ef_construction"), 100);
	ck_assert_int_eq(int_of(ix, "ef_search"), 50);
	ck_assert_int_eq(int_of(ix, "max_layer"), 10);
	json_decref(d);
	for (int m = 0; m < M_COUNT; m++)
		coll_create(metric_names[m], m);
	d = call(200, "GET", "/collections", NULL);
	ck_assert_int_eq(json_array_size(d), 5);
	ck_assert_msg(json_is_string(json_array_get(d, 0)), "list of names");
	json_decref(d);
	d = call(200, "GET", "/collections/c1", NULL);
	ck_assert_str_eq(json_string_value(json_object_get(json_object_get(d,
	    "config"), "distance_metric")), "manhattan");
	st = json_object_get(d, "stats");
	ck_assert_str_eq(json_string_value(json_object_get(st, "name")), "c1");
	ck_assert_int_eq(int_of(st, "vector_count"), 0);
	ck_assert_int_eq(int_of(st, "dimension"), 8);
	(void) int_of(st, "index_size");
	(void) int_of(st, "memory_usage");
	(void) int_of(st, "indexed_count");
	(void) int_of(st, "pending_count");
	json_decref(d);
	expect_err(409, "ALREADY_EXISTS", "POST", "/collections",
	    "{\"name\": \"c1\", \"dimension\": 4}");
	ok("DELETE", "/collections/c1", NULL);
	expect_err(404, "NOT_FOUND", "GET", "/collections/c1", NULL);
	expect_err(404, "NOT_FOUND", "DELETE", "/collections/c1", NULL);
	d = call(200, "GET", "/collections", NULL);
	ck_assert_int_eq(json_array_size(d), 4);
	json_decref(d);
}
END_TEST

START_TEST(collection_create_rejects_bad_input)
{
	static const char *const bad[] = {
		"{}",
		"{\"dimension\": 8}",
		"{\"name\": \"x\"}",
		"{\"name\": 5, \"dimension\": 8}",
		"{\"name\": \"x\", \"dimension\": \"8\"}",
		"{\"name\": \"x\", \"dimension\": 0}",
		"{\"name\": \"x\", \"dimension\": -1}",
		"{\"name\": \"x\", \"dimension\": 8.5}",
		"{\"name\": \"x\", \"dimension\": 8, \"distance_metric\": "
		    "\"hamming\"}",
		"{\"name\": \"x\", \"dimension\": 8, \"distance_metric\": 1}",
		"{\"name\": \"x\", \"dimension\": 8, \"vector_type\": \"int4\"}",
		"{\"name\": \"x\", \"dimension\": 8, \"index_config\": 3}",
		"{\"name\": \"x\", \"dimension\": 8, \"index_config\": "
		    "{\"max_connections\": \"16\"}}",
		"{\"name\": \"x\", \"dimension\": 8, \"quantization\": \"pq\"}",
		"{\"name\": \"bad name/x\", \"dimension\": 8}",
		"{\"name\": \"\", \"dimension\": 8}",
		"{\"name\": \"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
		    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\", \"dimension\": 8}",
		"{\"name\": \"x\", \"dimension\": 8",
		"[\"x\", 8]",
		"\"x\"",
	};
	json_t *d;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		expect_err(400, "INVALID_ARGUMENT", "POST", "/collections",
		    bad[i]);
	d = call(200, "GET", "/collections", NULL);
	ck_assert_int_eq(json_array_size(d), 0);
	json_decref(d);
}
END_TEST

static void expect_400_saying(const char *m, const char *p,
    const char *body, const char *part);

START_TEST(sparse_vectors_are_declared_with_the_collection)
{
	static const struct {
		const char *body, *says;
	} bad[] = {
		{ "{\"name\": \"s\", \"dimension\": 4, \"sparse_vectors\": 5}",
		    "'sparse_vectors' must be an object" },
		{ "{\"name\": \"s\", \"dimension\": 4, \"sparse_vectors\": "
		    "{\"text\": {\"modifier\": \"bm25\"}}}",
		    "'sparse_vectors.text.modifier' must be none or idf" },
		{ "{\"name\": \"s\", \"dimension\": 4, \"sparse_vectors\": "
		    "{\"text\": {\"modfier\": \"idf\"}}}",
		    "unknown field \"sparse_vectors.text.modfier\"" },
		{ "{\"name\": \"s\", \"dimension\": 4, \"sparse_vectors\": "
		    "{\"a b\": {}}}", "sparse vector name 'a b'" },
		{ "{\"name\": \"s\", \"dimension\": 4, \"sparse_vectors\": "
		    "{\"a\": {}, \"b\": {}, \"c\": {}, \"d\": {}, \"e\": {}, "
		    "\"f\": {}, \"g\": {}, \"h\": {}, \"i\": {}}}",
		    "at most 8 sparse vectors" },
	};
	json_t *d, *sv;

	d = call(200, "POST", "/collections", "{\"name\": \"hyb\", "
	    "\"dimension\": 4, \"sparse_vectors\": {\"text\": {\"modifier\": "
	    "\"idf\"}, \"tags\": {}, \"more\": null}}");
	sv = json_object_get(d, "sparse_vectors");
	ck_assert_int_eq(json_object_size(sv), 3);
	ck_assert_str_eq(json_string_value(json_object_get(json_object_get(sv,
	    "text"), "modifier")), "idf");
	ck_assert_str_eq(json_string_value(json_object_get(json_object_get(sv,
	    "tags"), "modifier")), "none");
	json_decref(d);
	d = call(200, "GET", "/collections/hyb", NULL);
	sv = json_object_get(json_object_get(d, "config"), "sparse_vectors");
	ck_assert_int_eq(json_object_size(sv), 3);
	ck_assert_str_eq(json_string_value(json_object_get(json_object_get(sv,
	    "text"), "modifier")), "idf");
	ck_assert_str_eq(json_string_value(json_object_get(json_object_get(sv,
	    "more"), "modifier")), "none");
	json_decref(d);
	/* a collection without sparse vectors shows none */
	d = call(200, "POST", "/collections", "{\"name\": \"dense\", "
	    "\"dimension\": 4}");
	ck_assert_ptr_null(json_object_get(d, "sparse_vectors"));
	json_decref(d);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		expect_400_saying("POST", "/collections", bad[i].body,
		    bad[i].says);
	expect_err(404, "NOT_FOUND", "GET", "/collections/s", NULL);
}
END_TEST

/* The sparse vector name of GET path's point, as "[i,...]/[v,...]"
 * ("none" without one). */
static char *
sparse_text(const char *path, const char *name)
{
	json_t *d = call(200, "GET", path, NULL);
	json_t *s = json_object_get(json_object_get(d, "vectors"), name);
	char *ix, *va, *out;

	if (s == NULL) {
		json_decref(d);
		return strdup("none");
	}
	ix = json_dumps(json_object_get(s, "indices"), JSON_COMPACT);
	va = json_dumps(json_object_get(s, "values"), JSON_COMPACT);
	ck_assert_int_ge(asprintf(&out, "%s/%s", ix, va), 0);
	free(ix);
	free(va);
	json_decref(d);
	return out;
}

static void
expect_sparse(const char *path, const char *name, const char *want)
{
	char *got = sparse_text(path, name);

	ck_assert_str_eq(got, want);
	free(got);
}

START_TEST(points_carry_sparse_vectors)
{
	static const struct {
		const char *body, *says;
	} bad[] = {
		{ "{\"vectors\": [{\"id\": 9, \"data\": [1, 0, 0, 0], "
		    "\"vectors\": {\"title\": {\"indices\": [1], \"values\": "
		    "[1]}}}]}", "collection 'sp' has no sparse vector 'title'" },
		{ "{\"vectors\": [{\"id\": 9, \"data\": [1, 0, 0, 0], "
		    "\"vectors\": {\"text\": {\"indices\": [4, 9, 4], "
		    "\"values\": [1, 2, 3]}}}]}", "sparse index 4 appears twice" },
		{ "{\"vectors\": [{\"id\": 9, \"data\": [1, 0, 0, 0], "
		    "\"vectors\": {\"text\": {\"indices\": [-1], "
		    "\"values\": [1]}}}]}",
		    "vectors[0].vectors.text.indices[0] is not an integer in "
		    "0..4294967295" },
		{ "{\"vectors\": [{\"id\": 9, \"data\": [1, 0, 0, 0], "
		    "\"vectors\": {\"text\": {\"indices\": [4294967296], "
		    "\"values\": [1]}}}]}", "is not an integer in" },
		{ "{\"vectors\": [{\"id\": 9, \"data\": [1, 0, 0, 0], "
		    "\"vectors\": {\"text\": {\"indices\": [1, 2], "
		    "\"values\": [1]}}}]}", "has 2 indices and 1 values" },
		{ "{\"vectors\": [{\"id\": 9, \"data\": [1, 0, 0, 0], "
		    "\"vectors\": {\"text\": {\"indices\": [1], "
		    "\"values\": [\"x\"]}}}]}",
		    "vectors[0].vectors.text.values[0] is not a finite number" },
		{ "{\"vectors\": [{\"id\": 9, \"data\": [1, 0, 0, 0], "
		    "\"vectors\": {\"text\": {\"indices\": [1], "
		    "\"values\": [1e39]}}}]}", "is not a finite number" },
		{ "{\"vectors\": [{\"id\": 9, \"data\": [1, 0, 0, 0], "
		    "\"vectors\": {\"text\": [1, 2]}}]}",
		    "'text' is a sparse vector: give {\"indices\"" },
		{ "{\"vectors\": [{\"id\": 9, \"data\": [1, 0, 0, 0], "
		    "\"vectors\": {\"text\": {\"indices\": [1], \"values\": "
		    "[1], \"weights\": []}}}]}",
		    "unknown field \"vectors[0].vectors.text.weights\"" },
		{ "{\"vectors\": [{\"id\": 9, \"data\": [1, 0, 0, 0], "
		    "\"vectors\": {\"text\": null}}]}",
		    "only an update removes a vector" },
	};
	json_t *d;

	ok("POST", "/collections", "{\"name\": \"sp\", \"dimension\": 4, "
	    "\"sparse_vectors\": {\"text\": {\"modifier\": \"idf\"}, "
	    "\"tags\": {}}}");
	ok("POST", "/collections/sp/vectors/upsert", "{\"vectors\": [{\"id\": "
	    "1, \"data\": [1, 0, 0, 0], \"vectors\": {\"text\": {\"indices\": "
	    "[42, 7], \"values\": [1.5, 0.25]}}}, {\"id\": 2, \"data\": [0, 1, "
	    "0, 0]}]}");
	expect_sparse("/collections/sp/vectors/1", "text", "[7,42]/[0.25,1.5]");
	expect_sparse("/collections/sp/vectors/1", "tags", "none");
	expect_sparse("/collections/sp/vectors/2", "text", "none");
	/* an update sets one and keeps the other ... */
	ok("PUT", "/collections/sp/vectors/1", "{\"vectors\": {\"tags\": "
	    "{\"indices\": [3], \"values\": [9]}}}");
	expect_sparse("/collections/sp/vectors/1", "text", "[7,42]/[0.25,1.5]");
	expect_sparse("/collections/sp/vectors/1", "tags", "[3]/[9.0]");
	/* ... or removes one */
	ok("PUT", "/collections/sp/vectors/1", "{\"vectors\": {\"text\": "
	    "null}}");
	expect_sparse("/collections/sp/vectors/1", "text", "none");
	expect_sparse("/collections/sp/vectors/1", "tags", "[3]/[9.0]");
	/* scroll shows them with the vectors */
	d = call(200, "POST", "/collections/sp/points/scroll",
	    "{\"with_vector\": true, \"limit\": 1}");
	ck_assert_ptr_nonnull(json_object_get(json_object_get(
	    json_array_get(json_object_get(d, "points"), 0), "vectors"),
	    "tags"));
	json_decref(d);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		expect_400_saying("POST", "/collections/sp/vectors/upsert",
		    bad[i].body, bad[i].says);
	expect_err(404, "NOT_FOUND", "GET", "/collections/sp/vectors/9", NULL);
	expect_sparse("/collections/sp/vectors/1", "tags", "[3]/[9.0]");
}
END_TEST

/* ===== Named dense vectors ===== */

#define NN 60     /* points of the named-vector collection */

/* Point i's "image" (3-d, euclidean), which every 4th point lacks. */
static void
nv_image(int i, float *v)
{
	v[0] = (float) (i % 7);
	v[1] = (float) ((i * 3) % 5);
	v[2] = (float) (i % 2) - 0.5f;
}

START_TEST(named_dense_vectors_are_declared_written_and_searched)
{
	static const struct {
		const char *path, *body, *says;
	} bad[] = {
		{ "/collections", "{\"name\": \"b\", \"dimension\": 4, "
		    "\"vectors\": {\"x\": {\"distance_metric\": \"dot\"}}}",
		    "'vectors.x.dimension' is required" },
		{ "/collections", "{\"name\": \"b\", \"dimension\": 4, "
		    "\"vectors\": {\"x\": {\"dimension\": 2}}, "
		    "\"sparse_vectors\": {\"x\": {}}}",
		    "'x' names both a dense and a sparse vector" },
		{ "/collections", "{\"name\": \"b\", \"dimension\": 4, "
		    "\"vectors\": {\"x\": {\"dimension\": 2, \"dims\": 3}}}",
		    "unknown field \"vectors.x.dims\"" },
		{ "/collections/nv/vectors/upsert", "{\"vectors\": [{\"id\": "
		    "99, \"data\": [1, 0, 0, 0], \"vectors\": {\"photo\": [1, "
		    "2, 3]}}]}", "collection 'nv' has no vector 'photo'" },
		{ "/collections/nv/vectors/upsert", "{\"vectors\": [{\"id\": "
		    "99, \"data\": [1, 0, 0, 0], \"vectors\": {\"image\": [1, "
		    "2]}}]}", "vector 'image' has 2 dimensions, collection "
		    "'nv' expects 3" },
		{ "/collections/nv/vectors/upsert", "{\"vectors\": [{\"id\": "
		    "99, \"data\": [1, 0, 0, 0], \"vectors\": {\"image\": [1, "
		    "2, \"x\"]}}]}", "vectors[0].vectors.image[2]" },
		{ "/collections/nv/vectors/upsert", "{\"vectors\": [{\"id\": "
		    "99, \"data\": [1, 0, 0, 0], \"vectors\": {\"image\": "
		    "null}}]}", "only an update removes a vector" },
		{ "/collections/nv/search", "{\"vector\": [1, 2], \"using\": "
		    "\"image\"}", "vector 'image' of collection 'nv' expects 3" },
		{ "/collections/nv/search", "{\"vector\": [1, 2, 3], "
		    "\"using\": \"photo\"}", "collection 'nv' has no vector "
		    "'photo'" },
	};
	char *body = malloc(1 << 16);
	size_t off;
	json_t *d, *v, *hits;
	float img[3];

	d = call(200, "POST", "/collections", "{\"name\": \"nv\", "
	    "\"dimension\": 4, \"vectors\": {\"image\": {\"dimension\": 3, "
	    "\"distance_metric\": \"euclidean\"}}, \"sparse_vectors\": "
	    "{\"text\": {}}}");
	v = json_object_get(json_object_get(d, "vectors"), "image");
	ck_assert_int_eq(int_of(v, "dimension"), 3);
	ck_assert_str_eq(json_string_value(json_object_get(v,
	    "distance_metric")), "euclidean");
	ck_assert_int_eq(int_of(json_object_get(v, "index_config"),
	    "max_connections"), 16);
	json_decref(d);
	d = call(200, "GET", "/collections/nv", NULL);
	ck_assert_ptr_nonnull(json_object_get(json_object_get(json_object_get(
	    d, "config"), "vectors"), "image"));
	json_decref(d);
	off = (size_t) snprintf(body, 1 << 16, "{\"vectors\": [");
	for (int i = 0; i < NN; i++) {
		nv_image(i, img);
		off += (size_t) snprintf(body + off, (1 << 16) - off,
		    "%s{\"id\": %d, \"data\": [1, %d, 0, 1]", i ? ", " : "", i,
		    i);
		if (i % 4 != 0)
			off += (size_t) snprintf(body + off, (1 << 16) - off,
			    ", \"vectors\": {\"image\": [%g, %g, %g], "
			    "\"text\": {\"indices\": [%d], \"values\": [1]}}",
			    (double) img[0], (double) img[1], (double) img[2],
			    i % 3);
		off += (size_t) snprintf(body + off, (1 << 16) - off, "}");
	}
	snprintf(body + off, (1 << 16) - off, "]}");
	ok("POST", "/collections/nv/vectors/upsert", body);
	/* the collection's stats count what each graph holds, once the
	 * indexer is through */
	for (int i = 0; i < 600; i++) { /* at most 60 s */
		d = call(200, "GET", "/collections/nv", NULL);
		v = json_object_get(json_object_get(json_object_get(d,
		    "stats"), "vectors"), "image");
		if (v != NULL && int_of(v, "indexed_count") == NN - NN / 4)
			break;
		json_decref(d);
		d = NULL;
		usleep(100000);
	}
	ck_assert_msg(d != NULL, "the image graph never held every image");
	json_decref(d);
	/* GET shows the point's named vectors beside its data */
	d = call(200, "GET", "/collections/nv/vectors/5", NULL);
	v = json_object_get(json_object_get(d, "vectors"), "image");
	ck_assert_int_eq(json_array_size(v), 3);
	ck_assert_float_eq(json_real_value(json_array_get(v, 0)), 5);
	ck_assert_ptr_nonnull(json_object_get(json_object_get(d, "vectors"),
	    "text"));
	json_decref(d);
	d = call(200, "GET", "/collections/nv/vectors/4", NULL);
	ck_assert_ptr_null(json_object_get(d, "vectors"));
	json_decref(d);
	/* a search using "image": euclidean, and only points that have it:
	 * the query (5, 0, 0.5) is nearest point 5 (distance 0), then the
	 * others with image (5, 0, +-0.5) */
	d = call(200, "POST", "/collections/nv/search", "{\"vector\": [5, 0, "
	    "0.5], \"using\": \"image\", \"limit\": 60, \"with_vector\": "
	    "true}");
	hits = d;
	ck_assert_int_eq(json_array_size(hits), NN - NN / 4);
	ck_assert_int_eq(int_of(json_array_get(hits, 0), "id"), 5);
	ck_assert_float_eq_tol(json_real_value(json_object_get(json_array_get(
	    hits, 0), "distance")), 0, 1e-6);
	for (size_t i = 0; i < json_array_size(hits); i++) {
		json_t *h = json_array_get(hits, i);
		json_int_t id = int_of(h, "id");

		ck_assert_msg(id % 4 != 0, "point %lld has no image",
		    (long long) id);
		nv_image((int) id, img);
		ck_assert_float_eq_tol(json_real_value(json_object_get(h,
		    "distance")), sqrt((img[0] - 5) * (img[0] - 5) +
		    img[1] * img[1] + (img[2] - 0.5) * (img[2] - 0.5)), 1e-5);
		if (i > 0)
			ck_assert(json_real_value(json_object_get(h,
			    "distance")) >= json_real_value(json_object_get(
			    json_array_get(hits, i - 1), "distance")));
		ck_assert_ptr_nonnull(json_object_get(json_object_get(h,
		    "vectors"), "image"));
	}
	json_decref(d);
	/* recommend and discover by "image": point 5's nearest others, as
	 * a search by its image finds them (after itself) */
	v = call(200, "POST", "/collections/nv/search", "{\"vector\": [5, "
	    "0, 0.5], \"using\": \"image\", \"limit\": 4}");
	ck_assert_int_eq(int_of(json_array_get(v, 0), "id"), 5);
	d = call(200, "POST", "/collections/nv/points/recommend",
	    "{\"positive\": [5], \"using\": \"image\", \"limit\": 3}");
	ck_assert_int_eq(json_array_size(d), 3);
	for (size_t i = 0; i < 3; i++)
		ck_assert_int_eq(int_of(json_array_get(d, i), "id"),
		    int_of(json_array_get(v, i + 1), "id"));
	json_decref(d);
	d = call(200, "POST", "/collections/nv/points/discover",
	    "{\"target\": 5, \"using\": \"image\", \"limit\": 3}");
	ck_assert_int_eq(json_array_size(d), 3);
	for (size_t i = 0; i < 3; i++)
		ck_assert_int_eq(int_of(json_array_get(d, i), "id"),
		    int_of(json_array_get(v, i + 1), "id"));
	json_decref(d);
	json_decref(v);
	expect_400_saying("POST", "/collections/nv/points/recommend",
	    "{\"positive\": [4], \"using\": \"image\"}",
	    "point 4 has no vector 'image'");
	/* hybrid: the dense side by "image" */
	d = call(200, "POST", "/collections/nv/search/hybrid", "{\"dense\": "
	    "{\"vector\": [5, 0, 0.5], \"using\": \"image\"}, \"sparse\": "
	    "{\"using\": \"text\", \"indices\": [2], \"values\": [1]}, "
	    "\"fusion\": \"rrf\", \"limit\": 5}");
	hits = d;
	ck_assert_int_eq(int_of(json_array_get(hits, 0), "id"), 5);
	json_decref(d);
	/* an update sets the image, or removes it, and keeps the rest */
	ok("PUT", "/collections/nv/vectors/5", "{\"vectors\": {\"image\": "
	    "[9, 9, 9]}}");
	d = call(200, "GET", "/collections/nv/vectors/5", NULL);
	ck_assert_float_eq(json_real_value(json_array_get(json_object_get(
	    json_object_get(d, "vectors"), "image"), 0)), 9);
	ck_assert_ptr_nonnull(json_object_get(json_object_get(d, "vectors"),
	    "text"));
	json_decref(d);
	ok("PUT", "/collections/nv/vectors/5", "{\"vectors\": {\"image\": "
	    "null}}");
	d = call(200, "GET", "/collections/nv/vectors/5", NULL);
	ck_assert_ptr_null(json_object_get(json_object_get(d, "vectors"),
	    "image"));
	ck_assert_ptr_nonnull(json_object_get(json_object_get(d, "vectors"),
	    "text"));
	ck_assert_float_eq(json_real_value(json_array_get(json_object_get(d,
	    "data"), 1)), 5);
	json_decref(d);
	d = call(200, "POST", "/collections/nv/search", "{\"vector\": [5, 0, "
	    "0.5], \"using\": \"image\", \"limit\": 60}");
	ck_assert_int_eq(json_array_size(d), NN - NN / 4 - 1);
	json_decref(d);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		expect_400_saying("POST", bad[i].path, bad[i].body,
		    bad[i].says);
	d = call(200, "POST", "/collections/nv/points/count", "{}");
	ck_assert_int_eq(int_of(d, "count"), NN);
	json_decref(d);
	/* a collection of named vectors only: no dimension, no data */
	d = call(200, "POST", "/collections", "{\"name\": \"nvo\", "
	    "\"vectors\": {\"image\": {\"dimension\": 3}}}");
	ck_assert_int_eq(int_of(d, "dimension"), 0);
	json_decref(d);
	ok("POST", "/collections/nvo/vectors/upsert", "{\"vectors\": "
	    "[{\"id\": 1, \"vectors\": {\"image\": [1, 2, 3]}}, {\"id\": 2, "
	    "\"vectors\": {}, \"metadata\": {\"a\": 1}}]}");
	d = call(200, "GET", "/collections/nvo/vectors/1", NULL);
	ck_assert_ptr_null(json_object_get(d, "data"));
	ck_assert_int_eq(json_array_size(json_object_get(json_object_get(d,
	    "vectors"), "image")), 3);
	json_decref(d);
	d = call(200, "POST", "/collections/nvo/search", "{\"vector\": [1, 2, "
	    "3], \"using\": \"image\"}");
	ck_assert_int_eq(json_array_size(d), 1);
	json_decref(d);
	expect_400_saying("POST", "/collections/nvo/search", "{\"vector\": "
	    "[1, 2, 3]}", "collection 'nvo' has no default vector");
	expect_400_saying("POST", "/collections/nvo/vectors/upsert",
	    "{\"vectors\": [{\"id\": 3, \"data\": [1, 2, 3]}]}",
	    "collection 'nvo' has no default vector");
	expect_400_saying("POST", "/collections", "{\"name\": \"nod\"}",
	    "'dimension' is required");
	d = call(200, "POST", "/collections/nvo/points/count", "{}");
	ck_assert_int_eq(int_of(d, "count"), 2);
	json_decref(d);
	free(body);
}
END_TEST

/* ===== Sparse and hybrid search ===== */

#define HN 80     /* points of the hybrid collection */
#define HV 30     /* its vocabulary */

/* Point i's sparse "text": indices i % 7, (i * 3) % HV, (i * 5 + 1) % HV
 * (distinct ones), values 1 + index % 3. */
static uint32_t
h_text(int i, uint32_t *ix, float *val)
{
	uint32_t c[3] = { (uint32_t) (i % 7), (uint32_t) (i * 3 % HV),
		(uint32_t) ((i * 5 + 1) % HV) }, n = 0;

	for (int a = 0; a < 3; a++) {
		int dup = 0;

		for (uint32_t b = 0; b < n; b++)
			dup |= ix[b] == c[a];
		if (!dup) {
			ix[n] = c[a];
			val[n++] = (float) (1 + c[a] % 3);
		}
	}
	return n;
}

/* (id, score) lists of a response's hits, by rank. */
struct hl {
	size_t n;
	int id[HN];
	double s[HN];
};

static void
hl_of(json_t *hits, struct hl *l)
{
	l->n = json_array_size(hits);
	ck_assert_uint_le(l->n, HN);
	for (size_t i = 0; i < l->n; i++) {
		json_t *h = json_array_get(hits, i);

		l->id[i] = (int) json_integer_value(json_object_get(h, "id"));
		l->s[i] = json_number_value(json_object_get(h, "score") ?
		    json_object_get(h, "score") : json_object_get(h,
		    "distance"));
	}
}

/* A list's contribution for id under the method (reference). */
static double
h_part(const struct hl *l, const char *m, double weight, int id)
{
	double lo = 1e300, hi = -1e300, mean = 0, var = 0, sd;
	size_t i;

	for (i = 0; i < l->n && l->id[i] != id; i++)
		;
	if (i == l->n)
		return 0;
	if (strcmp(m, "rrf") == 0)
		return 1.0 / (60.0 + (double) i + 1);
	for (size_t j = 0; j < l->n; j++) {
		lo = fmin(lo, l->s[j]);
		hi = fmax(hi, l->s[j]);
		mean += l->s[j];
	}
	mean /= (double) l->n; /* as the server: equal scores give sd 0 */
	if (strcmp(m, "relative_score") == 0)
		return weight * (hi > lo ? (l->s[i] - lo) / (hi - lo) : 1);
	for (size_t j = 0; j < l->n; j++)
		var += (l->s[j] - mean) * (l->s[j] - mean) / (double) l->n;
	sd = sqrt(var);
	return sd > 0 ? fmin(1, fmax(0, (l->s[i] - mean + 3 * sd) /
	    (6 * sd))) : 0.5;
}

START_TEST(sparse_and_hybrid_search_match_references)
{
	static const char *const methods[] = { "rrf", "relative_score",
		"dbsf" };
	char *body = malloc(1 << 16);
	size_t off;
	json_t *d;

	ok("POST", "/collections", "{\"name\": \"hy\", \"dimension\": 4, "
	    "\"distance_metric\": \"cosine\", \"sparse_vectors\": "
	    "{\"text\": {\"modifier\": \"idf\"}}}");
	off = (size_t) snprintf(body, 1 << 16, "{\"vectors\": [");
	for (int i = 0; i < HN; i++) {
		uint32_t ix[3];
		float val[3];
		uint32_t n = h_text(i, ix, val);

		off += (size_t) snprintf(body + off, (1 << 16) - off, "%s{\"id\": "
		    "%d, \"data\": [%d, %d, 1, %d], \"metadata\": {\"odd\": %d}, "
		    "\"vectors\": {\"text\": {\"indices\": [", i ? ", " : "", i,
		    i % 5, i % 3, i % 4 + 1, i % 2);
		for (uint32_t j = 0; j < n; j++)
			off += (size_t) snprintf(body + off, (1 << 16) - off,
			    "%s%u", j ? ", " : "", ix[j]);
		off += (size_t) snprintf(body + off, (1 << 16) - off,
		    "], \"values\": [");
		for (uint32_t j = 0; j < n; j++)
			off += (size_t) snprintf(body + off, (1 << 16) - off,
			    "%s%g", j ? ", " : "", val[j]);
		off += (size_t) snprintf(body + off, (1 << 16) - off, "]}}}");
	}
	snprintf(body + off, (1 << 16) - off, "]}");
	ok("POST", "/collections/hy/vectors/upsert", body);

	for (int q = 0; q < 6; q++) {
		uint32_t qi[2] = { (uint32_t) q, (uint32_t) (q * 4 + 2) };
		struct hl dense, sparse, hyb;
		const char *m = methods[q % 3];
		const char *flt = q % 2 ? "{\"must\": [{\"key\": \"odd\", "
		    "\"match\": {\"value\": 1}}]}" : "null";
		double npts = HN, w[2];

		/* the sparse side against a scan of the points written */
		snprintf(body, 1 << 16, "{\"sparse_vector\": {\"using\": "
		    "\"text\", \"indices\": [%u, %u], \"values\": [1, 0.5]}, "
		    "\"limit\": 20, \"filter\": %s}", qi[0], qi[1], flt);
		d = call(200, "POST", "/collections/hy/search", body);
		hl_of(d, &sparse);
		json_decref(d);
		for (int j = 0; j < 2; j++) {
			double df = 0;

			for (int i = 0; i < HN; i++) {
				uint32_t ix[3];
				float val[3];
				uint32_t n = h_text(i, ix, val);

				for (uint32_t k = 0; k < n; k++)
					df += ix[k] == qi[j];
			}
			w[j] = (j ? 0.5 : 1) * log1p((npts - df + 0.5) /
			    (df + 0.5));
		}
		{
			struct hl want = { 0 };

			for (int i = 0; i < HN; i++) {
				uint32_t ix[3];
				float val[3];
				uint32_t n = h_text(i, ix, val);
				double s = 0;
				int shared = 0;

				if (q % 2 && i % 2 == 0)
					continue;
				for (int j = 0; j < 2; j++)
					for (uint32_t k = 0; k < n; k++)
						if (ix[k] == qi[j]) {
							s += w[j] * val[k];
							shared = 1;
						}
				if (!shared)
					continue;
				/* insert by (score desc, id asc) */
				size_t p = want.n++;

				while (p > 0 && (want.s[p - 1] < s - 1e-9 ||
				    (fabs(want.s[p - 1] - s) <= 1e-9 &&
				    want.id[p - 1] > i))) {
					want.s[p] = want.s[p - 1];
					want.id[p] = want.id[p - 1];
					p--;
				}
				want.s[p] = s;
				want.id[p] = i;
			}
			ck_assert_uint_eq(sparse.n, want.n < 20 ? want.n : 20);
			for (size_t i = 0; i < sparse.n; i++) {
				ck_assert_int_eq(sparse.id[i], want.id[i]);
				ck_assert_double_eq_tol(sparse.s[i], want.s[i],
				    1e-4);
			}
		}
		/* the dense side, as a similarity */
		snprintf(body, 1 << 16, "{\"vector\": [1, %d, 1, 0.5], "
		    "\"limit\": 20, \"filter\": %s}", q, flt);
		d = call(200, "POST", "/collections/hy/search", body);
		hl_of(d, &dense);
		json_decref(d);
		for (size_t i = 0; i < dense.n; i++)
			dense.s[i] = 1 - dense.s[i];
		/* fused by the server, and here from the two lists */
		snprintf(body, 1 << 16, "{\"dense\": {\"vector\": [1, %d, 1, "
		    "0.5]}, \"sparse\": {\"using\": \"text\", \"indices\": "
		    "[%u, %u], \"values\": [1, 0.5]}, \"fusion\": \"%s\", "
		    "\"limit\": 10, \"prefetch_limit\": 20, \"filter\": %s}", q,
		    qi[0], qi[1], m, flt);
		d = call(200, "POST", "/collections/hy/search/hybrid", body);
		hl_of(d, &hyb);
		json_decref(d);
		ck_assert_uint_gt(hyb.n, 0);
		for (size_t i = 0; i < hyb.n; i++) {
			double want = h_part(&dense, m, 0.7, hyb.id[i]) +
			    h_part(&sparse, m, 0.3, hyb.id[i]);

			ck_assert_msg(fabs(hyb.s[i] - want) < 1e-4, "%s: id %d "
			    "scored %g, the lists give %g", m, hyb.id[i],
			    hyb.s[i], want);
			ck_assert(i == 0 || hyb.s[i] <= hyb.s[i - 1] + 1e-6);
			ck_assert(q % 2 == 0 || hyb.id[i] % 2 == 1);
		}
	}
	/* bad input: a clear 400 */
	expect_400_saying("POST", "/collections/hy/search/hybrid",
	    "{\"dense\": {\"vector\": [1, 0, 0, 0]}}", "needs 'dense' and "
	    "'sparse'");
	expect_400_saying("POST", "/collections/hy/search/hybrid",
	    "{\"dense\": {\"vector\": [1, 0, 0, 0]}, \"sparse\": {\"using\": "
	    "\"text\", \"indices\": [1], \"values\": [1]}, \"fusion\": "
	    "\"max\"}", "'fusion' must be rrf, relative_score or dbsf");
	expect_400_saying("POST", "/collections/hy/search/hybrid",
	    "{\"dense\": {\"vector\": [1, 0, 0, 0]}, \"sparse\": {\"using\": "
	    "\"text\", \"indices\": [1], \"values\": [1]}, \"alpha\": 2}",
	    "'alpha' must be a number in [0, 1]");
	expect_400_saying("POST", "/collections/hy/search/hybrid",
	    "{\"dense\": {\"vector\": [1, 0, 0]}, \"sparse\": {\"using\": "
	    "\"text\", \"indices\": [1], \"values\": [1]}}", "dimension");
	expect_400_saying("POST", "/collections/hy/search",
	    "{\"sparse_vector\": {\"using\": \"title\", \"indices\": [1], "
	    "\"values\": [1]}}", "collection 'hy' has no sparse vector "
	    "'title'");
	expect_400_saying("POST", "/collections/hy/search",
	    "{\"sparse_vector\": {\"using\": \"text\", \"indices\": [1, 1], "
	    "\"values\": [1, 2]}}", "sparse index 1 appears twice");
	expect_400_saying("POST", "/collections/hy/search",
	    "{\"vector\": [1, 0, 0, 0], \"sparse_vector\": {\"using\": "
	    "\"text\", \"indices\": [1], \"values\": [1]}}",
	    "give 'vector' or 'sparse_vector', not both");
	free(body);
}
END_TEST

/* ===== Points ===== */

/* GET a point and check its vector and metadata. */
static void
point_expect(const char *path, const float *v, const char *meta)
{
	json_t *d = call(200, "GET", path, NULL), *want;
	json_t *data = json_object_get(d, "data");

	ck_assert_int_eq(json_array_size(data), DIM);
	for (int j = 0; j < DIM; j++)
		ck_assert_msg((float) json_number_value(json_array_get(data,
		    j)) == v[j], "%s: component %d differs", path, j);
	want = json_loads(meta, 0, NULL);
	ck_assert_msg(json_equal(json_object_get(d, "metadata"), want),
	    "%s: metadata differs", path);
	json_decref(want);
	json_decref(d);
}

/* The count of a collection. */
static json_int_t
count(const char *coll, const char *f)
{
	char path[128], body[512];
	json_t *d;
	json_int_t n;

	snprintf(path, sizeof(path), "/collections/%s/points/count", coll);
	snprintf(body, sizeof(body), "{\"filter\": %s, \"exact\": true}",
	    f ? f : "null");
	d = call(200, "POST", path, body);
	n = int_of(d, "count");
	json_decref(d);
	return n;
}

START_TEST(point_get_put_delete)
{
	json_t *d;
	char path[128], *body;

	coll_create("p", M_L2);
	body = dumps(json_pack("{s:i, s:o, s:{s:i}}", "id", 1, "data",
	    vec_json(V[0]), "metadata", "a", 1));
	d = call(200, "POST", "/collections/p/vectors", body);
	free(body);
	ck_assert_int_eq(int_of(d, "id"), 1);
	json_decref(d);
	d = callj(200, "POST", "/collections/p/vectors", json_pack("{s:o}",
	    "data", vec_json(V[1])));
	ck_assert_msg(json_is_string(json_object_get(d, "id")) &&
	    json_string_length(json_object_get(d, "id")) == 36,
	    "a point without id gets a UUID");
	snprintf(path, sizeof(path), "/collections/p/vectors/%s",
	    json_string_value(json_object_get(d, "id")));
	json_decref(d);
	point_expect(path, V[1], "{}");
	point_expect("/collections/p/vectors/1", V[0], "{\"a\": 1}");
	d = callj(200, "PUT", "/collections/p/vectors/1", json_pack("{s:o, "
	    "s:{s:s}}", "data", vec_json(V[2]), "metadata", "b", "x"));
	ck_assert_int_eq(int_of(d, "id"), 1);
	json_decref(d);
	point_expect("/collections/p/vectors/1", V[2], "{\"b\": \"x\"}");
	ok("PUT", "/collections/p/vectors/1", "{\"metadata\": {\"c\": 3}}");
	point_expect("/collections/p/vectors/1", V[2], "{\"c\": 3}");
	d = call(200, "DELETE", "/collections/p/vectors/1", NULL);
	ck_assert_int_eq(int_of(d, "id"), 1);
	json_decref(d);
	expect_err(404, "NOT_FOUND", "GET", "/collections/p/vectors/1", NULL);
	expect_err(404, "NOT_FOUND", "DELETE", "/collections/p/vectors/1",
	    NULL);
	expect_err(404, "NOT_FOUND", "PUT", "/collections/p/vectors/1",
	    "{\"metadata\": {}}");
	expect_err(400, "INVALID_ARGUMENT", "GET",
	    "/collections/p/vectors/abc", NULL);
	expect_err(404, "NOT_FOUND", "GET", "/collections/nope/vectors/1",
	    NULL);
	ck_assert_int_eq(count("p", NULL), 1);
}
END_TEST

START_TEST(point_writes_reject_bad_input)
{
	static const char *const bad[] = {
		"{\"id\": 5, \"data\": [1, 2, 3]}",               /* dimension */
		"{\"id\": 5}",                                    /* no data */
		"{\"id\": 5, \"data\": \"x\"}",
		"{\"id\": 5, \"data\": []}",
		"{\"id\": 5, \"data\": [1, 2, 3, 4, 5, 6, 7, \"8\"]}",
		"{\"id\": 5, \"data\": [1, 2, 3, 4, 5, 6, 7, 8], \"metadata\": "
		    "[1]}",
		"{\"id\": -5, \"data\": [1, 2, 3, 4, 5, 6, 7, 8]}",
		"{\"id\": 1.5, \"data\": [1, 2, 3, 4, 5, 6, 7, 8]}",
		"{\"id\": \"not-a-uuid\", \"data\": [1, 2, 3, 4, 5, 6, 7, 8]}",
		"{\"id\": 5, \"data\": [1, 2, 3, 4, 5, 6, 7, 8",
	};

	coll_create("p", M_L2);
	ok("POST", "/collections/p/vectors", "{\"id\": 7, \"data\": "
	    "[1, 2, 3, 4, 5, 6, 7, 8]}");
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		expect_err(400, "INVALID_ARGUMENT", "POST",
		    "/collections/p/vectors", bad[i]);
	expect_err(409, "ALREADY_EXISTS", "POST", "/collections/p/vectors",
	    "{\"id\": 7, \"data\": [1, 2, 3, 4, 5, 6, 7, 8]}");
	expect_err(404, "NOT_FOUND", "POST", "/collections/nope/vectors",
	    "{\"id\": 7, \"data\": [1, 2, 3, 4, 5, 6, 7, 8]}");
	expect_err(400, "INVALID_ARGUMENT", "PUT", "/collections/p/vectors/7",
	    "{\"data\": [1, 2]}");
	expect_err(400, "INVALID_ARGUMENT", "PUT", "/collections/p/vectors/7",
	    "{}");
	expect_err(400, "INVALID_ARGUMENT", "PUT", "/collections/p/vectors/7",
	    "{\"metadata\": \"x\"}");
	expect_err(400, "INVALID_ARGUMENT", "POST",
	    "/collections/p/vectors/batch", "{\"vectors\": \"x\"}");
	expect_err(400, "INVALID_ARGUMENT", "POST",
	    "/collections/p/vectors/batch", "{}");
	expect_err(400, "INVALID_ARGUMENT", "POST",
	    "/collections/p/vectors/upsert", "{\"vectors\": [{\"id\": 8}]}");
	expect_err(400, "INVALID_ARGUMENT", "POST",
	    "/collections/p/vectors/batch-delete", "{}");
	expect_err(400, "INVALID_ARGUMENT", "POST",
	    "/collections/p/vectors/batch-delete", "{\"ids\": [\"bad\"]}");
	expect_err(400, "INVALID_ARGUMENT", "POST",
	    "/collections/p/vectors/batch-delete", "{\"ids\": 3}");
	expect_err(404, "NOT_FOUND", "POST",
	    "/collections/nope/vectors/batch-delete", "{\"ids\": [1]}");
	expect_err(404, "NOT_FOUND", "POST",
	    "/collections/nope/vectors/batch", "{\"vectors\": [{\"id\": 8, "
	    "\"data\": [1, 2, 3, 4, 5, 6, 7, 8]}]}");
	ck_assert_int_eq(count("p", NULL), 1);
	point_expect("/collections/p/vectors/7",
	    (const float[DIM]) { 1, 2, 3, 4, 5, 6, 7, 8 }, "{}");
}
END_TEST

/* A batch is atomic: one bad point and nothing is written. In a 3-shard
 * cluster ids 8 and 9 land on different shards. */
START_TEST(batch_with_one_bad_point_writes_nothing)
{
	coll_create("p", M_L2);
	ok("POST", "/collections/p/vectors", "{\"id\": 7, \"data\": "
	    "[1, 2, 3, 4, 5, 6, 7, 8]}");
	expect_err(400, "INVALID_ARGUMENT", "POST",
	    "/collections/p/vectors/batch", "{\"vectors\": [{\"id\": 8, "
	    "\"data\": [1, 2, 3, 4, 5, 6, 7, 8]}, {\"id\": 9, \"data\": [1]}]}");
	expect_err(400, "INVALID_ARGUMENT", "POST",
	    "/collections/p/vectors/upsert", "{\"vectors\": [{\"id\": 11, "
	    "\"data\": [1, 2, 3, 4, 5, 6, 7, 8]}, {\"id\": 9, \"data\": [1]}]}");
	/* an id that exists: 409, and none of the others is written (over
	 * a cluster these ids fall on several shards) */
	expect_err(409, "ALREADY_EXISTS", "POST",
	    "/collections/p/vectors/batch", "{\"vectors\": ["
	    "{\"id\": 20, \"data\": [1, 2, 3, 4, 5, 6, 7, 8]}, "
	    "{\"id\": 21, \"data\": [1, 2, 3, 4, 5, 6, 7, 8]}, "
	    "{\"id\": 22, \"data\": [1, 2, 3, 4, 5, 6, 7, 8]}, "
	    "{\"id\": 23, \"data\": [1, 2, 3, 4, 5, 6, 7, 8]}, "
	    "{\"id\": 7, \"data\": [1, 2, 3, 4, 5, 6, 7, 8]}]}");
	expect_err(404, "NOT_FOUND", "GET", "/collections/p/vectors/8", NULL);
	expect_err(404, "NOT_FOUND", "GET", "/collections/p/vectors/11", NULL);
	for (int id = 20; id <= 23; id++) {
		char path[64];
		snprintf(path, sizeof(path), "/collections/p/vectors/%d", id);
		expect_err(404, "NOT_FOUND", "GET", path, NULL);
	}
	ck_assert_int_eq(count("p", NULL), 1);
}
END_TEST

START_TEST(batch_upsert_and_batch_delete_count)
{
	json_t *d, *ids;

	coll_create("p", M_DOT);
	d = callj(200, "POST", "/collections/p/vectors/batch",
	    json_pack("{s:[o, o, {s:o}]}", "vectors", point_json(0),
	    point_json(1), "data", vec_json(V[2])));
	ck_assert_int_eq(int_of(d, "inserted_count"), 3);
	ids = json_object_get(d, "ids");
	ck_assert_int_eq(json_array_size(ids), 3);
	ck_assert_int_eq(json_integer_value(json_array_get(ids, 0)), IDS(0));
	ck_assert_int_eq(json_integer_value(json_array_get(ids, 1)), IDS(1));
	ck_assert(json_is_string(json_array_get(ids, 2)));
	json_decref(d);
	d = callj(200, "POST", "/collections/p/vectors/upsert",
	    json_pack("{s:[{s:I, s:o, s:{}}, o]}", "vectors", "id",
	    (json_int_t) IDS(0), "data", vec_json(V[5]), "metadata",
	    point_json(3)));
	ck_assert_int_eq(int_of(d, "upserted_count"), 2);
	ck_assert_int_eq(json_array_size(json_object_get(d, "ids")), 2);
	json_decref(d);
	point_expect("/collections/p/vectors/10", V[5], "{}");
	ck_assert_int_eq(count("p", NULL), 4);
	d = call(200, "POST", "/collections/p/vectors/batch-delete",
	    "{\"ids\": [10, 13, 777777]}");
	ck_assert_int_eq(int_of(d, "deleted_count"), 2);
	json_decref(d);
	d = call(200, "POST", "/collections/p/vectors/batch-delete",
	    "{\"ids\": [10, 13]}");
	ck_assert_int_eq(int_of(d, "deleted_count"), 0);
	json_decref(d);
	ck_assert_int_eq(count("p", NULL), 2);
}
END_TEST

/* ===== Compaction ===== */

/* Collection z's stats, after the indexer caught up (at most 60 s). */
static json_t *
settled_stats(void)
{
	for (int i = 0; i < 600; i++) {
		json_t *d = call(200, "GET", "/collections/z", NULL);
		json_t *st = json_object_get(d, "stats");
		const char *status = json_string_value(json_object_get(
		    json_object_get(d, "optimizer"), "status"));
		if (int_of(st, "pending_count") == 0 && status != NULL &&
		    strcmp(status, "idle") == 0)
			return d;
		json_decref(d);
		usleep(100000);
	}
	ck_abort_msg("collection z never settled");
	return NULL;
}

/* The optimizer's compactions in a GET /collections/z answer. */
static json_int_t
compactions_of(const json_t *d)
{
	return json_integer_value(json_object_get(json_object_get(d,
	    "optimizer"), "compactions"));
}

START_TEST(compact_drops_the_dead_share)
{
	json_t *d, *st, *vs;
	json_int_t before;
	uint64_t seed = 77;

	coll_create("z", M_L2);
	for (int b = 0; b < 3000; b += 500) {
		vs = json_array();
		for (int i = b; i < b + 500; i++) {
			json_t *v = json_array();
			for (int j = 0; j < DIM; j++) {
				seed = seed * 6364136223846793005ULL + 1;
				json_array_append_new(v, json_real(
				    (double) (seed >> 40) / (1 << 24)));
			}
			json_array_append_new(vs, json_pack("{s:i, s:o}", "id",
			    i, "data", v));
		}
		json_decref(callj(200, "POST", "/collections/z/vectors/upsert",
		    json_pack("{s:o}", "vectors", vs)));
	}
	json_decref(settled_stats()); /* indexed, so deletes leave nodes */
	vs = json_array();
	for (int i = 0; i < 1500; i++)
		json_array_append_new(vs, json_integer(i));
	json_decref(callj(200, "POST", "/collections/z/vectors/batch-delete",
	    json_pack("{s:o}", "ids", vs)));
	d = settled_stats();
	st = json_object_get(d, "stats");
	before = compactions_of(d);
	/* the deletes left dead nodes, unless the background vacuum (dead
	 * share over 0.2) was quicker than us: on some shards of a cluster
	 * it may have been */
	ck_assert_msg(before > 0 || json_real_value(json_object_get(st,
	    "dead_ratio")) > 0, "dead_ratio %f",
	    json_real_value(json_object_get(st, "dead_ratio")));
	json_decref(d);
	d = call(200, "POST", "/collections/z/compact", NULL);
	ck_assert_str_eq(json_string_value(json_object_get(d, "name")), "z");
	ck_assert(json_is_string(json_object_get(json_object_get(d,
	    "optimizer"), "status")));
	json_decref(d);
	for (int i = 0; i < 600; i++) {
		d = settled_stats();
		/* a cluster sums its shards: one shard's vacuum may finish
		 * before the others' compactions */
		if (compactions_of(d) > before && int_of(json_object_get(d,
		    "stats"), "dead_count") == 0)
			break;
		json_decref(d);
		d = NULL;
		usleep(100000);
	}
	ck_assert_msg(d != NULL, "no compaction finished");
	st = json_object_get(d, "stats");
	ck_assert_int_eq(int_of(st, "dead_count"), 0);
	ck_assert(json_real_value(json_object_get(st, "dead_ratio")) == 0);
	ck_assert_int_eq(int_of(st, "indexed_count"), 1500);
	ck_assert_int_eq(int_of(st, "vector_count"), 1500);
	json_decref(d);
	expect_err(404, "NOT_FOUND", "POST", "/collections/nope/compact", NULL);
}
END_TEST

/* ===== Search ===== */

START_TEST(search_matches_naive_for_every_metric)
{
	for (int m = 0; m < M_COUNT; m++) {
		coll_fill(metric_names[m], m);
		for (int q = 0; q < NQ; q++)
			search_check(metric_names[m], m, q, 10, 0, NULL);
		search_check(metric_names[m], m, 0, 5, 5, NULL);
		search_check(metric_names[m], m, 1, 1, 0, NULL);
		search_check(metric_names[m], m, 2, N + 5, 0, NULL);
	}
}
END_TEST

START_TEST(search_with_vector_returns_the_stored_vector)
{
	json_t *d, *h, *v;
	int i;

	coll_fill("v", M_L1);
	d = callj(200, "POST", "/collections/v/search", json_pack("{s:o, s:i, "
	    "s:b}", "vector", vec_json(V[42]), "limit", 3, "with_vector", 1));
	h = json_array_get(d, 0);
	ck_assert_int_eq(int_of(h, "id"), IDS(42));
	ck_assert(fabs(json_number_value(json_object_get(h, "distance"))) <
	    1e-6);
	for (size_t k = 0; k < json_array_size(d); k++) {
		h = json_array_get(d, k);
		i = id_index(int_of(h, "id"));
		v = json_object_get(h, "vector");
		ck_assert_int_eq(json_array_size(v), DIM);
		for (int j = 0; j < DIM; j++)
			ck_assert((float) json_number_value(json_array_get(v,
			    j)) == V[i][j]);
	}
	json_decref(d);
}
END_TEST

START_TEST(filtered_search_and_count_match_naive)
{
	int n1 = 0, n2 = 0;

	coll_fill("f", M_COS);
	for (int i = 0; i < N; i++) {
		n1 += passes(F1, i);
		n2 += passes(F2, i);
	}
	for (int q = 0; q < NQ; q++) {
		search_check("f", M_COS, q, 10, 0, F1);
		search_check("f", M_COS, q, 10, 0, F2);
	}
	search_check("f", M_COS, 0, 50, 3, F1); /* fewer than limit match */
	ck_assert_int_eq(count("f", NULL), N);
	ck_assert_int_eq(count("f", F1), n1);
	ck_assert_int_eq(count("f", F2), n2);
	ok("POST", "/collections/f/points/count", "{}");
	expect_err(400, "INVALID_ARGUMENT", "POST",
	    "/collections/f/points/count", "{\"filter\": \"x\"}");
	expect_err(400, "INVALID_ARGUMENT", "POST",
	    "/collections/f/points/count", "{\"filter\": {\"must\": 5}}");
	expect_err(400, "INVALID_ARGUMENT", "POST",
	    "/collections/f/points/count", "{\"exact\": \"yes\"}");
	expect_err(404, "NOT_FOUND", "POST", "/collections/nope/points/count",
	    "{}");
}
END_TEST

/* One search object of a batch. */
static json_t *
batch_item(int q, int limit, int offset, const char *f)
{
	json_t *o = json_pack("{s:o, s:i, s:i, s:i}", "vector", vec_json(Q[q]),
	    "limit", limit, "offset", offset, "ef_search", EF);

	if (f != NULL)
		json_object_set_new(o, "filter", filter_json(f));
	return o;
}

START_TEST(batch_search_equals_individual_searches)
{
	static const struct { int q, limit, offset; const char *f; } b[] = {
		{ 0, 5, 0, NULL }, { 1, 3, 2, NULL }, { 2, 10, 0, F1 },
		{ 3, 4, 1, F2 }, { 4, 20, 0, NULL },
	};
	size_t nb = sizeof(b) / sizeof(b[0]);
	json_t *arr = json_array(), *d, *one;
	struct ref c[N];
	double qd[DIM];

	coll_fill("b", M_L2);
	for (size_t i = 0; i < nb; i++)
		json_array_append_new(arr, batch_item(b[i].q, b[i].limit,
		    b[i].offset, b[i].f));
	d = callj(200, "POST", "/collections/b/points/search/batch",
	    json_pack("{s:o}", "searches", arr));
	ck_assert_int_eq(json_array_size(d), nb);
	for (size_t i = 0; i < nb; i++) {
		one = search("b", b[i].q, b[i].limit, b[i].offset, b[i].f);
		ck_assert_msg(json_equal(one, json_array_get(d, i)),
		    "batch result %zu differs from the single search", i);
		json_decref(one);
		to_double(Q[b[i].q], qd);
		ranked_check(json_array_get(d, i), c, search_refs(M_L2, qd,
		    b[i].f, c), (size_t) b[i].limit, (size_t) b[i].offset,
		    "batch search");
	}
	json_decref(d);
	expect_err(400, "INVALID_ARGUMENT", "POST",
	    "/collections/b/points/search/batch", "{}");
	expect_err(400, "INVALID_ARGUMENT", "POST",
	    "/collections/b/points/search/batch", "{\"searches\": 1}");
	expect_err(400, "INVALID_ARGUMENT", "POST",
	    "/collections/b/points/search/batch", "{\"searches\": [{\"vector\":"
	    " [1, 2, 3, 4, 5, 6, 7, 8]}, {\"vector\": [1, 2]}]}");
	expect_err(400, "INVALID_ARGUMENT", "POST",
	    "/collections/b/points/search/batch", "{\"searches\": [{\"limit\":"
	    " 3}]}");
	expect_err(404, "NOT_FOUND", "POST",
	    "/collections/nope/points/search/batch", "{\"searches\": "
	    "[{\"vector\": [1, 2, 3, 4, 5, 6, 7, 8]}]}");
}
END_TEST

START_TEST(search_rejects_bad_input)
{
	static const char *const bad[] = {
		"{}",
		"{\"vector\": [1, 2, 3]}",
		"{\"vector\": \"x\"}",
		"{\"vector\": []}",
		"{\"vector\": [1, 2, 3, 4, 5, 6, 7, null]}",
		"{\"vector\": [1, 2, 3, 4, 5, 6, 7, 8], \"limit\": 0}",
		"{\"vector\": [1, 2, 3, 4, 5, 6, 7, 8], \"limit\": -1}",
		"{\"vector\": [1, 2, 3, 4, 5, 6, 7, 8], \"limit\": \"5\"}",
		"{\"vector\": [1, 2, 3, 4, 5, 6, 7, 8], \"offset\": -2}",
		"{\"vector\": [1, 2, 3, 4, 5, 6, 7, 8], \"filter\": \"x\"}",
		"{\"vector\": [1, 2, 3, 4, 5, 6, 7, 8], \"filter\": {\"must\": "
		    "[{\"key\": \"a\", \"range\": \"x\"}]}}",
		"{\"vector\": [1, 2, 3, 4, 5, 6, 7, 8], \"with_vector\": 1}",
		"{\"vector\": [1, 2, 3, 4, 5, 6, 7, 8], \"ef_search\": \"x\"}",
		"{\"vector\": [1, 2, 3, 4, 5, 6, 7, 8]",
		"[1, 2, 3, 4, 5, 6, 7, 8]",
	};

	coll_fill("s", M_L2);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		expect_err(400, "INVALID_ARGUMENT", "POST",
		    "/collections/s/search", bad[i]);
	expect_err(404, "NOT_FOUND", "POST", "/collections/nope/search",
	    "{\"vector\": [1, 2, 3, 4, 5, 6, 7, 8]}");
	search_check("s", M_L2, 0, 10, 0, NULL);
}
END_TEST

/* ===== Recommend and discover ===== */

/* A JSON array of the ids of points idx[0..n). */
static json_t *
ids_json(const int *idx, size_t n)
{
	json_t *a = json_array();

	for (size_t i = 0; i < n; i++)
		json_array_append_new(a, json_integer((json_int_t)
		    IDS(idx[i])));
	return a;
}

/* Is i among idx[0..n)? */
static int
among(int i, const int *idx, size_t n)
{
	for (size_t k = 0; k < n; k++)
		if (idx[k] == i)
			return 1;
	return 0;
}

/* average_vector's query: 2*avg(pos) - avg(neg), or avg(pos). */
static void
reco_query(const int *pos, size_t np, const int *neg, size_t nn, double *q)
{
	for (int j = 0; j < DIM; j++) {
		double sp = 0, sn = 0;
		for (size_t k = 0; k < np; k++)
			sp += V[pos[k]][j];
		for (size_t k = 0; k < nn; k++)
			sn += V[neg[k]][j];
		q[j] = nn == 0 ? sp / (double) np :
		    2 * sp / (double) np - sn / (double) nn;
	}
}

/* Recommend with average_vector and compare with the naive answer. */
static void
reco_avg_check(const char *coll, int m, const int *pos, size_t np,
    const int *neg, size_t nn, int limit, int offset, const char *f)
{
	json_t *b = json_pack("{s:o, s:o, s:i, s:i, s:s}", "positive",
	    ids_json(pos, np), "negative", ids_json(neg, nn), "limit", limit,
	    "offset", offset, "strategy", "average_vector"), *d;
	struct ref c[N];
	double q[DIM];
	char path[128];
	size_t n = 0;

	if (f != NULL)
		json_object_set_new(b, "filter", filter_json(f));
	snprintf(path, sizeof(path), "/collections/%s/points/recommend", coll);
	d = callj(200, "POST", path, b);
	reco_query(pos, np, neg, nn, q);
	for (int i = 0; i < N; i++)
		if (passes(f, i) && !among(i, pos, np) && !among(i, neg, nn))
			c[n++] = (struct ref) { 0, ref_dist(m, q, V[i]),
				IDS(i) };
	ranked_check(d, c, n, (size_t) limit, (size_t) offset,
	    "recommend average_vector");
	json_decref(d);
}

START_TEST(recommend_average_vector_matches_naive)
{
	static const int pos[] = { 5, 17, 42 }, neg[] = { 7, 99 };
	static const int pos2[] = { 0, 1, 2, 3, 4, 150, 151 };

	coll_fill("euclidean", M_L2);
	coll_fill("cosine", M_COS);
	reco_avg_check("euclidean", M_L2, pos, 3, neg, 2, 10, 0, NULL);
	reco_avg_check("cosine", M_COS, pos, 3, neg, 2, 10, 0, NULL);
	reco_avg_check("euclidean", M_L2, pos, 3, NULL, 0, 10, 0, NULL);
	reco_avg_check("cosine", M_COS, pos2, 7, neg, 1, 8, 3, F2);
	/* The examples are not returned even when they are the nearest. */
	reco_avg_check("euclidean", M_L2, pos, 1, NULL, 0, N, 0, NULL);
}
END_TEST

/* The logistic function. */
static double
sigmoid(double z)
{
	return 1.0 / (1.0 + exp(-z));
}

START_TEST(recommend_best_score_matches_naive)
{
	static const int pos[] = { 11, 22, 33 }, neg[] = { 44, 55 };
	double vd[DIM];
	struct ref c[N];
	size_t n = 0;
	json_t *d;

	coll_fill("e", M_L2);
	d = callj(200, "POST", "/collections/e/points/recommend",
	    json_pack("{s:o, s:o, s:i, s:s}", "positive", ids_json(pos, 3),
	    "negative", ids_json(neg, 2), "limit", 15, "strategy",
	    "best_score"));
	for (int i = 0; i < N; i++) {
		double dp = INFINITY, dn = INFINITY;
		if (among(i, pos, 3) || among(i, neg, 2))
			continue;
		to_double(V[i], vd);
		for (int k = 0; k < 3; k++)
			dp = fmin(dp, ref_dist(M_L2, vd, V[pos[k]]));
		for (int k = 0; k < 2; k++)
			dn = fmin(dn, ref_dist(M_L2, vd, V[neg[k]]));
		/* vecdb.h: distance = -score; closer-to-a-positive first */
		c[n++] = (struct ref) { dp <= dn, dp <= dn ? -sigmoid(-dp) :
			sigmoid(-dn), IDS(i) };
	}
	ranked_check(d, c, n, 15, 0, "recommend best_score");
	json_decref(d);
}
END_TEST

/* Discover by ids: target t, pairs (p[k], n[k]); the naive ranking. */
static void
discover_ids_check(const char *coll, int m, int t, const int *p,
    const int *ng, size_t np, int limit, int offset)
{
	json_t *ctx = json_array(), *d;
	struct ref c[N];
	double vd[DIM], td[DIM];
	char path[128];
	size_t n = 0;

	for (size_t k = 0; k < np; k++)
		json_array_append_new(ctx, json_pack("{s:I, s:I}", "positive",
		    (json_int_t) IDS(p[k]), "negative",
		    (json_int_t) IDS(ng[k])));
	snprintf(path, sizeof(path), "/collections/%s/points/discover", coll);
	d = callj(200, "POST", path, json_pack("{s:I, s:o, s:i, s:i}",
	    "target", (json_int_t) IDS(t), "context", ctx, "limit", limit,
	    "offset", offset));
	to_double(V[t], td);
	for (int i = 0; i < N; i++) {
		int hits = 0;
		if (i == t || among(i, p, np) || among(i, ng, np))
			continue;
		to_double(V[i], vd);
		for (size_t k = 0; k < np; k++)
			hits += ref_dist(m, vd, V[p[k]]) <
			    ref_dist(m, vd, V[ng[k]]);
		c[n++] = (struct ref) { hits, ref_dist(m, td, V[i]), IDS(i) };
	}
	ranked_check(d, c, n, (size_t) limit, (size_t) offset,
	    "discover by ids");
	json_decref(d);
}

START_TEST(discover_matches_naive)
{
	static const int p[] = { 20, 40, 60 }, ng[] = { 30, 50, 70 };

	coll_fill("euclidean", M_L2);
	coll_fill("dot_product", M_DOT);
	discover_ids_check("euclidean", M_L2, 10, p, ng, 2, 10, 0);
	discover_ids_check("euclidean", M_L2, 10, p, ng, 3, 25, 5);
	discover_ids_check("dot_product", M_DOT, 77, p, ng, 3, 12, 0);
}
END_TEST

START_TEST(discover_with_vectors_matches_naive)
{
	json_t *ctx, *d;
	struct ref c[N];
	double vd[DIM], td[DIM];
	size_t n = 0;

	coll_fill("d", M_L1);
	/* Vectors that are not points: nothing is excluded. */
	ctx = json_pack("[{s:o, s:o}, {s:o, s:o}]", "positive", vec_json(Q[1]),
	    "negative", vec_json(Q[2]), "positive", vec_json(Q[3]),
	    "negative", vec_json(Q[4]));
	d = callj(200, "POST", "/collections/d/points/discover",
	    json_pack("{s:o, s:o, s:i, s:i, s:o}", "target", vec_json(Q[0]),
	    "context", ctx, "limit", 10, "offset", 2, "filter",
	    filter_json(F2)));
	to_double(Q[0], td);
	for (int i = 0; i < N; i++) {
		int hits = 0;
		if (!passes(F2, i))
			continue;
		to_double(V[i], vd);
		for (int k = 1; k <= 3; k += 2)
			hits += ref_dist(M_L1, vd, Q[k]) < ref_dist(M_L1, vd,
			    Q[k + 1]);
		c[n++] = (struct ref) { hits, ref_dist(M_L1, td, V[i]),
			IDS(i) };
	}
	ranked_check(d, c, n, 10, 2, "discover with vectors");
	json_decref(d);
}
END_TEST

START_TEST(recommend_and_discover_reject_bad_input)
{
	static const char *const bad_reco[] = {
		"{}",
		"{\"positive\": []}",
		"{\"positive\": 10}",
		"{\"positive\": [\"x\"]}",
		"{\"positive\": [10], \"strategy\": \"nope\"}",
		"{\"positive\": [10], \"limit\": 0}",
		"{\"positive\": [10], \"filter\": 3}",
		"{\"positive\": [[1, 2]]}",
		"{\"positive\": [10], \"negative\": \"x\"}",
	};
	static const char *const bad_disc[] = {
		"{}",
		"{\"target\": 10, \"context\": 3}",
		"{\"target\": 10, \"context\": [{\"positive\": 13}]}",
		"{\"target\": 10, \"context\": [5]}",
		"{\"target\": \"x\"}",
		"{\"target\": [1, 2]}",
		"{\"target\": 10, \"limit\": -1}",
	};

	coll_fill("r", M_L2);
	for (size_t i = 0; i < sizeof(bad_reco) / sizeof(bad_reco[0]); i++)
		expect_err(400, "INVALID_ARGUMENT", "POST",
		    "/collections/r/points/recommend", bad_reco[i]);
	for (size_t i = 0; i < sizeof(bad_disc) / sizeof(bad_disc[0]); i++)
		expect_err(400, "INVALID_ARGUMENT", "POST",
		    "/collections/r/points/discover", bad_disc[i]);
	expect_err(404, "NOT_FOUND", "POST", "/collections/r/points/recommend",
	    "{\"positive\": [999999]}");
	expect_err(404, "NOT_FOUND", "POST", "/collections/r/points/discover",
	    "{\"target\": 999999}");
	expect_err(404, "NOT_FOUND", "POST", "/collections/r/points/discover",
	    "{\"target\": 10, \"context\": [{\"positive\": 13, \"negative\": "
	    "999999}]}");
	expect_err(404, "NOT_FOUND", "POST",
	    "/collections/nope/points/recommend", "{\"positive\": [10]}");
	expect_err(404, "NOT_FOUND", "POST",
	    "/collections/nope/points/discover", "{\"target\": 10}");
}
END_TEST

/*
 * Examples of the wrong dimension, alone or beside a point given by id,
 * in every slot: context pairs (positive and negative), the target, and
 * recommend's lists. Each is a 400 and the server keeps serving (a
 * negative of the wrong dimension beside a positive id was freed twice
 * and killed the server).
 */
START_TEST(examples_of_the_wrong_dimension_are_400_and_the_server_lives)
{
	static const char *const bad_disc[] = {
		"{\"target\": 10, \"context\": [{\"positive\": 13, "
		    "\"negative\": [0.1, 0.1, 0.1]}], \"limit\": 5}",
		"{\"target\": 10, \"context\": [{\"positive\": [0.1, 0.1, "
		    "0.1], \"negative\": 13}], \"limit\": 5}",
		"{\"target\": 10, \"context\": [{\"positive\": [0.1, 0.1, "
		    "0.1], \"negative\": [0.2, 0.2, 0.2]}]}",
		"{\"target\": 10, \"context\": [{\"positive\": [1, 2, 3, 4, "
		    "5, 6, 7, 8], \"negative\": [0.1, 0.1, 0.1]}]}",
		"{\"target\": 10, \"context\": [{\"positive\": [0.1, 0.1, "
		    "0.1], \"negative\": [1, 2, 3, 4, 5, 6, 7, 8]}]}",
		"{\"target\": 10, \"context\": [{\"positive\": 13, "
		    "\"negative\": 16}, {\"positive\": 19, \"negative\": [1, 2, "
		    "3, 4, 5, 6, 7, 8, 9]}]}",
		"{\"target\": [0.1, 0.1, 0.1], \"context\": [{\"positive\": "
		    "13, \"negative\": 16}]}",
		"{\"target\": [0.1, 0.1, 0.1]}",
		"{\"target\": [0.1, 0.1, 0.1], \"context\": [{\"positive\": "
		    "[1, 2, 3, 4, 5, 6, 7, 8], \"negative\": 13}]}",
		"{\"target\": [1, 2, 3, 4, 5, 6, 7, 8], \"context\": "
		    "[{\"positive\": [0.1, 0.1, 0.1], \"negative\": [0.2, 0.2, "
		    "0.2]}]}",
	};
	static const char *const bad_reco[] = {
		"{\"positive\": [[0.1, 0.1, 0.1]]}",
		"{\"positive\": [10, [0.1, 0.1, 0.1]]}",
		"{\"positive\": [10], \"negative\": [[0.1, 0.1, 0.1]]}",
		"{\"positive\": [[1, 2, 3, 4, 5, 6, 7, 8]], \"negative\": "
		    "[[0.1, 0.1, 0.1]]}",
		"{\"positive\": [[0.1, 0.1, 0.1]], \"negative\": [13]}",
	};

	coll_fill("w", M_L2);
	for (size_t i = 0; i < sizeof(bad_disc) / sizeof(bad_disc[0]); i++) {
		expect_err(400, "INVALID_ARGUMENT", "POST",
		    "/collections/w/points/discover", bad_disc[i]);
		json_decref(call(200, "GET", "/health", NULL));
	}
	for (size_t i = 0; i < sizeof(bad_reco) / sizeof(bad_reco[0]); i++) {
		expect_err(400, "INVALID_ARGUMENT", "POST",
		    "/collections/w/points/recommend", bad_reco[i]);
		json_decref(call(200, "GET", "/health", NULL));
	}
	/* and still answers right */
	discover_ids_check("w", M_L2, 10, (const int[]) { 20, 40 },
	    (const int[]) { 30, 50 }, 2, 10, 0);
}
END_TEST

/* ===== Scroll ===== */

/* Scroll the whole collection with page size limit; the points in order
 * (new reference). */
static json_t *
scroll_all(const char *coll, int limit, const char *f, int with_vectors)
{
	json_t *all = json_array(), *off = json_null(), *b, *d, *pts;
	char path[128];
	int pages = 0;

	snprintf(path, sizeof(path), "/collections/%s/points/scroll", coll);
	for (;;) {
		b = json_pack("{s:i, s:O, s:b, s:b}", "limit", limit, "offset",
		    off, "with_vectors", with_vectors, "with_payload", 1);
		if (f != NULL)
			json_object_set_new(b, "filter", filter_json(f));
		d = callj(200, "POST", path, b);
		pts = json_object_get(d, "points");
		ck_assert_msg(json_is_array(pts) && json_array_size(pts) <=
		    (size_t) limit, "scroll page %d: bad 'points'", pages);
		json_array_extend(all, pts);
		json_decref(off);
		off = json_incref(json_object_get(d, "next_offset"));
		ck_assert_msg(off != NULL, "scroll: no 'next_offset' member");
		json_decref(d);
		ck_assert_msg(++pages <= N + 1, "scroll does not end");
		if (json_is_null(off))
			break;
	}
	json_decref(off);
	return all;
}

/* Check one scrolled point against point i. */
static void
scroll_point_check(const json_t *p, int i, int with_vectors)
{
	json_t *want = payload(i), *v = json_object_get(p, "vector");

	ck_assert_msg(json_equal(json_object_get(p, "payload"), want),
	    "scroll: payload of point %d differs", i);
	json_decref(want);
	ck_assert_msg(json_object_get(p, "score") != NULL, "scroll: no score");
	if (!with_vectors)
		return;
	ck_assert_int_eq(json_array_size(v), DIM);
	for (int j = 0; j < DIM; j++)
		ck_assert((float) json_number_value(json_array_get(v, j)) ==
		    V[i][j]);
}

/* ===== Ids above INT64_MAX ===== */

#define BIG1 "18446744073709551615"   /* UINT64_MAX */
#define BIG2 "9223372036854775808"    /* INT64_MAX + 1 */
#define BIG1_U UINT64_MAX
#define BIG2_U (1ULL << 63)

/*
 * One request that must answer @p want, its body read as the server
 * means it: with api_json_loadb (jansson alone refuses integers above
 * INT64_MAX). Returns "data" or "error" (new reference); *text, when not
 * NULL, gets the body text (free it).
 */
static json_t *
call_u64(int want, const char *m, const char *p, const char *body,
    char **text)
{
	json_error_t e;
	struct resp r;
	json_t *j, *out;

	ck_assert_msg(http_req(&S, m, p, body, NULL, &r) == 0, "%s %s: no "
	    "HTTP response; server stderr:\n%s", m, p, srv_log_tail(&S));
	ck_assert_msg(r.status == want, "%s %s (body %.300s): expected %d, "
	    "got %d: %.600s", m, p, body ? body : "none", want, r.status,
	    r.body);
	j = api_json_loadb(r.body, r.len, 0, &e);
	ck_assert_msg(j != NULL, "%s %s: %s: %.400s", m, p, e.text, r.body);
	out = json_incref(json_object_get(j, want == 200 ? "data" : "error"));
	ck_assert_ptr_nonnull(out);
	json_decref(j);
	if (text != NULL)
		*text = strdup(r.body);
	resp_free(&r);
	return out;
}

/* The unsigned id at key of o. */
static uint64_t
u64_of(const json_t *o, const char *key)
{
	uint64_t v = 0;

	ck_assert_msg(api_json_get_u64(json_object_get(o, key), &v), "'%s' is "
	    "not an unsigned integer", key);
	return v;
}

/* The text must hold @p id as a bare number after @p key, never quoted. */
static void
text_has_bare(const char *text, const char *key, const char *id)
{
	char want[96], quoted[96];

	snprintf(want, sizeof(want), "\"%s\":%s", key, id);
	snprintf(quoted, sizeof(quoted), "\"%s\"", id);
	ck_assert_msg(strstr(text, want) != NULL, "no %s in %.600s", want,
	    text);
	ck_assert_msg(strstr(text, quoted) == NULL, "%s is quoted in %.600s",
	    id, text);
}

/* A point body {id, data: V[i]} with the id's text as given. */
static char *
big_point(const char *id, int i)
{
	char *vec = dumps(vec_json(V[i])), *b;

	ck_assert(asprintf(&b, "{\"id\": %s, \"data\": %s}", id, vec) > 0);
	free(vec);
	return b;
}

/*
 * Is the server's body parser the one that reads big integers? The REST
 * server parses in api_http.c, which must call api_json_loadb(); until it
 * does this says so and the test is skipped, loudly.
 */
static int
u64_bodies_parse(void)
{
	struct resp r;
	int yes;

	ck_assert(http_req(&S, "POST", "/collections/nope/points/count",
	    "{\"x\": " BIG1 "}", NULL, &r) == 0);
	yes = strstr(r.body, "too big integer") == NULL;
	resp_free(&r);
	if (!yes)
		fprintf(stderr, "rest_test: SKIPPED ids_above_int64_max_round_"
		    "trip: the server refuses integers above INT64_MAX "
		    "(api_http.c must parse with api_json_loadb and write "
		    "with api_json_dumps)\n");
	return yes;
}

/* The text after "key": in text, up to its closing brace: a copy. */
static char *
object_after(const char *text, const char *key)
{
	const char *p = strstr(text, key);
	size_t n = 0;
	int depth = 0, in_str = 0;

	ck_assert_msg(p != NULL, "no %s in %.400s", key, text);
	p += strlen(key);
	for (; p[n] != '\0'; n++) {
		if (in_str) {
			if (p[n] == '\\')
				n++;
			else if (p[n] == '"')
				in_str = 0;
		} else if (p[n] == '"') {
			in_str = 1;
		} else if (p[n] == '{') {
			depth++;
		} else if (p[n] == '}' && --depth == 0) {
			break;
		}
	}
	return strndup(p, n + 1);
}

/*
 * A payload comes back from every read as it was written: its reals to
 * the last digit a double holds (not the nine of the answer's float32
 * numbers), in the fewest digits that keep them, and its strings with
 * every character.
 */
START_TEST(payloads_come_back_as_written)
{
	/* as sent, then as printed back: compact, é and the emoji as UTF-8 */
	static const char sent[] = "{\"f\": 0.1, \"g\": 1.23456789012345, "
	    "\"e\": 2.5e-7, \"d\": 1e300, \"z\": -0.0, \"i\": 3.0, \"n\": -12, "
	    "\"s\": \"\\u00e9 \\\"q\\\" \\\\ \\u0001 / \\ud83d\\ude00\", "
	    "\"a\": [null, true, {\"x\": []}]}";
	static const char back[] = "{\"f\":0.1,\"g\":1.23456789012345,"
	    "\"e\":2.5e-7,\"d\":1e300,\"z\":-0.0,\"i\":3.0,\"n\":-12,"
	    "\"s\":\"\xc3\xa9 \\\"q\\\" \\\\ \\u0001 / \xf0\x9f\x98\x80\","
	    "\"a\":[null,true,{\"x\":[]}]}";
	static const struct {
		const char *m, *path, *body, *key;
	} reads[] = {
		{ "GET", "/collections/w/vectors/1", NULL, "\"metadata\":" },
		{ "POST", "/collections/w/search", "{\"vector\": [1, 2], "
		  "\"limit\": 1}", "\"metadata\":" },
		{ "POST", "/collections/w/points/scroll", "{}", "\"payload\":" },
		{ "POST", "/collections/w/points/recommend", "{\"positive\": "
		  "[2], \"limit\": 1}", "\"metadata\":" },
	};
	json_t *want, *got, *d;
	char *b, *text, *m;

	ok("POST", "/collections", "{\"name\": \"w\", \"dimension\": 2}");
	ck_assert(asprintf(&b, "{\"id\": 1, \"data\": [1, 2], \"metadata\": "
	    "%s}", sent) > 0);
	ok("POST", "/collections/w/vectors", b);
	free(b);
	ok("POST", "/collections/w/vectors", "{\"id\": 2, \"data\": [1, 2.5]}");
	want = json_loads(back, 0, NULL);
	ck_assert_ptr_nonnull(want);
	for (size_t i = 0; i < sizeof(reads) / sizeof(reads[0]); i++) {
		d = call_u64(200, reads[i].m, reads[i].path, reads[i].body,
		    &text);
		m = object_after(text, reads[i].key);
		ck_assert_msg(strcmp(m, back) == 0, "%s %s: %s is\n%s\nnot\n%s",
		    reads[i].m, reads[i].path, reads[i].key, m, back);
		got = json_loads(m, 0, NULL);
		ck_assert_msg(json_equal(got, want), "%s: not the same values",
		    reads[i].path);
		json_decref(got);
		free(m);
		free(text);
		json_decref(d);
	}
	json_decref(want);
}
END_TEST

START_TEST(ids_above_int64_max_round_trip)
{
	json_t *d, *hits, *pts;
	char *b, *text;
	uint64_t want[4] = { 5, INT64_MAX, BIG2_U, BIG1_U };

	if (!u64_bodies_parse())
		return;
	coll_create("u", M_L2);
	b = big_point(BIG1, 0);
	d = call_u64(200, "POST", "/collections/u/vectors", b, &text);
	free(b);
	ck_assert_uint_eq(u64_of(d, "id"), BIG1_U);
	text_has_bare(text, "id", BIG1);
	free(text);
	json_decref(d);
	{
		char *p2 = big_point(BIG2, 1), *p3 = big_point("5", 2),
		     *p4 = big_point("9223372036854775807", 3);
		ck_assert(asprintf(&b, "{\"vectors\": [%s, %s, %s]}", p2, p3,
		    p4) > 0);
		free(p2), free(p3), free(p4);
	}
	d = call_u64(200, "POST", "/collections/u/vectors/batch", b, &text);
	free(b);
	ck_assert_uint_eq(u64_of(d, "inserted_count"), 3);
	ck_assert_msg(strstr(text, "[" BIG2 ",5,9223372036854775807]"),
	    "ids: %s", text);
	free(text);
	json_decref(d);

	/* get */
	d = call_u64(200, "GET", "/collections/u/vectors/" BIG1, NULL, &text);
	ck_assert_uint_eq(u64_of(d, "id"), BIG1_U);
	text_has_bare(text, "id", BIG1);
	free(text);
	json_decref(d);

	/* search: the nearest to V[0] is the point BIG1 */
	b = dumps(json_pack("{s:o, s:i}", "vector", vec_json(V[0]), "limit",
	    4));
	hits = call_u64(200, "POST", "/collections/u/search", b, &text);
	free(b);
	ck_assert_uint_eq(json_array_size(hits), 4);
	ck_assert_uint_eq(u64_of(json_array_get(hits, 0), "id"), BIG1_U);
	text_has_bare(text, "id", BIG1);
	text_has_bare(text, "id", BIG2);
	free(text);
	json_decref(hits);

	/* scroll in id order, one a page, next_offset as the numbers */
	b = strdup("{\"limit\": 1}");
	for (int k = 0; k < 4; k++) {
		uint64_t next;
		d = call_u64(200, "POST", "/collections/u/points/scroll", b,
		    &text);
		free(b);
		pts = json_object_get(d, "points");
		ck_assert_uint_eq(json_array_size(pts), 1);
		ck_assert_uint_eq(u64_of(json_array_get(pts, 0), "id"),
		    want[k]);
		if (k == 3) {
			ck_assert(json_is_null(json_object_get(d,
			    "next_offset")));
			b = NULL;
		} else {
			next = u64_of(d, "next_offset");
			ck_assert_uint_eq(next, want[k + 1]);
			ck_assert(asprintf(&b, "{\"limit\": 1, \"offset\": "
			    "%llu}", (unsigned long long) next) > 0);
		}
		free(text);
		json_decref(d);
	}

	/* recommend and discover by those ids */
	hits = call_u64(200, "POST", "/collections/u/points/recommend",
	    "{\"positive\": [" BIG1 "], \"negative\": [" BIG2 "], \"limit\": "
	    "10}", NULL);
	ck_assert_uint_eq(json_array_size(hits), 2);
	for (size_t i = 0; i < 2; i++) {
		uint64_t id = u64_of(json_array_get(hits, i), "id");
		ck_assert(id == 5 || id == INT64_MAX);
	}
	json_decref(hits);
	hits = call_u64(200, "POST", "/collections/u/points/discover",
	    "{\"target\": " BIG2 ", \"context\": [{\"positive\": " BIG1 ", "
	    "\"negative\": 5}], \"limit\": 10}", NULL);
	ck_assert_uint_eq(json_array_size(hits), 1);
	ck_assert_uint_eq(u64_of(json_array_get(hits, 0), "id"), INT64_MAX);
	json_decref(hits);

	/* update, delete by batch and by URL */
	d = call_u64(200, "PUT", "/collections/u/vectors/" BIG1,
	    "{\"metadata\": {\"k\": 1}}", &text);
	text_has_bare(text, "id", BIG1);
	free(text);
	json_decref(d);
	d = call_u64(200, "POST", "/collections/u/vectors/batch-delete",
	    "{\"ids\": [" BIG2 "]}", NULL);
	ck_assert_uint_eq(u64_of(d, "deleted_count"), 1);
	json_decref(d);
	d = call_u64(200, "DELETE", "/collections/u/vectors/" BIG1, NULL,
	    &text);
	ck_assert_uint_eq(u64_of(d, "id"), BIG1_U);
	text_has_bare(text, "id", BIG1);
	free(text);
	json_decref(d);
	expect_err(404, "NOT_FOUND", "GET", "/collections/u/vectors/" BIG1,
	    NULL);
	ck_assert_int_eq(count("u", NULL), 2);

	/* what is still refused */
	expect_err(400, "INVALID_ARGUMENT", "POST", "/collections/u/vectors",
	    "{\"id\": 18446744073709551616, \"data\": [1, 2, 3, 4, 5, 6, 7, "
	    "8]}");
	expect_err(400, "INVALID_ARGUMENT", "POST", "/collections/u/vectors",
	    "{\"id\": 1, \"data\": [1, 2, 3, 4, 5, 6, 7, 8], \"metadata\": "
	    "{\"n\": " BIG1 "}}");
	expect_err(400, "INVALID_ARGUMENT", "POST",
	    "/collections/u/points/count", "{\"filter\": {\"must\": [{\"key\": "
	    "\"n\", \"match\": {\"value\": " BIG1 "}}]}}");
	expect_err(400, "INVALID_ARGUMENT", "POST", "/collections/u/search",
	    "{\"vector\": [1, 2, 3, 4, 5, 6, 7, 8], \"limit\": " BIG1 "}");
}
END_TEST

START_TEST(full_scroll_returns_every_point_once_in_id_order)
{
	static const char *const uuids[] = {
		"00000000-0000-4000-8000-000000000001",
		"7f000000-0000-4000-8000-000000000000",
		"ffffffff-ffff-4fff-bfff-ffffffffffff",
	};
	json_t *all, *p;
	char body[256];

	coll_fill("sc", M_L2);
	for (int k = 2; k >= 0; k--) {
		snprintf(body, sizeof(body), "{\"id\": \"%s\", \"data\": [1, 2, "
		    "3, 4, 5, 6, 7, 8]}", uuids[k]);
		ok("POST", "/collections/sc/vectors", body);
	}
	all = scroll_all("sc", 37, NULL, 1);
	ck_assert_int_eq(json_array_size(all), N + 3);
	for (int i = 0; i < N; i++) {  /* numeric ids first, ascending */
		p = json_array_get(all, (size_t) i);
		ck_assert_msg(json_is_integer(json_object_get(p, "id")) &&
		    int_of(p, "id") == (json_int_t) IDS(i), "scroll[%d]: "
		    "expected id %llu", i, (unsigned long long) IDS(i));
		scroll_point_check(p, i, 1);
	}
	for (int k = 0; k < 3; k++) /* then UUIDs in byte order */
		ck_assert_str_eq(json_string_value(json_object_get(
		    json_array_get(all, (size_t) (N + k)), "id")), uuids[k]);
	json_decref(all);
}
END_TEST

START_TEST(filtered_scroll_and_errors)
{
	json_t *all;
	size_t k = 0;

	coll_fill("sf", M_COS);
	all = scroll_all("sf", 7, F1, 0);
	for (int i = 0; i < N; i++) {
		json_t *p;
		if (!passes(F1, i))
			continue;
		p = json_array_get(all, k++);
		ck_assert_msg(p != NULL &&
		    int_of(p, "id") == (json_int_t) IDS(i),
		    "filtered scroll: point %d missing or out of order", i);
		ck_assert_msg(json_object_get(p, "vector") == NULL,
		    "vectors were not asked for");
		scroll_point_check(p, i, 0);
	}
	ck_assert_int_eq(json_array_size(all), k);
	ck_assert_int_eq(count("sf", F1), (json_int_t) k);
	json_decref(all);
	all = call(200, "POST", "/collections/sf/points/scroll",
	    "{\"limit\": 5, \"with_payload\": false, \"offset\": 13}");
	ck_assert_int_eq(json_array_size(json_object_get(all, "points")), 5);
	ck_assert_int_eq(int_of(json_array_get(json_object_get(all, "points"),
	    0), "id"), 13);
	ck_assert_msg(json_object_get(json_array_get(json_object_get(all,
	    "points"), 0), "payload") == NULL, "payload was not asked for");
	ck_assert_int_eq(int_of(all, "next_offset"), 28);
	json_decref(all);
	expect_err(400, "INVALID_ARGUMENT", "POST",
	    "/collections/sf/points/scroll", "{\"offset\": \"abc\"}");
	expect_err(400, "INVALID_ARGUMENT", "POST",
	    "/collections/sf/points/scroll", "{\"limit\": 0}");
	expect_err(400, "INVALID_ARGUMENT", "POST",
	    "/collections/sf/points/scroll", "{\"limit\": \"x\"}");
	expect_err(400, "INVALID_ARGUMENT", "POST",
	    "/collections/sf/points/scroll", "{\"filter\": []}");
	expect_err(400, "INVALID_ARGUMENT", "POST",
	    "/collections/sf/points/scroll", "{\"with_payload\": \"no\"}");
	expect_err(404, "NOT_FOUND", "POST", "/collections/nope/points/scroll",
	    "{}");
}
END_TEST

/* ===== Snapshots ===== */

/* GET a snapshot file: its bytes (caller frees) and length. */
static char *
download(const char *coll, const char *name, size_t *len)
{
	struct resp r;
	char path[256];
	char *body;

	snprintf(path, sizeof(path), "/collections/%s/snapshots/%s/download",
	    coll, name);
	ck_assert_int_eq(http_req(&S, "GET", path, NULL, NULL, &r), 0);
	ck_assert_msg(r.status == 200, "download: status %d: %.300s", r.status,
	    r.body);
	body = r.body;
	*len = r.len;
	r.body = NULL;
	resp_free(&r);
	return body;
}

/* POST raw bytes to the upload route; the response, checked. */
static json_t *
upload(int want, const char *coll, const void *bytes, size_t len)
{
	struct resp r;
	char path[256];
	json_t *out;

	snprintf(path, sizeof(path), "/collections/%s/snapshots/upload", coll);
	ck_assert_int_eq(http_req_raw(&S, "POST", path, bytes, len,
	    "application/octet-stream", NULL, &r), 0);
	ck_assert_msg(r.status == want, "upload to %s: expected %d, got %d: "
	    "%.300s", coll, want, r.status, r.body);
	envelope_check(&r, "POST", path);
	out = json_incref(json_object_get(r.json, want == 200 ? "data" :
	    "error"));
	resp_free(&r);
	return out;
}

/* The reference search of the snapshot tests, with vectors. */
static json_t *
snap_search(const char *coll)
{
	char path[128];

	snprintf(path, sizeof(path), "/collections/%s/search", coll);
	return callj(200, "POST", path, json_pack("{s:o, s:i, s:b, s:o}",
	    "vector", vec_json(Q[0]), "limit", 20, "with_vector", 1, "filter",
	    filter_json(F2)));
}

/* Create a snapshot of coll; its info (new reference). */
static json_t *
snap_create(const char *coll)
{
	char path[128];
	json_t *si;

	snprintf(path, sizeof(path), "/collections/%s/snapshots", coll);
	si = call(200, "POST", path, NULL);
	ck_assert_msg(json_is_string(json_object_get(si, "name")) &&
	    json_is_string(json_object_get(si, "checksum")),
	    "snapshot info lacks name/checksum");
	ck_assert_str_eq(json_string_value(json_object_get(si, "collection")),
	    coll);
	ck_assert_int_eq(int_of(si, "vector_count"), N);
	ck_assert_int_gt(int_of(si, "size_bytes"), 0);
	(void) int_of(si, "created_at");
	return si;
}

START_TEST(snapshot_roundtrip_through_download_and_upload)
{
	json_t *si, *list, *got, *before, *after, *d;
	const char *name;
	char path[256], *file;
	size_t len;
	int found = 0;

	coll_fill("snap", M_L2);
	before = snap_search("snap");
	si = snap_create("snap");
	name = json_string_value(json_object_get(si, "name"));
	list = call(200, "GET", "/collections/snap/snapshots", NULL);
	for (size_t i = 0; i < json_array_size(list); i++)
		found += json_equal(json_array_get(list, i), si);
	ck_assert_msg(found == 1, "the list does not hold the snapshot once");
	json_decref(list);
	snprintf(path, sizeof(path), "/collections/snap/snapshots/%s", name);
	got = call(200, "GET", path, NULL);
	ck_assert_msg(json_equal(got, si), "GET snapshot differs from create");
	json_decref(got);
	file = download("snap", name, &len);
	if (srv_target() == SRV_CLUSTER)
		/* every shard's file, then the manifest and its trailer */
		ck_assert(len > (size_t) int_of(si, "size_bytes") && len > 8 &&
		    memcmp(file + len - 8, "VDBCSNP1", 8) == 0);
	else
		ck_assert_int_eq(len, int_of(si, "size_bytes"));
	ok("DELETE", "/collections/snap", NULL);
	expect_err(404, "NOT_FOUND", "POST", "/collections/snap/search",
	    "{\"vector\": [1, 2, 3, 4, 5, 6, 7, 8]}");
	d = upload(200, "snap", file, len);
	ck_assert_str_eq(json_string_value(json_object_get(d, "collection")),
	    "snap");
	ck_assert(json_is_true(json_object_get(d, "restored")));
	json_decref(d);
	after = snap_search("snap");
	ck_assert_msg(json_equal(before, after), "search after upload "
	    "differs");
	ck_assert_int_eq(count("snap", NULL), N);
	/* The same file restores into a new name too. */
	json_decref(upload(200, "snap_copy", file, len));
	json_decref(after);
	after = snap_search("snap_copy");
	ck_assert_msg(json_equal(before, after), "search in the copy differs");
	free(file);
	json_decref(si);
	json_decref(before);
	json_decref(after);
}
END_TEST

START_TEST(corrupted_upload_changes_nothing)
{
	json_t *si, *before, *after, *e;
	char *file;
	size_t len;

	coll_fill("snap", M_COS);
	si = snap_create("snap");
	file = download("snap", json_string_value(json_object_get(si, "name")),
	    &len);
	ok("POST", "/collections/snap/vectors/batch-delete",
	    "{\"ids\": [10, 13, 16]}");
	before = snap_search("snap");
	file[len / 2] ^= 0x5a;
	e = upload(400, "snap", file, len);
	ck_assert_str_eq(json_string_value(json_object_get(e, "code")),
	    "INVALID_ARGUMENT");
	json_decref(e);
	json_decref(upload(400, "fresh", file, len));
	file[len / 2] ^= 0x5a;
	json_decref(upload(400, "snap", file, len / 2)); /* truncated */
	json_decref(upload(400, "snap", "", 0));
	after = snap_search("snap");
	ck_assert_msg(json_equal(before, after), "a refused upload changed "
	    "the collection");
	ck_assert_int_eq(count("snap", NULL), N - 3);
	expect_err(404, "NOT_FOUND", "GET", "/collections/fresh", NULL);
	free(file);
	json_decref(si);
	json_decref(before);
	json_decref(after);
}
END_TEST

START_TEST(snapshot_restore_by_name_delete_and_errors)
{
	json_t *si, *before, *after, *list;
	char path[256];
	const char *name;

	coll_fill("snap", M_DOT);
	before = snap_search("snap");
	si = snap_create("snap");
	name = json_string_value(json_object_get(si, "name"));
	ok("POST", "/collections/snap/vectors/batch-delete",
	    "{\"ids\": [10, 13, 16, 19, 22]}");
	ck_assert_int_eq(count("snap", NULL), N - 5);
	snprintf(path, sizeof(path), "/collections/snap/snapshots/%s/restore",
	    name);
	ok("POST", path, NULL);
	ck_assert_int_eq(count("snap", NULL), N);
	after = snap_search("snap");
	ck_assert_msg(json_equal(before, after), "search after restore "
	    "differs");
	snprintf(path, sizeof(path), "/collections/snap/snapshots/%s", name);
	ok("DELETE", path, NULL);
	expect_err(404, "NOT_FOUND", "GET", path, NULL);
	expect_err(404, "NOT_FOUND", "DELETE", path, NULL);
	list = call(200, "GET", "/collections/snap/snapshots", NULL);
	ck_assert_int_eq(json_array_size(list), 0);
	json_decref(list);
	expect_err(404, "NOT_FOUND", "GET",
	    "/collections/snap/snapshots/nope_1/download", NULL);
	expect_err(404, "NOT_FOUND", "POST",
	    "/collections/snap/snapshots/nope_1/restore", NULL);
	expect_err(404, "NOT_FOUND", "POST", "/collections/nope/snapshots",
	    NULL);
	json_decref(si);
	json_decref(before);
	json_decref(after);
}
END_TEST

/* ===== Restart ===== */

START_TEST(restart_keeps_data)
{
	json_t *before, *after, *list;

	coll_fill("r", M_COS);
	coll_create("empty", M_L1);
	before = snap_search("r");
	srv_restart(&S);  /* it may bind another free port */
	json_decref(call(200, "GET", "/health", NULL));
	list = call(200, "GET", "/collections", NULL);
	ck_assert_int_eq(json_array_size(list), 2);
	json_decref(list);
	after = snap_search("r");
	ck_assert_msg(json_equal(before, after), "search after restart "
	    "differs");
	ck_assert_int_eq(count("r", NULL), N);
	point_expect("/collections/r/vectors/13", V[1],
	    "{\"i\": 1, \"grp\": \"g1\", \"even\": false, \"tags\": "
	    "[\"t1\", \"all\"]}");
	ok("POST", "/collections/r/vectors", "{\"id\": 1, \"data\": "
	    "[1, 2, 3, 4, 5, 6, 7, 8]}");
	srv_restart(&S);
	ck_assert_int_eq(count("r", NULL), N + 1);
	json_decref(before);
	json_decref(after);
}
END_TEST

/* ===== Routing, bad bodies, limits ===== */

START_TEST(unknown_route_is_404_and_wrong_method_405)
{
	coll_create("c", M_L2);
	expect_err(404, "NOT_FOUND", "GET", "/nope", NULL);
	expect_err(404, "NOT_FOUND", "GET", "/", NULL);
	expect_err(404, "NOT_FOUND", "GET", "/collections/c/vectors/1/extra",
	    NULL);
	expect_err(404, "NOT_FOUND", "POST", "/collections/c/nope", "{}");
	expect_err(405, NULL, "PUT", "/collections", "{}");
	expect_err(405, NULL, "POST", "/health", "{}");
	expect_err(405, NULL, "DELETE", "/stats", NULL);
	expect_err(405, NULL, "GET", "/collections/c/search", NULL);
	expect_err(405, NULL, "PUT", "/collections/c", "{}");
	json_decref(call(200, "GET", "/health", NULL));
}
END_TEST

/* Collection name has its one point (id 1) and answers GET. */
static void
coll_intact(const char *name)
{
	char path[128];

	snprintf(path, sizeof(path), "/collections/%s/vectors/1", name);
	json_decref(call(200, "GET", path, NULL));
}

/*
 * A segment is decoded once, after routing: an escaped '/', '..', a NUL
 * or bytes that are not UTF-8 are refused (400), never routed elsewhere.
 * Each of these once deleted or listed another collection.
 */
START_TEST(escaped_paths_reach_no_other_collection)
{
	static const char *const names[] = { "a", "b", "c", "victim" };
	static const struct {
		const char *m, *p, *body;
	} bad[] = {
		{ "DELETE", "/collections/a/snapshots/..%2F..%2Fb", NULL },
		{ "DELETE", "/collections/a/vectors/..%2F..%2Fc", NULL },
		{ "DELETE", "/collections/a/snapshots/..", NULL },
		{ "DELETE", "/collections/a/snapshots/.", NULL },
		{ "DELETE", "/collections/a/snapshots/%2E%2E", NULL },
		{ "POST", "/collections/a/snapshots/..%2F..%2Fb/restore", NULL },
		{ "DELETE", "/collections/victim%00.anything", NULL },
		{ "GET", "/collections/%00", NULL },
		{ "GET", "/collections/a%2Fb", NULL },
		{ "GET", "/collections/%ff", NULL },
		{ "GET", "/collections/%c3%28", NULL },
		{ "DELETE", "/collections/%ff", NULL },
		{ "GET", "/collections/%c3%28/vectors/1", NULL },
		{ "DELETE", "/collections/a/vectors/%ff", NULL },
		{ "GET", "/collections/a/snapshots/%ff", NULL },
		{ "DELETE", "/collections/a/index/%c3%28", NULL },
		{ "POST", "/collections/%ff/search", "{\"vector\": [1]}" },
		{ "GET", "/collections/%zz", NULL },
		{ "GET", "/collections/%4", NULL },
	};
	char body[256];

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		char path[128];
		coll_create(names[i], M_L2);
		snprintf(path, sizeof(path), "/collections/%s/vectors",
		    names[i]);
		snprintf(body, sizeof(body), "{\"id\": 1, \"data\": "
		    "[1,2,3,4,5,6,7,8]}");
		json_decref(call(200, "POST", path, body));
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		expect_err(400, "INVALID_ARGUMENT", bad[i].m, bad[i].p,
		    bad[i].body);
		for (size_t k = 0; k < sizeof(names) / sizeof(names[0]); k++)
			coll_intact(names[k]);
	}
	/* ".." between routed segments is a path of its own: no route */
	expect_err(404, "NOT_FOUND", "GET", "/collections/a/../b", NULL);
	/* an escaped letter is not the route's word */
	expect_err(404, "NOT_FOUND", "GET", "/collections/a/%73napshots",
	    NULL);
	/* well-formed escapes still name their collection */
	json_decref(call(200, "GET", "/collections/%61", NULL));
	json_decref(call(200, "GET", "/collections/a/vectors/%31", NULL));
	ck_assert_msg(strstr(srv_log_tail(&S), "out of memory") == NULL,
	    "the server logged: %s", srv_log_tail(&S));
}
END_TEST

/* n nested arrays (or objects) as a body; caller frees. */
static char *
deep_body(size_t n, int objects)
{
	char *b = malloc(n * 6 + 16), *p = b;

	ck_assert(b != NULL);
	for (size_t i = 0; i < n; i++)
		p += sprintf(p, "%s", objects ? "{\"a\":" : "[");
	*p++ = '1';
	for (size_t i = 0; i < n; i++)
		*p++ = objects ? '}' : ']';
	*p = '\0';
	return b;
}

START_TEST(over_deep_json_is_400_and_server_stays_up)
{
	static const size_t depth[] = { 5000, 200000 };
	char *b, *full;

	coll_fill("d", M_L2);
	for (size_t i = 0; i < 2; i++)
		for (int obj = 0; obj <= 1; obj++) {
			b = deep_body(depth[i], obj);
			expect_err(400, "INVALID_ARGUMENT", "POST",
			    "/collections/d/search", b);
			expect_err(400, "INVALID_ARGUMENT", "POST",
			    "/collections", b);
			free(b);
			json_decref(call(200, "GET", "/health", NULL));
		}
	/* Deep inside a valid object: the filter. */
	b = deep_body(5000, 0);
	ck_assert(asprintf(&full, "{\"vector\": [1, 2, 3, 4, 5, 6, 7, 8], "
	    "\"filter\": %s}", b) > 0);
	expect_err(400, "INVALID_ARGUMENT", "POST", "/collections/d/search",
	    full);
	free(full);
	free(b);
	json_decref(call(200, "GET", "/health", NULL));
	search_check("d", M_L2, 0, 10, 0, NULL);
}
END_TEST

/* Expect 400 INVALID_ARGUMENT whose message holds @p part. */
static void
expect_400_saying(const char *m, const char *p, const char *body,
    const char *part)
{
	json_t *e = call(400, m, p, body);
	const char *msg = json_string_value(json_object_get(e, "message"));

	ck_assert_msg(strcmp(json_string_value(json_object_get(e, "code")),
	    "INVALID_ARGUMENT") == 0 && msg != NULL && strstr(msg, part) !=
	    NULL, "%s %s (body %.300s): message '%s', expected it to hold "
	    "'%s'", m, p, body, msg ? msg : "(none)", part);
	json_decref(e);
}

#define VEC8 "[1, 2, 3, 4, 5, 6, 7, 8]"

/*
 * A field a route does not know is a 400 naming it, at any depth: a
 * typo such as "fliter" must not answer unfiltered results. The read
 * options are known to every body, and only there; synonyms stay.
 */
START_TEST(unknown_fields_are_400_naming_them)
{
	static const struct {
		const char *m, *p, *body, *says;
	} bad[] = {
		{ "POST", "/collections/k/search", "{\"vector\": " VEC8 ", "
		    "\"fliter\": {\"must\": [{\"key\": \"grp\", \"match\": "
		    "{\"value\": \"g1\"}}]}}", "unknown field \"fliter\"" },
		{ "POST", "/collections/k/search", "{\"vector\": " VEC8 ", "
		    "\"params\": {\"exakt\": true}}",
		    "unknown field \"params.exakt\"" },
		{ "POST", "/collections/k/points/search/batch", "{\"searches\": "
		    "[{\"vector\": " VEC8 "}, {\"vector\": " VEC8 ", \"limt\": "
		    "3}]}", "searches[1]: unknown field \"limt\"" },
		{ "POST", "/collections/k/points/search/batch", "{\"searches\": "
		    "[{\"vector\": " VEC8 ", \"consistency\": \"any\"}]}",
		    "unknown field \"consistency\"" },
		{ "POST", "/collections/k/points/search/batch", "{\"serches\": "
		    "[]}", "unknown field \"serches\"" },
		{ "POST", "/collections/k/points/recommend", "{\"positive\": "
		    "[10], \"limt\": 2}", "unknown field \"limt\"" },
		{ "POST", "/collections/k/points/recommend", "{\"positive\": "
		    "[10], \"with_payload\": false}",
		    "unknown field \"with_payload\"" },
		{ "POST", "/collections/k/points/discover", "{\"target\": 10, "
		    "\"context\": [{\"positive\": 13, \"negative\": 16, "
		    "\"weight\": 2}]}", "unknown field \"context[0].weight\"" },
		{ "POST", "/collections/k/points/discover", "{\"targte\": 10}",
		    "unknown field \"targte\"" },
		{ "POST", "/collections/k/points/scroll", "{\"limit\": 2, "
		    "\"with_vectorz\": true}", "unknown field \"with_vectorz\"" },
		{ "POST", "/collections/k/points/count", "{\"filtr\": {}}",
		    "unknown field \"filtr\"" },
		{ "POST", "/collections/k/vectors", "{\"id\": 900, \"data\": "
		    VEC8 ", \"metdata\": {\"a\": 1}}",
		    "unknown field \"metdata\"" },
		{ "POST", "/collections/k/vectors", "{\"id\": 900, \"data\": "
		    VEC8 ", \"vector\": " VEC8 "}", "the same field" },
		{ "POST", "/collections/k/vectors/batch", "{\"vectors\": "
		    "[{\"id\": 900, \"data\": " VEC8 ", \"payloads\": {}}]}",
		    "unknown field \"vectors[0].payloads\"" },
		{ "POST", "/collections/k/vectors/batch", "{\"vectors\": "
		    "[{\"id\": 900, \"data\": " VEC8 ", \"write_concern\": 0}]}",
		    "unknown field \"vectors[0].write_concern\"" },
		{ "POST", "/collections/k/vectors/upsert", "{\"vector\": "
		    "[{\"id\": 900, \"data\": " VEC8 "}]}",
		    "unknown field \"vector\"" },
		{ "PUT", "/collections/k/vectors/10", "{\"metadata\": {}, "
		    "\"dta\": " VEC8 "}", "unknown field \"dta\"" },
		{ "PUT", "/collections/k/vectors/10", "{\"id\": 11, "
		    "\"metadata\": {}}", "not the URL's" },
		{ "POST", "/collections/k/vectors/batch-delete", "{\"ids\": "
		    "[10], \"idz\": [13]}", "unknown field \"idz\"" },
		{ "POST", "/collections", "{\"name\": \"k2\", \"dimension\": 8, "
		    "\"metric\": \"euclidean\"}", "unknown field \"metric\"" },
		{ "POST", "/collections", "{\"name\": \"k2\", \"dimension\": 8, "
		    "\"index_config\": {\"m\": 8}}",
		    "unknown field \"index_config.m\"" },
		{ "POST", "/collections", "{\"name\": \"k2\", \"dimension\": 8, "
		    "\"quantization\": {\"type\": \"scalar\", \"quantille\": "
		    "0.9}}", "unknown field \"quantization.quantille\"" },
		{ "POST", "/collections", "{\"name\": \"k2\", \"dimension\": 8, "
		    "\"quantization\": {\"scalar\": {\"quantile\": 0.9, "
		    "\"always_ram\": true, \"on_disk\": true}}}",
		    "unknown field \"quantization.scalar.on_disk\"" },
		{ "POST", "/collections/k/index", "{\"field_name\": \"grp\", "
		    "\"field_schema\": \"keyword\", \"type\": \"x\"}",
		    "unknown field \"type\"" },
		{ "POST", "/collections/k/snapshots", "{\"name\": \"s1\"}",
		    "unknown field \"name\"" },
		{ "POST", "/cluster/promote", "{\"nod\": \"n1\"}",
		    "unknown field \"nod\"" },
	};

	coll_fill("k", M_L2);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		expect_400_saying(bad[i].m, bad[i].p, bad[i].body, bad[i].says);
	/* nothing was written, created or indexed */
	expect_err(404, "NOT_FOUND", "GET", "/collections/k/vectors/900",
	    NULL);
	expect_err(404, "NOT_FOUND", "GET", "/collections/k2", NULL);
	ck_assert_int_eq(count("k", NULL), N);
	json_decref(call(200, "GET", "/collections/k/snapshots", NULL));

	/* the read options on any body, synonyms, and an id that agrees */
	json_decref(call(200, "POST", "/collections/k/search", "{\"vector\": "
	    VEC8 ", \"consistency\": \"any\", \"allow_partial\": false, "
	    "\"with_vectors\": true, \"params\": {\"hnsw_ef\": 64}}"));
	json_decref(call(200, "POST", "/collections/k/points/count",
	    "{\"consistency\": \"primary\"}"));
	ok("POST", "/collections/k/vectors", "{\"id\": 7, \"vector\": " VEC8
	    ", \"payload\": {\"a\": 1}, \"write_concern\": 0}");
	ok("PUT", "/collections/k/vectors/7", "{\"id\": 7, \"metadata\": "
	    "{\"a\": 2}}");
	ok("PUT", "/collections/k/vectors/7", "{\"vector\": " VEC8 "}");
	ck_assert_int_eq(count("k", "{\"must\": [{\"key\": \"a\", \"match\": "
	    "{\"value\": 2}}]}"), 1);
}
END_TEST

/* ===== Quantization ===== */

/* config.quantization of GET /collections/:name (new reference). */
static json_t *
quant_of(const char *name)
{
	char path[128];
	json_t *d, *q;

	snprintf(path, sizeof(path), "/collections/%s", name);
	d = call(200, "GET", path, NULL);
	q = json_incref(json_object_get(json_object_get(d, "config"),
	    "quantization"));
	json_decref(d);
	return q;
}

/* Is quantization q of type t, with segments seg (0: no segments and
 * bits shown, as for every type but product)? */
static void
quant_expect(const json_t *q, const char *t, int seg, const char *what)
{
	ck_assert_msg(json_is_object(q), "%s: no quantization object", what);
	ck_assert_msg(strcmp(json_string_value(json_object_get(q, "type")),
	    t) == 0, "%s: type %s, expected %s", what, json_string_value(
	    json_object_get(q, "type")), t);
	ck_assert_msg(json_is_number(json_object_get(q, "quantile")) &&
	    json_is_boolean(json_object_get(q, "always_ram")),
	    "%s: quantile and always_ram are shown", what);
	if (seg == 0) {
		ck_assert_msg(json_object_get(q, "segments") == NULL &&
		    json_object_get(q, "bits") == NULL, "%s: segments or bits "
		    "shown for %s", what, t);
		return;
	}
	ck_assert_msg(int_of(q, "segments") == seg, "%s: segments %lld, "
	    "expected %d", what, (long long) int_of(q, "segments"), seg);
	ck_assert_int_eq(int_of(q, "bits"), 8);
}

/*
 * Every accepted form of "quantization" at create, as create echoes it
 * and GET shows it (defaults filled in: product segments ceil(dim / 8),
 * Qdrant's compression xR dim * 4 / R of them), and the stats' split.
 */
START_TEST(quantization_forms_round_trip_through_get)
{
	static const struct {
		const char *name, *metric, *quant, *type;
		int seg;
	} c[] = {
		{ "q_none", "cosine", "\"none\"", "none", 0 },
		{ "q_null", "cosine", "null", "none", 0 },
		{ "q_scalar", "euclidean", "\"scalar\"", "scalar", 0 },
		{ "q_binary", "cosine", "\"binary\"", "binary", 0 },
		{ "q_bin_dot", "dot_product", "{\"type\": \"binary\"}",
		    "binary", 0 },
		{ "q_product", "euclidean", "\"product\"", "product", 1 },
		{ "q_typed", "manhattan", "{\"type\": \"product\", "
		    "\"segments\": 4, \"bits\": 8, \"always_ram\": true}",
		    "product", 4 },
		{ "q_qd_scalar", "euclidean", "{\"scalar\": {\"type\": "
		    "\"int8\", \"quantile\": 0.9, \"always_ram\": true}}",
		    "scalar", 0 },
		{ "q_qd_binary", "cosine", "{\"binary\": {\"always_ram\": "
		    "true}}", "binary", 0 },
		{ "q_x4", "euclidean", "{\"product\": {\"compression\": "
		    "\"x4\"}}", "product", 8 },
		{ "q_x16", "euclidean", "{\"product\": {\"compression\": "
		    "\"x16\", \"always_ram\": false}}", "product", 2 },
		{ "q_x64", "euclidean", "{\"product\": {\"compression\": "
		    "\"x64\"}}", "product", 1 },
	};
	char body[512], path[128];
	json_t *d, *q, *st;

	for (size_t i = 0; i < sizeof(c) / sizeof(c[0]); i++) {
		snprintf(body, sizeof(body), "{\"name\": \"%s\", \"dimension\":"
		    " %d, \"distance_metric\": \"%s\", \"quantization\": %s}",
		    c[i].name, DIM, c[i].metric, c[i].quant);
		d = call(200, "POST", "/collections", body);
		quant_expect(json_object_get(d, "quantization"), c[i].type,
		    c[i].seg, c[i].name);
		json_decref(d);
		q = quant_of(c[i].name);
		quant_expect(q, c[i].type, c[i].seg, c[i].name);
		json_decref(q);
	}
	q = quant_of("q_typed");
	ck_assert(json_is_true(json_object_get(q, "always_ram")));
	json_decref(q);
	q = quant_of("q_qd_scalar");
	ck_assert(fabs(json_number_value(json_object_get(q, "quantile")) -
	    0.9) < 1e-6);
	ck_assert(json_is_true(json_object_get(q, "always_ram")));
	json_decref(q);

	/* the stats: nothing trained on a few points, every figure there */
	coll_fill("q_filled", M_L2);
	ok("PATCH", "/collections/q_filled", "{\"quantization\": "
	    "\"scalar\"}");
	snprintf(path, sizeof(path), "/collections/q_filled");
	d = call(200, "GET", path, NULL);
	st = json_object_get(json_object_get(d, "stats"), "quantization");
	ck_assert_msg(json_is_object(st), "stats.quantization is missing");
	ck_assert_str_eq(json_string_value(json_object_get(st, "in_force")),
	    "none");
	ck_assert_int_ge(int_of(st, "code_bytes"), 0);
	ck_assert_int_ge(int_of(st, "link_bytes"), 0);
	ck_assert_int_ge(int_of(st, "original_bytes"), 0);
	json_decref(d);
}
END_TEST

/* Bad quantization at create: 400 naming what is wrong, nothing made. */
START_TEST(quantization_errors_are_400_and_create_nothing)
{
	static const struct {
		const char *metric, *quant, *says;
	} bad[] = {
		{ "euclidean", "\"binary\"", "binary" },
		{ "manhattan", "{\"binary\": {}}", "binary" },
		{ "cosine", "\"pq\"", "unknown quantization 'pq'" },
		{ "cosine", "{\"type\": \"int8\"}", "unknown quantization "
		    "type 'int8'" },
		{ "cosine", "{\"lattice\": {}}", "unknown quantization "
		    "'lattice'" },
		{ "cosine", "5", "'quantization' must be" },
		{ "cosine", "{\"scalar\": {}, \"binary\": {}}",
		    "'quantization' must be" },
		{ "cosine", "{\"type\": \"product\", \"segments\": 0}",
		    "'segments'" },
		{ "cosine", "{\"type\": \"product\", \"segments\": 9}",
		    "segments 9" },
		{ "cosine", "{\"type\": \"product\", \"segments\": \"2\"}",
		    "'segments'" },
		{ "cosine", "{\"type\": \"product\", \"bits\": 4}", "'bits'" },
		{ "cosine", "{\"type\": \"scalar\", \"segments\": 2}",
		    "'segments' is a setting of product" },
		{ "cosine", "{\"type\": \"scalar\", \"quantile\": \"high\"}",
		    "'quantile'" },
		{ "cosine", "{\"type\": \"scalar\", \"quantile\": 1.5}",
		    "quantile" },
		{ "cosine", "{\"type\": \"scalar\", \"always_ram\": 1}",
		    "'always_ram'" },
		{ "cosine", "{\"product\": {\"compression\": \"x3\"}}",
		    "'quantization.product.compression'" },
		{ "cosine", "{\"product\": {\"compression\": 16}}",
		    "'quantization.product.compression'" },
		{ "cosine", "{\"product\": {\"segments\": 2}}",
		    "unknown field \"quantization.product.segments\"" },
		{ "cosine", "{\"scalar\": {\"type\": \"int4\"}}",
		    "'quantization.scalar.type' must be int8" },
		{ "cosine", "{\"binary\": {\"quantile\": 0.5}}",
		    "unknown field \"quantization.binary.quantile\"" },
		{ "cosine", "{\"scalar\": 3}",
		    "'quantization.scalar' must be an object" },
	};
	char body[512];
	json_t *d;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		snprintf(body, sizeof(body), "{\"name\": \"bad\", \"dimension\":"
		    " %d, \"distance_metric\": \"%s\", \"quantization\": %s}",
		    DIM, bad[i].metric, bad[i].quant);
		expect_400_saying("POST", "/collections", body, bad[i].says);
	}
	d = call(200, "GET", "/collections", NULL);
	ck_assert_int_eq(json_array_size(d), 0);
	json_decref(d);
}
END_TEST

/* PATCH {quantization} and answer its config: the whole config as GET
 * shows it. */
static void
patch_expect(const char *coll, const char *body, const char *t, int seg)
{
	char path[128];
	json_t *d, *q;

	snprintf(path, sizeof(path), "/collections/%s", coll);
	d = call(200, "PATCH", path, body);
	ck_assert_str_eq(json_string_value(json_object_get(d, "name")), coll);
	ck_assert_int_eq(int_of(d, "dimension"), DIM);
	quant_expect(json_object_get(d, "quantization"), t, seg, body);
	json_decref(d);
	q = quant_of(coll);
	quant_expect(q, t, seg, body);
	json_decref(q);
}

/* A search of Q[q] with "params": params (JSON text), checked against
 * the naive answer. */
static void
search_params_check(const char *coll, int m, int q, int limit,
    const char *params)
{
	struct ref c[N];
	double qd[DIM];
	char path[128];
	json_t *b = json_pack("{s:o, s:i, s:i}", "vector", vec_json(Q[q]),
	    "limit", limit, "ef_search", EF), *hits;

	json_object_set_new(b, "params", filter_json(params));
	snprintf(path, sizeof(path), "/collections/%s/search", coll);
	hits = callj(200, "POST", path, b);
	to_double(Q[q], qd);
	ranked_check(hits, c, search_refs(m, qd, NULL, c), (size_t) limit, 0,
	    params);
	json_decref(hits);
}

START_TEST(patch_sets_changes_and_removes_quantization)
{
	json_t *q;

	coll_fill("pq", M_L2);
	patch_expect("pq", "{\"quantization\": \"scalar\"}", "scalar", 0);
	patch_expect("pq", "{\"quantization_config\": {\"product\": "
	    "{\"compression\": \"x8\"}}}", "product", 4);
	search_params_check("pq", M_L2, 0, 10, "{\"quantization\": "
	    "{\"oversampling\": 3}}");
	/* refused: binary on euclidean, segments past the dimension */
	expect_400_saying("PATCH", "/collections/pq", "{\"quantization\": "
	    "\"binary\"}", "binary");
	expect_400_saying("PATCH", "/collections/pq", "{\"quantization\": "
	    "{\"type\": \"product\", \"segments\": 9}}", "segments 9");
	expect_400_saying("PATCH", "/collections/pq", "{\"quantization\": "
	    "\"pq\"}", "unknown quantization 'pq'");
	/* nothing else of a collection can be changed */
	expect_400_saying("PATCH", "/collections/pq", "{\"quantization\": "
	    "\"scalar\", \"dimension\": 4}", "unknown field \"dimension\": "
	    "only 'quantization' can be changed");
	expect_400_saying("PATCH", "/collections/pq", "{}",
	    "'quantization' is required");
	expect_400_saying("PATCH", "/collections/pq", "{\"quantization\": "
	    "\"scalar\", \"quantization_config\": \"scalar\"}",
	    "the same field");
	expect_err(400, "INVALID_ARGUMENT", "PATCH", "/collections/pq", "[]");
	q = quant_of("pq");
	quant_expect(q, "product", 4, "after the refusals");
	json_decref(q);
	expect_err(404, "NOT_FOUND", "PATCH", "/collections/nope",
	    "{\"quantization\": \"scalar\"}");
	patch_expect("pq", "{\"quantization\": {\"type\": \"product\", "
	    "\"segments\": 8, \"always_ram\": true}}", "product", 8);
	patch_expect("pq", "{\"quantization\": null}", "none", 0);
	patch_expect("pq", "{\"quantization\": {\"scalar\": {\"quantile\": "
	    "0.95}}}", "scalar", 0);
	patch_expect("pq", "{\"quantization\": \"none\"}", "none", 0);
	/* the points are all there, searched as before */
	ck_assert_int_eq(count("pq", NULL), N);
	search_check("pq", M_L2, 1, 10, 0, NULL);
}
END_TEST

/*
 * A collection past the training threshold (4,096 points) walks its
 * codes: the stats say so, the float rows are gone, and every answer is
 * rescored with the stored vectors, so its distances are exact; with
 * "rescore": false they are the codes' approximations.
 */
START_TEST(a_trained_collection_rescores_its_codes)
{
	enum { TN = 4500, TD = 8 };
	static float tv[TN][TD];
	uint64_t s = 17;
	json_t *d, *st = NULL, *q;

	ok("POST", "/collections", "{\"name\": \"tq\", \"dimension\": 8, "
	    "\"distance_metric\": \"euclidean\", \"quantization\": "
	    "\"scalar\"}");
	for (int b = 0; b < TN; b += 500) {
		json_t *pts = json_array();
		for (int i = b; i < b + 500; i++) {
			json_t *v = json_array();
			for (int j = 0; j < TD; j++) {
				tv[i][j] = tu_randf(&s);
				json_array_append_new(v, json_real(tv[i][j]));
			}
			json_array_append_new(pts, json_pack("{s:i, s:o}", "id",
			    i + 1, "data", v));
		}
		json_decref(callj(200, "POST", "/collections/tq/vectors/batch",
		    json_pack("{s:o}", "vectors", pts)));
	}
	for (int i = 0; i < 600; i++) { /* at most 60 s */
		d = call(200, "GET", "/collections/tq", NULL);
		st = json_object_get(json_object_get(d, "stats"), "quantization");
		const char *in = json_string_value(json_object_get(st, "in_force"));
		if (int_of(json_object_get(d, "stats"), "pending_count") == 0 &&
		    in != NULL && strcmp(in, "scalar") == 0)
			break;
		json_decref(d);
		d = NULL;
		usleep(100000);
	}
	ck_assert_msg(d != NULL, "tq never searched its codes");
	ck_assert_int_gt(int_of(st, "code_bytes"), TN * TD - 1);
	ck_assert_int_gt(int_of(st, "link_bytes"), 0);
	ck_assert_int_eq(int_of(st, "original_bytes"), 0);
	json_decref(d);
	for (int k = 0; k < 20; k++) {
		float qv[TD];
		for (int j = 0; j < TD; j++)
			qv[j] = tu_randf(&s);
		q = json_array();
		for (int j = 0; j < TD; j++)
			json_array_append_new(q, json_real(qv[j]));
		json_t *a = callj(200, "POST", "/collections/tq/search",
		    json_pack("{s:O, s:i, s:{s:{s:f}}}", "vector", q, "limit",
		    10, "params", "quantization", "oversampling", 2.0));
		json_t *r = callj(200, "POST", "/collections/tq/search",
		    json_pack("{s:O, s:i, s:{s:{s:b}}}", "vector", q, "limit",
		    10, "params", "quantization", "rescore", 0));
		json_decref(q);
		ck_assert_int_eq(json_array_size(a), 10);
		ck_assert_int_eq(json_array_size(r), 10);
		for (size_t i = 0; i < 10; i++) {
			json_t *h = json_array_get(a, i);
			int id = (int) json_integer_value(json_object_get(h, "id"));
			double want = 0, got = json_number_value(json_object_get(h,
			    "distance"));
			for (int j = 0; j < TD; j++)
				want += ((double) qv[j] - tv[id - 1][j]) *
				    ((double) qv[j] - tv[id - 1][j]);
			ck_assert_msg(fabs(got - sqrt(want)) < 1e-4, "hit %zu: "
			    "distance %.7g, its vector's %.7g", i, got,
			    sqrt(want));
		}
		json_decref(a);
		json_decref(r);
	}
}
END_TEST

/*
 * params.quantization on a quantized collection: results stay right (a
 * few hundred points are searched on floats until the index trains on
 * 4096), and bad values are 400 naming them, alone or in a batch.
 */
START_TEST(search_quantization_params)
{
	static const char *const good[] = {
		"{\"quantization\": {\"ignore\": true}}",
		"{\"quantization\": {\"rescore\": false}}",
		"{\"quantization\": {\"ignore\": false, \"rescore\": true, "
		    "\"oversampling\": 2.5}}",
		"{\"quantization\": {\"oversampling\": 1}, \"hnsw_ef\": 64}",
		"{\"quantization\": {\"oversampling\": 100}, \"exact\": true}",
		"{\"quantization\": null}",
	};
	static const struct {
		const char *params, *says;
	} bad[] = {
		{ "{\"quantization\": {\"oversampling\": 0.5}}",
		    "params.quantization.oversampling must be between 1 and "
		    "100" },
		{ "{\"quantization\": {\"oversampling\": 101}}",
		    "oversampling must be between 1 and 100" },
		{ "{\"quantization\": {\"oversampling\": 0}}",
		    "oversampling must be between 1 and 100" },
		{ "{\"quantization\": {\"oversampling\": \"2\"}}",
		    "oversampling must be between 1 and 100" },
		{ "{\"quantization\": {\"ignore\": 1}}", "'ignore'" },
		{ "{\"quantization\": {\"rescore\": \"no\"}}", "'rescore'" },
		{ "{\"quantization\": {\"ignore\": true, \"rescore\": "
		    "false}}", "contradict" },
		{ "{\"quantization\": {\"oversample\": 2}}",
		    "unknown field \"params.quantization.oversample\"" },
		{ "{\"quantization\": true}",
		    "'params.quantization' must be an object" },
	};
	char body[512];
	json_t *d, *one;

	coll_fill("sq", M_COS);
	ok("PATCH", "/collections/sq", "{\"quantization\": \"binary\"}");
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
		search_params_check("sq", M_COS, (int) i % NQ, 7, good[i]);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		snprintf(body, sizeof(body), "{\"vector\": " VEC8 ", "
		    "\"params\": %s}", bad[i].params);
		expect_400_saying("POST", "/collections/sq/search", body,
		    bad[i].says);
		snprintf(body, sizeof(body), "{\"searches\": [{\"vector\": "
		    VEC8 "}, {\"vector\": " VEC8 ", \"params\": %s}]}",
		    bad[i].params);
		expect_400_saying("POST", "/collections/sq/points/search/batch",
		    body, "searches[1]: ");
		expect_400_saying("POST", "/collections/sq/points/search/batch",
		    body, bad[i].says);
	}

	/* the batch: each search with its own params, as alone */
	d = call(200, "POST", "/collections/sq/points/search/batch",
	    "{\"searches\": [{\"vector\": " VEC8 ", \"limit\": 4, \"params\": "
	    "{\"quantization\": {\"rescore\": false}}}, {\"vector\": " VEC8 ", "
	    "\"limit\": 3, \"params\": {\"quantization\": {\"oversampling\": "
	    "4}}}]}");
	ck_assert_int_eq(json_array_size(d), 2);
	one = call(200, "POST", "/collections/sq/search", "{\"vector\": " VEC8
	    ", \"limit\": 4, \"params\": {\"quantization\": {\"rescore\": "
	    "false}}}");
	ck_assert_msg(json_equal(one, json_array_get(d, 0)), "batch search 0 "
	    "differs from the single search");
	json_decref(one);
	one = call(200, "POST", "/collections/sq/search", "{\"vector\": " VEC8
	    ", \"limit\": 3}");
	ck_assert_msg(json_equal(one, json_array_get(d, 1)), "batch search 1 "
	    "differs from the single search");
	json_decref(one);
	json_decref(d);
}
END_TEST

/* Checked fixture: a server with a 1 KiB body limit. */
static void
up_small(void)
{
	static const char *const args[] = { "--max-body", "1024", NULL };

	srv_start(args, &S);
}

/* A JSON body of about n bytes: a point with a padded payload. */
static char *
padded_body(size_t n)
{
	char *b = malloc(n + 128);
	int len;

	ck_assert(b != NULL);
	len = sprintf(b, "{\"id\": 1, \"data\": [1, 2, 3, 4, 5, 6, 7, 8], "
	    "\"metadata\": {\"pad\": \"");
	memset(b + len, 'x', n);
	strcpy(b + len + n, "\"}}");
	return b;
}

START_TEST(body_over_max_body_is_413)
{
	static const char *const chunked[] = { "Transfer-Encoding: chunked",
		NULL };
	char chunk[3000], *b;
	struct resp r;
	json_t *e;

	coll_create("c", M_L2);
	b = padded_body(2000);
	e = call(413, "POST", "/collections/c/vectors", b);
	ck_assert_str_eq(json_string_value(json_object_get(e, "code")),
	    "RESOURCE_EXHAUSTED");
	json_decref(e);
	free(b);
	/* Far over: refused before it is read, and the server stays up. */
	b = padded_body(4u << 20);
	expect_err(413, "RESOURCE_EXHAUSTED", "POST", "/collections/c/search",
	    b);
	free(b);
	/* Without Content-Length (chunked), the limit holds as well. */
	b = padded_body(2000);
	snprintf(chunk, sizeof(chunk), "%zx\r\n%s\r\n0\r\n\r\n", strlen(b), b);
	ck_assert_int_eq(http_req_raw(&S, "POST", "/collections/c/vectors",
	    chunk, strlen(chunk), "application/json", chunked, &r), 0);
	ck_assert_msg(r.status == 413, "chunked body over the limit: %d: "
	    "%.300s", r.status, r.body);
	envelope_check(&r, "POST", "chunked");
	resp_free(&r);
	free(b);
	/* Under the limit all is well, and nothing was written before. */
	ck_assert_int_eq(count("c", NULL), 0);
	b = padded_body(500);
	ok("POST", "/collections/c/vectors", b);
	free(b);
	ck_assert_int_eq(count("c", NULL), 1);
	json_decref(call(200, "GET", "/health", NULL));
}
END_TEST

/* ===== API keys ===== */

#define KEY "K-secret-key"
#define ROKEY "R-read-only-key"

/* Checked fixture: a server that needs keys. */
static void
up_auth(void)
{
	static const char *const args[] = { "--api-key", KEY,
		"--read-only-api-key", ROKEY, NULL };
	srv_start(args, &S);
}

static const char *const H_KEY[] = { "api-key: " KEY, NULL };
static const char *const H_BEARER[] = { "Authorization: Bearer " KEY, NULL };
static const char *const H_RO[] = { "api-key: " ROKEY, NULL };
static const char *const H_RO_BEARER[] = { "Authorization: Bearer " ROKEY,
	NULL };
static const char *const H_WRONG[] = { "api-key: wrong", NULL };
static const char *const H_WRONG_BEARER[] = { "Authorization: Bearer nope",
	NULL };
static const char *const H_BASIC[] = { "Authorization: Basic " KEY, NULL };

/* POST body on path with headers: a 200, data discarded. */
static void
ok_h(const char *m, const char *p, const char *body, const char *const *h)
{
	json_decref(call_on(&S, 200, m, p, body, h));
}

START_TEST(api_key_is_required_except_for_health)
{
	struct resp r;

	json_decref(call_on(&S, 200, "GET", "/health", NULL, NULL));
	json_decref(call_on(&S, 200, "GET", "/ready", NULL, NULL));
	expect_err_on(&S, 401, "UNAUTHENTICATED", "GET", "/collections", NULL,
	    NULL);
	expect_err_on(&S, 401, "UNAUTHENTICATED", "GET", "/collections", NULL,
	    H_WRONG);
	expect_err_on(&S, 401, "UNAUTHENTICATED", "GET", "/collections", NULL,
	    H_WRONG_BEARER);
	expect_err_on(&S, 401, "UNAUTHENTICATED", "GET", "/collections", NULL,
	    H_BASIC);
	expect_err_on(&S, 401, "UNAUTHENTICATED", "POST", "/collections",
	    "{\"name\": \"a\", \"dimension\": 8}", NULL);
	expect_err_on(&S, 401, "UNAUTHENTICATED", "GET", "/stats", NULL, NULL);
	ck_assert_int_eq(http_req(&S, "GET", "/metrics", NULL, NULL, &r), 0);
	ck_assert_int_eq(r.status, 401);
	resp_free(&r);
	ok_h("POST", "/collections", "{\"name\": \"a\", \"dimension\": 8}",
	    H_KEY);
	ok_h("GET", "/collections/a", NULL, H_BEARER);
	ok_h("POST", "/collections/a/vectors", "{\"id\": 1, \"data\": "
	    "[1, 2, 3, 4, 5, 6, 7, 8]}", H_BEARER);
	ok_h("GET", "/stats", NULL, H_KEY);
	ck_assert_int_eq(http_req(&S, "GET", "/metrics", NULL, H_KEY, &r), 0);
	ck_assert_int_eq(r.status, 200);
	resp_free(&r);
	json_decref(call_on(&S, 200, "GET", "/health", NULL, H_WRONG));
	expect_err_on(&S, 401, "UNAUTHENTICATED", "DELETE", "/collections/a",
	    NULL, H_WRONG);
	expect_err_on(&S, 401, "UNAUTHENTICATED", "PATCH", "/collections/a",
	    "{\"quantization\": \"scalar\"}", NULL);
	ok_h("PATCH", "/collections/a", "{\"quantization\": \"scalar\"}",
	    H_KEY);
	ok_h("GET", "/collections/a/vectors/1", NULL, H_KEY);
}
END_TEST

START_TEST(read_only_key_can_read_but_not_write)
{
	static const char *const q = "{\"vector\": [1, 2, 3, 4, 5, 6, 7, 8], "
				     "\"limit\": 3}";
	json_t *d;

	ok_h("POST", "/collections", "{\"name\": \"a\", \"dimension\": 8}",
	    H_KEY);
	ok_h("POST", "/collections/a/vectors/batch", "{\"vectors\": "
	    "[{\"id\": 1, \"data\": [1, 2, 3, 4, 5, 6, 7, 8]}, {\"id\": 2, "
	    "\"data\": [8, 7, 6, 5, 4, 3, 2, 1]}]}", H_KEY);
	d = call_on(&S, 200, "POST", "/collections/a/search", q, H_RO);
	ck_assert_int_eq(json_array_size(d), 2);
	json_decref(d);
	ok_h("POST", "/collections/a/search", q, H_RO_BEARER);
	ok_h("POST", "/collections/a/points/search/batch", "{\"searches\": "
	    "[{\"vector\": [1, 2, 3, 4, 5, 6, 7, 8]}]}", H_RO);
	ok_h("POST", "/collections/a/points/recommend", "{\"positive\": [1]}",
	    H_RO);
	ok_h("POST", "/collections/a/points/discover", "{\"target\": 1}",
	    H_RO);
	ok_h("POST", "/collections/a/points/scroll", "{}", H_RO);
	ok_h("POST", "/collections/a/points/count", "{}", H_RO);
	ok_h("GET", "/collections", NULL, H_RO);
	ok_h("GET", "/collections/a/vectors/1", NULL, H_RO);
	expect_err_on(&S, 403, "PERMISSION_DENIED", "POST",
	    "/collections/a/vectors", "{\"id\": 3, \"data\": [1, 2, 3, 4, 5, "
	    "6, 7, 8]}", H_RO);
	expect_err_on(&S, 403, "PERMISSION_DENIED", "POST",
	    "/collections/a/vectors/batch", "{\"vectors\": [{\"id\": 3, "
	    "\"data\": [1, 2, 3, 4, 5, 6, 7, 8]}]}", H_RO_BEARER);
	expect_err_on(&S, 403, "PERMISSION_DENIED", "PUT",
	    "/collections/a/vectors/1", "{\"metadata\": {}}", H_RO);
	expect_err_on(&S, 403, "PERMISSION_DENIED", "DELETE",
	    "/collections/a/vectors/1", NULL, H_RO);
	expect_err_on(&S, 403, "PERMISSION_DENIED", "POST",
	    "/collections/a/vectors/batch-delete", "{\"ids\": [1]}", H_RO);
	expect_err_on(&S, 403, "PERMISSION_DENIED", "POST", "/collections",
	    "{\"name\": \"b\", \"dimension\": 8}", H_RO);
	expect_err_on(&S, 403, "PERMISSION_DENIED", "DELETE",
	    "/collections/a", NULL, H_RO);
	expect_err_on(&S, 403, "PERMISSION_DENIED", "PATCH",
	    "/collections/a", "{\"quantization\": \"scalar\"}", H_RO);
	expect_err_on(&S, 403, "PERMISSION_DENIED", "POST",
	    "/collections/a/snapshots", NULL, H_RO);
	d = call_on(&S, 200, "POST", "/collections/a/points/count", "{}",
	    H_RO);
	ck_assert_int_eq(int_of(d, "count"), 2);
	json_decref(d);
}
END_TEST

/* ===== TLS ===== */

/* A self-signed certificate and key in tu_base; fails clearly without
 * the openssl CLI. */
static void
make_cert(char **cert, char **key)
{
	char *cmd;
	int rc;

	ck_assert_msg(system("command -v openssl >/dev/null 2>&1") == 0,
	    "the openssl command is missing: install the Debian package "
	    "'openssl' (scripts/install-deps.sh)");
	ck_assert(asprintf(cert, "%s/cert.pem", tu_base) > 0);
	ck_assert(asprintf(key, "%s/key.pem", tu_base) > 0);
	ck_assert(asprintf(&cmd, "openssl req -x509 -newkey rsa:2048 -nodes "
	    "-subj /CN=127.0.0.1 -days 1 -keyout '%s' -out '%s' "
	    ">'%s/openssl.log' 2>&1", *key, *cert, tu_base) > 0);
	rc = system(cmd);
	free(cmd);
	ck_assert_msg(rc == 0, "openssl req failed (%d): see %s/openssl.log",
	    rc, tu_base);
}

START_TEST(https_serves_health_and_search)
{
	const char *args[5] = { "--tls-cert", NULL, "--tls-key", NULL, NULL };
	char *cert, *key;
	struct srv plain;
	struct resp r;
	json_t *d;

	make_cert(&cert, &key);
	args[1] = cert;
	args[3] = key;
	srv_start(args, &S);
	ck_assert(S.tls);
	d = call(200, "GET", "/health", NULL);
	ck_assert_str_eq(json_string_value(json_object_get(d, "status")),
	    "ok");
	json_decref(d);
	coll_fill("t", M_L2);
	search_check("t", M_L2, 0, 10, 0, NULL);
	search_check("t", M_L2, 3, 7, 2, F1);
	/* Plain HTTP to the TLS port gets no successful answer. */
	plain = S;
	plain.tls = 0;
	if (http_req(&plain, "GET", "/health", NULL, NULL, &r) == 0) {
		ck_assert_int_ne(r.status, 200);
		resp_free(&r);
	}
	json_decref(call(200, "GET", "/health", NULL));
	srv_stop(&S);
	free(cert);
	free(key);
}
END_TEST

/* ===== Payload indexes ===== */

START_TEST(payload_index_create_and_delete)
{
	int n1 = 0;

	for (int i = 0; i < N; i++)
		n1 += passes(F1, i);
	coll_fill("pi", M_L2);
	ok("POST", "/collections/pi/index", "{\"field_name\": \"grp\", "
	    "\"field_schema\": \"keyword\"}");
	ok("POST", "/collections/pi/index", "{\"field_name\": \"i\", "
	    "\"field_schema\": \"integer\"}");
	search_check("pi", M_L2, 0, 10, 0, F1);
	ck_assert_int_eq(count("pi", F1), n1);
	expect_err(400, "INVALID_ARGUMENT", "POST", "/collections/pi/index",
	    "{\"field_schema\": \"keyword\"}");
	expect_err(400, "INVALID_ARGUMENT", "POST", "/collections/pi/index",
	    "{\"field_name\": 3, \"field_schema\": \"keyword\"}");
	expect_err(404, "NOT_FOUND", "POST", "/collections/nope/index",
	    "{\"field_name\": \"grp\", \"field_schema\": \"keyword\"}");
	ok("DELETE", "/collections/pi/index/grp", NULL);
	search_check("pi", M_L2, 0, 10, 0, F1);
}
END_TEST

/* ===== Suite ===== */

/* A TCase with the cleanup fixture and an optional server fixture. */
static TCase *
tcase(Suite *s, const char *name, void (*setup)(void))
{
	TCase *tc = tcase_create(name);

	srv_add_fixture(tc);
	if (setup != NULL)
		tcase_add_checked_fixture(tc, setup, down);
	tcase_set_timeout(tc, 120);
	suite_add_tcase(s, tc);
	return tc;
}

/*
 * Add test t to tc. Against a cluster (VECDB_TEST_TARGET=cluster) a case
 * with a reason in cluster_skip is left out, and says so on stderr.
 */
static void
add(TCase *tc, const TTest *t, const char *cluster_skip)
{
	if (cluster_skip != NULL && srv_target() == SRV_CLUSTER) {
		fprintf(stderr, "rest_test (cluster): skipped %s: %s\n",
		    t->name, cluster_skip);
		return;
	}
	tcase_add_test(tc, t);
}


/* The suite. */
static Suite *
rest_suite(void)
{
	Suite *s = suite_create("rest");
	TCase *tc;

	tc = tcase(s, "health stats metrics", up);
	add(tc, health_and_stats_have_their_shapes, NULL);
	add(tc, metrics_lists_every_documented_family, NULL);
	tc = tcase(s, "collections", up);
	add(tc, collection_lifecycle, NULL);
	add(tc, collection_create_rejects_bad_input, NULL);
	add(tc, sparse_vectors_are_declared_with_the_collection, NULL);
	tc = tcase(s, "points", up);
	add(tc, point_get_put_delete, NULL);
	add(tc, point_writes_reject_bad_input, NULL);
	add(tc, batch_with_one_bad_point_writes_nothing, NULL);
	add(tc, batch_upsert_and_batch_delete_count, NULL);
	add(tc, points_carry_sparse_vectors, NULL);
	add(tc, named_dense_vectors_are_declared_written_and_searched, NULL);
	tc = tcase(s, "compaction", up);
	add(tc, compact_drops_the_dead_share, NULL);
	tc = tcase(s, "search", up);
	add(tc, search_matches_naive_for_every_metric, NULL);
	add(tc, search_with_vector_returns_the_stored_vector, NULL);
	add(tc, filtered_search_and_count_match_naive, NULL);
	add(tc, batch_search_equals_individual_searches, NULL);
	add(tc, search_rejects_bad_input, NULL);
	add(tc, sparse_and_hybrid_search_match_references, NULL);
	tc = tcase(s, "recommend discover", up);
	add(tc, recommend_average_vector_matches_naive, NULL);
	add(tc, recommend_best_score_matches_naive, NULL);
	add(tc, discover_matches_naive, NULL);
	add(tc, discover_with_vectors_matches_naive, NULL);
	add(tc, recommend_and_discover_reject_bad_input, NULL);
	add(tc, examples_of_the_wrong_dimension_are_400_and_the_server_lives,
	    NULL);
	tc = tcase(s, "scroll", up);
	add(tc, full_scroll_returns_every_point_once_in_id_order, NULL);
	add(tc, ids_above_int64_max_round_trip, NULL);
	add(tc, payloads_come_back_as_written, NULL);
	add(tc, filtered_scroll_and_errors, NULL);
	tc = tcase(s, "snapshots", up);
	add(tc, snapshot_roundtrip_through_download_and_upload, NULL);
	add(tc, corrupted_upload_changes_nothing, NULL);
	add(tc, snapshot_restore_by_name_delete_and_errors, NULL);
	tc = tcase(s, "restart", up);
	add(tc, restart_keeps_data, NULL);
	tc = tcase(s, "routing and bodies", up);
	add(tc, unknown_route_is_404_and_wrong_method_405, NULL);
	add(tc, escaped_paths_reach_no_other_collection, NULL);
	add(tc, over_deep_json_is_400_and_server_stays_up, NULL);
	add(tc, unknown_fields_are_400_naming_them, NULL);
	tc = tcase(s, "quantization", up);
	add(tc, quantization_forms_round_trip_through_get, NULL);
	add(tc, quantization_errors_are_400_and_create_nothing, NULL);
	add(tc, patch_sets_changes_and_removes_quantization, NULL);
	add(tc, search_quantization_params, NULL);
	add(tc, a_trained_collection_rescores_its_codes, "4,500 points over 3 "
	    "shards leave each under the 4,096 a graph trains on");
	tc = tcase(s, "body limit", up_small);
	add(tc, body_over_max_body_is_413, NULL);
	tc = tcase(s, "api keys", up_auth);
	add(tc, api_key_is_required_except_for_health, NULL);
	add(tc, read_only_key_can_read_but_not_write, NULL);
	tc = tcase(s, "tls", NULL);
	/* cluster-tls serves HTTPS with the cluster CA's certificate: one
	 * from elsewhere would not be the router's identity to the nodes */
	if (srv_internal_tls())
		fprintf(stderr, "rest_test (cluster-tls): skipped "
		    "https_serves_health_and_search: every case runs over "
		    "HTTPS here\n");
	else
		add(tc, https_serves_health_and_search, NULL);
	tc = tcase(s, "payload index", up);
	add(tc, payload_index_create_and_delete, NULL);
	return s;
}

int
main(void)
{
	data_init();
	return tu_run(rest_suite());
}
