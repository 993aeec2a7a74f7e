/*
 * sparse_points_test.c: points that carry named sparse vectors, through
 * the engine (vecdb_write): stored normalized, read back with the
 * vector, set, kept and removed one by one by updates, replaced whole by
 * upserts; bad input refused whole; kept across a reopen, a snapshot and
 * a replica's replay of the WAL.
 */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "storage_impl.h"
#include "storage_repl.h"
#include "testutil.h"
#include "vdb.h"

#define DIM 3

static const float V[DIM] = { 0.5f, -1, 2 };

/* Collection "h": a dense 3-d vector and sparse "text" (idf), "tags". */
static void
create_h(vecdb *db)
{
	vecdb_collection_config c;

	vecdb_collection_config_init(&c, "h", DIM, VECDB_COSINE);
	c.n_sparse = 2;
	snprintf(c.sparse[0].name, sizeof(c.sparse[0].name), "text");
	c.sparse[0].modifier = VECDB_SPARSE_IDF;
	snprintf(c.sparse[1].name, sizeof(c.sparse[1].name), "tags");
	ck_assert_int_eq(vecdb_collection_create(db, &c), VECDB_OK);
}

/* Write point id with vector V (NULL in an update: keep it) and the n
 * sparse vectors sv. */
static int
write1(vecdb *db, vecdb_write_op op, uint64_t id, int with_vector,
    const vecdb_sparse_vector *sv, size_t n)
{
	vecdb_point p = { vecdb_id_num(id), with_vector ? V : NULL, DIM,
		NULL };
	vecdb_point_sparse ps = { sv, n, NULL, 0 };

	return vecdb_write(db, "h", op, &p, &ps, 1, 0);
}

/* The sparse vector of point id named name (NULL if it has none). */
static const vecdb_sparse_record *
sparse_of(const vecdb_record *r, const char *name)
{
	for (size_t i = 0; i < r->n_sparse; i++)
		if (strcmp(r->sparse[i].name, name) == 0)
			return &r->sparse[i];
	return NULL;
}

static vecdb_record *
get1(vecdb *db, uint64_t id)
{
	vecdb_id i = vecdb_id_num(id);
	vecdb_record *r;

	ck_assert_int_eq(vecdb_get(db, "h", &i, &r), VECDB_OK);
	return r;
}

static void
expect_pairs(const vecdb_sparse_record *s, uint32_t n, const uint32_t *idx,
    const float *val)
{
	ck_assert_ptr_nonnull(s);
	ck_assert_uint_eq(s->n, n);
	for (uint32_t i = 0; i < n; i++) {
		ck_assert_uint_eq(s->indices[i], idx[i]);
		ck_assert_float_eq(s->values[i], val[i]);
	}
}

static const uint32_t I1[] = { 42, 7, 1000 };
static const float F1[] = { 1.5f, 0.25f, -2 };
static const uint32_t I1S[] = { 7, 42, 1000 };   /* sorted */
static const float F1S[] = { 0.25f, 1.5f, -2 };
static const uint32_t I2[] = { 3 };
static const float F2[] = { 9 };

/* Point 1: text {7: .25, 42: 1.5, 1000: -2} and tags {3: 9}. */
static void
write_p1(vecdb *db)
{
	vecdb_sparse_vector sv[2] = { { "text", I1, F1, 3, 0 },
		{ "tags", I2, F2, 1, 0 } };

	ck_assert_int_eq(write1(db, VECDB_WRITE_UPSERT, 1, 1, sv, 2),
	    VECDB_OK);
}

static void
expect_p1(vecdb *db)
{
	vecdb_record *r = get1(db, 1);

	ck_assert_uint_eq(r->n_sparse, 2);
	/* in the collection's order, indices ascending */
	ck_assert_str_eq(r->sparse[0].name, "text");
	expect_pairs(&r->sparse[0], 3, I1S, F1S);
	expect_pairs(sparse_of(r, "tags"), 1, I2, F2);
	for (int i = 0; i < DIM; i++)
		ck_assert_float_eq(r->vector[i], V[i]);
	vecdb_record_free(r);
}

