#!/bin/bash
# promtool_test.sh VECDB_BIN: start `vecdb serve` on a free loopback port,
# make a few requests with curl, fetch /metrics and run
# `promtool check metrics` on it. The server and the temp dir are always
# cleaned up.
set -u

bin=${1:?usage: promtool_test.sh VECDB_BIN}
for tool in curl promtool; do
	if ! command -v "$tool" >/dev/null 2>&1; then
		pkg=$tool
		[ "$tool" = promtool ] && pkg=prometheus
		echo "promtool_test: '$tool' is missing: install the Debian" \
		    "package '$pkg' (scripts/install-deps.sh)" >&2
		exit 1
	fi
done

. "$(dirname "$0")/../server.sh"
server_start "$bin" --data "$tmp/data"

# req METHOD PATH [BODY]: a request whose status we do not check here.
req() {
	curl -s -o /dev/null -X "$1" -H 'Content-Type: application/json' \
	    ${3:+--data "$3"} "$url$2" || fail "curl $1 $2 failed"
}

req POST /collections '{"name": "m", "dimension": 3}'
req POST /collections/m/vectors/batch \
    '{"vectors": [{"id": 1, "data": [1, 0, 0]}, {"id": 2, "data": [0, 1, 0]}]}'
req POST /collections/m/search '{"vector": [1, 0, 0], "limit": 2}'
req POST /collections/m/points/search/batch '{"searches": [{"vector": [0, 1, 0]}]}'
req GET /collections/nope
req POST /collections/m/search '{"vector": [1, 0]}'
req PUT /collections '{}'
req GET /nope

curl -sf "$url/metrics" >"$tmp/metrics" || fail "GET /metrics failed"
grep -q '^vecdb_http_requests_total{' "$tmp/metrics" ||
    fail "no vecdb_http_requests_total samples"
if ! promtool check metrics <"$tmp/metrics"; then
	echo "--- /metrics:" >&2
	cat "$tmp/metrics" >&2
	fail "promtool check metrics found problems"
fi

server_stop
echo "1 passed, 0 failed"
