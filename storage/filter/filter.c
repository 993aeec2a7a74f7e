/*
 * filter.c: payload filters (Qdrant-style must / should / must_not).
 *
 * A filter is compiled once into a tree of conds that owns copies of every
 * key and string, so the caller's JSON can be released at once. The tree is
 * never written after compile: any number of threads may evaluate one
 * filter at the same time. Evaluation allocates nothing; it recurses over
 * the payload instead of collecting the values found at a key.
 */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "filter.h"
#include "vdb.h"

#define FILTER_LIST_MAX 1024     /* entries in match any / except */
#define FILTER_STRING_MAX 4096   /* bytes in one match string */
#define FILTER_PATH_BUF 1536     /* error location: fits 32 nested levels */
#define FILTER_PATH_HEAD 64      /* shown of a long location: its start */
#define FILTER_PATH_TAIL 160     /* ... and its end */
#define FILTER_MSG_BUF 200       /* error detail after the location */
#define EARTH_RADIUS_M 6371008.8 /* mean radius (IUGG), as Qdrant uses */

/* ===== Types ===== */

enum clause { CLAUSE_MUST, CLAUSE_SHOULD, CLAUSE_MUST_NOT, CLAUSE_COUNT };

static const char *const clause_names[CLAUSE_COUNT] = {
	"must", "should", "must_not"
};

enum cond_kind {
	COND_NONE = 0, /* not compiled yet: owns nothing but its key */
	COND_VALUE,    /* match value */
	COND_ANY,      /* match any */
	COND_EXCEPT,   /* match except */
	COND_RANGE,    /* range */
	COND_GEO,      /* geo_radius */
	COND_NESTED,   /* some object at the key matches sub */
	COND_FILTER    /* sub, applied to the same object */
};

enum scalar_type { SCALAR_STRING = 0, SCALAR_INT, SCALAR_BOOL };

struct scalar {
	enum scalar_type type; /* which fields below hold the value */
	json_int_t num;        /* SCALAR_INT value; SCALAR_BOOL 0 or 1 */
	char *str;             /* SCALAR_STRING bytes, NUL-terminated copy */
	size_t len;            /* SCALAR_STRING length in bytes */
};

struct scalar_list {
	struct scalar *items; /* n entries, scanned linearly */
	size_t n;             /* 0..FILTER_LIST_MAX */
};

enum range_bound { RANGE_GT, RANGE_GTE, RANGE_LT, RANGE_LTE, RANGE_COUNT };

static const char *const range_names[RANGE_COUNT] = {
	"gt", "gte", "lt", "lte"
};

struct range {
	double bound[RANGE_COUNT]; /* the limit of each bound present */
	unsigned present;          /* bit 1 << RANGE_* per bound given */
};

struct geo {
	double lat;    /* centre latitude, degrees */
	double lon;    /* centre longitude, degrees */
	double radius; /* metres */
};

struct key_path {
	char *buf;        /* the segments, each NUL-terminated, back to back */
	const char **seg; /* nseg pointers into buf */
	size_t nseg;      /* >= 1 once compiled */
};

struct cond {
	enum cond_kind kind;   /* which member of u is in use */
	struct key_path key;   /* every kind but COND_FILTER */
	union {
		struct scalar value;     /* COND_VALUE */
		struct scalar_list list; /* COND_ANY, COND_EXCEPT */
		struct range range;      /* COND_RANGE */
		struct geo geo;          /* COND_GEO */
		vecdb_filter *sub;       /* COND_NESTED, COND_FILTER */
	} u;
};

struct cond_list {
	struct cond *items; /* n conds; zeroed ones are COND_NONE */
	size_t n;           /* 0 when the clause is absent or [] */
};

struct vecdb_filter {
	struct cond_list clause[CLAUSE_COUNT]; /* must, should, must_not */
};

/* State of one compile: where we are, for messages, and what it cost. */
struct compile_ctx {
	char path[FILTER_PATH_BUF]; /* "filter.must[2].range" */
	size_t len;                 /* strlen(path) */
	size_t nconds;              /* conditions seen so far */
};

static int filter_compile_at(struct compile_ctx *ctx, const json_t *j,
    int depth, vecdb_filter **out);
static int filter_eval(const vecdb_filter *f, const json_t *obj);

/* ===== Error locations ===== */

/* Append to the location; returns the length to give back to path_pop(). */
static size_t __attribute__((format(printf, 2, 3)))
path_push(struct compile_ctx *ctx, const char *fmt, ...)
{
	size_t old = ctx->len;
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(ctx->path + old, sizeof(ctx->path) - old, fmt, ap);
	va_end(ap);
	if (n > 0)
		ctx->len = old + (size_t) n < sizeof(ctx->path) ?
		    old + (size_t) n : sizeof(ctx->path) - 1;
	return old;
}

