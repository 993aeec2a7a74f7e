/*
 * router_backend.c: the cluster backend. Every api_backend call becomes
 * requests to shard primaries over nng req0 (one context per request,
 * all in flight at once, one deadline), and their answers are merged.
 */
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <openssl/evp.h>
#include <sys/types.h>
#include <uuid/uuid.h>

#include "proto.h"
#include "router.h"
#include "vdb.h"

struct router {
	const char *path;         /* topology file */
	uint32_t timeout_ms;
	const char *key;          /* node api key, "" for none */
	pthread_mutex_t lock;     /* guards topo, refs, down_until_ms, stats */
	router_topology *topo;
	struct router_member_stats *stats;  /* every member ever seen */
	router_health *health;    /* the thread asking members their role */
};

/* One request to one shard, sent to one of its members at a time. */
struct rcall {
	size_t shard;                 /* index in the topology */
	int read;                     /* may be answered by a replica */
	int check;                    /* a write's check: changes nothing */
	int member;                   /* the member asked, -1 before */
	uint64_t tried;               /* members asked so far (bits) */
	uint64_t sent_us;             /* when the member was asked */
	int skip;                     /* left out of a partial answer */
	uint8_t *req;                 /* encoded request (owned) */
	size_t reqlen;
	struct proto_response *resp;  /* the answer when transport worked */
	int rv;                       /* VECDB_OK or the shard's error */
	char msg[512];                /* why, naming the shard */
	nng_ctx ctx;
	nng_aio *aio;
};

/* Microseconds on the monotonic clock. */
static uint64_t
now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t) ts.tv_sec * 1000000 + (uint64_t) ts.tv_nsec / 1000;
}

/* ===== Router ===== */

/* The stats of (shard, url), created on first sight; lock held. */
static struct router_member_stats *
stats_find(router *r, uint32_t shard, const char *url)
{
	struct router_member_stats *st;

	for (st = r->stats; st != NULL; st = st->next)
		if (st->shard == shard && strcmp(st->url, url) == 0)
			return st;
	if ((st = vdb_calloc(1, sizeof(*st))) == NULL ||
	    (st->url = vdb_strdup(url)) == NULL) {
		vdb_free(st);
		return NULL;
	}
	st->shard = shard;
	st->next = r->stats;
	r->stats = st;
	return st;
}

/* Point every member of t at its stats. */
static int
stats_bind(router *r, router_topology *t)
{
	int rv = VECDB_OK;

	pthread_mutex_lock(&r->lock);
	for (size_t i = 0; i < t->n && rv == VECDB_OK; i++)
		for (size_t k = 0; k < t->shards[i].n_members; k++) {
			struct router_member *m = &t->shards[i].members[k];
			if ((m->stats = stats_find(r, t->shards[i].id, m->url))
			    == NULL) {
				rv = vdb_err(VECDB_ENOMEM, "out of memory");
				break;
			}
		}
	pthread_mutex_unlock(&r->lock);
	return rv;
}

/* Load, connect and bind a topology from r's file. */
static int
topo_open(router *r, router_topology **out)
{
	router_topology *t;
	int rv;

	if ((rv = router_topology_load(r->path, &t)) != VECDB_OK)
		return rv;
	if ((rv = router_topology_connect(t)) != VECDB_OK ||
	    (rv = stats_bind(r, t)) != VECDB_OK) {
		router_topology_free(t);
		return rv;
	}
	t->refs = 1;
	*out = t;
	return VECDB_OK;
}

int
router_new(const struct router_config *cfg, router **out)
{
	router *r = vdb_calloc(1, sizeof(*r));
	int rv;

	if (r == NULL)
		return vdb_err(VECDB_ENOMEM, "out of memory");
	r->path = cfg->topology;
	r->timeout_ms = cfg->timeout_ms;
	r->key = cfg->node_api_key ? cfg->node_api_key : "";
	pthread_mutex_init(&r->lock, NULL);
	if ((rv = topo_open(r, &r->topo)) != VECDB_OK ||
	    (rv = router_health_start(r, &r->health)) != VECDB_OK) {
		router_free(r);
		return rv;
	}
	*out = r;
	return VECDB_OK;
}

/* Take a reference to the current topology. */
static router_topology *
topo_get(router *r)
{
	router_topology *t;

	pthread_mutex_lock(&r->lock);
	t = r->topo;
	t->refs++;
	pthread_mutex_unlock(&r->lock);
	return t;
}

/* Drop a reference; the last one frees. */
static void
topo_put(router *r, router_topology *t)
{
	unsigned left;

	pthread_mutex_lock(&r->lock);
	left = --t->refs;
	pthread_mutex_unlock(&r->lock);
	if (left == 0)
		router_topology_free(t);
}

int
router_reload(router *r)
{
	router_topology *t, *old;
	int rv;

	if ((rv = topo_open(r, &t)) != VECDB_OK)
		return rv;
	pthread_mutex_lock(&r->lock);
	old = r->topo;
	r->topo = t;
	pthread_mutex_unlock(&r->lock);
	topo_put(r, old);
	return VECDB_OK;
}

void
router_free(router *r)
{
	struct router_member_stats *st, *next;

	if (r == NULL)
		return;
	router_health_stop(r->health);
	/* A status worker still closing its socket: leave ours open (the
	 * process is ending) rather than risk both waiting in nng_close. */
	if (router_status_drain(5000) > 0)
		VDB_LOG_WARN("ROUT", "a cluster status worker is still running: "
		    "not closing the member sockets");
	else if (r->topo != NULL)
		router_topology_free(r->topo);
	for (st = r->stats; st != NULL; st = next) {
		next = st->next;
		vdb_free(st->url);
		vdb_free(st);
	}
	pthread_mutex_destroy(&r->lock);
	vdb_free(r);
}

/* ===== Fan-out ===== */

/* Mark a member failed (skip it for ROUTER_BACKOFF_MS) or healthy. */
static void
member_mark(router *r, struct router_member *m, int failed)
{
	pthread_mutex_lock(&r->lock);
	m->down_until_ms = failed ? vdb_now_ms() + ROUTER_BACKOFF_MS : 0;
	pthread_mutex_unlock(&r->lock);
}

/* Is the member in its back-off period? */
static int
member_down(router *r, struct router_member *m)
{
	uint64_t until;

	pthread_mutex_lock(&r->lock);
	until = m->down_until_ms;
	pthread_mutex_unlock(&r->lock);
	return until > vdb_now_ms();
}

/* Could c still ask member i (only if connected, with @p live)? */
static int
member_usable(router *r, struct router_shard *s, struct rcall *c, size_t i,
    int live)
{
	return !(c->tried >> i & 1) && !member_down(r, &s->members[i]) &&
	    (!live || __atomic_load_n(&s->members[i].pipes,
	    __ATOMIC_RELAXED) > 0);
}

/* One pass of member_pick() over the usable members. */
static int
member_pick_pass(router *r, struct router_shard *s, struct rcall *c,
    int live)
{
	size_t n = s->n_members;
	size_t p = (size_t) __atomic_load_n(&s->primary_idx, __ATOMIC_RELAXED);
	unsigned start;

	if (c->read && !api_read_opts()->primary && n > 1) {
		start = __atomic_fetch_add(&s->rr, 1, __ATOMIC_RELAXED);
		for (size_t k = 0; k < n - 1; k++) {
			/* the k-th replica: every member but the primary */
			size_t i = (p + 1 + (start + k) % (n - 1)) % n;
			if (member_usable(r, s, c, i, live))
				return (int) i;
		}
	}
	return member_usable(r, s, c, p, live) ? (int) p : -1;
}

/*
 * The member c asks next, or -1 when none is left. Writes, and reads
 * with "consistency": "primary", go to the primary; other reads go to
 * the replicas first, round robin, then to the primary. Members with a
 * live connection come first: nng tells us at once when a node goes
 * away, so a dead replica costs nothing; one not yet (re)connected is
 * still tried after them, since its connection may be on the way.
 */
static int
member_pick(router *r, struct router_shard *s, struct rcall *c)
{
	int i = member_pick_pass(r, s, c, 1);

	return i >= 0 ? i : member_pick_pass(r, s, c, 0);
}

