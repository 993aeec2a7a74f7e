/*
 * nodes.c: vecdb-node processes for the replication and promotion tests:
 * start (a primary, or a replica of one), stop, kill, RPC over a req0
 * socket, the admin HTTP (/digest, /metrics), and convergence.
 *
 * The processes are tests/proc.h's, with its hygiene: PR_SET_PDEATHSIG,
 * registration under tu_base, and proc_add_fixture's teardown that kills
 * what is left.
 */
#define _GNU_SOURCE
#include <civetweb.h>
#include <dirent.h>
#include <fcntl.h>
#include <nng/nng.h>
#include <nng/protocol/reqrep0/req.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "nodes.h"
#include "vdb.h"

#ifndef VECDB_NODE_BIN
#error "VECDB_NODE_BIN must name the vecdb-node binary"
#endif

struct proto_response *resp;

uint64_t
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t) ts.tv_sec * 1000 + (uint64_t) ts.tv_nsec / 1000000;
}


void
resp_teardown(void)
{
	proto_response_free(resp);
	resp = NULL;
}



/* A req0 socket to a node's RPC port. */
nng_socket
dial(uint16_t port)
{
	nng_socket s;
	char url[64];

	ck_assert_int_eq(nng_req0_open(&s), 0);
	nng_socket_set_ms(s, NNG_OPT_RECVTIMEO, RPC_TIMEOUT_MS);
	nng_socket_set_ms(s, NNG_OPT_SENDTIMEO, RPC_TIMEOUT_MS);
	snprintf(url, sizeof(url), "tcp://127.0.0.1:%u", port);
	ck_assert_int_eq(nng_dial(s, url, NULL, 0), 0);
	return s;
}

/* Start a node on n->dir (kept across restarts) with extra args. */
void
node_run(struct node *n, const char *const *extra)
{
	const char *argv[PROC_ARGS_MAX + 1] = { VECDB_NODE_BIN, "--data",
		n->dir, "--rpc", "tcp://127.0.0.1:0", "--admin-port", "0" };
	char log[600];
	size_t k = 7;

	for (; extra != NULL && *extra != NULL; extra++) {
		ck_assert_uint_lt(k, PROC_ARGS_MAX);
		argv[k++] = *extra;
	}
	snprintf(log, sizeof(log), "%s.log", n->dir);
	proc_free(&n->p);  /* a restart may take other arguments */
	memset(&n->p, 0, sizeof(n->p));
	proc_init(&n->p, argv, log);
	proc_start(&n->p);
	n->pid = n->p.pid;
	ck_assert_int_eq(sscanf(n->p.line, "vecdb-node %*s rpc "
	    "tcp://127.0.0.1:%hu admin http://127.0.0.1:%hu", &n->rpc_port,
	    &n->admin_port), 2);
	snprintf(n->url, sizeof(n->url), "tcp://127.0.0.1:%u", n->rpc_port);
	n->sock = dial(n->rpc_port);
}

/* A new node in a fresh dir. */
void
node_start(struct node *n, const char *const *extra)
{
	char *dir = tu_subdir();

	memset(n, 0, sizeof(*n));
	snprintf(n->dir, sizeof(n->dir), "%s", dir);
	free(dir);
	node_run(n, extra);
}

/* A replica of p, named id, in n's dir (fresh unless restart). */
void
replica_start(struct node *n, const struct node *p, const char *id,
    int restart)
{
	const char *args[] = { "--mode", "replica", "--primary", p->url,
		"--node-id", id, NULL };

	if (restart)
		node_run(n, args);
	else
		node_start(n, args);
}

/* SIGKILL, no questions asked. */
void
node_kill(struct node *n)
{
	nng_close(n->sock);
	proc_kill(&n->p);
	proc_free(&n->p);  /* node_run starts it afresh */
}

/* SIGTERM; the node must exit 0 within ms. */
void
node_stop_in(struct node *n, int ms)
{
	static char tail[2048];
	char st[64];
	int status;

	nng_close(n->sock);
	status = proc_stop_in(&n->p, ms);
	proc_status_str(status, st, sizeof(st));
	if (status == -1 || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
		snprintf(tail, sizeof(tail), "%s", proc_log_tail(&n->p));
	proc_free(&n->p);  /* node_run starts it afresh */
	ck_assert_msg(status != -1, "node %s did not stop within %d ms (its "
	    "threads are above); its log ends:\n%s", n->dir, ms, tail);
	ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0,
	    "node %s; its log ends:\n%s", st, tail);
}

