/*
 * fuzz_yaml.c: the YAML config file of `vecdb serve --config`: api_yaml_load
 * (libyaml events into jansson values), then what vecdb_main.c does with
 * the result: every setting key read as a string or an integer, the
 * numeric ones through api_parse_u64 with vecdb_main.c's bounds, the
 * durability through vecdb_options_from_env, and each entry of
 * `collections` through api_config_from_json and a real create (dropped
 * again) on an embedded database.
 *
 * settings_from_file and collections_ensure are static in vecdb_main.c (a
 * program, not a library): their walk over the keys is mirrored here.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api_impl.h"
#include "api_yaml.h"
#include "fuzz.h"

static vecdb *db;
static char path[4200];

/* vecdb_main.c's setting keys; max 0: a string setting. */
static const struct {
	const char *key;
	uint64_t max;
} keys[] = { { "data_dir", 0 }, { "host", 0 }, { "port", 65535 },
	{ "api_key", 0 }, { "read_only_api_key", 0 }, { "tls_cert", 0 },
	{ "tls_key", 0 }, { "max_body", 1ULL << 40 }, { "threads", 1024 },
	{ "durability", 0 } };

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void) argc;
	(void) argv;
	fz_init();
	db = fz_db_open(fz_tmpdir("yaml"));
	snprintf(path, sizeof(path), "%s/vecdb.yaml", fz_tmpdir("yaml-file"));
	return 0;
}

/* One setting, as settings_from_file and setting_set read it. */
static void
setting(const json_t *file, size_t i)
{
	json_t *v = json_object_get(file, keys[i].key);
	const char *s = json_string_value(v);
	char num[24];
	vecdb_options o;
	uint64_t out;

	if (json_is_integer(v)) {
		snprintf(num, sizeof(num), "%lld",
		    (long long) json_integer_value(v));
		s = num;
	}
	if (s == NULL)
		return;
	if (keys[i].max != 0) {
		(void) api_parse_u64("vecdb", keys[i].key, s, 0, keys[i].max,
		    1, &out);
	} else if (strcmp(keys[i].key, "durability") == 0) {
		vecdb_options_init(&o);
		setenv("VECDB_DURABILITY", s, 1);
		(void) vecdb_options_from_env(&o);
		unsetenv("VECDB_DURABILITY");
	}
}

/* collections_ensure, on a database that starts and ends empty: every
 * collection of the file is created, then all are dropped. */
static void
collections(const json_t *file)
{
	json_t *list = json_object_get(file, "collections"), *c;
	json_t *made = json_array();
	vecdb_collection_config cfg;
	size_t i;

	json_array_foreach(json_is_array(list) ? list : NULL, i, c) {
		if (!json_is_object(c) ||
		    api_config_from_json(c, &cfg) != VECDB_OK)
			break;
		if (vecdb_collection_create(db, &cfg) == VECDB_OK)
			json_array_append_new(made, json_string(cfg.name));
	}
	json_array_foreach(made, i, c)
		if (vecdb_collection_delete(db, json_string_value(c)) !=
		    VECDB_OK)
			abort();
	json_decref(made);
}

int
LLVMFuzzerTestOneInput(const uint8_t *d, size_t n)
{
	json_t *file;

	fz_file_write(path, d, n);
	if (api_yaml_load(path, &file) != VECDB_OK)
		return 0;
	fz_stderr_off();
	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
		setting(file, i);
	fz_stderr_on();
	collections(file);
	json_decref(file);
	return 0;
}
