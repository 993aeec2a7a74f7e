/*
 * api_json.c: the JSON shapes of the REST API: reading request fields with
 * clear errors, and writing ids, vectors, hits, configs and snapshots.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <strings.h>

#include "api_impl.h"

/* ===== Fields ===== */

int
api_get_uint(const json_t *obj, const char *key, uint64_t def, uint64_t lo,
    uint64_t hi, uint64_t *out)
{
	json_t *v = json_object_get(obj, key);

	if (v == NULL || json_is_null(v)) {
		*out = def;
		return VECDB_OK;
	}
	if (!json_is_integer(v) || json_integer_value(v) < 0 ||
	    (uint64_t) json_integer_value(v) < lo ||
	    (uint64_t) json_integer_value(v) > hi)
		return vdb_err(VECDB_EINVAL, "'%s' must be an integer in "
		    "%llu..%llu", key, (unsigned long long) lo,
		    (unsigned long long) hi);
	*out = (uint64_t) json_integer_value(v);
	return VECDB_OK;
}

int
api_get_bool(const json_t *obj, const char *key, int def, int *out)
{
	json_t *v = json_object_get(obj, key);

	if (v == NULL || json_is_null(v)) {
		*out = def;
		return VECDB_OK;
	}
	if (!json_is_boolean(v))
		return vdb_err(VECDB_EINVAL, "'%s' must be true or false", key);
	*out = json_is_true(v);
	return VECDB_OK;
}

int
api_get_string(const json_t *obj, const char *key, int required,
    const char **out)
{
	json_t *v = json_object_get(obj, key);

	*out = NULL;
	if (v == NULL || json_is_null(v))
		return required ? vdb_err(VECDB_EINVAL, "'%s' is required",
				      key) : VECDB_OK;
	if (!json_is_string(v) || api_json_is_big(v))
		return vdb_err(VECDB_EINVAL, "'%s' must be a string", key);
	*out = json_string_value(v);
	return VECDB_OK;
}

int
api_get_array(const json_t *obj, const char *key, int required, size_t max,
    json_t **out)
{
	json_t *v = json_object_get(obj, key);

	*out = NULL;
	if (v == NULL || json_is_null(v))
		return required ? vdb_err(VECDB_EINVAL, "'%s' is required",
				      key) : VECDB_OK;
	if (!json_is_array(v))
		return vdb_err(VECDB_EINVAL, "'%s' must be an array", key);
	if (json_array_size(v) > max)
		return vdb_err(VECDB_EINVAL, "'%s' has %zu entries; the limit "
		    "is %zu", key, json_array_size(v), max);
	*out = v;
	return VECDB_OK;
}

/* The read options api_http.c takes from any request body. */
static const char *const read_opt_keys[] = { "consistency",
	"allow_partial", "write_concern", NULL };

/* Is key one of the NULL-terminated names? */
static int
key_in(const char *key, const char *const *names)
{
	for (size_t i = 0; names[i] != NULL; i++)
		if (strcmp(key, names[i]) == 0)
			return 1;
	return 0;
}

int
api_check_keys(const json_t *obj, const char *const *allowed,
    const char *where)
{
	/* The iterator API wants a mutable object; it only reads it here. */
	json_t *o = (json_t *) obj;
	const char *key;
	void *it;

	for (it = json_object_iter(o); it != NULL;
	    it = json_object_iter_next(o, it)) {
		key = json_object_iter_key(it);
		if (key_in(key, allowed) ||
		    (where == NULL && key_in(key, read_opt_keys)))
			continue;
		if (where == NULL || *where == '\0')
			return vdb_err(VECDB_EINVAL, "unknown field \"%.64s\"",
			    key);
		return vdb_err(VECDB_EINVAL, "unknown field \"%s.%.64s\"",
		    where, key);
	}
	return VECDB_OK;
}

/* ===== Ids and vectors ===== */

int
api_id_from_json(const json_t *j, const char *what, vecdb_id *out)
{
	uint64_t n;

	if (api_json_get_u64(j, &n)) {
		*out = vecdb_id_num(n);
		return VECDB_OK;
	}
	if (json_is_string(j)) {
		if (vecdb_id_parse(json_string_value(j), out) == VECDB_OK)
			return VECDB_OK;
		return vdb_err(VECDB_EINVAL, "%s: invalid id '%.64s' (expected "
		    "an unsigned integer or a UUID)", what,
		    json_string_value(j));
	}
	return vdb_err(VECDB_EINVAL, "%s: an id must be an unsigned integer "
	    "or a UUID string", what);
}

json_t *
api_id_to_json(const vecdb_id *id)
{
	char buf[VECDB_ID_STRLEN];

	/* api_send_json() prints with api_json_dumps(), so an id above
	 * INT64_MAX goes out as the bare number it is */
	if (id->kind == VECDB_ID_NUM)
		return api_json_uint(id->num);
	return json_string(vecdb_id_format(id, buf));
}

int
api_id_from_str(const char *s, vecdb_id *out)
{
	return vecdb_id_parse(s, out);
}

