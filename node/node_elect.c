/*
 * node_elect.c: a shard's leader through etcd (node.h). The leader holds
 * /<cluster>/leader/<shard> = {"node_id", "rpc", "term"} on its member
 * lease (coord.h); the key goes when the lease does.
 *
 * Every ELECT_POLL_MS the elector reads that key:
 * - ours, on our lease: we lead; unless our lease was last renewed more
 *   than ELECT_FENCE_MS ago (etcd unreachable, a partition): then we
 *   refuse writes at once, before the lease can expire anywhere else,
 *   and give the key up when etcd answers again;
 * - someone else's: we follow it in its term (a primary steps down),
 *   unless we were promoted (PROMOTE, `vecdbctl promote`) into a newer
 *   term than its: then we take the key over, and its holder follows us;
 * - absent: an election. Every candidate puts its last seq afresh (with
 *   the revision at which it saw the key gone), waits until every member
 *   of the shard has done so (at most ELECT_SETTLE_MS: one that does not
 *   is down), and ranks the shard's members: a primary that takes writes
 *   first (one promoted by an operator), then by (term, last seq)
 *   descending, node id ascending; the one of rank k tries after
 *   k * ELECT_STEP_MS, so the most up-to-date goes first, and a later one
 *   only if it did not make it. The try is one transaction that creates
 *   the key if it does not exist: one winner. The winner's term is above
 *   every term the shard's members report and the transaction's
 *   revision, so terms never repeat.
 */
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "coord.h"
#include "node.h"
#include "vdb.h"

#define ELECT_POLL_MS 100
#define ELECT_SETTLE_MS 400     /* at most, for the others' last seq */
#define ELECT_FRESH_POLL_MS 30
#define ELECT_STEP_MS 500
#define ELECT_HANDOVER_MS 3000  /* a demoted leader holds the key for the
				   promoted one this long */
/* Fence this long after the last renewal that etcd answered: the lease
 * lives COORD_LEASE_TTL_S from when that renewal left, at least. */
#define ELECT_FENCE_MS (COORD_LEASE_TTL_S * 1000 - 600)
#define ELECT_FENCE_POLL_MS 20

struct node_elect {
	struct node_elect_config cfg;
	char key[256];
	_Atomic int leader;          /* we hold the key and take writes */
	_Atomic uint64_t elections;  /* metrics */
	_Atomic uint64_t changes;
	int64_t key_rev;             /* the leader key's last revision seen */
	pthread_t thread;
	pthread_t fence_thread;      /* watches the lease's age alone */
	pthread_mutex_t lock;
	pthread_cond_t cv;
	int stopping;
	uint64_t warned_ms;
	uint64_t handover_ms;        /* since when we hold the key demoted */
};

/* Our leader value, with term. */
static char *
leader_value(const node_elect *e, uint64_t term)
{
	json_t *o = json_pack("{s:s, s:s, s:I}", "node_id", e->cfg.node_id,
	    "rpc", e->cfg.rpc, "term", (json_int_t) term);
	char *s = o ? json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS) : NULL;

	json_decref(o);
	return s;
}

/* Stop taking writes: the lease may be gone by now. */
static void
fence_self(node_elect *e, const char *why)
{
	struct node_role_status st;

	node_role_status_get(e->cfg.role, &st);
	node_role_fence(e->cfg.role, st.term + 1);
	if (e->leader)
		VDB_LOG_WARN("ELECT", "shard %u: refusing writes: %s",
		    e->cfg.shard, why);
	e->leader = 0;
}

/* The members of our shard: their (term, last_seq, node_id), and the
 * highest term; our rank among them; *fresh: whether every member has
 * put its state since the leader key went (its elect_rev is past the
 * key's last revision we saw). */
