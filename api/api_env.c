/*
 * api_env.c: the VECDB_* environment of the commands. `vecdb serve`,
 * vecdb-node and vecdb-router take every flag also as a variable, with
 * the flag winning; the table of names is each command's, the walk is
 * shared so that they all read the environment the same way.
 */
#include <stdio.h>
#include <stdlib.h>

#include "api.h"

int
api_settings_from_env(const char *prog, const struct api_setting_name *names,
    size_t n, int (*set)(void *s, int opt, const char *v), void *s)
{
	for (size_t i = 0; i < n; i++) {
		const char *v = getenv(names[i].env);
		if (v == NULL || set(s, names[i].opt, v) == 0)
			continue;
		fprintf(stderr, "%s: (that value comes from %s)\n", prog,
		    names[i].env);
		return -1;
	}
	return 0;
}
