/* proto_test.c: the wire format: round trips and malformed input. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto.h"
#include "testutil.h"
#include "vdb.h"

/* ===== Helpers ===== */

static const uint8_t uuid_a[16] = { 0x12, 0x34, 0x56, 0x78, 0x9a, 0xbc,
	0xde, 0xf0, 0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef };

/* A UUID id from uuid_a with its last byte set to b. */
static vecdb_id
uuid_id(uint8_t b)
{
	vecdb_id id;

	memset(&id, 0, sizeof(id));
	id.kind = VECDB_ID_UUID;
	memcpy(id.uuid, uuid_a, 16);
	id.uuid[15] = b;
	return id;
}

/* Both ids equal, kind and value. */
static void
id_eq(const vecdb_id *a, const vecdb_id *b)
{
	ck_assert_int_eq(a->kind, b->kind);
	if (a->kind == VECDB_ID_NUM)
		ck_assert_uint_eq(a->num, b->num);
	if (a->kind == VECDB_ID_UUID)
		ck_assert_mem_eq(a->uuid, b->uuid, 16);
}

/* Both vectors equal bit for bit (NULL ones too). */
static void
vec_eq(const float *a, uint32_t da, const float *b, uint32_t db)
{
	ck_assert_int_eq(a == NULL, b == NULL);
	if (a == NULL)
		return;
	ck_assert_uint_eq(da, db);
	ck_assert_int_eq(memcmp(a, b, da * sizeof(float)), 0);
}

/* Both strings equal (NULL ones too). */
static void
str_eq(const char *a, const char *b)
{
	ck_assert_int_eq(a == NULL, b == NULL);
	if (a != NULL)
		ck_assert_str_eq(a, b);
}

/* Both records equal field by field. */
static void
record_eq(const vecdb_record *a, const vecdb_record *b)
{
	id_eq(&a->id, &b->id);
	vec_eq(a->vector, a->dim, b->vector, b->dim);
	str_eq(a->payload, b->payload);
	ck_assert(a->distance == b->distance);
	ck_assert_uint_eq(a->context_hits, b->context_hits);
}

/* Both record lists equal. */
static void
records_eq(const vecdb_records *a, const vecdb_records *b)
{
	ck_assert_uint_eq(a->count, b->count);
	for (size_t i = 0; i < a->count; i++)
		record_eq(&a->items[i], &b->items[i]);
	ck_assert_int_eq(a->has_next, b->has_next);
	if (a->has_next)
		id_eq(&a->next, &b->next);
}

static float vec4[4] = { 0.5f, -1.25f, 3.0f, 1e-20f };
static float vec4b[4] = { 1, 2, 3, 4 };

/* A sample list of records with all kinds of fields. */
static vecdb_records *
sample_records(void)
{
	vecdb_records *r = vdb_calloc(1, sizeof(*r));

	r->count = 3;
	r->items = vdb_calloc(3, sizeof(*r->items));
	r->items[0].id = vecdb_id_num(7);
	r->items[0].vector = vdb_malloc(sizeof(vec4));
	memcpy(r->items[0].vector, vec4, sizeof(vec4));
	r->items[0].dim = 4;
	r->items[0].payload = vdb_strdup("{\"a\":1}");
	r->items[0].distance = 0.25f;
	r->items[1].id = uuid_id(1);
	r->items[1].distance = -3.5f;
	r->items[1].context_hits = 2;
	r->items[2].id = vecdb_id_num(0);
	r->items[2].payload = vdb_strdup("{}");
	r->has_next = 1;
	r->next = uuid_id(9);
	return r;
}

/* ===== Envelope and codes ===== */

START_TEST(request_round_trips)
{
	struct proto_request *r;
	uint8_t *buf;
	size_t len;

	ck_assert_int_eq(proto_request_encode(PROTO_SEARCH, "key", 42,
	    "\x01\x02", 2, &buf, &len), VECDB_OK);
	ck_assert_int_eq(proto_request_decode(buf, len, &r), VECDB_OK);
	ck_assert_uint_eq(r->method, PROTO_SEARCH);
	ck_assert_str_eq(r->api_key, "key");
	ck_assert_uint_eq(r->request_id, 42);
	ck_assert_uint_eq(r->body_len, 2);
	ck_assert_mem_eq(r->body, "\x01\x02", 2);
	proto_request_free(r);
	vdb_free(buf);
	ck_assert_int_eq(proto_request_encode(PROTO_HEALTH, NULL, 0, NULL, 0,
	    &buf, &len), VECDB_OK);
	ck_assert_int_eq(proto_request_decode(buf, len, &r), VECDB_OK);
	ck_assert_uint_eq(r->method, PROTO_HEALTH);
	ck_assert_str_eq(r->api_key, "");
	ck_assert_ptr_null(r->body);
	proto_request_free(r);
	vdb_free(buf);
}
END_TEST

START_TEST(request_without_method_is_einval)
{
	struct proto_request *r;
	uint8_t *buf;
	size_t len;

	ck_assert_int_eq(proto_request_decode(NULL, 0, &r), VECDB_EINVAL);
	ck_assert_ptr_nonnull(strstr(vecdb_errmsg(), "method"));
	ck_assert_int_eq(proto_request_encode(0, "k", 1, NULL, 0, &buf, &len),
	    VECDB_EINVAL);
	ck_assert_int_eq(proto_request_encode(PROTO_METHOD_COUNT, "k", 1,
	    NULL, 0, &buf, &len), VECDB_EINVAL);
	/* method 99 as a varint in field 1 */
	ck_assert_int_eq(proto_request_decode((const uint8_t *)"\x08\x63", 2,
	    &r), VECDB_EINVAL);
}
END_TEST

START_TEST(response_round_trips)
{
	struct proto_response *r;
	uint8_t *buf;
	size_t len;

	for (int c = 0; c < PROTO_CODE_COUNT; c++) {
		ck_assert_int_eq(proto_response_encode(c, c ? "bad" : NULL,
		    "xyz", 3, &buf, &len), VECDB_OK);
		ck_assert_int_eq(proto_response_decode(buf, len, &r), 0);
		ck_assert_int_eq(r->code, c);
		ck_assert_str_eq(r->message, c ? "bad" : "");
		ck_assert_uint_eq(r->body_len, 3);
		ck_assert_mem_eq(r->body, "xyz", 3);
		proto_response_free(r);
		vdb_free(buf);
	}
	ck_assert_int_eq(proto_response_decode((const uint8_t *)"\x08\x11", 2,
	    &r), VECDB_EINVAL);
}
END_TEST

START_TEST(codes_map_both_ways)
{
	for (int e = 0; e < VECDB_ERR_COUNT; e++) {
		int c = proto_code_of(e);

		ck_assert_int_ge(c, 0);
		ck_assert_int_lt(c, PROTO_CODE_COUNT);
		if (e != VECDB_ENOMEM)
			ck_assert_int_eq(proto_err_of(c), e);
	}
	ck_assert_int_eq(proto_code_of(VECDB_OK), PROTO_OK);
	ck_assert_int_eq(proto_code_of(VECDB_EINVAL), PROTO_INVALID_ARGUMENT);
	ck_assert_int_eq(proto_code_of(VECDB_ENOTFOUND), PROTO_NOT_FOUND);
	ck_assert_int_eq(proto_code_of(VECDB_EEXIST), PROTO_ALREADY_EXISTS);
	ck_assert_int_eq(proto_code_of(999), PROTO_UNKNOWN);
	ck_assert_int_eq(proto_err_of(-1), VECDB_EINTERNAL);
	ck_assert_int_eq(proto_err_of(PROTO_CODE_COUNT), VECDB_EINTERNAL);
	for (int c = 0; c < PROTO_CODE_COUNT; c++)
		ck_assert_int_lt(proto_err_of(c), VECDB_ERR_COUNT);
	ck_assert_str_eq(proto_method_name(PROTO_SEARCH), "search");
	ck_assert_str_eq(proto_method_name(0), "unknown");
}
END_TEST

/* ===== Collections ===== */

