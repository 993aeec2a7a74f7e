/* filter_test.c: payload filters: grammar, semantics, errors and limits. */
#include <check.h>
#include <jansson.h>
#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "filter.h"
#include "vdb.h"

/* A copy of @p s with ' turned into ", so the JSON below stays readable. */
static char *
dq(const char *s)
{
	char *d = strdup(s), *p;

	ck_assert_ptr_nonnull(d);
	for (p = d; *p != '\0'; p++)
		if (*p == '\'')
			*p = '"';
	return d;
}

/* Compile @p filter (which must be valid); is @p payload a match? */
static int
matches(const char *filter, const char *payload)
{
	char *fs = dq(filter), *ps = dq(payload);
	vecdb_filter *f = NULL;
	json_error_t jerr;
	json_t *p;
	int rv, m;

	rv = vecdb_filter_parse(fs, &f);
	ck_assert_msg(rv == VECDB_OK, "filter %s: %s", fs, vecdb_errmsg());
	p = json_loads(ps, 0, &jerr);
	ck_assert_msg(p != NULL, "payload %s: %s", ps, jerr.text);
	m = filter_match(f, p);
	json_decref(p);
	vecdb_filter_free(f);
	free(fs);
	free(ps);
	return m;
}

#define MATCH(f, p) ck_assert_msg(matches(f, p) == 1, \
	"expected %s to match %s", f, p)
#define NO_MATCH(f, p) ck_assert_msg(matches(f, p) == 0, \
	"expected %s not to match %s", f, p)

/* @p filter is refused with EINVAL and a message holding @p where. */
static void
refused(const char *filter, const char *where)
{
	char *fs = dq(filter);
	vecdb_filter *f = NULL;
	int rv;

	vdb_err_clear();
	rv = vecdb_filter_parse(fs, &f);
	ck_assert_msg(rv == VECDB_EINVAL, "%s: got %d, not EINVAL", fs, rv);
	ck_assert_ptr_null(f);
	ck_assert_msg(vecdb_errmsg()[0] != '\0', "%s: no message", fs);
	ck_assert_msg(strstr(vecdb_errmsg(), where) != NULL,
	    "%s: message '%s' lacks '%s'", fs, vecdb_errmsg(), where);
	free(fs);
}

/* A growable string for building large filters. */
struct sbuf {
	char *s;    /* NUL-terminated */
	size_t len; /* strlen(s) */
	size_t cap; /* bytes allocated */
};

/* Append @p t to @p b. */
static void
sbuf_add(struct sbuf *b, const char *t)
{
	size_t n = strlen(t);

	if (b->len + n + 1 > b->cap) {
		b->cap = (b->len + n + 1) * 2;
		b->s = realloc(b->s, b->cap);
		ck_assert_ptr_nonnull(b->s);
	}
	memcpy(b->s + b->len, t, n + 1);
	b->len += n;
}

/* {"must": [n copies of a match on key a]}, or wrapped as a condition. */
static char *
filter_of_conds(size_t n)
{
	struct sbuf b = { NULL, 0, 0 };
	size_t i;

	sbuf_add(&b, "{'must':[");
	for (i = 0; i < n; i++)
		sbuf_add(&b, i ? ",{'key':'a','match':{'value':1}}" :
		    "{'key':'a','match':{'value':1}}");
	sbuf_add(&b, "]}");
	return b.s;
}

/* A filter whose innermost of @p depth filters requires a == 1. */
static char *
filter_of_depth(int depth)
{
	struct sbuf b = { NULL, 0, 0 };
	int i;

	for (i = 0; i < depth; i++)
		sbuf_add(&b, "{'must':[");
	sbuf_add(&b, "{'key':'a','match':{'value':1}}");
	for (i = 0; i < depth; i++)
		sbuf_add(&b, "]}");
	return b.s;
}

/* ===== match value ===== */

START_TEST(match_string_matches_equal_string)
{
	MATCH("{'must':[{'key':'c','match':{'value':'red'}}]}",
	    "{'c':'red'}");
	NO_MATCH("{'must':[{'key':'c','match':{'value':'red'}}]}",
	    "{'c':'blue'}");
	NO_MATCH("{'must':[{'key':'c','match':{'value':'red'}}]}",
	    "{'c':'Red'}");
	NO_MATCH("{'must':[{'key':'c','match':{'value':'red'}}]}",
	    "{'c':'redd'}");
}
END_TEST

START_TEST(match_integer_matches_equal_integer)
{
	MATCH("{'must':[{'key':'n','match':{'value':42}}]}", "{'n':42}");
	NO_MATCH("{'must':[{'key':'n','match':{'value':42}}]}", "{'n':43}");
	MATCH("{'must':[{'key':'n','match':{'value':-7}}]}", "{'n':-7}");
}
END_TEST

START_TEST(match_bool_matches_equal_bool)
{
	MATCH("{'must':[{'key':'b','match':{'value':true}}]}", "{'b':true}");
	NO_MATCH("{'must':[{'key':'b','match':{'value':true}}]}",
	    "{'b':false}");
	MATCH("{'must':[{'key':'b','match':{'value':false}}]}",
	    "{'b':false}");
}
END_TEST

/* ===== match any / except ===== */

START_TEST(match_any_matches_one_of_the_list)
{
	const char *f =
	    "{'must':[{'key':'c','match':{'any':['red',3,true]}}]}";

	MATCH(f, "{'c':'red'}");
	MATCH(f, "{'c':3}");
	MATCH(f, "{'c':true}");
	NO_MATCH(f, "{'c':'blue'}");
	NO_MATCH(f, "{'c':false}");
}
END_TEST

START_TEST(match_any_with_an_empty_list_matches_nothing)
{
	NO_MATCH("{'must':[{'key':'c','match':{'any':[]}}]}", "{'c':'x'}");
	NO_MATCH("{'must':[{'key':'c','match':{'any':[]}}]}", "{'c':[]}");
}
END_TEST

START_TEST(match_except_matches_values_not_in_the_list)
{
	const char *f = "{'must':[{'key':'c','match':{'except':['red',3]}}]}";

	MATCH(f, "{'c':'blue'}");
	MATCH(f, "{'c':4}");
	MATCH(f, "{'c':true}");
	MATCH(f, "{'c':3.5}");
	NO_MATCH(f, "{'c':'red'}");
	NO_MATCH(f, "{'c':3}");
	NO_MATCH(f, "{'c':3.0}");
}
END_TEST

START_TEST(match_except_does_not_hold_for_null_or_object)
{
	const char *f = "{'must':[{'key':'c','match':{'except':['red']}}]}";

	NO_MATCH(f, "{'c':null}");
	NO_MATCH(f, "{'c':{'x':1}}");
	NO_MATCH(f, "{'c':[]}");
	MATCH("{'must':[{'key':'c','match':{'except':[]}}]}", "{'c':'x'}");
}
END_TEST

START_TEST(match_except_on_an_array_needs_one_element_outside_the_list)
{
	const char *f = "{'must':[{'key':'c','match':{'except':['a']}}]}";

	MATCH(f, "{'c':['a','b']}");
	NO_MATCH(f, "{'c':['a','a']}");
}
END_TEST

/* ===== range ===== */

START_TEST(range_bounds_are_inclusive_or_exclusive_at_the_edge)
{
	MATCH("{'must':[{'key':'n','range':{'gt':5}}]}", "{'n':6}");
	NO_MATCH("{'must':[{'key':'n','range':{'gt':5}}]}", "{'n':5}");
	MATCH("{'must':[{'key':'n','range':{'gte':5}}]}", "{'n':5}");
	NO_MATCH("{'must':[{'key':'n','range':{'gte':5}}]}", "{'n':4.999}");
	MATCH("{'must':[{'key':'n','range':{'lt':5}}]}", "{'n':4.999}");
	NO_MATCH("{'must':[{'key':'n','range':{'lt':5}}]}", "{'n':5}");
	MATCH("{'must':[{'key':'n','range':{'lte':5}}]}", "{'n':5.0}");
	NO_MATCH("{'must':[{'key':'n','range':{'lte':5}}]}", "{'n':5.001}");
}
END_TEST