/* Could a read of c still go elsewhere if its member fails? */
static int
call_has_fallback(router *r, struct router_shard *s, struct rcall *c)
{
	if (!c->read)
		return 0;
	for (size_t i = 0; i < s->n_members; i++)
		if (member_usable(r, s, c, i, 0))
			return 1;
	return 0;
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
call_unavailable(struct rcall *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void
call_unavailable(struct rcall *c, const char *fmt, ...)
{
	va_list ap;

	c->rv = VECDB_ECLOSED;
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
call_send(router *r, router_topology *t, struct rcall *c, uint64_t end)
{
	struct router_shard *s = &t->shards[c->shard];
	int i = member_pick(r, s, c);
	uint64_t now = vdb_now_ms();
	struct router_member *m;
	nng_msg *msg = NULL;
	char names[256];

	if (i < 0) {
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
	c->rv = VECDB_OK;
	if (nng_msg_alloc(&msg, 0) != 0 ||
	    nng_msg_append(msg, c->req, c->reqlen) != 0 ||
	    nng_ctx_open(&c->ctx, m->sock) != 0) {
		nng_msg_free(msg);
		c->rv = vdb_err(VECDB_ENOMEM, "out of memory");
		snprintf(c->msg, sizeof(c->msg), "out of memory");
		return;
	}
	if (nng_aio_alloc(&c->aio, NULL, NULL) != 0) {
		nng_msg_free(msg);
		nng_ctx_close(c->ctx);
		c->aio = NULL;
		c->rv = vdb_err(VECDB_ENOMEM, "out of memory");
		snprintf(c->msg, sizeof(c->msg), "out of memory");
		return;
	}
	__atomic_fetch_add(&m->stats->requests, 1, __ATOMIC_RELAXED);
	c->sent_us = now_us();
	nng_aio_set_timeout(c->aio, (nng_duration) (end > now ? end - now : 1));
	nng_aio_set_msg(c->aio, msg);
	nng_ctx_send(c->ctx, c->aio);
}

/* Upper bounds of the latency buckets, in microseconds. */
static const uint64_t lat_bounds_us[ROUTER_LAT_BUCKETS] = {
	500, 1000, 2500, 5000, 10000, 25000, 50000, 100000, 250000, 500000,
	1000000, 2500000, 5000000, 10000000
};

/* Count an answer that took us microseconds. */
static void
stats_answer(struct router_member_stats *st, uint64_t us)
{
	size_t b = 0;

	while (b < ROUTER_LAT_BUCKETS && us > lat_bounds_us[b])
		b++;
	__atomic_fetch_add(&st->lat[b], 1, __ATOMIC_RELAXED);
	__atomic_fetch_add(&st->lat_sum_us, us, __ATOMIC_RELAXED);
}

/*
 * Wait for the member c asked, until the deadline.
 * @return 0 when it answered (c->resp or a decode error in c->rv), -1
 *	when it did not (marked failed, message set).
 */
static int
call_wait(router *r, router_topology *t, struct rcall *c, uint64_t end)
{
	struct router_shard *s = &t->shards[c->shard];
	struct router_member *m = &s->members[c->member];
	uint64_t now, left;
	nng_msg *msg;
	int sent = 0;

	nng_aio_wait(c->aio);
	if (nng_aio_result(c->aio) != 0) {
		nng_msg_free(nng_aio_get_msg(c->aio));
		goto unsent;
	}
	/* A read with somewhere else to go waits half of what is left:
	 * a hung member must leave time for the next one. */
	now = vdb_now_ms();
	left = end > now ? end - now : 1;
	if (call_has_fallback(r, s, c) && left > 1)
		left /= 2;
	nng_aio_set_timeout(c->aio, (nng_duration) left);
	nng_ctx_recv(c->ctx, c->aio);
	nng_aio_wait(c->aio);
	if (nng_aio_result(c->aio) != 0) {
		sent = 1;
		goto late;
	}
	msg = nng_aio_get_msg(c->aio);
	stats_answer(m->stats, now_us() - c->sent_us);
	if (proto_response_decode(nng_msg_body(msg), nng_msg_len(msg),
	    &c->resp) != VECDB_OK) {
		__atomic_fetch_add(&m->stats->errors, 1, __ATOMIC_RELAXED);
		c->rv = VECDB_EINTERNAL;
		snprintf(c->msg, sizeof(c->msg), "shard %u (%s): bad response: "
		    "%s", s->id, m->url, vecdb_errmsg());
	} else
		member_mark(r, m, 0);
	nng_msg_free(msg);
	return 0;
unsent:
late:
	__atomic_fetch_add(&m->stats->errors, 1, __ATOMIC_RELAXED);
	member_mark(r, m, 1);
	if (sent && !c->read && !c->check) {
		/* it may have been applied: say so, and keep 503 for what
		 * surely was not */
		c->rv = VECDB_ETIMEDOUT;
		snprintf(c->msg, sizeof(c->msg), "shard %u (%s) did not answer "
		    "within %u ms: the write may have been applied or not "
		    "(an upsert or delete may be retried safely)", s->id,
		    m->url, r->timeout_ms);
	} else {
		call_unavailable(c, "shard %u (%s) did not answer within "
		    "%u ms%s", s->id, m->url, r->timeout_ms, sent ? "" :
		    " (the request was not sent)");
	}
	return -1;
}

/*
 * Wait for c; a read whose member did not answer asks the next one
 * (another replica, then the primary) while the deadline allows.
 */
static void
call_finish(router *r, router_topology *t, struct rcall *c, uint64_t end)
{
	while (c->aio != NULL && call_wait(r, t, c, end) != 0 &&
	    c->read && vdb_now_ms() < end) {
		nng_aio_free(c->aio);
		nng_ctx_close(c->ctx);
		c->aio = NULL;
		call_send(r, t, c, end);
	}
}

/* Turn a shard's response code into c->rv / c->msg. */
static void
call_code(router_topology *t, struct rcall *c)
{
	if (c->rv != VECDB_OK || c->resp == NULL || c->resp->code == PROTO_OK)
		return;
	c->rv = proto_err_of(c->resp->code);
	snprintf(c->msg, sizeof(c->msg), "shard %u: %s",
	    t->shards[c->shard].id, c->resp->message);
}

/* Run the calls that have a request, in parallel under one deadline. */
static void
fanout(router *r, router_topology *t, struct rcall *calls, size_t n)
{
	uint64_t end = vdb_now_ms() + r->timeout_ms;

	for (size_t i = 0; i < n; i++)
		if (calls[i].rv == VECDB_OK && calls[i].req != NULL)
			call_send(r, t, &calls[i], end);
	for (size_t i = 0; i < n; i++)
		if (calls[i].req != NULL) {
			call_finish(r, t, &calls[i], end);
			call_code(t, &calls[i]);
		}
}

/* Free the calls. */
static void
calls_free(struct rcall *calls, size_t n)
{
	if (calls == NULL)
		return;
	for (size_t i = 0; i < n; i++) {
		if (calls[i].aio != NULL) {
			nng_aio_free(calls[i].aio);
			nng_ctx_close(calls[i].ctx);
		}
		vdb_free(calls[i].req);
		proto_response_free(calls[i].resp);
	}
	vdb_free(calls);
}

/*
 * Fail with the first failing call's code and a message naming every
 * failed shard; calls whose rv is @p ignore, and skipped ones, count as
 * successes.
 */
static int
calls_check(struct rcall *calls, size_t n, int ignore)
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

/*
 * calls_check for queries: with "allow_partial", shards that could not
 * be reached are left out of the answer (and named in it), as long as
 * one shard answered.
 */
static int
calls_settle(router_topology *t, struct rcall *c, size_t n)
{
	size_t answered = 0;

	if (api_read_opts()->allow_partial) {
		for (size_t i = 0; i < n; i++)
			answered += c[i].rv == VECDB_OK;
		for (size_t i = 0; i < n && answered > 0; i++)
			if (c[i].rv == VECDB_ECLOSED) {
				c[i].skip = 1;
				api_read_opts_missing(t->shards[c[i].shard].id);
			}
	}
	return calls_check(c, n, VECDB_OK);
}

/* How many calls answered (were not skipped). */
static size_t
answered(const struct rcall *c, size_t n)
{
	size_t k = 0;

	for (size_t i = 0; i < n; i++)
		k += !c[i].skip;
	return k;
}

/* Calls of one body for every shard; reads may go to replicas. */
static int
calls_new(router *r, size_t nshards, uint32_t method, int read,
    uint8_t *body, size_t len, struct rcall **out)
{
	struct rcall *c = vdb_calloc(nshards, sizeof(*c));
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
		calls_free(c, nshards);
		return rv;
	}
	*out = c;
	return VECDB_OK;
}

/*
 * Send one encoded body (owned, freed here) to every shard: to the
 * primaries, or with @p read to any member. On success the caller frees
 * *out with calls_free(out, t->n).
 */
static int
broadcast(router *r, router_topology *t, uint32_t method, int read,
    int enc_rv, uint8_t *body, size_t len, struct rcall **out)
{
	int rv;

	if (enc_rv != VECDB_OK)
		return enc_rv;
	if ((rv = calls_new(r, t->n, method, read, body, len, out)) !=
	    VECDB_OK)
		return rv;
	fanout(r, t, *out, t->n);
	return VECDB_OK;
}

/* ===== Collections ===== */

/* Run DDL on every shard: absent_code (EEXIST on create, ENOTFOUND on
 * delete) is an error only when every shard answered it. */
static int
ddl(router *r, uint32_t method, int enc_rv, uint8_t *body, size_t len,
    int absent_code)
{
	router_topology *t = topo_get(r);
	struct rcall *c = NULL;
	size_t same = 0;
	int rv;

	if ((rv = broadcast(r, t, method, 0, enc_rv, body, len, &c)) ==
	    VECDB_OK) {
		for (size_t i = 0; i < t->n; i++)
			same += c[i].rv == absent_code;
		if (same == t->n)
			rv = calls_check(c, t->n, VECDB_OK);
		else
			rv = calls_check(c, t->n, absent_code);
		if (rv == VECDB_OK && same > 0)
			VDB_LOG_WARN("ROUT", "repaired a collection present on "
			    "%zu of %zu shards", same, t->n);
	}
	calls_free(c, t->n);
	topo_put(r, t);
	return rv;
}

/* Create on every shard, repairing a partial one. */
static int
cl_collection_create(void *ctx, const vecdb_collection_config *cfg)
{
	uint8_t *b = NULL;
	size_t l = 0;
	int rv = proto_collection_create_encode(cfg, &b, &l);

	return ddl(ctx, PROTO_CREATE_COLLECTION, rv, b, l, VECDB_EEXIST);
}

/* Delete on every shard. */
static int
cl_collection_delete(void *ctx, const char *name)
{
	uint8_t *b = NULL;
	size_t l = 0;
	int rv = proto_target_encode(PROTO_DELETE_COLLECTION, name, NULL, 0,
	    &b, &l);

	return ddl(ctx, PROTO_DELETE_COLLECTION, rv, b, l, VECDB_ENOTFOUND);
}

/* Send one encoded body (owned) to every shard's primary: every one
 * must succeed. */
static int
primaries(router *r, uint32_t method, int enc_rv, uint8_t *body, size_t len)
{
	router_topology *t = topo_get(r);
	struct rcall *c = NULL;
	int rv;

	if ((rv = broadcast(r, t, method, 0, enc_rv, body, len, &c)) ==
	    VECDB_OK)
		rv = calls_check(c, t->n, VECDB_OK);
	calls_free(c, t->n);
	topo_put(r, t);
	return rv;
}

/* Compact on every shard's primary; replicas compact on their own. */
static int
cl_collection_compact(void *ctx, const char *name)
{
	uint8_t *b = NULL;
	size_t l = 0;
	int rv = proto_target_encode(PROTO_COMPACT_COLLECTION, name, NULL, 0,
	    &b, &l);

	return primaries(ctx, PROTO_COMPACT_COLLECTION, rv, b, l);
}

/*
 * Quantization on every shard's primary; replicas follow through the
 * WAL. Every shard checks the setting against the same config, so a bad
 * one is refused by all and changes nothing. XXX: a shard that cannot be
 * reached keeps its old setting while the others change: the call fails
 * (UNAVAILABLE) and may be repeated, as it is idempotent.
 */
static int
cl_collection_set_quantization(void *ctx, const char *name,
    const vecdb_quant_config *q)
{
	uint8_t *b = NULL;
	size_t l = 0;
	int rv = proto_set_quantization_encode(name, q, &b, &l);

	return primaries(ctx, PROTO_SET_QUANTIZATION, rv, b, l);
}

/* A payload index on every shard. */
static int
cl_pindex_create(void *ctx, const char *coll, const char *field,
    vecdb_field_schema schema)
{
	uint8_t *b = NULL;
	size_t l = 0;
	int rv = proto_target_encode(PROTO_PAYLOAD_INDEX_CREATE, coll, field,
	    schema, &b, &l);

	return ddl(ctx, PROTO_PAYLOAD_INDEX_CREATE, rv, b, l, VECDB_EEXIST);
}

/* Drop a payload index on every shard. */
static int
cl_pindex_delete(void *ctx, const char *coll, const char *field)
{
	uint8_t *b = NULL;
	size_t l = 0;
	int rv = proto_target_encode(PROTO_PAYLOAD_INDEX_DELETE, coll, field,
	    0, &b, &l);

	return ddl(ctx, PROTO_PAYLOAD_INDEX_DELETE, rv, b, l,
	    VECDB_ENOTFOUND);
}

/* Add one shard's collection stats into the sum. */
static void
stats_add(vecdb_collection_stats *sum, const vecdb_collection_stats *s)
{
	sum->vector_count += s->vector_count;
	sum->disk_bytes += s->disk_bytes;
	sum->memory_bytes += s->memory_bytes;
	sum->indexed_count += s->indexed_count;
	sum->pending_count += s->pending_count;
	sum->dead_count += s->dead_count;
	sum->compactions += s->compactions;
	sum->indexing_rate += s->indexing_rate;
	sum->code_bytes += s->code_bytes;
	sum->link_bytes += s->link_bytes;
	sum->original_bytes += s->original_bytes;
	/* In force on the collection when in force on every shard: until
	 * then some searches still walk floats (or the old codes). */
	if (s->quant_in_force != sum->quant_in_force)
		sum->quant_in_force = VECDB_QUANT_NONE;
	/* Compacting while any shard is; progress of the least advanced. */
	if (s->optimizer == VECDB_OPTIMIZER_COMPACTING &&
	    (sum->optimizer != VECDB_OPTIMIZER_COMPACTING ||
		s->optimizer_progress < sum->optimizer_progress)) {
		sum->optimizer = VECDB_OPTIMIZER_COMPACTING;
		sum->optimizer_progress = s->optimizer_progress;
	}
}

/* Config from shard 0, stats summed over all shards. */
static int
cl_collection_get(void *ctx, const char *name, vecdb_collection_config *cfg,
    vecdb_collection_stats *st)
{
	router *r = ctx;
	router_topology *t = topo_get(r);
	vecdb_collection_config c0, ci;
	vecdb_collection_stats sum, si;
	struct rcall *c = NULL;
	uint8_t *b = NULL;
	size_t l = 0;
	int rv = proto_target_encode(PROTO_GET_COLLECTION, name, NULL, 0, &b,
	    &l);

	memset(&sum, 0, sizeof(sum));
	if ((rv = broadcast(r, t, PROTO_GET_COLLECTION, 1, rv, b, l, &c)) !=
	    VECDB_OK || (rv = calls_check(c, t->n, VECDB_OK)) != VECDB_OK)
		goto out;
	for (size_t i = 0; i < t->n && rv == VECDB_OK; i++) {
		if ((rv = proto_collection_info_decode(c[i].resp->body,
		    c[i].resp->body_len, i == 0 ? &c0 : &ci, &si)) != VECDB_OK)
			break; /* si is not written */
		if (i == 0) {
			sum.dimension = si.dimension;
			sum.quant_in_force = si.quant_in_force;
		}
		stats_add(&sum, &si);
	}
	if (rv == VECDB_OK && sum.dead_count > 0)
		sum.dead_ratio = (double) sum.dead_count /
		    (double) (sum.indexed_count + sum.dead_count);
	if (rv == VECDB_OK) {
		*cfg = c0;
		*st = sum;
	}
out:
	calls_free(c, t->n);
	topo_put(r, t);
	return rv;
}

/* qsort order of names. */
static int
name_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *) a, *(char *const *) b);
}

