/*
 * api_qdrant.c: Qdrant's REST API (1.x), served by a listener of its own
 * (`--qdrant-port`, 6333 by default) over the same backend as the native
 * API, so that existing Qdrant clients work unchanged, on `vecdb serve`
 * and on a router alike.
 *
 * A request is translated into the native front end's shapes and calls
 * (points through api_points_from_json, queries through api_query_run);
 * the answer comes back in Qdrant's envelope, {"result", "status": "ok",
 * "time"} (api_http.c), with Qdrant's models: scores as Qdrant reports
 * them, payload and vector selectors, named vectors as objects.
 * This file holds the service, collection, point and payload routes and
 * the route table; api_qdrant_query.c the searches. docs/QDRANT.md lists
 * every route and what we do with it.
 */
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <openssl/sha.h>

#include "api_impl.h"
#include "api_qdrant.h"

#define SEG_COLL 1   /* collections/:c/... */
#define PAGE 1000    /* points a filter-selected update reads at once */
#define QD_EF_CONSTRUCT 100 /* Qdrant's default ef_construct */

/* ===== Collection settings, cached ===== */

/*
 * A score depends on the metric of the vector searched, which a request
 * does not carry: the front end keeps each collection's config for a
 * moment rather than asking the backend (through a router, every shard)
 * on every search. Creating, deleting or changing a collection here
 * forgets it at once; a change made through another front end is seen
 * within QD_CACHE_MS.
 */
#define QD_CACHE 64
#define QD_CACHE_MS 1000

static struct {
	vecdb_collection_config cfg;
	uint64_t at;        /* ms; 0: free */
} cache[QD_CACHE];
static pthread_mutex_t cache_lock = PTHREAD_MUTEX_INITIALIZER;
static unsigned cache_next;

int
qd_config(struct api_req *r, const char *coll, vecdb_collection_config *cfg)
{
	vecdb_collection_stats st;
	uint64_t now = vdb_now_ms();
	int rv;

	pthread_mutex_lock(&cache_lock);
	for (unsigned i = 0; i < QD_CACHE; i++)
		if (cache[i].at != 0 && now - cache[i].at < QD_CACHE_MS &&
		    strcmp(cache[i].cfg.name, coll) == 0) {
			*cfg = cache[i].cfg;
			pthread_mutex_unlock(&cache_lock);
			return VECDB_OK;
		}
	pthread_mutex_unlock(&cache_lock);
	if ((rv = r->b->collection_get(r->b->ctx, coll, cfg, &st)) !=
	    VECDB_OK)
		return rv;
	pthread_mutex_lock(&cache_lock);
	cache[cache_next].cfg = *cfg;
	cache[cache_next].at = now ? now : 1;
	cache_next = (cache_next + 1) % QD_CACHE;
	pthread_mutex_unlock(&cache_lock);
	return VECDB_OK;
}

/* Forget what the cache holds of a collection. */
static void
qd_forget(const char *coll)
{
	pthread_mutex_lock(&cache_lock);
	for (unsigned i = 0; i < QD_CACHE; i++)
		if (strcmp(cache[i].cfg.name, coll) == 0)
			cache[i].at = 0;
	pthread_mutex_unlock(&cache_lock);
}

/* ===== Names ===== */

static const char *const distances[] = { "Cosine", "Euclid", "Dot",
	"Manhattan" };

/* A Qdrant distance name into *m. */
static int
distance_from_json(const json_t *j, const char *where, vecdb_metric *m)
{
	const char *s = json_string_value(j);

	for (int i = 0; s != NULL && i < 4; i++)
		if (strcmp(s, distances[i]) == 0) {
			*m = (vecdb_metric) i;
			return VECDB_OK;
		}
	return vdb_err(VECDB_EINVAL, "%s.distance must be one of Cosine, "
	    "Euclid, Dot, Manhattan", where);
}

/* ===== Payload and vector selectors ===== */

/* The value at a dotted path of obj, or NULL. */
static json_t *
path_get(json_t *obj, const char *path)
{
	char buf[VECDB_FIELD_NAME_MAX + 1], *save = NULL, *seg;
	json_t *cur = obj;

	snprintf(buf, sizeof(buf), "%s", path);
	for (seg = strtok_r(buf, ".", &save); seg != NULL && cur != NULL;
	    seg = strtok_r(NULL, ".", &save))
		cur = json_is_object(cur) ? json_object_get(cur, seg) : NULL;
	return cur;
}

/* The object at a dotted path of obj, made (or replaced, where a value
 * that is not an object stands in the way) when absent. */
static json_t *
path_make(json_t *obj, const char *path)
{
	char buf[VECDB_FIELD_NAME_MAX + 1], *save = NULL, *seg;
	json_t *cur = obj;

	snprintf(buf, sizeof(buf), "%s", path);
	for (seg = strtok_r(buf, ".", &save); seg != NULL && cur != NULL;
	    seg = strtok_r(NULL, ".", &save)) {
		json_t *next = json_object_get(cur, seg);
		if (!json_is_object(next)) {
			next = json_object();
			if (json_object_set_new(cur, seg, next) != 0)
				return NULL;
		}
		cur = next;
	}
	return cur;
}

/* Set the value at a dotted path of obj (a reference is taken). */
static void
path_set(json_t *obj, const char *path, json_t *v)
{
	const char *dot = strrchr(path, '.');
	char parent[VECDB_FIELD_NAME_MAX + 1];
	json_t *p = obj;

	if (dot != NULL) {
		snprintf(parent, sizeof(parent), "%.*s", (int) (dot - path),
		    path);
		p = path_make(obj, parent);
	}
	if (p != NULL)
		json_object_set(p, dot ? dot + 1 : path, v);
}

/* Remove the value at a dotted path of obj. */
static void
path_del(json_t *obj, const char *path)
{
	const char *dot = strrchr(path, '.');
	char parent[VECDB_FIELD_NAME_MAX + 1];
	json_t *p = obj;

	if (dot != NULL) {
		snprintf(parent, sizeof(parent), "%.*s", (int) (dot - path),
		    path);
		p = path_get(obj, parent);
	}
	if (json_is_object(p))
		json_object_del(p, dot ? dot + 1 : path);
}

/* A list of key strings (include / exclude). */
static int
keys_check(const json_t *a, const char *what)
{
	const json_t *x;
	size_t i;

	if (!json_is_array(a))
		return vdb_err(VECDB_EINVAL, "%s must be a list of keys", what);
	json_array_foreach(a, i, x)
		if (!json_is_string(x) || json_string_length(x) == 0 ||
		    json_string_length(x) > VECDB_FIELD_NAME_MAX)
			return vdb_err(VECDB_EINVAL, "%s[%zu] must be a payload "
			    "key (1 to %d bytes)", what, i,
			    VECDB_FIELD_NAME_MAX);
	return VECDB_OK;
}

int
qd_with_from_json(const json_t *body, int payload_def, struct qd_with *w)
{
	json_t *p = json_object_get(body, "with_payload");
	json_t *v = json_object_get(body, "with_vector");
	json_t *vs = json_object_get(body, "with_vectors");
	int rv;

	memset(w, 0, sizeof(*w));
	w->payload_def = payload_def;
	if (v != NULL && vs != NULL && !json_is_null(v) && !json_is_null(vs))
		return vdb_err(VECDB_EINVAL, "'with_vector' and "
		    "'with_vectors' are the same field: give one");
	if (v == NULL || json_is_null(v))
		v = vs;
	if (p != NULL && !json_is_null(p)) {
		if (json_is_object(p)) {
			json_t *inc = json_object_get(p, "include");
			json_t *exc = json_object_get(p, "exclude");
			if ((inc == NULL) == (exc == NULL) ||
			    json_object_size(p) != 1)
				return vdb_err(VECDB_EINVAL, "'with_payload' as "
				    "an object is {\"include\": [...]} or "
				    "{\"exclude\": [...]}");
			if ((rv = keys_check(inc ? inc : exc, inc ?
			    "with_payload.include" : "with_payload.exclude")))
				return rv;
		} else if (json_is_array(p)) {
			if ((rv = keys_check(p, "with_payload")) != VECDB_OK)
				return rv;
		} else if (!json_is_boolean(p)) {
			return vdb_err(VECDB_EINVAL, "'with_payload' must be "
			    "true, false, a list of keys or {include | "
			    "exclude}");
		}
		w->payload = p;
	}
	if (v != NULL && !json_is_null(v)) {
		const json_t *x;
		size_t i;
		if (json_is_array(v)) {
			json_array_foreach(v, i, x)
				if (!json_is_string(x))
					return vdb_err(VECDB_EINVAL,
					    "'with_vector' must be true, false "
					    "or a list of vector names");
		} else if (!json_is_boolean(v)) {
			return vdb_err(VECDB_EINVAL, "'with_vector' must be true, "
			    "false or a list of vector names");
		}
		w->vector = v;
	}
	return VECDB_OK;
}

int
qd_with_payload(const struct qd_with *w)
{
	if (w->payload == NULL)
		return w->payload_def;
	return !json_is_false(w->payload);
}

int
qd_with_vector(const struct qd_with *w)
{
	return w->vector != NULL && !json_is_false(w->vector);
}

/* A stored payload (compact JSON) as the selector wants it, or NULL. */
static json_t *
payload_out(const char *payload, const struct qd_with *w)
{
	const json_t *spec = w->payload;
	json_t *all, *out, *list, *x;
	size_t i;

	if (!qd_with_payload(w))
		return NULL;
	if (payload != NULL && (spec == NULL || json_is_true(spec)))
		return api_json_raw(payload);   /* whole, as stored */
	all = payload != NULL ? json_loads(payload, 0, NULL) : NULL;
	if (all == NULL)
		all = json_object();
	if (spec == NULL || json_is_true(spec))
		return all;
	if (json_is_object(spec) && (list = json_object_get(spec, "exclude"))) {
		json_array_foreach(list, i, x)
			path_del(all, json_string_value(x));
		return api_json_raw_tree(all);
	}
	list = json_is_array(spec) ? (json_t *) (uintptr_t) spec :
	    json_object_get(spec, "include");
	out = json_object();
	json_array_foreach(list, i, x) {
		json_t *v = path_get(all, json_string_value(x));
		if (v != NULL)
			path_set(out, json_string_value(x), v);
	}
	json_decref(all);
	return api_json_raw_tree(out);
}

/* Is name among the vectors the selector asks for? */
static int
vector_wanted(const struct qd_with *w, const char *name)
{
	const json_t *x;
	size_t i;

	if (json_is_true(w->vector))
		return 1;
	json_array_foreach(w->vector, i, x)
		if (strcmp(json_string_value(x), name) == 0)
			return 1;
	return 0;
}

json_t *
qd_real(float f)
{
	char buf[32];

	/* the shortest decimal that reads back as f, as Qdrant prints its
	 * f32s: 0.05, not 0.0500000007 */
	if (!isfinite(f))
		return json_real(0);
	for (int p = 6; p <= 9; p++) {
		snprintf(buf, sizeof(buf), "%.*g", p, (double) f);
		if (strtof(buf, NULL) == f)
			return json_real(strtod(buf, NULL));
	}
	return json_real((double) f);
}

/* A dense vector as Qdrant returns it: a cosine one normalised. */
static json_t *
dense_out(const float *v, uint32_t dim, vecdb_metric m)
{
	double norm = 0;
	json_t *a;

	if (m == VECDB_COSINE) {
		for (uint32_t i = 0; i < dim; i++)
			norm += (double) v[i] * v[i];
		norm = norm > 0 ? sqrt(norm) : 1;
	} else {
		norm = 1;
	}
	a = json_array();
	for (uint32_t i = 0; a != NULL && i < dim; i++)
		json_array_append_new(a, qd_real((float) (v[i] / norm)));
	return a;
}

/* Is the collection Qdrant's "single unnamed vector" kind? */
static int
unnamed(const vecdb_collection_config *cfg)
{
	return cfg->dimension > 0 && cfg->n_vectors == 0 && cfg->n_sparse == 0;
}

const char *
qd_default_vector(const vecdb_collection_config *c)
{
	return c->dimension == 0 && c->n_vectors > 0 &&
	    strcmp(c->vectors[0].name, QD_DEFAULT) == 0 ? QD_DEFAULT : NULL;
}

/* A vector's name as Qdrant says it: "" for the unnamed one. */
static const char *
qd_name(const char *name)
{
	return strcmp(name, QD_DEFAULT) == 0 ? "" : name;
}

/* A record's vectors as the selector wants them, or NULL. */
static json_t *
vectors_out(const vecdb_record *x, const vecdb_collection_config *cfg,
    const struct qd_with *w)
{
	json_t *o;

	if (!qd_with_vector(w))
		return NULL;
	if (unnamed(cfg))
		return x->vector ? dense_out(x->vector, x->dim, cfg->metric) :
		    NULL;
	o = json_object();
	if (x->vector != NULL && vector_wanted(w, ""))
		json_object_set_new(o, "", dense_out(x->vector, x->dim,
		    cfg->metric));
	for (size_t i = 0; i < x->n_named; i++) {
		const char *name = qd_name(x->named[i].name);
		vecdb_metric m = VECDB_COSINE;
		if (!vector_wanted(w, name))
			continue;
		for (uint32_t k = 0; k < cfg->n_vectors; k++)
			if (strcmp(cfg->vectors[k].name, x->named[i].name) == 0)
				m = cfg->vectors[k].metric;
		json_object_set_new(o, name, dense_out(x->named[i].data,
		    x->named[i].dim, m));
	}
	for (size_t i = 0; i < x->n_sparse; i++) {
		const vecdb_sparse_record *s = &x->sparse[i];
		json_t *ix = json_array(), *va = json_array();
		if (!vector_wanted(w, s->name)) {
			json_decref(ix);
			json_decref(va);
			continue;
		}
		for (uint32_t j = 0; j < s->n; j++) {
			json_array_append_new(ix, json_integer(s->indices[j]));
			json_array_append_new(va, qd_real(s->values[j]));
		}
		json_object_set_new(o, s->name, json_pack("{s:o, s:o}",
		    "indices", ix, "values", va));
	}
	/* the unnamed vector alone is given as it is, not in a map, as
	 * Qdrant gives it */
	if (json_object_size(o) == 1 && json_object_get(o, "") != NULL) {
		json_t *v = json_incref(json_object_get(o, ""));
		json_decref(o);
		return v;
	}
	return o;
}

