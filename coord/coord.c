/*
 * coord.c: etcd's v3 HTTP/JSON gateway (coord.h) with libcurl: keys and
 * values travel base64-encoded (OpenSSL's EVP_EncodeBlock), 64-bit
 * numbers as JSON strings.
 */
#include <curl/curl.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "coord.h"
#include "vdb.h"

#define ENDPOINTS_MAX 8
#define SHARDS_MAX 1024        /* shard ids a topology may hold */

struct coord {
	char *endpoint[ENDPOINTS_MAX];
	size_t n;
	atomic_size_t good;          /* the endpoint that answered last */
	char *ca, *cert, *key;       /* for https endpoints, or NULL */
	char prefix[160];
};

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;

static void
curl_init(void)
{
	curl_global_init(CURL_GLOBAL_DEFAULT);
}

int
coord_open(const char *endpoints, const char *cluster,
    const struct coord_tls *tls, coord **out)
{
	coord *c;
	char *list, *tok, *save = NULL;

	*out = NULL;
	if (cluster == NULL || *cluster == '\0' || strlen(cluster) > 128 ||
	    strpbrk(cluster, "/ \t\n") != NULL)
		return vdb_err(VECDB_EINVAL, "cluster name '%s': 1 to 128 "
		    "characters, no '/' or spaces", cluster ? cluster : "");
	if (endpoints == NULL || *endpoints == '\0')
		return vdb_err(VECDB_EINVAL, "no etcd endpoint");
	if ((c = vdb_calloc(1, sizeof(*c))) == NULL ||
	    (list = vdb_strdup(endpoints)) == NULL) {
		vdb_free(c);
		return vdb_err(VECDB_ENOMEM, "out of memory");
	}
	for (tok = strtok_r(list, ",", &save); tok != NULL;
	    tok = strtok_r(NULL, ",", &save)) {
		size_t len = strlen(tok);
		while (len > 0 && tok[len - 1] == '/')
			tok[--len] = '\0';
		if (strncmp(tok, "http://", 7) != 0 &&
		    strncmp(tok, "https://", 8) != 0) {
			vdb_free(list);
			coord_close(c);
			return vdb_err(VECDB_EINVAL, "etcd endpoint '%s': "
			    "http://host:port or https://host:port", tok);
		}
		if (c->n == ENDPOINTS_MAX ||
		    (c->endpoint[c->n++] = vdb_strdup(tok)) == NULL) {
			vdb_free(list);
			coord_close(c);
			return vdb_err(c->n == ENDPOINTS_MAX ? VECDB_EINVAL :
			    VECDB_ENOMEM, "at most %d etcd endpoints",
			    ENDPOINTS_MAX);
		}
	}
	vdb_free(list);
	if (c->n == 0) {
		coord_close(c);
		return vdb_err(VECDB_EINVAL, "no etcd endpoint");
	}
	if (tls != NULL && ((tls->ca && (c->ca = vdb_strdup(tls->ca)) == NULL) ||
	    (tls->cert && (c->cert = vdb_strdup(tls->cert)) == NULL) ||
	    (tls->key && (c->key = vdb_strdup(tls->key)) == NULL))) {
		coord_close(c);
		return vdb_err(VECDB_ENOMEM, "out of memory");
	}
	snprintf(c->prefix, sizeof(c->prefix), "/%s/", cluster);
	atomic_init(&c->good, 0);
	pthread_once(&curl_once, curl_init);
	*out = c;
	return VECDB_OK;
}

void
coord_close(coord *c)
{
	if (c == NULL)
		return;
	for (size_t i = 0; i < c->n; i++)
		vdb_free(c->endpoint[i]);
	vdb_free(c->ca);
	vdb_free(c->cert);
	vdb_free(c->key);
	vdb_free(c);
}

const char *
coord_prefix(const coord *c)
{
	return c->prefix;
}

/* ===== base64 ===== */

/* n bytes as a new base64 string. */
static char *
b64(const void *p, size_t n)
{
	char *out = vdb_malloc(4 * ((n + 2) / 3) + 1);

	if (out != NULL)
		EVP_EncodeBlock((unsigned char *) out, p, (int) n);
	return out;
}

/* A base64 string as a new NUL-terminated string, or NULL. */
static char *
unb64(const char *s)
{
	size_t len = strlen(s), pad = 0;
	char *out = vdb_malloc(3 * (len / 4) + 1);
	int n;

	if (out == NULL || len % 4 != 0)
		goto bad;
	if ((n = EVP_DecodeBlock((unsigned char *) out,
	    (const unsigned char *) s, (int) len)) < 0)
		goto bad;
	while (pad < 2 && len > pad && s[len - 1 - pad] == '=')
		pad++;
	out[n - (int) pad] = '\0';
	return out;
bad:
	vdb_free(out);
	return NULL;
}

/* An int64 that etcd sends as a string (or, rarely, a number); 0 if
 * absent. */
static int64_t
i64_of(json_t *o, const char *key)
{
	json_t *v = json_object_get(o, key);

	if (json_is_string(v))
		return strtoll(json_string_value(v), NULL, 10);
	return json_is_integer(v) ? (int64_t) json_integer_value(v) : 0;
}

/* ===== Calls ===== */

struct buf {
	char *p;
	size_t len;
};

