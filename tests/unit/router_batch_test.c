/*
 * router_batch_test.c: searches that would queue on the nodes go
 * together (router_batch.c). A hand-built topology whose members say how
 * many requests they run at once, and a search function that stands in
 * for the fan-out: it records each batch it is given, holds it until the
 * test opens the gate, and answers each search with one record whose id
 * is that search's limit, so every caller can check that it got its own
 * answer back. Threads stand in for request threads; the test waits on
 * the batcher's count of waiting searches, never on time.
 */
#include <check.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "router_impl.h"
#include "testutil.h"
#include "vdb.h"

#define THREADS_MAX 80

static struct router_member members[3];
static struct router_shard shards[2];
static router_topology topo;
static router test_router;

/* The stand-in fan-out's record of what it was given. */
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static int gate_open;             /* runs wait while 0 */
static unsigned running;          /* runs in progress */
static size_t calls;              /* runs started */
static size_t sizes[256];         /* searches in each run, in order */
static int fail_rv;               /* runs of more than fail_min searches
				     fail with it (0: none) */
static size_t fail_min;
static uint32_t bad_limit;        /* a batch holding a search of this
				     limit fails EINVAL */
static int leave_out;             /* runs report shard 1 left out */

static void
setup(void)
{
	memset(members, 0, sizeof(members));
	memset(shards, 0, sizeof(shards));
	/* shard 0: a lone primary; shard 1: a primary and two replicas */
	members[0].parallelism = 1;
	members[0].primary = 1;
	members[1].parallelism = 8;
	members[1].primary = 1;
	members[2].parallelism = 1;
	shards[0] = (struct router_shard) { .id = 0, .members = &members[0],
		.n_members = 1 };
	shards[1] = (struct router_shard) { .id = 1, .members = &members[1],
		.n_members = 2 };
	topo = (router_topology) { .shards = shards, .n = 2, .refs = 1 };
	memset(&test_router, 0, sizeof(test_router));
	test_router.timeout_ms = 60000;
	router_batcher_init(&test_router.batch);
	gate_open = 0;
	running = 0;
	calls = 0;
	fail_rv = 0;
	fail_min = 0;
	bad_limit = 0;
	leave_out = 0;
	api_read_opts_reset();
}

static void
teardown(void)
{
	router_batcher_fini(&test_router.batch);
}

static void
gate(int open)
{
	pthread_mutex_lock(&mu);
	gate_open = open;
	pthread_cond_broadcast(&cv);
	pthread_mutex_unlock(&mu);
}

/* Wait until k runs have started. */
static void
wait_calls(size_t k)
{
	pthread_mutex_lock(&mu);
	while (calls < k)
		pthread_cond_wait(&cv, &mu);
	pthread_mutex_unlock(&mu);
}

/* Wait until k searches wait in groups. */
static void
wait_waiting(size_t k)
{
	while (router_batch_waiting(&test_router) != k)
		sched_yield();
}

static int
fake_run(router *r, router_topology *t, const char *coll,
    const struct api_search *s, size_t n, vecdb_records ***out)
{
	vecdb_records **res;
	int bad = 0;

	ck_assert_ptr_eq(r, &test_router);
	ck_assert_ptr_eq(t, &topo);
	ck_assert(strcmp(coll, "c") == 0 || strcmp(coll, "d") == 0);
	pthread_mutex_lock(&mu);
	ck_assert_uint_lt(calls, 256);
	sizes[calls++] = n;
	running++;
	pthread_cond_broadcast(&cv);
	while (!gate_open)
		pthread_cond_wait(&cv, &mu);
	running--;
	pthread_mutex_unlock(&mu);
	if (leave_out)
		api_read_opts_missing(1);
	for (size_t i = 0; i < n; i++)
		bad |= bad_limit != 0 && s[i].p.limit == bad_limit;
	if (bad)
		return vdb_err(VECDB_EINVAL, "search: limit %u is bad",
		    bad_limit);
	if (fail_rv != 0 && n > fail_min)
		return vdb_err(fail_rv, "shard 1 (tcp://r) did not answer");
	res = vdb_calloc(n, sizeof(*res));
	for (size_t i = 0; i < n; i++) {
		res[i] = vdb_calloc(1, sizeof(*res[i]));
		res[i]->items = vdb_calloc(1, sizeof(vecdb_record));
		res[i]->count = 1;
		res[i]->items[0].id = vecdb_id_num(s[i].p.limit);
	}
	*out = res;
	return VECDB_OK;
}

/* One request thread: its searches (limits tag .. tag + n - 1) of coll. */
struct req {
	pthread_t th;
	const char *coll;
	uint32_t tag;
	size_t n;
	int allow_partial;
	int rv;
	char msg[256];
	int got_own;          /* every answer was its own search's */
	size_t missing;       /* shards its read options say were left out */
};

