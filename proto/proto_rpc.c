/*
 * proto_rpc.c: the RPC client (proto_rpc.h): dial, one exchange on a
 * context of its own with a monotonic deadline, and a whole call.
 */
#include <nng/nng.h>
#include <nng/protocol/reqrep0/req.h>
#include <string.h>

#include "proto_rpc.h"
#include "vdb.h"

/* ===== TLS ===== */

/* Whether url asks for TLS. */
static int
is_tls(const char *url)
{
	return strncmp(url, "tls+", 4) == 0;
}

int
proto_tls_url_check(const char *url, int have_tls, const char *what)
{
	if (is_tls(url) && !have_tls)
		return vdb_err(VECDB_EINVAL, "%s %s is TLS: it needs "
		    PROTO_TLS_USAGE, what, url);
	if (!is_tls(url) && have_tls)
		return vdb_err(VECDB_EINVAL, "%s %s is not TLS, but TLS is "
		    "configured: use tls+tcp://", what, url);
	return VECDB_OK;
}

int
proto_tls_files_given(const struct proto_tls_files *f)
{
	int n = (f->ca != NULL) + (f->cert != NULL) + (f->key != NULL);

	if (n == 0 || n == 3)
		return n / 3;
	vdb_err(VECDB_EINVAL, "TLS needs all three of " PROTO_TLS_USAGE
	    "; missing:%s%s%s", f->ca ? "" : " --tls-ca",
	    f->cert ? "" : " --tls-cert", f->key ? "" : " --tls-key");
	return -1;
}

int
proto_tls_config(const struct proto_tls_files *f, int server,
    nng_tls_config **out)
{
	char *ca = NULL, *cert = NULL, *key = NULL;
	nng_tls_config *c = NULL;
	int rv;

	*out = NULL;
	switch (proto_tls_files_given(f)) {
	case 0:
		return vdb_err(VECDB_EINVAL, "TLS needs " PROTO_TLS_USAGE);
	case -1:
		return VECDB_EINVAL;
	}
	if ((rv = vdb_file_read(f->ca, &ca)) != VECDB_OK ||
	    (rv = vdb_file_read(f->cert, &cert)) != VECDB_OK ||
	    (rv = vdb_file_read(f->key, &key)) != VECDB_OK)
		goto out;
	if (nng_tls_config_alloc(&c, server ? NNG_TLS_MODE_SERVER :
	    NNG_TLS_MODE_CLIENT) != 0) {
		rv = vdb_err(VECDB_ENOMEM, "out of memory");
		goto out;
	}
	if ((rv = nng_tls_config_ca_chain(c, ca, NULL)) != 0) {
		rv = vdb_err(VECDB_EINVAL, "TLS CA %s: %s", f->ca,
		    nng_strerror(rv));
		goto out;
	}
	if ((rv = nng_tls_config_own_cert(c, cert, key, NULL)) != 0) {
		rv = vdb_err(VECDB_EINVAL, "TLS certificate %s with key %s: %s",
		    f->cert, f->key, nng_strerror(rv));
		goto out;
	}
	if ((rv = nng_tls_config_auth_mode(c, NNG_TLS_AUTH_MODE_REQUIRED)) !=
	    0 || (rv = nng_tls_config_version(c, NNG_TLS_1_2,
	    NNG_TLS_1_3)) != 0) {
		rv = vdb_err(VECDB_EINVAL, "TLS settings: %s",
		    nng_strerror(rv));
		goto out;
	}
	*out = c;
	c = NULL;
	rv = VECDB_OK;
out:
	if (c != NULL)
		nng_tls_config_free(c);
	vdb_free(ca);
	vdb_free(cert);
	vdb_free(key);
	return rv;
}

/* ===== Calls ===== */