json_t *
qd_record_json(const vecdb_record *x, const vecdb_collection_config *cfg,
    const struct qd_with *w, int scored)
{
	json_t *o = json_pack("{s:o}", "id", api_id_to_json(&x->id));
	json_t *p, *v;

	if (o == NULL)
		return NULL;
	if (scored) {
		/* the engine keeps no per-point version: 0, which Qdrant's
		 * models require and its clients do not interpret */
		json_object_set_new(o, "version", json_integer(0));
		json_object_set_new(o, "score", qd_real(x->score));
	}
	if ((p = payload_out(x->payload, w)) != NULL)
		json_object_set_new(o, "payload", p);
	if ((v = vectors_out(x, cfg, w)) != NULL)
		json_object_set_new(o, "vector", v);
	return o;
}

/* ===== Errors and results ===== */

/* The result of a write: Qdrant's UpdateResult. Writes are applied when
 * they are answered, whatever ?wait= says. */
static json_t *
update_result(void)
{
	static atomic_uint_fast64_t op;

	return json_pack("{s:I, s:s}", "operation_id", (json_int_t)
	    atomic_fetch_add(&op, 1), "status", "completed");
}

/* A route of Qdrant's that vecdb does not serve: 501, saying so. */
static int
h_unsupported(struct api_req *r, json_t **data)
{
	char msg[256];

	(void) data;
	snprintf(msg, sizeof(msg), "%s /%s is not supported by vecdb's "
	    "Qdrant API (docs/QDRANT.md lists what is)", httpd_method(r->h),
	    httpd_path(r->h) + (httpd_path(r->h)[0] == '/'));
	api_send_error_status(r, 501, "UNIMPLEMENTED", msg);
	return API_RESPONDED;
}

/* A field that may be present only as null (or absent). */
static int
null_only(const json_t *body, const char *key, const char *why)
{
	json_t *v = json_object_get(body, key);

	if (v != NULL && !json_is_null(v))
		return vdb_err(VECDB_EINVAL, "'%s' is not supported: %s", key,
		    why);
	return VECDB_OK;
}

/* ===== Service ===== */

/* GET /: the version, outside the envelope, as Qdrant answers it. */
static int
h_root(struct api_req *r, json_t **data)
{
	(void) data;
	api_send_json(r, 200, json_pack("{s:s, s:s, s:s}", "title",
	    "vecdb " VECDB_VERSION " (Qdrant-compatible API)", "version",
	    QD_API_VERSION, "commit", "vecdb-" VECDB_VERSION));
	return API_RESPONDED;
}

/* /healthz, /livez, /readyz answer plain text, as Qdrant's do. */
static int
h_healthz(struct api_req *r, json_t **data)
{
	static const char ok[] = "healthz check passed";
	json_t *shards = NULL;

	(void) data;
	if (strcmp(r->segs[0], "readyz") == 0 && r->b->ready != NULL &&
	    r->b->ready(r->b->ctx, &shards) != VECDB_OK) {
		json_decref(shards);
		api_send_text(r, 503, "text/plain", "not ready", 9);
		return API_RESPONDED;
	}
	api_send_text(r, 200, "text/plain", ok, sizeof(ok) - 1);
	return API_RESPONDED;
}

/* ===== Scans ===== */

/* A visitor of the points a scan or a selector reads. */
typedef int (*visit_fn)(struct api_req *r, const vecdb_record *x,
    json_t *acc, void *arg);

/* Visit every point of coll that matches filter (NULL: all), with its
 * payload (and vectors with with_vector), a page at a time. */
static int
scan_points(struct api_req *r, const char *coll, const json_t *filter,
    int with_vector, visit_fn fn, json_t *acc, void *arg)
{
	vecdb_id start = { VECDB_ID_NONE, 0, { 0 } };
	vecdb_records *res;
	int rv;

	do {
		if ((rv = r->b->scroll(r->b->ctx, coll, &start, PAGE, filter,
		    1, with_vector, &res)) != VECDB_OK)
			return rv;
		for (size_t i = 0; i < res->count && rv == VECDB_OK; i++)
			rv = fn(r, &res->items[i], acc, arg);
		start = res->next;
		if (!res->has_next)
			start.kind = VECDB_ID_NONE;
		vecdb_records_free(res);
	} while (rv == VECDB_OK && start.kind != VECDB_ID_NONE);
	return rv;
}

/* ===== Aliases ===== */

/*
 * Aliases live in a collection of their own, QD_ALIASES, one point each:
 * its id a UUID made of the SHA-256 of the alias name, its payload
 * {alias, collection}. So they persist, replicate and reach every shard
 * behind a router as any point does, with no new storage. A request's
 * collection is looked up in a table of them kept for a moment
 * (QD_CACHE_MS), which this front end refreshes at once when it changes
 * them.
 */
#define QD_ALIASES "qdrant-aliases"

#define QD_ALIASES_MAX 4096

static struct {
	json_t *map;        /* alias -> collection */
	uint64_t at;        /* ms; 0: stale */
} aliases;
static pthread_mutex_t alias_lock = PTHREAD_MUTEX_INITIALIZER;

/* Put one alias point's {alias, collection} into the map acc. */
static int
visit_alias(struct api_req *r, const vecdb_record *x, json_t *acc,
    void *arg)
{
	json_t *p = x->payload ? json_loads(x->payload, 0, NULL) : NULL;
	const char *a = json_string_value(json_object_get(p, "alias"));
	json_t *c = json_object_get(p, "collection");

	(void) r;
	(void) arg;
	if (a != NULL && json_is_string(c))
		json_object_set(acc, a, c);
	json_decref(p);
	return VECDB_OK;
}

/* Read every alias from QD_ALIASES into a new map. */
static int
aliases_read(struct api_req *r, json_t **out)
{
	json_t *map = json_object();
	int rv = scan_points(r, QD_ALIASES, NULL, 0, visit_alias, map, NULL);

	if (rv == VECDB_ENOTFOUND) {
		vdb_err_clear();   /* no alias was ever made */
		rv = VECDB_OK;
	}
	if (rv != VECDB_OK) {
		json_decref(map);
		return rv;
	}
	*out = map;
	return VECDB_OK;
}

/* The alias table (a new reference), read again when stale. */
static int
aliases_get(struct api_req *r, json_t **out)
{
	uint64_t now = vdb_now_ms();
	json_t *map;
	int rv;

	pthread_mutex_lock(&alias_lock);
	if (aliases.map != NULL && aliases.at != 0 &&
	    now - aliases.at < QD_CACHE_MS) {
		*out = json_incref(aliases.map);
		pthread_mutex_unlock(&alias_lock);
		return VECDB_OK;
	}
	pthread_mutex_unlock(&alias_lock);
	if ((rv = aliases_read(r, &map)) != VECDB_OK)
		return rv;
	pthread_mutex_lock(&alias_lock);
	json_decref(aliases.map);
	aliases.map = json_incref(map);
	aliases.at = now ? now : 1;
	pthread_mutex_unlock(&alias_lock);
	*out = map;
	return VECDB_OK;
}

/* Forget the table: the next request reads it again. */
static void
aliases_forget(void)
{
	pthread_mutex_lock(&alias_lock);
	aliases.at = 0;
	pthread_mutex_unlock(&alias_lock);
}

int
api_qdrant_prepare(struct api_req *r)
{
	const char *pat = r->routes[r->route].pattern, *to;
	json_t *map;
	int rv;

	/* the routes on one collection: collections/:c/... */
	if (strncmp(pat, "collections/:c", 14) != 0 || r->nsegs < 2)
		return VECDB_OK;
	if (strcmp(r->segs[SEG_COLL], QD_ALIASES) == 0)
		return vdb_err(VECDB_EINVAL, "`%s` holds the aliases and is not "
		    "a collection of the Qdrant API", QD_ALIASES);
	if ((rv = aliases_get(r, &map)) != VECDB_OK)
		return rv;
	to = json_string_value(json_object_get(map, r->segs[SEG_COLL]));
	if (to != NULL && strlen(to) <= VECDB_NAME_MAX) {
		snprintf(r->alias_to, sizeof(r->alias_to), "%s", to);
		r->segs[SEG_COLL] = r->alias_to;
	}
	json_decref(map);
	return VECDB_OK;
}

/* The point id of an alias: the first 16 bytes of its SHA-256. */
static vecdb_id
alias_id(const char *alias)
{
	unsigned char md[SHA256_DIGEST_LENGTH];
	vecdb_id id = { VECDB_ID_UUID, 0, { 0 } };

	SHA256((const unsigned char *) alias, strlen(alias), md);
	memcpy(id.uuid, md, 16);
	return id;
}

/* Make QD_ALIASES if it is not there. */
static int
aliases_ensure(struct api_req *r)
{
	vecdb_collection_config c;
	int rv;

	vecdb_collection_config_init(&c, QD_ALIASES, 1, VECDB_DOT);
	rv = r->b->collection_create(r->b->ctx, &c);
	if (rv == VECDB_EEXIST) {
		vdb_err_clear();
		return VECDB_OK;
	}
	return rv;
}

/* Write alias -> coll (coll NULL: remove the alias). */
static int
alias_set(struct api_req *r, const char *alias, const char *coll)
{
	vecdb_id id = alias_id(alias);
	static const float zero[1] = { 0 };
	vecdb_point p;
	size_t gone;
	char *pl;
	int rv;

	if (coll == NULL)
		return r->b->delete(r->b->ctx, QD_ALIASES, &id, 1, &gone);
	json_t *o = json_pack("{s:s, s:s}", "alias", alias, "collection",
	    coll);

	pl = o ? json_dumps(o, JSON_COMPACT) : NULL;
	json_decref(o);
	if (pl == NULL)
		return vdb_err(VECDB_ENOMEM, "out of memory");
	p.id = id;
	p.vector = zero;
	p.dim = 1;
	p.payload = pl;
	rv = r->b->write(r->b->ctx, QD_ALIASES, VECDB_WRITE_UPSERT, &p, NULL,
	    1);
	free(pl);
	return rv;
}

/* An alias name: what a collection name may be. */
static int
alias_name_check(const char *a, const char *what)
{
	size_t n = strlen(a);

	if (n == 0 || n > VECDB_NAME_MAX || strspn(a, "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
	    "abcdefghijklmnopqrstuvwxyz0123456789_-") != n)
		return vdb_err(VECDB_EINVAL, "%s '%.64s' must be 1-%d of "
		    "[A-Za-z0-9_-]", what, a, VECDB_NAME_MAX);
	if (strcmp(a, QD_ALIASES) == 0)
		return vdb_err(VECDB_EINVAL, "%s '%s' is reserved", what, a);
	return VECDB_OK;
}

/*
 * POST /collections/aliases {actions: [{create_alias: {collection_name,
 * alias_name}} | {delete_alias: {alias_name}} | {rename_alias:
 * {old_alias_name, new_alias_name}}]}: every action is checked against
 * the table as the earlier ones leave it, then all are written, in turn.
 */
