/*
 * fuzz.h: what the libFuzzer targets of fuzz/ share (docs/FUZZING.md).
 *
 * Each target is one fuzz_<name>.c with LLVMFuzzerTestOneInput, and calls
 * the project's own parser of the bytes it fuzzes. Where that parser needs
 * an engine, the target opens a real embedded database in a temp dir once
 * per process (LLVMFuzzerInitialize), seeded with the collections of
 * docs/API.md's tour, rather than a stand-in.
 *
 * Every helper here aborts on a failure of its own (a temp dir that cannot
 * be made, a database that cannot be opened): that is the harness broken,
 * not a finding, and libFuzzer must not go on without it.
 */
#ifndef FUZZ_H
#define FUZZ_H

#include <stddef.h>
#include <stdint.h>

#include "vecdb.h"

/* The collections fz_db_seed() makes (docs/API.md's "places" among them). */
#define FZ_PLACES "places"     /* dim 2, euclidean, float32, numeric ids */
#define FZ_DOCS "docs"         /* dim 3, cosine, float16, uuid ids */
#define FZ_BYTES "bytes"       /* dim 4, dot, uint8, scalar quantization */
#define FZ_HYBRID "hybrid"     /* dim 2, cosine, sparse "text" (idf) and
				  "tags" */

/*
 * Quiet logs (VECDB_LOG=error unless set) and a process temp dir under
 * $TMPDIR, removed at exit. Call first from LLVMFuzzerInitialize.
 */
void fz_init(void);

/* A new directory under the process temp dir; borrowed, valid until exit. */
const char *fz_tmpdir(const char *tag);

/* Write n bytes to path (created or truncated). Aborts on failure. */
void fz_file_write(const char *path, const uint8_t *d, size_t n);

/*
 * Open a database in dir: buffered durability (no fsync per commit), a
 * 1 GiB map, and a full-scan threshold of 2 so that searches of the small
 * seeded collections go through the HNSW index, not only the exact scan.
 * Aborts on failure.
 */
vecdb *fz_db_open(const char *dir);

/*
 * Create FZ_PLACES (the points and payload indexes of docs/API.md's tour),
 * FZ_DOCS, FZ_BYTES and FZ_HYBRID, with nested, array and geo payloads,
 * payload indexes of every schema and sparse vectors, then wait for the
 * vector indexes. Aborts on failure.
 */
void fz_db_seed(vecdb *db);

/*
 * Swap stderr (the FILE *, not fd 2) for /dev/null while a parser that
 * prints its errors runs: the sanitizers write their reports to fd 2
 * directly, so a crash is still reported.
 */
void fz_stderr_off(void);
void fz_stderr_on(void);

/* A NUL-terminated copy of d[0..n); caller frees with free(). */
char *fz_strndup(const uint8_t *d, size_t n);

#endif /* FUZZ_H */
