/*
 * router_test.c: how a router picks shard members and what it does when
 * one is gone: reads go to replicas first and "consistency": "primary"
 * forces the primary (seen through the router's per-member metrics), a
 * replica that dies is replaced by the primary within the deadline, and
 * "allow_partial" answers without a dead shard and names it.
 *
 * Real vecdb-node and vecdb-router processes on loopback
 * (tests/e2e/http.h), REST over HTTP.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "e2e/http.h"
#include "vecdb_client.h"
#include "testutil.h"

#define NPTS 300
#define DIM 4
#define DEADLINE_MS 3000

static struct srv C;

/* Milliseconds on the monotonic clock. */
static uint64_t
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t) ts.tv_sec * 1000 + (uint64_t) ts.tv_nsec / 1000000;
}

/* The data of a successful call (new reference). */
static json_t *
ok(const char *method, const char *path, const char *body)
{
	json_t *env = http_call(&C, 200, method, path, body);
	json_t *data = json_incref(json_object_get(env, "data"));

	json_decref(env);
	return data;
}

/* Point i: a vector on a slow spiral, so that distances differ. */
static void
point_vec(int i, float *v)
{
	for (int d = 0; d < DIM; d++)
		v[d] = (float) ((i * (d + 3)) % 97) / 97.0f + (float) d * 0.01f;
}

/* A 2-shard cluster holding NPTS points in collection "c", its nodes
 * started with node_env (NULL: none). */
static void
up_with(const char *const *node_env)
{
	static const char *const rargs[] = { "--timeout-ms", "3000", NULL };
	char body[64 * NPTS + 64];
	size_t off;
	float v[DIM];

	if (srv_try_cluster(2, rargs, node_env, &C) != 0)
		ck_abort_msg("cannot start the cluster: %s", C.err);
	json_decref(ok("POST", "/collections", "{\"name\": \"c\", "
	    "\"dimension\": 4, \"distance_metric\": \"euclidean\"}"));
	off = (size_t) snprintf(body, sizeof(body), "{\"vectors\": [");
	for (int i = 0; i < NPTS; i++) {
		point_vec(i, v);
		off += (size_t) snprintf(body + off, sizeof(body) - off,
		    "%s{\"id\": %d, \"data\": [%g, %g, %g, %g]}", i ? ", " : "",
		    i + 1, v[0], v[1], v[2], v[3]);
	}
	snprintf(body + off, sizeof(body) - off, "]}");
	json_decref(ok("POST", "/collections/c/vectors/upsert", body));
}

static void
up(void)
{
	up_with(NULL);
}

/* The same with nodes that run one request at once. */
static void
up_one_at_once(void)
{
	static const char *const env[] = { "VECDB_WORKERS=1", NULL };

	up_with(env);
}

static void
down(void)
{
	srv_stop(&C);
}

/* The value of a series in a /metrics body (-1 when absent). */
static double
series(const char *body, const char *name, int shard, uint16_t port,
    const char *role)
{
	char key[256];
	const char *at;

	snprintf(key, sizeof(key), "%s{shard=\"%d\",member=\"tcp://127.0.0.1:"
	    "%u\",role=\"%s\"} ", name, shard, port, role);
	if ((at = strstr(body, key)) == NULL)
		return -1;
	return strtod(at + strlen(key), NULL);
}

/* The rpc port of node i. */
static uint16_t
rpc_port(int i)
{
	return proc_port(&C.nodes[i], "rpc tcp://127.0.0.1:");
}

/* The value of one series on the router's /metrics now. */
static double
metric(const char *name, int shard, int i, const char *role)
{
	struct resp r;
	double v;

	ck_assert_int_eq(http_req(&C, "GET", "/metrics", NULL, NULL, &r), 0);
	ck_assert_int_eq(r.status, 200);
	v = series(r.body, name, shard, rpc_port(i), role);
	resp_free(&r);
	return v;
}

/*
 * Requests sent to shard 0's primary, its replica (node rep) and shard
 * 1's primary, from one scrape. A scrape reads stats and collections
 * through the router itself, so each one adds the same requests: the
 * tests measure that once and take it off.
 */
struct sent {
	double p0, rep, p1;
};

static struct sent
scrape(int rep)
{
	const char *name = "vecdb_router_shard_requests_total";
	struct sent s;
	struct resp r;

	ck_assert_int_eq(http_req(&C, "GET", "/metrics", NULL, NULL, &r), 0);
	ck_assert_int_eq(r.status, 200);
	s.p0 = series(r.body, name, 0, rpc_port(0), "primary");
	s.rep = series(r.body, name, 0, rpc_port(rep), "replica");
	s.p1 = series(r.body, name, 1, rpc_port(1), "primary");
	resp_free(&r);
	return s;
}

/* What was sent between two scrapes, less one scrape's own share. */
static struct sent
sent_between(struct sent a, struct sent b, struct sent per_scrape)
{
	struct sent d = { b.p0 - a.p0 - per_scrape.p0,
		b.rep - a.rep - per_scrape.rep, b.p1 - a.p1 - per_scrape.p1 };

	return d;
}

/* Send n counts with body; each must answer want. */
static void
counts(int n, const char *body, int want)
{
	for (int k = 0; k < n; k++)
		json_decref(http_call(&C, want, "POST",
		    "/collections/c/points/count", body));
}

/* Wait until the router's metrics list node i (after a SIGHUP). */
static void
wait_member(int shard, int i, const char *role)
{
	uint64_t end = now_ms() + 5000;

	while (metric("vecdb_router_shard_requests_total", shard, i, role) <
	    0) {
		ck_assert_msg(now_ms() < end, "the router never loaded the "
		    "new topology");
		usleep(20000);
	}
}

/* Wait until the router's gauge for member (shard, i) reads want. */
static void
wait_gauge(const char *name, int shard, int i, const char *role, double want)
{
	uint64_t end = now_ms() + 5000;

	while (metric(name, shard, i, role) != want) {
		ck_assert_msg(now_ms() < end, "%s of node %d never became %g",
		    name, i, want);
		usleep(20000);
	}
}

