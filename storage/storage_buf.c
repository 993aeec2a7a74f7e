/*
 * storage_buf.c: a growable byte buffer, for building WAL records
 * (storage_wal.c), replication batches and the indexer's arena.
 */
#include "storage_impl.h"

int
buf_put(struct buf *b, const void *p, size_t n)
{
	if (b->len + n > b->cap) {
		size_t cap = b->cap ? b->cap : 256;
		uint8_t *np;
		while (cap < b->len + n)
			cap *= 2;
		if ((np = vdb_realloc(b->p, cap)) == NULL)
			return vdb_err(VECDB_ENOMEM, "out of memory");
		b->p = np;
		b->cap = cap;
	}
	if (n > 0)
		memcpy(b->p + b->len, p, n);
	b->len += n;
	return VECDB_OK;
}

int
buf_put_u8(struct buf *b, uint8_t v)
{
	return buf_put(b, &v, 1);
}

int
buf_put_le16(struct buf *b, uint16_t v)
{
	return buf_put(b, &v, 2);
}

int
buf_put_le32(struct buf *b, uint32_t v)
{
	uint8_t t[4];

	put_le32(t, v);
	return buf_put(b, t, 4);
}

void
buf_fini(struct buf *b)
{
	vdb_free(b->p);
	b->p = NULL;
	b->len = b->cap = 0;
}