int
api_vector_from_json(const json_t *j, const char *what, float **out,
    uint32_t *dim)
{
	size_t n, i;
	json_t *x;
	float *v;

	switch (api_json_get_floats(j, out, dim)) {
	case 1:
		return VECDB_OK;   /* read with the body (api_json_text.h) */
	case -1:
		return vdb_err(VECDB_ENOMEM, "out of memory");
	}
	if (!json_is_array(j) || json_array_size(j) == 0)
		return vdb_err(VECDB_EINVAL, "%s must be a non-empty array of "
		    "numbers", what);
	n = json_array_size(j);
	if (n > VECDB_DIM_MAX)
		return vdb_err(VECDB_EINVAL, "%s has %zu components; the limit "
		    "is %d", what, n, VECDB_DIM_MAX);
	if ((v = vdb_malloc(n * sizeof(float))) == NULL)
		return vdb_err(VECDB_ENOMEM, "out of memory");
	json_array_foreach(j, i, x) {
		uint64_t big;
		if (api_json_is_big(x) && api_json_get_u64(x, &big)) {
			v[i] = (float) big;
			continue;
		}
		if (!json_is_number(x)) {
			vdb_free(v);
			return vdb_err(VECDB_EINVAL, "%s[%zu] is not a number",
			    what, i);
		}
		v[i] = (float) json_number_value(x);
		if (!isfinite(v[i])) {
			vdb_free(v);
			return vdb_err(VECDB_EINVAL, "%s[%zu] is out of float "
			    "range", what, i);
		}
	}
	*out = v;
	*dim = (uint32_t) n;
	return VECDB_OK;
}

json_t *
api_vector_to_json(const float *v, uint32_t dim)
{
	json_t *a = json_array();

	for (uint32_t i = 0; a != NULL && i < dim; i++)
		json_array_append_new(a, json_real(v[i]));
	return a;
}

int
api_ids_from_json(const json_t *arr, const char *what, vecdb_id **out,
    size_t *n)
{
	size_t i, cnt = json_array_size(arr);
	vecdb_id *ids = vdb_calloc(cnt ? cnt : 1, sizeof(*ids));
	char where[64];
	json_t *x;

	if (ids == NULL)
		return vdb_err(VECDB_ENOMEM, "out of memory");
	json_array_foreach(arr, i, x) {
		snprintf(where, sizeof(where), "%s[%zu]", what, i);
		if (api_id_from_json(x, where, &ids[i]) != VECDB_OK) {
			vdb_free(ids);
			return VECDB_EINVAL;
		}
	}
	*out = ids;
	*n = cnt;
	return VECDB_OK;
}

/* ===== Points ===== */

void
api_points_free(struct api_points *p)
{
	for (size_t i = 0; i < p->n; i++) {
		if (p->vecs)
			vdb_free(p->vecs[i]);
		if (p->payloads)
			free(p->payloads[i]); /* from json_dumps */
	}
	for (size_t i = 0; p->sparse && i < p->n; i++) {
		vecdb_sparse_vector *v =
		    (vecdb_sparse_vector *) (uintptr_t) p->sparse[i].v;

		vecdb_named_vector *d =
		    (vecdb_named_vector *) (uintptr_t) p->sparse[i].d;

		for (size_t j = 0; j < p->sparse[i].n; j++) {
			vdb_free((void *) (uintptr_t) v[j].indices);
			vdb_free((void *) (uintptr_t) v[j].values);
		}
		for (size_t j = 0; j < p->sparse[i].nd; j++)
			vdb_free((void *) (uintptr_t) d[j].data);
		vdb_free(v);
		vdb_free(d);
	}
	vdb_free(p->pts);
	vdb_free(p->vecs);
	vdb_free(p->payloads);
	vdb_free(p->sparse);
	memset(p, 0, sizeof(*p));
}

static const char *const point_keys[] = { "id", "data", "vector",
	"metadata", "payload", "vectors", NULL };

/* One sparse vector {indices: [u32...], values: [numbers]} (or null:
 * remove it) into v, named name; what says where, for errors. */
