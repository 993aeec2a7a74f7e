/*
 * proto_rpc_test.c: the RPC client (proto/proto_rpc.h) against real nng
 * rep0 sockets on loopback, served by a thread of this test that answers
 * as it is told: properly, never, or with bytes that are no Response.
 * Every outcome is told apart (answered, never sent, sent but late, sent
 * and then the connection lost, undecodable), a whole call maps them to
 * vecdb errors, a pool hands back the contexts of answered exchanges
 * only, and the retry back-off doubles up to its cap.
 */
#include <check.h>
#include <nng/nng.h>
#include <nng/protocol/reqrep0/rep.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "proto_rpc.h"
#include "testutil.h"
#include "vdb.h"

enum serve_how { ANSWER, SILENT, GARBAGE };

/* A rep0 server on a free loopback port, on a thread of its own. */
struct server {
	nng_socket sock;
	pthread_t th;
	enum serve_how how;
	char url[64];
	int got;                 /* requests received */
	char key[64];            /* the api key of the last one */
};

/* Answer every request as s->how says, until the socket closes. */
static void *
server_main(void *arg)
{
	struct server *s = arg;
	nng_msg *m;

	while (nng_recvmsg(s->sock, &m, 0) == 0) {
		struct proto_request *q = NULL;
		uint8_t *out = NULL;
		size_t len = 0;

		__atomic_add_fetch(&s->got, 1, __ATOMIC_SEQ_CST);
		if (proto_request_decode(nng_msg_body(m), nng_msg_len(m),
		    &q) == VECDB_OK) {
			snprintf(s->key, sizeof(s->key), "%s", q->api_key);
			proto_request_free(q);
		}
		if (s->how == SILENT) {
			nng_msg_free(m);
			continue;
		}
		nng_msg_clear(m);
		if (s->how == GARBAGE)
			nng_msg_append(m, "\xff\xff\xff", 3);
		else {
			ck_assert_int_eq(proto_response_encode(PROTO_NOT_FOUND,
			    "collection nope not found", NULL, 0, &out, &len),
			    VECDB_OK);
			nng_msg_append(m, out, len);
			vdb_free(out);
		}
		if (nng_sendmsg(s->sock, m, 0) != 0)
			nng_msg_free(m);
	}
	return NULL;
}

static void
server_start(struct server *s, enum serve_how how)
{
	nng_listener l;
	int port = 0;

	memset(s, 0, sizeof(*s));
	s->how = how;
	ck_assert_int_eq(nng_rep0_open(&s->sock), 0);
	ck_assert_int_eq(nng_listener_create(&l, s->sock,
	    "tcp://127.0.0.1:0"), 0);
	ck_assert_int_eq(nng_listener_start(l, 0), 0);
	ck_assert_int_eq(nng_listener_get_int(l, NNG_OPT_TCP_BOUND_PORT,
	    &port), 0);
	snprintf(s->url, sizeof(s->url), "tcp://127.0.0.1:%d", port);
	ck_assert_int_eq(pthread_create(&s->th, NULL, server_main, s), 0);
}

static void
server_stop(struct server *s)
{
	nng_close(s->sock);
	pthread_join(s->th, NULL);
}

/* A port nothing listens on: bound, then closed. */
static void
dead_url(char *buf, size_t len)
{
	struct server s;

	server_start(&s, ANSWER);
	snprintf(buf, len, "%s", s.url);
	server_stop(&s);
}

START_TEST(an_error_answer_comes_back_with_its_code_and_message)
{
	struct proto_rpc_req rq = { .url = NULL, .api_key = "k1", .id = 7,
		.timeout_ms = 5000 };
	struct proto_response *res = NULL;
	struct server s;
	nng_socket c;

	server_start(&s, ANSWER);
	rq.url = s.url;
	ck_assert_int_eq(proto_rpc_dial(s.url, 0, NULL, NULL, NULL, &c),
	    VECDB_OK);
	ck_assert_int_eq(proto_rpc_call(c, &rq, PROTO_GET, NULL, 0, &res),
	    VECDB_ENOTFOUND);
	ck_assert_ptr_nonnull(res);
	ck_assert_int_eq(res->code, PROTO_NOT_FOUND);
	ck_assert_str_eq(vecdb_errmsg(), "collection nope not found");
	ck_assert_str_eq(s.key, "k1");
	proto_response_free(res);
	nng_close(c);
	server_stop(&s);
}
END_TEST

/*
 * Dial a SILENT server s (started here) into *c and send it a Health
 * request on x, to be answered by end_ms; returns once it has left.
 */