static size_t
on_body(char *data, size_t size, size_t nmemb, void *arg)
{
	struct buf *b = arg;
	size_t n = size * nmemb;
	char *np;

	if (b->len + n > (64u << 20) ||
	    (np = vdb_realloc(b->p, b->len + n + 1)) == NULL)
		return 0;
	memcpy(np + b->len, data, n);
	b->p = np;
	b->len += n;
	b->p[b->len] = '\0';
	return n;
}

/* What every request to etcd sets on its handle: POST text (JSON) to
 * url, the answer to fn(arg), the TLS files, curl's message into err. */
static void
easy_set(coord *c, CURL *h, const char *url, struct curl_slist *hdr,
    const char *text, curl_write_callback fn, void *arg, char *err)
{
	curl_easy_setopt(h, CURLOPT_URL, url);
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdr);
	curl_easy_setopt(h, CURLOPT_POSTFIELDS, text);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, fn);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, arg);
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_ERRORBUFFER, err);
	if (c->ca != NULL)
		curl_easy_setopt(h, CURLOPT_CAINFO, c->ca);
	if (c->cert != NULL)
		curl_easy_setopt(h, CURLOPT_SSLCERT, c->cert);
	if (c->key != NULL)
		curl_easy_setopt(h, CURLOPT_SSLKEY, c->key);
}

/*
 * POST body (a JSON object, taken; NULL is out of memory) to path on the
 * first endpoint that answers, starting with the one that answered last.
 * *out: the answer, unless out is NULL.
 */
static int
call(coord *c, const char *path, json_t *body, json_t **out)
{
	char *text = json_dumps(body, JSON_COMPACT);
	char why[1024] = "";
	size_t start = atomic_load(&c->good);
	int rv = VECDB_EUNAVAILABLE;
	json_t *ans = NULL;

	json_decref(body);
	if (text == NULL)
		return vdb_err(VECDB_ENOMEM, "out of memory");
	for (size_t k = 0; k < c->n && rv == VECDB_EUNAVAILABLE; k++) {
		size_t i = (start + k) % c->n;
		struct curl_slist *hdr = NULL;
		struct buf b = { NULL, 0 };
		char url[512], err[CURL_ERROR_SIZE] = "";
		long status = 0;
		CURL *h = curl_easy_init();
		CURLcode cc;
		json_error_t je;

		if (h == NULL) {
			rv = vdb_err(VECDB_ENOMEM, "out of memory");
			break;
		}
		snprintf(url, sizeof(url), "%s%s", c->endpoint[i], path);
		hdr = curl_slist_append(hdr, "Content-Type: application/json");
		easy_set(c, h, url, hdr, text, on_body, &b, err);
		curl_easy_setopt(h, CURLOPT_TIMEOUT_MS,
		    (long) COORD_CALL_TIMEOUT_MS);
		cc = curl_easy_perform(h);
		curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
		curl_slist_free_all(hdr);
		curl_easy_cleanup(h);
		if (cc != CURLE_OK) {
			size_t w = strlen(why);
			snprintf(why + w, sizeof(why) - w, "%s%s: %s",
			    w ? "; " : "", c->endpoint[i],
			    err[0] ? err : curl_easy_strerror(cc));
			vdb_free(b.p);
			continue;
		}
		atomic_store(&c->good, i);
		ans = b.p ? json_loadb(b.p, b.len, 0, &je) : NULL;
		if (ans == NULL)
			rv = vdb_err(VECDB_EIO, "etcd %s%s: HTTP %ld, not "
			    "JSON", c->endpoint[i], path, status);
		else if (status != 200) {
			json_t *m = json_object_get(ans, "message");
			rv = vdb_err(VECDB_EIO, "etcd %s%s: HTTP %ld: %s",
			    c->endpoint[i], path, status, json_is_string(m) ?
			    json_string_value(m) : "(no message)");
			json_decref(ans);
			ans = NULL;
		} else
			rv = VECDB_OK;
		vdb_free(b.p);
	}
	vdb_free(text);
	if (out != NULL)
		*out = ans;
	else
		json_decref(ans);
	if (rv == VECDB_EUNAVAILABLE)
		return vdb_err(VECDB_EUNAVAILABLE, "etcd did not answer: %s",
		    why);
	return rv;
}

/* {"key": b64(key)} plus, when end, range_end = the prefix's end. */
static json_t *
key_obj(const char *key, int prefix)
{
	size_t len = strlen(key);
	char *k = b64(key, len), *e = NULL;
	json_t *o = json_object();

	if (prefix && len > 0) {
		char *end = vdb_strdup(key);
		if (end != NULL) {
			end[len - 1]++;
			e = b64(end, len);
			vdb_free(end);
		}
	}
	if (o == NULL || k == NULL || (prefix && e == NULL) ||
	    json_object_set_new(o, "key", json_string(k)) != 0 ||
	    (e != NULL && json_object_set_new(o, "range_end",
	    json_string(e)) != 0)) {
		json_decref(o);
		o = NULL;
	}
	vdb_free(k);
	vdb_free(e);
	return o;
}

void
coord_kvs_free(struct coord_kv *kvs, size_t n)
{
	for (size_t i = 0; kvs != NULL && i < n; i++) {
		vdb_free(kvs[i].key);
		vdb_free(kvs[i].value);
	}
	vdb_free(kvs);
}

