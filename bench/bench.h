/* bench.h: helpers shared by the vecdb-bench subcommands. */
#ifndef BENCH_H
#define BENCH_H

#include <stddef.h>
#include <stdint.h>

#include "vecdb.h"

/* Monotonic seconds. */
double bench_now(void);

/* xorshift PRNG, uniform in [-1, 1). */
float bench_randf(uint64_t *s);

/* qsort comparator for doubles. */
int bench_dcmp(const void *a, const void *b);

/* Print a message and exit(1). */
void bench_die(const char *fmt, ...) __attribute__((format(printf, 1, 2),
    noreturn));

/* Exit with the library's message unless rv is VECDB_OK. */
void bench_check(int rv, const char *what);

/* A fresh temp dir (caller frees), and its removal. */
char *bench_tmpdir(void);
void bench_rmrf(const char *dir);

/* ===== HTTP to a REST server (bench/bench_http.c) ===== */

struct mg_connection;
struct api_backend;
struct api_server;

/*
 * One request on an open keep-alive connection; the answer's body into
 * rbuf (cut at rlen - 1, NUL-terminated). Returns the HTTP status, or -1
 * when no answer came.
 */
int bench_http_call(struct mg_connection *c, const char *method,
    const char *path, const char *body, size_t len, char *rbuf, size_t rlen);

/* Connect to 127.0.0.1:port or die. */
struct mg_connection *bench_http_connect(unsigned port);

/* A request that must answer 200 (or die); the body into rbuf. */
void bench_http_ok(struct mg_connection *c, const char *method,
    const char *path, const char *body, char *rbuf, size_t rlen);

/*
 * Append "[v0,v1,...]" at buf + off (len the buffer's size); returns the
 * new offset. exact: %.9g, so that each float parses back to itself;
 * otherwise %.6f, the shorter text of a query that need not be exact.
 */
size_t bench_json_floats(char *buf, size_t len, size_t off, const float *v,
    size_t dim, int exact);

/*
 * The body of POST /collections/:c/vectors/upsert for the m points of v
 * (m rows of dim floats) with ids first.., each with payload {"i": id}.
 * Returns its length; cap must be at least bench_upsert_cap(m, dim).
 */
size_t bench_upsert_json(char *body, size_t cap, size_t first, size_t m,
    const float *v, size_t dim);
size_t bench_upsert_cap(size_t m, size_t dim);

/* The pending_count of collection coll (summed over shards behind a
 * router). */
unsigned long long bench_http_pending(struct mg_connection *c,
    const char *coll);

/*
 * Serve db over REST on a free loopback port with `threads` request
 * workers, as the in-process modes do; b must outlive the server.
 */
struct api_server *bench_serve(vecdb *db, struct api_backend *b,
    unsigned threads);

/* Subcommands. */
int bench_rest(int argc, char **argv);
int bench_repl(int argc, char **argv);  /* bench/repl.c */
int bench_update(int argc, char **argv); /* bench/update.c */
int bench_ingest(int argc, char **argv); /* bench/ingest.c */
int bench_sparse(int argc, char **argv); /* bench/sparse.c */
int bench_ann_main(int argc, char **argv); /* bench/ann.c */
int bench_gt_main(int argc, char **argv);

#endif
