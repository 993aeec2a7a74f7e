/*
 * api_yaml.c: read a YAML file into a jansson value, so that the config
 * file and the REST API share one parser for collection definitions.
 * Plain scalars become integers, reals, booleans or null when they look
 * like one; quoted scalars stay strings. Anchors and tags are refused.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <yaml.h>

#include "api_impl.h"
#include "api_yaml.h"

#define YAML_DEPTH_MAX 32

/* A plain scalar as the JSON value it looks like. */
static json_t *
scalar_value(const yaml_event_t *ev)
{
	const char *s = (const char *) ev->data.scalar.value;
	char *end;

	if (ev->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
		return json_string(s);
	if (!strcmp(s, "true") || !strcmp(s, "True") || !strcmp(s, "yes"))
		return json_true();
	if (!strcmp(s, "false") || !strcmp(s, "False") || !strcmp(s, "no"))
		return json_false();
	if (!strcmp(s, "null") || !strcmp(s, "~") || *s == '\0')
		return json_null();
	long long i = strtoll(s, &end, 10);
	if (*end == '\0' && end != s)
		return json_integer(i);
	double d = strtod(s, &end);
	if (*end == '\0' && end != s)
		return json_real(d);
	return json_string(s);
}

static int parse_node(yaml_parser_t *p, yaml_event_t *ev, int depth,
    json_t **out);

/* Parse the events of a mapping or sequence after its start event. */
static int
parse_container(yaml_parser_t *p, int is_map, int depth, json_t **out)
{
	json_t *c = is_map ? json_object() : json_array(), *k = NULL, *v;
	yaml_event_t ev;

	for (;;) {
		if (!yaml_parser_parse(p, &ev))
			goto fail;
		if (ev.type == YAML_MAPPING_END_EVENT ||
		    ev.type == YAML_SEQUENCE_END_EVENT) {
			yaml_event_delete(&ev);
			*out = c;
			return 0;
		}
		if (parse_node(p, &ev, depth + 1, &v) != 0)
			goto fail;
		if (!is_map) {
			json_array_append_new(c, v);
		} else if (k == NULL) {
			if (!json_is_string(k = v))
				goto fail;
		} else {
			json_object_set_new(c, json_string_value(k), v);
			json_decref(k);
			k = NULL;
		}
	}
fail:
	json_decref(k);
	json_decref(c);
	return -1;
}

/* Parse one node starting at event ev (consumed). */
static int
parse_node(yaml_parser_t *p, yaml_event_t *ev, int depth, json_t **out)
{
	int rv = -1;

	if (depth > YAML_DEPTH_MAX) {
		yaml_event_delete(ev);
		return -1;
	}
	switch (ev->type) {
	case YAML_SCALAR_EVENT:
		*out = scalar_value(ev);
		rv = *out ? 0 : -1;
		break;
	case YAML_MAPPING_START_EVENT:
	case YAML_SEQUENCE_START_EVENT:
		rv = parse_container(p, ev->type == YAML_MAPPING_START_EVENT,
		    depth, out);
		break;
	default: /* aliases and anything unexpected */
		break;
	}
	yaml_event_delete(ev);
	return rv;
}

/* Skip stream/document start events, then parse the root node. */
static int
parse_document(yaml_parser_t *p, json_t **out)
{
	yaml_event_t ev;

	for (;;) {
		if (!yaml_parser_parse(p, &ev))
			return -1;
		if (ev.type == YAML_STREAM_START_EVENT ||
		    ev.type == YAML_DOCUMENT_START_EVENT) {
			yaml_event_delete(&ev);
			continue;
		}
		if (ev.type == YAML_STREAM_END_EVENT) {
			yaml_event_delete(&ev);
			*out = json_object(); /* an empty file */
			return 0;
		}
		return parse_node(p, &ev, 0, out);
	}
}

int
api_yaml_load(const char *path, json_t **out)
{
	yaml_parser_t p;
	json_t *root = NULL;
	FILE *f = fopen(path, "rb");
	int rv;

	if (f == NULL)
		return vdb_err(VECDB_ENOTFOUND, "cannot open config %s: %s",
		    path, strerror(errno));
	yaml_parser_initialize(&p);
	yaml_parser_set_input_file(&p, f);
	rv = parse_document(&p, &root);
	if (rv != 0 || !json_is_object(root)) {
		rv = vdb_err(VECDB_EINVAL, "config %s: %s (line %zu)", path,
		    p.problem ? p.problem : "not a mapping of settings",
		    p.problem_mark.line + 1);
		json_decref(root);
	} else {
		*out = root;
		rv = VECDB_OK;
	}
	yaml_parser_delete(&p);
	fclose(f);
	return rv;
}