START_TEST(reads_go_to_replicas_first_unless_consistency_is_primary)
{
	int rep = srv_add_replica(&C, 0, NULL);
	struct sent a, b, own, d;
	json_t *x;

	wait_member(0, rep, "replica");
	wait_gauge("vecdb_router_shard_connected", 0, rep, "replica", 1);
	a = scrape(rep);
	b = scrape(rep);
	own = sent_between(a, b, (struct sent) { 0, 0, 0 });
	/* Default reads of shard 0 go to its replica, never its primary. */
	for (int k = 0; k < 6; k++) {
		struct resp r;
		ck_assert_int_eq(http_req(&C, "POST",
		    "/collections/c/points/count", "{}", NULL, &r), 0);
		resp_free(&r);
	}
	a = scrape(rep);
	d = sent_between(b, a, own);
	ck_assert_double_eq(d.p0, 0);
	ck_assert_double_eq(d.rep, 6);
	ck_assert_double_eq(d.p1, 6);
	/* "consistency": "primary" (body or query string) asks the primary */
	x = ok("POST", "/collections/c/points/count",
	    "{\"consistency\": \"primary\"}");
	ck_assert_int_eq(json_integer_value(json_object_get(x, "count")), NPTS);
	json_decref(x);
	x = ok("POST", "/collections/c/points/count?consistency=primary",
	    "{}");
	ck_assert_int_eq(json_integer_value(json_object_get(x, "count")), NPTS);
	json_decref(x);
	b = scrape(rep);
	d = sent_between(a, b, own);
	ck_assert_double_eq(d.p0, 2);
	ck_assert_double_eq(d.rep, 0);
	/* writes always go to the primary */
	json_decref(ok("POST", "/collections/c/vectors/upsert", "{\"vectors\": "
	    "[{\"id\": 100001, \"data\": [1, 2, 3, 4]}, {\"id\": 100002, "
	    "\"data\": [4, 3, 2, 1]}, {\"id\": 100003, \"data\": [0, 0, 0, "
	    "1]}, {\"id\": 100004, \"data\": [9, 9, 9, 9]}]}"));
	/* bad values are refused before anything is sent */
	counts(1, "{\"consistency\": \"quorum\"}", 400);
	counts(1, "{\"consistency\": 1}", 400);
	counts(1, "{\"allow_partial\": \"yes\"}", 400);
	a = scrape(rep);
	d = sent_between(b, a, own);
	ck_assert_double_eq(d.rep, 0);
	/* the upsert spans both shards: checked on each, then written */
	ck_assert_double_eq(d.p0, 2);
	ck_assert_double_eq(d.p1, 2);
}
END_TEST

START_TEST(a_dead_replica_is_replaced_by_the_primary_within_the_deadline)
{
	int rep = srv_add_replica(&C, 0, NULL);
	struct sent a, b, own, d;
	uint64_t t0;
	json_t *x;

	wait_member(0, rep, "replica");
	wait_gauge("vecdb_router_shard_connected", 0, rep, "replica", 1);
	proc_kill(&C.nodes[rep]);
	/* nng sees the connection go: the router stops asking at once */
	wait_gauge("vecdb_router_shard_connected", 0, rep, "replica", 0);
	a = scrape(rep);
	b = scrape(rep);
	own = sent_between(a, b, (struct sent) { 0, 0, 0 });
	t0 = now_ms();
	x = ok("POST", "/collections/c/points/count", "{}");
	ck_assert_uint_lt(now_ms() - t0, DEADLINE_MS / 2);
	ck_assert_int_eq(json_integer_value(json_object_get(x, "count")), NPTS);
	json_decref(x);
	a = scrape(rep);
	d = sent_between(b, a, own);
	ck_assert_double_eq(d.p0, 1);
	ck_assert_double_eq(d.rep, 0);
}
END_TEST

START_TEST(a_hung_replica_leaves_time_for_the_primary)
{
	int rep = srv_add_replica(&C, 0, NULL);
	uint64_t t0, took;
	json_t *x;

	wait_member(0, rep, "replica");
	wait_gauge("vecdb_router_shard_connected", 0, rep, "replica", 1);
	/* stopped, not dead: its connection stays up and it never answers */
	ck_assert_int_eq(kill(C.nodes[rep].pid, SIGSTOP), 0);
	proc_wait_stopped(C.nodes[rep].pid, 5000);
	t0 = now_ms();
	x = ok("POST", "/collections/c/points/count", "{}");
	took = now_ms() - t0;
	ck_assert_uint_ge(took, DEADLINE_MS / 2 - 50);
	ck_assert_uint_lt(took, DEADLINE_MS + 500);
	ck_assert_int_eq(json_integer_value(json_object_get(x, "count")), NPTS);
	json_decref(x);
	ck_assert_double_eq(metric("vecdb_router_shard_up", 0, rep,
	    "replica"), 0);
	ck_assert_double_ge(metric("vecdb_router_shard_errors_total", 0, rep,
	    "replica"), 1);
	/* during its back-off it is not asked: the answer comes at once */
	t0 = now_ms();
	x = ok("POST", "/collections/c/points/count", "{}");
	ck_assert_uint_lt(now_ms() - t0, DEADLINE_MS / 2);
	json_decref(x);
	ck_assert_int_eq(kill(C.nodes[rep].pid, SIGCONT), 0);
}
END_TEST

/* An unlabelled series on router rt's /metrics now (-1 when absent). */
static double
router_metric(struct srv *rt, const char *name)
{
	char key[128];
	struct resp r;
	const char *at;
	double v = -1;

	snprintf(key, sizeof(key), "\n%s ", name);
	ck_assert_int_eq(http_req(rt, "GET", "/metrics", NULL, NULL, &r), 0);
	ck_assert_int_eq(r.status, 200);
	if ((at = strstr(r.body, key)) != NULL)
		v = strtod(at + strlen(key), NULL);
	resp_free(&r);
	return v;
}

/* A write through a router, on a thread of its own. */
struct bg_write {
	struct srv *rt;
	int status;
	uint64_t took;
	pthread_t thread;
};

/* Ten points, some on each of two shards. */
static const char ten[] = "{\"vectors\": [{\"id\": 1001, \"data\": "
    "[1, 2, 3, 4]}, {\"id\": 1002, \"data\": [1, 2, 3, 4]}, {\"id\": 1003, "
    "\"data\": [1, 2, 3, 4]}, {\"id\": 1004, \"data\": [1, 2, 3, 4]}, "
    "{\"id\": 1005, \"data\": [1, 2, 3, 4]}, {\"id\": 1006, \"data\": "
    "[1, 2, 3, 4]}, {\"id\": 1007, \"data\": [1, 2, 3, 4]}, {\"id\": 1008, "
    "\"data\": [1, 2, 3, 4]}, {\"id\": 1009, \"data\": [1, 2, 3, 4]}, "
    "{\"id\": 1010, \"data\": [1, 2, 3, 4]}]}";

