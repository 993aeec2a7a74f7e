/*
 * fuzz_rest.h: the REST request runner the fuzz_rest_* targets share
 * (fuzz_rest.c says how an input becomes a request).
 */
#ifndef FUZZ_REST_H
#define FUZZ_REST_H

#include <stddef.h>
#include <stdint.h>

/* Open and seed the database, start the server the handlers refer to. */
void fz_rest_init(void);

/*
 * Run the request in d[0..n) if its route's pattern is one of @p allowed
 * (NULL-terminated); anything else is ignored. Always returns 0.
 */
int fz_rest_run(const uint8_t *d, size_t n, const char *const *allowed);
/* The same on the routes of the Qdrant API (api_qdrant.c). */
int fz_rest_run_qdrant(const uint8_t *d, size_t n,
    const char *const *allowed);

#endif /* FUZZ_REST_H */
