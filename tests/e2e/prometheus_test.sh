#!/usr/bin/env bash
# prometheus_test.sh SRCDIR BINDIR: a real Prometheus scrapes a local
# cluster (a primary, its replica and a router, from scripts/cluster.sh)
# with deploy/prometheus/prometheus.yml, and its HTTP API must return what
# the test did: vecdb_vectors_total the points written, a positive
# rate(vecdb_queries_total[1m]) after the searches, and
# vecdb_replication_lag_records for the replica (0 once it caught up).
# Everything binds 127.0.0.1; the trap stops the cluster and Prometheus.
set -euo pipefail
src=${1:?usage: prometheus_test.sh SRCDIR BINDIR}
bin=${2:?usage: prometheus_test.sh SRCDIR BINDIR}
for t in prometheus curl jq python3; do
	command -v "$t" >/dev/null 2>&1 || {
		echo "FAIL: $t is missing (scripts/install-deps.sh)" >&2; exit 1; }
done

tmp=$(mktemp -d "${TMPDIR:-/tmp}/vecdb-prom-XXXXXX")
prom_pid=
cleanup() {
	set +e
	[ -n "$prom_pid" ] && kill "$prom_pid" 2>/dev/null && wait "$prom_pid"
	VECDB_BIN_DIR=$bin "$src/scripts/cluster.sh" down --dir "$tmp/cl" \
	    >/dev/null 2>&1
	rm -rf "$tmp"
}
trap cleanup EXIT
fail() {
	echo "FAIL: $*" >&2
	tail -20 "$tmp/prom.log" >&2 2>/dev/null || true
	exit 1
}

VECDB_BIN_DIR=$bin "$src/scripts/cluster.sh" up --free-ports --shards 1 \
    --replicas 1 --routers 1 --dir "$tmp/cl" >"$tmp/up.log" 2>&1 ||
    { cat "$tmp/up.log" >&2; fail "cluster.sh up"; }
router=$(grep -o 'REST: http://127.0.0.1:[0-9]*' "$tmp/up.log" |
    sed 's/REST: //')
[ -n "$router" ] || fail "no router URL in: $(cat "$tmp/up.log")"

# A free port for Prometheus: bind 0 is not offered, so ask the kernel.
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",
0)); print(s.getsockname()[1])')
prometheus --config.file="$tmp/cl/prometheus/prometheus.yml" \
    --storage.tsdb.path="$tmp/tsdb" --web.listen-address="127.0.0.1:$port" \
    >"$tmp/prom.log" 2>&1 &
prom_pid=$!
prom=http://127.0.0.1:$port

# Prometheus must have scraped once before the traffic, or rate() over the
# first samples has nothing to compare with.
query() {
	curl -sf --get "$prom/api/v1/query" --data-urlencode "query=$1"
}
wait_for() { # EXPR JQ-TEST: poll up to 60 s until the result passes
	local out
	for _ in $(seq 120); do
		if out=$(query "$1") && echo "$out" | jq -e "$2" >/dev/null
		then
			echo "$out"
			return 0
		fi
		sleep 0.5
	done
	fail "$1 never satisfied $2; last answer: ${out:-none}"
}
wait_for 'up{job="vecdb-router"}' '.data.result | length == 1 and
    (.[0].value[1] == "1")' >/dev/null
wait_for 'up{job="vecdb-node"}' '[.data.result[] | select(.value[1] ==
    "1")] | length == 2' >/dev/null

# Traffic: 500 points, then 40 searches.
curl -sf -X POST "$router/collections" -d '{"name": "m", "dimension": 3}' \
    >/dev/null || fail "create collection"
seq 500 | awk 'BEGIN { printf "{\"vectors\": [" }
    { printf "%s{\"id\": %d, \"data\": [%d, %d, 1]}", (NR > 1 ? ", " : ""),
      $1, $1 % 7, $1 % 11 }
    END { print "]}" }' >"$tmp/points.json"
curl -sf -X POST "$router/collections/m/vectors/upsert" \
    --data-binary @"$tmp/points.json" >/dev/null || fail "upsert"
for i in $(seq 40); do
	curl -sf -X POST "$router/collections/m/search" \
	    -d "{\"vector\": [1, 2, $i], \"limit\": 3}" >/dev/null ||
	    fail "search $i"
done

# What Prometheus saw must match.
out=$(wait_for 'vecdb_vectors_total{job="vecdb-router",collection="m"}' \
    '.data.result | length == 1 and .[0].value[1] == "500"')
echo "vectors through the router: $(echo "$out" | jq -c '.data.result[0].value')"
out=$(wait_for 'vecdb_vectors_total{job="vecdb-node",collection="m"}' \
    '[.data.result[] | select(.value[1] == "500")] | length == 2')
echo "vectors on the primary and on the replica: 500 each"
wait_for 'vecdb_queries_total{job="vecdb-router"}' \
    '.data.result | length == 1 and .[0].value[1] == "40"' >/dev/null
echo "queries through the router: 40"
out=$(wait_for 'rate(vecdb_queries_total{job="vecdb-router"}[1m])' \
    '.data.result | length == 1 and (.[0].value[1] | tonumber) > 0')
echo "query rate through the router: $(echo "$out" | jq -r '.data.result[0].value[1]')/s"
out=$(wait_for 'vecdb_replication_lag_records' \
    '.data.result | length == 1 and .[0].value[1] == "0"')
echo "replication lag of $(echo "$out" | jq -r '.data.result[0].metric.replica'): 0 records"
echo "6 passed, 0 failed"