static void *
req_main(void *arg)
{
	struct req *q = arg;
	struct api_search *s = vdb_calloc(q->n, sizeof(*s));
	float v[2] = { 1, 2 };
	vecdb_records **out = NULL;

	ck_assert_ptr_nonnull(s);
	api_read_opts_reset();
	api_read_opts()->allow_partial = q->allow_partial;
	for (size_t i = 0; i < q->n; i++) {
		s[i].p.vector = v;
		s[i].p.dim = 2;
		s[i].p.limit = q->tag + (uint32_t) i;
	}
	q->rv = router_batch_search(&test_router, &topo, q->coll, s, q->n,
	    fake_run, &out);
	snprintf(q->msg, sizeof(q->msg), "%s", q->rv ? vecdb_errmsg() : "");
	q->got_own = q->rv == VECDB_OK;
	for (size_t i = 0; q->rv == VECDB_OK && i < q->n; i++)
		q->got_own &= out[i]->count == 1 &&
		    out[i]->items[0].id.num == q->tag + i;
	q->missing = api_read_opts()->n_missing;
	if (q->rv == VECDB_OK)
		vecdb_records_free_array(out, q->n);
	vdb_free(s);
	return NULL;
}

static void
req_start(struct req *q, const char *coll, uint32_t tag, size_t n)
{
	q->coll = coll;
	q->tag = tag;
	q->n = n;
	ck_assert_int_eq(pthread_create(&q->th, NULL, req_main, q), 0);
}

/* q[0] (one search, tag 100) in flight alone, then q[1..n) (tags 200,
 * 300, ...) waiting in its group, one after another. */
static void
queue_up(struct req *q, size_t n)
{
	req_start(&q[0], "c", 100, 1);
	wait_calls(1);
	for (size_t i = 1; i < n; i++) {
		req_start(&q[i], "c", 100 * (uint32_t) (i + 1), 1);
		wait_waiting(i);
	}
}

/* Open the gate and wait for q[0..n) to return. */
static void
release(struct req *q, size_t n)
{
	gate(1);
	for (size_t i = 0; i < n; i++)
		ck_assert_int_eq(pthread_join(q[i].th, NULL), 0);
}

/* Each of q[0..n) succeeded with its own answers. */
static void
all_own(const struct req *q, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		ck_assert_int_eq(q[i].rv, VECDB_OK);
		ck_assert_msg(q[i].got_own, "request %zu got another's answer",
		    i);
	}
}

/* ===== How many go at once ===== */

START_TEST(the_limit_is_what_the_busiest_shard_runs_at_once)
{
	/* shard 0's primary runs 1; shard 1's reads go to its replica (1),
	 * its primary's 8 only with consistency "primary" */
	ck_assert_uint_eq(router_batch_limit(&topo, 0), 1);
	members[0].parallelism = 4;
	ck_assert_uint_eq(router_batch_limit(&topo, 0), 1);
	ck_assert_uint_eq(router_batch_limit(&topo, 1), 4);
	members[2].parallelism = 6;
	ck_assert_uint_eq(router_batch_limit(&topo, 0), 4);
	/* a member that has not said: no limit at all */
	members[2].parallelism = 0;
	ck_assert_uint_eq(router_batch_limit(&topo, 0), 0);
	ck_assert_uint_eq(router_batch_limit(&topo, 1), 4);
}
END_TEST

START_TEST(without_a_limit_every_search_goes_at_once)
{
	struct req q[4];

	memset(q, 0, sizeof(q));
	members[2].parallelism = 0;
	for (int i = 0; i < 4; i++)
		req_start(&q[i], "c", 10 * (uint32_t) (i + 1), 1);
	wait_calls(4);
	ck_assert_uint_eq(router_batch_waiting(&test_router), 0);
	release(q, 4);
	all_own(q, 4);
	ck_assert_uint_eq(calls, 4);
}
END_TEST

/* ===== Going together ===== */

START_TEST(searches_that_would_queue_go_as_one_batch)
{
	struct req q[5];

	memset(q, 0, sizeof(q));
	queue_up(q, 2);                        /* the limit is 1 */
	req_start(&q[2], "c", 300, 2);         /* a batch of its own */
	wait_waiting(2);
	req_start(&q[3], "c", 400, 1);
	wait_waiting(3);
	req_start(&q[4], "d", 500, 1);         /* another collection */
	wait_calls(2);
	release(q, 5);
	all_own(q, 5);
	/* c's first alone, d's alone, then c's other three (4 searches) as
	 * one */
	ck_assert_uint_eq(calls, 3);
	ck_assert_uint_eq(sizes[0], 1);
	ck_assert_uint_eq(sizes[1], 1);
	ck_assert_uint_eq(sizes[2], 4);
	ck_assert_uint_eq(test_router.batch.batches, 1);
	ck_assert_uint_eq(test_router.batch.batched, 3);
	ck_assert_uint_eq(router_batch_waiting(&test_router), 0);
}
END_TEST

