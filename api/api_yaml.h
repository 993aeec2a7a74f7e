/* api_yaml.h: YAML config files as jansson values. */
#ifndef API_YAML_H
#define API_YAML_H

#include <jansson.h>

/* Load a YAML mapping; caller decrefs *out. VECDB_EINVAL on bad YAML. */
int api_yaml_load(const char *path, json_t **out);

#endif
