/*
 * nodes.h: vecdb-node processes for the replication and promotion tests
 * (nodes.c). Every call fails the test on error.
 */
#ifndef TESTS_NODES_H
#define TESTS_NODES_H

#include <nng/nng.h>
#include <stdint.h>
#include <sys/types.h>

#include "api.h"
#include "proc.h"
#include "proto.h"
#include "testutil.h"

#define START_TIMEOUT_MS 20000
#define STOP_TIMEOUT_MS 20000
#define RPC_TIMEOUT_MS 30000
#define CONVERGE_MS 120000
#define DIM 16                  /* collection "c" of create() */

/* A running node, its data dir and a req0 socket to it. */
struct node {
	struct proc p;          /* the process (tests/proc.h) */
	pid_t pid;              /* p.pid at the last start */
	uint16_t rpc_port;
	uint16_t admin_port;
	nng_socket sock;
	char dir[512];
	char url[64];
};

/* The last response (call, call_on); freed by the next call. */
extern struct proto_response *resp;

uint64_t now_ms(void);

/* Checked teardown: free the last response. */
void resp_teardown(void);

/* A req0 socket to a node's RPC port. */
nng_socket dial(uint16_t port);
/* Start a node on n->dir (kept across restarts) with extra args. */
void node_run(struct node *n, const char *const *extra);
/* A new node in a fresh dir. */
void node_start(struct node *n, const char *const *extra);
/* A replica of p, named id, in n's dir (fresh unless restart). */
void replica_start(struct node *n, const struct node *p, const char *id,
    int restart);
/* SIGKILL. */
void node_kill(struct node *n);
/* SIGTERM; the node must exit 0 within ms (node_stop: STOP_TIMEOUT_MS). */
void node_stop_in(struct node *n, int ms);
void node_stop(struct node *n);

/* One request (body freed here); the response code, resp the answer. */
int call_on(nng_socket s, uint32_t method, uint8_t *body, size_t len);
int call(struct node *n, uint32_t method, uint8_t *body, size_t len);
/* Create collection "c" (DIM-d euclidean, payload index on "g"). */
void create(struct node *n);

/* GET path on the admin HTTP into buf: the status. */
int admin_get(const struct node *n, const char *path, char *buf, size_t cap);
/* Wait until r's /digest equals p's (p idle meanwhile). */
void converge(const struct node *p, const struct node *r);
/* The value of the metric line that starts with prefix, or -1. */
double metric(const struct node *n, const char *prefix);

#endif
