/*
 * index_test.c: searches through the HNSW index, end to end through the
 * embedded API: recall against exact search for every metric, writes
 * found before and after the indexer applies them, deletes never
 * returned, checkpoints reloaded or rebuilt, filtered recall, and a kill
 * during indexing that loses nothing.
 */
#include <check.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "testutil.h"

#define DIM 32
#define QUERIES 100

/* Points in the big tests: fewer under the sanitizers, which are slow. */
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define N 4000
#else
#define N 20000
#endif

/* A database that indexes every collection (threshold 0). */
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

/* Write n clustered points (ids 0..n-1, payload {"g": id % 1000}). */
static float *
load(vecdb *db, const char *name, vecdb_metric m, uint32_t n)
{
	float *v = tu_clustered(7, n, DIM);
	vecdb_point *p = calloc(1000, sizeof(*p));
	char (*pay)[24] = calloc(1000, sizeof(*pay));

	tu_create(db, name, DIM, m);
	for (uint32_t b = 0; b < n; b += 1000) {
		uint32_t cnt = n - b < 1000 ? n - b : 1000;
		for (uint32_t i = 0; i < cnt; i++) {
			snprintf(pay[i], sizeof(pay[i]), "{\"g\":%u}",
			    (b + i) % 1000);
			p[i] = (vecdb_point) { vecdb_id_num(b + i),
				v + (size_t) (b + i) * DIM, DIM, pay[i] };
		}
		ck_assert_int_eq(vecdb_upsert(db, name, p, cnt), VECDB_OK);
	}
	free(p);
	free(pay);
	return v;
}

/* recall@10 of the index against exact search over QUERIES queries. */
static double
recall(vecdb *db, const char *name, const float *pts, uint32_t n,
    const vecdb_filter *f, uint32_t ef)
{
	vecdb_search_params sp = { 0 };
	vecdb_records *a, *b;
	uint64_t seed = 4242;
	float q[DIM];
	size_t hit = 0, want = 0;

	sp.vector = q;
	sp.dim = DIM;
	sp.limit = 10;
	sp.filter = f;
	sp.ef_search = ef;
	for (int t = 0; t < QUERIES; t++) {
		tu_clustered_query(&seed, pts, n, DIM, q);
		sp.exact = 1;
		ck_assert_int_eq(vecdb_search(db, name, &sp, &a), VECDB_OK);
		sp.exact = 0;
		ck_assert_int_eq(vecdb_search(db, name, &sp, &b), VECDB_OK);
		for (size_t i = 0; i < a->count; i++)
			for (size_t j = 0; j < b->count; j++)
				hit += a->items[i].id.num == b->items[j].id.num;
		want += a->count;
		vecdb_records_free(a);
		vecdb_records_free(b);
	}
	return want ? (double) hit / (double) want : 1.0;
}

START_TEST(recall_clears_095_for_every_metric_at_the_default_ef)
{
	static const vecdb_metric m[] = { VECDB_COSINE, VECDB_EUCLIDEAN,
		VECDB_DOT, VECDB_MANHATTAN };
	vecdb *db = open_indexed(tu_dir);
	vecdb_collection_stats st;
	char name[16];

	for (int i = 0; i < 4; i++) {
		snprintf(name, sizeof(name), "m%d", i);
		float *pts = load(db, name, m[i], N);
		ck_assert_int_eq(vecdb_index_sync(db, 120000), VECDB_OK);
		ck_assert_int_eq(vecdb_collection_stats_get(db, name, &st),
		    VECDB_OK);
		ck_assert_uint_eq(st.indexed_count, N);
		ck_assert_uint_eq(st.pending_count, 0);
		ck_assert_uint_gt(st.memory_bytes, (uint64_t) N * DIM * 4);
		double r = recall(db, name, pts, N, NULL, 0);
		ck_assert_msg(r >= 0.95, "metric %d: recall@10 %.4f", i, r);
		free(pts);
	}
	vecdb_close(db);
}
END_TEST

/* The nearest point to v must be itself (distance 0) unless gone. */
static int
finds_itself(vecdb *db, const char *name, uint64_t id, const float *v)
{
	vecdb_search_params sp = { v, DIM, 1, 0, NULL, 0, 0, 0, 0, 0, 0, 0,
		NULL };
	vecdb_records *r;
	int found;

	ck_assert_int_eq(vecdb_search(db, name, &sp, &r), VECDB_OK);
	found = r->count == 1 && r->items[0].id.num == id;
	vecdb_records_free(r);
	return found;
}

