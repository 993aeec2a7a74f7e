/*
 * proc.c: our binaries as child processes of a test. See proc.h for the
 * cleanup rules.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "proc.h"
#include "testutil.h"

extern char **environ;

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

/* strdup or abort: a test has no use for an allocation failure. */
static char *
xstrdup(const char *s)
{
	char *d = strdup(s);

	if (d == NULL)
		abort();
	return d;
}

/* ===== Registry (parent side) ===== */

/*
 * Is pid still a child of ours? Its command line must mention base: a
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
 * Kill one registered child and wait (bounded) until it is gone. A child
 * whose test died is usually dying already (PR_SET_PDEATHSIG): give it a
 * moment before calling it a leftover.
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
	fprintf(stderr, "proc: killing leftover child pid %d\n", (int) pid);
	kill(pid, SIGKILL);
	while (pid_is_ours(pid, base) && now_ms() < deadline) {
		waitpid(pid, NULL, WNOHANG); /* ours only under CK_FORK=no */
		sleep_ms(10);
	}
}

/* Kill every child still registered under tu_base. */
static void
reap_all(void)
{
	struct dirent *e;
	DIR *d;
	int pid;

	if (tu_base == NULL || (d = opendir(tu_base)) == NULL)
		return;
	while ((e = readdir(d)) != NULL)
		if (sscanf(e->d_name, "proc-%d.pid", &pid) == 1 && pid > 0)
			reap_one((pid_t) pid, tu_base);
	closedir(d);
}

/* Unchecked teardown: no child outlives its TCase. */
static void
base_teardown(void)
{
	reap_all();
	tu_base_teardown();
}

void
proc_add_fixture(TCase *tc)
{
	tcase_add_unchecked_fixture(tc, tu_base_setup, base_teardown);
}

/* Register the running child for the parent's cleanup. Without tu_base
 * (a caller outside the fixture) there is nothing to register in. */
static void
pid_register(struct proc *p)
{
	int fd;

	free(p->pidfile);
	p->pidfile = NULL;
	if (tu_base == NULL)
		return;
	if (asprintf(&p->pidfile, "%s/proc-%d.pid", tu_base, (int) p->pid) < 0)
		abort();
	if ((fd = open(p->pidfile, O_WRONLY | O_CREAT | O_CLOEXEC, 0644)) >= 0)
		close(fd);
}

/* Forget the pid, its registration and its pipe (it has been reaped). */
static void
proc_forget(struct proc *p)
{
	if (p->pidfile != NULL)
		unlink(p->pidfile);
	free(p->pidfile);
	p->pidfile = NULL;
	if (p->out_fd >= 0)
		close(p->out_fd);
	p->out_fd = -1;
	p->pid = 0;
}

/* ===== Arguments ===== */

void
proc_init(struct proc *p, const char *const *argv, const char *log)
{
	memset(p, 0, sizeof(*p));
	p->out_fd = -1;
	p->log = xstrdup(log);
	proc_args_add(p, argv);
}

void
proc_args_add(struct proc *p, const char *const *args)
{
	size_t n = 0;

	while (p->argv[n] != NULL)
		n++;
	for (; args != NULL && *args != NULL; args++) {
		if (n == PROC_ARGS_MAX)
			ck_abort_msg("more than %d arguments for %s",
			    PROC_ARGS_MAX, p->argv[0]);
		p->argv[n++] = xstrdup(*args);
	}
}

void
proc_arg_set(struct proc *p, const char *flag, const char *value)
{
	for (size_t i = 0; p->argv[i] != NULL; i++)
		if (strcmp(p->argv[i], flag) == 0 && p->argv[i + 1] != NULL) {
			free(p->argv[i + 1]);
			p->argv[i + 1] = xstrdup(value);
			return;
		}
	proc_args_add(p, (const char *const[]) { flag, value, NULL });
}

void
proc_setenv(struct proc *p, const char *name, const char *value)
{
	size_t n = 0;

	while (p->env[n] != NULL)
		n++;
	if (n == PROC_ENV_MAX)
		ck_abort_msg("more than %d variables for %s", PROC_ENV_MAX,
		    p->argv[0]);
	if (asprintf(&p->env[n], "%s=%s", name, value) < 0)
		abort();
}

/* The child's environment: ours without VECDB_* except VECDB_LOG, then
 * p's own additions. The strings are borrowed; free the array. */
