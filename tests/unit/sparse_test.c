/*
 * sparse_test.c: the inverted index of sparse vectors (sparse.h) against
 * a naive reference that scores every stored vector: rankings and scores
 * with and without IDF, with a filter, after removals, replacements and
 * compactions; input checks; a put that fails on allocation changes
 * nothing; and searches racing writes (the "concurrency" case, run under
 * ThreadSanitizer: CK_RUN_CASE=concurrency build-tsan/tests/sparse_test).
 */
#include <check.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "sparse.h"
#include "testutil.h"
#include "vdb.h"

#define NDOC 3000
#define VOCAB 2000
#define MAXNNZ 40
#define K 20

/* The reference's copy of what the index holds: one vector a label. */
struct doc {
	int live;
	uint32_t idx[MAXNNZ];
	float val[MAXNNZ];
	uint32_t n;
};

static struct doc docs[NDOC];

/* A vector of 0..MAXNNZ pairs over a skewed vocabulary (low indices are
 * common, as words are), normalized. */
static void
rand_doc(uint64_t *seed, struct doc *d)
{
	uint32_t want = (uint32_t) (tu_rand(seed) % (MAXNNZ + 1));

	d->n = 0;
	while (d->n < want) {
		double u = (tu_randf(seed) + 1) / 2;
		uint32_t ix = (uint32_t) (pow(u, 3) * VOCAB);
		int dup = 0;

		for (uint32_t i = 0; i < d->n; i++)
			dup |= d->idx[i] == ix;
		if (dup)
			continue;
		d->idx[d->n] = ix;
		/* quarter-steps: products and sums stay exact in float */
		d->val[d->n++] = (float) (1 + tu_rand(seed) % 16) / 4;
	}
	ck_assert_int_eq(sparse_normalize(d->idx, d->val, d->n), VECDB_OK);
}

static sparse_vec
as_vec(const struct doc *d)
{
	return (sparse_vec) { d->idx, d->val, d->n };
}

static int
odd_only(void *arg, uint64_t label)
{
	(void) arg;
	return label % 2;
}

/* The reference: every live doc that shares an index with q, scored in
 * the order the index adds (query indices ascending), best k. */
static size_t
reference(const struct doc *q, int idf, sparse_accept_fn accept,
    sparse_hit *out, size_t k)
{
	static sparse_hit all[NDOC];
	size_t n = 0, live = 0;
	float w[MAXNNZ];

	for (size_t d = 0; d < NDOC; d++)
		live += docs[d].live;
	for (uint32_t i = 0; i < q->n; i++) {
		size_t df = 0;

		for (size_t d = 0; d < NDOC; d++)
			for (uint32_t j = 0; docs[d].live && j < docs[d].n; j++)
				df += docs[d].idx[j] == q->idx[i];
		w[i] = !idf ? q->val[i] : (float) (q->val[i] *
		    log1p(((double) live - (double) df + 0.5) /
		    ((double) df + 0.5)));
	}
	for (size_t d = 0; d < NDOC; d++) {
		float s = 0;
		int shared = 0;

		if (!docs[d].live || (accept && !accept(NULL, d)))
			continue;
		for (uint32_t i = 0; i < q->n; i++)
			for (uint32_t j = 0; j < docs[d].n; j++)
				if (docs[d].idx[j] == q->idx[i]) {
					s += w[i] * docs[d].val[j];
					shared = 1;
				}
		if (shared)
			all[n++] = (sparse_hit) { d, s };
	}
	/* selection by (score desc, label asc) */
	for (size_t i = 0; i < n && i < k; i++) {
		size_t b = i;

		for (size_t j = i + 1; j < n; j++)
			if (all[j].score > all[b].score ||
			    (all[j].score == all[b].score &&
			    all[j].label < all[b].label))
				b = j;
		sparse_hit t = all[i];
		all[i] = all[b];
		all[b] = t;
		out[i] = all[i];
	}
	return n < k ? n : k;
}

/* 50 queries: the index's answers equal the reference's, label for label
 * and score for score (the same float operations in the same order). */
