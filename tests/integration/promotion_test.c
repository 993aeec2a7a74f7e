/*
 * promotion_test.c: promotion, fencing and write concern on real
 * `vecdb-node` processes over loopback (docs/REPLICATION.md, "Promotion
 * and terms"). A write with write_concern 1 is acknowledged once a
 * replica holds it, and times out with a clear message when the replica
 * is stopped; after the primary is SIGKILLed and a replica promoted,
 * every acknowledged point is on the new primary and the other replica
 * follows it; the old primary, restarted with records that never
 * replicated, is told to follow: it refuses writes, drops exactly those
 * records and converges; FOLLOW with a stale term is refused and PROMOTE
 * is idempotent.
 *
 * The process helpers are those of replication_test.c: PR_SET_PDEATHSIG,
 * a pid file per node under tu_base, an unchecked teardown.
 */
#define _GNU_SOURCE
#include <civetweb.h>
#include <dirent.h>
#include <fcntl.h>
#include <nng/nng.h>
#include <nng/protocol/reqrep0/req.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "api.h"
#include "proto.h"
#include "nodes.h"
#include "testutil.h"
#include "vdb.h"

#ifndef VECDB_NODE_BIN
#error "VECDB_NODE_BIN must name the vecdb-node binary"
#endif

#define BATCH 50




/* ===== Processes ===== */











/* ===== RPC ===== */




/*
 * Upsert batch number k (ids k*BATCH..) with @p wc as its write concern:
 * the response code. One batch is one WAL record.
 */
static int
write_batch_wc(struct node *n, uint64_t k, uint32_t wc)
{
	static float v[BATCH][DIM];
	static char pay[BATCH][48];
	vecdb_point p[BATCH];
	uint64_t seed = 1000 + k;
	uint8_t *b;
	size_t l;

	for (int i = 0; i < BATCH; i++) {
		uint64_t id = k * BATCH + (uint64_t) i;
		tu_rand_vector(&seed, v[i], DIM);
		snprintf(pay[i], sizeof(pay[i]), "{\"g\":%llu,\"t\":\"x%llu\"}",
		    (unsigned long long) (id % 10), (unsigned long long) id);
		p[i] = (vecdb_point) { vecdb_id_num(id), v[i], DIM, pay[i] };
	}
	ck_assert_int_eq(proto_write_wc_encode("c", API_UPSERT, wc, p, BATCH,
	    &b, &l), VECDB_OK);
	return call(n, PROTO_WRITE, b, l);
}

/* ===== Admin HTTP ===== */




/* ===== Searches ===== */

/* ===== Roles ===== */

/* Does node n hold point id in "c"? */
static int
has_point(struct node *n, uint64_t id)
{
	vecdb_id i = vecdb_id_num(id);
	uint8_t *b;
	size_t l;
	int code;

	ck_assert_int_eq(proto_get_encode("c", &i, &b, &l), VECDB_OK);
	code = call(n, PROTO_GET, b, l);
	ck_assert(code == PROTO_OK || code == PROTO_NOT_FOUND);
	return code == PROTO_OK;
}

/* Node n's Health over RPC. */
static void
health(struct node *n, struct proto_health *h)
{
	ck_assert_int_eq(call(n, PROTO_HEALTH, NULL, 0), PROTO_OK);
	ck_assert_int_eq(proto_health_decode(resp->body, resp->body_len, h),
	    VECDB_OK);
}

/* PROMOTE n: the code; *term and *last from the answer when OK. */
static int
promote(struct node *n, uint64_t min_term, uint64_t *term, uint64_t *last)
{
	uint8_t *b;
	size_t l;
	int code;

	ck_assert_int_eq(proto_promote_encode(min_term, &b, &l), VECDB_OK);
	if ((code = call(n, PROTO_PROMOTE, b, l)) == PROTO_OK)
		ck_assert_int_eq(proto_promote_result_decode(resp->body,
		    resp->body_len, term, last), VECDB_OK);
	return code;
}

