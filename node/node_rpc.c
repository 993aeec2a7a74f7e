/*
 * node_rpc.c: the node's RPC server: nng rep0 with nng_ctx workers, the
 * envelope, authentication, and one dispatch function per method family,
 * each decoding its body with proto.h and calling the local backend.
 */
#include <nng/nng.h>
#include <nng/protocol/reqrep0/rep.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "node.h"
#include "proto.h"
#include "repl.h"
#include "vdb.h"

/*
 * A worker: one nng_ctx and its aio, cycling recv -> handle -> send. A
 * FetchWal long-poll with nothing to send yet parks its worker (no aio in
 * flight, the request kept in msg) and arms a spare in its place, so the
 * number of receives armed stays cfg.workers however many replicas wait;
 * once the parked worker has sent its answer it becomes a spare. The
 * handoff between the aio callback and the primary's waiter thread goes
 * through repl_primary_park's lock.
 */
struct worker {
	enum { W_INIT, W_RECV, W_SEND, W_PARKED } state;
	nng_aio *aio;
	nng_ctx ctx;
	nng_msg *msg;                          /* W_PARKED: the request */
	int retire;                            /* become a spare after send */
	struct node_rpc *rpc;                  /* back pointer */
};

struct node_rpc {
	struct node_rpc_config cfg;   /* strings borrowed */
	const struct api_backend *b;  /* borrowed */
	nng_socket sock;
	nng_listener l;
	struct node_repl repl;        /* pointers borrowed */
	struct worker *w;             /* nworkers of them */
	unsigned nworkers;            /* cfg.workers + spares */
	pthread_mutex_t lock;         /* guards spare, nspare */
	struct worker **spare;        /* workers with no receive armed */
	size_t nspare;
	uint16_t port;
	_Atomic int stopping;         /* workers stop re-arming */
	_Atomic int busy;             /* requests between recv and send end */
	_Atomic uint64_t recv_ms;     /* when the last request came in */
	/* [method][code]; method 0 counts undecodable envelopes */
	_Atomic uint64_t requests[PROTO_METHOD_COUNT][PROTO_CODE_COUNT];
};

/* When a request is answered. */
enum when { ANSWER_NOW, ANSWER_PARKED, ANSWER_NEVER };

/* A handler's result: a vecdb_err and an encoded body (vdb_free). */
struct reply {
	uint8_t *body;
	size_t len;
	int code;          /* a wire code other than the error's, or 0 */
	enum when when;    /* PARKED: a long-poll answers later; NEVER: the
			      server is stopping and drops a FetchWal */
};

static void worker_recv(struct worker *w);
static void worker_wake(void *arg);

/* ===== Helpers ===== */

/* Milliseconds on the monotonic clock. */
static uint64_t
mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t) ts.tv_sec * 1000 + (uint64_t) ts.tv_nsec / 1000000;
}

/* Parse a filter's JSON text; NULL or "" is no filter. */
static int
filter_load(const char *txt, json_t **out)
{
	json_error_t e;

	*out = NULL;
	if (txt == NULL || *txt == '\0')
		return VECDB_OK;
	if ((*out = json_loads(txt, 0, &e)) == NULL)
		return vdb_err(VECDB_EINVAL, "filter: %s", e.text);
	return VECDB_OK;
}

/* Is this method a write that a replica refuses? */
static int
is_write(uint32_t m)
{
	switch (m) {
	case PROTO_CREATE_COLLECTION: case PROTO_DELETE_COLLECTION:
	case PROTO_WRITE: case PROTO_DELETE: case PROTO_SNAPSHOT_CREATE:
	case PROTO_SNAPSHOT_DELETE: case PROTO_SNAPSHOT_RESTORE:
	case PROTO_PAYLOAD_INDEX_CREATE: case PROTO_PAYLOAD_INDEX_DELETE:
		return 1;
	default:
		return 0;
	}
}

/* Compare api keys in time independent of where they differ. */
static int
key_ok(const char *want, const char *got)
{
	size_t n = strlen(want), m = strlen(got);
	unsigned char d = (unsigned char) (n != m);

	for (size_t i = 0; i < n; i++)
		d |= (unsigned char) (want[i] ^ (i < m ? got[i] : 0));
	return d == 0;
}

/* ===== Collections ===== */

/* create, get, list, delete. */
static int
do_collections(struct node_rpc *r, const struct proto_request *q,
    struct reply *out)
{
	const struct api_backend *b = r->b;
	vecdb_collection_config c;
	vecdb_collection_stats st;
	struct proto_target t;
	char **names = NULL;
	size_t n = 0;
	int rv;