static char **
child_env(const struct proc *p)
{
	size_t n = 0, k = 0;
	char **env;

	while (environ[n] != NULL)
		n++;
	if ((env = calloc(n + PROC_ENV_MAX + 1, sizeof(*env))) == NULL)
		abort();
	for (size_t i = 0; i < n; i++)
		if (strncmp(environ[i], "VECDB_", 6) != 0 ||
		    strncmp(environ[i], "VECDB_LOG=", 10) == 0)
			env[k++] = environ[i];
	for (size_t i = 0; p->env[i] != NULL; i++)
		env[k++] = p->env[i];
	return env;
}

/* ===== Stopped ===== */

/* A process that would not stop: its threads' stacks on our stderr (with
 * gdb, when there is one), so that the test's output says where it hung. */
static void
stacks_dump(pid_t pid)
{
	char cmd[256];

	fprintf(stderr, "proc: pid %d did not stop; its threads:\n",
	    (int) pid);
	fflush(stderr);
	snprintf(cmd, sizeof(cmd), "command -v gdb >/dev/null && gdb -p %d "
	    "-batch -ex 'thread apply all bt' 2>/dev/null </dev/null | "
	    "grep -E '^(Thread|#)' >&2", (int) pid);
	if (system(cmd) != 0)
		fprintf(stderr, "proc: (no gdb: no stacks)\n");
}

/* Is the task whose stat file is path stopped ('T' or 't')? */
static int
task_stopped(const char *path)
{
	char buf[512], *p;
	FILE *f = fopen(path, "r");

	if (f == NULL)
		return 1;  /* gone: it runs nothing */
	p = fgets(buf, sizeof(buf), f);
	fclose(f);
	/* the state follows the ") " closing the name */
	return p != NULL && (p = strrchr(buf, ')')) != NULL &&
	    (p[2] == 'T' || p[2] == 't');
}

void
proc_wait_stopped(pid_t pid, int ms)
{
	uint64_t end = now_ms() + (uint64_t) ms;
	char dir[64], path[384];

	snprintf(dir, sizeof(dir), "/proc/%d/task", (int) pid);
	for (;;) {
		DIR *d = opendir(dir);
		struct dirent *e;
		int all = d != NULL;

		while (all && (e = readdir(d)) != NULL) {
			if (e->d_name[0] == '.')
				continue;
			snprintf(path, sizeof(path), "%s/%s/stat", dir,
			    e->d_name);
			all = task_stopped(path);
		}
		if (d != NULL)
			closedir(d);
		if (all)
			return;
		ck_assert_msg(now_ms() < end, "pid %d never stopped within "
		    "%d ms", (int) pid, ms);
		usleep(1000);
	}
}

/* ===== Starting ===== */

const char *
proc_log_tail(const struct proc *p)
{
	static char buf[2048];   /* check caps a failure message near 4 KiB */
	ssize_t n = 0;
	off_t size;
	int fd;

	buf[0] = '\0';
	if (p->log == NULL || (fd = open(p->log, O_RDONLY | O_CLOEXEC)) < 0)
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

/* In the forked child: wire stdout/stderr, arm the death signal, exec. */
static void
child_exec(char *const *argv, char **envp, int out_w, const char *log,
    pid_t parent)
{
	int fd = open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);

	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (getppid() != parent)
		_exit(126);   /* the test died before the signal was armed */
	if (fd < 0 || dup2(out_w, STDOUT_FILENO) < 0 ||
	    dup2(fd, STDERR_FILENO) < 0)
		_exit(125);
	execve(argv[0], argv, envp);
	_exit(127);
}

/* Fork and exec p's argv with its stdout on a pipe. */
static int
spawn(struct proc *p)
{
	char **envp = child_env(p);
	pid_t parent = getpid();
	int fds[2];

	if (pipe2(fds, O_CLOEXEC) != 0) {
		snprintf(p->err, sizeof(p->err), "pipe: %s", strerror(errno));
		free(envp);
		return -1;
	}
	fflush(NULL);
	if ((p->pid = fork()) < 0) {
		snprintf(p->err, sizeof(p->err), "fork: %s", strerror(errno));
		p->pid = 0;
		close(fds[0]);
		close(fds[1]);
		free(envp);
		return -1;
	}
	if (p->pid == 0)
		child_exec(p->argv, envp, fds[1], p->log, parent);
	free(envp);
	close(fds[1]);
	p->out_fd = fds[0];
	pid_register(p);
	return 0;
}

void
proc_status_str(int st, char *buf, size_t len)
{
	if (st == -1)
		snprintf(buf, len, "did not stop within %d s of SIGTERM",
		    PROC_STOP_TIMEOUT_S);
	else if (WIFEXITED(st))
		snprintf(buf, len, "exited with status %d", WEXITSTATUS(st));
	else if (WIFSIGNALED(st))
		snprintf(buf, len, "killed by signal %d", WTERMSIG(st));
	else
		snprintf(buf, len, "ended with wait status 0x%x", st);
}

