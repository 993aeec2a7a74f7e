/*
 * query_test.c: batch search, recommend and discover against naive
 * double-precision references computed here; exclusion, filters, errors.
 */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

#define N 400
#define DIM 8
#define TOPK 10

static float vecs[N][DIM];

/* The reference distance, in double precision. */
static double
ref_distance(vecdb_metric m, const float *a, const float *b)
{
	double dot = 0, na = 0, nb = 0, l2 = 0;

	for (int i = 0; i < DIM; i++) {
		dot += (double) a[i] * b[i];
		na += (double) a[i] * a[i];
		nb += (double) b[i] * b[i];
		l2 += ((double) a[i] - b[i]) * ((double) a[i] - b[i]);
	}
	if (m == VECDB_COSINE)
		return na == 0 || nb == 0 ? 1 :
		    1 - dot / (sqrt(na) * sqrt(nb));
	return sqrt(l2);
}

/* A reference answer: context hits (desc), distance (asc), id (asc). */
struct ref {
	int hits;
	double d;
	uint64_t id;
};

/* Order reference answers as the library documents. */
static int
ref_cmp(const void *a, const void *b)
{
	const struct ref *x = a, *y = b;

	if (x->hits != y->hits)
		return x->hits > y->hits ? -1 : 1;
	if (x->d != y->d)
		return x->d < y->d ? -1 : 1;
	return x->id < y->id ? -1 : x->id > y->id;
}

/* Filters used below, with the same predicate written in C. */
#define F_ODD \
	"{\"must\": [{\"key\": \"odd\", \"match\": {\"value\": true}}]}"
#define F_G1 "{\"must\": [{\"key\": \"g\", \"match\": {\"value\": 1}}]}"
#define F_NOT_G0 \
	"{\"must_not\": [{\"key\": \"g\", \"match\": {\"value\": 0}}]}"

enum which { ALL, ODD, G1, NOT_G0 };

/* Does point i pass the filter @p w? */
static int
passes(enum which w, int i)
{
	switch (w) {
	case ODD: return i % 2 == 1;
	case G1: return i % 3 == 1;
	case NOT_G0: return i % 3 != 0;
	default: return 1;
	}
}

/* Parse the filter for @p w (NULL for ALL). */
static vecdb_filter *
filter_for(enum which w)
{
	const char *json[] = { NULL, F_ODD, F_G1, F_NOT_G0 };
	vecdb_filter *f = NULL;

	if (w != ALL)
		ck_assert_int_eq(vecdb_filter_parse(json[w], &f), VECDB_OK);
	return f;
}

/* Is id in ids[0..n)? */
static int
in_list(uint64_t id, const uint64_t *ids, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (ids[i] == id)
			return 1;
	return 0;
}

/* Fill collection "s": payload {"i": id, "odd": b, "g": id % 3}. */
static void
fill(vecdb_metric m)
{
	static vecdb_point p[N];
	static char pay[N][64];
	uint64_t seed = 4242;

	tu_create(tu_db, "s", DIM, m);
	for (int i = 0; i < N; i++) {
		tu_rand_vector(&seed, vecs[i], DIM);
		snprintf(pay[i], sizeof(pay[i]),
		    "{\"i\":%d,\"odd\":%s,\"g\":%d}", i,
		    i % 2 ? "true" : "false", i % 3);
		p[i] = (vecdb_point) { vecdb_id_num((uint64_t) i), vecs[i],
			DIM, pay[i] };
	}
	ck_assert_int_eq(vecdb_upsert(tu_db, "s", p, N), VECDB_OK);
}

