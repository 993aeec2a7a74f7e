/*
 * fusion_test.c: vecdb_fuse (common/vdb_fusion.c), each method on lists
 * made by hand with the fused scores worked out here, and on random
 * lists against a reference computed in the test from the two lists.
 */
#include <check.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"
#include "vdb.h"

/* A ranking of n (id, score) pairs, best first; each hit owns a
 * payload naming its list, so that copies and frees are checked. */
static vecdb_records *
ranking(const char *tag, size_t n, ...)
{
	vecdb_records *r = vdb_calloc(1, sizeof(*r));
	va_list ap;

	ck_assert_ptr_nonnull(r);
	r->items = vdb_calloc(n ? n : 1, sizeof(vecdb_record));
	ck_assert_ptr_nonnull(r->items);
	va_start(ap, n);
	for (size_t i = 0; i < n; i++) {
		r->items[i].id = vecdb_id_num((uint64_t) va_arg(ap, int));
		r->items[i].score = (float) va_arg(ap, double);
		r->items[i].payload = vdb_strdup(tag);
	}
	va_end(ap);
	r->count = n;
	return r;
}

static vecdb_records *
fuse(const vecdb_records *a, const vecdb_records *b, vecdb_fusion method,
    uint32_t limit)
{
	vecdb_fusion_params p;
	vecdb_records *out;

	vecdb_fusion_params_init(&p);
	p.method = method;
	p.limit = limit;
	ck_assert_int_eq(vecdb_fuse(a, b, &p, &out), VECDB_OK);
	return out;
}

static void
expect(const vecdb_records *r, size_t i, uint64_t id, double score)
{
	ck_assert_uint_gt(r->count, i);
	ck_assert_uint_eq(r->items[i].id.num, id);
	ck_assert_float_eq_tol(r->items[i].score, score, 1e-6);
}

START_TEST(rrf_sums_reciprocal_ranks)
{
	vecdb_records *d = ranking("d", 3, 1, 0.9, 2, 0.8, 3, 0.1);
	vecdb_records *s = ranking("s", 2, 3, 12.0, 4, 7.0);
	vecdb_records *r = fuse(d, s, VECDB_FUSION_RRF, 10);

	/* 3: 1/63 + 1/61; 1: 1/61; 2: 1/62 and 4: 1/62, tied: by id */
	ck_assert_uint_eq(r->count, 4);
	expect(r, 0, 3, 1.0 / 63 + 1.0 / 61);
	expect(r, 1, 1, 1.0 / 61);
	expect(r, 2, 2, 1.0 / 62);
	expect(r, 3, 4, 1.0 / 62);
	/* the record comes from the first list that holds it */
	ck_assert_str_eq(r->items[0].payload, "d");
	ck_assert_str_eq(r->items[3].payload, "s");
	vecdb_records_free(r);
	/* limit cuts after sorting */
	r = fuse(d, s, VECDB_FUSION_RRF, 2);
	ck_assert_uint_eq(r->count, 2);
	expect(r, 1, 1, 1.0 / 61);
	vecdb_records_free(r);
	vecdb_records_free(d);
	vecdb_records_free(s);
}
END_TEST

START_TEST(relative_score_weighs_min_max_normalised_scores)
{
	vecdb_records *d = ranking("d", 3, 1, 0.9, 2, 0.5, 3, 0.1);
	vecdb_records *s = ranking("s", 3, 3, 10.0, 4, 6.0, 2, 2.0);
	vecdb_records *r = fuse(d, s, VECDB_FUSION_RELATIVE_SCORE, 10);

	/* dense: 1 -> 1, 2 -> 0.5, 3 -> 0; sparse: 3 -> 1, 4 -> 0.5,
	 * 2 -> 0; alpha 0.7 */
	ck_assert_uint_eq(r->count, 4);
	expect(r, 0, 1, 0.7);
	expect(r, 1, 2, 0.35);
	expect(r, 2, 3, 0.3);
	expect(r, 3, 4, 0.15);
	vecdb_records_free(r);
	vecdb_records_free(d);
	vecdb_records_free(s);
}
END_TEST

