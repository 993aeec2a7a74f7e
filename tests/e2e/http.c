/*
 * http.c: the end-to-end harness: `vecdb serve` or a cluster (shards and a
 * router) as child processes through tests/proc.c, and a small HTTP client
 * on civetweb's client API. See http.h.
 */
#define _GNU_SOURCE
#include <civetweb.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "http.h"
#include "testutil.h"

#ifndef VECDB_BIN
#error "VECDB_BIN must name the vecdb server binary"
#endif
#ifndef VECDB_NODE_BIN
#error "VECDB_NODE_BIN must name the vecdb-node binary"
#endif
#ifndef VECDB_ROUTER_BIN
#error "VECDB_ROUTER_BIN must name the vecdb-router binary"
#endif

#define LOCALHOST "127.0.0.1"

enum srv_target
srv_target(void)
{
	const char *t = getenv("VECDB_TEST_TARGET");

	if (t == NULL || *t == '\0' || strcmp(t, "serve") == 0)
		return SRV_SERVE;
	if (strcmp(t, "cluster") == 0 || strcmp(t, "cluster-tls") == 0)
		return SRV_CLUSTER;
	ck_abort_msg("VECDB_TEST_TARGET '%s' is neither 'serve', 'cluster' "
	    "nor 'cluster-tls'", t);
	return SRV_SERVE;
}

int
srv_internal_tls(void)
{
	const char *t = getenv("VECDB_TEST_TARGET");

	return t != NULL && strcmp(t, "cluster-tls") == 0;
}

/* Certificate name in s->tls_dir, made with the CA (both made by
 * scripts/tls-ca.sh when missing). */
static int
tls_make(struct srv *s, const char *name)
{
	char *cmd, *pem;
	int rc;

	if (s->tls_dir == NULL && asprintf(&s->tls_dir, "%s/tls", s->dir) < 0)
		abort();
	if (asprintf(&pem, "%s/%s.pem", s->tls_dir, name) < 0)
		abort();
	rc = access(pem, R_OK);
	free(pem);
	if (rc == 0)
		return 0;
	if (asprintf(&cmd, "'%s' '%s' '%s' >>'%s.log' 2>&1",
	    VECDB_TLS_CA_SCRIPT, s->tls_dir, name, s->tls_dir) < 0)
		abort();
	rc = system(cmd);
	free(cmd);
	if (rc != 0)
		snprintf(s->err, sizeof(s->err), "scripts/tls-ca.sh failed "
		    "(%d): see %s.log", rc, s->tls_dir);
	return rc == 0 ? 0 : -1;
}

/* Add --tls-ca, --tls-cert and --tls-key of certificate name in dir. */
static void
tls_args_add(struct proc *p, const char *dir, const char *name)
{
	char ca[512], cert[512], key[512];

	snprintf(ca, sizeof(ca), "%s/ca.pem", dir);
	snprintf(cert, sizeof(cert), "%s/%s.pem", dir, name);
	snprintf(key, sizeof(key), "%s/%s.key", dir, name);
	proc_args_add(p, (const char *const[]) { "--tls-ca", ca, "--tls-cert",
	    cert, "--tls-key", key, NULL });
}

/* The scheme of the rpc urls of s's cluster. */
static const char *
scheme(const struct srv *s)
{
	return s->tls_dir != NULL ? "tls+tcp" : "tcp";
}

/* The rpc port node p printed. */
static uint16_t
node_port(const struct srv *s, const struct proc *p)
{
	char prefix[64];

	snprintf(prefix, sizeof(prefix), "rpc %s://" LOCALHOST ":",
	    scheme(s));
	return proc_port(p, prefix);
}

void
srv_add_fixture(TCase *tc)
{
	proc_add_fixture(tc);
}

const char *
srv_log_tail(const struct srv *s)
{
	return proc_log_tail(&s->proc);
}

