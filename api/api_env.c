/*
 * api_env.c: the VECDB_* environment of the commands. `vecdb serve`,
 * vecdb-node and vecdb-router take every flag also as a variable, with
 * the flag winning; the table of names is each command's, the walk is
 * shared so that they all read the environment the same way.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

int
api_parse_u64(const char *prog, const char *what, const char *s,
    uint64_t lo, uint64_t hi, int size, uint64_t *out)
{
	static const char units[] = "KMGT";
	const char *u;
	char *end;
	unsigned long long v = strtoull(s, &end, 10);
	int shift = 0;

	if (size && end != s && *end != '\0' &&
	    (u = strchr(units, end[0] & ~0x20)) != NULL &&
	    (end[1] == '\0' || strcmp(end + 1, "iB") == 0)) {
		shift = 10 * (int) (u - units + 1);
		end += strlen(end);
	}
	if (end != s && *end == '\0' && s[0] != '-' &&
	    v <= (UINT64_MAX >> shift) && (v << shift) >= lo &&
	    (v << shift) <= hi) {
		*out = (uint64_t) v << shift;
		return 0;
	}
	if (size)
		fprintf(stderr, "%s: %s '%s' is not a size (bytes, or a number "
		    "with K, M, G or T) in %llu..%llu\n", prog, what, s,
		    (unsigned long long) lo, (unsigned long long) hi);
	else
		fprintf(stderr, "%s: %s '%s' is not a number in %llu..%llu\n",
		    prog, what, s, (unsigned long long) lo,
		    (unsigned long long) hi);
	return -1;
}

int
api_conn_setting(const char *prog, struct api_conn_limits *c, int opt,
    const char *v)
{
	switch (opt) {
	case API_OPT_MAX_CONNS:
		return api_parse_u64(prog, "max-connections", v, 1, 1000000, 0,
		    &c->max_conns);
	case API_OPT_MAX_CONNS_PER_IP:
		return api_parse_u64(prog, "max-connections-per-ip", v, 0,
		    1000000, 0, &c->max_conns_per_ip);
	case API_OPT_HEADER_TIMEOUT:
		return api_parse_u64(prog, "header-timeout-ms", v, 100,
		    3600000, 0, &c->header_timeout_ms);
	case API_OPT_BODY_TIMEOUT:
		return api_parse_u64(prog, "body-timeout-ms", v, 100,
		    86400000, 0, &c->body_timeout_ms);
	case API_OPT_IDLE_TIMEOUT:
		return api_parse_u64(prog, "idle-timeout-ms", v, 100,
		    86400000, 0, &c->idle_timeout_ms);
	default:
		return 1;
	}
}
