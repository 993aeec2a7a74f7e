/*
 * embedded.c: vecdb as a library. Creates a collection, writes three points
 * with payloads, searches with a filter, and prints what it found.
 *
 *   build/bin/embedded_example /tmp/vecdb-example
 *
 * docs/EMBEDDED.md walks through this file; a test runs it.
 */
#include <stdio.h>
#include <stdlib.h>

#include "vecdb.h"

/* Print the error of a failed call and exit. */
static void
check(int rv, const char *what)
{
	if (rv != VECDB_OK) {
		fprintf(stderr, "%s: %s: %s\n", what, vecdb_strerror(rv),
		    vecdb_errmsg());
		exit(1);
	}
}

int
main(int argc, char **argv)
{
	const char *dir = argc > 1 ? argv[1] : "./example-data";
	vecdb_collection_config cfg;
	vecdb_search_params sp = { 0 };
	vecdb_filter *filter;
	vecdb_records *hits;
	vecdb *db;
	char id[VECDB_ID_STRLEN];

	/* NULL options: defaults plus the VECDB_* environment. */
	check(vecdb_open(dir, NULL, &db), "open");

	vecdb_collection_config_init(&cfg, "articles", 3, VECDB_COSINE);
	int rv = vecdb_collection_create(db, &cfg);
	if (rv != VECDB_EEXIST) /* fine on a second run */
		check(rv, "create collection");

	float v1[] = { 1.0f, 0.0f, 0.0f };
	float v2[] = { 0.9f, 0.1f, 0.0f };
	float v3[] = { 0.0f, 1.0f, 0.0f };
	vecdb_point pts[] = {
		{ vecdb_id_num(1), v1, 3, "{\"lang\": \"en\", \"year\": 2021}" },
		{ vecdb_id_num(2), v2, 3, "{\"lang\": \"de\", \"year\": 2023}" },
		{ vecdb_id_num(3), v3, 3, "{\"lang\": \"en\", \"year\": 2024}" },
	};
	/* One atomic batch: all three points or none. */
	check(vecdb_upsert(db, "articles", pts, 3), "upsert");

	/* The nearest English articles from 2020 on. */
	check(vecdb_filter_parse("{\"must\": ["
				 "{\"key\": \"lang\", \"match\": {\"value\": \"en\"}},"
				 "{\"key\": \"year\", \"range\": {\"gte\": 2020}}]}",
	    &filter), "parse filter");
	float query[] = { 1.0f, 0.2f, 0.0f };
	sp.vector = query;
	sp.dim = 3;
	sp.limit = 10;
	sp.filter = filter;
	sp.with_payload = 1;
	check(vecdb_search(db, "articles", &sp, &hits), "search");

	for (size_t i = 0; i < hits->count; i++)
		printf("%s %.4f %s\n", vecdb_id_format(&hits->items[i].id, id),
		    hits->items[i].distance, hits->items[i].payload);

	vecdb_records_free(hits);
	vecdb_filter_free(filter);
	vecdb_close(db);
	return 0;
}