START_TEST(writes_are_found_before_and_after_indexing_and_deletes_never)
{
	vecdb *db = open_indexed(tu_dir);
	float *pts = load(db, "w", VECDB_EUCLIDEAN, 3000);
	float *fresh = tu_clustered(99, 500, DIM);

	/* No sync: each new point may or may not be indexed yet when it
	 * is searched; it must be found either way. */
	for (uint32_t i = 0; i < 500; i++) {
		vecdb_point p = { vecdb_id_num(100000 + i), fresh + i * DIM,
			DIM, NULL };
		ck_assert_int_eq(vecdb_upsert(db, "w", &p, 1), VECDB_OK);
		ck_assert_msg(finds_itself(db, "w", 100000 + i, fresh + i * DIM),
		    "fresh point %u not found", i);
	}
	/* Deleted and overwritten points vanish at once, indexed or not. */
	for (uint32_t i = 0; i < 300; i++) {
		vecdb_id id = vecdb_id_num(i);
		ck_assert_int_eq(vecdb_delete(db, "w", &id, 1, NULL), VECDB_OK);
		ck_assert(!finds_itself(db, "w", i, pts + i * DIM));
	}
	for (uint32_t i = 300; i < 400; i++) {
		vecdb_point p = { vecdb_id_num(i), fresh + (i - 300) * DIM, DIM,
			NULL };
		ck_assert_int_eq(vecdb_upsert(db, "w", &p, 1), VECDB_OK);
		ck_assert(!finds_itself(db, "w", i, pts + i * DIM));
	}
	ck_assert_int_eq(vecdb_index_sync(db, 60000), VECDB_OK);
	for (uint32_t i = 0; i < 400; i++)
		ck_assert(!finds_itself(db, "w", i, pts + i * DIM));
	for (uint32_t i = 400; i < 3000; i += 7)
		ck_assert(finds_itself(db, "w", i, pts + i * DIM));
	free(pts);
	free(fresh);
	vecdb_close(db);
}
END_TEST

/* Ids of the top 10 at ef 512 for QUERIES queries, as one string. */
static char *
answers(vecdb *db, const float *pts, uint32_t n)
{
	vecdb_search_params sp = { 0 };
	vecdb_records *r;
	uint64_t seed = 77;
	float q[DIM];
	size_t len = 0, cap = 64 * QUERIES * 10;
	char *s = malloc(cap);

	sp.vector = q;
	sp.dim = DIM;
	sp.limit = 10;
	sp.ef_search = 512;
	for (int t = 0; t < QUERIES; t++) {
		tu_clustered_query(&seed, pts, n, DIM, q);
		ck_assert_int_eq(vecdb_search(db, "p", &sp, &r), VECDB_OK);
		for (size_t i = 0; i < r->count; i++)
			len += (size_t) snprintf(s + len, cap - len, "%llu ",
			    (unsigned long long) r->items[i].id.num);
		vecdb_records_free(r);
	}
	return s;
}

START_TEST(checkpoints_reload_and_a_corrupt_one_is_rebuilt)
{
	vecdb *db = open_indexed(tu_dir);
	float *pts = load(db, "p", VECDB_COSINE, 5000);
	char path[4200], *before, *after;
	vecdb_collection_stats st;
	FILE *f;

	ck_assert_int_eq(vecdb_index_sync(db, 60000), VECDB_OK);
	before = answers(db, pts, 5000);
	vecdb_close(db); /* checkpoints */
	snprintf(path, sizeof(path), "%s/index/p.hnsw", tu_dir);
	ck_assert_int_eq(access(path, F_OK), 0);

	db = open_indexed(tu_dir);
	ck_assert_int_eq(vecdb_collection_stats_get(db, "p", &st), VECDB_OK);
	ck_assert_uint_eq(st.indexed_count, 5000); /* loaded, not rebuilt */
	after = answers(db, pts, 5000);
	ck_assert_str_eq(after, before);
	free(after);
	vecdb_close(db);

	/* Flip a byte in the middle: the checksum catches it; rebuilt. */
	f = fopen(path, "r+b");
	fseek(f, 4096, SEEK_SET);
	int c = fgetc(f);
	fseek(f, 4096, SEEK_SET);
	fputc(c ^ 0x5a, f);
	fclose(f);
	db = open_indexed(tu_dir);
	ck_assert_int_eq(vecdb_index_sync(db, 60000), VECDB_OK);
	after = answers(db, pts, 5000);
	ck_assert_str_eq(after, before);
	free(after);
	vecdb_close(db);
	free(before);
	free(pts);
}
END_TEST

