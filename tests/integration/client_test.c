/*
 * client_test.c: include/vecdb_client.h against a `vecdb-node` child
 * process: every call round-trips, errors carry the server's code and
 * message, a dead server gives VECDB_EUNAVAILABLE within the timeout, and the
 * example program prints its hits.
 *
 * The node is a tests/proc.h child, with its cleanup rules.
 */
#define _GNU_SOURCE
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "proc.h"
#include "testutil.h"
#include "vdb.h"
#include "vecdb_client.h"

#ifndef VECDB_NODE_BIN
#error "VECDB_NODE_BIN must name the vecdb-node binary"
#endif
#ifndef CLIENT_EXAMPLE_BIN
#error "CLIENT_EXAMPLE_BIN must name the client_example binary"
#endif

#define CALL_TIMEOUT_MS 1500
#define DIM 4
#define NPTS 50

/* A running node. */
struct node {
	struct proc proc;
	char url[64];
};

/* ===== Processes ===== */

/* Start a node and read its rpc URL. */
static void
node_start(struct node *n)
{
	char *dir = tu_subdir(), log[600];
	uint16_t port;

	memset(n, 0, sizeof(*n));
	snprintf(log, sizeof(log), "%s.log", dir);
	proc_init(&n->proc, (const char *const[]) { VECDB_NODE_BIN, "--data",
	    dir, "--rpc", "tcp://127.0.0.1:0", "--admin-port", "0", NULL },
	    log);
	free(dir);
	proc_start(&n->proc);
	port = proc_port(&n->proc, "rpc tcp://127.0.0.1:");
	ck_assert_msg(port != 0, "node printed no rpc port: %s", n->proc.line);
	snprintf(n->url, sizeof(n->url), "tcp://127.0.0.1:%u", port);
}

/* SIGTERM; the node must exit 0 (SIGKILL after PROC_STOP_TIMEOUT_S). */
static void
node_stop(struct node *n)
{
	proc_stop_ok(&n->proc);
	proc_free(&n->proc);
}

/* ===== Helpers ===== */

/* Fail with the call's message unless rv is VECDB_OK. */
#define OK(expr)                                                        \
	do {                                                            \
		int rv_ = (expr);                                       \
		ck_assert_msg(rv_ == VECDB_OK, "%s: %s: %s", #expr,     \
		    vecdb_strerror(rv_), vecdb_errmsg());               \
	} while (0)

static float vecs[NPTS][DIM];

/* Euclidean distance. */
static float
l2(const float *a, const float *b)
{
	float s = 0;

	for (int i = 0; i < DIM; i++)
		s += (a[i] - b[i]) * (a[i] - b[i]);
	return sqrtf(s);
}

/* The k nearest ids (1-based numbers) to q by a scan, into out. */
static void
naive_knn(const float *q, uint32_t k, uint64_t *out, float *dist)
{
	int used[NPTS] = { 0 };

	for (uint32_t j = 0; j < k; j++) {
		int best = -1;
		for (int i = 0; i < NPTS; i++)
			if (!used[i] && (best < 0 ||
			    l2(q, vecs[i]) < l2(q, vecs[best])))
				best = i;
		used[best] = 1;
		out[j] = (uint64_t) best + 1;
		dist[j] = l2(q, vecs[best]);
	}
}

/* Check one search answer against the scan. */
static void
check_hits(const vecdb_records *r, const float *q, uint32_t k)
{
	uint64_t want[NPTS];
	float dist[NPTS];

	naive_knn(q, k, want, dist);
	ck_assert_uint_eq(r->count, k);
	for (uint32_t j = 0; j < k; j++) {
		ck_assert_int_eq(r->items[j].id.kind, VECDB_ID_NUM);
		ck_assert_uint_eq(r->items[j].id.num, want[j]);
		ck_assert_float_eq_tol(r->items[j].distance, dist[j], 1e-4);
	}
}

