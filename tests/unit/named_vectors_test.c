/*
 * named_vectors_test.c: named dense vectors through the engine. A
 * collection declares them beside its default vector, each with its own
 * dimension, metric and type; a point carries any subset; each is searched
 * through its own HNSW graph (or exactly), and a point without it is not
 * found; updates set or remove one and keep the others; bad input is
 * refused whole; they survive a reopen, a snapshot and a replica's replay.
 */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "storage_repl.h"
#include "testutil.h"
#include "vdb.h"

#define DIM 3
#define IDIM 4   /* "image": euclidean, float32 */
#define TDIM 2   /* "title": dot, float16 */
#define NP 300

static const float V[DIM] = { 0.5f, -1, 2 };

/* Collection "m": a default 3-d cosine vector, "image" and "title". */
static void
create_m(vecdb *db)
{
	vecdb_collection_config c;

	vecdb_collection_config_init(&c, "m", DIM, VECDB_COSINE);
	c.n_vectors = 2;
	snprintf(c.vectors[0].name, sizeof(c.vectors[0].name), "image");
	c.vectors[0].dimension = IDIM;
	c.vectors[0].metric = VECDB_EUCLIDEAN;
	snprintf(c.vectors[1].name, sizeof(c.vectors[1].name), "title");
	c.vectors[1].dimension = TDIM;
	c.vectors[1].metric = VECDB_DOT;
	c.vectors[1].vector_type = VECDB_FLOAT16;
	ck_assert_int_eq(vecdb_collection_create(db, &c), VECDB_OK);
}

/* A database whose collections over 50 points are searched by graph. */
static vecdb *
open_small(const char *dir)
{
	vecdb_options o;
	vecdb *db = NULL;

	vecdb_options_init(&o);
	o.durability = VECDB_BUFFERED;
	o.map_size = 1ULL << 30;
	o.full_scan_threshold = 50;
	ck_assert_msg(vecdb_open(dir, &o, &db) == VECDB_OK, "open: %s",
	    vecdb_errmsg());
	return db;
}

/* Write point id (op) with the default vector V (or none: an update
 * keeps it) and the named vectors nv. */
static int
write1(vecdb *db, vecdb_write_op op, uint64_t id, int with_vector,
    const vecdb_named_vector *nv, size_t n)
{
	vecdb_point p = { vecdb_id_num(id), with_vector ? V : NULL, DIM,
		NULL };
	vecdb_point_sparse ps = { NULL, 0, nv, n };

	return vecdb_write(db, "m", op, &p, &ps, 1, 0);
}

static vecdb_record *
get1(vecdb *db, uint64_t id)
{
	vecdb_id i = vecdb_id_num(id);
	vecdb_record *r;

	ck_assert_int_eq(vecdb_get(db, "m", &i, &r), VECDB_OK);
	return r;
}

/* The named vector of r called name, or NULL. */
static const vecdb_named_record *
named_of(const vecdb_record *r, const char *name)
{
	for (size_t i = 0; i < r->n_named; i++)
		if (strcmp(r->named[i].name, name) == 0)
			return &r->named[i];
	return NULL;
}

static void
expect_named(const vecdb_record *r, const char *name, uint32_t dim,
    const float *want)
{
	const vecdb_named_record *n = named_of(r, name);

	ck_assert_msg(n != NULL, "point has no vector '%s'", name);
	ck_assert_uint_eq(n->dim, dim);
	for (uint32_t i = 0; i < dim; i++)
		ck_assert_float_eq(n->data[i], want[i]);
}

static const float IMG1[IDIM] = { 1, 2, 3, 4 };
static const float IMG2[IDIM] = { -1, 0, 0.5f, 8 };
static const float TTL1[TDIM] = { 0.5f, -0.25f }; /* exact in float16 */