int
coord_range(coord *c, const char *prefix, struct coord_kv **kvs, size_t *n,
    int64_t *revision)
{
	json_t *q = key_obj(prefix, 1), *r, *arr;
	struct coord_kv *out = NULL;
	size_t i, cnt;
	int rv;

	*kvs = NULL;
	*n = 0;
	if (q == NULL)
		return vdb_err(VECDB_ENOMEM, "out of memory");
	if ((rv = call(c, "/v3/kv/range", q, &r)) != VECDB_OK)
		return rv;
	if (revision != NULL)
		*revision = i64_of(json_object_get(r, "header"), "revision");
	arr = json_object_get(r, "kvs");
	cnt = json_is_array(arr) ? json_array_size(arr) : 0;
	if (cnt > 0 && (out = vdb_calloc(cnt, sizeof(*out))) == NULL) {
		json_decref(r);
		return vdb_err(VECDB_ENOMEM, "out of memory");
	}
	for (i = 0; i < cnt; i++) {
		json_t *kv = json_array_get(arr, i);
		json_t *k = json_object_get(kv, "key");
		json_t *v = json_object_get(kv, "value");
		out[i].key = json_is_string(k) ? unb64(json_string_value(k)) :
		    NULL;
		out[i].value = unb64(json_is_string(v) ? json_string_value(v)
		    : "");
		out[i].mod_revision = i64_of(kv, "mod_revision");
		out[i].lease = i64_of(kv, "lease");
		if (out[i].key == NULL || out[i].value == NULL) {
			coord_kvs_free(out, i + 1);
			json_decref(r);
			return vdb_err(VECDB_EIO, "etcd: a key-value pair that "
			    "is not base64");
		}
	}
	json_decref(r);
	*kvs = out;
	*n = cnt;
	return VECDB_OK;
}

/* A put request: {"key", "value" (base64), "lease" unless 0}, or NULL. */
static json_t *
put_obj(const char *key, const char *value, int64_t lease)
{
	json_t *o = key_obj(key, 0);
	char *v = b64(value, strlen(value)), id[32];

	snprintf(id, sizeof(id), "%lld", (long long) lease);
	if (o == NULL || v == NULL ||
	    json_object_set_new(o, "value", json_string(v)) != 0 ||
	    (lease != 0 && json_object_set_new(o, "lease",
	    json_string(id)) != 0)) {
		json_decref(o);
		o = NULL;
	}
	vdb_free(v);
	return o;
}

int
coord_put(coord *c, const char *key, const char *value, int64_t lease)
{
	return call(c, "/v3/kv/put", put_obj(key, value, lease), NULL);
}

int
coord_delete(coord *c, const char *key)
{
	return call(c, "/v3/kv/deleterange", key_obj(key, 0), NULL);
}

int
coord_get(coord *c, const char *key, char **value, int64_t *lease,
    int64_t *mod_revision, int64_t *revision)
{
	json_t *q = key_obj(key, 0), *r, *kv, *v;
	int rv;

	*value = NULL;
	*lease = 0;
	if (q == NULL)
		return vdb_err(VECDB_ENOMEM, "out of memory");
	if ((rv = call(c, "/v3/kv/range", q, &r)) != VECDB_OK)
		return rv;
	if (revision != NULL)
		*revision = i64_of(json_object_get(r, "header"), "revision");
	kv = json_array_get(json_object_get(r, "kvs"), 0);
	if (kv == NULL) {
		json_decref(r);
		return VECDB_ENOTFOUND;
	}
	v = json_object_get(kv, "value");
	*value = unb64(json_is_string(v) ? json_string_value(v) : "");
	*lease = i64_of(kv, "lease");
	if (mod_revision != NULL)
		*mod_revision = i64_of(kv, "mod_revision");
	json_decref(r);
	return *value != NULL ? VECDB_OK : vdb_err(VECDB_EIO, "etcd: a "
	    "value that is not base64");
}

/*
 * A compare of a transaction: that the key was never created (target
 * CREATE: "create_revision" 0), or that its value is @p value (target
 * VALUE), or NULL.
 */
static json_t *
cmp_obj(const char *key, const char *target, const char *value)
{
	int created = strcmp(target, "CREATE") == 0;
	json_t *o = key_obj(key, 0);
	char *v = created ? vdb_strdup("0") : b64(value, strlen(value));

	if (o == NULL || v == NULL ||
	    json_object_set_new(o, "target", json_string(target)) != 0 ||
	    json_object_set_new(o, "result", json_string("EQUAL")) != 0 ||
	    json_object_set_new(o, created ? "create_revision" : "value",
	    json_string(v)) != 0) {
		json_decref(o);
		o = NULL;
	}
	vdb_free(v);
	return o;
}

/*
 * A transaction: if @p compare holds, the one request @p op of kind
 * @p kind ("request_put", "request_delete_range"). Both are taken, and
 * may be NULL (out of memory).
 */