/* Create "c" (DIM, euclidean) and upsert NPTS points, ids 1..NPTS. */
static void
load(vecdb_client *c)
{
	vecdb_collection_config cfg;
	vecdb_point pts[NPTS];
	char pay[NPTS][32];
	uint64_t seed = 42;

	vecdb_collection_config_init(&cfg, "c", DIM, VECDB_EUCLIDEAN);
	OK(vecdb_client_collection_create(c, &cfg));
	for (int i = 0; i < NPTS; i++) {
		tu_rand_vector(&seed, vecs[i], DIM);
		snprintf(pay[i], sizeof(pay[i]), "{\"k\":%d}", i % 2);
		pts[i] = (vecdb_point){ vecdb_id_num((uint64_t) i + 1),
			vecs[i], DIM, pay[i] };
	}
	OK(vecdb_client_upsert(c, "c", pts, NPTS));
}

/* ===== Tests ===== */

START_TEST(collections_and_points_round_trip)
{
	vecdb_collection_config cfg;
	vecdb_collection_stats st;
	vecdb_client *c;
	vecdb_record *rec;
	vecdb_health h;
	vecdb_stats s;
	struct node n;
	char **names;
	size_t count, deleted;
	uint64_t cnt;

	node_start(&n);
	OK(vecdb_client_connect(n.url, NULL, CALL_TIMEOUT_MS * 4, &c));
	OK(vecdb_client_health(c, &h));
	ck_assert_str_eq(h.status, "ok");
	ck_assert_str_eq(h.version, VECDB_VERSION);
	load(c);

	OK(vecdb_client_collection_get(c, "c", &cfg, &st));
	ck_assert_str_eq(cfg.name, "c");
	ck_assert_uint_eq(cfg.dimension, DIM);
	ck_assert_int_eq(cfg.metric, VECDB_EUCLIDEAN);
	ck_assert_uint_eq(st.vector_count, NPTS);
	OK(vecdb_client_collection_list(c, &names, &count));
	ck_assert_uint_eq(count, 1);
	ck_assert_str_eq(names[0], "c");
	vecdb_names_free(names, count);

	/* insert with no id: the server's UUID comes back. */
	float v[DIM] = { 9, 9, 9, 9 };
	vecdb_point p = { { 0 }, v, DIM, "{\"k\":7}" };
	OK(vecdb_client_insert(c, "c", &p, 1));
	ck_assert_int_eq(p.id.kind, VECDB_ID_UUID);
	OK(vecdb_client_get(c, "c", &p.id, &rec));
	ck_assert_uint_eq(rec->dim, DIM);
	ck_assert_float_eq(rec->vector[3], 9.0f);
	ck_assert_str_eq(rec->payload, "{\"k\":7}");
	vecdb_record_free(rec);
	ck_assert_int_eq(vecdb_client_insert(c, "c", &p, 1), VECDB_EEXIST);

	/* update the payload only. */
	p.vector = NULL;
	p.payload = "{\"k\":8}";
	OK(vecdb_client_update(c, "c", &p, 1));
	OK(vecdb_client_get(c, "c", &p.id, &rec));
	ck_assert_str_eq(rec->payload, "{\"k\":8}");
	ck_assert_float_eq(rec->vector[0], 9.0f);
	vecdb_record_free(rec);

	OK(vecdb_client_count(c, "c", NULL, &cnt));
	ck_assert_uint_eq(cnt, NPTS + 1);
	OK(vecdb_client_count(c, "c", "{\"must\":[{\"key\":\"k\","
	    "\"match\":{\"value\":1}}]}", &cnt));
	ck_assert_uint_eq(cnt, NPTS / 2);
	OK(vecdb_client_delete(c, "c", &p.id, 1, &deleted));
	ck_assert_uint_eq(deleted, 1);
	OK(vecdb_client_delete(c, "c", &p.id, 1, &deleted));
	ck_assert_uint_eq(deleted, 0);

	OK(vecdb_client_payload_index_create(c, "c", "k",
	    VECDB_FIELD_INTEGER));
	ck_assert_int_eq(vecdb_client_payload_index_create(c, "c", "k",
	    VECDB_FIELD_INTEGER), VECDB_EEXIST);
	OK(vecdb_client_payload_index_delete(c, "c", "k"));

	OK(vecdb_client_stats(c, &s));
	ck_assert_uint_eq(s.collections, 1);
	ck_assert_uint_eq(s.vectors, NPTS);

	OK(vecdb_client_collection_delete(c, "c"));
	OK(vecdb_client_collection_list(c, &names, &count));
	ck_assert_uint_eq(count, 0);
	vecdb_names_free(names, count);
	vecdb_client_close(c);
	node_stop(&n);
}
END_TEST

