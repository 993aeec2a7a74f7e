/*
 * repl.c: `vecdb-bench repl`: replication lag under sustained batch ingest.
 *
 *   vecdb-bench repl [--node PATH] [--batches 2000] [--batch 500]
 *                    [--dim 16] [--rate 0] [--replicas 1] [--dir DIR]
 *                    [--bootstrap 0|1] [--write-concern 0] [--tls DIR]
 *
 * Starts a primary `vecdb-node` and --replicas replicas of it on loopback
 * (PATH defaults to vecdb-node beside this binary), upserts --batches
 * batches of --batch random points into one collection from one client,
 * back to back (--rate 0) or at --rate batches a second, and measures, for
 * every batch, the time from its acknowledgement by the primary (the
 * client has it: the commit is done) to its application on the first
 * replica. A poller thread asks that replica for its last seq (STATS)
 * every 0.5 ms (plus the call's own time), so the figures are that coarse;
 * polling flat out would steal the CPU the nodes need. Each batch is one
 * WAL record, so batch k is seq k + 2 (after the create). A batch the
 * replica applied before its acknowledgement reached the client counts
 * as 0. --write-concern N makes each batch wait for N replicas (the
 * ingest figure then includes the replicas' round trip). The nodes run
 * with the environment's settings (VECDB_DURABILITY
 * and so on; VECDB_LOG defaults to warn here).
 *
 * With --tls DIR every connection (client, poller, replication) is mutual
 * TLS over tls+tcp://, every process with DIR/node.pem and DIR/node.key
 * under DIR/ca.pem (scripts/tls-ca.sh DIR node).
 *
 * With --bootstrap 1 the primary keeps 10 WAL records, the ingest runs
 * first, and then one replica starts empty: it must bootstrap from a copy.
 * The figure is the time from its start until its last seq is the
 * primary's, against the size of the primary's data file.
 */
#define _GNU_SOURCE
#include <nng/nng.h>
#include <nng/protocol/reqrep0/req.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "api.h"
#include "bench.h"
#include "proto.h"
#include "proto_rpc.h"
#include "vdb.h"

#define REPLICAS_MAX 4

struct rargs {
	char node[4096];
	size_t batches, batch, replicas;
	uint32_t dim;
	double rate;
	const char *dir;
	int bootstrap;
	uint32_t write_concern;
	const char *tls;              /* --tls DIR, or NULL */
	struct proto_tls_files files; /* its ca.pem, node.pem, node.key */
	nng_tls_config *tls_client;
};

/* A node process and a req0 socket to it. */
struct proc {
	pid_t pid;
	uint16_t rpc, admin;
	nng_socket sock;
};

/* What the poller shares with the writer. */
struct poll_state {
	nng_socket sock;              /* to the first replica */
	double *applied_at;           /* [seq], set once by the poller */
	size_t max_seq;
	_Atomic int stop;
	uint64_t polls;
};

/* Start vecdb-node with args; read its ports from its first line. */
static void
proc_start(const struct rargs *a, const char *dir, const char *const *extra,
    struct proc *p)
{
	const char *scheme = a->tls != NULL ? "tls+tcp" : "tcp";
	const char *argv[32] = { a->node, "--data", dir, "--rpc",
		a->tls != NULL ? "tls+tcp://127.0.0.1:0" : "tcp://127.0.0.1:0",
		"--admin-port", "0" };
	char line[512] = "", url[64], want[96];
	size_t n = 7, len = 0;
	int fds[2];

	if (a->tls != NULL) {
		argv[n++] = "--tls-ca";
		argv[n++] = a->files.ca;
		argv[n++] = "--tls-cert";
		argv[n++] = a->files.cert;
		argv[n++] = "--tls-key";
		argv[n++] = a->files.key;
	}
	while (extra != NULL && *extra != NULL && n < 30)
		argv[n++] = *extra++;
	if (pipe(fds) != 0 || (p->pid = fork()) < 0)
		bench_die("cannot start %s", a->node);
	if (p->pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		dup2(fds[1], 1);
		execv(a->node, (char *const *) argv);
		_exit(127);
	}
	close(fds[1]);
	while (strchr(line, '\n') == NULL && len + 1 < sizeof(line)) {
		ssize_t k = read(fds[0], line + len, sizeof(line) - len - 1);
		if (k <= 0)
			bench_die("%s printed no ports", a->node);
		len += (size_t) k;
		line[len] = '\0';
	}
	close(fds[0]);
	snprintf(want, sizeof(want), "vecdb-node %%*s rpc %s://127.0.0.1:%%hu "
	    "admin http://127.0.0.1:%%hu", scheme);
	if (sscanf(line, want, &p->rpc, &p->admin) != 2)
		bench_die("unexpected first line: %s", line);
	snprintf(url, sizeof(url), "%s://127.0.0.1:%u", scheme, p->rpc);
	if (proto_rpc_dial(url, PROTO_RPC_DIAL_NOW, a->tls_client, NULL, NULL,
	    &p->sock) != VECDB_OK)
		bench_die("cannot dial %s: %s", url, vecdb_errmsg());
	nng_socket_set_ms(p->sock, NNG_OPT_RECVTIMEO, 60000);
}

