/*
 * proto_repl.c: the replication messages (FetchWal, WalBatch, bootstrap).
 * The records and chunks are opaque bytes here; storage_wal_apply() and
 * the bootstrap's SHA-256 check them on the replica.
 */
#include <string.h>

#include "proto_impl.h"

/* ===== FetchWal ===== */

int
proto_fetch_wal_encode(const struct proto_fetch_wal *f, uint8_t **out,
    size_t *len)
{
	Vecdb__FetchWal m;

	vecdb__fetch_wal__init(&m);
	m.after_seq = f->after_seq;
	m.max_records = f->max_records;
	m.max_bytes = f->max_bytes;
	m.max_wait_ms = f->max_wait_ms;
	m.replica_id = proto_str(f->replica_id);
	m.after_term = f->after_term;
	m.term = f->term;
	return proto_pack(&m.base, out, len);
}

int
proto_fetch_wal_decode(const uint8_t *buf, size_t len,
    struct proto_fetch_wal *out)
{
	ProtobufCMessage *pm;
	Vecdb__FetchWal *m;
	struct proto_fetch_wal f;
	int rv;

	if ((rv = proto_unpack(&vecdb__fetch_wal__descriptor, buf, len,
		 &pm)) != VECDB_OK)
		return rv;
	m = (Vecdb__FetchWal *) pm;
	memset(&f, 0, sizeof(f));
	f.after_seq = m->after_seq;
	f.max_records = m->max_records;
	f.max_bytes = m->max_bytes;
	f.max_wait_ms = m->max_wait_ms;
	f.after_term = m->after_term;
	f.term = m->term;
	rv = proto_name_get(m->replica_id, PROTO_REPLICA_ID_MAX, 0,
	    "replica id", f.replica_id);
	proto_unpacked_free(pm);
	if (rv == VECDB_OK)
		*out = f;
	return rv;
}

/* ===== WalBatch ===== */

int
proto_wal_batch_encode(const struct proto_wal_batch *b, uint8_t **out,
    size_t *len)
{
	Vecdb__WalBatch m;

	vecdb__wal_batch__init(&m);
	m.records.data = b->records;
	m.records.len = b->records_len;
	m.count = b->count;
	m.last_seq = b->last_seq;
	m.oldest_seq = b->oldest_seq;
	m.term = b->term;
	m.diverged = b->diverged != 0;
	m.common_seq = b->common_seq;
	return proto_pack(&m.base, out, len);
}

int
proto_wal_batch_decode(const uint8_t *buf, size_t len,
    struct proto_wal_batch **out)
{
	struct proto_wal_batch *b;
	ProtobufCMessage *pm;
	Vecdb__WalBatch *m;
	int rv;

	if ((rv = proto_unpack(&vecdb__wal_batch__descriptor, buf, len,
		 &pm)) != VECDB_OK)
		return rv;
	m = (Vecdb__WalBatch *) pm;
	if ((b = vdb_calloc(1, sizeof(*b))) == NULL)
		rv = vdb_err(VECDB_ENOMEM, "out of memory");
	else if (m->count > 0 && m->records.len == 0)
		rv = vdb_err(VECDB_EINVAL, "WalBatch of %u records has no "
		    "bytes", m->count);
	else
		rv = proto_bytes_dup(m->records.data, m->records.len,
		    &b->records);
	if (rv == VECDB_OK) {
		b->records_len = m->records.len;
		b->count = m->count;
		b->last_seq = m->last_seq;
		b->oldest_seq = m->oldest_seq;
		b->term = m->term;
		b->diverged = m->diverged;
		b->common_seq = m->common_seq;
		*out = b;
	} else {
		vdb_free(b);
	}
	proto_unpacked_free(pm);
	return rv;
}

void
proto_wal_batch_free(struct proto_wal_batch *b)
{
	if (b == NULL)
		return;
	vdb_free(b->records);
	vdb_free(b);
}

/* ===== Bootstrap ===== */

int
proto_bootstrap_begin_encode(const char *replica_id, uint8_t **out,
    size_t *len)
{
	Vecdb__BootstrapBegin m;

	vecdb__bootstrap_begin__init(&m);
	m.replica_id = proto_str(replica_id);
	return proto_pack(&m.base, out, len);
}

int
proto_bootstrap_begin_decode(const uint8_t *buf, size_t len,
    char replica_id[PROTO_REPLICA_ID_MAX + 1])
{
	ProtobufCMessage *pm;
	int rv;

	if ((rv = proto_unpack(&vecdb__bootstrap_begin__descriptor, buf, len,
		 &pm)) != VECDB_OK)
		return rv;
	rv = proto_name_get(((Vecdb__BootstrapBegin *) pm)->replica_id,
	    PROTO_REPLICA_ID_MAX, 0, "replica id", replica_id);
	proto_unpacked_free(pm);
	return rv;
}

int
proto_bootstrap_info_encode(const struct proto_bootstrap_info *i,
    uint8_t **out, size_t *len)
{
	Vecdb__BootstrapInfo m;

	vecdb__bootstrap_info__init(&m);
	m.session = i->session;
	m.size = i->size;
	m.sha256.data = (uint8_t *) (uintptr_t) i->sha256;
	m.sha256.len = 32;
	return proto_pack(&m.base, out, len);
}

int
proto_bootstrap_info_decode(const uint8_t *buf, size_t len,
    struct proto_bootstrap_info *out)
{
	ProtobufCMessage *pm;
	Vecdb__BootstrapInfo *m;
	int rv;

