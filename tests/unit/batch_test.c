/* batch_test.c: batch writes are atomic; concurrent writers commit together. */
#include <check.h>
#include <lmdb.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

#define DIM 8

/* n points with ids base.., vectors from the seed; payload {"i": id}. */
static vecdb_point *
make_batch(uint64_t base, size_t n, float *vecs, char (*pay)[32])
{
	vecdb_point *p = calloc(n, sizeof(*p));
	uint64_t seed = base + 1;

	for (size_t i = 0; i < n; i++) {
		tu_rand_vector(&seed, vecs + i * DIM, DIM);
		snprintf(pay[i], 32, "{\"i\":%llu}",
		    (unsigned long long) (base + i));
		p[i] = (vecdb_point) { vecdb_id_num(base + i), vecs + i * DIM,
			DIM, pay[i] };
	}
	return p;
}

/* The number of points in collection "b". */
static uint64_t
count_b(void)
{
	uint64_t n;

	ck_assert_int_eq(vecdb_count(tu_db, "b", NULL, &n), VECDB_OK);
	return n;
}

START_TEST(a_batch_with_one_bad_point_writes_nothing)
{
	enum { N = 100 };
	static float vecs[N * DIM];
	static char pay[N][32];
	vecdb_point *p = make_batch(1, N, vecs, pay);
	vecdb_stats st0, st1;
	vecdb_record *r;

	tu_create(tu_db, "b", DIM, VECDB_EUCLIDEAN);
	ck_assert_int_eq(vecdb_stats_get(tu_db, &st0), VECDB_OK);

	vecs[57 * DIM + 3] = NAN;
	ck_assert_int_eq(vecdb_upsert(tu_db, "b", p, N), VECDB_EINVAL);
	ck_assert_ptr_nonnull(strstr(vecdb_errmsg(), "point 57 of 100 (id 58)"));
	vecs[57 * DIM + 3] = 0;

	p[99].dim = DIM - 1;
	ck_assert_int_eq(vecdb_upsert(tu_db, "b", p, N), VECDB_EDIM);
	p[99].dim = DIM;

	strcpy(pay[10], "[]");
	ck_assert_int_eq(vecdb_insert(tu_db, "b", p, N), VECDB_EINVAL);
	strcpy(pay[10], "{}");

	p[50].id = vecdb_id_num(1); /* repeats p[0] in an insert */
	ck_assert_int_eq(vecdb_insert(tu_db, "b", p, N), VECDB_EEXIST);
	ck_assert_uint_eq(count_b(), 0);
	ck_assert_int_eq(vecdb_get(tu_db, "b", &p[0].id, &r), VECDB_ENOTFOUND);
	ck_assert_int_eq(vecdb_stats_get(tu_db, &st1), VECDB_OK);
	ck_assert_uint_eq(st1.last_seq, st0.last_seq); /* no WAL record */

	p[50].id = vecdb_id_num(51);
	ck_assert_int_eq(vecdb_insert(tu_db, "b", p, N), VECDB_OK);
	ck_assert_uint_eq(count_b(), N);
	ck_assert_int_eq(vecdb_stats_get(tu_db, &st1), VECDB_OK);
	/* its records: a batch spans WAL records of at most ~2 KB */
	ck_assert_uint_gt(st1.last_seq, st0.last_seq);
	ck_assert_uint_le(st1.last_seq, st0.last_seq + N);
	free(p);
}
END_TEST

START_TEST(an_insert_batch_hitting_an_existing_id_keeps_everything)
{
	enum { N = 10 };
	static float vecs[N * DIM];
	static char pay[N][32];
	vecdb_point *p = make_batch(100, N, vecs, pay);
	vecdb_record *r;

	tu_create(tu_db, "b", DIM, VECDB_EUCLIDEAN);
	ck_assert_int_eq(vecdb_insert(tu_db, "b", &p[5], 1), VECDB_OK);
	ck_assert_int_eq(vecdb_insert(tu_db, "b", p, N), VECDB_EEXIST);
	ck_assert_ptr_nonnull(strstr(vecdb_errmsg(), "point 105 already exists"));
	ck_assert_uint_eq(count_b(), 1);
	ck_assert_int_eq(vecdb_get(tu_db, "b", &p[5].id, &r), VECDB_OK);
	ck_assert_str_eq(r->payload, "{\"i\":105}");
	vecdb_record_free(r);
	ck_assert_int_eq(vecdb_update(tu_db, "b", p, N), VECDB_ENOTFOUND);
	ck_assert_uint_eq(count_b(), 1);
	free(p);
}
END_TEST

