/*
 * router_member_test.c: which member of a shard a request goes to
 * (router_member.c), on a shard built by hand: writes to the primary,
 * reads round robin over the replicas, a member in back-off skipped, and
 * the write target moved by a member that says primary under a higher
 * term. No socket is opened: a member's connection is its conn's pipes
 * count.
 */
#include <check.h>
#include <nng/nng.h>
#include <nng/protocol/reqrep0/rep.h>
#include <nng/transport/tcp/tcp.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "router_impl.h"
#include "testutil.h"
#include "vdb.h"

#define NOW 1000000  /* a time in ms, any will do */

static struct router_conn conns[3];
static struct router_member members[3];
static struct router_shard shard;
static struct router_member_stats stats[3];

/* Shard 0: primary tcp://p, replicas tcp://r1 and tcp://r2, all
 * connected, none in back-off. */
static void
shard_setup(void)
{
	static const char *const urls[3] = { "tcp://p", "tcp://r1",
		"tcp://r2" };

	memset(members, 0, sizeof(members));
	memset(conns, 0, sizeof(conns));
	memset(&shard, 0, sizeof(shard));
	for (int i = 0; i < 3; i++) {
		members[i].url = urls[i];
		members[i].conn = &conns[i];
		conns[i].pipes = 1;
		members[i].stats = &stats[i];
	}
	members[0].primary = 1;
	shard.members = members;
	shard.n_members = 3;
}

/* ===== Writes ===== */

START_TEST(writes_go_to_the_primary)
{
	for (int k = 0; k < 5; k++)
		ck_assert_int_eq(router_member_pick(&shard, 0, 0, NOW), 0);
}
END_TEST

START_TEST(a_write_is_not_retried_on_a_replica)
{
	ck_assert_int_eq(router_member_pick(&shard, 0, 1, NOW), -1);
}
END_TEST

START_TEST(a_primary_in_backoff_refuses_writes)
{
	router_member_backoff(&members[0], 1, NOW);
	ck_assert_int_eq(router_member_pick(&shard, 0, 0, NOW), -1);
	/* reads still go to the replicas */
	ck_assert_int_ge(router_member_pick(&shard, 1, 0, NOW), 1);
}
END_TEST

/* ===== Reads ===== */

START_TEST(reads_round_robin_over_the_replicas)
{
	int seen[3] = { 0, 0, 0 }, last = -1;

	for (int k = 0; k < 10; k++) {
		int i = router_member_pick(&shard, 1, 0, NOW);
		ck_assert_int_ge(i, 1);  /* never the primary */
		ck_assert_int_ne(i, last);  /* one, then the other */
		seen[i]++;
		last = i;
	}
	ck_assert_int_eq(seen[1], 5);
	ck_assert_int_eq(seen[2], 5);
}
END_TEST

START_TEST(a_read_goes_to_the_primary_once_the_replicas_were_tried)
{
	int i = router_member_pick(&shard, 1, 0, NOW);
	int j = router_member_pick(&shard, 1, 1ULL << i, NOW);

	ck_assert_int_ge(i, 1);
	ck_assert_int_ge(j, 1);
	ck_assert_int_ne(i, j);
	ck_assert_int_eq(router_member_pick(&shard, 1, 6, NOW), 0);
	ck_assert_int_eq(router_member_pick(&shard, 1, 7, NOW), -1);
	ck_assert(!router_member_left(&shard, 7, NOW));
}
END_TEST

START_TEST(a_member_in_backoff_is_skipped_until_it_ends)
{
	int a, b;

	router_member_backoff(&members[1], 1, NOW);
	ck_assert(router_member_down(&members[1], NOW));
	for (int k = 0; k < 6; k++)
		ck_assert_int_eq(router_member_pick(&shard, 1, 0,
		    NOW + ROUTER_BACKOFF_MS - 1), 2);
	ck_assert(!router_member_down(&members[1], NOW + ROUTER_BACKOFF_MS));
	/* once over, it is read from again, in its turn */
	a = router_member_pick(&shard, 1, 0, NOW + ROUTER_BACKOFF_MS);
	b = router_member_pick(&shard, 1, 0, NOW + ROUTER_BACKOFF_MS);
	ck_assert_int_eq(a + b, 3);
}
END_TEST

START_TEST(an_answer_ends_the_backoff)
{
	router_member_backoff(&members[2], 1, NOW);
	router_member_backoff(&members[2], 0, NOW);
	ck_assert(!router_member_down(&members[2], NOW));
}
END_TEST