START_TEST(named_vectors_are_stored_and_read_back)
{
	vecdb_named_vector nv[2] = { { "title", TTL1, TDIM, 0 },
		{ "image", IMG1, IDIM, 0 } };
	vecdb_collection_config c;
	vecdb_record *r;

	create_m(tu_db);
	ck_assert_int_eq(vecdb_collection_get(tu_db, "m", &c), VECDB_OK);
	ck_assert_uint_eq(c.n_vectors, 2);
	ck_assert_str_eq(c.vectors[0].name, "image");
	ck_assert_uint_eq(c.vectors[0].dimension, IDIM);
	ck_assert_int_eq(c.vectors[0].metric, VECDB_EUCLIDEAN);
	ck_assert_uint_eq(c.vectors[0].index.max_connections,
	    VECDB_HNSW_M_DEFAULT); /* defaults filled in */
	ck_assert_int_eq(c.vectors[1].vector_type, VECDB_FLOAT16);
	ck_assert_int_eq(write1(tu_db, VECDB_WRITE_UPSERT, 1, 1, nv, 2),
	    VECDB_OK);
	r = get1(tu_db, 1);
	ck_assert_uint_eq(r->n_named, 2);
	/* in the collection's order */
	ck_assert_str_eq(r->named[0].name, "image");
	expect_named(r, "image", IDIM, IMG1);
	expect_named(r, "title", TDIM, TTL1);
	for (int i = 0; i < DIM; i++)
		ck_assert_float_eq(r->vector[i], V[i]);
	vecdb_record_free(r);
	/* a point with none has none */
	ck_assert_int_eq(write1(tu_db, VECDB_WRITE_INSERT, 2, 1, NULL, 0),
	    VECDB_OK);
	r = get1(tu_db, 2);
	ck_assert_uint_eq(r->n_named, 0);
	vecdb_record_free(r);
}
END_TEST

START_TEST(updates_set_and_remove_one_vector_and_keep_the_others)
{
	vecdb_named_vector both[2] = { { "image", IMG1, IDIM, 0 },
		{ "title", TTL1, TDIM, 0 } };
	vecdb_named_vector img2 = { "image", IMG2, IDIM, 0 };
	vecdb_named_vector rm = { "title", NULL, 0, 1 };
	vecdb_record *r;

	create_m(tu_db);
	ck_assert_int_eq(write1(tu_db, VECDB_WRITE_UPSERT, 1, 1, both, 2),
	    VECDB_OK);
	/* set one: the other stays, and so does the default vector */
	ck_assert_int_eq(write1(tu_db, VECDB_WRITE_UPDATE, 1, 0, &img2, 1),
	    VECDB_OK);
	r = get1(tu_db, 1);
	expect_named(r, "image", IDIM, IMG2);
	expect_named(r, "title", TDIM, TTL1);
	ck_assert_float_eq(r->vector[2], V[2]);
	vecdb_record_free(r);
	/* remove one */
	ck_assert_int_eq(write1(tu_db, VECDB_WRITE_UPDATE, 1, 0, &rm, 1),
	    VECDB_OK);
	r = get1(tu_db, 1);
	ck_assert_uint_eq(r->n_named, 1);
	expect_named(r, "image", IDIM, IMG2);
	vecdb_record_free(r);
	/* an upsert replaces the whole point: no named vectors given, none */
	ck_assert_int_eq(write1(tu_db, VECDB_WRITE_UPSERT, 1, 1, NULL, 0),
	    VECDB_OK);
	r = get1(tu_db, 1);
	ck_assert_uint_eq(r->n_named, 0);
	vecdb_record_free(r);
}
END_TEST