static int
txn(coord *c, json_t *compare, const char *kind, json_t *op,
    int *succeeded, int64_t *revision)
{
	json_t *q = NULL, *r;
	int rv;

	*succeeded = 0;
	if (compare != NULL && op != NULL)
		q = json_pack("{s:[o], s:[{s:o}], s:[]}", "compare", compare,
		    "success", kind, op, "failure");
	else {
		json_decref(compare);
		json_decref(op);
	}
	if (q == NULL)
		return vdb_err(VECDB_ENOMEM, "out of memory");
	if ((rv = call(c, "/v3/kv/txn", q, &r)) != VECDB_OK)
		return rv;
	*succeeded = json_is_true(json_object_get(r, "succeeded"));
	if (revision != NULL)
		*revision = i64_of(json_object_get(r, "header"), "revision");
	json_decref(r);
	return VECDB_OK;
}

int
coord_create(coord *c, const char *key, const char *value, int64_t lease,
    int *created, int64_t *revision)
{
	return txn(c, cmp_obj(key, "CREATE", NULL), "request_put",
	    put_obj(key, value, lease), created, revision);
}

int
coord_delete_if(coord *c, const char *key, const char *value)
{
	int done;

	return txn(c, cmp_obj(key, "VALUE", value), "request_delete_range",
	    key_obj(key, 0), &done, NULL);
}

int
coord_replace(coord *c, const char *key, const char *old, const char *value,
    int64_t lease, int *done)
{
	return txn(c, cmp_obj(key, "VALUE", old), "request_put",
	    put_obj(key, value, lease), done, NULL);
}

/*
 * {field: v} to a lease path; with @p key, *out is that number of the
 * answer (of its object @p in, unless NULL), 0 when it is missing.
 */
static int
lease_call(coord *c, const char *path, const char *field, int64_t v,
    const char *in, const char *key, int64_t *out)
{
	char num[32];
	json_t *q = json_object(), *r;
	int rv;

	snprintf(num, sizeof(num), "%lld", (long long) v);
	if (q == NULL || json_object_set_new(q, field, json_string(num)) != 0) {
		json_decref(q);
		return vdb_err(VECDB_ENOMEM, "out of memory");
	}
	if ((rv = call(c, path, q, &r)) != VECDB_OK)
		return rv;
	if (key != NULL)
		*out = i64_of(in != NULL ? json_object_get(r, in) : r, key);
	json_decref(r);
	return VECDB_OK;
}

int
coord_lease_grant(coord *c, int64_t ttl_s, int64_t *lease)
{
	int rv = lease_call(c, "/v3/lease/grant", "TTL", ttl_s, NULL, "ID",
	    lease);

	if (rv == VECDB_OK && *lease == 0)
		rv = vdb_err(VECDB_EIO, "etcd granted no lease");
	return rv;
}

int
coord_lease_keepalive(coord *c, int64_t lease)
{
	int64_t ttl;
	int rv = lease_call(c, "/v3/lease/keepalive", "ID", lease, "result",
	    "TTL", &ttl);

	if (rv == VECDB_OK && ttl <= 0)
		rv = vdb_err(VECDB_ENOTFOUND, "lease %llx expired",
		    (unsigned long long) lease);
	return rv;
}

int
coord_lease_ttl(coord *c, int64_t lease, int64_t *ttl_s)
{
	int rv = lease_call(c, "/v3/lease/timetolive", "ID", lease, NULL,
	    "TTL", ttl_s);

	if (rv == VECDB_OK && *ttl_s < 0)
		rv = vdb_err(VECDB_ENOTFOUND, "lease %llx expired",
		    (unsigned long long) lease);
	return rv;
}

int
coord_lease_revoke(coord *c, int64_t lease)
{
	return lease_call(c, "/v3/lease/revoke", "ID", lease, NULL, NULL,
	    NULL);
}

/* ===== Members ===== */

struct coord_member {
	coord *c;
	coord_member_fn fn;
	void *arg;
	int64_t lease;               /* the thread's after the start */
	char key[512];
	char ident[1024];            /* role, term and urls last put */
	uint64_t seq_put;            /* last_seq last put */
	uint64_t put_ms;             /* when */
	pthread_mutex_t put_lock;    /* the fields above, and lease */
	_Atomic uint64_t renewed_ms; /* the last renewal's send time */
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t cv;
	int stopping;                /* guarded by lock */
};

/*
 * The member's value now, as JSON text, or NULL with *same set when it
 * need not be put again: its role, term and urls are those put last, and
 * only its last seq moved, less than COORD_SEQ_PUT_MS ago (each put is a
 * revision etcd keeps until it compacts). Its key into m->key.
 */
static char *
member_value(coord_member *m, int *same)
{
	struct coord_member_info in = { 0 };
	char ident[sizeof(m->ident)];
	json_t *o;
	char *s;

	*same = 0;
	m->fn(m->arg, &in);
	snprintf(ident, sizeof(ident), "%u %s %s %llu %s %s %lld", in.shard,
	    in.node_id ? in.node_id : "", in.role ? in.role : "",
	    (unsigned long long) in.term, in.rpc ? in.rpc : "",
	    in.admin ? in.admin : "", (long long) in.elect_rev);
	if (m->lease != 0 && strcmp(ident, m->ident) == 0 &&
	    (in.last_seq == m->seq_put ||
	    vdb_now_ms() - m->put_ms < COORD_SEQ_PUT_MS)) {
		*same = 1;
		return NULL;
	}
	snprintf(m->ident, sizeof(m->ident), "%s", ident);
	m->seq_put = in.last_seq;
	m->put_ms = vdb_now_ms();
	snprintf(m->key, sizeof(m->key), "%s" COORD_MEMBERS "%u/%s", m->c->prefix,
	    in.shard, in.node_id ? in.node_id : "node");
	o = json_pack("{s:I, s:I, s:s, s:s, s:s, s:s, s:I, s:I}",
	    "elect_rev", (json_int_t) in.elect_rev,
	    "shard", (json_int_t) in.shard,
	    "node_id", in.node_id ? in.node_id : "node",
	    "role", in.role ? in.role : "replica",
	    "rpc", in.rpc ? in.rpc : "",
	    "admin", in.admin ? in.admin : "",
	    "last_seq", (json_int_t) in.last_seq,
	    "term", (json_int_t) in.term);
	s = o ? json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
	json_decref(o);
	return s;
}