START_TEST(sparse_vectors_are_stored_and_read_back_sorted)
{
	vecdb_record *r;

	create_h(tu_db);
	write_p1(tu_db);
	expect_p1(tu_db);
	/* a point without any has none; an empty one is kept */
	ck_assert_int_eq(write1(tu_db, VECDB_WRITE_INSERT, 2, 1, NULL, 0),
	    VECDB_OK);
	r = get1(tu_db, 2);
	ck_assert_uint_eq(r->n_sparse, 0);
	vecdb_record_free(r);
	vecdb_sparse_vector empty = { "tags", NULL, NULL, 0, 0 };
	ck_assert_int_eq(write1(tu_db, VECDB_WRITE_UPSERT, 3, 1, &empty, 1),
	    VECDB_OK);
	r = get1(tu_db, 3);
	ck_assert_uint_eq(r->n_sparse, 1);
	ck_assert_str_eq(r->sparse[0].name, "tags");
	ck_assert_uint_eq(r->sparse[0].n, 0);
	vecdb_record_free(r);
}
END_TEST

START_TEST(updates_set_and_remove_one_vector_and_keep_the_others)
{
	vecdb_sparse_vector set = { "tags", I1, F1, 3, 0 };
	vecdb_sparse_vector drop = { "text", NULL, NULL, 0, 1 };
	vecdb_record *r;

	create_h(tu_db);
	write_p1(tu_db);
	/* set tags, keep the vector and text */
	ck_assert_int_eq(write1(tu_db, VECDB_WRITE_UPDATE, 1, 0, &set, 1),
	    VECDB_OK);
	r = get1(tu_db, 1);
	expect_pairs(sparse_of(r, "text"), 3, I1S, F1S);
	expect_pairs(sparse_of(r, "tags"), 3, I1S, F1S);
	ck_assert_float_eq(r->vector[2], V[2]);
	vecdb_record_free(r);
	/* remove text, keep tags */
	ck_assert_int_eq(write1(tu_db, VECDB_WRITE_UPDATE, 1, 0, &drop, 1),
	    VECDB_OK);
	r = get1(tu_db, 1);
	ck_assert_uint_eq(r->n_sparse, 1);
	ck_assert_ptr_null(sparse_of(r, "text"));
	expect_pairs(sparse_of(r, "tags"), 3, I1S, F1S);
	vecdb_record_free(r);
	/* an update with a new dense vector only keeps the sparse ones */
	ck_assert_int_eq(write1(tu_db, VECDB_WRITE_UPDATE, 1, 1, NULL, 0),
	    VECDB_OK);
	r = get1(tu_db, 1);
	expect_pairs(sparse_of(r, "tags"), 3, I1S, F1S);
	vecdb_record_free(r);
	/* an upsert replaces the point whole: none given, none kept */
	ck_assert_int_eq(write1(tu_db, VECDB_WRITE_UPSERT, 1, 1, NULL, 0),
	    VECDB_OK);
	r = get1(tu_db, 1);
	ck_assert_uint_eq(r->n_sparse, 0);
	vecdb_record_free(r);
}
END_TEST