/* Return to the location saved by path_push(). */
static void
path_pop(struct compile_ctx *ctx, size_t old)
{
	ctx->len = old;
	ctx->path[old] = '\0';
}

/* Fail with EINVAL at the current location, plus @p field when not NULL. */
static int __attribute__((format(printf, 3, 4)))
ctx_err(struct compile_ctx *ctx, const char *field, const char *fmt, ...)
{
	char msg[FILTER_MSG_BUF];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	/* vecdb_errmsg() holds 512 bytes: keep both ends of a deep path. */
	if (ctx->len > FILTER_PATH_HEAD + FILTER_PATH_TAIL)
		return vdb_err(VECDB_EINVAL, "%.*s...%s%s%s: %s",
		    FILTER_PATH_HEAD, ctx->path,
		    ctx->path + ctx->len - FILTER_PATH_TAIL,
		    field != NULL ? "." : "", field != NULL ? field : "", msg);
	return vdb_err(VECDB_EINVAL, "%s%s%s: %s", ctx->path,
	    field != NULL ? "." : "", field != NULL ? field : "", msg);
}

/* Fail with ENOMEM; the location does not help with that. */
static int
nomem(void)
{
	return vdb_err(VECDB_ENOMEM, "out of memory compiling a filter");
}

/* A JSON type as a message names it. */
static const char *
json_kind_name(const json_t *j)
{
	switch (json_typeof(j)) {
	case JSON_OBJECT: return "an object";
	case JSON_ARRAY: return "an array";
	case JSON_STRING: return "a string";
	case JSON_INTEGER: return "an integer";
	case JSON_REAL: return "a real number";
	case JSON_TRUE:
	case JSON_FALSE: return "a boolean";
	default: return "null";
	}
}

/* EINVAL naming the first key of object @p j that is not in @p allowed. */
static int
keys_check(struct compile_ctx *ctx, const json_t *j,
    const char *const *allowed, size_t n, const char *expect)
{
	/* The iterator API wants a mutable object; it only reads it here. */
	json_t *obj = (json_t *) j;
	const char *key;
	void *it;
	size_t i;

	for (it = json_object_iter(obj); it != NULL;
	    it = json_object_iter_next(obj, it)) {
		key = json_object_iter_key(it);
		for (i = 0; i < n && strcmp(key, allowed[i]) != 0; i++)
			;
		if (i == n)
			return ctx_err(ctx, NULL,
			    "unknown key '%.64s' (expected %s)", key, expect);
	}
	return VECDB_OK;
}

/* A finite number from @p j into @p out, or EINVAL at @p field. */
static int
number_get(struct compile_ctx *ctx, const json_t *j, const char *field,
    double *out)
{
	double d;

	if (!json_is_number(j))
		return ctx_err(ctx, field, "expected a number, not %s",
		    json_kind_name(j));
	d = json_number_value(j);
	if (!isfinite(d))
		return ctx_err(ctx, field, "must be finite");
	*out = d;
	return VECDB_OK;
}

/* ===== Key paths ===== */

/* Cut p->buf at the dots into p->seg, dropping one "[]" per segment. */
static int
key_path_split(struct compile_ctx *ctx, struct key_path *p,
    const char *text)
{
	char *s = p->buf, *dot;
	size_t n = 0, len;

	for (;;) {
		if ((dot = strchr(s, '.')) != NULL)
			*dot = '\0';
		len = strlen(s);
		if (len >= 2 && s[len - 2] == '[' && s[len - 1] == ']')
			s[len -= 2] = '\0';
		if (len == 0)
			return ctx_err(ctx, "key",
			    "empty path segment in '%.128s'", text);
		p->seg[n++] = s;
		if (dot == NULL)
			break;
		s = dot + 1;
	}
	p->nseg = n;
	return VECDB_OK;
}

/* Compile the dotted key @p j ("a.b", "tags[].name") into @p p. */
static int
key_path_compile(struct compile_ctx *ctx, const json_t *j,
    struct key_path *p)
{
	const char *text;
	size_t len, i, nseg = 1;

	if (!json_is_string(j))
		return ctx_err(ctx, "key", "expected a string, not %s",
		    json_kind_name(j));
	text = json_string_value(j);
	len = json_string_length(j);
	if (len == 0 || len > FILTER_KEY_MAX)
		return ctx_err(ctx, "key", "must be 1 to %d bytes, not %zu",
		    FILTER_KEY_MAX, len);
	/* Payload keys are C strings to json_object_get(). */
	if (memchr(text, '\0', len) != NULL)
		return ctx_err(ctx, "key", "contains a NUL byte");
	for (i = 0; i < len; i++)
		nseg += text[i] == '.';
	if ((p->buf = vdb_strdup(text)) == NULL)
		return nomem();
	if ((p->seg = vdb_calloc(nseg, sizeof(*p->seg))) == NULL)
		return nomem();
	return key_path_split(ctx, p, text);
}

