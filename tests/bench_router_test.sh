#!/usr/bin/env bash
# scripts/bench-router.sh on a small load: it must succeed, run the
# router's REST and binary phases and vecdb serve's in each round, print
# each phase's CPU time a query for every server process it ran, what
# the router sent together in each of its phases, and print both ratios
# a round, each a positive number.
#   bench_router_test.sh SOURCE_DIR BINDIR
set -euo pipefail
src=$1
bin=$2

cpus=$(nproc)
server=$((cpus > 1 ? 1 : 0))
out=$(BIN="$bin" N=3000 DIM=16 CONNS=2 SECS=0.5 ROUNDS=2 \
	SERVER_CPUS=$server CLIENT_CPUS=0 "$src/scripts/bench-router.sh")
printf '%s\n' "$out"
f='[0-9]+\.[0-9]+'
fail() { echo "bench_router_test: $*" >&2; exit 1; }
count() { printf '%s\n' "$out" | grep -Ec "$1" || true; }

[ "$(count "^mode=http conns=2 qps=$f p50_ms=$f p99_ms=$f\$")" = 4 ] ||
	fail "expected 4 REST phases (router and serve, 2 rounds)"
[ "$(count "^mode=binary conns=2 qps=$f p50_ms=$f p99_ms=$f\$")" = 2 ] ||
	fail "expected 2 binary-API phases"
n='[1-9][0-9]*'
[ "$(count "^cpu_us_a_query rest plain-router=$n plain-node0=$n plain-node1=$n\$")" = 2 ] ||
	fail "expected the router's REST phases to show each process's CPU"
[ "$(count "^cpu_us_a_query binary plain-router=$n plain-node0=$n plain-node1=$n\$")" = 2 ] ||
	fail "expected the binary phases to show each process's CPU"
[ "$(count "^cpu_us_a_query rest serve=$n\$")" = 2 ] ||
	fail "expected vecdb serve's phases to show its CPU"
for m in rest binary; do
	[ "$(count "^together $m groups=[0-9]+ requests=[0-9]+\$")" = 2 ] ||
		fail "expected the router's $m phases to say what went together"
done
for r in binary_over_http_qps router_over_serve_qps; do
	[ "$(count "^$r=$f\$")" = 2 ] && [ "$(count "^$r=0\.000\$")" = 0 ] ||
		fail "expected 2 positive $r"
done