START_TEST(bad_sparse_vectors_are_refused_and_nothing_is_written)
{
	static const uint32_t dup[] = { 4, 9, 4 };
	static const float ok3[] = { 1, 2, 3 };
	const float nan3[] = { 1, NAN, 3 };
	const struct {
		vecdb_sparse_vector sv[2];
		size_t n;
		vecdb_write_op op;
		const char *says;
	} bad[] = {
		{ { { "title", I2, F2, 1, 0 } }, 1, VECDB_WRITE_UPSERT,
		    "collection 'h' has no sparse vector 'title'" },
		{ { { "text", dup, ok3, 3, 0 } }, 1, VECDB_WRITE_UPSERT,
		    "sparse vector 'text': sparse index 4 appears twice" },
		{ { { "text", I1, nan3, 3, 0 } }, 1, VECDB_WRITE_UPSERT,
		    "sparse vector 'text': sparse value at position 1 is not "
		    "a finite number" },
		{ { { "tags", I2, F2, 1, 0 }, { "tags", I2, F2, 1, 0 } }, 2,
		    VECDB_WRITE_UPSERT, "sparse vector 'tags' is given twice" },
		{ { { "tags", NULL, NULL, 0, 1 } }, 1, VECDB_WRITE_UPSERT,
		    "only an update removes a vector" },
		{ { { NULL, I2, F2, 1, 0 } }, 1, VECDB_WRITE_UPSERT,
		    "a sparse vector has no name" },
		{ { { "title", NULL, NULL, 0, 1 } }, 1, VECDB_WRITE_UPDATE,
		    "has no sparse vector 'title'" },
	};

	create_h(tu_db);
	write_p1(tu_db);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int rv = write1(tu_db, bad[i].op, 1, 1, bad[i].sv, bad[i].n);

		ck_assert_int_eq(rv, VECDB_EINVAL);
		ck_assert_msg(strstr(vecdb_errmsg(), bad[i].says) != NULL,
		    "case %zu: '%s' lacks '%s'", i, vecdb_errmsg(),
		    bad[i].says);
		expect_p1(tu_db);
	}
	/* a batch with one bad point writes none of it */
	vecdb_point pts[2] = { { vecdb_id_num(5), V, DIM, NULL },
		{ vecdb_id_num(6), V, DIM, NULL } };
	vecdb_point_sparse ps[2] = { { bad[0].sv, 0, NULL, 0 },
		{ bad[0].sv, 1, NULL, 0 } };
	uint64_t n;

	ck_assert_int_eq(vecdb_write(tu_db, "h", VECDB_WRITE_UPSERT, pts, ps,
	    2, 0), VECDB_EINVAL);
	ck_assert_int_eq(vecdb_count(tu_db, "h", NULL, &n), VECDB_OK);
	ck_assert_uint_eq(n, 1);
	/* and a check only checks */
	ck_assert_int_eq(vecdb_write(tu_db, "h", VECDB_WRITE_UPSERT, pts, ps,
	    2, 1), VECDB_EINVAL);
}
END_TEST

START_TEST(sparse_vectors_survive_reopen_snapshot_and_replication)
{
	vecdb_snapshot_info si;
	char path[4096];
	struct storage_wal_info wi;
	uint8_t *blob;
	size_t len, n;
	uint64_t last;
	int restore;
	char *dir = tu_subdir();
	vecdb *r = tu_open(dir);

	create_h(tu_db);
	write_p1(tu_db);
	/* a replica applying the primary's WAL has them */
	ck_assert_int_eq(storage_wal_read(tu_db, 0, 100000, 1 << 30, &blob,
	    &len, &n, &wi), VECDB_OK);
	ck_assert_int_eq(storage_wal_apply(r, blob, len, &last, &restore),
	    VECDB_OK);
	ck_assert_int_eq(restore, 0);
	vdb_free(blob);
	expect_p1(r);
	vecdb_close(r);
	free(dir);
	/* so does the primary after a reopen */
	vecdb_close(tu_db);
	tu_db = tu_open(tu_dir);
	expect_p1(tu_db);
	/* and a snapshot restored in place of the collection */
	ck_assert_int_eq(vecdb_snapshot_create(tu_db, "h", &si), VECDB_OK);
	ck_assert_int_eq(vecdb_snapshot_path(tu_db, "h", si.name, path,
	    sizeof(path)), VECDB_OK);
	ck_assert_int_eq(vecdb_collection_delete(tu_db, "h"), VECDB_OK);
	ck_assert_int_eq(vecdb_snapshot_restore_file(tu_db, "h", path),
	    VECDB_OK);
	expect_p1(tu_db);
}
END_TEST

/* ===== Search against a reference ===== */

#define NP 400
#define VOC 60

/* The reference's copy: point i's "text" pairs (ascending) and kind. */
static struct {
	int live, has;
	uint32_t n, idx[20];
	float val[20];
} ref[NP];

static int neg_values; /* draw some negative values too */

static void
rand_text(uint64_t *seed, int i)
{
	uint32_t n = (uint32_t) (tu_rand(seed) % 12);

	ref[i].n = 0;
	for (uint32_t ix = 0; ix < VOC && ref[i].n < n; ix++)
		if (tu_rand(seed) % 5 == 0 || ix * 7 % (VOC / 2) == 0) {
			ref[i].idx[ref[i].n] = ix;
			ref[i].val[ref[i].n++] = (float) (1 + tu_rand(seed) %
			    8) / 4 * (neg_values && tu_rand(seed) % 3 == 0 ?
			    -1 : 1);
		}
}

