#!/bin/sh
# run.sh BINARY CORPUS ARTIFACTS [DICT]: run one fuzz target for $FUZZ_TIME
# seconds (default 30) from a copy of its committed corpus, so that
# nothing is ever written into the repository. Fails if libFuzzer finds a
# crash, a leak, a timeout or an out-of-memory; the input is then kept in
# ARTIFACTS/ and the report printed. ctest label `fuzz` runs it
# (docs/FUZZING.md).
set -eu
bin=$1 corpus=$2 artifacts=$3 dict=${4:-}
name=$(basename "$bin")
secs=${FUZZ_TIME:-30}

work=$(mktemp -d "${TMPDIR:-/tmp}/vecdb-$name.XXXXXX")
# The databases and files the targets write go on a tmpfs when the
# machine has one: on a disk, truncating and syncing them is most of a
# slow target's time (yaml ran 3.5x faster on /dev/shm than on ext4).
db=$work/tmp
if [ -d /dev/shm ] && [ -w /dev/shm ]; then
	db=$(mktemp -d "/dev/shm/vecdb-$name.XXXXXX")
fi
trap 'rm -rf "$work" "$db"' EXIT INT TERM
mkdir -p "$work/corpus" "$db" "$artifacts"
cp "$corpus"/* "$work/corpus/"
set -- -max_total_time="$secs" -timeout=30 -rss_limit_mb=2048 \
	-print_final_stats=1 -artifact_prefix="$artifacts/"
if [ -n "$dict" ]; then
	set -- "$@" -dict="$dict"
fi

# The databases the targets open go under $db, removed at the end even
# when the target dies without its atexit cleanup.
rc=0
TMPDIR=$db ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1} \
	UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1} \
	VECDB_LOG=${VECDB_LOG:-error} \
	"$bin" "$@" "$work/corpus" >"$work/log" 2>&1 || rc=$?

execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$work/log")
found=$(ls "$work/corpus" | wc -l)
if [ "$rc" -ne 0 ]; then
	echo "$name: FAILED (exit $rc); the input is in $artifacts/:"
	grep -v '^#[0-9]' "$work/log" | tail -n 80
	exit 1
fi
echo "$name: ${execs:-?} executions in ${secs}s, corpus $(ls "$corpus" |
	wc -l) -> $found inputs, no crash"
grep '^stat::' "$work/log"