/* Grant the member a lease. It lives COORD_LEASE_TTL_S from its grant:
 * that counts as a renewal (a leader fences by it). */
static int
member_lease_new(coord_member *m)
{
	uint64_t sent = vdb_now_ms();
	int rv = coord_lease_grant(m->c, COORD_LEASE_TTL_S, &m->lease);

	if (rv == VECDB_OK)
		atomic_store(&m->renewed_ms, sent);
	return rv;
}

/*
 * Create m->key = v on a new lease, only if the key is absent:
 * VECDB_OK, or VECDB_EEXIST (no lease kept) when it is there.
 */
static int
member_create(coord_member *m, const char *v)
{
	char *held = NULL;
	int64_t held_lease;
	int created, rv;

	rv = coord_get(m->c, m->key, &held, &held_lease, NULL, NULL);
	vdb_free(held);
	if (rv == VECDB_OK)
		return VECDB_EEXIST;
	if (rv != VECDB_ENOTFOUND)
		return rv;
	if ((rv = member_lease_new(m)) != VECDB_OK)
		return rv;
	rv = coord_create(m->c, m->key, v, m->lease, &created, NULL);
	if (rv == VECDB_OK && created)
		return VECDB_OK;
	/* lost a race for the key, or an error: this lease is not needed */
	coord_lease_revoke(m->c, m->lease);
	m->lease = 0;
	return rv == VECDB_OK ? VECDB_EEXIST : rv;
}

/*
 * Put the value under the member's lease. With no lease (it expired:
 * etcd deleted the key with it) the key is created again only if
 * absent: another process may have taken it meanwhile, and then this one
 * must not overwrite its role and term.
 */
static int
member_put(coord_member *m)
{
	int same, rv;
	char *v = member_value(m, &same);

	if (same)
		return VECDB_OK;
	if (v == NULL) {
		m->ident[0] = '\0';
		return vdb_err(VECDB_ENOMEM, "out of memory");
	}
	if (m->lease == 0) {
		rv = member_create(m, v);
		if (rv == VECDB_EEXIST)
			vdb_err(VECDB_EEXIST, "%s was registered by another "
			    "process while this node's lease had expired: "
			    "this node stays unregistered until that key goes "
			    "(is a second vecdb-node running with this "
			    "--node-id?)", m->key);
	} else {
		rv = coord_put(m->c, m->key, v, m->lease);
	}
	if (rv != VECDB_OK)
		m->ident[0] = '\0';  /* put it again next time */
	free(v);
	return rv;
}

/*
 * The first registration: the key is created only if absent. It may
 * still be held by this node's previous run, killed before it revoked
 * its lease (the key goes within COORD_LEASE_TTL_S, and etcd's revocation
 * tick): that is waited out. A key still there after COORD_CLAIM_WAIT_MS
 * is another process's, running with the same node id and renewing its
 * lease: two nodes on one key would overwrite each other's role and term
 * for as long as both run, so this one is refused.
 */
static int
member_claim(coord_member *m)
{
	uint64_t start = vdb_now_ms();
	int waited = 0, same, rv;

	for (;;) {
		char *v = member_value(m, &same);

		if (v == NULL)
			return vdb_err(VECDB_ENOMEM, "out of memory");
		rv = member_create(m, v);
		free(v);
		if (rv == VECDB_OK) {
			if (waited)
				VDB_LOG_INFO("COORD", "%s: registered after "
				    "%llu ms", m->key, (unsigned long long)
				    (vdb_now_ms() - start));
			return VECDB_OK;
		}
		m->ident[0] = '\0';   /* nothing put */
		if (rv != VECDB_EEXIST)
			return rv;
		if (vdb_now_ms() - start >= COORD_CLAIM_WAIT_MS)
			return vdb_err(VECDB_EEXIST, "%s is held by another "
			    "running process (its lease was renewed for %d ms): "
			    "is a second vecdb-node running with this "
			    "--node-id? Stop it, or give this one another",
			    m->key, COORD_CLAIM_WAIT_MS);
		if (!waited)
			VDB_LOG_WARN("COORD", "%s is still registered (this "
			    "node's previous run, until its lease expires?): "
			    "waiting up to %d ms", m->key, COORD_CLAIM_WAIT_MS);
		waited = 1;
		struct timespec ts = { 0, 100 * 1000000L };
		nanosleep(&ts, NULL);
	}
}