START_TEST(batch_upsert_and_delete_apply_whole)
{
	enum { N = 2000 };
	static float vecs[N * DIM];
	static char pay[N][32];
	vecdb_point *p = make_batch(0, N, vecs, pay);
	vecdb_id ids[N / 2];
	size_t deleted;

	tu_create(tu_db, "b", DIM, VECDB_EUCLIDEAN);
	ck_assert_int_eq(vecdb_upsert(tu_db, "b", p, N), VECDB_OK);
	ck_assert_uint_eq(count_b(), N);
	for (size_t i = 0; i < N / 2; i++)
		ids[i] = vecdb_id_num(2 * i);
	ck_assert_int_eq(vecdb_delete(tu_db, "b", ids, N / 2, &deleted),
	    VECDB_OK);
	ck_assert_uint_eq(deleted, N / 2);
	ck_assert_uint_eq(count_b(), N / 2);
	/* A batch may carry the same id twice: the last one wins. */
	p[1].id = vecdb_id_num(3);
	ck_assert_int_eq(vecdb_upsert(tu_db, "b", p, 4), VECDB_OK);
	vecdb_record *r;
	ck_assert_int_eq(vecdb_get(tu_db, "b", &p[3].id, &r), VECDB_OK);
	ck_assert_str_eq(r->payload, "{\"i\":3}");
	vecdb_record_free(r);
	free(p);
}
END_TEST

START_TEST(oversized_batches_are_refused)
{
	float v[DIM] = { 0 };
	vecdb_point p = { vecdb_id_num(1), v, DIM, NULL };

	tu_create(tu_db, "b", DIM, VECDB_EUCLIDEAN);
	ck_assert_int_eq(vecdb_upsert(tu_db, "b", &p, VECDB_BATCH_MAX + 1),
	    VECDB_EINVAL);
	ck_assert_ptr_nonnull(strstr(vecdb_errmsg(), "limit"));
	ck_assert_int_eq(vecdb_upsert(tu_db, "b", &p, 0), VECDB_OK);
	ck_assert_uint_eq(count_b(), 0);
}
END_TEST

struct writer_arg {
	int thread;
	int batches;
	int rv;
};

/* One writer thread: small batches with ids unique to the thread. */
static void *
writer_thread(void *a)
{
	struct writer_arg *w = a;
	float vecs[10 * DIM];
	char pay[10][32];

	for (int b = 0; b < w->batches && w->rv == VECDB_OK; b++) {
		vecdb_point *p = make_batch((uint64_t) w->thread * 100000 +
		    (uint64_t) b * 10, 10, vecs, pay);
		w->rv = vecdb_upsert(tu_db, "b", p, 10);
		free(p);
	}
	return NULL;
}

START_TEST(concurrent_writers_all_commit)
{
	enum { T = 8, B = 40 };
	pthread_t th[T];
	struct writer_arg args[T];
	vecdb_stats st;

	tu_create(tu_db, "b", DIM, VECDB_EUCLIDEAN);
	for (int i = 0; i < T; i++) {
		args[i] = (struct writer_arg) { i, B, VECDB_OK };
		pthread_create(&th[i], NULL, writer_thread, &args[i]);
	}
	for (int i = 0; i < T; i++) {
		pthread_join(th[i], NULL);
		ck_assert_int_eq(args[i].rv, VECDB_OK);
	}
	ck_assert_uint_eq(count_b(), T * B * 10);
	ck_assert_int_eq(vecdb_stats_get(tu_db, &st), VECDB_OK);
	ck_assert_uint_eq(st.last_seq, 1 + T * B); /* create + each batch */
}
END_TEST

/*
 * Reopen tu_db in sync mode (every commit fsynced, so concurrent writers
 * queue behind each sync and share commits), create "b", and run 4
 * threads of fn, 10 batches each; each must end with VECDB_OK.
 */
enum { SYNC_T = 4, SYNC_B = 10 };

static void
sync_writers(void *(*fn)(void *))
{
	vecdb_options o;
	char *dir = tu_subdir();
	pthread_t th[SYNC_T];
	struct writer_arg args[SYNC_T];

	vecdb_close(tu_db);
	vecdb_options_init(&o);
	o.map_size = 64 << 20;
	ck_assert_int_eq(vecdb_open(dir, &o, &tu_db), VECDB_OK);
	free(dir);
	tu_create(tu_db, "b", DIM, VECDB_EUCLIDEAN);
	for (int i = 0; i < SYNC_T; i++) {
		args[i] = (struct writer_arg) { i, SYNC_B, VECDB_OK };
		pthread_create(&th[i], NULL, fn, &args[i]);
	}
	for (int i = 0; i < SYNC_T; i++) {
		pthread_join(th[i], NULL);
		ck_assert_int_eq(args[i].rv, VECDB_OK);
	}
}

