/*
 * search_test.c: exact search for every metric against a naive reference,
 * ordering, filters, offsets, scroll and count.
 */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

#define N 500
#define DIM 13

static float vecs[N][DIM];

/* The reference distance, in double precision. */
static double
ref_distance(vecdb_metric m, const float *a, const float *b)
{
	double dot = 0, na = 0, nb = 0, l2 = 0, l1 = 0;

	for (int i = 0; i < DIM; i++) {
		dot += (double) a[i] * b[i];
		na += (double) a[i] * a[i];
		nb += (double) b[i] * b[i];
		l2 += ((double) a[i] - b[i]) * ((double) a[i] - b[i]);
		l1 += fabs((double) a[i] - b[i]);
	}
	switch (m) {
	case VECDB_COSINE: return 1 - dot / (sqrt(na) * sqrt(nb));
	case VECDB_EUCLIDEAN: return sqrt(l2);
	case VECDB_DOT: return -dot;
	default: return l1;
	}
}

struct ref { double d; uint64_t id; };

/* Sort by distance, then id. */
static int
ref_cmp(const void *a, const void *b)
{
	const struct ref *x = a, *y = b;

	if (x->d != y->d)
		return x->d < y->d ? -1 : 1;
	return x->id < y->id ? -1 : x->id > y->id;
}

/* Fill collection "s" with N seeded points; payload {"i": id, "odd": b}. */
static void
fill(vecdb_metric m)
{
	static vecdb_point p[N];
	static char pay[N][48];
	uint64_t seed = 12345;

	tu_create(tu_db, "s", DIM, m);
	for (int i = 0; i < N; i++) {
		tu_rand_vector(&seed, vecs[i], DIM);
		snprintf(pay[i], sizeof(pay[i]), "{\"i\":%d,\"odd\":%s}", i,
		    i % 2 ? "true" : "false");
		p[i] = (vecdb_point) { vecdb_id_num((uint64_t) i), vecs[i],
			DIM, pay[i] };
	}
	ck_assert_int_eq(vecdb_upsert(tu_db, "s", p, N), VECDB_OK);
}

/* Search with q and compare the top k with the reference. */
static void
check_metric(vecdb_metric m)
{
	vecdb_search_params sp = { 0 };
	struct ref ref[N];
	vecdb_records *res;
	float q[DIM];
	uint64_t seed = 999;

	fill(m);
	for (int t = 0; t < 5; t++) {
		tu_rand_vector(&seed, q, DIM);
		for (int i = 0; i < N; i++)
			ref[i] = (struct ref) { ref_distance(m, q, vecs[i]),
				(uint64_t) i };
		qsort(ref, N, sizeof(ref[0]), ref_cmp);
		sp.vector = q;
		sp.dim = DIM;
		sp.limit = 10;
		ck_assert_int_eq(vecdb_search(tu_db, "s", &sp, &res), VECDB_OK);
		ck_assert_uint_eq(res->count, 10);
		for (int i = 0; i < 10; i++) {
			ck_assert_uint_eq(res->items[i].id.num, ref[i].id);
			ck_assert_msg(fabs(res->items[i].distance - ref[i].d) <=
				1e-4 * (1 + fabs(ref[i].d)),
			    "distance %g vs reference %g",
			    res->items[i].distance, ref[i].d);
			ck_assert_ptr_null(res->items[i].payload);
			ck_assert_ptr_null(res->items[i].vector);
		}
		vecdb_records_free(res);
	}
}

START_TEST(cosine_matches_the_reference) { check_metric(VECDB_COSINE); }
END_TEST
START_TEST(euclidean_matches_the_reference) { check_metric(VECDB_EUCLIDEAN); }
END_TEST
START_TEST(dot_product_matches_the_reference) { check_metric(VECDB_DOT); }
END_TEST
START_TEST(manhattan_matches_the_reference) { check_metric(VECDB_MANHATTAN); }
END_TEST

START_TEST(ties_are_broken_by_id)
{
	float v[2] = { 1, 1 };
	vecdb_point p[4];
	vecdb_search_params sp = { 0 };
	vecdb_records *res;

	tu_create(tu_db, "t", 2, VECDB_EUCLIDEAN);
	uint64_t ids[4] = { 30, 10, 40, 20 };
	for (int i = 0; i < 4; i++)
		p[i] = (vecdb_point) { vecdb_id_num(ids[i]), v, 2, NULL };
	vecdb_id_parse("00000000-0000-4000-8000-000000000000", &p[2].id);
	ck_assert_int_eq(vecdb_upsert(tu_db, "t", p, 4), VECDB_OK);
	sp.vector = v;
	sp.dim = 2;
	sp.limit = 4;
	ck_assert_int_eq(vecdb_search(tu_db, "t", &sp, &res), VECDB_OK);
	ck_assert_uint_eq(res->count, 4);
	ck_assert_uint_eq(res->items[0].id.num, 10);
	ck_assert_uint_eq(res->items[1].id.num, 20);
	ck_assert_uint_eq(res->items[2].id.num, 30);
	ck_assert_int_eq(res->items[3].id.kind, VECDB_ID_UUID);
	vecdb_records_free(res);
}
END_TEST