/* Upsert point i with its text vector (or none) and {"odd": i % 2}. */
static void
put_ref(uint64_t *seed, int i, int with_text)
{
	char pay[32];
	vecdb_point p = { vecdb_id_num((uint64_t) i), V, DIM, pay };
	vecdb_sparse_vector sv = { "text", NULL, NULL, 0, 0 };
	vecdb_point_sparse ps = { &sv, with_text ? 1 : 0, NULL, 0 };

	snprintf(pay, sizeof(pay), "{\"odd\": %d}", i % 2);
	if (with_text) {
		rand_text(seed, i);
		sv.indices = ref[i].idx;
		sv.values = ref[i].val;
		sv.n = ref[i].n;
	}
	ck_assert_int_eq(vecdb_write(tu_db, "h", VECDB_WRITE_UPSERT, &p, &ps,
	    1, 0), VECDB_OK);
	ref[i].live = 1;
	ref[i].has = with_text;
}

/* Compare 30 searches (limit 10, offset off; neg: a negative query
 * value) with the reference; the number of them that pruned lists. */
static int
searches_match(uint64_t seed, int odd_only, uint32_t off, int neg)
{
	vecdb_filter *f = NULL;
	int pruned = 0;

	if (odd_only)
		ck_assert_int_eq(vecdb_filter_parse("{\"must\": [{\"key\": "
		    "\"odd\", \"match\": {\"value\": 1}}]}", &f), VECDB_OK);
	for (int q = 0; q < 30; q++) {
		uint32_t qi[4];
		float qv[4] = { 1, neg ? -0.5f : 0.5f, 2, 1 }, w[4];
		struct { int id; float s; } all[NP], t;
		size_t na = 0, N = 0;
		vecdb_sparse_search_params sp = { "text", qi, qv, 4, 10, off,
			f, 0, 0, 0 };
		vecdb_records *r;

		for (int j = 0; j < 4; j++)
			qi[j] = (uint32_t) (j * 13 + tu_rand(&seed) % 13);
		for (int i = 0; i < NP; i++)
			N += ref[i].live && ref[i].has;
		for (int j = 0; j < 4; j++) {
			size_t df = 0;

			for (int i = 0; i < NP; i++)
				for (uint32_t x = 0; ref[i].live && ref[i].has &&
				    x < ref[i].n; x++)
					df += ref[i].idx[x] == qi[j];
			w[j] = (float) (qv[j] * log1p(((double) N -
			    (double) df + 0.5) / ((double) df + 0.5)));
		}
		for (int i = 0; i < NP; i++) {
			float s = 0;
			int shared = 0;

			if (!ref[i].live || !ref[i].has ||
			    (odd_only && i % 2 == 0))
				continue;
			for (int j = 0; j < 4; j++)
				for (uint32_t x = 0; x < ref[i].n; x++)
					if (ref[i].idx[x] == qi[j]) {
						s += w[j] * ref[i].val[x];
						shared = 1;
					}
			if (shared) {
				all[na].id = i;
				all[na++].s = s;
			}
		}
		for (size_t i = 0; i < na; i++)
			for (size_t j = i + 1; j < na; j++)
				if (all[j].s > all[i].s || (all[j].s ==
				    all[i].s && all[j].id < all[i].id)) {
					t = all[i];
					all[i] = all[j];
					all[j] = t;
				}
		ck_assert_int_eq(vecdb_search_sparse(tu_db, "h", &sp, &r),
		    VECDB_OK);
		pruned += storage_last_sparse_pruned() > 0;
		size_t want = na > off ? na - off : 0;

		ck_assert_uint_eq(r->count, want < 10 ? want : 10);
		for (size_t i = 0; i < r->count; i++) {
			ck_assert_uint_eq(r->items[i].id.num, all[off + i].id);
			ck_assert_float_eq_tol(r->items[i].score,
			    all[off + i].s, 1e-5);
		}
		vecdb_records_free(r);
	}
	vecdb_filter_free(f);
	return pruned;
}

