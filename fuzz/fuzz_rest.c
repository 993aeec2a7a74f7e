/*
 * fuzz_rest.c: one REST request through the real route handlers of
 * api/api_routes.c and api/api_query.c, over a real embedded database.
 *
 * An input is a request line and a body, as a client would send them:
 *
 *   POST collections/places/search?consistency=primary
 *   {"vector": [0, 0], "limit": 3}
 *
 * The line picks a route of api_routes[] as api_http.c's on_begin does:
 * the path as sent split on '/', matched segment by segment (restricted
 * to the routes the target names), then each segment decoded once by
 * api_httpd.c's httpd_url_decode and refused if it decodes to a NUL, a
 * '/' or "..". The body is parsed as body_parse_json does (an empty body
 * is {}, the same depth limit, then api_json_loadb with duplicate keys
 * refused, anything but an object refused), the read options come from the query
 * (httpd_query_var) and the body as read_opts_parse takes them, and the
 * handler runs on an api_req built as on_begin builds one. Then what a
 * client would get back is formed: the data printed by api_json_dumps, or
 * the error's status and message.
 *
 * That framing is static in api_http.c, which another branch is
 * changing: it is mirrored here, a few lines a step, and is stricter in
 * one place (a segment with a byte above 0x7f is refused outright rather
 * than checked as UTF-8), so that the handlers never see a request the
 * server would refuse.
 *
 * The backend is api_backend_local's over the seeded database, with the
 * calls that would change it swapped so that every input meets the same
 * database: writes go through vecdb_write_check (every check of the write,
 * rolled back), a delete only counts the points it would delete, and a
 * collection or payload index that a request creates is dropped again
 * after the handler.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api_impl.h"
#include "fuzz.h"
#include "fuzz_rest.h"

static vecdb *db;
static struct api_backend real, fake;
static api_server *srv;
static char created_coll[VECDB_NAME_MAX + 1];   /* to drop after a request */
static char created_ix_coll[VECDB_NAME_MAX + 1];
static char created_ix_field[VECDB_FIELD_NAME_MAX + 1];
static uint64_t next_uuid;

/* ===== The backend ===== */

/* write -> write_check; ids the engine would assign get a UUID here. */
static int
f_write(void *ctx, const char *coll, int op, vecdb_point *pts, size_t n)
{
	int rv;

	if (api_read_opts()->write_concern > 0)
		return real.write(ctx, coll, op, pts, n); /* its own refusal */
	if ((rv = real.write_check(ctx, coll, op, pts, n)) != VECDB_OK)
		return rv;
	for (size_t i = 0; i < n; i++) {
		if (pts[i].id.kind != VECDB_ID_NONE)
			continue;
		pts[i].id.kind = VECDB_ID_UUID;
		memset(pts[i].id.uuid, 0, 16);
		memcpy(pts[i].id.uuid + 8, &next_uuid, 8);
		next_uuid++;
	}
	return VECDB_OK;
}

/* delete -> how many of the ids a delete would find. */
static int
f_delete(void *ctx, const char *coll, const vecdb_id *ids, size_t n,
    size_t *deleted)
{
	vecdb_collection_config c;
	vecdb_collection_stats st;
	vecdb_record *rec;
	size_t found = 0;
	int rv;

	if ((rv = real.collection_get(ctx, coll, &c, &st)) != VECDB_OK)
		return rv;
	for (size_t i = 0; i < n; i++) {
		if ((rv = real.get(ctx, coll, &ids[i], &rec)) == VECDB_OK) {
			vecdb_record_free(rec);
			found++;
		} else if (rv != VECDB_ENOTFOUND) {
			return rv;
		}
	}
	*deleted = found;
	return VECDB_OK;
}

/* collection_create: real, remembered to be dropped after the request. */
static int
f_collection_create(void *ctx, const vecdb_collection_config *c)
{
	int rv = real.collection_create(ctx, c);

	if (rv == VECDB_OK)
		snprintf(created_coll, sizeof(created_coll), "%s", c->name);
	return rv;
}

/* payload_index_create: real, remembered to be dropped after. */
static int
f_pindex_create(void *ctx, const char *coll, const char *field,
    vecdb_field_schema schema)
{
	int rv = real.payload_index_create(ctx, coll, field, schema);

	if (rv == VECDB_OK) {
		snprintf(created_ix_coll, sizeof(created_ix_coll), "%s", coll);
		snprintf(created_ix_field, sizeof(created_ix_field), "%s",
		    field);
	}
	return rv;
}