static void *
bg_write_main(void *arg)
{
	struct bg_write *w = arg;
	uint64_t t0 = now_ms();
	struct resp r;

	w->status = http_req(w->rt, "POST", "/collections/c/vectors/upsert",
	    ten, NULL, &r) == 0 ? r.status : -1;
	if (w->status > 0)
		resp_free(&r);
	w->took = now_ms() - t0;
	return NULL;
}

/* A write of ten points through a router's binary API, on its own
 * thread and client. */
struct bg_rpc_write {
	uint16_t port;
	int rv;
	pthread_t thread;
};

static void *
bg_rpc_write_main(void *arg)
{
	struct bg_rpc_write *w = arg;
	static const float v[DIM] = { 1, 2, 3, 4 };
	vecdb_point pts[10];
	vecdb_client *cl;
	char url[64];

	for (int i = 0; i < 10; i++)
		pts[i] = (vecdb_point) { { VECDB_ID_NUM, 2001 + (uint64_t) i,
			{ 0 } }, v, DIM, NULL };
	snprintf(url, sizeof(url), "tcp://127.0.0.1:%u", w->port);
	w->rv = vecdb_client_connect(url, NULL, 10000, &cl);
	if (w->rv == VECDB_OK) {
		w->rv = vecdb_client_upsert(cl, "c", pts, 10);
		vecdb_client_close(cl);
	}
	return NULL;
}

/*
 * A write held for a shard's primary keeps its request thread; at most
 * half of the router's request threads are held so, and a write past
 * that share is answered 503 at once, so that reads still find a thread.
 * A router with 2 threads: one write held, the next refused at once, a
 * count answered at once meanwhile; then the same through its binary
 * API, whose 8 handler threads let 4 hold.
 */
START_TEST(held_writes_leave_request_threads_for_reads)
{
	static const char *const rargs[] = { "--timeout-ms", "3000",
		"--threads", "2", NULL };
	int rep = srv_add_replica(&C, 0, NULL);
	static const float v[DIM] = { 1, 2, 3, 4 };
	struct bg_write w = { 0 };
	struct bg_rpc_write bw[4];
	vecdb_point pts[10];
	vecdb_client *cl;
	char url[64];
	uint64_t t0, end, n = 0;
	struct srv rt;
	struct resp r;
	json_t *x;

	wait_member(0, rep, "replica");
	ck_assert_msg(srv_try_router(&C, rargs, &rt) == 0, "%s", rt.err);
	end = now_ms() + 10000;
	for (;;) {   /* connected to every shard */
		ck_assert_int_eq(http_req(&rt, "GET", "/ready", NULL, NULL, &r),
		    0);
		int st = r.status;
		resp_free(&r);
		if (st == 200)
			break;
		ck_assert_msg(now_ms() < end, "the second router is not ready");
		usleep(20000);
	}
	proc_kill(&C.nodes[0]);   /* shard 0's primary: writes wait for it */
	wait_gauge("vecdb_router_shard_connected", 0, 0, "primary", 0);

	w.rt = &rt;
	ck_assert_int_eq(pthread_create(&w.thread, NULL, bg_write_main, &w),
	    0);
	end = now_ms() + 5000;
	while (router_metric(&rt, "vecdb_router_writes_held") != 1) {
		ck_assert_msg(now_ms() < end, "the first write is not held");
		usleep(20000);
	}
	/* the second write finds the one thread that may wait taken */
	t0 = now_ms();
	ck_assert_int_eq(http_req(&rt, "POST", "/collections/c/vectors/upsert",
	    ten, NULL, &r), 0);
	ck_assert_uint_lt(now_ms() - t0, DEADLINE_MS / 2);
	ck_assert_int_eq(r.status, 503);
	ck_assert_msg(strstr(r.body, "not held for a primary: 1 request "
	    "threads already wait for one") != NULL, "%s", r.body);
	resp_free(&r);
	ck_assert_double_eq(router_metric(&rt,
	    "vecdb_router_writes_not_held_total"), 1);
	/* and a read is served by the other thread, at once */
	t0 = now_ms();
	x = http_call(&rt, 200, "POST", "/collections/c/points/count", "{}");
	ck_assert_uint_lt(now_ms() - t0, DEADLINE_MS / 2);
	ck_assert_int_eq(json_integer_value(json_object_get(json_object_get(x,
	    "data"), "count")), NPTS);
	json_decref(x);
	ck_assert_double_eq(router_metric(&rt, "vecdb_router_writes_held"), 1);

	/* the held write waited out its deadline: no primary came back */
	ck_assert_int_eq(pthread_join(w.thread, NULL), 0);
	ck_assert_int_eq(w.status, 503);
	ck_assert_uint_ge(w.took, DEADLINE_MS - 100);
	ck_assert_double_eq(router_metric(&rt, "vecdb_router_writes_held"), 0);

	/* the binary API's handler threads share out the same way: half
	 * of its API_RPC_WORKERS_DEFAULT (8) hold, the next is refused */
	for (int i = 0; i < 4; i++) {
		bw[i].port = rt.rpc_port;
		ck_assert_int_eq(pthread_create(&bw[i].thread, NULL,
		    bg_rpc_write_main, &bw[i]), 0);
	}
	end = now_ms() + 5000;
	while (router_metric(&rt, "vecdb_router_writes_held") != 4) {
		ck_assert_msg(now_ms() < end, "the binary API's writes are "
		    "not held");
		usleep(20000);
	}
	snprintf(url, sizeof(url), "tcp://127.0.0.1:%u", rt.rpc_port);
	ck_assert_int_eq(vecdb_client_connect(url, NULL, 10000, &cl),
	    VECDB_OK);
	for (int i = 0; i < 10; i++)
		pts[i] = (vecdb_point) { { VECDB_ID_NUM, 3001 + (uint64_t) i,
			{ 0 } }, v, DIM, NULL };
	t0 = now_ms();
	ck_assert_int_eq(vecdb_client_upsert(cl, "c", pts, 10),
	    VECDB_EUNAVAILABLE);
	ck_assert_uint_lt(now_ms() - t0, DEADLINE_MS / 2);
	ck_assert_msg(strstr(vecdb_errmsg(), "not held for a primary: 4 "
	    "request threads") != NULL, "%s", vecdb_errmsg());
	t0 = now_ms();
	ck_assert_int_eq(vecdb_client_count(cl, "c", NULL, &n), VECDB_OK);
	ck_assert_uint_lt(now_ms() - t0, DEADLINE_MS / 2);
	ck_assert_uint_eq(n, NPTS);
	vecdb_client_close(cl);
	for (int i = 0; i < 4; i++) {
		ck_assert_int_eq(pthread_join(bw[i].thread, NULL), 0);
		ck_assert_int_eq(bw[i].rv, VECDB_EUNAVAILABLE);
	}
	ck_assert_double_eq(router_metric(&rt,
	    "vecdb_router_writes_not_held_total"), 2);
	srv_stop(&rt);
}
END_TEST

