/*
 * pindex_test.c: payload indexes: every filtered search, count and scroll
 * gives the same answer with and without them, the planner uses them when
 * a term is selective, and writes keep them exact.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "storage_impl.h"
#include "testutil.h"

#define N 2000
#define DIM 4

static const char *const kinds[] = { "cafe", "bar", "shop", "park", "museum",
	"hotel", "bank", "school", "zoo", "gym" };

static void index_all(vecdb *db, const char *name);

/*
 * Create collection name and write N points whose payload has every field
 * type; with index_first, the payload indexes exist before the writes.
 */
static void
fill_opt(vecdb *db, const char *name, int index_first)
{
	static float v[N][DIM];
	static char pay[N][200];
	static vecdb_point p[N];
	uint64_t seed = 99;

	tu_create(db, name, DIM, VECDB_EUCLIDEAN);
	if (index_first)
		index_all(db, name);
	for (int i = 0; i < N; i++) {
		tu_rand_vector(&seed, v[i], DIM);
		snprintf(pay[i], sizeof(pay[i]),
		    "{\"kind\":\"%s\",\"n\":%d,\"price\":%.2f,\"open\":%s,"
		    "\"loc\":{\"lat\":%.4f,\"lon\":%.4f},\"tags\":[\"t%d\",\"u%d\"],"
		    "\"shop\":{\"rank\":%d}}", kinds[i % 10], i, i * 0.25,
		    i % 3 ? "true" : "false", 48.0 + (i % 100) * 0.01,
		    2.0 + (i / 100) * 0.01, i % 7, i % 50, i % 200);
		p[i] = (vecdb_point) { vecdb_id_num((uint64_t) i), v[i], DIM,
			pay[i] };
	}
	ck_assert_int_eq(vecdb_upsert(db, name, p, N), VECDB_OK);
}

/* fill_opt without indexes. */
static void
fill(vecdb *db, const char *name)
{
	fill_opt(db, name, 0);
}

/* Index the fields of a collection that fill() writes. */
static void
index_all(vecdb *db, const char *name)
{
	ck_assert_int_eq(vecdb_payload_index_create(db, name, "kind",
	    VECDB_FIELD_KEYWORD), VECDB_OK);
	ck_assert_int_eq(vecdb_payload_index_create(db, name, "n",
	    VECDB_FIELD_INTEGER), VECDB_OK);
	ck_assert_int_eq(vecdb_payload_index_create(db, name, "price",
	    VECDB_FIELD_FLOAT), VECDB_OK);
	ck_assert_int_eq(vecdb_payload_index_create(db, name, "open",
	    VECDB_FIELD_BOOL), VECDB_OK);
	ck_assert_int_eq(vecdb_payload_index_create(db, name, "loc",
	    VECDB_FIELD_GEO), VECDB_OK);
	ck_assert_int_eq(vecdb_payload_index_create(db, name, "tags",
	    VECDB_FIELD_KEYWORD), VECDB_OK);
	ck_assert_int_eq(vecdb_payload_index_create(db, name, "shop.rank",
	    VECDB_FIELD_INTEGER), VECDB_OK);
}

/* Filters that exercise every term kind; `planned` says if one is
 * selective enough (< N/2) for the planner to take the index. */
