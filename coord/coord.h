/*
 * coord.h: the cluster's coordinator, etcd (Debian's etcd-server 3.4),
 * spoken to over its v3 HTTP/JSON gateway with libcurl and jansson.
 *
 * What vecdb keeps there, under a prefix per cluster (--cluster-name,
 * default "vecdb"):
 *
 *   /<cluster>/members/<shard>/<node-id>  {"shard", "node_id", "role",
 *        "rpc", "admin", "last_seq", "term"}, under the node's lease
 *
 * A node writes its own key (coord_member_*), renewing the lease every
 * second and putting the value again when it changed (its last seq alone
 * every 10 s at most: each put is a revision etcd keeps until it is
 * compacted); it vanishes with the lease when the node does. A
 * router reads the prefix into a topology (coord_topology_json) and
 * follows the store's revision.
 *
 * Every call is blocking, with a deadline; an endpoint that does not
 * answer is skipped for the next of the list. Thread-safe.
 */
#ifndef COORD_H
#define COORD_H

#include <jansson.h>
#include <stdint.h>

#define COORD_CLUSTER_DEFAULT "vecdb"
#define COORD_CALL_TIMEOUT_MS 2000     /* one gateway call */
#define COORD_LEASE_TTL_S 2            /* a member's lease (etcd's least) */
#define COORD_RENEW_MS 400             /* its renewal and value update */
#define COORD_SEQ_PUT_MS 10000         /* a last_seq alone, at most this
					  often */
