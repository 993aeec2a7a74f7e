/*
 * api_http.c: the HTTP server: civetweb setup, routing, authentication,
 * body limits, the response envelope, request logging and shutdown.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <openssl/crypto.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "api_impl.h"
#include "api_tls.h"

struct api_server {
	struct mg_context *mg;
	struct api_server_config cfg;   /* strings borrowed from caller */
	const struct api_backend *b;
	struct api_metrics *metrics;
	uint16_t port;            /* the public port */
	uint16_t http_port;       /* civetweb's own port */
	struct api_tls *tls;      /* TLS front, or NULL */
	uint64_t started_ms;
};

struct api_metrics *
api_server_metrics(struct api_server *s)
{
	return s->metrics;
}

const struct api_server_config *
api_server_cfg(struct api_server *s)
{
	return &s->cfg;
}

double
api_server_uptime(struct api_server *s)
{
	return (double) (vdb_now_ms() - s->started_ms) / 1000.0;
}

/* ===== Responses ===== */

int
api_status_of(int err, const char **code)
{
	switch (err) {
	case VECDB_OK: *code = "OK"; return 200;
	case VECDB_EINVAL:
	case VECDB_EDIM:
	case VECDB_ECORRUPT: *code = "INVALID_ARGUMENT"; return 400;
	case VECDB_ENOTFOUND: *code = "NOT_FOUND"; return 404;
	case VECDB_EEXIST: *code = "ALREADY_EXISTS"; return 409;
	case VECDB_EREADONLY: *code = "PERMISSION_DENIED"; return 403;
	case VECDB_EFULL: *code = "RESOURCE_EXHAUSTED"; return 507;
	case VECDB_ECLOSED:
	case VECDB_ELOCKED: *code = "UNAVAILABLE"; return 503;
	case VECDB_ETIMEDOUT: *code = "DEADLINE_EXCEEDED"; return 504;
	default: *code = "INTERNAL"; return 500;
	}
}

void
api_req_status(struct api_req *r, int status)
{
	r->status = status;
	api_metrics_request(r->srv->metrics, r->route, status);
}

/* Send a complete response with a body. */
static void
send_body(struct api_req *r, int status, const char *type, const char *body,
    size_t len)
{
	char clen[32];

	api_req_status(r, status);
	snprintf(clen, sizeof(clen), "%zu", len);
	mg_response_header_start(r->conn, status);
	mg_response_header_add(r->conn, "Content-Type", type, -1);
	mg_response_header_add(r->conn, "Content-Length", clen, -1);
	mg_response_header_send(r->conn);
	if (len > 0)
		mg_write(r->conn, body, len);
}

void
api_send_json(struct api_req *r, int status, json_t *root)
{
	/* Nine significant digits print every float32 exactly. */
	char *s = root ? json_dumps(root, JSON_COMPACT | JSON_REAL_PRECISION(9)) :
			 NULL;

	if (s == NULL) {
		static const char oom[] = "{\"success\":false,\"error\":{\"code\":"
					  "\"INTERNAL\",\"message\":\"out of memory\"}}";
		send_body(r, 500, "application/json", oom, sizeof(oom) - 1);
	} else {
		send_body(r, status, "application/json", s, strlen(s));
	}
	free(s);
	json_decref(root);
}

/* The error envelope with an explicit status and code name. */
static void
send_error_status(struct api_req *r, int status, const char *code,
    const char *msg)
{
	api_send_json(r, status, json_pack("{s:b, s:{s:s, s:s}}", "success", 0,
				     "error", "code", code, "message", msg));
}

void
api_send_error(struct api_req *r, int err, const char *msg)
{
	const char *code;
	int status = api_status_of(err, &code);

	send_error_status(r, status, code, msg && *msg ? msg :
	    vecdb_strerror(err));
}

/* ===== Requests ===== */

/* Split the URI path into URL-decoded segments (in place copies). */
static int
path_split(struct api_req *r, char *buf, size_t len)
{
	char *save = NULL, *tok;
	int n = mg_url_decode(r->ri->local_uri, (int) strlen(r->ri->local_uri),
	    buf, (int) len, 0);

	if (n < 0)
		return -1;
	r->nsegs = 0;
	for (tok = strtok_r(buf, "/", &save); tok != NULL;
	     tok = strtok_r(NULL, "/", &save)) {
		if (r->nsegs == API_MAX_SEGS)
			return -1;
		r->segs[r->nsegs++] = tok;
	}
	return 0;
}

