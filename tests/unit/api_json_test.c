/*
 * api_json_test.c: the REST API's JSON text (api_json_text.c): integers
 * above INT64_MAX in and out exactly, everything else as jansson reads
 * and writes it; and the field checks of request bodies.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api_impl.h"
#include "testutil.h"

/* Parse s with api_json_loadb (failing the test on error). */
static json_t *
load(const char *s)
{
	json_error_t e;
	json_t *j = api_json_loadb(s, strlen(s), JSON_REJECT_DUPLICATES, &e);

	ck_assert_msg(j != NULL, "'%s': %s", s, e.text);
	return j;
}

/* api_json_dumps compact, compared with want. */
static void
dumps_is(const json_t *j, const char *want)
{
	char *s = api_json_dumps(j, JSON_COMPACT);

	ck_assert_ptr_nonnull(s);
	ck_assert_str_eq(s, want);
	free(s);
}

/* The u64 at path[i] of array a. */
static uint64_t
u64_at(const json_t *a, size_t i)
{
	uint64_t v = 0;

	ck_assert_msg(api_json_get_u64(json_array_get(a, i), &v), "[%zu] is "
	    "not an unsigned integer", i);
	return v;
}

START_TEST(integers_above_int64_max_read_and_print_exactly)
{
	static const char text[] = "[18446744073709551615,9223372036854775808,"
	    "9223372036854775807,-9223372036854775808,0,1.5,12345678901234567890]";
	json_t *j = load(text);

	ck_assert_uint_eq(u64_at(j, 0), UINT64_MAX);
	ck_assert_uint_eq(u64_at(j, 1), 9223372036854775808ULL);
	ck_assert(json_is_integer(json_array_get(j, 2)));
	ck_assert_uint_eq(u64_at(j, 2), INT64_MAX);
	ck_assert(json_is_integer(json_array_get(j, 3)));
	ck_assert_int_eq(json_integer_value(json_array_get(j, 3)), INT64_MIN);
	ck_assert(api_json_is_big(json_array_get(j, 0)));
	ck_assert(!api_json_is_big(json_array_get(j, 2)));
	ck_assert_uint_eq(u64_at(j, 6), 12345678901234567890ULL);
	dumps_is(j, text);
	json_decref(j);
}
END_TEST

START_TEST(made_numbers_print_bare)
{
	json_t *j = json_pack("{s:o, s:o, s:o}", "a", api_json_uint(UINT64_MAX),
	    "b", api_json_uint(7), "c", api_json_uint(1ULL << 63));

	ck_assert(json_is_integer(json_object_get(j, "b")));
	dumps_is(j, "{\"a\":18446744073709551615,\"b\":7,"
	    "\"c\":9223372036854775808}");
	json_decref(j);
}
END_TEST

START_TEST(strings_and_keys_are_left_alone)
{
	static const char text[] = "{\"18446744073709551615\":"
	    "\"18446744073709551615\",\"q\":\"x\\\"18446744073709551615\\\"\","
	    "\"e\":\"\\\\u000018446744073709551615\",\"n\":18446744073709551615}";
	json_t *j = load(text);

	ck_assert(json_is_string(json_object_get(j, "18446744073709551615")));
	ck_assert(!api_json_is_big(json_object_get(j, "q")));
	ck_assert_str_eq(json_string_value(json_object_get(j, "e")),
	    "\\u000018446744073709551615");
	ck_assert(api_json_is_big(json_object_get(j, "n")));
	dumps_is(j, text);
	json_decref(j);
}
END_TEST

/* Parse text with api_json_loadb expecting an error; its text. */
static void
load_fails(const char *text, const char *msg_part, json_error_t *e)
{
	json_t *j = api_json_loadb(text, strlen(text), 0, e);

	ck_assert_msg(j == NULL, "'%s' parsed", text);
	ck_assert_msg(strstr(e->text, msg_part) != NULL, "'%s': '%s', "
	    "expected '%s'", text, e->text, msg_part);
}