/* FOLLOW: n follows url in term. */
static int
follow(struct node *n, const char *url, uint64_t term)
{
	uint8_t *b;
	size_t l;

	ck_assert_int_eq(proto_follow_encode(url, term, &b, &l), VECDB_OK);
	return call(n, PROTO_FOLLOW, b, l);
}

/* Wait until n's Health says role (and, for a replica, that primary). */
static void
wait_role(struct node *n, const char *role, uint64_t term)
{
	struct proto_health h;

	health(n, &h);
	ck_assert_str_eq(h.role, role);
	ck_assert_uint_eq(h.term, term);
}

/* ===== Tests ===== */

#define WC_MS "2000"

START_TEST(write_concern_waits_for_replicas_or_says_what_it_lacks)
{
	const char *pargs[] = { "--write-concern-timeout-ms", WC_MS, NULL };
	struct node p, r;

	node_start(&p, pargs);
	replica_start(&r, &p, "r", 0);
	create(&p);
	converge(&p, &r);
	/* Acknowledged means the replica holds it, now. */
	ck_assert_int_eq(write_batch_wc(&p, 0, 1), PROTO_OK);
	ck_assert(has_point(&r, BATCH - 1));
	/* A stopped replica acknowledges nothing: the write is kept, and
	 * the answer says so. */
	ck_assert_int_eq(kill(r.pid, SIGSTOP), 0);
	proc_wait_stopped(r.pid, 5000);
	ck_assert_int_eq(write_batch_wc(&p, 1, 1), PROTO_DEADLINE_EXCEEDED);
	ck_assert_str_eq(resp->message, "write is durable on the primary but "
	    "only 0 of 1 replicas acknowledged it within " WC_MS " ms");
	ck_assert(has_point(&p, BATCH + 7));
	ck_assert_int_eq(kill(r.pid, SIGCONT), 0);
	/* One replica cannot make two. */
	ck_assert_int_eq(write_batch_wc(&p, 2, 2), PROTO_DEADLINE_EXCEEDED);
	ck_assert_str_eq(resp->message, "write is durable on the primary but "
	    "only 1 of 2 replicas acknowledged it within " WC_MS " ms");
	/* A replica refuses a write, write concern or not. */
	ck_assert_int_eq(write_batch_wc(&r, 3, 1), PROTO_FAILED_PRECONDITION);
	ck_assert_ptr_nonnull(strstr(resp->message, p.url));
	converge(&p, &r);
	node_stop(&r);
	node_stop(&p);
}
END_TEST

START_TEST(min_replicas_applies_to_every_write)
{
	const char *args[] = { "--min-replicas", "1",
		"--write-concern-timeout-ms", "300", NULL };
	vecdb_collection_config c;
	vecdb_id id = vecdb_id_num(3);
	struct node q;
	uint8_t *b;
	size_t l;

	node_start(&q, args);
	vecdb_collection_config_init(&c, "c", DIM, VECDB_EUCLIDEAN);
	ck_assert_int_eq(proto_collection_create_encode(&c, &b, &l), VECDB_OK);
	ck_assert_int_eq(call(&q, PROTO_CREATE_COLLECTION, b, l),
	    PROTO_DEADLINE_EXCEEDED);
	ck_assert_int_eq(write_batch_wc(&q, 0, 0), PROTO_DEADLINE_EXCEEDED);
	ck_assert_str_eq(resp->message, "write is durable on the primary but "
	    "only 0 of 1 replicas acknowledged it within 300 ms");
	ck_assert(has_point(&q, 3));
	ck_assert_int_eq(proto_delete_encode("c", &id, 1, &b, &l), VECDB_OK);
	ck_assert_int_eq(call(&q, PROTO_DELETE, b, l), PROTO_DEADLINE_EXCEEDED);
	ck_assert(!has_point(&q, 3));
	node_stop(&q);
}
END_TEST