START_TEST(queries_match_a_scan)
{
	vecdb_search_params sp[3];
	vecdb_records *r, **lists;
	vecdb_client *c;
	struct node n;
	float q[3][DIM];
	uint64_t seed = 7;

	node_start(&n);
	OK(vecdb_client_connect(n.url, NULL, CALL_TIMEOUT_MS * 4, &c));
	load(c);
	memset(sp, 0, sizeof(sp));
	for (int i = 0; i < 3; i++) {
		tu_rand_vector(&seed, q[i], DIM);
		sp[i].vector = q[i];
		sp[i].dim = DIM;
		sp[i].limit = 5;
		sp[i].exact = i == 2;
	}
	OK(vecdb_client_search(c, "c", &sp[0], NULL, &r));
	check_hits(r, q[0], 5);
	vecdb_records_free(r);
	OK(vecdb_client_search_batch(c, "c", sp, NULL, 3, &lists));
	for (int i = 0; i < 3; i++)
		check_hits(lists[i], q[i], 5);
	vecdb_records_free_array(lists, 3);

	/* A filter as JSON: only odd k, with payloads. */
	sp[0].with_payload = 1;
	OK(vecdb_client_search(c, "c", &sp[0], "{\"must\":[{\"key\":\"k\","
	    "\"match\":{\"value\":1}}]}", &r));
	ck_assert_uint_eq(r->count, 5);
	for (size_t i = 0; i < r->count; i++)
		ck_assert_str_eq(r->items[i].payload, "{\"k\":1}");
	vecdb_records_free(r);

	/* Recommend from one positive: its nearest others, not itself. */
	vecdb_id pos = vecdb_id_num(1);
	vecdb_recommend_params rp = { 0 };
	rp.positive = &pos;
	rp.n_positive = 1;
	rp.limit = 3;
	OK(vecdb_client_recommend(c, "c", &rp, NULL, &r));
	ck_assert_uint_eq(r->count, 3);
	{
		uint64_t want[4];
		float dist[4];
		naive_knn(vecs[0], 4, want, dist);
		ck_assert_uint_eq(want[0], 1);
		for (int j = 0; j < 3; j++)
			ck_assert_uint_eq(r->items[j].id.num, want[j + 1]);
	}
	vecdb_records_free(r);

	/* Discover with a target and no context: nearest to the target. */
	vecdb_discover_params dp = { 0 };
	dp.has_target = 1;
	dp.target = vecdb_id_num(2);
	dp.limit = 3;
	OK(vecdb_client_discover(c, "c", &dp, NULL, &r));
	ck_assert_uint_eq(r->count, 3);
	{
		uint64_t want[4];
		float dist[4];
		naive_knn(vecs[1], 4, want, dist);
		for (int j = 0; j < 3; j++)
			ck_assert_uint_eq(r->items[j].id.num, want[j + 1]);
	}
	vecdb_records_free(r);

	/* Scroll in pages of 20: every point once, in id order. */
	vecdb_id start = { 0 };
	uint64_t next = 1;
	for (int page = 0; page < 10; page++) {
		OK(vecdb_client_scroll(c, "c", &start, 20, NULL, 0, 0, &r));
		for (size_t i = 0; i < r->count; i++)
			ck_assert_uint_eq(r->items[i].id.num, next++);
		int more = r->has_next;
		start = r->next;
		vecdb_records_free(r);
		if (!more)
			break;
	}
	ck_assert_uint_eq(next, NPTS + 1);
	vecdb_client_close(c);
	node_stop(&n);
}
END_TEST

