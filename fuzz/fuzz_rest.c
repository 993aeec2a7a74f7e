/*
 * fuzz_rest.c: one REST request through the real route handlers of
 * api/api_routes.c and api/api_query.c, over a real embedded database.
 *
 * An input is a request line and a body, as a client would send them:
 *
 *   POST collections/places/search?consistency=primary
 *   {"vector": [0, 0], "limit": 3}
 *
 * The line is framed by api_http.c's own code, as on_begin and route_run
 * frame a request: api_route (the path as sent split and routed, each
 * segment decoded once; restricted here to the routes the target names),
 * api_body_parse and api_read_opts_parse; the handler then runs on an
 * api_req built as on_begin builds one. Then what a client would get back
 * is formed: the data printed by api_json_dumps, or the error's status
 * and message.
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
f_write(void *ctx, const char *coll, vecdb_write_op op, vecdb_point *pts,
    const vecdb_point_sparse *sparse, size_t n)
{
	int rv;

	if (api_read_opts()->write_concern > 0)
		return real.write(ctx, coll, op, pts, sparse, n); /* refused */
	if ((rv = real.write_check(ctx, coll, op, pts, sparse, n)) !=
	    VECDB_OK)
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

/* Is the routed request one of the allowed patterns? */
static int
route_allowed(const struct api_route *rt, const char *const *allowed)
{
	for (size_t j = 0; allowed[j] != NULL; j++)
		if (strcmp(allowed[j], rt->pattern) == 0)
			return 1;
	return 0;
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

/* Run one request on the native routes or (qdrant) Qdrant's. */
static int
rest_run(const uint8_t *d, size_t n, const char *const *allowed, int qdrant)
{
	const uint8_t *nl = memchr(d, '\n', n);
	const struct api_route *rt;
	struct api_req *r;
	char line[API_PATH_MAX], *path, *qs, why[256];
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
	r->qdrant = qdrant;
	r->routes = qdrant ? api_qdrant_routes : api_routes;
	r->n_routes = qdrant ? api_qdrant_n_routes : api_n_routes;
	if (api_route(r, line, path, why, sizeof(why)) != 0 ||
	    !route_allowed(rt = &r->routes[r->route], allowed))
		goto out;
	if (rt->body == API_BODY_JSON && api_body_parse(r, (const char *) nl
	    + 1, n - ll - 1, why, sizeof(why)) != 0)
		goto out;
	vdb_err_clear();
	if (qdrant)
		api_read_opts_reset();
	if ((rv = qdrant ? api_qdrant_prepare(r) : api_read_opts_parse(r,
	    qs)) == VECDB_OK) {
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

int
fz_rest_run(const uint8_t *d, size_t n, const char *const *allowed)
{
	return rest_run(d, n, allowed, 0);
}

int
fz_rest_run_qdrant(const uint8_t *d, size_t n, const char *const *allowed)
{
	return rest_run(d, n, allowed, 1);
}