/* Compare a result with the first k sorted reference answers. */
static void
check_result(const vecdb_records *res, const struct ref *ref, size_t nref,
    size_t k, int with_hits)
{
	size_t want = nref < k ? nref : k;

	ck_assert_uint_eq(res->count, want);
	for (size_t i = 0; i < want; i++) {
		ck_assert_int_eq(res->items[i].id.kind, VECDB_ID_NUM);
		ck_assert_msg(res->items[i].id.num == ref[i].id,
		    "rank %zu: id %llu, reference %llu", i,
		    (unsigned long long) res->items[i].id.num,
		    (unsigned long long) ref[i].id);
		ck_assert_msg(fabs(res->items[i].distance - ref[i].d) <=
			1e-4 * (1 + fabs(ref[i].d)),
		    "rank %zu: distance %g, reference %g", i,
		    res->items[i].distance, ref[i].d);
		if (with_hits)
			ck_assert_uint_eq(res->items[i].context_hits,
			    (unsigned) ref[i].hits);
		else
			ck_assert_uint_eq(res->items[i].context_hits, 0);
	}
}

/* ===== Batch search ===== */

/* Two result lists are the same, field by field. */
static void
check_same(const vecdb_records *a, const vecdb_records *b)
{
	ck_assert_uint_eq(a->count, b->count);
	for (size_t i = 0; i < a->count; i++) {
		const vecdb_record *x = &a->items[i], *y = &b->items[i];
		ck_assert_int_eq(vecdb_id_cmp(&x->id, &y->id), 0);
		ck_assert(x->distance == y->distance);
		ck_assert_uint_eq(x->dim, y->dim);
		ck_assert_int_eq(x->payload == NULL, y->payload == NULL);
		if (x->payload != NULL)
			ck_assert_str_eq(x->payload, y->payload);
		ck_assert_int_eq(x->vector == NULL, y->vector == NULL);
		if (x->vector != NULL)
			ck_assert_mem_eq(x->vector, y->vector,
			    x->dim * sizeof(float));
	}
}

START_TEST(batch_search_equals_individual_searches)
{
	vecdb_search_params sp[3];
	vecdb_records **all, *one;
	vecdb_filter *odd = filter_for(ODD), *g1 = filter_for(G1);
	float q[3][DIM];
	uint64_t seed = 77;

	fill(_i == 0 ? VECDB_EUCLIDEAN : VECDB_COSINE);
	memset(sp, 0, sizeof(sp));
	for (int i = 0; i < 3; i++) {
		tu_rand_vector(&seed, q[i], DIM);
		sp[i].vector = q[i];
		sp[i].dim = DIM;
	}
	sp[0].limit = 10;
	sp[1] = (vecdb_search_params) { q[1], DIM, 7, 3, odd, 0, 0, 1, 0, 0, 0,
		0, NULL };
	sp[2] = (vecdb_search_params) { q[2], DIM, 5, 20, g1, 0, 1, 1, 1, 0, 0,
		0, NULL };
	ck_assert_int_eq(vecdb_search_batch(tu_db, "s", sp, 3, &all),
	    VECDB_OK);
	for (int i = 0; i < 3; i++) {
		ck_assert_int_eq(vecdb_search(tu_db, "s", &sp[i], &one),
		    VECDB_OK);
		ck_assert_uint_eq(all[i]->count, sp[i].limit);
		check_same(all[i], one);
		vecdb_records_free(one);
	}
	for (size_t j = 0; j < all[1]->count; j++)
		ck_assert(all[1]->items[j].id.num % 2 == 1);
	for (size_t j = 0; j < all[2]->count; j++)
		ck_assert(all[2]->items[j].id.num % 3 == 1);
	vecdb_records_free_array(all, 3);
	vecdb_filter_free(odd);
	vecdb_filter_free(g1);
}
END_TEST

