/*
 * router_status.c: GET /cluster over a router. Every member of the
 * topology (each shard's primary and replicas) is asked, in parallel, for
 * HEALTH (role, node id, last WAL seq), LIST_COLLECTIONS and then
 * GET_COLLECTION per collection (point counts).
 *
 * Each member gets a short-lived req0 socket of its own rather than the
 * shard socket of router_call.c: status is a rare operator call, and it
 * must say honestly whether a member answers now, whatever the router's
 * back-off state, and it covers replicas, which the router does not dial.
 * A synchronous dial also yields the real reason ("Connection refused")
 * instead of a bare timeout.
 */
#include <nng/nng.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "proto.h"
#include "coord.h"
#include "router_impl.h"
#include "vdb.h"

#define STATUS_THREADS_MAX 16   /* members asked at once */

/* One member being asked, and what it said. */
struct member {
	uint32_t shard;           /* shard id */
	char *url;                /* owned: a worker may outlive the topology */
	const char *role;         /* as configured: primary or replica */
	struct proto_health h;    /* its HEALTH answer */
	json_t *colls;            /* [{name, vectors}] (owned) */
	char error[512];          /* "" when it answered everything */
	int done;                 /* the fields above are final; guarded by
				     the run's lock */
};

/*
 * A status call: the members and the shared deadline. Shared by the
 * caller and the workers, and freed by whichever lets go last: a worker
 * stuck in a dial past the deadline is left behind, not waited for.
 */
struct status_run {
	pthread_mutex_t lock;     /* guards done, left, refs */
	pthread_cond_t cond;      /* signalled when a member is done */
	unsigned refs;            /* the caller and each running worker */
	size_t left;              /* members not done */
	struct member *m;         /* n members, shard by shard */
	size_t n;
	atomic_size_t next;       /* the next member to ask */
	char *key;                /* node api key, "" for none (owned) */
	nng_tls_config *tls;      /* the topology's (held), or NULL */
	uint32_t timeout_ms;
	uint64_t end_ms;          /* deadline on the monotonic clock */
};

/* Send one request and wait for its answer until the deadline: 0, -1
 * when no good answer came, or the member's error code (enum
 * proto_code). On failure m->error says why, naming the method. */
static int
rpc(struct status_run *run, struct member *m, nng_socket s, uint32_t method,
    const uint8_t *body, size_t len, struct proto_response **out)
{
	const char *what = proto_method_name(method);
	struct proto_rpc_xchg x = { .aio = NULL };
	uint8_t *req;
	size_t reqlen;
	int rv;

	*out = NULL;
	if ((rv = proto_request_encode(method, run->key, 0, body, len, &req,
	    &reqlen)) == VECDB_OK) {
		rv = proto_rpc_send(&x, s, req, reqlen, run->end_ms);
		vdb_free(req);
	}
	if (rv != VECDB_OK) {
		snprintf(m->error, sizeof(m->error), "%s: %s", what,
		    vecdb_errmsg());
		return -1;
	}
	switch (proto_rpc_wait(&x, run->end_ms, out)) {
	case PROTO_RPC_UNSENT:
	case PROTO_RPC_LATE:
		snprintf(m->error, sizeof(m->error), "%s: no answer within "
		    "%u ms", what, run->timeout_ms);
		return -1;
	case PROTO_RPC_LOST:
		snprintf(m->error, sizeof(m->error), "%s: the connection was "
		    "lost before the answer", what);
		return -1;
	case PROTO_RPC_BAD:
		snprintf(m->error, sizeof(m->error), "%s: bad response: %s",
		    what, vecdb_errmsg());
		return -1;
	case PROTO_RPC_ANSWERED:
		break;
	}
	if ((rv = (*out)->code) != PROTO_OK) {
		snprintf(m->error, sizeof(m->error), "%s: %s", what,
		    (*out)->message);
		proto_response_free(*out);
		return rv;
	}
	return 0;
}

/* HEALTH into m->h. */
static int
ask_health(struct status_run *run, struct member *m, nng_socket s)
{
	struct proto_response *resp;
	int rv;

	if (rpc(run, m, s, PROTO_HEALTH, NULL, 0, &resp) != 0)
		return -1;
	rv = proto_health_decode(resp->body, resp->body_len, &m->h);
	proto_response_free(resp);
	if (rv != VECDB_OK)
		snprintf(m->error, sizeof(m->error), "health: %s",
		    vecdb_errmsg());
	return rv == VECDB_OK ? 0 : -1;
}