START_TEST(collection_config_round_trips)
{
	vecdb_collection_config c, d;
	vecdb_collection_stats st = { 5, 4, 100, 200, 3, 2, 1, 0.25,
		VECDB_OPTIMIZER_COMPACTING, 0.5, 7, 1234.5, VECDB_QUANT_SCALAR, 11, 22,
		33, { 44, 55 } }, st2;
	uint8_t *buf;
	size_t len;

	vecdb_collection_config_init(&c, "my-coll_1", 4, VECDB_MANHATTAN);
	c.vector_type = VECDB_FLOAT16;
	c.index.max_connections = 32;
	c.index.ef_construction = 400;
	c.index.ef_search = 99;
	c.index.max_layer = 8;
	c.quantization.type = VECDB_QUANT_SCALAR;
	c.quantization.quantile = 0.99f;
	c.quantization.always_ram = 1;
	c.created_at = -5;
	c.n_sparse = 2;
	snprintf(c.sparse[0].name, sizeof(c.sparse[0].name), "text");
	c.sparse[0].modifier = VECDB_SPARSE_IDF;
	snprintf(c.sparse[1].name, sizeof(c.sparse[1].name), "tags");
	c.n_vectors = 2;
	c.vectors[0] = (vecdb_vector_config) { "image", 512, VECDB_DOT,
		VECDB_UINT8, { 8, 100, 50, 4 }, { VECDB_QUANT_PRODUCT, 0.5f, 1,
		64, VECDB_PQ_BITS } };
	c.vectors[1] = (vecdb_vector_config) { "title", 3, VECDB_EUCLIDEAN,
		VECDB_FLOAT32, { 16, 200, 64, 16 }, { VECDB_QUANT_NONE, 0.99f, 0,
		0, 0 } };
	ck_assert_int_eq(proto_collection_create_encode(&c, &buf, &len), 0);
	ck_assert_int_eq(proto_collection_create_decode(buf, len, &d), 0);
	ck_assert_int_eq(memcmp(&c, &d, sizeof(c)), 0);
	vdb_free(buf);
	ck_assert_int_eq(proto_collection_info_encode(&c, &st, &buf, &len),
	    0);
	ck_assert_int_eq(proto_collection_info_decode(buf, len, &d, &st2), 0);
	ck_assert_int_eq(memcmp(&c, &d, sizeof(c)), 0);
	ck_assert_uint_eq(st.vector_count, st2.vector_count);
	ck_assert_uint_eq(st.dimension, st2.dimension);
	ck_assert_uint_eq(st.disk_bytes, st2.disk_bytes);
	ck_assert_uint_eq(st.memory_bytes, st2.memory_bytes);
	ck_assert_uint_eq(st.indexed_count, st2.indexed_count);
	ck_assert_uint_eq(st.pending_count, st2.pending_count);
	ck_assert_uint_eq(st.dead_count, st2.dead_count);
	ck_assert(st2.dead_ratio == 0.25);
	ck_assert_int_eq(st2.optimizer, VECDB_OPTIMIZER_COMPACTING);
	ck_assert(st2.optimizer_progress == 0.5);
	ck_assert_uint_eq(st.compactions, st2.compactions);
	ck_assert(st.indexing_rate == st2.indexing_rate);
	ck_assert_int_eq(st2.quant_in_force, VECDB_QUANT_SCALAR);
	ck_assert_uint_eq(st2.code_bytes, 11);
	ck_assert_uint_eq(st2.link_bytes, 22);
	ck_assert_uint_eq(st2.original_bytes, 33);
	ck_assert_uint_eq(st2.named_indexed[0], 44);
	ck_assert_uint_eq(st2.named_indexed[1], 55);
	vdb_free(buf);
	/* product, with its segments and bits */
	c.quantization.type = VECDB_QUANT_PRODUCT;
	c.quantization.segments = 2;
	c.quantization.bits = VECDB_PQ_BITS;
	st.quant_in_force = VECDB_QUANT_PRODUCT;
	ck_assert_int_eq(proto_collection_create_encode(&c, &buf, &len), 0);
	ck_assert_int_eq(proto_collection_create_decode(buf, len, &d), 0);
	ck_assert_int_eq(memcmp(&c, &d, sizeof(c)), 0);
	vdb_free(buf);
	ck_assert_int_eq(proto_collection_info_encode(&c, &st, &buf, &len),
	    0);
	ck_assert_int_eq(proto_collection_info_decode(buf, len, &d, &st2), 0);
	ck_assert_int_eq(memcmp(&c, &d, sizeof(c)), 0);
	ck_assert_int_eq(st2.quant_in_force, VECDB_QUANT_PRODUCT);
	vdb_free(buf);
	/* a quantization past the last one is refused, in force or not */
	st.quant_in_force = (vecdb_quant)(VECDB_QUANT_PRODUCT + 1);
	ck_assert_int_eq(proto_collection_info_encode(&c, &st, &buf, &len),
	    0);
	ck_assert_int_eq(proto_collection_info_decode(buf, len, &d, &st2),
	    VECDB_EINVAL);
	vdb_free(buf);
	c.quantization.type = (vecdb_quant)(VECDB_QUANT_PRODUCT + 1);
	ck_assert_int_eq(proto_collection_create_encode(&c, &buf, &len), 0);
	ck_assert_int_eq(proto_collection_create_decode(buf, len, &d),
	    VECDB_EINVAL);
	vdb_free(buf);
}
END_TEST

START_TEST(set_quantization_round_trips_and_refuses_bad_fields)
{
	vecdb_quant_config q = { VECDB_QUANT_PRODUCT, 0.5f, 1, 3,
		VECDB_PQ_BITS }, got;
	char coll[VECDB_NAME_MAX + 1];
	uint8_t *buf;
	size_t len;

	ck_assert_int_eq(proto_set_quantization_encode("c-1", &q, &buf, &len),
	    VECDB_OK);
	ck_assert_int_eq(proto_set_quantization_decode(buf, len, coll, &got),
	    VECDB_OK);
	ck_assert_str_eq(coll, "c-1");
	ck_assert_int_eq(memcmp(&q, &got, sizeof(q)), 0);
	vdb_free(buf);
	/* removal: all zeros, an empty message */
	memset(&q, 0, sizeof(q));
	ck_assert_int_eq(proto_set_quantization_encode("c", &q, &buf, &len),
	    VECDB_OK);
	ck_assert_int_eq(proto_set_quantization_decode(buf, len, coll, &got),
	    VECDB_OK);
	ck_assert_int_eq(got.type, VECDB_QUANT_NONE);
	vdb_free(buf);
	q.type = (vecdb_quant)(VECDB_QUANT_PRODUCT + 1);
	ck_assert_int_eq(proto_set_quantization_encode("c", &q, &buf, &len),
	    VECDB_OK);
	ck_assert_int_eq(proto_set_quantization_decode(buf, len, coll, &got),
	    VECDB_EINVAL);
	ck_assert_ptr_nonnull(strstr(vecdb_errmsg(), "quantization"));
	vdb_free(buf);
	q.type = VECDB_QUANT_SCALAR;
	q.quantile = NAN;
	ck_assert_int_eq(proto_set_quantization_encode("c", &q, &buf, &len),
	    VECDB_OK);
	ck_assert_int_eq(proto_set_quantization_decode(buf, len, coll, &got),
	    VECDB_EINVAL);
	vdb_free(buf);
	q.quantile = 0.9f;
	ck_assert_int_eq(proto_set_quantization_encode("", &q, &buf, &len),
	    VECDB_OK);
	ck_assert_int_eq(proto_set_quantization_decode(buf, len, coll, &got),
	    VECDB_EINVAL);
	ck_assert_ptr_nonnull(strstr(vecdb_errmsg(), "collection name"));
	vdb_free(buf);
	ck_assert_str_eq(proto_method_name(PROTO_SET_QUANTIZATION),
	    "set_quantization");
}
END_TEST

START_TEST(collection_config_limits_are_checked)
{
	vecdb_collection_config c, d;
	char name[VECDB_NAME_MAX + 2];
	uint8_t *buf;
	size_t len;

	memset(name, 'a', sizeof(name));
	name[VECDB_NAME_MAX] = '\0';
	vecdb_collection_config_init(&c, name, VECDB_DIM_MAX, VECDB_COSINE);
	ck_assert_int_eq(proto_collection_create_encode(&c, &buf, &len), 0);
	ck_assert_int_eq(proto_collection_create_decode(buf, len, &d), 0);
	ck_assert_str_eq(d.name, name);
	vdb_free(buf);
	c.dimension = VECDB_DIM_MAX + 1;
	ck_assert_int_eq(proto_collection_create_encode(&c, &buf, &len), 0);
	ck_assert_int_eq(proto_collection_create_decode(buf, len, &d),
	    VECDB_EINVAL);
	vdb_free(buf);
	c.dimension = 4;
	c.metric = (vecdb_metric)7;
	ck_assert_int_eq(proto_collection_create_encode(&c, &buf, &len), 0);
	ck_assert_int_eq(proto_collection_create_decode(buf, len, &d),
	    VECDB_EINVAL);
	vdb_free(buf);
	c.metric = VECDB_DOT;
	c.name[0] = '\0';
	ck_assert_int_eq(proto_collection_create_encode(&c, &buf, &len), 0);
	ck_assert_int_eq(proto_collection_create_decode(buf, len, &d),
	    VECDB_EINVAL);
	ck_assert_ptr_nonnull(strstr(vecdb_errmsg(), "collection name"));
	vdb_free(buf);
	/* no config at all */
	ck_assert_int_eq(proto_collection_create_decode(NULL, 0, &d),
	    VECDB_EINVAL);
}
END_TEST

START_TEST(names_round_trip)
{
	char *in[3] = { "a", "b-2", "c_3" };
	char **names;
	size_t n;
	uint8_t *buf;
	size_t len;

	ck_assert_int_eq(proto_names_encode(in, 3, &buf, &len), VECDB_OK);
	ck_assert_int_eq(proto_names_decode(buf, len, &names, &n), VECDB_OK);
	ck_assert_uint_eq(n, 3);
	for (size_t i = 0; i < 3; i++)
		ck_assert_str_eq(names[i], in[i]);
	vecdb_names_free(names, n);
	vdb_free(buf);
	ck_assert_int_eq(proto_names_encode(NULL, 0, &buf, &len), VECDB_OK);
	ck_assert_uint_eq(len, 0);
	ck_assert_int_eq(proto_names_decode(buf, len, &names, &n), VECDB_OK);
	ck_assert_uint_eq(n, 0);
	vecdb_names_free(names, n);
}
END_TEST

START_TEST(promotion_messages_round_trip_and_refuse_bad_fields)
{
	char url[PROTO_URL_MAX + 1];
	uint64_t a, b;
	uint8_t *buf;
	size_t len;

	ck_assert_int_eq(proto_promote_encode(7, &buf, &len), VECDB_OK);
	ck_assert_int_eq(proto_promote_decode(buf, len, &a), VECDB_OK);
	ck_assert_uint_eq(a, 7);
	vdb_free(buf);
	ck_assert_int_eq(proto_promote_result_encode(8, 1234, &buf, &len),
	    VECDB_OK);
	ck_assert_int_eq(proto_promote_result_decode(buf, len, &a, &b),
	    VECDB_OK);
	ck_assert_uint_eq(a, 8);
	ck_assert_uint_eq(b, 1234);
	vdb_free(buf);
	ck_assert_int_eq(proto_promote_result_encode(0, 1, &buf, &len),
	    VECDB_OK);
	ck_assert_int_eq(proto_promote_result_decode(buf, len, &a, &b),
	    VECDB_EINVAL);
	vdb_free(buf);
	ck_assert_int_eq(proto_follow_encode("tcp://10.0.0.1:7000", 9, &buf,
	    &len), VECDB_OK);
	ck_assert_int_eq(proto_follow_decode(buf, len, url, &a), VECDB_OK);
	ck_assert_str_eq(url, "tcp://10.0.0.1:7000");
	ck_assert_uint_eq(a, 9);
	vdb_free(buf);
	ck_assert_int_eq(proto_follow_encode("nohost", 9, &buf, &len),
	    VECDB_OK);
	ck_assert_int_eq(proto_follow_decode(buf, len, url, &a), VECDB_EINVAL);
	vdb_free(buf);
	ck_assert_int_eq(proto_follow_encode("tcp://h:1", 0, &buf, &len),
	    VECDB_OK);
	ck_assert_int_eq(proto_follow_decode(buf, len, url, &a), VECDB_EINVAL);
	vdb_free(buf);
	ck_assert_int_eq(proto_follow_encode("", 3, &buf, &len), VECDB_OK);
	ck_assert_int_eq(proto_follow_decode(buf, len, url, &a), VECDB_EINVAL);
	vdb_free(buf);
}
END_TEST

