/*
 * repl_test.c: the engine's replication primitives. A primary's WAL read
 * in small batches and applied to a fresh database gives the same content
 * (digest), the same WAL and the same answers; a corrupt or out-of-order
 * batch is refused whole; a RESTORE record stops the replay; a copy loaded
 * over another database replaces it and the replay continues from it. A
 * new term stamps the records after it, replicas and copies learn where
 * it began, and the last seq a diverged history shares is found by term.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "storage_impl.h"
#include "storage_repl.h"
#include "testutil.h"

#define DIM 4

/* A second database in a fresh dir under tu_base. */
static vecdb *
open_other(void)
{
	char *dir = tu_subdir();
	vecdb *db = tu_open(dir);

	free(dir);
	return db;
}

/* Write n points with ids from first, payload {"k": id % 3, "s": "..."}. */
static void
put_points(vecdb *db, const char *coll, uint64_t first, size_t n,
    uint64_t *seed)
{
	vecdb_point p[64];
	float v[64][DIM];
	char pay[64][64];

	ck_assert_uint_le(n, 64);
	for (size_t i = 0; i < n; i++) {
		tu_rand_vector(seed, v[i], DIM);
		snprintf(pay[i], sizeof(pay[i]), "{\"k\":%llu,\"s\":\"p%llu\"}",
		    (unsigned long long) ((first + i) % 3),
		    (unsigned long long) (first + i));
		p[i] = (vecdb_point) { vecdb_id_num(first + i), v[i], DIM, pay[i] };
	}
	ck_assert_int_eq(vecdb_upsert(db, coll, p, n), VECDB_OK);
}

/* A history with every kind of record but RESTORE. */
static void
history(vecdb *db)
{
	uint64_t seed = 42;
	vecdb_id del[5];
	vecdb_point up = { vecdb_id_num(3), NULL, 0, "{\"k\":9}" };

	tu_create(db, "a", DIM, VECDB_EUCLIDEAN);
	tu_create(db, "gone", DIM, VECDB_COSINE);
	ck_assert_int_eq(vecdb_payload_index_create(db, "a", "k",
	    VECDB_FIELD_INTEGER), VECDB_OK);
	for (uint64_t i = 0; i < 4; i++)
		put_points(db, "a", i * 50, 50, &seed);
	put_points(db, "gone", 0, 10, &seed);
	put_points(db, "a", 10, 20, &seed);           /* overwrite vectors */
	ck_assert_int_eq(vecdb_update(db, "a", &up, 1), VECDB_OK);
	for (int i = 0; i < 5; i++)
		del[i] = vecdb_id_num((uint64_t) (100 + i));
	ck_assert_int_eq(vecdb_delete(db, "a", del, 5, NULL), VECDB_OK);
	ck_assert_int_eq(vecdb_payload_index_create(db, "a", "s",
	    VECDB_FIELD_KEYWORD), VECDB_OK);
	ck_assert_int_eq(vecdb_payload_index_delete(db, "a", "s"), VECDB_OK);
	ck_assert_int_eq(vecdb_index_delete(db, "gone"), VECDB_OK);
	ck_assert_int_eq(vecdb_collection_delete(db, "gone"), VECDB_OK);
	tu_create(db, "b", DIM, VECDB_DOT);
	put_points(db, "b", 1000, 30, &seed);
}

/* Does a blob of records end where a request ends (no WAL_MORE)? And
 * how many records does its last request span? */
static int
ends_request(const uint8_t *blob, size_t len, size_t *last_span)
{
	const uint8_t *p = blob, *end = blob + len;
	int more = 0;

	*last_span = 0;
	while (p < end) {
		uint32_t vlen = get_le32(p);
		const uint8_t *v = p + STORAGE_REPL_HDR;
		*last_span = more ? *last_span + 1 : 1;
		more = vlen >= 10 && (v[9] & WAL_MORE);
		p = v + vlen;
	}
	return !more;
}

/* Ship everything after dst's last seq from src, max_records at a time
 * (more only to end a request). */
