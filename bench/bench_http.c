/*
 * bench_http.c: what the REST modes (rest, ingest) share to talk to a
 * server: requests on a keep-alive civetweb client connection, the JSON
 * of vectors and of upsert batches, and serving a database in-process.
 */
#include <civetweb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "bench.h"

int
bench_http_call(struct mg_connection *c, const char *method, const char *path,
    const char *body, size_t len, char *rbuf, size_t rlen)
{
	size_t got = 0;
	char err[128];
	int n;

	/* One write per request, as a well-behaved client does. */
	mg_printf(c, "%s %s HTTP/1.1\r\nHost: b\r\n"
		     "Content-Type: application/json\r\nContent-Length: %zu"
		     "\r\n\r\n%.*s", method, path, len, (int) len, body);
	if (mg_get_response(c, err, sizeof(err), 60000) < 0)
		return -1;
	while ((n = mg_read(c, rbuf + got, rlen - 1 - got)) > 0)
		if ((got += (size_t) n) == rlen - 1)
			got = 0;   /* only the status matters past rbuf */
	rbuf[got] = '\0';
	return n < 0 ? -1 : mg_get_response_info(c)->status_code;
}

struct mg_connection *
bench_http_connect(unsigned port)
{
	struct mg_connection *c;
	char err[128];

	if ((c = mg_connect_client("127.0.0.1", (int) port, 0, err,
	    sizeof(err))) == NULL)
		bench_die("connect to 127.0.0.1:%u: %s", port, err);
	return c;
}

void
bench_http_ok(struct mg_connection *c, const char *method, const char *path,
    const char *body, char *rbuf, size_t rlen)
{
	int st = bench_http_call(c, method, path, body, strlen(body), rbuf,
	    rlen);

	if (st != 200)
		bench_die("%s %s: status %d: %.300s", method, path, st, rbuf);
}

size_t
bench_json_floats(char *buf, size_t len, size_t off, const float *v,
    size_t dim, int exact)
{
	off += (size_t) snprintf(buf + off, len - off, "[");
	for (size_t j = 0; j < dim; j++)
		off += (size_t) snprintf(buf + off, len - off,
		    exact ? "%s%.9g" : "%s%.6f", j ? "," : "", (double) v[j]);
	return off + (size_t) snprintf(buf + off, len - off, "]");
}

size_t
bench_upsert_cap(size_t m, size_t dim)
{
	/* %.9g of a float in [-1, 1) and its comma: at most 17 bytes */
	return m * (dim * 18 + 64) + 64;
}

size_t
bench_upsert_json(char *body, size_t cap, size_t first, size_t m,
    const float *v, size_t dim)
{
	size_t off = (size_t) snprintf(body, cap, "{\"vectors\":[");

	for (size_t i = 0; i < m; i++) {
		off += (size_t) snprintf(body + off, cap - off,
		    "%s{\"id\":%zu,\"metadata\":{\"i\":%zu},\"data\":",
		    i ? "," : "", first + i, first + i);
		off = bench_json_floats(body, cap, off, v + i * dim, dim, 1);
		off += (size_t) snprintf(body + off, cap - off, "}");
	}
	return off + (size_t) snprintf(body + off, cap - off, "]}");
}

unsigned long long
bench_http_pending(struct mg_connection *c, const char *coll)
{
	char path[256], rbuf[8192];
	const char *p;

	snprintf(path, sizeof(path), "/collections/%s", coll);
	bench_http_ok(c, "GET", path, "", rbuf, sizeof(rbuf));
	if ((p = strstr(rbuf, "\"pending_count\":")) == NULL)
		bench_die("no pending_count in %.300s", rbuf);
	return strtoull(p + 16, NULL, 10);
}

struct api_server *
bench_serve(vecdb *db, struct api_backend *b, unsigned threads)
{
	struct api_server_config sc = { 0 };
	api_server *srv;

	mg_init_library(0);
	api_backend_local_init(b, db);
	sc.host = "127.0.0.1";
	sc.threads = threads;
	bench_check(api_server_start(&sc, b, &srv), "server");
	return srv;
}
