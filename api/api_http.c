/*
 * api_http.c: the REST front end on our HTTP server (api_httpd.c):
 * routing on the path as sent, authentication, body limits, the response
 * envelope, request logging.
 */
#include <errno.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "api_impl.h"

struct api_server {
	struct httpd *h;
	const struct api_route *routes; /* this listener's API */
	size_t n_routes;
	const char **route_names;       /* metric labels: the patterns, */
	const char **route_methods;     /* then "unmatched" / "any" */
	struct api_server_config cfg;   /* strings borrowed from caller */
	const struct api_backend *b;
	struct api_metrics *metrics;
	uint16_t port;
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

void
api_server_http_stats(struct api_server *s, struct httpd_stats *out)
{
	httpd_stats(s->h, out);
}

double
api_server_uptime(struct api_server *s)
{
	return (double) (vdb_now_ms() - s->started_ms) / 1000.0;
}

int
api_h_metrics(struct api_req *r, json_t **data)
{
	struct api_server *s = r->srv;
	struct httpd_stats hs;
	char *text;

	(void) data;
	httpd_stats(s->h, &hs);
	text = api_metrics_render(s->metrics, r->b, s->route_names,
	    s->route_methods, s->n_routes + 1, api_server_uptime(s), &hs);
	if (text == NULL)
		return vdb_err(VECDB_ENOMEM, "out of memory");
	api_send_text(r, 200, "text/plain; version=0.0.4; charset=utf-8",
	    text, strlen(text));
	free(text);
	return API_RESPONDED;
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
	case VECDB_EUNAVAILABLE:
	case VECDB_ELOCKED: *code = "UNAVAILABLE"; return 503;
	case VECDB_ETIMEDOUT: *code = "DEADLINE_EXCEEDED"; return 504;
	default: *code = "INTERNAL"; return 500;
	}
}

double
api_req_seconds(const struct api_req *r)
{
	return vdb_now_s() - r->t0s;
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
	api_req_status(r, status);
	httpd_respond(r->h, (unsigned) status, type, body, len);
}

void
api_send_text(struct api_req *r, int status, const char *type,
    const char *body, size_t len)
{
	send_body(r, status, type, body, len);
}

