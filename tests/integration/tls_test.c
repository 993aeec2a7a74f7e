/*
 * tls_test.c: mutual TLS between vecdb processes (tls+tcp://), with real
 * vecdb-node children, certificates from scripts/tls-ca.sh, and the C
 * client:
 * - what crosses the wire between a client and a node, and between a
 *   replica and its primary, is read by a relay of this test: with TLS it
 *   holds none of the vectors' bytes or payloads written (and without TLS
 *   it does, which shows that the reading works);
 * - a node refuses a peer with no certificate, or with one another CA
 *   signed, and a client refuses a node whose certificate it cannot
 *   verify;
 * - settings that would fall back to clear text, or files that do not
 *   load, stop a node at start with a message that says so;
 * - a router with the CA's certificate reaches TLS nodes, serves HTTPS
 *   unless --https off, and refuses a clear-text member.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <nng/nng.h>
#include <nng/protocol/reqrep0/req.h>
#include <nng/supplemental/tls/tls.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "proc.h"
#include "proto.h"
#include "testutil.h"
#include "vdb.h"
#include "vecdb_client.h"

#ifndef VECDB_NODE_BIN
#error "VECDB_NODE_BIN must name the vecdb-node binary"
#endif
#ifndef VECDB_ROUTER_BIN
#error "VECDB_ROUTER_BIN must name the vecdb-router binary"
#endif
#ifndef VECDB_TLS_CA_SCRIPT
#error "VECDB_TLS_CA_SCRIPT must name scripts/tls-ca.sh"
#endif

#define DIM 8
#define NPTS 64
#define CANARY "canary-7c1e-in-clear"
#define WAIT_MS 30000
#define REFUSED_MS 1500   /* a refused peer's calls fail within this */

/* ===== Certificates ===== */

/* <tu_base>/<ca>/: the CA and certificates of names (scripts/tls-ca.sh). */
static char *
certs_make(const char *ca, const char *names)
{
	char *dir, *cmd;
	int rc;

	ck_assert(asprintf(&dir, "%s/%s", tu_base, ca) > 0);
	ck_assert(asprintf(&cmd, "'%s' '%s' %s >'%s.log' 2>&1",
	    VECDB_TLS_CA_SCRIPT, dir, names, dir) > 0);
	rc = system(cmd);
	free(cmd);
	ck_assert_msg(rc == 0, "scripts/tls-ca.sh failed (%d): see %s.log", rc,
	    dir);
	return dir;
}

/* The files of certificate name in dir, with ca's CA. */
struct tls_files {
	char ca[512], cert[512], key[512];
};

static void
files(struct tls_files *f, const char *ca_dir, const char *dir,
    const char *name)
{
	snprintf(f->ca, sizeof(f->ca), "%s/ca.pem", ca_dir);
	snprintf(f->cert, sizeof(f->cert), "%s/%s.pem", dir, name);
	snprintf(f->key, sizeof(f->key), "%s/%s.key", dir, name);
}

/* ===== Nodes ===== */

struct node {
	struct proc proc;
	char url[64];
};

/* Start a node with f's TLS files (NULL: none) and extra args, and read
 * its rpc url. */
static void
node_start(struct node *n, const struct tls_files *f,
    const char *const *args)
{
	char *dir = tu_subdir(), log[600];
	const char *scheme = f != NULL ? "tls+tcp" : "tcp";
	char rpc[64], prefix[64];
	uint16_t port;

	memset(n, 0, sizeof(*n));
	snprintf(log, sizeof(log), "%s.log", dir);
	snprintf(rpc, sizeof(rpc), "%s://127.0.0.1:0", scheme);
	proc_init(&n->proc, (const char *const[]) { VECDB_NODE_BIN, "--data",
	    dir, "--rpc", rpc, "--admin-port", "0", NULL }, log);
	free(dir);
	if (f != NULL)
		proc_args_add(&n->proc, (const char *const[]) { "--tls-ca",
		    f->ca, "--tls-cert", f->cert, "--tls-key", f->key, NULL });
	proc_args_add(&n->proc, args);
	proc_start(&n->proc);
	snprintf(prefix, sizeof(prefix), "rpc %s://127.0.0.1:", scheme);
	port = proc_port(&n->proc, prefix);
	ck_assert_msg(port != 0, "node printed no rpc port: %s", n->proc.line);
	snprintf(n->url, sizeof(n->url), "%s://127.0.0.1:%u", scheme, port);
}