int
api_sparse_vector_from_json(const json_t *j, const char *name,
    const char *what, vecdb_sparse_vector *v)
{
	static const char *const keys[] = { "indices", "values", NULL };
	json_t *ix = json_object_get(j, "indices"), *va, *x;
	uint32_t *idx;
	float *val;
	size_t n, i;
	int rv;

	v->name = name;
	if (json_is_null(j)) {
		v->remove = 1;
		return VECDB_OK;
	}
	if (!json_is_object(j))
		return vdb_err(VECDB_EINVAL, "%s must be a sparse vector "
		    "{\"indices\": [...], \"values\": [...]} or null", what);
	if ((rv = api_check_keys(j, keys, what)) != VECDB_OK)
		return rv;
	va = json_object_get(j, "values");
	if (!json_is_array(ix) || !json_is_array(va))
		return vdb_err(VECDB_EINVAL, "%s needs 'indices' and 'values', "
		    "two arrays", what);
	if ((n = json_array_size(ix)) != json_array_size(va))
		return vdb_err(VECDB_EINVAL, "%s has %zu indices and %zu "
		    "values", what, n, json_array_size(va));
	if (n > 65536)
		return vdb_err(VECDB_EINVAL, "%s has %zu pairs; the limit is "
		    "65536", what, n);
	idx = vdb_malloc((n ? n : 1) * sizeof(*idx));
	val = vdb_malloc((n ? n : 1) * sizeof(*val));
	v->indices = idx;
	v->values = val;
	v->n = (uint32_t) n;
	if (idx == NULL || val == NULL)
		return vdb_err(VECDB_ENOMEM, "out of memory");
	json_array_foreach(ix, i, x) {
		if (!json_is_integer(x) || json_integer_value(x) < 0 ||
		    json_integer_value(x) > UINT32_MAX)
			return vdb_err(VECDB_EINVAL, "%s.indices[%zu] is not an "
			    "integer in 0..4294967295", what, i);
		idx[i] = (uint32_t) json_integer_value(x);
	}
	json_array_foreach(va, i, x) {
		if (!json_is_number(x) || !isfinite((float)
		    json_number_value(x)))
			return vdb_err(VECDB_EINVAL, "%s.values[%zu] is not a "
			    "finite number", what, i);
		val[i] = (float) json_number_value(x);
	}
	return VECDB_OK;
}

/* A point's "vectors": {name: dense vector (an array), sparse vector or
 * null} into p->sparse[i]; a null goes with the sparse ones (the engine
 * removes the vector of that name, of either kind). */
static int
point_sparse_from_json(const json_t *o, size_t i, struct api_points *p)
{
	vecdb_sparse_vector *v;
	vecdb_named_vector *d;
	const char *name;
	json_t *x;
	size_t k = 0, kd = 0;
	int rv;

	if (o == NULL || json_is_null(o))
		return VECDB_OK;
	if (!json_is_object(o))
		return vdb_err(VECDB_EINVAL, "vectors[%zu].vectors must be an "
		    "object of name: vector", i);
	if (json_object_size(o) > VECDB_SPARSE_MAX + VECDB_VECTORS_MAX)
		return vdb_err(VECDB_EINVAL, "vectors[%zu].vectors: a point "
		    "has at most %d named vectors", i, VECDB_SPARSE_MAX +
		    VECDB_VECTORS_MAX);
	if (p->sparse == NULL && (p->sparse = vdb_calloc(p->n,
	    sizeof(*p->sparse))) == NULL)
		return vdb_err(VECDB_ENOMEM, "out of memory");
	if ((v = vdb_calloc(json_object_size(o) + 1, sizeof(*v))) == NULL)
		return vdb_err(VECDB_ENOMEM, "out of memory");
	p->sparse[i].v = v;
	if ((d = vdb_calloc(json_object_size(o) + 1, sizeof(*d))) == NULL)
		return vdb_err(VECDB_ENOMEM, "out of memory");
	p->sparse[i].d = d;
	json_object_foreach((json_t *) o, name, x) {
		char what[VECDB_NAME_MAX + 48];

		snprintf(what, sizeof(what), "vectors[%zu].vectors.%.*s", i,
		    VECDB_NAME_MAX, name);
		if (json_is_array(x)) {
			float *f = NULL;

			d[kd].name = name;
			p->sparse[i].nd = ++kd;
			if ((rv = api_vector_from_json(x, what, &f,
			    &d[kd - 1].dim)) != VECDB_OK)
				return rv;
			d[kd - 1].data = f;
			continue;
		}
		p->sparse[i].n = ++k;
		if ((rv = api_sparse_vector_from_json(x, name, what,
		    &v[k - 1])) != VECDB_OK)
			return rv;
	}
	return VECDB_OK;
}

/*
 * The one present field of two synonyms (the API's and Qdrant's) into
 * *out (NULL: neither, or null); both is an error.
 */
static int
field2(const json_t *o, const char *a, const char *b, const char *where,
    json_t **out)
{
	json_t *va = json_object_get(o, a), *vb = json_object_get(o, b);

	if (va != NULL && json_is_null(va))
		va = NULL;
	if (vb != NULL && json_is_null(vb))
		vb = NULL;
	if (va != NULL && vb != NULL)
		return vdb_err(VECDB_EINVAL, "%s: '%s' and '%s' are the same "
		    "field: give one", where, a, b);
	*out = va != NULL ? va : vb;
	return VECDB_OK;
}

