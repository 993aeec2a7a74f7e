/*
 * repl_primary_test.c: the primary's replication service on a real
 * database, without the network: FetchWal answers and acknowledgements,
 * lag, parked long-polls woken by commits or their deadline, waiting for
 * acknowledgements, bootstrap copies served in chunks, and the WAL held
 * for a replica that lacks records.
 */
#include <check.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "repl.h"
#include "storage_repl.h"
#include "testutil.h"
#include "vdb.h"

#define DIM 4

/* Upsert n points from id first. */
static void
put(vecdb *db, uint64_t first, size_t n)
{
	static float v[32][DIM];
	vecdb_point p[32];
	uint64_t seed = first + 1;

	ck_assert_uint_le(n, 32);
	for (size_t i = 0; i < n; i++) {
		tu_rand_vector(&seed, v[i], DIM);
		p[i] = (vecdb_point) { vecdb_id_num(first + i), v[i], DIM, NULL };
	}
	ck_assert_int_eq(vecdb_upsert(db, "c", p, n), VECDB_OK);
}

static uint64_t
last_seq(vecdb *db)
{
	struct storage_wal_info info;

	ck_assert_int_eq(storage_wal_info_get(db, &info), VECDB_OK);
	return info.last_seq;
}

/* A FetchWal by replica id after seq; returns the record count. */
static uint32_t
fetch(repl_primary *p, const char *id, uint64_t after)
{
	struct proto_fetch_wal f;
	struct proto_wal_batch b;

	memset(&f, 0, sizeof(f));
	f.after_seq = after;
	snprintf(f.replica_id, sizeof(f.replica_id), "%s", id);
	ck_assert_int_eq(repl_primary_fetch(p, &f, &b), VECDB_OK);
	vdb_free(b.records);
	return b.count;
}

static repl_primary *
primary_new(void)
{
	repl_primary *p;

	tu_create(tu_db, "c", DIM, VECDB_EUCLIDEAN);
	ck_assert_int_eq(repl_primary_new(tu_db, tu_dir, 1ull << 30, &p),
	    VECDB_OK);
	return p;
}

/* Stop and free around the database's close, as the node does. */
static void
primary_free(repl_primary *p)
{
	repl_primary_stop(p);
	vecdb_close(tu_db);
	tu_db = NULL;
	repl_primary_free(p);
}

START_TEST(fetches_acknowledge_and_report_lag)
{
	repl_primary *p = primary_new();
	struct repl_replica r[4];
	char *out = NULL;
	size_t len = 0;
	FILE *f;

	put(tu_db, 0, 10);
	put(tu_db, 10, 10);
	ck_assert_uint_eq(fetch(p, "a", 0), 3);
	ck_assert_uint_eq(fetch(p, "b", 3), 0);
	ck_assert_uint_eq(repl_primary_replicas(p, r, 4), 2);
	ck_assert_str_eq(r[0].id, "a");
	ck_assert_uint_eq(r[0].lag_records, 3);
	ck_assert(r[0].lag_s >= 0);
	ck_assert_uint_eq(r[1].lag_records, 0);
	ck_assert(r[1].lag_s == 0);
	ck_assert_ptr_nonnull(f = open_memstream(&out, &len));
	repl_primary_metrics_write(p, f);
	fclose(f);
	ck_assert_ptr_nonnull(strstr(out, "\nvecdb_replication_lag_records"
	    "{replica=\"a\"} 3\n"));
	ck_assert_ptr_nonnull(strstr(out, "\nvecdb_replication_lag_seconds"
	    "{replica=\"b\"} 0.000\n"));
	free(out);
	primary_free(p);
}
END_TEST

/* A wake callback: counts, and notes when. */
static _Atomic int woken;
static void
on_wake(void *arg)
{
	(void) arg;
	atomic_fetch_add(&woken, 1);
}

static uint64_t
ms_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t) ts.tv_sec * 1000 + (uint64_t) ts.tv_nsec / 1000000;
}

/* Wait up to ms for woken to reach n. */
static int
wait_woken(int n, uint64_t ms)
{
	uint64_t end = ms_now() + ms;

	while (atomic_load(&woken) < n && ms_now() < end)
		usleep(1000);
	return atomic_load(&woken) >= n;
}

START_TEST(parked_polls_wake_on_a_commit_or_their_deadline)
{
	repl_primary *p = primary_new();
	uint64_t last = last_seq(tu_db), t0;

	atomic_store(&woken, 0);
	ck_assert_int_eq(repl_primary_park(p, last - 1, 5000, on_wake, NULL),
	    VECDB_EEXIST);
	ck_assert_int_eq(repl_primary_park(p, last, 5000, on_wake, NULL),
	    VECDB_OK);
	ck_assert_int_eq(repl_primary_park(p, last, 5000, on_wake, NULL),
	    VECDB_OK);
	usleep(50000);
	ck_assert_int_eq(atomic_load(&woken), 0);
	t0 = ms_now();
	put(tu_db, 0, 1);
	ck_assert(wait_woken(2, 2000));
	ck_assert_uint_lt(ms_now() - t0, 1000);
	last = last_seq(tu_db);
	t0 = ms_now();
	ck_assert_int_eq(repl_primary_park(p, last, 150, on_wake, NULL),
	    VECDB_OK);
	ck_assert(wait_woken(3, 3000));
	ck_assert_uint_ge(ms_now() - t0, 140);
	/* Stopping answers the parked at once and refuses new ones. */
	ck_assert_int_eq(repl_primary_park(p, last, 10000, on_wake, NULL),
	    VECDB_OK);
	repl_primary_stop(p);
	ck_assert_int_eq(atomic_load(&woken), 4);
	ck_assert_int_eq(repl_primary_park(p, last, 10000, on_wake, NULL),
	    VECDB_EFULL);
	primary_free(p);
}
END_TEST