START_TEST(bad_named_vectors_are_refused_and_nothing_is_written)
{
	static const float nan3[IDIM] = { 1, NAN, 0, 0 };
	const struct {
		vecdb_named_vector nv[2];
		size_t n;
		vecdb_write_op op;
		int rv;
	} bad[] = {
		{ { { "nope", IMG1, IDIM, 0 } }, 1, VECDB_WRITE_UPSERT,
		    VECDB_EINVAL },
		{ { { "image", IMG1, 3, 0 } }, 1, VECDB_WRITE_UPSERT,
		    VECDB_EDIM },
		{ { { "image", nan3, IDIM, 0 } }, 1, VECDB_WRITE_UPSERT,
		    VECDB_EINVAL },
		{ { { "image", IMG1, IDIM, 0 }, { "image", IMG2, IDIM, 0 } },
		    2, VECDB_WRITE_UPSERT, VECDB_EINVAL },
		{ { { "image", NULL, 0, 1 } }, 1, VECDB_WRITE_UPSERT,
		    VECDB_EINVAL },
		{ { { "", IMG1, IDIM, 0 } }, 1, VECDB_WRITE_UPSERT,
		    VECDB_EINVAL },
	};
	vecdb_collection_stats st;
	vecdb_collection_config c;

	create_m(tu_db);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int rv = write1(tu_db, bad[i].op, 7, 1, bad[i].nv, bad[i].n);

		ck_assert_msg(rv == bad[i].rv, "case %zu: %s (%s)", i,
		    vecdb_strerror(rv), vecdb_errmsg());
	}
	ck_assert_int_eq(vecdb_collection_stats_get(tu_db, "m", &st),
	    VECDB_OK);
	ck_assert_uint_eq(st.vector_count, 0);
	/* a bad declaration is refused too */
	vecdb_collection_config_init(&c, "b", DIM, VECDB_COSINE);
	c.n_vectors = 1;
	snprintf(c.vectors[0].name, sizeof(c.vectors[0].name), "x");
	ck_assert_int_eq(vecdb_collection_create(tu_db, &c), VECDB_EINVAL);
	c.vectors[0].dimension = 2;
	c.n_sparse = 1;
	snprintf(c.sparse[0].name, sizeof(c.sparse[0].name), "x");
	ck_assert_int_eq(vecdb_collection_create(tu_db, &c), VECDB_EINVAL);
	c.n_sparse = 0;
	c.n_vectors = 2;
	c.vectors[1] = c.vectors[0];
	ck_assert_int_eq(vecdb_collection_create(tu_db, &c), VECDB_EINVAL);
	c.n_vectors = VECDB_VECTORS_MAX + 1;
	ck_assert_int_eq(vecdb_collection_create(tu_db, &c), VECDB_EINVAL);
}
END_TEST

/* The reference: each point's vectors, and which it has. */
static float img[NP][IDIM], ttl[NP][TDIM];
static int has_img[NP], has_ttl[NP];

/* Upsert NP points: every 3rd without "image", every 4th without
 * "title", the titles rounded to float16 by a round trip. */
static void
load_points(vecdb *db, uint64_t seed)
{
	for (int i = 0; i < NP; i++) {
		vecdb_named_vector nv[2];
		size_t n = 0;

		tu_rand_vector(&seed, img[i], IDIM);
		tu_rand_vector(&seed, ttl[i], TDIM);
		has_img[i] = i % 3 != 0;
		has_ttl[i] = i % 4 != 0;
		if (has_img[i])
			nv[n++] = (vecdb_named_vector) { "image", img[i],
			    IDIM, 0 };
		if (has_ttl[i])
			nv[n++] = (vecdb_named_vector) { "title", ttl[i],
			    TDIM, 0 };
		ck_assert_int_eq(write1(db, VECDB_WRITE_UPSERT,
		    (uint64_t) i, 1, nv, n), VECDB_OK);
		if (has_ttl[i]) {
			vecdb_record *r = get1(db, (uint64_t) i);

			memcpy(ttl[i], named_of(r, "title")->data,
			    sizeof(ttl[i]));
			vecdb_record_free(r);
		}
	}
}

/* Search "image" (euclidean) for q, exactly or not: the hits are only
 * points that have it, ranked as the reference ranks them. Returns how
 * many of the reference's best 10 it found. */
