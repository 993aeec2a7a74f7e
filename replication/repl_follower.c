/*
 * repl_follower.c: the replica's side: one thread that long-polls the
 * primary for the records after its applied seq and applies each batch in
 * one transaction; when the primary no longer holds them (or sends a
 * RESTORE, which cannot be replayed) it bootstraps from a copy of the
 * primary's database and tails again from the copy's last seq.
 *
 * The applied seq is the database's own last seq, read back before each
 * fetch: it commits with the records, so after a crash the follower
 * resumes exactly where the data is.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <nng/nng.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "proto_rpc.h"
#include "repl.h"
#include "storage_repl.h"
#include "vdb.h"

#define SEND_TIMEOUT_MS 2000
#define RECV_SLACK_MS 10000    /* beyond the long-poll wait */
#define BOOTSTRAP_RECV_MS 600000 /* a copy of a large database takes time */
#define REFUSED_MAX 3          /* batches refused in a row: bootstrap */
#define BOOTSTRAP_RETRY_MS 10000 /* after a failed bootstrap: each try
				    copies the whole database again */

struct repl_follower {
	struct repl_follower_config cfg;   /* strings borrowed */
	nng_socket sock;
	struct proto_rpc_cancel cancel;    /* ends the thread's call on stop */
	pthread_t thread;
	uint64_t request_id;               /* follower thread only */
	unsigned refused;                  /* batches refused in a row (same) */
	uint64_t drop_counted;             /* our last seq when we last counted
					      dropped records (same): a failed
					      bootstrap does not count twice */
	pthread_mutex_t lock;              /* guards the fields below */
	pthread_cond_t cv;                 /* stop */
	int stopping;
	struct repl_follower_status st;
	uint64_t contact_ms;               /* 0: never */
};

/* What the primary answered. */
struct answer {
	int code;                          /* enum proto_code */
	uint8_t *body;                     /* vdb_free() */
	size_t len;
};

static int
stopping(struct repl_follower *f)
{
	int s;

	pthread_mutex_lock(&f->lock);
	s = f->stopping;
	pthread_mutex_unlock(&f->lock);
	return s;
}

/* Sleep ms unless stopped first. */
static void
nap(struct repl_follower *f, uint64_t ms)
{
	struct timespec ts = vdb_deadline(ms);

	pthread_mutex_lock(&f->lock);
	if (!f->stopping)
		pthread_cond_timedwait(&f->cv, &f->lock, &ts);
	pthread_mutex_unlock(&f->lock);
}

/* ===== Calls to the primary ===== */

/*
 * One request (body freed here) and its answer. VECDB_OK means the
 * exchange worked; a->code says what the primary answered, with its
 * message set as ours when not OK.
 */
static int
call(struct repl_follower *f, uint32_t method, uint8_t *body, size_t len,
    uint32_t recv_ms, struct answer *a)
{
	struct proto_rpc_req rq = { .url = f->cfg.primary_url,
		.api_key = f->cfg.api_key, .id = ++f->request_id,
		.timeout_ms = SEND_TIMEOUT_MS + recv_ms, .cancel = &f->cancel };
	struct proto_response *resp = NULL;
	int rv;

	memset(a, 0, sizeof(*a));
	rv = proto_rpc_call(f->sock, &rq, method, body, len, &resp);
	vdb_free(body);
	if (resp == NULL)
		return rv;  /* no answer */
	a->code = resp->code;
	if (resp->code != PROTO_OK)
		vdb_err(proto_err_of(resp->code), "primary %s: %s",
		    f->cfg.primary_url, resp->message);
	a->body = resp->body; /* taken over */
	a->len = resp->body_len;
	resp->body = NULL;
	proto_response_free(resp);
	return VECDB_OK;
}

