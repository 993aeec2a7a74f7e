/*
 * api_httpd.h: the HTTP/1.1 server under our front ends (the REST API of
 * `vecdb serve` and vecdb-router, and vecdb-node's admin HTTP).
 *
 * libmicrohttpd reads and writes every connection from one epoll thread;
 * a request is handed to a pool of workers only once it has arrived
 * whole, so an idle or slow connection holds no worker, and workers take
 * requests first come, first served. Deadlines are absolute: the request
 * line and headers must arrive within header_timeout_ms of the
 * connection's start (or of the end of its previous request, plus
 * idle_timeout_ms), and a body within body_timeout_ms of its headers,
 * however slowly they trickle. Connections over max_conns (or over
 * max_conns_per_ip from one address) are answered 503 at once and closed.
 */
#ifndef API_HTTPD_H
#define API_HTTPD_H

#include <stddef.h>
#include <stdint.h>

struct httpd;
struct httpd_req;

/* How a request body is kept until the request is served. */
enum httpd_body {
	HTTPD_BODY_MEMORY,   /* in memory, up to max_body (413 past it) */
	HTTPD_BODY_FILE      /* in a temp file: the raw body, or the first
				file field of a multipart/form-data body */
};

#define HTTPD_DEFAULT_MAX_CONNS       10000
#define HTTPD_DEFAULT_HEADER_TIMEOUT  5000    /* ms */
#define HTTPD_DEFAULT_BODY_TIMEOUT    60000   /* ms */
#define HTTPD_DEFAULT_IDLE_TIMEOUT    30000   /* ms */

struct httpd_config {
	const char *name;           /* in log lines: "HTTP", "ADMIN" */
	const char *host;           /* IPv4 or IPv6 address to bind */
	uint16_t port;              /* 0: a free port */
	const char *tls_cert;       /* PEM files: both, or neither */
	const char *tls_key;
	unsigned threads;           /* workers that serve requests */
	unsigned max_conns;         /* 0: HTTPD_DEFAULT_MAX_CONNS */
	unsigned max_conns_per_ip;  /* 0: no limit */
	unsigned header_timeout_ms; /* 0: the defaults above */
	unsigned body_timeout_ms;
	unsigned idle_timeout_ms;
	uint64_t max_body;          /* HTTPD_BODY_MEMORY bodies */
	const char *tmp_dir;        /* HTTPD_BODY_FILE bodies; NULL: /tmp */
	size_t req_size;            /* bytes of httpd_req_data(), zeroed */

	/*
	 * The request line and headers are in. Runs on the I/O thread: must
	 * not block. May refuse the request by responding now (the body is
	 * then not read); otherwise says how to keep the body.
	 */
	enum httpd_body (*begin)(void *user, struct httpd_req *r);
	/* The request is whole: respond. Runs on a worker. */
	void (*serve)(void *user, struct httpd_req *r);
	/* The request is over (answered, or its connection lost): free
	 * what begin and serve kept in httpd_req_data(). May be NULL. */
	void (*end)(void *user, struct httpd_req *r);
	void *user;
};

/*
 * Listen and serve. Raises the open-files limit to its hard maximum if
 * max_conns needs it.
 * @return VECDB_OK, VECDB_EINVAL (bad address, TLS files), or VECDB_EIO
 *	when the port cannot be bound; the message says why.
 */
int httpd_start(const struct httpd_config *cfg, struct httpd **out);

/* The port bound. */
uint16_t httpd_port(const struct httpd *s);

/* What /metrics shows of a server. */
struct httpd_stats {
	unsigned connections;       /* open now */
	uint64_t refused;           /* answered 503 for the limits */
	uint64_t late;              /* closed past a deadline */
};
void httpd_stats(struct httpd *s, struct httpd_stats *out);

/* Stop accepting, finish the requests in flight, close, free. NULL ok. */
void httpd_stop(struct httpd *s);

/* ===== A request ===== */

const char *httpd_method(const struct httpd_req *r);
/* The path as sent, still %-encoded, without the query. */
const char *httpd_path(const struct httpd_req *r);
/* The query string as sent (after '?'), or NULL. */
const char *httpd_query(const struct httpd_req *r);
/* A request header (case-insensitive name), or NULL. */
const char *httpd_header(const struct httpd_req *r, const char *name);
/* The client's address as text. */
const char *httpd_peer(const struct httpd_req *r);
/* The app's per-request storage (config req_size bytes, zeroed). */
void *httpd_req_data(struct httpd_req *r);

/* A HTTPD_BODY_MEMORY body (NUL-terminated; "" when none). */
const char *httpd_body(const struct httpd_req *r, size_t *len);
/* A HTTPD_BODY_FILE body: its temp file (removed when the request
 * ends), or NULL with *err saying why it could not be kept. */
const char *httpd_upload(const struct httpd_req *r, const char **err);

/*
 * Respond (once a request): a copy of body with its Content-Type, or an
 * open file sent whole (the fd is taken, also on failure). Callable from
 * begin (to refuse) and from serve.
 * @return 0, or -1 when out of memory (the connection is then closed).
 */
int httpd_respond(struct httpd_req *r, unsigned status, const char *type,
    const char *body, size_t len);
int httpd_respond_fd(struct httpd_req *r, unsigned status, const char *type,
    int fd);

/*
 * Decode %XX escapes of s[0..n) into out (cap bytes, NUL-terminated).
 * '+' stays '+' (paths). @return the decoded length, or -1 for a bad
 * escape or no room.
 */
int httpd_url_decode(const char *s, size_t n, char *out, size_t cap);

/*
 * The value of name in a query string (a=1&b=2), decoded, with '+' read
 * as a space. @return its length, -1 when absent, -2 when malformed or
 * too long for buf.
 */
int httpd_query_var(const char *qs, const char *name, char *buf,
    size_t cap);

#endif /* API_HTTPD_H */
