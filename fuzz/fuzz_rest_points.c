/*
 * fuzz_rest_points.c: the point routes' bodies and URL ids: insert, batch,
 * upsert, update (PUT), batch delete, get and delete by id. Parsers:
 * api_points_from_json, api_ids_from_json, api_id_from_str, then the
 * engine's write checks (vecdb_write_check).
 */
#include "fuzz_rest.h"

#define C "collections/:c"
static const char *const routes[] = { C "/vectors", C "/vectors/batch",
	C "/vectors/upsert", C "/vectors/batch-delete", C "/vectors/:id",
	NULL };

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
