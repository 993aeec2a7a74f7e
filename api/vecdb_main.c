/*
 * vecdb_main.c: the `vecdb` command. `vecdb serve` runs the engine and the
 * REST API in one process: the embedded default a new user starts.
 *
 * Settings come from, lowest to highest: defaults, the YAML file given by
 * --config (or VECDB_CONFIG), the environment (VECDB_*), and flags.
 */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "api_impl.h"
#include "api_yaml.h"

struct settings {
	const char *config;          /* YAML file */
	const char *data_dir;
	const char *host;
	uint64_t port;
	uint64_t qdrant_port;        /* Qdrant's REST API; 0: off */
	int qdrant_port_set;         /* given by file, env or flag */
	const char *api_key;
	const char *read_only_key;
	const char *tls_cert;
	const char *tls_key;
	uint64_t max_body;
	uint64_t threads;
	const char *durability;      /* sync|buffered, passed to the engine */
	uint64_t index_threads;      /* the engine's index_threads */
	int index_threads_set;       /* given by file, env or flag */
	struct api_conn_limits conn;
	json_t *file;                /* the parsed config file (owned) */
	char nums[24][24];           /* file integers as strings */
};

static const struct option long_opts[] = {
	{ "config", required_argument, NULL, 'c' },
	{ "data", required_argument, NULL, 'd' },
	{ "host", required_argument, NULL, 'H' },
	{ "port", required_argument, NULL, 'p' },
	{ "qdrant-port", required_argument, NULL, API_OPT_QDRANT_PORT },
	{ "api-key", required_argument, NULL, 'k' },
	{ "read-only-api-key", required_argument, NULL, 'r' },
	{ "tls-cert", required_argument, NULL, 'C' },
	{ "tls-key", required_argument, NULL, 'K' },
	{ "max-body", required_argument, NULL, 'm' },
	{ "threads", required_argument, NULL, 't' },
	{ "durability", required_argument, NULL, 'D' },
	{ "index-threads", required_argument, NULL, 'I' },
	API_CONN_LONG_OPTS,
	{ "help", no_argument, NULL, 'h' },
	{ NULL, 0, NULL, 0 },
};

/* Print usage. */
static void
usage(FILE *f)
{
	fprintf(f,
	    "usage: vecdb serve [--data DIR] [--host ADDR] [--port N]\n"
	    "                   [--qdrant-port N (6333; 0: off)]\n"
	    "                   [--api-key KEY] [--read-only-api-key KEY]\n"
	    "                   [--tls-cert PEM --tls-key PEM] [--max-body BYTES]\n"
	    "                   [--threads N] [--durability sync|buffered]\n"
	    "                   [--index-threads N] [--config FILE]\n"
	    API_CONN_USAGE("                   ")
	    "       vecdb version\n"
	    "Environment: VECDB_DATA_DIR, VECDB_HOST, VECDB_PORT,\n"
	    "VECDB_QDRANT_PORT, VECDB_API_KEY,\n"
	    "VECDB_READ_ONLY_API_KEY, VECDB_TLS_CERT, VECDB_TLS_KEY,\n"
	    "VECDB_MAX_BODY, VECDB_THREADS, VECDB_DURABILITY, VECDB_CONFIG,\n"
	    "VECDB_INDEX_THREADS (0: one a core, the default),\n"
	    "VECDB_MAX_CONNECTIONS, VECDB_MAX_CONNECTIONS_PER_IP,\n"
	    "VECDB_HEADER_TIMEOUT_MS, VECDB_BODY_TIMEOUT_MS, VECDB_IDLE_TIMEOUT_MS,\n"
	    "VECDB_LOG, VECDB_MAP_SIZE, VECDB_HNSW_M, VECDB_HNSW_EF.\n");
}

/* A number with an optional K/M/G suffix. */
static int
parse_num(const char *what, const char *s, uint64_t max, uint64_t *out)
{
	return api_parse_u64("vecdb", what, s, 0, max, 1, out);
}

/* Apply one setting by name from a string (file, env or flag). */
static int
setting_set(struct settings *s, int opt, const char *v)
{
	switch (opt) {
	case 'c': s->config = v; return 0;
	case 'd': s->data_dir = v; return 0;
	case 'H': s->host = v; return 0;
	case 'p': return parse_num("port", v, 65535, &s->port);
	case 'Q':
		s->qdrant_port_set = 1;
		return parse_num("qdrant-port", v, 65535, &s->qdrant_port);
	case 'k': s->api_key = *v ? v : NULL; return 0;
	case 'r': s->read_only_key = *v ? v : NULL; return 0;
	case 'C': s->tls_cert = v; return 0;
	case 'K': s->tls_key = v; return 0;
	case 'm': return parse_num("max-body", v, 1ULL << 40, &s->max_body);
	case 't': return parse_num("threads", v, 1024, &s->threads);
	case 'D': s->durability = v; return 0;
	case 'I':
		s->index_threads_set = 1;
		return parse_num("index-threads", v, VECDB_INDEX_THREADS_MAX,
		    &s->index_threads);
	default: return api_conn_setting("vecdb", &s->conn, opt, v) == 0 ?
	    0 : -1;
	}
}

