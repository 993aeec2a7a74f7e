/*
 * vecdb_bench.c: benchmarks of the embedded engine.
 *
 *   vecdb-bench exact [--n 20000] [--dim 128] [--queries 200] [--batch 1000]
 *                     [--durability sync|buffered] [--dir DIR]
 *
 * Ingests n seeded random points in batches, then runs exact searches
 * (limit 10) and prints one line of figures:
 *   ingest_pts_per_s=... batch_p50_ms=... search_qps=... disk_mib=...
 *
 * The other modes live in files of their own; `vecdb-bench --help` (or no
 * mode, or an unknown one) lists them all with their flags.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "bench.h"
#include "vecdb.h"

struct args {
	size_t n, dim, queries, batch;
	vecdb_durability durability;
	const char *dir;
};

/* Parse --flag value pairs. */
static void
parse(int argc, char **argv, struct args *a)
{
	for (int i = 2; i + 1 < argc; i += 2) {
		const char *k = argv[i], *v = argv[i + 1];
		if (strcmp(k, "--n") == 0)
			a->n = strtoul(v, NULL, 10);
		else if (strcmp(k, "--dim") == 0)
			a->dim = strtoul(v, NULL, 10);
		else if (strcmp(k, "--queries") == 0)
			a->queries = strtoul(v, NULL, 10);
		else if (strcmp(k, "--batch") == 0)
			a->batch = strtoul(v, NULL, 10);
		else if (strcmp(k, "--dir") == 0)
			a->dir = v;
		else if (strcmp(k, "--durability") == 0)
			a->durability = strcmp(v, "buffered") == 0 ?
			    VECDB_BUFFERED : VECDB_SYNC;
		else {
			fprintf(stderr, "unknown flag %s\n", k);
			exit(2);
		}
	}
	if (a->n == 0 || a->dim == 0 || a->batch == 0 || a->queries == 0) {
		fprintf(stderr, "n, dim, batch and queries must be >= 1\n");
		exit(2);
	}
}

/* Ingest a->n points; returns batch latencies (ms), caller frees. */
static double *
ingest(vecdb *db, const struct args *a, uint64_t *seed, size_t *nb)
{
	float *v = malloc(a->batch * a->dim * sizeof(float));
	vecdb_point *p = calloc(a->batch, sizeof(*p));
	double *lat = malloc((a->n / a->batch + 1) * sizeof(double));

	*nb = 0;
	for (size_t done = 0; done < a->n;) {
		size_t m = a->n - done < a->batch ? a->n - done : a->batch;
		for (size_t i = 0; i < m; i++) {
			for (size_t j = 0; j < a->dim; j++)
				v[i * a->dim + j] = bench_randf(seed);
			p[i] = (vecdb_point) { vecdb_id_num(done + i),
				v + i * a->dim, (uint32_t) a->dim, NULL };
		}
		double t = bench_now();
		bench_check(vecdb_upsert(db, "bench", p, m), "upsert");
		lat[(*nb)++] = (bench_now() - t) * 1000;
		done += m;
	}
	free(v);
	free(p);
	return lat;
}

/* Run the exact-search benchmark. */
static int
bench_exact(const struct args *a)
{
	char tmpl[] = "/tmp/vecdb-bench-XXXXXX", cmd[4200];
	const char *dir = a->dir ? a->dir : mkdtemp(tmpl);
	vecdb_options o;
	vecdb_collection_config cfg;
	vecdb_search_params sp = { 0 };
	vecdb_records *res;
	vecdb_stats st;
	vecdb *db;
	uint64_t seed = 42;
	size_t nb;

	vecdb_options_init(&o);
	o.durability = a->durability;
	bench_check(vecdb_open(dir, &o, &db), "open");
	vecdb_collection_config_init(&cfg, "bench", (uint32_t) a->dim,
	    VECDB_EUCLIDEAN);
	bench_check(vecdb_collection_create(db, &cfg), "create");
	double t0 = bench_now();
	double *lat = ingest(db, a, &seed, &nb);
	double ingest_s = bench_now() - t0;
	qsort(lat, nb, sizeof(double), bench_dcmp);

	float *q = malloc(a->dim * sizeof(float));
	sp.vector = q;
	sp.dim = (uint32_t) a->dim;
	sp.limit = 10;
	sp.exact = 1; /* this benchmark measures the scan */
	t0 = bench_now();
	for (size_t i = 0; i < a->queries; i++) {
		for (size_t j = 0; j < a->dim; j++)
			q[j] = bench_randf(&seed);
		bench_check(vecdb_search(db, "bench", &sp, &res), "search");
		vecdb_records_free(res);
	}
	double search_s = bench_now() - t0;
	bench_check(vecdb_stats_get(db, &st), "stats");
	printf("n=%zu dim=%zu batch=%zu durability=%s ingest_pts_per_s=%.0f "
	       "batch_p50_ms=%.2f batch_p99_ms=%.2f search_qps=%.1f "
	       "disk_mib=%.1f\n", a->n, a->dim, a->batch,
	    a->durability == VECDB_SYNC ? "sync" : "buffered",
	    (double) a->n / ingest_s, lat[nb / 2], lat[(nb * 99) / 100],
	    (double) a->queries / search_s, (double) st.disk_bytes / 1048576.0);
	free(q);
	free(lat);
	vecdb_close(db);
	if (a->dir == NULL) {
		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
		if (system(cmd) != 0)
			fprintf(stderr, "could not remove %s\n", dir);
	}
	return 0;
}