/* Free everything s owns, stopping (unchecked) what still runs. */
static void
srv_free(struct srv *s)
{
	proc_free(&s->proc);
	for (int i = 0; i < s->nnodes; i++)
		proc_free(&s->nodes[i]);
	free(s->dir);
	free(s->tls_dir);
	memset(s, 0, sizeof(*s));
}

/* Fail a start: the reason into s->err, everything stopped and freed. */
static int
start_fail(struct srv *s, const char *what, const char *why)
{
	char err[sizeof(s->err)];

	snprintf(err, sizeof(err), "%s: %s", what, why);
	srv_free(s);
	memcpy(s->err, err, sizeof(err));
	return -1;
}

/* Start p (already set up) and read the REST port it prints into *port
 * ("serving http[s]://127.0.0.1:PORT"); a bad line kills it. */
static int
rest_start(struct proc *p, int tls, uint16_t *port, char *err, size_t len)
{
	const char *prefix = tls ? "serving https://" LOCALHOST ":" :
	    "serving http://" LOCALHOST ":";

	if (proc_try_start(p) != 0) {
		snprintf(err, len, "%s", p->err);
		return -1;
	}
	if ((*port = proc_port(p, prefix)) == 0) {
		snprintf(err, len, "%s printed an unexpected first line "
		    "(wanted '%s...'): %s", p->argv[0], prefix, p->line);
		proc_kill(p);
		return -1;
	}
	return 0;
}

/* ===== vecdb serve ===== */

int
srv_try_serve(const char *const *extra_args, struct srv *out)
{
	struct srv *s = out;
	char *log;

	memset(s, 0, sizeof(*s));
	ck_assert_msg(tu_base != NULL, "srv_add_fixture is missing");
	for (size_t i = 0; extra_args != NULL && extra_args[i] != NULL; i++)
		if (strcmp(extra_args[i], "--tls-cert") == 0)
			s->tls = 1;
	s->dir = tu_subdir();
	if (asprintf(&log, "%s.log", s->dir) < 0)
		abort();
	proc_init(&s->proc, (const char *const[]) { VECDB_BIN, "serve",
	    "--data", s->dir, "--host", LOCALHOST, "--port", "0", NULL }, log);
	free(log);
	proc_args_add(&s->proc, extra_args);
	if (rest_start(&s->proc, s->tls, &s->port, s->err,
	    sizeof(s->err)) != 0)
		return start_fail(s, "vecdb serve", s->err);
	return 0;
}

/* ===== Cluster ===== */

/* Start node i in <s->dir>/n<i> with extra args; its rpc port is kept
 * for restarts. */
static int
node_start(struct srv *s, int i, const char *const *args,
    const char *const *env)
{
	struct proc *n = &s->nodes[i];
	char *dir, *log, url[64], name[16];
	uint16_t port;

	if (asprintf(&dir, "%s/n%d", s->dir, i) < 0 ||
	    asprintf(&log, "%s.log", dir) < 0)
		abort();
	ck_assert_msg(mkdir(dir, 0755) == 0, "mkdir %s failed", dir);
	snprintf(url, sizeof(url), "%s://" LOCALHOST ":0", scheme(s));
	proc_init(n, (const char *const[]) { VECDB_NODE_BIN, "--data", dir,
	    "--rpc", url, "--admin-port", "0", NULL }, log);
	free(dir);
	free(log);
	proc_args_add(n, args);
	if (s->tls_dir != NULL) {
		snprintf(name, sizeof(name), "n%d", i);
		if (tls_make(s, name) != 0)
			return -1;
		tls_args_add(n, s->tls_dir, name);
	}
	for (size_t k = 0; env != NULL && env[k] != NULL; k++) {
		char name[128];
		const char *eq = strchr(env[k], '=');
		ck_assert_msg(eq != NULL && (size_t) (eq - env[k]) <
		    sizeof(name), "bad node variable '%s'", env[k]);
		snprintf(name, sizeof(name), "%.*s", (int) (eq - env[k]),
		    env[k]);
		proc_setenv(n, name, eq + 1);
	}
	s->nnodes = i + 1;
	if (proc_try_start(n) != 0) {
		snprintf(s->err, sizeof(s->err), "%s", n->err);
		return -1;
	}
	if ((port = node_port(s, n)) == 0) {
		snprintf(s->err, sizeof(s->err), "vecdb-node printed an "
		    "unexpected first line: %s", n->line);
		return -1;
	}
	snprintf(url, sizeof(url), "%s://" LOCALHOST ":%u", scheme(s), port);
	proc_arg_set(n, "--rpc", url);
	return 0;
}

