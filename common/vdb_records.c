/*
 * vdb_records.c: the values of include/vecdb.h that programs make and
 * free without a database: a collection config's defaults, and freeing
 * records, lists of them and names. Shared by the engine, the wire codec
 * and the C client, so that neither of the last two links the engine.
 */
#include <stdio.h>
#include <string.h>

#include "vdb.h"

void
vdb_record_fini(vecdb_record *r)
{
	vdb_free(r->vector);
	vdb_free(r->payload);
	for (size_t i = 0; i < r->n_sparse; i++) {
		vdb_free(r->sparse[i].indices);
		vdb_free(r->sparse[i].values);
	}
	vdb_free(r->sparse);
	for (size_t i = 0; i < r->n_named; i++)
		vdb_free(r->named[i].data);
	vdb_free(r->named);
	r->vector = NULL;
	r->payload = NULL;
	r->sparse = NULL;
	r->n_sparse = 0;
	r->named = NULL;
	r->n_named = 0;
}

int
vdb_record_copy(const vecdb_record *src, vecdb_record *dst)
{
	*dst = *src;
	dst->vector = NULL;
	dst->payload = NULL;
	dst->sparse = NULL;
	dst->n_sparse = 0;
	dst->named = NULL;
	dst->n_named = 0;
	if (src->vector != NULL) {
		if ((dst->vector = vdb_malloc((size_t) src->dim *
		    sizeof(float))) == NULL)
			goto oom;
		memcpy(dst->vector, src->vector, (size_t) src->dim *
		    sizeof(float));
	}
	if (src->payload != NULL &&
	    (dst->payload = vdb_strdup(src->payload)) == NULL)
		goto oom;
	if (src->n_sparse > 0 && (dst->sparse = vdb_calloc(src->n_sparse,
	    sizeof(*dst->sparse))) == NULL)
		goto oom;
	for (size_t i = 0; i < src->n_sparse; i++) {
		const vecdb_sparse_record *s = &src->sparse[i];
		vecdb_sparse_record *d = &dst->sparse[i];
		size_t n = s->n ? s->n : 1;

		dst->n_sparse = i + 1;
		memcpy(d->name, s->name, sizeof(d->name));
		d->n = s->n;
		if ((d->indices = vdb_malloc(n * sizeof(uint32_t))) == NULL ||
		    (d->values = vdb_malloc(n * sizeof(float))) == NULL)
			goto oom;
		memcpy(d->indices, s->indices, s->n * sizeof(uint32_t));
		memcpy(d->values, s->values, s->n * sizeof(float));
	}
	if (src->n_named > 0 && (dst->named = vdb_calloc(src->n_named,
	    sizeof(*dst->named))) == NULL)
		goto oom;
	for (size_t i = 0; i < src->n_named; i++) {
		const vecdb_named_record *s = &src->named[i];
		vecdb_named_record *d = &dst->named[i];

		dst->n_named = i + 1;
		memcpy(d->name, s->name, sizeof(d->name));
		d->dim = s->dim;
		if ((d->data = vdb_malloc((s->dim ? s->dim : 1) *
		    sizeof(float))) == NULL)
			goto oom;
		memcpy(d->data, s->data, s->dim * sizeof(float));
	}
	return VECDB_OK;
oom:
	vdb_record_fini(dst);
	return vdb_err(VECDB_ENOMEM, "out of memory");
}

void
vecdb_record_free(vecdb_record *r)
{
	if (r == NULL)
		return;
	vdb_record_fini(r);
	vdb_free(r);
}

void
vecdb_records_free(vecdb_records *r)
{
	if (r == NULL)
		return;
	for (size_t i = 0; i < r->count; i++)
		vdb_record_fini(&r->items[i]);
	vdb_free(r->items);
	vdb_free(r);
}

void
vecdb_records_free_array(vecdb_records **r, size_t n)
{
	if (r == NULL)
		return;
	for (size_t i = 0; i < n; i++)
		vecdb_records_free(r[i]);
	vdb_free(r);
}

void
vecdb_names_free(char **names, size_t count)
{
	if (names == NULL)
		return;
	for (size_t i = 0; i < count; i++)
		vdb_free(names[i]);
	vdb_free(names);
}

void
vecdb_collection_config_init(vecdb_collection_config *cfg, const char *name,
    uint32_t dimension, vecdb_metric metric)
{
	memset(cfg, 0, sizeof(*cfg));
	if (name != NULL) {
		/* An over-long name keeps VECDB_NAME_MAX chars and no NUL
		 * inside the array's last slot would be wrong; mark it with a
		 * character that the engine's name check refuses instead. */
		snprintf(cfg->name, sizeof(cfg->name), "%s", name);
		if (strlen(name) > VECDB_NAME_MAX)
			cfg->name[0] = '!';
	}
	cfg->dimension = dimension;
	cfg->metric = metric;
	cfg->vector_type = VECDB_FLOAT32;
	cfg->quantization.type = VECDB_QUANT_NONE;
	cfg->quantization.quantile = 0.99f;
}