static size_t
image_search(vecdb *db, const float *q, int exact)
{
	vecdb_search_params sp = { q, IDIM, 10, 0, NULL, 200, exact, 0, 1,
		0, 0, 0, "image" };
	struct { float d; int id; } all[NP], t;
	vecdb_records *r;
	size_t na = 0, found = 0;

	for (int i = 0; i < NP; i++)
		if (has_img[i]) {
			float d = 0;

			for (int j = 0; j < IDIM; j++)
				d += (img[i][j] - q[j]) * (img[i][j] - q[j]);
			all[na].d = sqrtf(d);
			all[na++].id = i;
		}
	for (size_t i = 0; i < na; i++)
		for (size_t j = i + 1; j < na; j++)
			if (all[j].d < all[i].d) {
				t = all[i];
				all[i] = all[j];
				all[j] = t;
			}
	ck_assert_int_eq(vecdb_search(db, "m", &sp, &r), VECDB_OK);
	ck_assert_uint_eq(r->count, 10);
	for (size_t i = 0; i < r->count; i++) {
		int id = (int) r->items[i].id.num;

		ck_assert_msg(has_img[id], "point %d has no image", id);
		/* with_vector: the record carries the searched vector */
		expect_named(&r->items[i], "image", IDIM, img[id]);
		for (size_t j = 0; j < 10; j++)
			found += all[j].id == id;
		if (exact) {
			ck_assert_int_eq(id, all[i].id);
			ck_assert_float_eq_tol(r->items[i].distance, all[i].d,
			    1e-5);
		}
	}
	vecdb_records_free(r);
	return found;
}

