/*
 * fuzz_wal.c: WAL records as a replica receives them from its primary (a
 * WalBatch's records: storage_repl.h's packed blob). storage_wal_apply
 * cuts the blob into records, decodes each (storage_wal_decode, the point
 * iterator of storage_wal.c, the collection records of the catalog) and
 * replays it through the engine's write paths; the indexer then reads the
 * committed records back into the HNSW graphs.
 *
 * The replica holds the seeded collections. A blob that applies moves its
 * last seq; the database is then loaded back to the seeded state
 * (storage_load of a copy made at start, what a bootstrap does), so that
 * every input meets the same database. The seeds are records a primary
 * wrote after that same state (fuzz/gen_seeds.c), so their seqs follow.
 */
#include <stdio.h>
#include <stdlib.h>

#include "fuzz.h"
#include "storage_repl.h"

static vecdb *db;
static char pristine[4200];
static uint64_t pristine_seq;

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	struct storage_wal_info info;

	(void) argc;
	(void) argv;
	fz_init();
	db = fz_db_open(fz_tmpdir("wal"));
	fz_db_seed(db);
	snprintf(pristine, sizeof(pristine), "%s/seeded.mdb",
	    fz_tmpdir("wal-copy"));
	if (storage_copy(db, pristine) != VECDB_OK ||
	    storage_wal_info_get(db, &info) != VECDB_OK)
		abort();
	pristine_seq = info.last_seq;
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *d, size_t n)
{
	uint64_t last = pristine_seq;
	int restore = 0;

	if (storage_wal_apply(db, d, n, &last, &restore) != VECDB_OK ||
	    last == pristine_seq)
		return 0;
	/* the indexer follows the new records: wait for it here, so that
	 * what it does with them belongs to this input (the rebuild after
	 * the load is the seeded state's, and may go on meanwhile) */
	if (vecdb_index_sync(db, 60000) != VECDB_OK ||
	    storage_load(db, pristine) != VECDB_OK)
		abort();
	return 0;
}
