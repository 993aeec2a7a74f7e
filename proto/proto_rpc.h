/*
 * proto_rpc.h: the one RPC client of the binary API: a req0 socket dialed
 * with one reconnect policy, requests sent on a context of their own with
 * a deadline on the monotonic clock (vdb_now_ms), answers decoded, and
 * transport failures mapped to vecdb errors. The router (fan-out, health
 * and status rounds), the replication follower and the C client all call
 * through it.
 *
 * Two levels: proto_rpc_send / proto_rpc_wait run one exchange in steps,
 * so that a caller can have many in flight (the router's fan-out) and
 * decide what a failure means (was the request sent?); proto_rpc_call
 * does one whole request and answer.
 *
 * Retries are the caller's: a call is sent once (no blind resend by req0,
 * which could apply a write twice or start a second bootstrap copy). A
 * caller that retries waits proto_rpc_backoff() between tries.
 */
#ifndef PROTO_RPC_H
#define PROTO_RPC_H

#include <nng/nng.h>
#include <nng/supplemental/tls/tls.h>
#include <pthread.h>
#include <stdint.h>

#include "proto.h"

#define PROTO_RPC_RECONNECT_MIN_MS 50    /* redial back-off, doubling... */
#define PROTO_RPC_RECONNECT_MAX_MS 1000  /* ... up to this */

#define PROTO_RPC_RETRY_MIN_MS 50        /* a caller's retries: doubling... */
#define PROTO_RPC_RETRY_MAX_MS 2000      /* ... up to this */

#define PROTO_RPC_DIAL_NOW 1  /* dial before returning: a refused
				 connection fails the dial */

/*
 * Mutual TLS between our processes (tls+tcp:// urls): PEM files of the
 * cluster's CA, and of this process's certificate (signed by that CA)
 * and private key. Both ends present their certificate and verify the
 * other's against the CA; a peer with none, or one another CA signed, is
 * refused during the handshake. Peers are known by the CA alone, not by
 * host name: every certificate the CA signs is a member of the cluster.
 */
struct proto_tls_files {
	const char *ca;
	const char *cert;
	const char *key;
};

/* The settings and environment variables of proto_tls_files. */
#define PROTO_TLS_USAGE \
	"--tls-ca PEM --tls-cert PEM --tls-key PEM (VECDB_TLS_CA, " \
	"VECDB_TLS_CERT, VECDB_TLS_KEY)"

/*
 * Whether @p f names its three files: 1 all, 0 none, or -1 some but not
 * all (VECDB_EINVAL's message says which are missing).
 */
int proto_tls_files_given(const struct proto_tls_files *f);

/*
 * Load @p f into a TLS configuration for the dialing (server 0) or the
 * listening side (server 1), requiring and verifying the peer's
 * certificate. Free it with nng_tls_config_free.
 * @return VECDB_OK; VECDB_EINVAL naming the file that is missing,
 *	unreadable or not the PEM it should be; VECDB_ENOMEM.
 */
int proto_tls_config(const struct proto_tls_files *f, int server,
    nng_tls_config **out);

/*
 * Whether @p url fits: a tls+tcp:// url needs a TLS configuration, and
 * with one every url must be tls+tcp:// (never clear text by mistake).
 * @p what names the url in the message ("--rpc", "member 2").
 * @return VECDB_OK or VECDB_EINVAL saying what to change.
 */
int proto_tls_url_check(const char *url, int have_tls, const char *what);

/*
 * Open a req0 socket and dial @p url: in the background unless @p flags
 * has PROTO_RPC_DIAL_NOW (a server that is not up yet is redialed with
 * back-off from PROTO_RPC_RECONNECT_MIN_MS to PROTO_RPC_RECONNECT_MAX_MS).
 * @p notify (may be NULL) is told of every connection made and lost,
 * from the first. Messages up to PROTO_MSG_MAX; no resend. A tls+tcp://
 * url is dialed with @p tls (a client configuration of proto_tls_config,
 * held by the dialer), which it needs; NULL otherwise.
 * @return VECDB_OK, VECDB_EINVAL (a url nng cannot dial), VECDB_ENOMEM,
 *	VECDB_EUNAVAILABLE (PROTO_RPC_DIAL_NOW: "cannot connect to URL: why").
 */
int proto_rpc_dial(const char *url, int flags, nng_tls_config *tls,
    nng_pipe_cb notify, void *arg, nng_socket *out);

/*
 * A way for another thread to end a caller's exchanges at once (a
 * follower being stopped). Closing the socket under a thread that is in
 * an exchange races with that thread's own nng_ctx_close; cancelling does
 * not. Once cancelled, every exchange started with it ends at once, and
 * those to come never start.
 */
struct proto_rpc_cancel {
	pthread_mutex_t lock;
	nng_aio *aio;            /* the exchange in flight, or NULL */
	int cancelled;
};

void proto_rpc_cancel_init(struct proto_rpc_cancel *c);
void proto_rpc_cancel_fini(struct proto_rpc_cancel *c);