/* One point object into slot i (what it allocates is p's). */
static int
point_from_json(const json_t *o, size_t i, int flags, struct api_points *p)
{
	char where[48];
	json_t *id = json_object_get(o, "id"), *data = NULL, *meta = NULL;
	int rv;

	snprintf(where, sizeof(where), "vectors[%zu]", i);
	if (!json_is_object(o))
		return vdb_err(VECDB_EINVAL, "%s must be an object", where);
	if ((rv = api_check_keys(o, point_keys, flags & API_POINTS_BODY ?
	    NULL : where)) != VECDB_OK ||
	    (id != NULL && !json_is_null(id) &&
	    (rv = api_id_from_json(id, where, &p->pts[i].id)) != VECDB_OK) ||
	    (rv = field2(o, "data", "vector", where, &data)) != VECDB_OK ||
	    (rv = field2(o, "metadata", "payload", where, &meta)) != VECDB_OK)
		return rv;
	if (data == NULL && !(flags & API_POINTS_UPDATE) &&
	    json_object_get(o, "vectors") == NULL)
		return vdb_err(VECDB_EINVAL, "%s: 'data' (the vector) is "
		    "required", where);
	if ((rv = point_sparse_from_json(json_object_get(o, "vectors"), i,
	    p)) != VECDB_OK)
		return rv;
	snprintf(where, sizeof(where), "vectors[%zu].data", i);
	if (data != NULL && (rv = api_vector_from_json(data, where,
	    &p->vecs[i], &p->pts[i].dim)) != VECDB_OK)
		return rv;
	p->pts[i].vector = p->vecs[i];
	if (meta == NULL)
		return VECDB_OK;
	snprintf(where, sizeof(where), "vectors[%zu].metadata", i);
	if (!json_is_object(meta))
		return vdb_err(VECDB_EINVAL, "%s must be a JSON object", where);
	if ((rv = api_json_check_int64(meta, where)) != VECDB_OK)
		return rv;
	if ((p->payloads[i] = json_dumps(meta, JSON_COMPACT)) == NULL)
		return vdb_err(VECDB_ENOMEM, "out of memory");
	p->pts[i].payload = p->payloads[i];
	return VECDB_OK;
}

int
api_points_from_json(const json_t *arr, int flags, struct api_points *out)
{
	struct api_points p;
	size_t i, n = json_array_size(arr);
	json_t *o;
	int rv;

	memset(&p, 0, sizeof(p));
	p.n = n;
	p.pts = vdb_calloc(n ? n : 1, sizeof(*p.pts));
	p.vecs = vdb_calloc(n ? n : 1, sizeof(*p.vecs));
	p.payloads = vdb_calloc(n ? n : 1, sizeof(*p.payloads));
	if (p.pts == NULL || p.vecs == NULL || p.payloads == NULL) {
		api_points_free(&p);
		return vdb_err(VECDB_ENOMEM, "out of memory");
	}
	json_array_foreach(arr, i, o) {
		if ((rv = point_from_json(o, i, flags, &p)) != VECDB_OK) {
			api_points_free(&p);
			return rv;
		}
	}
	*out = p;
	return VECDB_OK;
}

/* ===== Collection configs ===== */

static const struct {
	const char *name;
	vecdb_metric m;
} metrics[] = {
	{ "cosine", VECDB_COSINE }, { "euclidean", VECDB_EUCLIDEAN },
	{ "dot_product", VECDB_DOT }, { "manhattan", VECDB_MANHATTAN },
	/* accepted aliases */
	{ "euclid", VECDB_EUCLIDEAN }, { "l2", VECDB_EUCLIDEAN },
	{ "dot", VECDB_DOT }, { "l1", VECDB_MANHATTAN },
};

const char *
api_metric_name(vecdb_metric m)
{
	return metrics[m <= VECDB_MANHATTAN ? m : 0].name;
}

/* The metric named s (case-insensitive). */
static int
metric_parse(const char *s, vecdb_metric *out)
{
	for (size_t i = 0; i < sizeof(metrics) / sizeof(metrics[0]); i++)
		if (strcasecmp(s, metrics[i].name) == 0) {
			*out = metrics[i].m;
			return VECDB_OK;
		}
	return vdb_err(VECDB_EINVAL, "unknown distance_metric '%.32s' "
	    "(expected cosine, euclidean, dot_product or manhattan)", s);
}

static const char *const vtypes[] = { "float32", "float16", "uint8" };
/* By vecdb_quant. */
static const char *const quants[] = { "none", "scalar", "binary",
	"product" };
#define N_QUANTS ((int) (sizeof(quants) / sizeof(quants[0])))

/* Index of s in names[n] (case-insensitive), or -1. */
static int
name_index(const char *s, const char *const *names, int n)
{
	for (int i = 0; i < n; i++)
		if (strcasecmp(s, names[i]) == 0)
			return i;
	return -1;
}

static const char *const index_keys[] = { "max_connections",
	"ef_construction", "ef_search", "max_layer", NULL };

/* index_config {max_connections, ef_construction, ef_search, max_layer}. */
static int
index_from_json(const json_t *j, vecdb_index_config *ix)
{
	uint64_t m = 0, efc = 0, ef = 0, ml = 0;
	int rv;

	if (j == NULL || json_is_null(j))
		return VECDB_OK;
	if (!json_is_object(j))
		return vdb_err(VECDB_EINVAL, "'index_config' must be an object");
	if ((rv = api_check_keys(j, index_keys, "index_config")) ||
	    (rv = api_get_uint(j, "max_connections", 0, 0, UINT32_MAX, &m)) ||
	    (rv = api_get_uint(j, "ef_construction", 0, 0, UINT32_MAX, &efc)) ||
	    (rv = api_get_uint(j, "ef_search", 0, 0, UINT32_MAX, &ef)) ||
	    (rv = api_get_uint(j, "max_layer", 0, 0, UINT32_MAX, &ml)))
		return rv;
	ix->max_connections = (uint32_t) m;
	ix->ef_construction = (uint32_t) efc;
	ix->ef_search = (uint32_t) ef;
	ix->max_layer = (uint32_t) ml;
	return VECDB_OK;
}

