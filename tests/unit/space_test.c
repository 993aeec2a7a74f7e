/*
 * space_test.c: space comes back. Upserting the same ids over and over, on
 * a real LMDB env in a temp dir, keeps the data file, the WAL and the
 * index bounded, across a restart, and searches find the latest vectors;
 * a compaction (asked for, or on its own past the dead share threshold)
 * drops the index's dead nodes while writes and searches go on.
 */
#include <check.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "testutil.h"

#define DIM 32
#define N 2000
#define BATCH 100

/* A database that searches every collection through its index. */
static vecdb *
open_indexed(const char *dir)
{
	vecdb_options o;
	vecdb *db;

	vecdb_options_init(&o);
	o.durability = VECDB_BUFFERED;
	o.map_size = 1ULL << 30;
	o.full_scan_threshold = 0;
	ck_assert_int_eq(vecdb_open(dir, &o, &db), VECDB_OK);
	return db;
}

/* Size of <dir>/data.mdb. */
static uint64_t
data_size(const char *dir)
{
	char path[4200];
	struct stat st;

	snprintf(path, sizeof(path), "%s/data.mdb", dir);
	ck_assert_int_eq(stat(path, &st), 0);
	return (uint64_t) st.st_size;
}

/* Upsert ids [first, first + n) with fresh random vectors, kept in v. */
static void
put_range(vecdb *db, uint64_t *seed, float *v, uint32_t first, uint32_t n)
{
	vecdb_point p[BATCH];

	for (uint32_t b = first; b < first + n; b += BATCH) {
		uint32_t cnt = first + n - b < BATCH ? first + n - b : BATCH;
		for (uint32_t i = 0; i < cnt; i++) {
			float *row = v + (size_t) (b + i) * DIM;
			tu_rand_vector(seed, row, DIM);
			p[i] = (vecdb_point) { vecdb_id_num(b + i), row, DIM,
				"{\"k\":1}" };
		}
		ck_assert_int_eq(vecdb_upsert(db, "c", p, cnt), VECDB_OK);
	}
}

/* One more write, as the next write of a stream: the writer trims the WAL
 * when it commits, up to where the indexer has come. */
static void
touch(vecdb *db, const float *v)
{
	vecdb_point p = { vecdb_id_num(0), v, DIM, "{\"k\":1}" };

	ck_assert_int_eq(vecdb_upsert(db, "c", &p, 1), VECDB_OK);
	ck_assert_int_eq(vecdb_index_sync(db, 60000), VECDB_OK);
}

/* Each of `checks` ids is found first by a search for its vector. */
static void
assert_latest_found(vecdb *db, const float *v, uint32_t checks)
{
	vecdb_search_params sp = { 0 };
	vecdb_records *r;

	sp.dim = DIM;
	sp.limit = 1;
	for (uint32_t i = 0; i < checks; i++) {
		uint32_t id = (i * 7919) % N;
		sp.vector = v + (size_t) id * DIM;
		ck_assert_int_eq(vecdb_search(db, "c", &sp, &r), VECDB_OK);
		ck_assert_uint_eq(r->count, 1);
		ck_assert_uint_eq(r->items[0].id.num, id);
		ck_assert_float_le(r->items[0].distance, 1e-4f);
		vecdb_records_free(r);
	}
}

/* Collection stats, or fail. */
static vecdb_collection_stats
cstats(vecdb *db)
{
	vecdb_collection_stats st;

	ck_assert_int_eq(vecdb_collection_stats_get(db, "c", &st), VECDB_OK);
	return st;
}

/* WAL records kept, or fail. */
static uint64_t
wal_records(vecdb *db)
{
	vecdb_stats st;

	ck_assert_int_eq(vecdb_stats_get(db, &st), VECDB_OK);
	return st.wal_records;
}

/*
 * 50 rounds over the same 2,000 ids (100,000 updates, about 10,000 WAL
 * records of at most 2 KB written). Before: every record stayed in the WAL, every update added an
 * index node (dead_count in the 10,000s) and the data file grew with both.
 */