START_TEST(a_write_reads_back_from_the_primary_and_replicas_catch_up)
{
	int rep = srv_add_replica(&C, 0, NULL);
	uint64_t end;
	json_t *d;

	wait_member(0, rep, "replica");
	wait_gauge("vecdb_router_shard_connected", 0, rep, "replica", 1);
	/* create echoes the config it reads back: from the primary, even
	 * though the replica has not applied the create yet */
	for (int k = 0; k < 5; k++) {
		char body[128];
		snprintf(body, sizeof(body), "{\"name\": \"d%d\", "
		    "\"dimension\": 3}", k);
		d = ok("POST", "/collections", body);
		ck_assert_int_eq(json_integer_value(json_object_get(d,
		    "dimension")), 3);
		json_decref(d);
	}
	/* the replica follows: default reads (replica first) see the points
	 * shortly after they were written */
	end = now_ms() + 10000;
	for (;;) {
		d = http_call(&C, 200, "POST", "/collections/c/points/count",
		    "{}");
		if (json_integer_value(json_object_get(json_object_get(d,
		    "data"), "count")) == NPTS) {
			json_decref(d);
			break;
		}
		json_decref(d);
		ck_assert_msg(now_ms() < end, "the replica never caught up");
		usleep(20000);
	}
}
END_TEST

/* Wait until default reads (a replica first) show c's quantization of
 * type t (and segments seg, 0: none shown). */
static void
wait_quant(const char *t, int seg)
{
	uint64_t end = now_ms() + 10000;
	json_t *d, *q;
	int done;

	for (;;) {
		d = ok("GET", "/collections/c", NULL);
		q = json_object_get(json_object_get(d, "config"),
		    "quantization");
		done = strcmp(json_string_value(json_object_get(q, "type")),
		    t) == 0 && (seg == 0 || json_integer_value(
		    json_object_get(q, "segments")) == seg);
		json_decref(d);
		if (done)
			return;
		ck_assert_msg(now_ms() < end, "reads never showed quantization "
		    "%s", t);
		usleep(20000);
	}
}

/*
 * A quantization change through the router, REST or binary, is made on
 * every shard's primary, and replicas follow through the WAL; a replica
 * asked directly refuses it, as any write.
 */
START_TEST(quantization_reaches_every_primary_and_replicas_follow)
{
	vecdb_quant_config q = { VECDB_QUANT_PRODUCT, 0, 0, 2, 0 };
	int rep = srv_add_replica(&C, 0, NULL);
	vecdb_collection_config cfg;
	vecdb_client *cl, *rc;
	char url[64];
	json_t *d;

	wait_member(0, rep, "replica");
	wait_gauge("vecdb_router_shard_connected", 0, rep, "replica", 1);
	d = ok("PATCH", "/collections/c", "{\"quantization\": \"scalar\"}");
	ck_assert_str_eq(json_string_value(json_object_get(json_object_get(d,
	    "quantization"), "type")), "scalar");
	json_decref(d);
	wait_quant("scalar", 0);

	snprintf(url, sizeof(url), "tcp://127.0.0.1:%u", C.rpc_port);
	ck_assert_int_eq(vecdb_client_connect(url, NULL, 5000, &cl), VECDB_OK);
	ck_assert_int_eq(vecdb_client_collection_set_quantization(cl, "c", &q),
	    VECDB_OK);
	vecdb_client_read_options(cl, 1, 0);
	ck_assert_int_eq(vecdb_client_collection_get(cl, "c", &cfg, NULL),
	    VECDB_OK);
	ck_assert_int_eq(cfg.quantization.type, VECDB_QUANT_PRODUCT);
	ck_assert_uint_eq(cfg.quantization.segments, 2);
	wait_quant("product", 2);
	/* binary on euclidean: every shard refuses, nothing changes */
	q.type = VECDB_QUANT_BINARY;
	ck_assert_int_eq(vecdb_client_collection_set_quantization(cl, "c", &q),
	    VECDB_EINVAL);
	ck_assert_int_eq(vecdb_client_collection_set_quantization(cl, "nope",
	    &q), VECDB_ENOTFOUND);
	vecdb_client_close(cl);

	snprintf(url, sizeof(url), "tcp://127.0.0.1:%u", rpc_port(rep));
	ck_assert_int_eq(vecdb_client_connect(url, NULL, 5000, &rc), VECDB_OK);
	q.type = VECDB_QUANT_NONE;
	ck_assert_int_eq(vecdb_client_collection_set_quantization(rc, "c", &q),
	    VECDB_EREADONLY);
	vecdb_client_close(rc);
	wait_quant("product", 2);
}
END_TEST

/* Every id of a scroll answer (limit large enough for everything). */
static json_t *
scroll_ids(const char *body)
{
	json_t *d = ok("POST", "/collections/c/points/scroll", body);
	json_t *ids = json_array(), *p;
	size_t i;

	ck_assert(json_is_null(json_object_get(d, "next_offset")));
	json_array_foreach(json_object_get(d, "points"), i, p)
		json_array_append(ids, json_object_get(p, "id"));
	json_decref(d);
	return ids;
}

/* Is id in the array? */
static int
has_id(const json_t *ids, const json_t *id)
{
	size_t i;
	json_t *x;

	json_array_foreach(ids, i, x)
		if (json_equal(x, id))
			return 1;
	return 0;
}