START_TEST(targets_round_trip)
{
	static const uint32_t methods[] = { PROTO_GET_COLLECTION,
		PROTO_DELETE_COLLECTION, PROTO_SNAPSHOT_CREATE,
		PROTO_SNAPSHOT_LIST, PROTO_PAYLOAD_INDEX_LIST,
		PROTO_SNAPSHOT_GET, PROTO_SNAPSHOT_DELETE,
		PROTO_SNAPSHOT_RESTORE, PROTO_PAYLOAD_INDEX_DELETE,
		PROTO_PAYLOAD_INDEX_CREATE };
	struct proto_target t;
	uint8_t *buf;
	size_t len;

	for (size_t i = 0; i < sizeof(methods) / sizeof(methods[0]); i++) {
		/* a snapshot create may name its snapshot */
		int has_name = i >= 5 || methods[i] == PROTO_SNAPSHOT_CREATE;
		int named = i >= 5;

		ck_assert_int_eq(proto_target_encode(methods[i], "coll",
		    "x.y", VECDB_FIELD_GEO, &buf, &len), VECDB_OK);
		ck_assert_int_eq(proto_target_decode(methods[i], buf, len,
		    &t), VECDB_OK);
		ck_assert_str_eq(t.collection, "coll");
		ck_assert_str_eq(t.name, has_name ? "x.y" : "");
		if (methods[i] == PROTO_PAYLOAD_INDEX_CREATE)
			ck_assert_int_eq(t.schema, VECDB_FIELD_GEO);
		vdb_free(buf);
		/* a named target without its name, or without collection */
		ck_assert_int_eq(proto_target_encode(methods[i], "coll", "",
		    0, &buf, &len), VECDB_OK);
		ck_assert_int_eq(proto_target_decode(methods[i], buf, len,
		    &t), named ? VECDB_EINVAL : VECDB_OK);
		vdb_free(buf);
		ck_assert_int_eq(proto_target_decode(methods[i], NULL, 0, &t),
		    VECDB_EINVAL);
	}
	ck_assert_int_eq(proto_target_encode(PROTO_SEARCH, "c", NULL, 0,
	    &buf, &len), VECDB_EINVAL);
	ck_assert_int_eq(proto_target_encode(PROTO_PAYLOAD_INDEX_CREATE, "c",
	    "f", (vecdb_field_schema)9, &buf, &len), VECDB_OK);
	ck_assert_int_eq(proto_target_decode(PROTO_PAYLOAD_INDEX_CREATE, buf,
	    len, &t), VECDB_EINVAL);
	vdb_free(buf);
}
END_TEST

/* ===== Points ===== */

START_TEST(write_round_trips_ids_vectors_and_payloads)
{
	vecdb_point pts[4];
	struct proto_write *w;
	uint8_t *buf;
	size_t len;

	memset(pts, 0, sizeof(pts));
	pts[0].id = vecdb_id_num(UINT64_MAX);
	pts[0].vector = vec4;
	pts[0].dim = 4;
	pts[0].payload = "{\"k\":\"v\"}";
	pts[1].id = uuid_id(3);
	pts[1].vector = vec4b;
	pts[1].dim = 4;
	pts[2].id.kind = VECDB_ID_NONE;
	pts[2].payload = "{}";
	pts[3].id = vecdb_id_num(0);
	for (int op = 0; op < 3; op++) {
		ck_assert_int_eq(proto_write_encode("c", op, pts, 4, &buf,
		    &len), VECDB_OK);
		ck_assert_int_eq(proto_write_decode(buf, len, &w), VECDB_OK);
		ck_assert_str_eq(w->collection, "c");
		ck_assert_int_eq(w->op, op);
		ck_assert_uint_eq(w->n, 4);
		for (size_t i = 0; i < 4; i++) {
			id_eq(&pts[i].id, &w->points[i].id);
			vec_eq(pts[i].vector, pts[i].dim,
			    w->points[i].vector, w->points[i].dim);
			str_eq(pts[i].payload, w->points[i].payload);
		}
		proto_write_free(w);
		vdb_free(buf);
	}
}
END_TEST

START_TEST(sparse_vectors_round_trip_in_writes_and_records)
{
	static const uint32_t ix[] = { 9, 2, 4000000000u };
	static const float val[] = { 1.5f, -2, 0.25f };
	const float nan1[] = { NAN };
	vecdb_sparse_vector sv[2] = { { "text", ix, val, 3, 0 },
		{ "tags", NULL, NULL, 0, 1 } };
	static const float img[3] = { 0.5f, -1, 8 };
	vecdb_named_vector nv[2] = { { "image", img, 3, 0 },
		{ "title", NULL, 0, 1 } };
	vecdb_point_sparse ps[2] = { { sv, 2, nv, 2 }, { NULL, 0, NULL, 0 } };
	float v[2] = { 1, 2 };
	vecdb_point pts[2] = { { vecdb_id_num(1), v, 2, NULL },
		{ vecdb_id_num(2), v, 2, NULL } };
	vecdb_sparse_record sr = { "text", (uint32_t *) ix, (float *) val,
		3 };
	vecdb_named_record nr = { "image", (float *) img, 3 };
	vecdb_record rec = { .id = vecdb_id_num(7), .vector = v, .dim = 2,
		.distance = -3.5f, .score = 3.5f, .sparse = &sr,
		.n_sparse = 1, .named = &nr, .n_named = 1 }, *back;
	struct proto_write *w;
	uint8_t *buf;
	size_t len;

	ck_assert_int_eq(proto_write_sparse_encode("c", VECDB_WRITE_UPDATE, 1,
	    2, pts, ps, 2, &buf, &len), VECDB_OK);
	ck_assert_int_eq(proto_write_decode(buf, len, &w), VECDB_OK);
	vdb_free(buf);
	ck_assert_int_eq(w->check_only, 1);
	ck_assert_uint_eq(w->write_concern, 2);
	ck_assert_uint_eq(w->sparse[0].n, 2);
	ck_assert_uint_eq(w->sparse[1].n, 0);
	ck_assert_str_eq(w->sparse[0].v[0].name, "text");
	ck_assert_uint_eq(w->sparse[0].v[0].n, 3);
	ck_assert_uint_eq(w->sparse[0].v[0].indices[2], 4000000000u);
	ck_assert_float_eq(w->sparse[0].v[0].values[1], -2);
	ck_assert_int_eq(w->sparse[0].v[0].remove, 0);
	ck_assert_str_eq(w->sparse[0].v[1].name, "tags");
	ck_assert_int_eq(w->sparse[0].v[1].remove, 1);
	/* and the named dense vectors, set or removed */
	ck_assert_uint_eq(w->sparse[0].nd, 2);
	ck_assert_str_eq(w->sparse[0].d[0].name, "image");
	ck_assert_uint_eq(w->sparse[0].d[0].dim, 3);
	ck_assert_float_eq(w->sparse[0].d[0].data[2], 8);
	ck_assert_int_eq(w->sparse[0].d[0].remove, 0);
	ck_assert_str_eq(w->sparse[0].d[1].name, "title");
	ck_assert_int_eq(w->sparse[0].d[1].remove, 1);
	ck_assert_uint_eq(w->sparse[1].nd, 0);
	proto_write_free(w);
	/* a record keeps them, and its score */
	ck_assert_int_eq(proto_record_encode(&rec, &buf, &len), VECDB_OK);
	ck_assert_int_eq(proto_record_decode(buf, len, &back), VECDB_OK);
	vdb_free(buf);
	ck_assert_float_eq(back->score, 3.5f);
	ck_assert_uint_eq(back->n_sparse, 1);
	ck_assert_str_eq(back->sparse[0].name, "text");
	ck_assert_uint_eq(back->sparse[0].n, 3);
	ck_assert_uint_eq(back->sparse[0].indices[0], 9);
	ck_assert_float_eq(back->sparse[0].values[2], 0.25f);
	ck_assert_uint_eq(back->n_named, 1);
	ck_assert_str_eq(back->named[0].name, "image");
	ck_assert_uint_eq(back->named[0].dim, 3);
	ck_assert_float_eq(back->named[0].data[1], -1);
	vecdb_record_free(back);
	/* a non-finite value or lengths that differ are refused */
	sv[0].values = nan1;
	sv[0].n = 1;
	ck_assert_int_eq(proto_write_sparse_encode("c", VECDB_WRITE_UPSERT, 0,
	    0, pts, ps, 1, &buf, &len), VECDB_OK);
	ck_assert_int_eq(proto_write_decode(buf, len, &w), VECDB_EINVAL);
	vdb_free(buf);
}
END_TEST