static void
send_to_silent(struct server *s, nng_socket *c, struct proto_rpc_xchg *x,
    uint64_t end_ms)
{
	uint8_t *req;
	size_t len;

	server_start(s, SILENT);
	ck_assert_int_eq(proto_rpc_dial(s->url, PROTO_RPC_DIAL_NOW, NULL, NULL,
	    NULL, c), VECDB_OK);
	ck_assert_int_eq(proto_request_encode(PROTO_HEALTH, "", 1, NULL, 0,
	    &req, &len), VECDB_OK);
	ck_assert_int_eq(proto_rpc_send(x, *c, req, len, end_ms), VECDB_OK);
	vdb_free(req);
	ck_assert_int_eq(proto_rpc_wait_sent(x), VECDB_OK);
}

START_TEST(a_server_that_never_answers_is_late_and_unavailable)
{
	struct proto_rpc_req rq = { .url = NULL, .api_key = NULL, .id = 1,
		.timeout_ms = 300 };
	struct proto_rpc_xchg x = { .aio = NULL };
	struct proto_response *res = NULL;
	struct server s;
	nng_socket c;
	uint64_t t0 = vdb_now_ms();

	/* the exchange: sent, then no answer by the deadline */
	send_to_silent(&s, &c, &x, t0 + 300);
	rq.url = s.url;
	ck_assert_int_eq(proto_rpc_wait(&x, t0 + 300, &res), PROTO_RPC_LATE);
	ck_assert_ptr_null(res);
	ck_assert_ptr_null(x.aio);
	ck_assert_uint_ge(vdb_now_ms() - t0, 250);
	/* the whole call: VECDB_EUNAVAILABLE naming the method and url */
	t0 = vdb_now_ms();
	ck_assert_int_eq(proto_rpc_call(c, &rq, PROTO_HEALTH, NULL, 0, &res),
	    VECDB_EUNAVAILABLE);
	ck_assert_uint_lt(vdb_now_ms() - t0, 2000);
	ck_assert_ptr_nonnull(strstr(vecdb_errmsg(), "no answer within 300 ms"));
	ck_assert_ptr_nonnull(strstr(vecdb_errmsg(), s.url));
	ck_assert_int_eq(__atomic_load_n(&s.got, __ATOMIC_SEQ_CST), 2);
	nng_close(c);
	server_stop(&s);
}
END_TEST

/* A call on its own thread, for cancel_ends_a_call_in_flight. */
struct bg_call {
	nng_socket sock;
	struct proto_rpc_req rq;
	int rv;
	int done;
};

static void *
bg_call_main(void *arg)
{
	struct bg_call *b = arg;
	struct proto_response *res = NULL;

	b->rv = proto_rpc_call(b->sock, &b->rq, PROTO_HEALTH, NULL, 0, &res);
	proto_response_free(res);
	__atomic_store_n(&b->done, 1, __ATOMIC_SEQ_CST);
	return NULL;
}

START_TEST(cancel_ends_a_call_in_flight_and_refuses_the_next)
{
	struct proto_rpc_cancel cancel;
	struct proto_response *res = NULL;
	struct bg_call b = { .rq = { .id = 1, .timeout_ms = 60000 } };
	struct server s;
	pthread_t th;
	uint64_t t0;

	server_start(&s, SILENT);
	proto_rpc_cancel_init(&cancel);
	b.rq.url = s.url;
	b.rq.cancel = &cancel;
	ck_assert_int_eq(proto_rpc_dial(s.url, PROTO_RPC_DIAL_NOW, NULL, NULL,
	    NULL, &b.sock), VECDB_OK);
	ck_assert_int_eq(pthread_create(&th, NULL, bg_call_main, &b), 0);
	/* the request reached the server, which keeps it unanswered */
	t0 = vdb_now_ms();
	while (__atomic_load_n(&s.got, __ATOMIC_SEQ_CST) < 1 &&
	    vdb_now_ms() - t0 < 10000)
		usleep(5000);
	ck_assert_int_eq(__atomic_load_n(&s.got, __ATOMIC_SEQ_CST), 1);
	ck_assert_int_eq(__atomic_load_n(&b.done, __ATOMIC_SEQ_CST), 0);
	/* cancelled: the call ends long before its 60 s deadline */
	proto_rpc_cancel(&cancel);
	ck_assert_int_eq(pthread_join(th, NULL), 0);
	ck_assert_int_eq(b.rv, VECDB_EUNAVAILABLE);
	ck_assert_uint_lt(vdb_now_ms() - t0, 30000);
	/* the next call with it fails at once and sends nothing */
	ck_assert_int_eq(proto_rpc_call(b.sock, &b.rq, PROTO_HEALTH, NULL, 0,
	    &res), VECDB_EUNAVAILABLE);
	ck_assert_ptr_null(res);
	ck_assert_int_eq(__atomic_load_n(&s.got, __ATOMIC_SEQ_CST), 1);
	/* a call without it still goes out */
	b.rq.cancel = NULL;
	b.rq.timeout_ms = 100;
	ck_assert_int_eq(proto_rpc_call(b.sock, &b.rq, PROTO_HEALTH, NULL, 0,
	    &res), VECDB_EUNAVAILABLE);
	ck_assert_ptr_nonnull(strstr(vecdb_errmsg(), "no answer within"));
	ck_assert_int_eq(__atomic_load_n(&s.got, __ATOMIC_SEQ_CST), 2);
	nng_close(b.sock);
	proto_rpc_cancel_fini(&cancel);
	server_stop(&s);
}
END_TEST

