/*
 * ctl_table.c: human output. Tables are collected whole and printed with
 * each column as wide as its widest cell (the last one unpadded, so long
 * payloads do not drag trailing spaces).
 */
#include <assert.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "api_json_text.h"
#include "ctl.h"
#include "vdb.h"

/* strdup that dies on OOM: a CLI that cannot hold its output stops. */
static char *
xstrdup(const char *s)
{
	char *d = strdup(s ? s : "-");

	if (d == NULL) {
		ctl_errorf("out of memory");
		exit(CTL_FAIL);
	}
	return d;
}

/* Append one row of t->ncols strings taken from ap. */
static void
row_add(struct ctl_table *t, va_list ap)
{
	char **cells = realloc(t->cells, (t->nrows + 1) * t->ncols *
	    sizeof(char *));

	if (cells == NULL) {
		ctl_errorf("out of memory");
		exit(CTL_FAIL);
	}
	t->cells = cells;
	for (size_t i = 0; i < t->ncols; i++)
		cells[t->nrows * t->ncols + i] = xstrdup(va_arg(ap,
		    const char *));
	t->nrows++;
}

void
ctl_table_init(struct ctl_table *t, size_t ncols, ...)
{
	va_list ap;

	assert(ncols >= 1 && ncols <= CTL_TABLE_COLS_MAX);
	t->ncols = ncols;
	t->nrows = 0;
	t->cells = NULL;
	va_start(ap, ncols);
	row_add(t, ap);
	va_end(ap);
}

void
ctl_table_row(struct ctl_table *t, ...)
{
	va_list ap;

	va_start(ap, t);
	row_add(t, ap);
	va_end(ap);
}

void
ctl_table_print(const struct ctl_table *t, FILE *f)
{
	size_t w[CTL_TABLE_COLS_MAX] = { 0 };

	for (size_t r = 0; r < t->nrows; r++)
		for (size_t i = 0; i < t->ncols; i++) {
			size_t n = strlen(t->cells[r * t->ncols + i]);
			w[i] = n > w[i] ? n : w[i];
		}
	for (size_t r = 0; r < t->nrows; r++) {
		for (size_t i = 0; i < t->ncols; i++) {
			const char *s = t->cells[r * t->ncols + i];
			if (i + 1 == t->ncols)
				fprintf(f, "%s\n", s);
			else
				fprintf(f, "%-*s  ", (int) w[i], s);
		}
	}
}

void
ctl_table_fini(struct ctl_table *t)
{
	for (size_t i = 0; i < t->nrows * t->ncols; i++)
		free(t->cells[i]);
	free(t->cells);
	t->cells = NULL;
	t->nrows = 0;
}

char *
ctl_json_dumps(const json_t *v)
{
	char *s = api_json_dumps(v, CTL_JSON_FLAGS);

	if (s != NULL)
		vdb_json_reals_shortest(s);
	return s;
}

char *
ctl_json_text(const json_t *v)
{
	char *s;

	if (v == NULL || json_is_null(v))
		return xstrdup("-");
	if (json_is_string(v) && !api_json_is_big(v))
		return xstrdup(json_string_value(v));
	if ((s = ctl_json_dumps(v)) == NULL) {
		ctl_errorf("out of memory");
		exit(CTL_FAIL);
	}
	return s;
}

void
ctl_print_json(const json_t *data)
{
	char *s = ctl_json_dumps(data);

	if (s == NULL) {
		ctl_errorf("out of memory");
		exit(CTL_FAIL);
	}
	printf("%s\n", s);
	free(s);
}
