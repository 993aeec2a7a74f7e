/* snapshot_test.c: snapshot create / list / get / delete / restore. */
#include <check.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "testutil.h"

#define N 300
#define DIM 6

/* Fill "s" with N points; payload carries the id. */
static void
fill(const char *name, vecdb_vtype t)
{
	static float v[N][DIM];
	static char pay[N][40];
	vecdb_point p[N];
	vecdb_collection_config cfg;
	uint64_t seed = 7;

	vecdb_collection_config_init(&cfg, name, DIM, VECDB_EUCLIDEAN);
	cfg.vector_type = t;
	cfg.index.max_connections = 24;
	ck_assert_int_eq(vecdb_collection_create(tu_db, &cfg), VECDB_OK);
	for (int i = 0; i < N; i++) {
		tu_rand_vector(&seed, v[i], DIM);
		if (t == VECDB_UINT8)
			for (int j = 0; j < DIM; j++)
				v[i][j] = (float) ((i * 7 + j) % 256);
		snprintf(pay[i], sizeof(pay[i]), "{\"n\":%d,\"tag\":\"t%d\"}",
		    i, i % 5);
		p[i] = (vecdb_point) { vecdb_id_num((uint64_t) i), v[i], DIM,
			pay[i] };
	}
	ck_assert_int_eq(vecdb_upsert(tu_db, name, p, N), VECDB_OK);
}

/* Every point of a collection as one string, for comparisons. */
static char *
dump(const char *name)
{
	vecdb_records *r;
	size_t cap = 1 << 20, len = 0;
	char *s = malloc(cap);

	ck_assert_int_eq(vecdb_scroll(tu_db, name, NULL, 100000, NULL, 1, 1,
	    &r), VECDB_OK);
	for (size_t i = 0; i < r->count; i++) {
		len += (size_t) snprintf(s + len, cap - len, "%llu %s",
		    (unsigned long long) r->items[i].id.num, r->items[i].payload);
		for (uint32_t j = 0; j < r->items[i].dim; j++)
			len += (size_t) snprintf(s + len, cap - len, " %a",
			    (double) r->items[i].vector[j]);
		len += (size_t) snprintf(s + len, cap - len, "\n");
	}
	vecdb_records_free(r);
	return s;
}

START_TEST(snapshot_round_trip_restores_identical_points)
{
	vecdb_snapshot_info si, got;
	vecdb_collection_config cfg;
	char *before, *after;
	float v[DIM] = { 0 };
	vecdb_point extra = { vecdb_id_num(100000), v, DIM, NULL };
	vecdb_id gone = vecdb_id_num(3);

	fill("s", VECDB_FLOAT32);
	before = dump("s");
	ck_assert_int_eq(vecdb_snapshot_create(tu_db, "s", &si), VECDB_OK);
	ck_assert_str_eq(si.collection, "s");
	ck_assert_uint_eq(si.vector_count, N);
	ck_assert_uint_eq(strlen(si.checksum), 64);
	char want[64];
	snprintf(want, sizeof(want), "s_%lld", (long long) si.created_at);
	ck_assert_str_eq(si.name, want);
	ck_assert_int_eq(vecdb_snapshot_get(tu_db, "s", si.name, &got),
	    VECDB_OK);
	ck_assert_str_eq(got.checksum, si.checksum);
	ck_assert_uint_eq(got.size_bytes, si.size_bytes);

	/* Change the live collection, then restore. */
	ck_assert_int_eq(vecdb_upsert(tu_db, "s", &extra, 1), VECDB_OK);
	ck_assert_int_eq(vecdb_delete(tu_db, "s", &gone, 1, NULL), VECDB_OK);
	ck_assert_int_eq(vecdb_snapshot_restore(tu_db, "s", si.name), VECDB_OK);
	after = dump("s");
	ck_assert_str_eq(after, before);
	ck_assert_int_eq(vecdb_collection_get(tu_db, "s", &cfg), VECDB_OK);
	ck_assert_uint_eq(cfg.index.max_connections, 24);
	free(before);
	free(after);
}
END_TEST