START_TEST(range_with_two_bounds_needs_both)
{
	const char *f = "{'must':[{'key':'n','range':{'gte':1.5,'lt':10}}]}";

	MATCH(f, "{'n':1.5}");
	MATCH(f, "{'n':9}");
	NO_MATCH(f, "{'n':10}");
	NO_MATCH(f, "{'n':1}");
}
END_TEST

START_TEST(range_compares_integers_and_reals_alike)
{
	MATCH("{'must':[{'key':'n','range':{'gt':2.5}}]}", "{'n':3}");
	MATCH("{'must':[{'key':'n','range':{'lt':3}}]}", "{'n':2.5}");
	MATCH("{'must':[{'key':'n','range':{'gte':-1e3}}]}", "{'n':-1000}");
}
END_TEST

START_TEST(range_skips_values_that_are_not_numbers)
{
	const char *f = "{'must':[{'key':'n','range':{'gte':0}}]}";

	NO_MATCH(f, "{'n':'5'}");
	NO_MATCH(f, "{'n':true}");
	NO_MATCH(f, "{'n':null}");
	NO_MATCH(f, "{'n':{'v':5}}");
	MATCH(f, "{'n':['x',5]}");
}
END_TEST

START_TEST(range_null_bound_counts_as_absent)
{
	MATCH("{'must':[{'key':'n','range':{'gt':null,'lte':5}}]}",
	    "{'n':-100}");
}
END_TEST

/* ===== geo radius ===== */

START_TEST(geo_distance_paris_to_london_is_343_km)
{
	double d = filter_geo_distance(48.8566, 2.3522, 51.5074, -0.1278);

	ck_assert_msg(fabs(d - 343500.0) < 343500.0 * 0.005, "d = %f", d);
	ck_assert_double_eq_tol(filter_geo_distance(10, 20, 10, 20), 0, 1e-9);
	/* Half the circumference between antipodes. */
	ck_assert_double_eq_tol(filter_geo_distance(0, 0, 0, 180),
	    M_PI * 6371008.8, 1.0);
}
END_TEST

/* A geo filter around Paris with the given radius in metres. */
static char *
paris_filter(double radius)
{
	static char buf[256];

	snprintf(buf, sizeof(buf), "{'must':[{'key':'loc','geo_radius':{"
	    "'center':{'lat':48.8566,'lon':2.3522},'radius':%.3f}}]}",
	    radius);
	return buf;
}

START_TEST(geo_radius_matches_just_inside_and_not_just_outside)
{
	const char *london = "{'loc':{'lat':51.5074,'lon':-0.1278}}";
	double d = filter_geo_distance(48.8566, 2.3522, 51.5074, -0.1278);

	MATCH(paris_filter(d + 1), london);
	NO_MATCH(paris_filter(d - 1), london);
	MATCH(paris_filter(0), "{'loc':{'lat':48.8566,'lon':2.3522}}");
}
END_TEST

START_TEST(geo_radius_checks_each_point_in_an_array)
{
	const char *f = paris_filter(10000);

	MATCH(f, "{'loc':[{'lat':0,'lon':0},{'lat':48.86,'lon':2.35}]}");
	NO_MATCH(f, "{'loc':[{'lat':0,'lon':0},{'lat':10,'lon':10}]}");
}
END_TEST

START_TEST(geo_radius_skips_values_that_are_not_points)
{
	const char *f = paris_filter(1e7);

	NO_MATCH(f, "{'loc':'48.85,2.35'}");
	NO_MATCH(f, "{'loc':{'lat':48.85}}");
	NO_MATCH(f, "{'loc':{'lat':'48.85','lon':2.35}}");
	NO_MATCH(f, "{'loc':{'lat':95,'lon':2.35}}");
	NO_MATCH(f, "{'loc':[48.85,2.35]}");
}
END_TEST

/* ===== Qdrant's other conditions ===== */

START_TEST(match_text_holds_for_a_string_holding_it)
{
	const char *f = "{'must':[{'key':'t','match':{'text':'quick fox'}}]}";

	MATCH(f, "{'t':'the quick fox jumps'}");
	MATCH(f, "{'t':['no','a quick fox']}");
	NO_MATCH(f, "{'t':'the quick brown fox'}");
	NO_MATCH(f, "{'t':'Quick Fox'}");
	NO_MATCH(f, "{'t':42}");
	NO_MATCH(f, "{}");
}
END_TEST

START_TEST(datetime_range_compares_instants_across_formats_and_zones)
{
	const char *f = "{'must':[{'key':'d','datetime_range':{"
	    "'gte':'2024-05-01T12:00:00Z','lt':'2024-05-02'}}]}";

	MATCH(f, "{'d':'2024-05-01T12:00:00Z'}");
	MATCH(f, "{'d':'2024-05-01 23:59:59.5'}");
	/* 14:00 at +02:00 is 12:00 UTC; 13:59 there is 11:59 */
	MATCH(f, "{'d':'2024-05-01T14:00:00+02:00'}");
	NO_MATCH(f, "{'d':'2024-05-01T13:59:00+02:00'}");
	MATCH(f, "{'d':'2024-05-01T20:00:00-0300'}");
	NO_MATCH(f, "{'d':'2024-05-02T00:00:00Z'}");
	NO_MATCH(f, "{'d':'2024-05-01T11:59:59.999Z'}");
	NO_MATCH(f, "{'d':'not a date'}");
	NO_MATCH(f, "{'d':1714564800}");
	MATCH("{'must':[{'key':'d','datetime_range':{'gt':'2024-02-28'}}]}",
	    "{'d':'2024-02-29T00:00:01Z'}");
	MATCH("{'must':[{'key':'d','datetime_range':{'lt':'1970-01-01'}}]}",
	    "{'d':'1969-12-31T23:59:59Z'}");
}
END_TEST

START_TEST(geo_bounding_box_holds_inside_and_across_the_antimeridian)
{
	const char *f = "{'must':[{'key':'g','geo_bounding_box':{"
	    "'top_left':{'lat':52.6,'lon':13.0},"
	    "'bottom_right':{'lat':52.3,'lon':13.8}}}]}";
	const char *wrap = "{'must':[{'key':'g','geo_bounding_box':{"
	    "'top_left':{'lat':10,'lon':170},"
	    "'bottom_right':{'lat':-10,'lon':-170}}}]}";

	MATCH(f, "{'g':{'lat':52.52,'lon':13.40}}");
	NO_MATCH(f, "{'g':{'lat':48.85,'lon':2.35}}");
	NO_MATCH(f, "{'g':{'lat':52.7,'lon':13.40}}");
	MATCH(wrap, "{'g':{'lat':0,'lon':179}}");
	MATCH(wrap, "{'g':{'lat':0,'lon':-175}}");
	NO_MATCH(wrap, "{'g':{'lat':0,'lon':0}}");
}
END_TEST

START_TEST(geo_polygon_holds_inside_the_exterior_and_outside_its_holes)
{
	const char *f = "{'must':[{'key':'g','geo_polygon':{"
	    "'exterior':{'points':[{'lat':0,'lon':0},{'lat':0,'lon':10},"
	    "{'lat':10,'lon':10},{'lat':10,'lon':0},{'lat':0,'lon':0}]},"
	    "'interiors':[{'points':[{'lat':4,'lon':4},{'lat':4,'lon':6},"
	    "{'lat':6,'lon':6},{'lat':6,'lon':4}]}]}}]}";
	const char *tri = "{'must':[{'key':'g','geo_polygon':{'exterior':"
	    "{'points':[{'lat':0,'lon':0},{'lat':0,'lon':10},"
	    "{'lat':10,'lon':0}]}}}]}";

	MATCH(f, "{'g':{'lat':2,'lon':2}}");
	NO_MATCH(f, "{'g':{'lat':5,'lon':5}}");
	NO_MATCH(f, "{'g':{'lat':11,'lon':5}}");
	MATCH(f, "{'g':[{'lat':50,'lon':50},{'lat':8,'lon':1}]}");
	MATCH(tri, "{'g':{'lat':2,'lon':2}}");
	NO_MATCH(tri, "{'g':{'lat':6,'lon':6}}");
}
END_TEST