START_TEST(sparse_search_ranks_like_a_full_scan)
{
	uint64_t seed = 5;
	int pruned;

	create_h(tu_db);
	for (int i = 0; i < NP; i++)
		put_ref(&seed, i, i % 7 != 0);
	/* MaxScore must have skipped lists in some of them, and still
	 * given the reference's answer */
	ck_assert_int_gt(searches_match(11, 0, 0, 0), 0);
	ck_assert_int_gt(searches_match(12, 1, 0, 0), 0);
	searches_match(13, 0, 5, 0);
	searches_match(17, 0, 0, 1);
	/* after deletes and updates */
	for (int i = 0; i < NP; i += 3) {
		vecdb_id id = vecdb_id_num((uint64_t) i);

		ck_assert_int_eq(vecdb_delete(tu_db, "h", &id, 1, NULL),
		    VECDB_OK);
		ref[i].live = 0;
	}
	for (int i = 1; i < NP; i += 5)
		put_ref(&seed, i, i % 2);
	searches_match(14, 0, 0, 0);
	searches_match(15, 1, 0, 0);
	/* some stored values negative: bounds must hold either way */
	neg_values = 1;
	for (int i = 2; i < NP; i += 4)
		put_ref(&seed, i, 1);
	neg_values = 0;
	searches_match(18, 0, 0, 0);
	searches_match(19, 1, 0, 1);
	/* and after a reopen */
	vecdb_close(tu_db);
	tu_db = tu_open(tu_dir);
	pruned = searches_match(16, 0, 0, 0);
	fprintf(stderr, "sparse_search: %d of 30 searches pruned after "
	    "a reopen\n", pruned);
}
END_TEST

START_TEST(sparse_search_refuses_bad_queries)
{
	uint32_t qi[2] = { 3, 3 };
	float qv[2] = { 1, 1 };
	vecdb_sparse_search_params sp = { "text", qi, qv, 2, 10, 0, NULL, 0,
		0, 0 };
	vecdb_records *r;

	create_h(tu_db);
	ck_assert_int_eq(vecdb_search_sparse(tu_db, "h", &sp, &r),
	    VECDB_EINVAL);
	ck_assert_str_eq(vecdb_errmsg(), "sparse index 3 appears twice");
	qi[1] = 4;
	sp.name = "title";
	ck_assert_int_eq(vecdb_search_sparse(tu_db, "h", &sp, &r),
	    VECDB_EINVAL);
	ck_assert_str_eq(vecdb_errmsg(), "collection 'h' has no sparse "
	    "vector 'title'");
	sp.name = "text";
	sp.limit = 0;
	ck_assert_int_eq(vecdb_search_sparse(tu_db, "h", &sp, &r),
	    VECDB_EINVAL);
	sp.limit = 10;
	ck_assert_int_eq(vecdb_search_sparse(tu_db, "nope", &sp, &r),
	    VECDB_ENOTFOUND);
	/* an empty collection and an empty query find nothing */
	ck_assert_int_eq(vecdb_search_sparse(tu_db, "h", &sp, &r), VECDB_OK);
	ck_assert_uint_eq(r->count, 0);
	vecdb_records_free(r);
	write_p1(tu_db);
	sp.n = 0;
	ck_assert_int_eq(vecdb_search_sparse(tu_db, "h", &sp, &r), VECDB_OK);
	ck_assert_uint_eq(r->count, 0);
	vecdb_records_free(r);
	/* point 1's text holds 7, 42, 1000 (one point: idf ln(1 + 0.5/1.5)) */
	qi[0] = 42;
	qi[1] = 5;
	sp.n = 2;
	sp.with_payload = 1;
	ck_assert_int_eq(vecdb_search_sparse(tu_db, "h", &sp, &r), VECDB_OK);
	ck_assert_uint_eq(r->count, 1);
	ck_assert_uint_eq(r->items[0].id.num, 1);
	ck_assert_float_eq_tol(r->items[0].score, 1.5 * log1p(0.5 / 1.5),
	    1e-6);
	ck_assert_str_eq(r->items[0].payload, "{}");
	vecdb_records_free(r);
}
END_TEST

static Suite *
sparse_points_suite(void)
{
	Suite *s = suite_create("sparse points");
	TCase *tc = tcase_create("points");

	tu_add_db_fixture(tc);
	tcase_add_test(tc, sparse_vectors_are_stored_and_read_back_sorted);
	tcase_add_test(tc,
	    updates_set_and_remove_one_vector_and_keep_the_others);
	tcase_add_test(tc,
	    bad_sparse_vectors_are_refused_and_nothing_is_written);
	tcase_add_test(tc,
	    sparse_vectors_survive_reopen_snapshot_and_replication);
	tcase_add_test(tc, sparse_search_ranks_like_a_full_scan);
	tcase_add_test(tc, sparse_search_refuses_bad_queries);
	tcase_set_timeout(tc, 120);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	return tu_run(sparse_points_suite());
}