int
proto_rpc_dial(const char *url, int flags, nng_tls_config *tls,
    nng_pipe_cb notify, void *arg, nng_socket *out)
{
	nng_dialer d;
	int rv;

	if (proto_tls_url_check(url, tls != NULL, "url") != VECDB_OK)
		return VECDB_EINVAL;

	if ((rv = nng_req0_open(out)) != 0)
		return vdb_err(VECDB_ENOMEM, "nng: %s", nng_strerror(rv));
	nng_socket_set_size(*out, NNG_OPT_RECVMAXSZ, PROTO_MSG_MAX);
	nng_socket_set_ms(*out, NNG_OPT_RECONNMINT, PROTO_RPC_RECONNECT_MIN_MS);
	nng_socket_set_ms(*out, NNG_OPT_RECONNMAXT, PROTO_RPC_RECONNECT_MAX_MS);
	/* every call is sent once: a resend could apply a write twice */
	nng_socket_set_ms(*out, NNG_OPT_REQ_RESENDTIME, NNG_DURATION_INFINITE);
	if (notify != NULL) {
		nng_pipe_notify(*out, NNG_PIPE_EV_ADD_POST, notify, arg);
		nng_pipe_notify(*out, NNG_PIPE_EV_REM_POST, notify, arg);
	}
	if ((rv = nng_dialer_create(&d, *out, url)) == 0 && tls != NULL)
		rv = nng_dialer_set_ptr(d, NNG_OPT_TLS_CONFIG, tls);
	if (rv == 0)
		rv = nng_dialer_start(d, flags & PROTO_RPC_DIAL_NOW ? 0 :
		    NNG_FLAG_NONBLOCK);
	if (rv == 0)
		return VECDB_OK;
	nng_close(*out);
	if (rv == NNG_EADDRINVAL || rv == NNG_ENOTSUP || rv == NNG_EINVAL ||
	    !(flags & PROTO_RPC_DIAL_NOW))
		return vdb_err(VECDB_EINVAL, "cannot dial %s: %s", url,
		    nng_strerror(rv));
	return vdb_err(VECDB_EUNAVAILABLE, "cannot connect to %s: %s", url,
	    nng_strerror(rv));
}

/* Milliseconds from now until end, at least 1 (0 would mean no wait). */
static nng_duration
left_ms(uint64_t end)
{
	uint64_t now = vdb_now_ms();

	return (nng_duration) (end > now ? end - now : 1);
}

void
proto_rpc_cancel_init(struct proto_rpc_cancel *c)
{
	pthread_mutex_init(&c->lock, NULL);
	c->aio = NULL;
	c->cancelled = 0;
}

void
proto_rpc_cancel_fini(struct proto_rpc_cancel *c)
{
	pthread_mutex_destroy(&c->lock);
}

void
proto_rpc_cancel(struct proto_rpc_cancel *c)
{
	pthread_mutex_lock(&c->lock);
	c->cancelled = 1;
	if (c->aio != NULL)
		nng_aio_cancel(c->aio);
	pthread_mutex_unlock(&c->lock);
}

/*
 * Start an operation on x's aio, under x->cancel's lock when there is
 * one, so that a cancel either sees the operation (and ends it) or comes
 * first (and the operation never starts). 0, or -1 when cancelled.
 */
static int
start(struct proto_rpc_xchg *x, int recv)
{
	struct proto_rpc_cancel *c = x->cancel;

	if (c != NULL) {
		pthread_mutex_lock(&c->lock);
		if (c->cancelled) {
			pthread_mutex_unlock(&c->lock);
			return -1;
		}
		c->aio = x->aio;
	}
	if (recv)
		nng_ctx_recv(x->ctx, x->aio);
	else
		nng_ctx_send(x->ctx, x->aio);
	if (c != NULL)
		pthread_mutex_unlock(&c->lock);
	return 0;
}

/* A new context on sock and its aio into s: 0, or -1 (out of memory). */
static int
slot_open(nng_socket sock, struct proto_rpc_slot *s)
{
	if (nng_ctx_open(&s->ctx, sock) != 0)
		return -1;
	if (nng_aio_alloc(&s->aio, NULL, NULL) != 0) {
		nng_ctx_close(s->ctx);
		return -1;
	}
	return 0;
}

