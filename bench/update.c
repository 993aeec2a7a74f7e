/*
 * update.c: `vecdb-bench update`: space under a steady stream of updates.
 *
 *   vecdb-bench update [--n 100000] [--dim 128] [--seconds 600]
 *                      [--batch 100] [--every 10] [--durability sync|buffered]
 *                      [--dir DIR]
 *
 * Loads n seeded points (ids 0..n-1, a small payload each) into collection
 * "bench" of a fresh database, waits for the index, and prints the figures
 * of that fresh load (row "fresh"). Then it upserts batches of random
 * existing ids with new vectors and payloads for --seconds, printing a row
 * every --every seconds: the point count stays n, so the figures should
 * stay where the fresh load put them. Afterwards it waits for the indexer
 * (row "drained", with the time it took), closes and reopens the database
 * (row "restart"), and last copies the final points into a second fresh
 * database (row "copy": the disk a fresh load of the very same points
 * takes). Columns:
 *   t_s        seconds since the update loop began
 *   updates    point updates so far
 *   upd_s      updates a second over the last interval
 *   data_mib   size of data.mdb
 *   rss_mib    resident set of this process (anon + file)
 *   anon_mib   of it, anonymous memory (the index, heaps)
 *   index_mib  the collection's memory_bytes
 *   ckpt_mib   size of the index checkpoint file
 *   dead       the collection's dead_count (dead_ratio after it)
 *   pending    pending_count: points the indexer has not applied yet
 *   wal        WAL records kept
 * The last line gives the peaks against the fresh row.
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "bench.h"
#include "vecdb.h"

struct uargs {
	size_t n, dim, batch;
	double seconds, every;
	vecdb_durability durability;
	const char *dir;
};

/* One row of figures. */
struct row {
	double data, rss, anon, index, ckpt, ratio;
	uint64_t dead, pending, wal;
};

/* Parse --flag value pairs. */
static void
uparse(int argc, char **argv, struct uargs *a)
{
	for (int i = 2; i + 1 < argc; i += 2) {
		const char *k = argv[i], *v = argv[i + 1];
		if (strcmp(k, "--n") == 0)
			a->n = strtoul(v, NULL, 10);
		else if (strcmp(k, "--dim") == 0)
			a->dim = strtoul(v, NULL, 10);
		else if (strcmp(k, "--batch") == 0)
			a->batch = strtoul(v, NULL, 10);
		else if (strcmp(k, "--seconds") == 0)
			a->seconds = strtod(v, NULL);
		else if (strcmp(k, "--every") == 0)
			a->every = strtod(v, NULL);
		else if (strcmp(k, "--dir") == 0)
			a->dir = v;
		else if (strcmp(k, "--durability") == 0)
			a->durability = strcmp(v, "buffered") == 0 ?
			    VECDB_BUFFERED : VECDB_SYNC;
		else
			bench_die("unknown flag %s", k);
	}
	if (a->n == 0 || a->dim == 0 || a->batch == 0 || a->every <= 0)
		bench_die("n, dim, batch and every must be positive");
}

/* MiB of a file, 0 if missing. */
static double
file_mib(const char *dir, const char *name)
{
	char path[8400];
	struct stat st;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	return stat(path, &st) == 0 ? (double) st.st_size / 1048576.0 : 0;
}

/* RssAnon and RssFile of this process, MiB. */
static void
rss_mib(double *anon, double *file)
{
	char line[256];
	FILE *f = fopen("/proc/self/status", "r");
	unsigned long kb;

	*anon = *file = 0;
	if (f == NULL)
		return;
	while (fgets(line, sizeof(line), f) != NULL) {
		if (sscanf(line, "RssAnon: %lu", &kb) == 1)
			*anon = kb / 1024.0;
		else if (sscanf(line, "RssFile: %lu", &kb) == 1)
			*file = kb / 1024.0;
	}
	fclose(f);
}

/* Take the figures of db (in dir). */
static void
measure(vecdb *db, const char *dir, struct row *r)
{
	vecdb_collection_stats cs;
	vecdb_stats st;
	double file;

	bench_check(vecdb_collection_stats_get(db, "bench", &cs), "stats");
	bench_check(vecdb_stats_get(db, &st), "stats");
	rss_mib(&r->anon, &file);
	r->rss = r->anon + file;
	r->data = file_mib(dir, "data.mdb");
	r->ckpt = file_mib(dir, "index/bench.hnsw");
	r->index = (double) cs.memory_bytes / 1048576.0;
	r->dead = cs.dead_count;
	r->ratio = cs.dead_ratio;
	r->pending = cs.pending_count;
	r->wal = st.wal_records;
}