static void
check_queries(sparse_index *s, int idf, sparse_accept_fn accept,
    uint64_t seed)
{
	for (int qi = 0; qi < 50; qi++) {
		struct doc q;
		sparse_hit got[K], want[K];
		size_t ng, nw;
		sparse_vec qv;

		rand_doc(&seed, &q);
		qv = as_vec(&q);
		ck_assert_int_eq(sparse_search(s, &qv, K, accept, NULL, got,
		    &ng), VECDB_OK);
		nw = reference(&q, idf, accept, want, K);
		ck_assert_uint_eq(ng, nw);
		for (size_t i = 0; i < ng; i++) {
			ck_assert_uint_eq(got[i].label, want[i].label);
			ck_assert_float_eq(got[i].score, want[i].score);
		}
	}
}

static sparse_index *
load(int idf, uint64_t seed)
{
	sparse_index *s;

	ck_assert_int_eq(sparse_new(idf, &s), VECDB_OK);
	for (size_t d = 0; d < NDOC; d++) {
		sparse_vec v;

		rand_doc(&seed, &docs[d]);
		docs[d].live = 1;
		v = as_vec(&docs[d]);
		ck_assert_int_eq(sparse_put(s, d, &v), VECDB_OK);
	}
	ck_assert_uint_eq(sparse_count(s), NDOC);
	return s;
}

/* Replace a third of the vectors and remove a third of the rest. */
static void
churn(sparse_index *s, uint64_t seed)
{
	for (size_t d = 0; d < NDOC; d++) {
		uint64_t r = tu_rand(&seed) % 3;
		int found;

		if (r == 0) {
			sparse_vec v;

			rand_doc(&seed, &docs[d]);
			docs[d].live = 1;
			v = as_vec(&docs[d]);
			ck_assert_int_eq(sparse_put(s, d, &v), VECDB_OK);
		} else if (r == 1) {
			ck_assert_int_eq(sparse_remove(s, d, &found),
			    VECDB_OK);
			ck_assert_int_eq(found, docs[d].live);
			docs[d].live = 0;
		}
	}
}

static size_t
live_docs(void)
{
	size_t n = 0;

	for (size_t d = 0; d < NDOC; d++)
		n += docs[d].live;
	return n;
}

/* ===== Tests ===== */

START_TEST(scores_and_ranking_equal_a_full_scan)
{
	sparse_index *s = load(0, 11);

	check_queries(s, 0, NULL, 12);
	sparse_free(s);
}
END_TEST

START_TEST(idf_weights_equal_a_full_scan)
{
	sparse_index *s = load(1, 21);

	check_queries(s, 1, NULL, 22);
	sparse_free(s);
}
END_TEST

START_TEST(a_filter_keeps_only_what_it_accepts)
{
	sparse_index *s = load(0, 31);

	check_queries(s, 0, odd_only, 32);
	sparse_free(s);
}
END_TEST

START_TEST(removals_and_replacements_are_seen_at_once)
{
	sparse_index *s = load(1, 41);
	size_t live, dead;

	churn(s, 42);
	ck_assert_uint_eq(sparse_count(s), live_docs());
	check_queries(s, 1, NULL, 43);
	check_queries(s, 1, odd_only, 44);
	/* a compaction drops the dead postings and changes no answer */
	ck_assert_int_eq(sparse_compact(s), VECDB_OK);
	sparse_postings(s, &live, &dead);
	ck_assert_uint_eq(dead, 0);
	check_queries(s, 1, NULL, 43);
	/* freed slots are reused by new vectors */
	churn(s, 45);
	check_queries(s, 1, NULL, 46);
	sparse_free(s);
}
END_TEST

START_TEST(writes_compact_on_their_own)
{
	sparse_index *s = load(0, 51);
	size_t live, dead, before;

	sparse_postings(s, &before, &dead);
	/* replacing every vector twice leaves dead postings outnumbering
	 * live ones at some point: a write compacts, so they never reach
	 * twice the live ones */
	for (int round = 0; round < 2; round++) {
		uint64_t seed = 52 + (uint64_t) round;

		for (size_t d = 0; d < NDOC; d++) {
			sparse_vec v;

			rand_doc(&seed, &docs[d]);
			v = as_vec(&docs[d]);
			ck_assert_int_eq(sparse_put(s, d, &v), VECDB_OK);
			sparse_postings(s, &live, &dead);
			ck_assert_uint_le(dead, live + NDOC + 1024);
		}
	}
	ck_assert_uint_eq(sparse_count(s), NDOC);
	check_queries(s, 0, NULL, 54);
	sparse_free(s);
}
END_TEST