static void
ship(vecdb *src, vecdb *dst, size_t max_records)
{
	size_t span;

	struct storage_wal_info si, di;
	uint8_t *blob;
	size_t len, n;
	uint64_t last;
	int restore;

	for (;;) {
		ck_assert_int_eq(storage_wal_info_get(dst, &di), VECDB_OK);
		ck_assert_int_eq(storage_wal_read(src, di.last_seq, max_records,
		    1 << 20, &blob, &len, &n, &si), VECDB_OK);
		if (n == 0)
			break;
		ck_assert(ends_request(blob, len, &span));
		ck_assert(n <= max_records || span > 1);
		ck_assert_int_eq(storage_wal_apply(dst, blob, len, &last,
		    &restore), VECDB_OK);
		ck_assert_int_eq(restore, 0);
		ck_assert_uint_eq(last, di.last_seq + n);
		vdb_free(blob);
	}
	ck_assert_uint_eq(di.last_seq, si.last_seq);
}

/* The digests of two databases are equal (and non-trivial). */
static void
digests_equal(vecdb *a, vecdb *b)
{
	struct storage_digest *da, *db_;
	size_t na, nb;
	uint64_t la, lb;

	ck_assert_int_eq(storage_digest_all(a, &da, &na, &la), VECDB_OK);
	ck_assert_int_eq(storage_digest_all(b, &db_, &nb, &lb), VECDB_OK);
	ck_assert_uint_eq(la, lb);
	ck_assert_uint_eq(na, nb);
	ck_assert_uint_gt(na, 0);
	for (size_t i = 0; i < na; i++) {
		ck_assert_str_eq(da[i].name, db_[i].name);
		ck_assert_uint_eq(da[i].count, db_[i].count);
		ck_assert_mem_eq(da[i].sha256, db_[i].sha256, 32);
	}
	vdb_free(da);
	vdb_free(db_);
}

/* A search, a filtered count and a get agree on both databases. */
static void
answers_equal(vecdb *a, vecdb *b)
{
	float q[DIM] = { 0.1f, -0.2f, 0.3f, 0.05f };
	vecdb_search_params p = { q, DIM, 10, 0, NULL, 0, 0, 1, 0, 0, 0, 0,
		NULL };
	vecdb_records *ra, *rb;
	vecdb_filter *f;
	uint64_t ca, cb;

	ck_assert_int_eq(vecdb_search(a, "a", &p, &ra), VECDB_OK);
	ck_assert_int_eq(vecdb_search(b, "a", &p, &rb), VECDB_OK);
	ck_assert_uint_eq(ra->count, 10);
	ck_assert_uint_eq(ra->count, rb->count);
	for (size_t i = 0; i < ra->count; i++) {
		ck_assert_uint_eq(ra->items[i].id.num, rb->items[i].id.num);
		ck_assert_str_eq(ra->items[i].payload, rb->items[i].payload);
	}
	vecdb_records_free(ra);
	vecdb_records_free(rb);
	ck_assert_int_eq(vecdb_filter_parse("{\"must\":[{\"key\":\"k\","
	    "\"match\":{\"value\":1}}]}", &f), VECDB_OK);
	ck_assert_int_eq(vecdb_count(a, "a", f, &ca), VECDB_OK);
	ck_assert_int_eq(vecdb_count(b, "a", f, &cb), VECDB_OK);
	ck_assert_uint_gt(ca, 0);
	ck_assert_uint_eq(ca, cb);
	vecdb_filter_free(f);
}

START_TEST(applied_records_give_the_primarys_content)
{
	vecdb *r = open_other();
	vecdb_collection_config ca, cb;

	history(tu_db);
	ship(tu_db, r, 3);
	digests_equal(tu_db, r);
	answers_equal(tu_db, r);
	/* Collection ids are the primary's. */
	ck_assert_int_eq(vecdb_collection_get(r, "b", &cb), VECDB_OK);
	ck_assert_int_eq(vecdb_collection_get(tu_db, "b", &ca), VECDB_OK);
	ck_assert_int_eq(ca.dimension, cb.dimension);
	ck_assert_int_eq(vecdb_collection_get(r, "gone", &cb), VECDB_ENOTFOUND);
	/* Tailing continues with later writes, a collection with sparse
	 * vectors among them. */
	vecdb_collection_config_init(&ca, "hyb", DIM, VECDB_DOT);
	ca.n_sparse = 1;
	snprintf(ca.sparse[0].name, sizeof(ca.sparse[0].name), "text");
	ca.sparse[0].modifier = VECDB_SPARSE_IDF;
	ck_assert_int_eq(vecdb_collection_create(tu_db, &ca), VECDB_OK);
	uint64_t seed = 7;
	put_points(tu_db, "a", 500, 40, &seed);
	ship(tu_db, r, 1000);
	digests_equal(tu_db, r);
	ck_assert_int_eq(vecdb_collection_get(r, "hyb", &cb), VECDB_OK);
	ck_assert_uint_eq(cb.n_sparse, 1);
	ck_assert_str_eq(cb.sparse[0].name, "text");
	ck_assert_int_eq(cb.sparse[0].modifier, VECDB_SPARSE_IDF);
	vecdb_close(r);
}
END_TEST