START_TEST(a_full_group_starts_another)
{
	static struct req q[THREADS_MAX];
	size_t total = 0, k = 1;

	memset(q, 0, sizeof(q));
	req_start(&q[0], "c", 1, 1);
	wait_calls(1);
	/* 2 searches a request: ROUTER_BATCH_MAX / 2 fill a group */
	for (k = 1; k <= ROUTER_BATCH_MAX / 2 + 2; k++) {
		req_start(&q[k], "c", 1000 + 10 * (uint32_t) k, 2);
		wait_waiting(k);
	}
	release(q, k);
	all_own(q, k);
	ck_assert_uint_eq(calls, 3);
	for (size_t i = 1; i < calls; i++) {
		ck_assert_uint_le(sizes[i], ROUTER_BATCH_MAX);
		total += sizes[i];
	}
	ck_assert_uint_eq(total, 2 * (k - 1));
}
END_TEST

START_TEST(a_batch_too_big_to_group_goes_alone)
{
	struct req q[2];

	memset(q, 0, sizeof(q));
	req_start(&q[0], "c", 1, 1);
	wait_calls(1);
	/* not waiting for a group: sent at once, past the limit */
	req_start(&q[1], "c", 100, ROUTER_BATCH_MAX);
	wait_calls(2);
	ck_assert_uint_eq(router_batch_waiting(&test_router), 0);
	release(q, 2);
	all_own(&q[1], 1);
	ck_assert_uint_eq(sizes[1], ROUTER_BATCH_MAX);
}
END_TEST

/* ===== Errors ===== */

START_TEST(one_bad_search_fails_only_its_own_request)
{
	struct req q[4];

	memset(q, 0, sizeof(q));
	bad_limit = 300;
	queue_up(q, 4);
	release(q, 4);
	ck_assert_int_eq(q[0].rv, VECDB_OK);
	ck_assert_int_eq(q[1].rv, VECDB_OK);
	ck_assert_int_eq(q[2].rv, VECDB_EINVAL);
	ck_assert_str_eq(q[2].msg, "search: limit 300 is bad");
	ck_assert_int_eq(q[3].rv, VECDB_OK);
	ck_assert(q[1].got_own && q[3].got_own);
	/* the group of three, then each of them alone */
	ck_assert_uint_eq(calls, 5);
	ck_assert_uint_eq(sizes[1], 3);
}
END_TEST

START_TEST(a_shard_error_is_every_members_error)
{
	struct req q[3];

	memset(q, 0, sizeof(q));
	fail_rv = VECDB_EUNAVAILABLE;
	fail_min = 1;            /* the first, alone, succeeds */
	queue_up(q, 3);
	release(q, 3);
	ck_assert_int_eq(q[0].rv, VECDB_OK);
	for (int i = 1; i < 3; i++) {
		ck_assert_int_eq(q[i].rv, VECDB_EUNAVAILABLE);
		ck_assert_str_eq(q[i].msg, "shard 1 (tcp://r) did not answer");
	}
	ck_assert_uint_eq(calls, 2);   /* not run again alone */
}
END_TEST

START_TEST(shards_left_out_are_told_to_every_member)
{
	struct req q[3];

	memset(q, 0, sizeof(q));
	leave_out = 1;
	for (int i = 0; i < 3; i++)
		q[i].allow_partial = 1;
	queue_up(q, 3);
	release(q, 3);
	all_own(q, 3);
	for (int i = 0; i < 3; i++)
		ck_assert_uint_eq(q[i].missing, 1);
	ck_assert_uint_eq(calls, 2);
}
END_TEST

START_TEST(different_read_options_do_not_go_together)
{
	struct req q[3];

	memset(q, 0, sizeof(q));
	queue_up(q, 2);
	q[2].allow_partial = 1;
	req_start(&q[2], "c", 300, 1);  /* a lane of its own: goes at once */
	wait_calls(2);
	ck_assert_uint_eq(router_batch_waiting(&test_router), 1);
	release(q, 3);
	all_own(q, 3);
	ck_assert_uint_eq(calls, 3);
}
END_TEST

static Suite *
batch_suite(void)
{
	Suite *s = suite_create("router_batch");
	TCase *tc = tcase_create("limit");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, the_limit_is_what_the_busiest_shard_runs_at_once);
	tcase_add_test(tc, without_a_limit_every_search_goes_at_once);
	suite_add_tcase(s, tc);
	tc = tcase_create("together");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, searches_that_would_queue_go_as_one_batch);
	tcase_add_test(tc, a_full_group_starts_another);
	tcase_add_test(tc, a_batch_too_big_to_group_goes_alone);
	tcase_add_test(tc, different_read_options_do_not_go_together);
	suite_add_tcase(s, tc);
	tc = tcase_create("errors");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, one_bad_search_fails_only_its_own_request);
	tcase_add_test(tc, a_shard_error_is_every_members_error);
	tcase_add_test(tc, shards_left_out_are_told_to_every_member);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	return tu_run(batch_suite());
}
