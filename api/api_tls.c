/*
 * api_tls.c: HTTPS in front of civetweb.
 *
 * Debian 12's libcivetweb 1.15 loads OpenSSL at run time by symbol name and
 * looks up SSL_get_peer_certificate, which OpenSSL 3 no longer exports (it
 * is SSL_get1_peer_certificate now): every HTTPS request then calls a NULL
 * pointer right after the handshake. So we terminate TLS ourselves with the
 * OpenSSL we link anyway, and pipe each connection's plaintext to civetweb
 * listening on a private loopback port. One thread per TLS connection,
 * bounded; keep-alive and pipelining pass through untouched.
 */
#define _GNU_SOURCE /* accept4 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <sys/socket.h>
#include <unistd.h>

#include "api_tls.h"
#include "vdb.h"

#define TLS_CONNS_MAX 1024
#define HANDSHAKE_TIMEOUT_S 10

struct api_tls {
	SSL_CTX *ctx;
	int lfd;                  /* the public listening socket */
	uint16_t port;            /* its port */
	uint16_t backend;         /* civetweb's loopback port */
	pthread_t acceptor;
	pthread_mutex_t lock;     /* guards the fields below */
	pthread_cond_t idle;      /* active reached 0 */
	int active;               /* connection threads running */
	int stopping;
	int fds[TLS_CONNS_MAX];   /* client sockets, -1 when free */
};

struct conn {
	struct api_tls *t;
	int fd;                   /* client socket */
	int slot;                 /* index in t->fds */
};

/* A TLS context from a PEM certificate chain and key. */
static int
ctx_new(const char *cert, const char *key, SSL_CTX **out)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());

	if (ctx == NULL)
		return vdb_err(VECDB_ENOMEM, "cannot create a TLS context");
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	if (SSL_CTX_use_certificate_chain_file(ctx, cert) != 1 ||
	    SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1 ||
	    SSL_CTX_check_private_key(ctx) != 1) {
		SSL_CTX_free(ctx);
		return vdb_err(VECDB_EINVAL, "cannot load TLS certificate %s "
		    "and key %s", cert, key);
	}
	*out = ctx;
	return VECDB_OK;
}

/* Bind and listen on host:port; writes the bound port. */
static int
listen_on(const char *host, uint16_t port, int *fd, uint16_t *bound)
{
	struct sockaddr_in sa = { .sin_family = AF_INET };
	socklen_t len = sizeof(sa);
	int one = 1, s;

	if (inet_pton(AF_INET, host, &sa.sin_addr) != 1)
		return vdb_err(VECDB_EINVAL, "TLS needs an IPv4 host, not %s",
		    host);
	sa.sin_port = htons(port);
	if ((s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0)
		return vdb_err(VECDB_EIO, "socket: %s", strerror(errno));
	setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(s, (struct sockaddr *) &sa, sizeof(sa)) != 0 ||
	    listen(s, 128) != 0 ||
	    getsockname(s, (struct sockaddr *) &sa, &len) != 0) {
		int e = errno;
		close(s);
		return vdb_err(VECDB_EIO, "cannot listen on %s:%u: %s", host,
		    port, strerror(e));
	}
	*fd = s;
	*bound = ntohs(sa.sin_port);
	return VECDB_OK;
}