static int
rank_self(node_elect *e, unsigned *rank, uint64_t *max_term, int *fresh)
{
	char prefix[256];
	struct coord_kv *kvs;
	uint64_t my_term = 0, my_seq = 0;
	size_t n;
	int rv, found = 0, my_prim = 0;

	snprintf(prefix, sizeof(prefix), "%smembers/%u/",
	    coord_prefix(e->cfg.c), e->cfg.shard);
	if ((rv = coord_range(e->cfg.c, prefix, &kvs, &n, NULL)) != VECDB_OK)
		return rv;
	*rank = 0;
	*max_term = 0;
	*fresh = 1;
	for (int pass = 0; pass < 2; pass++)
		for (size_t i = 0; i < n; i++) {
			json_error_t je;
			json_t *m = json_loads(kvs[i].value, 0, &je);
			uint64_t t = (uint64_t) json_integer_value(
			    json_object_get(m, "term"));
			uint64_t s = (uint64_t) json_integer_value(
			    json_object_get(m, "last_seq"));
			const char *id = json_string_value(json_object_get(m,
			    "node_id"));
			const char *role = json_string_value(json_object_get(m,
			    "role"));
			int prim = role != NULL && strcmp(role, "primary") == 0;
			int me = id != NULL && strcmp(id, e->cfg.node_id) == 0;

			if (pass == 0) {
				if (json_integer_value(json_object_get(m,
				    "elect_rev")) <= e->key_rev)
					*fresh = 0;
				if (t > *max_term)
					*max_term = t;
				if (me) {
					my_term = t;
					my_seq = s;
					my_prim = prim;
					found = 1;
				}
			} else if (!me && id != NULL && (prim > my_prim ||
			    (prim == my_prim && (t > my_term ||
			    (t == my_term && (s > my_seq || (s == my_seq &&
			    strcmp(id, e->cfg.node_id) < 0)))))))
				(*rank)++;
			json_decref(m);
		}
	coord_kvs_free(kvs, n);
	return found ? VECDB_OK : vdb_err(VECDB_ENOTFOUND, "not registered");
}

/* No leader: run for it. */
static void
elect(node_elect *e)
{
	unsigned rank;
	uint64_t max_term, term, last;
	int64_t rev;
	char *v, *cur;
	int64_t l;
	int created = 0, fresh = 0;
	uint64_t settle = vdb_now_ms() + ELECT_SETTLE_MS;

	if (coord_member_refresh(e->cfg.member) != VECDB_OK)
		return;
	/* until every member has put its last seq since the key went, or
	 * ELECT_SETTLE_MS (one that does not is down) */
	do {
		usleep(ELECT_FRESH_POLL_MS * 1000);
		if (rank_self(e, &rank, &max_term, &fresh) != VECDB_OK)
			return;
	} while (!fresh && vdb_now_ms() < settle);
	if (rank > 0) {
		/* our turn comes after rank * ELECT_STEP_MS, unless a better
		 * placed one makes it first: then follow it at once (the
		 * writes that wait for a replica wait for us) */
		uint64_t turn = vdb_now_ms() + rank * ELECT_STEP_MS;
		do {
			usleep(ELECT_FRESH_POLL_MS * 1000);
			if (coord_get(e->cfg.c, e->key, &cur, &l, NULL, NULL) !=
			    VECDB_ENOTFOUND) {
				vdb_free(cur);
				return; /* someone made it, or etcd is gone */
			}
		} while (vdb_now_ms() < turn);
	}
	if ((v = leader_value(e, 0)) == NULL)
		return;
	e->elections++;
	if (coord_create(e->cfg.c, e->key, v, coord_member_lease(e->cfg.member),
	    &created, &rev) != VECDB_OK || !created) {
		free(v);
		return;
	}
	free(v);
	if ((uint64_t) rev > max_term)
		max_term = (uint64_t) rev;
	if (node_role_promote(e->cfg.role, max_term, &term, &last) !=
	    VECDB_OK) {
		VDB_LOG_WARN("ELECT", "shard %u: won the election but cannot "
		    "promote: %s", e->cfg.shard, vecdb_errmsg());
		coord_delete(e->cfg.c, e->key);
		return;
	}
	if ((v = leader_value(e, term)) != NULL) {
		coord_put(e->cfg.c, e->key, v, coord_member_lease(e->cfg.member));
		free(v);
	}
	e->leader = 1;
	e->changes++;
	coord_member_refresh(e->cfg.member);
	VDB_LOG_INFO("ELECT", "shard %u: leader in term %" PRIu64 " at seq %"
	    PRIu64 " (rank %u)", e->cfg.shard, term, last, rank);
}

