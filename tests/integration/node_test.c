/*
 * node_test.c: `vecdb-node` as a child process, driven over nng req0 with
 * the proto.h codec, and its admin HTTP over civetweb's client.
 *
 * The node is a tests/proc.h child, with its cleanup rules.
 */
#define _GNU_SOURCE
#include <civetweb.h>
#include <math.h>
#include <nng/nng.h>
#include <nng/protocol/reqrep0/req.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "api.h"
#include "proc.h"
#include "proto.h"
#include "testutil.h"
#include "vdb.h"

#ifndef VECDB_NODE_BIN
#error "VECDB_NODE_BIN must name the vecdb-node binary"
#endif

#define RPC_TIMEOUT_MS 10000

/* A running node and a req0 socket to it. */
struct node {
	struct proc proc;
	uint16_t rpc_port;
	uint16_t admin_port;
	nng_socket sock;
};

/* A response, decoded. */
static struct proto_response *resp;

/* ===== Processes ===== */

/* Start a node with extra args, read its ports, connect a req0 socket. */
static void
node_start(const char *const *extra, struct node *n)
{
	char *dir = tu_subdir(), log[600], url[64];

	memset(n, 0, sizeof(*n));
	snprintf(log, sizeof(log), "%s.log", dir);
	proc_init(&n->proc, (const char *const[]) { VECDB_NODE_BIN, "--data",
	    dir, "--rpc", "tcp://127.0.0.1:0", "--admin-port", "0", NULL },
	    log);
	proc_args_add(&n->proc, extra);
	free(dir);
	proc_start(&n->proc);
	n->rpc_port = proc_port(&n->proc, "rpc tcp://127.0.0.1:");
	n->admin_port = proc_port(&n->proc, "admin http://127.0.0.1:");
	ck_assert_msg(n->rpc_port != 0 && n->admin_port != 0, "node printed "
	    "no ports: %s", n->proc.line);
	ck_assert_int_eq(nng_req0_open(&n->sock), 0);
	nng_socket_set_ms(n->sock, NNG_OPT_RECVTIMEO, RPC_TIMEOUT_MS);
	nng_socket_set_ms(n->sock, NNG_OPT_SENDTIMEO, RPC_TIMEOUT_MS);
	snprintf(url, sizeof(url), "tcp://127.0.0.1:%u", n->rpc_port);
	ck_assert_int_eq(nng_dial(n->sock, url, NULL, 0), 0);
}

/* SIGTERM; the node must exit 0 within PROC_STOP_TIMEOUT_S. */
static void
node_stop(struct node *n)
{
	nng_close(n->sock);
	proc_stop_ok(&n->proc);
	proc_free(&n->proc);
}

/* ===== RPC ===== */

/* Send raw bytes, decode the response into resp (freed first). */
static void
call_raw(struct node *n, const void *buf, size_t len)
{
	void *in = NULL;
	size_t inlen = 0;

	proto_response_free(resp);
	resp = NULL;
	ck_assert_int_eq(nng_send(n->sock, (void *) buf, len, 0), 0);
	ck_assert_int_eq(nng_recv(n->sock, &in, &inlen, NNG_FLAG_ALLOC), 0);
	ck_assert_int_eq(proto_response_decode(in, inlen, &resp), VECDB_OK);
	nng_free(in, inlen);
}

/* One request with a body (freed here); returns the response code. */
static int
call_key(struct node *n, uint32_t method, const char *key, uint8_t *body,
    size_t len)
{
	uint8_t *req;
	size_t reqlen;

	ck_assert_int_eq(proto_request_encode(method, key, 7, body, len, &req,
	    &reqlen), VECDB_OK);
	vdb_free(body);
	call_raw(n, req, reqlen);
	vdb_free(req);
	return resp->code;
}

static int
call(struct node *n, uint32_t method, uint8_t *body, size_t len)
{
	return call_key(n, method, "", body, len);
}

/* Create a euclidean collection of dim dims. */
static int
create(struct node *n, const char *name, uint32_t dim)
{
	vecdb_collection_config c;
	uint8_t *b;
	size_t l;

	vecdb_collection_config_init(&c, name, dim, VECDB_EUCLIDEAN);
	ck_assert_int_eq(proto_collection_create_encode(&c, &b, &l), VECDB_OK);
	return call(n, PROTO_CREATE_COLLECTION, b, l);
}

