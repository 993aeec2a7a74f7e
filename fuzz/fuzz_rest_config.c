/*
 * fuzz_rest_config.c: the bodies that configure: a collection's config
 * (POST /collections: api_config_from_json, then the engine's checks of
 * a real create), a payload index (POST .../index), a promotion
 * (POST /cluster/promote), and snapshot names in URLs (GET of one
 * snapshot and of the list). What a request creates is dropped after it.
 */
#include "fuzz_rest.h"

static const char *const routes[] = { "collections", "collections/:c/index",
	"cluster/promote", "collections/:c/snapshots/:s",
	"collections/:c/snapshots", NULL };

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
