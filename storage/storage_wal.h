/*
 * storage_wal.h: the WAL's records, both ways (storage_wal.c). The writer's
 * apply steps log their changes through the encoders; the indexer,
 * recovery and replication read records back through the decoders. The
 * byte layout of a record lives in storage_wal.c and nowhere else.
 *
 * A record is the value of key [seq u64, big-endian] in the `wal` DB:
 * [ver u8][term u64][op u8][body], committed in the same transaction as
 * the change it describes. Records come off disk or the wire, so every
 * decoder checks every length before use.
 *
 * Module-internal: include storage_impl.h, which includes this.
 */
#ifndef STORAGE_WAL_H
#define STORAGE_WAL_H

#include "storage_impl.h"

enum wal_op {
	WAL_CREATE = 1,   /* [namelen u16][name][coll record: the rest] */
	WAL_DROP = 2,     /* [coll id u32] */
	WAL_PUT = 3,      /* [coll id u32][n u32] n x [keylen u8][key]
			     [old offset u64][offset u64]
			     [veclen u32][vec][paylen u32][payload];
			     old offset WAL_NO_OFFSET for a new point */
	WAL_DELETE = 4,   /* [coll id u32][n u32] n x [keylen u8][key]
			     [offset u64] */
	WAL_RESTORE = 5,  /* [coll id u32][sha256 32] */
	WAL_PINDEX_CREATE = 6, /* [coll id u32][schema u8][field] */
	WAL_PINDEX_DROP = 7,   /* [coll id u32][field] */
	WAL_INDEX = 8,         /* [coll id u32][on u8]: vector index on/off;
				  on also means rebuild */
	WAL_CONFIG = 9         /* [coll id u32][coll record: the rest]: the
				  collection's settings changed (its
				  quantization): store them, rebuild */
};

/* Or'ed into a record's op byte: the next record is of the same request
 * (a batch of points spans records of at most ~2 KB, WAL_REC_MAX), and a
 * replica applies them in one transaction, as the primary did. */
#define WAL_MORE 0x80

/* Bytes before the body: version, term, op. */
#define WAL_HDR 10

/* ===== Writing records (writer thread, in the request's nested txn) ===== */

/*
 * Each appends one record at seq w->seq + 1, stamped with w->term, and
 * advances w->seq. They return VECDB_OK, VECDB_ENOMEM, or LMDB's error
 * mapped (storage_mdb_err).
 */
int storage_wal_log_create(struct wctx *w, const char *name,
    const uint8_t *rec, size_t rec_len);
int storage_wal_log_drop(struct wctx *w, uint32_t coll_id);
int storage_wal_log_config(struct wctx *w, uint32_t coll_id,
    const uint8_t *rec, size_t rec_len);
int storage_wal_log_restore(struct wctx *w, uint32_t coll_id,
    const uint8_t sum[32]);
int storage_wal_log_pindex_create(struct wctx *w, uint32_t coll_id,
    int schema, const char *field);
int storage_wal_log_pindex_drop(struct wctx *w, uint32_t coll_id,
    const char *field);
int storage_wal_log_index(struct wctx *w, uint32_t coll_id, int on);

/*
 * The PUT or DELETE records of one request, built as its points are
 * written: entries gather into a record until the next would take it past
 * WAL_REC_MAX bytes, then the record is appended (with WAL_MORE) and the
 * next begins. Every point records the seq of the record its entry is in,
 * w->seq + 1 while it is written. Caller storage:
 *   storage_wal_batch_init, then per point storage_wal_batch_room and
 *   one entry, then storage_wal_batch_end; storage_wal_batch_fini always.
 */
struct wal_batch {
	struct buf body;         /* the open record's body */
	uint8_t op;              /* WAL_PUT or WAL_DELETE */
	uint32_t coll_id;
	uint32_t n;              /* entries in the open record */
};

int storage_wal_batch_init(struct wal_batch *b, uint8_t op,
    uint32_t coll_id);