/* A connected member comes first; one not (yet) connected is still
 * asked when no connected one is left, since its dial may be on the
 * way. */
START_TEST(connected_replicas_come_before_unconnected_ones)
{
	conns[1].pipes = 0;
	for (int k = 0; k < 6; k++)
		ck_assert_int_eq(router_member_pick(&shard, 1, 0, NOW), 2);
	ck_assert_int_eq(router_member_pick(&shard, 1, 1ULL << 2, NOW), 0);
	conns[0].pipes = conns[2].pipes = 0;
	ck_assert_int_ge(router_member_pick(&shard, 1, 0, NOW), 1);
}
END_TEST

START_TEST(all_members_down_leaves_none)
{
	for (int i = 0; i < 3; i++)
		router_member_backoff(&members[i], 1, NOW);
	ck_assert_int_eq(router_member_pick(&shard, 1, 0, NOW), -1);
	ck_assert_int_eq(router_member_pick(&shard, 0, 0, NOW), -1);
	ck_assert(!router_member_left(&shard, 0, NOW));
}
END_TEST

/* The call that finds every member down fails without sending, with
 * UNAVAILABLE naming the shard (the 503 of docs/ROUTER.md); being a
 * write on a shard with replicas, once its deadline is out. */
START_TEST(a_call_to_a_shard_all_down_is_unavailable)
{
	router_topology t = { .shards = &shard, .n = 1, .refs = 1 };
	struct proto_response *resp = NULL;
	struct router r;

	memset(&r, 0, sizeof(r));
	r.timeout_ms = 100;
	r.key = "";
	for (int i = 0; i < 3; i++)
		router_member_backoff(&members[i], 1, vdb_now_ms());
	ck_assert_int_eq(router_shard_call(&r, &t, 0, PROTO_HEALTH, NULL, 0,
	    &resp), VECDB_EUNAVAILABLE);
	ck_assert_ptr_null(resp);
	ck_assert_str_eq(vecdb_errmsg(), "shard 0 (tcp://p) is unavailable "
	    "(failed less than 1000 ms ago)");
	ck_assert_uint_eq(stats[0].requests, 0);
}
END_TEST

START_TEST(a_one_member_shard_serves_reads_and_writes)
{
	shard.n_members = 1;
	ck_assert_int_eq(router_member_pick(&shard, 1, 0, NOW), 0);
	ck_assert_int_eq(router_member_pick(&shard, 0, 0, NOW), 0);
}
END_TEST

/* ===== The primary by term ===== */

START_TEST(a_member_saying_primary_under_a_higher_term_takes_the_writes)
{
	int was = -1;

	members[0].role = ROLE_PRIMARY;
	members[0].term = 1;
	members[1].role = ROLE_REPLICA;
	members[2].role = ROLE_PRIMARY;  /* promoted elsewhere */
	members[2].term = 2;
	ck_assert_int_eq(router_shard_elect(&shard, &was), 2);
	ck_assert_int_eq(was, 0);
	ck_assert_int_eq(shard.primary_idx, 2);
	ck_assert_int_eq(router_member_pick(&shard, 0, 0, NOW), 2);
	/* reads now go to every member but the new primary */
	for (int k = 0; k < 4; k++)
		ck_assert_int_lt(router_member_pick(&shard, 1, 0, NOW), 2);
}
END_TEST

START_TEST(a_former_primary_under_a_lower_term_does_not_win)
{
	int was = -1;

	shard.primary_idx = 1;
	members[0].role = ROLE_PRIMARY;  /* come back after a promotion */
	members[0].term = 3;
	members[1].role = ROLE_PRIMARY;
	members[1].term = 4;
	ck_assert_int_eq(router_shard_elect(&shard, &was), 1);
	ck_assert_int_eq(was, 1);
	ck_assert_int_eq(router_member_pick(&shard, 0, 0, NOW), 1);
}
END_TEST

START_TEST(the_first_of_equal_terms_wins)
{
	int was = -1;

	members[1].role = members[2].role = ROLE_PRIMARY;
	members[1].term = members[2].term = 5;
	ck_assert_int_eq(router_shard_elect(&shard, &was), 1);
}
END_TEST