/* Append shard lists' names, then sort and drop duplicates. */
static int
names_union(struct rcall *c, size_t nshards, char ***names, size_t *n)
{
	char **all = NULL, **part, **grown;
	size_t total = 0, k, w = 0;
	int rv = VECDB_OK;

	for (size_t i = 0; i < nshards && rv == VECDB_OK; i++) {
		if ((rv = proto_names_decode(c[i].resp->body,
		    c[i].resp->body_len, &part, &k)) != VECDB_OK)
			break;
		grown = vdb_realloc(all, (total + k + 1) * sizeof(char *));
		if (grown == NULL) {
			vecdb_names_free(part, k);
			rv = vdb_err(VECDB_ENOMEM, "out of memory");
			break;
		}
		all = grown;
		if (k > 0)
			memcpy(all + total, part, k * sizeof(char *));
		total += k;
		vdb_free(part);
	}
	if (rv != VECDB_OK) {
		vecdb_names_free(all, total);
		return rv;
	}
	if (total > 0)
		qsort(all, total, sizeof(char *), name_cmp);
	for (size_t i = 0; i < total; i++)
		if (w > 0 && strcmp(all[w - 1], all[i]) == 0)
			vdb_free(all[i]);
		else
			all[w++] = all[i];
	*names = all;
	*n = w;
	return VECDB_OK;
}

/* The union of every shard's collections. */
static int
cl_collection_list(void *ctx, char ***names, size_t *n)
{
	router *r = ctx;
	router_topology *t = topo_get(r);
	struct rcall *c = NULL;
	int rv;

	if ((rv = broadcast(r, t, PROTO_LIST_COLLECTIONS, 1, VECDB_OK, NULL, 0,
	    &c)) == VECDB_OK && (rv = calls_check(c, t->n, VECDB_OK)) ==
	    VECDB_OK)
		rv = names_union(c, t->n, names, n);
	calls_free(c, t->n);
	topo_put(r, t);
	return rv;
}

/* Payload indexes of shard 0, entries summed over all shards. */
static int
cl_pindex_list(void *ctx, const char *coll, vecdb_payload_index_info **out,
    size_t *n)
{
	router *r = ctx;
	router_topology *t = topo_get(r);
	vecdb_payload_index_info *l0 = NULL, *li;
	struct rcall *c = NULL;
	size_t n0 = 0, ni;
	uint8_t *b = NULL;
	size_t l = 0;
	int rv = proto_target_encode(PROTO_PAYLOAD_INDEX_LIST, coll, NULL, 0,
	    &b, &l);

	if ((rv = broadcast(r, t, PROTO_PAYLOAD_INDEX_LIST, 1, rv, b, l, &c)) !=
	    VECDB_OK || (rv = calls_check(c, t->n, VECDB_OK)) != VECDB_OK ||
	    (rv = proto_pindex_list_decode(c[0].resp->body,
	    c[0].resp->body_len, &l0, &n0)) != VECDB_OK)
		goto out;
	for (size_t i = 1; i < t->n; i++) {
		if (proto_pindex_list_decode(c[i].resp->body,
		    c[i].resp->body_len, &li, &ni) != VECDB_OK)
			continue;
		for (size_t a = 0; a < n0; a++)
			for (size_t z = 0; z < ni; z++)
				if (strcmp(l0[a].field, li[z].field) == 0)
					l0[a].entries += li[z].entries;
		vdb_free(li);
	}
	*out = l0;
	*n = n0;
out:
	calls_free(c, t->n);
	topo_put(r, t);
	return rv;
}

/* ===== Points ===== */

/* A v4 uuid for every point without an id (insert and upsert). */
static void
ids_assign(int op, vecdb_point *pts, size_t n)
{
	if (op == API_UPDATE)
		return;
	for (size_t i = 0; i < n; i++)
		if (pts[i].id.kind == VECDB_ID_NONE) {
			pts[i].id.kind = VECDB_ID_UUID;
			uuid_generate_random(pts[i].id.uuid);
		}
}