START_TEST(allow_partial_answers_without_a_dead_shard_and_names_it)
{
	const char *q = "{\"vector\": [0.5, 0.5, 0.5, 0.5], \"limit\": 400, "
	    "\"exact\": true%s}";
	char body[256];
	json_t *all, *env, *live, *hits, *h, *e, *ref;
	size_t i, k = 0;

	snprintf(body, sizeof(body), q, "");
	all = ok("POST", "/collections/c/search", body);
	ck_assert_uint_eq(json_array_size(all), NPTS);
	proc_kill(&C.nodes[1]);
	/* without allow_partial: 503 naming the shard */
	env = http_call(&C, 503, "POST", "/collections/c/search", body);
	e = json_object_get(env, "error");
	ck_assert_str_eq(json_string_value(json_object_get(e, "code")),
	    "UNAVAILABLE");
	ck_assert_msg(strstr(json_string_value(json_object_get(e, "message")),
	    "shard 1") != NULL, "message names no shard: %s",
	    json_string_value(json_object_get(e, "message")));
	json_decref(env);
	/* with it: shard 0's points, in the order of the full answer */
	live = scroll_ids("{\"limit\": 1000, \"allow_partial\": true, "
	    "\"with_payload\": false}");
	ck_assert_uint_gt(json_array_size(live), 0);
	ck_assert_uint_lt(json_array_size(live), NPTS);
	snprintf(body, sizeof(body), q, ", \"allow_partial\": true");
	env = http_call(&C, 200, "POST", "/collections/c/search", body);
	ck_assert(json_is_true(json_object_get(env, "partial")));
	ref = json_pack("[i]", 1);
	ck_assert(json_equal(json_object_get(env, "missing_shards"), ref));
	json_decref(ref);
	hits = json_object_get(env, "data");
	ck_assert_uint_eq(json_array_size(hits), json_array_size(live));
	json_array_foreach(all, i, ref) {
		if (!has_id(live, json_object_get(ref, "id")))
			continue;
		h = json_array_get(hits, k++);
		ck_assert_msg(json_equal(json_object_get(h, "id"),
		    json_object_get(ref, "id")), "partial hit %zu differs", k);
	}
	ck_assert_uint_eq(k, json_array_size(hits));
	json_decref(env);
	/* count agrees with the scroll */
	env = http_call(&C, 200, "POST", "/collections/c/points/count",
	    "{\"allow_partial\": true}");
	ck_assert_int_eq(json_integer_value(json_object_get(json_object_get(
	    env, "data"), "count")), (json_int_t) json_array_size(live));
	ck_assert(json_is_true(json_object_get(env, "partial")));
	json_decref(env);
	json_decref(live);
	json_decref(all);
}
END_TEST

START_TEST(a_complete_answer_is_not_marked_partial)
{
	json_t *env = http_call(&C, 200, "POST", "/collections/c/search",
	    "{\"vector\": [1, 1, 1, 1], \"limit\": 3, \"allow_partial\": true}");

	ck_assert_ptr_null(json_object_get(env, "partial"));
	ck_assert_ptr_null(json_object_get(env, "missing_shards"));
	ck_assert_uint_eq(json_array_size(json_object_get(env, "data")), 3);
	json_decref(env);
}
END_TEST

START_TEST(the_binary_api_takes_read_options_and_names_missing_shards)
{
	char url[64];
	vecdb_client *cl;
	const uint32_t *ids;
	uint64_t n = 0, all = 0;

	snprintf(url, sizeof(url), "tcp://127.0.0.1:%u", C.rpc_port);
	ck_assert_int_eq(vecdb_client_connect(url, NULL, 5000, &cl), VECDB_OK);
	ck_assert_int_eq(vecdb_client_count(cl, "c", NULL, &all), VECDB_OK);
	ck_assert_uint_eq(all, NPTS);
	ck_assert_uint_eq(vecdb_client_missing_shards(&ids), 0);
	proc_kill(&C.nodes[1]);
	ck_assert_int_eq(vecdb_client_count(cl, "c", NULL, &n),
	    VECDB_EUNAVAILABLE);
	ck_assert_msg(strstr(vecdb_errmsg(), "shard 1") != NULL, "%s",
	    vecdb_errmsg());
	vecdb_client_read_options(cl, 0, 1);
	ck_assert_int_eq(vecdb_client_count(cl, "c", NULL, &n), VECDB_OK);
	ck_assert_uint_gt(n, 0);
	ck_assert_uint_lt(n, all);
	ck_assert_uint_eq(vecdb_client_missing_shards(&ids), 1);
	ck_assert_uint_eq(ids[0], 1);
	/* a call that needs every shard still fails, and says why */
	ck_assert_int_eq(vecdb_client_collection_get(cl, "c", NULL, NULL),
	    VECDB_EUNAVAILABLE);
	vecdb_client_close(cl);
}
END_TEST

START_TEST(cluster_snapshots_through_the_binary_api)
{
	char url[64];
	vecdb_client *cl;
	vecdb_snapshot_info si, got, *list;
	size_t n;
	uint64_t cnt;
	vecdb_id gone[3] = { { VECDB_ID_NUM, 1, { 0 } },
		{ VECDB_ID_NUM, 2, { 0 } }, { VECDB_ID_NUM, 3, { 0 } } };

	snprintf(url, sizeof(url), "tcp://127.0.0.1:%u", C.rpc_port);
	ck_assert_int_eq(vecdb_client_connect(url, NULL, 5000, &cl), VECDB_OK);
	ck_assert_int_eq(vecdb_client_snapshot_create(cl, "c", "before", &si),
	    VECDB_OK);
	ck_assert_str_eq(si.name, "before");
	ck_assert_uint_eq(si.vector_count, NPTS);
	ck_assert_int_eq(vecdb_client_snapshot_create(cl, "c", "before", &got),
	    VECDB_EEXIST);
	ck_assert_int_eq(vecdb_client_snapshot_list(cl, "c", &list, &n),
	    VECDB_OK);
	ck_assert_uint_eq(n, 1);
	ck_assert_str_eq(list[0].checksum, si.checksum);
	free(list);
	ck_assert_int_eq(vecdb_client_delete(cl, "c", gone, 3, &n), VECDB_OK);
	ck_assert_uint_eq(n, 3);
	ck_assert_int_eq(vecdb_client_snapshot_restore(cl, "c", "before"),
	    VECDB_OK);
	ck_assert_int_eq(vecdb_client_count(cl, "c", NULL, &cnt), VECDB_OK);
	ck_assert_uint_eq(cnt, NPTS);
	ck_assert_int_eq(vecdb_client_snapshot_get(cl, "c", "before", &got),
	    VECDB_OK);
	ck_assert_str_eq(got.checksum, si.checksum);
	ck_assert_int_eq(vecdb_client_snapshot_delete(cl, "c", "before"),
	    VECDB_OK);
	ck_assert_int_eq(vecdb_client_snapshot_get(cl, "c", "before", &got),
	    VECDB_ENOTFOUND);
	/* a create that fails on one shard leaves no part on the others */
	proc_kill(&C.nodes[1]);
	ck_assert_int_eq(vecdb_client_snapshot_create(cl, "c", "half", &got),
	    VECDB_EUNAVAILABLE);
	proc_start(&C.nodes[1]);
	usleep(1100 * 1000);  /* the router's back-off */
	ck_assert_int_eq(vecdb_client_snapshot_create(cl, "c", "half", &got),
	    VECDB_OK);
	ck_assert_uint_eq(got.vector_count, NPTS);
	vecdb_client_close(cl);
}
END_TEST

