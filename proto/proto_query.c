/*
 * proto_query.c: search, recommend, discover, scroll and count requests.
 */
#include <string.h>

#include "proto_impl.h"

/* ===== Shared checks ===== */

/* limit >= 1 and limit + offset within VECDB_LIMIT_MAX. */
static int
paging_check(uint32_t limit, uint32_t offset)
{
	if (limit < 1 || (uint64_t)limit + offset > VECDB_LIMIT_MAX)
		return vdb_err(VECDB_EINVAL, "limit %u and offset %u: limit "
		    "must be >= 1 and limit + offset <= %d", limit, offset,
		    VECDB_LIMIT_MAX);
	return VECDB_OK;
}

/* rows vectors of dim floats in n floats: checked and copied. */
static int
rows_get(const float *v, size_t n, uint32_t dim, size_t per_row,
    const char *what, float **out, size_t *rows)
{
	int rv;

	if (n == 0) {
		*out = NULL;
		*rows = 0;
		return VECDB_OK;
	}
	if (dim < 1 || dim > VECDB_DIM_MAX || n % ((size_t)dim * per_row))
		return vdb_err(VECDB_EINVAL, "%s: %zu floats are not rows of "
		    "dimension %u (1..%d)", what, n, dim, VECDB_DIM_MAX);
	if (n / ((size_t)dim * per_row) > VECDB_BATCH_MAX)
		return vdb_err(VECDB_EINVAL, "%s: more than %d rows", what,
		    VECDB_BATCH_MAX);
	if ((rv = proto_floats_check(v, n, what)) != VECDB_OK)
		return rv;
	*rows = n / ((size_t)dim * per_row);
	return proto_floats_dup(v, n, out);
}

/* Pack n ids into a scratch the caller frees with ids_scratch_free. */
struct ids_scratch {
	Vecdb__PointId *pbs;   /* the ids */
	Vecdb__PointId **ptrs; /* pointers to them */
};

/* Fill a scratch from n ids. */
static int
ids_scratch_init(struct ids_scratch *s, const vecdb_id *ids, size_t n)
{
	s->pbs = NULL;
	s->ptrs = NULL;
	return proto_ids_to_pb(ids, n, &s->pbs, &s->ptrs);
}

/* Free a scratch (one never filled is fine). */
static void
ids_scratch_free(struct ids_scratch *s)
{
	vdb_free(s->pbs);
	vdb_free(s->ptrs);
}

/* ===== Search ===== */

/* Fill a SearchParams (borrowing) from ours. */
static void
search_to_pb(const vecdb_search_params *p, const char *filter,
    Vecdb__SearchParams *pb)
{
	vecdb__search_params__init(pb);
	pb->n_vector = p->vector != NULL ? p->dim : 0;
	pb->vector = (float *)(uintptr_t)p->vector;
	pb->limit = p->limit;
	pb->offset = p->offset;
	pb->ef_search = p->ef_search;
	pb->exact = p->exact != 0;
	pb->with_payload = p->with_payload != 0;
	pb->with_vector = p->with_vector != 0;
	pb->filter_json = proto_str(filter);
	pb->quant_ignore = p->quant_ignore != 0;
	pb->quant_no_rescore = p->quant_no_rescore != 0;
	pb->oversampling = p->oversampling;
	pb->using_ = proto_str(p->using);
}

int
proto_search_encode(const char *coll, const vecdb_search_params *p,
    const char *const *filters, size_t n, uint8_t **out, size_t *len)
{
	Vecdb__Search m;
	Vecdb__SearchParams *pbs = vdb_calloc(n ? n : 1, sizeof(*pbs));
	Vecdb__SearchParams **ptrs = vdb_calloc(n ? n : 1, sizeof(*ptrs));
	int rv;

	if (pbs == NULL || ptrs == NULL) {
		vdb_free(pbs);
		vdb_free(ptrs);
		return vdb_err(VECDB_ENOMEM, "out of memory packing a search");
	}
	for (size_t i = 0; i < n; i++) {
		search_to_pb(&p[i], filters != NULL ? filters[i] : NULL,
		    &pbs[i]);
		ptrs[i] = &pbs[i];
	}
	vecdb__search__init(&m);
	m.collection = proto_str(coll);
	m.n_searches = n;
	m.searches = ptrs;
	rv = proto_pack(&m.base, out, len);
	vdb_free(pbs);
	vdb_free(ptrs);
	return rv;
}