START_TEST(each_vector_is_searched_by_its_own_graph_and_metric)
{
	char *dir = tu_subdir();
	vecdb *db = open_small(dir);
	vecdb_collection_stats st;
	uint64_t seed = 9;
	size_t found = 0;
	int n_img = 0, n_ttl = 0;

	create_m(db);
	load_points(db, 3);
	for (int i = 0; i < NP; i++) {
		n_img += has_img[i];
		n_ttl += has_ttl[i];
	}
	ck_assert_int_eq(vecdb_index_sync(db, 60000), VECDB_OK);
	ck_assert_int_eq(vecdb_collection_stats_get(db, "m", &st), VECDB_OK);
	ck_assert_uint_eq(st.indexed_count, NP);
	ck_assert_uint_eq(st.named_indexed[0], (uint64_t) n_img);
	ck_assert_uint_eq(st.named_indexed[1], (uint64_t) n_ttl);
	for (int q = 0; q < 20; q++) {
		float v[IDIM];

		tu_rand_vector(&seed, v, IDIM);
		image_search(db, v, 1);
		found += image_search(db, v, 0);
	}
	/* the graph's recall over 20 searches of 10 */
	ck_assert_msg(found >= 190, "graph recall %zu of 200", found);
	/* "title" by dot product: the best has the largest a.b */
	{
		float q[TDIM] = { 1, 0.5f }, best = -INFINITY;
		vecdb_search_params sp = { q, TDIM, 1, 0, NULL, 0, 1, 0, 0,
			0, 0, 0, "title" };
		vecdb_records *r;
		int want = -1;

		for (int i = 0; i < NP; i++)
			if (has_ttl[i] && ttl[i][0] + 0.5f * ttl[i][1] > best) {
				best = ttl[i][0] + 0.5f * ttl[i][1];
				want = i;
			}
		ck_assert_int_eq(vecdb_search(db, "m", &sp, &r), VECDB_OK);
		ck_assert_uint_eq(r->count, 1);
		ck_assert_uint_eq(r->items[0].id.num, (uint64_t) want);
		vecdb_records_free(r);
		/* wrong dimension, unknown name */
		sp.vector = IMG1;
		sp.dim = IDIM;
		ck_assert_int_eq(vecdb_search(db, "m", &sp, &r), VECDB_EDIM);
		sp.using = "nope";
		ck_assert_int_eq(vecdb_search(db, "m", &sp, &r),
		    VECDB_EINVAL);
	}
	/* recommend, discover and batch search by "image" rank as a search
	 * of "image" does */
	{
		vecdb_id pos = vecdb_id_num(1);
		vecdb_recommend_params rp = { 0 };
		vecdb_discover_params dp = { 0 };
		vecdb_search_params sp[2] = { { img[1], IDIM, 5, 0, NULL, 0, 1,
			0, 0, 0, 0, 0, "image" }, { V, DIM, 5, 0, NULL, 0, 1,
			0, 0, 0, 0, 0, NULL } };
		vecdb_records *r, *s, **b;

		rp.positive = &pos;
		rp.n_positive = 1;
		rp.limit = 4;
		rp.using = "image";
		dp.has_target = 1;
		dp.target = pos;
		dp.limit = 4;
		dp.using = "image";
		ck_assert_int_eq(vecdb_search(db, "m", &sp[0], &s), VECDB_OK);
		ck_assert_uint_eq(s->items[0].id.num, 1); /* itself */
		ck_assert_int_eq(vecdb_recommend(db, "m", &rp, &r), VECDB_OK);
		ck_assert_uint_eq(r->count, 4);
		for (size_t i = 0; i < 4; i++)
			ck_assert_uint_eq(r->items[i].id.num,
			    s->items[i + 1].id.num);
		vecdb_records_free(r);
		ck_assert_int_eq(vecdb_discover(db, "m", &dp, &r), VECDB_OK);
		ck_assert_uint_eq(r->count, 4);
		for (size_t i = 0; i < 4; i++)
			ck_assert_uint_eq(r->items[i].id.num,
			    s->items[i + 1].id.num);
		vecdb_records_free(r);
		ck_assert_int_eq(vecdb_search_batch(db, "m", sp, 2, &b),
		    VECDB_OK);
		for (size_t i = 0; i < 5; i++)
			ck_assert_uint_eq(b[0]->items[i].id.num,
			    s->items[i].id.num);
		ck_assert_uint_eq(b[1]->count, 5);
		vecdb_records_free_array(b, 2);
		vecdb_records_free(s);
		/* an example without the vector, a name that is not there */
		pos = vecdb_id_num(0); /* every 3rd has no image */
		ck_assert_int_eq(vecdb_recommend(db, "m", &rp, &r),
		    VECDB_EINVAL);
		rp.using = "nope";
		ck_assert_int_eq(vecdb_recommend(db, "m", &rp, &r),
		    VECDB_EINVAL);
	}
	/* removing a point's image takes it out of image searches, in the
	 * WAL tail and in the graph */
	for (int i = 1; i < NP; i += 3) {
		vecdb_named_vector rm = { "image", NULL, 0, 1 };

		if (!has_img[i])
			continue;
		ck_assert_int_eq(write1(db, VECDB_WRITE_UPDATE, (uint64_t) i,
		    0, &rm, 1), VECDB_OK);
		has_img[i] = 0;
	}
	seed = 11;
	for (int q = 0; q < 5; q++) {
		float v[IDIM];

		tu_rand_vector(&seed, v, IDIM);
		image_search(db, v, 1);
		image_search(db, v, 0);
	}
	ck_assert_int_eq(vecdb_index_sync(db, 60000), VECDB_OK);
	for (int q = 0; q < 5; q++) {
		float v[IDIM];

		tu_rand_vector(&seed, v, IDIM);
		image_search(db, v, 0);
	}
	/* the graphs come back from their checkpoints */
	vecdb_close(db);
	db = open_small(dir);
	ck_assert_int_eq(vecdb_index_sync(db, 60000), VECDB_OK);
	ck_assert_int_eq(vecdb_collection_stats_get(db, "m", &st), VECDB_OK);
	n_img = 0;
	for (int i = 0; i < NP; i++)
		n_img += has_img[i];
	ck_assert_uint_eq(st.named_indexed[0], (uint64_t) n_img);
	for (int q = 0; q < 5; q++) {
		float v[IDIM];

		tu_rand_vector(&seed, v, IDIM);
		image_search(db, v, 0);
	}
	vecdb_close(db);
	free(dir);
}
END_TEST

