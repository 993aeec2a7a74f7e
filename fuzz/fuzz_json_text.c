/*
 * fuzz_json_text.c: api_json_text.c, the pre-pass every REST body goes
 * through (api_json_loadb: integers above INT64_MAX marked, then jansson)
 * and the printer of every response (api_json_dumps: marks back to bare
 * numbers); vecdbctl reads the server's answers with them too.
 *
 * Beyond not crashing: what loads prints, prints what loads again, and
 * prints the same the second time (a response a client cannot read back
 * is a bug); the helpers that read marked numbers (api_json_get_u64,
 * api_json_is_big, api_json_check_int64) walk the result; and an error's
 * position stays inside the text the client sent. api_json_loadb_body,
 * which reads a top-level "vector" itself, must agree with the plain path
 * on every text: the same error at the same place, or the same floats
 * bit for bit. A value stored as a payload is (its reals printed in
 * their fewest digits by vdb_json_reals_shortest) loads back the same,
 * and prints as it is through api_json_raw.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api_json_text.h"
#include "fuzz.h"
#include "vdb.h"

/* api_http.c reads bodies and prints responses with these (and any
 * value, not only objects, as vecdbctl reads answers) */
#define LOAD_FLAGS (JSON_REJECT_DUPLICATES | JSON_DECODE_ANY)
#define DUMP_FLAGS (JSON_COMPACT | JSON_ENCODE_ANY | JSON_REAL_PRECISION(9))

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void) argc;
	(void) argv;
	fz_init();
	return 0;
}

/* Read every value as the API's field readers would. */
static void
walk(const json_t *j, int depth)
{
	const char *key;
	uint64_t u;
	json_t *v;
	size_t i;

	(void) api_json_get_u64(j, &u);
	(void) api_json_is_big(j);
	if (depth > 8)
		return;
	if (json_is_array(j))
		json_array_foreach(j, i, v)
			walk(v, depth + 1);
	if (json_is_object(j))
		json_object_foreach((json_t *) j, key, v)
			walk(v, depth + 1);
}

/* Fail loudly: a property of the round trip does not hold. */
static void
broken(const char *what, const char *text)
{
	fprintf(stderr, "fuzz_json_text: %s\n  text: %s\n", what, text);
	abort();
}

/* api_json_loadb_body against api_json_loadb on the same text. */
static void
body_same(const char *d, size_t n)
{
	json_error_t e1, e2;
	json_t *fast = api_json_loadb_body(d, n, LOAD_FLAGS, &e1);
	json_t *plain = api_json_loadb(d, n, LOAD_FLAGS, &e2);
	json_t *pv;
	float *v = NULL;
	uint32_t dim = 0;

	if ((fast == NULL) != (plain == NULL))
		broken("the body fast path and the plain one disagree", "");
	if (fast == NULL) {
		if (strcmp(e1.text, e2.text) != 0 || e1.position !=
		    e2.position || e1.line != e2.line || e1.column != e2.column)
			broken("the body fast path errs elsewhere", e1.text);
		return;
	}
	if (api_json_get_floats(json_object_get(fast, "vector"), &v, &dim) ==
	    1) {
		pv = json_object_get(plain, "vector");
		if (!json_is_array(pv) || json_array_size(pv) != dim)
			broken("a fast vector of another length", "");
		for (uint32_t i = 0; i < dim; i++) {
			float f = (float) json_number_value(json_array_get(pv,
			    i));
			if (!json_is_number(json_array_get(pv, i)) ||
			    memcmp(&f, &v[i], sizeof(f)) != 0)
				broken("a fast vector float differs", "");
		}
		vdb_free(v);
	}
	json_decref(fast);
	json_decref(plain);
}

/* The text a value is stored as: reals shortened, the same values, and
 * printed back verbatim inside an answer. */
static void
stored_prints_as_is(const char *d, size_t n)
{
	json_t *j = json_loadb(d, n, JSON_DECODE_ANY, NULL), *back, *a;
	char *s, *out, *want;
	size_t len;

	if (j == NULL)
		return;
	if ((s = json_dumps(j, JSON_COMPACT | JSON_ENCODE_ANY)) == NULL)
		broken("a loaded value does not print", "");
	len = strlen(s);
	if (vdb_json_reals_shortest(s) > len || strlen(s) > len)
		broken("shortened reals grew the text", s);
	back = json_loads(s, JSON_DECODE_ANY, NULL);
	if (back == NULL || !json_equal(back, j))
		broken("shortened reals changed a value", s);
	a = json_pack("[o]", api_json_raw(s));
	out = a != NULL ? api_json_dumps(a, DUMP_FLAGS) : NULL;
	if ((want = malloc(strlen(s) + 3)) == NULL)
		abort();
	sprintf(want, "[%s]", s);
	if (out == NULL || strcmp(out, want) != 0)
		broken("a stored text does not print as it is", s);
	free(want);
	free(out);
	json_decref(a);
	json_decref(back);
	free(s);
	json_decref(j);
}

int
LLVMFuzzerTestOneInput(const uint8_t *d, size_t n)
{
	json_error_t err;
	json_t *j, *j2;
	char *s, *s2;

	body_same((const char *) d, n);
	stored_prints_as_is((const char *) d, n);
	if ((j = api_json_loadb((const char *) d, n, LOAD_FLAGS, &err)) ==
	    NULL) {
		if (err.position < -1 || err.position > (int) n)
			broken("an error position outside the text", err.text);
		return 0;
	}
	walk(j, 0);
	(void) api_json_check_int64(j, "fuzz");
	if ((s = api_json_dumps(j, DUMP_FLAGS)) == NULL)
		broken("a loaded value does not print", "");
	if ((j2 = api_json_loadb(s, strlen(s), LOAD_FLAGS, &err)) == NULL)
		broken("a printed value does not load", s);
	if ((s2 = api_json_dumps(j2, DUMP_FLAGS)) == NULL ||
	    strcmp(s, s2) != 0)
		broken("a value prints differently once reloaded", s);
	free(s2);
	free(s);
	json_decref(j2);
	json_decref(j);
	return 0;
}
