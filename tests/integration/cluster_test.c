/*
 * cluster_test.c: 3 vecdb-node shards behind one vecdb-router, compared
 * over REST with a `vecdb serve` holding the same points; then one node
 * is killed and the router must answer 503 within its deadline.
 *
 * TCase "scale" (ctest cluster_scale_test): the same at 20,000 points
 * with two routers over the shards, every shard searching its HNSW
 * graph: exact answers equal, approximate ones reach a recall, and both
 * routers answer alike.
 *
 * The processes are tests/e2e/http.h's (srv_try_cluster, srv_try_serve),
 * with its cleanup rules.
 */
#define _GNU_SOURCE
#include <civetweb.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <nng/nng.h>
#include <nng/protocol/reqrep0/req.h>

#include "e2e/http.h"
#include "proto.h"
#include "vdb.h"
#include "testutil.h"

#define NSHARDS 3
#define NPTS 2000
#define DIM 8

static float vecs[NPTS][DIM];

/* Milliseconds on the monotonic clock. */
static uint64_t
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t) ts.tv_sec * 1000 + (uint64_t) ts.tv_nsec / 1000000;
}

/* ===== REST ===== */

/* A request that must answer want; returns data or error (new ref). */
static json_t *
call(struct srv *s, int want, const char *m, const char *p, json_t *body)
{
	char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
	struct resp r;
	json_t *out;

	json_decref(body);
	ck_assert_msg(http_req(s, m, p, text, NULL, &r) == 0, "%s %s: no "
	    "response", m, p);
	ck_assert_msg(r.status == want, "%s %s (port %u): expected %d, got "
	    "%d: %.600s", m, p, s->port, want, r.status, r.body);
	ck_assert_ptr_nonnull(r.json);
	out = json_incref(json_object_get(r.json, want == 200 ? "data" :
	    "error"));
	resp_free(&r);
	free(text);
	return out;
}

/* A vector of dim floats as JSON. */
static json_t *
vec_json(const float *v, int dim)
{
	json_t *a = json_array();

	for (int d = 0; d < dim; d++)
		json_array_append_new(a, json_real(v[d]));
	return a;
}

/* Upsert every point to s in batches of 500. */
static void
load(struct srv *s)
{
	for (int b = 0; b < NPTS; b += 500) {
		json_t *pts = json_array();
		for (int i = b; i < b + 500; i++) {
			char grp[8];
			snprintf(grp, sizeof(grp), "g%d", i % 3);
			json_array_append_new(pts, json_pack("{s:i, s:o, "
			    "s:{s:s, s:i}}", "id", i, "data",
			    vec_json(vecs[i], DIM), "metadata", "grp", grp, "i", i));
		}
		json_decref(call(s, 200, "POST", "/collections/c/vectors/upsert",
		    json_pack("{s:o}", "vectors", pts)));
	}
}

/* Two hit lists must name the same ids with the same distances (both
 * sides compute with the same kernels: only the JSON round trip may
 * differ). */
static void
hits_equal(const json_t *a, const json_t *b, const char *what)
{
	ck_assert_msg(json_is_array(a) && json_is_array(b) &&
	    json_array_size(a) == json_array_size(b), "%s: %zu vs %zu hits",
	    what, json_array_size(a), json_array_size(b));
	for (size_t i = 0; i < json_array_size(a); i++) {
		json_t *x = json_array_get(a, i), *y = json_array_get(b, i);
		double dx = json_number_value(json_object_get(x, "distance"));
		double dy = json_number_value(json_object_get(y, "distance"));
		ck_assert_msg(json_equal(json_object_get(x, "id"),
		    json_object_get(y, "id")), "%s[%zu]: id differs", what, i);
		ck_assert_msg(fabs(dx - dy) <= 1e-5 * fmax(1, fabs(dy)),
		    "%s[%zu]: distance %g vs %g", what, i, dx, dy);
	}
}