/* GET /ready on s without a key: its status. */
static int
ready_status(struct srv *s, json_t **env)
{
	struct resp r;
	int status;

	ck_assert_int_eq(http_req(s, "GET", "/ready", NULL, NULL, &r), 0);
	status = r.status;
	if (env != NULL)
		*env = json_incref(r.json);
	resp_free(&r);
	return status;
}

/* Poll /ready until it answers want (nng notices a closed connection,
 * and redials, in the background); the last envelope into *env. */
static void
ready_wait(struct srv *s, int want, json_t **env)
{
	uint64_t end = now_ms() + 20000;
	int got;

	for (;;) {
		if (env != NULL)
			*env = NULL;
		if ((got = ready_status(s, env)) == want)
			return;
		if (env != NULL)
			json_decref(*env);
		ck_assert_msg(now_ms() < end, "/ready stayed %d, wanted %d",
		    got, want);
		usleep(20 * 1000);
	}
}

/*
 * /ready follows the connections to the shards: a router is ready while
 * it can reach some member of every shard (it can still read it). A dead
 * replica of shard 0 leaves it ready; shard 1 (no replica) with its only
 * node dead makes it 503 naming that shard; the restart makes it ready
 * again. /health stays 200 throughout: it is liveness.
 */
START_TEST(ready_needs_a_connection_to_every_shard)
{
	json_t *env, *e, *ref;
	int rep;

	env = http_call(&C, 200, "GET", "/ready", NULL);
	ck_assert_str_eq(json_string_value(json_object_get(json_object_get(
	    env, "data"), "status")), "ready");
	json_decref(env);
	rep = srv_add_replica(&C, 0, NULL);
	ready_wait(&C, 200, NULL);
	proc_kill(&C.nodes[rep]);
	usleep(300 * 1000);
	ck_assert_int_eq(ready_status(&C, NULL), 200);
	proc_kill(&C.nodes[1]);
	ready_wait(&C, 503, &env);
	e = json_object_get(env, "error");
	ck_assert_str_eq(json_string_value(json_object_get(e, "code")),
	    "UNAVAILABLE");
	ck_assert_msg(strstr(json_string_value(json_object_get(e, "message")),
	    "shard 1 (no connection to any member)") != NULL,
	    "message names no shard: %s",
	    json_string_value(json_object_get(e, "message")));
	ref = json_pack("[i]", 1);
	ck_assert(json_equal(json_object_get(e, "shards"), ref));
	json_decref(ref);
	json_decref(env);
	json_decref(http_call(&C, 200, "GET", "/health", NULL));
	proc_start(&C.nodes[1]);
	ready_wait(&C, 200, NULL);
}
END_TEST

/* The status and error envelope of one request (env: new reference). */
static int
call_status(const char *method, const char *path, const char *body,
    json_t **env)
{
	struct resp r;
	int st;

	ck_assert_int_eq(http_req(&C, method, path, body, NULL, &r), 0);
	st = r.status;
	*env = json_incref(r.json);
	resp_free(&r);
	return st;
}

/* The error message of an envelope. */
static const char *
err_msg(const json_t *env)
{
	const char *m = json_string_value(json_object_get(json_object_get(env,
	    "error"), "message"));

	return m ? m : "";
}

/*
 * A hung primary (SIGSTOP: connected, never answering). A write sent to
 * it is an unknown outcome: 504 saying it may have been applied (and it
 * is, once the node runs again). A write while its member is in back-off
 * was never sent: 503. /ready turns 503 naming the shard within a few
 * health rounds, and 200 again once the node answers.
 */
START_TEST(a_hung_primary_is_an_unknown_outcome_and_not_ready)
{
	char path[96], body[128];
	json_t *env, *d;
	int id = -1, st;
	uint64_t end;

	/* an id that lands on shard 0: the write counts on its primary */
	for (int i = 5000; i < 5040 && id < 0; i++) {
		double before = metric("vecdb_router_shard_requests_total", 0, 0,
		    "primary");
		snprintf(body, sizeof(body), "{\"vectors\": [{\"id\": %d, "
		    "\"data\": [1, 1, 1, 1]}]}", i);
		json_decref(ok("POST", "/collections/c/vectors/upsert", body));
		if (metric("vecdb_router_shard_requests_total", 0, 0,
		    "primary") > before)
			id = i;
	}
	ck_assert_int_ge(id, 0);
	ready_wait(&C, 200, NULL);
	ck_assert_int_eq(kill(C.nodes[0].pid, SIGSTOP), 0);
	proc_wait_stopped(C.nodes[0].pid, 5000);
	snprintf(body, sizeof(body), "{\"vectors\": [{\"id\": %d, "
	    "\"data\": [2, 2, 2, 2]}]}", id);
	st = call_status("POST", "/collections/c/vectors/upsert", body, &env);
	ck_assert_msg(st == 504 && strstr(err_msg(env), "may have been "
	    "applied") != NULL, "a write to a hung primary: %d %s", st,
	    err_msg(env));
	ck_assert_str_eq(json_string_value(json_object_get(json_object_get(
	    env, "error"), "code")), "DEADLINE_EXCEEDED");
	json_decref(env);
	/* in back-off now: refused without being sent */
	snprintf(body, sizeof(body), "{\"vectors\": [{\"id\": %d, "
	    "\"data\": [3, 3, 3, 3]}]}", id);
	st = call_status("POST", "/collections/c/vectors/upsert", body, &env);
	ck_assert_msg(st == 503 && strstr(err_msg(env), "unavailable") != NULL,
	    "a write to a member in back-off: %d %s", st, err_msg(env));
	json_decref(env);
	ready_wait(&C, 503, &env);
	ck_assert_msg(strstr(err_msg(env), "shard 0 (connected, but no member "
	    "answers)") != NULL, "/ready: %s", err_msg(env));
	json_decref(env);
	ck_assert_int_eq(kill(C.nodes[0].pid, SIGCONT), 0);
	ready_wait(&C, 200, NULL);
	/* the write of unknown outcome was applied after all; the one
	 * refused in back-off was not */
	end = now_ms() + 10000;
	for (;;) {
		snprintf(path, sizeof(path), "/collections/c/vectors/%d?"
		    "consistency=primary", id);
		st = call_status("GET", path, NULL, &env);
		d = json_object_get(json_object_get(env, "data"), "data");
		if (st == 200 && json_number_value(json_array_get(d, 0)) == 2.0) {
			json_decref(env);
			break;
		}
		json_decref(env);
		ck_assert_msg(now_ms() < end, "the 504 write never showed: %d",
		    st);
		usleep(50 * 1000);
	}
}
END_TEST