/* ===== Match values ===== */

/* Compile a string, integer or boolean match value into @p s. */
static int
scalar_compile(struct compile_ctx *ctx, const json_t *j, struct scalar *s)
{
	size_t len;

	if (json_is_string(j)) {
		len = json_string_length(j);
		if (len > FILTER_STRING_MAX)
			return ctx_err(ctx, NULL,
			    "string of %zu bytes is longer than %d", len,
			    FILTER_STRING_MAX);
		if ((s->str = vdb_malloc(len + 1)) == NULL)
			return nomem();
		memcpy(s->str, json_string_value(j), len + 1);
		s->len = len;
		s->type = SCALAR_STRING;
	} else if (json_is_integer(j)) {
		s->type = SCALAR_INT;
		s->num = json_integer_value(j);
	} else if (json_is_boolean(j)) {
		s->type = SCALAR_BOOL;
		s->num = json_is_true(j);
	} else {
		return ctx_err(ctx, NULL,
		    "expected a string, integer or boolean, not %s",
		    json_kind_name(j));
	}
	return VECDB_OK;
}

/* Compile the array of an any or except match into @p l. */
static int
scalar_list_compile(struct compile_ctx *ctx, const json_t *j,
    struct scalar_list *l)
{
	size_t i, n, old;
	int rv;

	if (!json_is_array(j))
		return ctx_err(ctx, NULL, "expected an array of strings, "
		    "integers or booleans, not %s", json_kind_name(j));
	if ((n = json_array_size(j)) > FILTER_LIST_MAX)
		return ctx_err(ctx, NULL, "%zu values, more than %d", n,
		    FILTER_LIST_MAX);
	if (n == 0)
		return VECDB_OK;
	if ((l->items = vdb_calloc(n, sizeof(*l->items))) == NULL)
		return nomem();
	l->n = n;
	for (i = 0; i < n; i++) {
		old = path_push(ctx, "[%zu]", i);
		rv = scalar_compile(ctx, json_array_get(j, i), &l->items[i]);
		path_pop(ctx, old);
		if (rv != VECDB_OK)
			return rv;
	}
	return VECDB_OK;
}

static const char *const match_keys[] = { "value", "any", "except" };

/* Compile {"value": v} | {"any": [...]} | {"except": [...]} into @p c. */
static int
match_compile(struct compile_ctx *ctx, const json_t *j, struct cond *c)
{
	const json_t *v, *any, *except;
	size_t old;
	int rv;

	if (!json_is_object(j))
		return ctx_err(ctx, NULL, "expected an object with one of "
		    "value, any, except, not %s", json_kind_name(j));
	if ((rv = keys_check(ctx, j, match_keys, 3,
	    "value, any or except")) != VECDB_OK)
		return rv;
	v = json_object_get(j, "value");
	any = json_object_get(j, "any");
	except = json_object_get(j, "except");
	if ((v != NULL) + (any != NULL) + (except != NULL) != 1)
		return ctx_err(ctx, NULL,
		    "needs exactly one of value, any, except");
	if (v != NULL) {
		c->kind = COND_VALUE;
		old = path_push(ctx, ".value");
		rv = scalar_compile(ctx, v, &c->u.value);
	} else {
		c->kind = any != NULL ? COND_ANY : COND_EXCEPT;
		old = path_push(ctx, any != NULL ? ".any" : ".except");
		rv = scalar_list_compile(ctx, any != NULL ? any : except,
		    &c->u.list);
	}
	path_pop(ctx, old);
	return rv;
}

/* ===== Range and geo ===== */

/* Compile {"gt": x, "gte": x, "lt": x, "lte": x} (one or more). */
static int
range_compile(struct compile_ctx *ctx, const json_t *j, struct range *r)
{
	const json_t *v;
	int b, rv;

	if (!json_is_object(j))
		return ctx_err(ctx, NULL, "expected an object with gt, gte, "
		    "lt, lte, not %s", json_kind_name(j));
	if ((rv = keys_check(ctx, j, range_names, RANGE_COUNT,
	    "gt, gte, lt, lte")) != VECDB_OK)
		return rv;
	for (b = 0; b < RANGE_COUNT; b++) {
		/* null is an absent bound, as Qdrant clients send it. */
		v = json_object_get(j, range_names[b]);
		if (v == NULL || json_is_null(v))
			continue;
		if ((rv = number_get(ctx, v, range_names[b],
		    &r->bound[b])) != VECDB_OK)
			return rv;
		r->present |= 1u << b;
	}
	if (r->present == 0)
		return ctx_err(ctx, NULL,
		    "needs at least one of gt, gte, lt, lte");
	return VECDB_OK;
}