/* The same query on router and reference must answer the same. */
static void
same_answer(struct srv *rt, struct srv *ref, const char *path, json_t *body,
    const char *what)
{
	json_t *a = call(rt, 200, "POST", path, json_incref(body));
	json_t *b = call(ref, 200, "POST", path, body);

	hits_equal(a, b, what);
	json_decref(a);
	json_decref(b);
}

/* Count through s. */
static json_int_t
count(struct srv *s, const char *filter)
{
	json_t *d = call(s, 200, "POST", "/collections/c/points/count",
	    json_loads(filter ? filter : "{}", 0, NULL));
	json_int_t n = json_integer_value(json_object_get(d, "count"));

	json_decref(d);
	return n;
}

/* Does id a sort before id b in storage order (numbers, then uuids)? */
static int
id_before(const json_t *a, const json_t *b)
{
	if (json_is_integer(a) != json_is_integer(b))
		return json_is_integer(a);
	if (json_is_integer(a))
		return json_integer_value(a) < json_integer_value(b);
	return strcmp(json_string_value(a), json_string_value(b)) < 0;
}

/* Scroll everything through s in pages of page; the ids in order (new
 * reference), each strictly after the one before. */
static json_t *
scroll_ids(struct srv *s, int page, size_t npts)
{
	json_t *ids = json_array(), *off = json_null(), *d, *pts, *last = NULL;

	for (size_t pages = 0; pages == 0 || !json_is_null(off); pages++) {
		ck_assert_uint_le(pages, npts / (size_t) page + 1);
		d = call(s, 200, "POST", "/collections/c/points/scroll",
		    json_pack("{s:i, s:O, s:b}", "limit", page, "offset", off,
		    "with_payload", 0));
		pts = json_object_get(d, "points");
		for (size_t i = 0; i < json_array_size(pts); i++) {
			json_t *id = json_object_get(json_array_get(pts, i),
			    "id");
			ck_assert_msg(last == NULL || id_before(last, id),
			    "scroll: ids out of order at %zu",
			    json_array_size(ids));
			json_array_append(ids, id);
			last = id;
		}
		json_decref(off);
		off = json_incref(json_object_get(d, "next_offset"));
		ck_assert_ptr_nonnull(off);
		json_decref(d);   /* last stays alive in ids */
	}
	json_decref(off);
	return ids;
}

/* ===== Tests ===== */

/* Start the cluster and the reference, create and fill both. */
static void
cluster_up(struct srv *rt, struct srv *ref)
{
	static const char *const args[] = { "--timeout-ms", "3000", NULL };
	uint64_t seed = 42;

	for (int i = 0; i < NPTS; i++)
		tu_rand_vector(&seed, vecs[i], DIM);
	if (srv_try_cluster(NSHARDS, args, NULL, rt) != 0)
		ck_abort_msg("cannot start the cluster: %s", rt->err);
	if (srv_try_serve(NULL, ref) != 0)
		ck_abort_msg("cannot start the reference: %s", ref->err);
	json_decref(call(rt, 200, "POST", "/collections", json_pack("{s:s, "
	    "s:i, s:s}", "name", "c", "dimension", DIM, "distance_metric",
	    "euclidean")));
	json_decref(call(ref, 200, "POST", "/collections", json_pack("{s:s, "
	    "s:i, s:s}", "name", "c", "dimension", DIM, "distance_metric",
	    "euclidean")));
	load(rt);
	load(ref);
}

/* Searches, filtered search, recommend and discover equal the
 * reference. */