static void
proc_stop(struct proc *p)
{
	nng_close(p->sock);
	kill(p->pid, SIGTERM);
	waitpid(p->pid, NULL, 0);
}

/* One call (body freed); dies unless the answer is OK. Response body in
 * *out (vdb_free) when out is not NULL. */
static void
call(nng_socket s, uint32_t method, uint8_t *body, size_t len,
    struct proto_response **out)
{
	struct proto_response *r;
	uint8_t *req;
	size_t reqlen, inlen;
	void *in;

	if (proto_request_encode(method, "", 1, body, len, &req, &reqlen) != 0)
		bench_die("encode");
	vdb_free(body);
	if (nng_send(s, req, reqlen, 0) != 0 ||
	    nng_recv(s, &in, &inlen, NNG_FLAG_ALLOC) != 0)
		bench_die("rpc failed");
	vdb_free(req);
	if (proto_response_decode(in, inlen, &r) != VECDB_OK)
		bench_die("bad response");
	nng_free(in, inlen);
	if (r->code != PROTO_OK)
		bench_die("%s: %s", proto_method_name(method), r->message);
	if (out != NULL)
		*out = r;
	else
		proto_response_free(r);
}

/* The poller: note when each seq first shows on the replica. */
static void *
poller(void *arg)
{
	struct poll_state *ps = arg;
	struct proto_response *r;
	vecdb_stats st;
	size_t seen = 0;

	while (!atomic_load(&ps->stop)) {
		call(ps->sock, PROTO_STATS, NULL, 0, &r);
		if (proto_stats_decode(r->body, r->body_len, &st) != VECDB_OK)
			bench_die("bad stats");
		proto_response_free(r);
		ps->polls++;
		double now = bench_now();
		usleep(500);
		for (; seen < st.last_seq && seen < ps->max_seq; seen++)
			ps->applied_at[seen + 1] = now;
		if (seen >= ps->max_seq)
			break;
	}
	return NULL;
}

/* Upsert batch k of random points. */
static void
write_batch(const struct rargs *a, nng_socket s, size_t k, float *v,
    vecdb_point *p, uint64_t *seed)
{
	uint8_t *b;
	size_t l;

	for (size_t i = 0; i < a->batch; i++) {
		for (uint32_t j = 0; j < a->dim; j++)
			v[i * a->dim + j] = bench_randf(seed);
		p[i] = (vecdb_point) { vecdb_id_num(k * a->batch + i),
			v + i * a->dim, a->dim, "{\"g\":1}" };
	}
	if (proto_write_wc_encode("c", API_UPSERT, a->write_concern, p,
	    a->batch, &b, &l) != 0)
		bench_die("encode");
	call(s, PROTO_WRITE, b, l, NULL);
}

/* Print p50/p90/p99/max of n lags (sorted in place), in ms. */
static void
report(const struct rargs *a, double *lag, size_t n, double secs,
    uint64_t polls)
{
	qsort(lag, n, sizeof(*lag), bench_dcmp);
	printf("batches=%zu batch=%zu dim=%u replicas=%zu rate=%s "
	       "write_concern=%u tls=%s ingest=%.0f points/s polls=%llu\n", n,
	    a->batch, a->dim, a->replicas, a->rate > 0 ? "fixed" : "max",
	    a->write_concern, a->tls != NULL ? "yes" : "no",
	    (double) (n * a->batch) / secs, (unsigned long long) polls);
	printf("commit->apply ms: p50=%.2f p90=%.2f p99=%.2f max=%.2f\n",
	    lag[n / 2] * 1e3, lag[n * 9 / 10] * 1e3, lag[n * 99 / 100] * 1e3,
	    lag[n - 1] * 1e3);
}

