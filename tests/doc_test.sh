#!/usr/bin/env bash
# Runs the examples of a doc against a fresh `vecdb serve`, so the docs
# cannot drift from the code. In the markdown, a line `<!-- run -->` marks
# the next ```sh block as a command to run (with $VECDB set to the server's
# URL); when a ```json block follows it directly, the command's output must
# equal that block exactly.
#   doc_test.sh BIN DOC.md
set -euo pipefail
bin=$1
doc=$2
tmp=$(mktemp -d "${TMPDIR:-/tmp}/vecdb-doctest-XXXXXX")
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

"$bin" serve --data "$tmp/data" --host 127.0.0.1 --port 0 >"$tmp/out" 2>"$tmp/err" &
pid=$!
for _ in $(seq 100); do
	grep -q 'serving' "$tmp/out" 2>/dev/null && break
	sleep 0.1
done
port=$(grep -o '127\.0\.0\.1:[0-9]*' "$tmp/out" | head -1 | cut -d: -f2)
if [ -z "$port" ]; then
	echo "server did not start:" >&2
	cat "$tmp/err" >&2
	exit 1
fi
export VECDB="http://127.0.0.1:$port"

# Split the doc into numbered command / expected-output files.
awk -v dir="$tmp" '
	/^<!-- run -->$/ { want_cmd = 1; next }
	want_cmd && /^```sh$/ { n++; f = dir "/cmd" n; in_cmd = 1; want_cmd = 0; next }
	in_cmd && /^```$/ { in_cmd = 0; after_cmd = 1; next }
	in_cmd { print > f; next }
	after_cmd && /^```json$/ { f = dir "/want" n; in_want = 1; after_cmd = 0; next }
	after_cmd && !/^$/ { after_cmd = 0 }
	in_want && /^```$/ { in_want = 0; next }
	in_want { print > f }
' "$doc"

count=0
failed=0
for cmd in $(ls "$tmp"/cmd* 2>/dev/null | sort -V); do
	n=${cmd##*/cmd}
	count=$((count + 1))
	if ! got=$(bash -e "$cmd" 2>&1); then
		echo "example $n failed to run:" >&2
		cat "$cmd" >&2
		echo "$got" >&2
		failed=$((failed + 1))
		continue
	fi
	if [ -f "$tmp/want$n" ] && [ "$got" != "$(cat "$tmp/want$n")" ]; then
		echo "example $n: output differs" >&2
		cat "$cmd" >&2
		diff <(cat "$tmp/want$n") <(echo "$got") >&2 || true
		failed=$((failed + 1))
	fi
done
if [ "$count" -eq 0 ]; then
	echo "no examples found in $doc" >&2
	exit 1
fi
stop
echo "$((count - failed)) passed, $failed failed"
[ "$failed" -eq 0 ]