static void
queries_check(struct srv *rt, struct srv *ref)
{
	uint64_t seed = 7;
	float q[DIM];
	char what[64];

	for (int k = 0; k < 5; k++) {
		tu_rand_vector(&seed, q, DIM);
		snprintf(what, sizeof(what), "search %d", k);
		same_answer(rt, ref, "/collections/c/search", json_pack("{s:o, "
		    "s:i}", "vector", vec_json(q, DIM), "limit", 10), what);
		snprintf(what, sizeof(what), "search %d offset 5", k);
		same_answer(rt, ref, "/collections/c/search", json_pack("{s:o, "
		    "s:i, s:i}", "vector", vec_json(q, DIM), "limit", 10, "offset",
		    5), what);
		snprintf(what, sizeof(what), "filtered search %d", k);
		same_answer(rt, ref, "/collections/c/search", json_pack("{s:o, "
		    "s:i, s:{s:[{s:s, s:{s:s}}]}}", "vector", vec_json(q, DIM),
		    "limit", 10, "filter", "must", "key", "grp", "match",
		    "value", "g1"), what);
	}
	same_answer(rt, ref, "/collections/c/points/recommend", json_pack(
	    "{s:[i, i], s:[i], s:i, s:s}", "positive", 3, 1500, "negative",
	    77, "limit", 10, "strategy", "average_vector"), "recommend");
	same_answer(rt, ref, "/collections/c/points/recommend", json_pack(
	    "{s:[i, i], s:i}", "positive", 10, 20, "limit", 10),
	    "recommend default strategy");
	same_answer(rt, ref, "/collections/c/points/discover", json_pack(
	    "{s:i, s:[{s:i, s:i}, {s:i, s:i}], s:i}", "target", 42, "context",
	    "positive", 8, "negative", 900, "positive", 1300, "negative", 11,
	    "limit", 10), "discover");
}

/*
 * The router's binary API: a SEARCH over nng (the wire envelope of
 * docs/WIRE.md) answers the same ids as the REST search.
 */
static void
binary_search_check(struct srv *rt)
{
	vecdb_search_params sp = { vecs[7], DIM, 10, 0, NULL, 0, 0, 0, 0, 0, 0,
		0, NULL };
	uint8_t *body, *req;
	size_t blen, rlen, n;
	struct proto_response *resp;
	vecdb_records **res;
	nng_socket sock;
	nng_msg *msg;
	char url[64];
	json_t *d;

	ck_assert_int_eq(proto_search_encode("c", &sp, NULL, 1, &body, &blen),
	    VECDB_OK);
	ck_assert_int_eq(proto_request_encode(PROTO_SEARCH, NULL, 1, body, blen,
	    &req, &rlen), VECDB_OK);
	snprintf(url, sizeof(url), "tcp://127.0.0.1:%u", rt->rpc_port);
	ck_assert_int_eq(nng_req0_open(&sock), 0);
	nng_socket_set_ms(sock, NNG_OPT_RECVTIMEO, 10000);
	ck_assert_int_eq(nng_dial(sock, url, NULL, 0), 0);
	ck_assert_int_eq(nng_send(sock, req, rlen, 0), 0);
	ck_assert_int_eq(nng_recvmsg(sock, &msg, 0), 0);
	ck_assert_int_eq(proto_response_decode(nng_msg_body(msg),
	    nng_msg_len(msg), &resp), VECDB_OK);
	ck_assert_int_eq(resp->code, 0);
	ck_assert_int_eq(proto_search_result_decode(resp->body, resp->body_len,
	    &res, &n), VECDB_OK);
	ck_assert_uint_eq(n, 1);
	d = call(rt, 200, "POST", "/collections/c/search", json_pack("{s:o, "
	    "s:i}", "vector", vec_json(vecs[7], DIM), "limit", 10));
	ck_assert_uint_eq(res[0]->count, json_array_size(d));
	for (size_t i = 0; i < res[0]->count; i++)
		ck_assert_int_eq((json_int_t) res[0]->items[i].id.num,
		    json_integer_value(json_object_get(json_array_get(d, i),
			"id")));
	json_decref(d);
	vecdb_records_free_array(res, n);
	proto_response_free(resp);
	nng_msg_free(msg);
	nng_close(sock);
	vdb_free(req);
	vdb_free(body);
}