/* Split points by shard: shard_of[i] and per-shard counts. */
static int
split(const vecdb_id *ids, size_t stride, size_t n, size_t nshards,
    uint32_t **shard_of, size_t **counts)
{
	*shard_of = vdb_malloc((n ? n : 1) * sizeof(uint32_t));
	*counts = vdb_calloc(nshards, sizeof(size_t));
	if (*shard_of == NULL || *counts == NULL) {
		vdb_free(*shard_of);
		vdb_free(*counts);
		return vdb_err(VECDB_ENOMEM, "out of memory");
	}
	for (size_t i = 0; i < n; i++) {
		const vecdb_id *id = (const vecdb_id *) (const void *)
		    ((const char *) ids + i * stride);
		(*shard_of)[i] = router_shard_of(id, (uint32_t) nshards);
		(*counts)[(*shard_of)[i]]++;
	}
	return VECDB_OK;
}

/* Encode one request per shard with items; calls for empty shards are
 * marked done with rv VECDB_OK and no request. */
static int
write_calls(router *r, router_topology *t, const char *coll, int op,
    const vecdb_point *pts, size_t n, int check, struct rcall *c)
{
	uint32_t *of;
	size_t *cnt;
	vecdb_point *part = vdb_malloc((n ? n : 1) * sizeof(*part));
	int rv;

	if (part == NULL)
		return vdb_err(VECDB_ENOMEM, "out of memory");
	if ((rv = split(&pts[0].id, sizeof(*pts), n, t->n, &of, &cnt)) !=
	    VECDB_OK) {
		vdb_free(part);
		return rv;
	}
	for (size_t s = 0; s < t->n && rv == VECDB_OK; s++) {
		size_t k = 0;
		uint8_t *b;
		size_t l;
		c[s].shard = s;
		c[s].check = check;
		if (cnt[s] == 0)
			continue;
		for (size_t i = 0; i < n; i++)
			if (of[i] == s)
				part[k++] = pts[i];
		rv = check ? proto_write_check_encode(coll, op, part, k, &b,
		    &l) : proto_write_wc_encode(coll, op,
		    api_read_opts()->write_concern, part, k, &b, &l);
		if (rv == VECDB_OK) {
			rv = proto_request_encode(PROTO_WRITE, r->key, s, b, l,
			    &c[s].req, &c[s].reqlen);
			vdb_free(b);
		}
	}
	vdb_free(part);
	vdb_free(of);
	vdb_free(cnt);
	return rv;
}

/* Send each shard its part of a batch (or, with check, a check of it). */
static int
write_phase(router *r, router_topology *t, const char *coll, int op,
    vecdb_point *pts, size_t n, int check)
{
	struct rcall *c = vdb_calloc(t->n, sizeof(*c));
	int rv;

	if (c == NULL)
		return vdb_err(VECDB_ENOMEM, "out of memory");
	if ((rv = write_calls(r, t, coll, op, pts, n, check, c)) == VECDB_OK) {
		fanout(r, t, c, t->n);
		rv = calls_check(c, t->n, VECDB_OK);
	}
	calls_free(c, t->n);
	return rv;
}

/* Does the batch touch more than one shard? */
static int
multi_shard(router_topology *t, const vecdb_point *pts, size_t n)
{
	for (size_t i = 1; i < n; i++)
		if (router_shard_of(&pts[i].id, (uint32_t) t->n) !=
		    router_shard_of(&pts[0].id, (uint32_t) t->n))
			return 1;
	return 0;
}

/*
 * Split a batch by shard. Each shard's part is atomic; a batch over
 * several shards is first checked on each of them (the write, rolled
 * back), so that bad input (a wrong dimension, an id that exists) is
 * refused before any part is written. Only a failure between the check
 * and the write (a concurrent write, a node dying) can leave some parts
 * written; the error then names the shards that failed.
 */
static int
cl_write(void *ctx, const char *coll, int op, vecdb_point *pts, size_t n)
{
	router *r = ctx;
	router_topology *t = topo_get(r);
	int rv = VECDB_OK;

	ids_assign(op, pts, n);
	if (multi_shard(t, pts, n))
		rv = write_phase(r, t, coll, op, pts, n, 1);
	if (rv == VECDB_OK)
		rv = write_phase(r, t, coll, op, pts, n, 0);
	topo_put(r, t);
	return rv;
}

/* Delete calls: one per shard with ids. */
static int
delete_calls(router *r, router_topology *t, const char *coll,
    const vecdb_id *ids, size_t n, struct rcall *c)
{
	uint32_t *of;
	size_t *cnt;
	vecdb_id *part = vdb_malloc((n ? n : 1) * sizeof(*part));
	int rv;

	if (part == NULL)
		return vdb_err(VECDB_ENOMEM, "out of memory");
	if ((rv = split(ids, sizeof(*ids), n, t->n, &of, &cnt)) != VECDB_OK) {
		vdb_free(part);
		return rv;
	}
	for (size_t s = 0; s < t->n && rv == VECDB_OK; s++) {
		size_t k = 0;
		uint8_t *b;
		size_t l;
		c[s].shard = s;
		if (cnt[s] == 0)
			continue;
		for (size_t i = 0; i < n; i++)
			if (of[i] == s)
				part[k++] = ids[i];
		if ((rv = proto_delete_encode(coll, part, k, &b, &l)) ==
		    VECDB_OK) {
			rv = proto_request_encode(PROTO_DELETE, r->key, s, b, l,
			    &c[s].req, &c[s].reqlen);
			vdb_free(b);
		}
	}
	vdb_free(part);
	vdb_free(of);
	vdb_free(cnt);
	return rv;
}

/* Split ids by shard, sum the deleted counts. */
static int
cl_delete(void *ctx, const char *coll, const vecdb_id *ids, size_t n,
    size_t *deleted)
{
	router *r = ctx;
	router_topology *t = topo_get(r);
	struct rcall *c = vdb_calloc(t->n, sizeof(*c));
	uint64_t sum = 0, d;
	int rv;

	if (c == NULL) {
		topo_put(r, t);
		return vdb_err(VECDB_ENOMEM, "out of memory");
	}
	if ((rv = delete_calls(r, t, coll, ids, n, c)) == VECDB_OK) {
		fanout(r, t, c, t->n);
		rv = calls_check(c, t->n, VECDB_OK);
	}
	for (size_t s = 0; s < t->n && rv == VECDB_OK; s++)
		if (c[s].resp != NULL && (rv = proto_deleted_decode(
		    c[s].resp->body, c[s].resp->body_len, &d)) == VECDB_OK)
			sum += d;
	if (rv == VECDB_OK)
		*deleted = (size_t) sum;
	calls_free(c, t->n);
	topo_put(r, t);
	return rv;
}

/* Get one point from shard s of t. */
static int
get_from(router *r, router_topology *t, const char *coll,
    const vecdb_id *id, vecdb_record **out)
{
	struct rcall c;
	uint8_t *b;
	size_t l;
	int rv;

	memset(&c, 0, sizeof(c));
	c.shard = router_shard_of(id, (uint32_t) t->n);
	c.read = 1;
	if ((rv = proto_get_encode(coll, id, &b, &l)) != VECDB_OK)
		return rv;
	rv = proto_request_encode(PROTO_GET, r->key, 0, b, l, &c.req,
	    &c.reqlen);
	vdb_free(b);
	if (rv == VECDB_OK) {
		fanout(r, t, &c, 1);
		if ((rv = calls_check(&c, 1, VECDB_OK)) == VECDB_OK)
			rv = proto_record_decode(c.resp->body, c.resp->body_len,
			    out);
	}
	if (c.aio != NULL) {
		nng_aio_free(c.aio);
		nng_ctx_close(c.ctx);
	}
	vdb_free(c.req);
	proto_response_free(c.resp);
	return rv;
}

/* A point from its shard. */
static int
cl_get(void *ctx, const char *coll, const vecdb_id *id, vecdb_record **out)
{
	router *r = ctx;
	router_topology *t = topo_get(r);
	int rv = get_from(r, t, coll, id, out);

	topo_put(r, t);
	return rv;
}

/* ===== Merging ===== */

/* Order by (distance, id). */
static int
by_distance(const void *a, const void *b)
{
	const vecdb_record *x = a, *y = b;

	if (x->distance != y->distance)
		return x->distance < y->distance ? -1 : 1;
	return vecdb_id_cmp(&x->id, &y->id);
}

/* Order by context hits desc, then distance, then id. */
static int
by_hits(const void *a, const void *b)
{
	const vecdb_record *x = a, *y = b;

	if (x->context_hits != y->context_hits)
		return x->context_hits > y->context_hits ? -1 : 1;
	return by_distance(a, b);
}

/* Order by id. */
static int
by_id(const void *a, const void *b)
{
	return vecdb_id_cmp(&((const vecdb_record *) a)->id,
	    &((const vecdb_record *) b)->id);
}

/*
 * Move the records of lists[0..n) into one list sorted by cmp, skip
 * offset and keep limit; lists are emptied (still to be freed).
 */