/* Someone else leads: follow it in its term. */
static void
follow(node_elect *e, const char *rpc, uint64_t term)
{
	struct node_role_status st;

	if (e->leader)
		e->changes++;
	e->leader = 0;
	node_role_status_get(e->cfg.role, &st);
	if (!st.primary && strcmp(st.primary_url, rpc) == 0 && st.term >= term)
		return;
	if (node_role_follow(e->cfg.role, rpc, term) == VECDB_OK) {
		VDB_LOG_INFO("ELECT", "shard %u: following %s in term %" PRIu64,
		    e->cfg.shard, rpc, term);
		coord_member_refresh(e->cfg.member);
	} else if (vdb_now_ms() - e->warned_ms > 10000) {
		VDB_LOG_WARN("ELECT", "shard %u: cannot follow %s in term %"
		    PRIu64 ": %s", e->cfg.shard, rpc, term, vecdb_errmsg());
		e->warned_ms = vdb_now_ms();
	}
}

/*
 * We were made primary from outside (PROMOTE: `vecdbctl promote`) in a
 * term above the key's: take the key over, so that its holder follows us.
 */
static void
take_over(node_elect *e, const char *old, uint64_t term)
{
	char *v = leader_value(e, term);
	int done = 0;

	if (v != NULL && coord_replace(e->cfg.c, e->key, old, v,
	    coord_member_lease(e->cfg.member), &done) == VECDB_OK && done) {
		e->leader = 1;
		e->changes++;
		coord_member_refresh(e->cfg.member);
		VDB_LOG_INFO("ELECT", "shard %u: leader in term %" PRIu64
		    " (promoted)", e->cfg.shard, term);
	}
	free(v);
}

/*
 * The key is ours. We lead while our role is an unfenced primary on the
 * lease that holds the key. Told to follow another (PROMOTE of a replica
 * through a router), we hold the key ELECT_HANDOVER_MS for the promoted
 * one to take over, so that no election starts meanwhile. Otherwise
 * (a key from before a restart, a lost lease, a fence) we give it up and
 * the election decides.
 */
static void
held(node_elect *e, const char *v, int64_t lease,
    const struct node_role_status *st)
{
	int lost = lease != coord_member_lease(e->cfg.member);
	uint64_t now = vdb_now_ms();

	if (!lost && st->primary && !st->fenced && e->leader) {
		e->handover_ms = 0;
		return;
	}
	if (e->leader)
		e->changes++;
	e->leader = 0;
	if (!lost && !st->primary && st->primary_url[0] != '\0') {
		if (e->handover_ms == 0)
			e->handover_ms = now;
		if (now - e->handover_ms < ELECT_HANDOVER_MS)
			return;
	}
	e->handover_ms = 0;
	coord_delete_if(e->cfg.c, e->key, v);
}

/* One look at the leader key, and what it calls for. */
static void
step(node_elect *e)
{
	char *v = NULL;
	int64_t lease = 0, mod = 0, rev = 0;
	int rv = coord_get(e->cfg.c, e->key, &v, &lease, &mod, &rev);
	uint64_t renewed = coord_member_renewed_ms(e->cfg.member);
	struct node_role_status st;
	json_error_t je;
	json_t *o;

	if (e->leader && vdb_now_ms() - renewed > ELECT_FENCE_MS)
		fence_self(e, "the lease was not renewed in time");
	if (rv == VECDB_ENOTFOUND) {
		atomic_store(e->cfg.elect_rev, rev);
		elect(e);
		/* whoever won, look again now rather than a poll later */
		rv = coord_get(e->cfg.c, e->key, &v, &lease, &mod, &rev);
		if (rv == VECDB_ENOTFOUND)
			return;
	}
	if (rv != VECDB_OK)
		return; /* etcd unreachable: fenced above when it matters */
	e->key_rev = mod;
	o = json_loads(v, 0, &je);
	if (o != NULL && json_is_string(json_object_get(o, "node_id")) &&
	    json_is_string(json_object_get(o, "rpc"))) {
		const char *id = json_string_value(json_object_get(o,
		    "node_id"));
		uint64_t term = (uint64_t) json_integer_value(
		    json_object_get(o, "term"));
		node_role_status_get(e->cfg.role, &st);
		if (strcmp(id, e->cfg.node_id) != 0 && st.primary &&
		    !st.fenced && st.term > term)
			take_over(e, v, st.term);
		else if (strcmp(id, e->cfg.node_id) != 0)
			follow(e, json_string_value(json_object_get(o, "rpc")),
			    term);
		else
			held(e, v, lease, &st);
	}
	json_decref(o);
	vdb_free(v);
}

/*
 * The fence, on a thread of its own that makes no call: the elector's
 * calls to etcd may each wait COORD_CALL_TIMEOUT_MS for an etcd that does
 * not answer, longer than the lease, and a leader must stop writing
 * ELECT_FENCE_MS after its last renewal whatever they do.
 */
