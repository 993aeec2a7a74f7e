/*
 * filter.h: payload filters, compiled once from JSON and evaluated against
 * a point's payload (a jansson object). The JSON grammar is documented at
 * vecdb_filter_parse() in include/vecdb.h and in docs/FILTERS.md.
 *
 * Self-contained (library vecdb_filter, storage/filter/, which the build
 * keeps closed): depends on jansson and common/ only.
 */
#ifndef STORAGE_FILTER_H
#define STORAGE_FILTER_H

#include <jansson.h>

#include "vecdb.h"

/* Limits that keep a hostile filter from costing more than a scan. */
#define FILTER_DEPTH_MAX 32       /* nested filters */
#define FILTER_CONDS_MAX 4096     /* conditions in a whole filter */
#define FILTER_KEY_MAX 256        /* bytes in a key path */

/*
 * Compile an already-parsed JSON filter (borrowed). The result owns copies
 * of everything it needs. @return VECDB_OK or VECDB_EINVAL with a message
 * (vecdb_errmsg()) naming where the filter is wrong.
 */
int filter_compile(const json_t *json, vecdb_filter **out);

/* 1 if @p payload (a JSON object, borrowed; NULL counts as {}) matches. */
int filter_match(const vecdb_filter *f, const json_t *payload);

/*
 * What a filter may ask of a point besides its payload: has_id compares
 * its id key (vdb_id_key's bytes), has_vector asks whether it carries
 * the vector of a name ("" the default one). A NULL key, or callback,
 * makes those conditions false.
 */
struct filter_point {
	const uint8_t *key;
	size_t klen;
	int (*has_vector)(const char *name, void *arg);
	void *arg;
};

/* filter_match() of a point: its payload and what pt says of it. */
int filter_match_point(const vecdb_filter *f, const json_t *payload,
    const struct filter_point *pt);

/*
 * Call @p fn on every value a condition on @p path would test in @p payload
 * (the same walk: objects by segment, into objects inside arrays, and one
 * level of array flattening at the end). Stops and returns fn's value when
 * it returns non-zero; 0 otherwise.
 */
int filter_path_visit(const json_t *payload, const char *path,
    int (*fn)(const json_t *v, void *arg), void *arg);

/* ===== Terms, for a query planner ===== */

enum filter_term_kind {
	FILTER_TERM_MATCH,   /* the value is one of values[0..n) */
	FILTER_TERM_RANGE,   /* lo/hi bounds */
	FILTER_TERM_GEO      /* within radius metres of lat/lon */
};

/* One scalar of a match term. type: 0 string, 1 integer, 2 bool. */
struct filter_value {
	int type;
	long long num;       /* integer, or bool 0/1 */
	const char *str;     /* string bytes (borrowed from the filter) */
	size_t len;
};

/* A top-level `must` condition a payload index could answer. */
struct filter_term {
	char path[FILTER_KEY_MAX + 1];  /* dotted, as written (no []) */
	enum filter_term_kind kind;
	struct filter_value *values;    /* MATCH: n values (owned) */
	size_t n;
	double lo, hi;                  /* RANGE: -inf/inf when absent */
	int lo_incl, hi_incl;
	double lat, lon, radius;        /* GEO */
};

/*
 * Call @p fn for each top-level `must` match value / any, range and
 * geo_radius condition. Every point matching the filter matches each such
 * term, so any one term's matches are a superset of the filter's.
 * Returns VECDB_OK or VECDB_ENOMEM.
 */
int filter_terms(const vecdb_filter *f,
    void (*fn)(const struct filter_term *t, void *arg), void *arg);

/* Haversine distance in metres between two lat/lon points in degrees. */
double filter_geo_distance(double lat1, double lon1, double lat2, double lon2);

#endif /* STORAGE_FILTER_H */