START_TEST(sparse_search_and_stats_round_trip)
{
	static const uint32_t ix[] = { 5, 1 };
	static const float val[] = { 2, 0.5f };
	const float bad[] = { INFINITY, 1 };
	vecdb_sparse_search_params p = { "text", ix, val, 2, 7, 3, NULL, 1, 0,
		1 };
	struct proto_sparse_search *s;
	uint64_t df[2] = { 4, 0 }, got[2], points;
	char coll[VECDB_NAME_MAX + 1], name[VECDB_NAME_MAX + 1];
	uint32_t *gi;
	uint8_t *buf;
	size_t len, n;

	ck_assert_int_eq(proto_sparse_search_encode("c", &p, "{\"must\":[]}",
	    &buf, &len), VECDB_OK);
	ck_assert_int_eq(proto_sparse_search_decode(buf, len, &s), VECDB_OK);
	vdb_free(buf);
	ck_assert_str_eq(s->collection, "c");
	ck_assert_str_eq(s->p.name, "text");
	ck_assert_uint_eq(s->p.n, 2);
	ck_assert_uint_eq(s->p.indices[0], 5);
	ck_assert_float_eq(s->p.values[1], 0.5f);
	ck_assert_uint_eq(s->p.limit, 7);
	ck_assert_uint_eq(s->p.offset, 3);
	ck_assert_int_eq(s->p.with_payload, 1);
	ck_assert_int_eq(s->p.with_vector, 0);
	ck_assert_int_eq(s->p.weighted, 1);
	ck_assert_str_eq(s->filter_json, "{\"must\":[]}");
	proto_sparse_search_free(s);
	p.values = bad;
	ck_assert_int_eq(proto_sparse_search_encode("c", &p, NULL, &buf,
	    &len), VECDB_OK);
	ck_assert_int_eq(proto_sparse_search_decode(buf, len, &s),
	    VECDB_EINVAL);
	vdb_free(buf);

	ck_assert_int_eq(proto_sparse_stats_encode("c", "text", ix, 2, &buf,
	    &len), VECDB_OK);
	ck_assert_int_eq(proto_sparse_stats_decode(buf, len, coll, name, &gi,
	    &n), VECDB_OK);
	vdb_free(buf);
	ck_assert_str_eq(name, "text");
	ck_assert_uint_eq(n, 2);
	ck_assert_uint_eq(gi[1], 1);
	vdb_free(gi);
	ck_assert_int_eq(proto_sparse_stats_result_encode(11, df, 2, &buf,
	    &len), VECDB_OK);
	ck_assert_int_eq(proto_sparse_stats_result_decode(buf, len, 2,
	    &points, got), VECDB_OK);
	ck_assert_uint_eq(points, 11);
	ck_assert_uint_eq(got[0], 4);
	/* counts for other than the indices asked are refused */
	ck_assert_int_eq(proto_sparse_stats_result_decode(buf, len, 3,
	    &points, got), VECDB_EINVAL);
	vdb_free(buf);
}
END_TEST

START_TEST(write_refuses_nan_and_infinity)
{
	float bad[3] = { 1, NAN, 2 };
	vecdb_point p = { vecdb_id_num(1), bad, 3, NULL };
	struct proto_write *w;
	uint8_t *buf;
	size_t len;

	ck_assert_int_eq(proto_write_encode("c", 0, &p, 1, &buf, &len), 0);
	ck_assert_int_eq(proto_write_decode(buf, len, &w), VECDB_EINVAL);
	ck_assert_ptr_nonnull(strstr(vecdb_errmsg(), "finite"));
	vdb_free(buf);
	bad[1] = -INFINITY;
	ck_assert_int_eq(proto_write_encode("c", 0, &p, 1, &buf, &len), 0);
	ck_assert_int_eq(proto_write_decode(buf, len, &w), VECDB_EINVAL);
	vdb_free(buf);
}
END_TEST

START_TEST(write_at_max_sizes_passes_and_over_fails)
{
	size_t n = VECDB_BATCH_MAX + 1;
	vecdb_point *pts = vdb_calloc(n, sizeof(*pts));
	float *big = vdb_calloc(VECDB_DIM_MAX + 1, sizeof(float));
	struct proto_write *w;
	uint8_t *buf;
	size_t len;

	for (size_t i = 0; i < n; i++)
		pts[i].id = vecdb_id_num(i);
	ck_assert_int_eq(proto_write_encode("c", 1, pts, n - 1, &buf, &len),
	    0);
	ck_assert_int_eq(proto_write_decode(buf, len, &w), VECDB_OK);
	ck_assert_uint_eq(w->n, VECDB_BATCH_MAX);
	proto_write_free(w);
	vdb_free(buf);
	ck_assert_int_eq(proto_write_encode("c", 1, pts, n, &buf, &len), 0);
	ck_assert_int_eq(proto_write_decode(buf, len, &w), VECDB_EINVAL);
	vdb_free(buf);
	pts[0].vector = big;
	pts[0].dim = VECDB_DIM_MAX;
	ck_assert_int_eq(proto_write_encode("c", 1, pts, 1, &buf, &len), 0);
	ck_assert_int_eq(proto_write_decode(buf, len, &w), VECDB_OK);
	ck_assert_uint_eq(w->points[0].dim, VECDB_DIM_MAX);
	proto_write_free(w);
	vdb_free(buf);
	pts[0].dim = VECDB_DIM_MAX + 1;
	ck_assert_int_eq(proto_write_encode("c", 1, pts, 1, &buf, &len), 0);
	ck_assert_int_eq(proto_write_decode(buf, len, &w), VECDB_EINVAL);
	vdb_free(buf);
	vdb_free(big);
	vdb_free(pts);
}
END_TEST

START_TEST(write_result_delete_get_and_count_round_trip)
{
	vecdb_point pts[2] = { { vecdb_id_num(5), NULL, 0, NULL },
		{ uuid_id(4), NULL, 0, NULL } };
	vecdb_id ids[2] = { vecdb_id_num(5), uuid_id(4) }, *got, id;
	struct proto_delete *d;
	char coll[VECDB_NAME_MAX + 1], *filter;
	uint64_t v;
	uint8_t *buf;
	size_t len, n;

	ck_assert_int_eq(proto_ids_encode(pts, 2, &buf, &len), VECDB_OK);
	ck_assert_int_eq(proto_ids_decode(buf, len, &got, &n), VECDB_OK);
	ck_assert_uint_eq(n, 2);
	id_eq(&got[0], &ids[0]);
	id_eq(&got[1], &ids[1]);
	vdb_free(got);
	vdb_free(buf);
	ck_assert_int_eq(proto_delete_encode("dc", ids, 2, &buf, &len), 0);
	ck_assert_int_eq(proto_delete_decode(buf, len, &d), VECDB_OK);
	ck_assert_str_eq(d->collection, "dc");
	ck_assert_uint_eq(d->n, 2);
	id_eq(&d->ids[1], &ids[1]);
	proto_delete_free(d);
	vdb_free(buf);
	ck_assert_int_eq(proto_deleted_encode(UINT64_MAX, &buf, &len), 0);
	ck_assert_int_eq(proto_deleted_decode(buf, len, &v), VECDB_OK);
	ck_assert_uint_eq(v, UINT64_MAX);
	vdb_free(buf);
	ck_assert_int_eq(proto_count_result_encode(12, &buf, &len), 0);
	ck_assert_int_eq(proto_count_result_decode(buf, len, &v), VECDB_OK);
	ck_assert_uint_eq(v, 12);
	vdb_free(buf);
	ck_assert_int_eq(proto_get_encode("g", &ids[1], &buf, &len), 0);
	ck_assert_int_eq(proto_get_decode(buf, len, coll, &id), VECDB_OK);
	ck_assert_str_eq(coll, "g");
	id_eq(&id, &ids[1]);
	vdb_free(buf);
	ck_assert_int_eq(proto_get_encode("g", NULL, &buf, &len), 0);
	ck_assert_int_eq(proto_get_decode(buf, len, coll, &id), VECDB_EINVAL);
	vdb_free(buf);
	ck_assert_int_eq(proto_count_encode("cc", "{\"must\":[]}", &buf,
	    &len), 0);
	ck_assert_int_eq(proto_count_decode(buf, len, coll, &filter), 0);
	ck_assert_str_eq(coll, "cc");
	ck_assert_str_eq(filter, "{\"must\":[]}");
	vdb_free(filter);
	vdb_free(buf);
	ck_assert_int_eq(proto_count_encode("cc", NULL, &buf, &len), 0);
	ck_assert_int_eq(proto_count_decode(buf, len, coll, &filter), 0);
	ck_assert_ptr_null(filter);
	vdb_free(buf);
}
END_TEST

START_TEST(records_round_trip)
{
	vecdb_records *r = sample_records(), *got, **lists, *in[3];
	vecdb_records empty = { 0, NULL, 0, { 0, 0, { 0 } } };
	vecdb_record *rec;
	uint8_t *buf;
	size_t len, n;

	ck_assert_int_eq(proto_records_encode(r, &buf, &len), VECDB_OK);
	ck_assert_int_eq(proto_records_decode(buf, len, &got), VECDB_OK);
	records_eq(r, got);
	vecdb_records_free(got);
	vdb_free(buf);
	ck_assert_int_eq(proto_record_encode(&r->items[0], &buf, &len), 0);
	ck_assert_int_eq(proto_record_decode(buf, len, &rec), VECDB_OK);
	record_eq(&r->items[0], rec);
	vecdb_record_free(rec);
	vdb_free(buf);
	in[0] = r;
	in[1] = &empty;
	in[2] = r;
	ck_assert_int_eq(proto_search_result_encode(in, 3, &buf, &len), 0);
	ck_assert_int_eq(proto_search_result_decode(buf, len, &lists, &n), 0);
	ck_assert_uint_eq(n, 3);
	for (size_t i = 0; i < 3; i++)
		records_eq(in[i], lists[i]);
	vecdb_records_free_array(lists, n);
	vdb_free(buf);
	r->items[1].distance = NAN;
	ck_assert_int_eq(proto_records_encode(r, &buf, &len), VECDB_OK);
	ck_assert_int_eq(proto_records_decode(buf, len, &got), VECDB_EINVAL);
	vdb_free(buf);
	vecdb_records_free(r);
}
END_TEST

/* ===== Queries ===== */