START_TEST(batch_search_fails_whole_and_names_the_bad_search)
{
	vecdb_search_params sp[3];
	vecdb_records **all = NULL;
	float q[DIM + 1] = { 0 };

	fill(VECDB_EUCLIDEAN);
	for (int i = 0; i < 3; i++)
		sp[i] = (vecdb_search_params) { q, DIM, 4, 0, NULL, 0, 0, 0,
			0, 0, 0, 0, NULL };
	sp[1].limit = 0;
	ck_assert_int_eq(vecdb_search_batch(tu_db, "s", sp, 3, &all),
	    VECDB_EINVAL);
	ck_assert_str_eq(vecdb_errmsg(), "search 1: limit must be at least 1");
	ck_assert_ptr_null(all);
	sp[1].limit = 4;
	sp[2].dim = DIM + 1;
	ck_assert_int_eq(vecdb_search_batch(tu_db, "s", sp, 3, &all),
	    VECDB_EDIM);
	ck_assert_str_eq(vecdb_errmsg(),
	    "search 2: query has 9 dimensions, collection 's' expects 8");
	sp[2].dim = DIM;
	sp[0].vector = NULL;
	ck_assert_int_eq(vecdb_search_batch(tu_db, "s", sp, 3, &all),
	    VECDB_EINVAL);
	ck_assert_str_eq(vecdb_errmsg(),
	    "search 0: search needs a query vector");
	sp[0].vector = q;
	ck_assert_int_eq(vecdb_search_batch(tu_db, "none", sp, 3, &all),
	    VECDB_ENOTFOUND);
	ck_assert_ptr_null(all);
	/* An empty batch is a valid, empty answer. */
	ck_assert_int_eq(vecdb_search_batch(tu_db, "s", sp, 0, &all),
	    VECDB_OK);
	vecdb_records_free_array(all, 0);
	vecdb_records_free_array(NULL, 3);
}
END_TEST

/* ===== Recommend ===== */

static const uint64_t pos_ids[] = { 3, 17, 42 };
static const uint64_t neg_ids[] = { 5, 99 };
static const uint64_t excl_ids[] = { 250, 251, 8 };

/* Fill params with the positive/negative/exclude ids above. */
static void
reco_params(vecdb_recommend_params *p, vecdb_id *pos, vecdb_id *neg,
    vecdb_id *excl, vecdb_reco_strategy st)
{
	for (int i = 0; i < 3; i++)
		pos[i] = vecdb_id_num(pos_ids[i]);
	for (int i = 0; i < 2; i++)
		neg[i] = vecdb_id_num(neg_ids[i]);
	for (int i = 0; i < 3; i++)
		excl[i] = vecdb_id_num(excl_ids[i]);
	memset(p, 0, sizeof(*p));
	p->positive = pos;
	p->n_positive = 3;
	p->negative = neg;
	p->n_negative = 2;
	p->exclude = excl;
	p->n_exclude = 3;
	p->strategy = st;
	p->limit = TOPK;
}

/* Is point i an example or excluded in the recommend tests? */
static int
reco_skipped(int i)
{
	return in_list((uint64_t) i, pos_ids, 3) ||
	    in_list((uint64_t) i, neg_ids, 2) ||
	    in_list((uint64_t) i, excl_ids, 3);
}

/* Reference average_vector: 2*avg(pos) - avg(neg), then exact search. */
static size_t
ref_average(vecdb_metric m, enum which w, struct ref *ref)
{
	float q[DIM];
	size_t n = 0;

	for (int j = 0; j < DIM; j++) {
		double sp = 0, sn = 0;
		for (int i = 0; i < 3; i++)
			sp += vecs[pos_ids[i]][j];
		for (int i = 0; i < 2; i++)
			sn += vecs[neg_ids[i]][j];
		q[j] = (float) (2 * sp / 3 - sn / 2);
	}
	for (int i = 0; i < N; i++)
		if (!reco_skipped(i) && passes(w, i))
			ref[n++] = (struct ref) { 0,
				ref_distance(m, q, vecs[i]), (uint64_t) i };
	qsort(ref, n, sizeof(*ref), ref_cmp);
	return n;
}

/* Reference best_score: -sigmoid(-dp) if dp <= dn, else sigmoid(-dn). */
static size_t
ref_best(vecdb_metric m, enum which w, struct ref *ref)
{
	size_t n = 0;

	for (int i = 0; i < N; i++) {
		double dp = INFINITY, dn = INFINITY, d;
		if (reco_skipped(i) || !passes(w, i))
			continue;
		for (int k = 0; k < 3; k++)
			dp = fmin(dp, ref_distance(m, vecs[pos_ids[k]],
			    vecs[i]));
		for (int k = 0; k < 2; k++)
			dn = fmin(dn, ref_distance(m, vecs[neg_ids[k]],
			    vecs[i]));
		d = dp <= dn ? -1 / (1 + exp(dp)) : 1 / (1 + exp(dn));
		ref[n++] = (struct ref) { 0, d, (uint64_t) i };
	}
	qsort(ref, n, sizeof(*ref), ref_cmp);
	return n;
}

