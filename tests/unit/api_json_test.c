/*
 * api_json_test.c: the REST API's JSON text (api_json_text.c): integers
 * above INT64_MAX in and out exactly, everything else as jansson reads
 * and writes it; stored payloads printed as they are, their reals in the
 * fewest digits that keep them; and the field checks of request bodies.
 */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api_impl.h"
#include "vdb.h"
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

/* A raw text prints as it is, inside an answer printed as the REST API
 * prints them (nine digits a real), next to a marked number. */
START_TEST(raw_texts_print_as_they_are)
{
	static const char pl[] = "{\"r\":0.10000000000000001,\"s\":\"q\\\"\\\\"
	    "\\u0001 \xc3\xa9 \xf0\x9f\x98\x80 /\",\"a\":[null,1e300,{}],"
	    "\"k\\\"\":-0.0}";
	char big[2048], want[2200], *s;
	json_t *j;
	size_t n;

	j = json_pack("{s:o, s:o, s:f}", "p", api_json_raw(pl), "id",
	    api_json_uint(UINT64_MAX), "d", 1.23456789012345);
	ck_assert_ptr_nonnull(j);
	s = api_json_dumps(j, JSON_COMPACT | JSON_REAL_PRECISION(9));
	snprintf(want, sizeof(want), "{\"p\":%s,\"id\":18446744073709551615,"
	    "\"d\":1.23456789}", pl);
	ck_assert_str_eq(s, want);
	free(s);
	json_decref(j);

	/* past the stack copy, and in an array of two */
	n = (size_t) snprintf(big, sizeof(big), "{\"t\":\"");
	while (n < 1500)
		n += (size_t) snprintf(big + n, sizeof(big) - n, "\\\\\\\"x");
	snprintf(big + n, sizeof(big) - n, "\"}");
	j = json_pack("[o, o]", api_json_raw(big), api_json_raw("{}"));
	s = api_json_dumps(j, JSON_COMPACT);
	snprintf(want, sizeof(want), "[%s,{}]", big);
	ck_assert_str_eq(s, want);
	free(s);
	json_decref(j);

	/* not UTF-8: no value, as jansson's strings */
	ck_assert_ptr_null(api_json_raw("{\"a\":\"\xff\"}"));
}
END_TEST

/* A tree cut from a payload prints its reals in their shortest digits,
 * whatever precision the answer around it prints with. */
START_TEST(raw_trees_keep_every_digit)
{
	json_t *t = json_pack("{s:f, s:f, s:f, s:i}", "a", 0.1, "b",
	    1.23456789012345, "c", 3.0, "i", 7);
	json_t *j = json_pack("{s:o}", "p", api_json_raw_tree(t));
	char *s = api_json_dumps(j, JSON_COMPACT | JSON_REAL_PRECISION(9));

	ck_assert_str_eq(s, "{\"p\":{\"a\":0.1,\"b\":1.23456789012345,"
	    "\"c\":3.0,\"i\":7}}");
	free(s);
	json_decref(j);
}
END_TEST

/* vdb_json_reals_shortest: reals outside strings, in the fewest digits
 * that read back the same; everything else as it was. */
START_TEST(reals_print_in_their_shortest_digits)
{
	static const struct {
		const char *in, *out;
	} cases[] = {
		{ "{\"a\":0.10000000000000001}", "{\"a\":0.1}" },
		{ "[1.23456789012345,19.990000000000002,3.0,-0.0,1e300]",
		  "[1.23456789012345,19.990000000000002,3.0,-0.0,1e300]" },
		{ "[2.4999999999999999e-7,-1.0000000000000001e-300,12]",
		  "[2.5e-7,-1e-300,12]" },
		/* an integer after a longer real stays as it is */
		{ "[3.4000000000000001e39,1500000000000000,-0,100.01]",
		  "[3.4e39,1500000000000000,-0,100.01]" },
		{ "{\"s\":\"0.10000000000000001\",\"t\":true,\"n\":null}",
		  "{\"s\":\"0.10000000000000001\",\"t\":true,\"n\":null}" },
		{ "{\"s\\\"0.10000000000000001\":[false]}",
		  "{\"s\\\"0.10000000000000001\":[false]}" },
		{ "", "" },
	};
	uint64_t seed = 0x5eed;
	char buf[128];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		snprintf(buf, sizeof(buf), "%s", cases[i].in);
		ck_assert_uint_eq(vdb_json_reals_shortest(buf),
		    strlen(cases[i].out));
		ck_assert_str_eq(buf, cases[i].out);
	}
	/* random doubles as jansson prints them: the same values, in no
	 * more characters, and still reals */
	for (int i = 0; i < 20000; i++) {
		uint64_t bits = tu_rand(&seed);
		double d, back;
		json_t *j;
		char *s;
		size_t n;

		memcpy(&d, &bits, sizeof(d));
		if (!isfinite(d))
			continue;
		if (i % 2)   /* and short decimals, most payloads' reals */
			d = (double) (bits % 100000) / 1000.0;
		j = json_pack("[f]", d);
		s = json_dumps(j, JSON_COMPACT);
		n = strlen(s);
		ck_assert_uint_le(vdb_json_reals_shortest(s), n);
		json_decref(j);
		j = json_loads(s, 0, NULL);
		ck_assert_msg(json_is_real(json_array_get(j, 0)), "%s", s);
		back = json_real_value(json_array_get(j, 0));
		ck_assert_msg(memcmp(&back, &d, sizeof(d)) == 0,
		    "%.17g printed as %s", d, s);
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
	tcase_add_test(tc, raw_texts_print_as_they_are);
	tcase_add_test(tc, raw_trees_keep_every_digit);
	tcase_add_test(tc, reals_print_in_their_shortest_digits);
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
