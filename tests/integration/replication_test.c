/*
 * replication_test.c: a primary `vecdb-node` and replicas following it,
 * all real processes on loopback. Replicas tail a sustained ingest and end
 * with the primary's exact content (the /digest of every collection) and
 * answers; a replica killed with SIGKILL mid-stream catches up after a
 * restart; a replica the primary's WAL no longer reaches bootstraps from a
 * copy (so does one that meets a snapshot restore); a replica refuses
 * writes naming its primary; parked long-polls do not starve clients; a
 * primary with a poll parked stops cleanly, twenty times in a row.
 *
 * Process hygiene as in node_test.c: PR_SET_PDEATHSIG, a pid file per
 * node under tu_base, and an unchecked teardown that kills what is left.
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

#define BATCH 500




/* ===== Processes ===== */












/* ===== RPC ===== */




/* Upsert batch number k: ids k*BATCH.., seeded vectors and payloads. */
static void
write_batch(struct node *n, uint64_t k)
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
	ck_assert_int_eq(proto_write_encode("c", API_UPSERT, p, BATCH, &b, &l),
	    VECDB_OK);
	ck_assert_int_eq(call(n, PROTO_WRITE, b, l), PROTO_OK);
}

/* Delete ids [from, from + n). */
static void
delete_range(struct node *n, uint64_t from, size_t cnt)
{
	vecdb_id ids[64];
	uint8_t *b;
	size_t l;

	ck_assert_uint_le(cnt, 64);
	for (size_t i = 0; i < cnt; i++)
		ids[i] = vecdb_id_num(from + i);
	ck_assert_int_eq(proto_delete_encode("c", ids, cnt, &b, &l), VECDB_OK);
	ck_assert_int_eq(call(n, PROTO_DELETE, b, l), PROTO_OK);
}

/* ===== Admin HTTP ===== */




/* ===== Searches ===== */

/* The ids (and distances) of a search on node n. */
static vecdb_records *
search(struct node *n, const float *q, int exact)
{
	vecdb_search_params sp = { q, DIM, 10, 0, NULL, 0, exact, 0, 0, 0, 0, 0,
		NULL };
	vecdb_records **res, *r;
	size_t nr;
	uint8_t *b;
	size_t l;

	ck_assert_int_eq(proto_search_encode("c", &sp, NULL, 1, &b, &l),
	    VECDB_OK);
	ck_assert_int_eq(call(n, PROTO_SEARCH, b, l), PROTO_OK);
	ck_assert_int_eq(proto_search_result_decode(resp->body, resp->body_len,
	    &res, &nr), VECDB_OK);
	ck_assert_uint_eq(nr, 1);
	r = res[0];
	vdb_free(res);
	return r;
}

/* Wait until node n's graph of "c" holds every point (pending 0). */
static void
wait_indexed(struct node *n)
{
	vecdb_collection_config c;
	vecdb_collection_stats st;
	uint64_t end = now_ms() + CONVERGE_MS;
	uint8_t *b;
	size_t l;

	do {
		ck_assert_int_eq(proto_target_encode(PROTO_GET_COLLECTION, "c",
		    NULL, VECDB_FIELD_KEYWORD, &b, &l), VECDB_OK);
		ck_assert_int_eq(call(n, PROTO_GET_COLLECTION, b, l), PROTO_OK);
		ck_assert_int_eq(proto_collection_info_decode(resp->body,
		    resp->body_len, &c, &st), VECDB_OK);
		if (st.pending_count == 0 && st.indexed_count == st.vector_count)
			return;
		usleep(100000);
	} while (now_ms() < end);
	ck_abort_msg("index of %s still behind after %d ms", n->dir,
	    CONVERGE_MS);
}

/* Exact searches agree to the bit; graph searches find the same points
 * (they may differ only where a graph walk does). */
