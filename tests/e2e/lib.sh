# lib.sh: helpers the shell tests share (source it).

# post PATH JSON: POST JSON to $router PATH; the body on stdout, and
# failure on an HTTP error.
post() {
	curl -sf -X POST -H 'Content-Type: application/json' --data "$2" \
	    "$router$1"
}

# points_json N: N points {"id": i, "data": [i, 1]} as one JSON list.
points_json() {
	for i in $(seq 1 "$1"); do
		printf '{"id": %d, "data": [%d, 1]}\n' "$i" "$i"
	done | jq -cs .
}

# free_port: a loopback TCP port nothing listens on now.
free_port() {
	python3 -c 'import socket; s = socket.socket()
s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# until_ok SECONDS CMD...: run CMD every 0.1 s until it succeeds (eval
# 'CMD' when it holds a $(...) to evaluate each time).
until_ok() {
	local end=$((SECONDS + $1))
	shift
	until "$@" >/dev/null 2>&1; do
		[ $SECONDS -lt $end ] || return 1
		sleep 0.1
	done
}

# etcd_start NAME DIR SCHEME [FLAGS...]: a one-member etcd in DIR/NAME on
# free loopback ports, its log in DIR/NAME.log, its pid appended to pids;
# sets etcd_url to its client url (SCHEME http or https). ETCD_PORTS="C P"
# gives the client and peer ports (a restart on the ones it had); they are
# left in etcd_ports.
etcd_start() {
	local name=$1 dir=$2 scheme=$3 cport pport
	shift 3
	cport=$(free_port)
	pport=$(free_port)
	[ -n "${ETCD_PORTS:-}" ] && read -r cport pport <<<"$ETCD_PORTS"
	etcd_ports="$cport $pport"
	etcd_url=$scheme://127.0.0.1:$cport
	etcd --name "$name" --data-dir "$dir/$name" \
	    --listen-client-urls "$etcd_url" \
	    --advertise-client-urls "$etcd_url" \
	    --listen-peer-urls "http://127.0.0.1:$pport" \
	    --initial-advertise-peer-urls "http://127.0.0.1:$pport" \
	    --initial-cluster "$name=http://127.0.0.1:$pport" "$@" \
	    >"$dir/$name.log" 2>&1 &
	pids+=($!)
}

# Counted checks: ok; bad MESSAGE prints it and the last lines of every
# non-empty file matching $logs (a glob the script sets, and may change
# as it goes); fatal MESSAGE is bad, then the counts, then exit 1.
passed=0
failed=0
ok() { passed=$((passed + 1)); }
bad() {
	local f
	failed=$((failed + 1))
	echo "FAIL: $*"
	for f in $logs; do
		[ -s "$f" ] && { echo "--- $f"; tail -10 "$f"; }
	done
	return 0
}
fatal() { bad "$@"; echo "$passed passed, $failed failed"; exit 1; }
