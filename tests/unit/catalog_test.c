/* catalog_test.c: creating, reading, listing and deleting collections. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "testutil.h"

START_TEST(create_then_get_returns_the_config_with_defaults)
{
	vecdb_collection_config cfg, got;

	vecdb_collection_config_init(&cfg, "docs", 128, VECDB_DOT);
	cfg.vector_type = VECDB_FLOAT16;
	cfg.index.ef_construction = 300;
	cfg.quantization.type = VECDB_QUANT_SCALAR;
	ck_assert_int_eq(vecdb_collection_create(tu_db, &cfg), VECDB_OK);
	ck_assert_int_eq(vecdb_collection_get(tu_db, "docs", &got), VECDB_OK);
	ck_assert_str_eq(got.name, "docs");
	ck_assert_uint_eq(got.dimension, 128);
	ck_assert_int_eq(got.metric, VECDB_DOT);
	ck_assert_int_eq(got.vector_type, VECDB_FLOAT16);
	ck_assert_uint_eq(got.index.max_connections, VECDB_HNSW_M_DEFAULT);
	ck_assert_uint_eq(got.index.ef_construction, 300);
	ck_assert_uint_eq(got.index.ef_search, VECDB_HNSW_EF_DEFAULT);
	ck_assert_uint_eq(got.index.max_layer, VECDB_HNSW_LAYER_DEFAULT);
	ck_assert_int_eq(got.quantization.type, VECDB_QUANT_SCALAR);
	ck_assert_float_eq(got.quantization.quantile, 0.99f);
	ck_assert_int_gt(got.created_at, 1600000000);
}
END_TEST

START_TEST(duplicate_collection_is_refused)
{
	tu_create(tu_db, "a", 4, VECDB_COSINE);
	vecdb_collection_config cfg;
	vecdb_collection_config_init(&cfg, "a", 8, VECDB_EUCLIDEAN);
	ck_assert_int_eq(vecdb_collection_create(tu_db, &cfg), VECDB_EEXIST);
	ck_assert_str_eq(vecdb_errmsg(), "collection 'a' already exists");
	vecdb_collection_config got;
	ck_assert_int_eq(vecdb_collection_get(tu_db, "a", &got), VECDB_OK);
	ck_assert_uint_eq(got.dimension, 4); /* the first one is untouched */
}
END_TEST

START_TEST(bad_names_are_refused)
{
	static const char *bad[] = { "", "has space", "dot.name", "slash/x",
		"ümlaut", "x\n" };
	char longname[80];
	vecdb_collection_config cfg;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		vecdb_collection_config_init(&cfg, bad[i], 4, VECDB_COSINE);
		ck_assert_int_eq(vecdb_collection_create(tu_db, &cfg),
		    VECDB_EINVAL);
		ck_assert_str_ne(vecdb_errmsg(), "");
	}
	memset(longname, 'a', 65);
	longname[65] = '\0';
	vecdb_collection_config_init(&cfg, longname, 4, VECDB_COSINE);
	ck_assert_int_eq(vecdb_collection_create(tu_db, &cfg), VECDB_EINVAL);
	longname[64] = '\0'; /* exactly 64 is fine */
	vecdb_collection_config_init(&cfg, longname, 4, VECDB_COSINE);
	ck_assert_int_eq(vecdb_collection_create(tu_db, &cfg), VECDB_OK);
	vecdb_collection_config_init(&cfg, "Ok_name-9", 4, VECDB_COSINE);
	ck_assert_int_eq(vecdb_collection_create(tu_db, &cfg), VECDB_OK);
}
END_TEST

