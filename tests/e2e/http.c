/*
 * http.c: the end-to-end harness: `vecdb serve` child processes and a small
 * HTTP client on civetweb's client API. See http.h for the cleanup rules.
 */
#define _GNU_SOURCE
#include <civetweb.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "http.h"
#include "testutil.h"

#ifndef VECDB_BIN
#error "VECDB_BIN must name the vecdb server binary"
#endif

extern char **environ;

/* ===== Process registry (parent side) ===== */

/* Milliseconds on the monotonic clock. */
static uint64_t
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t) ts.tv_sec * 1000 + (uint64_t) ts.tv_nsec / 1000000;
}

/* Sleep for ms milliseconds. */
static void
sleep_ms(unsigned ms)
{
	struct timespec ts = { ms / 1000, (long) (ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
}

/*
 * Is pid still a server of ours? Its command line must mention base: a
 * recycled pid belongs to someone else and is left alone.
 */
static int
pid_is_ours(pid_t pid, const char *base)
{
	char path[64], cmd[8192];
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/cmdline", (int) pid);
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
		return 0;
	n = read(fd, cmd, sizeof(cmd) - 1);
	close(fd);
	if (n <= 0)
		return 0;   /* a zombie has an empty command line */
	for (ssize_t i = 0; i < n; i++)
		if (cmd[i] == '\0')
			cmd[i] = ' ';
	cmd[n] = '\0';
	return strstr(cmd, base) != NULL;
}

/*
 * Kill one registered server and wait (bounded) until it is gone. A
 * server whose test died is usually dying already (PR_SET_PDEATHSIG):
 * give it a moment before calling it a leftover.
 */
static void
reap_one(pid_t pid, const char *base)
{
	uint64_t deadline = now_ms() + 1000;

	while (pid_is_ours(pid, base) && now_ms() < deadline)
		sleep_ms(10);
	if (!pid_is_ours(pid, base))
		return;
	deadline = now_ms() + 5000;
	fprintf(stderr, "e2e: killing leftover server pid %d\n", (int) pid);
	kill(pid, SIGKILL);
	while (pid_is_ours(pid, base) && now_ms() < deadline) {
		waitpid(pid, NULL, WNOHANG); /* ours only under CK_FORK=no */
		sleep_ms(10);
	}
}

/* Kill every server still registered under tu_base. */
static void
reap_all(void)
{
	struct dirent *e;
	DIR *d;
	int pid;

	if (tu_base == NULL || (d = opendir(tu_base)) == NULL)
		return;
	while ((e = readdir(d)) != NULL)
		if (sscanf(e->d_name, "srv-%d.pid", &pid) == 1 && pid > 0)
			reap_one((pid_t) pid, tu_base);
	closedir(d);
}

/* Unchecked teardown: no server outlives its TCase. */
static void
base_teardown(void)
{
	reap_all();
	tu_base_teardown();
}

void
srv_add_fixture(TCase *tc)
{
	tcase_add_unchecked_fixture(tc, tu_base_setup, base_teardown);
}

/* ===== Starting ===== */

const char *
srv_log_tail(const struct srv *s)
{
	static char buf[2048];   /* check caps a failure message near 4 KiB */
	ssize_t n = 0;
	off_t size;
	int fd;

	buf[0] = '\0';
	if (s->log == NULL || (fd = open(s->log, O_RDONLY | O_CLOEXEC)) < 0)
		return buf;
	size = lseek(fd, 0, SEEK_END);
	if (size > (off_t) sizeof(buf) - 1)
		lseek(fd, size - (off_t) sizeof(buf) + 1, SEEK_SET);
	else
		lseek(fd, 0, SEEK_SET);
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	buf[n > 0 ? n : 0] = '\0';
	return buf;
}

/* The environment for the server: ours without VECDB_* except VECDB_LOG,
 * so that a developer's settings cannot change what a test sees. */
static char **
server_env(void)
{
	size_t n = 0, k = 0;
	char **env;

	while (environ[n] != NULL)
		n++;
	if ((env = calloc(n + 1, sizeof(*env))) == NULL)
		abort();
	for (size_t i = 0; i < n; i++)
		if (strncmp(environ[i], "VECDB_", 6) != 0 ||
		    strncmp(environ[i], "VECDB_LOG=", 10) == 0)
			env[k++] = environ[i];
	return env;
}

/* argv for exec: serve --data D --host 127.0.0.1 --port 0 args... */
static void
server_argv(const struct srv *s, const char **argv)
{
	size_t i = 0;

	argv[i++] = VECDB_BIN;
	argv[i++] = "serve";
	argv[i++] = "--data";
	argv[i++] = s->dir;
	argv[i++] = "--host";
	argv[i++] = "127.0.0.1";
	argv[i++] = "--port";
	argv[i++] = "0";
	for (size_t j = 0; s->args[j] != NULL; j++)
		argv[i++] = s->args[j];
	argv[i] = NULL;
}

/* In the forked child: wire stdout/stderr, arm the death signal, exec. */
static void
child_exec(const char **argv, char **envp, int out_w, const char *log,
    pid_t parent)
{
	int fd = open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);

	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (getppid() != parent)
		_exit(126);   /* the test died before the signal was armed */
	if (fd < 0 || dup2(out_w, STDOUT_FILENO) < 0 ||
	    dup2(fd, STDERR_FILENO) < 0)
		_exit(125);
	execve(argv[0], (char *const *) argv, envp);
	_exit(127);
}

/* Register the running server for the parent's cleanup. */
static void
pid_register(struct srv *s)
{
	int fd;

	free(s->pidfile);
	s->pidfile = NULL;
	if (tu_base == NULL || s->own_dir)
		return;
	if (asprintf(&s->pidfile, "%s/srv-%d.pid", tu_base, (int) s->pid) < 0)
		abort();
	if ((fd = open(s->pidfile, O_WRONLY | O_CREAT | O_CLOEXEC, 0644)) >= 0)
		close(fd);
}

/* Fork and exec the server with its stdout on a pipe. */
static int
spawn(struct srv *s)
{
	const char *argv[SRV_ARGS_MAX + 10];
	char **envp = server_env();
	pid_t parent = getpid();
	int p[2];

	server_argv(s, argv);
	if (pipe2(p, O_CLOEXEC) != 0) {
		snprintf(s->err, sizeof(s->err), "pipe: %s", strerror(errno));
		free(envp);
		return -1;
	}
	fflush(NULL);
	if ((s->pid = fork()) < 0) {
		snprintf(s->err, sizeof(s->err), "fork: %s", strerror(errno));
		close(p[0]);
		close(p[1]);
		free(envp);
		return -1;
	}
	if (s->pid == 0)
		child_exec(argv, envp, p[1], s->log, parent);
	free(envp);
	close(p[1]);
	s->out_fd = p[0];
	pid_register(s);
	return 0;
}

/* Describe how a child ended. */
static void
status_str(int st, char *buf, size_t len)
{
	if (WIFEXITED(st))
		snprintf(buf, len, "exited with status %d", WEXITSTATUS(st));
	else if (WIFSIGNALED(st))
		snprintf(buf, len, "killed by signal %d", WTERMSIG(st));
	else
		snprintf(buf, len, "ended with wait status 0x%x", st);
}

/* Forget the pid, its registration and its pipe (it has been reaped). */
static void
proc_forget(struct srv *s)
{
	if (s->pidfile != NULL)
		unlink(s->pidfile);
	free(s->pidfile);
	s->pidfile = NULL;
	if (s->out_fd >= 0)
		close(s->out_fd);
	s->out_fd = -1;
	s->pid = 0;
}

/* Kill and reap after a failed start. */
static void
start_abort(struct srv *s, const char *why)
{
	char st[64] = "still running: killed";
	int status;

	if (waitpid(s->pid, &status, WNOHANG) == s->pid)
		status_str(status, st, sizeof(st));
	else {
		kill(s->pid, SIGKILL);
		waitpid(s->pid, &status, 0);
	}
	snprintf(s->err, sizeof(s->err), "%s %s: %s (%s); its stderr:\n%s",
	    VECDB_BIN, "serve", why, st, srv_log_tail(s));
	proc_forget(s);
}

/* Parse "vecdb V: serving http[s]://127.0.0.1:PORT (data D)". */
static int
port_parse(const char *line, uint16_t *port)
{
	const char *p = strstr(line, "://127.0.0.1:");
	unsigned long v;
	char *end;

	if (p == NULL || strstr(line, "serving") == NULL)
		return -1;
	v = strtoul(p + 13, &end, 10);
	if (end == p + 13 || v == 0 || v > 65535)
		return -1;
	*port = (uint16_t) v;
	return 0;
}

/* Read the first stdout line within the start timeout; the port in it. */
static int
port_wait(struct srv *s)
{
	uint64_t deadline = now_ms() + SRV_START_TIMEOUT_S * 1000;
	char line[1024];
	size_t len = 0;

	while (len < sizeof(line) - 1) {
		struct pollfd pf = { s->out_fd, POLLIN, 0 };
		uint64_t now = now_ms();
		ssize_t n;

		if (now >= deadline) {
			start_abort(s, "no port line within the timeout");
			return -1;
		}
		if (poll(&pf, 1, (int) (deadline - now)) <= 0)
			continue;
		if ((n = read(s->out_fd, line + len, 1)) <= 0) {
			start_abort(s, "died before printing its port");
			return -1;
		}
		if (line[len++] == '\n')
			break;
	}
	line[len] = '\0';
	if (port_parse(line, &s->port) != 0 ||
	    (s->tls != (strstr(line, "https://") != NULL))) {
		start_abort(s, "printed an unexpected first line");
		fprintf(stderr, "e2e: first line: %s\n", line);
		return -1;
	}
	return 0;
}

/* Start the process for s (dir, log and args already set). */
static int
proc_start(struct srv *s)
{
	if (spawn(s) != 0)
		return -1;
	return port_wait(s);
}

int
srv_try_start(const char *const *extra_args, struct srv *out)
{
	struct srv *s = out;
	size_t n = 0;

	memset(s, 0, sizeof(*s));
	s->out_fd = -1;
	while (extra_args != NULL && extra_args[n] != NULL) {
		if (n == SRV_ARGS_MAX)
			ck_abort_msg("more than %d server arguments",
			    SRV_ARGS_MAX);
		if ((s->args[n] = strdup(extra_args[n])) == NULL)
			abort();
		if (strcmp(extra_args[n], "--tls-cert") == 0)
			s->tls = 1;
		n++;
	}
	s->own_dir = tu_base == NULL;
	s->dir = s->own_dir ? tu_tmpdir() : tu_subdir();
	if (asprintf(&s->log, "%s.log", s->dir) < 0)
		abort();
	return proc_start(s);
}

void
srv_start(const char *const *extra_args, struct srv *out)
{
	if (srv_try_start(extra_args, out) != 0)
		ck_abort_msg("cannot start the server: %s", out->err);
}

/* ===== Stopping ===== */

/* SIGTERM, bounded wait, SIGKILL. Returns the wait status. */
static int
proc_stop(struct srv *s)
{
	uint64_t deadline = now_ms() + SRV_STOP_TIMEOUT_S * 1000;
	int status = 0;
	pid_t r;

	kill(s->pid, SIGTERM);
	while ((r = waitpid(s->pid, &status, WNOHANG)) == 0 &&
	    now_ms() < deadline)
		sleep_ms(10);
	if (r == 0) {
		kill(s->pid, SIGKILL);
		waitpid(s->pid, &status, 0);
		status = -1;
	}
	proc_forget(s);
	return status;
}

/* Fail unless the wait status says exit 0. */
static void
stop_check(struct srv *s, int status)
{
	char st[64];

	if (status == -1)
		ck_abort_msg("the server did not stop within %d s of SIGTERM; "
		    "its stderr:\n%s", SRV_STOP_TIMEOUT_S, srv_log_tail(s));
	status_str(status, st, sizeof(st));
	ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0,
	    "the server %s after SIGTERM; its stderr:\n%s", st,
	    srv_log_tail(s));
}