static int
h_aliases_update(struct api_req *r, json_t **data)
{
	static const char *const keys[] = { "actions", "timeout", NULL };
	json_t *acts, *act, *map, *now, *plan;
	const char *k;
	json_t *v;
	size_t i;
	int rv;

	if ((rv = api_check_keys(r->body, keys, NULL)) != VECDB_OK ||
	    (rv = api_get_array(r->body, "actions", 1, QD_ALIASES_MAX,
		 &acts)) != VECDB_OK)
		return rv;
	aliases_forget();
	if ((rv = aliases_get(r, &map)) != VECDB_OK)
		return rv;
	now = json_deep_copy(map);
	json_decref(map);
	json_array_foreach(acts, i, act) {
		const char *kind = json_is_object(act) && json_object_size(act)
		    == 1 ? json_object_iter_key(json_object_iter(act)) : "";
		json_t *b = json_object_get(act, kind);
		const char *a = NULL, *c = NULL, *o = NULL;
		char where[48];

		snprintf(where, sizeof(where), "actions[%zu]", i);
		if (!json_is_object(b)) {
			rv = vdb_err(VECDB_EINVAL, "%s must be {create_alias | "
			    "delete_alias | rename_alias: {...}}", where);
		} else if (strcmp(kind, "create_alias") == 0) {
			static const char *const ck[] = { "collection_name",
				"alias_name", NULL };
			vecdb_collection_config cfg;
			if ((rv = api_check_keys(b, ck, where)) == VECDB_OK &&
			    (rv = api_get_string(b, "collection_name", 1, &c)) ==
			    VECDB_OK && (rv = api_get_string(b, "alias_name", 1,
			    &a)) == VECDB_OK && (rv = alias_name_check(a,
			    "alias_name")) == VECDB_OK &&
			    (rv = qd_config(r, c, &cfg)) == VECDB_ENOTFOUND)
				rv = vdb_err(rv, "Not found: Collection `%s` "
				    "doesn't exist!", c);
			else if (rv == VECDB_OK && qd_config(r, a, &cfg) ==
			    VECDB_OK)
				rv = vdb_err(VECDB_EEXIST, "Wrong input: a "
				    "collection is named `%s`: an alias cannot "
				    "be", a);
			if (rv == VECDB_OK)
				json_object_set_new(now, a, json_string(c));
		} else if (strcmp(kind, "delete_alias") == 0) {
			static const char *const dk[] = { "alias_name", NULL };
			if ((rv = api_check_keys(b, dk, where)) == VECDB_OK &&
			    (rv = api_get_string(b, "alias_name", 1, &a)) ==
			    VECDB_OK && json_object_del(now, a) != 0)
				rv = vdb_err(VECDB_ENOTFOUND, "Not found: Alias "
				    "`%s` doesn't exist!", a);
		} else if (strcmp(kind, "rename_alias") == 0) {
			static const char *const rk[] = { "old_alias_name",
				"new_alias_name", NULL };
			json_t *to;
			if ((rv = api_check_keys(b, rk, where)) == VECDB_OK &&
			    (rv = api_get_string(b, "old_alias_name", 1, &o)) ==
			    VECDB_OK && (rv = api_get_string(b, "new_alias_name",
			    1, &a)) == VECDB_OK && (rv = alias_name_check(a,
			    "new_alias_name")) == VECDB_OK) {
				if ((to = json_object_get(now, o)) == NULL) {
					rv = vdb_err(VECDB_ENOTFOUND, "Not found: "
					    "Alias `%s` doesn't exist!", o);
				} else {
					json_object_set(now, a, to);
					json_object_del(now, o);
				}
			}
		} else {
			rv = vdb_err(VECDB_EINVAL, "%s: unknown action '%.32s' "
			    "(create_alias, delete_alias, rename_alias)", where,
			    kind);
		}
		if (rv != VECDB_OK) {
			json_decref(now);
			return rv;
		}
	}
	/* write the difference between the table and what it becomes */
	if ((rv = aliases_get(r, &map)) == VECDB_OK &&
	    json_object_size(now) > 0)
		rv = aliases_ensure(r);
	plan = json_object();
	json_object_foreach(now, k, v)
		if (!json_equal(json_object_get(map, k), v))
			json_object_set(plan, k, v);
	json_object_foreach(map, k, v)
		if (json_object_get(now, k) == NULL)
			json_object_set_new(plan, k, json_null());
	json_object_foreach(plan, k, v)
		if (rv == VECDB_OK)
			rv = alias_set(r, k, json_string_value(v));
	json_decref(plan);
	json_decref(map);
	json_decref(now);
	aliases_forget();
	if (rv == VECDB_OK)
		*data = json_true();
	return rv;
}

/* {aliases: [{alias_name, collection_name}]}, of coll or (NULL) all. */
static int
aliases_list(struct api_req *r, const char *coll, json_t **data)
{
	json_t *map, *a, *v;
	const char *k;
	int rv;

	if ((rv = aliases_get(r, &map)) != VECDB_OK)
		return rv;
	a = json_array();
	json_object_foreach(map, k, v)
		if (coll == NULL || strcmp(json_string_value(v), coll) == 0)
			json_array_append_new(a, json_pack("{s:s, s:O}",
			    "alias_name", k, "collection_name", v));
	json_decref(map);
	*data = json_pack("{s:o}", "aliases", a);
	return VECDB_OK;
}

static int
h_aliases(struct api_req *r, json_t **data)
{
	return aliases_list(r, NULL, data);
}

static int
h_collection_aliases(struct api_req *r, json_t **data)
{
	vecdb_collection_config c;
	int rv;

	if ((rv = qd_config(r, r->segs[SEG_COLL], &c)) != VECDB_OK)
		return qd_coll_missing(rv, r->segs[SEG_COLL]);
	return aliases_list(r, r->segs[SEG_COLL], data);
}

/* Drop the aliases of a collection that was deleted. */
static int
aliases_drop(struct api_req *r, const char *coll)
{
	json_t *map, *v;
	const char *k;
	int rv;

	aliases_forget();
	if ((rv = aliases_get(r, &map)) != VECDB_OK)
		return rv;
	json_object_foreach(map, k, v)
		if (rv == VECDB_OK && strcmp(json_string_value(v), coll) == 0)
			rv = alias_set(r, k, NULL);
	json_decref(map);
	aliases_forget();
	return rv;
}

/* ===== Collections ===== */

/* hnsw_config {m, ef_construct, ...} into an index config. */
static int
hnsw_from_json(const json_t *h, const char *where, vecdb_index_config *ix)
{
	static const char *const keys[] = { "m", "ef_construct",
		"full_scan_threshold", "max_indexing_threads", "on_disk",
		"payload_m", "inline_storage", NULL };
	uint64_t m, efc;
	int rv;

	if (h == NULL || json_is_null(h))
		return VECDB_OK;
	if (!json_is_object(h))
		return vdb_err(VECDB_EINVAL, "%s must be an object", where);
	if ((rv = api_check_keys(h, keys, where)) != VECDB_OK ||
	    (rv = api_get_uint(h, "m", ix->max_connections, 0,
		 VECDB_HNSW_M_MAX, &m)) != VECDB_OK ||
	    (rv = api_get_uint(h, "ef_construct", ix->ef_construction, 0,
		 VECDB_HNSW_EFC_MAX, &efc)) != VECDB_OK)
		return rv;
	/* m 0 turns Qdrant's graph off; ours is always built */
	if (m != 0 && m < VECDB_HNSW_M_MIN)
		return vdb_err(VECDB_EINVAL, "%s.m must be 0 or %d..%d", where,
		    VECDB_HNSW_M_MIN, VECDB_HNSW_M_MAX);
	if (efc != 0 && efc < VECDB_HNSW_EFC_MIN)
		return vdb_err(VECDB_EINVAL, "%s.ef_construct must be %d..%d",
		    where, VECDB_HNSW_EFC_MIN, VECDB_HNSW_EFC_MAX);
	ix->max_connections = (uint32_t) m;
	ix->ef_construction = (uint32_t) efc;
	return VECDB_OK;
}

/* A datatype name into *t. */
static int
datatype_from_json(const json_t *j, const char *where, vecdb_vtype *t)
{
	const char *s = json_string_value(j);

	if (j == NULL || json_is_null(j))
		return VECDB_OK;
	if (s != NULL && strcmp(s, "float32") == 0)
		*t = VECDB_FLOAT32;
	else if (s != NULL && strcmp(s, "float16") == 0)
		*t = VECDB_FLOAT16;
	else if (s != NULL && strcmp(s, "uint8") == 0)
		*t = VECDB_UINT8;
	else
		return vdb_err(VECDB_EINVAL, "%s.datatype must be float32, "
		    "float16 or uint8", where);
	return VECDB_OK;
}

/*
 * VectorParams {size, distance, hnsw_config?, quantization_config?,
 * on_disk?, datatype?} into the fields of a dense vector; the
 * collection's hnsw_config and quantization_config were copied in first.
 */
static int
vector_params(const json_t *v, const char *where, uint32_t *dim,
    vecdb_metric *m, vecdb_vtype *t, vecdb_index_config *ix,
    vecdb_quant_config *q)
{
	static const char *const keys[] = { "size", "distance", "hnsw_config",
		"quantization_config", "on_disk", "datatype",
		"multivector_config", NULL };
	char path[VECDB_NAME_MAX + 48];
	json_t *qz = json_object_get(v, "quantization_config");
	uint64_t size;
	int rv;

	if (!json_is_object(v))
		return vdb_err(VECDB_EINVAL, "%s must be an object {size, "
		    "distance}", where);
	if ((rv = api_check_keys(v, keys, where)) != VECDB_OK ||
	    (rv = null_only(v, "multivector_config", "vecdb stores one "
		"vector of each name a point")) != VECDB_OK)
		return rv;
	if (json_object_get(v, "size") == NULL)
		return vdb_err(VECDB_EINVAL, "%s.size is required", where);
	if ((rv = api_get_uint(v, "size", 0, 1, VECDB_DIM_MAX, &size)) ||
	    (rv = distance_from_json(json_object_get(v, "distance"), where,
		 m)) ||
	    (rv = datatype_from_json(json_object_get(v, "datatype"), where,
		 t)))
		return rv;
	*dim = (uint32_t) size;
	snprintf(path, sizeof(path), "%s.hnsw_config", where);
	if ((rv = hnsw_from_json(json_object_get(v, "hnsw_config"), path,
	    ix)) != VECDB_OK)
		return rv;
	if (qz != NULL && !json_is_null(qz))
		return api_quant_from_json(qz, *dim, q);
	return VECDB_OK;
}

/* sparse_vectors {name: {modifier?: "idf" | "none", index?}}: the native
 * form once the index settings (Qdrant's storage knobs) are dropped. */
static int
sparse_params(const json_t *sv, vecdb_collection_config *c)
{
	const char *name;
	json_t *native, *x;
	int rv;

	if (!json_is_object(sv))
		return api_sparse_config_from_json(sv, c);
	if ((native = json_deep_copy(sv)) == NULL)
		return vdb_err(VECDB_ENOMEM, "out of memory");
	json_object_foreach(native, name, x)
		if (json_is_object(x))
			json_object_del(x, "index");
	rv = api_sparse_config_from_json(native, c);
	json_decref(native);
	return rv;
}

/* The keys of Qdrant's create body we take and do not act on: sharding,
 * replication, storage and optimizer knobs of its own design. */
static const char *const create_keys[] = { "vectors", "sparse_vectors",
	"hnsw_config", "quantization_config", "shard_number",
	"sharding_method", "replication_factor", "write_consistency_factor",
	"on_disk_payload", "optimizers_config", "wal_config", "init_from",
	"strict_mode_config", "metadata", "timeout", NULL };

/* A CreateCollection body into a collection config. */
static int
create_from_json(const json_t *b, const char *name,
    vecdb_collection_config *c)
{
	json_t *v = json_object_get(b, "vectors"), *x;
	json_t *qz = json_object_get(b, "quantization_config");
	/* Qdrant's defaults: m 16, ef_construct 100 */
	vecdb_index_config ix = { 16, QD_EF_CONSTRUCT, 0, 0 };
	vecdb_quant_config q;
	const char *vname;
	int rv;

	memset(&q, 0, sizeof(q));
	if ((rv = api_check_keys(b, create_keys, NULL)) != VECDB_OK ||
	    (rv = null_only(b, "init_from", "copy a collection with a "
		"snapshot")) != VECDB_OK ||
	    (rv = hnsw_from_json(json_object_get(b, "hnsw_config"),
		"hnsw_config", &ix)) != VECDB_OK)
		return rv;
	if (qz != NULL && !json_is_null(qz) && !json_is_object(qz))
		return vdb_err(VECDB_EINVAL, "'quantization_config' must be an "
		    "object");
	vecdb_collection_config_init(c, name, 0, VECDB_COSINE);
	if (strlen(name) > VECDB_NAME_MAX)
		return vdb_err(VECDB_EINVAL, "collection name is longer than "
		    "%d bytes", VECDB_NAME_MAX);
	if ((rv = sparse_params(json_object_get(b, "sparse_vectors"), c)))
		return rv;
	if (v == NULL || json_is_null(v)) {
		if (c->n_sparse == 0)
			return vdb_err(VECDB_EINVAL, "'vectors' is required "
			    "(or 'sparse_vectors')");
		return VECDB_OK;
	}
	if (!json_is_object(v))
		return vdb_err(VECDB_EINVAL, "'vectors' must be {size, distance} "
		    "or an object of name: {size, distance}");
	if (json_object_get(v, "size") != NULL) {
		c->index = ix;
		if (qz != NULL && !json_is_null(qz) &&
		    (rv = api_quant_from_json(qz, 0, &q)) != VECDB_OK)
			return rv;
		/* the collection's quantization needs the dimension */
		if ((rv = vector_params(v, "vectors", &c->dimension,
		    &c->metric, &c->vector_type, &c->index,
		    &c->quantization)) != VECDB_OK)
			return rv;
		if (qz != NULL && !json_is_null(qz) &&
		    json_object_get(v, "quantization_config") == NULL)
			rv = api_quant_from_json(qz, c->dimension,
			    &c->quantization);
		return rv;
	}
	if (json_object_size(v) > VECDB_VECTORS_MAX + 1)
		return vdb_err(VECDB_EINVAL, "a collection has at most %d named "
		    "vectors", VECDB_VECTORS_MAX);
	json_object_foreach(v, vname, x) {
		char where[VECDB_NAME_MAX + 16];
		uint32_t *dim;
		vecdb_metric *m;
		vecdb_vtype *t;
		vecdb_index_config *vix;
		vecdb_quant_config *vq;

		snprintf(where, sizeof(where), "vectors.%.*s", VECDB_NAME_MAX,
		    vname);
		if (vname[0] == '\0') {
			/* "": Qdrant's name of the default vector */
			dim = &c->dimension, m = &c->metric,
			t = &c->vector_type, vix = &c->index,
			vq = &c->quantization;
		} else {
			vecdb_vector_config *vc;
			if (c->n_vectors == VECDB_VECTORS_MAX)
				return vdb_err(VECDB_EINVAL, "a collection has "
				    "at most %d named vectors",
				    VECDB_VECTORS_MAX);
			vc = &c->vectors[c->n_vectors++];
			if (strlen(vname) > VECDB_NAME_MAX)
				return vdb_err(VECDB_EINVAL, "vector name "
				    "'%.32s..' is longer than %d", vname,
				    VECDB_NAME_MAX);
			snprintf(vc->name, sizeof(vc->name), "%s", vname);
			dim = &vc->dimension, m = &vc->metric,
			t = &vc->vector_type, vix = &vc->index,
			vq = &vc->quantization;
		}
		*vix = ix;
		if ((rv = vector_params(x, where, dim, m, t, vix, vq)) != 0)
			return rv;
		if (qz != NULL && !json_is_null(qz) &&
		    json_object_get(x, "quantization_config") == NULL &&
		    (rv = api_quant_from_json(qz, *dim, vq)) != VECDB_OK)
			return rv;
	}
	return VECDB_OK;
}

