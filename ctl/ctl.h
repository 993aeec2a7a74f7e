/*
 * ctl.h: vecdbctl, the admin CLI. It speaks only the REST API (docs/API.md)
 * through libcurl, so it works the same against `vecdb serve` and
 * `vecdb-router`. docs/CTL.md describes the commands.
 *
 * Exit codes: CTL_OK, CTL_FAIL (the server said no, the server could not
 * be reached, or the input was bad) and CTL_USAGE (the command line).
 */
#ifndef CTL_H
#define CTL_H

#include <jansson.h>
#include <stddef.h>
#include <stdio.h>

#define CTL_OK 0
#define CTL_FAIL 1
#define CTL_USAGE 2

#define CTL_DEFAULT_URL "http://127.0.0.1:8080"
#define CTL_TIMEOUT_S_DEFAULT 60
#define CTL_BATCH_DEFAULT 1000
#define CTL_BATCH_MAX 100000      /* the server's VECDB_BATCH_MAX */

/* How jansson prints what we print: its 17 digits a real, which
 * ctl_json_dumps() then cuts to the fewest that read back the same, so a
 * real prints as the server sent it (a payload's 1.23456789012345, a
 * score's 0.123456791) and a request's as it was given. */
#define CTL_JSON_FLAGS (JSON_COMPACT | JSON_ENCODE_ANY)

/* The connection and the global flags; one per process. */
struct ctl {
	const char *url;          /* base URL, no trailing slash needed */
	const char *api_key;      /* NULL: none */
	int json;                 /* --json: print the server's data */
	long timeout_s;           /* per request */
	void *curl;               /* CURL *, kept for keep-alive */
};

/* ===== HTTP (ctl_http.c) ===== */

/* Open the curl handle. CTL_OK or CTL_FAIL (message printed). */
int ctl_open(struct ctl *c);
void ctl_close(struct ctl *c);

/*
 * One request: @p path is relative to the base URL ("collections/x"),
 * @p body is sent as JSON when not NULL (borrowed). On success *data is
 * the envelope's data (new reference, caller decrefs). Otherwise prints
 * "vecdbctl: CODE: message" (or why the URL could not be reached) and
 * returns CTL_FAIL.
 */
int ctl_call(struct ctl *c, const char *method, const char *path,
    const json_t *body, json_t **data);

/* ctl_call with a body already in JSON text (@p len bytes, borrowed;
 * NULL: none). */
int ctl_call_text(struct ctl *c, const char *method, const char *path,
    const char *body, size_t len, json_t **data);

/* A path segment escaped for a URL (caller frees with free()). */
char *ctl_escape(struct ctl *c, const char *seg);

/* ===== Output (ctl_table.c) ===== */

#define CTL_TABLE_COLS_MAX 16

/* A table printed with aligned columns; cells are copied. A CLI that
 * cannot hold its output has nothing better to do than stop: allocation
 * failures exit with CTL_FAIL. */
struct ctl_table {
	size_t ncols;             /* 1..CTL_TABLE_COLS_MAX */
	size_t nrows;             /* rows added, the header included */
	char **cells;             /* nrows * ncols */
};

void ctl_table_init(struct ctl_table *t, size_t ncols, ...);
/* Add a row of ncols strings (NULL prints as "-"). */
void ctl_table_row(struct ctl_table *t, ...);
void ctl_table_print(const struct ctl_table *t, FILE *f);
void ctl_table_fini(struct ctl_table *t);

/* A JSON value as compact text, its reals in their fewest digits (caller
 * frees; NULL: out of memory). */
char *ctl_json_dumps(const json_t *v);
/* The same, strings without quotes, exits when out of memory. */
char *ctl_json_text(const json_t *v);
/* Print data as the server's JSON, one line. */
void ctl_print_json(const json_t *data);

/* Print "vecdbctl: " and the message to stderr. */
void ctl_errorf(const char *fmt, ...)
    __attribute__((format(printf, 1, 2)));

/* ===== Commands (ctl_cmds.c, ctl_import.c) ===== */

/* Each takes the words after its name (argv[0] is the command name, as
 * getopt expects) and returns an exit code. */
int ctl_cluster(struct ctl *c, int argc, char **argv);
int ctl_collections(struct ctl *c, int argc, char **argv);
int ctl_snapshot(struct ctl *c, int argc, char **argv);
int ctl_search(struct ctl *c, int argc, char **argv);
int ctl_points(struct ctl *c, int argc, char **argv);
int ctl_promote(struct ctl *c, int argc, char **argv);

/* A usage error: prints the message and the usage line, returns
 * CTL_USAGE. */
int ctl_usage_error(const char *usage, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Parse a positive integer option in [lo, hi]; CTL_USAGE on error. */
int ctl_parse_long(const char *usage, const char *what, const char *s,
    long lo, long hi, long *out);

#endif /* CTL_H */