/* Free what srv_try_start allocated; remove a dir outside tu_base. */
static void
srv_free(struct srv *s)
{
	if (s->own_dir) {
		tu_rmrf(s->dir);
		if (s->log != NULL)
			unlink(s->log);
	}
	free(s->dir);
	free(s->log);
	for (size_t i = 0; s->args[i] != NULL; i++)
		free(s->args[i]);
	memset(s, 0, sizeof(*s));
	s->out_fd = -1;
}

void
srv_stop(struct srv *s)
{
	int status;

	if (s->pid <= 0) {
		if (s->dir != NULL)
			srv_free(s);
		return;
	}
	status = proc_stop(s);
	if (!(status != -1 && WIFEXITED(status) && WEXITSTATUS(status) == 0)) {
		/* Report, then free: ck_abort does not return. */
		char log[2048];
		snprintf(log, sizeof(log), "%s", srv_log_tail(s));
		srv_free(s);
		ck_abort_msg("the server did not exit 0 after SIGTERM "
		    "(wait status %d); its stderr:\n%s", status, log);
	}
	srv_free(s);
}

void
srv_restart(struct srv *s)
{
	ck_assert_msg(s->pid > 0, "restart of a server that is not running");
	stop_check(s, proc_stop(s));
	if (proc_start(s) != 0)
		ck_abort_msg("cannot restart the server: %s", s->err);
}