START_TEST(nobody_saying_primary_keeps_the_write_target)
{
	int was = -1;

	shard.primary_idx = 2;
	members[0].role = members[1].role = ROLE_REPLICA;
	ck_assert_int_eq(router_shard_elect(&shard, &was), -1);
	ck_assert_int_eq(shard.primary_idx, 2);
	ck_assert_int_eq(router_member_pick(&shard, 0, 0, NOW), 2);
}
END_TEST

/* ===== Writes held for a primary (router_call.c) ===== */

static struct router test_router;
static router_topology test_topo;

static void
router_setup(void)
{
	shard_setup();
	memset(&test_router, 0, sizeof(test_router));
	test_router.key = "";
	test_topo = (router_topology) { .shards = &shard, .n = 1, .refs = 1 };
	memset(stats, 0, sizeof(stats));
}

/* Ms a write to shard 0 took to fail with *rv. */
static uint64_t
write_ms(uint32_t timeout_ms, int *rv)
{
	struct proto_response *resp = NULL;
	uint64_t t0 = vdb_now_ms();

	test_router.timeout_ms = timeout_ms;
	*rv = router_shard_call(&test_router, &test_topo, 0, PROTO_HEALTH,
	    NULL, 0, &resp);
	ck_assert_ptr_null(resp);
	return vdb_now_ms() - t0;
}

/* A held write to shard 0 waits out its deadline, fails UNAVAILABLE
 * with msg, and was never handed to nng. */
static void
held_write_fails(uint32_t timeout_ms, const char *msg)
{
	int rv;

	ck_assert_uint_ge(write_ms(timeout_ms, &rv), timeout_ms -
	    ROUTER_RESEND_MS);
	ck_assert_int_eq(rv, VECDB_EUNAVAILABLE);
	ck_assert_str_eq(vecdb_errmsg(), msg);
	ck_assert_uint_eq(stats[0].requests, 0);
}

/* A primary may come back or be replaced: the write waits for one until
 * its deadline, then says what the first try found. */
START_TEST(a_write_waits_out_its_deadline_for_a_primary)
{
	for (int i = 0; i < 3; i++)
		router_member_backoff(&members[i], 1, vdb_now_ms());
	held_write_fails(300, "shard 0 (tcp://p) is unavailable (failed less "
	    "than 1000 ms ago)");
}
END_TEST

/* A primary with no connection is not handed the write (nng would keep
 * it for that member while another takes over). */
START_TEST(a_held_write_is_not_given_to_an_unconnected_primary)
{
	for (int i = 0; i < 3; i++)
		conns[i].pipes = 0;
	held_write_fails(200, "shard 0 (tcp://p) is not connected (the "
	    "request was not sent)");
}
END_TEST

/* A lone member with no etcd to elect another: nothing to wait for. */
START_TEST(a_write_to_a_lone_member_fails_at_once)
{
	int rv;

	shard.n_members = 1;
	router_member_backoff(&members[0], 1, vdb_now_ms());
	ck_assert_uint_lt(write_ms(5000, &rv), 2500);
	ck_assert_int_eq(rv, VECDB_EUNAVAILABLE);
	ck_assert_uint_eq(stats[0].requests, 0);
}
END_TEST

/* ===== Sockets shared by topologies ===== */

/* A topology parsed from text. */
static router_topology *
topo_of(const char *text)
{
	json_error_t je;
	json_t *doc = json_loads(text, 0, &je);
	router_topology *t = NULL;

	ck_assert_ptr_nonnull(doc);
	ck_assert_int_eq(router_topology_from_json(doc, &t), VECDB_OK);
	json_decref(doc);
	return t;
}

static size_t
conns_open(const struct router_conns *cs)
{
	size_t n = 0;

	for (const struct router_conn *c = cs->head; c != NULL; c = c->next)
		n++;
	return n;
}

/* A topology change keeps the socket, and so the connection, of every
 * member the new topology names again: it is connected at once, with no
 * new dial. A socket closes with the last topology that names it. */
