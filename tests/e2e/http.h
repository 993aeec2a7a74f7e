/*
 * http.h: the end-to-end harness: run `vecdb serve`, or a cluster of
 * vecdb-node shards behind vecdb-router, as child processes (tests/proc.h)
 * and talk to it over real HTTP (or HTTPS) with civetweb's client API.
 *
 * Process hygiene is proc.h's: PR_SET_PDEATHSIG, registration in tu_base
 * and srv_add_fixture()'s unchecked teardown, data dirs under tu_base.
 * Servers always bind 127.0.0.1.
 *
 * The target. srv_start() starts what VECDB_TEST_TARGET names: unset or
 * "serve" one `vecdb serve`; "cluster" SRV_SHARDS vecdb-node shards on
 * free ports, a topology file over them and one vecdb-router, which is
 * what the test talks to. The same REST suite then runs against both.
 */
#ifndef E2E_HTTP_H
#define E2E_HTTP_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <check.h>

#include "proc.h"

#define SRV_SHARDS 3        /* shards of a cluster started by srv_start */
#define SRV_SHARDS_MAX 8
#define HTTP_TIMEOUT_MS 60000

/* What srv_start runs. */
enum srv_target {
	SRV_SERVE,              /* one `vecdb serve` */
	SRV_CLUSTER,            /* shards behind a router */
};

/* A running `vecdb serve`, or a router (and the shards it started). */
struct srv {
	struct proc proc;       /* the server, or the router */
	struct proc nodes[SRV_SHARDS_MAX]; /* shards this srv owns */
	int nnodes;             /* 0: not a cluster, or a second router */
	int nshards;            /* nodes[0..nshards) are the primaries */
	int shard_of[SRV_SHARDS_MAX]; /* the shard of each node */
	uint16_t port;          /* the REST port it printed */
	uint16_t rpc_port;      /* a router's --rpc port, 0 when none */
	int tls;                /* started with --tls-cert: talk HTTPS */
	char *dir;              /* serve: --data; cluster: the nodes' parent
				   dir, with topology.json (owned) */
	char *tls_dir;          /* a cluster-tls cluster's CA and
				   certificates (scripts/tls-ca.sh), or NULL
				   (owned) */
	char err[2048];         /* why a start failed */
};

/*
 * The target VECDB_TEST_TARGET asks for (SRV_SERVE when unset):
 * "serve", "cluster", or "cluster-tls" (SRV_CLUSTER whose router and
 * nodes talk mutual TLS over tls+tcp://, the router's REST over HTTPS).
 */
enum srv_target srv_target(void);

/* VECDB_TEST_TARGET=cluster-tls: mutual TLS inside the cluster. */
int srv_internal_tls(void);

/*
 * Add the unchecked fixture that creates tu_base and, at the end of the
 * TCase, kills any child still registered there and removes the tree.
 */
void srv_add_fixture(TCase *tc);

/*
 * Start `VECDB_BIN serve --data <fresh dir> --host 127.0.0.1 --port 0
 * [extra_args]` (extra_args NULL-terminated, may be NULL) and wait for
 * the line that names its port. Needs srv_add_fixture's tu_base.
 * @return 0, or -1 with the reason (exit status, stderr tail) in out->err;
 *	nothing is left running on failure.
 */
int srv_try_serve(const char *const *extra_args, struct srv *out);

/*
 * Start nshards vecdb-node shards (`--data DIR --rpc tcp://127.0.0.1:0
 * --admin-port 0`, node_env NULL or "NAME=value" strings added to their
 * environment), write <dir>/topology.json over their ports and start
 * `vecdb-router --topology it --host 127.0.0.1 --port 0 --rpc
 * tcp://127.0.0.1:0 --timeout-ms 30000 [router_args]` (a later
 * --timeout-ms in router_args wins). Same return as srv_try_serve.
 */
int srv_try_cluster(int nshards, const char *const *router_args,
    const char *const *node_env, struct srv *out);

/* Another router over cluster's topology; it owns no shards. */
/*
 * Start a vecdb-node as a read replica of shard (`--mode replica
 * --primary URL` plus args), add it to the topology file and send the
 * router SIGHUP.
 * @return its index in s->nodes.
 */
int srv_add_replica(struct srv *s, int shard, const char *const *args);

int srv_try_router(const struct srv *cluster,
    const char *const *router_args, struct srv *out);

/* srv_try_serve or srv_try_cluster(SRV_SHARDS, extra_args as the
 * router's) as srv_target() says. */
int srv_try_start(const char *const *extra_args, struct srv *out);

/* srv_try_start, failing the test on error. */
void srv_start(const char *const *extra_args, struct srv *out);

/*
 * SIGTERM, wait, and free s; a router first, then its shards. Fails the
 * test unless each exited 0: a clean shutdown is part of the contract
 * (and under ASan, a non-zero exit is a leak or error report). Stopping
 * a stopped srv does nothing.
 */
void srv_stop(struct srv *s);

/* Stop and start again on the same data dirs and arguments (a cluster:
 * the router and every shard; shards keep their rpc ports). */
void srv_restart(struct srv *s);

/* A response. */
struct resp {
	int status;             /* HTTP status */
	char *body;             /* body bytes, NUL-terminated (owned) */
	size_t len;             /* body length without the NUL */
	char ctype[128];        /* Content-Type, "" if none */
	json_t *json;           /* parsed body when it is JSON, else NULL */
};

/*
 * One request on a fresh connection. body may be NULL (no body); headers
 * is a NULL-terminated list of "Name: value" lines or NULL.
 * @return 0, or -1 when no HTTP response came (the reason is printed).
 *	On success the caller frees out with resp_free().
 */
int http_req(struct srv *s, const char *method, const char *path,
    const char *json_body, const char *const *headers, struct resp *out);

/* As http_req with any body bytes and Content-Type (NULL: none). */
int http_req_raw(struct srv *s, const char *method, const char *path,
    const void *body, size_t len, const char *ctype,
    const char *const *headers, struct resp *out);

void resp_free(struct resp *r);

/*
 * One JSON request that must answer HTTP @p want; returns the whole
 * response envelope (a new reference). Fails the test otherwise.
 */
json_t *http_call(struct srv *s, int want, const char *method,
    const char *path, const char *body);

/* The last lines of the server's (or router's) stderr (static buffer). */
const char *srv_log_tail(const struct srv *s);

#endif