START_TEST(filter_offset_payload_and_vector_work_together)
{
	vecdb_search_params sp = { 0 };
	vecdb_filter *f;
	vecdb_records *all, *page;
	float q[DIM] = { 0 };

	fill(VECDB_EUCLIDEAN);
	ck_assert_int_eq(vecdb_filter_parse(
	    "{\"must\": [{\"key\": \"odd\", \"match\": {\"value\": true}}],"
	    " \"must_not\": [{\"key\": \"i\", \"range\": {\"lt\": 100}}]}",
	    &f), VECDB_OK);
	sp.vector = q;
	sp.dim = DIM;
	sp.limit = 30;
	sp.filter = f;
	sp.with_payload = 1;
	sp.with_vector = 1;
	ck_assert_int_eq(vecdb_search(tu_db, "s", &sp, &all), VECDB_OK);
	ck_assert_uint_eq(all->count, 30);
	for (size_t i = 0; i < all->count; i++) {
		uint64_t id = all->items[i].id.num;
		char want[48];
		ck_assert(id % 2 == 1 && id >= 100);
		snprintf(want, sizeof(want), "{\"i\":%llu,\"odd\":true}",
		    (unsigned long long) id);
		ck_assert_str_eq(all->items[i].payload, want);
		ck_assert_mem_eq(all->items[i].vector, vecs[id],
		    sizeof(vecs[id]));
		if (i > 0)
			ck_assert(all->items[i - 1].distance <=
			    all->items[i].distance);
	}
	sp.limit = 10;
	sp.offset = 15;
	ck_assert_int_eq(vecdb_search(tu_db, "s", &sp, &page), VECDB_OK);
	ck_assert_uint_eq(page->count, 10);
	for (int i = 0; i < 10; i++)
		ck_assert_uint_eq(page->items[i].id.num,
		    all->items[15 + i].id.num);
	vecdb_records_free(page);
	/* An offset past the end gives an empty list, not an error. */
	sp.offset = 5000;
	ck_assert_int_eq(vecdb_search(tu_db, "s", &sp, &page), VECDB_OK);
	ck_assert_uint_eq(page->count, 0);
	vecdb_records_free(page);
	vecdb_records_free(all);
	vecdb_filter_free(f);
}
END_TEST

START_TEST(bad_queries_are_refused)
{
	vecdb_search_params sp = { 0 };
	vecdb_records *res;
	float q[DIM + 1] = { 0 };

	fill(VECDB_COSINE);
	sp.vector = q;
	sp.dim = DIM + 1;
	sp.limit = 5;
	ck_assert_int_eq(vecdb_search(tu_db, "s", &sp, &res), VECDB_EDIM);
	ck_assert_str_eq(vecdb_errmsg(),
	    "query has 14 dimensions, collection 's' expects 13");
	sp.dim = DIM;
	sp.limit = 0;
	ck_assert_int_eq(vecdb_search(tu_db, "s", &sp, &res), VECDB_EINVAL);
	sp.limit = VECDB_LIMIT_MAX;
	sp.offset = 1;
	ck_assert_int_eq(vecdb_search(tu_db, "s", &sp, &res), VECDB_EINVAL);
	sp.offset = 0;
	sp.limit = 3;
	q[2] = NAN;
	ck_assert_int_eq(vecdb_search(tu_db, "s", &sp, &res), VECDB_EINVAL);
	q[2] = 0;
	ck_assert_int_eq(vecdb_search(tu_db, "none", &sp, &res),
	    VECDB_ENOTFOUND);
	sp.vector = NULL;
	ck_assert_int_eq(vecdb_search(tu_db, "s", &sp, &res), VECDB_EINVAL);
}
END_TEST

START_TEST(zero_vectors_are_orthogonal_under_cosine)
{
	float z[2] = { 0, 0 }, v[2] = { 1, 0 };
	vecdb_point p = { vecdb_id_num(1), z, 2, NULL };
	vecdb_search_params sp = { 0 };
	vecdb_records *res;

	tu_create(tu_db, "z", 2, VECDB_COSINE);
	ck_assert_int_eq(vecdb_upsert(tu_db, "z", &p, 1), VECDB_OK);
	sp.vector = v;
	sp.dim = 2;
	sp.limit = 1;
	ck_assert_int_eq(vecdb_search(tu_db, "z", &sp, &res), VECDB_OK);
	ck_assert_float_eq(res->items[0].distance, 1.0f);
	vecdb_records_free(res);
}
END_TEST

