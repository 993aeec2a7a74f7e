/*
 * client.c: vecdb over the network. Connects to a router or node's rpc
 * URL, creates a collection, writes three points with payloads, searches
 * with a filter, and prints what it found.
 *
 *   build/bin/client_example tcp://127.0.0.1:7000
 *
 * docs/CLIENT.md walks through this file; a test runs it.
 */
#include <stdio.h>
#include <stdlib.h>

#include "vecdb_client.h"

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
	const char *url = argc > 1 ? argv[1] : "tcp://127.0.0.1:7000";
	vecdb_collection_config cfg;
	vecdb_search_params sp = { 0 };
	vecdb_records *hits;
	vecdb_client *c;
	char id[VECDB_ID_STRLEN];

	/* No api key; each call may take up to 5 seconds. */
	check(vecdb_client_connect(url, NULL, 5000, &c), "connect");

	vecdb_collection_config_init(&cfg, "articles", 3, VECDB_COSINE);
	int rv = vecdb_client_collection_create(c, &cfg);
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
	check(vecdb_client_upsert(c, "articles", pts, 3), "upsert");

	/* The nearest English articles from 2020 on: the filter is JSON. */
	float query[] = { 1.0f, 0.2f, 0.0f };
	sp.vector = query;
	sp.dim = 3;
	sp.limit = 10;
	sp.with_payload = 1;
	check(vecdb_client_search(c, "articles", &sp,
	    "{\"must\": ["
	    "{\"key\": \"lang\", \"match\": {\"value\": \"en\"}},"
	    "{\"key\": \"year\", \"range\": {\"gte\": 2020}}]}", &hits),
	    "search");

	for (size_t i = 0; i < hits->count; i++)
		printf("%s %.4f %s\n", vecdb_id_format(&hits->items[i].id, id),
		    hits->items[i].distance, hits->items[i].payload);

	vecdb_records_free(hits);
	vecdb_client_close(c);
	return 0;
}
