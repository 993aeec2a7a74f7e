#!/usr/bin/env bash
# Runs the examples of a doc against a fresh `vecdb serve`, so the docs
# cannot drift from the code. In the markdown, a line `<!-- run -->` marks
# the next ```sh block as a command to run (with $VECDB set to the server's
# URL, $QDRANT to its Qdrant API's); `<!-- run-js -->` marks the next ```js
# block as an ES module that node runs beside the official Qdrant client
# of tests/qdrant. When a ```json or ```text block follows either
# directly, the output must equal that block exactly. Commands run in a
# scratch directory (removed afterwards), so an example may write files;
# it holds only `scripts`, a link to the repository's, and the built
# binaries are found beside BIN (VECDB_BIN_DIR, which scripts/cluster.sh
# reads).
# With ROUTES.c, every route of its table must also be called by some run
# example (tests/doc_routes.sh).
#   doc_test.sh BIN DOC.md [ROUTES.c]
set -euo pipefail
bin=$1
doc=$2
routes=${3:-}
. "$(dirname "$0")/server.sh"
qport=$(python3 -c 'import socket; s = socket.socket()
s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
server_start "$bin" --data "$tmp/data" --qdrant-port "$qport"
export VECDB="$url" QDRANT="http://127.0.0.1:$qport"
js_dir="$(cd "$(dirname "$0")" && pwd)/qdrant"

# Split the doc into numbered command / expected-output files.
awk -v dir="$tmp" '
	/^<!-- run -->$/ { want_cmd = 1; next }
	/^<!-- run-js -->$/ { want_js = 1; next }
	want_cmd && /^```sh$/ { n++; f = dir "/cmd" n; in_cmd = 1; want_cmd = 0; next }
	want_js && /^```js$/ { n++; f = dir "/cmd" n ".mjs"; in_cmd = 1; want_js = 0; next }
	in_cmd && /^```$/ { in_cmd = 0; after_cmd = 1; next }
	in_cmd { print > f; next }
	after_cmd && /^```(json|text)$/ { f = dir "/want" n; in_want = 1; after_cmd = 0; next }
	after_cmd && !/^$/ { after_cmd = 0 }
	in_want && /^```$/ { in_want = 0; next }
	in_want { print > f }
' "$doc"

# The route check reads only the doc, so its verdict comes first; the
# examples still run, to report everything that is wrong at once.
routes_ok=1
if [ -n "$routes" ] &&
    ! "$(dirname "$0")/doc_routes.sh" "$routes" "$tmp"/cmd*; then
	routes_ok=0
fi

mkdir "$tmp/work"
ln -s "$(cd "$(dirname "$0")/.." && pwd)/scripts" "$tmp/work/scripts"
export VECDB_BIN_DIR
VECDB_BIN_DIR=$(cd "$(dirname "$bin")" && pwd)
count=0
failed=0
for cmd in $(ls "$tmp"/cmd* 2>/dev/null | sort -V); do
	n=${cmd##*/cmd}
	n=${n%.mjs}
	count=$((count + 1))
	if [ "${cmd%.mjs}" != "$cmd" ]; then
		# the client's packages resolve from tests/qdrant
		run=(env -C "$js_dir" node --input-type=module -e "$(cat "$cmd")")
	else
		run=(env -C "$tmp/work" bash -e "$cmd")
	fi
	if ! got=$("${run[@]}" 2>&1); then
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
server_stop
echo "$((count - failed)) passed, $failed failed"
[ "$failed" -eq 0 ] && [ "$routes_ok" -eq 1 ]