START_TEST(router_answers_like_one_server_and_fails_fast_on_a_dead_shard)
{
	struct srv rt, ref;
	json_t *d, *e;
	uint64_t t0;

	cluster_up(&rt, &ref);
	ck_assert_int_eq(count(&rt, NULL), NPTS);
	ck_assert_int_eq(count(&rt, "{\"filter\": {\"must\": [{\"key\": "
	    "\"grp\", \"match\": {\"value\": \"g2\"}}]}}"), count(&ref,
	    "{\"filter\": {\"must\": [{\"key\": \"grp\", \"match\": "
	    "{\"value\": \"g2\"}}]}}"));
	d = scroll_ids(&rt, 97, NPTS);
	ck_assert_uint_eq(json_array_size(d), NPTS);
	json_decref(d);
	d = call(&rt, 200, "GET", "/collections/c", NULL);
	ck_assert_int_eq(json_integer_value(json_object_get(json_object_get(d,
	    "stats"), "vector_count")), NPTS);
	json_decref(d);
	queries_check(&rt, &ref);
	binary_search_check(&rt);
	d = call(&rt, 200, "GET", "/collections/c/vectors/1234", NULL);
	ck_assert_int_eq(json_integer_value(json_object_get(json_object_get(d,
	    "metadata"), "i")), 1234);
	json_decref(d);
	json_decref(call(&rt, 200, "DELETE", "/collections/c/vectors/5", NULL));
	json_decref(call(&rt, 200, "DELETE", "/collections/c/vectors/6", NULL));
	ck_assert_int_eq(count(&rt, NULL), NPTS - 2);
	d = call(&rt, 200, "POST", "/collections/c/vectors/batch-delete",
	    json_pack("{s:[i, i, i, i, i]}", "ids", 5, 100, 101, 102, 1999));
	ck_assert_int_eq(json_integer_value(json_object_get(d,
	    "deleted_count")), 4);
	json_decref(d);
	ck_assert_int_eq(count(&rt, NULL), NPTS - 6);
	json_decref(call(&rt, 404, "GET", "/collections/c/vectors/5", NULL));

	proc_kill(&rt.nodes[1]);
	t0 = now_ms();
	e = call(&rt, 503, "POST", "/collections/c/search", json_pack("{s:o, "
	    "s:i}", "vector", vec_json(vecs[0], DIM), "limit", 10));
	ck_assert_uint_lt(now_ms() - t0, 5000);
	ck_assert_str_eq(json_string_value(json_object_get(e, "code")),
	    "UNAVAILABLE");
	ck_assert_msg(strstr(json_string_value(json_object_get(e, "message")),
	    "shard 1") != NULL, "message names no shard: %s",
	    json_string_value(json_object_get(e, "message")));
	json_decref(e);

	/* Restart the node: the router, not restarted, serves again once its
	 * back-off has passed and nng has redialled. */
	proc_start(&rt.nodes[1]);  /* on its data dir and rpc port */
	t0 = now_ms();
	for (;;) {
		struct resp r;
		json_t *b = json_pack("{s:o, s:i}", "vector",
		    vec_json(vecs[0], DIM), "limit", 10);
		char *txt = json_dumps(b, JSON_COMPACT);
		ck_assert_int_eq(http_req(&rt, "POST", "/collections/c/search",
		    txt, NULL, &r), 0);
		int st = r.status;
		resp_free(&r);
		free(txt);
		json_decref(b);
		if (st == 200)
			break;
		ck_assert_msg(now_ms() - t0 < 15000, "router still fails %d "
		    "after the node came back", st);
		usleep(200 * 1000);
	}
	ck_assert_int_eq(count(&rt, NULL), NPTS - 6);

	srv_stop(&rt);
	srv_stop(&ref);
}
END_TEST

