#!/usr/bin/env bash
# cluster.sh: a vecdb cluster on this machine, from the built binaries.
#
#   scripts/cluster.sh up     [--shards N] [--replicas R] [--routers K]
#                             [--dir DIR] [--bin BINDIR] [--free-ports]
#                             [--tls]
#   scripts/cluster.sh status [--dir DIR]
#   scripts/cluster.sh down   [--dir DIR]
#
# up starts N shards (a primary vecdb-node and R replicas each) and K
# vecdb-routers on 127.0.0.1, writes the routers' topology, and returns once
# every process has printed its listening line. Ports are fixed by default
# (router i: REST 8080+i, binary API 9090+i; node j: RPC 7000+j, admin
# 9100+j, j counting primaries and replicas shard by shard); --free-ports
# lets every process pick a free one (what the tests use).
#
# DIR (default ./vecdb-cluster) holds everything: data/NAME (each node's
# database, kept by down), logs/NAME.log, topology.json, members (one line
# per process: name kind shard role pid rpc-url http-url), and
# prometheus/ (deploy/prometheus/prometheus.yml with its target files, for
# `prometheus --config.file=DIR/prometheus/prometheus.yml`).
#
# --tls makes a throwaway CA in DIR/tls (scripts/tls-ca.sh) and a
# certificate for each process: routers and nodes then talk mutual TLS
# (tls+tcp:// urls), and the routers serve REST over HTTPS (curl --cacert
# DIR/tls/ca.pem).
#
# Replicas need a vecdb-node built with replication (--mode replica
# --primary URL); without it, up refuses --replicas > 0.
set -euo pipefail

repo=$(cd "$(dirname "$(readlink -f "$0")")/.." && pwd)
cmd=${1:-}
[ $# -gt 0 ] && shift
shards=2
replicas=0
routers=1
dir=./vecdb-cluster
bin=${VECDB_BIN_DIR:-$repo/build/bin}
free=no
tls=no

usage() {
	sed -n '3,8p' "$0" | sed 's/^# \{0,1\}//' >&2
	exit 2
}

die() {
	echo "cluster.sh: $*" >&2
	exit 1
}

# A count in [lo, hi].
count() {
	case "$2" in '' | *[!0-9]*) die "$1 '$2' is not a number" ;; esac
	[ $((10#$2)) -ge "$3" ] && [ $((10#$2)) -le "$4" ] ||
	    die "$1 must be within $3..$4, not $2"
	echo $((10#$2))
}

while [ $# -gt 0 ]; do
	case "$1" in
	--shards) shards=$(count --shards "${2:-}" 1 64); shift 2 ;;
	--replicas) replicas=$(count --replicas "${2:-}" 0 8); shift 2 ;;
	# At most 10, so that fixed binary-API ports (9090+i) stay below the
	# nodes' admin ports (9100+j).
	--routers) routers=$(count --routers "${2:-}" 1 10); shift 2 ;;
	--dir) dir=${2:?--dir needs a directory}; shift 2 ;;
	--bin) bin=${2:?--bin needs a directory}; shift 2 ;;
	--free-ports) free=yes; shift ;;
	--tls) tls=yes; shift ;;
	-h | --help) usage ;;
	*) echo "cluster.sh: unknown argument '$1'" >&2; usage ;;
	esac
done

# ---- members: one line per process we started.

members_file() { echo "$dir/members"; }

# Is pid $1 alive and still the process we started (binary $2, our dir)?
ours() {
	local pid=$1 exe=$2 cmdline
	kill -0 "$pid" 2>/dev/null || return 1
	cmdline=$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null) || return 1
	case "$cmdline" in *"$exe"*"$dir_abs"*) return 0 ;; esac
	return 1
}

# Stop one process: SIGTERM, then SIGKILL after 10 s. It has stopped
# once it is no longer ours: gone, or a zombie (which has no cmdline)
# that its new parent has yet to reap; some inits reap only every few
# seconds, later still on a loaded machine.
stop_pid() {
	local pid=$1 exe=$2
	ours "$pid" "$exe" || return 0
	kill -TERM "$pid" 2>/dev/null || return 0
	for _ in $(seq 100); do
		ours "$pid" "$exe" || return 0
		sleep 0.1
	done
	echo "cluster.sh: $exe ($pid) ignored SIGTERM for 10 s: SIGKILL" >&2
	kill -KILL "$pid" 2>/dev/null || true
}

# Stop every member, routers first, then replicas, then primaries, so that
# no router sees its shards go while it still serves.
stop_all() {
	local f
	f=$(members_file)
	[ -f "$f" ] || return 0
	for kind in router replica primary; do
		while read -r name k shard role pid rpc http; do
			[ "$role" = "$kind" ] || continue
			case "$k" in
			router) stop_pid "$pid" vecdb-router ;;
			node) stop_pid "$pid" vecdb-node ;;
			esac
		done <"$f"
	done
	rm -f "$f"
}

# up and down of one DIR take turns: a down that comes while up is still
# starting processes waits for it, and then stops them all.
lock() {
	exec 9>"$dir_abs/.lock"
	flock 9
}

