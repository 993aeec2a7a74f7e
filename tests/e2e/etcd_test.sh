#!/usr/bin/env bash
# etcd_test.sh BINDIR: the topology in etcd, against a real etcd (Debian's
# etcd-server) on free loopback ports in a temp dir:
# - a node started with --etcd --shard registers itself (role, rpc url)
#   under a lease; a replica too;
# - a router started with only --etcd serves the cluster, and uses a node
#   added while it runs without a restart;
# - a node that stops leaves at once; one that is killed leaves when its
#   lease expires; a promoted replica becomes the shard's primary in the
#   router's topology;
# - over https, a node registers with its TLS files as client
#   certificate, and one from another CA is refused;
# - a node whose lease expired does not overwrite a key another process
#   took meanwhile;
# - settings that cannot work stop the process at start.
# Everything it starts is stopped on exit, also on failure.
set -euo pipefail
bindir=${1:?usage: etcd_test.sh BINDIR}
for tool in etcd curl jq python3; do
	command -v "$tool" >/dev/null 2>&1 && continue
	echo "FAIL: '$tool' is missing: run scripts/install-deps.sh" >&2
	exit 1
done

tmp=$(mktemp -d "${TMPDIR:-/tmp}/vecdb-etcd-XXXXXX")
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill -KILL "$p" 2>/dev/null || true; done
	for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

logs="$tmp/*.log"   # what bad() shows

. "$(dirname "$0")/lib.sh"

# ---- etcd
etcd_start etcd "$tmp" http
until_ok 20 curl -sf "$etcd_url/health" || fatal "etcd did not start"

# The members under /vecdb/members/ as "shard node role rpc" lines.
members() {
	local k
	k=$(printf '/vecdb/members/' | base64)
	e=$(printf '/vecdb/members0' | base64)
	curl -sf -X POST "$etcd_url/v3/kv/range" \
	    -d "{\"key\": \"$k\", \"range_end\": \"$e\"}" |
	    jq -r '.kvs // [] | .[].value | @base64d | fromjson |
		"\(.shard) \(.node_id) \(.role) \(.rpc)"'
}

# node NAME SHARD [ARGS...]: start a node registered in etcd; its rpc url
# into $url, its pid into $pid.
node() {
	local name=$1 shard=$2
	shift 2
	mkdir -p "$tmp/$name"
	"$bindir/vecdb-node" --data "$tmp/$name" --rpc tcp://127.0.0.1:0 \
	    --admin-port 0 --etcd "$etcd_url" --shard "$shard" \
	    --node-id "$name" "$@" >"$tmp/$name.out" 2>"$tmp/$name.log" &
	pid=$!
	pids+=($pid)
	until_ok 20 grep -q 'rpc tcp://' "$tmp/$name.out" ||
	    fatal "$name did not start"
	url=$(sed -n 's/.* rpc \(tcp:[^ ]*\) .*/\1/p' "$tmp/$name.out")
}

# ---- a node registers itself
node a 0
a_pid=$pid
a_url=$url
# it says it started once its key is there; with no --mode it is elected
# the leader of its shard, alone in it
[ "$(members | cut -d' ' -f1,2,4)" = "0 a $a_url" ] && ok ||
    bad "members after a started: '$(members)'"
until_ok 10 eval 'test "$(members)" = "0 a primary $a_url"' && ok ||
    bad "a is not its shard's primary: '$(members)'"

# ---- a router with only --etcd
"$bindir/vecdb-router" --etcd "$etcd_url" --host 127.0.0.1 --port 0 \
    --qdrant-port 0 >"$tmp/router.out" 2>"$tmp/router.log" &
pids+=($!)
until_ok 20 grep -q 'serving http' "$tmp/router.out" ||
    fatal "the router did not start"
router=$(sed -n 's/.* serving \(http:[^ ]*\).*/\1/p' "$tmp/router.out")
post /collections '{"name": "t", "dimension": 2}' >/dev/null && ok ||
    bad "create a collection through the router"
points=$(points_json 20)
post /collections/t/vectors/batch "{\"vectors\": $points}" >/dev/null &&
    ok || bad "write through the router"
[ "$(post /collections/t/points/count '{}' | jq -r .data.count)" = 20 ] &&
    ok || bad "count through the router"

# ---- the router watches the members rather than reading them on a
# timer: while the watch is in place it reads them once a second (every
# 100 ms without one), so a 3 s window holds a few reads, not 30
metric() {
	curl -sf "$router/metrics" | awk -v m="$1" '$1 == m { print $2 }'
}
until_ok 10 eval 'test "$(metric vecdb_router_etcd_watching)" = 1' && ok ||
    bad "the router does not watch etcd: $(curl -s "$router/metrics" |
    grep etcd)"
