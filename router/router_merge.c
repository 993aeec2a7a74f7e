/*
 * router_merge.c: the shards' answers into one, and a batch into the
 * shards' parts. Hits merge by (distance, id), scroll pages by id with
 * the smallest next id, counts and stats add up, snapshots are kept
 * where every shard has them.
 *
 * Nothing here sends or waits: every function takes lists, answers or
 * ids already in memory, so that tests call them on hand-made inputs
 * (tests/unit/router_merge_test.c).
 */
#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

#include "router_impl.h"
#include "vdb.h"

/* ===== Records ===== */

int
router_by_distance(const void *a, const void *b)
{
	const vecdb_record *x = a, *y = b;

	if (x->distance != y->distance)
		return x->distance < y->distance ? -1 : 1;
	return vecdb_id_cmp(&x->id, &y->id);
}

int
router_by_hits(const void *a, const void *b)
{
	const vecdb_record *x = a, *y = b;

	if (x->context_hits != y->context_hits)
		return x->context_hits > y->context_hits ? -1 : 1;
	return router_by_distance(a, b);
}

int
router_by_id(const void *a, const void *b)
{
	return vecdb_id_cmp(&((const vecdb_record *) a)->id,
	    &((const vecdb_record *) b)->id);
}

int
router_merge_records(vecdb_records **lists, size_t n,
    int (*cmp)(const void *, const void *), uint32_t offset, uint32_t limit,
    vecdb_records **out)
{
	vecdb_records *m = vdb_calloc(1, sizeof(*m));
	size_t total = 0, k = 0;

	for (size_t i = 0; i < n; i++)
		total += lists[i]->count;
	if (m == NULL || (m->items = vdb_calloc(total ? total : 1,
	    sizeof(vecdb_record))) == NULL) {
		vdb_free(m);
		return vdb_err(VECDB_ENOMEM, "out of memory");
	}
	for (size_t i = 0; i < n; i++) {
		if (lists[i]->count > 0)
			memcpy(m->items + k, lists[i]->items,
			    lists[i]->count * sizeof(vecdb_record));
		k += lists[i]->count;
		lists[i]->count = 0;
	}
	if (total > 0)
		qsort(m->items, total, sizeof(vecdb_record), cmp);
	m->count = total;
	for (size_t i = 0; i < total && i < offset; i++)
		vdb_record_fini(&m->items[i]);
	k = total > offset ? total - offset : 0;
	if (offset > 0 && k > 0)
		memmove(m->items, m->items + offset, k * sizeof(vecdb_record));
	m->count = k;
	for (size_t i = limit; i < m->count; i++)
		vdb_record_fini(&m->items[i]);
	if (m->count > limit)
		m->count = limit;
	*out = m;
	return VECDB_OK;
}

int
router_merge_search(vecdb_records ***per, size_t nshards,
    const struct api_search *s, size_t n, vecdb_records ***out)
{
	vecdb_records **res = vdb_calloc(n, sizeof(*res));
	vecdb_records **lists = vdb_calloc(nshards, sizeof(*lists));
	int rv = VECDB_OK;

	if (res == NULL || lists == NULL)
		rv = vdb_err(VECDB_ENOMEM, "out of memory");
	for (size_t q = 0; q < n && rv == VECDB_OK; q++) {
		for (size_t i = 0; i < nshards; i++)
			lists[i] = per[i][q];
		rv = router_merge_records(lists, nshards, router_by_distance,
		    s[q].p.offset, s[q].p.limit, &res[q]);
	}
	vdb_free(lists);
	if (rv != VECDB_OK) {
		if (res != NULL)
			vecdb_records_free_array(res, n);
		return rv;
	}
	*out = res;
	return VECDB_OK;
}

