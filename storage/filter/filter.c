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
#include <time.h>

#include "filter.h"
#include "vdb.h"

#define FILTER_LIST_MAX 1024     /* entries in match any / except */
#define FILTER_STRING_MAX 4096   /* bytes in one match string */
#define FILTER_PATH_BUF 1536     /* error location: fits 32 nested levels */
#define FILTER_PATH_HEAD 64      /* shown of a long location: its start */
#define FILTER_PATH_TAIL 160     /* ... and its end */
#define FILTER_MSG_BUF 200       /* error detail after the location */
#define EARTH_RADIUS_M 6371008.8 /* mean radius (IUGG), as Qdrant uses */
#define FILTER_POLY_MAX 4096     /* vertices of one geo_polygon ring */
#define FILTER_RINGS_MAX 64      /* interior rings of one geo_polygon */

/* ===== Types ===== */

enum clause { CLAUSE_MUST, CLAUSE_SHOULD, CLAUSE_MUST_NOT, CLAUSE_COUNT };

static const char *const clause_names[CLAUSE_COUNT + 1] = {
	"must", "should", "must_not", "min_should"
};

enum cond_kind {
	COND_NONE = 0, /* not compiled yet: owns nothing but its key */
	COND_VALUE,    /* match value */
	COND_ANY,      /* match any */
	COND_EXCEPT,   /* match except */
	COND_RANGE,    /* range */
	COND_GEO,      /* geo_radius */
	COND_NESTED,   /* some object at the key matches sub */
	COND_FILTER,   /* sub, applied to the same object */
	COND_TEXT,     /* match text: a string holding the text */
	COND_DATETIME, /* datetime_range: an RFC 3339 string within range */
	COND_BBOX,     /* geo_bounding_box */
	COND_POLYGON,  /* geo_polygon */
	COND_COUNT,    /* values_count: how many values the key holds */
	COND_EMPTY,    /* is_empty: no value, null, or [] */
	COND_NULL,     /* is_null: null */
	COND_NOT_EMPTY,/* {key, is_empty: false} */
	COND_NOT_NULL, /* {key, is_null: false} */
	COND_HAS_ID,   /* has_id: the point's id is one of the list */
	COND_HAS_VEC   /* has_vector: the point carries that vector */
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

struct bbox {
	double top, left, bottom, right; /* degrees; left > right wraps */
};

struct ring {
	double *lat, *lon;  /* n vertices (the ring closes itself) */
	size_t n;
};

struct polygon {
	struct ring *rings; /* rings[0] the exterior, then the holes */
	size_t n;
};

/* min_should's conditions, at least min of which must hold. */
struct min_should {
	struct cond *items;
	size_t n;
	size_t min;
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
		struct bbox bbox;        /* COND_BBOX */
		struct polygon poly;     /* COND_POLYGON */
		struct idkeys {          /* COND_HAS_ID: sorted id keys */
			uint8_t (*k)[17];
			uint8_t *len;
			size_t n;
		} ids;
		char *vec;               /* COND_HAS_VEC: the name */
	} u;
};

struct cond_list {
	struct cond *items; /* n conds; zeroed ones are COND_NONE */
	size_t n;           /* 0 when the clause is absent or [] */
};

struct vecdb_filter {
	struct cond_list clause[CLAUSE_COUNT]; /* must, should, must_not */
	struct cond_list min_should;           /* at least min_count of */
	size_t min_count;                      /* these hold */
};

/* State of one compile: where we are, for messages, and what it cost. */
struct compile_ctx {
	char path[FILTER_PATH_BUF]; /* "filter.must[2].range" */
	size_t len;                 /* strlen(path) */
	size_t nconds;              /* conditions seen so far */
};

static int filter_compile_at(struct compile_ctx *ctx, const json_t *j,
    int depth, vecdb_filter **out);
static int filter_eval(const vecdb_filter *f, const json_t *obj,
    const struct filter_point *pt);
static int datetime_parse(const char *s, size_t n, double *out);

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

static const char *const match_keys[] = { "value", "any", "except", "text" };

/* Compile {"value": v} | {"any": [...]} | {"except": [...]} |
 * {"text": s} into @p c. */