START_TEST(values_count_counts_array_elements_and_single_values)
{
	const char *two_or_more = "{'must':[{'key':'c','values_count':"
	    "{'gte':2}}]}";
	const char *none = "{'must':[{'key':'c','values_count':{'lt':1}}]}";

	MATCH(two_or_more, "{'c':[1,2]}");
	NO_MATCH(two_or_more, "{'c':[1]}");
	NO_MATCH(two_or_more, "{'c':'ab'}");
	MATCH(two_or_more, "{'c':[{'x':1},{'x':2},{'x':3}]}");
	MATCH("{'must':[{'key':'a[].c','values_count':{'gt':2}}]}",
	    "{'a':[{'c':[1,2]},{'c':3}]}");
	MATCH(none, "{}");
	MATCH(none, "{'c':[]}");
	MATCH(none, "{'c':null}");
	NO_MATCH(none, "{'c':0}");
}
END_TEST

START_TEST(is_empty_and_is_null_tell_missing_null_and_empty_apart)
{
	const char *empty = "{'must':[{'is_empty':{'key':'r'}}]}";
	const char *null = "{'must':[{'is_null':{'key':'r'}}]}";

	MATCH(empty, "{}");
	MATCH(empty, "{'r':null}");
	MATCH(empty, "{'r':[]}");
	NO_MATCH(empty, "{'r':[1]}");
	NO_MATCH(empty, "{'r':''}");
	MATCH(null, "{'r':null}");
	NO_MATCH(null, "{}");
	NO_MATCH(null, "{'r':[]}");
	NO_MATCH(null, "{'r':0}");
	/* must_not is_empty: the key holds something */
	MATCH("{'must_not':[{'is_empty':{'key':'r'}}]}", "{'r':[0]}");
	/* Qdrant's older form, a flag of a key condition, and its negation */
	MATCH("{'must':[{'key':'r','is_empty':true}]}", "{'r':[]}");
	NO_MATCH("{'must':[{'key':'r','is_empty':true}]}", "{'r':[1]}");
	MATCH("{'must':[{'key':'r','is_empty':false}]}", "{'r':[1]}");
	NO_MATCH("{'must':[{'key':'r','is_empty':false}]}", "{}");
	MATCH("{'must':[{'key':'r','is_null':true}]}", "{'r':null}");
	MATCH("{'must':[{'key':'r','is_null':false}]}", "{}");
	NO_MATCH("{'must':[{'key':'r','is_null':false}]}", "{'r':null}");
	refused("{'must':[{'key':'r','is_null':1}]}",
	    "filter.must[0].is_null: expected true or false");
}
END_TEST

START_TEST(min_should_needs_at_least_min_count_conditions)
{
	const char *f = "{'min_should':{'conditions':["
	    "{'key':'a','match':{'value':1}},{'key':'b','match':{'value':1}},"
	    "{'key':'c','match':{'value':1}}],'min_count':2},"
	    "'must':[{'key':'d','match':{'value':1}}]}";

	MATCH(f, "{'a':1,'b':1,'d':1}");
	MATCH(f, "{'a':1,'b':1,'c':1,'d':1}");
	NO_MATCH(f, "{'a':1,'d':1}");
	NO_MATCH(f, "{'a':1,'b':1}");
	MATCH("{'min_should':{'conditions':[{'key':'a','match':{'value':1}}],"
	    "'min_count':0}}", "{}");
	/* as a condition of its own */
	MATCH("{'should':[{'min_should':{'conditions':[{'key':'a','match':"
	    "{'value':1}}],'min_count':1}},{'key':'z','match':{'value':1}}]}",
	    "{'a':1}");
}
END_TEST

/* has_vector's answer in these tests: the names in arg, comma-joined. */
static int
has_vec(const char *name, void *arg)
{
	char buf[128], *save = NULL, *t;

	snprintf(buf, sizeof(buf), "%s", (const char *) arg);
	for (t = strtok_r(buf, ",", &save); t != NULL;
	    t = strtok_r(NULL, ",", &save))
		if (strcmp(t, name) == 0 || (name[0] == '\0' &&
		    strcmp(t, "-") == 0))
			return 1;
	return 0;
}

/* Does @p filter match a point with id and the vectors named in vecs
 * ("-" the default one) and an empty payload? */
static int
matches_point(const char *filter, const vecdb_id *id, const char *vecs)
{
	char *fs = dq(filter);
	vecdb_filter *f = NULL;
	uint8_t key[17];
	struct filter_point pt;
	int m;

	ck_assert_msg(vecdb_filter_parse(fs, &f) == VECDB_OK, "%s: %s", fs,
	    vecdb_errmsg());
	pt.klen = vdb_id_key(id, key);
	pt.key = key;
	pt.has_vector = has_vec;
	pt.arg = (void *) (uintptr_t) vecs;
	m = filter_match_point(f, NULL, &pt);
	vecdb_filter_free(f);
	free(fs);
	return m;
}

START_TEST(has_id_holds_for_the_ids_listed_of_either_kind)
{
	const char *f = "{'must':[{'has_id':[9, 3, "
	    "'5c56c793-69f3-4fbf-87e6-c4bf54c28c26']}]}";
	vecdb_id u;

	ck_assert_int_eq(vecdb_id_parse_uuid(
	    "5c56c793-69f3-4fbf-87e6-c4bf54c28c26", &u), VECDB_OK);
	for (uint64_t n = 0; n < 12; n++)
		ck_assert_int_eq(matches_point(f, &(vecdb_id) { VECDB_ID_NUM, n,
		    { 0 } }, ""), n == 3 || n == 9);
	ck_assert_int_eq(matches_point(f, &u, ""), 1);
	u.uuid[15] ^= 1;
	ck_assert_int_eq(matches_point(f, &u, ""), 0);
	ck_assert_int_eq(matches_point("{'must_not':[{'has_id':[1]}]}",
	    &(vecdb_id) { VECDB_ID_NUM, 1, { 0 } }, ""), 0);
	ck_assert_int_eq(matches_point("{'must':[{'has_id':[]}]}",
	    &(vecdb_id) { VECDB_ID_NUM, 1, { 0 } }, ""), 0);
	/* without a point (filter_match) it holds for none */
	NO_MATCH("{'must':[{'has_id':[1]}]}", "{}");
}
END_TEST

START_TEST(has_vector_asks_the_point)
{
	vecdb_id id = vecdb_id_num(1);

	ck_assert_int_eq(matches_point("{'must':[{'has_vector':'image'}]}",
	    &id, "-,image"), 1);
	ck_assert_int_eq(matches_point("{'must':[{'has_vector':'image'}]}",
	    &id, "-,text"), 0);
	ck_assert_int_eq(matches_point("{'must':[{'has_vector':''}]}", &id,
	    "-"), 1);
	ck_assert_int_eq(matches_point("{'must':[{'has_vector':''}]}", &id,
	    "text"), 0);
	NO_MATCH("{'must':[{'has_vector':''}]}", "{}");
}
END_TEST

/* ===== must / should / must_not ===== */

START_TEST(empty_filter_matches_everything)
{
	MATCH("{}", "{}");
	MATCH("{}", "{'a':1}");
	MATCH("{'must':[],'should':[],'must_not':[]}", "{'a':1}");
	MATCH("{'must':null}", "{'a':1}");
}
END_TEST

START_TEST(must_needs_every_condition)
{
	const char *f = "{'must':[{'key':'a','match':{'value':1}},"
	    "{'key':'b','match':{'value':2}}]}";

	MATCH(f, "{'a':1,'b':2}");
	NO_MATCH(f, "{'a':1,'b':3}");
	NO_MATCH(f, "{'a':0,'b':2}");
}
END_TEST

START_TEST(should_needs_one_condition)
{
	const char *f = "{'should':[{'key':'a','match':{'value':1}},"
	    "{'key':'b','match':{'value':2}}]}";

	MATCH(f, "{'a':1,'b':0}");
	MATCH(f, "{'a':0,'b':2}");
	NO_MATCH(f, "{'a':0,'b':0}");
}
END_TEST

