#!/usr/bin/env bash
# `vecdb-bench ingest` in-process on a small load: it must succeed, and its
# last line must carry every figure, with no probe miss (a point
# acknowledged before a probe that the probe's search did not find).
#   bench_ingest_test.sh VECDB_BENCH
set -euo pipefail
bench=$1

out=$(VECDB_LOG=warn "$bench" ingest --n 3000 --dim 16)
last=$(printf '%s\n' "$out" | tail -n 1)
f='[0-9]+(\.[0-9]+)?'
re="^acked_s=$f searchable_s=$f points_per_s=$f search_p50_ms=$f"
re="$re search_p99_ms=$f search_max_ms=$f peak_rss_mib=$f probes=[0-9]+"
re="$re probe_misses=0\$"
if ! printf '%s\n' "$last" | grep -Eq "$re"; then
	echo "unexpected last line: $last" >&2
	exit 1
fi
echo "$last"