/* Read the whole WAL of src after after_seq into one blob. */
static uint8_t *
read_all(vecdb *src, uint64_t after, size_t *len, size_t *n)
{
	struct storage_wal_info si;
	uint8_t *blob;

	ck_assert_int_eq(storage_wal_read(src, after, 100000, 1 << 30, &blob,
	    len, n, &si), VECDB_OK);
	ck_assert_uint_gt(*n, 0);
	return blob;
}

START_TEST(a_corrupt_record_is_refused_and_nothing_is_applied)
{
	vecdb *r = open_other();
	struct storage_wal_info info;
	uint8_t *blob;
	size_t len, n, last_off;
	uint64_t last;
	int restore;

	history(tu_db);
	blob = read_all(tu_db, 0, &len, &n);
	/* Truncate the last record's length field: a malformed batch. */
	last_off = 0;
	for (size_t off = 0; off < len; off += STORAGE_REPL_HDR +
	     get_le32(blob + off))
		last_off = off;
	put_le32(blob + last_off, get_le32(blob + last_off) + 5);
	ck_assert_int_eq(storage_wal_apply(r, blob, len, &last, &restore),
	    VECDB_ECORRUPT);
	put_le32(blob + last_off, get_le32(blob + last_off) - 5);
	/* An unknown op in the last record. */
	blob[last_off + STORAGE_REPL_HDR + 9] = 99;
	ck_assert_int_eq(storage_wal_apply(r, blob, len, &last, &restore),
	    VECDB_ECORRUPT);
	ck_assert_ptr_nonnull(strstr(vecdb_errmsg(), "unknown WAL op"));
	ck_assert_int_eq(storage_wal_info_get(r, &info), VECDB_OK);
	ck_assert_uint_eq(info.last_seq, 0);
	ck_assert_uint_eq(info.oldest_seq, 0);
	ck_assert_int_eq(vecdb_collection_get(r, "a",
	    &(vecdb_collection_config) { 0 }), VECDB_ENOTFOUND);
	vdb_free(blob);
	vecdb_close(r);
}
END_TEST

START_TEST(records_out_of_order_are_refused)
{
	vecdb *r = open_other();
	struct storage_wal_info info;
	uint8_t *blob;
	size_t len, n;
	uint64_t last;
	int restore;

	history(tu_db);
	blob = read_all(tu_db, 1, &len, &n); /* skips the first record */
	ck_assert_int_eq(storage_wal_apply(r, blob, len, &last, &restore),
	    VECDB_ECORRUPT);
	ck_assert_ptr_nonnull(strstr(vecdb_errmsg(), "out of order"));
	ck_assert_int_eq(storage_wal_info_get(r, &info), VECDB_OK);
	ck_assert_uint_eq(info.last_seq, 0);
	vdb_free(blob);
	vecdb_close(r);
}
END_TEST

START_TEST(a_diverged_replica_refuses_the_batch)
{
	vecdb *r = open_other(), *other = open_other();
	struct storage_wal_info info;
	uint64_t seed = 3, last;
	uint8_t *blob;
	size_t len, n;
	int restore;

	/* Two primaries with the same first record and different second
	 * ones; r follows the first, then is fed the other's third record,
	 * which writes points 5..9 as new: r has them already. */
	tu_create(tu_db, "a", DIM, VECDB_EUCLIDEAN);
	tu_create(other, "a", DIM, VECDB_EUCLIDEAN);
	put_points(tu_db, "a", 0, 10, &seed);
	put_points(other, "a", 0, 5, &seed);
	put_points(other, "a", 5, 5, &seed);
	ship(tu_db, r, 10);
	blob = read_all(other, 2, &len, &n);
	ck_assert_int_eq(storage_wal_apply(r, blob, len, &last, &restore),
	    VECDB_ECORRUPT);
	ck_assert_ptr_nonnull(strstr(vecdb_errmsg(), "diverged"));
	ck_assert_int_eq(storage_wal_info_get(r, &info), VECDB_OK);
	ck_assert_uint_eq(info.last_seq, 2);
	digests_equal(tu_db, r);
	vdb_free(blob);
	vecdb_close(other);
	vecdb_close(r);
}
END_TEST