void
api_send_json(struct api_req *r, int status, json_t *root)
{
	/* Nine significant digits print every float32 exactly. */
	char *s = root ? api_json_dumps(root, JSON_COMPACT |
			     JSON_REAL_PRECISION(9)) : NULL;

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
void
api_send_error_status(struct api_req *r, int status, const char *code,
    const char *msg)
{
	if (r->qdrant)
		api_send_json(r, status, json_pack("{s:{s:s}, s:f}", "status",
		    "error", msg, "time", api_req_seconds(r)));
	else
		api_send_json(r, status, json_pack("{s:b, s:{s:s, s:s}}",
		    "success", 0, "error", "code", code, "message", msg));
}

void
api_send_error(struct api_req *r, int err, const char *msg)
{
	const char *code;
	int status = api_status_of(err, &code);

	api_send_error_status(r, status, code, msg && *msg ? msg :
	    vecdb_strerror(err));
}

/* ===== Requests ===== */

/* Is s[0..n) well-formed UTF-8 (no overlongs, surrogates, > U+10FFFF)? */
static int
utf8_valid(const unsigned char *s, size_t n)
{
	size_t i = 0;

	while (i < n) {
		unsigned c = s[i], need, cp, min;
		if (c < 0x80) {
			i++;
			continue;
		}
		if ((c & 0xe0) == 0xc0) {
			need = 1, cp = c & 0x1f, min = 0x80;
		} else if ((c & 0xf0) == 0xe0) {
			need = 2, cp = c & 0x0f, min = 0x800;
		} else if ((c & 0xf8) == 0xf0) {
			need = 3, cp = c & 0x07, min = 0x10000;
		} else {
			return 0;
		}
		if (i + need >= n)
			return 0;
		for (unsigned k = 1; k <= need; k++) {
			if ((s[i + k] & 0xc0) != 0x80)
				return 0;
			cp = cp << 6 | (s[i + k] & 0x3f);
		}
		if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
			return 0;
		i += need + 1;
	}
	return 1;
}

/*
 * Split the path as sent into its segments (empty ones skipped), without
 * decoding: routes match on these, so no escape can change the route.
 */
static int
path_split(struct api_req *r, const char *path)
{
	size_t len = strlen(path);
	char *save = NULL, *tok;

	if (len >= sizeof(r->raw))
		return -1;
	memcpy(r->raw, path, len + 1);
	r->nsegs = 0;
	for (tok = strtok_r(r->raw, "/", &save); tok != NULL;
	     tok = strtok_r(NULL, "/", &save)) {
		if (r->nsegs == API_MAX_SEGS)
			return -1;
		r->segs[r->nsegs++] = tok;
	}
	return 0;
}

/*
 * Decode each segment once, after routing, into r->dec. A segment that
 * decodes to a '/', a NUL, "..", or bytes that are not UTF-8 names
 * nothing that can exist: 400, with *why saying which.
 */
static int
path_decode(struct api_req *r, char *why, size_t whylen)
{
	size_t off = 0;

	for (size_t i = 0; i < r->nsegs; i++) {
		const char *raw = r->segs[i];
		char *out = r->dec + off;
		int n = httpd_url_decode(raw, strlen(raw), out,
		    sizeof(r->dec) - off);
		const char *bad = NULL;

		if (n < 0)
			bad = "has a malformed %-escape";
		else if (memchr(out, '\0', (size_t) n) != NULL)
			bad = "holds a NUL";
		else if (memchr(out, '/', (size_t) n) != NULL)
			bad = "holds a '/'";
		else if (strstr(out, "..") != NULL || strcmp(out, ".") == 0)
			bad = "holds '..' or is '.'";
		else if (!utf8_valid((const unsigned char *) out, (size_t) n))
			bad = "is not valid UTF-8";
		if (bad != NULL) {
			snprintf(why, whylen, "path segment %zu %s", i + 1,
			    bad);
			return -1;
		}
		r->segs[i] = out;
		off += (size_t) n + 1;
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
route_find(const struct api_req *r, const char *method, int *path_known)
{
	*path_known = 0;
	for (size_t i = 0; i < r->n_routes; i++) {
		if (!route_match(r, r->routes[i].pattern))
			continue;
		*path_known = 1;
		if (strcmp(r->routes[i].method, method) == 0)
			return i;
	}
	return r->n_routes;
}

int
api_route(struct api_req *r, const char *method, const char *path,
    char *why, size_t whylen)
{
	int known;

	if (r->routes == NULL) {
		r->routes = api_routes;
		r->n_routes = api_n_routes;
	}
	r->route = r->n_routes;
	if (path_split(r, path) != 0) {
		snprintf(why, whylen, "no such route");
		return 404;
	}
	if ((r->route = route_find(r, method, &known)) == r->n_routes) {
		snprintf(why, whylen, known ? "method not allowed on this "
		    "route" : "no such route");
		return known ? 405 : 404;
	}
	return path_decode(r, why, whylen) != 0 ? 400 : 0;
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
presented_key(const struct httpd_req *h)
{
	const char *k = httpd_header(h, "api-key");
	const char *a;

	if (k != NULL)
		return k;
	a = httpd_header(h, "Authorization");
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
	k = presented_key(r->h);
	if (c->api_key != NULL && key_equal(k, c->api_key))
		return 0;
	if (c->read_only_key != NULL && key_equal(k, c->read_only_key)) {
		if (!rt->writes)
			return 0;
		api_send_error_status(r, 403, "PERMISSION_DENIED",
		    "the read-only API key cannot write");
		return -1;
	}
	api_send_error_status(r, 401, "UNAUTHENTICATED", k == NULL ?
	    "missing API key (header api-key or Authorization: Bearer)" :
	    "wrong API key");
	return -1;
}

int
api_body_parse(struct api_req *r, const char *buf, size_t len, char *why,
    size_t whylen)
{
	json_error_t err;

	if (len == 0) {
		r->body = json_object(); /* an empty body is an empty request */
		return 0;
	}
	if (vdb_json_depth(buf, len) > API_JSON_DEPTH_MAX) {
		snprintf(why, whylen, "JSON nesting is deeper than "
		    API_JSON_DEPTH_MAX_STR " levels");
		return -1;
	}
	/* the query vector, read fast: the native API's "vector", Qdrant's
	 * "query" */
	if ((r->body = api_json_loadb_body_key(buf, len, JSON_REJECT_DUPLICATES,
	    r->qdrant ? "query" : "vector", &err)) == NULL) {
		snprintf(why, whylen, "invalid JSON body: %s (line %d, column "
		    "%d)", err.text, err.line, err.column);
		return -1;
	}
	if (!json_is_object(r->body)) {
		snprintf(why, whylen, "the request body must be a JSON object");
		return -1;
	}
	return 0;
}

/* ===== Request threads and long waits ===== */

static _Thread_local struct api_pool *my_pool;

void
api_pool_init(struct api_pool *p, unsigned threads)
{
	p->max = threads / 2 > 0 ? threads / 2 : 1;
	__atomic_store_n(&p->waiting, 0, __ATOMIC_RELAXED);
}

void
api_pool_join(struct api_pool *p)
{
	my_pool = p;
}

int
api_wait_begin(void)
{
	struct api_pool *p = my_pool;
	unsigned n;

	if (p == NULL)
		return 1;
	n = __atomic_load_n(&p->waiting, __ATOMIC_RELAXED);
	do {
		if (n >= p->max)
			return 0;
	} while (!__atomic_compare_exchange_n(&p->waiting, &n, n + 1, 1,
	    __ATOMIC_ACQ_REL, __ATOMIC_RELAXED));
	return 1;
}

void
api_wait_end(void)
{
	if (my_pool != NULL)
		__atomic_fetch_sub(&my_pool->waiting, 1, __ATOMIC_ACQ_REL);
}

unsigned
api_wait_max(void)
{
	return my_pool != NULL ? my_pool->max : 0;
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
int
api_read_opts_parse(const struct api_req *r, const char *qs)
{
	json_t *v;
	char buf[32];
	int rv, n;

	api_read_opts_reset();
	if ((n = httpd_query_var(qs, "consistency", buf, sizeof(buf))) == -2)
		return vdb_err(VECDB_EINVAL, "consistency must be \"primary\" "
		    "or \"any\"");
	if (n >= 0 && (rv = consistency_parse(buf, &read_opts.primary)) !=
	    VECDB_OK)
		return rv;
	if ((n = httpd_query_var(qs, "allow_partial", buf, sizeof(buf))) ==
	    -2 || (n >= 0 && strcmp(buf, "true") != 0 &&
	    strcmp(buf, "false") != 0))
		return vdb_err(VECDB_EINVAL, "allow_partial must be true or "
		    "false");
	if (n >= 0) {
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
	const char *body;
	char msg[512];
	size_t len;
	int rv;

	body = httpd_body(r->h, &len);
	if (rt->body == API_BODY_JSON && api_body_parse(r, body, len, msg,
	    sizeof(msg)) != 0) {
		api_send_error_status(r, 400, "INVALID_ARGUMENT", msg);
		return;
	}
	vdb_err_clear();
	/* Qdrant's consistency and ordering parameters mean other things:
	 * its front end takes the defaults */
	if (r->qdrant) {
		api_read_opts_reset();
		rv = api_qdrant_prepare(r);
	} else {
		rv = api_read_opts_parse(r, httpd_query(r->h));
	}
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
	if (r->qdrant)
		api_send_json(r, 200, json_pack("{s:o, s:s, s:f}", "result",
		    data ? data : json_null(), "status", "ok", "time",
		    api_req_seconds(r)));
	else
		api_send_json(r, 200, envelope_ok(data));
}

/*
 * The headers are in (the server's I/O thread): route on the path as
 * sent, decode its segments, authenticate. A refusal is answered here,
 * before any body is read.
 */
static enum httpd_body
on_begin(void *user, struct httpd_req *h)
{
	struct api_server *srv = user;
	struct api_req *r = httpd_req_data(h);
	char why[128];
	int st;

	r->h = h;
	r->b = srv->b;
	r->srv = srv;
	r->routes = srv->routes;
	r->n_routes = srv->n_routes;
	r->qdrant = srv->cfg.qdrant;
	r->t0 = vdb_now_ms();
	r->t0s = vdb_now_s();
	if ((st = api_route(r, httpd_method(h), httpd_path(h), why,
	    sizeof(why))) != 0) {
		api_send_error_status(r, st, st == 404 ? "NOT_FOUND" : st == 405 ?
		    "UNIMPLEMENTED" : "INVALID_ARGUMENT", why);
	} else if (authorize(r, &r->routes[r->route]) == 0) {
		return r->routes[r->route].body == API_BODY_RAW ?
		    HTTPD_BODY_FILE : HTTPD_BODY_MEMORY;
	}
	return HTTPD_BODY_MEMORY;   /* answered */
}

/* The request is whole (a worker thread): run its route. */
static void
on_serve(void *user, struct httpd_req *h)
{
	struct api_req *r = httpd_req_data(h);

	(void) user;
	route_run(r, &r->routes[r->route]);
}

/* The request is over: log it, free what it kept. */
static void
on_end(void *user, struct httpd_req *h)
{
	struct api_req *r = httpd_req_data(h);

	(void) user;
	json_decref(r->body);
	r->body = NULL;
	if (r->srv == NULL)
		return;   /* refused before routing (connection limits) */
	if (r->status >= 500)
		VDB_LOG_ERROR("HTTP", "%s %s -> %d (%llu ms)", httpd_method(h),
		    httpd_path(h), r->status,
		    (unsigned long long) (vdb_now_ms() - r->t0));
	else
		VDB_LOG_DEBUG("HTTP", "%s %s -> %d (%llu ms)", httpd_method(h),
		    httpd_path(h), r->status,
		    (unsigned long long) (vdb_now_ms() - r->t0));
}

int
api_server_start(const struct api_server_config *cfg,
    const struct api_backend *b, api_server **out)
{
	struct httpd_config hc;
	struct api_server *srv;
	int rv;

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
	srv->routes = cfg->qdrant ? api_qdrant_routes : api_routes;
	srv->n_routes = cfg->qdrant ? api_qdrant_n_routes : api_n_routes;
	srv->route_names = vdb_calloc(srv->n_routes + 1, sizeof(char *));
	srv->route_methods = vdb_calloc(srv->n_routes + 1, sizeof(char *));
	if (srv->route_names == NULL || srv->route_methods == NULL ||
	    (srv->metrics = api_metrics_new(srv->n_routes + 1)) == NULL) {
		vdb_free(srv->route_names);
		vdb_free(srv->route_methods);
		vdb_free(srv);
		return vdb_err(VECDB_ENOMEM, "out of memory");
	}
	for (size_t i = 0; i < srv->n_routes; i++) {
		srv->route_names[i] = srv->routes[i].pattern;
		srv->route_methods[i] = srv->routes[i].method;
	}
	srv->route_names[srv->n_routes] = "unmatched";
	srv->route_methods[srv->n_routes] = "any";
	memset(&hc, 0, sizeof(hc));
	hc.name = cfg->qdrant ? "QDRANT" : "HTTP";
	hc.host = srv->cfg.host;
	hc.port = srv->cfg.port;
	hc.tls_cert = srv->cfg.tls_cert;
	hc.tls_key = srv->cfg.tls_key;
	hc.threads = srv->cfg.threads;
	hc.max_conns = (unsigned) srv->cfg.conn.max_conns;
	hc.max_conns_per_ip = (unsigned) srv->cfg.conn.max_conns_per_ip;
	hc.header_timeout_ms = (unsigned) srv->cfg.conn.header_timeout_ms;
	hc.body_timeout_ms = (unsigned) srv->cfg.conn.body_timeout_ms;
	hc.idle_timeout_ms = (unsigned) srv->cfg.conn.idle_timeout_ms;
	hc.max_body = srv->cfg.max_body;
	hc.tmp_dir = srv->cfg.tmp_dir;
	hc.req_size = sizeof(struct api_req);
	hc.begin = on_begin;
	hc.serve = on_serve;
	hc.end = on_end;
	hc.user = srv;
	if ((rv = httpd_start(&hc, &srv->h)) != VECDB_OK) {
		api_metrics_free(srv->metrics);
		vdb_free(srv->route_names);
		vdb_free(srv->route_methods);
		vdb_free(srv);
		return rv;
	}
	srv->port = httpd_port(srv->h);
	*out = srv;
	return VECDB_OK;
}

int
api_qdrant_start(const char *prog, const struct api_server_config *native,
    uint16_t port, int port_set, const struct api_backend *b,
    api_server **out)
{
	struct api_server_config qc = *native;

	*out = NULL;
	if (port == 0)
		return 0;
	qc.port = port;
	qc.qdrant = 1;
	if (api_server_start(&qc, b, out) == VECDB_OK)
		return 0;
	if (port_set) {
		fprintf(stderr, "%s: Qdrant API: %s\n", prog, vecdb_errmsg());
		return -1;
	}
	VDB_LOG_WARN("HTTP", "Qdrant API off: %s (--qdrant-port sets another "
	    "port, 0 turns it off)", vecdb_errmsg());
	return 0;
}

uint16_t
api_server_port(const api_server *s)
{
	return s->port;
}

void
api_server_stop(api_server *s)
{
	if (s == NULL)
		return;
	httpd_stop(s->h);
	api_metrics_free(s->metrics);
	vdb_free(s->route_names);
	vdb_free(s->route_methods);
	vdb_free(s);
}
