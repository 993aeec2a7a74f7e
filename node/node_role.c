/*
 * node_role.c: a node's replication role at run time: primary or replica,
 * the term, fencing, and the switches between them that PROMOTE and
 * FOLLOW ask for (docs/REPLICATION.md, "Promotion and terms").
 *
 * Two locks. op_lock serialises role changes, which are slow (stopping a
 * follower joins its thread, which may be loading a bootstrap copy);
 * lock guards the fields everyone reads (every write checks them) and is
 * never held across a start or stop. A follower or primary role is
 * unhooked under lock before it is stopped, so a reader holding lock only
 * ever sees live ones.
 */
#include <inttypes.h>
#include <pthread.h>
#include <string.h>

#include "node.h"
#include "repl.h"
#include "storage_repl.h"
#include "vdb.h"

struct node_role {
	struct node_role_config cfg;      /* strings borrowed */
	pthread_mutex_t op_lock;          /* one role change at a time */
	pthread_mutex_t lock;             /* guards the fields below */
	int primary;                      /* else a replica */
	int fenced;                       /* primary, heard of a newer term */
	uint64_t term;                    /* the highest term known here */
	char url[PROTO_URL_MAX + 1];      /* a replica's primary */
	repl_follower *follower;          /* replica; NULL while switching */
	repl_primary *serving;            /* primary, not stepped down */
	repl_primary *retired[NODE_RETIRED_MAX]; /* stepped down: freed at
						    node_role_free */
	size_t nretired;
	uint64_t dropped;                 /* by followers already stopped */
};

/* The term persisted in meta (what the writer stamps). */
static int
db_term(node_role *r, uint64_t *term, uint64_t *last_seq)
{
	struct storage_wal_info info;
	int rv;

	if ((rv = storage_wal_info_get(r->cfg.db, &info)) != VECDB_OK)
		return rv;
	*term = info.term;
	*last_seq = info.last_seq;
	return VECDB_OK;
}

/* ===== Starting and stopping the two sides (op_lock held) ===== */

/* Start following r->url in @p term; installs it under lock. */
static int
follower_start(node_role *r, uint64_t term)
{
	struct repl_follower_config fc = { .db = r->cfg.db,
		.primary_url = r->url, .replica_id = r->cfg.node_id,
		.api_key = r->cfg.api_key, .dir = r->cfg.data_dir,
		.wait_ms = 1000, .term = term, .tls = r->cfg.tls };
	repl_follower *f;
	int rv;

	if ((rv = repl_follower_start(&fc, &f)) != VECDB_OK)
		return rv;
	pthread_mutex_lock(&r->lock);
	r->follower = f;
	pthread_mutex_unlock(&r->lock);
	return VECDB_OK;
}

/* Unhook and stop the follower, keeping its count of dropped records. */
static void
follower_stop(node_role *r)
{
	struct repl_follower_status st;
	repl_follower *f;

	pthread_mutex_lock(&r->lock);
	f = r->follower;
	r->follower = NULL;
	pthread_mutex_unlock(&r->lock);
	if (f == NULL)
		return;
	repl_follower_status_get(f, &st);
	repl_follower_stop(f);
	pthread_mutex_lock(&r->lock);
	r->dropped += st.dropped;
	pthread_mutex_unlock(&r->lock);
}

/* Start serving replication; installs it under lock. */
static int
serving_start(node_role *r)
{
	repl_primary *p;
	int rv;

	if (r->nretired == NODE_RETIRED_MAX)
		return vdb_err(VECDB_ENOMEM, "%d role changes: restart the node",
		    NODE_RETIRED_MAX);
	if ((rv = repl_primary_new(r->cfg.db, r->cfg.data_dir,
		 r->cfg.wal_max_bytes, &p)) != VECDB_OK)
		return rv;
	pthread_mutex_lock(&r->lock);
	r->serving = p;
	r->retired[r->nretired++] = p;
	pthread_mutex_unlock(&r->lock);
	return VECDB_OK;
}

/* Unhook and stop serving replication (parked polls answer now). */
static void
serving_stop(node_role *r)
{
	repl_primary *p;

	pthread_mutex_lock(&r->lock);
	p = r->serving;
	r->serving = NULL;
	pthread_mutex_unlock(&r->lock);
	repl_primary_stop(p);
}

/* ===== Lifecycle ===== */

int
node_role_start(const struct node_role_config *cfg, node_role **out)
{
	uint64_t last;
	node_role *r;
	int rv;

	if ((r = vdb_calloc(1, sizeof(*r))) == NULL)
		return vdb_err(VECDB_ENOMEM, "out of memory");
	r->cfg = *cfg;
	if (r->cfg.wc_timeout_ms == 0)
		r->cfg.wc_timeout_ms = NODE_WC_TIMEOUT_DEFAULT_MS;
	pthread_mutex_init(&r->op_lock, NULL);
	pthread_mutex_init(&r->lock, NULL);
	if ((rv = db_term(r, &r->term, &last)) == VECDB_OK) {
		r->primary = cfg->primary_url == NULL;
		if (!r->primary) {
			snprintf(r->url, sizeof(r->url), "%s", cfg->primary_url);
			rv = follower_start(r, r->term);
		} else {
			rv = serving_start(r);
		}
	}
	if (rv != VECDB_OK) {
		node_role_free(r);
		return rv;
	}
	*out = r;
	return VECDB_OK;
}