/* ===== At scale: 2 routers, HNSW on every shard ===== */

#define SN 20000        /* points */
#define SDIM 32
#define SNUUID 1000     /* the last SNUUID points have uuid ids */
#define SBATCH 1000     /* points per insert request */
#define SQUERIES 50
#define SK 10           /* limit of the compared queries */
#define SRECALL 0.95    /* the approximate search's recall@SK at least */
#define INDEX_WAIT_MS 180000

static float *svecs;    /* SN x SDIM, clustered */
static json_t *sids;    /* the id of point i, an array of SN */

/* The point vectors, and ids: numbers spread out, then uuids. */
static void
scale_data(void)
{
	uint64_t seed = 2026;

	svecs = tu_clustered(seed, SN, SDIM);
	sids = json_array();
	for (int i = 0; i < SN; i++) {
		char u[40];
		if (i < SN - SNUUID) {
			json_array_append_new(sids, json_integer(7 * i + 1));
			continue;
		}
		snprintf(u, sizeof(u), "%08x-%04x-4%03x-8%03x-%012llx",
		    (unsigned) tu_rand(&seed), (unsigned) (tu_rand(&seed) &
		    0xffff), (unsigned) (tu_rand(&seed) & 0xfff), (unsigned) (
		    tu_rand(&seed) & 0xfff), (unsigned long long) (tu_rand(
		    &seed) & 0xffffffffffffULL));
		json_array_append_new(sids, json_string(u));
	}
}

/* The row of point i. */
static const float *
svec(int i)
{
	return svecs + (size_t) i * SDIM;
}

/* Insert every point into s in batches of SBATCH. */
static void
scale_load(struct srv *s)
{
	for (int b = 0; b < SN; b += SBATCH) {
		json_t *pts = json_array(), *d;
		for (int i = b; i < b + SBATCH; i++) {
			char grp[8];
			snprintf(grp, sizeof(grp), "g%d", i % 5);
			json_array_append_new(pts, json_pack("{s:O, s:o, "
			    "s:{s:s, s:i}}", "id", json_array_get(sids, i),
			    "data", vec_json(svec(i), SDIM), "metadata", "grp",
			    grp, "i", i));
		}
		d = call(s, 200, "POST", "/collections/c/vectors/batch",
		    json_pack("{s:o}", "vectors", pts));
		ck_assert_int_eq(json_integer_value(json_object_get(d,
		    "inserted_count")), SBATCH);
		json_decref(d);
	}
}

/* Wait until no vector of s's collection waits for its indexer; then
 * every one must be in a graph. */
static void
indexed_wait(struct srv *s)
{
	uint64_t end = now_ms() + INDEX_WAIT_MS;
	json_int_t pending, indexed;

	for (;;) {
		json_t *d = call(s, 200, "GET", "/collections/c", NULL);
		json_t *st = json_object_get(d, "stats");
		pending = json_integer_value(json_object_get(st,
		    "pending_count"));
		indexed = json_integer_value(json_object_get(st,
		    "indexed_count"));
		json_decref(d);
		if (pending == 0)
			break;
		ck_assert_msg(now_ms() < end, "port %u: %lld vectors still "
		    "wait for the indexer after %d ms", s->port,
		    (long long) pending, INDEX_WAIT_MS);
		usleep(100 * 1000);
	}
	ck_assert_int_eq(indexed, SN);
}

/* POST body (borrowed) to path on s; the data (new reference). */
static json_t *
post(struct srv *s, const char *path, json_t *body)
{
	return call(s, 200, "POST", path, json_incref(body));
}

/* Router a must answer body exactly as router b did (got). */
static void
routers_agree(struct srv *a, const char *path, json_t *body,
    const json_t *got, const char *what)
{
	json_t *d = post(a, path, body);

	ck_assert_msg(json_equal(d, got), "%s: the two routers differ",
	    what);
	json_decref(d);
}

