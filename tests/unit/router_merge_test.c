/*
 * router_merge_test.c: how the router makes one answer of its shards'
 * answers, and how it splits a batch over its shards (router_merge.c),
 * on lists and answers built by hand: no node, no socket.
 */
#include <check.h>
#include <stdarg.h>
#include <string.h>

#include "router_impl.h"
#include "testutil.h"
#include "vdb.h"

/* ===== Helpers ===== */

/* A shard's answer of n hits: (id, distance) pairs, as a node sends them
 * (best first). Each hit owns a payload, so that dropped hits are freed. */
static vecdb_records *
hits(size_t n, ...)
{
	vecdb_records *r = vdb_calloc(1, sizeof(*r));
	va_list ap;

	ck_assert_ptr_nonnull(r);
	r->items = vdb_calloc(n ? n : 1, sizeof(vecdb_record));
	ck_assert_ptr_nonnull(r->items);
	va_start(ap, n);
	for (size_t i = 0; i < n; i++) {
		r->items[i].id = vecdb_id_num((uint64_t) va_arg(ap, int));
		r->items[i].distance = (float) va_arg(ap, double);
		r->items[i].payload = vdb_strdup("{}");
	}
	va_end(ap);
	r->count = n;
	return r;
}

/* A scroll page of n ids (ascending), with a shard's next id or none
 * (next 0). */
static vecdb_records *
page(uint64_t next, size_t n, ...)
{
	vecdb_records *r = vdb_calloc(1, sizeof(*r));
	va_list ap;

	ck_assert_ptr_nonnull(r);
	r->items = vdb_calloc(n ? n : 1, sizeof(vecdb_record));
	ck_assert_ptr_nonnull(r->items);
	va_start(ap, n);
	for (size_t i = 0; i < n; i++)
		r->items[i].id = vecdb_id_num((uint64_t) va_arg(ap, int));
	va_end(ap);
	r->count = n;
	r->has_next = next != 0;
	if (next != 0)
		r->next = vecdb_id_num(next);
	return r;
}

/* Assert that m holds exactly the ids given, in that order. */
static void
ids_are(const vecdb_records *m, size_t n, ...)
{
	va_list ap;

	ck_assert_uint_eq(m->count, n);
	va_start(ap, n);
	for (size_t i = 0; i < n; i++) {
		uint64_t want = (uint64_t) va_arg(ap, int);
		ck_assert_msg(m->items[i].id.num == want, "hit %zu: id %llu, "
		    "want %llu", i, (unsigned long long) m->items[i].id.num,
		    (unsigned long long) want);
	}
	va_end(ap);
}

/* Merge n lists (freed here) by cmp with offset and limit. */
static vecdb_records *
merged(vecdb_records **lists, size_t n, int (*cmp)(const void *,
    const void *), uint32_t offset, uint32_t limit)
{
	vecdb_records *m = NULL;

	ck_assert_int_eq(router_merge_records(lists, n, cmp, offset, limit,
	    &m), VECDB_OK);
	for (size_t i = 0; i < n; i++) {
		ck_assert_uint_eq(lists[i]->count, 0);  /* moved out */
		vecdb_records_free(lists[i]);
	}
	return m;
}

/* ===== Top-k of hits ===== */

START_TEST(hits_of_three_shards_merge_by_distance_then_id)
{
	vecdb_records *l[3] = {
		hits(3, 1, 0.1, 4, 0.5, 7, 0.9),
		hits(2, 2, 0.1, 5, 0.3),
		hits(2, 3, 0.05, 6, 0.5),
	};
	vecdb_records *m = merged(l, 3, router_by_distance, 0, 10);

	/* ties (0.1: ids 1 and 2; 0.5: ids 4 and 6) go by id */
	ids_are(m, 7, 3, 1, 2, 5, 4, 6, 7);
	for (size_t i = 1; i < m->count; i++)
		ck_assert(m->items[i - 1].distance <= m->items[i].distance);
	vecdb_records_free(m);
}
END_TEST

START_TEST(a_tie_goes_by_id_whatever_the_shard_order)
{
	vecdb_records *l[2] = { hits(1, 9, 1.0), hits(1, 2, 1.0) };
	vecdb_records *m = merged(l, 2, router_by_distance, 0, 10);

	ids_are(m, 2, 2, 9);
	vecdb_records_free(m);
}
END_TEST

/* The router never looks at the metric: a node's distance is lower-is-
 * better for every one (cosine 1 - cos, euclidean, dot -a.b), so the
 * highest dot product is the most negative distance and comes first. */
