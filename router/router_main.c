/*
 * router_main.c: `vecdb-router`: the REST API of `vecdb serve` over a
 * cluster of vecdb-node shards (docs/ROUTER.md). SIGHUP re-reads the
 * topology file; SIGINT / SIGTERM stop.
 */
#include <pthread.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "api_rpc.h"
#include "coord.h"
#include "router.h"
#include "vdb.h"

struct settings {
	const char *topology;     /* --topology FILE */
	const char *host;
	uint64_t port;
	uint64_t qdrant_port;     /* Qdrant's REST API; 0: off */
	int qdrant_port_set;
	uint64_t timeout_ms;
	const char *api_key;      /* REST clients */
	const char *read_only_key;/* may read, not write */
	const char *tls_cert;     /* PEM; with tls_key: HTTPS, and with
				     tls_ca too, mutual TLS to the nodes */
	const char *tls_key;
	const char *tls_ca;       /* the CA of the nodes' certificates */
	const char *etcd;         /* endpoints: the topology from there */
	const char *cluster;      /* its key prefix's cluster name */
	int https;                /* with tls_cert: REST over HTTPS */
	uint64_t max_body;   /* bytes; larger bodies get 413 */
	const char *node_api_key; /* sent to nodes */
	uint64_t threads;
	const char *rpc;          /* --rpc URL: the binary API; NULL: none */
	struct api_conn_limits conn;
};

#define ROUTER_ETCD_WAIT_S 60   /* at start, for the members to register */

static const struct option long_opts[] = {
	{ "topology", required_argument, NULL, 'T' },
	{ "host", required_argument, NULL, 'H' },
	{ "port", required_argument, NULL, 'p' },
	{ "qdrant-port", required_argument, NULL, API_OPT_QDRANT_PORT },
	{ "timeout-ms", required_argument, NULL, 't' },
	{ "api-key", required_argument, NULL, 'k' },
	{ "read-only-api-key", required_argument, NULL, 'R' },
	{ "tls-cert", required_argument, NULL, 'C' },
	{ "tls-key", required_argument, NULL, 'K' },
	{ "tls-ca", required_argument, NULL, 'c' },
	{ "https", required_argument, NULL, 'S' },
	{ "etcd", required_argument, NULL, 'E' },
	{ "cluster-name", required_argument, NULL, 'N' },
	{ "max-body", required_argument, NULL, 'm' },
	{ "node-api-key", required_argument, NULL, 'n' },
	{ "threads", required_argument, NULL, 'j' },
	{ "rpc", required_argument, NULL, 'r' },
	API_CONN_LONG_OPTS,
	{ "help", no_argument, NULL, 'h' },
	{ NULL, 0, NULL, 0 },
};

/* Environment names of the settings: every flag has one, as for `vecdb
 * serve` and vecdb-node, so that a pod sets them from a ConfigMap or a
 * Secret. */
static const struct api_setting_name envs[] = {
	{ 'T', NULL, "VECDB_TOPOLOGY" }, { 'H', NULL, "VECDB_HOST" },
	{ 'p', NULL, "VECDB_PORT" }, { 'Q', NULL, "VECDB_QDRANT_PORT" },
	{ 't', NULL, "VECDB_TIMEOUT_MS" },
	{ 'k', NULL, "VECDB_API_KEY" },
	{ 'R', NULL, "VECDB_READ_ONLY_API_KEY" },
	{ 'C', NULL, "VECDB_TLS_CERT" }, { 'K', NULL, "VECDB_TLS_KEY" },
	{ 'c', NULL, "VECDB_TLS_CA" }, { 'S', NULL, "VECDB_HTTPS" },
	{ 'E', NULL, "VECDB_ETCD" }, { 'N', NULL, "VECDB_CLUSTER_NAME" },
	{ 'm', NULL, "VECDB_MAX_BODY" },
	{ 'n', NULL, "VECDB_NODE_API_KEY" },
	{ 'j', NULL, "VECDB_THREADS" }, { 'r', NULL, "VECDB_RPC_URL" },
	API_CONN_SETTING_NAMES,
};
#define NENVS (sizeof(envs) / sizeof(envs[0]))