/*
 * A collection with an unnamed vector and sparse vectors keeps the
 * unnamed one as the named vector QD_DEFAULT: a Qdrant point may then
 * carry its sparse vectors alone, and a named vector may be absent where
 * the default one may not.
 */
static int
default_to_named(vecdb_collection_config *c)
{
	vecdb_vector_config *v;

	if (c->dimension == 0 || c->n_sparse == 0)
		return VECDB_OK;
	if (c->n_vectors == VECDB_VECTORS_MAX)
		return vdb_err(VECDB_EINVAL, "a collection has at most %d "
		    "dense vectors beside its sparse ones", VECDB_VECTORS_MAX);
	memmove(&c->vectors[1], &c->vectors[0], c->n_vectors *
	    sizeof(c->vectors[0]));
	v = &c->vectors[0];
	memset(v, 0, sizeof(*v));
	snprintf(v->name, sizeof(v->name), "%s", QD_DEFAULT);
	v->dimension = c->dimension;
	v->metric = c->metric;
	v->vector_type = c->vector_type;
	v->index = c->index;
	v->quantization = c->quantization;
	c->n_vectors++;
	c->dimension = 0;
	memset(&c->quantization, 0, sizeof(c->quantization));
	return VECDB_OK;
}

static int
h_collection_create(struct api_req *r, json_t **data)
{
	const char *name = r->segs[SEG_COLL];
	vecdb_collection_config c;
	int rv;

	if ((rv = create_from_json(r->body, name, &c)) != VECDB_OK ||
	    (rv = default_to_named(&c)) != VECDB_OK)
		return rv;
	qd_forget(name);
	if ((rv = r->b->collection_create(r->b->ctx, &c)) == VECDB_EEXIST)
		return vdb_err(rv, "Wrong input: Collection `%s` already "
		    "exists!", name);
	if (rv == VECDB_OK)
		*data = json_true();
	return rv;
}

/* A missing collection in Qdrant's words. */
int
qd_coll_missing(int rv, const char *name)
{
	/* only a missing collection: a missing point or snapshot says so */
	if (rv == VECDB_ENOTFOUND && strstr(vecdb_errmsg(), "ollection") !=
	    NULL)
		return vdb_err(rv, "Not found: Collection `%s` doesn't exist!",
		    name);
	return rv;
}

static int
h_collection_delete(struct api_req *r, json_t **data)
{
	const char *name = r->segs[SEG_COLL];
	int rv = r->b->collection_delete(r->b->ctx, name);

	qd_forget(name);
	if (rv == VECDB_ENOTFOUND) {
		*data = json_false();
		return VECDB_OK;
	}
	/* its aliases go with it, as in Qdrant */
	if (rv == VECDB_OK && (rv = aliases_drop(r, name)) == VECDB_OK)
		*data = json_true();
	return rv;
}

static int
h_collection_list(struct api_req *r, json_t **data)
{
	char **names;
	size_t n;
	json_t *a;
	int rv;

	if ((rv = r->b->collection_list(r->b->ctx, &names, &n)) != VECDB_OK)
		return rv;
	a = json_array();
	for (size_t i = 0; i < n; i++) {
		if (strcmp(names[i], QD_ALIASES) != 0)
			json_array_append_new(a, json_pack("{s:s}", "name",
			    names[i]));
		free(names[i]);
	}
	free(names);
	*data = json_pack("{s:o}", "collections", a);
	return VECDB_OK;
}

static int
h_collection_exists(struct api_req *r, json_t **data)
{
	vecdb_collection_config c;
	vecdb_collection_stats st;
	int rv = r->b->collection_get(r->b->ctx, r->segs[SEG_COLL], &c, &st);

	if (rv != VECDB_OK && rv != VECDB_ENOTFOUND)
		return rv;
	*data = json_pack("{s:b}", "exists", rv == VECDB_OK);
	return VECDB_OK;
}

/* HnswConfig of an index config (our defaults where it says 0). */
static json_t *
hnsw_json(const vecdb_index_config *ix)
{
	return json_pack("{s:i, s:i, s:i, s:i, s:b}", "m",
	    ix->max_connections ? (int) ix->max_connections :
	    VECDB_HNSW_M_DEFAULT, "ef_construct", ix->ef_construction ?
	    (int) ix->ef_construction : VECDB_HNSW_EFC_DEFAULT,
	    "full_scan_threshold", 10000, "max_indexing_threads", 0,
	    "on_disk", 0);
}

/* Qdrant's QuantizationConfig of ours, or null. */
static json_t *
quant_json(const vecdb_quant_config *q, uint32_t dim)
{
	uint32_t seg;

	switch (q->type) {
	case VECDB_QUANT_SCALAR:
		return json_pack("{s:{s:s, s:o?, s:b}}", "scalar", "type",
		    "int8", "quantile", q->quantile > 0 ? json_real(
		    q->quantile) : NULL, "always_ram", q->always_ram);
	case VECDB_QUANT_BINARY:
		return json_pack("{s:{s:b}}", "binary", "always_ram",
		    q->always_ram);
	case VECDB_QUANT_PRODUCT:
		/* Qdrant says how much smaller: 4 bytes a component into
		 * one byte a segment */
		seg = q->segments ? q->segments : (dim + 7) / 8;
		seg = seg ? seg : 1;
		{
			static const char *const cs[] = { "x4", "x8", "x16",
				"x32", "x64" };
			unsigned ratio = 4 * dim / seg, k = 0;
			while (k < 4 && (4u << (k + 1)) <= ratio)
				k++;
			return json_pack("{s:{s:s, s:b}}", "product",
			    "compression", cs[k], "always_ram",
			    q->always_ram);
		}
	default:
		return json_null();
	}
}

/* VectorParams of one dense vector: hnsw_config and quantization_config
 * only where the vector's differ from the collection's (ix0, q0), as
 * Qdrant shows a vector's own overrides only. */
static json_t *
vparams_json(uint32_t dim, vecdb_metric m, vecdb_vtype t,
    const vecdb_index_config *ix, const vecdb_quant_config *q,
    const vecdb_index_config *ix0, const vecdb_quant_config *q0)
{
	static const char *const types[] = { "float32", "float16", "uint8" };
	json_t *o = json_pack("{s:i, s:s, s:b, s:s}", "size", (int) dim,
	    "distance", distances[m], "on_disk", 0, "datatype", types[t]);

	if (o != NULL && (ix->max_connections != ix0->max_connections ||
	    ix->ef_construction != ix0->ef_construction))
		json_object_set_new(o, "hnsw_config", hnsw_json(ix));
	if (o != NULL && q->type != VECDB_QUANT_NONE &&
	    memcmp(q, q0, sizeof(*q)) != 0)
		json_object_set_new(o, "quantization_config",
		    quant_json(q, dim));
	return o;
}

/* The collection's own quantization: its default vector's, or that of
 * the named vector that stands for it. */
static const vecdb_quant_config *
coll_quant(const vecdb_collection_config *c)
{
	return qd_default_vector(c) ? &c->vectors[0].quantization :
	    &c->quantization;
}

/* CollectionParams.vectors: VectorParams, or name: VectorParams. */
static json_t *
vectors_json(const vecdb_collection_config *c)
{
	const vecdb_quant_config *q0 = coll_quant(c);
	json_t *o;

	if (unnamed(c) || (c->dimension > 0 && c->n_vectors == 0))
		return vparams_json(c->dimension, c->metric, c->vector_type,
		    &c->index, &c->quantization, &c->index, q0);
	if (qd_default_vector(c) != NULL && c->n_vectors == 1)
		return vparams_json(c->vectors[0].dimension,
		    c->vectors[0].metric, c->vectors[0].vector_type,
		    &c->vectors[0].index, &c->vectors[0].quantization,
		    &c->index, q0);
	o = json_object();
	if (c->dimension > 0)
		json_object_set_new(o, "", vparams_json(c->dimension,
		    c->metric, c->vector_type, &c->index, &c->quantization,
		    &c->index, q0));
	for (uint32_t i = 0; i < c->n_vectors; i++) {
		const vecdb_vector_config *v = &c->vectors[i];
		json_object_set_new(o, qd_name(v->name), vparams_json(
		    v->dimension, v->metric, v->vector_type, &v->index,
		    &v->quantization, &c->index, q0));
	}
	return o;
}

static const char *const schema_names[] = { "keyword", "integer", "float",
	"bool", "geo" };

/* payload_schema {field: {data_type, points}}. */
static json_t *
payload_schema_json(struct api_req *r, const char *coll)
{
	vecdb_payload_index_info *ix = NULL;
	json_t *o = json_object();
	size_t n = 0;

	if (r->b->payload_index_list(r->b->ctx, coll, &ix, &n) != VECDB_OK)
		return o;
	for (size_t i = 0; i < n; i++)
		json_object_set_new(o, ix[i].field, json_pack("{s:s, s:I}",
		    "data_type", ix[i].schema < 5 ? schema_names[ix[i].schema] :
		    "keyword", "points", (json_int_t) ix[i].entries));
	free(ix);
	return o;
}

static int
h_collection_get(struct api_req *r, json_t **data)
{
	const char *name = r->segs[SEG_COLL];
	vecdb_collection_config c;
	vecdb_collection_stats st;
	json_t *params, *sv;
	uint64_t indexed;
	int rv;

	if ((rv = r->b->collection_get(r->b->ctx, name, &c, &st)) != VECDB_OK)
		return qd_coll_missing(rv, name);
	indexed = st.indexed_count;
	for (uint32_t i = 0; i < c.n_vectors; i++)
		indexed += st.named_indexed[i];
	params = json_pack("{s:o, s:i, s:i, s:i, s:b}", "vectors",
	    c.dimension > 0 || c.n_vectors > 0 ? vectors_json(&c) :
	    json_object(), "shard_number", 1, "replication_factor", 1,
	    "write_consistency_factor", 1, "on_disk_payload", 1);
	if (params != NULL && c.n_sparse > 0) {
		sv = json_object();
		for (uint32_t i = 0; i < c.n_sparse; i++)
			json_object_set_new(sv, c.sparse[i].name,
			    c.sparse[i].modifier == VECDB_SPARSE_IDF ?
			    json_pack("{s:s}", "modifier", "idf") :
			    json_object());
		json_object_set_new(params, "sparse_vectors", sv);
	}
	*data = json_pack("{s:s, s:s, s:I, s:I, s:I, s:i, s:{s:o, s:o, "
	    "s:{s:f, s:i, s:i, s:n, s:n, s:i, s:i, s:n}, s:{s:i, s:i}, s:o}, "
	    "s:o}",
	    "status", st.pending_count == 0 && st.optimizer ==
	    VECDB_OPTIMIZER_IDLE ? "green" : "yellow",
	    "optimizer_status", "ok",
	    "points_count", (json_int_t) st.vector_count,
	    "vectors_count", (json_int_t) st.vector_count,
	    "indexed_vectors_count", (json_int_t) indexed,
	    "segments_count", 1,
	    "config", "params", params, "hnsw_config", hnsw_json(&c.index),
	    "optimizer_config", "deleted_threshold", 0.2,
	    "vacuum_min_vector_number", 1000, "default_segment_number", 0,
	    "max_segment_size", "memmap_threshold", "indexing_threshold", 0,
	    "flush_interval_sec", 5, "max_optimization_threads",
	    "wal_config", "wal_capacity_mb", 32, "wal_segments_ahead", 0,
	    "quantization_config", quant_json(coll_quant(&c), qd_default_vector(
	    &c) ? c.vectors[0].dimension : c.dimension),
	    "payload_schema", payload_schema_json(r, name));
	return *data ? VECDB_OK : vdb_err(VECDB_ENOMEM, "out of memory");
}

/* PATCH: quantization_config; hnsw_config and the optimizer's knobs only
 * as they are. */
static int
h_collection_update(struct api_req *r, json_t **data)
{
	static const char *const keys[] = { "vectors", "optimizers_config",
		"params", "hnsw_config", "quantization_config",
		"sparse_vectors", "strict_mode_config", "metadata", "timeout",
		NULL };
	const char *name = r->segs[SEG_COLL];
	json_t *qz = json_object_get(r->body, "quantization_config");
	vecdb_collection_config c;
	vecdb_index_config ix;
	vecdb_quant_config q;
	int rv;

	if ((rv = api_check_keys(r->body, keys, NULL)) != VECDB_OK ||
	    (rv = qd_config(r, name, &c)) != VECDB_OK)
		return qd_coll_missing(rv, name);
	if ((rv = null_only(r->body, "vectors", "a vector's settings are "
	    "fixed at creation")) || (rv = null_only(r->body,
	    "sparse_vectors", "sparse vectors are fixed at creation")))
		return rv;
	ix = c.index;
	if ((rv = hnsw_from_json(json_object_get(r->body, "hnsw_config"),
	    "hnsw_config", &ix)) != VECDB_OK)
		return rv;
	if ((ix.max_connections != c.index.max_connections &&
	    !(ix.max_connections == VECDB_HNSW_M_DEFAULT &&
	    c.index.max_connections == 0)) || (ix.ef_construction !=
	    c.index.ef_construction && !(ix.ef_construction ==
	    VECDB_HNSW_EFC_DEFAULT && c.index.ef_construction == 0)))
		return vdb_err(VECDB_EINVAL, "hnsw_config cannot be changed "
		    "after creation (only quantization_config can)");
	if (qz != NULL) {
		if (json_is_null(qz)) {
			memset(&q, 0, sizeof(q));
		} else if ((rv = api_quant_from_json(qz, c.dimension, &q)) !=
		    VECDB_OK) {
			return rv;
		}
		qd_forget(name);
		if ((rv = r->b->collection_set_quantization(r->b->ctx, name,
		    &q)) != VECDB_OK)
			return qd_coll_missing(rv, name);
	}
	*data = json_true();
	return VECDB_OK;
}