/* A client of url with f's files (NULL: clear text). */
static vecdb_client *
client(const char *url, const struct tls_files *f, uint32_t timeout_ms)
{
	vecdb_client_tls t;
	vecdb_client *c;

	if (f != NULL)
		t = (vecdb_client_tls) { f->ca, f->cert, f->key };
	ck_assert_msg(vecdb_client_connect_tls(url, NULL, timeout_ms,
	    f != NULL ? &t : NULL, &c) == VECDB_OK, "connect %s: %s", url,
	    vecdb_errmsg());
	return c;
}

/* ===== A relay that keeps what it carries ===== */

#define RELAY_PAIRS 16

/* Listens on a loopback port and carries every connection to target,
 * both ways, keeping a copy of all the bytes. */
struct relay {
	int lfd;
	uint16_t port, target;
	pthread_t th;
	int stop;                   /* atomic */
	pthread_mutex_t lock;       /* guards seen, len */
	uint8_t *seen;
	size_t len, cap;
};

static void
relay_keep(struct relay *r, const uint8_t *b, size_t n)
{
	pthread_mutex_lock(&r->lock);
	if (r->len + n > r->cap) {
		r->cap = (r->len + n) * 2;
		ck_assert_ptr_nonnull(r->seen = realloc(r->seen, r->cap));
	}
	memcpy(r->seen + r->len, b, n);
	r->len += n;
	pthread_mutex_unlock(&r->lock);
}

static int
dial_target(uint16_t port)
{
	struct sockaddr_in a = { .sin_family = AF_INET,
		.sin_port = htons(port) };
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd >= 0 && connect(fd, (struct sockaddr *) &a, sizeof(a)) != 0) {
		close(fd);
		fd = -1;
	}
	return fd;
}

static void *
relay_main(void *arg)
{
	struct relay *r = arg;
	int fds[RELAY_PAIRS][2], n = 0;
	uint8_t buf[65536];

	while (!__atomic_load_n(&r->stop, __ATOMIC_SEQ_CST)) {
		struct pollfd p[1 + 2 * RELAY_PAIRS];
		p[0] = (struct pollfd) { r->lfd, POLLIN, 0 };
		for (int i = 0; i < n; i++)
			for (int k = 0; k < 2; k++)
				p[1 + 2 * i + k] = (struct pollfd) {
					fds[i][k], POLLIN, 0 };
		if (poll(p, (nfds_t) (1 + 2 * n), 50) <= 0)
			continue;
		if ((p[0].revents & POLLIN) && n < RELAY_PAIRS) {
			int c = accept4(r->lfd, NULL, NULL, SOCK_CLOEXEC);
			int t = c >= 0 ? dial_target(r->target) : -1;
			if (t >= 0) {
				fds[n][0] = c;
				fds[n][1] = t;
				n++;
				continue; /* p no longer matches fds */
			}
			if (c >= 0)
				close(c);
		}
		for (int i = 0; i < n; i++)
			for (int k = 0; k < 2; k++) {
				ssize_t got;
				if (!(p[1 + 2 * i + k].revents &
				    (POLLIN | POLLHUP | POLLERR)))
					continue;
				got = read(fds[i][k], buf, sizeof(buf));
				if (got > 0) {
					relay_keep(r, buf, (size_t) got);
					if (write(fds[i][!k], buf, (size_t) got)
					    == got)
						continue;
				}
				/* one side ended: end both, and the pair */
				close(fds[i][0]);
				close(fds[i][1]);
				fds[i][0] = fds[n - 1][0];
				fds[i][1] = fds[n - 1][1];
				n--;
				i = n; /* p is stale: poll again */
				break;
			}
	}
	for (int i = 0; i < n; i++) {
		close(fds[i][0]);
		close(fds[i][1]);
	}
	return NULL;
}

