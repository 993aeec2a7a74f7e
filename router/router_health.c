/*
 * router_health.c: which member of a shard is its primary, promotion,
 * and readiness.
 *
 * The topology file names each shard's first primary; after a promotion
 * that name is stale until an operator edits the file. So the router
 * does not trust it blindly: a thread asks every member for HEALTH every
 * ROUTER_HEALTH_MS, and writes go to the member that says it is primary
 * under the highest term. Every router of a cluster learns of a
 * promotion this way, not only the one that ran it. A member that still
 * says primary under a lower term (a former primary come back) is told
 * to FOLLOW the current one, which makes it step down (docs/ROUTER.md,
 * "Members: primaries and replicas").
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "proto.h"
#include "router_impl.h"
#include "vdb.h"

/* One request to one member over the member's socket. */
struct mcall {
	struct router_member *m;
	struct proto_rpc_xchg x;
	struct proto_response *resp;  /* the answer, if one came */
	char error[256];              /* why none came */
};

/* Start sending a request (body borrowed) to c->m. */
static void
mcall_send(struct mcall *c, uint32_t method, const char *key,
    const uint8_t *body, size_t len, uint32_t timeout_ms)
{
	uint8_t *req = NULL;
	size_t reqlen = 0;

	if (proto_request_encode(method, key, 0, body, len, &req, &reqlen) !=
	    VECDB_OK || proto_rpc_send_on(&c->x, &c->m->conn->pool, req,
	    reqlen, vdb_now_ms() + timeout_ms) != VECDB_OK)
		snprintf(c->error, sizeof(c->error), "out of memory");
	vdb_free(req);
}

/* Wait for c's answer until end; 0 with c->resp, or -1 with c->error. */
static int
mcall_wait(struct mcall *c, uint32_t method, uint64_t end)
{
	const char *what = proto_method_name(method);

	if (c->x.aio == NULL)
		return -1;  /* never sent: c->error says why */
	switch (proto_rpc_wait(&c->x, end, &c->resp)) {
	case PROTO_RPC_UNSENT:
		snprintf(c->error, sizeof(c->error), "%s: not sent in time",
		    what);
		return -1;
	case PROTO_RPC_LATE:
		snprintf(c->error, sizeof(c->error), "%s: no answer in time",
		    what);
		return -1;
	case PROTO_RPC_LOST:
		snprintf(c->error, sizeof(c->error), "%s: connection lost",
		    what);
		return -1;
	case PROTO_RPC_BAD:
		snprintf(c->error, sizeof(c->error), "%s: bad answer: %s",
		    what, vecdb_errmsg());
		return -1;
	case PROTO_RPC_ANSWERED:
		break;
	}
	if (c->resp->code != PROTO_OK) {
		snprintf(c->error, sizeof(c->error), "%s: %s", what,
		    c->resp->message);
		return -1;
	}
	return 0;
}

static void
mcall_fini(struct mcall *c)
{
	proto_rpc_xchg_fini(&c->x);
	proto_response_free(c->resp);
	memset(c, 0, sizeof(*c));
}

/*
 * One call to one member, start to end: 0, the vecdb_err of the code it
 * answered, or VECDB_EUNAVAILABLE when it did not answer; why in err.
 */
static int
member_call(struct router_member *m, uint32_t method, const char *key,
    const uint8_t *body, size_t len, uint32_t timeout_ms,
    struct proto_response **out, char *err, size_t errlen)
{
	struct mcall c;
	int rv;

	memset(&c, 0, sizeof(c));
	c.m = m;
	mcall_send(&c, method, key, body, len, timeout_ms);
	if ((rv = mcall_wait(&c, method, vdb_now_ms() + timeout_ms)) == 0) {
		*out = c.resp;
		c.resp = NULL;
	} else {
		snprintf(err, errlen, "%s", c.error);
		rv = c.resp != NULL ? proto_err_of(c.resp->code) :
		    VECDB_EUNAVAILABLE;
	}
	mcall_fini(&c);
	return rv;
}