/* Note that the primary answered, at seq @p primary_seq. */
static void
contact(struct repl_follower *f, uint64_t primary_seq, uint64_t applied)
{
	pthread_mutex_lock(&f->lock);
	f->contact_ms = vdb_now_ms();
	f->st.primary_seq = primary_seq;
	f->st.applied_seq = applied;
	pthread_mutex_unlock(&f->lock);
}

/* ===== Bootstrap ===== */

/* Fetch the copy's bytes into fd, hashing them. */
static int
download(struct repl_follower *f, const struct proto_bootstrap_info *bi,
    int fd, EVP_MD_CTX *md)
{
	struct proto_bootstrap_chunk c = { bi->session, 0, REPL_CHUNK_DEFAULT };
	struct answer a;
	uint8_t *body, *data;
	size_t len, n;
	int rv;

	while (c.offset < bi->size && !stopping(f)) {
		if ((rv = proto_bootstrap_chunk_encode(&c, &body, &len)) != VECDB_OK ||
		    (rv = call(f, PROTO_BOOTSTRAP_CHUNK, body, len,
			 SEND_TIMEOUT_MS + RECV_SLACK_MS, &a)) != VECDB_OK)
			return rv;
		rv = a.code != PROTO_OK ? proto_err_of(a.code) :
		    proto_bootstrap_data_decode(a.body, a.len, &data, &n);
		vdb_free(a.body);
		if (rv != VECDB_OK)
			return rv;
		if (n == 0 || n > bi->size - c.offset ||
		    write(fd, data, n) != (ssize_t) n) {
			vdb_free(data);
			return vdb_err(VECDB_EIO, "bootstrap chunk at %" PRIu64
			    " is empty, too long, or cannot be written",
			    c.offset);
		}
		EVP_DigestUpdate(md, data, n);
		vdb_free(data);
		c.offset += n;
	}
	return c.offset == bi->size ? VECDB_OK :
				      vdb_err(VECDB_ECLOSED, "stopping");
}

/* Download the copy to path and check its SHA-256. */
static int
fetch_copy(struct repl_follower *f, const struct proto_bootstrap_info *bi,
    const char *path)
{
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	uint8_t sum[32];
	int fd, rv;

	if (md == NULL || EVP_DigestInit_ex(md, EVP_sha256(), NULL) != 1) {
		EVP_MD_CTX_free(md);
		return vdb_err(VECDB_ENOMEM, "out of memory");
	}
	if ((fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC,
		 0600)) < 0) {
		EVP_MD_CTX_free(md);
		return vdb_err(VECDB_EIO, "cannot create %s: %s", path,
		    strerror(errno));
	}
	rv = download(f, bi, fd, md);
	if (rv == VECDB_OK && fsync(fd) != 0)
		rv = vdb_err(VECDB_EIO, "cannot sync %s", path);
	close(fd);
	EVP_DigestFinal_ex(md, sum, NULL);
	EVP_MD_CTX_free(md);
	if (rv == VECDB_OK && memcmp(sum, bi->sha256, 32) != 0)
		rv = vdb_err(VECDB_ECORRUPT, "bootstrap copy of %" PRIu64
		    " bytes failed its SHA-256 check", bi->size);
	return rv;
}