/* A router over C's topology with settings from env[] ("NAME=value")
 * and flags; its REST port into r->port. Returns proc_try_start's. */
static int
env_router(struct srv *r, const char *const *env, const char *const *flags)
{
	char *topo, *log;
	int rv;

	memset(r, 0, sizeof(*r));
	if (asprintf(&topo, "%s/topology.json", C.dir) < 0 ||
	    asprintf(&log, "%s/router-env.log", C.dir) < 0)
		abort();
	proc_init(&r->proc, (const char *const[]) { VECDB_ROUTER_BIN, NULL },
	    log);
	proc_args_add(&r->proc, flags);
	proc_setenv(&r->proc, "VECDB_TOPOLOGY", topo);
	for (size_t i = 0; env != NULL && env[i] != NULL; i++) {
		char name[64];
		const char *eq = strchr(env[i], '=');
		snprintf(name, sizeof(name), "%.*s", (int) (eq - env[i]),
		    env[i]);
		proc_setenv(&r->proc, name, eq + 1);
	}
	free(topo);
	free(log);
	if ((rv = proc_try_start(&r->proc)) == 0)
		r->port = proc_port(&r->proc, "serving http://127.0.0.1:");
	return rv;
}

/* The status of one request with an optional "api-key: KEY" header. */
static int
status_with_key(struct srv *s, const char *method, const char *path,
    const char *body, const char *key)
{
	char h[128];
	const char *hdr[2] = { h, NULL };
	struct resp r;
	int status;

	snprintf(h, sizeof(h), "api-key: %s", key ? key : "");
	ck_assert_int_eq(http_req(s, method, path, body, key ? hdr : NULL,
	    &r), 0);
	status = r.status;
	resp_free(&r);
	return status;
}

static const char *const router_env[] = {
	"VECDB_HOST=127.0.0.1", "VECDB_PORT=0", "VECDB_TIMEOUT_MS=30000",
	"VECDB_API_KEY=envkey", "VECDB_READ_ONLY_API_KEY=rokey",
	"VECDB_NODE_API_KEY=", "VECDB_THREADS=4", "VECDB_MAX_BODY=4096",
	"VECDB_RPC_URL=tcp://127.0.0.1:0", NULL,
};

/*
 * vecdb-router with no flags at all, every setting from VECDB_*: it
 * serves the cluster, with the keys, body limit and binary API the
 * variables say. /ready and /health need no key.
 */
START_TEST(a_router_runs_from_the_environment_alone)
{
	char big[8192];
	struct srv r;

	ck_assert_msg(env_router(&r, router_env, NULL) == 0, "%s", r.proc.err);
	ck_assert_uint_ne(r.port, 0);
	ck_assert_msg(proc_port(&r.proc, "rpc tcp://127.0.0.1:") != 0,
	    "VECDB_RPC_URL gave no binary API: %s", r.proc.line);
	ready_wait(&r, 200, NULL);  /* the first dials are in flight */
	ck_assert_int_eq(status_with_key(&r, "GET", "/health", NULL, NULL),
	    200);
	ck_assert_int_eq(status_with_key(&r, "GET", "/collections/c", NULL,
	    NULL), 401);
	ck_assert_int_eq(status_with_key(&r, "GET", "/collections/c", NULL,
	    "envkey"), 200);
	ck_assert_int_eq(status_with_key(&r, "POST", "/collections/c/points/"
	    "count", "{}", "rokey"), 200);
	ck_assert_int_eq(status_with_key(&r, "DELETE", "/collections/c/"
	    "vectors/1", NULL, "rokey"), 403);
	memset(big, ' ', sizeof(big) - 3);
	memcpy(big + sizeof(big) - 3, "{}", 3);
	ck_assert_int_eq(status_with_key(&r, "POST", "/collections/c/points/"
	    "count", big, "envkey"), 413);
	srv_stop(&r);
}
END_TEST

/* A flag wins over its variable; a bad variable stops the router at
 * start with a message naming it; no topology at all says how to give
 * one. */
START_TEST(router_flags_win_over_the_environment)
{
	const char *const bad[] = { "VECDB_PORT=http", NULL };
	struct srv r;
	char *log;

	ck_assert_msg(env_router(&r, router_env, (const char *const[]) {
	    "--api-key", "flagkey", NULL }) == 0, "%s", r.proc.err);
	ready_wait(&r, 200, NULL);
	ck_assert_int_eq(status_with_key(&r, "GET", "/collections/c", NULL,
	    "envkey"), 401);
	ck_assert_int_eq(status_with_key(&r, "GET", "/collections/c", NULL,
	    "flagkey"), 200);
	srv_stop(&r);
	ck_assert_int_ne(env_router(&r, bad, NULL), 0);
	ck_assert_msg(strstr(r.proc.err, "port 'http' is not a number") !=
	    NULL && strstr(r.proc.err, "VECDB_PORT") != NULL, "%s",
	    r.proc.err);
	proc_free(&r.proc);
	memset(&r, 0, sizeof(r));
	if (asprintf(&log, "%s/router-none.log", C.dir) < 0)
		abort();
	proc_init(&r.proc, (const char *const[]) { VECDB_ROUTER_BIN, NULL },
	    log);
	free(log);
	ck_assert_int_ne(proc_try_start(&r.proc), 0);
	ck_assert_msg(strstr(r.proc.err, "no topology: give --topology FILE "
	    "(or VECDB_TOPOLOGY)") != NULL, "%s", r.proc.err);
	proc_free(&r.proc);
}
END_TEST