START_TEST(must_not_refuses_any_condition)
{
	const char *f = "{'must_not':[{'key':'a','match':{'value':1}},"
	    "{'key':'b','match':{'value':2}}]}";

	MATCH(f, "{'a':0,'b':0}");
	NO_MATCH(f, "{'a':1,'b':0}");
	NO_MATCH(f, "{'a':0,'b':2}");
}
END_TEST

START_TEST(must_should_and_must_not_combine)
{
	const char *f = "{'must':[{'key':'t','match':{'value':'shoe'}}],"
	    "'should':[{'key':'c','match':{'value':'red'}},"
	    "{'key':'c','match':{'value':'blue'}}],"
	    "'must_not':[{'key':'p','range':{'gt':100}}]}";

	MATCH(f, "{'t':'shoe','c':'red','p':50}");
	MATCH(f, "{'t':'shoe','c':'blue','p':100}");
	NO_MATCH(f, "{'t':'hat','c':'red','p':50}");
	NO_MATCH(f, "{'t':'shoe','c':'green','p':50}");
	NO_MATCH(f, "{'t':'shoe','c':'red','p':101}");
}
END_TEST

START_TEST(a_single_condition_object_counts_as_a_list_of_one)
{
	MATCH("{'must':{'key':'a','match':{'value':1}}}", "{'a':1}");
	NO_MATCH("{'must_not':{'key':'a','match':{'value':1}}}", "{'a':1}");
	MATCH("{'should':{'key':'a','match':{'value':1}}}", "{'a':1}");
}
END_TEST

START_TEST(filters_nest_as_conditions_three_levels_deep)
{
	/* a == 1 and (b == 2 or (c == 3 and not d == 4)) */
	const char *f = "{'must':[{'key':'a','match':{'value':1}},"
	    "{'should':[{'key':'b','match':{'value':2}},"
	    "{'must':[{'key':'c','match':{'value':3}}],"
	    "'must_not':[{'key':'d','match':{'value':4}}]}]}]}";

	MATCH(f, "{'a':1,'b':2}");
	MATCH(f, "{'a':1,'c':3,'d':5}");
	MATCH(f, "{'a':1,'c':3}");
	NO_MATCH(f, "{'a':1,'c':3,'d':4}");
	NO_MATCH(f, "{'a':1,'b':0,'c':0}");
	NO_MATCH(f, "{'a':0,'b':2}");
}
END_TEST

/* ===== nested ===== */

START_TEST(nested_needs_both_conditions_on_the_same_element)
{
	const char *p = "{'diet':[{'food':'meat','likes':false},"
	    "{'food':'leaves','likes':true}]}";

	NO_MATCH("{'must':[{'nested':{'key':'diet','filter':{'must':["
	    "{'key':'food','match':{'value':'meat'}},"
	    "{'key':'likes','match':{'value':true}}]}}}]}", p);
	MATCH("{'must':[{'nested':{'key':'diet','filter':{'must':["
	    "{'key':'food','match':{'value':'leaves'}},"
	    "{'key':'likes','match':{'value':true}}]}}}]}", p);
	/* Without nested, the two conditions may hold on different ones. */
	MATCH("{'must':[{'key':'diet[].food','match':{'value':'meat'}},"
	    "{'key':'diet[].likes','match':{'value':true}}]}", p);
}
END_TEST

START_TEST(nested_applies_to_an_object_at_the_key)
{
	const char *f = "{'must':[{'nested':{'key':'a.b','filter':{'must':"
	    "[{'key':'c','range':{'gte':1}}]}}}]}";

	MATCH(f, "{'a':{'b':{'c':1}}}");
	NO_MATCH(f, "{'a':{'b':{'c':0}}}");
	NO_MATCH(f, "{'a':{'b':[1,2]}}");
	NO_MATCH(f, "{'a':{'b':'c'}}");
}
END_TEST

START_TEST(nested_inside_nested_reaches_inner_arrays)
{
	const char *f = "{'must':[{'nested':{'key':'o','filter':{'must':["
	    "{'key':'id','match':{'value':2}},"
	    "{'nested':{'key':'items','filter':{'must':["
	    "{'key':'sku','match':{'value':'x'}},"
	    "{'key':'qty','range':{'gt':1}}]}}}]}}}]}";

	MATCH(f, "{'o':[{'id':1,'items':[{'sku':'x','qty':5}]},"
	    "{'id':2,'items':[{'sku':'y','qty':5},{'sku':'x','qty':2}]}]}");
	NO_MATCH(f, "{'o':[{'id':1,'items':[{'sku':'x','qty':5}]},"
	    "{'id':2,'items':[{'sku':'y','qty':5},{'sku':'x','qty':1}]}]}");
}
END_TEST

START_TEST(must_not_nested_refuses_a_matching_element)
{
	const char *f = "{'must_not':[{'nested':{'key':'d','filter':{'must':"
	    "[{'key':'x','match':{'value':1}}]}}}]}";

	NO_MATCH(f, "{'d':[{'x':0},{'x':1}]}");
	MATCH(f, "{'d':[{'x':0},{'x':2}]}");
}
END_TEST

/* ===== keys and arrays ===== */

START_TEST(dotted_keys_reach_into_objects)
{
	MATCH("{'must':[{'key':'a.b.c','match':{'value':'x'}}]}",
	    "{'a':{'b':{'c':'x'}}}");
	NO_MATCH("{'must':[{'key':'a.b.c','match':{'value':'x'}}]}",
	    "{'a':{'b':'x'}}");
	NO_MATCH("{'must':[{'key':'a.b','match':{'value':'x'}}]}",
	    "{'a.b':'x'}");
}
END_TEST

START_TEST(dotted_keys_pass_through_arrays_of_objects)
{
	const char *p = "{'a':[{'b':{'c':1}},{'b':{'c':2}},7,[{'b':{'c':3}}]]}";

	MATCH("{'must':[{'key':'a.b.c','match':{'value':2}}]}", p);
	MATCH("{'must':[{'key':'a[].b.c','match':{'value':1}}]}", p);
	/* Arrays inside arrays are not walked into. */
	NO_MATCH("{'must':[{'key':'a.b.c','match':{'value':3}}]}", p);
}
END_TEST

START_TEST(array_values_match_if_one_element_does)
{
	const char *p = "{'tags':['a','b',3],'n':[1,20]}";

	MATCH("{'must':[{'key':'tags','match':{'value':'b'}}]}", p);
	MATCH("{'must':[{'key':'tags[]','match':{'value':3}}]}", p);
	NO_MATCH("{'must':[{'key':'tags','match':{'value':'c'}}]}", p);
	MATCH("{'must':[{'key':'tags','match':{'any':['z','a']}}]}", p);
	MATCH("{'must':[{'key':'n','range':{'gt':10}}]}", p);
	NO_MATCH("{'must':[{'key':'n','range':{'gt':20}}]}", p);
}
END_TEST

START_TEST(arrays_are_flattened_one_level_only)
{
	NO_MATCH("{'must':[{'key':'t','match':{'value':1}}]}",
	    "{'t':[[1],[2]]}");
	NO_MATCH("{'must':[{'key':'t','match':{'value':1}}]}", "{'t':[]}");
}
END_TEST

START_TEST(arrays_reached_through_arrays_are_flattened)
{
	MATCH("{'must':[{'key':'a.b','match':{'value':'y'}}]}",
	    "{'a':[{'b':['x','y']},{'b':'z'}]}");
	MATCH("{'must':[{'key':'a.b','match':{'value':'z'}}]}",
	    "{'a':[{'b':['x','y']},{'b':'z'}]}");
}
END_TEST

/* ===== missing keys ===== */

