#!/usr/bin/env bash
# bench-router.sh: REST search QPS and p99 through a vecdb-router over
# SHARDS vecdb-node shards vs against one `vecdb serve`, the same points in
# both, in the same run.
#
#   scripts/bench-router.sh
#
# Starts SHARDS nodes, a router over them and a vecdb serve, each on free
# loopback ports with its data in a temp dir; writes N seeded DIM-d points
# into both over REST (vecdb-bench rest --port P --load 1 --search 0) and
# waits for their indexers; then runs `vecdb-bench rest --port P --search 1`
# against the router (REST, then the same searches over its binary API:
# --rpc) and against vecdb serve, ROUNDS times in turn (the machine may be
# shared: alternating shows the noise), and prints each round's
# router_over_serve_qps (router REST over vecdb serve). Servers are
# pinned to SERVER_CPUS and the client to CLIENT_CPUS with taskset.
#
# After each router phase it prints `together rest groups=.. requests=..`:
# the groups of searches the router sent together as one batch during
# the phase (its /metrics counters), and the search requests in them.
#
# After each phase it prints what the phase cost each server process in
# CPU time a query: `cpu_us_a_query rest plain-router=.. plain-node0=..
# plain-node1=..` (or `serve=..`), utime + stime from /proc/PID/stat over the phase divided by
# the queries the phase answered. With the servers on one core that is
# saturated, the shares add up to the core's time a query, and say which
# process a routed search spends it in (docs/PERFORMANCE.md).
#
# TLS=1 adds a second cluster, the same shape, whose router and nodes talk
# mutual TLS (tls+tcp://, certificates from scripts/tls-ca.sh; REST stays
# HTTP with --https off): each round then also runs the searches through
# it, REST (TLS between router and nodes) and binary API (TLS on every hop).
#
# Settings (environment): N (50000), DIM (128), CONNS (4), SECS (8),
# SHARDS (2), ROUNDS (2), SERVER_CPUS (1), CLIENT_CPUS (0), BIN (build/bin),
# TLS (0).
set -euo pipefail

cd "$(dirname "$0")/.."
BIN=${BIN:-build/bin}
N=${N:-50000}
DIM=${DIM:-128}
CONNS=${CONNS:-4}
SECS=${SECS:-8}   # not SECONDS: bash owns that name
SHARDS=${SHARDS:-2}
ROUNDS=${ROUNDS:-2}
SERVER_CPUS=${SERVER_CPUS:-1}
CLIENT_CPUS=${CLIENT_CPUS:-0}
TLS=${TLS:-0}

for b in vecdb vecdb-node vecdb-router vecdb-bench; do
	[ -x "$BIN/$b" ] || { echo "bench-router.sh: no $BIN/$b (build first)" >&2; exit 2; }
done

TMP=$(mktemp -d "${TMPDIR:-/tmp}/bench-router.XXXXXX")
PIDS=()

# Stop every server we started (by pid), then remove the temp dir.
cleanup() {
	for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
	for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
	rm -rf "$TMP"
}
trap cleanup EXIT

# start NAME CMD...: run CMD pinned to SERVER_CPUS in the background,
# stdout to $TMP/NAME.out, stderr to $TMP/NAME.log.
declare -A PID_OF   # server name -> pid
start() {
	local name=$1
	shift
	VECDB_DURABILITY=buffered VECDB_LOG=warn taskset -c "$SERVER_CPUS" \
		"$@" >"$TMP/$name.out" 2>"$TMP/$name.log" &
	PIDS+=($!)
	PID_OF[$name]=$!
}

# ticks NAME...: the CPU time (utime + stime, in clock ticks) each named
# server has used so far, one "name ticks" line each
ticks() {
	local n
	for n in "$@"; do
		# field 2, the command in parentheses, has no spaces here
		awk -v n="$n" '{ print n, $14 + $15 }' "/proc/${PID_OF[$n]}/stat"
	done
}

# measured LABEL OUT NAME... -- COMMAND...: run COMMAND (a bench phase,
# which prints its qps= line), its output shown and kept in $TMP/OUT, then
# print the CPU time each named server spent a query during it
measured() {
	local label=$1 out=$TMP/$2 names=() hz
	shift 2
	while [ "$1" != -- ]; do names+=("$1"); shift; done
	shift
	hz=$(getconf CLK_TCK)
	ticks "${names[@]}" >"$TMP/ticks0"
	"$@" | tee "$out"
	ticks "${names[@]}" >"$TMP/ticks1"
	awk -v hz="$hz" -v secs="$SECS" -v label="$label" '
	    FILENAME == ARGV[1] { for (i = 1; i <= NF; i++)
		if ($i ~ /^qps=/) q = substr($i, 5); next }
	    FILENAME == ARGV[2] { t0[$1] = $2; next }
	    { order[++n] = $1; t1[$1] = $2 }
	    END { if (q <= 0) exit
		line = "cpu_us_a_query " label
		for (i = 1; i <= n; i++)
			line = line sprintf(" %s=%.0f", order[i],
			    (t1[order[i]] - t0[order[i]]) / hz * 1e6 / (q * secs))
		print line }' "$out" "$TMP/ticks0" "$TMP/ticks1"
}

# ratio NAME A B: print NAME=(the QPS in $TMP/A over the QPS in $TMP/B)
ratio() {
	awk -v name="$1" '/^mode=/ { for (i = 1; i <= NF; i++)
		if ($i ~ /^qps=/) q[FILENAME] = substr($i, 5) }
	    END { if (q[ARGV[1]] > 0 && q[ARGV[2]] > 0)
		printf "%s=%.3f\n", name, q[ARGV[1]] / q[ARGV[2]] }' \
	    "$TMP/$2" "$TMP/$3"
}