/* Replace our database with a fresh copy of the primary's. */
static int
bootstrap(struct repl_follower *f)
{
	struct proto_bootstrap_info bi;
	struct storage_wal_info info;
	struct answer a;
	char path[4200];
	uint8_t *body;
	size_t len;
	int rv;

	memset(&info, 0, sizeof(info));
	pthread_mutex_lock(&f->lock);
	f->st.bootstrapping = 1;
	pthread_mutex_unlock(&f->lock);
	VDB_LOG_WARN("REPL", "bootstrapping from %s", f->cfg.primary_url);
	snprintf(path, sizeof(path), "%s/repl-bootstrap.part", f->cfg.dir);
	if ((rv = proto_bootstrap_begin_encode(f->cfg.replica_id, &body,
		 &len)) == VECDB_OK &&
	    (rv = call(f, PROTO_BOOTSTRAP_BEGIN, body, len, BOOTSTRAP_RECV_MS,
		 &a)) == VECDB_OK) {
		rv = a.code != PROTO_OK ? proto_err_of(a.code) :
		    proto_bootstrap_info_decode(a.body, a.len, &bi);
		vdb_free(a.body);
	}
	if (rv == VECDB_OK && (rv = fetch_copy(f, &bi, path)) == VECDB_OK &&
	    (rv = storage_load(f->cfg.db, path)) == VECDB_OK &&
	    (rv = storage_wal_info_get(f->cfg.db, &info)) == VECDB_OK)
		VDB_LOG_WARN("REPL", "bootstrapped: %" PRIu64 " bytes, at seq %"
		    PRIu64, bi.size, info.last_seq);
	unlink(path);
	pthread_mutex_lock(&f->lock);
	f->st.bootstrapping = 0;
	if (rv == VECDB_OK) {
		f->drop_counted = 0;
		f->st.bootstraps++;
		f->st.applied_seq = info.last_seq;
	}
	pthread_mutex_unlock(&f->lock);
	return rv;
}

/* ===== Tailing ===== */

/*
 * Apply a batch; *boot set when it stopped at a RESTORE, or when the
 * database refused batches REFUSED_MAX times in a row: one refusal may be
 * a damaged message, repeated ones mean this replica has diverged from
 * the primary, and only a copy of the primary's data mends that.
 */
static int
apply(struct repl_follower *f, const struct proto_wal_batch *b, int *boot)
{
	uint64_t last = 0;
	int rv, restore = 0;

	if (b->count == 0)
		return VECDB_OK;
	rv = storage_wal_apply(f->cfg.db, b->records, b->records_len, &last,
	    &restore);
	if (rv == VECDB_ECORRUPT && ++f->refused >= REFUSED_MAX) {
		VDB_LOG_ERROR("REPL", "batch refused %u times (%s): "
		    "bootstrapping", f->refused, vecdb_errmsg());
		f->refused = 0;
		*boot = 1;
		return VECDB_OK;
	}
	if (rv != VECDB_OK)
		return rv;
	f->refused = 0;
	contact(f, b->last_seq, last);
	if (restore) {
		VDB_LOG_WARN("REPL", "the primary restored a snapshot at seq %"
		    PRIu64 ": it cannot be replayed", last + 1);
		*boot = 1;
	}
	return VECDB_OK;
}

/*
 * The primary says our history left its own after b->common_seq: the
 * records we hold past it were never the primary's (we were a primary
 * that lost its place) and must go. Undoing applied records one by one
 * needs undo data we do not keep, so a bootstrap replaces them with the
 * primary's copy; the count is what we had past the common seq.
 */
static int
drop_diverged(struct repl_follower *f, const struct proto_wal_batch *b,
    const struct storage_wal_info *info, int *boot)
{
	uint64_t n;

	if (b->common_seq >= info->last_seq)
		return vdb_err(VECDB_ECORRUPT, "primary %s says we diverged "
		    "after seq %" PRIu64 ", but we are at %" PRIu64,
		    f->cfg.primary_url, b->common_seq, info->last_seq);
	n = info->last_seq - b->common_seq;
	*boot = 1;
	if (f->drop_counted == info->last_seq)
		return VECDB_OK; /* a bootstrap that failed: counted */
	f->drop_counted = info->last_seq;
	VDB_LOG_WARN("REPL", "our history (seq %" PRIu64 ", term %" PRIu64
	    ") left primary %s's (term %" PRIu64 ") after seq %" PRIu64
	    ": dropping %" PRIu64 " records of ours and bootstrapping",
	    info->last_seq, info->last_term, f->cfg.primary_url, b->term,
	    b->common_seq, n);
	pthread_mutex_lock(&f->lock);
	f->st.dropped += n;
	pthread_mutex_unlock(&f->lock);
	return VECDB_OK;
}