/* Kill and reap after a failed start; the reason into p->err. */
static void
start_abort(struct proc *p, const char *why)
{
	char st[64] = "still running: killed";
	int status;

	if (waitpid(p->pid, &status, WNOHANG) == p->pid)
		proc_status_str(status, st, sizeof(st));
	else {
		kill(p->pid, SIGKILL);
		waitpid(p->pid, &status, 0);
	}
	snprintf(p->err, sizeof(p->err), "%s: %s (%s); its stderr:\n%s",
	    p->argv[0], why, st, proc_log_tail(p));
	proc_forget(p);
}

/* Read the first stdout line within the start timeout into p->line. */
static int
line_wait(struct proc *p)
{
	uint64_t deadline = now_ms() + PROC_START_TIMEOUT_S * 1000;
	size_t len = 0;

	while (len < sizeof(p->line) - 1) {
		struct pollfd pf = { p->out_fd, POLLIN, 0 };
		uint64_t now = now_ms();
		ssize_t n;

		if (now >= deadline) {
			start_abort(p, "no first line within the timeout");
			return -1;
		}
		if (poll(&pf, 1, (int) (deadline - now)) <= 0)
			continue;
		if ((n = read(p->out_fd, p->line + len, 1)) <= 0) {
			start_abort(p, "died before printing its first line");
			return -1;
		}
		if (p->line[len++] == '\n')
			break;
	}
	p->line[len] = '\0';
	return 0;
}

int
proc_try_start(struct proc *p)
{
	ck_assert_msg(p->pid == 0, "%s is already running", p->argv[0]);
	p->line[0] = '\0';
	p->err[0] = '\0';
	if (spawn(p) != 0)
		return -1;
	return line_wait(p);
}

void
proc_start(struct proc *p)
{
	if (proc_try_start(p) != 0)
		ck_abort_msg("cannot start: %s", p->err);
}

uint16_t
proc_port(const struct proc *p, const char *prefix)
{
	const char *s = strstr(p->line, prefix);
	unsigned long v;
	char *end;

	if (s == NULL)
		return 0;
	s += strlen(prefix);
	v = strtoul(s, &end, 10);
	if (end == s || v > 65535)
		return 0;
	return (uint16_t) v;
}

/* ===== Stopping ===== */

int
proc_stop(struct proc *p)
{
	return proc_stop_in(p, PROC_STOP_TIMEOUT_S * 1000);
}

int
proc_stop_in(struct proc *p, int ms)
{
	uint64_t deadline = now_ms() + (uint64_t) ms;
	int status = 0;
	pid_t r;

	if (p->pid <= 0)
		return 0;
	kill(p->pid, SIGTERM);
	while ((r = waitpid(p->pid, &status, WNOHANG)) == 0 &&
	    now_ms() < deadline)
		sleep_ms(10);
	if (r == 0) {
		stacks_dump(p->pid);
		kill(p->pid, SIGKILL);
		waitpid(p->pid, &status, 0);
		status = -1;
	}
	proc_forget(p);
	return status;
}

void
proc_stop_ok(struct proc *p)
{
	int status = proc_stop(p);
	char st[64];

	if (status != -1 && WIFEXITED(status) && WEXITSTATUS(status) == 0)
		return;
	proc_status_str(status, st, sizeof(st));
	ck_abort_msg("%s %s after SIGTERM; its stderr:\n%s", p->argv[0], st,
	    proc_log_tail(p));
}

void
proc_kill(struct proc *p)
{
	if (p->pid <= 0)
		return;
	kill(p->pid, SIGKILL);
	waitpid(p->pid, NULL, 0);
	proc_forget(p);
}

void
proc_restart(struct proc *p)
{
	ck_assert_msg(p->pid > 0, "restart of %s, which is not running",
	    p->argv[0]);
	proc_stop_ok(p);
	if (proc_try_start(p) != 0)
		ck_abort_msg("cannot restart: %s", p->err);
}

void
proc_free(struct proc *p)
{
	(void) proc_stop(p);
	for (size_t i = 0; p->argv[i] != NULL; i++)
		free(p->argv[i]);
	for (size_t i = 0; p->env[i] != NULL; i++)
		free(p->env[i]);
	free(p->log);
	memset(p, 0, sizeof(*p));
	p->out_fd = -1;
}