/* ===== Client ===== */

/* Initialise civetweb (with TLS) once per process: check forks a child
 * per test, and the tests are single-threaded. */
static void
client_init(void)
{
	static pid_t inited_in;

	if (inited_in != getpid()) {
		/* A server may close in the middle of a body (413). */
		signal(SIGPIPE, SIG_IGN);
		mg_init_library(MG_FEATURES_TLS);
		inited_in = getpid();
	}
}

/* Connect to the server over HTTP or HTTPS (no certificate check). */
static struct mg_connection *
client_connect(struct srv *s, char *ebuf, size_t elen)
{
	struct mg_client_options o;

	if (!s->tls)
		return mg_connect_client("127.0.0.1", s->port, 0, ebuf, elen);
	memset(&o, 0, sizeof(o));
	o.host = "127.0.0.1";
	o.port = s->port;
	return mg_connect_client_secure(&o, ebuf, elen);
}

/* Does the NULL-terminated list hold a header named name? */
static int
has_header(const char *const *headers, const char *name)
{
	size_t n = strlen(name);

	for (size_t i = 0; headers != NULL && headers[i] != NULL; i++)
		if (strncasecmp(headers[i], name, n) == 0 &&
		    headers[i][n] == ':')
			return 1;
	return 0;
}

/* Send the request line, headers and body (a body sent with
 * Transfer-Encoding is already encoded by the caller). */
