/*
 * node_rpc.c: a node's replication role as the binary API server's
 * extension (struct api_rpc_ext): FetchWal (parking long-polls), the
 * bootstrap methods, PROMOTE and FOLLOW, the refusal of writes the role
 * does not take, the role in health answers, and the write concern.
 */
#include <inttypes.h>
#include <stdio.h>

#include "node.h"
#include "repl.h"
#include "vdb.h"

/* The parking of a FetchWal: repl_primary_park's arguments. */
struct fetch_park {
	struct repl_primary *p;
	const struct proto_fetch_wal *f;
};

static int
fetch_arm(void *arg, void (*wake)(void *), void *wake_arg)
{
	struct fetch_park *fp = arg;

	return repl_primary_park(fp->p, fp->f->after_seq, fp->f->max_wait_ms,
	    wake, wake_arg);
}

/* FetchWal; c is NULL when the request may not park (a re-run). */
static int
do_fetch(node_role *role, struct repl_primary *p, api_rpc_call *c,
    const struct proto_request *q, struct api_rpc_reply *out)
{
	struct node_role_status st;
	struct proto_wal_batch b;
	struct proto_fetch_wal f;
	struct fetch_park fp;
	int rv;

	/* Stopping: leave the poll unanswered so the replica, waiting on it,
	 * sends nothing more while we close (api_rpc_drain). */
	if (c != NULL && api_rpc_stopping(c)) {
		out->drop = 1;
		return VECDB_OK;
	}
	if ((rv = proto_fetch_wal_decode(q->body, q->body_len, &f)) != VECDB_OK)
		return rv;
	node_role_fence(role, f.term);
	node_role_status_get(role, &st);
	if (st.fenced) {
		out->code = PROTO_FAILED_PRECONDITION;
		return vdb_err(VECDB_EREADONLY, "this node is a stale primary: "
		    "term %" PRIu64 " has started elsewhere", st.term);
	}
	rv = repl_primary_fetch(p, &f, &b);
	if (rv == VECDB_ENOTFOUND)
		out->code = PROTO_OUT_OF_RANGE;
	if (rv != VECDB_OK)
		return rv;
	fp = (struct fetch_park) { p, &f };
	if (b.count == 0 && !b.diverged && f.max_wait_ms > 0 && c != NULL &&
	    api_rpc_park(c, fetch_arm, &fp)) {
		out->parked = 1;
		return VECDB_OK;
	}
	rv = proto_wal_batch_encode(&b, &out->body, &out->len);
	vdb_free(b.records);
	return rv;
}

/* FetchWal, BootstrapBegin, BootstrapChunk: a primary's methods. */
static int
do_repl(node_role *role, api_rpc_call *c, const struct proto_request *q,
    struct api_rpc_reply *out)
{
	char id[PROTO_REPLICA_ID_MAX + 1];
	struct proto_bootstrap_info bi;
	struct proto_bootstrap_chunk ch;
	struct repl_primary *p;
	uint8_t *data;
	size_t n;
	int rv;

	if ((p = node_role_primary(role)) == NULL) {
		char why[512];

		out->code = PROTO_FAILED_PRECONDITION;
		if (node_role_writable(role) == VECDB_OK)
			return vdb_err(VECDB_EREADONLY, "this node does not "
			    "serve replication");
		snprintf(why, sizeof(why), "%s", vecdb_errmsg());
		return vdb_err(VECDB_EREADONLY, "%s; replicate from the "
		    "primary", why);
	}
	if (q->method == PROTO_FETCH_WAL)
		return do_fetch(role, p, c, q, out);
	if (q->method == PROTO_BOOTSTRAP_BEGIN) {
		if ((rv = proto_bootstrap_begin_decode(q->body, q->body_len,
			 id)) != VECDB_OK ||
		    (rv = repl_primary_bootstrap_begin(p, id, &bi)) != VECDB_OK)
			return rv;
		return proto_bootstrap_info_encode(&bi, &out->body, &out->len);
	}
	if ((rv = proto_bootstrap_chunk_decode(q->body, q->body_len, &ch)) !=
	    VECDB_OK ||
	    (rv = repl_primary_bootstrap_chunk(p, &ch, &data, &n)) != VECDB_OK)
		return rv;
	rv = proto_bootstrap_data_encode(data, n, &out->body, &out->len);
	vdb_free(data);
	return rv;
}

/* PROMOTE and FOLLOW: the router changes who is primary. */
static int
do_role(node_role *role, const struct proto_request *q,
    struct api_rpc_reply *out)
{
	char url[PROTO_URL_MAX + 1];
	uint64_t term, last;
	int rv;

	if (q->method == PROTO_PROMOTE) {
		if ((rv = proto_promote_decode(q->body, q->body_len, &term)) !=
		    VECDB_OK ||
		    (rv = node_role_promote(role, term, &term, &last)) !=
		    VECDB_OK)
			return rv;
		return proto_promote_result_encode(term, last, &out->body,
		    &out->len);
	}
	if ((rv = proto_follow_decode(q->body, q->body_len, url, &term)) !=
	    VECDB_OK)
		return rv;
	if ((rv = node_role_follow(role, url, term)) == VECDB_EREADONLY)
		out->code = PROTO_FAILED_PRECONDITION;
	return rv;
}

static int
ext_handle(void *ctx, api_rpc_call *c, const struct proto_request *q,
    struct api_rpc_reply *out)
{
	if (q->method == PROTO_PROMOTE || q->method == PROTO_FOLLOW)
		return do_role(ctx, q, out);
	return do_repl(ctx, c, q, out);
}

static int
ext_writable(void *ctx)
{
	return node_role_writable(ctx);
}

static void
ext_health(void *ctx, struct proto_health *h)
{
	struct node_role_status rs;

	node_role_status_get(ctx, &rs);
	snprintf(h->role, sizeof(h->role), "%s", !rs.primary ? "replica" :
	    rs.fenced ? "fenced" : "primary");
	snprintf(h->primary, sizeof(h->primary), "%s", rs.primary_url);
	h->term = rs.term;
}

static uint32_t
ext_acks_min(void *ctx)
{
	return node_role_min_replicas(ctx);
}

static void *
ext_acks_begin(void *ctx, uint64_t *seq)
{
	*seq = node_role_last_seq(ctx);
	return node_role_primary(ctx);
}

/* Wait for n replicas to hold seq; on failure say the write is done here
 * all the same. */
static int
ext_acks_wait(void *ctx, void *token, uint64_t seq, uint32_t n)
{
	uint32_t ms = node_role_wc_timeout_ms(ctx);
	struct repl_replica reps[REPL_REPLICAS_MAX];
	struct repl_primary *p = token;
	size_t k = 0, m;

	if (p != NULL && repl_primary_wait_acks(p, seq, n, ms) == VECDB_OK)
		return VECDB_OK;
	m = p != NULL ? repl_primary_replicas(p, reps, REPL_REPLICAS_MAX) : 0;
	for (size_t i = 0; i < m; i++)
		k += reps[i].acked_seq >= seq;
	return vdb_err(VECDB_ETIMEDOUT, "write is durable on the primary but "
	    "only %zu of %u replicas acknowledged it within %u ms", k, n, ms);
}

void
node_rpc_ext(node_role *role, struct api_rpc_ext *out)
{
	*out = (struct api_rpc_ext) { role, REPL_PARKED_MAX, ext_handle,
		ext_writable, ext_health, ext_acks_min, ext_acks_begin,
		ext_acks_wait };
}
