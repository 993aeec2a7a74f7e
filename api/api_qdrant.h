/*
 * api_qdrant.h: what the two files of the Qdrant front end share
 * (api_qdrant.c: service, collections, points, payload; api_qdrant_query.c:
 * search, query, recommend, discover, scroll, count).
 */
#ifndef API_QDRANT_H
#define API_QDRANT_H

#include "api_impl.h"

/* The Qdrant release whose REST API we speak (GET /). */
#define QD_API_VERSION "1.19.0"

/*
 * Qdrant's unnamed vector in a collection that also has sparse vectors
 * is kept as this named vector (a point may then lack it, as in Qdrant);
 * the API shows it as the unnamed one.
 */
#define QD_DEFAULT "qdrant-default"
/* QD_DEFAULT when collection c keeps its unnamed vector so, else NULL. */
const char *qd_default_vector(const vecdb_collection_config *c);

/* A missing collection (VECDB_ENOTFOUND naming one) in Qdrant's words;
 * any other rv as it is. */
int qd_coll_missing(int rv, const char *name);

/* A collection's config, from a cache kept for a second (api_qdrant.c). */
int qd_config(struct api_req *r, const char *coll,
    vecdb_collection_config *cfg);

/* What a request wants of each point: with_payload and with_vector (or
 * with_vectors) as given, borrowed from the body; NULL: the default. */
struct qd_with {
	const json_t *payload;   /* bool, [keys], {include} or {exclude} */
	int payload_def;         /* with_payload when absent */
	json_t *vector;          /* bool or [names] */
};
int qd_with_from_json(const json_t *body, int payload_def,
    struct qd_with *w);
int qd_with_payload(const struct qd_with *w);
int qd_with_vector(const struct qd_with *w);

/* A float as the shortest decimal that reads back as it (a new
 * reference), as Qdrant prints scores and vectors. */
json_t *qd_real(float f);

/* A Record {id, payload?, vector?}, or with scored a ScoredPoint
 * {id, version, score (x->score), payload?, vector?}. */
json_t *qd_record_json(const vecdb_record *x,
    const vecdb_collection_config *cfg, const struct qd_with *w, int scored);

/* Call fn on each value at a dotted key of a payload: objects by
 * segment, into the objects of arrays on the way, an array at the end
 * element by element (facets and groups). */
void qd_values_at(const json_t *v, const char *key,
    void (*fn)(const json_t *, void *), void *arg);

/*
 * order_by (a key, or {key, direction?, start_from?}): the points that
 * match filter and hold a number at an indexed integer or float key,
 * by it (a point once for each of its numbers, ties by id), offset and
 * limit applied, as Records (or, scored, ScoredPoints scored 0) with
 * their order_value. Reads every matching point's payload.
 */
int qd_order_by(struct api_req *r, const vecdb_collection_config *cfg,
    const json_t *ob, const json_t *filter, const struct qd_with *w,
    uint64_t limit, uint64_t offset, int scored, json_t **points);

/* The query routes (api_qdrant_query.c). */
int qd_h_scroll(struct api_req *r, json_t **data);
int qd_h_count(struct api_req *r, json_t **data);
int qd_h_query(struct api_req *r, json_t **data);
int qd_h_query_batch(struct api_req *r, json_t **data);
int qd_h_search(struct api_req *r, json_t **data);
int qd_h_search_batch(struct api_req *r, json_t **data);
int qd_h_recommend(struct api_req *r, json_t **data);
int qd_h_recommend_batch(struct api_req *r, json_t **data);
int qd_h_discover(struct api_req *r, json_t **data);
int qd_h_discover_batch(struct api_req *r, json_t **data);
int qd_h_query_groups(struct api_req *r, json_t **data);
int qd_h_search_groups(struct api_req *r, json_t **data);
int qd_h_recommend_groups(struct api_req *r, json_t **data);

#endif /* API_QDRANT_H */
