/*
 * ctl_http.c: requests to the REST API through libcurl, and the response
 * envelope ({success, data} or {success, error: {code, message}}).
 */
#include <curl/curl.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "api_json_text.h"
#include "ctl.h"

/* A response body being received. */
struct buf {
	char *p;
	size_t len;
	size_t cap;
	int oom;                  /* an allocation failed */
};

/* curl's write callback: append to the buffer. */
static size_t
on_data(char *ptr, size_t size, size_t n, void *user)
{
	struct buf *b = user;
	size_t add = size * n;

	if (b->len + add + 1 > b->cap) {
		size_t cap = (b->cap ? b->cap * 2 : 4096) + add;
		char *p = realloc(b->p, cap);
		if (p == NULL) {
			b->oom = 1;
			return 0;
		}
		b->p = p;
		b->cap = cap;
	}
	memcpy(b->p + b->len, ptr, add);
	b->len += add;
	b->p[b->len] = '\0';
	return add;
}

void
ctl_errorf(const char *fmt, ...)
{
	va_list ap;

	fputs("vecdbctl: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

int
ctl_open(struct ctl *c)
{
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK ||
	    (c->curl = curl_easy_init()) == NULL) {
		ctl_errorf("cannot initialise libcurl");
		return CTL_FAIL;
	}
	return CTL_OK;
}

void
ctl_close(struct ctl *c)
{
	if (c->curl != NULL)
		curl_easy_cleanup(c->curl);
	c->curl = NULL;
	curl_global_cleanup();
}

char *
ctl_escape(struct ctl *c, const char *seg)
{
	char *e = curl_easy_escape(c->curl, seg, 0);
	char *copy = e ? strdup(e) : NULL;

	curl_free(e);
	return copy;
}

/* The headers of a request: JSON body, and the api key when given. */
static struct curl_slist *
headers_new(const struct ctl *c)
{
	struct curl_slist *h, *h2;
	char key[1100];

	if ((h = curl_slist_append(NULL, "Content-Type: application/json")) ==
	    NULL || (h2 = curl_slist_append(h, "Expect:")) == NULL) {
		curl_slist_free_all(h);
		return NULL;
	}
	h = h2;
	if (c->api_key == NULL)
		return h;
	snprintf(key, sizeof(key), "api-key: %s", c->api_key);
	if ((h2 = curl_slist_append(h, key)) == NULL)
		curl_slist_free_all(h);
	return h2;
}

/* Set up the handle for one request. */
static void
request_setup(struct ctl *c, const char *method, const char *url,
    const char *body, size_t len, struct curl_slist *h, struct buf *b,
    char *err)
{
	CURL *k = c->curl;

	curl_easy_reset(k);
	curl_easy_setopt(k, CURLOPT_URL, url);
	curl_easy_setopt(k, CURLOPT_CUSTOMREQUEST, method);
	curl_easy_setopt(k, CURLOPT_HTTPHEADER, h);
	curl_easy_setopt(k, CURLOPT_WRITEFUNCTION, on_data);
	curl_easy_setopt(k, CURLOPT_WRITEDATA, b);
	curl_easy_setopt(k, CURLOPT_ERRORBUFFER, err);
	curl_easy_setopt(k, CURLOPT_TIMEOUT, c->timeout_s);
	curl_easy_setopt(k, CURLOPT_NOSIGNAL, 1L);
	if (body != NULL) {
		curl_easy_setopt(k, CURLOPT_POSTFIELDS, body);
		curl_easy_setopt(k, CURLOPT_POSTFIELDSIZE_LARGE,
		    (curl_off_t) len);
	}
}

/* The envelope of a response with HTTP status @p status. */
static int
envelope(const char *url, long status, const struct buf *b, json_t **data)
{
	/* ids above INT64_MAX: jansson alone refuses them */
	json_t *root = b->p ? api_json_loadb(b->p, b->len, 0, NULL) : NULL;
	json_t *err = json_object_get(root, "error");
	int rv = CTL_FAIL;

	if (json_is_true(json_object_get(root, "success")) &&
	    json_object_get(root, "data") != NULL) {
		*data = json_incref(json_object_get(root, "data"));
		rv = CTL_OK;
	} else if (json_is_object(err)) {
		ctl_errorf("%s: %s",
		    json_string_value(json_object_get(err, "code")) ?: "ERROR",
		    json_string_value(json_object_get(err, "message")) ?: "");
	} else {
		ctl_errorf("%s answered HTTP %ld without a vecdb response%s%.200s",
		    url, status, b->len ? ": " : "", b->p ? b->p : "");
	}
	json_decref(root);
	return rv;
}

int
ctl_call_text(struct ctl *c, const char *method, const char *path,
    const char *body, size_t len, json_t **data)
{
	char err[CURL_ERROR_SIZE] = "", *url;
	struct buf b = { NULL, 0, 0, 0 };
	struct curl_slist *h = NULL;
	size_t n = strlen(c->url);
	long status = 0;
	CURLcode cc;
	int rv = CTL_FAIL;

	if ((url = malloc(n + strlen(path) + 2)) == NULL ||
	    (h = headers_new(c)) == NULL) {
		ctl_errorf("out of memory");
		free(url);
		return CTL_FAIL;
	}
	sprintf(url, "%s%s%s", c->url, n && c->url[n - 1] == '/' ? "" : "/",
	    path);
	request_setup(c, method, url, body, len, h, &b, err);
	if ((cc = curl_easy_perform(c->curl)) != CURLE_OK)
		ctl_errorf("cannot reach %s: %s", c->url, b.oom ?
		    "out of memory" : err[0] ? err : curl_easy_strerror(cc));
	else {
		curl_easy_getinfo(c->curl, CURLINFO_RESPONSE_CODE, &status);
		rv = envelope(url, status, &b, data);
	}
	curl_slist_free_all(h);
	free(b.p);
	free(url);
	return rv;
}

int
ctl_call(struct ctl *c, const char *method, const char *path,
    const json_t *body, json_t **data)
{
	char *text = NULL;
	int rv;

	if (body != NULL && (text = ctl_json_dumps(body)) == NULL) {
		ctl_errorf("out of memory");
		return CTL_FAIL;
	}
	rv = ctl_call_text(c, method, path, text, text ? strlen(text) : 0,
	    data);
	free(text);
	return rv;
}