START_TEST(what_jansson_refuses_stays_refused)
{
	json_error_t e;

	load_fails("[18446744073709551616]", "too big", &e);
	load_fails("[-9223372036854775809]", "too big", &e);
	load_fails("[018446744073709551615]", "", &e);
	/* a client cannot forge the marker: \u0000 is refused as before */
	load_fails("[\"\\u000018446744073709551615\", 18446744073709551615]",
	    "\\u0000", &e);
	load_fails("{\"a\": \"\\u0000\"}", "\\u0000", &e);
}
END_TEST

START_TEST(errors_are_placed_in_the_text_sent)
{
	/* the same text with a 20-byte literal jansson reads itself */
	static const char big[] = "{\"a\": 18446744073709551615,\n"
	    "\"b\": [18446744073709551615, 9223372036854775808], \"c\": tru}";
	static const char same[] = "{\"a\": 1.000000000000000000,\n"
	    "\"b\": [1.000000000000000000, 1.00000000000000000], \"c\": tru}";
	json_error_t e1, e2;
	json_t *j = json_loadb(same, strlen(same), 0, &e2);

	ck_assert_ptr_null(j);
	load_fails(big, "", &e1);
	ck_assert_str_eq(e1.text, e2.text);
	ck_assert_int_eq(e1.line, e2.line);
	ck_assert_int_eq(e1.column, e2.column);
	ck_assert_int_eq(e1.position, e2.position);
}
END_TEST

/*
 * After a raw NUL jansson places "end of file expected" on the last byte
 * of the next token: with a big number, the closing quote its marker
 * added, past the end of what the client sent (fuzz_json_text found it).
 */
START_TEST(errors_inside_a_marked_number_stay_in_the_text)
{
	static const char big[] = "0\0" "18446744073709551615\x05";
	static const char same[] = "0\0" "1.000000000000000000\x05";
	json_error_t e1, e2;

	ck_assert_ptr_null(api_json_loadb(big, sizeof(big) - 1,
	    JSON_DECODE_ANY, &e1));
	ck_assert_ptr_null(json_loadb(same, sizeof(same) - 1, JSON_DECODE_ANY,
	    &e2));
	ck_assert_int_le(e1.position, (int) sizeof(big) - 1);
	ck_assert_int_eq(e1.position, e2.position);
	ck_assert_int_eq(e1.column, e2.column);
}
END_TEST

START_TEST(random_numbers_round_trip)
{
	uint64_t seed = 0xb16b00b5ULL;
	char text[64];

	for (int i = 0; i < 2000; i++) {
		uint64_t v = tu_rand(&seed) | (i % 2 ? 1ULL << 63 : 0);
		json_t *j;
		char *s;

		snprintf(text, sizeof(text), "[%llu]", (unsigned long long) v);
		j = load(text);
		ck_assert_uint_eq(u64_at(j, 0), v);
		s = api_json_dumps(j, JSON_COMPACT);
		ck_assert_str_eq(s, text);
		free(s);
		json_decref(j);
	}
}
END_TEST

START_TEST(signed_places_refuse_big_integers)
{
	json_t *j = load("{\"must\": [{\"key\": \"n\", \"match\": {\"value\": "
	    "18446744073709551615}}]}");

	ck_assert_int_eq(api_json_check_int64(j, "filter"), VECDB_EINVAL);
	ck_assert_ptr_nonnull(strstr(vecdb_errmsg(), "18446744073709551615"));
	json_decref(j);
	j = load("{\"must\": [{\"key\": \"n\", \"match\": {\"value\": "
	    "9223372036854775807}}]}");
	ck_assert_int_eq(api_json_check_int64(j, "filter"), VECDB_OK);
	json_decref(j);
}
END_TEST

