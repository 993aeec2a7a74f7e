/* vdb_alloc.c: checked allocation with a failure hook for tests. */
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "vdb.h"

/* Allocations left before one fails; 0 means never fail. */
static _Atomic uint64_t fail_countdown;

/* True when the failure hook says this allocation must fail. */
static int
should_fail(void)
{
	uint64_t n = atomic_load(&fail_countdown);

	while (n != 0) {
		if (atomic_compare_exchange_weak(&fail_countdown, &n, n - 1))
			return n == 1;
	}
	return 0;
}

void
vdb_alloc_fail_after(uint64_t n)
{
	atomic_store(&fail_countdown, n);
}

void *
vdb_malloc(size_t n)
{
	return should_fail() ? NULL : malloc(n ? n : 1);
}

void *
vdb_calloc(size_t count, size_t size)
{
	return should_fail() ? NULL : calloc(count ? count : 1, size ? size : 1);
}

void *
vdb_realloc(void *p, size_t n)
{
	return should_fail() ? NULL : realloc(p, n ? n : 1);
}

char *
vdb_strdup(const char *s)
{
	size_t n = strlen(s) + 1;
	char *d = vdb_malloc(n);

	if (d != NULL)
		memcpy(d, s, n);
	return d;
}

void
vdb_free(void *p)
{
	free(p);
}
