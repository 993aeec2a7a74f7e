/*
 * api_json_text.h: JSON text with every unsigned 64-bit integer, for the
 * REST API and its clients (vecdbctl). Depends on jansson and common/.
 */
#ifndef API_JSON_TEXT_H
#define API_JSON_TEXT_H

#include <jansson.h>
#include <stdint.h>

/*
 * Parse and print JSON as json_loadb() and json_dumps() do, but with the
 * unsigned integers above INT64_MAX (point ids) jansson cannot hold: a
 * request body parsed with api_json_loadb() carries each one as a marked
 * value, which api_json_get_u64() reads and api_json_dumps() prints back
 * as the bare number. Every request body must be read, and every
 * response written, through these two.
 */
json_t *api_json_loadb(const char *buf, size_t len, size_t flags,
    json_error_t *err);
/*
 * api_json_loadb() for a request body: a top-level "vector" array of
 * numbers comes out as one marked value, read much faster than jansson
 * reads numbers, which only api_json_get_floats() (through
 * api_vector_from_json()) reads. Accepts and refuses exactly what
 * api_json_loadb() does, with the same errors.
 */
json_t *api_json_loadb_body(const char *buf, size_t len, size_t flags,
    json_error_t *err);
/* The same for the top-level array @p name ("query": Qdrant's). */
json_t *api_json_loadb_body_key(const char *buf, size_t len, size_t flags,
    const char *name, json_error_t *err);
/* Is j a marked float array? */
int api_json_is_floats(const json_t *j);
/* A marked float array: 1 with *out (vdb_malloc'd, non-empty) and *n; 0
 * when j is not one; -1 out of memory. */
int api_json_get_floats(const json_t *j, float **out, uint32_t *n);
/* Free the result with free(), as json_dumps()'s. */
char *api_json_dumps(const json_t *j, size_t flags);
/*
 * A value that api_json_dumps() prints as the JSON text given (a stored
 * payload), as it is, without parsing it (new reference; NULL when out of
 * memory or text is not UTF-8). Only for printing: to jansson it is a
 * marked string.
 */
json_t *api_json_raw(const char *text);
/* The same for any value (a payload cut to some fields, a payload real),
 * printed with its reals in the fewest digits that keep them; takes t's
 * reference. */
json_t *api_json_raw_tree(json_t *t);

/* A JSON number for v (new reference): an integer, or above INT64_MAX a
 * marked one that only api_json_dumps() prints right. */
json_t *api_json_uint(uint64_t v);
/* A non-negative integer, marked or not, into *out: 1, else 0. */
int api_json_get_u64(const json_t *j, uint64_t *out);
/* Is j an integer above INT64_MAX (a marked one)? */
int api_json_is_big(const json_t *j);
/* EINVAL naming @p what if j holds an integer above INT64_MAX anywhere:
 * for what is stored or compared as signed (payloads, filters). */
int api_json_check_int64(const json_t *j, const char *what);

#endif /* API_JSON_TEXT_H */