	if (q->method == PROTO_CREATE_COLLECTION) {
		if ((rv = proto_collection_create_decode(q->body, q->body_len,
			 &c)) != VECDB_OK)
			return rv;
		return b->collection_create(b->ctx, &c);
	}
	if (q->method == PROTO_LIST_COLLECTIONS) {
		if ((rv = b->collection_list(b->ctx, &names, &n)) != VECDB_OK)
			return rv;
		rv = proto_names_encode(names, n, &out->body, &out->len);
		vecdb_names_free(names, n);
		return rv;
	}
	if ((rv = proto_target_decode(q->method, q->body, q->body_len, &t)) !=
	    VECDB_OK)
		return rv;
	if (q->method == PROTO_DELETE_COLLECTION)
		return b->collection_delete(b->ctx, t.collection);
	if ((rv = b->collection_get(b->ctx, t.collection, &c, &st)) !=
	    VECDB_OK)
		return rv;
	return proto_collection_info_encode(&c, &st, &out->body, &out->len);
}

/* ===== Points ===== */

/* Write: the assigned ids come back. */
static int
do_write(struct node_rpc *r, const struct proto_request *q,
    struct reply *out)
{
	struct proto_write *w;
	int rv;

	if ((rv = proto_write_decode(q->body, q->body_len, &w)) != VECDB_OK)
		return rv;
	if (w->check_only) {
		/* the answer is the verdict alone (an empty body) */
		rv = r->b->write_check == NULL ? vdb_err(VECDB_EINVAL, "this "
		    "server cannot check writes") : r->b->write_check(
		    r->b->ctx, w->collection, w->op, w->points, w->n);
		proto_write_free(w);
		return rv;
	}
	rv = r->b->write(r->b->ctx, w->collection, w->op, w->points, w->n);
	if (rv == VECDB_OK)
		rv = proto_ids_encode(w->points, w->n, &out->body, &out->len);
	proto_write_free(w);
	return rv;
}

/* write, delete, get. */
static int
do_points(struct node_rpc *r, const struct proto_request *q,
    struct reply *out)
{
	char coll[VECDB_NAME_MAX + 1];
	struct proto_delete *d;
	vecdb_record *rec;
	size_t deleted = 0;
	vecdb_id id;
	int rv;

	if (q->method == PROTO_WRITE)
		return do_write(r, q, out);
	if (q->method == PROTO_DELETE) {
		if ((rv = proto_delete_decode(q->body, q->body_len, &d)) !=
		    VECDB_OK)
			return rv;
		rv = r->b->delete(r->b->ctx, d->collection, d->ids, d->n,
		    &deleted);
		if (rv == VECDB_OK)
			rv = proto_deleted_encode(deleted, &out->body, &out->len);
		proto_delete_free(d);
		return rv;
	}
	if ((rv = proto_get_decode(q->body, q->body_len, coll, &id)) !=
	    VECDB_OK)
		return rv;
	if ((rv = r->b->get(r->b->ctx, coll, &id, &rec)) != VECDB_OK)
		return rv;
	rv = proto_record_encode(rec, &out->body, &out->len);
	vecdb_record_free(rec);
	return rv;
}

/* ===== Queries ===== */

/* Free the filters of n api_search. */
static void
searches_free(struct api_search *as, size_t n)
{
	for (size_t i = 0; i < n && as != NULL; i++)
		json_decref((json_t *) as[i].filter);
	vdb_free(as);
}

/* A batch of searches. */
static int
do_search(struct node_rpc *r, const struct proto_request *q,
    struct reply *out)
{
	vecdb_records **res = NULL;
	struct api_search *as = NULL;
	struct proto_search *s;
	json_t *f;
	size_t i = 0;
	int rv;

	if ((rv = proto_search_decode(q->body, q->body_len, &s)) != VECDB_OK)
		return rv;
	if ((as = vdb_calloc(s->n, sizeof(*as))) == NULL) {
		rv = vdb_err(VECDB_ENOMEM, "out of memory");
		goto fail;
	}
	for (i = 0; i < s->n; i++) {
		if ((rv = filter_load(s->s[i].filter_json, &f)) != VECDB_OK)
			goto fail;
		as[i].p = s->s[i].p;
		as[i].filter = f;
	}
	if ((rv = r->b->search(r->b->ctx, s->collection, as, s->n, &res)) ==
	    VECDB_OK) {
		rv = proto_search_result_encode(res, s->n, &out->body,
		    &out->len);
		vecdb_records_free_array(res, s->n);
	}
fail:
	searches_free(as, i);
	proto_search_free(s);
	return rv;
}

/* Encode a records result and free it. */
static int
records_reply(int rv, vecdb_records *res, struct reply *out)
{
	if (rv == VECDB_OK)
		rv = proto_records_encode(res, &out->body, &out->len);
	vecdb_records_free(res);
	return rv;
}