/*
 * One long-poll and its batch. *boot is set when a bootstrap is due.
 */
static int
fetch_once(struct repl_follower *f, int *boot)
{
	struct proto_fetch_wal q;
	struct storage_wal_info info;
	struct proto_wal_batch *b = NULL;
	struct answer a;
	uint8_t *body;
	size_t len;
	int rv;

	*boot = 0;
	if ((rv = storage_wal_info_get(f->cfg.db, &info)) != VECDB_OK)
		return rv;
	memset(&q, 0, sizeof(q));
	q.after_seq = info.last_seq;
	q.max_wait_ms = f->cfg.wait_ms;
	q.after_term = info.last_seq > 0 ? info.last_term : 0;
	q.term = info.term > f->cfg.term ? info.term : f->cfg.term;
	snprintf(q.replica_id, sizeof(q.replica_id), "%s", f->cfg.replica_id);
	if ((rv = proto_fetch_wal_encode(&q, &body, &len)) != VECDB_OK ||
	    (rv = call(f, PROTO_FETCH_WAL, body, len,
		 f->cfg.wait_ms + RECV_SLACK_MS, &a)) != VECDB_OK)
		return rv;
	if (a.code == PROTO_OUT_OF_RANGE) {
		VDB_LOG_WARN("REPL", "%s", vecdb_errmsg());
		vdb_free(a.body);
		*boot = 1;
		return VECDB_OK;
	}
	rv = a.code != PROTO_OK ? proto_err_of(a.code) :
	    proto_wal_batch_decode(a.body, a.len, &b);
	vdb_free(a.body);
	if (rv != VECDB_OK)
		return rv;
	contact(f, b->last_seq, info.last_seq);
	pthread_mutex_lock(&f->lock);
	f->st.primary_term = b->term;
	pthread_mutex_unlock(&f->lock);
	if (b->diverged)
		rv = drop_diverged(f, b, &info, boot);
	else
		rv = apply(f, b, boot);
	proto_wal_batch_free(b);
	return rv;
}

/* The follower thread: fetch, apply; back off on errors. */
static void *
follower_main(void *arg)
{
	struct repl_follower *f = arg;
	uint32_t backoff = proto_rpc_backoff(0);
	uint64_t wait;
	int rv, boot;

	while (!stopping(f)) {
		if ((rv = fetch_once(f, &boot)) == VECDB_OK && boot)
			rv = bootstrap(f);
		if (rv == VECDB_OK) {
			backoff = proto_rpc_backoff(0);
			continue;
		}
		if (stopping(f))
			break;
		pthread_mutex_lock(&f->lock);
		f->st.errors++;
		pthread_mutex_unlock(&f->lock);
		wait = boot && backoff < BOOTSTRAP_RETRY_MS ? BOOTSTRAP_RETRY_MS :
							  backoff;
		VDB_LOG_WARN("REPL", "replication from %s: %s; again in %"
		    PRIu64 " ms", f->cfg.primary_url, vecdb_errmsg(), wait);
		nap(f, wait);
		backoff = proto_rpc_backoff(backoff);
	}
	return NULL;
}

/* ===== Lifecycle and status ===== */

/* A req0 socket that dials the primary and redials on its own. */
static int
sock_open(struct repl_follower *f)
{
	int rv;

	if ((rv = proto_rpc_dial(f->cfg.primary_url, 0, f->cfg.tls, NULL,
	    NULL, &f->sock)) != VECDB_OK)
		return vdb_err(rv, "primary: %s", vecdb_errmsg());
	return VECDB_OK;
}

