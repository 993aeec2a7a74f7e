#!/usr/bin/env bash
# cluster_test.sh SRCDIR BINDIR: scripts/cluster.sh up with 2 shards, no
# replicas and 1 router on free loopback ports; status reports every process
# healthy; REST through the router stores points on both shards; a second up
# is refused; status notices a dead node; down leaves no process. Then
# up --tls: mutual TLS inside, HTTPS in front, a replica fed over it.
# A watchdog runs `down` even if this script is killed.
set -euo pipefail
src=${1:?usage: cluster_test.sh SRCDIR BINDIR}
bindir=${2:?usage: cluster_test.sh SRCDIR BINDIR}
cluster=$src/scripts/cluster.sh
for tool in curl jq promtool; do
	command -v "$tool" >/dev/null 2>&1 && continue
	echo "FAIL: '$tool' is missing: run scripts/install-deps.sh" >&2
	exit 1
done

tmp=$(mktemp -d "${TMPDIR:-/tmp}/vecdb-cluster-XXXXXX")
dir=$tmp/c
cleanup() {
	"$cluster" down --dir "$dir" >/dev/null 2>&1 || true
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 1' INT TERM
# The watchdog: if this shell dies without its trap (SIGKILL from a test
# timeout), the cluster is stopped all the same.
me=$$
( trap '' INT TERM
  while kill -0 "$me" 2>/dev/null; do sleep 1; done
  "$cluster" down --dir "$dir" >/dev/null 2>&1
  rm -rf "$tmp" ) </dev/null >/dev/null 2>&1 &

. "$(dirname "$0")/../e2e/lib.sh"

logs="$dir/logs/*.log"   # what bad() shows

"$cluster" up --shards 2 --replicas 0 --routers 1 --free-ports \
    --bin "$bindir" --dir "$dir" || fatal "cluster.sh up failed"
[ "$(wc -l <"$dir/members")" = 3 ] && ok ||
    bad "expected 3 members: $(cat "$dir/members")"
[ "$(jq '.shards | length' "$dir/topology.json")" = 2 ] && ok ||
    bad "topology: $(cat "$dir/topology.json")"
out=$("$cluster" status --dir "$dir") && ok || bad "status failed: $out"
[ "$(echo "$out" | grep -c ' up ')" = 3 ] && ok || bad "status: $out"

# REST through the router: 40 points spread over both shards.
router=$(awk '$2 == "router" { print $7 }' "$dir/members")
post /collections '{"name": "t", "dimension": 2}' >/dev/null && ok ||
    bad "create collection through the router"
points=$(points_json 40)
post /collections/t/vectors/batch "{\"vectors\": $points}" >/dev/null &&
    ok || bad "batch insert through the router"
n=$(post /collections/t/points/count '{}' | jq -r '.data.count') || n=
[ "$n" = 40 ] && ok || bad "count through the router: '$n', expected 40"
hit=$(post /collections/t/search '{"vector": [40, 1], "limit": 1}' |
    jq -r '.data[0].id') || hit=
[ "$hit" = 40 ] && ok || bad "search through the router: '$hit'"

# Each node holds some of the points, together all of them.
total=0
for admin in $(awk '$2 == "node" { print $7 }' "$dir/members"); do
	v=$(curl -sf "$admin/metrics" |
	    sed -n 's/^vecdb_vectors_total{collection="t"} \([0-9]*\)$/\1/p')
	[ -n "$v" ] && [ "$v" -gt 0 ] && ok ||
	    bad "node $admin holds '$v' points of t"
	total=$((total + ${v:-0}))
done
[ "$total" = 40 ] && ok || bad "the nodes hold $total points, expected 40"

# The Prometheus config cluster.sh wrote is valid with its targets.
out=$(promtool check config "$dir/prometheus/prometheus.yml" 2>&1) &&
    ! echo "$out" | grep -q WARNING && ok || bad "promtool: $out"
[ "$(jq '.[0].targets | length' "$dir/prometheus/targets/routers.json")" = 1 ] &&
    [ "$(jq 'length' "$dir/prometheus/targets/nodes.json")" = 2 ] && ok ||
    bad "prometheus targets: $(cat "$dir"/prometheus/targets/*.json)"

# A second up on the same directory is refused and changes nothing.
if "$cluster" up --free-ports --bin "$bindir" --dir "$dir" 2>/dev/null; then
	bad "a second up was accepted"
else
	ok
fi
[ "$(wc -l <"$dir/members")" = 3 ] && ok || bad "second up changed members"

# status notices a dead node.
pids=$(awk '{ print $5 }' "$dir/members")
victim=$(awk '$1 == "s1-primary" { print $5 }' "$dir/members")
kill -KILL "$victim"
for _ in $(seq 50); do kill -0 "$victim" 2>/dev/null || break; sleep 0.1; done
if out=$("$cluster" status --dir "$dir"); then
	bad "status exited 0 with a dead node: $out"
else
	echo "$out" | grep -q '^s1-primary .* down ' && ok ||
	    bad "status does not show s1-primary down: $out"
fi

"$cluster" down --dir "$dir" >/dev/null && ok || bad "down failed"
# gone, or exited and not yet reaped by its parent (init, which may take
# seconds): a zombie is not left running
alive=""
for p in $pids; do
	kill -0 "$p" 2>/dev/null &&
	    [ "$(awk '{ print $3 }' "/proc/$p/stat" 2>/dev/null)" != Z ] &&
	    alive="$alive $p"
done
[ -z "$alive" ] && ok || bad "processes left after down:$alive"
[ ! -e "$dir/members" ] && ok || bad "members file left after down"
if "$cluster" status --dir "$dir" >/dev/null; then
	bad "status exited 0 after down"
else
	ok
fi

# --tls: 1 shard of a primary and a replica, mutual TLS inside, HTTPS in
# front; writes reach the replica over tls+tcp.
tdir=$tmp/tls
"$cluster" up --shards 1 --replicas 1 --routers 1 --free-ports --tls \
    --bin "$bindir" --dir "$tdir" >/dev/null || fatal "up --tls failed"
dir=$tdir   # what cleanup, the watchdog and bad() look at from here
logs="$dir/logs/*.log"
[ "$(jq -r '.shards[0].primary, .shards[0].replicas[0]' \
    "$tdir/topology.json" | grep -c '^tls+tcp://')" = 2 ] && ok ||
    bad "--tls topology: $(cat "$tdir/topology.json")"
# the replica is ready once it has heard from its primary
for _ in $(seq 100); do
	out=$("$cluster" status --dir "$tdir") && break
	sleep 0.1
done
[ "$(echo "$out" | grep -c ' up .*health 200')" = 3 ] &&
    "$cluster" status --dir "$tdir" >/dev/null && ok ||
    bad "--tls status: $out"
router=$(awk '$2 == "router" { print $7 }' "$tdir/members")
case "$router" in https://*) ok ;; *) bad "--tls router: '$router'" ;; esac
tpost() {
	curl -sf --cacert "$tdir/tls/ca.pem" -X POST \
	    -H 'Content-Type: application/json' --data "$2" "$router$1"
}
tpost /collections '{"name": "t", "dimension": 2}' >/dev/null &&
    tpost /collections/t/vectors/batch "{\"vectors\": $points}" >/dev/null &&
    ok || bad "--tls: writes through the router"
n=$(tpost /collections/t/points/count '{}' | jq -r '.data.count') || n=
[ "$n" = 40 ] && ok || bad "--tls count: '$n', expected 40"
# without the CA, curl cannot verify the router
if curl -sf "$router/health" >/dev/null 2>&1; then
	bad "--tls: the router's certificate verified without its CA"
else
	ok
fi
replica=$(awk '$4 == "replica" { print $7 }' "$tdir/members")
v=
for _ in $(seq 100); do
	v=$(curl -sf "$replica/metrics" |
	    sed -n 's/^vecdb_vectors_total{collection="t"} \([0-9]*\)$/\1/p')
	[ "$v" = 40 ] && break
	sleep 0.1
done
[ "$v" = 40 ] && ok || bad "--tls: the replica holds '$v' points, not 40"
"$cluster" down --dir "$tdir" >/dev/null && ok || bad "--tls down failed"
echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