/* Recommend and discover. */
static int
do_examples(struct node_rpc *r, const struct proto_request *q,
    struct reply *out)
{
	struct proto_recommend *rc;
	struct proto_discover *dc;
	vecdb_records *res = NULL;
	json_t *f = NULL;
	int rv;

	if (q->method == PROTO_RECOMMEND) {
		if ((rv = proto_recommend_decode(q->body, q->body_len, &rc)) !=
		    VECDB_OK)
			return rv;
		if ((rv = filter_load(rc->filter_json, &f)) == VECDB_OK)
			rv = r->b->recommend(r->b->ctx, rc->collection, &rc->p, f,
			    &res);
		proto_recommend_free(rc);
	} else {
		if ((rv = proto_discover_decode(q->body, q->body_len, &dc)) !=
		    VECDB_OK)
			return rv;
		if ((rv = filter_load(dc->filter_json, &f)) == VECDB_OK)
			rv = r->b->discover(r->b->ctx, dc->collection, &dc->p, f,
			    &res);
		proto_discover_free(dc);
	}
	json_decref(f);
	return records_reply(rv, res, out);
}

/* Scroll. */
static int
do_scroll(struct node_rpc *r, const struct proto_request *q,
    struct reply *out)
{
	vecdb_records *res = NULL;
	struct proto_scroll *s;
	json_t *f = NULL;
	int rv;

	if ((rv = proto_scroll_decode(q->body, q->body_len, &s)) != VECDB_OK)
		return rv;
	if ((rv = filter_load(s->filter_json, &f)) == VECDB_OK)
		rv = r->b->scroll(r->b->ctx, s->collection, &s->start, s->limit,
		    f, s->with_payload, s->with_vector, &res);
	json_decref(f);
	proto_scroll_free(s);
	return records_reply(rv, res, out);
}

/* Count. */
static int
do_count(struct node_rpc *r, const struct proto_request *q,
    struct reply *out)
{
	char coll[VECDB_NAME_MAX + 1], *txt = NULL;
	uint64_t n = 0;
	json_t *f = NULL;
	int rv;

	if ((rv = proto_count_decode(q->body, q->body_len, coll, &txt)) !=
	    VECDB_OK)
		return rv;
	if ((rv = filter_load(txt, &f)) == VECDB_OK &&
	    (rv = r->b->count(r->b->ctx, coll, f, &n)) == VECDB_OK)
		rv = proto_count_result_encode(n, &out->body, &out->len);
	json_decref(f);
	vdb_free(txt);
	return rv;
}

/* search, recommend, discover, scroll, count. */
static int
do_queries(struct node_rpc *r, const struct proto_request *q,
    struct reply *out)
{
	switch (q->method) {
	case PROTO_SEARCH: return do_search(r, q, out);
	case PROTO_SCROLL: return do_scroll(r, q, out);
	case PROTO_COUNT: return do_count(r, q, out);
	default: return do_examples(r, q, out);
	}
}

/* ===== Snapshots, payload indexes ===== */

/* snapshot create, list, get, delete, restore. */
static int
do_snapshots(struct node_rpc *r, const struct proto_request *q,
    struct reply *out)
{
	const struct api_backend *b = r->b;
	vecdb_snapshot_info si, *list = NULL;
	struct proto_target t;
	size_t n = 0;
	int rv;

	if ((rv = proto_target_decode(q->method, q->body, q->body_len, &t)) !=
	    VECDB_OK)
		return rv;
	switch (q->method) {
	case PROTO_SNAPSHOT_CREATE:
		if ((rv = b->snapshot_create(b->ctx, t.collection,
		    t.name[0] ? t.name : NULL, &si)) != VECDB_OK)
			return rv;
		return proto_snapshot_info_encode(&si, &out->body, &out->len);
	case PROTO_SNAPSHOT_GET:
		if ((rv = b->snapshot_get(b->ctx, t.collection, t.name, &si)) !=
		    VECDB_OK)
			return rv;
		return proto_snapshot_info_encode(&si, &out->body, &out->len);
	case PROTO_SNAPSHOT_LIST:
		if ((rv = b->snapshot_list(b->ctx, t.collection, &list, &n)) !=
		    VECDB_OK)
			return rv;
		rv = proto_snapshot_list_encode(list, n, &out->body, &out->len);
		vdb_free(list);
		return rv;
	case PROTO_SNAPSHOT_DELETE:
		return b->snapshot_delete(b->ctx, t.collection, t.name);
	default:
		return b->snapshot_restore(b->ctx, t.collection, t.name);
	}
}

