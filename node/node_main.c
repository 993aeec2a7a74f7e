/*
 * node_main.c: the `vecdb-node` command: settings, the database, the
 * binary API server (api_rpc.h) with the node's replication role plugged
 * in (node_rpc.c), a small admin HTTP server (/health, /ready, /metrics)
 * on api_httpd.h, and a clean stop on SIGTERM / SIGINT.
 *
 * Settings come from, lowest to highest: defaults, the environment
 * (VECDB_*), and flags, as `vecdb serve` does.
 */
#include <arpa/inet.h>
#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "api_httpd.h"
#include "coord.h"
#include "node.h"
#include "repl.h"
#include "storage_repl.h"
#include "vdb.h"

struct settings {
	const char *data_dir;
	const char *rpc_url;
	uint64_t admin_port;
	const char *admin_host;      /* the admin HTTP's address */
	const char *mode;            /* primary|replica */
	const char *node_id;
	uint64_t workers;
	const char *api_key;
	const char *primary_url;     /* replica: the primary to follow */
	uint64_t wal_retain;         /* 0: the engine's (VECDB_WAL_RETAIN) */
	uint64_t index_threads;      /* the engine's index_threads */
	int index_threads_set;       /* given by env or flag */
	uint64_t wal_max_bytes;      /* WAL kept for replicas behind */
	uint64_t min_replicas;       /* every write waits for this many */
	uint64_t wc_timeout_ms;      /* ... at most this long */
	struct proto_tls_files tls;  /* mutual TLS of rpc and replication */
	int mode_set;                /* --mode given: no election */
	int elect;                   /* --etcd without --mode: elected */
	const char *etcd;            /* endpoints: register there; NULL: no */
	const char *cluster;         /* the key prefix's cluster name */
	uint64_t shard;              /* with etcd: the shard this node holds */
	int shard_set;
	const char *advertise;       /* the rpc url peers dial, or NULL */
	char rpc_adv[PROTO_URL_MAX + 1]; /* advertise, or --rpc's bound */
	char admin_adv[128];
	nng_tls_config *tls_client;  /* loaded from tls: to the primary */
};

/* What the admin handlers read; set before the admin HTTP starts. */
struct admin {
	const struct settings *s;
	const struct api_backend *b;
	api_rpc *rpc;
	vecdb *db;
	node_role *role;             /* primary or replica, changes */
	coord *coord;                /* with --etcd */
	coord_member *member;        /* our key there */
	node_elect *elect;           /* --etcd without --mode */
	_Atomic int64_t elect_rev;   /* its last look at no leader */
	_Atomic int ready;           /* db open and rpc listening */
};

static const struct option long_opts[] = {
	{ "data", required_argument, NULL, 'd' },
	{ "rpc", required_argument, NULL, 'r' },
	{ "admin-port", required_argument, NULL, 'a' },
	{ "admin-host", required_argument, NULL, 'A' },
	{ "mode", required_argument, NULL, 'm' },
	{ "node-id", required_argument, NULL, 'i' },
	{ "workers", required_argument, NULL, 'w' },
	{ "api-key", required_argument, NULL, 'k' },
	{ "primary", required_argument, NULL, 'p' },
	{ "wal-retain", required_argument, NULL, 'W' },
	{ "index-threads", required_argument, NULL, 'I' },
	{ "wal-retention-bytes", required_argument, NULL, 'B' },
	{ "wal-retention", required_argument, NULL, 'Z' },
	{ "min-replicas", required_argument, NULL, 'R' },
	{ "write-concern-timeout-ms", required_argument, NULL, 'T' },
	{ "etcd", required_argument, NULL, 'E' },
	{ "cluster-name", required_argument, NULL, 'N' },
	{ "shard", required_argument, NULL, 'S' },
	{ "advertise", required_argument, NULL, 'V' },
	{ "tls-ca", required_argument, NULL, 'c' },
	{ "tls-cert", required_argument, NULL, 'C' },
	{ "tls-key", required_argument, NULL, 'K' },
	{ "help", no_argument, NULL, 'h' },
	{ NULL, 0, NULL, 0 },
};