static const char *const center_keys[] = { "lat", "lon" };

/* Compile {"lat": x, "lon": y} into the centre of @p g. */
static int
geo_center_compile(struct compile_ctx *ctx, const json_t *j, struct geo *g)
{
	int rv;

	if (!json_is_object(j))
		return ctx_err(ctx, NULL, "expected an object with lat and "
		    "lon, not %s", json_kind_name(j));
	if ((rv = keys_check(ctx, j, center_keys, 2, "lat, lon")) !=
	    VECDB_OK)
		return rv;
	if (json_object_get(j, "lat") == NULL ||
	    json_object_get(j, "lon") == NULL)
		return ctx_err(ctx, NULL, "needs lat and lon");
	if ((rv = number_get(ctx, json_object_get(j, "lat"), "lat",
	    &g->lat)) != VECDB_OK)
		return rv;
	if ((rv = number_get(ctx, json_object_get(j, "lon"), "lon",
	    &g->lon)) != VECDB_OK)
		return rv;
	if (g->lat < -90 || g->lat > 90)
		return ctx_err(ctx, "lat", "%g is outside [-90, 90]", g->lat);
	if (g->lon < -180 || g->lon > 180)
		return ctx_err(ctx, "lon", "%g is outside [-180, 180]",
		    g->lon);
	return VECDB_OK;
}

static const char *const geo_keys[] = { "center", "radius" };

/* Compile {"center": {...}, "radius": metres} into @p g. */
static int
geo_compile(struct compile_ctx *ctx, const json_t *j, struct geo *g)
{
	const json_t *center, *radius;
	size_t old;
	int rv;

	if (!json_is_object(j))
		return ctx_err(ctx, NULL, "expected an object with center "
		    "and radius, not %s", json_kind_name(j));
	if ((rv = keys_check(ctx, j, geo_keys, 2, "center, radius")) !=
	    VECDB_OK)
		return rv;
	center = json_object_get(j, "center");
	radius = json_object_get(j, "radius");
	if (center == NULL || radius == NULL)
		return ctx_err(ctx, NULL, "needs center and radius");
	old = path_push(ctx, ".center");
	rv = geo_center_compile(ctx, center, g);
	path_pop(ctx, old);
	if (rv != VECDB_OK)
		return rv;
	if ((rv = number_get(ctx, radius, "radius", &g->radius)) != VECDB_OK)
		return rv;
	if (g->radius < 0)
		return ctx_err(ctx, "radius", "must be >= 0, not %g",
		    g->radius);
	return VECDB_OK;
}

/* ===== Conditions ===== */

static const char *const key_cond_keys[] = {
	"key", "match", "range", "geo_radius"
};

/* Compile {"key": k, "match" | "range" | "geo_radius": ...} into @p c. */
static int
cond_key_compile(struct compile_ctx *ctx, const json_t *j, struct cond *c)
{
	const json_t *m, *r, *g;
	size_t old;
	int rv;

	if ((rv = keys_check(ctx, j, key_cond_keys, 4,
	    "key with one of match, range, geo_radius")) != VECDB_OK)
		return rv;
	m = json_object_get(j, "match");
	r = json_object_get(j, "range");
	g = json_object_get(j, "geo_radius");
	if ((m != NULL) + (r != NULL) + (g != NULL) != 1)
		return ctx_err(ctx, NULL, "a condition with a key needs "
		    "exactly one of match, range, geo_radius");
	if ((rv = key_path_compile(ctx, json_object_get(j, "key"),
	    &c->key)) != VECDB_OK)
		return rv;
	old = path_push(ctx, m ? ".match" : r ? ".range" : ".geo_radius");
	if (m != NULL) {
		rv = match_compile(ctx, m, c);
	} else if (r != NULL) {
		c->kind = COND_RANGE;
		rv = range_compile(ctx, r, &c->u.range);
	} else {
		c->kind = COND_GEO;
		rv = geo_compile(ctx, g, &c->u.geo);
	}
	path_pop(ctx, old);
	return rv;
}

static const char *const nested_keys[] = { "key", "filter" };

/* Compile the {"key": k, "filter": F} inside a nested condition. */
static int
nested_body_compile(struct compile_ctx *ctx, const json_t *j, int depth,
    struct cond *c)
{
	const json_t *key, *filter;
	size_t old;
	int rv;

