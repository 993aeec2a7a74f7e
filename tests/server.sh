# server.sh: sourced by the shell tests that run a real `vecdb serve`.
# Provides server_start BIN [ARGS...] (sets $pid, $port, $url), server_stop
# (SIGTERM must end it with status 0), fail MESSAGE, and a trap that always
# stops the server and removes $tmp. Servers bind 127.0.0.1 on a free port
# and never see the caller's VECDB_* settings.

tmp=$(mktemp -d "${TMPDIR:-/tmp}/vecdb-test-XXXXXX")
pid=

# SIGTERM, SIGKILL after 10 s; then remove the temp dir.
server_cleanup() {
	if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
		kill -TERM "$pid" 2>/dev/null
		for _ in $(seq 100); do
			kill -0 "$pid" 2>/dev/null || break
			sleep 0.1
		done
		# under set -e a failing kill or wait would end the cleanup
		# before the temp dir is removed
		kill -KILL "$pid" 2>/dev/null || true
		wait "$pid" 2>/dev/null || true
	fi
	rm -rf "$tmp"
}
trap server_cleanup EXIT
trap 'exit 1' INT TERM

fail() {
	echo "FAIL: $*" >&2
	if [ -s "$tmp/err" ]; then
		echo "--- server stderr:" >&2
		tail -40 "$tmp/err" >&2
	fi
	exit 1
}

# server_start BIN [ARGS...]: start and wait for the port line.
server_start() {
	local bin=$1
	shift
	: >"$tmp/out"
	env -u VECDB_API_KEY -u VECDB_READ_ONLY_API_KEY -u VECDB_TLS_CERT \
	    -u VECDB_TLS_KEY -u VECDB_CONFIG -u VECDB_DATA_DIR -u VECDB_PORT \
	    "$bin" serve --host 127.0.0.1 --port 0 "$@" \
	    >"$tmp/out" 2>"$tmp/err" &
	pid=$!
	port=
	for _ in $(seq 100); do
		port=$(sed -n 's|.*serving https\{0,1\}://127\.0\.0\.1:\([0-9]*\) .*|\1|p' \
		    "$tmp/out")
		[ -n "$port" ] && break
		kill -0 "$pid" 2>/dev/null ||
			fail "the server died before printing its port"
		sleep 0.1
	done
	[ -n "$port" ] || fail "no port line within 10 s"
	url=http://127.0.0.1:$port
}

# server_stop: a clean shutdown is part of the contract (under the
# sanitizers a leak or an error at exit makes the status non-zero).
server_stop() {
	local rc=0
	kill -TERM "$pid"
	wait "$pid" || rc=$?
	pid=
	[ "$rc" -eq 0 ] || fail "the server exited with status $rc after SIGTERM"
}
