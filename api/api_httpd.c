/*
 * api_httpd.c: our HTTP server on libmicrohttpd (api_httpd.h says what it
 * promises).
 *
 * civetweb, which served us before, gives each connection a worker thread
 * for its whole life: 16 idle sockets took a 16-thread server off the air
 * (measured: a fresh GET /health got nothing for 60 s). libmicrohttpd
 * reads every socket from one epoll thread. We suspend a connection once
 * its request is whole, queue it for our workers, and resume it when a
 * worker has its response.
 *
 * libmicrohttpd's own timeout is an inactivity timeout that each byte
 * resets. Our deadlines are absolute, kept per connection and enforced by
 * a reaper thread, which shuts a late socket down: libmicrohttpd then
 * sees the end of the stream on its own thread and closes it. The
 * connection's entry leaves our list (under our lock) before its fd is
 * closed, so the reaper never touches a reused fd.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "api.h"
#include "api_httpd.h"
#include "vdb.h"

#define REAP_INTERVAL_MS 100
#define FD_RESERVE 256          /* files kept for LMDB, logs, nng */
#define UPLOAD_BUF 65536

/* Connections from one address. */
struct peer {
	struct peer *next;
	char addr[INET6_ADDRSTRLEN];
	unsigned n;
};

/* One connection (libmicrohttpd's socket context). */
struct conn {
	struct conn *prev, *next;   /* in httpd.conns */
	struct peer *peer;
	int fd;
	uint64_t deadline;          /* ms (vdb_now_ms); 0: none */
	int refuse;                 /* over a limit: answer 503 */
};

enum req_state { RS_NEW, RS_BODY, RS_QUEUED, RS_DONE };

struct httpd_req {
	struct httpd *s;
	struct conn *c;
	struct MHD_Connection *mc;
	struct httpd_req *qnext;    /* in the work queue */
	enum req_state state;
	char *uri;                  /* as sent; split at '?' */
	const char *query;
	const char *method;
	enum httpd_body mode;
	/* memory body */
	char *body;
	size_t len, cap;
	int too_big;
	/* file body */
	int fd;
	char *upload;               /* temp file path */
	const char *upload_err;
	struct MHD_PostProcessor *pp;
	int multipart, got_file;
	char file_key[64];          /* the file field kept */
	/* response */
	struct MHD_Response *resp;
	unsigned status;
	char peer[INET6_ADDRSTRLEN];
	_Alignas(16) unsigned char data[];
};

struct httpd {
	struct httpd_config cfg;
	struct MHD_Daemon *d;
	uint16_t port;
	char *cert_pem, *key_pem;

	pthread_mutex_t lock;       /* conns, peers, n_conns, deadlines */
	struct conn *conns;
	struct peer *peers;
	unsigned n_conns;

	pthread_mutex_t qlock;      /* the work queue */
	pthread_cond_t qcond;
	struct httpd_req *qhead, *qtail;
	int stopping;
	pthread_t *workers;
	unsigned n_workers;
	struct api_pool pool;       /* the workers, for long waits */

	pthread_t reaper;
	int reaper_started;
	pthread_mutex_t rlock;
	pthread_cond_t rcond;
	int reaper_stop;

	atomic_uint in_flight;      /* requests begun and not ended */
	atomic_int closing;         /* httpd_stop began: queue nothing */
	atomic_ullong refused;      /* answered 503 for the limits */
	atomic_ullong late;         /* closed past a deadline */
};

/* ===== Small helpers ===== */

static int
hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

int
httpd_url_decode(const char *s, size_t n, char *out, size_t cap)
{
	size_t o = 0;

	for (size_t i = 0; i < n; i++) {
		int c = (unsigned char) s[i];
		if (c == '%') {
			int h, l;
			if (i + 2 >= n)
				return -1;
			if ((h = hexval(s[i + 1])) < 0 ||
			    (l = hexval(s[i + 2])) < 0)
				return -1;
			c = h << 4 | l;
			i += 2;
		}
		if (o + 1 >= cap)
			return -1;
		out[o++] = (char) c;
	}
	if (cap == 0)
		return -1;
	out[o] = '\0';
	return (int) o;
}

