/*
 * rest.c: `vecdb-bench rest`: what HTTP + JSON cost a search.
 *
 *   vecdb-bench rest [--n 100000] [--dim 128] [--conns 4] [--seconds 10]
 *                    [--limit 10] [--rounds 1] [--dir DIR] [--api qdrant]
 *   vecdb-bench rest --port P [--load 1] [--search 1] [--rpc R] [same flags]
 *   ... [--hold-idle N] [--hold-slow N] [--hold-keepalive N]
 *
 * Loads n seeded random points through the embedded API and waits for the
 * indexer, starts the REST
 * server in-process on a free loopback port, then runs the same searches
 * for the same time two ways: `conns` threads each on its own keep-alive
 * HTTP connection, and `conns` threads calling vecdb_search directly. Prints
 * QPS and p50/p99 latency of both and their QPS ratio; --rounds R (default
 * 1) alternates the two R times, so that a noisy machine hits both alike.
 * --api qdrant adds a third way in each round: the same searches through
 * the Qdrant API (POST /collections/bench/points/query on a second
 * listener of the same process), and prints its QPS over the native
 * API's.
 *
 * The queries are made before the clock starts: QUERIES random vectors and
 * their JSON bodies, which every mode cycles through. Printing 128 floats
 * with snprintf costs about 0.05 ms, a quarter of a search here: inside
 * the timed loop it was the load generator's cost counted as the server's.
 *
 * With --port, the server is one already running on 127.0.0.1:P (`vecdb
 * serve`, or a vecdb-router in front of shards: scripts/bench-router.sh
 * compares the two). --load 1 creates collection "bench" there and writes
 * the same n points over REST, then waits until its pending_count is 0;
 * --search 1 runs the HTTP searches alone. --rpc R runs the same searches
 * over the binary API too (the C client of include/vecdb_client.h, one
 * client a thread, against tcp://127.0.0.1:R: a router's --rpc or a
 * node's) and prints its QPS over HTTP's. --tls DIR makes that client
 * talk mutual TLS to tls+tcp://127.0.0.1:R with DIR/ca.pem, DIR/node.pem
 * and DIR/node.key (scripts/tls-ca.sh DIR node). --rpc R with no --port
 * runs the binary-API searches alone: a node searched straight, with no
 * router in front (the collection must be there: --load needs --port).
 *
 * --hold-idle, --hold-slow and --hold-keepalive keep that many other
 * connections open to the server during the HTTP run: idle ones that
 * send nothing, slowloris ones that trickle a header byte every 0.5 s,
 * and keep-alive ones that were answered once and wait. Any the server
 * closes (its deadlines) are opened again, so the count holds. The
 * searches' p99 then says what such clients cost the others.
 */
#include <arpa/inet.h>
#include <civetweb.h>
#include <errno.h>
#include <math.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <sys/socket.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "api.h"
#include "bench.h"
#include "vecdb_client.h"

struct rest_args {
	size_t n, dim, conns, limit, rounds;
	double seconds;
	const char *dir;
	unsigned port;        /* a running server's; 0: serve in-process */
	unsigned rpc;         /* a running server's binary API port, or 0 */
	int load, search;     /* with port: what to do there */
	size_t hold_idle, hold_slow, hold_keep; /* connections held open */
	int qdrant;           /* --api qdrant: also through Qdrant's API */
	const char *tls;      /* --tls DIR: the binary API over TLS */
};

#define QUERIES 1024

/* The queries every mode sends, made once. */
struct queries {
	size_t dim;
	float *v;             /* QUERIES x dim */
	char **body;          /* each one's JSON search request */
	size_t *len;
	char **qbody;         /* the same as Qdrant's query request */
	size_t *qlen;
};