/* GET_COLLECTION of one name: appended to m->colls; a collection dropped
 * since the list is skipped. */
static int
ask_collection(struct status_run *run, struct member *m, nng_socket s,
    const char *name)
{
	struct proto_response *resp;
	vecdb_collection_config cfg;
	vecdb_collection_stats st;
	uint8_t *body;
	size_t len;
	int rv;

	if (proto_target_encode(PROTO_GET_COLLECTION, name, NULL, 0, &body,
	    &len) != VECDB_OK) {
		snprintf(m->error, sizeof(m->error), "%s", vecdb_errmsg());
		return -1;
	}
	rv = rpc(run, m, s, PROTO_GET_COLLECTION, body, len, &resp);
	vdb_free(body);
	if (rv == PROTO_NOT_FOUND) {
		m->error[0] = '\0';
		return 0;
	}
	if (rv != 0)
		return -1;
	rv = proto_collection_info_decode(resp->body, resp->body_len, &cfg,
	    &st);
	proto_response_free(resp);
	if (rv != VECDB_OK) {
		snprintf(m->error, sizeof(m->error), "get_collection: %s",
		    vecdb_errmsg());
		return -1;
	}
	json_array_append_new(m->colls, json_pack("{s:s, s:I}", "name", name,
	    "vectors", (json_int_t) st.vector_count));
	return 0;
}

/* LIST_COLLECTIONS, then each one's count. */
static int
ask_collections(struct status_run *run, struct member *m, nng_socket s)
{
	struct proto_response *resp;
	char **names;
	size_t n;
	int rv;

	if (rpc(run, m, s, PROTO_LIST_COLLECTIONS, NULL, 0, &resp) != 0)
		return -1;
	rv = proto_names_decode(resp->body, resp->body_len, &names, &n);
	proto_response_free(resp);
	if (rv != VECDB_OK) {
		snprintf(m->error, sizeof(m->error), "list_collections: %s",
		    vecdb_errmsg());
		return -1;
	}
	for (size_t i = 0; i < n && rv == 0; i++)
		rv = ask_collection(run, m, s, names[i]);
	vecdb_names_free(names, n);
	return rv;
}

/*
 * Ask one member everything over a socket of its own. The dial is
 * synchronous so that a refused connection is reported as such; a host
 * that drops SYNs holds it until the kernel gives up, but only this
 * worker waits that long: the caller answers at the deadline.
 */
static void
ask_member(struct status_run *run, struct member *m)
{
	nng_socket s;

	if ((m->colls = json_array()) == NULL) {
		snprintf(m->error, sizeof(m->error), "out of memory");
		return;
	}
	if (proto_rpc_dial(m->url, PROTO_RPC_DIAL_NOW, run->tls, NULL, NULL,
	    &s) != VECDB_OK) {
		snprintf(m->error, sizeof(m->error), "%s", vecdb_errmsg());
		return;
	}
	if (ask_health(run, m, s) == 0)
		ask_collections(run, m, s);
	nng_close(s);
}

/* Free a run and what its members hold. */
static void
run_free(struct status_run *run)
{
	for (size_t i = 0; i < run->n; i++) {
		vdb_free(run->m[i].url);
		json_decref(run->m[i].colls);
	}
	vdb_free(run->m);
	vdb_free(run->key);
	if (run->tls != NULL)
		nng_tls_config_free(run->tls);
	pthread_cond_destroy(&run->cond);
	pthread_mutex_destroy(&run->lock);
	vdb_free(run);
}

/* Drop one reference; the last one frees. */
static void
run_put(struct status_run *run)
{
	unsigned left;

	pthread_mutex_lock(&run->lock);
	left = --run->refs;
	pthread_mutex_unlock(&run->lock);
	if (left == 0)
		run_free(run);
}

/* Status workers still running, in any run (router_status_drain). */
static pthread_mutex_t live_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t live_cv;   /* on the monotonic clock: live_init */
static pthread_once_t live_once = PTHREAD_ONCE_INIT;
static unsigned live;

static void
live_init(void)
{
	vdb_cond_init(&live_cv);
}

/* One more worker (+1) or one fewer (-1). */
static void
live_add(int d)
{
	pthread_once(&live_once, live_init);
	pthread_mutex_lock(&live_mu);
	live = (unsigned) ((int) live + d);
	if (live == 0)
		pthread_cond_broadcast(&live_cv);
	pthread_mutex_unlock(&live_mu);
}

