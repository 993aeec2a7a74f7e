/* storage_id.c: fresh point ids (parsing, formatting and keys: vdb_ids.c). */
#include <uuid/uuid.h>

#include "storage_impl.h"

void
storage_id_generate(vecdb_id *out)
{
	uuid_t u;

	uuid_generate_random(u);
	memset(out, 0, sizeof(*out));
	out->kind = VECDB_ID_UUID;
	memcpy(out->uuid, u, 16);
}