/* Make room for an entry of at most @p entry_bytes: append the open
 * record first if the entry would take it past WAL_REC_MAX. */
int storage_wal_batch_room(struct wctx *w, struct wal_batch *b,
    size_t entry_bytes);
/* The most bytes a PUT entry with these vector and payload sizes takes
 * (before the write, an update that keeps its payload has no size yet). */
size_t storage_wal_put_size(size_t vec_len, size_t pay_len);
size_t storage_wal_del_size(size_t klen);
/* Add one entry to the open record. */
int storage_wal_batch_put(struct wal_batch *b, const uint8_t *key,
    size_t klen, uint64_t old_offset, uint64_t offset, const void *vec,
    size_t vec_len, const char *pay, size_t pay_len);
int storage_wal_batch_del(struct wal_batch *b, const uint8_t *key,
    size_t klen, uint64_t offset);
/* Append the open record, if it has entries, as the request's last. */
int storage_wal_batch_end(struct wctx *w, struct wal_batch *b);
void storage_wal_batch_fini(struct wal_batch *b);

/* ===== Reading records ===== */

#define WAL_NO_OFFSET UINT64_MAX

/* A decoded WAL record (borrowed from the txn it was read in). */
struct wal_rec {
	uint64_t seq;
	uint64_t term;
	uint8_t op;              /* enum wal_op */
	uint8_t more;            /* WAL_MORE was set: the request goes on */
	const uint8_t *body;
	size_t len;
};

/* One point of a PUT or DELETE record. */
struct wal_entry {
	const uint8_t *key;      /* point key */
	size_t klen;
	uint64_t old_offset;     /* the offset it had, or WAL_NO_OFFSET */
	uint64_t offset;         /* PUT: its offset now; DELETE: none */
	const void *vec;         /* PUT: the vector, in the collection's type */
	size_t vlen;
	const char *payload;     /* PUT: compact JSON, may be empty */
	size_t plen;
};

/* Walks the entries of a PUT or DELETE record. */
struct wal_iter {
	uint8_t op;
	uint32_t coll_id;
	uint32_t n, i;
	const uint8_t *p, *end;
};

int storage_wal_decode(const MDB_val *k, const MDB_val *v, struct wal_rec *out);
/* Whether a raw record value (as stored or shipped) has WAL_MORE set. */
int storage_wal_more(const MDB_val *v);
/* The collection a record is about (not for WAL_CREATE). */
int storage_wal_coll(const struct wal_rec *r, uint32_t *coll_id);
/* The number of entries of a PUT or DELETE record; 0 for any other. */
uint32_t storage_wal_count(const struct wal_rec *r);
int storage_wal_iter_init(struct wal_iter *it, const struct wal_rec *r);
/* 1 with *e filled, 0 at the end, negative VECDB_ECORRUPT if malformed. */
int storage_wal_next(struct wal_iter *it, struct wal_entry *e);

/* A CREATE record: the name (NUL-terminated) and the catalog record
 * (borrowed from r) and its length. VECDB_ECORRUPT if the lengths do
 * not add up. */
int storage_wal_create_decode(const struct wal_rec *r,
    char name[VECDB_NAME_MAX + 1], const uint8_t **rec, size_t *rec_len);
/* A CONFIG record's catalog record (borrowed from r) and its length. */
int storage_wal_config_decode(const struct wal_rec *r, const uint8_t **rec,
    size_t *rec_len);
/* An INDEX record's flag. */
int storage_wal_index_decode(const struct wal_rec *r, int *on);
/* Whether r is an INDEX record that turns the index off (tolerant: a
 * record too short to say is not). */
int storage_wal_index_off(const struct wal_rec *r);
/* A PINDEX_CREATE (schema and field) or PINDEX_DROP (field; *schema
 * untouched) record. */
int storage_wal_pindex_decode(const struct wal_rec *r, int *schema,
    char field[VECDB_FIELD_NAME_MAX + 1]);

#endif /* STORAGE_WAL_H */
