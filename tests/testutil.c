/* testutil.c: helpers shared by the check suites. */
#define _GNU_SOURCE
#include <check.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "storage_impl.h"
#include "testutil.h"

char *
tu_tmpdir(void)
{
	const char *base = getenv("TMPDIR");
	char *path;

	if (base == NULL || *base == '\0')
		base = "/tmp";
	if (asprintf(&path, "%s/vecdb-test-XXXXXX", base) < 0)
		abort();
	if (mkdtemp(path) == NULL)
		abort();
	return path;
}

/* nftw callback: remove one entry. */
static int
rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void) sb;
	(void) flag;
	(void) ftw;
	return remove(path);
}

void
tu_rmrf(const char *path)
{
	if (path != NULL)
		nftw(path, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

uint64_t
tu_rand(uint64_t *s)
{
	uint64_t x = *s ? *s : 0x9E3779B97F4A7C15ULL;

	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	*s = x;
	return x;
}

float
tu_randf(uint64_t *s)
{
	return (float) ((double) (tu_rand(s) >> 11) / (double) (1ULL << 53) *
		   2.0 - 1.0);
}

void
tu_rand_vector(uint64_t *s, float *v, uint32_t dim)
{
	for (uint32_t i = 0; i < dim; i++)
		v[i] = tu_randf(s);
}

vecdb *
tu_open(const char *dir)
{
	vecdb_options o;
	vecdb *db = NULL;
	int rv;

	vecdb_options_init(&o);
	o.durability = VECDB_BUFFERED;
	o.map_size = 1ULL << 30;
	rv = vecdb_open(dir, &o, &db);
	ck_assert_msg(rv == VECDB_OK, "open %s: %s (%s)", dir,
	    vecdb_strerror(rv), vecdb_errmsg());
	return db;
}

char *tu_base;
char *tu_dir;
vecdb *tu_db;

void
tu_base_setup(void)
{
	tu_base = tu_tmpdir();
}

void
tu_base_teardown(void)
{
	tu_rmrf(tu_base);
	free(tu_base);
	tu_base = NULL;
}

char *
tu_subdir(void)
{
	char *path;

	if (asprintf(&path, "%s/t-XXXXXX", tu_base) < 0 ||
	    mkdtemp(path) == NULL)
		abort();
	return path;
}

void
tu_db_setup(void)
{
	tu_dir = tu_subdir();
	tu_db = tu_open(tu_dir);
}

void
tu_db_teardown(void)
{
	vecdb_close(tu_db);
	tu_db = NULL;
	free(tu_dir);
	tu_dir = NULL;
}

void
tu_add_db_fixture(TCase *tc)
{
	tcase_add_unchecked_fixture(tc, tu_base_setup, tu_base_teardown);
	tcase_add_checked_fixture(tc, tu_db_setup, tu_db_teardown);
}

int
tu_run(Suite *s)
{
	SRunner *sr = srunner_create(s);
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}

void
tu_create(vecdb *db, const char *name, uint32_t dim, vecdb_metric m)
{
	vecdb_collection_config cfg;
	int rv;

	vecdb_collection_config_init(&cfg, name, dim, m);
	rv = vecdb_collection_create(db, &cfg);
	ck_assert_msg(rv == VECDB_OK, "create %s: %s", name, vecdb_errmsg());
}

#define TU_CENTRES 64
#define TU_SPREAD 0.6f

float *
tu_clustered(uint64_t seed, uint32_t n, uint32_t dim)
{
	float *v = malloc((size_t) n * dim * sizeof(float));
	float *c = malloc((size_t) TU_CENTRES * dim * sizeof(float));
	uint64_t cs = 12345;

	if (v == NULL || c == NULL)
		abort();
	for (int i = 0; i < TU_CENTRES; i++)
		tu_rand_vector(&cs, c + (size_t) i * dim, dim);
	for (uint32_t i = 0; i < n; i++) {
		const float *ce = c + (size_t) (tu_rand(&seed) % TU_CENTRES) * dim;
		for (uint32_t j = 0; j < dim; j++) {
			float g = tu_randf(&seed) + tu_randf(&seed) +
			    tu_randf(&seed); /* ~Gaussian, std 1 */
			v[(size_t) i * dim + j] = ce[j] + TU_SPREAD * g;
		}
	}
	free(c);
	return v;
}

void
tu_clustered_query(uint64_t *seed, const float *pts, uint32_t n, uint32_t dim,
    float *q)
{
	const float *p = pts + (size_t) (tu_rand(seed) % n) * dim;

	for (uint32_t j = 0; j < dim; j++)
		q[j] = p[j] + TU_SPREAD * (tu_randf(seed) + tu_randf(seed));
}

size_t
tu_exact_topk(const float *pts, uint32_t n, uint32_t dim, vecdb_metric m,
    const float *q, size_t k, int (*keep)(uint64_t, void *), void *arg,
    uint64_t *out)
{
	float *best = malloc(k * sizeof(float));
	size_t nb = 0;

	ck_assert_ptr_nonnull(best);
	for (uint32_t i = 0; i < n; i++) {
		if (keep != NULL && !keep(i, arg))
			continue;
		float d = vec_distance(m, q, pts + (size_t) i * dim, dim);
		if (nb == k && d >= best[k - 1])
			continue;
		size_t j = nb < k ? nb++ : k - 1;
		for (; j > 0 && best[j - 1] > d; j--) {
			best[j] = best[j - 1];
			out[j] = out[j - 1];
		}
		best[j] = d;
		out[j] = i;
	}
	free(best);
	return nb;
}
