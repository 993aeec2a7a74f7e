/*
 * proto_rpc.c: the RPC client (proto_rpc.h): dial, one exchange on a
 * context of its own with a monotonic deadline, and a whole call.
 */
#include <nng/nng.h>
#include <nng/protocol/reqrep0/req.h>
#include <string.h>

#include "proto_rpc.h"
#include "vdb.h"

int
proto_rpc_dial(const char *url, int flags, nng_pipe_cb notify, void *arg,
    nng_socket *out)
{
	int rv;

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
	rv = nng_dial(*out, url, NULL, flags & PROTO_RPC_DIAL_NOW ? 0 :
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

int
proto_rpc_send(struct proto_rpc_xchg *x, nng_socket sock, const uint8_t *req,
    size_t len, uint64_t end_ms)
{
	nng_msg *msg = NULL;

	x->aio = NULL;
	x->sent = 0;
	if (nng_msg_alloc(&msg, 0) != 0 || nng_msg_append(msg, req, len) != 0)
		goto nomem;
	if (nng_ctx_open(&x->ctx, sock) != 0)
		goto nomem;
	if (nng_aio_alloc(&x->aio, NULL, NULL) != 0) {
		nng_ctx_close(x->ctx);
		x->aio = NULL;
		goto nomem;
	}
	nng_aio_set_timeout(x->aio, left_ms(end_ms));
	nng_aio_set_msg(x->aio, msg);
	nng_ctx_send(x->ctx, x->aio);
	return VECDB_OK;
nomem:
	nng_msg_free(msg);
	return vdb_err(VECDB_ENOMEM, "out of memory");
}

void
proto_rpc_xchg_fini(struct proto_rpc_xchg *x)
{
	if (x->aio == NULL)
		return;
	nng_aio_free(x->aio);
	nng_ctx_close(x->ctx);
	x->aio = NULL;
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

	*res = NULL;
	if (proto_rpc_wait_sent(x) != VECDB_OK)
		return PROTO_RPC_UNSENT;
	nng_aio_set_timeout(x->aio, left_ms(end_ms));
	nng_ctx_recv(x->ctx, x->aio);
	nng_aio_wait(x->aio);
	if (nng_aio_result(x->aio) != 0) {
		proto_rpc_xchg_fini(x);
		return PROTO_RPC_LATE;
	}
	msg = nng_aio_get_msg(x->aio);
	nng_aio_set_msg(x->aio, NULL);
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
	struct proto_rpc_xchg x = { .aio = NULL };
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
