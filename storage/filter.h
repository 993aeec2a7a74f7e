/*
 * filter.h: payload filters, compiled once from JSON and evaluated against
 * a point's payload (a jansson object). The JSON grammar is documented at
 * vecdb_filter_parse() in include/vecdb.h and in docs/FILTERS.md.
 *
 * Self-contained: depends on jansson and common/ only.
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

/* Haversine distance in metres between two lat/lon points in degrees. */
double filter_geo_distance(double lat1, double lon1, double lat2, double lon2);

#endif /* STORAGE_FILTER_H */
