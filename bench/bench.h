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

/* Subcommands. */
int bench_rest(int argc, char **argv);
int bench_repl(int argc, char **argv);  /* bench/repl.c */
int bench_update(int argc, char **argv); /* bench/update.c */

#endif