#define COORD_CLAIM_WAIT_MS 4000       /* a member key still held at start
					  is waited for this long (a lease
					  of the node's previous run expires
					  within COORD_LEASE_TTL_S and
					  etcd's 500 ms revocation tick) */

typedef struct coord coord;

/* PEM files for https endpoints: the CA that signed etcd's certificate
 * (NULL: the system's), and a client certificate and key (NULL: none). */
struct coord_tls {
	const char *ca;
	const char *cert;
	const char *key;
};

/*
 * Endpoints "http://host:port[,https://host:port...]" (etcd's client
 * urls), keys under "/<cluster>/"; @p tls (NULL: none; copied) for the
 * https ones. Connects lazily.
 * @return VECDB_OK, VECDB_EINVAL (no endpoint, a bad cluster name),
 *	VECDB_ENOMEM.
 */
int coord_open(const char *endpoints, const char *cluster,
    const struct coord_tls *tls, coord **out);
void coord_close(coord *c);

/* The key prefix, "/<cluster>/". */
const char *coord_prefix(const coord *c);

/* ===== Keys and leases (the gateway's calls) ===== */

/* One key-value pair of a range. */
struct coord_kv {
	char *key;
	char *value;
	int64_t mod_revision;
	int64_t lease;
};

void coord_kvs_free(struct coord_kv *kvs, size_t n);

/*
 * Every key under @p prefix, in key order, and the store's revision.
 * @return VECDB_OK, VECDB_EUNAVAILABLE (no endpoint answered: the message
 *	says what each said), VECDB_EIO (an answer that is not etcd's).
 */
int coord_range(coord *c, const char *prefix, struct coord_kv **kvs,
    size_t *n, int64_t *revision);

/* Put key = value, attached to @p lease (0: none). */
int coord_put(coord *c, const char *key, const char *value, int64_t lease);

/* Delete key (absent is fine). */
int coord_delete(coord *c, const char *key);

/*
 * The value of one key: VECDB_OK with *value (vdb_free), *lease and the
 * revision that last changed it (*mod_revision; may be NULL), or
 * VECDB_ENOTFOUND. *revision (may be NULL): the store's, either way.
 */
int coord_get(coord *c, const char *key, char **value, int64_t *lease,
    int64_t *mod_revision, int64_t *revision);

/*
 * Create key = value on @p lease unless the key exists, in one
 * transaction: *created 1 or 0, and *revision the store's revision after
 * it (the create's own when created: no two are equal, ever).
 */
int coord_create(coord *c, const char *key, const char *value, int64_t lease,
    int *created, int64_t *revision);

/* Delete key if its value is still @p value (a transaction). */
int coord_delete_if(coord *c, const char *key, const char *value);

/* Put key = value on @p lease if its value is still @p old (a
 * transaction): *done 1 or 0. */
int coord_replace(coord *c, const char *key, const char *old,
    const char *value, int64_t lease, int *done);

/* Grant a lease of @p ttl_s seconds. */
int coord_lease_grant(coord *c, int64_t ttl_s, int64_t *lease);

/*
 * Renew @p lease once. VECDB_ENOTFOUND when it has expired (its keys are
 * gone).
 */
int coord_lease_keepalive(coord *c, int64_t lease);

/* Revoke @p lease: its keys go at once. */
int coord_lease_revoke(coord *c, int64_t lease);

/* The seconds @p lease has left (etcd rounds them): VECDB_ENOTFOUND
 * when it expired. */
int coord_lease_ttl(coord *c, int64_t lease, int64_t *ttl_s);

/* ===== Watches ===== */

/*
 * A watch of the keys under a prefix: one streamed request to etcd's
 * gateway (/v3/watch), read on the calling thread until it ends or
 * another thread stops it.
 */
typedef struct coord_watch coord_watch;

/* Called once the watch is in place, and after each change etcd reports
 * (one call may cover several). */
typedef void (*coord_watch_fn)(void *arg);

int coord_watch_new(coord *c, coord_watch **out);

/*
 * Watch every key under @p prefix: @p fn when the watch is in place (so
 * that the caller reads what it follows: changes before it are not
 * reported) and after every change, until coord_watch_stop or the stream
 * ends (the endpoint went away, etcd cancelled the watch). One watch at
 * a time on @p w. An endpoint that does not take the watch is skipped
 * next time.
 * @return VECDB_OK once stopped; otherwise VECDB_EUNAVAILABLE saying why
 *	the stream ended (the caller watches again), or VECDB_ENOMEM.
 */
int coord_watch_run(coord_watch *w, const char *prefix, coord_watch_fn fn,
    void *arg);

/* From any thread: coord_watch_run returns soon, and at once from then on. */
void coord_watch_stop(coord_watch *w);

/* Free a watch no thread is running. NULL is fine. */
void coord_watch_free(coord_watch *w);

/* ===== Members ===== */

#define COORD_MEMBERS "members/"     /* under the prefix: the members */

/* What a node says of itself. */
struct coord_member_info {
	uint32_t shard;
	const char *node_id;
	const char *role;            /* "primary" or "replica" */
	const char *rpc;             /* the url peers dial */
	const char *admin;           /* its admin HTTP url */
	uint64_t last_seq;
	uint64_t term;
	int64_t elect_rev;           /* the store's revision when it last saw
					its shard without a leader (0: never) */
};

/* Fills *out with the member's current state; called before each
 * renewal. */
typedef void (*coord_member_fn)(void *arg, struct coord_member_info *out);

typedef struct coord_member coord_member;

/*
 * Register a node: grant a lease, create its key, and keep both fresh
 * from a thread (every COORD_RENEW_MS: keepalive, then the value from
 * @p fn when it changed). A key that exists is waited for up to
 * COORD_CLAIM_WAIT_MS (the node's previous run, killed: its lease
 * expires), then refused with VECDB_EEXIST (another process with the
 * same node id renews it).
 * A lease that expired (the store was unreachable too long) is granted
 * again and the key put anew. The first registration is made before this
 * returns, so that a node is listed once it says it started.
 * @return VECDB_OK, VECDB_EUNAVAILABLE (etcd did not answer), VECDB_EEXIST,
 *	VECDB_ENOMEM.
 */
int coord_member_start(coord *c, coord_member_fn fn, void *arg,
    coord_member **out);

/* Stop renewing and revoke the lease (the key goes at once). NULL is
 * fine. */
void coord_member_stop(coord_member *m);

/* The member's lease now (it changes when one expired), for keys that
 * must go with the member. */
int64_t coord_member_lease(coord_member *m);

/* When (vdb_now_ms, taken before the request left) the lease was last
 * renewed: the store keeps it at least COORD_LEASE_TTL_S from then. */
uint64_t coord_member_renewed_ms(coord_member *m);

/* Put the member's value now, whatever changed. */
int coord_member_refresh(coord_member *m);

/* ===== Topology ===== */

/*
 * The topology of the members registered now, in the shape of a router's
 * topology file: {"shards": [{"id", "primary", "replicas"}]}, shards
 * 0..max; a shard's primary is its member with role primary of the
 * highest term (ties: the highest last_seq), the others its replicas. A
 * shard with no primary, or a gap in the shard ids, is VECDB_EUNAVAILABLE
 * with a message naming it (a router keeps its topology meanwhile).
 * @p revision: the store's, to notice changes.
 */
int coord_topology_json(coord *c, json_t **out, int64_t *revision);

#endif /* COORD_H */