/* The topology file of s's shards. */
static char *
topology_path(const struct srv *s)
{
	char *path;

	if (asprintf(&path, "%s/topology.json", s->dir) < 0)
		abort();
	return path;
}

/* Write <s->dir>/topology.json over the shards' rpc urls. */
static void
topology_write(const struct srv *s)
{
	char *path = topology_path(s);
	FILE *f = fopen(path, "w");

	ck_assert_msg(f != NULL, "cannot write %s", path);
	fprintf(f, "{\"shards\": [");
	for (int i = 0; i < s->nshards; i++) {
		fprintf(f, "%s{\"id\": %d, \"primary\": \"%s://" LOCALHOST
		    ":%u\", \"replicas\": [", i ? ", " : "", i, scheme(s),
		    node_port(s, &s->nodes[i]));
		for (int k = s->nshards, n = 0; k < s->nnodes; k++)
			if (s->shard_of[k] == i)
				fprintf(f, "%s\"%s://" LOCALHOST ":%u\"",
				    n++ ? ", " : "", scheme(s),
				    node_port(s, &s->nodes[k]));
		fprintf(f, "]}");
	}
	fprintf(f, "]}\n");
	ck_assert_msg(fclose(f) == 0, "cannot write %s", path);
	free(path);
}

/*
 * Wait until router s holds a connection to every member it lists
 * (vecdb_router_shard_connected), so that a test's first request does
 * not spend its deadline on nng's first dial on a loaded machine.
 */
static int
router_wait_connected(struct srv *s)
{
	const char *key = "vecdb_router_shard_connected{";
	time_t end = time(NULL) + PROC_START_TIMEOUT_S;
	const char *at, *close, *hdr[2] = { NULL, NULL };
	char key_hdr[256];
	struct resp r;
	int down;

	for (int i = 0; s->proc.argv[i] != NULL; i++)
		if (strcmp(s->proc.argv[i], "--api-key") == 0 &&
		    s->proc.argv[i + 1] != NULL) {
			snprintf(key_hdr, sizeof(key_hdr), "api-key: %s",
			    s->proc.argv[i + 1]);
			hdr[0] = key_hdr;
		}
	for (;;) {
		down = -1;
		if (http_req(s, "GET", "/metrics", NULL, hdr, &r) == 0) {
			down = r.status == 200 ? 0 : -1;
			/* every series line must end in "} 1" */
			for (at = r.body; down == 0 && (at = strstr(at, key)) !=
			    NULL; at = close) {
				close = strchr(at, '}');
				down = close == NULL || strncmp(close, "} 1\n",
				    4) != 0;
			}
			resp_free(&r);
		}
		if (down == 0)
			return 0;
		if (time(NULL) > end) {
			snprintf(s->err, sizeof(s->err), "the router did not "
			    "connect to every node within %d s",
			    PROC_START_TIMEOUT_S);
			return -1;
		}
		usleep(10 * 1000);
	}
}

/*
 * Start a router over topology (a path under tu_base) into s->proc. Its
 * shard deadline is 30 s unless args say otherwise (the last flag wins):
 * a sanitized build on a busy machine must not turn slowness into 503s.
 */