START_TEST(search_round_trips)
{
	vecdb_search_params p[2];
	const char *filters[2] = { "{\"must\":[{\"key\":\"a\",\"match\":"
				   "{\"value\":1}}]}", NULL };
	struct proto_search *s;
	uint8_t *buf;
	size_t len;

	memset(p, 0, sizeof(p));
	p[0] = (vecdb_search_params){ vec4, 4, 10, 5, NULL, 128, 1, 1, 0, 1, 0,
		2.5f, "image" };
	p[1] = (vecdb_search_params){ vec4b, 4, 1, 0, NULL, 0, 0, 0, 1, 0, 1,
		0, NULL };
	ck_assert_int_eq(proto_search_encode("s", p, filters, 2, &buf, &len),
	    0);
	ck_assert_int_eq(proto_search_decode(buf, len, &s), VECDB_OK);
	ck_assert_str_eq(s->collection, "s");
	ck_assert_uint_eq(s->n, 2);
	for (size_t i = 0; i < 2; i++) {
		const vecdb_search_params *a = &p[i], *b = &s->s[i].p;

		vec_eq(a->vector, a->dim, b->vector, b->dim);
		ck_assert_uint_eq(a->limit, b->limit);
		ck_assert_uint_eq(a->offset, b->offset);
		ck_assert_uint_eq(a->ef_search, b->ef_search);
		ck_assert_int_eq(a->exact, b->exact);
		ck_assert_int_eq(a->with_payload, b->with_payload);
		ck_assert_int_eq(a->with_vector, b->with_vector);
		ck_assert_int_eq(a->quant_ignore, b->quant_ignore);
		ck_assert_int_eq(a->quant_no_rescore, b->quant_no_rescore);
		ck_assert(a->oversampling == b->oversampling);
		str_eq(a->using, b->using);
		ck_assert_ptr_null(b->filter);
		str_eq(filters[i], s->s[i].filter_json);
	}
	proto_search_free(s);
	vdb_free(buf);
}
END_TEST

START_TEST(search_limits_are_checked)
{
	vecdb_search_params p = { vec4, 4, 0, 0, NULL, 0, 0, 0, 0, 0, 0, 0,
		NULL };
	float nan4[4] = { 0, 0, NAN, 0 };
	struct proto_search *s;
	uint8_t *buf;
	size_t len;

	/* limit 0, limit + offset over the max, NaN, no vector, 0 searches */
	ck_assert_int_eq(proto_search_encode("s", &p, NULL, 1, &buf, &len), 0);
	ck_assert_int_eq(proto_search_decode(buf, len, &s), VECDB_EINVAL);
	vdb_free(buf);
	p.limit = VECDB_LIMIT_MAX;
	p.offset = 1;
	ck_assert_int_eq(proto_search_encode("s", &p, NULL, 1, &buf, &len), 0);
	ck_assert_int_eq(proto_search_decode(buf, len, &s), VECDB_EINVAL);
	vdb_free(buf);
	p.offset = 0;
	p.vector = nan4;
	ck_assert_int_eq(proto_search_encode("s", &p, NULL, 1, &buf, &len), 0);
	ck_assert_int_eq(proto_search_decode(buf, len, &s), VECDB_EINVAL);
	vdb_free(buf);
	p.vector = NULL;
	ck_assert_int_eq(proto_search_encode("s", &p, NULL, 1, &buf, &len), 0);
	ck_assert_int_eq(proto_search_decode(buf, len, &s), VECDB_EINVAL);
	vdb_free(buf);
	ck_assert_int_eq(proto_search_encode("s", &p, NULL, 0, &buf, &len), 0);
	ck_assert_int_eq(proto_search_decode(buf, len, &s), VECDB_EINVAL);
	vdb_free(buf);
	/* oversampling: 0 or 1..VECDB_OVERSAMPLING_MAX */
	p.vector = vec4;
	p.limit = 1;
	for (size_t i = 0; i < 4; i++) {
		static const float bad[] = { 0.5f, 100.5f, NAN, -1 };
		p.oversampling = bad[i];
		ck_assert_int_eq(proto_search_encode("s", &p, NULL, 1, &buf,
		    &len), 0);
		ck_assert_int_eq(proto_search_decode(buf, len, &s),
		    VECDB_EINVAL);
		ck_assert_ptr_nonnull(strstr(vecdb_errmsg(), "oversampling"));
		vdb_free(buf);
	}
	p.oversampling = VECDB_OVERSAMPLING_MAX;
	ck_assert_int_eq(proto_search_encode("s", &p, NULL, 1, &buf, &len), 0);
	ck_assert_int_eq(proto_search_decode(buf, len, &s), VECDB_OK);
	proto_search_free(s);
	vdb_free(buf);
}
END_TEST

START_TEST(search_filter_depth_is_bounded)
{
	vecdb_search_params p = { vec4, 4, 1, 0, NULL, 0, 0, 0, 0, 0, 0, 0,
		NULL };
	char deep[2 * 200 + 1];
	const char *f[1] = { deep };
	struct proto_search *s;
	uint8_t *buf;
	size_t len;

	memset(deep, '[', 200);
	memset(deep + 200, ']', 200);
	deep[400] = '\0';
	ck_assert_int_eq(proto_search_encode("s", &p, f, 1, &buf, &len), 0);
	ck_assert_int_eq(proto_search_decode(buf, len, &s), VECDB_EINVAL);
	ck_assert_ptr_nonnull(strstr(vecdb_errmsg(), "nested"));
	vdb_free(buf);
}
END_TEST

START_TEST(recommend_round_trips)
{
	vecdb_id pos[2] = { vecdb_id_num(1), uuid_id(2) };
	vecdb_id neg[1] = { vecdb_id_num(3) }, exc[1] = { uuid_id(7) };
	float pv[8] = { 1, 2, 3, 4, 5, 6, 7, 8 };
	vecdb_recommend_params p;
	struct proto_recommend *r;
	uint8_t *buf;
	size_t len;

	memset(&p, 0, sizeof(p));
	p.positive = pos;
	p.n_positive = 2;
	p.negative = neg;
	p.n_negative = 1;
	p.positive_vectors = pv;
	p.n_positive_vectors = 2;
	p.negative_vectors = vec4;
	p.n_negative_vectors = 1;
	p.dim = 4;
	p.exclude = exc;
	p.n_exclude = 1;
	p.strategy = VECDB_RECO_BEST_SCORE;
	p.limit = 7;
	p.offset = 3;
	p.ef_search = 50;
	p.with_payload = 1;
	p.using = "image";
	ck_assert_int_eq(proto_recommend_encode("r", &p, "{}", &buf, &len), 0);
	ck_assert_int_eq(proto_recommend_decode(buf, len, &r), VECDB_OK);
	ck_assert_str_eq(r->collection, "r");
	ck_assert_uint_eq(r->p.n_positive, 2);
	id_eq(&r->p.positive[1], &pos[1]);
	ck_assert_uint_eq(r->p.n_negative, 1);
	id_eq(&r->p.negative[0], &neg[0]);
	ck_assert_uint_eq(r->p.n_exclude, 1);
	id_eq(&r->p.exclude[0], &exc[0]);
	ck_assert_uint_eq(r->p.n_positive_vectors, 2);
	vec_eq(pv, 8, r->p.positive_vectors, 8);
	ck_assert_uint_eq(r->p.n_negative_vectors, 1);
	vec_eq(vec4, 4, r->p.negative_vectors, 4);
	ck_assert_uint_eq(r->p.dim, 4);
	ck_assert_int_eq(r->p.strategy, VECDB_RECO_BEST_SCORE);
	ck_assert_uint_eq(r->p.limit, 7);
	ck_assert_uint_eq(r->p.offset, 3);
	ck_assert_uint_eq(r->p.ef_search, 50);
	ck_assert_int_eq(r->p.with_payload, 1);
	ck_assert_int_eq(r->p.with_vector, 0);
	ck_assert_str_eq(r->p.using, "image");
	ck_assert_str_eq(r->filter_json, "{}");
	proto_recommend_free(r);
	vdb_free(buf);
	/* dimension 3 and two floats: not whole rows */
	ck_assert_int_eq(proto_recommend_decode((const uint8_t *)
	    "\x0a\x01r" "\x12\x02\x08\x01" "\x20\x03"
	    "\x2a\x08\0\0\x80\x3f\0\0\x80\x3f" "\x48\x01", 21, &r),
	    VECDB_EINVAL);
	ck_assert_ptr_nonnull(strstr(vecdb_errmsg(), "rows"));
	/* the same with dimension 2 is fine */
	ck_assert_int_eq(proto_recommend_decode((const uint8_t *)
	    "\x0a\x01r" "\x12\x02\x08\x01" "\x20\x02"
	    "\x2a\x08\0\0\x80\x3f\0\0\x80\x3f" "\x48\x01", 21, &r),
	    VECDB_OK);
	ck_assert_uint_eq(r->p.n_positive_vectors, 1);
	proto_recommend_free(r);
	/* a dimension over the max, and no positive */
	p.n_positive_vectors = p.n_negative_vectors = 0;
	p.dim = VECDB_DIM_MAX + 1;
	ck_assert_int_eq(proto_recommend_encode("r", &p, "", &buf, &len), 0);
	ck_assert_int_eq(proto_recommend_decode(buf, len, &r), VECDB_EINVAL);
	vdb_free(buf);
	p.dim = 4;
	p.n_positive = 0;
	p.n_positive_vectors = 0;
	ck_assert_int_eq(proto_recommend_encode("r", &p, "", &buf, &len), 0);
	ck_assert_int_eq(proto_recommend_decode(buf, len, &r), VECDB_EINVAL);
	vdb_free(buf);
}
END_TEST

