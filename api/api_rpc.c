/*
 * api_rpc.c: the binary API server: nng rep0 with nng_ctx receives, a
 * pool of handler threads, the envelope, authentication, and one dispatch
 * function per method family, each decoding its body with proto.h and
 * calling the backend.
 */
#define _GNU_SOURCE   /* sched_getaffinity, CPU_COUNT */
#include <nng/nng.h>
#include <inttypes.h>
#include <nng/protocol/reqrep0/rep.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "api_rpc.h"
#include "proto.h"
#include "vdb.h"

/*
 * A call: one nng_ctx and its aio, cycling recv -> (handler thread) ->
 * send. The aio callback only queues a received request for the handler
 * threads, and re-arms the receive once the reply is sent.
 *
 * A request that must wait (a FetchWal long-poll with nothing to send
 * yet, a write waiting for its replicas) parks its call: no aio in
 * flight, the request kept in msg, and a spare call's receive armed in
 * its place, so the number of receives armed stays cfg.workers however
 * many requests wait; once the parked call has sent its answer it becomes
 * a spare.
 */
struct api_rpc_call {
	enum { W_INIT, W_RECV, W_SEND, W_PARKED } state;
	nng_aio *aio;
	nng_ctx ctx;
	nng_msg *msg;                          /* the request being served */
	int retire;                            /* become a spare after send */
	int rerun;                             /* queued: a parked request
						  woken, run again */
	struct api_rpc_call *next;             /* in the handler queue */
	struct api_rpc *rpc;                   /* back pointer */
};

struct api_rpc {
	struct api_rpc_config cfg;    /* strings borrowed */
	const struct api_backend *b;  /* borrowed */
	struct api_rpc_ext ext;       /* ext.handle NULL: no role */
	nng_socket sock;
	nng_listener l;
	struct api_rpc_uploads *uploads; /* snapshot files coming in */
	struct api_rpc_call *w;       /* ncalls of them */
	unsigned ncalls;              /* cfg.workers + spares */
	pthread_mutex_t lock;         /* guards spare, nspare */
	struct api_rpc_call **spare;  /* calls with no receive armed */
	size_t nspare;
	/* the handler threads and their queue */
	pthread_t *threads;
	unsigned nthreads;
	struct api_pool pool;         /* the handler threads, for long waits */
	pthread_mutex_t qlock;        /* guards qhead, qtail, qstop */
	pthread_cond_t qcond;
	struct api_rpc_call *qhead, *qtail;
	int qstop;                    /* threads exit once the queue is empty */
	uint16_t port;
	_Atomic int stopping;         /* calls stop re-arming */
	_Atomic uint64_t recv_ms;     /* when the last request came in */
	_Atomic int busy;             /* requests between recv and send end */
	/* [method][code]; method 0 counts undecodable envelopes */
	_Atomic uint64_t requests[PROTO_METHOD_COUNT][PROTO_CODE_COUNT];
};

/* How handle_msg leaves a request. */
enum { ANSWERED, PARKED, DROPPED };

/* A write done here that waits for replicas before it is answered. */
struct acks_wait {
	struct api_rpc_call *w;  /* parked, its request in w->msg */
	void *token;             /* the role's, from acks_begin */
	uint32_t method;
	uint64_t seq;            /* the last seq once the write committed */
	uint32_t n;              /* replicas that must hold it */
	struct api_rpc_reply out;/* the answer if they do */
};

static void worker_recv(struct api_rpc_call *w);
static void worker_drop(struct api_rpc_call *w);
static void worker_reply(struct api_rpc_call *w, int rv);

/* ===== Helpers ===== */

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
	case PROTO_SET_QUANTIZATION:
	case PROTO_WRITE: case PROTO_DELETE: case PROTO_SNAPSHOT_CREATE:
	case PROTO_SNAPSHOT_DELETE: case PROTO_SNAPSHOT_RESTORE:
	case PROTO_SNAPSHOT_UPLOAD:
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

/* Set a collection's quantization. */
static int
do_set_quantization(struct api_rpc *r, const struct proto_request *q)
{
	char coll[VECDB_NAME_MAX + 1];
	vecdb_quant_config qc;
	int rv;

	if ((rv = proto_set_quantization_decode(q->body, q->body_len, coll,
	    &qc)) != VECDB_OK)
		return rv;
	return r->b->collection_set_quantization(r->b->ctx, coll, &qc);
}