/* Refuse what would change the database and no JSON route needs. */
static int
f_refuse(void)
{
	return vdb_err(VECDB_EINVAL, "not in the fuzz harness");
}

/* collection_delete: refused (no JSON route deletes). */
static int
f_coll_delete(void *ctx, const char *name)
{
	(void) ctx;
	(void) name;
	return f_refuse();
}

/* payload_index_delete: refused (DELETE .../index/:field is not fuzzed). */
static int
f_pindex_delete(void *ctx, const char *coll, const char *field)
{
	(void) ctx;
	(void) coll;
	(void) field;
	return f_refuse();
}

/* Undo what the request created. */
static void
undo(void)
{
	if (created_ix_coll[0] != '\0' && vecdb_payload_index_delete(db,
	    created_ix_coll, created_ix_field) != VECDB_OK)
		abort();
	if (created_coll[0] != '\0' &&
	    vecdb_collection_delete(db, created_coll) != VECDB_OK)
		abort();
	created_coll[0] = created_ix_coll[0] = '\0';
}

/* atexit: stop the server and close the database. */
static void
rest_fini(void)
{
	api_server_stop(srv);
	vecdb_close(db);
}

void
fz_rest_init(void)
{
	struct api_server_config sc;

	fz_init();
	db = fz_db_open(fz_tmpdir("rest"));
	fz_db_seed(db);
	api_backend_local_init(&real, db);
	fake = real;
	fake.write = f_write;
	fake.delete = f_delete;
	fake.collection_create = f_collection_create;
	fake.collection_delete = f_coll_delete;
	fake.payload_index_create = f_pindex_create;
	fake.payload_index_delete = f_pindex_delete;
	/* A real server only for what handlers ask of it (metrics, config):
	 * requests come in through the function below, not its port. */
	memset(&sc, 0, sizeof(sc));
	sc.host = "127.0.0.1";
	sc.threads = 1;
	if (api_server_start(&sc, &fake, &srv) != VECDB_OK)
		abort();
	atexit(rest_fini);
}

/* ===== One request ===== */

/* api_http.c's path_split: the path as sent, split on '/'. */
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

/* api_http.c's path_decode, refusing any byte above 0x7f. */
static int
path_decode(struct api_req *r)
{
	size_t off = 0;

	for (size_t i = 0; i < r->nsegs; i++) {
		const char *raw = r->segs[i];
		char *out = r->dec + off;
		int n = httpd_url_decode(raw, strlen(raw), out,
		    sizeof(r->dec) - off);

		if (n < 0 || memchr(out, '\0', (size_t) n) != NULL ||
		    memchr(out, '/', (size_t) n) != NULL ||
		    strstr(out, "..") != NULL || strcmp(out, ".") == 0)
			return -1;
		for (int k = 0; k < n; k++)
			if ((unsigned char) out[k] > 0x7f)
				return -1;
		r->segs[i] = out;
		off += (size_t) n + 1;
	}
	return 0;
}

/* api_http.c's route_match. */
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

/* The route of method + path among the allowed patterns, or NULL. */
static const struct api_route *
route_find(const struct api_req *r, const char *method,
    const char *const *allowed)
{
	for (size_t i = 0; i < api_n_routes; i++) {
		const struct api_route *rt = &api_routes[i];
		int ok = 0;
		for (size_t j = 0; allowed[j] != NULL; j++)
			ok |= strcmp(allowed[j], rt->pattern) == 0;
		if (ok && strcmp(rt->method, method) == 0 &&
		    route_match(r, rt->pattern))
			return rt;
	}
	return NULL;
}

/* api_http.c's body_parse_json: 0 with r->body set. */
static int
body_parse(struct api_req *r, const char *buf, size_t len)
{
	json_error_t err;

	if (len == 0) {
		r->body = json_object();
		return 0;
	}
	if (vdb_json_depth(buf, len) > API_JSON_DEPTH_MAX)
		return -1;
	if ((r->body = api_json_loadb(buf, len, JSON_REJECT_DUPLICATES,
		 &err)) == NULL)
		return -1;
	return json_is_object(r->body) ? 0 : -1;
}