/* ===== Quantization ===== */

/*
 * The settings an object may give, by type: quantile and always_ram for
 * any (as before product existed), segments and bits for product only,
 * so that a product setting on another type is not silently dropped.
 */
static int
quant_fields(const json_t *o, vecdb_quant_config *q)
{
	json_t *ql = json_object_get(o, "quantile");
	json_t *seg = json_object_get(o, "segments");
	json_t *bits = json_object_get(o, "bits");
	uint64_t n;
	int rv;

	if (seg != NULL && json_is_null(seg))
		seg = NULL;
	if (bits != NULL && json_is_null(bits))
		bits = NULL;
	if (ql != NULL && !json_is_null(ql)) {
		if (!json_is_number(ql))
			return vdb_err(VECDB_EINVAL, "'quantile' must be a "
			    "number in (0, 1]");
		q->quantile = (float) json_number_value(ql);
	}
	if ((rv = api_get_bool(o, "always_ram", 0, &q->always_ram)) != 0)
		return rv;
	if (q->type != VECDB_QUANT_PRODUCT && (seg != NULL || bits != NULL))
		return vdb_err(VECDB_EINVAL, "'%s' is a setting of product "
		    "quantization only", seg != NULL ? "segments" : "bits");
	/* 0 means the default in the C API: here, leave the field out */
	if ((rv = api_get_uint(o, "segments", 0, 1, VECDB_DIM_MAX, &n)))
		return rv;
	q->segments = (uint32_t) n;
	if (bits != NULL && !(json_is_integer(bits) &&
	    json_integer_value(bits) == VECDB_PQ_BITS))
		return vdb_err(VECDB_EINVAL, "'bits' must be %d (the size of "
		    "a product quantization code)", VECDB_PQ_BITS);
	q->bits = bits != NULL ? VECDB_PQ_BITS : 0;
	return VECDB_OK;
}

/* {type, quantile?, always_ram?, segments?, bits?} */
static int
quant_typed(const json_t *j, vecdb_quant_config *q)
{
	static const char *const keys[] = { "type", "quantile", "always_ram",
		"segments", "bits", NULL };
	const char *t;
	int idx, rv;

	if ((rv = api_get_string(j, "type", 1, &t)) != VECDB_OK ||
	    (rv = api_check_keys(j, keys, "quantization")) != VECDB_OK)
		return rv;
	if ((idx = name_index(t, quants, N_QUANTS)) < 0)
		return vdb_err(VECDB_EINVAL, "unknown quantization type "
		    "'%.32s' (expected none, scalar, binary or product)", t);
	q->type = (vecdb_quant) idx;
	return quant_fields(j, q);
}

/* Qdrant's product compression "xR": a code of dim * 4 / R bytes, one
 * byte a segment (at least one segment). */
static int
compression_segments(const json_t *o, uint32_t dim, uint32_t *segments)
{
	static const char *const ratios[] = { "x4", "x8", "x16", "x32",
		"x64" };
	json_t *c = json_object_get(o, "compression");
	int i;

	if (c == NULL || json_is_null(c))
		return VECDB_OK;
	if (!json_is_string(c) || (i = name_index(json_string_value(c),
	    ratios, 5)) < 0)
		return vdb_err(VECDB_EINVAL, "'quantization.product."
		    "compression' must be x4, x8, x16, x32 or x64");
	*segments = (uint32_t) ((uint64_t) dim * 4 / (4u << i));
	if (*segments == 0)
		*segments = 1;
	return VECDB_OK;
}

/* The keys of Qdrant's inner objects, by vecdb_quant. */
static const char *const *const qdrant_keys[] = {
	(const char *const[]){ NULL },
	(const char *const[]){ "type", "quantile", "always_ram", NULL },
	(const char *const[]){ "always_ram", NULL },
	(const char *const[]){ "compression", "always_ram", NULL },
};

/* Qdrant's {"scalar": {type: "int8", quantile, always_ram}}, {"binary":
 * {always_ram}} and {"product": {compression, always_ram}}. */
