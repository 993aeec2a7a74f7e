#!/usr/bin/env bash
# Runs the embedded example in a fresh temp dir, twice (the second run finds
# its collection already there), and checks its output against the block
# marked <!-- embedded-example-output --> in docs/EMBEDDED.md.
set -euo pipefail
bin=$1
doc=$2
dir=$(mktemp -d "${TMPDIR:-/tmp}/vecdb-example-XXXXXX")
trap 'rm -rf "$dir"' EXIT

want=$(awk '/<!-- embedded-example-output -->/{f=1; next}
	f && /^```/{if (started) exit; started=1; next}
	f && started {print}' "$doc")
if [ -z "$want" ]; then
	echo "no expected output block found in $doc" >&2
	exit 1
fi
for run in 1 2; do
	got=$("$bin" "$dir/data")
	if [ "$got" != "$want" ]; then
		echo "run $run: output differs from $doc" >&2
		diff <(echo "$want") <(echo "$got") >&2 || true
		exit 1
	fi
done
echo "embedded example: output matches $doc"