START_TEST(every_condition_on_a_missing_key_is_false)
{
	const char *conds[] = {
		"{'key':'m','match':{'value':1}}",
		"{'key':'m','match':{'any':[1,'x']}}",
		"{'key':'m','match':{'except':[1]}}",
		"{'key':'m','range':{'gte':0}}",
		"{'key':'m','geo_radius':{'center':{'lat':0,'lon':0},"
		    "'radius':1e9}}",
		"{'nested':{'key':'m','filter':{}}}",
		"{'key':'a.m','match':{'value':1}}",
	};
	char buf[512];
	size_t i;

	for (i = 0; i < sizeof(conds) / sizeof(conds[0]); i++) {
		snprintf(buf, sizeof(buf), "{'must':[%s]}", conds[i]);
		NO_MATCH(buf, "{'a':{'x':1},'b':2}");
		snprintf(buf, sizeof(buf), "{'should':[%s]}", conds[i]);
		NO_MATCH(buf, "{'a':{'x':1},'b':2}");
		snprintf(buf, sizeof(buf), "{'must_not':[%s]}", conds[i]);
		MATCH(buf, "{'a':{'x':1},'b':2}");
	}
}
END_TEST

START_TEST(a_key_through_a_scalar_is_missing)
{
	NO_MATCH("{'must':[{'key':'a.b','match':{'value':1}}]}", "{'a':1}");
	NO_MATCH("{'must':[{'key':'a.b','match':{'except':[2]}}]}",
	    "{'a':'b'}");
}
END_TEST

START_TEST(a_null_or_non_object_payload_counts_as_an_empty_object)
{
	json_t *arr = json_pack("[{s:i}]", "a", 1);
	vecdb_filter *f;

	ck_assert_int_eq(vecdb_filter_parse("{\"must_not\":[{\"key\":\"a\","
	    "\"match\":{\"value\":1}}]}", &f), VECDB_OK);
	ck_assert_int_eq(filter_match(f, NULL), 1);
	vecdb_filter_free(f);
	ck_assert_int_eq(vecdb_filter_parse("{\"must\":[{\"key\":\"a\","
	    "\"match\":{\"value\":1}}]}", &f), VECDB_OK);
	ck_assert_int_eq(filter_match(f, NULL), 0);
	ck_assert_int_eq(filter_match(f, arr), 0);
	vecdb_filter_free(f);
	json_decref(arr);
	ck_assert_int_eq(vecdb_filter_parse("{}", &f), VECDB_OK);
	ck_assert_int_eq(filter_match(f, NULL), 1);
	vecdb_filter_free(f);
}
END_TEST

/* ===== type rules ===== */

START_TEST(match_integer_does_not_match_bool)
{
	NO_MATCH("{'must':[{'key':'n','match':{'value':1}}]}", "{'n':true}");
	NO_MATCH("{'must':[{'key':'n','match':{'value':0}}]}", "{'n':false}");
	NO_MATCH("{'must':[{'key':'n','match':{'value':true}}]}", "{'n':1}");
	NO_MATCH("{'must':[{'key':'n','match':{'value':false}}]}", "{'n':0}");
	NO_MATCH("{'must':[{'key':'n','match':{'value':false}}]}",
	    "{'n':null}");
	NO_MATCH("{'must':[{'key':'n','match':{'value':false}}]}",
	    "{'n':''}");
	NO_MATCH("{'must':[{'key':'n','match':{'any':[1]}}]}", "{'n':true}");
}
END_TEST

START_TEST(match_integer_matches_an_equal_real_exactly)
{
	MATCH("{'must':[{'key':'n','match':{'value':3}}]}", "{'n':3.0}");
	NO_MATCH("{'must':[{'key':'n','match':{'value':3}}]}", "{'n':3.5}");
	/* 2^53 + 1 has no double of its own: the real is 2^53. */
	NO_MATCH("{'must':[{'key':'n','match':{'value':9007199254740993}}]}",
	    "{'n':9007199254740992.0}");
	MATCH("{'must':[{'key':'n','match':{'value':9007199254740992}}]}",
	    "{'n':9007199254740992.0}");
	NO_MATCH("{'must':[{'key':'n','match':{'value':1}}]}", "{'n':1e300}");
}
END_TEST

START_TEST(match_string_and_number_never_match_each_other)
{
	NO_MATCH("{'must':[{'key':'n','match':{'value':'3'}}]}", "{'n':3}");
	NO_MATCH("{'must':[{'key':'n','match':{'value':3}}]}", "{'n':'3'}");
	NO_MATCH("{'must':[{'key':'n','match':{'value':'true'}}]}",
	    "{'n':true}");
	NO_MATCH("{'must':[{'key':'n','match':{'value':'x'}}]}",
	    "{'n':{'x':1}}");
}
END_TEST

START_TEST(match_string_compares_exact_bytes)
{
	/* é as one code point, and as e plus a combining accent. */
	MATCH("{'must':[{'key':'s','match':{'value':'caf\\u00e9'}}]}",
	    "{'s':'caf\\u00e9'}");
	NO_MATCH("{'must':[{'key':'s','match':{'value':'caf\\u00e9'}}]}",
	    "{'s':'cafe\\u0301'}");
}
END_TEST

/* ===== malformed filters ===== */

/* A bad filter and where its message must say the fault is. */
struct bad_case {
	const char *filter; /* with ' for " */
	const char *where;  /* a substring of vecdb_errmsg() */
};

