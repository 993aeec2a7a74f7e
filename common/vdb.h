/*
 * vdb.h: what every module shares: error details, allocation, logging.
 * Depends on nothing but libc and the error codes of include/vecdb.h.
 */
#ifndef VDB_H
#define VDB_H

#include <pthread.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

#include "vecdb.h"

/* ===== Errors ===== */

/*
 * Record @p code with a printf-style detail message for vecdb_errmsg() on
 * this thread, and return @p code, so that a failure reads
 *	return vdb_err(VECDB_EINVAL, "dimension %u out of range", d);
 */
int vdb_err(int code, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Clear this thread's detail message. */
void vdb_err_clear(void);

/* Copy this thread's detail message into buf (for handing to another
 * thread) and install a copied message on this thread. */
void vdb_err_save(char *buf, size_t len);
void vdb_err_restore(int code, const char *msg);

/* ===== Memory ===== */

/*
 * Every allocation goes through these, and every result is checked. A test
 * can make the Nth allocation from now fail (vdb_alloc_fail_after(n)) to
 * walk the unwind paths; n = 0 turns that off.
 */
void *vdb_malloc(size_t n);
void *vdb_calloc(size_t count, size_t size);
void *vdb_realloc(void *p, size_t n);
char *vdb_strdup(const char *s);

/* A record's owned parts (vector, payload, sparse vectors) freed and
 * cleared; the record itself is the caller's. */
void vdb_record_fini(vecdb_record *r);
/* A deep copy of src into dst (VECDB_ENOMEM leaves dst empty). */
int vdb_record_copy(const vecdb_record *src, vecdb_record *dst);
void vdb_free(void *p);
void vdb_alloc_fail_after(uint64_t n);

/* ===== Logging ===== */

enum vdb_log_level {
	VDB_LOG_LEVEL_ERROR = 0,
	VDB_LOG_LEVEL_WARN,
	VDB_LOG_LEVEL_INFO,
	VDB_LOG_LEVEL_DEBUG
};

/* The level in force: VECDB_LOG (error|warn|info|debug), default info. */
int vdb_log_level(void);
void vdb_log_write(int level, const char *module, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Formats only when the level is enabled. */
#define VDB_LOG(level, mod, ...)                                   \
	do {                                                       \
		if ((level) <= vdb_log_level())                    \
			vdb_log_write((level), (mod), __VA_ARGS__); \
	} while (0)
#define VDB_LOG_ERROR(mod, ...) VDB_LOG(VDB_LOG_LEVEL_ERROR, mod, __VA_ARGS__)
#define VDB_LOG_WARN(mod, ...) VDB_LOG(VDB_LOG_LEVEL_WARN, mod, __VA_ARGS__)
#define VDB_LOG_INFO(mod, ...) VDB_LOG(VDB_LOG_LEVEL_INFO, mod, __VA_ARGS__)
#define VDB_LOG_DEBUG(mod, ...) VDB_LOG(VDB_LOG_LEVEL_DEBUG, mod, __VA_ARGS__)

/* ===== JSON ===== */

/*
 * The deepest nesting of arrays and objects in a JSON text, found in one
 * pass outside strings, without parsing. jansson parses recursively: a few
 * thousand levels overflow a server thread's stack (measured: ~925 levels
 * crashed a civetweb worker), so depth is checked before parsing.
 */
size_t vdb_json_depth(const char *s, size_t len);

/*
 * Rewrite, in place, every real of a JSON text (a number with a fraction
 * or an exponent, outside strings) in the fewest significant digits that
 * read back as the same double, printed as jansson prints reals ("0.1",
 * not the "0.10000000000000001" of its 17 digits; "1.0" stays a real).
 * The text only shrinks. Returns its new length.
 */
size_t vdb_json_reals_shortest(char *s);

/* ===== Byte order ===== */

/* Big-endian keys sort in value order; values are little-endian. */

static inline void
put_be32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t) (v >> 24);
	p[1] = (uint8_t) (v >> 16);
	p[2] = (uint8_t) (v >> 8);
	p[3] = (uint8_t) v;
}

static inline uint32_t
get_be32(const uint8_t *p)
{
	return (uint32_t) p[0] << 24 | (uint32_t) p[1] << 16 |
	    (uint32_t) p[2] << 8 | p[3];
}

static inline void
put_be64(uint8_t *p, uint64_t v)
{
	put_be32(p, (uint32_t) (v >> 32));
	put_be32(p + 4, (uint32_t) v);
}

static inline uint64_t
get_be64(const uint8_t *p)
{
	return (uint64_t) get_be32(p) << 32 | get_be32(p + 4);
}

/* Little-endian values: x86 and arm64 are little-endian, so memcpy. */
static inline void
put_le32(uint8_t *p, uint32_t v)
{
	memcpy(p, &v, 4);
}

static inline uint32_t
get_le32(const uint8_t *p)
{
	uint32_t v;
	memcpy(&v, p, 4);
	return v;
}

static inline void
put_le64(uint8_t *p, uint64_t v)
{
	memcpy(p, &v, 8);
}

static inline uint64_t
get_le64(const uint8_t *p)
{
	uint64_t v;
	memcpy(&v, p, 8);
	return v;
}

/* ===== Point ids (vdb_ids.c) ===== */

#define VDB_ID_KEY_MAX 17  /* tag + 16-byte UUID */

/*
 * Encode @p id as its point key, [1][u64 BE] or [2][16 bytes]: the
 * engine's LMDB key (ids sort numbers first, each kind in value order)
 * and what the router hashes to place a point. Returns the length (9 or
 * 17); key has VDB_ID_KEY_MAX bytes.
 */
size_t vdb_id_key(const vecdb_id *id, uint8_t *key);

/* Decode a point key; VECDB_ECORRUPT if malformed. */
int vdb_key_id(const uint8_t *key, size_t len, vecdb_id *out);

/*
 * Read a whole small file (a PEM, say) into a new NUL-terminated string
 * (vdb_free it). VECDB_EINVAL "cannot read PATH: why", or VECDB_ENOMEM.
 */
int vdb_file_read(const char *path, char **out);

/* ===== Time ===== */

/* Monotonic milliseconds, for timeouts. */
uint64_t vdb_now_ms(void);

/* Monotonic seconds with sub-microsecond resolution, for latencies. */
double vdb_now_s(void);

/*
 * Initialise a condition variable whose timed waits count on the
 * monotonic clock, which no change of the wall clock moves: every
 * condition that is given vdb_deadline() times. 0 or an errno value.
 */
int vdb_cond_init(pthread_cond_t *cv);

/* The monotonic time @p ms from now, for pthread_cond_timedwait() on a
 * vdb_cond_init() condition. */
struct timespec vdb_deadline(uint64_t ms);

#endif /* VDB_H */