static void
searches_agree(struct node *p, struct node *r)
{
	uint64_t seed = 99;

	wait_indexed(p);
	wait_indexed(r);
	size_t same = 0, total = 0;
	float q[DIM];

	for (int i = 0; i < 5; i++) {
		tu_rand_vector(&seed, q, DIM);
		vecdb_records *a = search(p, q, 1), *b = search(r, q, 1);
		ck_assert_uint_eq(a->count, 10);
		ck_assert_uint_eq(a->count, b->count);
		for (size_t j = 0; j < a->count; j++) {
			ck_assert_int_eq(vecdb_id_cmp(&a->items[j].id,
			    &b->items[j].id), 0);
			ck_assert_float_eq(a->items[j].distance,
			    b->items[j].distance);
		}
		vecdb_records_free(a);
		vecdb_records_free(b);
		a = search(p, q, 0);
		b = search(r, q, 0);
		for (size_t j = 0; j < a->count; j++)
			for (size_t k = 0; k < b->count; k++)
				same += vecdb_id_cmp(&a->items[j].id,
				    &b->items[k].id) == 0;
		total += a->count;
		vecdb_records_free(a);
		vecdb_records_free(b);
	}
	ck_assert_uint_ge(same * 10, total * 9);
}

/* ===== Tests ===== */

START_TEST(two_replicas_tail_an_ingest_and_end_equal)
{
	struct node p, r1, r2;
	uint64_t t0;

	node_start(&p, NULL);
	replica_start(&r1, &p, "r1", 0);
	replica_start(&r2, &p, "r2", 0);
	create(&p);
	t0 = now_ms();
	for (uint64_t k = 0; k < 100; k++) {       /* 50k points */
		write_batch(&p, k);
		if (k % 10 == 9)
			delete_range(&p, k * BATCH, 20);
	}
	write_batch(&p, 3);                        /* overwrite 500 */
	fprintf(stderr, "ingest of 50k points: %llu ms\n",
	    (unsigned long long) (now_ms() - t0));
	converge(&p, &r1);
	converge(&p, &r2);
	fprintf(stderr, "both replicas converged: %llu ms\n",
	    (unsigned long long) (now_ms() - t0));
	searches_agree(&p, &r1);
	searches_agree(&p, &r2);
	/* Lag is reported per replica and drops to 0 once it polls again. */
	for (int i = 0; i < 50 && metric(&p, "vecdb_replication_lag_records"
	    "{replica=\"r1\"} ") != 0; i++)
		usleep(100000);
	ck_assert(metric(&p, "vecdb_replication_lag_records{replica=\"r1\"} ")
	    == 0);
	ck_assert(metric(&p, "vecdb_replication_lag_seconds{replica=\"r2\"} ")
	    >= 0);
	ck_assert(metric(&r1, "vecdb_replica_applied_seq ") > 100);
	node_stop(&r1);
	node_stop(&r2);
	node_stop(&p);
}
END_TEST

START_TEST(a_killed_replica_catches_up_after_restart)
{
	struct node p, r;
	static char body[512];

	node_start(&p, NULL);
	replica_start(&r, &p, "r", 0);
	create(&p);
	for (uint64_t k = 0; k < 40; k++) {
		write_batch(&p, k);
		if (k == 15)
			node_kill(&r);                /* mid-stream */
	}
	/* The primary sees it fall behind: at least the 24 batches since. */
	usleep(50000);
	ck_assert(metric(&p, "vecdb_replication_lag_records{replica=\"r\"} ")
	    >= 24);
	ck_assert(metric(&p, "vecdb_replication_lag_seconds{replica=\"r\"} ")
	    > 0);
	replica_start(&r, &p, "r", 1);
	converge(&p, &r);
	ck_assert_int_eq(admin_get(&r, "/ready", body, sizeof(body)), 200);
	for (uint64_t k = 40; k < 45; k++)
		write_batch(&p, k);
	converge(&p, &r);
	searches_agree(&p, &r);
	node_stop(&r);
	node_stop(&p);
}
END_TEST

START_TEST(a_replica_behind_the_wal_bootstraps)
{
	const char *args[] = { "--wal-retain", "10", NULL };
	struct node p, r;

	node_start(&p, args);
	create(&p);
	for (uint64_t k = 0; k < 30; k++)
		write_batch(&p, k);
	delete_range(&p, 100, 50);
	replica_start(&r, &p, "r", 0);      /* empty; the WAL starts at 23 */
	converge(&p, &r);
	ck_assert(metric(&r, "vecdb_replica_bootstraps_total ") == 1);
	for (uint64_t k = 30; k < 35; k++)
		write_batch(&p, k);
	converge(&p, &r);                    /* and tails after it */
	searches_agree(&p, &r);
	ck_assert(metric(&r, "vecdb_replica_bootstraps_total ") == 1);
	node_stop(&r);
	node_stop(&p);
}
END_TEST