START_TEST(sync_durability_commits_with_group_commit)
{
	/* The same as above against a sync-mode database. */
	sync_writers(writer_thread);
	ck_assert_uint_eq(count_b(), SYNC_T * SYNC_B * 10);
}
END_TEST

/* One writer thread whose every other write fails: an insert of nine new
 * points and, last, one its previous upsert wrote (so that the failure
 * comes after writes it must undo). */
static void *
failing_writer_thread(void *a)
{
	struct writer_arg *w = a;
	float vecs[10 * DIM];
	char pay[10][32];

	for (int b = 0; b < w->batches && w->rv == VECDB_OK; b++) {
		uint64_t base = (uint64_t) w->thread * 100000 +
		    (uint64_t) b * 10;
		vecdb_point *p = make_batch(base, 10, vecs, pay);
		w->rv = vecdb_upsert(tu_db, "b", p, 10);
		free(p);
		if (w->rv != VECDB_OK)
			break;
		p = make_batch(base + 10, 10, vecs, pay);
		p[9].id = vecdb_id_num(base);
		if (vecdb_insert(tu_db, "b", p, 10) != VECDB_EEXIST)
			w->rv = VECDB_EINTERNAL;
		free(p);
	}
	return NULL;
}

START_TEST(failed_writes_change_nothing_alone_or_in_a_group)
{
	/* A failed write, alone or in a group of several (in sync mode
	 * groups form), must leave nothing behind, even after writes of its
	 * own, and take none of the others with it. */
	vecdb_stats st;

	sync_writers(failing_writer_thread);
	ck_assert_uint_eq(count_b(), SYNC_T * SYNC_B * 10);
	ck_assert_int_eq(vecdb_stats_get(tu_db, &st), VECDB_OK);
	/* no record of a failure */
	ck_assert_uint_eq(st.last_seq, 1 + SYNC_T * SYNC_B);
	/* and alone: the same failure with nobody else writing */
	{
		float vecs[10 * DIM];
		char pay[10][32];
		vecdb_point *p = make_batch(1000000, 10, vecs, pay);

		p[9].id = vecdb_id_num(5);
		ck_assert_int_eq(vecdb_insert(tu_db, "b", p, 10),
		    VECDB_EEXIST);
		free(p);
	}
	ck_assert_uint_eq(count_b(), SYNC_T * SYNC_B * 10);
	ck_assert_int_eq(vecdb_stats_get(tu_db, &st), VECDB_OK);
	ck_assert_uint_eq(st.last_seq, 1 + SYNC_T * SYNC_B);
}
END_TEST

/* The number of records in the WAL of a closed data dir. */
static size_t
wal_entries(const char *dir)
{
	MDB_env *env;
	MDB_txn *txn;
	MDB_dbi dbi;
	MDB_stat ms;

	ck_assert_int_eq(mdb_env_create(&env), 0);
	mdb_env_set_maxdbs(env, 8);
	ck_assert_int_eq(mdb_env_open(env, dir, MDB_RDONLY, 0644), 0);
	ck_assert_int_eq(mdb_txn_begin(env, NULL, MDB_RDONLY, &txn), 0);
	ck_assert_int_eq(mdb_dbi_open(txn, "wal", 0, &dbi), 0);
	ck_assert_int_eq(mdb_stat(txn, dbi, &ms), 0);
	mdb_txn_abort(txn);
	mdb_env_close(env);
	return ms.ms_entries;
}