START_TEST(dbsf_sums_three_sigma_normalised_scores)
{
	/* dense 1, 2, 3: mean 2, sd sqrt(2/3); sparse 3 -> 5, 4 -> 1 */
	vecdb_records *d = ranking("d", 3, 1, 3.0, 2, 2.0, 3, 1.0);
	vecdb_records *s = ranking("s", 2, 3, 5.0, 4, 1.0);
	vecdb_records *r = fuse(d, s, VECDB_FUSION_DBSF, 10);
	double sd = sqrt(2.0 / 3), lo = 2 - 3 * sd;

	ck_assert_uint_eq(r->count, 4);
	/* 3: dense (1 - lo) / 6sd + sparse (5 - (3 - 6)) / 12 */
	expect(r, 0, 3, (1 - lo) / (6 * sd) + 8.0 / 12);
	expect(r, 1, 1, (3 - lo) / (6 * sd));
	expect(r, 2, 2, 0.5);
	expect(r, 3, 4, 4.0 / 12);
	vecdb_records_free(r);
	vecdb_records_free(d);
	vecdb_records_free(s);
}
END_TEST

START_TEST(flat_lists_empty_lists_and_bad_parameters)
{
	vecdb_records *one = ranking("d", 1, 5, 0.3);
	vecdb_records *flat = ranking("s", 2, 6, 2.0, 7, 2.0);
	vecdb_records *r;
	vecdb_fusion_params p;

	/* a list of equal scores: relative 1 each, dbsf 0.5 each */
	r = fuse(one, flat, VECDB_FUSION_RELATIVE_SCORE, 10);
	expect(r, 0, 5, 0.7);
	expect(r, 1, 6, 0.3);
	expect(r, 2, 7, 0.3);
	vecdb_records_free(r);
	r = fuse(one, flat, VECDB_FUSION_DBSF, 10);
	expect(r, 0, 5, 0.5);
	expect(r, 2, 7, 0.5);
	vecdb_records_free(r);
	/* either list may be missing */
	r = fuse(NULL, flat, VECDB_FUSION_RRF, 10);
	ck_assert_uint_eq(r->count, 2);
	vecdb_records_free(r);
	r = fuse(NULL, NULL, VECDB_FUSION_DBSF, 10);
	ck_assert_uint_eq(r->count, 0);
	vecdb_records_free(r);

	vecdb_fusion_params_init(&p);
	p.limit = 0;
	ck_assert_int_eq(vecdb_fuse(one, flat, &p, &r), VECDB_EINVAL);
	ck_assert_ptr_null(r);
	vecdb_fusion_params_init(&p);
	p.alpha = 1.5f;
	ck_assert_int_eq(vecdb_fuse(one, flat, &p, &r), VECDB_EINVAL);
	ck_assert_str_eq(vecdb_errmsg(), "alpha must be in [0, 1]");
	vecdb_fusion_params_init(&p);
	p.rrf_k = -1;
	ck_assert_int_eq(vecdb_fuse(one, flat, &p, &r), VECDB_EINVAL);
	vecdb_fusion_params_init(&p);
	p.method = (vecdb_fusion) 9;
	ck_assert_int_eq(vecdb_fuse(one, flat, &p, &r), VECDB_EINVAL);
	vecdb_records_free(one);
	vecdb_records_free(flat);
}
END_TEST

/* ===== Random lists against a reference ===== */

#define IDS 60

/* The reference: per id, each list's contribution by the method's
 * definition, computed straight from the list. */
static double
ref_part(const vecdb_records *l, vecdb_fusion m, double weight, uint64_t id)
{
	double lo = INFINITY, hi = -INFINITY, mean = 0, var = 0, sd, s;
	size_t i;

	for (i = 0; i < l->count && l->items[i].id.num != id; i++)
		;
	if (i == l->count)
		return 0;
	s = l->items[i].score;
	if (m == VECDB_FUSION_RRF)
		return 1.0 / (60.0 + (double) i + 1);
	for (size_t j = 0; j < l->count; j++) {
		lo = fmin(lo, l->items[j].score);
		hi = fmax(hi, l->items[j].score);
		mean += l->items[j].score;
	}
	mean /= (double) l->count;
	if (m == VECDB_FUSION_RELATIVE_SCORE)
		return weight * (hi > lo ? (s - lo) / (hi - lo) : 1);
	for (size_t j = 0; j < l->count; j++)
		var += pow(l->items[j].score - mean, 2) / (double) l->count;
	sd = sqrt(var);
	return sd > 0 ? fmin(1, fmax(0, (s - mean + 3 * sd) / (6 * sd))) :
	    0.5;
}

/* A random ranking of up to IDS/2 distinct ids out of IDS, scores
 * descending. */