/* A replica stops while the primary writes past its WAL window: it
 * resumes from the WAL (held for it) unless the byte bound is 1. */
static void
stopped_replica_resumes(const char *max_bytes, double bootstraps)
{
	const char *args[] = { "--wal-retain", "5", "--wal-retention-bytes",
		max_bytes, NULL };
	struct node p, r;

	node_start(&p, args);
	replica_start(&r, &p, "r", 0);
	create(&p);
	for (uint64_t k = 0; k < 3; k++)
		write_batch(&p, k);
	converge(&p, &r);
	node_stop(&r);
	for (uint64_t k = 3; k < 23; k++)
		write_batch(&p, k);
	replica_start(&r, &p, "r", 1);
	converge(&p, &r);
	ck_assert(metric(&r, "vecdb_replica_bootstraps_total ") == bootstraps);
	node_stop(&r);
	node_stop(&p);
}

START_TEST(the_wal_is_held_for_a_replica_that_is_away)
{
	stopped_replica_resumes("1000000000", 0);
}
END_TEST

START_TEST(past_the_byte_bound_a_replica_away_bootstraps)
{
	stopped_replica_resumes("1", 1);
}
END_TEST

START_TEST(a_snapshot_restore_on_the_primary_makes_replicas_bootstrap)
{
	vecdb_snapshot_info si;
	struct node p, r;
	uint8_t *b;
	size_t l;

	node_start(&p, NULL);
	replica_start(&r, &p, "r", 0);
	create(&p);
	write_batch(&p, 0);
	ck_assert_int_eq(proto_target_encode(PROTO_SNAPSHOT_CREATE, "c", NULL,
	    VECDB_FIELD_KEYWORD, &b, &l), VECDB_OK);
	ck_assert_int_eq(call(&p, PROTO_SNAPSHOT_CREATE, b, l), PROTO_OK);
	ck_assert_int_eq(proto_snapshot_info_decode(resp->body, resp->body_len,
	    &si), VECDB_OK);
	write_batch(&p, 1);
	converge(&p, &r);
	ck_assert(metric(&r, "vecdb_replica_bootstraps_total ") == 0);
	ck_assert_int_eq(proto_target_encode(PROTO_SNAPSHOT_RESTORE, "c",
	    si.name, VECDB_FIELD_KEYWORD, &b, &l), VECDB_OK);
	ck_assert_int_eq(call(&p, PROTO_SNAPSHOT_RESTORE, b, l), PROTO_OK);
	write_batch(&p, 2);
	converge(&p, &r);
	ck_assert(metric(&r, "vecdb_replica_bootstraps_total ") == 1);
	node_stop(&r);
	node_stop(&p);
}
END_TEST

START_TEST(a_replica_ahead_of_a_new_primary_bootstraps)
{
	struct node p1, p2, r;

	node_start(&p1, NULL);
	replica_start(&r, &p1, "r", 0);
	create(&p1);
	for (uint64_t k = 0; k < 10; k++)
		write_batch(&p1, k);
	converge(&p1, &r);
	node_stop(&r);
	node_stop(&p1);
	/* A new primary with a shorter, different history. */
	node_start(&p2, NULL);
	create(&p2);
	for (uint64_t k = 20; k < 23; k++)
		write_batch(&p2, k);
	replica_start(&r, &p2, "r", 1);
	converge(&p2, &r);
	ck_assert(metric(&r, "vecdb_replica_bootstraps_total ") == 1);
	node_stop(&r);
	node_stop(&p2);
}
END_TEST