static int
merge(vecdb_records **lists, size_t n, int (*cmp)(const void *,
    const void *), uint32_t offset, uint32_t limit, vecdb_records **out)
{
	vecdb_records *m = vdb_calloc(1, sizeof(*m));
	size_t total = 0, k = 0;

	for (size_t i = 0; i < n; i++)
		total += lists[i]->count;
	if (m == NULL || (m->items = vdb_calloc(total ? total : 1,
	    sizeof(vecdb_record))) == NULL) {
		vdb_free(m);
		return vdb_err(VECDB_ENOMEM, "out of memory");
	}
	for (size_t i = 0; i < n; i++) {
		if (lists[i]->count > 0)
			memcpy(m->items + k, lists[i]->items,
			    lists[i]->count * sizeof(vecdb_record));
		k += lists[i]->count;
		lists[i]->count = 0;
	}
	if (total > 0)
		qsort(m->items, total, sizeof(vecdb_record), cmp);
	m->count = total;
	for (size_t i = 0; i < total && i < offset; i++) {
		vdb_free(m->items[i].vector);
		vdb_free(m->items[i].payload);
	}
	k = total > offset ? total - offset : 0;
	if (offset > 0 && k > 0)
		memmove(m->items, m->items + offset, k * sizeof(vecdb_record));
	m->count = k;
	for (size_t i = limit; i < m->count; i++) {
		vdb_free(m->items[i].vector);
		vdb_free(m->items[i].payload);
	}
	if (m->count > limit)
		m->count = limit;
	*out = m;
	return VECDB_OK;
}

/* ===== Queries ===== */

/* The filter as compact JSON text, NULL for none (free with free()). */
static char *
filter_text(const json_t *f)
{
	return f == NULL || json_is_null(f) ? NULL : json_dumps(f,
	    JSON_COMPACT);
}

/* Encode a batch with limit+offset per shard and offset 0. */
static int
search_encode(const char *coll, const struct api_search *s, size_t n,
    uint8_t **b, size_t *l)
{
	vecdb_search_params *p = vdb_calloc(n, sizeof(*p));
	char **f = vdb_calloc(n, sizeof(char *));
	int rv = VECDB_OK;

	if (p == NULL || f == NULL)
		rv = vdb_err(VECDB_ENOMEM, "out of memory");
	for (size_t i = 0; i < n && rv == VECDB_OK; i++) {
		p[i] = s[i].p;
		p[i].filter = NULL;
		p[i].limit = s[i].p.limit + s[i].p.offset;
		p[i].offset = 0;
		f[i] = filter_text(s[i].filter);
	}
	if (rv == VECDB_OK)
		rv = proto_search_encode(coll, p, (const char *const *) f, n,
		    b, l);
	for (size_t i = 0; f != NULL && i < n; i++)
		free(f[i]);
	vdb_free(f);
	vdb_free(p);
	return rv;
}

/* Merge the shards' answers to search q into out[q]. */
static int
search_merge(vecdb_records ***per, size_t nshards, const struct api_search
    *s, size_t n, vecdb_records ***out)
{
	vecdb_records **res = vdb_calloc(n, sizeof(*res));
	vecdb_records **lists = vdb_calloc(nshards, sizeof(*lists));
	int rv = VECDB_OK;

	if (res == NULL || lists == NULL)
		rv = vdb_err(VECDB_ENOMEM, "out of memory");
	for (size_t q = 0; q < n && rv == VECDB_OK; q++) {
		for (size_t i = 0; i < nshards; i++)
			lists[i] = per[i][q];
		rv = merge(lists, nshards, by_distance, s[q].p.offset,
		    s[q].p.limit, &res[q]);
	}
	vdb_free(lists);
	if (rv != VECDB_OK) {
		if (res != NULL)
			vecdb_records_free_array(res, n);
		return rv;
	}
	*out = res;
	return VECDB_OK;
}

/* Every shard, limit+offset each, merged by (distance, id). */
static int
cl_search(void *ctx, const char *coll, const struct api_search *s, size_t n,
    vecdb_records ***out)
{
	router *r = ctx;
	router_topology *t = topo_get(r);
	vecdb_records ***per = vdb_calloc(t->n, sizeof(*per));
	struct rcall *c = NULL;
	uint8_t *b = NULL;
	size_t l = 0, k;
	int rv = per ? search_encode(coll, s, n, &b, &l) :
	    vdb_err(VECDB_ENOMEM, "out of memory");

	if ((rv = broadcast(r, t, PROTO_SEARCH, 1, rv, b, l, &c)) != VECDB_OK ||
	    (rv = calls_settle(t, c, t->n)) != VECDB_OK)
		goto out;
	for (size_t i = 0, j = 0; i < t->n && rv == VECDB_OK; i++) {
		if (c[i].skip || (rv = proto_search_result_decode(
		    c[i].resp->body, c[i].resp->body_len, &per[j], &k)) !=
		    VECDB_OK)
			continue;
		/* per[j] holds k lists: freed as n below, it must be n */
		if (k != n) {
			vecdb_records_free_array(per[j], k);
			per[j] = NULL;
			rv = vdb_err(VECDB_EINTERNAL, "shard %zu answered %zu "
			    "of %zu searches", i, k, n);
		}
		j++;
	}
	if (rv == VECDB_OK)
		rv = search_merge(per, answered(c, t->n), s, n, out);
out:
	for (size_t i = 0; per != NULL && i < t->n; i++)
		if (per[i] != NULL)
			vecdb_records_free_array(per[i], n);
	vdb_free(per);
	calls_free(c, t->n);
	topo_put(r, t);
	return rv;
}

/* Decode every shard's Records answer and merge them. */
static int
records_merge(struct rcall *c, size_t nshards, int (*cmp)(const void *,
    const void *), uint32_t offset, uint32_t limit, vecdb_records **out)
{
	vecdb_records **lists = vdb_calloc(nshards, sizeof(*lists));
	int rv = lists ? VECDB_OK : vdb_err(VECDB_ENOMEM, "out of memory");

	for (size_t i = 0, j = 0; i < nshards && rv == VECDB_OK; i++)
		if (!c[i].skip)
			rv = proto_records_decode(c[i].resp->body,
			    c[i].resp->body_len, &lists[j++]);
	nshards = answered(c, nshards);
	if (rv == VECDB_OK)
		rv = merge(lists, nshards, cmp, offset, limit, out);
	if (rv == VECDB_OK && cmp == by_id)
		for (size_t i = 0; i < nshards; i++)
			if (lists[i]->has_next && (!(*out)->has_next ||
			    vecdb_id_cmp(&lists[i]->next, &(*out)->next) < 0)) {
				(*out)->has_next = 1;
				(*out)->next = lists[i]->next;
			}
	for (size_t i = 0; lists != NULL && i < nshards; i++)
		vecdb_records_free(lists[i]);
	vdb_free(lists);
	return rv;
}

/* Broadcast a Records-answering request and merge. */
static int
records_query(router *r, router_topology *t, uint32_t method, int enc_rv,
    uint8_t *b, size_t l, int (*cmp)(const void *, const void *),
    uint32_t offset, uint32_t limit, vecdb_records **out)
{
	struct rcall *c = NULL;
	int rv;

	if ((rv = broadcast(r, t, method, 1, enc_rv, b, l, &c)) == VECDB_OK &&
	    (rv = calls_settle(t, c, t->n)) == VECDB_OK)
		rv = records_merge(c, t->n, cmp, offset, limit, out);
	calls_free(c, t->n);
	return rv;
}

/*
 * Scroll every shard from the same start and merge by id. The next id is
 * the smallest point not returned: the first merged one past the page or
 * a shard's own next, whichever is smaller.
 */
static int
cl_scroll(void *ctx, const char *coll, const vecdb_id *start,
    uint32_t limit, const json_t *filter, int with_payload,
    int with_vector, vecdb_records **out)
{
	router *r = ctx;
	router_topology *t = topo_get(r);
	char *f = filter_text(filter);
	vecdb_records *m = NULL;
	uint8_t *b = NULL;
	size_t l = 0;
	int rv = proto_scroll_encode(coll, start, limit, f, with_payload,
	    with_vector, &b, &l);

	free(f);
	rv = records_query(r, t, PROTO_SCROLL, rv, b, l, by_id, 0,
	    limit + 1 > limit ? limit + 1 : limit, &m);
	if (rv == VECDB_OK && m->count > limit) {
		if (!m->has_next || vecdb_id_cmp(&m->items[limit].id,
		    &m->next) < 0)
			m->next = m->items[limit].id;
		m->has_next = 1;
		vdb_free(m->items[limit].vector);
		vdb_free(m->items[limit].payload);
		m->count = limit;
	}
	if (rv == VECDB_OK)
		*out = m;
	topo_put(r, t);
	return rv;
}

/* Sum the counts of every shard. */
static int
cl_count(void *ctx, const char *coll, const json_t *filter, uint64_t *out)
{
	router *r = ctx;
	router_topology *t = topo_get(r);
	char *f = filter_text(filter);
	struct rcall *c = NULL;
	uint64_t sum = 0, k;
	uint8_t *b = NULL;
	size_t l = 0;
	int rv = proto_count_encode(coll, f, &b, &l);

	free(f);
	if ((rv = broadcast(r, t, PROTO_COUNT, 1, rv, b, l, &c)) == VECDB_OK &&
	    (rv = calls_settle(t, c, t->n)) == VECDB_OK)
		for (size_t i = 0; i < t->n && rv == VECDB_OK; i++)
			if (!c[i].skip && (rv = proto_count_result_decode(
			    c[i].resp->body, c[i].resp->body_len, &k)) ==
			    VECDB_OK)
				sum += k;
	if (rv == VECDB_OK)
		*out = sum;
	calls_free(c, t->n);
	topo_put(r, t);
	return rv;
}

/* ===== Recommend and discover: examples by id become vectors ===== */

/* Example vectors gathered from the shards, and the ids to exclude. */
struct examples {
	float *vecs;          /* count * dim */
	size_t count;
	vecdb_id *exclude;    /* count of n_exclude */
	size_t n_exclude;
	uint32_t dim;
};