/* A method that names only a collection (get, delete, lists). */
static int
call_target(struct node *n, uint32_t method, const char *coll,
    const char *name)
{
	uint8_t *b;
	size_t l;

	ck_assert_int_eq(proto_target_encode(method, coll, name,
	    VECDB_FIELD_KEYWORD, &b, &l), VECDB_OK);
	return call(n, method, b, l);
}

/* The test data: 8 points in 4 dims, the first 2 without ids. */
#define NPTS 8
#define DIM 4
static float vecs[NPTS][DIM];

/* Write the test points; ids come back in ids. */
static void
write_points(struct node *n, vecdb_id ids[NPTS])
{
	vecdb_point p[NPTS];
	vecdb_id *got;
	size_t ng;
	uint64_t seed = 42;
	uint8_t *b;
	size_t l;

	memset(p, 0, sizeof(p));
	for (int i = 0; i < NPTS; i++) {
		tu_rand_vector(&seed, vecs[i], DIM);
		p[i].id = i < 2 ? (vecdb_id) { 0 } : vecdb_id_num((uint64_t) i);
		p[i].vector = vecs[i];
		p[i].dim = DIM;
		p[i].payload = "{\"k\":\"v\"}";
	}
	ck_assert_int_eq(proto_write_encode("c", API_UPSERT, p, NPTS, &b, &l),
	    VECDB_OK);
	ck_assert_int_eq(call(n, PROTO_WRITE, b, l), PROTO_OK);
	ck_assert_int_eq(proto_ids_decode(resp->body, resp->body_len, &got,
	    &ng), VECDB_OK);
	ck_assert_uint_eq(ng, NPTS);
	for (int i = 0; i < NPTS; i++)
		ids[i] = got[i];
	vdb_free(got);
	ck_assert_int_eq(ids[0].kind, VECDB_ID_UUID);
	ck_assert_int_eq(ids[5].kind, VECDB_ID_NUM);
	ck_assert_uint_eq(ids[5].num, 5);
}

/* Euclidean distance. */
static float
dist(const float *a, const float *b)
{
	float s = 0;

	for (int i = 0; i < DIM; i++)
		s += (a[i] - b[i]) * (a[i] - b[i]);
	return sqrtf(s);
}

/* Exact search of point 3's vector: top 3 equal the naive order. */
static void
check_search(struct node *n, const vecdb_id ids[NPTS])
{
	vecdb_search_params sp = { vecs[3], DIM, 3, 0, NULL, 0, 1, 0, 0, 0, 0,
		0, NULL };
	vecdb_records **res;
	int order[NPTS];
	size_t nr;
	uint8_t *b;
	size_t l;

	for (int i = 0; i < NPTS; i++)
		order[i] = i;
	for (int i = 0; i < NPTS; i++)      /* selection sort by distance */
		for (int j = i + 1; j < NPTS; j++)
			if (dist(vecs[order[j]], vecs[3]) <
			    dist(vecs[order[i]], vecs[3])) {
				int t = order[i];
				order[i] = order[j], order[j] = t;
			}
	ck_assert_int_eq(proto_search_encode("c", &sp, NULL, 1, &b, &l),
	    VECDB_OK);
	ck_assert_int_eq(call(n, PROTO_SEARCH, b, l), PROTO_OK);
	ck_assert_int_eq(proto_search_result_decode(resp->body, resp->body_len,
	    &res, &nr), VECDB_OK);
	ck_assert_uint_eq(nr, 1);
	ck_assert_uint_eq(res[0]->count, 3);
	for (size_t i = 0; i < 3; i++) {
		ck_assert_int_eq(vecdb_id_cmp(&res[0]->items[i].id,
		    &ids[order[i]]), 0);
		ck_assert_float_eq_tol(res[0]->items[i].distance,
		    dist(vecs[order[i]], vecs[3]), 1e-4);
	}
	vecdb_records_free_array(res, nr);
}