/* Parse flags. */
static void
rparse(int argc, char **argv, struct rargs *a)
{
	char *slash;

	snprintf(a->node, sizeof(a->node), "%s", argv[0]);
	slash = strrchr(a->node, '/');
	snprintf(slash ? slash + 1 : a->node,
	    sizeof(a->node) - (size_t) (slash ? slash + 1 - a->node : 0),
	    "vecdb-node");
	for (int i = 2; i + 1 < argc; i += 2) {
		const char *k = argv[i], *v = argv[i + 1];
		if (strcmp(k, "--node") == 0)
			snprintf(a->node, sizeof(a->node), "%s", v);
		else if (strcmp(k, "--batches") == 0)
			a->batches = strtoul(v, NULL, 10);
		else if (strcmp(k, "--batch") == 0)
			a->batch = strtoul(v, NULL, 10);
		else if (strcmp(k, "--dim") == 0)
			a->dim = (uint32_t) strtoul(v, NULL, 10);
		else if (strcmp(k, "--rate") == 0)
			a->rate = atof(v);
		else if (strcmp(k, "--replicas") == 0)
			a->replicas = strtoul(v, NULL, 10);
		else if (strcmp(k, "--dir") == 0)
			a->dir = v;
		else if (strcmp(k, "--bootstrap") == 0)
			a->bootstrap = atoi(v);
		else if (strcmp(k, "--write-concern") == 0)
			a->write_concern = (uint32_t) strtoul(v, NULL, 10);
		else if (strcmp(k, "--tls") == 0)
			a->tls = v;
		else
			bench_die("unknown flag %s", k);
	}
	if (a->batches < 1 || a->batch < 1 || a->batch > VECDB_BATCH_MAX ||
	    a->dim < 1 || a->replicas < 1 || a->replicas > REPLICAS_MAX)
		bench_die("bad --batches, --batch, --dim or --replicas");
	if (a->tls != NULL) {
		static char ca[4200], cert[4200], key[4200];
		snprintf(ca, sizeof(ca), "%s/ca.pem", a->tls);
		snprintf(cert, sizeof(cert), "%s/node.pem", a->tls);
		snprintf(key, sizeof(key), "%s/node.key", a->tls);
		a->files = (struct proto_tls_files) { ca, cert, key };
		if (proto_tls_config(&a->files, 0, &a->tls_client) != VECDB_OK)
			bench_die("--tls %s: %s (make it with scripts/tls-ca.sh "
			    "%s node)", a->tls, vecdb_errmsg(), a->tls);
	}
}

/* Create collection "c" on the primary. */
static void
create(const struct rargs *a, struct proc *p)
{
	vecdb_collection_config c;
	uint8_t *b;
	size_t l;

	vecdb_collection_config_init(&c, "c", a->dim, VECDB_EUCLIDEAN);
	if (proto_collection_create_encode(&c, &b, &l) != VECDB_OK)
		bench_die("encode");
	call(p->sock, PROTO_CREATE_COLLECTION, b, l, NULL);
}

/* Write every batch, noting when each was acknowledged. */
static double
ingest(const struct rargs *a, struct proc *p, double *acked)
{
	float *v = malloc(a->batch * a->dim * sizeof(float));
	vecdb_point *pts = malloc(a->batch * sizeof(*pts));
	uint64_t seed = 7;
	double t0 = bench_now();

	if (v == NULL || pts == NULL)
		bench_die("out of memory");
	for (size_t k = 0; k < a->batches; k++) {
		if (a->rate > 0)
			while (bench_now() < t0 + (double) k / a->rate)
				usleep(100);
		write_batch(a, p->sock, k, v, pts, &seed);
		acked[k] = bench_now();
	}
	free(v);
	free(pts);
	return bench_now() - t0;
}

static void replica_start(const struct rargs *a, const char *base,
    const struct proc *prim, size_t i, struct proc *rep);

/* The last seq a node reports. */
static uint64_t
last_seq(struct proc *p)
{
	struct proto_response *r;
	vecdb_stats st;

	call(p->sock, PROTO_STATS, NULL, 0, &r);
	if (proto_stats_decode(r->body, r->body_len, &st) != VECDB_OK)
		bench_die("bad stats");
	proto_response_free(r);
	return st.last_seq;
}

