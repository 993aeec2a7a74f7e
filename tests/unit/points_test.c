/* points_test.c: single-point operations and bad input. */
#include <check.h>
#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

/* The payload of point id in "p", parsed; fails the test if missing. */
static json_t *
payload_of(const vecdb_id *id)
{
	vecdb_record *r;
	json_t *j;

	ck_assert_int_eq(vecdb_get(tu_db, "p", id, &r), VECDB_OK);
	j = json_loads(r->payload, 0, NULL);
	ck_assert_ptr_nonnull(j);
	vecdb_record_free(r);
	return j;
}

START_TEST(insert_then_get_returns_vector_and_payload)
{
	float v[3] = { 0.5f, -1.25f, 3 };
	vecdb_point p = { vecdb_id_num(42), v, 3,
		"{\"name\": \"x\", \"nested\": {\"a\": [1, 2]}}" };
	vecdb_record *r;

	tu_create(tu_db, "p", 3, VECDB_COSINE);
	ck_assert_int_eq(vecdb_insert(tu_db, "p", &p, 1), VECDB_OK);
	ck_assert_int_eq(vecdb_get(tu_db, "p", &p.id, &r), VECDB_OK);
	ck_assert_uint_eq(r->id.num, 42);
	ck_assert_uint_eq(r->dim, 3);
	ck_assert_mem_eq(r->vector, v, sizeof(v));
	ck_assert_str_eq(r->payload, "{\"name\":\"x\",\"nested\":{\"a\":[1,2]}}");
	vecdb_record_free(r);
}
END_TEST

START_TEST(insert_of_existing_id_fails_and_keeps_the_old_point)
{
	float v1[2] = { 1, 1 }, v2[2] = { 2, 2 };
	vecdb_point p = { vecdb_id_num(7), v1, 2, "{\"v\":1}" };
	vecdb_record *r;

	tu_create(tu_db, "p", 2, VECDB_EUCLIDEAN);
	ck_assert_int_eq(vecdb_insert(tu_db, "p", &p, 1), VECDB_OK);
	p.vector = v2;
	p.payload = "{\"v\":2}";
	ck_assert_int_eq(vecdb_insert(tu_db, "p", &p, 1), VECDB_EEXIST);
	ck_assert_str_eq(vecdb_errmsg(), "point 7 already exists");
	ck_assert_int_eq(vecdb_get(tu_db, "p", &p.id, &r), VECDB_OK);
	ck_assert_float_eq(r->vector[0], 1);
	ck_assert_str_eq(r->payload, "{\"v\":1}");
	vecdb_record_free(r);
	/* upsert replaces */
	ck_assert_int_eq(vecdb_upsert(tu_db, "p", &p, 1), VECDB_OK);
	ck_assert_int_eq(vecdb_get(tu_db, "p", &p.id, &r), VECDB_OK);
	ck_assert_float_eq(r->vector[0], 2);
	ck_assert_str_eq(r->payload, "{\"v\":2}");
	vecdb_record_free(r);
}
END_TEST