START_TEST(discover_round_trips)
{
	vecdb_context_pair ctx[2] = { { vecdb_id_num(1), uuid_id(2) },
		{ uuid_id(3), vecdb_id_num(4) } };
	float cv[8] = { 1, 2, 3, 4, -1, -2, -3, -4 };
	vecdb_id exc[1] = { vecdb_id_num(99) };
	vecdb_discover_params p;
	struct proto_discover *d;
	uint8_t *buf;
	size_t len;

	memset(&p, 0, sizeof(p));
	p.has_target = 1;
	p.target = uuid_id(5);
	p.context = ctx;
	p.n_context = 2;
	p.context_vectors = cv;
	p.n_context_vectors = 1;
	p.dim = 4;
	p.exclude = exc;
	p.n_exclude = 1;
	p.limit = 3;
	p.with_vector = 1;
	p.using = "image";
	ck_assert_int_eq(proto_discover_encode("d", &p, NULL, &buf, &len), 0);
	ck_assert_int_eq(proto_discover_decode(buf, len, &d), VECDB_OK);
	ck_assert_str_eq(d->collection, "d");
	ck_assert_int_eq(d->p.has_target, 1);
	id_eq(&d->p.target, &p.target);
	ck_assert_ptr_null(d->p.target_vector);
	ck_assert_uint_eq(d->p.n_context, 2);
	id_eq(&d->p.context[0].negative, &ctx[0].negative);
	id_eq(&d->p.context[1].positive, &ctx[1].positive);
	ck_assert_uint_eq(d->p.n_context_vectors, 1);
	vec_eq(cv, 8, d->p.context_vectors, 8);
	ck_assert_uint_eq(d->p.n_exclude, 1);
	id_eq(&d->p.exclude[0], &exc[0]);
	ck_assert_uint_eq(d->p.limit, 3);
	ck_assert_int_eq(d->p.with_vector, 1);
	ck_assert_str_eq(d->p.using, "image");
	ck_assert_ptr_null(d->filter_json);
	proto_discover_free(d);
	vdb_free(buf);
	/* target as a vector */
	p.target.kind = VECDB_ID_NONE;
	p.target_vector = vec4b;
	ck_assert_int_eq(proto_discover_encode("d", &p, "{}", &buf, &len), 0);
	ck_assert_int_eq(proto_discover_decode(buf, len, &d), VECDB_OK);
	ck_assert_int_eq(d->p.target.kind, VECDB_ID_NONE);
	vec_eq(vec4b, 4, d->p.target_vector, 4);
	proto_discover_free(d);
	vdb_free(buf);
	/* no target */
	p.has_target = 0;
	ck_assert_int_eq(proto_discover_encode("d", &p, "{}", &buf, &len), 0);
	ck_assert_int_eq(proto_discover_decode(buf, len, &d), VECDB_OK);
	ck_assert_int_eq(d->p.has_target, 0);
	ck_assert_ptr_null(d->p.target_vector);
	proto_discover_free(d);
	vdb_free(buf);
}
END_TEST

START_TEST(scroll_round_trips)
{
	vecdb_id start = uuid_id(8);
	struct proto_scroll *s;
	uint8_t *buf;
	size_t len;

	ck_assert_int_eq(proto_scroll_encode("sc", &start, 100, "{}", 1, 0,
	    &buf, &len), 0);
	ck_assert_int_eq(proto_scroll_decode(buf, len, &s), VECDB_OK);
	ck_assert_str_eq(s->collection, "sc");
	id_eq(&s->start, &start);
	ck_assert_uint_eq(s->limit, 100);
	ck_assert_str_eq(s->filter_json, "{}");
	ck_assert_int_eq(s->with_payload, 1);
	ck_assert_int_eq(s->with_vector, 0);
	proto_scroll_free(s);
	vdb_free(buf);
	ck_assert_int_eq(proto_scroll_encode("sc", NULL, 1, NULL, 0, 1,
	    &buf, &len), 0);
	ck_assert_int_eq(proto_scroll_decode(buf, len, &s), VECDB_OK);
	ck_assert_int_eq(s->start.kind, VECDB_ID_NONE);
	ck_assert_ptr_null(s->filter_json);
	proto_scroll_free(s);
	vdb_free(buf);
	ck_assert_int_eq(proto_scroll_encode("sc", NULL, 0, NULL, 0, 1,
	    &buf, &len), 0);
	ck_assert_int_eq(proto_scroll_decode(buf, len, &s), VECDB_EINVAL);
	vdb_free(buf);
}
END_TEST

/* ===== Admin ===== */

START_TEST(snapshots_indexes_stats_health_round_trip)
{
	vecdb_snapshot_info si[2], so, *sl;
	vecdb_payload_index_info pi[2] = { { "a.b", VECDB_FIELD_FLOAT, 3 },
		{ "geo", VECDB_FIELD_GEO, 0 } }, *pl;
	vecdb_stats st = { 1, 2, 3, 4, 5, 6, 7.5, { 1, 2, 3, 4, 5, 6, 7, 8,
		9, 10 }, 11 }, st2;
	struct proto_health h = { "ok", VECDB_VERSION, "replica", "n1", 77, 3,
		"tcp://127.0.0.1:7000", 6 }, h2;
	uint8_t *buf;
	size_t len, n;

	memset(si, 0, sizeof(si));
	for (int i = 0; i < 2; i++) {
		snprintf(si[i].name, sizeof(si[i].name), "c_%d", 1700 + i);
		strcpy(si[i].collection, "c");
		si[i].created_at = 1700 + i;
		si[i].size_bytes = 4096;
		si[i].vector_count = 10 + i;
		memset(si[i].checksum, 'a' + i, 64);
	}
	ck_assert_int_eq(proto_snapshot_info_encode(&si[1], &buf, &len), 0);
	ck_assert_int_eq(proto_snapshot_info_decode(buf, len, &so), 0);
	ck_assert_int_eq(memcmp(&so, &si[1], sizeof(so)), 0);
	vdb_free(buf);
	ck_assert_int_eq(proto_snapshot_list_encode(si, 2, &buf, &len), 0);
	ck_assert_int_eq(proto_snapshot_list_decode(buf, len, &sl, &n), 0);
	ck_assert_uint_eq(n, 2);
	ck_assert_int_eq(memcmp(sl, si, sizeof(si)), 0);
	vdb_free(sl);
	vdb_free(buf);
	ck_assert_int_eq(proto_pindex_list_encode(pi, 2, &buf, &len), 0);
	ck_assert_int_eq(proto_pindex_list_decode(buf, len, &pl, &n), 0);
	ck_assert_uint_eq(n, 2);
	for (int i = 0; i < 2; i++) {
		ck_assert_str_eq(pl[i].field, pi[i].field);
		ck_assert_int_eq(pl[i].schema, pi[i].schema);
		ck_assert_uint_eq(pl[i].entries, pi[i].entries);
	}
	vdb_free(pl);
	vdb_free(buf);
	ck_assert_int_eq(proto_stats_encode(&st, &buf, &len), 0);
	ck_assert_int_eq(proto_stats_decode(buf, len, &st2), 0);
	ck_assert_int_eq(memcmp(&st, &st2, sizeof(st)), 0);
	vdb_free(buf);
	ck_assert_int_eq(proto_stats_decode(NULL, 0, &st2), VECDB_EINVAL);
	ck_assert_int_eq(proto_health_encode(&h, &buf, &len), 0);
	ck_assert_int_eq(proto_health_decode(buf, len, &h2), 0);
	ck_assert_str_eq(h2.status, h.status);
	ck_assert_str_eq(h2.version, h.version);
	ck_assert_str_eq(h2.role, h.role);
	ck_assert_str_eq(h2.node_id, h.node_id);
	ck_assert_uint_eq(h2.last_seq, h.last_seq);
	ck_assert_uint_eq(h2.term, 3);
	ck_assert_str_eq(h2.primary, "tcp://127.0.0.1:7000");
	ck_assert_uint_eq(h2.parallelism, 6);
	vdb_free(buf);
}
END_TEST

/* ===== Malformed input ===== */

/* A decoder under test: decodes, frees, returns the code. */
typedef int (*decode_fn)(const uint8_t *buf, size_t len);

/* Each decoder, wrapped to free what it returns. */
static int
d_request(const uint8_t *b, size_t l)
{
	struct proto_request *r;
	int rv = proto_request_decode(b, l, &r);

	if (rv == VECDB_OK)
		proto_request_free(r);
	return rv;
}

/* Response decode and free. */
static int
d_response(const uint8_t *b, size_t l)
{
	struct proto_response *r;
	int rv = proto_response_decode(b, l, &r);

	if (rv == VECDB_OK)
		proto_response_free(r);
	return rv;
}

/* Write decode and free. */
static int
d_write(const uint8_t *b, size_t l)
{
	struct proto_write *w;
	int rv = proto_write_decode(b, l, &w);

	if (rv == VECDB_OK)
		proto_write_free(w);
	return rv;
}

/* Records decode and free. */
static int
d_records(const uint8_t *b, size_t l)
{
	vecdb_records *r;
	int rv = proto_records_decode(b, l, &r);

	if (rv == VECDB_OK)
		vecdb_records_free(r);
	return rv;
}

/* Search decode and free. */
static int
d_search(const uint8_t *b, size_t l)
{
	struct proto_search *s;
	int rv = proto_search_decode(b, l, &s);

	if (rv == VECDB_OK)
		proto_search_free(s);
	return rv;
}

/* Recommend decode and free. */
static int
d_recommend(const uint8_t *b, size_t l)
{
	struct proto_recommend *r;
	int rv = proto_recommend_decode(b, l, &r);

	if (rv == VECDB_OK)
		proto_recommend_free(r);
	return rv;
}

/* Discover decode and free. */
static int
d_discover(const uint8_t *b, size_t l)
{
	struct proto_discover *d;
	int rv = proto_discover_decode(b, l, &d);

	if (rv == VECDB_OK)
		proto_discover_free(d);
	return rv;
}

/* Collection info decode. */
static int
d_info(const uint8_t *b, size_t l)
{
	vecdb_collection_config c;
	vecdb_collection_stats s;

	return proto_collection_info_decode(b, l, &c, &s);
}

/* Snapshot list decode and free. */
static int
d_snaps(const uint8_t *b, size_t l)
{
	vecdb_snapshot_info *s;
	size_t n;
	int rv = proto_snapshot_list_decode(b, l, &s, &n);

	if (rv == VECDB_OK)
		vdb_free(s);
	return rv;
}

/* SetQuantization decode. */
static int
d_set_quant(const uint8_t *b, size_t l)
{
	char coll[VECDB_NAME_MAX + 1];
	vecdb_quant_config q;

	return proto_set_quantization_decode(b, l, coll, &q);
}