# ---- up

# Start one process in its own session (it outlives this script), its
# output in logs/NAME.log; wait for the line "$3" on stdout and print it.
start() {
	local name=$1 exe=$2 want=$3 log line
	shift 3
	log=$dir_abs/logs/$name.log
	: >"$log"
	setsid env -u VECDB_API_KEY -u VECDB_CONFIG "$bin/$exe" "$@" \
	    </dev/null >"$log" 2>&1 9>&- &
	started_pid=$!
	for _ in $(seq 100); do
		line=$(grep -m1 "$want" "$log" || true)
		if [ -n "$line" ]; then
			started_line=$line
			return 0
		fi
		if ! kill -0 "$started_pid" 2>/dev/null; then
			echo "cluster.sh: $name exited before it listened:" >&2
			tail -20 "$log" >&2
			return 1
		fi
		sleep 0.1
	done
	echo "cluster.sh: $name printed no listening line in 10 s:" >&2
	tail -20 "$log" >&2
	kill -TERM "$started_pid" 2>/dev/null || true
	return 1
}

# --tls: the scheme of rpc urls, and the flags that give process $1 its
# certificate (made on first use).
scheme() { [ $tls = yes ] && echo tls+tcp || echo tcp; }

tls_args() {
	tls_flags=()
	[ $tls = yes ] || return 0
	[ -f "$dir_abs/tls/$1.pem" ] ||
	    "$repo/scripts/tls-ca.sh" "$dir_abs/tls" "$1" || return 1
	tls_flags=(--tls-ca "$dir_abs/tls/ca.pem" --tls-cert
	    "$dir_abs/tls/$1.pem" --tls-key "$dir_abs/tls/$1.key")
}

# If up fails half-way, what it started is stopped again.
rollback() {
	echo "cluster.sh: up failed; stopping what it started" >&2
	stop_all
}

# Start a node: name role shard index [primary-url]. Sets node_rpc and
# node_http from its printed line.
start_node() {
	local name=$1 role=$2 shard=$3 j=$4 primary=${5:-} rpc admin
	if [ $free = yes ]; then
		rpc=$(scheme)://127.0.0.1:0
		admin=0
	else
		rpc=$(scheme)://127.0.0.1:$((7000 + j))
		admin=$((9100 + j))
	fi
	mkdir -p "$dir_abs/data/$name"
	tls_args "$name" || return 1
	local args=(--data "$dir_abs/data/$name" --rpc "$rpc"
	    --admin-port "$admin" --node-id "$name" --mode "$role"
	    "${tls_flags[@]}")
	[ "$role" = replica ] && args+=(--primary "$primary")
	start "$name" vecdb-node 'vecdb-node .*: rpc ' "${args[@]}" || return 1
	node_rpc=$(echo "$started_line" |
	    sed -n 's/.* rpc \([a-z+]*tcp:[^ ]*\) .*/\1/p')
	node_http=$(echo "$started_line" |
	    sed -n 's/.* admin \(http:[^ ]*\) .*/\1/p')
	[ -n "$node_rpc" ] && [ -n "$node_http" ] ||
	    { echo "cluster.sh: $name: cannot read '$started_line'" >&2
	      return 1; }
	echo "$name node $shard $role $started_pid $node_rpc $node_http" \
	    >>"$(members_file)"
}

start_router() {
	local i=$1 port rpc
	if [ $free = yes ]; then
		port=0
		rpc=$(scheme)://127.0.0.1:0
	else
		port=$((8080 + i))
		rpc=$(scheme)://127.0.0.1:$((9090 + i))
	fi
	tls_args "router-$i" || return 1
	start "router-$i" vecdb-router 'vecdb-router .*: serving ' \
	    --topology "$dir_abs/topology.json" --host 127.0.0.1 \
	    --port "$port" --rpc "$rpc" "${tls_flags[@]}" || return 1
	local http rpcurl
	http=$(echo "$started_line" |
	    sed -n 's/.* serving \(https\{0,1\}:[^ ]*\).*/\1/p')
	rpcurl=$(echo "$started_line" |
	    sed -n 's/.* rpc \([a-z+]*tcp:[^ ]*\).*/\1/p')
	[ -n "$http" ] ||
	    { echo "cluster.sh: router-$i: cannot read '$started_line'" >&2
	      return 1; }
	echo "router-$i router - router $started_pid ${rpcurl:--} $http" \
	    >>"$(members_file)"
}

# The topology and the Prometheus targets, from the members file.
write_config() {
	local f s first
	f=$(members_file)
	{
		echo '{"shards": ['
		for ((s = 0; s < shards; s++)); do
			local p reps
			p=$(awk -v s="$s" '$3 == s && $4 == "primary" { print $6 }' "$f")
			reps=$(awk -v s="$s" '$3 == s && $4 == "replica" {
			    printf "%s\"%s\"", n++ ? ", " : "", $6 }' "$f")
			printf '  {"id": %d, "primary": "%s", "replicas": [%s]}%s\n' \
			    "$s" "$p" "$reps" "$([ $s -lt $((shards - 1)) ] && echo ,)"
		done
		echo ']}'
	} >"$dir_abs/topology.json.tmp"
	mv "$dir_abs/topology.json.tmp" "$dir_abs/topology.json"
}