/* Record what a member said of itself. */
static void
member_learn(struct router_member *m, const struct proto_health *h,
    pthread_mutex_t *lock)
{
	int role = strcmp(h->role, "primary") == 0 ? ROLE_PRIMARY :
	    strcmp(h->role, "replica") == 0 ? ROLE_REPLICA : ROLE_UNKNOWN;

	__atomic_store_n(&m->role, role, __ATOMIC_RELAXED);
	__atomic_store_n(&m->term, h->term, __ATOMIC_RELAXED);
	__atomic_store_n(&m->last_seq, h->last_seq, __ATOMIC_RELAXED);
	__atomic_store_n(&m->heard, 1, __ATOMIC_RELAXED);
	__atomic_store_n(&m->parallelism, h->parallelism, __ATOMIC_RELAXED);
	pthread_mutex_lock(lock);
	snprintf(m->node_id, sizeof(m->node_id), "%s", h->node_id);
	snprintf(m->follows, sizeof(m->follows), "%s", h->primary);
	pthread_mutex_unlock(lock);
}

/* Tell member m of s to follow the shard's primary p. */
static int
member_follow(struct router_shard *s, struct router_member *m, size_t p,
    const char *key, uint32_t timeout_ms, char *err, size_t errlen)
{
	struct proto_response *resp = NULL;
	uint8_t *body = NULL;
	size_t len = 0;
	int rv;

	if (proto_follow_encode(s->members[p].url, __atomic_load_n(
	    &s->members[p].term, __ATOMIC_RELAXED), &body, &len) != VECDB_OK) {
		snprintf(err, errlen, "%s", vecdb_errmsg());
		return -1;
	}
	rv = member_call(m, PROTO_FOLLOW, key, body, len, timeout_ms, &resp,
	    err, errlen);
	vdb_free(body);
	proto_response_free(resp);
	return rv;
}

/*
 * Does member m need telling whom to follow: a primary under an older
 * term (a former primary come back), or a replica following another url
 * (one restarted with its old --primary after a promotion)?
 */
static int
member_astray(const struct router_member *m, const char *purl,
    uint64_t term, pthread_mutex_t *lock)
{
	int role = __atomic_load_n(&m->role, __ATOMIC_RELAXED), astray = 0;

	if (__atomic_load_n(&m->term, __ATOMIC_RELAXED) > term)
		return 0;
	if (role == ROLE_PRIMARY)
		return __atomic_load_n(&m->term, __ATOMIC_RELAXED) < term;
	if (role == ROLE_REPLICA) {
		pthread_mutex_lock(lock);
		astray = m->follows[0] != '\0' && strcmp(m->follows, purl) != 0;
		pthread_mutex_unlock(lock);
	}
	return astray;
}

/* Point s's writes at the elected primary; set straying members right. */
static void
shard_settle(struct router_shard *s, const char *key, uint32_t timeout_ms,
    pthread_mutex_t *lock)
{
	int old, p = router_shard_elect(s, &old);
	uint64_t term;
	char err[256];

	if (p < 0)
		return;  /* nobody says primary: keep what we had */
	if (p != old)
		VDB_LOG_WARN("ROUT", "shard %u: primary is now %s (term %llu)",
		    s->id, s->members[p].url, (unsigned long long)
		    __atomic_load_n(&s->members[p].term, __ATOMIC_RELAXED));
	term = __atomic_load_n(&s->members[p].term, __ATOMIC_RELAXED);
	for (size_t i = 0; i < s->n_members; i++) {
		struct router_member *m = &s->members[i];
		if ((int) i == p || !member_astray(m, s->members[p].url, term,
		    lock))
			continue;
		VDB_LOG_WARN("ROUT", "shard %u: %s does not follow the primary "
		    "of term %llu: telling it to follow %s", s->id, m->url,
		    (unsigned long long) term, s->members[p].url);
		if (member_follow(s, m, (size_t) p, key, timeout_ms, err,
		    sizeof(err)) != 0)
			VDB_LOG_WARN("ROUT", "shard %u: %s: %s", s->id, m->url,
			    err);
	}
}