/* Append n floats to e->vecs. */
static int
ex_push(struct examples *e, const float *v, uint32_t dim)
{
	float *g;

	if (e->dim == 0)
		e->dim = dim;
	if (dim != e->dim)
		return vdb_err(VECDB_EDIM, "example vectors differ in "
		    "dimension (%u vs %u)", dim, e->dim);
	if ((g = vdb_realloc(e->vecs, (e->count + 1) * dim * sizeof(float)))
	    == NULL)
		return vdb_err(VECDB_ENOMEM, "out of memory");
	e->vecs = g;
	memcpy(e->vecs + e->count * dim, v, dim * sizeof(float));
	e->count++;
	return VECDB_OK;
}

/* Fetch point id's vector into e and add it to the excluded ids. */
static int
ex_fetch(router *r, router_topology *t, const char *coll,
    const vecdb_id *id, struct examples *e)
{
	vecdb_record *rec = NULL;
	vecdb_id *g;
	int rv;

	if ((rv = get_from(r, t, coll, id, &rec)) != VECDB_OK)
		return rv;
	if (rec->vector == NULL)
		rv = vdb_err(VECDB_EINTERNAL, "example point has no vector");
	else
		rv = ex_push(e, rec->vector, rec->dim);
	vecdb_record_free(rec);
	if (rv == VECDB_OK && (g = vdb_realloc(e->exclude, (e->n_exclude + 1)
	    * sizeof(*g))) == NULL)
		rv = vdb_err(VECDB_ENOMEM, "out of memory");
	if (rv == VECDB_OK) {
		e->exclude = g;
		e->exclude[e->n_exclude++] = *id;
	}
	return rv;
}

/* Start e with a copy of the caller's excluded ids. */
static int
ex_init(struct examples *e, const vecdb_id *ex, size_t n, uint32_t dim)
{
	memset(e, 0, sizeof(*e));
	e->dim = dim;
	if ((e->exclude = vdb_malloc((n + 1) * sizeof(vecdb_id))) == NULL)
		return vdb_err(VECDB_ENOMEM, "out of memory");
	if (n > 0)
		memcpy(e->exclude, ex, n * sizeof(vecdb_id));
	e->n_exclude = n;
	return VECDB_OK;
}

static void
ex_fini(struct examples *e)
{
	vdb_free(e->vecs);
	vdb_free(e->exclude);
}

/* Given vectors then fetched ids, into e (positive or negative side). */
static int
ex_side(router *r, router_topology *t, const char *coll, const float *v,
    size_t nv, uint32_t dim, const vecdb_id *ids, size_t nid,
    struct examples *e)
{
	int rv = VECDB_OK;

	for (size_t i = 0; i < nv && rv == VECDB_OK; i++)
		rv = ex_push(e, v + i * dim, dim);
	for (size_t i = 0; i < nid && rv == VECDB_OK; i++)
		rv = ex_fetch(r, t, coll, &ids[i], e);
	return rv;
}

/* The ids both example sets exclude, in one new array (vdb_free it). */
static vecdb_id *
ex_join(const struct examples *a, const struct examples *b, size_t *n)
{
	vecdb_id *ex = vdb_malloc((a->n_exclude + b->n_exclude + 1) *
	    sizeof(vecdb_id));

	if (ex == NULL) {
		vdb_err(VECDB_ENOMEM, "out of memory");
		return NULL;
	}
	if (a->n_exclude > 0)
		memcpy(ex, a->exclude, a->n_exclude * sizeof(vecdb_id));
	if (b->n_exclude > 0)
		memcpy(ex + a->n_exclude, b->exclude,
		    b->n_exclude * sizeof(vecdb_id));
	*n = a->n_exclude + b->n_exclude;
	return ex;
}

/* Recommend with every example as a vector. */
static int
reco_run(router *r, router_topology *t, const char *coll,
    const vecdb_recommend_params *p, const json_t *filter,
    struct examples *pos, struct examples *neg, vecdb_records **out)
{
	vecdb_recommend_params q = *p;
	vecdb_id *ex;
	char *f;
	uint8_t *b = NULL;
	size_t l = 0;
	int rv;

	if ((ex = ex_join(pos, neg, &q.n_exclude)) == NULL)
		return VECDB_ENOMEM;
	f = filter_text(filter);
	q.positive = q.negative = NULL;
	q.n_positive = q.n_negative = 0;
	q.positive_vectors = pos->vecs;
	q.n_positive_vectors = pos->count;
	q.negative_vectors = neg->vecs;
	q.n_negative_vectors = neg->count;
	q.dim = pos->dim ? pos->dim : neg->dim;
	q.exclude = ex;
	q.limit = p->limit + p->offset;
	q.offset = 0;
	q.filter = NULL;
	rv = proto_recommend_encode(coll, &q, f, &b, &l);
	free(f);
	rv = records_query(r, t, PROTO_RECOMMEND, rv, b, l, by_distance,
	    p->offset, p->limit, out);
	vdb_free(ex);
	return rv;
}

/* Fetch examples by id from their shards, then ask every shard. */
static int
cl_recommend(void *ctx, const char *coll, const vecdb_recommend_params *p,
    const json_t *filter, vecdb_records **out)
{
	router *r = ctx;
	router_topology *t = topo_get(r);
	struct examples pos, neg;
	int rv;

	memset(&neg, 0, sizeof(neg));
	if ((rv = ex_init(&pos, p->exclude, p->n_exclude, p->dim)) ==
	    VECDB_OK && (rv = ex_init(&neg, NULL, 0, p->dim)) == VECDB_OK &&
	    (rv = ex_side(r, t, coll, p->positive_vectors,
	    p->n_positive_vectors, p->dim, p->positive, p->n_positive, &pos))
	    == VECDB_OK && (rv = ex_side(r, t, coll, p->negative_vectors,
	    p->n_negative_vectors, p->dim, p->negative, p->n_negative, &neg))
	    == VECDB_OK)
		rv = reco_run(r, t, coll, p, filter, &pos, &neg, out);
	ex_fini(&pos);
	ex_fini(&neg);
	topo_put(r, t);
	return rv;
}

/* Discover's examples: the target, then context pairs as vectors. */
static int
disc_examples(router *r, router_topology *t, const char *coll,
    const vecdb_discover_params *p, struct examples *tgt,
    struct examples *ctxv)
{
	int rv = VECDB_OK;

	if (p->has_target && p->target.kind != VECDB_ID_NONE)
		rv = ex_fetch(r, t, coll, &p->target, tgt);
	else if (p->has_target)
		rv = ex_push(tgt, p->target_vector, p->dim);
	for (size_t i = 0; i < p->n_context_vectors * 2 && rv == VECDB_OK;
	    i++)
		rv = ex_push(ctxv, p->context_vectors + i * p->dim, p->dim);
	for (size_t i = 0; i < p->n_context && rv == VECDB_OK; i++)
		if ((rv = ex_fetch(r, t, coll, &p->context[i].positive, ctxv))
		    == VECDB_OK)
			rv = ex_fetch(r, t, coll, &p->context[i].negative, ctxv);
	return rv;
}

/* Discover with every example as a vector. */
static int
disc_run(router *r, router_topology *t, const char *coll,
    const vecdb_discover_params *p, const json_t *filter,
    struct examples *tgt, struct examples *ctxv, vecdb_records **out)
{
	vecdb_discover_params q = *p;
	vecdb_id *ex;
	char *f;
	uint8_t *b = NULL;
	size_t l = 0;
	int rv;

	if ((ex = ex_join(tgt, ctxv, &q.n_exclude)) == NULL)
		return VECDB_ENOMEM;
	f = filter_text(filter);
	memset(&q.target, 0, sizeof(q.target));
	q.target_vector = p->has_target ? tgt->vecs : NULL;
	q.context = NULL;
	q.n_context = 0;
	q.context_vectors = ctxv->vecs;
	q.n_context_vectors = ctxv->count / 2;
	q.dim = tgt->dim ? tgt->dim : ctxv->dim;
	q.exclude = ex;
	q.limit = p->limit + p->offset;
	q.offset = 0;
	q.filter = NULL;
	rv = proto_discover_encode(coll, &q, f, &b, &l);
	free(f);
	rv = records_query(r, t, PROTO_DISCOVER, rv, b, l, by_hits,
	    p->offset, p->limit, out);
	vdb_free(ex);
	return rv;
}

/* Fetch target and context by id, then ask every shard. */
static int
cl_discover(void *ctx, const char *coll, const vecdb_discover_params *p,
    const json_t *filter, vecdb_records **out)
{
	router *r = ctx;
	router_topology *t = topo_get(r);
	struct examples tgt, ctxv;
	int rv;

	memset(&ctxv, 0, sizeof(ctxv));
	if ((rv = ex_init(&tgt, p->exclude, p->n_exclude, p->dim)) ==
	    VECDB_OK && (rv = ex_init(&ctxv, NULL, 0, p->dim)) == VECDB_OK &&
	    (rv = disc_examples(r, t, coll, p, &tgt, &ctxv)) == VECDB_OK)
		rv = disc_run(r, t, coll, p, filter, &tgt, &ctxv, out);
	ex_fini(&tgt);
	ex_fini(&ctxv);
	topo_put(r, t);
	return rv;
}

/* ===== Node-wide ===== */

