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

tmp=$(mktemp -d "${TMPDIR:-/tmp}/vecdb-promtool-XXXXXX")
pid=

# Stop the server (SIGTERM, then SIGKILL after 10 s) and remove the temp dir.
cleanup() {
	if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
		kill -TERM "$pid" 2>/dev/null
		for _ in $(seq 100); do
			kill -0 "$pid" 2>/dev/null || break
			sleep 0.1
		done
		kill -KILL "$pid" 2>/dev/null
		wait "$pid" 2>/dev/null
	fi
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

fail() {
	echo "promtool_test: $*" >&2
	echo "--- server stderr:" >&2
	cat "$tmp/err" >&2 2>/dev/null
	exit 1
}

: >"$tmp/out"
env -u VECDB_API_KEY -u VECDB_READ_ONLY_API_KEY -u VECDB_TLS_CERT \
    -u VECDB_TLS_KEY -u VECDB_CONFIG \
    "$bin" serve --data "$tmp/data" --host 127.0.0.1 --port 0 \
    >"$tmp/out" 2>"$tmp/err" &
pid=$!

port=
for _ in $(seq 100); do
	port=$(sed -n 's|.*serving http://127\.0\.0\.1:\([0-9]*\) .*|\1|p' \
	    "$tmp/out")
	[ -n "$port" ] && break
	kill -0 "$pid" 2>/dev/null || fail "the server died before printing its port"
	sleep 0.1
done
[ -n "$port" ] || fail "no port line within 10 s"
url=http://127.0.0.1:$port

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

# A clean shutdown is part of the contract.
kill -TERM "$pid"
wait "$pid"
rc=$?
pid=
[ "$rc" -eq 0 ] || fail "the server exited with $rc after SIGTERM"
echo "promtool_test: ok"