/* Environment names of the settings: every flag has one. */
static const struct api_setting_name envs[] = {
	{ 'd', NULL, "VECDB_DATA_DIR" }, { 'r', NULL, "VECDB_RPC_URL" },
	{ 'a', NULL, "VECDB_ADMIN_PORT" }, { 'A', NULL, "VECDB_ADMIN_HOST" },
	{ 'm', NULL, "VECDB_MODE" }, { 'i', NULL, "VECDB_NODE_ID" },
	{ 'w', NULL, "VECDB_WORKERS" }, { 'k', NULL, "VECDB_API_KEY" },
	{ 'p', NULL, "VECDB_PRIMARY_URL" },
	{ 'B', NULL, "VECDB_WAL_RETENTION_BYTES" },
	{ 'Z', NULL, "VECDB_WAL_RETENTION" },
	{ 'R', NULL, "VECDB_MIN_REPLICAS" },
	{ 'T', NULL, "VECDB_WRITE_CONCERN_TIMEOUT_MS" },
	{ 'I', NULL, "VECDB_INDEX_THREADS" },
	{ 'E', NULL, "VECDB_ETCD" }, { 'N', NULL, "VECDB_CLUSTER_NAME" },
	{ 'S', NULL, "VECDB_SHARD" }, { 'V', NULL, "VECDB_ADVERTISE_URL" },
	{ 'c', NULL, "VECDB_TLS_CA" }, { 'C', NULL, "VECDB_TLS_CERT" },
	{ 'K', NULL, "VECDB_TLS_KEY" },
};
#define NENVS (sizeof(envs) / sizeof(envs[0]))

/* Print usage. */
static void
usage(FILE *f)
{
	fprintf(f,
	    "usage: vecdb-node [--data DIR] [--rpc URL] [--admin-port N]\n"
	    "                  [--admin-host ADDR]\n"
	    "                  [--mode primary|replica] [--node-id ID]\n"
	    "                  [--workers N] [--api-key KEY]\n"
	    "                  [--primary URL] [--wal-retain N]\n"
	    "                  [--wal-retention SIZE (or -bytes N)]\n"
	    "                  [--min-replicas N]\n"
	    "                  [--write-concern-timeout-ms MS]\n"
	    "                  [--index-threads N (0: one a core)]\n"
	    "                  [--tls-ca PEM --tls-cert PEM --tls-key PEM]\n"
	    "                  [--etcd URL[,URL...] --shard N\n"
	    "                   [--cluster-name NAME] [--advertise URL]]\n"
	    "Environment: VECDB_DATA_DIR, VECDB_RPC_URL, VECDB_ADMIN_PORT,\n"
	    "VECDB_ADMIN_HOST, VECDB_MODE, VECDB_NODE_ID, VECDB_WORKERS,\n"
	    "VECDB_API_KEY, VECDB_PRIMARY_URL,\n"
	    "VECDB_WAL_RETENTION(_BYTES), VECDB_MIN_REPLICAS,\n"
	    "VECDB_WRITE_CONCERN_TIMEOUT_MS, VECDB_INDEX_THREADS, VECDB_LOG,\n"
	    "VECDB_DURABILITY, VECDB_TLS_CA, VECDB_TLS_CERT, VECDB_TLS_KEY,\n"
	    "VECDB_ETCD, VECDB_SHARD, VECDB_CLUSTER_NAME, VECDB_ADVERTISE_URL,\n"
	    "VECDB_MAP_SIZE, VECDB_HNSW_M, VECDB_HNSW_EF, VECDB_WAL_RETAIN.\n");
}

/* A decimal number up to max. */
static int
parse_num(const char *what, const char *s, uint64_t max, uint64_t *out)
{
	return api_parse_u64("vecdb-node", what, s, 0, max, 0, out);
}