/* Run one recommend case against its reference. */
static void
check_recommend(vecdb_metric m, vecdb_reco_strategy st, enum which w)
{
	vecdb_recommend_params p;
	vecdb_id pos[3], neg[2], excl[3];
	vecdb_records *res;
	struct ref ref[N];
	size_t n;

	fill(m);
	reco_params(&p, pos, neg, excl, st);
	p.filter = filter_for(w);
	ck_assert_int_eq(vecdb_recommend(tu_db, "s", &p, &res), VECDB_OK);
	n = st == VECDB_RECO_AVERAGE_VECTOR ? ref_average(m, w, ref) :
	    ref_best(m, w, ref);
	check_result(res, ref, n, TOPK, 0);
	vecdb_records_free(res);
	/* The next page continues the same order. */
	p.offset = TOPK;
	p.limit = 5;
	ck_assert_int_eq(vecdb_recommend(tu_db, "s", &p, &res), VECDB_OK);
	check_result(res, ref + TOPK, n - TOPK, 5, 0);
	vecdb_records_free(res);
	/* And the whole ranking, both sides of best_score included. */
	p.offset = 0;
	p.limit = N;
	ck_assert_int_eq(vecdb_recommend(tu_db, "s", &p, &res), VECDB_OK);
	check_result(res, ref, n, N, 0);
	vecdb_records_free(res);
	vecdb_filter_free((vecdb_filter *) p.filter);
}

START_TEST(average_vector_matches_the_reference_euclidean)
{
	check_recommend(VECDB_EUCLIDEAN, VECDB_RECO_AVERAGE_VECTOR, ALL);
}
END_TEST

START_TEST(average_vector_matches_the_reference_cosine)
{
	check_recommend(VECDB_COSINE, VECDB_RECO_AVERAGE_VECTOR, ALL);
}
END_TEST

START_TEST(best_score_matches_the_reference_euclidean)
{
	check_recommend(VECDB_EUCLIDEAN, VECDB_RECO_BEST_SCORE, ALL);
}
END_TEST

START_TEST(best_score_matches_the_reference_cosine)
{
	check_recommend(VECDB_COSINE, VECDB_RECO_BEST_SCORE, ALL);
}
END_TEST

START_TEST(recommend_respects_the_filter)
{
	check_recommend(VECDB_EUCLIDEAN, VECDB_RECO_AVERAGE_VECTOR, ODD);
	ck_assert_int_eq(vecdb_collection_delete(tu_db, "s"), VECDB_OK);
	check_recommend(VECDB_COSINE, VECDB_RECO_BEST_SCORE, NOT_G0);
}
END_TEST

START_TEST(best_score_ranks_every_positive_side_candidate_first)
{
	vecdb_recommend_params p;
	vecdb_id pos[3], neg[2], excl[3];
	vecdb_records *res;
	size_t i = 0;

	fill(VECDB_EUCLIDEAN);
	reco_params(&p, pos, neg, excl, VECDB_RECO_BEST_SCORE);
	p.limit = N;
	ck_assert_int_eq(vecdb_recommend(tu_db, "s", &p, &res), VECDB_OK);
	ck_assert_uint_eq(res->count, N - 8);
	for (; i < res->count && res->items[i].distance < 0; i++)
		;
	ck_assert(i > 0 && i < res->count);
	for (; i < res->count; i++)
		ck_assert(res->items[i].distance > 0);
	vecdb_records_free(res);
}
END_TEST

/* Ids of a result, checked against the skipped ones. */
static void
check_none_skipped(const vecdb_records *res)
{
	for (size_t i = 0; i < res->count; i++)
		ck_assert_msg(!reco_skipped((int) res->items[i].id.num),
		    "id %llu returned",
		    (unsigned long long) res->items[i].id.num);
}

