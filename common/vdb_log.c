/* vdb_log.c: leveled logging to stderr, one line per call. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "vdb.h"

static int level = VDB_LOG_LEVEL_INFO;
static pthread_once_t level_once = PTHREAD_ONCE_INIT;

/* Read VECDB_LOG once. */
static void
level_init(void)
{
	const char *s = getenv("VECDB_LOG");

	if (s == NULL)
		return;
	if (strcmp(s, "error") == 0)
		level = VDB_LOG_LEVEL_ERROR;
	else if (strcmp(s, "warn") == 0)
		level = VDB_LOG_LEVEL_WARN;
	else if (strcmp(s, "info") == 0)
		level = VDB_LOG_LEVEL_INFO;
	else if (strcmp(s, "debug") == 0)
		level = VDB_LOG_LEVEL_DEBUG;
}

int
vdb_log_level(void)
{
	pthread_once(&level_once, level_init);
	return level;
}

void
vdb_log_write(int lvl, const char *module, const char *fmt, ...)
{
	static const char *const tags[] = { "ERROR", "WARN", "INFO", "DEBUG" };
	char line[1024];
	struct timespec ts;
	struct tm tm;
	va_list ap;
	int n;

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	n = snprintf(line, sizeof(line),
	    "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ %s %s: ", tm.tm_year + 1900,
	    tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
	    ts.tv_nsec / 1000000, tags[lvl & 3], module);
	va_start(ap, fmt);
	vsnprintf(line + n, sizeof(line) - (size_t) n, fmt, ap);
	va_end(ap);
	fprintf(stderr, "%s\n", line);
}

uint64_t
vdb_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t) ts.tv_sec * 1000 + (uint64_t) ts.tv_nsec / 1000000;
}

double
vdb_now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double) ts.tv_sec + (double) ts.tv_nsec * 1e-9;
}

int
vdb_cond_init(pthread_cond_t *cv)
{
	pthread_condattr_t ca;
	int rv;

	if ((rv = pthread_condattr_init(&ca)) != 0)
		return rv;
	if ((rv = pthread_condattr_setclock(&ca, CLOCK_MONOTONIC)) == 0)
		rv = pthread_cond_init(cv, &ca);
	pthread_condattr_destroy(&ca);
	return rv;
}

struct timespec
vdb_deadline(uint64_t ms)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	ts.tv_sec += (time_t) (ms / 1000);
	ts.tv_nsec += (long) (ms % 1000) * 1000000L;
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	return ts;
}