START_TEST(check_keys_names_the_first_unknown_field)
{
	static const char *const keys[] = { "vector", "filter", NULL };
	json_t *j = load("{\"vector\": [1], \"consistency\": \"any\", "
	    "\"write_concern\": 1, \"allow_partial\": true}");

	ck_assert_int_eq(api_check_keys(j, keys, NULL), VECDB_OK);
	ck_assert_int_eq(api_check_keys(j, keys, "searches[0]"),
	    VECDB_EINVAL);
	ck_assert_str_eq(vecdb_errmsg(),
	    "unknown field \"searches[0].consistency\"");
	ck_assert_int_eq(api_check_keys(j, keys, ""), VECDB_EINVAL);
	ck_assert_str_eq(vecdb_errmsg(), "unknown field \"consistency\"");
	json_decref(j);
	j = load("{\"vector\": [1], \"fliter\": {}, \"limt\": 3}");
	ck_assert_int_eq(api_check_keys(j, keys, NULL), VECDB_EINVAL);
	ck_assert_str_eq(vecdb_errmsg(), "unknown field \"fliter\"");
	json_decref(j);
	j = load("{}");
	ck_assert_int_eq(api_check_keys(j, keys, "params"), VECDB_OK);
	json_decref(j);
}
END_TEST

/* ===== A body's top-level "vector" (api_json_loadb_body) ===== */

/*
 * The floats of body's "vector" the fast way and the plain way (through
 * api_vector_from_json both times): the same bits, or the same error.
 * @return 1 when the fast way marked it (it read the vector itself).
 */
static int
vector_same(const char *body)
{
	json_error_t e1, e2;
	json_t *fast = api_json_loadb_body(body, strlen(body),
	    JSON_REJECT_DUPLICATES, &e1);
	json_t *plain = api_json_loadb(body, strlen(body),
	    JSON_REJECT_DUPLICATES, &e2);
	float *v1 = NULL, *v2 = NULL;
	uint32_t d1 = 0, d2 = 0;
	int rv1, rv2, marked;

	ck_assert_msg((fast == NULL) == (plain == NULL), "'%s'", body);
	if (fast == NULL) {
		ck_assert_str_eq(e1.text, e2.text);
		ck_assert_int_eq(e1.line, e2.line);
		ck_assert_int_eq(e1.column, e2.column);
		ck_assert_int_eq(e1.position, e2.position);
		return 0;
	}
	marked = json_is_string(json_object_get(fast, "vector"));
	rv1 = api_vector_from_json(json_object_get(fast, "vector"), "vector",
	    &v1, &d1);
	rv2 = api_vector_from_json(json_object_get(plain, "vector"), "vector",
	    &v2, &d2);
	ck_assert_int_eq(rv1, rv2);
	if (rv1 == VECDB_OK) {
		ck_assert_uint_eq(d1, d2);
		ck_assert_msg(memcmp(v1, v2, d1 * sizeof(float)) == 0, "'%s': "
		    "the floats differ", body);
	}
	vdb_free(v1);
	vdb_free(v2);
	json_decref(fast);
	json_decref(plain);
	return marked;
}

START_TEST(body_vectors_read_as_jansson_reads_them)
{
	static const char *const nums[] = { "0", "-0", "0.0", "-0.0", "1",
		"-1", "0.5", "-0.25", "3.14159265358979", "1e3", "1E-3",
		"2.5e+10", "1e22", "1e23", "1e-22", "1e-23", "123456789012345",
		"1234567890123456", "9007199254740993", "0.1", "0.30000000001",
		"1.00000000000000000001", "4.9e-324", "1e-400", "3.4028234e38",
		"3.4028236e38", "1e39", "1e308", "1e309", "-1e309",
		"18446744073709551615", "9223372036854775807",
		"0.000000000000000000000000000001", "123.456e-7", "01", "1.",
		".5", "+1", "1e", "1e+", "-", "--1", "0x10", "NaN", "true",
		"\"1\"", "[1]", "null", "1 2", "1,", "" };
	uint64_t seed = 0x5eedf00dULL;
	char body[512];
	int marked = 0;

	for (size_t i = 0; i < sizeof(nums) / sizeof(nums[0]); i++) {
		snprintf(body, sizeof(body), "{\"limit\": 3, \"vector\": "
		    "[0.5, %s, 2]}", nums[i]);
		marked += vector_same(body);
		snprintf(body, sizeof(body), "{\"vector\":[%s]}", nums[i]);
		marked += vector_same(body);
	}
	ck_assert_int_ge(marked, 40);
	for (int i = 0; i < 20000; i++) {
		uint64_t r = tu_rand(&seed);
		double x = (double) (int64_t) tu_rand(&seed) /
		    (double) (1ULL << (r % 64));
		switch (r % 5) {
		case 0:
			snprintf(body, sizeof(body), "{\"vector\":[%.6f]}", x);
			break;
		case 1:
			snprintf(body, sizeof(body), "{\"vector\":[%.17g]}", x);
			break;
		case 2:
			snprintf(body, sizeof(body), "{\"vector\":[%.9g]}",
			    (double) (float) x);
			break;
		case 3:
			snprintf(body, sizeof(body), "{\"vector\":[%lde%d]}",
			    (long) (r >> 20) % 100000000, (int) (r >> 8) % 60 -
			    30);
			break;
		default:
			snprintf(body, sizeof(body), "{\"vector\":[%lld]}",
			    (long long) ((int64_t) r >> (r % 63)));
		}
		vector_same(body);
	}
}
END_TEST