/* ===== Points ===== */

/*
 * One Qdrant point {id, vector, payload} as a native one {id, vector?,
 * vectors?, payload?}: an unnamed vector (an array) is the default one;
 * an object maps names ("" the default) to dense or sparse vectors.
 */
static json_t *
point_native(const json_t *id, const json_t *vec, const json_t *payload,
    const char *where, int need_vector, const char *dflt)
{
	json_t *o = json_object(), *named = NULL, *x;
	const char *name;

	if (o == NULL)
		return NULL;
	if (id == NULL || json_is_null(id)) {
		json_decref(o);
		vdb_err(VECDB_EINVAL, "%s.id is required", where);
		return NULL;
	}
	json_object_set(o, "id", (json_t *) id);
	if (payload != NULL && !json_is_null(payload))
		json_object_set(o, "payload", (json_t *) payload);
	if (vec == NULL || json_is_null(vec)) {
		if (need_vector) {
			json_decref(o);
			vdb_err(VECDB_EINVAL, "%s.vector is required", where);
			return NULL;
		}
		return o;
	}
	if (json_is_array(vec)) {
		if (dflt != NULL)
			json_object_set_new(o, "vectors", json_pack("{s:O}",
			    dflt, vec));
		else
			json_object_set(o, "vector", (json_t *) vec);
		return o;
	}
	if (!json_is_object(vec)) {
		json_decref(o);
		vdb_err(VECDB_EINVAL, "%s.vector must be a vector or an object "
		    "of name: vector", where);
		return NULL;
	}
	json_object_foreach((json_t *) vec, name, x) {
		if (name[0] == '\0' && dflt == NULL) {
			json_object_set(o, "vector", x);
			continue;
		}
		if (named == NULL)
			named = json_object();
		json_object_set(named, name[0] == '\0' ? dflt : name, x);
	}
	if (named != NULL)
		json_object_set_new(o, "vectors", named);
	return o;
}

/* PointInsertOperations: {points: [...]} or {batch: {ids, vectors,
 * payloads?}} into native point objects. */
static int
upsert_points(const json_t *b, const char *dflt, json_t **out)
{
	static const char *const keys[] = { "points", "batch", "shard_key",
		"update_filter", "update_mode", NULL };
	json_t *pts = json_object_get(b, "points");
	json_t *batch = json_object_get(b, "batch"), *a, *x;
	char where[48];
	size_t i;
	int rv;

	if ((rv = api_check_keys(b, keys, NULL)) != VECDB_OK ||
	    (rv = null_only(b, "shard_key", "vecdb places points by id")) ||
	    (rv = null_only(b, "update_filter", "conditional updates are "
		"not implemented")))
		return rv;
	if ((pts == NULL) == (batch == NULL))
		return vdb_err(VECDB_EINVAL, "give 'points' or 'batch'");
	if ((a = json_array()) == NULL)
		return vdb_err(VECDB_ENOMEM, "out of memory");
	if (pts != NULL) {
		static const char *const pkeys[] = { "id", "vector", "payload",
			NULL };
		if (!json_is_array(pts) || json_array_size(pts) >
		    VECDB_BATCH_MAX) {
			json_decref(a);
			return vdb_err(VECDB_EINVAL, "'points' must be a list of "
			    "at most %d points", VECDB_BATCH_MAX);
		}
		json_array_foreach(pts, i, x) {
			json_t *p;
			snprintf(where, sizeof(where), "points[%zu]", i);
			if (!json_is_object(x) ||
			    api_check_keys(x, pkeys, where) != VECDB_OK ||
			    (p = point_native(json_object_get(x, "id"),
			    json_object_get(x, "vector"), json_object_get(x,
			    "payload"), where, 1, dflt)) == NULL) {
				json_decref(a);
				if (!json_is_object(x))
					return vdb_err(VECDB_EINVAL, "%s must be "
					    "an object", where);
				return VECDB_EINVAL;
			}
			json_array_append_new(a, p);
		}
	} else {
		static const char *const bkeys[] = { "ids", "vectors",
			"payloads", NULL };
		json_t *ids = json_object_get(batch, "ids");
		json_t *vecs = json_object_get(batch, "vectors");
		json_t *pls = json_object_get(batch, "payloads");
		size_t n = json_array_size(ids);

		if (!json_is_object(batch) || (rv = api_check_keys(batch,
		    bkeys, "batch")) != VECDB_OK || !json_is_array(ids) ||
		    n > VECDB_BATCH_MAX || (!json_is_array(vecs) &&
		    !json_is_object(vecs)) || (pls != NULL &&
		    !json_is_null(pls) && (!json_is_array(pls) ||
		    json_array_size(pls) != n)) || (json_is_array(vecs) &&
		    json_array_size(vecs) != n)) {
			json_decref(a);
			return vdb_err(VECDB_EINVAL, "'batch' must be {ids, "
			    "vectors, payloads?}: lists of the same length "
			    "(at most %d), vectors a list or name: list",
			    VECDB_BATCH_MAX);
		}
		for (i = 0; i < n; i++) {
			json_t *v = NULL, *p;
			snprintf(where, sizeof(where), "batch[%zu]", i);
			if (json_is_array(vecs)) {
				v = json_incref(json_array_get(vecs, i));
			} else {
				const char *name;
				json_t *col;
				v = json_object();
				json_object_foreach(vecs, name, col) {
					if (!json_is_array(col) ||
					    json_array_size(col) != n) {
						json_decref(v);
						json_decref(a);
						return vdb_err(VECDB_EINVAL,
						    "batch.vectors.%.64s must be "
						    "a list as long as ids",
						    name);
					}
					json_object_set(v, name,
					    json_array_get(col, i));
				}
			}
			p = point_native(json_array_get(ids, i), v,
			    json_array_get(pls, i), where, 1, dflt);
			json_decref(v);
			if (p == NULL) {
				json_decref(a);
				return VECDB_EINVAL;
			}
			json_array_append_new(a, p);
		}
	}
	*out = a;
	return VECDB_OK;
}

/* Write native point objects. */
static int
write_native(struct api_req *r, vecdb_write_op op, const json_t *arr,
    int flags)
{
	struct api_points p;
	int rv;

	if ((rv = api_points_from_json(arr, flags, &p)) != VECDB_OK)
		return rv;
	rv = api_points_write(r, op, &p);
	api_points_free(&p);
	return qd_coll_missing(rv, r->segs[SEG_COLL]);
}

static int
h_upsert(struct api_req *r, json_t **data)
{
	vecdb_collection_config c;
	json_t *arr = NULL;
	int rv;

	if ((rv = qd_config(r, r->segs[SEG_COLL], &c)) != VECDB_OK)
		return qd_coll_missing(rv, r->segs[SEG_COLL]);
	if ((rv = upsert_points(r->body, qd_default_vector(&c), &arr)) !=
	    VECDB_OK)
		return rv;
	rv = write_native(r, API_UPSERT, arr, 0);
	json_decref(arr);
	if (rv == VECDB_OK)
		*data = update_result();
	return rv;
}

/* A record by id (NULL with VECDB_OK when there is none). */
static int
record_get(struct api_req *r, const vecdb_id *id, vecdb_record **out)
{
	int rv = r->b->get(r->b->ctx, r->segs[SEG_COLL], id, out);

	if (rv == VECDB_ENOTFOUND) {
		/* the collection, or only the point? */
		vecdb_collection_config c;
		*out = NULL;
		return qd_coll_missing(qd_config(r, r->segs[SEG_COLL], &c),
		    r->segs[SEG_COLL]);
	}
	return rv;
}

static int
h_point_get(struct api_req *r, json_t **data)
{
	struct qd_with w = { NULL, 1, NULL };
	vecdb_collection_config c;
	vecdb_record *rec;
	vecdb_id id;
	char buf[VECDB_ID_STRLEN];
	int rv;

	w.vector = json_true();
	if ((rv = api_id_from_str(r->segs[3], &id)) != VECDB_OK ||
	    (rv = qd_config(r, r->segs[SEG_COLL], &c)) != VECDB_OK)
		return qd_coll_missing(rv, r->segs[SEG_COLL]);
	if ((rv = record_get(r, &id, &rec)) != VECDB_OK)
		return rv;
	if (rec == NULL)
		return vdb_err(VECDB_ENOTFOUND, "Not found: No point with id %s "
		    "found", vecdb_id_format(&id, buf));
	*data = qd_record_json(rec, &c, &w, 0);
	json_decref(w.vector);
	vecdb_record_free(rec);
	return VECDB_OK;
}

/* POST /points {ids, with_payload?, with_vector?}: the points there
 * are, in the order asked. */
static int
h_points_retrieve(struct api_req *r, json_t **data)
{
	static const char *const keys[] = { "ids", "with_payload",
		"with_vector", "with_vectors", "shard_key", NULL };
	vecdb_collection_config c;
	struct qd_with w;
	vecdb_id *ids;
	size_t n;
	json_t *arr, *out;
	int rv;

	if ((rv = api_check_keys(r->body, keys, NULL)) ||
	    (rv = api_get_array(r->body, "ids", 1, VECDB_BATCH_MAX, &arr)) ||
	    (rv = qd_with_from_json(r->body, 1, &w)) ||
	    (rv = api_ids_from_json(arr, "ids", &ids, &n)))
		return rv;
	if ((rv = qd_config(r, r->segs[SEG_COLL], &c)) != VECDB_OK) {
		vdb_free(ids);
		return qd_coll_missing(rv, r->segs[SEG_COLL]);
	}
	out = json_array();
	for (size_t i = 0; i < n && rv == VECDB_OK; i++) {
		vecdb_record *rec;
		if ((rv = record_get(r, &ids[i], &rec)) == VECDB_OK &&
		    rec != NULL) {
			json_array_append_new(out, qd_record_json(rec, &c, &w,
			    0));
			vecdb_record_free(rec);
		}
	}
	vdb_free(ids);
	if (rv != VECDB_OK) {
		json_decref(out);
		return rv;
	}
	*data = out;
	return VECDB_OK;
}

/*
 * The points a PointsSelector names: "points" (ids) or "filter" (every
 * point matching it, read through scroll), each visited with its record
 * (payload read, vectors not). Ids that name no point are skipped.
 */

static int
select_points(struct api_req *r, const json_t *b, const char *ids_key,
    visit_fn fn, json_t *acc, void *arg)
{
	json_t *ids = json_object_get(b, ids_key);
	const json_t *filter;
	int rv;

	if ((rv = api_filter_field(b, &filter)) != VECDB_OK)
		return rv;
	if (ids != NULL && json_is_null(ids))
		ids = NULL;
	if ((ids == NULL) == (filter == NULL))
		return vdb_err(VECDB_EINVAL, "give '%s' (ids) or 'filter'",
		    ids_key);
	if (ids != NULL) {
		vecdb_id *list;
		size_t n;
		if (!json_is_array(ids) || json_array_size(ids) >
		    VECDB_BATCH_MAX)
			return vdb_err(VECDB_EINVAL, "'%s' must be a list of at "
			    "most %d ids", ids_key, VECDB_BATCH_MAX);
		if ((rv = api_ids_from_json(ids, ids_key, &list, &n)) != 0)
			return rv;
		for (size_t i = 0; i < n && rv == VECDB_OK; i++) {
			vecdb_record *rec;
			if ((rv = record_get(r, &list[i], &rec)) == VECDB_OK &&
			    rec != NULL) {
				rv = fn(r, rec, acc, arg);
				vecdb_record_free(rec);
			}
		}
		vdb_free(list);
		return rv;
	}
	return qd_coll_missing(scan_points(r, r->segs[SEG_COLL], filter, 0, fn,
	    acc, arg), r->segs[SEG_COLL]);
}

/* Collect ids. */
static int
visit_id(struct api_req *r, const vecdb_record *x, json_t *acc, void *arg)
{
	(void) r;
	(void) arg;
	return json_array_append_new(acc, api_id_to_json(&x->id)) ?
	    vdb_err(VECDB_ENOMEM, "out of memory") : VECDB_OK;
}

/* Delete points by id, in batches the backend takes. */
static int
delete_ids(struct api_req *r, const json_t *ids)
{
	vecdb_id *list;
	size_t n, deleted;
	int rv;

	for (size_t off = 0; off < json_array_size(ids); off += PAGE) {
		json_t *part = json_array();
		for (size_t i = off; i < off + PAGE && i <
		    json_array_size(ids); i++)
			json_array_append(part, json_array_get(ids, i));
		rv = api_ids_from_json(part, "points", &list, &n);
		json_decref(part);
		if (rv != VECDB_OK)
			return rv;
		rv = r->b->delete(r->b->ctx, r->segs[SEG_COLL], list, n,
		    &deleted);
		vdb_free(list);
		if (rv != VECDB_OK)
			return qd_coll_missing(rv, r->segs[SEG_COLL]);
	}
	return VECDB_OK;
}