START_TEST(a_replica_refuses_writes_naming_its_primary)
{
	struct proto_fetch_wal f = { 0, 0, 0, 0, "x", 0, 0 };
	char want[128];
	struct node p, r;
	uint8_t *b;
	size_t l;

	node_start(&p, NULL);
	replica_start(&r, &p, "r", 0);
	snprintf(want, sizeof(want), "this node is a read replica of %s",
	    p.url);
	create(&p);
	write_batch(&p, 0);
	converge(&p, &r);
	ck_assert_int_eq(proto_target_encode(PROTO_DELETE_COLLECTION, "c", NULL,
	    VECDB_FIELD_KEYWORD, &b, &l), VECDB_OK);
	ck_assert_int_eq(call(&r, PROTO_DELETE_COLLECTION, b, l),
	    PROTO_FAILED_PRECONDITION);
	ck_assert_str_eq(resp->message, want);
	ck_assert_int_eq(proto_write_encode("c", API_UPSERT,
	    &(vecdb_point) { vecdb_id_num(1), (float[DIM]) { 0 }, DIM, NULL }, 1,
	    &b, &l), VECDB_OK);
	ck_assert_int_eq(call(&r, PROTO_WRITE, b, l), PROTO_FAILED_PRECONDITION);
	ck_assert_str_eq(resp->message, want);
	/* Nor does it serve replication itself. */
	ck_assert_int_eq(proto_fetch_wal_encode(&f, &b, &l), VECDB_OK);
	ck_assert_int_eq(call(&r, PROTO_FETCH_WAL, b, l),
	    PROTO_FAILED_PRECONDITION);
	ck_assert_ptr_nonnull(strstr(resp->message, p.url));
	converge(&p, &r); /* nothing changed */
	/* Its follower is in a long-poll: SIGTERM does not wait it out. */
	uint64_t t0 = now_ms();
	node_stop(&r);
	ck_assert_uint_lt(now_ms() - t0, 3000);
	node_stop(&p);
}
END_TEST

/* Send a FetchWal on s without waiting for the answer. */
static void
fetch_send(nng_socket s, uint64_t after, uint32_t wait_ms)
{
	struct proto_fetch_wal f = { after, 0, 0, wait_ms, "poller", 0, 0 };
	uint8_t *b, *req;
	size_t l, reqlen;

	ck_assert_int_eq(proto_fetch_wal_encode(&f, &b, &l), VECDB_OK);
	ck_assert_int_eq(proto_request_encode(PROTO_FETCH_WAL, "", 1, b, l,
	    &req, &reqlen), VECDB_OK);
	vdb_free(b);
	ck_assert_int_eq(nng_send(s, req, reqlen, 0), 0);
	vdb_free(req);
}

/* Receive a FetchWal answer on s: its record count. */
static uint32_t
fetch_recv(nng_socket s)
{
	struct proto_wal_batch *wb;
	size_t inlen = 0;
	void *in = NULL;
	uint32_t n;

	ck_assert_int_eq(nng_recv(s, &in, &inlen, NNG_FLAG_ALLOC), 0);
	proto_response_free(resp);
	ck_assert_int_eq(proto_response_decode(in, inlen, &resp), VECDB_OK);
	nng_free(in, inlen);
	ck_assert_int_eq(resp->code, PROTO_OK);
	ck_assert_int_eq(proto_wal_batch_decode(resp->body, resp->body_len,
	    &wb), VECDB_OK);
	n = wb->count;
	proto_wal_batch_free(wb);
	return n;
}

