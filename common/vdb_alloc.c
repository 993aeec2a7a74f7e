/* vdb_alloc.c: checked allocation with a failure hook for tests, and
 * whole small files read into memory. */
#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
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

/* ===== Whole files ===== */

int
vdb_file_read(const char *path, char **out)
{
	FILE *f = fopen(path, "rb");
	char *buf = NULL;
	size_t cap = 0, len = 0, n;

	if (f == NULL)
		return vdb_err(VECDB_EINVAL, "cannot read %s: %s", path,
		    strerror(errno));
	for (;;) {
		if (len + 4097 > cap) {
			char *nb = vdb_realloc(buf, cap ? cap * 2 : 8192);
			if (nb == NULL) {
				vdb_free(buf);
				fclose(f);
				return vdb_err(VECDB_ENOMEM, "out of memory");
			}
			buf = nb;
			cap = cap ? cap * 2 : 8192;
		}
		if ((n = fread(buf + len, 1, 4096, f)) == 0)
			break;
		len += n;
	}
	fclose(f);
	buf[len] = '\0';
	*out = buf;
	return VECDB_OK;
}