/* Settings names shared by the YAML file and the environment. */
static const struct api_setting_name names[] = {
	{ 'd', "data_dir", "VECDB_DATA_DIR" }, { 'H', "host", "VECDB_HOST" },
	{ 'p', "port", "VECDB_PORT" },
	{ 'Q', "qdrant_port", "VECDB_QDRANT_PORT" },
	{ 'k', "api_key", "VECDB_API_KEY" },
	{ 'r', "read_only_api_key", "VECDB_READ_ONLY_API_KEY" },
	{ 'C', "tls_cert", "VECDB_TLS_CERT" },
	{ 'K', "tls_key", "VECDB_TLS_KEY" },
	{ 'm', "max_body", "VECDB_MAX_BODY" },
	{ 't', "threads", "VECDB_THREADS" },
	{ 'D', "durability", "VECDB_DURABILITY" },
	{ 'I', "index_threads", "VECDB_INDEX_THREADS" },
	API_CONN_SETTING_NAMES,
};
#define NNAMES (sizeof(names) / sizeof(names[0]))

/* Apply the YAML file's settings. */
static int
settings_from_file(struct settings *s)
{
	if (s->config == NULL)
		return 0;
	if (api_yaml_load(s->config, &s->file) != VECDB_OK) {
		fprintf(stderr, "vecdb: %s\n", vecdb_errmsg());
		return -1;
	}
	for (size_t i = 0; i < NNAMES; i++) {
		json_t *v = json_object_get(s->file, names[i].key);
		const char *str = json_string_value(v);
		if (json_is_integer(v)) {
			snprintf(s->nums[i], sizeof(s->nums[i]), "%lld",
			    (long long) json_integer_value(v));
			str = s->nums[i];
		}
		if (str != NULL && setting_set(s, names[i].opt, str) != 0)
			return -1;
	}
	return 0;
}

/* setting_set for api_settings_from_env. */
static int
setting_set_env(void *s, int opt, const char *v)
{
	return setting_set(s, opt, v);
}

/* Apply the environment. */
static int
settings_from_env(struct settings *s)
{
	return api_settings_from_env("vecdb", names, NNAMES, setting_set_env,
	    s);
}

/* Flags, file and environment into s, in order of precedence. */
static int
settings_load(struct settings *s, int argc, char **argv)
{
	int opt;

	memset(s, 0, sizeof(*s));
	s->data_dir = "./data";
	s->host = "127.0.0.1";
	s->port = 8080;
	s->qdrant_port = API_QDRANT_DEFAULT_PORT;
	s->max_body = API_DEFAULT_MAX_BODY;
	s->threads = API_DEFAULT_THREADS;
	s->config = getenv("VECDB_CONFIG");
	for (optind = 2; (opt = getopt_long(argc, argv, "", long_opts,
			      NULL)) != -1;)
		if (opt == 'c')
			s->config = optarg;
		else if (opt == 'h' || opt == '?') {
			usage(opt == 'h' ? stdout : stderr);
			return opt == 'h' ? 1 : -1;
		}
	if (settings_from_file(s) != 0 || settings_from_env(s) != 0)
		return -1;
	for (optind = 2; (opt = getopt_long(argc, argv, "", long_opts,
			      NULL)) != -1;)
		if (setting_set(s, opt, optarg) != 0)
			return -1;
	if (optind < argc) {
		fprintf(stderr, "vecdb: unexpected argument '%s'\n",
		    argv[optind]);
		return -1;
	}
	return 0;
}

/* Open the database with the engine's options plus our durability. */
static int
db_open(const struct settings *s, vecdb **db)
{
	vecdb_options o;
	int rv;

	vecdb_options_init(&o);
	if (s->durability != NULL)
		setenv("VECDB_DURABILITY", s->durability, 1);
	if ((rv = vecdb_options_from_env(&o)) == VECDB_OK) {
		if (s->index_threads_set)
			o.index_threads = (uint32_t) s->index_threads;
		rv = vecdb_open(s->data_dir, &o, db);
	}
	if (rv != VECDB_OK)
		fprintf(stderr, "vecdb: cannot open %s: %s\n", s->data_dir,
		    vecdb_errmsg()[0] ? vecdb_errmsg() : vecdb_strerror(rv));
	return rv;
}