/* Print a row. */
static void
print_row(const char *label, double t, uint64_t updates, double rate,
    const struct row *r)
{
	printf("%-8s %7.1f %9llu %7.0f %9.1f %8.1f %8.1f %9.1f %8.1f "
	       "%7llu %.3f %8llu %8llu\n", label, t,
	    (unsigned long long) updates, rate, r->data, r->rss, r->anon,
	    r->index, r->ckpt, (unsigned long long) r->dead, r->ratio,
	    (unsigned long long) r->pending, (unsigned long long) r->wal);
	fflush(stdout);
}

/* Upsert `m` points with ids from `ids` (NULL: first..first+m-1). */
static void
put_batch(vecdb *db, const struct uargs *a, uint64_t *seed, size_t first,
    size_t m, int random_ids, float *v, vecdb_point *p, char (*pay)[64])
{
	for (size_t i = 0; i < m; i++) {
		uint64_t id = random_ids ? (*seed >> 7) % a->n : first + i;
		for (size_t j = 0; j < a->dim; j++)
			v[i * a->dim + j] = bench_randf(seed);
		snprintf(pay[i], 64, "{\"n\":%llu,\"tag\":\"t%llu\"}",
		    (unsigned long long) id,
		    (unsigned long long) (*seed % 1000));
		p[i] = (vecdb_point) { vecdb_id_num(id), v + i * a->dim,
			(uint32_t) a->dim, pay[i] };
	}
	bench_check(vecdb_upsert(db, "bench", p, m), "upsert");
}

/* Open dir with the benchmark's options. */
static vecdb *
uopen(const struct uargs *a, const char *dir)
{
	vecdb_options o;
	vecdb *db;

	vecdb_options_init(&o);
	bench_check(vecdb_options_from_env(&o), "options");
	o.durability = a->durability;
	bench_check(vecdb_open(dir, &o, &db), "open");
	return db;
}

/* Load n points into a fresh collection and wait for the index. */
static void
load(vecdb *db, const struct uargs *a, uint64_t *seed, float *v,
    vecdb_point *p, char (*pay)[64])
{
	vecdb_collection_config cfg;

	vecdb_collection_config_init(&cfg, "bench", (uint32_t) a->dim,
	    VECDB_EUCLIDEAN);
	bench_check(vecdb_collection_create(db, &cfg), "create");
	for (size_t done = 0; done < a->n; done += a->batch) {
		size_t m = a->n - done < a->batch ? a->n - done : a->batch;
		put_batch(db, a, seed, done, m, 0, v, p, pay);
	}
	bench_check(vecdb_index_sync(db, 3600 * 1000), "index sync");
}

/* Copy every point of db into a fresh database in dir; returns it. */
static vecdb *
copy_fresh(vecdb *src, const struct uargs *a, const char *dir)
{
	vecdb_collection_config cfg;
	vecdb_records *r;
	vecdb_id next = { VECDB_ID_NONE, 0, { 0 } };
	vecdb_point *p = calloc(1000, sizeof(*p));
	vecdb *db = uopen(a, dir);

	vecdb_collection_config_init(&cfg, "bench", (uint32_t) a->dim,
	    VECDB_EUCLIDEAN);
	bench_check(vecdb_collection_create(db, &cfg), "create");
	for (int more = 1; more;) {
		bench_check(vecdb_scroll(src, "bench", &next, 1000, NULL, 1, 1,
				&r), "scroll");
		for (size_t i = 0; i < r->count; i++)
			p[i] = (vecdb_point) { r->items[i].id, r->items[i].vector,
				r->items[i].dim, r->items[i].payload };
		if (r->count > 0)
			bench_check(vecdb_upsert(db, "bench", p, r->count),
			    "upsert");
		more = r->has_next;
		next = r->next;
		vecdb_records_free(r);
	}
	free(p);
	bench_check(vecdb_index_sync(db, 3600 * 1000), "index sync");
	return db;
}