/* payload index create, delete, list. */
static int
do_pindexes(struct node_rpc *r, const struct proto_request *q,
    struct reply *out)
{
	const struct api_backend *b = r->b;
	vecdb_payload_index_info *list = NULL;
	struct proto_target t;
	size_t n = 0;
	int rv;

	if ((rv = proto_target_decode(q->method, q->body, q->body_len, &t)) !=
	    VECDB_OK)
		return rv;
	if (q->method == PROTO_PAYLOAD_INDEX_CREATE)
		return b->payload_index_create(b->ctx, t.collection, t.name,
		    t.schema);
	if (q->method == PROTO_PAYLOAD_INDEX_DELETE)
		return b->payload_index_delete(b->ctx, t.collection, t.name);
	if ((rv = b->payload_index_list(b->ctx, t.collection, &list, &n)) !=
	    VECDB_OK)
		return rv;
	rv = proto_pindex_list_encode(list, n, &out->body, &out->len);
	vdb_free(list);
	return rv;
}

/* ===== Node ===== */

/* stats and health. */
static int
do_node(struct node_rpc *r, const struct proto_request *q,
    struct reply *out)
{
	struct proto_health h;
	vecdb_stats st;
	int rv;

	if ((rv = r->b->stats(r->b->ctx, &st)) != VECDB_OK)
		return rv;
	if (q->method == PROTO_STATS)
		return proto_stats_encode(&st, &out->body, &out->len);
	memset(&h, 0, sizeof(h));
	snprintf(h.status, sizeof(h.status), "ok");
	snprintf(h.version, sizeof(h.version), "%s", VECDB_VERSION);
	snprintf(h.role, sizeof(h.role), "%s",
	    r->cfg.replica ? "replica" : "primary");
	snprintf(h.node_id, sizeof(h.node_id), "%s", r->cfg.node_id);
	h.last_seq = st.last_seq;
	return proto_health_encode(&h, &out->body, &out->len);
}

/* ===== Replication ===== */

/* Take a spare worker, or NULL when none is left. */
static struct worker *
spare_take(struct node_rpc *r)
{
	struct worker *w = NULL;

	pthread_mutex_lock(&r->lock);
	if (r->nspare > 0)
		w = r->spare[--r->nspare];
	pthread_mutex_unlock(&r->lock);
	return w;
}

static void
spare_put(struct node_rpc *r, struct worker *w)
{
	pthread_mutex_lock(&r->lock);
	r->spare[r->nspare++] = w;
	pthread_mutex_unlock(&r->lock);
}

/*
 * Park worker w's long-poll (it found nothing after after_seq) and arm a
 * spare in its place. 0 when it cannot wait: answer now.
 */
static int
fetch_park(struct node_rpc *r, struct worker *w,
    const struct proto_fetch_wal *f)
{
	struct worker *spare;

	if (atomic_load(&r->stopping) || (spare = spare_take(r)) == NULL)
		return 0;
	w->state = W_PARKED;
	w->retire = 1;
	if (repl_primary_park(r->repl.primary, f->after_seq, f->max_wait_ms,
		worker_wake, w) != VECDB_OK) {
		w->retire = 0;
		spare_put(r, spare);
		return 0;
	}
	worker_recv(spare);
	return 1;
}

/* FetchWal; w is NULL when the request may not park (a re-run). */
static int
do_fetch(struct node_rpc *r, struct worker *w, const struct proto_request *q,
    struct reply *out)
{
	struct proto_wal_batch b;
	struct proto_fetch_wal f;
	int rv;

	/* Stopping: leave the poll unanswered so the replica, waiting on it,
	 * sends nothing more while we close (node_rpc_drain). */
	if (atomic_load(&r->stopping) && w != NULL) {
		out->when = ANSWER_NEVER;
		return VECDB_OK;
	}
	if ((rv = proto_fetch_wal_decode(q->body, q->body_len, &f)) != VECDB_OK)
		return rv;
	rv = repl_primary_fetch(r->repl.primary, &f, &b);
	if (rv == VECDB_ENOTFOUND)
		out->code = PROTO_OUT_OF_RANGE;
	if (rv != VECDB_OK)
		return rv;
	if (b.count == 0 && f.max_wait_ms > 0 && w != NULL &&
	    fetch_park(r, w, &f)) {
		out->when = ANSWER_PARKED;
		return VECDB_OK;
	}
	rv = proto_wal_batch_encode(&b, &out->body, &out->len);
	vdb_free(b.records);
	return rv;
}

/* FetchWal, BootstrapBegin, BootstrapChunk: a primary's methods. */
static int
do_repl(struct node_rpc *r, struct worker *w, const struct proto_request *q,
    struct reply *out)
{
	char id[PROTO_REPLICA_ID_MAX + 1];
	struct proto_bootstrap_info bi;
	struct proto_bootstrap_chunk c;
	uint8_t *data;
	size_t n;
	int rv;

