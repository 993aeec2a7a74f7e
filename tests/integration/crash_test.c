/*
 * crash_test.c: SIGKILL a writer in VECDB_SYNC mode at random moments; every
 * acknowledged write survives and no write is half applied.
 *
 * Each round forks a child that opens the data dir and writes batches until
 * it is killed. A batch is one upsert (new points, plus some rewrites of the
 * previous batch's points) and sometimes one delete of an older point; both
 * are pure functions of (seed, round, batch), so the parent can recompute
 * them. Before each call the child announces it over a pipe (BEGIN) and
 * after VECDB_OK it acknowledges it (DONE). After the kill the parent
 * replays the acknowledged calls into its model, decides from the data
 * whether the one announced-but-unacknowledged call landed (it must have
 * landed whole or not at all), and then compares the whole collection with
 * the model.
 *
 * Every open indexes with INDEX_THREADS threads and checkpoints every
 * second, so the kills land while a pool inserts and checkpoints are
 * written behind it; after each reopen the index must catch up to exactly
 * the model's live points (a checkpoint covering an insert that had not
 * finished would leave one out; a retirement applied before its insert
 * would leave one in).
 */
#define _GNU_SOURCE
#include <check.h>
#include <errno.h>
#include <jansson.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "testutil.h"

#define COLL "crash"
#define DIM 16
#define ROUNDS 24
#define MAX_BATCHES 160           /* per round: bounds the model (and the
				     verify time) on fast disks */
#define MIN_SIZE 20               /* new points per batch: 20..200 */
#define MAX_SIZE 200
#define MAX_REWRITE 5             /* rewrites of the previous batch */
/* Point i of a batch has id round*ID_ROUND + batch*ID_BATCH + i. */
#define ID_ROUND 1000000ULL
#define ID_BATCH 1000ULL
#define OPEN_TIMEOUT_MS 30000     /* the child must open within this */
#define SCROLL_PAGE 1024
#define INDEX_THREADS 4           /* more than the cores of a small CI box */

/* What the child says over the pipe. One write() per message. */
enum msg_kind {
	MSG_OPENED = 1,           /* the database is open */
	MSG_BEGIN,                /* about to call op for batch */
	MSG_DONE,                 /* op for batch returned VECDB_OK */
	MSG_FAIL                  /* a call failed; arg is its code */
};

enum op_kind {
	OP_OPEN = 0,              /* only in MSG_FAIL */
	OP_UPSERT,                /* the batch's vecdb_upsert */
	OP_DELETE                 /* the batch's vecdb_delete */
};

struct msg {
	uint32_t kind;            /* enum msg_kind */
	uint32_t op;              /* enum op_kind */
	uint32_t batch;           /* batch number within the round */
	uint32_t arg;             /* BEGIN/DONE: new points; FAIL: code */
};

/* Everything one batch does; a function of (seed, round, batch). */
struct plan {
	uint32_t size;            /* new points */
	uint32_t nrewrite;        /* first n points of batch-1 rewritten */
	int has_delete;           /* deletes del_id after the upsert */
	uint64_t del_id;          /* a point of a batch <= batch-2 */
};

/* The parent's idea of one point. Sorted by id; never removed. */
struct mpoint {
	uint64_t id;
	uint32_t batch;           /* batch that wrote its payload */
	uint8_t present;          /* not deleted */
	uint8_t rewritten;        /* payload has "rewritten": true */
};

/* The expected contents of the collection. */
struct model {
	struct mpoint *p;         /* sorted by id */
	size_t n, cap;
	uint64_t live;            /* points with present set */
};

/* Bytes read from the child's pipe in one round. */
struct inbox {
	uint8_t *buf;
	size_t len, cap;
	int eof;                  /* the child's end is closed */
};

/* Run-wide state of the test. */
struct crash {
	uint64_t seed;            /* plans of all batches */
	uint64_t rng;             /* kill delays */
	char *dir;                /* the data dir */
	struct model m;
	uint32_t acked;           /* acknowledged calls, all rounds */
	uint32_t landed;          /* unacknowledged calls found applied */
	uint32_t lost;            /* unacknowledged calls found not applied */
};