/* POST /points/delete {points: [ids] | filter: {...}}. */
static int
h_points_delete(struct api_req *r, json_t **data)
{
	static const char *const keys[] = { "points", "filter", "shard_key",
		NULL };
	json_t *ids = json_object_get(r->body, "points"), *found;
	const json_t *filter;
	vecdb_collection_config c;
	int rv;

	if ((rv = api_check_keys(r->body, keys, NULL)) != VECDB_OK ||
	    (rv = api_filter_field(r->body, &filter)) != VECDB_OK)
		return rv;
	if ((rv = qd_config(r, r->segs[SEG_COLL], &c)) != VECDB_OK)
		return qd_coll_missing(rv, r->segs[SEG_COLL]);
	if (ids != NULL && !json_is_null(ids) && filter == NULL) {
		if (!json_is_array(ids))
			return vdb_err(VECDB_EINVAL, "'points' must be a list "
			    "of ids");
		rv = delete_ids(r, ids);
	} else {
		if ((found = json_array()) == NULL)
			return vdb_err(VECDB_ENOMEM, "out of memory");
		if ((rv = select_points(r, r->body, "points", visit_id, found,
		    NULL)) == VECDB_OK)
			rv = delete_ids(r, found);
		json_decref(found);
	}
	if (rv == VECDB_OK)
		*data = update_result();
	return rv;
}

/* ===== Payload ===== */

enum payload_op { PL_SET, PL_OVERWRITE, PL_DELETE, PL_CLEAR };

struct payload_change {
	enum payload_op op;
	const json_t *payload;   /* set, overwrite */
	const char *key;         /* set: under this path */
	const json_t *keys;      /* delete */
};

/*
 * Merge the keys of pl into the objects at a set_payload key path of v:
 * "a.b" (objects made where missing), "a[2].b" (that element of an
 * array), "a[].b" (every element).
 */
static void
merge_at(json_t *v, const char *path, const json_t *pl)
{
	const char *dot, *br;
	char seg[VECDB_FIELD_NAME_MAX + 1];
	json_t *next, *x;
	const char *k;
	size_t n, i;

	if (!json_is_object(v))
		return;
	if (path == NULL || *path == '\0') {
		json_object_foreach((json_t *) pl, k, x)
			json_object_set(v, k, x);
		return;
	}
	dot = strchr(path, '.');
	n = dot ? (size_t) (dot - path) : strlen(path);
	br = memchr(path, '[', n);
	snprintf(seg, sizeof(seg), "%.*s", (int) (br ? (size_t) (br - path) :
	    n), path);
	if (br == NULL) {
		if (!json_is_object(next = json_object_get(v, seg))) {
			next = json_object();
			json_object_set_new(v, seg, next);
		}
		merge_at(next, dot ? dot + 1 : NULL, pl);
		return;
	}
	/* name[N] or name[]: into an array that is there */
	if (!json_is_array(next = json_object_get(v, seg)))
		return;
	if (br[1] == ']') {
		json_array_foreach(next, i, x)
			merge_at(x, dot ? dot + 1 : NULL, pl);
		return;
	}
	i = strtoul(br + 1, NULL, 10);
	merge_at(json_array_get(next, i), dot ? dot + 1 : NULL, pl);
}

/* The new payload of one point, as a native update {id, payload}. */
static int
visit_payload(struct api_req *r, const vecdb_record *x, json_t *acc,
    void *arg)
{
	const struct payload_change *pc = arg;
	json_t *pl = NULL, *k;
	size_t i;

	(void) r;
	switch (pc->op) {
	case PL_OVERWRITE:
		pl = json_deep_copy(pc->payload);
		break;
	case PL_CLEAR:
		pl = json_object();
		break;
	case PL_SET:
	case PL_DELETE:
		pl = x->payload ? json_loads(x->payload, 0, NULL) : NULL;
		if (!json_is_object(pl)) {
			json_decref(pl);
			pl = json_object();
		}
		if (pc->op == PL_DELETE) {
			json_array_foreach(pc->keys, i, k)
				path_del(pl, json_string_value(k));
			break;
		}
		merge_at(pl, pc->key, pc->payload);
		break;
	}
	if (pl == NULL)
		return vdb_err(VECDB_ENOMEM, "out of memory");
	return json_array_append_new(acc, json_pack("{s:o, s:o}", "id",
	    api_id_to_json(&x->id), "payload", pl)) ? vdb_err(VECDB_ENOMEM,
	    "out of memory") : VECDB_OK;
}

/* Apply a payload change to the points the body selects. */
static int
payload_apply(struct api_req *r, json_t **data, struct payload_change *pc)
{
	vecdb_collection_config c;
	json_t *acc;
	int rv;

	if ((rv = qd_config(r, r->segs[SEG_COLL], &c)) != VECDB_OK)
		return qd_coll_missing(rv, r->segs[SEG_COLL]);
	if ((acc = json_array()) == NULL)
		return vdb_err(VECDB_ENOMEM, "out of memory");
	rv = select_points(r, r->body, "points", visit_payload, acc, pc);
	/* written in batches: each is atomic, as Qdrant's are per shard */
	for (size_t off = 0; rv == VECDB_OK && off < json_array_size(acc);
	    off += PAGE) {
		json_t *part = json_array();
		for (size_t i = off; i < off + PAGE && i < json_array_size(acc);
		    i++)
			json_array_append(part, json_array_get(acc, i));
		rv = write_native(r, API_UPDATE, part, API_POINTS_UPDATE);
		json_decref(part);
	}
	json_decref(acc);
	if (rv == VECDB_OK)
		*data = update_result();
	return rv;
}

/* {payload, points | filter, key?}: set (merge) or overwrite. */
static int
payload_set(struct api_req *r, json_t **data, enum payload_op op)
{
	static const char *const keys[] = { "payload", "points", "filter",
		"key", "shard_key", NULL };
	struct payload_change pc = { op, json_object_get(r->body, "payload"),
		NULL, NULL };
	int rv;

	if ((rv = api_check_keys(r->body, keys, NULL)) != VECDB_OK ||
	    (rv = api_get_string(r->body, "key", 0, &pc.key)) != VECDB_OK)
		return rv;
	if (!json_is_object(pc.payload))
		return vdb_err(VECDB_EINVAL, "'payload' must be an object");
	if ((rv = api_json_check_int64(pc.payload, "payload")) != VECDB_OK)
		return rv;
	if (pc.key != NULL && (pc.key[0] == '\0' || strlen(pc.key) >
	    VECDB_FIELD_NAME_MAX))
		return vdb_err(VECDB_EINVAL, "'key' must be a payload path of "
		    "1 to %d bytes", VECDB_FIELD_NAME_MAX);
	return payload_apply(r, data, &pc);
}

static int
h_payload_set(struct api_req *r, json_t **data)
{
	return payload_set(r, data, PL_SET);
}

static int
h_payload_overwrite(struct api_req *r, json_t **data)
{
	return payload_set(r, data, PL_OVERWRITE);
}

static int
h_payload_delete(struct api_req *r, json_t **data)
{
	static const char *const keys[] = { "keys", "points", "filter",
		"shard_key", NULL };
	struct payload_change pc = { PL_DELETE, NULL, NULL,
		json_object_get(r->body, "keys") };
	int rv;

	if ((rv = api_check_keys(r->body, keys, NULL)) != VECDB_OK)
		return rv;
	if (pc.keys == NULL)
		return vdb_err(VECDB_EINVAL, "'keys' is required");
	if ((rv = keys_check(pc.keys, "keys")) != VECDB_OK)
		return rv;
	return payload_apply(r, data, &pc);
}

static int
h_payload_clear(struct api_req *r, json_t **data)
{
	static const char *const keys[] = { "points", "filter", "shard_key",
		NULL };
	struct payload_change pc = { PL_CLEAR, NULL, NULL, NULL };
	int rv;

	if ((rv = api_check_keys(r->body, keys, NULL)) != VECDB_OK)
		return rv;
	return payload_apply(r, data, &pc);
}

/* ===== Vectors ===== */

/* PUT /points/vectors {points: [{id, vector}]}: set those vectors, keep
 * the others and the payload. */
static int
h_vectors_update(struct api_req *r, json_t **data)
{
	static const char *const keys[] = { "points", "shard_key",
		"update_filter", NULL };
	static const char *const pkeys[] = { "id", "vector", NULL };
	json_t *pts, *arr, *x;
	vecdb_collection_config c;
	char where[48];
	size_t i;
	int rv;

	if ((rv = qd_config(r, r->segs[SEG_COLL], &c)) != VECDB_OK)
		return qd_coll_missing(rv, r->segs[SEG_COLL]);
	if ((rv = api_check_keys(r->body, keys, NULL)) != VECDB_OK ||
	    (rv = null_only(r->body, "update_filter", "conditional updates "
		"are not implemented")) ||
	    (rv = api_get_array(r->body, "points", 1, VECDB_BATCH_MAX,
		 &pts)) != VECDB_OK)
		return rv;
	if ((arr = json_array()) == NULL)
		return vdb_err(VECDB_ENOMEM, "out of memory");
	json_array_foreach(pts, i, x) {
		json_t *p;
		snprintf(where, sizeof(where), "points[%zu]", i);
		if (!json_is_object(x) || (rv = api_check_keys(x, pkeys,
		    where)) != VECDB_OK || (p = point_native(json_object_get(x,
		    "id"), json_object_get(x, "vector"), NULL, where, 1,
		    qd_default_vector(&c))) == NULL) {
			json_decref(arr);
			return json_is_object(x) ? (rv ? rv : VECDB_EINVAL) :
			    vdb_err(VECDB_EINVAL, "%s must be an object",
			    where);
		}
		json_array_append_new(arr, p);
	}
	rv = write_native(r, API_UPDATE, arr, API_POINTS_UPDATE);
	json_decref(arr);
	if (rv == VECDB_OK)
		*data = update_result();
	return rv;
}

/* A named vector removal for each selected point. */
static int
visit_vector_delete(struct api_req *r, const vecdb_record *x, json_t *acc,
    void *arg)
{
	const json_t *names = arg, *n;
	json_t *vs = json_object();
	size_t i;

	(void) r;
	json_array_foreach(names, i, n)
		json_object_set_new(vs, json_string_length(n) ?
		    json_string_value(n) : QD_DEFAULT, json_null());
	return json_array_append_new(acc, json_pack("{s:o, s:o}", "id",
	    api_id_to_json(&x->id), "vectors", vs)) ? vdb_err(VECDB_ENOMEM,
	    "out of memory") : VECDB_OK;
}

/* POST /points/vectors/delete {points | filter, vector: [names]}. */
static int
h_vectors_delete(struct api_req *r, json_t **data)
{
	static const char *const keys[] = { "points", "filter", "vector",
		"shard_key", NULL };
	json_t *names = json_object_get(r->body, "vector"), *n, *acc;
	vecdb_collection_config c;
	size_t i;
	int rv;

	if ((rv = api_check_keys(r->body, keys, NULL)) != VECDB_OK)
		return rv;
	if ((rv = qd_config(r, r->segs[SEG_COLL], &c)) != VECDB_OK)
		return qd_coll_missing(rv, r->segs[SEG_COLL]);
	if (!json_is_array(names) || json_array_size(names) == 0)
		return vdb_err(VECDB_EINVAL, "'vector' must list the names of "
		    "the vectors to delete");
	json_array_foreach(names, i, n)
		if (!json_is_string(n) || (json_string_length(n) == 0 &&
		    qd_default_vector(&c) == NULL))
			return vdb_err(VECDB_EINVAL, "vector[%zu] must name a "
			    "named vector (the default one cannot be "
			    "deleted)", i);
	if ((acc = json_array()) == NULL)
		return vdb_err(VECDB_ENOMEM, "out of memory");
	rv = select_points(r, r->body, "points", visit_vector_delete, acc,
	    names);
	if (rv == VECDB_OK && json_array_size(acc) > 0)
		rv = write_native(r, API_UPDATE, acc, API_POINTS_UPDATE);
	json_decref(acc);
	if (rv == VECDB_OK)
		*data = update_result();
	return rv;
}

/* ===== Payload indexes ===== */

/* field_schema: a type name or {type, ...}. */
static int
schema_from_json(const json_t *s, vecdb_field_schema *out)
{
	const char *t;

	if (json_is_object(s))
		s = json_object_get(s, "type");
	t = json_string_value(s);
	if (t == NULL)
		return vdb_err(VECDB_EINVAL, "'field_schema' is required: "
		    "keyword, integer, float, bool, geo or uuid");
	for (int i = 0; i < 5; i++)
		if (strcmp(t, schema_names[i]) == 0) {
			*out = (vecdb_field_schema) i;
			return VECDB_OK;
		}
	/* a UUID is matched as the string it is */
	if (strcmp(t, "uuid") == 0) {
		*out = VECDB_FIELD_KEYWORD;
		return VECDB_OK;
	}
	return vdb_err(VECDB_EINVAL, "field_schema '%.32s' is not supported "
	    "(keyword, integer, float, bool, geo and uuid are)", t);
}

static int
h_index_create(struct api_req *r, json_t **data)
{
	static const char *const keys[] = { "field_name", "field_schema",
		NULL };
	vecdb_field_schema schema = VECDB_FIELD_KEYWORD;
	const char *field;
	int rv;

	if ((rv = api_check_keys(r->body, keys, NULL)) != VECDB_OK ||
	    (rv = api_get_string(r->body, "field_name", 1, &field)) ||
	    (rv = schema_from_json(json_object_get(r->body, "field_schema"),
		 &schema)))
		return rv;
	rv = r->b->payload_index_create(r->b->ctx, r->segs[SEG_COLL], field,
	    schema);
	if (rv == VECDB_EEXIST)
		rv = VECDB_OK;   /* Qdrant's create is idempotent */
	if (rv == VECDB_OK)
		*data = update_result();
	return qd_coll_missing(rv, r->segs[SEG_COLL]);
}