START_TEST(bad_configs_are_refused_and_nothing_is_written)
{
	vecdb_collection_config cfg;
	size_t n;
	char **names;

	vecdb_collection_config_init(&cfg, "c", 0, VECDB_COSINE);
	ck_assert_int_eq(vecdb_collection_create(tu_db, &cfg), VECDB_EINVAL);
	ck_assert_ptr_nonnull(strstr(vecdb_errmsg(), "dimension"));
	cfg.dimension = VECDB_DIM_MAX + 1;
	ck_assert_int_eq(vecdb_collection_create(tu_db, &cfg), VECDB_EINVAL);
	cfg.dimension = VECDB_DIM_MAX;
	cfg.metric = (vecdb_metric) 9;
	ck_assert_int_eq(vecdb_collection_create(tu_db, &cfg), VECDB_EINVAL);
	ck_assert_ptr_nonnull(strstr(vecdb_errmsg(), "metric"));
	cfg.metric = VECDB_MANHATTAN;
	cfg.vector_type = (vecdb_vtype) 7;
	ck_assert_int_eq(vecdb_collection_create(tu_db, &cfg), VECDB_EINVAL);
	cfg.vector_type = VECDB_UINT8;
	cfg.index.max_connections = 1000;
	ck_assert_int_eq(vecdb_collection_create(tu_db, &cfg), VECDB_EINVAL);
	ck_assert_ptr_nonnull(strstr(vecdb_errmsg(), "max_connections"));
	cfg.index.max_connections = 0;
	cfg.quantization.quantile = 1.5f;
	ck_assert_int_eq(vecdb_collection_create(tu_db, &cfg), VECDB_EINVAL);
	ck_assert_int_eq(vecdb_collection_list(tu_db, &names, &n), VECDB_OK);
	ck_assert_uint_eq(n, 0);
	vecdb_names_free(names, n);
}
END_TEST

START_TEST(list_is_sorted_and_delete_removes_points)
{
	char **names;
	size_t n;
	float v[2] = { 1, 2 };
	vecdb_point p = { vecdb_id_num(1), v, 2, NULL };
	vecdb_stats st;

	tu_create(tu_db, "zeta", 2, VECDB_EUCLIDEAN);
	tu_create(tu_db, "alpha", 2, VECDB_EUCLIDEAN);
	tu_create(tu_db, "mid", 2, VECDB_EUCLIDEAN);
	ck_assert_int_eq(vecdb_upsert(tu_db, "mid", &p, 1), VECDB_OK);
	ck_assert_int_eq(vecdb_collection_list(tu_db, &names, &n), VECDB_OK);
	ck_assert_uint_eq(n, 3);
	ck_assert_str_eq(names[0], "alpha");
	ck_assert_str_eq(names[1], "mid");
	ck_assert_str_eq(names[2], "zeta");
	vecdb_names_free(names, n);
	ck_assert_int_eq(vecdb_stats_get(tu_db, &st), VECDB_OK);
	ck_assert_uint_eq(st.collections, 3);
	ck_assert_uint_eq(st.vectors, 1);

	ck_assert_int_eq(vecdb_collection_delete(tu_db, "mid"), VECDB_OK);
	ck_assert_int_eq(vecdb_collection_delete(tu_db, "mid"),
	    VECDB_ENOTFOUND);
	ck_assert_str_eq(vecdb_errmsg(), "collection 'mid' not found");
	/* A new collection of the same name starts empty. */
	tu_create(tu_db, "mid", 2, VECDB_EUCLIDEAN);
	uint64_t count = 99;
	ck_assert_int_eq(vecdb_count(tu_db, "mid", NULL, &count), VECDB_OK);
	ck_assert_uint_eq(count, 0);
	vecdb_record *r;
	ck_assert_int_eq(vecdb_get(tu_db, "mid", &p.id, &r), VECDB_ENOTFOUND);
	ck_assert_int_eq(vecdb_stats_get(tu_db, &st), VECDB_OK);
	ck_assert_uint_eq(st.vectors, 0);
}
END_TEST