START_TEST(examples_and_excluded_ids_are_never_returned)
{
	vecdb_recommend_params p;
	vecdb_id pos[3], neg[2], excl[3];
	vecdb_records *res;

	fill(VECDB_EUCLIDEAN);
	for (int st = 0; st < 2; st++) {
		reco_params(&p, pos, neg, excl, (vecdb_reco_strategy) st);
		p.limit = N;
		ck_assert_int_eq(vecdb_recommend(tu_db, "s", &p, &res),
		    VECDB_OK);
		ck_assert_uint_eq(res->count, N - 8);
		check_none_skipped(res);
		vecdb_records_free(res);
	}
}
END_TEST

START_TEST(exclusion_happens_before_the_limit)
{
	vecdb_recommend_params p;
	vecdb_id pos[3], neg[2], excl[TOPK];
	vecdb_records *first, *res;

	fill(VECDB_EUCLIDEAN);
	reco_params(&p, pos, neg, excl, VECDB_RECO_AVERAGE_VECTOR);
	p.n_exclude = 0;
	ck_assert_int_eq(vecdb_recommend(tu_db, "s", &p, &first), VECDB_OK);
	ck_assert_uint_eq(first->count, TOPK);
	/* Exclude the whole first page: the next page moves up. */
	for (int i = 0; i < TOPK; i++)
		excl[i] = first->items[i].id;
	p.n_exclude = TOPK;
	p.limit = 2 * TOPK;
	ck_assert_int_eq(vecdb_recommend(tu_db, "s", &p, &res), VECDB_OK);
	vecdb_records_free(first);
	p.n_exclude = 0;
	p.limit = 3 * TOPK;
	ck_assert_int_eq(vecdb_recommend(tu_db, "s", &p, &first), VECDB_OK);
	ck_assert_uint_eq(res->count, 2 * TOPK);
	for (int i = 0; i < 2 * TOPK; i++)
		ck_assert_uint_eq(res->items[i].id.num,
		    first->items[TOPK + i].id.num);
	vecdb_records_free(first);
	vecdb_records_free(res);
}
END_TEST

START_TEST(raw_example_vectors_count_like_ids)
{
	vecdb_recommend_params p, r;
	vecdb_id pos[3], neg[2], excl[3];
	vecdb_records *a, *b;
	float pv[2][DIM];

	fill(VECDB_COSINE);
	for (int st = 0; st < 2; st++) {
		reco_params(&p, pos, neg, excl, (vecdb_reco_strategy) st);
		r = p;
		/* Positive 42 and negative 99 as vectors instead of ids;
		 * then exclude them, as ids they would be skipped. */
		memcpy(pv[0], vecs[42], sizeof(pv[0]));
		memcpy(pv[1], vecs[99], sizeof(pv[1]));
		r.n_positive = 2;
		r.n_negative = 1;
		r.positive_vectors = pv[0];
		r.n_positive_vectors = 1;
		r.negative_vectors = pv[1];
		r.n_negative_vectors = 1;
		r.dim = DIM;
		p.limit = 30;
		r.limit = 32;
		ck_assert_int_eq(vecdb_recommend(tu_db, "s", &p, &a),
		    VECDB_OK);
		ck_assert_int_eq(vecdb_recommend(tu_db, "s", &r, &b),
		    VECDB_OK);
		for (size_t i = 0, j = 0; i < a->count; i++, j++) {
			while (b->items[j].id.num == 42 ||
			    b->items[j].id.num == 99)
				j++;
			ck_assert_uint_eq(a->items[i].id.num,
			    b->items[j].id.num);
		}
		vecdb_records_free(a);
		vecdb_records_free(b);
	}
}
END_TEST

