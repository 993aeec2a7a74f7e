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
vecdb_record_free(vecdb_record *r)
{
	if (r == NULL)
		return;
	vdb_free(r->vector);
	vdb_free(r->payload);
	vdb_free(r);
}

void
vecdb_records_free(vecdb_records *r)
{
	if (r == NULL)
		return;
	for (size_t i = 0; i < r->count; i++) {
		vdb_free(r->items[i].vector);
		vdb_free(r->items[i].payload);
	}
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