static int
quant_qdrant(const json_t *j, uint32_t dim, vecdb_quant_config *q)
{
	void *it = json_object_iter((json_t *) j);
	const char *kind = json_object_iter_key(it), *t;
	json_t *in = json_object_iter_value(it);
	char where[48];
	int idx, rv;

	snprintf(where, sizeof(where), "quantization.%.32s", kind);
	if ((idx = name_index(kind, quants, N_QUANTS)) < 0)
		return vdb_err(VECDB_EINVAL, "unknown quantization '%.32s' "
		    "(expected none, scalar, binary or product)", kind);
	q->type = (vecdb_quant) idx;
	if (json_is_null(in))
		return VECDB_OK;
	if (!json_is_object(in))
		return vdb_err(VECDB_EINVAL, "'%s' must be an object", where);
	if ((rv = api_check_keys(in, qdrant_keys[idx], where)) != VECDB_OK ||
	    (rv = api_get_string(in, "type", 0, &t)) != VECDB_OK)
		return rv;
	if (t != NULL && strcasecmp(t, "int8") != 0)
		return vdb_err(VECDB_EINVAL, "'quantization.scalar.type' must "
		    "be int8");
	if ((rv = compression_segments(in, dim, &q->segments)) != VECDB_OK)
		return rv;
	if (q->type == VECDB_QUANT_SCALAR && (rv = quant_fields(in, q)) != 0)
		return rv;
	return api_get_bool(in, "always_ram", 0, &q->always_ram);
}

int
api_quant_from_json(const json_t *j, uint32_t dim, vecdb_quant_config *out)
{
	vecdb_quant_config q;
	int idx, rv = VECDB_OK;

	memset(&q, 0, sizeof(q));
	if (j == NULL || json_is_null(j)) {
		q.type = VECDB_QUANT_NONE;
	} else if (json_is_string(j) && !api_json_is_big(j)) {
		if ((idx = name_index(json_string_value(j), quants,
		    N_QUANTS)) < 0)
			return vdb_err(VECDB_EINVAL, "unknown quantization "
			    "'%.32s' (expected none, scalar, binary or "
			    "product)", json_string_value(j));
		q.type = (vecdb_quant) idx;
	} else if (json_is_object(j) && json_object_get(j, "type") != NULL) {
		rv = quant_typed(j, &q);
	} else if (json_is_object(j) && json_object_size(j) == 1) {
		rv = quant_qdrant(j, dim, &q);
	} else {
		return vdb_err(VECDB_EINVAL, "'quantization' must be none, "
		    "scalar, binary, product, {\"type\": ..} or {\"scalar\"|"
		    "\"binary\"|\"product\": {..}}");
	}
	if (rv == VECDB_OK)
		*out = q;
	return rv;
}

static const char *const modifiers[] = { "none", "idf" };

int
api_sparse_config_from_json(const json_t *j, vecdb_collection_config *c)
{
	static const char *const keys[] = { "modifier", NULL };
	const char *name, *mod;
	json_t *v;
	int rv, m;

	if (j == NULL || json_is_null(j))
		return VECDB_OK;
	if (!json_is_object(j))
		return vdb_err(VECDB_EINVAL, "'sparse_vectors' must be an "
		    "object of name: {\"modifier\": \"none\" | \"idf\"}");
	if (json_object_size(j) > VECDB_SPARSE_MAX)
		return vdb_err(VECDB_EINVAL, "a collection has at most %d "
		    "sparse vectors", VECDB_SPARSE_MAX);
	json_object_foreach((json_t *) j, name, v) {
		vecdb_sparse_config *s = &c->sparse[c->n_sparse];
		char where[VECDB_NAME_MAX + 32];

		if (strlen(name) > VECDB_NAME_MAX)
			return vdb_err(VECDB_EINVAL, "sparse vector name is "
			    "longer than %d characters", VECDB_NAME_MAX);
		snprintf(where, sizeof(where), "sparse_vectors.%s", name);
		mod = NULL;
		if (!json_is_null(v) && ((rv = api_check_keys(v, keys,
		    where)) != VECDB_OK || (rv = api_get_string(v, "modifier",
		    0, &mod)) != VECDB_OK))
			return rv;
		m = 0;
		if (mod != NULL && (m = name_index(mod, modifiers, 2)) < 0)
			return vdb_err(VECDB_EINVAL, "'%s.modifier' must be "
			    "none or idf", where);
		snprintf(s->name, sizeof(s->name), "%s", name);
		s->modifier = (vecdb_sparse_modifier) m;
		c->n_sparse++;
	}
	return VECDB_OK;
}

/* "vectors": {name: {dimension, distance_metric?, vector_type?,
 * index_config?, quantization?}}: the named dense vectors. */
