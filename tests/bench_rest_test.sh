#!/usr/bin/env bash
# `vecdb-bench rest` in-process on a small load: it must succeed, run each
# round's HTTP and in-process modes with the same queries, and print one
# ratio a round, each a positive number.
#   bench_rest_test.sh VECDB_BENCH
set -euo pipefail
bench=$1
dir=$(mktemp -d "${TMPDIR:-/tmp}/vecdb-bench-rest.XXXXXX")
trap 'rm -rf "$dir"' EXIT INT TERM

out=$(VECDB_LOG=warn "$bench" rest --n 2000 --dim 16 --conns 2 \
	--seconds 0.5 --rounds 2 --dir "$dir/db")
printf '%s\n' "$out"
f='[0-9]+\.[0-9]+'
for mode in http inproc; do
	n=$(printf '%s\n' "$out" | grep -Ec "^mode=$mode conns=2 qps=$f p50_ms=$f p99_ms=$f\$")
	if [ "$n" -ne 2 ]; then
		echo "expected 2 rounds of mode=$mode, got $n" >&2
		exit 1
	fi
done
ratios=$(printf '%s\n' "$out" | sed -n 's/^http_over_inproc_qps=//p')
if [ "$(printf '%s\n' "$ratios" | grep -Ec "^$f\$")" -ne 2 ] ||
	printf '%s\n' "$ratios" | grep -Eq '^0\.000$'; then
	echo "expected 2 positive ratios, got: $ratios" >&2
	exit 1
fi