/* create, get, list, delete, compact, set quantization. */
static int
do_collections(struct api_rpc *r, const struct proto_request *q,
    struct api_rpc_reply *out)
{
	const struct api_backend *b = r->b;
	vecdb_collection_config c;
	vecdb_collection_stats st;
	struct proto_target t;
	char **names = NULL;
	size_t n = 0;
	int rv;

	if (q->method == PROTO_SET_QUANTIZATION)
		return do_set_quantization(r, q);
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
	if (q->method == PROTO_COMPACT_COLLECTION)
		return b->collection_compact(b->ctx, t.collection);
	if ((rv = b->collection_get(b->ctx, t.collection, &c, &st)) !=
	    VECDB_OK)
		return rv;
	return proto_collection_info_encode(&c, &st, &out->body, &out->len);
}

/* ===== Points ===== */

/* Write: the assigned ids come back. */
static int
do_write(struct api_rpc *r, const struct proto_request *q,
    struct api_rpc_reply *out)
{
	struct proto_write *w;
	int rv;

	if ((rv = proto_write_decode(q->body, q->body_len, &w)) != VECDB_OK)
		return rv;
	out->wc = w->write_concern;
	if (w->check_only) {
		/* the answer is the verdict alone (an empty body) */
		out->no_wait = 1;
		rv = r->b->write_check == NULL ? vdb_err(VECDB_EINVAL, "this "
		    "server cannot check writes") : r->b->write_check(
		    r->b->ctx, w->collection, w->op, w->points, w->sparse,
		    w->n);
		proto_write_free(w);
		return rv;
	}
	rv = r->b->write(r->b->ctx, w->collection, w->op, w->points,
	    w->sparse, w->n);
	if (rv == VECDB_OK)
		rv = proto_ids_encode(w->points, w->n, &out->body, &out->len);
	proto_write_free(w);
	return rv;
}

/* write, delete, get. */
static int
do_points(struct api_rpc *r, const struct proto_request *q,
    struct api_rpc_reply *out)
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
do_search(struct api_rpc *r, const struct proto_request *q,
    struct api_rpc_reply *out)
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
records_reply(int rv, vecdb_records *res, struct api_rpc_reply *out)
{
	if (rv == VECDB_OK)
		rv = proto_records_encode(res, &out->body, &out->len);
	vecdb_records_free(res);
	return rv;
}

/* Recommend and discover. */
static int
do_examples(struct api_rpc *r, const struct proto_request *q,
    struct api_rpc_reply *out)
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
do_scroll(struct api_rpc *r, const struct proto_request *q,
    struct api_rpc_reply *out)
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
do_count(struct api_rpc *r, const struct proto_request *q,
    struct api_rpc_reply *out)
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

/* A sparse search. */
static int
do_sparse_search(struct api_rpc *r, const struct proto_request *q,
    struct api_rpc_reply *out)
{
	struct proto_sparse_search *s;
	vecdb_records *res = NULL;
	json_t *f = NULL;
	int rv;

	if ((rv = proto_sparse_search_decode(q->body, q->body_len, &s)) !=
	    VECDB_OK)
		return rv;
	if (r->b->search_sparse == NULL)
		rv = vdb_err(VECDB_EINVAL, "this server has no sparse search");
	else if ((rv = filter_load(s->filter_json, &f)) == VECDB_OK)
		rv = r->b->search_sparse(r->b->ctx, s->collection, &s->p, f,
		    &res);
	json_decref(f);
	proto_sparse_search_free(s);
	return records_reply(rv, res, out);
}

/* The counts of a sparse vector's IDF. */
static int
do_sparse_stats(struct api_rpc *r, const struct proto_request *q,
    struct api_rpc_reply *out)
{
	char coll[VECDB_NAME_MAX + 1], name[VECDB_NAME_MAX + 1];
	uint32_t *ix = NULL;
	uint64_t *df = NULL, points = 0;
	size_t n = 0;
	int rv;