/* Ours from one SearchParams. */
static int
search_one_from_pb(const Vecdb__SearchParams *pb, size_t i,
    struct proto_search_one *s)
{
	size_t rows;
	float *v;
	int rv;

	if (pb->n_vector < 1 || pb->n_vector > VECDB_DIM_MAX)
		return vdb_err(VECDB_EINVAL, "search %zu: vector of %zu "
		    "components, not 1..%d", i, pb->n_vector, VECDB_DIM_MAX);
	if (pb->ef_search > VECDB_HNSW_EF_MAX)
		return vdb_err(VECDB_EINVAL, "search %zu: ef_search %u over "
		    "%d", i, pb->ef_search, VECDB_HNSW_EF_MAX);
	/* the engine reads NaN or 0.5 as 1 and caps 1000 at ef's limit:
	 * refused here, as the REST API refuses them */
	if (pb->oversampling != 0 && !(pb->oversampling >= 1 &&
	    pb->oversampling <= VECDB_OVERSAMPLING_MAX))
		return vdb_err(VECDB_EINVAL, "search %zu: oversampling %g is "
		    "not 0 or 1..%g", i, (double)pb->oversampling,
		    (double)VECDB_OVERSAMPLING_MAX);
	if ((rv = paging_check(pb->limit, pb->offset)) != VECDB_OK ||
	    (rv = rows_get(pb->vector, pb->n_vector, (uint32_t)pb->n_vector,
	    1, "search vector", &v, &rows)) != VECDB_OK)
		return rv;
	s->p.vector = v;
	s->p.dim = (uint32_t)pb->n_vector;
	s->p.limit = pb->limit;
	s->p.offset = pb->offset;
	s->p.ef_search = pb->ef_search;
	s->p.exact = pb->exact != 0;
	s->p.with_payload = pb->with_payload != 0;
	s->p.with_vector = pb->with_vector != 0;
	s->p.quant_ignore = pb->quant_ignore != 0;
	s->p.quant_no_rescore = pb->quant_no_rescore != 0;
	s->p.oversampling = pb->oversampling;
	if ((rv = proto_using_get(pb->using_, s->using, &s->p.using)) != 0)
		return rv;
	return proto_filter_get(pb->filter_json, &s->filter_json);
}

/* Ours from a Search. */
static int
search_from_pb(const Vecdb__Search *m, struct proto_search *s)
{
	int rv;

	if ((rv = proto_name_get(m->collection, VECDB_NAME_MAX, 1,
	    "collection name", s->collection)) != VECDB_OK)
		return rv;
	if (m->n_searches < 1 || m->n_searches > PROTO_SEARCH_MAX)
		return vdb_err(VECDB_EINVAL, "%zu searches, not 1..%d",
		    m->n_searches, PROTO_SEARCH_MAX);
	if ((s->s = vdb_calloc(m->n_searches, sizeof(*s->s))) == NULL)
		return vdb_err(VECDB_ENOMEM, "out of memory for searches");
	for (size_t i = 0; i < m->n_searches; i++) {
		s->n = i + 1;
		if ((rv = search_one_from_pb(m->searches[i], i, &s->s[i])))
			return rv;
	}
	return VECDB_OK;
}

int
proto_search_decode(const uint8_t *buf, size_t len,
    struct proto_search **out)
{
	ProtobufCMessage *pm;
	struct proto_search *s;
	int rv;

	if ((rv = proto_unpack(&vecdb__search__descriptor, buf, len, &pm)))
		return rv;
	if ((s = vdb_calloc(1, sizeof(*s))) == NULL) {
		proto_unpacked_free(pm);
		return vdb_err(VECDB_ENOMEM, "out of memory for a search");
	}
	rv = search_from_pb((Vecdb__Search *)pm, s);
	proto_unpacked_free(pm);
	if (rv != VECDB_OK) {
		proto_search_free(s);
		return rv;
	}
	*out = s;
	return VECDB_OK;
}

void
proto_search_free(struct proto_search *s)
{
	if (s == NULL)
		return;
	for (size_t i = 0; i < s->n; i++) {
		vdb_free((void *)(uintptr_t)s->s[i].p.vector);
		vdb_free(s->s[i].filter_json);
	}
	vdb_free(s->s);
	vdb_free(s);
}

