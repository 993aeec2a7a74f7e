/*
 * http.h: the end-to-end harness: run `vecdb serve` as a child process and
 * talk to it over real HTTP (or HTTPS) with civetweb's client API.
 *
 * Process hygiene. A server is started from inside a test (check forks a
 * child per test), so a failing test must not leak it. Three layers:
 * - the server gets PR_SET_PDEATHSIG(SIGKILL): it dies with the test;
 * - each running server is registered as a file srv-<pid>.pid in tu_base,
 *   and srv_add_fixture()'s unchecked teardown (which runs in the parent,
 *   even after a crash) kills whatever is still registered;
 * - its data dir lives under tu_base, which that teardown removes.
 * Servers always bind 127.0.0.1.
 */
#ifndef E2E_HTTP_H
#define E2E_HTTP_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <check.h>

#define SRV_ARGS_MAX 16     /* extra arguments of one server */
#define SRV_START_TIMEOUT_S 10
#define SRV_STOP_TIMEOUT_S 10
#define HTTP_TIMEOUT_MS 60000

/* A running `vecdb serve`. */
struct srv {
	pid_t pid;              /* 0 when not running */
	uint16_t port;          /* the port it printed */
	int tls;                /* started with --tls-cert: talk HTTPS */
	int own_dir;            /* dir is outside tu_base: removed at stop */
	char *dir;              /* --data (owned) */
	char *log;              /* its stderr, kept across restarts (owned) */
	char *pidfile;          /* registration for srv_add_fixture (owned) */
	char *args[SRV_ARGS_MAX + 1]; /* extra args, NULL-terminated (owned) */
	int out_fd;             /* read end of its stdout, -1 when closed */
	char err[1024];         /* why srv_try_start failed */
};

/* A response. */
struct resp {
	int status;             /* HTTP status */
	char *body;             /* body bytes, NUL-terminated (owned) */
	size_t len;             /* body length without the NUL */
	char ctype[128];        /* Content-Type, "" if none */
	json_t *json;           /* parsed body when it is JSON, else NULL */
};

/*
 * Add the unchecked fixture that creates tu_base and, at the end of the
 * TCase, kills any server still registered there and removes the tree.
 */
void srv_add_fixture(TCase *tc);

/*
 * Start `VECDB_BIN serve --data <fresh dir> --host 127.0.0.1 --port 0
 * [extra_args]` (extra_args NULL-terminated, may be NULL) and wait up to
 * SRV_START_TIMEOUT_S for the line that names its port.
 * @return 0, or -1 with the reason (exit status, stderr tail) in out->err;
 *	nothing is left running on failure.
 */
int srv_try_start(const char *const *extra_args, struct srv *out);

/* srv_try_start, failing the test on error. */
void srv_start(const char *const *extra_args, struct srv *out);

/*
 * SIGTERM, wait (SIGKILL after SRV_STOP_TIMEOUT_S), and free s. Fails the
 * test unless the server exited 0: a clean shutdown is part of the
 * contract (and under ASan, a non-zero exit is a leak or error report).
 * Stopping a stopped srv does nothing.
 */
void srv_stop(struct srv *s);

/* Stop and start again on the same data dir and arguments. */
void srv_restart(struct srv *s);

/*
 * One request on a fresh connection. body may be NULL (no body); headers
 * is a NULL-terminated list of "Name: value" lines or NULL.
 * @return 0, or -1 when no HTTP response came (the reason is printed).
 *	On success the caller frees out with resp_free().
 */
int http_req(struct srv *s, const char *method, const char *path,
    const char *json_body, const char *const *headers, struct resp *out);

/* As http_req with any body bytes and Content-Type (NULL: none). */
int http_req_raw(struct srv *s, const char *method, const char *path,
    const void *body, size_t len, const char *ctype,
    const char *const *headers, struct resp *out);

void resp_free(struct resp *r);

/* The last lines of the server's stderr (static buffer). */
const char *srv_log_tail(const struct srv *s);

#endif