/* Print usage. */
static void
usage(FILE *f)
{
	fprintf(f,
	    "usage: vecdb-router --topology FILE | --etcd URL[,URL...]\n"
	    "                    [--cluster-name NAME] [--host ADDR] [--port N]\n"
	    "                    [--qdrant-port N (6333; 0: off)]\n"
	    "                    [--timeout-ms MS] [--api-key KEY]\n"
	    "                    [--node-api-key KEY] [--threads N] [--rpc URL]\n"
	    "                    [--read-only-api-key KEY] [--max-body BYTES]\n"
	    "                    [--tls-cert PEM --tls-key PEM [--tls-ca PEM]\n"
	    "                     [--https on|off]]\n"
	    API_CONN_USAGE("                    ")
	    "Environment: VECDB_TOPOLOGY, VECDB_ETCD, VECDB_CLUSTER_NAME,\n"
	    "VECDB_HOST, VECDB_PORT,\n"
	    "VECDB_QDRANT_PORT,\n"
	    "VECDB_TIMEOUT_MS, VECDB_API_KEY, VECDB_NODE_API_KEY, VECDB_THREADS,\n"
	    "VECDB_RPC_URL, VECDB_READ_ONLY_API_KEY, VECDB_MAX_BODY,\n"
	    "VECDB_TLS_CERT, VECDB_TLS_KEY, VECDB_TLS_CA, VECDB_HTTPS,\n"
	    "VECDB_MAX_CONNECTIONS,\n"
	    "VECDB_MAX_CONNECTIONS_PER_IP, VECDB_HEADER_TIMEOUT_MS,\n"
	    "VECDB_BODY_TIMEOUT_MS, VECDB_IDLE_TIMEOUT_MS, VECDB_LOG (flags win).\n");
}

/* A decimal number in [lo, hi]. */
static int
parse_ul(const char *what, const char *s, uint64_t lo, uint64_t hi,
    uint64_t *out)
{
	return api_parse_u64("vecdb-router", what, s, lo, hi, 0, out);
}

/* Apply one flag. */
static int
setting_set(struct settings *s, int opt, const char *v)
{
	switch (opt) {
	case 'T': s->topology = v; return 0;
	case 'H': s->host = v; return 0;
	case 'p': return parse_ul("port", v, 0, 65535, &s->port);
	case 'Q':
		s->qdrant_port_set = 1;
		return parse_ul("qdrant-port", v, 0, 65535, &s->qdrant_port);
	case 't': return parse_ul("timeout-ms", v, ROUTER_TIMEOUT_MS_MIN,
	    ROUTER_TIMEOUT_MS_MAX, &s->timeout_ms);
	case 'k': s->api_key = *v ? v : NULL; return 0;
	case 'R': s->read_only_key = *v ? v : NULL; return 0;
	case 'C': s->tls_cert = v; return 0;
	case 'K': s->tls_key = v; return 0;
	case 'c': s->tls_ca = *v ? v : NULL; return 0;
	case 'E': s->etcd = *v ? v : NULL; return 0;
	case 'N': s->cluster = v; return 0;
	case 'S':
		if (strcmp(v, "on") != 0 && strcmp(v, "off") != 0) {
			fprintf(stderr, "vecdb-router: --https is on or off, not "
			    "'%s'\n", v);
			return -1;
		}
		s->https = strcmp(v, "on") == 0;
		return 0;
	case 'm': return parse_ul("max-body", v, 1, 1UL << 40, &s->max_body);
	case 'n': s->node_api_key = *v ? v : NULL; return 0;
	case 'j': return parse_ul("threads", v, 1, 1024, &s->threads);
	case 'r': s->rpc = *v ? v : NULL; return 0;
	default: return api_conn_setting("vecdb-router", &s->conn, opt, v) ==
	    0 ? 0 : -1;
	}
}

/* setting_set for api_settings_from_env. */
static int
setting_set_env(void *s, int opt, const char *v)
{
	return setting_set(s, opt, v);
}