static const struct bad_case bad_cases[] = {
	{ "[]", "filter: expected a filter object" },
	{ "{'must':[],'filter':[]}", "filter: unknown key 'filter'" },
	{ "{'must':1}", "filter.must: expected an array" },
	{ "{'should':'x'}", "filter.should: expected an array" },
	{ "{'must_not':true}", "filter.must_not: expected an array" },
	{ "{'must':[1]}", "filter.must[0]: expected a condition object" },
	{ "{'must':[{'key':'a','match':{'value':1}},{'foo':1}]}",
	    "filter.must[1]: unknown condition (expected key with match, "
	    "range, geo_radius, datetime_range, geo_bounding_box, geo_polygon "
	    "or values_count; is_empty; is_null; has_id; has_vector; nested; "
	    "or a filter)" },
	{ "{'must':[{}]}", "filter.must[0]: unknown condition" },
	{ "{'must':[{'key':1,'match':{'value':1}}]}",
	    "filter.must[0].key: expected a string" },
	{ "{'must':[{'key':'','match':{'value':1}}]}",
	    "filter.must[0].key: must be 1 to 256 bytes" },
	{ "{'must':[{'key':'a..b','match':{'value':1}}]}",
	    "filter.must[0].key: empty path segment in 'a..b'" },
	{ "{'must':[{'key':'.a','match':{'value':1}}]}",
	    "filter.must[0].key: empty path segment" },
	{ "{'must':[{'key':'a.','match':{'value':1}}]}",
	    "filter.must[0].key: empty path segment" },
	{ "{'must':[{'key':'a.[]','match':{'value':1}}]}",
	    "filter.must[0].key: empty path segment" },
	{ "{'must':[{'key':'a'}]}", "filter.must[0]: a condition with a key "
	    "needs exactly one of match, range, geo_radius" },
	{ "{'must':[{'key':'a','match':{'value':1},'range':{'gt':1}}]}",
	    "filter.must[0]: a condition with a key needs exactly one" },
	{ "{'must':[{'key':'a','match':{'value':1},'boost':2}]}",
	    "filter.must[0]: unknown key 'boost'" },
	{ "{'must':[{'key':'a','match':{'value':1},'must':[]}]}",
	    "filter.must[0]: unknown key 'must'" },
	{ "{'must':[{'key':'a','match':1}]}",
	    "filter.must[0].match: expected an object" },
	{ "{'must':[{'key':'a','match':{}}]}",
	    "filter.must[0].match: needs exactly one of value, any, except" },
	{ "{'must':[{'key':'a','match':{'value':1,'any':[1]}}]}",
	    "filter.must[0].match: needs exactly one" },
	{ "{'must':[{'key':'a','match':{'phrase':'x'}}]}",
	    "filter.must[0].match: unknown key 'phrase'" },
	{ "{'must':[{'key':'a','match':{'text':1}}]}",
	    "filter.must[0].match.text: expected a string" },
	{ "{'must':[{'key':'d','datetime_range':{'gt':'yesterday'}}]}",
	    "filter.must[0].datetime_range.gt: expected an RFC 3339" },
	{ "{'must':[{'key':'d','datetime_range':{'gt':'2024-02-30'}}]}",
	    "filter.must[0].datetime_range.gt: expected an RFC 3339" },
	{ "{'must':[{'key':'g','geo_bounding_box':{'top_left':{'lat':1,"
	    "'lon':0},'bottom_right':{'lat':2,'lon':1}}}]}",
	    "bottom_right.lat 2 is north of top_left.lat 1" },
	{ "{'must':[{'key':'g','geo_polygon':{'exterior':{'points':[{'lat':0,"
	    "'lon':0},{'lat':1,'lon':1}]}}}]}",
	    "filter.must[0].geo_polygon.exterior.points: expected a list of 3" },
	{ "{'must':[{'key':'a','values_count':{}}]}",
	    "filter.must[0].values_count: needs at least one of gt" },
	{ "{'must':[{'is_empty':{'key':'a'},'is_null':{'key':'a'}}]}",
	    "filter.must[0]: is_empty and is_null are separate" },
	{ "{'must':[{'is_empty':{'field':'a'}}]}",
	    "filter.must[0].is_empty: unknown key 'field'" },
	{ "{'must_not':[{'is_empty':{}}]}",
	    "filter.must_not[0].is_empty: needs key" },
	{ "{'must':[{'is_null':{}}]}", "filter.must[0].is_null: needs key" },
	{ "{'must':[{'has_id':'7'}]}",
	    "filter.must[0].has_id: expected a list of at most 1024" },
	{ "{'must':[{'has_id':[1,-2]}]}",
	    "filter.must[0].has_id: [1]: expected an unsigned integer or a UUID" },
	{ "{'must':[{'has_vector':1}]}",
	    "filter.must[0].has_vector: expected a vector name" },
	{ "{'must':[{'has_id':[1],'has_vector':''}]}",
	    "filter.must[0]: has_id and has_vector are separate" },
	{ "{'min_should':{'conditions':[]}}",
	    "filter.min_should: needs conditions and min_count" },
	{ "{'min_should':{'conditions':[{'key':'a'}],'min_count':1}}",
	    "filter.min_should.conditions[0]: a condition with a key needs" },
	{ "{'must':[{'key':'a','match':{'value':1.5}}]}",
	    "filter.must[0].match.value: expected a string, integer or "
	    "boolean, not a real number" },
	{ "{'must':[{'key':'a','match':{'value':1.0}}]}",
	    "filter.must[0].match.value: expected" },
	{ "{'must':[{'key':'a','match':{'value':null}}]}",
	    "filter.must[0].match.value: expected" },
	{ "{'must':[{'key':'a','match':{'value':[1]}}]}",
	    "filter.must[0].match.value: expected" },
	{ "{'must':[{'key':'a','match':{'value':{}}}]}",
	    "filter.must[0].match.value: expected" },
	{ "{'must':[{'key':'a','match':{'any':1}}]}",
	    "filter.must[0].match.any: expected an array" },
	{ "{'must':[{'key':'a','match':{'any':['x',2.5]}}]}",
	    "filter.must[0].match.any[1]: expected a string" },
	{ "{'must':[{'key':'a','match':{'except':[null]}}]}",
	    "filter.must[0].match.except[0]: expected a string" },
	{ "{'must':[{'key':'a','match':{'except':{}}}]}",
	    "filter.must[0].match.except: expected an array" },
	{ "{'should':[{'key':'a','range':{}}]}",
	    "filter.should[0].range: needs at least one of gt, gte, lt, lte" },
	{ "{'should':[{'key':'a','range':5}]}",
	    "filter.should[0].range: expected an object" },
	{ "{'must':[{'key':'a','range':{'eq':5}}]}",
	    "filter.must[0].range: unknown key 'eq'" },
	{ "{'must':[{'key':'a','range':{'gt':'5'}}]}",
	    "filter.must[0].range.gt: expected a number" },
	{ "{'must':[{'key':'a','range':{'lte':true}}]}",
	    "filter.must[0].range.lte: expected a number" },
	{ "{'must':[{'key':'g','geo_radius':[]}]}",
	    "filter.must[0].geo_radius: expected an object" },
	{ "{'must':[{'key':'g','geo_radius':{'radius':1}}]}",
	    "filter.must[0].geo_radius: needs center and radius" },
	{ "{'must':[{'key':'g','geo_radius':{'center':{'lat':0,'lon':0}}}]}",
	    "filter.must[0].geo_radius: needs center and radius" },
	{ "{'must':[{'key':'g','geo_radius':{'center':{'lat':0,'lon':0},"
	    "'radius':1,'unit':'km'}}]}",
	    "filter.must[0].geo_radius: unknown key 'unit'" },
	{ "{'must':[{'key':'g','geo_radius':{'center':[0,0],'radius':1}}]}",
	    "filter.must[0].geo_radius.center: expected an object" },
	{ "{'must':[{'key':'g','geo_radius':{'center':{'lat':0},"
	    "'radius':1}}]}", "filter.must[0].geo_radius.center: needs lat" },
	{ "{'must':[{'key':'g','geo_radius':{'center':{'lat':0,'lon':0,"
	    "'alt':1},'radius':1}}]}",
	    "filter.must[0].geo_radius.center: unknown key 'alt'" },
	{ "{'must':[{'key':'g','geo_radius':{'center':{'lat':90.5,'lon':0},"
	    "'radius':1}}]}", "filter.must[0].geo_radius.center.lat: 90.5 "
	    "is outside [-90, 90]" },
	{ "{'must':[{'key':'g','geo_radius':{'center':{'lat':-91,'lon':0},"
	    "'radius':1}}]}", "filter.must[0].geo_radius.center.lat:" },
	{ "{'must':[{'key':'g','geo_radius':{'center':{'lat':0,'lon':180.1},"
	    "'radius':1}}]}", "filter.must[0].geo_radius.center.lon:" },
	{ "{'must':[{'key':'g','geo_radius':{'center':{'lat':0,'lon':'0'},"
	    "'radius':1}}]}",
	    "filter.must[0].geo_radius.center.lon: expected a number" },
	{ "{'must':[{'key':'g','geo_radius':{'center':{'lat':0,'lon':0},"
	    "'radius':-1}}]}", "filter.must[0].geo_radius.radius: must be "
	    ">= 0" },
	{ "{'must':[{'key':'g','geo_radius':{'center':{'lat':0,'lon':0},"
	    "'radius':'1km'}}]}",
	    "filter.must[0].geo_radius.radius: expected a number" },
	{ "{'must':[{'nested':[]}]}",
	    "filter.must[0].nested: expected an object" },
	{ "{'must':[{'nested':{'filter':{}}}]}",
	    "filter.must[0].nested: needs key and filter" },
	{ "{'must':[{'nested':{'key':'d'}}]}",
	    "filter.must[0].nested: needs key and filter" },
	{ "{'must':[{'nested':{'key':'d','filter':{},'x':1}}]}",
	    "filter.must[0].nested: unknown key 'x'" },
	{ "{'must':[{'nested':{'key':'d','filter':{}},'x':1}]}",
	    "filter.must[0]: unknown key 'x'" },
	{ "{'must':[{'nested':{'key':'d..e','filter':{}}}]}",
	    "filter.must[0].nested.key: empty path segment" },
	{ "{'must':[{'nested':{'key':'d','filter':[]}}]}",
	    "filter.must[0].nested.filter: expected a filter object" },
	{ "{'must':[{'nested':{'key':'d','filter':{'must':[{'key':'a',"
	    "'match':{'value':1}},{'key':'a..b','match':{'value':1}}]}}}]}",
	    "filter.must[0].nested.filter.must[1].key: empty path segment" },
	{ "{'must':[{'must':[],'foo':1}]}", "filter.must[0]: unknown key "
	    "'foo' (expected must, should, must_not, min_should)" },
	{ "{'should':[{'must_not':[{'key':'a','range':{}}]}]}",
	    "filter.should[0].must_not[0].range: needs at least one" },
	{ "{'should':{'key':'a','range':{}}}",
	    "filter.should.range: needs at least one" },
	{ "{'must':[],'must':[]}", "filter: invalid JSON" },
	{ "{'must':[", "filter: invalid JSON" },
	{ "1", "filter: invalid JSON" },
};