static int
h_index_delete(struct api_req *r, json_t **data)
{
	int rv = r->b->payload_index_delete(r->b->ctx, r->segs[SEG_COLL],
	    r->segs[3]);

	if (rv == VECDB_OK)
		*data = update_result();
	return rv;
}

/* ===== Batch updates ===== */

/* POST /points/batch {operations: [{upsert | delete | set_payload |
 * overwrite_payload | delete_payload | clear_payload | update_vectors |
 * delete_vectors: body}]}: each in turn, as its own route would; one
 * that fails stops the batch (the ones before it stay applied, as in
 * Qdrant) and is named in the error. */
static int
h_batch(struct api_req *r, json_t **data)
{
	static const struct {
		const char *name;
		api_handler fn;
	} ops[] = {
		{ "upsert", h_upsert }, { "delete", h_points_delete },
		{ "set_payload", h_payload_set },
		{ "overwrite_payload", h_payload_overwrite },
		{ "delete_payload", h_payload_delete },
		{ "clear_payload", h_payload_clear },
		{ "update_vectors", h_vectors_update },
		{ "delete_vectors", h_vectors_delete },
	};
	static const char *const keys[] = { "operations", NULL };
	json_t *body = r->body, *arr, *op, *out;
	size_t i;
	int rv;

	if ((rv = api_check_keys(body, keys, NULL)) != VECDB_OK ||
	    (rv = api_get_array(body, "operations", 1, VECDB_BATCH_MAX, &arr)))
		return rv;
	if ((out = json_array()) == NULL)
		return vdb_err(VECDB_ENOMEM, "out of memory");
	json_array_foreach(arr, i, op) {
		const char *name = json_is_object(op) &&
		    json_object_size(op) == 1 ? json_object_iter_key(
		    json_object_iter(op)) : NULL;
		json_t *res = NULL;
		size_t k;

		for (k = 0; name != NULL && k < sizeof(ops) / sizeof(ops[0]);
		    k++)
			if (strcmp(name, ops[k].name) == 0)
				break;
		if (name == NULL || k == sizeof(ops) / sizeof(ops[0])) {
			rv = vdb_err(VECDB_EINVAL, "operations[%zu] must be one "
			    "of {upsert | delete | set_payload | "
			    "overwrite_payload | delete_payload | clear_payload "
			    "| update_vectors | delete_vectors: {...}}", i);
			break;
		}
		if (!json_is_object(json_object_get(op, name))) {
			rv = vdb_err(VECDB_EINVAL, "operations[%zu].%s must be "
			    "an object", i, name);
			break;
		}
		r->body = json_object_get(op, name);
		rv = ops[k].fn(r, &res);
		r->body = body;
		if (rv != VECDB_OK) {
			char msg[512];
			vdb_err_save(msg, sizeof(msg));
			rv = vdb_err(rv, "operations[%zu] (%s): %s", i, name, msg);
			break;
		}
		json_array_append_new(out, res);
	}
	r->body = body;
	if (rv != VECDB_OK) {
		json_decref(out);
		return rv;
	}
	*data = out;
	return VECDB_OK;
}

/* ===== Facets ===== */

void
qd_values_at(const json_t *v, const char *key, void (*fn)(const json_t *,
    void *), void *arg)
{
	const char *dot;
	const json_t *e;
	size_t i;

	while (key != NULL && json_is_object(v)) {
		dot = strchr(key, '.');
		v = json_object_getn(v, key, dot ? (size_t) (dot - key) :
		    strlen(key));
		key = dot ? dot + 1 : NULL;
	}
	if (v == NULL)
		return;
	if (json_is_array(v)) {
		json_array_foreach(v, i, e)
			if (key == NULL)
				fn(e, arg);
			else
				qd_values_at(e, key, fn, arg);
		return;
	}
	if (key == NULL)
		fn(v, arg);
}

/* Count one facet value (strings, integers and booleans count). */
static void
facet_add(const json_t *v, void *arg)
{
	json_t *counts = arg, *c;
	char buf[32];
	const char *k;

	if (json_is_string(v))
		k = json_string_value(v);
	else if (json_is_integer(v))
		snprintf(buf, sizeof(buf), "\001%lld", (long long)
		    json_integer_value(v)), k = buf;
	else if (json_is_boolean(v))
		k = json_is_true(v) ? "\002true" : "\002false";
	else
		return;
	c = json_object_get(counts, k);
	json_object_set_new(counts, k, json_integer(1 +
	    (c ? json_integer_value(c) : 0)));
}

/* Facet hits: count descending, then value ascending. */
static int
facet_cmp(const void *a, const void *b)
{
	const json_t *x = *(json_t *const *) a, *y = *(json_t *const *) b;
	json_int_t cx = json_integer_value(json_object_get(x, "count"));
	json_int_t cy = json_integer_value(json_object_get(y, "count"));
	const json_t *vx = json_object_get(x, "value");
	const json_t *vy = json_object_get(y, "value");

	if (cx != cy)
		return cx > cy ? -1 : 1;
	if (json_is_integer(vx) && json_is_integer(vy))
		return json_integer_value(vx) < json_integer_value(vy) ? -1 :
		    json_integer_value(vx) > json_integer_value(vy);
	if (json_is_string(vx) && json_is_string(vy))
		return strcmp(json_string_value(vx), json_string_value(vy));
	return json_typeof(vx) - json_typeof(vy);
}

/* Gather facet counts over the selected points. */
static int
visit_facet(struct api_req *r, const vecdb_record *x, json_t *acc,
    void *arg)
{
	json_t *pl = x->payload ? json_loads(x->payload, 0, NULL) : NULL;

	(void) r;
	qd_values_at(pl, arg, facet_add, acc);
	json_decref(pl);
	return VECDB_OK;
}

/* POST /facet {key, filter?, limit?, exact?}: the most frequent values
 * of an indexed keyword, integer or bool field, exact counts. */
static int
h_facet(struct api_req *r, json_t **data)
{
	static const char *const keys[] = { "key", "filter", "limit", "exact",
		"shard_key", NULL };
	vecdb_payload_index_info *ix = NULL;
	const char *key, *k;
	json_t *counts, *hits, *c, *sel, **all;
	size_t n = 0, i = 0;
	uint64_t limit;
	int rv, indexed = 0, exact;

	if ((rv = api_check_keys(r->body, keys, NULL)) != VECDB_OK ||
	    (rv = api_get_string(r->body, "key", 1, &key)) != VECDB_OK ||
	    (rv = api_get_uint(r->body, "limit", 10, 1, VECDB_LIMIT_MAX,
		 &limit)) != VECDB_OK ||
	    (rv = api_get_bool(r->body, "exact", 0, &exact)) != VECDB_OK)
		return rv;
	if ((rv = r->b->payload_index_list(r->b->ctx, r->segs[SEG_COLL], &ix,
	    &n)) != VECDB_OK)
		return qd_coll_missing(rv, r->segs[SEG_COLL]);
	for (size_t j = 0; j < n; j++)
		indexed |= strcmp(ix[j].field, key) == 0 &&
		    ix[j].schema != VECDB_FIELD_FLOAT &&
		    ix[j].schema != VECDB_FIELD_GEO;
	free(ix);
	if (!indexed)
		return vdb_err(VECDB_EINVAL, "Bad request: Index required but "
		    "not found for \"%s\" of one of the following types: "
		    "[keyword, integer, bool]. Help: create an index with PUT "
		    "/collections/%s/index", key, r->segs[SEG_COLL]);
	/* select_points wants "points" or "filter": a filter of everything
	 * when there is none */
	sel = json_object();
	if (json_object_get(r->body, "filter") != NULL &&
	    !json_is_null(json_object_get(r->body, "filter")))
		json_object_set(sel, "filter", json_object_get(r->body,
		    "filter"));
	else
		json_object_set_new(sel, "filter", json_object());
	counts = json_object();
	rv = select_points(r, sel, "points", visit_facet, counts,
	    (void *) (uintptr_t) key);
	json_decref(sel);
	if (rv != VECDB_OK) {
		json_decref(counts);
		return rv;
	}
	n = json_object_size(counts);
	all = vdb_calloc(n ? n : 1, sizeof(*all));
	json_object_foreach(counts, k, c) {
		json_t *v = k[0] == '\001' ? json_integer(strtoll(k + 1, NULL,
		    10)) : k[0] == '\002' ? json_boolean(strcmp(k + 1,
		    "true") == 0) : json_string(k);
		all[i++] = json_pack("{s:o, s:O}", "value", v, "count", c);
	}
	qsort(all, n, sizeof(*all), facet_cmp);
	hits = json_array();
	for (i = 0; i < n; i++) {
		if (i < limit)
			json_array_append(hits, all[i]);
		json_decref(all[i]);
	}
	vdb_free(all);
	json_decref(counts);
	*data = json_pack("{s:o}", "hits", hits);
	return VECDB_OK;
}

/* ===== Snapshots ===== */

/* A snapshot's file name, as Qdrant names its snapshots: <name>.snapshot */
#define SNAP_EXT ".snapshot"

/* Qdrant's SnapshotDescription. */
static json_t *
snapshot_json(const vecdb_snapshot_info *si)
{
	char when[32], name[VECDB_SNAPSHOT_NAME_MAX + 16];
	time_t t = (time_t) si->created_at;
	struct tm tm;

	gmtime_r(&t, &tm);
	strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(name, sizeof(name), "%s" SNAP_EXT, si->name);
	return json_pack("{s:s, s:s, s:I, s:s}", "name", name,
	    "creation_time", when, "size", (json_int_t) si->size_bytes,
	    "checksum", si->checksum);
}

/* A snapshot named as Qdrant names it (with or without the .snapshot
 * of its file) into the engine's name. */
static int
snapshot_name(const char *given, char *out, size_t len)
{
	size_t n = strlen(given), e = strlen(SNAP_EXT);

	if (n > e && strcmp(given + n - e, SNAP_EXT) == 0)
		n -= e;
	if (n == 0 || n >= len)
		return vdb_err(VECDB_EINVAL, "'%.64s' is not a snapshot name",
		    given);
	memcpy(out, given, n);
	out[n] = '\0';
	return VECDB_OK;
}

static int
h_snapshot_create(struct api_req *r, json_t **data)
{
	vecdb_snapshot_info si;
	int rv;

	if ((rv = r->b->snapshot_create(r->b->ctx, r->segs[SEG_COLL], NULL,
	    &si)) != VECDB_OK)
		return qd_coll_missing(rv, r->segs[SEG_COLL]);
	*data = snapshot_json(&si);
	return VECDB_OK;
}

static int
h_snapshot_list(struct api_req *r, json_t **data)
{
	vecdb_snapshot_info *si;
	size_t n;
	int rv;

	if ((rv = r->b->snapshot_list(r->b->ctx, r->segs[SEG_COLL], &si,
	    &n)) != VECDB_OK)
		return qd_coll_missing(rv, r->segs[SEG_COLL]);
	*data = json_array();
	for (size_t i = 0; i < n; i++)
		json_array_append_new(*data, snapshot_json(&si[i]));
	free(si);
	return VECDB_OK;
}

static int
h_snapshot_delete(struct api_req *r, json_t **data)
{
	char name[VECDB_SNAPSHOT_NAME_MAX + 1];
	int rv;

	if ((rv = snapshot_name(r->segs[3], name, sizeof(name))) != VECDB_OK ||
	    (rv = r->b->snapshot_delete(r->b->ctx, r->segs[SEG_COLL],
		 name)) != VECDB_OK)
		return rv;
	*data = json_true();
	return VECDB_OK;
}

/* GET .../snapshots/:s: the file itself. */
static int
h_snapshot_download(struct api_req *r, json_t **data)
{
	char name[VECDB_SNAPSHOT_NAME_MAX + 1];
	int rv, fd;

	(void) data;
	if ((rv = snapshot_name(r->segs[3], name, sizeof(name))) != VECDB_OK ||
	    (rv = r->b->snapshot_open(r->b->ctx, r->segs[SEG_COLL], name,
		 &fd)) != VECDB_OK)
		return rv;
	api_req_status(r, 200);
	if (httpd_respond_fd(r->h, 200, "application/octet-stream", fd) != 0)
		return vdb_err(VECDB_ENOMEM, "cannot send snapshot '%s'",
		    name);
	return API_RESPONDED;
}

/* POST .../snapshots/upload: a snapshot file (the raw body or the form's
 * file field) replaces the collection. */
static int
h_snapshot_upload(struct api_req *r, json_t **data)
{
	const char *path, *err;
	int rv;

	if ((path = httpd_upload(r->h, &err)) == NULL)
		return vdb_err(VECDB_EINVAL, "%s", err);
	if ((rv = r->b->snapshot_restore_file(r->b->ctx, r->segs[SEG_COLL],
	    path)) != VECDB_OK)
		return rv;
	qd_forget(r->segs[SEG_COLL]);
	*data = json_true();
	return VECDB_OK;
}

/*
 * PUT .../snapshots/recover {location, priority?, checksum?}: restore one
 * of the collection's own snapshots, named by its file name or a file://
 * URL ending in it. vecdb reads no file or URL a request names: only
 * its snapshots directory.
 */