unsigned
router_status_running(void)
{
	unsigned n;

	pthread_once(&live_once, live_init);
	pthread_mutex_lock(&live_mu);
	n = live;
	pthread_mutex_unlock(&live_mu);
	return n;
}

unsigned
router_status_drain(uint32_t timeout_ms)
{
	struct timespec ts = vdb_deadline(timeout_ms);
	unsigned left;

	pthread_once(&live_once, live_init);
	pthread_mutex_lock(&live_mu);
	while (live > 0 && pthread_cond_timedwait(&live_cv, &live_mu, &ts) == 0)
		;
	left = live;
	pthread_mutex_unlock(&live_mu);
	return left;
}

/* A worker: ask members until none is left (none is started after the
 * deadline: the caller reports those itself). */
static void *
worker(void *arg)
{
	struct status_run *run = arg;
	size_t i;

	while (vdb_now_ms() < run->end_ms &&
	    (i = atomic_fetch_add(&run->next, 1)) < run->n) {
		ask_member(run, &run->m[i]);
		pthread_mutex_lock(&run->lock);
		run->m[i].done = 1;
		run->left--;
		pthread_cond_signal(&run->cond);
		pthread_mutex_unlock(&run->lock);
	}
	run_put(run);
	live_add(-1);
	return NULL;
}

/* Start detached workers; with none, ask from this thread. */
static void
workers_start(struct status_run *run)
{
	size_t want = run->n < STATUS_THREADS_MAX ? run->n : STATUS_THREADS_MAX;
	pthread_attr_t attr;
	pthread_t th;
	size_t started = 0;

	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	for (; started < want; started++) {
		pthread_mutex_lock(&run->lock);
		run->refs++;
		pthread_mutex_unlock(&run->lock);
		live_add(1);
		if (pthread_create(&th, &attr, worker, run) != 0) {
			live_add(-1);
			pthread_mutex_lock(&run->lock);
			run->refs--;
			pthread_mutex_unlock(&run->lock);
			break;
		}
	}
	pthread_attr_destroy(&attr);
	if (started == 0) {
		run->refs++;
		live_add(1);
		worker(run);
	}
}

/* Wait until every member is done or the deadline (plus a little for
 * the last answers to be decoded) has passed. Called with the lock. */
static void
wait_locked(struct status_run *run)
{
	uint64_t end = run->end_ms + 100;
	struct timespec ts;

	while (run->left > 0 && vdb_now_ms() < end) {
		ts = vdb_deadline(20);
		pthread_cond_timedwait(&run->cond, &run->lock, &ts);
	}
}

/* The members of t, primary first within each shard. */
static struct member *
members_new(const router_topology *t, size_t *n)
{
	struct member *m;
	size_t k = 0;

	*n = 0;
	for (size_t i = 0; i < t->n; i++)
		*n += 1 + t->shards[i].n_replicas;
	if ((m = vdb_calloc(*n, sizeof(*m))) == NULL)
		return NULL;
	for (size_t i = 0; i < t->n; i++) {
		const struct router_shard *s = &t->shards[i];
		m[k++] = (struct member) { .shard = s->id,
			.url = vdb_strdup(s->primary), .role = "primary" };
		for (size_t j = 0; j < s->n_replicas; j++)
			m[k++] = (struct member) { .shard = s->id,
				.url = vdb_strdup(s->replicas[j]),
				.role = "replica" };
	}
	for (size_t i = 0; i < *n; i++)
		if (m[i].url == NULL) {
			for (size_t j = 0; j < *n; j++)
				vdb_free(m[j].url);
			vdb_free(m);
			return NULL;
		}
	return m;
}

/* One member's JSON; an answering member's role is the one it reports,
 * and one still being asked is reported as not answering. */
static json_t *
member_json(struct status_run *run, struct member *m)
{
	json_t *colls, *j;
	char why[128];

	if (!m->done) {
		snprintf(why, sizeof(why), "no answer within %u ms",
		    run->timeout_ms);
		return api_cluster_member_json(m->url, m->role, NULL, 0,
		    json_array(), why);
	}
	colls = m->colls ? m->colls : json_array();
	m->colls = NULL;
	if (m->error[0] != '\0')
		return api_cluster_member_json(m->url, m->role, m->h.node_id[0] ?
		    m->h.node_id : NULL, m->h.last_seq, colls, m->error);
	j = api_cluster_member_json(m->url, m->h.role, m->h.node_id,
	    m->h.last_seq, colls, NULL);
	/* replication: the term it is at, and whom a replica follows */
	if (j != NULL) {
		json_object_set_new(j, "term", json_integer((json_int_t)
		    m->h.term));
		if (m->h.primary[0] != '\0')
			json_object_set_new(j, "primary",
			    json_string(m->h.primary));
	}
	return j;
}