/* ===== Recommend ===== */

/* The id scratches of a Recommend. */
struct reco_scratch {
	struct ids_scratch pos, neg, exc;
};

int
proto_recommend_encode(const char *coll, const vecdb_recommend_params *p,
    const char *filter_json, uint8_t **out, size_t *len)
{
	Vecdb__Recommend m;
	struct reco_scratch s = { { NULL, NULL }, { NULL, NULL },
		{ NULL, NULL } };
	int rv;

	if ((rv = ids_scratch_init(&s.pos, p->positive, p->n_positive)) ||
	    (rv = ids_scratch_init(&s.neg, p->negative, p->n_negative)) ||
	    (rv = ids_scratch_init(&s.exc, p->exclude, p->n_exclude)))
		goto fail;
	vecdb__recommend__init(&m);
	m.collection = proto_str(coll);
	m.n_positive = p->n_positive;
	m.positive = s.pos.ptrs;
	m.n_negative = p->n_negative;
	m.negative = s.neg.ptrs;
	m.dim = p->dim;
	m.n_positive_vectors = p->n_positive_vectors * p->dim;
	m.positive_vectors = (float *)(uintptr_t)p->positive_vectors;
	m.n_negative_vectors = p->n_negative_vectors * p->dim;
	m.negative_vectors = (float *)(uintptr_t)p->negative_vectors;
	m.n_exclude = p->n_exclude;
	m.exclude = s.exc.ptrs;
	m.strategy = (Vecdb__RecommendStrategy)p->strategy;
	m.limit = p->limit;
	m.offset = p->offset;
	m.filter_json = proto_str(filter_json);
	m.ef_search = p->ef_search;
	m.with_payload = p->with_payload != 0;
	m.with_vector = p->with_vector != 0;
	m.using_ = proto_str(p->using);
	rv = proto_pack(&m.base, out, len);
fail:
	ids_scratch_free(&s.pos);
	ids_scratch_free(&s.neg);
	ids_scratch_free(&s.exc);
	return rv;
}

/* The scalar fields of a Recommend. */
static int
reco_scalars(const Vecdb__Recommend *m, vecdb_recommend_params *p)
{
	int rv;

	if ((unsigned)m->strategy > VECDB_RECO_BEST_SCORE)
		return vdb_err(VECDB_EINVAL, "unknown strategy %d",
		    (int)m->strategy);
	if (m->ef_search > VECDB_HNSW_EF_MAX)
		return vdb_err(VECDB_EINVAL, "ef_search %u over %d",
		    m->ef_search, VECDB_HNSW_EF_MAX);
	if (m->dim > VECDB_DIM_MAX)
		return vdb_err(VECDB_EINVAL, "dimension %u over %d", m->dim,
		    VECDB_DIM_MAX);
	if ((rv = paging_check(m->limit, m->offset)) != VECDB_OK)
		return rv;
	p->strategy = (vecdb_reco_strategy)m->strategy;
	p->limit = m->limit;
	p->offset = m->offset;
	p->ef_search = m->ef_search;
	p->dim = m->dim;
	p->with_payload = m->with_payload != 0;
	p->with_vector = m->with_vector != 0;
	return VECDB_OK;
}

/* The arrays of a Recommend, copied into r (which owns them). */
static int
reco_arrays(const Vecdb__Recommend *m, struct proto_recommend *r)
{
	vecdb_recommend_params *p = &r->p;
	vecdb_id *pos = NULL, *neg = NULL, *exc = NULL;
	float *pv = NULL, *nv = NULL;
	int rv;

	rv = proto_ids_from_pb(m->positive, m->n_positive, VECDB_BATCH_MAX,
	    "positive ids", &pos);
	p->positive = pos;
	if (rv == VECDB_OK && (rv = proto_ids_from_pb(m->negative,
	    m->n_negative, VECDB_BATCH_MAX, "negative ids", &neg)) == 0)
		p->negative = neg;
	if (rv == VECDB_OK && (rv = proto_ids_from_pb(m->exclude,
	    m->n_exclude, VECDB_BATCH_MAX, "exclude ids", &exc)) == 0)
		p->exclude = exc;
	if (rv == VECDB_OK && (rv = rows_get(m->positive_vectors,
	    m->n_positive_vectors, m->dim, 1, "positive vectors", &pv,
	    &p->n_positive_vectors)) == 0)
		p->positive_vectors = pv;
	if (rv == VECDB_OK && (rv = rows_get(m->negative_vectors,
	    m->n_negative_vectors, m->dim, 1, "negative vectors", &nv,
	    &p->n_negative_vectors)) == 0)
		p->negative_vectors = nv;
	if (rv != VECDB_OK)
		return rv;
	p->n_positive = m->n_positive;
	p->n_negative = m->n_negative;
	p->n_exclude = m->n_exclude;
	return VECDB_OK;
}