START_TEST(a_connection_lost_after_the_send_ends_the_wait_at_once)
{
	struct proto_rpc_xchg x = { .aio = NULL };
	struct proto_response *res = NULL;
	struct server s;
	nng_socket c;
	uint64_t t0 = vdb_now_ms();

	send_to_silent(&s, &c, &x, t0 + 10000);
	/* the server has the request, then goes away (a node killed) */
	while (__atomic_load_n(&s.got, __ATOMIC_SEQ_CST) == 0 &&
	    vdb_now_ms() - t0 < 5000)
		usleep(1000);
	ck_assert_int_eq(__atomic_load_n(&s.got, __ATOMIC_SEQ_CST), 1);
	server_stop(&s);
	ck_assert_int_eq(proto_rpc_wait(&x, t0 + 10000, &res),
	    PROTO_RPC_LOST);
	ck_assert_ptr_null(res);
	ck_assert_ptr_null(x.aio);
	/* not the 10 s deadline */
	ck_assert_uint_lt(vdb_now_ms() - t0, 5000);
	nng_close(c);
}
END_TEST

/* Send a Get on pool p's socket (x zeroed here); it leaves at once. */
static void
pool_send(struct proto_rpc_pool *p, struct proto_rpc_xchg *x, uint64_t end)
{
	uint8_t *req;
	size_t len;

	memset(x, 0, sizeof(*x));
	ck_assert_int_eq(proto_request_encode(PROTO_GET, "", 1, NULL, 0, &req,
	    &len), VECDB_OK);
	ck_assert_int_eq(proto_rpc_send_on(x, p, req, len, end), VECDB_OK);
	vdb_free(req);
}

START_TEST(a_pool_reuses_the_contexts_of_answered_exchanges_only)
{
	struct proto_rpc_xchg x, y;
	struct proto_response *res = NULL;
	struct proto_rpc_pool p, q;
	struct server s, t;
	nng_socket c, d;
	int first;

	server_start(&s, ANSWER);
	ck_assert_int_eq(proto_rpc_dial(s.url, PROTO_RPC_DIAL_NOW, NULL, NULL,
	    NULL, &c), VECDB_OK);
	proto_rpc_pool_init(&p, c);
	/* answered: its context goes back, and the next exchange takes it */
	pool_send(&p, &x, vdb_now_ms() + 5000);
	first = nng_ctx_id(x.ctx);
	ck_assert_int_eq(proto_rpc_wait(&x, vdb_now_ms() + 5000, &res),
	    PROTO_RPC_ANSWERED);
	ck_assert_int_eq(res->code, PROTO_NOT_FOUND);
	proto_response_free(res);
	ck_assert_uint_eq(p.n, 1);
	pool_send(&p, &x, vdb_now_ms() + 5000);
	ck_assert_int_eq(nng_ctx_id(x.ctx), first);
	ck_assert_uint_eq(p.n, 0);
	/* two in flight at once: the second opens a context of its own,
	 * and each answer comes back on its own exchange */
	pool_send(&p, &y, vdb_now_ms() + 5000);
	ck_assert_int_ne(nng_ctx_id(y.ctx), first);
	ck_assert_int_eq(proto_rpc_wait(&y, vdb_now_ms() + 5000, &res),
	    PROTO_RPC_ANSWERED);
	proto_response_free(res);
	ck_assert_int_eq(proto_rpc_wait(&x, vdb_now_ms() + 5000, &res),
	    PROTO_RPC_ANSWERED);
	proto_response_free(res);
	ck_assert_uint_eq(p.n, 2);
	ck_assert_int_eq(__atomic_load_n(&s.got, __ATOMIC_SEQ_CST), 3);

	/* no answer by the deadline: that context is closed, not kept */
	server_start(&t, SILENT);
	ck_assert_int_eq(proto_rpc_dial(t.url, PROTO_RPC_DIAL_NOW, NULL, NULL,
	    NULL, &d), VECDB_OK);
	proto_rpc_pool_init(&q, d);
	pool_send(&q, &x, vdb_now_ms() + 200);
	ck_assert_int_eq(proto_rpc_wait(&x, vdb_now_ms() + 200, &res),
	    PROTO_RPC_LATE);
	ck_assert_ptr_null(res);
	ck_assert_uint_eq(q.n, 0);

	proto_rpc_pool_fini(&q);
	nng_close(d);
	server_stop(&t);
	proto_rpc_pool_fini(&p);
	nng_close(c);
	server_stop(&s);
}
END_TEST