START_TEST(collections_survive_reopen)
{
	vecdb_collection_config got;

	tu_create(tu_db, "keep", 7, VECDB_MANHATTAN);
	vecdb_close(tu_db);
	tu_db = tu_open(tu_dir);
	ck_assert_int_eq(vecdb_collection_get(tu_db, "keep", &got), VECDB_OK);
	ck_assert_uint_eq(got.dimension, 7);
	ck_assert_int_eq(got.metric, VECDB_MANHATTAN);
	ck_assert_int_eq(vecdb_collection_get(tu_db, "nope", &got),
	    VECDB_ENOTFOUND);
}
END_TEST

START_TEST(stats_count_points_and_bytes)
{
	vecdb_collection_stats st;
	float v[4] = { 1, 2, 3, 4 };
	vecdb_point p[2] = { { vecdb_id_num(1), v, 4, "{\"a\":1}" },
		{ vecdb_id_num(2), v, 4, NULL } };

	tu_create(tu_db, "s", 4, VECDB_COSINE);
	ck_assert_int_eq(vecdb_collection_stats_get(tu_db, "s", &st), VECDB_OK);
	ck_assert_uint_eq(st.vector_count, 0);
	ck_assert_uint_eq(st.disk_bytes, 0);
	ck_assert_int_eq(vecdb_upsert(tu_db, "s", p, 2), VECDB_OK);
	ck_assert_int_eq(vecdb_collection_stats_get(tu_db, "s", &st), VECDB_OK);
	ck_assert_uint_eq(st.vector_count, 2);
	ck_assert_uint_eq(st.dimension, 4);
	/* Two keys of 13 bytes, two headers of 21, vectors, one payload. */
	ck_assert_uint_eq(st.disk_bytes, 2 * (13 + 21 + 16) + 7);
	ck_assert_int_eq(vecdb_delete(tu_db, "s", &p[0].id, 1, NULL), VECDB_OK);
	ck_assert_int_eq(vecdb_collection_stats_get(tu_db, "s", &st), VECDB_OK);
	ck_assert_uint_eq(st.vector_count, 1);
	ck_assert_uint_eq(st.disk_bytes, 13 + 21 + 16);
}
END_TEST

START_TEST(options_come_from_the_environment)
{
	vecdb_options o;

	vecdb_options_init(&o);
	setenv("VECDB_DURABILITY", "buffered", 1);
	setenv("VECDB_HNSW_M", "32", 1);
	setenv("VECDB_HNSW_EF", "128", 1);
	setenv("VECDB_MAP_SIZE", "2G", 1);
	ck_assert_int_eq(vecdb_options_from_env(&o), VECDB_OK);
	ck_assert_int_eq(o.durability, VECDB_BUFFERED);
	ck_assert_uint_eq(o.hnsw_m, 32);
	ck_assert_uint_eq(o.hnsw_ef, 128);
	ck_assert_uint_eq(o.map_size, 2ULL << 30);
	setenv("VECDB_HNSW_M", "1", 1);
	ck_assert_int_eq(vecdb_options_from_env(&o), VECDB_EINVAL);
	ck_assert_ptr_nonnull(strstr(vecdb_errmsg(), "VECDB_HNSW_M"));
	ck_assert_uint_eq(o.hnsw_m, 32); /* unchanged on error */
	setenv("VECDB_HNSW_M", "24", 1);
	setenv("VECDB_DURABILITY", "sometimes", 1);
	ck_assert_int_eq(vecdb_options_from_env(&o), VECDB_EINVAL);
	setenv("VECDB_DURABILITY", "sync", 1);
	ck_assert_int_eq(vecdb_options_from_env(&o), VECDB_OK);

	/* The defaults reach new collections through vecdb_open(NULL opts). */
	vecdb *db;
	vecdb_collection_config cfg;
	char *dir = tu_subdir();
	setenv("VECDB_MAP_SIZE", "64M", 1);
	ck_assert_int_eq(vecdb_open(dir, NULL, &db), VECDB_OK);
	tu_create(db, "envd", 3, VECDB_COSINE);
	ck_assert_int_eq(vecdb_collection_get(db, "envd", &cfg), VECDB_OK);
	ck_assert_uint_eq(cfg.index.max_connections, 24);
	ck_assert_uint_eq(cfg.index.ef_search, 128);
	vecdb_close(db);
	free(dir);
}
END_TEST