int
httpd_query_var(const char *qs, const char *name, char *buf, size_t cap)
{
	size_t nl = strlen(name);
	const char *p = qs;

	while (p != NULL && *p != '\0') {
		const char *end = strchr(p, '&');
		size_t len = end ? (size_t) (end - p) : strlen(p);
		if (len > nl && strncmp(p, name, nl) == 0 && p[nl] == '=') {
			int n = httpd_url_decode(p + nl + 1, len - nl - 1, buf,
			    cap);
			if (n < 0)
				return -2;
			for (int i = 0; i < n; i++)
				if (buf[i] == '+')
					buf[i] = ' ';
			return n;
		}
		if (len == nl && strncmp(p, name, nl) == 0) {
			if (cap == 0)
				return -2;
			buf[0] = '\0';
			return 0;
		}
		p = end ? end + 1 : NULL;
	}
	return -1;
}

/* Could host:port be bound now? (Why a daemon with TLS did not start:
 * the address, or else the certificate.) */
static int
addr_bindable(const char *host, uint16_t port)
{
	struct sockaddr_in a = { .sin_family = AF_INET,
		.sin_port = htons(port) };
	int fd, one = 1, ok;

	if (inet_pton(AF_INET, host, &a.sin_addr) != 1)
		return 0;
	if ((fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0)
		return 0;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	ok = bind(fd, (struct sockaddr *) &a, sizeof(a)) == 0;
	close(fd);
	return ok;
}

static void
mhd_log(void *cls, const char *fmt, va_list ap)
{
	struct httpd *s = cls;
	char msg[512];
	size_t n;

	vsnprintf(msg, sizeof(msg), fmt, ap);
	n = strlen(msg);
	while (n > 0 && (msg[n - 1] == '\n' || msg[n - 1] == '\r'))
		msg[--n] = '\0';
	VDB_LOG_DEBUG(s->cfg.name, "%s", msg);
}

/* ===== Connections and deadlines ===== */

static void
deadline_set(struct httpd *s, struct conn *c, uint64_t ms)
{
	if (c == NULL)
		return;
	pthread_mutex_lock(&s->lock);
	c->deadline = ms ? vdb_now_ms() + ms : 0;
	pthread_mutex_unlock(&s->lock);
}

/* Bring the deadline forward to now + ms if that is sooner. */
static void
deadline_cap(struct httpd *s, struct conn *c, uint64_t ms)
{
	uint64_t d;

	if (c == NULL)
		return;
	d = vdb_now_ms() + ms;
	pthread_mutex_lock(&s->lock);
	if (c->deadline == 0 || d < c->deadline)
		c->deadline = d;
	pthread_mutex_unlock(&s->lock);
}

static void
addr_text(const struct sockaddr *sa, char *buf, size_t len)
{
	buf[0] = '\0';
	if (sa == NULL)
		return;
	if (sa->sa_family == AF_INET)
		inet_ntop(AF_INET, &((const struct sockaddr_in *) sa)->sin_addr,
		    buf, (socklen_t) len);
	else if (sa->sa_family == AF_INET6)
		inet_ntop(AF_INET6,
		    &((const struct sockaddr_in6 *) sa)->sin6_addr, buf,
		    (socklen_t) len);
}

static void
conn_started(struct httpd *s, struct MHD_Connection *mc, void **ctx)
{
	const union MHD_ConnectionInfo *fi, *ai;
	struct conn *c = vdb_calloc(1, sizeof(*c));
	char addr[INET6_ADDRSTRLEN];
	struct peer *p;

	*ctx = c;
	if (c == NULL)
		return;
	fi = MHD_get_connection_info(mc, MHD_CONNECTION_INFO_CONNECTION_FD);
	ai = MHD_get_connection_info(mc, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
	c->fd = fi ? fi->connect_fd : -1;
	addr_text(ai ? ai->client_addr : NULL, addr, sizeof(addr));
	pthread_mutex_lock(&s->lock);
	for (p = s->peers; p != NULL && strcmp(p->addr, addr) != 0;
	    p = p->next)
		;
	if (p == NULL && (p = vdb_calloc(1, sizeof(*p))) != NULL) {
		snprintf(p->addr, sizeof(p->addr), "%s", addr);
		p->next = s->peers;
		s->peers = p;
	}
	c->peer = p;
	if (p != NULL)
		p->n++;
	s->n_conns++;
	if (s->n_conns > s->cfg.max_conns || (p != NULL &&
	    s->cfg.max_conns_per_ip && p->n > s->cfg.max_conns_per_ip))
		c->refuse = 1;
	c->deadline = vdb_now_ms() + s->cfg.header_timeout_ms;
	c->next = s->conns;
	if (s->conns)
		s->conns->prev = c;
	s->conns = c;
	pthread_mutex_unlock(&s->lock);
}

static void
conn_closed(struct httpd *s, void **ctx)
{
	struct conn *c = *ctx;
	struct peer **pp;

	if (c == NULL)
		return;
	pthread_mutex_lock(&s->lock);
	if (c->prev)
		c->prev->next = c->next;
	else
		s->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	s->n_conns--;
	if (c->peer != NULL && --c->peer->n == 0) {
		for (pp = &s->peers; *pp != c->peer; pp = &(*pp)->next)
			;
		*pp = c->peer->next;
		vdb_free(c->peer);
	}
	pthread_mutex_unlock(&s->lock);
	vdb_free(c);
	*ctx = NULL;
}

static void
on_connection(void *cls, struct MHD_Connection *mc, void **ctx,
    enum MHD_ConnectionNotificationCode code)
{
	if (code == MHD_CONNECTION_NOTIFY_STARTED)
		conn_started(cls, mc, ctx);
	else
		conn_closed(cls, ctx);
}

/* Shut down the sockets past their deadline. */
static void *
reaper_main(void *arg)
{
	struct httpd *s = arg;
	struct timespec ts;

	pthread_mutex_lock(&s->rlock);
	while (!s->reaper_stop) {
		uint64_t now = vdb_now_ms();
		unsigned late = 0;

		pthread_mutex_lock(&s->lock);
		for (struct conn *c = s->conns; c != NULL; c = c->next)
			if (c->deadline != 0 && c->deadline <= now &&
			    c->fd >= 0) {
				shutdown(c->fd, SHUT_RDWR);
				c->deadline = 0;
				late++;
			}
		pthread_mutex_unlock(&s->lock);
		atomic_fetch_add(&s->late, late);
		if (late)
			VDB_LOG_DEBUG(s->cfg.name, "closed %u connections past "
			    "their deadline", late);
		ts = vdb_deadline(REAP_INTERVAL_MS);
		pthread_cond_timedwait(&s->rcond, &s->rlock, &ts);
	}
	pthread_mutex_unlock(&s->rlock);
	return NULL;
}

/* ===== Requests ===== */

/* libmicrohttpd's URI log hook: the request line is in; make the request
 * with the URI as sent (the access handler only sees it decoded). */
static void *
on_uri(void *cls, const char *uri, struct MHD_Connection *mc)
{
	struct httpd *s = cls;
	const union MHD_ConnectionInfo *ci;
	struct httpd_req *r = vdb_calloc(1, sizeof(*r) + s->cfg.req_size);
	char *q;

	if (r == NULL)
		return NULL;
	if ((r->uri = vdb_strdup(uri ? uri : "/")) == NULL) {
		vdb_free(r);
		return NULL;
	}
	if ((q = strchr(r->uri, '?')) != NULL) {
		*q = '\0';
		r->query = q + 1;
	}
	r->s = s;
	r->mc = mc;
	r->fd = -1;
	ci = MHD_get_connection_info(mc, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
	r->c = ci ? ci->socket_context : NULL;
	ci = MHD_get_connection_info(mc, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
	addr_text(ci ? ci->client_addr : NULL, r->peer, sizeof(r->peer));
	atomic_fetch_add(&s->in_flight, 1);
	/* the headers must follow within the header timeout */
	deadline_cap(s, r->c, s->cfg.header_timeout_ms);
	return r;
}

static void
req_free(struct httpd_req *r)
{
	if (r->s->cfg.end != NULL)
		r->s->cfg.end(r->s->cfg.user, r);
	if (r->pp != NULL)
		MHD_destroy_post_processor(r->pp);
	if (r->fd >= 0)
		close(r->fd);
	if (r->upload != NULL) {
		unlink(r->upload);
		vdb_free(r->upload);
	}
	if (r->resp != NULL)
		MHD_destroy_response(r->resp);
	atomic_fetch_sub(&r->s->in_flight, 1);
	vdb_free(r->body);
	vdb_free(r->uri);
	vdb_free(r);
}

/* The request is over: free it; the connection waits for the next. */
static void
on_completed(void *cls, struct MHD_Connection *mc, void **con_cls,
    enum MHD_RequestTerminationCode toe)
{
	struct httpd *s = cls;
	struct httpd_req *r = *con_cls;

	(void) mc;
	(void) toe;
	if (r == NULL)
		return;
	deadline_set(s, r->c, s->cfg.idle_timeout_ms);
	req_free(r);
	*con_cls = NULL;
}

/* Keep resp (made, or NULL when that failed) as r's answer. */
static int
resp_keep(struct httpd_req *r, struct MHD_Response *resp, unsigned status,
    const char *type)
{
	if (resp == NULL)
		return -1;
	if (type != NULL)
		MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE,
		    type);
	r->resp = resp;
	r->status = status;
	return 0;
}

int
httpd_respond(struct httpd_req *r, unsigned status, const char *type,
    const char *body, size_t len)
{
	if (r->resp != NULL)
		return 0;   /* answered already */
	return resp_keep(r, MHD_create_response_from_buffer(len, (void *) body,
	    MHD_RESPMEM_MUST_COPY), status, type);
}

int
httpd_respond_fd(struct httpd_req *r, unsigned status, const char *type,
    int fd)
{
	struct stat st;

	if (r->resp != NULL || fstat(fd, &st) != 0) {
		close(fd);
		return -1;
	}
	if (resp_keep(r, MHD_create_response_from_fd64((uint64_t) st.st_size,
	    fd), status, type) != 0) {
		close(fd);
		return -1;
	}
	return 0;
}

/* Hand the response to libmicrohttpd (on its thread). */
static enum MHD_Result
respond_now(struct httpd_req *r)
{
	static const char oops[] = "{\"success\":false,\"error\":{\"code\":"
	    "\"INTERNAL\",\"message\":\"no response\"}}";
	enum MHD_Result ret;

	if (r->resp == NULL &&
	    httpd_respond(r, 500, "application/json", oops,
		sizeof(oops) - 1) != 0)
		return MHD_NO;
	r->state = RS_DONE;
	ret = MHD_queue_response(r->mc, r->status, r->resp);
	MHD_destroy_response(r->resp);
	r->resp = NULL;
	return ret;
}

/* A fixed JSON error, as our envelope has it. */
static void
respond_error(struct httpd_req *r, unsigned status, const char *code,
    const char *msg, int close_conn)
{
	char body[512];
	int n = snprintf(body, sizeof(body), "{\"success\":false,\"error\":"
	    "{\"code\":\"%s\",\"message\":\"%s\"}}", code, msg);

	if (httpd_respond(r, status, "application/json", body,
	    (size_t) n) == 0 && close_conn)
		MHD_add_response_header(r->resp, MHD_HTTP_HEADER_CONNECTION,
		    "close");
}

/* Multipart: the first file field goes to the temp file. */
static enum MHD_Result
on_post_data(void *cls, enum MHD_ValueKind kind, const char *key,
    const char *filename, const char *content_type,
    const char *transfer_encoding, const char *data, uint64_t off,
    size_t size)
{
	struct httpd_req *r = cls;

	(void) kind;
	(void) key;
	(void) content_type;
	(void) transfer_encoding;
	(void) off;
	if (filename == NULL || *filename == '\0')
		return MHD_YES;   /* a plain field: skip */
	if (!r->got_file)
		snprintf(r->file_key, sizeof(r->file_key), "%s",
		    key ? key : "");
	else if (strcmp(r->file_key, key ? key : "") != 0)
		return MHD_YES;   /* a later file field: skip */
	r->got_file = 1;
	if (size > 0 && r->upload_err == NULL &&
	    write(r->fd, data, size) != (ssize_t) size)
		r->upload_err = "cannot store the upload (disk full?)";
	return MHD_YES;
}

/* Headers are in: create the temp file an upload goes to. */
static void
upload_open(struct httpd_req *r)
{
	const char *ct = httpd_header(r, MHD_HTTP_HEADER_CONTENT_TYPE);
	const char *dir = r->s->cfg.tmp_dir ? r->s->cfg.tmp_dir : "/tmp";
	size_t n = strlen(dir) + 32;

	if ((r->upload = vdb_malloc(n)) == NULL) {
		r->upload_err = "out of memory";
		return;
	}
	snprintf(r->upload, n, "%s/vecdb-upload-XXXXXX", dir);
	if ((r->fd = mkostemp(r->upload, O_CLOEXEC)) < 0) {
		vdb_free(r->upload);
		r->upload = NULL;
		r->upload_err = "cannot create a temp file for the upload";
		return;
	}
	if (ct != NULL && strncasecmp(ct, "multipart/form-data", 19) == 0) {
		r->multipart = 1;
		r->pp = MHD_create_post_processor(r->mc, UPLOAD_BUF,
		    on_post_data, r);
		if (r->pp == NULL)
			r->upload_err = "the multipart form has no boundary";
	}
}

/* A piece of the body. */
static void
body_take(struct httpd_req *r, const char *data, size_t n)
{
	if (r->mode == HTTPD_BODY_FILE) {
		if (r->upload_err != NULL)
			return;
		if (r->multipart) {
			if (MHD_post_process(r->pp, data, n) != MHD_YES)
				r->upload_err = "the multipart form is "
				    "malformed";
		} else if (write(r->fd, data, n) != (ssize_t) n) {
			r->upload_err = "cannot store the upload (disk full?)";
		}
		return;
	}
	if (r->too_big)
		return;
	if (r->len + n > r->s->cfg.max_body) {
		r->too_big = 1;
		return;
	}
	if (r->len + n + 1 > r->cap) {
		size_t cap = r->cap ? r->cap : 4096;
		char *nb;
		while (cap < r->len + n + 1)
			cap *= 2;
		if ((nb = vdb_realloc(r->body, cap)) == NULL) {
			r->too_big = 2;
			return;
		}
		r->body = nb;
		r->cap = cap;
	}
	memcpy(r->body + r->len, data, n);
	r->len += n;
	r->body[r->len] = '\0';
}

/* The body is whole: finish the temp file. */
static void
upload_close(struct httpd_req *r)
{
	if (r->pp != NULL) {
		MHD_destroy_post_processor(r->pp);
		r->pp = NULL;
	}
	if (r->multipart && !r->got_file && r->upload_err == NULL)
		r->upload_err = "the form has no snapshot file field";
	if (r->fd >= 0) {
		if (fsync(r->fd) != 0 && r->upload_err == NULL)
			r->upload_err = "cannot store the upload";
		close(r->fd);
		r->fd = -1;
	}
}

static void
queue_push(struct httpd *s, struct httpd_req *r)
{
	pthread_mutex_lock(&s->qlock);
	r->qnext = NULL;
	if (s->qtail)
		s->qtail->qnext = r;
	else
		s->qhead = r;
	s->qtail = r;
	pthread_cond_signal(&s->qcond);
	pthread_mutex_unlock(&s->qlock);
}

static void *
worker_main(void *arg)
{
	struct httpd *s = arg;
	struct httpd_req *r;

	api_pool_join(&s->pool);
	for (;;) {
		pthread_mutex_lock(&s->qlock);
		while (s->qhead == NULL && !s->stopping)
			pthread_cond_wait(&s->qcond, &s->qlock);
		if ((r = s->qhead) == NULL) {
			pthread_mutex_unlock(&s->qlock);
			return NULL;   /* stopping, and nothing left */
		}
		if ((s->qhead = r->qnext) == NULL)
			s->qtail = NULL;
		pthread_mutex_unlock(&s->qlock);
		s->cfg.serve(s->cfg.user, r);
		MHD_resume_connection(r->mc);
	}
}

/* libmicrohttpd's access handler: called when the headers are in, for
 * each piece of the body, once the body is whole, and once resumed. */
static enum MHD_Result
on_access(void *cls, struct MHD_Connection *mc, const char *url,
    const char *method, const char *version, const char *upload_data,
    size_t *upload_data_size, void **con_cls)
{
	struct httpd *s = cls;
	struct httpd_req *r = *con_cls;
	const char *cl;

	(void) url;
	(void) version;
	if (r == NULL)
		return MHD_NO;   /* out of memory in on_uri */
	switch (r->state) {
	case RS_NEW:
		r->method = method;
		r->state = RS_BODY;
		if (r->c != NULL && r->c->refuse) {
			char msg[160];
			snprintf(msg, sizeof(msg), "too many connections "
			    "(the limit is %u, and %u from one address)",
			    s->cfg.max_conns, s->cfg.max_conns_per_ip);
			atomic_fetch_add(&s->refused, 1);
			respond_error(r, 503, "UNAVAILABLE", msg, 1);
			return respond_now(r);
		}
		r->mode = s->cfg.begin(s->cfg.user, r);
		if (r->resp != NULL)
			return respond_now(r);   /* refused */
		cl = httpd_header(r, MHD_HTTP_HEADER_CONTENT_LENGTH);
		if (r->mode == HTTPD_BODY_MEMORY && cl != NULL &&
		    strtoull(cl, NULL, 10) > s->cfg.max_body) {
			respond_error(r, 413, "RESOURCE_EXHAUSTED", "request "
			    "body is larger than the limit (--max-body)", 1);
			return respond_now(r);
		}
		if (r->mode == HTTPD_BODY_FILE)
			upload_open(r);
		deadline_set(s, r->c, s->cfg.body_timeout_ms);
		return MHD_YES;
	case RS_BODY:
		if (*upload_data_size != 0) {
			body_take(r, upload_data, *upload_data_size);
			*upload_data_size = 0;
			return MHD_YES;
		}
		deadline_set(s, r->c, 0);   /* ours to answer now */
		if (r->too_big) {
			respond_error(r, 413, "RESOURCE_EXHAUSTED", r->too_big
			    == 1 ? "request body is larger than the limit "
			    "(--max-body)" : "out of memory for the request "
			    "body", 0);
			return respond_now(r);
		}
		if (r->mode == HTTPD_BODY_FILE)
			upload_close(r);
		if (atomic_load(&s->closing)) {
			respond_error(r, 503, "UNAVAILABLE", "shutting down", 1);
			return respond_now(r);
		}
		r->state = RS_QUEUED;
		MHD_suspend_connection(mc);
		queue_push(s, r);
		return MHD_YES;
	case RS_QUEUED:
		return respond_now(r);   /* resumed by a worker */
	case RS_DONE:
	default:
		return MHD_NO;
	}
}

/* ===== Accessors ===== */

const char *
httpd_method(const struct httpd_req *r)
{
	return r->method ? r->method : "";
}

const char *
httpd_path(const struct httpd_req *r)
{
	return r->uri;
}

const char *
httpd_query(const struct httpd_req *r)
{
	return r->query;
}

const char *
httpd_header(const struct httpd_req *r, const char *name)
{
	return MHD_lookup_connection_value(r->mc, MHD_HEADER_KIND, name);
}

const char *
httpd_peer(const struct httpd_req *r)
{
	return r->peer;
}

void *
httpd_req_data(struct httpd_req *r)
{
	return r->data;
}

const char *
httpd_body(const struct httpd_req *r, size_t *len)
{
	*len = r->len;
	return r->body ? r->body : "";
}

const char *
httpd_upload(const struct httpd_req *r, const char **err)
{
	if (r->upload_err != NULL || r->upload == NULL) {
		*err = r->upload_err ? r->upload_err : "no upload";
		return NULL;
	}
	return r->upload;
}

/* ===== The server ===== */

uint16_t
httpd_port(const struct httpd *s)
{
	return s->port;
}

void
httpd_stats(struct httpd *s, struct httpd_stats *out)
{
	pthread_mutex_lock(&s->lock);
	out->connections = s->n_conns;
	pthread_mutex_unlock(&s->lock);
	out->refused = atomic_load(&s->refused);
	out->late = atomic_load(&s->late);
}

/*
 * Open files for n connections and our own (LMDB, logs, nng): raise the
 * soft limit towards the hard one if needed. @return the connections
 * that fit.
 */
static unsigned
files_fit(const char *name, unsigned n)
{
	rlim_t want = (rlim_t) n + n / 8 + 16 + FD_RESERVE;
	struct rlimit rl;
	unsigned fit;

	if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur >= want)
		return n;
	rl.rlim_cur = rl.rlim_max < want ? rl.rlim_max : want;
	if (setrlimit(RLIMIT_NOFILE, &rl) != 0 ||
	    getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur >= want)
		return n;
	fit = rl.rlim_cur > 2 * FD_RESERVE + 16 ?
	    (unsigned) ((rl.rlim_cur - FD_RESERVE - 16) * 8 / 9) : 64;
	VDB_LOG_WARN(name, "open files are limited to %llu: serving at most "
	    "%u connections, not %u", (unsigned long long) rl.rlim_cur, fit,
	    n);
	return fit;
}

static int
addr_parse(const char *host, uint16_t port, struct sockaddr_storage *ss,
    int *v6)
{
	struct sockaddr_in *a4 = (struct sockaddr_in *) ss;
	struct sockaddr_in6 *a6 = (struct sockaddr_in6 *) ss;

	memset(ss, 0, sizeof(*ss));
	if (inet_pton(AF_INET, host, &a4->sin_addr) == 1) {
		a4->sin_family = AF_INET;
		a4->sin_port = htons(port);
		*v6 = 0;
		return VECDB_OK;
	}
	if (inet_pton(AF_INET6, host, &a6->sin6_addr) == 1) {
		a6->sin6_family = AF_INET6;
		a6->sin6_port = htons(port);
		*v6 = 1;
		return VECDB_OK;
	}
	return vdb_err(VECDB_EINVAL, "cannot listen on '%s': not an IPv4 or "
	    "IPv6 address", host);
}

static void
workers_stop(struct httpd *s)
{
	pthread_mutex_lock(&s->qlock);
	s->stopping = 1;
	pthread_cond_broadcast(&s->qcond);
	pthread_mutex_unlock(&s->qlock);
	for (unsigned i = 0; i < s->n_workers; i++)
		pthread_join(s->workers[i], NULL);
	s->n_workers = 0;
}

static void
reaper_stop(struct httpd *s)
{
	if (!s->reaper_started)
		return;
	pthread_mutex_lock(&s->rlock);
	s->reaper_stop = 1;
	pthread_cond_signal(&s->rcond);
	pthread_mutex_unlock(&s->rlock);
	pthread_join(s->reaper, NULL);
	s->reaper_started = 0;
}

static void
httpd_free(struct httpd *s)
{
	while (s->peers) {
		struct peer *p = s->peers;
		s->peers = p->next;
		vdb_free(p);
	}
	pthread_mutex_destroy(&s->lock);
	pthread_mutex_destroy(&s->qlock);
	pthread_cond_destroy(&s->qcond);
	pthread_mutex_destroy(&s->rlock);
	pthread_cond_destroy(&s->rcond);
	vdb_free(s->workers);
	vdb_free(s->cert_pem);
	vdb_free(s->key_pem);
	vdb_free(s);
}

static int
daemon_start(struct httpd *s)
{
	const struct httpd_config *c = &s->cfg;
	struct sockaddr_storage ss;
	const union MHD_DaemonInfo *di;
	unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL |
	    MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG;
	unsigned hard;
	int v6, rv;

	if ((rv = addr_parse(c->host, c->port, &ss, &v6)) != VECDB_OK)
		return rv;
	if (v6)
		flags |= MHD_USE_IPv6;
	if (c->tls_cert != NULL) {
		if (MHD_is_feature_supported(MHD_FEATURE_TLS) != MHD_YES)
			return vdb_err(VECDB_EINVAL, "this libmicrohttpd has "
			    "no TLS");
		if ((rv = vdb_file_read(c->tls_cert, &s->cert_pem)) != VECDB_OK ||
		    (rv = vdb_file_read(c->tls_key, &s->key_pem)) != VECDB_OK)
			return rv;
		flags |= MHD_USE_TLS;
	}
	/* Past max_conns we still accept, to answer 503; past this hard
	 * limit libmicrohttpd closes new connections at once. */
	hard = s->cfg.max_conns + s->cfg.max_conns / 8 + 16;
	{
		struct MHD_OptionItem opts[] = {
			{ MHD_OPTION_SOCK_ADDR, 0, &ss },
			{ MHD_OPTION_CONNECTION_LIMIT, hard, NULL },
			/* a backstop: our deadlines come first */
			{ MHD_OPTION_CONNECTION_TIMEOUT, (intptr_t)
			    ((c->idle_timeout_ms + c->body_timeout_ms) / 1000 +
			    1), NULL },
			{ MHD_OPTION_NOTIFY_CONNECTION, (intptr_t)
			    on_connection, s },
			{ MHD_OPTION_NOTIFY_COMPLETED, (intptr_t) on_completed,
			    s },
			{ MHD_OPTION_URI_LOG_CALLBACK, (intptr_t) on_uri, s },
			{ MHD_OPTION_EXTERNAL_LOGGER, (intptr_t) mhd_log, s },
			{ MHD_OPTION_LISTEN_BACKLOG_SIZE, 1024, NULL },
			/* the request line and headers must fit in this */
			{ MHD_OPTION_CONNECTION_MEMORY_LIMIT, 65536, NULL },
			{ MHD_OPTION_HTTPS_MEM_CERT, 0, s->cert_pem },
			{ MHD_OPTION_HTTPS_MEM_KEY, 0, s->key_pem },
			{ MHD_OPTION_END, 0, NULL },
		};
		if (c->tls_cert == NULL)
			opts[9].option = MHD_OPTION_END;
		s->d = MHD_start_daemon(flags, 0, NULL, NULL, on_access, s,
		    MHD_OPTION_ARRAY, opts, MHD_OPTION_END);
	}
	if (s->d == NULL && c->tls_cert != NULL && addr_bindable(c->host,
	    c->port))
		return vdb_err(VECDB_EINVAL, "cannot serve on %s:%u (is the "
		    "TLS certificate and key a valid PEM pair?)", c->host,
		    (unsigned) c->port);
	if (s->d == NULL)
		return vdb_err(VECDB_EIO, "cannot serve on %s:%u: the address "
		    "is in use or cannot be bound", c->host, (unsigned) c->port);
	di = MHD_get_daemon_info(s->d, MHD_DAEMON_INFO_BIND_PORT);
	s->port = di ? di->port : c->port;
	return VECDB_OK;
}

int
httpd_start(const struct httpd_config *cfg, struct httpd **out)
{
	struct httpd *s;
	int rv;

	if ((cfg->tls_cert == NULL) != (cfg->tls_key == NULL))
		return vdb_err(VECDB_EINVAL, "TLS needs both a certificate and "
		    "a key");
	if ((s = vdb_calloc(1, sizeof(*s))) == NULL)
		return vdb_err(VECDB_ENOMEM, "out of memory");
	s->cfg = *cfg;
	if (s->cfg.name == NULL)
		s->cfg.name = "HTTP";
	if (s->cfg.host == NULL)
		s->cfg.host = "127.0.0.1";
	if (s->cfg.threads == 0)
		s->cfg.threads = 4;
	if (s->cfg.max_conns == 0)
		s->cfg.max_conns = HTTPD_DEFAULT_MAX_CONNS;
	if (s->cfg.header_timeout_ms == 0)
		s->cfg.header_timeout_ms = HTTPD_DEFAULT_HEADER_TIMEOUT;
	if (s->cfg.body_timeout_ms == 0)
		s->cfg.body_timeout_ms = HTTPD_DEFAULT_BODY_TIMEOUT;
	if (s->cfg.idle_timeout_ms == 0)
		s->cfg.idle_timeout_ms = HTTPD_DEFAULT_IDLE_TIMEOUT;
	s->cfg.max_conns = files_fit(s->cfg.name, s->cfg.max_conns);
	pthread_mutex_init(&s->lock, NULL);
	pthread_mutex_init(&s->qlock, NULL);
	pthread_cond_init(&s->qcond, NULL);
	pthread_mutex_init(&s->rlock, NULL);
	vdb_cond_init(&s->rcond);
	if ((s->workers = vdb_calloc(s->cfg.threads,
	    sizeof(*s->workers))) == NULL) {
		httpd_free(s);
		return vdb_err(VECDB_ENOMEM, "out of memory");
	}
	api_pool_init(&s->pool, s->cfg.threads);
	/* Before any thread starts: a request may be served (and read the
	 * caller's copy of the handle, say for /metrics) before we return. */
	*out = s;
	for (; s->n_workers < s->cfg.threads; s->n_workers++)
		if (pthread_create(&s->workers[s->n_workers], NULL,
		    worker_main, s) != 0) {
			rv = vdb_err(VECDB_ENOMEM, "cannot start the HTTP "
			    "workers");
			goto fail;
		}
	if (pthread_create(&s->reaper, NULL, reaper_main, s) != 0) {
		rv = vdb_err(VECDB_ENOMEM, "cannot start the HTTP reaper");
		goto fail;
	}
	s->reaper_started = 1;
	if ((rv = daemon_start(s)) != VECDB_OK)
		goto fail;
	return VECDB_OK;
fail:
	reaper_stop(s);
	workers_stop(s);
	httpd_free(s);
	*out = NULL;
	return rv;
}

void
httpd_stop(struct httpd *s)
{
	MHD_socket lfd;
	uint64_t until;

	if (s == NULL)
		return;
	/* no new connections; the workers finish what is queued and
	 * resume those connections, whose answers then go out */
	lfd = MHD_quiesce_daemon(s->d);
	atomic_store(&s->closing, 1);
	workers_stop(s);
	until = vdb_now_ms() + 2000;
	pthread_mutex_lock(&s->lock);
	for (struct conn *c = s->conns; c != NULL; c = c->next)
		if (c->deadline != 0)   /* idle or still sending: done */
			shutdown(c->fd, SHUT_RDWR);
	pthread_mutex_unlock(&s->lock);
	while (atomic_load(&s->in_flight) > 0 && vdb_now_ms() < until)
		usleep(2000);
	reaper_stop(s);
	MHD_stop_daemon(s->d);
	if (lfd != MHD_INVALID_SOCKET)
		close(lfd);
	httpd_free(s);
}