/* Start x on slot s (from pool, or NULL: closed when x ends). */
static int
xchg_send(struct proto_rpc_xchg *x, struct proto_rpc_pool *pool,
    const struct proto_rpc_slot *s, const uint8_t *req, size_t len,
    uint64_t end_ms)
{
	nng_msg *msg = NULL;

	x->ctx = s->ctx;
	x->aio = s->aio;
	x->sent = 0;
	x->pool = pool;
	x->answered = 0;
	if (nng_msg_alloc(&msg, 0) != 0 || nng_msg_append(msg, req, len) != 0) {
		nng_msg_free(msg);
		proto_rpc_xchg_fini(x);
		return vdb_err(VECDB_ENOMEM, "out of memory");
	}
	nng_aio_set_timeout(x->aio, left_ms(end_ms));
	nng_aio_set_msg(x->aio, msg);
	if (start(x, 0) != 0) {
		nng_aio_set_msg(x->aio, NULL);
		nng_msg_free(msg);
		proto_rpc_xchg_fini(x);
		return vdb_err(VECDB_EUNAVAILABLE, "cancelled");
	}
	return VECDB_OK;
}

int
proto_rpc_send(struct proto_rpc_xchg *x, nng_socket sock, const uint8_t *req,
    size_t len, uint64_t end_ms)
{
	struct proto_rpc_slot s;

	x->aio = NULL;
	if (slot_open(sock, &s) != 0)
		return vdb_err(VECDB_ENOMEM, "out of memory");
	return xchg_send(x, NULL, &s, req, len, end_ms);
}

void
proto_rpc_pool_init(struct proto_rpc_pool *p, nng_socket sock)
{
	pthread_mutex_init(&p->lock, NULL);
	p->sock = sock;
	p->slots = NULL;
	p->n = p->cap = 0;
}

void
proto_rpc_pool_fini(struct proto_rpc_pool *p)
{
	for (unsigned i = 0; i < p->n; i++) {
		nng_aio_free(p->slots[i].aio);
		nng_ctx_close(p->slots[i].ctx);
	}
	vdb_free(p->slots);
	p->slots = NULL;
	p->n = p->cap = 0;
	pthread_mutex_destroy(&p->lock);
}

int
proto_rpc_send_on(struct proto_rpc_xchg *x, struct proto_rpc_pool *pool,
    const uint8_t *req, size_t len, uint64_t end_ms)
{
	struct proto_rpc_slot s;
	int have = 0;

	x->aio = NULL;
	pthread_mutex_lock(&pool->lock);
	if (pool->n > 0) {
		s = pool->slots[--pool->n];
		have = 1;
	}
	pthread_mutex_unlock(&pool->lock);
	if (!have && slot_open(pool->sock, &s) != 0)
		return vdb_err(VECDB_ENOMEM, "out of memory");
	return xchg_send(x, pool, &s, req, len, end_ms);
}

/* Give x's context back to its pool: 1, or 0 when it keeps none. */
static int
slot_return(struct proto_rpc_xchg *x)
{
	struct proto_rpc_pool *p = x->pool;
	int kept = 0;

	if (p == NULL || !x->answered)
		return 0;
	pthread_mutex_lock(&p->lock);
	if (p->n == p->cap && p->cap < PROTO_RPC_POOL_MAX) {
		unsigned cap = p->cap ? p->cap * 2 : 8;
		struct proto_rpc_slot *n = vdb_realloc(p->slots,
		    cap * sizeof(*n));
		if (n != NULL) {
			p->slots = n;
			p->cap = cap;
		}
	}
	if (p->n < p->cap) {
		p->slots[p->n].ctx = x->ctx;
		p->slots[p->n].aio = x->aio;
		p->n++;
		kept = 1;
	}
	pthread_mutex_unlock(&p->lock);
	return kept;
}

void
proto_rpc_xchg_fini(struct proto_rpc_xchg *x)
{
	if (x->aio == NULL)
		return;
	if (x->cancel != NULL) {
		pthread_mutex_lock(&x->cancel->lock);
		if (x->cancel->aio == x->aio)
			x->cancel->aio = NULL;
		pthread_mutex_unlock(&x->cancel->lock);
	}
	if (!slot_return(x)) {
		nng_aio_free(x->aio);
		nng_ctx_close(x->ctx);
	}
	x->aio = NULL;
	x->answered = 0;
}

