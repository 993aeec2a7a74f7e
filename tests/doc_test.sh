#!/usr/bin/env bash
# Runs the examples of a doc against a fresh `vecdb serve`, so the docs
# cannot drift from the code. In the markdown, a line `<!-- run -->` marks
# the next ```sh block as a command to run (with $VECDB set to the server's
# URL); when a ```json block follows it directly, the command's output must
# equal that block exactly. Commands run in an empty scratch directory
# (removed afterwards), so an example may write files.
# With ROUTES.c, every route of its table must also be called by some run
# example (tests/doc_routes.sh).
#   doc_test.sh BIN DOC.md [ROUTES.c]
set -euo pipefail
bin=$1
doc=$2
routes=${3:-}
. "$(dirname "$0")/server.sh"
server_start "$bin" --data "$tmp/data"
export VECDB="$url"

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

# The route check reads only the doc, so its verdict comes first; the
# examples still run, to report everything that is wrong at once.
routes_ok=1
if [ -n "$routes" ] &&
    ! "$(dirname "$0")/doc_routes.sh" "$routes" "$tmp"/cmd*; then
	routes_ok=0
fi

mkdir "$tmp/work"
count=0
failed=0
for cmd in $(ls "$tmp"/cmd* 2>/dev/null | sort -V); do
	n=${cmd##*/cmd}
	count=$((count + 1))
	if ! got=$(cd "$tmp/work" && bash -e "$cmd" 2>&1); then
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
