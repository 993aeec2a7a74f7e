/*
 * cluster_test.c: 3 vecdb-node shards behind one vecdb-router, compared
 * over REST with a `vecdb serve` holding the same points; then one node
 * is killed and the router must answer 503 within its deadline.
 *
 * Process hygiene as in tests/e2e/http.h: every child gets
 * PR_SET_PDEATHSIG(SIGKILL), is registered as srv-<pid>.pid in tu_base
 * (its command line names tu_base), and srv_add_fixture()'s unchecked
 * teardown kills whatever is still registered and removes the tree.
 */
#define _GNU_SOURCE
#include <civetweb.h>
#include <fcntl.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <nng/nng.h>
#include <nng/protocol/reqrep0/req.h>

#include "e2e/http.h"
#include "proto.h"
#include "vdb.h"
#include "testutil.h"

#ifndef VECDB_NODE_BIN
#error "VECDB_NODE_BIN must name the vecdb-node binary"
#endif
#ifndef VECDB_ROUTER_BIN
#error "VECDB_ROUTER_BIN must name the vecdb-router binary"
#endif

#define NSHARDS 3
#define NPTS 2000
#define DIM 8
#define START_TIMEOUT_MS 10000
#define STOP_TIMEOUT_MS 10000
#define ROUTER_DEADLINE_MS 1000

/* A child process: a node or the router. */
struct child {
	pid_t pid;
	uint16_t port;            /* rpc port (node) or http port (router) */
	char pidfile[512];
	char dir[512];            /* a node's data dir, for a restart */
};

static float vecs[NPTS][DIM];

/* Milliseconds on the monotonic clock. */
static uint64_t
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t) ts.tv_sec * 1000 + (uint64_t) ts.tv_nsec / 1000000;
}

/* ===== Processes ===== */

/* Read the child's first line (up to START_TIMEOUT_MS) into buf. */
static int
read_line(int fd, char *buf, size_t cap)
{
	uint64_t end = now_ms() + START_TIMEOUT_MS;
	size_t len = 0;

	while (now_ms() < end && len + 1 < cap) {
		struct pollfd p = { fd, POLLIN, 0 };
		ssize_t k;
		if (poll(&p, 1, 100) <= 0)
			continue;
		if ((k = read(fd, buf + len, cap - len - 1)) <= 0)
			return -1;
		len += (size_t) k;
		buf[len] = '\0';
		if (strchr(buf, '\n') != NULL)
			return 0;
	}
	return -1;
}

/* Fork and exec argv with stdout into a pipe and stderr into log; the
 * first line printed goes to line. */
static void
child_start(const char *const *argv, const char *log, struct child *c,
    char *line, size_t cap)
{
	int fds[2], fd;
	FILE *f;

	memset(c, 0, sizeof(*c));
	ck_assert_int_eq(pipe(fds), 0);
	if ((c->pid = fork()) == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		dup2(fds[1], 1);
		if ((fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0644)) >= 0)
			dup2(fd, 2);
		execv(argv[0], (char *const *) argv);
		_exit(127);
	}
	ck_assert_int_gt(c->pid, 0);
	close(fds[1]);
	snprintf(c->pidfile, sizeof(c->pidfile), "%s/srv-%d.pid", tu_base,
	    (int) c->pid);
	if ((f = fopen(c->pidfile, "w")) != NULL)
		fclose(f);
	ck_assert_msg(read_line(fds[0], line, cap) == 0, "%s printed nothing "
	    "within %d ms (log %s)", argv[0], START_TIMEOUT_MS, log);
	close(fds[0]);
}

/* Start a node on free ports. */
static void
node_start(struct child *c)
{
	char *dir = tu_subdir(), log[600], line[512];
	const char *argv[] = { VECDB_NODE_BIN, "--data", dir, "--rpc",
		"tcp://127.0.0.1:0", "--admin-port", "0", NULL };

	snprintf(log, sizeof(log), "%s.log", dir);
	child_start(argv, log, c, line, sizeof(line));
	ck_assert_int_eq(sscanf(line, "vecdb-node %*s rpc tcp://127.0.0.1:%hu",
	    &c->port), 1);
	snprintf(c->dir, sizeof(c->dir), "%s", dir);
	free(dir);
}