static int
router_start(struct srv *s, const char *topology, const char *log,
    const char *const *args)
{
	char url[64], prefix[64];

	snprintf(url, sizeof(url), "%s://" LOCALHOST ":0", scheme(s));
	proc_init(&s->proc, (const char *const[]) { VECDB_ROUTER_BIN,
	    "--topology", topology, "--host", LOCALHOST, "--port", "0",
	    "--rpc", url, "--timeout-ms", "30000", NULL },
	    log);
	if (s->tls_dir != NULL) {
		tls_args_add(&s->proc, s->tls_dir, "router");
		s->tls = 1;
	}
	proc_args_add(&s->proc, args);
	for (size_t i = 0; args != NULL && args[i] != NULL; i++)
		if (strcmp(args[i], "--tls-cert") == 0)
			s->tls = 1;
	if (rest_start(&s->proc, s->tls, &s->port, s->err,
	    sizeof(s->err)) != 0)
		return -1;
	snprintf(prefix, sizeof(prefix), "rpc %s://" LOCALHOST ":",
	    scheme(s));
	s->rpc_port = proc_port(&s->proc, prefix);
	return router_wait_connected(s);
}

int
srv_try_cluster(int nshards, const char *const *router_args,
    const char *const *node_env, struct srv *out)
{
	struct srv *s = out;
	char *topo, *log;
	int rv;

	memset(s, 0, sizeof(*s));
	ck_assert_msg(tu_base != NULL, "srv_add_fixture is missing");
	ck_assert_int_le(nshards, SRV_SHARDS_MAX);
	s->dir = tu_subdir();
	if (srv_internal_tls() && tls_make(s, "router") != 0)
		return start_fail(s, "tls", s->err);
	for (int i = 0; i < nshards; i++) {
		s->shard_of[i] = i;
		if (node_start(s, i, NULL, node_env) != 0)
			return start_fail(s, "vecdb-node", s->err);
	}
	s->nshards = nshards;
	topology_write(s);
	topo = topology_path(s);
	if (asprintf(&log, "%s/router.log", s->dir) < 0)
		abort();
	rv = router_start(s, topo, log, router_args);
	free(topo);
	free(log);
	return rv == 0 ? 0 : start_fail(s, "vecdb-router", s->err);
}

int
srv_add_replica(struct srv *s, int shard, const char *const *args)
{
	const char *argv[PROC_ARGS_MAX + 1] = { "--mode", "replica",
		"--primary" };
	char primary[64];
	int i = s->nnodes;
	size_t n = 4;

	ck_assert_int_lt(shard, s->nshards);
	snprintf(primary, sizeof(primary), "%s://" LOCALHOST ":%u", scheme(s),
	    node_port(s, &s->nodes[shard]));
	argv[3] = primary;
	ck_assert_int_lt(i, SRV_SHARDS_MAX);
	for (size_t k = 0; args != NULL && args[k] != NULL; k++) {
		ck_assert_uint_lt(n, PROC_ARGS_MAX);
		argv[n++] = args[k];
	}
	s->shard_of[i] = shard;
	if (node_start(s, i, argv, NULL) != 0)
		ck_abort_msg("cannot start a replica: %s", s->err);
	topology_write(s);
	if (s->proc.pid > 0)
		ck_assert_int_eq(kill(s->proc.pid, SIGHUP), 0);
	return i;
}

int
srv_try_router(const struct srv *cluster, const char *const *router_args,
    struct srv *out)
{
	char *topo = topology_path(cluster), *log;
	int rv;

	memset(out, 0, sizeof(*out));
	if (asprintf(&log, "%s/router-%u.log", cluster->dir,
	    (unsigned) getpid()) < 0)
		abort();
	if (cluster->tls_dir != NULL &&
	    (out->tls_dir = strdup(cluster->tls_dir)) == NULL)
		abort();
	rv = router_start(out, topo, log, router_args);
	free(topo);
	free(log);
	return rv == 0 ? 0 : start_fail(out, "vecdb-router", out->err);
}

int
srv_try_start(const char *const *extra_args, struct srv *out)
{
	if (srv_target() == SRV_CLUSTER)
		return srv_try_cluster(SRV_SHARDS, extra_args, NULL, out);
	return srv_try_serve(extra_args, out);
}