/* A replica that fetches after seq once 100 ms have passed. */
struct late {
	repl_primary *p;
	uint64_t seq;
};

static void *
late_ack(void *arg)
{
	struct late *l = arg;

	usleep(100000);
	fetch(l->p, "slow", l->seq);
	return NULL;
}

START_TEST(writers_can_wait_for_acknowledgements)
{
	repl_primary *p = primary_new();
	struct late l;
	pthread_t th;
	uint64_t last;

	put(tu_db, 0, 5);
	last = last_seq(tu_db);
	fetch(p, "fast", last);
	ck_assert_int_eq(repl_primary_wait_acks(p, last, 1, 10), VECDB_OK);
	l.p = p;
	l.seq = last;
	pthread_create(&th, NULL, late_ack, &l);
	ck_assert_int_eq(repl_primary_wait_acks(p, last, 2, 5000), VECDB_OK);
	pthread_join(th, NULL);
	ck_assert_int_eq(repl_primary_wait_acks(p, last + 1, 1, 50), VECDB_EIO);
	ck_assert_ptr_nonnull(strstr(vecdb_errmsg(), "0 of 1 replicas"));
	primary_free(p);
}
END_TEST

START_TEST(a_bootstrap_copy_is_served_in_chunks)
{
	repl_primary *p = primary_new();
	struct proto_bootstrap_info bi;
	struct proto_bootstrap_chunk c;
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	uint8_t sum[32], *data;
	size_t n, chunks = 0;

	put(tu_db, 0, 32);
	ck_assert_int_eq(repl_primary_bootstrap_begin(p, "r", &bi), VECDB_OK);
	ck_assert_uint_gt(bi.size, 0);
	EVP_DigestInit_ex(md, EVP_sha256(), NULL);
	c.session = bi.session;
	c.max_bytes = 4096;
	for (c.offset = 0; c.offset < bi.size; c.offset += n, chunks++) {
		ck_assert_int_eq(repl_primary_bootstrap_chunk(p, &c, &data, &n),
		    VECDB_OK);
		ck_assert_uint_gt(n, 0);
		ck_assert_uint_le(n, 4096);
		EVP_DigestUpdate(md, data, n);
		vdb_free(data);
	}
	EVP_DigestFinal_ex(md, sum, NULL);
	EVP_MD_CTX_free(md);
	ck_assert_uint_gt(chunks, 1);
	ck_assert_mem_eq(sum, bi.sha256, 32);
	/* Served whole: the copy is gone. */
	c.offset = 0;
	ck_assert_int_eq(repl_primary_bootstrap_chunk(p, &c, &data, &n),
	    VECDB_ENOTFOUND);
	primary_free(p);
}
END_TEST

START_TEST(the_wal_is_held_for_a_replica_that_lacks_records)
{
	struct storage_wal_info info;
	vecdb_options o;
	repl_primary *p;
	uint64_t last;

	vecdb_close(tu_db);
	vecdb_options_init(&o);
	o.durability = VECDB_BUFFERED;
	o.wal_retain = 3;
	ck_assert_int_eq(vecdb_open(tu_dir, &o, &tu_db), VECDB_OK);
	p = primary_new();
	fetch(p, "r", 1);                     /* has the create only */
	for (uint64_t i = 0; i < 10; i++)
		put(tu_db, i, 1);
	ck_assert_int_eq(storage_wal_info_get(tu_db, &info), VECDB_OK);
	ck_assert_uint_eq(info.oldest_seq, 2); /* held */
	last = info.last_seq;
	fetch(p, "r", last);                  /* caught up */
	put(tu_db, 100, 1);
	ck_assert_int_eq(storage_wal_info_get(tu_db, &info), VECDB_OK);
	ck_assert_uint_eq(info.oldest_seq, last + 1 - 3 + 1);
	primary_free(p);
}
END_TEST

static Suite *
repl_primary_suite(void)
{
	Suite *s = suite_create("repl_primary");
	TCase *tc = tcase_create("primary");

	tu_add_db_fixture(tc);
	tcase_add_test(tc, fetches_acknowledge_and_report_lag);
	tcase_add_test(tc, parked_polls_wake_on_a_commit_or_their_deadline);
	tcase_add_test(tc, writers_can_wait_for_acknowledgements);
	tcase_add_test(tc, a_bootstrap_copy_is_served_in_chunks);
	tcase_add_test(tc, the_wal_is_held_for_a_replica_that_lacks_records);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	return tu_run(repl_primary_suite());
}