	if ((rv = proto_sparse_stats_decode(q->body, q->body_len, coll, name,
	    &ix, &n)) != VECDB_OK)
		return rv;
	if (r->b->sparse_stats == NULL)
		rv = vdb_err(VECDB_EINVAL, "this server has no sparse search");
	else if ((df = vdb_malloc((n ? n : 1) * sizeof(*df))) == NULL)
		rv = vdb_err(VECDB_ENOMEM, "out of memory");
	else if ((rv = r->b->sparse_stats(r->b->ctx, coll, name, ix, n,
	    &points, df)) == VECDB_OK)
		rv = proto_sparse_stats_result_encode(points, df, n,
		    &out->body, &out->len);
	vdb_free(ix);
	vdb_free(df);
	return rv;
}

/* search, recommend, discover, scroll, count, sparse search. */
static int
do_queries(struct api_rpc *r, const struct proto_request *q,
    struct api_rpc_reply *out)
{
	switch (q->method) {
	case PROTO_SEARCH: return do_search(r, q, out);
	case PROTO_SCROLL: return do_scroll(r, q, out);
	case PROTO_COUNT: return do_count(r, q, out);
	case PROTO_SPARSE_SEARCH: return do_sparse_search(r, q, out);
	case PROTO_SPARSE_STATS: return do_sparse_stats(r, q, out);
	default: return do_examples(r, q, out);
	}
}

/* ===== Snapshots, payload indexes ===== */

/* snapshot create, list, get, delete, restore. */
static int
do_snapshots(struct api_rpc *r, const struct proto_request *q,
    struct api_rpc_reply *out)
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

/* A piece of a snapshot file out, or in. */
static int
do_snapfile(struct api_rpc *r, const struct proto_request *q,
    struct api_rpc_reply *out)
{
	struct proto_snapshot_read rq;
	struct proto_snapshot_upload up;
	void *keep;
	int rv;

	if (q->method == PROTO_SNAPSHOT_READ) {
		if ((rv = proto_snapshot_read_decode(q->body, q->body_len,
		    &rq)) != VECDB_OK)
			return rv;
		return api_rpc_snapshot_read(r->b, &rq, &out->body, &out->len);
	}
	if ((rv = proto_snapshot_upload_decode(q->body, q->body_len, &up,
	    &keep)) != VECDB_OK)
		return rv;
	rv = api_rpc_snapshot_upload(r->uploads, r->b, &up);
	proto_unpacked_drop(keep);
	return rv;
}

/* payload index create, delete, list. */
static int
do_pindexes(struct api_rpc *r, const struct proto_request *q,
    struct api_rpc_reply *out)
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

/* How many requests r runs at once: its handler threads, at most one a
 * CPU this process may run on (taskset, a container's cpuset). */
static uint32_t
parallelism(const struct api_rpc *r)
{
	cpu_set_t set;
	int cpus = 0;

	if (sched_getaffinity(0, sizeof(set), &set) == 0)
		cpus = CPU_COUNT(&set);
	if (cpus <= 0)
		cpus = (int) sysconf(_SC_NPROCESSORS_ONLN);
	return cpus > 0 && (unsigned) cpus < r->cfg.workers ? (uint32_t) cpus :
	    r->cfg.workers;
}

/* stats and health. */
static int
do_node(struct api_rpc *r, const struct proto_request *q,
    struct api_rpc_reply *out)
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
	if (r->ext.health != NULL)
		r->ext.health(r->ext.ctx, &h);
	snprintf(h.node_id, sizeof(h.node_id), "%s", r->cfg.node_id);
	h.last_seq = st.last_seq;
	h.parallelism = parallelism(r);
	return proto_health_encode(&h, &out->body, &out->len);
}

/* The replication methods: the role's, if there is one. */
static int
do_role(struct api_rpc *r, struct api_rpc_call *w,
    const struct proto_request *q, struct api_rpc_reply *out)
{
	if (r->ext.handle != NULL)
		return r->ext.handle(r->ext.ctx, w, q, out);
	out->code = PROTO_FAILED_PRECONDITION;
	if (q->method == PROTO_PROMOTE || q->method == PROTO_FOLLOW)
		return vdb_err(VECDB_EREADONLY, "this server has no "
		    "replication role");
	return vdb_err(VECDB_EREADONLY, "this node does not serve "
	    "replication");
}

/* ===== Parking ===== */

/* Take a spare call, or NULL when none is left. */
static struct api_rpc_call *
spare_take(struct api_rpc *r)
{
	struct api_rpc_call *w = NULL;

	pthread_mutex_lock(&r->lock);
	if (r->nspare > 0)
		w = r->spare[--r->nspare];
	pthread_mutex_unlock(&r->lock);
	return w;
}