/* Ours from a Recommend. */
static int
reco_from_pb(const Vecdb__Recommend *m, struct proto_recommend *r)
{
	int rv;

	if ((rv = proto_name_get(m->collection, VECDB_NAME_MAX, 1,
	    "collection name", r->collection)) != VECDB_OK ||
	    (rv = reco_scalars(m, &r->p)) != VECDB_OK ||
	    (rv = reco_arrays(m, r)) != VECDB_OK)
		return rv;
	if (r->p.n_positive + r->p.n_positive_vectors == 0)
		return vdb_err(VECDB_EINVAL, "recommend needs at least one "
		    "positive example");
	if ((rv = proto_using_get(m->using_, r->using, &r->p.using)) != 0)
		return rv;
	return proto_filter_get(m->filter_json, &r->filter_json);
}

int
proto_recommend_decode(const uint8_t *buf, size_t len,
    struct proto_recommend **out)
{
	ProtobufCMessage *pm;
	struct proto_recommend *r;
	int rv;

	if ((rv = proto_unpack(&vecdb__recommend__descriptor, buf, len, &pm)))
		return rv;
	if ((r = vdb_calloc(1, sizeof(*r))) == NULL) {
		proto_unpacked_free(pm);
		return vdb_err(VECDB_ENOMEM, "out of memory for a recommend");
	}
	rv = reco_from_pb((Vecdb__Recommend *)pm, r);
	proto_unpacked_free(pm);
	if (rv != VECDB_OK) {
		proto_recommend_free(r);
		return rv;
	}
	*out = r;
	return VECDB_OK;
}

void
proto_recommend_free(struct proto_recommend *r)
{
	if (r == NULL)
		return;
	vdb_free((void *)(uintptr_t)r->p.positive);
	vdb_free((void *)(uintptr_t)r->p.negative);
	vdb_free((void *)(uintptr_t)r->p.exclude);
	vdb_free((void *)(uintptr_t)r->p.positive_vectors);
	vdb_free((void *)(uintptr_t)r->p.negative_vectors);
	vdb_free(r->filter_json);
	vdb_free(r);
}

/* ===== Discover ===== */

/* The packing scratch of a Discover's context pairs. */
struct pairs_scratch {
	Vecdb__ContextPair *pairs;  /* n pairs */
	Vecdb__ContextPair **ptrs;  /* pointers to them */
	Vecdb__PointId *ids;        /* 2n ids: positive, negative */
};

/* Free a pairs scratch. */
static void
pairs_scratch_free(struct pairs_scratch *s)
{
	vdb_free(s->pairs);
	vdb_free(s->ptrs);
	vdb_free(s->ids);
}

/* Fill a pairs scratch from n pairs (ids of kind NONE are refused). */
static int
pairs_scratch_init(struct pairs_scratch *s, const vecdb_context_pair *c,
    size_t n)
{
	size_t k = n ? n : 1;

	s->pairs = vdb_calloc(k, sizeof(*s->pairs));
	s->ptrs = vdb_calloc(k, sizeof(*s->ptrs));
	s->ids = vdb_calloc(2 * k, sizeof(*s->ids));
	if (s->pairs == NULL || s->ptrs == NULL || s->ids == NULL)
		return vdb_err(VECDB_ENOMEM, "out of memory packing pairs");
	for (size_t i = 0; i < n; i++) {
		vecdb__context_pair__init(&s->pairs[i]);
		if (!proto_id_set(&c[i].positive, &s->ids[2 * i]) ||
		    !proto_id_set(&c[i].negative, &s->ids[2 * i + 1]))
			return vdb_err(VECDB_EINVAL, "context pair %zu lacks "
			    "an id", i);
		s->pairs[i].positive = &s->ids[2 * i];
		s->pairs[i].negative = &s->ids[2 * i + 1];
		s->ptrs[i] = &s->pairs[i];
	}
	return VECDB_OK;
}