START_TEST(open_uses_vecdb_data_dir)
{
	vecdb *db;
	char *dir = tu_subdir();
	char sub[4096];
	vecdb_options o;

	snprintf(sub, sizeof(sub), "%s/fromenv", dir);
	setenv("VECDB_DATA_DIR", sub, 1);
	vecdb_options_init(&o);
	o.map_size = 64 << 20;
	ck_assert_int_eq(vecdb_open(NULL, &o, &db), VECDB_OK);
	tu_create(db, "x", 2, VECDB_COSINE);
	vecdb_close(db);
	ck_assert_int_eq(access(sub, F_OK), 0);
	free(dir);
}
END_TEST

/* A config with sparse vectors "text" (idf) and "tags" (plain). */
static void
sparse_cfg(vecdb_collection_config *cfg, const char *name)
{
	vecdb_collection_config_init(cfg, name, 4, VECDB_COSINE);
	cfg->n_sparse = 2;
	snprintf(cfg->sparse[0].name, sizeof(cfg->sparse[0].name), "text");
	cfg->sparse[0].modifier = VECDB_SPARSE_IDF;
	snprintf(cfg->sparse[1].name, sizeof(cfg->sparse[1].name), "tags");
	cfg->sparse[1].modifier = VECDB_SPARSE_PLAIN;
}

static void
assert_sparse_cfg(const vecdb_collection_config *got)
{
	ck_assert_uint_eq(got->n_sparse, 2);
	ck_assert_str_eq(got->sparse[0].name, "text");
	ck_assert_int_eq(got->sparse[0].modifier, VECDB_SPARSE_IDF);
	ck_assert_str_eq(got->sparse[1].name, "tags");
	ck_assert_int_eq(got->sparse[1].modifier, VECDB_SPARSE_PLAIN);
}

START_TEST(sparse_vectors_are_kept_and_survive_reopen)
{
	vecdb_collection_config cfg, got;
	vecdb_snapshot_info si;
	char path[4096];

	sparse_cfg(&cfg, "hyb");
	ck_assert_int_eq(vecdb_collection_create(tu_db, &cfg), VECDB_OK);
	ck_assert_int_eq(vecdb_collection_get(tu_db, "hyb", &got), VECDB_OK);
	assert_sparse_cfg(&got);
	/* a collection without any still has none */
	tu_create(tu_db, "plain", 4, VECDB_COSINE);
	ck_assert_int_eq(vecdb_collection_get(tu_db, "plain", &got),
	    VECDB_OK);
	ck_assert_uint_eq(got.n_sparse, 0);
	vecdb_close(tu_db);
	tu_db = tu_open(tu_dir);
	ck_assert_int_eq(vecdb_collection_get(tu_db, "hyb", &got), VECDB_OK);
	assert_sparse_cfg(&got);
	/* and a snapshot restored as another collection keeps them */
	ck_assert_int_eq(vecdb_snapshot_create(tu_db, "hyb", &si), VECDB_OK);
	ck_assert_int_eq(vecdb_snapshot_path(tu_db, "hyb", si.name, path,
	    sizeof(path)), VECDB_OK);
	ck_assert_int_eq(vecdb_snapshot_restore_file(tu_db, "hyb2", path),
	    VECDB_OK);
	ck_assert_int_eq(vecdb_collection_get(tu_db, "hyb2", &got), VECDB_OK);
	assert_sparse_cfg(&got);
}
END_TEST