/* Does the path match a pattern? */
static int
route_match(const struct api_req *r, const char *pattern)
{
	char pat[128], *save = NULL, *tok;
	size_t i = 0;

	snprintf(pat, sizeof(pat), "%s", pattern);
	for (tok = strtok_r(pat, "/", &save); tok != NULL;
	     tok = strtok_r(NULL, "/", &save), i++) {
		if (i >= r->nsegs)
			return 0;
		if (tok[0] != ':' && strcmp(tok, r->segs[i]) != 0)
			return 0;
	}
	return i == r->nsegs;
}

/* Find the route; *path_known says whether some method matched. */
static size_t
route_find(const struct api_req *r, int *path_known)
{
	*path_known = 0;
	for (size_t i = 0; i < api_n_routes; i++) {
		if (!route_match(r, api_routes[i].pattern))
			continue;
		*path_known = 1;
		if (strcmp(api_routes[i].method, r->ri->request_method) == 0)
			return i;
	}
	return api_n_routes;
}

/* Constant-time equality of a presented key and the configured one. */
static int
key_equal(const char *given, const char *want)
{
	size_t n = strlen(want);

	if (given == NULL || strlen(given) != n)
		return 0;
	return CRYPTO_memcmp(given, want, n) == 0;
}

/* The key presented: header api-key, or Authorization: Bearer KEY. */
static const char *
presented_key(struct mg_connection *conn)
{
	const char *k = mg_get_header(conn, "api-key");
	const char *a;

	if (k != NULL)
		return k;
	a = mg_get_header(conn, "Authorization");
	if (a != NULL && strncasecmp(a, "Bearer ", 7) == 0)
		return a + 7;
	return NULL;
}

/* 0 if allowed; otherwise sends 401/403 and returns -1. */
static int
authorize(struct api_req *r, const struct api_route *rt)
{
	const struct api_server_config *c = &r->srv->cfg;
	const char *k;

	if (rt->noauth || (c->api_key == NULL && c->read_only_key == NULL))
		return 0;
	k = presented_key(r->conn);
	if (c->api_key != NULL && key_equal(k, c->api_key))
		return 0;
	if (c->read_only_key != NULL && key_equal(k, c->read_only_key)) {
		if (!rt->writes)
			return 0;
		send_error_status(r, 403, "PERMISSION_DENIED",
		    "the read-only API key cannot write");
		return -1;
	}
	send_error_status(r, 401, "UNAUTHENTICATED", k == NULL ?
	    "missing API key (header api-key or Authorization: Bearer)" :
	    "wrong API key");
	return -1;
}

/*
 * Read and parse a JSON object body under the size limit. Sends the error
 * response itself (413 or 400) and returns -1 on failure.
 */
static int
body_read_json(struct api_req *r)
{
	uint64_t max = r->srv->cfg.max_body;
	long long clen = r->ri->content_length;
	size_t cap = 4096, len = 0;
	char *buf;
	json_error_t err;
	int n;

	if (clen > 0 && (uint64_t) clen > max)
		goto too_big;
	if (clen > 0)
		cap = (size_t) clen + 1;
	if ((buf = vdb_malloc(cap)) == NULL) {
		api_send_error(r, VECDB_ENOMEM, "out of memory");
		return -1;
	}
	while ((n = mg_read(r->conn, buf + len, cap - len)) > 0) {
		len += (size_t) n;
		if (len > max) {
			vdb_free(buf);
			goto too_big;
		}
		if (len == cap) {
			char *nb = vdb_realloc(buf, cap * 2);
			if (nb == NULL) {
				vdb_free(buf);
				api_send_error(r, VECDB_ENOMEM, "out of memory");
				return -1;
			}
			buf = nb;
			cap *= 2;
		}
	}
	if (vdb_json_depth(buf, len) > API_JSON_DEPTH_MAX) {
		vdb_free(buf);
		send_error_status(r, 400, "INVALID_ARGUMENT", "JSON nesting is "
		    "deeper than " API_JSON_DEPTH_MAX_STR " levels");
		return -1;
	}
	r->body = len ? json_loadb(buf, len, JSON_REJECT_DUPLICATES, &err) :
			NULL;
	vdb_free(buf);
	if (len == 0) {
		r->body = json_object(); /* an empty body is an empty request */
		return 0;
	}
	if (r->body == NULL) {
		char msg[256];
		snprintf(msg, sizeof(msg), "invalid JSON body: %s (line %d, "
		    "column %d)", err.text, err.line, err.column);
		send_error_status(r, 400, "INVALID_ARGUMENT", msg);
		return -1;
	}
	if (!json_is_object(r->body)) {
		send_error_status(r, 400, "INVALID_ARGUMENT",
		    "the request body must be a JSON object");
		return -1;
	}
	return 0;
too_big:
	send_error_status(r, 413, "RESOURCE_EXHAUSTED",
	    "request body is larger than the limit (--max-body)");
	return -1;
}

