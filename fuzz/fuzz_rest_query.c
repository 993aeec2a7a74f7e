/*
 * fuzz_rest_query.c: the query routes' bodies: search, batch search,
 * recommend, discover, scroll, count (api_query.c), with their filters
 * compiled by storage/filter/filter.c and run by the engine over the seeded
 * collections (HNSW, exact scan, payload index plans).
 */
#include "fuzz_rest.h"

#define C "collections/:c"
static const char *const routes[] = { C "/search", C "/points/search/batch",
	C "/points/recommend", C "/points/discover", C "/points/scroll",
	C "/points/count", NULL };

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
	return fz_rest_run(d, n, routes);
}
