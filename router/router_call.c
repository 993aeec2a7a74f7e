/*
 * router_call.c: requests to shard members. A call goes to one member at
 * a time (router_member.c picks it); a read whose member does not answer
 * asks the next one while the deadline allows. A fan-out sends all its
 * calls at once (one exchange of proto_rpc.h each) under one deadline,
 * and the answers' errors become one error naming every failed shard.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "router_impl.h"
#include "vdb.h"

/* Microseconds on the monotonic clock. */
static uint64_t
now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t) ts.tv_sec * 1000000 + (uint64_t) ts.tv_nsec / 1000;
}


/* The primary's url, then with a read the others': "url, url...". */
static void
members_name(struct router_shard *s, int read, char *buf, size_t len)
{
	size_t n = read && !api_read_opts()->primary ? s->n_members : 1;
	size_t p = (size_t) __atomic_load_n(&s->primary_idx, __ATOMIC_RELAXED);
	size_t off = 0;

	buf[0] = '\0';
	for (size_t k = 0; k < n && off < len; k++)
		off += (size_t) snprintf(buf + off, len - off, "%s%s",
		    k ? ", " : "", s->members[(p + k) % s->n_members].url);
}

/* Record that c could not reach its shard (rv UNAVAILABLE). */
static void
call_unavailable(struct router_call *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void
call_unavailable(struct router_call *c, const char *fmt, ...)
{
	va_list ap;

	c->rv = VECDB_EUNAVAILABLE;
	va_start(ap, fmt);
	vsnprintf(c->msg, sizeof(c->msg), fmt, ap);
	va_end(ap);
}

/*
 * Start sending c to the next member; on failure c->rv is set. A shard
 * whose members are all in back-off is refused at once; that refusal
 * must not restart the back-off, or steady traffic would keep a
 * recovered member out for good.
 */
static void
call_send(router_topology *t, struct router_call *c, uint64_t end)
{
	struct router_shard *s = &t->shards[c->shard];
	uint64_t now = vdb_now_ms();
	int i = router_member_pick(s, c->read && !api_read_opts()->primary,
	    c->tried, now);
	struct router_member *m;
	uint64_t send_end = end;
	char names[256];

	c->unsent = 0;
	if (i < 0) {
		c->unsent = 1;
		if (c->tried == 0) {
			members_name(s, c->read, names, sizeof(names));
			call_unavailable(c, "shard %u (%s) is unavailable "
			    "(failed less than %d ms ago)", s->id, names,
			    ROUTER_BACKOFF_MS);
		}
		return;
	}
	m = &s->members[i];
	c->member = i;
	c->tried |= 1ULL << i;
	if (c->hold && !router_member_connected(m)) {
		/* not handed to nng, where it could wait for this member
		 * while another takes over: call_resend() sends it once a
		 * primary is connected */
		c->unsent = 1;
		call_unavailable(c, "shard %u (%s) is not connected (the "
		    "request was not sent)", s->id, m->url);
		return;
	}
	c->rv = VECDB_OK;
	__atomic_fetch_add(&m->stats->requests, 1, __ATOMIC_RELAXED);
	c->sent_us = now_us();
	/* nng holds a request for a member with no connection until one
	 * comes: a restarting member's comes within a few ms, a dead
	 * one's never, and the call must fail in time for a retry to
	 * reach whoever took over. A member not yet connected since its
	 * socket was opened (a topology just read: the dial and a TLS
	 * handshake may be under way) is waited for until the deadline. */
	c->unconnected = !router_member_connected(m) &&
	    __atomic_load_n(&m->conn->was_connected, __ATOMIC_RELAXED) &&
	    end > now + ROUTER_CONNECT_WAIT_MS;
	/* A held write goes only to a connected member (above), but that
	 * connection may be closing (the node just killed, nng not yet
	 * told): it too is given ROUTER_CONNECT_WAIT_MS to leave, then
	 * call_wait looks again. */
	if (c->unconnected || (c->hold && end > now + ROUTER_CONNECT_WAIT_MS))
		send_end = now + ROUTER_CONNECT_WAIT_MS;
	if (proto_rpc_send_on(&c->x, &m->conn->pool, c->req, c->reqlen,
	    send_end) != VECDB_OK) {
		c->rv = VECDB_ENOMEM;
		snprintf(c->msg, sizeof(c->msg), "out of memory");
	}
}

/*
 * Wait for the member c asked, until the deadline.
 * @return 0 when it answered (c->resp or a decode error in c->rv), -1
 *	when it did not (marked failed, message set).
 */
static int
call_wait(router *r, router_topology *t, struct router_call *c, uint64_t end)
{
	struct router_shard *s = &t->shards[c->shard];
	struct router_member *m = &s->members[c->member];
	uint64_t now, left;
	int sent = 0, lost = 0;

	if (proto_rpc_wait_sent(&c->x) != VECDB_OK) {
		/* a held write its member did not take in time: busy if
		 * still connected, and then given the whole deadline */
		int conn = router_member_connected(m);
		if (!c->hold || !conn || vdb_now_ms() >= end ||
		    proto_rpc_send_on(&c->x, &m->conn->pool, c->req, c->reqlen,
		    end) != VECDB_OK || proto_rpc_wait_sent(&c->x) != VECDB_OK) {
			c->unconnected |= c->hold && !conn;
			goto unsent;
		}
	}
	/* A read with somewhere else to go waits half of what is left:
	 * a hung member must leave time for the next one. */
	now = vdb_now_ms();
	left = end > now ? end - now : 1;
	if (c->read && router_member_left(s, c->tried, now) && left > 1)
		left /= 2;
	switch (proto_rpc_wait(&c->x, now + left, &c->resp)) {
	case PROTO_RPC_UNSENT:
		goto unsent;
	case PROTO_RPC_LOST:
		lost = 1;
		/* fall through */
	case PROTO_RPC_LATE:
		sent = 1;
		goto late;
	case PROTO_RPC_BAD:
		router_stats_answer(m->stats, now_us() - c->sent_us);
		__atomic_fetch_add(&m->stats->errors, 1, __ATOMIC_RELAXED);
		c->rv = VECDB_EINTERNAL;
		snprintf(c->msg, sizeof(c->msg), "shard %u (%s): bad response: "
		    "%s", s->id, m->url, vecdb_errmsg());
		return 0;
	case PROTO_RPC_ANSWERED:
		break;
	}
	router_stats_answer(m->stats, now_us() - c->sent_us);
	router_member_backoff(m, 0, vdb_now_ms());
	return 0;
unsent:
late:
	c->unsent = !sent;
	__atomic_fetch_add(&m->stats->errors, 1, __ATOMIC_RELAXED);
	router_member_backoff(m, 1, vdb_now_ms());
	if (sent && !c->read && !c->check) {
		/* it may have been applied: say so, and keep 503 for what
		 * surely was not */
		char why[64];
		c->rv = VECDB_ETIMEDOUT;
		if (lost)
			snprintf(why, sizeof(why), "lost the connection before "
			    "answering");
		else
			snprintf(why, sizeof(why), "did not answer within %u ms",
			    r->timeout_ms);
		snprintf(c->msg, sizeof(c->msg), "shard %u (%s) %s: the write "
		    "may have been applied or not (an upsert or delete may be "
		    "retried safely)", s->id, m->url, why);
	} else if (lost) {
		call_unavailable(c, "shard %u (%s) lost the connection before "
		    "answering", s->id, m->url);
	} else if (!sent && c->unconnected) {
		call_unavailable(c, "shard %u (%s) is not connected (the "
		    "request was not sent)", s->id, m->url);
	} else {
		call_unavailable(c, "shard %u (%s) did not answer within "
		    "%u ms%s", s->id, m->url, r->timeout_ms, sent ? "" :
		    " (the request was not sent)");
	}
	return -1;
}

/*
 * A held write (c->hold) its shard's primary surely never got (it had no
 * connection, or was in back-off after losing one) is offered again
 * every ROUTER_RESEND_MS while the deadline allows, and sent once its
 * primary is connected: the same one back, a member the health rounds
 * found promoted, or the one etcd elected (with etcd, on the topology of
 * the moment; a topology file changes only by a reload). A write that
 * may have left is never sent again (call_wait says 504).
 *
 * The wait keeps the request's thread: at most half of its front end's
 * request threads wait so at once (api_wait_begin), and a write past
 * that share keeps its 503, so that reads still find threads.
 */
static void
call_resend(router *r, router_topology *t, struct router_call *c, uint64_t end)
{
	int rv = c->rv, tries = 0;
	uint64_t t0 = vdb_now_ms();
	char msg[sizeof(c->msg)];
	size_t off = strlen(c->msg);

	if (!api_wait_begin()) {
		__atomic_fetch_add(&r->writes_not_held, 1, __ATOMIC_RELAXED);
		snprintf(c->msg + off, sizeof(c->msg) - off, "; not held for "
		    "a primary: %u request threads already wait for one, as "
		    "many as may", api_wait_max());
		return;
	}
	__atomic_fetch_add(&r->writes_held, 1, __ATOMIC_RELAXED);
	memcpy(msg, c->msg, sizeof(msg));
	while (c->unsent && vdb_now_ms() + ROUTER_RESEND_MS < end) {
		struct timespec ts = { 0, ROUTER_RESEND_MS * 1000000L };
		router_topology *now;

		nanosleep(&ts, NULL);
		now = r->coord != NULL ? router_topology_acquire(r, NULL,
		    NULL) : t;
		if (now->n != t->n || now->shards[c->shard].id !=
		    t->shards[c->shard].id) {
			router_topology_release(r, now);
			break;   /* resharded: not the same shard */
		}
		proto_rpc_xchg_fini(&c->x);
		c->tried = 0;
		tries++;
		call_send(now, c, end);
		if (c->x.aio != NULL)
			call_wait(r, now, c, end);
		else if (c->unsent) {
			/* no connected primary yet, or it is in back-off:
			 * keep what the first try said */
			c->rv = rv;
			memcpy(c->msg, msg, sizeof(msg));
		}
		/* the answer is decoded: the exchange may not outlive the
		 * topology whose socket it is on */
		proto_rpc_xchg_fini(&c->x);
		if (now != t)
			router_topology_release(r, now);
	}
	__atomic_fetch_sub(&r->writes_held, 1, __ATOMIC_RELAXED);
	api_wait_end();
	if (c->unsent)
		VDB_LOG_WARN("ROUT", "shard %u: a write waited %llu ms for a "
		    "connected primary (%d tries): %s", t->shards[c->shard].id,
		    (unsigned long long) (vdb_now_ms() - t0), tries, c->msg);
}

/*
 * Wait for c; a read whose member did not answer asks the next one
 * (another replica, then the primary) while the deadline allows, and a
 * write that surely was not sent waits for a primary to take it.
 */
static void
call_finish(router *r, router_topology *t, struct router_call *c, uint64_t end)
{
	while (c->x.aio != NULL && call_wait(r, t, c, end) != 0 &&
	    c->read && vdb_now_ms() < end) {
		proto_rpc_xchg_fini(&c->x);
		call_send(t, c, end);
	}
	if (c->hold && c->unsent)
		call_resend(r, t, c, end);
}

/* Writes wait for a primary where another can come: with etcd, or with
 * replicas to promote. */
static void
call_hold(router *r, router_topology *t, struct router_call *c)
{
	c->hold = !c->read && (r->coord != NULL ||
	    t->shards[c->shard].n_members > 1);
}

/* Turn a shard's response code into c->rv / c->msg. */
static void
call_code(router_topology *t, struct router_call *c)
{
	if (c->rv != VECDB_OK || c->resp == NULL || c->resp->code == PROTO_OK)
		return;
	c->rv = proto_err_of(c->resp->code);
	snprintf(c->msg, sizeof(c->msg), "shard %u: %s",
	    t->shards[c->shard].id, c->resp->message);
}

void
router_fanout(router *r, router_topology *t, struct router_call *calls,
    size_t n)
{
	uint64_t end = vdb_now_ms() + r->timeout_ms;

	for (size_t i = 0; i < n; i++)
		if (calls[i].rv == VECDB_OK && calls[i].req != NULL) {
			call_hold(r, t, &calls[i]);
			call_send(t, &calls[i], end);
		}
	for (size_t i = 0; i < n; i++)
		if (calls[i].req != NULL) {
			call_finish(r, t, &calls[i], end);
			call_code(t, &calls[i]);
		}
}

void
router_calls_free(struct router_call *calls, size_t n)
{
	if (calls == NULL)
		return;
	for (size_t i = 0; i < n; i++)
		router_call_fini(&calls[i]);
	vdb_free(calls);
}

void
router_call_fini(struct router_call *c)
{
	proto_rpc_xchg_fini(&c->x);
	vdb_free(c->req);
	proto_response_free(c->resp);
}

int
router_calls_check(struct router_call *calls, size_t n, int ignore)
{
	char buf[2048] = "";
	size_t len = 0;
	int rv = VECDB_OK;

	for (size_t i = 0; i < n; i++) {
		if (calls[i].rv == VECDB_OK || calls[i].rv == ignore ||
		    calls[i].skip)
			continue;
		if (rv == VECDB_OK)
			rv = calls[i].rv;
		if (len < sizeof(buf))
			len += (size_t) snprintf(buf + len, sizeof(buf) - len,
			    "%s%s", len ? "; " : "", calls[i].msg);
	}
	return rv == VECDB_OK ? VECDB_OK : vdb_err(rv, "%s", buf);
}

int
router_calls_settle(router_topology *t, struct router_call *c, size_t n)
{
	size_t answered = 0;

	if (api_read_opts()->allow_partial) {
		for (size_t i = 0; i < n; i++)
			answered += c[i].rv == VECDB_OK;
		for (size_t i = 0; i < n && answered > 0; i++)
			if (c[i].rv == VECDB_EUNAVAILABLE) {
				c[i].skip = 1;
				api_read_opts_missing(t->shards[c[i].shard].id);
			}
	}
	return router_calls_check(c, n, VECDB_OK);
}

size_t
router_calls_answered(const struct router_call *c, size_t n)
{
	size_t k = 0;

	for (size_t i = 0; i < n; i++)
		k += !c[i].skip;
	return k;
}

int
router_calls_new(router *r, size_t nshards, uint32_t method, int read,
    uint8_t *body, size_t len, struct router_call **out)
{
	struct router_call *c = vdb_calloc(nshards, sizeof(*c));
	int rv = VECDB_OK;

	if (c == NULL) {
		vdb_free(body);
		return vdb_err(VECDB_ENOMEM, "out of memory");
	}
	for (size_t i = 0; i < nshards && rv == VECDB_OK; i++) {
		c[i].shard = i;
		c[i].read = read;
		c[i].member = -1;
		rv = proto_request_encode(method, r->key, i, body, len,
		    &c[i].req, &c[i].reqlen);
	}
	vdb_free(body);
	if (rv != VECDB_OK) {
		router_calls_free(c, nshards);
		return rv;
	}
	*out = c;
	return VECDB_OK;
}

int
router_broadcast(router *r, router_topology *t, uint32_t method, int read,
    int enc_rv, uint8_t *body, size_t len, struct router_call **out)
{
	int rv;

	if (enc_rv != VECDB_OK)
		return enc_rv;
	if ((rv = router_calls_new(r, t->n, method, read, body, len, out)) !=
	    VECDB_OK)
		return rv;
	router_fanout(r, t, *out, t->n);
	return VECDB_OK;
}
int
router_ddl(router *r, uint32_t method, int enc_rv, uint8_t *body,
    size_t len, int absent_code)
{
	router_topology *t = router_topology_acquire(r, NULL, NULL);
	struct router_call *c = NULL;
	size_t same = 0;
	int rv;

	if ((rv = router_broadcast(r, t, method, 0, enc_rv, body, len, &c)) ==
	    VECDB_OK) {
		for (size_t i = 0; i < t->n; i++)
			same += c[i].rv == absent_code;
		if (same == t->n)
			rv = router_calls_check(c, t->n, VECDB_OK);
		else
			rv = router_calls_check(c, t->n, absent_code);
		if (rv == VECDB_OK && same > 0)
			VDB_LOG_WARN("ROUT", "repaired a collection present on "
			    "%zu of %zu shards", same, t->n);
	}
	router_calls_free(c, t->n);
	router_topology_release(r, t);
	return rv;
}

int
router_primaries(router *r, uint32_t method, int enc_rv, uint8_t *body,
    size_t len)
{
	router_topology *t = router_topology_acquire(r, NULL, NULL);
	struct router_call *c = NULL;
	int rv;

	if ((rv = router_broadcast(r, t, method, 0, enc_rv, body, len, &c)) ==
	    VECDB_OK)
		rv = router_calls_check(c, t->n, VECDB_OK);
	router_calls_free(c, t->n);
	router_topology_release(r, t);
	return rv;
}


int
router_shard_call(router *r, router_topology *t, size_t shard,
    uint32_t method, const uint8_t *body, size_t len,
    struct proto_response **out)
{
	uint64_t end = vdb_now_ms() + r->timeout_ms;
	struct router_call *c = vdb_calloc(1, sizeof(*c));
	int rv;

	if (c == NULL)
		return vdb_err(VECDB_ENOMEM, "out of memory");
	c->shard = shard;
	c->member = -1;
	if ((rv = proto_request_encode(method, r->key, (uint32_t) shard, body,
	    len, &c->req, &c->reqlen)) == VECDB_OK) {
		call_hold(r, t, c);
		call_send(t, c, end);
		call_finish(r, t, c, end);
		call_code(t, c);
		if ((rv = c->rv) != VECDB_OK)
			vdb_err(rv, "%s", c->msg);
		else {
			*out = c->resp;
			c->resp = NULL;
		}
	}
	router_calls_free(c, 1);
	return rv;
}