/* Create the config file's collections that do not exist yet. */
static int
collections_ensure(const struct settings *s, vecdb *db)
{
	json_t *list = json_object_get(s->file, "collections"), *c;
	vecdb_collection_config cfg;
	size_t i;
	int rv;

	if (list == NULL || json_is_null(list))
		return 0;
	if (!json_is_array(list)) {
		fprintf(stderr, "vecdb: config 'collections' must be a list\n");
		return -1;
	}
	json_array_foreach(list, i, c) {
		if (!json_is_object(c) ||
		    (rv = api_config_from_json(c, &cfg)) != VECDB_OK) {
			fprintf(stderr, "vecdb: config collections[%zu]: %s\n",
			    i, vecdb_errmsg());
			return -1;
		}
		rv = vecdb_collection_create(db, &cfg);
		if (rv != VECDB_OK && rv != VECDB_EEXIST) {
			fprintf(stderr, "vecdb: config collections[%zu]: %s\n",
			    i, vecdb_errmsg());
			return -1;
		}
		if (rv == VECDB_OK)
			VDB_LOG_INFO("MAIN", "created collection %s", cfg.name);
	}
	return 0;
}

/* Block the stop signals; main waits for them. Before any thread starts
 * (the engine's, the servers'): each inherits the mask, and a stop signal
 * delivered to one that does not block it would end the process there. */
static void
signals_block(sigset_t *set)
{
	sigemptyset(set);
	sigaddset(set, SIGINT);
	sigaddset(set, SIGTERM);
	pthread_sigmask(SIG_BLOCK, set, NULL);
	signal(SIGPIPE, SIG_IGN);
}

/* Start the servers and wait for SIGINT / SIGTERM (blocked in set). */
static int
serve(struct settings *s, vecdb *db, const sigset_t *set)
{
	struct api_server_config sc = { s->host, (uint16_t) s->port,
		s->api_key, s->read_only_key, s->tls_cert, s->tls_key,
		s->max_body, (unsigned) s->threads, NULL, s->conn, 0 };
	struct api_backend b;
	api_server *srv, *qsrv;
	int sig = 0;

	api_backend_local_init(&b, db);
	if (api_server_start(&sc, &b, &srv) != VECDB_OK) {
		fprintf(stderr, "vecdb: %s\n", vecdb_errmsg());
		return 1;
	}
	if (api_qdrant_start("vecdb", &sc, (uint16_t) s->qdrant_port,
	    s->qdrant_port_set, &b, &qsrv) != 0) {
		api_server_stop(srv);
		return 1;
	}
	printf("vecdb %s: serving %s://%s:%u (data %s)\n", VECDB_VERSION,
	    s->tls_cert ? "https" : "http", s->host, api_server_port(srv),
	    s->data_dir);
	if (qsrv != NULL)
		printf("vecdb %s: Qdrant API on %s://%s:%u\n", VECDB_VERSION,
		    s->tls_cert ? "https" : "http", s->host,
		    api_server_port(qsrv));
	fflush(stdout);
	sigwait(set, &sig);
	VDB_LOG_INFO("MAIN", "signal %d: finishing requests in flight", sig);
	api_server_stop(qsrv);
	api_server_stop(srv);
	return 0;
}

/* `vecdb serve`. */
static int
cmd_serve(int argc, char **argv)
{
	struct settings s;
	vecdb *db = NULL;
	sigset_t set;
	int rv;

	if ((rv = settings_load(&s, argc, argv)) != 0) {
		json_decref(s.file);
		return rv > 0 ? 0 : 2;
	}
	signals_block(&set);
	if (db_open(&s, &db) != VECDB_OK) {
		json_decref(s.file);
		return 1;
	}
	rv = collections_ensure(&s, db) != 0 ? 1 : serve(&s, db, &set);
	vecdb_close(db);
	json_decref(s.file);
	if (rv == 0)
		VDB_LOG_INFO("MAIN", "stopped cleanly");
	return rv;
}

int
main(int argc, char **argv)
{
	if (argc >= 2 && strcmp(argv[1], "serve") == 0)
		return cmd_serve(argc, argv);
	if (argc >= 2 && strcmp(argv[1], "version") == 0) {
		printf("vecdb %s\n", VECDB_VERSION);
		return 0;
	}
	usage(argc >= 2 && strcmp(argv[1], "help") == 0 ? stdout : stderr);
	return argc >= 2 && strcmp(argv[1], "help") == 0 ? 0 : 2;
}