START_TEST(a_write_check_answers_like_the_write_and_changes_nothing)
{
	float v[2] = { 1, 1 }, bad[3] = { 1, 2, 3 };
	vecdb_point p[2] = { { vecdb_id_num(7), v, 2, "{\"v\":1}" },
		{ vecdb_id_num(8), v, 2, NULL } };
	vecdb_point nid = { { VECDB_ID_NONE, 0, { 0 } }, v, 2, NULL };
	vecdb_stats before, after;
	uint64_t n;

	tu_create(tu_db, "p", 2, VECDB_EUCLIDEAN);
	ck_assert_int_eq(vecdb_insert(tu_db, "p", p, 1), VECDB_OK);
	ck_assert_int_eq(vecdb_stats_get(tu_db, &before), VECDB_OK);
	/* would pass: OK, and nothing is written or logged */
	ck_assert_int_eq(vecdb_write_check(tu_db, "p", VECDB_WRITE_INSERT,
	    &p[1], 1), VECDB_OK);
	ck_assert_int_eq(vecdb_write_check(tu_db, "p", VECDB_WRITE_UPSERT, p,
	    2), VECDB_OK);
	ck_assert_int_eq(vecdb_write_check(tu_db, "p", VECDB_WRITE_INSERT,
	    &nid, 1), VECDB_OK);
	ck_assert_int_eq(nid.id.kind, VECDB_ID_NONE);  /* pts only read */
	/* would fail: the write's own error */
	ck_assert_int_eq(vecdb_write_check(tu_db, "p", VECDB_WRITE_INSERT, p,
	    2), VECDB_EEXIST);
	ck_assert_str_eq(vecdb_errmsg(), "point 0 of 2 (id 7): point 7 "
	    "already exists");
	ck_assert_int_eq(vecdb_write_check(tu_db, "p", VECDB_WRITE_UPDATE,
	    &p[1], 1), VECDB_ENOTFOUND);
	p[1].vector = bad;
	p[1].dim = 3;
	ck_assert_int_eq(vecdb_write_check(tu_db, "p", VECDB_WRITE_UPSERT, p,
	    2), VECDB_EDIM);
	ck_assert_int_eq(vecdb_write_check(tu_db, "nope", VECDB_WRITE_UPSERT,
	    p, 1), VECDB_ENOTFOUND);
	ck_assert_int_eq(vecdb_write_check(tu_db, "p", (vecdb_write_op) 9, p,
	    1), VECDB_EINVAL);
	ck_assert_int_eq(vecdb_stats_get(tu_db, &after), VECDB_OK);
	ck_assert_uint_eq(after.last_seq, before.last_seq);
	ck_assert_int_eq(vecdb_count(tu_db, "p", NULL, &n), VECDB_OK);
	ck_assert_uint_eq(n, 1);
	/* and the writer goes on as before */
	p[1].vector = v;
	p[1].dim = 2;
	ck_assert_int_eq(vecdb_insert(tu_db, "p", &p[1], 1), VECDB_OK);
	ck_assert_int_eq(vecdb_stats_get(tu_db, &after), VECDB_OK);
	ck_assert_uint_eq(after.last_seq, before.last_seq + 1);
}
END_TEST

START_TEST(missing_id_is_assigned_a_v4_uuid)
{
	float v[2] = { 1, 0 };
	vecdb_point p[2] = { { { VECDB_ID_NONE, 0, { 0 } }, v, 2, NULL },
		{ { VECDB_ID_NONE, 0, { 0 } }, v, 2, NULL } };
	vecdb_record *r;

	tu_create(tu_db, "p", 2, VECDB_DOT);
	ck_assert_int_eq(vecdb_upsert(tu_db, "p", p, 2), VECDB_OK);
	ck_assert_int_eq(p[0].id.kind, VECDB_ID_UUID);
	ck_assert_int_eq(p[0].id.uuid[6] >> 4, 4);      /* version 4 */
	ck_assert_int_eq(p[0].id.uuid[8] & 0xc0, 0x80); /* RFC 4122 */
	ck_assert_int_ne(vecdb_id_cmp(&p[0].id, &p[1].id), 0);
	ck_assert_int_eq(vecdb_get(tu_db, "p", &p[1].id, &r), VECDB_OK);
	ck_assert_str_eq(r->payload, "{}");
	vecdb_record_free(r);
}
END_TEST

START_TEST(uuid_and_numeric_ids_never_collide)
{
	float v[1] = { 1 };
	vecdb_point p[2];
	uint64_t n;

	tu_create(tu_db, "p", 1, VECDB_EUCLIDEAN);
	p[0] = (vecdb_point) { vecdb_id_num(1), v, 1, NULL };
	ck_assert_int_eq(vecdb_id_parse("00000000-0000-0000-0000-000000000001",
	    &p[1].id), VECDB_OK);
	p[1].vector = v;
	p[1].dim = 1;
	p[1].payload = NULL;
	ck_assert_int_eq(vecdb_insert(tu_db, "p", p, 2), VECDB_OK);
	ck_assert_int_eq(vecdb_count(tu_db, "p", NULL, &n), VECDB_OK);
	ck_assert_uint_eq(n, 2);
}
END_TEST