reads0=$(metric vecdb_router_etcd_reads_total)
t0=$(date +%s%N)
sleep 3   # the window the reads are counted over
reads=$(($(metric vecdb_router_etcd_reads_total) - reads0))
ms=$((($(date +%s%N) - t0) / 1000000))
[ "$reads" -ge 1 ] && [ "$reads" -le $((ms / 1000 + 2)) ] && ok ||
    bad "the router read etcd $reads times in $ms ms while watching"

# ---- and a change is followed as etcd reports it, not at the next
# read: five changes in a row (a member key put, then deleted, by hand),
# each in the router's topology within 500 ms (the reads alone would
# miss that about half of the time)
fake_key=$(printf '/vecdb/members/0/fake' | base64 -w0)
fake_val=$(printf '{"shard": 0, "node_id": "fake", "role": "replica", "rpc": "tcp://127.0.0.1:9"}' |
    base64 -w0)
swaps() { grep -c 'topology from etcd' "$tmp/router.log" || true; }
# followed_within_ms MS: the router logged a new topology within MS ms
followed_within_ms() {
	local before=$1 end=$(($(date +%s%N) / 1000000 + $2))
	while [ "$(swaps)" = "$before" ]; do
		[ $(($(date +%s%N) / 1000000)) -lt "$end" ] || return 1
		sleep 0.01
	done
}
for i in 1 2 3 4 5; do
	before=$(swaps)
	if [ $((i % 2)) = 1 ]; then
		curl -sf -X POST "$etcd_url/v3/kv/put" -d "{\"key\": \"$fake_key\", \"value\": \"$fake_val\"}" >/dev/null
	else
		curl -sf -X POST "$etcd_url/v3/kv/deleterange" -d "{\"key\": \"$fake_key\"}" >/dev/null
	fi
	followed_within_ms "$before" 500 && ok ||
	    bad "change $i was not followed within 500 ms"
done
curl -sf -X POST "$etcd_url/v3/kv/deleterange" -d "{\"key\": \"$fake_key\"}" >/dev/null
until_ok 10 eval '! curl -sf "$router/cluster" | grep -q "127.0.0.1:9\""' && ok ||
    bad "the router kept the removed member"

# ---- a replica registers as one; the router lists it
node r 0 --mode replica --primary "$a_url"
r_url=$url
shard0() {
	curl -sf "$router/cluster" | jq -r '.data.shards[0].members |
	    map("\(.role) \(.url)") | sort | join(",")'
}
want="primary $a_url,replica $r_url"
until_ok 10 eval 'test "$(shard0)" = "$want"' && ok ||
    bad "the router's shard 0 is '$(shard0)', not '$want'"

# ---- a node added while the router runs is used
node b 1
b_pid=$pid
b_url=$url
shards() { curl -sf "$router/cluster" | jq -r '.data.shards | length'; }
until_ok 10 eval 'test "$(shards)" = 2' && ok ||
    bad "the router did not take shard 1 on: $(curl -s "$router/cluster")"
grep -q "topology from etcd: .*$b_url" "$tmp/router.log" && ok ||
    bad "the router did not log its new topology"
post /collections '{"name": "u", "dimension": 2}' >/dev/null &&
    post /collections/u/vectors/batch "{\"vectors\": $points}" >/dev/null &&
    ok || bad "write to 2 shards"
[ "$(post /collections/u/points/count '{}' | jq -r .data.count)" = 20 ] &&
    ok || bad "count over 2 shards"
held=$(curl -sf "$router/cluster" | jq -r '[.data.shards[] |
    .members[] | select(.role == "primary") | .vectors] | map(. > 0) | all')
[ "$held" = true ] && ok || bad "a shard holds none of u's points"

# vecdbctl shows each shard's leader from etcd, its term and lease
until_ok 10 eval '"$bindir/vecdbctl" --url "$router" cluster status |
    grep -q "^shard 1: leader b, term [0-9]*, lease [12]s left$"' && ok ||
    bad "cluster status: $("$bindir/vecdbctl" --url "$router" cluster status)"
"$bindir/vecdbctl" --url "$router" cluster status |
    grep -q "^shard 0: leader a, term [0-9]*, lease [0-9]*s left$" && ok ||
    bad "cluster status, shard 0: $("$bindir/vecdbctl" --url "$router" \
    cluster status)"

# ---- a node that stops leaves at once (its lease revoked)
kill -TERM "$b_pid"
wait "$b_pid" && ok || bad "node b did not stop cleanly"
[ "$(members | grep -c ' b ')" = 0 ] && ok ||
    bad "b is still registered after it stopped: $(members)"