/* ===== Searches that would queue go together ===== */

#define QUERIES 16
#define SEARCHERS 6

/* A search body for query q: near point q * 13 + 5, the 5 nearest. */
static void
query_body(int q, char *buf, size_t len)
{
	float v[DIM];

	point_vec(q * 13 + 5, v);
	snprintf(buf, len, "{\"vector\": [%g, %g, %g, %g], \"limit\": 5}",
	    v[0] + 0.003, v[1] - 0.002, v[2], v[3] + 0.001);
}

/* One request thread: every query in its own order, again and again
 * until told to stop, each answer checked against the query's alone. */
struct searcher {
	pthread_t th;
	int k;
	char *const *want;        /* the hits of each query alone (JSON) */
	int *stop;                /* atomic */
	int searches, wrong, failed;
	char bad[512];            /* the first wrong answer or failure */
};

static void *
searcher_main(void *arg)
{
	struct searcher *sr = arg;
	char body[256];

	while (!__atomic_load_n(sr->stop, __ATOMIC_RELAXED)) {
		for (int i = 0; i < QUERIES; i++) {
			int q = (i * (sr->k + 1) + sr->k) % QUERIES;
			struct resp r;
			char *got = NULL;

			query_body(q, body, sizeof(body));
			if (http_req(&C, "POST", "/collections/c/search", body,
			    NULL, &r) != 0 || r.status != 200 || r.json == NULL) {
				if (sr->failed++ == 0)
					snprintf(sr->bad, sizeof(sr->bad), "query "
					    "%d: %d %.400s", q, r.status, r.body ?
					    r.body : "(no answer)");
				resp_free(&r);
				continue;
			}
			got = json_dumps(json_object_get(r.json, "data"),
			    JSON_COMPACT);
			if (got == NULL || strcmp(got, sr->want[q]) != 0) {
				if (sr->wrong++ == 0)
					snprintf(sr->bad, sizeof(sr->bad), "query "
					    "%d: %.200s, alone %.200s", q, got,
					    sr->want[q]);
			}
			free(got);
			resp_free(&r);
			sr->searches++;
		}
	}
	return NULL;
}

START_TEST(searches_that_would_queue_go_together_and_answer_as_alone)
{
	struct searcher sr[SEARCHERS];
	char *want[QUERIES];
	char body[256];
	int stop = 0;
	uint64_t end;
	double batched = 0, batches;

	/* the router learns from the health rounds that each node runs one
	 * request at once */
	for (int i = 0; i < 2; i++)
		wait_gauge("vecdb_router_shard_parallelism", i, i, "primary",
		    1);
	for (int q = 0; q < QUERIES; q++) {
		json_t *x;

		query_body(q, body, sizeof(body));
		x = ok("POST", "/collections/c/search", body);
		ck_assert_uint_eq(json_array_size(x), 5);
		want[q] = json_dumps(x, JSON_COMPACT);
		json_decref(x);
	}
	ck_assert_double_eq(router_metric(&C,
	    "vecdb_router_search_batches_total"), 0);
	memset(sr, 0, sizeof(sr));
	for (int i = 0; i < SEARCHERS; i++) {
		sr[i].k = i;
		sr[i].want = want;
		sr[i].stop = &stop;
		ck_assert_int_eq(pthread_create(&sr[i].th, NULL, searcher_main,
		    &sr[i]), 0);
	}
	/* six request threads against one search in flight a collection:
	 * the others wait and go together */
	end = now_ms() + 30000;
	while (now_ms() < end && (batched = router_metric(&C,
	    "vecdb_router_searches_batched_total")) < 50)
		usleep(20000);
	__atomic_store_n(&stop, 1, __ATOMIC_RELAXED);
	for (int i = 0; i < SEARCHERS; i++) {
		ck_assert_int_eq(pthread_join(sr[i].th, NULL), 0);
		ck_assert_msg(sr[i].failed == 0 && sr[i].wrong == 0,
		    "searcher %d: %d failed, %d wrong of %d: %s", i,
		    sr[i].failed, sr[i].wrong, sr[i].searches, sr[i].bad);
		ck_assert_int_gt(sr[i].searches, 0);
	}
	ck_assert_msg(batched >= 50, "only %g searches went together",
	    batched);
	batches = router_metric(&C, "vecdb_router_search_batches_total");
	ck_assert_double_gt(batches, 0);
	ck_assert_double_ge(router_metric(&C,
	    "vecdb_router_searches_batched_total"), 2 * batches);
	for (int q = 0; q < QUERIES; q++)
		free(want[q]);
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("router");
	TCase *tc = tcase_create("members");

	srv_add_fixture(tc);
	tcase_add_checked_fixture(tc, up, down);
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, reads_go_to_replicas_first_unless_consistency_is_primary);
	tcase_add_test(tc, a_dead_replica_is_replaced_by_the_primary_within_the_deadline);
	tcase_add_test(tc, a_hung_replica_leaves_time_for_the_primary);
	tcase_add_test(tc, held_writes_leave_request_threads_for_reads);
	tcase_add_test(tc, a_write_reads_back_from_the_primary_and_replicas_catch_up);
	tcase_add_test(tc, quantization_reaches_every_primary_and_replicas_follow);
	tcase_add_test(tc, allow_partial_answers_without_a_dead_shard_and_names_it);
	tcase_add_test(tc, a_complete_answer_is_not_marked_partial);
	tcase_add_test(tc, the_binary_api_takes_read_options_and_names_missing_shards);
	tcase_add_test(tc, cluster_snapshots_through_the_binary_api);
	tcase_add_test(tc, ready_needs_a_connection_to_every_shard);
	tcase_add_test(tc, a_hung_primary_is_an_unknown_outcome_and_not_ready);
	tcase_add_test(tc, a_router_runs_from_the_environment_alone);
	tcase_add_test(tc, router_flags_win_over_the_environment);
	suite_add_tcase(s, tc);
	tc = tcase_create("together");
	srv_add_fixture(tc);
	tcase_add_checked_fixture(tc, up_one_at_once, down);
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc,
	    searches_that_would_queue_go_together_and_answer_as_alone);
	suite_add_tcase(s, tc);
	return tu_run(s);
}