START_TEST(recommend_errors_are_reported)
{
	vecdb_recommend_params p;
	vecdb_id pos[3], neg[2], excl[3];
	vecdb_records *res = NULL;
	float v[2 * (DIM + 1)] = { 0 };

	fill(VECDB_EUCLIDEAN);
	reco_params(&p, pos, neg, excl, VECDB_RECO_BEST_SCORE);
	pos[1] = vecdb_id_num(7777);
	ck_assert_int_eq(vecdb_recommend(tu_db, "s", &p, &res),
	    VECDB_ENOTFOUND);
	ck_assert_str_eq(vecdb_errmsg(), "point 7777 not found in 's'");
	pos[1] = vecdb_id_num(17);
	neg[0] = vecdb_id_num(7);
	ck_assert_int_eq(vecdb_delete(tu_db, "s", &neg[0], 1, NULL), VECDB_OK);
	ck_assert_int_eq(vecdb_recommend(tu_db, "s", &p, &res),
	    VECDB_ENOTFOUND);
	ck_assert_str_eq(vecdb_errmsg(), "point 7 not found in 's'");
	neg[0] = vecdb_id_num(5);
	ck_assert_int_eq(vecdb_recommend(tu_db, "none", &p, &res),
	    VECDB_ENOTFOUND);
	/* Negatives alone are not enough. */
	p.n_positive = 0;
	ck_assert_int_eq(vecdb_recommend(tu_db, "s", &p, &res), VECDB_EINVAL);
	/* Raw vectors of the wrong dimension. */
	p.positive_vectors = v;
	p.n_positive_vectors = 2;
	p.dim = DIM + 1;
	ck_assert_int_eq(vecdb_recommend(tu_db, "s", &p, &res), VECDB_EDIM);
	ck_assert_str_eq(vecdb_errmsg(), "example vectors have 9 dimensions, "
	    "collection 's' expects 8");
	p.dim = DIM;
	v[DIM + 2] = NAN;
	ck_assert_int_eq(vecdb_recommend(tu_db, "s", &p, &res), VECDB_EINVAL);
	ck_assert_str_eq(vecdb_errmsg(),
	    "positive vector 1: vector component 2 is not a finite number");
	v[DIM + 2] = 0;
	p.limit = 0;
	ck_assert_int_eq(vecdb_recommend(tu_db, "s", &p, &res), VECDB_EINVAL);
	p.limit = 1;
	p.n_negative_vectors = 1023;
	p.negative_vectors = v;
	ck_assert_int_eq(vecdb_recommend(tu_db, "s", &p, &res), VECDB_EINVAL);
	ck_assert_ptr_null(res);
}
END_TEST

/* ===== Discover ===== */

/* Context pairs by id; the last pair is given as vectors of 60, 61. */
static const uint64_t ctx_ids[][2] = { { 10, 20 }, { 30, 40 }, { 50, 60 },
	{ 60, 61 } };
#define NCTX_IDS 3
#define NCTX 4
#define TARGET 124

/* Reference discover ranking, with or without the target. */
static size_t
ref_discover(vecdb_metric m, int with_target, enum which w, struct ref *ref)
{
	size_t n = 0;

	for (int i = 0; i < N; i++) {
		struct ref r = { 0, 0, (uint64_t) i };
		int skip = with_target && i == TARGET;
		for (int k = 0; k < NCTX_IDS; k++)
			skip |= in_list((uint64_t) i, ctx_ids[k], 2);
		if (skip || !passes(w, i))
			continue;
		for (int k = 0; k < NCTX; k++) {
			const float *pv = vecs[ctx_ids[k][0]];
			const float *nv = vecs[ctx_ids[k][1]];
			double dp = ref_distance(m, pv, vecs[i]);
			double dn = ref_distance(m, nv, vecs[i]);
			r.hits += dp < dn;
			r.d += dp - dn;
		}
		if (with_target)
			r.d = ref_distance(m, vecs[TARGET], vecs[i]);
		ref[n++] = r;
	}
	qsort(ref, n, sizeof(*ref), ref_cmp);
	return n;
}