int
proto_rpc_wait_sent(struct proto_rpc_xchg *x)
{
	if (x->aio == NULL)
		return VECDB_EUNAVAILABLE;
	if (x->sent)
		return VECDB_OK;
	nng_aio_wait(x->aio);
	if (nng_aio_result(x->aio) != 0) {
		nng_msg_free(nng_aio_get_msg(x->aio));
		nng_aio_set_msg(x->aio, NULL);
		proto_rpc_xchg_fini(x);
		return VECDB_EUNAVAILABLE;
	}
	x->sent = 1;
	return VECDB_OK;
}

enum proto_rpc_outcome
proto_rpc_wait(struct proto_rpc_xchg *x, uint64_t end_ms,
    struct proto_response **res)
{
	enum proto_rpc_outcome o = PROTO_RPC_ANSWERED;
	nng_msg *msg;
	int rv;

	*res = NULL;
	if (proto_rpc_wait_sent(x) != VECDB_OK)
		return PROTO_RPC_UNSENT;
	nng_aio_set_timeout(x->aio, left_ms(end_ms));
	if (start(x, 1) != 0) {
		proto_rpc_xchg_fini(x);
		return PROTO_RPC_LATE;
	}
	nng_aio_wait(x->aio);
	if ((rv = nng_aio_result(x->aio)) != 0) {
		proto_rpc_xchg_fini(x);
		/* req0 sends once (no resend): a request whose connection
		 * drops ends at once with ECONNRESET instead of waiting */
		return rv == NNG_ECONNRESET || rv == NNG_ECLOSED ?
		    PROTO_RPC_LOST : PROTO_RPC_LATE;
	}
	msg = nng_aio_get_msg(x->aio);
	nng_aio_set_msg(x->aio, NULL);
	x->answered = 1;   /* the context's request is done with */
	if (proto_response_decode(nng_msg_body(msg), nng_msg_len(msg), res) !=
	    VECDB_OK)
		o = PROTO_RPC_BAD;
	nng_msg_free(msg);
	proto_rpc_xchg_fini(x);
	return o;
}

int
proto_rpc_call(nng_socket sock, const struct proto_rpc_req *rq,
    uint32_t method, const uint8_t *body, size_t len,
    struct proto_response **res)
{
	uint64_t end = vdb_now_ms() + rq->timeout_ms;
	struct proto_rpc_xchg x = { .aio = NULL, .cancel = rq->cancel };
	uint8_t *req = NULL;
	size_t reqlen = 0;
	int rv;

	*res = NULL;
	rv = proto_request_encode_opts(method, rq->api_key ? rq->api_key : "",
	    rq->id, rq->primary_only, rq->allow_partial, body, len, &req,
	    &reqlen);
	if (rv != VECDB_OK)
		return rv;
	rv = proto_rpc_send(&x, sock, req, reqlen, end);
	vdb_free(req);
	if (rv != VECDB_OK)
		return rv;
	switch (proto_rpc_wait(&x, end, res)) {
	case PROTO_RPC_ANSWERED:
		if ((*res)->code == PROTO_OK)
			return VECDB_OK;
		return vdb_err(proto_err_of((*res)->code), "%s",
		    (*res)->message);
	case PROTO_RPC_UNSENT:
		return vdb_err(VECDB_EUNAVAILABLE, "%s to %s: not sent within "
		    "%u ms (no connection)", proto_method_name(method), rq->url,
		    rq->timeout_ms);
	case PROTO_RPC_LATE:
		return vdb_err(VECDB_EUNAVAILABLE, "%s to %s: no answer within "
		    "%u ms", proto_method_name(method), rq->url,
		    rq->timeout_ms);
	case PROTO_RPC_LOST:
		return vdb_err(VECDB_EUNAVAILABLE, "%s to %s: the connection "
		    "was lost before the answer", proto_method_name(method),
		    rq->url);
	default:
		return vdb_err(VECDB_EINTERNAL, "%s to %s: bad answer: %s",
		    proto_method_name(method), rq->url, vecdb_errmsg());
	}
}

uint32_t
proto_rpc_backoff(uint32_t prev_ms)
{
	if (prev_ms < PROTO_RPC_RETRY_MIN_MS)
		return PROTO_RPC_RETRY_MIN_MS;
	return prev_ms >= PROTO_RPC_RETRY_MAX_MS / 2 ? PROTO_RPC_RETRY_MAX_MS :
	    prev_ms * 2;
}
