#!/usr/bin/env bash
# Starts `vecdb serve --config` with the YAML example of docs/API.md (data
# dir and port overridden by flags, which take precedence over the file),
# and checks that the file's API key is enforced and its collection exists
# with the configured settings; then that a restart leaves it alone.
#   config_test.sh BIN DOC.md
set -euo pipefail
bin=$1
doc=$2
tmp=$(mktemp -d "${TMPDIR:-/tmp}/vecdb-config-XXXXXX")
pid=
cleanup() {
	if [ -n "$pid" ]; then
		kill "$pid" 2>/dev/null || true
		wait "$pid" 2>/dev/null || true
	fi
	rm -rf "$tmp"
}
# SIGTERM must stop the server cleanly: exit status 0 (under the
# sanitizers a leak or an error at shutdown makes it non-zero).
stop() {
	kill "$pid"
	local rc=0
	wait "$pid" || rc=$?
	pid=
	if [ "$rc" -ne 0 ]; then
		echo "server exited with status $rc after SIGTERM:" >&2
		tail -40 "$tmp/err" >&2
		exit 1
	fi
}
trap cleanup EXIT

awk '/<!-- config-example -->/{f=1; next} f && /^```yaml$/{on=1; next}
	on && /^```$/{exit} on {print}' "$doc" >"$tmp/config.yaml"
[ -s "$tmp/config.yaml" ] || { echo "no config example in $doc" >&2; exit 1; }

start() {
	"$bin" serve --config "$tmp/config.yaml" --data "$tmp/data" --port 0 \
		>"$tmp/out" 2>"$tmp/err" &
	pid=$!
	for _ in $(seq 100); do
		grep -q serving "$tmp/out" 2>/dev/null && break
		sleep 0.1
	done
	port=$(grep -o '127\.0\.0\.1:[0-9]*' "$tmp/out" | cut -d: -f2)
	[ -n "$port" ] || { cat "$tmp/err" >&2; exit 1; }
}
fail() { echo "FAIL: $*" >&2; exit 1; }

start
url="http://127.0.0.1:$port"
code=$(curl -s -o /dev/null -w '%{http_code}' "$url/collections")
[ "$code" = 401 ] || fail "no key: expected 401, got $code"
got=$(curl -s -H 'api-key: change-me' "$url/collections/articles")
echo "$got" | grep -q '"dimension":384' || fail "collection config: $got"
echo "$got" | grep -q '"ef_construction":200' || fail "index config: $got"
stop
start
got=$(curl -s -H 'api-key: change-me' "http://127.0.0.1:$port/collections")
[ "$got" = '{"success":true,"data":["articles"]}' ] || fail "after restart: $got"
stop
echo "1 passed, 0 failed"