void
router_health_round(router_topology *t, const char *key, uint32_t timeout_ms,
    pthread_mutex_t *lock)
{
	struct mcall *c;
	struct proto_health h;
	size_t n = 0, k = 0;
	uint64_t end;

	for (size_t i = 0; i < t->n; i++)
		n += t->shards[i].n_members;
	if ((c = vdb_calloc(n, sizeof(*c))) == NULL)
		return;
	for (size_t i = 0; i < t->n; i++)
		for (size_t j = 0; j < t->shards[i].n_members; j++) {
			c[k].m = &t->shards[i].members[j];
			mcall_send(&c[k++], PROTO_HEALTH, key, NULL, 0,
			    timeout_ms);
		}
	end = vdb_now_ms() + timeout_ms;
	for (k = 0; k < n; k++) {
		__atomic_store_n(&c[k].m->heard, 0, __ATOMIC_RELAXED);
		if (mcall_wait(&c[k], PROTO_HEALTH, end) == 0 &&
		    proto_health_decode(c[k].resp->body, c[k].resp->body_len,
		    &h) == VECDB_OK) {
			member_learn(c[k].m, &h, lock);
			__atomic_store_n(&c[k].m->unanswered, 0,
			    __ATOMIC_RELAXED);
		} else {
			__atomic_fetch_add(&c[k].m->unanswered, 1,
			    __ATOMIC_RELAXED);
		}
		mcall_fini(&c[k]);
	}
	vdb_free(c);
	for (size_t i = 0; i < t->n; i++)
		shard_settle(&t->shards[i], key, timeout_ms, lock);
}

/* ===== The thread ===== */

struct router_health {
	router *r;
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t cv;
	int stopping;
};

/* A round's wait: short, so that a dead member cannot stall the others. */
static uint32_t
round_timeout(uint32_t timeout_ms)
{
	return timeout_ms < 1000 ? timeout_ms : 1000;
}

static void *
health_main(void *arg)
{
	struct router_health *h = arg;
	struct timespec ts;
	router_topology *t;
	const char *key;
	uint32_t timeout_ms;

	pthread_mutex_lock(&h->lock);
	while (!h->stopping) {
		pthread_mutex_unlock(&h->lock);
		t = router_topology_acquire(h->r, &timeout_ms, &key);
		router_health_round(t, key, round_timeout(timeout_ms),
		    &h->r->lock);
		router_topology_release(h->r, t);
		pthread_mutex_lock(&h->lock);
		ts = vdb_deadline(ROUTER_HEALTH_MS);
		if (!h->stopping)
			pthread_cond_timedwait(&h->cv, &h->lock, &ts);
	}
	pthread_mutex_unlock(&h->lock);
	return NULL;
}

int
router_health_start(router *r, router_health **out)
{
	struct router_health *h = vdb_calloc(1, sizeof(*h));

	if (h == NULL)
		return vdb_err(VECDB_ENOMEM, "out of memory");
	h->r = r;
	pthread_mutex_init(&h->lock, NULL);
	vdb_cond_init(&h->cv);
	if (pthread_create(&h->thread, NULL, health_main, h) != 0) {
		pthread_cond_destroy(&h->cv);
		pthread_mutex_destroy(&h->lock);
		vdb_free(h);
		return vdb_err(VECDB_EIO, "cannot start the health thread");
	}
	*out = h;
	return VECDB_OK;
}

void
router_health_stop(router_health *h)
{
	if (h == NULL)
		return;
	pthread_mutex_lock(&h->lock);
	h->stopping = 1;
	pthread_cond_signal(&h->cv);
	pthread_mutex_unlock(&h->lock);
	pthread_join(h->thread, NULL);
	pthread_cond_destroy(&h->cv);
	pthread_mutex_destroy(&h->lock);
	vdb_free(h);
}