START_TEST(malformed_filter_is_einval_with_its_location)
{
	refused(bad_cases[_i].filter, bad_cases[_i].where);
}
END_TEST

START_TEST(null_json_or_null_out_is_einval)
{
	vecdb_filter *f = NULL;

	ck_assert_int_eq(vecdb_filter_parse(NULL, &f), VECDB_EINVAL);
	ck_assert_str_ne(vecdb_errmsg(), "");
	ck_assert_ptr_null(f);
	ck_assert_int_eq(vecdb_filter_parse("{}", NULL), VECDB_EINVAL);
	ck_assert_int_eq(filter_compile(NULL, &f), VECDB_EINVAL);
	ck_assert_ptr_null(f);
}
END_TEST

START_TEST(compile_refuses_a_non_object_json_value)
{
	vecdb_filter *f = NULL;
	json_t *j = json_string("must");

	ck_assert_int_eq(filter_compile(j, &f), VECDB_EINVAL);
	ck_assert_ptr_null(f);
	ck_assert_ptr_nonnull(strstr(vecdb_errmsg(), "filter: expected"));
	json_decref(j);
}
END_TEST

START_TEST(compile_takes_copies_of_keys_and_strings)
{
	json_error_t jerr;
	json_t *j = json_loads("{\"must\":[{\"key\":\"a.b\",\"match\":"
	    "{\"any\":[\"x\",\"y\"]}}]}", 0, &jerr);
	json_t *p = json_loads("{\"a\":{\"b\":\"y\"}}", 0, &jerr);
	vecdb_filter *f;

	ck_assert_int_eq(filter_compile(j, &f), VECDB_OK);
	json_decref(j);
	ck_assert_int_eq(filter_match(f, p), 1);
	json_decref(p);
	vecdb_filter_free(f);
}
END_TEST

START_TEST(filter_free_of_null_does_nothing)
{
	vecdb_filter_free(NULL);
	ck_assert_int_eq(filter_match(NULL, NULL), 1);
}
END_TEST

/* ===== limits ===== */

START_TEST(filters_nest_up_to_the_depth_limit)
{
	char *ok = filter_of_depth(FILTER_DEPTH_MAX);
	char *deep = filter_of_depth(FILTER_DEPTH_MAX + 1);

	MATCH(ok, "{'a':1}");
	NO_MATCH(ok, "{'a':2}");
	refused(deep, "filters nested deeper than 32");
	refused(deep, "filter.must[0].must[0].must[0]");
	free(ok);
	free(deep);
}
END_TEST

START_TEST(nested_conditions_count_toward_the_depth_limit)
{
	struct sbuf b = { NULL, 0, 0 };
	int i;

	for (i = 0; i < FILTER_DEPTH_MAX; i++)
		sbuf_add(&b, "{'must':[{'nested':{'key':'a','filter':");
	sbuf_add(&b, "{}");
	for (i = 0; i < FILTER_DEPTH_MAX; i++)
		sbuf_add(&b, "}}]}");
	refused(b.s, "nested.filter: filters nested deeper than 32");
	free(b.s);
}
END_TEST

START_TEST(conditions_are_allowed_up_to_the_limit)
{
	char *ok = filter_of_conds(FILTER_CONDS_MAX);
	char *big = filter_of_conds(FILTER_CONDS_MAX + 1);

	MATCH(ok, "{'a':1}");
	refused(big, "filter.must: more than 4096 conditions");
	free(ok);
	free(big);
}
END_TEST

START_TEST(conditions_are_counted_across_nested_filters)
{
	struct sbuf b = { NULL, 0, 0 };
	char *half = filter_of_conds(FILTER_CONDS_MAX / 2);

	/* Two sub-filters of 2048 plus the two conditions holding them. */
	sbuf_add(&b, "{'must':[");
	sbuf_add(&b, half);
	sbuf_add(&b, ",");
	sbuf_add(&b, half);
	sbuf_add(&b, "]}");
	refused(b.s, "more than 4096 conditions");
	free(half);
	free(b.s);
}
END_TEST

/* {"must":[{"key":"a","match":{"any":[0..n-1]}}]} */
static char *
any_of_size(size_t n)
{
	struct sbuf b = { NULL, 0, 0 };
	char num[32];
	size_t i;

	sbuf_add(&b, "{'must':[{'key':'a','match':{'any':[");
	for (i = 0; i < n; i++) {
		snprintf(num, sizeof(num), i ? ",%zu" : "%zu", i);
		sbuf_add(&b, num);
	}
	sbuf_add(&b, "]}}]}");
	return b.s;
}

START_TEST(match_lists_are_allowed_up_to_1024_entries)
{
	char *ok = any_of_size(1024), *big = any_of_size(1025);

	MATCH(ok, "{'a':1023}");
	NO_MATCH(ok, "{'a':1024}");
	refused(big, "filter.must[0].match.any: 1025 values, more than 1024");
	free(ok);
	free(big);
}
END_TEST

/* A match on key a of a string of @p n x's. */
static char *
string_of_size(size_t n)
{
	struct sbuf b = { NULL, 0, 0 };
	char *x = malloc(n + 1);

	ck_assert_ptr_nonnull(x);
	memset(x, 'x', n);
	x[n] = '\0';
	sbuf_add(&b, "{'must':[{'key':'a','match':{'value':'");
	sbuf_add(&b, x);
	sbuf_add(&b, "'}}]}");
	free(x);
	return b.s;
}

START_TEST(match_strings_are_allowed_up_to_4096_bytes)
{
	char *ok = string_of_size(4096), *big = string_of_size(4097);

	NO_MATCH(ok, "{'a':'x'}");
	refused(big, "filter.must[0].match.value: string of 4097 bytes");
	free(ok);
	free(big);
}
END_TEST

START_TEST(keys_are_allowed_up_to_256_bytes)
{
	char key[FILTER_KEY_MAX + 2], f[512], p[512];

	memset(key, 'k', sizeof(key) - 1);
	key[FILTER_KEY_MAX] = '\0';
	snprintf(f, sizeof(f), "{'must':[{'key':'%s','match':{'value':1}}]}",
	    key);
	snprintf(p, sizeof(p), "{'%s':1}", key);
	MATCH(f, p);
	key[FILTER_KEY_MAX] = 'k';
	key[FILTER_KEY_MAX + 1] = '\0';
	snprintf(f, sizeof(f), "{'must':[{'key':'%s','match':{'value':1}}]}",
	    key);
	refused(f, "filter.must[0].key: must be 1 to 256 bytes, not 257");
}
END_TEST

/* ===== memory and threads ===== */

START_TEST(compile_unwinds_cleanly_when_any_allocation_fails)
{
	const char *src = "{\"must\":[{\"key\":\"a.b\",\"match\":{\"any\":"
	    "[\"x\",\"y\"]}},{\"nested\":{\"key\":\"n\",\"filter\":{"
	    "\"should\":[{\"key\":\"s\",\"match\":{\"value\":\"v\"}}]}}}],"
	    "\"must_not\":{\"key\":\"g\",\"geo_radius\":{\"center\":{"
	    "\"lat\":1,\"lon\":2},\"radius\":3}}}";
	json_error_t jerr;
	json_t *j = json_loads(src, 0, &jerr);
	vecdb_filter *f = NULL;
	uint64_t n;
	int rv = VECDB_ENOMEM;

	ck_assert_ptr_nonnull(j);
	for (n = 1; rv == VECDB_ENOMEM; n++) {
		vdb_alloc_fail_after(n);
		rv = filter_compile(j, &f);
		ck_assert(rv == VECDB_OK || rv == VECDB_ENOMEM);
		if (rv == VECDB_ENOMEM)
			ck_assert_ptr_null(f);
	}
	vdb_alloc_fail_after(0);
	ck_assert_int_eq(rv, VECDB_OK);
	ck_assert_uint_gt(n, 5);
	vecdb_filter_free(f);
	json_decref(j);
}
END_TEST