START_TEST(long_polls_wait_for_commits_without_starving_clients)
{
	const char *args[] = { "--workers", "2", "--wal-retain", "5", NULL };
	nng_socket polls[8];
	struct node p;
	uint64_t t0;

	node_start(&p, args);
	create(&p);                                  /* seqs 1 and 2 */
	/* With nothing new, an answer comes after the wait, empty. */
	t0 = now_ms();
	fetch_send(p.sock, 2, 300);
	ck_assert_uint_eq(fetch_recv(p.sock), 0);
	ck_assert_uint_ge(now_ms() - t0, 250);
	/* Eight parked polls on two workers; a client still gets through. */
	for (int i = 0; i < 8; i++) {
		polls[i] = dial(p.rpc_port);
		fetch_send(polls[i], 2, 8000);
	}
	usleep(200000);
	t0 = now_ms();
	ck_assert_int_eq(call(&p, PROTO_HEALTH, NULL, 0), PROTO_OK);
	ck_assert_uint_lt(now_ms() - t0, 1000);
	/* A commit answers every one of them at once, with all of its
	 * records (a batch spans records of at most ~2 KB). */
	t0 = now_ms();
	write_batch(&p, 0);
	for (int i = 0; i < 8; i++) {
		ck_assert_uint_ge(fetch_recv(polls[i]), 2);
		nng_close(polls[i]);
	}
	ck_assert_uint_lt(now_ms() - t0, 3000);
	/* Behind the retained WAL: OUT_OF_RANGE, saying to bootstrap. */
	for (uint64_t k = 1; k < 8; k++)
		write_batch(&p, k);
	struct proto_fetch_wal f = { 0, 0, 0, 0, "late", 0, 0 };
	uint8_t *b;
	size_t l;
	ck_assert_int_eq(proto_fetch_wal_encode(&f, &b, &l), VECDB_OK);
	ck_assert_int_eq(call(&p, PROTO_FETCH_WAL, b, l), PROTO_OUT_OF_RANGE);
	ck_assert_ptr_nonnull(strstr(resp->message, "bootstrap"));
	node_stop(&p);
}
END_TEST

/* Wait until the primary has heard from replica id (its lag is shown). */
static void
wait_polled(const struct node *p, const char *id)
{
	uint64_t end = now_ms() + START_TIMEOUT_MS;
	char want[128];

	snprintf(want, sizeof(want), "vecdb_replication_lag_records{replica="
	    "\"%s\"}", id);
	while (metric(p, want) < 0) {
		ck_assert_msg(now_ms() < end, "no poll from %s in %d ms", id,
		    START_TIMEOUT_MS);
		usleep(20000);
	}
}

/*
 * A primary stopped while its replica's long-poll is parked exits 0 at
 * once, every time. It used to hang in nng_close() about one stop in
 * seven: the replica polled again as soon as its parked poll was
 * answered, and the primary closed the pipe with a poll arriving on it
 * (api_rpc_stop explains). Every other round also commits a batch just
 * before the SIGTERM, so the replica is answered and polls again while
 * the primary stops.
 */
START_TEST(a_primary_stops_cleanly_with_a_poll_parked)
{
	struct node p, r;

	node_start(&p, NULL);
	create(&p);
	for (int i = 0; i < 20; i++) {
		if (i > 0)
			node_run(&p, NULL);
		replica_start(&r, &p, "r", i > 0);
		wait_polled(&p, "r");
		usleep(30000); /* nothing new: the poll parks */
		if (i % 2 == 1)
			write_batch(&p, (uint64_t) i);
		node_stop_in(&p, 3000);
		node_stop_in(&r, 3000);
	}
	/* Every batch committed just before a stop reached the replica. */
	node_run(&p, NULL);
	replica_start(&r, &p, "r", 1);
	converge(&p, &r);
	node_stop(&r);
	node_stop(&p);
}
END_TEST

static Suite *
replication_suite(void)
{
	Suite *s = suite_create("replication");
	TCase *tc = tcase_create("nodes");

	proc_add_fixture(tc);
	tcase_add_checked_fixture(tc, NULL, resp_teardown);
	tcase_set_timeout(tc, 300);
	tcase_add_test(tc, two_replicas_tail_an_ingest_and_end_equal);
	tcase_add_test(tc, a_killed_replica_catches_up_after_restart);
	tcase_add_test(tc, a_replica_behind_the_wal_bootstraps);
	tcase_add_test(tc, the_wal_is_held_for_a_replica_that_is_away);
	tcase_add_test(tc, past_the_byte_bound_a_replica_away_bootstraps);
	tcase_add_test(tc, a_snapshot_restore_on_the_primary_makes_replicas_bootstrap);
	tcase_add_test(tc, a_replica_ahead_of_a_new_primary_bootstraps);
	tcase_add_test(tc, a_replica_refuses_writes_naming_its_primary);
	tcase_add_test(tc, long_polls_wait_for_commits_without_starving_clients);
	tcase_add_test(tc, a_primary_stops_cleanly_with_a_poll_parked);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	return tu_run(replication_suite());
}