/* Keep the largest of each figure in peak. */
static void
peak_of(struct row *peak, const struct row *r)
{
	if (r->data > peak->data)
		peak->data = r->data;
	if (r->rss > peak->rss)
		peak->rss = r->rss;
	if (r->index > peak->index)
		peak->index = r->index;
	if (r->ckpt > peak->ckpt)
		peak->ckpt = r->ckpt;
}

/* The update loop; returns the updates done, fills peak. */
static uint64_t
update_loop(vecdb *db, const struct uargs *a, const char *dir,
    uint64_t *seed, float *v, vecdb_point *p, char (*pay)[64],
    struct row *peak)
{
	double t0 = bench_now(), last = t0;
	uint64_t updates = 0, at_last = 0;
	struct row r;

	while (bench_now() - t0 < a->seconds) {
		put_batch(db, a, seed, 0, a->batch, 1, v, p, pay);
		updates += a->batch;
		double now = bench_now();
		if (now - last >= a->every) {
			measure(db, dir, &r);
			print_row("update", now - t0, updates,
			    (double) (updates - at_last) / (now - last), &r);
			peak_of(peak, &r);
			last = now;
			at_last = updates;
		}
	}
	return updates;
}

int
bench_update(int argc, char **argv)
{
	struct uargs a = { 100000, 128, 100, 600, 10, VECDB_SYNC, NULL };
	char *base, dir[4200], copy[4200];
	uint64_t seed = 42, updates;
	struct row fresh, peak, r;
	vecdb *db;

	uparse(argc, argv, &a);
	base = a.dir ? strdup(a.dir) : bench_tmpdir();
	snprintf(dir, sizeof(dir), "%s/updated", base);
	snprintf(copy, sizeof(copy), "%s/copy", base);
	float *v = malloc(a.batch * a.dim * sizeof(float));
	vecdb_point *p = calloc(a.batch, sizeof(*p));
	char (*pay)[64] = calloc(a.batch, 64);
	printf("n=%zu dim=%zu batch=%zu seconds=%.0f durability=%s dir=%s\n",
	    a.n, a.dim, a.batch, a.seconds,
	    a.durability == VECDB_SYNC ? "sync" : "buffered", base);
	printf("%-8s %7s %9s %7s %9s %8s %8s %9s %8s %7s %5s %8s %8s\n", "row",
	    "t_s", "updates", "upd_s", "data_mib", "rss_mib", "anon_mib",
	    "index_mib", "ckpt_mib", "dead", "ratio", "pending", "wal");
	db = uopen(&a, dir);
	load(db, &a, &seed, v, p, pay);
	measure(db, dir, &fresh);
	print_row("fresh", 0, 0, 0, &fresh);
	peak = fresh;
	double t0 = bench_now();
	updates = update_loop(db, &a, dir, &seed, v, p, pay, &peak);
	double t1 = bench_now();
	bench_check(vecdb_index_sync(db, 3600 * 1000), "index sync");
	measure(db, dir, &r);
	peak_of(&peak, &r);
	print_row("drained", bench_now() - t0, updates, 0, &r);
	printf("backlog cleared %.1f s after the last update\n",
	    bench_now() - t1);
	vecdb_close(db);
	db = uopen(&a, dir);
	bench_check(vecdb_index_sync(db, 3600 * 1000), "index sync");
	measure(db, dir, &r);
	peak_of(&peak, &r);
	print_row("restart", bench_now() - t0, updates, 0, &r);
	vecdb *cp = copy_fresh(db, &a, copy);
	vecdb_close(db);
	vecdb_close(cp);
	cp = uopen(&a, copy);
	bench_check(vecdb_index_sync(cp, 3600 * 1000), "index sync");
	measure(cp, copy, &r);
	print_row("copy", 0, 0, 0, &r);
	vecdb_close(cp);
	printf("peak/fresh: data %.2f rss %.2f index %.2f ckpt %.2f; "
	       "final data/copy %.2f\n", peak.data / fresh.data,
	    peak.rss / fresh.rss, peak.index / fresh.index,
	    fresh.ckpt > 0 ? peak.ckpt / fresh.ckpt : 0,
	    r.data > 0 ? file_mib(dir, "data.mdb") / r.data : 0);
	free(v);
	free(p);
	free(pay);
	if (a.dir == NULL)
		bench_rmrf(base);
	free(base);
	return 0;
}
