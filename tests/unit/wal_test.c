/*
 * wal_test.c: every write leaves one WAL record, in its transaction, that
 * says exactly what changed (keys, old and new offsets, vectors, payloads);
 * the reader refuses truncated records.
 */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "storage_impl.h"
#include "testutil.h"

/* The last WAL record of the database; body copied into buf. */
static struct wal_rec
last_record(uint8_t *buf, size_t cap)
{
	MDB_txn *txn;
	MDB_cursor *cur;
	MDB_val k, v;
	struct wal_rec r;

	ck_assert_int_eq(mdb_txn_begin(tu_db->env, NULL, MDB_RDONLY, &txn), 0);
	ck_assert_int_eq(mdb_cursor_open(txn, tu_db->wal, &cur), 0);
	ck_assert_int_eq(mdb_cursor_get(cur, &k, &v, MDB_LAST), 0);
	ck_assert_int_eq(storage_wal_decode(&k, &v, &r), VECDB_OK);
	ck_assert_uint_le(r.len, cap);
	memcpy(buf, r.body, r.len);
	r.body = buf;
	mdb_cursor_close(cur);
	mdb_txn_abort(txn);
	return r;
}

START_TEST(point_records_carry_keys_offsets_vectors_and_payloads)
{
	static uint8_t buf[4096];
	float v1[2] = { 1, 2 }, v2[2] = { 3, 4 };
	vecdb_point p[2] = { { vecdb_id_num(7), v1, 2, "{\"a\":1}" },
		{ vecdb_id_num(8), v2, 2, NULL } };
	struct wal_rec r;
	struct wal_iter it;
	struct wal_entry e;
	vecdb_id id;

	tu_create(tu_db, "w", 2, VECDB_EUCLIDEAN);
	ck_assert_int_eq(vecdb_insert(tu_db, "w", p, 2), VECDB_OK);
	r = last_record(buf, sizeof(buf));
	ck_assert_uint_eq(r.op, WAL_PUT);
	ck_assert_uint_eq(r.seq, 2); /* after the create */
	ck_assert_int_eq(storage_wal_iter_init(&it, &r), VECDB_OK);
	ck_assert_int_eq(storage_wal_next(&it, &e), 1);
	ck_assert_int_eq(vdb_key_id(e.key, e.klen, &id), VECDB_OK);
	ck_assert_uint_eq(id.num, 7);
	ck_assert_uint_eq(e.old_offset, WAL_NO_OFFSET);
	ck_assert_uint_eq(e.offset, 0);
	ck_assert_uint_eq(e.vlen, 8);
	ck_assert_mem_eq(e.vec, v1, 8);
	ck_assert_uint_eq(e.plen, 7);
	ck_assert_mem_eq(e.payload, "{\"a\":1}", 7);
	ck_assert_int_eq(storage_wal_next(&it, &e), 1);
	ck_assert_uint_eq(e.offset, 1);
	ck_assert_uint_eq(e.plen, 0);
	ck_assert_int_eq(storage_wal_next(&it, &e), 0);

	/* A new vector takes a new offset and names the old one. */
	p[0].vector = v2;
	ck_assert_int_eq(vecdb_upsert(tu_db, "w", p, 1), VECDB_OK);
	r = last_record(buf, sizeof(buf));
	ck_assert_int_eq(storage_wal_iter_init(&it, &r), VECDB_OK);
	ck_assert_int_eq(storage_wal_next(&it, &e), 1);
	ck_assert_uint_eq(e.old_offset, 0);
	ck_assert_uint_eq(e.offset, 2);

	/* A payload-only update keeps the offset. */
	vecdb_point u = { vecdb_id_num(7), NULL, 0, "{\"b\":2}" };
	ck_assert_int_eq(vecdb_update(tu_db, "w", &u, 1), VECDB_OK);
	r = last_record(buf, sizeof(buf));
	ck_assert_int_eq(storage_wal_iter_init(&it, &r), VECDB_OK);
	ck_assert_int_eq(storage_wal_next(&it, &e), 1);
	ck_assert_uint_eq(e.old_offset, 2);
	ck_assert_uint_eq(e.offset, 2);
	ck_assert_mem_eq(e.vec, v2, 8); /* the full state, not a diff */

	/* A delete names the offset it frees; missing ids are not logged. */
	vecdb_id ids[2] = { vecdb_id_num(8), vecdb_id_num(99) };
	ck_assert_int_eq(vecdb_delete(tu_db, "w", ids, 2, NULL), VECDB_OK);
	r = last_record(buf, sizeof(buf));
	ck_assert_uint_eq(r.op, WAL_DELETE);
	ck_assert_int_eq(storage_wal_iter_init(&it, &r), VECDB_OK);
	ck_assert_uint_eq(it.n, 1);
	ck_assert_int_eq(storage_wal_next(&it, &e), 1);
	ck_assert_uint_eq(e.old_offset, 1);
	ck_assert_int_eq(storage_wal_next(&it, &e), 0);
}
END_TEST