/* Fill the target fields of a Discover (borrowing). */
static void
target_to_pb(const vecdb_discover_params *p, Vecdb__Discover *m,
    Vecdb__PointId *tid)
{
	m->has_target = p->has_target != 0;
	if (!p->has_target)
		return;
	if (proto_id_set(&p->target, tid)) {
		m->target = tid;
	} else if (p->target_vector != NULL) {
		m->n_target_vector = p->dim;
		m->target_vector = (float *)(uintptr_t)p->target_vector;
	}
}

int
proto_discover_encode(const char *coll, const vecdb_discover_params *p,
    const char *filter_json, uint8_t **out, size_t *len)
{
	Vecdb__Discover m;
	Vecdb__PointId tid;
	struct pairs_scratch ps = { NULL, NULL, NULL };
	struct ids_scratch exc = { NULL, NULL };
	int rv;

	if ((rv = pairs_scratch_init(&ps, p->context, p->n_context)) ||
	    (rv = ids_scratch_init(&exc, p->exclude, p->n_exclude)))
		goto fail;
	vecdb__discover__init(&m);
	m.collection = proto_str(coll);
	target_to_pb(p, &m, &tid);
	m.n_context = p->n_context;
	m.context = ps.ptrs;
	m.n_context_vectors = p->n_context_vectors * 2 * p->dim;
	m.context_vectors = (float *)(uintptr_t)p->context_vectors;
	m.dim = p->dim;
	m.n_exclude = p->n_exclude;
	m.exclude = exc.ptrs;
	m.limit = p->limit;
	m.offset = p->offset;
	m.filter_json = proto_str(filter_json);
	m.with_payload = p->with_payload != 0;
	m.with_vector = p->with_vector != 0;
	m.using_ = proto_str(p->using);
	rv = proto_pack(&m.base, out, len);
fail:
	pairs_scratch_free(&ps);
	ids_scratch_free(&exc);
	return rv;
}

/* The target of a Discover: an id, or a vector of dim, or none. */
static int
disco_target(const Vecdb__Discover *m, struct proto_discover *d)
{
	vecdb_discover_params *p = &d->p;
	size_t rows;
	float *v;
	int rv;

	if (!m->has_target) {
		if (m->target != NULL || m->n_target_vector > 0)
			return vdb_err(VECDB_EINVAL, "target given without "
			    "has_target");
		return VECDB_OK;
	}
	p->has_target = 1;
	if (m->target != NULL) {
		if (m->n_target_vector > 0)
			return vdb_err(VECDB_EINVAL, "target has both an id "
			    "and a vector");
		return proto_id_get(m->target, 1, "target id", &p->target);
	}
	if (m->n_target_vector != m->dim || m->dim == 0)
		return vdb_err(VECDB_EINVAL, "target vector of %zu "
		    "components, dimension %u", m->n_target_vector, m->dim);
	if ((rv = rows_get(m->target_vector, m->n_target_vector, m->dim, 1,
	    "target vector", &v, &rows)) != VECDB_OK)
		return rv;
	p->target_vector = v;
	return VECDB_OK;
}

/* The context pairs given by id. */
static int
disco_pairs(const Vecdb__Discover *m, vecdb_discover_params *p)
{
	vecdb_context_pair *c;
	int rv;

	if (m->n_context > VECDB_BATCH_MAX)
		return vdb_err(VECDB_EINVAL, "%zu context pairs, more than "
		    "%d", m->n_context, VECDB_BATCH_MAX);
	if (m->n_context == 0)
		return VECDB_OK;
	if ((c = vdb_calloc(m->n_context, sizeof(*c))) == NULL)
		return vdb_err(VECDB_ENOMEM, "out of memory for pairs");
	p->context = c;
	for (size_t i = 0; i < m->n_context; i++) {
		if ((rv = proto_id_get(m->context[i]->positive, 1,
		    "context positive id", &c[i].positive)) != VECDB_OK ||
		    (rv = proto_id_get(m->context[i]->negative, 1,
		    "context negative id", &c[i].negative)) != VECDB_OK)
			return rv;
	}
	p->n_context = m->n_context;
	return VECDB_OK;
}