static int
h_snapshot_recover(struct api_req *r, json_t **data)
{
	static const char *const keys[] = { "location", "priority",
		"checksum", "api_key", NULL };
	char name[VECDB_SNAPSHOT_NAME_MAX + 1];
	const char *loc, *base, *sum;
	vecdb_snapshot_info si;
	int rv;

	if ((rv = api_check_keys(r->body, keys, NULL)) != VECDB_OK ||
	    (rv = api_get_string(r->body, "location", 1, &loc)) != VECDB_OK ||
	    (rv = api_get_string(r->body, "checksum", 0, &sum)) != VECDB_OK)
		return rv;
	if (strstr(loc, "://") != NULL && strncmp(loc, "file://", 7) != 0)
		return vdb_err(VECDB_EINVAL, "location: only file:// URLs of "
		    "the collection's own snapshots can be recovered (upload "
		    "other files to .../snapshots/upload)");
	base = strrchr(loc, '/') ? strrchr(loc, '/') + 1 : loc;
	if ((rv = snapshot_name(base, name, sizeof(name))) != VECDB_OK ||
	    (rv = r->b->snapshot_get(r->b->ctx, r->segs[SEG_COLL], name,
		 &si)) != VECDB_OK)
		return rv == VECDB_ENOTFOUND ? vdb_err(rv, "Not found: no "
		    "snapshot '%s' of collection `%s` (recover takes the "
		    "collection's own snapshots)", base, r->segs[SEG_COLL]) :
		    rv;
	if (sum != NULL && strcmp(sum, si.checksum) != 0)
		return vdb_err(VECDB_EINVAL, "checksum mismatch: snapshot '%s' "
		    "has %s", base, si.checksum);
	if ((rv = r->b->snapshot_restore(r->b->ctx, r->segs[SEG_COLL],
	    name)) != VECDB_OK)
		return rv;
	qd_forget(r->segs[SEG_COLL]);
	*data = json_true();
	return VECDB_OK;
}

/* ===== order_by ===== */

/* One number found at the order_by key of a point. */
struct ordered {
	double v;
	vecdb_id id;
};

struct order_acc {
	struct ordered *a;
	size_t n, cap;
	const char *key;   /* order_by's */
	vecdb_id id;       /* the point being read */
	int fail;
};

/* Keep a number at the key (each number of an array, as Qdrant does). */
static void
order_add(const json_t *v, void *arg)
{
	struct order_acc *o = arg;

	if (!json_is_number(v) || o->fail)
		return;
	if (o->n == o->cap) {
		size_t cap = o->cap ? o->cap * 2 : 1024;
		struct ordered *a = vdb_realloc(o->a, cap * sizeof(*a));
		if (a == NULL) {
			o->fail = 1;
			return;
		}
		o->a = a;
		o->cap = cap;
	}
	o->a[o->n].v = json_number_value(v);
	o->a[o->n++].id = o->id;
}

/* Keep the numbers of one point. */
static int
visit_order(struct api_req *r, const vecdb_record *x, json_t *acc,
    void *arg)
{
	struct order_acc *o = arg;
	json_t *pl = x->payload ? json_loads(x->payload, 0, NULL) : NULL;

	(void) r;
	(void) acc;
	o->id = x->id;
	qd_values_at(pl, o->key, order_add, o);
	json_decref(pl);
	return o->fail ? vdb_err(VECDB_ENOMEM, "out of memory") : VECDB_OK;
}

static int
order_asc(const void *a, const void *b)
{
	const struct ordered *x = a, *y = b;

	if (x->v != y->v)
		return x->v < y->v ? -1 : 1;
	return vecdb_id_cmp(&x->id, &y->id);
}

static int
order_desc(const void *a, const void *b)
{
	const struct ordered *x = a, *y = b;

	if (x->v != y->v)
		return x->v > y->v ? -1 : 1;
	return vecdb_id_cmp(&x->id, &y->id);
}

int
qd_order_by(struct api_req *r, const vecdb_collection_config *cfg,
    const json_t *ob, const json_t *filter, const struct qd_with *w,
    uint64_t limit, uint64_t offset, int scored, json_t **points)
{
	static const char *const keys[] = { "key", "direction", "start_from",
		NULL };
	vecdb_payload_index_info *ix = NULL;
	struct order_acc o = { NULL, 0, 0, NULL, { VECDB_ID_NONE, 0, { 0 } },
		0 };
	const char *key = json_string_value(ob), *dir = NULL;
	json_t *from = NULL, *out;
	size_t n = 0, first = 0, taken = 0;
	int rv, desc = 0, indexed = 0, int_index = 0;

	if (json_is_object(ob)) {
		if ((rv = api_check_keys(ob, keys, "order_by")) != VECDB_OK ||
		    (rv = api_get_string(ob, "key", 1, &key)) != VECDB_OK ||
		    (rv = api_get_string(ob, "direction", 0, &dir)) != VECDB_OK)
			return rv;
		from = json_object_get(ob, "start_from");
		if (from != NULL && json_is_null(from))
			from = NULL;
	}
	if (key == NULL || key[0] == '\0')
		return vdb_err(VECDB_EINVAL, "order_by is a key or {key, "
		    "direction?, start_from?}");
	if (dir != NULL && strcmp(dir, "asc") != 0 && strcmp(dir, "desc") != 0)
		return vdb_err(VECDB_EINVAL, "order_by.direction must be asc or "
		    "desc");
	desc = dir != NULL && strcmp(dir, "desc") == 0;
	if (from != NULL && !json_is_number(from))
		return vdb_err(VECDB_EINVAL, "order_by.start_from must be a "
		    "number");
	if ((rv = r->b->payload_index_list(r->b->ctx, r->segs[SEG_COLL], &ix,
	    &n)) != VECDB_OK)
		return qd_coll_missing(rv, r->segs[SEG_COLL]);
	for (size_t j = 0; j < n; j++)
		if (strcmp(ix[j].field, key) == 0 && (ix[j].schema ==
		    VECDB_FIELD_INTEGER || ix[j].schema == VECDB_FIELD_FLOAT)) {
			indexed = 1;
			int_index |= ix[j].schema == VECDB_FIELD_INTEGER;
		}
	free(ix);
	if (!indexed)
		return vdb_err(VECDB_EINVAL, "Bad request: No range index for "
		    "`order_by` key: `%s`. Help: create an integer or float "
		    "index with PUT /collections/%s/index", key,
		    r->segs[SEG_COLL]);
	/* every matching point's numbers at the key, then sorted */
	o.key = key;
	if ((rv = scan_points(r, r->segs[SEG_COLL], filter, 0, visit_order,
	    NULL, &o)) != VECDB_OK) {
		vdb_free(o.a);
		return qd_coll_missing(rv, r->segs[SEG_COLL]);
	}
	qsort(o.a, o.n, sizeof(*o.a), desc ? order_desc : order_asc);
	if (from != NULL)
		while (first < o.n && (desc ? o.a[first].v >
		    json_number_value(from) : o.a[first].v <
		    json_number_value(from)))
			first++;
	first += offset;
	out = json_array();
	for (size_t i = first; i < o.n && taken < limit && rv == VECDB_OK;
	    i++) {
		vecdb_record *rec;
		json_t *j;
		if ((rv = r->b->get(r->b->ctx, r->segs[SEG_COLL], &o.a[i].id,
		    &rec)) == VECDB_ENOTFOUND) {
			rv = VECDB_OK;   /* deleted meanwhile */
			continue;
		}
		if (rv != VECDB_OK)
			break;
		rec->score = 0;
		j = qd_record_json(rec, cfg, w, scored);
		json_object_set_new(j, "order_value", int_index &&
		    o.a[i].v == trunc(o.a[i].v) && fabs(o.a[i].v) < 9e15 ?
		    json_integer((json_int_t) o.a[i].v) :
		    api_json_raw_tree(json_real(o.a[i].v)));
		json_array_append_new(out, j);
		vecdb_record_free(rec);
		taken++;
	}
	vdb_free(o.a);
	if (rv != VECDB_OK) {
		json_decref(out);
		return rv;
	}
	*points = out;
	return VECDB_OK;
}

/* ===== The table ===== */

#define C "collections/:c"
#define P C "/points"
const struct api_route api_qdrant_routes[] = {
	{ "GET", "", h_root, 0, API_BODY_NONE, 1 },
	{ "GET", "healthz", h_healthz, 0, API_BODY_NONE, 1 },
	{ "GET", "livez", h_healthz, 0, API_BODY_NONE, 1 },
	{ "GET", "readyz", h_healthz, 0, API_BODY_NONE, 1 },
	{ "GET", "metrics", api_h_metrics, 0, API_BODY_NONE, 0 },
	{ "GET", "telemetry", h_unsupported, 0, API_BODY_NONE, 0 },
	{ "GET", "collections", h_collection_list, 0, API_BODY_NONE, 0 },
	{ "PUT", C, h_collection_create, 1, API_BODY_JSON, 0 },
	{ "GET", C, h_collection_get, 0, API_BODY_NONE, 0 },
	{ "PATCH", C, h_collection_update, 1, API_BODY_JSON, 0 },
	{ "DELETE", C, h_collection_delete, 1, API_BODY_NONE, 0 },
	{ "GET", C "/exists", h_collection_exists, 0, API_BODY_NONE, 0 },
	{ "PUT", C "/index", h_index_create, 1, API_BODY_JSON, 0 },
	{ "DELETE", C "/index/:f", h_index_delete, 1, API_BODY_NONE, 0 },
	{ "PUT", P, h_upsert, 1, API_BODY_JSON, 0 },
	{ "POST", P, h_points_retrieve, 0, API_BODY_JSON, 0 },
	{ "GET", P "/:id", h_point_get, 0, API_BODY_NONE, 0 },
	{ "POST", P "/delete", h_points_delete, 1, API_BODY_JSON, 0 },
	{ "POST", P "/payload", h_payload_set, 1, API_BODY_JSON, 0 },
	{ "PUT", P "/payload", h_payload_overwrite, 1, API_BODY_JSON, 0 },
	{ "POST", P "/payload/delete", h_payload_delete, 1, API_BODY_JSON, 0 },
	{ "POST", P "/payload/clear", h_payload_clear, 1, API_BODY_JSON, 0 },
	{ "PUT", P "/vectors", h_vectors_update, 1, API_BODY_JSON, 0 },
	{ "POST", P "/vectors/delete", h_vectors_delete, 1, API_BODY_JSON, 0 },
	{ "POST", P "/scroll", qd_h_scroll, 0, API_BODY_JSON, 0 },
	{ "POST", P "/count", qd_h_count, 0, API_BODY_JSON, 0 },
	{ "POST", P "/query", qd_h_query, 0, API_BODY_JSON, 0 },
	{ "POST", P "/query/batch", qd_h_query_batch, 0, API_BODY_JSON, 0 },
	{ "POST", P "/search", qd_h_search, 0, API_BODY_JSON, 0 },
	{ "POST", P "/search/batch", qd_h_search_batch, 0, API_BODY_JSON, 0 },
	{ "POST", P "/recommend", qd_h_recommend, 0, API_BODY_JSON, 0 },
	{ "POST", P "/recommend/batch", qd_h_recommend_batch, 0,
	    API_BODY_JSON, 0 },
	{ "POST", P "/discover", qd_h_discover, 0, API_BODY_JSON, 0 },
	{ "POST", P "/discover/batch", qd_h_discover_batch, 0, API_BODY_JSON,
	    0 },
	/* Qdrant's routes we do not serve (yet): a clear 501 each */
	{ "POST", P "/batch", h_batch, 1, API_BODY_JSON, 0 },
	{ "POST", P "/query/groups", qd_h_query_groups, 0, API_BODY_JSON, 0 },
	{ "POST", P "/search/groups", qd_h_search_groups, 0, API_BODY_JSON,
	    0 },
	{ "POST", P "/recommend/groups", qd_h_recommend_groups, 0,
	    API_BODY_JSON, 0 },
	{ "POST", C "/facet", h_facet, 0, API_BODY_JSON, 0 },
	{ "POST", P "/search/matrix/pairs", h_unsupported, 0, API_BODY_NONE,
	    0 },
	{ "POST", P "/search/matrix/offsets", h_unsupported, 0, API_BODY_NONE,
	    0 },
	{ "POST", "collections/aliases", h_aliases_update, 1, API_BODY_JSON,
	    0 },
	{ "GET", "aliases", h_aliases, 0, API_BODY_NONE, 0 },
	{ "GET", C "/aliases", h_collection_aliases, 0, API_BODY_NONE, 0 },
	{ "POST", C "/snapshots/upload", h_snapshot_upload, 1, API_BODY_RAW,
	    0 },
	{ "PUT", C "/snapshots/recover", h_snapshot_recover, 1, API_BODY_JSON,
	    0 },
	{ "GET", C "/snapshots", h_snapshot_list, 0, API_BODY_NONE, 0 },
	{ "POST", C "/snapshots", h_snapshot_create, 1, API_BODY_NONE, 0 },
	{ "GET", C "/snapshots/:s", h_snapshot_download, 0, API_BODY_NONE, 0 },
	{ "DELETE", C "/snapshots/:s", h_snapshot_delete, 1, API_BODY_NONE, 0 },
	{ "GET", "snapshots", h_unsupported, 0, API_BODY_NONE, 0 },
	{ "POST", "snapshots", h_unsupported, 1, API_BODY_NONE, 0 },
	{ "GET", "cluster", h_unsupported, 0, API_BODY_NONE, 0 },
	{ "GET", C "/cluster", h_unsupported, 0, API_BODY_NONE, 0 },
	{ "PUT", C "/vectors/:v", h_unsupported, 1, API_BODY_NONE, 0 },
	{ "DELETE", C "/vectors/:v", h_unsupported, 1, API_BODY_NONE, 0 },
};
#undef P
#undef C
const size_t api_qdrant_n_routes = sizeof(api_qdrant_routes) /
    sizeof(api_qdrant_routes[0]);