START_TEST(body_vectors_only_where_the_plain_path_agrees)
{
	static const char *const bodies[] = {
		/* read here: the marker stands for the array */
		"{\"vector\": [1, 2, 3]}",
		" {\"limit\":1,\"filter\":{\"a\":[1,{\"vector\":[9]}]},"
		    "\"vector\" : [ 1 ,2 , 3 ] , \"x\": 18446744073709551615}",
		/* the plain path: errors, other places, other shapes */
		"{\"vector\": [1, 2, 3], \"vector\": [4]}",
		"{\"vector\": [1, 2, 3], \"a\": tru}",
		"{\"vector\": [1, 2,\n 3}",
		"{\"vector\": []}",
		"{\"vector\": {\"a\": 1}}",
		"{\"vector\": [1, 2, 3]",
		"{\"a\": {\"vector\": [1]}}",
		"{\"vec\\u0074or\": [1]}",
		"[{\"vector\": [1]}]",
		"{\"vector\": [1, \"\\u0000\"]}",
		"{\"vector\": [1, 18446744073709551615]}",
		"{\"vector\": [1e39]}",
	};
	json_error_t e;
	uint64_t x = 0;
	json_t *j;

	ck_assert_int_eq(vector_same(bodies[0]), 1);
	ck_assert_int_eq(vector_same(bodies[1]), 1);
	for (size_t i = 2; i < sizeof(bodies) / sizeof(bodies[0]); i++)
		ck_assert_msg(vector_same(bodies[i]) == 0, "'%s' was read "
		    "the fast way", bodies[i]);
	/* the rest of a marked body is jansson's, big integers and all */
	j = api_json_loadb_body(bodies[1], strlen(bodies[1]), 0, &e);
	ck_assert_ptr_nonnull(j);
	ck_assert(api_json_get_u64(json_object_get(j, "x"), &x));
	ck_assert_uint_eq(x, 18446744073709551615ULL);
	json_decref(j);
}
END_TEST

static Suite *
api_json_suite(void)
{
	Suite *s = suite_create("api_json");
	TCase *tc = tcase_create("big integers");

	tcase_add_test(tc, integers_above_int64_max_read_and_print_exactly);
	tcase_add_test(tc, made_numbers_print_bare);
	tcase_add_test(tc, strings_and_keys_are_left_alone);
	tcase_add_test(tc, what_jansson_refuses_stays_refused);
	tcase_add_test(tc, errors_are_placed_in_the_text_sent);
	tcase_add_test(tc, errors_inside_a_marked_number_stay_in_the_text);
	tcase_add_test(tc, random_numbers_round_trip);
	tcase_add_test(tc, signed_places_refuse_big_integers);
	suite_add_tcase(s, tc);
	tc = tcase_create("body vectors");
	tcase_add_test(tc, body_vectors_read_as_jansson_reads_them);
	tcase_add_test(tc, body_vectors_only_where_the_plain_path_agrees);
	suite_add_tcase(s, tc);
	tc = tcase_create("fields");
	tcase_add_test(tc, check_keys_names_the_first_unknown_field);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	return tu_run(api_json_suite());
}