/* Ours from a Discover. */
static int
disco_from_pb(const Vecdb__Discover *m, struct proto_discover *d)
{
	vecdb_discover_params *p = &d->p;
	vecdb_id *exc = NULL;
	float *cv = NULL;
	int rv;

	if ((rv = proto_name_get(m->collection, VECDB_NAME_MAX, 1,
	    "collection name", d->collection)) != VECDB_OK)
		return rv;
	if (m->dim > VECDB_DIM_MAX)
		return vdb_err(VECDB_EINVAL, "dimension %u over %d", m->dim,
		    VECDB_DIM_MAX);
	p->dim = m->dim;
	if ((rv = paging_check(m->limit, m->offset)) != VECDB_OK ||
	    (rv = disco_target(m, d)) != VECDB_OK ||
	    (rv = disco_pairs(m, p)) != VECDB_OK)
		return rv;
	rv = rows_get(m->context_vectors, m->n_context_vectors, m->dim, 2,
	    "context vectors", &cv, &p->n_context_vectors);
	p->context_vectors = cv;
	if (rv == VECDB_OK && (rv = proto_ids_from_pb(m->exclude,
	    m->n_exclude, VECDB_BATCH_MAX, "exclude ids", &exc)) == 0) {
		p->exclude = exc;
		p->n_exclude = m->n_exclude;
	}
	if (rv != VECDB_OK)
		return rv;
	p->limit = m->limit;
	p->offset = m->offset;
	p->with_payload = m->with_payload != 0;
	p->with_vector = m->with_vector != 0;
	if ((rv = proto_using_get(m->using_, d->using, &p->using)) != 0)
		return rv;
	return proto_filter_get(m->filter_json, &d->filter_json);
}

int
proto_discover_decode(const uint8_t *buf, size_t len,
    struct proto_discover **out)
{
	ProtobufCMessage *pm;
	struct proto_discover *d;
	int rv;

	if ((rv = proto_unpack(&vecdb__discover__descriptor, buf, len, &pm)))
		return rv;
	if ((d = vdb_calloc(1, sizeof(*d))) == NULL) {
		proto_unpacked_free(pm);
		return vdb_err(VECDB_ENOMEM, "out of memory for a discover");
	}
	rv = disco_from_pb((Vecdb__Discover *)pm, d);
	proto_unpacked_free(pm);
	if (rv != VECDB_OK) {
		proto_discover_free(d);
		return rv;
	}
	*out = d;
	return VECDB_OK;
}

void
proto_discover_free(struct proto_discover *d)
{
	if (d == NULL)
		return;
	vdb_free((void *)(uintptr_t)d->p.target_vector);
	vdb_free((void *)(uintptr_t)d->p.context);
	vdb_free((void *)(uintptr_t)d->p.context_vectors);
	vdb_free((void *)(uintptr_t)d->p.exclude);
	vdb_free(d->filter_json);
	vdb_free(d);
}

/* ===== Scroll and count ===== */

int
proto_scroll_encode(const char *coll, const vecdb_id *start,
    uint32_t limit, const char *filter_json, int with_payload,
    int with_vector, uint8_t **out, size_t *len)
{
	Vecdb__Scroll m;
	Vecdb__PointId sid;

	vecdb__scroll__init(&m);
	m.collection = proto_str(coll);
	if (proto_id_set(start, &sid))
		m.start = &sid;
	m.limit = limit;
	m.filter_json = proto_str(filter_json);
	m.with_payload = with_payload != 0;
	m.with_vector = with_vector != 0;
	return proto_pack(&m.base, out, len);
}

/* Ours from a Scroll. */
static int
scroll_from_pb(const Vecdb__Scroll *m, struct proto_scroll *s)
{
	int rv;

	if ((rv = proto_name_get(m->collection, VECDB_NAME_MAX, 1,
	    "collection name", s->collection)) != VECDB_OK ||
	    (rv = proto_id_get(m->start, 0, "start id", &s->start)) ||
	    (rv = paging_check(m->limit, 0)) != VECDB_OK)
		return rv;
	s->limit = m->limit;
	s->with_payload = m->with_payload != 0;
	s->with_vector = m->with_vector != 0;
	return proto_filter_get(m->filter_json, &s->filter_json);
}

int
proto_scroll_decode(const uint8_t *buf, size_t len,
    struct proto_scroll **out)
{
	ProtobufCMessage *pm;
	struct proto_scroll *s;
	int rv;