START_TEST(checksum_and_size_describe_the_file)
{
	vecdb_snapshot_info si;
	char path[4096], hex[65];
	unsigned char sum[32], *data;
	struct stat st;
	FILE *f;

	fill("s", VECDB_FLOAT16);
	ck_assert_int_eq(vecdb_snapshot_create(tu_db, "s", &si), VECDB_OK);
	ck_assert_int_eq(vecdb_snapshot_path(tu_db, "s", si.name, path,
	    sizeof(path)), VECDB_OK);
	ck_assert_int_eq(stat(path, &st), 0);
	ck_assert_uint_eq((uint64_t) st.st_size, si.size_bytes);
	data = malloc((size_t) st.st_size);
	f = fopen(path, "rb");
	ck_assert_uint_eq(fread(data, 1, (size_t) st.st_size, f),
	    (size_t) st.st_size);
	fclose(f);
	/* The SHA-256 covers everything before the 40-byte trailer. */
	ck_assert_int_eq(EVP_Digest(data, (size_t) st.st_size - 40, sum, NULL,
	    EVP_sha256(), NULL), 1);
	for (int i = 0; i < 32; i++)
		snprintf(hex + 2 * i, 3, "%02x", sum[i]);
	ck_assert_str_eq(hex, si.checksum);
	ck_assert_mem_eq(data + st.st_size - 32, sum, 32);
	free(data);
}
END_TEST

/* Flip one byte at @p at (negative: from the end) of a file. */
static void
corrupt(const char *path, long at)
{
	FILE *f = fopen(path, "r+b");
	int c;

	ck_assert_ptr_nonnull(f);
	fseek(f, at, at < 0 ? SEEK_END : SEEK_SET);
	c = fgetc(f);
	fseek(f, -1, SEEK_CUR);
	fputc(c ^ 0x40, f);
	fclose(f);
}

START_TEST(corrupted_snapshot_is_refused_and_live_data_untouched)
{
	vecdb_snapshot_info si;
	char path[4096], *before, *after;
	float v[DIM] = { 1, 1, 1, 1, 1, 1 };
	vecdb_point extra = { vecdb_id_num(777777), v, DIM, NULL };

	fill("s", VECDB_FLOAT32);
	ck_assert_int_eq(vecdb_snapshot_create(tu_db, "s", &si), VECDB_OK);
	ck_assert_int_eq(vecdb_upsert(tu_db, "s", &extra, 1), VECDB_OK);
	before = dump("s");
	ck_assert_int_eq(vecdb_snapshot_path(tu_db, "s", si.name, path,
	    sizeof(path)), VECDB_OK);
	/* A bit flip in the middle of a vector: only the checksum sees it. */
	corrupt(path, (long) si.size_bytes / 2);
	ck_assert_int_eq(vecdb_snapshot_restore(tu_db, "s", si.name),
	    VECDB_ECORRUPT);
	ck_assert_msg(strstr(vecdb_errmsg(), "checksum mismatch") != NULL,
	    "message: %s", vecdb_errmsg());
	after = dump("s");
	ck_assert_str_eq(after, before);
	free(after);
	/* Truncated: refused too. */
	ck_assert_int_eq(truncate(path, (off_t) si.size_bytes - 100), 0);
	ck_assert_int_eq(vecdb_snapshot_restore(tu_db, "s", si.name),
	    VECDB_ECORRUPT);
	after = dump("s");
	ck_assert_str_eq(after, before);
	free(after);
	/* Not a snapshot at all. */
	FILE *f = fopen(path, "wb");
	fputs("hello", f);
	fclose(f);
	ck_assert_int_eq(vecdb_snapshot_restore(tu_db, "s", si.name),
	    VECDB_ECORRUPT);
	free(before);
}
END_TEST

START_TEST(restore_creates_a_deleted_collection_from_a_copied_file)
{
	vecdb_snapshot_info si;
	char path[4096], copy[4200], cmd[9000], *before, *after;

	fill("s", VECDB_UINT8);
	before = dump("s");
	ck_assert_int_eq(vecdb_snapshot_create(tu_db, "s", &si), VECDB_OK);
	ck_assert_int_eq(vecdb_snapshot_path(tu_db, "s", si.name, path,
	    sizeof(path)), VECDB_OK);
	snprintf(copy, sizeof(copy), "%s/uploaded.snapshot", tu_dir);
	snprintf(cmd, sizeof(cmd), "cp '%s' '%s'", path, copy);
	ck_assert_int_eq(system(cmd), 0);
	ck_assert_int_eq(vecdb_collection_delete(tu_db, "s"), VECDB_OK);
	/* Snapshots outlive their collection. */
	ck_assert_int_eq(vecdb_snapshot_get(tu_db, "s", si.name, &si),
	    VECDB_OK);
	ck_assert_int_eq(vecdb_snapshot_restore_file(tu_db, "s", copy),
	    VECDB_OK);
	after = dump("s");
	ck_assert_str_eq(after, before);
	free(after);
	/* Restoring under another name gives a copy. */
	ck_assert_int_eq(vecdb_snapshot_restore_file(tu_db, "s2", copy),
	    VECDB_OK);
	after = dump("s2");
	ck_assert_str_eq(after, before);
	vecdb_collection_config cfg;
	ck_assert_int_eq(vecdb_collection_get(tu_db, "s2", &cfg), VECDB_OK);
	ck_assert_int_eq(cfg.vector_type, VECDB_UINT8);
	free(after);
	free(before);
}
END_TEST