/* The state of a point as read back, or as expected. */
struct pstate {
	int present;
	uint32_t batch;
	int rewritten;
};

/* ===== The deterministic workload ===== */

/* splitmix64's finalizer. */
static uint64_t
mix(uint64_t x)
{
	x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ULL;
	x = (x ^ (x >> 27)) * 0x94D049BB133111EBULL;
	return x ^ (x >> 31);
}

/* The random bits that decide batch (round, batch). */
static uint64_t
batch_hash(uint64_t seed, uint32_t round, uint32_t batch)
{
	return mix(seed ^ mix(((uint64_t) round << 32 | batch) + 1));
}

/* The id of point i of a batch. */
static uint64_t
point_id(uint32_t round, uint32_t batch, uint32_t i)
{
	return round * ID_ROUND + batch * ID_BATCH + i;
}

/* Number of new points in a batch. */
static uint32_t
batch_size(uint64_t seed, uint32_t round, uint32_t batch)
{
	return MIN_SIZE + (uint32_t) (batch_hash(seed, round, batch) %
				       (MAX_SIZE - MIN_SIZE + 1));
}

/* What batch (round, batch) does. */
static void
plan_make(uint64_t seed, uint32_t round, uint32_t batch, struct plan *p)
{
	uint64_t h = batch_hash(seed, round, batch);
	uint32_t d;

	p->size = batch_size(seed, round, batch);
	p->nrewrite = batch > 0 && (h >> 16) % 3 == 0 ?
	    1 + (uint32_t) ((h >> 24) % MAX_REWRITE) : 0;
	p->has_delete = batch >= 2 && (h >> 32) % 4 == 0;
	p->del_id = 0;
	if (p->has_delete) {
		d = (uint32_t) ((h >> 40) % (batch - 1));
		p->del_id = point_id(round, d, (uint32_t) ((h >> 52) %
		    batch_size(seed, round, d)));
	}
}

/* The vector of a point: a function of its id. */
static void
vec_of(uint64_t id, float *v)
{
	for (uint32_t j = 0; j < DIM; j++)
		v[j] = (float) ((id * 31 + j * 7) % 1000) / 1000;
}

/* The payload a batch gives a point it writes. */
static void
payload_of(uint64_t id, uint32_t batch, int rewritten, char *buf, size_t len)
{
	snprintf(buf, len, "{\"id\": %llu, \"batch\": %u%s}",
	    (unsigned long long) id, batch,
	    rewritten ? ", \"rewritten\": true" : "");
}

/* ===== The child ===== */

/* In the child: send one message, or die. */
static void
msg_send(int fd, uint32_t kind, uint32_t op, uint32_t batch, uint32_t arg)
{
	struct msg m = { kind, op, batch, arg };

	while (write(fd, &m, sizeof(m)) != (ssize_t) sizeof(m))
		if (errno != EINTR)
			_exit(4);
}

/* In the child: report a failed call and exit. */
static void
child_fail(int fd, uint32_t op, uint32_t batch, int rv)
{
	fprintf(stderr, "crash child: op %u of batch %u: %s (%s)\n", op,
	    batch, vecdb_strerror(rv), vecdb_errmsg());
	msg_send(fd, MSG_FAIL, op, batch, (uint32_t) rv);
	_exit(2);
}