static const struct {
	const char *json;
	int planned;
} filters[] = {
	{ "{\"must\":[{\"key\":\"kind\",\"match\":{\"value\":\"zoo\"}}]}", 1 },
	{ "{\"must\":[{\"key\":\"kind\",\"match\":{\"any\":[\"zoo\",\"gym\"]}},"
	  "{\"key\":\"open\",\"match\":{\"value\":true}}]}", 1 },
	{ "{\"must\":[{\"key\":\"n\",\"range\":{\"gte\":100,\"lt\":150}}]}", 1 },
	{ "{\"must\":[{\"key\":\"n\",\"range\":{\"gt\":1990}}]}", 1 },
	{ "{\"must\":[{\"key\":\"n\",\"match\":{\"value\":77}}]}", 1 },
	{ "{\"must\":[{\"key\":\"price\",\"range\":{\"lte\":10.5}}]}", 1 },
	{ "{\"must\":[{\"key\":\"price\",\"range\":{\"gt\":100.25,\"lte\":101}}]}", 1 },
	{ "{\"must\":[{\"key\":\"tags\",\"match\":{\"value\":\"u7\"}}]}", 1 },
	{ "{\"must\":[{\"key\":\"shop.rank\",\"match\":{\"any\":[3,4]}}]}", 1 },
	{ "{\"must\":[{\"key\":\"loc\",\"geo_radius\":{\"center\":{\"lat\":48.0,"
	  "\"lon\":2.0},\"radius\":2000}}]}", 1 },
	/* not selective: the planner keeps scanning */
	{ "{\"must\":[{\"key\":\"open\",\"match\":{\"value\":true}}]}", 0 },
	/* no usable term: must_not / should only, or a type mismatch */
	{ "{\"must_not\":[{\"key\":\"kind\",\"match\":{\"value\":\"zoo\"}}]}", 0 },
	{ "{\"should\":[{\"key\":\"kind\",\"match\":{\"value\":\"zoo\"}}]}", 0 },
	{ "{\"must\":[{\"key\":\"kind\",\"match\":{\"value\":5}}]}", 0 },
	/* the selective term wins over the broad one */
	{ "{\"must\":[{\"key\":\"open\",\"match\":{\"value\":false}},"
	  "{\"key\":\"n\",\"range\":{\"lt\":40}}],"
	  "\"must_not\":[{\"key\":\"kind\",\"match\":{\"value\":\"cafe\"}}]}", 1 },
};
#define NFILTERS (sizeof(filters) / sizeof(filters[0]))

/* Search, count and full scroll of coll with f, as one string. */
static char *
answers(vecdb *db, const char *coll, const vecdb_filter *f, int *planned)
{
	float q[DIM] = { 0.1f, -0.2f, 0.3f, 0 };
	vecdb_search_params sp = { q, DIM, 25, 3, f, 0, 0, 0, 0, 0, 0, 0,
		NULL };
	vecdb_records *r;
	uint64_t count;
	size_t len = 0, cap = 1 << 16;
	char *s = malloc(cap);

	ck_assert_int_eq(vecdb_search(db, coll, &sp, &r), VECDB_OK);
	*planned = storage_last_scan_planned(NULL);
	for (size_t i = 0; i < r->count; i++)
		len += (size_t) snprintf(s + len, cap - len, "%llu:%a ",
		    (unsigned long long) r->items[i].id.num,
		    (double) r->items[i].distance);
	vecdb_records_free(r);
	ck_assert_int_eq(vecdb_count(db, coll, f, &count), VECDB_OK);
	ck_assert_int_eq(storage_last_scan_planned(NULL), *planned);
	len += (size_t) snprintf(s + len, cap - len, "| %llu |",
	    (unsigned long long) count);
	ck_assert_int_eq(vecdb_scroll(db, coll, NULL, 100000, f, 0, 0, &r),
	    VECDB_OK);
	for (size_t i = 0; i < r->count && len < cap - 32; i++)
		len += (size_t) snprintf(s + len, cap - len, " %llu",
		    (unsigned long long) r->items[i].id.num);
	vecdb_records_free(r);
	return s;
}

START_TEST(indexed_and_scanned_answers_are_identical)
{
	fill(tu_db, "plain");
	fill(tu_db, "ix");
	index_all(tu_db, "ix");
	for (size_t i = 0; i < NFILTERS; i++) {
		vecdb_filter *f;
		int p1, p2;
		ck_assert_int_eq(vecdb_filter_parse(filters[i].json, &f),
		    VECDB_OK);
		char *a = answers(tu_db, "plain", f, &p1);
		char *b = answers(tu_db, "ix", f, &p2);
		ck_assert_msg(strcmp(a, b) == 0, "filter %zu differs", i);
		ck_assert_int_eq(p1, 0);
		ck_assert_msg(p2 == filters[i].planned, "filter %zu: planned "
		    "%d, expected %d", i, p2, filters[i].planned);
		free(a);
		free(b);
		vecdb_filter_free(f);
	}
}
END_TEST