/*
 * The admin HTTP's address: an IPv4 one. 0.0.0.0 lets a pod's kubelet
 * and Prometheus reach /ready and /metrics.
 */
static int
admin_host_set(struct settings *s, const char *v)
{
	struct in_addr a;

	if (inet_pton(AF_INET, v, &a) != 1) {
		fprintf(stderr, "vecdb-node: admin-host '%s' is not an IPv4 "
		    "address (such as 127.0.0.1 or 0.0.0.0)\n", v);
		return -1;
	}
	s->admin_host = v;
	return 0;
}

/* Apply one setting from a string (environment or flag). */
static int
setting_set(struct settings *s, int opt, const char *v)
{
	switch (opt) {
	case 'd': s->data_dir = v; return 0;
	case 'r': s->rpc_url = v; return 0;
	case 'a': return parse_num("admin-port", v, 65535, &s->admin_port);
	case 'A': return admin_host_set(s, v);
	case 'i': s->node_id = v; return 0;
	case 'w': return parse_num("workers", v, API_RPC_WORKERS_MAX, &s->workers);
	case 'k': s->api_key = *v ? v : NULL; return 0;
	case 'p': s->primary_url = *v ? v : NULL; return 0;
	case 'E': s->etcd = *v ? v : NULL; return 0;
	case 'N': s->cluster = v; return 0;
	case 'S':
		s->shard_set = 1;
		return parse_num("shard", v, 1023, &s->shard);
	case 'V': s->advertise = *v ? v : NULL; return 0;
	case 'c': s->tls.ca = *v ? v : NULL; return 0;
	case 'C': s->tls.cert = *v ? v : NULL; return 0;
	case 'K': s->tls.key = *v ? v : NULL; return 0;
	case 'B':
		return parse_num("wal-retention-bytes", v, UINT64_MAX,
		    &s->wal_max_bytes);
	case 'Z':
		return api_parse_u64("vecdb-node", "wal-retention", v, 0,
		    UINT64_MAX, 1, &s->wal_max_bytes);
	case 'R':
		return parse_num("min-replicas", v, NODE_MIN_REPLICAS_MAX,
		    &s->min_replicas);
	case 'T':
		if (parse_num("write-concern-timeout-ms", v,
			NODE_WC_TIMEOUT_MAX_MS, &s->wc_timeout_ms) != 0)
			return -1;
		if (s->wc_timeout_ms == 0) {
			fprintf(stderr, "vecdb-node: write-concern-timeout-ms must "
			    "be at least 1\n");
			return -1;
		}
		return 0;
	case 'I':
		s->index_threads_set = 1;
		return parse_num("index-threads", v, VECDB_INDEX_THREADS_MAX,
		    &s->index_threads);
	case 'W':
		if (parse_num("wal-retain", v, UINT64_MAX, &s->wal_retain) != 0)
			return -1;
		if (s->wal_retain == 0) {
			fprintf(stderr, "vecdb-node: wal-retain must be at "
			    "least 1\n");
			return -1;
		}
		return 0;
	case 'm':
		if (strcmp(v, "primary") != 0 && strcmp(v, "replica") != 0) {
			fprintf(stderr, "vecdb-node: mode '%s' is not primary or "
			    "replica\n", v);
			return -1;
		}
		s->mode = v;
		s->mode_set = 1;
		return 0;
	default: return -1;
	}
}

/* setting_set for api_settings_from_env. */
static int
setting_set_env(void *s, int opt, const char *v)
{
	return setting_set(s, opt, v);
}