/* --bootstrap 1: ingest, then time an empty replica's catch-up. */
static int
bench_bootstrap(const struct rargs *a, const char *base)
{
	const char *pargs[] = { "--wal-retain", "10", NULL };
	struct proc prim, rep;
	char dir[4200];
	double *acked = calloc(a->batches, sizeof(double)), t0, secs;
	struct stat st;
	uint64_t last;

	if (acked == NULL)
		bench_die("out of memory");
	snprintf(dir, sizeof(dir), "%s/primary", base);
	proc_start(a, dir, pargs, &prim);
	create(a, &prim);
	secs = ingest(a, &prim, acked);
	last = last_seq(&prim);
	snprintf(dir, sizeof(dir), "%s/primary/data.mdb", base);
	if (stat(dir, &st) != 0)
		bench_die("no %s", dir);
	t0 = bench_now();
	replica_start(a, base, &prim, 0, &rep);
	while (last_seq(&rep) < last)
		usleep(2000);
	t0 = bench_now() - t0;
	printf("points=%zu dim=%u tls=%s ingest=%.0f points/s data_file=%.1f "
	    "MiB\n", a->batches * a->batch, a->dim,
	    a->tls != NULL ? "yes" : "no", (double) (a->batches * a->batch) / secs,
	    (double) st.st_size / (1 << 20));
	printf("bootstrap: replica start to caught up %.2f s (%.1f MiB/s of "
	       "data file)\n", t0, (double) st.st_size / (1 << 20) / t0);
	proc_stop(&rep);
	proc_stop(&prim);
	free(acked);
	return 0;
}

/* Start a replica of prim in base/replica<i>, named r<i>. */
static void
replica_start(const struct rargs *a, const char *base,
    const struct proc *prim, size_t i, struct proc *rep)
{
	char dir[4200], url[64], id[32];

	snprintf(dir, sizeof(dir), "%s/replica%zu", base, i);
	snprintf(url, sizeof(url), "%s://127.0.0.1:%u", a->tls != NULL ?
	    "tls+tcp" : "tcp", prim->rpc);
	snprintf(id, sizeof(id), "r%zu", i);
	const char *args[] = { "--mode", "replica", "--primary", url,
		"--node-id", id, NULL };
	proc_start(a, dir, args, rep);
}

/* Ingest while the poller watches the first replica; lags in lag[]. */
static void
measure(const struct rargs *a, struct proc *prim, struct proc *rep)
{
	struct poll_state ps;
	double *acked, *lag, secs;
	pthread_t th;

	memset(&ps, 0, sizeof(ps));
	ps.sock = rep->sock;
	ps.max_seq = a->batches + 1;
	acked = calloc(a->batches, sizeof(*acked));
	lag = calloc(a->batches, sizeof(*lag));
	ps.applied_at = calloc(ps.max_seq + 1, sizeof(double));
	if (acked == NULL || lag == NULL || ps.applied_at == NULL)
		bench_die("out of memory");
	pthread_create(&th, NULL, poller, &ps);
	secs = ingest(a, prim, acked);
	pthread_join(th, NULL);
	for (size_t k = 0; k < a->batches; k++) {
		double d = ps.applied_at[k + 2] - acked[k];
		lag[k] = d > 0 ? d : 0;
	}
	report(a, lag, a->batches, secs, ps.polls);
	free(acked);
	free(lag);
	free(ps.applied_at);
}

int
bench_repl(int argc, char **argv)
{
	struct rargs a = { .batches = 2000, .batch = 500, .replicas = 1,
		.dim = 16 };
	struct proc prim, rep[REPLICAS_MAX];
	char *base, dir[4200];

	rparse(argc, argv, &a);
	setenv("VECDB_LOG", "warn", 0);
	base = a.dir ? strdup(a.dir) : bench_tmpdir();
	if (a.bootstrap) {
		bench_bootstrap(&a, base);
	} else {
		snprintf(dir, sizeof(dir), "%s/primary", base);
		proc_start(&a, dir, NULL, &prim);
		for (size_t i = 0; i < a.replicas; i++)
			replica_start(&a, base, &prim, i, &rep[i]);
		create(&a, &prim);
		measure(&a, &prim, &rep[0]);
		for (size_t i = 0; i < a.replicas; i++)
			proc_stop(&rep[i]);
		proc_stop(&prim);
	}
	if (a.dir == NULL)
		bench_rmrf(base);
	free(base);
	return 0;
}