	if ((rv = proto_unpack(&vecdb__scroll__descriptor, buf, len, &pm)))
		return rv;
	if ((s = vdb_calloc(1, sizeof(*s))) == NULL) {
		proto_unpacked_free(pm);
		return vdb_err(VECDB_ENOMEM, "out of memory for a scroll");
	}
	rv = scroll_from_pb((Vecdb__Scroll *)pm, s);
	proto_unpacked_free(pm);
	if (rv != VECDB_OK) {
		proto_scroll_free(s);
		return rv;
	}
	*out = s;
	return VECDB_OK;
}

void
proto_scroll_free(struct proto_scroll *s)
{
	if (s == NULL)
		return;
	vdb_free(s->filter_json);
	vdb_free(s);
}

int
proto_count_encode(const char *coll, const char *filter_json,
    uint8_t **out, size_t *len)
{
	Vecdb__Count m;

	vecdb__count__init(&m);
	m.collection = proto_str(coll);
	m.filter_json = proto_str(filter_json);
	return proto_pack(&m.base, out, len);
}

int
proto_count_decode(const uint8_t *buf, size_t len,
    char coll[VECDB_NAME_MAX + 1], char **filter_json)
{
	ProtobufCMessage *pm;
	Vecdb__Count *m;
	char c[VECDB_NAME_MAX + 1];
	int rv;

	if ((rv = proto_unpack(&vecdb__count__descriptor, buf, len, &pm)))
		return rv;
	m = (Vecdb__Count *)pm;
	if ((rv = proto_name_get(m->collection, VECDB_NAME_MAX, 1,
	    "collection name", c)) == VECDB_OK &&
	    (rv = proto_filter_get(m->filter_json, filter_json)) == VECDB_OK)
		memcpy(coll, c, sizeof(c));
	proto_unpacked_free(pm);
	return rv;
}

/* ===== Sparse search ===== */

int
proto_sparse_search_encode(const char *coll,
    const vecdb_sparse_search_params *p, const char *filter_json,
    uint8_t **out, size_t *len)
{
	Vecdb__SparseSearch m;

	vecdb__sparse_search__init(&m);
	m.collection = proto_str(coll);
	m.name = proto_str(p->name);
	m.n_indices = m.n_values = p->n;
	m.indices = (uint32_t *)(uintptr_t)p->indices;
	m.values = (float *)(uintptr_t)p->values;
	m.limit = p->limit;
	m.offset = p->offset;
	m.filter_json = proto_str(filter_json);
	m.with_payload = p->with_payload != 0;
	m.with_vector = p->with_vector != 0;
	m.weighted = p->weighted != 0;
	return proto_pack(&m.base, out, len);
}

void
proto_sparse_search_free(struct proto_sparse_search *s)
{
	if (s == NULL)
		return;
	vdb_free((void *)(uintptr_t)s->p.indices);
	vdb_free((void *)(uintptr_t)s->p.values);
	vdb_free(s->filter_json);
	vdb_free(s);
}

/* Ours from a SparseSearch (s zeroed). */
static int
sparse_search_from_pb(const Vecdb__SparseSearch *m,
    struct proto_sparse_search *s)
{
	size_t n = m->n_indices;
	uint32_t *idx;
	float *val;
	int rv;

	if ((rv = proto_name_get(m->collection, VECDB_NAME_MAX, 1,
	    "collection name", s->collection)) != VECDB_OK ||
	    (rv = proto_name_get(m->name, VECDB_NAME_MAX, 1,
	    "sparse vector name", s->name)) != VECDB_OK)
		return rv;
	if (n != m->n_values || n > 65536)
		return vdb_err(VECDB_EINVAL, "a sparse query of %zu indices "
		    "and %zu values", n, m->n_values);
	if ((rv = proto_floats_check(m->values, n, "sparse values")) != 0 ||
	    (rv = proto_filter_get(m->filter_json, &s->filter_json)) != 0)
		return rv;
	idx = vdb_malloc((n ? n : 1) * sizeof(*idx));
	val = vdb_malloc((n ? n : 1) * sizeof(*val));
	s->p.indices = idx;
	s->p.values = val;
	if (idx == NULL || val == NULL)
		return vdb_err(VECDB_ENOMEM, "out of memory");
	if (n) {
		memcpy(idx, m->indices, n * sizeof(*idx));
		memcpy(val, m->values, n * sizeof(*val));
	}
	s->p.name = s->name;
	s->p.n = (uint32_t)n;
	s->p.limit = m->limit;
	s->p.offset = m->offset;
	s->p.with_payload = m->with_payload;
	s->p.with_vector = m->with_vector;
	s->p.weighted = m->weighted;
	return VECDB_OK;
}