START_TEST(dot_product_hits_come_highest_product_first)
{
	vecdb_records *l[2] = {
		hits(2, 1, -9.0, 2, -1.0),
		hits(2, 3, -5.0, 4, 2.0),
	};
	vecdb_records *m = merged(l, 2, router_by_distance, 0, 10);

	ids_are(m, 4, 1, 3, 2, 4);
	ck_assert(m->items[0].distance == -9.0f);
	vecdb_records_free(m);
}
END_TEST

START_TEST(euclidean_hits_come_nearest_first)
{
	vecdb_records *l[2] = { hits(2, 1, 0.0, 2, 5.0), hits(1, 4, 1.0) };
	vecdb_records *m = merged(l, 2, router_by_distance, 0, 10);

	ids_are(m, 3, 1, 4, 2);
	vecdb_records_free(m);
}
END_TEST

START_TEST(offset_and_limit_apply_after_the_merge)
{
	vecdb_records *l[3] = {
		hits(3, 1, 0.1, 4, 0.5, 7, 0.9),
		hits(2, 2, 0.1, 5, 0.3),
		hits(2, 3, 0.05, 6, 0.5),
	};
	/* merged order: 3 1 2 5 4 6 7; skip 2, keep 3 */
	vecdb_records *m = merged(l, 3, router_by_distance, 2, 3);

	ids_are(m, 3, 2, 5, 4);
	vecdb_records_free(m);
}
END_TEST

START_TEST(an_offset_past_every_hit_gives_none)
{
	vecdb_records *l[2] = { hits(1, 1, 0.1), hits(1, 2, 0.2) };
	vecdb_records *m = merged(l, 2, router_by_distance, 5, 10);

	ck_assert_uint_eq(m->count, 0);
	vecdb_records_free(m);
}
END_TEST

START_TEST(no_shard_answered_gives_an_empty_list)
{
	vecdb_records *m = merged(NULL, 0, router_by_distance, 0, 10);

	ck_assert_uint_eq(m->count, 0);
	vecdb_records_free(m);
}
END_TEST

/* A batch: each search merges its own lists with its own offset and
 * limit (the shards were asked limit+offset from 0). */
START_TEST(a_batch_merges_each_search_with_its_own_limit)
{
	vecdb_records **per[2];
	struct api_search s[2];
	vecdb_records **out = NULL;

	memset(s, 0, sizeof(s));
	s[0].p.limit = 2;
	s[1].p.limit = 1;
	s[1].p.offset = 1;
	for (int i = 0; i < 2; i++)
		ck_assert_ptr_nonnull(per[i] = vdb_calloc(2, sizeof(*per[i])));
	per[0][0] = hits(2, 1, 0.3, 3, 0.4);
	per[1][0] = hits(2, 2, 0.1, 4, 0.9);
	per[0][1] = hits(2, 5, 0.2, 6, 0.6);
	per[1][1] = hits(1, 7, 0.5);
	ck_assert_int_eq(router_merge_search(per, 2, s, 2, &out), VECDB_OK);
	ids_are(out[0], 2, 2, 1);
	ids_are(out[1], 1, 7);
	vecdb_records_free_array(out, 2);
	for (int i = 0; i < 2; i++)
		vecdb_records_free_array(per[i], 2);
}
END_TEST

/* Discover: more context pairs satisfied first, then distance, then id. */
START_TEST(discover_hits_merge_by_context_hits_first)
{
	vecdb_records *l[2] = {
		hits(2, 1, 0.1, 2, 0.9),
		hits(2, 3, 0.5, 4, 0.5),
	};
	vecdb_records *m;

	l[0]->items[0].context_hits = 1;
	l[0]->items[1].context_hits = 2;
	l[1]->items[0].context_hits = 2;
	l[1]->items[1].context_hits = 0;
	m = merged(l, 2, router_by_hits, 0, 10);
	ids_are(m, 4, 3, 2, 1, 4);
	vecdb_records_free(m);
}
END_TEST

/* ===== Scroll ===== */

/* Merge scroll pages (freed here) into a page of limit. */
static vecdb_records *
scrolled(vecdb_records **lists, size_t n, uint32_t limit)
{
	vecdb_records *m = NULL;

	ck_assert_int_eq(router_merge_scroll(lists, n, limit, &m), VECDB_OK);
	for (size_t i = 0; i < n; i++)
		vecdb_records_free(lists[i]);
	return m;
}