/* Get, count, scroll over the test points. */
static void
check_reads(struct node *n, const vecdb_id ids[NPTS])
{
	vecdb_records *rs;
	vecdb_record *rec;
	uint64_t cnt = 0;
	uint8_t *b;
	size_t l;

	ck_assert_int_eq(proto_get_encode("c", &ids[0], &b, &l), VECDB_OK);
	ck_assert_int_eq(call(n, PROTO_GET, b, l), PROTO_OK);
	ck_assert_int_eq(proto_record_decode(resp->body, resp->body_len, &rec),
	    VECDB_OK);
	ck_assert_int_eq(vecdb_id_cmp(&rec->id, &ids[0]), 0);
	vecdb_record_free(rec);
	ck_assert_int_eq(proto_count_encode("c", "{\"must\":[{\"key\":\"k\","
	    "\"match\":{\"value\":\"v\"}}]}", &b, &l), VECDB_OK);
	ck_assert_int_eq(call(n, PROTO_COUNT, b, l), PROTO_OK);
	ck_assert_int_eq(proto_count_result_decode(resp->body, resp->body_len,
	    &cnt), VECDB_OK);
	ck_assert_uint_eq(cnt, NPTS);
	ck_assert_int_eq(proto_scroll_encode("c", NULL, 100, NULL, 1, 0, &b,
	    &l), VECDB_OK);
	ck_assert_int_eq(call(n, PROTO_SCROLL, b, l), PROTO_OK);
	ck_assert_int_eq(proto_records_decode(resp->body, resp->body_len, &rs),
	    VECDB_OK);
	ck_assert_uint_eq(rs->count, NPTS);
	ck_assert_int_eq(rs->has_next, 0);
	vecdb_records_free(rs);
}

/* ===== Tests ===== */

START_TEST(every_method_family_round_trips)
{
	vecdb_collection_config c;
	vecdb_collection_stats st;
	struct proto_health h;
	vecdb_stats vs;
	vecdb_id ids[NPTS];
	uint64_t deleted = 0;
	struct node n;
	char **names;
	size_t nn;
	uint8_t *b;
	size_t l;

	node_start(NULL, &n);
	ck_assert_int_eq(create(&n, "c", DIM), PROTO_OK);
	ck_assert_int_eq(create(&n, "c", DIM), PROTO_ALREADY_EXISTS);
	write_points(&n, ids);
	check_search(&n, ids);
	check_reads(&n, ids);
	ck_assert_int_eq(proto_delete_encode("c", &ids[4], 2, &b, &l),
	    VECDB_OK);
	ck_assert_int_eq(call(&n, PROTO_DELETE, b, l), PROTO_OK);
	ck_assert_int_eq(proto_deleted_decode(resp->body, resp->body_len,
	    &deleted), VECDB_OK);
	ck_assert_uint_eq(deleted, 2);
	ck_assert_int_eq(call_target(&n, PROTO_GET_COLLECTION, "c", ""),
	    PROTO_OK);
	ck_assert_int_eq(proto_collection_info_decode(resp->body,
	    resp->body_len, &c, &st), VECDB_OK);
	ck_assert_uint_eq(c.dimension, DIM);
	ck_assert_uint_eq(st.vector_count, NPTS - 2);
	ck_assert_int_eq(call_target(&n, PROTO_PAYLOAD_INDEX_CREATE, "c", "k"),
	    PROTO_OK);
	ck_assert_int_eq(call_target(&n, PROTO_PAYLOAD_INDEX_LIST, "c", ""),
	    PROTO_OK);
	ck_assert_int_eq(call_target(&n, PROTO_SNAPSHOT_LIST, "c", ""),
	    PROTO_OK);
	ck_assert_int_eq(call(&n, PROTO_STATS, NULL, 0), PROTO_OK);
	ck_assert_int_eq(proto_stats_decode(resp->body, resp->body_len, &vs),
	    VECDB_OK);
	ck_assert_int_eq(call(&n, PROTO_HEALTH, NULL, 0), PROTO_OK);
	ck_assert_int_eq(proto_health_decode(resp->body, resp->body_len, &h),
	    VECDB_OK);
	ck_assert_str_eq(h.status, "ok");
	ck_assert_str_eq(h.role, "primary");
	ck_assert_int_eq(call(&n, PROTO_LIST_COLLECTIONS, NULL, 0), PROTO_OK);
	ck_assert_int_eq(proto_names_decode(resp->body, resp->body_len, &names,
	    &nn), VECDB_OK);
	ck_assert_uint_eq(nn, 1);
	ck_assert_str_eq(names[0], "c");
	vecdb_names_free(names, nn);
	ck_assert_int_eq(call_target(&n, PROTO_DELETE_COLLECTION, "c", ""),
	    PROTO_OK);
	ck_assert_int_eq(call_target(&n, PROTO_GET_COLLECTION, "c", ""),
	    PROTO_NOT_FOUND);
	node_stop(&n);
}
END_TEST