static void
relay_start(struct relay *r, uint16_t target)
{
	struct sockaddr_in a = { .sin_family = AF_INET };
	socklen_t alen = sizeof(a);

	memset(r, 0, sizeof(*r));
	r->target = target;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ck_assert_int_ge(r->lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC,
	    0), 0);
	ck_assert_int_eq(bind(r->lfd, (struct sockaddr *) &a, sizeof(a)), 0);
	ck_assert_int_eq(listen(r->lfd, 16), 0);
	ck_assert_int_eq(getsockname(r->lfd, (struct sockaddr *) &a, &alen),
	    0);
	r->port = ntohs(a.sin_port);
	pthread_mutex_init(&r->lock, NULL);
	ck_assert_int_eq(pthread_create(&r->th, NULL, relay_main, r), 0);
}

static void
relay_stop(struct relay *r)
{
	__atomic_store_n(&r->stop, 1, __ATOMIC_SEQ_CST);
	pthread_join(r->th, NULL);
	close(r->lfd);
	pthread_mutex_destroy(&r->lock);
	free(r->seen);
}

/* Did r carry the n bytes of b? */
static int
relay_saw(struct relay *r, const void *b, size_t n)
{
	int found;

	pthread_mutex_lock(&r->lock);
	found = r->len >= n && memmem(r->seen, r->len, b, n) != NULL;
	pthread_mutex_unlock(&r->lock);
	return found;
}

/* ===== What goes over the wire ===== */

/* Point i's vector: values no other bytes on the wire would hold. */
static void
vec_of(int i, float *v)
{
	for (int k = 0; k < DIM; k++)
		v[k] = 1234.5f + (float) i * 0.25f + (float) k * 0.125f;
}

/*
 * Through relays (client -> r -> primary, replica -> r -> primary), write
 * NPTS points with the canary in their payloads, and wait until the
 * replica holds them all (asked directly, not through the relay).
 */
static void
replicate_through(struct relay *r, const struct tls_files *pf,
    const struct tls_files *rf, const struct tls_files *cf)
{
	const char *scheme = pf != NULL ? "tls+tcp" : "tcp";
	char via[64], rid[64] = "r";
	static float vecs[NPTS][DIM];
	vecdb_point pts[NPTS];
	char payload[NPTS][64];
	vecdb_collection_config cfg;
	struct node p, rep;
	vecdb_client *c, *cr;
	uint64_t cnt = 0, end;
	int rv;

	node_start(&p, pf, NULL);
	relay_start(r, (uint16_t) atoi(strrchr(p.url, ':') + 1));
	snprintf(via, sizeof(via), "%s://127.0.0.1:%u", scheme, r->port);
	node_start(&rep, rf, (const char *const[]) { "--mode", "replica",
	    "--primary", via, "--node-id", rid, NULL });
	c = client(via, cf, 10000);
	vecdb_collection_config_init(&cfg, "c", DIM, VECDB_EUCLIDEAN);
	ck_assert_msg(vecdb_client_collection_create(c, &cfg) == VECDB_OK,
	    "create: %s", vecdb_errmsg());
	for (int i = 0; i < NPTS; i++) {
		vec_of(i, vecs[i]);
		snprintf(payload[i], sizeof(payload[i]),
		    "{\"secret\": \"" CANARY "-%d\"}", i);
		pts[i] = (vecdb_point) { vecdb_id_num((uint64_t) i + 1),
			vecs[i], DIM, payload[i] };
	}
	ck_assert_msg(vecdb_client_upsert(c, "c", pts, NPTS) == VECDB_OK,
	    "upsert: %s", vecdb_errmsg());
	cr = client(rep.url, cf, 10000);
	for (end = vdb_now_ms() + WAIT_MS; vdb_now_ms() < end; usleep(20000))
		if ((rv = vecdb_client_count(cr, "c", NULL, &cnt)) ==
		    VECDB_OK && cnt == NPTS)
			break;
	ck_assert_msg(cnt == NPTS, "the replica holds %llu of %d points "
	    "after %d ms", (unsigned long long) cnt, NPTS, WAIT_MS);
	vecdb_client_close(cr);
	vecdb_client_close(c);
	proc_stop_ok(&rep.proc);
	proc_stop_ok(&p.proc);
	proc_free(&rep.proc);
	proc_free(&p.proc);
}