static struct queries *
queries_make(const struct rest_args *a)
{
	struct queries *q = calloc(1, sizeof(*q));
	size_t cap = a->dim * 16 + 64;
	uint64_t seed = 7;

	q->dim = a->dim;
	q->v = malloc(QUERIES * a->dim * sizeof(float));
	q->body = calloc(QUERIES, sizeof(char *));
	q->len = calloc(QUERIES, sizeof(size_t));
	q->qbody = calloc(QUERIES, sizeof(char *));
	q->qlen = calloc(QUERIES, sizeof(size_t));
	for (size_t i = 0; i < QUERIES; i++) {
		float *v = q->v + i * a->dim;
		size_t off;
		for (size_t j = 0; j < a->dim; j++)
			v[j] = bench_randf(&seed);
		q->body[i] = malloc(cap);
		off = (size_t) snprintf(q->body[i], cap,
		    "{\"limit\":%zu,\"vector\":", a->limit);
		off = bench_json_floats(q->body[i], cap, off, v, a->dim, 0);
		q->len[i] = off + (size_t) snprintf(q->body[i] + off,
		    cap - off, "}");
		/* the native search answers with payloads: ask Qdrant's
		 * for them too */
		q->qbody[i] = malloc(cap + 32);
		off = (size_t) snprintf(q->qbody[i], cap + 32, "{\"limit\":%zu,"
		    "\"with_payload\":true,\"query\":", a->limit);
		off = bench_json_floats(q->qbody[i], cap + 32, off, v, a->dim,
		    0);
		q->qlen[i] = off + (size_t) snprintf(q->qbody[i] + off,
		    cap + 32 - off, "}");
	}
	return q;
}

static void
queries_free(struct queries *q)
{
	for (size_t i = 0; i < QUERIES; i++) {
		free(q->body[i]);
		free(q->qbody[i]);
	}
	free(q->body);
	free(q->len);
	free(q->qbody);
	free(q->qlen);
	free(q->v);
	free(q);
}

/* ===== Connections held open during a run ===== */

enum hold_kind { HOLD_IDLE, HOLD_SLOW, HOLD_KEEP };

struct hold {
	uint16_t port;
	size_t n[3];          /* wanted, per kind */
	int *fd[3];           /* -1: (re)open */
	size_t pos;           /* next header byte of the slow ones */
	size_t reopened;
	volatile int stop;
	pthread_t th;
};

static const char slow_text[] = "GET /health HTTP/1.1\r\nHost: bench\r\n"
    "X-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";

static int
hold_open(uint16_t port, enum hold_kind k)
{
	struct sockaddr_in sa = { .sin_family = AF_INET,
		.sin_port = htons(port) };
	static const char req[] = "GET /health HTTP/1.1\r\nHost: bench\r\n\r\n";
	char buf[512];
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
	if (fd < 0 || connect(fd, (struct sockaddr *) &sa, sizeof(sa)) != 0) {
		if (fd >= 0)
			close(fd);
		return -1;
	}
	if (k == HOLD_KEEP && (send(fd, req, sizeof(req) - 1, MSG_NOSIGNAL) < 0
	    || recv(fd, buf, sizeof(buf), 0) <= 0)) {
		close(fd);
		return -1;
	}
	return fd;
}

/* Did the server close fd? */
static int
hold_closed(int fd)
{
	struct pollfd p = { fd, POLLIN, 0 };
	char buf[512];

	if (poll(&p, 1, 0) <= 0)
		return 0;
	return recv(fd, buf, sizeof(buf), MSG_DONTWAIT) <= 0;
}

/* Every 0.5 s: reopen what was closed, trickle a byte on the slow ones. */
static void *
hold_main(void *arg)
{
	struct hold *h = arg;

	while (!h->stop) {
		for (int k = 0; k < 3; k++)
			for (size_t i = 0; i < h->n[k]; i++) {
				int *fd = &h->fd[k][i];
				if (*fd >= 0 && hold_closed(*fd)) {
					close(*fd);
					*fd = -1;
					h->reopened++;
				}
				if (*fd < 0)
					*fd = hold_open(h->port, k);
				if (*fd >= 0 && k == HOLD_SLOW)
					(void) send(*fd, slow_text + h->pos %
					    (sizeof(slow_text) - 1), 1,
					    MSG_NOSIGNAL);
			}
		h->pos++;
		for (int i = 0; i < 5 && !h->stop; i++)
			usleep(100 * 1000);
	}
	return NULL;
}