	if (!json_is_object(j))
		return ctx_err(ctx, NULL, "expected an object with key and "
		    "filter, not %s", json_kind_name(j));
	if ((rv = keys_check(ctx, j, nested_keys, 2, "key, filter")) !=
	    VECDB_OK)
		return rv;
	key = json_object_get(j, "key");
	filter = json_object_get(j, "filter");
	if (key == NULL || filter == NULL)
		return ctx_err(ctx, NULL, "needs key and filter");
	c->kind = COND_NESTED;
	if ((rv = key_path_compile(ctx, key, &c->key)) != VECDB_OK)
		return rv;
	old = path_push(ctx, ".filter");
	rv = filter_compile_at(ctx, filter, depth + 1, &c->u.sub);
	path_pop(ctx, old);
	return rv;
}

static const char *const nested_cond_keys[] = { "nested" };

/* Compile {"nested": {"key": k, "filter": F}} into @p c. */
static int
cond_nested_compile(struct compile_ctx *ctx, const json_t *j, int depth,
    struct cond *c)
{
	size_t old;
	int rv;

	if ((rv = keys_check(ctx, j, nested_cond_keys, 1,
	    "nested alone")) != VECDB_OK)
		return rv;
	old = path_push(ctx, ".nested");
	rv = nested_body_compile(ctx, json_object_get(j, "nested"), depth, c);
	path_pop(ctx, old);
	return rv;
}

/* True if object @p j has a must, should or must_not key. */
static int
has_clause(const json_t *j)
{
	int k;

	for (k = 0; k < CLAUSE_COUNT; k++)
		if (json_object_get(j, clause_names[k]) != NULL)
			return 1;
	return 0;
}

/* Compile one condition of a clause (in a filter at @p depth). */
static int
cond_compile(struct compile_ctx *ctx, const json_t *j, int depth,
    struct cond *c)
{
	if (!json_is_object(j))
		return ctx_err(ctx, NULL, "expected a condition object, not %s",
		    json_kind_name(j));
	if (++ctx->nconds > FILTER_CONDS_MAX)
		return ctx_err(ctx, NULL, "more than %d conditions in the "
		    "filter", FILTER_CONDS_MAX);
	if (json_object_get(j, "key") != NULL)
		return cond_key_compile(ctx, j, c);
	if (json_object_get(j, "nested") != NULL)
		return cond_nested_compile(ctx, j, depth, c);
	if (has_clause(j)) {
		c->kind = COND_FILTER;
		return filter_compile_at(ctx, j, depth + 1, &c->u.sub);
	}
	return ctx_err(ctx, NULL, "unknown condition (expected key with "
	    "match, range or geo_radius; nested; or a filter)");
}

/* ===== Filters ===== */

/* Compile a clause: an array of conditions, or one condition object. */
static int
clause_compile(struct compile_ctx *ctx, const json_t *j, int depth,
    struct cond_list *l)
{
	int single = json_is_object(j), rv;
	size_t i, n, old;

	if (!single && !json_is_array(j))
		return ctx_err(ctx, NULL, "expected an array of conditions "
		    "or one condition object, not %s", json_kind_name(j));
	n = single ? 1 : json_array_size(j);
	/* Checked before the calloc so a huge array costs nothing. */
	if (n > FILTER_CONDS_MAX - ctx->nconds)
		return ctx_err(ctx, NULL, "more than %d conditions in the "
		    "filter", FILTER_CONDS_MAX);
	if (n == 0)
		return VECDB_OK;
	if ((l->items = vdb_calloc(n, sizeof(*l->items))) == NULL)
		return nomem();
	l->n = n;
	for (i = 0; i < n; i++) {
		old = single ? ctx->len : path_push(ctx, "[%zu]", i);
		rv = cond_compile(ctx, single ? j : json_array_get(j, i),
		    depth, &l->items[i]);
		path_pop(ctx, old);
		if (rv != VECDB_OK)
			return rv;
	}
	return VECDB_OK;
}

/* Compile the filter object @p j found at nesting level @p depth (1..). */
static int
filter_compile_at(struct compile_ctx *ctx, const json_t *j, int depth,
    vecdb_filter **out)
{
	const json_t *c;
	vecdb_filter *f;
	size_t old;
	int k, rv;

	if (!json_is_object(j))
		return ctx_err(ctx, NULL, "expected a filter object with "
		    "must, should, must_not, not %s", json_kind_name(j));
	if (depth > FILTER_DEPTH_MAX)
		return ctx_err(ctx, NULL, "filters nested deeper than %d",
		    FILTER_DEPTH_MAX);
	if ((rv = keys_check(ctx, j, clause_names, CLAUSE_COUNT,
	    "must, should, must_not")) != VECDB_OK)
		return rv;
	if ((f = vdb_calloc(1, sizeof(*f))) == NULL)
		return nomem();
	for (k = 0; k < CLAUSE_COUNT; k++) {
		/* null is an absent clause, as Qdrant clients send it. */
		c = json_object_get(j, clause_names[k]);
		if (c == NULL || json_is_null(c))
			continue;
		old = path_push(ctx, ".%s", clause_names[k]);
		rv = clause_compile(ctx, c, depth, &f->clause[k]);
		path_pop(ctx, old);
		if (rv != VECDB_OK) {
			vecdb_filter_free(f);
			return rv;
		}
	}
	*out = f;
	return VECDB_OK;
}