static void
spare_put(struct api_rpc *r, struct api_rpc_call *w)
{
	pthread_mutex_lock(&r->lock);
	r->spare[r->nspare++] = w;
	pthread_mutex_unlock(&r->lock);
}

int
api_rpc_stopping(const api_rpc_call *c)
{
	return atomic_load(&c->rpc->stopping);
}

static void worker_wake(void *arg);

int
api_rpc_park(api_rpc_call *w,
    int (*arm)(void *arg, void (*wake)(void *), void *wake_arg), void *arg)
{
	struct api_rpc *r = w->rpc;
	struct api_rpc_call *spare;

	if (atomic_load(&r->stopping) || (spare = spare_take(r)) == NULL)
		return 0;
	w->state = W_PARKED;
	w->retire = 1;
	if (arm(arg, worker_wake, w) != VECDB_OK) {
		w->retire = 0;
		w->state = W_RECV;
		spare_put(r, spare);
		return 0;
	}
	worker_recv(spare);
	return 1;
}

/* ===== Dispatch ===== */

/* Run one decoded request on the backend. */
static int
dispatch(struct api_rpc *r, struct api_rpc_call *w,
    const struct proto_request *q, struct api_rpc_reply *out)
{
	switch (q->method) {
	case PROTO_FETCH_WAL: case PROTO_BOOTSTRAP_BEGIN:
	case PROTO_BOOTSTRAP_CHUNK: case PROTO_PROMOTE: case PROTO_FOLLOW:
		return do_role(r, w, q, out);
	case PROTO_CREATE_COLLECTION: case PROTO_GET_COLLECTION:
	case PROTO_LIST_COLLECTIONS: case PROTO_DELETE_COLLECTION:
	case PROTO_COMPACT_COLLECTION: case PROTO_SET_QUANTIZATION:
		return do_collections(r, q, out);
	case PROTO_WRITE: case PROTO_DELETE: case PROTO_GET:
		return do_points(r, q, out);
	case PROTO_SEARCH: case PROTO_RECOMMEND: case PROTO_DISCOVER:
	case PROTO_SCROLL: case PROTO_COUNT: case PROTO_SPARSE_SEARCH:
	case PROTO_SPARSE_STATS:
		return do_queries(r, q, out);
	case PROTO_SNAPSHOT_CREATE: case PROTO_SNAPSHOT_LIST:
	case PROTO_SNAPSHOT_GET: case PROTO_SNAPSHOT_DELETE:
	case PROTO_SNAPSHOT_RESTORE:
		return do_snapshots(r, q, out);
	case PROTO_SNAPSHOT_READ: case PROTO_SNAPSHOT_UPLOAD:
		return do_snapfile(r, q, out);
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
handle_request(struct api_rpc *r, struct api_rpc_call *w, const uint8_t *buf,
    size_t len, uint32_t *method, struct api_rpc_reply *out)
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
	else if (r->ext.writable == NULL && r->cfg.replica &&
	    is_write(q->method))
		code = (vdb_err(VECDB_EREADONLY, "this node is a replica"),
		    PROTO_FAILED_PRECONDITION);
	else if (r->ext.writable != NULL && is_write(q->method) &&
	    r->ext.writable(r->ext.ctx) != VECDB_OK)
		code = PROTO_FAILED_PRECONDITION;
	else if ((code = proto_code_of(dispatch(r, w, q, out))) != PROTO_OK &&
	    out->code != 0)
		code = out->code;
	proto_request_free(q);
	return code;
}

/*
 * Put the reply to a request in msg (the request's): 0, or nonzero when it
 * cannot be encoded. Frees out->body.
 */
static int
reply_encode(struct api_rpc *r, nng_msg *msg, uint32_t method, int code,
    struct api_rpc_reply *out)
{
	struct api_rpc_reply o = *out;
	uint32_t *missing = NULL;
	size_t n_missing = 0;
	const char *m;
	uint8_t *enc = NULL;
	size_t enclen = 0;
	int rv;

	m = code == PROTO_OK ? "" : vecdb_errmsg();
	if (code != PROTO_OK && *m == '\0')
		m = vecdb_strerror(proto_err_of(code));
	if (code != PROTO_OK) {
		vdb_free(o.body);
		o.body = NULL, o.len = 0;
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
	rv = proto_response_encode_missing(code, m, o.body, o.len,
	    missing, n_missing, &enc, &enclen);
	vdb_free(missing);
	vdb_free(o.body);
	if (rv != VECDB_OK)
		return -1;
	nng_msg_clear(msg);
	rv = nng_msg_append(msg, enc, enclen);
	vdb_free(enc);
	return rv;
}

/* ===== Write concern ===== */

/* How many replicas a successful request must wait for (0: none). */
static uint32_t
acks_needed(struct api_rpc *r, uint32_t method,
    const struct api_rpc_reply *out)
{
	uint32_t n;

	if (r->ext.acks_min == NULL || !is_write(method) || out->no_wait)
		return 0;
	n = r->ext.acks_min(r->ext.ctx);
	return out->wc > n ? out->wc : n;
}

/*
 * Wait for the replicas; on failure the answer becomes DEADLINE_EXCEEDED
 * and says the write is done here all the same (the role's message).
 */
static int
acks_wait_run(struct api_rpc *r, struct acks_wait *a)
{
	return r->ext.acks_wait(r->ext.ctx, a->token, a->seq, a->n) ==
	    VECDB_OK ? PROTO_OK : PROTO_DEADLINE_EXCEEDED;
}

/* The thread a parked write waits on: wait, answer, send. */
static void *
acks_wait_main(void *arg)
{
	struct acks_wait *a = arg;
	struct api_rpc_call *w = a->w;
	int code;

	vdb_err_clear();
	code = acks_wait_run(w->rpc, a);
	worker_reply(w, reply_encode(w->rpc, w->msg, a->method, code,
	    &a->out));
	vdb_free(a);
	return NULL;
}

/* Start the thread a parked write waits on (it answers by itself). */
static int
acks_arm(void *arg, void (*wake)(void *), void *wake_arg)
{
	pthread_attr_t at;
	pthread_t t;
	int rv;

	(void) wake, (void) wake_arg;
	pthread_attr_init(&at);
	pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
	rv = pthread_create(&t, &at, acks_wait_main, arg);
	pthread_attr_destroy(&at);
	return rv == 0 ? VECDB_OK : VECDB_ENOMEM;
}

/*
 * A write succeeded and needs @p n replicas: park it, or wait here when it
 * cannot park. 1: parked.
 */
static int
acks_start(struct api_rpc *r, struct api_rpc_call *w, uint32_t method,
    uint32_t n, struct api_rpc_reply *out, int *code)
{
	struct acks_wait *a;

	if ((a = vdb_calloc(1, sizeof(*a))) == NULL) {
		vdb_free(out->body);
		out->body = NULL;
		*code = (vdb_err(VECDB_ENOMEM, "out of memory waiting for "
		    "replicas (the write is done on the primary)"),
		    PROTO_RESOURCE_EXHAUSTED);
		return 0;
	}
	a->w = w;
	a->method = method;
	a->n = n;
	a->out = *out;
	a->token = r->ext.acks_begin(r->ext.ctx, &a->seq);
	/* parked: a owned by its thread */
	if (w != NULL && api_rpc_park(w, acks_arm, a))
		return 1;
	*code = acks_wait_run(r, a);
	vdb_free(a);
	return 0;
}

/*
 * Handle one request message; the reply replaces its body: 0, or nonzero
 * when it cannot be encoded. *how: ANSWERED; PARKED: w answers later (a
 * long-poll, or a write waiting for replicas), msg untouched; DROPPED:
 * stopping, a FetchWal is never answered (w NULL: may not park or drop).
 */
static int
handle_msg(struct api_rpc *r, struct api_rpc_call *w, nng_msg *msg, int *how)
{
	struct api_rpc_reply out = { NULL, 0, 0, 0, 0, 0, 0 };
	uint32_t method, n;
	int code, parked;

	code = handle_request(r, w, nng_msg_body(msg), nng_msg_len(msg),
	    &method, &out);
	*how = ANSWERED;
	if (code == PROTO_OK && (out.parked || out.drop)) {
		*how = out.drop ? DROPPED : PARKED;
		return 0;
	}
	if (code == PROTO_OK && (n = acks_needed(r, method, &out)) > 0 &&
	    (parked = acks_start(r, w, method, n, &out, &code))) {
		*how = PARKED;
		return 0;
	}
	return reply_encode(r, msg, method, code, &out);
}

/* ===== Handler threads ===== */

static void serve_call(struct api_rpc *r, struct api_rpc_call *w);

/* Queue call w (its request in w->msg) for a handler thread. */
static void
queue_push(struct api_rpc *r, struct api_rpc_call *w)
{
	w->next = NULL;
	pthread_mutex_lock(&r->qlock);
	if (r->qstop) {
		/* a request that came in while stopping, after the threads
		 * left: serve it here, as nothing else will */
		pthread_mutex_unlock(&r->qlock);
		serve_call(r, w);
		return;
	}
	if (r->qtail != NULL)
		r->qtail->next = w;
	else
		r->qhead = w;
	r->qtail = w;
	pthread_cond_signal(&r->qcond);
	pthread_mutex_unlock(&r->qlock);
}

/* Serve one queued call: run it, and send its answer unless it parked. */
static void
serve_call(struct api_rpc *r, struct api_rpc_call *w)
{
	int rv, how;

	if (w->rerun) {
		/* a parked long-poll is due: it may not park again */
		w->rerun = 0;
		worker_reply(w, handle_msg(r, NULL, w->msg, &how));
		return;
	}
	rv = handle_msg(r, w, w->msg, &how);
	if (how == ANSWERED)
		worker_reply(w, rv);
	else if (how == DROPPED)
		worker_drop(w);
	/* else worker_wake, or the write concern thread, answers */
}

/* A handler thread: take queued calls until told to stop. */
static void *
handler_main(void *arg)
{
	struct api_rpc *r = arg;
	struct api_rpc_call *w;

	api_pool_join(&r->pool);
	for (;;) {
		pthread_mutex_lock(&r->qlock);
		while (r->qhead == NULL && !r->qstop)
			pthread_cond_wait(&r->qcond, &r->qlock);
		if ((w = r->qhead) == NULL) {
			pthread_mutex_unlock(&r->qlock);
			return NULL;
		}
		if ((r->qhead = w->next) == NULL)
			r->qtail = NULL;
		pthread_mutex_unlock(&r->qlock);
		serve_call(r, w);
	}
}

/* ===== Calls ===== */

/* Arm the next receive unless stopping. */
static void
worker_recv(struct api_rpc_call *w)
{
	if (atomic_load(&w->rpc->stopping))
		return;
	w->state = W_RECV;
	nng_ctx_recv(w->ctx, w->aio);
}

/* A call finished a request: receive again, or become a spare if a spare
 * took its receive while it was parked. */
static void
worker_done(struct api_rpc_call *w)
{
	if (w->retire) {
		w->retire = 0;
		w->state = W_INIT;
		spare_put(w->rpc, w);
		return;
	}
	worker_recv(w);
}

/* A receive finished: queue the request for a handler thread. */
static void
worker_got(struct api_rpc_call *w)
{
	int rv = nng_aio_result(w->aio);

	if (rv == NNG_ECLOSED || rv == NNG_ECANCELED)
		return;
	if (rv != 0) {
		worker_recv(w);
		return;
	}
	w->msg = nng_aio_get_msg(w->aio);
	nng_aio_set_msg(w->aio, NULL); /* w->msg owns it now */
	atomic_fetch_add(&w->rpc->busy, 1);
	atomic_store(&w->rpc->recv_ms, vdb_now_ms());
	queue_push(w->rpc, w);
}

/* Forget w's request unanswered. */
static void
worker_drop(struct api_rpc_call *w)
{
	nng_msg_free(w->msg);
	w->msg = NULL;
	atomic_fetch_sub(&w->rpc->busy, 1);
	worker_done(w);
}

/* Send the reply in w->msg (rv 0), or drop it on an encoding failure. */
static void
worker_reply(struct api_rpc_call *w, int rv)
{
	if (rv != 0) {
		/* XXX: out of memory encoding: the client times out. */
		worker_drop(w);
		return;
	}
	nng_aio_set_msg(w->aio, w->msg);
	w->msg = NULL;
	w->state = W_SEND;
	nng_ctx_send(w->ctx, w->aio);
}

/*
 * A parked long-poll is due (the role's waiter thread): run it again on a
 * handler thread, or, when woken after api_rpc_drain, drop it.
 */
static void
worker_wake(void *arg)
{
	struct api_rpc_call *w = arg;

	if (atomic_load(&w->rpc->stopping)) {
		worker_drop(w);
		return;
	}
	w->rerun = 1;
	queue_push(w->rpc, w);
}

/* The aio callback: the classic async REP state machine. */
static void
worker_cb(void *arg)
{
	struct api_rpc_call *w = arg;

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
rpc_listen(struct api_rpc *r)
{
	nng_tls_config *tls = NULL;
	int rv, port = 0;

	if (proto_tls_url_check(r->cfg.url, r->cfg.tls != NULL, "listen url")
	    != VECDB_OK)
		return VECDB_EINVAL;
	if (r->cfg.tls != NULL && (rv = proto_tls_config(r->cfg.tls, 1,
	    &tls)) != VECDB_OK)
		return rv;
	if ((rv = nng_rep0_open(&r->sock)) != 0) {
		if (tls != NULL)
			nng_tls_config_free(tls);
		return vdb_err(VECDB_EIO, "nng: %s", nng_strerror(rv));
	}
	nng_socket_set_size(r->sock, NNG_OPT_RECVMAXSZ, PROTO_MSG_MAX);
	rv = nng_listener_create(&r->l, r->sock, r->cfg.url);
	if (rv == 0 && tls != NULL)
		rv = nng_listener_set_ptr(r->l, NNG_OPT_TLS_CONFIG, tls);
	if (tls != NULL)
		nng_tls_config_free(tls); /* the listener holds it */
	if (rv == 0)
		rv = nng_listener_start(r->l, 0);
	if (rv != 0) {
		nng_close(r->sock);
		return vdb_err(rv == NNG_EADDRINVAL || rv == NNG_ENOTSUP ?
			VECDB_EINVAL : VECDB_EIO, "cannot listen on %s: %s",
		    r->cfg.url, nng_strerror(rv));
	}
	if (nng_listener_get_int(r->l, NNG_OPT_TCP_BOUND_PORT, &port) == 0)
		r->port = (uint16_t) port;
	return VECDB_OK;
}

/* Allocate the calls' aios and contexts; a role that parks requests gets
 * a spare for each request that may park. */
static int
calls_init(struct api_rpc *r)
{
	r->ncalls = r->cfg.workers + r->ext.spares;
	if ((r->w = vdb_calloc(r->ncalls, sizeof(*r->w))) == NULL ||
	    (r->spare = vdb_calloc(r->ncalls, sizeof(*r->spare))) == NULL)
		return vdb_err(VECDB_ENOMEM, "out of memory");
	for (unsigned i = r->cfg.workers; i < r->ncalls; i++)
		r->spare[r->nspare++] = &r->w[i];
	for (unsigned i = 0; i < r->ncalls; i++) {
		struct api_rpc_call *w = &r->w[i];
		w->rpc = r;
		if (nng_aio_alloc(&w->aio, worker_cb, w) != 0 ||
		    nng_ctx_open(&w->ctx, r->sock) != 0)
			return vdb_err(VECDB_ENOMEM, "nng: cannot make worker");
	}
	return VECDB_OK;
}

/* Start cfg.workers handler threads. */
static int
threads_start(struct api_rpc *r)
{
	if ((r->threads = vdb_calloc(r->cfg.workers,
	    sizeof(*r->threads))) == NULL)
		return vdb_err(VECDB_ENOMEM, "out of memory");
	api_pool_init(&r->pool, r->cfg.workers);
	for (; r->nthreads < r->cfg.workers; r->nthreads++)
		if (pthread_create(&r->threads[r->nthreads], NULL,
		    handler_main, r) != 0)
			return vdb_err(VECDB_ENOMEM, "cannot start a handler "
			    "thread");
	return VECDB_OK;
}

/* Let the handler threads finish what is queued, and join them. */
static void
threads_stop(struct api_rpc *r)
{
	pthread_mutex_lock(&r->qlock);
	r->qstop = 1;
	pthread_cond_broadcast(&r->qcond);
	pthread_mutex_unlock(&r->qlock);
	for (unsigned i = 0; i < r->nthreads; i++)
		pthread_join(r->threads[i], NULL);
	vdb_free(r->threads);
	r->threads = NULL;
	r->nthreads = 0;
}

/*
 * Cancel every call's receive and wait out its callback, so that no
 * context has an operation pending; then no pipe's receive is re-armed on
 * our behalf (see api_rpc_stop). A reply that an aio still holds was
 * never sent, and a parked request never answered: free both.
 */
static void
calls_quiesce(struct api_rpc *r)
{
	for (unsigned i = 0; r->w != NULL && i < r->ncalls; i++) {
		struct api_rpc_call *w = &r->w[i];
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

/* Free the calls (quiesced, the socket closed). */
static void
calls_fini(struct api_rpc *r)
{
	for (unsigned i = 0; r->w != NULL && i < r->ncalls; i++) {
		if (r->w[i].aio != NULL)
			nng_aio_free(r->w[i].aio);
		nng_ctx_close(r->w[i].ctx);
	}
	vdb_free(r->w);
	vdb_free(r->spare);
	r->w = NULL;
	r->spare = NULL;
}

/* Free what api_rpc_start made, the socket closed. */
static void
rpc_free(struct api_rpc *r)
{
	calls_fini(r);
	api_rpc_uploads_free(r->uploads);
	pthread_cond_destroy(&r->qcond);
	pthread_mutex_destroy(&r->qlock);
	pthread_mutex_destroy(&r->lock);
	vdb_free(r);
}

int
api_rpc_start(const struct api_rpc_config *cfg, const struct api_backend *b,
    const struct api_rpc_ext *ext, api_rpc **out)
{
	struct api_rpc *r;
	int rv;

	if ((r = vdb_calloc(1, sizeof(*r))) == NULL)
		return vdb_err(VECDB_ENOMEM, "out of memory");
	r->cfg = *cfg;
	if (ext != NULL)
		r->ext = *ext;
	r->b = b;
	pthread_mutex_init(&r->lock, NULL);
	pthread_mutex_init(&r->qlock, NULL);
	pthread_cond_init(&r->qcond, NULL);
	if (r->cfg.node_id == NULL)
		r->cfg.node_id = "";
	if (r->cfg.workers < API_RPC_WORKERS_MIN)
		r->cfg.workers = API_RPC_WORKERS_DEFAULT;
	if (r->cfg.workers > API_RPC_WORKERS_MAX)
		r->cfg.workers = API_RPC_WORKERS_MAX;
	if ((rv = api_rpc_uploads_new(&r->uploads)) != VECDB_OK) {
		rpc_free(r);
		return rv;
	}
	if ((rv = rpc_listen(r)) != VECDB_OK) {
		rpc_free(r);
		return rv;
	}
	if ((rv = calls_init(r)) != VECDB_OK ||
	    (rv = threads_start(r)) != VECDB_OK) {
		threads_stop(r);
		nng_close(r->sock);
		rpc_free(r);
		return rv;
	}
	for (unsigned i = 0; i < r->cfg.workers; i++)
		worker_cb(&r->w[i]);
	*out = r;
	return VECDB_OK;
}

uint16_t
api_rpc_port(const api_rpc *r)
{
	return r->port;
}

void
api_rpc_drain(api_rpc *r)
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
 * is idle, so nothing will ever finish it. A replica makes that likely:
 * when its primary answered its parked poll at stop, it polled again at
 * once, was answered at once (the primary could not park any more), and
 * so on, a poll on the wire at every moment, while we closed the listener
 * (and with it the replica's pipe) and then the socket: about one stop in
 * seven hung.
 *
 * So a primary is drained before its polls are woken: FetchWal is no
 * longer answered (a parked poll woken at stop and a new one alike), and
 * the replica, waiting for that answer, sends nothing more. Its REQ
 * socket sends the request again when it reconnects. Then no receive is
 * re-armed; we wait until requests in flight have sent their replies and
 * nothing has come in for API_RPC_STOP_QUIET_MS, let the handler threads
 * finish, cancel the receives still armed, and only then close the
 * listener, its pipes and the socket.
 */
void
api_rpc_stop(api_rpc *r)
{
	struct timespec ts = { 0, 5 * 1000000L };
	uint64_t end;

	if (r == NULL)
		return;
	api_rpc_drain(r);
	end = vdb_now_ms() + API_RPC_STOP_GRACE_MS;
	while (vdb_now_ms() < end && (atomic_load(&r->busy) ||
	    vdb_now_ms() - atomic_load(&r->recv_ms) < API_RPC_STOP_QUIET_MS))
		nanosleep(&ts, NULL);
	threads_stop(r);
	calls_quiesce(r);
	nng_close(r->sock);
	rpc_free(r);
}

void
api_rpc_metrics_write(api_rpc *r, FILE *f)
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
