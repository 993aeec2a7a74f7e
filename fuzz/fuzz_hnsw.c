/*
 * fuzz_hnsw.c: HNSW checkpoints (storage/index/hnsw.c hnsw_load), the
 * file the indexer reads back at open for each collection. A graph that
 * loads is then used as the indexer and searches use one: searched,
 * written to (an insert and a delete mark) and checked with hnsw_validate.
 *
 * The checkpoint must match the collection's dim, metric and m; here the
 * expected config is read from the input's own header (hnsw.c's struct
 * file_hdr: magic[8], then u32 version, dim, metric, m, max_layer), so
 * that a mutated header is still loaded against a config it claims. A
 * mutated file would almost never match its XXH64 trailer, so the last 8
 * bytes are set to the XXH64 (seed 0) of what precedes them, as
 * hnsw_save does. A quantized checkpoint (flags bit 0) is loaded against
 * the quantization its tables claim (quant.c's serialised header after
 * the [len u32]: magic u32, type u8, metric u8, pad u16, dim u32,
 * quantile f32, segments u32), with always_ram as its flags say.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "fuzz.h"
#include "hnsw.h"

#define HDR_SIZE 72   /* sizeof(struct file_hdr) in hnsw.c */

static char path[4200];

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void) argc;
	(void) argv;
	fz_init();
	snprintf(path, sizeof(path), "%s/ckpt.hnsw", fz_tmpdir("hnsw"));
	return 0;
}

/* A u32 of the header at offset off, or def past the end. */
static uint32_t
hdr_u32(const uint8_t *d, size_t n, size_t off, uint32_t def)
{
	uint32_t v;

	if (n < off + 4)
		return def;
	memcpy(&v, d + off, 4);
	return v;
}

/* Use a loaded graph as the engine would. */
static void
exercise(hnsw_index *h, uint32_t dim)
{
	hnsw_hit hits[10];
	float *v = malloc(dim * sizeof(float));
	size_t k = 0;

	if (v == NULL)
		abort();
	for (uint32_t i = 0; i < dim; i++)
		v[i] = (float) (i % 7) * 0.25f - 0.5f;
	if (hnsw_search(h, v, 10, 0, NULL, NULL, hits, &k) != VECDB_OK)
		abort();
	if (k > 0)
		(void) hnsw_mark_deleted(h, hits[0].label);
	(void) hnsw_insert(h, UINT64_MAX - 1, v);
	if (hnsw_search(h, v, 10, 16, NULL, NULL, hits, &k) != VECDB_OK)
		abort();
	if (hnsw_validate(h) != VECDB_OK) {
		fprintf(stderr, "fuzz_hnsw: a checkpoint that loaded fails "
		    "hnsw_validate after use\n");
		abort();
	}
	free(v);
}

int
LLVMFuzzerTestOneInput(const uint8_t *d, size_t n)
{
	hnsw_config c;
	hnsw_index *h;
	uint8_t *f;
	uint64_t covered, sum;

	memset(&c, 0, sizeof(c));
	c.dim = hdr_u32(d, n, 12, 2);
	c.metric = (vecdb_metric) hdr_u32(d, n, 16, VECDB_EUCLIDEAN);
	c.m = hdr_u32(d, n, 20, 0);
	c.max_layer = hdr_u32(d, n, 24, 0);
	uint32_t flags = hdr_u32(d, n, 36, 0);
	if (flags & 1) {
		uint32_t q = hdr_u32(d, n, HDR_SIZE + 4 + 4, 0);
		c.quant.type = (vecdb_quant) (q & 0xff);
		q = hdr_u32(d, n, HDR_SIZE + 4 + 12, 0);
		memcpy(&c.quant.quantile, &q, 4);
		c.quant.segments = hdr_u32(d, n, HDR_SIZE + 4 + 16, 0);
		c.quant.always_ram = !(flags & 2);
	}
	if ((f = malloc(n ? n : 1)) == NULL)
		abort();
	memcpy(f, d, n);
	if (n >= HDR_SIZE + 8) {
		sum = XXH64(f, n - 8, 0);
		memcpy(f + n - 8, &sum, 8);
	}
	fz_file_write(path, f, n);
	free(f);
	if (hnsw_load(path, &c, &h, &covered) != VECDB_OK)
		return 0;
	exercise(h, c.dim);
	hnsw_free(h);
	return 0;
}