/* Defaults, environment, then flags into s: 0, 1 (help printed) or -1. */
static int
settings_load(struct settings *s, int argc, char **argv)
{
	int opt;

	memset(s, 0, sizeof(*s));
	s->host = "127.0.0.1";
	s->port = 8080;
	s->https = 1;
	s->cluster = COORD_CLUSTER_DEFAULT;
	s->qdrant_port = API_QDRANT_DEFAULT_PORT;
	s->timeout_ms = ROUTER_TIMEOUT_MS_DEFAULT;
	s->threads = API_DEFAULT_THREADS;
	s->max_body = API_DEFAULT_MAX_BODY;
	if (api_settings_from_env("vecdb-router", envs, NENVS, setting_set_env,
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
		fprintf(stderr, "vecdb-router: unexpected argument '%s'\n",
		    argv[optind]);
		return -1;
	}
	if ((s->topology == NULL) == (s->etcd == NULL)) {
		fprintf(stderr, "vecdb-router: %s: give --topology FILE (or "
		    "VECDB_TOPOLOGY) or --etcd URL (or VECDB_ETCD)\n",
		    s->topology ? "both a topology file and etcd" :
		    "no topology");
		usage(stderr);
		return -1;
	}
	if ((s->tls_cert == NULL) != (s->tls_key == NULL)) {
		fprintf(stderr, "vecdb-router: --tls-cert and --tls-key go "
		    "together (or VECDB_TLS_CERT and VECDB_TLS_KEY)\n");
		return -1;
	}
	if (s->tls_ca != NULL && s->tls_cert == NULL) {
		fprintf(stderr, "vecdb-router: --tls-ca needs --tls-cert and "
		    "--tls-key: the router's own certificate\n");
		return -1;
	}
	if (s->rpc != NULL && proto_tls_url_check(s->rpc, s->tls_ca != NULL,
	    "--rpc") != VECDB_OK) {
		fprintf(stderr, "vecdb-router: %s\n", vecdb_errmsg());
		return -1;
	}
	return 0;
}

/* Wait for signals: SIGHUP reloads, SIGINT / SIGTERM return. */
static void
signals_wait(const sigset_t *set, router *r)
{
	int sig = 0;

	for (;;) {
		sigwait(set, &sig);
		if (sig != SIGHUP)
			break;
		if (router_reload(r) != VECDB_OK)
			VDB_LOG_WARN("ROUT", "topology reload failed, keeping "
			    "the old one: %s", vecdb_errmsg());
		else
			VDB_LOG_INFO("ROUT", "topology reloaded");
	}
	VDB_LOG_INFO("ROUT", "signal %d: finishing requests in flight", sig);
}

/*
 * The binary client API: the binary API server of api_rpc.h (the same
 * envelope and methods as a node's, docs/WIRE.md) over the cluster backend.
 */
static api_rpc *
binary_api_start(const struct settings *s, const struct api_backend *b)
{
	struct proto_tls_files tls = { s->tls_ca, s->tls_cert, s->tls_key };
	struct api_rpc_config rc = { s->rpc, s->api_key, "router", 0,
		API_RPC_WORKERS_DEFAULT, s->tls_ca ? &tls : NULL };
	api_rpc *rpc;

	if (api_rpc_start(&rc, b, NULL, &rpc) != VECDB_OK) {
		fprintf(stderr, "vecdb-router: --rpc %s: %s\n", s->rpc,
		    vecdb_errmsg());
		return NULL;
	}
	return rpc;
}

/* Start the server over the router and wait for a signal of set. */
static int
serve(const struct settings *s, router *r, const sigset_t *set)
{
	struct api_server_config sc = { s->host, (uint16_t) s->port,
		s->api_key, s->read_only_key, s->https ? s->tls_cert : NULL,
		s->https ? s->tls_key : NULL,
		s->max_body, (unsigned) s->threads, NULL, s->conn, 0 };
	struct api_backend b;
	api_server *srv, *qsrv = NULL;
	api_rpc *rpc = NULL;

	api_backend_cluster_init(&b, r);
	if (api_server_start(&sc, &b, &srv) != VECDB_OK) {
		fprintf(stderr, "vecdb-router: %s\n", vecdb_errmsg());
		return 1;
	}
	if (api_qdrant_start("vecdb-router", &sc, (uint16_t) s->qdrant_port,
	    s->qdrant_port_set, &b, &qsrv) != 0 ||
	    (s->rpc != NULL && (rpc = binary_api_start(s, &b)) == NULL)) {
		api_server_stop(qsrv);
		api_server_stop(srv);
		return 1;
	}
	printf("vecdb-router %s: serving %s://%s:%u", VECDB_VERSION,
	    sc.tls_cert ? "https" : "http", s->host, api_server_port(srv));
	if (rpc != NULL)
		printf(" rpc %s://%s:%u", s->tls_ca ? "tls+tcp" : "tcp",
		    s->host, api_rpc_port(rpc));
	if (qsrv != NULL)
		printf(" qdrant %s://%s:%u", sc.tls_cert ? "https" : "http",
		    s->host, api_server_port(qsrv));
	printf("\n");
	fflush(stdout);
	signals_wait(set, r);
	api_rpc_stop(rpc);
	api_server_stop(qsrv);
	api_server_stop(srv);
	return 0;
}

/*
 * router_new; with etcd, a cluster whose members have not all registered
 * yet (a shard with no primary) is waited for, up to ROUTER_ETCD_WAIT_S,
 * saying so: routers and nodes start in any order.
 */
static int
router_start(const struct router_config *rc, const sigset_t *set,
    router **r)
{
	uint64_t end = vdb_now_ms() + ROUTER_ETCD_WAIT_S * 1000ull;
	struct timespec nap = { 0, 200 * 1000 * 1000 };
	int said = 0, rv;

	while ((rv = router_new(rc, r)) == VECDB_EUNAVAILABLE &&
	    rc->coord != NULL && vdb_now_ms() < end) {
		if (!said++)
			VDB_LOG_WARN("ROUT", "waiting up to %d s for the "
			    "cluster in etcd: %s", ROUTER_ETCD_WAIT_S,
			    vecdb_errmsg());
		if (sigtimedwait(set, NULL, &nap) > 0)
			return vdb_err(VECDB_EUNAVAILABLE, "stopped while "
			    "waiting for the cluster in etcd");
	}
	return rv;
}

int
main(int argc, char **argv)
{
	struct proto_tls_files tls;
	struct router_config rc;
	struct settings s;
	struct coord_tls ct;
	coord *c = NULL;
	sigset_t set;
	router *r;
	int rv;

	if ((rv = settings_load(&s, argc, argv)) != 0)
		return rv > 0 ? 0 : 2;
	/* before any thread starts (the router's, nng's): each inherits the
	 * mask, and a signal must reach only sigwait */
	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	signal(SIGPIPE, SIG_IGN);
	ct = (struct coord_tls) { s.tls_ca, s.tls_cert, s.tls_key };
	if (s.etcd != NULL && coord_open(s.etcd, s.cluster, &ct, &c) !=
	    VECDB_OK) {
		fprintf(stderr, "vecdb-router: --etcd: %s\n", vecdb_errmsg());
		return 2;
	}
	rc.topology = s.topology;
	rc.timeout_ms = (uint32_t) s.timeout_ms;
	rc.node_api_key = s.node_api_key;
	tls = (struct proto_tls_files) { s.tls_ca, s.tls_cert, s.tls_key };
	rc.tls = s.tls_ca ? &tls : NULL;
	rc.coord = c;
	if (router_start(&rc, &set, &r) != VECDB_OK) {
		fprintf(stderr, "vecdb-router: %s\n", vecdb_errmsg());
		coord_close(c);
		return 1;
	}
	rv = serve(&s, r, &set);
	router_free(r);
	coord_close(c);
	if (router_status_running() > 0) {
		/* a status worker is still in a dial it cannot leave: end
		 * now rather than tear the process down under it */
		fflush(stdout);
		fflush(stderr);
		_exit(rv);
	}
	return rv;
}