/* ===== Promotion ===== */

/* The member named by url or node id: its shard and index, or -1. */
static int
member_find(router_topology *t, const char *node, pthread_mutex_t *lock,
    size_t *shard, size_t *idx)
{
	int found = -1;

	pthread_mutex_lock(lock);
	for (size_t i = 0; i < t->n && found < 0; i++)
		for (size_t j = 0; j < t->shards[i].n_members; j++) {
			struct router_member *m = &t->shards[i].members[j];
			if (strcmp(m->url, node) == 0 ||
			    (m->node_id[0] != '\0' &&
			    strcmp(m->node_id, node) == 0)) {
				*shard = i;
				*idx = j;
				found = 0;
				break;
			}
		}
	pthread_mutex_unlock(lock);
	return found;
}

/* The highest term any member of s reported. */
static uint64_t
shard_term(const struct router_shard *s)
{
	uint64_t max = 0, term;

	for (size_t i = 0; i < s->n_members; i++)
		if ((term = __atomic_load_n(&s->members[i].term,
		    __ATOMIC_RELAXED)) > max)
			max = term;
	return max;
}

/*
 * EINVAL when another member of s that answered holds more
 * of the WAL than member i: promoting i could lose writes acknowledged
 * with a write concern that the more advanced one holds.
 */
static int
promote_check(const struct router_shard *s, size_t i)
{
	uint64_t mine = __atomic_load_n(&s->members[i].last_seq,
	    __ATOMIC_RELAXED), theirs;

	if (!__atomic_load_n(&s->members[i].heard, __ATOMIC_RELAXED))
		return vdb_err(VECDB_EUNAVAILABLE, "%s did not answer: cannot "
		    "promote it", s->members[i].url);
	for (size_t k = 0; k < s->n_members; k++) {
		if (k == i || !__atomic_load_n(&s->members[k].heard,
		    __ATOMIC_RELAXED) || __atomic_load_n(&s->members[k].role,
		    __ATOMIC_RELAXED) == ROLE_PRIMARY)
			continue;
		theirs = __atomic_load_n(&s->members[k].last_seq,
		    __ATOMIC_RELAXED);
		if (theirs > mine)
			return vdb_err(VECDB_EINVAL, "%s is behind %s (last "
			    "seq %llu < %llu): promote the most advanced "
			    "replica", s->members[i].url, s->members[k].url,
			    (unsigned long long) mine,
			    (unsigned long long) theirs);
	}
	return VECDB_OK;
}

/* PROMOTE member m above min_term: its new term and last seq. */
static int
member_promote(struct router_member *m, uint64_t min_term, const char *key,
    uint32_t timeout_ms, uint64_t *term, uint64_t *last_seq)
{
	struct proto_response *resp = NULL;
	uint8_t *body = NULL;
	size_t len = 0;
	char err[256];
	int rv;

	if ((rv = proto_promote_encode(min_term, &body, &len)) != VECDB_OK)
		return rv;
	rv = member_call(m, PROTO_PROMOTE, key, body, len, timeout_ms, &resp,
	    err, sizeof(err));
	vdb_free(body);
	if (rv != 0)
		return vdb_err(rv, "%s: %s", m->url, err);
	rv = proto_promote_result_decode(resp->body, resp->body_len, term,
	    last_seq);
	proto_response_free(resp);
	return rv;
}

/* Tell every other member of s to follow p; their outcomes as JSON. */
static json_t *
shard_follow_all(struct router_shard *s, size_t p, const char *key,
    uint32_t timeout_ms)
{
	json_t *a = json_array();
	char err[256];

	for (size_t i = 0; a != NULL && i < s->n_members; i++) {
		if (i == p)
			continue;
		int rv = member_follow(s, &s->members[i], p, key, timeout_ms,
		    err, sizeof(err));
		json_array_append_new(a, json_pack("{s:s, s:b, s:s?}", "url",
		    s->members[i].url, "followed", rv == 0, "error",
		    rv == 0 ? NULL : err));
	}
	return a;
}

