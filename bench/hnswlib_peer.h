/*
 * hnswlib_peer.h: the C interface of bench/hnswlib_peer.cpp (Debian's
 * hnswlib behind it), for the modes that compare with hnswlib (ann,
 * ingest). Its functions exist only when VDB_HAVE_HNSWLIB is defined.
 */
#ifndef HNSWLIB_PEER_H
#define HNSWLIB_PEER_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

enum { PEER_L2 = 0, PEER_DOT = 1, PEER_COSINE = 2 };
struct peer;
int peer_supports(int metric);
/* Add rows i, i + threads, ... on each of threads threads. */
struct peer *peer_build(const float *base, size_t n, size_t dim, int metric,
    size_t m, size_t efc, size_t seed, size_t threads);
void peer_set_ef(struct peer *p, size_t ef);
size_t peer_search(struct peer *p, const float *q, size_t k,
    uint64_t *labels);
void peer_free(struct peer *p);

#ifdef __cplusplus
}
#endif

#endif