void
srv_start(const char *const *extra_args, struct srv *out)
{
	if (srv_try_start(extra_args, out) != 0)
		ck_abort_msg("cannot start the server: %s", out->err);
}

/* ===== Stopping ===== */

/* Stop p; on an unclean end the first report goes into why. */
static void
stop_one(struct proc *p, char *why, size_t len)
{
	int status = proc_stop(p);
	char st[64];

	if (why[0] != '\0' || (status != -1 && WIFEXITED(status) &&
	    WEXITSTATUS(status) == 0))
		return;
	proc_status_str(status, st, sizeof(st));
	snprintf(why, len, "%s %s after SIGTERM; its stderr:\n%s",
	    p->argv[0], st, proc_log_tail(p));
}

/* Stop the router (first: it talks to the shards), then the shards. */
static void
stop_all(struct srv *s, char *why, size_t len)
{
	stop_one(&s->proc, why, len);
	for (int i = 0; i < s->nnodes; i++)
		stop_one(&s->nodes[i], why, len);
}

void
srv_stop(struct srv *s)
{
	char why[2048] = "";

	if (s->proc.argv[0] == NULL)
		return;
	stop_all(s, why, sizeof(why));
	/* Report, then free: ck_abort does not return. */
	srv_free(s);
	if (why[0] != '\0')
		ck_abort_msg("%s", why);
}

void
srv_restart(struct srv *s)
{
	char why[2048] = "";

	ck_assert_msg(s->proc.pid > 0, "restart of a server that is not "
	    "running");
	stop_all(s, why, sizeof(why));
	if (why[0] != '\0')
		ck_abort_msg("%s", why);
	for (int i = 0; i < s->nnodes; i++)
		if (proc_try_start(&s->nodes[i]) != 0)
			ck_abort_msg("cannot restart shard %d: %s", i,
			    s->nodes[i].err);
	if (rest_start(&s->proc, s->tls, &s->port, s->err,
	    sizeof(s->err)) != 0)
		ck_abort_msg("cannot restart the server: %s", s->err);
}

/* ===== Client ===== */

/* Initialise civetweb (with TLS) once per process: check forks a child
 * per test, and the tests are single-threaded. */
static void
client_init(void)
{
	static pid_t inited_in;

	if (inited_in != getpid()) {
		/* A server may close in the middle of a body (413). */
		signal(SIGPIPE, SIG_IGN);
		mg_init_library(MG_FEATURES_TLS);
		inited_in = getpid();
	}
}

/* Connect to the server over HTTP or HTTPS (no certificate check). */
static struct mg_connection *
client_connect(struct srv *s, char *ebuf, size_t elen)
{
	struct mg_client_options o;

	if (!s->tls)
		return mg_connect_client("127.0.0.1", s->port, 0, ebuf, elen);
	memset(&o, 0, sizeof(o));
	o.host = "127.0.0.1";
	o.port = s->port;
	return mg_connect_client_secure(&o, ebuf, elen);
}

/* Does the NULL-terminated list hold a header named name? */
static int
has_header(const char *const *headers, const char *name)
{
	size_t n = strlen(name);

	for (size_t i = 0; headers != NULL && headers[i] != NULL; i++)
		if (strncasecmp(headers[i], name, n) == 0 &&
		    headers[i][n] == ':')
			return 1;
	return 0;
}

/* Send the request line, headers and body (a body sent with
 * Transfer-Encoding is already encoded by the caller). */