	if (r->repl.primary == NULL) {
		out->code = PROTO_FAILED_PRECONDITION;
		return r->repl.primary_url != NULL ?
		    vdb_err(VECDB_EREADONLY, "this node is a read replica of "
			"%s; replicate from the primary", r->repl.primary_url) :
		    vdb_err(VECDB_EREADONLY, "this node does not serve "
			"replication");
	}
	if (q->method == PROTO_FETCH_WAL)
		return do_fetch(r, w, q, out);
	if (q->method == PROTO_BOOTSTRAP_BEGIN) {
		if ((rv = proto_bootstrap_begin_decode(q->body, q->body_len,
			 id)) != VECDB_OK ||
		    (rv = repl_primary_bootstrap_begin(r->repl.primary, id,
			 &bi)) != VECDB_OK)
			return rv;
		return proto_bootstrap_info_encode(&bi, &out->body, &out->len);
	}
	if ((rv = proto_bootstrap_chunk_decode(q->body, q->body_len, &c)) !=
	    VECDB_OK ||
	    (rv = repl_primary_bootstrap_chunk(r->repl.primary, &c, &data,
		 &n)) != VECDB_OK)
		return rv;
	rv = proto_bootstrap_data_encode(data, n, &out->body, &out->len);
	vdb_free(data);
	return rv;
}

/* ===== Dispatch ===== */

/* Run one decoded request on the backend. */
static int
dispatch(struct node_rpc *r, struct worker *w, const struct proto_request *q,
    struct reply *out)
{
	switch (q->method) {
	case PROTO_FETCH_WAL: case PROTO_BOOTSTRAP_BEGIN:
	case PROTO_BOOTSTRAP_CHUNK:
		return do_repl(r, w, q, out);
	case PROTO_CREATE_COLLECTION: case PROTO_GET_COLLECTION:
	case PROTO_LIST_COLLECTIONS: case PROTO_DELETE_COLLECTION:
		return do_collections(r, q, out);
	case PROTO_WRITE: case PROTO_DELETE: case PROTO_GET:
		return do_points(r, q, out);
	case PROTO_SEARCH: case PROTO_RECOMMEND: case PROTO_DISCOVER:
	case PROTO_SCROLL: case PROTO_COUNT:
		return do_queries(r, q, out);
	case PROTO_SNAPSHOT_CREATE: case PROTO_SNAPSHOT_LIST:
	case PROTO_SNAPSHOT_GET: case PROTO_SNAPSHOT_DELETE:
	case PROTO_SNAPSHOT_RESTORE:
		return do_snapshots(r, q, out);
	case PROTO_PAYLOAD_INDEX_CREATE: case PROTO_PAYLOAD_INDEX_DELETE:
	case PROTO_PAYLOAD_INDEX_LIST:
		return do_pindexes(r, q, out);
	case PROTO_STATS: case PROTO_HEALTH:
		return do_node(r, q, out);
	default:
		return vdb_err(VECDB_EINVAL, "unknown method %u", q->method);
	}
}

/* Decode, check, run: the wire code, and the body in out. */
static int
handle_request(struct node_rpc *r, struct worker *w, const uint8_t *buf,
    size_t len, uint32_t *method, struct reply *out)
{
	struct proto_request *q;
	int rv, code;

	*method = 0;
	vdb_err_clear();
	api_read_opts_reset();
	if ((rv = proto_request_decode(buf, len, &q)) != VECDB_OK)
		return PROTO_INVALID_ARGUMENT;
	*method = q->method;
	api_read_opts()->primary = q->primary_only;
	api_read_opts()->allow_partial = q->allow_partial;
	if (r->cfg.api_key != NULL && !key_ok(r->cfg.api_key, q->api_key))
		code = (vdb_err(VECDB_EINVAL, "missing or wrong api key"),
		    PROTO_UNAUTHENTICATED);
	else if (r->cfg.replica && is_write(q->method))
		code = (r->repl.primary_url != NULL ?
			   vdb_err(VECDB_EREADONLY, "this node is a read "
			       "replica of %s", r->repl.primary_url) :
			   vdb_err(VECDB_EREADONLY, "this node is a replica"),
		    PROTO_FAILED_PRECONDITION);
	else if ((code = proto_code_of(dispatch(r, w, q, out))) != PROTO_OK &&
	    out->code != 0)
		code = out->code;
	proto_request_free(q);
	return code;
}