START_TEST(scroll_pages_merge_by_id_and_continue_past_the_page)
{
	vecdb_records *l[2] = { page(8, 3, 1, 4, 6), page(7, 3, 2, 3, 5) };
	vecdb_records *m = scrolled(l, 2, 3);

	ids_are(m, 3, 1, 2, 3);
	ck_assert(m->has_next);
	ck_assert_uint_eq(m->next.num, 4);  /* the first id not returned */
	vecdb_records_free(m);
}
END_TEST

/* A shard whose page was full says where it stops: points of its own
 * past that were not sent, so the next page must start there. */
START_TEST(scroll_continues_from_a_shards_next_when_smaller)
{
	vecdb_records *l[2] = { page(3, 2, 1, 2), page(0, 1, 10) };
	vecdb_records *m = scrolled(l, 2, 2);

	ids_are(m, 2, 1, 2);
	ck_assert(m->has_next);
	ck_assert_uint_eq(m->next.num, 3);
	vecdb_records_free(m);
}
END_TEST

START_TEST(scroll_next_comes_from_a_shard_when_the_page_is_short)
{
	vecdb_records *l[2] = { page(0, 1, 1), page(9, 1, 5) };
	vecdb_records *m = scrolled(l, 2, 4);

	ids_are(m, 2, 1, 5);
	ck_assert(m->has_next);
	ck_assert_uint_eq(m->next.num, 9);
	vecdb_records_free(m);
}
END_TEST

START_TEST(scroll_last_page_has_no_next)
{
	vecdb_records *l[2] = { page(0, 2, 1, 2), page(0, 1, 3) };
	vecdb_records *m = scrolled(l, 2, 3);

	ids_are(m, 3, 1, 2, 3);
	ck_assert(!m->has_next);
	vecdb_records_free(m);
}
END_TEST

/* ===== Counts and stats ===== */

/* A call whose shard answered OK with body (owned by the call). */
static void
answered_with(struct router_call *c, uint8_t *body, size_t len)
{
	memset(c, 0, sizeof(*c));
	ck_assert_ptr_nonnull(c->resp = vdb_calloc(1, sizeof(*c->resp)));
	c->resp->code = PROTO_OK;
	c->resp->message = vdb_strdup("");
	c->resp->body = body;
	c->resp->body_len = len;
}

START_TEST(counts_sum_over_the_shards_that_answered)
{
	static const uint64_t counts[3] = { 10, 5, 32 };
	struct router_call *c = vdb_calloc(3, sizeof(*c));
	uint64_t sum = 0;

	for (int i = 0; i < 3; i++) {
		uint8_t *b = NULL;
		size_t l = 0;
		ck_assert_int_eq(proto_count_result_encode(counts[i], &b, &l),
		    VECDB_OK);
		answered_with(&c[i], b, l);
	}
	ck_assert_int_eq(router_merge_count(c, 3, &sum), VECDB_OK);
	ck_assert_uint_eq(sum, 47);
	/* with allow_partial, a shard left out does not count */
	c[1].skip = 1;
	ck_assert_int_eq(router_merge_count(c, 3, &sum), VECDB_OK);
	ck_assert_uint_eq(sum, 42);
	router_calls_free(c, 3);
}
END_TEST

START_TEST(collection_stats_sum_and_quantization_holds_only_everywhere)
{
	vecdb_collection_stats s[3], sum;

	memset(s, 0, sizeof(s));
	memset(&sum, 0, sizeof(sum));
	s[0].dimension = 4;
	s[0].vector_count = 10;
	s[0].indexed_count = 8;
	s[0].dead_count = 2;
	s[0].quant_in_force = VECDB_QUANT_SCALAR;
	s[1].dimension = 4;
	s[1].vector_count = 5;
	s[1].indexed_count = 5;
	s[1].quant_in_force = VECDB_QUANT_SCALAR;
	s[1].optimizer = VECDB_OPTIMIZER_COMPACTING;
	s[1].optimizer_progress = 0.7;
	router_merge_collection_stats(&sum, &s[0], 0);
	router_merge_collection_stats(&sum, &s[1], 1);
	ck_assert_uint_eq(sum.dimension, 4);
	ck_assert_uint_eq(sum.vector_count, 15);
	ck_assert_uint_eq(sum.indexed_count, 13);
	ck_assert_double_eq_tol(sum.dead_ratio, 2.0 / 15.0, 1e-9);
	ck_assert_int_eq(sum.quant_in_force, VECDB_QUANT_SCALAR);
	ck_assert_int_eq(sum.optimizer, VECDB_OPTIMIZER_COMPACTING);
	ck_assert_double_eq_tol(sum.optimizer_progress, 0.7, 1e-9);
	/* a shard still on floats, compacting less far along */
	s[2].optimizer = VECDB_OPTIMIZER_COMPACTING;
	s[2].optimizer_progress = 0.3;
	router_merge_collection_stats(&sum, &s[2], 2);
	ck_assert_int_eq(sum.quant_in_force, VECDB_QUANT_NONE);
	ck_assert_double_eq_tol(sum.optimizer_progress, 0.3, 1e-9);
}
END_TEST