START_TEST(filtered_recall_holds_at_10_1_and_01_percent)
{
	vecdb *db = open_indexed(tu_dir);
	float *pts = load(db, "f", VECDB_EUCLIDEAN, N);
	static const char *const sel[] = {
		"{\"must\":[{\"key\":\"g\",\"range\":{\"lt\":100}}]}",
		"{\"must\":[{\"key\":\"g\",\"range\":{\"lt\":10}}]}",
		"{\"must\":[{\"key\":\"g\",\"match\":{\"value\":7}}]}",
	};

	ck_assert_int_eq(vecdb_index_sync(db, 120000), VECDB_OK);
	for (int pass = 0; pass < 2; pass++) {
		/* first through the graph alone, then with a payload index
		 * that lets the planner read few candidates exactly */
		if (pass == 1)
			ck_assert_int_eq(vecdb_payload_index_create(db, "f",
			    "g", VECDB_FIELD_INTEGER), VECDB_OK);
		for (int i = 0; i < 3; i++) {
			vecdb_filter *f;
			ck_assert_int_eq(vecdb_filter_parse(sel[i], &f),
			    VECDB_OK);
			double r = recall(db, "f", pts, N, f, 0);
			ck_assert_msg(r >= 0.95, "pass %d filter %d: recall "
			    "%.4f", pass, i, r);
			vecdb_filter_free(f);
		}
	}
	free(pts);
	vecdb_close(db);
}
END_TEST

START_TEST(index_can_be_dropped_rebuilt_and_compacted)
{
	vecdb *db = open_indexed(tu_dir);
	float *pts = load(db, "d", VECDB_EUCLIDEAN, 3000);
	vecdb_collection_stats st;
	char path[4200];
	int has;

	ck_assert_int_eq(vecdb_index_sync(db, 60000), VECDB_OK);
	ck_assert_int_eq(vecdb_index_has(db, "d", &has), VECDB_OK);
	ck_assert_int_eq(has, 1);
	ck_assert_int_eq(vecdb_index_delete(db, "d"), VECDB_OK);
	ck_assert_int_eq(vecdb_index_sync(db, 60000), VECDB_OK);
	ck_assert_int_eq(vecdb_index_has(db, "d", &has), VECDB_OK);
	ck_assert_int_eq(has, 0);
	ck_assert_int_eq(vecdb_collection_stats_get(db, "d", &st), VECDB_OK);
	ck_assert_uint_eq(st.indexed_count, 0);
	ck_assert_uint_eq(st.memory_bytes, 0);
	ck_assert(finds_itself(db, "d", 5, pts + 5 * DIM)); /* exact now */
	vecdb_close(db);
	/* Stays off across a restart, with no checkpoint left. */
	snprintf(path, sizeof(path), "%s/index/d.hnsw", tu_dir);
	ck_assert_int_ne(access(path, F_OK), 0);
	db = open_indexed(tu_dir);
	ck_assert_int_eq(vecdb_index_has(db, "d", &has), VECDB_OK);
	ck_assert_int_eq(has, 0);
	/* Deletes leave marked nodes; a rebuild (compact) drops them. */
	ck_assert_int_eq(vecdb_index_rebuild(db, "d"), VECDB_OK);
	ck_assert_int_eq(vecdb_index_sync(db, 60000), VECDB_OK);
	vecdb_id ids[1000];
	for (int i = 0; i < 1000; i++)
		ids[i] = vecdb_id_num((uint64_t) i);
	ck_assert_int_eq(vecdb_delete(db, "d", ids, 1000, NULL), VECDB_OK);
	ck_assert_int_eq(vecdb_compact(db, "d"), VECDB_OK);
	ck_assert_int_eq(vecdb_index_sync(db, 60000), VECDB_OK);
	ck_assert_int_eq(vecdb_collection_stats_get(db, "d", &st), VECDB_OK);
	ck_assert_uint_eq(st.indexed_count, 2000);
	ck_assert(finds_itself(db, "d", 2500, pts + 2500 * DIM));
	ck_assert(!finds_itself(db, "d", 10, pts + 10 * DIM));
	ck_assert_int_eq(vecdb_index_rebuild(db, "none"), VECDB_ENOTFOUND);
	free(pts);
	vecdb_close(db);
}
END_TEST