START_TEST(the_wire_holds_no_vector_or_payload_in_clear)
{
	char *dir = certs_make("ca", "p r c");
	struct tls_files pf, rf, cf;
	struct relay clear, tls;
	float v[DIM];

	files(&pf, dir, dir, "p");
	files(&rf, dir, dir, "r");
	files(&cf, dir, dir, "c");
	/* In clear, the relay sees what was written: the check can fail. */
	replicate_through(&clear, NULL, NULL, NULL);
	vec_of(NPTS - 1, v);
	ck_assert_msg(relay_saw(&clear, v, sizeof(v)), "clear text: the "
	    "relay missed a vector's bytes (%zu bytes seen)", clear.len);
	ck_assert(relay_saw(&clear, CANARY, strlen(CANARY)));
	relay_stop(&clear);
	/* With TLS, the same traffic, and none of it readable. */
	replicate_through(&tls, &pf, &rf, &cf);
	ck_assert_msg(tls.len > (size_t) NPTS * DIM * 4, "the relay carried "
	    "only %zu bytes", tls.len);
	for (int i = 0; i < NPTS; i++) {
		vec_of(i, v);
		ck_assert_msg(!relay_saw(&tls, v, sizeof(v)), "point %d's "
		    "vector crossed the wire in clear", i);
		ck_assert_msg(!relay_saw(&tls, &v[0], 2 * sizeof(float)),
		    "part of point %d's vector crossed in clear", i);
	}
	ck_assert(!relay_saw(&tls, CANARY, strlen(CANARY)));
	ck_assert(!relay_saw(&tls, "secret", 6));
	relay_stop(&tls);
	free(dir);
}
END_TEST

/* ===== Who is let in ===== */

/* A call of a client with f (NULL: clear text) to url: VECDB_OK or why
 * not. */
static int
try_list(const char *url, const struct tls_files *f)
{
	char **names = NULL;
	size_t n = 0;
	vecdb_client *c = client(url, f, REFUSED_MS);
	int rv = vecdb_client_collection_list(c, &names, &n);

	for (size_t i = 0; rv == VECDB_OK && i < n; i++)
		vdb_free(names[i]);
	vdb_free(names);
	vecdb_client_close(c);
	return rv;
}

/* A raw nng client that trusts the CA but has no certificate of its
 * own: its one request gets no answer. */
static int
no_cert_answered(const char *url, const char *ca_pem)
{
	nng_tls_config *cfg;
	nng_socket s;
	nng_dialer d;
	nng_msg *m;
	uint8_t *req;
	size_t len;
	char *ca;
	int rv;

	ck_assert_int_eq(vdb_file_read(ca_pem, &ca), VECDB_OK);
	ck_assert_int_eq(nng_tls_config_alloc(&cfg, NNG_TLS_MODE_CLIENT), 0);
	ck_assert_int_eq(nng_tls_config_ca_chain(cfg, ca, NULL), 0);
	ck_assert_int_eq(nng_req0_open(&s), 0);
	ck_assert_int_eq(nng_socket_set_ms(s, NNG_OPT_SENDTIMEO, REFUSED_MS),
	    0);
	ck_assert_int_eq(nng_socket_set_ms(s, NNG_OPT_RECVTIMEO, REFUSED_MS),
	    0);
	ck_assert_int_eq(nng_dialer_create(&d, s, url), 0);
	ck_assert_int_eq(nng_dialer_set_ptr(d, NNG_OPT_TLS_CONFIG, cfg), 0);
	ck_assert_int_eq(nng_dialer_start(d, NNG_FLAG_NONBLOCK), 0);
	ck_assert_int_eq(proto_request_encode(PROTO_HEALTH, "", 1, NULL, 0,
	    &req, &len), VECDB_OK);
	rv = nng_send(s, req, len, 0);
	vdb_free(req);
	if (rv == 0 && (rv = nng_recvmsg(s, &m, 0)) == 0)
		nng_msg_free(m);
	nng_close(s);
	nng_tls_config_free(cfg);
	vdb_free(ca);
	return rv == 0;
}

