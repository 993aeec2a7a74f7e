/*
 * proc.h: our binaries (`vecdb serve`, vecdb-node, vecdb-router) as child
 * processes of a check test: start with arguments, read the line they
 * print on stdout once they listen, stop, kill, start again on the same
 * arguments (and so the same data dir).
 *
 * Process hygiene. check forks a child per test, so a failing test must
 * not leak what it started. Three layers:
 * - every child gets PR_SET_PDEATHSIG(SIGKILL): it dies with the test;
 * - each running child is registered as a file proc-<pid>.pid in tu_base,
 *   and proc_add_fixture()'s unchecked teardown (which runs in the parent,
 *   even after a crash) kills whatever is still registered, provided its
 *   command line names tu_base (a recycled pid is left alone);
 * - data dirs live under tu_base, which that teardown removes.
 * The child's environment is the test's without VECDB_* (except
 * VECDB_LOG), so a developer's settings cannot change what a test sees;
 * proc_setenv adds variables on purpose.
 */
#ifndef TESTS_PROC_H
#define TESTS_PROC_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <check.h>

#define PROC_ARGS_MAX 40        /* argv entries of one child */
#define PROC_ENV_MAX 16         /* variables added by proc_setenv */
#define PROC_START_TIMEOUT_S 10 /* until the first stdout line */
#define PROC_STOP_TIMEOUT_S 10  /* SIGTERM to exit, then SIGKILL */

/* A child process. Zero it (or proc_init) before the first start. */
struct proc {
	pid_t pid;              /* 0 when not running */
	char *argv[PROC_ARGS_MAX + 1]; /* argv[0] is the binary (owned) */
	char *env[PROC_ENV_MAX + 1];   /* added "NAME=value" (owned) */
	char *log;              /* stderr, appended across restarts (owned) */
	char *pidfile;          /* registration for the fixture (owned) */
	int out_fd;             /* read end of its stdout, -1 when closed */
	char line[1024];        /* the first line it printed (last start) */
	char err[2048];         /* why proc_try_start failed */
};

/*
 * Add the unchecked fixture that creates tu_base and, at the end of the
 * TCase, kills any child still registered there and removes the tree.
 */
void proc_add_fixture(TCase *tc);

/* Copy argv (NULL-terminated, argv[0] the binary path) and the stderr
 * log path into p; nothing runs yet. Aborts the test past PROC_ARGS_MAX. */
void proc_init(struct proc *p, const char *const *argv, const char *log);

/* Append arguments (NULL-terminated) to p's argv. */
void proc_args_add(struct proc *p, const char *const *args);

/* Set the value after flag in p's argv (e.g. a port picked by the first
 * start, so that a restart binds it again); adds both when absent. */
void proc_arg_set(struct proc *p, const char *flag, const char *value);

/* Add "name=value" to the child's environment. */
void proc_setenv(struct proc *p, const char *name, const char *value);

/*
 * Fork and exec p's argv and wait up to PROC_START_TIMEOUT_S for its
 * first stdout line (into p->line). The pipe stays open until the child
 * is reaped, so that a later print does not meet SIGPIPE.
 * @return 0, or -1 with the reason (exit status, stderr tail) in p->err;
 *	nothing is left running on failure.
 */
int proc_try_start(struct proc *p);

/* proc_try_start, failing the test on error. */
void proc_start(struct proc *p);

/* The port after prefix (e.g. "rpc tcp://127.0.0.1:") in p->line, or 0. */
uint16_t proc_port(const struct proc *p, const char *prefix);

/*
 * SIGTERM, wait (SIGKILL after PROC_STOP_TIMEOUT_S). Returns the wait
 * status, or -1 when it had to be killed. Not running: returns 0.
 */
int proc_stop(struct proc *p);

/* proc_stop with the SIGKILL after @p ms instead. */
int proc_stop_in(struct proc *p, int ms);

/* proc_stop, failing the test unless the child exited 0: a clean
 * shutdown is part of the contract (under ASan, a non-zero exit is a
 * leak or error report). */
void proc_stop_ok(struct proc *p);

/*
 * Wait until every thread of @p pid shows stopped (after a SIGSTOP, which
 * the kernel delivers asynchronously): a test that stops a process to
 * see what the others do without it must not race its last steps. Fails
 * the test after @p ms.
 */
void proc_wait_stopped(pid_t pid, int ms);

/* SIGKILL and reap (a crash, for the tests that need one). */
void proc_kill(struct proc *p);

/* Stop (checked) and start again with the same argv. */
void proc_restart(struct proc *p);

/* Stop if running (unchecked), then free what p owns. */
void proc_free(struct proc *p);

/* Describe a wait status from proc_stop ("exited with status 0"). */
void proc_status_str(int status, char *buf, size_t len);

/* The last lines of p's stderr log (a static buffer). */
const char *proc_log_tail(const struct proc *p);

#endif