/* ===== Read options ===== */

static _Thread_local struct api_read_opts read_opts;

struct api_read_opts *
api_read_opts(void)
{
	return &read_opts;
}

void
api_read_opts_reset(void)
{
	memset(&read_opts, 0, sizeof(read_opts));
}

void
api_read_opts_missing(uint32_t shard)
{
	uint64_t bit = 1ULL << (shard % 64);

	if (shard >= API_SHARDS_MAX || (read_opts.missing[shard / 64] & bit))
		return;
	read_opts.missing[shard / 64] |= bit;
	read_opts.n_missing++;
}

void
api_read_opts_missing_ids(uint32_t *ids)
{
	size_t k = 0;

	for (uint32_t s = 0; s < API_SHARDS_MAX && k < read_opts.n_missing;
	    s++)
		if (read_opts.missing[s / 64] >> (s % 64) & 1)
			ids[k++] = s;
}

/* "primary" or "any" into *primary. */
static int
consistency_parse(const char *v, int *primary)
{
	if (strcmp(v, "primary") == 0)
		*primary = 1;
	else if (strcmp(v, "any") == 0)
		*primary = 0;
	else
		return vdb_err(VECDB_EINVAL, "consistency must be \"primary\" "
		    "or \"any\", not \"%s\"", v);
	return VECDB_OK;
}

/*
 * The read options of a request: "consistency" and "allow_partial" in
 * the query string (any route) or the JSON body (query routes).
 */
static int
read_opts_parse(struct api_req *r)
{
	const char *qs = r->ri->query_string;
	json_t *v;
	char buf[32];
	int rv;

	api_read_opts_reset();
	if (qs != NULL && mg_get_var(qs, strlen(qs), "consistency", buf,
	    sizeof(buf)) >= 0 && (rv = consistency_parse(buf,
	    &read_opts.primary)) != VECDB_OK)
		return rv;
	if (qs != NULL && mg_get_var(qs, strlen(qs), "allow_partial", buf,
	    sizeof(buf)) >= 0) {
		if (strcmp(buf, "true") != 0 && strcmp(buf, "false") != 0)
			return vdb_err(VECDB_EINVAL, "allow_partial must be "
			    "true or false");
		read_opts.allow_partial = strcmp(buf, "true") == 0;
	}
	if (!json_is_object(r->body))
		return VECDB_OK;
	if ((v = json_object_get(r->body, "consistency")) != NULL) {
		if (!json_is_string(v))
			return vdb_err(VECDB_EINVAL, "consistency must be a "
			    "string");
		if ((rv = consistency_parse(json_string_value(v),
		    &read_opts.primary)) != VECDB_OK)
			return rv;
	}
	if ((v = json_object_get(r->body, "write_concern")) != NULL) {
		if (!json_is_integer(v) || json_integer_value(v) < 0 ||
		    json_integer_value(v) > API_WRITE_CONCERN_MAX)
			return vdb_err(VECDB_EINVAL, "write_concern must be an "
			    "integer in 0..%d", API_WRITE_CONCERN_MAX);
		read_opts.write_concern = (uint32_t) json_integer_value(v);
	}
	return api_get_bool(r->body, "allow_partial", read_opts.allow_partial,
	    &read_opts.allow_partial);
}

/* The success envelope; a partial answer names the shards left out. */
static json_t *
envelope_ok(json_t *data)
{
	json_t *env = json_pack("{s:b, s:o}", "success", 1, "data",
	    data ? data : json_null());
	json_t *ids;

	if (env == NULL || read_opts.n_missing == 0)
		return env;
	if ((ids = json_array()) == NULL) {
		json_decref(env);
		return NULL;
	}
	for (uint32_t s = 0; s < API_SHARDS_MAX; s++)
		if (read_opts.missing[s / 64] >> (s % 64) & 1)
			json_array_append_new(ids, json_integer(s));
	json_object_set_new(env, "partial", json_true());
	json_object_set_new(env, "missing_shards", ids);
	return env;
}