int
repl_follower_start(const struct repl_follower_config *cfg,
    repl_follower **out)
{
	struct storage_wal_info info;
	struct repl_follower *f;
	char path[4200];
	int rv;

	if ((rv = storage_wal_info_get(cfg->db, &info)) != VECDB_OK)
		return rv;
	if ((f = vdb_calloc(1, sizeof(*f))) == NULL)
		return vdb_err(VECDB_ENOMEM, "out of memory");
	f->cfg = *cfg;
	if (f->cfg.wait_ms == 0)
		f->cfg.wait_ms = 1000;
	if (f->cfg.replica_id == NULL)
		f->cfg.replica_id = "";
	f->st.applied_seq = info.last_seq;
	snprintf(path, sizeof(path), "%s/repl-bootstrap.part", cfg->dir);
	unlink(path); /* a download a crash interrupted */
	if ((rv = sock_open(f)) != VECDB_OK) {
		vdb_free(f);
		return rv;
	}
	pthread_mutex_init(&f->lock, NULL);
	vdb_cond_init(&f->cv);
	proto_rpc_cancel_init(&f->cancel);
	if (pthread_create(&f->thread, NULL, follower_main, f) != 0) {
		nng_close(f->sock);
		proto_rpc_cancel_fini(&f->cancel);
		pthread_mutex_destroy(&f->lock);
		pthread_cond_destroy(&f->cv);
		vdb_free(f);
		return vdb_err(VECDB_ENOMEM, "cannot start the follower");
	}
	*out = f;
	return VECDB_OK;
}

void
repl_follower_stop(repl_follower *f)
{
	if (f == NULL)
		return;
	pthread_mutex_lock(&f->lock);
	f->stopping = 1;
	pthread_cond_broadcast(&f->cv);
	pthread_mutex_unlock(&f->lock);
	/* A blocked send or recv returns at once. Not nng_close: closing
	 * the socket under the thread's own nng_ctx_close races in nng. */
	proto_rpc_cancel(&f->cancel);
	pthread_join(f->thread, NULL);
	nng_close(f->sock);
	proto_rpc_cancel_fini(&f->cancel);
	pthread_mutex_destroy(&f->lock);
	pthread_cond_destroy(&f->cv);
	vdb_free(f);
}

void
repl_follower_status_get(repl_follower *f, struct repl_follower_status *out)
{
	pthread_mutex_lock(&f->lock);
	*out = f->st;
	out->contact_age_ms = f->contact_ms ? vdb_now_ms() - f->contact_ms :
					      UINT64_MAX;
	pthread_mutex_unlock(&f->lock);
}

int
repl_follower_ready(repl_follower *f)
{
	struct repl_follower_status st;

	repl_follower_status_get(f, &st);
	return !st.bootstrapping && st.contact_age_ms <= REPL_READY_CONTACT_MS &&
	    st.applied_seq + REPL_READY_LAG_RECORDS >= st.primary_seq;
}

void
repl_follower_metrics_write(repl_follower *f, FILE *out)
{
	struct repl_follower_status st;

	repl_follower_status_get(f, &st);
	fprintf(out, "# HELP vecdb_replica_applied_seq Last WAL seq applied "
		     "on this replica.\n# TYPE vecdb_replica_applied_seq gauge\n"
		     "vecdb_replica_applied_seq %" PRIu64 "\n", st.applied_seq);
	fprintf(out, "# HELP vecdb_replica_primary_seq The primary's last seq "
		     "when it last answered.\n# TYPE vecdb_replica_primary_seq "
		     "gauge\nvecdb_replica_primary_seq %" PRIu64 "\n",
	    st.primary_seq);
	fprintf(out, "# HELP vecdb_replica_bootstraps_total Bootstraps from a "
		     "copy of the primary.\n# TYPE vecdb_replica_bootstraps_total "
		     "counter\nvecdb_replica_bootstraps_total %" PRIu64 "\n",
	    st.bootstraps);
	fprintf(out, "# HELP vecdb_replica_errors_total Failed fetches, "
		     "applies and bootstraps.\n# TYPE vecdb_replica_errors_total "
		     "counter\nvecdb_replica_errors_total %" PRIu64 "\n",
	    st.errors);
}