/* End the exchange in flight, if any, and refuse those to come. */
void proto_rpc_cancel(struct proto_rpc_cancel *c);

/*
 * Contexts kept for reuse on one socket, so that an exchange does not
 * open a context and allocate an aio each time: proto_rpc_send_on takes
 * one (or opens one), and the exchange gives it back once answered. One
 * that ended otherwise (no answer in time, a lost connection) is closed.
 * Thread-safe. At most PROTO_RPC_POOL_MAX are kept.
 */
#define PROTO_RPC_POOL_MAX 256

struct proto_rpc_slot {
	nng_ctx ctx;
	nng_aio *aio;
};

struct proto_rpc_pool {
	pthread_mutex_t lock;
	nng_socket sock;
	struct proto_rpc_slot *slots;  /* free ones */
	unsigned n, cap;
};

/* A pool on @p sock (open for the pool's life). */
void proto_rpc_pool_init(struct proto_rpc_pool *p, nng_socket sock);

/* Close what it keeps; before the socket is closed, once no exchange
 * started with it is in flight. */
void proto_rpc_pool_fini(struct proto_rpc_pool *p);

/* One exchange in flight: zero it (setting cancel, if any) before
 * proto_rpc_send. */
struct proto_rpc_xchg {
	nng_ctx ctx;
	nng_aio *aio;            /* NULL: nothing in flight */
	int sent;                /* proto_rpc_wait_sent said it left */
	struct proto_rpc_cancel *cancel; /* NULL: none */
	struct proto_rpc_pool *pool; /* where ctx and aio go back, or NULL */
	int answered;            /* ctx is clean: it may go back */
};

/* What became of an exchange. */
enum proto_rpc_outcome {
	PROTO_RPC_ANSWERED,      /* *res holds the decoded answer */
	PROTO_RPC_UNSENT,        /* it never left: safe to send elsewhere */
	PROTO_RPC_LATE,          /* sent, no answer by the deadline: a write
				    may have been applied */
	PROTO_RPC_LOST,          /* sent, then the connection was lost before
				    the answer: a write may have been applied */
	PROTO_RPC_BAD            /* an answer that does not decode */
};

/*
 * Start sending @p req (len bytes, copied) on a fresh context of @p sock,
 * to be sent by @p end_ms (vdb_now_ms() time).
 * @return VECDB_OK, VECDB_ENOMEM or VECDB_EUNAVAILABLE (x->cancel was
 *	cancelled), with nothing in flight then.
 */
int proto_rpc_send(struct proto_rpc_xchg *x, nng_socket sock,
    const uint8_t *req, size_t len, uint64_t end_ms);

/* As proto_rpc_send, on a context of @p pool's socket taken from it. */
int proto_rpc_send_on(struct proto_rpc_xchg *x, struct proto_rpc_pool *pool,
    const uint8_t *req, size_t len, uint64_t end_ms);

/*
 * Wait for the send alone: VECDB_OK once the request has left; otherwise
 * the exchange is finished and the request was never sent.
 */
int proto_rpc_wait_sent(struct proto_rpc_xchg *x);

/*
 * Wait for the send (unless proto_rpc_wait_sent did), then for the
 * answer until @p end_ms, and decode it
 * into *res (free with proto_response_free). The exchange is finished
 * (proto_rpc_xchg_fini) whatever happens; on PROTO_RPC_BAD the message
 * says why.
 */
enum proto_rpc_outcome proto_rpc_wait(struct proto_rpc_xchg *x,
    uint64_t end_ms, struct proto_response **res);

/* Free what an exchange holds (nothing if it is finished). */
void proto_rpc_xchg_fini(struct proto_rpc_xchg *x);

/* One whole request. */
struct proto_rpc_req {
	const char *url;         /* for messages */
	const char *api_key;     /* NULL: none */
	uint64_t id;             /* request id */
	int primary_only;        /* read options of the envelope */
	int allow_partial;
	uint32_t timeout_ms;     /* from now until the answer */
	struct proto_rpc_cancel *cancel; /* NULL: none */
};

/*
 * Send @p method with @p body (len bytes; borrowed) and wait for the
 * answer, which *res then holds, whatever its code (free it with
 * proto_response_free; NULL when there is none). A server's error answer
 * is returned as its vecdb_err with the server's message; a transport
 * failure as VECDB_EUNAVAILABLE, the message naming the method and url
 * and saying whether the request was sent.
 */
int proto_rpc_call(nng_socket sock, const struct proto_rpc_req *rq,
    uint32_t method, const uint8_t *body, size_t len,
    struct proto_response **res);

/*
 * The wait before the next retry after one that waited @p prev_ms (0: the
 * first): PROTO_RPC_RETRY_MIN_MS, doubling up to PROTO_RPC_RETRY_MAX_MS.
 */
uint32_t proto_rpc_backoff(uint32_t prev_ms);

#endif /* PROTO_RPC_H */