int
router_merge_scroll(vecdb_records **lists, size_t n, uint32_t limit,
    vecdb_records **out)
{
	vecdb_records *m;
	int rv;

	/* one past the page: its first id may be the next one */
	if ((rv = router_merge_records(lists, n, router_by_id, 0,
	    limit + 1 > limit ? limit + 1 : limit, &m)) != VECDB_OK)
		return rv;
	for (size_t i = 0; i < n; i++)
		if (lists[i]->has_next && (!m->has_next ||
		    vecdb_id_cmp(&lists[i]->next, &m->next) < 0)) {
			m->has_next = 1;
			m->next = lists[i]->next;
		}
	if (m->count > limit) {
		if (!m->has_next || vecdb_id_cmp(&m->items[limit].id,
		    &m->next) < 0)
			m->next = m->items[limit].id;
		m->has_next = 1;
		vdb_record_fini(&m->items[limit]);
		m->count = limit;
	}
	*out = m;
	return VECDB_OK;
}

int
router_answers_decode(const struct router_call *c, size_t nshards,
    vecdb_records ***lists, size_t *n)
{
	vecdb_records **l = vdb_calloc(nshards ? nshards : 1, sizeof(*l));
	size_t j = 0;
	int rv = l ? VECDB_OK : vdb_err(VECDB_ENOMEM, "out of memory");

	for (size_t i = 0; i < nshards && rv == VECDB_OK; i++)
		if (!c[i].skip && (rv = proto_records_decode(c[i].resp->body,
		    c[i].resp->body_len, &l[j])) == VECDB_OK)
			j++;
	if (rv != VECDB_OK) {
		vecdb_records_free_array(l, j);
		return rv;
	}
	*lists = l;
	*n = j;
	return VECDB_OK;
}

int
router_merge_count(const struct router_call *c, size_t nshards,
    uint64_t *out)
{
	uint64_t sum = 0, k;
	int rv = VECDB_OK;

	for (size_t i = 0; i < nshards && rv == VECDB_OK; i++)
		if (!c[i].skip && (rv = proto_count_result_decode(
		    c[i].resp->body, c[i].resp->body_len, &k)) == VECDB_OK)
			sum += k;
	if (rv == VECDB_OK)
		*out = sum;
	return rv;
}

/* ===== Stats ===== */

void
router_merge_collection_stats(vecdb_collection_stats *sum,
    const vecdb_collection_stats *s, size_t i)
{
	if (i == 0) {
		sum->dimension = s->dimension;
		sum->quant_in_force = s->quant_in_force;
	}
	sum->vector_count += s->vector_count;
	sum->disk_bytes += s->disk_bytes;
	sum->memory_bytes += s->memory_bytes;
	sum->indexed_count += s->indexed_count;
	for (int v = 0; v < VECDB_VECTORS_MAX; v++)
		sum->named_indexed[v] += s->named_indexed[v];
	sum->pending_count += s->pending_count;
	sum->dead_count += s->dead_count;
	sum->compactions += s->compactions;
	sum->indexing_rate += s->indexing_rate;
	sum->code_bytes += s->code_bytes;
	sum->link_bytes += s->link_bytes;
	sum->original_bytes += s->original_bytes;
	/* In force on the collection when in force on every shard: until
	 * then some searches still walk floats (or the old codes). */
	if (s->quant_in_force != sum->quant_in_force)
		sum->quant_in_force = VECDB_QUANT_NONE;
	/* Compacting while any shard is; progress of the least advanced. */
	if (s->optimizer == VECDB_OPTIMIZER_COMPACTING &&
	    (sum->optimizer != VECDB_OPTIMIZER_COMPACTING ||
		s->optimizer_progress < sum->optimizer_progress)) {
		sum->optimizer = VECDB_OPTIMIZER_COMPACTING;
		sum->optimizer_progress = s->optimizer_progress;
	}
	if (sum->dead_count > 0)
		sum->dead_ratio = (double) sum->dead_count /
		    (double) (sum->indexed_count + sum->dead_count);
}