/* Defaults, environment, then flags. */
static int
settings_load(struct settings *s, int argc, char **argv)
{
	int opt, tls;

	memset(s, 0, sizeof(*s));
	s->data_dir = "./data";
	s->rpc_url = "tcp://127.0.0.1:7000";
	s->admin_port = 9100;
	s->admin_host = "127.0.0.1";    /* the pod manifests say 0.0.0.0 */
	s->mode = "primary";
	s->node_id = "node";
	s->workers = API_RPC_WORKERS_DEFAULT;
	s->wal_max_bytes = REPL_WAL_MAX_BYTES_DEFAULT;
	s->wc_timeout_ms = NODE_WC_TIMEOUT_DEFAULT_MS;
	s->cluster = COORD_CLUSTER_DEFAULT;
	if (api_settings_from_env("vecdb-node", envs, NENVS, setting_set_env,
		s) != 0)
		return -1;
	while ((opt = getopt_long(argc, argv, "", long_opts, NULL)) != -1) {
		if (opt == 'h' || opt == '?') {
			usage(opt == 'h' ? stdout : stderr);
			return opt == 'h' ? 1 : -1;
		}
		if (setting_set(s, opt, optarg) != 0)
			return -1;
	}
	if (optind < argc) {
		fprintf(stderr, "vecdb-node: unexpected argument '%s'\n",
		    argv[optind]);
		return -1;
	}
	if ((tls = proto_tls_files_given(&s->tls)) < 0 ||
	    proto_tls_url_check(s->rpc_url, tls, "--rpc") != VECDB_OK ||
	    (s->primary_url != NULL && proto_tls_url_check(s->primary_url,
	    tls, "--primary") != VECDB_OK) ||
	    (tls && proto_tls_config(&s->tls, 0, &s->tls_client) !=
	    VECDB_OK)) {
		fprintf(stderr, "vecdb-node: %s\n", vecdb_errmsg());
		return -1;
	}
	if (s->etcd != NULL && !s->shard_set) {
		fprintf(stderr, "vecdb-node: --etcd needs --shard N (or "
		    "VECDB_SHARD): the shard this node holds\n");
		return -1;
	}
	if (s->etcd != NULL && s->advertise == NULL &&
	    strstr(s->rpc_url, "://0.0.0.0:") != NULL) {
		fprintf(stderr, "vecdb-node: --etcd with --rpc %s needs "
		    "--advertise URL (or VECDB_ADVERTISE_URL): the url peers "
		    "dial\n", s->rpc_url);
		return -1;
	}
	if (s->advertise != NULL && proto_tls_url_check(s->advertise, tls,
	    "--advertise") != VECDB_OK) {
		fprintf(stderr, "vecdb-node: %s\n", vecdb_errmsg());
		return -1;
	}
	s->elect = s->etcd != NULL && !s->mode_set;
	if (s->elect && s->primary_url != NULL) {
		fprintf(stderr, "vecdb-node: --primary goes with --mode "
		    "replica; with --etcd and no --mode the role is elected\n");
		return -1;
	}
	if (strcmp(s->mode, "replica") == 0 && s->primary_url == NULL) {
		fprintf(stderr, "vecdb-node: --mode replica needs --primary URL "
		    "(or VECDB_PRIMARY_URL)\n");
		return -1;
	}
	return 0;
}

/* ===== Admin HTTP ===== */

/* Send a complete response. */
static void
send_text(struct httpd_req *c, int status, const char *type,
    const char *body, size_t len)
{
	httpd_respond(c, (unsigned) status, type, body, len);
}