START_TEST(update_changes_only_what_it_is_given)
{
	float v1[2] = { 1, 2 }, v2[2] = { 3, 4 };
	vecdb_point p = { vecdb_id_num(5), v1, 2, "{\"a\":1}" };
	vecdb_point u = { vecdb_id_num(5), NULL, 0, "{\"b\":2}" };
	vecdb_record *r;
	json_t *j;

	tu_create(tu_db, "p", 2, VECDB_MANHATTAN);
	ck_assert_int_eq(vecdb_insert(tu_db, "p", &p, 1), VECDB_OK);
	ck_assert_int_eq(vecdb_update(tu_db, "p", &u, 1), VECDB_OK);
	ck_assert_int_eq(vecdb_get(tu_db, "p", &p.id, &r), VECDB_OK);
	ck_assert_mem_eq(r->vector, v1, sizeof(v1)); /* vector kept */
	vecdb_record_free(r);
	j = payload_of(&p.id);
	ck_assert_ptr_null(json_object_get(j, "a")); /* payload replaced */
	ck_assert_int_eq(json_integer_value(json_object_get(j, "b")), 2);
	json_decref(j);
	u.vector = v2;
	u.dim = 2;
	u.payload = NULL;
	ck_assert_int_eq(vecdb_update(tu_db, "p", &u, 1), VECDB_OK);
	ck_assert_int_eq(vecdb_get(tu_db, "p", &p.id, &r), VECDB_OK);
	ck_assert_mem_eq(r->vector, v2, sizeof(v2));
	ck_assert_str_eq(r->payload, "{\"b\":2}"); /* payload kept */
	vecdb_record_free(r);
	u.id = vecdb_id_num(6);
	ck_assert_int_eq(vecdb_update(tu_db, "p", &u, 1), VECDB_ENOTFOUND);
	ck_assert_str_eq(vecdb_errmsg(), "point 6 not found");
}
END_TEST

START_TEST(delete_removes_and_reports_what_existed)
{
	float v[2] = { 1, 2 };
	vecdb_point p = { vecdb_id_num(1), v, 2, NULL };
	vecdb_id ids[2] = { vecdb_id_num(1), vecdb_id_num(2) };
	vecdb_record *r;
	size_t deleted = 99;

	tu_create(tu_db, "p", 2, VECDB_COSINE);
	ck_assert_int_eq(vecdb_insert(tu_db, "p", &p, 1), VECDB_OK);
	ck_assert_int_eq(vecdb_delete(tu_db, "p", ids, 2, &deleted), VECDB_OK);
	ck_assert_uint_eq(deleted, 1);
	ck_assert_int_eq(vecdb_get(tu_db, "p", &p.id, &r), VECDB_ENOTFOUND);
	ck_assert_int_eq(vecdb_delete(tu_db, "p", ids, 2, &deleted), VECDB_OK);
	ck_assert_uint_eq(deleted, 0);
	/* A deleted id can be inserted again. */
	ck_assert_int_eq(vecdb_insert(tu_db, "p", &p, 1), VECDB_OK);
}
END_TEST