/* In the child: write one batch's upsert, then its delete, announced. */
static void
child_batch(vecdb *db, int fd, uint64_t seed, uint32_t round, uint32_t b)
{
	static float vecs[(MAX_SIZE + MAX_REWRITE) * DIM];
	static char pay[MAX_SIZE + MAX_REWRITE][96];
	static vecdb_point pts[MAX_SIZE + MAX_REWRITE];
	struct plan p;
	vecdb_id del;
	size_t n = 0;
	int rv;

	plan_make(seed, round, b, &p);
	for (uint32_t i = 0; i < p.size + p.nrewrite; i++, n++) {
		uint64_t id = i < p.size ? point_id(round, b, i) :
		    point_id(round, b - 1, i - p.size);
		vec_of(id, vecs + n * DIM);
		payload_of(id, b, i >= p.size, pay[n], sizeof(pay[n]));
		pts[n] = (vecdb_point) { vecdb_id_num(id), vecs + n * DIM,
			DIM, pay[n] };
	}
	msg_send(fd, MSG_BEGIN, OP_UPSERT, b, p.size);
	if ((rv = vecdb_upsert(db, COLL, pts, n)) != VECDB_OK)
		child_fail(fd, OP_UPSERT, b, rv);
	msg_send(fd, MSG_DONE, OP_UPSERT, b, p.size);
	if (!p.has_delete)
		return;
	del = vecdb_id_num(p.del_id);
	msg_send(fd, MSG_BEGIN, OP_DELETE, b, p.size);
	if ((rv = vecdb_delete(db, COLL, &del, 1, NULL)) != VECDB_OK)
		child_fail(fd, OP_DELETE, b, rv);
	msg_send(fd, MSG_DONE, OP_DELETE, b, p.size);
}

/* The options of every open: parallel indexing, frequent checkpoints. */
static void
options_make(vecdb_options *o)
{
	vecdb_options_init(o);
	o->index_threads = INDEX_THREADS;
	o->checkpoint_interval_s = 1;
}

/* In the child: open in sync mode and write batches until killed. */
static void
child_run(const char *dir, uint64_t seed, uint32_t round, int fd)
{
	vecdb_options o;
	vecdb *db = NULL;
	int rv;

	options_make(&o);
	if (o.durability != VECDB_SYNC)
		child_fail(fd, OP_OPEN, 0, VECDB_EINTERNAL);
	if ((rv = vecdb_open(dir, &o, &db)) != VECDB_OK)
		child_fail(fd, OP_OPEN, 0, rv);
	msg_send(fd, MSG_OPENED, OP_OPEN, 0, 0);
	for (uint32_t b = 0; b < MAX_BATCHES; b++)
		child_batch(db, fd, seed, round, b);
	for (;;)
		pause(); /* out of ids for this round: wait for the kill */
}

/* ===== The model ===== */