static int
req_send(struct mg_connection *c, struct srv *s, const char *method,
    const char *path, const void *body, size_t len, const char *ctype,
    const char *const *headers)
{
	if (mg_printf(c, "%s %s HTTP/1.1\r\nHost: 127.0.0.1:%u\r\n"
			 "Connection: close\r\n", method, path, s->port) <= 0)
		return -1;
	for (size_t i = 0; headers != NULL && headers[i] != NULL; i++)
		if (mg_printf(c, "%s\r\n", headers[i]) <= 0)
			return -1;
	if (ctype != NULL && mg_printf(c, "Content-Type: %s\r\n", ctype) <= 0)
		return -1;
	if ((body != NULL || strcmp(method, "POST") == 0 ||
		strcmp(method, "PUT") == 0) && !has_header(headers,
		    "Transfer-Encoding") &&
	    mg_printf(c, "Content-Length: %zu\r\n", len) <= 0)
		return -1;
	if (mg_printf(c, "\r\n") <= 0)
		return -1;
	/* The server may answer (413) and close before taking it all. */
	if (len > 0)
		(void) mg_write(c, body, len);
	return 0;
}

/* Read the whole body into out. */
static void
body_read(struct mg_connection *c, struct resp *out)
{
	size_t cap = 8192;
	int n;

	if ((out->body = malloc(cap)) == NULL)
		abort();
	for (;;) {
		if (cap - out->len < 4096) {
			cap *= 2;
			if ((out->body = realloc(out->body, cap)) == NULL)
				abort();
		}
		n = mg_read(c, out->body + out->len, cap - out->len - 1);
		if (n <= 0)
			break;
		out->len += (size_t) n;
	}
	out->body[out->len] = '\0';
}

/* Status, Content-Type, body and (for JSON) the parsed body. */
static void
resp_fill(struct mg_connection *c, struct resp *out)
{
	const struct mg_response_info *ri = mg_get_response_info(c);

	out->status = ri->status_code;
	for (int i = 0; i < ri->num_headers; i++)
		if (strcasecmp(ri->http_headers[i].name, "Content-Type") == 0)
			snprintf(out->ctype, sizeof(out->ctype), "%s",
			    ri->http_headers[i].value);
	body_read(c, out);
	if (strstr(out->ctype, "json") != NULL)
		out->json = json_loadb(out->body, out->len, 0, NULL);
}

int
http_req_raw(struct srv *s, const char *method, const char *path,
    const void *body, size_t len, const char *ctype,
    const char *const *headers, struct resp *out)
{
	struct mg_connection *c;
	char ebuf[256] = "";

	memset(out, 0, sizeof(*out));
	client_init();
	if ((c = client_connect(s, ebuf, sizeof(ebuf))) == NULL) {
		fprintf(stderr, "e2e: %s %s: cannot connect to port %u: %s\n",
		    method, path, s->port, ebuf);
		return -1;
	}
	if (req_send(c, s, method, path, body, len, ctype, headers) != 0 ||
	    mg_get_response(c, ebuf, sizeof(ebuf), HTTP_TIMEOUT_MS) < 0) {
		fprintf(stderr, "e2e: %s %s: no response: %s\n", method, path,
		    ebuf);
		mg_close_connection(c);
		return -1;
	}
	resp_fill(c, out);
	mg_close_connection(c);
	return 0;
}

int
http_req(struct srv *s, const char *method, const char *path,
    const char *json_body, const char *const *headers, struct resp *out)
{
	return http_req_raw(s, method, path, json_body,
	    json_body ? strlen(json_body) : 0,
	    json_body ? "application/json" : NULL, headers, out);
}

void
resp_free(struct resp *r)
{
	free(r->body);
	json_decref(r->json);
	memset(r, 0, sizeof(*r));
}

json_t *
http_call(struct srv *s, int want, const char *method, const char *path,
    const char *body)
{
	struct resp r;
	json_t *env;

	ck_assert_msg(http_req(s, method, path, body, NULL, &r) == 0,
	    "%s %s: no response", method, path);
	ck_assert_msg(r.status == want, "%s %s (port %u): expected %d, got "
	    "%d: %.600s", method, path, s->port, want, r.status, r.body);
	ck_assert_msg(r.json != NULL, "%s %s: not JSON: %.200s", method, path,
	    r.body);
	env = json_incref(r.json);
	resp_free(&r);
	return env;
}