START_TEST(batch_search_on_an_indexed_collection_equals_single_searches)
{
	vecdb *db = open_indexed(tu_dir);
	float *pts = load(db, "b", VECDB_COSINE, 3000);
	vecdb_search_params sp[3];
	vecdb_records **all, *one;
	vecdb_filter *f;
	uint64_t seed = 5;
	float q[3][DIM];

	ck_assert_int_eq(vecdb_index_sync(db, 60000), VECDB_OK);
	ck_assert_int_eq(vecdb_filter_parse("{\"must\":[{\"key\":\"g\","
	    "\"range\":{\"lt\":500}}]}", &f), VECDB_OK);
	memset(sp, 0, sizeof(sp));
	for (int i = 0; i < 3; i++) {
		tu_clustered_query(&seed, pts, 3000, DIM, q[i]);
		sp[i].vector = q[i];
		sp[i].dim = DIM;
		sp[i].limit = 5 + (uint32_t) i;
		sp[i].offset = (uint32_t) i;
	}
	sp[1].filter = f;
	sp[2].exact = 1;
	ck_assert_int_eq(vecdb_search_batch(db, "b", sp, 3, &all), VECDB_OK);
	for (int i = 0; i < 3; i++) {
		ck_assert_int_eq(vecdb_search(db, "b", &sp[i], &one), VECDB_OK);
		ck_assert_uint_eq(all[i]->count, one->count);
		for (size_t j = 0; j < one->count; j++)
			ck_assert_uint_eq(all[i]->items[j].id.num,
			    one->items[j].id.num);
		vecdb_records_free(one);
	}
	vecdb_records_free_array(all, 3);
	sp[0].dim = DIM - 1;
	ck_assert_int_eq(vecdb_search_batch(db, "b", sp, 3, &all), VECDB_EDIM);
	vecdb_filter_free(f);
	free(pts);
	vecdb_close(db);
}
END_TEST

START_TEST(recommend_on_an_indexed_collection_matches_exact)
{
	vecdb *db = open_indexed(tu_dir);
	float *pts = load(db, "r", VECDB_EUCLIDEAN, 3000);
	vecdb_id pos[2] = { vecdb_id_num(5), vecdb_id_num(9) };
	vecdb_recommend_params rp;
	vecdb_search_params sp = { 0 };
	vecdb_records *got, *want;
	float q[DIM];
	size_t j = 0, same = 0;

	ck_assert_int_eq(vecdb_index_sync(db, 60000), VECDB_OK);
	memset(&rp, 0, sizeof(rp));
	rp.positive = pos;
	rp.n_positive = 2;
	rp.limit = 10;
	rp.ef_search = 256;
	ck_assert_int_eq(vecdb_recommend(db, "r", &rp, &got), VECDB_OK);
	/* The exact answer: search avg(positive), drop the examples. */
	for (int d = 0; d < DIM; d++)
		q[d] = (pts[5 * DIM + d] + pts[9 * DIM + d]) / 2;
	sp.vector = q;
	sp.dim = DIM;
	sp.limit = 12;
	sp.exact = 1;
	ck_assert_int_eq(vecdb_search(db, "r", &sp, &want), VECDB_OK);
	ck_assert_uint_eq(got->count, 10);
	for (size_t i = 0; i < want->count && j < 10; i++) {
		uint64_t id = want->items[i].id.num;
		if (id == 5 || id == 9)
			continue;
		for (size_t g = 0; g < got->count; g++)
			same += got->items[g].id.num == id;
		j++;
	}
	for (size_t g = 0; g < got->count; g++)
		ck_assert(got->items[g].id.num != 5 && got->items[g].id.num != 9);
	ck_assert_msg(same >= 9, "recommend shares %zu of 10 with exact", same);
	vecdb_records_free(got);
	vecdb_records_free(want);
	free(pts);
	vecdb_close(db);
}
END_TEST