write_prometheus() {
	local f p=$dir_abs/prometheus
	f=$(members_file)
	mkdir -p "$p/targets"
	cp "$repo/deploy/prometheus/prometheus.yml" "$p/prometheus.yml"
	awk '$2 == "router" { sub("^http://", "", $7); t[n++] = $7 }
	    END { printf "[{\"targets\": ["
		  for (i = 0; i < n; i++) printf "%s\"%s\"", i ? ", " : "", t[i]
		  print "]}]" }' "$f" >"$p/targets/routers.json"
	awk '$2 == "node" { sub("^http://", "", $7)
		  e[n++] = sprintf("{\"targets\": [\"%s\"], \"labels\": " \
		      "{\"shard\": \"%s\", \"role\": \"%s\", \"node\": \"%s\"}}",
		      $7, $3, $4, $1) }
	    END { printf "["; for (i = 0; i < n; i++)
		  printf "%s%s", i ? ",\n " : "", e[i]; print "]" }' \
	    "$f" >"$p/targets/nodes.json"
}

up() {
	for exe in vecdb-node vecdb-router; do
		[ -x "$bin/$exe" ] || die "no $bin/$exe: build first" \
		    "(cmake --build build) or pass --bin"
	done
	if [ "$replicas" -gt 0 ] &&
	    ! "$bin/vecdb-node" --help 2>&1 | grep -q -- '--primary'; then
		die "this vecdb-node has no --primary (no replication yet):" \
		    "use --replicas 0"
	fi
	mkdir -p "$dir"
	dir_abs=$(cd "$dir" && pwd)
	lock
	if [ -s "$(members_file)" ]; then
		die "$dir_abs already has a cluster (members file): run down first"
	fi
	mkdir -p "$dir_abs/logs"
	: >"$(members_file)"
	trap rollback ERR
	local s r j=0
	for ((s = 0; s < shards; s++)); do
		start_node "s$s-primary" primary "$s" $j
		local purl=$node_rpc
		j=$((j + 1))
		for ((r = 0; r < replicas; r++)); do
			start_node "s$s-replica-$r" replica "$s" $j "$purl"
			j=$((j + 1))
		done
	done
	write_config
	for ((r = 0; r < routers; r++)); do
		start_router "$r"
	done
	write_prometheus
	trap - ERR
	local rest
	rest=$(awk '$2 == "router" { print $7; exit }' "$(members_file)")
	echo "cluster up in $dir_abs: $shards shards x (1 primary +" \
	    "$replicas replicas), $routers routers"
	if [ $tls = yes ]; then
		echo "REST: $rest   (try: curl -s --cacert $dir_abs/tls/ca.pem" \
		    "$rest/collections)"
	else
		echo "REST: $rest   (try: curl -s $rest/collections)"
	fi
	echo "Prometheus: prometheus --config.file=$dir_abs/prometheus/prometheus.yml"
}

# ---- status: one line per process, its pid and health; exit 1 if any is
# down or unhealthy.

probe() {
	local ca=()
	[ -f "$dir_abs/tls/ca.pem" ] && ca=(--cacert "$dir_abs/tls/ca.pem")
	curl -s "${ca[@]}" -o /dev/null -m 2 -w '%{http_code}' "$1" \
	    2>/dev/null || true
}

status() {
	local f bad=0
	f=$(members_file)
	[ -f "$f" ] || { echo "no cluster in $dir"; return 1; }
	printf '%-16s %-8s %-5s %-8s %-8s %-28s %s\n' NAME ROLE SHARD PID \
	    STATE RPC HEALTH
	while read -r name kind shard role pid rpc http; do
		local state=up health
		local exe=vecdb-node
		[ "$kind" = router ] && exe=vecdb-router
		ours "$pid" "$exe" || state=down
		if [ $state = down ]; then
			health=-
		elif [ "$kind" = router ]; then
			health="health $(probe "$http/health")"
		else
			health="health $(probe "$http/health") ready $(probe "$http/ready")"
		fi
		case "$state $health" in
		"up health 200" | "up health 200 ready 200") ;;
		*) bad=1 ;;
		esac
		printf '%-16s %-8s %-5s %-8s %-8s %-28s %s\n' "$name" "$role" \
		    "$shard" "$pid" "$state" "$rpc" "$health"
	done <"$f"
	return $bad
}

down() {
	lock
	if [ ! -f "$(members_file)" ]; then
		echo "no cluster in $dir"
		return 0
	fi
	stop_all
	echo "cluster in $dir_abs stopped (data kept in $dir_abs/data)"
}

case "$cmd" in
up) up ;;
status | down)
	[ -d "$dir" ] || die "no directory $dir"
	dir_abs=$(cd "$dir" && pwd)
	"$cmd"
	;;
*) [ -n "$cmd" ] && echo "cluster.sh: unknown command '$cmd'" >&2; usage ;;
esac
