/* bench_util.c: helpers shared by the vecdb-bench subcommands. */
#define _GNU_SOURCE
#include <ftw.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "bench.h"

double
bench_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double) ts.tv_sec + (double) ts.tv_nsec * 1e-9;
}

float
bench_randf(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return (float) ((double) (*s >> 11) / 9007199254740992.0 * 2 - 1);
}

int
bench_dcmp(const void *a, const void *b)
{
	double x = *(const double *) a, y = *(const double *) b;

	return x < y ? -1 : x > y;
}

void
bench_die(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(1);
}

void
bench_check(int rv, const char *what)
{
	if (rv != VECDB_OK)
		bench_die("%s: %s: %s", what, vecdb_strerror(rv), vecdb_errmsg());
}

char *
bench_tmpdir(void)
{
	char *d;

	if (asprintf(&d, "%s/vecdb-bench-XXXXXX",
		getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp") < 0 ||
	    mkdtemp(d) == NULL)
		bench_die("cannot create a temp dir");
	return d;
}

/* nftw callback: remove one entry. */
static int
rm_entry(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void) sb;
	(void) flag;
	(void) ftw;
	return remove(p);
}

void
bench_rmrf(const char *dir)
{
	nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}