START_TEST(named_vectors_survive_reopen_snapshot_and_replication)
{
	vecdb_named_vector nv[2] = { { "image", IMG1, IDIM, 0 },
		{ "title", TTL1, TDIM, 0 } };
	vecdb_snapshot_info si;
	char path[4096];
	struct storage_wal_info wi;
	uint8_t *blob;
	size_t len, n;
	uint64_t last;
	int restore;
	char *dir = tu_subdir();
	vecdb *r = tu_open(dir);
	vecdb_record *p;
	vecdb_collection_config c;

	create_m(tu_db);
	ck_assert_int_eq(write1(tu_db, VECDB_WRITE_UPSERT, 1, 1, nv, 2),
	    VECDB_OK);
	/* a replica applying the primary's WAL has them */
	ck_assert_int_eq(storage_wal_read(tu_db, 0, 100000, 1 << 30, &blob,
	    &len, &n, &wi), VECDB_OK);
	ck_assert_int_eq(storage_wal_apply(r, blob, len, &last, &restore),
	    VECDB_OK);
	vdb_free(blob);
	ck_assert_int_eq(vecdb_collection_get(r, "m", &c), VECDB_OK);
	ck_assert_uint_eq(c.n_vectors, 2);
	p = get1(r, 1);
	expect_named(p, "image", IDIM, IMG1);
	vecdb_record_free(p);
	vecdb_close(r);
	free(dir);
	/* so does the primary after a reopen */
	vecdb_close(tu_db);
	tu_db = tu_open(tu_dir);
	p = get1(tu_db, 1);
	expect_named(p, "title", TDIM, TTL1);
	vecdb_record_free(p);
	/* and a snapshot restored in place of the collection */
	ck_assert_int_eq(vecdb_snapshot_create(tu_db, "m", &si), VECDB_OK);
	ck_assert_int_eq(vecdb_snapshot_path(tu_db, "m", si.name, path,
	    sizeof(path)), VECDB_OK);
	ck_assert_int_eq(vecdb_collection_delete(tu_db, "m"), VECDB_OK);
	ck_assert_msg(vecdb_snapshot_restore_file(tu_db, "m", path) ==
	    VECDB_OK, "restore: %s", vecdb_errmsg());
	ck_assert_int_eq(vecdb_collection_get(tu_db, "m", &c), VECDB_OK);
	ck_assert_uint_eq(c.vectors[1].vector_type, VECDB_FLOAT16);
	p = get1(tu_db, 1);
	expect_named(p, "image", IDIM, IMG1);
	expect_named(p, "title", TDIM, TTL1);
	vecdb_record_free(p);
}
END_TEST