START_TEST(errors_map_to_codes_and_garbage_is_survived)
{
	uint8_t junk[256];
	uint64_t seed = 7;
	vecdb_point p;
	float v[3] = { 1, 2, 3 };
	struct node n;
	uint8_t *b;
	size_t l;

	node_start(NULL, &n);
	ck_assert_int_eq(call_target(&n, PROTO_GET_COLLECTION, "nope", ""),
	    PROTO_NOT_FOUND);
	ck_assert_str_ne(resp->message, "");
	ck_assert_int_eq(create(&n, "c", DIM), PROTO_OK);
	memset(&p, 0, sizeof(p));
	p.id = vecdb_id_num(1), p.vector = v, p.dim = 3;
	ck_assert_int_eq(proto_write_encode("c", API_UPSERT, &p, 1, &b, &l),
	    VECDB_OK);
	ck_assert_int_eq(call(&n, PROTO_WRITE, b, l),
	    proto_code_of(VECDB_EDIM));
	for (size_t i = 0; i < sizeof(junk); i++)
		junk[i] = (uint8_t) tu_rand(&seed);
	call_raw(&n, junk, sizeof(junk));
	ck_assert_int_eq(resp->code, PROTO_INVALID_ARGUMENT);
	ck_assert_int_eq(call(&n, PROTO_SEARCH, NULL, 0),
	    PROTO_INVALID_ARGUMENT);
	ck_assert_int_eq(call(&n, PROTO_HEALTH, NULL, 0), PROTO_OK);
	node_stop(&n);
}
END_TEST

/* A discover of c (4-d) by target id ids[3] and context vectors. */
static int
discover_call(struct node *n, const vecdb_id ids[NPTS], const float *cv,
    size_t pairs, uint32_t dim)
{
	vecdb_discover_params p;
	uint8_t *b;
	size_t l;

	memset(&p, 0, sizeof(p));
	p.has_target = 1;
	p.target = ids[3];
	p.context_vectors = cv;
	p.n_context_vectors = pairs;
	p.dim = dim;
	p.limit = 5;
	ck_assert_int_eq(proto_discover_encode("c", &p, NULL, &b, &l),
	    VECDB_OK);
	return call(n, PROTO_DISCOVER, b, l);
}

/* A code an argument error may carry: INVALID_ARGUMENT, or OUT_OF_RANGE
 * for a dimension (VECDB_EDIM). */
static int
is_arg_error(int code)
{
	return code == PROTO_INVALID_ARGUMENT ||
	    code == proto_code_of(VECDB_EDIM);
}

/*
 * The binary twin of rest_test's wrong-dimension cases: examples of the
 * wrong dimension in discover and recommend are argument errors, and the
 * node keeps serving.
 */