static void *
member_main(void *arg)
{
	coord_member *m = arg;
	uint64_t warned = 0, sent;
	int lost = 0;   /* the lease expired, and the key is not back yet */

	pthread_mutex_lock(&m->lock);
	while (!m->stopping) {
		struct timespec ts = vdb_deadline(COORD_RENEW_MS);
		int rv;

		pthread_cond_timedwait(&m->cv, &m->lock, &ts);
		if (m->stopping)
			break;
		pthread_mutex_unlock(&m->lock);
		pthread_mutex_lock(&m->put_lock);
		sent = vdb_now_ms();
		/* no lease: unregistered since a lease expired (put below) */
		rv = m->lease == 0 ? VECDB_OK :
		    coord_lease_keepalive(m->c, m->lease);
		if (rv == VECDB_OK && m->lease != 0)
			atomic_store(&m->renewed_ms, sent);
		if (rv == VECDB_ENOTFOUND) {
			VDB_LOG_WARN("COORD", "%s: lease expired: registering "
			    "again", m->key);
			m->lease = 0;
			lost = 1;
		}
		if (rv == VECDB_OK || rv == VECDB_ENOTFOUND)
			rv = member_put(m);
		if (rv == VECDB_OK && lost && m->lease != 0) {
			VDB_LOG_INFO("COORD", "%s: registered again", m->key);
			lost = 0;
		}
		pthread_mutex_unlock(&m->put_lock);
		if (rv != VECDB_OK && vdb_now_ms() - warned > 10000) {
			VDB_LOG_WARN("COORD", "%s: %s", m->key, vecdb_errmsg());
			warned = vdb_now_ms();
		}
		pthread_mutex_lock(&m->lock);
	}
	pthread_mutex_unlock(&m->lock);
	return NULL;
}

int
coord_member_start(coord *c, coord_member_fn fn, void *arg,
    coord_member **out)
{
	coord_member *m = vdb_calloc(1, sizeof(*m));
	int rv;

	*out = NULL;
	if (m == NULL)
		return vdb_err(VECDB_ENOMEM, "out of memory");
	m->c = c;
	m->fn = fn;
	m->arg = arg;
	atomic_init(&m->renewed_ms, vdb_now_ms());
	if ((rv = member_claim(m)) != VECDB_OK) {
		if (m->lease != 0)
			coord_lease_revoke(c, m->lease);
		vdb_free(m);
		return rv;
	}
	pthread_mutex_init(&m->lock, NULL);
	pthread_mutex_init(&m->put_lock, NULL);
	vdb_cond_init(&m->cv);
	if (pthread_create(&m->thread, NULL, member_main, m) != 0) {
		coord_lease_revoke(c, m->lease);
		pthread_mutex_destroy(&m->put_lock);
		pthread_mutex_destroy(&m->lock);
		pthread_cond_destroy(&m->cv);
		vdb_free(m);
		return vdb_err(VECDB_ENOMEM, "cannot start a thread");
	}
	*out = m;
	return VECDB_OK;
}

void
coord_member_stop(coord_member *m)
{
	if (m == NULL)
		return;
	pthread_mutex_lock(&m->lock);
	m->stopping = 1;
	pthread_cond_broadcast(&m->cv);
	pthread_mutex_unlock(&m->lock);
	pthread_join(m->thread, NULL);
	if (m->lease != 0 && coord_lease_revoke(m->c, m->lease) != VECDB_OK)
		VDB_LOG_WARN("COORD", "%s: cannot revoke its lease (it "
		    "expires in %d s): %s", m->key, COORD_LEASE_TTL_S,
		    vecdb_errmsg());
	pthread_mutex_destroy(&m->put_lock);
	pthread_mutex_destroy(&m->lock);
	pthread_cond_destroy(&m->cv);
	vdb_free(m);
}

int64_t
coord_member_lease(coord_member *m)
{
	int64_t l;

	pthread_mutex_lock(&m->put_lock);
	l = m->lease;
	pthread_mutex_unlock(&m->put_lock);
	return l;
}

uint64_t
coord_member_renewed_ms(coord_member *m)
{
	return atomic_load(&m->renewed_ms);
}

int
coord_member_refresh(coord_member *m)
{
	int rv;

	pthread_mutex_lock(&m->put_lock);
	m->ident[0] = '\0';
	rv = member_put(m);
	pthread_mutex_unlock(&m->put_lock);
	return rv;
}

/* ===== Topology ===== */

/* Does member a make a better primary than b? */
static int
better(json_t *a, json_t *b)
{
	json_int_t ta = json_integer_value(json_object_get(a, "term"));
	json_int_t tb = json_integer_value(json_object_get(b, "term"));

	if (ta != tb)
		return ta > tb;
	return json_integer_value(json_object_get(a, "last_seq")) >
	    json_integer_value(json_object_get(b, "last_seq"));
}