START_TEST(empty_vectors_are_held_and_never_found)
{
	sparse_index *s;
	sparse_vec empty = { NULL, NULL, 0 };
	uint32_t ix[] = { 5 };
	float val[] = { 1 };
	sparse_vec q = { ix, val, 1 };
	sparse_hit h[4];
	size_t n;

	ck_assert_int_eq(sparse_new(1, &s), VECDB_OK);
	ck_assert_int_eq(sparse_put(s, 7, &empty), VECDB_OK);
	ck_assert(sparse_has(s, 7));
	ck_assert_uint_eq(sparse_count(s), 1);
	ck_assert_int_eq(sparse_search(s, &q, 4, NULL, NULL, h, &n),
	    VECDB_OK);
	ck_assert_uint_eq(n, 0);
	ck_assert_int_eq(sparse_put(s, 8, &q), VECDB_OK);
	ck_assert_int_eq(sparse_search(s, &q, 4, NULL, NULL, h, &n),
	    VECDB_OK);
	ck_assert_uint_eq(n, 1);
	ck_assert_uint_eq(h[0].label, 8);
	/* one holder out of two: weight ln(1 + 1.5 / 1.5) */
	ck_assert_float_eq_tol(h[0].score, (float) log(2.0), 1e-6);
	/* an empty query finds nothing */
	ck_assert_int_eq(sparse_search(s, &empty, 4, NULL, NULL, h, &n),
	    VECDB_OK);
	ck_assert_uint_eq(n, 0);
	sparse_free(s);
}
END_TEST

START_TEST(normalize_sorts_and_refuses_repeats_and_non_finite)
{
	uint32_t ix[] = { 9, 2, 5 };
	float val[] = { 0.9f, 0.2f, 0.5f };
	uint32_t dup[] = { 3, 1, 3 };
	float nan_val[] = { 1, NAN };
	sparse_index *s;
	sparse_vec unsorted = { dup, val, 2 };

	ck_assert_int_eq(sparse_normalize(ix, val, 3), VECDB_OK);
	ck_assert_uint_eq(ix[0], 2);
	ck_assert_uint_eq(ix[2], 9);
	ck_assert_float_eq(val[0], 0.2f);
	ck_assert_float_eq(val[2], 0.9f);
	ck_assert_int_eq(sparse_normalize(dup, val, 3), VECDB_EINVAL);
	ck_assert_str_eq(vecdb_errmsg(), "sparse index 3 appears twice");
	ck_assert_int_eq(sparse_normalize(ix, nan_val, 2), VECDB_EINVAL);
	ck_assert_ptr_nonnull(strstr(vecdb_errmsg(), "position 1"));
	/* the index takes only normalized vectors */
	ck_assert_int_eq(sparse_new(0, &s), VECDB_OK);
	dup[0] = 3;
	dup[1] = 1;
	ck_assert_int_eq(sparse_put(s, 1, &unsorted), VECDB_EINVAL);
	ck_assert_uint_eq(sparse_count(s), 0);
	sparse_free(s);
}
END_TEST