/* Collection and vector counts, and the engine's figures. */
static void
metrics_db(FILE *f, const struct api_backend *b)
{
	vecdb_collection_config cfg;
	vecdb_collection_stats cs;
	char **names = NULL;
	vecdb_stats st;
	size_t n = 0;

	if (b->collection_list(b->ctx, &names, &n) != VECDB_OK)
		n = 0;
	/* _total names on current counts: typed counter, as api_metrics.c
	 * does, so promtool accepts them and the names match `vecdb serve`. */
	fprintf(f, "# HELP vecdb_collections_total Collections now (can "
		   "decrease).\n# TYPE vecdb_collections_total counter\n"
		   "vecdb_collections_total %zu\n", n);
	fprintf(f, "# HELP vecdb_vectors_total Points now, per collection "
		   "(can decrease).\n# TYPE vecdb_vectors_total counter\n");
	for (size_t i = 0; i < n; i++)
		if (b->collection_get(b->ctx, names[i], &cfg, &cs) == VECDB_OK)
			fprintf(f, "vecdb_vectors_total{collection=\"%s\"} %llu\n",
			    names[i], (unsigned long long) cs.vector_count);
	vecdb_names_free(names, n);
	if (b->stats(b->ctx, &st) != VECDB_OK)
		memset(&st, 0, sizeof(st));
	fprintf(f, "# HELP vecdb_disk_usage_bytes Bytes used in the data "
		   "file.\n# TYPE vecdb_disk_usage_bytes gauge\n"
		   "vecdb_disk_usage_bytes %llu\n",
	    (unsigned long long) st.disk_bytes);
	fprintf(f, "# HELP vecdb_wal_last_seq Sequence number of the last WAL "
		   "record.\n# TYPE vecdb_wal_last_seq gauge\n"
		   "vecdb_wal_last_seq %llu\n",
	    (unsigned long long) st.last_seq);
}

/* Resident memory, as the Prometheus clients name it. */
static void
metrics_process(FILE *f)
{
	long pages = 0, rss = 0;
	FILE *sm = fopen("/proc/self/statm", "r");

	if (sm != NULL) {
		if (fscanf(sm, "%ld %ld", &pages, &rss) != 2)
			rss = 0;
		fclose(sm);
	}
	fprintf(f, "# HELP process_resident_memory_bytes Resident memory.\n"
		   "# TYPE process_resident_memory_bytes gauge\n"
		   "process_resident_memory_bytes %ld\n",
	    rss * sysconf(_SC_PAGESIZE));
}

/* GET /metrics. */
static void
admin_metrics(struct httpd_req *c, struct admin *a)
{
	char *out = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&out, &len);

	if (f == NULL) {
		send_text(c, 500, "text/plain", "out of memory\n", 14);
		return;
	}
	api_rpc_metrics_write(a->rpc, f);
	node_role_metrics_write(a->role, f);
	node_elect_metrics_write(a->elect, f);
	metrics_db(f, a->b);
	metrics_process(f);
	fclose(f);
	send_text(c, 200, "text/plain; version=0.0.4", out, len);
	free(out);
}

/* GET /ready: a primary must not be fenced; a replica must have caught
 * up with its primary. */
static void
admin_ready(struct httpd_req *c, struct admin *a)
{
	struct repl_follower_status fs;
	struct node_role_status st;
	char body[256];
	int n;

	if (!atomic_load(&a->ready)) {
		send_text(c, 503, "application/json",
		    "{\"status\":\"starting\"}", 21);
		return;
	}
	if (node_role_ready(a->role)) {
		send_text(c, 200, "application/json", "{\"status\":\"ready\"}",
		    18);
		return;
	}
	node_role_status_get(a->role, &st);
	if (st.primary) {
		n = snprintf(body, sizeof(body), "{\"status\":\"fenced\","
		    "\"term\":%llu}", (unsigned long long) st.term);
		send_text(c, 503, "application/json", body, (size_t) n);
		return;
	}
	if (!node_role_follower_status(a->role, &fs))
		memset(&fs, 0, sizeof(fs));
	n = snprintf(body, sizeof(body), "{\"status\":\"catching_up\","
	    "\"applied_seq\":%llu,\"primary_seq\":%llu,\"bootstrapping\":%s}",
	    (unsigned long long) fs.applied_seq,
	    (unsigned long long) fs.primary_seq,
	    fs.bootstrapping ? "true" : "false");
	send_text(c, 503, "application/json", body, (size_t) n);
}

