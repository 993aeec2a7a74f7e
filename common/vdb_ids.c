/*
 * vdb_ids.c: point ids: parsing, formatting, ordering, and the point key
 * (the engine's LMDB key, which the router's placement hashes too).
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <uuid/uuid.h>

#include <string.h>

#include "vdb.h"

#define KEY_TAG_NUM 1
#define KEY_TAG_UUID 2

vecdb_id
vecdb_id_num(uint64_t n)
{
	vecdb_id id;

	memset(&id, 0, sizeof(id));
	id.kind = VECDB_ID_NUM;
	id.num = n;
	return id;
}

int
vecdb_id_parse_uuid(const char *s, vecdb_id *out)
{
	uuid_t u;

	if (s == NULL || strlen(s) != 36 || uuid_parse(s, u) != 0)
		return vdb_err(VECDB_EINVAL,
		    "invalid UUID '%.64s' (expected the 36-character form "
		    "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx)", s ? s : "(null)");
	memset(out, 0, sizeof(*out));
	out->kind = VECDB_ID_UUID;
	memcpy(out->uuid, u, 16);
	return VECDB_OK;
}

int
vecdb_id_parse(const char *s, vecdb_id *out)
{
	unsigned long long n;
	char *end;

	if (s == NULL || *s == '\0')
		return vdb_err(VECDB_EINVAL, "empty point id");
	if (!isdigit((unsigned char) s[0]))
		return vecdb_id_parse_uuid(s, out);
	if (strlen(s) == 36 && s[8] == '-')
		return vecdb_id_parse_uuid(s, out);
	errno = 0;
	n = strtoull(s, &end, 10);
	if (*end != '\0' || errno == ERANGE)
		return vdb_err(VECDB_EINVAL,
		    "invalid point id '%.64s' (expected an unsigned 64-bit "
		    "integer or a UUID)", s);
	*out = vecdb_id_num(n);
	return VECDB_OK;
}

char *
vecdb_id_format(const vecdb_id *id, char buf[VECDB_ID_STRLEN])
{
	if (id->kind == VECDB_ID_UUID)
		uuid_unparse_lower(id->uuid, buf);
	else if (id->kind == VECDB_ID_NUM)
		snprintf(buf, VECDB_ID_STRLEN, "%llu",
		    (unsigned long long) id->num);
	else
		snprintf(buf, VECDB_ID_STRLEN, "(none)");
	return buf;
}

int
vecdb_id_cmp(const vecdb_id *a, const vecdb_id *b)
{
	if (a->kind != b->kind)
		return a->kind < b->kind ? -1 : 1;
	if (a->kind == VECDB_ID_NUM)
		return a->num < b->num ? -1 : a->num > b->num;
	if (a->kind == VECDB_ID_UUID)
		return memcmp(a->uuid, b->uuid, 16);
	return 0;
}

size_t
vdb_id_key(const vecdb_id *id, uint8_t *key)
{
	if (id->kind == VECDB_ID_UUID) {
		key[0] = KEY_TAG_UUID;
		memcpy(key + 1, id->uuid, 16);
		return 17;
	}
	key[0] = KEY_TAG_NUM;
	put_be64(key + 1, id->num);
	return 9;
}

int
vdb_key_id(const uint8_t *key, size_t len, vecdb_id *out)
{
	memset(out, 0, sizeof(*out));
	if (len == 9 && key[0] == KEY_TAG_NUM) {
		out->kind = VECDB_ID_NUM;
		out->num = get_be64(key + 1);
		return VECDB_OK;
	}
	if (len == 17 && key[0] == KEY_TAG_UUID) {
		out->kind = VECDB_ID_UUID;
		memcpy(out->uuid, key + 1, 16);
		return VECDB_OK;
	}
	return vdb_err(VECDB_ECORRUPT, "malformed point key (%zu bytes)", len);
}