static struct hold *
hold_start(const struct rest_args *a, uint16_t port)
{
	struct hold *h;

	if (a->hold_idle + a->hold_slow + a->hold_keep == 0)
		return NULL;
	h = calloc(1, sizeof(*h));
	h->port = port;
	h->n[HOLD_IDLE] = a->hold_idle;
	h->n[HOLD_SLOW] = a->hold_slow;
	h->n[HOLD_KEEP] = a->hold_keep;
	for (int k = 0; k < 3; k++) {
		h->fd[k] = malloc((h->n[k] + 1) * sizeof(int));
		for (size_t i = 0; i < h->n[k]; i++)
			h->fd[k][i] = hold_open(port, k);
	}
	pthread_create(&h->th, NULL, hold_main, h);
	printf("holding idle=%zu slow=%zu keepalive=%zu connections\n",
	    a->hold_idle, a->hold_slow, a->hold_keep);
	return h;
}

static void
hold_stop(struct hold *h)
{
	if (h == NULL)
		return;
	h->stop = 1;
	pthread_join(h->th, NULL);
	for (int k = 0; k < 3; k++) {
		for (size_t i = 0; i < h->n[k]; i++)
			if (h->fd[k][i] >= 0)
				close(h->fd[k][i]);
		free(h->fd[k]);
	}
	printf("held connections reopened after the server closed them: "
	    "%zu\n", h->reopened);
	free(h);
}

struct worker {
	const struct rest_args *a;
	const struct queries *q;
	vecdb *db;            /* in-process mode */
	uint16_t port;        /* HTTP mode when non-zero */
	uint16_t rpc;         /* binary API mode when non-zero */
	uint64_t seed;
	double *lat;          /* latencies in ms */
	size_t nlat, cap;
	int failed;
	int qdrant;           /* HTTP to Qdrant's API */
};

/* Append one latency sample. */
static void
lat_add(struct worker *w, double ms)
{
	if (w->nlat == w->cap) {
		w->cap = w->cap ? w->cap * 2 : 4096;
		w->lat = realloc(w->lat, w->cap * sizeof(double));
	}
	w->lat[w->nlat++] = ms;
}

/* One HTTP search on an open connection (Qdrant's query with qdrant);
 * -1 on any failure. */
static int
http_search(struct mg_connection *c, int qdrant, const char *body,
    size_t len, char *rbuf, size_t rlen)
{
	return bench_http_call(c, "POST", qdrant ?
	    "/collections/bench/points/query" : "/collections/bench/search",
	    body, len, rbuf, rlen) == 200 ? 0 : -1;
}