/* GET /health: who this node is now, and its term. */
static void
admin_health(struct httpd_req *c, struct admin *a)
{
	struct node_role_status st;
	char body[PROTO_URL_MAX + 512];
	int n;

	node_role_status_get(a->role, &st);
	n = snprintf(body, sizeof(body), "{\"status\":\"ok\",\"node_id\":"
	    "\"%s\",\"mode\":\"%s\",\"role\":\"%s\",\"term\":%llu,"
	    "\"primary\":\"%s\",\"dropped_records\":%llu,\"version\":\"%s\"}",
	    a->s->node_id, st.primary ? "primary" : "replica",
	    !st.primary ? "replica" : st.fenced ? "fenced" : "primary",
	    (unsigned long long) st.term, st.primary_url,
	    (unsigned long long) st.dropped, VECDB_VERSION);
	send_text(c, 200, "application/json", body, (size_t) n);
}

/*
 * GET /digest: every collection's point count and content SHA-256, and
 * the last seq, from one read transaction: equal on a primary and a
 * replica that has applied the same seq.
 */
static void
admin_digest(struct httpd_req *c, struct admin *a)
{
	struct storage_digest *d = NULL;
	char *out = NULL;
	size_t n = 0, len = 0;
	uint64_t last = 0;
	FILE *f;

	if (storage_digest_all(a->db, &d, &n, &last) != VECDB_OK ||
	    (f = open_memstream(&out, &len)) == NULL) {
		vdb_free(d);
		send_text(c, 500, "text/plain", "digest failed\n", 14);
		return;
	}
	fprintf(f, "{\"last_seq\":%llu,\"collections\":[",
	    (unsigned long long) last);
	for (size_t i = 0; i < n; i++) {
		fprintf(f, "%s{\"name\":\"%s\",\"count\":%llu,\"sha256\":\"",
		    i ? "," : "", d[i].name, (unsigned long long) d[i].count);
		for (int j = 0; j < 32; j++)
			fprintf(f, "%02x", d[i].sha256[j]);
		fprintf(f, "\"}");
	}
	fprintf(f, "]}");
	fclose(f);
	vdb_free(d);
	send_text(c, 200, "application/json", out, len);
	free(out);
}

/* The admin endpoints take no body: a small one is read and ignored. */
static enum httpd_body
admin_begin(void *user, struct httpd_req *c)
{
	(void) user;
	(void) c;
	return HTTPD_BODY_MEMORY;
}

/* The admin endpoints (a worker of the admin server). */
static void
admin_request(void *user, struct httpd_req *c)
{
	struct admin *a = user;
	const char *path = httpd_path(c);

	if (strcmp(httpd_method(c), "GET") != 0) {
		send_text(c, 405, "text/plain", "method not allowed\n", 19);
	} else if (strcmp(path, "/health") == 0) {
		admin_health(c, a);
	} else if (strcmp(path, "/ready") == 0) {
		admin_ready(c, a);
	} else if (strcmp(path, "/digest") == 0) {
		admin_digest(c, a);
	} else if (strcmp(path, "/metrics") == 0) {
		admin_metrics(c, a);
	} else {
		send_text(c, 404, "text/plain", "not found\n", 10);
	}
}

/* Serve the admin HTTP on host:port; *port gets the bound one. Probes
 * and scrapes are small: two workers, small bodies. */
static struct httpd *
admin_start(struct admin *a, const char *host, uint64_t *port)
{
	struct httpd_config hc;
	struct httpd *h;

	memset(&hc, 0, sizeof(hc));
	hc.name = "ADMIN";
	hc.host = host;
	hc.port = (uint16_t) *port;
	hc.threads = 2;
	hc.max_body = 4096;
	hc.body_timeout_ms = 10000;
	hc.begin = admin_begin;
	hc.serve = admin_request;
	hc.user = a;
	if (httpd_start(&hc, &h) != VECDB_OK) {
		fprintf(stderr, "vecdb-node: cannot serve admin HTTP on %s:%u: "
		    "%s\n", host, (unsigned) *port, vecdb_errmsg());
		return NULL;
	}
	*port = httpd_port(h);
	return h;
}

/* ===== Main ===== */

/* Block the stop signals in every thread; main waits for them. */
static void
signals_block(sigset_t *set)
{
	sigemptyset(set);
	sigaddset(set, SIGINT);
	sigaddset(set, SIGTERM);
	pthread_sigmask(SIG_BLOCK, set, NULL);
	signal(SIGPIPE, SIG_IGN);
}