START_TEST(node_stats_sum_with_shard_0s_collections_and_the_last_seq)
{
	vecdb_stats s[2], sum;

	memset(s, 0, sizeof(s));
	memset(&sum, 0, sizeof(sum));
	s[0].collections = 2;
	s[0].vectors = 100;
	s[0].last_seq = 40;
	s[1].collections = 3;
	s[1].vectors = 50;
	s[1].last_seq = 90;
	router_merge_stats(&sum, &s[0], 0);
	router_merge_stats(&sum, &s[1], 1);
	ck_assert_uint_eq(sum.collections, 2);
	ck_assert_uint_eq(sum.vectors, 150);
	ck_assert_uint_eq(sum.last_seq, 90);
}
END_TEST

/* ===== Snapshots ===== */

/* A snapshot part. */
static vecdb_snapshot_info
part(const char *name, int64_t at, uint64_t size, char sum_digit)
{
	vecdb_snapshot_info s;

	memset(&s, 0, sizeof(s));
	snprintf(s.name, sizeof(s.name), "%s", name);
	s.created_at = at;
	s.size_bytes = size;
	s.vector_count = size / 10;
	memset(s.checksum, sum_digit, 64);
	return s;
}

START_TEST(snapshots_are_listed_when_every_shard_has_them)
{
	vecdb_snapshot_info a[3] = { part("a", 1, 10, '1'),
		part("b", 2, 20, '2'), part("c", 3, 30, '3') };
	vecdb_snapshot_info b[2] = { part("c", 5, 300, '4'),
		part("a", 1, 100, '5') };
	vecdb_snapshot_info *lists[2] = { a, b }, per[2], out[3];
	size_t counts[2] = { 3, 2 }, n = 0;

	ck_assert_int_eq(router_merge_snapshot_lists(lists, counts, 2, per,
	    out, &n), VECDB_OK);
	ck_assert_uint_eq(n, 2);  /* "b" is not on shard 1 */
	ck_assert_str_eq(out[0].name, "a");  /* shard 0's order */
	ck_assert_str_eq(out[1].name, "c");
	ck_assert_uint_eq(out[0].size_bytes, 110);
	ck_assert_uint_eq(out[0].vector_count, 11);
	ck_assert_int_eq(out[1].created_at, 5);  /* the newest part */
	ck_assert_uint_eq(strlen(out[0].checksum), 64);
}
END_TEST

START_TEST(a_snapshot_checksum_changes_with_any_shards)
{
	vecdb_snapshot_info per[2] = { part("a", 1, 10, '1'),
		part("a", 1, 10, '2') };
	vecdb_snapshot_info x, y;

	ck_assert_int_eq(router_merge_snapshot(per, 2, &x), VECDB_OK);
	per[1].checksum[63] = '3';
	ck_assert_int_eq(router_merge_snapshot(per, 2, &y), VECDB_OK);
	ck_assert_str_ne(x.checksum, y.checksum);
	ck_assert_str_ne(x.checksum, per[0].checksum);
}
END_TEST

/* ===== A batch over the shards ===== */

#define NPTS 40

START_TEST(a_batch_splits_where_placement_says_in_order)
{
	for (uint32_t nshards = 1; nshards <= 4; nshards++) {
		vecdb_point pts[NPTS], part[NPTS];
		uint32_t *of = NULL;
		size_t *counts = NULL, total = 0;

		memset(pts, 0, sizeof(pts));
		for (int i = 0; i < NPTS; i++) {
			pts[i].id = vecdb_id_num((uint64_t) i * 7919);
			pts[i].dim = (uint32_t) i;  /* marks the input slot */
		}
		ck_assert_int_eq(router_split(&pts[0].id, sizeof(pts[0]), NPTS,
		    nshards, &of, &counts), VECDB_OK);
		for (int i = 0; i < NPTS; i++)
			ck_assert_uint_eq(of[i], router_shard_of(&pts[i].id,
			    nshards));
		for (uint32_t s = 0; s < nshards; s++) {
			size_t k = router_split_part(pts, sizeof(pts[0]), NPTS,
			    of, s, part);
			ck_assert_uint_eq(k, counts[s]);
			for (size_t j = 0; j < k; j++) {
				ck_assert_uint_eq(of[part[j].dim], s);
				ck_assert(j == 0 ||
				    part[j].dim > part[j - 1].dim);
				ck_assert_uint_eq(part[j].id.num,
				    pts[part[j].dim].id.num);
			}
			total += k;
		}
		ck_assert_uint_eq(total, NPTS);
		vdb_free(of);
		vdb_free(counts);
	}
}
END_TEST