/* Worker thread: search until the time is up. */
static void *
worker_main(void *arg)
{
	struct worker *w = arg;
	struct mg_connection *c = NULL;
	vecdb_client *cl = NULL;
	char rbuf[65536], err[128];
	size_t k = (size_t) (w->seed * 131) % QUERIES;
	double end = bench_now() + w->a->seconds;

	if (w->port && (c = mg_connect_client("127.0.0.1", w->port, 0, err,
			    sizeof(err))) == NULL) {
		w->failed = 1;
		goto out;
	}
	if (w->rpc) {
		const char *dir = w->a->tls;
		char url[64], ca[4200], cert[4200], key[4200];
		vecdb_client_tls t = { ca, cert, key };
		snprintf(url, sizeof(url), "%s://127.0.0.1:%u", dir != NULL ?
		    "tls+tcp" : "tcp", w->rpc);
		snprintf(ca, sizeof(ca), "%s/ca.pem", dir ? dir : "");
		snprintf(cert, sizeof(cert), "%s/node.pem", dir ? dir : "");
		snprintf(key, sizeof(key), "%s/node.key", dir ? dir : "");
		if (vecdb_client_connect_tls(url, NULL, 10000, dir != NULL ?
		    &t : NULL, &cl) != 0) {
			fprintf(stderr, "vecdb-bench: %s: %s\n", url,
			    vecdb_errmsg());
			w->failed = 1;
			goto out;
		}
	}
	while (bench_now() < end && !w->failed) {
		double t0 = bench_now();
		k = (k + 1) % QUERIES;
		if (c != NULL) {
			w->failed = http_search(c, w->qdrant, w->qdrant ?
			    w->q->qbody[k] : w->q->body[k], w->qdrant ?
			    w->q->qlen[k] : w->q->len[k], rbuf,
			    sizeof(rbuf)) != 0;
		} else {
			vecdb_search_params sp = { 0 };
			vecdb_records *res = NULL;
			sp.vector = w->q->v + k * w->q->dim;
			sp.dim = (uint32_t) w->a->dim;
			sp.limit = (uint32_t) w->a->limit;
			sp.with_payload = 1;
			w->failed = (cl != NULL ? vecdb_client_search(cl, "bench",
			    &sp, NULL, &res) : vecdb_search(w->db, "bench", &sp,
			    &res)) != 0;
			vecdb_records_free(res);
		}
		lat_add(w, (bench_now() - t0) * 1000);
	}
out:
	if (c != NULL)
		mg_close_connection(c);
	vecdb_client_close(cl);
	return NULL;
}

/* Run conns workers in one mode; print a line; return the QPS. */
static double
run_mode(const struct rest_args *a, const struct queries *q, vecdb *db,
    uint16_t port, uint16_t rpc, const char *name)
{
	int qdrant = strcmp(name, "qdrant") == 0;

	struct worker *w = calloc(a->conns, sizeof(*w));
	pthread_t *th = calloc(a->conns, sizeof(*th));
	double *all, qps;
	size_t total = 0, k = 0;

	for (size_t i = 0; i < a->conns; i++) {
		w[i] = (struct worker) { a, q, db, port, rpc, 1000 + i, NULL, 0,
			0, 0, qdrant };
		pthread_create(&th[i], NULL, worker_main, &w[i]);
	}
	for (size_t i = 0; i < a->conns; i++) {
		pthread_join(th[i], NULL);
		if (w[i].failed)
			bench_die("%s worker %zu failed", name, i);
		total += w[i].nlat;
	}
	all = malloc((total ? total : 1) * sizeof(double));
	for (size_t i = 0; i < a->conns; i++) {
		memcpy(all + k, w[i].lat, w[i].nlat * sizeof(double));
		k += w[i].nlat;
		free(w[i].lat);
	}
	qsort(all, total, sizeof(double), bench_dcmp);
	qps = (double) total / a->seconds;
	printf("mode=%s conns=%zu qps=%.1f p50_ms=%.3f p99_ms=%.3f\n", name,
	    a->conns, qps, total ? all[total / 2] : 0,
	    total ? all[(total * 99) / 100] : 0);
	free(all);
	free(w);
	free(th);
	return qps;
}

/* Load n random points with small payloads in batches. */
static void
load(vecdb *db, const struct rest_args *a)
{
	enum { B = 1000 };
	float *v = malloc(B * a->dim * sizeof(float));
	char (*pay)[32] = malloc(B * sizeof(*pay));
	vecdb_point p[B];
	vecdb_collection_config cfg;
	uint64_t seed = 42;

	vecdb_collection_config_init(&cfg, "bench", (uint32_t) a->dim,
	    VECDB_EUCLIDEAN);
	bench_check(vecdb_collection_create(db, &cfg), "create");
	for (size_t done = 0; done < a->n; done += B) {
		size_t m = a->n - done < B ? a->n - done : B;
		for (size_t i = 0; i < m; i++) {
			for (size_t j = 0; j < a->dim; j++)
				v[i * a->dim + j] = bench_randf(&seed);
			snprintf(pay[i], sizeof(pay[i]), "{\"i\":%zu}", done + i);
			p[i] = (vecdb_point) { vecdb_id_num(done + i),
				v + i * a->dim, (uint32_t) a->dim, pay[i] };
		}
		bench_check(vecdb_upsert(db, "bench", p, m), "upsert");
	}
	free(v);
	free(pay);
}