int
filter_compile(const json_t *json, vecdb_filter **out)
{
	struct compile_ctx ctx;

	if (json == NULL || out == NULL)
		return vdb_err(VECDB_EINVAL, "filter: no filter given");
	ctx.nconds = 0;
	ctx.len = 0;
	path_push(&ctx, "filter");
	return filter_compile_at(&ctx, json, 1, out);
}

int
vecdb_filter_parse(const char *json, vecdb_filter **out)
{
	json_error_t jerr;
	json_t *j;
	int rv;

	if (json == NULL || out == NULL)
		return vdb_err(VECDB_EINVAL, "filter: no filter given");
	j = json_loads(json, JSON_REJECT_DUPLICATES, &jerr);
	if (j == NULL && json_error_code(&jerr) == json_error_out_of_memory)
		return nomem();
	if (j == NULL)
		return vdb_err(VECDB_EINVAL, "filter: invalid JSON at line %d "
		    "column %d: %s", jerr.line, jerr.column, jerr.text);
	rv = filter_compile(j, out);
	json_decref(j);
	return rv;
}

/* ===== Freeing ===== */

/* Release what key_path_compile() allocated. */
static void
key_path_free(struct key_path *p)
{
	vdb_free(p->buf);
	vdb_free(p->seg);
}

/* Release a condition's contents (not the cond itself). */
static void
cond_free(struct cond *c)
{
	size_t i;

	key_path_free(&c->key);
	switch (c->kind) {
	case COND_VALUE:
		vdb_free(c->u.value.str);
		break;
	case COND_ANY:
	case COND_EXCEPT:
		for (i = 0; i < c->u.list.n; i++)
			vdb_free(c->u.list.items[i].str);
		vdb_free(c->u.list.items);
		break;
	case COND_NESTED:
	case COND_FILTER:
		vecdb_filter_free(c->u.sub);
		break;
	default:
		break;
	}
}

void
vecdb_filter_free(vecdb_filter *f)
{
	size_t i;
	int k;

	if (f == NULL)
		return;
	for (k = 0; k < CLAUSE_COUNT; k++) {
		for (i = 0; i < f->clause[k].n; i++)
			cond_free(&f->clause[k].items[i]);
		vdb_free(f->clause[k].items);
	}
	vdb_free(f);
}

/* ===== Evaluation ===== */

/* Integer @p i equals real @p r exactly (2^53 + 1 is not 2^53). */
static int
int_eq_real(json_int_t i, double r)
{
	if (!(r >= -0x1p63 && r < 0x1p63) || r != trunc(r))
		return 0;
	return (json_int_t) r == i;
}

/* A payload value equals a match value, under the type rules. */
static int
scalar_eq(const struct scalar *s, const json_t *v)
{
	switch (s->type) {
	case SCALAR_STRING:
		return json_is_string(v) && json_string_length(v) == s->len &&
		    memcmp(json_string_value(v), s->str, s->len) == 0;
	case SCALAR_INT:
		if (json_is_integer(v))
			return json_integer_value(v) == s->num;
		return json_is_real(v) && int_eq_real(s->num,
		    json_real_value(v));
	case SCALAR_BOOL:
		return json_is_boolean(v) && json_is_true(v) == s->num;
	}
	return 0;
}

/* A payload value equals one entry of @p l. */
static int
list_has(const struct scalar_list *l, const json_t *v)
{
	size_t i;

	for (i = 0; i < l->n; i++)
		if (scalar_eq(&l->items[i], v))
			return 1;
	return 0;
}

/* The payload values that except can hold for: no null, array, object. */
static int
is_scalar(const json_t *v)
{
	return json_is_string(v) || json_is_number(v) || json_is_boolean(v);
}

/* @p x lies within every bound of @p r. */
static int
range_holds(const struct range *r, double x)
{
	if ((r->present & (1u << RANGE_GT)) && !(x > r->bound[RANGE_GT]))
		return 0;
	if ((r->present & (1u << RANGE_GTE)) && !(x >= r->bound[RANGE_GTE]))
		return 0;
	if ((r->present & (1u << RANGE_LT)) && !(x < r->bound[RANGE_LT]))
		return 0;
	if ((r->present & (1u << RANGE_LTE)) && !(x <= r->bound[RANGE_LTE]))
		return 0;
	return 1;
}