# together: the router's counts of searches sent together so far
# (docs/ROUTER.md, "Searches that queue go together"): "groups requests".
together() {
	curl -s "http://127.0.0.1:$ROUTER/metrics" | awk '
	    $1 == "vecdb_router_search_batches_total" { g = $2 }
	    $1 == "vecdb_router_searches_batched_total" { q = $2 }
	    END { print g + 0, q + 0 }'
}

# together_line LABEL BEFORE AFTER: how many groups went during a phase,
# and the search requests in them
together_line() {
	local g0 q0 g1 q1
	read -r g0 q0 <<<"$2"
	read -r g1 q1 <<<"$3"
	echo "together $1 groups=$((g1 - g0)) requests=$((q1 - q0))"
}

# port NAME PREFIX: wait (10 s) for NAME's first line; the port after PREFIX.
port() {
	local i line=""
	for i in $(seq 100); do
		if [ "$(wc -l <"$TMP/$1.out")" -ge 1 ]; then
			line=$(head -n1 "$TMP/$1.out")
			break
		fi
		sleep 0.1
	done
	[[ $line == *"$2"* ]] || line=""
	line=${line#*"$2"}
	line=${line%%[!0-9]*}
	[ -n "$line" ] || { echo "bench-router.sh: $1 printed no port:" >&2; cat "$TMP/$1.log" >&2; exit 1; }
	echo "$line"
}

# cluster NAME SCHEME [TLS flags...]: SHARDS nodes and a router over them,
# each given the flags; sets ROUTER and ROUTER_RPC to the router's REST and
# binary API ports.
cluster() {
	local name=$1 scheme=$2 topo="{\"shards\": [" sep="" i p https=()
	shift 2
	[ $# -gt 0 ] && https=(--https off)   # REST stays HTTP: same client
	for ((i = 0; i < SHARDS; i++)); do
		mkdir -p "$TMP/$name-n$i"
		start "$name-node$i" "$BIN/vecdb-node" --data "$TMP/$name-n$i" \
			--rpc "$scheme://127.0.0.1:0" --admin-port 0 "$@"
		p=$(port "$name-node$i" "rpc $scheme://127.0.0.1:")
		topo+="$sep{\"id\": $i, \"primary\": \"$scheme://127.0.0.1:$p\", \"replicas\": []}"
		sep=", "
	done
	echo "$topo]}" >"$TMP/$name-topology.json"
	start "$name-router" "$BIN/vecdb-router" --topology \
		"$TMP/$name-topology.json" --host 127.0.0.1 --port 0 \
		--qdrant-port 0 --timeout-ms 10000 --rpc "$scheme://127.0.0.1:0" \
		"$@" "${https[@]}"
	ROUTER=$(port "$name-router" "serving http://127.0.0.1:")
	ROUTER_RPC=$(port "$name-router" " rpc $scheme://127.0.0.1:")
}

if [ "$TLS" = 1 ]; then
	scripts/tls-ca.sh "$TMP/tls" node >/dev/null
	cluster tls tls+tcp --tls-ca "$TMP/tls/ca.pem" --tls-cert \
		"$TMP/tls/node.pem" --tls-key "$TMP/tls/node.key"
	TLS_ROUTER=$ROUTER
	TLS_ROUTER_RPC=$ROUTER_RPC
fi
cluster plain tcp
mkdir -p "$TMP/serve"
start serve "$BIN/vecdb" serve --data "$TMP/serve" --host 127.0.0.1 --port 0
SERVE=$(port serve "serving http://127.0.0.1:")

bench() {
	taskset -c "$CLIENT_CPUS" "$BIN/vecdb-bench" rest --n "$N" --dim "$DIM" \
		--conns "$CONNS" --seconds "$SECS" "$@"
}

echo "# n=$N dim=$DIM shards=$SHARDS conns=$CONNS seconds=$SECS" \
	"servers on cpu $SERVER_CPUS, client on cpu $CLIENT_CPUS"
echo "# load: router"
bench --port "$ROUTER" --load 1 --search 0
if [ "$TLS" = 1 ]; then
	echo "# load: router over TLS"
	bench --port "$TLS_ROUTER" --load 1 --search 0
fi
echo "# load: vecdb serve"
bench --port "$SERVE" --load 1 --search 0
plain=(plain-router)
for ((i = 0; i < SHARDS; i++)); do plain+=("plain-node$i"); done
for ((r = 1; r <= ROUNDS; r++)); do
	echo "# round $r: router over $SHARDS shards (REST, then binary API)"
	b0=$(together)
	measured rest router.qps "${plain[@]}" -- bench --port "$ROUTER" \
		--load 0 --search 1
	b1=$(together)
	together_line rest "$b0" "$b1"
	measured binary binary.qps "${plain[@]}" -- bench --rpc \
		"$ROUTER_RPC" --load 0
	together_line binary "$b1" "$(together)"
	ratio binary_over_http_qps binary.qps router.qps
	if [ "$TLS" = 1 ]; then
		echo "# round $r: router over $SHARDS shards, mutual TLS inside" \
			"(REST, then binary API over TLS)"
		bench --port "$TLS_ROUTER" --load 0 --search 1 \
			--rpc "$TLS_ROUTER_RPC" --tls "$TMP/tls"
	fi
	echo "# round $r: vecdb serve"
	measured rest serve.qps serve -- bench --port "$SERVE" --load 0 \
		--search 1
	# the router's REST QPS over vecdb serve's, this round
	ratio router_over_serve_qps router.qps serve.qps
done