	if ((rv = proto_unpack(&vecdb__bootstrap_info__descriptor, buf, len,
		 &pm)) != VECDB_OK)
		return rv;
	m = (Vecdb__BootstrapInfo *) pm;
	if (m->sha256.len != 32) {
		rv = vdb_err(VECDB_EINVAL, "bootstrap checksum is %zu bytes, "
		    "not 32", m->sha256.len);
	} else {
		out->session = m->session;
		out->size = m->size;
		memcpy(out->sha256, m->sha256.data, 32);
	}
	proto_unpacked_free(pm);
	return rv;
}

int
proto_bootstrap_chunk_encode(const struct proto_bootstrap_chunk *c,
    uint8_t **out, size_t *len)
{
	Vecdb__BootstrapChunk m;

	vecdb__bootstrap_chunk__init(&m);
	m.session = c->session;
	m.offset = c->offset;
	m.max_bytes = c->max_bytes;
	return proto_pack(&m.base, out, len);
}

int
proto_bootstrap_chunk_decode(const uint8_t *buf, size_t len,
    struct proto_bootstrap_chunk *out)
{
	ProtobufCMessage *pm;
	Vecdb__BootstrapChunk *m;
	int rv;

	if ((rv = proto_unpack(&vecdb__bootstrap_chunk__descriptor, buf, len,
		 &pm)) != VECDB_OK)
		return rv;
	m = (Vecdb__BootstrapChunk *) pm;
	out->session = m->session;
	out->offset = m->offset;
	out->max_bytes = m->max_bytes == 0 || m->max_bytes > PROTO_CHUNK_MAX ?
	    PROTO_CHUNK_MAX : m->max_bytes;
	proto_unpacked_free(pm);
	return VECDB_OK;
}

int
proto_bootstrap_data_encode(const uint8_t *data, size_t n, uint8_t **out,
    size_t *len)
{
	Vecdb__BootstrapData m;

	vecdb__bootstrap_data__init(&m);
	m.data.data = (uint8_t *) (uintptr_t) data;
	m.data.len = n;
	return proto_pack(&m.base, out, len);
}

int
proto_bootstrap_data_decode(const uint8_t *buf, size_t len, uint8_t **data,
    size_t *n)
{
	ProtobufCMessage *pm;
	Vecdb__BootstrapData *m;
	int rv;

	if ((rv = proto_unpack(&vecdb__bootstrap_data__descriptor, buf, len,
		 &pm)) != VECDB_OK)
		return rv;
	m = (Vecdb__BootstrapData *) pm;
	if ((rv = proto_bytes_dup(m->data.data, m->data.len, data)) == VECDB_OK)
		*n = m->data.len;
	proto_unpacked_free(pm);
	return rv;
}

/* ===== Promotion ===== */

int
proto_promote_encode(uint64_t min_term, uint8_t **out, size_t *len)
{
	Vecdb__Promote m;

	vecdb__promote__init(&m);
	m.min_term = min_term;
	return proto_pack(&m.base, out, len);
}

int
proto_promote_decode(const uint8_t *buf, size_t len, uint64_t *min_term)
{
	ProtobufCMessage *pm;
	int rv;

	if ((rv = proto_unpack(&vecdb__promote__descriptor, buf, len, &pm)) !=
	    VECDB_OK)
		return rv;
	*min_term = ((Vecdb__Promote *) pm)->min_term;
	proto_unpacked_free(pm);
	return VECDB_OK;
}

int
proto_promote_result_encode(uint64_t term, uint64_t last_seq,
    uint8_t **out, size_t *len)
{
	Vecdb__PromoteResult m;

	vecdb__promote_result__init(&m);
	m.term = term;
	m.last_seq = last_seq;
	return proto_pack(&m.base, out, len);
}

int
proto_promote_result_decode(const uint8_t *buf, size_t len, uint64_t *term,
    uint64_t *last_seq)
{
	ProtobufCMessage *pm;
	uint64_t t, seq;
	int rv;

	if ((rv = proto_unpack(&vecdb__promote_result__descriptor, buf, len,
	    &pm)) != VECDB_OK)
		return rv;
	t = ((Vecdb__PromoteResult *) pm)->term;
	seq = ((Vecdb__PromoteResult *) pm)->last_seq;
	proto_unpacked_free(pm);
	if (t == 0)
		return vdb_err(VECDB_EINVAL, "PromoteResult: term 0");
	*term = t;
	*last_seq = seq;
	return VECDB_OK;
}

int
proto_follow_encode(const char *primary_url, uint64_t term, uint8_t **out,
    size_t *len)
{
	Vecdb__Follow m;

	vecdb__follow__init(&m);
	m.primary_url = proto_str(primary_url);
	m.term = term;
	return proto_pack(&m.base, out, len);
}

int
proto_follow_decode(const uint8_t *buf, size_t len,
    char url[PROTO_URL_MAX + 1], uint64_t *term)
{
	char u[PROTO_URL_MAX + 1];
	ProtobufCMessage *pm;
	Vecdb__Follow *m;
	uint64_t t;
	int rv;

	if ((rv = proto_unpack(&vecdb__follow__descriptor, buf, len, &pm)) !=
	    VECDB_OK)
		return rv;
	m = (Vecdb__Follow *) pm;
	if ((rv = proto_name_get(m->primary_url, PROTO_URL_MAX, 1,
	    "primary url", u)) == VECDB_OK && strstr(u, "://") == NULL)
		rv = vdb_err(VECDB_EINVAL, "primary url '%s' is not an nng url "
		    "(scheme://...)", u);
	t = m->term;
	proto_unpacked_free(pm);
	if (rv == VECDB_OK && t == 0)
		rv = vdb_err(VECDB_EINVAL, "Follow: term 0");
	if (rv == VECDB_OK) {
		memcpy(url, u, sizeof(u));
		*term = t;
	}
	return rv;
}