START_TEST(truncated_records_are_refused)
{
	static uint8_t buf[4096];
	float v[2] = { 1, 2 };
	vecdb_point p = { vecdb_id_num(1), v, 2, "{\"x\":\"yz\"}" };
	struct wal_rec r;
	struct wal_iter it;
	struct wal_entry e;

	tu_create(tu_db, "w", 2, VECDB_EUCLIDEAN);
	ck_assert_int_eq(vecdb_insert(tu_db, "w", &p, 1), VECDB_OK);
	r = last_record(buf, sizeof(buf));
	for (size_t cut = 1; cut < r.len - 8; cut++) {
		struct wal_rec t = r;
		t.len = r.len - cut;
		ck_assert_int_eq(storage_wal_iter_init(&it, &t), VECDB_OK);
		ck_assert_int_lt(storage_wal_next(&it, &e), 0);
		ck_assert_ptr_nonnull(strstr(vecdb_errmsg(), "truncated"));
	}
	/* A record that claims more entries than it holds. */
	put_le32(buf + 4, 2);
	ck_assert_int_eq(storage_wal_iter_init(&it, &r), VECDB_OK);
	ck_assert_int_eq(storage_wal_next(&it, &e), 1);
	ck_assert_int_lt(storage_wal_next(&it, &e), 0);
}
END_TEST

/*
 * Bytes after the last entry are an error, negative like every other:
 * returned positive, the indexer's and search's `> 0` loops spun forever
 * on the last entry (fuzz_wal, corpus wal/regress-trailing-bytes).
 */
START_TEST(trailing_bytes_are_refused)
{
	static uint8_t buf[4096];
	float v[2] = { 1, 2 };
	vecdb_point p = { vecdb_id_num(1), v, 2, NULL };
	struct wal_rec r;
	struct wal_iter it;
	struct wal_entry e;

	tu_create(tu_db, "w", 2, VECDB_EUCLIDEAN);
	ck_assert_int_eq(vecdb_insert(tu_db, "w", &p, 1), VECDB_OK);
	r = last_record(buf, sizeof(buf));
	buf[r.len] = 0x7b;
	r.len++;
	ck_assert_int_eq(storage_wal_iter_init(&it, &r), VECDB_OK);
	ck_assert_int_eq(storage_wal_next(&it, &e), 1);
	ck_assert_int_lt(storage_wal_next(&it, &e), 0);
	ck_assert_ptr_nonnull(strstr(vecdb_errmsg(), "trailing"));
	ck_assert_int_lt(storage_wal_next(&it, &e), 0);
}
END_TEST

static Suite *
wal_suite(void)
{
	Suite *s = suite_create("wal");
	TCase *tc = tcase_create("records");

	tu_add_db_fixture(tc);
	tcase_add_test(tc, point_records_carry_keys_offsets_vectors_and_payloads);
	tcase_add_test(tc, truncated_records_are_refused);
	tcase_add_test(tc, trailing_bytes_are_refused);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	return tu_run(wal_suite());
}