START_TEST(a_collection_may_have_named_vectors_only)
{
	vecdb_collection_config c;
	vecdb_named_vector nv = { "image", IMG1, IDIM, 0 };
	vecdb_point p[3] = { { vecdb_id_num(1), NULL, 0, NULL },
		{ vecdb_id_num(2), NULL, 0, "{\"a\": 1}" },
		{ vecdb_id_num(3), V, DIM, NULL } };
	vecdb_point_sparse ps[2] = { { NULL, 0, &nv, 1 },
		{ NULL, 0, NULL, 0 } };
	vecdb_search_params sp = { IMG1, IDIM, 5, 0, NULL, 0, 0, 0, 1, 0, 0,
		0, "image" };
	vecdb_snapshot_info si;
	vecdb_collection_stats st;
	vecdb_records *r;
	vecdb_record *g;
	vecdb_id one = vecdb_id_num(1);
	char path[4096];

	vecdb_collection_config_init(&c, "o", 0, VECDB_COSINE);
	/* without any named vector, dimension 0 is still refused */
	ck_assert_int_eq(vecdb_collection_create(tu_db, &c), VECDB_EINVAL);
	c.n_vectors = 1;
	snprintf(c.vectors[0].name, sizeof(c.vectors[0].name), "image");
	c.vectors[0].dimension = IDIM;
	c.vectors[0].metric = VECDB_EUCLIDEAN;
	ck_assert_int_eq(vecdb_collection_create(tu_db, &c), VECDB_OK);
	/* a point with the image, one with none at all; a default vector is
	 * refused */
	ck_assert_int_eq(vecdb_write(tu_db, "o", VECDB_WRITE_UPSERT, p, ps, 2,
	    0), VECDB_OK);
	ck_assert_int_eq(vecdb_write(tu_db, "o", VECDB_WRITE_UPSERT, p + 2,
	    NULL, 1, 0), VECDB_EDIM);
	ck_assert_int_eq(vecdb_get(tu_db, "o", &one, &g), VECDB_OK);
	ck_assert_ptr_null(g->vector);
	expect_named(g, "image", IDIM, IMG1);
	vecdb_record_free(g);
	ck_assert_int_eq(vecdb_search(tu_db, "o", &sp, &r), VECDB_OK);
	ck_assert_uint_eq(r->count, 1);
	ck_assert_uint_eq(r->items[0].id.num, 1);
	vecdb_records_free(r);
	sp.using = NULL;
	ck_assert_int_eq(vecdb_search(tu_db, "o", &sp, &r), VECDB_EINVAL);
	ck_assert_int_eq(vecdb_index_sync(tu_db, 60000), VECDB_OK);
	ck_assert_int_eq(vecdb_collection_stats_get(tu_db, "o", &st),
	    VECDB_OK);
	ck_assert_uint_eq(st.vector_count, 2);
	ck_assert_uint_eq(st.pending_count, 0);
	ck_assert_uint_eq(st.named_indexed[0], 1);
	/* it comes back from a reopen and a snapshot */
	vecdb_close(tu_db);
	tu_db = tu_open(tu_dir);
	ck_assert_int_eq(vecdb_snapshot_create(tu_db, "o", &si), VECDB_OK);
	ck_assert_int_eq(vecdb_snapshot_path(tu_db, "o", si.name, path,
	    sizeof(path)), VECDB_OK);
	ck_assert_int_eq(vecdb_collection_delete(tu_db, "o"), VECDB_OK);
	ck_assert_msg(vecdb_snapshot_restore_file(tu_db, "o", path) ==
	    VECDB_OK, "restore: %s", vecdb_errmsg());
	sp.using = "image";
	ck_assert_int_eq(vecdb_search(tu_db, "o", &sp, &r), VECDB_OK);
	ck_assert_uint_eq(r->count, 1);
	vecdb_records_free(r);
	ck_assert_int_eq(vecdb_collection_stats_get(tu_db, "o", &st),
	    VECDB_OK);
	ck_assert_uint_eq(st.vector_count, 2);
}
END_TEST

static Suite *
named_vectors_suite(void)
{
	Suite *s = suite_create("named vectors");
	TCase *tc = tcase_create("points");

	tu_add_db_fixture(tc);
	tcase_add_test(tc, named_vectors_are_stored_and_read_back);
	tcase_add_test(tc,
	    updates_set_and_remove_one_vector_and_keep_the_others);
	tcase_add_test(tc,
	    bad_named_vectors_are_refused_and_nothing_is_written);
	tcase_add_test(tc, each_vector_is_searched_by_its_own_graph_and_metric);
	tcase_add_test(tc,
	    named_vectors_survive_reopen_snapshot_and_replication);
	tcase_add_test(tc, a_collection_may_have_named_vectors_only);
	tcase_set_timeout(tc, 120);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	return tu_run(named_vectors_suite());
}
