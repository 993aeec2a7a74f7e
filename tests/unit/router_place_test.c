/*
 * router_place_test.c: which shard a point id goes to. Placement is part
 * of the data's contract: a change would send existing points' reads and
 * writes to shards that do not hold them. So the values are pinned here,
 * for numeric and UUID ids and 1..8 shards, as router_shard_of computed
 * them when this test was written (jump consistent hash of FNV-1a 64 over
 * the point key: [1][u64 BE] or [2][16 bytes]). If this test fails, the
 * placement changed: that needs a migration, not a new table.
 */
#include <check.h>
#include <stdio.h>
#include <string.h>

#include "router.h"
#include "testutil.h"

#define NIDS 8

/* The ids: 0, 1, 2, 42, 2^32, 2^64-1, and two UUIDs. */
static vecdb_id
id_at(int i)
{
	static const uint64_t nums[] = { 0, 1, 2, 42, 1ULL << 32,
		UINT64_MAX };
	vecdb_id id;

	memset(&id, 0, sizeof(id));
	if (i < 6) {
		id.kind = VECDB_ID_NUM;
		id.num = nums[i];
		return id;
	}
	id.kind = VECDB_ID_UUID;
	for (int b = 0; b < 16; b++)
		id.uuid[b] = (uint8_t) (i == 6 ? b : 0xf0 + b);
	return id;
}

/* pinned[n - 1][i]: the shard of id_at(i) among n shards. */
static const uint32_t pinned[8][NIDS] = {
	{ 0, 0, 0, 0, 0, 0, 0, 0 },
	{ 0, 0, 0, 1, 1, 0, 1, 1 },
	{ 0, 0, 2, 1, 2, 0, 1, 2 },
	{ 0, 0, 3, 1, 3, 3, 3, 2 },
	{ 0, 4, 3, 1, 3, 3, 3, 2 },
	{ 0, 5, 3, 1, 3, 3, 5, 2 },
	{ 0, 5, 6, 1, 3, 3, 5, 6 },
	{ 0, 5, 6, 1, 3, 3, 5, 6 },
};

START_TEST(placement_is_pinned_for_1_to_8_shards)
{
	for (uint32_t n = 1; n <= 8; n++)
		for (int i = 0; i < NIDS; i++) {
			vecdb_id id = id_at(i);
			uint32_t s = router_shard_of(&id, n);
			ck_assert_msg(s < n, "id %d: shard %u of %u", i, s, n);
			ck_assert_msg(s == pinned[n - 1][i], "id %d among %u "
			    "shards: shard %u, pinned %u", i, n, s,
			    pinned[n - 1][i]);
		}
}
END_TEST

/* Growing from n to n + 1 shards moves only points to the new shard
 * (what jump hashing promises), about 1 / (n + 1) of them. */
START_TEST(adding_a_shard_moves_points_only_to_it)
{
	for (uint32_t n = 1; n < 8; n++) {
		uint32_t moved = 0;
		for (uint64_t k = 0; k < 20000; k++) {
			vecdb_id id = { VECDB_ID_NUM, k * 7919, { 0 } };
			uint32_t a = router_shard_of(&id, n);
			uint32_t b = router_shard_of(&id, n + 1);
			if (a != b) {
				ck_assert_uint_eq(b, n);
				moved++;
			}
		}
		double share = moved / 20000.0, want = 1.0 / (n + 1);
		ck_assert_msg(share > want * 0.9 && share < want * 1.1,
		    "%u -> %u shards moved %.3f of the points", n, n + 1,
		    share);
	}
}
END_TEST

static Suite *
place_suite(void)
{
	Suite *s = suite_create("router_place");
	TCase *tc = tcase_create("placement");

	tcase_add_test(tc, placement_is_pinned_for_1_to_8_shards);
	tcase_add_test(tc, adding_a_shard_moves_points_only_to_it);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	return tu_run(place_suite());
}