/* ===== A running server (--port) ===== */

/*
 * Create "bench" and write the n points of load() (the same seed and
 * order, printed with %.9g so that each float comes back exactly) over
 * REST in batches of 1000.
 */
static void
remote_load(struct mg_connection *c, const struct rest_args *a)
{
	size_t cap = bench_upsert_cap(1000, a->dim);
	char *body = malloc(cap), rbuf[4096];
	float *v = malloc(1000 * a->dim * sizeof(float));
	uint64_t seed = 42;

	snprintf(body, cap, "{\"name\":\"bench\",\"dimension\":%zu,"
	    "\"distance_metric\":\"euclidean\"}", a->dim);
	bench_http_ok(c, "POST", "/collections", body, rbuf, sizeof(rbuf));
	for (size_t done = 0; done < a->n; done += 1000) {
		size_t m = a->n - done < 1000 ? a->n - done : 1000;
		for (size_t i = 0; i < m * a->dim; i++)
			v[i] = bench_randf(&seed);
		bench_upsert_json(body, cap, done, m, v, a->dim);
		bench_http_ok(c, "POST", "/collections/bench/vectors/upsert",
		    body, rbuf, sizeof(rbuf));
	}
	free(body);
	free(v);
}

/* Wait until the collection's pending_count (summed over shards behind
 * a router) is 0. */
static void
remote_index_wait(struct mg_connection *c)
{
	while (bench_http_pending(c, "bench") != 0)
		usleep(200 * 1000);
}

/* --port (or --rpc alone): load and/or search a running server. */
static int
rest_remote(const struct rest_args *a)
{
	struct mg_connection *c;
	double t0 = bench_now();

	mg_init_library(0);
	if (a->load) {
		c = bench_http_connect(a->port);
		remote_load(c, a);
		remote_index_wait(c);
		mg_close_connection(c);
		printf("loaded and indexed over REST n=%zu dim=%zu in %.1fs\n",
		    a->n, a->dim, bench_now() - t0);
	}
	if (a->search) {
		struct queries *q = queries_make(a);
		for (size_t r = 0; r < a->rounds; r++) {
			struct hold *h;
			double http;
			if (a->port == 0) {   /* --rpc alone */
				run_mode(a, q, NULL, 0, (uint16_t) a->rpc,
				    "binary");
				continue;
			}
			h = hold_start(a, (uint16_t) a->port);
			http = run_mode(a, q, NULL, (uint16_t) a->port, 0,
			    "http");
			hold_stop(h);
			if (a->rpc)
				printf("binary_over_http_qps=%.3f\n",
				    run_mode(a, q, NULL, 0, (uint16_t) a->rpc,
					"binary") / http);
		}
		queries_free(q);
	}
	return 0;
}

/* ===== Main ===== */