START_TEST(examples_of_the_wrong_dimension_are_refused)
{
	static const float v3[6] = { .1f, .1f, .1f, .2f, .2f, .2f };
	static const float v5[10] = { 1, 2, 3, 4, 5, 1, 2, 3, 4, 5 };
	vecdb_recommend_params rp;
	vecdb_discover_params dp;
	vecdb_records *rs;
	vecdb_id ids[NPTS];
	struct node n;
	int code;
	uint8_t *b;
	size_t l;

	node_start(NULL, &n);
	ck_assert_int_eq(create(&n, "c", DIM), PROTO_OK);
	write_points(&n, ids);
	ck_assert_msg(is_arg_error(code = discover_call(&n, ids, v3, 1, 3)),
	    "3-d context: code %d (%s)", code, resp->message);
	ck_assert_msg(is_arg_error(code = discover_call(&n, ids, v5, 1, 5)),
	    "5-d context: code %d (%s)", code, resp->message);
	memset(&dp, 0, sizeof(dp));
	dp.has_target = 1;
	dp.target_vector = v3;
	dp.dim = 3;
	dp.limit = 5;
	ck_assert_int_eq(proto_discover_encode("c", &dp, NULL, &b, &l),
	    VECDB_OK);
	ck_assert_msg(is_arg_error(code = call(&n, PROTO_DISCOVER, b, l)),
	    "3-d target: code %d (%s)", code, resp->message);
	memset(&rp, 0, sizeof(rp));
	rp.positive = &ids[3];
	rp.n_positive = 1;
	rp.negative_vectors = v3;
	rp.n_negative_vectors = 1;
	rp.dim = 3;
	rp.limit = 5;
	ck_assert_int_eq(proto_recommend_encode("c", &rp, NULL, &b, &l),
	    VECDB_OK);
	ck_assert_msg(is_arg_error(code = call(&n, PROTO_RECOMMEND, b, l)),
	    "3-d negative: code %d (%s)", code, resp->message);
	ck_assert_int_eq(call(&n, PROTO_HEALTH, NULL, 0), PROTO_OK);
	ck_assert_int_eq(discover_call(&n, ids, vecs[0], 1, DIM), PROTO_OK);
	ck_assert_int_eq(proto_records_decode(resp->body, resp->body_len, &rs),
	    VECDB_OK);
	ck_assert_uint_gt(rs->count, 0);
	vecdb_records_free(rs);
	node_stop(&n);
}
END_TEST

static int admin_get(struct node *n, const char *path, char *buf,
    size_t cap);

START_TEST(replica_refuses_writes)
{
	/* Nothing listens on the primary's port: the follower keeps
	 * retrying in the background; reads are still served. */
	const char *args[] = { "--mode", "replica", "--node-id", "r1",
		"--primary", "tcp://127.0.0.1:1", NULL };
	struct proto_health h;
	struct node n;

	node_start(args, &n);
	ck_assert_int_eq(create(&n, "c", DIM), PROTO_FAILED_PRECONDITION);
	ck_assert_str_eq(resp->message,
	    "this node is a read replica of tcp://127.0.0.1:1");
	ck_assert_int_eq(call(&n, PROTO_LIST_COLLECTIONS, NULL, 0), PROTO_OK);
	ck_assert_int_eq(call(&n, PROTO_HEALTH, NULL, 0), PROTO_OK);
	ck_assert_int_eq(proto_health_decode(resp->body, resp->body_len, &h),
	    VECDB_OK);
	ck_assert_str_eq(h.role, "replica");
	ck_assert_str_eq(h.node_id, "r1");
	/* Never heard from its primary: not ready. */
	static char body[512];
	ck_assert_int_eq(admin_get(&n, "/ready", body, sizeof(body)), 503);
	ck_assert_ptr_nonnull(strstr(body, "\"status\":\"catching_up\""));
	node_stop(&n);
}
END_TEST

START_TEST(api_key_is_required_when_configured)
{
	const char *args[] = { "--api-key", "sekrit", NULL };
	struct node n;

	node_start(args, &n);
	ck_assert_int_eq(call(&n, PROTO_HEALTH, NULL, 0),
	    PROTO_UNAUTHENTICATED);
	ck_assert_int_eq(call_key(&n, PROTO_HEALTH, "wrong", NULL, 0),
	    PROTO_UNAUTHENTICATED);
	ck_assert_int_eq(call_key(&n, PROTO_HEALTH, "sekrit", NULL, 0),
	    PROTO_OK);
	node_stop(&n);
}
END_TEST

/* GET path on the admin port: the HTTP status, body into buf. */
static int
admin_get(struct node *n, const char *path, char *buf, size_t cap)
{
	char ebuf[256];
	struct mg_connection *c;
	int status, k, len = 0;

	c = mg_connect_client("127.0.0.1", n->admin_port, 0, ebuf,
	    sizeof(ebuf));
	ck_assert_msg(c != NULL, "admin connect: %s", ebuf);
	mg_printf(c, "GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\n"
		     "Connection: close\r\n\r\n", path);
	ck_assert_int_ge(mg_get_response(c, ebuf, sizeof(ebuf), 10000), 0);
	status = mg_get_response_info(c)->status_code;
	while ((size_t) len + 1 < cap &&
	    (k = mg_read(c, buf + len, cap - (size_t) len - 1)) > 0)
		len += k;
	buf[len] = '\0';
	mg_close_connection(c);
	return status;
}