/*
 * Handle one request message; the reply replaces its body: 0, or nonzero
 * when it cannot be encoded. *when other than ANSWER_NOW: msg untouched,
 * w's long-poll answers later or never (w NULL: may not park or drop).
 */
static int
handle_msg(struct node_rpc *r, struct worker *w, nng_msg *msg,
    enum when *when)
{
	struct reply out = { NULL, 0, 0, ANSWER_NOW };
	uint32_t *missing = NULL;
	size_t n_missing = 0;
	const char *m;
	uint8_t *enc = NULL;
	size_t enclen = 0;
	uint32_t method;
	int code, rv;

	code = handle_request(r, w, nng_msg_body(msg), nng_msg_len(msg),
	    &method, &out);
	*when = code == PROTO_OK ? out.when : ANSWER_NOW;
	if (*when != ANSWER_NOW)
		return 0;
	m = code == PROTO_OK ? "" : vecdb_errmsg();
	if (code != PROTO_OK && *m == '\0')
		m = vecdb_strerror(proto_err_of(code));
	if (code != PROTO_OK) {
		vdb_free(out.body);
		out.body = NULL, out.len = 0;
	}
	atomic_fetch_add_explicit(&r->requests[method][code], 1,
	    memory_order_relaxed);
	/* a router's partial answer names the shards it lacks */
	if (code == PROTO_OK && api_read_opts()->n_missing > 0 &&
	    (missing = vdb_malloc(api_read_opts()->n_missing *
	    sizeof(uint32_t))) != NULL) {
		api_read_opts_missing_ids(missing);
		n_missing = api_read_opts()->n_missing;
	}
	rv = proto_response_encode_missing(code, m, out.body, out.len,
	    missing, n_missing, &enc, &enclen);
	vdb_free(missing);
	vdb_free(out.body);
	if (rv != VECDB_OK)
		return -1;
	nng_msg_clear(msg);
	rv = nng_msg_append(msg, enc, enclen);
	vdb_free(enc);
	return rv;
}

/* ===== Workers ===== */

static void worker_reply(struct worker *w, int rv);
static void worker_drop(struct worker *w);

/* Arm the next receive unless stopping. */
static void
worker_recv(struct worker *w)
{
	if (atomic_load(&w->rpc->stopping))
		return;
	w->state = W_RECV;
	nng_ctx_recv(w->ctx, w->aio);
}

/* A worker finished a request: receive again, or become a spare if a
 * spare took its receive while it was parked. */
static void
worker_done(struct worker *w)
{
	if (w->retire) {
		w->retire = 0;
		w->state = W_INIT;
		spare_put(w->rpc, w);
		return;
	}
	worker_recv(w);
}

/* A receive finished: handle it and send the reply. */
static void
worker_got(struct worker *w)
{
	nng_msg *msg;
	int rv = nng_aio_result(w->aio);
	enum when when;

	if (rv == NNG_ECLOSED || rv == NNG_ECANCELED)
		return;
	if (rv != 0) {
		worker_recv(w);
		return;
	}
	msg = nng_aio_get_msg(w->aio);
	nng_aio_set_msg(w->aio, NULL); /* w->msg owns it now */
	atomic_fetch_add(&w->rpc->busy, 1);
	atomic_store(&w->rpc->recv_ms, mono_ms());
	w->msg = msg;
	rv = handle_msg(w->rpc, w, msg, &when);
	if (when == ANSWER_NOW)
		worker_reply(w, rv);
	else if (when == ANSWER_NEVER)
		worker_drop(w);
	/* else worker_wake answers */
}

/* Forget w's request unanswered. */
static void
worker_drop(struct worker *w)
{
	nng_msg_free(w->msg);
	w->msg = NULL;
	atomic_fetch_sub(&w->rpc->busy, 1);
	worker_done(w);
}

/* Send the reply in w->msg (rv 0), or drop it on an encoding failure. */
static void
worker_reply(struct worker *w, int rv)
{
	if (rv != 0) {
		/* XXX: out of memory encoding: the client times out. */
		worker_drop(w);
		return;
	}
	nng_aio_set_msg(w->aio, w->msg);
	w->state = W_SEND;
	nng_ctx_send(w->ctx, w->aio);
}

/*
 * A parked long-poll is due (the primary's waiter thread): answer it, or,
 * when repl_primary_stop wakes it after node_rpc_drain, drop it.
 */
static void
worker_wake(void *arg)
{
	struct worker *w = arg;
	enum when when;

	if (atomic_load(&w->rpc->stopping)) {
		worker_drop(w);
		return;
	}
	worker_reply(w, handle_msg(w->rpc, NULL, w->msg, &when));
}