/* Connect to civetweb's loopback port. */
static int
backend_connect(uint16_t port)
{
	struct sockaddr_in sa = { .sin_family = AF_INET,
		.sin_port = htons(port) };
	int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1;

	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (s >= 0 && connect(s, (struct sockaddr *) &sa, sizeof(sa)) != 0) {
		close(s);
		return -1;
	}
	if (s >= 0)
		setsockopt(s, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	return s;
}

/* Copy decrypted client bytes to the backend; -1 when the client is done. */
static int
pump_in(SSL *ssl, int be)
{
	char buf[16384];

	do {
		int n = SSL_read(ssl, buf, sizeof(buf));
		if (n <= 0) {
			int e = SSL_get_error(ssl, n);
			return e == SSL_ERROR_WANT_READ ? 0 : -1;
		}
		for (int off = 0; off < n;) {
			ssize_t w = write(be, buf + off, (size_t) (n - off));
			if (w <= 0)
				return -1;
			off += (int) w;
		}
	} while (SSL_pending(ssl) > 0);
	return 0;
}

/* Copy backend bytes to the client, encrypted; -1 when done. */
static int
pump_out(SSL *ssl, int be)
{
	char buf[16384];
	ssize_t n = read(be, buf, sizeof(buf));

	if (n <= 0)
		return -1;
	return SSL_write(ssl, buf, (int) n) == (int) n ? 0 : -1;
}

/* Shuttle bytes both ways until either side closes. */
static void
pipe_conn(SSL *ssl, int fd, int be)
{
	struct pollfd p[2] = { { fd, POLLIN, 0 }, { be, POLLIN, 0 } };

	for (;;) {
		p[0].revents = p[1].revents = 0;
		/* Bytes OpenSSL already decrypted are not visible to poll. */
		if (SSL_pending(ssl) == 0 && poll(p, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			return;
		}
		if ((SSL_pending(ssl) > 0 || p[0].revents) &&
		    pump_in(ssl, be) != 0)
			return;
		if (p[1].revents && pump_out(ssl, be) != 0)
			return;
	}
}

/* Release a connection's slot; wakes api_tls_stop when the last ends. */
static void
conn_release(struct conn *c)
{
	struct api_tls *t = c->t;

	pthread_mutex_lock(&t->lock);
	t->fds[c->slot] = -1;
	if (--t->active == 0)
		pthread_cond_broadcast(&t->idle);
	pthread_mutex_unlock(&t->lock);
	close(c->fd);
	vdb_free(c);
}

/* One TLS connection: handshake, then pipe to the backend. */
static void *
conn_main(void *arg)
{
	struct conn *c = arg;
	struct timeval tv = { HANDSHAKE_TIMEOUT_S, 0 }, none = { 0, 0 };
	SSL *ssl = SSL_new(c->t->ctx);
	int be = -1;

	setsockopt(c->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	if (ssl != NULL && SSL_set_fd(ssl, c->fd) == 1 && SSL_accept(ssl) == 1 &&
	    (be = backend_connect(c->t->backend)) >= 0) {
		setsockopt(c->fd, SOL_SOCKET, SO_RCVTIMEO, &none, sizeof(none));
		pipe_conn(ssl, c->fd, be);
		SSL_shutdown(ssl);
	} else {
		VDB_LOG_DEBUG("TLS", "handshake or backend connect failed");
	}
	if (be >= 0)
		close(be);
	SSL_free(ssl);
	ERR_clear_error();
	conn_release(c);
	return NULL;
}

/* Take a free slot for fd, or -1 when full or stopping. */
static int
slot_take(struct api_tls *t, int fd)
{
	int slot = -1;

	pthread_mutex_lock(&t->lock);
	for (int i = 0; !t->stopping && i < TLS_CONNS_MAX && slot < 0; i++)
		if (t->fds[i] < 0)
			slot = i;
	if (slot >= 0) {
		t->fds[slot] = fd;
		t->active++;
	}
	pthread_mutex_unlock(&t->lock);
	return slot;
}

/* Accept connections until stopped; each gets a detached thread. */
static void *
acceptor_main(void *arg)
{
	struct api_tls *t = arg;
	struct pollfd p = { t->lfd, POLLIN, 0 };
	pthread_attr_t attr;
	pthread_t th;

	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	while (!__atomic_load_n(&t->stopping, __ATOMIC_ACQUIRE)) {
		struct conn *c;
		int fd;
		if (poll(&p, 1, 100) <= 0)
			continue;
		if ((fd = accept4(t->lfd, NULL, NULL, SOCK_CLOEXEC)) < 0)
			continue;
		if ((c = vdb_malloc(sizeof(*c))) == NULL ||
		    (c->slot = slot_take(t, fd)) < 0) {
			vdb_free(c);
			close(fd); /* over the limit: refuse */
			continue;
		}
		c->t = t;
		c->fd = fd;
		if (pthread_create(&th, &attr, conn_main, c) != 0)
			conn_release(c);
	}
	pthread_attr_destroy(&attr);
	return NULL;
}

int
api_tls_start(const char *host, uint16_t port, const char *cert,
    const char *key, uint16_t backend, struct api_tls **out)
{
	struct api_tls *t = vdb_calloc(1, sizeof(*t));
	int rv;

	if (t == NULL)
		return vdb_err(VECDB_ENOMEM, "out of memory");
	for (int i = 0; i < TLS_CONNS_MAX; i++)
		t->fds[i] = -1;
	t->backend = backend;
	t->lfd = -1;
	if ((rv = ctx_new(cert, key, &t->ctx)) != VECDB_OK ||
	    (rv = listen_on(host, port, &t->lfd, &t->port)) != VECDB_OK)
		goto fail;
	pthread_mutex_init(&t->lock, NULL);
	pthread_cond_init(&t->idle, NULL);
	if (pthread_create(&t->acceptor, NULL, acceptor_main, t) != 0) {
		rv = vdb_err(VECDB_ENOMEM, "cannot start the TLS acceptor");
		pthread_mutex_destroy(&t->lock);
		pthread_cond_destroy(&t->idle);
		goto fail;
	}
	*out = t;
	return VECDB_OK;
fail:
	if (t->lfd >= 0)
		close(t->lfd);
	SSL_CTX_free(t->ctx);
	vdb_free(t);
	return rv;
}

uint16_t
api_tls_port(const struct api_tls *t)
{
	return t->port;
}

void
api_tls_stop_accepting(struct api_tls *t)
{
	if (t == NULL || t->lfd < 0)
		return;
	__atomic_store_n(&t->stopping, 1, __ATOMIC_RELEASE);
	pthread_join(t->acceptor, NULL);
	close(t->lfd);
	t->lfd = -1;
}

void
api_tls_stop(struct api_tls *t)
{
	if (t == NULL)
		return;
	api_tls_stop_accepting(t);
	pthread_mutex_lock(&t->lock);
	for (int i = 0; i < TLS_CONNS_MAX; i++)
		if (t->fds[i] >= 0)
			shutdown(t->fds[i], SHUT_RDWR); /* ends its pipe loop */
	while (t->active > 0)
		pthread_cond_wait(&t->idle, &t->lock);
	pthread_mutex_unlock(&t->lock);
	pthread_mutex_destroy(&t->lock);
	pthread_cond_destroy(&t->idle);
	SSL_CTX_free(t->ctx);
	vdb_free(t);
}