START_TEST(admin_endpoints_answer)
{
	const char *args[] = { "--node-id", "n7", NULL };
	static char body[65536];
	struct node n;

	node_start(args, &n);
	ck_assert_int_eq(call(&n, PROTO_HEALTH, NULL, 0), PROTO_OK);
	ck_assert_int_eq(admin_get(&n, "/health", body, sizeof(body)), 200);
	ck_assert_ptr_nonnull(strstr(body, "\"node_id\":\"n7\""));
	ck_assert_ptr_nonnull(strstr(body, "\"mode\":\"primary\""));
	ck_assert_int_eq(admin_get(&n, "/ready", body, sizeof(body)), 200);
	ck_assert_int_eq(admin_get(&n, "/metrics", body, sizeof(body)), 200);
	ck_assert_ptr_nonnull(strstr(body, "vecdb_rpc_requests_total{method="
	    "\"health\",code=\"OK\"} 1"));
	ck_assert_ptr_nonnull(strstr(body, "process_resident_memory_bytes"));
	ck_assert_int_eq(admin_get(&n, "/nope", body, sizeof(body)), 404);
	node_stop(&n);
}
END_TEST

/*
 * --admin-host 0.0.0.0 (as a pod runs it): the admin HTTP listens on
 * every address, so loopback still reaches it; the node names the
 * address in its first line and stops cleanly (its stop wakes civetweb
 * over loopback). VECDB_ADMIN_HOST does the same, and a flag wins.
 */
START_TEST(admin_host_binds_every_address)
{
	static char body[4096];
	char *dir = tu_subdir(), log[600];
	struct node n;

	memset(&n, 0, sizeof(n));
	snprintf(log, sizeof(log), "%s.log", dir);
	proc_init(&n.proc, (const char *const[]) { VECDB_NODE_BIN, "--data",
	    dir, "--rpc", "tcp://127.0.0.1:0", "--admin-port", "0",
	    "--admin-host", "0.0.0.0", NULL }, log);
	proc_start(&n.proc);
	ck_assert_msg(strstr(n.proc.line, "admin http://0.0.0.0:") != NULL,
	    "first line: %s", n.proc.line);
	n.admin_port = proc_port(&n.proc, "admin http://0.0.0.0:");
	ck_assert_uint_ne(n.admin_port, 0);
	ck_assert_int_eq(admin_get(&n, "/ready", body, sizeof(body)), 200);
	ck_assert_int_eq(admin_get(&n, "/health", body, sizeof(body)), 200);
	proc_stop_ok(&n.proc);
	proc_free(&n.proc);
	/* the environment, and a flag over it */
	memset(&n, 0, sizeof(n));
	proc_init(&n.proc, (const char *const[]) { VECDB_NODE_BIN, "--data",
	    dir, NULL }, log);
	proc_setenv(&n.proc, "VECDB_RPC_URL", "tcp://127.0.0.1:0");
	proc_setenv(&n.proc, "VECDB_ADMIN_PORT", "0");
	proc_setenv(&n.proc, "VECDB_ADMIN_HOST", "0.0.0.0");
	proc_start(&n.proc);
	ck_assert_msg(strstr(n.proc.line, "admin http://0.0.0.0:") != NULL,
	    "first line: %s", n.proc.line);
	n.admin_port = proc_port(&n.proc, "admin http://0.0.0.0:");
	ck_assert_int_eq(admin_get(&n, "/ready", body, sizeof(body)), 200);
	proc_stop_ok(&n.proc);
	proc_args_add(&n.proc, (const char *const[]) { "--admin-host",
	    "127.0.0.1", NULL });
	proc_start(&n.proc);
	ck_assert_msg(strstr(n.proc.line, "admin http://127.0.0.1:") != NULL,
	    "first line: %s", n.proc.line);
	proc_stop_ok(&n.proc);
	proc_free(&n.proc);
	free(dir);
}
END_TEST