int
coord_topology_json(coord *c, json_t **out, int64_t *revision)
{
	char prefix[200];
	struct coord_kv *kvs;
	size_t n;
	json_t **prim = vdb_calloc(SHARDS_MAX, sizeof(*prim));
	json_t **reps = vdb_calloc(SHARDS_MAX, sizeof(*reps));
	json_t *all = json_array(), *shards = NULL;
	int64_t max = -1;
	int rv;

	*out = NULL;
	snprintf(prefix, sizeof(prefix), "%s" COORD_MEMBERS, c->prefix);
	if (all == NULL || prim == NULL || reps == NULL) {
		rv = vdb_err(VECDB_ENOMEM, "out of memory");
		goto done;
	}
	if ((rv = coord_range(c, prefix, &kvs, &n, revision)) != VECDB_OK)
		goto done;
	for (size_t i = 0; i < n; i++) {
		json_error_t je;
		json_t *m = json_loads(kvs[i].value, 0, &je);
		json_t *sh = json_object_get(m, "shard");
		json_t *rpc = json_object_get(m, "rpc");
		json_int_t s = json_is_integer(sh) ? json_integer_value(sh) : -1;

		if (s < 0 || s >= SHARDS_MAX || !json_is_string(rpc) ||
		    json_string_length(rpc) == 0) {
			VDB_LOG_WARN("COORD", "%s: not a member: %s",
			    kvs[i].key, kvs[i].value);
			json_decref(m);
			continue;
		}
		json_array_append_new(all, m);
		if (s > max)
			max = s;
		if (strcmp(json_string_value(json_object_get(m, "role")) ?
		    json_string_value(json_object_get(m, "role")) : "",
		    "primary") == 0 && (prim[s] == NULL || better(m, prim[s])))
			prim[s] = m;
	}
	coord_kvs_free(kvs, n);
	rv = VECDB_OK;
	for (int64_t s = 0; s <= max && rv == VECDB_OK; s++)
		if (prim[s] == NULL)
			rv = vdb_err(VECDB_EUNAVAILABLE, "shard %lld has no "
			    "primary registered under %s", (long long) s,
			    prefix);
	if (rv == VECDB_OK && max < 0)
		rv = vdb_err(VECDB_EUNAVAILABLE, "no member registered under "
		    "%s", prefix);
	for (int64_t s = 0; s <= max && rv == VECDB_OK; s++)
		if ((reps[s] = json_array()) == NULL)
			rv = vdb_err(VECDB_ENOMEM, "out of memory");
	for (size_t i = 0; rv == VECDB_OK && i < json_array_size(all); i++) {
		json_t *m = json_array_get(all, i);
		json_int_t s = json_integer_value(json_object_get(m, "shard"));
		if (m != prim[s])
			json_array_append(reps[s], json_object_get(m, "rpc"));
	}
	if (rv == VECDB_OK && (shards = json_array()) == NULL)
		rv = vdb_err(VECDB_ENOMEM, "out of memory");
	for (int64_t s = 0; s <= max && rv == VECDB_OK; s++) {
		json_t *e = json_pack("{s:I, s:O, s:o}", "id", (json_int_t) s,
		    "primary", json_object_get(prim[s], "rpc"), "replicas",
		    reps[s]);
		reps[s] = NULL;
		if (e == NULL || json_array_append_new(shards, e) != 0)
			rv = vdb_err(VECDB_ENOMEM, "out of memory");
	}
	if (rv == VECDB_OK && (*out = json_pack("{s:o}", "shards", shards)) ==
	    NULL)
		rv = vdb_err(VECDB_ENOMEM, "out of memory");
	else if (rv != VECDB_OK)
		json_decref(shards);
done:
	for (int64_t s = 0; reps != NULL && s <= max; s++)
		json_decref(reps[s]);
	json_decref(all);
	vdb_free(prim);
	vdb_free(reps);
	return rv;
}

/* ===== Watches ===== */

struct coord_watch {
	coord *c;
	CURLM *multi;
	atomic_int stop;
};

int
coord_watch_new(coord *c, coord_watch **out)
{
	coord_watch *w = vdb_calloc(1, sizeof(*w));

	*out = NULL;
	if (w == NULL || (w->multi = curl_multi_init()) == NULL) {
		vdb_free(w);
		return vdb_err(VECDB_ENOMEM, "out of memory");
	}
	w->c = c;
	atomic_init(&w->stop, 0);
	*out = w;
	return VECDB_OK;
}

void
coord_watch_stop(coord_watch *w)
{
	atomic_store(&w->stop, 1);
	curl_multi_wakeup(w->multi);
}

void
coord_watch_free(coord_watch *w)
{
	if (w == NULL)
		return;
	curl_multi_cleanup(w->multi);
	vdb_free(w);
}

/* A watch's stream as it is read: one JSON object a line. */
struct stream {
	struct buf line;         /* what came after the last newline */
	coord_watch_fn fn;
	void *arg;
	int created;             /* etcd said the watch is in place */
	int ended;               /* an error or a cancel: why says which */
	char why[300];
};

/* One line: {"result": {"created" | "events" | "canceled"...}} or
 * {"error": {"message"...}}. */