until_ok 10 eval 'test "$(shards)" = 1' && ok ||
    bad "the router kept shard 1"

# ---- a node that is killed leaves when its lease expires (5 s)
kill -KILL "$a_pid"
[ "$(members | grep -c ' a ')" = 1 ] && ok ||
    bad "a left before its lease expired"
until_ok 15 eval 'test "$(members | grep -c " a ")" = 0' && ok ||
    bad "a is still registered 15 s after it was killed"

# ---- a promotion is followed: the router's topology takes the new
# primary (a higher term outranks a as long as a's key lives on)
post /cluster/promote '{"node": "r"}' >/dev/null && ok ||
    bad "promote r: $(post /cluster/promote '{"node": "r"}')"
until_ok 10 eval 'members | grep -q "^0 r primary "' && ok ||
    bad "r does not say it is primary: $(members)"
primary0() {
	curl -sf "$router/cluster" | jq -r '.data.shards[0].members[] |
	    select(.role == "primary") | .url'
}
until_ok 10 eval 'test "$(primary0)" = "$r_url"' && ok ||
    bad "the router's primary of shard 0 is '$(primary0)', not $r_url"
post /collections/t/vectors '{"id": 99, "vector": [9, 9]}' >/dev/null &&
    ok || bad "write to the promoted primary through the router"

# ---- etcd restarted: the router reads on a timer while it cannot watch,
# then watches again, and follows what changed meanwhile
kill -TERM "${pids[0]}"
wait "${pids[0]}" || true
until_ok 10 eval 'test "$(metric vecdb_router_etcd_watching)" = 0' && ok ||
    bad "the router still says it watches etcd with etcd down"
grep -q "not watching etcd (reading it every 100 ms meanwhile)" \
    "$tmp/router.log" && ok || bad "the router did not log its lost watch"
ETCD_PORTS=$etcd_ports etcd_start etcd "$tmp" http
until_ok 20 curl -sf "$etcd_url/health" || fatal "etcd did not restart"
until_ok 10 eval 'test "$(metric vecdb_router_etcd_watching)" = 1' && ok ||
    bad "the router did not watch etcd again after its restart"
node c 1
c_url=$url
until_ok 10 eval 'test "$(shards)" = 2' && ok ||
    bad "the router did not take shard 1 (c) on after etcd's restart"
grep -q "topology from etcd: .*$c_url" "$tmp/router.log" && ok ||
    bad "the router did not log c in its topology"
c_pid=$pid

# ---- a second node with c's node id is refused (the two would overwrite
# each other's key for as long as both run); c keeps its key
mkdir -p "$tmp/c2"
if timeout 30 "$bindir/vecdb-node" --data "$tmp/c2" --rpc tcp://127.0.0.1:0 \
    --admin-port 0 --etcd "$etcd_url" --shard 1 --node-id c \
    >"$tmp/c2.out" 2>"$tmp/c2.log"; then
	bad "a second node with node id c started"
else
	grep -q "is held by another running process.*--node-id" \
	    "$tmp/c2.log" && ok || bad "the second c did not say why: \
$(tail -3 "$tmp/c2.log")"
fi
[ "$(members | grep ' c ' | cut -d' ' -f4)" = "$c_url" ] && ok ||
    bad "c's key changed: $(members)"
kill -0 "$c_pid" && ok || bad "c stopped"

# ---- c killed and started again at once: its previous run's key is
# waited out (the lease expires), then it registers
kill -KILL "$c_pid"
wait "$c_pid" 2>/dev/null || true
node c 1
c_url=$url
grep -q "still registered (this node's previous run" "$tmp/c.log" && ok ||
    bad "the restarted c did not wait for its old key"
[ "$(members | grep ' c ' | cut -d' ' -f4)" = "$c_url" ] && ok ||
    bad "the restarted c is not registered: $(members)"
until_ok 10 eval 'curl -sf "$router/cluster" | grep -q "$c_url"' && ok ||
    bad "the router did not take the restarted c on"

# ---- c's lease expires while another process takes its key (here by
# hand: the key put with no lease, then c's lease revoked): c does not
# overwrite it, says why, and registers again once the key goes
c_key=$(printf '/vecdb/members/1/c' | base64 -w0)
c_lease=$(curl -sf -X POST "$etcd_url/v3/kv/range" -d "{\"key\": \"$c_key\"}" |
    jq -r '.kvs[0].lease')
other=$(printf '{"shard": 1, "node_id": "c", "role": "replica", "rpc": "tcp://127.0.0.1:9"}' |
    base64 -w0)