/*
 * Quantization set, changed and removed through the node; a bad setting
 * changes nothing. NPTS points are too few to train on, so searches stay
 * on floats and must be exact whatever the quantization params say.
 */
START_TEST(quantization_is_set_changed_and_removed)
{
	vecdb_quant_config q = { VECDB_QUANT_PRODUCT, 0, 1, 0, 0 };
	vecdb_collection_config cfg;
	vecdb_collection_stats st;
	vecdb_search_params sp;
	vecdb_records *r;
	vecdb_client *c;
	struct node n;
	float qv[DIM];
	uint64_t seed = 11;

	node_start(&n);
	OK(vecdb_client_connect(n.url, NULL, CALL_TIMEOUT_MS * 4, &c));
	load(c);
	OK(vecdb_client_collection_set_quantization(c, "c", &q));
	OK(vecdb_client_collection_get(c, "c", &cfg, &st));
	ck_assert_int_eq(cfg.quantization.type, VECDB_QUANT_PRODUCT);
	ck_assert_uint_eq(cfg.quantization.segments, (DIM + 7) / 8);
	ck_assert_uint_eq(cfg.quantization.bits, VECDB_PQ_BITS);
	ck_assert_int_eq(cfg.quantization.always_ram, 1);
	ck_assert_int_eq(st.quant_in_force, VECDB_QUANT_NONE);

	memset(&sp, 0, sizeof(sp));
	tu_rand_vector(&seed, qv, DIM);
	sp.vector = qv;
	sp.dim = DIM;
	sp.limit = 5;
	sp.oversampling = 4;
	OK(vecdb_client_search(c, "c", &sp, NULL, &r));
	check_hits(r, qv, 5);
	vecdb_records_free(r);
	sp.oversampling = 0.5f;
	ck_assert_int_eq(vecdb_client_search(c, "c", &sp, NULL, &r),
	    VECDB_EINVAL);
	ck_assert_msg(strstr(vecdb_errmsg(), "oversampling") != NULL,
	    "message: %s", vecdb_errmsg());

	/* binary on a euclidean collection: refused, the config stays */
	q.type = VECDB_QUANT_BINARY;
	ck_assert_int_eq(vecdb_client_collection_set_quantization(c, "c", &q),
	    VECDB_EINVAL);
	ck_assert_msg(strstr(vecdb_errmsg(), "binary") != NULL,
	    "message: %s", vecdb_errmsg());
	q.type = VECDB_QUANT_PRODUCT;
	q.segments = DIM + 1;
	ck_assert_int_eq(vecdb_client_collection_set_quantization(c, "c", &q),
	    VECDB_EINVAL);
	OK(vecdb_client_collection_get(c, "c", &cfg, NULL));
	ck_assert_int_eq(cfg.quantization.type, VECDB_QUANT_PRODUCT);
	ck_assert_uint_eq(cfg.quantization.segments, (DIM + 7) / 8);
	ck_assert_int_eq(vecdb_client_collection_set_quantization(c, "nope",
	    &q), VECDB_ENOTFOUND);

	memset(&q, 0, sizeof(q));
	OK(vecdb_client_collection_set_quantization(c, "c", &q));
	OK(vecdb_client_collection_get(c, "c", &cfg, NULL));
	ck_assert_int_eq(cfg.quantization.type, VECDB_QUANT_NONE);
	ck_assert_uint_eq(cfg.quantization.segments, 0);
	vecdb_client_close(c);
	node_stop(&n);
}
END_TEST