START_TEST(scroll_visits_every_matching_point_once_in_id_order)
{
	vecdb_filter *f;
	vecdb_records *page;
	vecdb_id next = { VECDB_ID_NONE, 0, { 0 } };
	int seen[N] = { 0 }, total = 0, pages = 0;
	uint64_t last = 0, count;

	fill(VECDB_DOT);
	ck_assert_int_eq(vecdb_filter_parse(
	    "{\"should\": [{\"key\": \"odd\", \"match\": {\"value\": false}},"
	    " {\"key\": \"i\", \"range\": {\"gte\": 490}}]}", &f), VECDB_OK);
	for (;;) {
		ck_assert_int_eq(vecdb_scroll(tu_db, "s", &next, 37, f, 1, 0,
		    &page), VECDB_OK);
		pages++;
		for (size_t i = 0; i < page->count; i++) {
			uint64_t id = page->items[i].id.num;
			ck_assert(id % 2 == 0 || id >= 490);
			ck_assert(total == 0 || id > last);
			ck_assert_int_eq(seen[id]++, 0);
			ck_assert_ptr_nonnull(page->items[i].payload);
			ck_assert_ptr_null(page->items[i].vector);
			last = id;
			total++;
		}
		if (!page->has_next) {
			vecdb_records_free(page);
			break;
		}
		next = page->next;
		vecdb_records_free(page);
	}
	ck_assert_int_eq(total, 250 + 5);
	ck_assert_int_eq(pages, (255 + 36) / 37);
	ck_assert_int_eq(vecdb_count(tu_db, "s", f, &count), VECDB_OK);
	ck_assert_uint_eq(count, 255);
	ck_assert_int_eq(vecdb_count(tu_db, "s", NULL, &count), VECDB_OK);
	ck_assert_uint_eq(count, N);
	ck_assert_int_eq(vecdb_scroll(tu_db, "s", NULL, 0, NULL, 0, 0, &page),
	    VECDB_EINVAL);
	vecdb_filter_free(f);
}
END_TEST

START_TEST(float16_and_uint8_collections_search_exactly)
{
	vecdb_collection_config cfg;
	float a[3] = { 1, 2, 3 }, b[3] = { 10, 20, 30 }, q[3] = { 9, 19, 29 };
	vecdb_point p[2] = { { vecdb_id_num(1), a, 3, NULL },
		{ vecdb_id_num(2), b, 3, NULL } };
	vecdb_search_params sp = { q, 3, 2, 0, NULL, 0, 0, 0, 0, 0, 0, 0,
		NULL };
	vecdb_records *res;

	for (int t = VECDB_FLOAT16; t <= VECDB_UINT8; t++) {
		char name[8];
		snprintf(name, sizeof(name), "t%d", t);
		vecdb_collection_config_init(&cfg, name, 3, VECDB_MANHATTAN);
		cfg.vector_type = (vecdb_vtype) t;
		ck_assert_int_eq(vecdb_collection_create(tu_db, &cfg), VECDB_OK);
		ck_assert_int_eq(vecdb_upsert(tu_db, name, p, 2), VECDB_OK);
		ck_assert_int_eq(vecdb_search(tu_db, name, &sp, &res), VECDB_OK);
		ck_assert_uint_eq(res->items[0].id.num, 2);
		ck_assert_float_eq(res->items[0].distance, 3);
		ck_assert_float_eq(res->items[1].distance, 8 + 17 + 26);
		vecdb_records_free(res);
	}
}
END_TEST

static Suite *
search_suite(void)
{
	Suite *s = suite_create("search");
	TCase *tc;

	tc = tcase_create("metrics");
	tu_add_db_fixture(tc);
	tcase_add_test(tc, cosine_matches_the_reference);
	tcase_add_test(tc, euclidean_matches_the_reference);
	tcase_add_test(tc, dot_product_matches_the_reference);
	tcase_add_test(tc, manhattan_matches_the_reference);
	tcase_add_test(tc, ties_are_broken_by_id);
	tcase_add_test(tc, zero_vectors_are_orthogonal_under_cosine);
	tcase_add_test(tc, float16_and_uint8_collections_search_exactly);
	suite_add_tcase(s, tc);
	tc = tcase_create("parameters");
	tu_add_db_fixture(tc);
	tcase_add_test(tc, filter_offset_payload_and_vector_work_together);
	tcase_add_test(tc, bad_queries_are_refused);
	suite_add_tcase(s, tc);
	tc = tcase_create("scroll and count");
	tu_add_db_fixture(tc);
	tcase_add_test(tc, scroll_visits_every_matching_point_once_in_id_order);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	return tu_run(search_suite());
}