/* How many ids of the first SK hits of got are among want's first SK. */
static size_t
overlap(const json_t *got, const json_t *want)
{
	size_t n = 0;

	for (size_t i = 0; i < json_array_size(got) && i < SK; i++)
		for (size_t j = 0; j < json_array_size(want) && j < SK; j++)
			n += json_equal(json_object_get(json_array_get(got, i),
			    "id"), json_object_get(json_array_get(want, j),
			    "id"));
	return n;
}

/*
 * SQUERIES queries: exact search (plain and filtered) through router b
 * equals the reference; the default (graph) search through b reaches
 * SRECALL against those exact answers; router a answers as b.
 */
static void
scale_searches(struct srv *a, struct srv *b, struct srv *ref)
{
	const char *path = "/collections/c/search";
	size_t found = 0, found_ref = 0;
	uint64_t seed = 77;
	float q[SDIM];
	char what[64];

	for (int k = 0; k < SQUERIES; k++) {
		json_t *ex, *ap, *fx, *eb, *er, *hb, *hr;
		tu_clustered_query(&seed, svecs, SN, SDIM, q);
		ex = json_pack("{s:o, s:i, s:b}", "vector", vec_json(q, SDIM),
		    "limit", SK, "exact", 1);
		ap = json_pack("{s:o, s:i}", "vector", vec_json(q, SDIM),
		    "limit", SK);
		fx = json_pack("{s:o, s:i, s:b, s:{s:[{s:s, s:{s:s}}]}}",
		    "vector", vec_json(q, SDIM), "limit", SK, "exact", 1,
		    "filter", "must", "key", "grp", "match", "value", "g2");
		snprintf(what, sizeof(what), "exact search %d", k);
		eb = post(b, path, ex);
		er = post(ref, path, ex);
		hits_equal(eb, er, what);
		routers_agree(a, path, ex, eb, what);
		snprintf(what, sizeof(what), "filtered exact search %d", k);
		same_answer(b, ref, path, json_incref(fx), what);
		snprintf(what, sizeof(what), "search %d", k);
		hb = post(b, path, ap);
		hr = post(ref, path, ap);
		routers_agree(a, path, ap, hb, what);
		found += overlap(hb, er);
		found_ref += overlap(hr, er);
		json_decref(ex);
		json_decref(ap);
		json_decref(fx);
		json_decref(eb);
		json_decref(er);
		json_decref(hb);
		json_decref(hr);
	}
	fprintf(stderr, "cluster scale: recall@%d router %.4f, vecdb serve "
	    "%.4f\n", SK, (double) found / (SQUERIES * SK),
	    (double) found_ref / (SQUERIES * SK));
	ck_assert_msg((double) found / (SQUERIES * SK) >= SRECALL,
	    "router recall@%d %.4f < %.2f", SK,
	    (double) found / (SQUERIES * SK), SRECALL);
}

/* Count (plain and filtered) through both routers equals the
 * reference and the points written. */
static void
scale_counts(struct srv *a, struct srv *b, struct srv *ref)
{
	static const char *const f = "{\"filter\": {\"must\": [{\"key\": "
	    "\"grp\", \"match\": {\"value\": \"g3\"}}, {\"key\": \"i\", "
	    "\"range\": {\"gte\": 5000}}]}}";
	json_int_t want = 0;

	for (int i = 5000; i < SN; i++)
		want += i % 5 == 3;
	ck_assert_int_eq(count(ref, NULL), SN);
	ck_assert_int_eq(count(b, NULL), SN);
	ck_assert_int_eq(count(a, NULL), SN);
	ck_assert_int_eq(count(ref, f), want);
	ck_assert_int_eq(count(b, f), want);
	ck_assert_int_eq(count(a, f), want);
}

/* qsort order of ids: storage order. */
static int
id_cmp(const void *x, const void *y)
{
	const json_t *a = *(json_t *const *) x, *b = *(json_t *const *) y;

	return id_before(a, b) ? -1 : id_before(b, a);
}