START_TEST(list_get_and_delete_manage_snapshots)
{
	vecdb_snapshot_info a, b, *list, got;
	size_t n;
	char path[4096];

	fill("s", VECDB_FLOAT32);
	ck_assert_int_eq(vecdb_snapshot_create(tu_db, "s", &a), VECDB_OK);
	ck_assert_int_eq(vecdb_snapshot_create(tu_db, "s", &b), VECDB_OK);
	ck_assert_str_ne(a.name, b.name); /* same second: distinct names */
	ck_assert_int_eq(vecdb_snapshot_list(tu_db, "s", &list, &n), VECDB_OK);
	ck_assert_uint_eq(n, 2);
	ck_assert_str_eq(list[0].name, a.name);
	ck_assert_str_eq(list[1].name, b.name);
	free(list);
	ck_assert_int_eq(vecdb_snapshot_delete(tu_db, "s", a.name), VECDB_OK);
	ck_assert_int_eq(vecdb_snapshot_delete(tu_db, "s", a.name),
	    VECDB_ENOTFOUND);
	ck_assert_int_eq(vecdb_snapshot_get(tu_db, "s", a.name, &got),
	    VECDB_ENOTFOUND);
	ck_assert_int_eq(vecdb_snapshot_path(tu_db, "s", a.name, path,
	    sizeof(path)), VECDB_ENOTFOUND);
	ck_assert_int_eq(vecdb_snapshot_restore(tu_db, "s", a.name),
	    VECDB_ENOTFOUND);
	ck_assert_int_eq(vecdb_snapshot_list(tu_db, "s", &list, &n), VECDB_OK);
	ck_assert_uint_eq(n, 1);
	free(list);
	/* Names cannot reach outside the snapshot directory. */
	ck_assert_int_eq(vecdb_snapshot_get(tu_db, "s", "../s", &got),
	    VECDB_EINVAL);
	ck_assert_int_eq(vecdb_snapshot_delete(tu_db, "s", "a/b"), VECDB_EINVAL);
	ck_assert_int_eq(vecdb_snapshot_create(tu_db, "missing", &got),
	    VECDB_ENOTFOUND);
	ck_assert_int_eq(vecdb_snapshot_list(tu_db, "never", &list, &n),
	    VECDB_OK);
	ck_assert_uint_eq(n, 0);
	free(list);
}
END_TEST

START_TEST(a_named_snapshot_takes_its_name_once)
{
	vecdb_snapshot_info a, got, *list;
	size_t n;

	fill("s", VECDB_FLOAT32);
	ck_assert_int_eq(vecdb_snapshot_create_named(tu_db, "s", "nightly-1",
	    &a), VECDB_OK);
	ck_assert_str_eq(a.name, "nightly-1");
	ck_assert_int_eq(vecdb_snapshot_get(tu_db, "s", "nightly-1", &got),
	    VECDB_OK);
	ck_assert_str_eq(got.checksum, a.checksum);
	ck_assert_uint_eq(got.vector_count, a.vector_count);
	ck_assert_int_eq(vecdb_snapshot_create_named(tu_db, "s", "nightly-1",
	    &got), VECDB_EEXIST);
	ck_assert_int_eq(vecdb_snapshot_create_named(tu_db, "s", "../x",
	    &got), VECDB_EINVAL);
	ck_assert_int_eq(vecdb_snapshot_create_named(tu_db, "s", "", &got),
	    VECDB_EINVAL);
	/* the refused ones left nothing behind */
	ck_assert_int_eq(vecdb_snapshot_list(tu_db, "s", &list, &n), VECDB_OK);
	ck_assert_uint_eq(n, 1);
	free(list);
	ck_assert_int_eq(vecdb_snapshot_restore(tu_db, "s", "nightly-1"),
	    VECDB_OK);
}
END_TEST

static Suite *
snapshot_suite(void)
{
	Suite *s = suite_create("snapshot");
	TCase *tc = tcase_create("snapshots");

	tu_add_db_fixture(tc);
	tcase_add_test(tc, snapshot_round_trip_restores_identical_points);
	tcase_add_test(tc, checksum_and_size_describe_the_file);
	tcase_add_test(tc, corrupted_snapshot_is_refused_and_live_data_untouched);
	tcase_add_test(tc, restore_creates_a_deleted_collection_from_a_copied_file);
	tcase_add_test(tc, list_get_and_delete_manage_snapshots);
	tcase_add_test(tc, a_named_snapshot_takes_its_name_once);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	return tu_run(snapshot_suite());
}
