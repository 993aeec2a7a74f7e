/*
 * storage_repl.h: what the storage engine offers replication (replication/
 * and the node): read the WAL as raw bytes on a primary, apply those bytes
 * on a replica, copy and load a whole database for a bootstrap, hear about
 * commits, and digest a collection's content.
 *
 * Raw records travel in a packed blob: each record is
 *
 *   [len u32 LE][seq u64 BE][record: len bytes]
 *
 * where the record is the WAL value exactly as stored ([ver u8][term u64]
 * [op u8][body], see storage_impl.h). A replica stores the same bytes under
 * the same seq, so its WAL is a copy of the primary's.
 */
#ifndef STORAGE_REPL_H
#define STORAGE_REPL_H

#include <stddef.h>
#include <stdint.h>

#include "vecdb.h"

#define STORAGE_REPL_HDR 12     /* [len u32][seq u64] before each record */

/* Where a database's WAL stands. */
struct storage_wal_info {
	uint64_t oldest_seq;    /* oldest record still held; 0: none */
	uint64_t last_seq;      /* last committed seq (0: nothing yet) */
	uint64_t term;          /* the term the writer stamps on records */
	uint64_t last_term;     /* the term of the record at last_seq */
};

/*
 * Read the WAL bounds in one read transaction.
 * @return VECDB_OK or VECDB_EIO.
 */
int storage_wal_info_get(vecdb *db, struct storage_wal_info *out);

/*
 * Start term @p term (a promotion): through the writer, meta "term"
 * becomes @p term and records it starts at the next seq, which every
 * record written from then on carries.
 * @param[out] start_seq the first seq of the new term.
 * @return VECDB_OK, VECDB_EINVAL (not above the current term),
 *	VECDB_EIO, VECDB_ECLOSED.
 */
int storage_term_begin(vecdb *db, uint64_t term, uint64_t *start_seq);

/*
 * For a replica at @p after_seq whose record there has term @p after_term:
 * the last seq its history shares with this database's (after_seq when it
 * is merely behind or level; less when it holds records of an older term
 * that this history replaced, or records past our last seq). From the
 * record terms and the term starts in meta, in one read transaction, with
 * *info from the same one.
 * @return VECDB_OK, VECDB_EIO.
 */
int storage_wal_common(vecdb *db, uint64_t after_seq, uint64_t after_term,
    uint64_t *common, struct storage_wal_info *info);

/*
 * Pack the records after @p after_seq into a blob: at most @p max_records
 * and about @p max_bytes (always at least one record when there is one, so
 * a single large record still ships). Records and *info come from the same
 * read transaction.
 * @param[out] blob caller frees with vdb_free(); NULL when *count is 0.
 * @return VECDB_OK (possibly with *count 0: nothing new), VECDB_ENOTFOUND
 *	when records after @p after_seq have been trimmed (the caller must
 *	bootstrap; *info is still filled), VECDB_ENOMEM, VECDB_EIO.
 */
int storage_wal_read(vecdb *db, uint64_t after_seq, size_t max_records,
    size_t max_bytes, uint8_t **blob, size_t *len, size_t *count,
    struct storage_wal_info *info);

/*
 * Apply a blob of records on a replica, in one write transaction through
 * the writer thread: points, catalog, payload indexes, the records
 * themselves (same seq and term) and last_seq commit together. The first
 * record must follow the database's last seq and each the one before.
 * Every record is decoded and checked as it is applied; any error aborts
 * the whole blob.
 *
 * A RESTORE record cannot be replayed (the snapshot's points are not in
 * the WAL): the records before it are applied and *restore is set to 1;
 * the caller must bootstrap.
 * @param[out] last_seq the database's last seq afterwards.
 * @return VECDB_OK, VECDB_ECORRUPT (malformed, out of order, or not
 *	consistent with this database: nothing applied, message says which
 *	record), VECDB_EREADONLY, VECDB_EFULL, VECDB_EIO.
 */
int storage_wal_apply(vecdb *db, const uint8_t *blob, size_t len,
    uint64_t *last_seq, int *restore);

/*
 * Write a consistent, compacted copy of the whole database (one LMDB
 * file) to @p path, which must not exist.
 * @return VECDB_OK, VECDB_EIO.
 */
int storage_copy(vecdb *db, const char *path);

/*
 * Replace the whole content of the database with that of a copy made by
 * storage_copy() (its WAL, last seq and term included), in one write
 * transaction through the writer thread; the in-memory indexes are then
 * rebuilt from the new points. Readers see the old content or the new,
 * never a mix.
 * @return VECDB_OK, VECDB_ECORRUPT (not a vecdb database of this format),
 *	VECDB_EREADONLY, VECDB_EFULL, VECDB_EIO.
 */
int storage_load(vecdb *db, const char *path);

/*
 * Call @p fn(arg, last_seq) on the writer thread after every commit that
 * moved the last seq (NULL: none). fn must be quick and must not call the
 * engine: it runs before the group's callers wake.
 */
void storage_commit_hook_set(vecdb *db, void (*fn)(void *, uint64_t),
    void *arg);

/*
 * WAL retention for replicas: beyond the last wal_retain records, keep
 * those after @p hold_seq (the oldest position a replica has
 * acknowledged) as long as the WAL takes at most about @p max_bytes.
 * UINT64_MAX: hold nothing (the default). Safe from any thread; the next
 * commit trims accordingly.
 */
void storage_wal_hold_set(vecdb *db, uint64_t hold_seq, uint64_t max_bytes);

/* A collection's content digest. */
struct storage_digest {
	char name[VECDB_NAME_MAX + 1];
	uint64_t count;          /* points */
	uint8_t sha256[32];      /* over ids, vector bytes and payloads */
};

/*
 * Digest every collection in one read transaction: SHA-256 over each
 * point in id order ([key len][key][vector len][vector bytes][payload
 * len][payload]), so two databases with the same points, vectors and
 * payloads digest the same whatever their offsets or history.
 * @param[out] out caller frees with vdb_free(); collections in name order.
 * @return VECDB_OK, VECDB_ENOMEM, VECDB_EIO.
 */
int storage_digest_all(vecdb *db, struct storage_digest **out, size_t *n,
    uint64_t *last_seq);

#endif /* STORAGE_REPL_H */