/* A host that is not an IPv4 address stops the node at start, naming
 * the value and, from the environment, the variable. */
START_TEST(a_bad_admin_host_is_refused)
{
	char *dir = tu_subdir(), log[600];
	struct proc p;

	snprintf(log, sizeof(log), "%s.log", dir);
	memset(&p, 0, sizeof(p));
	proc_init(&p, (const char *const[]) { VECDB_NODE_BIN, "--data", dir,
	    "--rpc", "tcp://127.0.0.1:0", "--admin-port", "0", "--admin-host",
	    "localhost:80", NULL }, log);
	ck_assert_int_ne(proc_try_start(&p), 0);
	ck_assert_msg(strstr(p.err, "admin-host 'localhost:80' is not an "
	    "IPv4") != NULL, "%s", p.err);
	proc_free(&p);
	memset(&p, 0, sizeof(p));
	proc_init(&p, (const char *const[]) { VECDB_NODE_BIN, "--data", dir,
	    "--rpc", "tcp://127.0.0.1:0", "--admin-port", "0", NULL }, log);
	proc_setenv(&p, "VECDB_ADMIN_HOST", "::");
	ck_assert_int_ne(proc_try_start(&p), 0);
	ck_assert_msg(strstr(p.err, "VECDB_ADMIN_HOST") != NULL, "%s", p.err);
	proc_free(&p);
	free(dir);
}
END_TEST

START_TEST(wal_retention_takes_a_size)
{
	char *dir = tu_subdir(), log[600];
	struct proc p;

	snprintf(log, sizeof(log), "%s.log", dir);
	memset(&p, 0, sizeof(p));
	proc_init(&p, (const char *const[]) { VECDB_NODE_BIN, "--data", dir,
	    "--rpc", "tcp://127.0.0.1:0", "--admin-port", "0",
	    "--wal-retention", "12X", NULL }, log);
	ck_assert_int_ne(proc_try_start(&p), 0);
	ck_assert_msg(strstr(p.err, "wal-retention '12X' is not a size") !=
	    NULL, "%s", p.err);
	proc_free(&p);
	memset(&p, 0, sizeof(p));
	proc_init(&p, (const char *const[]) { VECDB_NODE_BIN, "--data", dir,
	    "--rpc", "tcp://127.0.0.1:0", "--admin-port", "0",
	    "--wal-retention", "512MiB", NULL }, log);
	proc_start(&p);
	proc_stop_ok(&p);
	proc_free(&p);
	memset(&p, 0, sizeof(p));
	proc_init(&p, (const char *const[]) { VECDB_NODE_BIN, "--data", dir,
	    "--rpc", "tcp://127.0.0.1:0", "--admin-port", "0", NULL }, log);
	proc_setenv(&p, "VECDB_WAL_RETENTION", "99999999999T");
	ck_assert_int_ne(proc_try_start(&p), 0);
	ck_assert_msg(strstr(p.err, "VECDB_WAL_RETENTION") != NULL, "%s",
	    p.err);
	proc_free(&p);
	free(dir);
}
END_TEST

/* Free the last response (checked teardown). */
static void
resp_teardown(void)
{
	proto_response_free(resp);
	resp = NULL;
}

int
main(void)
{
	Suite *s = suite_create("node");
	TCase *tc = tcase_create("node");

	mg_init_library(0);
	proc_add_fixture(tc);
	tcase_add_checked_fixture(tc, NULL, resp_teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, every_method_family_round_trips);
	tcase_add_test(tc, errors_map_to_codes_and_garbage_is_survived);
	tcase_add_test(tc, examples_of_the_wrong_dimension_are_refused);
	tcase_add_test(tc, replica_refuses_writes);
	tcase_add_test(tc, api_key_is_required_when_configured);
	tcase_add_test(tc, admin_endpoints_answer);
	tcase_add_test(tc, admin_host_binds_every_address);
	tcase_add_test(tc, a_bad_admin_host_is_refused);
	tcase_add_test(tc, wal_retention_takes_a_size);
	suite_add_tcase(s, tc);
	return tu_run(s);
}