/* Run the handler of a matched route and write its envelope. */
static void
route_run(struct api_req *r, const struct api_route *rt)
{
	json_t *data = NULL;
	char msg[512];
	int rv;

	if (authorize(r, rt) != 0)
		return;
	if (rt->body == API_BODY_JSON && body_read_json(r) != 0)
		return;
	vdb_err_clear();
	rv = read_opts_parse(r);
	/* a write that reads back what it wrote (create echoes the config)
	 * must read it where it was written, not from a lagging replica */
	if (rt->writes)
		read_opts.primary = 1;
	if (rv == VECDB_OK)
		rv = rt->fn(r, &data);
	if (rv == API_RESPONDED)
		return;
	if (rv != VECDB_OK) {
		vdb_err_save(msg, sizeof(msg));
		json_decref(data);
		api_send_error(r, rv, msg);
		return;
	}
	api_send_json(r, 200, envelope_ok(data));
}

/* civetweb's entry point for every request. */
static int
on_request(struct mg_connection *conn)
{
	struct api_server *srv = mg_get_user_data(mg_get_context(conn));
	struct api_req r;
	char path[2048];
	uint64_t t0 = vdb_now_ms();
	size_t idx;
	int known;

	memset(&r, 0, sizeof(r));
	r.conn = conn;
	r.ri = mg_get_request_info(conn);
	r.b = srv->b;
	r.srv = srv;
	r.route = api_n_routes;
	if (path_split(&r, path, sizeof(path)) != 0) {
		send_error_status(&r, 404, "NOT_FOUND", "no such route");
		idx = api_n_routes;
	} else if ((r.route = idx = route_find(&r, &known)) == api_n_routes) {
		if (known)
			send_error_status(&r, 405, "UNIMPLEMENTED",
			    "method not allowed on this route");
		else
			send_error_status(&r, 404, "NOT_FOUND", "no such route");
	} else {
		route_run(&r, &api_routes[idx]);
	}
	json_decref(r.body);
	if (r.status >= 500)
		VDB_LOG_ERROR("HTTP", "%s %s -> %d (%llu ms)",
		    r.ri->request_method, r.ri->local_uri, r.status,
		    (unsigned long long) (vdb_now_ms() - t0));
	else
		VDB_LOG_DEBUG("HTTP", "%s %s -> %d (%llu ms)",
		    r.ri->request_method, r.ri->local_uri, r.status,
		    (unsigned long long) (vdb_now_ms() - t0));
	return r.status; /* non-zero: handled */
}

/* civetweb's log hook: route its messages into ours. */
static int
on_log(const struct mg_connection *conn, const char *msg)
{
	(void) conn;
	VDB_LOG_WARN("HTTP", "%s", msg);
	return 1;
}

/*
 * Start civetweb; fills srv->mg and srv->port. With TLS, civetweb serves
 * plain HTTP on a private loopback port behind our TLS front (api_tls.c
 * says why).
 */
static int
server_listen(struct api_server *srv)
{
	const struct api_server_config *c = &srv->cfg;
	char ports[300], threads[16], err[256] = "";
	struct mg_callbacks cb;
	struct mg_init_data init;
	struct mg_error_data ed;
	struct mg_server_port sp[4];
	int tls = c->tls_cert != NULL, rv;
	const char *opts[] = { "listening_ports", ports, "num_threads",
		threads, "enable_keep_alive", "yes", "keep_alive_timeout_ms",
		"30000", "request_timeout_ms", "60000",
		/* Headers and body go out in separate writes: without
		 * TCP_NODELAY, Nagle holds the body for the client's delayed
		 * ACK (measured: 90 ms a request instead of 0.1). */
		"tcp_nodelay", "1", NULL };

	snprintf(ports, sizeof(ports), "%s:%u", tls ? "127.0.0.1" : c->host,
	    tls ? 0 : c->port);
	snprintf(threads, sizeof(threads), "%u", c->threads);
	memset(&cb, 0, sizeof(cb));
	cb.begin_request = on_request;
	cb.log_message = on_log;
	memset(&init, 0, sizeof(init));
	init.callbacks = &cb;
	init.user_data = srv;
	init.configuration_options = opts;
	memset(&ed, 0, sizeof(ed));
	ed.text = err;
	ed.text_buffer_size = sizeof(err);
	if ((srv->mg = mg_start2(&init, &ed)) == NULL)
		return vdb_err(VECDB_EIO, "cannot serve on %s: %s", ports,
		    err[0] ? err : "unknown error");
	if (mg_get_server_ports(srv->mg, 4, sp) < 1) {
		mg_stop(srv->mg);
		return vdb_err(VECDB_EIO, "no listening port");
	}
	srv->port = srv->http_port = (uint16_t) sp[0].port;
	if (tls && (rv = api_tls_start(c->host, c->port, c->tls_cert,
			c->tls_key, srv->port, &srv->tls)) != VECDB_OK) {
		mg_stop(srv->mg);
		return rv;
	}
	if (tls)
		srv->port = api_tls_port(srv->tls);
	return VECDB_OK;
}

