/*
 * fuzz_rest_qdrant.c: the bodies of the Qdrant API (api_qdrant.c,
 * api_qdrant_query.c): collection configs, points in both upsert forms,
 * payload and vector updates, selectors, and every query shape
 * (nearest, id, sparse, recommend, discover, context, fusion over
 * prefetches, the legacy routes and batches) as they are translated into
 * the native API's and run over the seeded collections.
 */
#include "fuzz_rest.h"

#define C "collections/:c"
#define P C "/points"
static const char *const routes[] = { C, C "/exists", C "/index",
	C "/index/:f", P, P "/:id", P "/delete", P "/payload",
	P "/payload/delete", P "/payload/clear", P "/vectors",
	P "/vectors/delete", P "/scroll", P "/count", P "/query",
	P "/query/batch", P "/search", P "/search/batch", P "/recommend",
	P "/recommend/batch", P "/discover", P "/discover/batch", P "/batch",
	P "/query/groups", P "/search/groups", P "/recommend/groups",
	C "/facet", C "/snapshots/recover", "collections/aliases", C "/aliases",
	"aliases", NULL };

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
	return fz_rest_run_qdrant(d, n, routes);
}