START_TEST(indexes_made_before_the_points_answer_the_same)
{
	vecdb_payload_index_info *l;
	vecdb_filter *f;
	size_t n;
	int p1, p2;

	/* Here the entries come from the writes, not from a backfill. */
	fill(tu_db, "plain");
	fill_opt(tu_db, "ix", 1);
	for (size_t i = 0; i < NFILTERS; i++) {
		ck_assert_int_eq(vecdb_filter_parse(filters[i].json, &f),
		    VECDB_OK);
		char *a = answers(tu_db, "plain", f, &p1);
		char *b = answers(tu_db, "ix", f, &p2);
		ck_assert_str_eq(a, b);
		ck_assert_int_eq(p2, filters[i].planned);
		free(a);
		free(b);
		vecdb_filter_free(f);
	}
	/* Dropping the collection drops its indexes: a new one has none. */
	ck_assert_int_eq(vecdb_collection_delete(tu_db, "ix"), VECDB_OK);
	fill(tu_db, "ix");
	ck_assert_int_eq(vecdb_payload_index_list(tu_db, "ix", &l, &n),
	    VECDB_OK);
	ck_assert_uint_eq(n, 0);
	free(l);
}
END_TEST

/* The ids found by a count-style scroll with filter json on coll. */
static uint64_t
count_of(const char *coll, const char *json, int want_planned)
{
	vecdb_filter *f;
	uint64_t n;

	ck_assert_int_eq(vecdb_filter_parse(json, &f), VECDB_OK);
	ck_assert_int_eq(vecdb_count(tu_db, coll, f, &n), VECDB_OK);
	ck_assert_int_eq(storage_last_scan_planned(NULL), want_planned);
	vecdb_filter_free(f);
	return n;
}

START_TEST(writes_keep_entries_exact)
{
	float v[DIM] = { 0 };
	vecdb_point p = { vecdb_id_num(5), v, DIM, "{\"kind\":\"zoo\"}" };
	vecdb_point u = { vecdb_id_num(5), NULL, 0, "{\"kind\":\"gym\"}" };
	vecdb_id id = vecdb_id_num(6);
	const char *zoo = "{\"must\":[{\"key\":\"kind\",\"match\":"
			  "{\"value\":\"zoo\"}}]}";
	const char *gym = "{\"must\":[{\"key\":\"kind\",\"match\":"
			  "{\"value\":\"gym\"}}]}";

	fill(tu_db, "ix");
	index_all(tu_db, "ix");
	ck_assert_uint_eq(count_of("ix", zoo, 1), 200);
	/* point 5 was a "hotel"; now a zoo */
	ck_assert_int_eq(vecdb_upsert(tu_db, "ix", &p, 1), VECDB_OK);
	ck_assert_uint_eq(count_of("ix", zoo, 1), 201);
	/* a payload update moves it to gym */
	ck_assert_int_eq(vecdb_update(tu_db, "ix", &u, 1), VECDB_OK);
	ck_assert_uint_eq(count_of("ix", zoo, 1), 200);
	ck_assert_uint_eq(count_of("ix", gym, 1), 201);
	/* a vector-only update keeps its entries */
	u.payload = NULL;
	u.vector = v;
	u.dim = DIM;
	ck_assert_int_eq(vecdb_update(tu_db, "ix", &u, 1), VECDB_OK);
	ck_assert_uint_eq(count_of("ix", gym, 1), 201);
	/* point 6 is a "bank"; deleting point 5 removes its gym entry */
	ck_assert_int_eq(vecdb_delete(tu_db, "ix", &u.id, 1, NULL), VECDB_OK);
	ck_assert_int_eq(vecdb_delete(tu_db, "ix", &id, 1, NULL), VECDB_OK);
	ck_assert_uint_eq(count_of("ix", gym, 1), 200);
	vecdb_payload_index_info *l;
	size_t n;
	ck_assert_int_eq(vecdb_payload_index_list(tu_db, "ix", &l, &n),
	    VECDB_OK);
	ck_assert_uint_eq(n, 7);
	for (size_t i = 0; i < n; i++) {
		if (strcmp(l[i].field, "kind") == 0)
			ck_assert_uint_eq(l[i].entries, N - 2);
		if (strcmp(l[i].field, "tags") == 0) /* two values a point */
			ck_assert_uint_eq(l[i].entries, 2 * (N - 2));
	}
	free(l);
}
END_TEST