void
node_role_stop(node_role *r)
{
	if (r == NULL)
		return;
	pthread_mutex_lock(&r->op_lock);
	follower_stop(r);
	serving_stop(r);
	pthread_mutex_unlock(&r->op_lock);
}

void
node_role_free(node_role *r)
{
	if (r == NULL)
		return;
	node_role_stop(r);
	for (size_t i = 0; i < r->nretired; i++)
		repl_primary_free(r->retired[i]);
	pthread_mutex_destroy(&r->op_lock);
	pthread_mutex_destroy(&r->lock);
	vdb_free(r);
}

/* ===== What the RPC server asks ===== */

int
node_role_writable(node_role *r)
{
	int rv = VECDB_OK;

	pthread_mutex_lock(&r->lock);
	if (!r->primary)
		rv = vdb_err(VECDB_EREADONLY, "this node is a read replica of %s",
		    r->url);
	else if (r->fenced)
		rv = vdb_err(VECDB_EREADONLY, "this node was primary, but term %"
		    PRIu64 " has started elsewhere: it takes no writes until it "
		    "follows the new primary", r->term);
	pthread_mutex_unlock(&r->lock);
	return rv;
}

struct repl_primary *
node_role_primary(node_role *r)
{
	repl_primary *p;

	pthread_mutex_lock(&r->lock);
	p = r->fenced ? NULL : r->serving;
	pthread_mutex_unlock(&r->lock);
	return p;
}

uint32_t
node_role_min_replicas(const node_role *r)
{
	return r->cfg.min_replicas;
}

uint32_t
node_role_wc_timeout_ms(const node_role *r)
{
	return r->cfg.wc_timeout_ms;
}

uint64_t
node_role_last_seq(node_role *r)
{
	struct storage_wal_info info;

	return storage_wal_info_get(r->cfg.db, &info) == VECDB_OK ?
	    info.last_seq : 0;
}

void
node_role_fence(node_role *r, uint64_t term)
{
	int fenced = 0;

	pthread_mutex_lock(&r->lock);
	if (term > r->term) {
		r->term = term;
		fenced = r->primary && !r->fenced;
		r->fenced |= r->primary;
	}
	pthread_mutex_unlock(&r->lock);
	if (fenced)
		VDB_LOG_WARN("NODE", "a replica knows term %" PRIu64 ": this "
		    "primary is stale and refuses writes from now", term);
}

/* ===== Promote ===== */

/* Start term @p t in the database and as ours. */
static int
term_start(node_role *r, uint64_t t)
{
	uint64_t start;
	int rv;

	if ((rv = storage_term_begin(r->cfg.db, t, &start)) != VECDB_OK)
		return rv;
	pthread_mutex_lock(&r->lock);
	r->term = t;
	pthread_mutex_unlock(&r->lock);
	VDB_LOG_WARN("NODE", "term %" PRIu64 " starts here at seq %" PRIu64,
	    t, start);
	return VECDB_OK;
}

/* The term a promotion starts: above everything known here and min. */
static int
term_next(node_role *r, uint64_t min_term, uint64_t *out)
{
	uint64_t t, last;
	int rv;

	if ((rv = db_term(r, &t, &last)) != VECDB_OK)
		return rv;
	pthread_mutex_lock(&r->lock);
	if (r->term > t)
		t = r->term;
	pthread_mutex_unlock(&r->lock);
	if (min_term > t)
		t = min_term;
	if (t == UINT64_MAX)
		return vdb_err(VECDB_EINVAL, "no term above %" PRIu64, t);
	*out = t + 1;
	return VECDB_OK;
}

/* A replica (or a fenced primary) takes over (op_lock held). */
static int
promote_locked(node_role *r, uint64_t min_term)
{
	uint64_t t = 0;
	int rv;

	follower_stop(r);
	serving_stop(r);
	if ((rv = term_next(r, min_term, &t)) != VECDB_OK ||
	    (rv = term_start(r, t)) != VECDB_OK ||
	    (rv = serving_start(r)) != VECDB_OK) {
		VDB_LOG_ERROR("NODE", "promotion failed: %s", vecdb_errmsg());
		return rv;
	}
	pthread_mutex_lock(&r->lock);
	r->primary = 1;
	r->fenced = 0;
	r->url[0] = '\0';
	pthread_mutex_unlock(&r->lock);
	VDB_LOG_WARN("NODE", "promoted: primary of term %" PRIu64, t);
	return VECDB_OK;
}