START_TEST(a_promoted_replica_has_every_acknowledged_write)
{
	struct node p, r1, r2, *np, *other;
	struct proto_health h1, h2;
	uint64_t term = 0, last = 0;
	const uint64_t batches = 20;

	node_start(&p, NULL);
	replica_start(&r1, &p, "r1", 0);
	replica_start(&r2, &p, "r2", 0);
	create(&p);
	for (uint64_t k = 0; k < batches; k++)
		ck_assert_int_eq(write_batch_wc(&p, k, 1), PROTO_OK);
	node_kill(&p);
	/* The router promotes the replica furthest ahead. */
	health(&r1, &h1);
	health(&r2, &h2);
	np = h1.last_seq >= h2.last_seq ? &r1 : &r2;
	other = np == &r1 ? &r2 : &r1;
	ck_assert_int_eq(promote(np, 0, &term, &last), PROTO_OK);
	ck_assert_uint_eq(term, 2);
	ck_assert_uint_eq(last, h1.last_seq > h2.last_seq ? h1.last_seq :
	    h2.last_seq);
	for (uint64_t id = 0; id < batches * BATCH; id++)
		ck_assert_msg(has_point(np, id), "acknowledged point %llu is "
		    "not on the new primary", (unsigned long long) id);
	ck_assert_int_eq(follow(other, np->url, term), PROTO_OK);
	wait_role(np, "primary", 2);
	wait_role(other, "replica", 2);
	/* It takes writes, and the other replica acknowledges them. */
	ck_assert_int_eq(write_batch_wc(np, batches, 1), PROTO_OK);
	ck_assert(has_point(other, batches * BATCH));
	converge(np, other);
	/* Merely behind, same terms: no bootstrap, nothing dropped. */
	ck_assert(metric(other, "vecdb_replica_bootstraps_total ") == 0);
	ck_assert(metric(other, "vecdb_replica_dropped_records_total ") == 0);
	node_stop(other);
	node_stop(np);
}
END_TEST

START_TEST(a_returning_old_primary_drops_what_never_replicated_and_rejoins)
{
	const char *pargs[] = { "--node-id", "p", NULL };
	struct proto_health h;
	struct node p, r;
	uint64_t term = 0, last = 0, unseen;
	char body[2048], want[64];

	node_start(&p, pargs);
	replica_start(&r, &p, "r", 0);
	create(&p);
	for (uint64_t k = 0; k < 5; k++)
		ck_assert_int_eq(write_batch_wc(&p, k, 1), PROTO_OK);
	/* Cut off, the primary takes three writes no replica ever sees
	 * (their records: a batch spans several). */
	node_kill(&r);
	health(&p, &h);
	unseen = h.last_seq;
	for (uint64_t k = 5; k < 8; k++)
		ck_assert_int_eq(write_batch_wc(&p, k, 0), PROTO_OK);
	health(&p, &h);
	unseen = h.last_seq - unseen;
	ck_assert_uint_ge(unseen, 3);
	node_kill(&p);
	replica_start(&r, &p, "r", 1);
	ck_assert_int_eq(promote(&r, 0, &term, &last), PROTO_OK);
	ck_assert_uint_eq(term, 2);
	/* Four writes of term 2, more records than the three the replica
	 * missed: the old primary's last seq (term 1) is one of them here. */
	for (uint64_t k = 10; k < 14; k++)
		ck_assert_int_eq(write_batch_wc(&r, k, 0), PROTO_OK);
	/* The old primary returns as the primary of term 1 it was... */
	node_run(&p, pargs);
	health(&p, &h);
	ck_assert_str_eq(h.role, "primary");
	ck_assert_uint_eq(h.term, 1);
	/* ...until told to follow: from then on it refuses writes. */
	ck_assert_int_eq(follow(&p, r.url, term), PROTO_OK);
	ck_assert_int_eq(write_batch_wc(&p, 20, 0), PROTO_FAILED_PRECONDITION);
	ck_assert_ptr_nonnull(strstr(resp->message, r.url));
	converge(&r, &p);
	ck_assert(metric(&p, "vecdb_replica_dropped_records_total ") ==
	    (double) unseen);
	ck_assert_int_eq(admin_get(&p, "/health", body, sizeof(body)), 200);
	snprintf(want, sizeof(want), "\"dropped_records\":%llu",
	    (unsigned long long) unseen);
	ck_assert_msg(strstr(body, want) != NULL, "no %s in %s", want, body);
	ck_assert_ptr_nonnull(strstr(body, "\"role\":\"replica\""));
	ck_assert(!has_point(&p, 5 * BATCH));
	ck_assert(has_point(&p, 13 * BATCH));
	/* It is a replica like any other now. */
	ck_assert_int_eq(write_batch_wc(&r, 14, 1), PROTO_OK);
	ck_assert(has_point(&p, 14 * BATCH));
	node_stop(&p);
	node_stop(&r);
}
END_TEST