static int
vectors_from_json(const json_t *j, vecdb_collection_config *c)
{
	static const char *const keys[] = { "dimension", "distance_metric",
		"vector_type", "index_config", "quantization", NULL };
	const char *name, *metric, *vtype;
	json_t *v;
	int rv, vt;

	if (j == NULL || json_is_null(j))
		return VECDB_OK;
	if (!json_is_object(j))
		return vdb_err(VECDB_EINVAL, "'vectors' must be an object of "
		    "name: {\"dimension\": .., \"distance_metric\": ..}");
	if (json_object_size(j) > VECDB_VECTORS_MAX)
		return vdb_err(VECDB_EINVAL, "a collection has at most %d "
		    "named vectors", VECDB_VECTORS_MAX);
	json_object_foreach((json_t *) j, name, v) {
		vecdb_vector_config *x = &c->vectors[c->n_vectors];
		char where[VECDB_NAME_MAX + 32];
		uint64_t dim = 0;

		if (strlen(name) > VECDB_NAME_MAX)
			return vdb_err(VECDB_EINVAL, "vector name is longer "
			    "than %d characters", VECDB_NAME_MAX);
		snprintf(where, sizeof(where), "vectors.%s", name);
		if (!json_is_object(v))
			return vdb_err(VECDB_EINVAL, "'%s' must be an object "
			    "with a dimension", where);
		memset(x, 0, sizeof(*x));
		if (json_object_get(v, "dimension") == NULL)
			return vdb_err(VECDB_EINVAL, "'%s.dimension' is "
			    "required", where);
		if ((rv = api_check_keys(v, keys, where)) ||
		    (rv = api_get_uint(v, "dimension", 1, 1, VECDB_DIM_MAX,
		    &dim)) ||
		    (rv = api_get_string(v, "distance_metric", 0, &metric)) ||
		    (rv = api_get_string(v, "vector_type", 0, &vtype)))
			return rv;
		x->metric = VECDB_COSINE;
		if (metric != NULL && (rv = metric_parse(metric,
		    &x->metric)) != VECDB_OK)
			return rv;
		if (vtype != NULL && (vt = name_index(vtype, vtypes, 3)) < 0)
			return vdb_err(VECDB_EINVAL, "%s: unknown vector_type "
			    "'%.32s' (expected float32, float16 or uint8)",
			    where, vtype);
		x->vector_type = vtype != NULL ? (vecdb_vtype) vt :
		    VECDB_FLOAT32;
		snprintf(x->name, sizeof(x->name), "%s", name);
		x->dimension = (uint32_t) dim;
		if ((rv = index_from_json(json_object_get(v, "index_config"),
			 &x->index)) != VECDB_OK ||
		    (rv = api_quant_from_json(json_object_get(v,
			 "quantization"), x->dimension, &x->quantization)) !=
		    VECDB_OK)
			return rv;
		if (x->quantization.quantile == 0)
			x->quantization.quantile = 0.99f;
		c->n_vectors++;
	}
	return VECDB_OK;
}

int
api_config_from_json(const json_t *j, vecdb_collection_config *out)
{
	const char *name, *metric, *vtype;
	vecdb_collection_config c;
	static const char *const keys[] = { "name", "dimension",
		"distance_metric", "vector_type", "index_config",
		"quantization", "sparse_vectors", "vectors", NULL };
	vecdb_metric m = VECDB_COSINE;
	uint64_t dim = 0;
	int rv, vt = 0;

	if ((rv = api_check_keys(j, keys, NULL)) ||
	    (rv = api_get_string(j, "name", 1, &name)) ||
	    (rv = api_get_uint(j, "dimension", 0, 1, VECDB_DIM_MAX, &dim)) ||
	    (rv = api_get_string(j, "distance_metric", 0, &metric)) ||
	    (rv = api_get_string(j, "vector_type", 0, &vtype)))
		return rv;
	if (metric != NULL && (rv = metric_parse(metric, &m)) != VECDB_OK)
		return rv;
	if (vtype != NULL && (vt = name_index(vtype, vtypes, 3)) < 0)
		return vdb_err(VECDB_EINVAL, "unknown vector_type '%.32s' "
		    "(expected float32, float16 or uint8)", vtype);
	if (strlen(name) > VECDB_NAME_MAX)
		return vdb_err(VECDB_EINVAL, "collection name is longer than "
		    "%d characters", VECDB_NAME_MAX);
	vecdb_collection_config_init(&c, name, (uint32_t) dim, m);
	c.vector_type = (vecdb_vtype) vt;
	if ((rv = index_from_json(json_object_get(j, "index_config"),
		 &c.index)) != VECDB_OK ||
	    (rv = api_quant_from_json(json_object_get(j, "quantization"),
		 c.dimension, &c.quantization)) != VECDB_OK ||
	    (rv = api_sparse_config_from_json(json_object_get(j,
	    "sparse_vectors"),
		 &c)) != VECDB_OK ||
	    (rv = vectors_from_json(json_object_get(j, "vectors"), &c)) !=
		 VECDB_OK)
		return rv;
	/* without one, only named vectors: dimension 0 */
	if (json_object_get(j, "dimension") == NULL &&
	    c.n_vectors + c.n_sparse == 0)
		return vdb_err(VECDB_EINVAL, "'dimension' is required (or "
		    "named 'vectors' only)");
	*out = c;
	return VECDB_OK;
}

const char *
api_quant_name(vecdb_quant q)
{
	return quants[(unsigned) q < N_QUANTS ? q : 0];
}

/* {type, quantile, always_ram}, with segments and bits for product. */
static json_t *
quant_to_json(const vecdb_quant_config *q)
{
	json_t *o = json_pack("{s:s, s:f, s:b}", "type", api_quant_name(
	    q->type), "quantile", (double) q->quantile, "always_ram",
	    q->always_ram);

	if (o != NULL && q->type == VECDB_QUANT_PRODUCT) {
		json_object_set_new(o, "segments", json_integer(q->segments));
		json_object_set_new(o, "bits", json_integer(q->bits));
	}
	return o;
}

