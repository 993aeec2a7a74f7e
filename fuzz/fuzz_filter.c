/*
 * fuzz_filter.c: the filter language (storage/filter/filter.c):
 * vecdb_filter_parse compiles the JSON text; the compiled filter is then
 * matched against payloads (filter_match) and split into planner terms
 * (filter_terms).
 *
 * An input is a filter, optionally followed by a NUL byte and one payload
 * to match it against; without one, a few fixed payloads are used.
 */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "filter.h"
#include "fuzz.h"

static const char *const payloads[] = {
	"{\"kind\": \"cafe\", \"rating\": 4}",
	("{\"diet\": [{\"food\": \"meat\", \"likes\": false}, {\"food\": "
	"\"leaves\", \"likes\": true}], \"tags\": [\"a\", \"b\", [\"c\"]], "
	"\"loc\": {\"lat\": 52.52, \"lon\": 13.405}, \"n\": 3.0}"),
	("{\"a\": {\"b\": [{\"c\": 9007199254740993}, {\"c\": null}]}, "
	"\"s\": \"\\u00e9\", \"t\": true}"),
	"{}",
};

static json_t *fixed[sizeof(payloads) / sizeof(payloads[0])];

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void) argc;
	(void) argv;
	fz_init();
	for (size_t i = 0; i < sizeof(payloads) / sizeof(payloads[0]); i++)
		if ((fixed[i] = json_loads(payloads[i], 0, NULL)) == NULL)
			abort();
	return 0;
}

/* filter_terms callback: read every field a planner would. */
static void
term_seen(const struct filter_term *t, void *arg)
{
	size_t *sum = arg;

	*sum += strlen(t->path) + t->n;
	for (size_t i = 0; i < t->n; i++)
		if (t->values[i].type == 0)
			*sum += t->values[i].len;
}

int
LLVMFuzzerTestOneInput(const uint8_t *d, size_t n)
{
	const uint8_t *nul = memchr(d, '\0', n);
	vecdb_filter *f;
	char *text = fz_strndup(d, nul ? (size_t) (nul - d) : n);
	size_t sum = 0;

	if (vecdb_filter_parse(text, &f) == VECDB_OK) {
		if (nul != NULL) {
			json_t *p = json_loadb((const char *) nul + 1,
			    n - (size_t) (nul - d) - 1, 0, NULL);
			(void) filter_match(f, p);
			json_decref(p);
		} else {
			for (size_t i = 0; i < sizeof(fixed) /
			    sizeof(fixed[0]); i++)
				(void) filter_match(f, fixed[i]);
		}
		(void) filter_terms(f, term_seen, &sum);
		vecdb_filter_free(f);
	}
	free(text);
	return 0;
}