/* A sample encoding for decoder i of the fuzz table. */
static void
sample(int i, uint8_t **buf, size_t *len)
{
	vecdb_point pts[2] = { { uuid_id(1), vec4, 4, "{\"a\":[1,2]}" },
		{ vecdb_id_num(300), vec4b, 4, NULL } };
	vecdb_search_params sp = { vec4, 4, 10, 2, NULL, 0, 1, 1, 1, 1, 0, 3,
		NULL };
	const char *f[1] = { "{\"must\":[]}" };
	vecdb_id ids[2] = { vecdb_id_num(1), uuid_id(2) };
	vecdb_context_pair ctx[1] = { { vecdb_id_num(1), uuid_id(2) } };
	vecdb_recommend_params rp = { ids, 2, ids, 1, vec4, 1, vec4b, 1, 4,
		ids, 2, VECDB_RECO_AVERAGE_VECTOR, 5, 1, NULL, 0, 1, 1, NULL };
	vecdb_discover_params dp = { 1, vecdb_id_num(5), NULL, ctx, 1, vec4,
		0, 4, ids, 1, 4, 0, NULL, 1, 0, NULL };
	vecdb_collection_config cc;
	vecdb_collection_stats cs = { 1, 4, 2, 3, 4, 5, 0, 0,
		VECDB_OPTIMIZER_IDLE, 0, 0, 0, VECDB_QUANT_PRODUCT, 6, 7, 8,
		{ 0 } };
	vecdb_quant_config qc = { VECDB_QUANT_PRODUCT, 0.9f, 1, 2, 8 };
	vecdb_snapshot_info si = { "c_1", "c", 1, 2, 3, "abc" };
	vecdb_records *r;
	int rv = VECDB_EINVAL;

	vecdb_collection_config_init(&cc, "coll", 4, VECDB_DOT);
	switch (i) {
	case 0: rv = proto_request_encode(PROTO_WRITE, "secret", 9, "body",
	    4, buf, len); break;
	case 1: rv = proto_response_encode(PROTO_NOT_FOUND, "missing",
	    "b", 1, buf, len); break;
	case 2: rv = proto_write_encode("coll", 1, pts, 2, buf, len); break;
	case 3:
		r = sample_records();
		rv = proto_records_encode(r, buf, len);
		vecdb_records_free(r);
		break;
	case 4: rv = proto_search_encode("coll", &sp, f, 1, buf, len); break;
	case 5: rv = proto_recommend_encode("coll", &rp, "{}", buf, len);
		break;
	case 6: rv = proto_discover_encode("coll", &dp, "{}", buf, len);
		break;
	case 7: rv = proto_collection_info_encode(&cc, &cs, buf, len); break;
	case 8: rv = proto_snapshot_list_encode(&si, 1, buf, len); break;
	case 9: rv = proto_set_quantization_encode("coll", &qc, buf, len);
		break;
	}
	ck_assert_int_eq(rv, VECDB_OK);
}

static const decode_fn decoders[] = { d_request, d_response, d_write,
	d_records, d_search, d_recommend, d_discover, d_info, d_snaps,
	d_set_quant };
#define N_DECODERS ((int)(sizeof(decoders) / sizeof(decoders[0])))

START_TEST(truncations_are_einval_or_a_valid_prefix)
{
	uint8_t *buf, *copy;
	size_t len;
	int einval = 0;

	sample(_i, &buf, &len);
	ck_assert_int_eq(decoders[_i](buf, len), VECDB_OK);
	for (size_t l = 0; l < len; l++) {
		/* an exact-size copy, so ASan catches a read past it */
		copy = vdb_malloc(l ? l : 1);
		memcpy(copy, buf, l);
		int rv = decoders[_i](copy, l);

		ck_assert_msg(rv == VECDB_OK || rv == VECDB_EINVAL,
		    "decoder %d, length %zu: %d", _i, l, rv);
		einval += rv == VECDB_EINVAL;
		vdb_free(copy);
	}
	/* most prefixes cut a field or drop a required one */
	ck_assert_int_gt(einval, (int)len / 2);
	vdb_free(buf);
}
END_TEST

START_TEST(random_byte_flips_never_crash)
{
	uint64_t seed = 0x5eed0000u + (uint64_t)_i;
	uint8_t *buf, *copy;
	size_t len;

	sample(_i, &buf, &len);
	copy = vdb_malloc(len);
	for (int round = 0; round < 3000; round++) {
		memcpy(copy, buf, len);
		int flips = 1 + (int)(tu_rand(&seed) % 4);

		for (int k = 0; k < flips; k++)
			copy[tu_rand(&seed) % len] ^=
			    (uint8_t)(1u << (tu_rand(&seed) % 8));
		int rv = decoders[_i](copy, len);

		ck_assert_msg(rv == VECDB_OK || rv == VECDB_EINVAL,
		    "decoder %d, round %d: %d", _i, round, rv);
	}
	vdb_free(copy);
	vdb_free(buf);
}
END_TEST

START_TEST(random_bytes_never_crash)
{
	uint64_t seed = 77;
	uint8_t junk[64];

	for (int round = 0; round < 2000; round++) {
		size_t n = tu_rand(&seed) % sizeof(junk);

		for (size_t k = 0; k < n; k++)
			junk[k] = (uint8_t)tu_rand(&seed);
		for (int i = 0; i < N_DECODERS; i++) {
			int rv = decoders[i](junk, n);

			ck_assert(rv == VECDB_OK || rv == VECDB_EINVAL);
		}
	}
}
END_TEST

START_TEST(wrong_wire_types_are_einval)
{
	struct proto_write *w;
	struct proto_request *r;
	char coll[VECDB_NAME_MAX + 1];
	vecdb_id id;

	/* Write.collection (string) sent as a varint */
	ck_assert_int_eq(proto_write_decode((const uint8_t *)"\x08\x05", 2,
	    &w), VECDB_EINVAL);
	/* Write.points (message) sent as a fixed32 */
	ck_assert_int_eq(proto_write_decode((const uint8_t *)
	    "\x0a\x01" "c" "\x1d\x00\x00\x00\x00", 8, &w), VECDB_EINVAL);
	/* Request.method (enum) sent as bytes */
	ck_assert_int_eq(proto_request_decode((const uint8_t *)
	    "\x0a\x01\x05", 3, &r), VECDB_EINVAL);
	/* Get.id (message) sent as a varint */
	ck_assert_int_eq(proto_get_decode((const uint8_t *)
	    "\x0a\x01" "c" "\x10\x01", 5, coll, &id), VECDB_EINVAL);
	/* a length running past the end */
	ck_assert_int_eq(proto_write_decode((const uint8_t *)"\x0a\x7f" "c",
	    3, &w), VECDB_EINVAL);
	/* wire type 7 does not exist */
	ck_assert_int_eq(proto_write_decode((const uint8_t *)"\x0f\x00", 2,
	    &w), VECDB_EINVAL);
}
END_TEST

START_TEST(uuid_of_wrong_length_is_einval)
{
	/* Get { collection "c", id { uuid <n bytes> } } */
	uint8_t msg[64] = { 0x0a, 0x01, 'c', 0x12 };
	char coll[VECDB_NAME_MAX + 1];
	vecdb_id id;

	for (size_t n = 0; n <= 20; n++) {
		msg[4] = (uint8_t)(n + 2);
		msg[5] = 0x12;
		msg[6] = (uint8_t)n;
		memset(msg + 7, 0xab, n);
		ck_assert_int_eq(proto_get_decode(msg, 7 + n, coll, &id),
		    n == 16 ? VECDB_OK : VECDB_EINVAL);
		if (n != 16)
			ck_assert_ptr_nonnull(strstr(vecdb_errmsg(), "uuid"));
	}
	/* an id with neither num nor uuid */
	msg[4] = 0;
	ck_assert_int_eq(proto_get_decode(msg, 5, coll, &id), VECDB_EINVAL);
}
END_TEST

START_TEST(missing_or_long_collection_name_is_einval)
{
	char longname[VECDB_NAME_MAX + 2];
	const char *names[2] = { "", longname };
	vecdb_point pt = { vecdb_id_num(1), vec4, 4, NULL };
	vecdb_search_params sp = { vec4, 4, 1, 0, NULL, 0, 0, 0, 0, 0, 0, 0,
		NULL };
	vecdb_id id = vecdb_id_num(1);
	vecdb_recommend_params rp = { &id, 1, NULL, 0, NULL, 0, NULL, 0, 0,
		NULL, 0, 0, 1, 0, NULL, 0, 0, 0, NULL };
	vecdb_discover_params dp = { 1, vecdb_id_num(5), NULL, NULL, 0, NULL,
		0, 0, NULL, 0, 1, 0, NULL, 0, 0, NULL };
	char coll[VECDB_NAME_MAX + 1], *filter;
	struct proto_delete *d;
	struct proto_scroll *s;
	uint8_t *buf;
	size_t len;

	memset(longname, 'x', sizeof(longname) - 1);
	longname[sizeof(longname) - 1] = '\0';
	for (int k = 0; k < 2; k++) {
		const char *c = names[k];

#define CHECK(enc, dec) do { \
	ck_assert_int_eq(enc, VECDB_OK); \
	ck_assert_int_eq(dec(buf, len), VECDB_EINVAL); \
	ck_assert_ptr_nonnull(strstr(vecdb_errmsg(), "collection name")); \
	vdb_free(buf); } while (0)
		CHECK(proto_write_encode(c, 0, &pt, 1, &buf, &len), d_write);
		CHECK(proto_search_encode(c, &sp, NULL, 1, &buf, &len),
		    d_search);
		CHECK(proto_recommend_encode(c, &rp, NULL, &buf, &len),
		    d_recommend);
		CHECK(proto_discover_encode(c, &dp, NULL, &buf, &len),
		    d_discover);
#undef CHECK
		ck_assert_int_eq(proto_delete_encode(c, &id, 1, &buf, &len), 0);
		ck_assert_int_eq(proto_delete_decode(buf, len, &d),
		    VECDB_EINVAL);
		vdb_free(buf);
		ck_assert_int_eq(proto_scroll_encode(c, NULL, 1, NULL, 0, 0,
		    &buf, &len), 0);
		ck_assert_int_eq(proto_scroll_decode(buf, len, &s),
		    VECDB_EINVAL);
		vdb_free(buf);
		ck_assert_int_eq(proto_count_encode(c, NULL, &buf, &len), 0);
		ck_assert_int_eq(proto_count_decode(buf, len, coll, &filter),
		    VECDB_EINVAL);
		vdb_free(buf);
		ck_assert_int_eq(proto_get_encode(c, &id, &buf, &len), 0);
		ck_assert_int_eq(proto_get_decode(buf, len, coll, &id),
		    VECDB_EINVAL);
		vdb_free(buf);
	}
}
END_TEST