/* {role: router, shards: [{id, members}]} from the answers. Called with
 * the lock, so that no member turns done halfway. */
static json_t *
status_json_locked(struct status_run *run, const router_topology *t)
{
	json_t *shards = json_array();
	size_t k = 0;

	for (size_t i = 0; i < t->n; i++) {
		json_t *members = json_array();
		while (k < run->n && run->m[k].shard == t->shards[i].id)
			json_array_append_new(members, member_json(run,
			    &run->m[k++]));
		json_array_append_new(shards, json_pack("{s:I, s:o}", "id",
		    (json_int_t) t->shards[i].id, "members", members));
	}
	return json_pack("{s:s, s:o}", "role", "router", "shards", shards);
}

/* A run over the members of t, its deadline starting now. */
static struct status_run *
run_new(const router_topology *t, uint32_t timeout_ms, const char *key)
{
	struct status_run *run = vdb_calloc(1, sizeof(*run));

	if (run == NULL)
		return NULL;
	if ((run->m = members_new(t, &run->n)) == NULL ||
	    (run->key = vdb_strdup(key)) == NULL) {
		vdb_free(run->m);
		vdb_free(run);
		return NULL;
	}
	if ((run->tls = t->tls) != NULL)
		nng_tls_config_hold(run->tls);
	pthread_mutex_init(&run->lock, NULL);
	vdb_cond_init(&run->cond);
	run->refs = 1;
	run->left = run->n;
	run->timeout_ms = timeout_ms;
	run->end_ms = vdb_now_ms() + timeout_ms;
	atomic_init(&run->next, 0);
	return run;
}

/*
 * With etcd: each shard's "leader" from its leader key (node_elect.c),
 * {"node_id", "term", "lease_ttl_s"}, or null when none holds it (an
 * election is due, or the roles are not elected).
 */
static void
leaders_add(router *r, json_t *status)
{
	json_t *shards = json_object_get(status, "shards"), *sh;
	size_t i;

	json_array_foreach(shards, i, sh) {
		char key[256], *v = NULL;
		int64_t lease = 0, ttl = -1;
		json_error_t je;
		json_t *o = NULL, *l = json_null();

		snprintf(key, sizeof(key), "%sleader/%lld",
		    coord_prefix(r->coord), (long long) json_integer_value(
		    json_object_get(sh, "id")));
		if (coord_get(r->coord, key, &v, &lease, NULL, NULL) ==
		    VECDB_OK &&
		    (o = json_loads(v, 0, &je)) != NULL) {
			if (coord_lease_ttl(r->coord, lease, &ttl) != VECDB_OK)
				ttl = -1;
			l = json_pack("{s:O?, s:O?, s:I}", "node_id",
			    json_object_get(o, "node_id"), "term",
			    json_object_get(o, "term"), "lease_ttl_s",
			    (json_int_t) ttl);
		}
		json_object_set_new(sh, "leader", l ? l : json_null());
		json_decref(o);
		vdb_free(v);
	}
}

int
router_cluster_status(void *ctx, json_t **out)
{
	router *r = ctx;
	struct status_run *run;
	router_topology *t;
	const char *key;
	uint32_t timeout_ms;
	json_t *j;

	t = router_topology_acquire(r, &timeout_ms, &key);
	if ((run = run_new(t, timeout_ms, key)) == NULL) {
		router_topology_release(r, t);
		return vdb_err(VECDB_ENOMEM, "out of memory");
	}
	workers_start(run);
	pthread_mutex_lock(&run->lock);
	wait_locked(run);
	j = status_json_locked(run, t);
	pthread_mutex_unlock(&run->lock);
	router_topology_release(r, t);
	run_put(run);
	if (j == NULL)
		return vdb_err(VECDB_ENOMEM, "out of memory");
	if (r->coord != NULL)
		leaders_add(r, j);
	*out = j;
	return VECDB_OK;
}