/* @p v is a valid {"lat", "lon"} object within the radius of @p g. */
static int
geo_holds(const struct geo *g, const json_t *v)
{
	const json_t *lat, *lon;
	double la, lo;

	if (!json_is_object(v))
		return 0;
	lat = json_object_get(v, "lat");
	lon = json_object_get(v, "lon");
	if (!json_is_number(lat) || !json_is_number(lon))
		return 0;
	la = json_number_value(lat);
	lo = json_number_value(lon);
	if (!(la >= -90 && la <= 90 && lo >= -180 && lo <= 180))
		return 0;
	return filter_geo_distance(g->lat, g->lon, la, lo) <= g->radius;
}

/* One candidate value found at the key satisfies @p c. */
static int
candidate_holds(const struct cond *c, const json_t *v)
{
	switch (c->kind) {
	case COND_VALUE:
		return scalar_eq(&c->u.value, v);
	case COND_ANY:
		return list_has(&c->u.list, v);
	case COND_EXCEPT:
		return is_scalar(v) && !list_has(&c->u.list, v);
	case COND_RANGE:
		return json_is_number(v) &&
		    range_holds(&c->u.range, json_number_value(v));
	case COND_GEO:
		return geo_holds(&c->u.geo, v);
	case COND_NESTED:
		return json_is_object(v) && filter_eval(c->u.sub, v);
	default:
		return 0;
	}
}

/* The value reached by a key, or one element if it is an array, holds. */
static int
reached_holds(const struct cond *c, const json_t *v)
{
	size_t i;

	if (!json_is_array(v))
		return candidate_holds(c, v);
	for (i = 0; i < json_array_size(v); i++)
		if (candidate_holds(c, json_array_get(v, i)))
			return 1;
	return 0;
}

/*
 * Walk key segments from @p i on, starting at @p v, and tell whether any
 * value reached satisfies @p c. Objects are walked in a loop; only arrays
 * recurse (into each object element), so the stack grows by at most one
 * frame per segment.
 */
static int
path_holds(const struct cond *c, const json_t *v, size_t i)
{
	const json_t *e;
	size_t k;

	while (i < c->key.nseg && json_is_object(v))
		v = json_object_get(v, c->key.seg[i++]);
	if (v == NULL)
		return 0;
	if (i == c->key.nseg)
		return reached_holds(c, v);
	if (!json_is_array(v))
		return 0;
	for (k = 0; k < json_array_size(v); k++) {
		e = json_array_get(v, k);
		if (json_is_object(e) && path_holds(c, e, i))
			return 1;
	}
	return 0;
}

/* Condition @p c holds on object @p obj (NULL: no keys at all). */
static int
cond_eval(const struct cond *c, const json_t *obj)
{
	if (c->kind == COND_FILTER)
		return filter_eval(c->u.sub, obj);
	return path_holds(c, obj, 0);
}

/* Every must, no must_not, and one should (if there are any) hold. */
static int
filter_eval(const vecdb_filter *f, const json_t *obj)
{
	const struct cond_list *l;
	size_t i;

	l = &f->clause[CLAUSE_MUST];
	for (i = 0; i < l->n; i++)
		if (!cond_eval(&l->items[i], obj))
			return 0;
	l = &f->clause[CLAUSE_MUST_NOT];
	for (i = 0; i < l->n; i++)
		if (cond_eval(&l->items[i], obj))
			return 0;
	l = &f->clause[CLAUSE_SHOULD];
	if (l->n == 0)
		return 1;
	for (i = 0; i < l->n; i++)
		if (cond_eval(&l->items[i], obj))
			return 1;
	return 0;
}

int
filter_match(const vecdb_filter *f, const json_t *payload)
{
	if (f == NULL)
		return 1;
	/* A payload that is not an object has no keys: it counts as {}. */
	return filter_eval(f, json_is_object(payload) ? payload : NULL);
}

double
filter_geo_distance(double lat1, double lon1, double lat2, double lon2)
{
	const double rad = M_PI / 180.0;
	double dlat = (lat2 - lat1) * rad, dlon = (lon2 - lon1) * rad;
	double sdlat = sin(dlat / 2), sdlon = sin(dlon / 2), a;

	a = sdlat * sdlat +
	    cos(lat1 * rad) * cos(lat2 * rad) * sdlon * sdlon;
	/* Rounding can push a past 1 near antipodes; sqrt(1 - a) needs it. */
	if (a > 1)
		a = 1;
	return 2 * EARTH_RADIUS_M * atan2(sqrt(a), sqrt(1 - a));
}

/* ===== Paths and terms for payload indexes ===== */

/* The length of path segment starting at p, without a trailing "[]". */
static size_t
seg_len(const char *p, const char **next)
{
	const char *dot = strchr(p, '.');
	size_t n = dot ? (size_t) (dot - p) : strlen(p);

	*next = dot ? dot + 1 : NULL;
	if (n >= 2 && p[n - 2] == '[' && p[n - 1] == ']')
		n -= 2;
	return n;
}

