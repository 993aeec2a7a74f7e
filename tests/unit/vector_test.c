/* vector_test.c: storage types, float16 conversion, ids, validation. */
#include <check.h>
#include <math.h>
#include <stdlib.h>

#include "storage_impl.h"
#include "testutil.h"

START_TEST(float16_round_trips_every_half_value)
{
	/* Every finite half converts to float and back to itself. */
	for (uint32_t h = 0; h < 0x10000; h++) {
		if ((h & 0x7c00) == 0x7c00)
			continue; /* inf / NaN are refused at the edge */
		float f = vec_f16_to_f32((uint16_t) h);
		ck_assert_uint_eq(vec_f32_to_f16(f), h);
	}
}
END_TEST

START_TEST(float16_rounds_to_nearest)
{
	ck_assert_float_eq(vec_f16_to_f32(vec_f32_to_f16(1.0f)), 1.0f);
	ck_assert_float_eq(vec_f16_to_f32(vec_f32_to_f16(-2.5f)), -2.5f);
	ck_assert_float_eq(vec_f16_to_f32(vec_f32_to_f16(65504.0f)), 65504.0f);
	/* 1 + 2^-11 is halfway between 1 and 1 + 2^-10: ties to even. */
	ck_assert_float_eq(vec_f16_to_f32(vec_f32_to_f16(1.0f + 0x1p-11f)),
	    1.0f);
	ck_assert_float_eq(vec_f16_to_f32(vec_f32_to_f16(1.0f + 0x1p-10f)),
	    1.0f + 0x1p-10f);
	/* Subnormal halves. */
	ck_assert_float_eq(vec_f16_to_f32(vec_f32_to_f16(0x1p-24f)), 0x1p-24f);
	ck_assert_float_eq(vec_f16_to_f32(vec_f32_to_f16(0x1p-26f)), 0.0f);
	float x = 0.1234567f;
	ck_assert(fabsf(vec_f16_to_f32(vec_f32_to_f16(x)) - x) < 1e-4f);
}
END_TEST

START_TEST(validation_refuses_nan_infinity_and_out_of_range)
{
	float nanv[] = { 1, NAN, 3 };
	float infv[] = { INFINITY };
	float big[] = { 70000.0f };
	float frac[] = { 1.5f };
	float neg[] = { -1.0f };
	float ok8[] = { 0, 255, 17 };

	ck_assert_int_eq(vec_validate(nanv, 3, VECDB_FLOAT32), VECDB_EINVAL);
	ck_assert_ptr_nonnull(strstr(vecdb_errmsg(), "component 1"));
	ck_assert_int_eq(vec_validate(infv, 1, VECDB_FLOAT32), VECDB_EINVAL);
	ck_assert_int_eq(vec_validate(big, 1, VECDB_FLOAT32), VECDB_OK);
	ck_assert_int_eq(vec_validate(big, 1, VECDB_FLOAT16), VECDB_EINVAL);
	ck_assert_int_eq(vec_validate(frac, 1, VECDB_UINT8), VECDB_EINVAL);
	ck_assert_int_eq(vec_validate(neg, 1, VECDB_UINT8), VECDB_EINVAL);
	ck_assert_int_eq(vec_validate(ok8, 3, VECDB_UINT8), VECDB_OK);
}
END_TEST

START_TEST(encode_decode_is_exact_for_each_type)
{
	float in[] = { 0, 1, 2, 255, 3, 7 }, out[6];
	uint8_t buf[24];

	for (int t = VECDB_FLOAT32; t <= VECDB_UINT8; t++) {
		vec_encode(in, 6, (vecdb_vtype) t, buf);
		vec_decode(buf, 6, (vecdb_vtype) t, out);
		for (int i = 0; i < 6; i++)
			ck_assert_float_eq(out[i], in[i]);
	}
}
END_TEST

START_TEST(ids_parse_format_and_sort)
{
	vecdb_id a, b, u;
	char buf[VECDB_ID_STRLEN];

	ck_assert_int_eq(vecdb_id_parse("18446744073709551615", &a), VECDB_OK);
	ck_assert_int_eq(a.kind, VECDB_ID_NUM);
	ck_assert_uint_eq(a.num, UINT64_MAX);
	ck_assert_int_eq(vecdb_id_parse("18446744073709551616", &a),
	    VECDB_EINVAL);
	ck_assert_int_eq(vecdb_id_parse("12x", &a), VECDB_EINVAL);
	ck_assert_int_eq(vecdb_id_parse("", &a), VECDB_EINVAL);
	ck_assert_int_eq(vecdb_id_parse("not-a-uuid", &a), VECDB_EINVAL);
	ck_assert_ptr_nonnull(strstr(vecdb_errmsg(), "invalid UUID"));
	ck_assert_int_eq(vecdb_id_parse(
	    "550E8400-E29B-41D4-A716-446655440000", &u), VECDB_OK);
	ck_assert_str_eq(vecdb_id_format(&u, buf),
	    "550e8400-e29b-41d4-a716-446655440000");
	a = vecdb_id_num(5);
	b = vecdb_id_num(40);
	ck_assert_int_lt(vecdb_id_cmp(&a, &b), 0);
	ck_assert_int_lt(vecdb_id_cmp(&b, &u), 0); /* numbers first */
	ck_assert_int_eq(vecdb_id_cmp(&u, &u), 0);
	ck_assert_str_eq(vecdb_id_format(&b, buf), "40");
}
END_TEST

START_TEST(keys_sort_like_ids)
{
	vecdb_id ids[4], back;
	uint8_t k[4][STORAGE_KEY_MAX];
	size_t n[4];

	ids[0] = vecdb_id_num(1);
	ids[1] = vecdb_id_num(256);
	vecdb_id_parse("00000000-0000-4000-8000-000000000000", &ids[2]);
	vecdb_id_parse("ffffffff-0000-4000-8000-000000000000", &ids[3]);
	for (int i = 0; i < 4; i++) {
		n[i] = vdb_id_key(&ids[i], k[i]);
		ck_assert_int_eq(vdb_key_id(k[i], n[i], &back), VECDB_OK);
		ck_assert_int_eq(vecdb_id_cmp(&back, &ids[i]), 0);
	}
	for (int i = 0; i < 3; i++)
		ck_assert_int_lt(memcmp(k[i], k[i + 1], 9), 0);
	ck_assert_int_eq(vdb_key_id(k[0], 5, &back), VECDB_ECORRUPT);
}
END_TEST

START_TEST(strerror_names_every_code)
{
	for (int e = 0; e < VECDB_ERR_COUNT; e++)
		ck_assert_str_ne(vecdb_strerror(e), "unknown error");
	ck_assert_str_eq(vecdb_strerror(-1), "unknown error");
	ck_assert_str_eq(vecdb_strerror(VECDB_ERR_COUNT), "unknown error");
}
END_TEST

static Suite *
vector_suite(void)
{
	Suite *s = suite_create("vector");
	TCase *tc;

	tc = tcase_create("float16");
	tcase_add_test(tc, float16_round_trips_every_half_value);
	tcase_add_test(tc, float16_rounds_to_nearest);
	suite_add_tcase(s, tc);
	tc = tcase_create("validation");
	tcase_add_test(tc, validation_refuses_nan_infinity_and_out_of_range);
	tcase_add_test(tc, encode_decode_is_exact_for_each_type);
	suite_add_tcase(s, tc);
	tc = tcase_create("ids");
	tcase_add_test(tc, ids_parse_format_and_sort);
	tcase_add_test(tc, keys_sort_like_ids);
	tcase_add_test(tc, strerror_names_every_code);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(vector_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