START_TEST(a_new_topology_keeps_the_connections_of_the_members_it_keeps)
{
	struct router_conns cs;
	router_topology *a, *b;
	nng_socket rep;
	nng_listener l;
	char url[64], text[512];
	int port;

	ck_assert_int_eq(nng_rep0_open(&rep), 0);
	ck_assert_int_eq(nng_listener_create(&l, rep, "tcp://127.0.0.1:0"), 0);
	ck_assert_int_eq(nng_listener_start(l, 0), 0);
	ck_assert_int_eq(nng_listener_get_int(l, NNG_OPT_TCP_BOUND_PORT,
	    &port), 0);
	snprintf(url, sizeof(url), "tcp://127.0.0.1:%d", port);
	router_conns_init(&cs);

	/* the primary listens; the replicas (ports 1 and 2) never answer */
	snprintf(text, sizeof(text), "{\"shards\": [{\"id\": 0, "
	    "\"primary\": \"%s\", \"replicas\": [\"tcp://127.0.0.1:1\"]}]}",
	    url);
	a = topo_of(text);
	ck_assert_int_eq(router_topology_connect(a, &cs, NULL), VECDB_OK);
	for (int i = 0; i < 1000 &&
	    !router_member_connected(&a->shards[0].members[0]); i++) {
		struct timespec ts = { 0, 10 * 1000000L };
		nanosleep(&ts, NULL);
	}
	ck_assert(router_member_connected(&a->shards[0].members[0]));

	snprintf(text, sizeof(text), "{\"shards\": [{\"id\": 0, "
	    "\"primary\": \"%s\", \"replicas\": [\"tcp://127.0.0.1:2\"]}]}",
	    url);
	b = topo_of(text);
	ck_assert_int_eq(router_topology_connect(b, &cs, NULL), VECDB_OK);
	ck_assert_ptr_eq(b->shards[0].members[0].conn,
	    a->shards[0].members[0].conn);
	ck_assert(router_member_connected(&b->shards[0].members[0]));
	ck_assert_uint_eq(b->shards[0].members[0].conn->refs, 2);
	ck_assert_ptr_ne(b->shards[0].members[1].conn,
	    a->shards[0].members[1].conn);
	ck_assert_uint_eq(conns_open(&cs), 3);

	router_topology_free(a);   /* closes port 1's socket only */
	ck_assert_uint_eq(conns_open(&cs), 2);
	ck_assert_uint_eq(b->shards[0].members[0].conn->refs, 1);
	ck_assert(router_member_connected(&b->shards[0].members[0]));

	router_topology_free(b);
	ck_assert_uint_eq(conns_open(&cs), 0);
	router_conns_fini(&cs);
	nng_close(rep);
}
END_TEST

static Suite *
member_suite(void)
{
	Suite *s = suite_create("router_member");
	TCase *tc;

	tc = tcase_create("writes");
	tcase_add_checked_fixture(tc, shard_setup, NULL);
	tcase_add_test(tc, writes_go_to_the_primary);
	tcase_add_test(tc, a_write_is_not_retried_on_a_replica);
	tcase_add_test(tc, a_primary_in_backoff_refuses_writes);
	suite_add_tcase(s, tc);
	tc = tcase_create("reads");
	tcase_add_checked_fixture(tc, shard_setup, NULL);
	tcase_add_test(tc, reads_round_robin_over_the_replicas);
	tcase_add_test(tc,
	    a_read_goes_to_the_primary_once_the_replicas_were_tried);
	tcase_add_test(tc, a_member_in_backoff_is_skipped_until_it_ends);
	tcase_add_test(tc, an_answer_ends_the_backoff);
	tcase_add_test(tc, connected_replicas_come_before_unconnected_ones);
	tcase_add_test(tc, all_members_down_leaves_none);
	tcase_add_test(tc, a_call_to_a_shard_all_down_is_unavailable);
	tcase_add_test(tc, a_one_member_shard_serves_reads_and_writes);
	suite_add_tcase(s, tc);
	tc = tcase_create("held writes");
	tcase_add_checked_fixture(tc, router_setup, NULL);
	tcase_add_test(tc, a_write_waits_out_its_deadline_for_a_primary);
	tcase_add_test(tc, a_held_write_is_not_given_to_an_unconnected_primary);
	tcase_add_test(tc, a_write_to_a_lone_member_fails_at_once);
	suite_add_tcase(s, tc);
	tc = tcase_create("sockets");
	tcase_add_test(tc,
	    a_new_topology_keeps_the_connections_of_the_members_it_keeps);
	suite_add_tcase(s, tc);
	tc = tcase_create("primary by term");
	tcase_add_checked_fixture(tc, shard_setup, NULL);
	tcase_add_test(tc,
	    a_member_saying_primary_under_a_higher_term_takes_the_writes);
	tcase_add_test(tc, a_former_primary_under_a_lower_term_does_not_win);
	tcase_add_test(tc, the_first_of_equal_terms_wins);
	tcase_add_test(tc, nobody_saying_primary_keeps_the_write_target);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	return tu_run(member_suite());
}