START_TEST(a_node_lets_in_only_peers_its_ca_signed)
{
	char *dir = certs_make("ca", "p c"), *other = certs_make("other", "x");
	struct tls_files pf, ok, wrong_ca, wrong_cert, stranger;
	char clear_url[64];
	struct node p;

	files(&pf, dir, dir, "p");
	files(&ok, dir, dir, "c");
	files(&wrong_cert, dir, other, "x");    /* our CA, their cert */
	files(&wrong_ca, other, dir, "c");      /* our cert, their CA */
	files(&stranger, other, other, "x");    /* all theirs */
	node_start(&p, &pf, NULL);
	ck_assert_int_eq(try_list(p.url, &ok), VECDB_OK);
	/* a certificate another CA signed: refused */
	ck_assert_int_eq(try_list(p.url, &wrong_cert), VECDB_EUNAVAILABLE);
	ck_assert_int_eq(try_list(p.url, &stranger), VECDB_EUNAVAILABLE);
	/* no certificate at all: refused */
	ck_assert(!no_cert_answered(p.url, pf.ca));
	/* clear text to the TLS port: nothing */
	snprintf(clear_url, sizeof(clear_url), "tcp://%s",
	    p.url + strlen("tls+tcp://"));
	ck_assert_int_eq(try_list(clear_url, NULL), VECDB_EUNAVAILABLE);
	/* and the client will not talk to a node its CA did not sign */
	ck_assert_int_eq(try_list(p.url, &wrong_ca), VECDB_EUNAVAILABLE);
	/* the node still serves the right peer after all that */
	ck_assert_int_eq(try_list(p.url, &ok), VECDB_OK);
	proc_stop_ok(&p.proc);
	proc_free(&p.proc);
	free(dir);
	free(other);
}
END_TEST

/* ===== Settings ===== */

/* Run vecdb-node with args; it must exit 2 at once, saying want. */
static void
refused_at_start(const char *const *args, const char *want)
{
	char *dir = tu_subdir(), *cmd, *out, *log;  /* out: then the log */
	size_t len = 0;
	int st;

	ck_assert(asprintf(&log, "%s.log", dir) > 0);
	ck_assert(asprintf(&cmd, "'%s' --data '%s' --admin-port 0",
	    VECDB_NODE_BIN, dir) > 0);
	for (size_t i = 0; args[i] != NULL; i++) {
		char *more;
		ck_assert(strchr(args[i], '\'') == NULL);
		ck_assert(asprintf(&more, "%s '%s'", cmd, args[i]) > 0);
		free(cmd);
		cmd = more;
	}
	ck_assert(asprintf(&out, "%s </dev/null >'%s' 2>&1", cmd, log) > 0);
	st = system(out);
	free(out);
	free(cmd);
	ck_assert_int_eq(vdb_file_read(log, &out), VECDB_OK);
	len = strlen(out);
	ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 2 &&
	    strstr(out, want) != NULL, "wanted exit 2 saying '%s', got %d: "
	    "%.*s", want, st, (int) (len > 1000 ? 1000 : len), out);
	vdb_free(out);
	free(log);
	free(dir);
}

