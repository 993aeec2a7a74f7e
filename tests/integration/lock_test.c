/*
 * lock_test.c: one writer per data dir, across processes and within one;
 * read-only handles in other processes see commits and refuse writes; the
 * lock dies with its holder.
 *
 * Each helper process is forked from the test and reports a fixed-size
 * struct over a pipe, then _exit()s: it never returns into check.
 */
#define _GNU_SOURCE
#include <check.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include "testutil.h"

#define DIM 4
#define MSG_LEN 512

/* What a helper process saw. Meaning of the slots depends on the helper. */
struct report {
	int rv[8];              /* return codes of its calls */
	uint64_t n[4];          /* counts */
	float vec[DIM];         /* a vector it read */
	char msg[2][MSG_LEN];   /* vecdb_errmsg() or a payload */
};

/* A forked helper process and its two pipes. */
struct child {
	pid_t pid;              /* its pid */
	int to;                 /* write end: parent -> child */
	int from;               /* read end: child -> parent */
};

typedef void (*child_fn)(const char *dir, int in, int out);

/* Write all of buf, retrying short writes; -1 on error. */
static int
write_full(int fd, const void *buf, size_t len)
{
	const char *p = buf;

	while (len > 0) {
		ssize_t n = write(fd, p, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		p += n;
		len -= (size_t) n;
	}
	return 0;
}

/* Read exactly len bytes; returns the bytes read (short on EOF). */
static size_t
read_full(int fd, void *buf, size_t len)
{
	char *p = buf;
	size_t got = 0;

	while (got < len) {
		ssize_t n = read(fd, p + got, len - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		got += (size_t) n;
	}
	return got;
}

/* In a helper: send a report to the parent, or die trying. */
static void
report_send(int out, const struct report *rep)
{
	if (write_full(out, rep, sizeof(*rep)) != 0)
		_exit(3);
}

/* In a helper: block until the parent writes one byte (or goes away). */
static void
wait_for_parent(int in)
{
	char c;

	(void) read_full(in, &c, 1);
}

/* Copy the thread's last error detail into a report slot. */
static void
msg_copy(char *dst, const char *src)
{
	snprintf(dst, MSG_LEN, "%s", src);
}

/* Options for a writable (read_only 0) or read-only open. */
static vecdb_options
opts_make(int read_only)
{
	vecdb_options o;

	vecdb_options_init(&o);
	o.read_only = read_only;
	o.map_size = 1ULL << 30;
	return o;
}

/* Fork a helper that runs fn(dir, ...) and then _exit(0)s. */
static struct child
child_start(child_fn fn, const char *dir)
{
	struct child c;
	int down[2], up[2];

	ck_assert_int_eq(pipe(down), 0);
	ck_assert_int_eq(pipe(up), 0);
	/*
	 * fork() copies only this thread: a lock another thread holds at that
	 * instant stays locked in the child for good. The database's indexer
	 * applies the writes just made on its own thread (allocating); if the
	 * fork lands then, the child can inherit a held allocator lock (seen
	 * under ASan: the child's indexer blocked in malloc forever). So let
	 * the background threads go idle first.
	 */
	if (tu_db != NULL)
		ck_assert_int_eq(vecdb_index_sync(tu_db, 30000), VECDB_OK);
	c.pid = fork();
	ck_assert_int_ge(c.pid, 0);
	if (c.pid == 0) {
		close(down[1]);
		close(up[0]);
		fn(dir, down[0], up[1]);
		_exit(0);
	}
	close(down[0]);
	close(up[1]);
	c.to = down[1];
	c.from = up[0];
	return c;
}

/* Read the helper's next report; fails the test if it died first. */
static void
child_report(struct child *c, struct report *rep)
{
	memset(rep, 0, sizeof(*rep));
	if (read_full(c->from, rep, sizeof(*rep)) != sizeof(*rep)) {
		kill(c->pid, SIGKILL);
		waitpid(c->pid, NULL, 0);
		ck_abort_msg("helper process %ld died before reporting",
		    (long) c->pid);
	}
}

/* Let a helper waiting in wait_for_parent() go on. */
static void
child_resume(struct child *c)
{
	ck_assert_int_eq(write_full(c->to, "g", 1), 0);
}

/* Reap a helper; returns its wait status. */
static int
child_reap(struct child *c)
{
	int status = 0;

	close(c->to);
	close(c->from);
	ck_assert_int_eq(waitpid(c->pid, &status, 0), c->pid);
	return status;
}

/* Reap a helper that must have exited with status 0. */
static void
child_finish(struct child *c)
{
	int status = child_reap(c);

	ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0,
	    "helper process %ld ended with wait status 0x%x", (long) c->pid,
	    status);
}

/* Fail unless msg names dir and says it is locked by pid. */
static void
assert_locked_msg(const char *msg, const char *dir, long pid)
{
	char want[64];

	snprintf(want, sizeof(want), "is locked by pid %ld", pid);
	ck_assert_msg(strstr(msg, want) != NULL, "'%s' lacks '%s'", msg, want);
	ck_assert_msg(strstr(msg, dir) != NULL, "'%s' lacks the dir '%s'",
	    msg, dir);
}

/* The vector of point id: a function of the id alone. */
static void
vec_of(uint64_t id, float *v)
{
	for (int j = 0; j < DIM; j++)
		v[j] = (float) id + (float) j / 8;
}

/* Upsert points first..last (inclusive) to "c" with payload {"id": id}. */
static void
put_range(vecdb *db, uint64_t first, uint64_t last)
{
	for (uint64_t id = first; id <= last; id++) {
		float v[DIM];
		char pay[64];
		vecdb_point p = { vecdb_id_num(id), v, DIM, pay };

		vec_of(id, v);
		snprintf(pay, sizeof(pay), "{\"id\":%llu}",
		    (unsigned long long) id);
		ck_assert_int_eq(vecdb_upsert(db, "c", &p, 1), VECDB_OK);
	}
}

/* The number of points in "c". */
static uint64_t
count_c(vecdb *db)
{
	uint64_t n = 0;

	ck_assert_int_eq(vecdb_count(db, "c", NULL, &n), VECDB_OK);
	return n;
}

/* Helper: try to open dir for writing; report the code and message. */
static void
try_write_open(const char *dir, int in, int out)
{
	vecdb_options o = opts_make(0);
	struct report rep;
	vecdb *db = NULL;

	(void) in;
	memset(&rep, 0, sizeof(rep));
	rep.rv[0] = vecdb_open(dir, &o, &db);
	msg_copy(rep.msg[0], vecdb_errmsg());
	if (rep.rv[0] == VECDB_OK)
		vecdb_close(db);
	report_send(out, &rep);
}

START_TEST(second_writer_in_another_process_gets_locked_error_naming_pid)
{
	struct child c = child_start(try_write_open, tu_dir);
	struct report rep;

	child_report(&c, &rep);
	child_finish(&c);
	ck_assert_msg(rep.rv[0] == VECDB_ELOCKED, "open gave %s (%s)",
	    vecdb_strerror(rep.rv[0]), rep.msg[0]);
	assert_locked_msg(rep.msg[0], tu_dir, (long) getpid());
}
END_TEST

/* Look at "c" (count, get 3) into rv[base..base+1], n/msg[base/2]. */
static void
look(vecdb *db, struct report *rep, int base)
{
	vecdb_id id = vecdb_id_num(3);
	vecdb_record *r = NULL;

	rep->rv[base] = vecdb_count(db, "c", NULL, &rep->n[base / 2]);
	rep->rv[base + 1] = vecdb_get(db, "c", &id, &r);
	if (rep->rv[base + 1] != VECDB_OK) {
		msg_copy(rep->msg[base / 2], vecdb_errmsg());
		return;
	}
	msg_copy(rep->msg[base / 2], r->payload);
	if (base == 0 && r->dim == DIM)
		memcpy(rep->vec, r->vector, sizeof(rep->vec));
	vecdb_record_free(r);
}

/* Helper: read-only look, wait for the parent, look again (same handle). */
static void
read_twice(const char *dir, int in, int out)
{
	vecdb_options o = opts_make(1);
	struct report rep;
	vecdb *db = NULL;

	memset(&rep, 0, sizeof(rep));
	rep.rv[7] = vecdb_open(dir, &o, &db);
	if (rep.rv[7] != VECDB_OK) {
		msg_copy(rep.msg[0], vecdb_errmsg());
		report_send(out, &rep);
		report_send(out, &rep);
		return;
	}
	look(db, &rep, 0);
	report_send(out, &rep);
	wait_for_parent(in);
	look(db, &rep, 2);
	report_send(out, &rep);
	vecdb_close(db);
}

/* Fail unless a look in slots base.. saw n points and point 3 intact. */
static void
assert_look(const struct report *rep, int base, uint64_t n)
{
	ck_assert_msg(rep->rv[7] == VECDB_OK, "read-only open: %s (%s)",
	    vecdb_strerror(rep->rv[7]), rep->msg[0]);
	ck_assert_int_eq(rep->rv[base], VECDB_OK);
	ck_assert_uint_eq(rep->n[base / 2], n);
	ck_assert_msg(rep->rv[base + 1] == VECDB_OK, "get 3: %s (%s)",
	    vecdb_strerror(rep->rv[base + 1]), rep->msg[base / 2]);
	ck_assert_str_eq(rep->msg[base / 2], "{\"id\":3}");
}

START_TEST(readers_in_another_process_see_commits_while_one_writes)
{
	struct report rep, rep2;
	struct child c1, c2;
	float v[DIM];

	tu_create(tu_db, "c", DIM, VECDB_EUCLIDEAN);
	put_range(tu_db, 1, 10);
	c1 = child_start(read_twice, tu_dir);
	child_report(&c1, &rep);
	assert_look(&rep, 0, 10);
	vec_of(3, v);
	ck_assert_mem_eq(rep.vec, v, sizeof(v));

	put_range(tu_db, 11, 25);
	ck_assert_uint_eq(count_c(tu_db), 25);
	child_resume(&c1);
	child_report(&c1, &rep);
	child_finish(&c1);
	assert_look(&rep, 2, 25); /* the open handle sees the new commit */

	c2 = child_start(read_twice, tu_dir);
	child_report(&c2, &rep2);
	assert_look(&rep2, 0, 25);
	child_resume(&c2);
	child_report(&c2, &rep2);
	child_finish(&c2);
}
END_TEST

/* Helper: open read-only and try every kind of write. */
static void
try_writes(const char *dir, int in, int out)
{
	vecdb_options o = opts_make(1);
	vecdb_collection_config cfg;
	float v[DIM] = { 0 };
	vecdb_point p = { vecdb_id_num(2), v, DIM, "{}" };
	vecdb_id id1 = vecdb_id_num(1);
	struct report rep;
	vecdb *db = NULL;
	uint64_t n = 0;

	(void) in;
	memset(&rep, 0, sizeof(rep));
	rep.rv[7] = vecdb_open(dir, &o, &db);
	if (rep.rv[7] != VECDB_OK) {
		msg_copy(rep.msg[0], vecdb_errmsg());
		report_send(out, &rep);
		return;
	}
	vecdb_collection_config_init(&cfg, "new", DIM, VECDB_COSINE);
	rep.rv[0] = vecdb_collection_create(db, &cfg);
	msg_copy(rep.msg[0], vecdb_errmsg());
	rep.rv[1] = vecdb_upsert(db, "c", &p, 1);
	msg_copy(rep.msg[1], vecdb_errmsg());
	rep.rv[2] = vecdb_delete(db, "c", &id1, 1, NULL);
	rep.rv[3] = vecdb_insert(db, "c", &p, 1);
	rep.rv[4] = vecdb_update(db, "c", &p, 1);
	rep.rv[5] = vecdb_collection_delete(db, "c");
	rep.rv[6] = vecdb_count(db, "c", NULL, &n);
	rep.n[0] = n;
	vecdb_close(db);
	report_send(out, &rep);
}

START_TEST(read_only_handle_refuses_writes)
{
	static const char *what[] = { "collection create", "upsert",
		"delete", "insert", "update", "collection delete" };
	struct child c;
	struct report rep;
	vecdb_record *r;
	vecdb_id id1 = vecdb_id_num(1);
	char **names;
	size_t nnames;

	tu_create(tu_db, "c", DIM, VECDB_EUCLIDEAN);
	put_range(tu_db, 1, 1);
	c = child_start(try_writes, tu_dir);
	child_report(&c, &rep);
	child_finish(&c);
	ck_assert_msg(rep.rv[7] == VECDB_OK, "read-only open: %s (%s)",
	    vecdb_strerror(rep.rv[7]), rep.msg[0]);
	for (int i = 0; i < 6; i++)
		ck_assert_msg(rep.rv[i] == VECDB_EREADONLY, "%s gave %s",
		    what[i], vecdb_strerror(rep.rv[i]));
	ck_assert_ptr_nonnull(strstr(rep.msg[1], "read-only"));
	ck_assert_int_eq(rep.rv[6], VECDB_OK); /* reads still work */
	ck_assert_uint_eq(rep.n[0], 1);

	ck_assert_uint_eq(count_c(tu_db), 1);
	ck_assert_int_eq(vecdb_get(tu_db, "c", &id1, &r), VECDB_OK);
	ck_assert_str_eq(r->payload, "{\"id\":1}");
	vecdb_record_free(r);
	ck_assert_int_eq(vecdb_collection_list(tu_db, &names, &nnames),
	    VECDB_OK);
	ck_assert_uint_eq(nnames, 1);
	ck_assert_str_eq(names[0], "c");
	vecdb_names_free(names, nnames);
}
END_TEST

/* Helper: open for writing, write one point, report, then hang. */
static void
write_and_hang(const char *dir, int in, int out)
{
	vecdb_options o = opts_make(0);
	float v[DIM] = { 1, 2, 3, 4 };
	vecdb_point p = { vecdb_id_num(99), v, DIM, "{\"by\":\"child\"}" };
	struct report rep;
	vecdb *db = NULL;

	memset(&rep, 0, sizeof(rep));
	o.durability = VECDB_SYNC;
	rep.rv[0] = vecdb_open(dir, &o, &db);
	msg_copy(rep.msg[0], vecdb_errmsg());
	if (rep.rv[0] == VECDB_OK) {
		rep.rv[1] = vecdb_upsert(db, "c", &p, 1);
		msg_copy(rep.msg[1], vecdb_errmsg());
	}
	(void) in;
	report_send(out, &rep);
	for (;;)
		pause(); /* until the parent kills it */
}

START_TEST(lock_is_released_on_close_and_on_crash)
{
	vecdb_options o = opts_make(0);
	char *dir = tu_subdir();
	struct report rep;
	vecdb *db = NULL;
	struct child c;
	int status;

	db = tu_open(dir);
	tu_create(db, "c", DIM, VECDB_EUCLIDEAN);
	vecdb_close(db);

	c = child_start(try_write_open, dir);
	child_report(&c, &rep);
	child_finish(&c);
	ck_assert_msg(rep.rv[0] == VECDB_OK, "open after close: %s (%s)",
	    vecdb_strerror(rep.rv[0]), rep.msg[0]);

	c = child_start(write_and_hang, dir);
	child_report(&c, &rep);
	if (rep.rv[0] != VECDB_OK || rep.rv[1] != VECDB_OK) {
		kill(c.pid, SIGKILL);
		child_reap(&c);
		ck_abort_msg("helper: open %s, upsert %s (%s%s)",
		    vecdb_strerror(rep.rv[0]), vecdb_strerror(rep.rv[1]),
		    rep.msg[0], rep.msg[1]);
	}
	ck_assert_int_eq(vecdb_open(dir, &o, &db), VECDB_ELOCKED);
	assert_locked_msg(vecdb_errmsg(), dir, (long) c.pid);
	ck_assert_int_eq(kill(c.pid, SIGKILL), 0);
	status = child_reap(&c);
	ck_assert(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);

	ck_assert_msg(vecdb_open(dir, &o, &db) == VECDB_OK,
	    "open after the holder was killed: %s", vecdb_errmsg());
	ck_assert_uint_eq(count_c(db), 1); /* its acknowledged write stays */
	vecdb_close(db);
	free(dir);
}
END_TEST

START_TEST(same_process_second_open_is_refused)
{
	vecdb_options o = opts_make(0);
	vecdb *db = NULL;
	char *alias;

	ck_assert_int_eq(vecdb_open(tu_dir, &o, &db), VECDB_ELOCKED);
	ck_assert_ptr_null(db);
	assert_locked_msg(vecdb_errmsg(), tu_dir, (long) getpid());
	/* the lock is on the dir, not on the spelling of its path */
	ck_assert_int_ge(asprintf(&alias, "%s/./", tu_dir), 0);
	ck_assert_int_eq(vecdb_open(alias, &o, &db), VECDB_ELOCKED);
	ck_assert_ptr_null(db);
	free(alias);
	/* the refused open left the first handle whole */
	tu_create(tu_db, "c", DIM, VECDB_EUCLIDEAN);
	put_range(tu_db, 1, 3);
	ck_assert_uint_eq(count_c(tu_db), 3);
}
END_TEST

START_TEST(read_only_open_of_missing_dir_is_not_found)
{
	vecdb_options o = opts_make(1);
	vecdb *db = NULL;
	struct stat st;
	char *missing, *empty = tu_subdir();

	ck_assert_int_ge(asprintf(&missing, "%s/missing", tu_base), 0);
	ck_assert_int_eq(vecdb_open(missing, &o, &db), VECDB_ENOTFOUND);
	ck_assert_ptr_null(db);
	ck_assert_msg(stat(missing, &st) != 0 && errno == ENOENT,
	    "a read-only open created %s", missing);
	/* an existing dir with no database in it is missing too */
	ck_assert_int_eq(vecdb_open(empty, &o, &db), VECDB_ENOTFOUND);
	ck_assert_ptr_null(db);
	free(missing);
	free(empty);
}
END_TEST

/* A TCase for one behaviour; with_db adds the per-test database. */
static TCase *
tcase_for(const char *name, int with_db)
{
	TCase *tc = tcase_create(name);

	tcase_set_timeout(tc, 60);
	if (with_db)
		tu_add_db_fixture(tc);
	else
		tcase_add_unchecked_fixture(tc, tu_base_setup,
		    tu_base_teardown);
	return tc;
}

/* The lock suite: one TCase per behaviour. */
static Suite *
lock_suite(void)
{
	Suite *s = suite_create("lock");
	TCase *tc;

	tc = tcase_for("cross-process writer lock", 1);
	tcase_add_test(tc,
	    second_writer_in_another_process_gets_locked_error_naming_pid);
	suite_add_tcase(s, tc);
	tc = tcase_for("read-only readers see commits", 1);
	tcase_add_test(tc,
	    readers_in_another_process_see_commits_while_one_writes);
	suite_add_tcase(s, tc);
	tc = tcase_for("read-only handles", 1);
	tcase_add_test(tc, read_only_handle_refuses_writes);
	suite_add_tcase(s, tc);
	tc = tcase_for("lock release", 0);
	tcase_add_test(tc, lock_is_released_on_close_and_on_crash);
	suite_add_tcase(s, tc);
	tc = tcase_for("in-process writer lock", 1);
	tcase_add_test(tc, same_process_second_open_is_refused);
	suite_add_tcase(s, tc);
	tc = tcase_for("missing database", 0);
	tcase_add_test(tc, read_only_open_of_missing_dir_is_not_found);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	return tu_run(lock_suite());
}