static void *
fence_main(void *arg)
{
	node_elect *e = arg;

	pthread_mutex_lock(&e->lock);
	while (!e->stopping) {
		struct timespec ts = vdb_deadline(ELECT_FENCE_POLL_MS);

		pthread_cond_timedwait(&e->cv, &e->lock, &ts);
		if (!e->stopping && e->leader && vdb_now_ms() -
		    coord_member_renewed_ms(e->cfg.member) > ELECT_FENCE_MS)
			fence_self(e, "the lease was not renewed in time");
	}
	pthread_mutex_unlock(&e->lock);
	return NULL;
}

static void *
elect_main(void *arg)
{
	node_elect *e = arg;

	pthread_mutex_lock(&e->lock);
	while (!e->stopping) {
		struct timespec ts = vdb_deadline(ELECT_POLL_MS);

		pthread_cond_timedwait(&e->cv, &e->lock, &ts);
		if (e->stopping)
			break;
		pthread_mutex_unlock(&e->lock);
		step(e);
		pthread_mutex_lock(&e->lock);
	}
	pthread_mutex_unlock(&e->lock);
	return NULL;
}

int
node_elect_start(const struct node_elect_config *cfg, node_elect **out)
{
	node_elect *e = vdb_calloc(1, sizeof(*e));

	*out = NULL;
	if (e == NULL)
		return vdb_err(VECDB_ENOMEM, "out of memory");
	e->cfg = *cfg;
	snprintf(e->key, sizeof(e->key), "%sleader/%u",
	    coord_prefix(cfg->c), cfg->shard);
	pthread_mutex_init(&e->lock, NULL);
	vdb_cond_init(&e->cv);
	if (pthread_create(&e->thread, NULL, elect_main, e) != 0) {
		pthread_mutex_destroy(&e->lock);
		pthread_cond_destroy(&e->cv);
		vdb_free(e);
		return vdb_err(VECDB_ENOMEM, "cannot start a thread");
	}
	if (pthread_create(&e->fence_thread, NULL, fence_main, e) != 0) {
		pthread_mutex_lock(&e->lock);
		e->stopping = 1;
		pthread_cond_broadcast(&e->cv);
		pthread_mutex_unlock(&e->lock);
		pthread_join(e->thread, NULL);
		pthread_mutex_destroy(&e->lock);
		pthread_cond_destroy(&e->cv);
		vdb_free(e);
		return vdb_err(VECDB_ENOMEM, "cannot start a thread");
	}
	*out = e;
	return VECDB_OK;
}

void
node_elect_stop(node_elect *e)
{
	char *cur = NULL;
	int64_t l;

	if (e == NULL)
		return;
	pthread_mutex_lock(&e->lock);
	e->stopping = 1;
	pthread_cond_broadcast(&e->cv);
	pthread_mutex_unlock(&e->lock);
	pthread_join(e->thread, NULL);
	pthread_join(e->fence_thread, NULL);
	/* a leader that stops hands over at once, not at the lease's end */
	if (e->leader) {
		fence_self(e, "stopping");
		if (coord_get(e->cfg.c, e->key, &cur, &l, NULL, NULL) ==
		    VECDB_OK &&
		    l == coord_member_lease(e->cfg.member))
			coord_delete_if(e->cfg.c, e->key, cur);
		vdb_free(cur);
	}
	pthread_mutex_destroy(&e->lock);
	pthread_cond_destroy(&e->cv);
	vdb_free(e);
}

void
node_elect_metrics_write(node_elect *e, FILE *f)
{
	if (e == NULL)
		return;
	fprintf(f, "# HELP vecdb_elections_total Elections this node ran "
		   "for its shard's leadership in etcd.\n"
		   "# TYPE vecdb_elections_total counter\n"
		   "vecdb_elections_total %" PRIu64 "\n"
		   "# HELP vecdb_leader_changes_total Times this node became "
		   "or stopped being its shard's leader.\n"
		   "# TYPE vecdb_leader_changes_total counter\n"
		   "vecdb_leader_changes_total %" PRIu64 "\n"
		   "# HELP vecdb_leader Whether this node leads its shard "
		   "(etcd).\n# TYPE vecdb_leader gauge\nvecdb_leader %d\n",
	    (uint64_t) e->elections, (uint64_t) e->changes, (int) e->leader);
}