START_TEST(index_definitions_are_checked_and_managed)
{
	vecdb_payload_index_info *l;
	size_t n;

	fill(tu_db, "ix");
	ck_assert_int_eq(vecdb_payload_index_create(tu_db, "ix", "kind",
	    VECDB_FIELD_KEYWORD), VECDB_OK);
	ck_assert_int_eq(vecdb_payload_index_create(tu_db, "ix", "kind",
	    VECDB_FIELD_KEYWORD), VECDB_EEXIST);
	ck_assert_int_eq(vecdb_payload_index_create(tu_db, "ix", "",
	    VECDB_FIELD_KEYWORD), VECDB_EINVAL);
	ck_assert_int_eq(vecdb_payload_index_create(tu_db, "ix", "a..b",
	    VECDB_FIELD_KEYWORD), VECDB_EINVAL);
	ck_assert_int_eq(vecdb_payload_index_create(tu_db, "ix", "x",
	    (vecdb_field_schema) 9), VECDB_EINVAL);
	ck_assert_int_eq(vecdb_payload_index_create(tu_db, "nope", "x",
	    VECDB_FIELD_BOOL), VECDB_ENOTFOUND);
	ck_assert_int_eq(vecdb_payload_index_delete(tu_db, "ix", "missing"),
	    VECDB_ENOTFOUND);
	/* survives reopen */
	vecdb_close(tu_db);
	tu_db = tu_open(tu_dir);
	ck_assert_uint_eq(count_of("ix", "{\"must\":[{\"key\":\"kind\","
	    "\"match\":{\"value\":\"bar\"}}]}", 1), 200);
	ck_assert_int_eq(vecdb_payload_index_delete(tu_db, "ix", "kind"),
	    VECDB_OK);
	ck_assert_uint_eq(count_of("ix", "{\"must\":[{\"key\":\"kind\","
	    "\"match\":{\"value\":\"bar\"}}]}", 0), 200);
	ck_assert_int_eq(vecdb_payload_index_list(tu_db, "ix", &l, &n),
	    VECDB_OK);
	ck_assert_uint_eq(n, 0);
	free(l);
}
END_TEST

START_TEST(restore_rebuilds_the_indexes_of_the_replaced_collection)
{
	vecdb_snapshot_info si;
	vecdb_payload_index_info *l;
	size_t n;
	const char *bar = "{\"must\":[{\"key\":\"kind\",\"match\":"
			  "{\"value\":\"bar\"}}]}";

	fill(tu_db, "ix");
	ck_assert_int_eq(vecdb_snapshot_create(tu_db, "ix", &si), VECDB_OK);
	ck_assert_int_eq(vecdb_payload_index_create(tu_db, "ix", "kind",
	    VECDB_FIELD_KEYWORD), VECDB_OK);
	ck_assert_int_eq(vecdb_snapshot_restore(tu_db, "ix", si.name),
	    VECDB_OK);
	ck_assert_uint_eq(count_of("ix", bar, 1), 200);
	ck_assert_int_eq(vecdb_payload_index_list(tu_db, "ix", &l, &n),
	    VECDB_OK);
	ck_assert_uint_eq(n, 1);
	ck_assert_uint_eq(l[0].entries, N);
	free(l);
}
END_TEST

static Suite *
pindex_suite(void)
{
	Suite *s = suite_create("pindex");
	TCase *tc = tcase_create("answers");

	tcase_set_timeout(tc, 120);
	tu_add_db_fixture(tc);
	tcase_add_test(tc, indexed_and_scanned_answers_are_identical);
	tcase_add_test(tc, indexes_made_before_the_points_answer_the_same);
	suite_add_tcase(s, tc);
	tc = tcase_create("maintenance");
	tu_add_db_fixture(tc);
	tcase_add_test(tc, writes_keep_entries_exact);
	tcase_add_test(tc, index_definitions_are_checked_and_managed);
	tcase_add_test(tc, restore_rebuilds_the_indexes_of_the_replaced_collection);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	return tu_run(pindex_suite());
}