int
proto_sparse_search_decode(const uint8_t *buf, size_t len,
    struct proto_sparse_search **out)
{
	ProtobufCMessage *pm;
	struct proto_sparse_search *s;
	int rv;

	if ((rv = proto_unpack(&vecdb__sparse_search__descriptor, buf, len,
	    &pm)) != VECDB_OK)
		return rv;
	if ((s = vdb_calloc(1, sizeof(*s))) == NULL) {
		proto_unpacked_free(pm);
		return vdb_err(VECDB_ENOMEM, "out of memory");
	}
	rv = sparse_search_from_pb((Vecdb__SparseSearch *)pm, s);
	proto_unpacked_free(pm);
	if (rv != VECDB_OK) {
		proto_sparse_search_free(s);
		return rv;
	}
	*out = s;
	return VECDB_OK;
}

int
proto_sparse_stats_encode(const char *coll, const char *name,
    const uint32_t *indices, size_t n, uint8_t **out, size_t *len)
{
	Vecdb__SparseStats m;

	vecdb__sparse_stats__init(&m);
	m.collection = proto_str(coll);
	m.name = proto_str(name);
	m.n_indices = n;
	m.indices = (uint32_t *)(uintptr_t)indices;
	return proto_pack(&m.base, out, len);
}

int
proto_sparse_stats_decode(const uint8_t *buf, size_t len,
    char coll[VECDB_NAME_MAX + 1], char name[VECDB_NAME_MAX + 1],
    uint32_t **indices, size_t *n)
{
	ProtobufCMessage *pm;
	Vecdb__SparseStats *m;
	int rv;

	*indices = NULL;
	*n = 0;
	if ((rv = proto_unpack(&vecdb__sparse_stats__descriptor, buf, len,
	    &pm)) != VECDB_OK)
		return rv;
	m = (Vecdb__SparseStats *)pm;
	if ((rv = proto_name_get(m->collection, VECDB_NAME_MAX, 1,
	    "collection name", coll)) == VECDB_OK &&
	    (rv = proto_name_get(m->name, VECDB_NAME_MAX, 1,
	    "sparse vector name", name)) == VECDB_OK) {
		if (m->n_indices > 65536)
			rv = vdb_err(VECDB_EINVAL, "%zu indices, more than "
			    "65536", m->n_indices);
		else if ((*indices = vdb_malloc((m->n_indices ?
		    m->n_indices : 1) * sizeof(**indices))) == NULL)
			rv = vdb_err(VECDB_ENOMEM, "out of memory");
		else {
			if (m->n_indices)
				memcpy(*indices, m->indices, m->n_indices *
				    sizeof(**indices));
			*n = m->n_indices;
		}
	}
	proto_unpacked_free(pm);
	return rv;
}

int
proto_sparse_stats_result_encode(uint64_t points, const uint64_t *df,
    size_t n, uint8_t **out, size_t *len)
{
	Vecdb__SparseStatsResult m;

	vecdb__sparse_stats_result__init(&m);
	m.points = points;
	m.n_df = n;
	m.df = (uint64_t *)(uintptr_t)df;
	return proto_pack(&m.base, out, len);
}

int
proto_sparse_stats_result_decode(const uint8_t *buf, size_t len, size_t n,
    uint64_t *points, uint64_t *df)
{
	ProtobufCMessage *pm;
	Vecdb__SparseStatsResult *m;
	int rv;

	if ((rv = proto_unpack(&vecdb__sparse_stats_result__descriptor, buf,
	    len, &pm)) != VECDB_OK)
		return rv;
	m = (Vecdb__SparseStatsResult *)pm;
	if (m->n_df != n)
		rv = vdb_err(VECDB_EINVAL, "%zu counts for %zu indices",
		    m->n_df, n);
	else {
		*points = m->points;
		if (n)
			memcpy(df, m->df, n * sizeof(*df));
	}
	proto_unpacked_free(pm);
	return rv;
}
