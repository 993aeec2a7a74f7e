/*
 * router_topology.c: the topology file, the shard sockets and the point
 * to shard map.
 */
#include <nng/nng.h>
#include <stdlib.h>
#include <string.h>

#include "router_impl.h"
#include "vdb.h"

/* Let go of c: the last member holding it closes its socket. */
static void
conn_release(struct router_conns *cs, struct router_conn *c)
{
	struct router_conn **p;
	unsigned left;

	pthread_mutex_lock(&cs->lock);
	if ((left = --c->refs) == 0)
		for (p = &cs->head; *p != NULL; p = &(*p)->next)
			if (*p == c) {
				*p = c->next;
				break;
			}
	pthread_mutex_unlock(&cs->lock);
	if (left > 0)
		return;
	proto_rpc_pool_fini(&c->pool);
	nng_close(c->sock);   /* no pipe event after this */
	vdb_free(c->url);
	vdb_free(c);
}

/* Free one shard's strings, and let go of its sockets. */
static void
shard_fini(struct router_shard *s, struct router_conns *cs)
{
	for (size_t i = 0; i < s->n_members; i++)
		if (s->members[i].conn != NULL)
			conn_release(cs, s->members[i].conn);
	vdb_free(s->members);
	vdb_free(s->primary);
	for (size_t i = 0; i < s->n_replicas; i++)
		vdb_free(s->replicas[i]);
	vdb_free(s->replicas);
}

void
router_topology_free(router_topology *t)
{
	if (t == NULL)
		return;
	for (size_t i = 0; i < t->n; i++)
		shard_fini(&t->shards[i], t->conns);
	if (t->tls != NULL)
		nng_tls_config_free(t->tls);
	vdb_free(t->shards);
	vdb_free(t);
}

/* A url as nng takes it: "scheme://rest", not empty. */
static int
url_check(const char *u, size_t i)
{
	if (u == NULL || strstr(u, "://") == NULL || strlen(u) > 1024)
		return vdb_err(VECDB_EINVAL, "topology: shards[%zu]: a url "
		    "like tcp://host:port is required", i);
	return VECDB_OK;
}

/* The replicas of shard i. */
static int
replicas_parse(const json_t *a, size_t i, struct router_shard *s)
{
	json_t *v;
	size_t k;
	int rv;

	if (a == NULL || json_is_null(a))
		return VECDB_OK;
	if (!json_is_array(a))
		return vdb_err(VECDB_EINVAL, "topology: shards[%zu].replicas "
		    "must be a list", i);
	if (json_array_size(a) >= ROUTER_MEMBERS_MAX)
		return vdb_err(VECDB_EINVAL, "topology: shards[%zu] has more "
		    "than %d replicas", i, ROUTER_MEMBERS_MAX - 1);
	if ((s->replicas = vdb_calloc(json_array_size(a) + 1,
	    sizeof(char *))) == NULL)
		return vdb_err(VECDB_ENOMEM, "out of memory");
	json_array_foreach(a, k, v) {
		if ((rv = url_check(json_string_value(v), i)) != VECDB_OK)
			return rv;
		if ((s->replicas[k] = vdb_strdup(json_string_value(v))) ==
		    NULL)
			return vdb_err(VECDB_ENOMEM, "out of memory");
		s->n_replicas = k + 1;
	}
	return VECDB_OK;
}