/* A full scroll through b in pages of 1000 returns every id once, in
 * order; a's first page equals b's. */
static void
scale_scroll(struct srv *a, struct srv *b)
{
	json_t **want = malloc(SN * sizeof(*want)), *got, *body, *page;

	ck_assert_ptr_nonnull(want);
	for (int i = 0; i < SN; i++)
		want[i] = json_array_get(sids, i);
	qsort(want, SN, sizeof(*want), id_cmp);
	got = scroll_ids(b, 1000, SN);
	ck_assert_uint_eq(json_array_size(got), SN);
	for (int i = 0; i < SN; i++)
		ck_assert_msg(json_equal(json_array_get(got, i), want[i]),
		    "scroll[%d] is not the next id", i);
	json_decref(got);
	free(want);
	body = json_pack("{s:i}", "limit", 1000);
	page = post(b, "/collections/c/points/scroll", body);
	routers_agree(a, "/collections/c/points/scroll", body, page,
	    "scroll page");
	json_decref(page);
	json_decref(body);
}

/* The average_vector query of recommend, 2 avg(pos) - avg(neg), for two
 * positives and one negative. */
static void
reco_vector(const int *pos, const int *neg, float *q)
{
	for (int j = 0; j < SDIM; j++)
		q[j] = svec(pos[0])[j] + svec(pos[1])[j] - svec(neg[0])[j];
}

/* Drop the examples from an exact hit list, keep the first SK (new
 * reference). */
static json_t *
without_examples(const json_t *hits, const json_t *examples)
{
	json_t *out = json_array();

	for (size_t i = 0; i < json_array_size(hits); i++) {
		json_t *h = json_array_get(hits, i);
		int ex = 0;
		for (size_t k = 0; k < json_array_size(examples); k++)
			ex |= json_equal(json_object_get(h, "id"),
			    json_array_get(examples, k));
		if (!ex && json_array_size(out) < SK)
			json_array_append(out, h);
	}
	return out;
}

/*
 * Recommend: best_score ranks every point exactly, so it equals the
 * reference; average_vector searches the graph, so its answers reach
 * SRECALL against the exact search for its query. Discover ranks every
 * point exactly: equal. Router a answers as b throughout.
 */
static void
scale_reco_discover(struct srv *a, struct srv *b, struct srv *ref)
{
	const char *rp = "/collections/c/points/recommend";
	const char *dp = "/collections/c/points/discover";
	uint64_t seed = 99;
	size_t found = 0;
	char what[64];
	float q[SDIM];

	for (int k = 0; k < 10; k++) {
		int pos[2] = { (int) (tu_rand(&seed) % SN), (int) (tu_rand(
		    &seed) % SN) }, neg[1] = { (int) (tu_rand(&seed) % SN) };
		json_t *ids = json_pack("[O, O, O]", json_array_get(sids,
		    pos[0]), json_array_get(sids, pos[1]), json_array_get(sids,
		    neg[0]));
		json_t *rb = json_pack("{s:[O, O], s:[O], s:i}", "positive",
		    json_array_get(ids, 0), json_array_get(ids, 1), "negative",
		    json_array_get(ids, 2), "limit", SK), *got, *ex, *exact;
		json_t *bs = json_deep_copy(rb), *db;

		json_object_set_new(bs, "strategy", json_string("best_score"));
		snprintf(what, sizeof(what), "recommend best_score %d", k);
		same_answer(b, ref, rp, json_incref(bs), what);
		got = post(b, rp, bs);
		routers_agree(a, rp, bs, got, what);
		json_decref(got);
		snprintf(what, sizeof(what), "recommend %d", k);
		got = post(b, rp, rb);
		routers_agree(a, rp, rb, got, what);
		reco_vector(pos, neg, q);
		ex = json_pack("{s:o, s:i, s:b}", "vector", vec_json(q, SDIM),
		    "limit", SK + 3, "exact", 1);
		exact = post(ref, "/collections/c/search", ex);
		json_decref(ex);
		ex = without_examples(exact, ids);
		found += overlap(got, ex);
		json_decref(ex);
		json_decref(exact);
		json_decref(got);
		db = json_pack("{s:O, s:[{s:O, s:O}], s:i}", "target",
		    json_array_get(ids, 0), "context", "positive",
		    json_array_get(ids, 1), "negative", json_array_get(ids, 2),
		    "limit", SK);
		snprintf(what, sizeof(what), "discover %d", k);
		same_answer(b, ref, dp, json_incref(db), what);
		got = post(b, dp, db);
		routers_agree(a, dp, db, got, what);
		json_decref(got);
		json_decref(db);
		json_decref(bs);
		json_decref(rb);
		json_decref(ids);
	}
	fprintf(stderr, "cluster scale: recommend recall@%d %.4f\n", SK,
	    (double) found / (10 * SK));
	ck_assert_msg((double) found / (10 * SK) >= SRECALL, "recommend "
	    "recall@%d %.4f < %.2f", SK, (double) found / (10 * SK), SRECALL);
}

