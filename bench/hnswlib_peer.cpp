/*
 * hnswlib_peer.cpp: Debian's hnswlib (libhnswlib-dev, header-only) behind
 * a small C interface (hnswlib_peer.h), for `vecdb-bench ann` and
 * `vecdb-bench ingest` with --compare hnswlib. Built only
 * when /usr/include/hnswlib/hnswlib.h exists, with the same optimisation
 * and ISA flags as our AVX2 kernels (so hnswlib uses its AVX code path).
 */
#include <cmath>
#include <cstdint>
#include <cstring>
#include <queue>
#include <thread>
#include <vector>

#include <hnswlib/hnswlib.h>

#include "hnswlib_peer.h"

struct peer {
	hnswlib::SpaceInterface<float> *space;   /* L2 or inner product */
	hnswlib::HierarchicalNSW<float> *index;
	size_t dim;
	bool normalize;                          /* cosine: unit vectors */
};

/* v scaled to unit length into out. */
static void
unit(const float *v, size_t dim, float *out)
{
	double s = 0;

	for (size_t i = 0; i < dim; i++)
		s += (double) v[i] * v[i];
	float inv = s > 0 ? (float) (1.0 / std::sqrt(s)) : 0.0f;
	for (size_t i = 0; i < dim; i++)
		out[i] = v[i] * inv;
}

extern "C" int
peer_supports(int metric)
{
	return metric == PEER_L2 || metric == PEER_DOT || metric == PEER_COSINE;
}

/* Insert rows t, t + nt, t + 2 nt, ... (hnswlib's addPoint is safe from
 * many threads, as its python binding's parallel add uses it). */
static void
add_rows(peer *p, const float *base, size_t n, size_t t, size_t nt)
{
	std::vector<float> tmp(p->dim);

	for (size_t i = t; i < n; i += nt) {
		const float *v = base + i * p->dim;
		if (p->normalize) {
			unit(v, p->dim, tmp.data());
			v = tmp.data();
		}
		p->index->addPoint(v, (hnswlib::labeltype) i);
	}
}

extern "C" struct peer *
peer_build(const float *base, size_t n, size_t dim, int metric, size_t m,
    size_t efc, size_t seed, size_t threads)
{
	peer *p = new peer();
	std::vector<std::thread> th;

	p->dim = dim;
	p->normalize = metric == PEER_COSINE;
	if (metric == PEER_L2)
		p->space = new hnswlib::L2Space(dim);
	else
		p->space = new hnswlib::InnerProductSpace(dim);
	p->index = new hnswlib::HierarchicalNSW<float>(p->space, n, m, efc,
	    seed);
	for (size_t t = 1; t < threads; t++)
		th.emplace_back(add_rows, p, base, n, t, threads);
	add_rows(p, base, n, 0, threads > 0 ? threads : 1);
	for (auto &x : th)
		x.join();
	return p;
}

extern "C" void
peer_set_ef(struct peer *p, size_t ef)
{
	p->index->setEf(ef);
}

extern "C" size_t
peer_search(struct peer *p, const float *q, size_t k, uint64_t *labels)
{
	std::vector<float> tmp;

	if (p->normalize) {
		tmp.resize(p->dim);
		unit(q, p->dim, tmp.data());
		q = tmp.data();
	}
	auto res = p->index->searchKnn(q, k);
	size_t n = res.size();
	for (size_t i = n; i > 0; i--) {
		labels[i - 1] = res.top().second;
		res.pop();
	}
	return n;
}

extern "C" void
peer_free(struct peer *p)
{
	if (p == nullptr)
		return;
	delete p->index;
	delete p->space;
	delete p;
}