START_TEST(errors_carry_the_server_message)
{
	vecdb_collection_config cfg;
	vecdb_records *r;
	vecdb_client *c;
	struct node n;
	uint64_t t0;
	size_t count;
	char **names;
	int rv;

	node_start(&n);
	OK(vecdb_client_connect(n.url, NULL, CALL_TIMEOUT_MS, &c));
	load(c);
	ck_assert_int_eq(vecdb_client_collection_get(c, "nope", &cfg, NULL),
	    VECDB_ENOTFOUND);
	ck_assert_msg(strstr(vecdb_errmsg(), "nope") != NULL, "message: %s",
	    vecdb_errmsg());

	float v[DIM + 1] = { 0 };
	vecdb_point p = { vecdb_id_num(1000), v, DIM + 1, NULL };
	ck_assert_int_eq(vecdb_client_upsert(c, "c", &p, 1), VECDB_EDIM);
	ck_assert_msg(strstr(vecdb_errmsg(), "dimension") != NULL,
	    "message: %s", vecdb_errmsg());
	vecdb_search_params sp = { 0 };
	sp.vector = v;
	sp.dim = DIM + 1;
	sp.limit = 1;
	ck_assert_int_eq(vecdb_client_search(c, "c", &sp, NULL, &r),
	    VECDB_EDIM);
	sp.dim = DIM;
	ck_assert_int_eq(vecdb_client_search(c, "c", &sp, "{\"must\": 3}",
	    &r), VECDB_EINVAL);

	node_stop(&n);
	t0 = vdb_now_ms();
	rv = vecdb_client_collection_list(c, &names, &count);
	ck_assert_int_eq(rv, VECDB_EUNAVAILABLE);
	ck_assert_uint_le(vdb_now_ms() - t0, 2 * CALL_TIMEOUT_MS + 500);
	ck_assert_msg(strstr(vecdb_errmsg(), n.url) != NULL, "message: %s",
	    vecdb_errmsg());
	vecdb_client_close(c);
}
END_TEST