START_TEST(bad_sparse_vectors_are_refused)
{
	vecdb_collection_config cfg;
	size_t n;
	char **names;

	sparse_cfg(&cfg, "c");
	snprintf(cfg.sparse[1].name, sizeof(cfg.sparse[1].name), "text");
	ck_assert_int_eq(vecdb_collection_create(tu_db, &cfg), VECDB_EINVAL);
	ck_assert_str_eq(vecdb_errmsg(), "sparse vector 'text' is declared "
	    "twice");
	sparse_cfg(&cfg, "c");
	snprintf(cfg.sparse[1].name, sizeof(cfg.sparse[1].name), "a b");
	ck_assert_int_eq(vecdb_collection_create(tu_db, &cfg), VECDB_EINVAL);
	ck_assert_str_eq(vecdb_errmsg(), "sparse vector name 'a b' has a "
	    "character outside [A-Za-z0-9_-]");
	sparse_cfg(&cfg, "c");
	cfg.sparse[1].name[0] = '\0';
	ck_assert_int_eq(vecdb_collection_create(tu_db, &cfg), VECDB_EINVAL);
	sparse_cfg(&cfg, "c");
	cfg.sparse[0].modifier = (vecdb_sparse_modifier) 5;
	ck_assert_int_eq(vecdb_collection_create(tu_db, &cfg), VECDB_EINVAL);
	ck_assert_ptr_nonnull(strstr(vecdb_errmsg(), "modifier"));
	sparse_cfg(&cfg, "c");
	cfg.n_sparse = VECDB_SPARSE_MAX + 1;
	ck_assert_int_eq(vecdb_collection_create(tu_db, &cfg), VECDB_EINVAL);
	ck_assert_int_eq(vecdb_collection_list(tu_db, &names, &n), VECDB_OK);
	ck_assert_uint_eq(n, 0);
	vecdb_names_free(names, n);
	/* the most there may be, with the longest names */
	vecdb_collection_config_init(&cfg, "c", 4, VECDB_COSINE);
	cfg.n_sparse = VECDB_SPARSE_MAX;
	for (int i = 0; i < VECDB_SPARSE_MAX; i++) {
		memset(cfg.sparse[i].name, 'a' + i, VECDB_NAME_MAX);
		cfg.sparse[i].name[VECDB_NAME_MAX] = '\0';
	}
	ck_assert_int_eq(vecdb_collection_create(tu_db, &cfg), VECDB_OK);
	vecdb_close(tu_db);
	tu_db = tu_open(tu_dir);
	ck_assert_int_eq(vecdb_collection_get(tu_db, "c", &cfg), VECDB_OK);
	ck_assert_uint_eq(cfg.n_sparse, VECDB_SPARSE_MAX);
	ck_assert_uint_eq(strlen(cfg.sparse[7].name), VECDB_NAME_MAX);
	ck_assert_int_eq(cfg.sparse[7].name[0], 'h');
}
END_TEST

static Suite *
catalog_suite(void)
{
	Suite *s = suite_create("catalog");
	TCase *tc;

	tc = tcase_create("collections");
	tu_add_db_fixture(tc);
	tcase_add_test(tc, create_then_get_returns_the_config_with_defaults);
	tcase_add_test(tc, duplicate_collection_is_refused);
	tcase_add_test(tc, bad_names_are_refused);
	tcase_add_test(tc, bad_configs_are_refused_and_nothing_is_written);
	tcase_add_test(tc, list_is_sorted_and_delete_removes_points);
	tcase_add_test(tc, collections_survive_reopen);
	tcase_add_test(tc, stats_count_points_and_bytes);
	tcase_add_test(tc, sparse_vectors_are_kept_and_survive_reopen);
	tcase_add_test(tc, bad_sparse_vectors_are_refused);
	suite_add_tcase(s, tc);
	tc = tcase_create("config");
	tu_add_db_fixture(tc);
	tcase_add_test(tc, options_come_from_the_environment);
	tcase_add_test(tc, open_uses_vecdb_data_dir);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	return tu_run(catalog_suite());
}