/* The aio callback: the classic async REP state machine. */
static void
worker_cb(void *arg)
{
	struct worker *w = arg;

	switch (w->state) {
	case W_INIT:
		worker_recv(w);
		break;
	case W_RECV:
		worker_got(w);
		break;
	case W_SEND:
		if (nng_aio_result(w->aio) != 0) {
			nng_msg_free(nng_aio_get_msg(w->aio));
			nng_aio_set_msg(w->aio, NULL);
		}
		atomic_fetch_sub(&w->rpc->busy, 1);
		if (nng_aio_result(w->aio) != NNG_ECLOSED)
			worker_done(w);
		break;
	case W_PARKED:
		break; /* no aio in flight while parked */
	}
}

/* ===== Lifecycle ===== */

/* Open the socket and listen; records the bound port. */
static int
rpc_listen(struct node_rpc *r)
{
	int rv, port = 0;

	if ((rv = nng_rep0_open(&r->sock)) != 0)
		return vdb_err(VECDB_EIO, "nng: %s", nng_strerror(rv));
	nng_socket_set_size(r->sock, NNG_OPT_RECVMAXSZ, PROTO_MSG_MAX);
	if ((rv = nng_listener_create(&r->l, r->sock, r->cfg.url)) != 0 ||
	    (rv = nng_listener_start(r->l, 0)) != 0) {
		nng_close(r->sock);
		return vdb_err(rv == NNG_EADDRINVAL || rv == NNG_ENOTSUP ?
			VECDB_EINVAL : VECDB_EIO, "cannot listen on %s: %s",
		    r->cfg.url, nng_strerror(rv));
	}
	if (nng_listener_get_int(r->l, NNG_OPT_TCP_BOUND_PORT, &port) == 0)
		r->port = (uint16_t) port;
	return VECDB_OK;
}

/* Allocate the workers' aios and contexts; a primary gets a spare for
 * each long-poll that may park. */
static int
workers_init(struct node_rpc *r)
{
	r->nworkers = r->cfg.workers +
	    (r->repl.primary != NULL ? REPL_PARKED_MAX : 0);
	if ((r->w = vdb_calloc(r->nworkers, sizeof(*r->w))) == NULL ||
	    (r->spare = vdb_calloc(r->nworkers, sizeof(*r->spare))) == NULL)
		return vdb_err(VECDB_ENOMEM, "out of memory");
	for (unsigned i = r->cfg.workers; i < r->nworkers; i++)
		r->spare[r->nspare++] = &r->w[i];
	for (unsigned i = 0; i < r->nworkers; i++) {
		struct worker *w = &r->w[i];
		w->rpc = r;
		if (nng_aio_alloc(&w->aio, worker_cb, w) != 0 ||
		    nng_ctx_open(&w->ctx, r->sock) != 0)
			return vdb_err(VECDB_ENOMEM, "nng: cannot make worker");
	}
	return VECDB_OK;
}

/*
 * Cancel every worker's receive and wait out its callback, so that no
 * context has an operation pending; then no pipe's receive is re-armed on
 * our behalf (see node_rpc_stop). A reply that an aio still holds was
 * never sent, and a parked request never answered: free both.
 */
static void
workers_quiesce(struct node_rpc *r)
{
	for (unsigned i = 0; r->w != NULL && i < r->nworkers; i++) {
		struct worker *w = &r->w[i];
		nng_msg *m;

		if (w->aio == NULL)
			continue;
		nng_aio_stop(w->aio);
		if ((m = nng_aio_get_msg(w->aio)) != NULL) {
			nng_aio_set_msg(w->aio, NULL);
			nng_msg_free(m);
		}
		if (w->state == W_PARKED && w->msg != NULL)
			nng_msg_free(w->msg);
		w->msg = NULL;
	}
}

/* Free the workers (quiesced, the socket closed). */
static void
workers_fini(struct node_rpc *r)
{
	for (unsigned i = 0; r->w != NULL && i < r->nworkers; i++) {
		if (r->w[i].aio != NULL)
			nng_aio_free(r->w[i].aio);
		nng_ctx_close(r->w[i].ctx);
	}
	vdb_free(r->w);
	vdb_free(r->spare);
	r->w = NULL;
	r->spare = NULL;
}

int
node_rpc_start(const struct node_rpc_config *cfg,
    const struct api_backend *b, node_rpc **out)
{
	return node_rpc_start_repl(cfg, NULL, b, out);
}