static void
stream_line(struct stream *st, const char *p, size_t len)
{
	json_error_t je;
	json_t *o = json_loadb(p, len, 0, &je);
	json_t *res = json_object_get(o, "result"), *m;

	if (o == NULL) {
		st->ended = 1;
		snprintf(st->why, sizeof(st->why), "a watch answer that is "
		    "not JSON: %s", je.text);
	} else if (!json_is_object(res)) {
		/* the gateway's errors: {"error": {"message"}} in a stream,
		 * {"error": "...", "message"} as a whole answer */
		json_t *e = json_object_get(o, "error");
		if (!json_is_string(m = json_object_get(e, "message")) &&
		    !json_is_string(m = json_object_get(o, "message")))
			m = e;
		st->ended = 1;
		snprintf(st->why, sizeof(st->why), "watch: %s",
		    json_is_string(m) ? json_string_value(m) :
		    "an answer with neither result nor error");
	} else if (json_is_true(json_object_get(res, "canceled"))) {
		m = json_object_get(res, "cancel_reason");
		st->ended = 1;
		snprintf(st->why, sizeof(st->why), "etcd cancelled the "
		    "watch: %s", json_is_string(m) ? json_string_value(m) :
		    "(no reason)");
	} else if (json_is_true(json_object_get(res, "created"))) {
		st->created = 1;
		st->fn(st->arg);
	} else if (json_array_size(json_object_get(res, "events")) > 0)
		st->fn(st->arg);
	json_decref(o);
}

static size_t
on_stream(char *data, size_t size, size_t nmemb, void *arg)
{
	struct stream *st = arg;
	size_t n = size * nmemb, start = 0;
	char *nl;

	if (on_body(data, size, nmemb, &st->line) != n) {
		st->ended = 1;
		snprintf(st->why, sizeof(st->why), "a watch answer longer "
		    "than 64 MiB, or out of memory");
		return 0;
	}
	while (!st->ended && (nl = memchr(st->line.p + start, '\n',
	    st->line.len - start)) != NULL) {
		stream_line(st, st->line.p + start,
		    (size_t) (nl - st->line.p) - start);
		start = (size_t) (nl - st->line.p) + 1;
	}
	memmove(st->line.p, st->line.p + start, st->line.len - start + 1);
	st->line.len -= start;
	return st->ended ? 0 : n;
}

int
coord_watch_run(coord_watch *w, const char *prefix, coord_watch_fn fn,
    void *arg)
{
	coord *c = w->c;
	size_t i = atomic_load(&c->good) % c->n;
	struct stream st = { .line = { NULL, 0 }, .fn = fn, .arg = arg };
	json_t *key = key_obj(prefix, 1), *req = json_object();
	char url[512], err[CURL_ERROR_SIZE] = "", *text = NULL;
	struct curl_slist *hdr = NULL;
	CURLcode cc = CURLE_OK;
	CURL *h = NULL;
	long status = 0;
	int running = 1, done = 0, rv;

	if (key == NULL || req == NULL) {
		json_decref(key);
		rv = vdb_err(VECDB_ENOMEM, "out of memory");
		goto out;
	}
	/* set_new takes key, also when it fails */
	if (json_object_set_new(req, "create_request", key) != 0 ||
	    (text = json_dumps(req, JSON_COMPACT)) == NULL ||
	    (h = curl_easy_init()) == NULL || (hdr = curl_slist_append(NULL,
	    "Content-Type: application/json")) == NULL) {
		rv = vdb_err(VECDB_ENOMEM, "out of memory");
		goto out;
	}
	snprintf(url, sizeof(url), "%s/v3/watch", c->endpoint[i]);
	easy_set(c, h, url, hdr, text, on_stream, &st, err);
	curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS,
	    (long) COORD_CALL_TIMEOUT_MS);
	/* a stream that goes quiet is normal: a dead peer is told by TCP */
	curl_easy_setopt(h, CURLOPT_TCP_KEEPALIVE, 1L);
	curl_easy_setopt(h, CURLOPT_TCP_KEEPIDLE, 5L);
	curl_easy_setopt(h, CURLOPT_TCP_KEEPINTVL, 2L);
	if (curl_multi_add_handle(w->multi, h) != CURLM_OK) {
		rv = vdb_err(VECDB_ENOMEM, "out of memory");
		goto out;
	}
	while (!atomic_load(&w->stop) && !done && running) {
		CURLMsg *msg;
		int left;

		if (curl_multi_perform(w->multi, &running) != CURLM_OK)
			break;
		while ((msg = curl_multi_info_read(w->multi, &left)) != NULL)
			if (msg->msg == CURLMSG_DONE) {
				cc = msg->data.result;
				done = 1;
			}
		if (!done && running)
			curl_multi_poll(w->multi, NULL, 0, 1000, NULL);
	}
	curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
	curl_multi_remove_handle(w->multi, h);
	if (atomic_load(&w->stop))
		rv = VECDB_OK;
	else {
		if (!st.created)   /* next time, the next endpoint */
			atomic_store(&c->good, (i + 1) % c->n);
		if (st.ended)
			rv = vdb_err(VECDB_EUNAVAILABLE, "etcd %s: %s",
			    c->endpoint[i], st.why);
		else if (cc != CURLE_OK && cc != CURLE_WRITE_ERROR)
			rv = vdb_err(VECDB_EUNAVAILABLE, "etcd %s: watch: %s",
			    c->endpoint[i], err[0] ? err :
			    curl_easy_strerror(cc));
		else
			rv = vdb_err(VECDB_EUNAVAILABLE, "etcd %s: the watch "
			    "ended (HTTP %ld)", c->endpoint[i], status);
	}
out:
	if (h != NULL)
		curl_easy_cleanup(h);
	curl_slist_free_all(hdr);
	json_decref(req);
	vdb_free(text);
	vdb_free(st.line.p);
	return rv;
}