/* Fill discover params: context pairs (3 by id, 1 by vector). */
static void
disc_params(vecdb_discover_params *p, vecdb_context_pair *ctx,
    float cv[2][DIM])
{
	memset(p, 0, sizeof(*p));
	for (int k = 0; k < NCTX_IDS; k++)
		ctx[k] = (vecdb_context_pair) { vecdb_id_num(ctx_ids[k][0]),
			vecdb_id_num(ctx_ids[k][1]) };
	memcpy(cv[0], vecs[ctx_ids[NCTX_IDS][0]], sizeof(cv[0]));
	memcpy(cv[1], vecs[ctx_ids[NCTX_IDS][1]], sizeof(cv[1]));
	p->context = ctx;
	p->n_context = NCTX_IDS;
	p->context_vectors = cv[0];
	p->n_context_vectors = 1;
	p->dim = DIM;
	p->limit = 25;
}

/* Run discover with context (and a target) against the reference. */
static void
check_discover(vecdb_metric m, int with_target, enum which w)
{
	vecdb_discover_params p;
	vecdb_context_pair ctx[NCTX_IDS];
	vecdb_records *res;
	struct ref ref[N];
	float cv[2][DIM];
	size_t n;

	fill(m);
	disc_params(&p, ctx, cv);
	p.has_target = with_target;
	p.target = vecdb_id_num(TARGET);
	p.filter = filter_for(w);
	ck_assert_int_eq(vecdb_discover(tu_db, "s", &p, &res), VECDB_OK);
	n = ref_discover(m, with_target, w, ref);
	check_result(res, ref, n, p.limit, 1);
	ck_assert(res->items[0].context_hits > 0);
	vecdb_records_free(res);
	p.limit = N;
	ck_assert_int_eq(vecdb_discover(tu_db, "s", &p, &res), VECDB_OK);
	check_result(res, ref, n, N, 1);
	vecdb_records_free(res);
	vecdb_filter_free((vecdb_filter *) p.filter);
}

START_TEST(discover_with_target_and_context_matches_the_reference)
{
	check_discover(_i == 0 ? VECDB_EUCLIDEAN : VECDB_COSINE, 1, ALL);
}
END_TEST

START_TEST(discover_with_context_only_matches_the_reference)
{
	check_discover(_i == 0 ? VECDB_EUCLIDEAN : VECDB_COSINE, 0, ALL);
}
END_TEST

START_TEST(discover_respects_the_filter)
{
	check_discover(VECDB_EUCLIDEAN, 1, G1);
	ck_assert_int_eq(vecdb_collection_delete(tu_db, "s"), VECDB_OK);
	check_discover(VECDB_COSINE, 0, ODD);
}
END_TEST

START_TEST(discover_with_target_only_is_a_search_without_the_target)
{
	vecdb_discover_params p;
	vecdb_search_params sp = { 0 };
	vecdb_records *res, *s;
	vecdb_filter *f = filter_for(NOT_G0);
	float tv[DIM];

	fill(VECDB_EUCLIDEAN);
	memset(&p, 0, sizeof(p));
	p.has_target = 1;
	p.target = vecdb_id_num(TARGET);
	p.limit = 12;
	p.offset = 3;
	p.filter = f;
	ck_assert_int_eq(vecdb_discover(tu_db, "s", &p, &res), VECDB_OK);
	/* The search finds the target itself first (distance 0). */
	sp = (vecdb_search_params) { vecs[TARGET], DIM, 16, 0, f, 0, 1, 0, 0, 0,
		0, 0, NULL };
	ck_assert_int_eq(vecdb_search(tu_db, "s", &sp, &s), VECDB_OK);
	ck_assert_uint_eq(s->items[0].id.num, TARGET);
	ck_assert_uint_eq(res->count, 12);
	for (size_t i = 0; i < res->count; i++) {
		ck_assert_uint_eq(res->items[i].id.num,
		    s->items[4 + i].id.num);
		ck_assert(res->items[i].distance == s->items[4 + i].distance);
		ck_assert(res->items[i].id.num % 3 != 0);
		ck_assert_uint_eq(res->items[i].context_hits, 0);
	}
	vecdb_records_free(res);
	vecdb_records_free(s);
	/* By vector instead of id: the target point is then a candidate. */
	memcpy(tv, vecs[TARGET], sizeof(tv));
	p.target = (vecdb_id) { VECDB_ID_NONE, 0, { 0 } };
	p.target_vector = tv;
	p.dim = DIM;
	p.offset = 0;
	ck_assert_int_eq(vecdb_discover(tu_db, "s", &p, &res), VECDB_OK);
	ck_assert_uint_eq(res->items[0].id.num, TARGET);
	ck_assert_float_eq(res->items[0].distance, 0);
	vecdb_records_free(res);
	vecdb_filter_free(f);
}
END_TEST