/* Deletes split an array of ids the same way as points. */
START_TEST(ids_split_like_the_points_that_carry_them)
{
	vecdb_id ids[NPTS];
	vecdb_point pts[NPTS];
	uint32_t *a = NULL, *b = NULL;
	size_t *ca = NULL, *cb = NULL;

	memset(pts, 0, sizeof(pts));
	for (int i = 0; i < NPTS; i++)
		pts[i].id = ids[i] = vecdb_id_num((uint64_t) i * 31 + 5);
	ck_assert_int_eq(router_split(ids, sizeof(ids[0]), NPTS, 3, &a, &ca),
	    VECDB_OK);
	ck_assert_int_eq(router_split(&pts[0].id, sizeof(pts[0]), NPTS, 3, &b,
	    &cb), VECDB_OK);
	ck_assert_mem_eq(a, b, NPTS * sizeof(*a));
	ck_assert_mem_eq(ca, cb, 3 * sizeof(*ca));
	vdb_free(a);
	vdb_free(b);
	vdb_free(ca);
	vdb_free(cb);
}
END_TEST

START_TEST(an_empty_batch_gives_every_shard_nothing)
{
	uint32_t *of = NULL;
	size_t *counts = NULL;

	ck_assert_int_eq(router_split(NULL, sizeof(vecdb_id), 0, 3, &of,
	    &counts), VECDB_OK);
	for (int s = 0; s < 3; s++)
		ck_assert_uint_eq(counts[s], 0);
	vdb_free(of);
	vdb_free(counts);
}
END_TEST

static Suite *
merge_suite(void)
{
	Suite *s = suite_create("router_merge");
	TCase *tc;

	tc = tcase_create("top-k of hits");
	tcase_add_test(tc, hits_of_three_shards_merge_by_distance_then_id);
	tcase_add_test(tc, a_tie_goes_by_id_whatever_the_shard_order);
	tcase_add_test(tc, dot_product_hits_come_highest_product_first);
	tcase_add_test(tc, euclidean_hits_come_nearest_first);
	tcase_add_test(tc, offset_and_limit_apply_after_the_merge);
	tcase_add_test(tc, an_offset_past_every_hit_gives_none);
	tcase_add_test(tc, no_shard_answered_gives_an_empty_list);
	tcase_add_test(tc, a_batch_merges_each_search_with_its_own_limit);
	tcase_add_test(tc, discover_hits_merge_by_context_hits_first);
	suite_add_tcase(s, tc);
	tc = tcase_create("scroll");
	tcase_add_test(tc, scroll_pages_merge_by_id_and_continue_past_the_page);
	tcase_add_test(tc, scroll_continues_from_a_shards_next_when_smaller);
	tcase_add_test(tc,
	    scroll_next_comes_from_a_shard_when_the_page_is_short);
	tcase_add_test(tc, scroll_last_page_has_no_next);
	suite_add_tcase(s, tc);
	tc = tcase_create("counts and stats");
	tcase_add_test(tc, counts_sum_over_the_shards_that_answered);
	tcase_add_test(tc,
	    collection_stats_sum_and_quantization_holds_only_everywhere);
	tcase_add_test(tc,
	    node_stats_sum_with_shard_0s_collections_and_the_last_seq);
	suite_add_tcase(s, tc);
	tc = tcase_create("snapshots");
	tcase_add_test(tc, snapshots_are_listed_when_every_shard_has_them);
	tcase_add_test(tc, a_snapshot_checksum_changes_with_any_shards);
	suite_add_tcase(s, tc);
	tc = tcase_create("split");
	tcase_add_test(tc, a_batch_splits_where_placement_says_in_order);
	tcase_add_test(tc, ids_split_like_the_points_that_carry_them);
	tcase_add_test(tc, an_empty_batch_gives_every_shard_nothing);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	return tu_run(merge_suite());
}