START_TEST(a_put_that_runs_out_of_memory_changes_nothing)
{
	sparse_index *s = load(0, 61);
	int failed = 0;

	/* replace and add vectors with the Nth allocation failing */
	for (int i = 0; i < 400; i++) {
		uint64_t seed = 62 + (uint64_t) i;
		size_t d = (size_t) i % NDOC, before = sparse_count(s);
		struct doc next;
		sparse_vec v;
		int rc;

		rand_doc(&seed, &next);
		v = as_vec(&next);
		vdb_alloc_fail_after(1 + (uint64_t) i % 3);
		rc = sparse_put(s, i % 2 ? d : NDOC + (size_t) i, &v);
		vdb_alloc_fail_after(0);
		if (rc == VECDB_OK) {
			if (i % 2)
				docs[d] = next;
			else
				ck_assert_uint_eq(sparse_count(s),
				    before + 1);
			docs[d].live = 1;
			continue;
		}
		failed++;
		ck_assert_int_eq(rc, VECDB_ENOMEM);
		ck_assert_uint_eq(sparse_count(s), before);
	}
	ck_assert_int_gt(failed, 0);
	/* the labels past NDOC are not in the reference: drop them */
	for (int i = 0; i < 400; i += 2)
		ck_assert_int_eq(sparse_remove(s, NDOC + (size_t) i, NULL),
		    VECDB_OK);
	ck_assert_uint_eq(sparse_count(s), NDOC);
	check_queries(s, 0, NULL, 63);
	sparse_free(s);
}
END_TEST

/* ===== Concurrency ===== */

struct race {
	sparse_index *s;
	int stop;
	int errors;
};

static void *
searcher(void *arg)
{
	struct race *r = arg;
	uint64_t seed = (uint64_t) (uintptr_t) &seed;
	sparse_hit h[K];

	while (!__atomic_load_n(&r->stop, __ATOMIC_ACQUIRE)) {
		struct doc q;
		sparse_vec qv;
		size_t n;

		rand_doc(&seed, &q);
		qv = as_vec(&q);
		if (sparse_search(r->s, &qv, K, odd_only, NULL, h, &n) !=
		    VECDB_OK)
			__atomic_add_fetch(&r->errors, 1, __ATOMIC_RELAXED);
		for (size_t i = 0; i < n; i++)
			if (h[i].label % 2 == 0 || (i && h[i].score >
			    h[i - 1].score))
				__atomic_add_fetch(&r->errors, 1,
				    __ATOMIC_RELAXED);
	}
	return NULL;
}

START_TEST(searches_race_puts_and_removes)
{
	struct race r = { load(1, 71), 0, 0 };
	pthread_t t[3];
	uint64_t seed = 72;

	for (int i = 0; i < 3; i++)
		ck_assert_int_eq(pthread_create(&t[i], NULL, searcher, &r), 0);
	for (int round = 0; round < 3; round++)
		for (size_t d = 0; d < NDOC; d++) {
			struct doc x;
			sparse_vec v;

			if (tu_rand(&seed) % 4 == 0) {
				ck_assert_int_eq(sparse_remove(r.s, d, NULL),
				    VECDB_OK);
				continue;
			}
			rand_doc(&seed, &x);
			v = as_vec(&x);
			ck_assert_int_eq(sparse_put(r.s, d, &v), VECDB_OK);
		}
	__atomic_store_n(&r.stop, 1, __ATOMIC_RELEASE);
	for (int i = 0; i < 3; i++)
		pthread_join(t[i], NULL);
	ck_assert_int_eq(r.errors, 0);
	sparse_free(r.s);
}
END_TEST

static Suite *
sparse_suite(void)
{
	Suite *s = suite_create("sparse");
	TCase *tc = tcase_create("search");

	tcase_add_test(tc, scores_and_ranking_equal_a_full_scan);
	tcase_add_test(tc, idf_weights_equal_a_full_scan);
	tcase_add_test(tc, a_filter_keeps_only_what_it_accepts);
	tcase_add_test(tc, removals_and_replacements_are_seen_at_once);
	tcase_add_test(tc, writes_compact_on_their_own);
	tcase_add_test(tc, empty_vectors_are_held_and_never_found);
	tcase_set_timeout(tc, 120);
	suite_add_tcase(s, tc);
	tc = tcase_create("input");
	tcase_add_test(tc, normalize_sorts_and_refuses_repeats_and_non_finite);
	tcase_add_test(tc, a_put_that_runs_out_of_memory_changes_nothing);
	suite_add_tcase(s, tc);
	tc = tcase_create("concurrency");
	tcase_add_test(tc, searches_race_puts_and_removes);
	tcase_set_timeout(tc, 300);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	return tu_run(sparse_suite());
}