START_TEST(discover_errors_are_reported)
{
	vecdb_discover_params p;
	vecdb_context_pair ctx[NCTX_IDS];
	vecdb_records *res = NULL;
	float cv[2][DIM];

	fill(VECDB_EUCLIDEAN);
	disc_params(&p, ctx, cv);
	p.n_context = 0;
	p.n_context_vectors = 0;
	ck_assert_int_eq(vecdb_discover(tu_db, "s", &p, &res), VECDB_EINVAL);
	p.n_context = NCTX_IDS;
	ctx[1].negative = vecdb_id_num(9999);
	ck_assert_int_eq(vecdb_discover(tu_db, "s", &p, &res),
	    VECDB_ENOTFOUND);
	ck_assert_str_eq(vecdb_errmsg(), "point 9999 not found in 's'");
	ctx[1].negative = vecdb_id_num(40);
	p.has_target = 1;
	p.target = vecdb_id_num(8888);
	ck_assert_int_eq(vecdb_discover(tu_db, "s", &p, &res),
	    VECDB_ENOTFOUND);
	ck_assert_str_eq(vecdb_errmsg(), "point 8888 not found in 's'");
	p.target.kind = VECDB_ID_NONE;
	ck_assert_int_eq(vecdb_discover(tu_db, "s", &p, &res), VECDB_EINVAL);
	p.target_vector = cv[0];
	p.n_context_vectors = 1;
	p.dim = DIM - 1;
	ck_assert_int_eq(vecdb_discover(tu_db, "s", &p, &res), VECDB_EDIM);
	p.dim = DIM;
	ck_assert_int_eq(vecdb_discover(tu_db, "none", &p, &res),
	    VECDB_ENOTFOUND);
	ck_assert_ptr_null(res);
	ck_assert_int_eq(vecdb_discover(tu_db, "s", &p, &res), VECDB_OK);
	vecdb_records_free(res);
}
END_TEST

static Suite *
query_suite(void)
{
	Suite *s = suite_create("query");
	TCase *tc;

	tc = tcase_create("batch search");
	tu_add_db_fixture(tc);
	tcase_add_loop_test(tc, batch_search_equals_individual_searches, 0, 2);
	tcase_add_test(tc, batch_search_fails_whole_and_names_the_bad_search);
	suite_add_tcase(s, tc);
	tc = tcase_create("recommend");
	tu_add_db_fixture(tc);
	tcase_add_test(tc, average_vector_matches_the_reference_euclidean);
	tcase_add_test(tc, average_vector_matches_the_reference_cosine);
	tcase_add_test(tc, best_score_matches_the_reference_euclidean);
	tcase_add_test(tc, best_score_matches_the_reference_cosine);
	tcase_add_test(tc, recommend_respects_the_filter);
	tcase_add_test(tc,
	    best_score_ranks_every_positive_side_candidate_first);
	tcase_add_test(tc, examples_and_excluded_ids_are_never_returned);
	tcase_add_test(tc, exclusion_happens_before_the_limit);
	tcase_add_test(tc, raw_example_vectors_count_like_ids);
	tcase_add_test(tc, recommend_errors_are_reported);
	suite_add_tcase(s, tc);
	tc = tcase_create("discover");
	tu_add_db_fixture(tc);
	tcase_add_loop_test(tc,
	    discover_with_target_and_context_matches_the_reference, 0, 2);
	tcase_add_loop_test(tc,
	    discover_with_context_only_matches_the_reference, 0, 2);
	tcase_add_test(tc, discover_respects_the_filter);
	tcase_add_test(tc,
	    discover_with_target_only_is_a_search_without_the_target);
	tcase_add_test(tc, discover_errors_are_reported);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	return tu_run(query_suite());
}