static int
match_compile(struct compile_ctx *ctx, const json_t *j, struct cond *c)
{
	const json_t *v, *any, *except, *text;
	size_t old;
	int rv;

	if (!json_is_object(j))
		return ctx_err(ctx, NULL, "expected an object with one of "
		    "value, any, except, text, not %s", json_kind_name(j));
	if ((rv = keys_check(ctx, j, match_keys, 4,
	    "value, any, except or text")) != VECDB_OK)
		return rv;
	v = json_object_get(j, "value");
	any = json_object_get(j, "any");
	except = json_object_get(j, "except");
	text = json_object_get(j, "text");
	if ((v != NULL) + (any != NULL) + (except != NULL) + (text != NULL) !=
	    1)
		return ctx_err(ctx, NULL,
		    "needs exactly one of value, any, except, text");
	if (text != NULL) {
		old = path_push(ctx, ".text");
		if (!json_is_string(text))
			rv = ctx_err(ctx, NULL, "expected a string, not %s",
			    json_kind_name(text));
		else
			rv = scalar_compile(ctx, text, &c->u.value);
		c->kind = COND_TEXT;
		path_pop(ctx, old);
		return rv;
	}
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

/* Compile {"gt": x, "gte": x, "lt": x, "lte": x} (one or more): numbers,
 * or with datetime RFC 3339 date-times (as seconds since the epoch). */
static int
range_compile(struct compile_ctx *ctx, const json_t *j, struct range *r,
    int datetime)
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
		if (datetime && (!json_is_string(v) || !datetime_parse(
		    json_string_value(v), json_string_length(v),
		    &r->bound[b])))
			return ctx_err(ctx, range_names[b], "expected an RFC "
			    "3339 date-time such as \"2024-05-01T12:00:00Z\"");
		if (!datetime && (rv = number_get(ctx, v, range_names[b],
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

/* A {"lat", "lon"} value in range into *la, *lo: 1, else 0. */
static int
geo_point(const json_t *v, double *la, double *lo)
{
	const json_t *lat, *lon;

	if (!json_is_object(v))
		return 0;
	lat = json_object_get(v, "lat");
	lon = json_object_get(v, "lon");
	if (!json_is_number(lat) || !json_is_number(lon))
		return 0;
	*la = json_number_value(lat);
	*lo = json_number_value(lon);
	return *la >= -90 && *la <= 90 && *lo >= -180 && *lo <= 180;
}

/* Compile {"top_left": {lat, lon}, "bottom_right": {lat, lon}}. */
static int
bbox_compile(struct compile_ctx *ctx, const json_t *j, struct bbox *b)
{
	static const char *const keys[] = { "top_left", "bottom_right" };
	struct geo tl, br;
	size_t old;
	int rv;

	if (!json_is_object(j))
		return ctx_err(ctx, NULL, "expected an object with top_left "
		    "and bottom_right, not %s", json_kind_name(j));
	if ((rv = keys_check(ctx, j, keys, 2, "top_left, bottom_right")) !=
	    VECDB_OK)
		return rv;
	if (json_object_get(j, "top_left") == NULL ||
	    json_object_get(j, "bottom_right") == NULL)
		return ctx_err(ctx, NULL, "needs top_left and bottom_right");
	old = path_push(ctx, ".top_left");
	rv = geo_center_compile(ctx, json_object_get(j, "top_left"), &tl);
	path_pop(ctx, old);
	if (rv != VECDB_OK)
		return rv;
	old = path_push(ctx, ".bottom_right");
	rv = geo_center_compile(ctx, json_object_get(j, "bottom_right"), &br);
	path_pop(ctx, old);
	if (rv != VECDB_OK)
		return rv;
	if (br.lat > tl.lat)
		return ctx_err(ctx, NULL, "bottom_right.lat %g is north of "
		    "top_left.lat %g", br.lat, tl.lat);
	b->top = tl.lat;
	b->left = tl.lon;
	b->bottom = br.lat;
	b->right = br.lon;
	return VECDB_OK;
}

/* Compile one ring {"points": [{lat, lon}, ...]} (3 vertices or more;
 * a closing repeat of the first is allowed, not needed). */
static int
ring_compile(struct compile_ctx *ctx, const json_t *j, struct ring *r)
{
	static const char *const keys[] = { "points" };
	const json_t *pts;
	size_t i, n, old;
	int rv;

	if (!json_is_object(j))
		return ctx_err(ctx, NULL, "expected an object with points, "
		    "not %s", json_kind_name(j));
	if ((rv = keys_check(ctx, j, keys, 1, "points")) != VECDB_OK)
		return rv;
	pts = json_object_get(j, "points");
	n = json_array_size(pts);
	if (!json_is_array(pts) || n < 3 || n > FILTER_POLY_MAX)
		return ctx_err(ctx, "points", "expected a list of 3 to %d "
		    "{lat, lon}", FILTER_POLY_MAX);
	if ((r->lat = vdb_calloc(n, sizeof(double))) == NULL ||
	    (r->lon = vdb_calloc(n, sizeof(double))) == NULL)
		return nomem();
	for (i = 0; i < n; i++) {
		struct geo g;
		old = path_push(ctx, ".points[%zu]", i);
		rv = geo_center_compile(ctx, json_array_get(pts, i), &g);
		path_pop(ctx, old);
		if (rv != VECDB_OK)
			return rv;
		r->lat[i] = g.lat;
		r->lon[i] = g.lon;
	}
	r->n = n;
	return VECDB_OK;
}

/* Compile {"exterior": ring, "interiors": [ring, ...]?}. */
static int
polygon_compile(struct compile_ctx *ctx, const json_t *j, struct polygon *p)
{
	static const char *const keys[] = { "exterior", "interiors" };
	const json_t *in;
	size_t i, n, old;
	int rv;

	if (!json_is_object(j))
		return ctx_err(ctx, NULL, "expected an object with exterior, "
		    "not %s", json_kind_name(j));
	if ((rv = keys_check(ctx, j, keys, 2, "exterior, interiors")) !=
	    VECDB_OK)
		return rv;
	in = json_object_get(j, "interiors");
	if (in != NULL && json_is_null(in))
		in = NULL;
	if (json_object_get(j, "exterior") == NULL)
		return ctx_err(ctx, NULL, "needs exterior");
	if (in != NULL && (!json_is_array(in) ||
	    json_array_size(in) > FILTER_RINGS_MAX))
		return ctx_err(ctx, "interiors", "expected a list of at most "
		    "%d rings", FILTER_RINGS_MAX);
	n = 1 + json_array_size(in);
	if ((p->rings = vdb_calloc(n, sizeof(*p->rings))) == NULL)
		return nomem();
	p->n = n;
	for (i = 0; i < n; i++) {
		old = i == 0 ? path_push(ctx, ".exterior") :
		    path_push(ctx, ".interiors[%zu]", i - 1);
		rv = ring_compile(ctx, i == 0 ? json_object_get(j, "exterior") :
		    json_array_get(in, i - 1), &p->rings[i]);
		path_pop(ctx, old);
		if (rv != VECDB_OK)
			return rv;
	}
	return VECDB_OK;
}

/* Days from 1970-01-01 to y-m-d of the proleptic Gregorian calendar. */
static long
days_from_civil(long y, unsigned m, unsigned d)
{
	long era;
	unsigned yoe, doy, doe;

	y -= m <= 2;
	era = (y >= 0 ? y : y - 399) / 400;
	yoe = (unsigned) (y - era * 400);
	doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + (long) doe - 719468;
}

/* n decimal digits at s into *v. */
static int
digits(const char *s, size_t n, unsigned *v)
{
	*v = 0;
	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return 0;
		*v = *v * 10 + (unsigned) (s[i] - '0');
	}
	return 1;
}

/*
 * An RFC 3339 date-time (or what Qdrant also takes of it): YYYY-MM-DD,
 * then optionally T or a space and HH:MM[:SS[.fraction]], then
 * optionally Z or an offset +HH:MM / -HH:MM (UTC without one), into
 * seconds since the epoch. 1, or 0 when s is not one.
 */
static int
datetime_parse(const char *s, size_t n, double *out)
{
	static const unsigned mdays[] = { 31, 29, 31, 30, 31, 30, 31, 31, 30,
		31, 30, 31 };
	unsigned y, mo, d, h = 0, mi = 0, sec = 0, oh, om;
	double frac = 0, scale = 0.1;
	long off = 0;
	size_t i = 10;

	if (n < 10 || !digits(s, 4, &y) || s[4] != '-' ||
	    !digits(s + 5, 2, &mo) || s[7] != '-' || !digits(s + 8, 2, &d) ||
	    mo < 1 || mo > 12 || d < 1 || d > mdays[mo - 1] ||
	    (mo == 2 && d == 29 && !(y % 4 == 0 && (y % 100 != 0 ||
	    y % 400 == 0))))
		return 0;
	if (i < n && (s[i] == 'T' || s[i] == 't' || s[i] == ' ')) {
		if (n < i + 6 || !digits(s + i + 1, 2, &h) || s[i + 3] != ':' ||
		    !digits(s + i + 4, 2, &mi) || h > 23 || mi > 59)
			return 0;
		i += 6;
		if (i < n && s[i] == ':') {
			if (n < i + 3 || !digits(s + i + 1, 2, &sec) || sec > 60)
				return 0;
			i += 3;
			if (i < n && s[i] == '.') {
				if (++i >= n || s[i] < '0' || s[i] > '9')
					return 0;
				for (; i < n && s[i] >= '0' && s[i] <= '9'; i++) {
					frac += (s[i] - '0') * scale;
					scale /= 10;
				}
			}
		}
		if (i < n && (s[i] == 'Z' || s[i] == 'z')) {
			i++;
		} else if (i < n && (s[i] == '+' || s[i] == '-')) {
			int neg = s[i] == '-';
			if (n >= i + 6 && s[i + 3] == ':' &&
			    digits(s + i + 1, 2, &oh) && digits(s + i + 4, 2,
			    &om))
				i += 6;
			else if (n >= i + 5 && digits(s + i + 1, 2, &oh) &&
			    digits(s + i + 3, 2, &om))
				i += 5;
			else
				return 0;
			if (oh > 23 || om > 59)
				return 0;
			off = (long) (oh * 3600 + om * 60) * (neg ? -1 : 1);
		}
	}
	if (i != n)
		return 0;
	*out = (double) days_from_civil((long) y, mo, d) * 86400.0 +
	    h * 3600.0 + mi * 60.0 + sec - (double) off + frac;
	return 1;
}

/* Order of id keys: by length, then bytes (numbers before UUIDs). */
static int
idkey_cmp(const uint8_t *a, size_t al, const uint8_t *b, size_t bl)
{
	if (al != bl)
		return al < bl ? -1 : 1;
	return memcmp(a, b, al);
}

/* Compile {"has_id": [ids]} or {"has_vector": name} into @p c. */
static int
cond_has_compile(struct compile_ctx *ctx, const json_t *j, struct cond *c)
{
	static const char *const outer[] = { "has_id", "has_vector" };
	const json_t *ids = json_object_get(j, "has_id"), *x;
	size_t i, n, old;
	int rv;

	if ((rv = keys_check(ctx, j, outer, 2, "has_id or has_vector")) !=
	    VECDB_OK)
		return rv;
	if (json_object_size(j) != 1)
		return ctx_err(ctx, NULL, "has_id and has_vector are separate "
		    "conditions");
	if (ids == NULL) {
		const json_t *v = json_object_get(j, "has_vector");
		if (!json_is_string(v) || json_string_length(v) >
		    VECDB_NAME_MAX)
			return ctx_err(ctx, "has_vector", "expected a vector "
			    "name (\"\" for the default vector)");
		if ((c->u.vec = vdb_malloc(json_string_length(v) + 1)) == NULL)
			return nomem();
		memcpy(c->u.vec, json_string_value(v), json_string_length(v) +
		    1);
		c->kind = COND_HAS_VEC;
		return VECDB_OK;
	}
	old = path_push(ctx, ".has_id");
	n = json_array_size(ids);
	if (!json_is_array(ids) || n > FILTER_LIST_MAX) {
		rv = ctx_err(ctx, NULL, "expected a list of at most %d point "
		    "ids", FILTER_LIST_MAX);
		path_pop(ctx, old);
		return rv;
	}
	c->kind = COND_HAS_ID;
	if ((c->u.ids.k = vdb_calloc(n ? n : 1, 17)) == NULL ||
	    (c->u.ids.len = vdb_calloc(n ? n : 1, 1)) == NULL)
		return nomem();
	json_array_foreach(ids, i, x) {
		vecdb_id id;
		if (json_is_integer(x) && json_integer_value(x) >= 0) {
			id = vecdb_id_num((uint64_t) json_integer_value(x));
		} else if (!json_is_string(x) ||
		    vecdb_id_parse_uuid(json_string_value(x), &id) != VECDB_OK) {
			rv = ctx_err(ctx, NULL, "[%zu]: expected an unsigned "
			    "integer or a UUID", i);
			path_pop(ctx, old);
			return rv;
		}
		c->u.ids.len[i] = (uint8_t) vdb_id_key(&id, c->u.ids.k[i]);
	}
	c->u.ids.n = n;
	/* sorted, for a binary search */
	for (i = 1; i < n; i++)
		for (size_t k = i; k > 0 && idkey_cmp(c->u.ids.k[k],
		    c->u.ids.len[k], c->u.ids.k[k - 1], c->u.ids.len[k - 1]) <
		    0; k--) {
			uint8_t t[17], tl = c->u.ids.len[k];
			memcpy(t, c->u.ids.k[k], 17);
			memcpy(c->u.ids.k[k], c->u.ids.k[k - 1], 17);
			c->u.ids.len[k] = c->u.ids.len[k - 1];
			memcpy(c->u.ids.k[k - 1], t, 17);
			c->u.ids.len[k - 1] = tl;
		}
	path_pop(ctx, old);
	return VECDB_OK;
}

/* Compile {"is_empty" | "is_null": {"key": k}} into @p c. */
static int
cond_is_compile(struct compile_ctx *ctx, const json_t *j, struct cond *c)
{
	static const char *const outer[] = { "is_empty", "is_null" };
	static const char *const inner[] = { "key" };
	int empty = json_object_get(j, "is_empty") != NULL, rv;
	const json_t *body = json_object_get(j, empty ? "is_empty" :
	    "is_null");
	size_t old;

	if ((rv = keys_check(ctx, j, outer, 2, "is_empty or is_null")) !=
	    VECDB_OK)
		return rv;
	if (json_object_size(j) != 1)
		return ctx_err(ctx, NULL, "is_empty and is_null are separate "
		    "conditions");
	old = path_push(ctx, empty ? ".is_empty" : ".is_null");
	if (!json_is_object(body))
		rv = ctx_err(ctx, NULL, "expected {\"key\": ...}, not %s",
		    json_kind_name(body));
	else if ((rv = keys_check(ctx, body, inner, 1, "key")) == VECDB_OK &&
	    json_object_get(body, "key") == NULL)
		rv = ctx_err(ctx, NULL, "needs key");
	else if (rv == VECDB_OK)
		rv = key_path_compile(ctx, json_object_get(body, "key"),
		    &c->key);
	path_pop(ctx, old);
	c->kind = empty ? COND_EMPTY : COND_NULL;
	return rv;
}

/* ===== Conditions ===== */

static const char *const key_cond_keys[] = {
	"key", "match", "range", "geo_radius", "datetime_range",
	"geo_bounding_box", "geo_polygon", "values_count", "is_empty",
	"is_null"
};
#define KEY_CONDS 9   /* the kinds of a condition with a key */

/* Compile {"key": k, and one of match, range, geo_radius, datetime_range,
 * geo_bounding_box, geo_polygon, values_count} into @p c. */
static int
cond_key_compile(struct compile_ctx *ctx, const json_t *j, struct cond *c)
{
	const json_t *v = NULL;
	int which = -1, rv;
	size_t old;

	if ((rv = keys_check(ctx, j, key_cond_keys, KEY_CONDS + 1,
	    "key with one of match, range, geo_radius, datetime_range, "
	    "geo_bounding_box, geo_polygon, values_count, is_empty, "
	    "is_null")) != VECDB_OK)
		return rv;
	for (int k = 1; k <= KEY_CONDS; k++)
		if (json_object_get(j, key_cond_keys[k]) != NULL) {
			if (which >= 0)
				which = KEY_CONDS + 1;
			else
				which = k;
		}
	if (which < 0 || which > KEY_CONDS)
		return ctx_err(ctx, NULL, "a condition with a key needs "
		    "exactly one of match, range, geo_radius, datetime_range, "
		    "geo_bounding_box, geo_polygon, values_count, is_empty, "
		    "is_null");
	v = json_object_get(j, key_cond_keys[which]);
	if ((rv = key_path_compile(ctx, json_object_get(j, "key"),
	    &c->key)) != VECDB_OK)
		return rv;
	old = path_push(ctx, ".%s", key_cond_keys[which]);
	switch (which) {
	case 1:
		rv = match_compile(ctx, v, c);
		break;
	case 2:
		c->kind = COND_RANGE;
		rv = range_compile(ctx, v, &c->u.range, 0);
		break;
	case 3:
		c->kind = COND_GEO;
		rv = geo_compile(ctx, v, &c->u.geo);
		break;
	case 4:
		c->kind = COND_DATETIME;
		rv = range_compile(ctx, v, &c->u.range, 1);
		break;
	case 5:
		c->kind = COND_BBOX;
		rv = bbox_compile(ctx, v, &c->u.bbox);
		break;
	case 6:
		c->kind = COND_POLYGON;
		rv = polygon_compile(ctx, v, &c->u.poly);
		break;
	case 8:
	case 9:
		/* Qdrant's older form: {"key": k, "is_empty": bool} */
		if (!json_is_boolean(v)) {
			rv = ctx_err(ctx, NULL, "expected true or false, not %s",
			    json_kind_name(v));
			break;
		}
		c->kind = which == 8 ? (json_is_true(v) ? COND_EMPTY :
		    COND_NOT_EMPTY) : (json_is_true(v) ? COND_NULL :
		    COND_NOT_NULL);
		break;
	default:
		c->kind = COND_COUNT;
		rv = range_compile(ctx, v, &c->u.range, 0);
		break;
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

	for (k = 0; k <= CLAUSE_COUNT; k++)
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
	if (json_object_get(j, "is_empty") != NULL ||
	    json_object_get(j, "is_null") != NULL)
		return cond_is_compile(ctx, j, c);
	if (json_object_get(j, "has_id") != NULL ||
	    json_object_get(j, "has_vector") != NULL)
		return cond_has_compile(ctx, j, c);
	if (has_clause(j)) {
		c->kind = COND_FILTER;
		return filter_compile_at(ctx, j, depth + 1, &c->u.sub);
	}
	return ctx_err(ctx, NULL, "unknown condition (expected key with "
	    "match, range, geo_radius, datetime_range, geo_bounding_box, "
	    "geo_polygon or values_count; is_empty; is_null; has_id; "
	    "has_vector; nested; or a filter)");
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

/* Compile {"conditions": [...], "min_count": n} into f's min_should. */
static int
min_should_compile(struct compile_ctx *ctx, const json_t *j, int depth,
    vecdb_filter *f)
{
	static const char *const keys[] = { "conditions", "min_count" };
	const json_t *conds, *min;
	size_t old;
	int rv;

	if (!json_is_object(j))
		return ctx_err(ctx, NULL, "expected {\"conditions\": [...], "
		    "\"min_count\": n}, not %s", json_kind_name(j));
	if ((rv = keys_check(ctx, j, keys, 2, "conditions, min_count")) !=
	    VECDB_OK)
		return rv;
	conds = json_object_get(j, "conditions");
	min = json_object_get(j, "min_count");
	if (conds == NULL || !json_is_integer(min) ||
	    json_integer_value(min) < 0)
		return ctx_err(ctx, NULL, "needs conditions and min_count (an "
		    "integer >= 0)");
	old = path_push(ctx, ".conditions");
	rv = clause_compile(ctx, conds, depth, &f->min_should);
	path_pop(ctx, old);
	f->min_count = (size_t) json_integer_value(min);
	return rv;
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
	if ((rv = keys_check(ctx, j, clause_names, CLAUSE_COUNT + 1,
	    "must, should, must_not, min_should")) != VECDB_OK)
		return rv;
	if ((f = vdb_calloc(1, sizeof(*f))) == NULL)
		return nomem();
	c = json_object_get(j, "min_should");
	if (c != NULL && !json_is_null(c)) {
		old = path_push(ctx, ".min_should");
		rv = min_should_compile(ctx, c, depth, f);
		path_pop(ctx, old);
		if (rv != VECDB_OK) {
			vecdb_filter_free(f);
			return rv;
		}
	}
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
	case COND_TEXT:
		vdb_free(c->u.value.str);
		break;
	case COND_HAS_ID:
		vdb_free(c->u.ids.k);
		vdb_free(c->u.ids.len);
		break;
	case COND_HAS_VEC:
		vdb_free(c->u.vec);
		break;
	case COND_POLYGON:
		for (i = 0; i < c->u.poly.n; i++) {
			vdb_free(c->u.poly.rings[i].lat);
			vdb_free(c->u.poly.rings[i].lon);
		}
		vdb_free(c->u.poly.rings);
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
	for (i = 0; i < f->min_should.n; i++)
		cond_free(&f->min_should.items[i]);
	vdb_free(f->min_should.items);
	vdb_free(f);
}

/* ===== Evaluation ===== */

static int range_holds(const struct range *r, double x);

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
	double la, lo;

	return geo_point(v, &la, &lo) &&
	    filter_geo_distance(g->lat, g->lon, la, lo) <= g->radius;
}

/* Is (la, lo) inside ring r (even-odd rule, in the lon/lat plane)? */
static int
ring_holds(const struct ring *r, double la, double lo)
{
	int in = 0;

	for (size_t i = 0, j = r->n - 1; i < r->n; j = i++)
		if ((r->lat[i] > la) != (r->lat[j] > la) &&
		    lo < (r->lon[j] - r->lon[i]) * (la - r->lat[i]) /
		    (r->lat[j] - r->lat[i]) + r->lon[i])
			in = !in;
	return in;
}

/* A geo point inside the exterior ring and outside every hole. */
static int
polygon_holds(const struct polygon *p, const json_t *v)
{
	double la, lo;

	if (!geo_point(v, &la, &lo) || !ring_holds(&p->rings[0], la, lo))
		return 0;
	for (size_t i = 1; i < p->n; i++)
		if (ring_holds(&p->rings[i], la, lo))
			return 0;
	return 1;
}

/* A geo point inside the box (which may cross the antimeridian). */
static int
bbox_holds(const struct bbox *b, const json_t *v)
{
	double la, lo;

	if (!geo_point(v, &la, &lo) || la > b->top || la < b->bottom)
		return 0;
	if (b->left <= b->right)
		return lo >= b->left && lo <= b->right;
	return lo >= b->left || lo <= b->right;
}

/* A string holding the text (bytes, case-sensitive). */
static int
text_holds(const struct scalar *t, const json_t *v)
{
	const char *s = json_string_value(v);
	size_t n = json_string_length(v);

	if (s == NULL || t->len > n)
		return 0;
	if (t->len == 0)
		return 1;
	for (size_t i = 0; i + t->len <= n; i++)
		if (s[i] == t->str[0] && memcmp(s + i, t->str, t->len) == 0)
			return 1;
	return 0;
}

/* An RFC 3339 string within the range. */
static int
datetime_holds(const struct range *r, const json_t *v)
{
	double t;

	return json_is_string(v) && datetime_parse(json_string_value(v),
	    json_string_length(v), &t) && range_holds(r, t);
}

/* One candidate value found at the key satisfies @p c. */
static int
candidate_holds(const struct cond *c, const json_t *v)
{
	switch (c->kind) {
	case COND_TEXT:
		return text_holds(&c->u.value, v);
	case COND_DATETIME:
		return datetime_holds(&c->u.range, v);
	case COND_BBOX:
		return bbox_holds(&c->u.bbox, v);
	case COND_POLYGON:
		return polygon_holds(&c->u.poly, v);
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
		/* inside an array element, the point is not the subject */
		return json_is_object(v) && filter_eval(c->u.sub, v, NULL);
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

/*
 * Count the values key c reaches from segment i on at v (an array
 * counts its elements, null none, anything else one) into *n, and note
 * a null among them in *null.
 */
static void
path_count(const struct cond *c, const json_t *v, size_t i, size_t *n,
    int *null)
{
	const json_t *e;
	size_t k;

	while (i < c->key.nseg && json_is_object(v))
		v = json_object_get(v, c->key.seg[i++]);
	if (v == NULL)
		return;
	if (i == c->key.nseg) {
		if (json_is_null(v))
			*null = 1;
		else
			*n += json_is_array(v) ? json_array_size(v) : 1;
		return;
	}
	if (!json_is_array(v))
		return;
	for (k = 0; k < json_array_size(v); k++) {
		e = json_array_get(v, k);
		if (json_is_object(e))
			path_count(c, e, i, n, null);
	}
}

/* Is the point's id key one of c's? */
static int
has_id_holds(const struct cond *c, const struct filter_point *pt)
{
	size_t lo = 0, hi = c->u.ids.n;

	if (pt == NULL || pt->key == NULL)
		return 0;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		int d = idkey_cmp(c->u.ids.k[mid], c->u.ids.len[mid], pt->key,
		    pt->klen);
		if (d == 0)
			return 1;
		if (d < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return 0;
}

/* Condition @p c holds on object @p obj (NULL: no keys at all) of point
 * pt (NULL: unknown). */
static int
cond_eval(const struct cond *c, const json_t *obj,
    const struct filter_point *pt)
{
	size_t n = 0;
	int null = 0;

	switch (c->kind) {
	case COND_FILTER:
		return filter_eval(c->u.sub, obj, pt);
	case COND_HAS_ID:
		return has_id_holds(c, pt);
	case COND_HAS_VEC:
		return pt != NULL && pt->has_vector != NULL &&
		    pt->has_vector(c->u.vec, pt->arg);
	case COND_COUNT:
	case COND_EMPTY:
	case COND_NULL:
	case COND_NOT_EMPTY:
	case COND_NOT_NULL:
		path_count(c, obj, 0, &n, &null);
		switch (c->kind) {
		case COND_COUNT: return range_holds(&c->u.range, (double) n);
		case COND_EMPTY: return n == 0;
		case COND_NOT_EMPTY: return n > 0;
		case COND_NULL: return null;
		default: return !null;
		}
	default:
		return path_holds(c, obj, 0);
	}
}

/* Every must, no must_not, and one should (if there are any) hold. */
static int
filter_eval(const vecdb_filter *f, const json_t *obj,
    const struct filter_point *pt)
{
	const struct cond_list *l;
	size_t i;

	l = &f->clause[CLAUSE_MUST];
	for (i = 0; i < l->n; i++)
		if (!cond_eval(&l->items[i], obj, pt))
			return 0;
	l = &f->clause[CLAUSE_MUST_NOT];
	for (i = 0; i < l->n; i++)
		if (cond_eval(&l->items[i], obj, pt))
			return 0;
	if (f->min_count > 0) {
		size_t held = 0;
		l = &f->min_should;
		for (i = 0; i < l->n && held < f->min_count; i++)
			held += cond_eval(&l->items[i], obj, pt) != 0;
		if (held < f->min_count)
			return 0;
	}
	l = &f->clause[CLAUSE_SHOULD];
	if (l->n == 0)
		return 1;
	for (i = 0; i < l->n; i++)
		if (cond_eval(&l->items[i], obj, pt))
			return 1;
	return 0;
}

int
filter_match_point(const vecdb_filter *f, const json_t *payload,
    const struct filter_point *pt)
{
	if (f == NULL)
		return 1;
	/* A payload that is not an object has no keys: it counts as {}. */
	return filter_eval(f, json_is_object(payload) ? payload : NULL, pt);
}

int
filter_match(const vecdb_filter *f, const json_t *payload)
{
	return filter_match_point(f, payload, NULL);
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