int
node_role_promote(node_role *r, uint64_t min_term, uint64_t *term,
    uint64_t *last_seq)
{
	struct node_role_status st;
	uint64_t t = 0;
	int rv = VECDB_OK;

	pthread_mutex_lock(&r->op_lock);
	node_role_status_get(r, &st);
	if (!st.primary || st.fenced)
		rv = promote_locked(r, min_term);
	else if (min_term >= st.term &&
	    (rv = term_next(r, min_term, &t)) == VECDB_OK)
		rv = term_start(r, t);
	if (rv == VECDB_OK)
		rv = db_term(r, term, last_seq);
	pthread_mutex_unlock(&r->op_lock);
	return rv;
}

/* ===== Follow ===== */

/* Step down or switch to url (op_lock held, term checked). */
static int
follow_locked(node_role *r, const char *url, uint64_t term)
{
	int was_primary;
	int rv;

	pthread_mutex_lock(&r->lock);
	was_primary = r->primary;
	r->fenced |= r->primary; /* no write from now on */
	if (term > r->term)
		r->term = term;
	pthread_mutex_unlock(&r->lock);
	serving_stop(r);
	follower_stop(r);
	pthread_mutex_lock(&r->lock);
	r->primary = 0;
	r->fenced = 0;
	snprintf(r->url, sizeof(r->url), "%s", url);
	pthread_mutex_unlock(&r->lock);
	if ((rv = follower_start(r, term)) != VECDB_OK) {
		VDB_LOG_ERROR("NODE", "cannot follow %s: %s", url,
		    vecdb_errmsg());
		return rv;
	}
	VDB_LOG_WARN("NODE", "%s %s in term %" PRIu64, was_primary ?
	    "stepped down: following" : "following", url, term);
	return VECDB_OK;
}

int
node_role_follow(node_role *r, const char *url, uint64_t term)
{
	struct node_role_status st;
	int rv;

	pthread_mutex_lock(&r->op_lock);
	node_role_status_get(r, &st);
	if (term < st.term || (st.primary && !st.fenced && term == st.term))
		rv = vdb_err(VECDB_EREADONLY, "stale term %" PRIu64 ": this "
		    "node is at term %" PRIu64 "%s", term, st.term,
		    st.primary ? " as its primary" : "");
	else if (!st.primary && r->follower != NULL &&
	    strcmp(st.primary_url, url) == 0)
		rv = VECDB_OK; /* already following it */
	else
		rv = follow_locked(r, url, term);
	if (rv == VECDB_OK) {
		pthread_mutex_lock(&r->lock);
		if (term > r->term)
			r->term = term;
		pthread_mutex_unlock(&r->lock);
	}
	pthread_mutex_unlock(&r->op_lock);
	return rv;
}

/* ===== Status ===== */

void
node_role_status_get(node_role *r, struct node_role_status *out)
{
	struct repl_follower_status fs;

	memset(out, 0, sizeof(*out));
	pthread_mutex_lock(&r->lock);
	out->primary = r->primary;
	out->fenced = r->fenced;
	out->term = r->term;
	if (!r->primary)
		snprintf(out->primary_url, sizeof(out->primary_url), "%s",
		    r->url);
	out->dropped = r->dropped;
	if (r->follower != NULL) {
		repl_follower_status_get(r->follower, &fs);
		out->dropped += fs.dropped;
	}
	pthread_mutex_unlock(&r->lock);
}

int
node_role_follower_status(node_role *r, struct repl_follower_status *out)
{
	int has;

	pthread_mutex_lock(&r->lock);
	if ((has = r->follower != NULL))
		repl_follower_status_get(r->follower, out);
	pthread_mutex_unlock(&r->lock);
	return has;
}

int
node_role_ready(node_role *r)
{
	int ready;

	pthread_mutex_lock(&r->lock);
	if (r->primary)
		ready = !r->fenced;
	else
		ready = r->follower != NULL && repl_follower_ready(r->follower);
	pthread_mutex_unlock(&r->lock);
	return ready;
}

void
node_role_metrics_write(node_role *r, FILE *f)
{
	struct node_role_status st;

	pthread_mutex_lock(&r->lock);
	if (r->serving != NULL)
		repl_primary_metrics_write(r->serving, f);
	if (r->follower != NULL)
		repl_follower_metrics_write(r->follower, f);
	pthread_mutex_unlock(&r->lock);
	node_role_status_get(r, &st);
	fprintf(f, "# HELP vecdb_node_term The highest term this node knows."
		   "\n# TYPE vecdb_node_term gauge\nvecdb_node_term %" PRIu64
		   "\n", st.term);
	fprintf(f, "# HELP vecdb_replica_dropped_records_total Records of "
		   "ours dropped because a new primary's history replaced "
		   "them.\n# TYPE vecdb_replica_dropped_records_total counter\n"
		   "vecdb_replica_dropped_records_total %" PRIu64 "\n",
	    st.dropped);
}