/* Every mode and what it measures; its file's header has the details. */
static void
usage(FILE *f)
{
	fputs(
	    "usage: vecdb-bench MODE [--flag value ...]\n"
	    "  exact   embedded ingest, then exact searches\n"
	    "          (bench/vecdb_bench.c) [--n 20000] [--dim 128]\n"
	    "          [--queries 200] [--batch 1000]\n"
	    "          [--durability sync|buffered] [--dir DIR]\n"
	    "  rest    search over HTTP against in-process calls\n"
	    "          (bench/rest.c) [--n 100000] [--dim 128] [--conns 4]\n"
	    "          [--seconds 10] [--limit 10] [--rounds 1] [--dir DIR]\n"
	    "          [--port P [--load 1] [--search 1] [--rpc R]]\n"
	    "          [--rpc R --load 0] (a binary API alone: a node)\n"
	    "          [--tls DIR] (the --rpc client over mutual TLS)\n"
	    "          [--hold-idle N] [--hold-slow N] [--hold-keepalive N]\n"
	    "          [--api qdrant] (also through the Qdrant API)\n"
	    "  ann     recall and QPS of our HNSW, beside hnswlib's\n"
	    "          (bench/ann.c) --base F --query F --gt F [--metric M]\n"
	    "          [--m 16] [--ef-construction 200] [--ef 10,16,...]\n"
	    "          [--k 10] [--threads 1] [--seed 100] [--reps 3]\n"
	    "          [--build-threads 1] [--via embedded|hnsw]\n"
	    "          [--quantization none|scalar|binary|product]\n"
	    "          [--segments S] [--oversampling 1] [--rescore 1]\n"
	    "          [--always-ram 0] [--compare hnswlib]\n"
	    "  gt      exact top-k ground truth of fvecs files\n"
	    "          (bench/ann.c) --base F --query F --k 100 --out F\n"
	    "          [--metric l2] [--threads N]\n"
	    "  repl    replication lag under batch ingest, vecdb-node\n"
	    "          processes (bench/repl.c) [--node PATH]\n"
	    "          [--batches 2000] [--batch 500] [--dim 16] [--rate 0]\n"
	    "          [--replicas 1] [--dir DIR] [--bootstrap 0|1]\n"
	    "          [--write-concern 0] [--tls DIR]\n"
	    "  update  space under a steady stream of updates\n"
	    "          (bench/update.c) [--n 100000] [--dim 128]\n"
	    "          [--seconds 600] [--batch 100] [--every 10]\n"
	    "          [--durability sync|buffered] [--dir DIR]\n"
	    "  ingest  bulk load over REST: seconds until acked and\n"
	    "          searchable, probe searches meanwhile (bench/ingest.c)\n"
	    "          [--n 200000] [--dim 128] [--batch 1000] [--seed 42]\n"
	    "          [--threads NCPU] [--probe-ms 100] [--port P]\n"
	    "          [--compare hnswlib]\n"
	    "  sparse  sparse vectors: the inverted index against an\n"
	    "          exact scan (bench/sparse.c) [--n 100000]\n"
	    "          [--terms 100] [--vocab 30000] [--zipf 1.0]\n"
	    "          [--queries 200] [--qterms 8] [--k 10] [--idf 1]\n"
	    "          [--rounds 3] [--seed 42] [--engine 1]\n"
	    "          [--dense-dim 32]\n"
	    "vecdb-bench --help prints this.\n", f);
}

int
main(int argc, char **argv)
{
	struct args a = { 20000, 128, 200, 1000, VECDB_SYNC, NULL };

	if (argc >= 2 && (strcmp(argv[1], "--help") == 0 ||
	    strcmp(argv[1], "-h") == 0)) {
		usage(stdout);
		return 0;
	}
	if (argc >= 2 && strcmp(argv[1], "rest") == 0)
		return bench_rest(argc, argv);
	if (argc >= 2 && strcmp(argv[1], "ann") == 0)
		return bench_ann_main(argc, argv);
	if (argc >= 2 && strcmp(argv[1], "gt") == 0)
		return bench_gt_main(argc, argv);
	if (argc >= 2 && strcmp(argv[1], "repl") == 0)
		return bench_repl(argc, argv);
	if (argc >= 2 && strcmp(argv[1], "update") == 0)
		return bench_update(argc, argv);
	if (argc >= 2 && strcmp(argv[1], "ingest") == 0)
		return bench_ingest(argc, argv);
	if (argc >= 2 && strcmp(argv[1], "sparse") == 0)
		return bench_sparse(argc, argv);
	if (argc < 2 || strcmp(argv[1], "exact") != 0) {
		if (argc >= 2)
			fprintf(stderr, "unknown mode %s\n", argv[1]);
		usage(stderr);
		return 2;
	}
	parse(argc, argv, &a);
	return bench_exact(&a);
}