/* Start a node again on its data dir and its port (a restart). */
static void
node_restart(struct child *c)
{
	char dir[512], log[600], line[512], url[64];
	const char *argv[] = { VECDB_NODE_BIN, "--data", dir, "--rpc", url,
		"--admin-port", "0", NULL };
	uint16_t port = c->port;

	snprintf(dir, sizeof(dir), "%s", c->dir);
	snprintf(url, sizeof(url), "tcp://127.0.0.1:%u", port);
	snprintf(log, sizeof(log), "%s.log", dir);
	child_start(argv, log, c, line, sizeof(line));
	ck_assert_int_eq(sscanf(line, "vecdb-node %*s rpc tcp://127.0.0.1:%hu",
	    &c->port), 1);
	ck_assert_uint_eq(c->port, port);
	snprintf(c->dir, sizeof(c->dir), "%s", dir);
}

/* The port of the router's binary API (--rpc). */
static uint16_t router_rpc_port;

/* Write the topology of the nodes and start the router on it. */
static void
router_start(const struct child *nodes, struct child *c)
{
	char topo[600], log[600], line[512];
	const char *argv[] = { VECDB_ROUTER_BIN, "--topology", topo, "--host",
		"127.0.0.1", "--port", "0", "--timeout-ms", "1000", "--rpc",
		"tcp://127.0.0.1:0", NULL };
	FILE *f;

	snprintf(topo, sizeof(topo), "%s/topology.json", tu_base);
	snprintf(log, sizeof(log), "%s/router.log", tu_base);
	ck_assert_ptr_nonnull(f = fopen(topo, "w"));
	fprintf(f, "{\"shards\": [");
	for (int i = 0; i < NSHARDS; i++)
		fprintf(f, "%s{\"id\": %d, \"primary\": \"tcp://127.0.0.1:%u\", "
		    "\"replicas\": []}", i ? ", " : "", i, nodes[i].port);
	fprintf(f, "]}\n");
	fclose(f);
	child_start(argv, log, c, line, sizeof(line));
	ck_assert_int_eq(sscanf(line, "vecdb-router %*s serving "
	    "http://127.0.0.1:%hu rpc tcp://127.0.0.1:%hu", &c->port,
	    &router_rpc_port), 2);
}


/* SIGTERM (or SIGKILL when hard) and wait; a soft stop must exit 0. */
static void
child_stop(struct child *c, int hard)
{
	uint64_t end = now_ms() + STOP_TIMEOUT_MS;
	pid_t w = 0;
	int st = 0;

	kill(c->pid, hard ? SIGKILL : SIGTERM);
	while (now_ms() < end && (w = waitpid(c->pid, &st, WNOHANG)) == 0)
		usleep(20000);
	if (w == 0) {
		kill(c->pid, SIGKILL);
		waitpid(c->pid, &st, 0);
	}
	unlink(c->pidfile);
	c->pid = 0;
	ck_assert_msg(w > 0, "child did not stop within %d ms",
	    STOP_TIMEOUT_MS);
	if (!hard)
		ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0,
		    "exit status %d", st);
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
cluster_up(struct child *nodes, struct child *rc, struct srv *rt,
    struct srv *ref)
{
	uint64_t seed = 42;

	for (int i = 0; i < NPTS; i++)
		tu_rand_vector(&seed, vecs[i], DIM);
	for (int i = 0; i < NSHARDS; i++)
		node_start(&nodes[i]);
	router_start(nodes, rc);
	memset(rt, 0, sizeof(*rt));
	rt->pid = rc->pid;
	rt->port = rc->port;
	rt->out_fd = -1;
	srv_start(NULL, ref);
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
	snprintf(url, sizeof(url), "tcp://127.0.0.1:%u", router_rpc_port);
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
	struct child nodes[NSHARDS], rc;
	struct srv rt, ref;
	json_t *d, *e;
	uint64_t t0;

	cluster_up(nodes, &rc, &rt, &ref);
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

	child_stop(&nodes[1], 1);
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
	node_restart(&nodes[1]);
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

	child_stop(&rc, 0);
	child_stop(&nodes[0], 0);
	child_stop(&nodes[2], 0);
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