START_TEST(upserting_the_same_ids_keeps_disk_wal_and_index_bounded)
{
	float *v = malloc((size_t) N * DIM * sizeof(float));
	uint64_t seed = 11, size0, size10 = 0, mem0;
	char *dir = tu_subdir();
	vecdb *db = open_indexed(dir);
	vecdb_collection_stats st;

	tu_create(db, "c", DIM, VECDB_EUCLIDEAN);
	put_range(db, &seed, v, 0, N);
	ck_assert_int_eq(vecdb_index_sync(db, 60000), VECDB_OK);
	size0 = data_size(dir);
	mem0 = cstats(db).memory_bytes;
	for (int round = 0; round < 50; round++) {
		put_range(db, &seed, v, 0, N);
		/* the indexer keeps up (as it does unless writes outrun it):
		 * what is measured is then the same in every build, not how
		 * far a slower one (the sanitizers) falls behind */
		ck_assert_int_eq(vecdb_index_sync(db, 60000), VECDB_OK);
		if (round == 9)
			size10 = data_size(dir);
	}
	ck_assert_int_eq(vecdb_index_sync(db, 120000), VECDB_OK);
	touch(db, v);
	st = cstats(db);
	ck_assert_uint_eq(st.vector_count, N);
	ck_assert_uint_eq(st.indexed_count, N);
	ck_assert_uint_eq(st.dead_count, 0);
	ck_assert_uint_le(st.memory_bytes, mem0 + mem0 / 10);
	/* the last MiB (~520 records) stays, and what the checkpoint
	 * floor holds: at most CKPT_MIN (10,000) entries since the graph's
	 * last checkpoint, ~1,000 records of ~10 entries; where the
	 * checkpoint falls depends on the timer (measured 1001 alone, 1601
	 * with a busy machine) */
	ck_assert_uint_le(wal_records(db), 2000);
	/* Bounded, not merely slower: the last 40 rounds wrote 13.6 MB of
	 * WAL (340 KB a round), and the file may take at most
	 * a quarter of that on top of what the first 10 rounds left. */
	ck_assert_uint_le(data_size(dir), size10 + 40 * 20 * 17000 / 4);
	ck_assert_uint_le(size10, 12 * size0);
	assert_latest_found(db, v, 200);

	/* A restart keeps it so: the checkpoint is used, nothing regrows. */
	uint64_t size1 = data_size(dir);
	vecdb_close(db);
	db = open_indexed(dir);
	ck_assert_int_eq(vecdb_index_sync(db, 60000), VECDB_OK);
	touch(db, v);
	st = cstats(db);
	ck_assert_uint_eq(st.indexed_count, N);
	ck_assert_uint_eq(st.dead_count, 0);
	ck_assert_uint_le(wal_records(db), 1500);
	ck_assert_uint_eq(data_size(dir), size1);
	assert_latest_found(db, v, 200);
	vecdb_close(db);
	free(v);
	free(dir);
}
END_TEST

/* Delete ids [first, first + n). */
static void
delete_range(vecdb *db, uint32_t first, uint32_t n)
{
	vecdb_id *ids = malloc(n * sizeof(*ids));
	size_t deleted;

	for (uint32_t i = 0; i < n; i++)
		ids[i] = vecdb_id_num(first + i);
	ck_assert_int_eq(vecdb_delete(db, "c", ids, n, &deleted), VECDB_OK);
	ck_assert_uint_eq(deleted, n);
	free(ids);
}

/* Wait until `compactions` compactions finished, at most 60 s. */
static vecdb_collection_stats
wait_compacted(vecdb *db, uint64_t compactions)
{
	vecdb_collection_stats st;

	for (int i = 0; i < 6000; i++) {
		st = cstats(db);
		if (st.compactions >= compactions &&
		    st.optimizer == VECDB_OPTIMIZER_IDLE)
			return st;
		usleep(10000);
	}
	ck_abort_msg("no compaction in 60 s");
	return st;
}

/* What the writer thread of the compaction test writes. */
struct writer_arg {
	vecdb *db;
	float *v;
	atomic_int stop;
	int rounds;
};

/* Upsert ids N..2N-1 again and again until told to stop. */
static void *
writer_main(void *arg)
{
	struct writer_arg *w = arg;
	uint64_t seed = 99;

	while (!atomic_load(&w->stop) || w->rounds == 0) {
		put_range(w->db, &seed, w->v, N, N);
		w->rounds++;
	}
	return NULL;
}