int
router_promote(void *ctx, const char *node, json_t **out)
{
	router *r = ctx;
	pthread_mutex_t *lock = &r->lock;
	uint64_t term = 0, last_seq = 0;
	router_topology *t;
	struct router_shard *s;
	uint32_t timeout_ms;
	const char *key;
	size_t si, mi;
	int rv;

	t = router_topology_acquire(r, &timeout_ms, &key);
	/* fresh roles, terms and node ids first */
	router_health_round(t, key, round_timeout(timeout_ms), lock);
	if (member_find(t, node, lock, &si, &mi) != 0) {
		rv = vdb_err(VECDB_ENOTFOUND, "no member of the topology has "
		    "the url or node id '%s'", node);
		goto out;
	}
	s = &t->shards[si];
	if ((rv = promote_check(s, mi)) != VECDB_OK)
		goto out;
	if ((rv = member_promote(&s->members[mi], shard_term(s), key,
	    timeout_ms, &term, &last_seq)) != VECDB_OK)
		goto out;
	__atomic_store_n(&s->members[mi].term, term, __ATOMIC_RELAXED);
	__atomic_store_n(&s->members[mi].role, ROLE_PRIMARY, __ATOMIC_RELAXED);
	__atomic_store_n(&s->primary_idx, (int) mi, __ATOMIC_RELAXED);
	VDB_LOG_WARN("ROUT", "shard %u: promoted %s to primary (term %llu)",
	    s->id, s->members[mi].url, (unsigned long long) term);
	*out = json_pack("{s:i, s:s, s:s, s:I, s:I, s:o}", "shard", (int) s->id,
	    "node", node, "url", s->members[mi].url, "term", (json_int_t) term,
	    "last_seq", (json_int_t) last_seq, "members",
	    shard_follow_all(s, mi, key, timeout_ms));
	if (*out == NULL)
		rv = vdb_err(VECDB_ENOMEM, "out of memory");
out:
	router_topology_release(r, t);
	return rv;
}

/* ===== Readiness ===== */

/*
 * A connected member that missed ROUTER_UNANSWERED_MAX rounds in a row
 * is hung: stopped, or stuck. The back-off does not count: a member the
 * router skips for a while may still answer the next round.
 */
int
router_ready(void *ctx, json_t **not_ready)
{
	router *r = ctx;
	router_topology *t = router_topology_acquire(r, NULL, NULL);
	json_t *ids = json_array();
	char msg[1024];
	size_t off = 0;

	if (ids == NULL) {
		router_topology_release(r, t);
		return vdb_err(VECDB_ENOMEM, "out of memory");
	}
	msg[0] = '\0';
	for (size_t i = 0; i < t->n; i++) {
		struct router_shard *s = &t->shards[i];
		size_t k;
		/* a shard with any member connected can be read: a dead
		 * primary alone must not take every router out of its
		 * Service (its shard's writes answer 503 meanwhile) */
		int hung = 0;
		for (k = 0; k < s->n_members; k++) {
			if (!router_member_connected(&s->members[k]))
				continue;
			if (__atomic_load_n(&s->members[k].unanswered,
			    __ATOMIC_RELAXED) < ROUTER_UNANSWERED_MAX)
				break;
			hung = 1;
		}
		if (k < s->n_members)
			continue;
		json_array_append_new(ids, json_integer((json_int_t) s->id));
		if (off < sizeof(msg))
			off += (size_t) snprintf(msg + off, sizeof(msg) - off,
			    "%sshard %u (%s)", off ? ", " : "", s->id, hung ?
			    "connected, but no member answers" :
			    "no connection to any member");
	}
	router_topology_release(r, t);
	if (json_array_size(ids) == 0) {
		json_decref(ids);
		return VECDB_OK;
	}
	*not_ready = ids;
	return vdb_err(VECDB_ECLOSED, "not ready: %s", msg);
}