static vecdb_records *
rand_ranking(uint64_t *seed)
{
	vecdb_records *r = vdb_calloc(1, sizeof(*r));
	int used[IDS] = { 0 };
	size_t n = tu_rand(seed) % (IDS / 2);
	float score = 100 * tu_randf(seed);

	ck_assert_ptr_nonnull(r);
	r->items = vdb_calloc(n ? n : 1, sizeof(vecdb_record));
	ck_assert_ptr_nonnull(r->items);
	for (size_t i = 0; i < n; i++) {
		uint64_t id;

		do
			id = tu_rand(seed) % IDS;
		while (used[id]);
		used[id] = 1;
		r->items[i].id = vecdb_id_num(id);
		r->items[i].score = score;
		score -= (float) (tu_rand(seed) % 3) * 0.25f;
	}
	r->count = n;
	return r;
}

START_TEST(random_rankings_fuse_like_the_reference)
{
	uint64_t seed = 7;
	const vecdb_fusion methods[] = { VECDB_FUSION_RRF,
	    VECDB_FUSION_RELATIVE_SCORE, VECDB_FUSION_DBSF };

	for (int round = 0; round < 300; round++) {
		vecdb_records *a = rand_ranking(&seed), *b = rand_ranking(&seed);
		vecdb_fusion m = methods[round % 3];
		uint32_t limit = 1 + (uint32_t) (tu_rand(&seed) % 20);
		vecdb_records *r = fuse(a, b, m, limit);
		double want[IDS];
		int present[IDS] = { 0 };
		size_t n = 0;

		for (uint64_t id = 0; id < IDS; id++) {
			want[id] = ref_part(a, m, 0.7, id) +
			    ref_part(b, m, 0.3, id);
			for (size_t i = 0; i < a->count; i++)
				present[id] |= a->items[i].id.num == id;
			for (size_t i = 0; i < b->count; i++)
				present[id] |= b->items[i].id.num == id;
			n += present[id];
		}
		ck_assert_uint_eq(r->count, n < limit ? n : limit);
		for (size_t i = 0; i < r->count; i++) {
			uint64_t id = r->items[i].id.num;

			ck_assert(present[id]);
			ck_assert_float_eq_tol(r->items[i].score, want[id],
			    1e-5);
			/* nothing left out ranks above the last kept */
			if (i + 1 == r->count)
				for (uint64_t o = 0; o < IDS; o++) {
					int kept = 0;

					for (size_t j = 0; j < r->count; j++)
						kept |= r->items[j].id.num == o;
					ck_assert(kept || !present[o] ||
					    want[o] <= want[id] + 1e-9);
				}
			if (i)
				ck_assert(want[r->items[i - 1].id.num] >=
				    want[id] - 1e-9);
		}
		vecdb_records_free(r);
		vecdb_records_free(a);
		vecdb_records_free(b);
	}
}
END_TEST

START_TEST(running_out_of_memory_leaks_nothing)
{
	vecdb_records *d = ranking("d", 3, 1, 0.9, 2, 0.8, 3, 0.1);
	vecdb_records *s = ranking("s", 2, 3, 12.0, 4, 7.0);
	vecdb_fusion_params p;
	int failed = 0;

	vecdb_fusion_params_init(&p);
	for (uint64_t n = 1; n < 16; n++) {
		vecdb_records *r = NULL;
		int rc;

		vdb_alloc_fail_after(n);
		rc = vecdb_fuse(d, s, &p, &r);
		vdb_alloc_fail_after(0);
		if (rc == VECDB_OK) {
			ck_assert_uint_eq(r->count, 4);
			vecdb_records_free(r);
			continue;
		}
		failed++;
		ck_assert_int_eq(rc, VECDB_ENOMEM);
		ck_assert_ptr_null(r);
	}
	ck_assert_int_gt(failed, 3);
	vecdb_records_free(d);
	vecdb_records_free(s);
}
END_TEST

static Suite *
fusion_suite(void)
{
	Suite *s = suite_create("fusion");
	TCase *tc = tcase_create("methods");

	tcase_add_test(tc, rrf_sums_reciprocal_ranks);
	tcase_add_test(tc, relative_score_weighs_min_max_normalised_scores);
	tcase_add_test(tc, dbsf_sums_three_sigma_normalised_scores);
	tcase_add_test(tc, flat_lists_empty_lists_and_bad_parameters);
	tcase_add_test(tc, random_rankings_fuse_like_the_reference);
	tcase_add_test(tc, running_out_of_memory_leaks_nothing);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	return tu_run(fusion_suite());
}
