/* vdb_err.c: error names and the per-thread detail message. */
#include <stdio.h>
#include <string.h>

#include "vdb.h"

#define ERRMSG_MAX 512

/* The detail of the last failure on this thread. */
static _Thread_local char errmsg[ERRMSG_MAX];

static const char *const names[VECDB_ERR_COUNT] = {
	[VECDB_OK] = "success",
	[VECDB_EINVAL] = "invalid argument",
	[VECDB_EDIM] = "wrong vector dimension",
	[VECDB_ENOTFOUND] = "not found",
	[VECDB_EEXIST] = "already exists",
	[VECDB_ELOCKED] = "data dir is locked",
	[VECDB_EREADONLY] = "database is read-only",
	[VECDB_ECORRUPT] = "data is corrupt",
	[VECDB_EFULL] = "database map is full",
	[VECDB_ENOMEM] = "out of memory",
	[VECDB_EIO] = "I/O error",
	[VECDB_ECLOSED] = "database is closing",
	[VECDB_EINTERNAL] = "internal error",
	[VECDB_ETIMEDOUT] = "timed out",
	[VECDB_EUNAVAILABLE] = "unavailable",
};

const char *
vecdb_strerror(int err)
{
	if (err < 0 || err >= VECDB_ERR_COUNT)
		return "unknown error";
	return names[err];
}

const char *
vecdb_errmsg(void)
{
	return errmsg;
}

int
vdb_err(int code, const char *fmt, ...)
{
	char buf[ERRMSG_MAX];
	va_list ap;

	/* through a copy: the arguments may include vecdb_errmsg() */
	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	memcpy(errmsg, buf, sizeof(errmsg));
	return code;
}

void
vdb_err_clear(void)
{
	errmsg[0] = '\0';
}

void
vdb_err_save(char *buf, size_t len)
{
	snprintf(buf, len, "%s", errmsg);
}

void
vdb_err_restore(int code, const char *msg)
{
	(void) code;
	snprintf(errmsg, sizeof(errmsg), "%s", msg);
}