START_TEST(a_restore_record_stops_the_replay)
{
	vecdb *r = open_other();
	vecdb_snapshot_info si;
	struct storage_wal_info info;
	uint8_t *blob;
	size_t len, n;
	uint64_t last, seed = 5;
	int restore;

	history(tu_db);
	ck_assert_int_eq(vecdb_snapshot_create(tu_db, "b", &si), VECDB_OK);
	put_points(tu_db, "b", 2000, 5, &seed);
	ck_assert_int_eq(vecdb_snapshot_restore(tu_db, "b", si.name), VECDB_OK);
	put_points(tu_db, "b", 3000, 5, &seed);
	ck_assert_int_eq(storage_wal_info_get(tu_db, &info), VECDB_OK);
	blob = read_all(tu_db, 0, &len, &n);
	ck_assert_int_eq(storage_wal_apply(r, blob, len, &last, &restore),
	    VECDB_OK);
	ck_assert_int_eq(restore, 1);
	ck_assert_uint_eq(last, info.last_seq - 2); /* RESTORE, then a PUT */
	vdb_free(blob);
	vecdb_close(r);
}
END_TEST

START_TEST(a_loaded_copy_replaces_everything_and_tailing_resumes)
{
	vecdb *r = open_other();
	char path[4300];
	uint64_t seed = 9;
	vecdb_records *res;
	float q[DIM] = { 0 };
	vecdb_search_params p = { q, DIM, 5, 0, NULL, 0, 0, 0, 0, 0, 0, 0,
		NULL };

	history(tu_db);
	tu_create(r, "stale", DIM, VECDB_EUCLIDEAN);
	put_points(r, "stale", 0, 10, &seed);
	snprintf(path, sizeof(path), "%s/copy.mdb", tu_base);
	unlink(path);
	ck_assert_int_eq(storage_copy(tu_db, path), VECDB_OK);
	ck_assert_int_eq(storage_copy(tu_db, path), VECDB_EIO); /* exists */
	ck_assert_int_eq(storage_load(r, path), VECDB_OK);
	unlink(path);
	digests_equal(tu_db, r);
	answers_equal(tu_db, r);
	ck_assert_int_eq(vecdb_search(r, "stale", &p, &res), VECDB_ENOTFOUND);
	put_points(tu_db, "a", 700, 30, &seed);
	ship(tu_db, r, 2);
	digests_equal(tu_db, r);
	vecdb_close(r);
}
END_TEST

/*
 * A batch of points spans WAL records of at most ~2 KB (LMDB reuses leaf
 * pages, not long runs of overflow pages); a replica reading one record
 * at a time still gets the whole batch, and applies it at once.
 */
START_TEST(a_batch_spans_records_and_ships_whole)
{
	vecdb *r = open_other();
	struct storage_wal_info info;
	uint64_t seed = 9, before;
	uint8_t *blob;
	size_t len, n, span;

	tu_create(tu_db, "a", DIM, VECDB_EUCLIDEAN);
	ck_assert_int_eq(storage_wal_info_get(tu_db, &info), VECDB_OK);
	before = info.last_seq;
	put_points(tu_db, "a", 0, 64, &seed);
	ck_assert_int_eq(storage_wal_info_get(tu_db, &info), VECDB_OK);
	ck_assert_uint_ge(info.last_seq - before, 2);
	ck_assert_int_eq(storage_wal_read(tu_db, before, 1, 1 << 20, &blob,
	    &len, &n, &info), VECDB_OK);
	ck_assert_uint_eq(n, info.last_seq - before);
	ck_assert(ends_request(blob, len, &span));
	ck_assert_uint_eq(span, n);
	vdb_free(blob);
	ship(tu_db, r, 1);
	digests_equal(tu_db, r);
	vecdb_close(r);
}
END_TEST

