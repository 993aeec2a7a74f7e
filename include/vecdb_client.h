/*
 * vecdb_client.h: the C client of vecdb's binary API (docs/WIRE.md), as
 * served by `vecdb-router --rpc URL` and `vecdb-node --rpc URL`.
 *
 * The calls mirror include/vecdb.h: the same types, the same error codes,
 * the same detail message through vecdb_errmsg(). The differences:
 * - filters are JSON text (NULL or "" for none) instead of a compiled
 *   vecdb_filter; the filter fields of the params structs are ignored;
 * - a server that does not answer within the connection's timeout, or is
 *   gone, gives VECDB_EUNAVAILABLE with a message naming the method and
 *   URL;
 * - a server's error comes back as the vecdb_err of its wire code
 *   (docs/WIRE.md, "Codes") with the server's message.
 *
 * Threading: a vecdb_client may be used from any number of threads at
 * once (one nng req0 socket, one nng context per call). vecdb_errmsg() is
 * per thread, as in the embedded API.
 */
#ifndef VECDB_CLIENT_H
#define VECDB_CLIENT_H

#include <stddef.h>
#include <stdint.h>

#include "vecdb.h"

#ifdef __cplusplus
extern "C" {
#endif

/** A connection to one server. */
typedef struct vecdb_client vecdb_client;

#define VECDB_CLIENT_TIMEOUT_DEFAULT_MS 10000 /* timeout_ms 0 */

/**
 * Connect to a server.
 * @param[in] url the server's rpc URL ("tcp://127.0.0.1:7000").
 * @param[in] api_key sent with every request; NULL or "" for none.
 * @param[in] timeout_ms how long one call may take, send and answer
 *	(0: VECDB_CLIENT_TIMEOUT_DEFAULT_MS).
 * @param[out] out the client; close with vecdb_client_close().
 * @return VECDB_OK, VECDB_EINVAL (bad URL or key), VECDB_ENOMEM,
 *	VECDB_EIO (the socket could not be made).
 * @note The connection is made in the background and re-made when it
 *	breaks: connect succeeds while the server is down, and the first
 *	call then fails with VECDB_EUNAVAILABLE after the timeout.
 */
int vecdb_client_connect(const char *url, const char *api_key,
    uint32_t timeout_ms, vecdb_client **out);

/** Mutual TLS for a tls+tcp:// url: PEM file paths. */
typedef struct vecdb_client_tls {
	const char *ca;    /**< the CA that signed the server's certificate */
	const char *cert;  /**< the client's certificate, signed by a CA the
			        server trusts */
	const char *key;   /**< the client's private key */
} vecdb_client_tls;

/**
 * vecdb_client_connect over mutual TLS: a "tls+tcp://host:port" url, the
 * server's certificate checked against tls->ca and the client's
 * presented. A server whose certificate another CA signed is never
 * reached: calls fail with VECDB_EUNAVAILABLE.
 * @return as vecdb_client_connect; VECDB_EINVAL also for a url that is
 *	not tls+tcp:// or a file that is missing or no PEM.
 */
int vecdb_client_connect_tls(const char *url, const char *api_key,
    uint32_t timeout_ms, const vecdb_client_tls *tls, vecdb_client **out);

/**
 * Close the connection and free @p c (NULL is fine). No call may be in
 * progress on it.
 */
void vecdb_client_close(vecdb_client *c);

/*
 * Every call below returns VECDB_OK or a vecdb_err, with a detail in
 * vecdb_errmsg(): the errors of its vecdb.h twin, plus VECDB_EUNAVAILABLE
 * (timeout, server gone) and VECDB_EINVAL (an argument the codec refuses,
 * or a malformed answer). Out parameters are written only on success.
 */

/* ===== Collections ===== */

/** Create a collection. @return as vecdb_collection_create(). */
int vecdb_client_collection_create(vecdb_client *c,
    const vecdb_collection_config *cfg);

/**
 * Read a collection's config and stats.
 * @param[out] cfg the config (may be NULL).
 * @param[out] st its stats (may be NULL).
 * @return VECDB_OK, VECDB_ENOTFOUND.
 */
int vecdb_client_collection_get(vecdb_client *c, const char *name,
    vecdb_collection_config *cfg, vecdb_collection_stats *st);

/**
 * List the collection names, sorted.
 * @param[out] names caller frees with vecdb_names_free(names, count).
 */
int vecdb_client_collection_list(vecdb_client *c, char ***names,
    size_t *count);

/** Delete a collection. @return VECDB_OK, VECDB_ENOTFOUND. */
int vecdb_client_collection_delete(vecdb_client *c, const char *name);

/**
 * Set, change or remove (type VECDB_QUANT_NONE) a collection's
 * quantization, as vecdb_collection_set_quantization(): stored when the
 * call returns (through a router, on every shard's primary), the index
 * rebuilt in the background; vecdb_client_collection_get() shows the
 * config with its defaults filled in and, in the stats, quant_in_force.
 * @return VECDB_OK, VECDB_ENOTFOUND, VECDB_EINVAL (the setting, as
 *	vecdb_collection_set_quantization() checks it), VECDB_EREADONLY
 *	(sent to a replica).
 */
int vecdb_client_collection_set_quantization(vecdb_client *c,
    const char *name, const vecdb_quant_config *q);

/* ===== Points ===== */

/**
 * Write points, atomically, as vecdb_insert() / vecdb_upsert() /
 * vecdb_update(). Ids of kind VECDB_ID_NONE are assigned by the server
 * and written back into pts[i].id on success.
 */
int vecdb_client_insert(vecdb_client *c, const char *coll, vecdb_point *pts,
    size_t n);
int vecdb_client_upsert(vecdb_client *c, const char *coll, vecdb_point *pts,
    size_t n);
int vecdb_client_update(vecdb_client *c, const char *coll, vecdb_point *pts,
    size_t n);

/**
 * Write points with their sparse vectors, as vecdb_write() (sparse NULL:
 * none; a router splits them with their points).
 */
int vecdb_client_write(vecdb_client *c, const char *coll, vecdb_write_op op,
    vecdb_point *pts, const vecdb_point_sparse *sparse, size_t n);

/**
 * Delete points; missing ids are skipped.
 * @param[out] deleted how many existed (may be NULL).
 */
int vecdb_client_delete(vecdb_client *c, const char *coll,
    const vecdb_id *ids, size_t n, size_t *deleted);

/**
 * Read one point with its vector and payload.
 * @param[out] out free with vecdb_record_free().
 * @return VECDB_OK, VECDB_ENOTFOUND (collection or point).
 */
int vecdb_client_get(vecdb_client *c, const char *coll, const vecdb_id *id,
    vecdb_record **out);

/* ===== Queries ===== */

/**
 * Search, as vecdb_search(); p->filter is ignored, @p filter_json used.
 * @param[out] out free with vecdb_records_free().
 */
int vecdb_client_search(vecdb_client *c, const char *coll,
    const vecdb_search_params *p, const char *filter_json,
    vecdb_records **out);

/**
 * @p n searches (1..1024) in one request, as vecdb_search_batch().
 * @param[in] filters n JSON texts (NULL entries: none), or NULL for none.
 * @param[out] out n lists; free with vecdb_records_free_array(out, n).
 */
int vecdb_client_search_batch(vecdb_client *c, const char *coll,
    const vecdb_search_params *params, const char *const *filters, size_t n,
    vecdb_records ***out);

/** As vecdb_recommend(); @param[out] out free with vecdb_records_free(). */
int vecdb_client_recommend(vecdb_client *c, const char *coll,
    const vecdb_recommend_params *p, const char *filter_json,
    vecdb_records **out);

/** As vecdb_discover(); @param[out] out free with vecdb_records_free(). */
int vecdb_client_discover(vecdb_client *c, const char *coll,
    const vecdb_discover_params *p, const char *filter_json,
    vecdb_records **out);

/**
 * Page through points in id order from @p start (NULL: the first), as
 * vecdb_scroll(); out->has_next / out->next say where to continue.
 */
int vecdb_client_scroll(vecdb_client *c, const char *coll,
    const vecdb_id *start, uint32_t limit, const char *filter_json,
    int with_payload, int with_vector, vecdb_records **out);

/**
 * Search a sparse vector, as vecdb_search_sparse(); p->filter is ignored,
 * @p filter_json used. Through a router the query is weighed by the
 * whole collection's IDF.
 * @param[out] out free with vecdb_records_free().
 */
int vecdb_client_search_sparse(vecdb_client *c, const char *coll,
    const vecdb_sparse_search_params *p, const char *filter_json,
    vecdb_records **out);

/** Count the points matching @p filter_json (NULL: all). */
int vecdb_client_count(vecdb_client *c, const char *coll,
    const char *filter_json, uint64_t *out);

/* ===== Payload indexes ===== */

/** As vecdb_payload_index_create(). */
int vecdb_client_payload_index_create(vecdb_client *c, const char *coll,
    const char *field, vecdb_field_schema schema);

/** As vecdb_payload_index_delete(). */
int vecdb_client_payload_index_delete(vecdb_client *c, const char *coll,
    const char *field);

/** As vecdb_payload_index_list(); free *out with free(). */
int vecdb_client_payload_index_list(vecdb_client *c, const char *coll,
    vecdb_payload_index_info **out, size_t *count);

/* ===== Snapshots ===== */

/**
 * As vecdb_snapshot_create_named() (@p name NULL: the server picks one).
 * Through a router: one snapshot per shard under one name, described as
 * a whole (docs/ROUTER.md).
 */
int vecdb_client_snapshot_create(vecdb_client *c, const char *coll,
    const char *name, vecdb_snapshot_info *out);

/** As vecdb_snapshot_list(); free *out with free(). */
int vecdb_client_snapshot_list(vecdb_client *c, const char *coll,
    vecdb_snapshot_info **out, size_t *count);

/** As vecdb_snapshot_get(). */
int vecdb_client_snapshot_get(vecdb_client *c, const char *coll,
    const char *name, vecdb_snapshot_info *out);

/** As vecdb_snapshot_delete(). */
int vecdb_client_snapshot_delete(vecdb_client *c, const char *coll,
    const char *name);

/** As vecdb_snapshot_restore(). */
int vecdb_client_snapshot_restore(vecdb_client *c, const char *coll,
    const char *name);

/* ===== Read options (a router's, docs/ROUTER.md) ===== */

/**
 * Set the read options of every later call on @p c, from any thread:
 * @p primary_only reads from shard primaries only (read-your-writes);
 * @p allow_partial lets a router answer searches, scrolls and counts
 * without shards it cannot reach. A single node ignores both.
 */
void vecdb_client_read_options(vecdb_client *c, int primary_only,
    int allow_partial);

/**
 * The shards the last successful call of this thread lacked (a partial
 * answer), or 0 when it was complete.
 * @param[out] ids the shard ids (may be NULL), valid until this thread's
 *	next call.
 */
size_t vecdb_client_missing_shards(const uint32_t **ids);

/* ===== Server ===== */

/** The server's counters, as vecdb_stats_get(). */
int vecdb_client_stats(vecdb_client *c, vecdb_stats *out);

#define VECDB_CLIENT_TEXT_MAX 256

/** What a server says of itself. */
typedef struct vecdb_health {
	char status[VECDB_CLIENT_TEXT_MAX + 1];   /* "ok" */
	char version[VECDB_CLIENT_TEXT_MAX + 1];  /* VECDB_VERSION */
	char role[VECDB_CLIENT_TEXT_MAX + 1];     /* primary, replica, router */
	char node_id[VECDB_CLIENT_TEXT_MAX + 1];
	uint64_t last_seq;                        /* last WAL sequence number */
} vecdb_health;

/** Ask the server whether it is up. */
int vecdb_client_health(vecdb_client *c, vecdb_health *out);

#ifdef __cplusplus
}
#endif

#endif /* VECDB_CLIENT_H */