START_TEST(settings_that_would_fall_back_to_clear_text_stop_the_node)
{
	char *dir = certs_make("ca", "p");
	struct tls_files f;
	char nope[600];

	files(&f, dir, dir, "p");
	snprintf(nope, sizeof(nope), "%s/nope.pem", dir);
	/* TLS files with a clear-text url, and the other way round */
	refused_at_start((const char *const[]) { "--rpc", "tcp://127.0.0.1:0",
	    "--tls-ca", f.ca, "--tls-cert", f.cert, "--tls-key", f.key, NULL },
	    "use tls+tcp://");
	refused_at_start((const char *const[]) { "--rpc",
	    "tls+tcp://127.0.0.1:0", NULL }, "--tls-ca PEM");
	refused_at_start((const char *const[]) { "--rpc",
	    "tls+tcp://127.0.0.1:0", "--mode", "replica", "--primary",
	    "tcp://127.0.0.1:1", "--tls-ca", f.ca, "--tls-cert", f.cert,
	    "--tls-key", f.key, NULL }, "--primary tcp://127.0.0.1:1 is not "
	    "TLS");
	/* two of three */
	refused_at_start((const char *const[]) { "--rpc",
	    "tls+tcp://127.0.0.1:0", "--tls-ca", f.ca, "--tls-cert", f.cert,
	    NULL }, "missing: --tls-key");
	/* a file that is not there, or not a key */
	refused_at_start((const char *const[]) { "--rpc",
	    "tls+tcp://127.0.0.1:0", "--tls-ca", nope, "--tls-cert", f.cert,
	    "--tls-key", f.key, NULL }, "cannot read");
	refused_at_start((const char *const[]) { "--rpc",
	    "tls+tcp://127.0.0.1:0", "--tls-ca", f.ca, "--tls-cert", f.cert,
	    "--tls-key", f.ca, NULL }, "with key");
	free(dir);
}
END_TEST

/* ===== The router ===== */

/* A router over one member url with f's files and extra args; its first
 * line in line (the test fails if it does not start). */
static void
router_run(struct proc *r, const char *member, const struct tls_files *f,
    const char *const *args, char *line, size_t len)
{
	char *dir = tu_subdir(), topo[600], log[600];
	FILE *t;

	snprintf(topo, sizeof(topo), "%s.json", dir);
	snprintf(log, sizeof(log), "%s.log", dir);
	ck_assert_ptr_nonnull(t = fopen(topo, "w"));
	fprintf(t, "{\"shards\": [{\"id\": 0, \"primary\": \"%s\"}]}\n",
	    member);
	ck_assert_int_eq(fclose(t), 0);
	proc_init(r, (const char *const[]) { VECDB_ROUTER_BIN, "--topology",
	    topo, "--host", "127.0.0.1", "--port", "0", "--qdrant-port", "0",
	    "--tls-ca", f->ca, "--tls-cert", f->cert, "--tls-key", f->key,
	    NULL }, log);
	free(dir);
	proc_args_add(r, args);
	proc_start(r);
	snprintf(line, len, "%s", r->line);
}

START_TEST(a_router_reaches_tls_nodes_and_serves_https_unless_told_not_to)
{
	char *dir = certs_make("ca", "p rt"), line[1024], *sh;
	struct tls_files pf, rf;
	struct node p;
	struct proc r;
	int st;

	files(&pf, dir, dir, "p");
	files(&rf, dir, dir, "rt");
	node_start(&p, &pf, NULL);
	router_run(&r, p.url, &rf, NULL, line, sizeof(line));
	ck_assert_msg(strstr(line, "serving https://") != NULL, "%s", line);
	/* the router's member is up through TLS: /ready says so */
	ck_assert(asprintf(&sh, "for i in $(seq 200); do curl -sfk "
	    "https://127.0.0.1:%u/ready >/dev/null && exit 0; sleep 0.05; "
	    "done; exit 1", proc_port(&r, "serving https://127.0.0.1:")) > 0);
	st = system(sh);
	free(sh);
	ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "the router "
	    "never became ready over TLS");
	proc_stop_ok(&r);
	proc_free(&r);
	router_run(&r, p.url, &rf, (const char *const[]) { "--https", "off",
	    NULL }, line, sizeof(line));
	ck_assert_msg(strstr(line, "serving http://") != NULL, "%s", line);
	proc_stop_ok(&r);
	proc_free(&r);
	proc_stop_ok(&p.proc);
	proc_free(&p.proc);
	free(dir);
}
END_TEST

static Suite *
tls_suite(void)
{
	Suite *s = suite_create("tls");
	TCase *tc = tcase_create("tls");

	proc_add_fixture(tc);
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, the_wire_holds_no_vector_or_payload_in_clear);
	tcase_add_test(tc, a_node_lets_in_only_peers_its_ca_signed);
	tcase_add_test(tc,
	    settings_that_would_fall_back_to_clear_text_stop_the_node);
	tcase_add_test(tc,
	    a_router_reaches_tls_nodes_and_serves_https_unless_told_not_to);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	return tu_run(tls_suite());
}
