#!/usr/bin/env bash
# Starts `vecdb serve --config` with the YAML example of docs/API.md (data
# dir and port overridden by flags, which take precedence over the file),
# and checks that the file's API key is enforced and its collection exists
# with the configured settings; then that a restart leaves it alone.
#   config_test.sh BIN DOC.md
set -euo pipefail
bin=$1
doc=$2
. "$(dirname "$0")/server.sh"

awk '/<!-- config-example -->/{f=1; next} f && /^```yaml$/{on=1; next}
	on && /^```$/{exit} on {print}' "$doc" >"$tmp/config.yaml"
[ -s "$tmp/config.yaml" ] || { echo "no config example in $doc" >&2; exit 1; }

start() {
	server_start "$bin" --config "$tmp/config.yaml" --data "$tmp/data"
}

start
code=$(curl -s -o /dev/null -w '%{http_code}' "$url/collections")
[ "$code" = 401 ] || fail "no key: expected 401, got $code"
got=$(curl -s -H 'api-key: change-me' "$url/collections/articles")
echo "$got" | grep -q '"dimension":384' || fail "collection config: $got"
echo "$got" | grep -q '"ef_construction":200' || fail "index config: $got"
server_stop
start
got=$(curl -s -H 'api-key: change-me' "$url/collections")
[ "$got" = '{"success":true,"data":["articles"]}' ] || fail "after restart: $got"
server_stop
echo "1 passed, 0 failed"