START_TEST(oversized_counts_are_einval)
{
	size_t n = VECDB_BATCH_MAX + 1;
	vecdb_id *ids = vdb_calloc(n, sizeof(*ids));
	vecdb_search_params *sp = vdb_calloc(PROTO_SEARCH_MAX + 1,
	    sizeof(*sp));
	struct proto_delete *d;
	struct proto_search *s;
	uint8_t *buf;
	size_t len;

	for (size_t i = 0; i < n; i++)
		ids[i] = vecdb_id_num(i);
	ck_assert_int_eq(proto_delete_encode("c", ids, n - 1, &buf, &len), 0);
	ck_assert_int_eq(proto_delete_decode(buf, len, &d), VECDB_OK);
	ck_assert_uint_eq(d->n, VECDB_BATCH_MAX);
	proto_delete_free(d);
	vdb_free(buf);
	ck_assert_int_eq(proto_delete_encode("c", ids, n, &buf, &len), 0);
	ck_assert_int_eq(proto_delete_decode(buf, len, &d), VECDB_EINVAL);
	vdb_free(buf);
	for (size_t i = 0; i <= PROTO_SEARCH_MAX; i++)
		sp[i] = (vecdb_search_params){ vec4, 4, 1, 0, NULL, 0, 0, 0,
			0, 0, 0, 0, NULL };
	ck_assert_int_eq(proto_search_encode("c", sp, NULL,
	    PROTO_SEARCH_MAX + 1, &buf, &len), 0);
	ck_assert_int_eq(proto_search_decode(buf, len, &s), VECDB_EINVAL);
	vdb_free(buf);
	/* a length prefix claiming more than the limit of a message */
	ck_assert_int_eq(d_write((const uint8_t *)"x", (size_t)PROTO_MSG_MAX +
	    1), VECDB_EINVAL);
	vdb_free(sp);
	vdb_free(ids);
}
END_TEST

START_TEST(allocation_failures_unwind_cleanly)
{
	uint8_t *buf;
	size_t len;

	for (int i = 0; i < N_DECODERS; i++) {
		sample(i, &buf, &len);
		for (uint64_t k = 1; k < 200; k++) {
			vdb_alloc_fail_after(k);
			int rv = decoders[i](buf, len);

			vdb_alloc_fail_after(0);
			ck_assert_msg(rv == VECDB_OK || rv == VECDB_ENOMEM ||
			    rv == VECDB_EINVAL, "decoder %d: %d", i, rv);
			if (rv == VECDB_OK)
				break;
		}
		vdb_free(buf);
	}
}
END_TEST

/* ===== Replication ===== */

START_TEST(replication_messages_round_trip)
{
	struct proto_fetch_wal f = { 41, 100, 1 << 20, 500, "r1", 3, 4 }, fo;
	struct proto_bootstrap_info bi = { 9, 12345, { 0 } }, bo;
	struct proto_bootstrap_chunk c = { 9, 4096, 0 }, co;
	uint8_t recs[40], *b, *data;
	struct proto_wal_batch wb = { recs, sizeof(recs), 2, 50, 3, 1, 1, 38 },
	    *wo;
	char id[PROTO_REPLICA_ID_MAX + 1];
	size_t l, n;

	for (size_t i = 0; i < sizeof(recs); i++)
		recs[i] = (uint8_t) i;
	memset(bi.sha256, 0xab, 32);
	ck_assert_int_eq(proto_fetch_wal_encode(&f, &b, &l), VECDB_OK);
	ck_assert_int_eq(proto_fetch_wal_decode(b, l, &fo), VECDB_OK);
	vdb_free(b);
	ck_assert_uint_eq(fo.after_seq, 41);
	ck_assert_uint_eq(fo.max_records, 100);
	ck_assert_uint_eq(fo.max_bytes, 1 << 20);
	ck_assert_uint_eq(fo.max_wait_ms, 500);
	ck_assert_str_eq(fo.replica_id, "r1");
	ck_assert_uint_eq(fo.after_term, 3);
	ck_assert_uint_eq(fo.term, 4);
	ck_assert_int_eq(proto_wal_batch_encode(&wb, &b, &l), VECDB_OK);
	ck_assert_int_eq(proto_wal_batch_decode(b, l, &wo), VECDB_OK);
	vdb_free(b);
	ck_assert_uint_eq(wo->records_len, sizeof(recs));
	ck_assert_mem_eq(wo->records, recs, sizeof(recs));
	ck_assert_uint_eq(wo->count, 2);
	ck_assert_uint_eq(wo->last_seq, 50);
	ck_assert_uint_eq(wo->oldest_seq, 3);
	ck_assert_int_eq(wo->diverged, 1);
	ck_assert_uint_eq(wo->common_seq, 38);
	proto_wal_batch_free(wo);
	ck_assert_int_eq(proto_bootstrap_begin_encode("r2", &b, &l), VECDB_OK);
	ck_assert_int_eq(proto_bootstrap_begin_decode(b, l, id), VECDB_OK);
	vdb_free(b);
	ck_assert_str_eq(id, "r2");
	ck_assert_int_eq(proto_bootstrap_info_encode(&bi, &b, &l), VECDB_OK);
	ck_assert_int_eq(proto_bootstrap_info_decode(b, l, &bo), VECDB_OK);
	vdb_free(b);
	ck_assert_uint_eq(bo.size, 12345);
	ck_assert_mem_eq(bo.sha256, bi.sha256, 32);
	ck_assert_int_eq(proto_bootstrap_chunk_encode(&c, &b, &l), VECDB_OK);
	ck_assert_int_eq(proto_bootstrap_chunk_decode(b, l, &co), VECDB_OK);
	vdb_free(b);
	ck_assert_uint_eq(co.offset, 4096);
	ck_assert_uint_eq(co.max_bytes, PROTO_CHUNK_MAX); /* 0: the cap */
	ck_assert_int_eq(proto_bootstrap_data_encode(recs, 7, &b, &l),
	    VECDB_OK);
	ck_assert_int_eq(proto_bootstrap_data_decode(b, l, &data, &n),
	    VECDB_OK);
	vdb_free(b);
	ck_assert_uint_eq(n, 7);
	ck_assert_mem_eq(data, recs, 7);
	vdb_free(data);
}
END_TEST

START_TEST(replication_messages_refuse_bad_fields)
{
	struct proto_wal_batch wb = { NULL, 0, 3, 50, 3, 1, 0, 0 }, *wo;
	struct proto_bootstrap_info bo;
	char longid[PROTO_REPLICA_ID_MAX + 2];
	uint8_t *b;
	size_t l;

	/* A count with no bytes. */
	ck_assert_int_eq(proto_wal_batch_encode(&wb, &b, &l), VECDB_OK);
	ck_assert_int_eq(proto_wal_batch_decode(b, l, &wo), VECDB_EINVAL);
	vdb_free(b);
	/* A replica id over the limit. */
	memset(longid, 'x', sizeof(longid) - 1);
	longid[sizeof(longid) - 1] = '\0';
	ck_assert_int_eq(proto_bootstrap_begin_encode(longid, &b, &l), VECDB_OK);
	ck_assert_int_eq(proto_bootstrap_begin_decode(b, l, longid),
	    VECDB_EINVAL);
	vdb_free(b);
	/* A BootstrapInfo without its 32-byte checksum (an empty message). */
	ck_assert_int_eq(proto_bootstrap_info_decode(NULL, 0, &bo),
	    VECDB_EINVAL);
	ck_assert_ptr_nonnull(strstr(vecdb_errmsg(), "checksum"));
}
END_TEST

/* ===== Suite ===== */

/* Every case of the wire format. */
static Suite *
proto_suite(void)
{
	Suite *s = suite_create("proto");
	TCase *tc = tcase_create("round trips");

	tcase_add_test(tc, request_round_trips);
	tcase_add_test(tc, request_without_method_is_einval);
	tcase_add_test(tc, response_round_trips);
	tcase_add_test(tc, codes_map_both_ways);
	tcase_add_test(tc, collection_config_round_trips);
	tcase_add_test(tc, collection_config_limits_are_checked);
	tcase_add_test(tc, set_quantization_round_trips_and_refuses_bad_fields);
	tcase_add_test(tc, names_round_trip);
	tcase_add_test(tc, targets_round_trip);
	tcase_add_test(tc, promotion_messages_round_trip_and_refuse_bad_fields);
	tcase_add_test(tc, write_round_trips_ids_vectors_and_payloads);
	tcase_add_test(tc, write_refuses_nan_and_infinity);
	tcase_add_test(tc, sparse_vectors_round_trip_in_writes_and_records);
	tcase_add_test(tc, sparse_search_and_stats_round_trip);
	tcase_add_test(tc, write_at_max_sizes_passes_and_over_fails);
	tcase_add_test(tc, write_result_delete_get_and_count_round_trip);
	tcase_add_test(tc, records_round_trip);
	tcase_add_test(tc, search_round_trips);
	tcase_add_test(tc, search_limits_are_checked);
	tcase_add_test(tc, search_filter_depth_is_bounded);
	tcase_add_test(tc, recommend_round_trips);
	tcase_add_test(tc, discover_round_trips);
	tcase_add_test(tc, scroll_round_trips);
	tcase_add_test(tc, snapshots_indexes_stats_health_round_trip);
	tcase_add_test(tc, replication_messages_round_trip);
	tcase_add_test(tc, replication_messages_refuse_bad_fields);
	suite_add_tcase(s, tc);
	tc = tcase_create("malformed");
	tcase_add_loop_test(tc, truncations_are_einval_or_a_valid_prefix, 0,
	    N_DECODERS);
	tcase_add_loop_test(tc, random_byte_flips_never_crash, 0, N_DECODERS);
	tcase_add_test(tc, random_bytes_never_crash);
	tcase_add_test(tc, wrong_wire_types_are_einval);
	tcase_add_test(tc, uuid_of_wrong_length_is_einval);
	tcase_add_test(tc, missing_or_long_collection_name_is_einval);
	tcase_add_test(tc, oversized_counts_are_einval);
	tcase_add_test(tc, allocation_failures_unwind_cleanly);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	return tu_run(proto_suite());
}