int
node_rpc_start_repl(const struct node_rpc_config *cfg,
    const struct node_repl *repl, const struct api_backend *b,
    node_rpc **out)
{
	struct node_rpc *r;
	int rv;

	if ((r = vdb_calloc(1, sizeof(*r))) == NULL)
		return vdb_err(VECDB_ENOMEM, "out of memory");
	r->cfg = *cfg;
	if (repl != NULL)
		r->repl = *repl;
	r->b = b;
	pthread_mutex_init(&r->lock, NULL);
	if (r->cfg.node_id == NULL)
		r->cfg.node_id = "";
	if (r->cfg.workers < NODE_WORKERS_MIN)
		r->cfg.workers = NODE_WORKERS_DEFAULT;
	if (r->cfg.workers > NODE_WORKERS_MAX)
		r->cfg.workers = NODE_WORKERS_MAX;
	if ((rv = rpc_listen(r)) != VECDB_OK) {
		pthread_mutex_destroy(&r->lock);
		vdb_free(r);
		return rv;
	}
	if ((rv = workers_init(r)) != VECDB_OK) {
		nng_close(r->sock);
		workers_fini(r);
		pthread_mutex_destroy(&r->lock);
		vdb_free(r);
		return rv;
	}
	for (unsigned i = 0; i < r->cfg.workers; i++)
		worker_cb(&r->w[i]);
	*out = r;
	return VECDB_OK;
}

uint16_t
node_rpc_port(const node_rpc *r)
{
	return r->port;
}

void
node_rpc_drain(node_rpc *r)
{
	if (r != NULL)
		atomic_store(&r->stopping, 1);
}

/*
 * Why stop goes in this order. nng 1.5.2 can lose a pipe's receive when
 * the pipe is closed while a message is arriving on it. In the hung
 * process, nng_close() waits for the socket's pipe list to empty; nng's
 * reaper is blocked in the rep0 pipe's stop, waiting on the pipe's
 * receive aio, which was begun and never finished; every other nng thread
 * is idle, so nothing will ever finish it. (Most likely the TCP
 * transport's read, resubmitted for the rest of a message after the close
 * had stopped it, is refused without a callback.) A replica makes that
 * likely: when repl_primary_stop answered its parked poll, it polled
 * again at once, was answered at once (the primary could not park any
 * more), and so on, a poll on the wire at every moment, while we closed
 * the listener (and with it the replica's pipe) and then the socket:
 * about one stop in seven hung.
 *
 * So a primary is drained before its polls are woken: FetchWal is no
 * longer answered (a parked poll woken by repl_primary_stop and a new one
 * alike), and the replica, waiting for that answer, sends nothing more.
 * Its REQ socket sends the request again when it reconnects, to this node
 * restarted or to whatever listens there. Then no receive is re-armed;
 * we wait until requests in flight have sent their replies and nothing
 * has come in for NODE_STOP_QUIET_MS (a reply sent just before the drain
 * draws one more poll, which is dropped), cancel the receives still
 * armed, and only then close the listener, its pipes and the socket.
 */
void
node_rpc_stop(node_rpc *r)
{
	struct timespec ts = { 0, 5 * 1000000L };
	uint64_t end;

	if (r == NULL)
		return;
	node_rpc_drain(r);
	end = mono_ms() + NODE_STOP_GRACE_MS;
	while (mono_ms() < end && (atomic_load(&r->busy) ||
	    mono_ms() - atomic_load(&r->recv_ms) < NODE_STOP_QUIET_MS))
		nanosleep(&ts, NULL);
	workers_quiesce(r);
	nng_close(r->sock);
	workers_fini(r);
	pthread_mutex_destroy(&r->lock);
	vdb_free(r);
}

void
node_rpc_metrics_write(node_rpc *r, FILE *f)
{
	static const char *const codes[PROTO_CODE_COUNT] = { "OK",
		"CANCELLED", "UNKNOWN", "INVALID_ARGUMENT", "DEADLINE_EXCEEDED",
		"NOT_FOUND", "ALREADY_EXISTS", "PERMISSION_DENIED",
		"RESOURCE_EXHAUSTED", "FAILED_PRECONDITION", "ABORTED",
		"OUT_OF_RANGE", "UNIMPLEMENTED", "INTERNAL", "UNAVAILABLE",
		"DATA_LOSS", "UNAUTHENTICATED" };

	fprintf(f, "# HELP vecdb_rpc_requests_total RPC requests by method "
		   "and response code.\n# TYPE vecdb_rpc_requests_total "
		   "counter\n");
	for (uint32_t m = 0; m < PROTO_METHOD_COUNT; m++)
		for (int c = 0; c < PROTO_CODE_COUNT; c++) {
			uint64_t v = atomic_load_explicit(&r->requests[m][c],
			    memory_order_relaxed);
			if (v != 0)
				fprintf(f, "vecdb_rpc_requests_total{method=\"%s\","
					   "code=\"%s\"} %llu\n",
				    proto_method_name(m), codes[c],
				    (unsigned long long) v);
		}
}