START_TEST(wal_keeps_the_retention_window)
{
	vecdb_options o;
	vecdb *db;
	char *dir = tu_subdir();
	float v[DIM] = { 0 };
	vecdb_point p = { vecdb_id_num(1), v, DIM, NULL };
	vecdb_stats st;

	vecdb_options_init(&o);
	o.durability = VECDB_BUFFERED;
	o.map_size = 64 << 20;
	o.wal_retain = 5;
	ck_assert_int_eq(vecdb_open(dir, &o, &db), VECDB_OK);
	tu_create(db, "b", DIM, VECDB_EUCLIDEAN);
	for (int i = 0; i < 20; i++) {
		v[0] = (float) i;
		ck_assert_int_eq(vecdb_upsert(db, "b", &p, 1), VECDB_OK);
	}
	ck_assert_int_eq(vecdb_stats_get(db, &st), VECDB_OK);
	ck_assert_uint_eq(st.last_seq, 21);
	vecdb_close(db);
	ck_assert_uint_eq(wal_entries(dir), 5);
	/* last_seq survives reopen even though old records are gone */
	ck_assert_int_eq(vecdb_open(dir, &o, &db), VECDB_OK);
	ck_assert_int_eq(vecdb_upsert(db, "b", &p, 1), VECDB_OK);
	ck_assert_int_eq(vecdb_stats_get(db, &st), VECDB_OK);
	ck_assert_uint_eq(st.last_seq, 22);
	vecdb_close(db);
	free(dir);
}
END_TEST

START_TEST(a_full_map_fails_the_write_and_keeps_the_database_usable)
{
	enum { B = 200, D = 256 };
	static float v[B * D];
	vecdb_point p[B];
	vecdb_options o;
	vecdb_stats st;
	vecdb *db;
	char *dir = tu_subdir();
	uint64_t n = 0, before;
	int rv = VECDB_OK, batches = 0;

	vecdb_options_init(&o);
	o.durability = VECDB_BUFFERED;
	o.map_size = 4 << 20; /* 4 MiB: a few batches of 200 KiB */
	ck_assert_int_eq(vecdb_open(dir, &o, &db), VECDB_OK);
	tu_create(db, "b", D, VECDB_EUCLIDEAN);
	while (rv == VECDB_OK && batches < 100) {
		for (int i = 0; i < B; i++)
			p[i] = (vecdb_point) { vecdb_id_num((uint64_t) (batches *
				B + i)), v + i * D, D, NULL };
		ck_assert_int_eq(vecdb_count(db, "b", NULL, &before), VECDB_OK);
		rv = vecdb_upsert(db, "b", p, B);
		batches++;
	}
	ck_assert_int_eq(rv, VECDB_EFULL);
	ck_assert_ptr_nonnull(strstr(vecdb_errmsg(), "map_size"));
	/* Nothing of the failed batch landed; everything before did. */
	ck_assert_int_eq(vecdb_count(db, "b", NULL, &n), VECDB_OK);
	ck_assert_uint_eq(n, before);
	ck_assert_uint_eq(n, (uint64_t) (batches - 1) * B);
	/* The database still works: freeing space lets writes in again. */
	vecdb_id ids[B];
	for (int i = 0; i < B; i++)
		ids[i] = vecdb_id_num((uint64_t) i);
	ck_assert_int_eq(vecdb_delete(db, "b", ids, B, NULL), VECDB_OK);
	ck_assert_int_eq(vecdb_stats_get(db, &st), VECDB_OK);
	vecdb_point one = { vecdb_id_num(999999), v, D, NULL };
	ck_assert_int_eq(vecdb_upsert(db, "b", &one, 1), VECDB_OK);
	vecdb_close(db);
	ck_assert_int_eq(vecdb_open(dir, &o, &db), VECDB_OK);
	ck_assert_int_eq(vecdb_count(db, "b", NULL, &n), VECDB_OK);
	ck_assert_uint_eq(n, (uint64_t) (batches - 2) * B + 1);
	vecdb_close(db);
	free(dir);
}
END_TEST

static Suite *
batch_suite(void)
{
	Suite *s = suite_create("batch");
	TCase *tc = tcase_create("atomicity");

	tu_add_db_fixture(tc);
	tcase_add_test(tc, a_batch_with_one_bad_point_writes_nothing);
	tcase_add_test(tc, an_insert_batch_hitting_an_existing_id_keeps_everything);
	tcase_add_test(tc, batch_upsert_and_delete_apply_whole);
	tcase_add_test(tc, oversized_batches_are_refused);
	tcase_add_test(tc, a_full_map_fails_the_write_and_keeps_the_database_usable);
	suite_add_tcase(s, tc);
	tc = tcase_create("group commit");
	tcase_set_timeout(tc, 120);
	tu_add_db_fixture(tc);
	tcase_add_test(tc, concurrent_writers_all_commit);
	tcase_add_test(tc, sync_durability_commits_with_group_commit);
	tcase_add_test(tc, failed_writes_change_nothing_alone_or_in_a_group);
	tcase_add_test(tc, wal_keeps_the_retention_window);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	return tu_run(batch_suite());
}