/* Visit the values at the rest of the path below v (see path_holds). */
static int
visit_at(const json_t *v, const char *p, int (*fn)(const json_t *, void *),
    void *arg)
{
	const char *next;
	size_t k;
	int rv;

	while (p != NULL && json_is_object(v)) {
		size_t n = seg_len(p, &next);
		v = json_object_getn(v, p, n);
		p = next;
	}
	if (v == NULL)
		return 0;
	if (p == NULL) {
		if (!json_is_array(v))
			return fn(v, arg);
		for (k = 0; k < json_array_size(v); k++)
			if ((rv = fn(json_array_get(v, k), arg)) != 0)
				return rv;
		return 0;
	}
	if (!json_is_array(v))
		return 0;
	for (k = 0; k < json_array_size(v); k++) {
		const json_t *e = json_array_get(v, k);
		if (json_is_object(e) && (rv = visit_at(e, p, fn, arg)) != 0)
			return rv;
	}
	return 0;
}

int
filter_path_visit(const json_t *payload, const char *path,
    int (*fn)(const json_t *v, void *arg), void *arg)
{
	if (!json_is_object(payload) || path == NULL || *path == '\0')
		return 0;
	return visit_at(payload, path, fn, arg);
}

/* Join a compiled key path back into its dotted form. */
static void
key_path_join(const struct key_path *k, char *out, size_t len)
{
	size_t off = 0;

	out[0] = '\0';
	for (size_t i = 0; i < k->nseg && off < len; i++)
		off += (size_t) snprintf(out + off, len - off, "%s%s",
		    i ? "." : "", k->seg[i]);
}

/* Fill t's values from one scalar or a list of them. */
static int
term_values(struct filter_term *t, const struct scalar *s, size_t n)
{
	if ((t->values = vdb_calloc(n ? n : 1, sizeof(*t->values))) == NULL)
		return VECDB_ENOMEM;
	for (size_t i = 0; i < n; i++)
		t->values[i] = (struct filter_value) { (int) s[i].type,
			(long long) s[i].num, s[i].str, s[i].len };
	t->n = n;
	return VECDB_OK;
}

/* The tightest [lo, hi] of a range; a strict bound wins a tie. */
static void
range_bounds(const struct range *r, struct filter_term *t)
{
	t->lo = -INFINITY;
	t->hi = INFINITY;
	t->lo_incl = t->hi_incl = 1;
	if (r->present & (1u << RANGE_GT)) {
		t->lo = r->bound[RANGE_GT];
		t->lo_incl = 0;
	}
	if ((r->present & (1u << RANGE_GTE)) && r->bound[RANGE_GTE] > t->lo) {
		t->lo = r->bound[RANGE_GTE];
		t->lo_incl = 1;
	}
	if (r->present & (1u << RANGE_LT)) {
		t->hi = r->bound[RANGE_LT];
		t->hi_incl = 0;
	}
	if ((r->present & (1u << RANGE_LTE)) && r->bound[RANGE_LTE] < t->hi) {
		t->hi = r->bound[RANGE_LTE];
		t->hi_incl = 1;
	}
}

/* Describe condition c as a term; 0 if it is not one. */
static int
term_of(const struct cond *c, struct filter_term *t)
{
	memset(t, 0, sizeof(*t));
	key_path_join(&c->key, t->path, sizeof(t->path));
	switch (c->kind) {
	case COND_VALUE:
		t->kind = FILTER_TERM_MATCH;
		return term_values(t, &c->u.value, 1) == VECDB_OK ? 1 : -1;
	case COND_ANY:
		t->kind = FILTER_TERM_MATCH;
		return term_values(t, c->u.list.items, c->u.list.n) == VECDB_OK ?
		    1 : -1;
	case COND_RANGE:
		t->kind = FILTER_TERM_RANGE;
		range_bounds(&c->u.range, t);
		return 1;
	case COND_GEO:
		t->kind = FILTER_TERM_GEO;
		t->lat = c->u.geo.lat;
		t->lon = c->u.geo.lon;
		t->radius = c->u.geo.radius;
		return 1;
	default:
		return 0;
	}
}

int
filter_terms(const vecdb_filter *f,
    void (*fn)(const struct filter_term *t, void *arg), void *arg)
{
	const struct cond_list *l;
	struct filter_term t;
	int rv;

	if (f == NULL)
		return VECDB_OK;
	l = &f->clause[CLAUSE_MUST];
	for (size_t i = 0; i < l->n; i++) {
		if ((rv = term_of(&l->items[i], &t)) < 0)
			return vdb_err(VECDB_ENOMEM, "out of memory");
		if (rv > 0)
			fn(&t, arg);
		vdb_free(t.values);
	}
	return VECDB_OK;
}