START_TEST(two_routers_over_three_shards_answer_like_one_server_at_scale)
{
	/* ~6,700 points a shard: under the default full-scan threshold,
	 * so the shards get a lower one and search their graphs. */
	static const char *const node_env[] = {
		"VECDB_FULL_SCAN_THRESHOLD=1000", NULL };
	struct srv ra, rb, ref;
	uint64_t t0 = now_ms();

	scale_data();
	if (srv_try_cluster(NSHARDS, NULL, node_env, &ra) != 0)
		ck_abort_msg("cannot start the cluster: %s", ra.err);
	if (srv_try_router(&ra, NULL, &rb) != 0)
		ck_abort_msg("cannot start the second router: %s", rb.err);
	if (srv_try_serve(NULL, &ref) != 0)
		ck_abort_msg("cannot start the reference: %s", ref.err);
	json_decref(call(&ra, 200, "POST", "/collections", json_pack("{s:s, "
	    "s:i, s:s}", "name", "c", "dimension", SDIM, "distance_metric",
	    "euclidean")));
	json_decref(call(&ref, 200, "POST", "/collections", json_pack("{s:s, "
	    "s:i, s:s}", "name", "c", "dimension", SDIM, "distance_metric",
	    "euclidean")));
	scale_load(&ra);
	scale_load(&ref);
	fprintf(stderr, "cluster scale: loaded in %llu ms\n",
	    (unsigned long long) (now_ms() - t0));
	indexed_wait(&rb);
	indexed_wait(&ref);
	fprintf(stderr, "cluster scale: indexed after %llu ms\n",
	    (unsigned long long) (now_ms() - t0));
	scale_searches(&ra, &rb, &ref);
	scale_counts(&ra, &rb, &ref);
	scale_scroll(&ra, &rb);
	scale_reco_discover(&ra, &rb, &ref);
	fprintf(stderr, "cluster scale: done in %llu ms\n",
	    (unsigned long long) (now_ms() - t0));
	srv_stop(&rb);
	srv_stop(&ra);
	srv_stop(&ref);
	json_decref(sids);
	free(svecs);
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("cluster");
	TCase *tc = tcase_create("cluster");

	mg_init_library(0);
	srv_add_fixture(tc);
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc,
	    router_answers_like_one_server_and_fails_fast_on_a_dead_shard);
	suite_add_tcase(s, tc);
	tc = tcase_create("scale");
	srv_add_fixture(tc);
	tcase_set_timeout(tc, 600);
	tcase_add_test(tc,
	    two_routers_over_three_shards_answer_like_one_server_at_scale);
	suite_add_tcase(s, tc);
	return tu_run(s);
}