/* Open the database with the engine's options from the environment. */
static int
db_open(const struct settings *s, vecdb **db)
{
	vecdb_options o;
	int rv;

	vecdb_options_init(&o);
	if ((rv = vecdb_options_from_env(&o)) == VECDB_OK) {
		if (s->wal_retain != 0)
			o.wal_retain = s->wal_retain;
		if (s->index_threads_set)
			o.index_threads = (uint32_t) s->index_threads;
		rv = vecdb_open(s->data_dir, &o, db);
	}
	if (rv != VECDB_OK)
		fprintf(stderr, "vecdb-node: cannot open %s: %s\n", s->data_dir,
		    vecdb_errmsg()[0] ? vecdb_errmsg() : vecdb_strerror(rv));
	return rv;
}

/* Start the replication role: a replica's follower, a primary's service. */
static int
repl_start(struct settings *s, struct admin *a)
{
	struct node_role_config rc = { a->db, s->data_dir, s->node_id,
		s->api_key, s->wal_max_bytes,
		strcmp(s->mode, "replica") == 0 ? s->primary_url : NULL,
		(uint32_t) s->min_replicas, (uint32_t) s->wc_timeout_ms,
		s->tls_client };
	int rv;

	if ((rv = node_role_start(&rc, &a->role)) != VECDB_OK) {
		fprintf(stderr, "vecdb-node: replication: %s\n", vecdb_errmsg());
		return rv;
	}
	if (s->elect) {
		/* no write until etcd says we lead (node_elect.c) */
		struct node_role_status st;
		node_role_status_get(a->role, &st);
		node_role_fence(a->role, st.term + 1);
	}
	return VECDB_OK;
}

/* Stop replication before the RPC server frees its workers; drain the
 * server first, so the parked polls this wakes are dropped, not answered
 * (api_rpc_stop says why). */
static void
repl_stop(struct admin *a)
{
	/* no new long-polls first: see api_rpc_drain */
	api_rpc_drain(a->rpc);
	node_role_stop(a->role);
}

/* What this node says of itself in etcd (coord_member_fn). */
static void
member_info(void *arg, struct coord_member_info *out)
{
	struct admin *a = arg;
	const struct settings *s = a->s;
	struct node_role_status st;

	node_role_status_get(a->role, &st);
	out->shard = (uint32_t) s->shard;
	out->node_id = s->node_id;
	out->role = st.primary && !st.fenced ? "primary" : "replica";
	out->rpc = s->rpc_adv;
	out->admin = s->admin_adv;
	out->last_seq = node_role_last_seq(a->role);
	out->term = st.term;
	out->elect_rev = atomic_load(&a->elect_rev);
}

/* Register in etcd (--etcd): the urls peers use, then our key. */
static int
register_start(struct settings *s, struct admin *a)
{
	const char *host = strcmp(s->admin_host, "0.0.0.0") == 0 ?
	    "127.0.0.1" : s->admin_host;
	struct coord_tls ct = { s->tls.ca, s->tls.cert, s->tls.key };

	if (s->advertise != NULL)
		snprintf(s->rpc_adv, sizeof(s->rpc_adv), "%s", s->advertise);
	else {
		/* --rpc with the port it bound (0 picks one) */
		const char *colon = strrchr(s->rpc_url, ':');
		snprintf(s->rpc_adv, sizeof(s->rpc_adv), "%.*s:%u",
		    (int) (colon - s->rpc_url), s->rpc_url,
		    api_rpc_port(a->rpc));
	}
	snprintf(s->admin_adv, sizeof(s->admin_adv), "http://%s:%u", host,
	    (unsigned) s->admin_port);
	if (coord_open(s->etcd, s->cluster, &ct, &a->coord) != VECDB_OK ||
	    coord_member_start(a->coord, member_info, a, &a->member) !=
	    VECDB_OK) {
		fprintf(stderr, "vecdb-node: --etcd %s: %s\n", s->etcd,
		    vecdb_errmsg());
		coord_close(a->coord);
		a->coord = NULL;
		return VECDB_EUNAVAILABLE;
	}
	VDB_LOG_INFO("NODE", "registered in etcd as %smembers/%u/%s",
	    coord_prefix(a->coord), (unsigned) s->shard, s->node_id);
	if (s->elect) {
		struct node_elect_config ec = { a->coord, a->member, a->role,
			(uint32_t) s->shard, s->node_id, s->rpc_adv,
			&a->elect_rev };
		if (node_elect_start(&ec, &a->elect) != VECDB_OK) {
			fprintf(stderr, "vecdb-node: %s\n", vecdb_errmsg());
			coord_member_stop(a->member);
			coord_close(a->coord);
			a->member = NULL;
			a->coord = NULL;
			return VECDB_ENOMEM;
		}
	}
	return VECDB_OK;
}