/* "primary" or "any", as api_http.c's consistency_parse. */
static int
consistency(const char *v, int *primary)
{
	if (strcmp(v, "primary") != 0 && strcmp(v, "any") != 0)
		return vdb_err(VECDB_EINVAL, "bad consistency");
	*primary = strcmp(v, "primary") == 0;
	return VECDB_OK;
}

/* api_http.c's read_opts_parse: the query string, then the body. */
static int
read_opts(const struct api_req *r, const char *qs)
{
	struct api_read_opts *o = api_read_opts();
	char buf[32];
	json_t *v;
	int n;

	api_read_opts_reset();
	if ((n = httpd_query_var(qs, "consistency", buf, sizeof(buf))) == -2 ||
	    (n >= 0 && consistency(buf, &o->primary) != VECDB_OK))
		return VECDB_EINVAL;
	if ((n = httpd_query_var(qs, "allow_partial", buf, sizeof(buf))) ==
	    -2 || (n >= 0 && strcmp(buf, "true") != 0 &&
	    strcmp(buf, "false") != 0))
		return VECDB_EINVAL;
	if (n >= 0)
		o->allow_partial = strcmp(buf, "true") == 0;
	if (!json_is_object(r->body))
		return VECDB_OK;
	if ((v = json_object_get(r->body, "consistency")) != NULL &&
	    (!json_is_string(v) || consistency(json_string_value(v),
	    &o->primary) != VECDB_OK))
		return VECDB_EINVAL;
	if ((v = json_object_get(r->body, "write_concern")) != NULL) {
		if (!json_is_integer(v) || json_integer_value(v) < 0 ||
		    json_integer_value(v) > API_WRITE_CONCERN_MAX)
			return VECDB_EINVAL;
		o->write_concern = (uint32_t) json_integer_value(v);
	}
	return api_get_bool(r->body, "allow_partial", o->allow_partial,
	    &o->allow_partial);
}

/* What the client gets: the data as text, or the error envelope. */
static void
respond(int rv, json_t *data)
{
	char msg[512];
	const char *code;
	char *s;

	if (rv == API_RESPONDED)
		return;
	if (rv != VECDB_OK) {
		vdb_err_save(msg, sizeof(msg));
		(void) api_status_of(rv, &code);
		data = json_pack("{s:b, s:{s:s, s:s}}", "success", 0, "error",
		    "code", code, "message", msg);
	}
	s = api_json_dumps(data, JSON_COMPACT | JSON_REAL_PRECISION(9));
	free(s);
	json_decref(data);
}

int
fz_rest_run(const uint8_t *d, size_t n, const char *const *allowed)
{
	const uint8_t *nl = memchr(d, '\n', n);
	const struct api_route *rt;
	struct api_req *r;
	char line[API_PATH_MAX], *path, *qs;
	json_t *data = NULL;
	size_t ll;
	int rv;

	if (nl == NULL || (ll = (size_t) (nl - d)) >= sizeof(line))
		return 0;
	memcpy(line, d, ll);
	line[ll] = '\0';
	if (strlen(line) != ll || (path = strchr(line, ' ')) == NULL)
		return 0;
	*path++ = '\0';
	if ((qs = strchr(path, '?')) != NULL)
		*qs++ = '\0';
	/* api_req is large (two path buffers): on the heap, as httpd's
	 * per-request storage is */
	if ((r = calloc(1, sizeof(*r))) == NULL)
		abort();
	r->b = &fake;
	r->srv = srv;
	r->route = api_n_routes;
	if (path_split(r, path) != 0 ||
	    (rt = route_find(r, line, allowed)) == NULL ||
	    path_decode(r) != 0)
		goto out;
	r->route = (size_t) (rt - api_routes);
	if (rt->body == API_BODY_JSON &&
	    body_parse(r, (const char *) nl + 1, n - ll - 1) != 0)
		goto out;
	vdb_err_clear();
	if ((rv = read_opts(r, qs)) == VECDB_OK) {
		if (rt->writes)
			api_read_opts()->primary = 1;
		rv = rt->fn(r, &data);
	}
	respond(rv, data);
	undo();
out:
	json_decref(r->body);
	free(r);
	return 0;
}
