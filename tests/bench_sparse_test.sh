#!/usr/bin/env bash
# `vecdb-bench sparse` on a small corpus: it must succeed (its exit status
# says the in-memory index's and the engine's answers equal the exact
# scan's), time every mode each round, and say all answers were equal.
#   bench_sparse_test.sh VECDB_BENCH
set -euo pipefail
bench=$1
export TMPDIR=$(mktemp -d "${TMPDIR:-/tmp}/vecdb-bench-sparse.XXXXXX")
trap 'rm -rf "$TMPDIR"' EXIT INT TERM

out=$(VECDB_LOG=warn "$bench" sparse --n 3000 --vocab 3000 --terms 30 \
	--queries 40 --rounds 2)
printf '%s\n' "$out"
f='[0-9]+\.[0-9]+'
for mode in index engine hybrid scan; do
	n=$(printf '%s\n' "$out" | grep -Ec "^mode=$mode queries=40 qps=$f p50_ms=$f p99_ms=$f\$")
	if [ "$n" -ne 2 ]; then
		echo "expected 2 rounds of mode=$mode, got $n" >&2
		exit 1
	fi
done
for line in answers_equal=40/40 engine_answers_equal=40/40; do
	if ! printf '%s\n' "$out" | grep -qx "$line"; then
		echo "expected $line" >&2
		exit 1
	fi
done
# the temp dir holds nothing once it is done: the database is removed
if [ -n "$(ls -A "$TMPDIR")" ]; then
	echo "left behind: $(ls -A "$TMPDIR")" >&2
	exit 1
fi
