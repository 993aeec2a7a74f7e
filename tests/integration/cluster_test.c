/*
 * cluster_test.c: 3 vecdb-node shards behind one vecdb-router, compared
 * over REST with a `vecdb serve` holding the same points; then one node
 * is killed and the router must answer 503 within its deadline.
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

/* The vector of point i as JSON. */
static json_t *
vec_json(const float *v)
{
	json_t *a = json_array();

	for (int d = 0; d < DIM; d++)
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
			    vec_json(vecs[i]), "metadata", "grp", grp, "i", i));
		}
		json_decref(call(s, 200, "POST", "/collections/c/vectors/upsert",
		    json_pack("{s:o}", "vectors", pts)));
	}
}

/* Two hit lists must name the same ids with the same distances. */
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
		ck_assert_msg(fabs(dx - dy) <= 1e-4 * (1 + fabs(dy)),
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

/* Scroll everything through s in pages of 97: ids strictly increasing. */
static size_t
scroll_all(struct srv *s)
{
	json_t *off = json_null(), *d, *pts;
	json_int_t last = -1;
	size_t n = 0;

	for (int pages = 0; pages == 0 || !json_is_null(off); pages++) {
		ck_assert_int_lt(pages, NPTS);
		d = call(s, 200, "POST", "/collections/c/points/scroll",
		    json_pack("{s:i, s:O}", "limit", 97, "offset", off));
		pts = json_object_get(d, "points");
		for (size_t i = 0; i < json_array_size(pts); i++) {
			json_int_t id = json_integer_value(json_object_get(
			    json_array_get(pts, i), "id"));
			ck_assert_msg(id > last, "scroll: id %lld after %lld",
			    (long long) id, (long long) last);
			last = id;
			n++;
		}
		json_decref(off);
		off = json_incref(json_object_get(d, "next_offset"));
		ck_assert_ptr_nonnull(off);
		json_decref(d);
	}
	json_decref(off);
	return n;
}

/* ===== Tests ===== */

/* Start the cluster and the reference, create and fill both. */
static void
cluster_up(struct srv *rt, struct srv *ref)
{
	static const char *const args[] = { "--timeout-ms", "1000", NULL };
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
		    "s:i}", "vector", vec_json(q), "limit", 10), what);
		snprintf(what, sizeof(what), "search %d offset 5", k);
		same_answer(rt, ref, "/collections/c/search", json_pack("{s:o, "
		    "s:i, s:i}", "vector", vec_json(q), "limit", 10, "offset",
		    5), what);
		snprintf(what, sizeof(what), "filtered search %d", k);
		same_answer(rt, ref, "/collections/c/search", json_pack("{s:o, "
		    "s:i, s:{s:[{s:s, s:{s:s}}]}}", "vector", vec_json(q),
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
	vecdb_search_params sp = { vecs[7], DIM, 10, 0, NULL, 0, 0, 0, 0 };
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
	    "s:i}", "vector", vec_json(vecs[7]), "limit", 10));
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
	ck_assert_uint_eq(scroll_all(&rt), NPTS);
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
	    "s:i}", "vector", vec_json(vecs[0]), "limit", 10));
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
		json_t *b = json_pack("{s:o, s:i}", "vector", vec_json(vecs[0]),
		    "limit", 10);
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
	return tu_run(s);
}