/* What each evaluating thread is given. */
struct thread_arg {
	const vecdb_filter *f; /* shared by all threads */
	int wrong;             /* results that differed from expected */
};

/* Evaluate the shared filter many times over two payloads. */
static void *
eval_thread(void *p)
{
	struct thread_arg *a = p;
	json_t *yes = json_pack("{s:[{s:i},{s:i}]}", "d", "x", 0, "x", 2);
	json_t *no = json_pack("{s:[{s:i}]}", "d", "x", 0);
	int i;

	for (i = 0; i < 20000; i++)
		a->wrong += filter_match(a->f, yes) != 1 ||
		    filter_match(a->f, no) != 0;
	json_decref(yes);
	json_decref(no);
	return NULL;
}

START_TEST(one_filter_is_evaluated_by_many_threads_at_once)
{
	struct thread_arg args[4];
	pthread_t t[4];
	vecdb_filter *f;
	int i;

	ck_assert_int_eq(vecdb_filter_parse("{\"must\":{\"nested\":{\"key\":"
	    "\"d\",\"filter\":{\"must\":{\"key\":\"x\",\"range\":{\"gt\":1}}"
	    "}}}}", &f), VECDB_OK);
	for (i = 0; i < 4; i++) {
		args[i].f = f;
		args[i].wrong = 0;
		ck_assert_int_eq(pthread_create(&t[i], NULL, eval_thread,
		    &args[i]), 0);
	}
	for (i = 0; i < 4; i++) {
		pthread_join(t[i], NULL);
		ck_assert_int_eq(args[i].wrong, 0);
	}
	vecdb_filter_free(f);
}
END_TEST

/* ===== suite ===== */

/* A new TCase named @p name, added to @p s. */
static TCase *
tcase(Suite *s, const char *name)
{
	TCase *tc = tcase_create(name);

	suite_add_tcase(s, tc);
	return tc;
}

/* The condition TCases. */
static void
add_condition_cases(Suite *s)
{
	TCase *tc = tcase(s, "match value");

	tcase_add_test(tc, match_string_matches_equal_string);
	tcase_add_test(tc, match_integer_matches_equal_integer);
	tcase_add_test(tc, match_bool_matches_equal_bool);
	tc = tcase(s, "match any and except");
	tcase_add_test(tc, match_any_matches_one_of_the_list);
	tcase_add_test(tc, match_any_with_an_empty_list_matches_nothing);
	tcase_add_test(tc, match_except_matches_values_not_in_the_list);
	tcase_add_test(tc, match_except_does_not_hold_for_null_or_object);
	tcase_add_test(tc,
	    match_except_on_an_array_needs_one_element_outside_the_list);
	tc = tcase(s, "range");
	tcase_add_test(tc, range_bounds_are_inclusive_or_exclusive_at_the_edge);
	tcase_add_test(tc, range_with_two_bounds_needs_both);
	tcase_add_test(tc, range_compares_integers_and_reals_alike);
	tcase_add_test(tc, range_skips_values_that_are_not_numbers);
	tcase_add_test(tc, range_null_bound_counts_as_absent);
	tc = tcase(s, "geo radius");
	tcase_add_test(tc, geo_distance_paris_to_london_is_343_km);
	tcase_add_test(tc, geo_radius_matches_just_inside_and_not_just_outside);
	tcase_add_test(tc, geo_radius_checks_each_point_in_an_array);
	tcase_add_test(tc, geo_radius_skips_values_that_are_not_points);
}

/* The boolean-structure, nested, key and type TCases. */
static void
add_structure_cases(Suite *s)
{
	TCase *tc = tcase(s, "must should must_not");

	tcase_add_test(tc, empty_filter_matches_everything);
	tcase_add_test(tc, must_needs_every_condition);
	tcase_add_test(tc, should_needs_one_condition);
	tcase_add_test(tc, must_not_refuses_any_condition);
	tcase_add_test(tc, must_should_and_must_not_combine);
	tcase_add_test(tc, a_single_condition_object_counts_as_a_list_of_one);
	tcase_add_test(tc, filters_nest_as_conditions_three_levels_deep);
	tc = tcase(s, "nested");
	tcase_add_test(tc, nested_needs_both_conditions_on_the_same_element);
	tcase_add_test(tc, nested_applies_to_an_object_at_the_key);
	tcase_add_test(tc, nested_inside_nested_reaches_inner_arrays);
	tcase_add_test(tc, must_not_nested_refuses_a_matching_element);
	tc = tcase(s, "keys and arrays");
	tcase_add_test(tc, dotted_keys_reach_into_objects);
	tcase_add_test(tc, dotted_keys_pass_through_arrays_of_objects);
	tcase_add_test(tc, array_values_match_if_one_element_does);
	tcase_add_test(tc, arrays_are_flattened_one_level_only);
	tcase_add_test(tc, arrays_reached_through_arrays_are_flattened);
	tc = tcase(s, "missing keys");
	tcase_add_test(tc, every_condition_on_a_missing_key_is_false);
	tcase_add_test(tc, a_key_through_a_scalar_is_missing);
	tcase_add_test(tc,
	    a_null_or_non_object_payload_counts_as_an_empty_object);
	tc = tcase(s, "type rules");
	tcase_add_test(tc, match_integer_does_not_match_bool);
	tcase_add_test(tc, match_integer_matches_an_equal_real_exactly);
	tcase_add_test(tc, match_string_and_number_never_match_each_other);
	tcase_add_test(tc, match_string_compares_exact_bytes);
}

/* The error, limit, memory and thread TCases. */
static void
add_robustness_cases(Suite *s)
{
	TCase *tc = tcase(s, "malformed filters");

	tcase_add_loop_test(tc, malformed_filter_is_einval_with_its_location,
	    0, (int) (sizeof(bad_cases) / sizeof(bad_cases[0])));
	tcase_add_test(tc, null_json_or_null_out_is_einval);
	tcase_add_test(tc, compile_refuses_a_non_object_json_value);
	tcase_add_test(tc, compile_takes_copies_of_keys_and_strings);
	tcase_add_test(tc, filter_free_of_null_does_nothing);
	tc = tcase(s, "qdrant conditions");
	tcase_add_test(tc, match_text_holds_for_a_string_holding_it);
	tcase_add_test(tc,
	    datetime_range_compares_instants_across_formats_and_zones);
	tcase_add_test(tc,
	    geo_bounding_box_holds_inside_and_across_the_antimeridian);
	tcase_add_test(tc,
	    geo_polygon_holds_inside_the_exterior_and_outside_its_holes);
	tcase_add_test(tc,
	    values_count_counts_array_elements_and_single_values);
	tcase_add_test(tc,
	    is_empty_and_is_null_tell_missing_null_and_empty_apart);
	tcase_add_test(tc, min_should_needs_at_least_min_count_conditions);
	tcase_add_test(tc, has_id_holds_for_the_ids_listed_of_either_kind);
	tcase_add_test(tc, has_vector_asks_the_point);
	tc = tcase(s, "limits");
	tcase_add_test(tc, filters_nest_up_to_the_depth_limit);
	tcase_add_test(tc, nested_conditions_count_toward_the_depth_limit);
	tcase_add_test(tc, conditions_are_allowed_up_to_the_limit);
	tcase_add_test(tc, conditions_are_counted_across_nested_filters);
	tcase_add_test(tc, match_lists_are_allowed_up_to_1024_entries);
	tcase_add_test(tc, match_strings_are_allowed_up_to_4096_bytes);
	tcase_add_test(tc, keys_are_allowed_up_to_256_bytes);
	tc = tcase(s, "memory and threads");
	tcase_add_test(tc, compile_unwinds_cleanly_when_any_allocation_fails);
	tcase_add_test(tc, one_filter_is_evaluated_by_many_threads_at_once);
}

/* The payload filter suite. */
static Suite *
filter_suite(void)
{
	Suite *s = suite_create("filter");

	add_condition_cases(s);
	add_structure_cases(s);
	add_robustness_cases(s);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(filter_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