/* Shard i of the file into its slot t->shards[id]. */
static int
shard_parse(const json_t *o, size_t i, router_topology *t)
{
	json_t *id = json_object_get(o, "id");
	const char *primary = json_string_value(json_object_get(o, "primary"));
	struct router_shard *s;
	int rv;

	if (!json_is_object(o))
		return vdb_err(VECDB_EINVAL, "topology: shards[%zu] must be an "
		    "object", i);
	if (!json_is_integer(id) || json_integer_value(id) < 0 ||
	    (size_t) json_integer_value(id) >= t->n)
		return vdb_err(VECDB_EINVAL, "topology: shards[%zu].id must be "
		    "an integer in 0..%zu", i, t->n - 1);
	s = &t->shards[json_integer_value(id)];
	if (s->primary != NULL)
		return vdb_err(VECDB_EINVAL, "topology: shard id %lld appears "
		    "twice", (long long) json_integer_value(id));
	if ((rv = url_check(primary, i)) != VECDB_OK)
		return rv;
	s->id = (uint32_t) json_integer_value(id);
	if ((s->primary = vdb_strdup(primary)) == NULL)
		return vdb_err(VECDB_ENOMEM, "out of memory");
	return replicas_parse(json_object_get(o, "replicas"), i, s);
}

/* Shard s's members: the primary, then its replicas. */
static int
members_init(struct router_shard *s)
{
	s->n_members = 1 + s->n_replicas;
	if ((s->members = vdb_calloc(s->n_members, sizeof(*s->members))) ==
	    NULL)
		return vdb_err(VECDB_ENOMEM, "out of memory");
	s->members[0].url = s->primary;
	s->members[0].primary = 1;
	for (size_t k = 0; k < s->n_replicas; k++)
		s->members[1 + k].url = s->replicas[k];
	return VECDB_OK;
}

static int
str_cmp(const void *a, const void *b)
{
	return strcmp(*(const char *const *) a, *(const char *const *) b);
}

/* EINVAL when a url is listed twice: one node is one member. */
static int
urls_unique(const router_topology *t)
{
	const char **all;
	size_t n = 0;
	int rv = VECDB_OK;

	for (size_t i = 0; i < t->n; i++)
		n += t->shards[i].n_members;
	if ((all = vdb_malloc(n * sizeof(*all))) == NULL)
		return vdb_err(VECDB_ENOMEM, "out of memory");
	n = 0;
	for (size_t i = 0; i < t->n; i++)
		for (size_t k = 0; k < t->shards[i].n_members; k++)
			all[n++] = t->shards[i].members[k].url;
	qsort(all, n, sizeof(*all), str_cmp);
	for (size_t i = 1; i < n && rv == VECDB_OK; i++)
		if (strcmp(all[i - 1], all[i]) == 0)
			rv = vdb_err(VECDB_EINVAL, "topology: %s is listed "
			    "twice", all[i]);
	vdb_free(all);
	return rv;
}

/* The parsed document into a topology. */
static int
topology_parse(const json_t *root, router_topology *t)
{
	json_t *a = json_object_get(root, "shards"), *o;
	size_t i;
	int rv;

	if (!json_is_array(a) || json_array_size(a) == 0 ||
	    json_array_size(a) > ROUTER_SHARDS_MAX)
		return vdb_err(VECDB_EINVAL, "topology: \"shards\" must be a "
		    "list of 1..%d shards", ROUTER_SHARDS_MAX);
	t->n = json_array_size(a);
	if ((t->shards = vdb_calloc(t->n, sizeof(*t->shards))) == NULL)
		return vdb_err(VECDB_ENOMEM, "out of memory");
	json_array_foreach(a, i, o)
		if ((rv = shard_parse(o, i, t)) != VECDB_OK)
			return rv;
	for (i = 0; i < t->n; i++)
		if ((rv = members_init(&t->shards[i])) != VECDB_OK)
			return rv;
	return urls_unique(t);
}

int
router_topology_from_json(const json_t *root, router_topology **out)
{
	router_topology *t;
	int rv;

	if ((t = vdb_calloc(1, sizeof(*t))) == NULL)
		return vdb_err(VECDB_ENOMEM, "out of memory");
	if ((rv = topology_parse(root, t)) != VECDB_OK) {
		router_topology_free(t);
		return rv;
	}
	*out = t;
	return VECDB_OK;
}

