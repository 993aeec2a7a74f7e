/*
 * proto_envelope.c: Request and Response, the envelope of every message.
 */
#include <string.h>

#include "proto_impl.h"

/* A vdb_malloc'ed copy of a string of at most max bytes. */
static int
text_dup(const char *s, size_t max, const char *what, char **out)
{
	size_t n = s != NULL ? strlen(s) : 0;
	char *c;

	if (n > max)
		return vdb_err(VECDB_EINVAL, "%s of %zu bytes is longer than "
		    "%zu", what, n, max);
	if ((c = vdb_malloc(n + 1)) == NULL)
		return vdb_err(VECDB_ENOMEM, "out of memory for %s", what);
	memcpy(c, s != NULL ? s : "", n);
	c[n] = '\0';
	*out = c;
	return VECDB_OK;
}

int
proto_request_encode(uint32_t method, const char *api_key,
    uint64_t request_id, const void *body, size_t len, uint8_t **out,
    size_t *outlen)
{
	return proto_request_encode_opts(method, api_key, request_id, 0, 0,
	    body, len, out, outlen);
}

int
proto_request_encode_opts(uint32_t method, const char *api_key,
    uint64_t request_id, int primary_only, int allow_partial,
    const void *body, size_t len, uint8_t **out, size_t *outlen)
{
	Vecdb__Request m;

	if (method == 0 || method >= PROTO_METHOD_COUNT)
		return vdb_err(VECDB_EINVAL, "unknown method %u", method);
	vecdb__request__init(&m);
	m.method = (Vecdb__Method)method;
	m.api_key = proto_str(api_key);
	m.request_id = request_id;
	m.primary_only = primary_only != 0;
	m.allow_partial = allow_partial != 0;
	m.body.data = (uint8_t *)(uintptr_t)body;
	m.body.len = body != NULL ? len : 0;
	return proto_pack(&m.base, out, outlen);
}

/* Our request from the unpacked one. */
static int
request_from_pb(const Vecdb__Request *m, struct proto_request *r)
{
	int rv;

	if (m->method <= 0 || (unsigned)m->method >= PROTO_METHOD_COUNT)
		return vdb_err(VECDB_EINVAL, "unknown method %d",
		    (int)m->method);
	r->method = (uint32_t)m->method;
	r->request_id = m->request_id;
	r->primary_only = m->primary_only;
	r->allow_partial = m->allow_partial;
	if ((rv = text_dup(m->api_key, PROTO_KEY_MAX, "api key",
	    &r->api_key)) != VECDB_OK)
		return rv;
	r->body_len = m->body.len;
	return proto_bytes_dup(m->body.data, m->body.len, &r->body);
}

int
proto_request_decode(const uint8_t *buf, size_t len,
    struct proto_request **out)
{
	ProtobufCMessage *pm;
	struct proto_request *r;
	int rv;

	if ((rv = proto_unpack(&vecdb__request__descriptor, buf, len, &pm)))
		return rv;
	if ((r = vdb_calloc(1, sizeof(*r))) == NULL) {
		proto_unpacked_free(pm);
		return vdb_err(VECDB_ENOMEM, "out of memory for a request");
	}
	rv = request_from_pb((Vecdb__Request *)pm, r);
	proto_unpacked_free(pm);
	if (rv != VECDB_OK) {
		proto_request_free(r);
		return rv;
	}
	*out = r;
	return VECDB_OK;
}

void
proto_request_free(struct proto_request *r)
{
	if (r == NULL)
		return;
	vdb_free(r->api_key);
	vdb_free(r->body);
	vdb_free(r);
}

int
proto_response_encode(int code, const char *message, const void *body,
    size_t len, uint8_t **out, size_t *outlen)
{
	return proto_response_encode_missing(code, message, body, len, NULL, 0,
	    out, outlen);
}

int
proto_response_encode_missing(int code, const char *message,
    const void *body, size_t len, const uint32_t *missing, size_t n_missing,
    uint8_t **out, size_t *outlen)
{
	Vecdb__Response m;

	if (code < 0 || code >= PROTO_CODE_COUNT)
		return vdb_err(VECDB_EINVAL, "unknown code %d", code);
	vecdb__response__init(&m);
	m.code = (Vecdb__Code)code;
	m.message = proto_str(message);
	m.body.data = (uint8_t *)(uintptr_t)body;
	m.body.len = body != NULL ? len : 0;
	m.missing_shards = (uint32_t *)(uintptr_t)missing;
	m.n_missing_shards = missing != NULL ? n_missing : 0;
	return proto_pack(&m.base, out, outlen);
}

/* Our response from the unpacked one. */
static int
response_from_pb(const Vecdb__Response *m, struct proto_response *r)
{
	int rv;

	if ((int)m->code < 0 || (int)m->code >= PROTO_CODE_COUNT)
		return vdb_err(VECDB_EINVAL, "unknown code %d", (int)m->code);
	r->code = (int)m->code;
	if ((rv = text_dup(m->message, PROTO_MESSAGE_MAX, "message",
	    &r->message)) != VECDB_OK)
		return rv;
	if (m->n_missing_shards > PROTO_MISSING_MAX)
		return vdb_err(VECDB_EINVAL, "%zu missing shards: more than "
		    "%d", m->n_missing_shards, PROTO_MISSING_MAX);
	if ((rv = proto_bytes_dup(m->missing_shards, m->n_missing_shards *
	    sizeof(uint32_t), (uint8_t **)&r->missing)) != VECDB_OK)
		return rv;
	r->n_missing = m->n_missing_shards;
	r->body_len = m->body.len;
	return proto_bytes_dup(m->body.data, m->body.len, &r->body);
}

int
proto_response_decode(const uint8_t *buf, size_t len,
    struct proto_response **out)
{
	ProtobufCMessage *pm;
	struct proto_response *r;
	int rv;

	if ((rv = proto_unpack(&vecdb__response__descriptor, buf, len, &pm)))
		return rv;
	if ((r = vdb_calloc(1, sizeof(*r))) == NULL) {
		proto_unpacked_free(pm);
		return vdb_err(VECDB_ENOMEM, "out of memory for a response");
	}
	rv = response_from_pb((Vecdb__Response *)pm, r);
	proto_unpacked_free(pm);
	if (rv != VECDB_OK) {
		proto_response_free(r);
		return rv;
	}
	*out = r;
	return VECDB_OK;
}

void
proto_response_free(struct proto_response *r)
{
	if (r == NULL)
		return;
	vdb_free(r->message);
	vdb_free(r->body);
	vdb_free(r->missing);
	vdb_free(r);
}