START_TEST(named_vectors_are_written_read_and_searched)
{
	static const uint32_t ia[] = { 9, 3 }, ib[] = { 9 };
	static const float va[] = { 2, 1 }, vb[] = { 0.5f };
	const uint32_t q[] = { 9, 3 };
	const float qv[] = { 1, 1 };
	vecdb_sparse_vector sa = { "text", ia, va, 2, 0 };
	vecdb_sparse_vector sb = { "text", ib, vb, 1, 0 };
	static const float img[2][3] = { { 0, 0, 1 }, { 0, 0, 3 } };
	vecdb_named_vector na = { "image", img[0], 3, 0 };
	vecdb_named_vector nb = { "image", img[1], 3, 0 };
	vecdb_point_sparse ps[2] = { { &sa, 1, &na, 1 },
		{ &sb, 1, &nb, 1 } };
	const float iq[3] = { 0, 0, 2.5f };
	vecdb_search_params dp = { iq, 3, 2, 0, NULL, 0, 1, 0, 1, 0, 0, 0,
		"image" };
	float v[2][DIM] = { { 1 }, { 0, 1 } };
	vecdb_point pts[2] = { { vecdb_id_num(1), v[0], DIM, NULL },
		{ vecdb_id_num(2), v[1], DIM, NULL } };
	vecdb_sparse_search_params sp = { "text", q, qv, 2, 10, 0, NULL, 1,
		0, 0 };
	vecdb_collection_config cfg;
	vecdb_records *r;
	vecdb_record *rec;
	vecdb_client *c;
	vecdb_id one = vecdb_id_num(1);
	struct node n;

	node_start(&n);
	OK(vecdb_client_connect(n.url, NULL, CALL_TIMEOUT_MS, &c));
	vecdb_collection_config_init(&cfg, "sp", DIM, VECDB_COSINE);
	cfg.n_sparse = 1;
	snprintf(cfg.sparse[0].name, sizeof(cfg.sparse[0].name), "text");
	cfg.n_vectors = 1;
	snprintf(cfg.vectors[0].name, sizeof(cfg.vectors[0].name), "image");
	cfg.vectors[0].dimension = 3;
	cfg.vectors[0].metric = VECDB_EUCLIDEAN;
	OK(vecdb_client_collection_create(c, &cfg));
	OK(vecdb_client_write(c, "sp", VECDB_WRITE_UPSERT, pts, ps, 2));
	OK(vecdb_client_get(c, "sp", &one, &rec));
	ck_assert_uint_eq(rec->n_sparse, 1);
	ck_assert_str_eq(rec->sparse[0].name, "text");
	ck_assert_uint_eq(rec->sparse[0].indices[0], 3);
	ck_assert_float_eq(rec->sparse[0].values[1], 2);
	ck_assert_uint_eq(rec->n_named, 1);
	ck_assert_str_eq(rec->named[0].name, "image");
	ck_assert_float_eq(rec->named[0].data[2], 1);
	vecdb_record_free(rec);
	/* the named dense vector, by its own metric */
	OK(vecdb_client_search(c, "sp", &dp, NULL, &r));
	ck_assert_uint_eq(r->count, 2);
	ck_assert_uint_eq(r->items[0].id.num, 2);
	ck_assert_float_eq_tol(r->items[0].distance, 0.5f, 1e-6);
	ck_assert_uint_eq(r->items[0].n_named, 1);
	vecdb_records_free(r);
	/* point 1: 2 + 1, point 2: 0.5 */
	OK(vecdb_client_search_sparse(c, "sp", &sp, NULL, &r));
	ck_assert_uint_eq(r->count, 2);
	ck_assert_uint_eq(r->items[0].id.num, 1);
	ck_assert_float_eq(r->items[0].score, 3);
	ck_assert_uint_eq(r->items[1].id.num, 2);
	ck_assert_float_eq(r->items[1].score, 0.5f);
	vecdb_records_free(r);
	OK(vecdb_client_search_sparse(c, "sp", &sp, "{\"must\": [{\"key\": "
	    "\"x\", \"match\": {\"value\": 1}}]}", &r));
	ck_assert_uint_eq(r->count, 0);
	vecdb_records_free(r);
	sp.name = "title";
	ck_assert_int_eq(vecdb_client_search_sparse(c, "sp", &sp, NULL, &r),
	    VECDB_EINVAL);
	ck_assert_msg(strstr(vecdb_errmsg(), "no sparse vector 'title'") !=
	    NULL, "message: %s", vecdb_errmsg());
	node_stop(&n);
	vecdb_client_close(c);
}
END_TEST

START_TEST(example_prints_its_hits)
{
	char cmd[700], out[1024] = "";
	struct node n;
	FILE *f;
	size_t len;

	node_start(&n);
	snprintf(cmd, sizeof(cmd), "%s %s", CLIENT_EXAMPLE_BIN, n.url);
	ck_assert_ptr_nonnull(f = popen(cmd, "r"));
	len = fread(out, 1, sizeof(out) - 1, f);
	out[len] = '\0';
	ck_assert_int_eq(pclose(f), 0);
	node_stop(&n);
	ck_assert_str_eq(out, "1 0.0194 {\"lang\":\"en\",\"year\":2021}\n"
	    "3 0.8039 {\"lang\":\"en\",\"year\":2024}\n");
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("client");
	TCase *tc = tcase_create("client");

	signal(SIGPIPE, SIG_IGN);
	proc_add_fixture(tc);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, collections_and_points_round_trip);
	tcase_add_test(tc, queries_match_a_scan);
	tcase_add_test(tc, quantization_is_set_changed_and_removed);
	tcase_add_test(tc, errors_carry_the_server_message);
	tcase_add_test(tc, named_vectors_are_written_read_and_searched);
	tcase_add_test(tc, example_prints_its_hits);
	suite_add_tcase(s, tc);
	return tu_run(s);
}