int
router_topology_load(const char *path, router_topology **out)
{
	json_error_t je;
	json_t *root = json_load_file(path, 0, &je);
	int rv;

	if (root == NULL)
		return vdb_err(VECDB_EINVAL, "topology %s: line %d: %s", path,
		    je.line, je.text);
	rv = router_topology_from_json(root, out);
	json_decref(root);
	return rv;
}

/* nng's pipe events keep c->pipes: a socket with none is not connected. */
static void
pipe_event(nng_pipe p, nng_pipe_ev ev, void *arg)
{
	struct router_conn *c = arg;

	(void) p;
	if (ev == NNG_PIPE_EV_ADD_POST)
		__atomic_store_n(&c->was_connected, 1, __ATOMIC_RELAXED);
	__atomic_add_fetch(&c->pipes, ev == NNG_PIPE_EV_ADD_POST ? 1 : -1,
	    __ATOMIC_RELAXED);
}

void
router_conns_init(struct router_conns *cs)
{
	pthread_mutex_init(&cs->lock, NULL);
	cs->head = NULL;
}

void
router_conns_fini(struct router_conns *cs)
{
	pthread_mutex_destroy(&cs->lock);
}

/* The socket open for url, held once more, or a new one dialing. */
static int
conn_get(struct router_conns *cs, const char *url, nng_tls_config *tls,
    struct router_conn **out)
{
	struct router_conn *c;
	int rv = VECDB_OK;

	pthread_mutex_lock(&cs->lock);
	for (c = cs->head; c != NULL && strcmp(c->url, url) != 0; c = c->next)
		;
	if (c != NULL)
		c->refs++;
	else if ((c = vdb_calloc(1, sizeof(*c))) == NULL ||
	    (c->url = vdb_strdup(url)) == NULL)
		rv = vdb_err(VECDB_ENOMEM, "out of memory");
	else if ((rv = proto_rpc_dial(url, 0, tls, pipe_event, c,
	    &c->sock)) == VECDB_OK) {
		proto_rpc_pool_init(&c->pool, c->sock);
		c->refs = 1;
		c->next = cs->head;
		cs->head = c;
	}
	pthread_mutex_unlock(&cs->lock);
	if (rv != VECDB_OK && c != NULL) {
		vdb_free(c->url);
		vdb_free(c);
		c = NULL;
	}
	*out = c;
	return rv;
}

int
router_topology_connect(router_topology *t, struct router_conns *conns,
    nng_tls_config *tls)
{
	int rv;

	t->conns = conns;
	if (tls != NULL) {
		nng_tls_config_hold(tls);
		t->tls = tls;
	}
	for (size_t i = 0; i < t->n; i++)
		for (size_t k = 0; k < t->shards[i].n_members; k++) {
			struct router_member *m = &t->shards[i].members[k];
			if ((rv = conn_get(conns, m->url, tls, &m->conn)) !=
			    VECDB_OK)
				return vdb_err(rv, "shard %u: %s",
				    t->shards[i].id, vecdb_errmsg());
		}
	return VECDB_OK;
}

/* ===== Point -> shard ===== */

/* FNV-1a 64 over the point key: the engine's own encoding (vdb_id_key),
 * so the two cannot drift apart (router_place_test pins the result). */
static uint64_t
id_hash(const vecdb_id *id)
{
	uint8_t key[VDB_ID_KEY_MAX];
	size_t len = vdb_id_key(id, key);
	uint64_t h = 14695981039346656037ULL;

	for (size_t i = 0; i < len; i++)
		h = (h ^ key[i]) * 1099511628211ULL;
	return h;
}

/* Jump consistent hash, Lamping & Veach 2014, Figure 1. */
uint32_t
router_shard_of(const vecdb_id *id, uint32_t n)
{
	uint64_t key = id_hash(id);
	int64_t b = -1, j = 0;

	while (j < (int64_t) n) {
		b = j;
		key = key * 2862933555777941143ULL + 1;
		j = (int64_t) ((double) (b + 1) *
		    ((double) (1LL << 31) / (double) ((key >> 33) + 1)));
	}
	return (uint32_t) b;
}