/* One vector's settings. */
static json_t *
vector_to_json(uint32_t dim, vecdb_metric m, vecdb_vtype vt,
    const vecdb_index_config *ix, const vecdb_quant_config *q)
{
	return json_pack("{s:i, s:s, s:s, s:{s:i, s:i, s:i, s:i}, s:o}",
	    "dimension", (int) dim, "distance_metric", api_metric_name(m),
	    "vector_type", vtypes[(unsigned) vt < 3 ? vt : 0],
	    "index_config", "max_connections", (int) ix->max_connections,
	    "ef_construction", (int) ix->ef_construction, "ef_search",
	    (int) ix->ef_search, "max_layer", (int) ix->max_layer,
	    "quantization", quant_to_json(q));
}

json_t *
api_config_to_json(const vecdb_collection_config *c)
{
	json_t *o = json_pack("{s:s}", "name", c->name), *sv;

	if (o == NULL || json_object_update_new(o, vector_to_json(
	    c->dimension, c->metric, c->vector_type, &c->index,
	    &c->quantization)) != 0) {
		json_decref(o);
		return NULL;
	}
	json_object_set_new(o, "created_at", json_integer(c->created_at));
	if (c->n_vectors > 0 && (sv = json_object()) != NULL) {
		for (uint32_t i = 0; i < c->n_vectors && i < VECDB_VECTORS_MAX;
		    i++) {
			const vecdb_vector_config *v = &c->vectors[i];

			json_object_set_new(sv, v->name, vector_to_json(
			    v->dimension, v->metric, v->vector_type,
			    &v->index, &v->quantization));
		}
		json_object_set_new(o, "vectors", sv);
	}
	if (c->n_sparse == 0)
		return o;
	if ((sv = json_object()) == NULL) {
		json_decref(o);
		return NULL;
	}
	for (uint32_t i = 0; i < c->n_sparse && i < VECDB_SPARSE_MAX; i++)
		json_object_set_new(sv, c->sparse[i].name, json_pack("{s:s}",
		    "modifier", modifiers[c->sparse[i].modifier ==
		    VECDB_SPARSE_IDF]));
	json_object_set_new(o, "sparse_vectors", sv);
	return o;
}

/* ===== Results ===== */

json_t *
api_sparse_to_json(const vecdb_record *r)
{
	json_t *o = json_object();

	for (size_t i = 0; o != NULL && i < r->n_named; i++)
		json_object_set_new(o, r->named[i].name, api_vector_to_json(
		    r->named[i].data, r->named[i].dim));
	for (size_t i = 0; o != NULL && i < r->n_sparse; i++) {
		const vecdb_sparse_record *s = &r->sparse[i];
		json_t *ix = json_array(), *va = json_array();

		for (uint32_t j = 0; j < s->n; j++) {
			json_array_append_new(ix, json_integer(s->indices[j]));
			json_array_append_new(va, json_real(s->values[j]));
		}
		json_object_set_new(o, s->name, json_pack("{s:o, s:o}",
		    "indices", ix, "values", va));
	}
	return o;
}

/* Hits with their distance, or (scored) their score. */
static json_t *
hits_json(const vecdb_records *r, int with_payload, int with_vector,
    int scored)
{
	json_t *a = json_array();

	for (size_t i = 0; a != NULL && i < r->count; i++) {
		const vecdb_record *x = &r->items[i];
		json_t *o = json_object();
		json_object_set_new(o, "id", api_id_to_json(&x->id));
		if (scored)
			json_object_set_new(o, "score", json_real(x->score));
		else
			json_object_set_new(o, "distance",
			    json_real(x->distance));
		if (with_payload && x->payload != NULL)
			json_object_set_new(o, "metadata",
			    api_json_raw(x->payload));
		if (with_vector && x->vector != NULL)
			json_object_set_new(o, "vector",
			    api_vector_to_json(x->vector, x->dim));
		if (with_vector && x->n_sparse + x->n_named > 0)
			json_object_set_new(o, "vectors",
			    api_sparse_to_json(x));
		json_array_append_new(a, o);
	}
	return a;
}

json_t *
api_hits_to_json(const vecdb_records *r, int with_payload, int with_vector)
{
	return hits_json(r, with_payload, with_vector, 0);
}

json_t *
api_scored_hits_to_json(const vecdb_records *r, int with_payload,
    int with_vector)
{
	return hits_json(r, with_payload, with_vector, 1);
}

json_t *
api_snapshot_to_json(const vecdb_snapshot_info *si)
{
	return json_pack("{s:s, s:s, s:I, s:I, s:I, s:s}", "name", si->name,
	    "collection", si->collection, "created_at",
	    (json_int_t) si->created_at, "size_bytes",
	    (json_int_t) si->size_bytes, "vector_count",
	    (json_int_t) si->vector_count, "checksum", si->checksum);
}