/* Serve RPC and admin HTTP until SIGINT / SIGTERM. */
static int
serve(struct settings *s, struct admin *a, sigset_t *set)
{
	int replica = strcmp(s->mode, "replica") == 0;
	struct api_rpc_config rc = { s->rpc_url, s->api_key, s->node_id,
		replica, (unsigned) s->workers,
		proto_tls_files_given(&s->tls) ? &s->tls : NULL };
	struct api_rpc_ext ext;
	struct httpd *mg;
	int sig = 0;

	if (repl_start(s, a) != VECDB_OK)
		return 1;
	node_rpc_ext(a->role, &ext);
	if (api_rpc_start(&rc, a->b, &ext, &a->rpc) != VECDB_OK) {
		fprintf(stderr, "vecdb-node: %s\n", vecdb_errmsg());
		repl_stop(a);
		return 1;
	}
	if ((mg = admin_start(a, s->admin_host, &s->admin_port)) == NULL) {
		repl_stop(a);
		api_rpc_stop(a->rpc);
		return 1;
	}
	atomic_store(&a->ready, 1);
	if (s->etcd != NULL && register_start(s, a) != VECDB_OK) {
		httpd_stop(mg);
		repl_stop(a);
		api_rpc_stop(a->rpc);
		return 1;
	}
	printf("vecdb-node %s: rpc %s://127.0.0.1:%u admin "
	       "http://%s:%u (data %s)\n", VECDB_VERSION,
	    s->tls_client != NULL ? "tls+tcp" : "tcp", api_rpc_port(a->rpc),
	    s->admin_host, (unsigned) s->admin_port, s->data_dir);
	fflush(stdout);
	sigwait(set, &sig);
	VDB_LOG_INFO("NODE", "signal %d: finishing requests in flight", sig);
	/* out of the topology first: routers stop sending to us */
	node_elect_stop(a->elect);
	coord_member_stop(a->member);
	coord_close(a->coord);
	atomic_store(&a->ready, 0);
	httpd_stop(mg);
	repl_stop(a);
	api_rpc_stop(a->rpc);
	return 0;
}

int
main(int argc, char **argv)
{
	struct settings s;
	struct api_backend b;
	struct admin a;
	sigset_t set;
	vecdb *db = NULL;
	int rv;

	if ((rv = settings_load(&s, argc, argv)) != 0)
		return rv > 0 ? 0 : 2;
	signals_block(&set);
	if (db_open(&s, &db) != VECDB_OK)
		return 1;
	api_backend_local_init(&b, db);
	memset(&a, 0, sizeof(a));
	a.s = &s;
	a.b = &b;
	a.db = db;
	rv = serve(&s, &a, &set);
	vecdb_close(db);
	node_role_free(a.role); /* the writer ran its hook until now */
	if (s.tls_client != NULL)
		nng_tls_config_free(s.tls_client);
	if (rv == 0)
		VDB_LOG_INFO("NODE", "stopped cleanly");
	return rv;
}