START_TEST(reading_past_the_trimmed_wal_says_so)
{
	vecdb_options o;
	vecdb *p;
	char *dir = tu_subdir();
	struct storage_wal_info info;
	uint8_t *blob = NULL;
	size_t len, n;
	uint64_t seed = 1;

	vecdb_options_init(&o);
	o.durability = VECDB_BUFFERED;
	o.wal_retain = 3;
	ck_assert_int_eq(vecdb_open(dir, &o, &p), VECDB_OK);
	tu_create(p, "a", DIM, VECDB_EUCLIDEAN);
	for (int i = 0; i < 6; i++)
		put_points(p, "a", (uint64_t) i * 10, 10, &seed);
	ck_assert_int_eq(storage_wal_read(p, 0, 10, 1 << 20, &blob, &len, &n,
	    &info), VECDB_ENOTFOUND);
	ck_assert_uint_eq(info.oldest_seq, 5);
	ck_assert_uint_eq(info.last_seq, 7);
	ck_assert_int_eq(storage_wal_read(p, 4, 10, 1 << 20, &blob, &len, &n,
	    &info), VECDB_OK);
	ck_assert_uint_eq(n, 3);
	vdb_free(blob);
	ck_assert_int_eq(storage_wal_read(p, 7, 10, 1 << 20, &blob, &len, &n,
	    &info), VECDB_OK);
	ck_assert_uint_eq(n, 0);
	vecdb_close(p);
	free(dir);
}
END_TEST

START_TEST(a_diverged_replica_refuses_offsets_it_uses)
{
	vecdb *r = open_other(), *other = open_other();
	struct storage_wal_info info;
	uint64_t seed = 4, last;
	uint8_t *blob;
	size_t len, n;
	int restore;

	/* The other primary's third record writes points r has never seen,
	 * under offsets r gives to points of its own. */
	tu_create(tu_db, "a", DIM, VECDB_EUCLIDEAN);
	tu_create(other, "a", DIM, VECDB_EUCLIDEAN);
	put_points(tu_db, "a", 0, 10, &seed);
	put_points(other, "a", 0, 5, &seed);
	put_points(other, "a", 100, 5, &seed);
	ship(tu_db, r, 10);
	blob = read_all(other, 2, &len, &n);
	ck_assert_int_eq(storage_wal_apply(r, blob, len, &last, &restore),
	    VECDB_ECORRUPT);
	ck_assert_ptr_nonnull(strstr(vecdb_errmsg(), "in use here"));
	ck_assert_int_eq(storage_wal_info_get(r, &info), VECDB_OK);
	ck_assert_uint_eq(info.last_seq, 2);
	digests_equal(tu_db, r);
	vdb_free(blob);
	vecdb_close(other);
	vecdb_close(r);
}
END_TEST

/* The last seq a replica at (seq, term) shares with db. */
static uint64_t
common(vecdb *db, uint64_t seq, uint64_t term)
{
	struct storage_wal_info info;
	uint64_t c = UINT64_MAX;

	ck_assert_int_eq(storage_wal_common(db, seq, term, &c, &info),
	    VECDB_OK);
	return c;
}