START_TEST(bytes_that_are_no_response_are_bad)
{
	struct proto_rpc_req rq = { .url = NULL, .api_key = NULL, .id = 1,
		.timeout_ms = 5000 };
	struct proto_response *res = NULL;
	struct server s;
	nng_socket c;

	server_start(&s, GARBAGE);
	rq.url = s.url;
	ck_assert_int_eq(proto_rpc_dial(s.url, 0, NULL, NULL, NULL, &c),
	    VECDB_OK);
	ck_assert_int_eq(proto_rpc_call(c, &rq, PROTO_STATS, NULL, 0, &res),
	    VECDB_EINTERNAL);
	ck_assert_ptr_null(res);
	ck_assert_ptr_nonnull(strstr(vecdb_errmsg(), "bad answer"));
	nng_close(c);
	server_stop(&s);
}
END_TEST

START_TEST(nothing_listening_is_never_sent)
{
	struct proto_rpc_req rq = { .url = NULL, .api_key = NULL, .id = 1,
		.timeout_ms = 200 };
	struct proto_response *res = NULL;
	char url[64];
	nng_socket c;

	dead_url(url, sizeof(url));
	rq.url = url;
	/* dialed now: refused at once */
	ck_assert_int_eq(proto_rpc_dial(url, PROTO_RPC_DIAL_NOW, NULL, NULL, NULL,
	    &c), VECDB_EUNAVAILABLE);
	ck_assert_ptr_nonnull(strstr(vecdb_errmsg(), "cannot connect to"));
	/* dialed in the background: the call is never sent */
	ck_assert_int_eq(proto_rpc_dial(url, 0, NULL, NULL, NULL, &c), VECDB_OK);
	ck_assert_int_eq(proto_rpc_call(c, &rq, PROTO_HEALTH, NULL, 0, &res),
	    VECDB_EUNAVAILABLE);
	ck_assert_ptr_null(res);
	ck_assert_ptr_nonnull(strstr(vecdb_errmsg(), "not sent"));
	nng_close(c);
}
END_TEST

START_TEST(a_url_nng_cannot_dial_is_invalid)
{
	nng_socket c;

	ck_assert_int_eq(proto_rpc_dial("nope://x", 0, NULL, NULL, NULL, &c),
	    VECDB_EINVAL);
	ck_assert_int_eq(proto_rpc_dial("tcp://", PROTO_RPC_DIAL_NOW, NULL,
	    NULL, NULL, &c), VECDB_EINVAL);
}
END_TEST

START_TEST(retries_back_off_doubling_to_the_cap)
{
	uint32_t ms = proto_rpc_backoff(0);

	ck_assert_uint_eq(ms, PROTO_RPC_RETRY_MIN_MS);
	ck_assert_uint_eq(proto_rpc_backoff(ms), 2 * PROTO_RPC_RETRY_MIN_MS);
	for (int i = 0; i < 20; i++) {
		uint32_t next = proto_rpc_backoff(ms);
		ck_assert_uint_ge(next, ms);
		ck_assert_uint_le(next, PROTO_RPC_RETRY_MAX_MS);
		ms = next;
	}
	ck_assert_uint_eq(ms, PROTO_RPC_RETRY_MAX_MS);
}
END_TEST

static Suite *
rpc_suite(void)
{
	Suite *s = suite_create("proto_rpc");
	TCase *tc = tcase_create("exchanges");

	tcase_add_test(tc, an_error_answer_comes_back_with_its_code_and_message);
	tcase_add_test(tc, a_server_that_never_answers_is_late_and_unavailable);
	tcase_add_test(tc, cancel_ends_a_call_in_flight_and_refuses_the_next);
	tcase_add_test(tc, a_connection_lost_after_the_send_ends_the_wait_at_once);
	tcase_add_test(tc, a_pool_reuses_the_contexts_of_answered_exchanges_only);
	tcase_add_test(tc, bytes_that_are_no_response_are_bad);
	tcase_add_test(tc, nothing_listening_is_never_sent);
	tcase_add_test(tc, a_url_nng_cannot_dial_is_invalid);
	tcase_add_test(tc, retries_back_off_doubling_to_the_cap);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	return tu_run(rpc_suite());
}