void
router_merge_stats(vecdb_stats *sum, const vecdb_stats *s, size_t i)
{
	if (i == 0)
		sum->collections = s->collections;
	sum->vectors += s->vectors;
	sum->disk_bytes += s->disk_bytes;
	sum->memory_bytes += s->memory_bytes;
	sum->last_seq = s->last_seq > sum->last_seq ? s->last_seq :
	    sum->last_seq;
	sum->index_builds += s->index_builds;
	sum->index_build_seconds += s->index_build_seconds;
	for (int k = 0; k < VECDB_BUILD_BUCKETS; k++)
		sum->index_build_buckets[k] += s->index_build_buckets[k];
}

/* ===== Snapshots ===== */

int
router_merge_snapshot(const vecdb_snapshot_info *per, size_t n,
    vecdb_snapshot_info *out)
{
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	unsigned char sum[EVP_MAX_MD_SIZE];
	unsigned len = 0;
	int ok = md != NULL && EVP_DigestInit_ex(md, EVP_sha256(), NULL) == 1;

	*out = per[0];
	out->size_bytes = out->vector_count = 0;
	for (size_t i = 0; i < n && ok; i++) {
		out->size_bytes += per[i].size_bytes;
		out->vector_count += per[i].vector_count;
		if (per[i].created_at > out->created_at)
			out->created_at = per[i].created_at;
		ok = EVP_DigestUpdate(md, per[i].checksum,
		    strlen(per[i].checksum)) == 1;
	}
	ok = ok && EVP_DigestFinal_ex(md, sum, &len) == 1 && len == 32;
	EVP_MD_CTX_free(md);
	if (!ok)
		return vdb_err(VECDB_EINTERNAL, "SHA-256 failed");
	for (unsigned i = 0; i < len; i++)
		snprintf(out->checksum + 2 * i, 3, "%02x", sum[i]);
	return VECDB_OK;
}

/* Is name in list l of n? Its index, or -1. */
static ssize_t
snap_find(const vecdb_snapshot_info *l, size_t n, const char *name)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(l[i].name, name) == 0)
			return (ssize_t) i;
	return -1;
}

int
router_merge_snapshot_lists(vecdb_snapshot_info **lists,
    const size_t *counts, size_t nshards, vecdb_snapshot_info *per,
    vecdb_snapshot_info *out, size_t *n)
{
	ssize_t at;
	int rv;

	*n = 0;
	for (size_t a = 0; a < counts[0]; a++) {
		size_t i;
		per[0] = lists[0][a];
		for (i = 1; i < nshards; i++) {
			if ((at = snap_find(lists[i], counts[i],
			    lists[0][a].name)) < 0)
				break;
			per[i] = lists[i][at];
		}
		if (i < nshards)
			continue;
		if ((rv = router_merge_snapshot(per, nshards,
		    &out[(*n)++])) != VECDB_OK)
			return rv;
	}
	return VECDB_OK;
}

/* ===== A batch over the shards ===== */

int
router_split(const vecdb_id *ids, size_t stride, size_t n, size_t nshards,
    uint32_t **shard_of, size_t **counts)
{
	*shard_of = vdb_malloc((n ? n : 1) * sizeof(uint32_t));
	*counts = vdb_calloc(nshards, sizeof(size_t));
	if (*shard_of == NULL || *counts == NULL) {
		vdb_free(*shard_of);
		vdb_free(*counts);
		return vdb_err(VECDB_ENOMEM, "out of memory");
	}
	for (size_t i = 0; i < n; i++) {
		const vecdb_id *id = (const vecdb_id *) (const void *)
		    ((const char *) ids + i * stride);
		(*shard_of)[i] = router_shard_of(id, (uint32_t) nshards);
		(*counts)[(*shard_of)[i]]++;
	}
	return VECDB_OK;
}

size_t
router_split_part(const void *items, size_t size, size_t n,
    const uint32_t *shard_of, uint32_t shard, void *part)
{
	size_t k = 0;

	for (size_t i = 0; i < n; i++)
		if (shard_of[i] == shard)
			memcpy((char *) part + k++ * size,
			    (const char *) items + i * size, size);
	return k;
}