START_TEST(bad_points_are_refused_with_specific_errors)
{
	float v3[3] = { 1, 2, 3 }, vnan[2] = { 1, NAN }, vinf[2] = { INFINITY, 0 };
	vecdb_point p = { vecdb_id_num(1), v3, 3, NULL };
	uint64_t n;

	tu_create(tu_db, "p", 2, VECDB_COSINE);
	ck_assert_int_eq(vecdb_insert(tu_db, "p", &p, 1), VECDB_EDIM);
	ck_assert_str_eq(vecdb_errmsg(),
	    "vector has 3 dimensions, collection 'p' expects 2");
	p.vector = vnan;
	p.dim = 2;
	ck_assert_int_eq(vecdb_insert(tu_db, "p", &p, 1), VECDB_EINVAL);
	ck_assert_ptr_nonnull(strstr(vecdb_errmsg(), "not a finite number"));
	p.vector = vinf;
	ck_assert_int_eq(vecdb_upsert(tu_db, "p", &p, 1), VECDB_EINVAL);
	p.vector = v3;
	p.payload = "[1, 2]";
	ck_assert_int_eq(vecdb_insert(tu_db, "p", &p, 1), VECDB_EINVAL);
	ck_assert_str_eq(vecdb_errmsg(), "payload must be a JSON object");
	p.payload = "{\"a\": ";
	ck_assert_int_eq(vecdb_insert(tu_db, "p", &p, 1), VECDB_EINVAL);
	ck_assert_ptr_nonnull(strstr(vecdb_errmsg(), "not valid JSON"));
	p.payload = "{\"a\": 1, \"a\": 2}";
	ck_assert_int_eq(vecdb_insert(tu_db, "p", &p, 1), VECDB_EINVAL);
	/* An object holding 100 nested arrays is 101 levels: refused before
	 * jansson recurses into it; with 99 arrays it is 100: accepted. */
	char deep[512];
	for (int arrays = 100; arrays >= 99; arrays--) {
		size_t n = 0;
		n += (size_t) sprintf(deep + n, "{\"a\":");
		for (int i = 0; i < arrays; i++)
			deep[n++] = '[';
		for (int i = 0; i < arrays; i++)
			deep[n++] = ']';
		strcpy(deep + n, "}");
		p.payload = deep;
		p.vector = v3;
		p.dim = 2;
		p.id = vecdb_id_num(100 + (uint64_t) arrays);
		ck_assert_int_eq(vecdb_insert(tu_db, "p", &p, 1),
		    arrays == 100 ? VECDB_EINVAL : VECDB_OK);
		if (arrays == 100)
			ck_assert_ptr_nonnull(strstr(vecdb_errmsg(),
			    "deeper than 100"));
	}
	ck_assert_int_eq(vecdb_delete(tu_db, "p", &p.id, 1, NULL), VECDB_OK);
	p.id = vecdb_id_num(1);
	p.vector = v3;
	p.dim = 3;
	p.payload = NULL;
	p.vector = NULL;
	ck_assert_int_eq(vecdb_insert(tu_db, "p", &p, 1), VECDB_EINVAL);
	ck_assert_str_eq(vecdb_errmsg(), "point has no vector");
	/* whether a point needs a vector is the collection's to say (one
	 * with only named vectors has no default one) */
	ck_assert_int_eq(vecdb_insert(tu_db, "nope", &p, 1), VECDB_ENOTFOUND);
	p.vector = v3;
	p.dim = 2;
	ck_assert_int_eq(vecdb_insert(tu_db, "nope", &p, 1), VECDB_ENOTFOUND);
	ck_assert_str_eq(vecdb_errmsg(), "collection 'nope' not found");
	ck_assert_int_eq(vecdb_insert(tu_db, "bad name", &p, 1), VECDB_EINVAL);
	ck_assert_int_eq(vecdb_count(tu_db, "p", NULL, &n), VECDB_OK);
	ck_assert_uint_eq(n, 0);
}
END_TEST