START_TEST(compact_drops_dead_nodes_while_writes_go_on)
{
	float *v = malloc((size_t) 2 * N * DIM * sizeof(float));
	struct writer_arg w = { NULL, v, 0, 0 };
	uint64_t seed = 5;
	char *dir = tu_subdir();
	vecdb *db = open_indexed(dir);
	vecdb_collection_stats st;
	pthread_t t;

	tu_create(db, "c", DIM, VECDB_EUCLIDEAN);
	put_range(db, &seed, v, 0, N);
	ck_assert_int_eq(vecdb_index_sync(db, 60000), VECDB_OK);
	delete_range(db, 0, N / 2); /* deletes leave slots nobody takes */
	ck_assert_int_eq(vecdb_index_sync(db, 60000), VECDB_OK);
	st = cstats(db);
	ck_assert_uint_eq(st.dead_count + st.indexed_count, N);
	ck_assert_uint_ge(st.dead_count, 1);
	w.db = db;
	ck_assert_int_eq(vecdb_compact(db, "c"), VECDB_OK);
	ck_assert_int_eq(pthread_create(&t, NULL, writer_main, &w), 0);
	st = wait_compacted(db, 1);
	atomic_store(&w.stop, 1);
	pthread_join(t, NULL);
	ck_assert_int_eq(vecdb_index_sync(db, 60000), VECDB_OK);
	st = cstats(db);
	ck_assert_uint_eq(st.vector_count, N / 2 + N);
	ck_assert_uint_eq(st.indexed_count, N / 2 + N);
	ck_assert_uint_eq(st.dead_count, 0);
	ck_assert(st.dead_ratio == 0);
	/* the kept half and the points written during the compaction */
	vecdb_search_params sp = { 0 };
	vecdb_records *r;
	sp.dim = DIM;
	sp.limit = 1;
	for (uint32_t id = N / 2; id < 2 * N; id += 37) {
		sp.vector = v + (size_t) id * DIM;
		ck_assert_int_eq(vecdb_search(db, "c", &sp, &r), VECDB_OK);
		ck_assert_uint_eq(r->items[0].id.num, id);
		vecdb_records_free(r);
	}
	ck_assert_int_eq(vecdb_compact(db, "nope"), VECDB_ENOTFOUND);
	vecdb_close(db);
	free(v);
	free(dir);
}
END_TEST

START_TEST(a_dead_share_over_the_threshold_compacts_on_its_own)
{
	float *v = malloc((size_t) N * DIM * sizeof(float));
	uint64_t seed = 3;
	char *dir = tu_subdir();
	vecdb *db = open_indexed(dir);
	vecdb_collection_stats st;

	tu_create(db, "c", DIM, VECDB_EUCLIDEAN);
	put_range(db, &seed, v, 0, N);
	ck_assert_int_eq(vecdb_index_sync(db, 60000), VECDB_OK);
	delete_range(db, 0, 1200); /* 0.6 dead, 1,200 nodes */
	ck_assert_int_eq(vecdb_index_sync(db, 60000), VECDB_OK);
	st = wait_compacted(db, 1);
	ck_assert_uint_eq(st.dead_count, 0);
	ck_assert_uint_eq(st.indexed_count, N - 1200);
	vecdb_close(db);
	free(v);
	free(dir);
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("space");
	TCase *tc = tcase_create("bounded");

	tcase_add_unchecked_fixture(tc, tu_base_setup, tu_base_teardown);
	tcase_set_timeout(tc, 600);
	tcase_add_test(tc, upserting_the_same_ids_keeps_disk_wal_and_index_bounded);
	suite_add_tcase(s, tc);
	tc = tcase_create("vacuum");
	tcase_add_unchecked_fixture(tc, tu_base_setup, tu_base_teardown);
	tcase_set_timeout(tc, 600);
	tcase_add_test(tc, compact_drops_dead_nodes_while_writes_go_on);
	tcase_add_test(tc, a_dead_share_over_the_threshold_compacts_on_its_own);
	suite_add_tcase(s, tc);
	return tu_run(s);
}