/* Sum the nodes' stats (collections: shard 0's, last_seq: max). */
static int
cl_stats(void *ctx, vecdb_stats *out)
{
	router *r = ctx;
	router_topology *t = topo_get(r);
	struct rcall *c = NULL;
	vecdb_stats sum, s;
	int rv;

	memset(&sum, 0, sizeof(sum));
	if ((rv = broadcast(r, t, PROTO_STATS, 1, VECDB_OK, NULL, 0, &c)) ==
	    VECDB_OK && (rv = calls_check(c, t->n, VECDB_OK)) == VECDB_OK)
		for (size_t i = 0; i < t->n && rv == VECDB_OK; i++) {
			if ((rv = proto_stats_decode(c[i].resp->body,
			    c[i].resp->body_len, &s)) != VECDB_OK)
				break;
			if (i == 0)
				sum.collections = s.collections;
			sum.vectors += s.vectors;
			sum.disk_bytes += s.disk_bytes;
			sum.memory_bytes += s.memory_bytes;
			sum.last_seq = s.last_seq > sum.last_seq ? s.last_seq :
			    sum.last_seq;
			sum.index_builds += s.index_builds;
			sum.index_build_seconds += s.index_build_seconds;
			for (int k = 0; k < VECDB_BUILD_BUCKETS; k++)
				sum.index_build_buckets[k] +=
				    s.index_build_buckets[k];
		}
	if (rv == VECDB_OK)
		*out = sum;
	calls_free(c, t->n);
	topo_put(r, t);
	return rv;
}

/* ===== Snapshots: one per shard, under one name ===== */

/*
 * A cluster snapshot is a snapshot of the same name on every shard's
 * primary, each holding that shard's points. Its size and count are the
 * sums, its time the newest, and its checksum the SHA-256 of the shards'
 * checksums (hex, in shard order), so it changes if any shard's does.
 */
static int
snap_combine(const vecdb_snapshot_info *per, size_t n,
    vecdb_snapshot_info *out)
{
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	unsigned char sum[EVP_MAX_MD_SIZE];
	unsigned len = 0;
	int ok = md != NULL && EVP_DigestInit_ex(md, EVP_sha256(), NULL) == 1;

	*out = per[0];
	out->size_bytes = out->vector_count = 0;
	for (size_t i = 0; i < n && ok; i++) {
		out->size_bytes += per[i].size_bytes;
		out->vector_count += per[i].vector_count;
		if (per[i].created_at > out->created_at)
			out->created_at = per[i].created_at;
		ok = EVP_DigestUpdate(md, per[i].checksum,
		    strlen(per[i].checksum)) == 1;
	}
	ok = ok && EVP_DigestFinal_ex(md, sum, &len) == 1 && len == 32;
	EVP_MD_CTX_free(md);
	if (!ok)
		return vdb_err(VECDB_EINTERNAL, "SHA-256 failed");
	for (unsigned i = 0; i < len; i++)
		snprintf(out->checksum + 2 * i, 3, "%02x", sum[i]);
	return VECDB_OK;
}

/* Every shard's SnapshotInfo answer into one cluster snapshot. */
static int
snap_answers(router_topology *t, struct rcall *c, vecdb_snapshot_info *out)
{
	vecdb_snapshot_info *per = vdb_calloc(t->n, sizeof(*per));
	int rv = per ? VECDB_OK : vdb_err(VECDB_ENOMEM, "out of memory");

	for (size_t i = 0; i < t->n && rv == VECDB_OK; i++)
		rv = proto_snapshot_info_decode(c[i].resp->body,
		    c[i].resp->body_len, &per[i]);
	if (rv == VECDB_OK)
		rv = snap_combine(per, t->n, out);
	vdb_free(per);
	return rv;
}

/* Send a snapshot target (collection, name) to every primary. */
static int
snap_broadcast(router *r, router_topology *t, uint32_t method,
    const char *coll, const char *name, struct rcall **c)
{
	uint8_t *b = NULL;
	size_t l = 0;
	int rv = proto_target_encode(method, coll, name, 0, &b, &l);

	return broadcast(r, t, method, 0, rv, b, l, c);
}

/* A name no other router will pick: <coll>_<time>-<8 hex>. */
static void
snap_name_new(const char *coll, char *buf, size_t len)
{
	uuid_t u;

	uuid_generate_random(u);
	snprintf(buf, len, "%.*s_%lld-%02x%02x%02x%02x",
	    VECDB_SNAPSHOT_NAME_MAX - 32, coll, (long long) time(NULL), u[0],
	    u[1], u[2], u[3]);
}

/* Delete the parts a failed create made (only those: the name may be
 * another snapshot's on the shards that refused it). */
static void
snap_undo(router *r, router_topology *t, const struct rcall *made,
    const char *coll, const char *name)
{
	struct rcall *c = NULL;
	uint8_t *b = NULL;
	size_t l = 0;

	if (proto_target_encode(PROTO_SNAPSHOT_DELETE, coll, name, 0, &b, &l)
	    != VECDB_OK || calls_new(r, t->n, PROTO_SNAPSHOT_DELETE, 0, b, l,
	    &c) != VECDB_OK)
		return;
	for (size_t i = 0; i < t->n; i++)
		if (made[i].rv != VECDB_OK) {
			vdb_free(c[i].req);
			c[i].req = NULL;
		}
	fanout(r, t, c, t->n);
	calls_free(c, t->n);
}

/* Every shard snapshots under one name; a failure removes the others. */
static int
cl_snap_create(void *ctx, const char *coll, const char *name,
    vecdb_snapshot_info *out)
{
	router *r = ctx;
	router_topology *t = topo_get(r);
	char gen[VECDB_SNAPSHOT_NAME_MAX + 1];
	struct rcall *c = NULL;
	char msg[1024];
	int rv;

	if (name == NULL) {
		snap_name_new(coll, gen, sizeof(gen));
		name = gen;
	}
	if ((rv = snap_broadcast(r, t, PROTO_SNAPSHOT_CREATE, coll, name,
	    &c)) == VECDB_OK && (rv = calls_check(c, t->n, VECDB_OK)) ==
	    VECDB_OK)
		rv = snap_answers(t, c, out);
	else if (c != NULL) {
		vdb_err_save(msg, sizeof(msg));
		snap_undo(r, t, c, coll, name);
		vdb_err(rv, "%s", msg);
	}
	calls_free(c, t->n);
	topo_put(r, t);
	return rv;
}

/* NOT_FOUND naming the shards that lack the snapshot, if some do. */
static int
snap_missing(router_topology *t, struct rcall *c, const char *name)
{
	char buf[1024];
	size_t len = 0, k = 0;

	for (size_t i = 0; i < t->n; i++)
		if (c[i].rv == VECDB_ENOTFOUND && len < sizeof(buf)) {
			len += (size_t) snprintf(buf + len, sizeof(buf) - len,
			    "%s%u", k ? ", " : "", t->shards[i].id);
			k++;
		}
	if (k == 0)
		return VECDB_OK;
	return vdb_err(VECDB_ENOTFOUND, "snapshot '%s' not found on shard%s "
	    "%s", name, k > 1 ? "s" : "", buf);
}

static int
cl_snap_get(void *ctx, const char *coll, const char *name,
    vecdb_snapshot_info *out)
{
	router *r = ctx;
	router_topology *t = topo_get(r);
	struct rcall *c = NULL;
	int rv;

	if ((rv = snap_broadcast(r, t, PROTO_SNAPSHOT_GET, coll, name, &c)) ==
	    VECDB_OK && (rv = calls_check(c, t->n, VECDB_ENOTFOUND)) ==
	    VECDB_OK && (rv = snap_missing(t, c, name)) == VECDB_OK)
		rv = snap_answers(t, c, out);
	calls_free(c, t->n);
	topo_put(r, t);
	return rv;
}

/* Is name in list l of n? Its index, or -1. */
static ssize_t
snap_find(const vecdb_snapshot_info *l, size_t n, const char *name)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(l[i].name, name) == 0)
			return (ssize_t) i;
	return -1;
}

/* The snapshots every shard has, in shard 0's order (oldest first). */
static int
snap_intersect(vecdb_snapshot_info **lists, size_t *counts, size_t nshards,
    vecdb_snapshot_info *per, vecdb_snapshot_info *out, size_t *n)
{
	ssize_t at;
	int rv;

	*n = 0;
	for (size_t a = 0; a < counts[0]; a++) {
		size_t i;
		per[0] = lists[0][a];
		for (i = 1; i < nshards; i++) {
			if ((at = snap_find(lists[i], counts[i],
			    lists[0][a].name)) < 0)
				break;
			per[i] = lists[i][at];
		}
		if (i < nshards)
			continue;
		if ((rv = snap_combine(per, nshards, &out[(*n)++])) !=
		    VECDB_OK)
			return rv;
	}
	return VECDB_OK;
}

/* Snapshots present on every shard (a failed create leaves none). */
static int
cl_snap_list(void *ctx, const char *coll, vecdb_snapshot_info **out,
    size_t *n)
{
	router *r = ctx;
	router_topology *t = topo_get(r);
	vecdb_snapshot_info **lists = vdb_calloc(t->n, sizeof(*lists));
	vecdb_snapshot_info *per = vdb_calloc(t->n, sizeof(*per)), *res = NULL;
	size_t *counts = vdb_calloc(t->n, sizeof(*counts));
	struct rcall *c = NULL;
	int rv = VECDB_OK;

	if (lists == NULL || per == NULL || counts == NULL)
		rv = vdb_err(VECDB_ENOMEM, "out of memory");
	if (rv == VECDB_OK && (rv = snap_broadcast(r, t, PROTO_SNAPSHOT_LIST,
	    coll, NULL, &c)) == VECDB_OK)
		rv = calls_check(c, t->n, VECDB_OK);
	for (size_t i = 0; i < t->n && rv == VECDB_OK; i++)
		rv = proto_snapshot_list_decode(c[i].resp->body,
		    c[i].resp->body_len, &lists[i], &counts[i]);
	if (rv == VECDB_OK && (res = vdb_calloc(counts[0] + 1,
	    sizeof(*res))) == NULL)
		rv = vdb_err(VECDB_ENOMEM, "out of memory");
	if (rv == VECDB_OK && (rv = snap_intersect(lists, counts, t->n, per,
	    res, n)) == VECDB_OK) {
		*out = res;
		res = NULL;
	}
	for (size_t i = 0; lists != NULL && i < t->n; i++)
		vdb_free(lists[i]);
	vdb_free(lists);
	vdb_free(per);
	vdb_free(counts);
	vdb_free(res);
	calls_free(c, t->n);
	topo_put(r, t);
	return rv;
}