/*
 * A child writes batches and reports each acknowledged one; the parent
 * SIGKILLs it while the indexer is busy, reopens, and every acknowledged
 * point must be found by search (through the reloaded or rebuilt index
 * plus the WAL tail).
 */
START_TEST(kill_during_indexing_loses_nothing_from_search)
{
	float *pts = tu_clustered(11, 20000, DIM);
	int fds[2];
	pid_t pid;
	uint32_t acked = 0, b;

	ck_assert_int_eq(pipe(fds), 0);
	if ((pid = fork()) == 0) {
		vecdb_options o;
		vecdb *db;
		vecdb_point p[500];
		close(fds[0]);
		vecdb_options_init(&o);
		o.full_scan_threshold = 0;
		o.checkpoint_interval_s = 1;
		if (vecdb_open(tu_dir, &o, &db) != VECDB_OK)
			_exit(2);
		tu_create(db, "k", DIM, VECDB_EUCLIDEAN);
		for (b = 0; b < 40; b++) {
			for (uint32_t i = 0; i < 500; i++)
				p[i] = (vecdb_point) { vecdb_id_num(b * 500 + i),
					pts + (size_t) (b * 500 + i) * DIM, DIM,
					NULL };
			if (vecdb_upsert(db, "k", p, 500) != VECDB_OK)
				_exit(3);
			if (write(fds[1], &b, sizeof(b)) != sizeof(b))
				_exit(4);
		}
		pause();
		_exit(0);
	}
	close(fds[1]);
	/* Kill after about half the batches, mid-indexing. */
	while (acked < 20 && read(fds[0], &b, sizeof(b)) == sizeof(b))
		acked = b + 1;
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	while (read(fds[0], &b, sizeof(b)) == sizeof(b))
		acked = b + 1;
	close(fds[0]);
	ck_assert_uint_ge(acked, 20);

	vecdb *db = open_indexed(tu_dir);
	for (uint32_t i = 0; i < acked * 500; i += 3)
		ck_assert_msg(finds_itself(db, "k", i, pts + (size_t) i * DIM),
		    "point %u lost from search", i);
	ck_assert_int_eq(vecdb_index_sync(db, 120000), VECDB_OK);
	for (uint32_t i = 1; i < acked * 500; i += 3)
		ck_assert(finds_itself(db, "k", i, pts + (size_t) i * DIM));
	vecdb_close(db);
	free(pts);
}
END_TEST

/* Each test opens its own database (with its own options) in tu_dir. */
static void
dir_setup(void)
{
	tu_dir = tu_subdir();
}

static void
dir_teardown(void)
{
	free(tu_dir);
	tu_dir = NULL;
}

/* The per-TCase temp tree (removed by the parent) and a dir per test. */
static void
add_dir_fixture(TCase *tc)
{
	tcase_add_unchecked_fixture(tc, tu_base_setup, tu_base_teardown);
	tcase_add_checked_fixture(tc, dir_setup, dir_teardown);
}

static Suite *
index_suite(void)
{
	Suite *s = suite_create("index");
	TCase *tc;

	tc = tcase_create("recall");
	tcase_set_timeout(tc, 600);
	add_dir_fixture(tc);
	tcase_add_test(tc, recall_clears_095_for_every_metric_at_the_default_ef);
	tcase_add_test(tc, filtered_recall_holds_at_10_1_and_01_percent);
	suite_add_tcase(s, tc);
	tc = tcase_create("consistency");
	tcase_set_timeout(tc, 300);
	add_dir_fixture(tc);
	tcase_add_test(tc, writes_are_found_before_and_after_indexing_and_deletes_never);
	tcase_add_test(tc, checkpoints_reload_and_a_corrupt_one_is_rebuilt);
	tcase_add_test(tc, index_can_be_dropped_rebuilt_and_compacted);
	tcase_add_test(tc, batch_search_on_an_indexed_collection_equals_single_searches);
	tcase_add_test(tc, recommend_on_an_indexed_collection_matches_exact);
	tcase_add_test(tc, kill_during_indexing_loses_nothing_from_search);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	return tu_run(index_suite());
}