static int
req_send(struct mg_connection *c, struct srv *s, const char *method,
    const char *path, const void *body, size_t len, const char *ctype,
    const char *const *headers)
{
	if (mg_printf(c, "%s %s HTTP/1.1\r\nHost: 127.0.0.1:%u\r\n"
			 "Connection: close\r\n", method, path, s->port) <= 0)
		return -1;
	for (size_t i = 0; headers != NULL && headers[i] != NULL; i++)
		if (mg_printf(c, "%s\r\n", headers[i]) <= 0)
			return -1;
	if (ctype != NULL && mg_printf(c, "Content-Type: %s\r\n", ctype) <= 0)
		return -1;
	if ((body != NULL || strcmp(method, "POST") == 0 ||
		strcmp(method, "PUT") == 0) && !has_header(headers,
		    "Transfer-Encoding") &&
	    mg_printf(c, "Content-Length: %zu\r\n", len) <= 0)
		return -1;
	if (mg_printf(c, "\r\n") <= 0)
		return -1;
	/* The server may answer (413) and close before taking it all. */
	if (len > 0)
		(void) mg_write(c, body, len);
	return 0;
}

/* Read the whole body into out. */
static void
body_read(struct mg_connection *c, struct resp *out)
{
	size_t cap = 8192;
	int n;

	if ((out->body = malloc(cap)) == NULL)
		abort();
	for (;;) {
		if (cap - out->len < 4096) {
			cap *= 2;
			if ((out->body = realloc(out->body, cap)) == NULL)
				abort();
		}
		n = mg_read(c, out->body + out->len, cap - out->len - 1);
		if (n <= 0)
			break;
		out->len += (size_t) n;
	}
	out->body[out->len] = '\0';
}

/* Status, Content-Type, body and (for JSON) the parsed body. */
static void
resp_fill(struct mg_connection *c, struct resp *out)
{
	const struct mg_response_info *ri = mg_get_response_info(c);

	out->status = ri->status_code;
	for (int i = 0; i < ri->num_headers; i++)
		if (strcasecmp(ri->http_headers[i].name, "Content-Type") == 0)
			snprintf(out->ctype, sizeof(out->ctype), "%s",
			    ri->http_headers[i].value);
	body_read(c, out);
	if (strstr(out->ctype, "json") != NULL)
		out->json = json_loadb(out->body, out->len, 0, NULL);
}

int
http_req_raw(struct srv *s, const char *method, const char *path,
    const void *body, size_t len, const char *ctype,
    const char *const *headers, struct resp *out)
{
	struct mg_connection *c;
	char ebuf[256] = "";

	memset(out, 0, sizeof(*out));
	client_init();
	if ((c = client_connect(s, ebuf, sizeof(ebuf))) == NULL) {
		fprintf(stderr, "e2e: %s %s: cannot connect to port %u: %s\n",
		    method, path, s->port, ebuf);
		return -1;
	}
	if (req_send(c, s, method, path, body, len, ctype, headers) != 0 ||
	    mg_get_response(c, ebuf, sizeof(ebuf), HTTP_TIMEOUT_MS) < 0) {
		fprintf(stderr, "e2e: %s %s: no response: %s\n", method, path,
		    ebuf);
		mg_close_connection(c);
		return -1;
	}
	resp_fill(c, out);
	mg_close_connection(c);
	return 0;
}

int
http_req(struct srv *s, const char *method, const char *path,
    const char *json_body, const char *const *headers, struct resp *out)
{
	return http_req_raw(s, method, path, json_body,
	    json_body ? strlen(json_body) : 0,
	    json_body ? "application/json" : NULL, headers, out);
}

void
resp_free(struct resp *r)
{
	free(r->body);
	json_decref(r->json);
	memset(r, 0, sizeof(*r));
}