int
api_server_start(const struct api_server_config *cfg,
    const struct api_backend *b, api_server **out)
{
	struct api_server *srv;
	int rv;

	if ((cfg->tls_cert == NULL) != (cfg->tls_key == NULL))
		return vdb_err(VECDB_EINVAL, "TLS needs both a certificate and "
		    "a key");
	if ((srv = vdb_calloc(1, sizeof(*srv))) == NULL)
		return vdb_err(VECDB_ENOMEM, "out of memory");
	srv->cfg = *cfg;
	if (srv->cfg.max_body == 0)
		srv->cfg.max_body = API_DEFAULT_MAX_BODY;
	if (srv->cfg.threads == 0)
		srv->cfg.threads = API_DEFAULT_THREADS;
	if (srv->cfg.host == NULL)
		srv->cfg.host = "127.0.0.1";
	srv->b = b;
	srv->started_ms = vdb_now_ms();
	if ((srv->metrics = api_metrics_new(api_n_routes + 1)) == NULL) {
		vdb_free(srv);
		return vdb_err(VECDB_ENOMEM, "out of memory");
	}
	if ((rv = server_listen(srv)) != VECDB_OK) {
		api_metrics_free(srv->metrics);
		vdb_free(srv);
		return rv;
	}
	*out = srv;
	return VECDB_OK;
}

uint16_t
api_server_port(const api_server *s)
{
	return s->port;
}

/* Pokes civetweb's accept loop until the server has stopped. */
struct waker {
	struct sockaddr_in addr;
	_Atomic int done;
};

/*
 * civetweb's accept loop polls in 2-second quanta and sees the stop flag
 * only when poll returns: every shutdown took 2 s. A connection makes poll
 * return at once, so keep connecting until mg_stop has returned.
 */
static void *
waker_main(void *arg)
{
	struct waker *w = arg;

	while (!atomic_load(&w->done)) {
		int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (fd >= 0) {
			connect(fd, (struct sockaddr *) &w->addr,
			    sizeof(w->addr));
			close(fd);
		}
		usleep(20000);
	}
	return NULL;
}

void
api_mg_stop(struct mg_context *mg, const char *host, uint16_t port)
{
	struct waker w;
	pthread_t th;
	int started;

	if (host == NULL || strcmp(host, "0.0.0.0") == 0)
		host = "127.0.0.1";
	memset(&w, 0, sizeof(w));
	w.addr.sin_family = AF_INET;
	w.addr.sin_port = htons(port);
	started = inet_pton(AF_INET, host, &w.addr.sin_addr) == 1 &&
	    pthread_create(&th, NULL, waker_main, &w) == 0;
	mg_stop(mg); /* stops accepting, finishes requests in flight */
	atomic_store(&w.done, 1);
	if (started)
		pthread_join(th, NULL);
}

/* Stop our civetweb (behind the TLS front, it listens on loopback). */
static void
http_stop(struct api_server *s)
{
	api_mg_stop(s->mg, s->tls ? "127.0.0.1" : s->cfg.host, s->http_port);
}

void
api_server_stop(api_server *s)
{
	if (s == NULL)
		return;
	api_tls_stop_accepting(s->tls);
	http_stop(s);
	api_tls_stop(s->tls);
	api_metrics_free(s->metrics);
	vdb_free(s);
}