/* Delete on every shard; NOT_FOUND only when no shard had it. */
static int
cl_snap_delete(void *ctx, const char *coll, const char *name)
{
	uint8_t *b = NULL;
	size_t l = 0;
	int rv = proto_target_encode(PROTO_SNAPSHOT_DELETE, coll, name, 0, &b,
	    &l);

	return ddl(ctx, PROTO_SNAPSHOT_DELETE, rv, b, l, VECDB_ENOTFOUND);
}

/*
 * Restore every shard from its part. Checked first on every shard; the
 * restores then run in parallel, and one that fails is named (the
 * others have restored: restore again once the cause is fixed).
 */
static int
cl_snap_restore(void *ctx, const char *coll, const char *name)
{
	router *r = ctx;
	router_topology *t;
	vecdb_snapshot_info si;
	struct rcall *c = NULL;
	int rv;

	if ((rv = cl_snap_get(ctx, coll, name, &si)) != VECDB_OK)
		return rv;
	t = topo_get(r);
	if ((rv = snap_broadcast(r, t, PROTO_SNAPSHOT_RESTORE, coll, name,
	    &c)) == VECDB_OK)
		rv = calls_check(c, t->n, VECDB_OK);
	calls_free(c, t->n);
	topo_put(r, t);
	return rv;
}

/* ===== Metrics ===== */

/* The label set of a member. */
static void
member_labels(const struct router_shard *s, const struct router_member *m,
    char *buf, size_t len)
{
	snprintf(buf, len, "shard=\"%u\",member=\"%s\",role=\"%s\"", s->id,
	    m->url, m->primary ? "primary" : "replica");
}

/* The series of family `which` for one member. */
static void
metrics_member(FILE *f, router *r, const struct router_shard *s,
    struct router_member *m, int which)
{
	const struct router_member_stats *st = m->stats;
	char lab[1200];
	uint64_t cum = 0;

	member_labels(s, m, lab, sizeof(lab));
	if (which == 0)
		fprintf(f, "vecdb_router_shard_requests_total{%s} %llu\n", lab,
		    (unsigned long long) __atomic_load_n(&st->requests,
		    __ATOMIC_RELAXED));
	else if (which == 1)
		fprintf(f, "vecdb_router_shard_errors_total{%s} %llu\n", lab,
		    (unsigned long long) __atomic_load_n(&st->errors,
		    __ATOMIC_RELAXED));
	else if (which == 2)
		fprintf(f, "vecdb_router_shard_up{%s} %d\n", lab,
		    !member_down(r, m));
	else if (which == 3)
		fprintf(f, "vecdb_router_shard_connected{%s} %d\n", lab,
		    __atomic_load_n(&m->pipes, __ATOMIC_RELAXED) > 0);
	if (which != 4)
		return;
	for (size_t b = 0; b <= ROUTER_LAT_BUCKETS; b++) {
		cum += __atomic_load_n(&st->lat[b], __ATOMIC_RELAXED);
		if (b < ROUTER_LAT_BUCKETS)
			fprintf(f, "vecdb_router_shard_duration_seconds_bucket"
			    "{%s,le=\"%g\"} %llu\n", lab,
			    (double) lat_bounds_us[b] / 1e6,
			    (unsigned long long) cum);
		else
			fprintf(f, "vecdb_router_shard_duration_seconds_bucket"
			    "{%s,le=\"+Inf\"} %llu\n", lab,
			    (unsigned long long) cum);
	}
	fprintf(f, "vecdb_router_shard_duration_seconds_sum{%s} %.6f\n", lab,
	    (double) __atomic_load_n(&st->lat_sum_us, __ATOMIC_RELAXED) / 1e6);
	fprintf(f, "vecdb_router_shard_duration_seconds_count{%s} %llu\n", lab,
	    (unsigned long long) cum);
}

/* Per-member request, error and latency series of the current topology. */
static void
cl_metrics(void *ctx, FILE *f)
{
	static const char *const head[5] = {
		"# HELP vecdb_router_shard_requests_total Requests sent to a "
		"shard member.\n"
		"# TYPE vecdb_router_shard_requests_total counter\n",
		"# HELP vecdb_router_shard_errors_total Requests a shard member "
		"did not answer in time, or answered garbled.\n"
		"# TYPE vecdb_router_shard_errors_total counter\n",
		"# HELP vecdb_router_shard_up 0 while the member is skipped "
		"after a failure.\n"
		"# TYPE vecdb_router_shard_up gauge\n",
		"# HELP vecdb_router_shard_connected 1 while the router holds "
		"a connection to the member.\n"
		"# TYPE vecdb_router_shard_connected gauge\n",
		"# HELP vecdb_router_shard_duration_seconds Time to a shard "
		"member's answer.\n"
		"# TYPE vecdb_router_shard_duration_seconds histogram\n",
	};
	router *r = ctx;
	router_topology *t = topo_get(r);

	for (int which = 0; which < 5; which++) {
		fputs(head[which], f);
		for (size_t i = 0; i < t->n; i++)
			for (size_t k = 0; k < t->shards[i].n_members; k++)
				metrics_member(f, r, &t->shards[i],
				    &t->shards[i].members[k], which);
	}
	topo_put(r, t);
}

/*
 * The backend's ready op: every shard has a member that is connected and
 * answers the health rounds (a connected member that missed
 * ROUTER_UNANSWERED_MAX rounds in a row is hung: stopped, or stuck).
 * The back-off does not count: a member the router skips for a while may
 * still answer the next round.
 */
static int
cl_ready(void *ctx, json_t **not_ready)
{
	router *r = ctx;
	router_topology *t = topo_get(r);
	json_t *ids = json_array();
	char msg[1024];
	size_t off = 0;

	if (ids == NULL) {
		topo_put(r, t);
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
			if (__atomic_load_n(&s->members[k].pipes,
			    __ATOMIC_RELAXED) <= 0)
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
	topo_put(r, t);
	if (json_array_size(ids) == 0) {
		json_decref(ids);
		return VECDB_OK;
	}
	*not_ready = ids;
	return vdb_err(VECDB_ECLOSED, "not ready: %s", msg);
}

void
api_backend_cluster_init(struct api_backend *b, router *r)
{
	memset(b, 0, sizeof(*b));
	b->ctx = r;
	b->collection_create = cl_collection_create;
	b->collection_get = cl_collection_get;
	b->collection_list = cl_collection_list;
	b->collection_delete = cl_collection_delete;
	b->collection_compact = cl_collection_compact;
	b->collection_set_quantization = cl_collection_set_quantization;
	b->write = cl_write;
	b->delete = cl_delete;
	b->get = cl_get;
	b->search = cl_search;
	b->recommend = cl_recommend;
	b->discover = cl_discover;
	b->scroll = cl_scroll;
	b->count = cl_count;
	b->snapshot_create = cl_snap_create;
	b->snapshot_list = cl_snap_list;
	b->snapshot_get = cl_snap_get;
	b->snapshot_delete = cl_snap_delete;
	b->snapshot_restore = cl_snap_restore;
	b->snapshot_open = router_snapshot_open;
	b->snapshot_restore_file = router_snapshot_restore_file;
	b->payload_index_create = cl_pindex_create;
	b->payload_index_delete = cl_pindex_delete;
	b->payload_index_list = cl_pindex_list;
	b->stats = cl_stats;
	b->metrics = cl_metrics;
	b->promote = router_promote;
	b->cluster_status = router_cluster_status;
	b->ready = cl_ready;
}

/* ===== For router_status.c, router_health.c, router_snapfile.c ===== */

int
router_shard_call(router *r, router_topology *t, size_t shard,
    uint32_t method, const uint8_t *body, size_t len,
    struct proto_response **out)
{
	uint64_t end = vdb_now_ms() + r->timeout_ms;
	struct rcall *c = vdb_calloc(1, sizeof(*c));
	int rv;

	if (c == NULL)
		return vdb_err(VECDB_ENOMEM, "out of memory");
	c->shard = shard;
	c->member = -1;
	if ((rv = proto_request_encode(method, r->key, (uint32_t) shard, body,
	    len, &c->req, &c->reqlen)) == VECDB_OK) {
		call_send(r, t, c, end);
		call_finish(r, t, c, end);
		call_code(t, c);
		if ((rv = c->rv) != VECDB_OK)
			vdb_err(rv, "%s", c->msg);
		else {
			*out = c->resp;
			c->resp = NULL;
		}
	}
	calls_free(c, 1);
	return rv;
}

pthread_mutex_t *
router_lock(router *r)
{
	return &r->lock;
}

router_topology *
router_topology_acquire(router *r, uint32_t *timeout_ms, const char **node_key)
{
	*timeout_ms = r->timeout_ms;
	*node_key = r->key;
	return topo_get(r);
}

void
router_topology_release(router *r, router_topology *t)
{
	topo_put(r, t);
}