curl -sf -X POST "$etcd_url/v3/kv/put" \
    -d "{\"key\": \"$c_key\", \"value\": \"$other\"}" >/dev/null &&
    curl -sf -X POST "$etcd_url/v3/lease/revoke" -d "{\"ID\": \"$c_lease\"}" \
    >/dev/null && ok || bad "take c's key by hand"
until_ok 10 grep -q "registered by another process while this node's lease had expired" \
    "$tmp/c.log" && ok || bad "c did not say its key was taken: \
$(tail -3 "$tmp/c.log")"
sleep 1   # c's renewals go on every 400 ms: none may overwrite the key
[ "$(members | grep ' c ' | cut -d' ' -f4)" = "tcp://127.0.0.1:9" ] && ok ||
    bad "c overwrote the key another process holds: $(members)"
curl -sf -X POST "$etcd_url/v3/kv/deleterange" -d "{\"key\": \"$c_key\"}" \
    >/dev/null
until_ok 10 eval 'test "$(members | grep " c " | cut -d" " -f4)" = "$c_url"' &&
    ok || bad "c did not register again once the key went: $(members)"
until_ok 5 grep -q "/vecdb/members/1/c: registered again" "$tmp/c.log" && ok ||
    bad "c did not log that it registered again"

# ---- etcd over https, with client certificates: a node registers with
# its own TLS files, and one whose certificate another CA signed cannot
scripts=$(cd "$(dirname "$0")/../../scripts" && pwd)
"$scripts/tls-ca.sh" "$tmp/tls" etcd n >/dev/null
"$scripts/tls-ca.sh" "$tmp/other" x >/dev/null
plain_etcd=$etcd_url
etcd_start setcd "$tmp" https --cert-file "$tmp/tls/etcd.pem" \
    --key-file "$tmp/tls/etcd.key" --trusted-ca-file "$tmp/tls/ca.pem" \
    --client-cert-auth
setcd=$etcd_url
etcd_url=$plain_etcd
scurl() {
	curl -sf --cacert "$tmp/tls/ca.pem" --cert "$tmp/tls/n.pem" \
	    --key "$tmp/tls/n.key" "$@"
}
until_ok 20 scurl "$setcd/health" || fatal "etcd over https did not start"
mkdir -p "$tmp/s0"
"$bindir/vecdb-node" --data "$tmp/s0" --rpc tls+tcp://127.0.0.1:0 \
    --admin-port 0 --etcd "$setcd" --shard 0 --node-id s0 \
    --tls-ca "$tmp/tls/ca.pem" --tls-cert "$tmp/tls/n.pem" \
    --tls-key "$tmp/tls/n.key" >"$tmp/s0.out" 2>"$tmp/s0.log" &
pids+=($!)
until_ok 20 grep -q 'rpc tls+tcp://' "$tmp/s0.out" ||
    bad "a node does not start on etcd over https: $(tail -3 "$tmp/s0.log")"
k=$(printf '/vecdb/members/0/s0' | base64)
[ "$(scurl -X POST "$setcd/v3/kv/range" -d "{\"key\": \"$k\"}" |
    jq -r '.kvs[0].value | @base64d | fromjson | .rpc' |
    cut -d: -f1)" = tls+tcp ] && ok ||
    bad "s0 is not registered over https"
mkdir -p "$tmp/s1"
if "$bindir/vecdb-node" --data "$tmp/s1" --rpc tls+tcp://127.0.0.1:0 \
    --admin-port 0 --etcd "$setcd" --shard 0 --node-id s1 \
    --tls-ca "$tmp/tls/ca.pem" --tls-cert "$tmp/other/x.pem" \
    --tls-key "$tmp/other/x.key" >/dev/null 2>"$tmp/s1.log"; then
	bad "a node with another CA's certificate registered"
else
	grep -q 'etcd did not answer' "$tmp/s1.log" && ok ||
	    bad "another CA's certificate: $(cat "$tmp/s1.log")"
fi

# ---- settings that cannot work
if "$bindir/vecdb-node" --data "$tmp/x" --etcd "$etcd_url" \
    >/dev/null 2>"$tmp/x.err"; then
	bad "--etcd without --shard was accepted"
else
	grep -q -- '--etcd needs --shard' "$tmp/x.err" && ok ||
	    bad "--etcd without --shard: $(cat "$tmp/x.err")"
fi
if "$bindir/vecdb-router" --etcd "$etcd_url" --topology /dev/null \
    >/dev/null 2>"$tmp/y.err"; then
	bad "a router with both --topology and --etcd was accepted"
else
	grep -q 'both a topology file and etcd' "$tmp/y.err" && ok ||
	    bad "--topology and --etcd: $(cat "$tmp/y.err")"
fi

echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