START_TEST(vector_types_store_at_their_width)
{
	vecdb_collection_config cfg;
	float v[4] = { 0.1f, 200, 3, 1000 }, u8[4] = { 0, 255, 3, 128 };
	float big[4] = { 1, 1, 1, 70000 }, frac[4] = { 0.5f, 1, 1, 1 };
	vecdb_point p = { vecdb_id_num(1), v, 4, NULL };
	vecdb_collection_stats st;
	vecdb_record *r;

	vecdb_collection_config_init(&cfg, "h", 4, VECDB_EUCLIDEAN);
	cfg.vector_type = VECDB_FLOAT16;
	ck_assert_int_eq(vecdb_collection_create(tu_db, &cfg), VECDB_OK);
	vecdb_collection_config_init(&cfg, "b", 4, VECDB_EUCLIDEAN);
	cfg.vector_type = VECDB_UINT8;
	ck_assert_int_eq(vecdb_collection_create(tu_db, &cfg), VECDB_OK);

	ck_assert_int_eq(vecdb_insert(tu_db, "h", &p, 1), VECDB_OK);
	ck_assert_int_eq(vecdb_get(tu_db, "h", &p.id, &r), VECDB_OK);
	ck_assert(fabsf(r->vector[0] - 0.1f) < 1e-4f);
	ck_assert_float_eq(r->vector[1], 200);
	vecdb_record_free(r);
	ck_assert_int_eq(vecdb_collection_stats_get(tu_db, "h", &st), VECDB_OK);
	ck_assert_uint_eq(st.disk_bytes, 13 + 21 + 8); /* 2 bytes each */
	p.vector = big;
	ck_assert_int_eq(vecdb_upsert(tu_db, "h", &p, 1), VECDB_EINVAL);

	p.vector = u8;
	ck_assert_int_eq(vecdb_insert(tu_db, "b", &p, 1), VECDB_OK);
	ck_assert_int_eq(vecdb_get(tu_db, "b", &p.id, &r), VECDB_OK);
	ck_assert_mem_eq(r->vector, u8, sizeof(u8));
	vecdb_record_free(r);
	ck_assert_int_eq(vecdb_collection_stats_get(tu_db, "b", &st), VECDB_OK);
	ck_assert_uint_eq(st.disk_bytes, 13 + 21 + 4); /* 1 byte each */
	p.vector = frac;
	ck_assert_int_eq(vecdb_upsert(tu_db, "b", &p, 1), VECDB_EINVAL);
	ck_assert_ptr_nonnull(strstr(vecdb_errmsg(), "uint8"));
}
END_TEST

START_TEST(points_survive_reopen)
{
	float v[2] = { 9, 8 };
	vecdb_point p = { vecdb_id_num(3), v, 2, "{\"k\":\"v\"}" };
	vecdb_record *r;

	tu_create(tu_db, "p", 2, VECDB_EUCLIDEAN);
	ck_assert_int_eq(vecdb_insert(tu_db, "p", &p, 1), VECDB_OK);
	vecdb_close(tu_db);
	tu_db = tu_open(tu_dir);
	ck_assert_int_eq(vecdb_get(tu_db, "p", &p.id, &r), VECDB_OK);
	ck_assert_mem_eq(r->vector, v, sizeof(v));
	ck_assert_str_eq(r->payload, "{\"k\":\"v\"}");
	vecdb_record_free(r);
}
END_TEST

static Suite *
points_suite(void)
{
	Suite *s = suite_create("points");
	TCase *tc = tcase_create("single");

	tu_add_db_fixture(tc);
	tcase_add_test(tc, insert_then_get_returns_vector_and_payload);
	tcase_add_test(tc, insert_of_existing_id_fails_and_keeps_the_old_point);
	tcase_add_test(tc, a_write_check_answers_like_the_write_and_changes_nothing);
	tcase_add_test(tc, missing_id_is_assigned_a_v4_uuid);
	tcase_add_test(tc, uuid_and_numeric_ids_never_collide);
	tcase_add_test(tc, update_changes_only_what_it_is_given);
	tcase_add_test(tc, delete_removes_and_reports_what_existed);
	tcase_add_test(tc, vector_types_store_at_their_width);
	tcase_add_test(tc, points_survive_reopen);
	suite_add_tcase(s, tc);
	tc = tcase_create("bad input");
	tu_add_db_fixture(tc);
	tcase_add_test(tc, bad_points_are_refused_with_specific_errors);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	return tu_run(points_suite());
}