void
node_stop(struct node *n)
{
	node_stop_in(n, STOP_TIMEOUT_MS);
}

/* One request on socket s (body freed here); the response code. */
int
call_on(nng_socket s, uint32_t method, uint8_t *body, size_t len)
{
	uint8_t *req;
	size_t reqlen, inlen = 0;
	void *in = NULL;

	ck_assert_int_eq(proto_request_encode(method, "", 1, body, len, &req,
	    &reqlen), VECDB_OK);
	vdb_free(body);
	proto_response_free(resp);
	resp = NULL;
	ck_assert_int_eq(nng_send(s, req, reqlen, 0), 0);
	vdb_free(req);
	ck_assert_int_eq(nng_recv(s, &in, &inlen, NNG_FLAG_ALLOC), 0);
	ck_assert_int_eq(proto_response_decode(in, inlen, &resp), VECDB_OK);
	nng_free(in, inlen);
	return resp->code;
}

int
call(struct node *n, uint32_t method, uint8_t *body, size_t len)
{
	return call_on(n->sock, method, body, len);
}

/* Create collection "c" (16-d euclidean) with a payload index on "g". */
void
create(struct node *n)
{
	vecdb_collection_config c;
	uint8_t *b;
	size_t l;

	/* A light graph: every node indexes 50k points on two shared
	 * cores, and a node's stop waits for its indexer to catch up. */
	vecdb_collection_config_init(&c, "c", DIM, VECDB_EUCLIDEAN);
	c.index.max_connections = 8;
	c.index.ef_construction = 32;
	ck_assert_int_eq(proto_collection_create_encode(&c, &b, &l), VECDB_OK);
	ck_assert_int_eq(call(n, PROTO_CREATE_COLLECTION, b, l), PROTO_OK);
	ck_assert_int_eq(proto_target_encode(PROTO_PAYLOAD_INDEX_CREATE, "c",
	    "g", VECDB_FIELD_INTEGER, &b, &l), VECDB_OK);
	ck_assert_int_eq(call(n, PROTO_PAYLOAD_INDEX_CREATE, b, l), PROTO_OK);
}

int
admin_get(const struct node *n, const char *path, char *buf, size_t cap)
{
	char ebuf[256];
	struct mg_connection *c;
	int status, k, len = 0;

	c = mg_connect_client("127.0.0.1", n->admin_port, 0, ebuf,
	    sizeof(ebuf));
	ck_assert_msg(c != NULL, "admin connect: %s", ebuf);
	mg_printf(c, "GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\n"
		     "Connection: close\r\n\r\n", path);
	ck_assert_int_ge(mg_get_response(c, ebuf, sizeof(ebuf), 30000), 0);
	status = mg_get_response_info(c)->status_code;
	while ((size_t) len + 1 < cap &&
	    (k = mg_read(c, buf + len, cap - (size_t) len - 1)) > 0)
		len += k;
	buf[len] = '\0';
	mg_close_connection(c);
	return status;
}

/*
 * Wait until the replica's /digest (last seq, and each collection's count
 * and SHA-256) equals the primary's; the primary is idle meanwhile.
 */
void
converge(const struct node *p, const struct node *r)
{
	static char dp[8192], dr[8192];
	uint64_t end = now_ms() + CONVERGE_MS;

	ck_assert_int_eq(admin_get(p, "/digest", dp, sizeof(dp)), 200);
	ck_assert_ptr_nonnull(strstr(dp, "\"name\":\"c\""));
	do {
		ck_assert_int_eq(admin_get(r, "/digest", dr, sizeof(dr)), 200);
		if (strcmp(dp, dr) == 0)
			return;
		usleep(100000);
	} while (now_ms() < end);
	ck_abort_msg("replica did not converge in %d ms:\nprimary %s\n"
	    "replica %s", CONVERGE_MS, dp, dr);
}

/* The value of the metric line that starts with @p prefix, or -1. */
double
metric(const struct node *n, const char *prefix)
{
	static char body[1 << 16];
	char line[256];
	char *at;

	ck_assert_int_eq(admin_get(n, "/metrics", body, sizeof(body)), 200);
	snprintf(line, sizeof(line), "\n%s", prefix);
	if ((at = strstr(body, line)) == NULL)
		return -1;
	return atof(at + strlen(line));
}