START_TEST(a_new_term_stamps_records_and_replicas_learn_where_it_began)
{
	vecdb *r = open_other(), *q = open_other();
	struct storage_wal_info info;
	char path[4300];
	uint64_t seed = 5, start = 0;

	tu_create(tu_db, "a", DIM, VECDB_EUCLIDEAN);
	put_points(tu_db, "a", 0, 10, &seed);
	put_points(tu_db, "a", 10, 10, &seed);
	ship(tu_db, r, 10);
	ck_assert_int_eq(storage_wal_info_get(tu_db, &info), VECDB_OK);
	ck_assert_uint_eq(info.term, 1);
	ck_assert_uint_eq(info.last_term, 1);
	/* Terms only grow. */
	ck_assert_int_eq(storage_term_begin(tu_db, 1, &start), VECDB_EINVAL);
	ck_assert_int_eq(storage_term_begin(tu_db, 3, &start), VECDB_OK);
	ck_assert_uint_eq(start, 4);
	ck_assert_int_eq(storage_term_begin(tu_db, 2, &start), VECDB_EINVAL);
	ck_assert_int_eq(storage_wal_info_get(tu_db, &info), VECDB_OK);
	ck_assert_uint_eq(info.term, 3);
	ck_assert_uint_eq(info.last_term, 1); /* no record of term 3 yet */
	put_points(tu_db, "a", 20, 10, &seed);
	ck_assert_int_eq(storage_wal_info_get(tu_db, &info), VECDB_OK);
	ck_assert_uint_eq(info.last_term, 3);
	/* Behind, or level, under the same terms: everything is shared. */
	ck_assert_uint_eq(common(tu_db, 0, 0), 0);
	ck_assert_uint_eq(common(tu_db, 2, 1), 2);
	ck_assert_uint_eq(common(tu_db, 3, 1), 3);
	ck_assert_uint_eq(common(tu_db, 4, 3), 4);
	/* A replica learns where term 3 began from its first record. */
	ship(tu_db, r, 10);
	ck_assert_int_eq(storage_wal_info_get(r, &info), VECDB_OK);
	ck_assert_uint_eq(info.term, 3);
	ck_assert_uint_eq(info.last_term, 3);
	/* An old primary that went on in term 1 shares up to seq 3, whether
	 * its last seq is one we hold under term 3 or one past ours. */
	ck_assert_uint_eq(common(r, 4, 1), 3);
	ck_assert_uint_eq(common(r, 9, 1), 3);
	ck_assert_uint_eq(common(r, 2, 1), 2);
	/* A copy brings the term history along. */
	snprintf(path, sizeof(path), "%s/terms.mdb", tu_base);
	unlink(path);
	ck_assert_int_eq(storage_copy(r, path), VECDB_OK);
	ck_assert_int_eq(storage_load(q, path), VECDB_OK);
	unlink(path);
	ck_assert_uint_eq(common(q, 9, 1), 3);
	vecdb_close(q);
	vecdb_close(r);
}
END_TEST

START_TEST(terms_of_trimmed_records_come_from_the_term_history)
{
	struct storage_wal_info info;
	vecdb_options o;
	vecdb *p;
	char *dir = tu_subdir();
	uint64_t seed = 6, start = 0;

	vecdb_options_init(&o);
	o.durability = VECDB_BUFFERED;
	o.wal_retain = 2;
	ck_assert_int_eq(vecdb_open(dir, &o, &p), VECDB_OK);
	tu_create(p, "a", DIM, VECDB_EUCLIDEAN);
	for (int i = 0; i < 3; i++)
		put_points(p, "a", (uint64_t) i * 10, 10, &seed);
	ck_assert_int_eq(storage_term_begin(p, 2, &start), VECDB_OK);
	ck_assert_uint_eq(start, 5);
	for (int i = 3; i < 6; i++)
		put_points(p, "a", (uint64_t) i * 10, 10, &seed);
	/* Only seqs 6 and 7 are still in the WAL. */
	ck_assert_int_eq(storage_wal_info_get(p, &info), VECDB_OK);
	ck_assert_uint_eq(info.oldest_seq, 6);
	ck_assert_uint_eq(info.last_seq, 7);
	ck_assert_uint_eq(common(p, 5, 1), 4);
	ck_assert_uint_eq(common(p, 5, 2), 5);
	ck_assert_uint_eq(common(p, 3, 1), 3);
	vecdb_close(p);
	free(dir);
}
END_TEST

static Suite *
repl_suite(void)
{
	Suite *s = suite_create("repl");
	TCase *tc = tcase_create("apply");

	tu_add_db_fixture(tc);
	tcase_add_test(tc, applied_records_give_the_primarys_content);
	tcase_add_test(tc, a_corrupt_record_is_refused_and_nothing_is_applied);
	tcase_add_test(tc, records_out_of_order_are_refused);
	tcase_add_test(tc, a_diverged_replica_refuses_the_batch);
	tcase_add_test(tc, a_diverged_replica_refuses_offsets_it_uses);
	tcase_add_test(tc, a_restore_record_stops_the_replay);
	tcase_add_test(tc, a_loaded_copy_replaces_everything_and_tailing_resumes);
	tcase_add_test(tc, reading_past_the_trimmed_wal_says_so);
	tcase_add_test(tc, a_batch_spans_records_and_ships_whole);
	tcase_add_test(tc,
	    a_new_term_stamps_records_and_replicas_learn_where_it_began);
	tcase_add_test(tc, terms_of_trimmed_records_come_from_the_term_history);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	return tu_run(repl_suite());
}