/* The model's entry for id, or NULL. */
static struct mpoint *
model_find(struct model *m, uint64_t id)
{
	size_t lo = 0, hi = m->n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (m->p[mid].id == id)
			return &m->p[mid];
		if (m->p[mid].id < id)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

/* The expected state of id (absent if the model never saw it). */
static struct pstate
model_state(struct model *m, uint64_t id)
{
	struct mpoint *p = model_find(m, id);
	struct pstate s = { 0, 0, 0 };

	if (p != NULL && p->present)
		s = (struct pstate) { 1, p->batch, p->rewritten };
	return s;
}

/* Add a new point, which sorts after every point so far. */
static void
model_append(struct model *m, uint64_t id, uint32_t batch)
{
	if (m->n > 0 && m->p[m->n - 1].id >= id)
		ck_abort_msg("model: id %llu out of order",
		    (unsigned long long) id);
	if (m->n == m->cap) {
		m->cap = m->cap ? m->cap * 2 : 4096;
		m->p = realloc(m->p, m->cap * sizeof(*m->p));
		ck_assert_ptr_nonnull(m->p);
	}
	m->p[m->n++] = (struct mpoint) { id, batch, 1, 0 };
	m->live++;
}

/* Apply a whole upsert of (round, batch). */
static void
model_upsert(struct model *m, uint64_t seed, uint32_t round, uint32_t b)
{
	struct plan p;

	plan_make(seed, round, b, &p);
	for (uint32_t i = 0; i < p.size; i++)
		model_append(m, point_id(round, b, i), b);
	for (uint32_t i = 0; i < p.nrewrite; i++) {
		struct mpoint *mp = model_find(m, point_id(round, b - 1, i));
		ck_assert_ptr_nonnull(mp);
		if (!mp->present)
			m->live++;
		*mp = (struct mpoint) { mp->id, b, 1, 1 };
	}
}

/* Apply the delete of (round, batch). */
static void
model_delete(struct model *m, uint64_t seed, uint32_t round, uint32_t b)
{
	struct plan p;
	struct mpoint *mp;

	plan_make(seed, round, b, &p);
	mp = model_find(m, p.del_id);
	ck_assert_ptr_nonnull(mp);
	if (mp->present) {
		mp->present = 0;
		m->live--;
	}
}

/* ===== Reading back ===== */

/* Check a stored record's vector and payload; return what it says. */
static struct pstate
record_state(const vecdb_record *r)
{
	unsigned long long id = r->id.num;
	float want[DIM];
	json_t *j, *jid, *jb, *jr;
	struct pstate s = { 1, 0, 0 };

	vec_of(id, want);
	if (r->id.kind != VECDB_ID_NUM || r->dim != DIM ||
	    r->vector == NULL || memcmp(r->vector, want, sizeof(want)) != 0)
		ck_abort_msg("point %llu: wrong id kind, dim or vector", id);
	if (r->payload == NULL ||
	    (j = json_loads(r->payload, 0, NULL)) == NULL)
		ck_abort_msg("point %llu: payload is not JSON", id);
	jid = json_object_get(j, "id");
	jb = json_object_get(j, "batch");
	jr = json_object_get(j, "rewritten");
	if (!json_is_integer(jid) || (unsigned long long)
	    json_integer_value(jid) != id || !json_is_integer(jb) ||
	    (jr != NULL && !json_is_true(jr)) ||
	    json_object_size(j) != (jr != NULL ? 3u : 2u))
		ck_abort_msg("point %llu: unexpected payload %s", id,
		    r->payload);
	s.batch = (uint32_t) json_integer_value(jb);
	s.rewritten = jr != NULL;
	json_decref(j);
	return s;
}

/* The stored state of id, by vecdb_get. */
static struct pstate
stored_state(vecdb *db, uint64_t id)
{
	vecdb_id vid = vecdb_id_num(id);
	vecdb_record *r = NULL;
	struct pstate s = { 0, 0, 0 };
	int rv = vecdb_get(db, COLL, &vid, &r);

	if (rv == VECDB_ENOTFOUND)
		return s;
	if (rv != VECDB_OK)
		ck_abort_msg("get %llu: %s (%s)", (unsigned long long) id,
		    vecdb_strerror(rv), vecdb_errmsg());
	s = record_state(r);
	vecdb_record_free(r);
	return s;
}

/* Whether two states are the same. */
static int
pstate_eq(struct pstate a, struct pstate b)
{
	return a.present == b.present && (!a.present ||
	    (a.batch == b.batch && a.rewritten == b.rewritten));
}

/* Fail if a present model point sorts before @p id (it was not read). */
static void
verify_skip(struct model *m, size_t *k, uint64_t id, uint32_t round)
{
	for (; *k < m->n && m->p[*k].id < id; (*k)++)
		if (m->p[*k].present)
			ck_abort_msg("round %u: expected point %llu is "
			    "missing", round,
			    (unsigned long long) m->p[*k].id);
}

/* Check one scrolled record against model entry *k, then move past it. */
static void
verify_record(struct model *m, size_t *k, const vecdb_record *r,
    uint32_t round)
{
	unsigned long long id = r->id.num;
	struct pstate s = record_state(r);
	struct mpoint *mp;

	verify_skip(m, k, id, round);
	mp = *k < m->n ? &m->p[*k] : NULL;
	if (mp == NULL || mp->id != id || !mp->present)
		ck_abort_msg("round %u: point %llu should not exist", round,
		    id);
	if (!pstate_eq(s, (struct pstate) { 1, mp->batch, mp->rewritten }))
		ck_abort_msg("round %u: point %llu has payload %s; expected "
		    "batch %u%s", round, id, r->payload, mp->batch,
		    mp->rewritten ? ", rewritten" : "");
	(*k)++;
}

/* Fail unless the collection holds exactly the model's points. */
static void
verify_all(vecdb *db, struct model *m, uint32_t round)
{
	vecdb_id start = vecdb_id_num(0);
	vecdb_records *page;
	uint64_t seen = 0, count = 0;
	size_t k = 0;
	int more;

	do {
		int rv = vecdb_scroll(db, COLL, &start, SCROLL_PAGE, NULL, 1,
		    1, &page);
		ck_assert_msg(rv == VECDB_OK, "scroll: %s", vecdb_errmsg());
		for (size_t i = 0; i < page->count; i++, seen++)
			verify_record(m, &k, &page->items[i], round);
		start = page->next;
		more = page->has_next;
		vecdb_records_free(page);
	} while (more);
	verify_skip(m, &k, UINT64_MAX, round); /* ids stay far below */
	ck_assert_uint_eq(seen, m->live);
	ck_assert_int_eq(vecdb_count(db, COLL, NULL, &count), VECDB_OK);
	ck_assert_uint_eq(count, m->live);
}

/* Once caught up, the index holds exactly the live points. */
static void
verify_index(vecdb *db, const struct model *m, uint32_t round)
{
	vecdb_collection_stats st;

	ck_assert_int_eq(vecdb_index_sync(db, 60000), VECDB_OK);
	ck_assert_int_eq(vecdb_collection_stats_get(db, COLL, &st), VECDB_OK);
	ck_assert_msg(st.indexed_count == m->live && st.pending_count == 0,
	    "round %u: %llu indexed, %llu pending, %llu live", round,
	    (unsigned long long) st.indexed_count,
	    (unsigned long long) st.pending_count,
	    (unsigned long long) m->live);
}

/* ===== Deciding the call in flight ===== */

/* Tally whether a point of the call in flight is as before or after it. */
static void
inflight_point(vecdb *db, uint64_t id, struct pstate before,
    struct pstate after, uint32_t tally[2])
{
	struct pstate s = stored_state(db, id);
	int b = pstate_eq(s, before), a = pstate_eq(s, after);

	if (!a && !b)
		ck_abort_msg("point %llu matches neither the state before nor "
		    "after the call in flight", (unsigned long long) id);
	tally[0] += (uint32_t) b;
	tally[1] += (uint32_t) a;
}

/* Whether the unacknowledged upsert landed; fails if half applied. */
static int
inflight_upsert(struct crash *cr, vecdb *db, uint32_t round, uint32_t b)
{
	struct pstate absent = { 0, 0, 0 }, fresh = { 1, b, 0 };
	struct pstate redone = { 1, b, 1 };
	uint32_t tally[2] = { 0, 0 }, total;
	struct plan p;

	plan_make(cr->seed, round, b, &p);
	total = p.size + p.nrewrite;
	for (uint32_t i = 0; i < p.size; i++)
		inflight_point(db, point_id(round, b, i), absent, fresh,
		    tally);
	for (uint32_t i = 0; i < p.nrewrite; i++) {
		uint64_t id = point_id(round, b - 1, i);
		inflight_point(db, id, model_state(&cr->m, id), redone, tally);
	}
	if (tally[0] != total && tally[1] != total)
		ck_abort_msg("round %u: upsert of batch %u is half applied: "
		    "%u of %u points as before, %u as after", round, b,
		    tally[0], total, tally[1]);
	return tally[1] == total;
}

/* Settle the call the child announced but never acknowledged. */
static void
inflight_settle(struct crash *cr, uint32_t round, const struct msg *op)
{
	struct pstate absent = { 0, 0, 0 };
	uint32_t tally[2] = { 0, 0 };
	vecdb_options o;
	struct plan p;
	vecdb *db;
	int rv, landed = 0;

	options_make(&o);
	rv = vecdb_open(cr->dir, &o, &db);
	ck_assert_msg(rv == VECDB_OK, "reopen after round %u: %s (%s)",
	    round, vecdb_strerror(rv), vecdb_errmsg());
	if (op != NULL && op->op == OP_UPSERT) {
		landed = inflight_upsert(cr, db, round, op->batch);
		if (landed)
			model_upsert(&cr->m, cr->seed, round, op->batch);
	} else if (op != NULL) {
		plan_make(cr->seed, round, op->batch, &p);
		inflight_point(db, p.del_id, model_state(&cr->m, p.del_id),
		    absent, tally);
		landed = tally[1];
		if (landed)
			model_delete(&cr->m, cr->seed, round, op->batch);
	}
	if (op != NULL && landed)
		cr->landed++;
	else if (op != NULL)
		cr->lost++;
	verify_all(db, &cr->m, round);
	verify_index(db, &cr->m, round);
	vecdb_close(db);
}

/* ===== The parent's side of a round ===== */

/* Milliseconds on the monotonic clock. */
static int64_t
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Read what the child has sent, waiting at most ms for some of it. */
static void
inbox_fill(struct inbox *in, int fd, int ms)
{
	struct pollfd pfd = { fd, POLLIN, 0 };
	ssize_t n;

	if (in->eof || poll(&pfd, 1, ms < 0 ? 0 : ms) <= 0)
		return;
	if (in->cap - in->len < 4096) {
		in->cap = in->cap ? in->cap * 2 : 65536;
		in->buf = realloc(in->buf, in->cap);
		if (in->buf == NULL)
			abort();
	}
	n = read(fd, in->buf + in->len, in->cap - in->len);
	if (n == 0)
		in->eof = 1;
	else if (n > 0)
		in->len += (size_t) n;
}

/* Read until ms pass, EOF, or (until_first) the first message is in. */
static void
inbox_wait(struct inbox *in, int fd, int ms, int until_first)
{
	int64_t deadline = now_ms() + ms;

	while (!in->eof && (!until_first || in->len < sizeof(struct msg))) {
		int64_t left = deadline - now_ms();
		if (left <= 0)
			break;
		inbox_fill(in, fd, (int) left);
	}
}

/* The child's i-th message. */
static struct msg
inbox_msg(const struct inbox *in, size_t i)
{
	struct msg m;

	memcpy(&m, in->buf + i * sizeof(m), sizeof(m));
	return m;
}

/* Fork the child and let it write for a random while; then SIGKILL it. */
static void
round_collect(struct crash *cr, uint32_t round, struct inbox *in,
    int *status)
{
	int fds[2];
	pid_t pid;

	ck_assert_int_eq(pipe(fds), 0);
	if ((pid = fork()) == 0) {
		close(fds[0]);
		child_run(cr->dir, cr->seed, round, fds[1]);
		_exit(5);
	}
	ck_assert_int_gt(pid, 0);
	close(fds[1]);
	inbox_wait(in, fds[0], OPEN_TIMEOUT_MS, 1);
	if (in->len >= sizeof(struct msg) &&
	    inbox_msg(in, 0).kind == MSG_OPENED)
		inbox_wait(in, fds[0], 5 + (int) (tu_rand(&cr->rng) % 146), 0);
	kill(pid, SIGKILL);
	ck_assert_int_eq(waitpid(pid, status, 0), pid);
	while (!in->eof)
		inbox_fill(in, fds[0], 1000);
	close(fds[0]);
}

/* Fail with the child's own account of why it stopped. */
static void
round_child_failed(uint32_t round, const struct inbox *in, int status)
{
	static const char *ops[] = { "vecdb_open", "vecdb_upsert",
		"vecdb_delete" };
	size_t n = in->len / sizeof(struct msg);
	struct msg last;

	if (n == 0 && WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL)
		ck_abort_msg("round %u: the child did not open the database "
		    "in %d s", round, OPEN_TIMEOUT_MS / 1000);
	if (n == 0)
		ck_abort_msg("round %u: the child exited on its own (wait "
		    "status 0x%x) before opening the database", round, status);
	last = inbox_msg(in, n - 1);
	if (last.kind == MSG_FAIL)
		ck_abort_msg("round %u: child: %s of batch %u failed: %s "
		    "(details on stderr)", round, ops[last.op % 3], last.batch,
		    vecdb_strerror((int) last.arg));
	ck_abort_msg("round %u: the child exited on its own (wait status "
	    "0x%x) after %zu messages", round, status, n);
}

/* Replay the acknowledged calls; return the one in flight, if any. */
static int
round_replay(struct crash *cr, uint32_t round, const struct inbox *in,
    struct msg *inflight)
{
	uint32_t b = 0, op = OP_UPSERT;
	int pending = 0;
	struct plan p;

	for (size_t i = 1; i < in->len / sizeof(struct msg); i++) {
		struct msg m = inbox_msg(in, i);
		plan_make(cr->seed, round, b, &p);
		if ((m.kind != MSG_BEGIN && m.kind != MSG_DONE) ||
		    m.op != op || m.batch != b || m.arg != p.size ||
		    (m.kind == MSG_BEGIN) == pending)
			ck_abort_msg("round %u: message %zu (kind %u op %u "
			    "batch %u) out of protocol", round, i, m.kind,
			    m.op, m.batch);
		*inflight = m;
		pending = m.kind == MSG_BEGIN;
		if (pending)
			continue;
		if (op == OP_UPSERT)
			model_upsert(&cr->m, cr->seed, round, b);
		else
			model_delete(&cr->m, cr->seed, round, b);
		cr->acked++;
		op = op == OP_UPSERT && p.has_delete ? OP_DELETE : OP_UPSERT;
		b += op == OP_UPSERT;
	}
	return pending;
}

/* One kill: run the child, kill it, check the data dir against the model. */
static void
round_run(struct crash *cr, uint32_t round)
{
	struct inbox in = { NULL, 0, 0, 0 };
	struct msg inflight;
	int status = 0, pending;

	round_collect(cr, round, &in, &status);
	if (!WIFSIGNALED(status) || WTERMSIG(status) != SIGKILL ||
	    in.len < sizeof(struct msg) ||
	    inbox_msg(&in, 0).kind != MSG_OPENED ||
	    inbox_msg(&in, in.len / sizeof(struct msg) - 1).kind == MSG_FAIL)
		round_child_failed(round, &in, status);
	ck_assert_uint_eq(in.len % sizeof(struct msg), 0);
	pending = round_replay(cr, round, &in, &inflight);
	inflight_settle(cr, round, pending ? &inflight : NULL);
	free(in.buf);
}

/* The seed: $VECDB_CRASH_SEED, or from the clock. */
static uint64_t
seed_pick(void)
{
	const char *s = getenv("VECDB_CRASH_SEED");
	struct timespec ts;

	if (s != NULL && *s != '\0')
		return strtoull(s, NULL, 10);
	clock_gettime(CLOCK_REALTIME, &ts);
	return mix((uint64_t) ts.tv_nsec ^ (uint64_t) ts.tv_sec << 20 ^
	    (uint64_t) getpid());
}

START_TEST(acknowledged_batches_survive_sigkill_and_none_is_half_applied)
{
	struct crash cr;
	int64_t t0 = now_ms();
	vecdb_options o;
	vecdb *db;

	memset(&cr, 0, sizeof(cr));
	cr.seed = seed_pick();
	cr.rng = cr.seed | 1;
	cr.dir = tu_subdir();
	fprintf(stderr, "crash_test: seed %llu (VECDB_CRASH_SEED=%llu "
	    "replays the batches; kill times still vary)\n",
	    (unsigned long long) cr.seed, (unsigned long long) cr.seed);
	vecdb_options_init(&o);
	ck_assert_int_eq(vecdb_open(cr.dir, &o, &db), VECDB_OK);
	tu_create(db, COLL, DIM, VECDB_EUCLIDEAN);
	vecdb_close(db);
	for (uint32_t round = 0; round < ROUNDS; round++)
		round_run(&cr, round);
	ck_assert_uint_gt(cr.acked, ROUNDS);
	fprintf(stderr, "crash_test: %d kills, %u acknowledged calls, "
	    "%u unacknowledged landed, %u lost, %llu points, %lld ms\n",
	    ROUNDS, cr.acked, cr.landed, cr.lost,
	    (unsigned long long) cr.m.live, (long long) (now_ms() - t0));
	free(cr.m.p);
	free(cr.dir);
}
END_TEST

/* The crash suite. */
static Suite *
crash_suite(void)
{
	Suite *s = suite_create("crash");
	TCase *tc = tcase_create("sigkill during sync writes");

	tcase_set_timeout(tc, 300);
	tcase_add_unchecked_fixture(tc, tu_base_setup, tu_base_teardown);
	tcase_add_test(tc,
	    acknowledged_batches_survive_sigkill_and_none_is_half_applied);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	return tu_run(crash_suite());
}
