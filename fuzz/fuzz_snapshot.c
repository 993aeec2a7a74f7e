/*
 * fuzz_snapshot.c: snapshot files as an upload brings them
 * (POST /collections/:c/snapshots/upload): the local backend's
 * snapshot_restore_file, i.e. vecdb_snapshot_restore_file, which checks
 * the SHA-256 trailer (snap_verify) and then parses the header, the
 * collection record and every point (storage_snapshot.c) in the writer.
 * A restore that succeeds is read back once the indexer has built its
 * graph: a scroll with vectors and payloads, and a search.
 *
 * A mutated file would almost never get past the checksum, so when the
 * input ends in a trailer ("VDBSNEND" + 32 bytes) its checksum is set to
 * the SHA-256 of what precedes it, as a real file's is; an input without
 * one goes in as it is and exercises snap_verify.
 */
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "fuzz.h"

#define TRAILER 40   /* "VDBSNEND" and the SHA-256 */

static vecdb *db;
static struct api_backend b;
static char path[4200];

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void) argc;
	(void) argv;
	fz_init();
	db = fz_db_open(fz_tmpdir("snap"));
	fz_db_seed(db);
	api_backend_local_init(&b, db);
	snprintf(path, sizeof(path), "%s/upload.snapshot",
	    fz_tmpdir("snap-upload"));
	return 0;
}

/* d with its trailer's checksum made right, if it has a trailer. */
static uint8_t *
checksum_fix(const uint8_t *d, size_t n)
{
	uint8_t *f = malloc(n ? n : 1);
	unsigned int len = 0;

	if (f == NULL)
		abort();
	memcpy(f, d, n);
	if (n >= TRAILER && memcmp(f + n - TRAILER, "VDBSNEND", 8) == 0 &&
	    (EVP_Digest(f, n - TRAILER, f + n - 32, &len, EVP_sha256(),
		NULL) != 1 || len != 32))
		abort();
	return f;
}

/* Read the restored collection back: every point, and a search. */
static void
read_back(void)
{
	vecdb_collection_config c;
	vecdb_collection_stats st;
	vecdb_search_params p;
	vecdb_records *res;
	float *q;

	if (b.scroll(b.ctx, "restored", &(vecdb_id) { VECDB_ID_NONE, 0,
		{ 0 } }, 100, NULL, 1, 1, &res) == VECDB_OK)
		vecdb_records_free(res);
	if (b.collection_get(b.ctx, "restored", &c, &st) != VECDB_OK ||
	    (q = malloc(c.dimension * sizeof(float))) == NULL)
		return;
	for (uint32_t i = 0; i < c.dimension; i++)
		q[i] = 1;
	memset(&p, 0, sizeof(p));
	p.vector = q;
	p.dim = c.dimension;
	p.limit = 5;
	p.with_payload = 1;
	if (vecdb_search(db, "restored", &p, &res) == VECDB_OK)
		vecdb_records_free(res);
	free(q);
}

int
LLVMFuzzerTestOneInput(const uint8_t *d, size_t n)
{
	uint8_t *f = checksum_fix(d, n);

	fz_file_write(path, f, n);
	free(f);
	if (b.snapshot_restore_file(b.ctx, "restored", path) != VECDB_OK)
		return 0;
	if (vecdb_index_sync(db, 60000) != VECDB_OK)
		abort();
	read_back();
	return 0;
}