/* Parse --flag value pairs. */
static void
rest_parse(int argc, char **argv, struct rest_args *a)
{
	for (int i = 2; i + 1 < argc; i += 2) {
		const char *k = argv[i], *v = argv[i + 1];
		if (!strcmp(k, "--n"))
			a->n = strtoul(v, NULL, 10);
		else if (!strcmp(k, "--dim"))
			a->dim = strtoul(v, NULL, 10);
		else if (!strcmp(k, "--conns"))
			a->conns = strtoul(v, NULL, 10);
		else if (!strcmp(k, "--limit"))
			a->limit = strtoul(v, NULL, 10);
		else if (!strcmp(k, "--rounds"))
			a->rounds = strtoul(v, NULL, 10);
		else if (!strcmp(k, "--seconds"))
			a->seconds = atof(v);
		else if (!strcmp(k, "--dir"))
			a->dir = v;
		else if (!strcmp(k, "--port"))
			a->port = (unsigned) strtoul(v, NULL, 10);
		else if (!strcmp(k, "--rpc"))
			a->rpc = (unsigned) strtoul(v, NULL, 10);
		else if (!strcmp(k, "--load"))
			a->load = atoi(v);
		else if (!strcmp(k, "--search"))
			a->search = atoi(v);
		else if (!strcmp(k, "--hold-idle"))
			a->hold_idle = strtoul(v, NULL, 10);
		else if (!strcmp(k, "--hold-slow"))
			a->hold_slow = strtoul(v, NULL, 10);
		else if (!strcmp(k, "--hold-keepalive"))
			a->hold_keep = strtoul(v, NULL, 10);
		else if (!strcmp(k, "--tls"))
			a->tls = v;
		else if (!strcmp(k, "--api") && (!strcmp(v, "qdrant") ||
		    !strcmp(v, "native")))
			a->qdrant = !strcmp(v, "qdrant");
		else
			bench_die("unknown flag %s", k);
	}
	if (!a->n || !a->dim || !a->conns || !a->limit || !a->rounds ||
	    a->seconds <= 0)
		bench_die("n, dim, conns, limit, rounds and seconds must be "
		    "positive");
	if (a->port > 65535)
		bench_die("--port %u is not a port", a->port);
	if (a->rpc > 65535)
		bench_die("--rpc %u is not a port", a->rpc);
	if (a->rpc && !a->port && a->load)
		bench_die("--rpc without --port searches only: add --load 0");
}

int
bench_rest(int argc, char **argv)
{
	struct rest_args a = { .n = 100000, .dim = 128, .conns = 4,
		.limit = 10, .rounds = 1, .seconds = 10, .load = 1,
		.search = 1 };
	struct queries *q;
	struct api_backend b;
	api_server *srv, *qsrv = NULL;
	vecdb_options o;
	vecdb *db;
	char *tmp = NULL;
	double t0, http, inproc;

	rest_parse(argc, argv, &a);
	if (a.port != 0 || a.rpc != 0)
		return rest_remote(&a);
	if (a.dir == NULL)
		a.dir = tmp = bench_tmpdir();
	vecdb_options_init(&o);
	o.durability = VECDB_BUFFERED;
	bench_check(vecdb_open(a.dir, &o, &db), "open");
	t0 = bench_now();
	load(db, &a);
	bench_check(vecdb_index_sync(db, 3600 * 1000), "index");
	printf("loaded and indexed n=%zu dim=%zu in %.1fs\n", a.n, a.dim,
	    bench_now() - t0);
	srv = bench_serve(db, &b, (unsigned) a.conns + 2);
	if (a.qdrant) {
		struct api_server_config sc = { 0 };
		sc.host = "127.0.0.1";
		sc.threads = (unsigned) a.conns + 2;
		sc.qdrant = 1;
		bench_check(api_server_start(&sc, &b, &qsrv), "qdrant server");
	}
	q = queries_make(&a);
	for (size_t r = 0; r < a.rounds; r++) {
		struct hold *h = hold_start(&a, api_server_port(srv));
		http = run_mode(&a, q, db, api_server_port(srv), 0, "http");
		hold_stop(h);
		if (qsrv != NULL)
			printf("qdrant_over_http_qps=%.3f\n", run_mode(&a, q, db,
			    api_server_port(qsrv), 0, "qdrant") / http);
		inproc = run_mode(&a, q, db, 0, 0, "inproc");
		printf("http_over_inproc_qps=%.3f\n", http / inproc);
	}
	queries_free(q);
	api_server_stop(qsrv);
	api_server_stop(srv);
	vecdb_close(db);
	if (tmp != NULL) {
		bench_rmrf(tmp);
		free(tmp);
	}
	return 0;
}