START_TEST(follow_with_a_stale_term_is_refused_and_promote_is_idempotent)
{
	struct proto_fetch_wal f = { 0, 0, 0, 0, "x", 0, 2 };
	struct node p, r;
	uint64_t term = 0, last = 0, last2 = 0;
	uint8_t *b;
	size_t l;

	node_start(&p, NULL);
	replica_start(&r, &p, "r", 0);
	create(&p);
	converge(&p, &r);
	/* A primary keeps its term. */
	ck_assert_int_eq(promote(&p, 0, &term, &last), PROTO_OK);
	ck_assert_uint_eq(term, 1);
	ck_assert_int_eq(promote(&p, 0, &term, &last), PROTO_OK);
	ck_assert_uint_eq(term, 1);
	/* A replica starts a newer one, once. */
	ck_assert_int_eq(promote(&r, 0, &term, &last), PROTO_OK);
	ck_assert_uint_eq(term, 2);
	ck_assert_int_eq(promote(&r, 0, &term, &last2), PROTO_OK);
	ck_assert_uint_eq(term, 2);
	ck_assert_uint_eq(last2, last);
	/* Stale terms. */
	ck_assert_int_eq(follow(&r, p.url, 1), PROTO_FAILED_PRECONDITION);
	ck_assert_ptr_nonnull(strstr(resp->message, "stale term"));
	ck_assert_int_eq(follow(&p, r.url, 1), PROTO_FAILED_PRECONDITION);
	ck_assert_ptr_nonnull(strstr(resp->message, "stale term"));
	/* A replica that knows term 2 fences the old primary. */
	ck_assert_int_eq(proto_fetch_wal_encode(&f, &b, &l), VECDB_OK);
	ck_assert_int_eq(call(&p, PROTO_FETCH_WAL, b, l),
	    PROTO_FAILED_PRECONDITION);
	wait_role(&p, "fenced", 2);
	ck_assert_int_eq(write_batch_wc(&p, 0, 0), PROTO_FAILED_PRECONDITION);
	ck_assert_int_eq(follow(&p, r.url, 2), PROTO_OK);
	wait_role(&p, "replica", 2);
	/* min_term at or above the primary's term starts a newer one. */
	ck_assert_int_eq(promote(&r, 2, &term, &last), PROTO_OK);
	ck_assert_uint_eq(term, 3);
	ck_assert_int_eq(write_batch_wc(&r, 1, 1), PROTO_OK);
	converge(&r, &p);
	ck_assert(metric(&p, "vecdb_replica_dropped_records_total ") == 0);
	node_stop(&p);
	node_stop(&r);
}
END_TEST

static Suite *
promotion_suite(void)
{
	Suite *s = suite_create("promotion");
	TCase *tc = tcase_create("nodes");

	proc_add_fixture(tc);
	tcase_add_checked_fixture(tc, NULL, resp_teardown);
	tcase_set_timeout(tc, 300);
	tcase_add_test(tc, write_concern_waits_for_replicas_or_says_what_it_lacks);
	tcase_add_test(tc, min_replicas_applies_to_every_write);
	tcase_add_test(tc, a_promoted_replica_has_every_acknowledged_write);
	tcase_add_test(tc,
	    a_returning_old_primary_drops_what_never_replicated_and_rejoins);
	tcase_add_test(tc,
	    follow_with_a_stale_term_is_refused_and_promote_is_idempotent);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	return tu_run(promotion_suite());
}
