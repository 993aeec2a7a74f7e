/* testutil.h: helpers shared by the check suites. */
#ifndef TESTUTIL_H
#define TESTUTIL_H

#include <stdint.h>
#include <stddef.h>

#include <check.h>

#include "vecdb.h"

/* A fresh directory under $TMPDIR (or /tmp); caller frees the string. */
char *tu_tmpdir(void);

/* Remove a directory tree; missing is fine. */
void tu_rmrf(const char *path);

/* Deterministic xorshift PRNG. */
uint64_t tu_rand(uint64_t *state);
float tu_randf(uint64_t *state); /* uniform in [-1, 1) */

/* Fill v[0..dim) with tu_randf values. */
void tu_rand_vector(uint64_t *state, float *v, uint32_t dim);

/*
 * n seeded vectors of dim components around 64 centres, Gaussian with
 * spread 0.6 per component: clustered as real embeddings are (uniform
 * random points have no structure for a graph index to find). Caller
 * frees. tu_clustered_query draws a query near the data.
 */
float *tu_clustered(uint64_t seed, uint32_t n, uint32_t dim);
void tu_clustered_query(uint64_t *seed, const float *pts, uint32_t n,
    uint32_t dim, float *q);

/*
 * The exact top k labels (indexes into pts, n rows of dim) of q by metric
 * m, among the rows keep (NULL: all) lets through, nearest first; returns
 * how many (< k when fewer pass).
 */
size_t tu_exact_topk(const float *pts, uint32_t n, uint32_t dim,
    vecdb_metric m, const float *q, size_t k, int (*keep)(uint64_t, void *),
    void *arg, uint64_t *out);

/* Open a database in dir with defaults (buffered durability: faster tests
 * whose subject is not durability). Fails the test on error. */
vecdb *tu_open(const char *dir);

/*
 * Fixtures. Add tu_base_setup/tu_base_teardown as an unchecked fixture: it
 * runs in the parent, so the temp tree is removed even when a test fails
 * (a failing forked test never reaches a checked teardown). Then
 * tu_db_setup/tu_db_teardown as a checked fixture opens a fresh database
 * in tu_dir for each test.
 */
extern char *tu_base;   /* per-TCase temp dir */
extern char *tu_dir;    /* per-test data dir under tu_base */
extern vecdb *tu_db;    /* per-test database */
void tu_base_setup(void);
void tu_base_teardown(void);
void tu_db_setup(void);
void tu_db_teardown(void);

/* A fresh directory under tu_base; caller frees the string. */
char *tu_subdir(void);

/* Add both fixtures to tc. */
void tu_add_db_fixture(TCase *tc);

/* Run a suite; returns the process exit status. */
int tu_run(Suite *s);

/* Create a float32 collection or fail the test. */
void tu_create(vecdb *db, const char *name, uint32_t dim, vecdb_metric m);

#endif
